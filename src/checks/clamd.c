/* SPDX-License-Identifier: MIT */
/*
 * The remote scanner: a scan_backend that streams each message to a clamd
 * server with INSTREAM over TCP and turns its one-line answer into a
 * verdict. It is clamd's protocol on farm.c, which owns the addresses
 * (round robin over healthy ones, failover when a server cannot be
 * reached or breaks the protocol before answering), the jobs and their
 * deadline: here are INSTREAM (the command, framed chunks, the answer and
 * its verdict), the PING/VERSION health probe that marks addresses up and
 * down, the StreamMaxLength check, and the scan_backend interface and
 * status. It trusts the configuration and the caller's descriptor; it
 * trusts nothing clamd sends beyond what is parsed here, and an answer it
 * cannot parse is never a clean verdict. Nothing here blocks except
 * getaddrinfo() in clamd_new() and reload() (farm.c), which run at
 * startup and reload time only. It never sends RELOAD to clamd: a shared
 * clamd picks up signatures itself (freshclam's NotifyClamd or
 * SelfCheck), so reload() here only re-resolves names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clamd.h"
#include "ev.h"
#include "farm.h"
#include "log.h"
#include "scanner.h"

#define CLAMD_REPLY_MAX		1024	/* one NUL-terminated answer */
#define CLAMD_JOBS_MAX		1024	/* in flight; each may hold a chunk */

#define CLAMD_CMD_INSTREAM	"zINSTREAM"	/* sizeof includes the NUL */
#define CLAMD_CMD_PING		"zPING"
#define CLAMD_CMD_VERSION	"zVERSION"
#define CLAMD_UNREACHABLE	"no clamd server reachable"

_Static_assert(CLAMD_SERVERS_MAX <= FARM_SERVERS_MAX, "entries fit a farm");
_Static_assert(CLAMD_ADDRS_MAX <= FARM_ADDRS_MAX, "addresses fit a farm");
_Static_assert(sizeof(((struct clamd_conf *)0)->servers[0]) == FARM_ENTRY_MAX,
    "an entry is a farm entry");
_Static_assert(FARM_LABEL_MAX + 6 <= SCAN_ENGINE_MAX, "\"clamd VERSION\" "
    "fits an engine name");

/* A job's context in its farm job. */
struct clamd_job {
	scan_done_cb		*cb;
	void			*arg;
	struct scan_result	 res;		/* a farm_defer() verdict */
};

struct clamd {
	struct scan_backend	 be;
	struct clamd_conf	 conf;
	struct farm		*farm;
	unsigned long		 nscans;	/* verdicts delivered */
	unsigned long		 nunreachable;
};

static void	clamd_sanitize(char *, size_t, const char *, size_t);
static int	clamd_ends_with(const char *, size_t, const char *);
static int	clamd_parse(const char *, enum scan_verdict *, char *, size_t);
static void	clamd_engine(char *, size_t, const struct farm_addr *);
static void	clamd_probe(struct farm *, struct farm_addr *);
static int	clamd_probe_answer(struct farm *, struct farm_addr *,
		    const char *, size_t);
static void	clamd_job_finish(struct farm_job *, const struct farm_addr *,
		    enum scan_verdict, const char *);
static int	clamd_job_reply(struct farm_job *, const char *, size_t, int);
static void	clamd_job_answer(struct farm_job *, const char *);
static void	clamd_job_fail(struct farm_job *, enum farm_end, const char *);
static void	clamd_job_deliver(struct farm_job *);
static struct scan_job *clamd_submit(struct scan_backend *, int, size_t,
		    unsigned, scan_done_cb *, void *);
static void	clamd_cancel(struct scan_backend *, struct scan_job *);
static int	clamd_reload(struct scan_backend *, struct content_rules *);
static void	clamd_status(struct scan_backend *, struct buf *);
static void	clamd_free(struct scan_backend *);

static const struct farm_ops clamd_ops = {
	.reply = clamd_job_reply,
	.fail = clamd_job_fail,
	.deliver = clamd_job_deliver,
	.probe = clamd_probe,
	.probe_answer = clamd_probe_answer,
};

/* Local names, so the backend does not depend on who defines the
 * shared scan_verdict_name(). */
static const char *const clamd_verdict_names[] = {
	[SCAN_CLEAN] = "clean",
	[SCAN_VIRUS] = "virus",
	[SCAN_ENCRYPTED] = "encrypted",
	[SCAN_LIMITS] = "limits",
	[SCAN_ERROR] = "error",
	[SCAN_TIMEOUT] = "timeout",
};

/*
 * Signature-name prefixes that are not viruses. Heuristics.Limits.* only
 * comes with clamd's AlertExceedsMax; Heuristics.Encrypted.* with
 * AlertEncrypted*.
 */
