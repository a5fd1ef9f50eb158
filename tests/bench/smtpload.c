/* SPDX-License-Identifier: MIT */
/*
 * smtpload: the benchmark's SMTP client. One process, one epoll loop, many
 * sessions; it plays a well-behaved ESMTP client (EHLO, then PIPELINING as
 * RFC 2920 allows when the server offers it) and measures what the bench
 * needs and smtp-source cannot give: pipelined throughput, the time from
 * writing the final "\r\n.\r\n" to reading the complete reply, command
 * round trips, and many sessions held idle. Every message is different
 * (a unique first body line and a slice of a random pool), so a scanner's
 * clean-file cache never turns a scan into a hash lookup.
 *
 *   smtpload load [-s SESS] [-C OPENING] [-l BYTES] [-m MSGS | -T SECS]
 *                 [-W SECS] [-P] [-r RATE] [-k PERCONN] [-S [-R] [-A CAFILE]]
 *                 [-o LATFILE] HOST:PORT
 *   smtpload rtt  [-n ROUNDS] HOST:PORT
 *   smtpload hold [-s SESS] [-C OPENING] [-T MAXSECS] [-S [-R] [-A CAFILE]]
 *                 HOST:PORT
 *
 * Sessions are opened at most OPENING (default 8) at a time: a session
 * counts as opening until the greeting arrives. A burst of connects would
 * overflow a small listen queue (ClamSMTP listens with a backlog of 5)
 * and leave the rest waiting for SYN retransmits, seconds apart; real
 * senders do not arrive in the same millisecond either.
 *
 * load: SESS sessions are opened (greeting, EHLO) and then all start
 *   sending messages of BYTES body bytes, until MSGS are done or for SECS
 *   seconds: the window opens -W seconds (default 1) after the start and
 *   only replies that arrive inside it count. Opening first keeps the
 *   set-up of many sessions out of the figure. -P turns
 *   pipelining off (one command per round trip). -k PERCONN: each
 *   connection carries PERCONN messages, then QUITs and the session
 *   connects again (through the same OPENING limit), so that connection
 *   set-up and the TLS handshake are part of the figure; default 0, one
 *   connection per session for the whole run. -r RATE paces the load:
 *   messages start at most RATE a second over all sessions, in slots
 *   1/RATE s apart (a session ready to send waits for the next free
 *   slot), so that latency is measured at an offered load below what the
 *   server can take. A server that falls behind gets the slots it
 *   missed back to back, up to a round of the sessions (older ones are
 *   dropped), and rate= says how far below RATE it stayed. Default: no pacing, each
 *   session sends its next message at once. Prints one line of
 *   key=value: msgs, secs, rate, lat_p50_us, lat_p99_us, ...
 * -S: STARTTLS (RFC 3207) on every connection, with OpenSSL: EHLO,
 *   STARTTLS, the handshake, EHLO again, then the rest as usual; a server
 *   that does not offer STARTTLS fails the session. The certificate is not
 *   checked unless -A CAFILE is given (then it must chain to CAFILE; the
 *   name is not checked). -R resumes TLS sessions: the client keeps the
 *   last session the server gave it (for TLS 1.3, from its session
 *   tickets, through the new-session callback) and offers a copy of it
 *   on every new connection (see tls_new_session). Adds tls_handshakes, tls_resumed, hs_p50_us, hs_p99_us
 *   (220 to STARTTLS -> handshake done, client's view), tls_proto.
 * rtt: one session, ROUNDS x (EHLO, MAIL, RCPT, RSET) in lockstep; prints
 *   the median round trip of each command and of EHLO+MAIL+RCPT together.
 * hold: opens SESS sessions (greeting and EHLO answered), prints
 *   "held=N failed=F", keeps them idle until SIGTERM, SIGINT or
 *   MAXSECS, then closes them.
 *
 * Exit status 0 unless a session saw an unexpected reply or error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define IN_MAX		8192	/* one reply line never exceeds this here */
#define POOL_LINES	65536
#define LINE_LEN	76	/* payload characters per body line */
#define MAX_EVENTS	512

enum mode { M_LOAD, M_RTT, M_HOLD };

enum st {
	S_IDLE,			/* not yet connecting */
	S_CONNECT,
	S_GREETING,
	S_EHLO,
	S_STARTTLS,		/* waiting for 220 to STARTTLS */
	S_HANDSHAKE,		/* TLS handshake in progress */
	S_MAIL,			/* lockstep: waiting for MAIL's reply */
	S_RCPT,
	S_DATA,			/* waiting for 354 (pipelined: all three) */
	S_BODY,			/* writing the message */
	S_DOT,			/* waiting for the final reply */
	S_HELD,
	S_QUIT,
	S_DONE,
};

