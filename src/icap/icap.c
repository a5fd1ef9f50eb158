/* SPDX-License-Identifier: MIT */
/*
 * The ICAP service: owns the icap_listen sockets and the connections web
 * proxies open to them. A request's HTTP body is decoded into a spool
 * (RAM up to spool_memory_max, then an unnamed file, as for mail), sent
 * to the scanner with SCAN_VIRUS_ONLY (the mail content rules do not
 * apply to web content), and the verdict policies decide: block (the
 * block page, an HTTP 403, or 503 for tempfail) or pass (204 when the
 * proxy allows it, else the content sent back unchanged). A body over
 * icap_max_body is not scanned: limits_action decides; when it passes
 * and the proxy kept no copy, the body streams back as it arrives, so
 * memory stays bounded whatever the size. It trusts the configuration
 * and the scanner, nothing that comes from the proxy: icap_proto.c
 * parses every byte. One log line and one tracking record per request.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "action.h"
#include "cidr.h"
#include "icap.h"
#include "icap_proto.h"
#include "log.h"
#include "sock.h"
#include "spool.h"
#include "track.h"

#define ICAP_LISTENERS_MAX	CONF_ADDRS_MAX
#define ICAP_BACKLOG		128
#define ICAP_ACCEPT_BATCH	32
#define ICAP_IN_MAX		(ICAP_HEAD_MAX + ICAP_HTTP_HEADS_MAX + 65536)
					/* heads + a read */
#define ICAP_OUT_MAX		(4 * 1024 * 1024)
#define ICAP_OUT_HIGH		(256 * 1024)	/* stop reading or refilling */
#define ICAP_READ_CHUNK		65536
#define ICAP_PAGE_MAX		(64 * 1024)	/* icap_block_page */
#define ICAP_OPTIONS_TTL	60		/* seconds */

enum icap_state {
	IS_HEAD,	/* reading the ICAP head */
	IS_HTTP,	/* reading the encapsulated HTTP heads */
	IS_BODY,	/* decoding the chunked body */
	IS_SCAN,	/* the scanner has it */
	IS_STREAM,	/* over icap_max_body and passed: echoing as it comes */
	IS_ECHO,	/* sending the spooled body back */
	IS_DRAIN,	/* the answer is queued; then the next request */
	IS_CLOSE,	/* the answer is queued; then close */
};

enum icap_decision {
	ID_PASS,
	ID_BLOCK,	/* 403 and the block page */
	ID_TEMP,	/* 503 and the block page */
};

struct icap_conn {
	struct icap_conn	*next, *prev;
	char			 id[16];
	int			 fd;
	struct ev_io		 io;
	struct ev_timer		 timer;
	struct sockaddr_storage	 peer;
	char			 peerstr[SOCK_ADDRSTR_MAX];
	struct buf		 in;
	struct buf		 out;
	enum icap_state		 state;
	/* the request being served */
	struct icap_req		 req;
	struct icap_http	 http;
	char			*heads;		/* the encapsulated HTTP heads */
	size_t			 headslen;
	struct icap_chunked	 ch;
	int			 in_preview;	/* the preview's chunks */
	int			 whole_in_preview;	/* ieof: 204 allowed */
	struct spool		 spool;
	uint64_t		 body_size;	/* decoded, kept or not */
	int			 over;		/* past icap_max_body */
	int			 stream_wanted;	/* and passed: stream it */
	int			 spool_failed;
	int			 streaming;	/* answer head sent, body follows */
	int			 head_sent;	/* answer head sent, body held
					 * until the verdict */
	int			 stream_direct;	/* the spooled part is out: what
					 * comes goes straight through */
	int			 body_in;	/* the whole body was read */
	int			 preview_overrun;
	size_t			 echo_off;
	struct scan_job		*job;
	uint64_t		 started;
	int			 keepalive;
};

static struct {
	struct ev_loop		*loop;
	const struct conf	*conf;
	struct scan_backend	*scanner;
	struct ev_io		 listeners[ICAP_LISTENERS_MAX];
	int			 nlisteners;
	struct icap_conn	*conns;
	size_t			 nconns;
	char			*page;		/* icap_block_page, or NULL */
	size_t			 pagelen;
	char			 istag[40];
	unsigned		 seq;
	/* counters */
	unsigned long long	 accepted, refused_acl, refused_max, requests,
				 options, scans, clean, blocked, tempblocked,
				 passed_unclean, no_content, echoed, streamed,
				 answered_early, cut,
				 bad_requests, timeouts, errors;
} I;

static const char icap_builtin_page[] =
	"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	"<title>Blocked</title></head>\n<body><h1>Blocked</h1>\n"
	"<p>The content of <code>{url}</code> was not delivered: "
	"<strong>{virus}</strong>.</p>\n"
	"<p>If you believe this is wrong, tell the administrator of this "
	"network.</p></body></html>\n";

static void	icap_io(struct ev_io *, int);
static void	icap_timeout(struct ev_timer *);
static void	icap_process(struct icap_conn *);
static void	icap_close(struct icap_conn *);
static int	out_chunk(struct icap_conn *, const char *, size_t);
static int	spool_send(struct icap_conn *, size_t);

/* ------------------------------------------------------------------ */
/* ISTag: changes with the scanner's signatures                         */

