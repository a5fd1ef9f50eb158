/* SPDX-License-Identifier: MIT */
/*
 * SMTP syntax, with no I/O and no state: finding command lines under the
 * strict-CRLF rule, naming verbs, scanning (multi-line) replies, and the
 * EHLO filter that hides what the relay cannot carry. Pure functions over
 * byte ranges, so they can be tested and fuzzed alone.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_proto.h"

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} smtp_verbs[] = {
	{ "HELO", VERB_HELO },
	{ "EHLO", VERB_EHLO },
	{ "MAIL", VERB_MAIL },
	{ "RCPT", VERB_RCPT },
	{ "DATA", VERB_DATA },
	{ "BDAT", VERB_BDAT },
	{ "RSET", VERB_RSET },
	{ "NOOP", VERB_NOOP },
	{ "QUIT", VERB_QUIT },
	{ "VRFY", VERB_VRFY },
	{ "EXPN", VERB_EXPN },
	{ "HELP", VERB_HELP },
	{ "STARTTLS", VERB_STARTTLS },
	{ "AUTH", VERB_AUTH },
	/* smtp_refused_verbs are looked up after these. */
};

/*
 * Every EHLO keyword a server may advertise, and what the client is told of
 * it: the one place that decides (the README's table "EHLO keywords" says
 * why for each). A keyword not listed is hidden: a feature the relay does
 * not know could change how the bytes that follow are framed or answered,
 * and the relay would lose track of the transaction. The hidden ones are
 * listed too, so that the decision is written down.
 */
static const struct {
	const char	*kw;
	enum smtp_ext	 act;
} smtp_ehlo_table[] = {
	/* Relayed: nothing in them changes framing or the reply sequence. */
	{ "PIPELINING",		EXT_PASS },	/* replies kept in order */
	{ "SIZE",		EXT_SIZE },	/* capped at our own limit */
	{ "8BITMIME",		EXT_PASS },	/* bytes relayed as they are */
	{ "SMTPUTF8",		EXT_PASS },
	{ "ENHANCEDSTATUSCODES", EXT_PASS },
	{ "DSN",		EXT_PASS },	/* parameters; DSNs are the server's */
	{ "AUTH",		EXT_PASS },	/* 334 exchanges are tracked */
	{ "STARTTLS",		EXT_STARTTLS },	/* per tls_policy */
	{ "REQUIRETLS",		EXT_PASS },	/* offered inside TLS only */
	{ "MT-PRIORITY",	EXT_PASS },
	{ "DELIVERBY",		EXT_PASS },
	{ "FUTURERELEASE",	EXT_PASS },
	{ "LIMITS",		EXT_PASS },
	{ "ETRN",		EXT_PASS },	/* a queue run elsewhere */
	{ "XFORWARD",		EXT_PASS },	/* log attributes, one reply */
	{ "VRFY",		EXT_PASS },
	{ "EXPN",		EXT_PASS },
	{ "HELP",		EXT_PASS },
	/* Hidden: each would make the relay answer for, or miss, content. */
	{ "CHUNKING",		EXT_HIDE },	/* BDAT: answers before the scan */
	{ "BINARYMIME",		EXT_HIDE },	/* needs CHUNKING */
	{ "BURL",		EXT_HIDE },	/* content fetched by the server */
	{ "PRDR",		EXT_HIDE },	/* per-recipient replies after data */
	{ "PIPECONNECT",	EXT_HIDE },	/* commands before the banner */
	{ "XCLIENT",		EXT_HIDE },	/* resets the session, new banner */
	{ "ATRN",		EXT_HIDE },	/* the roles turn: mail flows back */
	{ "TURN",		EXT_HIDE },
	{ "CHECKPOINT",		EXT_HIDE },	/* RFC 1845 restarts mid-message */
	{ "XEXCH50",		EXT_HIDE },	/* binary blob after a 354 */
};

/* Verbs of hidden extensions: answered 502, never forwarded. */
static const char *const smtp_refused_verbs[] = {
	"BURL", "ATRN", "TURN", "XCLIENT", "XEXCH50",
};