struct sess {
	int		 fd;
	enum st		 st;
	unsigned	 id;
	unsigned	 nmsg;
	unsigned	 conn_msgs;	/* messages on this connection */
	int		 pipelining;	/* server offered it */
	int		 starttls;	/* server offered it */
	int		 want;		/* replies still expected in this step */
	int		 was_up;	/* counted in nup once */
	SSL		*ssl;		/* after STARTTLS */
	uint64_t	 t_hs;		/* handshake started */
	char		 in[IN_MAX];
	size_t		 inlen;
	char		*out;
	size_t		 outlen, outoff, outcap;
	uint64_t	 t_dot;		/* when the last byte of ".\r\n" left */
	int		 wantout;	/* EPOLLOUT registered */
	int		 rd_wantw;	/* SSL_read waits for writability */
};

static enum mode	 mode;
static int		 nsess = 1;
static size_t		 body_len = 10240;
static long		 max_msgs = -1;
static double		 run_secs = -1, warm_secs = 1, hold_max = 300;
static int		 no_pipelining;
static long		 per_conn;	/* -k: messages per connection */
static int		 use_tls, tls_resume;	/* -S, -R */
static const char	*ca_file;	/* -A */
static SSL_CTX		*tls_ctx;
static unsigned char	*tls_sess;	/* the last session the server gave, */
static int		 tls_sess_len;	/* DER */
static long		 tls_handshakes, tls_resumed, conns;
static char		 tls_proto[32] = "none";
static uint32_t		*hs;		/* handshake times, microseconds */
static size_t		 nhs, hscap;
static unsigned		*cq;		/* sessions waiting to connect */
static size_t		 cq_head, cq_len;
static const char	*latfile;
static long		 rounds = 1000;
static struct sockaddr_in dst;
static int		 ep;
static struct sess	*ss;
static char		*pool;
static size_t		 pool_len;
static uint64_t		 t_start, t_win0, t_win1;
static long		 msgs_started, msgs_done, msgs_in_window;
static long		 errors, connected, opening, failed, finished, nup;
static int		 max_opening = 8;	/* -C */
static double		 pace_rate;	/* -r: messages a second, 0: none */
static uint64_t		 pace_ns;	/* between two slots */
static uint64_t		 pace_next;	/* the next free slot */
static unsigned		*pq;		/* sessions waiting for a slot */
static size_t		 pq_head, pq_len;
static int		 pq_turn;	/* pace_release() starts a waiting one */
static int		 window_open;
static uint32_t		*lat;		/* microseconds, window only */
static size_t		 nlat, latcap;
static volatile sig_atomic_t stop;
static uint64_t		 rng = 0x9e3779b97f4a7c15ull;

