/* SPDX-License-Identifier: MIT */
/*
 * The local scanner backend: libclamav in a pool of sandboxed worker
 * processes, so that a parser crash or hang costs one message a tempfail
 * and never the relay.
 *
 * A generation is one engine: the relay forks a loader, which loads and
 * compiles the signatures (in the background: the relay keeps serving),
 * then forks the workers, which share the compiled engine copy-on-write.
 * The loader hands the relay one SOCK_SEQPACKET socket per worker and
 * replaces workers that die. A message goes to an idle worker as a file
 * descriptor; the answer comes back as one datagram.
 *
 * When more messages wait than workers are idle, a busy worker is sent its
 * next message ahead, behind the one it scans: it starts on it the moment
 * it has answered, instead of waiting for the relay to run again (on a
 * machine whose CPUs the workers fill, that wait was a tenth of their
 * time). Answers come in the order the messages were sent. A message sent
 * ahead counts as not started: if the worker dies or is killed, it goes
 * back to the front of the queue.
 *
 * scan_timeout is a message's budget from its submission, the queue
 * included: when it is spent the message is answered. The worker is
 * killed only if that scan itself has run a whole budget; one that began
 * late keeps the rest of its own, and its answer is discarded.
 *
 * Reload starts a new generation; when it is ready it becomes the active
 * one and the old generation retires: idle old workers are closed at once,
 * busy ones when their scan ends, and the old loader exits after its last
 * worker. A generation that fails to load is refused and the old keeps
 * serving. Each generation holds the content rules its workers apply (a
 * reference); they become the relay's active rules when it does. This
 * module trusts the engine configuration; it trusts no worker (a worker's
 * reply is checked against the job it was given).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "buf.h"
#include "ev.h"
#include "log.h"
#include "mime_clean.h"
#include "sandbox.h"
#include "scan_engine.h"
#include "scan_pool.h"
#include "scanner.h"
#include "sock.h"
#include "spool.h"

#define POOL_WORKERS_MAX	64
#define POOL_LOAD_WAIT_MS	600000	/* first engine at startup */
#define POOL_RESPAWN_BURST	10	/* worker deaths per window ... */
#define POOL_RESPAWN_WINDOW	10	/* ... seconds, before backing off */
#define POOL_PSS_EVERY_MS	10000	/* a worker reads its PSS this often */
/* A message is sent ahead only behind a scan of at most this size: behind
 * a big one it could wait while another worker idles (with one worker it
 * waits in any case). */
#define POOL_AHEAD_SIZE_MAX	(1024 * 1024)
/* A scan begun this soon after its message was submitted counts as begun
 * with it: its worker is killed when the message's budget runs out, not
 * a few milliseconds after. */
#define POOL_BEGUN_AT_ONCE_MS	50

enum pool_msg_type {
	PM_READY = 1,		/* loader: engine compiled; text = version */
	PM_FAIL,		/* loader: engine refused; text = why */
	PM_WORKER,		/* loader: a worker, its socket attached */
};

/*
 * Memory (PSS) is reported by each process of its own: the relay may not
 * read the /proc files of processes that changed to scan_user and are not
 * dumpable. A number, never trusted for more than the status line.
 */
struct pool_msg {
	uint32_t	type;
	int32_t		pid;
	uint32_t	load_ms;
	uint64_t	pss_kb;		/* the loader's, with READY and WORKER */
	char		text[512];
};

struct job_msg {
	uint64_t	id;
	uint64_t	size;
	uint32_t	flags;		/* SCAN_OUTBOUND */
};

struct job_reply {
	uint64_t		id;
	uint64_t		pss_kb;		/* the worker's, lately */
	struct scan_result	r;
};

enum gen_state {
	GEN_LOADING,
	GEN_ACTIVE,
	GEN_RETIRED,
};

struct pool;
struct pool_worker;

struct pool_gen {
	struct pool		*pool;
	unsigned		 id;
	enum gen_state		 state;
	pid_t			 loader;
	int			 ctl;
	struct ev_io		 io;
	char			 engine[SCAN_ENGINE_MAX];
	struct pool_worker	*workers;
	int			 nworkers;
	unsigned long		 loader_pss_kb;	/* as it last said */
	uint64_t		 started;
	struct content_rules	*content;	/* what its workers apply */
	struct pool_gen		*next;		/* retired list */
};

struct pool_worker {
	struct pool_gen		*gen;
	pid_t			 pid;
	int			 fd;
	struct ev_io		 io;
	struct scan_job		*job;		/* being scanned */
	struct scan_job		*ahead;		/* sent ahead, answered next */
	unsigned		 scans;
	unsigned long		 pss_kb;	/* as it last said (0: not yet) */
	struct pool_worker	*next;
};

struct scan_job {
	struct pool		*pool;
	uint64_t		 id;
	int			 fd;
	size_t			 size;
	scan_done_cb		*cb;
	void			*arg;
	struct pool_worker	*w;
	struct ev_timer		 timer;		/* the budget; then the scan's */
	uint64_t		 t0;		/* submitted */
	uint64_t		 started;	/* its worker began it (0: not) */
	unsigned		 flags;
	int			 cancelled;	/* no one waits for the answer */
	struct scan_job		*qnext;
};

struct pool {
	struct ev_loop		*loop;
	struct scan_pool_conf	 conf;		/* content: for the next gen */
	struct scan_backend	 be;
	struct pool_gen		*active;
	struct pool_gen		*loading;
	struct pool_gen		*retired;
	struct scan_job		*qhead, **qtail;
	unsigned		 qlen;
	unsigned		 ngen;
	uint64_t		 nextid;
	uint64_t		 scans, timeouts, deaths, reloads, refused;
};

