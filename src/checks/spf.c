/* SPDX-License-Identifier: MIT */
/*
 * SPF off the event loop. libspf2 resolves synchronously, so it runs in
 * helper processes, spf_helpers of them, each answering one request at a
 * time over a SOCK_SEQPACKET socket: the relay sends (id, client address,
 * HELO, sender) and gets (id, result, Received-SPF header, comment) back.
 * Requests wait in the relay for an idle helper; one that has no answer
 * by spf_timeout, queued or not, takes temperror.
 *
 * The helpers are forked by a spawner, itself forked at start before
 * privileges are dropped: with dns_servers set, it gives itself a private
 * mount namespace with a resolv.conf of its own, then drops to the
 * daemon's user and hands the relay one socket per helper it forks. A
 * helper that dies costs its one request a temperror (the relay sees the
 * socket close) and is replaced by the spawner, at most one a second. The
 * helpers run without capabilities, under the worker's seccomp list minus
 * socket and connect (they ask DNS). A helper trusts nothing it is sent:
 * every string is bounded and terminated before libspf2 sees it; the
 * relay trusts no helper's answer beyond the id it is waiting for.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <spf2/spf.h>

#include "conf.h"
#include "ev.h"
#include "log.h"
#include "sandbox.h"
#include "sock.h"
#include "spf.h"

#define SPF_HELPER_MEMORY	(512ULL * 1024 * 1024)
#define SPF_QUEUE_MAX		1024	/* requests waiting for a helper */
#define SPF_RESPAWN_MS		1000	/* at most one new helper a second */

struct spf_req {
	uint32_t	id;
	char		ip[64];
	char		helo[256];
	char		sender[256];
};

struct spf_resp {
	uint32_t	id;
	int32_t		result;
	char		header[960];
	char		comment[320];
};

/* From the spawner, with the relay's end of a new helper's socket. */
struct spf_born {
	int32_t		pid;
};

struct spf_helper;

struct spf_query {
	uint32_t	   id;
	spf_cb		  *cb;
	void		  *arg;
	struct ev_timer	   timer;
	struct spf_req	   req;
	struct spf_helper *h;		/* NULL while queued */
	struct spf_query  *next;	/* in the queue */
};

struct spf_helper {
	int		  fd;		/* -1: a free slot */
	pid_t		  pid;
	struct ev_io	  io;
	int		  busy;		/* a request is out, maybe abandoned */
	uint32_t	  busy_id;
	struct spf_query *q;		/* NULL once abandoned */
};

static const char *const spf_names[] = {
	[SPFR_NONE] = "none",
	[SPFR_NEUTRAL] = "neutral",
	[SPFR_PASS] = "pass",
	[SPFR_FAIL] = "fail",
	[SPFR_SOFTFAIL] = "softfail",
	[SPFR_TEMPERROR] = "temperror",
	[SPFR_PERMERROR] = "permerror",
};

static struct ev_loop	 *spf_loop;
static int		  spf_ctl = -1;		/* to the spawner */
static struct ev_io	  spf_ctl_io;
static struct spf_helper  spf_helpers[CONF_SPF_HELPERS_MAX];
static int		  spf_nhelpers;
static struct spf_query	 *spf_queue;
static struct spf_query	**spf_qtail = &spf_queue;
static size_t		  spf_qlen;
static uint32_t		  spf_seq;
static unsigned		  spf_timeout_ms;

const char *
spf_res_name(enum spf_res r)
{
	return spf_names[r];
}

/* ------------------------------------------------------------------ */
/* The helper                                                          */

static void
clean_text(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

static enum spf_res
spf_map(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_PASS:		return SPFR_PASS;
	case SPF_RESULT_FAIL:		return SPFR_FAIL;
	case SPF_RESULT_SOFTFAIL:	return SPFR_SOFTFAIL;
	case SPF_RESULT_NEUTRAL:	return SPFR_NEUTRAL;
	case SPF_RESULT_TEMPERROR:	return SPFR_TEMPERROR;
	case SPF_RESULT_PERMERROR:	return SPFR_PERMERROR;
	default:			return SPFR_NONE;
	}
}

