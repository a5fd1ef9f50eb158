/* SPDX-License-Identifier: MIT */
/*
 * The SYN queue's messages and packets, no kernel, no root: the config and
 * verdict messages parsed back attribute by attribute; queued packets
 * (built here as the kernel sends them) parsed into addresses, ports,
 * sequence number and flags, with what must be refused; the reset built
 * for a SYN parsed back, its checksums verified.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <libmnl/libmnl.h>

#include "synq.h"
#include "unit.h"

#define PKT_MAX		128

union msgbuf {
	struct nlmsghdr	 nlh;
	char		 b[1024];
};

struct pkt_case {
	const char	*name;
	int		 v6;
	int		 ok;		/* synq_parse_ip() accepts it */
	void		(*mangle)(unsigned char *, size_t *);
};

static int
attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr	**tb = data;
	int			  type = mnl_attr_get_type(a);

	if (type >= 0 && type <= NFQA_MAX)
		tb[type] = a;
	return MNL_CB_OK;
}

static int
parse_attrs(const struct nlmsghdr *nlh, const struct nlattr **tb)
{
	memset(tb, 0, sizeof(*tb) * (NFQA_MAX + 1));
	return mnl_attr_parse(nlh, sizeof(struct nfgenmsg), attr_cb, tb);
}

static void
check_header(const struct nlmsghdr *nlh, size_t len, int type,
    uint16_t queue, uint32_t seq)
{
	const struct nfgenmsg	*g = mnl_nlmsg_get_payload(nlh);

	CHECK(len == nlh->nlmsg_len, "length %zu, header says %u", len,
	    nlh->nlmsg_len);
	CHECK(NFNL_SUBSYS_ID(nlh->nlmsg_type) == NFNL_SUBSYS_QUEUE,
	    "for nfnetlink_queue");
	CHECK(NFNL_MSG_TYPE(nlh->nlmsg_type) == type, "type %d, want %d",
	    NFNL_MSG_TYPE(nlh->nlmsg_type), type);
	CHECK(nlh->nlmsg_flags & NLM_F_REQUEST, "a request");
	CHECK(nlh->nlmsg_seq == seq, "seq %u, want %u", nlh->nlmsg_seq, seq);
	CHECK(ntohs(g->res_id) == queue, "queue %u, want %u", ntohs(g->res_id),
	    queue);
	CHECK(g->version == NFNETLINK_V0, "version");
}

static void
check_config(void)
{
	union msgbuf			 m;
	const struct nlattr		*tb[NFQA_MAX + 1];
	const struct nfqnl_msg_config_cmd *cmd;
	const struct nfqnl_msg_config_params *par;
	size_t				 len;

	len = synq_build_config(m.b, sizeof(m.b), 25, 1, 7);
	CHECK(len > 0, "bind message built");
	check_header(&m.nlh, len, NFQNL_MSG_CONFIG, 25, 7);
	CHECK(m.nlh.nlmsg_flags & NLM_F_ACK, "binding asks for an ack");
	CHECK(parse_attrs(&m.nlh, tb) >= 0, "attributes parse");
	CHECK(tb[NFQA_CFG_CMD] != NULL && mnl_attr_get_payload_len(
	    tb[NFQA_CFG_CMD]) == sizeof(*cmd), "a command");
	if (tb[NFQA_CFG_CMD] != NULL) {
		cmd = mnl_attr_get_payload(tb[NFQA_CFG_CMD]);
		CHECK(cmd->command == NFQNL_CFG_CMD_BIND, "bind");
	}
	CHECK(tb[NFQA_CFG_PARAMS] != NULL, "copy parameters");
	if (tb[NFQA_CFG_PARAMS] != NULL) {
		par = mnl_attr_get_payload(tb[NFQA_CFG_PARAMS]);
		CHECK(par->copy_mode == NFQNL_COPY_PACKET, "copy packets");
		CHECK(ntohl(par->copy_range) == SYNQ_COPY, "copy %u bytes",
		    ntohl(par->copy_range));
	}
	CHECK(tb[NFQA_CFG_QUEUE_MAXLEN] != NULL && ntohl(mnl_attr_get_u32(
	    tb[NFQA_CFG_QUEUE_MAXLEN])) == SYNQ_MAXLEN, "queue length");
	CHECK(tb[NFQA_CFG_FLAGS] != NULL && tb[NFQA_CFG_MASK] != NULL &&
	    ntohl(mnl_attr_get_u32(tb[NFQA_CFG_FLAGS])) == NFQA_CFG_F_FAIL_OPEN
	    && ntohl(mnl_attr_get_u32(tb[NFQA_CFG_MASK])) ==
	    NFQA_CFG_F_FAIL_OPEN, "a full queue lets packets through");

	len = synq_build_config(m.b, sizeof(m.b), 65535, 0, 8);
	check_header(&m.nlh, len, NFQNL_MSG_CONFIG, 65535, 8);
	CHECK(parse_attrs(&m.nlh, tb) >= 0, "attributes parse");
	CHECK(tb[NFQA_CFG_CMD] != NULL && ((const struct nfqnl_msg_config_cmd *)
	    mnl_attr_get_payload(tb[NFQA_CFG_CMD]))->command ==
	    NFQNL_CFG_CMD_UNBIND, "unbind");
	CHECK(tb[NFQA_CFG_PARAMS] == NULL && tb[NFQA_CFG_FLAGS] == NULL,
	    "unbinding sets nothing else");
	CHECK(synq_build_config(m.b, SYNQ_MSG_MAX - 1, 1, 1, 1) == 0,
	    "a short buffer is refused");
}

