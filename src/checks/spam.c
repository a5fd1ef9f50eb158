/* SPDX-License-Identifier: MIT */
/*
 * The spam engine client: sends each message to an rspamd or spamd
 * daemon and hands back its score, on the event loop, never blocking. It
 * owns the resolved server addresses (round robin over the healthy ones;
 * a server that fails before answering is marked down for a while and the
 * message goes to the next one), one connection per job, and the job's
 * deadline: whatever happens, the callback runs within timeout_ms, with a
 * score or with ok == 0 (the policy then applies
 * spam_unavailable_action). The message is streamed from the caller's
 * descriptor in chunks, never copied whole into memory. It trusts the
 * configuration; what the engine sends is parsed by spam_proto.c and an
 * answer that does not parse is never a score. getaddrinfo() in
 * spam_new() is the only blocking call (startup only). Jobs are freed by
 * a timer, never inside an I/O callback, as in clamd.c: the epoll batch
 * being delivered may still point at them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "ev.h"
#include "failover.h"
#include "hostport.h"
#include "log.h"
#include "sock.h"
#include "spam.h"
#include "spam_policy.h"
#include "spam_proto.h"

#define SPAM_ADDRS_MAX		16	/* resolved addresses, all servers */
#define SPAM_CHUNK		(64 * 1024)	/* message bytes per send */
#define SPAM_WRITE_BURST	16	/* chunks per wakeup */
#define SPAM_CONNECT_MS		3000	/* per attempt, within the deadline */
#define SPAM_DOWN_MS		30000	/* a failed server rests this long */
#define SPAM_JOBS_MAX		1024	/* in flight */

_Static_assert(SPAM_ADDRS_MAX <= 32, "a job's tried set is a uint32_t");

enum spam_job_state {
	SJ_QUEUED,		/* submitted; the loop starts it */
	SJ_CONNECTING,
	SJ_SENDING,		/* head and message out; an early reply counts */
	SJ_REPLY,		/* everything sent, reading the reply */
	SJ_DEAD,		/* finished or cancelled, waiting for the reaper */
};

struct spam_addr {
	struct sockaddr_storage	 ss;
	char			 name[SOCK_ADDRSTR_MAX];
	int			 server;	/* index in conf.servers */
	uint64_t		 down_until;	/* 0: up */
	unsigned long		 checks;	/* scores from this address */
	unsigned long		 failures;
	char			 error[SPAM_ERROR_MAX];	/* the last one */
};

struct spam_job {
	struct spam		*b;
	struct spam_job		*prev, *next;	/* live list, then reaper's */
	unsigned		 id;
	enum spam_job_state	 state;
	int			 fd;		/* our dup of the message */
	size_t			 size;
	size_t			 off;		/* next message byte to send */
	struct buf		 head;		/* kept whole for a failover */
	size_t			 hoff;
	uint32_t		 tried;		/* one bit per address */
	unsigned		 attempts;
	size_t			 ai;		/* address in use */
	int			 sock;
	struct ev_io		 io;
	struct ev_timer		 kick;
	struct ev_timer		 attempt;	/* connect timeout */
	struct ev_timer		 deadline;	/* timeout_ms from submit */
	char			*wbuf;
	size_t			 woff, wlen;
	struct buf		 in;
	char			 error[SPAM_ERROR_MAX];	/* last failure */
	uint64_t		 t0;
	spam_done_cb		*cb;
	void			*arg;
};

struct spam {
	struct ev_loop		*loop;
	struct spam_conf	 conf;
	struct spam_addr	 addrs[SPAM_ADDRS_MAX];
	size_t			 naddrs;
	size_t			 rr;
	unsigned		 next_id;
	size_t			 njobs;
	struct spam_job		*jobs;
	struct spam_job		*dead_jobs;
	struct ev_timer		 reaper;
	unsigned long		 nchecks;	/* results delivered */
	unsigned long		 nunavailable;
	unsigned long		 nfailovers;
	unsigned long		 counts[SPAM_RULES];
};

/* Where spam_resolve() appends, and for which entry. */
struct spam_resolving {
	struct spam	*b;
	int		 server;
};

