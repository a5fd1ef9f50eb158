/* SPDX-License-Identifier: MIT */
/*
 * Message tracking: the record of each message, in an SQLite database and
 * as one JSON log line. The event loop's side (track_message) copies the
 * record into one allocation and queues it under a mutex; it never runs
 * SQL and never waits for the writer. The writer, a thread of its own and
 * the only user of the database connection, inserts what is queued in
 * transactions as large as the WAL's share allows (track_wal_hook) and
 * keeps the database within track_retention and track_max_size. Strings
 * are the sender's words: stored as they came (cut at TRACK_FIELD_MAX),
 * escaped in the JSON line; readers escape what they print. A full queue
 * or a failing disk costs records, counted, never the session.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "track.h"

#define TRACK_PRUNE_EVERY	60	/* seconds between retention passes */
#define TRACK_TXN_MAX		1000	/* rows a delete commit */
#define TRACK_TXN_BYTES_MAX	(2 * 1024 * 1024) /* records' bytes an insert
					   commit */
#define TRACK_YIELD_US		200	/* the writer's work between yields */
#define TRACK_PROGRESS_OPS	1000	/* SQLite's steps between looks */
#define TRACK_YIELD_QUEUE	4	/* ... unless 1/this of the queue waits */
#define TRACK_VACUUM_PASSES	64	/* commits of freed pages a pass */
#define TRACK_TXN_PAGES		6	/* pages a row dirties, the first guess:
					   its table's, 4 index leaves, a split */
#define TRACK_TXN_GROW		2	/* a commit at most this many times
					   the units of the last */
#define TRACK_PRUNE_AT_PCT	80	/* of the db's share: a size pass */
#define TRACK_TARGET_PCT	60	/* ... stops under this % of it */
#define TRACK_BATCH_MS		250	/* a record waits at most this long */
#define TRACK_BATCH_MIN		256	/* or until this many are queued */
#define TRACK_BATCH_MAX		1024	/* ... more with a large WAL share */
#define TRACK_CACHE_KIB		16384	/* the writer's page cache, at most */
#define TRACK_WAL_MIN		262144	/* the WAL's share of track_max_size */
#define TRACK_ERRLOG_EVERY	60	/* seconds between error log lines */
#define TRACK_BUSY_MS		1000	/* waiting on a reader's lock */
#define TRACK_WAL_MAX		67108864 /* ... at most, and without a bound */
#define TRACK_CKPT_MAX		(4 * 1024 * 1024) /* WAL bytes that start a
					   checkpoint, at most */
#define TRACK_LOG_LINE		2040	/* what log.c's line holds */
#define TRACK_SCHEMA_VERSION	3
#define TRACK_SEG_PARTS		32	/* a segment: at most 1/this of the
					 * db's share and of track_retention */
#define TRACK_SEG_ROWS_MAX	32768	/* records a segment (a search scans
					 * the current one): track_seal_size */
#define TRACK_SEG_BYTES_MIN	(1024 * 1024)	/* ... and its size, at least:
					 * a segment is 7 b-trees */
#define TRACK_SEGS_MAX		128	/* segments: a query of the views
					 * plans each (SQLite takes 500) */
#define TRACK_SQL_MAX		(1024 * 1024)	/* the views' text */
#define TRACK_ID_T_MAX		1e11	/* ids for times before this (year 5138) */
#define TRACK_XSTR(x)		#x
#define TRACK_STR(x)		TRACK_XSTR(x)

/* The text fields, in the order of the columns and of the JSON object. */
enum track_field {
	TF_SESSION, TF_CLIENT, TF_CLIENT_ADDR, TF_SERVER, TF_DIRECTION,
	TF_HELO, TF_SENDER, TF_MESSAGE_ID, TF_SUBJECT, TF_VERDICT, TF_ACTION,
	TF_TLS, TF_QUARANTINE, TF_REPLY, TF_N
};

struct track_item_rcpt {
	const char	*addr;
	size_t		 alen;
	int		 code;
	const char	*reply;
	size_t		 rlen;
};

/* One queued record: the struct, its recipients, then its strings, in
 * one allocation. */
struct track_item {
	struct track_item	*next;
	double			 t;
	double			 score;
	size_t			 size;
	size_t			 bytes;		/* this allocation's */
	const char		*f[TF_N];
	size_t			 flen[TF_N];
	size_t			 nrcpts;
	struct track_item_rcpt	 rcpts[];
};

/* Budgets that make the JSON line fit log.c's line: the whole record
 * first, then shorter strings and fewer recipients. */
struct track_fit {
	size_t	str_max;	/* output bytes per string, 0: no limit */
	size_t	rcpts_max;
};

static void	*track_writer(void *);
static long long track_prune_at(void);
static long long track_prune_size(void);
static size_t	 track_cut(const char *, size_t);
static int	 track_json_fit(const struct track_rec *, struct buf *,
		    const struct track_fit *);

static const struct {
	const char	*name;
	size_t		 off;
} track_fields[TF_N] = {
#define F(i, n)	[i] = { #n, offsetof(struct track_rec, n) }
	F(TF_SESSION, session), F(TF_CLIENT, client),
	F(TF_CLIENT_ADDR, client_addr), F(TF_SERVER, server),
	F(TF_DIRECTION, direction), F(TF_HELO, helo), F(TF_SENDER, sender),
	F(TF_MESSAGE_ID, message_id), F(TF_SUBJECT, subject),
	F(TF_VERDICT, verdict), F(TF_ACTION, action), F(TF_TLS, tls),
	F(TF_QUARANTINE, quarantine), F(TF_REPLY, reply),
#undef F
};

static const struct track_fit track_fits[] = {
	{ 0, TRACK_RCPTS_MAX }, { 200, 8 }, { 64, 2 }, { 24, 0 },
};

/*
 * Schema 3 (track.h has it in words). Each record costs as few b-tree
 * inserts as its searches allow: the id is its time, so a time range is a
 * range of the table itself (no index on t); the first recipient lives in
 * the message's row, so one-recipient mail (most mail) writes one table
 * row; only the second recipient on goes to recipients, keyed by
 * (message, n) without a rowid of its own.
 *
 * The records are kept in segments, each a pair of tables. The current
 * one has no index at all: an insert is a row appended, and a search
 * scans it (TRACK_SEG_ROWS_MAX records at most). Full, it gets the
 * search indexes in one CREATE INDEX each, a sort and pages written in
 * order, which costs a third of what the same entries cost one random
 * insert at a time, and a new segment takes the records. Pruning drops
 * the oldest segments whole instead of deleting rows and index entries
 * one by one. The views messages and recipients join the segments for
 * queries by hand; sporkctl and the console search segment by segment
 * (track_read.h), since a query with a subquery on the views is planned
 * once per segment for every segment.
 */
#define TRACK_MSG_COLS	"id, t, session, client, client_addr, server, " \
	"direction, helo, sender, size, message_id, subject, verdict, " \
	"action, score, tls, quarantine, reply, rcpts, rcpt, rcpt_code, " \
	"rcpt_reply"
#define TRACK_RCPT_COLS	"message, n, rcpt, code, reply"

/* rows: NULL for the current segment, its records once it is sealed;
 * last: its newest id, once sealed. */
static const char track_schema[] =
	"CREATE TABLE IF NOT EXISTS segments (n INTEGER PRIMARY KEY, "
	"rows INTEGER, last INTEGER);";

/* Segment %1$u's tables, made current. */
#define TRACK_SEG_TABLES \
	"CREATE TABLE messages_%1$u (id INTEGER PRIMARY KEY, " \
	"t REAL NOT NULL, session TEXT, client TEXT, client_addr TEXT, " \
	"server TEXT, direction TEXT, helo TEXT, sender TEXT, size INTEGER, " \
	"message_id TEXT, subject TEXT, verdict TEXT, action TEXT, " \
	"score REAL, tls TEXT, quarantine TEXT, reply TEXT, " \
	"rcpts INTEGER NOT NULL, rcpt TEXT, rcpt_code INTEGER, " \
	"rcpt_reply TEXT);" \
	"CREATE TABLE recipients_%1$u (message INTEGER NOT NULL, " \
	"n INTEGER NOT NULL, rcpt TEXT, code INTEGER, reply TEXT, " \
	"PRIMARY KEY (message, n)) WITHOUT ROWID;" \
	"INSERT INTO segments (n) VALUES (%1$u);"

#define TRACK_SEG_DROP \
	"DROP TABLE messages_%1$u; DROP TABLE recipients_%1$u; " \
	"DELETE FROM segments WHERE n = %1$u;"

/* The values in the order of the text fields (enum track_field); the
 * migration from schema 1 selects its columns in this order too. Into
 * the current segment, %1$u. */
#define TRACK_INSERT_MSG \
	"INSERT INTO messages_%1$u (id, t, session, client, client_addr, " \
	"server, direction, helo, sender, message_id, subject, verdict, " \
	"action, tls, quarantine, reply, size, score, rcpts, rcpt, rcpt_code, " \
	"rcpt_reply) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " \
	"?, ?, ?, ?, ?, ?)"
#define TRACK_INSERT_RCPT \
	"INSERT INTO recipients_%1$u (message, n, rcpt, code, reply) " \
	"VALUES (?, ?, ?, ?, ?)"
/* Oldest first, in segment %1$u (the current one, or one too large to
 * drop: track_seg_oversized): the last id of the chunk (the oldest
 * messages under id ?1 whose rows, a message's and its recipients' from
 * the second on, come to ?2; the first message whatever its rows), then
 * ranges of both tables' keys up to it. */
