/* SPDX-License-Identifier: MIT */
/*
 * The DATA framer and the dot-stuffer against arbitrary client bytes. The
 * input is what a client sends after 354, nothing else: every execution
 * frames it in both bare_newline modes, once as one block and once in
 * chunks (sizes and output room derived from the input), and checks what
 * matters for smuggling:
 *  - the end is found exactly at the first CRLF "." CRLF (or ".\r\n" at the
 *    very start), never elsewhere, and never missed;
 *  - chunking changes nothing (a split packet is not a different message);
 *  - the content has canonical CRLF only, loses nothing but the stuffing
 *    dots and the line ends, and has one line end per input line end;
 *  - reject mode flags exactly the bare CR/LF the input had;
 *  - stuffing the content and framing it again gives the same content back
 *    with the end exactly at the end, and what goes upstream has no other
 *    CRLF.CRLF and no bare CR or LF;
 *  - the limits: TOO_BIG exactly when the content exceeds max_size (and the
 *    content is then a prefix), LONG_LINE exactly when a line exceeds
 *    max_line.
 * Output windows sit at the end of a heap block so that a write past the
 * room given lands in AddressSanitizer's redzone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"
#include "fuzz.h"

#define NO_LIMIT	((size_t)1 << 40)
#define WIN		64

struct frame_result {
	char	*out;
	size_t	 outlen;
	size_t	 consumed;
	int	 end;
	int	 errors;
};

static char	*win;

static char *
window(size_t room)
{
	if (win == NULL && (win = malloc(WIN)) == NULL)
		abort();
	return win + WIN - room;
}

/* Frame in one block (seed 0) or in chunks drawn from seed. */
static void
frame(const char *in, size_t len, int normalize, size_t max_line,
    size_t max_size, uint64_t seed, struct frame_result *r)
{
	struct data_framer	 df;
	size_t			 pos = 0, chunk, room, used, olen;
	int			 end = 0, end2;
	char			*o;

	if ((r->out = malloc(3 * len + 8)) == NULL)
		abort();
	r->outlen = 0;
	data_framer_init(&df, normalize, max_line, max_size);
	while (pos < len && !end) {
		if (seed == 0) {
			chunk = len - pos;
			room = 3 * chunk + 4;
			o = r->out + r->outlen;
		} else {
			chunk = fuzz_rand(&seed) % 4 == 0 ?
			    1 + fuzz_rand(&seed) % 600 : 1 + fuzz_rand(&seed) % 16;
			if (chunk > len - pos)
				chunk = len - pos;
			room = 4 + fuzz_rand(&seed) % (WIN - 3);
			o = window(room);
		}
		used = data_framer_feed(&df, in + pos, chunk, o, room, &olen,
		    &end);
		FUZZ_CHECK(used <= chunk, "consumed %zu of %zu", used, chunk);
		FUZZ_CHECK(olen <= room, "wrote %zu into %zu", olen, room);
		FUZZ_CHECK(used > 0 || end, "no progress with %zu bytes of "
		    "room", room);
		if (o != r->out + r->outlen)
			memcpy(r->out + r->outlen, o, olen);
		r->outlen += olen;
		pos += used;
	}
	if (end) {
		/* Past the end the framer takes nothing: the rest is commands. */
		used = data_framer_feed(&df, "x", 1, window(4), 4, &olen, &end2);
		FUZZ_CHECK(used == 0 && olen == 0 && end2 == 1,
		    "framer took bytes after the end");
	}
	r->consumed = pos;
	r->end = end;
	r->errors = df.errors;
}

static void
same(const struct frame_result *a, const struct frame_result *b,
    const char *what)
{
	if (a->end != b->end || a->consumed != b->consumed ||
	    a->errors != b->errors || a->outlen != b->outlen ||
	    memcmp(a->out, b->out, a->outlen) != 0) {
		fuzz_dump("one block", a->out, a->outlen);
		fuzz_dump("chunked", b->out, b->outlen);
		FUZZ_CHECK(0, "%s: chunking changed the result (end %d/%d "
		    "consumed %zu/%zu errors %#x/%#x)", what, a->end, b->end,
		    a->consumed, b->consumed, a->errors, b->errors);
	}
}

/* Where the one true end is: bytes consumed through it, 0 if none. */
static size_t
true_end(const char *in, size_t len)
{
	const char	*p;

	if (len >= 3 && memcmp(in, ".\r\n", 3) == 0)
		return 3;
	p = memmem(in, len, "\r\n.\r\n", 5);
	return p ? (size_t)(p - in) + 5 : 0;
}

