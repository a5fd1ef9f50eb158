/* SPDX-License-Identifier: MIT */
/*
 * Where the console's data comes from: sporkd's control socket (one
 * command per connection, the answer read to its end, bounded) and the
 * tracking database, opened read-only for each request (SQLite, WAL, a
 * file sporkd's user owns; the console reads it through its group), each
 * request's queries cut off after TRACK_DEADLINE_MS. The
 * console never writes either: what changes state goes through sporkd's
 * own commands, which check the peer's credentials themselves.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "console.h"

/* A release waits for the server (sporkd gives it 60 s). */
#define CTL_WAIT_S		75
#define TRACK_BUSY_MS		2000
/* A search of a large database may take long: the page says to narrow
 * it rather than hold a thread and the database for minutes. */
#define TRACK_DEADLINE_MS	5000
#define TRACK_PROGRESS_OPS	1000	/* VM steps between deadline checks */

/* One request, one thread, one database handle at a time. */
static __thread uint64_t	track_deadline;

/*
 * Sends one command line and reads the whole answer into *out
 * (NUL-terminated, to be freed). -1 and errno when sporkd cannot be
 * reached; the answer itself may still be "error: ...".
 */
int
ctl_ask(const char *cmd, char **out, size_t *outlen)
{
	struct sockaddr_un	 sun;
	struct timeval		 tv = { .tv_sec = CTL_WAIT_S };
	char			*b = NULL, *nb;
	size_t			 len = 0, cap = 0;
	ssize_t			 n;
	int			 fd = -1, saved;

	*out = NULL;
	*outlen = 0;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(console_conf->control_socket) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, console_conf->control_socket);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    dprintf(fd, "%s\n", cmd) < 0)
		goto fail;
	for (;;) {
		if (cap - len < 4096) {
			if (cap >= CONSOLE_CTL_OUT_MAX) {
				errno = EMSGSIZE;
				goto fail;
			}
			cap = cap ? cap * 2 : 16384;
			if ((nb = realloc(b, cap + 1)) == NULL)
				goto fail;
			b = nb;
		}
		n = read(fd, b + len, cap - len);
		if (n == 0)
			break;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		len += (size_t)n;
	}
	close(fd);
	if (b == NULL && (b = malloc(1)) == NULL)
		return -1;
	b[len] = '\0';
	*out = b;
	*outlen = len;
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	free(b);
	errno = saved;
	return -1;
}

/* The same rule as control.c's: never a path. */
int
quarantine_id_valid(const char *id)
{
	size_t	n = strlen(id);

	return n > 0 && n < 64 &&
	    strspn(id, "0123456789abcdefABCDEFT-") == n;
}

static uint64_t
mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
track_progress(void *arg)
{
	(void)arg;
	return mono_ms() > track_deadline;
}

int
track_timed_out(struct sqlite3 *db)
{
	return db != NULL && sqlite3_errcode(db) == SQLITE_INTERRUPT;
}

/* "file:" and path, every byte but unreserved ones and '/' as %XX: a
 * '?', '#' or '%' in the path is the path's. */
static char *
track_uri(const char *path)
{
	static const char	hex[] = "0123456789ABCDEF";
	char			*u, *o;

	if ((u = malloc(strlen(path) * 3 + sizeof("file:?mode=ro"))) == NULL)
		return NULL;
	o = u + sprintf(u, "file:");
	for (; *path != '\0'; path++) {
		unsigned char	c = (unsigned char)*path;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("/-._~", c) != NULL)
			*o++ = (char)c;
		else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	strcpy(o, "?mode=ro");
	return u;
}

/*
 * Read-only: "file:PATH?mode=ro" also keeps SQLite from creating a
 * missing database. A WAL database needs its -shm; when the console may
 * only read it, SQLite maps it read-only (3.22+), which works while
 * sporkd has the database open.
 */
sqlite3 *
track_open(char *err, size_t errlen)
{
	sqlite3	*db = NULL;
	char	*uri;
	int	 rc;

	if (console_conf->track_db[0] == '\0') {
		snprintf(err, errlen, "track_db is not set: no tracking "
		    "database");
		return NULL;
	}
	if ((uri = track_uri(console_conf->track_db)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
	    NULL);
	free(uri);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", console_conf->track_db,
		    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, TRACK_BUSY_MS);
	track_deadline = mono_ms() + TRACK_DEADLINE_MS;
	sqlite3_progress_handler(db, TRACK_PROGRESS_OPS, track_progress, NULL);
	return db;
}
