/* SPDX-License-Identifier: MIT */
/*
 * sporkctl: sends one command to sporkd's control socket and prints the
 * answer. Exit status 0 when the answer starts with "ok".
 *
 * `sporkctl track` is the exception: it reads the tracking database
 * (track_db, see src/control/track.h) itself, read-only, without sporkd.
 * What it prints of a record is the sender's words: escaped, so that they
 * cannot drive the terminal.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "track_read.h"

#define SPORKCTL_DEFAULT_SOCKET	"/run/spork/sporkd.sock"
#define SPORKCTL_DEFAULT_CONF	"/etc/spork/spork.conf"
#define TRACK_DEFAULT_LIMIT	50
#define TRACK_PATH_MAX		4096
#define TRACK_ARGS_MAX		16	/* bound values of one query */
#define TRACK_BUSY_MS		2000
#define TRACK_ID_PER_SEC	1000000	/* track.h: an id is its record's time */

static void
usage(void)
{
	fprintf(stderr, "usage: sporkctl [-s socket] [-c spork.conf] command "
	    "[args]\n"
	    "  status                      sessions, scanner, engine, workers,\n"
	    "                              TLS coverage\n"
	    "  tls                         servers seen with STARTTLS: subject,\n"
	    "                              key fingerprint, key held or not\n"
	    "  reload                      reload virus signatures\n"
	    "  quarantine list\n"
	    "  quarantine show ID\n"
	    "  quarantine text ID          its text after the header\n"
	    "  quarantine release ID       deliver to its original server\n"
	    "  quarantine delete ID\n"
	    "  bypass add ADDR [server] [timeout 1h]   not intercepted\n"
	    "  bypass del ADDR [server]\n"
	    "  bypass list\n"
	    "  track [-D db] [-f sender] [-r rcpt] [-m message-id]\n"
	    "        [-a client-addr] [-s since] [-u until] [-n limit] [ID]\n"
	    "                              tracked messages, newest first\n"
	    "                              (track_db of spork.conf, or -D);\n"
	    "                              -n: 50 by default, 0: all; -f, -r:\n"
	    "                              any case, * a wildcard; -s, -u:\n"
	    "                              unix time, YYYY-MM-DD[ HH:MM[:SS]]\n"
	    "                              (local), or 2h, 3d ago; ID: a\n"
	    "                              number or a session, every field\n");
	exit(2);
}

/* ------------------------------------------------------------ track */

/* A value printed as it was, except that control bytes, DEL, backslash
 * and bytes above 0x7e are written \xHH (a backslash \\): what the
 * terminal shows is what was there (quarantine show does the same). */
static void
put_escaped(const char *s)
{
	const unsigned char	*p = (const unsigned char *)(s ? s : "");

	for (; *p != '\0'; p++) {
		if (*p == '\\')
			fputs("\\\\", stdout);
		else if (*p >= 0x20 && *p < 0x7f)
			putchar(*p);
		else
			printf("\\x%02x", *p);
	}
}

/* track_db as spork.conf sets it (the last line naming it), read the way
 * sporkd reads it: '#' starts a comment, blanks around the value go. */
static int
conf_track_db(const char *path, char *out, size_t outlen)
{
	FILE	*fp;
	char	 line[8192], *k, *v, *e;
	int	 found = 0;

	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "sporkctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		if ((e = strchr(line, '#')) != NULL)
			*e = '\0';
		k = line + strspn(line, " \t\r\n");
		v = k + strcspn(k, " \t\r\n");
		if (*v != '\0')
			*v++ = '\0';
		if (strcmp(k, "track_db") != 0)
			continue;
		v += strspn(v, " \t");
		e = v + strlen(v);
		while (e > v && strchr(" \t\r\n", e[-1]) != NULL)
			*--e = '\0';
		if (strlen(v) >= outlen) {
			fprintf(stderr, "sporkctl: %s: track_db too long\n",
			    path);
			fclose(fp);
			return -1;
		}
		strcpy(out, v);
		found = 1;
	}
	fclose(fp);
	if (!found || out[0] == '\0') {
		fprintf(stderr, "sporkctl: %s: no track_db (tracking is off)\n",
		    path);
		return -1;
	}
	return 0;
}

/* since/until: unix time; YYYY-MM-DD[( |T)HH:MM[:SS]] in local time; or N
 * followed by s, m, h, d or w, that long ago. */
