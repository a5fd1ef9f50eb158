/* SPDX-License-Identifier: MIT */
/*
 * The two spam engine protocols as bytes: the request head sporkd sends
 * before the message, and the parsing of what the engine answers. rspamd
 * speaks HTTP (POST /checkv2, envelope in request headers, a JSON reply,
 * read with jansson); SpamAssassin's spamd speaks SPAMC/SPAMD (SYMBOLS
 * command, a "Spam: True ; 15.0 / 5.0" header, symbol names as the body).
 * Knows nothing about sockets or policy. Trusts nothing it parses: a
 * reply is complete and well-formed or it is an error, never a score;
 * text taken from a reply is reduced to printable ASCII before it goes
 * anywhere. Client-supplied envelope values are made header-safe here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "buf.h"
#include "spam.h"
#include "spam_proto.h"

#define SPAM_VALUE_MAX		256	/* one envelope header value */
#define SPAM_NUM_MAX		24	/* digits of one score */
#define SPAM_SCORE_LIMIT	1e6	/* beyond this a score is garbage */
#define SPAM_SHOWN_MAX		64	/* reply bytes quoted in an error */

static void	spam_header_value(char *, size_t, const char *, int);
static void	spam_text(char *, size_t, const char *, size_t);
static void	spam_symbol_add(struct spam_result *, size_t *, const char *,
		    size_t);
static size_t	spam_head_end(const char *, size_t);
static int	spam_header_get(const char *, size_t, const char *,
		    const char **, size_t *);
static int	spam_length(const char *, size_t, size_t *);
static int	spam_number(const char *, size_t, double *, size_t *);
static int	spam_score_ok(double);
static int	spam_body(const char *, size_t, size_t, int, const char **,
		    size_t *, struct spam_result *);

/* ---- requests ---- */

/* Printable ASCII without blanks, at most dstlen - 1 bytes; a reverse
 * path loses its angle brackets when unbracket is set. */
static void
spam_header_value(char *dst, size_t dstlen, const char *src, int unbracket)
{
	size_t	n = strlen(src), i, o = 0;

	if (unbracket && n >= 2 && src[0] == '<' && src[n - 1] == '>') {
		src++;
		n -= 2;
	}
	for (i = 0; i < n && o + 1 < dstlen; i++)
		dst[o++] = (unsigned char)src[i] > 0x20 &&
		    (unsigned char)src[i] < 0x7f ? src[i] : '?';
	dst[o] = '\0';
}

int
spam_rspamd_head(struct buf *b, const struct spam_envelope *e, size_t size)
{
	char	v[SPAM_VALUE_MAX];
	size_t	i;

	if (buf_printf(b, "POST /checkv2 HTTP/1.1\r\nHost: localhost\r\n"
	    "Connection: close\r\nUser-Agent: sporkd\r\n"
	    "Content-Length: %zu\r\n", size) == -1)
		return -1;
	if (e->queue_id != NULL && e->queue_id[0] != '\0') {
		spam_header_value(v, sizeof(v), e->queue_id, 0);
		if (buf_printf(b, "Queue-Id: %s\r\n", v) == -1)
			return -1;
	}
	if (e->client != NULL && e->client[0] != '\0') {
		spam_header_value(v, sizeof(v), e->client, 0);
		if (buf_printf(b, "IP: %s\r\n", v) == -1)
			return -1;
	}
	if (e->helo != NULL && e->helo[0] != '\0') {
		spam_header_value(v, sizeof(v), e->helo, 0);
		if (buf_printf(b, "Helo: %s\r\n", v) == -1)
			return -1;
	}
	if (e->sender != NULL) {
		/* The null reverse path is left out: rspamd reads a missing
		 * From as a bounce, as it should. */
		spam_header_value(v, sizeof(v), e->sender, 1);
		if (v[0] != '\0' && buf_printf(b, "From: %s\r\n", v) == -1)
			return -1;
	}
	for (i = 0; i < e->nrcpts; i++) {
		if (e->rcpts[i] == NULL)
			continue;
		spam_header_value(v, sizeof(v), e->rcpts[i], 1);
		/* Keep room for the blank line; the rest are left out. */
		if (v[0] == '\0' || buf_used(b) + strlen(v) + 16 > SPAM_HEAD_MAX)
			continue;
		if (buf_printf(b, "Rcpt: %s\r\n", v) == -1)
			return -1;
	}
	return buf_append(b, "\r\n", 2);
}

int
spam_spamd_head(struct buf *b, const struct spam_envelope *e, size_t size)
{
	(void)e;
	return buf_printf(b, "SYMBOLS SPAMC/1.5\r\nContent-length: %zu\r\n\r\n",
	    size);
}

/* ---- replies ---- */

