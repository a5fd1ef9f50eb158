/* SPDX-License-Identifier: MIT */
/*
 * The configuration parser against arbitrary files. The input goes into a
 * memfd and conf_load() opens it as /proc/self/fd/N, the same path a real
 * file takes (fopen, fgets, the line limit), with no temporary files left
 * behind. Errors are fine; a crash, a read past a buffer or an error
 * message that is not a string is not. A file that loads must satisfy the
 * cross-key checks conf_load promises.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"
#include "fuzz.h"

static struct conf	conf;

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	path[64], err[1024];
	size_t	off = 0;
	ssize_t	n;
	int	fd, rc;

	if ((fd = memfd_create("fuzz_conf", MFD_CLOEXEC)) == -1)
		abort();
	while (off < size) {
		if ((n = write(fd, data + off, size - off)) <= 0)
			abort();
		off += (size_t)n;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	memset(err, 'X', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	rc = conf_load(&conf, path, err, sizeof(err));
	close(fd);

	FUZZ_CHECK(rc == 0 || rc == -1, "conf_load returned %d", rc);
	if (rc == -1) {
		FUZZ_CHECK(err[0] != 'X' && strlen(err) < sizeof(err) - 1,
		    "no error message");
		FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0,
		    "error does not name the file: %s", err);
		return 0;
	}
	FUZZ_CHECK(conf.transparent_listen.n + conf.explicit_listen.n > 0,
	    "loaded with no listener");
	FUZZ_CHECK(conf.explicit_listen.n == 0 ||
	    conf.explicit_upstream.n == 1, "explicit_listen without one "
	    "upstream");
	FUZZ_CHECK(conf.max_command_line >= 512 && conf.max_reply_line >= 512,
	    "line limits below RFC 5321");
	FUZZ_CHECK(conf.max_text_line == 0 || conf.max_text_line >= 1000,
	    "max_text_line %zu", conf.max_text_line);
	FUZZ_CHECK(conf.max_recipients >= 100 && conf.max_reply_lines > 0 &&
	    conf.max_sessions > 0 && conf.message_size_limit > 0,
	    "a count limit out of range");
	FUZZ_CHECK(conf.scan_workers >= 1 && conf.scan_workers <= 64,
	    "scan_workers %zu", conf.scan_workers);
	FUZZ_CHECK(conf.bare_newline == BARE_REJECT ||
	    conf.bare_newline == BARE_NORMALIZE, "bare_newline %d",
	    conf.bare_newline);
	FUZZ_CHECK(memchr(conf.user, '\0', sizeof(conf.user)) != NULL &&
	    memchr(conf.spool_dir, '\0', sizeof(conf.spool_dir)) != NULL,
	    "an unterminated string value");
	return 0;
}