/* Freed after the event batch, as sessions are: an event for them may
 * still be waiting in it (scan_pool_reap). */
static struct pool_worker	*pool_dead_workers;
static struct pool_gen		*pool_dead_gens;

static void	pool_dispatch(struct pool *);
static void	pool_start_loading(struct pool *);
static void	gen_free(struct pool_gen *);

const char *
scan_verdict_name(enum scan_verdict v)
{
	static const char *const names[] = {
		[SCAN_CLEAN] = "clean", [SCAN_VIRUS] = "virus",
		[SCAN_ENCRYPTED] = "encrypted", [SCAN_LIMITS] = "limits",
		[SCAN_ERROR] = "error", [SCAN_TIMEOUT] = "timeout",
	};

	return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] :
	    "unknown";
}

/* ------------------------------------------------------------------ */
/* Inside the worker and the loader (separate processes)               */

static int
tmpdir_writable(const char *dir, char *err, size_t errlen)
{
	char	path[SCAN_PATH_MAX + 32];
	int	fd;

	snprintf(path, sizeof(path), "%s/probe.XXXXXX", dir);
	if ((fd = mkstemp(path)) == -1) {
		snprintf(err, errlen, "scan tmpdir %s not writable: %s", dir,
		    strerror(errno));
		return -1;
	}
	close(fd);
	unlink(path);
	return 0;
}

/*
 * Before each scan: libclamav makes a directory of its own in tmpdir for
 * every scan, and where it cannot it scans on and says clean (seen with
 * libclamav 1.4 and a tmpdir whose parent lost its search bit while the
 * worker ran). A scan that could not have been complete is an error.
 */
