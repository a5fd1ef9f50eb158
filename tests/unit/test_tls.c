/* SPDX-License-Identifier: MIT */
/*
 * The key set: which files make a pair, which are refused and why, and
 * the lookup by SPKI digest; the outbound CA's checks (tests/data/tls
 * holds test-only pairs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "tls_keys.h"
#include "unit.h"

#define NFILES	10

static const char *const tls_files[NFILES] = {
	"a.pem", "a-key.pem", "b.pem", "b-key.pem", "c.pem", "c-key.pem",
	"a-both.pem", "README", "leaf.pem", "leaf-key.pem",
};
static char	*tls_text[NFILES];
static size_t	 tls_len[NFILES];

static const char *
text_of(const char *name, size_t *len)
{
	size_t	i;

	for (i = 0; i < NFILES; i++)
		if (strcmp(tls_files[i], name) == 0) {
			*len = tls_len[i];
			return tls_text[i];
		}
	return NULL;
}

/* A directory of the named files, each with the text of file `as`. */
static struct tls_keys *
set_of(const char *const *names, const char *const *as, size_t n, char *err,
    size_t errlen)
{
	const char	*texts[8];
	size_t		 lens[8], i;

	for (i = 0; i < n; i++)
		texts[i] = text_of(as[i], &lens[i]);
	return tls_keys_parse(names, texts, lens, n, err, errlen);
}

static void
test_tls_pairs(void)
{
	static const struct {
		const char	*names[4], *as[4];
		size_t		 n;
		long		 want;	/* pairs, or -1: refused */
		const char	*err;
	} t[] = {
		/* NAME.pem + NAME-key.pem */
		{ { "a.pem", "a-key.pem" }, { "a.pem", "a-key.pem" }, 2, 1, "" },
		/* chain and key in one file */
		{ { "mx.pem" }, { "a-both.pem" }, 1, 1, "" },
		/* NAME.crt + NAME.key */
		{ { "mx.crt", "mx.key" }, { "b.pem", "b-key.pem" }, 2, 1, "" },
		/* two servers, and a README that is no certificate */
		{ { "a.pem", "a-key.pem", "b.pem", "b-key.pem" },
		  { "a.pem", "a-key.pem", "b.pem", "b-key.pem" }, 4, 2, "" },
		{ { "a.pem", "a-key.pem", "README" },
		  { "a.pem", "a-key.pem", "README" }, 3, 1, "" },
		/* the same key twice: one pair */
		{ { "a.pem", "a-key.pem", "x.pem" },
		  { "a.pem", "a-key.pem", "a-both.pem" }, 3, 1, "" },
		/* refused: no key, a key of another certificate */
		{ { "a.pem" }, { "a.pem" }, 1, -1, "a.pem: no private key" },
		{ { "a.pem", "a-key.pem", "c.pem" },
		  { "a.pem", "a-key.pem", "c.pem" }, 3, -1, "c.pem: no private" },
		{ { "c.pem", "c-key.pem" }, { "c.pem", "a-key.pem" }, 2, -1,
		  "c.pem: the private key does not match" },
		/* nothing at all: an empty set */
		{ { NULL }, { NULL }, 0, 0, "" },
	};
	struct tls_keys	*ks;
	char		 err[256];
	size_t		 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err[0] = '\0';
		ks = set_of(t[i].names, t[i].as, t[i].n, err, sizeof(err));
		if (t[i].want == -1) {
			CHECK(ks == NULL, "set %zu: loaded", i);
			CHECK(strncmp(err, t[i].err, strlen(t[i].err)) == 0,
			    "set %zu: error \"%s\"", i, err);
		} else
			CHECK(ks != NULL && tls_keys_count(ks) ==
			    (size_t)t[i].want, "set %zu: %s", i, err);
		tls_keys_free(ks);
	}
}

static void
test_tls_lookup(void)
{
	static const char *const names[] = { "a.pem", "a-key.pem", "b.pem",
	    "b-key.pem" };
	struct tls_keys		*ks;
	const struct tls_key	*k;
	unsigned char		 spki[TLS_SPKI_LEN];
	char			 err[256], hex[TLS_SPKI_HEX];
	X509			*x;
	BIO			*bio;
	const char		*txt;
	size_t			 len = 0;

	ks = set_of(names, names, 4, err, sizeof(err));
	CHECK(ks != NULL, "set: %s", err);
	txt = text_of("b.pem", &len);
	bio = BIO_new_mem_buf(txt, (int)len);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	CHECK(x != NULL && tls_spki_digest(x, spki) == 0, "digest b");
	k = tls_keys_find(ks, spki);
	CHECK(k != NULL && strcmp(k->file, "b.pem") == 0 &&
	    strcmp(k->subject, "/CN=b.example.test") == 0, "b found: %s",
	    k ? k->file : "none");
	tls_spki_hex(spki, hex);
	CHECK(strlen(hex) == 64, "hex %s", hex);
	spki[0] ^= 1;
	CHECK(tls_keys_find(ks, spki) == NULL, "another key found");
	/* c's certificate: its key is not in the set. */
	X509_free(x);
	txt = text_of("c.pem", &len);
	bio = BIO_new_mem_buf(txt, (int)len);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	CHECK(x != NULL && tls_spki_digest(x, spki) == 0 &&
	    tls_keys_find(ks, spki) == NULL, "c is not held");
	X509_free(x);
	tls_keys_free(ks);
}

