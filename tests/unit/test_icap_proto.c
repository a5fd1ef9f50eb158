/* SPDX-License-Identifier: MIT */
/* The ICAP parser: head ends, ICAP heads as Squid and c-icap-client send
 * them and every way to get one wrong, the encapsulated HTTP heads, and
 * the chunked decoder fed whole, in two pieces at every cut and byte by
 * byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icap_proto.h"
#include "unit.h"

#define S(x)		x, sizeof(x) - 1
#define SINK_MAX	8192
#define MSG_MAX		(3 * ICAP_HEAD_MAX)

/* What the chunked decoder handed out. */
struct sink {
	char	buf[SINK_MAX];
	size_t	len;
	size_t	refuse_at;	/* refuse once this much is out; 0: never */
	int	calls_after_refusal;
	int	refused;
};

static int
sink_out(void *arg, const char *p, size_t n)
{
	struct sink	*s = arg;

	if (s->refused)
		s->calls_after_refusal++;
	if (n == 0 || s->len + n > sizeof(s->buf) ||
	    (s->refuse_at && s->len + n >= s->refuse_at)) {
		s->refused = 1;
		return -1;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

static void
test_head_end(void)
{
	static const struct {
		const char	*in;
		size_t		 len;
		size_t		 max;
		ssize_t		 want;
	} t[] = {
		{ S("OPTIONS icap://h/s ICAP/1.0\r\n\r\n"), 100, 31 },
		{ S("OPTIONS icap://h/s ICAP/1.0\r\n\r\nREQMOD"), 100, 31 },
		{ S("OPTIONS icap://h/s ICAP/1.0\r\n\r\n"), 31, 31 },
		{ S("OPTIONS icap://h/s ICAP/1.0\r\n\r\n"), 30, -1 },
		{ S("OPTIONS icap://h/s ICAP/1.0\r\n\r"), 100, 0 },
		{ S("OPTIONS icap://h/s ICAP/1.0\r\n"), 100, 0 },
		{ S("OPTIONS icap://h/s ICAP/1.0\r"), 100, 0 },
		{ S(""), 100, 0 },
		{ S("\r\n\r\n"), 100, 4 },
		{ S("OPTIONS icap://h/s ICAP/1.0\n\n"), 100, -1 },
		{ S("OPTIONS icap://h/s ICAP/1.0\r\n\n"), 100, -1 },
		{ S("OPTIONS icap://h/s\rICAP/1.0\r\n\r\n"), 100, -1 },
		{ S("OPTIONS icap://h/s ICAP/1.0\r\r\n\r\n"), 100, -1 },
		{ S("OPTIONS\0icap://h/s ICAP/1.0\r\n\r\n"), 100, -1 },
		{ S("\n"), 100, -1 },
		{ S("0123456789"), 10, -1 },
		{ S("012345678"), 10, 0 },
		{ S("A: b\r\n\r\n"), 0, -1 },
	};
	size_t	i;
	ssize_t	r;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		r = icap_head_end(t[i].in, t[i].len, t[i].max);
		CHECK(r == t[i].want, "head_end %zu: got %zd want %zd", i, r,
		    t[i].want);
	}
}

static void
test_heads_ok(void)
{
	static const struct {
		const char		*in;
		enum icap_method	 method;
		const char		*service;
		int			 allow_204;
		long			 preview;
		long			 req_hdr, res_hdr, body;
		enum icap_body		 kind;
		const char		*client_ip;
	} t[] = {
		/* Squid, RESPMOD with a preview. */
		{ "RESPMOD icap://127.0.0.1:1344/avscan ICAP/1.0\r\n"
		  "Host: 127.0.0.1:1344\r\n"
		  "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
		  "Encapsulated: req-hdr=0, res-hdr=137, res-body=296\r\n"
		  "Preview: 1024\r\n"
		  "Allow: 204, trailers\r\n"
		  "X-Client-IP: 10.0.0.1\r\n\r\n",
		  ICAP_RESPMOD, "avscan", 1, 1024, 0, 137, 296, ICAP_BODY_RES,
		  "10.0.0.1" },
		/* Squid, REQMOD of a GET. */
		{ "REQMOD icap://127.0.0.1:1344/avscan ICAP/1.0\r\n"
		  "Host: 127.0.0.1:1344\r\n"
		  "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
		  "Encapsulated: req-hdr=0, null-body=412\r\n"
		  "Allow: 204\r\n"
		  "X-Client-IP: 10.0.0.1\r\n\r\n",
		  ICAP_REQMOD, "avscan", 1, -1, 0, -1, 412, ICAP_BODY_NONE,
		  "10.0.0.1" },
		/* Squid, REQMOD of a POST. */
		{ "REQMOD icap://[::1]:1344/avscan ICAP/1.0\r\n"
		  "Host: [::1]:1344\r\n"
		  "Encapsulated: req-hdr=0, req-body=500\r\n"
		  "Preview: 0\r\n"
		  "Allow: 204, trailers\r\n"
		  "X-Client-IP: 2001:db8::1\r\n\r\n",
		  ICAP_REQMOD, "avscan", 1, 0, 0, -1, 500, ICAP_BODY_REQ,
		  "2001:db8::1" },
		/* Squid's OPTIONS. */
		{ "OPTIONS icap://127.0.0.1:1344/avscan ICAP/1.0\r\n"
		  "Host: 127.0.0.1:1344\r\n"
		  "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
		  "Encapsulated: null-body=0\r\n"
		  "Allow: 206\r\n\r\n",
		  ICAP_OPTIONS, "avscan", 0, -1, -1, -1, 0, ICAP_BODY_NONE, "" },
		/* c-icap-client: OPTIONS, then RESPMOD of a file (no req-hdr). */
		{ "OPTIONS icap://localhost/avscan ICAP/1.0\r\n"
		  "Host: localhost\r\n"
		  "User-Agent: C-ICAP-Client-Library/0.5.10\r\n"
		  "Encapsulated: null-body=0\r\n\r\n",
		  ICAP_OPTIONS, "avscan", 0, -1, -1, -1, 0, ICAP_BODY_NONE, "" },
		{ "RESPMOD icap://localhost:1344/avscan ICAP/1.0\r\n"
		  "Host: localhost:1344\r\n"
		  "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
		  "Encapsulated: res-hdr=0, res-body=137\r\n"
		  "Preview: 1024\r\n"
		  "Allow: 204\r\n"
		  "User-Agent: C-ICAP-Client-Library/0.5.10\r\n\r\n",
		  ICAP_RESPMOD, "avscan", 1, 1024, -1, 0, 137, ICAP_BODY_RES,
		  "" },
		/* OPTIONS with no Encapsulated at all. */
		{ "OPTIONS icap://h/s ICAP/1.0\r\n\r\n",
		  ICAP_OPTIONS, "s", 0, -1, -1, -1, -1, ICAP_BODY_NONE, "" },
		/* A query, lower-case names, tabs, no spaces after commas,
		 * a v4-mapped client, an empty field. */
		{ "RESPMOD ICAP://h.example/Av-Scan_1.x?mode=fast&x=1 ICAP/1.0\r\n"
		  "encapsulated:\treq-hdr=0,res-hdr=10 ,\tnull-body=20\t\r\n"
		  "allow: trailers,,204\r\n"
		  "PREVIEW:  0 \r\n"
		  "x-client-ip: ::ffff:10.0.0.1\r\n"
		  "X-Empty:\r\n\r\n",
		  ICAP_RESPMOD, "Av-Scan_1.x", 1, 0, 0, 10, 20, ICAP_BODY_NONE,
		  "::ffff:10.0.0.1" },
		/* Allow without 204; the largest preview and head. */
		{ "RESPMOD icap://h/s ICAP/1.0\r\n"
		  "Encapsulated: res-hdr=0, res-body=65536\r\n"
		  "Allow: 2040, trailers\r\n"
		  "Preview: 1073741824\r\n\r\n",
		  ICAP_RESPMOD, "s", 0, 1073741824L, -1, 0, 65536, ICAP_BODY_RES,
		  "" },
		/* RESPMOD of nothing: only null-body. */
		{ "RESPMOD icap://h/s ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n",
		  ICAP_RESPMOD, "s", 0, -1, -1, -1, 0, ICAP_BODY_NONE, "" },
		/* A service of ICAP_SERVICE_MAX - 1 bytes. */
		{ "OPTIONS icap://h/"
		  "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-"
		  " ICAP/1.0\r\n\r\n",
		  ICAP_OPTIONS,
		  "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-",
		  0, -1, -1, -1, -1, ICAP_BODY_NONE, "" },
	};
	struct icap_req	r;
	char		err[128];
	size_t		i;
	int		rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err[0] = '\0';
		rc = icap_parse_head(t[i].in, strlen(t[i].in), &r, err,
		    sizeof(err));
		CHECK(rc == 0, "head ok %zu: %d (%s)", i, rc, err);
		if (rc != 0)
			continue;
		CHECK(r.method == t[i].method, "head ok %zu: method %d", i,
		    r.method);
		CHECK(strcmp(r.service, t[i].service) == 0,
		    "head ok %zu: service %s", i, r.service);
		CHECK(r.allow_204 == t[i].allow_204, "head ok %zu: allow_204",
		    i);
		CHECK(r.preview == t[i].preview, "head ok %zu: preview %ld",
		    i, r.preview);
		CHECK(r.req_hdr == t[i].req_hdr && r.res_hdr == t[i].res_hdr &&
		    r.body == t[i].body && r.body_kind == t[i].kind,
		    "head ok %zu: encapsulated %ld %ld %ld %d", i, r.req_hdr,
		    r.res_hdr, r.body, r.body_kind);
		CHECK(strcmp(r.client_ip, t[i].client_ip) == 0,
		    "head ok %zu: client_ip %s", i, r.client_ip);
	}
}

