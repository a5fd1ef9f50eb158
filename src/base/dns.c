/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous DNS for the event loop: one c-ares channel whose sockets
 * are ev_io watchers and whose retransmissions run off one ev_timer, so
 * no lookup ever blocks the relay. Also builds DNS list names (reversed
 * IPv4 octets, reversed IPv6 nibbles). Knows nothing about SMTP; trusts
 * no answer beyond its parsed A records.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "dns.h"
#include "ev.h"
#include "log.h"

#define DNS_SOCKS_MAX	32	/* c-ares opens one per server and protocol */
#define DNS_TRIES	2

struct dns_sock {
	struct ev_io	io;
	int		used;
};

struct dns_query {
	dns_a_cb	*cb;		/* NULL once cancelled */
	void		*arg;
	int		 submitting;	/* inside ares_query() */
	int		 answered;	/* ... which answered at once */
};

static struct ev_loop	*dns_loop;
static ares_channel	 dns_channel;
static int		 dns_ready;
static struct dns_sock	 dns_socks[DNS_SOCKS_MAX];
static struct ev_timer	 dns_timer;
static unsigned		 dns_inflight;

static void	dns_rearm(void);

static void
dns_io_cb(struct ev_io *io, int events)
{
	ares_process_fd(dns_channel,
	    (events & EV_READ) ? io->fd : ARES_SOCKET_BAD,
	    (events & EV_WRITE) ? io->fd : ARES_SOCKET_BAD);
	dns_rearm();
}

static void
dns_timer_cb(struct ev_timer *t)
{
	(void)t;
	ares_process_fd(dns_channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_rearm();
}

/* c-ares tells which sockets it wants watched, and for what. */
static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_sock	*ds = NULL;
	int		 i, mask = (readable ? EV_READ : 0) |
			    (writable ? EV_WRITE : 0);

	(void)data;
	for (i = 0; i < DNS_SOCKS_MAX; i++)
		if (dns_socks[i].used && dns_socks[i].io.fd == fd) {
			ds = &dns_socks[i];
			break;
		}
	if (mask == 0) {
		if (ds != NULL) {
			ev_io_del(dns_loop, &ds->io);
			ds->used = 0;
		}
		return;
	}
	if (ds == NULL) {
		for (i = 0; i < DNS_SOCKS_MAX && dns_socks[i].used; i++)
			;
		if (i == DNS_SOCKS_MAX) {
			log_err(NULL, "dns: more than %d sockets", DNS_SOCKS_MAX);
			return;
		}
		ds = &dns_socks[i];
		ds->used = 1;
		ev_io_init(&ds->io, fd, dns_io_cb, NULL);
	}
	if (ev_io_set(dns_loop, &ds->io, mask) == -1)
		log_err(NULL, "dns: epoll fd=%d: %s", fd, strerror(errno));
}

static void
dns_rearm(void)
{
	struct timeval	tv, *tp;

	if (dns_inflight == 0) {
		ev_timer_del(dns_loop, &dns_timer);
		return;
	}
	if ((tp = ares_timeout(dns_channel, NULL, &tv)) == NULL)
		return;
	ev_timer_set(dns_loop, &dns_timer,
	    (uint64_t)tp->tv_sec * 1000 + (uint64_t)tp->tv_usec / 1000);
}

