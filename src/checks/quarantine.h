/* SPDX-License-Identifier: MIT */
#ifndef SPORK_QUARANTINE_H
#define SPORK_QUARANTINE_H

#include <stddef.h>

#include "spool.h"

#define QUARANTINE_ID_MAX	40

struct quarantine_meta {
	const char	 *client;	/* ADDR:PORT */
	const char	 *server;	/* original destination ADDR:PORT */
	const char	 *helo;
	const char	 *sender;	/* reverse path, with <> */
	char		**rcpts;	/* accepted forward paths, with <> */
	size_t		  nrcpts;
	const char	 *verdict;
	const char	 *name;
	const char	 *session;
	const char	 *mode;		/* transparent or explicit */
};

int	quarantine_store(const char *dir, const struct spool *,
	    const struct quarantine_meta *, char *id, size_t idlen);

#endif
