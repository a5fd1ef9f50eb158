/* SPDX-License-Identifier: MIT */
/*
 * sporkd: reads the configuration, loads the scanner, binds the listeners,
 * drops privileges and runs the event loop. Signals arrive through a
 * signalfd as ordinary events: TERM/INT stop accepting and let sessions
 * finish within a grace period.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "accept.h"
#include "cba.h"
#include "checks.h"
#include "cidr.h"
#include "clamd.h"
#include "conf.h"
#include "content.h"
#include "control.h"
#include "ev.h"
#include "journal.h"
#include "icap.h"
#include "log.h"
#include "milter.h"
#include "nft_divert.h"
#include "policy.h"
#include "prequeue.h"
#include "priv.h"
#include "relay.h"
#include "sandbox.h"
#include "scan_pool.h"
#include "scanner.h"
#include "spam.h"
#include "track.h"
#include "tls.h"

#define SPORKD_VERSION		"0.1.0"
#define SPORKD_DEFAULT_CONF	"/etc/spork/spork.conf"
#define SPORKD_GRACE_MS		30000

static struct ev_loop	*loop;
static struct ev_io	 sig_io;
static struct ev_timer	 grace_timer;
static int		 stopping;
static const struct conf *sporkd_conf;	/* main()'s, for reloads */
/* conf.c bounds spam_servers without knowing the spam client. */
_Static_assert(CONF_SPAM_SERVERS_MAX == SPAM_SERVERS_MAX, "spam_servers bound");

static struct scan_backend *scanner;
/* scan_user's identity: the scan loaders take it; nothing else may. */
static struct sandbox_ids scan_ids;
static struct spam	*spam;
static struct ev_io	 dbwatch_io;
static struct ev_timer	 dbwatch_timer;

#define SPORKD_DBWATCH_SETTLE_MS	2000	/* freshclam writes in steps */

static int	reload(const char *why);

static void
usage(void)
{
	fprintf(stderr, "usage: sporkd [-t] [-d] [-P] [-c file]\n"
	    "  -c file  configuration (default %s)\n"
	    "  -t       check the configuration and exit\n"
	    "  -P       print the divert ruleset sporkd installs, and exit\n"
	    "  -d       debug logging\n"
	    "  -V       print the version\n", SPORKD_DEFAULT_CONF);
	exit(2);
}

static void
grace_cb(struct ev_timer *t)
{
	(void)t;
	log_warn(NULL, "shutdown grace period over, sessions=%zu dropped",
	    relay_sessions());
	ev_stop(loop);
}

/* Runs after every batch: exit once the last session is gone. */
static void
after_batch(void *arg)
{
	relay_reap(arg);
	cba_reap();
	scan_pool_reap();
	milter_reap();
	if (stopping && relay_sessions() == 0)
		ev_stop(loop);
}

