/* SPDX-License-Identifier: MIT */
/*
 * The whole-session fuzzer: one input drives both halves of a real relay
 * session (src/smtp/relay.c on src/base/ev.c), in the pattern of Dovecot's
 * fuzz-smtp-server. The session is made over two socketpairs with
 * relay_session_attach(); the harness holds the far ends and plays the
 * client and the server, each writing the chunks the input gives it, and
 * runs the event loop after every chunk until nothing moves. Scanning is a
 * stub backend on the same loop: clean, or a virus when the input says.
 *
 * Input: byte 0 flags, byte 1 the virus mask (scan k finds a virus if bit
 * k % 8 is set), then chunks: a header byte (bit 7: 0 client, 1 server;
 * bits 0-6: length) and that many bytes. Length 0 half-closes that side.
 *
 * Invariants checked on what crossed the wires, besides ASan, UBSan and
 * LeakSanitizer:
 *   - everything the relay sends the server (up to a STARTTLS splice) is
 *     CRLF lines with no bare CR, bare LF or NUL, so no server can find an
 *     end of data elsewhere than the relay did;
 *   - no more messages reach the server than the client ended with
 *     CRLF.CRLF: nothing after an ambiguous end becomes a second message;
 *   - every message that reaches the server is one the scanner called
 *     clean, byte for byte (after unstuffing and the scan header), in order;
 *   - the client gets 2xx for a message only if the server said that very
 *     2xx to the end of a message the relay delivered;
 *   - once both peers have gone, the session is gone too.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.h"
#include "conf.h"
#include "ev.h"
#include "fuzz.h"
#include "log.h"
#include "policy.h"
#include "relay.h"
#include "scanner.h"
#include "tls.h"

#define F_NORMALIZE	0x01	/* bare_newline normalize */
#define F_STRIP		0x02	/* tls_policy strip */
#define F_NOSCAN	0x04	/* scan_enable no */
#define F_SLOWSCAN	0x08	/* scans end only after one more chunk */
#define F_TIGHT		0x10	/* small limits */
#define F_SPOOLFILE	0x20	/* bodies spill to the spool file early */

#define SETTLE_MAX	100000	/* loop turns before "it never settles" */
#define SCANS_MAX	64
#define REPLIES_MAX	4096
#define BODIES_MAX	64

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

struct stream {
	char	*p;
	size_t	 len, cap;
};

struct scan_job {
	scan_done_cb	*cb;
	void		*arg;
	char		*content;
	size_t		 len;
	int		 virus;
	int		 age;		/* chunks delivered since submit */
};

struct reply {
	int		 code;
	const char	*p;
	size_t		 len;
};

static struct conf		 fz_conf;
static struct ev_loop		*fz_loop;
static struct scan_job		*fz_job;	/* one session: one job */
static unsigned			 fz_nscans;
static uint8_t			 fz_vmask;
static int			 fz_slow;
static struct stream		 fz_clean[SCANS_MAX];	/* clean contents */
static unsigned			 fz_nclean;
static struct stream		 fz_c, fz_d, fz_s, fz_u;	/* the wires */

static void
st_add(struct stream *s, const void *p, size_t n)
{
	size_t	ncap;

	if (n == 0)
		return;
	if (s->len + n > s->cap) {
		ncap = s->cap ? s->cap : 4096;
		while (ncap < s->len + n)
			ncap *= 2;
		if ((s->p = realloc(s->p, ncap)) == NULL)
			abort();
		s->cap = ncap;
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
}

static void
st_free(struct stream *s)
{
	free(s->p); s->p = NULL;
	s->len = s->cap = 0;
}

/* ------------------------------------------------------------------ */
/* The stub scanner: runs on the loop, never calls back from submit.   */

static struct scan_job *
stub_submit(struct scan_backend *b, int fd, size_t size, unsigned flags,
    scan_done_cb *cb, void *arg)
{
	struct scan_job	*j;
	ssize_t		 n;

	(void)b;
	(void)flags;
	FUZZ_CHECK(fz_job == NULL, "a second scan while one is running");
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->content = malloc(size ? size : 1)) == NULL)
		abort();
	n = pread(fd, j->content, size, 0);
	FUZZ_CHECK(n == (ssize_t)size, "spool fd gave %zd of %zu bytes", n,
	    size);
	j->len = size;
	j->cb = cb;
	j->arg = arg;
	j->virus = (fz_vmask >> (fz_nscans % 8)) & 1;
	fz_nscans++;
	fz_job = j;
	return j;
}

