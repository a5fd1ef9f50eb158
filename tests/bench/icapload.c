/* SPDX-License-Identifier: MIT */
/*
 * icapload: the benchmark's ICAP (RFC 3507) client, playing a web proxy
 * that hands every response it fetches to an antivirus service. One
 * process, one epoll loop, N persistent connections, each sending RESPMOD
 * requests in a loop (ICAP keep-alive; it connects again when the server
 * closes). It trusts nothing the server says: every reply is parsed
 * strictly and a malformed one is an error, counted, never a guess.
 *
 *   icapload [-c CONNS] [-C OPENING] [-l BYTES] [-m REQS | -T SECS]
 *            [-W SECS] [-p PREVIEW|-n] [-v EVERY] [-s SERVICE]
 *            [-t TIMEOUT] [-o LATFILE] HOST:PORT
 *
 * First, on connection 0, one OPTIONS request: the reply must be 200
 * with an ISTag and Methods naming RESPMOD; its Preview (if any) is the
 * preview every RESPMOD then uses (-p N uses N instead, -n none). Once
 * all CONNS connections are up (at most OPENING, default 8, connecting at
 * a time), all start sending; the window opens -W seconds (default 1)
 * later and only replies completed inside it count.
 *
 * Each RESPMOD carries "Allow: 204", an encapsulated GET request head,
 * a "200 OK" response head with Content-Length, and a chunked body of
 * BYTES (chunks of CHUNK_MAX). With a preview, the first PREVIEW bytes go
 * first ("0; ieof" when that is the whole body), then the client waits
 * for "100 Continue" (the rest follows) or a final reply. Bodies are
 * lines of a random base64-like pool under a unique first line, so no
 * two are alike (a scanner's cache never answers for it); with -v EVERY,
 * every EVERY-th body carries the EICAR test string in its middle.
 *
 * Expected: a clean body gets 204; an infected one gets 200 whose
 * encapsulated response is an HTTP 403 (the block page). Anything else is
 * an error: another status, a wrong verdict, a malformed reply (bare LF,
 * missing ISTag or Encapsulated, bad offsets, bad chunking, a head over
 * HEAD_MAX), a reply before the request was complete, a reset or close
 * in the middle of a reply, no reply within TIMEOUT seconds (default 30).
 * A connection the server closes between two requests (EOF or reset
 * before any byte of the next reply, on a connection that already
 * carried a request) is a "drop": the request is given up and the
 * connection made again, as a proxy does; drops are counted apart.
 *
 * Prints one line of key=value: conns, reqs, secs, rate, lat_*_us
 * (request's first byte written -> reply's last byte read), r204, r200,
 * r100, errors (and err_* by kind), drops, reconnects, preview, ... The
 * first few errors are described on stderr: the request (connection,
 * number, size, clean or infected, how far it was sent), what was
 * expected and what came. Exit status 0 unless there was an error.
 */
#include <arpa/inet.h>
#include <errno.h>
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

#define IN_CAP		65536	/* reply bytes buffered */
#define HEAD_MAX	16384	/* an ICAP head, and the encapsulated HTTP head */
#define CHUNK_LINE_MAX	1024	/* a chunk-size line, extensions included */
#define CHUNK_MAX	32768	/* request body chunk size (after the preview) */
#define POOL_LINES	65536
#define LINE_LEN	76
#define MAX_EVENTS	512
#define ERR_SHOW	8	/* errors described on stderr */

static const char	eicar[] = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-"
			    "STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

enum st {
	S_IDLE,		/* waiting for its turn to connect */
	S_CONNECT,
	S_READY,	/* connected, no request */
	S_SEND,		/* writing the head and the preview (or everything) */
	S_PREVIEW,	/* preview written, waiting for 100 or a final reply */
	S_BODY,		/* writing the rest after 100 Continue */
	S_WAIT,		/* request written, waiting for the final reply */
	S_DONE,
};

enum rst {
	R_HEAD,		/* the ICAP status line and headers */
	R_HTTP,		/* the encapsulated HTTP head(s) */
	R_CHUNKS,	/* the encapsulated body, chunked */
};

enum chst { CH_SIZE, CH_DATA, CH_DATA_CRLF, CH_LAST_CRLF };

enum err {
	E_STATUS,	/* a status other than 100, 200, 204 */
	E_PARSE,	/* malformed reply */
	E_VERDICT,	/* 204 for EICAR, 200 for a clean body, 200 not 403 */
	E_EARLY,	/* a final reply before the request was complete */
	E_IO,		/* reset, close or error in the middle of a reply */
	E_TIMEOUT,
	E_CONNECT,
	E_N
};

static const char *const err_name[E_N] = { "status", "parse", "verdict",
	"early", "io", "timeout", "connect" };

struct conn {
	int		 fd;
	enum st		 st;
	unsigned	 id;
	unsigned	 nreq;		/* requests started, this session */
	unsigned	 conn_reqs;	/* requests on this connection */
	int		 wantout;
	int		 options;	/* this request is the OPTIONS */
	int		 infected;	/* this body carries EICAR */
	int		 ieof;		/* the preview was the whole body */
	int		 got_100;
	uint64_t	 t_req;		/* request's first byte queued */
	/* the request */
	char		*out;
	size_t		 outlen, outoff, outcap;
	size_t		 mark;		/* end of head + preview */
	char		*body;
	/* the reply */
	char		 in[IN_CAP];
	size_t		 inlen;
	size_t		 rx;		/* bytes of this reply read */
	enum rst	 rst;
	int		 code;		/* ICAP status */
	int		 http_status;
	int		 close_after;	/* Connection: close */
	long		 enc_hdr;	/* bytes of HTTP head(s) to read */
	int		 enc_body;	/* a chunked body follows them */
	enum chst	 ch;
	uint64_t	 ch_left;
};