static void
spf_evaluate(SPF_server_t *srv, struct spf_req *q, struct spf_resp *a)
{
	SPF_request_t	*req;
	SPF_response_t	*resp = NULL;
	const char	*v;
	char		 from[300];

	q->ip[sizeof(q->ip) - 1] = q->helo[sizeof(q->helo) - 1] =
	    q->sender[sizeof(q->sender) - 1] = '\0';
	a->result = SPFR_TEMPERROR;
	if ((req = SPF_request_new(srv)) == NULL)
		return;
	if (strchr(q->ip, ':') != NULL)
		SPF_request_set_ipv6_str(req, q->ip);
	else
		SPF_request_set_ipv4_str(req, q->ip);
	if (q->helo[0] != '\0')
		SPF_request_set_helo_dom(req, q->helo);
	/* The null sender is checked as postmaster at the HELO name. */
	snprintf(from, sizeof(from), "%s", q->sender[0] ? q->sender :
	    q->helo);
	if (from[0] == '\0' || SPF_request_set_env_from(req, from) != 0) {
		a->result = SPFR_NONE;
		goto done;
	}
	SPF_request_query_mailfrom(req, &resp);
	if (resp == NULL)
		goto done;
	a->result = (int32_t)spf_map(SPF_response_result(resp));
	if ((v = SPF_response_get_received_spf_value(resp)) != NULL)
		snprintf(a->header, sizeof(a->header), "Received-SPF: %s", v);
	if ((v = SPF_response_get_smtp_comment(resp)) != NULL)
		snprintf(a->comment, sizeof(a->comment), "%s", v);
	clean_text(a->header);
	clean_text(a->comment);
done:
	if (resp != NULL)
		SPF_response_free(resp);
	SPF_request_free(req);
}

/*
 * dns_servers for the helper: libspf2 reads /etc/resolv.conf, so the
 * helper gets a private mount namespace with its own file over it.
 */
static int
spf_resolver(const struct conf_words *servers, char *err, size_t errlen)
{
	struct sockaddr_storage	ss;
	char			host[64];
	FILE			*fp;
	int			i;

	if (servers->n == 0)
		return 0;
	if (geteuid() != 0) {
		snprintf(err, errlen, "dns_servers needs root at start for "
		    "the SPF helper");
		return -1;
	}
	if (unshare(CLONE_NEWNS) == -1 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("spork-spf", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV |
	    MS_NOEXEC, "size=64k,mode=0755") == -1)
		goto syserr;
	if ((fp = fopen("/tmp/resolv.conf", "w")) == NULL)
		goto syserr;
	for (i = 0; i < servers->n; i++) {
		if (sock_parse_addr(servers->w[i], &ss) == -1 ||
		    sock_format_host(&ss, host, sizeof(host)) == -1)
			continue;
		if (ntohs(((struct sockaddr_in *)&ss)->sin_port) != 53)
			log_warn(NULL, "spf helper: %s: the system resolver "
			    "asks port 53 only", servers->w[i]);
		fprintf(fp, "nameserver %s\n", host);
	}
	fprintf(fp, "options timeout:2 attempts:2\n");
	if (fclose(fp) == EOF ||
	    mount("/tmp/resolv.conf", "/etc/resolv.conf", NULL, MS_BIND,
	    NULL) == -1)
		goto syserr;
	return 0;
syserr:
	snprintf(err, errlen, "spf helper resolver: %s", strerror(errno));
	return -1;
}

static void __attribute__((noreturn))
spf_helper(int fd, const char *host)
{
	struct sandbox_conf	 sc;
	struct spf_req		 q;
	struct spf_resp		 a;
	SPF_server_t		*srv;
	char			 err[256];
	ssize_t			 n;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "sporkd-spf");
	closelog();
	if (dup2(fd, 3) == -1)
		_exit(1);
	close_range(4, ~0U, 0);
	fd = 3;
	memset(&sc, 0, sizeof(sc));
	sc.max_memory = SPF_HELPER_MEMORY;
	sc.dns = 1;
	if (sandbox_enter(&sc, err, sizeof(err)) == -1) {
		log_err(NULL, "spf helper pid=%d: %s", (int)getpid(), err);
		_exit(1);
	}
	if ((srv = SPF_server_new(SPF_DNS_CACHE, 0)) == NULL) {
		log_err(NULL, "spf helper: libspf2 did not start");
		_exit(1);
	}
	SPF_server_set_rec_dom(srv, host);
	for (;;) {
		n = recv(fd, &q, sizeof(q), 0);
		if (n == 0)
			_exit(0);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if ((size_t)n != sizeof(q))
			continue;
		memset(&a, 0, sizeof(a));
		a.id = q.id;
		spf_evaluate(srv, &q, &a);
		if (send(fd, &a, sizeof(a), 0) == -1)
			_exit(1);
	}
}

