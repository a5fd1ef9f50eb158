/* SPDX-License-Identifier: MIT */
/*
 * The remote scanner: a scan_backend that streams each message to a clamd
 * server with INSTREAM over TCP and turns its one-line answer into a
 * verdict. It owns the resolved address list (round robin over healthy
 * addresses; failover to the next one when a server cannot be reached or
 * breaks the protocol before answering; a PING/VERSION health check that
 * marks addresses up and down) and one connection per job. It trusts the
 * configuration and the caller's descriptor; it trusts nothing clamd sends
 * beyond what is parsed here, and an answer it cannot parse is never a
 * clean verdict. Nothing here blocks except getaddrinfo() in clamd_new()
 * and reload(), which run at startup and reload time only. It never sends
 * RELOAD to clamd: a shared clamd picks up signatures itself (freshclam's
 * NotifyClamd or SelfCheck), so reload() here only re-resolves names.
 * Jobs and address tables are freed by a timer, never inside an I/O
 * callback: the epoll batch being delivered may still point at them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "clamd.h"
#include "ev.h"
#include "failover.h"
#include "hostport.h"
#include "log.h"
#include "scanner.h"
#include "sock.h"

#define CLAMD_CHUNK		(64 * 1024)	/* INSTREAM chunk payload */
#define CLAMD_WRITE_BURST	16	/* chunks per wakeup, so one big
					 * message never starves the loop */
#define CLAMD_REPLY_MAX		1024	/* one NUL-terminated answer */
#define CLAMD_VERSION_MAX	(SCAN_ENGINE_MAX - 8)	/* room for "clamd " */
#define CLAMD_JOBS_MAX		1024	/* in flight; each may hold a chunk */
#define CLAMD_ERR_MAX		128

#define CLAMD_CMD_INSTREAM	"zINSTREAM"	/* sizeof includes the NUL */
#define CLAMD_CMD_PING		"zPING"
#define CLAMD_CMD_VERSION	"zVERSION"
#define CLAMD_UNREACHABLE	"no clamd server reachable"

_Static_assert(CLAMD_ADDRS_MAX <= FAILOVER_MAX, "a job's tried set is a "
    "uint64_t");

enum clamd_addr_state {
	CA_UNKNOWN,		/* not probed yet: used like an up one */
	CA_UP,
	CA_DOWN,		/* tried only when no other is left */
};

enum clamd_probe_state {
	CP_IDLE,
	CP_CONNECTING,
	CP_EXCHANGE,		/* command out, answer in */
};

enum clamd_probe_cmd {
	CP_PING,
	CP_VERSION,
};

enum clamd_job_state {
	CJ_QUEUED,		/* submitted; the loop starts it */
	CJ_CONNECTING,
	CJ_STREAMING,		/* sending; clamd may answer early */
	CJ_REPLY,		/* everything sent, waiting for the answer */
	CJ_DELIVER,		/* verdict known at submit, waiting for the loop */
	CJ_DEAD,		/* finished or cancelled, waiting for the reaper */
};

struct clamd;

struct clamd_probe {
	struct clamd		*b;
	struct clamd_addr	*a;
	enum clamd_probe_state	 state;
	enum clamd_probe_cmd	 cmd;
	int			 sock;
	size_t			 sent;		/* bytes of the command */
	struct ev_io		 io;
	struct ev_timer		 timer;
	struct buf		 in;
};

struct clamd_addr {
	struct sockaddr_storage	 ss;
	char			 name[SOCK_ADDRSTR_MAX];
	int			 server;	/* index in conf.servers */
	enum clamd_addr_state	 state;
	char			 version[CLAMD_VERSION_MAX];
	unsigned long		 scans;		/* verdicts from this address */
	unsigned long		 failures;	/* failed scan attempts */
	struct clamd_probe	 probe;
};

/*
 * What the names resolved to. A reload builds a new table; jobs keep a
 * reference to the one they started with, so their failover order never
 * changes under them.
 */
struct clamd_table {
	unsigned		 refs;
	size_t			 naddrs;
	struct clamd_table	*next;		/* on the reaper's list */
	struct clamd_addr	 addrs[CLAMD_ADDRS_MAX];
};

struct clamd_job {
	struct clamd		*b;
	struct clamd_job	*prev, *next;	/* live list, then reaper's */
	unsigned		 id;
	enum clamd_job_state	 state;
	int			 fd;		/* our dup of the message */
	size_t			 size;
	size_t			 off;		/* next message byte to send */
	int			 eos;		/* zero-length chunk queued */
	struct clamd_table	*tab;
	size_t			 first;		/* round-robin start */
	size_t			 ai;		/* address in use */
	uint64_t		 tried;		/* one bit per address */
	unsigned		 attempts;
	int			 sock;
	struct ev_io		 io;
	struct ev_timer		 kick;		/* start, or deferred verdict */
	struct ev_timer		 attempt;	/* connect timeout */
	struct ev_timer		 deadline;	/* scan_timeout_ms from submit */
	char			*wbuf;		/* one chunk, while streaming */
	size_t			 woff;
	size_t			 wlen;
	struct buf		 in;
	uint64_t		 t0;
	scan_done_cb		*cb;
	void			*arg;
	struct scan_result	 res;		/* for CJ_DELIVER */
};