static int		 nconn = 1, max_opening = 8;
static size_t		 body_len = 10240;
static long		 max_reqs = -1;
static double		 run_secs = -1, warm_secs = 1, req_timeout = 30;
static long		 preview_opt = -1;	/* -1: as offered */
static int		 no_preview;
static long		 every;			/* -v */
static const char	*service = "avscan";
static const char	*latfile;
static char		 hostport[128];
static struct sockaddr_in dst;
static int		 ep;
static struct conn	*cs;
static unsigned		*cq;
static size_t		 cq_head, cq_len;
static char		*pool;
static size_t		 pool_len;
static long		 preview = -1;		/* in use: -1 none */
static int		 options_done;
static int		 offers_204;
static char		 istag[128] = "-", server[128] = "-";
static char		 methods[128] = "-";
static long		 opt_preview = -1;
static uint64_t		 t_start, t_win0 = UINT64_MAX, t_win1 = UINT64_MAX;
static int		 window_open;
static long		 started, done_total, in_window, r204, r200, r100;
static long		 preview_204, infected_sent, errs[E_N], errors, drops;
static long		 reconnects, server_closes, opening, nup, failed;
static long		 istag_changes;
static uint32_t		*lat;
static size_t		 nlat, latcap;
static volatile sig_atomic_t stop;
static uint64_t		 rng = 0x9e3779b97f4a7c15ull;

