/* SPDX-License-Identifier: MIT */
/*
 * The client of a farm of equivalent servers, shared by the clamd and
 * spam engine adapters: the entries resolved into an address table (a
 * reload builds a new one; jobs keep the one they started with), each
 * address's health (unknown, up, down with the reason, and for a farm
 * with down_ms a rest after which it is tried again), the choice of the
 * next address (failover.c's order), and the jobs: a deadline from
 * submit, a connect with a timeout on the event loop, a head kept whole
 * and then the caller's descriptor streamed in chunks (pread, never the
 * file position), the reply read into a bounded buffer, and on any
 * failure before an answer the whole exchange again on the next address.
 * An optional health timer runs a one-command probe of each address. It
 * knows nothing of what the servers speak: the adapter's farm_ops parse
 * replies and probe answers and turn a job's end into a result. It trusts
 * the configuration and the caller's descriptor. Nothing here blocks
 * except getaddrinfo() in farm_new() and farm_reload(), startup and
 * reload time only. Jobs and tables are freed by a timer, never inside an
 * I/O callback: the epoll batch being delivered may still point at them.
 * Also the one non-blocking connect for a server socket, unix or TCP
 * (milter.c uses it too).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "ev.h"
#include "failover.h"
#include "farm.h"
#include "hostport.h"
#include "log.h"
#include "sock.h"

#define FARM_CHUNK		(64 * 1024)	/* message bytes per chunk */
#define FARM_FRAME		4		/* a framed chunk's length */
#define FARM_WRITE_BURST	16	/* chunks per wakeup, so one big
					 * message never starves the loop */

_Static_assert(FARM_ADDRS_MAX <= FAILOVER_MAX, "a job's tried set is a "
    "uint64_t");

enum farm_probe_state {
	FP_IDLE,
	FP_CONNECTING,
	FP_EXCHANGE,		/* command out, answer in */
};

enum farm_job_state {
	FJ_QUEUED,		/* submitted; the loop starts it */
	FJ_CONNECTING,
	FJ_STREAMING,		/* sending; the server may answer early */
	FJ_REPLY,		/* everything sent, waiting for the reply */
	FJ_DELIVER,		/* result known at submit, waiting for the loop */
	FJ_DEAD,		/* finished or cancelled, waiting for the reaper */
};

/*
 * What the entries resolved to. A reload builds a new table; jobs keep a
 * reference to the one they started with, so their failover order never
 * changes under them.
 */
struct farm_table {
	unsigned		 refs;
	size_t			 naddrs;
	struct farm_table	*next;		/* on the reaper's list */
	struct farm_addr	 addrs[FARM_ADDRS_MAX];
};

struct farm_job {
	struct farm		*f;
	struct farm_job		*prev, *next;	/* live list, then reaper's */
	unsigned		 id;
	enum farm_job_state	 state;
	int			 fd;		/* our dup of the message */
	size_t			 size;
	size_t			 off;		/* next message byte to send */
	int			 eos;		/* framed: the empty chunk queued */
	struct buf		 head;		/* kept whole for a failover */
	size_t			 hoff;
	struct farm_table	*tab;
	size_t			 first;		/* round-robin start */
	size_t			 ai;		/* address in use */
	uint64_t		 tried;		/* one bit per address */
	unsigned		 attempts;
	int			 sock;
	struct ev_io		 io;
	struct ev_timer		 kick;		/* start, or deferred result */
	struct ev_timer		 attempt;	/* connect timeout */
	struct ev_timer		 deadline;	/* deadline_ms from submit */
	char			*wbuf;		/* one chunk, while streaming */
	size_t			 woff, wlen;
	struct buf		 in;
	char			 error[FARM_ERR_MAX];	/* the last failure */
	uint64_t		 t0;
	max_align_t		 ctx[];		/* the adapter's */
};

struct farm {
	struct ev_loop		*loop;
	struct farm_conf	 conf;
	char			 entries[FARM_SERVERS_MAX][FARM_ENTRY_MAX];
	char			 unresolved[FARM_SERVERS_MAX][FARM_ERR_MAX];
	struct farm_table	*tab;
	size_t			 rr;
	unsigned		 next_id;
	size_t			 njobs;
	struct farm_job		*jobs;
	struct farm_job		*dead_jobs;
	struct farm_table	*dead_tabs;
	struct ev_timer		 reaper;
	struct ev_timer		 health;
	unsigned long		 nfailovers;
};

/* Where farm_resolve() appends, and for which entry. */
struct farm_resolving {
	struct farm		*f;
	struct farm_table	*t;
	int			 server;
};

static int	farm_conf_check(const struct farm_conf *, char *, size_t);
static int	farm_resolve(struct farm *, struct farm_table *, int, char *,
		    size_t);
static int	farm_resolved(void *, const struct sockaddr_storage *,
		    const char *);
static struct farm_table *farm_table_build(struct farm *,
		    const struct farm_table *, char *, size_t);
static void	farm_table_unref(struct farm *, struct farm_table *);
static void	farm_reaper_arm(struct farm *);
static void	farm_reap(struct ev_timer *);
static void	farm_addr_set(struct farm *, struct farm_addr *,
		    enum farm_state, const char *);