struct clamd {
	struct scan_backend	 be;
	struct ev_loop		*loop;
	struct clamd_conf	 conf;
	struct clamd_table	*tab;
	char			 unresolved[CLAMD_SERVERS_MAX][CLAMD_ERR_MAX];
	size_t			 rr;
	unsigned		 next_id;
	size_t			 njobs;
	struct clamd_job	*jobs;
	struct clamd_job	*dead_jobs;
	struct clamd_table	*dead_tabs;
	struct ev_timer		 reaper;
	struct ev_timer		 health;
	unsigned long		 nscans;	/* verdicts delivered */
	unsigned long		 nfailovers;
	unsigned long		 nunreachable;
};

/* Where clamd_resolve() appends, and for which entry. */
struct clamd_resolving {
	struct clamd_table	*t;
	int			 server;
	const char		*spec;
};

static int	clamd_conf_check(const struct clamd_conf *, char *, size_t);
static int	clamd_resolve(struct clamd_table *, int, const char *, char *,
		    size_t);
static int	clamd_resolved(void *, const struct sockaddr_storage *,
		    const char *);
static struct clamd_table *clamd_table_build(struct clamd *,
		    const struct clamd_table *, char *, size_t);
static void	clamd_table_unref(struct clamd *, struct clamd_table *);
static void	clamd_reap(struct ev_timer *);
static void	clamd_reaper_arm(struct clamd *);
static void	clamd_addr_set(struct clamd_addr *, enum clamd_addr_state,
		    const char *);
static struct clamd_addr *clamd_addr_live(struct clamd *,
		    struct clamd_addr *);
static void	clamd_addr_failed(struct clamd_addr *, const char *);
static void	clamd_sanitize(char *, size_t, const char *, size_t);
static int	clamd_ends_with(const char *, size_t, const char *);
static int	clamd_parse(const char *, enum scan_verdict *, char *, size_t);
static void	clamd_engine(char *, size_t, const struct clamd_addr *);
static void	clamd_health(struct ev_timer *);
static void	clamd_probe_start(struct clamd_probe *, enum clamd_probe_cmd);
static void	clamd_probe_stop(struct clamd_probe *);
static void	clamd_probe_fail(struct clamd_probe *, const char *,
		    const char *);
static void	clamd_probe_answer(struct clamd_probe *, const char *);
static void	clamd_probe_io(struct ev_io *, int);
static void	clamd_probe_timeout(struct ev_timer *);
static void	clamd_probes_stop(struct clamd_table *);
static int	clamd_pick(const struct clamd_job *);
static void	clamd_job_close(struct clamd_job *);
static void	clamd_job_bury(struct clamd_job *);
static void	clamd_job_finish(struct clamd_job *, const struct clamd_addr *,
		    enum scan_verdict, const char *);
static void	clamd_job_attempt(struct clamd_job *);
static void	clamd_job_retry(struct clamd_job *, const char *,
		    const char *);
static int	clamd_job_fill(struct clamd_job *);
static void	clamd_job_send(struct clamd_job *);
static int	clamd_job_recv(struct clamd_job *);
static void	clamd_job_answer(struct clamd_job *, const char *);
static void	clamd_job_io(struct ev_io *, int);
static void	clamd_job_kick(struct ev_timer *);
static void	clamd_job_connect_timeout(struct ev_timer *);
static void	clamd_job_deadline(struct ev_timer *);
static struct scan_job *clamd_submit(struct scan_backend *, int, size_t,
		    unsigned, scan_done_cb *, void *);
static void	clamd_cancel(struct scan_backend *, struct scan_job *);
static int	clamd_reload(struct scan_backend *, struct content_rules *);
static void	clamd_status(struct scan_backend *, struct buf *);
static void	clamd_free(struct scan_backend *);

static const char *const clamd_addr_names[] = {
	[CA_UNKNOWN] = "unknown",
	[CA_UP] = "up",
	[CA_DOWN] = "down",
};

