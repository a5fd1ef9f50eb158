/* SPDX-License-Identifier: MIT */
/*
 * The spam engine client: sends each message to an rspamd or spamd
 * daemon and hands back its score, on the event loop, never blocking. It
 * is the engines' protocol (spam_proto.c: the request head and the reply
 * as bytes) on farm.c, which owns the resolved server addresses (round
 * robin over the healthy ones; a server that fails before answering is
 * marked down for a while and the message goes to the next one), one
 * connection per job, and the job's deadline: whatever happens, the
 * callback runs within timeout_ms, with a score or with ok == 0 (the
 * policy then applies spam_unavailable_action). The message is streamed
 * from the caller's descriptor in chunks, never copied whole into memory.
 * Here are the result, the per-rule counters and the status. It trusts
 * the configuration; what the engine sends is parsed by spam_proto.c and
 * an answer that does not parse is never a score. getaddrinfo() in
 * spam_new() is the only blocking call (startup only).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ev.h"
#include "farm.h"
#include "log.h"
#include "spam.h"
#include "spam_policy.h"
#include "spam_proto.h"

#define SPAM_ADDRS_MAX		16	/* resolved addresses, all servers */
#define SPAM_CONNECT_MS		3000	/* per attempt, within the deadline */
#define SPAM_DOWN_MS		30000	/* a failed server rests this long */
#define SPAM_JOBS_MAX		1024	/* in flight */

_Static_assert(SPAM_SERVERS_MAX <= FARM_SERVERS_MAX, "entries fit a farm");
_Static_assert(SPAM_ADDRS_MAX <= FARM_ADDRS_MAX, "addresses fit a farm");
_Static_assert(sizeof(((struct spam_conf *)0)->servers[0]) == FARM_ENTRY_MAX,
    "an entry is a farm entry");

/* A job's context in its farm job; a struct spam_job * is the farm job. */
struct spam_ctx {
	spam_done_cb		*cb;
	void			*arg;
};

struct spam {
	struct spam_conf	 conf;
	struct farm		*farm;
	unsigned long		 nchecks;	/* results delivered */
	unsigned long		 nunavailable;
	unsigned long		 counts[SPAM_RULES];
};

static const char *const spam_kind_names[] = {
	[SPAM_RSPAMD] = "rspamd",
	[SPAM_SPAMD] = "spamd",
};

static void	spam_job_finish(struct farm_job *, const struct spam_result *);
static void	spam_job_unavailable(struct farm_job *, const char *);
static int	spam_job_reply(struct farm_job *, const char *, size_t, int);
static void	spam_job_fail(struct farm_job *, enum farm_end, const char *);

static const struct farm_ops spam_ops = {
	.reply = spam_job_reply,
	.fail = spam_job_fail,
};

const char *
spam_kind_name(enum spam_kind k)
{
	return spam_kind_names[k];
}

int
spam_kind_parse(const char *s, enum spam_kind *k)
{
	size_t	i;

	for (i = 0; i < sizeof(spam_kind_names) / sizeof(spam_kind_names[0]);
	    i++)
		if (strcmp(s, spam_kind_names[i]) == 0) {
			*k = (enum spam_kind)i;
			return 0;
		}
	return -1;
}

/* The job is gone before cb runs, so cb may submit or cancel anything. */
static void
spam_job_finish(struct farm_job *j, const struct spam_result *res)
{
	struct spam		*b = farm_arg(farm_job_farm(j));
	struct spam_ctx		*c = farm_job_ctx(j);
	const struct farm_addr	*a = farm_job_addr(j);
	struct spam_result	 r = *res;
	spam_done_cb		*cb = c->cb;
	void			*arg = c->arg;

	r.ms = farm_job_ms(j);
	if (r.ok && a != NULL)
		snprintf(r.engine, sizeof(r.engine), "%s %s",
		    spam_kind_names[b->conf.kind], a->name);
	else
		snprintf(r.engine, sizeof(r.engine), "%s",
		    spam_kind_names[b->conf.kind]);
	b->nchecks++;
	if (!r.ok)
		b->nunavailable++;
	log_debug(NULL, "spam check job=%u engine=\"%s\" size=%zu ok=%d "
	    "score=%.2f attempts=%u ms=%u", farm_job_id(j), r.engine,
	    farm_job_size(j), r.ok, r.score, farm_job_attempts(j), r.ms);
	farm_job_end(j);
	cb(arg, &r);
}

static void
spam_job_unavailable(struct farm_job *j, const char *why)
{
	struct spam_result	r;

	memset(&r, 0, sizeof(r));
	snprintf(r.error, sizeof(r.error), "%s", why);
	spam_job_finish(j, &r);
}

/* Try the reply so far. -1: the job has moved on (result or failover). */
static int
spam_job_reply(struct farm_job *j, const char *p, size_t len, int eof)
{
	struct spam		*b = farm_arg(farm_job_farm(j));
	struct spam_result	 r;
	int			 rc;

	if (eof && len == 0) {
		farm_job_retry(j, "reply", "closed before a reply");
		return -1;
	}
	memset(&r, 0, sizeof(r));
	rc = (b->conf.kind == SPAM_RSPAMD ? spam_rspamd_reply :
	    spam_spamd_reply)(p, len, eof, &r);
	if (rc == 0)
		return 0;
	if (rc == -1) {
		farm_job_retry(j, "reply", r.error);
		return -1;
	}
	(void)farm_job_answered(j);
	spam_job_finish(j, &r);
	return -1;
}

