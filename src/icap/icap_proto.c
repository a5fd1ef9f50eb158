/* SPDX-License-Identifier: MIT */
/*
 * ICAP (RFC 3507) as bytes: finding the end of a head, parsing the ICAP
 * request head and the HTTP heads it encapsulates, and decoding the
 * chunked body. It trusts nothing it is given: every line ends in CRLF
 * (no bare CR or LF, no NUL), every field name is a token, no line is
 * folded, every number is bounded, and anything it does not recognise
 * where it must is an error with a status and a short reason rather than
 * a guess. It never reads past the length it is given, never allocates
 * and does no I/O; icap.c owns the connections and decides what to do.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "icap_proto.h"

#define ICAP_CHUNK_DIGITS_MAX	16			/* hex digits of a size */
#define ICAP_CHUNK_SIZE_MAX	((uint64_t)1 << 62)	/* the largest chunk */

/* The chunked decoder's states. */
enum {
	CH_SIZE,	/* reading a chunk-size line */
	CH_SIZE_LF,	/* its CR seen */
	CH_DATA,	/* c->left bytes of data to go */
	CH_DATA_CR,	/* the CRLF after a chunk's data */
	CH_DATA_LF,
	CH_END_CR,	/* the blank line after the zero chunk */
	CH_END_LF,
	CH_DONE,
	CH_ERROR,	/* sticky: every later call fails */
};

/* Encapsulated entries. */
enum {
	EN_REQ_HDR,
	EN_RES_HDR,
	EN_REQ_BODY,
	EN_RES_BODY,
	EN_NULL_BODY,
	EN_OPT_BODY,
};

/* One line of a head, without its CRLF. */
struct line {
	const char	*p;
	size_t		 len;
};

/* A header field: its name, and its value without surrounding white
 * space. */
struct field {
	const char	*name;
	size_t		 namelen;
	const char	*val;
	size_t		 vallen;
};

static int	set_err(char *, size_t, int, const char *);
static int	is_tchar(unsigned char);
static int	is_digit(unsigned char);
static int	is_hex(unsigned char);
static int	is_vchar(unsigned char);
static int	is_ows(unsigned char);
static int	is_fieldchar(unsigned char);
static int	is_authchar(unsigned char);
static int	is_token(const char *, size_t);
static int	is_word(const struct line *, const char *);
static int	whole_head(const char *, size_t);
static int	next_line(const char *, size_t, size_t *, struct line *);
static int	split3(const struct line *, struct line[3]);
static int	parse_field(const struct line *, struct field *);
static int	field_is(const struct field *, const char *);
static int	parse_dec(const char *, size_t, long, long *);
static int	parse_version(const struct line *);
static int	parse_uri(const struct line *, char *);
static int	encap_entry(const char *, size_t);
static int	parse_encapsulated(const char *, size_t, struct icap_req *,
		    const char **);
static int	parse_allow(const char *, size_t, int *);
static int	parse_client_ip(const char *, size_t, char *);
static int	http_version(const struct line *);
static int	absolute_url(const struct line *);
static void	url_add(struct icap_http *, size_t *, const char *, size_t);
static int	parse_http_req(const char *, size_t, struct icap_http *,
		    const char **);
static int	parse_http_res(const char *, size_t, struct icap_http *,
		    const char **);
static int	chunk_size_line(struct icap_chunked *, const char **);

static const struct {
	const char	*name;
	int		 entry;
} encap_names[] = {
	{ "req-hdr", EN_REQ_HDR },
	{ "res-hdr", EN_RES_HDR },
	{ "req-body", EN_REQ_BODY },
	{ "res-body", EN_RES_BODY },
	{ "null-body", EN_NULL_BODY },
	{ "opt-body", EN_OPT_BODY },
};

static int
set_err(char *err, size_t errlen, int code, const char *why)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", why);
	return code;
}

static int
is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
is_vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

static int
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* A byte of a field value: white space, visible, or 8-bit (obs-text). */
static int
is_fieldchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* A byte of a host[:port] authority, IPv6 literals and percent-encoding
 * included; no userinfo, path, query or fragment. */
static int
is_authchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("-._~:[]%", c) != NULL;
}

static int
is_token(const char *p, size_t n)
{
	size_t	i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!is_tchar(p[i]))
			return 0;
	return 1;
}

static int
is_word(const struct line *w, const char *s)
{
	return w->len == strlen(s) && memcmp(w->p, s, w->len) == 0;
}

