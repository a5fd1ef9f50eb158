/* SPDX-License-Identifier: MIT */
#ifndef SPORK_ICAP_H
#define SPORK_ICAP_H

#include <stddef.h>

#include "buf.h"
#include "conf.h"
#include "ev.h"
#include "scanner.h"

/*
 * The ICAP service (RFC 3507): web proxies hand it HTTP requests
 * (REQMOD) and responses (RESPMOD); their bodies go to the same scanner
 * as mail and the same verdict policies decide. Nothing to do when
 * icap_listen is empty.
 */

/* Binds icap_listen and reads icap_block_page; -1 and err on failure. */
int	icap_init(struct ev_loop *, const struct conf *, struct scan_backend *,
	    char *err, size_t errlen);
/* Reads icap_block_page again (at reload); the old page stays on error. */
void	icap_reload(const struct conf *);
/* "icap.*" counters for status and the metrics. */
void	icap_status(struct buf *);

#endif
