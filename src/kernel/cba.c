/* SPDX-License-Identifier: MIT */
/*
 * Connect-before-accept: the SYN of each new diverted SMTP connection
 * waits in the SYN queue (synq.c) while this module connects to the real
 * server from the client's address, as the relay does. When the server
 * has accepted, the SYN goes on (NF_ACCEPT) to conntrack, the tproxy rule
 * and the transparent listener, and the relay takes the open upstream
 * connection for the session (cba_take()). When the server refuses, the
 * SYN is dropped and the client gets the reset the server would have
 * sent, from the server's address; when it does not answer within
 * timeout_connect, the SYN is dropped and the client, which has been
 * retransmitting it into the void, goes on retrying or gives up, as it
 * would without the box. Retransmitted SYNs of a connection already held
 * are dropped: one upstream connect per client connection.
 *
 * A SYN this cannot read, or one over max_sessions, is let through
 * unheld: the relay then connects after accepting, as without the queue.
 *
 * Spoofed SYNs: a SYN's source address is not proven until the client
 * completes its handshake, yet each held SYN costs an upstream connect
 * from that address. So each source (an IPv4 address, an IPv6 network of
 * client_v6_prefix bits) has a budget, connect_before_accept_per_source:
 * that many connects held at once, and that many per minute that were
 * let through but never taken (the client never completed: a spoofed
 * address, or a scanner). Past either, its SYNs go through unheld, and the
 * relay connects only once the client has completed its handshake. An
 * attacker forging one address thus gets at most that many connects a
 * minute out of the box, whatever its rate; forging many addresses, at
 * most max_sessions at once, each held no longer than timeout_connect.
 * This module trusts the queue's packets only as far as synq parses them;
 * it knows nothing about SMTP.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>

#include <libmnl/libmnl.h>

#include "buf.h"
#include "cba.h"
#include "log.h"
#include "ratelimit.h"
#include "sock.h"
#include "synq.h"

#define CBA_BUCKETS	256
#define CBA_RECV_MAX	8192
#define CBA_RECV_BATCH	64	/* reads per wakeup; the rest next time */
#define CBA_ID_MAX	12
#define CBA_SRC_BUCKETS	1024
#define CBA_SRC_MAX	65536	/* sources tracked; past it, SYNs unheld */
#define CBA_SRC_WINDOW	60000	/* ms: the unconfirmed-connect window */
#define CBA_SRC_SWEEP	10000	/* ms between sweeps of idle sources */

enum cba_state {
	CBA_CONNECTING,		/* SYN held, upstream connect in progress */
	CBA_READY,		/* SYN let through, waiting for the accept */
};

/* One source's budget. */
struct cba_src {
	unsigned char		 key[RL_KEY_LEN];
	unsigned		 held;		/* connects held now */
	unsigned		 unconfirmed;	/* never taken, this window */
	uint64_t		 window;	/* when this window began */
	int			 logged;	/* over budget, said this window */
	struct cba_src		*next;
};

struct cba_conn {
	char			 id[CBA_ID_MAX];
	struct cba_src		*src;
	enum cba_state		 state;
	struct synq_pkt		 syn;		/* client -> server */
	char			 client[SOCK_ADDRSTR_MAX];
	char			 server[SOCK_ADDRSTR_MAX];
	int			 fd;		/* upstream */
	struct ev_io		 io;
	struct ev_timer		 timer;
	uint64_t		 t0;
	int			 dead;
	struct cba_conn		*next;		/* bucket, then dead list */
};

static struct ev_loop		*cba_loop;
static size_t			(*cba_sessions)(void);	/* the relay's */
static const struct conf	*cba_conf;
static struct ev_io		 cba_qio;
static uint16_t			 cba_queue;
static struct cba_conn		*cba_table[CBA_BUCKETS];
static struct cba_conn		*cba_dead;
static size_t			 cba_count;
static uint32_t			 cba_idseq;
static struct cba_src		*cba_srcs[CBA_SRC_BUCKETS];
static size_t			 cba_nsrc;
static uint64_t			 cba_swept;
static unsigned long long	 cba_over_budget;

