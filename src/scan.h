/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SCAN_H
#define SPORK_SCAN_H

#include <stddef.h>

#include "spool.h"

enum scan_result {
	SCAN_CLEAN,
	SCAN_VIRUS,
	SCAN_ERROR,
};

#define SCAN_NAME_MAX	256

int		 scan_init(const char *dbdir, char sigs[][512], int nsigs,
		    char *err, size_t errlen);
void		 scan_free(void);
enum scan_result scan_spool(const struct spool *, char *name, size_t namelen);
unsigned	 scan_signatures(void);

#endif
