/* SPDX-License-Identifier: MIT */
/* Escaping for the admin's terminal: what was there, and nothing that acts. */
#include <string.h>

#include "buf.h"
#include "unit.h"

void
test_buf(void)
{
	static const struct {
		const char	*in;
		size_t		 len;
		const char	*want;
	} t[] = {
		{ "Subject: hello", 14, "Subject: hello" },
		{ "a\x1b[2Jb", 6, "a\\x1b[2Jb" },
		{ "x\r\ny", 4, "x\\x0d\\x0ay" },
		{ "back\\slash", 10, "back\\\\slash" },
		{ "nul\0del\x7f", 8, "nul\\x00del\\x7f" },
		{ "\xc3\xa9\x9b", 3, "\\xc3\\xa9\\x9b" },
		{ "", 0, "" },
	};
	struct buf	b;
	size_t		i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		buf_init(&b, 1024);
		CHECK(buf_append_escaped(&b, t[i].in, t[i].len) == 0,
		    "escape %zu", i);
		CHECK(buf_used(&b) == strlen(t[i].want) && (buf_used(&b) == 0 ||
		    memcmp(buf_head(&b), t[i].want, buf_used(&b)) == 0),
		    "escape %zu: [%.*s] want [%s]", i, (int)buf_used(&b),
		    buf_used(&b) ? buf_head(&b) : "", t[i].want);
		buf_free(&b);
	}
	buf_init(&b, 8);
	CHECK(buf_append_escaped(&b, "\x01\x02\x03", 3) == -1,
	    "escape past the buffer's maximum");
	buf_free(&b);
}
