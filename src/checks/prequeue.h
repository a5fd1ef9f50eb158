/* SPDX-License-Identifier: MIT */
#ifndef SPORK_PREQUEUE_H
#define SPORK_PREQUEUE_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "conf.h"
#include "ev.h"

/* What the relay does with a command (or the banner) after a check. */
enum prequeue_answer {
	PREQUEUE_PASS,		/* go on as without the checks */
	PREQUEUE_WAIT,		/* a lookup is out: ask again when woken */
	PREQUEUE_REPLY,		/* answer the client with the given reply */
};

struct prequeue;
typedef void	prequeue_wake_cb(void *arg);

int	prequeue_init(struct ev_loop *, const struct conf *, char *err,
	    size_t errlen);
struct prequeue *prequeue_new(const char *sid,
	    const struct sockaddr_storage *peer, prequeue_wake_cb *, void *arg);
void	prequeue_free(struct prequeue *);
enum prequeue_answer prequeue_greeting(struct prequeue *, int cfd,
	    size_t buffered, char *reply, size_t len);
void	prequeue_mail(struct prequeue *, const char *sender,
	    const char *helo);
void	prequeue_mail_restore(struct prequeue *, const char *sender,
	    const char *helo);
enum prequeue_answer prequeue_rcpt(struct prequeue *, const char *args,
	    size_t argslen, int can_reply, char *reply, size_t len);
enum prequeue_answer prequeue_data(struct prequeue *);
const char *prequeue_headers(struct prequeue *);
void	prequeue_status(struct buf *);

#endif