/* Printable ASCII, quotes and backslashes replaced: safe in a log value,
 * an SMTP reply and a header. */
static void
spam_text(char *dst, size_t dstlen, const char *src, size_t n)
{
	size_t	i, o = 0;

	for (i = 0; i < n && o + 1 < dstlen; i++) {
		unsigned char	c = (unsigned char)src[i];

		dst[o++] = c < 0x20 || c > 0x7e || c == '"' || c == '\\' ?
		    '?' : (char)c;
	}
	dst[o] = '\0';
}

/* Append one symbol name to r->symbols as "A,B"; names keep only the
 * characters engines use in them; when full, the list ends in ",...". */
static void
spam_symbol_add(struct spam_result *r, size_t *used, const char *s, size_t n)
{
	char	 name[SPAM_SYMBOLS_MAX];
	size_t	 i, need;
	char	*d = r->symbols;

	if (n == 0 || *used == (size_t)-1)
		return;
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	for (i = 0; i < n; i++)
		name[i] = (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' &&
		    s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_' || s[i] == '-' || s[i] == '.' ? s[i] : '?';
	name[n] = '\0';
	need = (*used > 0 ? 1 : 0) + n;
	if (*used + need + 5 > sizeof(r->symbols)) {	/* ",..." + NUL */
		snprintf(d + *used, sizeof(r->symbols) - *used, "%s...",
		    *used > 0 ? "," : "");
		*used = (size_t)-1;
		return;
	}
	snprintf(d + *used, sizeof(r->symbols) - *used, "%s%s",
	    *used > 0 ? "," : "", name);
	*used += need;
}

/* Offset just past the CRLF CRLF that ends a header block, or 0. */
static size_t
spam_head_end(const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i + 3 < n; i++)
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' &&
		    p[i + 3] == '\n')
			return i + 4;
	return 0;
}

/*
 * The value of header name in the block head[0, hlen) (status line
 * first, lines end in CRLF), blanks trimmed. 1 found, 0 absent, -1 when
 * it appears twice (an ambiguous reply is refused, not guessed at).
 */
static int
spam_header_get(const char *head, size_t hlen, const char *name,
    const char **val, size_t *vlen)
{
	const char	*p = head, *end = head + hlen, *eol, *v;
	size_t		 nl = strlen(name);
	int		 found = 0;

	/* Skip the status line. */
	if ((eol = memchr(p, '\n', hlen)) == NULL)
		return 0;
	for (p = eol + 1; p < end; p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		if ((size_t)(eol - p) <= nl || p[nl] != ':' ||
		    strncasecmp(p, name, nl) != 0)
			continue;
		if (found)
			return -1;
		found = 1;
		v = p + nl + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		*val = v;
		*vlen = (size_t)(eol - v);
		while (*vlen > 0 && (v[*vlen - 1] == '\r' ||
		    v[*vlen - 1] == ' ' || v[*vlen - 1] == '\t'))
			(*vlen)--;
	}
	return found;
}

/* A decimal length of at most SPAM_REPLY_MAX. */
static int
spam_length(const char *p, size_t n, size_t *out)
{
	size_t	i, v = 0;

	if (n == 0 || n > 7)
		return -1;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (size_t)(p[i] - '0');
	}
	if (v > SPAM_REPLY_MAX)
		return -1;
	*out = v;
	return 0;
}

/* "-12.5": an optional minus, digits, an optional fraction; nothing
 * strtod() would also take (hex, inf, nan, exponents). */
static int
spam_number(const char *p, size_t n, double *out, size_t *used)
{
	char	tmp[SPAM_NUM_MAX + 1];
	size_t	i = 0, d = 0;

	if (i < n && p[i] == '-')
		i++;
	while (i < n && p[i] >= '0' && p[i] <= '9')
		i++, d++;
	if (i < n && p[i] == '.') {
		i++;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++, d++;
	}
	if (d == 0 || i > SPAM_NUM_MAX)
		return -1;
	memcpy(tmp, p, i);
	tmp[i] = '\0';
	*out = strtod(tmp, NULL);
	if (*out == 0)
		*out = 0;	/* "-0.0" is shown as 0.00 */
	*used = i;
	return spam_score_ok(*out) ? 0 : -1;
}

static int
spam_score_ok(double v)
{
	return isfinite(v) && v > -SPAM_SCORE_LIMIT && v < SPAM_SCORE_LIMIT;
}

/*
 * The body after a header block of hlen bytes: with a Content-Length it
 * is complete when that many bytes are there (no more), without one when
 * the engine has closed. 0 incomplete, 1 complete, -1 error.
 */