/* p[0, n) is exactly one head: CRLF lines, the first blank line at n. */
static int
whole_head(const char *p, size_t n)
{
	return n >= 4 && icap_head_end(p, n, n) == (ssize_t)n;
}

/* The line at *off of a head whole_head() accepted; moves *off past its
 * CRLF. */
static int
next_line(const char *p, size_t len, size_t *off, struct line *l)
{
	const char	*cr;

	if (*off >= len || (cr = memchr(p + *off, '\r', len - *off)) == NULL)
		return -1;
	l->p = p + *off;
	l->len = (size_t)(cr - l->p);
	*off += l->len + 2;
	return 0;
}

/* A start line's three words, separated by single spaces, each of visible
 * bytes only. */
static int
split3(const struct line *l, struct line w[3])
{
	size_t	i, k = 0, start = 0;

	for (i = 0; i <= l->len; i++) {
		if (i == l->len || l->p[i] == ' ') {
			if (i == start || k == 3)
				return -1;
			w[k].p = l->p + start;
			w[k].len = i - start;
			k++;
			start = i + 1;
		} else if (!is_vchar(l->p[i]))
			return -1;
	}
	return k == 3 ? 0 : -1;
}

/* name ":" OWS value OWS; a line starting with white space (obs-fold) or
 * with white space before the colon is not a field. */
static int
parse_field(const struct line *l, struct field *f)
{
	size_t	i = 0, e, k;

	while (i < l->len && is_tchar(l->p[i]))
		i++;
	if (i == 0 || i == l->len || l->p[i] != ':')
		return -1;
	f->name = l->p;
	f->namelen = i++;
	while (i < l->len && is_ows(l->p[i]))
		i++;
	e = l->len;
	while (e > i && is_ows(l->p[e - 1]))
		e--;
	for (k = i; k < e; k++)
		if (!is_fieldchar(l->p[k]))
			return -1;
	f->val = l->p + i;
	f->vallen = e - i;
	return 0;
}

static int
field_is(const struct field *f, const char *name)
{
	return f->namelen == strlen(name) &&
	    strncasecmp(f->name, name, f->namelen) == 0;
}