/* ------------------------------------------------------------------ */
/* The spawner                                                         */

/* One helper, its socket handed to the relay. */
static int
spawner_fork(int ctl, int sfd, const char *host)
{
	struct spf_born	b;
	int		fd;
	pid_t		pid;

	if ((pid = sock_fork_pair(&fd)) == -1)
		return -1;
	if (pid == 0) {
		close(ctl);
		close(sfd);
		spf_helper(fd, host);
	}
	memset(&b, 0, sizeof(b));
	b.pid = (int32_t)pid;
	return sock_hand_over(ctl, &b, sizeof(b), fd, pid);
}

/*
 * scan_user, as the scan workers (never the relay's user: a helper must
 * not be able to signal the relay or open its files), no capabilities;
 * forking stays allowed.
 */
static int
spawner_drop(const struct conf *c, char *err, size_t errlen)
{
	struct passwd	*pw;
	const char	*user = c->scan_user;

	if (geteuid() == 0) {
		if ((pw = getpwnam(user)) == NULL) {
			snprintf(err, errlen, "user '%s' does not exist", user);
			return -1;
		}
		if (setgroups(1, &pw->pw_gid) == -1 ||
		    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
			goto syserr;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		goto syserr;
	return 0;
syserr:
	snprintf(err, errlen, "spf spawner: %s", strerror(errno));
	return -1;
}

/*
 * Keeps spf_helpers helpers alive: forks them, reaps them, replaces the
 * dead no faster than one a second (a helper that cannot start would
 * otherwise fork in a loop). Exits when the relay closes the channel; the
 * helpers follow (their parent-death signal).
 */
static void __attribute__((noreturn))
spawner_main(int ctl, const struct conf *c)
{
	struct signalfd_siginfo	si;
	struct pollfd		pfd[2];
	sigset_t		set;
	uint64_t		last = 0, now;
	char			err[256], host[256], buf[16];
	int			sfd, live = 0, want, st, wait_ms;
	pid_t			pid;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "sporkd-spfspawn");
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_SETMASK, &set, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) == -1)
		_exit(1);
	if (spf_resolver(&c->dns_servers, err, sizeof(err)) == -1)
		log_warn(NULL, "%s: using the system resolver", err);
	if (spawner_drop(c, err, sizeof(err)) == -1) {
		log_err(NULL, "%s", err);
		_exit(1);
	}
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "spork");
	host[sizeof(host) - 1] = '\0';
	want = (int)c->spf_helpers;
	for (; live < want; live++)
		if (spawner_fork(ctl, sfd, host) == -1)
			break;
	last = ev_now();
	for (;;) {
		now = ev_now();
		wait_ms = -1;
		if (live < want) {
			if (now - last >= SPF_RESPAWN_MS) {
				if (spawner_fork(ctl, sfd, host) == 0)
					live++;
				else
					log_err(NULL, "spf helper fork: %s",
					    strerror(errno));
				last = now;
				continue;
			}
			wait_ms = (int)(SPF_RESPAWN_MS - (now - last));
		}
		pfd[0].fd = ctl;
		pfd[0].events = POLLIN;
		pfd[1].fd = sfd;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, wait_ms) == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		/* The relay closes the channel when it goes. */
		if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    recv(ctl, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			_exit(0);
		if (!(pfd[1].revents & POLLIN))
			continue;
		while (read(sfd, &si, sizeof(si)) == sizeof(si))
			;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			live--;
			if (WIFSIGNALED(st))
				log_warn(NULL, "spf helper pid=%d killed "
				    "signal=%d: respawning", (int)pid,
				    WTERMSIG(st));
			else
				log_warn(NULL, "spf helper pid=%d exit=%d: "
				    "respawning", (int)pid, WEXITSTATUS(st));
		}
	}
}

/* ------------------------------------------------------------------ */
/* The relay's side                                                    */