static int
parse_when(const char *s, double *out)
{
	static const char	 units[] = "smhdw";
	static const long	 secs[] = { 1, 60, 3600, 86400, 604800 };
	struct tm		 tm;
	const char		*u;
	char			*ep;
	unsigned long long	 n;
	int			 len = 0, k;

	if (isdigit((unsigned char)s[0]) && strchr(s, '-') == NULL) {
		errno = 0;
		n = strtoull(s, &ep, 10);
		if (errno != 0 || n > (unsigned long long)LONG_MAX / 604800)
			return -1;
		if (*ep == '\0') {
			*out = (double)n;
			return 0;
		}
		if (ep[1] != '\0' || (u = strchr(units, ep[0])) == NULL)
			return -1;
		*out = (double)time(NULL) - (double)n * secs[u - units];
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	k = sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	    &len);
	if (k != 3)
		return -1;
	s += len;
	if (*s == ' ' || *s == 'T') {
		len = 0;
		if (sscanf(s + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min,
		    &len) != 2 || len != 5)
			return -1;
		s += 1 + len;
		if (*s == ':') {
			len = 0;
			if (sscanf(s + 1, "%2d%n", &tm.tm_sec, &len) != 1 ||
			    len != 2)
				return -1;
			s += 1 + len;
		}
	}
	if (*s != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon--;
	tm.tm_isdst = -1;
	*out = (double)mktime(&tm);
	return 0;
}

/* A -f/-r pattern as LIKE's: '*' any run, '%', '_' and '\\' literal. */
static char *
like_pattern(const char *s)
{
	char	*p, *q;

	if ((p = q = malloc(2 * strlen(s) + 1)) == NULL)
		return NULL;
	for (; *s != '\0'; s++) {
		if (*s == '*') {
			*q++ = '%';
			continue;
		}
		if (*s == '%' || *s == '_' || *s == '\\')
			*q++ = '\\';
		*q++ = *s;
	}
	*q = '\0';
	return p;
}

/* The filters: " AND ..." conditions and the values they bind. */
struct track_query {
	char		 sql[2048];
	size_t		 len;
	int		 nargs;
	int		 isnum[TRACK_ARGS_MAX];
	sqlite3_int64	 num[TRACK_ARGS_MAX];
	char		*text[TRACK_ARGS_MAX];	/* owned */
};

/* One more "AND ..." with its values (at most two, text unless isnum). */
static int
q_add(struct track_query *q, const char *cond, char *t1, char *t2,
    const sqlite3_int64 *num)
{
	int	n;

	n = snprintf(q->sql + q->len, sizeof(q->sql) - q->len, " AND %s",
	    cond);
	if (n < 0 || (size_t)n >= sizeof(q->sql) - q->len ||
	    q->nargs + 2 > TRACK_ARGS_MAX) {
		free(t1);
		free(t2);
		return -1;
	}
	q->len += (size_t)n;
	if (num != NULL) {
		q->isnum[q->nargs] = 1;
		q->num[q->nargs++] = *num;
		return 0;
	}
	if (t1 == NULL)
		return -1;
	q->isnum[q->nargs] = 0;
	q->text[q->nargs++] = t1;
	if (t2 != NULL) {
		q->isnum[q->nargs] = 0;
		q->text[q->nargs++] = t2;
	}
	return 0;
}

/* -f and -r: exact without a '*' (the NOCASE index), LIKE with one;
 * the value twice for -r's two columns (the first recipient's in
 * messages, the others' in recipients). */
static int
q_add_addr(struct track_query *q, const char *col_eq, const char *col_like,
    const char *v, int twice)
{
	if (strchr(v, '*') != NULL)
		return q_add(q, col_like, like_pattern(v), twice ?
		    like_pattern(v) : NULL, NULL);
	return q_add(q, col_eq, strdup(v), twice ? strdup(v) : NULL, NULL);
}

/* A time as the bound of a range of ids: an id is its record's time in
 * microseconds, so the range is one of the table itself. */
static int
q_add_time(struct track_query *q, const char *cond, const char *v)
{
	sqlite3_int64	id;
	double		t;

	if (parse_when(v, &t) == -1) {
		fprintf(stderr, "sporkctl: bad time %s (unix time, "
		    "YYYY-MM-DD[ HH:MM[:SS]], or like 2h, 3d)\n", v);
		return -1;
	}
	id = t > 0 ? (sqlite3_int64)(t * TRACK_ID_PER_SEC) : 0;
	return q_add(q, cond, NULL, NULL, &id);
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
	const unsigned char	*v = sqlite3_column_text(st, i);

	return v != NULL ? (const char *)v : "";
}

static void
put_time(double t)
{
	char		stamp[64];
	struct tm	tm;
	time_t		s = (time_t)t;

	if (localtime_r(&s, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		printf("%.3f", t);
	else
		fputs(stamp, stdout);
}

/* The reply code of a reply line, "-" when it has none. */
static void
put_code(const char *reply)
{
	if (isdigit((unsigned char)reply[0]) &&
	    isdigit((unsigned char)reply[1]) &&
	    isdigit((unsigned char)reply[2]))
		printf("%.3s", reply);
	else
		fputs("-", stdout);
}

#define TRACK_LIST_COLS "m.id, m.t, m.session, m.client, m.sender, " \
	"m.rcpts, m.rcpt, m.size, m.verdict, m.action, m.reply"
#define TRACK_SHOW_COLS "m.id, m.t, m.session, m.client, m.client_addr, " \
	"m.server, m.direction, m.helo, m.sender, m.size, m.message_id, " \
	"m.subject, m.verdict, m.action, m.score, m.tls, m.quarantine, " \
	"m.reply, m.rcpts, m.rcpt, m.rcpt_code, m.rcpt_reply"

static void
track_list_row(sqlite3_stmt *st)
{
	printf("%lld ", (long long)sqlite3_column_int64(st, 0));
	put_time(sqlite3_column_double(st, 1));
	putchar(' ');
	put_escaped(sqlite3_column_text(st, 2) ? col_text(st, 2) : "-");
	fputs(" client=", stdout);
	put_escaped(col_text(st, 3));
	fputs(" from=<", stdout);
	put_escaped(col_text(st, 4));
	printf("> rcpts=%lld", (long long)sqlite3_column_int64(st, 5));
	if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
		fputs(" to=<", stdout);
		put_escaped(col_text(st, 6));
		putchar('>');
	}
	printf(" size=%lld verdict=", (long long)sqlite3_column_int64(st, 7));
	put_escaped(col_text(st, 8));
	fputs(" action=", stdout);
	put_escaped(col_text(st, 9));
	fputs(" reply=", stdout);
	put_code(col_text(st, 10));
	putchar('\n');
}

/* A recipient with its code and reply: st's columns i to i + 2. */
static void
track_show_rcpt(sqlite3_stmt *st, int i)
{
	fputs("rcpt         <", stdout);
	put_escaped(col_text(st, i));
	printf("> code=%d reply=", sqlite3_column_int(st, i + 1));
	put_escaped(col_text(st, i + 2));
	putchar('\n');
}

/* The whole record: every field, each recipient with its answer (in
 * segment seg's tables). */
static int
track_show_row(sqlite3 *db, sqlite3_stmt *st, unsigned seg)
{
	static const char *const names[] = { "id", "time", "session",
	    "client", "client_addr", "server", "direction", "helo", "sender",
	    "size", "message_id", "subject", "verdict", "action", "score",
	    "tls", "quarantine", "reply" };
	sqlite3_stmt	*r = NULL;
	long long	 id = sqlite3_column_int64(st, 0);
	char		*sql;
	int		 i, n = 0, rc;
	const int	 ncols = (int)(sizeof(names) / sizeof(names[0]));

	for (i = 0; i < ncols; i++) {
		printf("%-12s ", names[i]);
		if (i == 1) {
			put_time(sqlite3_column_double(st, i));
			printf(" (%.3f)", sqlite3_column_double(st, i));
		} else if (sqlite3_column_type(st, i) == SQLITE_NULL)
			fputs("-", stdout);
		else
			put_escaped(col_text(st, i));
		putchar('\n');
	}
	/* The first recipient is in the message's row (the columns after
	 * names'), the others in recipients. */
	if (sqlite3_column_int64(st, ncols) > 0) {
		track_show_rcpt(st, ncols + 1);
		n++;
	}
	if ((sql = track_read_sql("SELECT rcpt, code, reply FROM @R WHERE "
	    "message = ? ORDER BY n", seg)) == NULL) {
		fprintf(stderr, "sporkctl: out of memory\n");
		return -1;
	}
	rc = sqlite3_prepare_v2(db, sql, -1, &r, NULL);
	free(sql);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "sporkctl: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(r, 1, id);
	while ((rc = sqlite3_step(r)) == SQLITE_ROW) {
		track_show_rcpt(r, 0);
		n++;
	}
	if (rc != SQLITE_DONE)
		fprintf(stderr, "sporkctl: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(r);
	printf("recipients   %d\n", n);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Read-only. A reader that may not write the -shm file (a group member)
 * still reads a live database; when sporkd is stopped and the -wal file
 * is gone, only an immutable open works (sporkd checkpointed everything
 * at its exit, so nothing is missed).
 */
static sqlite3 *
track_open(const char *path, const char *sql, sqlite3_stmt **st)
{
	sqlite3		*db = NULL;
	char		 uri[3 * TRACK_PATH_MAX + 32], wal[TRACK_PATH_MAX + 8], *u;
	const char	*p;
	int		 attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		if (attempt == 0) {
			sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
		} else {
			u = uri + sprintf(uri, "file:");
			for (p = path; *p != '\0'; p++)
				u += isalnum((unsigned char)*p) ||
				    strchr("/._-", *p) != NULL ?
				    sprintf(u, "%c", *p) :
				    sprintf(u, "%%%02X", (unsigned char)*p);
			strcpy(u, "?immutable=1");
			sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY |
			    SQLITE_OPEN_URI, NULL);
		}
		if (db == NULL) {
			fprintf(stderr, "sporkctl: out of memory\n");
			return NULL;
		}
		sqlite3_busy_timeout(db, TRACK_BUSY_MS);
		if (sqlite3_errcode(db) == SQLITE_OK &&
		    sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK)
			return db;
		/* immutable=1 only for a database no writer has open
		 * (no -wal beside it): on a live one it could read a
		 * half-checkpointed file. */
		snprintf(wal, sizeof(wal), "%s-wal", path);
		if (attempt == 1 || access(path, R_OK) == -1 ||
		    access(wal, F_OK) == 0 ||
		    (sqlite3_errcode(db) & 0xff) == SQLITE_ERROR) {
			fprintf(stderr, "sporkctl: %s: %s\n", path,
			    sqlite3_errmsg(db));
			sqlite3_close(db);
			return NULL;
		}
		sqlite3_close(db);
		db = NULL;
	}
	return NULL;
}

/* A -m value, with and without its angle brackets. */
static int
q_add_msgid(struct track_query *q, const char *v)
{
	char	*b;

	if ((b = malloc(strlen(v) + 3)) != NULL)
		sprintf(b, "<%s>", v);
	return q_add(q, "(m.message_id = ? OR m.message_id = ?)", strdup(v),
	    b, NULL);
}

/* ID: a number is the record's, anything else its session's. */
static int
q_add_id(struct track_query *q, const char *id)
{
	sqlite3_int64	n;

	if (id[0] != '\0' && strspn(id, "0123456789") == strlen(id)) {
		errno = 0;
		n = strtoll(id, NULL, 10);
		if (errno != 0)
			return -1;
		return q_add(q, "m.id = ?", NULL, NULL, &n);
	}
	return q_add(q, "m.session = ?", strdup(id), NULL, NULL);
}

/* A search's state for track_read_each's hooks. */
struct track_each {
	const struct track_query *q;
	sqlite3		*db;
	int		 show;		/* one message's whole record */
	long		 rows;
};

static void
track_bind(sqlite3_stmt *st, void *arg)
{
	const struct track_query *q = ((struct track_each *)arg)->q;
	int			 i;

	for (i = 0; i < q->nargs; i++) {
		if (q->isnum[i])
			sqlite3_bind_int64(st, i + 1, q->num[i]);
		else
			sqlite3_bind_text(st, i + 1, q->text[i], -1,
			    SQLITE_STATIC);
	}
}

static int
track_row(sqlite3_stmt *st, unsigned seg, void *arg)
{
	struct track_each	*tr = arg;

	if (!tr->show) {
		track_list_row(st);
		return 0;
	}
	if (tr->rows++ > 0)
		putchar('\n');
	return track_show_row(tr->db, st, seg);
}

static int
cmd_track(int argc, char *argv[], const char *confpath)
{
	struct track_query	 q;
	sqlite3			*db = NULL;
	sqlite3_stmt		*st = NULL;
	char			 dbpath[TRACK_PATH_MAX] = "", *ep;
	char			 sql[sizeof(q.sql) + 512];
	struct track_each	 tr;
	const char		*id = NULL;
	long			 limit = TRACK_DEFAULT_LIMIT, rows;
	int			 ch, i, n, rc = 1, bad = 0;

	memset(&q, 0, sizeof(q));
	optind = 0;	/* glibc: a new scan, with a new optstring */
	while (!bad && (ch = getopt(argc, argv, "+D:f:r:m:a:s:u:n:")) != -1) {
		switch (ch) {
		case 'D':
			if (strlen(optarg) >= sizeof(dbpath))
				bad = 1;
			else
				strcpy(dbpath, optarg);
			break;
		case 'f':
			bad = q_add_addr(&q, "m.sender = ? COLLATE NOCASE",
			    "m.sender LIKE ? ESCAPE '\\'", optarg, 0);
			break;
		case 'r':
			bad = q_add_addr(&q, "m.id IN (SELECT id FROM "
			    "@M WHERE rcpt = ? COLLATE NOCASE UNION "
			    "SELECT message FROM @R WHERE rcpt = ? "
			    "COLLATE NOCASE)", "m.id IN (SELECT id FROM "
			    "@M WHERE rcpt LIKE ? ESCAPE '\\' UNION "
			    "SELECT message FROM @R WHERE rcpt LIKE ? "
			    "ESCAPE '\\')", optarg, 1);
			break;
		case 'm':
			bad = q_add_msgid(&q, optarg);
			break;
		case 'a':
			bad = q_add(&q, "m.client_addr = ?", strdup(optarg),
			    NULL, NULL);
			break;
		case 's':
			bad = q_add_time(&q, "m.id >= ?", optarg);
			break;
		case 'u':
			bad = q_add_time(&q, "m.id <= ?", optarg);
			break;
		case 'n':
			errno = 0;
			limit = strtol(optarg, &ep, 10);
			bad = errno != 0 || *ep != '\0' || ep == optarg ||
			    limit < 0;
			break;
		default:
			bad = 1;
			break;
		}
	}
	if (!bad && argc - optind == 1)
		bad = q_add_id(&q, id = argv[optind]);
	if (bad || argc - optind > 1) {
		for (i = 0; i < q.nargs; i++)
			free(q.text[i]);
		usage();
	}
	n = snprintf(sql, sizeof(sql), "SELECT %s FROM @M m WHERE 1%s "
	    "ORDER BY m.id DESC LIMIT %ld",
	    id != NULL ? TRACK_SHOW_COLS : TRACK_LIST_COLS, q.sql,
	    limit > 0 ? limit : -1L);
	if (n < 0 || (size_t)n >= sizeof(sql)) {
		fprintf(stderr, "sporkctl: query too long\n");
		goto done;
	}
	if (dbpath[0] == '\0' && conf_track_db(confpath, dbpath,
	    sizeof(dbpath)) == -1)
		goto done;
	if ((db = track_open(dbpath, "SELECT 1 FROM sqlite_schema", &st)) ==
	    NULL)
		goto done;
	sqlite3_finalize(st);
	st = NULL;
	/* Segment by segment, newest first (track_read.h). */
	tr.q = &q;
	tr.db = db;
	tr.show = id != NULL;
	tr.rows = 0;
	switch (rows = track_read_each(db, sql, limit, track_bind, track_row,
	    &tr)) {
	case TRACK_READ_DB:
		goto dberr;
	case TRACK_READ_NOMEM:
		fprintf(stderr, "sporkctl: out of memory\n");
		goto done;
	case TRACK_READ_STOP:
		goto done;
	}
	if (id != NULL && rows == 0) {
		fprintf(stderr, "sporkctl: no message %s\n", id);
		goto done;
	}
	rc = 0;
	goto done;
dberr:
	fprintf(stderr, "sporkctl: %s: %s\n", dbpath, sqlite3_errmsg(db));
done:
	sqlite3_finalize(st);
	sqlite3_close(db);
	for (i = 0; i < q.nargs; i++)
		free(q.text[i]);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct sockaddr_un	 sun;
	const char		*path = SPORKCTL_DEFAULT_SOCKET;
	const char		*confpath = SPORKCTL_DEFAULT_CONF;
	char			 line[1024], buf[4096];
	size_t			 l = 0;
	ssize_t			 n;
	int			 ch, fd, i, first = 1, ok = 0;

	/* '+': the command's own options are the command's. */
	while ((ch = getopt(argc, argv, "+s:c:")) != -1) {
		if (ch == 's')
			path = optarg;
		else if (ch == 'c')
			confpath = optarg;
		else
			usage();
	}
	if (optind == argc)
		usage();
	if (strcmp(argv[optind], "track") == 0)
		return cmd_track(argc - optind, argv + optind, confpath);
	for (i = optind; i < argc; i++) {
		n = snprintf(line + l, sizeof(line) - l, "%s%s",
		    i > optind ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= sizeof(line) - l - 1) {
			fprintf(stderr, "sporkctl: command too long\n");
			return 2;
		}
		l += (size_t)n;
	}
	line[l++] = '\n';

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "sporkctl: socket path too long\n");
		return 2;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "sporkctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (write(fd, line, l) != (ssize_t)l) {
		fprintf(stderr, "sporkctl: write: %s\n", strerror(errno));
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (first) {
			ok = n >= 2 && buf[0] == 'o' && buf[1] == 'k';
			first = 0;
		}
		fwrite(buf, 1, (size_t)n, stdout);
	}
	close(fd);
	return ok ? 0 : 1;
}
