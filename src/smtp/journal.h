/* SPDX-License-Identifier: MIT */
#ifndef SPORK_JOURNAL_H
#define SPORK_JOURNAL_H

#include <stddef.h>

#include "buf.h"
#include "conf.h"
#include "ev.h"
#include "journal_format.h"
#include "spool.h"

/*
 * The journal (journal_inbound, journal_outbound): a copy of every
 * message the server accepted, in two phases so that it holds exactly
 * those, once each. The session (relay.c) asks for the copy before it
 * sends DATA; the copy goes to tmp/ of a Maildir (the target, or for an
 * smtp: target a local queue under spool_dir) and is fsync'd. On the
 * server's 2xx to the final dot the session commits it (renamed to new/);
 * on anything else, or when the session ends first, it discards it.
 */

struct journal_copy;

/* One message as it goes to the server: the envelope, then the header
 * lines sent before the spool (NULL: none), then the spool. */
struct journal_msg {
	const char		*id;		/* session id, for logs */
	int			 inside;	/* outbound */
	struct journal_envelope	 env;
	const char		*head[2];
	const struct spool	*spool;
};

enum journal_answer {
	JOURNAL_GO,		/* send the message (*jc may be NULL) */
	JOURNAL_TEMPFAIL,	/* no copy and journal_failure tempfail:
				 * answer 451, send the server RSET */
};

/* Before the privileges go: the directories, owned by `user`; the
 * retention timer and the queue runners. */
int	journal_init(struct ev_loop *, const struct conf *, char *err,
	    size_t errlen);
/* The copy of m in tmp/; *jc NULL when the direction has no journal or
 * the copy failed under journal_failure deliver (logged, counted). */
enum journal_answer journal_begin(const struct journal_msg *m,
	    struct journal_copy **jc);
/* The server accepted the message: the copy goes to new/. Frees jc;
 * NULL is fine. */
void	journal_commit(struct journal_copy *jc);
/* It did not, or nobody knows (why, for the log): the copy goes. Frees
 * jc; NULL is fine. */
void	journal_discard(struct journal_copy *jc, const char *why);
void	journal_status(struct buf *);

#endif