static int	flush_out(struct conn *);
static void	conn_next(struct conn *);

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
	fputs("icapload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static const char *
st_name(enum st st)
{
	static const char *const n[] = { "idle", "connect", "ready",
		"sending head+preview", "preview sent, waiting for 100 or a "
		"final reply", "sending the rest", "request sent, waiting "
		"for the reply", "done" };

	return n[st];
}

/*
 * Counts an error of kind k and describes the first few: the request,
 * how far it went, what came.
 */
static void
cerr(struct conn *c, enum err k, const char *fmt, ...)
{
	va_list	ap;

	if (errors < ERR_SHOW) {
		fprintf(stderr, "icapload: conn %u request %u (%s, %zu body "
		    "bytes, %s, %zu of %zu request bytes written, %zu reply "
		    "bytes read, %s): %s: ", c->id, c->nreq,
		    c->options ? "OPTIONS" : "RESPMOD", c->options ? 0 :
		    body_len, c->infected ? "EICAR" : "clean", c->outoff,
		    c->outlen, c->rx, st_name(c->st), err_name[k]);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	errs[k]++;
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

/* ------------------------------------------------------------ requests */

static void
out_add(struct conn *c, const void *p, size_t n)
{
	if (c->outlen + n > c->outcap) {
		c->outcap = c->outlen + n + 4096;
		if ((c->out = realloc(c->out, c->outcap)) == NULL)
			die("out of memory");
	}
	memcpy(c->out + c->outlen, p, n);
	c->outlen += n;
}

static void
out_printf(struct conn *c, const char *fmt, ...)
{
	char	tmp[1024];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		die("request line too long");
	out_add(c, tmp, (size_t)n);
}

static void
out_chunks(struct conn *c, const char *p, size_t n)
{
	size_t	k;

	while (n > 0) {
		k = n < CHUNK_MAX ? n : CHUNK_MAX;
		out_printf(c, "%zx\r\n", k);
		out_add(c, p, k);
		out_add(c, "\r\n", 2);
		p += k;
		n -= k;
	}
}

/* A unique first line, then whole pool lines from random offsets. */
static void
make_body(struct conn *c)
{
	size_t	len, off, n, mid;
	int	k;

	k = snprintf(c->body, body_len + 1, "response %u.%u %016llx\r\n",
	    c->id, c->nreq, (unsigned long long)xorshift());
	len = (size_t)k < body_len ? (size_t)k : body_len;
	while (len < body_len) {
		off = (size_t)(xorshift() % POOL_LINES) * (LINE_LEN + 2);
		n = pool_len - off;
		if (n > body_len - len)
			n = body_len - len;
		memcpy(c->body + len, pool + off, n);
		len += n;
	}
	if (c->infected) {
		/* on a line boundary near the middle */
		mid = body_len / 2;
		mid -= mid % (LINE_LEN + 2);
		memcpy(c->body + mid, eicar, sizeof(eicar) - 1);
		memcpy(c->body + mid + sizeof(eicar) - 1, "\r\n", 2);
	}
}

static void
req_begin(struct conn *c)
{
	c->outlen = c->outoff = 0;
	c->rx = 0;
	c->rst = R_HEAD;
	c->code = c->http_status = 0;
	c->close_after = 0;
	c->got_100 = 0;
	c->nreq++;
	c->conn_reqs++;
	c->t_req = now_ns();
}

static void
req_options(struct conn *c)
{
	req_begin(c);
	c->options = 1;
	c->infected = 0;
	out_printf(c, "OPTIONS icap://%s/%s ICAP/1.0\r\nHost: %s\r\n"
	    "User-Agent: spork-icapload\r\nEncapsulated: null-body=0\r\n\r\n",
	    hostport, service, hostport);
	c->mark = c->outlen;
	c->st = S_SEND;
}

static void
req_respmod(struct conn *c)
{
	char	reqh[512], resh[512];
	int	nq, nr;
	size_t	pv;

	req_begin(c);
	c->options = 0;
	c->infected = every > 0 && started % every == every - 1;
	started++;
	if (c->infected)
		infected_sent++;
	make_body(c);
	nq = snprintf(reqh, sizeof(reqh), "GET http://www.example.test/"
	    "bench/%u/%u HTTP/1.1\r\nHost: www.example.test\r\n"
	    "User-Agent: spork-icapload\r\nAccept: */*\r\n\r\n", c->id,
	    c->nreq);
	nr = snprintf(resh, sizeof(resh), "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
	    "Cache-Control: max-age=60\r\n\r\n", body_len);
	out_printf(c, "RESPMOD icap://%s/%s ICAP/1.0\r\nHost: %s\r\n"
	    "User-Agent: spork-icapload\r\nAllow: 204\r\n", hostport,
	    service, hostport);
	if (preview >= 0)
		out_printf(c, "Preview: %ld\r\n", preview);
	out_printf(c, "Encapsulated: req-hdr=0, res-hdr=%d, res-body=%d\r\n"
	    "\r\n", nq, nq + nr);
	out_add(c, reqh, (size_t)nq);
	out_add(c, resh, (size_t)nr);
	if (preview >= 0) {
		pv = (size_t)preview < body_len ? (size_t)preview : body_len;
		out_chunks(c, c->body, pv);
		c->ieof = pv == body_len;
		out_add(c, c->ieof ? "0; ieof\r\n\r\n" : "0\r\n\r\n",
		    c->ieof ? 11 : 5);
		c->mark = c->outlen;
		if (!c->ieof) {
			out_chunks(c, c->body + pv, body_len - pv);
			out_add(c, "0\r\n\r\n", 5);
		}
	} else {
		c->ieof = 1;
		out_chunks(c, c->body, body_len);
		out_add(c, "0\r\n\r\n", 5);
		c->mark = c->outlen;
	}
	c->st = S_SEND;
}

/* ---------------------------------------------------------- connections */

static void
ep_mod(struct conn *c, int wantout)
{
	struct epoll_event	ev;

	if (c->wantout == wantout)
		return;
	ev.events = EPOLLIN | (wantout ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
	c->wantout = wantout;
}

static void
cq_push(unsigned id)
{
	cq[(cq_head + cq_len++) % (size_t)nconn] = id;
}

static unsigned
cq_pop(void)
{
	unsigned	id = cq[cq_head];

	cq_head = (cq_head + 1) % (size_t)nconn;
	cq_len--;
	return id;
}

static int
more_requests(void)
{
	if (stop)
		return 0;
	if (max_reqs >= 0)
		return started < max_reqs;
	return !window_open || now_ns() < t_win1;
}

static void
conn_drop(struct conn *c)
{
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->st == S_CONNECT)
		opening--;
	c->wantout = 0;
	c->inlen = c->rx = 0;
	c->outlen = c->outoff = 0;
}

/* Closes the connection; the connection is made again while there is work. */
static void
conn_again(struct conn *c)
{
	int	was_options = c->options && c->st != S_READY;

	conn_drop(c);
	c->conn_reqs = 0;
	if (was_options || (!more_requests() && options_done)) {
		if (was_options)
			die("OPTIONS failed: nothing to measure");
		c->st = S_DONE;
		return;
	}
	c->st = S_IDLE;
	reconnects++;
	cq_push(c->id);
}

static void
conn_connect(struct conn *c)
{
	struct epoll_event	ev;
	int			one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		die("socket: %s (raise the open files limit)", strerror(errno));
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->st = S_CONNECT;
	opening++;
	if (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) == -1 &&
	    errno != EINPROGRESS) {
		cerr(c, E_CONNECT, "%s", strerror(errno));
		if (!options_done)
			die("connect for OPTIONS: %s", strerror(errno));
		failed++;
		conn_drop(c);
		c->st = S_DONE;
		return;
	}
	ev.events = EPOLLOUT;
	ev.data.ptr = c;
	c->wantout = 1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
}

/* Writes what may go now; -1 if the connection is gone. */
static int
flush_out(struct conn *c)
{
	size_t	limit;
	ssize_t	n;

	if (c->st != S_SEND && c->st != S_BODY)
		return 0;
	limit = c->st == S_SEND ? c->mark : c->outlen;
	while (c->outoff < limit) {
		n = write(c->fd, c->out + c->outoff, limit - c->outoff);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ep_mod(c, 1);
				return 0;
			}
			if (errno == EINTR)
				continue;
			/* a reset before any reply: the server closed it */
			if (c->rx == 0 && c->conn_reqs > 1 && !c->options) {
				drops++;
				server_closes++;
			} else
				cerr(c, E_IO, "write: %s", strerror(errno));
			conn_again(c);
			return -1;
		}
		c->outoff += (size_t)n;
	}
	ep_mod(c, 0);
	if (c->st == S_SEND && c->outoff == c->outlen)
		c->st = S_WAIT;
	else if (c->st == S_SEND)
		c->st = S_PREVIEW;
	else
		c->st = S_WAIT;
	return 0;
}