static void
stub_cancel(struct scan_backend *b, struct scan_job *j)
{
	(void)b;
	FUZZ_CHECK(j == fz_job, "cancel of a job that is not running");
	free(j->content);
	free(j);
	fz_job = NULL;
}

static void
stub_result(int virus, struct scan_result *r)
{
	memset(r, 0, sizeof(*r));
	r->verdict = virus ? SCAN_VIRUS : SCAN_CLEAN;
	snprintf(r->name, sizeof(r->name), "%s", virus ?
	    "Fuzz-Test-Signature" : "");
	snprintf(r->engine, sizeof(r->engine), "fuzz-stub");
}

/* Finish the running scan if it is due; 1 if one finished. */
static int
stub_finish(int force)
{
	struct scan_job		*j = fz_job;
	struct scan_result	 r;

	if (j == NULL || (!force && fz_slow && j->age < 1))
		return 0;
	fz_job = NULL;
	stub_result(j->virus, &r);
	if (!j->virus && fz_nclean < SCANS_MAX) {
		fz_clean[fz_nclean].len = 0;
		st_add(&fz_clean[fz_nclean++], j->content, j->len);
	}
	j->cb(j->arg, &r);
	free(j->content);
	free(j);
	relay_reap(NULL);
	return 1;
}

static struct scan_backend fz_scanner = {
	.name = "fuzz-stub",
	.submit = stub_submit,
	.cancel = stub_cancel,
};

/* ------------------------------------------------------------------ */
/* Driving the loop                                                    */

static size_t
drain(int fd, struct stream *s)
{
	char	b[16384];
	ssize_t	n;
	size_t	got = 0;

	if (fd == -1)
		return 0;
	while ((n = read(fd, b, sizeof(b))) > 0) {
		st_add(s, b, (size_t)n);
		got += (size_t)n;
	}
	return got;
}

/* Run the loop until no descriptor has an event and no byte moves. */
static void
settle(int cfd, int sfd, int force_scan)
{
	int	i, n;
	size_t	moved;

	for (i = 0; i < SETTLE_MAX; i++) {
		n = ev_run_once(fz_loop, 0);
		FUZZ_CHECK(n >= 0, "epoll: %s", strerror(errno));
		moved = drain(cfd, &fz_d) + drain(sfd, &fz_u);
		if (n == 0 && moved == 0 && !stub_finish(force_scan))
			return;
	}
	FUZZ_CHECK(0, "the relay never settles");
}

static void
feed(int fd, const uint8_t *p, size_t n, struct stream *rec, int cfd,
    int sfd)
{
	ssize_t	w;
	int	waited = 0;

	while (n > 0) {
		if ((w = write(fd, p, n)) > 0) {
			st_add(rec, p, (size_t)w);
			p += w;
			n -= (size_t)w;
			continue;
		}
		/* The relay stopped reading (a full buffer, or it has closed):
		 * let it run once; what still cannot be written was never
		 * sent. */
		if (w == -1 && errno == EAGAIN && !waited++) {
			settle(cfd, sfd, 0);
			continue;
		}
		return;
	}
}

/* ------------------------------------------------------------------ */
/* Reading the wires afterwards                                        */

/* Split server output into replies as a client would (CR before LF
 * optional); stops at the first malformed one, where the relay closes. */
