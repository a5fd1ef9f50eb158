/* SPDX-License-Identifier: MIT */
/*
 * Server entries split into host and port, and the order in which a client
 * tries a list of addresses. No network: only numeric hosts resolve here.
 */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "failover.h"
#include "hostport.h"
#include "unit.h"

static const struct {
	const char	*in;
	const char	*host;		/* NULL: refused */
	const char	*port;
} split_cases[] = {
	{ "127.0.0.1:3310", "127.0.0.1", "3310" },
	{ "clamd.example:3310", "clamd.example", "3310" },
	{ "[::1]:11333", "::1", "11333" },
	{ "[2001:db8::5]:783", "2001:db8::5", "783" },
	{ "host:65535", "host", "65535" },
	{ "host:1", "host", "1" },
	{ "::1:3310", NULL, NULL },		/* bare IPv6 */
	{ "[::1]3310", NULL, NULL },
	{ "[::1", NULL, NULL },
	{ "[]:3310", NULL, NULL },
	{ ":3310", NULL, NULL },
	{ "host", NULL, NULL },
	{ "host:", NULL, NULL },
	{ "host:0", NULL, NULL },
	{ "host:65536", NULL, NULL },
	{ "host:+25", NULL, NULL },
	{ "host:25x", NULL, NULL },
	{ "host:123456789", NULL, NULL },	/* longer than the port buffer */
};

static const struct {
	size_t		 n, first;
	uint64_t	 tried, down;
	int		 want;
} pick_cases[] = {
	{ 0, 0, 0, 0, -1 },
	{ 3, 0, 0, 0, 0 },
	{ 3, 1, 0, 0, 1 },
	{ 3, 5, 0, 0, 2 },		/* the start wraps */
	{ 3, 0, 0x1, 0, 1 },
	{ 3, 2, 0x4, 0, 0 },
	{ 3, 0, 0, 0x1, 1 },		/* healthy before down */
	{ 3, 0, 0x2, 0x1, 2 },
	{ 3, 1, 0x6, 0x1, 0 },		/* down, as a last resort */
	{ 3, 0, 0, 0x7, 0 },
	{ 3, 0, 0x7, 0, -1 },
	{ 64, 63, 0, 0, 63 },
	{ 64, 63, UINT64_C(1) << 63, 0, 0 },
};

static int
collect(void *arg, const struct sockaddr_storage *ss, const char *name)
{
	char	*names = arg;

	(void)ss;
	if (strlen(names) + strlen(name) + 2 > 128)
		return -1;
	strcat(names, name);
	strcat(names, " ");
	return 0;
}

void
test_hostport(void)
{
	char	host[HOSTPORT_HOST_MAX], port[HOSTPORT_PORT_MAX];
	char	names[128], err[128];
	size_t	i;
	int	rc;

	for (i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
		rc = hostport_split(split_cases[i].in, host, sizeof(host), port,
		    sizeof(port));
		if (split_cases[i].host == NULL) {
			CHECK(rc == -1, "\"%s\" taken", split_cases[i].in);
			continue;
		}
		CHECK(rc == 0 && strcmp(host, split_cases[i].host) == 0 &&
		    strcmp(port, split_cases[i].port) == 0, "\"%s\": rc=%d "
		    "host=%s port=%s", split_cases[i].in, rc, host, port);
	}
	CHECK(hostport_split("averylonghostname:25", host, 8, port,
	    sizeof(port)) == -1, "host longer than its buffer");

	names[0] = '\0';
	rc = hostport_resolve("::1", "3310", collect, names, err, sizeof(err));
	CHECK(rc == 1 && strcmp(names, "[::1]:3310 ") == 0, "rc=%d names=%s",
	    rc, names);
	names[0] = '\0';
	rc = hostport_resolve("192.0.2.7", "783", collect, names, err,
	    sizeof(err));
	CHECK(rc == 1 && strcmp(names, "192.0.2.7:783 ") == 0,
	    "rc=%d names=%s", rc, names);

	for (i = 0; i < sizeof(pick_cases) / sizeof(pick_cases[0]); i++) {
		rc = failover_pick(pick_cases[i].n, pick_cases[i].first,
		    pick_cases[i].tried, pick_cases[i].down);
		CHECK(rc == pick_cases[i].want, "pick case %zu: %d, want %d",
		    i, rc, pick_cases[i].want);
	}
}
