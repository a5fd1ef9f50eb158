/* SPDX-License-Identifier: MIT */
#ifndef SPORK_TRACK_H
#define SPORK_TRACK_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "conf.h"

/*
 * Message tracking: one record per message that reached the end of DATA
 * (or was refused at DATA), kept in an SQLite database (WAL) for
 * `sporkctl track` and the web console, and optionally emitted as one
 * JSON line to syslog. The event loop only copies the record into a
 * bounded queue; a thread of its own writes it.
 *
 * The database (read by sporkctl and spork-console, never written by
 * them), schema 3 (PRAGMA user_version; sporkd migrates a schema-1
 * database by copying it into the first segment, and makes a schema-2
 * database's tables the first segment, sealed as they are, when it
 * opens it). The records are kept in segments, each a pair of tables:
 *
 *   messages_N(id INTEGER PRIMARY KEY: the time in microseconds since
 *            the epoch (t * TRACK_ID_PER_SEC), or the last id + 1 when
 *            that is not greater (same microsecond, clock set back): ids
 *            grow with time, and a time range is a range of ids,
 *            searched without an index of its own,
 *            t REAL unix time, session TEXT,
 *            client TEXT "addr:port", client_addr TEXT "addr",
 *            server TEXT, direction TEXT inbound|outbound, helo TEXT,
 *            sender TEXT, size INTEGER, message_id TEXT, subject TEXT,
 *            verdict TEXT, action TEXT, score REAL NULL, tls TEXT,
 *            quarantine TEXT NULL, reply TEXT,
 *            rcpts INTEGER recipients recorded, and the first of them:
 *            rcpt TEXT NULL, rcpt_code INTEGER NULL, rcpt_reply TEXT NULL)
 *   recipients_N(message INTEGER -> messages_N.id, n INTEGER 1.. (the
 *            first, n 0, is in messages_N), rcpt TEXT, code INTEGER,
 *            reply TEXT, PRIMARY KEY (message, n)) WITHOUT ROWID
 *   segments(n INTEGER PRIMARY KEY, rows INTEGER NULL, last INTEGER
 *            NULL): rows and last (the newest id) once sealed; the one
 *            with rows NULL is the current segment
 *   views:   messages and recipients, every segment's rows (UNION ALL,
 *            oldest segment first), for queries by hand; sporkctl and
 *            the console search segment by segment (track_read.h)
 *   indexes, a sealed segment's only: messages_N(sender COLLATE NOCASE),
 *            (message_id), (client_addr), (rcpt COLLATE NOCASE),
 *            recipients_N(rcpt COLLATE NOCASE)
 *
 * The current segment has no index: a record is a row appended, and a
 * search scans it. Full (track.c: track_seal_size), it is sealed: its
 * indexes built in bulk and a new segment made, in one transaction.
 * Pruning drops the oldest segments whole. A search by recipient looks
 * in both views (UNION); a message's recipients in order are its row's,
 * then recipients' by n. Most mail has one recipient: one table row a
 * record.
 *
 * The JSON line (track_json) is written by track_message() itself through
 * log.c, so the event loop pays one snprintf for it.
 *
 * `verdict` is the verdict word of the log line (clean, virus, spam,
 * content, milter, encrypted, limits, scan-error, refused-by-server...),
 * `action` what was done: deliver, tag, clean, quarantine, reject,
 * tempfail; `reply` the reply the client got to its end of data. Each
 * recipient has the server's answer (its final answer for those it
 * accepted at RCPT, its RCPT answer for those it refused) or, when sporkd
 * answered for it, sporkd's.
 */

#define TRACK_RCPTS_MAX		1000	/* recorded per message; more are counted */
#define TRACK_THREAD_NAME	"sporkd-track"	/* the writer, in ps -L */
#define TRACK_QUEUE_MAX		4096	/* records waiting for the writer */
#define TRACK_QUEUE_BYTES	(64 * 1024 * 1024)	/* and their size */
#define TRACK_FIELD_MAX		998	/* longest text field kept */
#define TRACK_ID_PER_SEC	1000000	/* a record's id: its time, in these */

struct track_rcpt {
	const char	*addr;
	int		 code;		/* 3-digit reply code */
	const char	*reply;		/* the whole first reply line */
};

/* Strings are the caller's: track_message() copies what it keeps. NULL
 * or "" for a field not known. */
struct track_rec {
	double			 t;		/* end of DATA, unix time */
	const char		*session;
	const char		*client;	/* addr:port */
	const char		*client_addr;
	const char		*server;
	const char		*direction;	/* inbound, outbound */
	const char		*helo;
	const char		*sender;
	const struct track_rcpt	*rcpts;
	size_t			 nrcpts;
	size_t			 size;
	const char		*message_id;
	const char		*subject;
	const char		*verdict;
	const char		*action;
	double			 score;		/* NAN: no spam score */
	const char		*tls;		/* none, intercept, passthrough... */
	const char		*quarantine;	/* quarantine id */
	const char		*reply;
};

/* Opens (creating) conf->track_db and starts the writer; with an empty
 * track_db only the JSON lines (if track_json) are kept. -1 and err on
 * failure. */
int	track_init(const struct conf *, char *err, size_t errlen);
/* Queues one record; never blocks. Past TRACK_QUEUE_MAX waiting records
 * (or TRACK_QUEUE_BYTES of them)
 * the record is dropped and counted (track.dropped). */
void	track_message(const struct track_rec *);
/* Whether track_message() does anything (a database or JSON lines). */
int	track_wanted(void);
/* Counters for `sporkctl status` and the metrics: "track.written=N ..." */
void	track_status(struct buf *);
/* Flushes the queue and stops the writer (at exit). */
void	track_shutdown(void);

/* The record as the JSON object of the log line, whole (fields cut at
 * TRACK_FIELD_MAX only): strings escaped (control bytes as \u00XX,
 * bytes that are not UTF-8 as \ufffd), score and quarantine null when
 * not known. -1 (ENOBUFS) when b is full. */
int	track_json(const struct track_rec *, struct buf *b);

/* For the tests, before track_init: the records that fill a segment (0:
 * as track_max_size and the records' size make it). */
void	track_segment_rows(size_t);
/* For the tests: while held, the writer takes nothing from the queue. */
void	track_hold(int);
/* For the tests: waits until the writer has written what is queued and
 * has run a retention and size pass. */
void	track_prune_now(void);

#endif
