/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SCAN_POOL_H
#define SPORK_SCAN_POOL_H

#include "ev.h"
#include "sandbox.h"
#include "scan_engine.h"
#include "scanner.h"

struct scan_pool_conf {
	struct scan_engine_conf	engine;
	struct sandbox_conf	sandbox;
	struct sandbox_ids	ids;		/* scan_user, for the loader */
	int			workers;
	unsigned		timeout_ms;	/* wall clock, queue included */
	int			log_syslog;
	int			clean;		/* replace infected parts */
	struct content_rules	*content;	/* NULL: no content policy */
};

void		 scan_pool_reap(void);
struct scan_backend *scan_pool_new(struct ev_loop *,
		    const struct scan_pool_conf *, char *err, size_t errlen);

#endif
