/* SPDX-License-Identifier: MIT */
#ifndef SPORK_TLS_H
#define SPORK_TLS_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "buf.h"

struct conf;
struct tls_dest;

int		 tls_init(const struct conf *, char *err, size_t errlen);
int		 tls_reload(void);
size_t		 tls_keys_held(void);
enum tls_policy	 tls_policy_for(const struct sockaddr_storage *server,
		    const struct sockaddr_storage *client);
SSL		*tls_new_upstream(int fd, struct tls_dest *, int outbound);
SSL		*tls_new_downstream(int fd, SSL *up, struct tls_dest *,
		    int outbound, const char *session, const char **why);
int		 tls_handshake(SSL *, int server_side, int *want, char *err,
		    size_t errlen);
void		 tls_describe(SSL *, char *out, size_t len);
ssize_t		 tls_read(SSL *, struct buf *, int *want);
ssize_t		 tls_write(SSL *, struct buf *, int *want);
int		 tls_pending(SSL *);
int		 tls_session_reused(SSL *);
void		 tls_free(SSL *);

#endif
