/* SPDX-License-Identifier: MIT */
/*
 * The DATA framer and the dot-stuffer: every end-of-data lookalike used in
 * SMTP smuggling must stay content; only CRLF.CRLF ends a message; byte by
 * byte feeding gives the same result as one block.
 */
#include <string.h>

#include "smtp_data.h"
#include "unit.h"

struct frame_case {
	const char	*name;
	const char	*in;
	int		 normalize;
	size_t		 max_line;
	size_t		 max_size;
	int		 end;
	size_t		 consumed;	/* when end */
	const char	*out;
	int		 errors;
};

static const struct frame_case frame_cases[] = {
	{ "plain", "a\r\n.\r\n", 0, 0, 1000, 1, 6, "a\r\n", 0 },
	{ "pipelined after end", "a\r\n.\r\nMAIL FROM:<x>\r\n", 0, 0, 1000,
	    1, 6, "a\r\n", 0 },
	{ "empty", ".\r\n", 0, 0, 1000, 1, 3, "", 0 },
	{ "empty line", "\r\n.\r\n", 0, 0, 1000, 1, 5, "\r\n", 0 },
	{ "unstuff", "a\r\n..\r\n..b\r\n.\r\n", 0, 0, 1000, 1, 15,
	    "a\r\n.\r\n.b\r\n", 0 },
	{ "unstuff first line", "..x\r\n.\r\n", 0, 0, 1000, 1, 8, ".x\r\n",
	    0 },
	{ "no end yet", "a\r\nb", 0, 0, 1000, 0, 0, "a\r\nb", 0 },
	{ "dot not at line start", "a.\r\n", 0, 0, 1000, 0, 0, "a.\r\n", 0 },
	/* Smuggling: none of these ends the message. */
	{ "LF.CRLF reject", "a\n.\r\nMAIL", 0, 0, 1000, 0, 0,
	    "a\r\n.\r\nMAIL", DATA_ERR_BARE_LF },
	{ "LF.CRLF normalize", "a\n.\r\nMAIL", 1, 0, 1000, 0, 0,
	    "a\r\n.\r\nMAIL", 0 },
	{ "LF.LF", "a\n.\nMAIL", 0, 0, 1000, 0, 0, "a\r\n.\r\nMAIL",
	    DATA_ERR_BARE_LF },
	{ "CRLF.LF", "a\r\n.\nb", 0, 0, 1000, 0, 0, "a\r\n\r\nb",
	    DATA_ERR_BARE_LF },
	{ "CR.CR", "a\r.\rb", 0, 0, 1000, 0, 0, "a\r\n.\r\nb",
	    DATA_ERR_BARE_CR },
	{ "CRLF.CR", "a\r\n.\rMAIL", 0, 0, 1000, 0, 0, "a\r\n\r\nMAIL",
	    DATA_ERR_BARE_CR },
	{ "CRLF.CR.CRLF", "a\r\n.\r.\r\nb", 0, 0, 1000, 0, 0,
	    "a\r\n\r\n.\r\nb", DATA_ERR_BARE_CR },
	{ "CR CRLF then end", "a\r\r\n.\r\n", 0, 0, 1000, 1, 7, "a\r\n\r\n",
	    DATA_ERR_BARE_CR },
	{ "bare LF normalized then end", "a\nb\r\n.\r\n", 1, 0, 1000, 1, 8,
	    "a\r\nb\r\n", 0 },
	/* Limits. */
	{ "long line", "0123456789A\r\n.\r\n", 0, 10, 1000, 1, 16,
	    "0123456789A\r\n", DATA_ERR_LONG_LINE },
	{ "line at limit", "0123456789\r\n.\r\n", 0, 10, 1000, 1, 15,
	    "0123456789\r\n", 0 },
	{ "too big", "0123456789\r\n.\r\n", 0, 0, 5, 1, 15, "01234",
	    DATA_ERR_TOO_BIG },
	{ "8bit and NUL kept", "\xc3\xa9\0x\r\n.\r\n", 0, 0, 1000, 1, 9,
	    "\xc3\xa9\0x\r\n", DATA_ERR_NUL },
};

static size_t
case_len(const char *s, const struct frame_case *c)
{
	/* One case carries a NUL: its length is written out. */
	if (strcmp(c->name, "8bit and NUL kept") == 0)
		return s == c->in ? 9 : 6;
	return strlen(s);
}