static size_t
split_replies(const struct stream *s, struct reply *out, size_t max)
{
	size_t		 pos = 0, start, n = 0, ll;
	const char	*l, *nl;
	int		 code;

	while (pos < s->len && n < max) {
		start = pos;
		code = -1;
		for (;;) {
			l = s->p + pos;
			nl = memchr(l, '\n', s->len - pos);
			if (nl == NULL)
				return n;
			ll = (size_t)(nl - l);
			if (ll > 0 && l[ll - 1] == '\r')
				ll--;
			pos += (size_t)(nl - l) + 1;
			if (ll < 3 || l[0] < '2' || l[0] > '5' ||
			    l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9')
				return n;
			if (code == -1)
				code = (l[0] - '0') * 100 + (l[1] - '0') * 10 +
				    (l[2] - '0');
			else if (code != (l[0] - '0') * 100 + (l[1] - '0') * 10
			    + (l[2] - '0'))
				return n;
			if (ll == 3 || l[3] == ' ')
				break;
			if (l[3] != '-')
				return n;
		}
		out[n].code = code;
		out[n].p = s->p + start;
		out[n++].len = pos - start;
	}
	return n;
}

/* Same text, line ends aside. */
static int
same_reply(const struct reply *a, const struct reply *b)
{
	size_t	i = 0, j = 0;

	for (;;) {
		while (i < a->len && a->p[i] == '\r')
			i++;
		while (j < b->len && b->p[j] == '\r')
			j++;
		if (i == a->len || j == b->len)
			return i == a->len && j == b->len;
		if (a->p[i++] != b->p[j++])
			return 0;
	}
}

static const char *
find(const char *p, size_t len, const char *what, size_t wlen)
{
	return memmem(p, len, what, wlen);
}

/* How many ends of data the client's bytes hold at most. */
static size_t
client_ends(const struct stream *c)
{
	size_t		 n = 0, i, b;

	for (i = 0; i + 3 <= c->len; i++) {
		if (memcmp(c->p + i, ".\r\n", 3) != 0 || i == 0 ||
		    c->p[i - 1] != '\n')
			continue;
		if (i >= 2 && c->p[i - 2] == '\r') {
			n++;
			continue;
		}
		/* A command ended by a bare LF (normalize mode): "DATA\n",
		 * then ".\r\n" ends an empty message. */
		for (b = i - 1; b > 0 && c->p[b - 1] != '\n'; b--)
			;
		if (i - 1 - b >= 4 && strncasecmp(c->p + b, "data", 4) == 0)
			n++;
	}
	return n;
}

struct up_msg {
	const char	*body;		/* stuffed, CRLF lines, no final dot */
	size_t		 len;
	int		 end_reply;	/* index into the server's replies, or -1 */
};

static void
check_canonical(const char *p, size_t len, const char *what)
{
	size_t	i;

	for (i = 0; i < len; i++)
		FUZZ_CHECK(p[i] != '\r' && p[i] != '\n' && p[i] != '\0',
		    "%s to the server holds a bare CR, bare LF or NUL at %zu",
		    what, i);
}

/* What the relay sent before it gave up: whole lines, then a partial one
 * (which may stop between CR and LF). */
static void
check_partial(const char *p, size_t len)
{
	const char	*eol;

	while ((eol = find(p, len, "\r\n", 2)) != NULL) {
		check_canonical(p, (size_t)(eol - p), "a line");
		len -= (size_t)(eol + 2 - p);
		p = eol + 2;
	}
	if (len > 0 && p[len - 1] == '\r')
		len--;
	check_canonical(p, len, "a partial line");
}

/*
 * Read what the relay sent the server as the server did: lines, the nth
 * command answered by the nth reply after the greeting, a body after DATA
 * answered 354, a line after 334 an AUTH response, nothing readable after
 * STARTTLS answered 220.
 */
static size_t
upstream_messages(const struct reply *sr, size_t nsr, struct up_msg *m,
    size_t max)
{
	const char	*u = fz_u.p, *eol, *end;
	size_t		 pos = 0, item = 0, nm = 0, ll;
	int		 code, authcont = 0;

	while (pos < fz_u.len) {
		eol = find(u + pos, fz_u.len - pos, "\r\n", 2);
		if (eol == NULL) {
			check_partial(u + pos, fz_u.len - pos);
			break;
		}
		ll = (size_t)(eol - (u + pos));
		check_canonical(u + pos, ll, "a command line");
		code = item + 1 < nsr ? sr[item + 1].code : -1;
		if (authcont) {
			authcont = code == 334;
		} else if (ll == 4 && strncasecmp(u + pos, "DATA", 4) == 0 &&
		    code == 354) {
			item++;
			pos += ll + 2;
			if (fz_u.len - pos >= 3 && memcmp(u + pos, ".\r\n", 3) ==
			    0)
				end = u + pos - 2;
			else if ((end = find(u + pos, fz_u.len - pos,
			    "\r\n.\r\n", 5)) == NULL) {
				/* Cut short: the relay gave up mid-body. */
				check_partial(u + pos, fz_u.len - pos);
				break;
			}
			FUZZ_CHECK(nm < max, "too many messages");
			m[nm].body = u + pos;
			m[nm].len = (size_t)(end + 2 - (u + pos));
			m[nm].end_reply = item + 1 < nsr ? (int)item + 1 : -1;
			nm++;
			pos = (size_t)(end + 5 - u);
			item++;
			continue;
		} else if (ll == 8 && strncasecmp(u + pos, "STARTTLS", 8) == 0 &&
		    code == 220) {
			break;		/* spliced: what follows is the client's */
		} else if (ll >= 4 && strncasecmp(u + pos, "AUTH", 4) == 0 &&
		    (ll == 4 || u[pos + 4] == ' ') && code == 334) {
			authcont = 1;
		}
		pos += ll + 2;
		item++;
	}
	return nm;
}

/* Each body line: no bare CR/LF/NUL; a leading dot was stuffed. */
static void
unstuff(const struct up_msg *m, struct stream *out)
{
	const char	*p = m->body, *end = m->body + m->len, *eol;
	size_t		 ll;

	while (p < end) {
		eol = find(p, (size_t)(end - p), "\r\n", 2);
		FUZZ_CHECK(eol != NULL, "a body line without CRLF");
		ll = (size_t)(eol - p);
		check_canonical(p, ll, "a body line");
		if (ll > 0 && p[0] == '.') {
			FUZZ_CHECK(ll > 1, "a lone dot inside a body");
			p++;
			ll--;
		}
		st_add(out, p, ll);
		st_add(out, "\r\n", 2);
		p = eol + 2;
	}
}

static void
check_wires(int scanning)
{
	static struct reply	sr[REPLIES_MAX], dr[REPLIES_MAX];
	struct up_msg		m[BODIES_MAX];
	struct policy_decision	d;
	struct scan_result	r;
	struct stream		body = { 0 };
	size_t			nsr, ndr, nm, i, hl, next = 0;
	unsigned		k = 0;
	int			j;
	static const char	ours[] = "354 End data with <CR><LF>.<CR><LF>\r\n";

	nsr = split_replies(&fz_s, sr, REPLIES_MAX);
	ndr = split_replies(&fz_d, dr, REPLIES_MAX);
	nm = upstream_messages(sr, nsr, m, BODIES_MAX);
	if (getenv("FUZZ_SESSION_LOG") != NULL) {
		fprintf(stderr, "replies from the server %zu, to the client "
		    "%zu, messages upstream %zu\n", nsr, ndr, nm);
		fuzz_dump("client", fz_c.p, fz_c.len);
		fuzz_dump("to the client", fz_d.p, fz_d.len);
		fuzz_dump("server", fz_s.p, fz_s.len);
		fuzz_dump("to the server", fz_u.p, fz_u.len);
	}

	FUZZ_CHECK(nm <= client_ends(&fz_c), "%zu messages reached the server, "
	    "the client ended at most %zu", nm, client_ends(&fz_c));

	stub_result(0, &r);
	policy_decide(&fz_conf, &r, 1, &d);
	hl = strlen(d.header);
	for (i = 0; i < nm && scanning; i++) {
		body.len = 0;
		unstuff(&m[i], &body);
		FUZZ_CHECK(body.len >= hl && memcmp(body.p, d.header, hl) == 0,
		    "message %zu reached the server without the scan header", i);
		/* An empty message has no buffer to compare. */
		while (k < fz_nclean && (fz_clean[k].len != body.len - hl ||
		    (body.len > hl && memcmp(fz_clean[k].p, body.p + hl,
		    body.len - hl) != 0)))
			k++;
		if (k == fz_nclean)
			fuzz_dump("upstream body", body.p, body.len);
		FUZZ_CHECK(k < fz_nclean, "message %zu reached the server but "
		    "was never scanned clean", i);
		k++;
	}
	st_free(&body);

	/* A server imitating the relay's own 354 would blur the check. */
	if (find(fz_s.p ? fz_s.p : "", fz_s.len, "354 End data", 12) != NULL)
		return;
	for (i = 0; i + 1 < ndr; i++) {
		if (dr[i].len != sizeof(ours) - 1 ||
		    memcmp(dr[i].p, ours, sizeof(ours) - 1) != 0 ||
		    dr[i + 1].code / 100 != 2)
			continue;
		for (j = -1; next < nm; next++)
			if (m[next].end_reply >= 0 &&
			    sr[m[next].end_reply].code / 100 == 2 &&
			    same_reply(&sr[m[next].end_reply], &dr[i + 1])) {
				j = (int)next++;
				break;
			}
		if (j == -1)
			fuzz_dump("client got", dr[i + 1].p, dr[i + 1].len);
		FUZZ_CHECK(j != -1, "the client got 2xx for a message the "
		    "server did not accept");
	}
}

/* ------------------------------------------------------------------ */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	err[256];

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	log_init("fuzz", 0, getenv("FUZZ_SESSION_LOG") != NULL);
	log_set_level(LOG_LVL_DEBUG);
	conf_defaults(&fz_conf);
	if (tls_init(&fz_conf, err, sizeof(err)) == -1)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int	cp[2], sp[2], cfd, sfd, cshut = 0, sshut = 0, server, scanning;
	size_t	i, n;
	uint8_t	flags;

	if (size < 2)
		return 0;
	flags = data[0];
	fz_vmask = data[1];
	fz_slow = (flags & F_SLOWSCAN) != 0;
	fz_nscans = fz_nclean = 0;
	fz_c.len = fz_d.len = fz_s.len = fz_u.len = 0;

	conf_defaults(&fz_conf);
	snprintf(fz_conf.spool_dir, sizeof(fz_conf.spool_dir), "/tmp");
	fz_conf.bare_newline = flags & F_NORMALIZE ? BARE_NORMALIZE :
	    BARE_REJECT;
	fz_conf.tls_policy = flags & F_STRIP ? TLS_STRIP : TLS_PASSTHROUGH;
	if (flags & F_TIGHT) {
		fz_conf.max_recipients = 2;
		fz_conf.message_size_limit = 300;
		fz_conf.max_command_line = 64;
		fz_conf.max_text_line = 80;
		fz_conf.max_header_size = 120;
		fz_conf.max_reply_line = 80;
		fz_conf.max_reply_lines = 4;
	}
	if (flags & F_SPOOLFILE)
		fz_conf.spool_memory_max = 64;
	scanning = !(flags & F_NOSCAN);

	if ((fz_loop = ev_new()) == NULL)
		abort();
	relay_init(fz_loop, &fz_conf);
	checks_init(fz_loop, &fz_conf, scanning ? &fz_scanner : NULL);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    cp) == -1 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sp) == -1)
		abort();
	cfd = cp[0];
	sfd = sp[0];
	FUZZ_CHECK(relay_session_attach(cp[1], sp[1]) == 0, "attach");
	settle(cfd, sfd, 0);

	for (i = 2; i < size; i += n) {
		server = data[i] & 0x80;
		n = data[i++] & 0x7f;
		if (n > size - i)
			n = size - i;
		if (n == 0) {
			if (server && !sshut)
				shutdown(sfd, SHUT_WR);
			else if (!server && !cshut)
				shutdown(cfd, SHUT_WR);
			if (server)
				sshut = 1;
			else
				cshut = 1;
		} else if (server ? !sshut : !cshut)
			feed(server ? sfd : cfd, data + i, n,
			    server ? &fz_s : &fz_c, cfd, sfd);
		if (fz_job != NULL)
			fz_job->age++;
		settle(cfd, sfd, 0);
	}

	/* Both peers leave; the session must follow. */
	settle(cfd, sfd, 1);
	shutdown(cfd, SHUT_WR);
	shutdown(sfd, SHUT_WR);
	settle(cfd, sfd, 1);
	check_wires(scanning);
	close(cfd);
	close(sfd);
	settle(-1, -1, 1);
	FUZZ_CHECK(relay_sessions() == 0, "a session outlived both peers");
	FUZZ_CHECK(fz_job == NULL, "a scan outlived its session");
	ev_free(fz_loop);
	fz_loop = NULL;
	for (i = 0; i < fz_nclean; i++)
		st_free(&fz_clean[i]);
	return 0;
}
