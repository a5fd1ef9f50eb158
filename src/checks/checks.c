/* SPDX-License-Identifier: MIT */
/*
 * The checks of one received message (checks.h says the stages and their
 * order): each stage turns its engine's answer into a decision through
 * its policy (policy.c for viruses and content, spam_policy.c for spam),
 * then delivers, quarantines or refuses. What the session sees is one
 * result; it never learns which engine said what.
 *
 * A run lives from checks_start() to its done callback (or to
 * checks_cancel(), when the client goes first): at most one engine job is
 * outstanding at a time, and the run owns it.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "checks.h"
#include "content.h"
#include "dlp.h"
#include "log.h"
#include "metrics.h"
#include "milter.h"
#include "notice.h"
#include "policy.h"
#include "quarantine.h"
#include "sock.h"
#include "spam_policy.h"

/* A decision the notice may be about; the strongest wanted one wins. */
struct check_notice {
	int			 rank;		/* 0: none due */
	enum action		 action;
	const char		*policy;
	const char		*verdict;
	char			 name[SCAN_NAME_MAX];
	char			 detail[320];
	unsigned		 removed;
	char			 qid[QUARANTINE_ID_MAX];	/* any copy kept */
};

struct check_run {
	struct check_msg	 m;
	struct scan_job		*job;
	struct spam_job		*spamjob;
	struct milter_conv	*mconv;
	int			 mi;		/* the milter talking, or next */
	int			 body_changed;	/* by a milter */
	int			 rescan;	/* the scan after that */
	/* The envelope as the milters left it, once one changed it: what
	 * the milters after it are told, and the change the result says. */
	struct milter_envelope	 env;
	int			 env_edited;
	struct check_notice	 notice;
	struct check_result	 res;
	check_done_cb		*done;
	void			*arg;
	int			 starting;	/* inside checks_start() */
	int			 ended;
};

static struct ev_loop		*checks_loop;
static const struct conf	*checks_conf;
static struct scan_backend	*checks_scanner;
static struct metric_family	*checks_scan_seconds;
static struct metric_family	*checks_spam_score;
static struct spam		*checks_spam;

static void	stage_spam(struct check_run *);
static void	stage_milters(struct check_run *);

void
checks_init(struct ev_loop *loop, const struct conf *conf,
    struct scan_backend *scanner)
{
	static const double	scan_b[] = { .005, .01, .025, .05, .1, .25, .5,
				    1, 2.5, 5, 10, 30 };
	static const double	score_b[] = { -5, 0, 2, 4, 6, 8, 10, 15, 20,
				    30 };

	checks_loop = loop;
	checks_conf = conf;
	checks_scanner = scanner;
	checks_scan_seconds = metrics_family("spork_scan_seconds",
	    METRIC_HISTOGRAM, "Time a message's scan took (scan_ms).",
	    scan_b, sizeof(scan_b) / sizeof(scan_b[0]));
	checks_spam_score = metrics_family("spork_spam_score",
	    METRIC_HISTOGRAM, "Spam scores of the messages the engine scored.",
	    score_b, sizeof(score_b) / sizeof(score_b[0]));
}

void
checks_set_spam(struct spam *spam)
{
	checks_spam = spam;
}

/* ------------------------------------------------------------------ */
/* Notices                                                             */

static void
notice_offer(struct check_run *r, enum action action, const char *policy,
    const char *verdict, const char *name, const char *detail,
    unsigned removed)
{
	struct check_notice	*n = &r->notice;
	int			 rank;

	rank = policy_notice_wanted(checks_conf, action);
	if (rank <= n->rank)
		return;
	n->rank = rank;
	n->action = action;
	n->policy = policy;
	n->verdict = verdict;
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(n->detail, sizeof(n->detail), "%s", detail);
	n->removed = removed;
}

/* The message is delivered or refused (or its session gone): send the
 * notice it is due, if any. */
static void
notice_flush(struct check_run *r)
{
	struct check_notice	*n = &r->notice;
	struct notice_info	 ni;

	if (n->rank == 0)
		return;
	memset(&ni, 0, sizeof(ni));
	ni.session = r->m.id;
	ni.client = r->m.client;
	ni.server = r->m.server;
	ni.transparent = r->m.transparent;
	ni.helo = r->m.helo;
	ni.sender = r->m.sender;
	ni.rcpts = r->m.rcpts;
	ni.nrcpts = r->m.nrcpts;
	ni.policy = n->policy;
	ni.action = action_name(n->action);
	ni.verdict = n->verdict;
	ni.name = n->name;
	ni.detail = n->detail;
	ni.quarantine_id = n->qid;
	ni.removed = n->removed;
	ni.spool = r->m.spool;
	(void)notice_send(checks_loop, checks_conf, &ni);
	memset(n, 0, sizeof(*n));
}

/* ------------------------------------------------------------------ */
/* The end of a run                                                    */

