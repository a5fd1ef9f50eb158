/* SPDX-License-Identifier: MIT */
/*
 * The SMTP relay: one session per client connection, with two halves, the
 * client's connection (we play the server) and the upstream connection
 * (we play the client, from the client's own address when transparent).
 * Commands go upstream in the order received and replies come back in
 * that order (RFC 2920), tracked in a ring of pending verbs. DATA is the
 * exception: the relay answers 354 itself, spools and scans the message,
 * and only a clean message is sent upstream; the client's answer to it is
 * always the server's. Anything the relay answers itself waits until every
 * earlier reply has been relayed, so replies never overtake each other.
 * When the checks give the message a new envelope (the milters'), the
 * relay re-makes the transaction with the server to match before DATA,
 * answering the client nothing of it unless the server refuses.
 * This module trusts the config and the scanner; it trusts neither peer.
 */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "checks.h"
#include "cidr.h"
#include "conf.h"
#include "ev.h"
#include "journal.h"
#include "log.h"
#include "message_end.h"
#include "relay.h"
#include "prequeue.h"
#include "ratelimit.h"
#include "smtp_data.h"
#include "smtp_proto.h"
#include "sock.h"
#include "spool.h"
#include "tls.h"
#include "tls_dest.h"

#define RELAY_PENDING_MAX	256	/* commands awaiting a reply */
#define RELAY_BUF_MAX		(128 * 1024)
#define RELAY_HIGH_WATER	(64 * 1024)
#define RELAY_CHUNK		8192
#define RELAY_SENDER_MAX	256
#define RELAY_MAIL_WAIT		8	/* MAIL commands awaiting a reply */
#define RELAY_REFUSED_KEPT	100	/* refused recipients tracked */
#define RELAY_SWEEP_MS		60000
#define RELAY_INJECT_DRAIN_MAX	(1024 * 1024)	/* plaintext read and
						 * dropped at STARTTLS */

/* Client-facing state. */
enum rstate {
	RS_CONNECTING,		/* upstream connect in progress */
	RS_GREETING,		/* waiting for the server's banner */
	RS_COMMAND,		/* reading and forwarding commands */
	RS_STARTTLS,		/* STARTTLS forwarded, nothing else may pass */
	RS_DATA_BODY,		/* receiving the message after our 354 */
	RS_SCANNING,		/* the message is with the scanner */
	RS_UP_ENVELOPE,		/* the checks' envelope replayed upstream */
	RS_UP_DATA,		/* DATA sent upstream, waiting for 354 */
	RS_UP_BODY,		/* streaming the message upstream */
	RS_UP_DOT,		/* waiting for the server's final reply */
	RS_QUIT,		/* QUIT forwarded */
	RS_SPLICE,		/* after STARTTLS: bytes pass unscanned */
	RS_TLS_UP,		/* intercept: TLS handshake with the server */
	RS_TLS_DOWN,		/* intercept: TLS handshake with the client */
	RS_RECONNECT,		/* no key: a new upstream to pass TLS through */
	RS_CLOSING,		/* flushing the last reply to the client */
};

/* Where a reconnect for passthrough is (RS_RECONNECT). */
enum reconnect_step {
	RC_CONNECT,		/* connect in progress */
	RC_GREETING,		/* waiting for the banner */
	RC_EHLO,		/* our EHLO sent */
	RC_STARTTLS,		/* our STARTTLS sent */
};

static const char *const rstate_names[] = {
	[RS_CONNECTING] = "connecting",
	[RS_GREETING] = "greeting",
	[RS_COMMAND] = "command",
	[RS_STARTTLS] = "starttls",
	[RS_DATA_BODY] = "data",
	[RS_SCANNING] = "scanning",
	[RS_UP_ENVELOPE] = "upstream-envelope",
	[RS_UP_DATA] = "upstream-data",
	[RS_UP_BODY] = "upstream-body",
	[RS_UP_DOT] = "upstream-dot",
	[RS_QUIT] = "quit",
	[RS_SPLICE] = "passthrough",
	[RS_TLS_UP] = "tls-upstream",
	[RS_TLS_DOWN] = "tls-client",
	[RS_RECONNECT] = "tls-reconnect",
	[RS_CLOSING] = "closing",
};

/* Pending entries beyond the client's verbs: what the relay itself sent. */
enum {
	PEND_UP_DATA = 64,	/* our DATA after a clean scan */
	PEND_UP_DOT,		/* our end of message */
	PEND_SILENT_RSET,	/* our RSET after a local rejection */
	PEND_ENV_RSET,		/* the envelope replay: RSET, */
	PEND_ENV_MAIL,		/* MAIL, */
	PEND_ENV_RCPT,		/* each RCPT; never relayed */
};

struct session {
	char			 id[12];
	int			 transparent;	/* diverted, or explicit */
	int			 cfd;
	int			 sfd;
	struct ev_io		 cio;
	struct ev_io		 sio;
	struct ev_timer		 timer;
	struct buf		 cin, cout, sin, sout;
	char			 client[SOCK_ADDRSTR_MAX];
	char			 server[SOCK_ADDRSTR_MAX];
	enum rstate		 state;
	uint8_t			 pending[RELAY_PENDING_MAX];
	unsigned		 phead;
	unsigned		 pcount;
	int			 auth_cont;	/* next line answers a 334 */
	int			 auth_wait;	/* AUTH (or its response)
						 * unanswered: nothing else is
						 * read as a command yet */
	int			 barrier;	/* EHLO/HELO unanswered: a group
						 * must end there (RFC 2920) */
	int			 behind_barrier;	/* and more came */
	int			 up_pipelining;	/* the server offered it: the
						 * relay may send before a
						 * reply is in */
	const char		*violation;	/* pipelined past a barrier */
	uint64_t		 req_t0;	/* first byte of a partial line */
	uint64_t		 data_t0;	/* DATA body started */
	struct sockaddr_storage	 peer;
	int			 inside;	/* peer in inside_networks */
	int			 spool_err;	/* errno of a failed spool write */
	int			 skip_line;	/* discarding an overlong line */
	int			 ceof;		/* client sent FIN */
	int			 cclosed;	/* client connection broken */
	int			 sclosed;
	int			 seof;		/* server sent FIN (passthrough) */
	int			 cshut, sshut;	/* our FIN passed on to each */
	int			 dead;
	/* transaction */
	int			 in_tx;
	size_t			 rcpt_tried;
	size_t			 rcpt_ok;
	char			 sender[RELAY_SENDER_MAX];	/* accepted */
	char			*mail_args;	/* its MAIL's, after "FROM:" */
	/* MAILs forwarded, unanswered: each the sender for logs, a NUL,
	 * then the command's arguments (pair_dup()). */
	char			*mail_wait[RELAY_MAIL_WAIT];
	unsigned		 mail_whead, mail_wn;
	char			 helo[RELAY_SENDER_MAX];
	/* Recipients, each "<path>", a NUL, then the RCPT's ESMTP
	 * parameters (pair_dup(); rcpt_params()): a plain path to all
	 * but the envelope replay. */
	char			**rcpt_wait;	/* forwarded, unanswered */
	size_t			 rcpt_whead, rcpt_wn;
	char			**rcpt_acc;	/* accepted by the server */
	size_t			 rcpt_nacc;
	char			**rcpt_ref;	/* refused by it, for tracking */
	char			**rcpt_ref_reply;
	size_t			 rcpt_nref;
	size_t			 rcpt_mem;	/* charged to the memory budget */
	struct check_run	*checks;
	struct check_rcpt	*crcpt;		/* milters at RCPT time */	/* the message's, while they run */
	char			*prefix;	/* headers added on delivery */
	struct journal_copy	*jc;		/* the journal's copy, from
						 * before DATA to the server's
						 * final answer */
	/* The checks' envelope, re-made with the server before DATA
	 * (RS_UP_ENVELOPE): RSET, MAIL, then one RCPT for each of the
	 * final list; the commands sent (0 is the RSET) and those
	 * unanswered; the first refusal, as the client's reply. */
	struct check_envelope	*env;
	char			**env_rcpt;
	size_t			 env_nrcpt;
	size_t			 env_sent;
	size_t			 env_wait;
	char			 env_fail[768];
	struct prequeue		*pq;		/* pre-queue checks */
	/* TLS */
	struct sockaddr_storage	 dst;		/* the server, as connected */
	enum tls_policy		 tlspol;
	struct tls_dest		*tdest;		/* what is known of it */
	int			 tls_first;	/* TLS with the server before
						 * the client's 220 */
	enum reconnect_step	 rc_step;
	int			 strip_counted;
	SSL			*cssl;		/* facing the client */
	SSL			*sssl;		/* facing the server */
	int			 cwant, swant;	/* 1 read, 2 write */
	char			*held_reply;	/* the server's 220 to STARTTLS */
	struct spool		 spool;
	struct data_framer	 df;
	struct data_stuffer	 ds;
	size_t			 sendoff;
	char			 verdict[SCAN_NAME_MAX + 64];
	/* the checks' decision and the final dot, for message_end() */
	char			 kind[24];
	enum action		 action;
	double			 score;
	char			 qid[QUARANTINE_ID_MAX];
	uint64_t		 dot_t;
	/* counters for the disconnect line */
	unsigned		 ncmds;
	unsigned		 njunk;		/* since the last message */
	unsigned		 nmsgs;
	unsigned		 nrejects;
	uint64_t		 started;
	struct session		*next_dead;
};

static struct ev_loop		*relay_loop;
static const struct conf	*relay_conf;
static size_t			 relay_nsessions;
static struct session		*relay_dead;
static struct ev_timer		 relay_sweep_timer;
static uint32_t			 relay_idseq;

static void	session_update(struct session *);
static void	session_close(struct session *, const char *why);
static void	session_client_input(struct session *);
static void	session_server_input(struct session *);
static void	tls_step(struct session *);
static void	reconnect_begin(struct session *, const char *why);
static void	reconnect_input(struct session *);
static void	envelope_clear(struct session *);

/* ------------------------------------------------------------------ */

static void
session_set_state(struct session *s, enum rstate st)
{
	log_debug(s->id, "state %s -> %s", rstate_names[s->state],
	    rstate_names[st]);
	s->state = st;
}

static void
pending_push(struct session *s, int what)
{
	if (s->pcount == RELAY_PENDING_MAX)
		fatal("%s: pending ring overflow", s->id);
	s->pending[(s->phead + s->pcount++) % RELAY_PENDING_MAX] =
	    (uint8_t)what;
}

static int
pending_pop(struct session *s)
{
	int	what;

	if (s->pcount == 0)
		return -1;
	what = s->pending[s->phead];
	s->phead = (s->phead + 1) % RELAY_PENDING_MAX;
	s->pcount--;
	return what;
}

static void
rcpts_free(struct session *s)
{
	size_t	i;

	for (i = s->rcpt_whead; i < s->rcpt_wn; i++)
		free(s->rcpt_wait[i]);
	for (i = 0; i < s->rcpt_nacc; i++)
		free(s->rcpt_acc[i]);
	for (i = 0; i < s->rcpt_nref; i++) {
		free(s->rcpt_ref[i]);
		free(s->rcpt_ref_reply[i]);
	}
	free(s->rcpt_wait); s->rcpt_wait = NULL;
	free(s->rcpt_acc); s->rcpt_acc = NULL;
	free(s->rcpt_ref); s->rcpt_ref = NULL;
	free(s->rcpt_ref_reply); s->rcpt_ref_reply = NULL;
	s->rcpt_whead = s->rcpt_wn = s->rcpt_nacc = s->rcpt_nref = 0;
	spool_mem_release(s->rcpt_mem);
	s->rcpt_mem = 0;
}

/* "a", a NUL, then "b": a string that carries another behind it. */
static char *
pair_dup(const char *a, size_t al, const char *b, size_t bl)
{
	char	*p;

	if ((p = malloc(al + bl + 2)) == NULL)
		return NULL;
	memcpy(p, a, al);
	p[al] = '\0';
	memcpy(p + al + 1, b, bl);
	p[al + bl + 1] = '\0';
	return p;
}

