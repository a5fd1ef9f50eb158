/* SPDX-License-Identifier: MIT */
/*
 * Message tracking: the JSON of a record (escaping, truncation, the log
 * line that must fit log.c's), the database the writer fills (fields byte
 * for byte, recipients, retention, the size bound, a full queue, ids
 * from times, schemas 1 and 2 migrated, segments sealed, searched,
 * dropped for retention and size), and `sporkctl track` on that
 * database.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "track.h"
#include "unit.h"

/* Sender's words a tracker must survive: quotes, CR LF, control bytes,
 * backslashes, bytes that are not UTF-8. */
#define HOSTILE_SENDER	"Eve\"\r\n\x01\x1b[31m\\@evil.example"
#define HOSTILE_SUBJECT	"caf\xc3\xa9 \xff\xfe \xc0\xaf \xed\xa0\x80 \x7f end"

static const struct track_rcpt hostile_rcpts[] = {
	{ "bob@example.org", 250, "250 2.0.0 Ok: queued as 4F2" },
	{ "Mallory\r\n@example.org", 550, "550 5.1.1 <x\"y>\x02 unknown" },
};

static struct track_rec
rec_hostile(double t)
{
	struct track_rec	r;

	memset(&r, 0, sizeof(r));
	r.t = t;
	r.session = "a1b2c3d4";
	r.client = "192.0.2.7:40000";
	r.client_addr = "192.0.2.7";
	r.server = "198.51.100.25:25";
	r.direction = "inbound";
	r.helo = "helo\tthere";
	r.sender = HOSTILE_SENDER;
	r.rcpts = hostile_rcpts;
	r.nrcpts = 2;
	r.size = 12345;
	r.message_id = "<id1@evil.example>";
	r.subject = HOSTILE_SUBJECT;
	r.verdict = "clean";
	r.action = "deliver";
	r.score = NAN;
	r.tls = "intercept";
	r.quarantine = NULL;
	r.reply = "250 2.0.0 Ok: queued";
	return r;
}

/* The JSON as text, NUL-terminated, in memory the caller frees. */
static char *
json_of(const struct track_rec *r)
{
	struct buf	b;
	char		*s;

	buf_init(&b, 1 << 24);
	if (track_json(r, &b) == -1 || buf_append(&b, "", 1) == -1) {
		buf_free(&b);
		return NULL;
	}
	s = strdup(buf_head(&b));
	buf_free(&b);
	return s;
}

static void
test_json(void)
{
	static const struct {
		const char	*in;
		const char	*want;	/* the JSON string, quotes included */
	} t[] = {
		{ "plain", "\"plain\"" },
		{ "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "cr\r\nlf", "\"cr\\u000d\\u000alf\"" },
		{ "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"" },
		{ "caf\xc3\xa9", "\"caf\xc3\xa9\"" },
		{ "\xe2\x82\xac\xf0\x9f\x98\x80",
		    "\"\xe2\x82\xac\xf0\x9f\x98\x80\"" },
		{ "x\xffy", "\"x\\ufffdy\"" },
		{ "\xc0\xaf", "\"\\ufffd\\ufffd\"" },		/* overlong */
		/* a surrogate */
		{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },
		{ "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
		{ "\xe2\x82", "\"\\ufffd\\ufffd\"" },		/* cut short */
		{ "", "\"\"" },
	};
	struct track_rec	 r;
	struct track_rcpt	 many[3];
	char			*j, want[256], big[3000];
	json_t			*o;
	json_error_t		 je;
	size_t			 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&r, 0, sizeof(r));
		r.score = NAN;
		r.subject = t[i].in;
		j = json_of(&r);
		snprintf(want, sizeof(want), "\"subject\":%s,", t[i].want);
		CHECK(j != NULL && strstr(j, want) != NULL, "case %zu: %s "
		    "not in %s", i, want, j ? j : "(null)");
		o = j ? json_loads(j, 0, &je) : NULL;
		CHECK(o != NULL, "case %zu: not JSON: %s: %s", i, je.text, j);
		json_decref(o);
		free(j);
	}

	/* The whole object, every field in its place. */
	memset(&r, 0, sizeof(r));
	memset(many, 0, sizeof(many));
	r.t = 1700000000.25;
	r.session = "s1";
	r.sender = "a@b";
	r.rcpts = many;
	r.nrcpts = 1;
	many[0].addr = "c@d";
	many[0].code = 250;
	many[0].reply = "250 ok";
	r.size = 10;
	r.score = 4.5;
	r.quarantine = "q-1";
	j = json_of(&r);
	CHECK(j != NULL && strcmp(j, "{\"t\":1700000000.250,\"session\":\"s1\","
	    "\"client\":\"\",\"client_addr\":\"\",\"server\":\"\","
	    "\"direction\":\"\",\"helo\":\"\",\"sender\":\"a@b\","
	    "\"message_id\":\"\",\"subject\":\"\",\"verdict\":\"\","
	    "\"action\":\"\",\"tls\":\"\",\"quarantine\":\"q-1\","
	    "\"reply\":\"\",\"size\":10,\"score\":4.500,\"recipients\":"
	    "[{\"rcpt\":\"c@d\",\"code\":250,\"reply\":\"250 ok\"}]}") == 0,
	    "object: %s", j ? j : "(null)");
	free(j);

	/* Unknown: score and quarantine null; the hostile record parses
	 * back to what went in where that was UTF-8. */
	r = rec_hostile(1700000000);
	j = json_of(&r);
	o = j ? json_loads(j, 0, &je) : NULL;
	CHECK(o != NULL, "hostile: not JSON: %s: %s", je.text, j);
	CHECK(o && json_is_null(json_object_get(o, "score")), "score null");
	CHECK(o && json_is_null(json_object_get(o, "quarantine")),
	    "quarantine null");
	CHECK(o && strcmp(json_string_value(json_object_get(o, "sender")),
	    HOSTILE_SENDER) == 0, "sender round trip");
	CHECK(o && json_array_size(json_object_get(o, "recipients")) == 2 &&
	    json_integer_value(json_object_get(json_array_get(json_object_get(
	    o, "recipients"), 1), "code")) == 550, "recipients");
	CHECK(j && strstr(j, "\"subject\":\"caf\xc3\xa9 \\ufffd\\ufffd "
	    "\\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \\u007f end\"") != NULL,
	    "subject: %s", j);
	json_decref(o);
	free(j);

	/* A field is cut at TRACK_FIELD_MAX, never inside a character. */
	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	big[TRACK_FIELD_MAX - 1] = '\xc3';
	big[TRACK_FIELD_MAX] = '\xa9';
	memset(&r, 0, sizeof(r));
	r.score = NAN;
	r.subject = big;
	j = json_of(&r);
	o = j ? json_loads(j, 0, &je) : NULL;
	CHECK(o && strlen(json_string_value(json_object_get(o, "subject"))) ==
	    TRACK_FIELD_MAX - 1, "cut: %zu", o ? strlen(json_string_value(
	    json_object_get(o, "subject"))) : 0);
	CHECK(j && strstr(j, "ufffd") == NULL, "cut mid-character");
	json_decref(o);
	free(j);
}

/* The log line: a record too big for log.c's line comes out shorter,
 * still one whole JSON object. */
