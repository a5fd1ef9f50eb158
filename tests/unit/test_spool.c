/* SPDX-License-Identifier: MIT */
/* The spool moves from memory to a file at its threshold, losslessly. */
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "unit.h"

void
test_spool(void)
{
	struct spool	sp;
	char		chunk[1000], back[1000];
	size_t		i, off;
	ssize_t		n;
	int		ok = 1;

	spool_init(&sp, "/tmp", 4096);
	for (i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)(i * 7);
	for (i = 0; i < 4; i++)
		CHECK(spool_append(&sp, chunk, sizeof(chunk)) == 0, "append");
	CHECK(!spool_in_file(&sp), "4000 bytes stay in memory");
	CHECK(spool_append(&sp, chunk, sizeof(chunk)) == 0, "append 5");
	CHECK(spool_in_file(&sp), "5000 bytes moved to a file");
	CHECK(sp.mem == NULL, "memory released after the move");
	for (i = 0; i < 100; i++)
		CHECK(spool_append(&sp, chunk, sizeof(chunk)) == 0, "append");
	CHECK(sp.size == 105000, "size %zu", sp.size);
	for (off = 0; off < sp.size; off += sizeof(back)) {
		n = spool_read(&sp, off, back, sizeof(back));
		if (n != (ssize_t)sizeof(back) ||
		    memcmp(back, chunk, sizeof(back)) != 0)
			ok = 0;
	}
	CHECK(ok, "content read back");
	CHECK(spool_read(&sp, sp.size, back, 1) == 0, "read at end");
	spool_reset(&sp);
	CHECK(sp.size == 0 && sp.fd == -1, "reset");
	CHECK(spool_append(&sp, "x", 1) == 0 && !spool_in_file(&sp),
	    "reuse after reset");
	spool_reset(&sp);
}
