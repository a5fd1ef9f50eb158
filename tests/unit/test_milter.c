/* SPDX-License-Identifier: MIT */
/*
 * The milter codec: every encoder against bytes written out by hand from
 * mfdef.h and libmilter's readers (not from the encoders), the reader
 * over every split of a stream of packets and at its limits, every reply
 * with good, truncated, overlong and hostile data, the negotiation
 * (refusals, old versions, macro lists) and what it implies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "milter.h"
#include "milter_proto.h"
#include "unit.h"

#define LIT(s)		s, sizeof(s) - 1

/* "\x00\x00\x00\x05Oabc" for a failure message; cut at 200 bytes. */
static const char *
hex(const char *p, size_t len)
{
	static char	out[2][640];
	static int	which;
	char		*o = out[which ^= 1];
	size_t		i, n = 0;

	for (i = 0; i < len && i < 200 && n + 5 < sizeof(out[0]); i++) {
		unsigned char	c = (unsigned char)p[i];

		if (c >= 0x21 && c < 0x7f && c != '\\')
			o[n++] = (char)c;
		else
			n += (size_t)snprintf(o + n, sizeof(out[0]) - n,
			    "\\x%02x", c);
	}
	o[n] = '\0';
	return o;
}

static void
expect(const char *what, struct buf *b, const char *want, size_t wantlen)
{
	size_t	got = buf_used(b);

	CHECK(got == wantlen && (wantlen == 0 ||
	    memcmp(buf_head(b), want, wantlen) == 0),
	    "%s:\n  got  %s\n  want %s", what, hex(buf_head(b), got),
	    hex(want, wantlen));
	buf_clear(b);
}

/* ---- encoders ---- */

static void
test_encoders(void)
{
	static const struct milter_macro	conn_macros[] = {
		{ "j", "mx.example" },
		{ "{daemon_name}", "sporkd" },
	};
	static const char *const	margs[] = { "SIZE=1000", "BODY=8BITMIME" };
	struct milter_offer		o;
	struct buf			b;

	buf_init(&b, 1 << 20);

	/* SMFIC_OPTNEG: three big-endian words after 'O'; 13 = 1 + 12. */
	CHECK(milter_put_optneg(&b, 6, 0x1ff, 0x1fffff) == 0, "optneg");
	expect("optneg", &b, LIT("\x00\x00\x00\x0d" "O"
	    "\x00\x00\x00\x06" "\x00\x00\x01\xff" "\x00\x1f\xff\xff"));
	milter_offer_default(&o);
	CHECK(milter_put_offer(&b, &o) == 0, "offer");
	expect("default offer", &b, LIT("\x00\x00\x00\x0d" "O"
	    "\x00\x00\x00\x06" "\x00\x00\x01\xff" "\x00\x1f\xff\xff"));

	/* SMFIC_MACRO: the command letter, then name\0value\0 pairs. */
	CHECK(milter_put_macros(&b, SMFIC_CONNECT, conn_macros, 2) == 0,
	    "macros");
	expect("macros", &b, LIT("\x00\x00\x00\x24" "D" "C" "j\0"
	    "mx.example\0" "{daemon_name}\0" "sporkd\0"));

	/* SMFIC_CONNECT: host\0, family, port (network order), addr\0. */
	CHECK(milter_put_connect(&b, "mail.example.org", SMFIA_INET, 4242,
	    "192.0.2.1") == 0, "connect v4");
	expect("connect v4", &b, LIT("\x00\x00\x00\x1f" "C"
	    "mail.example.org\0" "4" "\x10\x92" "192.0.2.1\0"));
	CHECK(milter_put_connect(&b, "[2001:db8::1]", SMFIA_INET6, 25,
	    "2001:db8::1") == 0, "connect v6");
	expect("connect v6", &b, LIT("\x00\x00\x00\x1e" "C"
	    "[2001:db8::1]\0" "6" "\x00\x19" "2001:db8::1\0"));
	/* 'U' ends the packet: libmilter reads no port or address. */
	CHECK(milter_put_connect(&b, "localhost", SMFIA_UNKNOWN, 25,
	    "ignored") == 0, "connect unknown");
	expect("connect unknown", &b, LIT("\x00\x00\x00\x0c" "C"
	    "localhost\0" "U"));
	CHECK(milter_put_connect(&b, "localhost", SMFIA_UNIX, 99,
	    "/run/x.sock") == 0, "connect unix");
	expect("connect unix", &b, LIT("\x00\x00\x00\x1a" "C" "localhost\0"
	    "L" "\x00\x00" "/run/x.sock\0"));
	errno = 0;
	CHECK(milter_put_connect(&b, "h", 'X', 25, "a") == -1 &&
	    errno == EINVAL && buf_used(&b) == 0, "connect bad family");
	CHECK(milter_put_connect(&b, "h", SMFIA_INET, 25, NULL) == -1 &&
	    errno == EINVAL && buf_used(&b) == 0, "connect no address");

	CHECK(milter_put_helo(&b, "client.example") == 0, "helo");
	expect("helo", &b, LIT("\x00\x00\x00\x10" "H" "client.example\0"));

	/* MAIL and RCPT: argv, each NUL-terminated. */
	CHECK(milter_put_mail(&b, "<a@example.org>", margs, 2) == 0, "mail");
	expect("mail", &b, LIT("\x00\x00\x00\x29" "M" "<a@example.org>\0"
	    "SIZE=1000\0" "BODY=8BITMIME\0"));
	CHECK(milter_put_mail(&b, "<>", NULL, 0) == 0, "mail null sender");
	expect("mail <>", &b, LIT("\x00\x00\x00\x04" "M" "<>\0"));
	CHECK(milter_put_rcpt(&b, "<b@example.net>", NULL, 0) == 0, "rcpt");
	expect("rcpt", &b, LIT("\x00\x00\x00\x11" "R" "<b@example.net>\0"));

	CHECK(milter_put_data(&b) == 0, "data");
	expect("data", &b, LIT("\x00\x00\x00\x01" "T"));
	CHECK(milter_put_header(&b, "Subject", "hello") == 0, "header");
	expect("header", &b, LIT("\x00\x00\x00\x0f" "L" "Subject\0"
	    "hello\0"));
	CHECK(milter_put_header(&b, "X-Empty", "") == 0, "empty header");
	expect("empty header", &b, LIT("\x00\x00\x00\x0a" "L" "X-Empty\0"
	    "\0"));
	CHECK(milter_put_header(&b, "", "v") == -1 && errno == EINVAL,
	    "header without a name");
	CHECK(milter_put_eoh(&b) == 0, "eoh");
	expect("eoh", &b, LIT("\x00\x00\x00\x01" "N"));
	CHECK(milter_put_body(&b, "abc\r\n", 5) == 0, "body");
	expect("body", &b, LIT("\x00\x00\x00\x06" "B" "abc\r\n"));
	CHECK(milter_put_body(&b, "", 0) == 0, "empty body");
	expect("empty body", &b, "", 0);
	CHECK(milter_put_eob(&b) == 0, "eob");
	expect("eob", &b, LIT("\x00\x00\x00\x01" "E"));
	CHECK(milter_put_abort(&b) == 0, "abort");
	expect("abort", &b, LIT("\x00\x00\x00\x01" "A"));
	CHECK(milter_put_quit(&b) == 0, "quit");
	expect("quit", &b, LIT("\x00\x00\x00\x01" "Q"));
	CHECK(milter_put_quit_nc(&b) == 0, "quit_nc");
	expect("quit_nc", &b, LIT("\x00\x00\x00\x01" "K"));
	CHECK(milter_put_unknown(&b, "VRFY x") == 0, "unknown");
	expect("unknown", &b, LIT("\x00\x00\x00\x08" "U" "VRFY x\0"));

	/* A body of two full chunks and one byte: 65535 is 0xffff, the
	 * length field 0x10000 with the command byte. */
	{
		size_t		 n = 2 * MILTER_CHUNK_SIZE + 1, i;
		char		*body = malloc(n);
		const char	*h;

		for (i = 0; i < n; i++)
			body[i] = (char)('a' + i % 26);
		CHECK(milter_put_body(&b, body, n) == 0, "big body");
		h = buf_head(&b);
		CHECK(buf_used(&b) == n + 3 * 5, "big body: %zu bytes",
		    buf_used(&b));
		CHECK(memcmp(h, "\x00\x01\x00\x00" "B", 5) == 0 &&
		    memcmp(h + 5, body, 65535) == 0, "big body chunk 1");
		CHECK(memcmp(h + 65540, "\x00\x01\x00\x00" "B", 5) == 0 &&
		    memcmp(h + 65545, body + 65535, 65535) == 0,
		    "big body chunk 2");
		CHECK(memcmp(h + 131080, "\x00\x00\x00\x02" "B", 5) == 0 &&
		    h[131085] == body[n - 1], "big body chunk 3");
		buf_clear(&b);
		free(body);
	}

	/* Above libmilter's MILTER_MAX_DATA_SIZE: refused, not sent. */
	{
		char	*v = malloc(MILTER_SEND_MAX + 1);

		memset(v, 'v', MILTER_SEND_MAX);
		v[MILTER_SEND_MAX] = '\0';
		errno = 0;
		CHECK(milter_put_header(&b, "X", v) == -1 &&
		    errno == EMSGSIZE && buf_used(&b) == 0, "header too big");
		v[MILTER_SEND_MAX - 3] = '\0';	/* "X\0" + v + "\0" = 65535 */
		CHECK(milter_put_header(&b, "X", v) == 0 &&
		    buf_used(&b) == 5 + MILTER_SEND_MAX, "header at the limit");
		buf_clear(&b);
		free(v);
	}

	buf_free(&b);

	/* All or nothing when the buffer's maximum is in the way: 9 bytes
	 * used of 64, then packets of 56 and 65 bytes. */
	buf_init(&b, 64);
	CHECK(milter_put_helo(&b, "abc") == 0, "helo into small buffer");
	errno = 0;
	CHECK(milter_put_helo(&b, "a-name-of-fifty-bytes-that-is-too-big-for-"
	    "the-room") == -1 && errno == ENOBUFS && buf_used(&b) == 9,
	    "no room: nothing appended (%zu)", buf_used(&b));
	errno = 0;
	CHECK(milter_put_body(&b, "0123456789012345678901234567890123456789"
	    "0123456789", 51) == -1 && errno == ENOBUFS && buf_used(&b) == 9,
	    "body without room");
	CHECK(milter_put_body(&b, "0123456789012345678901234567890123456789"
	    "0123456789", 50) == 0 && buf_used(&b) == 64, "body that fits");
	expect("small buffer: both packets whole", &b, LIT("\x00\x00\x00\x05"
	    "H" "abc\0" "\x00\x00\x00\x33" "B"
	    "01234567890123456789012345678901234567890123456789"));
	buf_free(&b);
}