static void
test_json_log(void)
{
	static struct track_rcpt	 rc[60];
	char				 path[] =
					    "/tmp/spork-unit-tracklog.XXXXXX";
	char				 big[1200], line[4096], *p;
	struct conf			 c;
	struct track_rec		 r;
	json_t				*o;
	json_error_t			 je;
	FILE				*fp;
	size_t				 i;
	int				 fd, saved, n = 0, fitted = 0, err;
	char				 errbuf[256];

	if ((fd = mkstemp(path)) == -1) {
		CHECK(0, "mkstemp: %s", strerror(errno));
		return;
	}
	memset(big, '"', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i < 60; i++) {
		rc[i].addr = "someone.with.a.long.name@example.org";
		rc[i].code = 250;
		rc[i].reply = "250 2.1.5 Ok";
	}
	conf_defaults(&c);
	c.track_db[0] = '\0';
	c.track_json = 1;
	err = track_init(&c, errbuf, sizeof(errbuf));
	CHECK(err == 0, "init without a database: %s", errbuf);

	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	log_init("unit", 0, 1);
	r = rec_hostile(1700000000);
	track_message(&r);		/* fits as it is */
	r.subject = big;		/* 6 bytes a quote: too big */
	r.rcpts = rc;
	r.nrcpts = 60;
	track_message(&r);
	fflush(stderr);
	log_init("unit", 0, 0);
	dup2(saved, 2);
	close(saved);

	{
		struct buf	b;

		buf_init(&b, 4096);
		track_status(&b);
		buf_append(&b, "", 1);
		CHECK(strstr(buf_head(&b), "track.written=0\n") != NULL &&
		    strstr(buf_head(&b), "track.queue=0\n") != NULL,
		    "no database, nothing queued: %s", buf_head(&b));
		buf_free(&b);
	}
	track_shutdown();

	fp = fdopen(fd, "r");
	rewind(fp);
	while (fgets(line, sizeof(line), fp) != NULL) {
		p = strstr(line, " a1b2c3d4 track {");
		CHECK(p != NULL, "line %d: %s", n, line);
		if (p == NULL)
			continue;
		/* What log.c's line holds: the sid, a space, the rest. */
		CHECK(strlen(p + 1) <= 2047 && strcmp(p + strlen(p) - 2,
		    "}\n") == 0, "line %d cut: %zu", n, strlen(p));
		p += strlen(" a1b2c3d4 track ");
		o = json_loads(p, JSON_DISABLE_EOF_CHECK, &je);
		CHECK(o != NULL, "line %d: not JSON: %s: %s", n, je.text, p);
		if (o != NULL && json_object_get(o, "truncated") != NULL) {
			fitted++;
			CHECK(json_integer_value(json_object_get(o,
			    "rcpts_omitted")) > 0, "omitted counted");
		}
		json_decref(o);
		n++;
	}
	CHECK(n == 2 && fitted == 1, "lines %d, fitted %d", n, fitted);
	fclose(fp);
	unlink(path);
}

/* track.NAME's value in a status text. */
static long long
stat_of(const char *name)
{
	struct buf	 b;
	char		 key[64];
	const char	*p;
	long long	 v = -1;

	buf_init(&b, 4096);
	track_status(&b);
	buf_append(&b, "", 1);
	snprintf(key, sizeof(key), "track.%s=", name);
	if ((p = strstr(buf_head(&b), key)) != NULL)
		v = strtoll(p + strlen(key), NULL, 10);
	buf_free(&b);
	return v;
}

static long long
db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	long long	 v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int
track_conf(struct conf *c, const char *dir, unsigned retention,
    size_t max_size)
{
	char	err[256];

	conf_defaults(c);
	snprintf(c->track_db, sizeof(c->track_db), "%s/track.db", dir);
	c->track_retention = retention;
	c->track_max_size = max_size;
	c->track_json = 0;
	if (track_init(c, err, sizeof(err)) == -1) {
		CHECK(0, "track_init: %s", err);
		return -1;
	}
	return 0;
}

static void
rm_db(const char *dir)
{
	char	path[256];

	snprintf(path, sizeof(path), "%s/track.db", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/track.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/track.db-shm", dir);
	unlink(path);
	rmdir(dir);
}

/* A database in a fresh directory made from the template dir, with
 * segments of rows records (so that a test fills several): 0, or -1 with
 * nothing left behind. */
static int
seg_start(char *dir, int rows, unsigned retention, size_t max_size,
    struct conf *c)
{
	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return -1;
	}
	track_segment_rows(rows);
	if (track_conf(c, dir, retention, max_size) == -1) {
		track_segment_rows(0);
		rm_db(dir);
		return -1;
	}
	return 0;
}

/* `sporkctl track ARGS` on the test's database: its exit status, its
 * output in out. */