static struct farm_addr *farm_addr_live(struct farm *, struct farm_addr *);
static void	farm_addr_failed(struct farm *, struct farm_addr *,
		    const char *);
static void	farm_health(struct ev_timer *);
static void	farm_probe_io(struct ev_io *, int);
static void	farm_probe_timeout(struct ev_timer *);
static void	farm_probes_stop(struct farm_table *);
static struct farm_job *farm_job_new(struct farm *, size_t);
static void	farm_job_link(struct farm_job *);
static int	farm_pick(const struct farm_job *);
static void	farm_job_close(struct farm_job *);
static void	farm_job_attempt(struct farm_job *);
static int	farm_job_fill(struct farm_job *);
static void	farm_job_send(struct farm_job *);
static void	farm_job_send_failed(struct farm_job *, int);
static int	farm_job_recv(struct farm_job *);
static void	farm_job_io(struct ev_io *, int);
static void	farm_job_kick(struct ev_timer *);
static void	farm_job_connect_timeout(struct ev_timer *);
static void	farm_job_deadline(struct ev_timer *);

static const char *const farm_state_names[] = {
	[FARM_UNKNOWN] = "unknown",
	[FARM_UP] = "up",
	[FARM_DOWN] = "down",
};

static const char *const farm_job_names[] = {
	[FJ_QUEUED] = "queued",
	[FJ_CONNECTING] = "connecting",
	[FJ_STREAMING] = "streaming",
	[FJ_REPLY] = "reply",
	[FJ_DELIVER] = "deliver",
	[FJ_DEAD] = "dead",
};

/* ---- the address table ---- */

static int
farm_conf_check(const struct farm_conf *c, char *err, size_t errlen)
{
	char	host[HOSTPORT_HOST_MAX], port[HOSTPORT_PORT_MAX];
	int	i;

	if (c->entries_max > FARM_SERVERS_MAX || c->addrs_max == 0 ||
	    c->addrs_max > FARM_ADDRS_MAX || c->ops == NULL)
		fatal("farm %s: entries_max %d addrs_max %zu", c->name,
		    c->entries_max, c->addrs_max);
	if (c->nentries < 1 || c->nentries > c->entries_max) {
		snprintf(err, errlen, "%s: %d servers configured, want 1 to %d",
		    c->name, c->nentries, c->entries_max);
		return -1;
	}
	for (i = 0; i < c->nentries; i++) {
		if (memchr(c->entries[i], '\0', FARM_ENTRY_MAX) == NULL ||
		    hostport_split(c->entries[i], host, sizeof(host), port,
		    sizeof(port)) == -1) {
			snprintf(err, errlen, "%s: server \"%.64s\" is not "
			    "host:port or [v6]:port", c->name, c->entries[i]);
			return -1;
		}
	}
	return 0;
}

/*
 * Append what entry server resolves to, skipping addresses the table
 * already has. Blocks in getaddrinfo(): startup and reload only.
 */
static int
farm_resolve(struct farm *f, struct farm_table *t, int server, char *err,
    size_t errlen)
{
	struct farm_resolving	 r = { f, t, server };
	char			 host[HOSTPORT_HOST_MAX], port[HOSTPORT_PORT_MAX];

	if (hostport_split(f->entries[server], host, sizeof(host), port,
	    sizeof(port)) == -1) {
		snprintf(err, errlen, "not host:port");
		return -1;
	}
	return hostport_resolve(host, port, farm_resolved, &r, err, errlen);
}

static int
farm_resolved(void *arg, const struct sockaddr_storage *ss, const char *name)
{
	struct farm_resolving	*r = arg;
	struct farm_table	*t = r->t;
	struct farm_addr	*a;
	size_t			 i;

	if (t->naddrs == r->f->conf.addrs_max) {
		log_warn(NULL, "%s resolve entry=%s error=\"more than %zu "
		    "addresses\" action=ignored", r->f->conf.name,
		    r->f->entries[r->server], r->f->conf.addrs_max);
		return -1;
	}
	for (i = 0; i < t->naddrs; i++)
		if (strcmp(t->addrs[i].name, name) == 0)
			return 0;
	a = &t->addrs[t->naddrs++];
	memset(a, 0, sizeof(*a));
	a->ss = *ss;
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->server = r->server;
	a->state = FARM_UNKNOWN;
	return 0;
}

/*
 * Resolve every entry into a new table. An address already in old keeps
 * its state and counters; an entry that does not resolve now keeps the
 * addresses it had, so a DNS hiccup at reload loses nothing. A strict
 * farm wants every entry to resolve.
 */