/* Sets compared as a reload does: the same pairs whatever the files are
 * called, a pair more or less or another pair is a change. */
static void
test_tls_same(void)
{
	static const char *const ab[] = { "a.pem", "a-key.pem", "b.pem",
	    "b-key.pem" };
	static const char *const ab_renamed[] = { "mx1.crt", "mx1.key",
	    "mx2.crt", "mx2.key" };
	static const char *const a_both[] = { "a-both.pem" };
	static const char *const c_pair[] = { "c.pem", "c-key.pem" };
	struct tls_keys	*k_ab, *k_ab2, *k_a, *k_a2, *k_b, *k_c, *k_none;
	char		 err[256];

	k_ab = set_of(ab, ab, 4, err, sizeof(err));
	k_ab2 = set_of(ab_renamed, ab, 4, err, sizeof(err));
	k_a = set_of(ab, ab, 2, err, sizeof(err));
	k_a2 = set_of(a_both, a_both, 1, err, sizeof(err));
	k_b = set_of(ab + 2, ab + 2, 2, err, sizeof(err));
	k_c = set_of(c_pair, c_pair, 2, err, sizeof(err));
	k_none = set_of(NULL, NULL, 0, err, sizeof(err));
	CHECK(k_ab && k_ab2 && k_a && k_a2 && k_b && k_c && k_none,
	    "sets: %s", err);
	if (k_ab && k_ab2 && k_a && k_a2 && k_b && k_c && k_none) {
		CHECK(tls_keys_same(k_ab, k_ab2), "renamed files: the same");
		CHECK(tls_keys_same(k_a, k_a2),
		    "a pair in two files or in one: the same");
		CHECK(!tls_keys_same(k_ab, k_a), "a pair less: a change");
		CHECK(!tls_keys_same(k_a, k_ab), "a pair more: a change");
		CHECK(!tls_keys_same(k_a, k_b), "b's pair for a's: a change");
		CHECK(!tls_keys_same(k_c, k_a), "a's pair for c's: a change");
		CHECK(tls_keys_same(k_none, k_none), "two empty sets");
		CHECK(!tls_keys_same(NULL, k_a), "none before, a pair now");
	}
	tls_keys_free(k_ab);
	tls_keys_free(k_ab2);
	tls_keys_free(k_a);
	tls_keys_free(k_a2);
	tls_keys_free(k_b);
	tls_keys_free(k_c);
	tls_keys_free(k_none);
}

/* The outbound CA: a CA with its own key, or refused with the reason. */
static void
test_tls_ca(void)
{
	static const struct {
		const char	*cert, *key, *err;
	} t[] = {
		{ "a.pem", "a-key.pem", NULL },
		{ "a-both.pem", "a-both.pem", NULL },
		{ "a.pem", "b-key.pem", "does not match" },
		{ "leaf.pem", "leaf-key.pem", "not a CA" },
		{ "README", "a-key.pem", "tls_outbound_ca_file: no certificate" },
		{ "a.pem", "README", "tls_outbound_ca_key_file: no private key" },
		{ "a-key.pem", "a.pem", "no certificate" },
	};
	const char	*ct, *kt;
	size_t		 i, cl = 0, kl = 0;
	X509		*ca;
	EVP_PKEY	*key;
	char		 err[256];
	int		 rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err[0] = '\0';
		ct = text_of(t[i].cert, &cl);
		kt = text_of(t[i].key, &kl);
		rc = tls_ca_parse(ct, cl, kt, kl, &ca, &key, err, sizeof(err));
		if (t[i].err == NULL)
			CHECK(rc == 0 && ca != NULL && key != NULL,
			    "CA %s + %s: %s", t[i].cert, t[i].key, err);
		else
			CHECK(rc == -1 && ca == NULL && key == NULL &&
			    strstr(err, t[i].err) != NULL,
			    "CA %s + %s refused (%s): %s", t[i].cert, t[i].key,
			    t[i].err, err);
		X509_free(ca);
		EVP_PKEY_free(key);
	}
}

void
test_tls(void)
{
	char	path[512];
	size_t	i;

	for (i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/../data/tls/%s", unit_datadir,
		    tls_files[i]);
		tls_text[i] = unit_slurp(path, 65536, &tls_len[i]);
		CHECK(tls_text[i] != NULL, "read %s", path);
		if (tls_text[i] == NULL)
			return;
	}
	test_tls_pairs();
	test_tls_lookup();
	test_tls_same();
	test_tls_ca();
	for (i = 0; i < NFILES; i++)
		free(tls_text[i]);
}