static int
sporkctl(const char *db, const char *args, char *out, size_t outlen)
{
	char	cmd[1024];
	FILE	*fp;
	size_t	n;
	int	st;

	snprintf(cmd, sizeof(cmd), "%s/../../build/sporkctl -c /nonexistent "
	    "track -D %s %s 2>&1", unit_datadir, db, args);
	if ((fp = popen(cmd, "r")) == NULL)
		return -1;
	n = fread(out, 1, outlen - 1, fp);
	out[n] = '\0';
	st = pclose(fp);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
lines(const char *s)
{
	int	n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* Only printable ASCII and newlines: nothing that drives a terminal. */
static int
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((*s < 0x20 && *s != '\n') || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/* id: the hostile record's, of time now - 10. */
static void
test_sporkctl(const char *dbpath, double now, long long id)
{
	char	ctl[512], out[65536], args[128];
	int	rc;

	snprintf(ctl, sizeof(ctl), "%s/../../build/sporkctl", unit_datadir);
	if (access(ctl, X_OK) == -1) {
		CHECK(0, "%s: %s (make build/sporkctl)", ctl, strerror(errno));
		return;
	}
	rc = sporkctl(dbpath, "", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 2, "list: rc %d: %s", rc, out);
	CHECK(printable(out), "list not escaped: %s", out);
	CHECK(strstr(out, " client=192.0.2.7:40000 from=<Eve\"\\x0d\\x0a"
	    "\\x01\\x1b[31m\\\\@evil.example> rcpts=2 to=<bob@example.org> "
	    "size=12345 verdict=clean action=deliver reply=250") != NULL,
	    "list line: %s", out);

	rc = sporkctl(dbpath, "-f 'eve*EVIL.example'", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1, "-f wildcard: %s", out);
	rc = sporkctl(dbpath, "-f EVE", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 0, "-f exact, no match: %s", out);
	rc = sporkctl(dbpath, "-f USER@example.NET", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1, "-f exact, no case: %s", out);
	rc = sporkctl(dbpath, "-r BOB@example.org", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1, "-r: %s", out);
	rc = sporkctl(dbpath, "-r 'r999@*'", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1, "-r wildcard: %s", out);
	/* The first recipient is in messages, the others in recipients. */
	rc = sporkctl(dbpath, "-r R0@EXAMPLE.com", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1 && strstr(out, "s-newest") != NULL,
	    "-r the first: %s", out);
	rc = sporkctl(dbpath, "-r r5@example.com", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1 && strstr(out, "s-newest") != NULL,
	    "-r a later one: %s", out);
	rc = sporkctl(dbpath, "-r 'MALLORY*'", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1 && strstr(out, "a1b2c3d4") != NULL,
	    "-r wildcard, a later one: %s", out);
	rc = sporkctl(dbpath, "-r 'r*@example.com' -f user@example.net", out,
	    sizeof(out));
	CHECK(rc == 0 && lines(out) == 1, "-r in both tables, once: %s", out);
	rc = sporkctl(dbpath, "-m id1@evil.example", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1, "-m without brackets: %s", out);
	rc = sporkctl(dbpath, "-a 192.0.2.7 -s 1h", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1, "-a -s: %s", out);
	rc = sporkctl(dbpath, "-u '2001-01-01 00:00'", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 0, "-u: %s", out);
	snprintf(args, sizeof(args), "-s %lld -u %lld", (long long)now - 20,
	    (long long)now - 5);
	rc = sporkctl(dbpath, args, out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1 && strstr(out, "a1b2c3d4") != NULL,
	    "-s -u: a time range as ids: %s", out);
	rc = sporkctl(dbpath, "-n 1", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1 && strstr(out, "s-newest") != NULL,
	    "-n 1, newest first: %s", out);
	rc = sporkctl(dbpath, "-s yesterday", out, sizeof(out));
	CHECK(rc == 2, "bad time: rc %d", rc);

	rc = sporkctl(dbpath, "a1b2c3d4", out, sizeof(out));
	CHECK(rc == 0 && printable(out), "show: rc %d: %s", rc, out);
	CHECK(strstr(out, "rcpt         <bob@example.org> code=250 "
	    "reply=250 2.0.0 Ok: queued as 4F2\nrcpt         <Mallory"
	    "\\x0d\\x0a@example.org> code=550 reply=550 5.1.1 <x\"y>\\x02 "
	    "unknown\n") != NULL &&
	    strstr(out, "subject      caf\\xc3\\xa9 \\xff\\xfe") != NULL &&
	    strstr(out, "quarantine   -\n") != NULL &&
	    strstr(out, "recipients   2\n") != NULL, "show: %s", out);
	rc = sporkctl(dbpath, "999999", out, sizeof(out));
	CHECK(rc == 1, "no such message: rc %d", rc);
	snprintf(args, sizeof(args), "%lld", (long long)id);
	rc = sporkctl(dbpath, args, out, sizeof(out));
	CHECK(rc == 0 && strstr(out, "session      a1b2c3d4\n") != NULL &&
	    strstr(out, "recipients   2\n") != NULL, "show %s: %s", args, out);
}

/* The scheduling policy of this process's thread named TRACK_THREAD_NAME
 * (the writer names itself when it starts: waited for up to 2 s); -1 if
 * there is none. */
static int
writer_policy(void)
{
	struct dirent	*de;
	DIR		*d;
	FILE		*f;
	char		 path[300], comm[32];
	int		 tries, policy = -1;

	for (tries = 0; tries < 200 && policy == -1; tries++) {
		if (tries > 0)
			usleep(10000);
		if ((d = opendir("/proc/self/task")) == NULL)
			return -1;
		while (policy == -1 && (de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			    de->d_name);
			if ((f = fopen(path, "r")) == NULL)
				continue;
			if (fgets(comm, sizeof(comm), f) != NULL &&
			    (comm[strcspn(comm, "\n")] = '\0',
			    strcmp(comm, TRACK_THREAD_NAME) == 0))
				policy = sched_getscheduler(atoi(de->d_name));
			fclose(f);
		}
		closedir(d);
	}
	return policy;
}

static void
test_db(void)
{
	static struct track_rcpt many[TRACK_RCPTS_MAX + 5];
	char			 dir[] = "/tmp/spork-unit-track.XXXXXX";
	char			 path[256], names[TRACK_RCPTS_MAX + 5][32];
	struct conf		 c;
	struct track_rec	 r;
	struct stat		 sb;
	sqlite3			*db;
	sqlite3_stmt		*st;
	double			 now = (double)time(NULL);
	long long		 hid = -1;
	size_t			 i;
	int			 policy;

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	if (track_conf(&c, dir, 30 * 86400, 1 << 30) == -1)
		return;
	/* A background thread that never preempts the event loop. */
	policy = writer_policy();
	CHECK(policy == SCHED_BATCH, "the writer thread's policy: %d "
	    "(SCHED_BATCH is %d, -1: no thread named %s)", policy,
	    SCHED_BATCH, TRACK_THREAD_NAME);
	/* In the order of their times, as sessions end. */
	r = rec_hostile(now - 40 * 86400);	/* past retention */
	r.session = "s-old";
	track_message(&r);
	r = rec_hostile(now - 10);
	track_message(&r);
	for (i = 0; i < TRACK_RCPTS_MAX + 5; i++) {
		snprintf(names[i], sizeof(names[i]), "r%zu@example.com", i);
		many[i].addr = names[i];
		many[i].code = 250;
		many[i].reply = "250 ok";
	}
	memset(&r, 0, sizeof(r));
	r.t = now;
	r.session = "s-newest";
	r.sender = "user@example.net";
	r.rcpts = many;
	r.nrcpts = TRACK_RCPTS_MAX + 5;
	r.score = 7.25;
	r.quarantine = "q123";
	track_message(&r);
	track_prune_now();
	CHECK(stat_of("written") == 3 && stat_of("errors") == 0 &&
	    stat_of("dropped") == 0 && stat_of("queue") == 0 &&
	    stat_of("rcpts_truncated") == 1 && stat_of("db_bytes") > 0,
	    "status: written %lld errors %lld", stat_of("written"),
	    stat_of("errors"));
	track_shutdown();

	snprintf(path, sizeof(path), "%s/track.db", dir);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0640,
	    "mode %o", (unsigned)sb.st_mode & 0777);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		CHECK(0, "open %s: %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		rm_db(dir);
		return;
	}
	CHECK(db_int(db, "PRAGMA auto_vacuum") == 2, "auto_vacuum");
	CHECK(db_int(db, "SELECT count(*) FROM messages") == 2,
	    "messages: %lld", db_int(db, "SELECT count(*) FROM messages"));
	CHECK(db_int(db, "SELECT count(*) FROM messages WHERE session = "
	    "'s-old'") == 0, "retention");
	CHECK(db_int(db, "PRAGMA user_version") == 3, "schema 3");
	/* The first recipient in the row, the others numbered from 1. */
	CHECK(db_int(db, "SELECT rcpts FROM messages WHERE session = "
	    "'s-newest'") == TRACK_RCPTS_MAX && db_int(db, "SELECT count(*) "
	    "FROM recipients r JOIN messages m ON r.message = m.id WHERE "
	    "m.session = 's-newest'") == TRACK_RCPTS_MAX - 1 && db_int(db,
	    "SELECT min(n) FROM recipients") == 1 && db_int(db, "SELECT "
	    "max(n) FROM recipients") == TRACK_RCPTS_MAX - 1,
	    "recipients kept");
	CHECK(db_int(db, "SELECT count(*) FROM messages WHERE session = "
	    "'s-newest' AND rcpt = 'r0@example.com' AND rcpt_code = 250 AND "
	    "rcpt_reply = '250 ok'") == 1, "the first recipient in the row");
	/* The id is the time in microseconds. */
	hid = db_int(db, "SELECT id FROM messages WHERE session = "
	    "'a1b2c3d4'");
	CHECK(hid == (long long)((now - 10) * TRACK_ID_PER_SEC) &&
	    db_int(db, "SELECT id FROM messages WHERE session = 's-newest'") ==
	    (long long)(now * TRACK_ID_PER_SEC), "ids: %lld", hid);
	CHECK(db_int(db, "SELECT count(*) FROM recipients WHERE message NOT "
	    "IN (SELECT id FROM messages)") == 0, "no orphans");
	CHECK(db_int(db, "SELECT count(*) FROM messages WHERE score IS NULL "
	    "AND quarantine IS NULL AND session = 'a1b2c3d4'") == 1,
	    "NULLs");
	CHECK(db_int(db, "SELECT count(*) FROM messages WHERE score = 7.25 "
	    "AND quarantine = 'q123'") == 1, "score, quarantine");
	CHECK(db_int(db, "SELECT count(*) FROM messages WHERE sender = "
	    "'EVE\"' || char(13, 10, 1, 27) || '[31m\\@EVIL.example' "
	    "COLLATE NOCASE") == 1, "sender, no case");
	if (sqlite3_prepare_v2(db, "SELECT sender, subject, helo, size, t, "
	    "reply FROM messages WHERE session = 'a1b2c3d4'", -1, &st,
	    NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		CHECK(strcmp((const char *)sqlite3_column_text(st, 0),
		    HOSTILE_SENDER) == 0, "sender bytes");
		CHECK(strcmp((const char *)sqlite3_column_text(st, 1),
		    HOSTILE_SUBJECT) == 0, "subject bytes");
		CHECK(strcmp((const char *)sqlite3_column_text(st, 2),
		    "helo\tthere") == 0, "helo");
		CHECK(sqlite3_column_int64(st, 3) == 12345, "size");
		CHECK(fabs(sqlite3_column_double(st, 4) - (now - 10)) < 0.001,
		    "t");
		CHECK(strcmp((const char *)sqlite3_column_text(st, 5),
		    "250 2.0.0 Ok: queued") == 0, "reply");
	} else
		CHECK(0, "select: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT rcpt, rcpt_code, rcpt_reply, 0 "
	    "FROM messages WHERE session = 'a1b2c3d4' AND rcpts = 2 UNION ALL "
	    "SELECT r.rcpt, r.code, r.reply, r.n FROM recipients r JOIN "
	    "messages m ON r.message = m.id WHERE m.session = 'a1b2c3d4' "
	    "ORDER BY 4", -1, &st, NULL) == SQLITE_OK) {
		for (i = 0; i < 2 && sqlite3_step(st) == SQLITE_ROW; i++)
			CHECK(strcmp((const char *)sqlite3_column_text(st, 0),
			    hostile_rcpts[i].addr) == 0 &&
			    sqlite3_column_int(st, 1) ==
			    hostile_rcpts[i].code &&
			    strcmp((const char *)sqlite3_column_text(st, 2),
			    hostile_rcpts[i].reply) == 0, "rcpt %zu", i);
		CHECK(i == 2, "two recipients");
	}
	sqlite3_finalize(st);
	sqlite3_close(db);

	test_sporkctl(path, now, hid);
	rm_db(dir);
}

/* The largest db + wal seen every millisecond until told to stop. */
struct size_sampler {
	const char		*path, *wal;
	int			 stop;		/* __atomic */
	long long		 max;
};

static void *
size_sample(void *arg)
{
	struct size_sampler	*ss = arg;
	struct stat		 sb, sw;

	while (!__atomic_load_n(&ss->stop, __ATOMIC_RELAXED)) {
		if (stat(ss->path, &sb) == -1)
			sb.st_size = 0;
		if (stat(ss->wal, &sw) == -1)
			sw.st_size = 0;
		if (sb.st_size + sw.st_size > ss->max)
			ss->max = sb.st_size + sw.st_size;
		usleep(1000);
	}
	return NULL;
}

/* Tracking into dir under the bound max, with a thread sampling the
 * files' sizes into ss (path and wal, 256 bytes each, are their names):
 * 0, or -1 with dir removed. */
static int
size_fill_start(struct conf *c, const char *dir, size_t max,
    struct size_sampler *ss, pthread_t *sampler, char *path, char *wal)
{
	if (track_conf(c, dir, 0, max) == -1) {
		rm_db(dir);
		return -1;
	}
	snprintf(path, 256, "%s/track.db", dir);
	snprintf(wal, 256, "%s/track.db-wal", dir);
	memset(ss, 0, sizeof(*ss));
	ss->path = path;
	ss->wal = wal;
	if (pthread_create(sampler, NULL, size_sample, ss) != 0) {
		CHECK(0, "sampler thread");
		track_shutdown();
		rm_db(dir);
		return -1;
	}
	return 0;
}

/* Many records under a small bound: the oldest go, and the files really
 * shrink. */
static void
test_size(void)
{
	const size_t	 max = 256 * 1024;
	struct size_sampler ss;
	pthread_t	 sampler;
	static char	 many_addr[100][32];
	struct track_rcpt many[100];
	char		 dir[] = "/tmp/spork-unit-tracksz.XXXXXX";
	char		 path[256], wal[256], subject[901], sid[32];
	struct conf	 c;
	struct track_rec r;
	struct stat	 sb, sw;
	sqlite3		*db;
	double		 now = (double)time(NULL);
	long long	 n;
	int		 i;

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	if (size_fill_start(&c, dir, max, &ss, &sampler, path, wal) == -1)
		return;
	memset(subject, 's', sizeof(subject) - 1);
	subject[sizeof(subject) - 1] = '\0';
	for (i = 0; i < 100; i++) {
		snprintf(many_addr[i], sizeof(many_addr[i]),
		    "rcpt%d@example.org", i);
		many[i].addr = many_addr[i];
		many[i].code = 250;
		many[i].reply = "250 2.1.5 Ok";
	}
	for (i = 0; i < 3000; i++) {
		r = rec_hostile(now - 3000 + i);
		snprintf(sid, sizeof(sid), "s%d", i);
		r.session = sid;
		r.subject = subject;
		/* a run of 100-recipient mail: a commit holds fewer */
		if (i >= 1500 && i < 1600) {
			r.rcpts = many;
			r.nrcpts = 100;
		}
		track_message(&r);
		if (i % 500 == 499)	/* 500 at a time, each over the bound */
			track_prune_now();
	}
	track_prune_now();
	__atomic_store_n(&ss.stop, 1, __ATOMIC_RELAXED);
	pthread_join(sampler, NULL);
	/* Commits sized to what a checkpoint leaves of the WAL's share
	 * (256 KiB at least) keep both files within the bound all along. */
	CHECK((size_t)ss.max <= max + 256 * 1024, "db and wal reached %lld "
	    "bytes during the fill, bound %zu", ss.max, max + 256 * 1024);
	CHECK(stat(path, &sb) == 0 && (size_t)sb.st_size <= max,
	    "db %lld bytes, bound %zu", (long long)sb.st_size, max);
	if (stat(wal, &sw) == -1)
		sw.st_size = 0;
	CHECK((size_t)(sb.st_size + sw.st_size) <= max,
	    "db and wal %lld bytes", (long long)(sb.st_size + sw.st_size));
	CHECK(stat_of("written") == 3000 && stat_of("dropped") == 0 &&
	    stat_of("errors") == 0 && stat_of("db_bytes") <= (long long)max,
	    "written %lld dropped %lld db_bytes %lld", stat_of("written"),
	    stat_of("dropped"), stat_of("db_bytes"));
	track_shutdown();
	CHECK(stat(path, &sb) == 0 && (size_t)sb.st_size <= max,
	    "after shutdown: db %lld bytes", (long long)sb.st_size);

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK) {
		n = db_int(db, "SELECT count(*) FROM messages");
		CHECK(n > 20 && n < 3000, "kept %lld", n);
		CHECK(db_int(db, "SELECT count(*) FROM messages WHERE "
		    "session = 's2999'") == 1, "the newest kept");
		CHECK(db_int(db, "SELECT count(*) FROM messages WHERE "
		    "session = 's0'") == 0, "the oldest gone");
		CHECK(db_int(db, "SELECT count(*) FROM recipients WHERE "
		    "message NOT IN (SELECT id FROM messages)") == 0,
		    "no orphans");
	} else
		CHECK(0, "open: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	rm_db(dir);
}

/* A writer that does not keep up: past TRACK_QUEUE_MAX, counted drops,
 * the event loop never waits. */
static void
test_overflow(void)
{
	char			dir[] = "/tmp/spork-unit-trackq.XXXXXX";
	struct conf		c;
	struct track_rec	r;
	int			i;

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	if (track_conf(&c, dir, 0, 0) == -1)
		return;
	track_hold(1);
	r = rec_hostile((double)time(NULL));
	for (i = 0; i < TRACK_QUEUE_MAX + 10; i++)
		track_message(&r);
	CHECK(stat_of("queue") == TRACK_QUEUE_MAX && stat_of("dropped") == 10,
	    "queue %lld dropped %lld", stat_of("queue"), stat_of("dropped"));
	track_hold(0);
	track_prune_now();
	CHECK(stat_of("written") == TRACK_QUEUE_MAX && stat_of("queue") == 0,
	    "written %lld", stat_of("written"));
	/* Queued at exit: written, not lost. */
	track_hold(1);
	track_message(&r);
	track_shutdown();
	CHECK(stat_of("written") == TRACK_QUEUE_MAX + 1, "flushed at exit: "
	    "%lld", stat_of("written"));
	rm_db(dir);
}

/* Ids grow with time, and still grow when two records share a
 * microsecond or the clock went back. */
static void
test_ids(void)
{
	static const double	 dt[] = { 0, 0, -60, 0.5 };
	static const long long	 want[] = { 0, 1, 2, 500000 };
	char			 dir[] = "/tmp/spork-unit-trackid.XXXXXX";
	char			 path[256];
	struct conf		 c;
	struct track_rec	 r;
	sqlite3			*db;
	sqlite3_stmt		*st;
	double			 t0 = (double)time(NULL);
	size_t			 i;

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	if (track_conf(&c, dir, 0, 0) == -1)
		return;
	for (i = 0; i < sizeof(dt) / sizeof(dt[0]); i++) {
		r = rec_hostile(t0 + dt[i]);
		track_message(&r);
	}
	track_shutdown();
	snprintf(path, sizeof(path), "%s/track.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK && sqlite3_prepare_v2(db, "SELECT id, t FROM messages "
	    "ORDER BY id", -1, &st, NULL) == SQLITE_OK) {
		for (i = 0; sqlite3_step(st) == SQLITE_ROW; i++)
			CHECK(i < sizeof(dt) / sizeof(dt[0]) &&
			    sqlite3_column_int64(st, 0) == (long long)t0 *
			    TRACK_ID_PER_SEC + want[i] &&
			    sqlite3_column_double(st, 1) == t0 + dt[i],
			    "id %zu: %lld", i, (long long)
			    sqlite3_column_int64(st, 0));
		CHECK(i == sizeof(dt) / sizeof(dt[0]), "%zu records", i);
		sqlite3_finalize(st);
	} else
		CHECK(0, "open: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	rm_db(dir);
}

/* A database of schema 1, as sporkd wrote it before: one index per
 * search and on t, every recipient in recipients. */
static const char track_v1[] =
	"PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;"
	"CREATE TABLE messages (id INTEGER PRIMARY KEY, "
	"t REAL NOT NULL, session TEXT, client TEXT, client_addr TEXT, "
	"server TEXT, direction TEXT, helo TEXT, sender TEXT, size INTEGER, "
	"message_id TEXT, subject TEXT, verdict TEXT, action TEXT, "
	"score REAL, tls TEXT, quarantine TEXT, reply TEXT);"
	"CREATE TABLE recipients (message INTEGER NOT NULL "
	"REFERENCES messages(id), rcpt TEXT, code INTEGER, reply TEXT);"
	"CREATE INDEX messages_t ON messages(t);"
	"CREATE INDEX messages_sender ON messages(sender COLLATE NOCASE);"
	"CREATE INDEX messages_message_id ON messages(message_id);"
	"CREATE INDEX messages_client_addr ON messages(client_addr);"
	"CREATE INDEX recipients_rcpt ON recipients(rcpt COLLATE NOCASE);"
	"CREATE INDEX recipients_message ON recipients(message);"
	"PRAGMA user_version=1;";

/* Three messages (ids not in time order, as a clock set back made them):
 * two recipients, none, one. */
static const char track_v1_rows[] =
	"INSERT INTO messages VALUES (1, 1700000100.25, 'sess0001', "
	"'192.0.2.1:1025', '192.0.2.1', '198.51.100.25:25', 'inbound', "
	"'h1', 'a@example.net', 100, '<m1@example.net>', 'one', 'clean', "
	"'deliver', NULL, 'none', NULL, '250 ok 1');"
	"INSERT INTO messages VALUES (2, 1700000000.5, 'sess0002', "
	"'192.0.2.2:1026', '192.0.2.2', '198.51.100.25:25', 'outbound', "
	"'h2', 'b@example.net', 200, '<m2@example.net>', 'two', 'spam', "
	"'quarantine', 9.5, 'intercept', 'q2', '250 ok 2');"
	"INSERT INTO messages VALUES (3, 1700000200, 'sess0003', "
	"'192.0.2.3:1027', '192.0.2.3', '198.51.100.25:25', 'inbound', "
	"'h3', 'c@example.net', 300, '<m3@example.net>', 'three', 'virus', "
	"'reject', NULL, 'none', NULL, '550 virus');"
	"INSERT INTO recipients VALUES (1, 'x@example.org', 250, '250 x');"
	"INSERT INTO recipients VALUES (3, 'z@example.org', 550, '550 z');"
	"INSERT INTO recipients VALUES (1, 'y@example.org', 450, '450 y');";

static int
exec_sql(sqlite3 *db, const char *sql)
{
	char	*msg = NULL;
	int	 rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	CHECK(rc == SQLITE_OK, "%s", msg != NULL ? msg : "");
	sqlite3_free(msg);
	return rc == SQLITE_OK ? 0 : -1;
}

/* A database an older sporkd made (sql1, then sql2 if not NULL), opened
 * by track_init, one record written (rec_hostile at 1700000300) and the
 * writer stopped: 0, or -1 with dir removed. */
static int
old_db_opened(const char *dir, const char *path, const char *sql1,
    const char *sql2)
{
	struct conf		 c;
	struct track_rec	 r;
	sqlite3			*db = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK || exec_sql(db, sql1) == -1 ||
	    (sql2 != NULL && exec_sql(db, sql2) == -1)) {
		sqlite3_close(db);
		rm_db(dir);
		return -1;
	}
	sqlite3_close(db);
	if (track_conf(&c, dir, 0, 0) == -1) {
		rm_db(dir);
		return -1;
	}
	r = rec_hostile(1700000300);
	track_message(&r);
	track_prune_now();
	CHECK(stat_of("written") == 1 && stat_of("errors") == 0,
	    "written %lld errors %lld after migrating", stat_of("written"),
	    stat_of("errors"));
	track_shutdown();
	return 0;
}

/* sporkd opens a schema-1 database and finds its records under the new
 * schema; a schema newer than its own it refuses. */
static void
test_migrate(void)
{
	char			 dir[] = "/tmp/spork-unit-trackmv.XXXXXX";
	char			 path[256], out[65536], err[256];
	struct conf		 c;
	sqlite3			*db = NULL;
	int			 rc;

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/track.db", dir);
	if (old_db_opened(dir, path, track_v1, track_v1_rows) == -1)
		return;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		CHECK(0, "open: %s", sqlite3_errmsg(db));
		sqlite3_close(db);
		rm_db(dir);
		return;
	}
	CHECK(db_int(db, "PRAGMA user_version") == 3, "user_version %lld",
	    db_int(db, "PRAGMA user_version"));
	CHECK(db_int(db, "SELECT count(*) FROM sqlite_schema WHERE name "
	    "LIKE '%v1' OR name IN ('messages_t', 'recipients_message')") == 0,
	    "schema 1's tables and indexes gone");
	CHECK(db_int(db, "SELECT count(*) FROM messages") == 4 &&
	    db_int(db, "SELECT count(*) FROM recipients") == 2, "rows: %lld "
	    "messages, %lld recipients (y@, and bob's Mallory)", db_int(db,
	    "SELECT count(*) FROM messages"), db_int(db, "SELECT count(*) "
	    "FROM recipients"));
	/* Every field, the id from the time, oldest first. */
	CHECK(db_int(db, "SELECT count(*) FROM messages WHERE "
	    "id = 1700000000500000 AND t = 1700000000.5 AND session = "
	    "'sess0002' AND client = '192.0.2.2:1026' AND client_addr = "
	    "'192.0.2.2' AND server = '198.51.100.25:25' AND direction = "
	    "'outbound' AND helo = 'h2' AND sender = 'b@example.net' AND "
	    "size = 200 AND message_id = '<m2@example.net>' AND subject = "
	    "'two' AND verdict = 'spam' AND action = 'quarantine' AND "
	    "score = 9.5 AND tls = 'intercept' AND quarantine = 'q2' AND "
	    "reply = '250 ok 2' AND rcpts = 0 AND rcpt IS NULL AND "
	    "rcpt_code IS NULL AND rcpt_reply IS NULL") == 1, "no recipient");
	CHECK(db_int(db, "SELECT count(*) FROM messages WHERE "
	    "id = 1700000100250000 AND session = 'sess0001' AND score IS NULL "
	    "AND quarantine IS NULL AND rcpts = 2 AND rcpt = 'x@example.org' "
	    "AND rcpt_code = 250 AND rcpt_reply = '250 x'") == 1 &&
	    db_int(db, "SELECT count(*) FROM recipients WHERE "
	    "message = 1700000100250000 AND n = 1 AND rcpt = 'y@example.org' "
	    "AND code = 450 AND reply = '450 y'") == 1, "two recipients");
	CHECK(db_int(db, "SELECT count(*) FROM messages WHERE "
	    "id = 1700000200000000 AND rcpts = 1 AND rcpt = 'z@example.org' "
	    "AND rcpt_code = 550 AND rcpt_reply = '550 z'") == 1,
	    "one recipient");
	CHECK(db_int(db, "SELECT id FROM messages WHERE session = "
	    "'a1b2c3d4'") == 1700000300000000LL, "written after: its id");
	sqlite3_close(db);

	rc = sporkctl(path, "-r Y@EXAMPLE.ORG", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1 && strstr(out, "sess0001 ") != NULL &&
	    strstr(out, "rcpts=2 to=<x@example.org>") != NULL,
	    "sporkctl -r after migrating: %s", out);
	rc = sporkctl(path, "-s 1700000050 -u 1700000150", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1 && strstr(out, "sess0001 ") != NULL,
	    "sporkctl -s -u after migrating: %s", out);
	rm_db(dir);

	/* A newer sporkd's database: left alone, init fails. */
	if (mkdtemp(strcpy(dir, "/tmp/spork-unit-trackmv.XXXXXX")) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/track.db", dir);
	if (sqlite3_open(path, &db) == SQLITE_OK)
		(void)exec_sql(db, "PRAGMA user_version=4");
	sqlite3_close(db);
	conf_defaults(&c);
	snprintf(c.track_db, sizeof(c.track_db), "%s", path);
	CHECK(track_init(&c, err, sizeof(err)) == -1 &&
	    strstr(err, "schema version 4") != NULL, "newer schema: %s", err);
	rm_db(dir);
}

/* A record of its own: sender, recipients, Message-ID and client from i,
 * the second recipient in recipients. */
static struct track_rec
rec_nth(double t, int i, char bufs[5][64], struct track_rcpt rc[2])
{
	struct track_rec	r = rec_hostile(t);

	snprintf(bufs[0], 64, "s%04d", i);
	snprintf(bufs[1], 64, "from%d@example.net", i);
	snprintf(bufs[2], 64, "<m%d@example.net>", i);
	snprintf(bufs[3], 64, "192.0.2.%d", 100 + i);
	snprintf(bufs[4], 64, "second%d@example.org", i);
	r.session = bufs[0];
	r.sender = bufs[1];
	r.message_id = bufs[2];
	r.client_addr = bufs[3];
	rc[0] = hostile_rcpts[0];
	rc[1].addr = bufs[4];
	rc[1].code = 250;
	rc[1].reply = "250 ok";
	r.rcpts = rc;
	r.nrcpts = 2;
	return r;
}

static long long
seg_indexes(sqlite3 *db, unsigned n)
{
	char	sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_schema WHERE "
	    "type = 'index' AND tbl_name IN ('messages_%u', "
	    "'recipients_%u')", n, n);
	return db_int(db, sql);
}

