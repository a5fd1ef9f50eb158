/* SPDX-License-Identifier: MIT */
/*
 * The MTA side of the milter protocol, one conversation per milter and
 * message (milter.h). A conversation is a list of steps walked in order:
 * option negotiation, then the replay of the SMTP conversation as the
 * server accepted it, then the edits up to the final answer. Each step
 * the milter answers waits for that answer (at most the milter's timeout;
 * SMFIR_PROGRESS starts the wait again); steps it asked not to get are
 * left out, steps it does not answer are sent back to back.
 *
 * A milter that cannot be reached, times out, or breaks the protocol
 * (a reply it may not send at that step, a malformed packet) ends with
 * MO_FAILED and the caller applies its default action. Nothing a milter
 * sends is trusted beyond milter_proto.c's checks: every edit is held in
 * memory bounded by the message's own limits (header edits by the
 * header block's, a new body by message_size_limit, envelope edits by
 * their number) and applied by milter_apply() to a new copy of the
 * message; envelope edits go back in the result, for the caller to make
 * into an envelope (milter_envelope_edit()): the server holds the
 * envelope, and only the SMTP session can change it there.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "farm.h"
#include "log.h"
#include "milter.h"
#include "milter_proto.h"
#include "sock.h"

#define MILTER_OUT_MAX		(256 * 1024)
#define MILTER_EDITS_MAX	1000	/* header edits per message */
#define MILTER_ENV_EDITS_MAX	1000	/* envelope edits per message: a
					 * recipient limit's worth */
#define MILTER_HEADER_FLOOR	(64 * 1024)
/* The whole conversation, however often the milter says it is busy
 * (SMFIR_PROGRESS): sendmail's end-of-message timeout. */
#define MILTER_CONV_MAX_MS	(5 * 60 * 1000)
/* What the client can be sent of a milter's reply (relay.c's reply()
 * line). */
#define MILTER_CLIENT_REPLY_MAX	1000

/* The steps, in the order the protocol has them. */
enum step {
	ST_OPTNEG,
	ST_CONNECT,
	ST_HELO,
	ST_MAIL,
	ST_RCPT,		/* one per recipient */
	ST_DATA,
	ST_HEADER,		/* one per header field */
	ST_EOH,
	ST_BODY,		/* one per chunk */
	ST_EOB,
	ST_DONE,
};

/* The message's header block, split into fields. */
struct hfield {
	size_t			 off;		/* in hb->buf, CRLF included */
	size_t			 len;
	size_t			 namelen;	/* 0: no colon, not a field */
};

struct hblock {
	char			*buf;
	size_t			 len;		/* header bytes */
	size_t			 body_off;	/* in the spool */
	struct hfield		*f;
	size_t			 n;
};

struct milter_conv {
	struct ev_loop			*loop;
	const struct conf_milter	*m;
	struct milter_input		 in;
	milter_done_cb			*done;
	void				*arg;
	int				 fd;
	struct ev_io			 io;
	struct ev_timer			 timer;
	struct buf			 out;
	struct milter_reader		 rd;
	struct milter_offer		 offer;
	struct milter_neg		 neg;
	enum step			 step;
	size_t				 sub;		/* rcpt, field, offset */
	int				 waiting;	/* the command answered */
	int				 connecting;
	struct hblock			 hb;
	struct milter_result		 res;
	uint64_t			 t0;
	int				 finished;
	size_t				 editbytes;
	struct milter_conv		*next;		/* dead list */
};

static struct milter_conv	*milter_dead;	/* freed after the batch */

static void	conv_advance(struct milter_conv *);

/* Wait for the next answer: the milter's timeout, within the whole
 * conversation's. */
static void
conv_arm(struct milter_conv *c)
{
	uint64_t	spent = ev_now() - c->t0;
	unsigned	ms = c->m->timeout;

	if (spent >= MILTER_CONV_MAX_MS)
		ms = 1;
	else if (MILTER_CONV_MAX_MS - spent < ms)
		ms = (unsigned)(MILTER_CONV_MAX_MS - spent);
	ev_timer_set(c->loop, &c->timer, ms);
}

/* ------------------------------------------------------------------ */
/* The header block                                                    */

static void
hblock_free(struct hblock *hb)
{
	free(hb->buf);
	free(hb->f);
	memset(hb, 0, sizeof(*hb));
}