static const struct {
	const char		*prefix;
	enum scan_verdict	 verdict;
} clamd_heuristics[] = {
	{ "Heuristics.Encrypted.",	SCAN_ENCRYPTED },
	{ "Heuristics.Limits.Exceeded",	SCAN_LIMITS },
};

/* Copy at most n bytes of untrusted text; anything unprintable, and the
 * quote that would end a log field, becomes '?'. */
static void
clamd_sanitize(char *dst, size_t dstlen, const char *src, size_t n)
{
	size_t	i;

	if (dstlen == 0)
		return;
	if (n > dstlen - 1)
		n = dstlen - 1;
	for (i = 0; i < n; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f && src[i] != '"') ?
		    src[i] : '?';
	dst[n] = '\0';
}

static int
clamd_ends_with(const char *s, size_t len, const char *suffix)
{
	size_t	sl = strlen(suffix);

	return len >= sl && memcmp(s + len - sl, suffix, sl) == 0;
}

/*
 * Map one answer to INSTREAM to a verdict. -1: not such an answer at all,
 * a protocol error (the caller tries another server). Forms:
 *	"stream: OK"
 *	"stream: NAME FOUND"
 *	"stream: TEXT ERROR", "TEXT ERROR"
 *	"INSTREAM size limit exceeded. ERROR"
 */
static int
clamd_parse(const char *r, enum scan_verdict *v, char *name, size_t namelen)
{
	const char	*s = r;
	size_t		 len, i;

	name[0] = '\0';
	len = strlen(r);
	while (len > 0 && (r[len - 1] == '\n' || r[len - 1] == '\r' ||
	    r[len - 1] == ' '))
		len--;
	if (len >= 8 && memcmp(r, "stream: ", 8) == 0) {
		s = r + 8;
		len -= 8;
		if (len == 2 && memcmp(s, "OK", 2) == 0) {
			*v = SCAN_CLEAN;
			return 0;
		}
		if (clamd_ends_with(s, len, " FOUND")) {
			len -= 6;
			if (len == 0)
				return -1;
			clamd_sanitize(name, namelen, s, len);
			*v = SCAN_VIRUS;
			for (i = 0; i < sizeof(clamd_heuristics) /
			    sizeof(clamd_heuristics[0]); i++)
				if (strncmp(name, clamd_heuristics[i].prefix,
				    strlen(clamd_heuristics[i].prefix)) == 0)
					*v = clamd_heuristics[i].verdict;
			return 0;
		}
	}
	if (!clamd_ends_with(s, len, "ERROR"))
		return -1;
	len -= 5;
	while (len > 0 && s[len - 1] == ' ')
		len--;
	if (len >= 28 && memcmp(s, "INSTREAM size limit exceeded", 28) == 0) {
		*v = SCAN_LIMITS;
		clamd_sanitize(name, namelen, "INSTREAM size limit exceeded",
		    28);
		return 0;
	}
	*v = SCAN_ERROR;
	if (len == 0)
		snprintf(name, namelen, "clamd error");
	else
		clamd_sanitize(name, namelen, s, len);
	return 0;
}

static void
clamd_engine(char *out, size_t outlen, const struct farm_addr *a)
{
	if (a != NULL && a->label[0] != '\0')
		snprintf(out, outlen, "clamd %s", a->label);
	else
		snprintf(out, outlen, "clamd");
}

/* ---- health check ---- */

static void
clamd_probe(struct farm *f, struct farm_addr *a)
{
	farm_probe_send(f, a, "PING", CLAMD_CMD_PING, sizeof(CLAMD_CMD_PING));
}

static int
clamd_probe_answer(struct farm *f, struct farm_addr *a, const char *r,
    size_t len)
{
	char	v[FARM_LABEL_MAX];

	if (memchr(r, '\0', len) == NULL)
		return 0;
	if (strcmp(a->probe.what, "PING") == 0) {
		if (strcmp(r, "PONG") != 0) {
			farm_probe_fail(a, "answer", "not PONG");
			return -1;
		}
		farm_probe_stop(a);
		farm_probe_send(f, a, "VERSION", CLAMD_CMD_VERSION,
		    sizeof(CLAMD_CMD_VERSION));
		return -1;
	}
	if (strncmp(r, "ClamAV ", 7) != 0) {
		farm_probe_fail(a, "answer", "not \"ClamAV ...\"");
		return -1;
	}
	/* r lives in the probe's buffer, which stop frees. */
	clamd_sanitize(v, sizeof(v), r, strlen(r));
	farm_probe_stop(a);
	farm_addr_up(f, a, v);
	return -1;
}

/* ---- jobs ---- */

