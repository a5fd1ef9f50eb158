/* SPDX-License-Identifier: MIT */
#ifndef SPORK_GREYLIST_H
#define SPORK_GREYLIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define GREYLIST_KEY_MAX	600
#define GREYLIST_ENTRIES_MAX	(1024 * 1024)

enum greylist_verdict {
	GL_NEW,		/* first sight: 450 */
	GL_EARLY,	/* retried before greylist_min: 450 */
	GL_PASSED,	/* retried within the window: accepted from now on */
	GL_KNOWN,	/* passed before */
	GL_ERROR,	/* the store did not answer: accepted */
};

struct greylist_times {
	unsigned	min;		/* seconds */
	unsigned	max;
	unsigned	expiry;
};

struct greylist_rec {
	int64_t		first;		/* first attempt, epoch seconds */
	int64_t		last;		/* last attempt */
	unsigned	passed;		/* 0 while greylisted */
};

struct greylist_store;

const char *greylist_verdict_name(enum greylist_verdict);
int	greylist_key(const struct sockaddr_storage *, const char *sender,
	    const char *rcpt, char *out, size_t len);
enum greylist_verdict greylist_decide(struct greylist_rec *, int exists,
	    int64_t now, const struct greylist_times *);
unsigned greylist_ttl(const struct greylist_rec *,
	    const struct greylist_times *);
int	greylist_rec_format(const struct greylist_rec *, char *, size_t);
int	greylist_rec_parse(const char *, struct greylist_rec *);

struct greylist_store *greylist_open(const char *path,
	    const struct greylist_times *, int64_t now, char *err,
	    size_t errlen);
enum greylist_verdict greylist_check(struct greylist_store *,
	    const char *key, int64_t now);
size_t	greylist_count(const struct greylist_store *);
int	greylist_compact(struct greylist_store *, int64_t now);
void	greylist_close(struct greylist_store *);

#endif