static const char *const clamd_job_names[] = {
	[CJ_QUEUED] = "queued",
	[CJ_CONNECTING] = "connecting",
	[CJ_STREAMING] = "streaming",
	[CJ_REPLY] = "reply",
	[CJ_DELIVER] = "deliver",
	[CJ_DEAD] = "dead",
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

static int
clamd_conf_check(const struct clamd_conf *c, char *err, size_t errlen)
{
	char	host[HOSTPORT_HOST_MAX], port[HOSTPORT_PORT_MAX];
	int	i;

	if (c->nservers < 1 || c->nservers > CLAMD_SERVERS_MAX) {
		snprintf(err, errlen, "clamd: %d servers configured, want 1 "
		    "to %d", c->nservers, CLAMD_SERVERS_MAX);
		return -1;
	}
	for (i = 0; i < c->nservers; i++) {
		if (memchr(c->servers[i], '\0', sizeof(c->servers[i])) == NULL ||
		    hostport_split(c->servers[i], host, sizeof(host), port,
		    sizeof(port)) == -1) {
			snprintf(err, errlen, "clamd: server \"%.64s\" is not "
			    "host:port or [v6]:port", c->servers[i]);
			return -1;
		}
	}
	if (c->connect_timeout_ms == 0 || c->scan_timeout_ms == 0) {
		snprintf(err, errlen, "clamd: connect and scan timeouts must "
		    "be above 0 ms");
		return -1;
	}
	return 0;
}

/*
 * Append what conf.servers[server] resolves to, skipping addresses the
 * table already has. Blocks in getaddrinfo(): startup and reload only.
 */
static int
clamd_resolve(struct clamd_table *t, int server, const char *spec,
    char *err, size_t errlen)
{
	struct clamd_resolving	 r = { t, server, spec };
	char			 host[HOSTPORT_HOST_MAX], port[HOSTPORT_PORT_MAX];

	if (hostport_split(spec, host, sizeof(host), port, sizeof(port)) == -1) {
		snprintf(err, errlen, "not host:port");
		return -1;
	}
	return hostport_resolve(host, port, clamd_resolved, &r, err, errlen);
}

static int
clamd_resolved(void *arg, const struct sockaddr_storage *ss, const char *name)
{
	struct clamd_resolving	*r = arg;
	struct clamd_table	*t = r->t;
	struct clamd_addr	*a;
	size_t			 i;

	if (t->naddrs == CLAMD_ADDRS_MAX) {
		log_warn(NULL, "clamd resolve entry=%s error=\"more than %d "
		    "addresses\" action=ignored", r->spec, CLAMD_ADDRS_MAX);
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
	a->state = CA_UNKNOWN;
	return 0;
}

/*
 * Resolve every server into a new table. An address already in old keeps
 * its state and counters; a server that does not resolve now keeps the
 * addresses it had, so a DNS hiccup at reload loses nothing.
 */
static struct clamd_table *
clamd_table_build(struct clamd *b, const struct clamd_table *old, char *err,
    size_t errlen)
{
	struct clamd_table		*t;
	struct clamd_addr		*a;
	const struct clamd_addr		*o;
	char				 why[CLAMD_ERR_MAX];
	size_t				 i, k;
	int				 s;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "clamd: out of memory");
		return NULL;
	}
	t->refs = 1;
	for (s = 0; s < b->conf.nservers; s++) {
		b->unresolved[s][0] = '\0';
		if (clamd_resolve(t, s, b->conf.servers[s], why,
		    sizeof(why)) != -1)
			continue;
		snprintf(b->unresolved[s], sizeof(b->unresolved[s]), "%s", why);
		log_warn(NULL, "clamd resolve entry=%s error=\"%s\"%s",
		    b->conf.servers[s], why, old != NULL ?
		    " action=kept-old-addresses" : "");
		for (k = 0; old != NULL && k < old->naddrs; k++) {
			if (old->addrs[k].server != s ||
			    t->naddrs == CLAMD_ADDRS_MAX)
				continue;
			t->addrs[t->naddrs] = old->addrs[k];
			t->naddrs++;
		}
	}
	if (t->naddrs == 0) {
		snprintf(err, errlen, "clamd: no server address resolves "
		    "(first: %s: %s)", b->conf.servers[0], b->unresolved[0]);
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
			memcpy(a->version, o->version, sizeof(a->version));
			a->scans = o->scans;
			a->failures = o->failures;
			break;
		}
		memset(&a->probe, 0, sizeof(a->probe));
		a->probe.b = b;
		a->probe.a = a;
		a->probe.state = CP_IDLE;
		a->probe.sock = -1;
		ev_timer_init(&a->probe.timer, clamd_probe_timeout, &a->probe);
		buf_init(&a->probe.in, CLAMD_REPLY_MAX);
	}
	return t;
}

/* The last reference goes to the reaper: a probe of it may be in the
 * epoll batch being delivered. */
static void
clamd_table_unref(struct clamd *b, struct clamd_table *t)
{
	if (t == NULL)
		return;
	if (t->refs == 0)
		fatal("clamd table unref below zero");
	if (--t->refs > 0)
		return;
	t->next = b->dead_tabs;
	b->dead_tabs = t;
	clamd_reaper_arm(b);
}

static void
clamd_reaper_arm(struct clamd *b)
{
	if (b->reaper.when == 0)
		ev_timer_set(b->loop, &b->reaper, 0);
}

/* Timers run after the epoll batch, so nothing here is still referenced
 * by a pending event. Jobs first: they may drop the last table ref. */
static void
clamd_reap(struct ev_timer *tm)
{
	struct clamd		*b = tm->arg;
	struct clamd_job	*j;
	struct clamd_table	*t;

	while ((j = b->dead_jobs) != NULL) {
		b->dead_jobs = j->next;
		clamd_table_unref(b, j->tab);
		free(j);
	}
	while ((t = b->dead_tabs) != NULL) {
		b->dead_tabs = t->next;
		free(t);
	}
}

static void
clamd_addr_set(struct clamd_addr *a, enum clamd_addr_state st,
    const char *why)
{
	if (a->state == st)
		return;
	a->state = st;
	if (st == CA_DOWN)
		log_warn(NULL, "clamd server=%s state=down error=\"%s\"",
		    a->name, why);
	else
		log_info(NULL, "clamd server=%s state=%s version=\"%s\"",
		    a->name, clamd_addr_names[st], a->version);
}

