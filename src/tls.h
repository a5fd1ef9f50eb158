/* SPDX-License-Identifier: MIT */
#ifndef SPORK_TLS_H
#define SPORK_TLS_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "buf.h"

struct conf;

enum tls_policy {
	TLS_PASSTHROUGH,	/* splice after the server's 220, unscanned */
	TLS_INTERCEPT,		/* TLS on both halves, scanned */
	TLS_STRIP,		/* STARTTLS hidden from the client */
};

int		 tls_init(const struct conf *, char *err, size_t errlen);
enum tls_policy	 tls_policy_for(const struct sockaddr_storage *server);
SSL		*tls_new(int fd, int server_side);
int		 tls_handshake(SSL *, int server_side, int *want, char *err,
		    size_t errlen);
void		 tls_describe(SSL *, char *out, size_t len);
ssize_t		 tls_read(SSL *, struct buf *, int *want);
ssize_t		 tls_write(SSL *, struct buf *, int *want);
int		 tls_pending(SSL *);
void		 tls_free(SSL *);

#endif
