/* SPDX-License-Identifier: MIT */
/* Runs every table-driven unit test; no network, no root. */
#include <stdio.h>

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
};

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
