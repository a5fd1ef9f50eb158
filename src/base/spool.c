/* SPDX-License-Identifier: MIT */
/*
 * Message storage. Small messages stay in memory; once a message passes
 * the memory threshold it moves to an unnamed (O_TMPFILE, else unlinked)
 * file, so nothing is left behind if the daemon dies. Two budgets over
 * every spool of the process: memory (past it, a message goes to its file
 * at once) and disk (past it, nothing more is stored: ENOSPC). Knows
 * nothing about SMTP: it stores the bytes the framer gives it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spool.h"

static size_t	spool_mem_used, spool_mem_budget;	/* 0: none */
static size_t	spool_disk_used, spool_disk_budget;

void
spool_budgets(size_t mem, size_t disk)
{
	spool_mem_budget = mem;
	spool_disk_budget = disk;
}

int
spool_disk_full(void)
{
	return spool_disk_budget && spool_disk_used >= spool_disk_budget;
}

void
spool_usage(size_t *mem, size_t *disk)
{
	*mem = spool_mem_used;
	*disk = spool_disk_used;
}

/*
 * Memory other than bodies held against the same budget (the recipient
 * lists): -1 with ENOMEM, and nothing charged, past it.
 */
int
spool_mem_charge(size_t n)
{
	if (spool_mem_budget && spool_mem_used + n > spool_mem_budget) {
		errno = ENOMEM;
		return -1;
	}
	spool_mem_used += n;
	return 0;
}

void
spool_mem_release(size_t n)
{
	spool_mem_used -= n;
}

static void
charge_mem(struct spool *sp, size_t n)
{
	sp->charged_mem += n;
	spool_mem_used += n;
}

static int
charge_disk(struct spool *sp, size_t n)
{
	if (spool_disk_budget && spool_disk_used + n > spool_disk_budget) {
		errno = ENOSPC;
		return -1;
	}
	sp->charged_disk += n;
	spool_disk_used += n;
	return 0;
}

static void
uncharge(struct spool *sp)
{
	spool_mem_used -= sp->charged_mem;
	spool_disk_used -= sp->charged_disk;
	sp->charged_mem = sp->charged_disk = 0;
}

void
spool_init(struct spool *sp, const char *dir, size_t mem_max)
{
	sp->mem = NULL;
	sp->memlen = sp->memcap = 0;
	sp->mem_max = mem_max;
	sp->fd = -1;
	sp->size = 0;
	sp->dir = dir;
	sp->charged_mem = sp->charged_disk = 0;
}

void
spool_reset(struct spool *sp)
{
	free(sp->mem); sp->mem = NULL;
	sp->memlen = sp->memcap = 0;
	if (sp->fd != -1) {
		close(sp->fd);
		sp->fd = -1;
	}
	sp->size = 0;
	uncharge(sp);
}

/* The spool now holds size bytes from fd (the spool owns fd). */
void
spool_adopt(struct spool *sp, int fd, size_t size)
{
	spool_reset(sp);
	sp->fd = fd;
	sp->size = size;
	sp->charged_disk = size;	/* over budget or not: it is there */
	spool_disk_used += size;
}

int
spool_in_file(const struct spool *sp)
{
	return sp->fd != -1;
}

static int
spool_open_file(const struct spool *sp)
{
	char	path[4096];
	int	fd;

	fd = open(sp->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd != -1 || (errno != EOPNOTSUPP && errno != EISDIR &&
	    errno != EINVAL))
		return fd;
	if ((size_t)snprintf(path, sizeof(path), "%s/spool.XXXXXX", sp->dir) >=
	    sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(path, O_CLOEXEC)) == -1)
		return -1;
	unlink(path);
	return fd;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
spool_append(struct spool *sp, const void *p, size_t n)
{
	size_t	 ncap;
	char	*m;

	if (sp->fd == -1 && (sp->memlen + n > sp->mem_max ||
	    (spool_mem_budget && spool_mem_used + n > spool_mem_budget))) {
		if (charge_disk(sp, sp->memlen) == -1)
			return -1;
		if ((sp->fd = spool_open_file(sp)) == -1)
			return -1;
		if (write_all(sp->fd, sp->mem, sp->memlen) == -1)
			return -1;
		free(sp->mem); sp->mem = NULL;
		spool_mem_used -= sp->charged_mem;
		sp->charged_mem = 0;
		sp->memlen = sp->memcap = 0;
	}
	if (sp->fd != -1) {
		if (charge_disk(sp, n) == -1)
			return -1;
		if (write_all(sp->fd, p, n) == -1)
			return -1;
		sp->size += n;
		return 0;
	}
	if (sp->memlen + n > sp->memcap) {
		ncap = sp->memcap ? sp->memcap : 4096;
		while (ncap < sp->memlen + n)
			ncap *= 2;
		if (ncap > sp->mem_max)
			ncap = sp->mem_max;
		if ((m = realloc(sp->mem, ncap)) == NULL)
			return -1;
		sp->mem = m;
		charge_mem(sp, ncap - sp->memcap);
		sp->memcap = ncap;
	}
	memcpy(sp->mem + sp->memlen, p, n);
	sp->memlen += n;
	sp->size += n;
	return 0;
}

ssize_t
spool_read(const struct spool *sp, size_t off, void *p, size_t n)
{
	if (off >= sp->size)
		return 0;
	if (n > sp->size - off)
		n = sp->size - off;
	if (sp->fd != -1)
		return pread(sp->fd, p, n, (off_t)off);
	memcpy(p, sp->mem + off, n);
	return (ssize_t)n;
}

/*
 * The message as a descriptor, for a scanner in another process: a
 * message still in memory moves into a memfd (the heap copy is freed).
 */
int
spool_fd(struct spool *sp)
{
	int	fd;

	if (sp->fd != -1)
		return sp->fd;
	if ((fd = memfd_create("spork-message", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1)
		return -1;
	if (write_all(fd, sp->mem, sp->memlen) == -1) {
		close(fd);
		return -1;
	}
	free(sp->mem); sp->mem = NULL;
	/* The memfd is memory still: charged for its bytes. */
	spool_mem_used -= sp->charged_mem - sp->memlen;
	sp->charged_mem = sp->memlen;
	sp->memlen = sp->memcap = 0;
	sp->fd = fd;
	return fd;
}

/*
 * The message behind fd for another process to read: a descriptor opened
 * read-only, and a memfd sealed against writes as well (a read-only
 * descriptor to a memfd can be reopened for writing through /proc; a
 * spool file is the relay's, mode 0600, which another user cannot reopen).
 * The spool takes no more bytes once sealed.
 */
int
spool_readonly(int fd)
{
	char	path[32], link[16];
	ssize_t	n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	/* Only a memfd is sealed (a file on tmpfs refuses seals with
	 * EPERM, as does a memfd made without MFD_ALLOW_SEALING: that one
	 * is refused here rather than handed over writable). */
	if ((n = readlink(path, link, sizeof(link))) >= 7 &&
	    memcmp(link, "/memfd:", 7) == 0 && fcntl(fd, F_ADD_SEALS,
	    F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == -1)
		return -1;
	return open(path, O_RDONLY | O_CLOEXEC);
}
