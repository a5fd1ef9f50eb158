/* SPDX-License-Identifier: MIT */
#ifndef SPORK_HOSTPORT_H
#define SPORK_HOSTPORT_H

#include <stddef.h>
#include <sys/socket.h>

#define HOSTPORT_HOST_MAX	256	/* a name, with its NUL */
#define HOSTPORT_PORT_MAX	8	/* "65535", with room */

/*
 * One usable address of a resolved name, in getaddrinfo() order, with its
 * "addr:port" form. -1 stops the walk (the caller's table is full).
 */
typedef int	hostport_addr_cb(void *arg, const struct sockaddr_storage *,
		    const char *name);

int	hostport_split(const char *, char *host, size_t hostlen, char *port,
	    size_t portlen);
int	hostport_resolve(const char *host, const char *port,
	    hostport_addr_cb *, void *arg, char *err, size_t errlen);

#endif
