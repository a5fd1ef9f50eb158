/* SPDX-License-Identifier: MIT */
/*
 * scanbound: what the scanner alone can do on these cores, the bound
 * sporkd's scanned msg/s is measured against. The same engine code as
 * sporkd's workers (src/checks/scan_engine.c: libclamav, the same
 * signatures and limits), compiled once and then forked into WORKERS
 * processes, as sporkd's loader does; each scans messages of the bench's
 * own shape (smtpload's headers, a unique first line, lines of the same
 * random alphabet) from a memfd, as a worker gets its spool, and no SMTP,
 * no event loop, no descriptor passing at all. Every message differs in
 * its first line, so libclamav's clean cache never answers.
 *
 *   scanbound -d DBDIR [-w WORKERS] [-l BYTES] [-T SECS] [-W SECS]
 *
 * Prints one line: workers=N msgs=N secs=S rate=R load_ms=L sigs=N
 * not_clean=N window_closed=S cpu_us_per_msg=U (the workers' CPU over the
 * scans they ran in the window: the work a message costs, which unlike
 * the rate does not depend on how much of the CPUs the bound got).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "scan_engine.h"
#include "scanner.h"

#define SB_WORKERS_MAX	64
#define SB_LINE		76
#define SB_POOL_LINES	4096

static volatile sig_atomic_t	sb_stop;
static uint64_t			sb_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
xorshift(void)
{
	sb_rng ^= sb_rng << 13;
	sb_rng ^= sb_rng >> 7;
	sb_rng ^= sb_rng << 17;
	return sb_rng;
}

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* This process's CPU time (user and system), seconds. */
static double
cpu_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
on_term(int sig)
{
	(void)sig;
	sb_stop = 1;
}

static void
die(const char *what)
{
	fprintf(stderr, "scanbound: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* One message of smtpload's shape into buf; its length. */
static size_t
message(char *buf, size_t cap, const char *pool, size_t body, int w,
    unsigned long n)
{
	size_t	len, left, off, k;

	len = (size_t)snprintf(buf, cap, "From: <bench@client.example.test>\r\n"
	    "To: <sink@example.test>\r\nSubject: spork bench %d.%lu\r\n"
	    "Message-ID: <%d.%lu.%llx@client.example.test>\r\n\r\n"
	    "message %d.%lu %016llx\r\n", w, n, w, n,
	    (unsigned long long)xorshift(), w, n,
	    (unsigned long long)xorshift());
	for (left = body; left > 0 && len < cap; left -= k) {
		off = (size_t)(xorshift() % SB_POOL_LINES) * (SB_LINE + 2);
		k = (size_t)SB_POOL_LINES * (SB_LINE + 2) - off;
		if (k > left)
			k = left;
		if (k > cap - len)
			k = cap - len;
		memcpy(buf + len, pool + off, k);
		len += k;
	}
	return len;
}

/* A worker: scans until told to stop; writes its count after warm-up. */
static void
worker(const struct scan_engine *e, const char *pool, size_t body, int w,
    double start, double warm, int out)
{
	struct scan_result	 r;
	size_t			 cap = body + 4096, len;
	unsigned long		 n = 0, counted = 0, bad = 0, cpu_scans = 0;
	double			 cpu0 = -1;
	char			*buf;
	int			 fd;

	sb_rng ^= (uint64_t)(w + 1) * 0x2545f4914f6cdd1dULL;
	if ((buf = malloc(cap)) == NULL)
		die("malloc");
	if ((fd = memfd_create("scanbound", MFD_CLOEXEC)) == -1)
		die("memfd_create");
	while (!sb_stop) {
		len = message(buf, cap, pool, body, w, n++);
		if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, len, 0) !=
		    (ssize_t)len)
			die("memfd write");
		memset(&r, 0, sizeof(r));
		scan_engine_scan(e, fd, len, &r);
		if (r.verdict != SCAN_CLEAN)
			bad++;
		if (now() >= start + warm) {
			counted++;
			/* CPU per scan: from the end of the window's first
			 * scan, over the scans after it. */
			if (cpu0 < 0)
				cpu0 = cpu_now();
			else
				cpu_scans++;
		}
	}
	dprintf(out, "%lu %lu %lu %.3f\n", counted, bad, cpu_scans,
	    cpu0 < 0 ? 0 : (cpu_now() - cpu0) * 1000);
	exit(0);
}