static uint32_t
fnv1a(uint32_t h, const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* Hashes the engine and generation lines of the scanner's status (for
 * clamd, each server's version and database): a reload that brings new
 * signatures brings a new tag. */
static const char *
icap_istag(void)
{
	static const char	*keys[] = { "scan.engine=", "scan.generation=" };
	struct buf		 st;
	const char		*s, *e, *end, *v, *q;
	uint32_t		 h = 2166136261u;
	size_t			 k;

	/* Asked at every answer: a generation that just became active
	 * shows at once. */
	buf_init(&st, 65536);
	I.scanner->status(I.scanner, &st);
	s = buf_head(&st);
	end = s + buf_used(&st);
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		const char	*p = s;

		while (p != NULL && p < end) {
			e = memchr(p, '\n', (size_t)(end - p));
			if (e == NULL)
				e = end;
			if ((size_t)(e - p) >= strlen(keys[k]) &&
			    memcmp(p, keys[k], strlen(keys[k])) == 0)
				h = fnv1a(h, p, (size_t)(e - p));
			/* clamd: each server's version and database. */
			else if (k == 0 && (v = memmem(p, (size_t)(e - p),
			    "version=\"", 9)) != NULL &&
			    (q = memchr(v + 9, '"', (size_t)(e - v - 9))) != NULL)
				h = fnv1a(h, v, (size_t)(q - v));
			p = e < end ? e + 1 : NULL;
		}
	}
	buf_free(&st);
	snprintf(I.istag, sizeof(I.istag), "\"spork-%08x\"", h);
	return I.istag;
}

/* ------------------------------------------------------------------ */
/* The block page                                                      */

static char *
page_read(const char *path, size_t *len, char *err, size_t errlen)
{
	struct stat	 st;
	char		*p = NULL;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		snprintf(err, errlen, "icap_block_page %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > ICAP_PAGE_MAX) {
		snprintf(err, errlen, "icap_block_page %s: not a file of at "
		    "most %d bytes", path, ICAP_PAGE_MAX);
		goto fail;
	}
	if ((p = malloc((size_t)st.st_size + 1)) == NULL ||
	    (n = read(fd, p, (size_t)st.st_size)) != st.st_size) {
		snprintf(err, errlen, "icap_block_page %s: short read", path);
		goto fail;
	}
	p[n] = '\0';
	if (memchr(p, '\0', (size_t)n) != NULL) {
		snprintf(err, errlen, "icap_block_page %s: a NUL byte", path);
		goto fail;
	}
	close(fd);
	*len = (size_t)n;
	return p;
fail:
	free(p);
	if (fd != -1)
		close(fd);
	return NULL;
}

static void
html_escape(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<': buf_printf(b, "&lt;"); break;
		case '>': buf_printf(b, "&gt;"); break;
		case '&': buf_printf(b, "&amp;"); break;
		case '"': buf_printf(b, "&quot;"); break;
		case '\'': buf_printf(b, "&#39;"); break;
		default:
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				buf_printf(b, "&#%d;", (unsigned char)*s);
			else
				buf_append(b, s, 1);
		}
	}
}

/* The page with {virus} and {url} replaced, escaped. */
static void
page_render(struct buf *b, const char *reason, const char *url)
{
	const char	*p = I.page != NULL ? I.page : icap_builtin_page;
	const char	*q;

	while ((q = strchr(p, '{')) != NULL) {
		buf_append(b, p, (size_t)(q - p));
		if (strncmp(q, "{virus}", 7) == 0) {
			html_escape(b, reason);
			p = q + 7;
		} else if (strncmp(q, "{url}", 5) == 0) {
			html_escape(b, url);
			p = q + 5;
		} else {
			buf_append(b, q, 1);
			p = q + 1;
		}
	}
	buf_append(b, p, strlen(p));
}

/* ------------------------------------------------------------------ */
/* Answers                                                             */

static void
answer_head(struct icap_conn *c, const char *status)
{
	char		date[64];
	time_t		now = time(NULL);
	struct tm	tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	buf_printf(&c->out, "ICAP/1.0 %s\r\nDate: %s\r\nServer: sporkd\r\n"
	    "ISTag: %s\r\n%s", status, date, icap_istag(),
	    c->keepalive ? "" : "Connection: close\r\n");
}

/* An error answer: the connection closes after it. */
static void
answer_error(struct icap_conn *c, int code, const char *why)
{
	const char	*text;

	switch (code) {
	case 404: text = "404 ICAP Service Not Found"; break;
	case 405: text = "405 Method Not Allowed For Service"; break;
	case 408: text = "408 Request Timeout"; break;
	case 413: text = "413 Request Entity Too Large"; break;
	case 500: text = "500 Server Error"; break;
	case 501: text = "501 Method Not Implemented"; break;
	case 505: text = "505 ICAP Version Not Supported"; break;
	default: text = "400 Bad Request"; code = 400; break;
	}
	log_warn(c->id, "icap error client=%s status=%d reason=\"%s\"",
	    c->peerstr, code, why);
	if (code == 400)
		I.bad_requests++;
	c->keepalive = 0;
	answer_head(c, text);
	buf_printf(&c->out, "Encapsulated: null-body=0\r\n\r\n");
	c->state = IS_CLOSE;
}

static void
answer_options(struct icap_conn *c)
{
	answer_head(c, "200 OK");
	buf_printf(&c->out, "Methods: RESPMOD, REQMOD\r\n"
	    "Service: sporkd virus scan\r\nMax-Connections: %zu\r\n"
	    "Options-TTL: %d\r\nAllow: 204\r\nPreview: %zu\r\n"
	    "Transfer-Preview: *\r\nEncapsulated: null-body=0\r\n\r\n",
	    I.conf->icap_max_connections, ICAP_OPTIONS_TTL,
	    I.conf->icap_preview);
	I.options++;
}

