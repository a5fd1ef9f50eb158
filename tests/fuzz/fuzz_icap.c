/* SPDX-License-Identifier: MIT */
/*
 * The ICAP parser (src/icap/icap_proto.c) on what a web proxy could send:
 * the input is one ICAP message, the head, the HTTP heads its
 * Encapsulated offsets describe, then the chunked body (and whatever
 * follows it: the next stream). Each stage gets an exactly sized copy of
 * its bytes, so reading past the length it is given is an ASan report.
 * When a stage fails the next still runs, on what is left.
 *
 * Invariants:
 *  - icap_head_end: the first CRLFCRLF within the limit when everything
 *    before it is CRLF lines without NUL, 0 only for a clean prefix under
 *    the limit, -1 otherwise; a smaller limit or a prefix agrees;
 *  - icap_parse_head: 0 or 400, 501, 505 with a reason, the same with a
 *    short or no error buffer; 400 for any length but the head's; on 0 a
 *    method, a NUL-terminated service of [A-Za-z0-9._-] that is in the
 *    request line, a bounded preview, a client IP inet_pton reads, and
 *    Encapsulated offsets in the order and with the entries the method
 *    allows, the first 0 and the body within ICAP_HTTP_HEADS_MAX;
 *  - icap_parse_http: 0 or 400 with a reason, 400 when fewer bytes than
 *    the offsets say; on 0 each head ends with CRLFCRLF at the next
 *    offset, a status only with a response head, in 100..599, a url
 *    NUL-terminated within ICAP_URL_MAX of visible ASCII, non-empty
 *    exactly with a request head, truncated only when full;
 *  - icap_chunked_feed, the body fed whole and in pieces the input's hash
 *    chooses: each call consumes at most what it is given, less only once
 *    done; both ways end alike (error or not, consumed, done, ieof) with
 *    the same output; total is what out accepted; a done stream ends with
 *    CRLFCRLF; once out refuses, -1 and out is never called again; the
 *    output re-encoded with icap_chunk_head decodes to itself. Up to
 *    STREAMS_MAX streams back to back, as after a preview.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "icap_proto.h"
#include "fuzz.h"

#define STREAMS_MAX	8
#define ERR_MAX		128

struct sink {
	char		*buf;
	size_t		 len;
	size_t		 cap;
	size_t		 refuse_at;	/* refuse past this many; SIZE_MAX never */
	int		 refused;
};