#define TRACK_DELETE_UPTO \
	"SELECT coalesce(max(CASE WHEN r <= ?2 THEN id END), min(id)) FROM " \
	"(SELECT id, sum(CASE WHEN rcpts > 1 THEN rcpts ELSE 1 END) OVER " \
	"(ORDER BY id) AS r FROM (SELECT id, rcpts FROM messages_%1$u " \
	"WHERE id < ?1 ORDER BY id LIMIT ?2))"
#define TRACK_DELETE_RCPTS \
	"DELETE FROM recipients_%1$u WHERE message <= ?1"
#define TRACK_DELETE_MSGS \
	"DELETE FROM messages_%1$u WHERE id <= ?1"

/* Schema 2: one pair of tables with its indexes, sealed segment 1 as it
 * is (after track_schema). */
static const char track_v2_rename[] =
	"ALTER TABLE messages RENAME TO messages_1;"
	"ALTER TABLE recipients RENAME TO recipients_1;"
	"INSERT INTO segments (n, rows, last) SELECT 1, count(*), max(id) "
	"FROM messages_1;";

/* Schema 1 (one index per search and on t, every recipient in
 * recipients), renamed aside and copied oldest first. */
static const char track_v1_aside[] =
	"DROP INDEX IF EXISTS messages_sender;"
	"DROP INDEX IF EXISTS messages_message_id;"
	"DROP INDEX IF EXISTS messages_client_addr;"
	"DROP INDEX IF EXISTS recipients_rcpt;"
	"ALTER TABLE messages RENAME TO messages_v1;"
	"ALTER TABLE recipients RENAME TO recipients_v1;";
static const char track_v1_msgs[] =
	"SELECT m.id, m.t, m.session, m.client, m.client_addr, m.server, "
	"m.direction, m.helo, m.sender, m.message_id, m.subject, m.verdict, "
	"m.action, m.tls, m.quarantine, m.reply, m.size, m.score, "
	"(SELECT count(*) FROM recipients_v1 r WHERE r.message = m.id), "
	"f.rcpt, f.code, f.reply FROM messages_v1 m LEFT JOIN recipients_v1 f "
	"ON f.rowid = (SELECT min(rowid) FROM recipients_v1 r "
	"WHERE r.message = m.id) ORDER BY m.t, m.id";
static const char track_v1_rcpts[] =
	"SELECT rcpt, code, reply FROM recipients_v1 WHERE message = ? "
	"ORDER BY rowid LIMIT -1 OFFSET 1";
static const char track_v1_drop[] =
	"DROP TABLE recipients_v1; DROP TABLE messages_v1;";

/* Everything the two threads share is under mu; the connection and the
 * statements are the writer's alone once it runs. */
static struct {
	pthread_mutex_t		 mu;
	pthread_cond_t		 wake;		/* to the writer */
	pthread_cond_t		 done;		/* from the writer */
	pthread_t		 thread;
	int			 running;
	int			 json;
	int			 stopping;
	int			 held;
	unsigned long long	 prune_asked;	/* passes asked for */
	unsigned long long	 prune_done;	/* the last asked one run */
	struct track_item	*head, *tail;
	size_t			 queued;
	size_t			 qbytes;	/* their allocations */
	struct timespec		 first;		/* when the queue must go */
	size_t			 wal_limit;	/* the WAL's share of max_size */
	size_t			 db_budget;	/* the database's */
	size_t			 batch_min;	/* records that wake the writer */
	unsigned long long	 written, dropped, errors, rcpts_cut;
	unsigned long long	 db_bytes;
	/* the writer's */
	size_t			 ckpt_pages;	/* WAL pages: a checkpoint */
	size_t			 txn_pages;	/* ... a commit's, aimed at */
	size_t			 txn_bytes;	/* records' bytes an insert commit */
	size_t			 del_rows;	/* rows a delete commit */
	sqlite3			*db;
	sqlite3_stmt		*ins_msg, *ins_rcpt;
	sqlite3_stmt		*del_upto, *del_rcpts, *del_msgs;
	sqlite3_int64		 last_id;	/* the greatest id written */
	unsigned		 seg;		/* the current segment */
	unsigned		 nsegs;		/* segments, the current one too */
	size_t			 seg_msgs;	/* records in the current one */
	size_t			 seg_bytes;	/* ... their size, queued */
	size_t			 seal_bytes;	/* the size that fills it */
	sqlite3_int64		 seg_first;	/* its oldest id, 0: empty */
	size_t			 seal_rows;	/* records that fill it */
	size_t			 seal_fixed;	/* a test's seal_rows */
	time_t			 seal_retry;	/* after a failed seal */
	unsigned		 sealing;	/* the segment being indexed */
	int			 seal_step;	/* its next step */
	long long		 seal_us;	/* its steps' time so far */
	int			 segs_full;	/* TRACK_SEGS_MAX logged */
	double			 retention;
	unsigned long long	 max_size;
	long long		 page_size;
	time_t			 last_errlog;
	struct timespec		 last_yield;
	unsigned long long	 unlogged;
} T = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
};

/* -------------------------------------------------------------- JSON */

static int
cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* Bytes of the valid UTF-8 sequence at p (n bytes there), 0 if none:
 * no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char	c = p[0];

	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && cont(p[1]) ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || !cont(p[1]) || !cont(p[2]))
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || !cont(p[1]) || !cont(p[2]) || !cont(p[3]))
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

/* The length kept of a field: at most TRACK_FIELD_MAX bytes, not ending
 * inside a UTF-8 sequence. */
static size_t
track_cut(const char *s, size_t len)
{
	size_t	n, k;

	if (len <= TRACK_FIELD_MAX)
		return len;
	n = TRACK_FIELD_MAX;
	for (k = 0; k < 3 && n > 0 && cont((unsigned char)s[n]); k++)
		n--;
	if (cont((unsigned char)s[n]))
		n = TRACK_FIELD_MAX;	/* not UTF-8 anyway */
	return n;
}

/* A JSON string of s, at most outmax bytes between the quotes (0: no
 * limit), never cutting an escape or a character; *cut set if cut. */
static int
json_str(struct buf *b, const char *str, size_t outmax, int *cut)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*s = (const unsigned char *)(str ? str : "");
	char			 tmp[256], u[8];
	size_t			 len, i = 0, t = 0, out = 0, n, ul;

	len = track_cut((const char *)s, strlen((const char *)s));
	if (buf_append(b, "\"", 1) == -1)
		return -1;
	while (i < len) {
		if (s[i] < 0x20 || s[i] == 0x7f) {
			memcpy(u, "\\u00", 4);
			u[4] = hex[s[i] >> 4];
			u[5] = hex[s[i] & 15];
			ul = 6;
			n = 1;
		} else if (s[i] == '"' || s[i] == '\\') {
			u[0] = '\\';
			u[1] = (char)s[i];
			ul = 2;
			n = 1;
		} else if (s[i] < 0x80) {
			u[0] = (char)s[i];
			ul = n = 1;
		} else if ((n = utf8_seq(s + i, len - i)) > 0) {
			memcpy(u, s + i, n);
			ul = n;
		} else {
			memcpy(u, "\\ufffd", 6);
			ul = 6;
			n = 1;
		}
		if (outmax > 0 && out + ul > outmax) {
			*cut = 1;
			break;
		}
		if (t + ul > sizeof(tmp)) {
			if (buf_append(b, tmp, t) == -1)
				return -1;
			t = 0;
		}
		memcpy(tmp + t, u, ul);
		t += ul;
		out += ul;
		i += n;
	}
	if (buf_append(b, tmp, t) == -1)
		return -1;
	return buf_append(b, "\"", 1);
}

static int
track_json_fit(const struct track_rec *r, struct buf *b,
    const struct track_fit *fit)
{
	const char	*v;
	size_t		 i, n;
	int		 cut = 0;

	if (buf_printf(b, "{\"t\":%.3f", isfinite(r->t) ? r->t : 0.0) == -1)
		return -1;
	for (i = 0; i < TF_N; i++) {
		v = *(const char *const *)(const void *)
		    ((const char *)r + track_fields[i].off);
		if (buf_printf(b, ",\"%s\":", track_fields[i].name) == -1)
			return -1;
		if (i == TF_QUARANTINE && (v == NULL || v[0] == '\0')) {
			if (buf_append(b, "null", 4) == -1)
				return -1;
		} else if (json_str(b, v, fit->str_max, &cut) == -1)
			return -1;
	}
	if (buf_printf(b, ",\"size\":%zu", r->size) == -1)
		return -1;
	if (isfinite(r->score)) {
		if (buf_printf(b, ",\"score\":%.3f", r->score) == -1)
			return -1;
	} else if (buf_append(b, ",\"score\":null", 13) == -1)
		return -1;
	if (buf_append(b, ",\"recipients\":[", 15) == -1)
		return -1;
	n = r->rcpts != NULL ? r->nrcpts : 0;
	for (i = 0; i < n && i < fit->rcpts_max; i++) {
		if (buf_append(b, i ? ",{\"rcpt\":" : "{\"rcpt\":", i ? 9 : 8)
		    == -1 || json_str(b, r->rcpts[i].addr, fit->str_max,
		    &cut) == -1 || buf_printf(b, ",\"code\":%d,\"reply\":",
		    r->rcpts[i].code) == -1 || json_str(b, r->rcpts[i].reply,
		    fit->str_max, &cut) == -1 || buf_append(b, "}", 1) == -1)
			return -1;
	}
	if (buf_append(b, "]", 1) == -1)
		return -1;
	if (i < n && buf_printf(b, ",\"rcpts_omitted\":%zu", n - i) == -1)
		return -1;
	if (cut && buf_append(b, ",\"truncated\":true", 17) == -1)
		return -1;
	return buf_append(b, "}", 1);
}