/* Digits only (no sign, no space), at most max. */
static int
parse_dec(const char *p, size_t n, long max, long *v)
{
	long	x = 0;
	size_t	i;
	int	d;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return -1;
		d = p[i] - '0';
		if (x > (max - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

/* 1 for ICAP/1.0, 0 for another well-formed ICAP version, -1 for
 * anything else. */
static int
parse_version(const struct line *w)
{
	size_t	i = 5, s;

	if (w->len < 8 || memcmp(w->p, "ICAP/", 5) != 0)
		return -1;
	for (s = i; i < w->len && is_digit(w->p[i]); i++)
		;
	if (i == s || i == w->len || w->p[i] != '.')
		return -1;
	for (s = ++i; i < w->len && is_digit(w->p[i]); i++)
		;
	if (i == s || i != w->len)
		return -1;
	return is_word(w, "ICAP/1.0");
}

/* icap://authority/service[?query]: the service copied into service
 * (ICAP_SERVICE_MAX bytes). */
static int
parse_uri(const struct line *u, char *service)
{
	const char	*p = u->p;
	size_t		 n = u->len, i, s;

	if (n < 7 || strncasecmp(p, "icap://", 7) != 0)
		return -1;
	for (i = 7; i < n && p[i] != '/'; i++)
		if (!is_authchar(p[i]))
			return -1;
	if (i == 7 || i == n)
		return -1;
	for (s = ++i; i < n && p[i] != '?'; i++)
		if (!(is_digit(p[i]) || (p[i] >= 'a' && p[i] <= 'z') ||
		    (p[i] >= 'A' && p[i] <= 'Z') || p[i] == '.' ||
		    p[i] == '_' || p[i] == '-'))
			return -1;
	if (i == s || i - s >= ICAP_SERVICE_MAX)
		return -1;
	memcpy(service, p + s, i - s);
	service[i - s] = '\0';
	return 0;
}

static int
encap_entry(const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < sizeof(encap_names) / sizeof(encap_names[0]); i++)
		if (n == strlen(encap_names[i].name) &&
		    strncasecmp(p, encap_names[i].name, n) == 0)
			return encap_names[i].entry;
	return -1;
}

/*
 * "req-hdr=0, res-hdr=137, res-body=296": the first offset 0, offsets
 * strictly increasing, req-hdr before res-hdr, exactly one body entry and
 * it last, and only the entries the method allows. REQMOD needs req-hdr
 * (a body without its request says nothing), RESPMOD needs res-hdr with
 * res-body, OPTIONS takes only null-body (opt-body would be a body this
 * service does not read).
 */
static int
parse_encapsulated(const char *v, size_t n, struct icap_req *r,
    const char **why)
{
	size_t	i = 0, s;
	long	off, last = -1;
	int	e, body = 0;

	for (;;) {
		for (s = i; i < n && is_tchar(v[i]) && v[i] != '='; i++)
			;
		if (i == n || v[i] != '=') {
			*why = "malformed Encapsulated";
			return -1;
		}
		if ((e = encap_entry(v + s, i - s)) == -1) {
			*why = "unknown Encapsulated entry";
			return -1;
		}
		for (s = ++i; i < n && is_digit(v[i]); i++)
			;
		if (parse_dec(v + s, i - s, LONG_MAX, &off) == -1) {
			*why = "bad Encapsulated offset";
			return -1;
		}
		if (body) {
			*why = "Encapsulated body entry not last";
			return -1;
		}
		if (last == -1 && off != 0) {
			*why = "first Encapsulated offset not 0";
			return -1;
		}
		if (last != -1 && off <= last) {
			*why = "Encapsulated offsets not increasing";
			return -1;
		}
		last = off;
		switch (e) {
		case EN_REQ_HDR:
			if (r->req_hdr != -1 || r->res_hdr != -1) {
				*why = "Encapsulated entries out of order";
				return -1;
			}
			r->req_hdr = off;
			break;
		case EN_RES_HDR:
			if (r->res_hdr != -1) {
				*why = "Encapsulated entries out of order";
				return -1;
			}
			r->res_hdr = off;
			break;
		case EN_OPT_BODY:
			*why = "opt-body not supported";
			return -1;
		default:
			body = 1;
			r->body = off;
			r->body_kind = e == EN_REQ_BODY ? ICAP_BODY_REQ :
			    e == EN_RES_BODY ? ICAP_BODY_RES : ICAP_BODY_NONE;
			break;
		}
		while (i < n && is_ows(v[i]))
			i++;
		if (i == n)
			break;
		if (v[i] != ',') {
			*why = "malformed Encapsulated";
			return -1;
		}
		i++;
		while (i < n && is_ows(v[i]))
			i++;
	}
	if (!body) {
		*why = "Encapsulated without a body entry";
		return -1;
	}
	switch (r->method) {
	case ICAP_OPTIONS:
		if (r->req_hdr != -1 || r->res_hdr != -1 ||
		    r->body_kind != ICAP_BODY_NONE) {
			*why = "OPTIONS encapsulates only null-body";
			return -1;
		}
		break;
	case ICAP_REQMOD:
		if (r->res_hdr != -1 || r->body_kind == ICAP_BODY_RES) {
			*why = "REQMOD encapsulates no response";
			return -1;
		}
		if (r->req_hdr == -1) {
			*why = "REQMOD without req-hdr";
			return -1;
		}
		break;
	case ICAP_RESPMOD:
		if (r->body_kind == ICAP_BODY_REQ) {
			*why = "RESPMOD with req-body";
			return -1;
		}
		if (r->body_kind == ICAP_BODY_RES && r->res_hdr == -1) {
			*why = "res-body without res-hdr";
			return -1;
		}
		break;
	}
	if (r->body > ICAP_HTTP_HEADS_MAX) {
		*why = "encapsulated heads too large";
		return -1;
	}
	return 0;
}

/* A comma list of tokens (empty elements allowed); 204 among them sets
 * *allow_204. */
static int
parse_allow(const char *v, size_t n, int *allow_204)
{
	size_t	i = 0, s, e;

	while (i <= n) {
		for (s = i; i < n && v[i] != ','; i++)
			;
		e = i;
		while (s < e && is_ows(v[s]))
			s++;
		while (e > s && is_ows(v[e - 1]))
			e--;
		if (e > s && !is_token(v + s, e - s))
			return -1;
		if (e - s == 3 && memcmp(v + s, "204", 3) == 0)
			*allow_204 = 1;
		i++;
	}
	return 0;
}

/* An IPv4 or IPv6 literal, copied into ip (ICAP_CLIENT_IP_MAX bytes). */
static int
parse_client_ip(const char *v, size_t n, char *ip)
{
	struct in6_addr	a6;
	struct in_addr	a4;

	if (n == 0 || n >= ICAP_CLIENT_IP_MAX || memchr(v, '\0', n) != NULL)
		return -1;
	memcpy(ip, v, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, &a4) == 1 ||
	    inet_pton(AF_INET6, ip, &a6) == 1)
		return 0;
	ip[0] = '\0';
	return -1;
}

ssize_t
icap_head_end(const char *buf, size_t len, size_t max)
{
	size_t	i, n = len < max ? len : max;

	for (i = 0; i < n; i++) {
		switch (buf[i]) {
		case '\0':
			return -1;
		case '\r':
			if (i + 1 < len && buf[i + 1] != '\n')
				return -1;
			break;
		case '\n':
			if (i == 0 || buf[i - 1] != '\r')
				return -1;
			if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
				return (ssize_t)(i + 1);
			break;
		}
	}
	return len >= max ? -1 : 0;
}

int
icap_parse_head(const char *head, size_t len, struct icap_req *r,
    char *err, size_t errlen)
{
	struct line	 l, w[3];
	struct field	 f;
	const char	*why = "malformed head";
	size_t		 off = 0, nhdr = 0, i;
	int		 code = 400, v, seen_encap = 0, seen_ip = 0;

	memset(r, 0, sizeof(*r));
	r->preview = -1;
	r->req_hdr = r->res_hdr = r->body = -1;
	r->body_kind = ICAP_BODY_NONE;

	if (!whole_head(head, len) || next_line(head, len, &off, &l) == -1) {
		why = "not a complete head";
		goto fail;
	}
	if (split3(&l, w) == -1) {
		why = "malformed request line";
		goto fail;
	}
	if ((v = parse_version(&w[2])) == -1) {
		why = "malformed ICAP version";
		goto fail;
	}
	if (v == 0) {
		code = 505;
		why = "ICAP version not supported";
		goto fail;
	}
	if (is_word(&w[0], "OPTIONS"))
		r->method = ICAP_OPTIONS;
	else if (is_word(&w[0], "REQMOD"))
		r->method = ICAP_REQMOD;
	else if (is_word(&w[0], "RESPMOD"))
		r->method = ICAP_RESPMOD;
	else {
		for (i = 0; i < w[0].len; i++)
			if (w[0].p[i] < 'A' || w[0].p[i] > 'Z')
				break;
		if (i == w[0].len) {
			code = 501;
			why = "method not implemented";
		} else
			why = "malformed method";
		goto fail;
	}
	if (parse_uri(&w[1], r->service) == -1) {
		why = "malformed ICAP URI or service";
		goto fail;
	}

	for (;;) {
		if (next_line(head, len, &off, &l) == -1)
			goto fail;
		if (l.len == 0)
			break;
		if (++nhdr > ICAP_HEADERS_MAX) {
			why = "too many header lines";
			goto fail;
		}
		if (is_ows(l.p[0])) {
			why = "folded header line";
			goto fail;
		}
		if (parse_field(&l, &f) == -1) {
			why = "malformed header line";
			goto fail;
		}
		if (field_is(&f, "Encapsulated")) {
			if (seen_encap++) {
				why = "duplicate Encapsulated";
				goto fail;
			}
			if (parse_encapsulated(f.val, f.vallen, r, &why) == -1)
				goto fail;
		} else if (field_is(&f, "Allow")) {
			if (parse_allow(f.val, f.vallen, &r->allow_204) == -1) {
				why = "malformed Allow";
				goto fail;
			}
		} else if (field_is(&f, "Preview")) {
			if (r->preview != -1) {
				why = "duplicate Preview";
				goto fail;
			}
			if (parse_dec(f.val, f.vallen, ICAP_PREVIEW_MAX,
			    &r->preview) == -1) {
				why = "bad Preview";
				goto fail;
			}
		} else if (field_is(&f, "X-Client-IP")) {
			if (seen_ip++) {
				why = "duplicate X-Client-IP";
				goto fail;
			}
			if (parse_client_ip(f.val, f.vallen,
			    r->client_ip) == -1) {
				why = "bad X-Client-IP";
				goto fail;
			}
		}
	}
	if (!seen_encap && r->method != ICAP_OPTIONS) {
		why = "no Encapsulated header";
		goto fail;
	}
	return 0;

fail:
	return set_err(err, errlen, code, why);
}

/* HTTP/1.0 or HTTP/1.1 (any HTTP/1.x). */
static int
http_version(const struct line *w)
{
	return w->len == 8 && memcmp(w->p, "HTTP/1.", 7) == 0 &&
	    is_digit(w->p[7]);
}

static int
absolute_url(const struct line *t)
{
	static const char *const schemes[] = { "http://", "https://",
	    "ftp://" };
	size_t	i, n;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		n = strlen(schemes[i]);
		if (t->len > n && strncasecmp(t->p, schemes[i], n) == 0)
			return 1;
	}
	return 0;
}

