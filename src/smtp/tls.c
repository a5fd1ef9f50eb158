/* SPDX-License-Identifier: MIT */
/*
 * TLS for both halves of a session, with OpenSSL: the contexts (built at
 * startup, before privileges are dropped), the per-destination policy, the
 * client-facing side of an intercepted session (the server's own chain
 * with the key held for it, or for outbound mail a leaf minted by the
 * local CA), non-blocking reads and writes through an SSL object into the
 * relay's bounded buffers, and the one-line description of a finished
 * handshake. Knows nothing about SMTP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "conf.h"
#include "ev.h"
#include "log.h"
#include "tls.h"
#include "tls_cadigest.h"
#include "tls_dest.h"
#include "tls_keys.h"

#define TLS_READ_CHUNK	16384

static SSL_CTX			*tls_server_ctx;	/* facing clients */
static SSL_CTX			*tls_client_ctx;	/* facing servers */
static SSL_CTX			*tls_outbound_ctx;	/* facing the world:
							 * always verified */
static const struct conf	*tls_conf;
static struct tls_keys		*tls_active;		/* held key pairs */
static X509			*tls_ca_cert;		/* outbound: mints */
static EVP_PKEY			*tls_ca_key;
static EVP_PKEY			*tls_mint_key;		/* minted leaves' */
/* What the CA sets hold (tls_store_digest): tls_client_ctx's, then
 * tls_outbound_ctx's. */
static unsigned char		 tls_cas_md[2][SHA256_DIGEST_LENGTH];
static uintptr_t		 tls_trust_gen;		/* CA sets loaded */
static int			 tls_trust_idx = -1;	/* an upstream SSL's
							 * tls_trust_gen */

static const char *
tls_errstr(void)
{
	static char	buf[256];
	unsigned long	e = ERR_get_error();

	if (e == 0)
		return "unknown error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static int
tls_min_version(const char *s)
{
	if (strcmp(s, "TLSv1.3") == 0)
		return TLS1_3_VERSION;
	if (strcmp(s, "TLSv1.2") == 0)
		return TLS1_2_VERSION;
	return -1;
}

/* A new upstream session: kept for the server it came from, unless the
 * connection began under CAs a reload has since replaced (its chain was
 * verified, or a session it resumed was, against those). */
static int
tls_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_dest	*d = SSL_get_app_data(ssl);

	if (d == NULL ||
	    (uintptr_t)SSL_get_ex_data(ssl, tls_trust_idx) != tls_trust_gen)
		return 0;
	tls_dest_save_session(d, sess, ev_now());
	return 1;		/* the reference is ours */
}

static SSL_CTX *
tls_ctx_new(int server, int minv)
{
	SSL_CTX	*ctx;

	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, minv);
	/* A peer's FIN without close_notify is its end of input, not an
	 * error: SMTP frames its own ends, and a client that half-closes
	 * after QUIT is still owed its replies. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF |
	    (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	    SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (server) {
		/* Clients resume with tickets or from the cache; the context
		 * of each session (server and key) is set per connection. */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
		SSL_CTX_sess_set_cache_size(ctx, 20000);
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, tls_new_session_cb);
	}
	return ctx;
}

/* The CAs a server's chain is verified against: cafile's, or the
 * system's when it is empty. NULL, err set, when none load. */
static X509_STORE *
tls_store_new(const char *cafile, char *err, size_t errlen)
{
	X509_STORE	*st;

	if ((st = X509_STORE_new()) == NULL) {
		snprintf(err, errlen, "OpenSSL: %s", tls_errstr());
		return NULL;
	}
	if (cafile[0] == '\0' ? X509_STORE_set_default_paths(st) != 1 :
	    X509_STORE_load_file(st, cafile) != 1) {
		snprintf(err, errlen, "%s: %s", cafile[0] != '\0' ? cafile :
		    "system CA store", tls_errstr());
		X509_STORE_free(st);
		return NULL;
	}
	return st;
}

static int
tls_verify_setup(SSL_CTX *ctx, const char *cafile,
    unsigned char md[SHA256_DIGEST_LENGTH], char *err, size_t errlen)
{
	X509_STORE	*st;

	if ((st = tls_store_new(cafile, err, errlen)) == NULL)
		return -1;
	tls_store_digest(st, cafile, md);
	SSL_CTX_set_cert_store(ctx, st);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return 0;
}