/* ---- reader ---- */

struct want_pkt {
	int		 cmd;
	const char	*data;
	size_t		 len;
};

/* Feed stream in pieces cut at the given points; compare the packets. */
static void
read_split(const char *what, const char *stream, size_t len,
    const size_t *cuts, size_t ncuts, const struct want_pkt *want,
    size_t nwant)
{
	struct milter_reader	r;
	struct milter_packet	pkt;
	size_t			from = 0, to, k, got = 0, fed;
	char			*piece;
	int			rc, ok = 1;

	milter_reader_init(&r);
	for (k = 0; k <= ncuts; k++) {
		to = k < ncuts ? cuts[k] : len;
		/* An exact copy: a read past it shows under ASan. */
		piece = malloc(to - from + 1);
		memcpy(piece, stream + from, to - from);
		fed = milter_reader_feed(&r, piece, to - from);
		free(piece);
		if (fed != to - from)
			ok = 0;
		while ((rc = milter_reader_next(&r, &pkt)) == 1) {
			if (got >= nwant || pkt.cmd != want[got].cmd ||
			    pkt.len != want[got].len || (pkt.len > 0 &&
			    memcmp(pkt.data, want[got].data, pkt.len) != 0))
				ok = 0;
			got++;
		}
		if (rc == -1)
			ok = 0;
		from = to;
	}
	CHECK(ok && got == nwant, "%s: %zu packets of %zu (cuts %zu)", what,
	    got, nwant, ncuts > 0 ? cuts[0] : 0);
	milter_reader_free(&r);
}

static void
test_reader(void)
{
	static const char	stream[] =
	    "\x00\x00\x00\x01" "c"
	    "\x00\x00\x00\x0c" "h" "X-Spam\0Yes\0"
	    "\x00\x00\x00\x21" "y" "550 5.7.1 Spam message rejected\0"
	    "\x00\x00\x00\x29" "O" "\x00\x00\x00\x06" "\x00\x00\x01\x09"
	    "\x00\x00\x07\x52" "\x00\x00\x00\x02" "{auth_type} {mail_host}\0"
	    "\x00\x00\x00\x07" "b" "body\r\n"
	    "\x00\x00\x00\x01" "a";
	static const struct want_pkt	want[] = {
		{ 'c', "", 0 },
		{ 'h', LIT("X-Spam\0Yes\0") },
		{ 'y', LIT("550 5.7.1 Spam message rejected\0") },
		{ 'O', LIT("\x00\x00\x00\x06" "\x00\x00\x01\x09"
		    "\x00\x00\x07\x52" "\x00\x00\x00\x02"
		    "{auth_type} {mail_host}\0") },
		{ 'b', LIT("body\r\n") },
		{ 'a', "", 0 },
	};
	size_t			 len = sizeof(stream) - 1, i, j, cuts[2];
	struct milter_reader	 r;
	struct milter_packet	 pkt;
	char			*big;
	size_t			 bigsz;
	int			 rc;

	/* One piece, every single cut, every pair of cuts, a byte at a
	 * time: always the same six packets. */
	read_split("whole", stream, len, NULL, 0, want, 6);
	for (i = 0; i <= len; i++) {
		cuts[0] = i;
		read_split("one cut", stream, len, cuts, 1, want, 6);
	}
	for (i = 0; i <= len; i++)
		for (j = i; j <= len; j++) {
			cuts[0] = i;
			cuts[1] = j;
			read_split("two cuts", stream, len, cuts, 2, want, 6);
		}
	{
		size_t	every[sizeof(stream)];

		for (i = 0; i < len; i++)
			every[i] = i + 1;
		read_split("bytewise", stream, len, every, len - 1, want, 6);
	}

	/* Length 0: refused, and the reader stays failed. */
	milter_reader_init(&r);
	CHECK(milter_reader_feed(&r, LIT("\x00\x00\x00")) == 3 &&
	    milter_reader_next(&r, &pkt) == 0, "three bytes: more wanted");
	CHECK(milter_reader_feed(&r, LIT("\x00" "c")) == 2 &&
	    milter_reader_next(&r, &pkt) == -1 &&
	    strstr(r.error, "length 0") != NULL, "length 0: %s", r.error);
	CHECK(milter_reader_next(&r, &pkt) == -1 &&
	    milter_reader_feed(&r, "x", 1) == 0, "failure is sticky");
	milter_reader_free(&r);

	/* Above the limit: refused on the length alone. */
	milter_reader_init(&r);
	CHECK(milter_reader_feed(&r, LIT("\x00\x10\x00\x02")) == 4 &&
	    milter_reader_next(&r, &pkt) == -1 &&
	    strstr(r.error, "1048578") != NULL, "oversize: %s", r.error);
	milter_reader_free(&r);
	milter_reader_init(&r);
	CHECK(milter_reader_feed(&r, LIT("\xff\xff\xff\xff" "c")) == 5 &&
	    milter_reader_next(&r, &pkt) == -1, "4 GB length");
	milter_reader_free(&r);

	/* Exactly the limit: 1 MiB of data is a packet. Its last byte and a
	 * whole read after it still fit (MILTER_FEED_MAX); a full reader takes
	 * no more until a packet is handed out. */
	bigsz = MILTER_LEN_BYTES + MILTER_PACKET_MAX + MILTER_FEED_MAX + 10;
	big = malloc(bigsz);
	memset(big, 'x', bigsz);
	memcpy(big, "\x00\x10\x00\x01" "b", 5);
	for (i = MILTER_LEN_BYTES + MILTER_PACKET_MAX; i + 5 <= bigsz; i += 5)
		memcpy(big + i, "\x00\x00\x00\x01" "c", 5);
	milter_reader_init(&r);
	CHECK(milter_reader_feed(&r, big, MILTER_LEN_BYTES + MILTER_PACKET_MAX -
	    1) == MILTER_LEN_BYTES + MILTER_PACKET_MAX - 1 &&
	    milter_reader_next(&r, &pkt) == 0, "1 MiB packet but its last byte");
	CHECK(milter_reader_feed(&r, big + MILTER_LEN_BYTES + MILTER_PACKET_MAX -
	    1, MILTER_FEED_MAX + 1) == MILTER_FEED_MAX + 1,
	    "its last byte and a whole read fit");
	rc = milter_reader_next(&r, &pkt);
	CHECK(rc == 1 && pkt.cmd == 'b' && pkt.len == (size_t)1 << 20,
	    "1 MiB packet: rc %d len %zu", rc, pkt.len);
	for (j = 0; (rc = milter_reader_next(&r, &pkt)) == 1; j++)
		;
	CHECK(rc == 0 && j == MILTER_FEED_MAX / 5 && buf_used(&r.in) ==
	    MILTER_FEED_MAX % 5, "then %zu continues, %zu bytes left", j,
	    buf_used(&r.in));
	milter_reader_free(&r);
	milter_reader_init(&r);
	CHECK(milter_reader_feed(&r, big, bigsz) == bigsz - 10,
	    "a full reader takes what fits");
	CHECK(milter_reader_feed(&r, big + bigsz - 10, 10) == 0,
	    "and then nothing");
	CHECK(milter_reader_next(&r, &pkt) == 1 && pkt.cmd == 'b' &&
	    milter_reader_feed(&r, big + bigsz - 10, 10) == 10,
	    "room again once the packet is handed out");
	for (j = 0; (rc = milter_reader_next(&r, &pkt)) == 1; j++)
		if (pkt.cmd != 'c' || pkt.len != 0)
			break;
	CHECK(rc == 0 && buf_used(&r.in) == (MILTER_FEED_MAX + 10) % 5 &&
	    j == (MILTER_FEED_MAX + 10) / 5, "all of it: %zu packets", j);
	milter_reader_free(&r);
	free(big);
}

