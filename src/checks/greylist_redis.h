/* SPDX-License-Identifier: MIT */
#ifndef SPORK_GREYLIST_REDIS_H
#define SPORK_GREYLIST_REDIS_H

#include "ev.h"
#include "greylist.h"

struct gr_query;

typedef void	greylist_cb(void *arg, enum greylist_verdict);

int	greylist_redis_init(struct ev_loop *, const char *addr,
	    const struct greylist_times *, unsigned timeout_ms, char *err,
	    size_t errlen);
struct gr_query *greylist_redis_check(const char *key, greylist_cb *,
	    void *arg);
void	greylist_redis_cancel(struct gr_query *);
int	greylist_redis_connected(void);

#endif