#define RL	"RESPMOD icap://h/s ICAP/1.0\r\n"
#define QL	"REQMOD icap://h/s ICAP/1.0\r\n"
#define OL	"OPTIONS icap://h/s ICAP/1.0\r\n"
#define ENC	"Encapsulated: req-hdr=0, res-hdr=10, res-body=20\r\n"
#define QENC	"Encapsulated: req-hdr=0, null-body=10\r\n"

static void
test_heads_bad(void)
{
	static const struct {
		const char	*in;
		int		 code;
	} t[] = {
		/* Not a whole head. */
		{ RL ENC, 400 },
		{ RL ENC "\r\nX", 400 },
		{ "\r\n\r\n", 400 },
		{ RL "Encapsulated: req-hdr=0, null-body=10\n\r\n", 400 },
		/* The request line. */
		{ "GET / HTTP/1.1\r\n\r\n", 400 },
		{ "FOO icap://h/s ICAP/1.0\r\n\r\n", 501 },
		{ "PATCH icap://h/s ICAP/1.0\r\n\r\n", 501 },
		{ "options icap://h/s ICAP/1.0\r\n\r\n", 400 },
		{ "RESP-MOD icap://h/s ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap://h/s ICAP/1.1\r\n\r\n", 505 },
		{ "OPTIONS icap://h/s ICAP/2.0\r\n\r\n", 505 },
		{ "OPTIONS icap://h/s ICAP/1.0 \r\n\r\n", 400 },
		{ "OPTIONS icap://h/s ICAP/1\r\n\r\n", 400 },
		{ "OPTIONS icap://h/s ICAP/1.0x\r\n\r\n", 400 },
		{ "OPTIONS icap://h/s icap/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap://h/s HTTP/1.0\r\n\r\n", 400 },
		{ "OPTIONS  icap://h/s ICAP/1.0\r\n\r\n", 400 },
		{ " OPTIONS icap://h/s ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS\ticap://h/s ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap://h/s\r\n\r\n", 400 },
		{ "OPTIONS icap://h/s ICAP/1.0 x\r\n\r\n", 400 },
		/* The URI and its service. */
		{ "OPTIONS http://h/s ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap:///s ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap://h ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap://h/ ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap://h/?q ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap://h/a/b ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap://h/s#f ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap://u@h/s ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap://h/s%41 ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap://h/\xc3\xa9 ICAP/1.0\r\n\r\n", 400 },
		{ "OPTIONS icap://h/"
		  "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
		  " ICAP/1.0\r\n\r\n", 400 },
		/* Header lines. */
		{ OL "X-A: 1\r\n folded\r\n\r\n", 400 },
		{ OL "X-A: 1\r\n\tfolded\r\n\r\n", 400 },
		{ OL "X-A : 1\r\n\r\n", 400 },
		{ OL ": 1\r\n\r\n", 400 },
		{ OL "X A: 1\r\n\r\n", 400 },
		{ OL "X-A\r\n\r\n", 400 },
		{ OL "X-A: a\x01z\r\n\r\n", 400 },
		{ OL "X-A: a\x7fz\r\n\r\n", 400 },
		{ OL "X-A(: 1\r\n\r\n", 400 },
		/* Encapsulated. */
		{ QL "\r\n", 400 },
		{ RL "Preview: 0\r\n\r\n", 400 },
		{ RL ENC ENC "\r\n", 400 },
		{ QL "Encapsulated: req-hdr=1, null-body=10\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0, req-hdr=5, null-body=10\r\n\r\n",
		  400 },
		{ QL "Encapsulated: req-hdr=0, null-body=0\r\n\r\n", 400 },
		{ RL "Encapsulated: req-hdr=0, res-hdr=20, res-body=10\r\n\r\n",
		  400 },
		{ RL "Encapsulated: req-hdr=0, null-body=5, res-body=9\r\n\r\n",
		  400 },
		{ QL "Encapsulated: req-hdr=0, null-body=5, null-body=9\r\n\r\n",
		  400 },
		{ QL "Encapsulated: req-hdr=0\r\n\r\n", 400 },
		{ RL "Encapsulated: res-hdr=0, req-hdr=10, res-body=20\r\n\r\n",
		  400 },
		{ QL "Encapsulated: req-hdr=0, res-body=10\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0, res-hdr=10, null-body=20\r\n\r\n",
		  400 },
		{ QL "Encapsulated: null-body=0\r\n\r\n", 400 },
		{ QL "Encapsulated: req-body=0\r\n\r\n", 400 },
		{ RL "Encapsulated: req-hdr=0, res-body=10\r\n\r\n", 400 },
		{ RL "Encapsulated: res-body=0\r\n\r\n", 400 },
		{ RL "Encapsulated: req-hdr=0, req-body=10\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=+0, null-body=10\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=-0, null-body=10\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0, null-body=-10\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0, null-body=\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0, null-body=0x10\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0, null-body=1 0\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0, "
		  "null-body=99999999999999999999\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0, "
		  "null-body=9223372036854775808\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0, "
		  "null-body=9223372036854775807\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0, null-body=65537\r\n\r\n", 400 },
		{ QL "Encapsulated: foo-hdr=0, null-body=10\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr = 0, null-body=10\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0,, null-body=10\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0, null-body=10,\r\n\r\n", 400 },
		{ QL "Encapsulated: req-hdr=0; null-body=10\r\n\r\n", 400 },
		{ QL "Encapsulated: , req-hdr=0, null-body=10\r\n\r\n", 400 },
		{ QL "Encapsulated:\r\n\r\n", 400 },
		{ OL "Encapsulated: opt-body=0\r\n\r\n", 400 },
		{ OL "Encapsulated: res-body=0\r\n\r\n", 400 },
		{ OL "Encapsulated: req-hdr=0, null-body=10\r\n\r\n", 400 },
		{ OL "Encapsulated: null-body=5\r\n\r\n", 400 },
		/* Preview. */
		{ RL ENC "Preview: -1\r\n\r\n", 400 },
		{ RL ENC "Preview: +1\r\n\r\n", 400 },
		{ RL ENC "Preview:\r\n\r\n", 400 },
		{ RL ENC "Preview: 12a\r\n\r\n", 400 },
		{ RL ENC "Preview: 1 2\r\n\r\n", 400 },
		{ RL ENC "Preview: 1073741825\r\n\r\n", 400 },
		{ RL ENC "Preview: 99999999999999999999999\r\n\r\n", 400 },
		{ RL ENC "Preview: 10\r\nPreview: 10\r\n\r\n", 400 },
		/* Allow. */
		{ RL ENC "Allow: 204 trailers\r\n\r\n", 400 },
		{ RL ENC "Allow: 204;q=1\r\n\r\n", 400 },
		/* X-Client-IP. */
		{ RL ENC "X-Client-IP: 10.0.0.256\r\n\r\n", 400 },
		{ RL ENC "X-Client-IP: 10.0.0.1 evil\r\n\r\n", 400 },
		{ RL ENC "X-Client-IP: 10.0.0.1, 10.0.0.2\r\n\r\n", 400 },
		{ RL ENC "X-Client-IP: host.example\r\n\r\n", 400 },
		{ RL ENC "X-Client-IP:\r\n\r\n", 400 },
		{ RL ENC "X-Client-IP: fe80::1%eth0\r\n\r\n", 400 },
		{ RL ENC "X-Client-IP: "
		  "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:1\r\n\r\n",
		  400 },
		{ RL ENC "X-Client-IP: 10.0.0.1\r\nX-Client-IP: 10.0.0.1\r\n\r\n",
		  400 },
	};
	struct icap_req	r;
	char		err[128], small[4];
	size_t		i;
	int		rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err[0] = '\0';
		rc = icap_parse_head(t[i].in, strlen(t[i].in), &r, err,
		    sizeof(err));
		CHECK(rc == t[i].code, "head bad %zu: got %d want %d (%s)", i,
		    rc, t[i].code, t[i].in);
		CHECK(rc == 0 || err[0] != '\0', "head bad %zu: no reason", i);
		/* A short or missing error buffer changes nothing else. */
		CHECK(icap_parse_head(t[i].in, strlen(t[i].in), &r, small,
		    sizeof(small)) == rc && strlen(small) < sizeof(small),
		    "head bad %zu: small err", i);
		CHECK(icap_parse_head(t[i].in, strlen(t[i].in), &r, NULL, 0) ==
		    rc, "head bad %zu: no err", i);
	}
}

