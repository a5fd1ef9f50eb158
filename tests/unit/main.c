/* SPDX-License-Identifier: MIT */
/* Runs every table-driven unit test; no network, no root. Also the
 * helpers the tests share. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "unit.h"

int		 unit_failed;
int		 unit_checks;
const char	*unit_datadir = "tests/unit";

static const struct {
	const char	*name;
	void		(*fn)(void);
} tests[] = {
	{ "smtp_proto", test_smtp_proto },
	{ "smtp_data", test_smtp_data },
	{ "conf", test_conf },
	{ "spool", test_spool },
	{ "nft", test_nft },
	{ "sandbox", test_sandbox },
	{ "mime", test_mime },
	{ "synq", test_synq },
	{ "prequeue", test_prequeue },
	{ "content", test_content },
	{ "spam", test_spam },
	{ "hostport", test_hostport },
	{ "tls", test_tls },
	{ "policy", test_verdict_policy },
	{ "buf", test_buf },
	{ "ratelimit", test_ratelimit },
	{ "milter", test_milter },
	{ "track", test_track },
	{ "journal", test_journal },
	{ "icap_proto", test_icap_proto },
};

/* The first max bytes of a file, in memory the caller frees; NULL when it
 * cannot be read. */
char *
unit_slurp(const char *path, size_t max, size_t *len)
{
	char	*p;
	int	 fd;
	ssize_t	 n;

	if ((fd = open(path, O_RDONLY)) == -1)
		return NULL;
	p = malloc(max);
	n = p ? read(fd, p, max) : -1;
	close(fd);
	if (n < 0) {
		free(p);
		return NULL;
	}
	*len = (size_t)n;
	return p;
}

/* 1 when every line ends in CRLF and no CR or LF stands alone. */
int
unit_crlf_only(const char *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if ((p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) ||
		    (p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n')))
			return 0;
	return 1;
}

int
main(int argc, char *argv[])
{
	size_t	i;
	int	before;

	if (argc > 1)
		unit_datadir = argv[1];
	log_init("unit", 0, 0);
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		before = unit_failed;
		tests[i].fn();
		printf("%s %s\n", unit_failed == before ? "PASS" : "FAIL",
		    tests[i].name);
	}
	printf("unit: %d checks, %d failed\n", unit_checks, unit_failed);
	return unit_failed ? 1 : 0;
}