static const char *const spam_kind_names[] = {
	[SPAM_RSPAMD] = "rspamd",
	[SPAM_SPAMD] = "spamd",
};

static const char *const spam_job_names[] = {
	[SJ_QUEUED] = "queued",
	[SJ_CONNECTING] = "connecting",
	[SJ_SENDING] = "sending",
	[SJ_REPLY] = "reply",
	[SJ_DEAD] = "dead",
};

static int	spam_resolve(struct spam *, int, char *, size_t);
static int	spam_resolved(void *, const struct sockaddr_storage *,
		    const char *);
static void	spam_reap(struct ev_timer *);
static int	spam_addr_usable(const struct spam_addr *, uint64_t);
static void	spam_addr_failed(struct spam_addr *, const char *);
static int	spam_pick(const struct spam_job *);
static void	spam_job_close(struct spam_job *);
static void	spam_job_bury(struct spam_job *);
static void	spam_job_finish(struct spam_job *, const struct spam_result *);
static void	spam_job_unavailable(struct spam_job *, const char *);
static void	spam_job_attempt(struct spam_job *);
static void	spam_job_retry(struct spam_job *, const char *, const char *);
static int	spam_job_parse(struct spam_job *, int);
static void	spam_job_send(struct spam_job *);
static void	spam_job_recv(struct spam_job *);
static void	spam_job_io(struct ev_io *, int);
static void	spam_job_kick(struct ev_timer *);
static void	spam_job_connect_timeout(struct ev_timer *);
static void	spam_job_deadline(struct ev_timer *);

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

/* Append what conf.servers[server] resolves to. Blocks: startup only. */
static int
spam_resolve(struct spam *b, int server, char *err, size_t errlen)
{
	struct spam_resolving	 r = { b, server };
	const char		*spec = b->conf.servers[server];
	char			 host[HOSTPORT_HOST_MAX], port[HOSTPORT_PORT_MAX];
	char			 why[SPAM_ERROR_MAX];

	if (hostport_split(spec, host, sizeof(host), port, sizeof(port)) == -1) {
		snprintf(err, errlen, "spam: server \"%.64s\" is not host:port "
		    "or [v6]:port", spec);
		return -1;
	}
	if (hostport_resolve(host, port, spam_resolved, &r, why,
	    sizeof(why)) == -1) {
		snprintf(err, errlen, "spam: server %.64s: %s", spec, why);
		return -1;
	}
	return 0;
}

static int
spam_resolved(void *arg, const struct sockaddr_storage *ss, const char *name)
{
	struct spam_resolving	*r = arg;
	struct spam		*b = r->b;
	struct spam_addr	*a;

	if (b->naddrs == SPAM_ADDRS_MAX) {
		log_warn(NULL, "spam resolve entry=%s error=\"more than %d "
		    "addresses\" action=ignored", b->conf.servers[r->server],
		    SPAM_ADDRS_MAX);
		return -1;
	}
	a = &b->addrs[b->naddrs++];
	memset(a, 0, sizeof(*a));
	a->ss = *ss;
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->server = r->server;
	return 0;
}

static void
spam_reaper_arm(struct spam *b)
{
	if (b->reaper.when == 0)
		ev_timer_set(b->loop, &b->reaper, 0);
}

/* Timers run after the epoll batch: nothing still points at these. */
static void
spam_reap(struct ev_timer *tm)
{
	struct spam	*b = tm->arg;
	struct spam_job	*j;

	while ((j = b->dead_jobs) != NULL) {
		b->dead_jobs = j->next;
		free(j);
	}
}

static int
spam_addr_usable(const struct spam_addr *a, uint64_t now)
{
	return a->down_until == 0 || now >= a->down_until;
}

static void
spam_addr_failed(struct spam_addr *a, const char *why)
{
	a->failures++;
	snprintf(a->error, sizeof(a->error), "%s", why);
	if (a->down_until == 0)
		log_warn(NULL, "spam server=%s state=down error=\"%s\"",
		    a->name, why);
	a->down_until = ev_now() + SPAM_DOWN_MS;
}