/* The request's HTTP heads: the request head and, in RESPMOD, the
 * response head. */
static void
heads_split(const struct icap_conn *c, const char **req, size_t *reqlen,
    const char **res, size_t *reslen)
{
	const struct icap_req	*r = &c->req;
	long			 reqend;

	*req = *res = NULL;
	*reqlen = *reslen = 0;
	if (r->req_hdr >= 0) {
		reqend = r->res_hdr >= 0 ? r->res_hdr : r->body;
		*req = c->heads + r->req_hdr;
		*reqlen = (size_t)(reqend - r->req_hdr);
	}
	if (r->res_hdr >= 0) {
		*res = c->heads + r->res_hdr;
		*reslen = (size_t)(r->body - r->res_hdr);
	}
}

/* 200 with the content as it came: its head now, its body to follow
 * (echo or stream), or none. */
static void
answer_unmodified(struct icap_conn *c, int with_body)
{
	const char	*req, *res, *head;
	size_t		 reqlen, reslen, headlen;
	int		 respmod = c->req.method == ICAP_RESPMOD;

	heads_split(c, &req, &reqlen, &res, &reslen);
	head = respmod ? res : req;
	headlen = respmod ? reslen : reqlen;
	answer_head(c, "200 OK");
	if (head == NULL)
		buf_printf(&c->out, "Encapsulated: %s=0\r\n\r\n",
		    !with_body ? "null-body" : respmod ? "res-body" :
		    "req-body");
	else
		buf_printf(&c->out, "Encapsulated: %s=0, %s=%zu\r\n\r\n",
		    respmod ? "res-hdr" : "req-hdr", with_body ?
		    (respmod ? "res-body" : "req-body") : "null-body", headlen);
	if (head != NULL)
		buf_append(&c->out, head, headlen);
}

static void
answer_block(struct icap_conn *c, enum icap_decision d, const char *reason)
{
	struct buf	page, http;
	char		threat[SCAN_NAME_MAX + 32];
	size_t		i;

	/* The name goes into a header: printable, no ';'. */
	for (i = 0; reason[i] != '\0' && i < sizeof(threat) - 1; i++)
		threat[i] = (reason[i] < 0x20 || reason[i] >= 0x7f ||
		    reason[i] == ';') ? '?' : reason[i];
	threat[i] = '\0';

	buf_init(&page, ICAP_PAGE_MAX * 8);
	buf_init(&http, 1024);
	page_render(&page, reason, c->http.url);
	buf_printf(&http, "HTTP/1.1 %s\r\nContent-Type: text/html; "
	    "charset=utf-8\r\nContent-Length: %zu\r\nCache-Control: "
	    "no-store\r\nConnection: close\r\n\r\n", d == ID_TEMP ?
	    "503 Service Unavailable" : "403 Forbidden", buf_used(&page));
	answer_head(c, "200 OK");
	if (d == ID_BLOCK)
		buf_printf(&c->out, "X-Infection-Found: Type=0; Resolution=2; "
		    "Threat=%s;\r\n", threat);
	buf_printf(&c->out, "Encapsulated: res-hdr=0, res-body=%zu\r\n\r\n",
	    buf_used(&http));
	buf_append(&c->out, buf_head(&http), buf_used(&http));
	(void)out_chunk(c, buf_head(&page), buf_used(&page));
	buf_printf(&c->out, "0\r\n\r\n");
	buf_free(&page);
	buf_free(&http);
}

/* ------------------------------------------------------------------ */
/* The end of a request: log, track, next                              */

static const char *
method_name(enum icap_method m)
{
	return m == ICAP_REQMOD ? "REQMOD" : m == ICAP_RESPMOD ? "RESPMOD" :
	    "OPTIONS";
}

static void
request_done(struct icap_conn *c, const char *verdict, const char *name,
    const char *action, int status, unsigned scan_ms)
{
	struct track_rec	rec;
	struct timespec		now;
	char			reply[96], addr[SOCK_ADDRSTR_MAX];
	char			url[ICAP_URL_MAX * 3];
	size_t			i, o;

	/* A quote or backslash in the URL must not end the log value. */
	for (i = o = 0; c->http.url[i] != '\0' && o + 4 < sizeof(url); i++) {
		if (c->http.url[i] == '"' || c->http.url[i] == '\\')
			o += (size_t)snprintf(url + o, sizeof(url) - o, "%%%02X",
			    (unsigned char)c->http.url[i]);
		else
			url[o++] = c->http.url[i];
	}
	url[o] = '\0';
	log_info(c->id, "icap method=%s client=%s%s%s url=\"%s\" size=%llu "
	    "verdict=%s%s%s%s action=%s status=%d scan_ms=%u ms=%llu",
	    method_name(c->req.method), c->peerstr, c->req.client_ip[0] ?
	    " for=" : "", c->req.client_ip, url,
	    (unsigned long long)c->body_size, verdict, name[0] ? " name=\"" :
	    "", name, name[0] ? "\"" : "", action, status, scan_ms,
	    (unsigned long long)(ev_now() - c->started));
	if (!track_wanted())
		return;
	memset(&rec, 0, sizeof(rec));
	snprintf(reply, sizeof(reply), "ICAP %d%s%s", status,
	    name[0] ? " " : "", name);
	sock_format_host(&c->peer, addr, sizeof(addr));
	clock_gettime(CLOCK_REALTIME, &now);
	rec.t = (double)now.tv_sec + now.tv_nsec / 1e9;
	rec.session = c->id;
	rec.client = c->peerstr;
	rec.client_addr = addr;
	rec.server = "";
	rec.direction = c->req.method == ICAP_REQMOD ? "icap-reqmod" :
	    "icap-respmod";
	rec.helo = "";
	rec.sender = "";
	rec.size = (size_t)c->body_size;
	rec.message_id = "";
	rec.subject = c->http.url;
	rec.verdict = verdict;
	rec.action = action;
	rec.score = NAN;
	rec.tls = "none";
	rec.quarantine = "";
	rec.reply = reply;
	track_message(&rec);
}