/* Whether a search's plan uses index name. */
static int
plan_uses(sqlite3 *db, const char *sql, const char *name)
{
	sqlite3_stmt	*st;
	const char	*d;
	char		 q[512];
	int		 found = 0;

	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
		return 0;
	while (sqlite3_step(st) == SQLITE_ROW)
		if ((d = (const char *)sqlite3_column_text(st, 3)) != NULL &&
		    strstr(d, name) != NULL)
			found = 1;
	sqlite3_finalize(st);
	return found;
}

/* Segments of four: two sealed with their indexes, the current one
 * without; the views and sporkctl's searches find records in each. */
static void
test_segments(void)
{
	char			 dir[] = "/tmp/spork-unit-trackseg.XXXXXX";
	char			 path[256], out[65536], args[128];
	char			 bufs[10][5][64];
	struct track_rcpt	 rc[10][2];
	struct conf		 c;
	struct track_rec	 r;
	sqlite3			*db = NULL;
	double			 now = (double)time(NULL);
	int			 i, rcode;

	if (seg_start(dir, 4, 0, 0, &c) == -1)
		return;
	for (i = 0; i < 10; i++) {
		r = rec_nth(now - 100 + i, i, bufs[i], rc[i]);
		track_message(&r);
		if (i % 4 == 3)
			track_prune_now();	/* a commit of four */
	}
	track_prune_now();
	CHECK(stat_of("written") == 10 && stat_of("errors") == 0,
	    "written %lld errors %lld", stat_of("written"),
	    stat_of("errors"));
	track_shutdown();
	track_segment_rows(0);

	snprintf(path, sizeof(path), "%s/track.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		CHECK(0, "open: %s", sqlite3_errmsg(db));
		sqlite3_close(db);
		rm_db(dir);
		return;
	}
	CHECK(db_int(db, "SELECT count(*) FROM segments") == 3 &&
	    db_int(db, "SELECT count(*) FROM segments WHERE rows = 4 AND "
	    "last IS NOT NULL") == 2 && db_int(db, "SELECT n FROM segments "
	    "WHERE rows IS NULL") == 3, "segments: %lld, %lld sealed",
	    db_int(db, "SELECT count(*) FROM segments"), db_int(db,
	    "SELECT count(*) FROM segments WHERE rows IS NOT NULL"));
	CHECK(seg_indexes(db, 1) == 5 && seg_indexes(db, 2) == 5 &&
	    seg_indexes(db, 3) == 0, "indexes: %lld %lld %lld",
	    seg_indexes(db, 1), seg_indexes(db, 2), seg_indexes(db, 3));
	CHECK(db_int(db, "SELECT count(*) FROM messages") == 10 &&
	    db_int(db, "SELECT count(*) FROM recipients") == 10 &&
	    db_int(db, "SELECT count(*) FROM messages_3") == 2,
	    "views: %lld messages", db_int(db, "SELECT count(*) FROM "
	    "messages"));
	CHECK(db_int(db, "SELECT last FROM segments WHERE n = 1") ==
	    db_int(db, "SELECT max(id) FROM messages_1"), "newest id kept");
	/* A search reaches each sealed segment through its index. */
	CHECK(plan_uses(db, "SELECT id FROM messages WHERE sender = 'x' "
	    "COLLATE NOCASE", "messages_1_sender") && plan_uses(db,
	    "SELECT id FROM messages WHERE sender = 'x' COLLATE NOCASE",
	    "messages_2_sender") && plan_uses(db, "SELECT message FROM "
	    "recipients WHERE rcpt = 'x' COLLATE NOCASE", "recipients_2_rcpt"),
	    "sender and recipient searches use the segments' indexes");
	sqlite3_close(db);

	/* sporkctl: one of each segment by each search. */
	for (i = 1; i < 10; i += 4) {
		snprintf(args, sizeof(args), "-f FROM%d@EXAMPLE.NET", i);
		rcode = sporkctl(path, args, out, sizeof(out));
		CHECK(rcode == 0 && lines(out) == 1 && strstr(out,
		    bufs[i][0]) != NULL, "%s: %s", args, out);
		snprintf(args, sizeof(args), "-r second%d@example.org", i);
		rcode = sporkctl(path, args, out, sizeof(out));
		CHECK(rcode == 0 && lines(out) == 1 && strstr(out,
		    bufs[i][0]) != NULL, "%s: %s", args, out);
		snprintf(args, sizeof(args), "-m m%d@example.net", i);
		rcode = sporkctl(path, args, out, sizeof(out));
		CHECK(rcode == 0 && lines(out) == 1 && strstr(out,
		    bufs[i][0]) != NULL, "%s: %s", args, out);
		snprintf(args, sizeof(args), "-a 192.0.2.%d", 100 + i);
		rcode = sporkctl(path, args, out, sizeof(out));
		CHECK(rcode == 0 && lines(out) == 1 && strstr(out,
		    bufs[i][0]) != NULL, "%s: %s", args, out);
		rcode = sporkctl(path, bufs[i][0], out, sizeof(out));
		CHECK(rcode == 0 && strstr(out, "recipients   2\n") != NULL &&
		    strstr(out, bufs[i][4]) != NULL, "show %s: %s",
		    bufs[i][0], out);
	}
	/* Newest first across the segments; a time range spanning two. */
	rcode = sporkctl(path, "-n 3", out, sizeof(out));
	CHECK(rcode == 0 && lines(out) == 3 && strstr(out, "s0009 ") !=
	    NULL && strstr(out, "s0009 ") < strstr(out, "s0008 ") &&
	    strstr(out, "s0008 ") < strstr(out, "s0007 ") &&
	    strstr(out, "s0007 ") != NULL, "newest first: %s", out);
	snprintf(args, sizeof(args), "-s %.0f -u %.0f", now - 100 + 2,
	    now - 100 + 5);
	rcode = sporkctl(path, args, out, sizeof(out));
	CHECK(rcode == 0 && lines(out) == 4 && strstr(out, "s0002 ") !=
	    NULL && strstr(out, "s0005 ") != NULL, "%s: %s", args, out);

	/* A sealing a restart cut short (segment 2 with one index of five
	 * and no count): the writer finishes it. */
	if (sqlite3_open(path, &db) != SQLITE_OK || exec_sql(db, "DROP INDEX "
	    "messages_2_sender; DROP INDEX recipients_2_rcpt; UPDATE segments "
	    "SET rows = NULL, last = NULL WHERE n = 2") == -1) {
		sqlite3_close(db);
		rm_db(dir);
		return;
	}
	sqlite3_close(db);
	if (track_conf(&c, dir, 0, 0) == -1) {
		rm_db(dir);
		return;
	}
	track_prune_now();
	track_shutdown();
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK) {
		CHECK(db_int(db, "SELECT rows FROM segments WHERE n = 2") == 4 &&
		    seg_indexes(db, 2) == 5 && db_int(db, "SELECT n FROM "
		    "segments WHERE rows IS NULL") == 3 && db_int(db,
		    "SELECT count(*) FROM messages") == 10, "sealing resumed: "
		    "%lld rows, %lld indexes", db_int(db, "SELECT rows FROM "
		    "segments WHERE n = 2"), seg_indexes(db, 2));
	} else
		CHECK(0, "open: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	rm_db(dir);
}

