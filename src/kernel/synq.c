/* SPDX-License-Identifier: MIT */
/*
 * The SYN queue: the nfnetlink_queue socket where the divert's queue rule
 * (nft_divert.c) hands over the SYNs of new SMTP connections, the
 * messages that bind it and give verdicts, the parsing of a queued packet
 * down to its TCP header, and the reset sent from the server's address
 * when the server refused. Messages and packets are built and parsed by
 * pure functions (tests/unit/test_synq.c); the rest is a few system calls.
 * It trusts nothing in a queued packet beyond what it checks, knows
 * nothing about SMTP or sessions, never logs and never blocks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "synq.h"

#define SYNQ_IP4_HDR	20
#define SYNQ_IP6_HDR	40
#define SYNQ_TCP_HDR	20
#define SYNQ_TTL	64
#define SYNQ_RECV_MAX	8192

/* Raw sockets for resets, one per family; IPPROTO_RAW implies that we
 * write the IP header ourselves. */
static int	synq_raw4 = -1;
static int	synq_raw6 = -1;

/* --- pure: messages ---------------------------------------------------- */

size_t
synq_build_config(char *buf, size_t len, uint16_t queue, int bind,
    uint32_t seq)
{
	struct nlmsghdr	*nlh;

	if (len < SYNQ_MSG_MAX)
		return 0;
	memset(buf, 0, SYNQ_MSG_MAX);
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue);
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	/* The family is ignored by kernels since 3.8; one socket gets both
	 * IPv4 and IPv6 SYNs. */
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, bind ? NFQNL_CFG_CMD_BIND :
	    NFQNL_CFG_CMD_UNBIND);
	if (bind) {
		nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, SYNQ_COPY);
		nfq_nlmsg_cfg_put_qmaxlen(nlh, SYNQ_MAXLEN);
		/* A full queue lets SYNs through to the listener, which then
		 * connects after accepting, as without the queue. */
		mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS,
		    htonl(NFQA_CFG_F_FAIL_OPEN));
		mnl_attr_put_u32(nlh, NFQA_CFG_MASK,
		    htonl(NFQA_CFG_F_FAIL_OPEN));
	}
	return nlh->nlmsg_len;
}

size_t
synq_build_verdict(char *buf, size_t len, uint16_t queue, uint32_t id,
    int verdict, uint32_t seq)
{
	struct nlmsghdr	*nlh;

	if (len < SYNQ_MSG_MAX || (verdict != NF_ACCEPT && verdict != NF_DROP))
		return 0;
	memset(buf, 0, SYNQ_MSG_MAX);
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, queue);
	nlh->nlmsg_seq = seq;
	nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
	return nlh->nlmsg_len;
}

/* --- pure: packets ----------------------------------------------------- */

static void
synq_addr4(struct sockaddr_storage *ss, const unsigned char *a, uint16_t port)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, a, 4);
	sin->sin_port = port;		/* network order, as read */
}

static void
synq_addr6(struct sockaddr_storage *ss, const unsigned char *a, uint16_t port)
{
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	memcpy(&sin6->sin6_addr, a, 16);
	sin6->sin6_port = port;
}

int
synq_parse_ip(const void *pkt, size_t len, struct synq_pkt *p)
{
	const unsigned char	*b = pkt, *tcp;
	size_t			 ihl, tlen;
	uint16_t		 sport, dport, frag;
	uint32_t		 seq;

	if (len < 1)
		return -1;
	switch (b[0] >> 4) {
	case 4:
		ihl = (size_t)(b[0] & 0x0f) * 4;
		if (ihl < SYNQ_IP4_HDR || len < ihl + SYNQ_TCP_HDR ||
		    b[9] != IPPROTO_TCP)
			return -1;
		/* Neither a later fragment nor a first one with more. */
		memcpy(&frag, b + 6, 2);
		if ((ntohs(frag) & 0x3fff) != 0)
			return -1;
		/* The total length is the packet's, not what was copied. */
		tlen = (size_t)(b[2] << 8 | b[3]);
		if (tlen < ihl + SYNQ_TCP_HDR)
			return -1;
		tcp = b + ihl;
		memcpy(&sport, tcp, 2);
		memcpy(&dport, tcp + 2, 2);
		synq_addr4(&p->src, b + 12, sport);
		synq_addr4(&p->dst, b + 16, dport);
		break;
	case 6:
		if (len < SYNQ_IP6_HDR + SYNQ_TCP_HDR || b[6] != IPPROTO_TCP)
			return -1;
		tcp = b + SYNQ_IP6_HDR;
		memcpy(&sport, tcp, 2);
		memcpy(&dport, tcp + 2, 2);
		synq_addr6(&p->src, b + 8, sport);
		synq_addr6(&p->dst, b + 24, dport);
		break;
	default:
		return -1;
	}
	if ((size_t)(tcp[12] >> 4) * 4 < SYNQ_TCP_HDR)
		return -1;
	memcpy(&seq, tcp + 4, 4);
	p->seq = ntohl(seq);
	p->flags = tcp[13];
	return 0;
}