/* The reason names the trouble: what icap.c logs. */
static void
test_reasons(void)
{
	static const struct {
		const char	*in;
		const char	*why;
	} t[] = {
		{ OL "X-A: 1\r\n folded\r\n\r\n", "folded header line" },
		{ RL ENC ENC "\r\n", "duplicate Encapsulated" },
		{ QL "\r\n", "no Encapsulated header" },
		{ OL "Encapsulated: opt-body=0\r\n\r\n",
		  "opt-body not supported" },
		{ "FOO icap://h/s ICAP/1.0\r\n\r\n", "method not implemented" },
	};
	struct icap_chunked	c;
	struct icap_req		r;
	char			err[128];
	size_t			i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err[0] = '\0';
		icap_parse_head(t[i].in, strlen(t[i].in), &r, err, sizeof(err));
		CHECK(strcmp(err, t[i].why) == 0, "reason %zu: %s", i, err);
	}
	icap_chunked_init(&c);
	icap_chunked_feed(&c, S("0\r\nX: 1\r\n\r\n"), NULL, NULL, err,
	    sizeof(err));
	CHECK(strcmp(err, "trailer after the last chunk") == 0,
	    "reason trailer: %s", err);
}

/* ICAP_HEADERS_MAX header lines are fine, one more is not. */
static void
test_header_count(void)
{
	static char	in[8192];
	struct icap_req	r;
	size_t		o, k;
	int		n;

	for (n = ICAP_HEADERS_MAX; n <= ICAP_HEADERS_MAX + 1; n++) {
		o = (size_t)snprintf(in, sizeof(in), "%s", OL);
		for (k = 0; k < (size_t)n; k++)
			o += (size_t)snprintf(in + o, sizeof(in) - o,
			    "X-H%zu: v\r\n", k);
		o += (size_t)snprintf(in + o, sizeof(in) - o, "\r\n");
		CHECK(o < sizeof(in), "header count: buffer");
		CHECK(icap_parse_head(in, o, &r, NULL, 0) ==
		    (n > ICAP_HEADERS_MAX ? 400 : 0), "header count %d", n);
	}
}

