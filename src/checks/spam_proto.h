/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SPAM_PROTO_H
#define SPORK_SPAM_PROTO_H

#include <stddef.h>

#include "buf.h"
#include "spam.h"

#define SPAM_REPLY_MAX		(256 * 1024)	/* whole reply, either engine */
#define SPAM_HEAD_MAX		(64 * 1024)	/* our request head */

/*
 * The request head (everything before the message bytes) for a message of
 * size bytes. Client-supplied values are made header-safe; recipients that
 * do not fit in SPAM_HEAD_MAX are left out. -1 when even the fixed part
 * does not fit.
 */
int	spam_rspamd_head(struct buf *, const struct spam_envelope *,
	    size_t size);
int	spam_spamd_head(struct buf *, const struct spam_envelope *,
	    size_t size);

/*
 * The engine's reply, as far as received; eof: the engine closed. 0: not
 * complete yet; 1: complete and parsed into r (r->ok set); -1: unusable,
 * with the reason in r->error. Nothing that cannot be parsed is ever a
 * score.
 */
int	spam_rspamd_reply(const char *, size_t, int eof, struct spam_result *);
int	spam_spamd_reply(const char *, size_t, int eof, struct spam_result *);

/* The JSON body of an rspamd /checkv2 reply: 0, or -1 with r->error. */
int	spam_rspamd_json(const char *, size_t, struct spam_result *);

#endif
