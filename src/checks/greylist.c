/* SPDX-License-Identifier: MIT */
/*
 * Greylisting: the triplet key (client network, sender, recipient), the
 * retry-window decision, and the local store. The decision is a pure
 * function of a record and the time, shared by the disk and Redis stores.
 *
 * The disk store is an append-only journal of text lines
 *	"g1 FIRST LAST PASSED KEY\n"
 * replayed into a hash table at start (the last line for a key wins) and
 * rewritten to a temporary file then renamed over the journal (atomic)
 * at start and whenever dead lines outnumber live ones. A line torn by a
 * crash has no newline and is skipped. Writes are single small appends on
 * a local file; nothing here talks to the network.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidr.h"
#include "greylist.h"
#include "log.h"

#define GL_LINE_MAX	(GREYLIST_KEY_MAX + 80)
#define GL_BUCKETS_MIN	1024
#define GL_COMPACT_MIN	1000	/* dead lines tolerated before a rewrite */

struct gl_entry {
	struct gl_entry		*next;
	struct greylist_rec	 rec;
	char			 key[];
};

struct greylist_store {
	char			 path[512];
	int			 fd;		/* the journal, O_APPEND */
	struct greylist_times	 t;
	struct gl_entry		**b;
	size_t			 nb;
	size_t			 n;
	size_t			 lines;		/* in the journal */
};

static const char *const gl_names[] = {
	[GL_NEW] = "new",
	[GL_EARLY] = "early",
	[GL_PASSED] = "passed",
	[GL_KNOWN] = "known",
	[GL_ERROR] = "error",
};

const char *
greylist_verdict_name(enum greylist_verdict v)
{
	return gl_names[v];
}

/* A path without its angle brackets and parameters, lower-cased. */
static size_t
gl_path(const char *in, char *out, size_t len)
{
	size_t	n = 0;

	while (*in == ' ')
		in++;
	if (*in == '<')
		in++;
	for (; *in && *in != '>' && *in != ' ' && n + 1 < len; in++)
		out[n++] = (char)tolower((unsigned char)*in);
	out[n] = '\0';
	return n;
}

/*
 * "10.1.2.0/24 sender@example.org rcpt@example.net": the client's /24 (or
 * /64), the reverse path ("" for the null sender) and the recipient, with
 * nothing in them but printable non-blank ASCII.
 */
int
greylist_key(const struct sockaddr_storage *ss, const char *sender,
    const char *rcpt, char *out, size_t len)
{
	struct cidr	net;
	char		ns[64], s[256], r[256];
	size_t		i, n;
	int		w;

	if (cidr_from_sockaddr(ss, 24, 64, &net) == -1 ||
	    cidr_format(&net, ns, sizeof(ns)) == -1)
		return -1;
	gl_path(sender, s, sizeof(s));
	if (gl_path(rcpt, r, sizeof(r)) == 0)
		return -1;
	w = snprintf(out, len, "%s %s %s", ns, s[0] ? s : "<>", r);
	if (w < 0 || (size_t)w >= len)
		return -1;
	n = (size_t)w;
	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] <= ' ' && out[i] != ' ')
			out[i] = '?';
		else if ((unsigned char)out[i] > '~')
			out[i] = '?';
	return 0;
}

enum greylist_verdict
greylist_decide(struct greylist_rec *r, int exists, int64_t now,
    const struct greylist_times *t)
{
	if (exists && !r->passed && now - r->first > (int64_t)t->max)
		exists = 0;		/* retried too late: start over */
	if (exists && r->passed && now - r->last > (int64_t)t->expiry)
		exists = 0;
	if (!exists) {
		r->first = r->last = now;
		r->passed = 0;
		return GL_NEW;
	}
	r->last = now;
	if (r->passed)
		return GL_KNOWN;
	if (now - r->first < (int64_t)t->min)
		return GL_EARLY;
	r->passed = 1;
	return GL_PASSED;
}

/* How long a record is worth keeping, in seconds from now. */
unsigned
greylist_ttl(const struct greylist_rec *r, const struct greylist_times *t)
{
	return r->passed ? t->expiry : t->max;
}