/* The local CA that signs outbound leaves, read through the key reader
 * (its key is root's), and the key the leaves carry. */
static int
tls_outbound_init(char *err, size_t errlen)
{
	EVP_PKEY_CTX	*kc;

	if (tls_ca_load(&tls_ca_cert, &tls_ca_key, err, errlen) == -1)
		return -1;
	if ((kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL)) == NULL ||
	    EVP_PKEY_keygen_init(kc) != 1 ||
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc,
	    NID_X9_62_prime256v1) != 1 ||
	    EVP_PKEY_keygen(kc, &tls_mint_key) != 1) {
		EVP_PKEY_CTX_free(kc);
		snprintf(err, errlen, "minting key: %s", tls_errstr());
		return -1;
	}
	EVP_PKEY_CTX_free(kc);
	return 0;
}

int
tls_init(const struct conf *c, char *err, size_t errlen)
{
	int	minv;

	tls_conf = c;
	if ((tls_trust_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL,
	    NULL)) == -1)
		goto ssl_fail;
	if ((minv = tls_min_version(c->tls_min_protocol)) == -1) {
		snprintf(err, errlen, "tls_min_protocol must be TLSv1.2 or "
		    "TLSv1.3");
		return -1;
	}
	tls_server_ctx = tls_ctx_new(1, minv);
	tls_client_ctx = tls_ctx_new(0, minv);
	if (tls_server_ctx == NULL || tls_client_ctx == NULL)
		goto ssl_fail;
	if (c->tls_verify) {
		if (tls_verify_setup(tls_client_ctx, c->tls_ca_file,
		    tls_cas_md[0], err, errlen) == -1)
			return -1;
	} else
		SSL_CTX_set_verify(tls_client_ctx, SSL_VERIFY_NONE, NULL);
	/* Key files are read by a reader forked now, as root. */
	if (tls_keyd_start(c->tls_keys_dir, c->tls_cert_file, c->tls_key_file,
	    c->tls_outbound_clients.n > 0 ? c->tls_outbound_ca_file : "",
	    c->tls_outbound_ca_key_file, err, errlen) == -1)
		return -1;
	if (c->tls_outbound_clients.n > 0) {
		if ((tls_outbound_ctx = tls_ctx_new(0, minv)) == NULL)
			goto ssl_fail;
		if (tls_verify_setup(tls_outbound_ctx,
		    c->tls_outbound_verify_ca_file, tls_cas_md[1], err,
		    errlen) == -1 ||
		    tls_outbound_init(err, errlen) == -1)
			return -1;
	}
	if ((tls_active = tls_keys_load(err, errlen)) == NULL)
		return -1;
	log_info(NULL, "tls ready policy=%s keys=%zu keys_dir=%s verify=%s "
	    "min=%s outbound=%s", conf_word("tls_policy", c->tls_policy),
	    tls_keys_count(tls_active),
	    c->tls_keys_dir[0] ? c->tls_keys_dir : "none",
	    c->tls_verify ? "verify" : "none", c->tls_min_protocol,
	    tls_outbound_ctx ? "intercept" : "off");
	return 0;
ssl_fail:
	snprintf(err, errlen, "OpenSSL: %s", tls_errstr());
	return -1;
}

/* A new key set, or the old one stays. The set read is taken either way
 * (its files' names are the ones now); only pairs that changed make every
 * server's certificate be looked at again (tls_dest_keys_changed). */
static int
tls_reload_keys(void)
{
	struct tls_keys	*ks;
	char		 err[512];
	int		 same;

	if ((ks = tls_keys_load(err, sizeof(err))) == NULL) {
		log_err(NULL, "tls keys refused: %s (previous keys keep "
		    "serving)", err);
		return -1;
	}
	same = tls_keys_same(tls_active, ks);
	tls_keys_free(tls_active);
	tls_active = ks;
	if (same) {
		log_info(NULL, "tls keys unchanged keys=%zu",
		    tls_keys_count(ks));
		return 0;
	}
	tls_dest_keys_changed();
	log_info(NULL, "tls keys reloaded keys=%zu", tls_keys_count(ks));
	return 0;
}

