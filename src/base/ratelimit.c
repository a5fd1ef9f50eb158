/* SPDX-License-Identifier: MIT */
/*
 * Per-client-address accounting: live sessions, and a token bucket for
 * new connections (per_minute tokens, refilled continuously, burst of the
 * same size). An address is forgotten once it has no session and a full
 * bucket, so memory follows the number of recently active clients, with a
 * hard cap beyond which new addresses are admitted untracked (and that is
 * counted). An IPv6 client is its network of rl_v6_prefix bits (a /64 by
 * default: one host holds a whole /64 and could otherwise take a new
 * address per connection). The table's hash is keyed with a random seed,
 * so no client can choose addresses that land in one chain. Knows nothing
 * about SMTP.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ratelimit.h"

#define RL_BUCKETS	4096
#define RL_MAX_ENTRIES	200000

struct rl_entry {
	unsigned char	 key[17];	/* family byte + address */
	uint32_t	 sessions;
	double		 tokens;
	uint64_t	 last;
	struct rl_entry	*next;
};

static struct rl_entry	*rl_table[RL_BUCKETS];
static size_t		 rl_count;
static unsigned		 rl_v6_prefix = 64;
static uint32_t		 rl_seed;
static int		 rl_seeded;

/* How much of an IPv6 address names a client (48 to 128 bits). */
void
rl_set_v6_prefix(unsigned bits)
{
	if (bits >= 48 && bits <= 128)
		rl_v6_prefix = bits;
}

/* Who a client is: its IPv4 address, or its IPv6 network. */
void
rl_key(const struct sockaddr_storage *ss, unsigned char key[RL_KEY_LEN])
{
	memset(key, 0, 17);
	key[0] = (unsigned char)ss->ss_family;
	if (ss->ss_family == AF_INET6) {
		memcpy(key + 1, &((const struct sockaddr_in6 *)ss)->sin6_addr,
		    rl_v6_prefix / 8);
		if (rl_v6_prefix % 8)
			key[1 + rl_v6_prefix / 8] = ((const unsigned char *)
			    &((const struct sockaddr_in6 *)ss)->sin6_addr)
			    [rl_v6_prefix / 8] & (0xff << (8 - rl_v6_prefix % 8));
	} else
		memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
}

/* A hash of a key that no client can steer (a random seed). */
uint32_t
rl_key_hash(const unsigned char key[RL_KEY_LEN])
{
	uint32_t	h;
	int		i;

	if (!rl_seeded) {
		if (getrandom(&rl_seed, sizeof(rl_seed), GRND_NONBLOCK) !=
		    (ssize_t)sizeof(rl_seed))
			rl_seed = (uint32_t)(uintptr_t)&rl_seed;
		rl_seeded = 1;
	}
	h = 2166136261u ^ rl_seed;
	for (i = 0; i < RL_KEY_LEN; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

static unsigned
rl_hash(const unsigned char key[RL_KEY_LEN])
{
	return rl_key_hash(key) % RL_BUCKETS;
}

static struct rl_entry **
rl_find(const unsigned char key[17])
{
	struct rl_entry	**pp;

	for (pp = &rl_table[rl_hash(key)]; *pp != NULL; pp = &(*pp)->next)
		if (memcmp((*pp)->key, key, 17) == 0)
			return pp;
	return pp;
}

static void
rl_refill(struct rl_entry *e, uint64_t now, size_t per_minute)
{
	if (now > e->last)
		e->tokens += (double)(now - e->last) * (double)per_minute /
		    60000.0;
	if (e->tokens > (double)per_minute)
		e->tokens = (double)per_minute;
	e->last = now;
}

enum rl_verdict
rl_admit(const struct sockaddr_storage *ss, uint64_t now,
    size_t max_sessions, size_t per_minute)
{
	unsigned char	  key[17];
	struct rl_entry	**pp, *e;

	rl_key(ss, key);
	pp = rl_find(key);
	if ((e = *pp) == NULL) {
		if (rl_count >= RL_MAX_ENTRIES ||
		    (e = calloc(1, sizeof(*e))) == NULL)
			return RL_OK;
		memcpy(e->key, key, 17);
		e->tokens = (double)per_minute;
		e->last = now;
		*pp = e;
		rl_count++;
	}
	rl_refill(e, now, per_minute);
	if (max_sessions && e->sessions >= max_sessions)
		return RL_TOO_MANY;
	if (per_minute && e->tokens < 1.0)
		return RL_TOO_FAST;
	/* With no rate limit no token is taken: the entry must still be
	 * forgotten once its sessions are gone. */
	if (per_minute)
		e->tokens -= 1.0;
	e->sessions++;
	return RL_OK;
}

void
rl_release(const struct sockaddr_storage *ss, uint64_t now,
    size_t per_minute)
{
	unsigned char	  key[17];
	struct rl_entry	**pp, *e;

	rl_key(ss, key);
	pp = rl_find(key);
	if ((e = *pp) == NULL)
		return;
	if (e->sessions > 0)
		e->sessions--;
	rl_refill(e, now, per_minute);
	if (e->sessions == 0 && e->tokens >= (double)per_minute) {
		*pp = e->next;
		free(e);
		rl_count--;
	}
}

/* Live sessions of the client at this address (its /64 for IPv6). */
uint32_t
rl_sessions(const struct sockaddr_storage *ss)
{
	unsigned char	  key[17];
	struct rl_entry	 *e;

	rl_key(ss, key);
	e = *rl_find(key);
	return e != NULL ? e->sessions : 0;
}

size_t
rl_tracked(void)
{
	return rl_count;
}

/* Forget idle addresses whose bucket has refilled; run once a minute. */
void
rl_sweep(uint64_t now, size_t per_minute)
{
	struct rl_entry	**pp, *e;
	size_t		  i;

	for (i = 0; i < RL_BUCKETS; i++)
		for (pp = &rl_table[i]; (e = *pp) != NULL; ) {
			rl_refill(e, now, per_minute);
			if (e->sessions == 0 &&
			    e->tokens >= (double)per_minute) {
				*pp = e->next;
				free(e);
				rl_count--;
			} else
				pp = &e->next;
		}
}
