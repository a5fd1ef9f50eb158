/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SPAM_POLICY_H
#define SPORK_SPAM_POLICY_H

#include "action.h"
#include "spam.h"

struct conf;

/* The rules a decision is counted under (sporkctl status). */
enum spam_rule {
	SPAM_RULE_HAM,		/* scored below every threshold */
	SPAM_RULE_TAG,
	SPAM_RULE_QUARANTINE,
	SPAM_RULE_REJECT,
	SPAM_RULE_UNAVAILABLE_ACCEPT,
	SPAM_RULE_UNAVAILABLE_TEMPFAIL,
	SPAM_RULE_SKIPPED,	/* over spam_max_size: not sent */
	SPAM_RULES,
};

struct spam_decision {
	enum action action;
	enum spam_rule	 rule;
	int		 deliver;
	char		 reply[256];	/* when not delivered */
	char		 header[768];	/* prepended when delivered */
};

/* From a spam result (or its absence: skipped) to what the relay does. */
void		 spam_policy_decide(const struct conf *,
		    const struct spam_result *, struct spam_decision *);
void		 spam_policy_skipped(size_t size, size_t max,
		    struct spam_decision *);
const char	*spam_rule_name(enum spam_rule);

#endif
