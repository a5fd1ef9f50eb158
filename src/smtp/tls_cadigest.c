/* SPDX-License-Identifier: MIT */
/*
 * What a CA set holds, as one SHA-256, so that a reload can tell a set
 * read again unchanged (its upstream sessions kept) from one that changed
 * (they are forgotten): the digest of each certificate (with its trust
 * settings) and CRL of the store, and for the system store of each entry
 * of its hashed directories, sorted. Knows nothing of sessions.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tls_cadigest.h"

#define TLS_MDS_MAX	65536	/* certificates, CRLs and directory entries
				 * a CA set's digest takes; past it the set
				 * counts as changed on every reload */

static int
tls_md_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SHA256_DIGEST_LENGTH);
}

int
tls_md_unknown(const unsigned char md[SHA256_DIGEST_LENGTH])
{
	static const unsigned char	zero[SHA256_DIGEST_LENGTH];

	return memcmp(md, zero, SHA256_DIGEST_LENGTH) == 0;
}

/* A list of digests, sorted and hashed into one: the order a file or a
 * directory lists its entries in does not count. */
struct tls_mds {
	unsigned char	*v;
	size_t		 n, cap;
};

static unsigned char *
tls_mds_next(struct tls_mds *l)
{
	unsigned char	*v;
	size_t		 cap;

	if (l->n >= TLS_MDS_MAX)
		return NULL;
	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 64;
		if ((v = reallocarray(l->v, cap, SHA256_DIGEST_LENGTH)) == NULL)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	return l->v + l->n * SHA256_DIGEST_LENGTH;
}

/* One path's digest: its name, and the identity, size and times of what
 * it names (zeroes for one that is not there). */
static int
tls_mds_stat(struct tls_mds *l, EVP_MD_CTX *ctx, const char *path)
{
	struct stat	 sb;
	unsigned char	*md;

	memset(&sb, 0, sizeof(sb));
	(void)stat(path, &sb);
	if ((md = tls_mds_next(l)) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, path, strlen(path) + 1) != 1 ||
	    EVP_DigestUpdate(ctx, &sb.st_dev, sizeof(sb.st_dev)) != 1 ||
	    EVP_DigestUpdate(ctx, &sb.st_ino, sizeof(sb.st_ino)) != 1 ||
	    EVP_DigestUpdate(ctx, &sb.st_size, sizeof(sb.st_size)) != 1 ||
	    EVP_DigestUpdate(ctx, &sb.st_mtim, sizeof(sb.st_mtim)) != 1 ||
	    EVP_DigestUpdate(ctx, &sb.st_ctim, sizeof(sb.st_ctim)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, NULL) != 1)
		return -1;
	l->n++;
	return 0;
}

/*
 * The system store's hashed directories (SSL_CERT_DIR, or OpenSSL's
 * default), which OpenSSL reads certificates from only as it needs them:
 * each directory and each of its entries, one digest a path
 * (tls_mds_stat). An entry added, removed or rewritten in place, a
 * symbolic link's target edited or gone, a directory whose mtime was put
 * back (its ctime was not): each changes the digest.
 */
static int
tls_certdirs_digest(struct tls_mds *l)
{
	const char	*dirs = getenv(X509_get_default_cert_dir_env());
	char		 list[PATH_MAX], path[PATH_MAX], *p, *next;
	struct dirent	*de;
	DIR		*d = NULL;
	EVP_MD_CTX	*ctx;
	int		 rc = -1;

	if (dirs == NULL)
		dirs = X509_get_default_cert_dir();
	if ((size_t)snprintf(list, sizeof(list), "%s", dirs) >= sizeof(list) ||
	    (ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	for (p = list; p != NULL; p = next) {
		if ((next = strchr(p, ':')) != NULL)
			*next++ = '\0';
		if (tls_mds_stat(l, ctx, p) == -1)
			goto done;
		if ((d = opendir(p)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			if ((size_t)snprintf(path, sizeof(path), "%s/%s", p,
			    de->d_name) >= sizeof(path) ||
			    tls_mds_stat(l, ctx, path) == -1)
				goto done;
		}
		closedir(d);
		d = NULL;
	}
	rc = 0;
done:
	if (d != NULL)
		closedir(d);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* A certificate with the trust settings a TRUSTED CERTIFICATE carries
 * (a use it is rejected for, say), which X509_digest leaves out. */
static int
tls_x509_digest(X509 *x, unsigned char md[SHA256_DIGEST_LENGTH])
{
	unsigned char	*der = NULL;
	int		 len, ok;

	if ((len = i2d_X509_AUX(x, &der)) <= 0)
		return 0;
	ok = EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL);
	OPENSSL_free(der);
	return ok;
}

/*
 * What a store holds, as one SHA-256: over the SHA-256 of each of its
 * certificates (with their trust settings) and CRLs, and for the
 * system's store (cafile empty) of each entry of its hashed directories,
 * sorted. A reload compares it with the set in use. On failure (memory,
 * a path too long) the digest is zeroes (tls_md_unknown): the set counts
 * as changed.
 */
void
tls_store_digest(X509_STORE *st, const char *cafile,
    unsigned char md[SHA256_DIGEST_LENGTH])
{
	STACK_OF(X509_OBJECT)	*objs = X509_STORE_get0_objects(st);
	struct tls_mds		 l = { NULL, 0, 0 };
	X509_OBJECT		*o;
	unsigned char		*one;
	int			 i, ok;

	memset(md, 0, SHA256_DIGEST_LENGTH);
	if (cafile[0] == '\0' && tls_certdirs_digest(&l) == -1)
		goto done;
	for (i = 0; objs != NULL && i < sk_X509_OBJECT_num(objs); i++) {
		o = sk_X509_OBJECT_value(objs, i);
		if ((one = tls_mds_next(&l)) == NULL)
			goto done;
		switch (X509_OBJECT_get_type(o)) {
		case X509_LU_X509:
			ok = tls_x509_digest(X509_OBJECT_get0_X509(o), one);
			break;
		case X509_LU_CRL:
			ok = X509_CRL_digest(X509_OBJECT_get0_X509_CRL(o),
			    EVP_sha256(), one, NULL);
			break;
		default:
			continue;
		}
		if (ok != 1)
			goto done;
		l.n++;
	}
	if (l.n > 0)
		qsort(l.v, l.n, SHA256_DIGEST_LENGTH, tls_md_cmp);
	if (EVP_Digest(l.v != NULL ? l.v : (unsigned char *)"", l.n *
	    SHA256_DIGEST_LENGTH, md, NULL, EVP_sha256(), NULL) != 1)
		memset(md, 0, SHA256_DIGEST_LENGTH);
done:
	free(l.v);
}