int
synq_parse_packet(const struct nlmsghdr *nlh, struct synq_pkt *p)
{
	struct nlattr			*attr[NFQA_MAX + 1];
	const struct nfqnl_msg_packet_hdr *ph;

	memset(p, 0, sizeof(*p));
	memset(attr, 0, sizeof(attr));
	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_QUEUE ||
	    NFNL_MSG_TYPE(nlh->nlmsg_type) != NFQNL_MSG_PACKET ||
	    nlh->nlmsg_len < NLMSG_LENGTH(sizeof(struct nfgenmsg)) ||
	    nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL ||
	    mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(*ph))
		return -1;
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	p->id = ntohl(ph->packet_id);
	if (attr[NFQA_PAYLOAD] == NULL)
		return -1;
	return synq_parse_ip(mnl_attr_get_payload(attr[NFQA_PAYLOAD]),
	    mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]), p);
}

/* The Internet checksum (RFC 1071) of b, continuing from sum. */
static uint32_t
synq_sum(uint32_t sum, const unsigned char *b, size_t len)
{
	size_t	i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	return sum;
}

static uint16_t
synq_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

size_t
synq_build_rst(const struct synq_pkt *syn, unsigned char *out, size_t len)
{
	const struct sockaddr_in	*s4 = (const void *)&syn->src;
	const struct sockaddr_in	*d4 = (const void *)&syn->dst;
	const struct sockaddr_in6	*s6 = (const void *)&syn->src;
	const struct sockaddr_in6	*d6 = (const void *)&syn->dst;
	unsigned char			*tcp, pseudo[8];
	size_t				 ip, alen;
	uint32_t			 sum, ack;
	uint16_t			 csum, sport, dport;
	int				 v6 = syn->src.ss_family == AF_INET6;

	if (syn->src.ss_family != syn->dst.ss_family ||
	    (!v6 && syn->src.ss_family != AF_INET) ||
	    !(syn->flags & SYNQ_TCP_SYN))
		return 0;
	ip = v6 ? SYNQ_IP6_HDR : SYNQ_IP4_HDR;
	alen = v6 ? 16 : 4;
	if (len < ip + SYNQ_TCP_HDR)
		return 0;
	memset(out, 0, ip + SYNQ_TCP_HDR);
	/* From the SYN's destination, to its source. */
	if (v6) {
		out[0] = 0x60;
		out[5] = SYNQ_TCP_HDR;		/* payload length */
		out[6] = IPPROTO_TCP;
		out[7] = SYNQ_TTL;
		memcpy(out + 8, &d6->sin6_addr, 16);
		memcpy(out + 24, &s6->sin6_addr, 16);
		sport = d6->sin6_port;
		dport = s6->sin6_port;
	} else {
		out[0] = 0x45;
		out[3] = SYNQ_IP4_HDR + SYNQ_TCP_HDR;
		out[6] = 0x40;			/* don't fragment */
		out[8] = SYNQ_TTL;
		out[9] = IPPROTO_TCP;
		memcpy(out + 12, &d4->sin_addr, 4);
		memcpy(out + 16, &s4->sin_addr, 4);
		csum = htons(synq_fold(synq_sum(0, out, SYNQ_IP4_HDR)));
		memcpy(out + 10, &csum, 2);
		sport = d4->sin_port;
		dport = s4->sin_port;
	}
	/* RFC 793: a reset answering a segment without ACK has sequence
	 * number 0 and acknowledges the segment (a SYN counts as one). */
	tcp = out + ip;
	memcpy(tcp, &sport, 2);
	memcpy(tcp + 2, &dport, 2);
	ack = htonl(syn->seq + 1);
	memcpy(tcp + 8, &ack, 4);
	tcp[12] = (SYNQ_TCP_HDR / 4) << 4;
	tcp[13] = SYNQ_TCP_RST | SYNQ_TCP_ACK;
	/* The pseudo header: both addresses, protocol, TCP length. */
	sum = synq_sum(0, out + (v6 ? 8 : 12), 2 * alen);
	memset(pseudo, 0, sizeof(pseudo));
	pseudo[3] = SYNQ_TCP_HDR;
	pseudo[7] = IPPROTO_TCP;
	sum = synq_sum(sum, pseudo, sizeof(pseudo));
	sum = synq_sum(sum, tcp, SYNQ_TCP_HDR);
	csum = htons(synq_fold(sum));
	memcpy(tcp + 16, &csum, 2);
	return ip + SYNQ_TCP_HDR;
}