/*
 * An ICAP message around the HTTP heads given (either may be NULL):
 * RESPMOD with res-body when there is a response head, else REQMOD with
 * null-body. Returns the head's length; the heads follow it, *body long.
 */
static size_t
icap_msg(char *buf, size_t cap, const char *req, const char *res,
    long *body)
{
	size_t	o, rq = req ? strlen(req) : 0, rs = res ? strlen(res) : 0;

	if (res && req)
		o = (size_t)snprintf(buf, cap, RL "Encapsulated: req-hdr=0, "
		    "res-hdr=%zu, res-body=%zu\r\n\r\n", rq, rq + rs);
	else if (res)
		o = (size_t)snprintf(buf, cap, RL "Encapsulated: res-hdr=0, "
		    "res-body=%zu\r\n\r\n", rs);
	else
		o = (size_t)snprintf(buf, cap, QL "Encapsulated: req-hdr=0, "
		    "null-body=%zu\r\n\r\n", rq);
	if (o + rq + rs > cap)
		return 0;
	memcpy(buf + o, req ? req : "", rq);
	memcpy(buf + o + rq, res ? res : "", rs);
	*body = (long)(rq + rs);
	return o;
}

#define REQ_GET	"GET http://example.com/file.zip HTTP/1.1\r\n" \
		"Host: example.com\r\nUser-Agent: curl/7.88.1\r\n" \
		"Accept: */*\r\n\r\n"