static int	flush_out(struct sess *);

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void
die(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fputs("smtpload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static long		 dot_4xx;	/* 4xx replies to the final dot */

static void
serr(struct sess *s, const char *fmt, ...)
{
	va_list	ap;

	if (errors < 5) {
		va_start(ap, fmt);
		fprintf(stderr, "smtpload: session %u: ", s->id);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	errors++;
}

static void
make_pool(void)
{
	static const char	abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
				    "opqrstuvwxyz0123456789+/";
	size_t			i, j;
	char			*p;

	pool_len = (size_t)POOL_LINES * (LINE_LEN + 2);
	if ((pool = malloc(pool_len)) == NULL)
		die("out of memory");
	p = pool;
	for (i = 0; i < POOL_LINES; i++) {
		for (j = 0; j < LINE_LEN; j++)
			*p++ = abc[xorshift() % 64];
		*p++ = '\r';
		*p++ = '\n';
	}
}

static void
out_reserve(struct sess *s, size_t more)
{
	size_t	need = s->outlen + more;

	if (need <= s->outcap)
		return;
	s->outcap = need + 1024;
	if ((s->out = realloc(s->out, s->outcap)) == NULL)
		die("out of memory");
}

static void
out_add(struct sess *s, const char *p, size_t n)
{
	out_reserve(s, n);
	memcpy(s->out + s->outlen, p, n);
	s->outlen += n;
}

static void
out_printf(struct sess *s, const char *fmt, ...)
{
	char	tmp[1024];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	out_add(s, tmp, (size_t)n);
}

/* The whole message: headers, a unique first line, then pool lines. */
static void
out_message(struct sess *s)
{
	size_t	left, n, off;

	out_printf(s, "From: <bench@client.example.test>\r\n"
	    "To: <sink@example.test>\r\n"
	    "Subject: spork bench %u.%u\r\n"
	    "Message-ID: <%u.%u.%llx@client.example.test>\r\n"
	    "\r\n", s->id, s->nmsg, s->id, s->nmsg,
	    (unsigned long long)xorshift());
	out_printf(s, "message %u.%u %016llx\r\n", s->id, s->nmsg,
	    (unsigned long long)xorshift());
	left = body_len;
	while (left > 0) {
		/* a random whole-line offset, then as much as fits */
		off = (size_t)(xorshift() % POOL_LINES) * (LINE_LEN + 2);
		n = pool_len - off;
		if (n > left)
			n = left;
		if (n > 1 << 20)
			n = 1 << 20;
		out_add(s, pool + off, n);
		left -= n;
	}
	/* end on a line boundary, then the dot */
	if (s->outlen < 2 || s->out[s->outlen - 1] != '\n' ||
	    s->out[s->outlen - 2] != '\r')
		out_add(s, "\r\n", 2);
	out_add(s, ".\r\n", 3);
}

static void
ep_mod(struct sess *s, int wantout)
{
	struct epoll_event	ev;

	if (s->wantout == wantout)
		return;
	ev.events = EPOLLIN | (wantout ? EPOLLOUT : 0);
	ev.data.ptr = s;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
	s->wantout = wantout;
}

static void
cq_push(unsigned id)
{
	cq[(cq_head + cq_len++) % (size_t)nsess] = id;
}

static unsigned
cq_pop(void)
{
	unsigned	id = cq[cq_head];

	cq_head = (cq_head + 1) % (size_t)nsess;
	cq_len--;
	return id;
}

/* Closes the connection, not the session. */
static void
sess_drop(struct sess *s)
{
	if (s->ssl != NULL) {
		/*
		 * close_notify, best effort: without it OpenSSL marks the
		 * session not resumable.
		 */
		(void)SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd != -1) {
		close(s->fd);
		s->fd = -1;
	}
	if (s->st == S_CONNECT || s->st == S_GREETING)
		opening--;
	if (s->st >= S_GREETING && s->st < S_DONE)
		connected--;
}

static void
sess_close(struct sess *s)
{
	sess_drop(s);
	s->st = S_DONE;
	finished++;
}

/* -k: the next connection of this session waits for its turn to open. */
static void
sess_reconnect(struct sess *s)
{
	sess_drop(s);
	s->inlen = s->outlen = s->outoff = 0;
	s->pipelining = s->starttls = s->wantout = s->rd_wantw = 0;
	s->conn_msgs = 0;
	s->st = S_IDLE;
	cq_push(s->id);
}

static void
sess_fail(struct sess *s, const char *what)
{
	serr(s, "%s", what);
	if (s->st == S_CONNECT || s->st == S_GREETING || s->st == S_EHLO ||
	    s->st == S_STARTTLS || s->st == S_HANDSHAKE)
		failed++;
	sess_close(s);
}

/* ------------------------------------------------------------- tls */

static void
tls_die(const char *what)
{
	char	buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	die("%s: %s", what, buf);
}

/*
 * The client's session cache: one slot, the latest session the target
 * gave (one target per run). For TLS 1.3 OpenSSL calls this for every
 * session ticket, after the handshake; for TLS 1.2 once the handshake is
 * done. Kept serialized, and every connection offers its own copy, as an
 * MTA's session cache does (Postfix's smtp client through tlsmgr): OpenSSL
 * lets one SSL_SESSION resume a TLS 1.3 connection only once, and servers
 * (Postfix, OpenSSL's defaults) send no new ticket on a resumed handshake,
 * so reusing the object itself would resume every other connection only.
 */
static int
tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
	unsigned char	*p;
	int		 len;

	(void)ssl;
	if (!tls_resume || (len = i2d_SSL_SESSION(sess, NULL)) <= 0)
		return 0;
	free(tls_sess);
	if ((tls_sess = malloc((size_t)len)) == NULL)
		die("out of memory");
	p = tls_sess;
	tls_sess_len = i2d_SSL_SESSION(sess, &p);
	return 0;		/* OpenSSL keeps its reference */
}

static void
tls_setup(void)
{
	if ((tls_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		tls_die("SSL_CTX_new");
	/* flush_out may retry with more bytes queued behind the first */
	SSL_CTX_set_mode(tls_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	    SSL_MODE_ENABLE_PARTIAL_WRITE);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(tls_ctx, ca_file, NULL) != 1)
			tls_die(ca_file);
		SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
	} else
		SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(tls_ctx, tls_new_session);
}

/* Drives the handshake; when it is done, EHLO again (RFC 3207). */
static void
tls_step(struct sess *s)
{
	char	msg[300], buf[256];
	int	rc, e, one = 1;

	ERR_clear_error();
	if ((rc = SSL_connect(s->ssl)) != 1) {
		e = SSL_get_error(s->ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			ep_mod(s, e == SSL_ERROR_WANT_WRITE);
			return;
		}
		if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
			snprintf(buf, sizeof(buf), "%s", errno ?
			    strerror(errno) : "connection closed");
		else
			ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		snprintf(msg, sizeof(msg), "TLS handshake: %s", buf);
		sess_fail(s, msg);
		return;
	}
	tls_handshakes++;
	if (SSL_session_reused(s->ssl))
		tls_resumed++;
	snprintf(tls_proto, sizeof(tls_proto), "%s", SSL_get_version(s->ssl));
	if (nhs == hscap) {
		hscap = hscap ? hscap * 2 : 4096;
		if ((hs = realloc(hs, hscap * sizeof(*hs))) == NULL)
			die("out of memory");
	}
	hs[nhs++] = (uint32_t)((now_ns() - s->t_hs) / 1000);
	/* what the server offered before TLS no longer counts */
	s->pipelining = s->starttls = 0;
	out_add(s, "EHLO client.example.test\r\n", 26);
	s->st = S_EHLO;
	s->want = 1;
	if (flush_out(s) == -1)
		return;
	/*
	 * A TLS 1.3 server writes its session ticket, then the EHLO reply.
	 * If the ticket's ACK is delayed (the EHLO write just now put the
	 * socket in "ping-pong" mode) and the server has Nagle on, as
	 * Postfix's smtpd does, the reply waits for the delayed-ACK timer:
	 * about 40 ms per connection. Out of ping-pong mode, reading the
	 * ticket ACKs it at once.
	 */
	(void)setsockopt(s->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

static void
tls_start(struct sess *s)
{
	if ((s->ssl = SSL_new(tls_ctx)) == NULL ||
	    SSL_set_fd(s->ssl, s->fd) != 1)
		tls_die("SSL_new");
	if (tls_resume && tls_sess != NULL) {
		const unsigned char	*p = tls_sess;
		SSL_SESSION		*sess;

		if ((sess = d2i_SSL_SESSION(NULL, &p, tls_sess_len)) == NULL ||
		    SSL_set_session(s->ssl, sess) != 1)
			tls_die("SSL_set_session");
		SSL_SESSION_free(sess);
	}
	s->t_hs = now_ns();
	tls_step(s);
}

/* read(2) or SSL_read: bytes, 0 at the end, -1 with errno (EAGAIN: wait) */
static ssize_t
sess_read(struct sess *s, char *p, size_t n)
{
	int	r;

	if (s->ssl == NULL)
		return read(s->fd, p, n);
	s->rd_wantw = 0;
	ERR_clear_error();
	if ((r = SSL_read(s->ssl, p, (int)n)) > 0)
		return r;
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_WANT_WRITE:
		s->rd_wantw = 1;
		ep_mod(s, 1);
		/* FALLTHROUGH */
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			errno = EPIPE;
		return -1;
	default:
		errno = EPROTO;
		return -1;
	}
}

/* write(2) or SSL_write, the same way */
static ssize_t
sess_write(struct sess *s, const char *p, size_t n)
{
	int	r;

	if (s->ssl == NULL)
		return write(s->fd, p, n);
	/*
	 * A retry after WANT_WRITE passes at least as many bytes as the
	 * first try did: the queue only grows until it is written.
	 */
	if (n > 65536)
		n = 65536;
	ERR_clear_error();
	if ((r = SSL_write(s->ssl, p, (int)n)) > 0)
		return r;
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_WRITE:
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			errno = EPIPE;
		return -1;
	default:
		errno = EPROTO;
		return -1;
	}
}

/* Writes what is queued; returns -1 if the session died. */
static int
flush_out(struct sess *s)
{
	ssize_t	n;

	while (s->outoff < s->outlen) {
		n = sess_write(s, s->out + s->outoff, s->outlen - s->outoff);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ep_mod(s, 1);
				return 0;
			}
			if (errno == EINTR)
				continue;
			sess_fail(s, strerror(errno));
			return -1;
		}
		s->outoff += (size_t)n;
	}
	s->outoff = s->outlen = 0;
	ep_mod(s, 0);
	if (s->st == S_BODY) {
		s->t_dot = now_ns();
		s->st = S_DOT;
		s->want = 1;
	}
	return 0;
}

