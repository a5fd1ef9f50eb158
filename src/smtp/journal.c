/* SPDX-License-Identifier: MIT */
/*
 * The journal (journal.h): a copy of every message the server accepted,
 * per direction, in a Maildir or sent on to a journal address. This
 * module owns the copies from the moment the session asks for one: it
 * writes the envelope lines and exactly the bytes the session will send
 * after DATA (the same header lines, then the same spool) into tmp/,
 * makes them visible in new/ when told the server said 2xx, and deletes
 * them otherwise. It trusts the session to tell it the server's answer;
 * it never reads the client and never decides a message's fate beyond
 * journal_failure. For smtp: targets the copy is committed to a local
 * queue under spool_dir and a runner on the event loop sends it on with
 * the null reverse path, deleting it only on the journal server's 2xx and
 * retrying with backoff otherwise: a journal server that is down or slow
 * never loses a copy and never delays mail. Retention (journal_retention)
 * is a timer that deletes old Maildir copies a bounded batch at a time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "ev.h"
#include "journal.h"
#include "journal_format.h"
#include "log.h"
#include "smtp_client.h"
#include "sock.h"
#include "spool.h"

#define JOURNAL_DIR_MAX		(CONF_PATH_MAX + 64)	/* a target */
#define JOURNAL_SUB_MAX		(JOURNAL_DIR_MAX + 8)	/* its tmp/ ... */
#define JOURNAL_PATH_MAX	(JOURNAL_SUB_MAX + JOURNAL_NAME_MAX + 2)
#define JOURNAL_CHUNK		65536		/* spool bytes per write */
#define JOURNAL_ENVELOPE_MAX	(4 * 1024 * 1024)	/* its lines */
#define JOURNAL_TMP_STALE	(24 * 3600)	/* seconds: a tmp/ file this
						 * old belongs to no session */
#define JOURNAL_PRUNE_MS	(3600 * 1000)	/* between retention passes */
#define JOURNAL_PRUNE_BATCH	512		/* entries per step ... */
#define JOURNAL_PRUNE_PAUSE_MS	10		/* ... then the loop runs */
#define JOURNAL_PRUNE_JOBS	8
#define JOURNAL_RETRY_MIN_MS	5000		/* first retry, doubling */
#define JOURNAL_RETRY_MAX_MS	(10 * 60 * 1000)
#define JOURNAL_SEND_TIMEOUT_MS	60000		/* per SMTP step */

struct journal_target {
	const char		*direction;	/* "inbound", "outbound" */
	int			 on;
	int			 smtp;		/* dir is the local queue */
	char			 dir[JOURNAL_DIR_MAX];
	char			 rcpt[CONF_PATH_MAX + 4];	/* "<ADDRESS>" */
	char			*rcpts[1];
	/* the queue runner (smtp only) */
	struct ev_timer		 timer;
	int			 busy;		/* a copy is being sent */
	int			 backing_off;
	unsigned		 backoff_ms;
	char			 sending[JOURNAL_PATH_MAX];
};

struct journal_copy {
	struct journal_target	*t;
	char			 id[16];
	char			 name[JOURNAL_NAME_MAX];
};

struct prune_job {
	char			 dir[JOURNAL_SUB_MAX];
	unsigned		 age;		/* seconds */
};

static struct {
	struct ev_loop		*loop;
	struct journal_target	 in, out;
	int			 deliver;	/* journal_failure deliver */
	struct sockaddr_storage	 server;	/* journal_server */
	char			 host[JOURNAL_HOST_MAX + 1];
	unsigned		 seq;
	/* retention */
	struct prune_job	 jobs[JOURNAL_PRUNE_JOBS];
	int			 njobs, job;
	DIR			*dir;
	unsigned long long	 dir_pruned;
	struct ev_timer		 prune_timer;
	/* counters */
	unsigned long long	 written, failed, tempfail, discarded;
	unsigned long long	 queued, sent, retry, pruned;
} J;