static const char *const method_names[] = { "OPTIONS", "REQMOD",
    "RESPMOD" };

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
sink_out(void *arg, const char *p, size_t n)
{
	struct sink	*s = arg;

	FUZZ_CHECK(!s->refused, "out called after refusing");
	FUZZ_CHECK(n > 0, "out called with nothing");
	if (s->len + n > s->refuse_at) {
		s->refused = 1;
		return -1;
	}
	FUZZ_CHECK(s->len + n <= s->cap, "more out (%zu) than in (%zu)",
	    s->len + n, s->cap);
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

/* An exactly sized copy (never NULL: at least one byte is allocated). */
static char *
dup_exact(const void *p, size_t n)
{
	char	*c;

	c = malloc(n > 0 ? n : 1);
	FUZZ_CHECK(c != NULL, "malloc");
	if (n > 0)
		memcpy(c, p, n);
	return c;
}

static int
err_ok(const char *err)
{
	return memchr(err, '\0', ERR_MAX) != NULL && err[0] != '\0';
}

/* What icap_head_end must say, found another way: the first CRLFCRLF by
 * memmem, then the bytes before it (or before the limit) checked. */
static ssize_t
head_end_model(const char *p, size_t len, size_t max)
{
	const char	*e;
	size_t		 end = 0, lim, i;

	if ((e = memmem(p, len, "\r\n\r\n", 4)) != NULL)
		end = (size_t)(e - p) + 4;
	lim = end > 0 && end <= max ? end : (len < max ? len : max);
	for (i = 0; i < lim; i++) {
		if (p[i] == '\0')
			return -1;
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return -1;
		if (p[i] == '\r' && i + 1 < len && p[i + 1] != '\n')
			return -1;
	}
	if (end > 0 && end <= max)
		return (ssize_t)end;
	return len >= max ? -1 : 0;
}

static void
check_head_end(const char *p, size_t size, uint64_t *rs, ssize_t *np)
{
	ssize_t	n, m;
	size_t	k, max;

	n = icap_head_end(p, size, ICAP_HEAD_MAX);
	m = head_end_model(p, size, ICAP_HEAD_MAX);
	if (n != m) {
		fuzz_dump("input", p, size);
		FUZZ_CHECK(0, "head_end %zd, model %zd", n, m);
	}
	if (n > 0) {
		FUZZ_CHECK(memcmp(p + n - 4, "\r\n\r\n", 4) == 0,
		    "head does not end with CRLFCRLF");
		FUZZ_CHECK(icap_head_end(p, (size_t)n, (size_t)n) == n,
		    "the head alone is not a head");
		k = (size_t)(fuzz_rand(rs) % (uint64_t)n);
		FUZZ_CHECK(icap_head_end(p, k, ICAP_HEAD_MAX) == 0,
		    "a prefix of %zu bytes is not incomplete", k);
	}
	max = 1 + (size_t)(fuzz_rand(rs) % (size + 1));
	m = icap_head_end(p, size, max);
	FUZZ_CHECK(m == head_end_model(p, size, max),
	    "head_end with max %zu: %zd", max, m);
	if (n > 0)
		FUZZ_CHECK(m == ((size_t)n <= max ? n : -1),
		    "head_end with max %zu: %zd, %zd without", max, m, n);
	*np = n;
}

static void
check_req(const struct icap_req *r, const char *head, size_t n)
{
	struct in6_addr	 a6;
	struct in_addr	 a4;
	const char	*m;
	size_t		 sl, i, ml;
	long		 first;

	FUZZ_CHECK(r->method == ICAP_OPTIONS || r->method == ICAP_REQMOD ||
	    r->method == ICAP_RESPMOD, "method %d", r->method);
	m = method_names[r->method];
	ml = strlen(m);
	FUZZ_CHECK(n > ml && memcmp(head, m, ml) == 0 && head[ml] == ' ',
	    "method %s is not the request line's", m);

	sl = strnlen(r->service, ICAP_SERVICE_MAX);
	FUZZ_CHECK(sl > 0 && sl < ICAP_SERVICE_MAX, "service length %zu", sl);
	for (i = 0; i < sl; i++) {
		unsigned char	c = (unsigned char)r->service[i];

		FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == '-',
		    "service byte 0x%02x", c);
	}
	FUZZ_CHECK(memmem(head, n, r->service, sl) != NULL,
	    "service not in the head");

	FUZZ_CHECK(r->preview >= -1 && r->preview <= ICAP_PREVIEW_MAX,
	    "preview %ld", r->preview);
	FUZZ_CHECK(r->allow_204 == 0 || r->allow_204 == 1, "allow_204 %d",
	    r->allow_204);
	FUZZ_CHECK(strnlen(r->client_ip, ICAP_CLIENT_IP_MAX) <
	    ICAP_CLIENT_IP_MAX, "client_ip not terminated");
	if (r->client_ip[0] != '\0')
		FUZZ_CHECK(inet_pton(AF_INET, r->client_ip, &a4) == 1 ||
		    inet_pton(AF_INET6, r->client_ip, &a6) == 1,
		    "client_ip %s", r->client_ip);

	FUZZ_CHECK(r->body_kind == ICAP_BODY_NONE ||
	    r->body_kind == ICAP_BODY_REQ || r->body_kind == ICAP_BODY_RES,
	    "body_kind %d", r->body_kind);
	if (r->body == -1) {
		FUZZ_CHECK(r->method == ICAP_OPTIONS && r->req_hdr == -1 &&
		    r->res_hdr == -1, "no body offset");
		return;
	}
	FUZZ_CHECK(r->body >= 0 && r->body <= ICAP_HTTP_HEADS_MAX, "body %ld",
	    r->body);
	first = r->req_hdr >= 0 ? r->req_hdr : r->res_hdr >= 0 ? r->res_hdr :
	    r->body;
	FUZZ_CHECK(first == 0, "first offset %ld", first);
	FUZZ_CHECK(r->req_hdr >= -1 && r->res_hdr >= -1, "offsets");
	if (r->req_hdr >= 0 && r->res_hdr >= 0)
		FUZZ_CHECK(r->req_hdr < r->res_hdr, "req_hdr >= res_hdr");
	if (r->res_hdr >= 0)
		FUZZ_CHECK(r->res_hdr < r->body, "res_hdr >= body");
	if (r->req_hdr >= 0)
		FUZZ_CHECK(r->req_hdr < r->body, "req_hdr >= body");
	switch (r->method) {
	case ICAP_OPTIONS:
		FUZZ_CHECK(r->req_hdr == -1 && r->res_hdr == -1 &&
		    r->body == 0 && r->body_kind == ICAP_BODY_NONE,
		    "OPTIONS encapsulates more than null-body");
		break;
	case ICAP_REQMOD:
		FUZZ_CHECK(r->req_hdr == 0 && r->res_hdr == -1 &&
		    r->body_kind != ICAP_BODY_RES, "REQMOD entries");
		break;
	case ICAP_RESPMOD:
		FUZZ_CHECK(r->body_kind != ICAP_BODY_REQ &&
		    (r->body_kind != ICAP_BODY_RES || r->res_hdr >= 0),
		    "RESPMOD entries");
		break;
	}
}