/*
 * The CAs servers are verified against (tls_ca_file and
 * tls_outbound_verify_ca_file, or the system's), read again as the relay
 * user: both new sets or neither. A CA taken out must stop vouching at
 * once, so upstream sessions kept for resumption (a resumed session is
 * not verified again) are forgotten, and connections begun before are
 * not let keep new ones (tls_trust_gen). Sets that hold what they held
 * (tls_store_digest) change nothing: a reload for another reason keeps
 * every server's session.
 */
static int
tls_reload_cas(void)
{
	const struct conf	*c = tls_conf;
	X509_STORE		*in = NULL, *out = NULL;
	unsigned char		 md[2][SHA256_DIGEST_LENGTH];
	char			 err[512];

	if (c->tls_verify && (in = tls_store_new(c->tls_ca_file, err,
	    sizeof(err))) == NULL)
		goto refused;
	if (tls_outbound_ctx != NULL && (out = tls_store_new(
	    c->tls_outbound_verify_ca_file, err, sizeof(err))) == NULL)
		goto refused;
	if (in == NULL && out == NULL)
		return 0;
	memcpy(md, tls_cas_md, sizeof(md));
	if (in != NULL)
		tls_store_digest(in, c->tls_ca_file, md[0]);
	if (out != NULL)
		tls_store_digest(out, c->tls_outbound_verify_ca_file, md[1]);
	/* The new stores go in either way: what OpenSSL looked up in the
	 * hashed directories stays cached in a store, and the fresh one
	 * holds none of it. */
	if (in != NULL)
		SSL_CTX_set_cert_store(tls_client_ctx, in);
	if (out != NULL)
		SSL_CTX_set_cert_store(tls_outbound_ctx, out);
	if (memcmp(md, tls_cas_md, sizeof(md)) == 0 &&
	    (in == NULL || !tls_md_unknown(md[0])) &&
	    (out == NULL || !tls_md_unknown(md[1]))) {
		log_info(NULL, "tls CAs unchanged (upstream sessions kept)");
		return 0;
	}
	memcpy(tls_cas_md, md, sizeof(md));
	tls_trust_gen++;
	tls_dest_trust_changed();
	log_info(NULL, "tls CAs reloaded verify=%s outbound_verify=%s",
	    in == NULL ? "none" : c->tls_ca_file[0] != '\0' ?
	    c->tls_ca_file : "system", out == NULL ? "none" :
	    c->tls_outbound_verify_ca_file[0] != '\0' ?
	    c->tls_outbound_verify_ca_file : "system");
	return 0;
refused:
	X509_STORE_free(in);
	log_err(NULL, "tls CAs refused: %s (previous CAs keep verifying)",
	    err);
	return -1;
}

/*
 * The local CA that signs outbound leaves, read again (a rotated CA, or
 * its key): the leaves minted under the old one are forgotten, so each
 * server's next one is signed by the new CA. Connections already up keep
 * the leaf they were given. A CA that does not load leaves the old one
 * signing; the same certificate and key change nothing.
 */
static int
tls_reload_mint_ca(void)
{
	X509		*ca;
	EVP_PKEY	*key;
	char		 err[512], subject[256];

	if (tls_outbound_ctx == NULL)
		return 0;
	if (tls_ca_load(&ca, &key, err, sizeof(err)) == -1) {
		log_err(NULL, "tls outbound CA refused: %s (the previous CA "
		    "keeps signing)", err);
		return -1;
	}
	if (X509_cmp(ca, tls_ca_cert) == 0 &&
	    EVP_PKEY_eq(key, tls_ca_key) == 1) {
		X509_free(ca);
		EVP_PKEY_free(key);
		log_info(NULL, "tls outbound CA unchanged (minted leaves "
		    "kept)");
		return 0;
	}
	X509_free(tls_ca_cert);
	EVP_PKEY_free(tls_ca_key);
	tls_ca_cert = ca;
	tls_ca_key = key;
	tls_dest_minted_forget();
	X509_NAME_oneline(X509_get_subject_name(ca), subject, sizeof(subject));
	log_info(NULL, "tls outbound CA reloaded subject=\"%s\"", subject);
	return 0;
}

/* sporkctl reload, SIGHUP: the key set, the CAs and the outbound CA, each
 * kept as it was when its files do not load. */