/*
 * The current table's entry for a job's address: a job that started
 * before a reload still counts, and marks up or down, what status shows.
 */
static struct clamd_addr *
clamd_addr_live(struct clamd *b, struct clamd_addr *a)
{
	struct clamd_table	*t = b->tab;
	size_t			 i;

	if (a >= t->addrs && a < t->addrs + t->naddrs)
		return a;
	for (i = 0; i < t->naddrs; i++)
		if (strcmp(t->addrs[i].name, a->name) == 0)
			return &t->addrs[i];
	return a;
}

static void
clamd_addr_failed(struct clamd_addr *a, const char *why)
{
	a->failures++;
	clamd_addr_set(a, CA_DOWN, why);
}

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
clamd_engine(char *out, size_t outlen, const struct clamd_addr *a)
{
	if (a != NULL && a->version[0] != '\0')
		snprintf(out, outlen, "clamd %s", a->version);
	else
		snprintf(out, outlen, "clamd");
}

/* ---- health check ---- */

static void
clamd_health(struct ev_timer *tm)
{
	struct clamd		*b = tm->arg;
	struct clamd_addr	*a;
	size_t			 i;

	for (i = 0; i < b->tab->naddrs; i++) {
		a = &b->tab->addrs[i];
		if (a->probe.state == CP_IDLE)
			clamd_probe_start(&a->probe, CP_PING);
	}
	ev_timer_set(b->loop, &b->health, b->conf.health_interval_ms);
}

static void
clamd_probe_start(struct clamd_probe *p, enum clamd_probe_cmd cmd)
{
	struct clamd	*b = p->b;

	p->cmd = cmd;
	p->sent = 0;
	if ((p->sock = sock_connect(&p->a->ss, NULL, 0)) == -1) {
		clamd_probe_fail(p, "connect", strerror(errno));
		return;
	}
	ev_io_init(&p->io, p->sock, clamd_probe_io, p);
	if (ev_io_set(b->loop, &p->io, EV_WRITE) == -1) {
		clamd_probe_fail(p, "epoll", strerror(errno));
		return;
	}
	ev_timer_set(b->loop, &p->timer, b->conf.connect_timeout_ms);
	p->state = CP_CONNECTING;
}

static void
clamd_probe_stop(struct clamd_probe *p)
{
	struct clamd	*b = p->b;

	if (p->sock != -1) {
		ev_io_del(b->loop, &p->io);
		close(p->sock);
		p->sock = -1;
	}
	ev_timer_del(b->loop, &p->timer);
	buf_free(&p->in);
	p->state = CP_IDLE;
}

static void
clamd_probe_fail(struct clamd_probe *p, const char *what, const char *detail)
{
	char	why[CLAMD_ERR_MAX];

	snprintf(why, sizeof(why), "%s %s: %s", p->cmd == CP_PING ? "PING" :
	    "VERSION", what, detail);
	clamd_probe_stop(p);
	clamd_addr_set(p->a, CA_DOWN, why);
}

static void
clamd_probe_answer(struct clamd_probe *p, const char *r)
{
	struct clamd_addr	*a = p->a;
	char			 v[CLAMD_VERSION_MAX];

	if (p->cmd == CP_PING) {
		if (strcmp(r, "PONG") != 0) {
			clamd_probe_fail(p, "answer", "not PONG");
			return;
		}
		clamd_probe_stop(p);
		clamd_probe_start(p, CP_VERSION);
		return;
	}
	if (strncmp(r, "ClamAV ", 7) != 0) {
		clamd_probe_fail(p, "answer", "not \"ClamAV ...\"");
		return;
	}
	/* r lives in the probe's buffer, which stop frees. */
	clamd_sanitize(v, sizeof(v), r, strlen(r));
	clamd_probe_stop(p);
	if (a->state == CA_UP && strcmp(v, a->version) != 0)
		log_info(NULL, "clamd server=%s version=\"%s\" old=\"%s\"",
		    a->name, v, a->version);
	memcpy(a->version, v, sizeof(a->version));
	clamd_addr_set(a, CA_UP, NULL);
}