/* Retention over segments: a sealed segment past it goes whole, one that
 * straddles it stays until its newest record passes; the current
 * segment's old rows go one by one, and it is sealed once its oldest is
 * 1/32 of the retention old. */
static void
test_segments_retention(void)
{
	char			 dir[] = "/tmp/spork-unit-trackret.XXXXXX";
	char			 path[256], bufs[8][5][64];
	struct track_rcpt	 rc[8][2];
	static const int	 age[] = { 7200, 7100, 7000, 6900, 4000, 3900,
				    10, 0 };
	struct conf		 c;
	struct track_rec	 r;
	sqlite3			*db = NULL;
	double			 now = (double)time(NULL);
	int			 i;

	/* The writer's first pass (at start) meets an empty database. */
	if (seg_start(dir, 4, 3600, 0, &c) == -1)
		return;
	snprintf(path, sizeof(path), "%s/track.db", dir);
	track_hold(1);
	for (i = 0; i < 8; i++) {
		r = rec_nth(now - age[i], i, bufs[i], rc[i]);
		track_message(&r);
		if (i == 3) {
			track_hold(0);
			track_prune_now();
			track_hold(1);
		}
	}
	track_prune_now();
	CHECK(stat_of("written") == 8 && stat_of("errors") == 0,
	    "written %lld errors %lld", stat_of("written"),
	    stat_of("errors"));
	track_shutdown();
	track_segment_rows(0);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK) {
		/* Segment 1 (7200-6900 s old) past the 3600 s: gone whole;
		 * segment 2 (4000 s to now) stays, its two old ones too. */
		CHECK(db_int(db, "SELECT count(*) FROM sqlite_schema WHERE "
		    "name IN ('messages_1', 'recipients_1')") == 0 &&
		    db_int(db, "SELECT count(*) FROM messages") == 4 &&
		    db_int(db, "SELECT count(*) FROM messages WHERE session "
		    "= 's0004'") == 1, "sealed segments: %lld kept",
		    db_int(db, "SELECT count(*) FROM messages"));
	} else
		CHECK(0, "open: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	rm_db(dir);

	/* The current segment: old rows go, the rest is sealed (its oldest
	 * is over 3600/32 s old). */
	if (seg_start(strcpy(dir, "/tmp/spork-unit-trackret.XXXXXX"), 8, 3600,
	    0, &c) == -1)
		return;
	snprintf(path, sizeof(path), "%s/track.db", dir);
	for (i = 0; i < 4; i++) {
		r = rec_nth(now - (i < 2 ? 7200 - i : i == 2 ? 200 : 0), i,
		    bufs[i], rc[i]);
		track_message(&r);
	}
	track_prune_now();
	track_shutdown();
	track_segment_rows(0);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK) {
		CHECK(db_int(db, "SELECT count(*) FROM messages") == 2 &&
		    db_int(db, "SELECT count(*) FROM recipients") == 2 &&
		    db_int(db, "SELECT count(*) FROM messages WHERE session "
		    "IN ('s0000', 's0001')") == 0, "current segment: %lld "
		    "kept", db_int(db, "SELECT count(*) FROM messages"));
		CHECK(db_int(db, "SELECT rows FROM segments WHERE n = 1") ==
		    2 && seg_indexes(db, 1) == 5 && db_int(db, "SELECT n "
		    "FROM segments WHERE rows IS NULL") == 2,
		    "sealed for its age: %lld rows", db_int(db, "SELECT rows "
		    "FROM segments WHERE n = 1"));
	} else
		CHECK(0, "open: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	rm_db(dir);
}

