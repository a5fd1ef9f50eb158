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
 * the null reverse path, deleting it only on the journal server's 2xx,
 * moving it to failed/ on a 5xx and retrying with backoff otherwise: a
 * journal server that is down or slow never loses a copy and never
 * delays mail, and one it refuses never blocks the rest. Retention
 * (journal_retention) is a timer that deletes old Maildir copies a
 * bounded batch at a time. The directories are made and given to the
 * relay user as root: a path the relay user could have planted (a
 * symbolic link, a file, another user's directory) is refused there,
 * never followed, and every change goes through a descriptor.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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
#define JOURNAL_QUEUE_WARN	10000		/* copies waiting, or ... */
#define JOURNAL_QUEUE_AGE_WARN	(24 * 3600)	/* ... the oldest's age */
#define JOURNAL_QUEUE_WARN_S	3600		/* between such warnings */

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
	size_t			 waiting;	/* copies in new/ */
	time_t			 warned;	/* the last queue warning */
};

struct journal_copy {
	struct journal_target	*t;
	char			 id[16];
	char			 name[JOURNAL_NAME_MAX];
};

struct prune_job {
	char			 dir[JOURNAL_SUB_MAX];	/* for the log */
	const char		*root;		/* the target's dir */
	const char		*sub;		/* "tmp", "new", "cur" */
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
	unsigned long long	 queued, sent, retry, refused, pruned;
} J;

static void	runner_cb(struct ev_timer *);
static void	runner_kick(struct journal_target *);

/* ------------------------------------------------------------------ */
/* Directories                                                         */

/*
 * One directory of ours, name under at: made with mode if missing, then
 * opened without following a symbolic link, refused unless it is a
 * directory owned by root, the relay user or us, then given to the relay
 * user with mode (an existing one's mode set too). This runs as root on
 * paths the relay user may have written into: only the descriptor opened
 * here is ever changed, never a path. shown names it in err. The
 * descriptor, or -1 with err set.
 */