/* 0 when the ICAP head is good, with *r; *np its length (0 or -1 when
 * there is none). */
static int
check_head(const char *data, size_t size, uint64_t *rs, struct icap_req *r,
    ssize_t *np)
{
	struct icap_req	 r2;
	char		 err[ERR_MAX], small[2];
	char		*head;
	ssize_t		 n;
	size_t		 k;
	int		 rc;

	check_head_end(data, size, rs, &n);
	*np = n;
	if (n <= 0)
		return -1;
	head = dup_exact(data, (size_t)n);
	memset(err, 0, sizeof(err));
	rc = icap_parse_head(head, (size_t)n, r, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == 400 || rc == 501 || rc == 505,
	    "parse_head %d", rc);
	FUZZ_CHECK(rc == 0 || err_ok(err), "parse_head %d without reason",
	    rc);
	FUZZ_CHECK(icap_parse_head(head, (size_t)n, &r2, small,
	    sizeof(small)) == rc, "parse_head differs with a small err");
	FUZZ_CHECK(icap_parse_head(head, (size_t)n, &r2, NULL, 0) == rc,
	    "parse_head differs without err");
	if (rc == 0) {
		check_req(r, head, (size_t)n);
		FUZZ_CHECK(memcmp(r, &r2, sizeof(r2)) == 0,
		    "parse_head is not deterministic");
	}
	/* Any other length is not a whole head. */
	k = (size_t)(fuzz_rand(rs) % (size + 1));
	if (k != (size_t)n) {
		char	*other = dup_exact(data, k);

		FUZZ_CHECK(icap_parse_head(other, k, &r2, NULL, 0) == 400,
		    "parse_head of %zu bytes of a %zd-byte head", k, n);
		free(other);
	}
	free(head);
	return rc == 0 ? 0 : -1;
}

/* The HTTP head at off..end must end with CRLFCRLF at end. */
static void
check_seg(const char *p, long off, long end, const char *what)
{
	FUZZ_CHECK(end - off >= 4 && memcmp(p + end - 4, "\r\n\r\n", 4) == 0,
	    "%s head [%ld, %ld) accepted without its blank line", what, off,
	    end);
	FUZZ_CHECK(icap_head_end(p + off, (size_t)(end - off),
	    (size_t)(end - off)) == end - off, "%s head not one head", what);
}