/* Oracles for an unlimited run, from the input alone. */
static void
check_unlimited(const char *in, size_t len, int normalize,
    const struct frame_result *r)
{
	size_t	te = true_end(in, len), body, i, where, lfs = 0, outlfs = 0;
	size_t	a = 0, b = 0;
	int	bare_lf = 0, bare_cr = 0;

	if (te) {
		FUZZ_CHECK(r->end, "missed the end at %zu", te);
		FUZZ_CHECK(r->consumed == te, "ended after %zu bytes, the true "
		    "end is after %zu", r->consumed, te);
	} else {
		FUZZ_CHECK(!r->end, "ended after %zu bytes with no CRLF.CRLF "
		    "in the input", r->consumed);
		FUZZ_CHECK(r->consumed == len, "consumed %zu of %zu",
		    r->consumed, len);
	}
	if (r->end) {
		FUZZ_CHECK((r->consumed == 3 && memcmp(in, ".\r\n", 3) == 0) ||
		    (r->consumed >= 5 &&
		    memcmp(in + r->consumed - 5, "\r\n.\r\n", 5) == 0),
		    "the consumed input does not end with CRLF.CRLF");
	}
	FUZZ_CHECK((r->errors & (DATA_ERR_LONG_LINE | DATA_ERR_TOO_BIG)) == 0,
	    "limit error %#x without limits", r->errors);

	if (!fuzz_crlf_only(r->out, r->outlen, &where)) {
		fuzz_dump("content", r->out, r->outlen);
		FUZZ_CHECK(0, "bare CR or LF in the content at %zu", where);
	}

	/* The message proper: without the ".\r\n" of the terminator. */
	body = r->end ? r->consumed - 3 : r->consumed;
	for (i = 0; i < body; i++) {
		if (in[i] == '\n') {
			lfs++;
			if (i == 0 || in[i - 1] != '\r')
				bare_lf = 1;
		} else if (in[i] == '\r' && i + 1 < body && in[i + 1] != '\n') {
			lfs++;
			bare_cr = 1;
		}
	}
	for (i = 0; i < r->outlen; i++)
		outlfs += r->out[i] == '\n';
	FUZZ_CHECK(outlfs == lfs, "%zu line ends in the content, %zu in the "
	    "input", outlfs, lfs);
	if (normalize)
		FUZZ_CHECK((r->errors & (DATA_ERR_BARE_LF | DATA_ERR_BARE_CR))
		    == 0, "normalize mode flagged %#x", r->errors);
	else {
		FUZZ_CHECK(!!(r->errors & DATA_ERR_BARE_LF) == bare_lf,
		    "bare LF flag %d, input has one: %d",
		    !!(r->errors & DATA_ERR_BARE_LF), bare_lf);
		FUZZ_CHECK(!!(r->errors & DATA_ERR_BARE_CR) == bare_cr,
		    "bare CR flag %d, input has one: %d",
		    !!(r->errors & DATA_ERR_BARE_CR), bare_cr);
	}

	/*
	 * Same bytes apart from line ends and the stuffing dots (a dot at the
	 * start or right after a real CRLF): nothing lost, nothing added.
	 */
	for (;;) {
		while (a < body && (in[a] == '\r' || in[a] == '\n' ||
		    (in[a] == '.' && (a == 0 || (a >= 2 && in[a - 2] == '\r' &&
		    in[a - 1] == '\n')))))
			a++;
		while (b < r->outlen && (r->out[b] == '\r' ||
		    r->out[b] == '\n'))
			b++;
		if (a == body || b == r->outlen)
			break;
		FUZZ_CHECK(in[a] == r->out[b], "content byte %zu differs from "
		    "input byte %zu", b, a);
		a++;
		b++;
	}
	FUZZ_CHECK(a == body && b == r->outlen, "content and input differ in "
	    "length (input %zu/%zu, content %zu/%zu)", a, body, b, r->outlen);
}