static int
more_messages(void)
{
	uint64_t	t = now_ns();

	if (stop)
		return 0;
	if (max_msgs >= 0)
		return msgs_started < max_msgs;
	return t < t_win1;
}

/* -r: whether a message may start now; if not, s waits in pq for
 * pace_release(). A slot more than a round of the sessions late is not
 * made up for. */
static int
pace_take(struct sess *s)
{
	uint64_t	t;

	if (pace_rate <= 0)
		return 1;
	t = now_ns();
	if ((pq_len > 0 && !pq_turn) || pace_next > t) {
		pq[(pq_head + pq_len++) % (size_t)nsess] = s->id;
		return 0;
	}
	if (pace_next + pace_ns * (uint64_t)nsess < t)
		pace_next = t;
	pace_next += pace_ns;
	return 1;
}

static void
start_tx(struct sess *s)
{
	if (!more_messages() ||
	    (per_conn > 0 && s->conn_msgs >= (unsigned long)per_conn)) {
		out_add(s, "QUIT\r\n", 6);
		s->st = S_QUIT;
		s->want = 1;
		return;
	}
	if (!pace_take(s)) {
		s->st = S_HELD;
		return;
	}
	msgs_started++;
	s->nmsg++;
	s->conn_msgs++;
	out_printf(s, "MAIL FROM:<bench%u@client.example.test>\r\n", s->id);
	if (s->pipelining && !no_pipelining) {
		out_printf(s, "RCPT TO:<sink%u@example.test>\r\nDATA\r\n",
		    s->nmsg);
		s->st = S_DATA;
		s->want = 3;
	} else {
		s->st = S_MAIL;
		s->want = 1;
	}
}