/* ---- replies ---- */

struct reply_case {
	int		 cmd;
	const char	*data;
	size_t		 len;
	int		 rc;
	const char	*error;		/* substring, when rc is -1 */
};

#define OK(c, s)	{ c, LIT(s), 0, NULL }
#define BAD(c, s, e)	{ c, LIT(s), -1, e }

static void
run_replies(const struct reply_case *t, size_t n)
{
	struct milter_packet	 pkt;
	struct milter_reply	*r = malloc(sizeof(*r));
	char			*copy;
	size_t			 i;
	int			 rc;

	for (i = 0; i < n; i++) {
		/* The data alone in a block of its size: an overread shows. */
		copy = malloc(t[i].len + 1);
		memcpy(copy, t[i].data, t[i].len);
		pkt.cmd = t[i].cmd;
		pkt.data = copy;
		pkt.len = t[i].len;
		rc = milter_reply_parse(&pkt, r);
		CHECK(rc == t[i].rc, "reply %zu (%s \"%s\"): rc %d want %d (%s)",
		    i, milter_reply_name(t[i].cmd), hex(t[i].data, t[i].len),
		    rc, t[i].rc, r->error);
		if (rc == -1 && t[i].rc == -1 && t[i].error != NULL)
			CHECK(strstr(r->error, t[i].error) != NULL,
			    "reply %zu: error [%s] want [%s]", i, r->error,
			    t[i].error);
		if (rc == 0)
			CHECK(r->code == t[i].cmd && r->error[0] == '\0',
			    "reply %zu: code", i);
		free(copy);
	}
	free(r);
}

