/* SPDX-License-Identifier: MIT */
#ifndef SPORK_NOTICE_H
#define SPORK_NOTICE_H

#include <stddef.h>

#include "ev.h"

struct conf;
struct spool;

/* What a notice says about one message. */
struct notice_info {
	const char		 *session;
	const char		 *client;	/* ADDR:PORT */
	const char		 *server;	/* original destination */
	int			  transparent;
	const char		 *helo;
	const char		 *sender;	/* with <> */
	char			**rcpts;
	size_t			  nrcpts;
	const char		 *policy;	/* whose decision: "virus",
						 * "content", "spam" */
	const char		 *action;
	const char		 *verdict;
	const char		 *name;		/* virus, rule, score */
	const char		 *detail;	/* what matched; may be NULL */
	const char		 *quarantine_id;
	unsigned		  removed;
	const struct spool	 *spool;	/* the message, for its Subject */
};

int	notice_send(struct ev_loop *, const struct conf *,
	    const struct notice_info *);

#endif