int
track_json(const struct track_rec *r, struct buf *b)
{
	return track_json_fit(r, b, &track_fits[0]);
}

/* The log line: the whole record when it fits log.c's line, else the
 * first shorter form that does. */
static void
track_log(const struct track_rec *r)
{
	const char	*sid = r->session != NULL && r->session[0] != '\0' ?
			    r->session : NULL;
	size_t		 room, i;
	struct buf	 b;

	if (sid != NULL && strlen(sid) > 64)
		sid = NULL;	/* not one of ours; it is in the JSON */
	room = TRACK_LOG_LINE - sizeof("track ") - (sid ? strlen(sid) + 1 : 0);
	for (i = 0; i < sizeof(track_fits) / sizeof(track_fits[0]); i++) {
		buf_init(&b, room);
		if (track_json_fit(r, &b, &track_fits[i]) == 0 &&
		    buf_append(&b, "", 1) == 0) {
			log_info(sid, "track %s", buf_head(&b));
			buf_free(&b);
			return;
		}
		buf_free(&b);
	}
}

/* ------------------------------------------------------------- queue */

static struct track_item *
track_copy(const struct track_rec *r)
{
	struct track_item	*it;
	const char		*v;
	size_t			 len[TF_N], alen, rlen, total, n, i;
	char			*p;

	n = r->rcpts != NULL ? r->nrcpts : 0;
	if (n > TRACK_RCPTS_MAX)
		n = TRACK_RCPTS_MAX;
	total = sizeof(*it) + n * sizeof(it->rcpts[0]);
	for (i = 0; i < TF_N; i++) {
		v = *(const char *const *)(const void *)
		    ((const char *)r + track_fields[i].off);
		len[i] = v != NULL ? track_cut(v, strlen(v)) : 0;
		total += len[i] + 1;
	}
	for (i = 0; i < n; i++) {
		v = r->rcpts[i].addr;
		total += (v != NULL ? track_cut(v, strlen(v)) : 0) + 1;
		v = r->rcpts[i].reply;
		total += (v != NULL ? track_cut(v, strlen(v)) : 0) + 1;
	}
	if ((it = malloc(total)) == NULL)
		return NULL;
	it->next = NULL;
	it->bytes = total;
	it->t = r->t;
	it->score = r->score;
	it->size = r->size;
	it->nrcpts = n;
	p = (char *)&it->rcpts[n];
	for (i = 0; i < TF_N; i++) {
		v = *(const char *const *)(const void *)
		    ((const char *)r + track_fields[i].off);
		memcpy(p, v != NULL ? v : "", len[i]);
		p[len[i]] = '\0';
		it->f[i] = p;
		it->flen[i] = len[i];
		p += len[i] + 1;
	}
	for (i = 0; i < n; i++) {
		v = r->rcpts[i].addr;
		alen = v != NULL ? track_cut(v, strlen(v)) : 0;
		memcpy(p, v != NULL ? v : "", alen);
		p[alen] = '\0';
		it->rcpts[i].addr = p;
		it->rcpts[i].alen = alen;
		p += alen + 1;
		v = r->rcpts[i].reply;
		rlen = v != NULL ? track_cut(v, strlen(v)) : 0;
		memcpy(p, v != NULL ? v : "", rlen);
		p[rlen] = '\0';
		it->rcpts[i].reply = p;
		it->rcpts[i].rlen = rlen;
		it->rcpts[i].code = r->rcpts[i].code;
		p += rlen + 1;
	}
	return it;
}

void
track_message(const struct track_rec *r)
{
	struct track_item	*it = NULL;
	int			 cut;

	if (T.json)
		track_log(r);
	if (!T.running)
		return;
	cut = r->rcpts != NULL && r->nrcpts > TRACK_RCPTS_MAX;
	/* Copied before the lock: the writer never waits on malloc. */
	pthread_mutex_lock(&T.mu);
	if (T.queued >= TRACK_QUEUE_MAX) {
		T.dropped++;
		pthread_mutex_unlock(&T.mu);
		return;
	}
	pthread_mutex_unlock(&T.mu);
	if ((it = track_copy(r)) == NULL) {
		pthread_mutex_lock(&T.mu);
		T.dropped++;
		pthread_mutex_unlock(&T.mu);
		return;
	}
	pthread_mutex_lock(&T.mu);
	if (T.queued >= TRACK_QUEUE_MAX ||
	    T.qbytes + it->bytes > TRACK_QUEUE_BYTES) {
		T.dropped++;
		pthread_mutex_unlock(&T.mu);
		free(it);
		return;
	}
	T.qbytes += it->bytes;
	if (T.tail != NULL)
		T.tail->next = it;
	else {
		T.head = it;
		/* The batch goes out TRACK_BATCH_MS after its first. */
		clock_gettime(CLOCK_MONOTONIC, &T.first);
		T.first.tv_nsec += TRACK_BATCH_MS * 1000000L;
		if (T.first.tv_nsec >= 1000000000L) {
			T.first.tv_sec++;
			T.first.tv_nsec -= 1000000000L;
		}
	}
	T.tail = it;
	T.queued++;
	if (cut)
		T.rcpts_cut++;
	/* The writer wakes for the first of a batch (to time it) and for
	 * a full one, not for each record. */
	if (T.queued == 1 || T.queued == T.batch_min)
		pthread_cond_signal(&T.wake);
	pthread_mutex_unlock(&T.mu);
}

int
track_wanted(void)
{
	return T.running || T.json;
}

void
track_status(struct buf *b)
{
	unsigned long long	w, d, e, q, s, c;

	pthread_mutex_lock(&T.mu);
	w = T.written;
	d = T.dropped;
	e = T.errors;
	q = T.queued;
	s = T.db_bytes;
	c = T.rcpts_cut;
	pthread_mutex_unlock(&T.mu);
	buf_printf(b, "track.written=%llu\ntrack.dropped=%llu\n"
	    "track.errors=%llu\ntrack.queue=%llu\ntrack.db_bytes=%llu\n"
	    "track.rcpts_truncated=%llu\n", w, d, e, q, s, c);
}

/* ------------------------------------------------------------ writer */

/* One SQLite failure: counted always, logged at most once a minute with
 * the number of those not logged. The writer's thread only. */
static void
track_fail(const char *what)
{
	time_t	now = time(NULL);

	pthread_mutex_lock(&T.mu);
	T.errors++;
	pthread_mutex_unlock(&T.mu);
	if (now - T.last_errlog < TRACK_ERRLOG_EVERY) {
		T.unlogged++;
		return;
	}
	log_warn(NULL, "track error=\"%s: %s\" db=%s unlogged_errors=%llu",
	    what, T.db != NULL ? sqlite3_errmsg(T.db) : "no database",
	    T.db != NULL ? sqlite3_db_filename(T.db, "main") : "",
	    T.unlogged);
	T.last_errlog = now;
	T.unlogged = 0;
}