/*
 * Find the first line of buf. A line is at most max bytes including its
 * terminator. *linelen excludes the terminator; *consumed includes it (or,
 * for LINE_TOO_LONG, is how much may be thrown away so far).
 */
enum smtp_line
smtp_line_scan(const char *buf, size_t len, size_t max, size_t *linelen,
    size_t *consumed)
{
	const char	*lf;
	size_t		 i, n, scan = len < max ? len : max;
	int		 bare_lf;

	lf = memchr(buf, '\n', scan);
	if (lf == NULL) {
		*linelen = 0;
		*consumed = scan;
		return len >= max ? LINE_TOO_LONG : LINE_PARTIAL;
	}
	n = (size_t)(lf - buf);
	*consumed = n + 1;
	bare_lf = n == 0 || buf[n - 1] != '\r';
	*linelen = bare_lf ? n : n - 1;
	/* A bare CR or a NUL anywhere wins over a bare LF at the end: a line
	 * normalized for its LF must not carry them upstream. */
	for (i = 0; i < *linelen; i++) {
		if (buf[i] == '\r')
			return LINE_BARE_CR;
		if (buf[i] == '\0')
			return LINE_NUL;
	}
	return bare_lf ? LINE_BARE_LF : LINE_OK;
}

/* What any server might take as a blank between words (Postfix: isspace). */
static int
smtp_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

void
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd)
{
	size_t	vl, i;

	/*
	 * Find the verb the way the most lenient server would: after leading
	 * blanks, up to any blank. " BDAT" or "DATA<VT>x" must be what the
	 * server will see, or a message could pass around the scanner.
	 */
	while (len > 0 && smtp_blank(*line)) {
		line++;
		len--;
	}
	vl = 0;
	while (vl < len && !smtp_blank(line[vl]))
		vl++;
	cmd->verb = VERB_OTHER;
	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (strlen(smtp_verbs[i].name) == vl &&
		    strncasecmp(line, smtp_verbs[i].name, vl) == 0) {
			cmd->verb = smtp_verbs[i].verb;
			break;
		}
	for (i = 0; cmd->verb == VERB_OTHER && i < sizeof(smtp_refused_verbs) /
	    sizeof(smtp_refused_verbs[0]); i++)
		if (strlen(smtp_refused_verbs[i]) == vl &&
		    strncasecmp(line, smtp_refused_verbs[i], vl) == 0)
			cmd->verb = VERB_REFUSED;
	cmd->args = vl < len ? line + vl + 1 : line + len;
	cmd->argslen = vl < len ? len - vl - 1 : 0;
}

const char *
smtp_verb_name(enum smtp_verb v)
{
	size_t	i;

	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (smtp_verbs[i].verb == v)
			return smtp_verbs[i].name;
	return v == VERB_REFUSED ? "REFUSED" : "OTHER";
}

/*
 * Scan one complete reply at the head of buf. Returns 1 with *consumed set
 * when a final line was found, 0 when more input is needed, -1 on a
 * malformed reply with *why set. Lines may end in CRLF or, from lenient
 * servers, a bare LF; they are re-terminated canonically when copied.
 */
int
smtp_reply_scan(const char *buf, size_t len, size_t maxline, size_t maxlines,
    size_t *consumed, int *code, const char **why)
{
	const char	*p = buf, *lf, *q;
	size_t		 left = len, ll, lines = 0;
	int		 c, first = -1, more;

	for (;;) {
		lf = memchr(p, '\n', left < maxline ? left : maxline);
		if (lf == NULL) {
			if (left >= maxline) {
				*why = "reply line too long";
				return -1;
			}
			return 0;
		}
		ll = (size_t)(lf - p) + 1;
		if (++lines > maxlines) {
			*why = "too many reply lines";
			return -1;
		}
		if (ll < 4 || (ll == 4 && p[2] == '\r') ||
		    !isdigit((unsigned char)p[0]) ||
		    !isdigit((unsigned char)p[1]) ||
		    !isdigit((unsigned char)p[2]) || p[0] < '2' || p[0] > '5' ||
		    (p[3] != ' ' && p[3] != '-' && p[3] != '\r' && p[3] != '\n')) {
			*why = "malformed reply line";
			return -1;
		}
		if (memchr(p, '\0', ll) != NULL ||
		    ((q = memchr(p, '\r', ll)) != NULL && q != p + ll - 2)) {
			*why = "bare CR or NUL in a reply line";
			return -1;
		}
		c = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (first == -1)
			first = c;
		else if (c != first) {
			*why = "reply code changes inside a multi-line reply";
			return -1;
		}
		more = p[3] == '-';
		left -= ll;
		p += ll;
		if (!more) {
			*consumed = len - left;
			*code = c;
			return 1;
		}
	}
}