static void
test_reply_cases(void)
{
	static const struct reply_case	t[] = {
		/* Decisions carry nothing. */
		OK('c', ""), OK('a', ""), OK('r', ""), OK('t', ""),
		OK('d', ""), OK('p', ""), OK('s', ""), OK('4', ""),
		OK('f', ""),
		BAD('c', "\0", "1 bytes of data, none allowed"),
		BAD('a', "x", "none allowed"),
		/* Codes that are not replies. */
		BAD('l', "\0\0\0\0i\0", "outside the negotiation"),
		BAD('Z', "", "unknown reply code 'Z'"),
		BAD(0, "", "unknown reply code 0x00"),
		BAD('C', "", "unknown reply code"),

		/* SMFIR_ADDHEADER: name\0value\0 and nothing more. */
		OK('h', "X-Spam\0Yes\0"),
		OK('h', "X-Empty\0\0"),
		OK('h', "DKIM-Signature\0v=1; a=rsa-sha256; d=example.org;\n"
		    "\tb=AbC\0"),
		OK('h', "X-Folded\0first\r\n second\0"),
		OK('h', "X-Lead\0 leading space kept\0"),
		OK('h', "X-UTF8\0caf\xc3\xa9\0"),
		OK('h', "X-Tab\0a\tb\0"),
		BAD('h', "X-Spam\0Yes", "field 2 not NUL-terminated"),
		BAD('h', "X-Spam\0", "field 2 missing"),
		BAD('h', "X-Spam", "field 1 not NUL-terminated"),
		BAD('h', "", "field 1 missing"),
		BAD('h', "X-Spam\0Yes\0junk", "4 bytes after the last field"),
		BAD('h', "X-Spam\0Yes\0\0", "1 bytes after"),
		BAD('h', "\0Yes\0", "empty header name"),
		BAD('h', "X Spam\0Yes\0", "header name byte 1 is 0x20"),
		BAD('h', "X:Spam\0Yes\0", "header name byte 1 is ':'"),
		BAD('h', "X-\xc3\xa9\0Yes\0", "header name byte 2 is 0xc3"),
		BAD('h', "X-A\x01\0Yes\0", "header name byte 3 is 0x01"),
		BAD('h', "X-Inject\0a\nBcc: x@evil\0",
		    "not followed by SP or HT at byte 1"),
		BAD('h', "X-Inject\0a\r\nBcc: x@evil\0",
		    "not followed by SP or HT at byte 2"),
		BAD('h', "X-CR\0a\rb\0", "bare CR at byte 1"),
		BAD('h', "X-End\0a\n\0", "not followed by SP or HT"),
		BAD('h', "X-End\0a\r\n\0", "not followed by SP or HT"),
		BAD('h', "X-End\0a\r\0", "bare CR"),
		BAD('h', "X-Ctl\0a\x01" "b\0", "value byte 1 is 0x01"),
		BAD('h', "X-Del\0a\x7f\0", "value byte 1 is 0x7f"),
		BAD('h', "X-Vt\0a\x0b\0", "value byte 1 is 0x0b"),

		/* SMFIR_INSHEADER, SMFIR_CHGHEADER: a u32 index first. */
		OK('i', "\0\0\0\0Authentication-Results\0mx; dkim=pass\0"),
		OK('i', "\xff\xff\xff\xff" "X\0v\0"),
		OK('m', "\0\0\0\x01" "X-Spam\0\0"),
		OK('m', "\0\0\0\x02" "Subject\0[SPAM] hi\0"),
		BAD('i', "\0\0\0", "no room for the index"),
		BAD('m', "", "no room for the index"),
		BAD('i', "\0\0\0\0", "field 1 missing"),
		BAD('i', "\0\0\0\0X\0", "field 2 missing"),
		BAD('m', "\0\0\0\x01X\0v\0!", "1 bytes after"),
		BAD('m', "\0\0\0\x01" "Bad Name\0v\0", "header name byte 3"),
		BAD('i', "\0\0\0\0X\0a\nb\0", "not followed by SP or HT"),

		/* Envelope edits. */
		OK('+', "<new@example.org>\0"),
		OK('+', "new@example.org\0"),
		OK('-', "<old@example.org>\0"),
		OK('e', "<bounce@example.org>\0"),
		OK('e', "<bounce@example.org>\0SIZE=1000 BODY=8BITMIME\0"),
		OK('e', "<>\0"),
		OK('2', "<x@example.org>\0NOTIFY=NEVER\0"),
		OK('2', "<x@example.org>\0"),
		OK('2', "<x@example.org>\0\0"),
		OK('+', "\"john doe\"@example.org\0"),
		OK('+', "<j\xc3\xb6rg@example.org>\0"),
		BAD('+', "\0", "empty address"),
		BAD('e', "\0", "empty address"),
		BAD('+', "<x@y>", "not NUL-terminated"),
		BAD('+', "", "field 1 missing"),
		BAD('+', "<x@y>\0<z@w>\0", "bytes after the last field"),
		BAD('-', "<x@y>\r\nDATA\0", "address byte 5 is 0x0d"),
		BAD('+', "<x@y>\nRCPT TO:<z@w>\0", "address byte 5 is 0x0a"),
		BAD('2', "<x@y>\0NOTIFY=NEVER\r\nDATA\0",
		    "ESMTP arguments byte 12 is 0x0d"),
		BAD('2', "<x@y>\0A\0B\0", "2 bytes after"),
		BAD('e', "<x@y>\0SIZE=1", "field 2 not NUL-terminated"),

		/* SMFIR_QUARANTINE: a reason, possibly empty. */
		OK('q', "Quarantined by rspamd\0"),
		OK('q', "\0"),
		BAD('q', "", "field 1 missing"),
		BAD('q', "spam", "not NUL-terminated"),
		BAD('q', "a\nb\0", "quarantine reason byte 1 is 0x0a"),
		BAD('q', "spam\0\0", "1 bytes after"),

		/* SMFIR_REPLBODY: raw bytes, any of them. */
		OK('b', "new body\r\n"),
		OK('b', ""),
		OK('b', "\0\r\n\xff"),

		/* SMFIR_REPLYCODE. */
		OK('y', "550 5.7.1 Rejected\0"),
		OK('y', "451 4.7.1 Try again later\0"),
		OK('y', "554 Spam message rejected\0"),
		OK('y', "550 \0"),
		OK('y', "421 4.3.2 Service shutting down\0"),
		OK('y', "550 5.7.1\0"),
		OK('y', "550 5.7.123 x\0"),
		OK('y', "550-5.7.1 line one\r\n550 5.7.1 line two\0"),
		OK('y', "550-first\r\n550-second\r\n550 third\0"),
		OK('y', "550 5.7.1 tab\there\0"),
		BAD('y', "250 2.0.0 Ok\0", "4xx or 5xx"),
		BAD('y', "550\0", "4xx or 5xx code and SP or '-'"),
		BAD('y', "55\0", "4xx or 5xx"),
		BAD('y', "5500 x\0", "4xx or 5xx"),
		BAD('y', "5a0 x\0", "4xx or 5xx"),
		BAD('y', "650 x\0", "4xx or 5xx"),
		BAD('y', " 550 x\0", "4xx or 5xx"),
		BAD('y', "\0", "empty reply text"),
		BAD('y', "550 4.7.1 x\0", "enhanced status code of class 5"),
		BAD('y', "450 5.7.1 x\0", "class 4"),
		BAD('y', "550 5.7 x\0", "not an enhanced status code"),
		BAD('y', "550 5.7.1234 x\0", "not an enhanced"),
		BAD('y', "550 5.7.1x\0", "not an enhanced"),
		BAD('y', "550 5..1 x\0", "not an enhanced"),
		BAD('y', "550 5 apples\0", "not an enhanced"),
		BAD('y', "550-5.7.1 a\r\n551 5.7.1 b\0",
		    "line 2 has code 551, the first 550"),
		BAD('y', "550-5.7.1 a\r\n450 4.7.1 b\0", "has code 450"),
		BAD('y', "550 5.7.1 a\r\n550 5.7.1 b\0",
		    "line 1 is marked last"),
		BAD('y', "550-5.7.1 a\0", "ends with a continuation line"),
		BAD('y', "550-a\r\n550 b\r\n\0", "ends with CRLF"),
		BAD('y', "550 5.7.1 a\r\n\0", "ends with CRLF"),
		BAD('y', "550-a\r\n\r\n550 b\0", "line 2 does not start"),
		BAD('y', "550 5.7.1 a\nb\0", "bare LF at byte 11"),
		BAD('y', "550 5.7.1 a\rb\0", "bare CR at byte 11"),
		BAD('y', "550 5.7.1 a\r\0", "bare CR"),
		BAD('y', "550 5.7.1 caf\xc3\xa9\0", "byte 13 is 0xc3"),
		BAD('y', "550 5.7.1 \x1b[2J\0", "byte 10 is 0x1b"),
		BAD('y', "550 5.7.1 Rejected", "not NUL-terminated"),
		BAD('y', "550 5.7.1 Rejected\0junk", "4 bytes after"),
		BAD('y', "550 a\0b\0", "2 bytes after"),

		/* SMFIC_OPTNEG: 12 bytes, then (stage, list) pairs. */
		OK('O', "\0\0\0\x06" "\0\0\x01\xff" "\0\x0f\xf0\x80"),
		OK('O', "\0\0\0\x02" "\0\0\0\x3f" "\0\0\0\0"),
		OK('O', "\0\0\0\x06" "\0\0\x01\x00" "\0\0\0\0"
		    "\0\0\0\x02" "{auth_type} {mail_addr}\0"
		    "\0\0\0\x05" "i,{rcpt_count}\0"),
		OK('O', "\0\0\0\x06" "\0\0\0\0" "\0\0\0\0" "\0\0\0\x06" "\0"),
		BAD('O', "\0\0\0\x06" "\0\0\x01\xff" "\0\x0f\xf0",
		    "11 bytes, 12 at least"),
		BAD('O', "", "0 bytes"),
		BAD('O', "\0\0\0\x06" "\0\0\0\0" "\0\0\0\0" "\0\0\0\x07" "j\0",
		    "unknown stage 7"),
		BAD('O', "\0\0\0\x06" "\0\0\0\0" "\0\0\0\0"
		    "\xff\xff\xff\xff" "j\0", "unknown stage 4294967295"),
		BAD('O', "\0\0\0\x06" "\0\0\0\0" "\0\0\0\0" "\0\0\0\x01" "j\0"
		    "\0\0\0\x01" "k\0", "two macro lists for SMFIM_HELO"),
		BAD('O', "\0\0\0\x06" "\0\0\0\0" "\0\0\0\0" "\0\0\0\x01",
		    "truncated at byte 12"),
		BAD('O', "\0\0\0\x06" "\0\0\0\0" "\0\0\0\0" "\0\0",
		    "truncated at byte 12"),
		BAD('O', "\0\0\0\x06" "\0\0\0\0" "\0\0\0\0" "\0\0\0\x01" "j",
		    "for SMFIM_HELO not NUL-terminated"),
		BAD('O', "\0\0\0\x06" "\0\0\0\0" "\0\0\0\0" "\0\0\0\x01"
		    "j\tk\0", "byte 1 is 0x09"),
		BAD('O', "\0\0\0\x06" "\0\0\0\0" "\0\0\0\0" "\0\0\0\x01"
		    "j\nk\0", "byte 1 is 0x0a"),
	};

	run_replies(t, sizeof(t) / sizeof(t[0]));
}

/* One packet's data through the parser, kept for field checks. */
static int
parse1(int cmd, const char *data, size_t len, struct milter_reply *r)
{
	struct milter_packet	pkt = { cmd, data, len };

	return milter_reply_parse(&pkt, r);
}