/* What a pair_dup() string carries behind its first. */
static const char *
pair_second(const char *p)
{
	return p + strlen(p) + 1;
}

/* A recipient's ESMTP parameters ("" for none). */
static const char *
rcpt_params(const char *entry)
{
	return pair_second(entry);
}

/* What remembering one more recipient costs (its path, in both lists). */
static size_t
rcpt_cost(const struct smtp_cmd *c)
{
	return c->argslen + 1 + 2 * sizeof(char *);
}

static void
tx_reset(struct session *s)
{
	s->in_tx = 0;
	s->rcpt_tried = s->rcpt_ok = 0;
	s->sender[0] = '\0';
	free(s->mail_args); s->mail_args = NULL;
	rcpts_free(s);
	envelope_clear(s);
	free(s->prefix); s->prefix = NULL;
	journal_discard(s->jc, "transaction-ended");
	s->jc = NULL;
	spool_reset(&s->spool);
}

/*
 * The server answered a forwarded MAIL: its sender becomes the
 * transaction's only on 2xx. When the last pending MAIL was refused, the
 * pre-queue checks go back to the sender that stands (or to none).
 */
static void
mail_answered(struct session *s, int ok)
{
	char	**sender;

	if (s->mail_whead == s->mail_wn)
		return;
	sender = &s->mail_wait[s->mail_whead++ % RELAY_MAIL_WAIT];
	if (ok) {
		snprintf(s->sender, sizeof(s->sender), "%s", *sender);
		free(s->mail_args);
		s->mail_args = strdup(pair_second(*sender));
		s->in_tx = 1;
	}
	free(*sender); *sender = NULL;
	if (s->mail_whead != s->mail_wn)
		return;
	s->mail_whead = s->mail_wn = 0;
	if (!ok)
		prequeue_mail_restore(s->pq, s->in_tx ? s->sender : NULL,
		    s->helo);
}

/* The sender a RCPT goes with: the accepted one, or the MAIL pipelined
 * just before it (rcpt_sender_known()). */
static const char *
rcpt_sender(const struct session *s)
{
	if (s->mail_wn != s->mail_whead &&
	    s->mail_wait[(s->mail_wn - 1) % RELAY_MAIL_WAIT] != NULL)
		return s->mail_wait[(s->mail_wn - 1) % RELAY_MAIL_WAIT];
	return s->in_tx ? s->sender : "<>";
}

/*
 * Whether the checks may judge a RCPT now. Behind a MAIL the server has
 * not answered, only its answer says which sender the RCPT goes with when
 * another could stand (a nested MAIL, or several pipelined): the first
 * stays if it is refused (mail_answered()). A lone MAIL's RCPT goes with
 * it: refused, the server refuses the RCPT too.
 */
static int
rcpt_sender_known(const struct session *s)
{
	unsigned	n = s->mail_wn - s->mail_whead;

	return n == 0 || (n == 1 && !s->in_tx);
}

/* Remember a forwarded RCPT's path, and its parameters for a replay,
 * until the server answers it. */
static void
rcpt_forwarded(struct session *s, const struct smtp_cmd *c)
{
	char	**nw, *path;
	size_t	  n = c->argslen, off = 0, len, poff;

	if (n >= 3 && strncasecmp(c->args, "TO:", 3) == 0)
		off = 3;
	while (off < n && c->args[off] == ' ')
		off++;
	for (len = 0; off + len < n && c->args[off + len] != ' '; len++)
		;
	for (poff = off + len; poff < n && c->args[poff] == ' '; poff++)
		;
	path = pair_dup(c->args + off, len, c->args + poff, n - poff);
	if ((nw = realloc(s->rcpt_wait, (s->rcpt_wn + 1) * sizeof(*nw)))
	    == NULL) {
		free(path);
		return;
	}
	s->rcpt_wait = nw;
	s->rcpt_wait[s->rcpt_wn++] = path;	/* NULL path: out of memory */
}

static void
rcpt_answered(struct session *s, int ok, const char *r, size_t len)
{
	char	**na, **nr, *path;

	if (s->rcpt_whead >= s->rcpt_wn)
		return;
	path = s->rcpt_wait[s->rcpt_whead++];
	if (s->rcpt_whead == s->rcpt_wn)
		s->rcpt_whead = s->rcpt_wn = 0;
	/* A refused recipient is kept, with the first line of its reply,
	 * for the message's tracking record (RELAY_REFUSED_KEPT of them). */
	if (!ok && path != NULL && s->rcpt_nref < RELAY_REFUSED_KEPT &&
	    (na = realloc(s->rcpt_ref, (s->rcpt_nref + 1) * sizeof(*na))) !=
	    NULL) {
		s->rcpt_ref = na;
		if ((nr = realloc(s->rcpt_ref_reply, (s->rcpt_nref + 1) *
		    sizeof(*nr))) != NULL) {
			s->rcpt_ref_reply = nr;
			len = memchr(r, '\r', len) != NULL ?
			    (size_t)((const char *)memchr(r, '\r', len) - r) :
			    len;
			if ((nr[s->rcpt_nref] = strndup(r, len)) != NULL) {
				na[s->rcpt_nref++] = path;
				return;
			}
		}
	}
	if (!ok || path == NULL ||
	    (na = realloc(s->rcpt_acc, (s->rcpt_nacc + 1) * sizeof(*na)))
	    == NULL) {
		free(path);
		return;
	}
	s->rcpt_acc = na;
	s->rcpt_acc[s->rcpt_nacc++] = path;
}