static void	cba_close(struct cba_conn *, int close_fd);

/* Same address and port; IPv4-mapped IPv6 counts as IPv4. */
static void
cba_norm(const struct sockaddr_storage *in, struct sockaddr_storage *out)
{
	const struct sockaddr_in6	*s6 = (const void *)in;
	struct sockaddr_in		*s4 = (void *)out;

	if (in->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memset(out, 0, sizeof(*out));
		s4->sin_family = AF_INET;
		s4->sin_port = s6->sin6_port;
		memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
		return;
	}
	*out = *in;
}

static int
cba_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in	*a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6	*a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a6->sin6_port == b6->sin6_port &&
	    memcmp(&a6->sin6_addr, &b6->sin6_addr, 16) == 0;
}

static unsigned
cba_hash(const struct sockaddr_storage *client)
{
	const struct sockaddr_in	*s4 = (const void *)client;
	const struct sockaddr_in6	*s6 = (const void *)client;
	const unsigned char		*a;
	unsigned			 h, i, n;

	if (client->ss_family == AF_INET6) {
		a = (const unsigned char *)&s6->sin6_addr;
		n = 16;
		h = s6->sin6_port;
	} else {
		a = (const unsigned char *)&s4->sin_addr;
		n = 4;
		h = s4->sin_port;
	}
	for (i = 0; i < n; i++)
		h = h * 31 + a[i];
	return (h * 2654435761u) >> 24 & (CBA_BUCKETS - 1);
}

static struct cba_conn *
cba_find(const struct sockaddr_storage *client,
    const struct sockaddr_storage *server)
{
	struct cba_conn	*c;

	for (c = cba_table[cba_hash(client)]; c != NULL; c = c->next)
		if (cba_same(&c->syn.src, client) &&
		    cba_same(&c->syn.dst, server))
			return c;
	return NULL;
}

static void
cba_unlink(struct cba_conn *c)
{
	struct cba_conn	**pp;

	for (pp = &cba_table[cba_hash(&c->syn.src)]; *pp != NULL;
	    pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			cba_count--;
			return;
		}
	fatal("cba: connection %s not in its bucket", c->id);
}

static void
cba_src_window(struct cba_src *s, uint64_t now)
{
	if (now - s->window >= CBA_SRC_WINDOW) {
		s->window = now;
		s->unconfirmed = 0;
		s->logged = 0;
	}
}

/* The sources with nothing held and nothing to remember go. */
static void
cba_src_sweep(uint64_t now)
{
	struct cba_src	**pp, *s;
	size_t		  i;

	if (now - cba_swept < CBA_SRC_SWEEP)
		return;
	cba_swept = now;
	for (i = 0; i < CBA_SRC_BUCKETS; i++)
		for (pp = &cba_srcs[i]; (s = *pp) != NULL; ) {
			cba_src_window(s, now);
			if (s->held == 0 && s->unconfirmed == 0) {
				*pp = s->next;
				free(s);
				cba_nsrc--;
			} else
				pp = &s->next;
		}
}