/* Usable addresses from the round-robin start, then resting ones as a
 * last resort; never one this job has tried. */
static int
spam_pick(const struct spam_job *j)
{
	const struct spam	*b = j->b;
	uint64_t		 now = ev_now(), down = 0;
	size_t			 i;

	for (i = 0; i < b->naddrs; i++)
		if (!spam_addr_usable(&b->addrs[i], now))
			down |= UINT64_C(1) << i;
	return failover_pick(b->naddrs, b->rr, j->tried, down);
}

/* Drop the connection of the current attempt; the job lives on. */
static void
spam_job_close(struct spam_job *j)
{
	struct spam	*b = j->b;

	if (j->sock != -1) {
		ev_io_del(b->loop, &j->io);
		close(j->sock);
		j->sock = -1;
	}
	ev_timer_del(b->loop, &j->attempt);
	free(j->wbuf); j->wbuf = NULL;
	j->woff = j->wlen = 0;
	j->off = 0;
	j->hoff = 0;
	buf_free(&j->in);
}

/* Release everything but the memory, which the reaper frees. */
static void
spam_job_bury(struct spam_job *j)
{
	struct spam	*b = j->b;

	spam_job_close(j);
	ev_timer_del(b->loop, &j->kick);
	ev_timer_del(b->loop, &j->deadline);
	buf_free(&j->head);
	if (j->fd != -1) {
		close(j->fd);
		j->fd = -1;
	}
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		b->jobs = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	b->njobs--;
	j->state = SJ_DEAD;
	j->prev = NULL;
	j->next = b->dead_jobs;
	b->dead_jobs = j;
	spam_reaper_arm(b);
}

/* The job is gone before cb runs, so cb may submit or cancel anything. */
static void
spam_job_finish(struct spam_job *j, const struct spam_result *res)
{
	struct spam		*b = j->b;
	struct spam_result	 r = *res;
	spam_done_cb		*cb = j->cb;
	void			*arg = j->arg;

	r.ms = (unsigned)(ev_now() - j->t0);
	if (r.ok && j->state != SJ_QUEUED)
		snprintf(r.engine, sizeof(r.engine), "%s %s",
		    spam_kind_names[b->conf.kind], b->addrs[j->ai].name);
	else
		snprintf(r.engine, sizeof(r.engine), "%s",
		    spam_kind_names[b->conf.kind]);
	b->nchecks++;
	if (!r.ok)
		b->nunavailable++;
	log_debug(NULL, "spam check job=%u engine=\"%s\" size=%zu ok=%d "
	    "score=%.2f attempts=%u ms=%u", j->id, r.engine, j->size, r.ok,
	    r.score, j->attempts, r.ms);
	spam_job_bury(j);
	cb(arg, &r);
}

static void
spam_job_unavailable(struct spam_job *j, const char *why)
{
	struct spam_result	r;

	memset(&r, 0, sizeof(r));
	snprintf(r.error, sizeof(r.error), "%s", why);
	spam_job_finish(j, &r);
}

static void
spam_job_attempt(struct spam_job *j)
{
	struct spam		*b = j->b;
	struct spam_addr	*a;
	int			 i;

	for (;;) {
		if ((i = spam_pick(j)) == -1) {
			log_warn(NULL, "spam check job=%u error=\"no %s server "
			    "answered: %s\" attempts=%u",
			    j->id, spam_kind_names[b->conf.kind], j->error,
			    j->attempts);
			spam_job_unavailable(j, j->error[0] != '\0' ? j->error :
			    "no server reachable");
			return;
		}
		if (j->attempts == 0)
			b->rr = ((size_t)i + 1) % b->naddrs;
		else
			b->nfailovers++;
		j->tried |= UINT32_C(1) << i;
		j->ai = (size_t)i;
		j->attempts++;
		a = &b->addrs[i];
		if ((j->sock = sock_connect(&a->ss, NULL, 0)) == -1) {
			snprintf(j->error, sizeof(j->error), "connect %s: %s",
			    a->name, strerror(errno));
			log_warn(NULL, "spam check job=%u server=%s error=\"connect: "
			    "%s\" action=failover", j->id, a->name,
			    strerror(errno));
			spam_addr_failed(a, j->error);
			continue;
		}
		ev_io_init(&j->io, j->sock, spam_job_io, j);
		if (ev_io_set(b->loop, &j->io, EV_WRITE) == -1) {
			spam_job_unavailable(j, "epoll failed");
			return;
		}
		ev_timer_set(b->loop, &j->attempt, SPAM_CONNECT_MS);
		j->state = SJ_CONNECTING;
		return;
	}
}