/* Queue a reply of our own to the client. */
static void
reply(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(struct session *s, const char *fmt, ...)
{
	char	line[1024];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		n = (int)sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	if (buf_append(&s->cout, line, (size_t)n + 2) == -1)
		log_warn(s->id, "reply dropped: client output full");
}

/* Queue a reply and close once it has been written. */
static void
reply_close(struct session *s, const char *why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
reply_close(struct session *s, const char *why, const char *fmt, ...)
{
	char	line[1024];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	reply(s, "%s", line);
	log_info(s->id, "close reason=%s reply=\"%s\"", why, line);
	session_set_state(s, RS_CLOSING);
	if (s->sssl != NULL) {
		tls_free(s->sssl);
		s->sssl = NULL;
	}
	if (s->sfd != -1) {
		ev_io_del(relay_loop, &s->sio);
		close(s->sfd);
		s->sfd = -1;
	}
}

static int
forward(struct session *s, const char *line, size_t len, int what)
{
	if (buf_append(&s->sout, line, len) == -1 ||
	    buf_append(&s->sout, "\r\n", 2) == -1) {
		reply_close(s, "upstream-output-full",
		    "421 4.3.0 Error: internal buffer full, closing");
		return -1;
	}
	pending_push(s, what);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Client commands                                                     */

/* Keep the reverse path of "MAIL FROM:<path> params" for the log. */
static void
copy_sender(char sender[RELAY_SENDER_MAX], const struct smtp_cmd *c)
{
	const char	*p = c->args, *end = c->args + c->argslen;
	size_t		 n, i;

	if (c->argslen >= 5 && strncasecmp(p, "FROM:", 5) == 0)
		p += 5;
	while (p < end && *p == ' ')
		p++;
	for (n = 0; p + n < end && p[n] != ' '; n++)
		;
	if (n > RELAY_SENDER_MAX - 1)
		n = RELAY_SENDER_MAX - 1;
	memcpy(sender, p, n);
	sender[n] = '\0';
	for (i = 0; i < n; i++)		/* keep log lines one line, no quotes */
		if ((unsigned char)sender[i] < 0x20 || sender[i] == '"')
			sender[i] = '?';
}

/* SIZE=n on MAIL larger than our limit: refuse before any byte is sent. */
static int
mail_size_too_big(const struct smtp_cmd *c, size_t limit)
{
	const char	*p = c->args, *end = c->args + c->argslen;
	unsigned long long v;

	while (p < end) {
		if ((size_t)(end - p) > 5 && strncasecmp(p, "SIZE=", 5) == 0 &&
		    (p == c->args || p[-1] == ' ')) {
			v = strtoull(p + 5, NULL, 10);
			return v > limit;
		}
		p++;
	}
	return 0;
}

static void
data_begin(struct session *s)
{
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	data_framer_init(&s->df, relay_conf->bare_newline == BARE_NORMALIZE,
	    relay_conf->max_text_line ? relay_conf->max_text_line - 2 : 0,
	    relay_conf->message_size_limit);
	data_framer_header_limit(&s->df, relay_conf->max_header_size);
	s->data_t0 = ev_now();
	spool_reset(&s->spool);
	session_set_state(s, RS_DATA_BODY);
}

/*
 * Handle one command line. Returns 0 to go on parsing, 1 to stop for now
 * (the line was not consumed), -1 when the session is closing.
 */
static int
client_command(struct session *s, const char *line, size_t len)
{
	struct smtp_cmd	 c;
	char		 pqreply[512], sender[RELAY_SENDER_MAX];
	const char	*param;
	int		 pol;

	if (s->auth_cont) {
		s->auth_cont = 0;
		s->auth_wait = 1;
		return forward(s, line, len, VERB_AUTH);
	}
	smtp_cmd_parse(line, len, &c);
	s->ncmds++;
	if (c.verb == VERB_NOOP || c.verb == VERB_RSET ||
	    c.verb == VERB_VRFY || c.verb == VERB_EXPN ||
	    c.verb == VERB_HELP || c.verb == VERB_OTHER ||
	    c.verb == VERB_REFUSED) {
		/* A session that only keeps itself alive is closed after a
		 * bounded number of such commands (Postfix's
		 * smtpd_junk_command_limit); a message starts the count
		 * again. */
		if (relay_conf->max_junk_commands &&
		    ++s->njunk > relay_conf->max_junk_commands) {
			if (s->pcount > 0) {
				s->njunk--;
				return 1;
			}
			log_info(s->id, "protocol limit=max_junk_commands "
			    "count=%u", s->njunk - 1);
			reply_close(s, "junk-commands", "421 4.7.0 Error: too "
			    "many commands without mail, closing");
			return -1;
		}
	}
	switch (c.verb) {
	case VERB_DATA:
	case VERB_BDAT:
	case VERB_STARTTLS:
		/* Never forwarded blindly: each changes how the bytes that
		 * follow are framed, so the relay must see the answer first. */
		if (s->pcount > 0)
			return 1;
		if (c.verb == VERB_BDAT) {
			/* CHUNKING is hidden, yet the client sends chunks
			 * (an EHLO it cached before the box was there, as
			 * Exim's PIPECONNECT does). What follows is message
			 * bytes, never to be read as commands; a temporary
			 * failure lets it retry with DATA. */
			log_info(s->id, "protocol violation=bdat-not-offered");
			reply_close(s, "bdat-not-offered", "421 4.5.0 Error: "
			    "BDAT not offered (CHUNKING), closing; try again "
			    "with DATA");
			return -1;
		}
		if (c.argslen > 0) {
			reply(s, "501 5.5.4 Syntax: %s",
			    smtp_verb_name(c.verb));
			return 0;
		}
		if (c.verb == VERB_STARTTLS && s->tlspol == TLS_STRIP) {
			reply(s, "454 4.7.0 TLS not available");
			return 0;
		}
		if (c.verb == VERB_STARTTLS) {
			if (forward(s, line, len, VERB_STARTTLS) == -1)
				return -1;
			session_set_state(s, RS_STARTTLS);
			return 0;
		}
		if (!s->in_tx)
			reply(s, "503 5.5.1 Error: need MAIL command");
		else if (s->rcpt_tried == 0)
			reply(s, "503 5.5.1 Error: need RCPT command");
		else if (s->rcpt_ok == 0)
			reply(s, "554 5.5.1 Error: no valid recipients");
		else if (prequeue_data(s->pq) == PREQUEUE_WAIT)
			return 1;	/* the message's Received-SPF */
		else
			data_begin(s);
		return 0;
	case VERB_VRFY:
	case VERB_EXPN:
		/* Address harvesting from outside: answered here, as a
		 * server with disable_vrfy_command would (inside clients,
		 * the server's own users, get the server's answer). */
		if (s->inside || (pol = c.verb == VERB_VRFY ?
		    relay_conf->vrfy_outside : relay_conf->expn_outside) ==
		    PROBE_RELAY)
			break;
		if (s->pcount > 0)
			return 1;
		log_info(s->id, "%s answered policy=%s", smtp_verb_name(c.verb),
		    pol == PROBE_252 ? "252" : "502");
		if (pol == PROBE_252)
			reply(s, "252 2.0.0 Cannot %s, but will accept message "
			    "and attempt delivery", c.verb == VERB_VRFY ?
			    "VRFY user" : "EXPN list");
		else
			reply(s, "502 5.5.1 Error: command not implemented");
		return 0;
	case VERB_REFUSED:
		/* A hidden extension's verb (smtp_proto.c's EHLO table). */
		if (s->pcount > 0)
			return 1;
		reply(s, "502 5.5.1 Error: command not implemented");
		return 0;
	case VERB_MAIL:
		if (mail_size_too_big(&c, relay_conf->message_size_limit)) {
			if (s->pcount > 0)
				return 1;
			reply(s, "552 5.3.4 Message size exceeds fixed limit");
			return 0;
		}
		if (spool_disk_full()) {
			/* No room for one more message: later, not never. */
			if (s->pcount > 0)
				return 1;
			log_info(s->id, "mail refused limit=spool_disk_budget");
			reply(s, "452 4.3.1 Error: insufficient system "
			    "storage, try again later");
			return 0;
		}
		if ((param = smtp_mail_param_refused(c.args, c.argslen))
		    != NULL) {
			if (s->pcount > 0)
				return 1;
			reply(s, "555 5.5.4 Error: %s not supported", param);
			return 0;
		}
		/* The sender counts once the server accepts it; the checks
		 * start now, on the chance, and are set back if it does not
		 * (a nested MAIL answered 503 leaves the first sender). */
		if (s->mail_wn - s->mail_whead == RELAY_MAIL_WAIT)
			return 1;
		copy_sender(sender, &c);
		param = c.args;
		if (c.argslen >= 5 && strncasecmp(param, "FROM:", 5) == 0)
			param += 5;
		while (param < c.args + c.argslen && *param == ' ')
			param++;
		if ((s->mail_wait[s->mail_wn % RELAY_MAIL_WAIT] =
		    pair_dup(sender, strlen(sender), param,
		    (size_t)(c.args + c.argslen - param))) == NULL) {
			reply_close(s, "out-of-memory", "421 4.3.0 Error: "
			    "out of memory, closing");
			return -1;
		}
		s->mail_wn++;
		prequeue_mail(s->pq, sender, s->helo);
		break;
	case VERB_RCPT:
		if (s->rcpt_tried >= relay_conf->max_recipients) {
			if (s->pcount > 0)
				return 1;
			reply(s, "452 4.5.3 Error: too many recipients");
			return 0;
		}
		if (!rcpt_sender_known(s))
			return 1;	/* woken by the MAIL's answer */
		switch (prequeue_rcpt(s->pq, c.args, c.argslen, s->pcount == 0,
		    pqreply, sizeof(pqreply))) {
		case PREQUEUE_WAIT:
			return 1;
		case PREQUEUE_REPLY:
			reply(s, "%s", pqreply);
			return 0;
		case PREQUEUE_PASS:
			break;
		}
		switch (checks_rcpt(s->crcpt, s->helo, rcpt_sender(s), c.args,
		    c.argslen, s->pcount == 0, pqreply, sizeof(pqreply))) {
		case CHECK_RCPT_WAIT:
			return 1;
		case CHECK_RCPT_REPLY:
			reply(s, "%s", pqreply);
			return 0;
		case CHECK_RCPT_PASS:
			break;
		}
		/* The recipient lists are held against spool_memory_budget
		 * with the bodies in memory: past it, this RCPT is refused
		 * (the client retries it later) and never forwarded. */
		if (spool_mem_charge(rcpt_cost(&c)) == -1) {
			if (s->pcount > 0)
				return 1;
			log_warn(s->id, "memory full limit=spool_memory_budget "
			    "recipients=%zu action=452", s->rcpt_tried);
			reply(s, "452 4.3.1 Error: insufficient system storage");
			return 0;
		}
		s->rcpt_mem += rcpt_cost(&c);
		s->rcpt_tried++;
		rcpt_forwarded(s, &c);
		break;
	case VERB_HELO:
	case VERB_EHLO:
		snprintf(s->helo, sizeof(s->helo), "%.*s", (int)(c.argslen <
		    sizeof(s->helo) - 1 ? c.argslen : sizeof(s->helo) - 1),
		    c.args);
		s->barrier = 1;
		break;
	case VERB_AUTH:
		/* The server may read the next line as the response to a
		 * 334: the relay cannot tell a command from it until the
		 * reply is in (RFC 4954 4: AUTH ends a pipelined group). */
		s->auth_wait = 1;
		break;
	case VERB_QUIT:
		if (forward(s, line, len, VERB_QUIT) == -1)
			return -1;
		session_set_state(s, RS_QUIT);
		return 0;
	default:
		break;
	}
	return forward(s, line, len, (int)c.verb);
}

/* Parse and forward as many complete command lines as order allows. */
static void
client_commands(struct session *s)
{
	enum smtp_line	 r;
	size_t		 ll, used;
	const char	*head;
	unsigned	 ncmds;
	int		 rc;

	while (s->state == RS_COMMAND && buf_used(&s->cin) > 0) {
		if (s->barrier) {
			/* Held until the EHLO is answered (RFC 2920 4). */
			s->behind_barrier = 1;
			return;
		}
		if (s->behind_barrier) {
			/* Commands sent behind EHLO, or before the banner
			 * (PIPECONNECT): a server that offers PIPELINING takes
			 * them, and gets them in order after its EHLO reply.
			 * Without it they break RFC 2920, as the server would
			 * say too. */
			s->behind_barrier = 0;
			if (!s->up_pipelining)
				s->violation = "EHLO";
		}
		if (s->violation != NULL) {
			log_info(s->id, "protocol violation=improper-pipelining "
			    "after=%s", s->violation);
			reply_close(s, "improper-pipelining", "554 5.5.0 Error: "
			    "SMTP protocol synchronization (command pipelined "
			    "after %s)", s->violation);
			return;
		}
		if (s->auth_wait || s->pcount == RELAY_PENDING_MAX ||
		    buf_used(&s->sout) >= RELAY_HIGH_WATER)
			return;
		/* A server that did not offer PIPELINING gets one command at
		 * a time, the relay's own RSET or DATA included. */
		if (s->pcount > 0 && !s->up_pipelining)
			return;
		head = buf_head(&s->cin);
		r = smtp_line_scan(head, buf_used(&s->cin),
		    relay_conf->max_command_line, &ll, &used);
		if (s->skip_line) {
			/* The tail of an overlong line already answered. */
			if (r == LINE_PARTIAL || r == LINE_TOO_LONG) {
				buf_consume(&s->cin, used);
				continue;
			}
			buf_consume(&s->cin, used);
			s->skip_line = 0;
			continue;
		}
		if (r == LINE_PARTIAL) {
			/* A request must be complete within its deadline,
			 * however slowly its bytes drip in. */
			if (s->req_t0 == 0)
				s->req_t0 = ev_now();
			else if (ev_now() - s->req_t0 > relay_conf->timeout_request)
				reply_close(s, "request-deadline", "421 4.4.2 "
				    "Error: command not completed in time");
			return;
		}
		if (s->req_t0 != 0 &&
		    ev_now() - s->req_t0 > relay_conf->timeout_request) {
			reply_close(s, "request-deadline", "421 4.4.2 Error: "
			    "command not completed in time");
			return;
		}
		s->req_t0 = 0;
		if (r == LINE_BARE_LF &&
		    relay_conf->bare_newline == BARE_NORMALIZE)
			r = LINE_OK;
		if (r != LINE_OK) {
			if (s->pcount > 0)
				return;
			switch (r) {
			case LINE_TOO_LONG:
				reply(s, "500 5.5.2 Error: line too long "
				    "(limit %zu bytes)",
				    relay_conf->max_command_line);
				s->skip_line = 1;
				break;
			case LINE_BARE_LF:
				reply(s, "500 5.5.2 Error: bare <LF> received "
				    "(RFC 5321 2.3.8)");
				break;
			case LINE_BARE_CR:
				reply(s, "500 5.5.2 Error: bare <CR> received "
				    "(RFC 5321 2.3.8)");
				break;
			default:
				reply(s, "500 5.5.2 Error: NUL in command");
				break;
			}
			log_info(s->id, "command refused reason=%s",
			    r == LINE_TOO_LONG ? "too-long" :
			    r == LINE_BARE_LF ? "bare-lf" :
			    r == LINE_BARE_CR ? "bare-cr" : "nul");
			buf_consume(&s->cin, used);
			continue;
		}
		ncmds = s->ncmds;
		rc = client_command(s, head, ll);
		if (rc == 1) {
			s->ncmds = ncmds;	/* not taken yet: counted then */
			return;
		}
		if (rc == -1)
			return;
		buf_consume(&s->cin, used);
		if (s->state == RS_DATA_BODY && buf_used(&s->cin) > 0) {
			/* The message was sent before our 354 was. */
			log_info(s->id, "protocol violation=improper-pipelining "
			    "after=DATA bytes=%zu", buf_used(&s->cin));
			reply_close(s, "improper-pipelining", "554 5.5.0 Error: "
			    "SMTP protocol synchronization (message sent "
			    "before 354)");
			return;
		}
	}
}

/* ------------------------------------------------------------------ */
/* The message                                                         */

/* The message has its answer: its tracking record and metrics. */
static void
session_message_end(struct session *s, const char *r, size_t len,
    int by_server)
{
	struct message_end	me;

	memset(&me, 0, sizeof(me));
	me.id = s->id;
	me.client = s->client;
	me.peer = &s->peer;
	me.server = s->server;
	me.inside = s->inside;
	me.helo = s->helo;
	me.sender = s->sender;
	me.rcpts = s->rcpt_acc;
	me.nrcpts = s->rcpt_nacc;
	me.refused = s->rcpt_ref;
	me.refused_reply = s->rcpt_ref_reply;
	me.nrefused = s->rcpt_nref;
	me.spool = &s->spool;
	me.kind = s->kind;
	me.action = s->action;
	me.score = s->score;
	me.qid = s->qid;
	me.tls = s->cssl == NULL ? "none" : s->tlspol == TLS_OUTBOUND ?
	    "outbound" : "intercept";
	me.reply = r;
	me.replylen = len;
	me.by_server = by_server;
	me.at_dot = s->dot_t != 0;
	me.dot_ms = s->dot_t != 0 ? ev_now() - s->dot_t : 0;
	message_end(&me);
	s->kind[0] = '\0';
	s->action = ACT_NONE;
	s->score = NAN;
	s->qid[0] = '\0';
	s->dot_t = 0;
}

/* After a local rejection the server still holds MAIL/RCPT: reset it. */
static void
data_reject(struct session *s, const char *verdict, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
data_reject(struct session *s, const char *verdict, const char *fmt, ...)
{
	char	line[1024], logged[1024], *p;
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	reply(s, "%s", line);
	/* A multi-line reply (a milter's) stays one log line. */
	snprintf(logged, sizeof(logged), "%s", line);
	for (p = logged; (p = strpbrk(p, "\r\n")) != NULL; )
		*p = ' ';
	log_info(s->id, "message sender=\"%s\" rcpts=%zu size=%zu %s "
	    "reply=\"%s\"", s->sender, s->rcpt_ok, s->spool.size, verdict,
	    logged);
	if (s->kind[0] == '\0') {
		/* Refused before any check ran (framing, size, spool):
		 * "verdict=too-big" is the kind. */
		if (strncmp(verdict, "verdict=", 8) == 0)
			verdict += 8;
		snprintf(s->kind, sizeof(s->kind), "%.*s",
		    (int)strcspn(verdict, " "), verdict);
		s->action = line[0] == '4' ? ACT_TEMPFAIL : ACT_REJECT;
	}
	session_message_end(s, line, strlen(line), 0);
	s->nrejects++;
	tx_reset(s);
	session_set_state(s, RS_COMMAND);
	(void)forward(s, "RSET", 4, PEND_SILENT_RSET);
}

/*
 * Send the message upstream: DATA first, the body on its 354. The
 * journal's copy is taken before DATA, of what data_pump() will send:
 * a copy that fails can still end the transaction with a RSET here,
 * where after the 354 only the final dot could end it, and deliver it.
 */
static void
data_deliver(struct session *s)
{
	struct journal_msg	jm;

	memset(&jm, 0, sizeof(jm));
	jm.id = s->id;
	jm.inside = s->inside;
	jm.env.sender = s->sender;
	jm.env.rcpts = s->rcpt_acc;
	jm.env.nrcpts = s->rcpt_nacc;
	jm.env.client = s->client;
	jm.env.server = s->server;
	jm.head[0] = prequeue_headers(s->pq);
	jm.head[1] = s->prefix;
	jm.spool = &s->spool;
	if (journal_begin(&jm, &s->jc) == JOURNAL_TEMPFAIL) {
		snprintf(s->kind, sizeof(s->kind), "journal");
		s->action = ACT_TEMPFAIL;
		data_reject(s, "verdict=journal-error", "451 4.3.0 Error: "
		    "journal unavailable, try again later");
		return;
	}
	if (forward(s, "DATA", 4, PEND_UP_DATA) == -1)
		return;
	session_set_state(s, RS_UP_DATA);
}

/* ------------------------------------------------------------------ */
/* The checks' envelope                                                */

/*
 * The milters changed the envelope the server holds (checks.h): the relay
 * makes the transaction again, RSET, MAIL, a RCPT for each recipient of
 * the final list, and sends DATA only when the server said 2xx to every
 * one of them. Those replies answer nothing the client said and never
 * reach it; a refusal ends the message with a 451 and the server gets
 * RSET: the message goes to the recipients the milters decided, or to
 * nobody. Pipelined when the server offers it, else one at a time; DATA
 * is never in the group (a 354 after a refused RCPT could not be taken
 * back).
 */

static void
envelope_clear(struct session *s)
{
	size_t	i;

	for (i = 0; i < s->env_nrcpt; i++)
		free(s->env_rcpt[i]);
	free(s->env_rcpt); s->env_rcpt = NULL;
	s->env_nrcpt = s->env_sent = s->env_wait = 0;
	s->env_fail[0] = '\0';
	check_envelope_free(s->env);
	s->env = NULL;
}

/* An address for a log value or s->sender: one word, no quotes. */
static void
safe_copy(char *dst, size_t len, const char *src)
{
	size_t	i;

	snprintf(dst, len, "%s", src);
	for (i = 0; dst[i] != '\0'; i++)
		if ((unsigned char)dst[i] <= 0x20 || dst[i] == '"')
			dst[i] = '?';
}

/* Where the reverse-path in "<path> PARAMS" ends: at its '>', never one
 * inside a quoted local part. */
static const char *
path_end(const char *p)
{
	int	quoted = 0;

	if (*p != '<')
		return p + strcspn(p, " ");
	for (p++; *p != '\0'; p++) {
		if (*p == '\\' && quoted && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '>' && !quoted)
			return p + 1;
	}
	return p;
}

/* A parameter to drop when the sender changes: AUTH= vouches for the
 * submitter of the client's sender (RFC 4954 5), not for the new one. */
static int
param_dropped(const char *p, size_t len, int sender_changed)
{
	return sender_changed && len >= 5 && strncasecmp(p, "AUTH=", 5) == 0;
}

/* The replayed MAIL: the new sender or the client's, with the milter's
 * parameters or the client's that still hold (SIZE, BODY, RET, ENVID,
 * SMTPUTF8: the message's). NULL: out of memory. */
static char *
envelope_mail(const struct session *s)
{
	const struct check_envelope	*e = s->env;
	const char			*raw = s->mail_args, *pe, *p, *t;
	struct buf			 b;
	char				*line;

	pe = path_end(raw);
	buf_init(&b, 2 * strlen(raw) + 1024);
	if (buf_append(&b, "MAIL FROM:", 10) == -1)
		goto fail;
	if (e->sender != NULL) {
		if (buf_append(&b, e->sender, strlen(e->sender)) == -1)
			goto fail;
	} else if (buf_append(&b, raw, (size_t)(pe - raw)) == -1)
		goto fail;
	if (e->sender != NULL && e->sender_args != NULL) {
		if (e->sender_args[0] != '\0' && (buf_append(&b, " ", 1) ==
		    -1 || buf_append(&b, e->sender_args,
		    strlen(e->sender_args)) == -1))
			goto fail;
	} else {
		for (p = pe; *p != '\0'; p = t) {
			while (*p == ' ')
				p++;
			t = p + strcspn(p, " ");
			if (t == p || param_dropped(p, (size_t)(t - p),
			    e->sender != NULL))
				continue;
			if (buf_append(&b, " ", 1) == -1 ||
			    buf_append(&b, p, (size_t)(t - p)) == -1)
				goto fail;
		}
	}
	if (buf_append(&b, "", 1) == -1 || (line = strdup(buf_head(&b))) ==
	    NULL)
		goto fail;
	buf_free(&b);
	return line;
fail:
	buf_free(&b);
	return NULL;
}

/* Command i of the replay (0 RSET, 1 MAIL, then the RCPTs) and its
 * pending kind. NULL: out of memory. */
static char *
envelope_line(const struct session *s, size_t i, int *what)
{
	const char	*path, *par;
	char		*line;

	if (i == 0) {
		*what = PEND_ENV_RSET;
		return strdup("RSET");
	}
	if (i == 1) {
		*what = PEND_ENV_MAIL;
		return envelope_mail(s);
	}
	*what = PEND_ENV_RCPT;
	path = s->env_rcpt[i - 2];
	par = rcpt_params(path);
	if (asprintf(&line, "RCPT TO:%s%s%s", path, par[0] != '\0' ? " " : "",
	    par) == -1)
		return NULL;
	return line;
}

/* The replay could not be carried out: nobody gets the message. */
static void
envelope_refused(struct session *s, const char *why)
{
	char	line[sizeof(s->env_fail)];

	snprintf(line, sizeof(line), "%s", why);
	snprintf(s->kind, sizeof(s->kind), "milter");
	s->action = ACT_TEMPFAIL;
	envelope_clear(s);
	data_reject(s, s->verdict, "%s", line);
}

/* The server holds the final envelope: it is the session's, for the
 * message's log line and tracking record; then DATA. */
static void
envelope_done(struct session *s)
{
	size_t	i;

	if (s->env_fail[0] != '\0') {
		envelope_refused(s, s->env_fail);
		return;
	}
	for (i = 0; i < s->rcpt_nacc; i++)
		free(s->rcpt_acc[i]);
	free(s->rcpt_acc);
	s->rcpt_acc = s->env_rcpt;
	s->rcpt_nacc = s->rcpt_ok = s->env_nrcpt;
	s->env_rcpt = NULL;
	s->env_nrcpt = 0;
	if (s->env->sender != NULL)
		safe_copy(s->sender, sizeof(s->sender), s->env->sender);
	envelope_clear(s);
	data_deliver(s);
}

/* Send what order allows of the replay; its end once all is answered. */
static void
envelope_send(struct session *s)
{
	char	*line;
	int	 what, rc;

	while (s->env_sent < 2 + s->env_nrcpt && s->env_fail[0] == '\0') {
		if (s->env_wait > 0 && (!s->up_pipelining ||
		    s->pcount >= RELAY_PENDING_MAX / 2 ||
		    buf_used(&s->sout) >= RELAY_HIGH_WATER))
			return;
		if ((line = envelope_line(s, s->env_sent, &what)) == NULL) {
			snprintf(s->env_fail, sizeof(s->env_fail), "451 4.3.0 "
			    "Error: out of memory");
			break;
		}
		rc = forward(s, line, strlen(line), what);
		free(line);
		if (rc == -1)
			return;		/* closing */
		s->env_sent++;
		s->env_wait++;
	}
	if (s->env_wait == 0)
		envelope_done(s);
}

/* The server's reply to a replayed command. */
static void
envelope_answer(struct session *s, int what, int code, const char *r,
    size_t len)
{
	const char	*cr = memchr(r, '\r', len);
	const char	*what_s;

	s->env_wait--;
	if (code / 100 != 2 && s->env_fail[0] == '\0') {
		if (cr != NULL)
			len = (size_t)(cr - r);
		what_s = what == PEND_ENV_RCPT ? "recipient change" :
		    what == PEND_ENV_RSET ? "envelope change (RSET)" :
		    s->env->sender != NULL ? "sender change" :
		    "envelope change (MAIL)";
		snprintf(s->env_fail, sizeof(s->env_fail), "451 4.7.1 Error: "
		    "%s refused by the server: %.*s", what_s,
		    (int)(len < 512 ? len : 512), r);
		log_info(s->id, "milter envelope refused code=%d reply=\"%.*s\"",
		    code, (int)(len < 512 ? len : 512), r);
	}
	envelope_send(s);
}

/* The checks changed the envelope: the final list, then the replay. */
static void
envelope_begin(struct session *s, struct check_envelope *e)
{
	char	*p, sender[RELAY_SENDER_MAX];
	size_t	 i, n = 0, deleted = 0;

	s->env = e;
	if (s->mail_args == NULL || (s->env_rcpt = calloc(s->rcpt_nacc +
	    e->nadd + 1, sizeof(char *))) == NULL) {
		envelope_refused(s, "451 4.3.0 Error: out of memory");
		return;
	}
	for (i = 0; i < s->rcpt_nacc; i++) {
		if (check_envelope_deletes(e, s->rcpt_acc[i])) {
			deleted++;
			continue;
		}
		p = s->rcpt_acc[i];
		if ((s->env_rcpt[n] = pair_dup(p, strlen(p), rcpt_params(p),
		    strlen(rcpt_params(p)))) == NULL)
			goto oom;
		s->env_nrcpt = ++n;
	}
	for (i = 0; i < e->nadd; i++) {
		p = e->add_args[i];
		if ((s->env_rcpt[n] = pair_dup(e->add[i], strlen(e->add[i]),
		    p != NULL ? p : "", p != NULL ? strlen(p) : 0)) == NULL)
			goto oom;
		s->env_nrcpt = ++n;
	}
	safe_copy(sender, sizeof(sender), e->sender != NULL ? e->sender :
	    s->sender);
	log_info(s->id, "milter envelope sender=%s added=%zu deleted=%zu "
	    "rcpts=%zu pipelining=%s", sender, e->nadd, deleted, n,
	    s->up_pipelining ? "yes" : "no");
	if (n == 0) {
		envelope_refused(s, "451 4.7.1 Error: recipient change refused: "
		    "no recipient left");
		return;
	}
	session_set_state(s, RS_UP_ENVELOPE);
	envelope_send(s);
	return;
oom:
	envelope_refused(s, "451 4.3.0 Error: out of memory");
}

/* A check's result has been applied: commands the client pipelined
 * behind the message may go on. */
static void
data_checked(struct session *s)
{
	session_update(s);
	if (s->state == RS_COMMAND) {
		session_client_input(s);
		session_update(s);
	}
}

/* The checks' result: the message goes to the server, or the client
 * gets their reply and the server a RSET. */
static void
checks_done(void *arg, struct check_result *res, int sync)
{
	struct session	*s = arg;

	s->checks = NULL;
	checks_rcpt_add_failed(s->crcpt, res->milters_failed);
	snprintf(s->kind, sizeof(s->kind), "%s", res->kind);
	s->action = res->action;
	s->score = res->score;
	snprintf(s->qid, sizeof(s->qid), "%s", res->qid);
	if (!res->deliver)
		data_reject(s, res->verdict, "%s", res->reply);
	else {
		snprintf(s->verdict, sizeof(s->verdict), "%s", res->verdict);
		free(s->prefix);
		s->prefix = res->prefix;
		res->prefix = NULL;
		if (res->env != NULL) {
			envelope_begin(s, res->env);
			res->env = NULL;
		} else
			data_deliver(s);
	}
	/* Not from inside data_end(): its caller reads on. */
	if (!sync)
		data_checked(s);
}

static void
data_end(struct session *s)
{
	struct check_msg	 m;
	int			 e = s->df.errors;

	s->nmsgs++;
	s->njunk = 0;
	s->dot_t = ev_now();
	if (s->spool_err != 0) {
		e = s->spool_err;
		s->spool_err = 0;
		if (e == ENOSPC)
			data_reject(s, "verdict=spool-full", "452 4.3.1 Error: "
			    "insufficient system storage, try again later");
		else
			data_reject(s, "verdict=spool-error", "451 4.3.0 Error: "
			    "local spool failure, try again later");
		return;
	}
	if (e & DATA_ERR_TOO_BIG) {
		data_reject(s, "verdict=too-big", "552 5.3.4 Error: message "
		    "file too big (limit %zu bytes)",
		    relay_conf->message_size_limit);
		return;
	}
	if (e & DATA_ERR_HEADER_BIG) {
		data_reject(s, "verdict=header-too-big", "552 5.3.4 Error: "
		    "message header size exceeds limit (%zu bytes)",
		    relay_conf->max_header_size);
		return;
	}
	if (e & DATA_ERR_NUL) {
		data_reject(s, "verdict=nul", "550 5.6.0 Error: NUL byte in "
		    "message content");
		return;
	}
	if (e & (DATA_ERR_BARE_LF | DATA_ERR_BARE_CR)) {
		data_reject(s, "verdict=bare-newline", "550 5.5.2 Error: bare "
		    "<%s> in message content (RFC 5321 2.3.8)",
		    (e & DATA_ERR_BARE_LF) ? "LF" : "CR");
		return;
	}
	if (e & DATA_ERR_LONG_LINE) {
		data_reject(s, "verdict=long-line", "550 5.5.2 Error: message "
		    "has a line longer than %zu bytes (RFC 5321 4.5.3.1.6)",
		    relay_conf->max_text_line);
		return;
	}
	if (relay_conf->scan_enable)
		tls_cov_message();
	memset(&m, 0, sizeof(m));
	m.id = s->id;
	m.client = s->client;
	m.server = s->server;
	m.helo = s->helo;
	m.sender = s->sender;
	m.rcpts = s->rcpt_acc;
	m.nrcpts = s->rcpt_nacc;
	m.peer = &s->peer;
	m.inside = s->inside;
	m.milters_failed = checks_rcpt_failed(s->crcpt);
	m.transparent = s->transparent;
	m.spool = &s->spool;
	session_set_state(s, RS_SCANNING);
	s->checks = checks_start(&m, checks_done, s);
}

/* Receive message bytes from the client into the spool. */
static void
data_receive(struct session *s)
{
	char	out[4 * RELAY_CHUNK];
	size_t	used, olen;
	int	end = 0;
	uint64_t elapsed;

	while (buf_used(&s->cin) > 0 && !end) {
		used = data_framer_feed(&s->df, buf_head(&s->cin),
		    buf_used(&s->cin) < RELAY_CHUNK ? buf_used(&s->cin) :
		    RELAY_CHUNK, out, sizeof(out), &olen, &end);
		buf_consume(&s->cin, used);
		/* A spool that cannot take more: the rest of the message is
		 * read and dropped, and the answer comes after its end, when
		 * the client listens (closing now would reset a client still
		 * sending, which would never see why). */
		if (olen > 0 && !(s->df.errors & DATA_ERR_TOO_BIG) &&
		    s->spool_err == 0 &&
		    spool_append(&s->spool, out, olen) == -1) {
			s->spool_err = errno;
			if (errno == ENOSPC)
				log_warn(s->id, "spool full limit="
				    "spool_disk_budget size=%zu",
				    s->spool.size);
			else
				log_err(s->id, "spool write failed: %s",
				    strerror(errno));
		}
	}
	if (end) {
		data_end(s);
		return;
	}
	/* Slow drip: after a grace period, the body must keep coming at
	 * min_data_rate on average. */
	elapsed = ev_now() - s->data_t0;
	if (relay_conf->min_data_rate &&
	    elapsed > relay_conf->min_data_rate_grace &&
	    s->df.size * 1000 / elapsed < relay_conf->min_data_rate)
		reply_close(s, "data-rate", "421 4.4.2 Error: data rate too low "
		    "(%llu bytes/s, minimum %zu)", (unsigned long long)
		    (s->df.size * 1000 / elapsed), relay_conf->min_data_rate);
}

/* Stream the dot-stuffed message upstream while its buffer has room. */
static void
data_pump(struct session *s)
{
	char	in[RELAY_CHUNK], out[2 * RELAY_CHUNK + 8];
	ssize_t	n;
	size_t	olen;

	while (s->state == RS_UP_BODY && buf_used(&s->sout) < RELAY_HIGH_WATER) {
		n = spool_read(&s->spool, s->sendoff, in, sizeof(in));
		if (n == -1) {
			log_err(s->id, "spool read failed: %s",
			    strerror(errno));
			reply_close(s, "spool-failure", "451 4.3.0 Error: "
			    "local spool failure, try again later");
			return;
		}
		if (n == 0) {
			olen = data_stuffer_end(&s->ds, out, sizeof(out));
			if (buf_append(&s->sout, out, olen) == -1)
				fatal("%s: no room for end of data", s->id);
			pending_push(s, PEND_UP_DOT);
			session_set_state(s, RS_UP_DOT);
			return;
		}
		if (data_stuffer_feed(&s->ds, in, (size_t)n, out, sizeof(out),
		    &olen) != (size_t)n)
			fatal("%s: stuffer did not take a whole chunk", s->id);
		if (buf_append(&s->sout, out, olen) == -1)
			fatal("%s: upstream buffer overflow", s->id);
		s->sendoff += (size_t)n;
	}
}

/* ------------------------------------------------------------------ */
/* Server replies                                                      */

/* Plaintext behind STARTTLS, behind the server's 220 or before the
 * client's 220 is injection (CVE-2011-0411): it never reaches either side
 * inside TLS, and is never read as a command after it. */
static void
starttls_drop_plaintext(struct session *s, int server_too)
{
	size_t	stray_c, stray_s = server_too ? buf_used(&s->sin) : 0;
	ssize_t	n;

	/* What is still unread in the socket is plaintext too: left there,
	 * it would be taken for the start of the client's handshake. */
	stray_c = buf_used(&s->cin);
	buf_clear(&s->cin);
	while (s->cssl == NULL && stray_c < RELAY_INJECT_DRAIN_MAX &&
	    (n = buf_read_fd(&s->cin, s->cfd)) > 0) {
		stray_c += (size_t)n;
		buf_clear(&s->cin);
	}
	if (server_too)
		buf_clear(&s->sin);
	if (stray_c || stray_s)
		log_warn(s->id, "starttls injection dropped client_bytes=%zu "
		    "server_bytes=%zu", stray_c, stray_s);
}

static void
splice_begin(struct session *s)
{
	starttls_drop_plaintext(s, 1);
	if (s->tls_first) {
		s->sssl = tls_new_upstream(s->sfd, s->tdest,
		    s->tlspol == TLS_OUTBOUND);
		if (s->sssl == NULL) {
			reply_close(s, "tls-internal-error", "421 4.7.0 Error: "
			    "TLS not available, try again later");
			return;
		}
		session_set_state(s, RS_TLS_UP);
		tls_step(s);
		return;
	}
	if (s->tlspol == TLS_INTERCEPT) {
		tls_dest_count(s->tdest, COV_PASS_NOKEY);
		log_info(s->id, "starttls tls=passthrough scanned=no "
		    "reason=no-key server=%s", s->server);
	} else {
		tls_dest_count(s->tdest, COV_PASS_POLICY);
		log_info(s->id, "starttls tls=passthrough scanned=no "
		    "reason=policy");
	}
	session_set_state(s, RS_SPLICE);
}

/*
 * The server said 220 to STARTTLS: does TLS with it come first? Under
 * intercept, unless the server is known to present a certificate whose
 * key is not held (checked again after tls_key_recheck); outbound,
 * always.
 */
static int
starttls_plan(struct session *s)
{
	s->tdest = tls_dest_get(s->server);
	switch (s->tlspol) {
	case TLS_OUTBOUND:
		return 1;
	case TLS_INTERCEPT:
		return !tls_dest_known_keyless(s->tdest, ev_now(),
		    relay_conf->tls_key_recheck);
	default:
		return 0;
	}
}

/*
 * Handle one complete reply: 0 to go on, 1 when the bytes that follow are
 * TLS (STARTTLS accepted), -1 when the session is closing.
 */
static int
server_reply(struct session *s, const char *r, size_t len, int code)
{
	struct smtp_ehlo	e;
	const char		*pqh;
	int			what;

	if (s->state == RS_GREETING) {
		smtp_reply_copy(&s->cout, r, len);
		log_info(s->id, "greeting code=%d", code);
		session_set_state(s, RS_COMMAND);
		return 0;
	}
	if ((what = pending_pop(s)) == -1) {
		if (code == 421) {
			/* The server is giving up on its own (timeout,
			 * shutdown): tell the client the same. */
			smtp_reply_copy(&s->cout, r, len);
			log_info(s->id, "close reason=server-421");
			session_set_state(s, RS_CLOSING);
			return -1;
		}
		reply_close(s, "upstream-unsolicited-reply",
		    "421 4.4.2 Error: mail server protocol error");
		return -1;
	}
	if (what == PEND_UP_DOT && buf_used(&s->sout) > 0) {
		/* An answer to a message the server has not had in full:
		 * relayed, a 2xx would tell the client it was accepted, and
		 * the rest of the body would reach the server as commands. */
		log_warn(s->id, "upstream reply before the end of data code=%d "
		    "unsent=%zu", code, buf_used(&s->sout));
		reply_close(s, "upstream-early-reply",
		    "421 4.4.2 Error: mail server protocol error");
		return -1;
	}
	if (code >= 300 && code < 400 && !(what == VERB_AUTH && code == 334) &&
	    !(what == PEND_UP_DATA && code == 354)) {
		/* A 3xx nobody asked for would put the server into a mode
		 * the relay does not know (e.g. reading a message). */
		reply_close(s, "upstream-unexpected-3xx",
		    "421 4.4.2 Error: mail server protocol error");
		return -1;
	}
	if (what == VERB_EHLO || what == VERB_HELO) {
		s->barrier = 0;
		s->up_pipelining = 0;	/* until an EHLO reply offers it */
	}
	switch (what) {
	case VERB_EHLO:
		if (code / 100 == 2) {
			if (smtp_ehlo_filter_tls(&s->cout, r, len,
			    relay_conf->message_size_limit,
			    s->tlspol == TLS_STRIP, &e) == -1)
				goto full;
			if (e.starttls && s->tlspol == TLS_STRIP) {
				log_warn(s->id, "starttls tls=stripped "
				    "(tls_policy strip): mail to %s travels "
				    "in plaintext", s->server);
				if (!s->strip_counted)
					tls_cov_count(COV_STRIPPED);
				s->strip_counted = 1;
			}
			if (e.hidden)
				log_debug(s->id, "ehlo hidden=%d", e.hidden);
			s->up_pipelining = e.pipelining;
			tx_reset(s);
			return 0;
		}
		break;
	case VERB_HELO:
	case VERB_RSET:
		if (code / 100 == 2)
			tx_reset(s);
		break;
	case VERB_MAIL:
		mail_answered(s, code / 100 == 2);
		break;
	case VERB_RCPT:
		if (code / 100 == 2)
			s->rcpt_ok++;
		rcpt_answered(s, code / 100 == 2, r, len);
		break;
	case VERB_AUTH:
		s->auth_wait = 0;
		s->auth_cont = code == 334;
		break;
	case VERB_STARTTLS:
		if (code == 220 && (s->tls_first = starttls_plan(s))) {
			/* Held until TLS with the server is up. */
			free(s->held_reply);
			while (len > 0 && (r[len - 1] == '\n' ||
			    r[len - 1] == '\r'))
				len--;
			s->held_reply = strndup(r, len);
			return 1;
		}
		if (smtp_reply_copy(&s->cout, r, len) == -1)
			goto full;
		if (code == 220)
			return 1;	/* splice once the 220 is consumed */
		session_set_state(s, RS_COMMAND);
		return 0;
	case VERB_QUIT:
		if (smtp_reply_copy(&s->cout, r, len) == -1)
			goto full;
		session_set_state(s, RS_CLOSING);
		return -1;
	case PEND_SILENT_RSET:
		if (code / 100 != 2)
			log_warn(s->id, "upstream rset code=%d", code);
		return 0;
	case PEND_ENV_RSET:
	case PEND_ENV_MAIL:
	case PEND_ENV_RCPT:
		envelope_answer(s, what, code, r, len);
		return s->state == RS_CLOSING ? -1 : 0;
	case PEND_UP_DATA:
		if (code == 354) {
			data_stuffer_init(&s->ds);
			s->sendoff = 0;
			if ((pqh = prequeue_headers(s->pq)) != NULL &&
			    buf_append(&s->sout, pqh, strlen(pqh)) == -1)
				goto full;
			if (s->prefix != NULL) {
				/* Header lines: never a leading dot, no
				 * stuffing needed. */
				if (buf_append(&s->sout, s->prefix,
				    strlen(s->prefix)) == -1)
					goto full;
				free(s->prefix); s->prefix = NULL;
			}
			session_set_state(s, RS_UP_BODY);
			data_pump(s);
			return 0;
		}
		if (code / 100 == 2) {
			/* Passing it on would tell the client its message was
			 * accepted, and the server has not seen a byte of it. */
			log_warn(s->id, "upstream reply to DATA code=%d", code);
			reply_close(s, "upstream-data-2xx",
			    "421 4.4.2 Error: mail server protocol error");
			return -1;
		}
		log_info(s->id, "message sender=\"%s\" rcpts=%zu size=%zu %s "
		    "upstream_data=%d", s->sender, s->rcpt_ok, s->spool.size,
		    s->verdict, code);
		journal_discard(s->jc, "server-refused-data");
		s->jc = NULL;
		session_message_end(s, r, len, 1);
		tx_reset(s);
		session_set_state(s, RS_COMMAND);
		break;
	case PEND_UP_DOT:
		log_info(s->id, "message sender=\"%s\" rcpts=%zu size=%zu %s "
		    "reply=\"%.*s\"", s->sender, s->rcpt_ok, s->spool.size,
		    s->verdict, (int)(memchr(r, '\r', len) ?
		    (const char *)memchr(r, '\r', len) - r : 3), r);
		if (code / 100 == 2)
			journal_commit(s->jc);
		else
			journal_discard(s->jc, "server-refused");
		s->jc = NULL;
		session_message_end(s, r, len, 1);
		tx_reset(s);
		session_set_state(s, RS_COMMAND);
		break;
	default:
		break;
	}
	if (smtp_reply_copy(&s->cout, r, len) == -1)
		goto full;
	return 0;
full:
	reply_close(s, "client-output-full",
	    "421 4.3.0 Error: internal buffer full, closing");
	return -1;
}

/*
 * The banner waits for the pre-queue connect checks (DNS lists, greet
 * pause); an early talker or a listed client gets the relay's own 554
 * instead of it. 1 while held or closing.
 */
static int
greeting_held(struct session *s)
{
	char	line[512];

	switch (prequeue_greeting(s->pq, s->cfd, buf_used(&s->cin), line,
	    sizeof(line))) {
	case PREQUEUE_WAIT:
		return 1;
	case PREQUEUE_REPLY:
		buf_clear(&s->cin);
		s->nrejects++;
		reply_close(s, "prequeue", "%s", line);
		return 1;
	case PREQUEUE_PASS:
		break;
	}
	return 0;
}

static void
session_server_input(struct session *s)
{
	const char	*why = NULL;
	size_t		 used;
	int		 code, rc;

	if (s->state == RS_SPLICE) {
		if (buf_used(&s->sin) > 0 && buf_append(&s->cout,
		    buf_head(&s->sin), buf_used(&s->sin)) == 0)
			buf_clear(&s->sin);
		return;
	}
	if (s->state == RS_RECONNECT) {
		reconnect_input(s);
		return;
	}
	if (s->state == RS_GREETING && greeting_held(s))
		return;
	while (buf_used(&s->sin) > 0 && s->state != RS_CLOSING) {
		rc = smtp_reply_scan(buf_head(&s->sin), buf_used(&s->sin),
		    relay_conf->max_reply_line, relay_conf->max_reply_lines,
		    &used, &code, &why);
		if (rc == 0)
			break;
		if (rc == -1) {
			log_warn(s->id, "upstream reply error=\"%s\"", why);
			reply_close(s, "upstream-bad-reply",
			    "421 4.4.2 Error: mail server protocol error");
			return;
		}
		rc = server_reply(s, buf_head(&s->sin), used, code);
		if (rc == -1)
			return;
		buf_consume(&s->sin, used);
		if (rc == 1) {
			splice_begin(s);
			return;
		}
	}
	session_client_input(s);
}

/* Feed buffered client bytes to whatever the current state reads. */
static void
session_client_input(struct session *s)
{
	enum rstate	before;

	do {
		before = s->state;
		switch (s->state) {
		case RS_COMMAND:
			client_commands(s);
			break;
		case RS_DATA_BODY:
			data_receive(s);
			break;
		case RS_SPLICE:
			if (buf_used(&s->cin) > 0 && buf_append(&s->sout,
			    buf_head(&s->cin), buf_used(&s->cin)) == 0)
				buf_clear(&s->cin);
			return;
		default:
			/* Held until the relay is ready for it. */
			return;
		}
	} while (s->state != before && buf_used(&s->cin) > 0 && !s->dead);
}

/* ------------------------------------------------------------------ */
/* I/O                                                                 */

static void
session_io_error(struct session *s, int client, ssize_t n)
{
	const char	*side = client ? "client" : "upstream";

	if (n == 0)
		log_debug(s->id, "%s eof", side);
	else
		log_info(s->id, "%s error=\"%s\"", side, strerror(errno));
	if (client) {
		if (n == 0)
			s->ceof = 1;
		else
			s->cclosed = 1;
		return;
	}
	if (n == 0 && s->state == RS_SPLICE)
		s->seof = 1;	/* half-closed: it may still read */
	else
		s->sclosed = 1;
}

/* A whole command line is buffered: the client is owed its reply. */
static int
client_line_waiting(const struct session *s)
{
	return buf_used(&s->cin) > 0 &&
	    memchr(buf_head(&s->cin), '\n', buf_used(&s->cin)) != NULL;
}

/*
 * Passthrough: a side's FIN goes on to the other once every byte it sent
 * before it has been written there; the other side may still answer
 * (Exim sends its last end of data, QUIT and FIN at once). Over when
 * both directions are closed. 1 when the session is gone.
 */
static int
splice_shutdowns(struct session *s)
{
	if (s->ceof && !s->sshut && buf_used(&s->sout) == 0) {
		if (shutdown(s->sfd, SHUT_WR) == -1)
			log_debug(s->id, "shutdown upstream: %s",
			    strerror(errno));
		s->sshut = 1;
	}
	if (s->seof && !s->cshut && buf_used(&s->cout) == 0) {
		if (shutdown(s->cfd, SHUT_WR) == -1)
			log_debug(s->id, "shutdown client: %s", strerror(errno));
		s->cshut = 1;
	}
	if (s->sshut && s->cshut) {
		session_close(s, "passthrough-end");
		return 1;
	}
	return 0;
}

/* Reads and writes go through TLS once a half has it. */
static ssize_t
side_read(struct session *s, int client, struct buf *b)
{
	SSL	*ssl = client ? s->cssl : s->sssl;

	if (ssl != NULL)
		return tls_read(ssl, b, client ? &s->cwant : &s->swant);
	return buf_read_fd(b, client ? s->cfd : s->sfd);
}

static ssize_t
side_write(struct session *s, int client)
{
	SSL	*ssl = client ? s->cssl : s->sssl;
	struct buf *b = client ? &s->cout : &s->sout;

	if (ssl != NULL)
		return tls_write(ssl, b, client ? &s->cwant : &s->swant);
	return buf_write_fd(b, client ? s->cfd : s->sfd);
}

/*
 * The server presents a certificate whose key is not held (or TLS with it
 * failed): the client must do TLS with the server itself. That connection
 * has had TLS with the relay, so a new one is made, from the client's
 * address again, and brought to the same point (banner, EHLO with the
 * client's name, STARTTLS); its 220 then goes to the client and the two
 * are spliced. The client sees one session and the server's own
 * certificate. A reconnect that fails ends in 421, never in plaintext.
 */
static void
reconnect_begin(struct session *s, const char *why)
{
	static const char	quit[] = "QUIT\r\n";
	int			want;

	log_info(s->id, "starttls tls=passthrough scanned=no reason=%s "
	    "server=%s: reconnecting to pass the client's TLS through", why,
	    s->server);
	if (s->sssl != NULL) {
		buf_clear(&s->sout);
		if (buf_append(&s->sout, quit, sizeof(quit) - 1) == 0)
			(void)tls_write(s->sssl, &s->sout, &want);
		tls_free(s->sssl);
		s->sssl = NULL;
	}
	s->swant = 0;
	ev_io_del(relay_loop, &s->sio);
	close(s->sfd);
	buf_clear(&s->sin);
	buf_clear(&s->sout);
	s->sfd = sock_connect(&s->dst, s->transparent ? &s->peer : NULL,
	    s->transparent);
	if (s->sfd == -1) {
		log_warn(s->id, "tls reconnect failed server=%s error=\"%s\"",
		    s->server, strerror(errno));
		tls_dest_count(s->tdest, COV_FAILED);
		reply_close(s, "tls-reconnect-failed", "421 4.7.0 Error: TLS "
		    "not available, try again later");
		return;
	}
	s->sio.fd = s->sfd;
	s->rc_step = RC_CONNECT;
	session_set_state(s, RS_RECONNECT);
}

static void
reconnect_fail(struct session *s, const char *what, int code)
{
	log_warn(s->id, "tls reconnect failed server=%s at=%s code=%d",
	    s->server, what, code);
	tls_dest_count(s->tdest, COV_FAILED);
	reply_close(s, "tls-reconnect-failed", "421 4.7.0 Error: TLS not "
	    "available, try again later");
}

/* The new connection's replies, up to its 220 to STARTTLS. */
static void
reconnect_input(struct session *s)
{
	const char	*why = NULL;
	size_t		 used;
	int		 code, rc;
	char		 line[RELAY_SENDER_MAX + 8];

	while (s->state == RS_RECONNECT && buf_used(&s->sin) > 0) {
		rc = smtp_reply_scan(buf_head(&s->sin), buf_used(&s->sin),
		    relay_conf->max_reply_line, relay_conf->max_reply_lines,
		    &used, &code, &why);
		if (rc == 0)
			return;
		if (rc == -1) {
			reconnect_fail(s, why, 0);
			return;
		}
		buf_consume(&s->sin, used);
		switch (s->rc_step) {
		case RC_GREETING:
			if (code / 100 != 2) {
				reconnect_fail(s, "greeting", code);
				return;
			}
			snprintf(line, sizeof(line), "EHLO %s\r\n",
			    s->helo[0] ? s->helo : "[unknown]");
			(void)buf_append(&s->sout, line, strlen(line));
			s->rc_step = RC_EHLO;
			break;
		case RC_EHLO:
			if (code / 100 != 2) {
				reconnect_fail(s, "ehlo", code);
				return;
			}
			(void)buf_append(&s->sout, "STARTTLS\r\n", 10);
			s->rc_step = RC_STARTTLS;
			break;
		case RC_STARTTLS:
			if (code != 220) {
				reconnect_fail(s, "starttls", code);
				return;
			}
			starttls_drop_plaintext(s, 1);
			reply(s, "%s", s->held_reply ? s->held_reply :
			    "220 2.0.0 Ready to start TLS");
			free(s->held_reply); s->held_reply = NULL;
			log_info(s->id, "tls reconnected server=%s: "
			    "passthrough", s->server);
			tls_dest_count(s->tdest, COV_PASS_NOKEY);
			session_set_state(s, RS_SPLICE);
			return;
		case RC_CONNECT:
			reconnect_fail(s, "connect", 0);
			return;
		}
	}
}

/*
 * STARTTLS under the intercept policy: TLS with the server first (its 220
 * is held), then the server's 220 to the client and TLS with it. If the
 * server's side fails the client gets a temporary error, never a session
 * in plaintext. Both halves then start over (RFC 3207 4.2).
 */
static void
tls_step(struct session *s)
{
	char		 err[256], desc[512];
	const char	*why;
	int		 rc;

	if (s->state == RS_TLS_UP) {
		rc = tls_handshake(s->sssl, 0, &s->swant, err, sizeof(err));
		if (rc == 0)
			return;
		if (rc == -1) {
			log_warn(s->id, "tls upstream failed server=%s "
			    "error=\"%s\"", s->server, err);
			if (s->tlspol != TLS_OUTBOUND) {
				/* The client may still agree with it. */
				reconnect_begin(s, "upstream-tls-failed");
				return;
			}
			tls_dest_count(s->tdest, COV_FAILED);
			reply_close(s, "tls-upstream-failed", "421 4.7.0 Error: "
			    "TLS with the mail server failed, try again later");
			return;
		}
		s->swant = 0;
		tls_describe(s->sssl, desc, sizeof(desc));
		log_info(s->id, "tls upstream %s%s", desc,
		    tls_session_reused(s->sssl) ? " resumed=yes" : "");
		/* Nothing the client sent before our 220 is read later
		 * (taken from the socket while it is still plaintext). */
		starttls_drop_plaintext(s, 0);
		s->cssl = tls_new_downstream(s->cfd, s->sssl, s->tdest,
		    s->tlspol == TLS_OUTBOUND, s->id, &why);
		if (s->cssl == NULL) {
			if (s->tlspol != TLS_OUTBOUND) {
				reconnect_begin(s, why);
				return;
			}
			tls_dest_count(s->tdest, COV_FAILED);
			reply_close(s, "tls-internal-error", "421 4.7.0 Error: "
			    "TLS not available, try again later");
			return;
		}
		reply(s, "%s", s->held_reply ? s->held_reply : "220 2.0.0 Ready "
		    "to start TLS");
		free(s->held_reply); s->held_reply = NULL;
		session_set_state(s, RS_TLS_DOWN);
	}
	if (s->state == RS_TLS_DOWN) {
		/* The 220 goes out in plaintext before any TLS byte. */
		if (buf_used(&s->cout) > 0 &&
		    buf_write_fd(&s->cout, s->cfd) == -1 && errno != EAGAIN) {
			s->cclosed = 1;
			return;
		}
		if (buf_used(&s->cout) > 0)
			return;
		rc = tls_handshake(s->cssl, 1, &s->cwant, err, sizeof(err));
		if (rc == 0)
			return;
		if (rc == -1) {
			log_warn(s->id, "tls client failed error=\"%s\"", err);
			session_close(s, "tls-client-failed");
			return;
		}
		s->cwant = 0;
		tls_describe(s->cssl, desc, sizeof(desc));
		log_info(s->id, "tls client %s%s", desc,
		    tls_session_reused(s->cssl) ? " resumed=yes" : "");
		log_info(s->id, "starttls tls=intercept scanned=yes%s",
		    s->tlspol == TLS_OUTBOUND ? " certificate=minted" : "");
		tls_dest_count(s->tdest, s->tlspol == TLS_OUTBOUND ?
		    COV_OUTBOUND : COV_INTERCEPTED);
		tx_reset(s);
		s->helo[0] = '\0';
		s->up_pipelining = 0;
		session_set_state(s, RS_COMMAND);
	}
}

/* Data TLS has decrypted already is invisible to epoll: take it now. */
static void
tls_drain(struct session *s)
{
	int	i;
	ssize_t	n;

	for (i = 0; i < 8 && !s->dead; i++) {
		if (s->cssl != NULL && s->state != RS_TLS_DOWN && !s->ceof &&
		    tls_pending(s->cssl) > 0 && buf_room(&s->cin) > 0) {
			if ((n = side_read(s, 1, &s->cin)) > 0)
				session_client_input(s);
			else if (n == 0 || errno != EAGAIN)
				session_io_error(s, 1, n);
		} else if (s->sssl != NULL && s->state != RS_TLS_UP &&
		    !s->sclosed && tls_pending(s->sssl) > 0 &&
		    buf_room(&s->sin) > 0) {
			if ((n = side_read(s, 0, &s->sin)) > 0)
				session_server_input(s);
			else if (n == 0 || errno != EAGAIN)
				session_io_error(s, 0, n);
		} else
			return;
	}
}

static void
client_cb(struct ev_io *io, int events)
{
	struct session	*s = io->arg;
	ssize_t		 n;

	if (s->dead)
		return;
	if (s->state == RS_TLS_DOWN) {
		tls_step(s);
		session_update(s);
		return;
	}
	if (events & EV_READ) {
		n = side_read(s, 1, s->state == RS_SPLICE ? &s->sout : &s->cin);
		if (n <= 0 && !(n == -1 && (errno == EAGAIN || errno == EINTR)))
			session_io_error(s, 1, n);
		else if (n > 0)
			session_client_input(s);
	}
	if ((events & EV_WRITE) && !s->cclosed && s->cfd != -1) {
		n = side_write(s, 1);
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			session_io_error(s, 1, n);
	}
	session_update(s);
}

static void
upstream_connected(struct session *s)
{
	if (sock_connect_result(s->sfd) == -1) {
		log_info(s->id, "upstream connect failed server=%s error=\"%s\""
		    " action=reset-client", s->server, strerror(errno));
		sock_reset(s->cfd);
		s->cfd = -1;
		session_close(s, "upstream-unreachable");
		return;
	}
	log_debug(s->id, "upstream connected");
	session_set_state(s, RS_GREETING);
}

static void
server_cb(struct ev_io *io, int events)
{
	struct session	*s = io->arg;
	ssize_t		 n;

	if (s->dead)
		return;
	if (s->state == RS_CONNECTING) {
		upstream_connected(s);
		if (s->dead)
			return;
		session_update(s);
		return;
	}
	if (s->state == RS_TLS_UP) {
		tls_step(s);
		session_update(s);
		return;
	}
	if (s->state == RS_RECONNECT && s->rc_step == RC_CONNECT) {
		if (sock_connect_result(s->sfd) == -1)
			reconnect_fail(s, "connect", 0);
		else
			s->rc_step = RC_GREETING;
		session_update(s);
		return;
	}
	if (events & EV_READ) {
		n = side_read(s, 0, s->state == RS_SPLICE ? &s->cout : &s->sin);
		if (n <= 0 && !(n == -1 && (errno == EAGAIN || errno == EINTR)))
			session_io_error(s, 0, n);
		else if (n > 0)
			session_server_input(s);
	}
	if ((events & EV_WRITE) && s->sfd != -1 && !s->sclosed) {
		n = side_write(s, 0);
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			session_io_error(s, 0, n);
		if (s->state == RS_UP_BODY)
			data_pump(s);
	}
	session_update(s);
}

static void
timer_cb(struct ev_timer *t)
{
	struct session	*s = t->arg;

	if (s->dead)
		return;
	switch (s->state) {
	case RS_CONNECTING:
		log_info(s->id, "upstream connect timeout server=%s "
		    "action=reset-client", s->server);
		sock_reset(s->cfd);
		s->cfd = -1;
		session_close(s, "upstream-timeout");
		return;
	case RS_COMMAND:
		if (s->pcount == 0) {
			reply_close(s, "client-timeout",
			    "421 4.4.2 Error: timeout exceeded");
			break;
		}
		/* FALLTHROUGH */
	case RS_GREETING:
	case RS_STARTTLS:
	case RS_UP_ENVELOPE:
	case RS_UP_DATA:
	case RS_UP_BODY:
	case RS_UP_DOT:
	case RS_QUIT:
		reply_close(s, "upstream-timeout", "421 4.4.2 Error: timeout "
		    "waiting for the mail server");
		break;
	case RS_SCANNING:
		reply_close(s, "scan-timeout", "421 4.3.0 Error: virus scan "
		    "took too long");
		break;
	case RS_DATA_BODY:
		reply_close(s, "client-data-timeout",
		    "421 4.4.2 Error: timeout exceeded");
		break;
	case RS_SPLICE:
		session_close(s, "passthrough-idle-timeout");
		return;
	case RS_TLS_UP:
		reply_close(s, "tls-upstream-timeout", "421 4.7.0 Error: "
		    "TLS with the mail server timed out");
		break;
	case RS_TLS_DOWN:
		session_close(s, "tls-client-timeout");
		return;
	case RS_RECONNECT:
		reconnect_fail(s, "timeout", 0);
		break;
	case RS_CLOSING:
		session_close(s, "client-write-timeout");
		return;
	}
	session_update(s);
}

/* The timeout that matters in the current state (RFC 5321 4.5.3.2). */
static unsigned
session_timeout(const struct session *s)
{
	const struct conf	*c = relay_conf;

	switch (s->state) {
	case RS_CONNECTING:	return c->timeout_connect;
	case RS_GREETING:	return c->timeout_greeting;
	case RS_COMMAND:	return s->pcount ? c->timeout_reply :
				    c->timeout_command;
	case RS_DATA_BODY:	return c->timeout_data_block;
	case RS_SCANNING:	return c->scan_timeout + 30000;
	case RS_UP_ENVELOPE:	return c->timeout_reply;
	case RS_UP_DATA:	return c->timeout_data_init;
	case RS_UP_BODY:	return c->timeout_data_block;
	case RS_UP_DOT:		return c->timeout_data_final;
	case RS_SPLICE:		return c->timeout_passthrough;
	case RS_TLS_UP:
	case RS_TLS_DOWN:	return c->timeout_reply;
	case RS_RECONNECT:	return s->rc_step == RC_CONNECT ?
				    c->timeout_connect : c->timeout_reply;
	case RS_STARTTLS:
	case RS_QUIT:		return c->timeout_reply;
	case RS_CLOSING:	return c->timeout_reply;
	}
	return c->timeout_command;
}

static int
upstream_connecting(const struct session *s)
{
	return s->state == RS_CONNECTING ||
	    (s->state == RS_RECONNECT && s->rc_step == RC_CONNECT);
}

/*
 * After every event: write what can be written, decide whether the
 * session is over, re-arm interest and the timer.
 */
static void
session_update(struct session *s)
{
	int	cmask = 0, smask = 0;
	ssize_t	n;

	if (s->dead)
		return;
	tls_drain(s);
	if (s->dead)
		return;
	if (s->cfd != -1 && !s->cclosed && buf_used(&s->cout) > 0 &&
	    s->state != RS_TLS_DOWN) {
		n = side_write(s, 1);
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			session_io_error(s, 1, n);
	}
	if (s->sfd != -1 && !s->sclosed && !upstream_connecting(s) &&
	    s->state != RS_TLS_UP && buf_used(&s->sout) > 0) {
		n = side_write(s, 0);
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			session_io_error(s, 0, n);
		if (s->state == RS_UP_BODY)
			data_pump(s);
	}

	/* Endings. */
	if (s->cclosed) {
		session_close(s, s->state == RS_SPLICE ? "passthrough-end" :
		    s->state == RS_CLOSING ? "done" : "client-gone");
		return;
	}
	if (s->state == RS_SPLICE && splice_shutdowns(s))
		return;
	/* A client that half-closed still gets the replies it is owed,
	 * those of the commands it sent before its FIN included. */
	if (s->ceof && ((!client_line_waiting(s) &&
	    (s->state == RS_CONNECTING || s->state == RS_GREETING ||
	    (s->state == RS_COMMAND && s->pcount == 0))) ||
	    s->state == RS_DATA_BODY)) {
		session_close(s, "client-gone");
		return;
	}
	if (s->state == RS_CLOSING && buf_used(&s->cout) == 0) {
		session_close(s, "done");
		return;
	}
	if (s->sclosed && s->state != RS_CLOSING) {
		if (s->state == RS_SPLICE) {
			if (buf_used(&s->cout) == 0) {
				session_close(s, "passthrough-end");
				return;
			}
		} else {
			reply_close(s, "upstream-lost", "421 4.4.2 Error: "
			    "lost connection to the mail server");
			session_update(s);
			return;
		}
	}

	if (s->state != RS_CONNECTING && s->state != RS_CLOSING && !s->ceof &&
	    buf_room(&s->cin) > 0 && (s->state != RS_SPLICE ||
	    buf_used(&s->sout) < RELAY_HIGH_WATER))
		cmask |= EV_READ;
	if (buf_used(&s->cout) > 0)
		cmask |= EV_WRITE;
	if (s->sfd != -1 && !s->sclosed) {
		if (upstream_connecting(s))
			smask = EV_WRITE;
		else {
			if (buf_room(&s->sin) > 0 && !s->seof &&
			    (s->state != RS_SPLICE ||
			    buf_used(&s->cout) < RELAY_HIGH_WATER))
				smask |= EV_READ;
			if (buf_used(&s->sout) > 0)
				smask |= EV_WRITE;
		}
	}
	/* TLS may need the other direction to make progress. */
	if (s->state == RS_TLS_DOWN)
		cmask = buf_used(&s->cout) > 0 || s->cwant == 2 ? EV_WRITE :
		    EV_READ;
	else if (s->cssl != NULL && s->cwant)
		cmask |= s->cwant == 2 ? EV_WRITE : EV_READ;
	if (s->state == RS_TLS_UP)
		smask = s->swant == 2 ? EV_WRITE : EV_READ;
	else if (s->sssl != NULL && s->swant && s->sfd != -1 && !s->sclosed)
		smask |= s->swant == 2 ? EV_WRITE : EV_READ;
	if (ev_io_set(relay_loop, &s->cio, cmask) == -1 ||
	    (s->sfd != -1 && ev_io_set(relay_loop, &s->sio, smask) == -1)) {
		log_err(s->id, "epoll: %s", strerror(errno));
		session_close(s, "internal-error");
		return;
	}
	ev_timer_set(relay_loop, &s->timer, session_timeout(s));
}

/* ------------------------------------------------------------------ */
/* Session life                                                        */

static void
session_close(struct session *s, const char *why)
{
	if (s->dead)
		return;
	log_info(s->id, "disconnect reason=%s state=%s commands=%u "
	    "messages=%u rejected=%u duration_ms=%llu", why,
	    rstate_names[s->state], s->ncmds, s->nmsgs, s->nrejects,
	    (unsigned long long)(ev_now() - s->started));
	s->dead = 1;
	prequeue_free(s->pq);
	s->pq = NULL;
	checks_cancel(s->checks);
	s->checks = NULL;
	checks_rcpt_free(s->crcpt);
	s->crcpt = NULL;
	/* Closed with the final dot sent and no answer read: the server may
	 * well have taken the message (a server queues at the dot, before
	 * its 250). A journal that misses a delivered message is worse than
	 * one that holds a message delivered nowhere: the copy is kept, with
	 * a warning naming the session. */
	if (s->jc != NULL && s->state == RS_UP_DOT) {
		log_warn(s->id, "journal copy kept: no answer to the final dot "
		    "was read, the server may or may not have the message");
		journal_commit(s->jc);
	} else
		journal_discard(s->jc, "session-closed");
	s->jc = NULL;
	ev_timer_del(relay_loop, &s->timer);
	if (s->cssl != NULL) {
		tls_free(s->cssl);
		s->cssl = NULL;
	}
	if (s->sssl != NULL) {
		tls_free(s->sssl);
		s->sssl = NULL;
	}
	free(s->held_reply); s->held_reply = NULL;
	if (s->cfd != -1) {
		/* After our last reply: unread input at close would turn it
		 * into a reset, and the reply could be lost with it. */
		if (s->state == RS_CLOSING && !s->cclosed)
			sock_drain(s->cfd, RELAY_INJECT_DRAIN_MAX);
		ev_io_del(relay_loop, &s->cio);
		close(s->cfd);
		s->cfd = -1;
	}
	if (s->sfd != -1) {
		ev_io_del(relay_loop, &s->sio);
		close(s->sfd);
		s->sfd = -1;
	}
	if (s->peer.ss_family != AF_UNSPEC)
		rl_release(&s->peer, ev_now(),
		    relay_conf->max_connections_per_minute);
	s->next_dead = relay_dead;
	relay_dead = s;
	relay_nsessions--;
}

/* Free closed sessions once no callback of this batch can see them. */
void
relay_reap(void *arg)
{
	struct session	*s;
	int		 i;

	(void)arg;
	while ((s = relay_dead) != NULL) {
		relay_dead = s->next_dead;
		buf_free(&s->cin);
		buf_free(&s->cout);
		buf_free(&s->sin);
		buf_free(&s->sout);
		tx_reset(s);
		for (i = 0; i < RELAY_MAIL_WAIT; i++)
			free(s->mail_wait[i]);
		free(s);
	}
}

/* A pre-queue lookup has landed: go on where the session waited. */
static void
prequeue_woke(void *arg)
{
	struct session	*s = arg;

	if (s->dead)
		return;
	if (s->state == RS_CONNECTING || s->state == RS_GREETING) {
		if (!greeting_held(s) && s->state == RS_GREETING &&
		    buf_used(&s->sin) > 0)
			session_server_input(s);
	} else if (s->state == RS_COMMAND)
		session_client_input(s);
	session_update(s);
}

/* A session with its buffers and spool, counted, not yet connected. */
static struct session *
session_alloc(int transparent, int cfd, const struct sockaddr_storage *peer,
    const struct sockaddr_storage *dst)
{
	struct session	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->score = NAN;
	relay_idseq++;
	snprintf(s->id, sizeof(s->id), "%08x",
	    (unsigned)(relay_idseq * 2654435761u) ^ (unsigned)getpid());
	s->transparent = transparent;
	s->cfd = cfd;
	s->sfd = -1;
	s->started = ev_now();
	buf_init(&s->cin, RELAY_BUF_MAX);
	buf_init(&s->cout, RELAY_BUF_MAX);
	buf_init(&s->sin, RELAY_BUF_MAX);
	buf_init(&s->sout, RELAY_BUF_MAX);
	spool_init(&s->spool, relay_conf->spool_dir,
	    relay_conf->spool_memory_max);
	ev_io_init(&s->cio, cfd, client_cb, s);
	ev_io_init(&s->sio, -1, server_cb, s);
	ev_timer_init(&s->timer, timer_cb, s);
	s->state = RS_CONNECTING;
	relay_nsessions++;

	sock_format(peer, s->client, sizeof(s->client));
	sock_format(dst, s->server, sizeof(s->server));
	s->dst = *dst;
	s->tlspol = tls_policy_for(dst, peer);
	return s;
}

/*
 * A connection the listener accepted (accept.c): peer is the client, local
 * the original destination (transparent) or the listener's address;
 * upstream, a connection to the server made before the accept, or -1.
 */
void
relay_session_new(int transparent, int listen_port, int cfd,
    const struct sockaddr_storage *peer, const struct sockaddr_storage *local,
    int upstream, const char *id)
{
	const struct sockaddr_storage	*dst;
	struct session			*s;
	const struct sockaddr_in	*a = (const void *)local;
	enum rl_verdict			 rl;
	int				 sfd = upstream;

	dst = transparent ? local : &relay_conf->explicit_upstream.a[0];
	if ((s = session_alloc(transparent, cfd, peer, dst)) == NULL) {
		log_err(NULL, "session: out of memory");
		sock_reset(cfd);
		return;
	}
	/* Connected before the client's SYN was let through: the session
	 * keeps the id those log lines used. */
	if (id != NULL)
		snprintf(s->id, sizeof(s->id), "%s", id);
	log_info(s->id, "connect client=%s server=%s mode=%s%s", s->client,
	    s->server, transparent ? "transparent" : "explicit",
	    sfd != -1 ? " upstream=connected-before-accept" : "");

	s->peer = *peer;
	s->inside = cidr_list_match(relay_conf->inside_networks.net,
	    relay_conf->inside_networks.n, peer);
	rl = rl_admit(peer, s->started, relay_conf->max_sessions_per_client,
	    relay_conf->max_connections_per_minute);
	if (rl != RL_OK) {
		/* Not counted: release() must not undo what admit refused. */
		s->peer.ss_family = AF_UNSPEC;
		if (sfd != -1)
			close(sfd);
		log_info(s->id, "refused client=%s reason=%s", s->client,
		    rl == RL_TOO_MANY ? "max_sessions_per_client" :
		    "max_connections_per_minute");
		reply(s, "421 4.7.0 Error: too many connections from your "
		    "address, try again later");
		session_set_state(s, RS_CLOSING);
		session_update(s);
		return;
	}

	/* A connection straight to the listener's own port was not diverted:
	 * relaying it would connect to ourselves. */
	if (sfd != -1) {
		s->sfd = sfd;
		s->sio.fd = sfd;
		session_set_state(s, RS_GREETING);
		session_update(s);
		return;
	}
	if (transparent && ntohs(a->sin_port) == listen_port) {
		log_warn(s->id, "refused: not a diverted connection "
		    "(destination is the listener itself)");
		sock_reset(s->cfd);
		s->cfd = -1;
		session_close(s, "not-diverted");
		return;
	}
	s->pq = prequeue_new(s->id, peer, prequeue_woke, s);
	s->crcpt = checks_rcpt_new(s->id, peer, s->inside, prequeue_woke, s);
	s->sfd = sock_connect(dst, transparent ? peer : NULL, transparent);
	if (s->sfd == -1) {
		log_info(s->id, "upstream connect failed server=%s error=\"%s\""
		    " action=reset-client", s->server, strerror(errno));
		sock_reset(s->cfd);
		s->cfd = -1;
		session_close(s, "upstream-unreachable");
		return;
	}
	s->sio.fd = s->sfd;
	session_update(s);
}

/*
 * The whole-session fuzzer's way in (tests/fuzz/fuzz_session.c): a session
 * over two descriptors that are already connected, cfd to the client and
 * sfd to the server, as an explicit-mode session whose upstream connect
 * has just succeeded (the server's greeting comes next). No address, so
 * no per-client limits. sporkd never calls it.
 */
int
relay_session_attach(int cfd, int sfd)
{
	struct sockaddr_storage		 none;
	struct session			*s;

	memset(&none, 0, sizeof(none));
	none.ss_family = AF_UNSPEC;
	if ((s = session_alloc(0, cfd, &none, &none)) == NULL)
		return -1;
	s->sfd = sfd;
	s->sio.fd = sfd;
	session_set_state(s, RS_GREETING);
	session_update(s);
	return 0;
}

/* ------------------------------------------------------------------ */

static void
relay_sweep(struct ev_timer *t)
{
	rl_sweep(ev_now(), relay_conf->max_connections_per_minute);
	ev_timer_set(relay_loop, t, RELAY_SWEEP_MS);
}

int
relay_init(struct ev_loop *loop, const struct conf *conf)
{
	relay_loop = loop;
	relay_conf = conf;
	message_end_init();
	rl_set_v6_prefix((unsigned)conf->client_v6_prefix);
	spool_budgets(conf->spool_memory_budget, conf->spool_disk_budget);
	ev_timer_init(&relay_sweep_timer, relay_sweep, NULL);
	ev_timer_set(loop, &relay_sweep_timer, RELAY_SWEEP_MS);
	ev_set_hook(loop, relay_reap, NULL);
	return 0;
}

size_t
relay_sessions(void)
{
	return relay_nsessions;
}