/* A bound that holds several segments (1 MiB each at least), filled
 * three times over: the oldest segments go whole, the files stay within
 * the bound, the newest records stay. */
static void
test_segments_size(void)
{
	const size_t	 max = 8 * 1024 * 1024, wal = max / 8;
	struct size_sampler ss;
	pthread_t	 sampler;
	char		 dir[] = "/tmp/spork-unit-tracksg.XXXXXX";
	char		 path[256], walpath[256], subject[901], sid[32];
	struct conf	 c;
	struct track_rec r;
	sqlite3		*db;
	double		 now = (double)time(NULL);
	int		 i, n = 24000;

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	if (size_fill_start(&c, dir, max, &ss, &sampler, path, walpath) ==
	    -1)
		return;
	memset(subject, 's', sizeof(subject) - 1);
	subject[sizeof(subject) - 1] = '\0';
	for (i = 0; i < n; i++) {
		r = rec_hostile(now - n + i);
		snprintf(sid, sizeof(sid), "s%d", i);
		r.session = sid;
		r.subject = subject;
		track_message(&r);
		if (i % 2000 == 1999)
			track_prune_now();
	}
	track_prune_now();
	__atomic_store_n(&ss.stop, 1, __ATOMIC_RELAXED);
	pthread_join(sampler, NULL);
	CHECK(stat_of("written") == n && stat_of("dropped") == 0 &&
	    stat_of("errors") == 0, "written %lld dropped %lld errors %lld",
	    stat_of("written"), stat_of("dropped"), stat_of("errors"));
	CHECK((size_t)ss.max <= max + wal, "db and wal reached %lld bytes, "
	    "bound %zu", ss.max, max + wal);
	track_shutdown();
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK) {
		long long kept = db_int(db, "SELECT count(*) FROM messages");

		CHECK(kept > 1000 && kept < n, "kept %lld of %d", kept, n);
		CHECK(db_int(db, "SELECT min(n) FROM segments") > 1 &&
		    db_int(db, "SELECT count(*) FROM segments WHERE rows IS "
		    "NOT NULL") >= 2, "oldest segments dropped, %lld sealed "
		    "left", db_int(db, "SELECT count(*) FROM segments WHERE "
		    "rows IS NOT NULL"));
		CHECK(db_int(db, "SELECT count(*) FROM messages WHERE session "
		    "= 's23999'") == 1 && db_int(db, "SELECT count(*) FROM "
		    "messages WHERE session = 's0'") == 0, "the newest kept, "
		    "the oldest gone");
		CHECK(db_int(db, "SELECT count(*) FROM recipients WHERE "
		    "message NOT IN (SELECT id FROM messages)") == 0,
		    "no orphans");
	} else
		CHECK(0, "open: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	rm_db(dir);
}