static struct farm_table *
farm_table_build(struct farm *f, const struct farm_table *old, char *err,
    size_t errlen)
{
	struct farm_table	*t;
	struct farm_addr	*a;
	const struct farm_addr	*o;
	char			 why[FARM_ERR_MAX];
	size_t			 i, k;
	int			 s;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", f->conf.name);
		return NULL;
	}
	t->refs = 1;
	for (s = 0; s < f->conf.nentries; s++) {
		f->unresolved[s][0] = '\0';
		if (farm_resolve(f, t, s, why, sizeof(why)) != -1)
			continue;
		if (f->conf.strict) {
			snprintf(err, errlen, "%s: server %.64s: %s",
			    f->conf.name, f->entries[s], why);
			free(t);
			return NULL;
		}
		snprintf(f->unresolved[s], sizeof(f->unresolved[s]), "%s", why);
		log_warn(NULL, "%s resolve entry=%s error=\"%s\"%s",
		    f->conf.name, f->entries[s], why, old != NULL ?
		    " action=kept-old-addresses" : "");
		for (k = 0; old != NULL && k < old->naddrs; k++) {
			if (old->addrs[k].server != s ||
			    t->naddrs == f->conf.addrs_max)
				continue;
			t->addrs[t->naddrs] = old->addrs[k];
			t->naddrs++;
		}
	}
	if (t->naddrs == 0) {
		snprintf(err, errlen, "%s: no server address resolves "
		    "(first: %s: %s)", f->conf.name, f->entries[0],
		    f->unresolved[0]);
		free(t);
		return NULL;
	}
	for (i = 0; i < t->naddrs; i++) {
		a = &t->addrs[i];
		for (k = 0; old != NULL && k < old->naddrs; k++) {
			o = &old->addrs[k];
			if (strcmp(o->name, a->name) != 0)
				continue;
			a->state = o->state;
			a->down_until = o->down_until;
			memcpy(a->reason, o->reason, sizeof(a->reason));
			memcpy(a->label, o->label, sizeof(a->label));
			a->answers = o->answers;
			a->failures = o->failures;
			break;
		}
		memset(&a->probe, 0, sizeof(a->probe));
		a->probe.f = f;
		a->probe.a = a;
		a->probe.state = FP_IDLE;
		a->probe.sock = -1;
		ev_timer_init(&a->probe.timer, farm_probe_timeout, &a->probe);
		buf_init(&a->probe.in, f->conf.reply_max);
	}
	return t;
}

/* The last reference goes to the reaper: a probe of it may be in the
 * epoll batch being delivered. */
static void
farm_table_unref(struct farm *f, struct farm_table *t)
{
	if (t == NULL)
		return;
	if (t->refs == 0)
		fatal("%s table unref below zero", f->conf.name);
	if (--t->refs > 0)
		return;
	t->next = f->dead_tabs;
	f->dead_tabs = t;
	farm_reaper_arm(f);
}

static void
farm_reaper_arm(struct farm *f)
{
	if (f->reaper.when == 0)
		ev_timer_set(f->loop, &f->reaper, 0);
}

/* Timers run after the epoll batch, so nothing here is still referenced
 * by a pending event. Jobs first: they may drop the last table ref. */
static void
farm_reap(struct ev_timer *tm)
{
	struct farm		*f = tm->arg;
	struct farm_job		*j;
	struct farm_table	*t;

	while ((j = f->dead_jobs) != NULL) {
		f->dead_jobs = j->next;
		farm_table_unref(f, j->tab);
		free(j);
	}
	while ((t = f->dead_tabs) != NULL) {
		f->dead_tabs = t->next;
		free(t);
	}
}

/* ---- health ---- */

static void
farm_addr_set(struct farm *f, struct farm_addr *a, enum farm_state st,
    const char *why)
{
	if (st == FARM_DOWN) {
		snprintf(a->reason, sizeof(a->reason), "%s", why);
		if (f->conf.down_ms > 0)
			a->down_until = ev_now() + f->conf.down_ms;
	} else
		a->down_until = 0;
	if (a->state == st)
		return;
	a->state = st;
	if (st == FARM_DOWN)
		log_warn(NULL, "%s server=%s state=down error=\"%s\"",
		    f->conf.name, a->name, why);
	else if (f->conf.label_key != NULL)
		log_info(NULL, "%s server=%s state=%s %s=\"%s\"", f->conf.name,
		    a->name, farm_state_names[st], f->conf.label_key,
		    a->label);
	else
		log_info(NULL, "%s server=%s state=%s", f->conf.name, a->name,
		    farm_state_names[st]);
}

/*
 * The current table's entry for a job's address: a job that started
 * before a reload still counts, and marks up or down, what status shows.
 */
static struct farm_addr *
farm_addr_live(struct farm *f, struct farm_addr *a)
{
	struct farm_table	*t = f->tab;
	size_t			 i;

	if (a >= t->addrs && a < t->addrs + t->naddrs)
		return a;
	for (i = 0; i < t->naddrs; i++)
		if (strcmp(t->addrs[i].name, a->name) == 0)
			return &t->addrs[i];
	return a;
}

static void
farm_addr_failed(struct farm *f, struct farm_addr *a, const char *why)
{
	a->failures++;
	farm_addr_set(f, a, FARM_DOWN, why);
}

