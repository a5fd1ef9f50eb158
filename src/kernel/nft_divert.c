/* SPDX-License-Identifier: MIT */
/*
 * The divert, owned by the daemon: the nft tables "bridge spork" and "inet
 * spork" that hand TCP port 25 crossing the bridge to sporkd's transparent
 * listener (the same divert as scripts/spork-setup's), plus bypass sets of
 * SMTP clients and servers whose connections are left alone. The tables
 * carry the owner flag and are created over a netlink socket this module
 * keeps open: when it closes, for whatever reason, down to SIGKILL, the
 * kernel deletes them and the bridge forwards port 25 untouched (fail-open).
 * Kernels from 6.9 also know a persist flag, which would orphan the tables
 * instead; it is never set here, as that would keep diverting to a dead
 * listener.
 *
 * The ruleset is described once (nd_set_defs[], nd_rules()) and rendered
 * twice: as one nf_tables batch by nft_divert_build(), a pure function, and
 * as nft syntax by nft_divert_print(). Every message asks for an ack and
 * nd_talk() matches the acks to the batch by sequence number. The module
 * also probes the kernel for each expression the divert uses, and reads a
 * bridge's MAC and ports over rtnetlink. It trusts its conf only after
 * nd_conf_check(); it knows nothing about SMTP beyond port 25, never logs,
 * and never touches routing, sysctls or anything outside its own tables.
 * Every change to an owner table must come over the owning socket, and
 * nfnetlink wants CAP_NET_ADMIN of the caller each time, not only when the
 * socket was opened.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netfilter.h>
#include <linux/netfilter_bridge.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "log.h"
#include "nft_divert.h"

#define ND_SMTP_PORT		25
#define ND_BRIDGE_PRIO		(-300)	/* before the bridge's lookup */
#define ND_INET_PRIO		(-150)	/* mangle */
#define ND_SYN_PRIO		(-300)	/* raw: before conntrack (-200) */
#define ND_NFQUEUE_REV		3	/* struct xt_NFQ_info_v3 */
#define ND_DEFAULT_TABLE	"spork"
#define ND_MSG_MAX		4096	/* one message; ours are under 1 KiB */
#define ND_MSGS_MAX		64	/* in one batch; the ruleset has 38 */
#define ND_RULES_MAX		20
#define ND_TERMS_MAX		8
#define ND_COMMENT_MAX		128	/* nft allows NFT_USERDATA_MAXLEN */
#define ND_RECV_MAX		16384
#define ND_TIMEOUT_S		5	/* it answers at once; never hang */
#define ND_TABLE_F_PERSIST	0x4	/* NFT_TABLE_F_PERSIST, Linux 6.9 */
#define ND_TCP_FIN		0x01
#define ND_TCP_SYN		0x02
#define ND_TCP_RST		0x04
#define ND_TCP_ACK		0x10

/* nft's own numbers, stored with a set so that `nft list` prints it. */
#define ND_TYPE_IPADDR		7
#define ND_TYPE_IP6ADDR		8
#define ND_TYPE_IFNAME		41
#define ND_BYTEORDER_HOST	1
#define ND_BYTEORDER_BIG	2

enum nd_chain {
	ND_BRIDGE,
	ND_INET,
	ND_INET_SYN,		/* connect-before-accept: SYNs to the queue */
};

/* The chains, in the order they are created and printed; a table is made
 * of the chains of its family. */
static const struct {
	int		 family;
	const char	*name;
	int		 prio;
	const char	*prio_name;
} nd_chains[] = {
	[ND_BRIDGE] = { NFPROTO_BRIDGE, "prerouting", ND_BRIDGE_PRIO, "-300" },
	[ND_INET] = { NFPROTO_INET, "prerouting", ND_INET_PRIO, "mangle" },
	[ND_INET_SYN] = { NFPROTO_INET, "syn", ND_SYN_PRIO, "raw" },
};
#define ND_NCHAINS	(sizeof(nd_chains) / sizeof(nd_chains[0]))

enum nd_set_id {
	SET_NONE,
	SET_PORTS,
	SET_SRC4,
	SET_DST4,
	SET_SRC6,
	SET_DST6,
	SET_COUNT,
};

/* What a rule is made of, in order: matches, then statements. */
enum nd_term {
	T_END,
	T_IIF,			/* a port of the bridge */
	T_ETHER_IP,		/* ether type ip / ip6 */
	T_NFPROTO,		/* meta nfproto ipv4 / ipv6 */
	T_L4_TCP,		/* meta l4proto tcp */
	T_DPORT_SMTP,		/* tcp dport 25 */
	T_SPORT_SMTP,		/* tcp sport 25 */
	T_SADDR_SET,		/* ip saddr @set */
	T_DADDR_SET,		/* ip daddr @set */
	T_SOCKET_TRANSPARENT,	/* socket transparent 1 */
	T_TPROXY,		/* tproxy ip to :port */
	T_MARK_SET,		/* meta mark set */
	T_ETHER_DADDR_SET,	/* ether daddr set <bridge MAC> */
	T_PKTTYPE_HOST,		/* meta pkttype set host */
	T_SYN_ONLY,		/* tcp flags syn / fin,syn,rst,ack */
	T_QUEUE,		/* queue num N bypass (xt NFQUEUE v3) */
	T_ACCEPT,
	T_RETURN,
};

struct nd_set_def {
	const char	*name;
	uint32_t	 key_type;
	uint32_t	 key_len;
	uint32_t	 byteorder;
	uint32_t	 flags;
	const char	*comment;
};

struct nd_rule {
	enum nd_chain	 chain;
	int		 nfproto;	/* of ether type, addresses, tproxy */
	enum nd_set_id	 set;		/* of the address terms */
	enum nd_term	 terms[ND_TERMS_MAX];
	char		 comment[ND_COMMENT_MAX];
};

/* A batch under construction: each message is built in scratch (libnftnl
 * writes without bounds), then copied into buf if it fits. */
struct nd_batch {
	char		*buf;
	size_t		 len;
	size_t		 off;
	uint32_t	 seq;
	int		 failed;
	union {
		struct nlmsghdr	 nlh;
		char		 b[ND_MSG_MAX];
	}		 scratch;
};

/* The acks to one batch, by message. */
struct nd_acks {
	size_t			 n;
	uint32_t		 seq[ND_MSGS_MAX];
	const struct nlmsghdr	*msg[ND_MSGS_MAX];
	int			 acked[ND_MSGS_MAX];
	int			 err[ND_MSGS_MAX];	/* positive errno */
	int			 batch_err;	/* the batch as a whole */
};

struct nd_probe {
	unsigned	 bit;
	const char	*what;
	const char	*lack;
	int		 family;	/* of the throwaway table */
	uint32_t	 table_flags;
	enum nd_set_id	 set;
	int		 nfproto;
	int		 ibrname;
	enum nd_term	 terms[ND_TERMS_MAX];
	int		 check_only;	/* never commit it */
};

union nd_buf {
	struct nlmsghdr	 nlh;
	char		 b[NFT_DIVERT_BATCH_MAX];
};

static int	nd_conf_check(const struct nft_divert_conf *, char *, size_t);
static size_t	nd_rules(const struct nft_divert_conf *, struct nd_rule *);
static int	nd_set_wanted(const struct nft_divert_conf *, enum nd_set_id);
static int	nd_open(struct mnl_socket **, int, uint32_t *, char *, size_t);
static int	nd_talk(struct mnl_socket *, const char *, size_t,
		    struct nd_acks *);
