/* SPDX-License-Identifier: MIT */
/*
 * The shape of a journal copy: Maildir names (unique parts, the host
 * escaped, too long refused) and the envelope lines (order, CRLF, control
 * bytes that could end a line replaced).
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
	const char		*want;
} env_cases[] = {
	{ { "<sender@client.example.test>", rcpts2, 2, "10.25.0.1:4242",
	    "10.25.0.2:25" },
	  "X-Spork-Journal-Sender: <sender@client.example.test>\r\n"
	  "X-Spork-Journal-Recipient: <alice@example.test>\r\n"
	  "X-Spork-Journal-Recipient: <bob@example.test>\r\n"
	  "X-Spork-Journal-Client: 10.25.0.1:4242\r\n"
	  "X-Spork-Journal-Server: 10.25.0.2:25\r\n" },
	{ { "<>", rcpts_evil, 1, "[fd25::1]:5000", "[fd25::2]:25" },
	  "X-Spork-Journal-Sender: <>\r\n"
	  "X-Spork-Journal-Recipient: <a@x??Bcc: <eve@y>>\r\n"
	  "X-Spork-Journal-Client: [fd25::1]:5000\r\n"
	  "X-Spork-Journal-Server: [fd25::2]:25\r\n" },
};

void
test_journal(void)
{
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
		rc = journal_envelope_format(&b, &env_cases[i].env);
		CHECK(rc == 0 && buf_used(&b) == strlen(env_cases[i].want) &&
		    memcmp(buf_head(&b), env_cases[i].want, buf_used(&b)) == 0,
		    "envelope case %zu: got %.*s", i, (int)buf_used(&b),
		    buf_head(&b));
		buf_free(&b);
	}
	/* A buffer too small is an error, never a cut line. */
	buf_init(&b, 40);
	CHECK(journal_envelope_format(&b, &env_cases[0].env) == -1,
	    "envelope over the buffer's maximum");
	buf_free(&b);
}
