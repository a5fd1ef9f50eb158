/* SPDX-License-Identifier: MIT */
/*
 * The libclamav engine, as used inside a scanner worker: builds one
 * compiled engine from the signature directory and extra signature files
 * with explicit limits, and scans a message given as a descriptor. The
 * message is mapped read-only and shared, so scanning never copies it into
 * anonymous memory. Encrypted content, exceeded limits and errors come back
 * as their own verdicts, never as clean.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include <clamav.h>

#include "log.h"
#include "scan_engine.h"

struct scan_engine {
	struct cl_engine	*cl;
	unsigned		 sigs;
	char			 version[SCAN_ENGINE_MAX];
};

/* Where the scan's alerts are collected (see scan_found). */
struct scan_ctx {
	char	name[SCAN_NAME_MAX];
};

/*
 * Some alerts (a file over the size limit at the top level, say) come
 * back as CL_VIRUS without a name through the scan call; the callback
 * always has it.
 */
static void
scan_found(int fd, const char *virname, void *context)
{
	struct scan_ctx	*ctx = context;

	(void)fd;
	if (ctx != NULL && ctx->name[0] == '\0' && virname != NULL)
		snprintf(ctx->name, sizeof(ctx->name), "%s", virname);
}

static int
engine_load_path(struct scan_engine *e, const char *path, char *err,
    size_t errlen)
{
	unsigned	n = 0;
	cl_error_t	rc;

	rc = cl_load(path, e->cl, &n, CL_DB_STDOPT);
	if (rc != CL_SUCCESS) {
		snprintf(err, errlen, "cannot load signatures from %s: %s",
		    path, cl_strerror(rc));
		return -1;
	}
	log_info(NULL, "scan load path=%s signatures=%u", path, n);
	e->sigs += n;
	return 0;
}

static int
engine_limits(struct scan_engine *e, const struct scan_engine_conf *c,
    char *err, size_t errlen)
{
	static const struct {
		enum cl_engine_field	 f;
		size_t			 off;
		int			 is64;
	} lim[] = {
		{ CL_ENGINE_MAX_SCANSIZE,
		    offsetof(struct scan_engine_conf, max_scansize), 1 },
		{ CL_ENGINE_MAX_FILESIZE,
		    offsetof(struct scan_engine_conf, max_filesize), 1 },
		{ CL_ENGINE_MAX_RECURSION,
		    offsetof(struct scan_engine_conf, max_recursion), 0 },
		{ CL_ENGINE_MAX_FILES,
		    offsetof(struct scan_engine_conf, max_files), 0 },
		{ CL_ENGINE_MAX_SCANTIME,
		    offsetof(struct scan_engine_conf, max_scantime), 0 },
	};
	const char	*p;
	size_t		 i;
	cl_error_t	 rc;
	long long	 v;

	for (i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		p = (const char *)c + lim[i].off;
		v = lim[i].is64 ? (long long)*(const uint64_t *)p :
		    (long long)*(const uint32_t *)p;
		if (v == 0)
			continue;
		if ((rc = cl_engine_set_num(e->cl, lim[i].f, v)) != CL_SUCCESS) {
			snprintf(err, errlen, "cl_engine_set_num(%d): %s",
			    lim[i].f, cl_strerror(rc));
			return -1;
		}
	}
	if (c->tmpdir[0] != '\0' && (rc = cl_engine_set_str(e->cl,
	    CL_ENGINE_TMPDIR, c->tmpdir)) != CL_SUCCESS) {
		snprintf(err, errlen, "tmpdir %s: %s", c->tmpdir,
		    cl_strerror(rc));
		return -1;
	}
	return 0;
}

struct scan_engine *
scan_engine_load(const struct scan_engine_conf *c, char *err, size_t errlen)
{
	struct scan_engine	*e;
	struct stat		 st;
	cl_error_t		 rc;
	int			 i, err2 = 0;
	long long		 dbver;

	if ((rc = cl_init(CL_INIT_DEFAULT)) != CL_SUCCESS) {
		snprintf(err, errlen, "cl_init: %s", cl_strerror(rc));
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->cl = cl_engine_new()) == NULL) {
		snprintf(err, errlen, "libclamav: out of memory");
		free(e);
		return NULL;
	}
	if (engine_limits(e, c, err, errlen) == -1)
		goto fail;
	/* A missing directory is survivable when extra signature files are
	 * given (labs, tests); an engine with no signatures is not. */
	if (c->dbdir[0] != '\0') {
		if (stat(c->dbdir, &st) == 0) {
			if (engine_load_path(e, c->dbdir, err, errlen) == -1)
				goto fail;
		} else
			log_warn(NULL, "scan database_dir=%s missing: %s",
			    c->dbdir, strerror(errno));
	}
	for (i = 0; i < c->nsigfiles; i++)
		if (engine_load_path(e, c->sigfiles[i], err, errlen) == -1)
			goto fail;
	if (e->sigs == 0) {
		snprintf(err, errlen, "no virus signatures loaded (database "
		    "dir %s): refusing to pass mail as scanned; run freshclam "
		    "or set clamav_signatures", c->dbdir);
		goto fail;
	}
	cl_engine_set_clcb_virus_found(e->cl, scan_found);
	if ((rc = cl_engine_compile(e->cl)) != CL_SUCCESS) {
		snprintf(err, errlen, "cl_engine_compile: %s", cl_strerror(rc));
		goto fail;
	}
	dbver = cl_engine_get_num(e->cl, CL_ENGINE_DB_VERSION, &err2);
	snprintf(e->version, sizeof(e->version), "ClamAV %s/%lld/%u",
	    cl_retver(), err2 ? 0 : dbver, e->sigs);
	return e;