static int
tmpdir_usable(const char *dir, char *err, size_t errlen)
{
	char	path[SCAN_PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/probe.d", dir);
	if (mkdir(path, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "scan tmpdir %.160s: %s", dir,
		    strerror(errno));
		return -1;
	}
	(void)rmdir(path);
	return 0;
}

/* This process's proportional set size in kB (0 if it cannot be read):
 * the loader and the workers read their own, which a process may even
 * when it is not dumpable. */
static uint64_t
self_pss_kb(void)
{
	char		 line[256];
	FILE		*fp;
	unsigned long	 v = 0;

	if ((fp = fopen("/proc/self/smaps_rollup", "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "Pss: %lu kB", &v) == 1)
			break;
	fclose(fp);
	return v;
}

static void
worker_tmpdir(char *dir, size_t len, const struct scan_pool_conf *c, pid_t pid)
{
	snprintf(dir, len, "%s/w%d", c->engine.tmpdir, (int)pid);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

static int
worker_scan_part(void *arg, const void *data, size_t len, char *name,
    size_t namelen)
{
	struct scan_result	r;

	scan_engine_scan_mem(arg, data, len, &r);
	snprintf(name, namelen, "%s", r.name);
	if (r.verdict == SCAN_CLEAN)
		return 0;
	return r.verdict == SCAN_VIRUS ? 1 : -1;
}

/*
 * The "clean" policy: replace the infected parts, scan what is left, and
 * hand it back only if it scans clean. Otherwise the verdict stands.
 */
static int
worker_clean(const struct scan_engine *engine, int mfd, size_t size,
    struct job_reply *rep)
{
	struct mime_clean_result res;
	struct scan_result	 r2;
	char			 err[256];
	int			 out;

	err[0] = '\0';
	if ((out = memfd_create("spork-clean", MFD_CLOEXEC)) == -1) {
		log_warn(NULL, "clean failed: memfd: %s", strerror(errno));
		return -1;
	}
	if (mime_clean(mfd, size, out, worker_scan_part, (void *)engine, &res,
	    err, sizeof(err)) == -1 || res.removed == 0) {
		log_warn(NULL, "clean failed name=\"%s\": %s", rep->r.name,
		    res.removed == 0 && err[0] == '\0' ? "no infected part "
		    "found" : err);
		close(out);
		return -1;
	}
	scan_engine_scan(engine, out, res.size, &r2);
	if (r2.verdict != SCAN_CLEAN) {
		log_warn(NULL, "clean failed name=\"%s\": still %s after "
		    "removing %u part(s): %s", rep->r.name,
		    scan_verdict_name(r2.verdict), res.removed, r2.name);
		close(out);
		return -1;
	}
	rep->r.cleaned = 1;
	rep->r.removed = res.removed;
	rep->r.cleaned_size = res.size;
	rep->r.ms += r2.ms;
	if (res.names[0] != '\0')
		snprintf(rep->r.name, sizeof(rep->r.name), "%s", res.names);
	return out;
}

/*
 * The content policy, on the message as it would be delivered (the
 * cleaned copy, if any). A new copy replaces *out; a check that fails
 * makes the content verdict an error, never a pass.
 */
static void
worker_content(const struct content_rules *rules, int mfd, size_t size,
    unsigned flags, struct job_reply *rep, int *out)
{
	struct content_result	*res = &rep->r.content;
	uint64_t		 nsize = 0;
	char			 err[256];
	int			 nfd, infd = *out != -1 ? *out : mfd;

	if (*out != -1)
		size = (size_t)rep->r.cleaned_size;
	if ((nfd = memfd_create("spork-content", MFD_CLOEXEC)) == -1) {
		res->checked = 1;
		res->action = ACT_ERROR;
		snprintf(res->error, sizeof(res->error), "memfd: %s",
		    strerror(errno));
		return;
	}
	err[0] = '\0';
	if (content_scan(rules, infd, size, (flags & SCAN_OUTBOUND) != 0, nfd,
	    res, &nsize, err, sizeof(err)) == -1) {
		res->checked = 1;
		res->action = ACT_ERROR;
		res->rewritten = 0;
		snprintf(res->error, sizeof(res->error), "%s", err);
	}
	if (!res->rewritten) {
		close(nfd);
		return;
	}
	if (*out != -1)
		close(*out);
	*out = nfd;
	rep->r.cleaned_size = nsize;
}

static void __attribute__((noreturn))
worker_main(int fd, const struct scan_engine *engine,
    const struct scan_pool_conf *c)
{
	struct job_msg		 jm;
	struct job_reply	 rep;
	char			 err[SCAN_PATH_MAX + 128];
	char			 dir[SCAN_PATH_MAX + 16];
	uint64_t		 pss, pss_t;
	ssize_t			 n;
	int			 mfd, out;

	signal(SIGXFSZ, SIG_IGN);	/* temp file limit: EFBIG, not death */
	if (c->clean || c->content != NULL)
		mime_clean_init();
	/* libmagic's database is read before the cage closes. */
	if (c->content != NULL && content_scan_init(err, sizeof(err)) == -1) {
		log_err(NULL, "scan worker pid=%d: %s", (int)getpid(), err);
		_exit(1);
	}
	if (sandbox_enter(&c->sandbox, err, sizeof(err)) == -1) {
		log_err(NULL, "scan worker pid=%d: %s", (int)getpid(), err);
		_exit(1);
	}
	/* A directory of its own: what a killed worker leaves behind is
	 * removed with it (worker_free). */
	worker_tmpdir(dir, sizeof(dir), c, getpid());
	if ((mkdir(dir, 0700) == -1 && errno != EEXIST) ||
	    scan_engine_set_tmpdir(engine, dir) == -1) {
		log_err(NULL, "scan worker pid=%d: tmpdir %s: %s", (int)getpid(),
		    dir, strerror(errno));
		_exit(1);
	}
	/* libclamav unpacks into tmpdir; where it cannot write, it may
	 * skip what it could not unpack and say clean. Refuse to serve. */
	if (tmpdir_writable(dir, err, sizeof(err)) == -1) {
		log_err(NULL, "scan worker pid=%d: %s", (int)getpid(), err);
		_exit(1);
	}
	pss = self_pss_kb();
	pss_t = ev_now();
	for (;;) {
		n = sock_recv_fd(fd, &jm, sizeof(jm), &mfd);
		if (n == 0)
			_exit(0);
		if (n != (ssize_t)sizeof(jm) || mfd == -1) {
			if (n == -1 && errno == EINTR)
				continue;
			_exit(n == -1 ? 1 : 0);
		}
		memset(&rep, 0, sizeof(rep));
		rep.id = jm.id;
		/* Read again now and then: scanning dirties pages. */
		if (ev_now() - pss_t >= POOL_PSS_EVERY_MS) {
			pss = self_pss_kb();
			pss_t = ev_now();
		}
		rep.pss_kb = pss;
		if (tmpdir_usable(dir, rep.r.name, sizeof(rep.r.name)) == -1)
			rep.r.verdict = SCAN_ERROR;
		else
			scan_engine_scan(engine, mfd, (size_t)jm.size, &rep.r);
		out = -1;
		if (c->clean && rep.r.verdict == SCAN_VIRUS)
			out = worker_clean(engine, mfd, (size_t)jm.size, &rep);
		if (c->content != NULL && !(jm.flags & SCAN_VIRUS_ONLY) &&
		    (rep.r.verdict == SCAN_CLEAN || out != -1))
			worker_content(c->content, mfd, (size_t)jm.size,
			    jm.flags, &rep, &out);
		close(mfd);
		if (sock_send_fd(fd, &rep, sizeof(rep), out) == -1)
			_exit(1);
		if (out != -1)
			close(out);
	}
}

static int
loader_spawn(int ctl, int sfd, const struct scan_engine *engine,
    const struct scan_pool_conf *c)
{
	struct pool_msg	m;
	int		fd;
	pid_t		pid;

	if ((pid = sock_fork_pair(&fd)) == -1)
		return -1;
	if (pid == 0) {
		close(ctl);
		close(sfd);
		worker_main(fd, engine, c);
	}
	memset(&m, 0, sizeof(m));
	m.type = PM_WORKER;
	m.pid = pid;
	m.pss_kb = self_pss_kb();
	return sock_hand_over(ctl, &m, sizeof(m), fd, pid);
}

static void __attribute__((noreturn))
loader_main(int ctl, const struct scan_pool_conf *c, unsigned gen)
{
	struct scan_engine	*engine;
	struct pool_msg		 m;
	struct pollfd		 pfd[2];
	sigset_t		 set;
	uint64_t		 t0 = ev_now(), window = 0;
	char			 buf[16], dir[SCAN_PATH_MAX + 16];
	int			 sfd, i, live = 0, retiring = 0, deaths = 0, st;
	pid_t			 pid;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_SETMASK, &set, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC)) == -1)
		_exit(1);

	memset(&m, 0, sizeof(m));
	engine = scan_engine_load(&c->engine, m.text, sizeof(m.text));
	m.load_ms = (uint32_t)(ev_now() - t0);
	if (engine == NULL) {
		m.type = PM_FAIL;
		(void)sock_send_fd(ctl, &m, sizeof(m), -1);
		_exit(1);
	}
	/* The signatures are read and compiled: from here on, scan_user
	 * (the workers inherit it). A loader that cannot change refuses the
	 * generation rather than scan as the relay's user. */
	if (sandbox_become(&c->ids, m.text, sizeof(m.text)) == -1) {
		m.type = PM_FAIL;
		(void)sock_send_fd(ctl, &m, sizeof(m), -1);
		_exit(1);
	}
	m.type = PM_READY;
	m.pss_kb = self_pss_kb();
	snprintf(m.text, sizeof(m.text), "%s", scan_engine_version(engine));
	if (sock_send_fd(ctl, &m, sizeof(m), -1) == -1)
		_exit(1);
	log_info(NULL, "scan generation=%u loader pid=%d engine=\"%s\" "
	    "load_ms=%u", gen, (int)getpid(), m.text, m.load_ms);
	for (i = 0; i < c->workers; i++)
		if (loader_spawn(ctl, sfd, engine, c) == 0)
			live++;

	for (;;) {
		pfd[0].fd = ctl;
		pfd[0].events = retiring ? 0 : POLLIN;
		pfd[1].fd = sfd;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (!retiring && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			/* The relay closes our channel to retire us. */
			if (recv(ctl, buf, sizeof(buf), MSG_DONTWAIT) <= 0) {
				retiring = 1;
				close(ctl);
				ctl = -1;
			}
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == -1 &&
			    errno != EAGAIN)
				_exit(1);
			while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
				live--;
				/* libclamav's unpacked files, left behind by
				 * a worker killed mid-scan (only scan_user
				 * may remove them). */
				worker_tmpdir(dir, sizeof(dir), c, pid);
				(void)nftw(dir, rm_entry, 8,
				    FTW_DEPTH | FTW_PHYS);
				if (WIFSIGNALED(st))
					log_warn(NULL, "scan worker pid=%d "
					    "killed signal=%d", (int)pid,
					    WTERMSIG(st));
				else if (WEXITSTATUS(st) ==
				    SANDBOX_EXIT_SYSCALL)
					log_err(NULL, "scan worker pid=%d made "
					    "a system call outside its sandbox "
					    "(number on its stderr)", (int)pid);
				else if (WEXITSTATUS(st) != 0)
					log_warn(NULL, "scan worker pid=%d "
					    "exit=%d", (int)pid,
					    WEXITSTATUS(st));
				if (retiring)
					continue;
				/* Replace it, unless workers die in a loop
				 * (a broken sandbox, say): then pause. */
				if (ev_now() - window > POOL_RESPAWN_WINDOW *
				    1000) {
					window = ev_now();
					deaths = 0;
				}
				if (++deaths > POOL_RESPAWN_BURST) {
					log_err(NULL, "scan workers dying in a "
					    "loop; pausing respawn");
					sleep(POOL_RESPAWN_WINDOW);
				}
				if (loader_spawn(ctl, sfd, engine, c) == 0)
					live++;
			}
		}
		if (retiring && live <= 0)
			_exit(0);
	}
}