/* A database of schema 2, as sporkd wrote it before segments: one pair
 * of tables with their indexes. */
static const char track_v2[] =
	"PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;"
	"CREATE TABLE messages (id INTEGER PRIMARY KEY, "
	"t REAL NOT NULL, session TEXT, client TEXT, client_addr TEXT, "
	"server TEXT, direction TEXT, helo TEXT, sender TEXT, size INTEGER, "
	"message_id TEXT, subject TEXT, verdict TEXT, action TEXT, "
	"score REAL, tls TEXT, quarantine TEXT, reply TEXT, "
	"rcpts INTEGER NOT NULL, rcpt TEXT, rcpt_code INTEGER, "
	"rcpt_reply TEXT);"
	"CREATE TABLE recipients (message INTEGER NOT NULL, "
	"n INTEGER NOT NULL, rcpt TEXT, code INTEGER, reply TEXT, "
	"PRIMARY KEY (message, n)) WITHOUT ROWID;"
	"CREATE INDEX messages_sender ON messages(sender COLLATE NOCASE);"
	"CREATE INDEX messages_message_id ON messages(message_id);"
	"CREATE INDEX messages_client_addr ON messages(client_addr);"
	"CREATE INDEX messages_rcpt ON messages(rcpt COLLATE NOCASE);"
	"CREATE INDEX recipients_rcpt ON recipients(rcpt COLLATE NOCASE);"
	"INSERT INTO messages VALUES (1700000000000000, 1700000000, "
	"'sess0001', '192.0.2.1:1025', '192.0.2.1', '198.51.100.25:25', "
	"'inbound', 'h1', 'a@example.net', 100, '<m1@example.net>', 'one', "
	"'clean', 'deliver', NULL, 'none', NULL, '250 ok 1', 2, "
	"'x@example.org', 250, '250 x');"
	"INSERT INTO recipients VALUES (1700000000000000, 1, "
	"'y@example.org', 450, '450 y');"
	"INSERT INTO messages VALUES (1700000100000000, 1700000100, "
	"'sess0002', '192.0.2.2:1026', '192.0.2.2', '198.51.100.25:25', "
	"'inbound', 'h2', 'b@example.net', 200, '<m2@example.net>', 'two', "
	"'virus', 'reject', NULL, 'none', NULL, '550 virus', 0, NULL, NULL, "
	"NULL);"
	"PRAGMA user_version=2;";

