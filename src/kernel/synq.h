/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SYNQ_H
#define SPORK_SYNQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define SYNQ_MSG_MAX	256	/* a config or verdict message fits */
#define SYNQ_COPY	128	/* bytes of each packet copied to us */
#define SYNQ_MAXLEN	4096	/* packets the kernel holds for us */
#define SYNQ_RST_MAX	60	/* an IPv6 header and a bare TCP header */

/* A TCP segment from the queue, as much of it as a reset needs. */
struct synq_pkt {
	uint32_t		 id;		/* the kernel's packet id */
	struct sockaddr_storage	 src;		/* address and port */
	struct sockaddr_storage	 dst;
	uint32_t		 seq;
	uint8_t			 flags;		/* TCP flags */
};

#define SYNQ_TCP_FIN	0x01
#define SYNQ_TCP_SYN	0x02
#define SYNQ_TCP_RST	0x04
#define SYNQ_TCP_ACK	0x10

/* Pure: the message that binds (bind=1) or unbinds queue, copying
 * SYNQ_COPY bytes of each packet, holding up to SYNQ_MAXLEN, and letting
 * packets through rather than dropping them when it is full. Returns the
 * bytes used, 0 if len < SYNQ_MSG_MAX. */
size_t	synq_build_config(char *buf, size_t len, uint16_t queue, int bind,
	    uint32_t seq);
/* Pure: the verdict (NF_ACCEPT or NF_DROP) on packet id. */
size_t	synq_build_verdict(char *buf, size_t len, uint16_t queue, uint32_t id,
	    int verdict, uint32_t seq);
/* Pure: a queued packet (NFQNL_MSG_PACKET) into p: 0, or -1 if it is
 * not one (p->id is set whenever the message carries an id, so that even
 * a packet this cannot read can get a verdict). */
int	synq_parse_packet(const struct nlmsghdr *, struct synq_pkt *p);
/* Pure: an IPv4 or IPv6 packet starting with a TCP header (no IPv6
 * extension headers, no fragments) into p; -1 otherwise. */
int	synq_parse_ip(const void *pkt, size_t len, struct synq_pkt *p);
/* Pure: what a host with no listener answers to the SYN in p: a reset
 * from its destination, acknowledging it, as a whole IP packet with its
 * checksums. Returns the bytes used, or 0. */
size_t	synq_build_rst(const struct synq_pkt *syn, unsigned char *out,
	    size_t len);

/* A netlink socket bound to queue, non-blocking; -1 with err. Needs
 * CAP_NET_ADMIN, also for every verdict. */
int	synq_open(uint16_t queue, char *err, size_t errlen);
/* Tells the kernel; -1 with errno. */
int	synq_verdict(int fd, uint16_t queue, uint32_t id, int verdict);
/* Raw sockets to send resets from any address (CAP_NET_RAW); opened once,
 * before privileges are dropped. -1 with errno. */
int	synq_rst_open(void);
/* Sends the reset that answers syn. -1 with errno. */
int	synq_send_rst(const struct synq_pkt *syn);

#endif