static void
record_latency(struct sess *s)
{
	uint64_t	t = now_ns();

	msgs_done++;
	if (max_msgs < 0 && (t < t_win0 || t >= t_win1))
		return;
	msgs_in_window++;
	if (nlat == latcap) {
		latcap = latcap ? latcap * 2 : 65536;
		if ((lat = realloc(lat, latcap * sizeof(*lat))) == NULL)
			die("out of memory");
	}
	lat[nlat++] = (uint32_t)((t - s->t_dot) / 1000);
}

/* One complete reply (code in `code`, whole text in line) arrived. */
static void
on_reply(struct sess *s, int code)
{
	switch (s->st) {
	case S_GREETING:
		if (code != 220) {
			sess_fail(s, "greeting not 220");
			return;
		}
		opening--;
		out_add(s, "EHLO client.example.test\r\n", 26);
		s->st = S_EHLO;
		s->want = 1;
		break;
	case S_EHLO:
		if (code != 250) {
			sess_fail(s, "EHLO not 250");
			return;
		}
		if (use_tls && s->ssl == NULL) {
			if (!s->starttls) {
				sess_fail(s, "STARTTLS not offered");
				return;
			}
			out_add(s, "STARTTLS\r\n", 10);
			s->st = S_STARTTLS;
			s->want = 1;
			break;
		}
		conns++;
		if (!s->was_up) {
			s->was_up = 1;
			nup++;
		}
		s->st = S_HELD;
		if (mode == M_HOLD || !window_open)
			return;		/* load: all start together */
		start_tx(s);
		break;
	case S_STARTTLS:
		if (code != 220) {
			sess_fail(s, "STARTTLS not 220");
			return;
		}
		s->st = S_HANDSHAKE;	/* on_readable starts it */
		return;
	case S_MAIL:
		if (code != 250) {
			sess_fail(s, "MAIL not 250");
			return;
		}
		out_printf(s, "RCPT TO:<sink%u@example.test>\r\n", s->nmsg);
		s->st = S_RCPT;
		s->want = 1;
		break;
	case S_RCPT:
		if (code != 250) {
			sess_fail(s, "RCPT not 250");
			return;
		}
		out_add(s, "DATA\r\n", 6);
		s->st = S_DATA;
		s->want = 1;
		break;
	case S_DATA:
		if (--s->want > 0) {
			if (code != 250) {
				sess_fail(s, "MAIL/RCPT not 250");
				return;
			}
			return;
		}
		if (code != 354) {
			sess_fail(s, "DATA not 354");
			return;
		}
		out_message(s);
		s->st = S_BODY;
		break;
	case S_DOT:
		if (code != 250) {
			serr(s, "end of message got %d", code);
			if (code / 100 == 4)
				dot_4xx++;
		}
		else
			record_latency(s);
		start_tx(s);
		break;
	case S_QUIT:
		if (per_conn > 0 && more_messages())
			sess_reconnect(s);
		else
			sess_close(s);
		return;
	default:
		sess_fail(s, "unexpected reply");
		return;
	}
	flush_out(s);
}

static void
on_readable(struct sess *s)
{
	char		*nl, *line;
	ssize_t		 n;
	size_t		 len;
	int		 code;

	/* TLS: until SSL_read wants more, as OpenSSL may hold what it read */
	do {
		n = sess_read(s, s->in + s->inlen, sizeof(s->in) - s->inlen);
		if (n == 0) {
			sess_fail(s, "connection closed by server");
			return;
		}
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			sess_fail(s, strerror(errno));
			return;
		}
		s->inlen += (size_t)n;
		line = s->in;
		while ((nl = memchr(line, '\n',
		    s->inlen - (size_t)(line - s->in)))) {
			len = (size_t)(nl - line) + 1;
			if (s->st == S_EHLO && len >= 14 &&
			    !strncasecmp(line + 4, "PIPELINING", 10))
				s->pipelining = 1;
			if (s->st == S_EHLO && len >= 13 &&
			    !strncasecmp(line + 4, "STARTTLS", 8) &&
			    (line[12] == '\r' || line[12] == '\n'))
				s->starttls = 1;
			if (len < 4 || line[3] != '-') {
				code = atoi(line);
				line = nl + 1;
				on_reply(s, code);
				if (s->fd == -1)
					return;
				if (s->st == S_HANDSHAKE)
					goto handshake;
				continue;
			}
			line = nl + 1;
		}
		len = s->inlen - (size_t)(line - s->in);
		if (len == sizeof(s->in)) {
			sess_fail(s, "reply line too long");
			return;
		}
		memmove(s->in, line, len);
		s->inlen = len;
	} while (s->ssl != NULL);
	return;
handshake:
	/* plaintext behind the 220 would be injected into the TLS session */
	if (line != s->in + s->inlen) {
		sess_fail(s, "data after the 220 to STARTTLS");
		return;
	}
	s->inlen = 0;
	tls_start(s);
}