/* Next line of a reply already validated by smtp_reply_scan. */
static size_t
reply_next_line(const char *p, size_t left, size_t *textlen)
{
	const char	*lf = memchr(p, '\n', left);
	size_t		 ll = (size_t)(lf - p) + 1;

	*textlen = ll - 1 - (ll >= 2 && p[ll - 2] == '\r');
	return ll;
}

/* Copy a validated reply, every line re-terminated with CRLF. */
int
smtp_reply_copy(struct buf *out, const char *r, size_t len)
{
	size_t	ll, tl;

	while (len > 0) {
		ll = reply_next_line(r, len, &tl);
		if (buf_append(out, r, tl) == -1 ||
		    buf_append(out, "\r\n", 2) == -1)
			return -1;
		r += ll;
		len -= ll;
	}
	return 0;
}

/* Does the EHLO line's keyword (after blanks a lenient client skips) match? */
static int
ehlo_keyword_is(const char *text, size_t tl, const char *kw)
{
	size_t	kl = strlen(kw), o = 4;

	while (o < tl && smtp_blank(text[o]))
		o++;
	return tl >= o + kl && strncasecmp(text + o, kw, kl) == 0 &&
	    (tl == o + kl || smtp_blank(text[o + kl]) || text[o + kl] == '=');
}

/* SIZE's number, read within the line only; 0 when absent or unusable. */
static unsigned long long
ehlo_size_value(const char *text, size_t tl)
{
	unsigned long long	v = 0;
	size_t			o = 4;

	while (o < tl && smtp_blank(text[o]))
		o++;
	o += 4;				/* "SIZE" */
	while (o < tl && (smtp_blank(text[o]) || text[o] == '='))
		o++;
	for (; o < tl && text[o] >= '0' && text[o] <= '9'; o++) {
		if (v > (~0ULL - 9) / 10)
			return 0;	/* absurd: treat as no limit */
		v = v * 10 + (unsigned)(text[o] - '0');
	}
	return v;
}

/* What the table says of one EHLO line; unknown keywords are hidden. */
static enum smtp_ext
ehlo_line_ext(const char *text, size_t tl)
{
	size_t	j;

	for (j = 0; j < sizeof(smtp_ehlo_table) / sizeof(smtp_ehlo_table[0]);
	    j++)
		if (ehlo_keyword_is(text, tl, smtp_ehlo_table[j].kw))
			return smtp_ehlo_table[j].act;
	return EXT_HIDE;
}

enum smtp_ext
smtp_ehlo_keyword(const char *kw)
{
	char	line[128];
	int	n;

	n = snprintf(line, sizeof(line), "250 %s", kw);
	if (n < 0 || (size_t)n >= sizeof(line))
		return EXT_HIDE;
	return ehlo_line_ext(line, (size_t)n);
}

/*
 * Copy a validated EHLO reply with only the keywords smtp_ehlo_table lets
 * through, SIZE capped at our own limit, and the continuation marks
 * rebuilt so the last kept line is the final one. The first line (the
 * greeting) is always kept.
 */
int
smtp_ehlo_filter(struct buf *out, const char *r, size_t len,
    size_t size_limit, struct smtp_ehlo *e)
{
	return smtp_ehlo_filter_tls(out, r, len, size_limit, 0, e);
}

