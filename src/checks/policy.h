/* SPDX-License-Identifier: MIT */
#ifndef SPORK_POLICY_H
#define SPORK_POLICY_H

#include <stddef.h>

#include "action.h"
#include "scanner.h"

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

void		 policy_decide(const struct conf *, const struct scan_result *,
		    int scanned, struct policy_decision *);
int		 policy_notice_wanted(const struct conf *, enum action);

#endif