/* Appends what fits of s[0, n) to h->url, which stays NUL-terminated. */
static void
url_add(struct icap_http *h, size_t *o, const char *s, size_t n)
{
	size_t	room = ICAP_URL_MAX - 1 - *o;

	if (n > room) {
		n = room;
		h->url_truncated = 1;
	}
	memcpy(h->url + *o, s, n);
	*o += n;
	h->url[*o] = '\0';
}

/* The reasons http_field() gives, by head. */
static const char *const request_why[] = {
	"malformed HTTP request head", "too many HTTP request header lines",
	"folded HTTP request header line", "malformed HTTP request header line",
};
static const char *const response_why[] = {
	"malformed HTTP response head", "too many HTTP response header lines",
	"folded HTTP response header line",
	"malformed HTTP response header line",
};

/*
 * The next field of an HTTP head at *off: 1 with it in f, 0 at the blank
 * line that ends the head, -1 with *why (from whys) when the line is not
 * one, one too many, or folded.
 */
static int
http_field(const char *p, size_t n, size_t *off, size_t *nhdr,
    struct field *f, const char *const *whys, const char **why)
{
	struct line	l;

	if (next_line(p, n, off, &l) == -1) {
		*why = whys[0];
		return -1;
	}
	if (l.len == 0)
		return 0;
	if (++*nhdr > ICAP_HEADERS_MAX) {
		*why = whys[1];
		return -1;
	}
	if (is_ows(l.p[0])) {
		*why = whys[2];
		return -1;
	}
	if (parse_field(&l, f) == -1) {
		*why = whys[3];
		return -1;
	}
	return 1;
}