int
greylist_rec_format(const struct greylist_rec *r, char *out, size_t len)
{
	int	n;

	n = snprintf(out, len, "%" PRId64 " %" PRId64 " %u", r->first, r->last,
	    r->passed);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

/* "FIRST LAST PASSED", then a blank or the end; -1 when malformed. */
int
greylist_rec_parse(const char *s, struct greylist_rec *r)
{
	long long	f, l;
	unsigned	p;
	int		used = 0;

	if (sscanf(s, "%lld %lld %u%n", &f, &l, &p, &used) != 3 ||
	    (s[used] != '\0' && s[used] != ' ') || f < 0 || l < f)
		return -1;
	r->first = f;
	r->last = l;
	r->passed = p;
	return used;
}

/* ------------------------------------------------------------------ */
/* The disk store                                                      */

static size_t
gl_hash(const char *k)
{
	size_t	h = 5381;

	while (*k)
		h = h * 33 ^ (unsigned char)*k++;
	return h;
}

static struct gl_entry **
gl_slot(struct greylist_store *g, const char *key)
{
	struct gl_entry	**e = &g->b[gl_hash(key) % g->nb];

	while (*e != NULL && strcmp((*e)->key, key) != 0)
		e = &(*e)->next;
	return e;
}

static int
gl_grow(struct greylist_store *g)
{
	struct gl_entry	**nb, *e, *next;
	size_t		  n = g->nb * 2, i, h;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return -1;
	for (i = 0; i < g->nb; i++)
		for (e = g->b[i]; e != NULL; e = next) {
			next = e->next;
			h = gl_hash(e->key) % n;
			e->next = nb[h];
			nb[h] = e;
		}
	free(g->b);
	g->b = nb;
	g->nb = n;
	return 0;
}

static int
gl_set(struct greylist_store *g, const char *key,
    const struct greylist_rec *r)
{
	struct gl_entry	**slot = gl_slot(g, key), *e;
	size_t		  kl = strlen(key);

	if (*slot != NULL) {
		(*slot)->rec = *r;
		return 0;
	}
	if (g->n >= GREYLIST_ENTRIES_MAX) {
		errno = ENOSPC;
		return -1;
	}
	if ((e = malloc(sizeof(*e) + kl + 1)) == NULL)
		return -1;
	memcpy(e->key, key, kl + 1);
	e->rec = *r;
	e->next = NULL;
	*slot = e;
	g->n++;
	if (g->n > g->nb)
		(void)gl_grow(g);
	return 0;
}

static int
gl_expired(const struct greylist_store *g, const struct greylist_rec *r,
    int64_t now)
{
	return now - (r->passed ? r->last : r->first) >
	    (int64_t)greylist_ttl(r, &g->t);
}

static int
gl_line(char *out, size_t len, const char *key, const struct greylist_rec *r)
{
	char	rs[80];
	int	n;

	if (greylist_rec_format(r, rs, sizeof(rs)) == -1)
		return -1;
	n = snprintf(out, len, "g1 %s %s\n", rs, key);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

/* Replay the journal: malformed and torn lines are skipped. */
static int
gl_load(struct greylist_store *g, int64_t now, size_t *skipped)
{
	FILE			*fp;
	char			 line[GL_LINE_MAX + 2];
	struct greylist_rec	 r;
	size_t			 l;
	int			 used;

	*skipped = 0;
	if ((fp = fopen(g->path, "r")) == NULL)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		l = strlen(line);
		if (l == 0 || line[l - 1] != '\n') {
			/* Torn, or longer than any key: skip to the next
			 * line. */
			(*skipped)++;
			while (l > 0 && line[l - 1] != '\n' &&
			    fgets(line, sizeof(line), fp) != NULL)
				l = strlen(line);
			continue;
		}
		line[l - 1] = '\0';
		if (strncmp(line, "g1 ", 3) != 0 ||
		    (used = greylist_rec_parse(line + 3, &r)) == -1 ||
		    line[3 + used] != ' ' || line[4 + used] == '\0') {
			(*skipped)++;
			continue;
		}
		if (!gl_expired(g, &r, now) &&
		    gl_set(g, line + 4 + used, &r) == -1)
			break;
	}
	fclose(fp);
	return 0;
}

/*
 * Rewrite the journal with the live records only: a temporary file,
 * flushed to disk, renamed over the old one. A crash at any point leaves
 * either the old journal or the new one.
 */
int
greylist_compact(struct greylist_store *g, int64_t now)
{
	char		 tmp[sizeof(g->path) + 8], line[GL_LINE_MAX];
	struct gl_entry	**e, *dead;
	FILE		*fp;
	size_t		 i;
	int		 fd, n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", g->path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600))
	    == -1)
		return -1;
	if ((fp = fdopen(fd, "w")) == NULL) {
		close(fd);
		goto fail;
	}
	g->lines = 0;
	for (i = 0; i < g->nb; i++)
		for (e = &g->b[i]; *e != NULL; ) {
			if (gl_expired(g, &(*e)->rec, now)) {
				dead = *e;
				*e = dead->next;
				free(dead);
				g->n--;
				continue;
			}
			if ((n = gl_line(line, sizeof(line), (*e)->key,
			    &(*e)->rec)) > 0)
				fwrite(line, 1, (size_t)n, fp);
			g->lines++;
			e = &(*e)->next;
		}
	if (fflush(fp) == EOF || fsync(fileno(fp)) == -1) {
		fclose(fp);
		goto fail;
	}
	if (fclose(fp) == EOF || rename(tmp, g->path) == -1)
		goto fail;
	if (g->fd != -1)
		close(g->fd);
	g->fd = open(g->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	return g->fd == -1 ? -1 : 0;
fail:
	unlink(tmp);
	return -1;
}

struct greylist_store *
greylist_open(const char *path, const struct greylist_times *t, int64_t now,
    char *err, size_t errlen)
{
	struct greylist_store	*g;
	size_t			 skipped;

	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->b = calloc(GL_BUCKETS_MIN, sizeof(*g->b))) == NULL) {
		free(g);
		snprintf(err, errlen, "greylist: out of memory");
		return NULL;
	}
	g->nb = GL_BUCKETS_MIN;
	g->fd = -1;
	g->t = *t;
	if ((size_t)snprintf(g->path, sizeof(g->path), "%s", path) >=
	    sizeof(g->path)) {
		snprintf(err, errlen, "greylist_file: path too long");
		goto fail;
	}
	if (gl_load(g, now, &skipped) == -1) {
		snprintf(err, errlen, "greylist_file %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (skipped > 0)
		log_warn(NULL, "greylist file=%s skipped=%zu malformed or "
		    "torn lines", path, skipped);
	if (greylist_compact(g, now) == -1) {
		snprintf(err, errlen, "greylist_file %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	return g;
fail:
	greylist_close(g);
	return NULL;
}

enum greylist_verdict
greylist_check(struct greylist_store *g, const char *key, int64_t now)
{
	struct gl_entry		*e = *gl_slot(g, key);
	struct greylist_rec	 r;
	enum greylist_verdict	 v;
	char			 line[GL_LINE_MAX];
	int64_t			 prev = 0;
	int			 n;

	memset(&r, 0, sizeof(r));
	if (e != NULL) {
		r = e->rec;
		prev = r.last;
	}
	v = greylist_decide(&r, e != NULL, now, &g->t);
	if (gl_set(g, key, &r) == -1) {
		log_warn(NULL, "greylist store: %s", strerror(errno));
		return GL_ERROR;
	}
	/* A known triplet's refreshed time need not reach the disk on every
	 * message: once an hour is enough for a record kept for weeks. */
	if (v == GL_KNOWN && r.last - prev < 3600)
		return v;
	if ((n = gl_line(line, sizeof(line), key, &r)) > 0 && (g->fd == -1 ||
	    write(g->fd, line, (size_t)n) != n))
		log_warn(NULL, "greylist journal %s: %s", g->path,
		    g->fd == -1 ? "not open" : strerror(errno));
	if (++g->lines > GL_COMPACT_MIN && g->lines > 2 * g->n &&
	    greylist_compact(g, now) == -1)
		log_warn(NULL, "greylist compaction %s: %s", g->path,
		    strerror(errno));
	return v;
}

size_t
greylist_count(const struct greylist_store *g)
{
	return g->n;
}

void
greylist_close(struct greylist_store *g)
{
	struct gl_entry	*e, *next;
	size_t		 i;

	if (g == NULL)
		return;
	for (i = 0; i < g->nb; i++)
		for (e = g->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(g->b); g->b = NULL;
	if (g->fd != -1)
		close(g->fd);
	free(g);
}
