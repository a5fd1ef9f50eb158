/* SPDX-License-Identifier: MIT */
#ifndef SPORK_CBA_H
#define SPORK_CBA_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "conf.h"
#include "ev.h"

/* Binds the SYN queue and opens the raw sockets for resets; before the
 * divert goes in and before privileges are dropped. sessions counts the
 * relay's sessions (held SYNs and sessions share max_sessions). -1 with
 * err. */
int	cba_init(struct ev_loop *, const struct conf *,
	    size_t (*sessions)(void), char *err, size_t errlen);
/* The upstream connection made for the client connection that the
 * transparent listener just accepted (client: its peer, server: its
 * original destination), or -1 if there is none; id gets the session id
 * the connect-before-accept log lines used. */
int	cba_take(const struct sockaddr_storage *client,
	    const struct sockaddr_storage *server, char *id, size_t idlen);
/* Stops holding SYNs: closes the queue (held SYNs are dropped, new ones
 * pass unqueued) and every upstream connection not yet taken. */
void	cba_stop(void);
/* SYNs held, and connections waiting to be taken. */
size_t	cba_pending(void);
/* cba.* lines for sporkctl status (nothing when not in use): held and
 * waiting connects, sources tracked, SYNs let through unheld because
 * their source was over its budget. */
void	cba_status(struct buf *);
/* Frees what the last batch of events closed. */
void	cba_reap(void);

#endif