static void
check_verdict(void)
{
	static const struct {
		uint32_t	 id;
		int		 verdict;
	} cases[] = {
		{ 1, NF_ACCEPT }, { 0xfffffffe, NF_DROP }, { 4242, NF_ACCEPT },
	};
	union msgbuf				 m;
	const struct nlattr			*tb[NFQA_MAX + 1];
	const struct nfqnl_msg_verdict_hdr	*vh;
	size_t					 i, len;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = synq_build_verdict(m.b, sizeof(m.b), 25, cases[i].id,
		    cases[i].verdict, 100 + (uint32_t)i);
		CHECK(len > 0, "verdict %zu built", i);
		check_header(&m.nlh, len, NFQNL_MSG_VERDICT, 25,
		    100 + (uint32_t)i);
		CHECK(parse_attrs(&m.nlh, tb) >= 0, "attributes parse");
		CHECK(tb[NFQA_VERDICT_HDR] != NULL &&
		    mnl_attr_get_payload_len(tb[NFQA_VERDICT_HDR]) ==
		    sizeof(*vh), "a verdict header");
		if (tb[NFQA_VERDICT_HDR] == NULL)
			continue;
		vh = mnl_attr_get_payload(tb[NFQA_VERDICT_HDR]);
		CHECK(ntohl(vh->id) == cases[i].id, "id %u, want %u",
		    ntohl(vh->id), cases[i].id);
		CHECK(ntohl(vh->verdict) == (uint32_t)cases[i].verdict,
		    "verdict %u", ntohl(vh->verdict));
		CHECK(tb[NFQA_MARK] == NULL && tb[NFQA_PAYLOAD] == NULL,
		    "the packet goes on unchanged");
	}
	CHECK(synq_build_verdict(m.b, sizeof(m.b), 25, 1, NF_QUEUE, 1) == 0,
	    "only accept and drop");
	CHECK(synq_build_verdict(m.b, 16, 25, 1, NF_ACCEPT, 1) == 0,
	    "a short buffer is refused");
}

/* A SYN from the client 10.25.0.1:40312 (fd25::1) to 10.25.0.2:25
 * (fd25::2), sequence 0x11223344, with 20 bytes of TCP options. */
static size_t
make_syn(unsigned char *p, int v6)
{
	size_t	ip = v6 ? 40 : 20, tcp = 40;

	memset(p, 0, ip + tcp);
	if (v6) {
		p[0] = 0x60;
		p[5] = (unsigned char)tcp;
		p[6] = 6;
		p[7] = 64;
		inet_pton(AF_INET6, "fd25::1", p + 8);
		inet_pton(AF_INET6, "fd25::2", p + 24);
	} else {
		p[0] = 0x45;
		p[3] = (unsigned char)(ip + tcp);
		p[6] = 0x40;
		p[8] = 64;
		p[9] = 6;
		inet_pton(AF_INET, "10.25.0.1", p + 12);
		inet_pton(AF_INET, "10.25.0.2", p + 16);
	}
	p += ip;
	p[0] = 40312 >> 8;
	p[1] = 40312 & 0xff;
	p[3] = 25;
	p[4] = 0x11;
	p[5] = 0x22;
	p[6] = 0x33;
	p[7] = 0x44;
	p[12] = (unsigned char)(tcp / 4) << 4;
	p[13] = SYNQ_TCP_SYN;
	p[14] = 0xfa;
	return ip + tcp;
}