static int
dir_take(int at, const char *name, const char *shown, mode_t mode,
    const struct passwd *pw, char *err, size_t errlen)
{
	struct stat	 st;
	int		 fd = -1;

	if (mkdirat(at, name, mode) == -1 && errno != EEXIST)
		goto fail;
	if ((fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		if ((errno == ELOOP || errno == ENOTDIR) &&
		    fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			snprintf(err, errlen, "%s: %s, refused (the journal's "
			    "directories must be directories, not links or "
			    "files)", shown, S_ISLNK(st.st_mode) ?
			    "a symbolic link" : "not a directory");
			return -1;
		}
		goto fail;
	}
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISDIR(st.st_mode))	/* O_DIRECTORY said it was */
		fatal("journal: %s: not a directory after O_DIRECTORY", shown);
	if (st.st_uid != 0 && st.st_uid != geteuid() &&
	    (pw == NULL || st.st_uid != pw->pw_uid)) {
		snprintf(err, errlen, "%s: owned by uid %u, refused (root's "
		    "or the relay user's only)", shown, (unsigned)st.st_uid);
		close(fd);
		return -1;
	}
	if ((pw != NULL && fchown(fd, pw->pw_uid, pw->pw_gid) == -1) ||
	    fchmod(fd, mode) == -1)		/* whatever the umask */
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s: %s", shown, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

/*
 * A Maildir, name under at, and its tmp/, new/, cur/ (and failed/ for a
 * queue), each through dir_take. The Maildir's own name is followed only
 * up to its last component: the directory the admin named must be that
 * directory, not a link to one (a link higher up the path is followed,
 * so those directories had better be root's).
 */
static int
maildir_take(int at, const char *name, const char *shown, mode_t mode,
    int queue, const struct passwd *pw, char *err, size_t errlen)
{
	static const char *const sub[] = { "tmp", "new", "cur", "failed" };
	char	path[JOURNAL_SUB_MAX + 8];
	size_t	i, n = sizeof(sub) / sizeof(sub[0]) - (queue ? 0 : 1);
	int	fd, sfd;

	if ((fd = dir_take(at, name, shown, mode, pw, err, errlen)) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", shown, sub[i]);
		if ((sfd = dir_take(fd, sub[i], path, mode, pw, err,
		    errlen)) == -1) {
			close(fd);
			return -1;
		}
		close(sfd);
	}
	close(fd);
	return 0;
}

/*
 * A target's sub-directory, for reading as the relay user: not followed
 * when a link, whatever was planted there since the start.
 */
static int
sub_open(const char *dir, const char *sub)
{
	int	fd, sfd, saved;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return -1;
	sfd = openat(fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	saved = errno;
	close(fd);
	errno = saved;
	return sfd;
}

/* The same as a directory stream. */
static DIR *
sub_opendir(const char *dir, const char *sub)
{
	DIR	*d;
	int	 fd, saved;

	if ((fd = sub_open(dir, sub)) == -1)
		return NULL;
	if ((d = fdopendir(fd)) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
	}
	return d;
}

static void
prune_add(const char *dir, const char *sub, unsigned age)
{
	struct prune_job	*pj;

	if (J.njobs == JOURNAL_PRUNE_JOBS)
		fatal("journal: too many retention jobs");
	pj = &J.jobs[J.njobs++];
	snprintf(pj->dir, sizeof(pj->dir), "%s/%s", dir, sub);
	pj->root = dir;
	pj->sub = sub;
	pj->age = age;
}

static int
target_init(struct journal_target *t, const char *direction,
    const char *target, const struct conf *c, const struct passwd *pw,
    char *err, size_t errlen)
{
	char	qdir[CONF_PATH_MAX + 32];
	int	sfd, qfd, rc;

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
		snprintf(t->dir, sizeof(t->dir), "%s/%s", qdir, direction);
		/* spool_dir is the admin's (sporkd made it); below it, the
		 * relay user's, so nothing is followed. */
		if ((sfd = open(c->spool_dir, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) == -1) {
			snprintf(err, errlen, "%s: %s", c->spool_dir,
			    strerror(errno));
			return -1;
		}
		qfd = dir_take(sfd, "journal-queue", qdir, 0700, pw, err,
		    errlen);
		close(sfd);
		if (qfd == -1)
			return -1;
		rc = maildir_take(qfd, direction, t->dir, 0700, 1, pw, err,
		    errlen);
		close(qfd);
		if (rc == -1)
			return -1;
		ev_timer_init(&t->timer, runner_cb, t);
		runner_kick(t);		/* copies left by an earlier run */
	} else {
		snprintf(t->dir, sizeof(t->dir), "%s", target);
		if (maildir_take(AT_FDCWD, t->dir, t->dir, 0750, 0, pw, err,
		    errlen) == -1)
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

/* A fresh nonce for a copy's envelope block: the client cannot guess it,
 * so it cannot end the block early. -1 and errno when none. */
static int
nonce_make(char *out, size_t len)
{
	unsigned char	r[JOURNAL_NONCE_LEN / 2];
	size_t		i;

	if (len < 2 * sizeof(r) + 1)
		fatal("journal: nonce buffer");
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	for (i = 0; i < sizeof(r); i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/*
 * The copy in tmp/, synced: the envelope block, then what the session
 * sends after DATA, from the same sources (the session sends those header
 * lines, then the spool dot-stuffed; the copy is the unstuffed message).
 * It is synced here rather than at commit so that a disk that fails is
 * found while journal_failure can still be followed.
 */
static int
copy_write(const char *path, const struct journal_msg *m)
{
	static char	 chunk[JOURNAL_CHUNK];
	char		 nonce[JOURNAL_NONCE_LEN + 1];
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
	if (nonce_make(nonce, sizeof(nonce)) == -1)
		goto fail;
	if (journal_envelope_format(&b, &m->env, nonce) == -1) {
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
		jc->t->waiting++;
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

/*
 * The oldest copy waiting in new/ (Maildir names start with the time):
 * its path in out, 0; 1 when there is none. Counts them on the way, and
 * says so once an hour while the queue is too long or too old.
 */
static int
queue_oldest(struct journal_target *t, char *out, size_t len)
{
	char		 best[JOURNAL_NAME_MAX];
	struct dirent	*de;
	time_t		 now = time(NULL), age;
	size_t		 n = 0;
	DIR		*d;

	if ((d = sub_opendir(t->dir, "new")) == NULL) {
		log_warn(NULL, "journal queue %s/new: %s", t->dir,
		    strerror(errno));
		return 1;
	}
	best[0] = '\0';
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(best))
			continue;
		n++;
		if (best[0] == '\0' || strcmp(de->d_name, best) < 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	closedir(d);
	t->waiting = n;
	if (best[0] == '\0')
		return 1;
	age = now - (time_t)strtoll(best, NULL, 10);
	if ((n > JOURNAL_QUEUE_WARN || age > JOURNAL_QUEUE_AGE_WARN) &&
	    now - t->warned >= JOURNAL_QUEUE_WARN_S) {
		t->warned = now;
		log_warn(NULL, "journal queue direction=%s to=%s copies=%zu "
		    "oldest_s=%lld: the journal server is not taking them",
		    t->direction, t->rcpt, n, (long long)age);
	}
	snprintf(out, len, "%s/new/%s", t->dir, best);
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

/*
 * The journal server refused the copy for good: sending it again would
 * only hold up the copies behind it, so it goes to failed/ for the admin
 * (back to new/ to send it again). -1 when it could not be moved.
 */
static int
runner_refused(struct journal_target *t, const char *name, const char *why)
{
	char	dst[JOURNAL_PATH_MAX];

	snprintf(dst, sizeof(dst), "%s/failed/%s", t->dir, name);
	if (rename(t->sending, dst) == -1) {
		log_err(NULL, "journal refused direction=%s to=%s copy=%s: "
		    "%s; rename to failed/: %s (it will be sent again)",
		    t->direction, t->rcpt, name, why, strerror(errno));
		return -1;
	}
	J.refused++;
	if (t->waiting > 0)
		t->waiting--;
	log_err(NULL, "journal refused direction=%s to=%s copy=%s "
	    "moved=failed/: %s", t->direction, t->rcpt, name, why);
	return 0;
}

static void
runner_done(void *arg, int ok, int code, const char *why)
{
	struct journal_target	*t = arg;
	const char		*name = strrchr(t->sending, '/') + 1;

	t->busy = 0;
	if (!ok && code / 100 == 5 && runner_refused(t, name, why) == 0) {
		t->backoff_ms = 0;	/* the server is there: go on */
		runner_kick(t);
		return;
	}
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
	else if (t->waiting > 0)
		t->waiting--;
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
			if ((J.dir = sub_opendir(J.jobs[J.job].root,
			    J.jobs[J.job].sub)) == NULL) {
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
	    "journal.refused=%llu\njournal.queue=%zu\n"
	    "journal.pruned=%llu\n", J.written, J.failed, J.tempfail,
	    J.discarded, J.queued, J.sent, J.retry, J.refused,
	    J.in.waiting + J.out.waiting, J.pruned);
}
