/* SPDX-License-Identifier: MIT */
/*
 * Bounded byte queues for socket I/O. Every queue has a maximum; an append
 * past it fails with ENOBUFS and the caller decides what that means for the
 * protocol. Nothing here knows about SMTP.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"

#define BUF_MIN_CAP	512
#define BUF_READ_CHUNK	16384

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->off = b->len = b->cap = 0;
	b->max = max;
}

void
buf_free(struct buf *b)
{
	free(b->data); b->data = NULL;
	b->off = b->len = b->cap = 0;
}

size_t
buf_used(const struct buf *b)
{
	return b->len - b->off;
}

size_t
buf_room(const struct buf *b)
{
	return b->max - buf_used(b);
}

char *
buf_head(const struct buf *b)
{
	return b->data + b->off;
}

/* Make room for n more bytes at the tail, compacting or growing. */
static int
buf_reserve(struct buf *b, size_t n)
{
	size_t	 used = buf_used(b), ncap;
	char	*p;

	if (n > b->max - used) {
		errno = ENOBUFS;
		return -1;
	}
	if (b->len + n <= b->cap)
		return 0;
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
		if (b->len + n <= b->cap)
			return 0;
	}
	ncap = b->cap ? b->cap : BUF_MIN_CAP;
	while (ncap < used + n)
		ncap *= 2;
	if (ncap > b->max)
		ncap = b->max;
	if ((p = realloc(b->data, ncap)) == NULL)
		return -1;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (buf_reserve(b, n) == -1)
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	char	 tmp[1024];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		errno = EMSGSIZE;
		return -1;
	}
	return buf_append(b, tmp, (size_t)n);
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= buf_used(b)) {
		buf_clear(b);
		return;
	}
	b->off += n;
}

/* Drained queues give their memory back: idle sessions must stay small. */
void
buf_clear(struct buf *b)
{
	buf_free(b);
}

/*
 * Read through a stack buffer so that only bytes actually received take
 * heap space: thousands of idle sessions must not each pin a read chunk.
 */
ssize_t
buf_read_fd(struct buf *b, int fd)
{
	char	tmp[BUF_READ_CHUNK];
	size_t	want = buf_room(b);
	ssize_t	n;

	if (want == 0) {
		errno = ENOBUFS;
		return -1;
	}
	if (want > sizeof(tmp))
		want = sizeof(tmp);
	n = read(fd, tmp, want);
	if (n > 0 && buf_append(b, tmp, (size_t)n) == -1)
		return -1;
	return n;
}

ssize_t
buf_write_fd(struct buf *b, int fd)
{
	ssize_t	n;

	if (buf_used(b) == 0)
		return 0;
	n = send(fd, buf_head(b), buf_used(b), MSG_NOSIGNAL);
	if (n > 0)
		buf_consume(b, (size_t)n);
	return n;
}

/*
 * Append n bytes with every control byte, DEL, backslash and byte above
 * 0x7e written as \xHH (a backslash as \\): what a terminal shows of it
 * is what was there, and nothing in it can move the cursor or end a line.
 */
int
buf_append_escaped(struct buf *b, const char *p, size_t n)
{
	static const char	hex[] = "0123456789abcdef";
	char			esc[4];
	unsigned char		c;
	size_t			i, run = 0;

	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			continue;
		if (buf_append(b, p + run, i - run) == -1)
			return -1;
		if (c == '\\') {
			if (buf_append(b, "\\\\", 2) == -1)
				return -1;
		} else {
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[c >> 4];
			esc[3] = hex[c & 15];
			if (buf_append(b, esc, 4) == -1)
				return -1;
		}
		run = i + 1;
	}
	return buf_append(b, p + run, n - run);
}
