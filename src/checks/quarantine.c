/* SPDX-License-Identifier: MIT */
/*
 * Quarantine storage: the message exactly as received (canonical CRLF)
 * in ID.eml and its envelope and verdict in ID.meta, `key: value` lines.
 * Both are written under temporary names and renamed, the .meta last, so
 * a listed entry is always complete. `sporkctl quarantine` reads them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "quarantine.h"
#include "spool.h"

static int
copy_spool(int fd, const struct spool *sp)
{
	char	buf[65536];
	size_t	off = 0;
	ssize_t	n, w, done;

	while ((n = spool_read(sp, off, buf, sizeof(buf))) > 0) {
		for (done = 0; done < n; done += w)
			if ((w = write(fd, buf + done, (size_t)(n - done))) <= 0)
				return -1;
		off += (size_t)n;
	}
	return n == 0 ? 0 : -1;
}

int
quarantine_store(const char *dir, const struct spool *sp,
    const struct quarantine_meta *m, char *id, size_t idlen)
{
	char		 tmp[1024], path[1024];
	unsigned char	 rnd[6];
	time_t		 now = time(NULL);
	struct tm	 tm;
	FILE		*fp = NULL;
	size_t		 i;
	int		 fd = -1;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -1;
	gmtime_r(&now, &tm);
	snprintf(id, idlen, "%04d%02d%02dT%02d%02d%02d-%02x%02x%02x%02x%02x%02x",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
	    rnd[5]);

	snprintf(tmp, sizeof(tmp), "%s/.%s.eml", dir, id);
	snprintf(path, sizeof(path), "%s/%s.eml", dir, id);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600))
	    == -1)
		return -1;
	if (copy_spool(fd, sp) == -1 || fsync(fd) == -1)
		goto fail;
	close(fd);
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;

	snprintf(tmp, sizeof(tmp), "%s/.%s.meta", dir, id);
	if ((fp = fopen(tmp, "wx")) == NULL)
		goto fail;
	fprintf(fp, "id: %s\ntime: %lld\nsession: %s\nclient: %s\n"
	    "server: %s\nhelo: %s\nsender: %s\n", id, (long long)now,
	    m->session, m->client, m->server, m->helo, m->sender);
	for (i = 0; i < m->nrcpts; i++)
		fprintf(fp, "rcpt: %s\n", m->rcpts[i]);
	fprintf(fp, "mode: %s\nverdict: %s\nname: %s\nsize: %zu\n", m->mode,
	    m->verdict, m->name, sp->size);
	if (fflush(fp) == EOF || fsync(fileno(fp)) == -1)
		goto fail;
	fclose(fp);
	fp = NULL;
	snprintf(path, sizeof(path), "%s/%s.meta", dir, id);
	if (rename(tmp, path) == -1)
		goto fail;
	return 0;
fail:
	if (fd != -1)
		close(fd);
	if (fp != NULL)
		fclose(fp);
	unlink(tmp);
	return -1;
}
