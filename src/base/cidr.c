/* SPDX-License-Identifier: MIT */
/*
 * Network prefixes: "10.0.0.0/8", "2001:db8::/32", a bare address meaning
 * one host. Parsing, formatting and matching a peer's address, with
 * IPv4-mapped IPv6 peers matched as IPv4. Knows nothing about mail.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

static void
cidr_mask(struct cidr *c)
{
	int	len = c->family == AF_INET ? 4 : 16, i, bits;

	for (i = 0; i < len; i++) {
		bits = c->prefix - 8 * i;
		if (bits >= 8)
			continue;
		c->addr[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
}

int
cidr_parse(const char *s, struct cidr *c)
{
	char	 host[64];
	const char *slash = strchr(s, '/');
	size_t	 hl = slash ? (size_t)(slash - s) : strlen(s);
	char	*ep;
	long	 p;

	memset(c, 0, sizeof(*c));
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, c->addr) == 1) {
		c->family = AF_INET;
		c->prefix = 32;
	} else if (inet_pton(AF_INET6, host, c->addr) == 1) {
		c->family = AF_INET6;
		c->prefix = 128;
	} else
		return -1;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		p = strtol(slash + 1, &ep, 10);
		if (*ep != '\0' || p < 0 || p > c->prefix)
			return -1;
		c->prefix = (int)p;
	}
	cidr_mask(c);
	return 0;
}

int
cidr_format(const struct cidr *c, char *out, size_t len)
{
	char	a[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		return -1;
	return (size_t)snprintf(out, len, "%s/%d", a, c->prefix) < len ? 0 : -1;
}

/* The peer's address as a prefix of the given length for its family. */
int
cidr_from_sockaddr(const struct sockaddr_storage *ss, int prefix4,
    int prefix6, struct cidr *c)
{
	const struct sockaddr_in6	*s6 = (const void *)ss;
	const struct sockaddr_in	*s4 = (const void *)ss;

	memset(c, 0, sizeof(*c));
	if (ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		c->family = AF_INET;
		memcpy(c->addr, s6->sin6_addr.s6_addr + 12, 4);
		c->prefix = prefix4;
	} else if (ss->ss_family == AF_INET6) {
		c->family = AF_INET6;
		memcpy(c->addr, s6->sin6_addr.s6_addr, 16);
		c->prefix = prefix6;
	} else if (ss->ss_family == AF_INET) {
		c->family = AF_INET;
		memcpy(c->addr, &s4->sin_addr, 4);
		c->prefix = prefix4;
	} else
		return -1;
	cidr_mask(c);
	return 0;
}

int
cidr_match(const struct cidr *net, const struct sockaddr_storage *ss)
{
	struct cidr	host;
	int		len;

	if (cidr_from_sockaddr(ss, net->prefix, net->prefix, &host) == -1 ||
	    host.family != net->family)
		return 0;
	len = net->family == AF_INET ? 4 : 16;
	return memcmp(host.addr, net->addr, (size_t)len) == 0;
}

int
cidr_list_match(const struct cidr *nets, int n,
    const struct sockaddr_storage *ss)
{
	int	i;

	for (i = 0; i < n; i++)
		if (cidr_match(&nets[i], ss))
			return 1;
	return 0;
}