static void
spf_unqueue(struct spf_query *q)
{
	struct spf_query	**pp;

	for (pp = &spf_queue; *pp != NULL; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			if (spf_qtail == &q->next)
				spf_qtail = pp;
			spf_qlen--;
			return;
		}
}

/* Out of the queue or off its helper (which stays busy until it
 * answers: it cannot take another request before). */
static void
spf_detach(struct spf_query *q)
{
	if (q->h != NULL) {
		q->h->q = NULL;
		q->h = NULL;
	} else
		spf_unqueue(q);
	ev_timer_del(spf_loop, &q->timer);
}

static void
spf_finish(struct spf_query *q, const struct spf_result *r)
{
	spf_detach(q);
	q->cb(q->arg, r);
	free(q);
}

static void
spf_temperror(struct spf_query *q, const char *why)
{
	struct spf_result	r;

	memset(&r, 0, sizeof(r));
	r.result = SPFR_TEMPERROR;
	snprintf(r.comment, sizeof(r.comment), "%s", why);
	spf_finish(q, &r);
}

static void
spf_timer_cb(struct ev_timer *t)
{
	spf_temperror(t->arg, "SPF check timed out");
}

static void
spf_helper_gone(struct spf_helper *h, const char *why)
{
	struct spf_query	*q = h->q;

	log_err(NULL, "spf helper pid=%d gone (%s)%s", (int)h->pid, why,
	    q != NULL ? ": its check answers temperror" : "");
	ev_io_del(spf_loop, &h->io);
	close(h->fd);
	h->fd = -1;
	h->busy = 0;
	spf_nhelpers--;
	if (q != NULL)
		spf_temperror(q, "SPF helper died");
}

/* Queued requests to idle helpers, oldest first. */
static void
spf_dispatch(void)
{
	struct spf_helper	*h;
	struct spf_query	*q;
	int			 i;

	for (i = 0; i < CONF_SPF_HELPERS_MAX && spf_queue != NULL; i++) {
		h = &spf_helpers[i];
		if (h->fd == -1 || h->busy)
			continue;
		q = spf_queue;
		if (send(h->fd, &q->req, sizeof(q->req), MSG_DONTWAIT) !=
		    (ssize_t)sizeof(q->req)) {
			spf_helper_gone(h, strerror(errno));
			continue;
		}
		spf_unqueue(q);
		q->h = h;
		h->q = q;
		h->busy = 1;
		h->busy_id = q->id;
	}
}

static void
spf_io_cb(struct ev_io *io, int events)
{
	struct spf_helper	*h = io->arg;
	struct spf_resp		 a;
	struct spf_result	 r;
	struct spf_query	*q;
	ssize_t			 n;

	(void)events;
	for (;;) {
		n = recv(h->fd, &a, sizeof(a), MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			spf_helper_gone(h, n == 0 ? "closed" : strerror(errno));
			break;
		}
		if ((size_t)n != sizeof(a) || !h->busy || a.id != h->busy_id)
			continue;
		h->busy = 0;
		if ((q = h->q) == NULL)
			continue;	/* timed out or cancelled */
		memset(&r, 0, sizeof(r));
		r.result = a.result >= 0 && a.result < SPFR_COUNT ?
		    (enum spf_res)a.result : SPFR_TEMPERROR;
		a.header[sizeof(a.header) - 1] = '\0';
		a.comment[sizeof(a.comment) - 1] = '\0';
		clean_text(a.header);
		clean_text(a.comment);
		memcpy(r.header, a.header, sizeof(r.header));
		memcpy(r.comment, a.comment, sizeof(r.comment));
		spf_finish(q, &r);
		if (h->fd == -1)
			break;
	}
	spf_dispatch();
}