static int	nd_check_acks(const struct nd_acks *, char *, size_t);
static void	errf(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static const struct nd_set_def nd_set_defs[SET_COUNT] = {
	[SET_PORTS] = { "ports", ND_TYPE_IFNAME, IFNAMSIZ, ND_BYTEORDER_HOST,
	    0, "the bridge's ports when sporkd installed the divert" },
	[SET_SRC4] = { "bypass_src4", ND_TYPE_IPADDR, 4, ND_BYTEORDER_BIG,
	    NFT_SET_TIMEOUT, "SMTP clients not diverted (IPv4)" },
	[SET_DST4] = { "bypass_dst4", ND_TYPE_IPADDR, 4, ND_BYTEORDER_BIG,
	    NFT_SET_TIMEOUT, "SMTP servers not diverted (IPv4)" },
	[SET_SRC6] = { "bypass_src6", ND_TYPE_IP6ADDR, 16, ND_BYTEORDER_BIG,
	    NFT_SET_TIMEOUT, "SMTP clients not diverted (IPv6)" },
	[SET_DST6] = { "bypass_dst6", ND_TYPE_IP6ADDR, 16, ND_BYTEORDER_BIG,
	    NFT_SET_TIMEOUT, "SMTP servers not diverted (IPv6)" },
};

/* Values for the probe's rules, which sit in dormant tables: they never
 * see a packet. */
static const struct nft_divert_conf nd_probe_conf = {
	.bridge = "br0",
	.bridge_mac = { 0x02, 0, 0, 0, 0, 0x01 },
	.port = 10025,
	.mark = 1,
	.ipv6 = 1,
	.queue_num = 25,
};

static const struct nd_probe nd_probes[] = {
	{ .bit = NFT_DIVERT_HAVE_OWNER,
	  .what = "table flag owner (Linux 5.12+)",
	  .lack = "the tables would outlive sporkd: no fail-open",
	  .family = NFPROTO_INET, .table_flags = NFT_TABLE_F_OWNER },
	{ .bit = NFT_DIVERT_HAVE_BRIDGE,
	  .what = "nf_tables bridge family, prerouting hook at priority -300",
	  .lack = "nothing can be diverted (CONFIG_NF_TABLES_BRIDGE)",
	  .family = NFPROTO_BRIDGE },
	{ .bit = NFT_DIVERT_HAVE_INET,
	  .what = "nf_tables inet family, prerouting hook at priority mangle",
	  .lack = "nothing can be diverted (CONFIG_NF_TABLES_INET)",
	  .family = NFPROTO_INET },
	{ .bit = NFT_DIVERT_HAVE_ETHER_SET,
	  .what = "ether daddr set (bridge)",
	  .lack = "frames cannot be addressed to the bridge itself",
	  .family = NFPROTO_BRIDGE, .nfproto = NFPROTO_IPV4,
	  .terms = { T_ETHER_IP, T_DPORT_SMTP, T_ETHER_DADDR_SET } },
	{ .bit = NFT_DIVERT_HAVE_PKTTYPE_SET,
	  .what = "meta pkttype set host (bridge)",
	  .lack = "frames cannot be handed to the bridge's own stack",
	  .family = NFPROTO_BRIDGE, .terms = { T_PKTTYPE_HOST } },
	{ .bit = NFT_DIVERT_HAVE_IBRNAME,
	  .what = "meta ibrname (bridge)",
	  .lack = "kernel built without CONFIG_NFT_BRIDGE_META: the bridge"
	  " rules match the bridge's ports by name instead (meta iifname"
	  " @ports), so install again after adding a port",
	  .family = NFPROTO_BRIDGE, .ibrname = 1, .terms = { T_IIF } },
	{ .bit = NFT_DIVERT_HAVE_IFNAME_SET,
	  .what = "meta iifname @set (bridge; the ports fallback)",
	  .lack = "without meta ibrname either, bridge ports cannot be matched",
	  .family = NFPROTO_BRIDGE, .set = SET_PORTS, .terms = { T_IIF } },
	{ .bit = NFT_DIVERT_HAVE_TIMEOUT_SET,
	  .what = "address sets with timeouts (the bypass sets)",
	  .lack = "no bypass sets",
	  .family = NFPROTO_BRIDGE, .set = SET_SRC4, .nfproto = NFPROTO_IPV4,
	  .terms = { T_ETHER_IP, T_DPORT_SMTP, T_SADDR_SET, T_RETURN } },
	{ .bit = NFT_DIVERT_HAVE_SOCKET,
	  .what = "socket transparent (CONFIG_NFT_SOCKET)",
	  .lack = "replies to sporkd's upstream connections would not reach it",
	  .family = NFPROTO_INET,
	  .terms = { T_L4_TCP, T_SOCKET_TRANSPARENT } },
	{ .bit = NFT_DIVERT_HAVE_TPROXY4,
	  .what = "tproxy ip (CONFIG_NFT_TPROXY)",
	  .lack = "IPv4 connections cannot be diverted",
	  .family = NFPROTO_INET, .nfproto = NFPROTO_IPV4,
	  .terms = { T_NFPROTO, T_DPORT_SMTP, T_TPROXY } },
	{ .bit = NFT_DIVERT_HAVE_TPROXY6,
	  .what = "tproxy ip6 (CONFIG_NFT_TPROXY)",
	  .lack = "IPv6 connections cannot be diverted",
	  .family = NFPROTO_INET, .nfproto = NFPROTO_IPV6,
	  .terms = { T_NFPROTO, T_DPORT_SMTP, T_TPROXY } },
	{ .bit = NFT_DIVERT_HAVE_MARK_SET,
	  .what = "meta mark set",
	  .lack = "diverted packets cannot be routed locally",
	  .family = NFPROTO_INET, .terms = { T_MARK_SET } },
	{ .bit = NFT_DIVERT_HAVE_NFQUEUE,
	  .what = "xt NFQUEUE through nft compat (connect-before-accept)",
	  .lack = "connect_before_accept cannot hold SYNs (CONFIG_NFT_COMPAT,"
	  " CONFIG_NETFILTER_XT_TARGET_NFQUEUE)",
	  .family = NFPROTO_INET,
	  .terms = { T_DPORT_SMTP, T_SYN_ONLY, T_QUEUE } },
	/* Checked only: a persistent table would outlive the probe. */
	{ .bit = NFT_DIVERT_HAVE_PERSIST,
	  .what = "table flag persist (Linux 6.9+; never used)",
	  .lack = "nothing: sporkd does not use it",
	  .family = NFPROTO_INET,
	  .table_flags = NFT_TABLE_F_OWNER | ND_TABLE_F_PERSIST,
	  .check_only = 1 },
};

/* The installed divert: the socket that owns the tables, and their conf. */
static struct {
	struct mnl_socket	*nl;
	uint32_t		 seq;
	struct nft_divert_conf	 conf;
	char			 table[NFT_DIVERT_TABLE_MAX];
} nd;

static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* --- the description -------------------------------------------------- */

static const char *
nd_table(const struct nft_divert_conf *c)
{
	return c->table != NULL ? c->table : ND_DEFAULT_TABLE;
}

/* Names go into nft strings and sets: refuse what nft could not quote. */
static int
nd_ifname_ok(const char *s)
{
	size_t	n = strnlen(s, NFT_DIVERT_IFNAMSIZ);

	return n >= 1 && n < NFT_DIVERT_IFNAMSIZ &&
	    strpbrk(s, " \t\n\"\\/") == NULL;
}

static int
nd_conf_check(const struct nft_divert_conf *c, char *err, size_t errlen)
{
	const char	*t = nd_table(c);
	size_t		 i, n;
	int		 p;

	n = strlen(t);
	if (n == 0 || n >= NFT_DIVERT_TABLE_MAX ||
	    strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_") != n) {
		errf(err, errlen, "bad table name '%s'", t);
		return -1;
	}
	if (!nd_ifname_ok(c->bridge)) {
		errf(err, errlen, "bad bridge name");
		return -1;
	}
	if (c->nports < 0 || c->nports > NFT_DIVERT_PORTS_MAX) {
		errf(err, errlen, "%d bridge ports (at most %d)", c->nports,
		    NFT_DIVERT_PORTS_MAX);
		return -1;
	}
	for (p = 0; p < c->nports; p++)
		if (!nd_ifname_ok(c->ports[p])) {
			errf(err, errlen, "bad name of bridge port %d", p);
			return -1;
		}
	if (c->port == 0) {
		errf(err, errlen, "no listener port");
		return -1;
	}
	if (c->mark == 0) {
		errf(err, errlen, "fwmark 0 cannot select a routing table");
		return -1;
	}
	for (i = 0; i < sizeof(c->bridge_mac); i++)
		if (c->bridge_mac[i] != 0)
			break;
	if (i == sizeof(c->bridge_mac) || (c->bridge_mac[0] & 1)) {
		errf(err, errlen, "bad MAC address for %s", c->bridge);
		return -1;
	}
	return 0;
}

static int
nd_set_wanted(const struct nft_divert_conf *c, enum nd_set_id id)
{
	switch (id) {
	case SET_PORTS:
		return !c->use_ibrname;
	case SET_SRC4:
	case SET_DST4:
		return 1;
	case SET_SRC6:
	case SET_DST6:
		return c->ipv6;
	default:
		return 0;
	}
}

static void
nd_rule_add(struct nd_rule *r, size_t *n, enum nd_chain chain, int nfproto,
    enum nd_set_id set, const enum nd_term *terms, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void
nd_rule_add(struct nd_rule *r, size_t *n, enum nd_chain chain, int nfproto,
    enum nd_set_id set, const enum nd_term *terms, const char *fmt, ...)
{
	struct nd_rule	*ru;
	va_list		 ap;
	size_t		 i;

	if (*n == ND_RULES_MAX)
		fatal("nft_divert: more than %d rules", ND_RULES_MAX);
	ru = &r[(*n)++];
	memset(ru, 0, sizeof(*ru));
	ru->chain = chain;
	ru->nfproto = nfproto;
	ru->set = set;
	for (i = 0; terms[i] != T_END; i++) {
		if (i == ND_TERMS_MAX - 1)
			fatal("nft_divert: rule with too many terms");
		ru->terms[i] = terms[i];
	}
	va_start(ap, fmt);
	vsnprintf(ru->comment, sizeof(ru->comment), fmt, ap);
	va_end(ap);
}

/*
 * The rules, in chain order. An SMTP client's address is the source of
 * its frames to the server (dport 25) and the destination of the server's
 * answers (sport 25): each bypass set is matched both ways, so that both
 * halves of an exempt connection are bridged untouched. Exempt frames
 * carry the mark, so that spork-setup's fail-closed rule (which refuses
 * port-25 frames the bridge forwards) lets them through.
 */
static size_t
nd_rules(const struct nft_divert_conf *c, struct nd_rule *r)
{
	static const enum nd_term cli_src[] = { T_ETHER_IP, T_DPORT_SMTP,
	    T_SADDR_SET, T_MARK_SET, T_RETURN, T_END };
	static const enum nd_term cli_dst[] = { T_ETHER_IP, T_SPORT_SMTP,
	    T_DADDR_SET, T_MARK_SET, T_RETURN, T_END };
	static const enum nd_term srv_dst[] = { T_ETHER_IP, T_DPORT_SMTP,
	    T_DADDR_SET, T_MARK_SET, T_RETURN, T_END };
	static const enum nd_term srv_src[] = { T_ETHER_IP, T_SPORT_SMTP,
	    T_SADDR_SET, T_MARK_SET, T_RETURN, T_END };
	static const enum nd_term up[] = { T_IIF, T_ETHER_IP, T_DPORT_SMTP,
	    T_ETHER_DADDR_SET, T_PKTTYPE_HOST, T_END };
	static const enum nd_term down[] = { T_IIF, T_ETHER_IP, T_SPORT_SMTP,
	    T_ETHER_DADDR_SET, T_PKTTYPE_HOST, T_END };
	static const enum nd_term sock[] = { T_L4_TCP, T_SOCKET_TRANSPARENT,
	    T_MARK_SET, T_ACCEPT, T_END };
	static const enum nd_term tproxy[] = { T_NFPROTO, T_DPORT_SMTP,
	    T_TPROXY, T_MARK_SET, T_ACCEPT, T_END };
	static const enum nd_term syn[] = { T_DPORT_SMTP, T_SYN_ONLY,
	    T_QUEUE, T_END };
	static const struct {
		int		 nfproto;
		const char	*name;
		enum nd_set_id	 src, dst;
	} fams[] = {
		{ NFPROTO_IPV4, "IPv4", SET_SRC4, SET_DST4 },
		{ NFPROTO_IPV6, "IPv6", SET_SRC6, SET_DST6 },
	};
	size_t	n = 0, f, nfams = c->ipv6 ? 2 : 1;

	for (f = 0; f < nfams; f++) {
		nd_rule_add(r, &n, ND_BRIDGE, fams[f].nfproto, fams[f].src,
		    cli_src, "%s client to server: bypassed client",
		    fams[f].name);
		nd_rule_add(r, &n, ND_BRIDGE, fams[f].nfproto, fams[f].src,
		    cli_dst, "%s server to client: bypassed client",
		    fams[f].name);
		nd_rule_add(r, &n, ND_BRIDGE, fams[f].nfproto, fams[f].dst,
		    srv_dst, "%s client to server: bypassed server",
		    fams[f].name);
		nd_rule_add(r, &n, ND_BRIDGE, fams[f].nfproto, fams[f].dst,
		    srv_src, "%s server to client: bypassed server",
		    fams[f].name);
	}
	for (f = 0; f < nfams; f++) {
		nd_rule_add(r, &n, ND_BRIDGE, fams[f].nfproto, SET_NONE, up,
		    "%s client to server: deliver to %s", fams[f].name,
		    c->bridge);
		nd_rule_add(r, &n, ND_BRIDGE, fams[f].nfproto, SET_NONE, down,
		    "%s server to client: deliver to %s", fams[f].name,
		    c->bridge);
	}
	nd_rule_add(r, &n, ND_INET, 0, SET_NONE, sock, "packets of sporkd's"
	    " transparent sockets (upstream replies): local");
	for (f = 0; f < nfams; f++)
		nd_rule_add(r, &n, ND_INET, fams[f].nfproto, SET_NONE, tproxy,
		    "new %s SMTP connections: to sporkd port %u",
		    fams[f].name, c->port);
	/* Only frames the bridge rules handed up reach this hook with
	 * dport 25 (bypassed ones are bridged), and at raw priority the SYN
	 * is held before conntrack sees it. A verdict of accept resumes at
	 * the next chain: conntrack, then the tproxy rule above. */
	if (c->queue)
		nd_rule_add(r, &n, ND_INET_SYN, 0, SET_NONE, syn, "SYNs of"
		    " new SMTP connections: held by sporkd (queue %u) until"
		    " the server has accepted", c->queue_num);
	return n;
}

static void
nd_table_comment(const struct nft_divert_conf *c, enum nd_chain ch,
    char *out, size_t len)
{
	if (ch == ND_BRIDGE)
		snprintf(out, len, "sporkd: SMTP frames crossing %s go up to"
		    " its own stack", c->bridge);
	else
		snprintf(out, len, "sporkd: TPROXY SMTP to port %u, fwmark"
		    " %u", c->port, c->mark);
}

static void
nd_chain_comment(const struct nft_divert_conf *c, enum nd_chain ch,
    char *out, size_t len)
{
	if (ch == ND_BRIDGE)
		snprintf(out, len, "address TCP port %d frames to %s itself,"
		    " not to the peer, unless bypassed", ND_SMTP_PORT,
		    c->bridge);
	else if (ch == ND_INET_SYN)
		snprintf(out, len, "connect-before-accept: with no process on"
		    " queue %u, SYNs pass as if unqueued", c->queue_num);
	else
		snprintf(out, len, "fwmark %u must select a routing table"
		    " with a local default route", c->mark);
}

/* --- rendering 1: netlink --------------------------------------------- */

static void
batch_put(struct nd_batch *b, const struct nlmsghdr *nlh)
{
	size_t	n = NLMSG_ALIGN(nlh->nlmsg_len);

	if (nlh->nlmsg_len > sizeof(b->scratch))
		fatal("nft_divert: message of %u bytes overran its buffer",
		    nlh->nlmsg_len);
	if (b->failed || b->len - b->off < n) {
		b->failed = 1;
		return;
	}
	memcpy(b->buf + b->off, nlh, nlh->nlmsg_len);
	memset(b->buf + b->off + nlh->nlmsg_len, 0, n - nlh->nlmsg_len);
	b->off += n;
	b->seq++;
}

static void
batch_begin(struct nd_batch *b, char *buf, size_t len, uint32_t seq)
{
	b->buf = buf;
	b->len = len;
	b->off = 0;
	b->seq = seq;
	b->failed = 0;
	batch_put(b, nftnl_batch_begin(b->scratch.b, b->seq));
}

static void
batch_end(struct nd_batch *b)
{
	batch_put(b, nftnl_batch_end(b->scratch.b, b->seq));
}

static struct nlmsghdr *
batch_hdr(struct nd_batch *b, uint16_t type, uint16_t family, uint16_t flags)
{
	/* libmnl 1.0.4 leaves attribute padding as it finds it: zero it, or
	 * the same conf would not always give the same bytes. */
	memset(b->scratch.b, 0, sizeof(b->scratch.b));
	return nftnl_nlmsg_build_hdr(b->scratch.b, type, family,
	    flags | NLM_F_ACK, b->seq);
}

/* nft keeps comments, and a set's key byte order, in user data. */
static struct nftnl_udata_buf *
udata_comment(uint8_t type, const char *comment)
{
	struct nftnl_udata_buf	*ud;

	if ((ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN)) == NULL)
		return NULL;
	if (comment != NULL && !nftnl_udata_put_strz(ud, type, comment)) {
		nftnl_udata_buf_free(ud);
		return NULL;
	}
	return ud;
}

static void
msg_table(struct nd_batch *b, uint16_t type, int family, const char *name,
    int set_flags, uint32_t flags, const char *comment, uint16_t nlflags)
{
	struct nftnl_table	*t;
	struct nftnl_udata_buf	*ud = NULL;
	struct nlmsghdr		*nlh;

	if ((t = nftnl_table_alloc()) == NULL)
		goto fail;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, (uint32_t)family);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	if (set_flags)
		nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, flags);
	if (comment != NULL) {
		if ((ud = udata_comment(NFTNL_UDATA_TABLE_COMMENT,
		    comment)) == NULL)
			goto fail;
		nftnl_table_set_data(t, NFTNL_TABLE_USERDATA,
		    nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
	}
	nlh = batch_hdr(b, type, (uint16_t)family, nlflags);
	nftnl_table_nlmsg_build_payload(nlh, t);
	batch_put(b, nlh);
	nftnl_udata_buf_free(ud);
	nftnl_table_free(t);
	return;
fail:
	nftnl_udata_buf_free(ud);	/* takes NULL */
	if (t != NULL)
		nftnl_table_free(t);
	b->failed = 1;
}

