/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SCAN_ENGINE_H
#define SPORK_SCAN_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "scanner.h"

#define SCAN_SIGFILES_MAX	16
#define SCAN_PATH_MAX		512

/* What the engine is built from, and the limits it scans with. */
struct scan_engine_conf {
	char		dbdir[SCAN_PATH_MAX];
	char		sigfiles[SCAN_SIGFILES_MAX][SCAN_PATH_MAX];
	int		nsigfiles;
	char		tmpdir[SCAN_PATH_MAX];
	uint64_t	max_scansize;	/* bytes scanned per message */
	uint64_t	max_filesize;	/* largest single file inside */
	uint32_t	max_recursion;	/* archive nesting */
	uint32_t	max_files;	/* files per message */
	uint32_t	max_scantime;	/* ms, libclamav's own budget */
};

struct scan_engine;

struct scan_engine *scan_engine_load(const struct scan_engine_conf *,
		    char *err, size_t errlen);
void		 scan_engine_free(struct scan_engine *);
const char	*scan_engine_version(const struct scan_engine *);
int		 scan_engine_set_tmpdir(const struct scan_engine *,
		    const char *);
unsigned	 scan_engine_signatures(const struct scan_engine *);
void		 scan_engine_scan(const struct scan_engine *, int fd, size_t size,
		    struct scan_result *);
void		 scan_engine_scan_mem(const struct scan_engine *,
		    const void *, size_t, struct scan_result *);

#endif