#define RES_OK	"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\n" \
		"Transfer-Encoding: chunked\r\n\r\n"

static void
test_http(void)
{
	static const struct {
		const char	*req;
		const char	*res;
		int		 code;
		const char	*url;
		int		 status;
		int		 te;
	} t[] = {
		/* Squid: the absolute URL, a chunked response. */
		{ REQ_GET, RES_OK, 0, "http://example.com/file.zip", 200, 1 },
		{ REQ_GET, NULL, 0, "http://example.com/file.zip", 0, 0 },
		/* The origin form takes Host. */
		{ "GET /x?y=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", NULL,
		  0, "http://example.com:8080/x?y=1", 0, 0 },
		{ "GET /x HTTP/1.1\r\nhost:\t[2001:db8::1]:80 \r\n\r\n", NULL,
		  0, "http://[2001:db8::1]:80/x", 0, 0 },
		{ "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n", NULL,
		  0, "http://example.com", 0, 0 },
		/* HTTP/1.0 without Host: the target alone. */
		{ "GET /x HTTP/1.0\r\n\r\n", NULL, 0, "/x", 0, 0 },
		{ "GET /x HTTP/1.1\r\nHost:\r\n\r\n", NULL, 0, "/x", 0, 0 },
		/* CONNECT: the authority. */
		{ "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
		  "\r\n", NULL, 0, "example.com:443", 0, 0 },
		{ "POST HTTPS://example.com/up HTTP/1.1\r\nHost: other\r\n\r\n",
		  NULL, 0, "HTTPS://example.com/up", 0, 0 },
		{ "GET ftp://example.com/f HTTP/1.1\r\n\r\n", NULL, 0,
		  "ftp://example.com/f", 0, 0 },
		/* c-icap-client: a response only. */
		{ NULL, "HTTP/1.0 404 Not Found\r\n\r\n", 0, "", 404, 0 },
		{ NULL, "HTTP/1.1 204\r\n\r\n", 0, "", 204, 0 },
		{ NULL, "HTTP/1.1 200 \r\n\r\n", 0, "", 200, 0 },
		{ NULL, "HTTP/1.1 599 x\xc3\xa9\r\ntransfer-encoding: gzip\r\n\r\n",
		  0, "", 599, 1 },
		/* Bad request heads. */
		{ "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "GET / HTTP/2\r\nHost: a\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "GET gopher://a/ HTTP/1.1\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "GET http:// HTTP/1.1\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", NULL, 400, "",
		  0, 0 },
		{ "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "CONNECT a/b HTTP/1.1\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", NULL, 400, "",
		  0, 0 },
		{ "GET / HTTP/1.1\r\nHost : a\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "GET / HTTP/1.1\nHost: a\r\n\r\n", NULL, 400, "", 0, 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\n\r\nX", NULL, 400, "", 0, 0 },
		{ "GET / HTTP/1.1\r\nHost: a\r\n", NULL, 400, "", 0, 0 },
		{ "GET /\x01 HTTP/1.1\r\n\r\n", NULL, 400, "", 0, 0 },
		/* Bad response heads. */
		{ REQ_GET, "HTTP/1.1 20 OK\r\n\r\n", 400, "", 0, 0 },
		{ REQ_GET, "HTTP/1.1 600 X\r\n\r\n", 400, "", 0, 0 },
		{ REQ_GET, "HTTP/1.1 099 X\r\n\r\n", 400, "", 0, 0 },
		{ REQ_GET, "HTTP/1.1 200OK\r\n\r\n", 400, "", 0, 0 },
		{ REQ_GET, "HTTP/1.1  200 OK\r\n\r\n", 400, "", 0, 0 },
		{ REQ_GET, "HTTP/2 200 OK\r\n\r\n", 400, "", 0, 0 },
		{ REQ_GET, "HTTP/1.1 2000 OK\r\n\r\n", 400, "", 0, 0 },
		{ REQ_GET, "HTTP/1.1 200 O\x01K\r\n\r\n", 400, "", 0, 0 },
		{ REQ_GET, "HTTP/1.1 200 OK\r\nA: 1\r\n\tfold\r\n\r\n", 400, "",
		  0, 0 },
		{ REQ_GET, "HTTP/1.1 200 OK\r\nA: 1\r\r\n\r\n", 400, "", 0, 0 },
		{ REQ_GET, "HTTP/1.1 200 OK\r\n", 400, "", 0, 0 },
		{ REQ_GET, "\r\n\r\n", 400, "", 0, 0 },
	};
	static char	 msg[MSG_MAX];
	struct icap_req	 r;
	struct icap_http h;
	char		 err[128];
	size_t		 i, hl;
	long		 body;
	int		 rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		hl = icap_msg(msg, sizeof(msg), t[i].req, t[i].res, &body);
		CHECK(hl > 0, "http %zu: message", i);
		rc = icap_parse_head(msg, hl, &r, err, sizeof(err));
		CHECK(rc == 0, "http %zu: head %d (%s)", i, rc, err);
		if (rc != 0)
			continue;
		err[0] = '\0';
		rc = icap_parse_http(msg + hl, (size_t)body, &r, &h, err,
		    sizeof(err));
		CHECK(rc == t[i].code, "http %zu: got %d want %d (%s)", i, rc,
		    t[i].code, err);
		CHECK(rc == 0 || err[0] != '\0', "http %zu: no reason", i);
		if (rc != 0)
			continue;
		CHECK(strcmp(h.url, t[i].url) == 0, "http %zu: url %s", i,
		    h.url);
		CHECK(h.status == t[i].status, "http %zu: status %d", i,
		    h.status);
		CHECK(h.chunked_te == t[i].te, "http %zu: te %d", i,
		    h.chunked_te);
		CHECK(!h.url_truncated, "http %zu: truncated", i);
		/* More bytes after the heads (the body) are not read. */
		CHECK(icap_parse_http(msg + hl, (size_t)body + 5, &r, &h, NULL,
		    0) == 0, "http %zu: longer buffer", i);
		/* Fewer than the offsets say are an error. */
		CHECK(icap_parse_http(msg + hl, (size_t)body - 1, &r, &h, NULL,
		    0) == 400, "http %zu: shorter buffer", i);
	}
}