/* METHOD SP request-target SP HTTP/1.x, then fields: the URL from the
 * target, with Host for the origin form. */
static int
parse_http_req(const char *p, size_t n, struct icap_http *h,
    const char **why)
{
	struct line	 l, w[3];
	struct field	 f;
	const char	*host = NULL;
	size_t		 off = 0, nhdr = 0, o = 0, i, hostlen = 0;
	int		 rc;

	if (!whole_head(p, n) || next_line(p, n, &off, &l) == -1) {
		*why = "HTTP request head does not end at its offset";
		return -1;
	}
	if (split3(&l, w) == -1 || !is_token(w[0].p, w[0].len) ||
	    !http_version(&w[2])) {
		*why = "malformed HTTP request line";
		return -1;
	}
	while ((rc = http_field(p, n, &off, &nhdr, &f, request_why,
	    why)) == 1) {
		if (field_is(&f, "Host")) {
			if (host != NULL) {
				*why = "duplicate Host";
				return -1;
			}
			for (i = 0; i < f.vallen; i++)
				if (!is_authchar(f.val[i])) {
					*why = "malformed Host";
					return -1;
				}
			host = f.val;
			hostlen = f.vallen;
		}
	}
	if (rc == -1)
		return -1;

	if (is_word(&w[0], "CONNECT")) {
		for (i = 0; i < w[1].len; i++)
			if (!is_authchar(w[1].p[i])) {
				*why = "malformed CONNECT authority";
				return -1;
			}
		url_add(h, &o, w[1].p, w[1].len);
	} else if (absolute_url(&w[1]))
		url_add(h, &o, w[1].p, w[1].len);
	else if (w[1].p[0] == '/' || is_word(&w[1], "*")) {
		if (hostlen > 0) {
			url_add(h, &o, "http://", 7);
			url_add(h, &o, host, hostlen);
			if (w[1].p[0] == '/')
				url_add(h, &o, w[1].p, w[1].len);
		} else
			url_add(h, &o, w[1].p, w[1].len);
	} else {
		*why = "malformed HTTP request target";
		return -1;
	}
	return 0;
}