static void
request_reset(struct icap_conn *c)
{
	free(c->heads);
	c->heads = NULL;
	c->headslen = 0;
	spool_reset(&c->spool);
	memset(&c->req, 0, sizeof(c->req));
	memset(&c->http, 0, sizeof(c->http));
	c->in_preview = c->whole_in_preview = 0;
	c->body_size = 0;
	c->over = c->stream_wanted = c->spool_failed = c->streaming = 0;
	c->head_sent = c->stream_direct = c->body_in = 0;
	c->preview_overrun = 0;
	c->echo_off = 0;
	c->job = NULL;
	c->state = IS_HEAD;
}

/* ------------------------------------------------------------------ */
/* Verdicts                                                            */

static enum icap_decision
decide(enum action a)
{
	switch (a) {
	case ACT_REJECT:
	case ACT_QUARANTINE:
	case ACT_CLEAN:
	case ACT_CONNECT:
		return ID_BLOCK;
	case ACT_NONE:
	case ACT_DELIVER:
	case ACT_TAG:
		return ID_PASS;
	default:
		/* tempfail, error, and anything that has no meaning for
		 * web content: not delivered unchecked. */
		return ID_TEMP;
	}
}

static enum action
verdict_action(enum scan_verdict v)
{
	switch (v) {
	case SCAN_CLEAN:
		return ACT_DELIVER;
	case SCAN_VIRUS:
		return I.conf->virus_action;
	case SCAN_ENCRYPTED:
		return I.conf->encrypted_action;
	case SCAN_LIMITS:
		return I.conf->limits_action;
	default:
		return I.conf->scan_error_action;
	}
}

/* May the answer be 204: the proxy said Allow: 204, or the whole body
 * came in the preview (204 is always allowed there). */
static int
may_204(const struct icap_conn *c)
{
	return c->req.allow_204 || c->whole_in_preview ||
	    (c->req.preview >= 0 && c->req.body_kind == ICAP_BODY_NONE);
}

/*
 * The verdict for a body whose answer had begun (icap_answer_after): what
 * passes follows whole from the spool; anything else closes the
 * connection before a byte of the body went out, and the proxy cuts its
 * client's download.
 */
static void
conclude_begun(struct icap_conn *c, enum scan_verdict v, const char *name,
    enum icap_decision d, unsigned scan_ms)
{
	if (v == SCAN_CLEAN)
		I.clean++;
	if (d == ID_PASS) {
		if (v != SCAN_CLEAN)
			I.passed_unclean++;
		I.echoed++;
		request_done(c, scan_verdict_name(v), name, "pass", 200,
		    scan_ms);
		/* On from where the trickle stopped. */
		c->state = IS_ECHO;
		return;
	}
	if (d == ID_BLOCK)
		I.blocked++;
	else
		I.tempblocked++;
	I.cut++;
	request_done(c, scan_verdict_name(v), name, d == ID_BLOCK ?
	    "block-cut" : "tempfail-cut", 200, scan_ms);
	c->keepalive = 0;
	c->state = IS_CLOSE;
}

/* Carries out a decision for a body that was read whole. */
static void
conclude(struct icap_conn *c, enum scan_verdict v, const char *name,
    unsigned scan_ms)
{
	enum action		a = verdict_action(v);
	enum icap_decision	d = decide(a);
	char			reason[SCAN_NAME_MAX + 32];
	int			status;

	/* The body is gone and the proxy kept none: nothing to echo. */
	if (c->spool_failed && d == ID_PASS && !may_204(c)) {
		I.errors++;
		request_done(c, scan_verdict_name(v), name, "error", 500,
		    scan_ms);
		if (c->head_sent) {
			c->keepalive = 0;
			c->state = IS_CLOSE;
		} else
			answer_error(c, 500, "the body could not be kept "
			    "(spool)");
		return;
	}
	if (c->head_sent) {
		conclude_begun(c, v, name, d, scan_ms);
		return;
	}
	if (d != ID_PASS) {
		if (v == SCAN_VIRUS)
			snprintf(reason, sizeof(reason), "%s", name);
		else if (v == SCAN_LIMITS)
			snprintf(reason, sizeof(reason), "too large to check%s%s",
			    name[0] ? ": " : "", name);
		else if (v == SCAN_ENCRYPTED)
			snprintf(reason, sizeof(reason), "encrypted content "
			    "that cannot be checked");
		else
			snprintf(reason, sizeof(reason), "could not be checked "
			    "(%s), try again later", scan_verdict_name(v));
		answer_block(c, d, reason);
		if (d == ID_BLOCK)
			I.blocked++;
		else
			I.tempblocked++;
		status = 200;
	} else if (may_204(c)) {
		answer_head(c, "204 No Content");
		buf_printf(&c->out, "Encapsulated: null-body=0\r\n\r\n");
		I.no_content++;
		status = 204;
	} else {
		answer_unmodified(c, c->req.body_kind != ICAP_BODY_NONE);
		I.echoed++;
		status = 200;
	}
	if (v == SCAN_CLEAN)
		I.clean++;
	else if (d == ID_PASS)
		I.passed_unclean++;
	request_done(c, scan_verdict_name(v), name, d == ID_PASS ? "pass" :
	    d == ID_BLOCK ? "block" : "tempfail", status, scan_ms);
	if (d == ID_PASS && status == 200 &&
	    c->req.body_kind != ICAP_BODY_NONE) {
		c->echo_off = 0;
		c->state = IS_ECHO;
		return;
	}
	c->state = c->keepalive ? IS_DRAIN : IS_CLOSE;
}

