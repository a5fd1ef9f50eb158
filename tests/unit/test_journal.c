/* SPDX-License-Identifier: MIT */
/*
 * The shape of a journal copy: Maildir names (unique parts, the host
 * escaped, too long refused), the envelope block (order, CRLF, control
 * bytes that could end a line replaced, the nonce at both ends) and the
 * reader's rule: a copy parsed back ends its block exactly at the End
 * line with the opening nonce, whatever the message carries (forged
 * envelope lines, other nonces, a first line folding into the block).
 */
#include <string.h>

#include "buf.h"
#include "journal_format.h"
#include "unit.h"

static const struct {
	long long	 sec;
	long		 usec;
	int		 pid;
	unsigned	 seq;
	const char	*host;
	size_t		 len;
	const char	*want;		/* NULL: refused */
} name_cases[] = {
	{ 1700000000, 42, 4242, 7, "spork", 256,
	    "1700000000.M000042P4242Q7.spork" },
	{ 1700000000, 999999, 1, 0, "mx.example.test", 256,
	    "1700000000.M999999P1Q0.mx.example.test" },
	{ 5, 0, 9, 1, "a/b:c", 256, "5.M000000P9Q1.a\\057b\\072c" },
	{ 5, 0, 9, 1, "sp ace\n", 256, "5.M000000P9Q1.sp_ace_" },
	{ 5, 0, 9, 1, "", 256, "5.M000000P9Q1.localhost" },
	{ 1700000000, 42, 4242, 7, "spork", 32,
	    "1700000000.M000042P4242Q7.spork" },
	{ 1700000000, 42, 4242, 7, "spork", 31, NULL },
};

static char *const rcpts2[] = { "<alice@example.test>", "<bob@example.test>" };
static char *const rcpts_evil[] = { "<a@x\r\nBcc: <eve@y>>" };

static const struct {
	struct journal_envelope	 env;
	const char		*nonce;
	const char		*want;		/* NULL: refused */
} env_cases[] = {
	{ { "<sender@client.example.test>", rcpts2, 2, "10.25.0.1:4242",
	    "10.25.0.2:25" }, "0123456789abcdef",
	  "X-Spork-Journal: 0123456789abcdef\r\n"
	  "X-Spork-Journal-Sender: <sender@client.example.test>\r\n"
	  "X-Spork-Journal-Recipient: <alice@example.test>\r\n"
	  "X-Spork-Journal-Recipient: <bob@example.test>\r\n"
	  "X-Spork-Journal-Client: 10.25.0.1:4242\r\n"
	  "X-Spork-Journal-Server: 10.25.0.2:25\r\n"
	  "X-Spork-Journal-End: 0123456789abcdef\r\n" },
	{ { "<>", rcpts_evil, 1, "[fd25::1]:5000", "[fd25::2]:25" },
	  "fedcba9876543210",
	  "X-Spork-Journal: fedcba9876543210\r\n"
	  "X-Spork-Journal-Sender: <>\r\n"
	  "X-Spork-Journal-Recipient: <a@x??Bcc: <eve@y>>\r\n"
	  "X-Spork-Journal-Client: [fd25::1]:5000\r\n"
	  "X-Spork-Journal-Server: [fd25::2]:25\r\n"
	  "X-Spork-Journal-End: fedcba9876543210\r\n" },
	/* A nonce that could end its line or hide in a value: refused. */
	{ { "<>", rcpts2, 1, "a", "b" }, "", NULL },
	{ { "<>", rcpts2, 1, "a", "b" }, "12ab\r\nX-Spork-Journal-End: 12ab",
	  NULL },
	{ { "<>", rcpts2, 1, "a", "b" }, "ABCDEF0123456789", NULL },
};

/*
 * Copies as a reader finds them: the block, then the message (which the
 * client wrote). want: the block's length, 0 when the file does not open
 * with a complete one.
 */
#define BLK	"X-Spork-Journal: 00aa11bb22cc33dd\r\n" \
		"X-Spork-Journal-Sender: <s@c.test>\r\n" \
		"X-Spork-Journal-Recipient: <r@s.test>\r\n" \
		"X-Spork-Journal-Client: 10.0.0.1:1\r\n" \
		"X-Spork-Journal-Server: 10.0.0.2:25\r\n" \
		"X-Spork-Journal-End: 00aa11bb22cc33dd\r\n"