static void
test_reply_fields(void)
{
	struct milter_reply	*r = malloc(sizeof(*r));
	char			*s;
	size_t			 i, o;
	int			 rc;

	CHECK(parse1('h', LIT("X-Spam\0Yes\0"), r) == 0 &&
	    strcmp(r->name, "X-Spam") == 0 && r->namelen == 6 &&
	    strcmp(r->value, "Yes") == 0 && r->valuelen == 3,
	    "addheader fields");
	CHECK(parse1('i', LIT("\0\0\x01\x02" "A-R\0v\0"), r) == 0 &&
	    r->index == 0x102 && strcmp(r->name, "A-R") == 0 &&
	    strcmp(r->value, "v") == 0, "insheader fields");
	CHECK(parse1('m', LIT("\0\0\0\x03" "X-Spam\0\0"), r) == 0 &&
	    r->index == 3 && r->valuelen == 0 && r->value[0] == '\0',
	    "chgheader delete");
	CHECK(parse1('2', LIT("<x@y>\0NOTIFY=NEVER\0"), r) == 0 &&
	    strcmp(r->addr, "<x@y>") == 0 && r->args != NULL &&
	    strcmp(r->args, "NOTIFY=NEVER") == 0, "addrcpt_par fields");
	CHECK(parse1('e', LIT("<x@y>\0"), r) == 0 && r->args == NULL &&
	    r->argslen == 0, "chgfrom without args");
	CHECK(parse1('q', LIT("Quarantined\0"), r) == 0 &&
	    strcmp(r->reason, "Quarantined") == 0, "quarantine reason");
	CHECK(parse1('b', LIT("a\0b"), r) == 0 && r->bodylen == 3 &&
	    memcmp(r->body, "a\0b", 3) == 0, "replbody bytes");
	CHECK(parse1('y', LIT("554 5.7.1 Spam message rejected\0"), r) == 0 &&
	    r->smtp_code == 554 && strcmp(r->text, "554 5.7.1 Spam message "
	    "rejected") == 0 && r->textlen == 31, "replycode text");
	CHECK(parse1('y', LIT("550-5.7.1 one\r\n550 5.7.1 two\0"), r) == 0 &&
	    r->smtp_code == 550 && strcmp(r->text, "550-5.7.1 one\r\n"
	    "550 5.7.1 two") == 0, "multi-line text");
	/* sendmail's printf convention: "%%" is one '%'; a lone one stays. */
	CHECK(parse1('y', LIT("550 5.7.1 100%% spam, 50% sure%\0"), r) == 0 &&
	    strcmp(r->text, "550 5.7.1 100% spam, 50% sure%") == 0,
	    "percent: [%s]", r->text);
	CHECK(parse1('y', LIT("451 4.7.1 %%%%\0"), r) == 0 &&
	    strcmp(r->text, "451 4.7.1 %%") == 0, "percent pairs: [%s]",
	    r->text);
	CHECK(parse1('O', LIT("\0\0\0\x06" "\0\0\x01\x09" "\0\0\x07\x52"
	    "\0\0\0\x02" "{auth_type} {mail_host}\0" "\0\0\0\x06" "\0"),
	    r) == 0 && r->version == 6 && r->actions == 0x109 &&
	    r->protocol == 0x752 && r->symlists == ((1U << 2) | (1U << 6)) &&
	    r->symlistlen[2] == 23 && memcmp(r->symlist[2], "{auth_type} "
	    "{mail_host}", 23) == 0 && r->symlistlen[6] == 0,
	    "optneg fields");

	/* The limits, at and past them: 8 lines of 454 bytes and a last one
	 * that brings the text to exactly MILTER_REPLY_TEXT_MAX. */
	s = malloc(MILTER_REPLY_TEXT_MAX + 64);
	for (o = 0, i = 0; i < 8; i++) {
		memcpy(s + o, "550-", 4);
		memset(s + o + 4, 'x', 450);
		memcpy(s + o + 454, "\r\n", 2);
		o += 456;
	}
	memcpy(s + o, "550 ", 4);
	memset(s + o + 4, 'y', MILTER_REPLY_TEXT_MAX - o - 4);
	s[MILTER_REPLY_TEXT_MAX] = '\0';
	rc = parse1('y', s, MILTER_REPLY_TEXT_MAX + 1, r);
	CHECK(rc == 0 && r->textlen == MILTER_REPLY_TEXT_MAX,
	    "text at the limit: %s", r->error);
	memcpy(s + MILTER_REPLY_TEXT_MAX, "y", 2);
	CHECK(parse1('y', s, MILTER_REPLY_TEXT_MAX + 2, r) == -1 &&
	    strstr(r->error, "above 4096") != NULL, "text over the limit: %s",
	    r->error);
	memcpy(s, "550 ", 4);
	memset(s + 4, 'z', MILTER_REPLY_LINE_MAX - 4);
	s[MILTER_REPLY_LINE_MAX] = '\0';
	CHECK(parse1('y', s, MILTER_REPLY_LINE_MAX + 1, r) == 0,
	    "line at the limit: %s", r->error);
	memcpy(s + MILTER_REPLY_LINE_MAX, "z", 2);
	CHECK(parse1('y', s, MILTER_REPLY_LINE_MAX + 2, r) == -1 &&
	    strstr(r->error, "line 1 of 511 bytes") != NULL,
	    "line over the limit: %s", r->error);
	/* 32 lines pass, 33 do not. */
	for (o = 0, i = 0; i < 31; i++) {
		memcpy(s + o, "550-a\r\n", 7);
		o += 7;
	}
	memcpy(s + o, "550 a", 6);
	CHECK(parse1('y', s, o + 6, r) == 0, "32 lines: %s", r->error);
	memcpy(s + o, "550-a\r\n550 a", 13);
	CHECK(parse1('y', s, o + 13, r) == -1 &&
	    strstr(r->error, "more than 32 lines") != NULL, "33 lines: %s",
	    r->error);

	/* Names, addresses, reasons, macro lists at their limits. */
	memset(s, 'N', MILTER_HDR_NAME_MAX);
	memcpy(s + MILTER_HDR_NAME_MAX, "\0v", 3);
	CHECK(parse1('h', s, MILTER_HDR_NAME_MAX + 3, r) == 0,
	    "name at the limit: %s", r->error);
	memset(s, 'N', MILTER_HDR_NAME_MAX + 1);
	memcpy(s + MILTER_HDR_NAME_MAX + 1, "\0v", 3);
	CHECK(parse1('h', s, MILTER_HDR_NAME_MAX + 4, r) == -1 &&
	    strstr(r->error, "header name of 257 bytes") != NULL,
	    "name over the limit: %s", r->error);
	memset(s, 'a', MILTER_ADDR_MAX + 1);
	s[MILTER_ADDR_MAX] = '\0';
	CHECK(parse1('+', s, MILTER_ADDR_MAX + 1, r) == 0,
	    "address at the limit: %s", r->error);
	s[MILTER_ADDR_MAX] = 'a';
	s[MILTER_ADDR_MAX + 1] = '\0';
	CHECK(parse1('+', s, MILTER_ADDR_MAX + 2, r) == -1 &&
	    strstr(r->error, "address of 257 bytes") != NULL,
	    "address over the limit: %s", r->error);
	memset(s, 'r', MILTER_REASON_MAX + 1);
	s[MILTER_REASON_MAX + 1] = '\0';
	CHECK(parse1('q', s, MILTER_REASON_MAX + 2, r) == -1 &&
	    strstr(r->error, "above 1024") != NULL, "reason over the limit");
	memcpy(s, "\0\0\0\x06" "\0\0\0\0" "\0\0\0\0" "\0\0\0\x03", 16);
	for (o = 16, i = 0; i < MILTER_MACROS_MAX; i++) {
		memcpy(s + o, "{m} ", 4);
		o += 4;
	}
	s[o - 1] = '\0';
	CHECK(parse1('O', s, o, r) == 0, "50 names: %s", r->error);
	s[o - 1] = ' ';
	memcpy(s + o, "{m}", 4);
	CHECK(parse1('O', s, o + 4, r) == -1 &&
	    strstr(r->error, "more than 50 names") != NULL,
	    "51 names: %s", r->error);
	free(s);
	free(r);
}

/* ---- negotiation ---- */

static int
neg(const struct milter_offer *o, const char *data, size_t len,
    struct milter_neg *n)
{
	struct milter_reply	*r = malloc(sizeof(*r));
	int			 rc;

	rc = parse1('O', data, len, r);
	CHECK(rc == 0, "negotiation reply parses: %s", r->error);
	rc = milter_negotiate(o, r, n);
	free(r);
	return rc;
}