/* sporkd opens a schema-2 database: its tables become segment 1, sealed
 * as they are (indexes and all, nothing copied), and are searched with
 * the new records. */
static void
test_migrate_v2(void)
{
	char			 dir[] = "/tmp/spork-unit-trackv2.XXXXXX";
	char			 path[256], out[65536];
	sqlite3			*db = NULL;
	int			 rc;

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/track.db", dir);
	if (old_db_opened(dir, path, track_v2, NULL) == -1)
		return;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK) {
		CHECK(db_int(db, "PRAGMA user_version") == 3, "user_version "
		    "%lld", db_int(db, "PRAGMA user_version"));
		CHECK(db_int(db, "SELECT count(*) FROM segments WHERE n = 1 "
		    "AND rows = 2 AND last = 1700000100000000") == 1 &&
		    db_int(db, "SELECT n FROM segments WHERE rows IS NULL") ==
		    2 && seg_indexes(db, 1) == 5, "segment 1 sealed as it was");
		CHECK(db_int(db, "SELECT count(*) FROM messages") == 3 &&
		    db_int(db, "SELECT count(*) FROM recipients") == 2 &&
		    db_int(db, "SELECT count(*) FROM messages_2") == 1 &&
		    db_int(db, "SELECT id FROM messages WHERE session = "
		    "'a1b2c3d4'") == 1700000300000000LL, "views: %lld "
		    "messages", db_int(db, "SELECT count(*) FROM messages"));
	} else
		CHECK(0, "open: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	rc = sporkctl(path, "-r Y@EXAMPLE.ORG", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 1 && strstr(out, "sess0001 ") != NULL,
	    "sporkctl -r after migrating: %s", out);
	rc = sporkctl(path, "-n 5", out, sizeof(out));
	CHECK(rc == 0 && lines(out) == 3 && strstr(out, "a1b2c3d4 ") !=
	    NULL && strstr(out, "a1b2c3d4 ") < strstr(out, "sess0002 ") &&
	    strstr(out, "sess0002 ") < strstr(out, "sess0001 ") &&
	    strstr(out, "sess0001 ") != NULL, "newest first: %s", out);
	rm_db(dir);
}

/* A schema-2 database near its bound becomes one large segment 1: the
 * size pass deletes its oldest rows instead of dropping it whole (which
 * would take every record of before the upgrade). */
static void
test_migrate_v2_full(void)
{
	char			 dir[] = "/tmp/spork-unit-trackv2f.XXXXXX";
	char			 path[256], subject[901];
	struct conf		 c;
	struct track_rec	 r;
	struct stat		 sb;
	sqlite3			*db = NULL;
	double			 now = (double)time(NULL);
	long long		 old;
	int			 i;

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/track.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    exec_sql(db, track_v2) == -1 || exec_sql(db, "WITH RECURSIVE "
	    "c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 4500) "
	    "INSERT INTO messages SELECT 1700000200000000 + i, "
	    "1700000200 + i / 1e6, 'old' || i, '192.0.2.1:1025', '192.0.2.1', "
	    "'198.51.100.25:25', 'inbound', 'h', 'a' || i || '@example.net', "
	    "100, '<m' || i || '@example.net>', hex(randomblob(450)), "
	    "'clean', 'deliver', NULL, 'none', NULL, '250 ok', 1, "
	    "'r' || i || '@example.org', 250, '250 ok' FROM c") == -1) {
		sqlite3_close(db);
		rm_db(dir);
		return;
	}
	sqlite3_close(db);
	if (track_conf(&c, dir, 0, 8 * 1024 * 1024) == -1) {
		rm_db(dir);
		return;
	}
	memset(subject, 's', sizeof(subject) - 1);
	subject[sizeof(subject) - 1] = '\0';
	for (i = 0; i < 1500; i++) {
		r = rec_hostile(now - 1500 + i);
		r.subject = subject;
		track_message(&r);
	}
	track_prune_now();
	CHECK(stat_of("written") == 1500 && stat_of("errors") == 0,
	    "written %lld errors %lld", stat_of("written"), stat_of("errors"));
	track_shutdown();
	CHECK(stat(path, &sb) == 0 && sb.st_size <= 8 * 1024 * 1024,
	    "db %lld bytes", (long long)sb.st_size);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK) {
		old = db_int(db, "SELECT count(*) FROM messages_1");
		CHECK(old >= 1500 && old < 4502 && db_int(db, "SELECT rows "
		    "FROM segments WHERE n = 1") == old && db_int(db,
		    "SELECT count(*) FROM messages WHERE session = 'old4500'") ==
		    1 && db_int(db, "SELECT count(*) FROM messages WHERE "
		    "session = 'sess0001'") == 0, "the upgraded segment kept "
		    "%lld of 4502, its newest", old);
	} else
		CHECK(0, "open: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	rm_db(dir);
}

/* sporkd stopped with a segment still being sealed: after the restart a
 * record whose clock went back still gets an id above every other. */
static void
test_segments_restart_ids(void)
{
	char			 dir[] = "/tmp/spork-unit-trackri.XXXXXX";
	char			 path[256];
	struct conf		 c;
	struct track_rec	 r;
	sqlite3			*db = NULL;
	double			 now = (double)time(NULL);
	int			 i;

	if (seg_start(dir, 4, 0, 0, &c) == -1)
		return;
	snprintf(path, sizeof(path), "%s/track.db", dir);
	/* Written and sealed at exit, the sealing's steps not taken. */
	track_hold(1);
	r = rec_hostile(now);
	for (i = 0; i < 4; i++)
		track_message(&r);
	track_shutdown();
	if (track_conf(&c, dir, 0, 0) == -1) {
		track_segment_rows(0);
		rm_db(dir);
		return;
	}
	r = rec_hostile(now - 1000);
	r.session = "s-back";
	track_message(&r);
	track_prune_now();
	track_shutdown();
	track_segment_rows(0);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK) {
		CHECK(db_int(db, "SELECT id FROM messages WHERE session = "
		    "'s-back'") > db_int(db, "SELECT max(id) FROM messages "
		    "WHERE session <> 's-back'") && db_int(db, "SELECT rows "
		    "FROM segments WHERE n = 1") == 4, "ids after a restart: "
		    "%lld after %lld", db_int(db, "SELECT id FROM messages "
		    "WHERE session = 's-back'"), db_int(db, "SELECT max(id) "
		    "FROM messages WHERE session <> 's-back'"));
	} else
		CHECK(0, "open: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	rm_db(dir);
}

void
test_track(void)
{
	test_json();
	test_json_log();
	test_db();
	test_ids();
	test_migrate();
	test_migrate_v2();
	test_migrate_v2_full();
	test_segments();
	test_segments_restart_ids();
	test_segments_retention();
	test_segments_size();
	test_size();
	test_overflow();
}