/* a: the address that answered, or NULL. The job is gone before cb runs,
 * so cb may submit or cancel anything. */
static void
clamd_job_finish(struct farm_job *j, const struct farm_addr *a,
    enum scan_verdict v, const char *name)
{
	struct clamd		*b = farm_arg(farm_job_farm(j));
	struct clamd_job	*cj = farm_job_ctx(j);
	struct scan_result	 r;
	scan_done_cb		*cb = cj->cb;
	void			*arg = cj->arg;

	memset(&r, 0, sizeof(r));
	r.verdict = v;
	snprintf(r.name, sizeof(r.name), "%s", name != NULL ? name : "");
	clamd_engine(r.engine, sizeof(r.engine), a);
	r.ms = farm_job_ms(j);
	b->nscans++;
	log_debug(NULL, "clamd scan job=%u server=%s size=%zu verdict=%s "
	    "name=\"%s\" attempts=%u ms=%u", farm_job_id(j), a != NULL ?
	    a->name : "-", farm_job_size(j), clamd_verdict_names[v], r.name,
	    farm_job_attempts(j), r.ms);
	farm_job_end(j);
	cb(arg, &r);
}

/* The answer is one NUL-terminated line. */
static int
clamd_job_reply(struct farm_job *j, const char *p, size_t len, int eof)
{
	if (memchr(p, '\0', len) != NULL) {
		clamd_job_answer(j, p);
		return -1;
	}
	if (!eof)
		return 0;
	farm_job_retry(j, "recv", len > 0 ? "answer not NUL-terminated" :
	    "closed before an answer");
	return -1;
}

static void
clamd_job_answer(struct farm_job *j, const char *r)
{
	struct farm_addr	*a;
	enum scan_verdict	 v;
	char			 name[SCAN_NAME_MAX];
	char			 shown[80];

	if (clamd_parse(r, &v, name, sizeof(name)) == -1) {
		clamd_sanitize(shown, sizeof(shown), r, strlen(r));
		farm_job_retry(j, "unexpected answer", shown);
		return;
	}
	a = farm_job_answered(j);
	if (v == SCAN_ERROR)
		log_warn(NULL, "clamd scan job=%u server=%s error=\"%s\"",
		    farm_job_id(j), a->name, name);
	clamd_job_finish(j, a, v, name);
}

static void
clamd_job_fail(struct farm_job *j, enum farm_end end, const char *why)
{
	struct clamd		*b = farm_arg(farm_job_farm(j));
	const struct farm_addr	*a;
	char			 name[SCAN_NAME_MAX];

	switch (end) {
	case FARM_EXHAUSTED:
		b->nunreachable++;
		log_err(NULL, "clamd scan job=%u error=\"%s\" attempts=%u",
		    farm_job_id(j), CLAMD_UNREACHABLE, farm_job_attempts(j));
		clamd_job_finish(j, NULL, SCAN_ERROR, CLAMD_UNREACHABLE);
		return;
	case FARM_DEADLINE:
		/* A slow scan is not a dead server: the address keeps
		 * its state. */
		a = farm_job_addr(j);
		snprintf(name, sizeof(name), "clamd did not answer within "
		    "%u ms", b->conf.scan_timeout_ms);
		log_warn(NULL, "clamd scan job=%u server=%s error=\"%s\" "
		    "state=%s", farm_job_id(j), a != NULL ? a->name : "-",
		    name, farm_job_state(j));
		clamd_job_finish(j, NULL, SCAN_TIMEOUT, name);
		return;
	case FARM_BROKEN:
		clamd_job_finish(j, NULL, SCAN_ERROR, why);
		return;
	}
	fatal("clamd scan job=%u end %d", farm_job_id(j), end);
}

static void
clamd_job_deliver(struct farm_job *j)
{
	struct clamd		*b = farm_arg(farm_job_farm(j));
	struct clamd_job	*cj = farm_job_ctx(j);
	struct scan_result	 r = cj->res;
	scan_done_cb		*cb = cj->cb;
	void			*arg = cj->arg;

	b->nscans++;
	farm_job_end(j);
	cb(arg, &r);
}

/* ---- the scan_backend interface ---- */