/* A probe says the address works; label: what it learnt, or NULL. */
void
farm_addr_up(struct farm *f, struct farm_addr *a, const char *label)
{
	if (label != NULL) {
		if (a->state == FARM_UP && f->conf.label_key != NULL &&
		    strcmp(label, a->label) != 0)
			log_info(NULL, "%s server=%s %s=\"%s\" old=\"%s\"",
			    f->conf.name, a->name, f->conf.label_key, label,
			    a->label);
		snprintf(a->label, sizeof(a->label), "%s", label);
	}
	farm_addr_set(f, a, FARM_UP, NULL);
}

/* Down but rested long enough counts as usable again. */
int
farm_addr_usable(const struct farm_addr *a)
{
	return a->state != FARM_DOWN ||
	    (a->down_until != 0 && ev_now() >= a->down_until);
}

static void
farm_health(struct ev_timer *tm)
{
	struct farm		*f = tm->arg;
	struct farm_addr	*a;
	size_t			 i;

	for (i = 0; i < f->tab->naddrs; i++) {
		a = &f->tab->addrs[i];
		if (a->probe.state == FP_IDLE && f->conf.ops->probe != NULL)
			f->conf.ops->probe(f, a);
	}
	ev_timer_set(f->loop, &f->health, f->conf.health_ms);
}

/* cmd is kept, not copied: a string that outlives the probe. */
void
farm_probe_send(struct farm *f, struct farm_addr *a, const char *what,
    const char *cmd, size_t cmdlen)
{
	struct farm_probe	*p = &a->probe;

	p->what = what;
	p->cmd = cmd;
	p->cmdlen = cmdlen;
	p->sent = 0;
	if ((p->sock = farm_connect(&a->ss)) == -1) {
		farm_probe_fail(a, "connect", strerror(errno));
		return;
	}
	ev_io_init(&p->io, p->sock, farm_probe_io, p);
	if (ev_io_set(f->loop, &p->io, EV_WRITE) == -1) {
		farm_probe_fail(a, "epoll", strerror(errno));
		return;
	}
	ev_timer_set(f->loop, &p->timer, f->conf.connect_ms);
	p->state = FP_CONNECTING;
}

void
farm_probe_stop(struct farm_addr *a)
{
	struct farm_probe	*p = &a->probe;
	struct farm		*f = p->f;

	if (p->sock != -1) {
		ev_io_del(f->loop, &p->io);
		close(p->sock);
		p->sock = -1;
	}
	ev_timer_del(f->loop, &p->timer);
	buf_free(&p->in);
	p->state = FP_IDLE;
}

/* The address is down, for "WHAT what: detail" (a probe is no attempt:
 * failures does not count it). */
void
farm_probe_fail(struct farm_addr *a, const char *what, const char *detail)
{
	struct farm_probe	*p = &a->probe;
	char			 why[FARM_ERR_MAX];

	snprintf(why, sizeof(why), "%s %s: %s", p->what, what, detail);
	farm_probe_stop(a);
	farm_addr_set(p->f, a, FARM_DOWN, why);
}

static void
farm_probe_io(struct ev_io *io, int events)
{
	struct farm_probe	*p = io->arg;
	struct farm		*f = p->f;
	ssize_t			 n;

	switch (p->state) {
	case FP_CONNECTING:
		if (sock_connect_result(p->sock) == -1) {
			farm_probe_fail(p->a, "connect", strerror(errno));
			return;
		}
		p->state = FP_EXCHANGE;
		if (ev_io_set(f->loop, &p->io, EV_READ | EV_WRITE) == -1) {
			farm_probe_fail(p->a, "epoll", strerror(errno));
			return;
		}
		ev_timer_set(f->loop, &p->timer, f->conf.connect_ms);
		events = EV_WRITE;
		/* FALLTHROUGH */
	case FP_EXCHANGE:
		if ((events & EV_WRITE) && p->sent < p->cmdlen) {
			n = send(p->sock, p->cmd + p->sent, p->cmdlen - p->sent,
			    MSG_NOSIGNAL);
			if (n == -1 && errno != EAGAIN && errno != EINTR) {
				farm_probe_fail(p->a, "send", strerror(errno));
				return;
			}
			if (n > 0)
				p->sent += (size_t)n;
			if (p->sent == p->cmdlen &&
			    ev_io_set(f->loop, &p->io, EV_READ) == -1) {
				farm_probe_fail(p->a, "epoll", strerror(errno));
				return;
			}
		}
		if (!(events & EV_READ))
			return;
		n = buf_read_fd(&p->in, p->sock);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == -1) {
			farm_probe_fail(p->a, "recv", errno == ENOBUFS ?
			    "answer too long" : strerror(errno));
			return;
		}
		if (n == 0) {
			farm_probe_fail(p->a, "recv", "closed before an answer");
			return;
		}
		(void)f->conf.ops->probe_answer(f, p->a, buf_head(&p->in),
		    buf_used(&p->in));
		return;
	default:
		fatal("%s probe server=%s io in state %d", f->conf.name,
		    p->a->name, p->state);
	}
}

static void
farm_probe_timeout(struct ev_timer *tm)
{
	struct farm_probe	*p = tm->arg;

	farm_probe_fail(p->a, p->state == FP_CONNECTING ? "connect" : "answer",
	    "timeout");
}

