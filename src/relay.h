/* SPDX-License-Identifier: MIT */
#ifndef SPORK_RELAY_H
#define SPORK_RELAY_H

#include "conf.h"
#include "ev.h"

int	relay_init(struct ev_loop *, const struct conf *);
int	relay_listen(void);
void	relay_stop_listening(void);
size_t	relay_sessions(void);
void	relay_reap(void *);

/* Only for tests/fuzz/fuzz_session.c: a session over connected fds. */
int	relay_session_attach(int cfd, int sfd);

#endif
