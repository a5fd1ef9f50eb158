/* SPDX-License-Identifier: MIT */
#ifndef SPORK_CIDR_H
#define SPORK_CIDR_H

#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network order, host bits zero */
	int		prefix;
};

int	cidr_parse(const char *, struct cidr *);
int	cidr_format(const struct cidr *, char *, size_t);
int	cidr_from_sockaddr(const struct sockaddr_storage *, int prefix4,
	    int prefix6, struct cidr *);
int	cidr_match(const struct cidr *, const struct sockaddr_storage *);
int	cidr_list_match(const struct cidr *, int n,
	    const struct sockaddr_storage *);

#endif