/* The budget of the source of addr, made if new; NULL past CBA_SRC_MAX. */
static struct cba_src *
cba_src_get(const struct sockaddr_storage *addr, uint64_t now)
{
	unsigned char	 key[RL_KEY_LEN];
	struct cba_src	*s;
	unsigned	 h;

	rl_key(addr, key);
	h = rl_key_hash(key) % CBA_SRC_BUCKETS;
	for (s = cba_srcs[h]; s != NULL; s = s->next)
		if (memcmp(s->key, key, sizeof(key)) == 0) {
			cba_src_window(s, now);
			return s;
		}
	if (cba_nsrc >= CBA_SRC_MAX || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	memcpy(s->key, key, sizeof(key));
	s->window = now;
	s->next = cba_srcs[h];
	cba_srcs[h] = s;
	cba_nsrc++;
	return s;
}

static void
cba_verdict(struct cba_conn *c, uint32_t id, int verdict)
{
	if (cba_qio.fd == -1)
		return;		/* the queue is gone, and the packet with it */
	if (synq_verdict(cba_qio.fd, cba_queue, id, verdict) == -1)
		log_warn(c != NULL ? c->id : NULL, "queue verdict %s on"
		    " packet %u: %s", verdict == NF_ACCEPT ? "accept" : "drop",
		    id, strerror(errno));
}

/* Out of the table; the memory waits for cba_reap(). */
static void
cba_close(struct cba_conn *c, int close_fd)
{
	if (c->dead)
		return;
	c->dead = 1;
	cba_unlink(c);
	if (c->src != NULL)
		c->src->held--;	/* freed by the next sweep, if idle */
	ev_timer_del(cba_loop, &c->timer);
	if (c->fd != -1) {
		ev_io_del(cba_loop, &c->io);
		if (close_fd)
			close(c->fd);
		c->fd = -1;
	}
	c->next = cba_dead;
	cba_dead = c;
}

static unsigned long long
cba_ms(const struct cba_conn *c)
{
	return (unsigned long long)(ev_now() - c->t0);
}

static void
cba_connected(struct cba_conn *c)
{
	int	err;

	if (sock_connect_result(c->fd) == 0) {
		log_info(c->id, "upstream connected before accept client=%s"
		    " server=%s connect_ms=%llu action=accept-syn", c->client,
		    c->server, cba_ms(c));
		/* The relay registers the descriptor itself when it takes
		 * it; until then nothing here wants its events. */
		ev_io_del(cba_loop, &c->io);
		c->state = CBA_READY;
		ev_timer_set(cba_loop, &c->timer, cba_conf->timeout_connect);
		cba_verdict(c, c->syn.id, NF_ACCEPT);
		return;
	}
	err = errno;
	cba_verdict(c, c->syn.id, NF_DROP);
	if (err == ECONNREFUSED) {
		if (synq_send_rst(&c->syn) == -1)
			log_warn(c->id, "upstream refused client=%s server=%s"
			    " connect_ms=%llu action=drop-syn (no reset: %s)",
			    c->client, c->server, cba_ms(c), strerror(errno));
		else
			log_info(c->id, "upstream refused client=%s server=%s"
			    " connect_ms=%llu action=reset-client", c->client,
			    c->server, cba_ms(c));
	} else {
		log_info(c->id, "upstream connect failed client=%s server=%s"
		    " error=\"%s\" connect_ms=%llu action=drop-syn", c->client,
		    c->server, strerror(err), cba_ms(c));
	}
	cba_close(c, 1);
}

static void
cba_io_cb(struct ev_io *io, int events)
{
	struct cba_conn	*c = io->arg;

	(void)events;
	if (c->dead || c->state != CBA_CONNECTING)
		return;
	cba_connected(c);
}

static void
cba_timer_cb(struct ev_timer *t)
{
	struct cba_conn	*c = t->arg;

	if (c->dead)
		return;
	if (c->state == CBA_CONNECTING) {
		log_info(c->id, "upstream connect timeout client=%s server=%s"
		    " connect_ms=%llu action=drop-syn", c->client, c->server,
		    cba_ms(c));
		cba_verdict(c, c->syn.id, NF_DROP);
	} else {
		if (c->src != NULL)
			c->src->unconfirmed++;
		log_info(c->id, "upstream connection not taken client=%s"
		    " server=%s action=close (the client never completed its"
		    " connection)", c->client, c->server);
	}
	cba_close(c, 1);
}

/*
 * Whether this SYN's source may have one more connect made for it; a
 * source over its budget, or one that cannot be tracked, is let through
 * unheld (the relay connects after the handshake proves the address).
 */
static int
cba_src_admit(const struct synq_pkt *p, struct cba_src **srcp)
{
	struct cba_src	*s;
	size_t		 budget = cba_conf->connect_before_accept_per_source;
	char		 addr[SOCK_ADDRSTR_MAX];

	*srcp = NULL;
	if (budget == 0)
		return 1;
	if ((s = cba_src_get(&p->src, ev_now())) != NULL &&
	    s->held < budget && s->unconfirmed < budget) {
		*srcp = s;
		return 1;
	}
	cba_over_budget++;
	if (s == NULL || !s->logged) {
		sock_format(&p->src, addr, sizeof(addr));
		log_info(NULL, "connect-before-accept budget reached client=%s"
		    " held=%u unconfirmed=%u per_source=%zu action=accept-syn"
		    " unheld (connected only once the client completes its"
		    " handshake)", addr, s ? s->held : 0,
		    s ? s->unconfirmed : 0, budget);
		if (s != NULL)
			s->logged = 1;
	}
	return 0;
}

/* A SYN of a new connection: hold it, and connect. */
static void
cba_syn(const struct synq_pkt *p)
{
	struct cba_conn	*c;
	struct cba_src	*src;
	unsigned	 h;

	if ((c = cba_find(&p->src, &p->dst)) != NULL) {
		/* A retransmission: the first SYN is still held (drop this
		 * one), or already let through (let this one follow it). */
		log_debug(c->id, "retransmitted syn client=%s state=%s"
		    " action=%s", c->client, c->state == CBA_CONNECTING ?
		    "connecting" : "ready", c->state == CBA_CONNECTING ?
		    "drop" : "accept");
		cba_verdict(c, p->id, c->state == CBA_CONNECTING ? NF_DROP :
		    NF_ACCEPT);
		return;
	}
	if (cba_sessions() + cba_count >= cba_conf->max_sessions) {
		/* The listener's overload handling takes it from here. */
		cba_verdict(NULL, p->id, NF_ACCEPT);
		return;
	}
	cba_src_sweep(ev_now());
	if (!cba_src_admit(p, &src) || (c = calloc(1, sizeof(*c))) == NULL) {
		cba_verdict(NULL, p->id, NF_ACCEPT);
		return;
	}
	if ((c->src = src) != NULL)
		src->held++;
	cba_idseq++;
	snprintf(c->id, sizeof(c->id), "%08x", (unsigned)(cba_idseq *
	    2654435761u) ^ (unsigned)getpid() ^ 0x80000000u);
	c->syn = *p;
	c->t0 = ev_now();
	c->state = CBA_CONNECTING;
	sock_format(&p->src, c->client, sizeof(c->client));
	sock_format(&p->dst, c->server, sizeof(c->server));
	ev_timer_init(&c->timer, cba_timer_cb, c);
	h = cba_hash(&p->src);
	c->next = cba_table[h];
	cba_table[h] = c;
	cba_count++;

	log_debug(c->id, "syn held client=%s server=%s", c->client,
	    c->server);
	c->fd = sock_connect(&p->dst, &p->src, 1);
	if (c->fd == -1) {
		log_info(c->id, "upstream connect failed client=%s server=%s"
		    " error=\"%s\" action=accept-syn (the relay tries again)",
		    c->client, c->server, strerror(errno));
		cba_verdict(c, p->id, NF_ACCEPT);
		cba_close(c, 0);
		return;
	}
	ev_io_init(&c->io, c->fd, cba_io_cb, c);
	if (ev_io_set(cba_loop, &c->io, EV_WRITE) == -1) {
		log_err(c->id, "epoll: %s", strerror(errno));
		cba_verdict(c, p->id, NF_ACCEPT);
		cba_close(c, 1);
		return;
	}
	ev_timer_set(cba_loop, &c->timer, cba_conf->timeout_connect);
}

static void
cba_message(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr	*e;
	struct synq_pkt		 p;

	if (nlh->nlmsg_type == NLMSG_ERROR) {
		e = mnl_nlmsg_get_payload(nlh);
		if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error != 0)
			log_warn(NULL, "queue: the kernel refused a message:"
			    " %s", strerror(-e->error));
		return;
	}
	if (synq_parse_packet(nlh, &p) == -1) {
		/* Not ours to judge: let it through if it has an id. */
		if (p.id != 0)
			cba_verdict(NULL, p.id, NF_ACCEPT);
		return;
	}
	if ((p.flags & (SYNQ_TCP_SYN | SYNQ_TCP_ACK | SYNQ_TCP_RST |
	    SYNQ_TCP_FIN)) != SYNQ_TCP_SYN) {
		cba_verdict(NULL, p.id, NF_ACCEPT);
		return;
	}
	cba_syn(&p);
}

