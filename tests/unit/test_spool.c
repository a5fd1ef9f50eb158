/* SPDX-License-Identifier: MIT */
/* The spool moves from memory to a file at its threshold, losslessly. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	/* Recipient lists share the memory budget, which a is filling. */
	CHECK(spool_mem_charge(1) == -1 && errno == ENOMEM,
	    "a recipient past the memory budget refused with ENOMEM");
	spool_reset(&a);
	CHECK(spool_mem_charge(8000) == 0, "recipients charged once a left");
	CHECK(spool_mem_charge(193) == -1, "... up to the budget");
	spool_mem_release(8000);
	spool_reset(&b);
	spool_usage(&mem, &disk);
	CHECK(mem == 0 && disk == 0, "all given back: mem %zu disk %zu", mem,
	    disk);
	spool_budgets(0, 0);
}

/*
 * What a scan worker gets cannot change what the relay delivers: neither
 * through the descriptor nor by reopening it for writing through /proc.
 */
static void
test_spool_readonly_one(struct spool *sp, const char *what)
{
	char	path[32], back[8];
	int	fd, ro, rw;

	fd = spool_fd(sp);
	CHECK(fd != -1, "%s: spool_fd", what);
	ro = spool_readonly(fd);
	CHECK(ro != -1, "%s: spool_readonly: %s", what, strerror(errno));
	if (ro == -1)
		return;
	CHECK(write(ro, "EVIL", 4) == -1 && errno == EBADF,
	    "%s: the read-only descriptor took a write", what);
	CHECK(pread(ro, back, 4, 0) == 4 && memcmp(back, "Subj", 4) == 0,
	    "%s: read back", what);
	/* A memfd reopened for writing through /proc (a spool file is
	 * protected by its owner and mode 0600, which root here is not
	 * subject to). */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ro);
	if (!spool_in_file(sp) && (rw = open(path, O_RDWR)) != -1) {
		CHECK(pwrite(rw, "EVIL", 4, 0) == -1 && errno == EPERM,
		    "%s: reopened through /proc and written", what);
		close(rw);
	}
	CHECK(pread(fd, back, 4, 0) == 4 && memcmp(back, "Subj", 4) == 0,
	    "%s: the message changed", what);
	close(ro);
}

static void
test_spool_readonly(void)
{
	struct spool	sp;
	char		big[8192];

	spool_init(&sp, "/tmp", 4096);
	CHECK(spool_append(&sp, "Subject: x\r\n\r\nbody\r\n", 20) == 0,
	    "append");
	test_spool_readonly_one(&sp, "memfd");
	spool_reset(&sp);
	memset(big, 'a', sizeof(big));
	memcpy(big, "Subject: big\r\n\r\n", 16);
	CHECK(spool_append(&sp, big, sizeof(big)) == 0 && spool_in_file(&sp),
	    "append to a file");
	test_spool_readonly_one(&sp, "file");
	spool_reset(&sp);
	/* A spool_dir on tmpfs (which refuses seals on its files). */
	spool_init(&sp, "/dev/shm", 4096);
	if (spool_append(&sp, big, sizeof(big)) == 0 && spool_in_file(&sp))
		test_spool_readonly_one(&sp, "file on tmpfs");
	spool_reset(&sp);
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
	test_spool_readonly();
}