static int
hblock_read(const struct spool *sp, size_t max, struct hblock *hb)
{
	size_t		 want, i, start;
	ssize_t		 n;
	char		*e;
	struct hfield	*nf;

	memset(hb, 0, sizeof(*hb));
	if (max < MILTER_HEADER_FLOOR)
		max = MILTER_HEADER_FLOOR;
	want = sp->size < max + 4 ? sp->size : max + 4;
	if ((hb->buf = malloc(want + 1)) == NULL)
		return -1;
	if (want > 0 && (n = spool_read(sp, 0, hb->buf, want)) !=
	    (ssize_t)want)
		return -1;
	hb->buf[want] = '\0';
	if (want >= 2 && hb->buf[0] == '\r' && hb->buf[1] == '\n') {
		hb->len = 0;
		hb->body_off = 2;
	} else if ((e = memmem(hb->buf, want, "\r\n\r\n", 4)) != NULL) {
		hb->len = (size_t)(e - hb->buf) + 2;
		hb->body_off = hb->len + 2;
	} else if (want == sp->size) {
		hb->len = want;		/* headers only */
		hb->body_off = want;
	} else {
		errno = EMSGSIZE;	/* the relay bounds the header */
		return -1;
	}
	for (i = 0; i < hb->len; ) {
		start = i;
		do {
			e = memmem(hb->buf + i, hb->len - i, "\r\n", 2);
			i = e != NULL ? (size_t)(e - hb->buf) + 2 : hb->len;
		} while (i < hb->len && (hb->buf[i] == ' ' ||
		    hb->buf[i] == '\t'));
		if ((nf = reallocarray(hb->f, hb->n + 1, sizeof(*nf))) == NULL)
			return -1;
		hb->f = nf;
		nf[hb->n].off = start;
		nf[hb->n].len = i - start;
		e = memchr(hb->buf + start, ':', i - start);
		nf[hb->n].namelen = e != NULL && e > hb->buf + start &&
		    memchr(hb->buf + start, ' ', (size_t)(e - hb->buf) - start)
		    == NULL ? (size_t)(e - hb->buf) - start : 0;
		hb->n++;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Ending                                                              */

void
milter_result_free(struct milter_result *r)
{
	size_t	i;

	for (i = 0; i < r->nedits; i++) {
		free(r->edits[i].name);
		free(r->edits[i].value);
	}
	free(r->edits);
	free(r->body);
	for (i = 0; i < r->nenv; i++) {
		free(r->env[i].addr);
		free(r->env[i].args);
	}
	free(r->env);
	r->env = NULL;
	r->nenv = 0;
	r->edits = NULL;
	r->nedits = 0;
	r->body = NULL;
	r->bodylen = 0;
}

static void
conv_close(struct milter_conv *c)
{
	if (c->fd != -1) {
		ev_io_del(c->loop, &c->io);
		close(c->fd);
		c->fd = -1;
	}
	ev_timer_del(c->loop, &c->timer);
	buf_free(&c->out);
	milter_reader_free(&c->rd);
	hblock_free(&c->hb);
}

/* The result goes to the caller; the conversation is over. */
static void
conv_finish(struct milter_conv *c, enum milter_outcome o)
{
	c->res.outcome = o;
	c->res.ms = (unsigned)(ev_now() - c->t0);
	c->finished = 1;
	if (c->fd != -1 && o != MO_FAILED && buf_used(&c->out) == 0) {
		/* A polite goodbye, if the socket takes it now: an abort
		 * first when the message was under way (as sendmail). */
		if ((c->step < ST_EOB && c->step > ST_HELO &&
		    milter_put_abort(&c->out) == -1) ||
		    milter_put_quit(&c->out) == -1)
			buf_clear(&c->out);
		(void)!send(c->fd, buf_head(&c->out), buf_used(&c->out),
		    MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	conv_close(c);
	c->done(c->arg, &c->res);
	milter_result_free(&c->res);
	/* Events of this batch may still name it: freed after the batch. */
	c->next = milter_dead;
	milter_dead = c;
}

void
milter_reap(void)
{
	struct milter_conv	*c;

	while ((c = milter_dead) != NULL) {
		milter_dead = c->next;
		free(c);
	}
}

static void	conv_fail(struct milter_conv *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static void
conv_fail(struct milter_conv *c, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(c->res.error, sizeof(c->res.error), fmt, ap);
	va_end(ap);
	conv_finish(c, MO_FAILED);
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */

static void
addr_strings(const struct sockaddr_storage *ss, char *host, size_t hl,
    char *port, size_t pl, int *family)
{
	if (ss == NULL || ss->ss_family == AF_UNSPEC ||
	    sock_format_host(ss, host, hl) == -1) {
		snprintf(host, hl, "unknown");
		snprintf(port, pl, "0");
		*family = SMFIA_UNKNOWN;
		return;
	}
	*family = ss->ss_family == AF_INET6 ? SMFIA_INET6 : SMFIA_INET;
	snprintf(port, pl, "%u", (unsigned)ntohs(((const struct sockaddr_in *)
	    ss)->sin_port));
}

/* The macros of a stage: ours, or those of them the milter chose. */
static int
put_macros(struct milter_conv *c, int cmd, const struct milter_macro *all,
    size_t n)
{
	struct milter_macro	 send[16];
	size_t			 i, k = 0;
	int			 stage = milter_stage_of(cmd);

	for (i = 0; i < n && k < 16; i++)
		if (stage < 0 || milter_neg_wants(&c->neg, stage,
		    all[i].name) != 0)
			send[k++] = all[i];
	return k == 0 ? 0 : milter_put_macros(&c->out, cmd, send, k);
}

/* The header value as a milter expects it: its own leading space only
 * with SMFIP_HDR_LEADSPC, folds as LF (as sendmail and Postfix send). */
static char *
header_value(const struct milter_conv *c, const struct hfield *f)
{
	const char	*p = c->hb.buf + f->off;
	const char	*v = p + f->namelen + 1;
	size_t		 end = f->len, vl, i, k = 0;
	char		*out;

	/* A last field may lack its CRLF (a message of headers only). */
	if (end >= 2 && p[end - 2] == '\r' && p[end - 1] == '\n')
		end -= 2;
	vl = end > f->namelen + 1 ? end - f->namelen - 1 : 0;
	/* What cannot go in one packet is cut (logged by the caller's
	 * caller as a short header): never a reason to fail the milter. */
	if (vl > MILTER_SEND_MAX - f->namelen - 2)
		vl = MILTER_SEND_MAX - f->namelen - 2;

	if (!(c->neg.protocol & SMFIP_HDR_LEADSPC) && vl > 0 && *v == ' ') {
		v++;
		vl--;
	}
	if ((out = malloc(vl + 1)) == NULL)
		return NULL;
	for (i = 0; i < vl; i++)
		if (!(v[i] == '\r' && i + 1 < vl && v[i + 1] == '\n'))
			out[k++] = v[i] == '\0' ? ' ' : v[i];
	out[k] = '\0';
	return out;
}

static int
step_cmd(const struct milter_conv *c)
{
	static const int	 cmds[] = { SMFIC_OPTNEG, SMFIC_CONNECT,
				    SMFIC_HELO, SMFIC_MAIL, SMFIC_RCPT,
				    SMFIC_DATA, SMFIC_HEADER, SMFIC_EOH,
				    SMFIC_BODY, SMFIC_BODYEOB };
	const struct hfield	*f;

	if (c->step >= ST_DONE)
		return 0;
	if (c->step == ST_HEADER) {
		f = &c->hb.f[c->sub];
		if (f->namelen == 0 || f->namelen >= 256)
			return 0;	/* not a field anyone can name */
	}
	return cmds[c->step];
}

static void
bare_addr(char *dst, size_t len, const char *path)
{
	size_t	l = strlen(path);

	if (l >= 2 && path[0] == '<' && path[l - 1] == '>')
		snprintf(dst, len, "%.*s", (int)(l - 2), path + 1);
	else
		snprintf(dst, len, "%s", path);
}

/*
 * The macros that go with the current step, sent even when the milter
 * declined the step itself (sendmail and Postfix do: a milter without a
 * connect callback still reads {client_addr} later).
 */
static int
put_step_macros(struct milter_conv *c, int cmd)
{
	char			 host[64], port[8], name[256], addr[512];
	struct milter_macro	 mm[6];
	int			 family;

	switch (cmd) {
	case SMFIC_CONNECT:
		addr_strings(c->in.peer, host, sizeof(host), port,
		    sizeof(port), &family);
		if (gethostname(name, sizeof(name)) == -1)
			snprintf(name, sizeof(name), "spork");
		name[sizeof(name) - 1] = '\0';
		mm[0] = (struct milter_macro){ "j", name };
		mm[1] = (struct milter_macro){ "{daemon_name}", "spork" };
		mm[2] = (struct milter_macro){ "{client_addr}", host };
		mm[3] = (struct milter_macro){ "{client_port}", port };
		mm[4] = (struct milter_macro){ "{client_name}", "unknown" };
		mm[5] = (struct milter_macro){ "_", host };
		return put_macros(c, cmd, mm, 6);
	case SMFIC_MAIL:
		bare_addr(addr, sizeof(addr), c->in.sender);
		mm[0] = (struct milter_macro){ "i", c->in.id };
		mm[1] = (struct milter_macro){ "{mail_addr}", addr };
		return put_macros(c, cmd, mm, 2);
	case SMFIC_RCPT:
		bare_addr(addr, sizeof(addr), c->in.rcpts[c->sub]);
		mm[0] = (struct milter_macro){ "{rcpt_addr}", addr };
		mm[1] = (struct milter_macro){ "{rcpt_mailer}", "smtp" };
		return put_macros(c, cmd, mm, 2);
	case SMFIC_DATA:
	case SMFIC_BODYEOB:
		mm[0] = (struct milter_macro){ "i", c->in.id };
		return put_macros(c, cmd, mm, 1);
	default:
		return 0;
	}
}

/* The packets of the current step into c->out; the command sent. */
static int
put_step(struct milter_conv *c, int *cmd)
{
	char			 host[64], port[8], name[256];
	const struct hfield	*f;
	size_t			 len;
	char			*v;
	int			 family, rc;

	switch (c->step) {
	case ST_CONNECT:
		*cmd = SMFIC_CONNECT;
		addr_strings(c->in.peer, host, sizeof(host), port,
		    sizeof(port), &family);
		if (put_step_macros(c, *cmd) == -1)
			return -1;
		return milter_put_connect(&c->out, "unknown", family,
		    (uint16_t)atoi(port), host);
	case ST_HELO:
		*cmd = SMFIC_HELO;
		return milter_put_helo(&c->out, c->in.helo[0] != '\0' ?
		    c->in.helo : "unknown");
	case ST_MAIL:
		*cmd = SMFIC_MAIL;
		if (put_step_macros(c, *cmd) == -1)
			return -1;
		return milter_put_mail(&c->out, c->in.sender, NULL, 0);
	case ST_RCPT:
		*cmd = SMFIC_RCPT;
		if (put_step_macros(c, *cmd) == -1)
			return -1;
		return milter_put_rcpt(&c->out, c->in.rcpts[c->sub], NULL, 0);
	case ST_DATA:
		*cmd = SMFIC_DATA;
		if (put_step_macros(c, *cmd) == -1)
			return -1;
		return milter_put_data(&c->out);
	case ST_HEADER:
		*cmd = SMFIC_HEADER;
		f = &c->hb.f[c->sub];
		memcpy(name, c->hb.buf + f->off, f->namelen);
		name[f->namelen] = '\0';
		if ((v = header_value(c, f)) == NULL)
			return -1;
		rc = milter_put_header(&c->out, name, v);
		free(v);
		return rc;
	case ST_EOH:
		*cmd = SMFIC_EOH;
		return milter_put_eoh(&c->out);
	case ST_BODY:
		*cmd = SMFIC_BODY;
		len = c->in.spool->size - c->hb.body_off - c->sub;
		if (len > MILTER_CHUNK_SIZE)
			len = MILTER_CHUNK_SIZE;
		if ((v = malloc(len)) == NULL ||
		    spool_read(c->in.spool, c->hb.body_off + c->sub, v, len) !=
		    (ssize_t)len) {
			free(v);
			return -1;
		}
		rc = milter_put_body(&c->out, v, len);
		free(v);
		c->sub += len;
		return rc;
	case ST_EOB:
		*cmd = SMFIC_BODYEOB;
		if (put_step_macros(c, *cmd) == -1)
			return -1;
		return milter_put_eob(&c->out);
	default:
		*cmd = 0;
		return 0;
	}
}

/* Past the current step: the next one that exists. */
static void
step_next(struct milter_conv *c)
{
	switch (c->step) {
	case ST_RCPT:
		if (++c->sub < c->in.nrcpts)
			return;
		break;
	case ST_HEADER:
		if (++c->sub < c->hb.n)
			return;
		break;
	case ST_BODY:
		if (c->hb.body_off + c->sub < c->in.spool->size)
			return;
		break;
	default:
		break;
	}
	c->step++;
	c->sub = 0;
	if (c->in.probe && c->step > ST_RCPT) {
		c->step = ST_DONE;
		return;
	}
	if ((c->step == ST_RCPT && c->in.nrcpts == 0) ||
	    (c->step == ST_HEADER && c->hb.n == 0) ||
	    (c->step == ST_BODY && c->hb.body_off >= c->in.spool->size))
		step_next(c);
}

static int
conv_flush(struct milter_conv *c)
{
	ssize_t	n;

	while (buf_used(&c->out) > 0) {
		if ((n = buf_write_fd(&c->out, c->fd)) == -1) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -1;
		}
	}
	return ev_io_set(c->loop, &c->io, EV_READ |
	    (buf_used(&c->out) > 0 ? EV_WRITE : 0));
}

/* Send steps until one the milter answers; then wait for that answer. */
static void
conv_advance(struct milter_conv *c)
{
	int	cmd;

	while (c->step < ST_DONE) {
		if (c->step == ST_OPTNEG) {
			c->step++;
			continue;
		}
		cmd = step_cmd(c);
		if (cmd == 0 || !milter_neg_sends(&c->neg, cmd)) {
			/* Left out (a whole body at once); its macros go
			 * all the same. */
			if (cmd != 0 && put_step_macros(c, cmd) == -1) {
				conv_fail(c, "cannot encode macros: %s",
				    strerror(errno));
				return;
			}
			if (c->step == ST_BODY)
				c->sub = c->in.spool->size - c->hb.body_off;
			step_next(c);
			continue;
		}
		if (put_step(c, &cmd) == -1) {
			conv_fail(c, "cannot encode %s: %s", milter_cmd_name(cmd),
			    strerror(errno));
			return;
		}
		if (milter_neg_replies(&c->neg, cmd)) {
			c->waiting = cmd;
			break;
		}
		step_next(c);
		if (buf_used(&c->out) > MILTER_OUT_MAX / 2)
			break;		/* write some before more */
	}
	if (c->step == ST_DONE && !c->waiting) {
		conv_finish(c, MO_CONTINUE);
		return;
	}
	conv_arm(c);
	if (conv_flush(c) == -1)
		conv_fail(c, "write: %s", strerror(errno));
	else if (!c->waiting && buf_used(&c->out) == 0)
		conv_advance(c);
}

/* ------------------------------------------------------------------ */
/* Receiving                                                           */

static int
edit_add(struct milter_conv *c, const struct milter_reply *r)
{
	struct milter_edit	*ne;
	struct buf		 v;

	/* Edits, all told, no larger than a header block may be. */
	if (c->res.nedits >= MILTER_EDITS_MAX || c->editbytes + r->namelen +
	    r->valuelen > c->in.max_header + MILTER_HEADER_FLOOR)
		return -1;
	c->editbytes += r->namelen + r->valuelen;
	if ((ne = reallocarray(c->res.edits, c->res.nedits + 1,
	    sizeof(*ne))) == NULL)
		return -1;
	c->res.edits = ne;
	ne = &ne[c->res.nedits];
	memset(ne, 0, sizeof(*ne));
	buf_init(&v, r->valuelen * 2 + 16);
	if (milter_header_value_crlf(&v, r->value, r->valuelen) == -1 ||
	    buf_append(&v, "", 1) == -1 ||
	    (ne->name = strndup(r->name, r->namelen)) == NULL ||
	    (ne->value = strdup(buf_head(&v))) == NULL) {
		buf_free(&v);
		free(ne->name);
		return -1;
	}
	buf_free(&v);
	ne->code = r->code;
	ne->index = r->index;
	c->res.nedits++;
	return 0;
}

/* A change of sender or recipients, kept for the caller. */
static int
env_edit_add(struct milter_conv *c, const struct milter_reply *r)
{
	struct milter_env_edit	*ne;

	if (c->res.nenv >= MILTER_ENV_EDITS_MAX)
		return -1;
	if ((ne = reallocarray(c->res.env, c->res.nenv + 1,
	    sizeof(*ne))) == NULL)
		return -1;
	c->res.env = ne;
	ne = &ne[c->res.nenv];
	memset(ne, 0, sizeof(*ne));
	if ((ne->addr = strndup(r->addr, r->addrlen)) == NULL ||
	    (r->args != NULL && r->argslen > 0 &&
	    (ne->args = strndup(r->args, r->argslen)) == NULL)) {
		free(ne->addr);
		return -1;
	}
	ne->code = r->code;
	c->res.nenv++;
	return 0;
}

/* A milter's reply text; a multi-line one too long for us is cut at a
 * line's end, never inside a line. */
static void
reply_copy(char *dst, size_t dl, const char *text, size_t tl)
{
	const char	*e;
	char		*last;

	if (dl > MILTER_CLIENT_REPLY_MAX)
		dl = MILTER_CLIENT_REPLY_MAX;
	if (tl >= dl) {
		for (e = text + dl - 1; e > text && !(e[0] == '\r' &&
		    e[1] == '\n'); e--)
			;
		tl = e > text ? (size_t)(e - text) : dl - 1;
	}
	memcpy(dst, text, tl);
	dst[tl] = '\0';
	/* The line kept last is the reply's last: "550 ", not "550-". */
	last = dst;
	for (e = dst; (e = strstr(e, "\r\n")) != NULL; e += 2)
		last = (char *)e + 2;
	if (strlen(last) > 3 && last[3] == '-')
		last[3] = ' ';
}

static void
conv_reply(struct milter_conv *c, const struct milter_reply *r)
{
	char	why[128];
	char	*nb;
	int	at_eob = c->waiting == SMFIC_BODYEOB;

	if (c->waiting == SMFIC_OPTNEG) {
		if (milter_negotiate(&c->offer, r, &c->neg) == -1) {
			conv_fail(c, "negotiation: %s", c->neg.error);
			return;
		}
		c->res.leadspc = (c->neg.protocol & SMFIP_HDR_LEADSPC) != 0;
		c->waiting = 0;
		conv_advance(c);
		return;
	}
	if (!milter_reply_allowed(&c->neg, c->waiting, r, why, sizeof(why))) {
		conv_fail(c, "protocol: %s", why);
		return;
	}
	switch (r->code) {
	case SMFIR_CONTINUE:
		if (c->in.probe && c->waiting == SMFIC_RCPT) {
			conv_finish(c, MO_CONTINUE);
			return;
		}
		c->waiting = 0;
		if (at_eob) {
			conv_finish(c, MO_CONTINUE);
			return;
		}
		step_next(c);
		conv_advance(c);
		return;
	case SMFIR_ACCEPT:
		conv_finish(c, MO_ACCEPT);
		return;
	case SMFIR_REJECT:
		snprintf(c->res.reply, sizeof(c->res.reply), "550 5.7.1 %s",
		    at_eob ? "Message content rejected" : "Command rejected");
		conv_finish(c, MO_REJECT);
		return;
	case SMFIR_TEMPFAIL:
		snprintf(c->res.reply, sizeof(c->res.reply), "451 4.7.1 "
		    "Service unavailable - try again later");
		conv_finish(c, MO_TEMPFAIL);
		return;
	case SMFIR_REPLYCODE:
		reply_copy(c->res.reply, sizeof(c->res.reply), r->text,
		    r->textlen);
		conv_finish(c, r->smtp_code / 100 == 4 ? MO_TEMPFAIL :
		    MO_REJECT);
		return;
	case SMFIR_DISCARD:
		conv_finish(c, MO_DISCARD);
		return;
	case SMFIR_SKIP:
		/* No more body: on to the end of it. */
		c->waiting = 0;
		c->step = ST_EOB;
		c->sub = 0;
		conv_advance(c);
		return;
	case SMFIR_PROGRESS:
		conv_arm(c);
		return;
	case SMFIR_QUARANTINE:
		c->res.quarantine = 1;
		snprintf(c->res.reason, sizeof(c->res.reason), "%.*s",
		    (int)r->reasonlen, r->reason);
		return;
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		if (edit_add(c, r) == -1)
			conv_fail(c, "%s", "too many header edits");
		return;
	case SMFIR_REPLBODY:
		/* A new body no larger than a message may be. */
		if (c->res.bodylen + r->bodylen > c->in.max_message ||
		    (nb = realloc(c->res.body, c->res.bodylen + r->bodylen +
		    1)) == NULL) {
			conv_fail(c, "%s", "replacement body too large");
			return;
		}
		memcpy(nb + c->res.bodylen, r->body, r->bodylen);
		c->res.body = nb;
		c->res.bodylen += r->bodylen;
		c->res.body_replaced = 1;
		return;
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		/* It wants no more of this connection: not a "yes". */
		snprintf(c->res.reply, sizeof(c->res.reply), "451 4.7.1 "
		    "Service unavailable - try again later");
		conv_finish(c, MO_TEMPFAIL);
		return;
	case SMFIR_CHGFROM:
	case SMFIR_ADDRCPT:
	case SMFIR_ADDRCPT_PAR:
	case SMFIR_DELRCPT:
		/* Carried out by the session with the server, before DATA
		 * (checks.h: the result's envelope). */
		if (env_edit_add(c, r) == -1)
			conv_fail(c, "%s", "too many envelope edits");
		return;
	default:
		/* milter_reply_allowed() let through no other code. */
		conv_fail(c, "protocol: unexpected %s",
		    milter_reply_name(r->code));
		return;
	}
}

static void
conv_io(struct ev_io *io, int events)
{
	struct milter_conv	*c = io->arg;
	struct milter_packet	 p;
	struct milter_reply	*r;
	char			 b[16384];
	ssize_t			 n;
	int			 rc;

	if (c->finished)
		return;
	if (c->connecting) {
		if (sock_connect_result(c->fd) == -1) {
			conv_fail(c, "connect: %s", strerror(errno));
			return;
		}
		c->connecting = 0;
	}
	if ((events & EV_WRITE) && conv_flush(c) == -1) {
		conv_fail(c, "write: %s", strerror(errno));
		return;
	}
	if (!c->waiting && buf_used(&c->out) == 0) {
		conv_advance(c);
		return;
	}
	if (!(events & EV_READ))
		return;
	if ((n = read(c->fd, b, sizeof(b))) <= 0) {
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		conv_fail(c, "%s", n == 0 ? "closed the connection" :
		    strerror(errno));
		return;
	}
	if (milter_reader_feed(&c->rd, b, (size_t)n) != (size_t)n) {
		conv_fail(c, "%s", "reply too large");
		return;
	}
	if ((r = malloc(sizeof(*r))) == NULL) {
		conv_fail(c, "%s", "out of memory");
		return;
	}
	while ((rc = milter_reader_next(&c->rd, &p)) == 1) {
		if (!c->waiting) {
			free(r);
			conv_fail(c, "%s", "a reply nobody asked for");
			return;
		}
		if (milter_reply_parse(&p, r) == -1) {
			snprintf(b, sizeof(b), "%s: %s", milter_reply_name(
			    p.cmd), r->error);
			free(r);
			conv_fail(c, "malformed %.200s", b);
			return;
		}
		conv_reply(c, r);
		if (c->finished) {
			free(r);
			return;
		}
	}
	free(r);
	if (rc == -1)
		conv_fail(c, "framing: %s", c->rd.error);
}

static void
conv_timer(struct ev_timer *t)
{
	struct milter_conv	*c = t->arg;

	if (c->finished)
		return;
	conv_fail(c, "%s", c->connecting ? "connect timed out" :
	    "no answer in time");
}

/* ------------------------------------------------------------------ */

/* "unix:/PATH" or "inet:ADDR:PORT" (conf.c checked the form). */
static int
conv_connect(const char *spec)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (strncmp(spec, "unix:", 5) == 0) {
		sun->sun_family = AF_UNIX;
		if (strlen(spec + 5) >= sizeof(sun->sun_path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		strcpy(sun->sun_path, spec + 5);
	} else if (sock_parse_addr(spec + 5, &ss) == -1) {
		errno = EINVAL;
		return -1;
	}
	return farm_connect(&ss);
}

struct milter_conv *
milter_start(struct ev_loop *loop, const struct conf_milter *m,
    const struct milter_input *in, milter_done_cb *done, void *arg)
{
	struct milter_conv	*c;
	int			 err;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->loop = loop;
	c->m = m;
	c->in = *in;
	c->done = done;
	c->arg = arg;
	c->t0 = ev_now();
	buf_init(&c->out, MILTER_OUT_MAX);
	milter_reader_init(&c->rd);
	ev_timer_init(&c->timer, conv_timer, c);
	if ((!in->probe && hblock_read(in->spool, in->max_header,
	    &c->hb) == -1) || (c->fd = conv_connect(m->socket)) == -1) {
		err = errno;
		c->fd = -1;
		conv_close(c);
		free(c);
		errno = err;
		return NULL;
	}
	c->connecting = 1;
	ev_io_init(&c->io, c->fd, conv_io, c);
	milter_offer_default(&c->offer);
	/* Refused recipients are never shown (the server refused them,
	 * or the milter itself at RCPT time). */
	c->offer.protocol &= ~SMFIP_RCPT_REJ;
	c->step = ST_OPTNEG;
	c->waiting = SMFIC_OPTNEG;
	if (milter_put_offer(&c->out, &c->offer) == -1 ||
	    ev_io_set(loop, &c->io, EV_READ | EV_WRITE) == -1) {
		err = errno;
		conv_close(c);
		free(c);
		errno = err;
		return NULL;
	}
	ev_timer_set(loop, &c->timer, m->timeout);
	return c;
}

void
milter_cancel(struct milter_conv *c)
{
	if (c == NULL || c->finished)
		return;
	conv_close(c);
	milter_result_free(&c->res);
	c->finished = 1;
	c->next = milter_dead;
	milter_dead = c;
}

/* ------------------------------------------------------------------ */
/* Applying the edits                                                  */

static int
put_all(int fd, const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A body as lines ending in CRLF, whatever its own line ends. */
static int
put_body_crlf(int fd, const char *b, size_t n)
{
	struct buf	 o;
	size_t		 i;
	int		 rc;

	buf_init(&o, n * 2 + 2);
	for (i = 0; i < n; i++) {
		if (b[i] == '\r') {
			if (buf_append(&o, "\r\n", 2) == -1)
				goto fail;
			if (i + 1 < n && b[i + 1] == '\n')
				i++;
		} else if (b[i] == '\n') {
			if (buf_append(&o, "\r\n", 2) == -1)
				goto fail;
		} else if (buf_append(&o, &b[i], 1) == -1)
			goto fail;
	}
	if (n > 0 && b[n - 1] != '\n' && b[n - 1] != '\r' &&
	    buf_append(&o, "\r\n", 2) == -1)
		goto fail;
	rc = put_all(fd, buf_head(&o), buf_used(&o));
	buf_free(&o);
	return rc;
fail:
	buf_free(&o);
	return -1;
}

int
milter_apply(struct spool *sp, const struct milter_result *r,
    size_t max_header, char *err, size_t errlen)
{
	struct hblock	 hb;
	char		**f = NULL, *field, buf[16384];
	size_t		 nfld = 0, i, k, seen, off, len, nl;
	const struct milter_edit *e;
	ssize_t		 n;
	int		 fd = -1, found;
	const char	*sep = r->leadspc ? ":" : ": ";

	if (hblock_read(sp, max_header, &hb) == -1) {
		snprintf(err, errlen, "reading the header: %s",
		    strerror(errno));
		hblock_free(&hb);
		return -1;
	}
	if ((f = calloc(hb.n + r->nedits + 1, sizeof(*f))) == NULL)
		goto syserr;
	for (i = 0; i < hb.n; i++)
		if ((f[nfld++] = strndup(hb.buf + hb.f[i].off,
		    hb.f[i].len)) == NULL)
			goto syserr;
	for (k = 0; k < r->nedits; k++) {
		e = &r->edits[k];
		if (asprintf(&field, "%s%s%s\r\n", e->name, sep,
		    e->value) == -1)
			goto syserr;
		nl = strlen(e->name);
		if (e->code == SMFIR_ADDHEADER) {
			f[nfld++] = field;
			continue;
		}
		if (e->code == SMFIR_INSHEADER) {
			i = e->index < nfld ? e->index : nfld;
			memmove(&f[i + 1], &f[i], (nfld - i) * sizeof(*f));
			f[i] = field;
			nfld++;
			continue;
		}
		/* SMFIR_CHGHEADER: the index-th field of that name (0 is
		 * taken as 1, as sendmail and Postfix do). */
		for (i = 0, seen = 0, found = 0; i < nfld; i++)
			if (strncasecmp(f[i], e->name, nl) == 0 &&
			    f[i][nl] == ':' && ++seen == (e->index ? e->index :
			    1)) {
				found = 1;
				break;
			}
		if (found && e->value[0] == '\0') {
			free(f[i]);
			memmove(&f[i], &f[i + 1], (nfld - i - 1) * sizeof(*f));
			nfld--;
			free(field);
		} else if (found) {
			free(f[i]);
			f[i] = field;
		} else if (e->value[0] != '\0')
			f[nfld++] = field;
		else
			free(field);
	}
	if ((fd = memfd_create("spork-milter", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1)
		goto syserr;
	for (i = 0; i < nfld; i++)
		if (put_all(fd, f[i], strlen(f[i])) == -1)
			goto syserr;
	if (put_all(fd, "\r\n", 2) == -1)
		goto syserr;
	if (r->body_replaced) {
		if (put_body_crlf(fd, r->body, r->bodylen) == -1)
			goto syserr;
	} else {
		for (off = hb.body_off; off < sp->size; off += (size_t)n) {
			len = sp->size - off < sizeof(buf) ? sp->size - off :
			    sizeof(buf);
			if ((n = spool_read(sp, off, buf, len)) <= 0 ||
			    put_all(fd, buf, (size_t)n) == -1)
				goto syserr;
		}
	}
	len = (size_t)lseek(fd, 0, SEEK_CUR);
	spool_adopt(sp, fd, len);
	for (i = 0; i < nfld; i++)
		free(f[i]);
	free(f);
	hblock_free(&hb);
	return 0;
syserr:
	snprintf(err, errlen, "applying the edits: %s", strerror(errno));
	if (fd != -1)
		close(fd);
	if (f != NULL) {
		for (i = 0; i < nfld; i++)
			free(f[i]);
		free(f);
	}
	hblock_free(&hb);
	return -1;
}

/* ------------------------------------------------------------------ */
/* The envelope                                                        */

/* An address without its <>, as a length into it. */
static const char *
addr_bare(const char *a, size_t *len)
{
	size_t	l = strlen(a);

	if (l >= 2 && a[0] == '<' && a[l - 1] == '>') {
		*len = l - 2;
		return a + 1;
	}
	*len = l;
	return a;
}

int
milter_addr_eq(const char *a, const char *b)
{
	const char	*pa, *pb;
	size_t		 la, lb;

	pa = addr_bare(a, &la);
	pb = addr_bare(b, &lb);
	return la == lb && strncasecmp(pa, pb, la) == 0;
}

/* A path: the address in <>, added when the milter left them out. */
static char *
addr_path(const char *a)
{
	char	*p;
	size_t	 l;

	if (a[0] == '<')
		return strdup(a);
	l = strlen(a);
	if ((p = malloc(l + 3)) == NULL)
		return NULL;
	p[0] = '<';
	memcpy(p + 1, a, l);
	p[l + 1] = '>';
	p[l + 2] = '\0';
	return p;
}

void
milter_envelope_free(struct milter_envelope *e)
{
	size_t	i;

	for (i = 0; i < e->nrcpt; i++) {
		free(e->rcpt[i]);
		free(e->rcpt_args[i]);
	}
	free(e->rcpt);
	free(e->rcpt_args);
	free(e->sender);
	free(e->sender_args);
	memset(e, 0, sizeof(*e));
}

/* One more recipient at the end; it takes path and args. */
static int
env_rcpt_push(struct milter_envelope *e, char *path, char *args)
{
	char	**nr, **na;

	if ((nr = reallocarray(e->rcpt, e->nrcpt + 1, sizeof(*nr))) != NULL)
		e->rcpt = nr;
	if ((na = reallocarray(e->rcpt_args, e->nrcpt + 1,
	    sizeof(*na))) != NULL)
		e->rcpt_args = na;
	if (nr == NULL || na == NULL) {
		free(path);
		free(args);
		errno = ENOMEM;
		return -1;
	}
	e->rcpt[e->nrcpt] = path;
	e->rcpt_args[e->nrcpt] = args;
	e->nrcpt++;
	return 0;
}

int
milter_envelope_init(struct milter_envelope *e, const char *sender,
    char *const *rcpts, size_t nrcpts)
{
	size_t	i;
	char	*p;

	memset(e, 0, sizeof(*e));
	if ((e->sender = strdup(sender)) == NULL)
		return -1;
	for (i = 0; i < nrcpts; i++)
		if ((p = strdup(rcpts[i])) == NULL ||
		    env_rcpt_push(e, p, NULL) == -1) {
			milter_envelope_free(e);
			errno = ENOMEM;
			return -1;
		}
	return 0;
}

int
milter_envelope_edit(struct milter_envelope *e, const struct milter_result *r,
    size_t max)
{
	const struct milter_env_edit	*ed;
	char				*path, *args;
	size_t				 k, i, j;

	for (k = 0; k < r->nenv; k++) {
		ed = &r->env[k];
		switch (ed->code) {
		case SMFIR_CHGFROM:
			path = addr_path(ed->addr);
			args = NULL;
			if (path == NULL || (ed->args != NULL &&
			    (args = strdup(ed->args)) == NULL)) {
				free(path);
				errno = ENOMEM;
				return -1;
			}
			free(e->sender);
			free(e->sender_args);
			e->sender = path;
			e->sender_args = args;
			e->sender_changed = 1;
			break;
		case SMFIR_DELRCPT:
			for (i = 0, j = 0; i < e->nrcpt; i++) {
				if (milter_addr_eq(e->rcpt[i], ed->addr)) {
					free(e->rcpt[i]);
					free(e->rcpt_args[i]);
					continue;
				}
				e->rcpt[j] = e->rcpt[i];
				e->rcpt_args[j++] = e->rcpt_args[i];
			}
			e->nrcpt = j;
			break;
		default:	/* SMFIR_ADDRCPT, SMFIR_ADDRCPT_PAR */
			for (i = 0; i < e->nrcpt; i++)
				if (milter_addr_eq(e->rcpt[i], ed->addr))
					break;
			if (i < e->nrcpt)
				break;		/* there already */
			if (e->nrcpt >= max) {
				errno = E2BIG;
				return -1;
			}
			path = addr_path(ed->addr);
			args = NULL;
			if (path == NULL || (ed->args != NULL &&
			    (args = strdup(ed->args)) == NULL)) {
				free(path);
				errno = ENOMEM;
				return -1;
			}
			if (env_rcpt_push(e, path, args) == -1)
				return -1;
			break;
		}
	}
	return 0;
}