/* ---------------------------------------------------------------- replies */

static void
record_latency(struct conn *c)
{
	uint64_t	t = now_ns();

	done_total++;
	if (max_reqs < 0 && (t < t_win0 || t >= t_win1))
		return;
	in_window++;
	if (nlat == latcap) {
		latcap = latcap ? latcap * 2 : 65536;
		if ((lat = realloc(lat, latcap * sizeof(*lat))) == NULL)
			die("out of memory");
	}
	lat[nlat++] = (uint32_t)((t - c->t_req) / 1000);
}

/* The value of header name in head (NUL-terminated lines), or NULL. */
static const char *
hdr(char *const *lines, int n, const char *name, size_t *vlen)
{
	size_t	k = strlen(name);
	int	i;
	const char *v, *e;

	for (i = 1; i < n; i++) {
		if (strncasecmp(lines[i], name, k) || lines[i][k] != ':')
			continue;
		v = lines[i] + k + 1;
		v += strspn(v, " \t");
		e = v + strlen(v);
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*vlen = (size_t)(e - v);
		return v;
	}
	return NULL;
}

static void
copy_token(char *dst, size_t cap, const char *v, size_t n)
{
	size_t	i;

	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++)
		dst[i] = (v[i] == ' ' || v[i] == '\t' || v[i] == '"') ? '_' :
		    v[i];
	dst[n] = '\0';
}

/*
 * Encapsulated: "req-hdr=0, res-hdr=N, res-body=M" and the like. Fills
 * the byte count of the HTTP heads and whether a chunked body follows;
 * -1 if malformed. Offsets must start at 0, rise, and end with exactly
 * one *-body entry.
 */
static int
parse_encapsulated(struct conn *c, const char *v, size_t n)
{
	char	buf[256], *p, *tok, *save, *eq, *end;
	long	off, last = -1, hdrs = 0;
	int	body = -1, count = 0;

	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	for (p = buf; (tok = strtok_r(p, ",", &save)) != NULL; p = NULL) {
		tok += strspn(tok, " ");
		if ((eq = strchr(tok, '=')) == NULL || body != -1)
			return -1;
		*eq = '\0';
		errno = 0;
		off = strtol(eq + 1, &end, 10);
		if (errno || end == eq + 1 || *(end + strspn(end, " ")) ||
		    off < 0 || off <= last || (count == 0 && off != 0))
			return -1;
		if (!strcmp(tok, "req-hdr") || !strcmp(tok, "res-hdr"))
			;	/* a head ends where the next entry begins */
		else if (!strcmp(tok, "req-body") || !strcmp(tok, "res-body") ||
		    !strcmp(tok, "opt-body"))
			body = 1;
		else if (!strcmp(tok, "null-body"))
			body = 0;
		else
			return -1;
		if (body != -1)
			hdrs = off;
		last = off;
		count++;
	}
	if (body == -1)
		return -1;
	c->enc_hdr = hdrs;
	c->enc_body = body;
	return 0;
}

enum { P_MORE, P_DONE, P_BAD };