static void
run_end(struct check_run *r)
{
	notice_flush(r);
	r->ended = 1;
	r->done(r->arg, &r->res, r->starting);
	free(r->res.prefix);
	r->res.prefix = NULL;
	check_envelope_free(r->res.env);
	r->res.env = NULL;
	milter_envelope_free(&r->env);
	if (!r->starting)
		free(r);
}

/* The run's decision for tracking and metrics: the strongest wins. */
static void
decide(struct check_run *r, const char *kind, enum action a)
{
	if (a < r->res.action)
		return;
	snprintf(r->res.kind, sizeof(r->res.kind), "%s", kind);
	r->res.action = a;
}

static void
run_reject(struct check_run *r, const char *verdict, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
run_reject(struct check_run *r, const char *verdict, const char *fmt, ...)
{
	va_list	ap;

	r->res.deliver = 0;
	snprintf(r->res.verdict, sizeof(r->res.verdict), "%s", verdict);
	va_start(ap, fmt);
	vsnprintf(r->res.reply, sizeof(r->res.reply), fmt, ap);
	va_end(ap);
	/* Refused with nothing decided to refuse it: a local failure. */
	if (r->res.action <= ACT_CLEAN) {
		snprintf(r->res.kind, sizeof(r->res.kind), "error");
		r->res.action = r->res.reply[0] == '5' ? ACT_REJECT :
		    ACT_TEMPFAIL;
	}
	run_end(r);
}

void
check_envelope_free(struct check_envelope *ce)
{
	size_t	i;

	if (ce == NULL)
		return;
	for (i = 0; i < ce->nadd; i++) {
		free(ce->add[i]);
		free(ce->add_args[i]);
	}
	for (i = 0; i < ce->ndel; i++)
		free(ce->del[i]);
	free(ce->add);
	free(ce->add_args);
	free(ce->del);
	free(ce->sender);
	free(ce->sender_args);
	free(ce);
}

int
check_envelope_deletes(const struct check_envelope *ce, const char *path)
{
	size_t	i;

	for (i = 0; ce != NULL && i < ce->ndel; i++)
		if (milter_addr_eq(ce->del[i], path))
			return 1;
	return 0;
}

/* 1 when addr is among list's n paths (milter_addr_eq). */
static int
addr_among(const char *addr, char *const *list, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (list[i] != NULL && milter_addr_eq(addr, list[i]))
			return 1;
	return 0;
}

/*
 * The milters' envelope as a change to the client's, into the result
 * (none when they changed nothing in the end: one added what another
 * deleted). The run's envelope gives up what it hands over. 0 or -1.
 */
static int
envelope_change(struct check_run *r)
{
	struct milter_envelope	*e = &r->env;
	struct check_envelope	*ce;
	size_t			 i;

	if (!r->env_edited)
		return 0;
	if ((ce = calloc(1, sizeof(*ce))) == NULL ||
	    (ce->del = calloc(r->m.nrcpts + 1, sizeof(char *))) == NULL ||
	    (ce->add = calloc(e->nrcpt + 1, sizeof(char *))) == NULL ||
	    (ce->add_args = calloc(e->nrcpt + 1, sizeof(char *))) == NULL)
		goto fail;
	if (e->sender_changed) {
		ce->sender = e->sender;
		ce->sender_args = e->sender_args;
		e->sender = e->sender_args = NULL;
	}
	for (i = 0; i < r->m.nrcpts; i++)
		if (!addr_among(r->m.rcpts[i], e->rcpt, e->nrcpt) &&
		    (ce->del[ce->ndel++] = strdup(r->m.rcpts[i])) == NULL)
			goto fail;
	for (i = 0; i < e->nrcpt; i++)
		if (!addr_among(e->rcpt[i], r->m.rcpts, r->m.nrcpts)) {
			ce->add[ce->nadd] = e->rcpt[i];
			ce->add_args[ce->nadd++] = e->rcpt_args[i];
			e->rcpt[i] = e->rcpt_args[i] = NULL;
		}
	if (ce->sender == NULL && ce->nadd == 0 && ce->ndel == 0) {
		check_envelope_free(ce);
		return 0;
	}
	r->res.env = ce;
	return 0;
fail:
	check_envelope_free(ce);
	return -1;
}

static void
run_deliver(struct check_run *r)
{
	if (envelope_change(r) == -1) {
		run_reject(r, "verdict=milter", "451 4.3.0 Error: out of "
		    "memory");
		return;
	}
	r->res.deliver = 1;
	run_end(r);
}

/* Headers added on delivery, after those already there. */
static int
prefix_add(struct check_run *r, const char *h)
{
	size_t	 pl = r->res.prefix != NULL ? strlen(r->res.prefix) : 0;
	size_t	 l = strlen(h);
	char	*np;

	if (l == 0)
		return 0;
	if ((np = realloc(r->res.prefix, pl + l + 1)) == NULL)
		return -1;
	memcpy(np + pl, h, l + 1);
	r->res.prefix = np;
	return 0;
}

static void
verdict_add(struct check_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
verdict_add(struct check_run *r, const char *fmt, ...)
{
	size_t	l = strlen(r->res.verdict);
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(r->res.verdict + l, sizeof(r->res.verdict) - l, fmt, ap);
	va_end(ap);
}

/*
 * Store the message in quarantine under verdict and name; id gets its
 * quarantine id. -1: it could not be stored, and the run has ended with
 * a temporary error (vs is the verdict for the log).
 */
static int
run_quarantine(struct check_run *r, const char *verdict, const char *name,
    const char *vs, int deliver, char *id, size_t idlen)
{
	struct quarantine_meta	m;

	memset(&m, 0, sizeof(m));
	m.client = r->m.client;
	m.server = r->m.server;
	m.helo = r->m.helo;
	m.sender = r->m.sender;
	m.rcpts = r->m.rcpts;
	m.nrcpts = r->m.nrcpts;
	m.verdict = verdict;
	m.name = name;
	m.session = r->m.id;
	m.mode = r->m.transparent ? "transparent" : "explicit";
	if (quarantine_store(checks_conf->quarantine_dir, r->m.spool, &m, id,
	    idlen) == -1) {
		log_err(r->m.id, "quarantine failed dir=%s: %s",
		    checks_conf->quarantine_dir, strerror(errno));
		run_reject(r, vs, "451 4.3.0 Error: quarantine failed, "
		    "try again later");
		return -1;
	}
	log_info(r->m.id, "quarantine id=%s then=%s", id,
	    deliver ? "deliver" : "reject");
	if (r->notice.qid[0] == '\0')
		snprintf(r->notice.qid, sizeof(r->notice.qid), "%s", id);
	if (r->res.qid[0] == '\0')
		snprintf(r->res.qid, sizeof(r->res.qid), "%s", id);
	return 0;
}

/* ------------------------------------------------------------------ */
/* 1. Virus scan and content rules                                     */

/* The content policy's decision, for the notice: the deciding rule,
 * how it matched and where, never what it found. */
static void
content_notice(struct check_run *r, const struct scan_result *sr,
    const struct policy_decision *d)
{
	const struct content_result	*cr = &sr->content;
	const struct content_rules	*rs = content_active();
	const struct content_rule	*rule;
	char				 detail[320];

	if (cr->action == ACT_ERROR) {
		notice_offer(r, d->action, "content", "error",
		    "content check failed", cr->error, 0);
		return;
	}
	if (rs == NULL || cr->rule < 0 || cr->rule >= rs->n)
		return;
	rule = &rs->r[cr->rule];
	snprintf(detail, sizeof(detail), "%s%s%s%s%s",
	    content_match_name(rule->match), rule->match == CM_DLP ? ":" : "",
	    rule->match == CM_DLP ? dlp_kind_name(rule->dlp) : "",
	    cr->where[0] != '\0' ? " in " : "", cr->where);
	notice_offer(r, cr->action, "content", "content",
	    rule->name, detail, 0);
}

static void
scan_apply(struct check_run *r, const struct scan_result *sr)
{
	struct policy_decision	 d;
	struct spool		*sp = r->m.spool;
	char			 id[QUARANTINE_ID_MAX], vs[64];

	policy_decide(checks_conf, sr, 1, &d);
	metrics_observe(checks_scan_seconds, "", sr->ms / 1000.0);
	decide(r, d.content ? "content" : scan_verdict_name(sr->verdict),
	    d.action);
	if (sr->verdict != SCAN_CLEAN)
		log_info(r->m.id, "scan verdict=%s name=\"%s\" action=%s "
		    "scan_ms=%u", scan_verdict_name(sr->verdict), sr->name,
		    action_name(d.action), sr->ms);
	if (d.cleaned) {
		/* What goes upstream from here on is the cleaned copy. */
		log_info(r->m.id, "clean removed=%u size=%zu cleaned_size=%llu "
		    "dkim=broken", sr->removed, sp->size,
		    (unsigned long long)sr->cleaned_size);
		spool_adopt(sp, sr->cleaned_fd, (size_t)sr->cleaned_size);
	} else if (d.rewritten) {
		/* The content policy's copy (headers or parts changed). */
		content_account(r->m.id, &sr->content, sp->size,
		    sr->cleaned_size);
		spool_adopt(sp, sr->cleaned_fd, (size_t)sr->cleaned_size);
	} else if (SCAN_RESULT_HAS_FD(sr))
		close(sr->cleaned_fd);
	if (!d.rewritten || d.cleaned)
		content_account(r->m.id, &sr->content, sp->size, sp->size);
	id[0] = '\0';
	snprintf(vs, sizeof(vs), "verdict=%s%s", scan_verdict_name(sr->verdict),
	    d.content ? " content=yes" : "");
	if (d.action == ACT_QUARANTINE && run_quarantine(r,
	    d.content ? "content" : scan_verdict_name(sr->verdict),
	    d.content ? sr->content.where : sr->name, vs, d.deliver, id,
	    sizeof(id)) == -1)
		return;
	if (sr->verdict != SCAN_CLEAN)
		notice_offer(r, d.scan_action,
		    scan_verdict_name(sr->verdict),
		    scan_verdict_name(sr->verdict), sr->name, "",
		    d.scan_action == ACT_CLEAN ? sr->removed : 0);
	if (d.content)
		content_notice(r, sr, &d);
	if (!d.deliver) {
		run_reject(r, vs, "%s", d.reply);
		return;
	}
	if (r->rescan) {
		/* The milters' copy, let through: it goes as it is, under
		 * the scan header of the first look. */
		verdict_add(r, " rescan=%s", scan_verdict_name(sr->verdict));
		run_deliver(r);
		return;
	}
	verdict_add(r, "%s action=%s scan_ms=%u", vs, action_name(d.action),
	    sr->ms);
	if (prefix_add(r, d.header) == -1) {
		run_reject(r, vs, "451 4.3.0 Error: out of memory");
		return;
	}
	stage_spam(r);
}

static void
scan_done(void *arg, const struct scan_result *sr)
{
	struct check_run	*r = arg;

	r->job = NULL;
	scan_apply(r, sr);
}

static void
stage_scan(struct check_run *r)
{
	struct scan_result	sr;
	int			fd;

	if (checks_scanner == NULL) {
		verdict_add(r, "verdict=unscanned");
		decide(r, "unscanned", ACT_DELIVER);
		stage_spam(r);
		return;
	}
	if ((fd = spool_fd(r->m.spool)) == -1) {
		log_err(r->m.id, "spool: %s", strerror(errno));
		run_reject(r, "verdict=spool-error", "451 4.3.0 Error: local "
		    "spool failure, try again later");
		return;
	}
	r->job = checks_scanner->submit(checks_scanner, fd, r->m.spool->size,
	    (r->rescan ? SCAN_VIRUS_ONLY : 0) | (content_active() != NULL &&
	    content_outbound(content_active(), r->m.peer) ? SCAN_OUTBOUND : 0),
	    scan_done, r);
	if (r->job == NULL) {
		memset(&sr, 0, sizeof(sr));
		sr.verdict = SCAN_ERROR;
		snprintf(sr.name, sizeof(sr.name), "submit: %s",
		    strerror(errno));
		scan_apply(r, &sr);
	}
}

/* ------------------------------------------------------------------ */
/* 2. The spam engine                                                  */

/* The spam engine's decision, for the notice: the score and the engine. */
static void
spam_notice(struct check_run *r, const struct spam_result *sr,
    const struct spam_decision *d)
{
	char	name[64], detail[320];

	if (sr->ok) {
		snprintf(name, sizeof(name), "score %.2f", sr->score);
		snprintf(detail, sizeof(detail), "engine %s, required %.2f, "
		    "symbols %.160s", sr->engine, sr->required, sr->symbols);
	} else {
		snprintf(name, sizeof(name), "engine unavailable");
		snprintf(detail, sizeof(detail), "engine %s: %.200s",
		    sr->engine, sr->error);
	}
	notice_offer(r, d->action, "spam", "spam", name,
	    detail, 0);
}

/*
 * The score and the thresholds decide between delivery (with X-Spam
 * headers added to the prefix), quarantine and rejection.
 */
static void
spam_apply(struct check_run *r, const struct spam_result *sr)
{
	struct spam_decision	 d;
	char			 id[QUARANTINE_ID_MAX], vs[96];

	spam_policy_decide(checks_conf, sr, &d);
	spam_count(checks_spam, (int)d.rule);
	if (sr->ok) {
		r->res.score = sr->score;
		metrics_observe(checks_spam_score, "", sr->score);
	}
	if (d.action != ACT_DELIVER)
		decide(r, "spam", d.action);
	if (sr->ok) {
		log_info(r->m.id, "spam score=%.2f engine=\"%s\" action=%s "
		    "ms=%u required=%.2f engine_action=\"%s\" symbols=\"%s\"",
		    sr->score, sr->engine, action_name(d.action), sr->ms,
		    sr->required, sr->action, sr->symbols);
		snprintf(vs, sizeof(vs), "verdict=spam score=%.2f", sr->score);
	} else {
		log_info(r->m.id, "spam score=none engine=\"%s\" action=%s "
		    "ms=%u error=\"%s\"", sr->engine,
		    action_name(d.action), sr->ms, sr->error);
		snprintf(vs, sizeof(vs), "verdict=spam-unavailable");
	}
	id[0] = '\0';
	/* The quarantine record names the score ("score=N"), or why there
	 * is none. */
	if (d.action == ACT_QUARANTINE && run_quarantine(r, "spam",
	    sr->ok ? vs + strlen("verdict=spam ") : "unavailable", vs,
	    d.deliver, id, sizeof(id)) == -1)
		return;
	if (d.action != ACT_DELIVER)
		spam_notice(r, sr, &d);
	if (!d.deliver) {
		run_reject(r, vs, "%s", d.reply);
		return;
	}
	if (sr->ok)
		verdict_add(r, " spam=%s spam_score=%.2f",
		    action_name(d.action), sr->score);
	else
		verdict_add(r, " spam=%s", action_name(d.action));
	if (prefix_add(r, d.header) == -1) {
		run_reject(r, vs, "451 4.3.0 Error: out of memory");
		return;
	}
	stage_milters(r);
}

static void
spam_done(void *arg, const struct spam_result *sr)
{
	struct check_run	*r = arg;

	r->spamjob = NULL;
	spam_apply(r, sr);
}

static void
stage_spam(struct check_run *r)
{
	struct spam_envelope	 e;
	struct spam_decision	 d;
	struct spam_result	 sr;
	char			 host[SOCK_ADDRSTR_MAX];
	size_t			 size = r->m.spool->size;
	int			 fd;

	if (checks_spam == NULL) {
		stage_milters(r);
		return;
	}
	if (size > checks_conf->spam_max_size) {
		spam_policy_skipped(size, checks_conf->spam_max_size, &d);
		spam_count(checks_spam, (int)d.rule);
		log_info(r->m.id, "spam score=none action=deliver reason=size "
		    "size=%zu spam_max_size=%zu", size,
		    checks_conf->spam_max_size);
		if (prefix_add(r, d.header) == -1) {
			run_reject(r, "verdict=unscanned", "451 4.3.0 Error: "
			    "out of memory");
			return;
		}
		stage_milters(r);
		return;
	}
	if ((fd = spool_fd(r->m.spool)) == -1) {
		log_err(r->m.id, "spool: %s", strerror(errno));
		run_reject(r, "verdict=spool-error", "451 4.3.0 Error: local "
		    "spool failure, try again later");
		return;
	}
	memset(&e, 0, sizeof(e));
	host[0] = '\0';
	if (r->m.peer->ss_family != AF_UNSPEC)
		sock_format_host(r->m.peer, host, sizeof(host));
	e.client = host;
	e.helo = r->m.helo;
	e.sender = r->m.sender;
	e.rcpts = r->m.rcpts;
	e.nrcpts = r->m.nrcpts;
	e.queue_id = r->m.id;
	r->spamjob = spam_submit(checks_spam, fd, size, &e, spam_done, r);
	if (r->spamjob == NULL) {
		memset(&sr, 0, sizeof(sr));
		snprintf(sr.engine, sizeof(sr.engine), "%s",
		    conf_word("spam_engine", checks_conf->spam_engine));
		snprintf(sr.error, sizeof(sr.error), "submit: %s",
		    strerror(errno));
		spam_apply(r, &sr);
	}
}

/* ------------------------------------------------------------------ */
/* 3. The milters                                                      */

static const char *
outcome_name(enum milter_outcome o)
{
	switch (o) {
	case MO_CONTINUE:	return "continue";
	case MO_ACCEPT:		return "accept";
	case MO_REJECT:		return "reject";
	case MO_TEMPFAIL:	return "tempfail";
	case MO_DISCARD:	return "discard";
	default:		return "failed";
	}
}

/*
 * One milter's result: 0 to go on to the next milter, -1 when the run has
 * ended (refused, or failed as its default says).
 */
static int
milter_result(struct check_run *r, const struct conf_milter *m,
    struct milter_result *mr)
{
	char	vs[96], id[QUARANTINE_ID_MAX], err[256], envs[40];
	int	deliver;

	envs[0] = '\0';
	if (mr->nenv > 0)
		snprintf(envs, sizeof(envs), " envelope_edits=%zu", mr->nenv);
	log_info(r->m.id, "milter name=%s result=%s ms=%u edits=%zu%s%s%s%s%s",
	    m->name, outcome_name(mr->outcome), mr->ms, mr->nedits,
	    mr->body_replaced ? " body=replaced" : "",
	    mr->quarantine ? " quarantine=yes" : "", envs,
	    mr->outcome == MO_FAILED ? " error=" : "",
	    mr->outcome == MO_FAILED ? mr->error : "");
	snprintf(vs, sizeof(vs), "verdict=milter milter=%s", m->name);
	switch (mr->outcome) {
	case MO_FAILED:
		if (m->def == ACT_DELIVER) {
			verdict_add(r, " milter_%s=unavailable", m->name);
			return 0;
		}
		notice_offer(r, m->def, "milter", "error", m->name, mr->error, 0);
		decide(r, "milter", m->def);
		if (m->def == ACT_REJECT)
			run_reject(r, vs, "550 5.7.1 Message content rejected");
		else
			run_reject(r, vs, "451 4.7.1 Service unavailable - "
			    "try again later");
		return -1;
	case MO_REJECT:
	case MO_TEMPFAIL:
		decide(r, "milter", mr->outcome == MO_REJECT ? ACT_REJECT :
		    ACT_TEMPFAIL);
		notice_offer(r, mr->outcome == MO_REJECT ? ACT_REJECT :
		    ACT_TEMPFAIL, "milter", "milter", m->name, mr->reply, 0);
		run_reject(r, vs, "%s", mr->reply);
		return -1;
	case MO_DISCARD:
		/* Dropped without a word is not ours to do: the client
		 * never gets a 250 the server did not give. Kept in the
		 * quarantine, refused. */
		if (run_quarantine(r, "milter", m->name, vs, 0, id,
		    sizeof(id)) == -1)
			return -1;
		decide(r, "milter", ACT_QUARANTINE);
		notice_offer(r, ACT_REJECT, "milter", "milter", m->name,
		    "discard", 0);
		run_reject(r, vs, "550 5.7.1 Message discarded by policy");
		return -1;
	default:
		break;
	}
	if ((mr->nedits > 0 || mr->body_replaced) && milter_apply(r->m.spool,
	    mr, checks_conf->max_header_size * 2, err, sizeof(err)) == -1) {
		log_err(r->m.id, "milter name=%s %s", m->name, err);
		run_reject(r, vs, "451 4.3.0 Error: local spool failure, try "
		    "again later");
		return -1;
	}
	if (mr->body_replaced)
		r->body_changed = 1;
	if (mr->nenv > 0) {
		if ((!r->env_edited && milter_envelope_init(&r->env,
		    r->m.sender, r->m.rcpts, r->m.nrcpts) == -1) ||
		    milter_envelope_edit(&r->env, mr,
		    checks_conf->max_recipients) == -1) {
			if (errno == E2BIG) {
				decide(r, "milter", ACT_TEMPFAIL);
				run_reject(r, vs, "451 4.7.1 Error: recipient "
				    "change refused: more than %zu recipients",
				    checks_conf->max_recipients);
			} else
				run_reject(r, vs, "451 4.3.0 Error: out of "
				    "memory");
			return -1;
		}
		r->env_edited = 1;
	}
	verdict_add(r, " milter_%s=%s", m->name, outcome_name(mr->outcome));
	if (mr->quarantine) {
		deliver = checks_conf->quarantine_then_deliver;
		if (run_quarantine(r, "milter", mr->reason[0] != '\0' ?
		    mr->reason : m->name, vs, deliver, id, sizeof(id)) == -1)
			return -1;
		decide(r, "milter", ACT_QUARANTINE);
		notice_offer(r, ACT_QUARANTINE, "milter", "milter", m->name,
		    mr->reason, 0);
		if (!deliver) {
			run_reject(r, vs, "550 5.7.1 Message content rejected");
			return -1;
		}
	}
	return 0;
}

static void
milter_done(void *arg, struct milter_result *mr)
{
	struct check_run	*r = arg;

	r->mconv = NULL;
	if (mr->outcome == MO_FAILED)
		r->res.milters_failed |= 1U << r->mi;
	if (milter_result(r, &checks_conf->milters.m[r->mi], mr) == -1)
		return;
	r->mi++;
	stage_milters(r);
}

static void
stage_milters(struct check_run *r)
{
	const struct conf_milter	*m;
	struct milter_input		 in;
	struct milter_result		 mr;

	for (; r->mi < checks_conf->milters.n; r->mi++) {
		m = &checks_conf->milters.m[r->mi];
		if ((m->direction == DIR_INBOUND && r->m.inside) ||
		    (m->direction == DIR_OUTBOUND && !r->m.inside))
			continue;
		if ((r->m.milters_failed | r->res.milters_failed) &
		    (1U << r->mi)) {
			memset(&mr, 0, sizeof(mr));
			mr.outcome = MO_FAILED;
			snprintf(mr.error, sizeof(mr.error), "failed earlier "
			    "in this session");
			if (milter_result(r, m, &mr) == -1)
				return;
			continue;
		}
		memset(&in, 0, sizeof(in));
		in.id = r->m.id;
		in.helo = r->m.helo;
		/* The envelope as the milters before it left it. */
		in.sender = r->env_edited ? r->env.sender : r->m.sender;
		in.rcpts = r->env_edited ? r->env.rcpt : r->m.rcpts;
		in.nrcpts = r->env_edited ? r->env.nrcpt : r->m.nrcpts;
		in.peer = r->m.peer;
		in.spool = r->m.spool;
		/* Room for what the milters before it added. */
		in.max_header = checks_conf->max_header_size * 2;
		in.max_message = checks_conf->message_size_limit;
		if ((r->mconv = milter_start(checks_loop, m, &in, milter_done,
		    r)) != NULL)
			return;
		memset(&mr, 0, sizeof(mr));
		mr.outcome = MO_FAILED;
		snprintf(mr.error, sizeof(mr.error), "%s", strerror(errno));
		r->res.milters_failed |= 1U << r->mi;
		if (milter_result(r, m, &mr) == -1)
			return;
	}
	if (r->body_changed && checks_scanner != NULL) {
		r->rescan = 1;
		stage_scan(r);
		return;
	}
	run_deliver(r);
}

/* ------------------------------------------------------------------ */

struct check_run *
checks_start(const struct check_msg *m, check_done_cb *done, void *arg)
{
	struct check_run	*r;
	struct check_result	 res;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		memset(&res, 0, sizeof(res));
		snprintf(res.verdict, sizeof(res.verdict), "verdict=error");
		snprintf(res.kind, sizeof(res.kind), "error");
		res.action = ACT_TEMPFAIL;
		res.score = NAN;
		snprintf(res.reply, sizeof(res.reply), "451 4.3.0 Error: out "
		    "of memory");
		done(arg, &res, 1);
		return NULL;
	}
	r->m = *m;
	r->res.score = NAN;
	r->done = done;
	r->arg = arg;
	r->starting = 1;
	stage_scan(r);
	r->starting = 0;
	if (r->ended) {
		free(r);
		return NULL;
	}
	return r;
}

void
checks_cancel(struct check_run *r)
{
	if (r == NULL)
		return;
	if (r->job != NULL)
		checks_scanner->cancel(checks_scanner, r->job);
	if (r->spamjob != NULL)
		spam_cancel(checks_spam, r->spamjob);
	milter_cancel(r->mconv);
	notice_flush(r);
	free(r->res.prefix);
	check_envelope_free(r->res.env);
	milter_envelope_free(&r->env);
	free(r);
}

/* ------------------------------------------------------------------ */
/* RCPT time                                                           */

enum rcpt_state { RS_IDLE, RS_ASKING, RS_ANSWERED };

struct check_rcpt {
	char				 id[16];
	struct sockaddr_storage		 peer;
	int				 inside;
	void				(*wake)(void *);
	void				*arg;
	enum rcpt_state			 state;
	char				 args[512];	/* the RCPT asked about */
	char				 path[512];	/* its <path> */
	char				*rcpts[1];
	char				 helo[256];
	char				 sender[512];
	int				 mi;
	struct milter_conv		*conv;
	int				 refused;
	int				 inside_ask;	/* in checks_rcpt() */
	int				 passed;	/* args and sender passed */
	unsigned			 failed;	/* milters, this session */
	char				 reply[1024];
};

static int
milter_applies(const struct conf_milter *m, int inside)
{
	return !((m->direction == DIR_INBOUND && inside) ||
	    (m->direction == DIR_OUTBOUND && !inside));
}

struct check_rcpt *
checks_rcpt_new(const char *id, const struct sockaddr_storage *peer,
    int inside, void (*wake)(void *), void *arg)
{
	struct check_rcpt	*cr;
	int			 i;

	for (i = 0; i < checks_conf->milters.n; i++)
		if (milter_applies(&checks_conf->milters.m[i], inside))
			break;
	if (i == checks_conf->milters.n)
		return NULL;		/* no milter for this client */
	if ((cr = calloc(1, sizeof(*cr))) == NULL)
		return NULL;
	snprintf(cr->id, sizeof(cr->id), "%s", id);
	cr->peer = *peer;
	cr->inside = inside;
	cr->wake = wake;
	cr->arg = arg;
	return cr;
}

unsigned
checks_rcpt_failed(const struct check_rcpt *cr)
{
	return cr != NULL ? cr->failed : 0;
}

void
checks_rcpt_add_failed(struct check_rcpt *cr, unsigned failed)
{
	if (cr != NULL)
		cr->failed |= failed;
}

void
checks_rcpt_free(struct check_rcpt *cr)
{
	if (cr == NULL)
		return;
	milter_cancel(cr->conv);
	free(cr);
}

static void	rcpt_next(struct check_rcpt *);

static void
rcpt_answered(struct check_rcpt *cr)
{
	cr->state = RS_ANSWERED;
	if (!cr->inside_ask)
		cr->wake(cr->arg);
}

static void
rcpt_done(void *arg, struct milter_result *mr)
{
	struct check_rcpt		*cr = arg;
	const struct conf_milter	*m = &checks_conf->milters.m[cr->mi];

	cr->conv = NULL;
	if (mr->outcome == MO_FAILED)
		cr->failed |= 1U << cr->mi;
	log_info(cr->id, "milter name=%s rcpt=%s result=%s ms=%u%s%s", m->name,
	    cr->path, outcome_name(mr->outcome), mr->ms,
	    mr->outcome == MO_FAILED ? " error=" : "",
	    mr->outcome == MO_FAILED ? mr->error : "");
	switch (mr->outcome) {
	case MO_REJECT:
	case MO_TEMPFAIL:
		cr->refused = 1;
		snprintf(cr->reply, sizeof(cr->reply), "%s", mr->reply);
		rcpt_answered(cr);
		return;
	case MO_FAILED:
		if (m->def == ACT_DELIVER)
			break;
		cr->refused = 1;
		snprintf(cr->reply, sizeof(cr->reply), "%s",
		    m->def == ACT_REJECT ? "550 5.7.1 Command rejected" :
		    "451 4.7.1 Service unavailable - try again later");
		rcpt_answered(cr);
		return;
	default:
		/* continue, accept; a discard is answered again, for the
		 * whole message, at its end. */
		break;
	}
	cr->mi++;
	rcpt_next(cr);
}

static void
rcpt_next(struct check_rcpt *cr)
{
	const struct conf_milter	*m;
	struct milter_input		 in;
	struct milter_result		 mr;

	for (; cr->mi < checks_conf->milters.n; cr->mi++) {
		m = &checks_conf->milters.m[cr->mi];
		if (!milter_applies(m, cr->inside))
			continue;
		if (cr->failed & (1U << cr->mi)) {
			memset(&mr, 0, sizeof(mr));
			mr.outcome = MO_FAILED;
			snprintf(mr.error, sizeof(mr.error), "failed earlier "
			    "in this session");
			rcpt_done(cr, &mr);
			return;
		}
		memset(&in, 0, sizeof(in));
		in.id = cr->id;
		in.helo = cr->helo;
		in.sender = cr->sender;
		cr->rcpts[0] = cr->path;
		in.rcpts = cr->rcpts;
		in.nrcpts = 1;
		in.peer = &cr->peer;
		in.probe = 1;
		if ((cr->conv = milter_start(checks_loop, m, &in, rcpt_done,
		    cr)) != NULL)
			return;
		memset(&mr, 0, sizeof(mr));
		mr.outcome = MO_FAILED;
		snprintf(mr.error, sizeof(mr.error), "%s", strerror(errno));
		rcpt_done(cr, &mr);
		return;
	}
	rcpt_answered(cr);
}

enum check_rcpt_answer
checks_rcpt(struct check_rcpt *cr, const char *helo, const char *sender,
    const char *args, size_t argslen, int can_reply, char *reply,
    size_t replylen)
{
	size_t	off = 0, len;

	if (cr == NULL)
		return CHECK_RCPT_PASS;
	if (cr->state != RS_IDLE) {
		if (argslen != strlen(cr->args) ||
		    memcmp(args, cr->args, argslen) != 0)
			return CHECK_RCPT_WAIT;	/* another one's turn */
		if (cr->state == RS_ASKING)
			return CHECK_RCPT_WAIT;
		if (cr->refused && !can_reply)
			return CHECK_RCPT_WAIT;
		cr->state = RS_IDLE;
		if (!cr->refused) {
			/* Asked again while other checks of the same
			 * command wait: the same answer, no new asking. */
			cr->passed = 1;
			return CHECK_RCPT_PASS;
		}
		snprintf(reply, replylen, "%s", cr->reply);
		return CHECK_RCPT_REPLY;
	}
	if (argslen >= sizeof(cr->args))
		return CHECK_RCPT_PASS;	/* the line limits bound it first */
	if (cr->passed && argslen == strlen(cr->args) &&
	    memcmp(args, cr->args, argslen) == 0 &&
	    strcmp(sender, cr->sender) == 0)
		return CHECK_RCPT_PASS;
	cr->passed = 0;
	memcpy(cr->args, args, argslen);
	cr->args[argslen] = '\0';
	if (argslen >= 3 && strncasecmp(args, "TO:", 3) == 0)
		off = 3;
	while (off < argslen && args[off] == ' ')
		off++;
	for (len = 0; off + len < argslen && args[off + len] != ' '; len++)
		;
	snprintf(cr->path, sizeof(cr->path), "%.*s", (int)len, args + off);
	snprintf(cr->helo, sizeof(cr->helo), "%s", helo);
	snprintf(cr->sender, sizeof(cr->sender), "%s", sender);
	cr->refused = 0;
	cr->reply[0] = '\0';
	cr->mi = 0;
	cr->state = RS_ASKING;
	cr->inside_ask = 1;
	rcpt_next(cr);
	cr->inside_ask = 0;
	if (cr->state == RS_ANSWERED)	/* at once: every milter down */
		return checks_rcpt(cr, helo, sender, args, argslen, can_reply,
		    reply, replylen);
	return CHECK_RCPT_WAIT;
}
