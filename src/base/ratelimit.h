/* SPDX-License-Identifier: MIT */
#ifndef SPORK_RATELIMIT_H
#define SPORK_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum rl_verdict {
	RL_OK,
	RL_TOO_MANY,		/* sessions from this address at the maximum */
	RL_TOO_FAST,		/* connection rate from this address exceeded */
};

#define RL_KEY_LEN	17	/* family byte + address (or network) */

void		rl_key(const struct sockaddr_storage *,
		    unsigned char key[RL_KEY_LEN]);
uint32_t	rl_key_hash(const unsigned char key[RL_KEY_LEN]);
enum rl_verdict	rl_admit(const struct sockaddr_storage *, uint64_t now_ms,
		    size_t max_sessions, size_t per_minute);
void		rl_release(const struct sockaddr_storage *, uint64_t now_ms,
		    size_t per_minute);
size_t		rl_tracked(void);
uint32_t	rl_sessions(const struct sockaddr_storage *);
void		rl_set_v6_prefix(unsigned bits);
void		rl_sweep(uint64_t now_ms, size_t per_minute);

#endif