static void
check_http(const char *p, size_t avail, const struct icap_req *r)
{
	struct icap_http h;
	char		 err[ERR_MAX];
	char		*heads;
	size_t		 ul, i;
	int		 rc;

	if (r->body < 0)
		return;
	if ((size_t)r->body > avail) {
		heads = dup_exact(p, avail);
		FUZZ_CHECK(icap_parse_http(heads, avail, r, &h, NULL, 0) == 400,
		    "parse_http accepted %zu bytes for %ld", avail, r->body);
		free(heads);
		return;
	}
	heads = dup_exact(p, (size_t)r->body);
	memset(err, 0, sizeof(err));
	memset(&h, 0xaa, sizeof(h));
	rc = icap_parse_http(heads, (size_t)r->body, r, &h, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == 400, "parse_http %d", rc);
	FUZZ_CHECK(rc == 0 || err_ok(err), "parse_http without reason");
	ul = strnlen(h.url, ICAP_URL_MAX);
	FUZZ_CHECK(ul < ICAP_URL_MAX, "url not NUL-terminated");
	if (rc != 0) {
		free(heads);
		return;
	}
	for (i = 0; i < ul; i++)
		FUZZ_CHECK((unsigned char)h.url[i] > 0x20 &&
		    (unsigned char)h.url[i] < 0x7f, "url byte 0x%02x at %zu",
		    (unsigned char)h.url[i], i);
	FUZZ_CHECK((ul > 0) == (r->req_hdr >= 0), "url \"%s\", req_hdr %ld",
	    h.url, r->req_hdr);
	FUZZ_CHECK(!h.url_truncated || ul == ICAP_URL_MAX - 1,
	    "url truncated at %zu", ul);
	if (r->res_hdr >= 0)
		FUZZ_CHECK(h.status >= 100 && h.status <= 599, "status %d",
		    h.status);
	else
		FUZZ_CHECK(h.status == 0 && h.chunked_te == 0,
		    "status %d without a response", h.status);
	FUZZ_CHECK(h.chunked_te == 0 || h.chunked_te == 1, "chunked_te %d",
	    h.chunked_te);
	if (r->req_hdr >= 0)
		check_seg(heads, r->req_hdr, r->res_hdr >= 0 ? r->res_hdr :
		    r->body, "request");
	if (r->res_hdr >= 0)
		check_seg(heads, r->res_hdr, r->body, "response");
	free(heads);
}

/* Feeds p[0, len) to a fresh decoder in pieces (whole when split is 0);
 * returns the bytes consumed, or -1. */
static ssize_t
decode(const char *p, size_t len, int split, uint64_t *rs,
    struct icap_chunked *c, struct sink *s)
{
	char	err[ERR_MAX];
	size_t	off = 0, n;
	ssize_t	r;

	icap_chunked_init(c);
	do {
		n = len - off;
		if (split && n > 0) {
			if (fuzz_rand(rs) % 4 == 0)
				n = 1;
			else
				n = 1 + (size_t)(fuzz_rand(rs) % n);
		}
		memset(err, 0, sizeof(err));
		r = icap_chunked_feed(c, p + off, n, sink_out, s, err,
		    sizeof(err));
		if (r == -1) {
			FUZZ_CHECK(err_ok(err), "chunked error without reason");
			FUZZ_CHECK(icap_chunked_feed(c, "0\r\n\r\n", 5, sink_out,
			    s, NULL, 0) == -1, "decoder works after an error");
			return -1;
		}
		FUZZ_CHECK(r >= 0 && (size_t)r <= n, "consumed %zd of %zu", r,
		    n);
		FUZZ_CHECK((size_t)r == n || c->done,
		    "consumed %zd of %zu without being done", r, n);
		FUZZ_CHECK(c->total == s->len, "total %llu, out got %zu",
		    (unsigned long long)c->total, s->len);
		off += (size_t)r;
	} while (off < len && !c->done);
	if (c->done) {
		FUZZ_CHECK(off >= 5 && memcmp(p + off - 4, "\r\n\r\n", 4) == 0,
		    "done without CRLFCRLF at %zu", off);
		FUZZ_CHECK(icap_chunked_feed(c, p, len, sink_out, s, NULL, 0) ==
		    0, "took more once done");
	}
	return (ssize_t)off;
}

/* The output, cut in chunks the hash chooses, written with
 * icap_chunk_head, decodes to itself. */