static void
test_negotiate(void)
{
	struct milter_offer	 o, small;
	struct milter_neg	*n = malloc(sizeof(*n));
	struct milter_reply	*r = malloc(sizeof(*r));
	char			 s[4 * 1100];
	size_t			 i, l;

	milter_offer_default(&o);
	CHECK(o.version == 6 && o.actions == 0x1ff && o.protocol == 0x1fffff,
	    "default offer");

	/* rspamd 3.4's answer: version 6, the offered actions with its own
	 * (ADDHDRS ADDRCPT DELRCPT CHGHDRS) or'ed in, no reply for anything
	 * but the end of the message. */
	CHECK(neg(&o, LIT("\0\0\0\x06" "\0\0\x01\xff" "\0\x0f\xf0\x80"),
	    n) == 0, "rspamd: %s", n->error);
	CHECK(n->version == 6 && n->actions == 0x1ff &&
	    n->protocol == 0x000ff080 && n->symlists == 0, "rspamd values");
	CHECK(milter_neg_sends(n, SMFIC_CONNECT) &&
	    milter_neg_sends(n, SMFIC_HEADER) &&
	    milter_neg_sends(n, SMFIC_BODY) &&
	    milter_neg_sends(n, SMFIC_UNKNOWN), "rspamd gets every step");
	CHECK(!milter_neg_replies(n, SMFIC_CONNECT) &&
	    !milter_neg_replies(n, SMFIC_HEADER) &&
	    !milter_neg_replies(n, SMFIC_BODY) &&
	    !milter_neg_replies(n, SMFIC_RCPT) &&
	    milter_neg_replies(n, SMFIC_BODYEOB) &&
	    !milter_neg_replies(n, SMFIC_MACRO) &&
	    !milter_neg_replies(n, SMFIC_ABORT) &&
	    !milter_neg_replies(n, SMFIC_QUIT), "rspamd answers at EOB only");

	/* A signing milter: headers, no HELO/UNKNOWN/DATA/body-skip,
	 * leading spaces kept, macros asked for the envelope. */
	CHECK(neg(&o, LIT("\0\0\0\x06" "\0\0\x01\x11" "\0\x10\x07\x02"
	    "\0\0\0\x02" "{auth_type} {auth_authen}\0"), n) == 0,
	    "signer: %s", n->error);
	CHECK(!milter_neg_sends(n, SMFIC_HELO) &&
	    !milter_neg_sends(n, SMFIC_UNKNOWN) &&
	    !milter_neg_sends(n, SMFIC_DATA) &&
	    milter_neg_sends(n, SMFIC_HEADER) &&
	    milter_neg_sends(n, SMFIC_BODY) &&
	    milter_neg_replies(n, SMFIC_HEADER) &&
	    (n->protocol & SMFIP_HDR_LEADSPC), "signer steps");
	CHECK(milter_neg_wants(n, SMFIM_ENVFROM, "{auth_type}") == 1 &&
	    milter_neg_wants(n, SMFIM_ENVFROM, "auth_authen") == 1 &&
	    milter_neg_wants(n, SMFIM_ENVFROM, "{mail_addr}") == 0 &&
	    milter_neg_wants(n, SMFIM_ENVFROM, "auth") == 0 &&
	    milter_neg_wants(n, SMFIM_CONNECT, "j") == -1 &&
	    milter_neg_wants(n, 7, "j") == -1 &&
	    milter_neg_wants(n, -1, "j") == -1, "signer macros");

	/* A list of one-letter names, commas, and an empty list. */
	CHECK(neg(&o, LIT("\0\0\0\x06" "\0\0\x01\x00" "\0\0\0\0"
	    "\0\0\0\x05" "i,{j}  {rcpt_count}\0" "\0\0\0\x00" "\0"), n) == 0,
	    "lists: %s", n->error);
	CHECK(milter_neg_wants(n, SMFIM_EOM, "i") == 1 &&
	    milter_neg_wants(n, SMFIM_EOM, "{i}") == 1 &&
	    milter_neg_wants(n, SMFIM_EOM, "j") == 1 &&
	    milter_neg_wants(n, SMFIM_EOM, "rcpt_count") == 1 &&
	    milter_neg_wants(n, SMFIM_EOM, "{}") == 0 &&
	    milter_neg_wants(n, SMFIM_EOM, "{rcpt_count") == 0 &&
	    milter_neg_wants(n, SMFIM_CONNECT, "j") == 0, "list matching");

	/* More than offered: refused, and the reason names it. */
	small = o;
	small.actions = SMFI_V2_ACTS;
	CHECK(neg(&small, LIT("\0\0\0\x06" "\0\0\0\x41" "\0\0\0\0"), n) ==
	    -1 && strstr(n->error, "actions we did not offer: CHGFROM") !=
	    NULL, "action not offered: %s", n->error);
	small = o;
	small.protocol = SMFI_V2_PROT;
	CHECK(neg(&small, LIT("\0\0\0\x06" "\0\0\0\x01" "\0\0\x10\x80"), n) ==
	    -1 && strstr(n->error, "protocol flags we did not offer: NR_HDR,"
	    "NR_CONN") != NULL, "step not offered: %s", n->error);
	/* We never offer the data size bits, so they are refused too. */
	CHECK(neg(&o, LIT("\0\0\0\x06" "\0\0\0\x01" "\x20\0\0\0"), n) == -1 &&
	    strstr(n->error, "0x20000000") != NULL, "MDS_1M: %s", n->error);
	CHECK(neg(&o, LIT("\0\0\0\x06" "\0\0\x02\0" "\0\0\0\0"), n) == -1 &&
	    strstr(n->error, "0x00000200") != NULL, "unknown action: %s",
	    n->error);

	/* Versions: 2 to ours. */
	CHECK(neg(&o, LIT("\0\0\0\x01" "\0\0\0\x0f" "\0\0\0\0"), n) == -1 &&
	    strstr(n->error, "version 1, 2 at least") != NULL, "version 1: %s",
	    n->error);
	CHECK(neg(&o, LIT("\0\0\0\0" "\0\0\0\x0f" "\0\0\0\0"), n) == -1,
	    "version 0");
	CHECK(neg(&o, LIT("\0\0\0\x07" "\0\0\0\x0f" "\0\0\0\0"), n) == -1 &&
	    strstr(n->error, "version 7, we offered 6") != NULL,
	    "version 7: %s", n->error);
	small = o;
	small.version = 4;
	CHECK(neg(&small, LIT("\0\0\0\x06" "\0\0\0\x0f" "\0\0\0\0"), n) == -1,
	    "a version above a version 4 offer");
	/* A version 2 milter (sendmail 8.13's libmilter) works with what it
	 * knows: never SMFIC_UNKNOWN or SMFIC_DATA, a reply to every step. */
	CHECK(neg(&o, LIT("\0\0\0\x02" "\0\0\0\x3f" "\0\0\0\0"), n) == 0,
	    "version 2: %s", n->error);
	CHECK(n->version == 2 && n->actions == 0x3f &&
	    n->protocol == (SMFIP_NOUNKNOWN | SMFIP_NODATA) &&
	    !milter_neg_sends(n, SMFIC_UNKNOWN) &&
	    !milter_neg_sends(n, SMFIC_DATA) &&
	    milter_neg_sends(n, SMFIC_CONNECT) &&
	    milter_neg_sends(n, SMFIC_HEADER) &&
	    milter_neg_replies(n, SMFIC_HEADER) &&
	    milter_neg_replies(n, SMFIC_CONNECT) &&
	    milter_neg_wants(n, SMFIM_CONNECT, "j") == -1, "version 2 steps");
	CHECK(neg(&o, LIT("\0\0\0\x03" "\0\0\0\x3f" "\0\0\0\x02"), n) == 0 &&
	    n->protocol == (SMFIP_NOHELO | SMFIP_NODATA) &&
	    milter_neg_sends(n, SMFIC_UNKNOWN), "version 3");
	CHECK(neg(&o, LIT("\0\0\0\x04" "\0\0\0\x3f" "\0\0\0\0"), n) == 0 &&
	    n->protocol == 0 && milter_neg_sends(n, SMFIC_DATA), "version 4");
	CHECK(neg(&o, LIT("\0\0\0\x02" "\0\0\0\x3f" "\0\0\0\0"
	    "\0\0\0\x01" "j\0"), n) == -1 &&
	    strstr(n->error, "macro lists from a version 2 milter") != NULL,
	    "lists before version 6: %s", n->error);

	/* Only an SMFIC_OPTNEG negotiates. */
	CHECK(parse1('c', "", 0, r) == 0 && milter_negotiate(&o, r, n) == -1 &&
	    strstr(n->error, "with SMFIR_CONTINUE") != NULL, "continue: %s",
	    n->error);

	/* Lists that do not fit in what we keep. */
	memcpy(s, "\0\0\0\x06" "\0\0\0\0" "\0\0\0\0", 12);
	for (l = 12, i = 0; i < 3; i++) {
		s[l++] = 0;
		s[l++] = 0;
		s[l++] = 0;
		s[l++] = (char)i;
		memset(s + l, 'm', 1000);
		l += 1000;
		s[l++] = '\0';
	}
	CHECK(parse1('O', s, l, r) == 0, "three long lists parse: %s",
	    r->error);
	CHECK(milter_negotiate(&o, r, n) == -1 &&
	    strstr(n->error, "longer than 2048") != NULL, "too long to keep: "
	    "%s", n->error);
	CHECK(parse1('O', s, l - 1005, r) == 0 &&
	    milter_negotiate(&o, r, n) == 0 &&
	    milter_neg_wants(n, SMFIM_HELO, "m") == 0 &&
	    n->symlen[0] == 1000 && n->symlen[1] == 1000 &&
	    n->symbuf[n->symoff[1]] == 'm', "two long lists kept: %s",
	    n->error);
	free(r);
	free(n);
}

