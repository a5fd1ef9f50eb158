/* SPDX-License-Identifier: MIT */
#ifndef SPORK_TRACK_READ_H
#define SPORK_TRACK_READ_H

#include <stddef.h>

#include <sqlite3.h>

/*
 * For the tracking database's readers (sporkctl track, spork-console):
 * a search runs segment by segment, newest first, on each segment's own
 * tables. Through the views messages and recipients, a query with a
 * subquery on them (a recipient's messages) is planned once per segment
 * for every segment: its cost grows with the square of their count. A
 * message's recipients are in its own segment, and a newer segment holds
 * only newer ids, so ORDER BY id DESC per segment, newest segment first,
 * is the order of the whole.
 *
 * The reader runs the segment list and its queries inside one read
 * transaction (BEGIN ... COMMIT), so that a segment the writer drops
 * meanwhile is still there for it.
 */

/* The segments, newest first, into *segs (malloc'd, *n of them); a
 * database of schema 2 (no table segments) is one segment, 0: the
 * tables messages and recipients. -1 on failure (sqlite3_errmsg). */
int	 track_read_segments(sqlite3 *, unsigned **segs, size_t *n);
/* sql with each "@M" and "@R" made segment seg's tables (messages_N,
 * recipients_N; messages, recipients for 0): malloc'd, NULL when out of
 * memory. */
char	*track_read_sql(const char *sql, unsigned seg);

/* track_read_each's failures (it returns the rows taken otherwise). */
#define TRACK_READ_DB		-1	/* a database error: sqlite3_errmsg */
#define TRACK_READ_NOMEM	-2
#define TRACK_READ_STOP		-3	/* row() stopped it and said why */

/* A search: sql (its tables @M and @R) on each segment, newest first,
 * in one read transaction that it begins (the caller's close ends it),
 * up to limit rows (0: all). bind binds a segment's statement's
 * parameters, the same for each; row takes a row of segment seg, -1 to
 * stop. */
long	 track_read_each(sqlite3 *, const char *sql, long limit,
	    void (*bind)(sqlite3_stmt *, void *),
	    int (*row)(sqlite3_stmt *, unsigned seg, void *), void *arg);

#endif
