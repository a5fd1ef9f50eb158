/* SPDX-License-Identifier: MIT */
/*
 * Server replies: smtp_reply_scan over a stream of server output, walked
 * the way the relay walks it (relay.c session_server_input: one complete
 * reply at a time, stop at the first malformed one), and for every
 * complete reply smtp_reply_copy and smtp_ehlo_filter. Two limit sets: the
 * defaults (2048-byte lines are cut to 512 here to reach the limit sooner,
 * 100 lines) and short lines with more lines than the EHLO filter keeps.
 *
 * Invariants:
 *  - a complete reply is lines of "DDD" + SP/-/CR/LF, one code, every line
 *    but the last marked '-', within both limits, and its end does not
 *    depend on what follows (one byte less is "need more");
 *  - the copy is the same lines, each ended by CRLF and nothing else: no
 *    bare CR or LF reaches the client, whose reading of the reply must be
 *    the relay's;
 *  - the EHLO filter keeps the greeting line, marks every line but the
 *    last '-' and the last ' ', ends lines with CRLF only, keeps every
 *    other line byte for byte except SIZE (rewritten to the number on its
 *    own line, capped at the limit: never a number read from another line
 *    or from past the reply) and the lines it hides, which must be lines a
 *    lenient client reads as CHUNKING or BINARYMIME and which it counts.
 *    No line it lets through may read as CHUNKING, BINARYMIME or a SIZE
 *    above the limit to a lenient client: Postfix's smtp client (keyword
 *    after blanks, up to a blank or '=') or Exim's ("250[ -]KEYWORD" then
 *    any white space).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "smtp_proto.h"
#include "fuzz.h"

#define SIZE_LIMIT	((size_t)100 << 20)
#define OUT_MAX		((size_t)1 << 20)
#define EHLO_KEEP_MAX	128	/* lines smtp_ehlo_filter can hold */