int
main(int argc, char *argv[])
{
	static const char	 abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
				    "klmnopqrstuvwxyz0123456789+/";
	struct scan_engine_conf	 ec;
	struct scan_engine	*e;
	struct sigaction	 sa;
	pid_t			 pids[SB_WORKERS_MAX];
	char			 err[512], *pool, *p, line[64];
	double			 secs = 10, warm = 1, t0, t1, load;
	size_t			 body = 10240, i, j;
	unsigned long		 msgs = 0, bad = 0, c, b, cs, cpu_scans = 0;
	double			 cpu_ms = 0, cm;
	int			 ch, nw = 2, pfd[2], st;
	FILE			*in;

	memset(&ec, 0, sizeof(ec));
	/* sporkd's defaults (etc/spork.conf): scan_max_size 400m, ... */
	ec.max_scansize = 400ULL << 20;
	ec.max_filesize = 100ULL << 20;
	ec.max_recursion = 17;
	ec.max_files = 10000;
	ec.max_scantime = 120000;
	snprintf(ec.tmpdir, sizeof(ec.tmpdir), "/tmp");
	while ((ch = getopt(argc, argv, "d:w:l:T:W:")) != -1) {
		switch (ch) {
		case 'd':
			snprintf(ec.dbdir, sizeof(ec.dbdir), "%s", optarg);
			break;
		case 'w':
			nw = atoi(optarg);
			break;
		case 'l':
			body = strtoul(optarg, NULL, 10);
			break;
		case 'T':
			secs = atof(optarg);
			break;
		case 'W':
			warm = atof(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (ec.dbdir[0] == '\0' || nw < 1 || nw > SB_WORKERS_MAX || secs <= 0)
		goto usage;

	t0 = now();
	if ((e = scan_engine_load(&ec, err, sizeof(err))) == NULL) {
		fprintf(stderr, "scanbound: engine: %s\n", err);
		return 1;
	}
	load = now() - t0;
	if ((pool = malloc((size_t)SB_POOL_LINES * (SB_LINE + 2))) == NULL)
		die("malloc");
	for (p = pool, i = 0; i < SB_POOL_LINES; i++) {
		for (j = 0; j < SB_LINE; j++)
			*p++ = abc[xorshift() % 64];
		*p++ = '\r';
		*p++ = '\n';
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	if (pipe(pfd) == -1)
		die("pipe");
	t0 = now();
	for (i = 0; i < (size_t)nw; i++) {
		if ((pids[i] = fork()) == -1)
			die("fork");
		if (pids[i] == 0) {
			close(pfd[0]);
			worker(e, pool, body, (int)i, t0, warm, pfd[1]);
		}
	}
	close(pfd[1]);
	while (now() < t0 + warm + secs)
		usleep(10000);
	t1 = now();
	for (i = 0; i < (size_t)nw; i++)
		kill(pids[i], SIGTERM);
	if ((in = fdopen(pfd[0], "r")) == NULL)
		die("fdopen");
	while (fgets(line, sizeof(line), in) != NULL)
		if (sscanf(line, "%lu %lu %lu %lf", &c, &b, &cs, &cm) == 4) {
			msgs += c;
			bad += b;
			cpu_scans += cs;
			cpu_ms += cm;
		}
	for (i = 0; i < (size_t)nw; i++)
		waitpid(pids[i], &st, 0);
	/* A scan already running when the window closed counts too: the
	 * window is the time until the last worker stopped. */
	secs = now() - (t0 + warm);
	printf("workers=%d msgs=%lu secs=%.3f rate=%.1f load_ms=%.0f sigs=%u "
	    "not_clean=%lu window_closed=%.3f cpu_us_per_msg=%.0f\n", nw, msgs,
	    secs, msgs / secs, load * 1000, scan_engine_signatures(e), bad,
	    t1 - t0 - warm, cpu_scans ? cpu_ms * 1000 / cpu_scans : 0);
	scan_engine_free(e);
	return bad > 0;
usage:
	fprintf(stderr, "usage: scanbound -d DBDIR [-w WORKERS] [-l BYTES] "
	    "[-T SECS] [-W SECS]\n");
	return 2;
}
