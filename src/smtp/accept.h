/* SPDX-License-Identifier: MIT */
#ifndef SPORK_ACCEPT_H
#define SPORK_ACCEPT_H

#include "conf.h"
#include "ev.h"

/* Opens the transparent and explicit listeners; -1 (logged) on failure. */
int	accept_listen(struct ev_loop *, const struct conf *);
/* Closes them: no new session (shutdown). */
void	accept_stop(void);

#endif
