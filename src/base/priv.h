/* SPDX-License-Identifier: MIT */
#ifndef SPORK_PRIV_H
#define SPORK_PRIV_H

#include <stddef.h>

int	priv_drop(const char *user, const char *const *dirs, int net_admin,
	    int setid, char *err, size_t errlen);

#endif