static void
msg_chain(struct nd_batch *b, int family, const char *table,
    const char *name, int prio, const char *comment)
{
	struct nftnl_chain	*ch;
	struct nftnl_udata_buf	*ud = NULL;
	struct nlmsghdr		*nlh;

	if ((ch = nftnl_chain_alloc()) == NULL)
		goto fail;
	nftnl_chain_set_u32(ch, NFTNL_CHAIN_FAMILY, (uint32_t)family);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_TYPE, "filter");
	/* NF_BR_PRE_ROUTING and NF_INET_PRE_ROUTING are both 0. */
	nftnl_chain_set_u32(ch, NFTNL_CHAIN_HOOKNUM, family == NFPROTO_BRIDGE ?
	    NF_BR_PRE_ROUTING : NF_INET_PRE_ROUTING);
	nftnl_chain_set_s32(ch, NFTNL_CHAIN_PRIO, prio);
	nftnl_chain_set_u32(ch, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	if (comment != NULL) {
		if ((ud = udata_comment(NFTNL_UDATA_CHAIN_COMMENT,
		    comment)) == NULL)
			goto fail;
		nftnl_chain_set_data(ch, NFTNL_CHAIN_USERDATA,
		    nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
	}
	nlh = batch_hdr(b, NFT_MSG_NEWCHAIN, (uint16_t)family, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, ch);
	batch_put(b, nlh);
	nftnl_udata_buf_free(ud);
	nftnl_chain_free(ch);
	return;
fail:
	nftnl_udata_buf_free(ud);	/* takes NULL */
	if (ch != NULL)
		nftnl_chain_free(ch);
	b->failed = 1;
}

static struct nftnl_set *
set_alloc(const char *table, enum nd_set_id id)
{
	struct nftnl_set	*s;

	if ((s = nftnl_set_alloc()) == NULL)
		return NULL;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_BRIDGE);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, nd_set_defs[id].name);
	return s;
}