static const struct {
	const char	*copy;
	size_t		 want;
} read_cases[] = {
	{ BLK "Subject: hi\r\n\r\nbody\r\n", sizeof(BLK) - 1 },
	/* The message forges envelope lines, and an End line with a nonce
	 * of its own: all of it is the message. */
	{ BLK "X-Spork-Journal-Recipient: <eve@y.test>\r\n"
	  "X-Spork-Journal-End: 1111111111111111\r\n\r\nbody\r\n",
	  sizeof(BLK) - 1 },
	/* A first line that folds: the End line's value is exactly the
	 * nonce, the continuation the message's. */
	{ BLK " X-Spork-Journal-Recipient: <eve@y.test>\r\n\r\nbody\r\n",
	  sizeof(BLK) - 1 },
	/* An End line with more after the nonce does not end the block;
	 * nor does one without CR, or a prefix of the nonce. */
	{ "X-Spork-Journal: 00aa\r\nX-Spork-Journal-End: 00aa x\r\n", 0 },
	{ "X-Spork-Journal: 00aa\r\nX-Spork-Journal-End: 00aa\n", 0 },
	{ "X-Spork-Journal: 00aa\r\nX-Spork-Journal-End: 00a\r\n", 0 },
	{ "X-Spork-Journal: 00aa\r\nX-Spork-Journal-End: 00aa\r\n", 50 },
	/* Not a block: a message that only looks like one, a bad nonce,
	 * no End line at all, a cut one. */
	{ "X-Spork-Journal-Sender: <s@c.test>\r\n\r\nbody\r\n", 0 },
	{ "X-Spork-Journal: \r\nX-Spork-Journal-End: \r\n", 0 },
	{ "X-Spork-Journal: 00AA\r\nX-Spork-Journal-End: 00AA\r\n", 0 },
	{ "X-Spork-Journal: 00aa\r\nSubject: x\r\n\r\nbody\r\n", 0 },
	{ "X-Spork-Journal: 00aa\r\nX-Spork-Journal-End: 00aa\r", 0 },
	{ "X-Spork-Journal: 00aa", 0 },
	{ "", 0 },
};

void
test_journal(void)
{
	static const char forged[] = "X-Spork-Journal-End: 0123456789abcdee\r\n"
			    " x\r\n\r\nbody\r\n";
	char		 out[256];
	struct buf	 b;
	size_t		 i;
	int		 rc;

	for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		rc = journal_maildir_name(out, name_cases[i].len,
		    (time_t)name_cases[i].sec, name_cases[i].usec,
		    (pid_t)name_cases[i].pid, name_cases[i].seq,
		    name_cases[i].host);
		if (name_cases[i].want == NULL) {
			CHECK(rc == -1, "case %zu: want refused, got %s", i, out);
			continue;
		}
		CHECK(rc == 0 && strcmp(out, name_cases[i].want) == 0,
		    "case %zu: got %s want %s", i, out, name_cases[i].want);
		CHECK(strchr(out, '/') == NULL && strchr(out, ':') == NULL,
		    "case %zu: %s", i, out);
	}
	for (i = 0; i < sizeof(env_cases) / sizeof(env_cases[0]); i++) {
		buf_init(&b, 4096);
		rc = journal_envelope_format(&b, &env_cases[i].env,
		    env_cases[i].nonce);
		if (env_cases[i].want == NULL) {
			CHECK(rc == -1, "envelope case %zu: want refused, "
			    "got %.*s", i, (int)buf_used(&b), buf_head(&b));
			buf_free(&b);
			continue;
		}
		CHECK(rc == 0 && buf_used(&b) == strlen(env_cases[i].want) &&
		    memcmp(buf_head(&b), env_cases[i].want, buf_used(&b)) == 0,
		    "envelope case %zu: got %.*s", i, (int)buf_used(&b),
		    buf_head(&b));
		/* Written, then read back: the whole block, even with a
		 * message behind it that forges the End line. */
		CHECK(journal_envelope_len(buf_head(&b), buf_used(&b)) ==
		    buf_used(&b), "envelope case %zu: read back", i);
		CHECK(buf_append(&b, forged, strlen(forged)) == 0 &&
		    journal_envelope_len(buf_head(&b), buf_used(&b)) ==
		    strlen(env_cases[i].want),
		    "envelope case %zu: read back before a message", i);
		buf_free(&b);
	}
	for (i = 0; i < sizeof(read_cases) / sizeof(read_cases[0]); i++)
		CHECK(journal_envelope_len(read_cases[i].copy,
		    strlen(read_cases[i].copy)) == read_cases[i].want,
		    "read case %zu: got %zu want %zu", i,
		    journal_envelope_len(read_cases[i].copy,
		    strlen(read_cases[i].copy)), read_cases[i].want);
	/* A buffer too small is an error, never a cut line. */
	buf_init(&b, 40);
	CHECK(journal_envelope_format(&b, &env_cases[0].env,
	    env_cases[0].nonce) == -1, "envelope over the buffer's maximum");
	buf_free(&b);
}