static void	runner_cb(struct ev_timer *);
static void	runner_kick(struct journal_target *);

/* ------------------------------------------------------------------ */
/* Directories                                                         */

/* A directory of ours: made with mode if missing, the relay user's. */
static int
dir_owned(const char *path, mode_t mode, const struct passwd *pw)
{
	if (mkdir(path, mode) == 0) {
		if (chmod(path, mode) == -1)	/* whatever the umask */
			return -1;
	} else if (errno != EEXIST)
		return -1;
	if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) == -1)
		return -1;
	return 0;
}

/* dir and its tmp/, new/, cur/. */
static int
maildir_make(const char *dir, mode_t mode, const struct passwd *pw,
    char *err, size_t errlen)
{
	static const char *const sub[] = { "", "/tmp", "/new", "/cur" };
	char	path[JOURNAL_SUB_MAX];
	size_t	i;

	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", dir, sub[i]);
		if (dir_owned(path, mode, pw) == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void
prune_add(const char *dir, const char *sub, unsigned age)
{
	struct prune_job	*pj;

	if (J.njobs == JOURNAL_PRUNE_JOBS)
		fatal("journal: too many retention jobs");
	pj = &J.jobs[J.njobs++];
	snprintf(pj->dir, sizeof(pj->dir), "%s/%s", dir, sub);
	pj->age = age;
}

static int
target_init(struct journal_target *t, const char *direction,
    const char *target, const struct conf *c, const struct passwd *pw,
    char *err, size_t errlen)
{
	char	qdir[CONF_PATH_MAX + 32];

	memset(t, 0, sizeof(*t));
	t->direction = direction;
	if (target[0] == '\0')
		return 0;
	t->on = 1;
	if (strncmp(target, "smtp:", 5) == 0) {
		t->smtp = 1;
		snprintf(t->rcpt, sizeof(t->rcpt), "<%s>", target + 5);
		t->rcpts[0] = t->rcpt;
		snprintf(qdir, sizeof(qdir), "%s/journal-queue", c->spool_dir);
		if (dir_owned(qdir, 0700, pw) == -1) {
			snprintf(err, errlen, "%s: %s", qdir, strerror(errno));
			return -1;
		}
		snprintf(t->dir, sizeof(t->dir), "%s/%s", qdir, direction);
		if (maildir_make(t->dir, 0700, pw, err, errlen) == -1)
			return -1;
		ev_timer_init(&t->timer, runner_cb, t);
		runner_kick(t);		/* copies left by an earlier run */
	} else {
		snprintf(t->dir, sizeof(t->dir), "%s", target);
		if (maildir_make(t->dir, 0750, pw, err, errlen) == -1)
			return -1;
		if (c->journal_retention != 0) {
			prune_add(t->dir, "new", c->journal_retention);
			prune_add(t->dir, "cur", c->journal_retention);
		}
	}
	prune_add(t->dir, "tmp", JOURNAL_TMP_STALE);
	log_info(NULL, "journal direction=%s target=%s dir=%s", direction,
	    t->smtp ? target : "maildir", t->dir);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Two phases                                                          */

static int
write_all(int fd, const void *p, size_t len)
{
	const char	*c = p;
	ssize_t		 w;

	while (len > 0) {
		if ((w = write(fd, c, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		len -= (size_t)w;
	}
	return 0;
}

/*
 * The copy in tmp/, synced: the envelope lines, then what the session
 * sends after DATA, from the same sources (the session sends those header
 * lines, then the spool dot-stuffed; the copy is the unstuffed message).
 * It is synced here rather than at commit so that a disk that fails is
 * found while journal_failure can still be followed.
 */
static int
copy_write(const char *path, const struct journal_msg *m)
{
	static char	 chunk[JOURNAL_CHUNK];
	struct buf	 b;
	size_t		 off = 0, i;
	ssize_t		 n;
	int		 fd, saved;

	buf_init(&b, JOURNAL_ENVELOPE_MAX);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640))
	    == -1) {
		buf_free(&b);
		return -1;
	}
	if (journal_envelope_format(&b, &m->env) == -1) {
		errno = E2BIG;
		goto fail;
	}
	if (write_all(fd, buf_head(&b), buf_used(&b)) == -1)
		goto fail;
	for (i = 0; i < sizeof(m->head) / sizeof(m->head[0]); i++)
		if (m->head[i] != NULL &&
		    write_all(fd, m->head[i], strlen(m->head[i])) == -1)
			goto fail;
	while ((n = spool_read(m->spool, off, chunk, sizeof(chunk))) > 0) {
		if (write_all(fd, chunk, (size_t)n) == -1)
			goto fail;
		off += (size_t)n;
	}
	if (n == -1 || fsync(fd) == -1)
		goto fail;
	buf_free(&b);
	if (close(fd) == -1) {
		saved = errno;
		unlink(path);
		errno = saved;
		return -1;
	}
	return 0;
fail:
	saved = errno;
	buf_free(&b);
	close(fd);
	unlink(path);
	errno = saved;
	return -1;
}

static void
copy_path(char *out, size_t len, const struct journal_copy *jc,
    const char *sub)
{
	snprintf(out, len, "%s/%s/%s", jc->t->dir, sub, jc->name);
}

enum journal_answer
journal_begin(const struct journal_msg *m, struct journal_copy **jcp)
{
	struct journal_target	*t = m->inside ? &J.out : &J.in;
	struct journal_copy	*jc;
	struct timespec		 ts;
	char			 path[JOURNAL_PATH_MAX];

	*jcp = NULL;
	if (!t->on)
		return JOURNAL_GO;
	if ((jc = calloc(1, sizeof(*jc))) == NULL)
		goto fail;
	jc->t = t;
	snprintf(jc->id, sizeof(jc->id), "%s", m->id);
	clock_gettime(CLOCK_REALTIME, &ts);
	if (journal_maildir_name(jc->name, sizeof(jc->name), ts.tv_sec,
	    ts.tv_nsec / 1000, getpid(), ++J.seq, J.host) == -1) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	copy_path(path, sizeof(path), jc, "tmp");
	if (copy_write(path, m) == -1)
		goto fail;
	*jcp = jc;
	return JOURNAL_GO;
fail:
	log_err(m->id, "journal failed direction=%s dir=%s policy=%s: %s",
	    t->direction, t->dir, J.deliver ? "deliver" : "tempfail",
	    strerror(errno));
	free(jc);
	if (J.deliver) {
		J.failed++;
		return JOURNAL_GO;
	}
	J.tempfail++;
	return JOURNAL_TEMPFAIL;
}

/* The rename in new/ survives a crash once new/ itself is synced. */
static void
dir_sync(const char *dir)
{
	int	fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	(void)fsync(fd);
	close(fd);
}

void
journal_commit(struct journal_copy *jc)
{
	char	tmp[JOURNAL_PATH_MAX], dst[JOURNAL_PATH_MAX];
	char	newdir[JOURNAL_SUB_MAX];

	if (jc == NULL)
		return;
	copy_path(tmp, sizeof(tmp), jc, "tmp");
	copy_path(dst, sizeof(dst), jc, "new");
	if (rename(tmp, dst) == -1) {
		/* The server has the message: this one is missing. */
		log_err(jc->id, "journal failed direction=%s copy=%s: rename: "
		    "%s", jc->t->direction, jc->name, strerror(errno));
		unlink(tmp);
		J.failed++;
		free(jc);
		return;
	}
	snprintf(newdir, sizeof(newdir), "%s/new", jc->t->dir);
	dir_sync(newdir);
	J.written++;
	log_info(jc->id, "journal written direction=%s target=%s copy=%s",
	    jc->t->direction, jc->t->smtp ? "smtp" : "maildir", jc->name);
	if (jc->t->smtp) {
		J.queued++;
		runner_kick(jc->t);
	}
	free(jc);
}

void
journal_discard(struct journal_copy *jc, const char *why)
{
	char	tmp[JOURNAL_PATH_MAX];

	if (jc == NULL)
		return;
	copy_path(tmp, sizeof(tmp), jc, "tmp");
	if (unlink(tmp) == -1)
		log_warn(jc->id, "journal unlink %s: %s", tmp, strerror(errno));
	J.discarded++;
	log_info(jc->id, "journal discarded direction=%s copy=%s reason=%s",
	    jc->t->direction, jc->name, why);
	free(jc);
}

/* ------------------------------------------------------------------ */
/* The queue runner (smtp: targets)                                    */

/* The oldest copy waiting in new/ (Maildir names start with the time):
 * its path in out, 0; 1 when there is none. */
static int
queue_oldest(const struct journal_target *t, char *out, size_t len)
{
	char		 dir[JOURNAL_SUB_MAX], best[JOURNAL_NAME_MAX];
	struct dirent	*de;
	DIR		*d;

	snprintf(dir, sizeof(dir), "%s/new", t->dir);
	if ((d = opendir(dir)) == NULL) {
		log_warn(NULL, "journal queue %s: %s", dir, strerror(errno));
		return 1;
	}
	best[0] = '\0';
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strlen(de->d_name) < sizeof(best) &&
		    (best[0] == '\0' || strcmp(de->d_name, best) < 0))
			snprintf(best, sizeof(best), "%s", de->d_name);
	closedir(d);
	if (best[0] == '\0')
		return 1;
	snprintf(out, len, "%s/%s", dir, best);
	return 0;
}

static void
runner_retry(struct journal_target *t)
{
	t->backoff_ms = t->backoff_ms == 0 ? JOURNAL_RETRY_MIN_MS :
	    t->backoff_ms >= JOURNAL_RETRY_MAX_MS / 2 ? JOURNAL_RETRY_MAX_MS :
	    2 * t->backoff_ms;
	t->backing_off = 1;
	ev_timer_set(J.loop, &t->timer, t->backoff_ms);
}

static void
runner_done(void *arg, int ok, const char *why)
{
	struct journal_target	*t = arg;
	const char		*name = strrchr(t->sending, '/') + 1;

	t->busy = 0;
	if (!ok) {
		J.retry++;
		runner_retry(t);
		log_warn(NULL, "journal send failed direction=%s to=%s "
		    "copy=%s retry_s=%u: %s", t->direction, t->rcpt, name,
		    t->backoff_ms / 1000, why);
		return;
	}
	J.sent++;
	t->backoff_ms = 0;
	log_info(NULL, "journal sent direction=%s to=%s copy=%s: %s",
	    t->direction, t->rcpt, name, why);
	if (unlink(t->sending) == -1)
		log_err(NULL, "journal unlink %s: %s (it will be sent again)",
		    t->sending, strerror(errno));
	runner_kick(t);
}

static void
runner_cb(struct ev_timer *tm)
{
	struct journal_target	*t = tm->arg;
	struct smtp_client_msg	 m;

	t->backing_off = 0;
	if (t->busy || queue_oldest(t, t->sending, sizeof(t->sending)) != 0)
		return;
	memset(&m, 0, sizeof(m));
	m.dst = J.server;
	snprintf(m.helo, sizeof(m.helo), "spork.invalid");
	snprintf(m.sender, sizeof(m.sender), "<>");
	m.rcpts = t->rcpts;
	m.nrcpts = 1;
	m.path = t->sending;
	m.timeout_ms = JOURNAL_SEND_TIMEOUT_MS;
	if (smtp_client_send(J.loop, &m, runner_done, t) == -1) {
		J.retry++;
		runner_retry(t);
		log_warn(NULL, "journal send failed direction=%s to=%s "
		    "retry_s=%u: %s", t->direction, t->rcpt,
		    t->backoff_ms / 1000, strerror(errno));
		return;
	}
	t->busy = 1;
}

/* Send what waits, now, unless a send is out or a backoff runs. */
static void
runner_kick(struct journal_target *t)
{
	if (t->busy || t->backing_off)
		return;
	ev_timer_set(J.loop, &t->timer, 0);
}

/* ------------------------------------------------------------------ */
/* Retention                                                           */

/* One bounded step of the pass over the jobs' directories. */
static void
prune_step(struct ev_timer *tm)
{
	struct prune_job	*pj;
	struct dirent		*de;
	struct stat		 st;
	time_t			 now = time(NULL);
	int			 i;

	for (i = 0; i < JOURNAL_PRUNE_BATCH; i++) {
		if (J.dir == NULL) {
			if (J.job == J.njobs) {
				J.job = 0;
				ev_timer_set(J.loop, tm, JOURNAL_PRUNE_MS);
				return;
			}
			J.dir_pruned = 0;
			if ((J.dir = opendir(J.jobs[J.job].dir)) == NULL) {
				log_warn(NULL, "journal retention %s: %s",
				    J.jobs[J.job].dir, strerror(errno));
				J.job++;
			}
			continue;
		}
		pj = &J.jobs[J.job];
		if ((de = readdir(J.dir)) == NULL) {
			closedir(J.dir);
			J.dir = NULL;
			if (J.dir_pruned > 0)
				log_info(NULL, "journal pruned dir=%s files=%llu "
				    "older_than_s=%u", pj->dir, J.dir_pruned,
				    pj->age);
			J.job++;
			continue;
		}
		if (de->d_name[0] == '.' || fstatat(dirfd(J.dir), de->d_name,
		    &st, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode) ||
		    st.st_mtime > now - (time_t)pj->age)
			continue;
		if (unlinkat(dirfd(J.dir), de->d_name, 0) == -1) {
			log_warn(NULL, "journal retention %s/%s: %s", pj->dir,
			    de->d_name, strerror(errno));
			continue;
		}
		J.dir_pruned++;
		J.pruned++;
	}
	ev_timer_set(J.loop, tm, JOURNAL_PRUNE_PAUSE_MS);
}

/* ------------------------------------------------------------------ */

int
journal_init(struct ev_loop *loop, const struct conf *c, char *err,
    size_t errlen)
{
	struct passwd	*pw = NULL;

	J.loop = loop;
	J.deliver = c->journal_failure_deliver;
	if (gethostname(J.host, sizeof(J.host)) == -1)
		snprintf(J.host, sizeof(J.host), "localhost");
	J.host[sizeof(J.host) - 1] = '\0';
	if ((strncmp(c->journal_inbound, "smtp:", 5) == 0 ||
	    strncmp(c->journal_outbound, "smtp:", 5) == 0) &&
	    sock_parse_addr(c->journal_server, &J.server) == -1) {
		snprintf(err, errlen, "journal_server '%s'", c->journal_server);
		return -1;
	}
	/* The copies are written after the drop, as the relay user. */
	if (c->user[0] != '\0' && geteuid() == 0 &&
	    (pw = getpwnam(c->user)) == NULL) {
		snprintf(err, errlen, "user '%s' does not exist", c->user);
		return -1;
	}
	if (target_init(&J.in, "inbound", c->journal_inbound, c, pw, err,
	    errlen) == -1 || target_init(&J.out, "outbound",
	    c->journal_outbound, c, pw, err, errlen) == -1)
		return -1;
	if (J.njobs > 0) {
		ev_timer_init(&J.prune_timer, prune_step, NULL);
		ev_timer_set(loop, &J.prune_timer, 0);
	}
	return 0;
}

void
journal_status(struct buf *out)
{
	buf_printf(out, "journal.written=%llu\njournal.failed=%llu\n"
	    "journal.tempfail=%llu\njournal.discarded=%llu\n"
	    "journal.queued=%llu\njournal.sent=%llu\njournal.retry=%llu\n"
	    "journal.pruned=%llu\n", J.written, J.failed, J.tempfail,
	    J.discarded, J.queued, J.sent, J.retry, J.pruned);
}