static int
track_exec(const char *sql)
{
	if (sqlite3_exec(T.db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		track_fail(sql);
		return -1;
	}
	return 0;
}

/* The one integer a query (a pragma) answers; -1 on failure. */
static long long
track_int(const char *sql)
{
	sqlite3_stmt	*st;
	long long	 v = -1;

	if (sqlite3_prepare_v2(T.db, sql, -1, &st, NULL) != SQLITE_OK) {
		track_fail(sql);
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		track_fail(sql);
	sqlite3_finalize(st);
	return v;
}

/* Bytes the pages in use take (free pages excluded), or the file's pages
 * with all != 0. */
static long long
track_bytes(int all)
{
	long long	pages, free_pages = 0;

	if ((pages = track_int("PRAGMA page_count")) < 0 ||
	    (!all && (free_pages = track_int("PRAGMA freelist_count")) < 0))
		return -1;
	return (pages - free_pages) * T.page_size;
}

/* The id of a record of time t: its microsecond, or the one after the
 * last id when that is not later (two records in one microsecond, a
 * clock set back), so that ids grow with time and a time range is a
 * range of ids. */
static sqlite3_int64
track_id(double t)
{
	sqlite3_int64	id = 0;

	if (isfinite(t) && t > 0 && t < TRACK_ID_T_MAX)
		id = (sqlite3_int64)(t * TRACK_ID_PER_SEC);
	if (id <= T.last_id)
		id = T.last_id + 1;
	return T.last_id = id;
}

static int
track_insert(const struct track_item *it)
{
	sqlite3_stmt	*m = T.ins_msg, *r = T.ins_rcpt;
	sqlite3_int64	 id = track_id(it->t);
	size_t		 i;
	int		 col = 1;

	sqlite3_reset(m);
	sqlite3_bind_int64(m, col++, id);
	sqlite3_bind_double(m, col++, it->t);
	for (i = 0; i < TF_N; i++) {
		if (i == TF_QUARANTINE && it->flen[i] == 0)
			sqlite3_bind_null(m, col++);
		else
			sqlite3_bind_text(m, col++, it->f[i], (int)it->flen[i],
			    SQLITE_STATIC);
	}
	sqlite3_bind_int64(m, col++, (sqlite3_int64)it->size);
	if (isfinite(it->score))
		sqlite3_bind_double(m, col++, it->score);
	else
		sqlite3_bind_null(m, col++);
	sqlite3_bind_int64(m, col++, (sqlite3_int64)it->nrcpts);
	if (it->nrcpts > 0) {
		sqlite3_bind_text(m, col++, it->rcpts[0].addr,
		    (int)it->rcpts[0].alen, SQLITE_STATIC);
		sqlite3_bind_int(m, col++, it->rcpts[0].code);
		sqlite3_bind_text(m, col++, it->rcpts[0].reply,
		    (int)it->rcpts[0].rlen, SQLITE_STATIC);
	} else {
		sqlite3_bind_null(m, col++);
		sqlite3_bind_null(m, col++);
		sqlite3_bind_null(m, col++);
	}
	if (sqlite3_step(m) != SQLITE_DONE)
		return -1;
	for (i = 1; i < it->nrcpts; i++) {
		sqlite3_reset(r);
		sqlite3_bind_int64(r, 1, id);
		sqlite3_bind_int64(r, 2, (sqlite3_int64)i);
		sqlite3_bind_text(r, 3, it->rcpts[i].addr,
		    (int)it->rcpts[i].alen, SQLITE_STATIC);
		sqlite3_bind_int(r, 4, it->rcpts[i].code);
		sqlite3_bind_text(r, 5, it->rcpts[i].reply,
		    (int)it->rcpts[i].rlen, SQLITE_STATIC);
		if (sqlite3_step(r) != SQLITE_DONE)
			return -1;
	}
	return 0;
}

static size_t
track_txn_clamp(size_t n, size_t cap)
{
	return n < 1 ? 1 : n > cap ? cap : n;
}

/*
 * SQLite's autocheckpoint is a WAL hook; this one does what it does, a
 * passive checkpoint once the WAL holds T.ckpt_pages, at half the WAL's
 * share: commits of at most T.txn_pages (a quarter) then keep the file
 * within it. (Legal here: the hook runs after the commit let go of its
 * lock, and SQLite's own default hook checkpoints the same way.)
 */
static int
track_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)arg;
	if ((size_t)pages >= T.ckpt_pages)
		(void)sqlite3_wal_checkpoint_v2(db, name,
		    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

/* Before a commit's BEGIN: its page count starts at 0. */
static void
track_pages_reset(void)
{
	int	cur, hi;

	(void)sqlite3_db_status(T.db, SQLITE_DBSTATUS_CACHE_WRITE, &cur, &hi,
	    1);
}

/*
 * After its COMMIT: the units (records' bytes, rows) a commit should hold
 * to write T.txn_pages, from this one's n units and the pages the pager
 * wrote for them (exactly the frames it added to the WAL, checkpoints
 * and restarts aside), cap at most. It grows at most TRACK_TXN_GROW
 * times a step, as the pages a unit rise with the trees' depth, and only
 * after a commit of most of max units: the short last one of a batch
 * says little.
 */
static size_t
track_pages_learn(size_t max, size_t n, size_t cap)
{
	int	pages = 0, hi;
	size_t	fit;

	if (n == 0 || sqlite3_db_status(T.db, SQLITE_DBSTATUS_CACHE_WRITE,
	    &pages, &hi, 0) != SQLITE_OK || pages <= 0)
		return max;
	fit = n * T.txn_pages / (size_t)pages;
	if (fit > max * TRACK_TXN_GROW)
		fit = max * TRACK_TXN_GROW;
	if (n < max / 4 * 3 && fit > max)
		fit = max;
	return track_txn_clamp(fit, cap);
}

/* ---------------------------------------------------------- segments */

static int	track_execf(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
static int	track_preparef(sqlite3_stmt **, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static int
track_execf(const char *fmt, ...)
{
	char	sql[1024];
	va_list	ap;
	int	len;

	va_start(ap, fmt);
	len = vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(sql)) {
		track_fail("statement too long");
		return -1;
	}
	return track_exec(sql);
}

static int
track_preparef(sqlite3_stmt **st, const char *fmt, ...)
{
	char	sql[1024];
	va_list	ap;
	int	len;

	sqlite3_finalize(*st);
	*st = NULL;
	va_start(ap, fmt);
	len = vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(sql) ||
	    sqlite3_prepare_v2(T.db, sql, -1, st, NULL) != SQLITE_OK) {
		track_fail("prepare");
		return -1;
	}
	return 0;
}

/* The writer's statements, on the current segment's tables. */
static int
track_seg_prepare(void)
{
	unsigned	n = T.seg;

	if (track_preparef(&T.ins_msg, TRACK_INSERT_MSG, n) == -1 ||
	    track_preparef(&T.ins_rcpt, TRACK_INSERT_RCPT, n) == -1 ||
	    track_preparef(&T.del_upto, TRACK_DELETE_UPTO, n) == -1 ||
	    track_preparef(&T.del_rcpts, TRACK_DELETE_RCPTS, n) == -1 ||
	    track_preparef(&T.del_msgs, TRACK_DELETE_MSGS, n) == -1)
		return -1;
	return 0;
}

/* The views messages and recipients made again over the segments there
 * are, oldest first, inside the caller's transaction. */
static int
track_views(void)
{
	struct buf	 m, r;
	sqlite3_stmt	*st = NULL;
	unsigned	 n;
	int		 i, rc, bad = 0;

	buf_init(&m, TRACK_SQL_MAX);
	buf_init(&r, TRACK_SQL_MAX);
	if (sqlite3_prepare_v2(T.db, "SELECT n FROM segments ORDER BY n", -1,
	    &st, NULL) != SQLITE_OK) {
		track_fail("segments");
		return -1;
	}
	bad |= buf_printf(&m, "DROP VIEW IF EXISTS messages; "
	    "DROP VIEW IF EXISTS recipients; CREATE VIEW messages AS ");
	bad |= buf_printf(&r, "; CREATE VIEW recipients AS ");
	for (i = 0; (rc = sqlite3_step(st)) == SQLITE_ROW; i++) {
		n = (unsigned)sqlite3_column_int64(st, 0);
		bad |= buf_printf(&m, "%sSELECT " TRACK_MSG_COLS
		    " FROM messages_%u", i > 0 ? " UNION ALL " : "", n);
		bad |= buf_printf(&r, "%sSELECT " TRACK_RCPT_COLS
		    " FROM recipients_%u", i > 0 ? " UNION ALL " : "", n);
	}
	sqlite3_finalize(st);
	bad |= buf_append(&m, buf_head(&r), buf_used(&r));
	bad |= buf_append(&m, "", 1);
	if (rc != SQLITE_DONE || i == 0 || bad)
		track_fail("segments' views");
	else if (track_exec(buf_head(&m)) == 0) {
		buf_free(&m);
		buf_free(&r);
		return 0;
	}
	buf_free(&m);
	buf_free(&r);
	return -1;
}

/*
 * What fills a segment: 1/TRACK_SEG_PARTS of the database's share of
 * track_max_size (the records' size as queued, their indexes aside), so
 * that a size pass drops a small part of what is kept, but
 * TRACK_SEG_BYTES_MIN at least (each of a segment's tables and indexes
 * takes a page however few its records: a database too small for one
 * such segment keeps everything in the current one, unindexed, and
 * prunes it row by row), or TRACK_SEG_ROWS_MAX records. Past
 * TRACK_SEG_PARTS segments' worth, a segment holds that share of the
 * records there are, so that a database without a size bound keeps
 * about TRACK_SEG_PARTS segments once retention prunes it, and as it
 * grows their count grows with the logarithm of its records: a query
 * through the views plans every segment, and one with a subquery on
 * them plans it once per segment.
 */
static void
track_seal_size(void)
{
	long long	rows;
	size_t		n = T.seal_fixed > 0 ? T.seal_fixed : TRACK_SEG_ROWS_MAX;

	T.seal_bytes = T.max_size > 0 ? T.db_budget / TRACK_SEG_PARTS :
	    SIZE_MAX;
	if (T.seal_bytes < TRACK_SEG_BYTES_MIN)
		T.seal_bytes = TRACK_SEG_BYTES_MIN;
	if (T.seal_fixed == 0 && (rows = track_int("SELECT "
	    "coalesce(sum(rows), 0) FROM segments")) >= 0 &&
	    (size_t)rows / TRACK_SEG_PARTS > n)
		n = (size_t)rows / TRACK_SEG_PARTS;
	T.seal_rows = n;
}

/*
 * Sealing segment n, a step at a time: each index in a transaction of
 * its own (CREATE INDEX reads the segment once, sorts, and writes the
 * index's pages in order), then its count and newest id, which make it
 * sealed. IF NOT EXISTS: a sealing cut short by a restart goes on where
 * it stopped.
 */
#define TRACK_SEAL_STEPS	6

static int
track_seal_sql(unsigned n, int step)
{
	switch (step) {
	case 0:
		return track_execf("CREATE INDEX IF NOT EXISTS "
		    "messages_%1$u_sender ON messages_%1$u(sender COLLATE "
		    "NOCASE)", n);
	case 1:
		return track_execf("CREATE INDEX IF NOT EXISTS "
		    "messages_%1$u_message_id ON messages_%1$u(message_id)", n);
	case 2:
		return track_execf("CREATE INDEX IF NOT EXISTS "
		    "messages_%1$u_client_addr ON messages_%1$u(client_addr)",
		    n);
	case 3:
		return track_execf("CREATE INDEX IF NOT EXISTS "
		    "messages_%1$u_rcpt ON messages_%1$u(rcpt COLLATE NOCASE)",
		    n);
	case 4:
		return track_execf("CREATE INDEX IF NOT EXISTS "
		    "recipients_%1$u_rcpt ON recipients_%1$u(rcpt COLLATE "
		    "NOCASE)", n);
	default:
		return track_execf("UPDATE segments SET rows = (SELECT "
		    "count(*) FROM messages_%1$u), last = (SELECT max(id) FROM "
		    "messages_%1$u) WHERE n = %1$u", n);
	}
}

/*
 * The next step of the segment being sealed, if there is one: the writer
 * takes one between commits of records, so a segment's indexes are a few
 * short bursts of work instead of one long one. On failure the step is
 * tried again TRACK_ERRLOG_EVERY seconds later; until the last step the
 * segment is searched without its indexes and is not pruned.
 */
static void
track_seal_step(void)
{
	struct timespec	t0, t1;
	long long	rows;
	char		sql[64];

	if (T.sealing == 0 || time(NULL) < T.seal_retry)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (track_seal_sql(T.sealing, T.seal_step) == -1) {
		T.seal_retry = time(NULL) + TRACK_ERRLOG_EVERY;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	T.seal_us += (long long)(t1.tv_sec - t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000;
	if (++T.seal_step < TRACK_SEAL_STEPS)
		return;
	snprintf(sql, sizeof(sql), "SELECT rows FROM segments WHERE n = %u",
	    T.sealing);
	rows = track_int(sql);
	log_info(NULL, "track segment=%u sealed records=%lld segments=%u "
	    "ms=%lld", T.sealing, rows, T.nsegs, T.seal_us / 1000);
	T.sealing = 0;
	track_seal_size();
}

/* Every step of the segment being sealed: 0 when none is left. */
static int
track_seal_finish(void)
{
	while (T.sealing != 0) {
		track_seal_step();
		if (T.sealing != 0 && time(NULL) < T.seal_retry)
			return -1;
	}
	return 0;
}

/*
 * A new segment takes the records (its tables and the views, in one
 * transaction: a reader sees the one layout or the other), and the one
 * that was current is sealed by the steps that follow. A segment still
 * being sealed is finished first. On failure all stays as it was and the
 * next try comes TRACK_ERRLOG_EVERY seconds later.
 */
static int
track_seal(void)
{
	unsigned	old = T.seg;

	if (T.seg_msgs == 0 || time(NULL) < T.seal_retry ||
	    track_seal_finish() == -1)
		return -1;
	if (T.nsegs >= TRACK_SEGS_MAX) {
		if (!T.segs_full)
			log_warn(NULL, "track segments=%u: at the most there "
			    "may be; the current one grows without indexes",
			    T.nsegs);
		T.segs_full = 1;
		return -1;
	}
	if (track_exec("BEGIN") == -1)
		goto fail;
	if (track_execf(TRACK_SEG_TABLES, old + 1) == -1 ||
	    track_views() == -1 || track_exec("COMMIT") == -1) {
		(void)sqlite3_exec(T.db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	T.seg = old + 1;
	T.nsegs++;
	T.seg_msgs = 0;
	T.seg_bytes = 0;
	T.seg_first = 0;
	T.segs_full = 0;
	T.sealing = old;
	T.seal_step = 0;
	T.seal_us = 0;
	(void)track_seg_prepare();
	return 0;
fail:
	T.seal_retry = time(NULL) + TRACK_ERRLOG_EVERY;
	return -1;
}

/* The oldest segment but the current one: 1 and its number, records and
 * newest id (-1 and 0 for one still being sealed: a failed step left
 * it so); 0 when all there is is the current one; -1 on failure. */
static int
track_seg_oldest(unsigned *n, long long *rows, sqlite3_int64 *last)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(T.db, "SELECT n, coalesce(rows, -1), "
	    "coalesce(last, 0) FROM segments WHERE n <> ? ORDER BY n LIMIT 1",
	    -1, &st, NULL) != SQLITE_OK) {
		track_fail("segments");
		return -1;
	}
	sqlite3_bind_int64(st, 1, T.seg);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*n = (unsigned)sqlite3_column_int64(st, 0);
		*rows = sqlite3_column_int64(st, 1);
		*last = sqlite3_column_int64(st, 2);
	} else if (rc != SQLITE_DONE)
		track_fail("segments");
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Segment n (not the current one) goes whole, its tables and their
 * indexes (their pages free for the next records): its records (rows, or
 * counted for one being sealed), or -1. */
static long long
track_seg_drop(unsigned n, long long rows)
{
	char	sql[64];

	if (track_exec("BEGIN") == -1)
		return -1;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM messages_%u", n);
	if ((rows < 0 && (rows = track_int(sql)) < 0) ||
	    track_execf(TRACK_SEG_DROP, n) == -1 || track_views() == -1 ||
	    track_exec("COMMIT") == -1) {
		(void)sqlite3_exec(T.db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	T.nsegs--;
	if (n == T.sealing)
		T.sealing = 0;
	return rows;
}

/* Records from *itp in one transaction, as many as make T.txn_bytes of
 * them (one at least; what a record takes in pages follows its size, not
 * its rows: a hundred recipients are smaller than one long subject), *itp
 * moved past them; on failure none of them is kept. */
static void
track_write_txn(struct track_item **itp)
{
	struct track_item	*it = *itp;
	unsigned long long	 n = 0;
	sqlite3_int64		 first = 0;
	size_t			 bytes = 0;
	int			 ok;

	track_pages_reset();
	/* statements a failed prepare after a seal left out */
	ok = (T.ins_msg != NULL || track_seg_prepare() == 0) &&
	    track_exec("BEGIN") == 0;
	for (; it != NULL && (n == 0 || bytes < T.txn_bytes);
	    it = it->next, n++) {
		bytes += it->bytes;
		if (ok && track_insert(it) == -1) {
			track_fail("insert");
			ok = 0;
		}
		if (first == 0)
			first = T.last_id;
	}
	*itp = it;
	/* The bindings point into the batch, freed by the caller. */
	sqlite3_reset(T.ins_msg);
	sqlite3_clear_bindings(T.ins_msg);
	sqlite3_reset(T.ins_rcpt);
	sqlite3_clear_bindings(T.ins_rcpt);
	if (ok && track_exec("COMMIT") == -1)
		ok = 0;
	if (!ok && !sqlite3_get_autocommit(T.db))
		(void)sqlite3_exec(T.db, "ROLLBACK", NULL, NULL, NULL);
	if (ok) {
		pthread_mutex_lock(&T.mu);
		T.written += n;
		pthread_mutex_unlock(&T.mu);
		T.txn_bytes = track_pages_learn(T.txn_bytes, bytes,
		    TRACK_TXN_BYTES_MAX);
		if (T.seg_first == 0)
			T.seg_first = first;
		T.seg_msgs += n;
		T.seg_bytes += bytes;
	}
}

/* The batch in transactions of T.txn_bytes, pruning between them
 * when near the bound: a small track_max_size holds fewer records than a
 * batch may carry. */
static void
track_write(struct track_item *batch)
{
	struct track_item	*it = batch, *next;
	long long		 deleted = 0;

	while (it != NULL) {
		track_write_txn(&it);
		if (T.seg_msgs >= T.seal_rows || T.seg_bytes >= T.seal_bytes)
			(void)track_seal();
		else
			track_seal_step();
		if (it != NULL && T.max_size > 0 &&
		    track_bytes(0) > track_prune_at())
			deleted += track_prune_size();
	}
	for (it = batch; it != NULL; it = next) {
		next = it->next;
		free(it);
	}
	if (deleted > 0)
		log_info(NULL, "track pruned=%lld db_bytes=%lld", deleted,
		    track_bytes(1));
}

/*
 * Deletes segment seg's oldest messages with ids under before, as many
 * as make T.del_rows rows (one at least), with their recipients, in one
 * transaction: how many messages, or -1. The current segment has no
 * index to update: each row deleted is a row. A sealed segment's rows go
 * this way only when it is too large to drop whole (track_prune_size);
 * its count goes down with them.
 */
static long long
track_delete(unsigned seg, sqlite3_int64 before)
{
	sqlite3_stmt	*own[3] = { NULL, NULL, NULL };
	sqlite3_stmt	*st[3] = { T.del_upto, T.del_rcpts, T.del_msgs };
	sqlite3_int64	 upto = 0;
	long long	 n = 0, rows = 0;
	size_t		 i;
	int		 rc;
	char		 sql[64];

	if (seg != T.seg) {
		if (track_preparef(&own[0], TRACK_DELETE_UPTO, seg) == -1 ||
		    track_preparef(&own[1], TRACK_DELETE_RCPTS, seg) == -1 ||
		    track_preparef(&own[2], TRACK_DELETE_MSGS, seg) == -1) {
			n = -1;
			goto done;
		}
		for (i = 0; i < 3; i++)
			st[i] = own[i];
	}
	track_pages_reset();
	if (track_exec("BEGIN") == -1) {
		n = -1;
		goto done;
	}
	for (i = 0; i < 3; i++) {
		sqlite3_reset(st[i]);
		if (i == 0) {
			sqlite3_bind_int64(st[i], 1, before);
			sqlite3_bind_int64(st[i], 2, (sqlite3_int64)T.del_rows);
		} else
			sqlite3_bind_int64(st[i], 1, upto);
		rc = sqlite3_step(st[i]);
		if (i == 0 && rc == SQLITE_ROW) {
			if (sqlite3_column_type(st[i], 0) == SQLITE_NULL)
				break;		/* nothing that old */
			upto = sqlite3_column_int64(st[i], 0);
		} else if (rc != SQLITE_DONE) {
			track_fail("delete");
			sqlite3_reset(st[i]);
			(void)sqlite3_exec(T.db, "ROLLBACK", NULL, NULL, NULL);
			n = -1;
			goto done;
		} else {
			n = sqlite3_changes(T.db);
			rows += n;
		}
		sqlite3_reset(st[i]);
	}
	sqlite3_reset(st[0]);
	if ((seg != T.seg && n > 0 && track_execf("UPDATE segments SET rows = "
	    "rows - %lld WHERE n = %u", n, seg) == -1) ||
	    track_exec("COMMIT") == -1) {
		(void)sqlite3_exec(T.db, "ROLLBACK", NULL, NULL, NULL);
		n = -1;
		goto done;
	}
	T.del_rows = track_pages_learn(T.del_rows, (size_t)rows,
	    TRACK_TXN_MAX);
	if (seg == T.seg && n > 0) {
		T.seg_bytes = T.seg_msgs > (size_t)n ? T.seg_bytes /
		    T.seg_msgs * (T.seg_msgs - (size_t)n) : 0;
		T.seg_msgs = (size_t)n < T.seg_msgs ? T.seg_msgs - (size_t)n :
		    0;
		snprintf(sql, sizeof(sql), "SELECT coalesce(min(id), 0) FROM "
		    "messages_%u", seg);
		if ((T.seg_first = track_int(sql)) < 0)
			T.seg_first = 0;
	}
done:
	for (i = 0; i < 3; i++)
		sqlite3_finalize(own[i]);
	return n;
}

static int
ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec &&
	    a->tv_nsec < b->tv_nsec);
}

/* The pages in use past which a size pass runs: TRACK_PRUNE_AT_PCT of
 * the database's share of track_max_size. */
static long long
track_prune_at(void)
{
	return (long long)(T.db_budget / 100 * TRACK_PRUNE_AT_PCT);
}

/*
 * Whether a segment of rows records is too large to drop for need bytes:
 * one sealed under a larger track_max_size, or a whole database of an
 * older schema made segment 1, would take with it far more than the size
 * pass frees (down to nothing). When it is larger than what is needed
 * by more than two segments' worth, its rows go oldest first instead, at
 * the cost of their index entries. Its size is its share of the pages in
 * use.
 */
static int
track_seg_oversized(long long rows, long long need)
{
	long long	total, used;

	if (rows <= 0 || T.seal_bytes == SIZE_MAX ||
	    (total = track_int("SELECT coalesce(sum(rows), 0) FROM "
	    "segments")) < 0 || (used = track_bytes(0)) <= 0)
		return 0;
	total += (long long)T.seg_msgs;
	if (total <= 0)
		return 0;
	used = (long long)((double)used * (double)rows / (double)total);
	return used > need + 2 * (long long)T.seal_bytes;
}

/* The oldest records go until the pages in use are under
 * TRACK_TARGET_PCT of the database's share: the oldest segment at a time
 * (an oversized one a chunk of rows at a time), then (none left) the
 * current segment's oldest rows, a commit of T.del_rows at a time,
 * looking again after each; their pages are free for the next inserts.
 * How many went. */
static long long
track_prune_size(void)
{
	sqlite3_int64	last;
	long long	n, rows, deleted = 0;
	long long	target = (long long)(T.db_budget / 100 *
			    TRACK_TARGET_PCT);
	long long	used;
	unsigned	seg;
	int		rc;

	/* A segment being sealed holds records older than the current
	 * one's: sealed, it goes first (half sealed, it goes all the
	 * same). */
	if ((used = track_bytes(0)) > target)
		(void)track_seal_finish();
	while ((used = track_bytes(0)) > target &&
	    (rc = track_seg_oldest(&seg, &rows, &last)) != -1) {
		if (rc == 0)
			n = track_delete(T.seg, INT64_MAX);
		else if (track_seg_oversized(rows, used - target))
			n = track_delete(seg, INT64_MAX);
		else
			n = track_seg_drop(seg, rows);
		if (n < 0 || (rc == 0 && n == 0))
			break;
		if (n == 0)		/* an oversized one, emptied */
			n = track_seg_drop(seg, 0);
		deleted += n > 0 ? n : 0;
	}
	return deleted;
}

/*
 * Records past track_retention: the sealed segments whose newest record
 * is, whole, then the current segment's, row by row (no index to
 * update). A sealed segment that holds records on both sides of the
 * line stays until its newest passes it: the current one is sealed
 * once its oldest record is TRACK_SEG_PARTS of track_retention old, so
 * that a record outlives track_retention by that part of it at most.
 */
static long long
track_prune_retention(void)
{
	time_t		now = time(NULL);
	sqlite3_int64	cut, last;
	long long	n, rows, deleted = 0;
	unsigned	seg;

	cut = ((sqlite3_int64)now - (sqlite3_int64)T.retention) *
	    TRACK_ID_PER_SEC;
	while (track_seg_oldest(&seg, &rows, &last) == 1 && rows >= 0 &&
	    last < cut && (n = track_seg_drop(seg, rows)) >= 0)
		deleted += n;
	while ((n = track_delete(T.seg, cut)) > 0)
		deleted += n;
	if (T.seg_first > 0 && T.seg_first < ((sqlite3_int64)now -
	    (sqlite3_int64)(T.retention / TRACK_SEG_PARTS)) *
	    TRACK_ID_PER_SEC)
		(void)track_seal();
	return deleted;
}

/* Retention, then size: records past track_retention go, then the oldest
 * until the pages in use are under TRACK_TARGET_PCT of the database's
 * share of track_max_size (the WAL has the rest);
 * freed pages are given back to the file system (incremental vacuum, WAL
 * truncated). */
static void
track_prune(void)
{
	char		vacuum[64];
	long long	n, deleted = 0;
	int		log_pages, pass;

	/* A segment being sealed goes on to the end, before the passes
	 * (which drop sealed segments only) and after them (one the
	 * retention pass sealed for its age). */
	(void)track_seal_finish();
	if (T.retention > 0)
		deleted += track_prune_retention();
	(void)track_seal_finish();
	if (T.max_size > 0 && track_bytes(0) > track_prune_at())
		deleted += track_prune_size();
	/* Free pages back to the file system, as many a commit as half
	 * the WAL's share holds (a page moved is two written). */
	snprintf(vacuum, sizeof(vacuum), "PRAGMA incremental_vacuum(%zu)",
	    T.txn_pages / 2 + 1);
	for (pass = 0; pass < TRACK_VACUUM_PASSES &&
	    track_int("PRAGMA freelist_count") > 0; pass++) {
		sqlite3_stmt	*st;

		if (sqlite3_prepare_v2(T.db, vacuum, -1, &st, NULL) !=
		    SQLITE_OK) {
			track_fail("incremental_vacuum");
			break;
		}
		while (sqlite3_step(st) == SQLITE_ROW)
			;
		if (sqlite3_finalize(st) != SQLITE_OK) {
			track_fail("incremental_vacuum");
			break;
		}
	}
	/* A reader holding a snapshot makes this busy: next time, then. */
	n = sqlite3_wal_checkpoint_v2(T.db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    &log_pages, NULL);
	if (n != SQLITE_OK && n != SQLITE_BUSY && n != SQLITE_LOCKED)
		track_fail("wal_checkpoint");
	if (deleted > 0)
		log_info(NULL, "track pruned=%lld db_bytes=%lld", deleted,
		    track_bytes(1));
}

static void
track_update_bytes(void)
{
	long long	b = track_bytes(1);

	if (b < 0)
		return;
	pthread_mutex_lock(&T.mu);
	T.db_bytes = (unsigned long long)b;
	pthread_mutex_unlock(&T.mu);
}

/*
 * The writer works in bursts, a batch of records at a time, and none of
 * its work is waited for: it must not take a core from the event loop the
 * moment it wakes. SCHED_BATCH keeps its fair share of the CPU (a bound
 * is kept under any load) but gives up wakeup preemption, so a burst
 * starts when a running thread's slice ends, not in the middle of it. A
 * kernel that refuses it costs nothing but that. Its name tells it apart
 * in top -H and ps -L (given last: a thread so named is set up).
 */
static void
track_thread_setup(void)
{
	struct sched_param	sp = { .sched_priority = 0 };
	int			rc;

	if ((rc = pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp)) != 0)
		log_warn(NULL, "track: writer's SCHED_BATCH: %s", strerror(rc));
	(void)pthread_setname_np(pthread_self(), TRACK_THREAD_NAME);
}

/*
 * SQLite's progress handler, the writer's alone: every TRACK_PROGRESS_OPS
 * steps of any statement (a batch's inserts, a prune's deletes, the
 * vacuum), and after TRACK_YIELD_US of work the writer yields. A burst
 * of a thousand rows is then a string of short turns between the event
 * loop's, not milliseconds of a core the relay waits for; alone on the
 * machine it costs a system call. Not when records pile up (a quarter of
 * the queue): yielding gives up CPU, and a writer that falls behind
 * drops records, so then it runs its full share.
 */
static int
track_progress(void *arg)
{
	struct timespec	now;
	long long	us;
	int		behind;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (now.tv_sec - T.last_yield.tv_sec) * 1000000LL +
	    (now.tv_nsec - T.last_yield.tv_nsec) / 1000;
	if (us < TRACK_YIELD_US)
		return 0;
	pthread_mutex_lock(&T.mu);
	behind = T.queued >= TRACK_QUEUE_MAX / TRACK_YIELD_QUEUE ||
	    T.qbytes >= TRACK_QUEUE_BYTES / TRACK_YIELD_QUEUE;
	pthread_mutex_unlock(&T.mu);
	if (!behind)
		sched_yield();
	clock_gettime(CLOCK_MONOTONIC, &T.last_yield);
	return 0;
}

static void *
track_writer(void *arg)
{
	struct track_item	*batch;
	struct timespec		 now, next;
	unsigned long long	 asked;
	int			 prune;

	(void)arg;
	track_thread_setup();
	clock_gettime(CLOCK_MONOTONIC, &next);	/* a pass at start */
	pthread_mutex_lock(&T.mu);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		prune = now.tv_sec >= next.tv_sec ||
		    T.prune_asked > T.prune_done;
		if ((T.head == NULL || T.held) && !prune) {
			if (T.stopping && T.head == NULL)
				break;
			if (T.stopping)		/* held: a test's bug */
				T.held = 0;
			else
				pthread_cond_timedwait(&T.wake, &T.mu, &next);
			continue;
		}
		/* Many records a commit: each commit writes the table's and
		 * every index's pages to the WAL, so a record a commit would
		 * cost ten times what it does in a batch. */
		if (!prune && !T.stopping && T.queued < T.batch_min &&
		    ts_before(&now, &T.first)) {
			pthread_cond_timedwait(&T.wake, &T.mu, &T.first);
			continue;
		}
		batch = T.held ? NULL : T.head;
		if (batch != NULL) {
			T.head = T.tail = NULL;
			T.queued = 0;
			T.qbytes = 0;
		}
		asked = T.prune_asked;
		pthread_mutex_unlock(&T.mu);

		if (batch != NULL)
			track_write(batch);
		/* Near the bound, at once: a minute of mail may be big. */
		if (prune || (T.max_size > 0 &&
		    track_bytes(0) > track_prune_at())) {
			track_prune();
			if (prune) {
				clock_gettime(CLOCK_MONOTONIC, &next);
				next.tv_sec += TRACK_PRUNE_EVERY;
			}
		}
		track_update_bytes();

		pthread_mutex_lock(&T.mu);
		if (prune)
			T.prune_done = asked;
		pthread_cond_broadcast(&T.done);
	}
	pthread_mutex_unlock(&T.mu);
	return NULL;
}

/* ------------------------------------------------------------- setup */

static void
track_close(void)
{
	sqlite3_finalize(T.ins_msg);
	sqlite3_finalize(T.ins_rcpt);
	sqlite3_finalize(T.del_upto);
	sqlite3_finalize(T.del_rcpts);
	sqlite3_finalize(T.del_msgs);
	T.ins_msg = T.ins_rcpt = T.del_upto = T.del_rcpts = T.del_msgs = NULL;
	sqlite3_close(T.db);
	T.db = NULL;
}

/* A pragma that sets something: a failure is an error of init. */
static int
track_setup_exec(const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(T.db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "track_db %s: %s: %s",
		    sqlite3_db_filename(T.db, "main"), sql,
		    sqlite3_errmsg(T.db));
		return -1;
	}
	return 0;
}

/*
 * Schema 1, inside track_schema_setup's transaction, the old tables
 * already renamed aside and the first segment made: every message copied
 * oldest first under its new id (from its time, as the writer makes
 * them), its first recipient into its row, the others into recipients;
 * then the old tables dropped. Copied rather than renamed aside whole so
 * that `sporkctl track` and the console still find the mail of before
 * the upgrade; the file holds both copies until the commit (the pages of
 * the old are given back by the next prune pass).
 */
static int
track_migrate(const char *path, char *err, size_t errlen)
{
	sqlite3_stmt	*sel = NULL, *rest = NULL;
	sqlite3_stmt	*m = T.ins_msg, *r = T.ins_rcpt;
	sqlite3_int64	 id;
	struct timespec	 t0, t1;
	long long	 msgs = 0, rcpts = 0;
	int		 i, k, rc = SQLITE_ERROR;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (sqlite3_prepare_v2(T.db, track_v1_msgs, -1, &sel, NULL) !=
	    SQLITE_OK || sqlite3_prepare_v2(T.db, track_v1_rcpts, -1, &rest,
	    NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		id = track_id(sqlite3_column_double(sel, 1));
		sqlite3_reset(m);
		sqlite3_bind_int64(m, 1, id);
		/* sel's columns after the old id are the insert's values */
		for (i = 1; i < sqlite3_column_count(sel); i++)
			sqlite3_bind_value(m, i + 1, sqlite3_column_value(sel,
			    i));
		if ((rc = sqlite3_step(m)) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(rest);
		sqlite3_bind_int64(rest, 1, sqlite3_column_int64(sel, 0));
		for (k = 1; (rc = sqlite3_step(rest)) == SQLITE_ROW; k++) {
			sqlite3_reset(r);
			sqlite3_bind_int64(r, 1, id);
			sqlite3_bind_int(r, 2, k);
			for (i = 0; i < 3; i++)
				sqlite3_bind_value(r, i + 3,
				    sqlite3_column_value(rest, i));
			if ((rc = sqlite3_step(r)) != SQLITE_DONE)
				goto fail;
			rcpts++;
		}
		if (rc != SQLITE_DONE)
			goto fail;
		msgs++;
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(sel);
	sqlite3_finalize(rest);
	sqlite3_reset(m);
	sqlite3_clear_bindings(m);
	sqlite3_reset(r);
	sqlite3_clear_bindings(r);
	if (track_setup_exec(track_v1_drop, err, errlen) == -1)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info(NULL, "track_db %s: schema 1 migrated to "
	    TRACK_STR(TRACK_SCHEMA_VERSION) " messages=%lld "
	    "more_recipients=%lld ms=%lld", path, msgs, rcpts,
	    (long long)(t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000);
	return 0;
fail:
	snprintf(err, errlen, "track_db %s: migrating schema 1: %s", path,
	    sqlite3_errmsg(T.db));
	sqlite3_finalize(sel);
	sqlite3_finalize(rest);
	sqlite3_reset(m);
	sqlite3_reset(r);
	return -1;
}

/* The current segment: the newest unsealed one, or a new one. */
static int
track_seg_setup(void)
{
	char		sql[128];
	long long	n;

	if ((n = track_int("SELECT coalesce((SELECT max(n) FROM segments "
	    "WHERE rows IS NULL), 0)")) < 0)
		return -1;
	if (n == 0) {
		if ((n = track_int("SELECT coalesce(max(n), 0) + 1 FROM "
		    "segments")) < 0 || track_execf(TRACK_SEG_TABLES,
		    (unsigned)n) == -1)
			return -1;
	}
	T.seg = (unsigned)n;
	if ((n = track_int("SELECT count(*) FROM segments")) < 0)
		return -1;
	T.nsegs = (unsigned)n;
	/* One a restart cut short: the writer finishes it. */
	snprintf(sql, sizeof(sql), "SELECT coalesce((SELECT min(n) FROM "
	    "segments WHERE rows IS NULL AND n < %u), 0)", T.seg);
	if ((n = track_int(sql)) < 0)
		return -1;
	T.sealing = (unsigned)n;
	T.seal_step = 0;
	T.seal_us = 0;
	return track_views() == -1 || track_seg_prepare() == -1 ? -1 : 0;
}

/* What the current segment's tables take, after a restart: SQLite's
 * dbstat table where it has one (Debian's has), else 0 (a segment then
 * holds up to twice its share once). */
static size_t
track_seg_pages(void)
{
	sqlite3_stmt	*st;
	char		 sql[160];
	long long	 v = 0;

	snprintf(sql, sizeof(sql), "SELECT coalesce(sum(pgsize), 0) FROM "
	    "dbstat WHERE name IN ('messages_%1$u', 'recipients_%1$u')",
	    T.seg);
	if (sqlite3_prepare_v2(T.db, sql, -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v > 0 ? (size_t)v : 0;
}

/* Makes the tables (a new database), migrates an older schema, or finds
 * them made, in one transaction; prepares the writer's statements. A
 * newer schema than ours is an error: its tables are not ours to
 * guess. */
static int
track_schema_setup(const char *path, char *err, size_t errlen)
{
	char		sql[256];
	long long	v;

	if (track_setup_exec("BEGIN IMMEDIATE", err, errlen) == -1)
		return -1;
	if ((v = track_int("PRAGMA user_version")) < 0) {
		snprintf(err, errlen, "track_db %s: user_version: %s", path,
		    sqlite3_errmsg(T.db));
		goto fail;
	}
	if (v > TRACK_SCHEMA_VERSION) {
		snprintf(err, errlen, "track_db %s: schema version %lld: this "
		    "sporkd knows " TRACK_STR(TRACK_SCHEMA_VERSION)
		    " at most", path, v);
		goto fail;
	}
	T.last_id = 0;
	if ((v == 1 && track_setup_exec(track_v1_aside, err, errlen) == -1) ||
	    track_setup_exec(track_schema, err, errlen) == -1 ||
	    (v == 2 && track_setup_exec(track_v2_rename, err, errlen) == -1))
		goto fail;
	if (track_seg_setup() == -1) {
		snprintf(err, errlen, "track_db %s: segments: %s", path,
		    sqlite3_errmsg(T.db));
		goto fail;
	}
	if ((v == 1 && track_migrate(path, err, errlen) == -1) ||
	    track_setup_exec("PRAGMA user_version=" TRACK_STR(
	    TRACK_SCHEMA_VERSION), err, errlen) == -1 ||
	    track_setup_exec("COMMIT", err, errlen) == -1)
		goto fail;
	if (v == 2)
		log_info(NULL, "track_db %s: schema 2 made segment 1 (sealed "
		    "as it was)", path);
	/* The current segment's count and oldest id; the newest id of all
	 * is the current segment's, else the newest sealed one's. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM messages_%u", T.seg);
	if ((v = track_int(sql)) < 0)
		goto fail_read;
	T.seg_msgs = (size_t)v;
	T.seg_bytes = track_seg_pages();
	snprintf(sql, sizeof(sql), "SELECT coalesce(min(id), 0) FROM "
	    "messages_%u", T.seg);
	if ((T.seg_first = track_int(sql)) < 0)
		goto fail_read;
	snprintf(sql, sizeof(sql), "SELECT max(coalesce((SELECT max(id) FROM "
	    "messages_%u), 0), coalesce((SELECT max(id) FROM messages_%u), "
	    "0), coalesce((SELECT max(last) FROM segments), 0))", T.seg,
	    T.sealing > 0 ? T.sealing : T.seg);
	if ((T.last_id = track_int(sql)) < 0)
		goto fail_read;
	return 0;
fail_read:
	snprintf(err, errlen, "track_db %s: %s", path, sqlite3_errmsg(T.db));
	return -1;
fail:
	if (!sqlite3_get_autocommit(T.db))
		(void)sqlite3_exec(T.db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
track_open(const char *path, char *err, size_t errlen)
{
	static const char *const setup[] = {
		/* Only takes effect before the first table. */
		"PRAGMA auto_vacuum=INCREMENTAL",
		"PRAGMA synchronous=NORMAL",
	};
	sqlite3_stmt	*st = NULL;
	const char	*mode = NULL;
	char		 pragma[64];
	size_t		 i;
	int		 fd, persist = 1;

	/* Created here so that its mode is ours: SQLite gives the -wal and
	 * -shm files the database's mode, and readers are a group. */
	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0640)) != -1) {
		if (fchmod(fd, 0640) == -1) {
			snprintf(err, errlen, "track_db %s: %s", path,
			    strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
	} else if (errno != EEXIST) {
		snprintf(err, errlen, "track_db %s: %s", path, strerror(errno));
		return -1;
	}
	if (sqlite3_open_v2(path, &T.db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "track_db %s: %s", path,
		    T.db != NULL ? sqlite3_errmsg(T.db) : "out of memory");
		return -1;
	}
	sqlite3_extended_result_codes(T.db, 1);
	sqlite3_busy_timeout(T.db, TRACK_BUSY_MS);
	for (i = 0; i < sizeof(setup) / sizeof(setup[0]); i++)
		if (track_setup_exec(setup[i], err, errlen) == -1)
			return -1;
	if (sqlite3_prepare_v2(T.db, "PRAGMA journal_mode=WAL", -1, &st,
	    NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		mode = (const char *)sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		snprintf(err, errlen, "track_db %s: journal_mode=WAL: %s",
		    path, mode != NULL ? mode : sqlite3_errmsg(T.db));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	/* The -wal and -shm stay when sporkd stops: a reader that may not
	 * create files in the directory can still open the database. */
	sqlite3_file_control(T.db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	if (track_schema_setup(path, err, errlen) == -1)
		return -1;
	if (track_int("PRAGMA auto_vacuum") != 2)
		log_warn(NULL, "track_db %s: auto_vacuum is not incremental "
		    "(made by another program?): deleted records do not "
		    "shrink the file until a VACUUM", path);
	if ((T.page_size = track_int("PRAGMA page_size")) <= 0) {
		snprintf(err, errlen, "track_db %s: page_size: %s", path,
		    sqlite3_errmsg(T.db));
		return -1;
	}
	/* track_max_size bounds the database and its WAL together: the WAL
	 * gets an eighth (256 KiB to 64 MiB), checkpointed when half full
	 * or at TRACK_CKPT_MAX and cut back to its share after, the
	 * database the rest. The share is room for a seal's commit (a
	 * segment's indexes). Records are appended to the current segment:
	 * no page is rewritten by many commits, so a larger WAL would save
	 * no page write, and a checkpoint is a burst of copying the writer
	 * cannot yield in (the progress handler sees statements only):
	 * checkpoints of a few MiB keep the bursts short. */
	T.wal_limit = T.max_size > 0 ? T.max_size / 8 : TRACK_WAL_MAX;
	if (T.wal_limit < TRACK_WAL_MIN)
		T.wal_limit = TRACK_WAL_MIN;
	if (T.wal_limit > TRACK_WAL_MAX)
		T.wal_limit = TRACK_WAL_MAX;
	T.db_budget = T.max_size > T.wal_limit ? T.max_size - T.wal_limit :
	    T.max_size / 2;
	snprintf(pragma, sizeof(pragma), "PRAGMA journal_size_limit=%zu",
	    T.wal_limit);
	if (track_setup_exec(pragma, err, errlen) == -1)
		return -1;
	/* A WAL frame is a page and its 24-byte header. */
	T.ckpt_pages = (T.wal_limit / 2 < TRACK_CKPT_MAX ? T.wal_limit / 2 :
	    TRACK_CKPT_MAX) / ((size_t)T.page_size + 24);
	T.txn_pages = T.ckpt_pages / 2 > 0 ? T.ckpt_pages / 2 : 1;
	sqlite3_wal_hook(T.db, track_wal_hook, NULL);
	sqlite3_progress_handler(T.db, TRACK_PROGRESS_OPS, track_progress,
	    NULL);
	/* Random keys (Message-ID, addresses) dirty about one index page
	 * per record: a larger batch shares more of them, and a cache that
	 * holds the indexes' hot pages saves reading them back. The batch
	 * grows with the WAL's share, which its pages go through: a record
	 * per page of it, TRACK_BATCH_MIN to TRACK_BATCH_MAX. */
	T.batch_min = T.wal_limit / (size_t)T.page_size;
	/* The first commit as if a record took twice its size in pages,
	 * a delete as if each row dirtied a page of every b-tree;
	 * track_write_txn and track_delete learn from there. */
	T.txn_bytes = track_txn_clamp(T.txn_pages * (size_t)T.page_size / 2,
	    TRACK_TXN_BYTES_MAX);
	T.del_rows = track_txn_clamp(T.txn_pages / TRACK_TXN_PAGES,
	    TRACK_TXN_MAX);
	if (T.batch_min < TRACK_BATCH_MIN)
		T.batch_min = TRACK_BATCH_MIN;
	if (T.batch_min > TRACK_BATCH_MAX)
		T.batch_min = TRACK_BATCH_MAX;
	snprintf(pragma, sizeof(pragma), "PRAGMA cache_size=-%llu",
	    T.max_size > 0 && T.max_size / 1024 < TRACK_CACHE_KIB ?
	    (unsigned long long)T.max_size / 1024 + 1 :
	    (unsigned long long)TRACK_CACHE_KIB);
	if (track_setup_exec(pragma, err, errlen) == -1)
		return -1;
	track_seal_size();
	return 0;
}

int
track_init(const struct conf *c, char *err, size_t errlen)
{
	pthread_condattr_t	ca;
	int			rc;

	if (T.running) {
		snprintf(err, errlen, "track: already started");
		return -1;
	}
	T.json = c->track_json;
	T.written = T.dropped = T.errors = T.rcpts_cut = T.db_bytes = 0;
	T.stopping = T.held = 0;
	T.prune_asked = T.prune_done = 0;
	T.last_errlog = 0;
	T.unlogged = 0;
	T.seal_retry = 0;
	T.segs_full = 0;
	if (c->track_db[0] == '\0')
		return 0;
	/* The writer is SQLite's only user in this process: its memory
	 * statistics would cost a global mutex per allocation. Only before
	 * SQLite's first use; later it just fails. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	T.retention = (double)c->track_retention;
	T.max_size = c->track_max_size;
	if (track_open(c->track_db, err, errlen) == -1) {
		track_close();
		return -1;
	}
	track_update_bytes();
	/* The writer's minute is on the monotonic clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&T.wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&T.done, NULL);
	if ((rc = pthread_create(&T.thread, NULL, track_writer, NULL)) != 0) {
		snprintf(err, errlen, "track: writer thread: %s", strerror(rc));
		pthread_cond_destroy(&T.wake);
		pthread_cond_destroy(&T.done);
		track_close();
		return -1;
	}
	T.running = 1;
	return 0;
}

void
track_segment_rows(size_t n)
{
	T.seal_fixed = n;
}

void
track_hold(int on)
{
	if (!T.running)
		return;
	pthread_mutex_lock(&T.mu);
	T.held = on;
	pthread_cond_signal(&T.wake);
	pthread_mutex_unlock(&T.mu);
}

/* The writer answers a request in the pass that takes the queue as it
 * was when it saw the request: everything queued before is written. */
void
track_prune_now(void)
{
	unsigned long long	mine;

	if (!T.running)
		return;
	pthread_mutex_lock(&T.mu);
	T.held = 0;
	mine = ++T.prune_asked;
	pthread_cond_signal(&T.wake);
	while (T.prune_done < mine)
		pthread_cond_wait(&T.done, &T.mu);
	pthread_mutex_unlock(&T.mu);
}

void
track_shutdown(void)
{
	if (!T.running)
		return;
	pthread_mutex_lock(&T.mu);
	T.stopping = 1;
	pthread_cond_signal(&T.wake);
	pthread_mutex_unlock(&T.mu);
	pthread_join(T.thread, NULL);
	T.running = 0;
	track_update_bytes();
	track_close();
	pthread_cond_destroy(&T.wake);
	pthread_cond_destroy(&T.done);
}
