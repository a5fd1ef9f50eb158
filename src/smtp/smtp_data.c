/* SPDX-License-Identifier: MIT */
/*
 * Message framing in both directions. In: only CRLF.CRLF ends a message
 * (RFC 5321 4.1.1.4); a line start counts only after a real CRLF, so the
 * smuggling sequences <LF>.<CR><LF>, <CR>.<CR> and friends never end it.
 * Bare CR or LF are either recorded as errors (the message is refused when
 * its end arrives) or turned into CRLF. Out: the stored content is always
 * CRLF-canonical and is dot-stuffed, so what reaches the server is never
 * ambiguous. No I/O here.
 */
#include <string.h>

#include "smtp_data.h"

enum {
	DF_SOL,		/* after a real CRLF (or at the start) */
	DF_SOL_SOFT,	/* after a normalized bare CR/LF: a '.' is content */
	DF_TEXT,
	DF_CR,		/* seen CR inside text */
	DF_DOT,		/* seen '.' at a real line start */
	DF_DOT_CR,	/* seen ".<CR>" at a real line start */
	DF_END,
};

void
data_framer_init(struct data_framer *df, int normalize, size_t max_line,
    size_t max_size)
{
	df->state = DF_SOL;
	df->errors = 0;
	df->normalize = normalize;
	df->linelen = 0;
	df->max_line = max_line;
	df->max_size = max_size;
	df->size = 0;
	df->max_header = 0;
	df->in_header = 1;
}

/* Refuse a header block (up to the first empty line) larger than n. */
void
data_framer_header_limit(struct data_framer *df, size_t n)
{
	df->max_header = n;
}

static void
df_emit(struct data_framer *df, char c, char *out, size_t *o)
{
	if (df->in_header) {
		if (c == '\n' && df->linelen == 0)
			df->in_header = 0;	/* the empty line */
		else if (df->max_header && df->size >= df->max_header)
			df->errors |= DATA_ERR_HEADER_BIG;
	}
	/* A NUL is no text (RFC 5322) and some servers drop it, which would
	 * turn CRLF NUL "." CRLF into an end of data there. */
	if (c == '\0')
		df->errors |= DATA_ERR_NUL;
	/* The line length is kept even with no limit on it: the header
	 * block ends at the first line of length 0. */
	if (c == '\n') {
		df->linelen = 0;
	} else if (c != '\r' && ++df->linelen > df->max_line &&
	    df->max_line) {
		df->errors |= DATA_ERR_LONG_LINE;
	}
	if (df->size >= df->max_size) {
		df->errors |= DATA_ERR_TOO_BIG;
		return;
	}
	if (df->errors & DATA_ERR_TOO_BIG)
		return;
	out[(*o)++] = c;
	df->size++;
}

/* A line ended by something other than CRLF. */
static void
df_bare(struct data_framer *df, int err, char *out, size_t *o)
{
	if (!df->normalize)
		df->errors |= err;
	df_emit(df, '\r', out, o);
	df_emit(df, '\n', out, o);
	df->state = DF_SOL_SOFT;
}

/*
 * The length of the run of text at p (at least 1, at most lim): up to
 * the first CR, LF or NUL. Lines end in CR, so one memchr finds the
 * likely end; the other two only look at what comes before it.
 */
static size_t
text_run(const char *p, size_t lim)
{
	const char	*e;
	size_t		 n;

	n = (e = memchr(p, '\r', lim)) != NULL ? (size_t)(e - p) : lim;
	if ((e = memchr(p, '\n', n)) != NULL)
		n = (size_t)(e - p);
	if ((e = memchr(p, '\0', n)) != NULL)
		n = (size_t)(e - p);
	return n > 0 ? n : 1;
}

/*
 * Consume input until the end of the message or until out might overflow
 * (every input byte yields at most 3 output bytes). Returns the bytes
 * consumed; *end is set once the terminating line has been consumed.
 */
