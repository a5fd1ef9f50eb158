/* SPDX-License-Identifier: MIT */
#ifndef SPORK_TLS_DEST_H
#define SPORK_TLS_DEST_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "buf.h"
#include "tls_keys.h"

struct tls_dest;

/* How STARTTLS coverage is counted (sporkctl status). */
enum tls_cov {
	COV_INTERCEPTED,	/* TLS on both halves, scanned */
	COV_OUTBOUND,		/* intercepted with a minted certificate */
	COV_PASS_NOKEY,		/* passthrough: the server's key is not held */
	COV_PASS_POLICY,	/* passthrough by tls_policy */
	COV_STRIPPED,		/* STARTTLS hidden (tls_policy strip) */
	COV_FAILED,		/* TLS with the server failed: 421 */
	COV_MAX
};

struct tls_dest	*tls_dest_get(const char *server);
const char	*tls_dest_name(const struct tls_dest *);
/* 1 when the server is known to present a certificate whose key is not
 * held and was checked less than recheck ms ago: splice at once. */
int		 tls_dest_known_keyless(const struct tls_dest *, uint64_t now,
		    uint64_t recheck);
/* The upstream handshake is done: what the server presented (from the
 * cache when the session was resumed). Returns its chain, leaf first,
 * or NULL when there is none. */
STACK_OF(X509)	*tls_dest_presented(struct tls_dest *, SSL *upstream,
		    uint64_t now);
/* Record whether the key is held; warns once per server and key. */
void		 tls_dest_keyed(struct tls_dest *, const struct tls_key *,
		    const char *session);
void		 tls_dest_count(struct tls_dest *, enum tls_cov);
SSL_SESSION	*tls_dest_session(struct tls_dest *, uint64_t now);
void		 tls_dest_keys_changed(void);
void		 tls_dest_trust_changed(void);
void		 tls_dest_save_session(struct tls_dest *, SSL_SESSION *,
		    uint64_t now);
X509		*tls_dest_minted(struct tls_dest *, const unsigned char *spki);
void		 tls_dest_set_minted(struct tls_dest *, X509 *,
		    const unsigned char *spki);
/* The outbound CA was reloaded: no leaf minted under the old one is
 * given again. */
void		 tls_dest_minted_forget(void);

void		 tls_cov_count(enum tls_cov);
void		 tls_cov_message(void);
void		 tls_cov_status(struct buf *);
void		 tls_dest_list(struct buf *);

#endif