/* Offsets that do not put each head's blank line where the next begins. */
static void
test_http_offsets(void)
{
	static const char	req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char	res[] = "HTTP/1.1 200 OK\r\n\r\n";
	static char		msg[512];
	struct icap_req		r;
	struct icap_http	h;
	size_t			hl, rq = sizeof(req) - 1, rs = sizeof(res) - 1;
	int			d;

	for (d = -2; d <= 2; d++) {
		hl = (size_t)snprintf(msg, sizeof(msg), RL "Encapsulated: "
		    "req-hdr=0, res-hdr=%zu, res-body=%zu\r\n\r\n%s%s",
		    (size_t)((long)rq + d), rq + rs, req, res);
		hl -= rq + rs;
		CHECK(icap_parse_head(msg, hl, &r, NULL, 0) == 0,
		    "offsets %d: head", d);
		CHECK(icap_parse_http(msg + hl, rq + rs, &r, &h, NULL, 0) ==
		    (d == 0 ? 0 : 400), "offsets %d: res-hdr", d);

		hl = (size_t)snprintf(msg, sizeof(msg), RL "Encapsulated: "
		    "req-hdr=0, res-hdr=%zu, res-body=%zu\r\n\r\n%s%s", rq,
		    (size_t)((long)(rq + rs) + d), req, res);
		hl -= rq + rs;
		CHECK(icap_parse_head(msg, hl, &r, NULL, 0) == 0,
		    "offsets %d: head", d);
		CHECK(icap_parse_http(msg + hl, sizeof(msg) - hl, &r, &h, NULL,
		    0) == (d == 0 ? 0 : 400), "offsets %d: res-body", d);
	}

	/* A struct not from icap_parse_head: checked all the same. */
	memset(&r, 0, sizeof(r));
	r.req_hdr = 5;
	r.res_hdr = -1;
	r.body = (long)rq;
	CHECK(icap_parse_http(req, rq, &r, &h, NULL, 0) == 400,
	    "first offset not 0");
	r.req_hdr = 0;
	r.res_hdr = 0;
	CHECK(icap_parse_http(req, rq, &r, &h, NULL, 0) == 400,
	    "equal offsets");
	r.req_hdr = r.res_hdr = r.body = -1;
	CHECK(icap_parse_http(req, rq, &r, &h, NULL, 0) == 0 &&
	    h.url[0] == '\0' && h.status == 0, "nothing encapsulated");
	r.req_hdr = 0;
	CHECK(icap_parse_http(req, rq, &r, &h, NULL, 0) == 400,
	    "a head without a body offset");
}

/* A URL of ICAP_URL_MAX - 1 bytes fits; one byte more, or many, is cut
 * there and NUL-terminated. */
static void
test_http_url_max(void)
{
	static const size_t	 extra[] = { 0, 1, 600 };
	static char		 req[ICAP_URL_MAX * 2], msg[MSG_MAX];
	struct icap_req		 r;
	struct icap_http	 h;
	size_t			 o, hl, i, na;
	long			 body;

	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		/* "http://h" + "/" + na bytes. */
		na = ICAP_URL_MAX - 1 + extra[i] - 8 - 1;
		o = (size_t)snprintf(req, sizeof(req), "GET /");
		memset(req + o, 'a', na);
		o += na;
		snprintf(req + o, sizeof(req) - o,
		    " HTTP/1.1\r\nHost: h\r\n\r\n");
		hl = icap_msg(msg, sizeof(msg), req, NULL, &body);
		CHECK(icap_parse_head(msg, hl, &r, NULL, 0) == 0, "url max %zu",
		    i);
		CHECK(icap_parse_http(msg + hl, (size_t)body, &r, &h, NULL,
		    0) == 0, "url max %zu: http", i);
		CHECK(strlen(h.url) == ICAP_URL_MAX - 1,
		    "url max %zu: length %zu", i, strlen(h.url));
		CHECK(h.url_truncated == (extra[i] > 0),
		    "url max %zu: truncated %d", i, h.url_truncated);
		CHECK(strncmp(h.url, "http://h/aaa", 12) == 0 &&
		    h.url[ICAP_URL_MAX - 2] == 'a', "url max %zu: %.20s", i,
		    h.url);
	}
}

/* Feeds in[0, len) whole (step 0), in two pieces cut at cut (step 1 with
 * cut set), or step bytes at a time; returns what was consumed, or -1. */