static int
spam_body(const char *p, size_t n, size_t hlen, int eof, const char **body,
    size_t *blen, struct spam_result *r)
{
	const char	*v;
	size_t		 vl, cl = 0;
	int		 h;

	if ((h = spam_header_get(p, hlen, "Transfer-Encoding", &v, &vl)) != 0) {
		snprintf(r->error, sizeof(r->error), "transfer-encoding "
		    "not supported");
		return -1;
	}
	if ((h = spam_header_get(p, hlen, "Content-Length", &v, &vl)) == -1 ||
	    (h == 1 && spam_length(v, vl, &cl) == -1)) {
		snprintf(r->error, sizeof(r->error), "bad content-length");
		return -1;
	}
	*body = p + hlen;
	*blen = n - hlen;
	if (h == 1) {
		if (*blen > cl) {
			snprintf(r->error, sizeof(r->error), "%zu bytes after "
			    "the reply", *blen - cl);
			return -1;
		}
		if (*blen < cl) {
			if (!eof)
				return 0;
			snprintf(r->error, sizeof(r->error), "reply truncated "
			    "(%zu of %zu bytes)", *blen, cl);
			return -1;
		}
		return 1;
	}
	return eof ? 1 : 0;
}

int
spam_rspamd_json(const char *p, size_t n, struct spam_result *r)
{
	json_t		*root, *v, *m;
	json_error_t	 je;
	const char	*key;
	size_t		 used = 0;
	int		 rc = -1;

	r->symbols[0] = r->message[0] = r->action[0] = '\0';
	if ((root = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je)) == NULL) {
		char	shown[SPAM_SHOWN_MAX];

		spam_text(shown, sizeof(shown), je.text, strlen(je.text));
		snprintf(r->error, sizeof(r->error), "bad JSON at byte %d: %s",
		    je.position, shown);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(r->error, sizeof(r->error), "JSON reply is not an "
		    "object");
		goto done;
	}
	v = json_object_get(root, "score");
	if (!json_is_number(v) || !spam_score_ok(json_number_value(v))) {
		snprintf(r->error, sizeof(r->error), "no usable score in reply");
		goto done;
	}
	r->score = json_number_value(v);
	if (r->score == 0)
		r->score = 0;
	v = json_object_get(root, "required_score");
	if (!json_is_number(v) || !spam_score_ok(json_number_value(v))) {
		snprintf(r->error, sizeof(r->error), "no usable required_score "
		    "in reply");
		goto done;
	}
	r->required = json_number_value(v);
	if ((v = json_object_get(root, "action")) != NULL) {
		if (!json_is_string(v)) {
			snprintf(r->error, sizeof(r->error), "action is not "
			    "a string");
			goto done;
		}
		spam_text(r->action, sizeof(r->action), json_string_value(v),
		    json_string_length(v));
	}
	if ((v = json_object_get(root, "symbols")) != NULL) {
		if (!json_is_object(v)) {
			snprintf(r->error, sizeof(r->error), "symbols is not "
			    "an object");
			goto done;
		}
		json_object_foreach(v, key, m)
			spam_symbol_add(r, &used, key, strlen(key));
	}
	if ((v = json_object_get(root, "messages")) != NULL &&
	    json_is_object(v) && (m = json_object_get(v, "smtp_message"))
	    != NULL && json_is_string(m))
		spam_text(r->message, sizeof(r->message), json_string_value(m),
		    json_string_length(m));
	r->is_spam = r->score >= r->required;
	r->ok = 1;
	rc = 0;
done:
	json_decref(root);
	return rc;
}

int
spam_rspamd_reply(const char *p, size_t n, int eof, struct spam_result *r)
{
	const char	*body;
	size_t		 hlen, blen;
	char		 shown[SPAM_SHOWN_MAX];
	int		 code, rc;

	r->ok = 0;
	if ((hlen = spam_head_end(p, n)) == 0) {
		if (n >= SPAM_REPLY_MAX) {
			snprintf(r->error, sizeof(r->error), "reply head too "
			    "long");
			return -1;
		}
		if (!eof)
			return 0;
		snprintf(r->error, sizeof(r->error), n == 0 ? "closed without "
		    "a reply" : "reply truncated in its head");
		return -1;
	}
	if (hlen < 14 || (strncmp(p, "HTTP/1.1 ", 9) != 0 &&
	    strncmp(p, "HTTP/1.0 ", 9) != 0) || p[9] < '1' || p[9] > '5' ||
	    p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
	    (p[12] != ' ' && p[12] != '\r')) {
		spam_text(shown, sizeof(shown), p, strcspn(p, "\r\n") < hlen ?
		    strcspn(p, "\r\n") : hlen);
		snprintf(r->error, sizeof(r->error), "not an HTTP reply: %s",
		    shown);
		return -1;
	}
	code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (code != 200) {
		spam_text(shown, sizeof(shown), p + 9, strcspn(p + 9, "\r\n"));
		snprintf(r->error, sizeof(r->error), "HTTP %s", shown);
		return -1;
	}
	if ((rc = spam_body(p, n, hlen, eof, &body, &blen, r)) != 1)
		return rc;
	return spam_rspamd_json(body, blen, r) == 0 ? 1 : -1;
}