static void
clamd_probe_io(struct ev_io *io, int events)
{
	struct clamd_probe	*p = io->arg;
	struct clamd		*b = p->b;
	const char		*cmd;
	size_t			 cmdlen;
	ssize_t			 n;
	char			*nul;

	cmd = p->cmd == CP_PING ? CLAMD_CMD_PING : CLAMD_CMD_VERSION;
	cmdlen = strlen(cmd) + 1;
	switch (p->state) {
	case CP_CONNECTING:
		if (sock_connect_result(p->sock) == -1) {
			clamd_probe_fail(p, "connect", strerror(errno));
			return;
		}
		p->state = CP_EXCHANGE;
		if (ev_io_set(b->loop, &p->io, EV_READ | EV_WRITE) == -1) {
			clamd_probe_fail(p, "epoll", strerror(errno));
			return;
		}
		ev_timer_set(b->loop, &p->timer, b->conf.connect_timeout_ms);
		events = EV_WRITE;
		/* FALLTHROUGH */
	case CP_EXCHANGE:
		if ((events & EV_WRITE) && p->sent < cmdlen) {
			n = send(p->sock, cmd + p->sent, cmdlen - p->sent,
			    MSG_NOSIGNAL);
			if (n == -1 && errno != EAGAIN && errno != EINTR) {
				clamd_probe_fail(p, "send", strerror(errno));
				return;
			}
			if (n > 0)
				p->sent += (size_t)n;
			if (p->sent == cmdlen &&
			    ev_io_set(b->loop, &p->io, EV_READ) == -1) {
				clamd_probe_fail(p, "epoll", strerror(errno));
				return;
			}
		}
		if (!(events & EV_READ))
			return;
		n = buf_read_fd(&p->in, p->sock);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == -1) {
			clamd_probe_fail(p, "recv", errno == ENOBUFS ?
			    "answer too long" : strerror(errno));
			return;
		}
		if (n == 0) {
			clamd_probe_fail(p, "recv", "closed before an answer");
			return;
		}
		nul = memchr(buf_head(&p->in), '\0', buf_used(&p->in));
		if (nul != NULL)
			clamd_probe_answer(p, buf_head(&p->in));
		return;
	default:
		fatal("clamd probe server=%s io in state %d", p->a->name,
		    p->state);
	}
}

static void
clamd_probe_timeout(struct ev_timer *tm)
{
	struct clamd_probe	*p = tm->arg;

	clamd_probe_fail(p, p->state == CP_CONNECTING ? "connect" : "answer",
	    "timeout");
}

static void
clamd_probes_stop(struct clamd_table *t)
{
	size_t	i;

	for (i = 0; t != NULL && i < t->naddrs; i++)
		clamd_probe_stop(&t->addrs[i].probe);
}

/* ---- jobs ---- */

/* Healthy addresses from the round-robin start, then down ones as a last
 * resort (with the health check off nothing else would bring them back);
 * never one this job has tried. */
static int
clamd_pick(const struct clamd_job *j)
{
	const struct clamd_table	*t = j->tab;
	uint64_t			 down = 0;
	size_t				 i;

	for (i = 0; i < t->naddrs; i++)
		if (t->addrs[i].state == CA_DOWN)
			down |= UINT64_C(1) << i;
	return failover_pick(t->naddrs, j->first, j->tried, down);
}

/* Drop the connection of the current attempt; the job lives on. */
static void
clamd_job_close(struct clamd_job *j)
{
	struct clamd	*b = j->b;

	if (j->sock != -1) {
		ev_io_del(b->loop, &j->io);
		close(j->sock);
		j->sock = -1;
	}
	ev_timer_del(b->loop, &j->attempt);
	free(j->wbuf); j->wbuf = NULL;
	j->woff = j->wlen = 0;
	j->off = 0;
	j->eos = 0;
	buf_free(&j->in);
}

/* Release everything but the memory, which the reaper frees. */
static void
clamd_job_bury(struct clamd_job *j)
{
	struct clamd	*b = j->b;

	clamd_job_close(j);
	ev_timer_del(b->loop, &j->kick);
	ev_timer_del(b->loop, &j->deadline);
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
	j->state = CJ_DEAD;
	j->prev = NULL;
	j->next = b->dead_jobs;
	b->dead_jobs = j;
	clamd_reaper_arm(b);
}

/* a: the address that answered, or NULL. The job is gone before cb runs,
 * so cb may submit or cancel anything. */
static void
clamd_job_finish(struct clamd_job *j, const struct clamd_addr *a,
    enum scan_verdict v, const char *name)
{
	struct clamd		*b = j->b;
	struct scan_result	 r;
	scan_done_cb		*cb = j->cb;
	void			*arg = j->arg;

	memset(&r, 0, sizeof(r));
	r.verdict = v;
	snprintf(r.name, sizeof(r.name), "%s", name != NULL ? name : "");
	clamd_engine(r.engine, sizeof(r.engine), a);
	r.ms = (unsigned)(ev_now() - j->t0);
	b->nscans++;
	log_debug(NULL, "clamd scan job=%u server=%s size=%zu verdict=%s "
	    "name=\"%s\" attempts=%u ms=%u", j->id, a != NULL ? a->name : "-",
	    j->size, clamd_verdict_names[v], r.name, j->attempts, r.ms);
	clamd_job_bury(j);
	cb(arg, &r);
}