static void
scan_done(void *arg, const struct scan_result *sr)
{
	struct icap_conn	*c = arg;

	c->job = NULL;
	if (SCAN_RESULT_HAS_FD(sr))
		close(sr->cleaned_fd);
	I.scans++;
	conclude(c, sr->verdict, sr->name, sr->ms);
	icap_process(c);
}

/* The whole body is in: scan it (or decide without). */
static void
body_complete(struct icap_conn *c)
{
	int	fd;

	if (c->spool_failed) {
		conclude(c, SCAN_ERROR, "spool", 0);
		return;
	}
	if (c->over) {
		conclude(c, SCAN_LIMITS, "icap_max_body", 0);
		return;
	}
	if (c->spool.size == 0) {
		conclude(c, SCAN_CLEAN, "", 0);
		return;
	}
	if ((fd = spool_fd(&c->spool)) == -1) {
		conclude(c, SCAN_ERROR, "spool", 0);
		return;
	}
	c->state = IS_SCAN;
	c->job = I.scanner->submit(I.scanner, fd, c->spool.size,
	    SCAN_VIRUS_ONLY, scan_done, c);
	if (c->job == NULL) {
		log_err(c->id, "icap scan submit: %s", strerror(errno));
		conclude(c, SCAN_ERROR, "submit", 0);
	}
}

/* ------------------------------------------------------------------ */
/* The body                                                            */

static int
body_out(void *arg, const char *p, size_t n)
{
	struct icap_conn	*c = arg;

	c->body_size += n;
	/* A preview is what its header said, never more. */
	if (c->in_preview && c->body_size > (uint64_t)c->req.preview) {
		c->preview_overrun = 1;
		return -1;
	}
	if (c->streaming && c->stream_direct)
		return out_chunk(c, p, n);
	if (c->spool_failed)
		return 0;
	if (!c->over && c->body_size > I.conf->icap_max_body) {
		c->over = 1;
		/* Passed unscanned and not kept by the proxy: what was read
		 * goes back first (the spool holds it, and at most one read
		 * more until the stream starts). */
		c->stream_wanted = !may_204(c) &&
		    decide(I.conf->limits_action) == ID_PASS;
		if (!c->stream_wanted)
			spool_reset(&c->spool);
	}
	if (c->over && !c->stream_wanted)
		return 0;
	if (spool_append(&c->spool, p, n) == -1) {
		log_warn(c->id, "icap spool: %s", strerror(errno));
		c->spool_failed = 1;
		spool_reset(&c->spool);
		/* Bytes the answer still owed are gone: only a cut tells. */
		if (c->streaming)
			return -1;
	}
	return 0;
}

/*
 * Past icap_max_body with a proxy that kept no copy (no Allow: 204) and a
 * limits_action that passes: answer now and stream the body through
 * unscanned. What the spool holds goes first, a piece at a time as the
 * proxy reads (stream_fill), with what arrives meanwhile appended to it;
 * once it is out, the rest goes straight through. Reading waits while the
 * answer's buffer is full, so neither grows without bound.
 */
static void
stream_start(struct icap_conn *c)
{
	log_info(c->id, "icap body over icap_max_body=%zu: limits_action=%s, "
	    "streaming unscanned", I.conf->icap_max_body,
	    action_name(I.conf->limits_action));
	if (!c->head_sent)
		answer_unmodified(c, 1);
	c->head_sent = 1;
	c->streaming = 1;
	c->stream_direct = 0;
	/* echo_off: on from what the trickle already sent. */
	c->state = IS_STREAM;
	I.streamed++;
}

static void
stream_end(struct icap_conn *c)
{
	buf_printf(&c->out, "0\r\n\r\n");
	I.passed_unclean++;
	request_done(c, "limits", "icap_max_body", "pass", 200, 0);
	c->state = c->keepalive ? IS_DRAIN : IS_CLOSE;
}

/* Sends the spooled part of a streamed body, then switches to direct. */
static void
stream_fill(struct icap_conn *c)
{
	if (!c->stream_direct) {
		if (spool_send(c, c->spool.size) != 1)
			return;
		spool_reset(&c->spool);
		c->stream_direct = 1;
	}
	if (c->body_in)
		stream_end(c);
}