fail:
	cl_engine_free(e->cl);
	free(e);
	return NULL;
}

void
scan_engine_free(struct scan_engine *e)
{
	if (e == NULL)
		return;
	cl_engine_free(e->cl);
	free(e);
}

/* Where this process's scans unpack (each worker has its own). */
int
scan_engine_set_tmpdir(const struct scan_engine *e, const char *dir)
{
	if (cl_engine_set_str(e->cl, CL_ENGINE_TMPDIR, dir) != CL_SUCCESS) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

const char *
scan_engine_version(const struct scan_engine *e)
{
	return e->version;
}

unsigned
scan_engine_signatures(const struct scan_engine *e)
{
	return e->sigs;
}

static unsigned
elapsed_ms(const struct timespec *t0)
{
	struct timespec	t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (unsigned)((t1.tv_sec - t0->tv_sec) * 1000 +
	    (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

/*
 * libclamav's heuristic names for what must not pass as clean: encrypted
 * archives and documents, and limits exceeded.
 */
static enum scan_verdict
virus_verdict(const char *name)
{
	if (strncmp(name, "Heuristics.Encrypted.", 21) == 0)
		return SCAN_ENCRYPTED;
	if (strncmp(name, "Heuristics.Limits.Exceeded", 26) == 0)
		return SCAN_LIMITS;
	return SCAN_VIRUS;
}

/* Scans len bytes at base (which may be any readable memory). */
static void
scan_map(const struct scan_engine *e, const void *base, size_t len,
    struct scan_result *r)
{
	struct cl_scan_options	 opt;
	struct timespec		 t0;
	const char		*virname = NULL;
	unsigned long		 scanned = 0;
	cl_fmap_t		*map;
	cl_error_t		 rc;
	struct scan_ctx		 ctx;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&ctx, 0, sizeof(ctx));
	memset(&opt, 0, sizeof(opt));
	opt.parse = ~0u;
	opt.general = CL_SCAN_GENERAL_HEURISTICS;
	opt.heuristic = CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE |
	    CL_SCAN_HEURISTIC_ENCRYPTED_DOC | CL_SCAN_HEURISTIC_EXCEEDS_MAX;
	if ((map = cl_fmap_open_memory(base ? base : "", len)) == NULL)
		rc = CL_EMEM;
	else {
		rc = cl_scanmap_callback(map, NULL, &virname, &scanned, e->cl,
		    &opt, &ctx);
		cl_fmap_close(map);
	}
	r->ms += elapsed_ms(&t0);
	if (rc == CL_VIRUS) {
		snprintf(r->name, sizeof(r->name), "%s", virname ? virname :
		    ctx.name[0] ? ctx.name : "unknown");
		r->verdict = virus_verdict(r->name);
	} else if (rc == CL_CLEAN)
		r->verdict = SCAN_CLEAN;
	else {
		r->verdict = rc == CL_ETIMEOUT ? SCAN_LIMITS : SCAN_ERROR;
		snprintf(r->name, sizeof(r->name), "%s", cl_strerror(rc));
	}
}

void
scan_engine_scan_mem(const struct scan_engine *e, const void *data,
    size_t len, struct scan_result *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->engine, sizeof(r->engine), "%s", e->version);
	scan_map(e, data, len, r);
}

void
scan_engine_scan(const struct scan_engine *e, int fd, size_t size,
    struct scan_result *r)
{
	void	*base = NULL;

	memset(r, 0, sizeof(*r));
	snprintf(r->engine, sizeof(r->engine), "%s", e->version);
	if (size > 0) {
		base = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		if (base == MAP_FAILED) {
			r->verdict = SCAN_ERROR;
			snprintf(r->name, sizeof(r->name), "mmap: %s",
			    strerror(errno));
			return;
		}
		(void)madvise(base, size, MADV_SEQUENTIAL);
	}
	scan_map(e, base, size, r);
	if (base != NULL)
		munmap(base, size);
}
