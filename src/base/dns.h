/* SPDX-License-Identifier: MIT */
#ifndef SPORK_DNS_H
#define SPORK_DNS_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "conf.h"
#include "ev.h"

#define DNS_NAME_MAX	254
#define DNS_ADDRS_MAX	8

struct dns_query;

/* status 0: answered (n addresses, maybe 0 for NXDOMAIN); -1: failed. */
typedef void	dns_a_cb(void *arg, int status, const struct in_addr *, int n);

int	dns_init(struct ev_loop *, const struct conf_words *servers,
	    unsigned timeout_ms, char *err, size_t errlen);
void	dns_free(void);
struct dns_query *dns_query_a(const char *name, dns_a_cb *, void *arg);
void	dns_cancel(struct dns_query *);
int	dns_list_name(const struct sockaddr_storage *, const char *zone,
	    char *out, size_t len);

#endif