static void
reap_children(void)
{
	pid_t	pid;
	int	st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		log_debug(NULL, "child pid=%d %s=%d", (int)pid,
		    WIFSIGNALED(st) ? "signal" : "exit",
		    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

/* The signature directory changed: reload once it has settled. */
static void
dbwatch_cb(struct ev_io *io, int events)
{
	char	buf[4096];

	(void)events;
	while (read(io->fd, buf, sizeof(buf)) > 0)
		;
	ev_timer_set(loop, &dbwatch_timer, SPORKD_DBWATCH_SETTLE_MS);
}

static void
dbwatch_fire(struct ev_timer *t)
{
	(void)t;
	(void)reload("signature directory changed");
}

static void
dbwatch_init(const char *dir)
{
	int	fd;

	if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		return;
	if (inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO |
	    IN_DELETE | IN_CREATE) == -1) {
		log_warn(NULL, "not watching %s: %s", dir, strerror(errno));
		close(fd);
		return;
	}
	ev_io_init(&dbwatch_io, fd, dbwatch_cb, NULL);
	ev_timer_init(&dbwatch_timer, dbwatch_fire, NULL);
	if (ev_io_set(loop, &dbwatch_io, EV_READ) == -1)
		close(fd);
}

/*
 * The divert sporkd owns (divert_bridge): the bridge as the kernel sees
 * it, what this kernel can match, the listener's port.
 */
static int
divert_conf(const struct conf *c, struct nft_divert_conf *dc, int probe,
    char *err, size_t errlen)
{
	char	report[4096];
	int	i, have;

	memset(dc, 0, sizeof(*dc));
	dc->table = c->divert_table;
	dc->mark = (uint32_t)c->divert_mark;
	dc->queue = c->connect_before_accept;
	dc->queue_num = (uint16_t)c->connect_before_accept_queue;
	for (i = 0; i < c->transparent_listen.n; i++) {
		if (c->transparent_listen.a[i].ss_family == AF_INET6)
			dc->ipv6 = 1;
		if (dc->port == 0)
			dc->port = ntohs(((const struct sockaddr_in *)
			    &c->transparent_listen.a[i])->sin_port);
	}
	if (dc->port == 0) {
		snprintf(err, errlen, "divert_bridge needs a transparent_listen");
		return -1;
	}
	if (nft_divert_read_bridge(dc, c->divert_bridge, err, errlen) == -1)
		return -1;
	if (!probe)
		return 0;
	if ((have = nft_divert_probe(report, sizeof(report))) == -1 ||
	    (have & NFT_DIVERT_NEED) != NFT_DIVERT_NEED) {
		snprintf(err, errlen, "this kernel cannot carry the divert:\n%.900s",
		    report);
		return -1;
	}
	dc->use_ibrname = (have & NFT_DIVERT_HAVE_IBRNAME) != 0;
	if (dc->queue && !(have & NFT_DIVERT_HAVE_NFQUEUE)) {
		snprintf(err, errlen, "connect_before_accept: this kernel cannot"
		    " queue SYNs:\n%.900s", report);
		return -1;
	}
	return 0;
}

/* The content rules file, at startup and at each reload. */
static struct content_rules *
content_read(const struct conf *c, char *err, size_t errlen)
{
	static char		 text[CONF_NETS_MAX][64];
	const char		*nets[CONF_NETS_MAX];
	int			 i;

	for (i = 0; i < c->inside_networks.n; i++) {
		(void)cidr_format(&c->inside_networks.net[i], text[i],
		    sizeof(text[i]));
		nets[i] = text[i];
	}
	return content_rules_load(c->content_rules, nets,
	    c->inside_networks.n, err, errlen);
}

static int
content_load(const struct conf *c, char *err, size_t errlen)
{
	struct content_rules	*rs;

	if (c->content_rules[0] == '\0')
		return 0;
	if ((rs = content_read(c, err, errlen)) == NULL)
		return -1;
	content_set_active(rs);
	content_rules_free(rs);
	return 0;
}

/*
 * SIGHUP, sporkctl reload, new signatures: a new scan generation, with
 * the rules file read again. Rules that do not parse are refused and the
 * old ones stay, as a signature database that does not load is refused.
 */
static int
reload(const char *why)
{
	struct content_rules	*rs = NULL;
	char			 err[1024];
	int			 rc, tls_rc;

	log_info(NULL, "%s: reloading", why);
	if (sporkd_conf->content_rules[0] != '\0' &&
	    (rs = content_read(sporkd_conf, err, sizeof(err))) == NULL)
		log_err(NULL, "content rules refused: %s (previous rules keep "
		    "serving)", err);
	/* A key set or a CA file that does not load leaves the old one
	 * serving and fails the reload, as rules that do not parse do not. */
	tls_rc = tls_reload();
	icap_reload(sporkd_conf);
	rc = scanner != NULL ? scanner->reload(scanner, rs) : -1;
	content_rules_free(rs);
	return rc == -1 || tls_rc == -1 ? -1 : 0;
}

static int
reload_ctl(void)
{
	return reload("sporkctl");
}

static struct scan_backend *
scanner_new(const struct conf *c, char *err, size_t errlen)
{
	struct scan_pool_conf	 pc;
	struct clamd_conf	 cc;
	int			 i;

	memset(&pc, 0, sizeof(pc));
	snprintf(pc.engine.dbdir, sizeof(pc.engine.dbdir), "%s",
	    c->clamav_database_dir);
	if (c->scan_backend == SCAN_BACKEND_CLAMD) {
		memset(&cc, 0, sizeof(cc));
		for (i = 0; i < c->clamd_servers.n && i < CLAMD_SERVERS_MAX;
		    i++)
			snprintf(cc.servers[i], sizeof(cc.servers[i]), "%s",
			    c->clamd_servers.w[i]);
		cc.nservers = i;
		cc.connect_timeout_ms = c->clamd_connect_timeout;
		cc.scan_timeout_ms = c->scan_timeout;
		cc.health_interval_ms = c->clamd_health_interval;
		cc.max_stream = c->clamd_max_stream;
		return clamd_new(loop, &cc, err, errlen);
	}
	for (i = 0; i < c->clamav_signatures.n && i < SCAN_SIGFILES_MAX; i++)
		snprintf(pc.engine.sigfiles[i], sizeof(pc.engine.sigfiles[i]),
		    "%s", c->clamav_signatures.w[i]);
	pc.engine.nsigfiles = i;
	if ((size_t)snprintf(pc.engine.tmpdir, sizeof(pc.engine.tmpdir),
	    "%.*s/scan-tmp", (int)sizeof(pc.engine.tmpdir) - 10, c->spool_dir)
	    >= sizeof(pc.engine.tmpdir)) {
		snprintf(err, errlen, "spool_dir too long");
		return NULL;
	}
	pc.engine.max_scansize = c->scan_max_size;
	pc.engine.max_filesize = c->scan_max_file_size;
	pc.engine.max_recursion = (uint32_t)c->scan_max_recursion;
	pc.engine.max_files = (uint32_t)c->scan_max_files;
	pc.engine.max_scantime = c->scan_max_time;
	pc.ids = scan_ids;
	pc.sandbox.max_memory = c->scan_worker_memory;
	pc.sandbox.max_file = 2 * (uint64_t)c->scan_max_file_size;
	pc.workers = (int)c->scan_workers;
	pc.timeout_ms = c->scan_timeout;
	pc.log_syslog = c->log_syslog;
	pc.clean = c->virus_action == ACT_CLEAN;
	pc.content = content_active();
	return scan_pool_new(loop, &pc, err, errlen);
}

static struct spam *
spam_engine_new(const struct conf *c, char *err, size_t errlen)
{
	struct spam_conf	sc;
	int			i;

	memset(&sc, 0, sizeof(sc));
	sc.kind = c->spam_engine == SPAM_ENGINE_RSPAMD ? SPAM_RSPAMD :
	    SPAM_SPAMD;
	for (i = 0; i < c->spam_servers.n && i < SPAM_SERVERS_MAX; i++)
		snprintf(sc.servers[i], sizeof(sc.servers[i]), "%s",
		    c->spam_servers.w[i]);
	sc.nservers = i;
	sc.timeout_ms = c->spam_timeout;
	return spam_new(loop, &sc, err, errlen);
}

/* The scanners' scratch directory, writable by whoever they run as. */
static int
scan_tmpdir(const struct conf *c)
{
	struct passwd	*pw;
	char		 path[CONF_PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/scan-tmp", c->spool_dir);
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return -1;
	if (geteuid() == 0 && (pw = getpwnam(c->scan_user)) != NULL &&
	    chown(path, pw->pw_uid, pw->pw_gid) == -1)
		return -1;
	return 0;
}

static void
signal_cb(struct ev_io *io, int events)
{
	struct signalfd_siginfo	si;

	(void)events;
	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (stopping) {
				ev_stop(loop);
				break;
			}
			log_info(NULL, "shutdown signal=%u sessions=%zu",
			    si.ssi_signo, relay_sessions());
			stopping = 1;
			accept_stop();
			cba_stop();
			ev_timer_set(loop, &grace_timer, SPORKD_GRACE_MS);
			break;
		case SIGHUP:
			(void)reload("sighup");
			break;
		case SIGCHLD:
			reap_children();
			break;
		}
	}
}