static void
farm_probes_stop(struct farm_table *t)
{
	size_t	i;

	for (i = 0; t != NULL && i < t->naddrs; i++)
		farm_probe_stop(&t->addrs[i]);
}

/* ---- jobs ---- */

static struct farm_job *
farm_job_new(struct farm *f, size_t ctxsize)
{
	struct farm_job	*j;

	if (f->njobs >= f->conf.jobs_max) {
		log_warn(NULL, "%s submit error=\"%zu %ss in flight\"",
		    f->conf.name, f->conf.jobs_max, f->conf.verb);
		errno = EAGAIN;
		return NULL;
	}
	if ((j = calloc(1, sizeof(*j) + ctxsize)) == NULL)
		return NULL;
	j->f = f;
	j->id = ++f->next_id;
	j->fd = -1;
	j->sock = -1;
	j->t0 = ev_now();
	buf_init(&j->in, f->conf.reply_max);
	ev_timer_init(&j->kick, farm_job_kick, j);
	ev_timer_init(&j->attempt, farm_job_connect_timeout, j);
	ev_timer_init(&j->deadline, farm_job_deadline, j);
	return j;
}

static void
farm_job_link(struct farm_job *j)
{
	struct farm	*f = j->f;

	ev_timer_set(f->loop, &j->kick, 0);
	j->next = f->jobs;
	if (f->jobs != NULL)
		f->jobs->prev = j;
	f->jobs = j;
	f->njobs++;
}

/* Healthy addresses from the round-robin start, then down ones as a last
 * resort (nothing else may bring them back); never one this job has
 * tried. */
static int
farm_pick(const struct farm_job *j)
{
	const struct farm_table	*t = j->tab;
	uint64_t		 down = 0;
	size_t			 i;

	for (i = 0; i < t->naddrs; i++)
		if (!farm_addr_usable(&t->addrs[i]))
			down |= UINT64_C(1) << i;
	return failover_pick(t->naddrs, j->first, j->tried, down);
}

/* Drop the connection of the current attempt; the job lives on. */
static void
farm_job_close(struct farm_job *j)
{
	struct farm	*f = j->f;

	if (j->sock != -1) {
		ev_io_del(f->loop, &j->io);
		close(j->sock);
		j->sock = -1;
	}
	ev_timer_del(f->loop, &j->attempt);
	free(j->wbuf); j->wbuf = NULL;
	j->woff = j->wlen = 0;
	j->off = 0;
	j->hoff = 0;
	j->eos = 0;
	buf_free(&j->in);
}

/* Release everything but the memory, which the reaper frees: the
 * adapter's context stays readable until its callback returns. */
void
farm_job_end(struct farm_job *j)
{
	struct farm	*f = j->f;

	if (j->state == FJ_DEAD)
		fatal("%s %s job=%u ended twice", f->conf.name, f->conf.verb,
		    j->id);
	farm_job_close(j);
	ev_timer_del(f->loop, &j->kick);
	ev_timer_del(f->loop, &j->deadline);
	buf_free(&j->head);
	if (j->fd != -1) {
		close(j->fd);
		j->fd = -1;
	}
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		f->jobs = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	f->njobs--;
	j->state = FJ_DEAD;
	j->prev = NULL;
	j->next = f->dead_jobs;
	f->dead_jobs = j;
	farm_reaper_arm(f);
}

static void
farm_job_attempt(struct farm_job *j)
{
	struct farm		*f = j->f;
	struct farm_addr	*a;
	char			 why[FARM_ERR_MAX];
	int			 i, err;

	/* The start is taken here, not at submit: jobs submitted in one
	 * burst then spread instead of all starting on one address. */
	if (j->attempts == 0 && j->tab == f->tab)
		j->first = f->rr % j->tab->naddrs;
	for (;;) {
		if ((i = farm_pick(j)) == -1) {
			f->conf.ops->fail(j, FARM_EXHAUSTED, j->error);
			return;
		}
		if (j->attempts == 0 && j->tab == f->tab)
			f->rr = ((size_t)i + 1) % j->tab->naddrs;
		else if (j->attempts > 0)
			f->nfailovers++;
		j->tried |= UINT64_C(1) << i;
		j->ai = (size_t)i;
		j->attempts++;
		a = &j->tab->addrs[i];
		if ((j->sock = farm_connect(&a->ss)) == -1) {
			err = errno;
			snprintf(j->error, sizeof(j->error), "connect %s: %s",
			    a->name, strerror(err));
			snprintf(why, sizeof(why), "connect: %s", strerror(err));
			log_warn(NULL, "%s %s job=%u server=%s error=\"%s\" "
			    "action=failover", f->conf.name, f->conf.verb,
			    j->id, a->name, why);
			farm_addr_failed(f, farm_addr_live(f, a), why);
			continue;
		}
		ev_io_init(&j->io, j->sock, farm_job_io, j);
		if (ev_io_set(f->loop, &j->io, EV_WRITE) == -1) {
			log_err(NULL, "%s %s job=%u error=\"epoll: %s\"",
			    f->conf.name, f->conf.verb, j->id,
			    strerror(errno));
			f->conf.ops->fail(j, FARM_BROKEN, "epoll failed");
			return;
		}
		ev_timer_set(f->loop, &j->attempt, f->conf.connect_ms);
		j->state = FJ_CONNECTING;
		return;
	}
}

