/* SPDX-License-Identifier: MIT */
/*
 * The in-process libclamav scanner: loads the signature directory and any
 * extra signature files into one compiled engine, and scans a spooled
 * message with every parser on (mail, archives, documents). A scan error
 * is never reported as clean. Scans block the caller.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <clamav.h>

#include "log.h"
#include "scan.h"

static struct cl_engine	*scan_engine;
static unsigned		 scan_nsigs;

static int
scan_load(const char *path, char *err, size_t errlen)
{
	unsigned	n = 0;
	cl_error_t	rc;

	rc = cl_load(path, scan_engine, &n, CL_DB_STDOPT);
	if (rc != CL_SUCCESS) {
		snprintf(err, errlen, "cannot load signatures from %s: %s",
		    path, cl_strerror(rc));
		return -1;
	}
	log_info(NULL, "scan load path=%s signatures=%u", path, n);
	scan_nsigs += n;
	return 0;
}

int
scan_init(const char *dbdir, char sigs[][512], int nsigs, char *err,
    size_t errlen)
{
	struct stat	st;
	cl_error_t	rc;
	int		i;

	if ((rc = cl_init(CL_INIT_DEFAULT)) != CL_SUCCESS) {
		snprintf(err, errlen, "cl_init: %s", cl_strerror(rc));
		return -1;
	}
	if ((scan_engine = cl_engine_new()) == NULL) {
		snprintf(err, errlen, "cl_engine_new failed");
		return -1;
	}
	scan_nsigs = 0;
	/* A missing database directory is survivable when extra signature
	 * files are given (labs, tests); an engine with none is not. */
	if (dbdir[0] != '\0') {
		if (stat(dbdir, &st) == 0) {
			if (scan_load(dbdir, err, errlen) == -1)
				goto fail;
		} else
			log_warn(NULL, "scan database_dir=%s missing: %s",
			    dbdir, strerror(errno));
	}
	for (i = 0; i < nsigs; i++)
		if (scan_load(sigs[i], err, errlen) == -1)
			goto fail;
	if (scan_nsigs == 0) {
		snprintf(err, errlen, "no virus signatures loaded (database "
		    "dir %s): refusing to pass mail as scanned; run freshclam "
		    "or set clamav_signatures", dbdir);
		goto fail;
	}
	if ((rc = cl_engine_compile(scan_engine)) != CL_SUCCESS) {
		snprintf(err, errlen, "cl_engine_compile: %s", cl_strerror(rc));
		goto fail;
	}
	log_info(NULL, "scan engine=libclamav-%s signatures=%u",
	    cl_retver(), scan_nsigs);
	return 0;
fail:
	cl_engine_free(scan_engine);
	scan_engine = NULL;
	return -1;
}

void
scan_free(void)
{
	if (scan_engine != NULL)
		cl_engine_free(scan_engine);
	scan_engine = NULL;
}

unsigned
scan_signatures(void)
{
	return scan_nsigs;
}

enum scan_result
scan_spool(const struct spool *sp, char *name, size_t namelen)
{
	struct cl_scan_options	 opt;
	const char		*virname = NULL;
	unsigned long		 scanned = 0;
	cl_fmap_t		*map;
	void			*base;
	size_t			 len;
	cl_error_t		 rc;

	memset(&opt, 0, sizeof(opt));
	opt.parse = ~0u;
	opt.general = 0;
	/*
	 * A spooled file is scanned through a read-only shared mapping:
	 * libclamav's own descriptor reader caches pages in anonymous
	 * memory, which would grow the daemon with the message.
	 */
	if (spool_in_file(sp)) {
		base = mmap(NULL, sp->size, PROT_READ, MAP_SHARED, sp->fd, 0);
		if (base == MAP_FAILED) {
			snprintf(name, namelen, "mmap: %s", strerror(errno));
			return SCAN_ERROR;
		}
		(void)madvise(base, sp->size, MADV_SEQUENTIAL);
		len = sp->size;
	} else {
		base = sp->mem;
		len = sp->memlen;
	}
	if ((map = cl_fmap_open_memory(base, len)) == NULL)
		rc = CL_EMEM;
	else {
		rc = cl_scanmap_callback(map, NULL, &virname, &scanned,
		    scan_engine, &opt, NULL);
		cl_fmap_close(map);
	}
	if (spool_in_file(sp))
		munmap(base, len);
	if (rc == CL_VIRUS) {
		snprintf(name, namelen, "%s", virname ? virname : "unknown");
		return SCAN_VIRUS;
	}
	if (rc == CL_CLEAN) {
		name[0] = '\0';
		return SCAN_CLEAN;
	}
	snprintf(name, namelen, "%s", cl_strerror(rc));
	return SCAN_ERROR;
}
