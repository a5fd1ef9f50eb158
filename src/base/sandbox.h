/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SANDBOX_H
#define SPORK_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A worker that made a call outside its allow list exits with this. */
#define SANDBOX_EXIT_SYSCALL	97

struct sandbox_conf {
	uint64_t	 max_memory;	/* RLIMIT_AS, 0 = unlimited */
	uint64_t	 max_file;	/* RLIMIT_FSIZE for temp files */
	int		 dns;		/* may open sockets to ask DNS */
};

/* scan_user's identity, and the uid the relay keeps as saved uid in it. */
struct sandbox_ids {
	int		 set;		/* 0: not started as root */
	uid_t		 uid;
	gid_t		 gid;
	uid_t		 saved_uid;
};

int	sandbox_ids_resolve(struct sandbox_ids *, const char *scan_user,
	    const char *relay_user, char *err, size_t errlen);
int	sandbox_become(const struct sandbox_ids *, char *err, size_t errlen);
int	sandbox_enter(const struct sandbox_conf *, char *err, size_t errlen);
int	sandbox_daemon(const struct sandbox_ids *, char *err, size_t errlen);

#endif