/* --- the kernel -------------------------------------------------------- */

int
synq_open(uint16_t queue, char *err, size_t errlen)
{
	char			 buf[SYNQ_RECV_MAX];
	const struct nlmsghdr	*nlh;
	const struct nlmsgerr	*e;
	struct sockaddr_nl	 sa;
	struct timeval		 tv = { .tv_sec = 5 };
	uint32_t		 seq = (uint32_t)time(NULL);
	size_t			 len;
	ssize_t			 n;
	int			 fd, fl, rem, one = 1, saved;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd == -1) {
		snprintf(err, errlen, "netlink socket: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		goto fail;
	/* Under load the kernel may drop packets it cannot queue to us;
	 * ENOBUFS on the socket would say so, and it need not. */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one,
	    sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	len = synq_build_config(buf, sizeof(buf), queue, 1, seq);
	if (send(fd, buf, len, 0) != (ssize_t)len)
		goto fail;
	for (;;) {
		if ((n = recv(fd, buf, sizeof(buf), 0)) == -1)
			goto fail;
		rem = (int)n;
		for (nlh = (const void *)buf; mnl_nlmsg_ok(nlh, rem);
		    nlh = mnl_nlmsg_next(nlh, &rem)) {
			if (nlh->nlmsg_type != NLMSG_ERROR ||
			    nlh->nlmsg_seq != seq)
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			if (e->error != 0) {
				errno = -e->error;
				goto fail;
			}
			goto bound;
		}
	}
bound:
	tv.tv_sec = 0;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	snprintf(err, errlen, "netfilter queue %u: %s%s", queue,
	    strerror(saved), saved == EBUSY ? " (another process has it)" :
	    saved == EPERM ? " (needs CAP_NET_ADMIN)" : "");
	close(fd);
	errno = saved;
	return -1;
}

int
synq_verdict(int fd, uint16_t queue, uint32_t id, int verdict)
{
	char	buf[SYNQ_MSG_MAX];
	size_t	len;

	if ((len = synq_build_verdict(buf, sizeof(buf), queue, id, verdict,
	    0)) == 0) {
		errno = EINVAL;
		return -1;
	}
	return send(fd, buf, len, 0) == (ssize_t)len ? 0 : -1;
}

int
synq_rst_open(void)
{
	int	one = 1;

	if (synq_raw4 == -1 && (synq_raw4 = socket(AF_INET, SOCK_RAW |
	    SOCK_CLOEXEC, IPPROTO_RAW)) == -1)
		return -1;
	if (synq_raw6 == -1 && (synq_raw6 = socket(AF_INET6, SOCK_RAW |
	    SOCK_CLOEXEC, IPPROTO_RAW)) == -1)
		return -1;
	/* Sources that are not ours, as the transparent sockets have. */
	(void)setsockopt(synq_raw4, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
	(void)setsockopt(synq_raw6, SOL_IPV6, IPV6_TRANSPARENT, &one,
	    sizeof(one));
	return 0;
}

int
synq_send_rst(const struct synq_pkt *syn)
{
	unsigned char		 pkt[SYNQ_RST_MAX];
	struct sockaddr_storage	 to;
	size_t			 len;
	int			 fd;

	if ((len = synq_build_rst(syn, pkt, sizeof(pkt))) == 0) {
		errno = EINVAL;
		return -1;
	}
	fd = syn->src.ss_family == AF_INET6 ? synq_raw6 : synq_raw4;
	if (fd == -1) {
		errno = EBADF;
		return -1;
	}
	to = syn->src;
	if (to.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&to)->sin6_port = 0;
	else
		((struct sockaddr_in *)&to)->sin_port = 0;
	return sendto(fd, pkt, len, 0, (struct sockaddr *)&to,
	    to.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in)) == (ssize_t)len ? 0 : -1;
}