static void
reencode(const char *out, size_t len, uint64_t *rs)
{
	struct icap_chunked	c;
	struct sink		s;
	char			*enc, *dec;
	size_t			 cap, o = 0, i = 0, n;
	ssize_t			 r;

	cap = len * (ICAP_CHUNK_HEAD_MAX + 2) + 16;
	enc = malloc(cap);
	dec = malloc(len + 1);
	FUZZ_CHECK(enc != NULL && dec != NULL, "malloc");
	while (i < len) {
		n = 1 + (size_t)(fuzz_rand(rs) % (len - i));
		o += icap_chunk_head(enc + o, n);
		memcpy(enc + o, out + i, n);
		o += n;
		memcpy(enc + o, "\r\n", 2);
		o += 2;
		i += n;
	}
	o += icap_chunk_head(enc + o, 0);
	memcpy(enc + o, "\r\n", 2);
	o += 2;
	memset(&s, 0, sizeof(s));
	s.buf = dec;
	s.cap = len;
	s.refuse_at = SIZE_MAX;
	r = decode(enc, o, 1, rs, &c, &s);
	FUZZ_CHECK(r == (ssize_t)o && c.done && !c.ieof && s.len == len &&
	    memcmp(dec, out, len) == 0, "re-encoded output: %zd of %zu", r,
	    o);
	free(enc);
	free(dec);
}

static void
check_chunked(const char *p, size_t len, uint64_t *rs)
{
	struct icap_chunked	c1, c2, c3;
	struct sink		s1, s2, s3;
	char			*body, *o1, *o2, *o3;
	size_t			 off = 0;
	ssize_t			 r1, r2, r3;
	int			 k;

	for (k = 0; k < STREAMS_MAX && off < len; k++) {
		body = dup_exact(p + off, len - off);
		o1 = malloc(len - off + 1);
		o2 = malloc(len - off + 1);
		o3 = malloc(len - off + 1);
		FUZZ_CHECK(o1 != NULL && o2 != NULL && o3 != NULL, "malloc");
		memset(&s1, 0, sizeof(s1));
		s1.buf = o1;
		s1.cap = len - off;
		s1.refuse_at = SIZE_MAX;
		s2 = s1;
		s2.buf = o2;
		r1 = decode(body, len - off, 0, rs, &c1, &s1);
		r2 = decode(body, len - off, 1, rs, &c2, &s2);
		if (r1 != r2 || s1.len != s2.len ||
		    memcmp(o1, o2, s1.len) != 0 || c1.done != c2.done ||
		    c1.ieof != c2.ieof || c1.total != c2.total) {
			fuzz_dump("body", body, len - off);
			fuzz_dump("whole", o1, s1.len);
			fuzz_dump("split", o2, s2.len);
			FUZZ_CHECK(0, "whole %zd (done %d ieof %d), split %zd "
			    "(done %d ieof %d)", r1, c1.done, c1.ieof, r2,
			    c2.done, c2.ieof);
		}
		FUZZ_CHECK(s1.len <= (r1 == -1 ? len - off : (size_t)r1),
		    "more out than consumed");
		if (s1.len > 0) {
			/* out refusing at some byte stops it there. */
			s3 = s1;
			s3.buf = o3;
			s3.len = 0;
			s3.refuse_at = (size_t)(fuzz_rand(rs) % s1.len);
			r3 = decode(body, len - off, 1, rs, &c3, &s3);
			FUZZ_CHECK(r3 == -1 && s3.refused &&
			    s3.len <= s3.refuse_at &&
			    memcmp(o3, o1, s3.len) == 0,
			    "refusing out: %zd", r3);
			reencode(o1, s1.len, rs);
		}
		free(body);
		free(o1);
		free(o2);
		free(o3);
		if (r1 <= 0 || !c1.done)
			break;
		off += (size_t)r1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*p = (const char *)data;
	struct icap_req	 r;
	uint64_t	 rs;
	ssize_t		 n;
	size_t		 rest;

	rs = fuzz_hash(data, size);
	if (check_head(p, size, &rs, &r, &n) == 0) {
		rest = size - (size_t)n;
		check_http(p + n, rest, &r);
		if (r.body >= 0 && (size_t)r.body <= rest)
			check_chunked(p + n + r.body, rest - (size_t)r.body,
			    &rs);
		else
			check_chunked(p + n, rest, &rs);
	} else if (n > 0)
		check_chunked(p + n, size - (size_t)n, &rs);
	else
		check_chunked(p, size, &rs);
	return 0;
}