static void
msg_set(struct nd_batch *b, const char *table, enum nd_set_id id)
{
	const struct nd_set_def	*d = &nd_set_defs[id];
	struct nftnl_set	*s;
	struct nftnl_udata_buf	*ud = NULL;
	struct nlmsghdr		*nlh;

	if ((s = set_alloc(table, id)) == NULL)
		goto fail;
	nftnl_set_set_u32(s, NFTNL_SET_ID, (uint32_t)id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, d->flags);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, d->key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, d->key_len);
	if ((ud = udata_comment(NFTNL_UDATA_SET_COMMENT, d->comment)) == NULL ||
	    !nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER,
	    d->byteorder))
		goto fail;
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud),
	    nftnl_udata_buf_len(ud));
	nlh = batch_hdr(b, NFT_MSG_NEWSET, NFPROTO_BRIDGE, NLM_F_CREATE);
	nftnl_set_nlmsg_build_payload(nlh, s);
	batch_put(b, nlh);
	nftnl_udata_buf_free(ud);
	nftnl_set_free(s);
	return;
fail:
	nftnl_udata_buf_free(ud);	/* takes NULL */
	if (s != NULL)
		nftnl_set_free(s);
	b->failed = 1;
}

/* One message adding or deleting one key of klen bytes. */
static void
msg_elems(struct nd_batch *b, uint16_t type, const char *table,
    enum nd_set_id id, const void *key, uint32_t klen, uint64_t timeout_ms)
{
	struct nftnl_set	*s;
	struct nftnl_set_elem	*e;
	struct nlmsghdr		*nlh;

	if ((s = set_alloc(table, id)) == NULL ||
	    (e = nftnl_set_elem_alloc()) == NULL)
		goto fail;
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, klen);
	if (timeout_ms != 0)
		nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, timeout_ms);
	nftnl_set_elem_add(s, e);
	nlh = batch_hdr(b, type, NFPROTO_BRIDGE,
	    type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	batch_put(b, nlh);
	nftnl_set_free(s);
	return;
fail:
	if (s != NULL)
		nftnl_set_free(s);
	b->failed = 1;
}

static int
ex_add(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (e == NULL)
		return -1;
	nftnl_rule_add_expr(r, e);
	return 0;
}

static struct nftnl_expr *
ex_meta(uint32_t key, int set)
{
	struct nftnl_expr	*e;

	if ((e = nftnl_expr_alloc("meta")) == NULL)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, set ? NFTNL_EXPR_META_SREG : NFTNL_EXPR_META_DREG,
	    NFT_REG_1);
	return e;
}

static struct nftnl_expr *
ex_cmp_eq(const void *data, uint32_t len)
{
	struct nftnl_expr	*e;

	if ((e = nftnl_expr_alloc("cmp")) == NULL)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	return e;
}

static struct nftnl_expr *
ex_payload(uint32_t base, uint32_t off, uint32_t len, int write)
{
	struct nftnl_expr	*e;

	if ((e = nftnl_expr_alloc("payload")) == NULL)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, write ? NFTNL_EXPR_PAYLOAD_SREG :
	    NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	return e;
}

static struct nftnl_expr *
ex_lookup(enum nd_set_id id)
{
	struct nftnl_expr	*e;

	if ((e = nftnl_expr_alloc("lookup")) == NULL)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, nd_set_defs[id].name);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, (uint32_t)id);
	return e;
}

static struct nftnl_expr *
ex_imm(const void *data, uint32_t len)
{
	struct nftnl_expr	*e;

	if ((e = nftnl_expr_alloc("immediate")) == NULL)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
	return e;
}

static struct nftnl_expr *
ex_verdict(int verdict)
{
	struct nftnl_expr	*e;

	if ((e = nftnl_expr_alloc("immediate")) == NULL)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	return e;
}

static struct nftnl_expr *
ex_socket_transparent(void)
{
	struct nftnl_expr	*e;

	if ((e = nftnl_expr_alloc("socket")) == NULL)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_TRANSPARENT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
	return e;
}

static struct nftnl_expr *
ex_bitwise_and(const void *mask, const void *xor, uint32_t len)
{
	struct nftnl_expr	*e;

	if ((e = nftnl_expr_alloc("bitwise")) == NULL)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xor, len);
	return e;
}

/*
 * The x_tables NFQUEUE target, revision 3, carried by nft's compat
 * expression: this kernel (like many) has no nft queue expression
 * (CONFIG_NFT_QUEUE) but has xt NFQUEUE, and compat keeps the rule in our
 * own owned table rather than in a second ruleset of iptables-nft's.
 * `nft list` shows it as the queue statement it is equivalent to.
 */
static struct nftnl_expr *
ex_nfqueue(uint16_t num)
{
	struct nftnl_expr	*e;
	struct xt_NFQ_info_v3	*info;

	if ((e = nftnl_expr_alloc("target")) == NULL)
		return NULL;
	/* libnftnl keeps this pointer and frees it with the expression. */
	if ((info = calloc(1, sizeof(*info))) == NULL) {
		nftnl_expr_free(e);
		return NULL;
	}
	info->queuenum = num;
	info->queues_total = 1;
	info->flags = NFQ_FLAG_BYPASS;
	nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
	nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, ND_NFQUEUE_REV);
	nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, info, sizeof(*info));
	return e;
}

static struct nftnl_expr *
ex_tproxy(int nfproto)
{
	struct nftnl_expr	*e;

	if ((e = nftnl_expr_alloc("tproxy")) == NULL)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_TPROXY_FAMILY, (uint32_t)nfproto);
	nftnl_expr_set_u32(e, NFTNL_EXPR_TPROXY_REG_PORT, NFT_REG_1);
	return e;
}

/* The expressions nft itself generates for each term. */
static int
term_build(struct nftnl_rule *r, const struct nd_rule *ru, enum nd_term t,
    const struct nft_divert_conf *c)
{
	char		 name[IFNAMSIZ];
	int		 v6 = ru->nfproto == NFPROTO_IPV6;
	uint32_t	 alen = v6 ? 16 : 4, mark = c->mark;
	uint16_t	 u16;
	uint8_t		 u8, mask[2];

	switch (t) {
	case T_IIF:
		if (!c->use_ibrname)
			return ex_add(r, ex_meta(NFT_META_IIFNAME, 0)) ||
			    ex_add(r, ex_lookup(SET_PORTS)) ? -1 : 0;
		memset(name, 0, sizeof(name));
		memcpy(name, c->bridge, strnlen(c->bridge, IFNAMSIZ - 1));
		return ex_add(r, ex_meta(NFT_META_BRI_IIFNAME, 0)) ||
		    ex_add(r, ex_cmp_eq(name, sizeof(name))) ? -1 : 0;
	case T_ETHER_IP:
		u16 = htons(v6 ? ETH_P_IPV6 : ETH_P_IP);
		return ex_add(r, ex_payload(NFT_PAYLOAD_LL_HEADER, 12, 2, 0)) ||
		    ex_add(r, ex_cmp_eq(&u16, 2)) ? -1 : 0;
	case T_NFPROTO:
		u8 = (uint8_t)ru->nfproto;
		return ex_add(r, ex_meta(NFT_META_NFPROTO, 0)) ||
		    ex_add(r, ex_cmp_eq(&u8, 1)) ? -1 : 0;
	case T_L4_TCP:
		u8 = IPPROTO_TCP;
		return ex_add(r, ex_meta(NFT_META_L4PROTO, 0)) ||
		    ex_add(r, ex_cmp_eq(&u8, 1)) ? -1 : 0;
	case T_DPORT_SMTP:
	case T_SPORT_SMTP:
		u16 = htons(ND_SMTP_PORT);
		return term_build(r, ru, T_L4_TCP, c) ||
		    ex_add(r, ex_payload(NFT_PAYLOAD_TRANSPORT_HEADER,
		    t == T_DPORT_SMTP ? 2 : 0, 2, 0)) ||
		    ex_add(r, ex_cmp_eq(&u16, 2)) ? -1 : 0;
	case T_SADDR_SET:
	case T_DADDR_SET:
		return ex_add(r, ex_payload(NFT_PAYLOAD_NETWORK_HEADER,
		    (v6 ? 8 : 12) + (t == T_DADDR_SET ? alen : 0), alen, 0)) ||
		    ex_add(r, ex_lookup(ru->set)) ? -1 : 0;
	case T_SOCKET_TRANSPARENT:
		u8 = 1;
		return ex_add(r, ex_socket_transparent()) ||
		    ex_add(r, ex_cmp_eq(&u8, 1)) ? -1 : 0;
	case T_TPROXY:
		u16 = htons(c->port);
		return ex_add(r, ex_imm(&u16, 2)) ||
		    ex_add(r, ex_tproxy(ru->nfproto)) ? -1 : 0;
	case T_MARK_SET:
		return ex_add(r, ex_imm(&mark, 4)) ||
		    ex_add(r, ex_meta(NFT_META_MARK, 1)) ? -1 : 0;
	case T_ETHER_DADDR_SET:
		return ex_add(r, ex_imm(c->bridge_mac, 6)) ||
		    ex_add(r, ex_payload(NFT_PAYLOAD_LL_HEADER, 0, 6, 1)) ?
		    -1 : 0;
	case T_PKTTYPE_HOST:
		u8 = PACKET_HOST;
		return ex_add(r, ex_imm(&u8, 1)) ||
		    ex_add(r, ex_meta(NFT_META_PKTTYPE, 1)) ? -1 : 0;
	case T_SYN_ONLY:
		mask[0] = ND_TCP_FIN | ND_TCP_SYN | ND_TCP_RST | ND_TCP_ACK;
		mask[1] = 0;
		u8 = ND_TCP_SYN;
		return ex_add(r, ex_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1,
		    0)) || ex_add(r, ex_bitwise_and(&mask[0], &mask[1], 1)) ||
		    ex_add(r, ex_cmp_eq(&u8, 1)) ? -1 : 0;
	case T_QUEUE:
		return ex_add(r, ex_nfqueue(c->queue_num));
	case T_ACCEPT:
		return ex_add(r, ex_verdict(NF_ACCEPT));
	case T_RETURN:
		return ex_add(r, ex_verdict(NFT_RETURN));
	case T_END:
		break;
	}
	fatal("nft_divert: unknown term %d", (int)t);
}