/* The ICAP head at the start of the buffer; P_MORE until it is all in. */
static int
parse_head(struct conn *c, size_t *used)
{
	char		*lines[128], *p, *e, *end;
	const char	*v;
	size_t		 vlen, i;
	int		 n = 0;

	/* strict line ends: every LF after a CR, and no CR alone */
	for (i = 0; i < c->inlen; i++) {
		if (c->in[i] == '\n' && (i == 0 || c->in[i - 1] != '\r')) {
			cerr(c, E_PARSE, "bare LF in the reply head");
			return P_BAD;
		}
		if (c->in[i] == '\r' && i + 1 < c->inlen && c->in[i + 1] != '\n') {
			cerr(c, E_PARSE, "bare CR in the reply head");
			return P_BAD;
		}
		if (c->in[i] == '\0') {
			cerr(c, E_PARSE, "NUL in the reply head");
			return P_BAD;
		}
		if (i >= 3 && !memcmp(c->in + i - 3, "\r\n\r\n", 4))
			break;
	}
	if (i == c->inlen) {
		if (c->inlen >= HEAD_MAX) {
			cerr(c, E_PARSE, "no end of the head in %d bytes",
			    HEAD_MAX);
			return P_BAD;
		}
		return P_MORE;
	}
	*used = i + 1;
	e = c->in + i - 1;	/* the last CRLF's CR */
	for (p = c->in; p < e; p = end + 2) {
		end = memchr(p, '\r', (size_t)(e - p) + 1);
		*end = '\0';
		if (n == (int)(sizeof(lines) / sizeof(lines[0]))) {
			cerr(c, E_PARSE, "more than %zu header lines",
			    sizeof(lines) / sizeof(lines[0]));
			return P_BAD;
		}
		/* a folded line continues its header (RFC 2616 2.2 LWS) */
		if ((*p == ' ' || *p == '\t') && n >= 2)
			continue;
		lines[n++] = p;
		if (p == c->in)
			continue;
		if (*p == ' ' || *p == '\t' || strchr(p, ':') == NULL ||
		    strchr(p, ':') == p) {
			cerr(c, E_PARSE, "bad header line \"%.80s\"", p);
			return P_BAD;
		}
	}
	if (n == 0 || strncmp(lines[0], "ICAP/1.0 ", 9) ||
	    lines[0][9] < '1' || lines[0][9] > '5' ||
	    lines[0][10] < '0' || lines[0][10] > '9' ||
	    lines[0][11] < '0' || lines[0][11] > '9' ||
	    (lines[0][12] != ' ' && lines[0][12] != '\0')) {
		cerr(c, E_PARSE, "bad status line \"%.80s\"", n ? lines[0] : "");
		return P_BAD;
	}
	c->code = atoi(lines[0] + 9);
	if ((v = hdr(lines, n, "Connection", &vlen)) != NULL &&
	    vlen == 5 && !strncasecmp(v, "close", 5))
		c->close_after = 1;
	c->enc_hdr = 0;
	c->enc_body = 0;
	if (c->code == 100) {
		if (hdr(lines, n, "Encapsulated", &vlen) != NULL) {
			cerr(c, E_PARSE, "100 Continue with Encapsulated");
			return P_BAD;
		}
		return P_DONE;
	}
	if ((c->code == 200 || c->code == 204) &&
	    (v = hdr(lines, n, "ISTag", &vlen)) == NULL) {
		cerr(c, E_PARSE, "%d without ISTag", c->code);
		return P_BAD;
	}
	if (c->code == 200 || c->code == 204) {
		char	tag[sizeof(istag)];

		copy_token(tag, sizeof(tag), v, vlen);
		if (strcmp(istag, "-") && strcmp(istag, tag))
			istag_changes++;
		memcpy(istag, tag, sizeof(tag));
	}
	if (c->options && (v = hdr(lines, n, "Methods", &vlen)) != NULL)
		copy_token(methods, sizeof(methods), v, vlen);
	if (c->options && (v = hdr(lines, n, "Service", &vlen)) != NULL)
		copy_token(server, sizeof(server), v, vlen);
	else if (c->options && (v = hdr(lines, n, "Server", &vlen)) != NULL)
		copy_token(server, sizeof(server), v, vlen);
	if (c->options && (v = hdr(lines, n, "Preview", &vlen)) != NULL) {
		char	*pe;

		opt_preview = strtol(v, &pe, 10);
		if (pe != v + vlen || vlen == 0 || opt_preview < 0) {
			cerr(c, E_PARSE, "bad Preview \"%.*s\"", (int)vlen, v);
			return P_BAD;
		}
	}
	if (c->options && (v = hdr(lines, n, "Allow", &vlen)) != NULL &&
	    memmem(v, vlen, "204", 3) != NULL)
		offers_204 = 1;
	if ((v = hdr(lines, n, "Encapsulated", &vlen)) == NULL) {
		/* a 204 or an error may do without: then no body */
		if (c->code == 200) {
			cerr(c, E_PARSE, "200 without Encapsulated");
			return P_BAD;
		}
		return P_DONE;
	}
	if (parse_encapsulated(c, v, vlen) == -1) {
		cerr(c, E_PARSE, "bad Encapsulated \"%.*s\"", (int)vlen, v);
		return P_BAD;
	}
	if (c->code == 204 && (c->enc_hdr != 0 || c->enc_body)) {
		cerr(c, E_PARSE, "204 with an encapsulated message (%.*s)",
		    (int)vlen, v);
		return P_BAD;
	}
	if (c->enc_hdr > HEAD_MAX) {
		cerr(c, E_PARSE, "encapsulated heads of %ld bytes", c->enc_hdr);
		return P_BAD;
	}
	return P_DONE;
}

/* The encapsulated HTTP head(s): the status of a response head, if any. */
static int
parse_http(struct conn *c)
{
	const char	*p = c->in, *e = c->in + c->enc_hdr;

	if (c->enc_hdr < 4 || memcmp(e - 4, "\r\n\r\n", 4)) {
		cerr(c, E_PARSE, "encapsulated head not ending in CRLFCRLF");
		return -1;
	}
	/* a RESPMOD answer may carry the request head first */
	while (p < e && strncmp(p, "HTTP/", 5)) {
		const char *blank = memmem(p, (size_t)(e - p), "\r\n\r\n", 4);

		if (blank == NULL || blank + 4 == e)
			break;
		p = blank + 4;
	}
	if (e - p < 13 || strncmp(p, "HTTP/1.", 7) || p[8] != ' ') {
		cerr(c, E_PARSE, "no HTTP response head in the 200 (\"%.40s\")",
		    c->in);
		return -1;
	}
	c->http_status = atoi(p + 9);
	return 0;
}

/*
 * The chunked body: consumes what it can of in[0, len); P_DONE after the
 * last chunk's CRLF, P_BAD on a malformed body.
 */