static void
clamd_job_attempt(struct clamd_job *j)
{
	struct clamd		*b = j->b;
	struct clamd_addr	*a;
	int			 i;

	/* The start is taken here, not at submit: jobs submitted in one
	 * burst then spread instead of all starting on one address. */
	if (j->attempts == 0 && j->tab == b->tab)
		j->first = b->rr % j->tab->naddrs;
	for (;;) {
		if ((i = clamd_pick(j)) == -1) {
			b->nunreachable++;
			log_err(NULL, "clamd scan job=%u error=\"%s\" "
			    "attempts=%u", j->id, CLAMD_UNREACHABLE,
			    j->attempts);
			clamd_job_finish(j, NULL, SCAN_ERROR, CLAMD_UNREACHABLE);
			return;
		}
		if (j->attempts == 0 && j->tab == b->tab)
			b->rr = ((size_t)i + 1) % j->tab->naddrs;
		else if (j->attempts > 0)
			b->nfailovers++;
		j->tried |= UINT64_C(1) << i;
		j->ai = (size_t)i;
		j->attempts++;
		a = &j->tab->addrs[i];
		if ((j->sock = sock_connect(&a->ss, NULL, 0)) == -1) {
			log_warn(NULL, "clamd scan job=%u server=%s error="
			    "\"connect: %s\" action=failover", j->id, a->name,
			    strerror(errno));
			clamd_addr_failed(clamd_addr_live(b, a),
			    strerror(errno));
			continue;
		}
		ev_io_init(&j->io, j->sock, clamd_job_io, j);
		if (ev_io_set(b->loop, &j->io, EV_WRITE) == -1) {
			log_err(NULL, "clamd scan job=%u error=\"epoll: %s\"",
			    j->id, strerror(errno));
			clamd_job_finish(j, NULL, SCAN_ERROR, "epoll failed");
			return;
		}
		ev_timer_set(b->loop, &j->attempt, b->conf.connect_timeout_ms);
		j->state = CJ_CONNECTING;
		return;
	}
}

/* The server failed before a verdict: mark it down, try the next one
 * from the start of the message. */
static void
clamd_job_retry(struct clamd_job *j, const char *what, const char *detail)
{
	struct clamd_addr	*a = &j->tab->addrs[j->ai];
	char			 why[CLAMD_ERR_MAX];

	snprintf(why, sizeof(why), "%s: %s", what, detail);
	log_warn(NULL, "clamd scan job=%u server=%s error=\"%s\" "
	    "action=failover", j->id, a->name, why);
	clamd_addr_failed(clamd_addr_live(j->b, a), why);
	clamd_job_close(j);
	clamd_job_attempt(j);
}

/* Queue the next chunk: "<4-byte big-endian length><data>", or the
 * zero-length chunk that ends the stream. -1: the job has finished. */
static int
clamd_job_fill(struct clamd_job *j)
{
	size_t		want = j->size - j->off;
	uint32_t	len;
	ssize_t		n;

	if (want > CLAMD_CHUNK)
		want = CLAMD_CHUNK;
	j->woff = 0;
	n = 0;
	if (want > 0) {
		do
			n = pread(j->fd, j->wbuf + 4, want, (off_t)j->off);
		while (n == -1 && errno == EINTR);
		if (n <= 0) {
			log_err(NULL, "clamd scan job=%u error=\"read at "
			    "%zu: %s\"", j->id, j->off, n == 0 ?
			    "message shorter than its size" : strerror(errno));
			clamd_job_finish(j, NULL, SCAN_ERROR,
			    "cannot read the message");
			return -1;
		}
		j->off += (size_t)n;
	} else
		j->eos = 1;
	len = htonl((uint32_t)n);
	memcpy(j->wbuf, &len, 4);
	j->wlen = 4 + (size_t)n;
	return 0;
}

static void
clamd_job_send(struct clamd_job *j)
{
	struct clamd	*b = j->b;
	unsigned	 burst = 0;
	ssize_t		 n;

	for (;;) {
		if (j->woff == j->wlen) {
			if (j->eos) {
				free(j->wbuf); j->wbuf = NULL;
				j->state = CJ_REPLY;
				if (ev_io_set(b->loop, &j->io, EV_READ) == -1)
					clamd_job_retry(j, "epoll",
					    strerror(errno));
				return;
			}
			if (burst++ == CLAMD_WRITE_BURST)
				return;
			if (clamd_job_fill(j) == -1)
				return;
		}
		n = send(j->sock, j->wbuf + j->woff, j->wlen - j->woff,
		    MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			/* clamd may have answered (size limit) and closed:
			 * that answer is the verdict. */
			if (clamd_job_recv(j) == -1)
				return;
			clamd_job_retry(j, "send", strerror(errno));
			return;
		}
		j->woff += (size_t)n;
	}
}

/* Read the answer. -1: the job has moved on (verdict or failover). */
static int
clamd_job_recv(struct clamd_job *j)
{
	ssize_t	n;

	for (;;) {
		n = buf_read_fd(&j->in, j->sock);
		if (n > 0) {
			if (memchr(buf_head(&j->in), '\0',
			    buf_used(&j->in)) == NULL)
				continue;
			clamd_job_answer(j, buf_head(&j->in));
			return -1;
		}
		if (n == 0) {
			clamd_job_retry(j, "recv", buf_used(&j->in) > 0 ?
			    "answer not NUL-terminated" :
			    "closed before an answer");
			return -1;
		}
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		clamd_job_retry(j, "recv", errno == ENOBUFS ?
		    "answer too long" : strerror(errno));
		return -1;
	}
}

