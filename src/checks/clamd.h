/* SPDX-License-Identifier: MIT */
#ifndef SPORK_CLAMD_H
#define SPORK_CLAMD_H

#include <stddef.h>

#include "ev.h"
#include "scanner.h"

#define CLAMD_SERVERS_MAX	16
#define CLAMD_ADDRS_MAX		64	/* resolved addresses, all servers */

struct clamd_conf {
	/* "host:port", "[v6]:port", or "name:port" (a DNS name that may
	 * resolve to many addresses) */
	char		 servers[CLAMD_SERVERS_MAX][256];
	int		 nservers;
	unsigned	 connect_timeout_ms;	/* per connection attempt */
	unsigned	 scan_timeout_ms;	/* whole INSTREAM exchange */
	unsigned	 health_interval_ms;	/* PING every server this often; 0 = off */
	size_t		 max_stream;		/* clamd's StreamMaxLength; larger
						 * messages -> SCAN_LIMITS without
						 * sending; 0 = no local check */
};

/*
 * A scan_backend that streams messages to remote clamd servers with
 * INSTREAM. Names are resolved here and by reload() with getaddrinfo(),
 * which blocks: call both at startup or reload time only. Returns NULL
 * with a message in err when the configuration is unusable or no server
 * name resolves.
 */
struct scan_backend	*clamd_new(struct ev_loop *, const struct clamd_conf *,
			    char *err, size_t errlen);

#endif
