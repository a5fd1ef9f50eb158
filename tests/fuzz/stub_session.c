/* SPDX-License-Identifier: MIT */
/*
 * What fuzz_session's relay reaches of the content policy: no rules are
 * active (stub_scan.c's content_active() says so), so these are never
 * called with anything to do; they stand in so the target links without
 * GMime, libmagic, libarchive and PCRE2.
 */
#include <stdint.h>
#include <sys/socket.h>

#include "content.h"
#include "dlp.h"

int
content_outbound(const struct content_rules *rs,
    const struct sockaddr_storage *client)
{
	(void)rs;
	(void)client;
	return 0;
}

void
content_account(const char *sid, const struct content_result *res,
    uint64_t size, uint64_t new_size)
{
	(void)sid;
	(void)res;
	(void)size;
	(void)new_size;
}

const char *
content_match_name(enum content_match m)
{
	(void)m;
	return "fuzz-stub";
}

const char *
dlp_kind_name(enum dlp_kind k)
{
	(void)k;
	return "fuzz-stub";
}