/* ------------------------------------------------------------------ */
/* In the relay                                                        */

/* The answer goes to whoever still waits for it, once. */
static void
job_answer(struct scan_job *j, const struct scan_result *r)
{
	ev_timer_del(j->pool->loop, &j->timer);
	if (!j->cancelled) {
		j->cancelled = 1;
		j->cb(j->arg, r);
	} else if (r != NULL && SCAN_RESULT_HAS_FD(r))
		close(r->cleaned_fd);
}

/*
 * The worker begins a job: now, or as it answers the one before. A job
 * answered already (its budget spent while it waited) still gets a scan's
 * budget, so that a scan of it that hangs gets its worker killed.
 */
static void
job_start(struct scan_job *j)
{
	j->started = ev_now();
	if (j->started - j->t0 < POOL_BEGUN_AT_ONCE_MS)
		j->started = j->t0;
	if (j->timer.when == 0)
		ev_timer_set(j->pool->loop, &j->timer, j->pool->conf.timeout_ms);
}

/* Answered and let go: the job sent ahead, if any, is the worker's next. */
static void
job_finish(struct scan_job *j, const struct scan_result *r)
{
	struct pool_worker	*w = j->w;

	if (w != NULL) {
		if (w->job == j) {
			w->job = w->ahead;
			w->ahead = NULL;
			if (w->job != NULL)
				job_start(w->job);
		} else if (w->ahead == j)
			w->ahead = NULL;
		j->w = NULL;
	}
	job_answer(j, r);
	close(j->fd);
	free(j);
}

static void
job_fail_result(struct scan_job *j, enum scan_verdict v, const char *why,
    struct scan_result *r)
{
	struct pool	*p = j->pool;

	memset(r, 0, sizeof(*r));
	r->verdict = v;
	snprintf(r->name, sizeof(r->name), "%s", why);
	snprintf(r->engine, sizeof(r->engine), "%s",
	    p->active ? p->active->engine : "none");
	r->ms = (unsigned)(ev_now() - j->t0);
}

static void
job_fail(struct scan_job *j, enum scan_verdict v, const char *why)
{
	struct scan_result	r;

	job_fail_result(j, v, why, &r);
	job_finish(j, &r);
}

/*
 * Failed, but still the worker's to answer: kept until it does, its timer
 * left as it is. The last use of j: the callback may submit, and so lose
 * the worker and free j.
 */
static void
job_fail_keep(struct scan_job *j, enum scan_verdict v, const char *why)
{
	struct scan_result	r;

	job_fail_result(j, v, why, &r);
	j->cancelled = 1;
	j->cb(j->arg, &r);
}

/* A job that was first in line goes back there. */
static void
queue_push_front(struct pool *p, struct scan_job *j)
{
	j->qnext = p->qhead;
	p->qhead = j;
	if (p->qtail == &p->qhead)
		p->qtail = &j->qnext;
	p->qlen++;
}

