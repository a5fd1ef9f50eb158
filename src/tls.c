/* SPDX-License-Identifier: MIT */
/*
 * TLS for both halves of a session, with OpenSSL: the contexts (built at
 * startup, before privileges are dropped, so key files are read as root),
 * the per-destination policy, non-blocking reads and writes through an SSL
 * object into the relay's bounded buffers, and the one-line description
 * of a finished handshake. Knows nothing about SMTP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "tls.h"

#define TLS_READ_CHUNK	16384

static SSL_CTX			*tls_server_ctx;	/* facing clients */
static SSL_CTX			*tls_client_ctx;	/* facing servers */
static const struct conf	*tls_conf;

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

int
tls_init(const struct conf *c, char *err, size_t errlen)
{
	int	minv;

	tls_conf = c;
	if (c->tls_intercept_servers.n == 0 && strcmp(c->tls_policy,
	    "intercept") != 0)
		return 0;
	if ((minv = tls_min_version(c->tls_min_protocol)) == -1) {
		snprintf(err, errlen, "tls_min_protocol must be TLSv1.2 or "
		    "TLSv1.3");
		return -1;
	}
	if (c->tls_cert_file[0] == '\0' || c->tls_key_file[0] == '\0') {
		snprintf(err, errlen, "TLS interception needs tls_cert_file and "
		    "tls_key_file (the protected server's certificate)");
		return -1;
	}
	tls_server_ctx = SSL_CTX_new(TLS_server_method());
	tls_client_ctx = SSL_CTX_new(TLS_client_method());
	if (tls_server_ctx == NULL || tls_client_ctx == NULL)
		goto ssl_fail;
	SSL_CTX_set_min_proto_version(tls_server_ctx, minv);
	SSL_CTX_set_min_proto_version(tls_client_ctx, minv);
	SSL_CTX_set_options(tls_server_ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_options(tls_client_ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(tls_server_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	    SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_mode(tls_client_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	    SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (SSL_CTX_use_certificate_chain_file(tls_server_ctx,
	    c->tls_cert_file) != 1) {
		snprintf(err, errlen, "tls_cert_file %s: %s", c->tls_cert_file,
		    tls_errstr());
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(tls_server_ctx, c->tls_key_file,
	    SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(tls_server_ctx) != 1) {
		snprintf(err, errlen, "tls_key_file %s: %s", c->tls_key_file,
		    tls_errstr());
		return -1;
	}
	if (c->tls_verify) {
		if (c->tls_ca_file[0] == '\0') {
			if (SSL_CTX_set_default_verify_paths(tls_client_ctx)
			    != 1)
				goto ssl_fail;
		} else if (SSL_CTX_load_verify_locations(tls_client_ctx,
		    c->tls_ca_file, NULL) != 1) {
			snprintf(err, errlen, "tls_ca_file %s: %s",
			    c->tls_ca_file, tls_errstr());
			return -1;
		}
		SSL_CTX_set_verify(tls_client_ctx, SSL_VERIFY_PEER, NULL);
	} else
		SSL_CTX_set_verify(tls_client_ctx, SSL_VERIFY_NONE, NULL);
	log_info(NULL, "tls ready cert=%s verify=%s min=%s", c->tls_cert_file,
	    c->tls_verify ? "verify" : "none", c->tls_min_protocol);
	return 0;
ssl_fail:
	snprintf(err, errlen, "OpenSSL: %s", tls_errstr());
	return -1;
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

/* Most specific wins: a listed server, then the default. */
enum tls_policy
tls_policy_for(const struct sockaddr_storage *server)
{
	int	i;

	for (i = 0; i < tls_conf->tls_strip_servers.n; i++)
		if (net_match(server, tls_conf->tls_strip_servers.w[i]))
			return TLS_STRIP;
	for (i = 0; i < tls_conf->tls_intercept_servers.n; i++)
		if (net_match(server, tls_conf->tls_intercept_servers.w[i]))
			return tls_server_ctx ? TLS_INTERCEPT : TLS_PASSTHROUGH;
	for (i = 0; i < tls_conf->tls_passthrough_servers.n; i++)
		if (net_match(server, tls_conf->tls_passthrough_servers.w[i]))
			return TLS_PASSTHROUGH;
	if (strcmp(tls_conf->tls_policy, "intercept") == 0 && tls_server_ctx)
		return TLS_INTERCEPT;
	if (strcmp(tls_conf->tls_policy, "strip") == 0)
		return TLS_STRIP;
	return TLS_PASSTHROUGH;
}

SSL *
tls_new(int fd, int server_side)
{
	SSL		*ssl;
	X509_VERIFY_PARAM *vp;

	ssl = SSL_new(server_side ? tls_server_ctx : tls_client_ctx);
	if (ssl == NULL)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	if (!server_side && tls_conf->tls_upstream_name[0] != '\0') {
		SSL_set_tlsext_host_name(ssl, tls_conf->tls_upstream_name);
		if (tls_conf->tls_verify) {
			vp = SSL_get0_param(ssl);
			X509_VERIFY_PARAM_set1_host(vp,
			    tls_conf->tls_upstream_name, 0);
		}
	}
	return ssl;
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