size_t
data_framer_feed(struct data_framer *df, const char *in, size_t inlen,
    char *out, size_t outcap, size_t *outlen, int *end)
{
	size_t	i = 0, o = 0;
	char	c;

	*end = 0;
	while (i < inlen && df->state != DF_END && outcap - o >= 4) {
		c = in[i++];
		switch (df->state) {
		case DF_SOL:
			if (c == '.') {
				df->state = DF_DOT;
				break;
			}
			/* FALLTHROUGH */
		case DF_SOL_SOFT:
		case DF_TEXT:
text:
			/* A run of plain text past the header block: what
			 * df_emit does byte by byte, in one copy. The room is
			 * checked again here: df_bare may just have written
			 * two bytes. */
			if (c != '\r' && c != '\n' && c != '\0' &&
			    !df->in_header && !(df->errors & DATA_ERR_TOO_BIG) &&
			    df->size < df->max_size && outcap - o > 3) {
				const char	*p = in + i - 1;
				size_t		 n = 1, lim = inlen - (i - 1);

				if (lim > outcap - o - 3)
					lim = outcap - o - 3;
				if (lim > df->max_size - df->size)
					lim = df->max_size - df->size;
				n = text_run(p, lim);
				memcpy(out + o, p, n);
				o += n;
				df->size += n;
				if ((df->linelen += n) > df->max_line &&
				    df->max_line)
					df->errors |= DATA_ERR_LONG_LINE;
				i += n - 1;
				df->state = DF_TEXT;
				break;
			}
			if (c == '\r')
				df->state = DF_CR;
			else if (c == '\n')
				df_bare(df, DATA_ERR_BARE_LF, out, &o);
			else {
				df_emit(df, c, out, &o);
				df->state = DF_TEXT;
			}
			break;
		case DF_CR:
			if (c == '\n') {
				df_emit(df, '\r', out, &o);
				df_emit(df, '\n', out, &o);
				df->state = DF_SOL;
				break;
			}
			df_bare(df, DATA_ERR_BARE_CR, out, &o);
			goto text;
		case DF_DOT:
			if (c == '\r') {
				df->state = DF_DOT_CR;
				break;
			}
			/* A stuffed dot: drop it, the rest is text. */
			df->state = DF_TEXT;
			goto text;
		case DF_DOT_CR:
			if (c == '\n') {
				df->state = DF_END;
				break;
			}
			/* ".<CR>x": the dot was a stuffing dot, the CR bare. */
			df_bare(df, DATA_ERR_BARE_CR, out, &o);
			goto text;
		}
	}
	*outlen = o;
	*end = df->state == DF_END;
	return i;
}

void
data_stuffer_init(struct data_stuffer *ds)
{
	ds->sol = 1;
	ds->done = 0;
}

/* Input is CRLF-canonical content; output may be up to twice as long. */
size_t
data_stuffer_feed(struct data_stuffer *ds, const char *in, size_t inlen,
    char *out, size_t outcap, size_t *outlen)
{
	size_t	i = 0, o = 0, run;
	const char *lf;

	while (i < inlen && o < outcap) {
		if (ds->sol && in[i] == '.') {
			if (outcap - o < 2)
				break;
			out[o++] = '.';
		}
		/* Copy up to and including the next LF in one go. */
		lf = memchr(in + i, '\n', inlen - i);
		run = lf ? (size_t)(lf - (in + i)) + 1 : inlen - i;
		if (run > outcap - o)
			run = outcap - o;
		memcpy(out + o, in + i, run);
		o += run;
		i += run;
		ds->sol = out[o - 1] == '\n';
	}
	*outlen = o;
	return i;
}

/* The terminator; outcap must be at least 5. Returns bytes written. */
size_t
data_stuffer_end(struct data_stuffer *ds, char *out, size_t outcap)
{
	size_t	o = 0;

	(void)outcap;
	if (!ds->sol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	ds->done = 1;
	return o + 3;
}
