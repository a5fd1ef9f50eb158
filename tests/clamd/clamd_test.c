/* SPDX-License-Identifier: MIT */
/*
 * Test driver for the clamd backend: builds an event loop and the backend
 * from the command line, scans the files given, prints one line per
 * verdict and, with -S, the backend's status lines and its own peak RSS. It checks the parts of
 * the scan_backend contract a shell script cannot see: no callback from
 * inside submit, none after cancel, exactly one per job.
 *
 *	clamd_test [-v] [-S] [-P] [-s host:port]... [-c connect_ms]
 *	    [-t scan_ms] [-H health_ms] [-m max_stream] [-w wait_ms]
 *	    [-i interval_ms] [-r repeat] [-X cancel_ms] [-R n]
 *	    [-e n:command]... file...
 *
 * Files are scanned one after another (-P: all at once), -r times over,
 * -i ms apart, starting -w ms after startup. -e n:command runs a shell
 * command after the n-th verdict (the test kills a clamd this way); -R n
 * reloads the backend after the n-th verdict; -X ms submits a twin of each
 * job and cancels it ms later. Exit status: 0 when every job got exactly
 * one verdict, 1 on a contract violation, 2 on a usage or setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "clamd.h"
#include "ev.h"
#include "log.h"
#include "scanner.h"

#define T_JOBS_MAX	4096
#define T_HOOKS_MAX	8
#define T_STATUS_MAX	(64 * 1024)

struct t_job {
	const char		*file;
	struct scan_job		*h;
	int			 done;
	int			 cancelled;
	struct ev_timer		 cancel;	/* for twins */
};

struct t_hook {
	unsigned	 after;
	const char	*cmd;
};

static struct ev_loop		*t_loop;
static struct scan_backend	*t_be;
static char			**t_files;
static int			 t_nfiles;
static unsigned			 t_total;	/* jobs to run */
static unsigned			 t_submitted;
static unsigned			 t_results;
static unsigned			 t_inflight;
static unsigned			 t_twins_live;
static int			 t_parallel;
static int			 t_status;
static unsigned			 t_interval_ms;
static int			 t_cancel_ms = -1;
static unsigned			 t_reload_after;
static struct t_hook		 t_hooks[T_HOOKS_MAX];
static int			 t_nhooks;
static int			 t_in_submit;
static int			 t_violations;
static struct t_job		 t_jobs[T_JOBS_MAX];
static struct t_job		 t_twins[T_JOBS_MAX];
static struct ev_timer		 t_next;

static const char *const t_verdicts[] = {
	[SCAN_CLEAN] = "clean",
	[SCAN_VIRUS] = "virus",
	[SCAN_ENCRYPTED] = "encrypted",
	[SCAN_LIMITS] = "limits",
	[SCAN_ERROR] = "error",
	[SCAN_TIMEOUT] = "timeout",
};

static void	t_submit_next(struct ev_timer *);
static void	t_maybe_stop(void);

static void
t_usage(void)
{
	fprintf(stderr, "usage: clamd_test [-v] [-S] [-P] [-s host:port]... "
	    "[-c ms] [-t ms] [-H ms] [-m bytes] [-w ms] [-i ms] [-r n] "
	    "[-X ms] [-R n] [-e n:cmd]... file...\n");
	exit(2);
}

static void
t_violation(const char *what, const char *file)
{
	printf("VIOLATION %s file=%s\n", what, file);
	t_violations++;
}

/* The backend's lines, then the driver's peak memory: streaming must not
 * grow with the message. */
static void
t_print_status(void)
{
	struct buf	out;
	struct rusage	ru;

	buf_init(&out, T_STATUS_MAX);
	t_be->status(t_be, &out);
	if (buf_used(&out) > 0)
		fwrite(buf_head(&out), 1, buf_used(&out), stdout);
	buf_free(&out);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		printf("driver.maxrss_kb=%ld\n", ru.ru_maxrss);
	fflush(stdout);
}

static void
t_done(void *arg, const struct scan_result *r)
{
	struct t_job	*j = arg;
	int		 i;

	if (t_in_submit)
		t_violation("callback-inside-submit", j->file);
	if (j->cancelled)
		t_violation("callback-after-cancel", j->file);
	if (j->done)
		t_violation("second-callback", j->file);
	if (j >= t_twins && j < t_twins + T_JOBS_MAX) {
		/* A twin whose cancel timer had not fired yet. */
		ev_timer_del(t_loop, &j->cancel);
		t_twins_live--;
	} else
		t_inflight--;
	j->done = 1;
	j->h = NULL;
	printf("%s verdict=%s name=\"%s\" engine=\"%s\" ms=%u\n", j->file,
	    t_verdicts[r->verdict], r->name, r->engine, r->ms);
	fflush(stdout);
	if (j >= t_twins && j < t_twins + T_JOBS_MAX)
		return;
	t_results++;
	for (i = 0; i < t_nhooks; i++)
		if (t_hooks[i].after == t_results) {
			fflush(stdout);
			if (system(t_hooks[i].cmd) != 0)
				fprintf(stderr, "clamd_test: hook \"%s\" "
				    "failed\n", t_hooks[i].cmd);
		}
	if (t_reload_after == t_results && t_be->reload(t_be, NULL) == -1)
		fprintf(stderr, "clamd_test: reload failed\n");
	if (!t_parallel && t_submitted < t_total)
		ev_timer_set(t_loop, &t_next, t_interval_ms);
	t_maybe_stop();
}