static void
msg_rule(struct nd_batch *b, const char *table, const struct nd_rule *ru,
    const struct nft_divert_conf *c)
{
	struct nftnl_rule	*r;
	struct nftnl_udata_buf	*ud = NULL;
	struct nlmsghdr		*nlh;
	int			 family, i;

	family = nd_chains[ru->chain].family;
	if ((r = nftnl_rule_alloc()) == NULL)
		goto fail;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, (uint32_t)family);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, nd_chains[ru->chain].name);
	for (i = 0; ru->terms[i] != T_END; i++)
		if (term_build(r, ru, ru->terms[i], c) == -1)
			goto fail;
	if (ru->comment[0] != '\0') {
		if ((ud = udata_comment(NFTNL_UDATA_RULE_COMMENT,
		    ru->comment)) == NULL)
			goto fail;
		nftnl_rule_set_data(r, NFTNL_RULE_USERDATA,
		    nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
	}
	nlh = batch_hdr(b, NFT_MSG_NEWRULE, (uint16_t)family,
	    NLM_F_CREATE | NLM_F_APPEND);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	batch_put(b, nlh);
	nftnl_udata_buf_free(ud);
	nftnl_rule_free(r);
	return;
fail:
	nftnl_udata_buf_free(ud);	/* takes NULL */
	if (r != NULL)
		nftnl_rule_free(r);
	b->failed = 1;
}

size_t
nft_divert_build(const struct nft_divert_conf *c, char *buf, size_t len,
    uint32_t seq)
{
	static const struct {
		enum nd_chain	 ch;
		int		 family;
	} tables[] = {
		{ ND_BRIDGE, NFPROTO_BRIDGE },
		{ ND_INET, NFPROTO_INET },
	};
	struct nd_batch	 b;
	struct nd_rule	 rules[ND_RULES_MAX];
	char		 key[IFNAMSIZ];
	char		 comment[ND_COMMENT_MAX];
	const char	*table = nd_table(c);
	size_t		 nrules, i, t, ch;
	int		 s, p;

	if (nd_conf_check(c, NULL, 0) == -1)
		return 0;
	nrules = nd_rules(c, rules);
	batch_begin(&b, buf, len, seq);
	for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		/* Empty, delete, full: replaces the table in one step whether
		 * it exists or not (installed before, or by spork-setup). */
		msg_table(&b, NFT_MSG_NEWTABLE, tables[t].family, table, 0, 0,
		    NULL, NLM_F_CREATE);
		msg_table(&b, NFT_MSG_DELTABLE, tables[t].family, table, 0, 0,
		    NULL, 0);
		nd_table_comment(c, tables[t].ch, comment, sizeof(comment));
		msg_table(&b, NFT_MSG_NEWTABLE, tables[t].family, table, 1,
		    NFT_TABLE_F_OWNER, comment, NLM_F_CREATE);
		for (s = SET_NONE + 1; tables[t].ch == ND_BRIDGE &&
		    s < SET_COUNT; s++) {
			if (!nd_set_wanted(c, (enum nd_set_id)s))
				continue;
			msg_set(&b, table, (enum nd_set_id)s);
			if (s != SET_PORTS || c->nports == 0)
				continue;
			/* One port a message: libnftnl numbers the elements
			 * of a message 1, 2, ... but parses back only a run
			 * of 1s (what the kernel sends), and tests parse. */
			for (p = 0; p < c->nports; p++) {
				memset(key, 0, sizeof(key));
				memcpy(key, c->ports[p],
				    strnlen(c->ports[p], IFNAMSIZ - 1));
				msg_elems(&b, NFT_MSG_NEWSETELEM, table,
				    SET_PORTS, key, IFNAMSIZ, 0);
			}
		}
		for (ch = 0; ch < ND_NCHAINS; ch++) {
			if (nd_chains[ch].family != tables[t].family ||
			    (ch == ND_INET_SYN && !c->queue))
				continue;
			nd_chain_comment(c, (enum nd_chain)ch, comment,
			    sizeof(comment));
			msg_chain(&b, tables[t].family, table,
			    nd_chains[ch].name, nd_chains[ch].prio, comment);
			for (i = 0; i < nrules; i++)
				if (rules[i].chain == (enum nd_chain)ch)
					msg_rule(&b, table, &rules[i], c);
		}
	}
	batch_end(&b);
	return b.failed ? 0 : b.off;
}

/* "192.0.2.1" or "2001:db8::1" into a set key. */
static int
nd_parse_addr(const char *addr, unsigned char key[16], uint32_t *klen,
    int *nfproto)
{
	if (addr == NULL)
		return -1;
	if (inet_pton(AF_INET, addr, key) == 1) {
		*klen = 4;
		*nfproto = NFPROTO_IPV4;
		return 0;
	}
	if (inet_pton(AF_INET6, addr, key) == 1) {
		*klen = 16;
		*nfproto = NFPROTO_IPV6;
		return 0;
	}
	return -1;
}

static enum nd_set_id
nd_bypass_set(int is_source, int nfproto)
{
	if (nfproto == NFPROTO_IPV6)
		return is_source ? SET_SRC6 : SET_DST6;
	return is_source ? SET_SRC4 : SET_DST4;
}

size_t
nft_divert_bypass_build(const struct nft_divert_conf *c, int add,
    int is_source, const char *addr, unsigned timeout_s, char *buf,
    size_t len, uint32_t seq)
{
	struct nd_batch	b;
	unsigned char	key[16];
	uint32_t	klen;
	int		nfproto;

	if (nd_conf_check(c, NULL, 0) == -1 ||
	    nd_parse_addr(addr, key, &klen, &nfproto) == -1 ||
	    (nfproto == NFPROTO_IPV6 && !c->ipv6))
		return 0;
	batch_begin(&b, buf, len, seq);
	msg_elems(&b, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
	    nd_table(c), nd_bypass_set(is_source, nfproto), key, klen,
	    add ? (uint64_t)timeout_s * 1000 : 0);
	batch_end(&b);
	return b.failed ? 0 : b.off;
}

/* --- rendering 2: nft syntax ------------------------------------------ */

static void
term_print(FILE *f, const struct nd_rule *ru, enum nd_term t,
    const struct nft_divert_conf *c)
{
	int		 v6 = ru->nfproto == NFPROTO_IPV6;
	const char	*ip = v6 ? "ip6" : "ip";

	switch (t) {
	case T_IIF:
		if (c->use_ibrname)
			fprintf(f, "meta ibrname \"%s\"", c->bridge);
		else
			fprintf(f, "meta iifname @%s",
			    nd_set_defs[SET_PORTS].name);
		return;
	case T_ETHER_IP:
		fprintf(f, "ether type %s", ip);
		return;
	case T_NFPROTO:
		fprintf(f, "meta nfproto %s", v6 ? "ipv6" : "ipv4");
		return;
	case T_L4_TCP:
		fputs("meta l4proto tcp", f);
		return;
	case T_DPORT_SMTP:
	case T_SPORT_SMTP:
		fprintf(f, "tcp %s %d", t == T_DPORT_SMTP ? "dport" : "sport",
		    ND_SMTP_PORT);
		return;
	case T_SADDR_SET:
	case T_DADDR_SET:
		fprintf(f, "%s %s @%s", ip, t == T_SADDR_SET ? "saddr" :
		    "daddr", nd_set_defs[ru->set].name);
		return;
	case T_SOCKET_TRANSPARENT:
		fputs("socket transparent 1", f);
		return;
	case T_TPROXY:
		fprintf(f, "tproxy %s to :%u", ip, c->port);
		return;
	case T_MARK_SET:
		fprintf(f, "meta mark set 0x%08x", c->mark);
		return;
	case T_ETHER_DADDR_SET:
		fprintf(f, "ether daddr set %02x:%02x:%02x:%02x:%02x:%02x",
		    c->bridge_mac[0], c->bridge_mac[1], c->bridge_mac[2],
		    c->bridge_mac[3], c->bridge_mac[4], c->bridge_mac[5]);
		return;
	case T_PKTTYPE_HOST:
		fputs("meta pkttype set host", f);
		return;
	case T_SYN_ONLY:
		fputs("tcp flags syn / fin,syn,rst,ack", f);
		return;
	case T_QUEUE:
		/* Sent as xt NFQUEUE (see ex_nfqueue()); nft lists it so. */
		fprintf(f, "queue num %u bypass", c->queue_num);
		return;
	case T_ACCEPT:
		fputs("accept", f);
		return;
	case T_RETURN:
		fputs("return", f);
		return;
	case T_END:
		break;
	}
	fatal("nft_divert: unknown term %d", (int)t);
}

