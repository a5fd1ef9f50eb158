/* SPDX-License-Identifier: MIT */
#ifndef SPORK_RELAY_H
#define SPORK_RELAY_H

#include <sys/socket.h>

#include "conf.h"
#include "ev.h"

int	relay_init(struct ev_loop *, const struct conf *);
void	relay_session_new(int transparent, int listen_port, int cfd,
	    const struct sockaddr_storage *peer,
	    const struct sockaddr_storage *local, int upstream, const char *id);
size_t	relay_sessions(void);
void	relay_reap(void *);

/* Only for tests/fuzz/fuzz_session.c: a session over connected fds. */
int	relay_session_attach(int cfd, int sfd);

#endif
