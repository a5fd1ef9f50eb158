/* SPDX-License-Identifier: MIT */
/*
 * The order in which a client tries a list of equivalent server
 * addresses: round robin from a start the caller keeps, the healthy ones
 * first, then the ones marked down as a last resort (a check that would
 * bring them back may be off or slow), never one the job has tried. Sets
 * are bit masks, one bit per address index. Pure: knows nothing about
 * sockets, protocols or what "down" means to the caller.
 */
#include <stddef.h>
#include <stdint.h>

#include "failover.h"
#include "log.h"

/* The index to try next, or -1 when every address has been tried. */
int
failover_pick(size_t n, size_t first, uint64_t tried, uint64_t down)
{
	size_t	k, i;
	int	pass;

	if (n > FAILOVER_MAX)
		fatal("failover_pick: %zu addresses", n);
	for (pass = 0; pass < 2; pass++)
		for (k = 0; k < n; k++) {
			i = (first + k) % n;
			if (tried & (UINT64_C(1) << i))
				continue;
			if (((down >> i) & 1) != (uint64_t)(pass == 1))
				continue;
			return (int)i;
		}
	return -1;
}
