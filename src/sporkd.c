/* SPDX-License-Identifier: MIT */
/*
 * sporkd: reads the configuration, loads the scanner, binds the listeners,
 * drops privileges and runs the event loop. Signals arrive through a
 * signalfd as ordinary events: TERM/INT stop accepting and let sessions
 * finish within a grace period.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "ev.h"
#include "log.h"
#include "priv.h"
#include "relay.h"
#include "scan.h"

#define SPORKD_VERSION		"0.1.0"
#define SPORKD_DEFAULT_CONF	"/etc/spork/spork.conf"
#define SPORKD_GRACE_MS		30000

static struct ev_loop	*loop;
static struct ev_io	 sig_io;
static struct ev_timer	 grace_timer;
static int		 stopping;

static void
usage(void)
{
	fprintf(stderr, "usage: sporkd [-t] [-d] [-c file]\n"
	    "  -c file  configuration (default %s)\n"
	    "  -t       check the configuration and exit\n"
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
	if (stopping && relay_sessions() == 0)
		ev_stop(loop);
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
			relay_stop_listening();
			ev_timer_set(loop, &grace_timer, SPORKD_GRACE_MS);
			break;
		case SIGHUP:
			log_info(NULL, "sighup: configuration reload needs a "
			    "restart in this version");
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
	char		 err[1024];
	int		 ch, check = 0, debug = 0;

	while ((ch = getopt(argc, argv, "c:tdV")) != -1) {
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
	if (check) {
		printf("sporkd: configuration %s is valid\n", path);
		return 0;
	}
	if (debug)
		conf.log_level = LOG_LVL_DEBUG;
	log_init("sporkd", conf.log_syslog, conf.log_stderr);
	log_set_level((enum log_level)conf.log_level);
	log_info(NULL, "starting version=%s config=%s", SPORKD_VERSION, path);

	if (conf.scan_enable && scan_init(conf.clamav_database_dir,
	    conf.clamav_signatures, conf.n_clamav_signatures, err,
	    sizeof(err)) == -1) {
		log_err(NULL, "scanner: %s", err);
		return 1;
	}
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
	relay_init(loop, &conf);
	ev_set_hook(loop, after_batch, NULL);
	if (relay_listen() == -1)
		return 1;
	if (conf.user[0] != '\0') {
		if (priv_drop(conf.user, conf.spool_dir, err, sizeof(err))
		    == -1) {
			log_err(NULL, "%s", err);
			return 1;
		}
		log_info(NULL, "privileges dropped user=%s caps=net_raw",
		    conf.user);
	}
	if (ev_run(loop) == -1) {
		log_err(NULL, "event loop: %s", strerror(errno));
		return 1;
	}
	log_info(NULL, "stopped");
	scan_free();
	ev_free(loop);
	return 0;
}