static void
sess_connect(struct sess *s)
{
	struct epoll_event	ev;
	int			one = 1;

	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd == -1)
		die("socket: %s (raise the open files limit)", strerror(errno));
	(void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, (struct sockaddr *)&dst, sizeof(dst)) == -1 &&
	    errno != EINPROGRESS) {
		s->st = S_CONNECT;
		opening++;
		sess_fail(s, strerror(errno));
		return;
	}
	s->st = S_CONNECT;
	opening++;
	ev.events = EPOLLOUT;
	ev.data.ptr = s;
	s->wantout = 1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
}

static void
on_event(struct sess *s, uint32_t events)
{
	int		err = 0;
	socklen_t	len = sizeof(err);

	if (s->st == S_CONNECT) {
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0) {
			sess_fail(s, err ? strerror(err) : "connect");
			return;
		}
		connected++;
		s->st = S_GREETING;
		s->want = 1;
		ep_mod(s, 0);
		return;
	}
	if (s->st == S_HANDSHAKE) {
		tls_step(s);
		return;
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ||
	    (s->rd_wantw && (events & EPOLLOUT))) {
		on_readable(s);
		if (s->fd == -1)
			return;
	}
	if ((events & EPOLLOUT) && s->outoff < s->outlen)
		flush_out(s);
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t
pct(const uint32_t *v, size_t n, double p)
{
	size_t	i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i];
}

/* -r: starts the waiting sessions whose slots have come (and, once no
 * more messages are due, all of them: a QUIT takes no slot); the time to
 * the next slot (NULL: no session waits). */
static struct timespec *
pace_release(struct timespec *ts)
{
	uint64_t	t, wait;
	struct sess	*s;

	if (pq_len == 0)
		return NULL;
	t = now_ns();
	while (pq_len > 0 && (pace_next <= t || !more_messages())) {
		s = &ss[pq[pq_head]];
		pq_head = (pq_head + 1) % (size_t)nsess;
		pq_len--;
		if (s->fd == -1 || s->st != S_HELD)
			continue;
		pq_turn = 1;
		start_tx(s);
		pq_turn = 0;
		flush_out(s);
		t = now_ns();
	}
	if (pq_len == 0)
		return NULL;
	wait = pace_next > t ? pace_next - t : 0;
	ts->tv_sec = (time_t)(wait / 1000000000u);
	ts->tv_nsec = (long)(wait % 1000000000u);
	return ts;
}

static void
run_loop(void)
{
	struct epoll_event	evs[MAX_EVENTS];
	struct timespec		ts, *tp;
	int			i, n, reported = 0;
	uint64_t		t, t_held = 0;

	for (;;) {
		while (cq_len > 0 && opening < max_opening && !stop)
			sess_connect(&ss[cq_pop()]);
		t = now_ns();
		if (mode == M_HOLD) {
			if (!reported && cq_len == 0 && opening == 0) {
				int	held = 0;

				for (i = 0; i < nsess; i++)
					held += ss[i].st == S_HELD;
				if (held + failed >= nsess ||
				    finished + held >= nsess) {
					printf("held=%d failed=%ld\n", held,
					    failed);
					fflush(stdout);
					reported = 1;
					t_held = t;
				}
			}
			if (stop || (reported && t - t_held >
			    (uint64_t)(hold_max * 1e9)))
				break;
			if (t - t_start > (uint64_t)((hold_max + 120) * 1e9))
				break;
		} else {
			if (!window_open && (nup + failed >= nsess ||
			    t - t_start > 15000000000ull)) {
				if (max_msgs < 0) {
					t_win0 = t + (uint64_t)(warm_secs * 1e9);
					t_win1 = t_win0 +
					    (uint64_t)(run_secs * 1e9);
				} else
					t_win0 = t;
				window_open = 1;
				for (i = 0; i < nsess; i++)
					if (ss[i].st == S_HELD) {
						start_tx(&ss[i]);
						flush_out(&ss[i]);
					}
			}
			if (finished == nsess)
				break;
			/* a server that stalls must not stall the bench */
			if (window_open && max_msgs < 0 &&
			    t > t_win1 + 30 * 1000000000ull)
				break;
			if (stop)
				break;
		}
		if (pace_rate > 0) {
			/* slots are finer than epoll_wait's milliseconds */
			tp = pace_release(&ts);
			if (tp == NULL || tp->tv_sec > 0 ||
			    tp->tv_nsec > 100000000) {
				ts.tv_sec = 0;
				ts.tv_nsec = 100000000;	/* 100 ms */
				tp = &ts;
			}
			n = epoll_pwait2(ep, evs, MAX_EVENTS, tp, NULL);
		} else
			n = epoll_wait(ep, evs, MAX_EVENTS, 100);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			struct sess *s = evs[i].data.ptr;

			if (s->fd != -1)
				on_event(s, evs[i].events);
		}
	}
}