void
nft_divert_print(const struct nft_divert_conf *c, FILE *f)
{
	static const struct {
		enum nd_chain	 ch;
		int		 family;
		const char	*name;
	} tables[] = {
		{ ND_BRIDGE, NFPROTO_BRIDGE, "bridge" },
		{ ND_INET, NFPROTO_INET, "inet" },
	};
	struct nd_rule	 rules[ND_RULES_MAX];
	char		 comment[ND_COMMENT_MAX], err[128];
	size_t		 nrules, i, t, ch;
	int		 s, p, k;

	if (nd_conf_check(c, err, sizeof(err)) == -1) {
		fprintf(f, "# no divert: %s\n", err);
		return;
	}
	nrules = nd_rules(c, rules);
	for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		nd_table_comment(c, tables[t].ch, comment, sizeof(comment));
		fprintf(f, "table %s %s {\n\tflags owner\n\tcomment \"%s\"\n",
		    tables[t].name, nd_table(c), comment);
		for (s = SET_NONE + 1; tables[t].ch == ND_BRIDGE &&
		    s < SET_COUNT; s++) {
			if (!nd_set_wanted(c, (enum nd_set_id)s))
				continue;
			fprintf(f, "\tset %s {\n\t\ttype %s\n",
			    nd_set_defs[s].name,
			    nd_set_defs[s].key_type == ND_TYPE_IFNAME ?
			    "ifname" : nd_set_defs[s].key_type ==
			    ND_TYPE_IPADDR ? "ipv4_addr" : "ipv6_addr");
			if (nd_set_defs[s].flags & NFT_SET_TIMEOUT)
				fputs("\t\tflags timeout\n", f);
			fprintf(f, "\t\tcomment \"%s\"\n",
			    nd_set_defs[s].comment);
			if (s == SET_PORTS && c->nports > 0) {
				fputs("\t\telements = { ", f);
				for (p = 0; p < c->nports; p++)
					fprintf(f, "%s\"%s\"", p ? ", " : "",
					    c->ports[p]);
				fputs(" }\n", f);
			}
			fputs("\t}\n\n", f);
		}
		for (ch = 0; ch < ND_NCHAINS; ch++) {
			if (nd_chains[ch].family != tables[t].family ||
			    (ch == ND_INET_SYN && !c->queue))
				continue;
			nd_chain_comment(c, (enum nd_chain)ch, comment,
			    sizeof(comment));
			fprintf(f, "%s\tchain %s {\n\t\ttype filter hook"
			    " prerouting priority %s; policy accept;\n"
			    "\t\tcomment \"%s\"\n", ch == ND_INET_SYN ?
			    "\n" : "", nd_chains[ch].name,
			    nd_chains[ch].prio_name, comment);
			for (i = 0; i < nrules; i++) {
				if (rules[i].chain != (enum nd_chain)ch)
					continue;
				fputs("\t\t", f);
				for (k = 0; rules[i].terms[k] != T_END; k++) {
					if (k > 0)
						fputc(' ', f);
					term_print(f, &rules[i],
					    rules[i].terms[k], c);
				}
				fprintf(f, " comment \"%s\"\n",
				    rules[i].comment);
			}
			fputs("\t}\n", f);
		}
		fputs("}\n", f);
	}
}

/* --- talking to the kernel -------------------------------------------- */

static int
nd_open(struct mnl_socket **nlp, int bus, uint32_t *portid, char *err,
    size_t errlen)
{
	struct mnl_socket	*nl;
	struct timeval		 tv = { .tv_sec = ND_TIMEOUT_S };
	int			 one = 1;

	/* Close-on-exec; forked children must close it themselves. */
	if ((nl = mnl_socket_open2(bus, SOCK_CLOEXEC)) == NULL) {
		errf(err, errlen, "netlink socket: %s", strerror(errno));
		return -1;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == -1) {
		errf(err, errlen, "netlink bind: %s", strerror(errno));
		mnl_socket_close(nl);
		return -1;
	}
	/* Errors without a copy of the request (Linux 4.3+), if possible. */
	(void)mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)) == -1) {
		errf(err, errlen, "netlink SO_RCVTIMEO: %s", strerror(errno));
		mnl_socket_close(nl);
		return -1;
	}
	if (portid != NULL)
		*portid = mnl_socket_get_portid(nl);
	*nlp = nl;
	return 0;
}

/* Answers left over from an earlier batch the kernel gave up on. */
static void
nd_drain(struct mnl_socket *nl)
{
	char	buf[ND_RECV_MAX];

	while (recv(mnl_socket_get_fd(nl), buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* The seq after a batch's last message. */
static uint32_t
nd_next_seq(const char *buf, size_t len)
{
	const struct nlmsghdr	*nlh = (const struct nlmsghdr *)buf;
	uint32_t		 seq = 0;
	int			 rem = (int)len;

	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem))
		seq = nlh->nlmsg_seq;
	return seq + 1;
}

/*
 * Sends one batch and collects one ack per message that asked for one,
 * matched by sequence number. An error on the batch's first message is
 * about the whole batch (no CAP_NET_ADMIN, or the commit failed): nothing
 * more comes, or only acks of messages that were then undone.
 */
static int
nd_talk(struct mnl_socket *nl, const char *buf, size_t len,
    struct nd_acks *a)
{
	union {
		struct nlmsghdr	 nlh;
		char		 b[ND_RECV_MAX];
	}			 r;
	const struct nlmsghdr	*nlh = (const struct nlmsghdr *)buf;
	const struct nlmsgerr	*e;
	uint32_t		 begin = nlh->nlmsg_seq;
	size_t			 pending, i;
	ssize_t			 n;
	int			 rem = (int)len;

	memset(a, 0, sizeof(*a));
	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
		if (!(nlh->nlmsg_flags & NLM_F_ACK))
			continue;
		if (a->n == ND_MSGS_MAX)
			fatal("nft_divert: more than %d messages in a batch",
			    ND_MSGS_MAX);
		a->seq[a->n] = nlh->nlmsg_seq;
		a->msg[a->n] = nlh;
		a->n++;
	}
	nd_drain(nl);
	if (mnl_socket_sendto(nl, buf, len) == -1)
		return -1;
	for (pending = a->n; pending > 0 && a->batch_err == 0;) {
		if ((n = mnl_socket_recvfrom(nl, r.b, sizeof(r.b))) == -1)
			return -1;
		rem = (int)n;
		for (nlh = &r.nlh; mnl_nlmsg_ok(nlh, rem);
		    nlh = mnl_nlmsg_next(nlh, &rem)) {
			if (nlh->nlmsg_type != NLMSG_ERROR ||
			    nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			if (nlh->nlmsg_seq == begin && e->error != 0) {
				a->batch_err = -e->error;
				continue;
			}
			for (i = 0; i < a->n; i++) {
				if (a->seq[i] != nlh->nlmsg_seq || a->acked[i])
					continue;
				a->acked[i] = 1;
				a->err[i] = -e->error;
				pending--;
			}
		}
	}
	return 0;
}

static const char *
nd_family_name(int family)
{
	switch (family) {
	case NFPROTO_BRIDGE:
		return "bridge";
	case NFPROTO_INET:
		return "inet";
	case NFPROTO_IPV4:
		return "ip";
	case NFPROTO_IPV6:
		return "ip6";
	default:
		return "?";
	}
}

/* Names one of our own messages for an error: "rule 3 in bridge spork
 * prerouting (IPv4 client to server: deliver to br0)". */
static void
nd_describe(const struct nlmsghdr *nlh, char *out, size_t len)
{
	const struct nfgenmsg	*g = mnl_nlmsg_get_payload(nlh);
	const char		*fam = nd_family_name(g->nfgen_family);
	struct nftnl_table	*t;
	struct nftnl_chain	*ch;
	struct nftnl_set	*s;
	struct nftnl_rule	*r;
	const char		*ud;
	uint32_t		 udlen, clen;

	snprintf(out, len, "message %u", nlh->nlmsg_seq);
	switch (NFNL_MSG_TYPE(nlh->nlmsg_type)) {
	case NFT_MSG_NEWTABLE:
	case NFT_MSG_DELTABLE:
		if ((t = nftnl_table_alloc()) == NULL)
			return;
		if (nftnl_table_nlmsg_parse(nlh, t) == 0)
			snprintf(out, len, "table %s %s", fam,
			    nftnl_table_get_str(t, NFTNL_TABLE_NAME));
		nftnl_table_free(t);
		return;
	case NFT_MSG_NEWCHAIN:
		if ((ch = nftnl_chain_alloc()) == NULL)
			return;
		if (nftnl_chain_nlmsg_parse(nlh, ch) == 0)
			snprintf(out, len, "chain %s %s %s", fam,
			    nftnl_chain_get_str(ch, NFTNL_CHAIN_TABLE),
			    nftnl_chain_get_str(ch, NFTNL_CHAIN_NAME));
		nftnl_chain_free(ch);
		return;
	case NFT_MSG_NEWSET:
	case NFT_MSG_NEWSETELEM:
	case NFT_MSG_DELSETELEM:
		if ((s = nftnl_set_alloc()) == NULL)
			return;
		if ((NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWSET ?
		    nftnl_set_nlmsg_parse(nlh, s) :
		    nftnl_set_elems_nlmsg_parse(nlh, s)) == 0)
			snprintf(out, len, "%s %s %s %s",
			    NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWSET ?
			    "set" : "element of set", fam,
			    nftnl_set_get_str(s, NFTNL_SET_TABLE),
			    nftnl_set_get_str(s, NFTNL_SET_NAME));
		nftnl_set_free(s);
		return;
	case NFT_MSG_NEWRULE:
		if ((r = nftnl_rule_alloc()) == NULL)
			return;
		if (nftnl_rule_nlmsg_parse(nlh, r) == 0) {
			ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA,
			    &udlen);
			/* Our user data is one comment: type, length, text. */
			clen = ud != NULL && udlen > 2 ?
			    (uint8_t)ud[1] : 0;
			if (clen > udlen - 2)
				clen = udlen - 2;
			snprintf(out, len, "rule in %s %s %s (%.*s)", fam,
			    nftnl_rule_get_str(r, NFTNL_RULE_TABLE),
			    nftnl_rule_get_str(r, NFTNL_RULE_CHAIN),
			    clen > 0 ? (int)clen - 1 : 0,
			    clen > 0 ? ud + 2 : "");
		}
		nftnl_rule_free(r);
		return;
	}
}