/* What goes upstream, framed again, must give the same content back. */
static void
roundtrip(const char *content, size_t clen, uint64_t seed)
{
	struct data_stuffer	 ds;
	struct frame_result	 r;
	char			*s, *o, *first;
	size_t			 slen = 0, pos = 0, chunk, room, used, olen;
	size_t			 where, want;

	if ((s = malloc(2 * clen + 8)) == NULL)
		abort();
	data_stuffer_init(&ds);
	while (pos < clen) {
		chunk = 1 + fuzz_rand(&seed) % 48;
		if (chunk > clen - pos)
			chunk = clen - pos;
		room = 2 + fuzz_rand(&seed) % (WIN - 1);
		o = window(room);
		used = data_stuffer_feed(&ds, content + pos, chunk, o, room,
		    &olen);
		FUZZ_CHECK(used <= chunk && olen <= room && used > 0,
		    "stuffer took %zu of %zu, wrote %zu into %zu", used, chunk,
		    olen, room);
		memcpy(s + slen, o, olen);
		slen += olen;
		pos += used;
	}
	olen = data_stuffer_end(&ds, window(5), 5);
	FUZZ_CHECK(olen == 3 || olen == 5, "terminator of %zu bytes", olen);
	memcpy(s + slen, window(5), olen);
	slen += olen;

	if (!fuzz_crlf_only(s, slen, &where)) {
		fuzz_dump("upstream", s, slen);
		FUZZ_CHECK(0, "bare CR or LF going upstream at %zu", where);
	}
	first = memmem(s, slen, "\r\n.\r\n", 5);
	if (clen == 0)
		FUZZ_CHECK(slen == 3 && memcmp(s, ".\r\n", 3) == 0,
		    "empty content is not sent as a lone terminator");
	else
		FUZZ_CHECK(first != NULL && (size_t)(first - s) == slen - 5 &&
		    memcmp(s, ".\r\n", 3) != 0,
		    "upstream stream has an end before its last byte");

	frame(s, slen, 0, 0, NO_LIMIT, seed, &r);
	want = clen + (clen > 0 && content[clen - 1] != '\n' ? 2 : 0);
	/* NUL is refused by the relay, not changed: it may come back. */
	if (!r.end || r.consumed != slen || (r.errors & ~DATA_ERR_NUL) != 0 ||
	    r.outlen != want || memcmp(r.out, content, clen) != 0 ||
	    (want > clen && memcmp(r.out + clen, "\r\n", 2) != 0)) {
		fuzz_dump("content", content, clen);
		fuzz_dump("upstream", s, slen);
		fuzz_dump("framed again", r.out, r.outlen);
		FUZZ_CHECK(0, "round trip: end %d consumed %zu/%zu errors %#x",
		    r.end, r.consumed, slen, r.errors);
	}
	free(r.out);
	free(s);
}

/* A limited run against the unlimited one in the same mode. */
static void
check_limited(const struct frame_result *u, const struct frame_result *l,
    size_t max_line, size_t max_size)
{
	size_t	i, ll = 0, keep;
	int	long_line = 0;

	FUZZ_CHECK(l->end == u->end && l->consumed == u->consumed,
	    "limits moved the end: %d/%zu vs %d/%zu", l->end, l->consumed,
	    u->end, u->consumed);
	FUZZ_CHECK((l->errors & (DATA_ERR_BARE_LF | DATA_ERR_BARE_CR |
	    DATA_ERR_NUL)) == u->errors, "limits changed the bare/NUL flags: "
	    "%#x vs %#x",
	    l->errors, u->errors);
	FUZZ_CHECK(!!(l->errors & DATA_ERR_TOO_BIG) == (u->outlen > max_size),
	    "TOO_BIG %d with %zu content bytes and a limit of %zu",
	    !!(l->errors & DATA_ERR_TOO_BIG), u->outlen, max_size);
	keep = u->outlen < max_size ? u->outlen : max_size;
	FUZZ_CHECK(l->outlen == keep && memcmp(l->out, u->out, keep) == 0,
	    "limited content is not the first %zu bytes (got %zu)", keep,
	    l->outlen);
	for (i = 0; i < u->outlen; i++) {
		if (u->out[i] == '\n')
			ll = 0;
		else if (u->out[i] != '\r' && ++ll > max_line)
			long_line = 1;
	}
	FUZZ_CHECK(!!(l->errors & DATA_ERR_LONG_LINE) == long_line,
	    "LONG_LINE %d, a line over %zu: %d",
	    !!(l->errors & DATA_ERR_LONG_LINE), max_line, long_line);
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char		*in = (const char *)data;
	struct frame_result	 u[2], c, l;
	uint64_t		 h = fuzz_hash(data, size), seed = h;
	size_t			 max_line, max_size;
	int			 normalize;

	for (normalize = 0; normalize < 2; normalize++) {
		frame(in, size, normalize, 0, NO_LIMIT, 0, &u[normalize]);
		frame(in, size, normalize, 0, NO_LIMIT, seed, &c);
		same(&u[normalize], &c, normalize ? "normalize" : "reject");
		free(c.out);
		check_unlimited(in, size, normalize, &u[normalize]);
		roundtrip(u[normalize].out, u[normalize].outlen, seed);
		fuzz_rand(&seed);
	}

	normalize = (int)(h & 1);
	max_line = 1 + (h >> 8) % 80;
	max_size = (h >> 16) % (size + 16);
	frame(in, size, normalize, max_line, max_size, 0, &l);
	frame(in, size, normalize, max_line, max_size, seed, &c);
	same(&l, &c, "limits");
	check_limited(&u[normalize], &l, max_line, max_size);
	free(c.out);
	free(l.out);
	free(u[0].out);
	free(u[1].out);
	return 0;
}
