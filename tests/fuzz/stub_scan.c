/* SPDX-License-Identifier: MIT */
/*
 * conf.c needs policy.c (action names), and policy.c's policy_decide()
 * names verdicts with scan_verdict_name(), which lives in scan_pool.c
 * together with the worker pool, libclamav and libseccomp. The fuzz
 * targets never decide a policy; this stands in so they link without
 * those libraries. Likewise the content policy's active rules (none).
 */
#include "scanner.h"

const char *
scan_verdict_name(enum scan_verdict v)
{
	(void)v;
	return "fuzz-stub";
}

struct content_rules *
content_active(void)
{
	return NULL;
}
