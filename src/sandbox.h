/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SANDBOX_H
#define SPORK_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

struct sandbox_conf {
	const char	*user;		/* used only when started as root */
	uint64_t	 max_memory;	/* RLIMIT_AS, 0 = unlimited */
	uint64_t	 max_file;	/* RLIMIT_FSIZE for temp files */
	int		 dns;		/* may open sockets to ask DNS */
};

int	sandbox_enter(const struct sandbox_conf *, char *err, size_t errlen);
int	sandbox_daemon(char *err, size_t errlen);

#endif