static void
report_load(void)
{
	struct rusage	ru;
	double		secs;
	uint64_t	t_end = now_ns();
	long		cpu_ms = 0;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000L +
		    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000L;

	if (!window_open)
		secs = 1e-9;	/* nobody got going: rate 0 */
	else if (max_msgs >= 0)
		secs = (double)(t_end - t_win0) / 1e9;
	else
		secs = (double)(t_win1 - t_win0) / 1e9;
	if (nlat > 0)
		qsort(lat, nlat, sizeof(*lat), cmp_u32);
	if (nhs > 0)
		qsort(hs, nhs, sizeof(*hs), cmp_u32);
	/* conns and the tls_ counts cover the whole run, like total */
	printf("sessions=%d msgs=%ld secs=%.3f rate=%.1f lat_min_us=%u "
	    "lat_p50_us=%u lat_p90_us=%u lat_p99_us=%u lat_max_us=%u "
	    "pipelining=%s errors=%ld failed=%ld up=%ld total=%ld "
	    "client_cpu_ms=%ld conns=%ld per_conn=%ld tls=%s "
	    "tls_handshakes=%ld tls_resumed=%ld hs_p50_us=%u hs_p99_us=%u "
	    "tls_proto=%s dot_4xx=%ld\n", nsess, msgs_in_window,
	    secs, (double)msgs_in_window / secs, pct(lat, nlat, 0),
	    pct(lat, nlat, .5), pct(lat, nlat, .9), pct(lat, nlat, .99),
	    pct(lat, nlat, 1), no_pipelining ? "off" :
	    (nsess > 0 && ss[0].pipelining ? "on" : "not-offered"), errors,
	    failed, nup, msgs_done, cpu_ms, conns, per_conn,
	    !use_tls ? "off" : tls_resume ? "resume" : "on", tls_handshakes,
	    tls_resumed, pct(hs, nhs, .5), pct(hs, nhs, .99), tls_proto,
	    dot_4xx);
	if (latfile != NULL) {
		FILE	*fp = fopen(latfile, "w");
		size_t	 i;

		if (fp == NULL)
			die("%s: %s", latfile, strerror(errno));
		for (i = 0; i < nlat; i++)
			fprintf(fp, "%u\n", lat[i]);
		fclose(fp);
	}
}

/* ------------------------------------------------------------- rtt */

static int
rtt_reply(int fd, char *buf, size_t cap, size_t *have)
{
	char	*nl, *line;
	ssize_t	 n;
	size_t	 len;

	for (;;) {
		line = buf;
		while ((nl = memchr(line, '\n', *have - (size_t)(line - buf)))) {
			len = (size_t)(nl - line) + 1;
			if (len < 4 || line[3] != '-') {
				int	code = atoi(line);

				line = nl + 1;
				memmove(buf, line, *have - (size_t)(line - buf));
				*have -= (size_t)(line - buf);
				return code;
			}
			line = nl + 1;
		}
		if (*have == cap)
			die("rtt: reply too long");
		n = read(fd, buf + *have, cap - *have);
		if (n <= 0)
			die("rtt: connection lost");
		*have += (size_t)n;
	}
}

static void
run_rtt(void)
{
	static const char *const cmds[] = { "EHLO client.example.test\r\n",
	    "MAIL FROM:<rtt@client.example.test>\r\n",
	    "RCPT TO:<sink@example.test>\r\n", "RSET\r\n" };
	static const char *const names[] = { "ehlo", "mail", "rcpt", "rset" };
	static const int	expect[] = { 250, 250, 250, 250 };
	char			 buf[65536];
	size_t			 have = 0;
	uint32_t		*v[4], *all;
	long			 r;
	int			 fd, c, one = 1;
	uint64_t		 t0;

	for (c = 0; c < 4; c++)
		if ((v[c] = calloc((size_t)rounds, sizeof(uint32_t))) == NULL)
			die("out of memory");
	if ((all = calloc((size_t)rounds * 3, sizeof(uint32_t))) == NULL)
		die("out of memory");
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die("socket: %s", strerror(errno));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == -1)
		die("connect: %s", strerror(errno));
	if (rtt_reply(fd, buf, sizeof(buf), &have) != 220)
		die("rtt: greeting not 220");
	for (r = 0; r < rounds; r++) {
		for (c = 0; c < 4; c++) {
			size_t	len = strlen(cmds[c]);

			t0 = now_ns();
			if (write(fd, cmds[c], len) != (ssize_t)len)
				die("rtt: write: %s", strerror(errno));
			if (rtt_reply(fd, buf, sizeof(buf), &have) != expect[c])
				die("rtt: %s not %d", names[c], expect[c]);
			v[c][r] = (uint32_t)((now_ns() - t0) / 1000);
		}
		for (c = 0; c < 3; c++)
			all[r * 3 + c] = v[c][r];
	}
	(void)!write(fd, "QUIT\r\n", 6);
	(void)rtt_reply(fd, buf, sizeof(buf), &have);
	close(fd);
	printf("rounds=%ld", rounds);
	for (c = 0; c < 4; c++) {
		qsort(v[c], (size_t)rounds, sizeof(uint32_t), cmp_u32);
		printf(" %s_p50_us=%u", names[c], pct(v[c], (size_t)rounds, .5));
	}
	qsort(all, (size_t)rounds * 3, sizeof(uint32_t), cmp_u32);
	printf(" cmd_p25_us=%u cmd_p50_us=%u cmd_p75_us=%u cmd_p99_us=%u\n",
	    pct(all, (size_t)rounds * 3, .25), pct(all, (size_t)rounds * 3, .5),
	    pct(all, (size_t)rounds * 3, .75), pct(all, (size_t)rounds * 3, .99));
}

