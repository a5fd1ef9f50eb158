/* SPDX-License-Identifier: MIT */
#ifndef SPORK_POLICY_H
#define SPORK_POLICY_H

#include <stddef.h>

#include "scanner.h"

/* What to do with a message once its scan is known. */
enum action {
	ACT_DELIVER,		/* clean: deliver, with the scan header */
	ACT_REJECT,		/* 5xx */
	ACT_TEMPFAIL,		/* 4xx */
	ACT_TAG,		/* deliver with a verdict header */
	ACT_QUARANTINE,		/* keep a copy, then reject or deliver */
	ACT_CLEAN,		/* deliver with infected parts replaced */
};

struct conf;

struct policy_decision {
	enum action	 action;
	enum action	 scan_action;	/* the scan verdict's, before content */
	int		 deliver;	/* after quarantine: deliver or reject */
	char		 reply[512];	/* when not delivered */
	char		 header[768 + CONTENT_HEADERS_MAX]; /* prepended */
	int		 cleaned;	/* deliver the cleaned copy */
	int		 content;	/* the content policy decided */
	int		 rewritten;	/* deliver the content-rewritten copy */
};

int		 action_parse(const char *, int *);
const char	*action_name(enum action);
void		 policy_decide(const struct conf *, const struct scan_result *,
		    int scanned, struct policy_decision *);
int		 policy_notice_word(const char *);
int		 policy_notice_wanted(const struct conf *, const char *action);

#endif