/* HTTP/1.x SP 3DIGIT [SP reason], then fields. */
static int
parse_http_res(const char *p, size_t n, struct icap_http *h,
    const char **why)
{
	struct line	 l, v;
	struct field	 f;
	size_t		 off = 0, nhdr = 0, i;
	int		 rc;

	if (!whole_head(p, n) || next_line(p, n, &off, &l) == -1) {
		*why = "HTTP response head does not end at its offset";
		return -1;
	}
	v.p = l.p;
	v.len = 8;
	if (l.len < 12 || !http_version(&v) || l.p[8] != ' ' ||
	    l.p[9] < '1' || l.p[9] > '5' || !is_digit(l.p[10]) ||
	    !is_digit(l.p[11]) || (l.len > 12 && l.p[12] != ' ')) {
		*why = "malformed HTTP status line";
		return -1;
	}
	for (i = 13; i < l.len; i++)
		if (!is_fieldchar(l.p[i])) {
			*why = "malformed HTTP status line";
			return -1;
		}
	h->status = (l.p[9] - '0') * 100 + (l.p[10] - '0') * 10 +
	    (l.p[11] - '0');
	while ((rc = http_field(p, n, &off, &nhdr, &f, response_why,
	    why)) == 1) {
		if (field_is(&f, "Transfer-Encoding"))
			h->chunked_te = 1;
	}
	return rc;
}

int
icap_parse_http(const char *hdrs, size_t len, const struct icap_req *r,
    struct icap_http *h, char *err, size_t errlen)
{
	const char	*why = "bad Encapsulated offsets";
	long		 next, first;

	memset(h, 0, sizeof(*h));
	if (r->body < 0) {
		if (r->req_hdr != -1 || r->res_hdr != -1)
			goto fail;
		return 0;
	}
	if ((unsigned long)r->body > len) {
		why = "encapsulated heads shorter than their offsets";
		goto fail;
	}
	first = r->req_hdr >= 0 ? r->req_hdr :
	    r->res_hdr >= 0 ? r->res_hdr : r->body;
	if (first != 0 || r->req_hdr < -1 || r->res_hdr < -1)
		goto fail;
	if (r->req_hdr >= 0) {
		next = r->res_hdr >= 0 ? r->res_hdr : r->body;
		if (next <= r->req_hdr)
			goto fail;
		if (parse_http_req(hdrs + r->req_hdr,
		    (size_t)(next - r->req_hdr), h, &why) == -1)
			goto fail;
	}
	if (r->res_hdr >= 0) {
		if (r->body <= r->res_hdr)
			goto fail;
		if (parse_http_res(hdrs + r->res_hdr,
		    (size_t)(r->body - r->res_hdr), h, &why) == -1)
			goto fail;
	}
	return 0;

fail:
	return set_err(err, errlen, 400, why);
}

void
icap_chunked_init(struct icap_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
}

/*
 * The size line in c->line, its CRLF gone: 1*16HEXDIG up to 2^62, then
 * *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ), no
 * white space at the end. "ieof" (without a value) marks the zero chunk
 * as the end of the whole body; other extensions mean nothing here.
 */
static int
chunk_size_line(struct icap_chunked *c, const char **why)
{
	const char	*p = c->line;
	size_t		 n = c->linelen, i = 0, s, j;
	uint64_t	 v = 0;
	int		 ieof = 0, is_ieof;
	unsigned char	 ch;

	for (; i < n && is_hex(p[i]); i++) {
		if (i == ICAP_CHUNK_DIGITS_MAX) {
			*why = "chunk size has too many digits";
			return -1;
		}
		ch = (unsigned char)p[i];
		v = v << 4 | (uint64_t)(is_digit(ch) ? ch - '0' :
		    (ch | 0x20) - 'a' + 10);
	}
	if (i == 0) {
		*why = "chunk size not hex";
		return -1;
	}
	if (v > ICAP_CHUNK_SIZE_MAX) {
		*why = "chunk size too large";
		return -1;
	}
	while (i < n) {
		while (i < n && is_ows(p[i]))
			i++;
		if (i == n || p[i] != ';')
			goto bad;
		i++;
		while (i < n && is_ows(p[i]))
			i++;
		for (s = i; i < n && is_tchar(p[i]); i++)
			;
		if (i == s)
			goto bad;
		is_ieof = i - s == 4 && strncasecmp(p + s, "ieof", 4) == 0;
		for (j = i; j < n && is_ows(p[j]); j++)
			;
		if (j < n && p[j] == '=') {
			if (is_ieof)
				goto bad;
			for (i = j + 1; i < n && is_ows(p[i]); i++)
				;
			if (i < n && p[i] == '"') {
				for (i++; i < n && p[i] != '"'; i++) {
					if (p[i] == '\\' && ++i == n)
						goto bad;
					if (!is_fieldchar(p[i]))
						goto bad;
				}
				if (i == n)
					goto bad;
				i++;
			} else {
				for (s = i; i < n && is_tchar(p[i]); i++)
					;
				if (i == s)
					goto bad;
			}
		}
		ieof |= is_ieof;
	}
	if (ieof && v != 0) {
		*why = "ieof on a chunk that is not the last";
		return -1;
	}
	c->left = v;
	c->ieof = ieof;
	return 0;

bad:
	*why = "malformed chunk extension";
	return -1;
}

