/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SPOOL_H
#define SPORK_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

/*
 * One message body: in memory up to mem_max bytes, then in an unnamed
 * file in the spool directory. RAM stays bounded whatever the size.
 */
struct spool {
	char		*mem;
	size_t		 memlen;
	size_t		 memcap;
	size_t		 mem_max;
	int		 fd;		/* -1 while in memory */
	size_t		 size;		/* total bytes */
	const char	*dir;
	size_t		 charged_mem;	/* against the process's budgets */
	size_t		 charged_disk;
};

void	spool_init(struct spool *, const char *dir, size_t mem_max);
void	spool_reset(struct spool *);
int	spool_append(struct spool *, const void *, size_t);
ssize_t	spool_read(const struct spool *, size_t off, void *, size_t);
int	spool_in_file(const struct spool *);
void	spool_adopt(struct spool *, int fd, size_t size);
int	spool_fd(struct spool *);
int	spool_readonly(int fd);
void	spool_budgets(size_t mem, size_t disk);
int	spool_mem_charge(size_t);
void	spool_mem_release(size_t);
int	spool_disk_full(void);
void	spool_usage(size_t *mem, size_t *disk);

#endif