/* The server failed before a result: mark it down, try the next one
 * from the start of the message. */
void
farm_job_retry(struct farm_job *j, const char *what, const char *detail)
{
	struct farm		*f = j->f;
	struct farm_addr	*a = &j->tab->addrs[j->ai];
	char			 why[FARM_ERR_MAX];

	snprintf(j->error, sizeof(j->error), "%s %s: %s", what, a->name,
	    detail);
	snprintf(why, sizeof(why), "%s: %s", what, detail);
	log_warn(NULL, "%s %s job=%u server=%s error=\"%s\" action=failover",
	    f->conf.name, f->conf.verb, j->id, a->name, why);
	farm_addr_failed(f, farm_addr_live(f, a), why);
	farm_job_close(j);
	farm_job_attempt(j);
}

/* The server gave a result: count it, and it is up again if it was
 * down. The address is the current table's. */
struct farm_addr *
farm_job_answered(struct farm_job *j)
{
	struct farm_addr	*a;

	a = farm_addr_live(j->f, &j->tab->addrs[j->ai]);
	a->answers++;
	if (a->state == FARM_DOWN)
		farm_addr_set(j->f, a, FARM_UP, NULL);
	return a;
}

/* Queue the next chunk of the message (framed: "<4-byte big-endian
 * length><data>", or the empty chunk that ends the stream). -1: the job
 * has ended. */
static int
farm_job_fill(struct farm_job *j)
{
	struct farm	*f = j->f;
	size_t		 hdr = f->conf.framed ? FARM_FRAME : 0;
	size_t		 want = j->size - j->off;
	uint32_t	 len;
	ssize_t		 n;

	if (want > FARM_CHUNK)
		want = FARM_CHUNK;
	j->woff = 0;
	n = 0;
	if (want > 0) {
		do
			n = pread(j->fd, j->wbuf + hdr, want, (off_t)j->off);
		while (n == -1 && errno == EINTR);
		if (n <= 0) {
			log_err(NULL, "%s %s job=%u error=\"read at %zu: %s\"",
			    f->conf.name, f->conf.verb, j->id, j->off, n == 0 ?
			    "message shorter than its size" : strerror(errno));
			f->conf.ops->fail(j, FARM_BROKEN,
			    "cannot read the message");
			return -1;
		}
		j->off += (size_t)n;
	} else
		j->eos = 1;
	if (hdr > 0) {
		len = htonl((uint32_t)n);
		memcpy(j->wbuf, &len, FARM_FRAME);
	}
	j->wlen = hdr + (size_t)n;
	return 0;
}

static void
farm_job_send(struct farm_job *j)
{
	struct farm	*f = j->f;
	unsigned	 burst = 0;
	ssize_t		 n;

	/* The head first, from the copy kept for failovers. */
	while (j->hoff < buf_used(&j->head)) {
		n = send(j->sock, buf_head(&j->head) + j->hoff,
		    buf_used(&j->head) - j->hoff, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno != EAGAIN && errno != EINTR)
				farm_job_send_failed(j, errno);
			return;
		}
		j->hoff += (size_t)n;
	}
	for (;;) {
		if (j->woff == j->wlen) {
			if (f->conf.framed ? j->eos : j->off == j->size) {
				free(j->wbuf); j->wbuf = NULL;
				j->state = FJ_REPLY;
				if (ev_io_set(f->loop, &j->io, EV_READ) == -1)
					farm_job_retry(j, "epoll",
					    strerror(errno));
				return;
			}
			if (burst++ == FARM_WRITE_BURST)
				return;
			if (farm_job_fill(j) == -1)
				return;
		}
		n = send(j->sock, j->wbuf + j->woff, j->wlen - j->woff,
		    MSG_NOSIGNAL);
		if (n == -1) {
			if (errno != EAGAIN && errno != EINTR)
				farm_job_send_failed(j, errno);
			return;
		}
		j->woff += (size_t)n;
	}
}

/* The server may have answered (a size limit) and closed: that answer
 * decides. */
static void
farm_job_send_failed(struct farm_job *j, int err)
{
	if (farm_job_recv(j) == -1)
		return;
	farm_job_retry(j, "send", strerror(err));
}

/* Read what has come. -1: the job has moved on (result or failover). */
static int
farm_job_recv(struct farm_job *j)
{
	struct farm		*f = j->f;
	const struct farm_ops	*ops = f->conf.ops;
	char			 why[FARM_ERR_MAX];
	ssize_t			 n;

	for (;;) {
		n = buf_read_fd(&j->in, j->sock);
		if (n > 0) {
			if (ops->reply(j, buf_head(&j->in), buf_used(&j->in),
			    0) == -1)
				return -1;
			continue;
		}
		if (n == 0) {
			if (ops->reply(j, buf_head(&j->in), buf_used(&j->in),
			    1) == 0)
				fatal("%s %s job=%u: the reply at its end not "
				    "taken", f->conf.name, f->conf.verb, j->id);
			return -1;
		}
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		if (errno == ENOBUFS)
			snprintf(why, sizeof(why), "%s too long",
			    f->conf.answer);
		else
			snprintf(why, sizeof(why), "%s", strerror(errno));
		farm_job_retry(j, "recv", why);
		return -1;
	}
}

