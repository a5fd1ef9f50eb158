/* SPDX-License-Identifier: MIT */
/* The readers' side of the tracking database's segments (track_read.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "track_read.h"

int
track_read_segments(sqlite3 *db, unsigned **segs, size_t *n)
{
	sqlite3_stmt	*st;
	unsigned	*v = NULL, *nv;
	size_t		 len = 0, cap = 0;
	int		 rc;

	*segs = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db, "SELECT n FROM segments ORDER BY n DESC",
	    -1, &st, NULL) != SQLITE_OK) {
		/* schema 2: the plain tables */
		if (strstr(sqlite3_errmsg(db), "no such table") == NULL)
			return -1;
		if ((*segs = calloc(1, sizeof(**segs))) == NULL)
			return -1;
		*n = 1;
		return 0;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = nv;
		}
		v[len++] = (unsigned)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return -1;
	}
	*segs = v;
	*n = len;
	return 0;
}

char *
track_read_sql(const char *sql, unsigned seg)
{
	const char	*p;
	char		*out, *o, num[16];
	size_t		 marks = 0, nlen;

	for (p = sql; (p = strchr(p, '@')) != NULL; p++)
		marks++;
	nlen = seg > 0 ? (size_t)snprintf(num, sizeof(num), "_%u", seg) : 0;
	if (seg == 0)
		num[0] = '\0';
	if ((out = malloc(strlen(sql) + marks * (sizeof("recipients") +
	    nlen) + 1)) == NULL)
		return NULL;
	for (o = out, p = sql; *p != '\0'; p++) {
		if (p[0] == '@' && (p[1] == 'M' || p[1] == 'R')) {
			o += sprintf(o, "%s%s", p[1] == 'M' ? "messages" :
			    "recipients", num);
			p++;
		} else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

long
track_read_each(sqlite3 *db, const char *sql, long limit,
    void (*bind)(sqlite3_stmt *, void *),
    int (*row)(sqlite3_stmt *, unsigned, void *), void *arg)
{
	sqlite3_stmt	*st = NULL;
	unsigned	*segs = NULL;
	size_t		 nsegs, s;
	long		 rows = 0, ret;
	char		*segsql;
	int		 rc = SQLITE_DONE;

	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    track_read_segments(db, &segs, &nsegs) == -1)
		return TRACK_READ_DB;
	for (s = 0; s < nsegs && (limit <= 0 || rows < limit); s++) {
		if ((segsql = track_read_sql(sql, segs[s])) == NULL) {
			ret = TRACK_READ_NOMEM;
			goto out;
		}
		rc = sqlite3_prepare_v2(db, segsql, -1, &st, NULL);
		free(segsql);
		if (rc != SQLITE_OK) {
			ret = TRACK_READ_DB;
			goto out;
		}
		bind(st, arg);
		while ((limit <= 0 || rows < limit) &&
		    (rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (row(st, segs[s], arg) == -1) {
				ret = TRACK_READ_STOP;
				goto out;
			}
			rows++;
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			ret = TRACK_READ_DB;
			goto out;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	ret = rows;
out:
	sqlite3_finalize(st);	/* keeps sqlite3_errmsg */
	free(segs);
	return ret;
}