static void m_none(unsigned char *p, size_t *n) { (void)p; (void)n; }
static void m_udp4(unsigned char *p, size_t *n) { (void)n; p[9] = 17; }
static void m_udp6(unsigned char *p, size_t *n) { (void)n; p[6] = 17; }
static void m_ext6(unsigned char *p, size_t *n) { (void)n; p[6] = 0; }
static void m_frag(unsigned char *p, size_t *n) { (void)n; p[6] |= 0x20; }
static void m_later(unsigned char *p, size_t *n) { (void)n; p[7] = 1; }
static void m_short(unsigned char *p, size_t *n) { (void)p; *n = 39; }
static void m_short6(unsigned char *p, size_t *n) { (void)p; *n = 59; }
static void m_ihl(unsigned char *p, size_t *n) { (void)n; p[0] = 0x44; }
static void m_doff(unsigned char *p, size_t *n) { (void)n; p[32] = 0x40; }
static void m_ver(unsigned char *p, size_t *n) { (void)n; p[0] = 0x55; }
static void m_totlen(unsigned char *p, size_t *n) { (void)n; p[3] = 30; }
/* Copied: only SYNQ_COPY bytes of a long packet reach us; still a SYN. */
static void m_copied(unsigned char *p, size_t *n) { p[2] = 5; *n = 60; }

static const struct pkt_case pkt_cases[] = {
	{ "IPv4 SYN", 0, 1, m_none },
	{ "IPv6 SYN", 1, 1, m_none },
	{ "IPv4 SYN, truncated copy of a long packet", 0, 1, m_copied },
	{ "IPv4 UDP", 0, 0, m_udp4 },
	{ "IPv6 UDP", 1, 0, m_udp6 },
	{ "IPv6 with an extension header", 1, 0, m_ext6 },
	{ "IPv4 first fragment", 0, 0, m_frag },
	{ "IPv4 later fragment", 0, 0, m_later },
	{ "IPv4 shorter than its TCP header", 0, 0, m_short },
	{ "IPv6 shorter than its TCP header", 1, 0, m_short6 },
	{ "IPv4 header length below 20", 0, 0, m_ihl },
	{ "TCP data offset below 20", 0, 0, m_doff },
	{ "IP version 5", 0, 0, m_ver },
	{ "IPv4 total length below the headers", 0, 0, m_totlen },
};

/* A packet message as nfnetlink_queue sends it. */
static size_t
make_packet_msg(union msgbuf *m, uint32_t id, const unsigned char *pkt,
    size_t len, int with_payload)
{
	struct nlmsghdr			*nlh;
	struct nfgenmsg			*g;
	struct nfqnl_msg_packet_hdr	 ph;

	memset(m, 0, sizeof(*m));
	nlh = mnl_nlmsg_put_header(m->b);
	nlh->nlmsg_type = NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_INET;
	g->version = NFNETLINK_V0;
	g->res_id = htons(25);
	memset(&ph, 0, sizeof(ph));
	ph.packet_id = htonl(id);
	ph.hw_protocol = htons(0x0800);
	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
	if (with_payload)
		mnl_attr_put(nlh, NFQA_PAYLOAD, (uint16_t)len, pkt);
	return nlh->nlmsg_len;
}

static void
check_addr(const struct sockaddr_storage *ss, int v6, const char *want,
    uint16_t port, const char *what)
{
	char	got[64] = "";

	if (v6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->
		    sin6_addr, got, sizeof(got));
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    got, sizeof(got));
	CHECK(ss->ss_family == (v6 ? AF_INET6 : AF_INET), "%s family", what);
	CHECK(strcmp(got, want) == 0, "%s %s, want %s", what, got, want);
	CHECK(ntohs(v6 ? ((const struct sockaddr_in6 *)ss)->sin6_port :
	    ((const struct sockaddr_in *)ss)->sin_port) == port,
	    "%s port, want %u", what, port);
}