static void
farm_job_io(struct ev_io *io, int events)
{
	struct farm_job	*j = io->arg;
	struct farm	*f = j->f;

	switch (j->state) {
	case FJ_CONNECTING:
		if (sock_connect_result(j->sock) == -1) {
			farm_job_retry(j, "connect", strerror(errno));
			return;
		}
		ev_timer_del(f->loop, &j->attempt);
		if ((j->wbuf = malloc(FARM_FRAME + FARM_CHUNK)) == NULL) {
			f->conf.ops->fail(j, FARM_BROKEN, "out of memory");
			return;
		}
		j->state = FJ_STREAMING;
		if (ev_io_set(f->loop, &j->io, EV_READ | EV_WRITE) == -1) {
			farm_job_retry(j, "epoll", strerror(errno));
			return;
		}
		farm_job_send(j);
		return;
	case FJ_STREAMING:
		if ((events & EV_READ) && farm_job_recv(j) == -1)
			return;
		if (events & EV_WRITE)
			farm_job_send(j);
		return;
	case FJ_REPLY:
		(void)farm_job_recv(j);
		return;
	default:
		fatal("%s %s job=%u io in state %d", f->conf.name, f->conf.verb,
		    j->id, j->state);
	}
}

static void
farm_job_kick(struct ev_timer *tm)
{
	struct farm_job	*j = tm->arg;
	struct farm	*f = j->f;

	switch (j->state) {
	case FJ_QUEUED:
		farm_job_attempt(j);
		return;
	case FJ_DELIVER:
		f->conf.ops->deliver(j);
		return;
	default:
		fatal("%s %s job=%u kick in state %d", f->conf.name,
		    f->conf.verb, j->id, j->state);
	}
}

static void
farm_job_connect_timeout(struct ev_timer *tm)
{
	struct farm_job	*j = tm->arg;

	farm_job_retry(j, "connect", "timeout");
}

/* The whole budget is spent: a slow server is not a dead one, so the
 * address keeps its state. */
static void
farm_job_deadline(struct ev_timer *tm)
{
	struct farm_job	*j = tm->arg;

	if (j->attempts > 0)
		farm_addr_live(j->f, &j->tab->addrs[j->ai])->failures++;
	j->f->conf.ops->fail(j, FARM_DEADLINE, j->error);
}

/* ---- the interface ---- */

/*
 * Send head, then size bytes readable from fd at offset 0 (fd is dup'ed),
 * to one address after another until one replies. The ops run from the
 * loop, never inside submit. ctxsize bytes of zeroes for the adapter,
 * farm_job_ctx(). NULL with errno set.
 */