static void
queue_remove(struct pool *p, struct scan_job *j)
{
	struct scan_job	**pp;

	for (pp = &p->qhead; *pp != NULL; pp = &(*pp)->qnext)
		if (*pp == j) {
			*pp = j->qnext;
			if (p->qtail == &j->qnext)
				p->qtail = pp;
			p->qlen--;
			return;
		}
}

static void
worker_free(struct pool_worker *w)
{
	struct pool_gen		*g = w->gen;
	struct pool_worker	**pp;

	for (pp = &g->workers; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	g->nworkers--;
	ev_io_del(g->pool->loop, &w->io);
	close(w->fd);
	w->fd = -1;
	w->next = pool_dead_workers;
	pool_dead_workers = w;
	if (g->state == GEN_RETIRED && g->nworkers == 0 && g->ctl == -1)
		gen_free(g);
}

/* Whether a job sent ahead to a worker that is lost goes back to the
 * queue: someone waits for it and its budget is not spent. */
static int
job_requeues(const struct scan_job *a)
{
	return a != NULL && !a->cancelled &&
	    ev_now() - a->t0 < a->pool->conf.timeout_ms;
}

/*
 * A worker that will not answer again. It is let go first, and only then
 * are its jobs answered: a callback may submit, and must not find it idle.
 * The one it scanned fails; the one sent ahead goes back to the front of
 * the queue, unless no one waits for it or its budget is spent.
 */
static void
worker_lost(struct pool_worker *w, enum scan_verdict v, const char *why)
{
	struct pool	*p = w->gen->pool;
	struct scan_job	*j = w->job, *a = w->ahead;

	w->job = w->ahead = NULL;
	if (j != NULL)
		j->w = NULL;
	if (a != NULL)
		a->w = NULL;
	worker_free(w);
	if (job_requeues(a))
		queue_push_front(p, a);
	else if (a != NULL && a->cancelled)
		job_finish(a, NULL);
	else if (a != NULL) {
		p->timeouts++;
		job_fail(a, SCAN_TIMEOUT, "no scanner free in time");
	}
	if (j != NULL) {
		if (v == SCAN_TIMEOUT && !j->cancelled)
			p->timeouts++;
		job_fail(j, v, why);
	}
	pool_dispatch(p);
}

/* kill: the process may still run (it answered wrong, or could not be
 * sent to); not after it closed its end, when its pid may be reused. */
static void
worker_dead(struct pool_worker *w, const char *why, int kill_it)
{
	struct pool	*p = w->gen->pool;

	p->deaths++;
	log_warn(NULL, "scan worker pid=%d generation=%u lost: %s%s",
	    (int)w->pid, w->gen->id, why, job_requeues(w->ahead) ?
	    " (the message sent ahead is queued again)" : "");
	if (kill_it)
		kill(w->pid, SIGKILL);
	worker_lost(w, SCAN_ERROR, "scanner worker died");
}

static void
worker_cb(struct ev_io *io, int events)
{
	struct pool_worker	*w = io->arg;
	struct pool		*p = w->gen->pool;
	struct content_rules	*rules;
	struct job_reply	 rep;
	struct scan_job		*j;
	ssize_t			 n;
	int			 fd;

	(void)events;
	n = sock_recv_fd(w->fd, &rep, sizeof(rep), &fd);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != (ssize_t)sizeof(rep) || (j = w->job) == NULL ||
	    rep.id != j->id) {
		if (fd != -1)
			close(fd);
		worker_dead(w, n == 0 ? "exited" : "bad reply", n > 0);
		return;
	}
	/* A cleaned or rewritten message comes with its descriptor,
	 * nothing else does; rule numbers must be the relay's own. */
	if (rep.r.cleaned && (fd == -1 || rep.r.verdict != SCAN_VIRUS)) {
		rep.r.cleaned = 0;
		log_warn(NULL, "scan worker pid=%d: cleaned reply without a "
		    "message", (int)w->pid);
	}
	if (rep.r.content.rewritten && fd == -1)
		rep.r.content.rewritten = 0;
	rules = w->gen->content;
	if (rules == NULL)
		memset(&rep.r.content, 0, sizeof(rep.r.content));
	else if (rep.r.content.rule >= rules->n || (rules->n < 64 &&
	    (rep.r.content.hits >> rules->n) != 0) ||
	    rep.r.content.action > ACT_ERROR) {
		log_warn(NULL, "scan worker pid=%d: bad content result",
		    (int)w->pid);
		memset(&rep.r.content, 0, sizeof(rep.r.content));
		rep.r.content.checked = 1;
		rep.r.content.action = ACT_ERROR;
		snprintf(rep.r.content.error, sizeof(rep.r.content.error),
		    "bad result from the worker");
	}
	rep.r.content.headers[sizeof(rep.r.content.headers) - 1] = '\0';
	rep.r.content.where[sizeof(rep.r.content.where) - 1] = '\0';
	rep.r.content.error[sizeof(rep.r.content.error) - 1] = '\0';
	rep.r.content.rules = rules;
	if (!SCAN_RESULT_HAS_FD(&rep.r) && fd != -1) {
		close(fd);
		fd = -1;
	}
	rep.r.cleaned_fd = fd;
	rep.r.name[sizeof(rep.r.name) - 1] = '\0';
	rep.r.engine[sizeof(rep.r.engine) - 1] = '\0';
	w->scans++;
	w->pss_kb = (unsigned long)rep.pss_kb;
	p->scans++;
	job_finish(j, &rep.r);
	if (w->gen->state == GEN_RETIRED && w->job == NULL)
		worker_free(w);
	pool_dispatch(p);
}