/* The server failed before a score: it rests, the next one gets the
 * message from its start. */
static void
spam_job_retry(struct spam_job *j, const char *what, const char *detail)
{
	struct spam_addr	*a = &j->b->addrs[j->ai];

	snprintf(j->error, sizeof(j->error), "%s %s: %s", what, a->name,
	    detail);
	log_warn(NULL, "spam check job=%u server=%s error=\"%s: %s\" "
	    "action=failover", j->id, a->name, what, detail);
	spam_addr_failed(a, j->error);
	spam_job_close(j);
	spam_job_attempt(j);
}

/* Try the reply so far. -1: the job has moved on (result or failover). */
static int
spam_job_parse(struct spam_job *j, int eof)
{
	struct spam		*b = j->b;
	struct spam_result	 r;
	struct spam_addr	*a = &b->addrs[j->ai];
	int			 rc;

	memset(&r, 0, sizeof(r));
	rc = (b->conf.kind == SPAM_RSPAMD ? spam_rspamd_reply :
	    spam_spamd_reply)(buf_head(&j->in), buf_used(&j->in), eof, &r);
	if (rc == 0)
		return 0;
	if (rc == -1) {
		spam_job_retry(j, "reply", r.error);
		return -1;
	}
	a->checks++;
	if (a->down_until != 0) {
		a->down_until = 0;
		log_info(NULL, "spam server=%s state=up", a->name);
	}
	spam_job_finish(j, &r);
	return -1;
}

static void
spam_job_send(struct spam_job *j)
{
	struct spam	*b = j->b;
	unsigned	 burst = 0;
	size_t		 want;
	ssize_t		 n;

	/* The head first, from the copy kept for failovers. */
	while (j->hoff < buf_used(&j->head)) {
		n = send(j->sock, buf_head(&j->head) + j->hoff,
		    buf_used(&j->head) - j->hoff, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			spam_job_retry(j, "send", strerror(errno));
			return;
		}
		j->hoff += (size_t)n;
	}
	for (;;) {
		if (j->woff == j->wlen) {
			if (j->off == j->size) {
				free(j->wbuf); j->wbuf = NULL;
				j->state = SJ_REPLY;
				if (ev_io_set(b->loop, &j->io, EV_READ) == -1)
					spam_job_retry(j, "epoll",
					    strerror(errno));
				return;
			}
			if (burst++ == SPAM_WRITE_BURST)
				return;
			want = j->size - j->off;
			if (want > SPAM_CHUNK)
				want = SPAM_CHUNK;
			do
				n = pread(j->fd, j->wbuf, want, (off_t)j->off);
			while (n == -1 && errno == EINTR);
			if (n <= 0) {
				log_err(NULL, "spam check job=%u error=\"read at "
				    "%zu: %s\"", j->id, j->off, n == 0 ?
				    "message shorter than its size" :
				    strerror(errno));
				spam_job_unavailable(j, "cannot read the message");
				return;
			}
			j->off += (size_t)n;
			j->woff = 0;
			j->wlen = (size_t)n;
		}
		n = send(j->sock, j->wbuf + j->woff, j->wlen - j->woff,
		    MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			/* The engine may have answered (too big) and closed:
			 * that answer decides. */
			spam_job_recv(j);
			if (j->state == SJ_SENDING)
				spam_job_retry(j, "send", strerror(errno));
			return;
		}
		j->woff += (size_t)n;
	}
}