/* ---- what may answer what ---- */

static void
test_allowed(void)
{
	static const struct {
		uint32_t	 actions;
		uint32_t	 protocol;
		int		 cmd;
		int		 code;
		int		 ok;
		const char	*why;
	} t[] = {
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_ADDHEADER, 1, NULL },
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_INSHEADER, 1, NULL },
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_CHGHEADER, 1, NULL },
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_REPLBODY, 1, NULL },
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_ADDRCPT, 1, NULL },
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_ADDRCPT_PAR, 1, NULL },
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_DELRCPT, 1, NULL },
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_CHGFROM, 1, NULL },
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_QUARANTINE, 1, NULL },
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_ACCEPT, 1, NULL },
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_REPLYCODE, 1, NULL },
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_PROGRESS, 1, NULL },
		{ SMFIF_CHGHDRS, 0, SMFIC_BODYEOB, SMFIR_ADDHEADER, 0,
		    "without ADDHDRS negotiated" },
		{ SMFIF_ADDHDRS, 0, SMFIC_BODYEOB, SMFIR_CHGHEADER, 0,
		    "without CHGHDRS" },
		{ SMFIF_ADDHDRS, 0, SMFIC_BODYEOB, SMFIR_REPLBODY, 0,
		    "without CHGBODY" },
		{ SMFIF_ADDRCPT, 0, SMFIC_BODYEOB, SMFIR_ADDRCPT_PAR, 0,
		    "without ADDRCPT_PAR" },
		{ SMFIF_ADDHDRS, 0, SMFIC_BODYEOB, SMFIR_CHGFROM, 0,
		    "without CHGFROM" },
		{ SMFIF_ADDHDRS, 0, SMFIC_BODYEOB, SMFIR_QUARANTINE, 0,
		    "without QUARANTINE" },
		{ 0x1ff, 0, SMFIC_RCPT, SMFIR_ADDHEADER, 0,
		    "edits come after SMFIC_BODYEOB only" },
		{ 0x1ff, 0, SMFIC_EOH, SMFIR_CHGFROM, 0, "after SMFIC_EOH" },
		{ 0x1ff, 0, SMFIC_MAIL, SMFIR_QUARANTINE, 1, NULL },
		{ 0, 0, SMFIC_CONNECT, SMFIR_ACCEPT, 1, NULL },
		{ 0, 0, SMFIC_CONNECT, SMFIR_REPLYCODE, 1, NULL },
		{ 0, 0, SMFIC_RCPT, SMFIR_TEMPFAIL, 1, NULL },
		{ 0, 0, SMFIC_HEADER, SMFIR_CONTINUE, 1, NULL },
		{ 0, 0, SMFIC_DATA, SMFIR_REJECT, 1, NULL },
		{ 0, 0, SMFIC_UNKNOWN, SMFIR_REJECT, 1, NULL },
		{ 0, 0, SMFIC_BODY, SMFIR_SHUTDOWN, 1, NULL },
		{ 0, 0, SMFIC_BODY, SMFIR_CONN_FAIL, 1, NULL },
		{ 0, 0, SMFIC_CONNECT, SMFIR_DISCARD, 0, "no message" },
		{ 0, 0, SMFIC_HELO, SMFIR_DISCARD, 0, "no message" },
		{ 0, 0, SMFIC_RCPT, SMFIR_DISCARD, 1, NULL },
		{ 0, SMFIP_SKIP, SMFIC_BODY, SMFIR_SKIP, 1, NULL },
		{ 0, 0, SMFIC_BODY, SMFIR_SKIP, 0, "without SKIP" },
		{ 0, SMFIP_SKIP, SMFIC_HEADER, SMFIR_SKIP, 0,
		    "only body chunks" },
		{ 0, 0, SMFIC_OPTNEG, SMFIC_OPTNEG, 1, NULL },
		{ 0, 0, SMFIC_OPTNEG, SMFIR_CONTINUE, 0, "answers SMFIC_OPTNEG" },
		{ 0, 0, SMFIC_BODYEOB, SMFIC_OPTNEG, 0, "answers SMFIC_BODYEOB" },
		{ 0, SMFIP_NR_HDR, SMFIC_HEADER, SMFIR_CONTINUE, 0,
		    "gets no reply" },
		{ 0, SMFIP_NR_CONN, SMFIC_CONNECT, SMFIR_ACCEPT, 0,
		    "gets no reply" },
		{ 0, 0, SMFIC_MACRO, SMFIR_CONTINUE, 0, "gets no reply" },
		{ 0, 0, SMFIC_ABORT, SMFIR_CONTINUE, 0, "gets no reply" },
		{ 0, 0, SMFIC_QUIT, SMFIR_ACCEPT, 0, "gets no reply" },
		{ 0x1ff, 0, SMFIC_BODYEOB, SMFIR_SETSYMLIST, 0, "not a reply" },
		{ 0x1ff, 0, SMFIC_BODYEOB, 'Z', 0, "? is not a reply" },
	};
	struct milter_neg	*n = calloc(1, sizeof(*n));
	struct milter_reply	*r = calloc(1, sizeof(*r));
	char			 why[MILTER_ERROR_MAX];
	size_t			 i;
	int			 ok;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n->version = 6;
		n->actions = t[i].actions;
		n->protocol = t[i].protocol;
		r->code = t[i].code;
		why[0] = '\0';
		ok = milter_reply_allowed(n, t[i].cmd, r, why, sizeof(why));
		CHECK(ok == t[i].ok, "allowed %zu (%s after %s): %d want %d "
		    "(%s)", i, milter_reply_name(t[i].code),
		    milter_cmd_name(t[i].cmd), ok, t[i].ok, why);
		if (!ok && t[i].why != NULL)
			CHECK(strstr(why, t[i].why) != NULL, "allowed %zu: [%s] "
			    "want [%s]", i, why, t[i].why);
	}
	CHECK(milter_reply_final(SMFIR_CONTINUE) &&
	    milter_reply_final(SMFIR_REPLYCODE) &&
	    milter_reply_final(SMFIR_SKIP) &&
	    milter_reply_final(SMFIC_OPTNEG) &&
	    !milter_reply_final(SMFIR_ADDHEADER) &&
	    !milter_reply_final(SMFIR_REPLBODY) &&
	    !milter_reply_final(SMFIR_PROGRESS) &&
	    !milter_reply_final(SMFIR_QUARANTINE), "final replies");
	CHECK(milter_stage_of(SMFIC_CONNECT) == SMFIM_CONNECT &&
	    milter_stage_of(SMFIC_MAIL) == SMFIM_ENVFROM &&
	    milter_stage_of(SMFIC_RCPT) == SMFIM_ENVRCPT &&
	    milter_stage_of(SMFIC_DATA) == SMFIM_DATA &&
	    milter_stage_of(SMFIC_EOH) == SMFIM_EOH &&
	    milter_stage_of(SMFIC_BODYEOB) == SMFIM_EOM &&
	    milter_stage_of(SMFIC_HEADER) == -1, "stages of commands");
	free(n);
	free(r);
}

/* ---- names and helpers ---- */