/*
 * A job's budget (from its submission, the queue included) is spent. The
 * client gets its answer now. A worker is killed only for a scan that has
 * itself run a whole budget: one begun late (it waited in the queue, or
 * behind another scan) keeps the rest of its own, and its answer is
 * discarded.
 */
static void
job_timer_cb(struct ev_timer *t)
{
	struct scan_job	*j = t->arg;
	struct pool	*p = j->pool;
	struct pool_worker *w = j->w;
	uint64_t	 ran;

	if (w == NULL) {
		p->timeouts++;
		queue_remove(p, j);
		log_warn(NULL, "scan timeout queued_ms=%llu",
		    (unsigned long long)(ev_now() - j->t0));
		job_fail(j, SCAN_TIMEOUT, "no scanner free in time");
		return;
	}
	ran = j->started != 0 ? ev_now() - j->started : 0;
	if (j->started == 0 || ran < p->conf.timeout_ms) {
		/* Sent ahead: promotion arms its scan's budget. */
		if (j->started != 0)
			ev_timer_set(p->loop, &j->timer,
			    p->conf.timeout_ms - ran);
		if (!j->cancelled) {
			p->timeouts++;
			log_warn(NULL, "scan timeout queued_ms=%llu worker "
			    "pid=%d", (unsigned long long)(ev_now() - j->t0 - ran),
			    (int)w->pid);
			job_fail_keep(j, SCAN_TIMEOUT, "no scanner free in time");
		}
		return;
	}
	log_warn(NULL, "scan timeout worker pid=%d scan_ms=%llu action=kill",
	    (int)w->pid, (unsigned long long)ran);
	kill(w->pid, SIGKILL);
	worker_lost(w, SCAN_TIMEOUT, "scan took too long");
}

/*
 * The worker for the next job: an idle one, else a busy one with nothing
 * sent ahead, behind the smallest scan (the likeliest to end first).
 */
static struct pool_worker *
pool_pick(struct pool_gen *g)
{
	struct pool_worker	*w, *best = NULL;

	for (w = g->workers; w != NULL; w = w->next) {
		if (w->job == NULL)
			return w;
		/* Not behind a scan that has run half its budget: it may
		 * be one that hangs. */
		if (w->ahead == NULL && (w->job->size <= POOL_AHEAD_SIZE_MAX ||
		    g->nworkers == 1) &&
		    ev_now() - w->job->started <
		    g->pool->conf.timeout_ms / 2 &&
		    (best == NULL || w->job->size < best->job->size))
			best = w;
	}
	return best;
}

static void
pool_dispatch(struct pool *p)
{
	struct pool_worker	*w;
	struct scan_job		*j;
	struct job_msg		 jm;
	int			 e;

	while (p->qhead != NULL && p->active != NULL) {
		if ((w = pool_pick(p->active)) == NULL)
			return;
		j = p->qhead;
		queue_remove(p, j);
		memset(&jm, 0, sizeof(jm));
		jm.id = j->id;
		jm.size = j->size;
		jm.flags = j->flags;
		if (sock_send_fd(w->fd, &jm, sizeof(jm), j->fd) == -1) {
			/* Put the job back first: the worker is gone. */
			e = errno;
			queue_push_front(p, j);
			worker_dead(w, strerror(e), e != EPIPE &&
			    e != ECONNRESET);
			return;
		}
		j->w = w;
		if (w->job == NULL) {
			w->job = j;
			job_start(j);
		} else
			w->ahead = j;
	}
}

static struct scan_job *
pool_submit(struct scan_backend *be, int fd, size_t size, unsigned flags,
    scan_done_cb *cb, void *arg)
{
	struct pool	*p = be->impl;
	struct scan_job	*j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	/* What the relay then delivers is what was scanned, whatever a
	 * worker does with its descriptor. */
	if ((j->fd = spool_readonly(fd)) == -1) {
		free(j);
		return NULL;
	}
	j->pool = p;
	j->id = ++p->nextid;
	j->size = size;
	j->flags = flags;
	j->cb = cb;
	j->arg = arg;
	j->t0 = ev_now();
	ev_timer_init(&j->timer, job_timer_cb, j);
	ev_timer_set(p->loop, &j->timer, p->conf.timeout_ms);
	*p->qtail = j;
	p->qtail = &j->qnext;
	p->qlen++;
	pool_dispatch(p);
	return j;
}

static void
pool_cancel(struct scan_backend *be, struct scan_job *j)
{
	struct pool	*p = be->impl;

	if (j->w == NULL) {
		queue_remove(p, j);
		j->cancelled = 1;
		job_finish(j, NULL);
		return;
	}
	/* The worker has it (scanning, or sent ahead): its answer will be
	 * discarded. */
	j->cancelled = 1;
}

/* ------------------------------------------------------------------ */
/* Generations                                                         */

/* The whole generation, as its processes last said. */
static unsigned long
gen_pss_kb(const struct pool_gen *g)
{
	const struct pool_worker	*w;
	unsigned long			 kb = g->loader_pss_kb;

	for (w = g->workers; w != NULL; w = w->next)
		kb += w->pss_kb;
	return kb;
}