/* Read what has come; the job may finish or fail over in here. */
static void
spam_job_recv(struct spam_job *j)
{
	enum spam_job_state	st = j->state;
	ssize_t			n;

	for (;;) {
		n = buf_read_fd(&j->in, j->sock);
		if (n > 0) {
			if (spam_job_parse(j, 0) == -1)
				return;
			continue;
		}
		if (n == 0) {
			if (buf_used(&j->in) == 0) {
				spam_job_retry(j, "reply", "closed before a "
				    "reply");
				return;
			}
			(void)spam_job_parse(j, 1);
			if (j->state == st)
				fatal("spam check job=%u: complete reply not "
				    "taken", j->id);
			return;
		}
		if (errno == EAGAIN || errno == EINTR)
			return;
		spam_job_retry(j, "recv", errno == ENOBUFS ? "reply too long" :
		    strerror(errno));
		return;
	}
}

static void
spam_job_io(struct ev_io *io, int events)
{
	struct spam_job	*j = io->arg;
	struct spam	*b = j->b;

	switch (j->state) {
	case SJ_CONNECTING:
		if (sock_connect_result(j->sock) == -1) {
			spam_job_retry(j, "connect", strerror(errno));
			return;
		}
		ev_timer_del(b->loop, &j->attempt);
		if ((j->wbuf = malloc(SPAM_CHUNK)) == NULL) {
			spam_job_unavailable(j, "out of memory");
			return;
		}
		j->state = SJ_SENDING;
		if (ev_io_set(b->loop, &j->io, EV_READ | EV_WRITE) == -1) {
			spam_job_retry(j, "epoll", strerror(errno));
			return;
		}
		spam_job_send(j);
		return;
	case SJ_SENDING:
		if (events & EV_READ) {
			spam_job_recv(j);
			if (j->state != SJ_SENDING)
				return;
		}
		if (events & EV_WRITE)
			spam_job_send(j);
		return;
	case SJ_REPLY:
		spam_job_recv(j);
		return;
	default:
		fatal("spam check job=%u io in state %d", j->id, j->state);
	}
}

static void
spam_job_kick(struct ev_timer *tm)
{
	struct spam_job	*j = tm->arg;

	if (j->state != SJ_QUEUED)
		fatal("spam check job=%u kick in state %d", j->id, j->state);
	spam_job_attempt(j);
}

static void
spam_job_connect_timeout(struct ev_timer *tm)
{
	struct spam_job	*j = tm->arg;

	spam_job_retry(j, "connect", "timeout");
}

/* The whole budget is spent: a slow engine is not a dead one, so the
 * address keeps its state. */
static void
spam_job_deadline(struct ev_timer *tm)
{
	struct spam_job	*j = tm->arg;
	struct spam	*b = j->b;
	char		 why[SPAM_ERROR_MAX];

	if (j->state != SJ_QUEUED)
		b->addrs[j->ai].failures++;
	snprintf(why, sizeof(why), "no answer within %u ms%s%.80s",
	    b->conf.timeout_ms, j->error[0] != '\0' ? "; " : "", j->error);
	log_warn(NULL, "spam check job=%u server=%s error=\"%s\" state=%s",
	    j->id, j->state != SJ_QUEUED ? b->addrs[j->ai].name : "-", why,
	    spam_job_names[j->state]);
	spam_job_unavailable(j, why);
}

/* ---- the interface ---- */