int
tls_reload(void)
{
	int	keys_rc, cas_rc, mint_rc;

	if (tls_conf == NULL)
		return 0;
	keys_rc = tls_reload_keys();
	cas_rc = tls_reload_cas();
	mint_rc = tls_reload_mint_ca();
	return keys_rc == -1 || cas_rc == -1 || mint_rc == -1 ? -1 : 0;
}

size_t
tls_keys_held(void)
{
	return tls_keys_count(tls_active);
}

static int
net_match(const struct sockaddr_storage *a, const char *net)
{
	unsigned char	want[16], have[16];
	char		host[INET6_ADDRSTRLEN + 1];
	const char	*slash = strchr(net, '/');
	int		af, bits, full, i;
	size_t		hl = slash ? (size_t)(slash - net) : strlen(net);

	if (hl >= sizeof(host))
		return 0;
	memcpy(host, net, hl);
	host[hl] = '\0';
	af = strchr(host, ':') ? AF_INET6 : AF_INET;
	if (af != a->ss_family || inet_pton(af, host, want) != 1)
		return 0;
	if (af == AF_INET)
		memcpy(have, &((const struct sockaddr_in *)a)->sin_addr, 4);
	else
		memcpy(have, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
	full = af == AF_INET ? 32 : 128;
	bits = slash ? atoi(slash + 1) : full;
	if (bits < 0 || bits > full)
		return 0;
	for (i = 0; i < bits / 8; i++)
		if (want[i] != have[i])
			return 0;
	if (bits % 8 && ((want[i] ^ have[i]) & (0xff << (8 - bits % 8))))
		return 0;
	return 1;
}

/*
 * Most specific wins: an outbound client, then a listed server, then the
 * default. TLS_INTERCEPT means "when the server's key is held".
 */
enum tls_policy
tls_policy_for(const struct sockaddr_storage *server,
    const struct sockaddr_storage *client)
{
	int	i;

	for (i = 0; client != NULL && tls_outbound_ctx != NULL &&
	    i < tls_conf->tls_outbound_clients.n; i++)
		if (net_match(client, tls_conf->tls_outbound_clients.w[i]))
			return TLS_OUTBOUND;
	for (i = 0; i < tls_conf->tls_strip_servers.n; i++)
		if (net_match(server, tls_conf->tls_strip_servers.w[i]))
			return TLS_STRIP;
	for (i = 0; i < tls_conf->tls_intercept_servers.n; i++)
		if (net_match(server, tls_conf->tls_intercept_servers.w[i]))
			return TLS_INTERCEPT;
	for (i = 0; i < tls_conf->tls_passthrough_servers.n; i++)
		if (net_match(server, tls_conf->tls_passthrough_servers.w[i]))
			return TLS_PASSTHROUGH;
	return tls_conf->tls_policy;
}

/* TLS with the server: the session to resume, if one is fresh. */
SSL *
tls_new_upstream(int fd, struct tls_dest *d, int outbound)
{
	SSL		*ssl;
	SSL_SESSION	*sess;
	X509_VERIFY_PARAM *vp;

	ssl = SSL_new(outbound ? tls_outbound_ctx : tls_client_ctx);
	if (ssl == NULL)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_app_data(ssl, d);
	(void)SSL_set_ex_data(ssl, tls_trust_idx, (void *)tls_trust_gen);
	if ((sess = tls_dest_session(d, ev_now())) != NULL) {
		(void)SSL_set_session(ssl, sess);
		SSL_SESSION_free(sess);
	}
	if (!outbound && tls_conf->tls_upstream_name[0] != '\0') {
		SSL_set_tlsext_host_name(ssl, tls_conf->tls_upstream_name);
		if (tls_conf->tls_verify) {
			vp = SSL_get0_param(ssl);
			X509_VERIFY_PARAM_set1_host(vp,
			    tls_conf->tls_upstream_name, 0);
		}
	}
	return ssl;
}

/* One extension from its config text, added to x. */
static int
tls_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION	*ext;
	int		 rc;

	if ((ext = X509V3_EXT_conf_nid(NULL, v3, nid, value)) == NULL)
		return -1;
	rc = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rc;
}