static void
gen_free(struct pool_gen *g)
{
	struct pool	*p = g->pool;
	struct pool_gen	**pp;

	for (pp = &p->retired; *pp != NULL; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	log_info(NULL, "scan generation=%u gone", g->id);
	content_rules_free(g->content);
	g->content = NULL;
	g->next = pool_dead_gens;
	pool_dead_gens = g;
}

/* After each event batch: free the workers and generations gone in it. */
void
scan_pool_reap(void)
{
	struct pool_worker	*w;
	struct pool_gen		*g;

	while ((w = pool_dead_workers) != NULL) {
		pool_dead_workers = w->next;
		free(w);
	}
	while ((g = pool_dead_gens) != NULL) {
		pool_dead_gens = g->next;
		free(g);
	}
}

/* Close the loader's channel: it exits once its workers are gone. */
static void
gen_retire(struct pool_gen *g)
{
	struct pool		*p = g->pool;
	struct pool_worker	*w, *next;

	g->state = GEN_RETIRED;
	if (g->ctl != -1) {
		ev_io_del(p->loop, &g->io);
		close(g->ctl);
		g->ctl = -1;
	}
	g->next = p->retired;
	p->retired = g;
	/* Idle workers go now, busy ones when their scan is answered. */
	w = g->workers;
	while (w != NULL && g->nworkers > 0) {
		next = w->next;
		if (w->job == NULL) {
			if (g->nworkers == 1) {
				worker_free(w);		/* frees g too */
				return;
			}
			worker_free(w);
		}
		w = next;
	}
	if (g->nworkers == 0)
		gen_free(g);
}

static void
gen_msg(struct pool_gen *g, const struct pool_msg *m, int fd)
{
	struct pool		*p = g->pool;
	struct pool_worker	*w;
	struct pool_gen		*old;

	switch (m->type) {
	case PM_READY:
		g->loader_pss_kb = (unsigned long)m->pss_kb;
		snprintf(g->engine, sizeof(g->engine), "%.*s",
		    (int)sizeof(g->engine) - 1, m->text);
		old = p->active;
		g->state = GEN_ACTIVE;
		p->active = g;
		if (p->loading == g)
			p->loading = NULL;
		log_info(NULL, "scan engine ready generation=%u engine=\"%s\" "
		    "load_ms=%u", g->id, g->engine, m->load_ms);
		if (g->content != NULL)
			content_set_active(g->content);
		if (old != NULL) {
			log_info(NULL, "scan reload swap from=%u to=%u "
			    "old_pss_kb=%lu new_pss_kb=%lu", old->id, g->id,
			    gen_pss_kb(old), gen_pss_kb(g));
			gen_retire(old);
		}
		/* Rules that came while this generation loaded need one more. */
		if (g->content != p->conf.content && p->loading == NULL) {
			log_info(NULL, "scan reload starting generation=%u "
			    "for newer content rules", p->ngen + 1);
			pool_start_loading(p);
		}
		break;
	case PM_FAIL:
		p->refused++;
		log_err(NULL, "scan engine refused generation=%u: %.*s%s",
		    g->id, (int)sizeof(m->text), m->text,
		    p->active ? " (previous engine keeps serving)" : "");
		break;
	case PM_WORKER:
		if (fd == -1 || (w = calloc(1, sizeof(*w))) == NULL) {
			if (fd != -1)
				close(fd);
			break;
		}
		g->loader_pss_kb = (unsigned long)m->pss_kb;
		w->gen = g;
		w->pid = m->pid;
		w->fd = fd;
		ev_io_init(&w->io, fd, worker_cb, w);
		if (ev_io_set(p->loop, &w->io, EV_READ) == -1) {
			close(fd);
			free(w);
			break;
		}
		w->next = g->workers;
		g->workers = w;
		g->nworkers++;
		log_debug(NULL, "scan worker pid=%d generation=%u ready",
		    (int)w->pid, g->id);
		pool_dispatch(p);
		return;
	}
	if (fd != -1)
		close(fd);
}

static void
gen_cb(struct ev_io *io, int events)
{
	struct pool_gen	*g = io->arg;
	struct pool	*p = g->pool;
	struct pool_msg	 m;
	ssize_t		 n;
	int		 fd;

	(void)events;
	memset(&m, 0, sizeof(m));
	n = sock_recv_fd(g->ctl, &m, sizeof(m), &fd);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == (ssize_t)sizeof(m)) {
		m.text[sizeof(m.text) - 1] = '\0';
		gen_msg(g, &m, fd);
		if (m.type != PM_FAIL)
			return;
	} else if (fd != -1)
		close(fd);
	/* The loader is gone (or refused its engine). */
	ev_io_del(p->loop, &g->io);
	close(g->ctl);
	g->ctl = -1;
	if (g == p->loading) {
		p->loading = NULL;
		content_rules_free(g->content);
		g->content = NULL;
		g->next = pool_dead_gens;	/* freed after the batch */
		pool_dead_gens = g;
		return;
	}
	if (g == p->active) {
		log_err(NULL, "scan loader of generation=%u died; starting "
		    "a new one", g->id);
		p->active = NULL;
		gen_retire(g);
		pool_start_loading(p);
	}
}

static struct pool_gen *
gen_start(struct pool *p)
{
	struct pool_gen	*g;
	int		 sv[2];
	pid_t		 pid;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		free(g);
		return NULL;
	}
	g->pool = p;
	g->id = ++p->ngen;
	g->state = GEN_LOADING;
	g->started = ev_now();
	if ((pid = fork()) == -1) {
		close(sv[0]);
		close(sv[1]);
		free(g);
		return NULL;
	}
	g->content = content_rules_ref(p->conf.content);
	if (pid == 0) {
		/* Keep stdio and our end of the channel, nothing else of
		 * the relay's: no client sockets, no listeners. The syslog
		 * socket goes too, through closelog(): closed behind libc's
		 * back, its number would be reused and libc would write log
		 * lines into whatever got it. */
		closelog();
		if (dup2(sv[1], 3) == -1)
			_exit(1);
		close_range(4, ~0U, 0);
		log_init("sporkd-scan", p->conf.log_syslog, 1);
		loader_main(3, &p->conf, g->id);
	}
	close(sv[1]);
	g->loader = pid;
	g->ctl = sv[0];
	ev_io_init(&g->io, g->ctl, gen_cb, g);
	return g;
}

