/* SPDX-License-Identifier: MIT */
/* Per-client limits: an IPv6 client is its /64 (or the prefix set). */
#include <arpa/inet.h>
#include <string.h>

#include "ratelimit.h"
#include "unit.h"

static struct sockaddr_storage
addr(const char *s)
{
	struct sockaddr_storage	ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':') != NULL) {
		ss.ss_family = AF_INET6;
		inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)&ss)->sin6_addr);
	} else {
		ss.ss_family = AF_INET;
		inet_pton(AF_INET, s, &((struct sockaddr_in *)&ss)->sin_addr);
	}
	return ss;
}

void
test_ratelimit(void)
{
	static const struct {
		unsigned	 prefix;
		const char	*first, *second;
		enum rl_verdict	 want;	/* the second, one session each */
	} t[] = {
		{ 64, "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", RL_TOO_MANY },
		{ 64, "2001:db8:1:2::1", "2001:db8:1:3::1", RL_OK },
		{ 128, "2001:db8:1:2::1", "2001:db8:1:2::2", RL_OK },
		{ 56, "2001:db8:1:200::1", "2001:db8:1:2ff::1", RL_TOO_MANY },
		{ 56, "2001:db8:1:200::1", "2001:db8:1:300::1", RL_OK },
		{ 60, "2001:db8:1:20::1", "2001:db8:1:2f::1", RL_TOO_MANY },
		{ 60, "2001:db8:1:20::1", "2001:db8:1:30::1", RL_OK },
		{ 64, "192.0.2.1", "192.0.2.2", RL_OK },
		{ 64, "192.0.2.1", "192.0.2.1", RL_TOO_MANY },
	};
	struct sockaddr_storage	a, b;
	enum rl_verdict		v;
	size_t			i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		rl_set_v6_prefix(t[i].prefix);
		a = addr(t[i].first);
		b = addr(t[i].second);
		CHECK(rl_admit(&a, 1000, 1, 0) == RL_OK, "case %zu: first", i);
		v = rl_admit(&b, 1000, 1, 0);
		CHECK(v == t[i].want, "case %zu: %s then %s under /%u: %d", i,
		    t[i].first, t[i].second, t[i].prefix, v);
		rl_release(&a, 1000, 0);
		if (v == RL_OK)
			rl_release(&b, 1000, 0);
	}
	rl_set_v6_prefix(64);
	CHECK(rl_tracked() == 0, "entries left: %zu", rl_tracked());
}