/* Decodes what is in c->in; 0 to go on, -1 when an answer was queued. */
static int
body_feed(struct icap_conn *c)
{
	char	err[128];
	ssize_t	n;

	while (buf_used(&c->in) > 0 && !c->ch.done) {
		if (c->streaming && buf_used(&c->out) > ICAP_OUT_HIGH)
			return 0;
		n = icap_chunked_feed(&c->ch, buf_head(&c->in),
		    buf_used(&c->in), body_out, c, err, sizeof(err));
		if (n == -1 && c->preview_overrun)
			snprintf(err, sizeof(err), "preview longer than its "
			    "Preview header (%ld)", c->req.preview);
		if (n == -1) {
			if (c->streaming || c->head_sent) {
				/* The answer has begun: only closing tells. */
				log_warn(c->id, "icap body while streaming: %s",
				    err);
				c->keepalive = 0;
				c->state = IS_CLOSE;
				return -1;
			}
			answer_error(c, 400, err);
			return -1;
		}
		buf_consume(&c->in, (size_t)n);
		/* Past the limit, passed: stream it (not in the preview,
		 * whose end still owes a 100 Continue). */
		if (c->stream_wanted && !c->streaming && !c->in_preview &&
		    !c->spool_failed)
			stream_start(c);
		/* Past the limit and refused while the answer had begun: the
		 * rest of the body need not come, nor would it (the proxy
		 * waits for the answer's body): the cut, now. */
		if (c->over && c->head_sent && !c->stream_wanted &&
		    decide(I.conf->limits_action) != ID_PASS) {
			c->keepalive = 0;
			conclude(c, SCAN_LIMITS, "icap_max_body", 0);
			return -1;
		}
		/* A download past icap_answer_after, from a proxy that kept
		 * no copy: begin the answer, hold the body. */
		if (!c->head_sent && !c->streaming && !c->in_preview &&
		    c->req.method == ICAP_RESPMOD && !c->req.allow_204 &&
		    I.conf->icap_answer_after > 0 &&
		    c->body_size > I.conf->icap_answer_after && !c->ch.done) {
			answer_unmodified(c, 1);
			c->head_sent = 1;
			I.answered_early++;
		}
	}
	if (!c->ch.done)
		return 0;
	if (c->in_preview) {
		c->in_preview = 0;
		if (c->ch.ieof) {
			c->whole_in_preview = 1;
		} else {
			/* The rest of the body, please. */
			buf_printf(&c->out, "ICAP/1.0 100 Continue\r\n\r\n");
			icap_chunked_init(&c->ch);
			return 0;
		}
	}
	if (c->streaming) {
		c->body_in = 1;
		if (c->stream_direct)
			stream_end(c);
		return -1;
	}
	body_complete(c);
	return -1;
}

/*
 * Sends the spool from echo_off up to upto, a chunk at a time while the
 * answer's buffer has room. 1 when it got there, 0 when it must wait for
 * the proxy to read, -1 (the connection is to close) on a read error.
 */
/* One chunk of the answer's body: its size line, the bytes, CRLF. */
static int
out_chunk(struct icap_conn *c, const char *p, size_t n)
{
	char	head[ICAP_CHUNK_HEAD_MAX];
	size_t	hl = icap_chunk_head(head, n);

	if (buf_append(&c->out, head, hl) == -1 ||
	    buf_append(&c->out, p, n) == -1 ||
	    buf_append(&c->out, "\r\n", 2) == -1)
		return -1;
	return 0;
}

static int
spool_send(struct icap_conn *c, size_t upto)
{
	char	buf[ICAP_READ_CHUNK];
	size_t	want;
	ssize_t	n;

	while (c->echo_off < upto) {
		if (buf_used(&c->out) >= ICAP_OUT_HIGH)
			return 0;
		want = upto - c->echo_off < sizeof(buf) ? upto - c->echo_off :
		    sizeof(buf);
		if ((n = spool_read(&c->spool, c->echo_off, buf, want)) <= 0) {
			log_err(c->id, "icap spool read: %s", n == 0 ?
			    "short" : strerror(errno));
			c->keepalive = 0;
			c->state = IS_CLOSE;
			return -1;
		}
		(void)out_chunk(c, buf, (size_t)n);
		c->echo_off += (size_t)n;
	}
	return 1;
}

/* Refills c->out from the spool while echoing an unmodified body. */
static void
echo_fill(struct icap_conn *c)
{
	if (c->state != IS_ECHO || spool_send(c, c->spool.size) != 1)
		return;
	buf_printf(&c->out, "0\r\n\r\n");
	c->state = c->keepalive ? IS_DRAIN : IS_CLOSE;
}

/*
 * While a download whose answer has begun still arrives: everything but
 * its last icap_answer_after bytes goes out now (Squid up to 6 stops
 * sending a body while nothing of the answer's body reaches it); the
 * rest waits for the verdict.
 */
static void
trickle_fill(struct icap_conn *c)
{
	size_t	keep = I.conf->icap_answer_after;

	if (!c->head_sent || c->streaming || c->spool_failed ||
	    c->spool.size <= keep)
		return;
	(void)spool_send(c, c->spool.size - keep);
}

/* ------------------------------------------------------------------ */
/* Heads                                                               */

/* 0 to go on, -1 when waiting for bytes or an answer was queued. */
static int
head_step(struct icap_conn *c)
{
	char	err[128];
	ssize_t	n;
	int	code;

	n = icap_head_end(buf_head(&c->in), buf_used(&c->in), ICAP_HEAD_MAX);
	if (n == 0)
		return -1;
	if (n < 0) {
		answer_error(c, 400, "malformed ICAP head");
		return -1;
	}
	c->started = ev_now();
	I.requests++;
	if ((code = icap_parse_head(buf_head(&c->in), (size_t)n, &c->req, err,
	    sizeof(err))) != 0) {
		answer_error(c, code, err);
		return -1;
	}
	buf_consume(&c->in, (size_t)n);
	if (strcmp(c->req.service, I.conf->icap_service) != 0) {
		answer_error(c, 404, "no such service");
		return -1;
	}
	if (c->req.method == ICAP_OPTIONS) {
		answer_options(c);
		c->state = c->keepalive ? IS_DRAIN : IS_CLOSE;
		return -1;
	}
	c->state = IS_HTTP;
	return 0;
}