struct spam_job *
spam_submit(struct spam *b, int fd, size_t size,
    const struct spam_envelope *e, spam_done_cb *cb, void *arg)
{
	struct spam_job	*j;
	int		 rc;

	if (b->njobs >= SPAM_JOBS_MAX) {
		log_warn(NULL, "spam submit error=\"%d checks in flight\"",
		    SPAM_JOBS_MAX);
		errno = EAGAIN;
		return NULL;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->b = b;
	j->id = ++b->next_id;
	j->size = size;
	j->sock = -1;
	j->cb = cb;
	j->arg = arg;
	j->t0 = ev_now();
	buf_init(&j->in, SPAM_REPLY_MAX);
	buf_init(&j->head, SPAM_HEAD_MAX);
	rc = b->conf.kind == SPAM_RSPAMD ? spam_rspamd_head(&j->head, e, size) :
	    spam_spamd_head(&j->head, e, size);
	if (rc == -1 || (j->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		buf_free(&j->head);
		free(j);
		if (rc == -1)
			errno = ENOBUFS;
		return NULL;
	}
	ev_timer_init(&j->kick, spam_job_kick, j);
	ev_timer_init(&j->attempt, spam_job_connect_timeout, j);
	ev_timer_init(&j->deadline, spam_job_deadline, j);
	j->state = SJ_QUEUED;
	ev_timer_set(b->loop, &j->deadline, b->conf.timeout_ms);
	ev_timer_set(b->loop, &j->kick, 0);
	j->next = b->jobs;
	if (b->jobs != NULL)
		b->jobs->prev = j;
	b->jobs = j;
	b->njobs++;
	return j;
}

void
spam_cancel(struct spam *b, struct spam_job *j)
{
	(void)b;
	if (j->state == SJ_DEAD)
		fatal("spam cancel of finished job=%u", j->id);
	log_debug(NULL, "spam check job=%u cancelled state=%s", j->id,
	    spam_job_names[j->state]);
	spam_job_bury(j);
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
	const struct spam_addr	*a;
	uint64_t		 now = ev_now();
	size_t			 i, up = 0;
	int			 r;

	for (i = 0; i < b->naddrs; i++)
		if (spam_addr_usable(&b->addrs[i], now))
			up++;
	if (buf_printf(out, "spam.engine=%s spam.addresses=%zu spam.up=%zu "
	    "spam.jobs=%zu spam.checks=%lu spam.unavailable=%lu "
	    "spam.failovers=%lu spam.timeout_ms=%u\n",
	    spam_kind_names[b->conf.kind], b->naddrs, up, b->njobs, b->nchecks,
	    b->nunavailable, b->nfailovers, b->conf.timeout_ms) == -1)
		return;
	for (r = 0; r < SPAM_RULES; r++)
		if (buf_printf(out, "%sspam.rule.%s=%lu", r > 0 ? " " : "",
		    spam_rule_name((enum spam_rule)r), b->counts[r]) == -1)
			return;
	if (buf_printf(out, "\n") == -1)
		return;
	for (i = 0; i < b->naddrs; i++) {
		a = &b->addrs[i];
		if (buf_printf(out, "spam.server=%s state=%s checks=%lu "
		    "failures=%lu entry=%s%s%s%s\n", a->name,
		    spam_addr_usable(a, now) ? "up" : "down", a->checks,
		    a->failures, b->conf.servers[a->server],
		    a->error[0] != '\0' ? " last_error=\"" : "", a->error,
		    a->error[0] != '\0' ? "\"" : "") == -1)
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
	while (b->jobs != NULL)
		spam_job_bury(b->jobs);
	spam_reap(&b->reaper);
	ev_timer_del(b->loop, &b->reaper);
	free(b);
}

struct spam *
spam_new(struct ev_loop *loop, const struct spam_conf *conf, char *err,
    size_t errlen)
{
	struct spam	*b;
	int		 i;

	if (conf->nservers < 1 || conf->nservers > SPAM_SERVERS_MAX) {
		snprintf(err, errlen, "spam: %d servers configured, want 1 to "
		    "%d", conf->nservers, SPAM_SERVERS_MAX);
		return NULL;
	}
	if (conf->timeout_ms == 0) {
		snprintf(err, errlen, "spam: the timeout must be above 0 ms");
		return NULL;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "spam: out of memory");
		return NULL;
	}
	b->loop = loop;
	b->conf = *conf;
	ev_timer_init(&b->reaper, spam_reap, b);
	for (i = 0; i < conf->nservers; i++)
		if (spam_resolve(b, i, err, errlen) == -1) {
			free(b);
			return NULL;
		}
	log_info(NULL, "spam engine=%s servers=%d addresses=%zu timeout_ms=%u",
	    spam_kind_names[conf->kind], conf->nservers, b->naddrs,
	    conf->timeout_ms);
	return b;
}