static struct scan_job *
clamd_submit(struct scan_backend *be, int fd, size_t size, unsigned flags,
    scan_done_cb *cb, void *arg)
{
	struct clamd		*b = be->impl;
	struct farm_job		*j;
	struct clamd_job	*cj;
	static const char	 cmd[] = CLAMD_CMD_INSTREAM;

	(void)flags;	/* content rules need the local workers */

	if (b->conf.max_stream > 0 && size > b->conf.max_stream) {
		/* clamd would cut the stream at StreamMaxLength and answer
		 * an error; say so without sending a byte. */
		if ((j = farm_defer(b->farm, sizeof(*cj))) == NULL)
			return NULL;
		cj = farm_job_ctx(j);
		cj->res.verdict = SCAN_LIMITS;
		snprintf(cj->res.name, sizeof(cj->res.name), "message of %zu "
		    "bytes exceeds clamd StreamMaxLength %zu", size,
		    b->conf.max_stream);
		clamd_engine(cj->res.engine, sizeof(cj->res.engine), NULL);
		log_debug(NULL, "clamd scan job=%u size=%zu verdict=limits "
		    "max_stream=%zu", farm_job_id(j), size, b->conf.max_stream);
	} else {
		if ((j = farm_submit(b->farm, fd, size, cmd, sizeof(cmd),
		    sizeof(*cj))) == NULL)
			return NULL;
		cj = farm_job_ctx(j);
	}
	cj->cb = cb;
	cj->arg = arg;
	return (struct scan_job *)j;
}

static void
clamd_cancel(struct scan_backend *be, struct scan_job *sj)
{
	struct clamd	*b = be->impl;

	farm_cancel(b->farm, (struct farm_job *)sj);
}

/* Re-resolve the names; in-flight jobs finish on the table they have.
 * No content rules here: they need local workers. */
static int
clamd_reload(struct scan_backend *be, struct content_rules *content)
{
	struct clamd	*b = be->impl;

	(void)content;
	return farm_reload(b->farm);
}

static void
clamd_status(struct scan_backend *be, struct buf *out)
{
	struct clamd		*b = be->impl;
	const struct farm_addr	*a;
	size_t			 i;

	if (buf_printf(out, "clamd.addresses=%zu clamd.up=%zu clamd.jobs=%zu "
	    "clamd.scans=%lu clamd.failovers=%lu clamd.unreachable=%lu\n",
	    farm_naddrs(b->farm), farm_up(b->farm), farm_njobs(b->farm),
	    b->nscans, farm_failovers(b->farm), b->nunreachable) == -1)
		return;
	for (i = 0; i < farm_naddrs(b->farm); i++) {
		a = farm_addr(b->farm, i);
		if (buf_printf(out, "clamd.server=%s state=%s version=\"%s\" "
		    "scans=%lu failures=%lu entry=%s\n", a->name,
		    farm_state_name(a->state), a->label[0] != '\0' ?
		    a->label : "unknown", a->answers, a->failures,
		    farm_entry(b->farm, a->server)) == -1)
			return;
	}
	(void)farm_status_unresolved(b->farm, out);
}

/* At shutdown, outside the loop's callbacks: pending jobs are dropped
 * without their callbacks. */
static void
clamd_free(struct scan_backend *be)
{
	struct clamd	*b = be->impl;

	farm_free(b->farm);
	free(b);
}

struct scan_backend *
clamd_new(struct ev_loop *loop, const struct clamd_conf *conf, char *err,
    size_t errlen)
{
	struct clamd		*b;
	struct farm_conf	 fc;

	if (conf->connect_timeout_ms == 0 || conf->scan_timeout_ms == 0) {
		snprintf(err, errlen, "clamd: connect and scan timeouts must "
		    "be above 0 ms");
		return NULL;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "clamd: out of memory");
		return NULL;
	}
	b->conf = *conf;
	memset(&fc, 0, sizeof(fc));
	fc.name = "clamd";
	fc.verb = "scan";
	fc.answer = "answer";
	fc.label_key = "version";
	fc.entries = (const char (*)[FARM_ENTRY_MAX])b->conf.servers;
	fc.nentries = conf->nservers;
	fc.entries_max = CLAMD_SERVERS_MAX;
	fc.addrs_max = CLAMD_ADDRS_MAX;
	fc.connect_ms = conf->connect_timeout_ms;
	fc.deadline_ms = conf->scan_timeout_ms;
	fc.health_ms = conf->health_interval_ms;
	fc.jobs_max = CLAMD_JOBS_MAX;
	fc.reply_max = CLAMD_REPLY_MAX;
	fc.framed = 1;
	fc.ops = &clamd_ops;
	fc.arg = b;
	if ((b->farm = farm_new(loop, &fc, err, errlen)) == NULL) {
		free(b);
		return NULL;
	}
	b->be.name = "clamd";
	b->be.submit = clamd_submit;
	b->be.cancel = clamd_cancel;
	b->be.reload = clamd_reload;
	b->be.status = clamd_status;
	b->be.free = clamd_free;
	b->be.impl = b;
	log_info(NULL, "clamd backend servers=%d addresses=%zu "
	    "max_stream=%zu health_interval_ms=%u", conf->nservers,
	    farm_naddrs(b->farm), conf->max_stream, conf->health_interval_ms);
	return &b->be;
}
