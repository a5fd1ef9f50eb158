/* SPDX-License-Identifier: MIT */
/*
 * The cost of message tracking without SMTP: track.c with a database in a
 * directory of its own, fed records shaped like section 7's (10 KB
 * messages, a unique Message-ID and subject each, a handful of senders and
 * clients, one recipient by default, Postfix-like replies) at a steady
 * rate, then drained. Prints CPU microseconds per record: the caller's
 * thread (what the event loop pays in track_message), the whole process
 * (the writer's share is the difference), and the files' sizes at the end.
 *
 *	trackbench [-n records] [-r per_second] [-R rcpts] [-m max_size]
 *	    [-e retention_s] [-j] DIR
 *
 * -r 0 feeds as fast as the queue takes (waiting when it is 3/4 full);
 * -j also writes the JSON log line (to stderr: send it to /dev/null). DIR is made and the
 * database in it replaced.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "track.h"

#define TB_SENDERS	100	/* sessions of the load: one sender each */
#define TB_CLIENTS	4	/* client addresses */
#define TB_PER_SESSION	20	/* messages per session id */
#define TB_TICK_NS	1000000L

static double
cpu_us(int who)
{
	struct rusage	ru;

	getrusage(who, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static double
mono(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long
status_of(const char *key)
{
	struct buf	 b;
	char		 k[64];
	const char	*p;
	long long	 v = -1;

	buf_init(&b, 4096);
	track_status(&b);
	buf_append(&b, "", 1);
	snprintf(k, sizeof(k), "track.%s=", key);
	if ((p = strstr(buf_head(&b), k)) != NULL)
		v = atoll(p + strlen(k));
	buf_free(&b);
	return v;
}

static long long
fsize(const char *dir, const char *suffix)
{
	char		path[512];
	struct stat	sb;

	snprintf(path, sizeof(path), "%s/track.db%s", dir, suffix);
	return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

static unsigned long long
xorshift(void)
{
	static unsigned long long	x = 88172645463325252ULL;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

int
main(int argc, char *argv[])
{
	static struct conf	 c;
	struct track_rcpt	 rc[16];
	struct track_rec	 r;
	struct timespec		 ts, next;
	char			 err[256], path[512], session[16], client[64];
	char			 caddr[32], sender[64], mid[128], subj[64];
	char			 reply[128], rcpt[16][64], rreply[128];
	const char		*dir;
	long			 n = 200000, rate = 10000, nr = 1, i, k, per_tick;
	long			 retention = 0;
	unsigned long long	 max_size = 1ULL << 30;
	double			 self0, thr0, t0, thr1, t1, self2, t2;
	double			 in0, in_ns = 0;
	int			 ch, json = 0;

	while ((ch = getopt(argc, argv, "n:r:R:m:e:j")) != -1) {
		switch (ch) {
		case 'n': n = atol(optarg); break;
		case 'r': rate = atol(optarg); break;
		case 'R': nr = atol(optarg); break;
		case 'm': max_size = strtoull(optarg, NULL, 10); break;
		case 'e': retention = atol(optarg); break;
		case 'j': json = 1; break;
		default: goto usage;
		}
	}
	if (argc - optind != 1 || nr < 1 || nr > 16 || n < 1)
		goto usage;
	dir = argv[optind];
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/track.db", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/track.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/track.db-shm", dir);
	unlink(path);
	log_init("trackbench", 0, json);

	memset(&c, 0, sizeof(c));
	snprintf(c.track_db, sizeof(c.track_db), "%s/track.db", dir);
	c.track_retention = (unsigned)retention;
	c.track_max_size = max_size;
	c.track_json = json;
	if (track_init(&c, err, sizeof(err)) == -1) {
		fprintf(stderr, "trackbench: %s\n", err);
		return 1;
	}

	memset(&r, 0, sizeof(r));
	r.session = session;
	r.client = client;
	r.client_addr = caddr;
	r.server = "10.0.2.1:25";
	r.direction = "inbound";
	r.helo = "client.example.test";
	r.sender = sender;
	r.rcpts = rc;
	r.nrcpts = (size_t)nr;
	r.size = 10240;
	r.message_id = mid;
	r.subject = subj;
	r.verdict = "none";
	r.action = "deliver";
	r.score = NAN;
	r.tls = "none";
	r.quarantine = "";
	r.reply = reply;
	for (k = 0; k < nr; k++) {
		rc[k].addr = rcpt[k];
		rc[k].code = 250;
		rc[k].reply = rreply;
	}

	per_tick = rate > 0 ? (rate + 999) / 1000 : 0;
	self0 = cpu_us(RUSAGE_SELF);
	thr0 = cpu_us(RUSAGE_THREAD);
	t0 = mono();
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (i = 0; i < n; i++) {
		unsigned	s = (unsigned)(i / TB_PER_SESSION) % TB_SENDERS;
		unsigned	m = (unsigned)(i % TB_PER_SESSION) +
				    (unsigned)(i / TB_PER_SESSION /
				    TB_SENDERS) * TB_PER_SESSION;
		unsigned long long x = xorshift();

		if (per_tick > 0 && i % per_tick == 0) {
			next.tv_nsec += TB_TICK_NS;
			if (next.tv_nsec >= 1000000000L) {
				next.tv_sec++;
				next.tv_nsec -= 1000000000L;
			}
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next,
			    NULL);
		} else if (per_tick == 0 && i % 256 == 0) {
			while (status_of("queue") > TRACK_QUEUE_MAX * 3 / 4)
				usleep(1000);
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		r.t = (double)ts.tv_sec + ts.tv_nsec / 1e9;
		snprintf(session, sizeof(session), "%08llx",
		    (unsigned long long)(i / TB_PER_SESSION) * 2654435761ULL &
		    0xffffffffULL);
		snprintf(caddr, sizeof(caddr), "10.0.1.%u", 10 + s % TB_CLIENTS);
		snprintf(client, sizeof(client), "%s:%u", caddr,
		    32768 + (unsigned)(i / TB_PER_SESSION) % 28000);
		snprintf(sender, sizeof(sender), "bench%u@client.example.test",
		    s);
		snprintf(mid, sizeof(mid), "<%u.%u.%llx@client.example.test>",
		    s, m, x);
		snprintf(subj, sizeof(subj), "spork bench %u.%u", s, m);
		snprintf(reply, sizeof(reply), "250 2.0.0 Ok: queued as "
		    "4%011llX", x >> 20 & 0xffffffffffULL);
		snprintf(rreply, sizeof(rreply), "%s", reply);
		for (k = 0; k < nr; k++)
			snprintf(rcpt[k], sizeof(rcpt[k]), "sink%u@example.test",
			    m + (unsigned)k);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		in0 = ts.tv_sec * 1e9 + ts.tv_nsec;
		track_message(&r);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		in_ns += ts.tv_sec * 1e9 + ts.tv_nsec - in0;
	}
	thr1 = cpu_us(RUSAGE_THREAD);
	t1 = mono();
	track_prune_now();
	self2 = cpu_us(RUSAGE_SELF);
	t2 = mono();

	printf("records %ld rate %ld/s rcpts %ld max_size %llu json %d\n", n,
	    rate, nr, max_size, json);
	printf("written %lld dropped %lld errors %lld\n", status_of("written"),
	    status_of("dropped"), status_of("errors"));
	printf("feed %.2f s, drain %.2f s\n", t1 - t0, t2 - t1);
	printf("caller  %.2f us/record CPU (building the record and "
	    "track_message), %.2f us in track_message (wall)\n",
	    (thr1 - thr0) / n, in_ns / 1e3 / n);
	printf("process %.2f us/record (writer = process - caller: %.2f)\n",
	    (self2 - self0) / n, (self2 - self0 - (thr1 - thr0)) / n);
	printf("files db %lld wal %lld shm %lld\n", fsize(dir, ""),
	    fsize(dir, "-wal"), fsize(dir, "-shm"));
	track_shutdown();
	return 0;
usage:
	fprintf(stderr, "usage: trackbench [-n records] [-r per_second] "
	    "[-R rcpts] [-m max_size] [-e retention_s] [-j] DIR\n");
	return 2;
}