/* The same, also hiding STARTTLS (tls_policy strip). */
int
smtp_ehlo_filter_tls(struct buf *out, const char *r, size_t len,
    size_t size_limit, int hide_starttls, struct smtp_ehlo *e)
{
	const char	*lines[128], *p;
	size_t		 lens[128], n = 0, i, ll, tl, left;
	int		 keep;
	char		 sz[64];
	unsigned long long v;

	memset(e, 0, sizeof(*e));
	for (p = r, left = len; left > 0; p += ll, left -= ll) {
		ll = reply_next_line(p, left, &tl);
		keep = 1;
		if (n > 0 || e->hidden > 0) {
			switch (ehlo_line_ext(p, tl)) {
			case EXT_HIDE:
				keep = 0;
				break;
			case EXT_STARTTLS:
				e->starttls = 1;
				keep = !hide_starttls;
				break;
			case EXT_PASS:
			case EXT_SIZE:
				break;
			}
			if (ehlo_keyword_is(p, tl, "PIPELINING"))
				e->pipelining = 1;
			if (ehlo_keyword_is(p, tl, "PIPECONNECT"))
				e->pipeconnect = 1;
		}
		if (!keep) {
			e->hidden++;
			continue;
		}
		if (n == sizeof(lines) / sizeof(lines[0]))
			return -1;
		lines[n] = p;
		lens[n++] = tl;
	}
	for (i = 0; i < n; i++) {
		if (buf_append(out, lines[i], 3) == -1 ||
		    buf_append(out, i + 1 < n ? "-" : " ", 1) == -1)
			return -1;
		if (i > 0 && ehlo_line_ext(lines[i], lens[i]) == EXT_SIZE) {
			v = ehlo_size_value(lines[i], lens[i]);
			e->size = (size_t)v;
			if (v == 0 || v > size_limit)
				v = size_limit;
			snprintf(sz, sizeof(sz), "SIZE %llu\r\n", v);
			if (buf_append(out, sz, strlen(sz)) == -1)
				return -1;
			continue;
		}
		if (lens[i] > 4 &&
		    buf_append(out, lines[i] + 4, lens[i] - 4) == -1)
			return -1;
		if (buf_append(out, "\r\n", 2) == -1)
			return -1;
	}
	return 0;
}

/* Does the parameter token [p, p+n) name key, with value val (NULL: any)? */
static int
mail_param_is(const char *p, size_t n, const char *key, const char *val)
{
	size_t	kl = strlen(key);

	if (n < kl || strncasecmp(p, key, kl) != 0)
		return 0;
	if (val == NULL)
		return n == kl || p[kl] == '=';
	return n == kl + 1 + strlen(val) && p[kl] == '=' &&
	    strncasecmp(p + kl + 1, val, strlen(val)) == 0;
}

/*
 * The MAIL parameter of an extension smtp_ehlo_table hides, or NULL. A
 * client uses one only when told of the extension; one that does anyway
 * gets 555 instead of a transaction the relay could not follow (PRDR's
 * per-recipient replies after the data, a binary body).
 */
const char *
smtp_mail_param_refused(const char *args, size_t len)
{
	const char	*p = args, *end = args + len, *t;
	int		 quoted = 0;

	if (len >= 5 && strncasecmp(p, "FROM:", 5) == 0)
		p += 5;
	while (p < end && smtp_blank(*p))
		p++;
	if (p < end && *p == '<') {
		/* The path ends at its '>', not at one inside quotes. */
		for (p++; p < end; p++) {
			if (*p == '\\' && quoted && p + 1 < end)
				p++;
			else if (*p == '"')
				quoted = !quoted;
			else if (*p == '>' && !quoted)
				break;
		}
		if (p < end)
			p++;
	} else
		while (p < end && !smtp_blank(*p))
			p++;
	while (p < end) {
		while (p < end && smtp_blank(*p))
			p++;
		for (t = p; t < end && !smtp_blank(*t); t++)
			;
		if (mail_param_is(p, (size_t)(t - p), "PRDR", NULL))
			return "PRDR";
		if (mail_param_is(p, (size_t)(t - p), "BODY", "BINARYMIME"))
			return "BODY=BINARYMIME";
		p = t;
	}
	return NULL;
}
