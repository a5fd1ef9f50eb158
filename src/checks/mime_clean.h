/* SPDX-License-Identifier: MIT */
#ifndef SPORK_MIME_CLEAN_H
#define SPORK_MIME_CLEAN_H

#include <stddef.h>

#define MIME_CLEAN_NAMES	256	/* names of what was removed, joined */

/*
 * Scans one decoded MIME part: 1 infected (name filled), 0 clean, -1 the
 * part could not be scanned (name says why).
 */
typedef int	mime_scan_fn(void *arg, const void *data, size_t len,
		    char *name, size_t namelen);

struct mime_clean_result {
	unsigned	parts;		/* leaf parts scanned */
	unsigned	removed;	/* of which replaced by a notice */
	char		names[MIME_CLEAN_NAMES];
	size_t		size;		/* bytes written to the output */
};

struct _GMimeMessage;

void	mime_clean_init(void);
int	mime_write(struct _GMimeMessage *, int outfd, size_t *size, char *err,
	    size_t errlen);
int	mime_clean(int fd, size_t size, int outfd, mime_scan_fn *, void *arg,
	    struct mime_clean_result *, char *err, size_t errlen);

#endif
