/* SPDX-License-Identifier: MIT */
/*
 * Spam engine replies: the first byte picks the parser (even: rspamd's
 * HTTP + JSON, odd: spamd's SPAMD), the rest is what the engine sent. Each
 * input is parsed as the client parses it, with the connection open and
 * closed.
 *
 * Invariants:
 *  - the result is 0 (more), 1 (scored) or -1 (error), and with the
 *    connection closed never 0: a closed engine always gets a decision;
 *  - 1 and only 1 sets ok, with a finite score and threshold within
 *    +-1e6; a reply complete while open is the same reply once closed;
 *  - every text taken from the reply (symbols, message, action, error) is
 *    NUL-terminated printable ASCII without quotes or backslashes, so it
 *    can go into a log value, an SMTP reply or a header as it is; symbol
 *    lists hold only name characters, commas and the "..." cut.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "spam.h"
#include "spam_proto.h"
#include "fuzz.h"

static void
check_text(const char *what, const char *s, size_t cap, const char *extra)
{
	size_t	n = strnlen(s, cap), i;

	FUZZ_CHECK(n < cap, "%s not terminated", what);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(s[i] >= 0x20 && s[i] <= 0x7e && s[i] != '"' &&
		    s[i] != '\\', "%s byte %zu is 0x%02x", what, i,
		    (unsigned char)s[i]);
		if (extra != NULL)
			FUZZ_CHECK((s[i] >= 'A' && s[i] <= 'Z') ||
			    (s[i] >= 'a' && s[i] <= 'z') ||
			    (s[i] >= '0' && s[i] <= '9') ||
			    strchr(extra, s[i]) != NULL,
			    "%s byte %zu is '%c'", what, i, s[i]);
	}
}

static void
check_result(int rc, const struct spam_result *r)
{
	FUZZ_CHECK(rc >= -1 && rc <= 1, "result %d", rc);
	FUZZ_CHECK((rc == 1) == (r->ok == 1), "rc %d ok %d", rc, r->ok);
	if (rc == 1)
		FUZZ_CHECK(isfinite(r->score) && fabs(r->score) < 1e6 &&
		    isfinite(r->required) && fabs(r->required) < 1e6,
		    "score %g / %g", r->score, r->required);
	check_text("symbols", r->symbols, sizeof(r->symbols), "_-.?,");
	check_text("message", r->message, sizeof(r->message), NULL);
	check_text("action", r->action, sizeof(r->action), NULL);
	check_text("error", r->error, sizeof(r->error), NULL);
	if (rc == -1)
		FUZZ_CHECK(r->error[0] != '\0', "an error without a reason");
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int	(*parse)(const char *, size_t, int, struct spam_result *);
	struct spam_result	open, closed;
	int			rc0, rc1;

	if (size < 1)
		return 0;
	parse = (data[0] & 1) ? spam_spamd_reply : spam_rspamd_reply;
	data++;
	size--;

	memset(&open, 0, sizeof(open));
	rc0 = parse((const char *)data, size, 0, &open);
	check_result(rc0, &open);
	memset(&closed, 0, sizeof(closed));
	rc1 = parse((const char *)data, size, 1, &closed);
	check_result(rc1, &closed);
	FUZZ_CHECK(rc1 != 0, "closed, and still waiting for more");
	if (rc0 == 1)
		FUZZ_CHECK(rc1 == 1 && closed.score == open.score &&
		    closed.required == open.required &&
		    strcmp(closed.symbols, open.symbols) == 0,
		    "complete while open, different once closed");
	return 0;
}