static ssize_t
feed(struct icap_chunked *c, const char *in, size_t len, size_t step,
    size_t cut, struct sink *s, char *err, size_t errlen)
{
	size_t	off = 0, n;
	ssize_t	r;

	icap_chunked_init(c);
	while (off < len) {
		if (step == 0)
			n = len - off;
		else if (cut > 0)
			n = off < cut ? cut - off : len - off;
		else
			n = len - off < step ? len - off : step;
		r = icap_chunked_feed(c, in + off, n, sink_out, s, err, errlen);
		if (r < 0)
			return -1;
		CHECK((size_t)r <= n, "feed: consumed %zd of %zu", r, n);
		off += (size_t)r;
		if (c->done)
			break;
		CHECK((size_t)r == n, "feed: stopped short, not done");
		if ((size_t)r != n)
			return -1;
	}
	return (ssize_t)off;
}

static void
test_chunked(void)
{
	static const struct {
		const char	*in;
		size_t		 len;
		ssize_t		 consumed;	/* -1: an error */
		const char	*out;
		size_t		 outlen;
		int		 done;
		int		 ieof;
	} t[] = {
		{ S("5\r\nhello\r\n0\r\n\r\n"), 15, S("hello"), 1, 0 },
		{ S("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), 26,
		  S("hello world"), 1, 0 },
		{ S("5\r\nhello\r\n0\r\n\r\nRESPMOD icap://"), 15, S("hello"), 1,
		  0 },
		{ S("0\r\n\r\n"), 5, S(""), 1, 0 },
		{ S("0; ieof\r\n\r\n"), 11, S(""), 1, 1 },
		{ S("5\r\nhello\r\n0; ieof\r\n\r\n"), 21, S("hello"), 1, 1 },
		{ S("0;IEOF\r\n\r\n"), 10, S(""), 1, 1 },
		{ S("0 ;\tieof\r\n\r\n"), 12, S(""), 1, 1 },
		{ S("0; x=1; ieof\r\n\r\n"), 16, S(""), 1, 1 },
		{ S("0;x=\"a;b\\\"c\"\r\n\r\n"), 16, S(""), 1, 0 },
		{ S("0; ieofx\r\n\r\n"), 12, S(""), 1, 0 },
		{ S("A\r\n0123456789\r\n0\r\n\r\n"), 20, S("0123456789"), 1, 0 },
		{ S("a; name=val; other\r\n0123456789\r\n0\r\n\r\n"), 37,
		  S("0123456789"), 1, 0 },
		{ S("0000000000000005\r\nhello\r\n0\r\n\r\n"), 30, S("hello"), 1,
		  0 },
		{ S("3\r\n\0\r\n\r\n0\r\n\r\n"), 13, S("\0\r\n"), 1, 0 },
		/* Not finished yet. */
		{ S("5\r\nhel"), 6, S("hel"), 0, 0 },
		{ S("5\r\nhello\r\n0\r\n"), 13, S("hello"), 0, 0 },
		{ S("5\r\nhello\r\n0; ieof\r\n\r"), 20, S("hello"), 0, 1 },
		{ S("4000000000000000\r\nab"), 20, S("ab"), 0, 0 },
		{ S(""), 0, S(""), 0, 0 },
		/* ieof anywhere but the zero chunk, or with a value. */
		{ S("5; ieof\r\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("0; ieof=1\r\n\r\n"), -1, S(""), 0, 0 },
		/* Sizes. */
		{ S("10000000000000000\r\n"), -1, S(""), 0, 0 },
		{ S("00000000000000005\r\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("4000000000000001\r\n"), -1, S(""), 0, 0 },
		{ S("ffffffffffffffff\r\n"), -1, S(""), 0, 0 },
		{ S("x\r\n"), -1, S(""), 0, 0 },
		{ S("\r\n"), -1, S(""), 0, 0 },
		{ S("-5\r\n"), -1, S(""), 0, 0 },
		{ S(" 5\r\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("5 \r\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("0x5\r\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("5\0\r\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		/* Extensions. */
		{ S("5;\r\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("5;=x\r\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("5;a=\r\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("5;a \r\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("5;a b\r\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("0;x=\"abc\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("0;x=\"abc\\\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("0;x=\"a\x01\"\r\n\r\n"), -1, S(""), 0, 0 },
		/* Line ends. */
		{ S("5\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("5\r\r\nhello\r\n0\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("5\r\nhello\n0\r\n\r\n"), -1, S("hello"), 0, 0 },
		{ S("5\r\nhelloX\r\n0\r\n\r\n"), -1, S("hello"), 0, 0 },
		{ S("5\r\nhello\r\r\n0\r\n\r\n"), -1, S("hello"), 0, 0 },
		{ S("5\r\nhello\r\n0\r\n\n"), -1, S("hello"), 0, 0 },
		{ S("5\r\nhello\r\n0\r\n\rX"), -1, S("hello"), 0, 0 },
		{ S("5\r\nhello\r\n0\n\r\n"), -1, S("hello"), 0, 0 },
		/* Trailers. */
		{ S("0\r\nX-Trailer: a\r\n\r\n"), -1, S(""), 0, 0 },
		{ S("5\r\nhello\r\n0; ieof\r\nX: y\r\n\r\n"), -1, S("hello"), 0, 0 },
	};
	struct icap_chunked	 c;
	struct sink		*s;
	char			 err[128];
	size_t			 i, cut, step;
	ssize_t			 r;
	int			 ok;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		CHECK(0, "calloc");
		return;
	}
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		/* Whole, then every two-piece cut, then byte by byte and in
		 * threes: the same result each time. */
		for (step = 0; step <= 3; step++) {
			for (cut = 0; cut < (step == 1 ? t[i].len : 1); cut++) {
				memset(s, 0, sizeof(*s));
				err[0] = '\0';
				r = feed(&c, t[i].in, t[i].len, step,
				    step == 1 ? cut : 0, s, err, sizeof(err));
				ok = r == t[i].consumed &&
				    s->len == t[i].outlen &&
				    memcmp(s->buf, t[i].out, s->len) == 0 &&
				    c.total == s->len &&
				    (r == -1 || (c.done == t[i].done &&
				    c.ieof == t[i].ieof));
				CHECK(ok, "chunked %zu step %zu cut %zu: r %zd "
				    "out %zu total %llu done %d ieof %d (%s)",
				    i, step, cut, r, s->len,
				    (unsigned long long)c.total, c.done, c.ieof,
				    err);
				CHECK(r != -1 || err[0] != '\0',
				    "chunked %zu: no reason", i);
				if (!ok)
					goto next;
			}
		}
next:
		;
	}

	/* A line of ICAP_CHUNK_LINE_MAX is fine, one more byte is not. */
	{
		static char	in[ICAP_CHUNK_LINE_MAX + 64];
		size_t		o;

		for (step = 0; step <= 1; step++) {
			o = (size_t)snprintf(in, sizeof(in), "1;x=");
			memset(in + o, 'a', ICAP_CHUNK_LINE_MAX - o + step);
			o = ICAP_CHUNK_LINE_MAX + step;
			o += (size_t)snprintf(in + o, sizeof(in) - o,
			    "\r\nz\r\n0\r\n\r\n");
			memset(s, 0, sizeof(*s));
			r = feed(&c, in, o, 0, 0, s, err, sizeof(err));
			CHECK(step == 0 ? r == (ssize_t)o : r == -1,
			    "chunk line max +%zu: %zd", step, r);
		}
	}

	/* out refusing stops the decoder for good. */
	memset(s, 0, sizeof(*s));
	s->refuse_at = 3;
	icap_chunked_init(&c);
	r = icap_chunked_feed(&c, S("5\r\nhello\r\n0\r\n\r\n"), sink_out, s,
	    err, sizeof(err));
	CHECK(r == -1 && strcmp(err, "output refused") == 0,
	    "refused: %zd %s", r, err);
	CHECK(c.total == 0, "refused: total %llu",
	    (unsigned long long)c.total);
	r = icap_chunked_feed(&c, S("0\r\n\r\n"), sink_out, s, err,
	    sizeof(err));
	CHECK(r == -1 && s->calls_after_refusal == 0, "refused: again %zd",
	    r);

	/* Done: nothing more is taken; a fresh decoder takes the rest. */
	memset(s, 0, sizeof(*s));
	icap_chunked_init(&c);
	r = icap_chunked_feed(&c, S("2\r\nab\r\n0\r\n\r\n2\r\ncd\r\n0\r\n\r\n"),
	    sink_out, s, err, sizeof(err));
	CHECK(r == 12 && c.done, "done: %zd", r);
	CHECK(icap_chunked_feed(&c, S("2\r\ncd\r\n"), sink_out, s, err,
	    sizeof(err)) == 0, "done: takes more");
	icap_chunked_init(&c);
	r = icap_chunked_feed(&c, S("2\r\ncd\r\n0\r\n\r\n"), sink_out, s, err,
	    sizeof(err));
	CHECK(r == 12 && c.done && s->len == 4 &&
	    memcmp(s->buf, "abcd", 4) == 0, "done: second stream");

	/* A NULL out discards. */
	icap_chunked_init(&c);
	r = icap_chunked_feed(&c, S("2\r\nab\r\n0\r\n\r\n"), NULL, NULL, NULL,
	    0);
	CHECK(r == 12 && c.done && c.total == 2, "discard: %zd", r);
	free(s);
}

static void
test_chunk_head(void)
{
	static const struct {
		size_t		 n;
		const char	*want;
	} t[] = {
		{ 0, "0\r\n" },
		{ 5, "5\r\n" },
		{ 26, "1a\r\n" },
		{ 0x1a2b, "1a2b\r\n" },
		{ 65536, "10000\r\n" },
		{ SIZE_MAX, "ffffffffffffffff\r\n" },
	};
	struct icap_chunked	 c;
	struct sink		*s;
	char			 buf[ICAP_CHUNK_HEAD_MAX], msg[256];
	size_t			 i, n, o;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(buf, 'x', sizeof(buf));
		n = icap_chunk_head(buf, t[i].n);
		CHECK(n == strlen(t[i].want) && strcmp(buf, t[i].want) == 0,
		    "chunk head %zu: %s", i, buf);
	}

	/* What it writes, the decoder reads back. */
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		CHECK(0, "calloc");
		return;
	}
	o = icap_chunk_head(msg, 26);
	memcpy(msg + o, "abcdefghijklmnopqrstuvwxyz\r\n", 28);
	o += 28;
	o += icap_chunk_head(msg + o, 0);
	memcpy(msg + o, "\r\n", 2);
	o += 2;
	icap_chunked_init(&c);
	CHECK(icap_chunked_feed(&c, msg, o, sink_out, s, NULL, 0) ==
	    (ssize_t)o && c.done && s->len == 26 &&
	    memcmp(s->buf, "abcdefghijklmnopqrstuvwxyz", 26) == 0,
	    "chunk head round trip");
	free(s);
}

void
test_icap_proto(void)
{
	test_head_end();
	test_heads_ok();
	test_heads_bad();
	test_reasons();
	test_header_count();
	test_http();
	test_http_offsets();
	test_http_url_max();
	test_chunked();
	test_chunk_head();
}
