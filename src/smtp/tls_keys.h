/* SPDX-License-Identifier: MIT */
#ifndef SPORK_TLS_KEYS_H
#define SPORK_TLS_KEYS_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#define TLS_SPKI_LEN	32		/* SHA-256 of the SubjectPublicKeyInfo */
#define TLS_SPKI_HEX	(2 * TLS_SPKI_LEN + 1)

/* One protected server's key pair, found by its leaf's SPKI digest. */
struct tls_key {
	unsigned char	 spki[TLS_SPKI_LEN];
	X509		*leaf;
	EVP_PKEY	*key;
	char		 file[256];		/* where it came from */
	char		 subject[256];
};

struct tls_keys;

/* The key reader: a child forked before privileges are dropped, for
 * the key pairs and the outbound CA (any of them may be ""). */
int		 tls_keyd_start(const char *dir, const char *cert_file,
		    const char *key_file, const char *ca_file,
		    const char *ca_key_file, char *err, size_t errlen);
void		 tls_keyd_stop(void);

/* Read every key pair again through the reader; NULL with err on a bad
 * file (nothing is half-loaded). */
struct tls_keys	*tls_keys_load(char *err, size_t errlen);
void		 tls_keys_free(struct tls_keys *);
/* The outbound CA read again through the reader: 0 with its certificate
 * and key (the caller's), or -1 with err, nothing read. */
int		 tls_ca_load(X509 **ca, EVP_PKEY **ca_key, char *err,
		    size_t errlen);
size_t		 tls_keys_count(const struct tls_keys *);
/* Whether two sets hold the same pairs: each certificate (X509_cmp: its
 * whole encoding) with the same key, whatever the files' names. */
int		 tls_keys_same(const struct tls_keys *, const struct tls_keys *);
const struct tls_key *tls_keys_find(const struct tls_keys *,
		    const unsigned char spki[TLS_SPKI_LEN]);

/* The pair table of one buffer of messages, for the unit tests. */
struct tls_keys	*tls_keys_parse(const char *const *names,
		    const char *const *texts, const size_t *lens, size_t n,
		    char *err, size_t errlen);

/* The CA of two PEM texts, checked (a CA, its key): for tls_ca_load
 * and the unit tests. */
int		 tls_ca_parse(const char *cert, size_t certlen, const char *key,
		    size_t keylen, X509 **ca, EVP_PKEY **ca_key, char *err,
		    size_t errlen);

int		 tls_spki_digest(X509 *, unsigned char out[TLS_SPKI_LEN]);
void		 tls_spki_hex(const unsigned char spki[TLS_SPKI_LEN],
		    char out[TLS_SPKI_HEX]);

#endif
