/* SPDX-License-Identifier: MIT */
/*
 * The verdict policy's combined decisions: what is delivered when the
 * virus scan and the content policy both have a say. A message whose
 * virus was removed is delivered only as the cleaned copy, or not at all.
 */
#include <string.h>

#include "conf.h"
#include "content.h"
#include "policy.h"
#include "scanner.h"
#include "unit.h"

void
test_verdict_policy(void)
{
	static const struct {
		int			 vaction;	/* virus_action */
		int			 then_deliver;	/* quarantine_then */
		enum scan_verdict	 verdict;
		int			 cleaned;	/* the worker cleaned it */
		enum action	 ca;
		int			 deliver, want_cleaned;
	} t[] = {
		/* Found by audit: clean + content quarantine then deliver
		 * delivered the original, virus and all. */
		{ ACT_CLEAN, 1, SCAN_VIRUS, 1, ACT_QUARANTINE, 1, 1 },
		{ ACT_CLEAN, 0, SCAN_VIRUS, 1, ACT_QUARANTINE, 0, 1 },
		{ ACT_CLEAN, 1, SCAN_VIRUS, 1, ACT_REJECT, 0, 1 },
		{ ACT_CLEAN, 1, SCAN_VIRUS, 1, ACT_NONE, 1, 1 },
		{ ACT_CLEAN, 1, SCAN_VIRUS, 1, ACT_TAG, 1, 1 },
		/* Not cleaned (nothing found to remove): rejected. */
		{ ACT_CLEAN, 1, SCAN_VIRUS, 0, ACT_QUARANTINE, 0, 0 },
		{ ACT_REJECT, 1, SCAN_CLEAN, 0, ACT_QUARANTINE, 1, 0 },
		{ ACT_REJECT, 1, SCAN_VIRUS, 0, ACT_NONE, 0, 0 },
	};
	struct conf		 c;
	struct scan_result	 r;
	struct policy_decision	 d;
	size_t			 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		conf_defaults(&c);
		c.virus_action = t[i].vaction;
		c.quarantine_then_deliver = t[i].then_deliver;
		memset(&r, 0, sizeof(r));
		r.verdict = t[i].verdict;
		r.cleaned = t[i].cleaned;
		snprintf(r.name, sizeof(r.name), "Eicar-Test-Signature");
		r.content.checked = 1;
		r.content.action = t[i].ca;
		r.content.rule = -1;
		policy_decide(&c, &r, 1, &d);
		CHECK(d.deliver == t[i].deliver, "policy %zu: deliver %d", i,
		    d.deliver);
		if (d.deliver && t[i].verdict == SCAN_VIRUS)
			CHECK(d.cleaned == t[i].want_cleaned, "policy %zu: a "
			    "virus delivered with cleaned=%d", i, d.cleaned);
	}
}
