/* SPDX-License-Identifier: MIT */
/* The spool moves from memory to a file at its threshold, losslessly. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "unit.h"

/* The budgets over all spools: memory overflows to files, disk refuses. */
static void
test_spool_budgets(void)
{
	struct spool	a, b;
	char		chunk[4096], back[4096];
	size_t		mem, disk;

	memset(chunk, 'x', sizeof(chunk));
	spool_budgets(8192, 20000);
	spool_init(&a, "/tmp", 65536);
	spool_init(&b, "/tmp", 65536);
	CHECK(spool_append(&a, chunk, 4096) == 0 && !spool_in_file(&a),
	    "a: in memory");
	CHECK(spool_append(&a, chunk, 4096) == 0, "a: 8 KiB");
	/* b finds the memory budget taken: to its file at once. */
	CHECK(spool_append(&b, chunk, 4096) == 0 && spool_in_file(&b),
	    "b: over the memory budget, in a file");
	CHECK(spool_read(&b, 0, back, 4096) == 4096 &&
	    memcmp(back, chunk, 4096) == 0, "b: bytes kept");
	spool_usage(&mem, &disk);
	CHECK(mem == 8192 && disk == 4096, "usage mem %zu disk %zu", mem, disk);
	CHECK(spool_append(&b, chunk, 4096) == 0 &&
	    spool_append(&b, chunk, 4096) == 0 &&
	    spool_append(&b, chunk, 4096) == 0, "b: 16 KiB on disk");
	CHECK(!spool_disk_full(), "not full at 16 KiB of 20000");
	CHECK(spool_append(&b, chunk, 4096) == -1 && errno == ENOSPC,
	    "b: past the disk budget refused with ENOSPC");
	spool_reset(&a);
	spool_reset(&b);
	spool_usage(&mem, &disk);
	CHECK(mem == 0 && disk == 0, "all given back: mem %zu disk %zu", mem,
	    disk);
	spool_budgets(0, 0);
}

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
	test_spool_budgets();
}