/* A leaf for the server, signed by the local CA: its subject and names. */
static X509 *
tls_mint(X509 *leaf)
{
	X509		*x;
	X509V3_CTX	 v3;
	ASN1_INTEGER	*serial;
	unsigned char	 sr[16];
	int		 i;

	if ((x = X509_new()) == NULL)
		return NULL;
	if (RAND_bytes(sr, sizeof(sr)) != 1)
		goto fail;
	sr[0] &= 0x7f;
	serial = X509_get_serialNumber(x);
	if (ASN1_STRING_set(serial, sr, sizeof(sr)) != 1 ||
	    X509_set_version(x, 2) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(tls_ca_cert)) != 1 ||
	    X509_set_subject_name(x, X509_get_subject_name(leaf)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_set1_notAfter(x, X509_get0_notAfter(leaf)) != 1 ||
	    X509_set_pubkey(x, tls_mint_key) != 1)
		goto fail;
	if ((i = X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1)) >= 0 &&
	    X509_add_ext(x, X509_get_ext(leaf, i), -1) != 1)
		goto fail;
	X509V3_set_ctx(&v3, tls_ca_cert, x, NULL, NULL, 0);
	if (tls_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE")
	    == -1 || tls_add_ext(x, &v3, NID_ext_key_usage, "serverAuth")
	    == -1 || tls_add_ext(x, &v3, NID_authority_key_identifier,
	    "keyid") == -1)
		goto fail;
	if (X509_sign(x, tls_ca_key, EVP_sha256()) == 0)
		goto fail;
	return x;
fail:
	ERR_clear_error();
	X509_free(x);
	return NULL;
}

/* A session resumes only with the server and key it was made for. */
static int
tls_session_context(SSL *ssl, const struct tls_dest *d,
    const unsigned char spki[TLS_SPKI_LEN])
{
	unsigned char	 ctx[EVP_MAX_MD_SIZE];
	unsigned int	 cl = 0;
	EVP_MD_CTX	*md;
	int		 ok;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, tls_dest_name(d),
	    strlen(tls_dest_name(d))) == 1 &&
	    EVP_DigestUpdate(md, spki, TLS_SPKI_LEN) == 1 &&
	    EVP_DigestFinal_ex(md, ctx, &cl) == 1;
	EVP_MD_CTX_free(md);
	if (!ok || SSL_set_session_id_context(ssl, ctx, cl) != 1)
		return -1;
	return 0;
}

/*
 * TLS with the client once TLS with the server is up. Inbound: exactly the
 * chain the server presented, with the key held for its leaf; NULL with
 * *why "no-key" when none is held. Outbound: a leaf minted by the local CA
 * with the server's subject and names, then the CA's certificate.
 */
SSL *
tls_new_downstream(int fd, SSL *up, struct tls_dest *d, int outbound,
    const char *session, const char **why)
{
	STACK_OF(X509)		*chain, *rest = NULL;
	const struct tls_key	*k = NULL;
	unsigned char		 spki[TLS_SPKI_LEN];
	X509			*leaf, *minted;
	SSL			*ssl;
	int			 i;

	*why = "no-certificate";
	chain = tls_dest_presented(d, up, ev_now());
	if (chain == NULL || (leaf = sk_X509_value(chain, 0)) == NULL ||
	    tls_spki_digest(leaf, spki) == -1)
		return NULL;
	if (!outbound) {
		k = tls_keys_find(tls_active, spki);
		tls_dest_keyed(d, k, session);
		if (k == NULL) {
			*why = "no-key";
			return NULL;
		}
	}
	*why = "internal-error";
	if ((ssl = SSL_new(tls_server_ctx)) == NULL)
		return NULL;
	if (outbound) {
		if ((minted = tls_dest_minted(d, spki)) == NULL) {
			if ((minted = tls_mint(leaf)) == NULL)
				goto fail;
			tls_dest_set_minted(d, minted, spki);
		}
		if (SSL_use_certificate(ssl, minted) != 1 ||
		    SSL_use_PrivateKey(ssl, tls_mint_key) != 1 ||
		    SSL_add1_chain_cert(ssl, tls_ca_cert) != 1)
			goto fail;
	} else {
		if ((rest = sk_X509_new_null()) == NULL)
			goto fail;
		for (i = 1; i < sk_X509_num(chain); i++)
			if (sk_X509_push(rest, sk_X509_value(chain, i)) <= 0)
				goto fail;
		if (SSL_use_certificate(ssl, leaf) != 1 ||
		    SSL_use_PrivateKey(ssl, k->key) != 1 ||
		    SSL_set1_chain(ssl, rest) != 1)
			goto fail;
		sk_X509_free(rest);
		rest = NULL;
	}
	if (tls_session_context(ssl, d, spki) == -1 ||
	    SSL_set_fd(ssl, fd) != 1)
		goto fail;
	return ssl;
fail:
	sk_X509_free(rest);
	ERR_clear_error();
	SSL_free(ssl);
	return NULL;
}

