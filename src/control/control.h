/* SPDX-License-Identifier: MIT */
#ifndef SPORK_CONTROL_H
#define SPORK_CONTROL_H

#include <stddef.h>

#include "conf.h"
#include "ev.h"
#include "scanner.h"
#include "spam.h"

int	control_init(struct ev_loop *, const struct conf *,
	    struct scan_backend *, char *err, size_t errlen);
void	control_close(void);
void	control_set_spam(struct spam *);
/* What `sporkctl reload` runs: 0 started, -1 failed. */
void	control_set_reload(int (*)(void));

#endif