static int
signals_init(void)
{
	sigset_t	set;
	int		fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		return -1;
	if ((fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		return -1;
	ev_io_init(&sig_io, fd, signal_cb, NULL);
	return ev_io_set(loop, &sig_io, EV_READ);
}

int
main(int argc, char *argv[])
{
	struct conf	 conf;
	const char	*path = SPORKD_DEFAULT_CONF;
	char		 err[1024], trackdir[CONF_PATH_MAX], *slash;
	int		 ch, check = 0, debug = 0, print = 0;
	struct nft_divert_conf dc;

	while ((ch = getopt(argc, argv, "c:tdPV")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'd':
			debug = 1;
			break;
		case 'P':
			print = 1;
			break;
		case 'V':
			printf("sporkd %s\n", SPORKD_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (conf_load(&conf, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "sporkd: %s\n", err);
		return 1;
	}
	sporkd_conf = &conf;
	if (content_load(&conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "sporkd: %s\n", err);
		return 1;
	}
	if (check) {
		printf("sporkd: configuration %s is valid\n", path);
		return 0;
	}
	if (print) {
		if (conf.divert_bridge[0] == '\0') {
			fprintf(stderr, "sporkd: divert_bridge is not set: the "
			    "divert is spork-setup's\n");
			return 1;
		}
		if (divert_conf(&conf, &dc, 0, err, sizeof(err)) == -1) {
			fprintf(stderr, "sporkd: %s\n", err);
			return 1;
		}
		nft_divert_print(&dc, stdout);
		return 0;
	}
	if (debug)
		conf.log_level = LOG_LVL_DEBUG;
	log_init("sporkd", conf.log_syslog, conf.log_stderr);
	log_set_level((enum log_level)conf.log_level);
	log_info(NULL, "starting version=%s config=%s", SPORKD_VERSION, path);

	if (mkdir(conf.spool_dir, 0700) == -1 && errno != EEXIST) {
		log_err(NULL, "spool_dir %s: %s", conf.spool_dir,
		    strerror(errno));
		return 1;
	}
	if ((loop = ev_new()) == NULL) {
		log_err(NULL, "event loop: %s", strerror(errno));
		return 1;
	}
	if (signals_init() == -1) {
		log_err(NULL, "signals: %s", strerror(errno));
		return 1;
	}
	ev_timer_init(&grace_timer, grace_cb, NULL);
	if (conf.scan_enable && conf.scan_backend == SCAN_BACKEND_WORKERS) {
		if (sandbox_ids_resolve(&scan_ids, conf.scan_user, conf.user,
		    err, sizeof(err)) == -1) {
			log_err(NULL, "%s", err);
			return 1;
		}
		if (conf.user[0] != '\0' &&
		    strcmp(conf.user, conf.scan_user) == 0)
			log_warn(NULL, "scan_user is the relay's own user %s: "
			    "a compromised scan worker could signal the relay "
			    "and write its spool", conf.user);
	}
	if (conf.scan_enable) {
		if (scan_tmpdir(&conf) == -1) {
			log_err(NULL, "scan tmpdir in %s: %s", conf.spool_dir,
			    strerror(errno));
			return 1;
		}
		if ((scanner = scanner_new(&conf, err, sizeof(err))) == NULL) {
			log_err(NULL, "scanner: %s", err);
			return 1;
		}
		if (conf.scan_backend == SCAN_BACKEND_WORKERS &&
		    conf.clamav_database_dir[0] != '\0')
			dbwatch_init(conf.clamav_database_dir);
	}
	/* Before the listeners and before privileges go: the SPF helper is
	 * forked here, and resolv.conf and the greylist file are read. */
	if (prequeue_init(loop, &conf, err, sizeof(err)) == -1) {
		log_err(NULL, "prequeue: %s", err);
		return 1;
	}
	relay_init(loop, &conf);
	checks_init(loop, &conf, scanner);
	if (conf.spam_engine != SPAM_ENGINE_NONE) {
		if ((spam = spam_engine_new(&conf, err, sizeof(err))) == NULL) {
			log_err(NULL, "%s", err);
			return 1;
		}
		checks_set_spam(spam);
		control_set_spam(spam);
	}
	ev_set_hook(loop, after_batch, NULL);
	if (tls_init(&conf, err, sizeof(err)) == -1) {
		log_err(NULL, "tls: %s", err);
		return 1;
	}
	if (accept_listen(loop, &conf) == -1)
		return 1;
	if (icap_init(loop, &conf, scanner, err, sizeof(err)) == -1) {
		log_err(NULL, "icap: %s", err);
		return 1;
	}
	/* The queue is bound before the rule that feeds it goes in (the
	 * rule's bypass flag would cover the gap, unheld). */
	if (conf.connect_before_accept) {
		if (cba_init(loop, &conf, relay_sessions, err, sizeof(err)) == -1) {
			log_err(NULL, "connect_before_accept: %s", err);
			return 1;
		}
		log_info(NULL, "connect-before-accept queue=%zu",
		    conf.connect_before_accept_queue);
	}
	/* The divert goes in only once the listener is there to serve it. */
	if (conf.divert_bridge[0] != '\0') {
		if (divert_conf(&conf, &dc, 1, err, sizeof(err)) == -1 ||
		    nft_divert_install(&dc, err, sizeof(err)) == -1) {
			log_err(NULL, "divert: %s", err);
			return 1;
		}
		log_info(NULL, "divert installed bridge=%s port=%u table=%s "
		    "owner=sporkd match=%s connect_before_accept=%s", dc.bridge,
		    dc.port, dc.table, dc.use_ibrname ? "ibrname" : "ports",
		    dc.queue ? "yes" : "no");
	}
	if (control_init(loop, &conf, scanner, err, sizeof(err)) == -1) {
		log_err(NULL, "%s", err);
		return 1;
	}
	control_set_reload(reload_ctl);
	if (mkdir(conf.quarantine_dir, 0700) == -1 && errno != EEXIST)
		log_warn(NULL, "quarantine_dir %s: %s", conf.quarantine_dir,
		    strerror(errno));
	/* The journal's Maildirs and queue: made and given to the relay
	 * user while we still may. */
	if (journal_init(loop, &conf, err, sizeof(err)) == -1) {
		log_err(NULL, "journal: %s", err);
		return 1;
	}
	/* The tracking database's directory is the relay user's, as the
	 * spool is; the console's user reads it through the group. */
	if (conf.track_db[0] != '\0') {
		snprintf(trackdir, sizeof(trackdir), "%s", conf.track_db);
		if ((slash = strrchr(trackdir, '/')) != NULL && slash != trackdir)
			*slash = '\0';
		else
			snprintf(trackdir, sizeof(trackdir), ".");
		/* 0750 whatever the umask (the unit's is 0077). */
		if ((mkdir(trackdir, 0750) == -1 && errno != EEXIST) ||
		    chmod(trackdir, 0750) == -1)
			log_warn(NULL, "track_db directory %s: %s", trackdir,
			    strerror(errno));
	}
	if (conf.user[0] != '\0') {
		const char *dirs[] = { conf.spool_dir, conf.quarantine_dir,
		    conf.track_db[0] != '\0' ? trackdir : NULL, NULL };

		if (priv_drop(conf.user, dirs, conf.divert_bridge[0] != '\0',
		    scan_ids.set, err, sizeof(err)) == -1) {
			log_err(NULL, "%s", err);
			return 1;
		}
		log_info(NULL, "privileges dropped user=%s caps=net_raw%s%s",
		    conf.user, conf.divert_bridge[0] ? ",net_admin" : "",
		    scan_ids.set ? ",setuid,setgid (seccomp: scan_user only)" :
		    "");
	}
	if (sandbox_daemon(&scan_ids, err, sizeof(err)) == -1) {
		log_err(NULL, "%s", err);
		return 1;
	}
#ifdef SPORK_VALGRIND
	log_warn(NULL, "built without seccomp filters (the valgrind build)");
#endif
	/* After the drop and the filter: the writer thread is the relay
	 * user's and inherits the filter (no TSYNC). */
	if (track_init(&conf, err, sizeof(err)) == -1) {
		log_err(NULL, "track: %s", err);
		return 1;
	}
	if (ev_run(loop) == -1) {
		log_err(NULL, "event loop: %s", strerror(errno));
		track_shutdown();
		return 1;
	}
	control_close();
	track_shutdown();
	log_info(NULL, "stopped");
	if (scanner != NULL)
		scanner->free(scanner);
	spam_free(spam);
	ev_free(loop);
	return 0;
}