static int
nd_check_acks(const struct nd_acks *a, char *err, size_t errlen)
{
	char		 what[ND_COMMENT_MAX + 64];
	const char	*hint = "";
	size_t		 i;
	uint16_t	 type;

	if (a->batch_err != 0) {
		errf(err, errlen, "the kernel refused the batch: %s%s",
		    strerror(a->batch_err), a->batch_err == EPERM ?
		    " (needs CAP_NET_ADMIN in this network namespace)" : "");
		return -1;
	}
	for (i = 0; i < a->n; i++) {
		if (a->err[i] == 0)
			continue;
		type = NFNL_MSG_TYPE(a->msg[i]->nlmsg_type);
		nd_describe(a->msg[i], what, sizeof(what));
		if (a->err[i] == EPERM && (type == NFT_MSG_NEWTABLE ||
		    type == NFT_MSG_NEWSETELEM || type == NFT_MSG_DELSETELEM))
			hint = " (the table belongs to another process:"
			    " another sporkd?)";
		else if (a->err[i] == EOPNOTSUPP && type == NFT_MSG_NEWRULE)
			hint = " (this kernel lacks an expression it uses:"
			    " see the probe)";
		else if (a->err[i] == ENOENT && type == NFT_MSG_DELSETELEM)
			hint = " (not in the set)";
		errf(err, errlen, "%s: %s%s", what, strerror(a->err[i]), hint);
		return -1;
	}
	return 0;
}

int
nft_divert_install(const struct nft_divert_conf *c, char *err, size_t errlen)
{
	static union nd_buf	 buf;
	struct nd_acks		 a;
	size_t			 len;
	int			 opened = 0;

	if (nd_conf_check(c, err, errlen) == -1)
		return -1;
	if (nd.nl == NULL) {
		if (nd_open(&nd.nl, NETLINK_NETFILTER, NULL, err, errlen) == -1)
			return -1;
		opened = 1;
		nd.seq = (uint32_t)time(NULL);
	}
	if ((len = nft_divert_build(c, buf.b, sizeof(buf.b), nd.seq)) == 0) {
		errf(err, errlen, "cannot build the ruleset: out of memory");
		goto fail;
	}
	nd.seq = nd_next_seq(buf.b, len);
	if (nd_talk(nd.nl, buf.b, len, &a) == -1) {
		errf(err, errlen, "netlink: %s", errno == EAGAIN ?
		    "no answer from the kernel" : strerror(errno));
		goto fail;
	}
	if (nd_check_acks(&a, err, errlen) == -1)
		goto fail;
	nd.conf = *c;
	snprintf(nd.table, sizeof(nd.table), "%s", nd_table(c));
	nd.conf.table = nd.table;
	return 0;
fail:
	/* A refused batch changed nothing: an earlier divert stays. */
	if (opened) {
		mnl_socket_close(nd.nl);
		nd.nl = NULL;
	}
	return -1;
}

void
nft_divert_remove(void)
{
	if (nd.nl == NULL)
		return;
	mnl_socket_close(nd.nl);
	nd.nl = NULL;
}

int
nft_divert_fd(void)
{
	return nd.nl != NULL ? mnl_socket_get_fd(nd.nl) : -1;
}

int
nft_divert_bypass(int add, int is_source, const char *addr,
    unsigned timeout_s, char *err, size_t errlen)
{
	static union nd_buf	 buf;
	struct nd_acks		 a;
	unsigned char		 key[16];
	uint32_t		 klen;
	size_t			 len;
	int			 nfproto;

	if (nd.nl == NULL) {
		errf(err, errlen, "the divert is not installed");
		return -1;
	}
	if (nd_parse_addr(addr, key, &klen, &nfproto) == -1) {
		errf(err, errlen, "'%s' is not an IPv4 or IPv6 address",
		    addr != NULL ? addr : "");
		return -1;
	}
	if (nfproto == NFPROTO_IPV6 && !nd.conf.ipv6) {
		errf(err, errlen, "IPv6 is not diverted: nothing to bypass");
		return -1;
	}
	if ((len = nft_divert_bypass_build(&nd.conf, add, is_source, addr,
	    timeout_s, buf.b, sizeof(buf.b), nd.seq)) == 0) {
		errf(err, errlen, "cannot build the message: out of memory");
		return -1;
	}
	nd.seq = nd_next_seq(buf.b, len);
	if (nd_talk(nd.nl, buf.b, len, &a) == -1) {
		errf(err, errlen, "netlink: %s", errno == EAGAIN ?
		    "no answer from the kernel" : strerror(errno));
		return -1;
	}
	return nd_check_acks(&a, err, errlen);
}

struct nd_list {
	FILE		*out;
	const char	*kind;
	int		 count;
};

static int
nd_list_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct nd_list			*l = arg;
	struct nftnl_set		*s;
	struct nftnl_set_elems_iter	*it;
	struct nftnl_set_elem		*e;
	const void			*key;
	char				 addr[INET6_ADDRSTRLEN];
	uint32_t			 klen;
	uint64_t			 timeout, expires;

	if ((s = nftnl_set_alloc()) == NULL)
		return MNL_CB_ERROR;
	if (nftnl_set_elems_nlmsg_parse(nlh, s) == -1 ||
	    (it = nftnl_set_elems_iter_create(s)) == NULL) {
		nftnl_set_free(s);
		return MNL_CB_ERROR;
	}
	while ((e = nftnl_set_elems_iter_next(it)) != NULL) {
		key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
		if (key == NULL || (klen != 4 && klen != 16) ||
		    inet_ntop(klen == 4 ? AF_INET : AF_INET6, key, addr,
		    sizeof(addr)) == NULL)
			continue;
		/* libnftnl's getters dereference absent attributes. */
		timeout = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT) ?
		    nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT) : 0;
		expires = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_EXPIRATION) ?
		    nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION) : 0;
		if (timeout == 0)
			fprintf(l->out, "%s %s timeout=none\n", l->kind, addr);
		else
			fprintf(l->out, "%s %s timeout=%llu expires=%llu\n",
			    l->kind, addr, (unsigned long long)timeout / 1000,
			    (unsigned long long)(expires + 999) / 1000);
		l->count++;
	}
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return MNL_CB_OK;
}

int
nft_divert_bypass_list(FILE *out)
{
	static const enum nd_set_id sets[] = { SET_SRC4, SET_SRC6, SET_DST4,
	    SET_DST6 };
	union {
		struct nlmsghdr	 nlh;
		char		 b[ND_RECV_MAX];
	}			 buf;
	struct nlmsghdr		*nlh;
	struct nftnl_set	*s;
	struct nd_list		 l = { .out = out };
	uint32_t		 seq, portid;
	ssize_t			 n;
	size_t			 i;
	int			 ret;

	if (nd.nl == NULL) {
		errno = ENOENT;
		return -1;
	}
	portid = mnl_socket_get_portid(nd.nl);
	for (i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		if (!nd_set_wanted(&nd.conf, sets[i]))
			continue;
		l.kind = sets[i] == SET_SRC4 || sets[i] == SET_SRC6 ?
		    "source" : "destination";
		if ((s = set_alloc(nd.table, sets[i])) == NULL)
			return -1;
		seq = nd.seq++;
		nlh = nftnl_nlmsg_build_hdr(buf.b, NFT_MSG_GETSETELEM,
		    NFPROTO_BRIDGE, NLM_F_DUMP, seq);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		nd_drain(nd.nl);
		if (mnl_socket_sendto(nd.nl, nlh, nlh->nlmsg_len) == -1)
			return -1;
		do {
			if ((n = mnl_socket_recvfrom(nd.nl, buf.b,
			    sizeof(buf.b))) == -1)
				return -1;
			ret = mnl_cb_run(buf.b, (size_t)n, seq, portid,
			    nd_list_cb, &l);
		} while (ret > MNL_CB_STOP);
		if (ret == MNL_CB_ERROR)
			return -1;
	}
	return l.count;
}

/*
 * Whether bridge table `name` exists (spork-setup's fail-closed table):
 * 1, 0, or -1 and errno when the divert is not sporkd's or the kernel
 * does not answer.
 */
int
nft_divert_table_exists(const char *name)
{
	union {
		struct nlmsghdr	 nlh;
		char		 b[ND_RECV_MAX];
	}			 buf;
	struct nlmsghdr		*nlh;
	struct nftnl_table	*t;
	uint32_t		 seq, portid;
	ssize_t			 n;
	int			 ret;

	if (nd.nl == NULL) {
		errno = ENOENT;
		return -1;
	}
	if ((t = nftnl_table_alloc()) == NULL)
		return -1;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	seq = nd.seq++;
	nlh = nftnl_nlmsg_build_hdr(buf.b, NFT_MSG_GETTABLE, NFPROTO_BRIDGE,
	    NLM_F_ACK, seq);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	portid = mnl_socket_get_portid(nd.nl);
	nd_drain(nd.nl);
	if (mnl_socket_sendto(nd.nl, nlh, nlh->nlmsg_len) == -1)
		return -1;
	do {
		if ((n = mnl_socket_recvfrom(nd.nl, buf.b, sizeof(buf.b))) == -1)
			return -1;
		ret = mnl_cb_run(buf.b, (size_t)n, seq, portid, NULL, NULL);
	} while (ret > MNL_CB_STOP);
	if (ret == MNL_CB_ERROR)
		return errno == ENOENT ? 0 : -1;
	return 1;
}

/* --- the probe -------------------------------------------------------- */

/*
 * Each probe is a throwaway table, dormant (its chain never sees a packet)
 * and owned by the probe's socket when the kernel knows the flag, holding
 * one chain and the set and rule under test. The batch is committed, as
 * some checks (which hooks an expression may sit on) only run at commit;
 * a second batch deletes the table, and should it never come, closing the
 * socket does. A check_only probe is never committed: its batch has no
 * end, so the kernel checks each message and discards them all.
 */