static void
cba_queue_cb(struct ev_io *io, int events)
{
	union {
		struct nlmsghdr	 nlh;
		char		 b[CBA_RECV_MAX];
	}			 buf;
	const struct nlmsghdr	*nlh;
	ssize_t			 n;
	int			 i, rem;

	(void)events;
	for (i = 0; i < CBA_RECV_BATCH && io->fd != -1; i++) {
		if ((n = recv(io->fd, buf.b, sizeof(buf.b), 0)) == -1) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ENOBUFS)
				log_warn(NULL, "queue: %s", strerror(errno));
			return;
		}
		rem = (int)n;
		for (nlh = &buf.nlh; mnl_nlmsg_ok(nlh, rem);
		    nlh = mnl_nlmsg_next(nlh, &rem))
			cba_message(nlh);
	}
}

int
cba_init(struct ev_loop *loop, const struct conf *conf,
    size_t (*sessions)(void), char *err, size_t errlen)
{
	int	fd;

	cba_loop = loop;
	cba_sessions = sessions;
	cba_conf = conf;
	cba_queue = (uint16_t)conf->connect_before_accept_queue;
	ev_io_init(&cba_qio, -1, cba_queue_cb, NULL);
	if (synq_rst_open() == -1) {
		snprintf(err, errlen, "raw sockets for resets: %s",
		    strerror(errno));
		return -1;
	}
	if ((fd = synq_open(cba_queue, err, errlen)) == -1)
		return -1;
	cba_qio.fd = fd;
	if (ev_io_set(loop, &cba_qio, EV_READ) == -1) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		close(fd);
		cba_qio.fd = -1;
		return -1;
	}
	return 0;
}