int
spam_spamd_reply(const char *p, size_t n, int eof, struct spam_result *r)
{
	const char	*eol, *v, *body, *end, *s;
	size_t		 hlen, vl, blen, k, used = 0;
	char		 shown[SPAM_SHOWN_MAX];
	int		 rc;

	r->ok = 0;
	r->symbols[0] = r->message[0] = r->action[0] = '\0';
	/* The status line first: an error reply may have nothing after it. */
	if ((eol = memchr(p, '\n', n)) == NULL) {
		if (n >= SPAM_REPLY_MAX) {
			snprintf(r->error, sizeof(r->error), "reply line too "
			    "long");
			return -1;
		}
		if (!eof)
			return 0;
		snprintf(r->error, sizeof(r->error), n == 0 ? "closed without "
		    "a reply" : "reply truncated in its first line");
		return -1;
	}
	vl = (size_t)(eol - p);
	if (vl > 0 && p[vl - 1] == '\r')
		vl--;
	/* "SPAMD/1.1 0 EX_OK" */
	k = 6;
	if (vl < 10 || strncmp(p, "SPAMD/", 6) != 0)
		goto badline;
	while (k < vl && ((p[k] >= '0' && p[k] <= '9') || p[k] == '.'))
		k++;
	if (k == 6 || k >= vl || p[k] != ' ')
		goto badline;
	k++;
	if (p[k] != '0' || (k + 1 < vl && p[k + 1] != ' ')) {
		spam_text(shown, sizeof(shown), p + k, vl - k);
		snprintf(r->error, sizeof(r->error), "spamd error: %s", shown);
		return -1;
	}
	if ((hlen = spam_head_end(p, n)) == 0) {
		if (n >= SPAM_REPLY_MAX) {
			snprintf(r->error, sizeof(r->error), "reply head too "
			    "long");
			return -1;
		}
		if (!eof)
			return 0;
		snprintf(r->error, sizeof(r->error), "reply truncated in its "
		    "head");
		return -1;
	}
	if ((rc = spam_body(p, n, hlen, eof, &body, &blen, r)) != 1)
		return rc;

	/* "Spam: True ; 15.0 / 5.0" */
	if ((rc = spam_header_get(p, hlen, "Spam", &v, &vl)) != 1) {
		snprintf(r->error, sizeof(r->error), rc == 0 ? "no Spam header "
		    "in reply" : "two Spam headers in reply");
		return -1;
	}
	end = v + vl;
	for (k = 0; v + k < end && v[k] != ' ' && v[k] != ';'; k++)
		;
	if ((k == 4 && strncasecmp(v, "True", 4) == 0) ||
	    (k == 3 && strncasecmp(v, "Yes", 3) == 0))
		r->is_spam = 1;
	else if ((k == 5 && strncasecmp(v, "False", 5) == 0) ||
	    (k == 2 && strncasecmp(v, "No", 2) == 0))
		r->is_spam = 0;
	else
		goto badspam;
	s = v + k;
	while (s < end && *s == ' ')
		s++;
	if (s == end || *s++ != ';')
		goto badspam;
	while (s < end && *s == ' ')
		s++;
	if (spam_number(s, (size_t)(end - s), &r->score, &k) == -1)
		goto badspam;
	s += k;
	while (s < end && *s == ' ')
		s++;
	if (s == end || *s++ != '/')
		goto badspam;
	while (s < end && *s == ' ')
		s++;
	if (spam_number(s, (size_t)(end - s), &r->required, &k) == -1 ||
	    s + k != end)
		goto badspam;

	/* SYMBOLS: the names, comma-separated, maybe a line end. */
	while (blen > 0 && (body[blen - 1] == '\n' || body[blen - 1] == '\r'))
		blen--;
	for (s = body, end = body + blen; s < end; s += k + 1) {
		for (k = 0; s + k < end && s[k] != ','; k++)
			;
		spam_symbol_add(r, &used, s, k);
	}
	r->ok = 1;
	return 1;
badline:
	spam_text(shown, sizeof(shown), p, vl);
	snprintf(r->error, sizeof(r->error), "not a SPAMD reply: %s", shown);
	return -1;
badspam:
	spam_text(shown, sizeof(shown), v, vl);
	snprintf(r->error, sizeof(r->error), "bad Spam header: %s", shown);
	return -1;
}