static void
test_names(void)
{
	struct buf	b;
	char		s[64], tiny[8];

	CHECK(strcmp(milter_cmd_name(SMFIC_CONNECT), "SMFIC_CONNECT") == 0 &&
	    strcmp(milter_cmd_name(SMFIC_QUIT_NC), "SMFIC_QUIT_NC") == 0 &&
	    strcmp(milter_cmd_name('y'), "?") == 0, "command names");
	CHECK(strcmp(milter_reply_name(SMFIR_REPLYCODE), "SMFIR_REPLYCODE") ==
	    0 && strcmp(milter_reply_name(SMFIR_ADDRCPT_PAR),
	    "SMFIR_ADDRCPT_PAR") == 0 && strcmp(milter_reply_name(
	    SMFIC_OPTNEG), "SMFIC_OPTNEG") == 0 &&
	    strcmp(milter_reply_name(-1), "?") == 0, "reply names");
	CHECK(strcmp(milter_stage_name(SMFIM_EOH), "SMFIM_EOH") == 0 &&
	    strcmp(milter_stage_name(7), "?") == 0, "stage names");
	CHECK(strcmp(milter_actions_str(s, sizeof(s), SMFIF_ADDHDRS |
	    SMFIF_CHGFROM), "ADDHDRS,CHGFROM") == 0, "actions: %s", s);
	CHECK(strcmp(milter_actions_str(s, sizeof(s), 0), "-") == 0,
	    "no actions: %s", s);
	CHECK(strcmp(milter_protocol_str(s, sizeof(s), SMFIP_NOHELO |
	    SMFIP_MDS_1M | SMFIP_HDR_LEADSPC), "NOHELO,HDR_LEADSPC,"
	    "0x20000000") == 0, "protocol: %s", s);
	milter_protocol_str(tiny, sizeof(tiny), SMFIP_NOCONNECT |
	    SMFIP_NOHELO);
	CHECK(strlen(tiny) < sizeof(tiny), "cut short, still a string");

	buf_init(&b, 1024);
	CHECK(milter_header_value_crlf(&b, LIT("a;\n\tb=1;\r\n c\n d")) == 0,
	    "crlf folds");
	expect("crlf folds", &b, LIT("a;\r\n\tb=1;\r\n c\r\n d"));
	CHECK(milter_header_value_crlf(&b, LIT("plain")) == 0, "no folds");
	expect("no folds", &b, LIT("plain"));
	buf_free(&b);
}

/*
 * Envelope edits (milter.c): each case starts from one client envelope
 * and applies one milter result's edits in order; the sender and the
 * recipients are compared as paths, with their parameters.
 */
struct env_case {
	const char	*name;
	struct milter_env_edit edits[4];
	size_t		 nedits;
	size_t		 max;
	int		 rc;		/* 0, or -1 with E2BIG */
	const char	*sender;	/* after */
	const char	*sender_args;
	int		 changed;
	const char	*rcpts;		/* "<a> <b>" */
};

static void
env_check(const struct env_case *t)
{
	static char		*rcpts[] = { "<alice@example.org>",
				    "<Bob@Example.ORG>" };
	struct milter_envelope	 e;
	struct milter_result	 r;
	char			 got[512];
	size_t			 i, l = 0;
	int			 rc;

	memset(&r, 0, sizeof(r));
	r.env = (struct milter_env_edit *)t->edits;
	r.nenv = t->nedits;
	CHECK(milter_envelope_init(&e, "<s@example.org>", rcpts, 2) == 0,
	    "%s: init", t->name);
	errno = 0;
	rc = milter_envelope_edit(&e, &r, t->max);
	CHECK(rc == t->rc && (rc == 0 || errno == E2BIG), "%s: rc %d errno %d",
	    t->name, rc, errno);
	got[0] = '\0';
	for (i = 0; i < e.nrcpt && l < sizeof(got); i++)
		l += (size_t)snprintf(got + l, sizeof(got) - l, "%s%s%s%s",
		    i ? " " : "", e.rcpt[i], e.rcpt_args[i] ? "+" : "",
		    e.rcpt_args[i] ? e.rcpt_args[i] : "");
	CHECK(strcmp(got, t->rcpts) == 0, "%s: rcpts [%s] want [%s]", t->name,
	    got, t->rcpts);
	CHECK(strcmp(e.sender, t->sender) == 0, "%s: sender %s want %s",
	    t->name, e.sender, t->sender);
	CHECK(e.sender_changed == t->changed, "%s: changed %d", t->name,
	    e.sender_changed);
	CHECK((t->sender_args == NULL && e.sender_args == NULL) ||
	    (t->sender_args != NULL && e.sender_args != NULL &&
	    strcmp(t->sender_args, e.sender_args) == 0), "%s: sender args %s",
	    t->name, e.sender_args ? e.sender_args : "(none)");
	milter_envelope_free(&e);
}

static void
test_envelope(void)
{
	static const struct env_case t[] = {
		{ "no edits", { { 0 } }, 0, 100, 0, "<s@example.org>", NULL,
		    0, "<alice@example.org> <Bob@Example.ORG>" },
		{ "add, without <>", { { SMFIR_ADDRCPT, "carol@example.org",
		    NULL } }, 1, 100, 0, "<s@example.org>", NULL, 0,
		    "<alice@example.org> <Bob@Example.ORG> "
		    "<carol@example.org>" },
		{ "add with parameters", { { SMFIR_ADDRCPT_PAR,
		    "<carol@example.org>", "NOTIFY=NEVER" } }, 1, 100, 0,
		    "<s@example.org>", NULL, 0, "<alice@example.org> "
		    "<Bob@Example.ORG> <carol@example.org>+NOTIFY=NEVER" },
		{ "add one already there (any case)", { { SMFIR_ADDRCPT,
		    "<ALICE@example.org>", NULL } }, 1, 100, 0,
		    "<s@example.org>", NULL, 0,
		    "<alice@example.org> <Bob@Example.ORG>" },
		{ "delete, other case, no <>", { { SMFIR_DELRCPT,
		    "bob@example.org", NULL } }, 1, 100, 0, "<s@example.org>",
		    NULL, 0, "<alice@example.org>" },
		{ "delete all", { { SMFIR_DELRCPT, "<alice@example.org>",
		    NULL }, { SMFIR_DELRCPT, "<bob@example.org>", NULL } }, 2,
		    100, 0, "<s@example.org>", NULL, 0, "" },
		{ "delete one not there", { { SMFIR_DELRCPT,
		    "<nobody@example.org>", NULL } }, 1, 100, 0,
		    "<s@example.org>", NULL, 0,
		    "<alice@example.org> <Bob@Example.ORG>" },
		{ "delete then add back", { { SMFIR_DELRCPT,
		    "<alice@example.org>", NULL }, { SMFIR_ADDRCPT,
		    "<alice@example.org>", NULL } }, 2, 100, 0,
		    "<s@example.org>", NULL, 0,
		    "<Bob@Example.ORG> <alice@example.org>" },
		{ "change sender", { { SMFIR_CHGFROM, "new@example.org",
		    NULL } }, 1, 100, 0, "<new@example.org>", NULL, 1,
		    "<alice@example.org> <Bob@Example.ORG>" },
		{ "change sender with parameters", { { SMFIR_CHGFROM,
		    "<new@example.org>", "BODY=8BITMIME" } }, 1, 100, 0,
		    "<new@example.org>", "BODY=8BITMIME", 1,
		    "<alice@example.org> <Bob@Example.ORG>" },
		{ "null sender", { { SMFIR_CHGFROM, "<>", NULL } }, 1, 100, 0,
		    "<>", NULL, 1, "<alice@example.org> <Bob@Example.ORG>" },
		{ "past max recipients", { { SMFIR_ADDRCPT,
		    "<carol@example.org>", NULL }, { SMFIR_ADDRCPT,
		    "<dave@example.org>", NULL } }, 2, 3, -1, "<s@example.org>",
		    NULL, 0, "<alice@example.org> <Bob@Example.ORG> "
		    "<carol@example.org>" },
	};
	size_t	i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		env_check(&t[i]);
	CHECK(milter_addr_eq("<A@B.c>", "a@b.C") && !milter_addr_eq("<a@b>",
	    "<a@bb>") && milter_addr_eq("<>", "<>"), "milter_addr_eq");
}

void
test_milter(void)
{
	test_envelope();
	test_encoders();
	test_reader();
	test_reply_cases();
	test_reply_fields();
	test_negotiate();
	test_allowed();
	test_names();
}
