/* SPDX-License-Identifier: MIT */
#ifndef SPORK_FAILOVER_H
#define SPORK_FAILOVER_H

#include <stddef.h>
#include <stdint.h>

#define FAILOVER_MAX	64	/* addresses: one bit each in a set */

int	failover_pick(size_t n, size_t first, uint64_t tried, uint64_t down);

#endif
