/* SPDX-License-Identifier: MIT */
#ifndef SPORK_ACTION_H
#define SPORK_ACTION_H

#include <stddef.h>

/*
 * The one vocabulary of what is done to a message or a client, shared by
 * the configuration, every check (scan, content rules, spam, milters,
 * pre-queue) and the logs. In increasing strength: where several checks
 * or rules speak, the strongest wins.
 */
enum action {
	ACT_NONE,		/* count and log only */
	ACT_DELIVER,		/* as it is (a milter's "accept") */
	ACT_TAG,		/* with a verdict header */
	ACT_FOOTER,		/* with a footer in its text parts */
	ACT_REDACT,		/* with the matches overwritten */
	ACT_STRIP,		/* with a part replaced by a notice */
	ACT_CLEAN,		/* with infected parts replaced */
	ACT_QUARANTINE,		/* a copy kept, then refused or delivered */
	ACT_TEMPFAIL,		/* 4xx */
	ACT_REJECT,		/* 5xx */
	ACT_CONNECT,		/* 554 instead of the banner */
	ACT_ERROR,		/* the check itself failed */
	ACT_COUNT
};

#define ACT_BIT(a)	(1U << (a))

const char	*action_name(enum action);
/* The word for a, among those allowed (ACT_BIT()s); -1 if not one. */
int		 action_parse(const char *, unsigned allowed, enum action *);
/* "reject, tempfail or tag": the allowed words, for an error message. */
void		 action_words(unsigned allowed, char *out, size_t len);

#endif