static void
spam_job_fail(struct farm_job *j, enum farm_end end, const char *why)
{
	struct spam		*b = farm_arg(farm_job_farm(j));
	const struct farm_addr	*a;
	char			 msg[SPAM_ERROR_MAX];

	switch (end) {
	case FARM_EXHAUSTED:
		log_warn(NULL, "spam check job=%u error=\"no %s server "
		    "answered: %s\" attempts=%u", farm_job_id(j),
		    spam_kind_names[b->conf.kind], why, farm_job_attempts(j));
		spam_job_unavailable(j, why[0] != '\0' ? why :
		    "no server reachable");
		return;
	case FARM_DEADLINE:
		/* A slow engine is not a dead one: the address keeps its
		 * state. */
		a = farm_job_addr(j);
		snprintf(msg, sizeof(msg), "no answer within %u ms%s%.80s",
		    b->conf.timeout_ms, why[0] != '\0' ? "; " : "", why);
		log_warn(NULL, "spam check job=%u server=%s error=\"%s\" "
		    "state=%s", farm_job_id(j), a != NULL ? a->name : "-",
		    msg, farm_job_state(j));
		spam_job_unavailable(j, msg);
		return;
	case FARM_BROKEN:
		spam_job_unavailable(j, why);
		return;
	}
	fatal("spam check job=%u end %d", farm_job_id(j), end);
}

/* ---- the interface ---- */

struct spam_job *
spam_submit(struct spam *b, int fd, size_t size,
    const struct spam_envelope *e, spam_done_cb *cb, void *arg)
{
	struct farm_job	*j;
	struct spam_ctx	*c;
	struct buf	 head;
	int		 rc;

	buf_init(&head, SPAM_HEAD_MAX);
	rc = b->conf.kind == SPAM_RSPAMD ? spam_rspamd_head(&head, e, size) :
	    spam_spamd_head(&head, e, size);
	if (rc == -1) {
		buf_free(&head);
		errno = ENOBUFS;
		return NULL;
	}
	j = farm_submit(b->farm, fd, size, buf_head(&head), buf_used(&head),
	    sizeof(*c));
	buf_free(&head);
	if (j == NULL)
		return NULL;
	c = farm_job_ctx(j);
	c->cb = cb;
	c->arg = arg;
	return (struct spam_job *)j;
}

void
spam_cancel(struct spam *b, struct spam_job *j)
{
	farm_cancel(b->farm, (struct farm_job *)j);
}

void
spam_count(struct spam *b, int rule)
{
	if (rule < 0 || rule >= SPAM_RULES)
		fatal("spam_count: rule %d", rule);
	b->counts[rule]++;
}

void
spam_status(struct spam *b, struct buf *out)
{
	const struct farm_addr	*a;
	size_t			 i;
	int			 r;

	if (buf_printf(out, "spam.engine=%s spam.addresses=%zu spam.up=%zu "
	    "spam.jobs=%zu spam.checks=%lu spam.unavailable=%lu "
	    "spam.failovers=%lu spam.timeout_ms=%u\n",
	    spam_kind_names[b->conf.kind], farm_naddrs(b->farm),
	    farm_up(b->farm), farm_njobs(b->farm), b->nchecks,
	    b->nunavailable, farm_failovers(b->farm), b->conf.timeout_ms) == -1)
		return;
	for (r = 0; r < SPAM_RULES; r++)
		if (buf_printf(out, "%sspam.rule.%s=%lu", r > 0 ? " " : "",
		    spam_rule_name((enum spam_rule)r), b->counts[r]) == -1)
			return;
	if (buf_printf(out, "\n") == -1)
		return;
	for (i = 0; i < farm_naddrs(b->farm); i++) {
		a = farm_addr(b->farm, i);
		if (buf_printf(out, "spam.server=%s state=%s checks=%lu "
		    "failures=%lu entry=%s%s%s%s\n", a->name,
		    farm_addr_usable(a) ? "up" : "down", a->answers,
		    a->failures, farm_entry(b->farm, a->server),
		    a->reason[0] != '\0' ? " last_error=\"" : "", a->reason,
		    a->reason[0] != '\0' ? "\"" : "") == -1)
			return;
	}
}

/* At shutdown, outside the loop's callbacks: pending jobs are dropped
 * without their callbacks. */
void
spam_free(struct spam *b)
{
	if (b == NULL)
		return;
	farm_free(b->farm);
	free(b);
}

struct spam *
spam_new(struct ev_loop *loop, const struct spam_conf *conf, char *err,
    size_t errlen)
{
	struct spam		*b;
	struct farm_conf	 fc;

	if (conf->timeout_ms == 0) {
		snprintf(err, errlen, "spam: the timeout must be above 0 ms");
		return NULL;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "spam: out of memory");
		return NULL;
	}
	b->conf = *conf;
	memset(&fc, 0, sizeof(fc));
	fc.name = "spam";
	fc.verb = "check";
	fc.answer = "reply";
	fc.entries = (const char (*)[FARM_ENTRY_MAX])b->conf.servers;
	fc.nentries = conf->nservers;
	fc.entries_max = SPAM_SERVERS_MAX;
	fc.addrs_max = SPAM_ADDRS_MAX;
	fc.strict = 1;
	fc.connect_ms = SPAM_CONNECT_MS;
	fc.deadline_ms = conf->timeout_ms;
	fc.down_ms = SPAM_DOWN_MS;
	fc.jobs_max = SPAM_JOBS_MAX;
	fc.reply_max = SPAM_REPLY_MAX;
	fc.ops = &spam_ops;
	fc.arg = b;
	if ((b->farm = farm_new(loop, &fc, err, errlen)) == NULL) {
		free(b);
		return NULL;
	}
	log_info(NULL, "spam engine=%s servers=%d addresses=%zu timeout_ms=%u",
	    spam_kind_names[conf->kind], conf->nservers, farm_naddrs(b->farm),
	    conf->timeout_ms);
	return b;
}
