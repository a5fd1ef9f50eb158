/* SPDX-License-Identifier: MIT */
/*
 * Command lines: smtp_line_scan and smtp_cmd_parse over what a client may
 * send, walked the way the relay walks its input buffer (relay.c
 * client_commands): a line at a time, an overlong line answered and then
 * skipped up to its end, a bare-LF line accepted only in normalize mode,
 * and after DATA the message handed to the framer until its end, then back
 * to commands. Each input is walked in both bare_newline modes and with
 * two line limits (RFC 5321's 512 and a small one to reach TOO_LONG).
 *
 * Invariants:
 *  - every scan result says the truth about the bytes (where the LF is,
 *    the CR before it, a bare CR or NUL inside) and consumes within bounds;
 *  - a line the relay forwards to the server (LINE_OK, or LINE_BARE_LF in
 *    normalize mode) holds no CR, LF or NUL: the relay appends CRLF, so
 *    anything else would reach the server as a second line;
 *  - a line that a real server reads as DATA, BDAT or STARTTLS is never
 *    classified as an ordinary command: those three change how the bytes
 *    that follow are framed, and the relay forwards ordinary commands
 *    without looking at what comes after them. "A real server" is Postfix
 *    (smtpd_token: leading white space skipped, the verb ends at any
 *    isspace()) and Exim (trailing white space stripped before matching);
 *  - smtp_cmd_parse's verb, args and argslen describe the line (the verb
 *    ends at SP or HTAB).
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "smtp_data.h"
#include "smtp_proto.h"
#include "fuzz.h"

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} framing_verbs[] = {
	{ "DATA", VERB_DATA },
	{ "BDAT", VERB_BDAT },
	{ "STARTTLS", VERB_STARTTLS },
};

/* White space as the C locale's isspace(), minus the line ends. */
static int
ws(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

/* The verb a lenient server sees: Postfix's tokenizer, then Exim's. */
static enum smtp_verb
server_verb(const char *line, size_t len)
{
	size_t	i, s = 0, e, t = len, nl;

	while (s < len && ws(line[s]))
		s++;
	for (e = s; e < len && !ws(line[e]); e++)
		;
	while (t > 0 && ws(line[t - 1]))
		t--;
	for (i = 0; i < sizeof(framing_verbs) / sizeof(framing_verbs[0]);
	    i++) {
		nl = strlen(framing_verbs[i].name);
		if (e - s == nl &&
		    strncasecmp(line + s, framing_verbs[i].name, nl) == 0)
			return framing_verbs[i].verb;
		if (t >= nl && strncasecmp(line, framing_verbs[i].name, nl)
		    == 0 && (t == nl || line[nl] == ' '))
			return framing_verbs[i].verb;
	}
	return VERB_OTHER;
}

static void
check_scan(const char *p, size_t len, size_t max, enum smtp_line r,
    size_t ll, size_t used)
{
	const char	*lf = memchr(p, '\n', len < max ? len : max);
	size_t		 n, i;
	int		 crlf, first = 0;	/* the first CR or NUL inside */

	FUZZ_CHECK(used <= len, "consumed %zu of %zu", used, len);
	switch (r) {
	case LINE_PARTIAL:
		FUZZ_CHECK(lf == NULL && len < max && used == len,
		    "PARTIAL with len %zu max %zu used %zu", len, max, used);
		return;
	case LINE_TOO_LONG:
		FUZZ_CHECK(lf == NULL && len >= max && used == max,
		    "TOO_LONG with len %zu max %zu used %zu", len, max, used);
		return;
	default:
		break;
	}
	FUZZ_CHECK(lf != NULL, "a line result (%d) with no LF in reach", r);
	n = (size_t)(lf - p);
	crlf = n >= 1 && p[n - 1] == '\r';
	FUZZ_CHECK(used == n + 1 && used <= max, "line of %zu bytes consumed "
	    "as %zu (max %zu)", n + 1, used, max);
	FUZZ_CHECK(ll == (crlf ? n - 1 : n), "linelen %zu for a line of %zu "
	    "bytes ended by %s", ll, n + 1, crlf ? "CRLF" : "LF");
	for (i = 0; i < ll && first == 0; i++)
		if (p[i] == '\r' || p[i] == '\0')
			first = p[i] == '\r' ? 'r' : '0';
	switch (r) {
	case LINE_OK:
		FUZZ_CHECK(crlf && first == 0, "LINE_OK for a line ended by "
		    "%s with %s inside", crlf ? "CRLF" : "LF",
		    first ? "a CR or NUL" : "nothing");
		break;
	case LINE_BARE_LF:
		FUZZ_CHECK(!crlf, "BARE_LF but the LF follows a CR");
		break;
	case LINE_BARE_CR:
		FUZZ_CHECK(first == 'r', "BARE_CR but the first CR/NUL is %c",
		    first ? first : '-');
		break;
	case LINE_NUL:
		FUZZ_CHECK(first == '0', "NUL but the first CR/NUL is %c",
		    first ? first : '-');
		break;
	default:
		FUZZ_CHECK(0, "unknown line result %d", r);
	}
}

static void
check_cmd(const char *line, size_t len)
{
	struct smtp_cmd	 c;
	const char	*name;
	size_t		 nl, i;
	enum smtp_verb	 sv;

	for (i = 0; i < len; i++)
		if (line[i] == '\r' || line[i] == '\n' || line[i] == '\0') {
			fuzz_dump("line", line, len);
			FUZZ_CHECK(0, "a forwarded command line holds %s at %zu: "
			    "the server gets it followed by CRLF",
			    line[i] == '\r' ? "a CR" : line[i] == '\n' ?
			    "an LF" : "a NUL", i);
		}

	smtp_cmd_parse(line, len, &c);
	name = smtp_verb_name(c.verb);
	FUZZ_CHECK(name != NULL, "no name for verb %d", c.verb);
	FUZZ_CHECK(c.args >= line && c.args <= line + len &&
	    c.argslen <= (size_t)(line + len - c.args),
	    "args outside the line");
	FUZZ_CHECK(c.argslen == 0 || c.args + c.argslen == line + len,
	    "args do not run to the end of the line");
	if (c.verb != VERB_OTHER) {
		/* The verb comes after any leading blanks (SP HT VT FF), and
		 * ends at the end or at a blank. */
		static const char *const refused[] = { "BURL", "ATRN", "TURN",
		    "XCLIENT", "XEXCH50" };
		const char	*v = line;
		size_t		 vlen = len, k;

		while (vlen > 0 && (*v == ' ' || *v == '\t' || *v == '\v' ||
		    *v == '\f')) {
			v++;
			vlen--;
		}
		/* A hidden extension's verb: one of these, whichever. */
		for (k = 0; c.verb == VERB_REFUSED &&
		    k < sizeof(refused) / sizeof(refused[0]); k++)
			if (vlen >= strlen(refused[k]) && strncasecmp(v,
			    refused[k], strlen(refused[k])) == 0)
				name = refused[k];
		nl = strlen(name);
		FUZZ_CHECK(vlen >= nl && strncasecmp(v, name, nl) == 0 &&
		    (vlen == nl || v[nl] == ' ' || v[nl] == '\t' ||
		    v[nl] == '\v' || v[nl] == '\f'),
		    "verb %s for a line that does not start with it", name);
		FUZZ_CHECK(c.argslen == (vlen > nl ? vlen - nl - 1 : 0),
		    "argslen %zu for %s", c.argslen, name);
	}
	sv = server_verb(line, len);
	if (sv != VERB_OTHER && sv != c.verb) {
		fuzz_dump("line", line, len);
		FUZZ_CHECK(0, "a server reads this line as %s, the relay as "
		    "%s: forwarded as an ordinary command", smtp_verb_name(sv),
		    name);
	}
}

/* The message after DATA: bytes consumed through its end, or all. */
static size_t
data_skip(const char *p, size_t len, int normalize)
{
	struct data_framer	df;
	static char		out[3 * 4096 + 16];
	size_t			pos = 0, chunk, used, olen;
	int			end = 0;

	data_framer_init(&df, normalize, 998, 1 << 20);
	while (pos < len && !end) {
		chunk = len - pos < 4096 ? len - pos : 4096;
		used = data_framer_feed(&df, p + pos, chunk, out, sizeof(out),
		    &olen, &end);
		FUZZ_CHECK(used > 0 || end, "framer made no progress");
		pos += used;
	}
	if (end)
		FUZZ_CHECK(pos >= 3 && memcmp(p + pos - 3, ".\r\n", 3) == 0,
		    "message ended without .CRLF");
	return pos;
}

static void
walk(const char *p, size_t len, size_t max, int normalize)
{
	struct smtp_cmd	c;
	enum smtp_line	r;
	size_t		ll, used;
	int		skip = 0;

	while (len > 0) {
		r = smtp_line_scan(p, len, max, &ll, &used);
		check_scan(p, len, max, r, ll, used);
		if (skip) {
			if (r != LINE_PARTIAL && r != LINE_TOO_LONG)
				skip = 0;
		} else if (r == LINE_PARTIAL) {
			return;
		} else if (r == LINE_OK ||
		    (r == LINE_BARE_LF && normalize)) {
			check_cmd(p, ll);
			smtp_cmd_parse(p, ll, &c);
			if (c.verb == VERB_DATA && c.argslen == 0) {
				p += used;
				len -= used;
				used = data_skip(p, len, normalize);
			} else if (c.verb == VERB_STARTTLS && c.argslen == 0)
				return;		/* the rest is dropped */
		} else if (r == LINE_TOO_LONG)
			skip = 1;
		FUZZ_CHECK(used > 0 || len == 0, "no progress");
		p += used;
		len -= used;
	}
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*p = (const char *)data;

	walk(p, size, 512, 0);
	walk(p, size, 512, 1);
	walk(p, size, 24, 0);
	walk(p, size, 24, 1);
	return 0;
}
