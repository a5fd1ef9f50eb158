/* SPDX-License-Identifier: MIT */
#ifndef SPORK_BUF_H
#define SPORK_BUF_H

#include <stddef.h>
#include <sys/types.h>

/*
 * A byte queue with a hard maximum. Bytes live in data[off, len).
 * Storage is allocated on first use and released when the queue drains,
 * so an idle connection holds no buffer memory.
 */
struct buf {
	char	*data;
	size_t	 off;
	size_t	 len;
	size_t	 cap;
	size_t	 max;
};

void	 buf_init(struct buf *, size_t max);
void	 buf_free(struct buf *);
size_t	 buf_used(const struct buf *);
size_t	 buf_room(const struct buf *);
char	*buf_head(const struct buf *);
int	 buf_append(struct buf *, const void *, size_t);
int	 buf_append_escaped(struct buf *, const char *, size_t);
int	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 buf_consume(struct buf *, size_t);
void	 buf_clear(struct buf *);
ssize_t	 buf_read_fd(struct buf *, int fd);
ssize_t	 buf_write_fd(struct buf *, int fd);

#endif
