/* SPDX-License-Identifier: MIT */
#ifndef SPORK_TLS_CADIGEST_H
#define SPORK_TLS_CADIGEST_H

#include <openssl/sha.h>
#include <openssl/x509_vfy.h>

/* What st holds (cafile: the file it was loaded from, empty for the
 * system store, whose hashed directories are taken too), as one SHA-256
 * into md; zeroes when it could not be made (memory, a path too long, more
 * than TLS_MDS_MAX items), which tls_md_unknown tells. */
void	tls_store_digest(X509_STORE *st, const char *cafile,
	    unsigned char md[SHA256_DIGEST_LENGTH]);
/* A digest tls_store_digest could not make: the set counts as changed. */
int	tls_md_unknown(const unsigned char md[SHA256_DIGEST_LENGTH]);

#endif