static void
check_packets(void)
{
	unsigned char	pkt[PKT_MAX];
	union msgbuf	m;
	struct synq_pkt	p;
	size_t		i, n;
	int		rc;

	for (i = 0; i < sizeof(pkt_cases) / sizeof(pkt_cases[0]); i++) {
		const struct pkt_case *c = &pkt_cases[i];

		n = make_syn(pkt, c->v6);
		c->mangle(pkt, &n);
		make_packet_msg(&m, 1000 + (uint32_t)i, pkt, n, 1);
		rc = synq_parse_packet(&m.nlh, &p);
		CHECK(rc == (c->ok ? 0 : -1), "%s: parse gave %d", c->name, rc);
		CHECK(p.id == 1000 + i, "%s: id %u kept for the verdict",
		    c->name, p.id);
		if (!c->ok || rc != 0)
			continue;
		check_addr(&p.src, c->v6, c->v6 ? "fd25::1" : "10.25.0.1",
		    40312, c->name);
		check_addr(&p.dst, c->v6, c->v6 ? "fd25::2" : "10.25.0.2", 25,
		    c->name);
		CHECK(p.seq == 0x11223344, "%s: seq %#x", c->name, p.seq);
		CHECK(p.flags == SYNQ_TCP_SYN, "%s: flags %#x", c->name,
		    p.flags);
	}
	n = make_syn(pkt, 0);
	make_packet_msg(&m, 77, pkt, n, 0);
	CHECK(synq_parse_packet(&m.nlh, &p) == -1 && p.id == 77,
	    "no payload: refused, id kept");
	make_packet_msg(&m, 78, pkt, n, 1);
	m.nlh.nlmsg_type = NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_VERDICT;
	CHECK(synq_parse_packet(&m.nlh, &p) == -1 && p.id == 0,
	    "not a packet message");
}

/* The one's complement sum over b folds to 0xffff when it is right. */
static uint32_t
sum(uint32_t s, const unsigned char *b, size_t len)
{
	size_t	i;

	for (i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		s += (uint32_t)(b[len - 1] << 8);
	return s;
}

static int
folds_ok(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s == 0xffff;
}

static void
check_rst(int v6)
{
	unsigned char	syn[PKT_MAX], rst[SYNQ_RST_MAX], pseudo[8];
	struct synq_pkt	p, r;
	size_t		n, ip = v6 ? 40 : 20, alen = v6 ? 16 : 4;
	uint32_t	ack, s;
	const char	*what = v6 ? "IPv6 reset" : "IPv4 reset";

	n = make_syn(syn, v6);
	CHECK(synq_parse_ip(syn, n, &p) == 0, "%s: the SYN parses", what);
	n = synq_build_rst(&p, rst, sizeof(rst));
	CHECK(n == ip + 20, "%s: %zu bytes", what, n);
	if (n != ip + 20)
		return;
	CHECK(synq_parse_ip(rst, n, &r) == 0, "%s parses", what);
	check_addr(&r.src, v6, v6 ? "fd25::2" : "10.25.0.2", 25, what);
	check_addr(&r.dst, v6, v6 ? "fd25::1" : "10.25.0.1", 40312, what);
	CHECK(r.flags == (SYNQ_TCP_RST | SYNQ_TCP_ACK), "%s: flags %#x",
	    what, r.flags);
	CHECK(r.seq == 0, "%s: seq 0", what);
	memcpy(&ack, rst + ip + 8, 4);
	CHECK(ntohl(ack) == 0x11223345, "%s: acknowledges the SYN (%#x)",
	    what, ntohl(ack));
	if (!v6)
		CHECK(folds_ok(sum(0, rst, 20)), "IPv4 header checksum");
	else
		CHECK(rst[4] == 0 && rst[5] == 20 && rst[6] == 6,
		    "IPv6 payload length and next header");
	memset(pseudo, 0, sizeof(pseudo));
	pseudo[3] = 20;
	pseudo[7] = 6;
	s = sum(0, rst + (v6 ? 8 : 12), 2 * alen);
	s = sum(s, pseudo, sizeof(pseudo));
	s = sum(s, rst + ip, 20);
	CHECK(folds_ok(s), "%s: TCP checksum", what);

	p.flags = SYNQ_TCP_SYN | SYNQ_TCP_ACK;
	CHECK(synq_build_rst(&p, rst, sizeof(rst)) != 0,
	    "a SYN-ACK still gets one");
	p.flags = SYNQ_TCP_ACK;
	CHECK(synq_build_rst(&p, rst, sizeof(rst)) == 0, "%s: only for a SYN",
	    what);
	p.flags = SYNQ_TCP_SYN;
	CHECK(synq_build_rst(&p, rst, ip + 19) == 0, "%s: short buffer", what);
	p.dst.ss_family = v6 ? AF_INET : AF_INET6;
	CHECK(synq_build_rst(&p, rst, sizeof(rst)) == 0,
	    "%s: mixed families refused", what);
}

void
test_synq(void)
{
	check_config();
	check_verdict();
	check_packets();
	check_rst(0);
	check_rst(1);
}