static int
parse_chunks(struct conn *c, size_t *used)
{
	size_t	i = 0, k;
	char	*nl, *end;
	unsigned long long v;

	while (i < c->inlen) {
		switch (c->ch) {
		case CH_SIZE:
		case CH_LAST_CRLF:
			nl = memchr(c->in + i, '\n', c->inlen - i);
			if (nl == NULL) {
				if (c->inlen - i > CHUNK_LINE_MAX) {
					cerr(c, E_PARSE, "chunk line too long");
					return P_BAD;
				}
				*used = i;
				return P_MORE;
			}
			k = (size_t)(nl - (c->in + i));
			if (k == 0 || c->in[i + k - 1] != '\r') {
				cerr(c, E_PARSE, "chunk line without CRLF");
				return P_BAD;
			}
			c->in[i + k - 1] = '\0';
			if (c->ch == CH_LAST_CRLF) {
				if (k != 1) {
					cerr(c, E_PARSE, "trailer after the last "
					    "chunk: \"%.40s\"", c->in + i);
					return P_BAD;
				}
				*used = i + k + 1;
				return P_DONE;
			}
			errno = 0;
			v = strtoull(c->in + i, &end, 16);
			if (end == c->in + i || errno ||
			    (*end != '\0' && *end != ';' && *end != ' ') ||
			    !strchr("0123456789abcdefABCDEF", c->in[i])) {
				cerr(c, E_PARSE, "bad chunk size \"%.40s\"",
				    c->in + i);
				return P_BAD;
			}
			i += k + 1;
			if (v == 0)
				c->ch = CH_LAST_CRLF;
			else {
				c->ch = CH_DATA;
				c->ch_left = v;
			}
			break;
		case CH_DATA:
			k = c->inlen - i;
			if (k > c->ch_left)
				k = (size_t)c->ch_left;
			c->ch_left -= k;
			i += k;
			if (c->ch_left == 0)
				c->ch = CH_DATA_CRLF;
			break;
		case CH_DATA_CRLF:
			if (c->inlen - i < 2) {
				*used = i;
				return P_MORE;
			}
			if (memcmp(c->in + i, "\r\n", 2)) {
				cerr(c, E_PARSE, "chunk data not followed by "
				    "CRLF");
				return P_BAD;
			}
			i += 2;
			c->ch = CH_SIZE;
			break;
		}
	}
	*used = i;
	return P_MORE;
}

/* A final reply is complete: check it against what was sent. */
static void
on_final(struct conn *c)
{
	/* after a preview the server may answer at once (RFC 3507 4.5) */
	int	complete = c->st == S_WAIT || c->st == S_PREVIEW;

	if (c->options) {
		if (c->code != 200) {
			cerr(c, E_STATUS, "OPTIONS answered %d", c->code);
			die("OPTIONS failed");
		}
		if (!strstr(methods, "RESPMOD"))
			die("OPTIONS: Methods \"%s\" without RESPMOD", methods);
		preview = no_preview ? -1 : preview_opt >= 0 ? preview_opt :
		    opt_preview;
		options_done = 1;
		c->options = 0;
		c->st = S_READY;
		if (c->inlen > 0)
			die("OPTIONS: %zu bytes after the reply", c->inlen);
		if (c->close_after)
			conn_again(c);
		return;
	}
	if (!complete) {
		cerr(c, E_EARLY, "final %d before the request was complete",
		    c->code);
		conn_again(c);
		return;
	}
	switch (c->code) {
	case 204:
		if (c->infected)
			cerr(c, E_VERDICT, "expected 200 with a 403 for EICAR, "
			    "got 204");
		else {
			r204++;
			if (c->st == S_PREVIEW)
				preview_204++;
			record_latency(c);
		}
		break;
	case 200:
		if (!c->infected)
			cerr(c, E_VERDICT, "expected 204 for a clean body, got "
			    "200 (HTTP %d)", c->http_status);
		else if (c->http_status != 403)
			cerr(c, E_VERDICT, "expected 200 with a 403 for EICAR, "
			    "got 200 with HTTP %d", c->http_status);
		else {
			r200++;
			record_latency(c);
		}
		break;
	default:
		cerr(c, E_STATUS, "expected %s, got %d", c->infected ? "200" :
		    "204", c->code);
		conn_again(c);
		return;
	}
	if (c->inlen > 0) {
		cerr(c, E_PARSE, "%zu bytes after the reply", c->inlen);
		conn_again(c);
		return;
	}
	if (c->close_after) {
		server_closes++;
		conn_again(c);
		return;
	}
	c->st = S_READY;
	conn_next(c);
}

/* Parses what has arrived; returns -1 if the connection was dropped. */
static int
on_input(struct conn *c)
{
	size_t	used = 0;
	int	r;

	for (;;) {
		switch (c->rst) {
		case R_HEAD:
			if (c->inlen == 0)
				return 0;
			if (c->st == S_READY) {
				cerr(c, E_PARSE, "%zu bytes with no request "
				    "outstanding", c->inlen);
				conn_again(c);
				return -1;
			}
			r = parse_head(c, &used);
			if (r == P_MORE)
				return 0;
			if (r == P_BAD) {
				conn_again(c);
				return -1;
			}
			memmove(c->in, c->in + used, c->inlen - used);
			c->inlen -= used;
			if (c->code == 100) {
				r100++;
				if (c->st != S_PREVIEW || c->got_100) {
					cerr(c, E_PARSE, "100 Continue %s",
					    c->got_100 ? "twice" :
					    c->ieof ? "after a preview with "
					    "ieof" : "without a preview");
					conn_again(c);
					return -1;
				}
				c->got_100 = 1;
				c->st = S_BODY;
				if (flush_out(c) == -1)
					return -1;
				continue;
			}
			if (c->enc_hdr > 0)
				c->rst = R_HTTP;
			else if (c->enc_body) {
				c->rst = R_CHUNKS;
				c->ch = CH_SIZE;
			} else {
				on_final(c);
				if (c->fd == -1 || c->st == S_DONE)
					return -1;
			}
			break;
		case R_HTTP:
			if (c->inlen < (size_t)c->enc_hdr)
				return 0;
			if (parse_http(c) == -1) {
				conn_again(c);
				return -1;
			}
			memmove(c->in, c->in + c->enc_hdr,
			    c->inlen - (size_t)c->enc_hdr);
			c->inlen -= (size_t)c->enc_hdr;
			c->enc_hdr = 0;
			if (c->enc_body) {
				c->rst = R_CHUNKS;
				c->ch = CH_SIZE;
			} else {
				c->rst = R_HEAD;
				on_final(c);
				if (c->fd == -1 || c->st == S_DONE)
					return -1;
			}
			break;
		case R_CHUNKS:
			used = 0;
			r = parse_chunks(c, &used);
			if (r == P_BAD) {
				conn_again(c);
				return -1;
			}
			memmove(c->in, c->in + used, c->inlen - used);
			c->inlen -= used;
			if (r == P_MORE)
				return 0;
			c->rst = R_HEAD;
			on_final(c);
			if (c->fd == -1 || c->st == S_DONE)
				return -1;
			break;
		}
	}
}