static int
http_step(struct icap_conn *c)
{
	char	err[128];
	size_t	need = (size_t)c->req.body;
	int	code;

	if (need > ICAP_HTTP_HEADS_MAX) {
		answer_error(c, 400, "encapsulated HTTP heads too large");
		return -1;
	}
	if (buf_used(&c->in) < need)
		return -1;
	if ((code = icap_parse_http(buf_head(&c->in), need, &c->req,
	    &c->http, err, sizeof(err))) != 0) {
		answer_error(c, code, err);
		return -1;
	}
	if (need > 0) {
		if ((c->heads = malloc(need)) == NULL) {
			answer_error(c, 500, "out of memory");
			return -1;
		}
		memcpy(c->heads, buf_head(&c->in), need);
	}
	c->headslen = need;
	buf_consume(&c->in, need);
	if (c->req.body_kind == ICAP_BODY_NONE) {
		conclude(c, SCAN_CLEAN, "", 0);
		return -1;
	}
	icap_chunked_init(&c->ch);
	c->in_preview = c->req.preview >= 0;
	c->state = IS_BODY;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The connection                                                      */

static void
arm(struct icap_conn *c)
{
	int	mask = 0;

	if (buf_used(&c->out) > 0)
		mask |= EV_WRITE;
	switch (c->state) {
	case IS_HEAD:
	case IS_HTTP:
	case IS_BODY:
		mask |= EV_READ;
		break;
	case IS_STREAM:
		if (buf_used(&c->out) <= ICAP_OUT_HIGH)
			mask |= EV_READ;
		break;
	default:
		break;
	}
	if (ev_io_set(I.loop, &c->io, mask) == -1) {
		log_err(c->id, "icap epoll: %s", strerror(errno));
		icap_close(c);
		return;
	}
	/* While the scanner works the proxy owes nothing. */
	if (c->state == IS_SCAN)
		ev_timer_del(I.loop, &c->timer);
	else
		ev_timer_set(I.loop, &c->timer, I.conf->icap_timeout);
}

/* Runs the connection's state machine as far as its bytes allow. */
static void
icap_process(struct icap_conn *c)
{
	enum icap_state	prev;

	do {
		prev = c->state;
		switch (c->state) {
		case IS_HEAD:
			(void)head_step(c);
			break;
		case IS_HTTP:
			(void)http_step(c);
			break;
		case IS_BODY:
			(void)body_feed(c);
			if (c->state == IS_BODY)
				trickle_fill(c);
			break;
		case IS_STREAM:
			if (!c->body_in)
				(void)body_feed(c);
			if (c->state == IS_STREAM)
				stream_fill(c);
			break;
		case IS_ECHO:
			echo_fill(c);
			break;
		case IS_DRAIN:
			/* The answer is out: the next request may follow. */
			if (buf_used(&c->out) == 0)
				request_reset(c);
			break;
		case IS_SCAN:
		case IS_CLOSE:
			break;
		}
	} while (c->state != prev);
	if (c->state == IS_CLOSE && buf_used(&c->out) == 0) {
		icap_close(c);
		return;
	}
	arm(c);
}

static void
icap_io(struct ev_io *io, int events)
{
	struct icap_conn	*c = io->arg;
	ssize_t			 n;

	if (events & EV_WRITE) {
		if (buf_write_fd(&c->out, c->fd) == -1 && errno != EAGAIN &&
		    errno != EINTR) {
			log_info(c->id, "icap client=%s write: %s", c->peerstr,
			    strerror(errno));
			icap_close(c);
			return;
		}
	}
	if (events & EV_READ) {
		if (buf_room(&c->in) == 0) {
			answer_error(c, 400, "request too large to buffer");
		} else if ((n = buf_read_fd(&c->in, c->fd)) == 0 ||
		    (n == -1 && errno != EAGAIN && errno != EINTR)) {
			if (c->state != IS_HEAD || buf_used(&c->in) > 0)
				log_info(c->id, "icap client=%s closed "
				    "mid-request%s%s", c->peerstr, n == 0 ? "" :
				    ": ", n == 0 ? "" : strerror(errno));
			icap_close(c);
			return;
		}
	}
	icap_process(c);
}

static void
icap_timeout(struct ev_timer *t)
{
	struct icap_conn	*c = t->arg;

	I.timeouts++;
	if (c->state == IS_HEAD && buf_used(&c->in) == 0 &&
	    buf_used(&c->out) == 0) {
		/* An idle kept-alive connection: just close it. */
		icap_close(c);
		return;
	}
	log_warn(c->id, "icap client=%s timeout state=%d", c->peerstr,
	    (int)c->state);
	icap_close(c);
}

static void
icap_close(struct icap_conn *c)
{
	if (c->job != NULL)
		I.scanner->cancel(I.scanner, c->job);
	c->job = NULL;
	ev_timer_del(I.loop, &c->timer);
	ev_io_del(I.loop, &c->io);
	close(c->fd);
	request_reset(c);
	buf_free(&c->in);
	buf_free(&c->out);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		I.conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	I.nconns--;
	free(c);
}

static void
icap_accept(struct ev_io *io, int events)
{
	struct sockaddr_storage	 peer, local;
	struct icap_conn	*c;
	int			 i, fd;

	(void)events;
	for (i = 0; i < ICAP_ACCEPT_BATCH; i++) {
		if ((fd = sock_accept(io->fd, &peer, &local)) == -1) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn(NULL, "icap accept: %s",
				    strerror(errno));
			return;
		}
		if (!cidr_list_match(I.conf->icap_networks.net,
		    I.conf->icap_networks.n, &peer)) {
			char	ps[SOCK_ADDRSTR_MAX];

			sock_format(&peer, ps, sizeof(ps));
			log_warn(NULL, "icap refused client=%s: not in "
			    "icap_networks", ps);
			I.refused_acl++;
			close(fd);
			continue;
		}
		if (I.nconns >= I.conf->icap_max_connections ||
		    (c = calloc(1, sizeof(*c))) == NULL) {
			char	busy[256];
			int	n;

			I.refused_max++;
			log_warn(NULL, "icap refused: %zu connections "
			    "(icap_max_connections)", I.nconns);
			/* Every answer has an ISTag (RFC 3507 4.7). Best
			 * effort: a fresh socket takes this at once. */
			n = snprintf(busy, sizeof(busy), "ICAP/1.0 503 Service "
			    "Unavailable\r\nServer: sporkd\r\nISTag: %s\r\n"
			    "Connection: close\r\nEncapsulated: null-body=0"
			    "\r\n\r\n", icap_istag());
			if (n > 0 && (size_t)n < sizeof(busy))
				(void)send(fd, busy, (size_t)n, MSG_NOSIGNAL);
			close(fd);
			continue;
		}
		I.accepted++;
		I.seq++;
		snprintf(c->id, sizeof(c->id), "i%07x",
		    (unsigned)(I.seq * 2654435761u ^ (unsigned)getpid()) &
		    0xfffffff);
		c->fd = fd;
		c->peer = peer;
		sock_format(&peer, c->peerstr, sizeof(c->peerstr));
		buf_init(&c->in, ICAP_IN_MAX);
		buf_init(&c->out, ICAP_OUT_MAX);
		spool_init(&c->spool, I.conf->spool_dir,
		    I.conf->spool_memory_max);
		c->keepalive = 1;
		c->state = IS_HEAD;
		c->started = ev_now();
		ev_io_init(&c->io, fd, icap_io, c);
		ev_timer_init(&c->timer, icap_timeout, c);
		c->next = I.conns;
		if (I.conns != NULL)
			I.conns->prev = c;
		I.conns = c;
		I.nconns++;
		arm(c);
	}
}