int
dns_init(struct ev_loop *loop, const struct conf_words *servers,
    unsigned timeout_ms, char *err, size_t errlen)
{
	struct ares_options	o;
	char			csv[CONF_FILES_MAX * 80];
	size_t			off = 0;
	int			rc, i;

	dns_loop = loop;
	ev_timer_init(&dns_timer, dns_timer_cb, NULL);
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = dns_sock_state;
	o.timeout = (int)(timeout_ms / DNS_TRIES);
	o.tries = DNS_TRIES;
	/* Read /etc/resolv.conf now, before privileges are dropped. */
	if ((rc = ares_init_options(&dns_channel, &o, ARES_OPT_SOCK_STATE_CB |
	    ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares init: %s", ares_strerror(rc));
		return -1;
	}
	if (servers->n > 0) {
		for (i = 0; i < servers->n; i++)
			off += (size_t)snprintf(csv + off, sizeof(csv) - off,
			    "%s%s", i ? "," : "", servers->w[i]);
		if ((rc = ares_set_servers_ports_csv(dns_channel, csv)) !=
		    ARES_SUCCESS) {
			snprintf(err, errlen, "dns_servers '%s': %s", csv,
			    ares_strerror(rc));
			ares_destroy(dns_channel);
			return -1;
		}
	}
	dns_ready = 1;
	return 0;
}

void
dns_free(void)
{
	if (!dns_ready)
		return;
	ares_destroy(dns_channel);
	dns_ready = 0;
	ev_timer_del(dns_loop, &dns_timer);
}

static void
dns_answer(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_query	*q = arg;
	struct ares_addrttl	 at[DNS_ADDRS_MAX];
	struct in_addr		 a[DNS_ADDRS_MAX];
	int			 n = DNS_ADDRS_MAX, i, ok = 0;

	(void)timeouts;
	dns_inflight--;
	if (status == ARES_SUCCESS &&
	    ares_parse_a_reply(abuf, alen, NULL, at, &n) == ARES_SUCCESS)
		ok = 1;
	else if (status == ARES_ENOTFOUND || status == ARES_ENODATA ||
	    (status == ARES_SUCCESS)) {
		ok = 1;		/* not listed */
		n = 0;
	}
	if (ok)
		for (i = 0; i < n; i++)
			a[i] = at[i].ipaddr;
	if (q->cb != NULL)
		q->cb(q->arg, ok ? 0 : -1, a, ok ? n : 0);
	if (q->submitting)
		q->answered = 1;
	else
		free(q);
}

/*
 * The callback always runs exactly once unless cancelled, possibly before
 * this returns (then the result is NULL: there is nothing to cancel).
 */
struct dns_query *
dns_query_a(const char *name, dns_a_cb *cb, void *arg)
{
	struct dns_query	*q;

	if (!dns_ready || (q = calloc(1, sizeof(*q))) == NULL) {
		cb(arg, -1, NULL, 0);
		return NULL;
	}
	q->cb = cb;
	q->arg = arg;
	q->submitting = 1;
	dns_inflight++;
	ares_query(dns_channel, name, ns_c_in, ns_t_a, dns_answer, q);
	q->submitting = 0;
	if (q->answered) {
		free(q);
		q = NULL;
	}
	dns_rearm();
	return q;
}

/* The callback will not run; the query finishes (and is freed) quietly. */
void
dns_cancel(struct dns_query *q)
{
	if (q != NULL)
		q->cb = NULL;
}

/*
 * The name to look up a client in a DNS list: 192.0.2.1 in zone Z is
 * 1.2.0.192.Z; IPv6 addresses are 32 reversed nibbles (RFC 5782).
 */
int
dns_list_name(const struct sockaddr_storage *ss, const char *zone,
    char *out, size_t len)
{
	const struct sockaddr_in6	*s6 = (const void *)ss;
	const struct sockaddr_in	*s4 = (const void *)ss;
	const uint8_t			*b;
	static const char		 hex[] = "0123456789abcdef";
	size_t				 off = 0;
	int				 i, n;

	if (ss->ss_family == AF_INET ||
	    (ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))) {
		b = ss->ss_family == AF_INET ?
		    (const uint8_t *)&s4->sin_addr : s6->sin6_addr.s6_addr + 12;
		n = snprintf(out, len, "%u.%u.%u.%u.%s", b[3], b[2], b[1],
		    b[0], zone);
	} else if (ss->ss_family == AF_INET6) {
		b = s6->sin6_addr.s6_addr;
		if (len < 64 + 1)
			return -1;
		for (i = 15; i >= 0; i--) {
			out[off++] = hex[b[i] & 0xf];
			out[off++] = '.';
			out[off++] = hex[b[i] >> 4];
			out[off++] = '.';
		}
		n = snprintf(out + off, len - off, "%s", zone);
		n += (int)off;
	} else
		return -1;
	return n < 0 || (size_t)n >= len || n >= DNS_NAME_MAX ? -1 : 0;
}