static int
ws(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* Next line of a complete reply: its length with the LF, text without. */
static size_t
next_line(const char *p, size_t left, size_t *textlen)
{
	const char	*lf = memchr(p, '\n', left);
	size_t		 ll;

	FUZZ_CHECK(lf != NULL, "a complete reply with an unterminated line");
	ll = (size_t)(lf - p) + 1;
	*textlen = ll - 1 - (ll >= 2 && p[ll - 2] == '\r');
	return ll;
}

static void
check_scanned(const char *r, size_t len, size_t left, size_t maxline,
    size_t maxlines, int code, size_t *nlines)
{
	size_t	ll, tl, n = 0, off = 0;
	int	c, rc2, code2;
	size_t	used2;
	const char *why2 = NULL;

	FUZZ_CHECK(len > 0 && len <= left, "consumed %zu of %zu", len, left);
	FUZZ_CHECK(code >= 200 && code <= 599, "code %d", code);
	while (off < len) {
		ll = next_line(r + off, len - off, &tl);
		n++;
		FUZZ_CHECK(ll <= maxline, "line of %zu bytes, limit %zu", ll,
		    maxline);
		FUZZ_CHECK(tl >= 3, "reply line of %zu bytes", tl);
		c = (r[off] - '0') * 100 + (r[off + 1] - '0') * 10 +
		    (r[off + 2] - '0');
		FUZZ_CHECK(r[off] >= '2' && r[off] <= '5' &&
		    r[off + 1] >= '0' && r[off + 1] <= '9' &&
		    r[off + 2] >= '0' && r[off + 2] <= '9' && c == code,
		    "line %zu does not start with the code %d", n, code);
		FUZZ_CHECK(strchr(" -\r\n", r[off + 3]) != NULL,
		    "line %zu: code followed by %#x", n,
		    (unsigned char)r[off + 3]);
		FUZZ_CHECK((r[off + 3] == '-') == (off + ll < len),
		    "line %zu: continuation mark and reply end disagree", n);
		off += ll;
	}
	FUZZ_CHECK(n <= maxlines, "%zu lines, limit %zu", n, maxlines);
	*nlines = n;

	/* The reply alone is still the same reply; one byte less is not. */
	rc2 = smtp_reply_scan(r, len, maxline, maxlines, &used2, &code2, &why2);
	FUZZ_CHECK(rc2 == 1 && used2 == len && code2 == code,
	    "the reply alone scans differently (%d, %zu)", rc2, used2);
	rc2 = smtp_reply_scan(r, len - 1, maxline, maxlines, &used2, &code2,
	    &why2);
	FUZZ_CHECK(rc2 == 0, "a reply cut by one byte scans as %d", rc2);
}

static void
check_copy(const char *r, size_t len, size_t nlines)
{
	struct buf	 out;
	const char	*o;
	size_t		 olen, off = 0, ooff = 0, ll, tl, n = 0, where;

	buf_init(&out, OUT_MAX);
	FUZZ_CHECK(smtp_reply_copy(&out, r, len) == 0, "copy failed");
	o = buf_head(&out);
	olen = buf_used(&out);
	if (!fuzz_crlf_only(o, olen, &where)) {
		fuzz_dump("reply", r, len);
		fuzz_dump("copy", o, olen);
		FUZZ_CHECK(0, "the copy has a bare CR or LF at %zu: the client "
		    "would see other lines than the relay did", where);
	}
	while (off < len) {
		ll = next_line(r + off, len - off, &tl);
		FUZZ_CHECK(ooff + tl + 2 <= olen &&
		    memcmp(o + ooff, r + off, tl) == 0 &&
		    memcmp(o + ooff + tl, "\r\n", 2) == 0,
		    "copy line %zu differs from the reply line", n + 1);
		ooff += tl + 2;
		off += ll;
		n++;
	}
	FUZZ_CHECK(n == nlines && ooff == olen, "copy has extra bytes");
	buf_free(&out);
}

/* Postfix's smtp client: the keyword after blanks, up to a blank or '='. */
static int
kw_postfix(const char *line, size_t len, const char *kw, size_t *after)
{
	size_t	s = 4, e, kl = strlen(kw);

	if (len <= 4)
		return 0;
	/* As the relay reads it: blanks are SP HT VT FF. */
	while (s < len && (line[s] == ' ' || line[s] == '\t' ||
	    line[s] == '\v' || line[s] == '\f'))
		s++;
	for (e = s; e < len && line[e] != ' ' && line[e] != '\t' &&
	    line[e] != '\v' && line[e] != '\f' && line[e] != '='; e++)
		;
	*after = e;
	return e - s == kl && strncasecmp(line + s, kw, kl) == 0;
}

/*
 * Exim's: the regex "\n250[\s\-]KEYWORD(\s|\n|$)", case-sensitive, over
 * the whole reply.
 */
static int
kw_exim(const char *line, size_t len, const char *kw)
{
	size_t	kl = strlen(kw);

	return len >= 4 + kl && memcmp(line + 4, kw, kl) == 0 &&
	    (len == 4 + kl || ws(line[4 + kl]) || line[4 + kl] == '\n');
}

static int
hidden_ext(const char *line, size_t len)
{
	/* Written apart from the relay's table: the keywords a client may
	 * be told of. Anything else is hidden. */
	static const char *const pass[] = {
		"PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8",
		"ENHANCEDSTATUSCODES", "DSN", "AUTH", "STARTTLS", "REQUIRETLS",
		"MT-PRIORITY", "DELIVERBY", "FUTURERELEASE", "LIMITS", "ETRN",
		"XFORWARD", "VRFY", "EXPN", "HELP",
	};
	size_t	after, i;

	if (kw_exim(line, len, "CHUNKING") || kw_exim(line, len, "BINARYMIME") ||
	    kw_exim(line, len, "PRDR") || kw_exim(line, len, "PIPECONNECT"))
		return 1;
	for (i = 0; i < sizeof(pass) / sizeof(pass[0]); i++)
		if (kw_postfix(line, len, pass[i], &after))
			return 0;
	return 1;
}

/* Digits at line[i]: the value (capped past the limit), 0 if none. */
static unsigned long long
number_at(const char *line, size_t len, size_t i, int *found)
{
	unsigned long long	v = 0;

	*found = i < len && line[i] >= '0' && line[i] <= '9';
	for (; i < len && line[i] >= '0' && line[i] <= '9' &&
	    v <= SIZE_LIMIT; i++)
		v = v * 10 + (unsigned)(line[i] - '0');
	return v;
}

/*
 * An input SIZE line against the "SIZE n" the filter wrote for it. RFC 1870
 * form ("SIZE", blanks, digits): n is that number capped at the limit (zero
 * or absurd means the limit). "SIZE=digits", a lenient form: n is that
 * number capped, or the limit. Anything else: the limit. Never a number
 * from another line or from past the reply.
 */
static int
size_ok(const char *in, size_t itl, unsigned long long v)
{
	unsigned long long	 n;
	size_t			 after, i;
	int			 found;

	if (v == 0 || v > SIZE_LIMIT)
		return 0;
	/* The relay reads the number after any run of blanks and '='. */
	(void)kw_postfix(in, itl, "SIZE", &after);
	for (i = after; i < itl && (in[i] == ' ' || in[i] == '\t' ||
	    in[i] == '\v' || in[i] == '\f' || in[i] == '='); i++)
		;
	n = number_at(in, itl, i, &found);
	if (found)
		return v == (n == 0 || n > SIZE_LIMIT ? SIZE_LIMIT : n);
	return v == SIZE_LIMIT;
}

/* Is the output line "SIZE <digits>"? Its number in *v. */
static int
size_line(const char *o, size_t tl, unsigned long long *v)
{
	int	found;

	if (tl < 10 || memcmp(o + 4, "SIZE ", 5) != 0)
		return 0;
	*v = number_at(o, tl, 9, &found);
	return found && (size_t)snprintf(NULL, 0, "%llu", *v) == tl - 9 &&
	    *v <= SIZE_LIMIT;
}

/*
 * Filtered lines against the input lines, in order. An output line is its
 * input line byte for byte (after the 4-byte code and mark), or, for an
 * input SIZE line, "SIZE n" with the right n. Input lines with no output
 * line are the hidden ones: each must be one a lenient client reads as
 * CHUNKING or BINARYMIME, and the filter must count them. No output line
 * may read as CHUNKING, BINARYMIME or a SIZE above the limit to a lenient
 * client.
 */
static void
check_ehlo(const char *reply, size_t len, size_t nlines, int code)
{
	static const char	 next[] = "250 2.0.0 Ok: 12345\r\n";
	struct buf		 out;
	struct smtp_ehlo	 e;
	const char		*o, *lf, *in = NULL;
	char			*r;
	size_t			 olen, off = 0, ioff = 0, n = 0, tl, ll, itl = 0;
	size_t			 where, after, hidden = 0;
	unsigned long long	 v;
	int			 rc, found;

	/* What follows the reply in the relay's buffer: the next reply. */
	if ((r = malloc(len + sizeof(next))) == NULL)
		abort();
	memcpy(r, reply, len);
	memcpy(r + len, next, sizeof(next));
	buf_init(&out, OUT_MAX);
	rc = smtp_ehlo_filter(&out, r, len, SIZE_LIMIT, &e);
	if (rc == -1) {
		FUZZ_CHECK(nlines > EHLO_KEEP_MAX, "filter failed on a reply "
		    "of %zu lines", nlines);
		goto done;
	}
	o = buf_head(&out);
	olen = buf_used(&out);
	if (!fuzz_crlf_only(o, olen, &where)) {
		fuzz_dump("reply", r, len);
		fuzz_dump("filtered", o, olen);
		FUZZ_CHECK(0, "the filtered EHLO reply has a bare CR or LF at "
		    "%zu", where);
	}
	while (off < olen) {
		lf = memchr(o + off, '\n', olen - off);
		FUZZ_CHECK(lf != NULL, "unterminated filtered line");
		ll = (size_t)(lf - (o + off)) + 1;
		tl = ll - 2;
		n++;
		FUZZ_CHECK(tl >= 4 && o[off] == '0' + code / 100 &&
		    o[off + 1] == '0' + code / 10 % 10 &&
		    o[off + 2] == '0' + code % 10,
		    "filtered line %zu does not start with %d", n, code);
		FUZZ_CHECK(o[off + 3] == (off + ll < olen ? '-' : ' '),
		    "filtered line %zu has mark '%c'", n, o[off + 3]);

		for (;;) {
			if (ioff >= len) {
				fuzz_dump("reply", r, len);
				fuzz_dump("filtered", o, olen);
				FUZZ_CHECK(0, "filtered line %zu is no input "
				    "line", n);
			}
			in = r + ioff;
			ioff += next_line(in, len - ioff, &itl);
			if (tl == (itl > 4 ? itl : 4) &&
			    memcmp(o + off + 4, in + 4, tl - 4) == 0)
				break;		/* kept as it came */
			if (n > 1 && kw_postfix(in, itl, "SIZE", &after) &&
			    size_line(o + off, tl, &v)) {
				if (!size_ok(in, itl, v)) {
					fuzz_dump("reply", r, len);
					fuzz_dump("filtered", o, olen);
					FUZZ_CHECK(0, "line %zu: SIZE %llu for "
					    "this input line", n, v);
				}
				break;
			}
			if (n == 1 || !hidden_ext(in, itl)) {
				fuzz_dump("reply", r, len);
				fuzz_dump("filtered", o, olen);
				FUZZ_CHECK(0, "input line %zu was dropped or "
				    "changed", n + hidden);
			}
			hidden++;
		}

		if (n > 1 && hidden_ext(o + off, tl)) {
			fuzz_dump("reply", r, len);
			fuzz_dump("filtered", o, olen);
			FUZZ_CHECK(0, "line %zu advertises a hidden extension",
			    n);
		}
		if (n > 1 && kw_postfix(o + off, tl, "SIZE", &after)) {
			while (after < tl && (ws(o[off + after]) ||
			    o[off + after] == '='))
				after++;
			v = number_at(o + off, tl, after, &found);
			if (found && (v == 0 || v > SIZE_LIMIT)) {
				fuzz_dump("filtered", o, olen);
				FUZZ_CHECK(0, "line %zu: a client reads SIZE "
				    "%llu, limit %zu", n, v, SIZE_LIMIT);
			}
		}
		off += ll;
	}
	while (ioff < len) {
		in = r + ioff;
		ioff += next_line(in, len - ioff, &itl);
		FUZZ_CHECK(hidden_ext(in, itl), "a trailing input line went "
		    "missing");
		hidden++;
	}
	FUZZ_CHECK(n >= 1, "the filter dropped every line");
	FUZZ_CHECK(n + hidden == nlines && hidden == (size_t)e.hidden,
	    "%zu lines in, %zu out, %zu hidden, %d counted", nlines, n,
	    hidden, e.hidden);
done:
	buf_free(&out);
	free(r);
}

static void
walk(const char *p, size_t len, size_t maxline, size_t maxlines)
{
	const char	*why;
	size_t		 used, nlines;
	int		 rc, code;

	while (len > 0) {
		why = NULL;
		rc = smtp_reply_scan(p, len, maxline, maxlines, &used, &code,
		    &why);
		if (rc == -1) {
			FUZZ_CHECK(why != NULL, "an error with no reason");
			return;
		}
		FUZZ_CHECK(rc == 0 || rc == 1, "scan returned %d", rc);
		if (rc == 0)
			return;
		check_scanned(p, used, len, maxline, maxlines, code, &nlines);
		check_copy(p, used, nlines);
		check_ehlo(p, used, nlines, code);
		p += used;
		len -= used;
	}
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	walk((const char *)data, size, 512, 100);
	walk((const char *)data, size, 64, 200);
	return 0;
}
