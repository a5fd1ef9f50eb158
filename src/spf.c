/* SPDX-License-Identifier: MIT */
/*
 * SPF off the event loop. libspf2 resolves synchronously, so it runs in a
 * helper process forked at start (before privileges are dropped), which
 * answers one request at a time over a SOCK_SEQPACKET socketpair: the
 * relay sends (id, client address, HELO, sender) and gets (id, result,
 * Received-SPF header, comment) back, or gives up after spf_timeout and
 * takes temperror. The helper runs as the daemon's user, without
 * capabilities, under the worker's seccomp list minus socket and connect
 * (it asks DNS); with dns_servers set, it sees a resolv.conf of its own in
 * a private mount namespace. It trusts nothing it is sent: every string
 * is bounded and terminated here before libspf2 sees it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spf2/spf.h>

#include "conf.h"
#include "ev.h"
#include "log.h"
#include "sandbox.h"
#include "sock.h"
#include "spf.h"

#define SPF_HELPER_MEMORY	(512ULL * 1024 * 1024)
#define SPF_FD_SCAN_MAX		4096	/* descriptors closed in the helper */

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

struct spf_query {
	uint32_t	  id;
	spf_cb		 *cb;
	void		 *arg;
	struct ev_timer	  timer;
	struct spf_query *next;
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

static struct ev_loop	*spf_loop;
static int		 spf_fd = -1;
static struct ev_io	 spf_io;
static struct spf_query	*spf_pending;
static uint32_t		 spf_seq;
static unsigned		 spf_timeout_ms;

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
spf_helper(int fd, const struct conf *c)
{
	struct sandbox_conf	 sc;
	struct spf_req		 q;
	struct spf_resp		 a;
	SPF_server_t		*srv;
	sigset_t		 all;
	char			 err[256], host[256];
	ssize_t			 n;
	int			 i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "sporkd-spf");
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (i = 3; i < SPF_FD_SCAN_MAX; i++)
		if (i != fd)
			close(i);
	if (spf_resolver(&c->dns_servers, err, sizeof(err)) == -1)
		log_warn(NULL, "%s: using the system resolver", err);
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "spork");
	host[sizeof(host) - 1] = '\0';
	memset(&sc, 0, sizeof(sc));
	sc.user = c->user[0] ? c->user : c->scan_user;
	sc.max_memory = SPF_HELPER_MEMORY;
	sc.dns = 1;
	if (sandbox_enter(&sc, err, sizeof(err)) == -1) {
		log_err(NULL, "spf helper: %s", err);
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
/* The relay's side                                                    */

static void
spf_finish(struct spf_query *q, const struct spf_result *r)
{
	struct spf_query	**pp;

	for (pp = &spf_pending; *pp != NULL; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	ev_timer_del(spf_loop, &q->timer);
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
spf_io_cb(struct ev_io *io, int events)
{
	struct spf_resp		 a;
	struct spf_result	 r;
	struct spf_query	*q;
	ssize_t			 n;

	(void)events;
	for (;;) {
		n = recv(io->fd, &a, sizeof(a), MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			log_err(NULL, "spf helper gone: SPF answers temperror "
			    "from now on");
			ev_io_del(spf_loop, io);
			close(spf_fd);
			spf_fd = -1;
			while (spf_pending != NULL)
				spf_temperror(spf_pending, "SPF helper gone");
			return;
		}
		if ((size_t)n != sizeof(a))
			continue;
		for (q = spf_pending; q != NULL && q->id != a.id; q = q->next)
			;
		if (q == NULL)
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
	}
}

int
spf_init(struct ev_loop *loop, const struct conf *c, char *err,
    size_t errlen)
{
	int	sv[2];
	pid_t	pid;

	spf_loop = loop;
	spf_timeout_ms = c->spf_timeout;
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
	if (pid == 0)
		spf_helper(sv[1], c);
	close(sv[1]);
	spf_fd = sv[0];
	ev_io_init(&spf_io, spf_fd, spf_io_cb, NULL);
	if (ev_io_set(loop, &spf_io, EV_READ) == -1) {
		snprintf(err, errlen, "spf epoll: %s", strerror(errno));
		return -1;
	}
	log_info(NULL, "spf helper pid=%d", (int)pid);
	return 0;
}

/*
 * The callback runs once, later. NULL (and no callback) when the helper
 * cannot take the request: the caller takes temperror.
 */
struct spf_query *
spf_check(const struct sockaddr_storage *client, const char *helo,
    const char *sender, spf_cb *cb, void *arg)
{
	struct spf_req		 q;
	struct spf_query	*sq;

	if (spf_fd == -1)
		return NULL;
	memset(&q, 0, sizeof(q));
	if (sock_format_host(client, q.ip, sizeof(q.ip)) == -1)
		return NULL;
	if (strncmp(q.ip, "::ffff:", 7) == 0 && strchr(q.ip, '.') != NULL)
		memmove(q.ip, q.ip + 7, strlen(q.ip + 7) + 1);
	snprintf(q.helo, sizeof(q.helo), "%s", helo);
	snprintf(q.sender, sizeof(q.sender), "%s", sender);
	if ((sq = calloc(1, sizeof(*sq))) == NULL)
		return NULL;
	q.id = sq->id = ++spf_seq;
	if (send(spf_fd, &q, sizeof(q), MSG_DONTWAIT) != (ssize_t)sizeof(q)) {
		free(sq);
		return NULL;
	}
	sq->cb = cb;
	sq->arg = arg;
	ev_timer_init(&sq->timer, spf_timer_cb, sq);
	ev_timer_set(spf_loop, &sq->timer, spf_timeout_ms);
	sq->next = spf_pending;
	spf_pending = sq;
	return sq;
}

void
spf_cancel(struct spf_query *q)
{
	struct spf_query	**pp;

	if (q == NULL)
		return;
	for (pp = &spf_pending; *pp != NULL; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	ev_timer_del(spf_loop, &q->timer);
	free(q);
}
