/* SPDX-License-Identifier: MIT */
/*
 * Spam policy: from an engine's score and the configured thresholds to
 * an action, the client's reply and the headers added to what is
 * delivered. Only the score counts: the engine's own opinion and action
 * are reported, never obeyed, so one set of thresholds means the same
 * with either engine. A message the engine did not score is never
 * described as ham. Nothing here touches a socket.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "spam.h"
#include "spam_policy.h"

static const char *const spam_rule_names[] = {
	[SPAM_RULE_HAM] = "ham",
	[SPAM_RULE_TAG] = "tag",
	[SPAM_RULE_QUARANTINE] = "quarantine",
	[SPAM_RULE_REJECT] = "reject",
	[SPAM_RULE_UNAVAILABLE_ACCEPT] = "unavailable_accept",
	[SPAM_RULE_UNAVAILABLE_TEMPFAIL] = "unavailable_tempfail",
	[SPAM_RULE_SKIPPED] = "skipped",
};

const char *
spam_rule_name(enum spam_rule r)
{
	return spam_rule_names[r];
}

/* The engine's own short reason, when it gave one, for the reply. */
static void
spam_reply(struct spam_decision *d, const struct spam_result *r,
    const char *code)
{
	snprintf(d->reply, sizeof(d->reply), "%s Message rejected as spam%s%s%s",
	    code, r->message[0] != '\0' ? " (" : "", r->message,
	    r->message[0] != '\0' ? ")" : "");
}

void
spam_policy_decide(const struct conf *c, const struct spam_result *r,
    struct spam_decision *d)
{
	const char	*engine = r->engine;
	double		 required;
	size_t		 l;

	memset(d, 0, sizeof(*d));
	if (!r->ok) {
		if (c->spam_unavailable_tempfail) {
			d->action = ACT_TEMPFAIL;
			d->rule = SPAM_RULE_UNAVAILABLE_TEMPFAIL;
			snprintf(d->reply, sizeof(d->reply), "451 4.7.1 Message "
			    "deferred: spam check unavailable, try again "
			    "later");
			return;
		}
		d->action = ACT_DELIVER;
		d->rule = SPAM_RULE_UNAVAILABLE_ACCEPT;
		d->deliver = 1;
		snprintf(d->header, sizeof(d->header), "X-Spam-Status: Unknown, "
		    "engine=%.*s unavailable\r\n", (int)strcspn(engine, " "),
		    engine);
		return;
	}
	if (r->score >= c->spam_reject_score) {
		d->action = ACT_REJECT;
		d->rule = SPAM_RULE_REJECT;
		spam_reply(d, r, "550 5.7.1");
		return;
	}
	if (r->score >= c->spam_quarantine_score) {
		d->action = ACT_QUARANTINE;
		d->rule = SPAM_RULE_QUARANTINE;
		d->deliver = c->quarantine_then_deliver;
		spam_reply(d, r, "550 5.7.1");
	} else if (r->score >= c->spam_tag_score) {
		d->action = ACT_TAG;
		d->rule = SPAM_RULE_TAG;
		d->deliver = 1;
	} else {
		d->action = ACT_DELIVER;
		d->rule = SPAM_RULE_HAM;
		d->deliver = 1;
	}
	if (!d->deliver)
		return;
	/* SpamAssassin's header style, which filters already know. */
	if (d->action != ACT_DELIVER)
		snprintf(d->header, sizeof(d->header), "X-Spam-Flag: YES\r\n");
	/* "required": the first threshold that does anything. */
	required = c->spam_tag_score;
	if (c->spam_quarantine_score < required)
		required = c->spam_quarantine_score;
	if (c->spam_reject_score < required)
		required = c->spam_reject_score;
	if (!isfinite(required))
		required = r->required;
	l = strlen(d->header);
	snprintf(d->header + l, sizeof(d->header) - l, "X-Spam-Score: %.2f\r\n"
	    "X-Spam-Status: %s, score=%.2f required=%.2f engine=%.*s "
	    "tests=%s\r\n", r->score, d->action != ACT_DELIVER ? "Yes" :
	    "No", r->score, required, (int)strcspn(engine, " "),
	    engine, r->symbols[0] != '\0' ? r->symbols : "none");
}

void
spam_policy_skipped(size_t size, size_t max, struct spam_decision *d)
{
	memset(d, 0, sizeof(*d));
	d->action = ACT_DELIVER;
	d->rule = SPAM_RULE_SKIPPED;
	d->deliver = 1;
	snprintf(d->header, sizeof(d->header), "X-Spam-Status: Unknown, not "
	    "checked (%zu bytes, over %zu)\r\n", size, max);
}