static void
t_cancel_twin(struct ev_timer *tm)
{
	struct t_job	*j = tm->arg;

	if (j->done)
		return;
	j->cancelled = 1;
	t_be->cancel(t_be, j->h);
	j->h = NULL;
	t_twins_live--;
	printf("%s cancelled\n", j->file);
	t_maybe_stop();
}

static struct scan_job *
t_submit_file(struct t_job *j)
{
	struct scan_job	*h;
	struct stat	 st;
	int		 fd;

	if ((fd = open(j->file, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		fprintf(stderr, "clamd_test: %s: %s\n", j->file,
		    strerror(errno));
		exit(2);
	}
	t_in_submit = 1;
	h = t_be->submit(t_be, fd, (size_t)st.st_size, 0, t_done, j);
	t_in_submit = 0;
	/* The backend dups what it keeps. */
	close(fd);
	return h;
}

static void
t_submit_one(void)
{
	struct t_job	*j = &t_jobs[t_submitted];
	struct t_job	*tw = &t_twins[t_submitted];

	j->file = t_files[t_submitted % (unsigned)t_nfiles];
	t_submitted++;
	t_inflight++;
	if ((j->h = t_submit_file(j)) == NULL) {
		printf("%s submit-error=\"%s\"\n", j->file, strerror(errno));
		t_inflight--;
		t_results++;
		return;
	}
	if (t_cancel_ms < 0)
		return;
	tw->file = j->file;
	if ((tw->h = t_submit_file(tw)) == NULL) {
		printf("%s twin submit-error=\"%s\"\n", tw->file,
		    strerror(errno));
		return;
	}
	t_twins_live++;
	ev_timer_init(&tw->cancel, t_cancel_twin, tw);
	if (t_cancel_ms == 0)
		t_cancel_twin(&tw->cancel);
	else
		ev_timer_set(t_loop, &tw->cancel, (uint64_t)t_cancel_ms);
}

static void
t_submit_next(struct ev_timer *tm)
{
	(void)tm;
	if (t_parallel)
		while (t_submitted < t_total)
			t_submit_one();
	else if (t_submitted < t_total)
		t_submit_one();
	t_maybe_stop();
}

static void
t_maybe_stop(void)
{
	if (t_submitted == t_total && t_inflight == 0 && t_twins_live == 0)
		ev_stop(t_loop);
}

int
main(int argc, char **argv)
{
	struct clamd_conf	 conf;
	char			 err[512], *colon;
	unsigned		 wait_ms = 0, repeat = 1;
	int			 ch, verbose = 0;

	memset(&conf, 0, sizeof(conf));
	conf.connect_timeout_ms = 2000;
	conf.scan_timeout_ms = 30000;
	conf.health_interval_ms = 0;
	while ((ch = getopt(argc, argv, "vSPs:c:t:H:m:w:i:r:X:R:e:")) != -1) {
		switch (ch) {
		case 'v':
			verbose = 1;
			break;
		case 'S':
			t_status = 1;
			break;
		case 'P':
			t_parallel = 1;
			break;
		case 's':
			if (conf.nservers == CLAMD_SERVERS_MAX)
				t_usage();
			snprintf(conf.servers[conf.nservers++],
			    sizeof(conf.servers[0]), "%s", optarg);
			break;
		case 'c':
			conf.connect_timeout_ms = (unsigned)atoi(optarg);
			break;
		case 't':
			conf.scan_timeout_ms = (unsigned)atoi(optarg);
			break;
		case 'H':
			conf.health_interval_ms = (unsigned)atoi(optarg);
			break;
		case 'm':
			conf.max_stream = (size_t)strtoull(optarg, NULL, 10);
			break;
		case 'w':
			wait_ms = (unsigned)atoi(optarg);
			break;
		case 'i':
			t_interval_ms = (unsigned)atoi(optarg);
			break;
		case 'r':
			repeat = (unsigned)atoi(optarg);
			break;
		case 'X':
			t_cancel_ms = atoi(optarg);
			break;
		case 'R':
			t_reload_after = (unsigned)atoi(optarg);
			break;
		case 'e':
			if (t_nhooks == T_HOOKS_MAX ||
			    (colon = strchr(optarg, ':')) == NULL)
				t_usage();
			t_hooks[t_nhooks].after = (unsigned)atoi(optarg);
			t_hooks[t_nhooks].cmd = colon + 1;
			t_nhooks++;
			break;
		default:
			t_usage();
		}
	}
	t_files = argv + optind;
	t_nfiles = argc - optind;
	if (t_nfiles == 0 || repeat == 0 ||
	    (unsigned long)t_nfiles * repeat > T_JOBS_MAX)
		t_usage();
	t_total = (unsigned)t_nfiles * repeat;
	log_init("clamd_test", 0, 1);
	log_set_level(verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if ((t_loop = ev_new()) == NULL) {
		fprintf(stderr, "clamd_test: ev_new: %s\n", strerror(errno));
		return 2;
	}
	if ((t_be = clamd_new(t_loop, &conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "clamd_test: %s\n", err);
		return 2;
	}
	ev_timer_init(&t_next, t_submit_next, NULL);
	ev_timer_set(t_loop, &t_next, wait_ms);
	if (ev_run(t_loop) == -1) {
		fprintf(stderr, "clamd_test: ev_run: %s\n", strerror(errno));
		return 2;
	}
	if (t_status)
		t_print_status();
	t_be->free(t_be);
	ev_free(t_loop);
	return t_violations > 0 ? 1 : 0;
}