static void
on_readable(struct conn *c)
{
	ssize_t	n;

	for (;;) {
		if (c->inlen == sizeof(c->in)) {
			cerr(c, E_PARSE, "reply buffer full");
			conn_again(c);
			return;
		}
		n = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			const char *why = n == 0 ? "connection closed" :
			    strerror(errno);

			if (c->rx == 0 && c->inlen == 0 && c->st == S_READY)
				server_closes++;	/* idle: fine */
			else if (c->rx == 0 && c->conn_reqs > 1 &&
			    !c->options) {
				drops++;
				server_closes++;
			} else
				cerr(c, E_IO, "%s%s", why, c->rx ?
				    " in the middle of a reply" :
				    " before any reply");
			conn_again(c);
			return;
		}
		c->inlen += (size_t)n;
		c->rx += (size_t)n;
		if (on_input(c) == -1)
			return;
	}
}

/* The next request on this connection, or the end. */
static void
conn_next(struct conn *c)
{
	if (!options_done) {
		req_options(c);
		(void)flush_out(c);
		return;
	}
	if (!window_open)
		return;		/* all start together */
	if (!more_requests()) {
		conn_drop(c);
		c->st = S_DONE;
		return;
	}
	req_respmod(c);
	(void)flush_out(c);
}

static void
on_event(struct conn *c, uint32_t events)
{
	int		err = 0;
	socklen_t	len = sizeof(err);

	if (c->st == S_CONNECT) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0) {
			cerr(c, E_CONNECT, "%s", err ? strerror(err) :
			    "connect");
			if (!options_done)
				die("connect for OPTIONS failed");
			failed++;
			conn_drop(c);
			c->st = S_DONE;
			return;
		}
		opening--;
		c->st = S_READY;
		ep_mod(c, 0);
		if (c->id == 0 && !options_done) {
			conn_next(c);
			return;
		}
		if (window_open)
			conn_next(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		on_readable(c);
		if (c->fd == -1 || c->st == S_IDLE || c->st == S_DONE)
			return;
	}
	if ((events & EPOLLOUT) && (c->st == S_SEND || c->st == S_BODY))
		(void)flush_out(c);
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

/* Requests that went without a reply for too long. */
static void
check_timeouts(uint64_t t)
{
	int	i;

	for (i = 0; i < nconn; i++) {
		struct conn *c = &cs[i];

		if (c->fd == -1 || c->st < S_SEND || c->st > S_WAIT)
			continue;
		if (t - c->t_req > (uint64_t)(req_timeout * 1e9)) {
			cerr(c, E_TIMEOUT, "no complete reply in %.0f s",
			    req_timeout);
			conn_again(c);
		}
	}
}

static void
run_loop(void)
{
	struct epoll_event	evs[MAX_EVENTS];
	uint64_t		t, t_check = 0;
	int			i, n, up;

	for (;;) {
		/* connection 0 asks OPTIONS before the others connect */
		while (cq_len > 0 && opening < max_opening && !stop &&
		    (options_done || cq[cq_head] == 0))
			conn_connect(&cs[cq_pop()]);
		t = now_ns();
		if (!window_open && options_done) {
			up = 0;
			for (i = 0; i < nconn; i++)
				up += cs[i].st == S_READY ||
				    cs[i].st == S_DONE;
			if (up == nconn || t - t_start > 15000000000ull) {
				for (i = 0; i < nconn; i++)
					nup += cs[i].st == S_READY;
				window_open = 1;
				if (max_reqs < 0) {
					t_win0 = t + (uint64_t)(warm_secs * 1e9);
					t_win1 = t_win0 +
					    (uint64_t)(run_secs * 1e9);
				} else
					t_win0 = t;
				for (i = 0; i < nconn; i++)
					if (cs[i].st == S_READY)
						conn_next(&cs[i]);
			}
		}
		if (window_open) {
			int	live = 0;

			for (i = 0; i < nconn; i++)
				live += cs[i].st != S_DONE;
			if (live == 0)
				break;
		}
		/* a server that stalls must not stall the bench */
		if (window_open && max_reqs < 0 &&
		    t > t_win1 + (uint64_t)((req_timeout + 5) * 1e9))
			break;
		if (stop)
			break;
		if (t - t_check > 100000000ull) {
			check_timeouts(t);
			t_check = t;
		}
		n = epoll_wait(ep, evs, MAX_EVENTS, 100);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd != -1)
				on_event(c, evs[i].events);
		}
	}
}