struct farm_job *
farm_submit(struct farm *f, int fd, size_t size, const void *head,
    size_t headlen, size_t ctxsize)
{
	struct farm_job	*j;

	if ((j = farm_job_new(f, ctxsize)) == NULL)
		return NULL;
	buf_init(&j->head, headlen > 0 ? headlen : 1);
	if (headlen > 0 && buf_append(&j->head, head, headlen) == -1) {
		buf_free(&j->head);
		free(j);
		errno = ENOBUFS;
		return NULL;
	}
	j->size = size;
	if ((j->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		buf_free(&j->head);
		free(j);
		return NULL;
	}
	j->state = FJ_QUEUED;
	j->tab = f->tab;
	j->tab->refs++;
	ev_timer_set(f->loop, &j->deadline, f->conf.deadline_ms);
	farm_job_link(j);
	return j;
}

/* A job whose result the adapter knows already: ops->deliver runs from
 * the loop, as any result does. */
struct farm_job *
farm_defer(struct farm *f, size_t ctxsize)
{
	struct farm_job	*j;

	if ((j = farm_job_new(f, ctxsize)) == NULL)
		return NULL;
	j->state = FJ_DELIVER;
	farm_job_link(j);
	return j;
}

void
farm_cancel(struct farm *f, struct farm_job *j)
{
	if (j->state == FJ_DEAD)
		fatal("%s cancel of finished job=%u", f->conf.name, j->id);
	log_debug(NULL, "%s %s job=%u cancelled state=%s", f->conf.name,
	    f->conf.verb, j->id, farm_job_names[j->state]);
	farm_job_end(j);
}

void *
farm_job_ctx(struct farm_job *j)
{
	return j->ctx;
}

struct farm *
farm_job_farm(const struct farm_job *j)
{
	return j->f;
}

unsigned
farm_job_id(const struct farm_job *j)
{
	return j->id;
}

size_t
farm_job_size(const struct farm_job *j)
{
	return j->size;
}

unsigned
farm_job_attempts(const struct farm_job *j)
{
	return j->attempts;
}

unsigned
farm_job_ms(const struct farm_job *j)
{
	return (unsigned)(ev_now() - j->t0);
}

const char *
farm_job_state(const struct farm_job *j)
{
	return farm_job_names[j->state];
}

/* The address of the current attempt (the job's table), or NULL. */
const struct farm_addr *
farm_job_addr(const struct farm_job *j)
{
	return j->attempts > 0 ? &j->tab->addrs[j->ai] : NULL;
}

/* Re-resolve the entries; in-flight jobs finish on the table they have. */
int
farm_reload(struct farm *f)
{
	struct farm_table	*t;
	char			 err[256];

	if ((t = farm_table_build(f, f->tab, err, sizeof(err))) == NULL) {
		log_err(NULL, "%s reload error=\"%s\" action=kept-old-"
		    "addresses", f->conf.name, err);
		return -1;
	}
	farm_probes_stop(f->tab);
	farm_table_unref(f, f->tab);
	f->tab = t;
	f->rr = 0;
	log_info(NULL, "%s reload addresses=%zu", f->conf.name, t->naddrs);
	if (f->conf.health_ms > 0)
		ev_timer_set(f->loop, &f->health, 0);
	return 0;
}

void *
farm_arg(const struct farm *f)
{
	return f->conf.arg;
}

size_t
farm_naddrs(const struct farm *f)
{
	return f->tab->naddrs;
}

struct farm_addr *
farm_addr(const struct farm *f, size_t i)
{
	if (i >= f->tab->naddrs)
		fatal("%s address %zu of %zu", f->conf.name, i,
		    f->tab->naddrs);
	return &f->tab->addrs[i];
}

size_t
farm_up(const struct farm *f)
{
	size_t	i, up = 0;

	for (i = 0; i < f->tab->naddrs; i++)
		if (farm_addr_usable(&f->tab->addrs[i]))
			up++;
	return up;
}

size_t
farm_njobs(const struct farm *f)
{
	return f->njobs;
}

unsigned long
farm_failovers(const struct farm *f)
{
	return f->nfailovers;
}

const char *
farm_entry(const struct farm *f, int server)
{
	return f->entries[server];
}

const char *
farm_state_name(enum farm_state st)
{
	return farm_state_names[st];
}

/* "NAME.entry=E state=unresolved error=..." for each entry that did not
 * resolve at the last build. -1 when out is full. */
int
farm_status_unresolved(const struct farm *f, struct buf *out)
{
	int	s;

	for (s = 0; s < f->conf.nentries; s++)
		if (f->unresolved[s][0] != '\0' && buf_printf(out,
		    "%s.entry=%s state=unresolved error=\"%s\"\n",
		    f->conf.name, f->entries[s], f->unresolved[s]) == -1)
			return -1;
	return 0;
}

/* At shutdown, outside the loop's callbacks: pending jobs are dropped
 * without their callbacks. */
void
farm_free(struct farm *f)
{
	if (f == NULL)
		return;
	while (f->jobs != NULL)
		farm_job_end(f->jobs);
	farm_probes_stop(f->tab);
	farm_table_unref(f, f->tab);
	f->tab = NULL;
	ev_timer_del(f->loop, &f->health);
	/* Reaping re-arms the reaper: disarm it after. */
	farm_reap(&f->reaper);
	ev_timer_del(f->loop, &f->reaper);
	free(f);
}

/*
 * Resolves the entries (getaddrinfo(), which blocks: startup only). NULL
 * with a message in err when the entries are unusable or nothing
 * resolves (strict: when one entry does not).
 */
struct farm *
farm_new(struct ev_loop *loop, const struct farm_conf *conf, char *err,
    size_t errlen)
{
	struct farm	*f;
	int		 i;

	if (farm_conf_check(conf, err, errlen) == -1)
		return NULL;
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", conf->name);
		return NULL;
	}
	f->loop = loop;
	f->conf = *conf;
	for (i = 0; i < conf->nentries; i++)
		memcpy(f->entries[i], conf->entries[i], FARM_ENTRY_MAX);
	f->conf.entries = (const char (*)[FARM_ENTRY_MAX])f->entries;
	ev_timer_init(&f->reaper, farm_reap, f);
	ev_timer_init(&f->health, farm_health, f);
	if ((f->tab = farm_table_build(f, NULL, err, errlen)) == NULL) {
		free(f);
		return NULL;
	}
	/* The first probe runs at once, so what they learn shows early. */
	if (conf->health_ms > 0)
		ev_timer_set(loop, &f->health, 0);
	return f;
}

/*
 * A non-blocking connect to a TCP address or a unix socket (sockaddr_un
 * in the storage). For a unix socket EAGAIN (the listen queue is full) is
 * a refusal, as for the caller any -1 is.
 */
int
farm_connect(const struct sockaddr_storage *ss)
{
	int	fd, saved;

	if (ss->ss_family != AF_UNIX)
		return sock_connect(ss, NULL, 0);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return -1;
	if (connect(fd, (const struct sockaddr *)ss,
	    sizeof(struct sockaddr_un)) == -1 && errno != EINPROGRESS) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}