/* The spawner hands over a new helper. */
static void
spf_ctl_cb(struct ev_io *io, int events)
{
	struct spf_born		 b;
	struct spf_helper	*h = NULL;
	ssize_t			 n;
	int			 fd, i;

	(void)events;
	for (;;) {
		n = sock_recv_fd(io->fd, &b, sizeof(b), &fd);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			log_err(NULL, "spf spawner gone: no new SPF helpers "
			    "from now on");
			ev_io_del(spf_loop, io);
			close(spf_ctl);
			spf_ctl = -1;
			break;
		}
		if ((size_t)n != sizeof(b) || fd == -1) {
			if (fd != -1)
				close(fd);
			continue;
		}
		for (i = 0; i < CONF_SPF_HELPERS_MAX; i++)
			if (spf_helpers[i].fd == -1) {
				h = &spf_helpers[i];
				break;
			}
		if (h == NULL) {
			close(fd);	/* more than asked for: a bug there */
			continue;
		}
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		memset(h, 0, sizeof(*h));
		h->fd = fd;
		h->pid = (pid_t)b.pid;
		ev_io_init(&h->io, fd, spf_io_cb, h);
		if (ev_io_set(spf_loop, &h->io, EV_READ) == -1) {
			log_err(NULL, "spf helper pid=%d: epoll: %s", (int)h->pid,
			    strerror(errno));
			close(fd);
			h->fd = -1;
			continue;
		}
		spf_nhelpers++;
		log_info(NULL, "spf helper pid=%d ready helpers=%d",
		    (int)h->pid, spf_nhelpers);
		h = NULL;
	}
	spf_dispatch();
}

int
spf_init(struct ev_loop *loop, const struct conf *c, char *err,
    size_t errlen)
{
	int	sv[2], i;
	pid_t	pid;

	spf_loop = loop;
	spf_timeout_ms = c->spf_timeout;
	for (i = 0; i < CONF_SPF_HELPERS_MAX; i++)
		spf_helpers[i].fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		snprintf(err, errlen, "spf socketpair: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "spf fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		/* Stdio and the channel, nothing else of the relay's (the
		 * syslog socket through libc, as the scan loader does). */
		closelog();
		if (dup2(sv[1], 3) == -1)
			_exit(1);
		close_range(4, ~0U, 0);
		log_init("sporkd-spf", c->log_syslog, c->log_stderr);
		log_set_level((enum log_level)c->log_level);
		spawner_main(3, c);
	}
	close(sv[1]);
	spf_ctl = sv[0];
	if (fcntl(spf_ctl, F_SETFL, O_NONBLOCK) == -1) {
		snprintf(err, errlen, "spf channel: %s", strerror(errno));
		return -1;
	}
	ev_io_init(&spf_ctl_io, spf_ctl, spf_ctl_cb, NULL);
	if (ev_io_set(loop, &spf_ctl_io, EV_READ) == -1) {
		snprintf(err, errlen, "spf epoll: %s", strerror(errno));
		return -1;
	}
	log_info(NULL, "spf spawner pid=%d helpers=%zu", (int)pid,
	    c->spf_helpers);
	return 0;
}

/*
 * The callback runs once, later. NULL (and no callback) when the request
 * cannot be taken: the caller takes temperror.
 */
struct spf_query *
spf_check(const struct sockaddr_storage *client, const char *helo,
    const char *sender, spf_cb *cb, void *arg)
{
	struct spf_query	*sq;

	/* No helper and none coming, or a queue no deadline could clear. */
	if ((spf_nhelpers == 0 && spf_ctl == -1) || spf_qlen >= SPF_QUEUE_MAX)
		return NULL;
	if ((sq = calloc(1, sizeof(*sq))) == NULL)
		return NULL;
	if (sock_format_host(client, sq->req.ip, sizeof(sq->req.ip)) == -1) {
		free(sq);
		return NULL;
	}
	if (strncmp(sq->req.ip, "::ffff:", 7) == 0 &&
	    strchr(sq->req.ip, '.') != NULL)
		memmove(sq->req.ip, sq->req.ip + 7, strlen(sq->req.ip + 7) + 1);
	snprintf(sq->req.helo, sizeof(sq->req.helo), "%s", helo);
	snprintf(sq->req.sender, sizeof(sq->req.sender), "%s", sender);
	sq->req.id = sq->id = ++spf_seq;
	sq->cb = cb;
	sq->arg = arg;
	ev_timer_init(&sq->timer, spf_timer_cb, sq);
	ev_timer_set(spf_loop, &sq->timer, spf_timeout_ms);
	*spf_qtail = sq;
	spf_qtail = &sq->next;
	spf_qlen++;
	spf_dispatch();
	return sq;
}

void
spf_cancel(struct spf_query *q)
{
	if (q == NULL)
		return;
	spf_detach(q);
	free(q);
}