static void
report(void)
{
	struct rusage	ru;
	double		secs;
	long		cpu_ms = 0, stuck = 0;
	int		i, k;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000L +
		    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000L;
	for (i = 0; i < nconn; i++)
		if (cs[i].fd != -1 && cs[i].st >= S_SEND &&
		    cs[i].st <= S_WAIT) {
			cerr(&cs[i], E_TIMEOUT, "still without a reply at "
			    "the end");
			stuck++;
		}
	if (!window_open)
		secs = 1e-9;
	else if (max_reqs >= 0)
		secs = (double)(now_ns() - t_win0) / 1e9;
	else
		secs = (double)(t_win1 - t_win0) / 1e9;
	if (nlat > 0)
		qsort(lat, nlat, sizeof(*lat), cmp_u32);
	printf("conns=%d reqs=%ld secs=%.3f rate=%.1f body=%zu lat_min_us=%u "
	    "lat_p50_us=%u lat_p90_us=%u lat_p99_us=%u lat_max_us=%u "
	    "r204=%ld r200=%ld r100=%ld preview=%ld offered_preview=%ld "
	    "offers_204=%d preview_204=%ld infected=%ld errors=%ld",
	    nconn, in_window, secs, (double)in_window / secs, body_len,
	    pct(lat, nlat, 0), pct(lat, nlat, .5), pct(lat, nlat, .9),
	    pct(lat, nlat, .99), pct(lat, nlat, 1), r204, r200, r100,
	    preview, opt_preview, offers_204, preview_204, infected_sent,
	    errors);
	for (k = 0; k < E_N; k++)
		printf(" err_%s=%ld", err_name[k], errs[k]);
	printf(" stuck=%ld drops=%ld reconnects=%ld server_closes=%ld "
	    "up=%ld failed=%ld total=%ld started=%ld client_cpu_ms=%ld "
	    "istag=%s istag_changes=%ld service=%s\n", stuck, drops,
	    reconnects, server_closes, nup, failed, done_total, started,
	    cpu_ms, istag, istag_changes, server);
	if (latfile != NULL) {
		FILE	*fp = fopen(latfile, "w");
		size_t	 j;

		if (fp == NULL)
			die("%s: %s", latfile, strerror(errno));
		for (j = 0; j < nlat; j++)
			fprintf(fp, "%u\n", lat[j]);
		fclose(fp);
	}
}

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
	fprintf(stderr, "usage: icapload [-c CONNS] [-C OPENING] [-l BYTES] "
	    "[-m REQS | -T SECS] [-W SECS]\n"
	    "                [-p PREVIEW | -n] [-v EVERY] [-s SERVICE] "
	    "[-t TIMEOUT] [-o LATFILE] HOST:PORT\n"
	    "  -p N   preview N bytes whatever OPTIONS offered; -n no "
	    "preview\n"
	    "  -v N   every N-th body carries the EICAR test string\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct rlimit	rl;
	char		*host, *colon;
	int		 ch, i;

	while ((ch = getopt(argc, argv, "c:C:l:m:T:W:p:nv:s:t:o:")) != -1) {
		switch (ch) {
		case 'c': nconn = atoi(optarg); break;
		case 'C': max_opening = atoi(optarg); break;
		case 'l': body_len = parse_size(optarg); break;
		case 'm': max_reqs = atol(optarg); break;
		case 'T': run_secs = atof(optarg); break;
		case 'W': warm_secs = atof(optarg); break;
		case 'p': preview_opt = atol(optarg); break;
		case 'n': no_preview = 1; break;
		case 'v': every = atol(optarg); break;
		case 's': service = optarg; break;
		case 't': req_timeout = atof(optarg); break;
		case 'o': latfile = optarg; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || nconn < 1 || max_opening < 1 ||
	    every < 0 || (every > 0 && body_len < 256) || req_timeout <= 0 ||
	    (no_preview && preview_opt >= 0))
		usage();
	host = argv[optind];
	snprintf(hostport, sizeof(hostport), "%s", host);
	if ((colon = strrchr(host, ':')) == NULL)
		usage();
	*colon = '\0';
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &dst.sin_addr) != 1)
		die("bad IPv4 address %s", host);
	rng ^= (uint64_t)getpid() << 32 ^ now_ns();
	if (max_reqs < 0 && run_secs < 0)
		max_reqs = nconn;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)nconn + 64) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	make_pool();
	if ((cs = calloc((size_t)nconn, sizeof(*cs))) == NULL ||
	    (cq = calloc((size_t)nconn, sizeof(*cq))) == NULL)
		die("out of memory");
	for (i = 0; i < nconn; i++) {
		cs[i].fd = -1;
		cs[i].id = (unsigned)i;
		if ((cs[i].body = malloc(body_len + 1)) == NULL)
			die("out of memory");
		cq_push((unsigned)i);
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	t_start = now_ns();
	run_loop();
	report();
	for (i = 0; i < nconn; i++)
		if (cs[i].fd != -1)
			close(cs[i].fd);
	return errors ? 1 : 0;
}
