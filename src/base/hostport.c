/* SPDX-License-Identifier: MIT */
/*
 * Server entries as the configuration writes them: "host:port" or
 * "[v6]:port" split into a host and a numeric port, and a host resolved
 * into its TCP addresses (IPv4 and IPv6 only), each handed to the caller,
 * which keeps them. Knows nothing about what the servers speak nor about
 * mail. Trusts nothing in the entry. hostport_resolve() blocks in
 * getaddrinfo(): callers use it at startup and reload only.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hostport.h"
#include "sock.h"

/* The port is mandatory and numeric, 1 to 65535. */
int
hostport_split(const char *s, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char	*end, *p;
	size_t		 hl;
	char		*ep;
	unsigned long	 n;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return -1;
		s++;
		hl = (size_t)(end - s);
		p = end + 2;
	} else {
		if ((end = strrchr(s, ':')) == NULL)
			return -1;
		hl = (size_t)(end - s);
		p = end + 1;
		/* A bare IPv6 address is ambiguous: brackets are required. */
		if (memchr(s, ':', hl) != NULL)
			return -1;
	}
	if (hl == 0 || hl >= hostlen || strlen(p) >= portlen)
		return -1;
	errno = 0;
	n = strtoul(p, &ep, 10);
	if (*p < '0' || *p > '9' || *ep != '\0' || errno || n == 0 ||
	    n > 65535)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	snprintf(port, portlen, "%s", p);
	return 0;
}

/*
 * The number of usable addresses handed to cb (the one it stopped at
 * included); -1 with a message in err when there is none or the name does
 * not resolve.
 */
int
hostport_resolve(const char *host, const char *port, hostport_addr_cb *cb,
    void *arg, char *err, size_t errlen)
{
	struct addrinfo		 hints, *res, *ai;
	struct sockaddr_storage	 ss;
	char			 name[SOCK_ADDRSTR_MAX];
	int			 rc, usable = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s", rc == EAI_SYSTEM ? strerror(errno) :
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(struct sockaddr_storage))
			continue;
		usable++;
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		sock_format(&ss, name, sizeof(name));
		if (cb(arg, &ss, name) == -1)
			break;
	}
	freeaddrinfo(res);
	if (usable == 0) {
		snprintf(err, errlen, "no IPv4 or IPv6 address");
		return -1;
	}
	return usable;
}