/* ------------------------------------------------------------- main */

static size_t
parse_size(const char *s)
{
	char		*end;
	unsigned long	 v = strtoul(s, &end, 10);

	switch (*end) {
	case 'k': case 'K': v <<= 10; break;
	case 'm': case 'M': v <<= 20; break;
	case '\0': break;
	default: die("bad size %s", s);
	}
	return v;
}

static void
usage(void)
{
	fprintf(stderr, "usage: smtpload load [-s SESS] [-C OPENING] [-l BYTES] "
	    "[-m MSGS | -T SECS] [-W SECS] [-P] [-r RATE]\n"
	    "                     [-k PERCONN] [-S [-R] [-A CAFILE]] "
	    "[-o LATFILE] HOST:PORT\n"
	    "       smtpload rtt [-n ROUNDS] HOST:PORT\n"
	    "       smtpload hold [-s SESS] [-C OPENING] [-T MAXSECS] "
	    "[-S [-R] [-A CAFILE]] HOST:PORT\n"
	    "  -k PERCONN  messages per connection, then QUIT and connect "
	    "again\n"
	    "  -r RATE     start at most RATE (1 or more) messages a second, "
	    "all sessions together\n"
	    "  -S          STARTTLS on every connection (certificate not "
	    "checked)\n"
	    "  -R          resume TLS sessions (offer the last one the server "
	    "gave)\n"
	    "  -A CAFILE   check the server's certificate against CAFILE\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct rlimit	rl;
	char		*host, *colon, *end;
	int		 ch, i;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "load"))
		mode = M_LOAD;
	else if (!strcmp(argv[1], "rtt"))
		mode = M_RTT;
	else if (!strcmp(argv[1], "hold"))
		mode = M_HOLD;
	else
		usage();
	argv++;
	argc--;
	while ((ch = getopt(argc, argv, "s:l:m:T:W:Po:n:C:k:r:SRA:")) != -1) {
		switch (ch) {
		case 's': nsess = atoi(optarg); break;
		case 'l': body_len = parse_size(optarg); break;
		case 'm': max_msgs = atol(optarg); break;
		case 'T': run_secs = hold_max = atof(optarg); break;
		case 'W': warm_secs = atof(optarg); break;
		case 'P': no_pipelining = 1; break;
		case 'o': latfile = optarg; break;
		case 'n': rounds = atol(optarg); break;
		case 'C': max_opening = atoi(optarg); break;
		case 'k': per_conn = atol(optarg); break;
		case 'r':
			pace_rate = strtod(optarg, &end);
			if (end == optarg || *end != '\0')
				usage();
			break;
		case 'S': use_tls = 1; break;
		case 'R': tls_resume = 1; break;
		case 'A': ca_file = optarg; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || nsess < 1 || max_opening < 1 ||
	    per_conn < 0 ||
	    !(pace_rate == 0 || (pace_rate >= 1 && pace_rate <= 1e9)) ||
	    (pace_rate > 0 && mode != M_LOAD) ||
	    ((tls_resume || ca_file) && !use_tls) ||
	    (use_tls && mode == M_RTT) || (per_conn > 0 && mode != M_LOAD))
		usage();
	host = argv[optind];
	if ((colon = strrchr(host, ':')) == NULL)
		usage();
	*colon = '\0';
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &dst.sin_addr) != 1)
		die("bad IPv4 address %s", host);
	rng ^= (uint64_t)getpid() << 32 ^ now_ns();

	if (mode == M_RTT) {
		run_rtt();
		return 0;
	}
	if (use_tls)
		tls_setup();
	if (mode == M_LOAD && max_msgs < 0 && run_secs < 0)
		max_msgs = nsess;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)nsess + 64) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	make_pool();
	if ((ss = calloc((size_t)nsess, sizeof(*ss))) == NULL)
		die("out of memory");
	if ((cq = calloc((size_t)nsess, sizeof(*cq))) == NULL ||
	    (pq = calloc((size_t)nsess, sizeof(*pq))) == NULL)
		die("out of memory");
	if (pace_rate > 0)
		pace_ns = (uint64_t)(1e9 / pace_rate);
	for (i = 0; i < nsess; i++) {
		ss[i].fd = -1;
		ss[i].id = (unsigned)i;
		cq_push((unsigned)i);
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	t_start = now_ns();
	/* opened by run_loop once every session is up */
	t_win0 = t_win1 = UINT64_MAX;
	run_loop();
	if (mode == M_LOAD)
		report_load();
	for (i = 0; i < nsess; i++)
		if (ss[i].fd != -1)
			close(ss[i].fd);
	return errors ? 1 : 0;
}