static void
clamd_job_answer(struct clamd_job *j, const char *r)
{
	struct clamd_addr	*a = &j->tab->addrs[j->ai];
	enum scan_verdict	 v;
	char			 name[SCAN_NAME_MAX];
	char			 shown[80];

	if (clamd_parse(r, &v, name, sizeof(name)) == -1) {
		clamd_sanitize(shown, sizeof(shown), r, strlen(r));
		clamd_job_retry(j, "unexpected answer", shown);
		return;
	}
	a = clamd_addr_live(j->b, a);
	a->scans++;
	if (a->state == CA_DOWN)
		clamd_addr_set(a, CA_UP, NULL);
	if (v == SCAN_ERROR)
		log_warn(NULL, "clamd scan job=%u server=%s error=\"%s\"",
		    j->id, a->name, name);
	clamd_job_finish(j, a, v, name);
}

static void
clamd_job_io(struct ev_io *io, int events)
{
	struct clamd_job	*j = io->arg;
	struct clamd		*b = j->b;
	static const char	 cmd[] = CLAMD_CMD_INSTREAM;

	switch (j->state) {
	case CJ_CONNECTING:
		if (sock_connect_result(j->sock) == -1) {
			clamd_job_retry(j, "connect", strerror(errno));
			return;
		}
		ev_timer_del(b->loop, &j->attempt);
		if ((j->wbuf = malloc(4 + CLAMD_CHUNK)) == NULL) {
			clamd_job_finish(j, NULL, SCAN_ERROR, "out of memory");
			return;
		}
		memcpy(j->wbuf, cmd, sizeof(cmd));
		j->woff = 0;
		j->wlen = sizeof(cmd);
		j->state = CJ_STREAMING;
		if (ev_io_set(b->loop, &j->io, EV_READ | EV_WRITE) == -1) {
			clamd_job_retry(j, "epoll", strerror(errno));
			return;
		}
		clamd_job_send(j);
		return;
	case CJ_STREAMING:
		if ((events & EV_READ) && clamd_job_recv(j) == -1)
			return;
		if (events & EV_WRITE)
			clamd_job_send(j);
		return;
	case CJ_REPLY:
		(void)clamd_job_recv(j);
		return;
	default:
		fatal("clamd scan job=%u io in state %d", j->id, j->state);
	}
}

static void
clamd_job_kick(struct ev_timer *tm)
{
	struct clamd_job	*j = tm->arg;
	struct scan_result	 r;
	scan_done_cb		*cb = j->cb;
	void			*arg = j->arg;

	switch (j->state) {
	case CJ_QUEUED:
		clamd_job_attempt(j);
		return;
	case CJ_DELIVER:
		r = j->res;
		j->b->nscans++;
		clamd_job_bury(j);
		cb(arg, &r);
		return;
	default:
		fatal("clamd scan job=%u kick in state %d", j->id, j->state);
	}
}

static void
clamd_job_connect_timeout(struct ev_timer *tm)
{
	struct clamd_job	*j = tm->arg;

	clamd_job_retry(j, "connect", "timeout");
}

/* The whole budget is spent: a slow scan is not a dead server, so the
 * address keeps its state. */
static void
clamd_job_deadline(struct ev_timer *tm)
{
	struct clamd_job	*j = tm->arg;
	struct clamd_addr	*a = NULL;
	char			 name[SCAN_NAME_MAX];

	if (j->state != CJ_QUEUED) {
		a = clamd_addr_live(j->b, &j->tab->addrs[j->ai]);
		a->failures++;
	}
	snprintf(name, sizeof(name), "clamd did not answer within %u ms",
	    j->b->conf.scan_timeout_ms);
	log_warn(NULL, "clamd scan job=%u server=%s error=\"%s\" state=%s",
	    j->id, a != NULL ? a->name : "-", name, clamd_job_names[j->state]);
	clamd_job_finish(j, NULL, SCAN_TIMEOUT, name);
}

/* ---- the scan_backend interface ---- */