int
cba_take(const struct sockaddr_storage *client,
    const struct sockaddr_storage *server, char *id, size_t idlen)
{
	struct sockaddr_storage	 cl, sv;
	struct cba_conn		*c;
	int			 fd;

	if (cba_loop == NULL)
		return -1;
	cba_norm(client, &cl);
	cba_norm(server, &sv);
	/* One still connecting was let through by a full queue: the relay
	 * connects on its own and this one finishes by itself. */
	if ((c = cba_find(&cl, &sv)) == NULL || c->state != CBA_READY)
		return -1;
	fd = c->fd;
	snprintf(id, idlen, "%s", c->id);
	cba_close(c, 0);
	return fd;
}

void
cba_stop(void)
{
	struct cba_conn	*c;
	size_t		 i;

	if (cba_loop == NULL)
		return;
	if (cba_qio.fd != -1) {
		ev_io_del(cba_loop, &cba_qio);
		close(cba_qio.fd);
		cba_qio.fd = -1;
	}
	for (i = 0; i < CBA_BUCKETS; i++)
		while ((c = cba_table[i]) != NULL)
			cba_close(c, 1);
}

size_t
cba_pending(void)
{
	return cba_count;
}

void
cba_status(struct buf *out)
{
	if (cba_loop == NULL)
		return;
	buf_printf(out, "cba.pending=%zu\ncba.sources=%zu\n"
	    "cba.unheld_over_budget=%llu\n", cba_count, cba_nsrc,
	    cba_over_budget);
}

void
cba_reap(void)
{
	struct cba_conn	*c;

	while ((c = cba_dead) != NULL) {
		cba_dead = c->next;
		free(c);
	}
}