ssize_t
icap_chunked_feed(struct icap_chunked *c, const char *in, size_t len,
    int (*out)(void *, const char *, size_t), void *arg,
    char *err, size_t errlen)
{
	const char	*why = "malformed chunked body";
	size_t		 i = 0, n;
	unsigned char	 ch;

	if (c->state == CH_ERROR) {
		why = "chunked body failed earlier";
		goto fail;
	}
	if (c->state == CH_DONE)
		return 0;
	while (i < len) {
		switch (c->state) {
		case CH_SIZE:
			ch = (unsigned char)in[i++];
			if (ch == '\r') {
				c->state = CH_SIZE_LF;
				break;
			}
			/* Fail at the first byte that cannot be: a stream
			 * that is not chunked is not buffered a line long. */
			if (ch == '\n') {
				why = "bare LF in a chunk-size line";
				goto fail;
			}
			if ((c->linelen == 0 && !is_hex(ch)) ||
			    !is_fieldchar(ch)) {
				why = "chunk size not hex";
				goto fail;
			}
			if (c->linelen == sizeof(c->line)) {
				why = "chunk-size line too long";
				goto fail;
			}
			c->line[c->linelen++] = (char)ch;
			break;
		case CH_SIZE_LF:
			if (in[i++] != '\n') {
				why = "bare CR in a chunk-size line";
				goto fail;
			}
			if (chunk_size_line(c, &why) == -1)
				goto fail;
			c->linelen = 0;
			c->state = c->left > 0 ? CH_DATA : CH_END_CR;
			break;
		case CH_DATA:
			n = len - i;
			if (n > c->left)
				n = (size_t)c->left;
			if (out != NULL && out(arg, in + i, n) == -1) {
				why = "output refused";
				goto fail;
			}
			i += n;
			c->left -= n;
			c->total += n;
			if (c->left == 0)
				c->state = CH_DATA_CR;
			break;
		case CH_DATA_CR:
		case CH_DATA_LF:
			if (in[i++] != (c->state == CH_DATA_CR ? '\r' : '\n')) {
				why = "no CRLF after chunk data";
				goto fail;
			}
			c->state = c->state == CH_DATA_CR ? CH_DATA_LF :
			    CH_SIZE;
			break;
		case CH_END_CR:
			ch = (unsigned char)in[i++];
			if (ch != '\r') {
				why = is_tchar(ch) ? "trailer after the last chunk" :
				    "no CRLF after the last chunk";
				goto fail;
			}
			c->state = CH_END_LF;
			break;
		case CH_END_LF:
			if (in[i++] != '\n') {
				why = "no CRLF after the last chunk";
				goto fail;
			}
			c->state = CH_DONE;
			c->done = 1;
			return (ssize_t)i;
		default:
			why = "chunked decoder in a bad state";
			goto fail;
		}
	}
	return (ssize_t)i;

fail:
	c->state = CH_ERROR;
	return set_err(err, errlen, -1, why);
}

size_t
icap_chunk_head(char *buf, size_t len)
{
	static const char	hex[] = "0123456789abcdef";
	char			tmp[ICAP_CHUNK_DIGITS_MAX];
	size_t			n = 0, i;

	do {
		tmp[n++] = hex[len & 0xf];
		len >>= 4;
	} while (len > 0 && n < sizeof(tmp));
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n++] = '\r';
	buf[n++] = '\n';
	buf[n] = '\0';
	return n;
}