static void
pool_start_loading(struct pool *p)
{
	struct pool_gen	*g;

	if ((g = gen_start(p)) == NULL) {
		log_err(NULL, "scan: cannot start a loader: %s",
		    strerror(errno));
		return;
	}
	p->loading = g;
	if (ev_io_set(p->loop, &g->io, EV_READ) == -1)
		log_err(NULL, "scan: epoll: %s", strerror(errno));
}

static int
pool_reload(struct scan_backend *be, struct content_rules *content)
{
	struct pool	*p = be->impl;

	if (content != NULL && p->conf.content != NULL) {
		content_rules_free(p->conf.content);
		p->conf.content = content_rules_ref(content);
	}
	if (p->loading != NULL) {
		log_info(NULL, "scan reload already in progress generation=%u",
		    p->loading->id);
		return 0;
	}
	p->reloads++;
	log_info(NULL, "scan reload starting generation=%u", p->ngen + 1);
	pool_start_loading(p);
	return p->loading ? 0 : -1;
}

static void
pool_status(struct scan_backend *be, struct buf *out)
{
	struct pool		*p = be->impl;
	struct pool_worker	*w;
	struct pool_gen		*g;
	unsigned		 busy = 0, ahead = 0;

	buf_printf(out, "scan.backend=workers\n");
	if (p->active != NULL) {
		for (w = p->active->workers; w != NULL; w = w->next) {
			busy += w->job != NULL;
			ahead += w->ahead != NULL;
		}
		buf_printf(out, "scan.engine=%s\nscan.generation=%u\n"
		    "scan.workers=%d\nscan.busy=%u\nscan.ahead=%u\n"
		    "scan.pss_kb=%lu\n", p->active->engine, p->active->id,
		    p->active->nworkers, busy, ahead, gen_pss_kb(p->active));
		for (w = p->active->workers; w != NULL; w = w->next)
			buf_printf(out, "scan.worker pid=%d state=%s ahead=%d "
			    "scans=%u pss_kb=%lu\n", (int)w->pid,
			    w->job ? "busy" : "idle", w->ahead != NULL,
			    w->scans, w->pss_kb);
	}
	if (p->loading != NULL)
		buf_printf(out, "scan.loading=%u\n", p->loading->id);
	for (g = p->retired; g != NULL; g = g->next)
		buf_printf(out, "scan.retiring=%u workers=%d\n", g->id,
		    g->nworkers);
	buf_printf(out, "scan.queue=%u\nscan.scans=%llu\nscan.timeouts=%llu\n"
	    "scan.worker_deaths=%llu\nscan.reloads=%llu\n"
	    "scan.reloads_refused=%llu\n", p->qlen,
	    (unsigned long long)p->scans, (unsigned long long)p->timeouts,
	    (unsigned long long)p->deaths, (unsigned long long)p->reloads,
	    (unsigned long long)p->refused);
}

static void
pool_free(struct scan_backend *be)
{
	struct pool	*p = be->impl;

	if (p->active != NULL)
		gen_retire(p->active);
	content_rules_free(p->conf.content);
	free(p);
}

/* Wait, blocking, for the first generation: startup cannot scan without. */
static int
pool_first_engine(struct pool_gen *g, char *err, size_t errlen)
{
	struct pollfd	pfd;
	struct pool_msg	m;
	ssize_t		n;
	int		fd;

	pfd.fd = g->ctl;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, POOL_LOAD_WAIT_MS) <= 0) {
		snprintf(err, errlen, "scanner engine not loaded in time");
		return -1;
	}
	memset(&m, 0, sizeof(m));
	n = sock_recv_fd(g->ctl, &m, sizeof(m), &fd);
	if (fd != -1)
		close(fd);
	if (n != (ssize_t)sizeof(m) || m.type != PM_READY) {
		m.text[sizeof(m.text) - 1] = '\0';
		snprintf(err, errlen, "%s", n == (ssize_t)sizeof(m) ? m.text :
		    "scanner loader died");
		return -1;
	}
	m.text[sizeof(m.text) - 1] = '\0';
	gen_msg(g, &m, -1);
	return 0;
}

struct scan_backend *
scan_pool_new(struct ev_loop *loop, const struct scan_pool_conf *c,
    char *err, size_t errlen)
{
	struct pool	*p;
	struct pool_gen	*g;
	int		 st;

	if (c->workers < 1 || c->workers > POOL_WORKERS_MAX) {
		snprintf(err, errlen, "scan_workers must be 1 to %d",
		    POOL_WORKERS_MAX);
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->loop = loop;
	p->conf = *c;
	p->conf.content = content_rules_ref(c->content);
	p->qtail = &p->qhead;
	p->be.name = "workers";
	p->be.submit = pool_submit;
	p->be.cancel = pool_cancel;
	p->be.reload = pool_reload;
	p->be.status = pool_status;
	p->be.free = pool_free;
	p->be.impl = p;
	if ((g = gen_start(p)) == NULL) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		free(p);
		return NULL;
	}
	if (pool_first_engine(g, err, errlen) == -1) {
		close(g->ctl);
		waitpid(g->loader, &st, 0);
		content_rules_free(g->content);
		content_rules_free(p->conf.content);
		free(g);
		free(p);
		return NULL;
	}
	if (ev_io_set(loop, &g->io, EV_READ) == -1) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		return NULL;
	}
	return &p->be;
}