static size_t
nd_probe_build(const struct nd_probe *p, const char *table, uint32_t flags,
    char *buf, size_t len, uint32_t seq)
{
	struct nft_divert_conf	c = nd_probe_conf;
	struct nd_batch		b;
	struct nd_rule		ru;

	c.table = table;
	c.use_ibrname = p->ibrname;
	batch_begin(&b, buf, len, seq);
	msg_table(&b, NFT_MSG_NEWTABLE, p->family, table, 1, flags, NULL,
	    NLM_F_CREATE | NLM_F_EXCL);
	msg_chain(&b, p->family, table, "prerouting",
	    p->family == NFPROTO_BRIDGE ? ND_BRIDGE_PRIO : ND_INET_PRIO, NULL);
	if (p->set != SET_NONE)
		msg_set(&b, table, p->set);
	if (p->terms[0] != T_END) {
		memset(&ru, 0, sizeof(ru));
		ru.chain = p->family == NFPROTO_BRIDGE ? ND_BRIDGE : ND_INET;
		/* Into the probe's only chain, "prerouting". */
		ru.nfproto = p->nfproto;
		ru.set = p->set;
		memcpy(ru.terms, p->terms, sizeof(ru.terms));
		msg_rule(&b, table, &ru, &c);
	}
	if (!p->check_only)
		batch_end(&b);
	return b.failed ? 0 : b.off;
}

static size_t
nd_probe_drop(int family, const char *table, char *buf, size_t len,
    uint32_t seq)
{
	struct nd_batch	b;

	batch_begin(&b, buf, len, seq);
	msg_table(&b, NFT_MSG_DELTABLE, family, table, 0, 0, NULL, 0);
	batch_end(&b);
	return b.failed ? 0 : b.off;
}

static void
rpt(char *report, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
rpt(char *report, size_t len, size_t *off, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (*off >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(report + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off = *off + (size_t)n < len ? *off + (size_t)n : len;
}

/* Sends a probe batch; -1 if the kernel could not be asked at all. */
static int
nd_probe_talk(struct mnl_socket *nl, const char *buf, size_t blen,
    struct nd_acks *a, char *report, size_t len, size_t *off)
{
	if (blen == 0)
		fatal("nft_divert: probe batch does not fit");
	if (nd_talk(nl, buf, blen, a) == -1) {
		rpt(report, len, off, "cannot ask the kernel: %s\n",
		    errno == EAGAIN ? "no answer" : strerror(errno));
		return -1;
	}
	if (a->batch_err == EPERM) {
		rpt(report, len, off, "the kernel refused to check anything:"
		    " %s (needs CAP_NET_ADMIN)\n", strerror(EPERM));
		return -1;
	}
	return 0;
}

int
nft_divert_probe(char *report, size_t len)
{
	static union nd_buf	 buf;
	struct mnl_socket	*nl;
	struct nd_acks		 a;
	char			 table[NFT_DIVERT_TABLE_MAX], err[128];
	size_t			 i, k, off = 0;
	uint32_t		 seq = (uint32_t)time(NULL), flags;
	int			 have = 0, e;

	if (len > 0)
		report[0] = '\0';
	if (nd_open(&nl, NETLINK_NETFILTER, NULL, err, sizeof(err)) == -1) {
		rpt(report, len, &off, "cannot ask the kernel: %s\n", err);
		return -1;
	}
	snprintf(table, sizeof(table), "spork_probe_%ld", (long)getpid());
	for (i = 0; i < sizeof(nd_probes) / sizeof(nd_probes[0]); i++) {
		const struct nd_probe	*p = &nd_probes[i];

		/* The owner probe comes first: the others use its answer. */
		flags = NFT_TABLE_F_DORMANT | p->table_flags |
		    (have & NFT_DIVERT_HAVE_OWNER ? NFT_TABLE_F_OWNER : 0);
		if (nd_probe_talk(nl, buf.b, nd_probe_build(p, table, flags,
		    buf.b, sizeof(buf.b), seq), &a, report, len, &off) == -1)
			goto fail;
		seq += (uint32_t)a.n + 2;
		for (k = 0; k < a.n && a.err[k] == 0; k++)
			;
		e = k < a.n ? a.err[k] : a.batch_err;
		if (e == 0) {
			have |= (int)p->bit;
			rpt(report, len, &off, "%-58s yes\n", p->what);
		} else if (k < 2 && k + 1 < a.n &&
		    (p->set != SET_NONE || p->terms[0] != T_END)) {
			/* The table or chain failed, not what is tested. */
			rpt(report, len, &off, "%-58s untested (%s refused:"
			    " %s)\n", p->what, k == 0 ? "table" : "chain",
			    strerror(e));
		} else {
			rpt(report, len, &off, "%-58s NO (%s): %s\n", p->what,
			    strerror(e), p->lack);
		}
		if (e != 0 || p->check_only)
			continue;
		if (nd_probe_talk(nl, buf.b, nd_probe_drop(p->family, table,
		    buf.b, sizeof(buf.b), seq), &a, report, len, &off) == -1)
			goto fail;
		seq += (uint32_t)a.n + 2;
	}
	mnl_socket_close(nl);
	if ((have & NFT_DIVERT_NEED) != NFT_DIVERT_NEED)
		rpt(report, len, &off, "verdict: the divert cannot be"
		    " installed here (see the NO lines)\n");
	else
		rpt(report, len, &off, "verdict: the divert can be installed"
		    " here, matching the bridge %s\n",
		    have & NFT_DIVERT_HAVE_IBRNAME ? "by name (meta ibrname)" :
		    "by its ports (meta iifname @ports fallback)");
	return have;
fail:
	/* Closing the socket deletes a probe table it owns. */
	mnl_socket_close(nl);
	return -1;
}

/* --- the bridge ------------------------------------------------------- */

struct nd_links {
	struct nft_divert_conf	*c;
	unsigned		 index;
	int			 found;
	int			 is_bridge;
	int			 too_many;
};

static int
nd_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr	**tb = data;
	int			  type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, IFLA_MAX) > 0)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int
nd_link_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct nd_links		*l = arg;
	const struct ifinfomsg	*ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr	*tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1];
	const char		*name;

	memset(tb, 0, sizeof(tb));
	memset(info, 0, sizeof(info));
	if (mnl_attr_parse(nlh, sizeof(*ifi), nd_attr_cb, tb) < 0 ||
	    tb[IFLA_IFNAME] == NULL)
		return MNL_CB_OK;
	name = mnl_attr_get_str(tb[IFLA_IFNAME]);
	if ((unsigned)ifi->ifi_index == l->index) {
		l->found = 1;
		if (tb[IFLA_ADDRESS] != NULL &&
		    mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == 6)
			memcpy(l->c->bridge_mac,
			    mnl_attr_get_payload(tb[IFLA_ADDRESS]), 6);
		if (tb[IFLA_LINKINFO] != NULL &&
		    mnl_attr_parse_nested(tb[IFLA_LINKINFO], nd_attr_cb,
		    info) >= 0 && info[IFLA_INFO_KIND] != NULL &&
		    strcmp(mnl_attr_get_str(info[IFLA_INFO_KIND]),
		    "bridge") == 0)
			l->is_bridge = 1;
	} else if (tb[IFLA_MASTER] != NULL &&
	    mnl_attr_get_u32(tb[IFLA_MASTER]) == l->index) {
		if (l->c->nports == NFT_DIVERT_PORTS_MAX)
			l->too_many = 1;
		else
			snprintf(l->c->ports[l->c->nports++],
			    sizeof(l->c->ports[0]), "%s", name);
	}
	return MNL_CB_OK;
}

int
nft_divert_read_bridge(struct nft_divert_conf *c, const char *name,
    char *err, size_t errlen)
{
	union {
		struct nlmsghdr	 nlh;
		char		 b[ND_RECV_MAX];
	}			 buf;
	struct mnl_socket	*nl;
	struct nlmsghdr		*nlh;
	struct ifinfomsg	*ifi;
	struct nd_links		 l = { .c = c };
	uint32_t		 portid, seq = (uint32_t)time(NULL);
	ssize_t			 n;
	int			 ret;

	if (!nd_ifname_ok(name)) {
		errf(err, errlen, "bad bridge name '%s'", name);
		return -1;
	}
	if ((l.index = if_nametoindex(name)) == 0) {
		errf(err, errlen, "no link %s in this network namespace", name);
		return -1;
	}
	snprintf(c->bridge, sizeof(c->bridge), "%s", name);
	memset(c->bridge_mac, 0, sizeof(c->bridge_mac));
	c->nports = 0;
	if (nd_open(&nl, NETLINK_ROUTE, &portid, err, errlen) == -1)
		return -1;
	nlh = mnl_nlmsg_put_header(buf.b);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) == -1)
		goto fail;
	do {
		if ((n = mnl_socket_recvfrom(nl, buf.b, sizeof(buf.b))) == -1)
			goto fail;
		ret = mnl_cb_run(buf.b, (size_t)n, seq, portid, nd_link_cb,
		    &l);
	} while (ret > MNL_CB_STOP);
	if (ret == MNL_CB_ERROR)
		goto fail;
	mnl_socket_close(nl);
	if (!l.found || !l.is_bridge) {
		errf(err, errlen, "%s is not a bridge", name);
		return -1;
	}
	if (l.too_many) {
		errf(err, errlen, "%s has more than %d ports", name,
		    NFT_DIVERT_PORTS_MAX);
		return -1;
	}
	return 0;
fail:
	errf(err, errlen, "rtnetlink: %s", strerror(errno));
	mnl_socket_close(nl);
	return -1;
}