static void
run_case(const struct frame_case *c, int bytewise)
{
	struct data_framer	df;
	char			out[4096], tmp[64];
	size_t			inlen = case_len(c->in, c), i = 0, olen = 0;
	size_t			n, o, used, step;
	int			end = 0;

	data_framer_init(&df, c->normalize, c->max_line, c->max_size);
	while (i < inlen && !end) {
		step = bytewise ? 1 : inlen - i;
		used = data_framer_feed(&df, c->in + i, step, tmp, sizeof(tmp),
		    &o, &end);
		memcpy(out + olen, tmp, o);
		olen += o;
		i += used;
		if (used == 0 && !end)
			break;
	}
	n = case_len(c->out, c);
	CHECK(end == c->end, "%s%s: end %d", c->name, bytewise ? " (bytes)" :
	    "", end);
	if (c->end)
		CHECK(i == c->consumed, "%s: consumed %zu want %zu", c->name,
		    i, c->consumed);
	CHECK(olen == n && memcmp(out, c->out, n) == 0, "%s%s: out [%.*s]",
	    c->name, bytewise ? " (bytes)" : "", (int)olen, out);
	CHECK(df.errors == c->errors, "%s: errors %#x want %#x", c->name,
	    df.errors, c->errors);
}

static void
stuff(const char *in, size_t inlen, char *out, size_t *outlen, size_t chunk)
{
	struct data_stuffer	ds;
	size_t			i = 0, o = 0, got, used;

	data_stuffer_init(&ds);
	while (i < inlen) {
		used = data_stuffer_feed(&ds, in + i, inlen - i < chunk ?
		    inlen - i : chunk, out + o, 2 * chunk, &got);
		i += used;
		o += got;
	}
	o += data_stuffer_end(&ds, out + o, 5);
	*outlen = o;
}

static void
test_stuffer(void)
{
	static const struct {
		const char	*in;
		const char	*want;
	} t[] = {
		{ "", ".\r\n" },
		{ "a\r\n", "a\r\n.\r\n" },
		{ ".\r\n", "..\r\n.\r\n" },
		{ "a\r\n.b\r\n..\r\n", "a\r\n..b\r\n...\r\n.\r\n" },
		{ "a.b\r\n", "a.b\r\n.\r\n" },
		{ "no newline at end", "no newline at end\r\n.\r\n" },
	};
	char	out[256];
	size_t	i, n, chunk;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		for (chunk = 1; chunk <= 64; chunk *= 4) {
			stuff(t[i].in, strlen(t[i].in), out, &n, chunk);
			CHECK(n == strlen(t[i].want) &&
			    memcmp(out, t[i].want, n) == 0,
			    "stuff %zu chunk %zu: [%.*s]", i, chunk, (int)n,
			    out);
		}
}

/* Whatever the framer accepts, stuffing it and framing again is identity. */
static void
test_roundtrip(void)
{
	static const char *const msgs[] = {
		"Subject: x\r\n\r\n.\r\n..\r\n.x\r\nend\r\n",
		".\r\n.\r\n.\r\n",
		"\r\n\r\n",
	};
	struct data_framer	df;
	char			wire[512], back[1024];
	size_t			i, n, o, used;
	int			end;

	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		stuff(msgs[i], strlen(msgs[i]), wire, &n, 7);
		data_framer_init(&df, 0, 0, 1000);
		used = data_framer_feed(&df, wire, n, back, sizeof(back), &o,
		    &end);
		CHECK(end && used == n && o == strlen(msgs[i]) &&
		    memcmp(back, msgs[i], o) == 0, "roundtrip %zu", i);
	}
}

/* The header block limit holds whatever max_text_line is (0: none). */
static void
test_header_limit(void)
{
	static const char	msg[] = "Subject: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
	    "X-A: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n\r\nbody\r\n.\r\n";
	static const size_t	lines[] = { 0, 998 };
	struct data_framer	df;
	char			out[512];
	size_t			o, i;
	int			end;

	for (i = 0; i < 2; i++) {
		data_framer_init(&df, 0, lines[i], 1000000);
		data_framer_header_limit(&df, 50);
		(void)data_framer_feed(&df, msg, sizeof(msg) - 1, out,
		    sizeof(out), &o, &end);
		CHECK(end && (df.errors & DATA_ERR_HEADER_BIG),
		    "max_line %zu: header of 79 bytes over a limit of 50 "
		    "passed (errors %#x)", lines[i], (unsigned)df.errors);
		data_framer_init(&df, 0, lines[i], 1000000);
		data_framer_header_limit(&df, 100);
		(void)data_framer_feed(&df, msg, sizeof(msg) - 1, out,
		    sizeof(out), &o, &end);
		CHECK(end && df.errors == 0, "max_line %zu: errors %#x",
		    lines[i], (unsigned)df.errors);
	}
}

void
test_smtp_data(void)
{
	size_t	i;

	for (i = 0; i < sizeof(frame_cases) / sizeof(frame_cases[0]); i++) {
		run_case(&frame_cases[i], 0);
		run_case(&frame_cases[i], 1);
	}
	test_stuffer();
	test_roundtrip();
	test_header_limit();
}