static struct scan_job *
clamd_submit(struct scan_backend *be, int fd, size_t size, unsigned flags,
    scan_done_cb *cb, void *arg)
{
	struct clamd		*b = be->impl;
	struct clamd_job	*j;

	(void)flags;	/* content rules need the local workers */

	if (b->njobs >= CLAMD_JOBS_MAX) {
		log_warn(NULL, "clamd submit error=\"%d scans in flight\"",
		    CLAMD_JOBS_MAX);
		errno = EAGAIN;
		return NULL;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->b = b;
	j->id = ++b->next_id;
	j->size = size;
	j->fd = -1;
	j->sock = -1;
	j->cb = cb;
	j->arg = arg;
	j->t0 = ev_now();
	buf_init(&j->in, CLAMD_REPLY_MAX);
	ev_timer_init(&j->kick, clamd_job_kick, j);
	ev_timer_init(&j->attempt, clamd_job_connect_timeout, j);
	ev_timer_init(&j->deadline, clamd_job_deadline, j);
	if (b->conf.max_stream > 0 && size > b->conf.max_stream) {
		/* clamd would cut the stream at StreamMaxLength and answer
		 * an error; say so without sending a byte. */
		j->state = CJ_DELIVER;
		j->res.verdict = SCAN_LIMITS;
		snprintf(j->res.name, sizeof(j->res.name), "message of %zu "
		    "bytes exceeds clamd StreamMaxLength %zu", size,
		    b->conf.max_stream);
		clamd_engine(j->res.engine, sizeof(j->res.engine), NULL);
		log_debug(NULL, "clamd scan job=%u size=%zu verdict=limits "
		    "max_stream=%zu", j->id, size, b->conf.max_stream);
	} else {
		if ((j->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
			free(j);
			return NULL;
		}
		j->state = CJ_QUEUED;
		j->tab = b->tab;
		j->tab->refs++;
		ev_timer_set(b->loop, &j->deadline, b->conf.scan_timeout_ms);
	}
	ev_timer_set(b->loop, &j->kick, 0);
	j->next = b->jobs;
	if (b->jobs != NULL)
		b->jobs->prev = j;
	b->jobs = j;
	b->njobs++;
	return (struct scan_job *)j;
}

static void
clamd_cancel(struct scan_backend *be, struct scan_job *sj)
{
	struct clamd_job	*j = (struct clamd_job *)sj;

	(void)be;
	if (j->state == CJ_DEAD)
		fatal("clamd cancel of finished job=%u", j->id);
	log_debug(NULL, "clamd scan job=%u cancelled state=%s", j->id,
	    clamd_job_names[j->state]);
	clamd_job_bury(j);
}

/* Re-resolve the names; in-flight jobs finish on the table they have.
 * No content rules here: they need local workers. */
static int
clamd_reload(struct scan_backend *be, struct content_rules *content)
{
	struct clamd		*b = be->impl;
	struct clamd_table	*t;
	char			 err[256];

	(void)content;
	if ((t = clamd_table_build(b, b->tab, err, sizeof(err))) == NULL) {
		log_err(NULL, "clamd reload error=\"%s\" action=kept-old-"
		    "addresses", err);
		return -1;
	}
	clamd_probes_stop(b->tab);
	clamd_table_unref(b, b->tab);
	b->tab = t;
	b->rr = 0;
	log_info(NULL, "clamd reload addresses=%zu", t->naddrs);
	if (b->conf.health_interval_ms > 0)
		ev_timer_set(b->loop, &b->health, 0);
	return 0;
}

static void
clamd_status(struct scan_backend *be, struct buf *out)
{
	struct clamd		*b = be->impl;
	const struct clamd_addr	*a;
	size_t			 i, up = 0;
	int			 s;

	for (i = 0; i < b->tab->naddrs; i++)
		if (b->tab->addrs[i].state != CA_DOWN)
			up++;
	if (buf_printf(out, "clamd.addresses=%zu clamd.up=%zu clamd.jobs=%zu "
	    "clamd.scans=%lu clamd.failovers=%lu clamd.unreachable=%lu\n",
	    b->tab->naddrs, up, b->njobs, b->nscans, b->nfailovers,
	    b->nunreachable) == -1)
		return;
	for (i = 0; i < b->tab->naddrs; i++) {
		a = &b->tab->addrs[i];
		if (buf_printf(out, "clamd.server=%s state=%s version=\"%s\" "
		    "scans=%lu failures=%lu entry=%s\n", a->name,
		    clamd_addr_names[a->state], a->version[0] != '\0' ?
		    a->version : "unknown", a->scans, a->failures,
		    b->conf.servers[a->server]) == -1)
			return;
	}
	for (s = 0; s < b->conf.nservers; s++)
		if (b->unresolved[s][0] != '\0' && buf_printf(out,
		    "clamd.entry=%s state=unresolved error=\"%s\"\n",
		    b->conf.servers[s], b->unresolved[s]) == -1)
			return;
}

/* At shutdown, outside the loop's callbacks: pending jobs are dropped
 * without their callbacks. */
static void
clamd_free(struct scan_backend *be)
{
	struct clamd	*b = be->impl;

	while (b->jobs != NULL)
		clamd_job_bury(b->jobs);
	clamd_probes_stop(b->tab);
	clamd_table_unref(b, b->tab);
	b->tab = NULL;
	ev_timer_del(b->loop, &b->health);
	/* Reaping re-arms the reaper: disarm it after. */
	clamd_reap(&b->reaper);
	ev_timer_del(b->loop, &b->reaper);
	free(b);
}

struct scan_backend *
clamd_new(struct ev_loop *loop, const struct clamd_conf *conf, char *err,
    size_t errlen)
{
	struct clamd	*b;

	if (clamd_conf_check(conf, err, errlen) == -1)
		return NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "clamd: out of memory");
		return NULL;
	}
	b->loop = loop;
	b->conf = *conf;
	ev_timer_init(&b->reaper, clamd_reap, b);
	ev_timer_init(&b->health, clamd_health, b);
	if ((b->tab = clamd_table_build(b, NULL, err, errlen)) == NULL) {
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
	/* The first probe runs at once, so versions show up early. */
	if (conf->health_interval_ms > 0)
		ev_timer_set(loop, &b->health, 0);
	log_info(NULL, "clamd backend servers=%d addresses=%zu "
	    "max_stream=%zu health_interval_ms=%u", conf->nservers,
	    b->tab->naddrs, conf->max_stream, conf->health_interval_ms);
	return &b->be;
}