/* 1 done, 0 in progress (*want set to EV_READ/EV_WRITE), -1 failed. */
int
tls_handshake(SSL *ssl, int server_side, int *want, char *err, size_t errlen)
{
	int	rc, e;

	ERR_clear_error();
	rc = server_side ? SSL_accept(ssl) : SSL_connect(ssl);
	if (rc == 1)
		return 1;
	e = SSL_get_error(ssl, rc);
	if (e == SSL_ERROR_WANT_READ) {
		*want = 1;
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		*want = 2;
		return 0;
	}
	if (!server_side && SSL_get_verify_result(ssl) != X509_V_OK)
		snprintf(err, errlen, "certificate verification failed: %s",
		    X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
	else
		snprintf(err, errlen, "%s", e == SSL_ERROR_SYSCALL ?
		    (errno ? strerror(errno) : "connection closed") :
		    tls_errstr());
	return -1;
}

/* "proto=TLSv1.3 cipher=... peer=... verify=..." for the log. */
void
tls_describe(SSL *ssl, char *out, size_t len)
{
	X509	*peer = SSL_get1_peer_certificate(ssl);
	char	 subj[256] = "none";
	long	 vr = SSL_get_verify_result(ssl);

	if (peer != NULL) {
		X509_NAME_oneline(X509_get_subject_name(peer), subj,
		    sizeof(subj));
		X509_free(peer);
	}
	snprintf(out, len, "proto=%s cipher=%s peer=\"%s\" verify=%s",
	    SSL_get_version(ssl), SSL_get_cipher_name(ssl), subj,
	    vr == X509_V_OK ? "ok" : X509_verify_cert_error_string(vr));
}

/*
 * Read through TLS into b. Returns bytes read, 0 at close_notify, -1 with
 * errno EAGAIN (and *want) when it must wait, or -1 on error. After a TLS
 * error the caller closes the connection: nothing is read in plaintext.
 */
ssize_t
tls_read(SSL *ssl, struct buf *b, int *want)
{
	char	tmp[TLS_READ_CHUNK];
	size_t	room = buf_room(b);
	int	n, e;

	*want = 0;
	if (room == 0) {
		errno = ENOBUFS;
		return -1;
	}
	ERR_clear_error();
	n = SSL_read(ssl, tmp, (int)(room < sizeof(tmp) ? room : sizeof(tmp)));
	if (n > 0) {
		if (buf_append(b, tmp, (size_t)n) == -1)
			return -1;
		return n;
	}
	e = SSL_get_error(ssl, n);
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*want = e == SSL_ERROR_WANT_READ ? 1 : 2;
		errno = EAGAIN;
		return -1;
	}
	errno = EPROTO;
	return -1;
}

ssize_t
tls_write(SSL *ssl, struct buf *b, int *want)
{
	int	n, e;

	*want = 0;
	if (buf_used(b) == 0)
		return 0;
	ERR_clear_error();
	n = SSL_write(ssl, buf_head(b), (int)(buf_used(b) > 65536 ? 65536 :
	    buf_used(b)));
	if (n > 0) {
		buf_consume(b, (size_t)n);
		return n;
	}
	e = SSL_get_error(ssl, n);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*want = e == SSL_ERROR_WANT_READ ? 1 : 2;
		errno = EAGAIN;
		return -1;
	}
	errno = EPIPE;
	return -1;
}

int
tls_pending(SSL *ssl)
{
	return SSL_pending(ssl);
}

void
tls_free(SSL *ssl)
{
	if (ssl == NULL)
		return;
	(void)SSL_shutdown(ssl);	/* close_notify, best effort */
	SSL_free(ssl);
}

int
tls_session_reused(SSL *ssl)
{
	return SSL_session_reused(ssl);
}