/* ------------------------------------------------------------------ */

int
icap_init(struct ev_loop *loop, const struct conf *conf,
    struct scan_backend *scanner, char *err, size_t errlen)
{
	char	as[SOCK_ADDRSTR_MAX];
	int	i, fd;

	I.loop = loop;
	I.conf = conf;
	I.scanner = scanner;
	if (conf->icap_listen.n == 0)
		return 0;
	if (scanner == NULL) {
		snprintf(err, errlen, "icap_listen needs scan_enable yes");
		return -1;
	}
	if (conf->icap_block_page[0] != '\0' &&
	    (I.page = page_read(conf->icap_block_page, &I.pagelen, err,
	    errlen)) == NULL)
		return -1;
	for (i = 0; i < conf->icap_listen.n; i++) {
		sock_format(&conf->icap_listen.a[i], as, sizeof(as));
		if ((fd = sock_listen(&conf->icap_listen.a[i], 0,
		    ICAP_BACKLOG)) == -1) {
			snprintf(err, errlen, "icap_listen %s: %s", as,
			    strerror(errno));
			return -1;
		}
		ev_io_init(&I.listeners[i], fd, icap_accept, NULL);
		if (ev_io_set(loop, &I.listeners[i], EV_READ) == -1) {
			snprintf(err, errlen, "icap epoll: %s",
			    strerror(errno));
			return -1;
		}
		I.nlisteners++;
		log_info(NULL, "icap listening on %s service=%s", as,
		    conf->icap_service);
	}
	return 0;
}

void
icap_reload(const struct conf *conf)
{
	char	 err[256];
	char	*p;
	size_t	 len;

	if (conf->icap_listen.n == 0 || conf->icap_block_page[0] == '\0')
		return;
	if ((p = page_read(conf->icap_block_page, &len, err,
	    sizeof(err))) == NULL) {
		log_warn(NULL, "icap reload: %s (the old page stays)", err);
		return;
	}
	free(I.page);
	I.page = p;
	I.pagelen = len;
}

void
icap_status(struct buf *out)
{
	if (I.nlisteners == 0)
		return;
	buf_printf(out, "icap.connections=%zu\nicap.accepted=%llu\n"
	    "icap.refused_networks=%llu\nicap.refused_max=%llu\n"
	    "icap.requests=%llu\nicap.options=%llu\nicap.scans=%llu\n"
	    "icap.clean=%llu\nicap.blocked=%llu\nicap.tempfailed=%llu\n"
	    "icap.passed_unclean=%llu\nicap.no_content=%llu\n"
	    "icap.echoed=%llu\nicap.streamed=%llu\nicap.answered_early=%llu\n"
	    "icap.cut=%llu\nicap.errors=%llu\nicap.bad_requests=%llu\n"
	    "icap.timeouts=%llu\nicap.istag=%s\n", I.nconns, I.accepted,
	    I.refused_acl, I.refused_max, I.requests, I.options, I.scans,
	    I.clean, I.blocked, I.tempblocked, I.passed_unclean,
	    I.no_content, I.echoed, I.streamed, I.answered_early, I.cut,
	    I.errors, I.bad_requests, I.timeouts, icap_istag());
}
