/* SPDX-License-Identifier: MIT */
/*
 * The divert batch from nft_divert_build(), parsed back with libnftnl: no
 * kernel, no root. The expected expressions are, verbatim, what nft 1.0.6
 * generates (nft --debug=netlink) for the rules scripts/spork-setup writes
 * and for the bypass rules, so the daemon's divert is the script's.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter/xt_NFQUEUE.h>

#include "nft_divert.h"
#include "unit.h"

#define MSGS_MAX	64
#define TEXT_MAX	2048

void	test_nft(void);

/* Expressions as nft --debug=netlink prints them, one a line. */
#define E_ETH4		"[ payload load 2b @ link header + 12 => reg 1 ]\n" \
			"[ cmp eq reg 1 0x00000008 ]\n"
#define E_ETH6		"[ payload load 2b @ link header + 12 => reg 1 ]\n" \
			"[ cmp eq reg 1 0x0000dd86 ]\n"
#define E_TCP		"[ meta load l4proto => reg 1 ]\n" \
			"[ cmp eq reg 1 0x00000006 ]\n"
#define E_DPORT		E_TCP "[ payload load 2b @ transport header + 2" \
			" => reg 1 ]\n[ cmp eq reg 1 0x00001900 ]\n"
#define E_SPORT		E_TCP "[ payload load 2b @ transport header + 0" \
			" => reg 1 ]\n[ cmp eq reg 1 0x00001900 ]\n"
#define E_ADDR(n, off, set) \
			"[ payload load " n "b @ network header + " off \
			" => reg 1 ]\n[ lookup reg 1 set " set " ]\n"
#define E_RETURN	"[ immediate reg 1 0x00000001 ]\n" \
			"[ meta set mark with reg 1 ]\n" \
			"[ immediate reg 0 return ]\n"	/* bypassed: marked */
#define E_PORTS		"[ meta load iifname => reg 1 ]\n" \
			"[ lookup reg 1 set ports ]\n"
#define E_IBRNAME	"[ meta load bri_iifname => reg 1 ]\n" \
			"[ cmp eq reg 1 0x00307262 0x00000000 0x00000000" \
			" 0x00000000 ]\n"
#define E_REWRITE	"[ immediate reg 1 0x224c71a6 0x00004a13 ]\n" \
			"[ payload write reg 1 => 6b @ link header + 0" \
			" csum_type 0 csum_off 0 csum_flags 0x0 ]\n" \
			"[ immediate reg 1 0x00000000 ]\n" \
			"[ meta set pkttype with reg 1 ]\n"
#define E_MARK_ACCEPT	"[ immediate reg 1 0x00000001 ]\n" \
			"[ meta set mark with reg 1 ]\n" \
			"[ immediate reg 0 accept ]\n"
#define E_SOCKET	E_TCP "[ socket load transparent => reg 1 ]\n" \
			"[ cmp eq reg 1 0x00000001 ]\n" E_MARK_ACCEPT
#define E_TPROXY(nfp, ip) \
			"[ meta load nfproto => reg 1 ]\n" \
			"[ cmp eq reg 1 " nfp " ]\n" E_DPORT \
			"[ immediate reg 1 0x00002927 ]\n" \
			"[ tproxy " ip " port reg 1 ]\n" E_MARK_ACCEPT

struct want_rule {
	int		 family;
	const char	*comment;
	const char	*exprs;
};

/* Dual stack, bridge ports matched from a set: 12 + 3 rules. */
static const struct want_rule want_full[] = {
	{ NFPROTO_BRIDGE, "IPv4 client to server: bypassed client",
	  E_ETH4 E_DPORT E_ADDR("4", "12", "bypass_src4") E_RETURN },
	{ NFPROTO_BRIDGE, "IPv4 server to client: bypassed client",
	  E_ETH4 E_SPORT E_ADDR("4", "16", "bypass_src4") E_RETURN },
	{ NFPROTO_BRIDGE, "IPv4 client to server: bypassed server",
	  E_ETH4 E_DPORT E_ADDR("4", "16", "bypass_dst4") E_RETURN },
	{ NFPROTO_BRIDGE, "IPv4 server to client: bypassed server",
	  E_ETH4 E_SPORT E_ADDR("4", "12", "bypass_dst4") E_RETURN },
	{ NFPROTO_BRIDGE, "IPv6 client to server: bypassed client",
	  E_ETH6 E_DPORT E_ADDR("16", "8", "bypass_src6") E_RETURN },
	{ NFPROTO_BRIDGE, "IPv6 server to client: bypassed client",
	  E_ETH6 E_SPORT E_ADDR("16", "24", "bypass_src6") E_RETURN },
	{ NFPROTO_BRIDGE, "IPv6 client to server: bypassed server",
	  E_ETH6 E_DPORT E_ADDR("16", "24", "bypass_dst6") E_RETURN },
	{ NFPROTO_BRIDGE, "IPv6 server to client: bypassed server",
	  E_ETH6 E_SPORT E_ADDR("16", "8", "bypass_dst6") E_RETURN },
	{ NFPROTO_BRIDGE, "IPv4 client to server: deliver to br0",
	  E_PORTS E_ETH4 E_DPORT E_REWRITE },
	{ NFPROTO_BRIDGE, "IPv4 server to client: deliver to br0",
	  E_PORTS E_ETH4 E_SPORT E_REWRITE },
	{ NFPROTO_BRIDGE, "IPv6 client to server: deliver to br0",
	  E_PORTS E_ETH6 E_DPORT E_REWRITE },
	{ NFPROTO_BRIDGE, "IPv6 server to client: deliver to br0",
	  E_PORTS E_ETH6 E_SPORT E_REWRITE },
	{ NFPROTO_INET, "packets of sporkd's transparent sockets (upstream"
	  " replies): local", E_SOCKET },
	{ NFPROTO_INET, "new IPv4 SMTP connections: to sporkd port 10025",
	  E_TPROXY("0x00000002", "ip") },
	{ NFPROTO_INET, "new IPv6 SMTP connections: to sporkd port 10025",
	  E_TPROXY("0x0000000a", "ip6") },
};

/* IPv4 only, bridge matched by name: 6 + 2 rules. */
static const struct want_rule want_v4_ibrname[] = {
	{ NFPROTO_BRIDGE, "IPv4 client to server: bypassed client",
	  E_ETH4 E_DPORT E_ADDR("4", "12", "bypass_src4") E_RETURN },
	{ NFPROTO_BRIDGE, "IPv4 server to client: bypassed client",
	  E_ETH4 E_SPORT E_ADDR("4", "16", "bypass_src4") E_RETURN },
	{ NFPROTO_BRIDGE, "IPv4 client to server: bypassed server",
	  E_ETH4 E_DPORT E_ADDR("4", "16", "bypass_dst4") E_RETURN },
	{ NFPROTO_BRIDGE, "IPv4 server to client: bypassed server",
	  E_ETH4 E_SPORT E_ADDR("4", "12", "bypass_dst4") E_RETURN },
	{ NFPROTO_BRIDGE, "IPv4 client to server: deliver to br0",
	  E_IBRNAME E_ETH4 E_DPORT E_REWRITE },
	{ NFPROTO_BRIDGE, "IPv4 server to client: deliver to br0",
	  E_IBRNAME E_ETH4 E_SPORT E_REWRITE },
	{ NFPROTO_INET, "packets of sporkd's transparent sockets (upstream"
	  " replies): local", E_SOCKET },
	{ NFPROTO_INET, "new IPv4 SMTP connections: to sporkd port 10025",
	  E_TPROXY("0x00000002", "ip") },
};

struct want_set {
	const char	*name;
	uint32_t	 key_len;
	uint32_t	 key_type;
	uint32_t	 flags;
};

static const struct want_set sets_full[] = {
	{ "ports", 16, 41, 0 },
	{ "bypass_src4", 4, 7, NFT_SET_TIMEOUT },
	{ "bypass_dst4", 4, 7, NFT_SET_TIMEOUT },
	{ "bypass_src6", 16, 8, NFT_SET_TIMEOUT },
	{ "bypass_dst6", 16, 8, NFT_SET_TIMEOUT },
};

static const struct want_set sets_v4_ibrname[] = {
	{ "bypass_src4", 4, 7, NFT_SET_TIMEOUT },
	{ "bypass_dst4", 4, 7, NFT_SET_TIMEOUT },
};

static union {
	struct nlmsghdr	 nlh;
	char		 b[NFT_DIVERT_BATCH_MAX];
} buf;

static void
conf_init(struct nft_divert_conf *c)
{
	static const unsigned char mac[6] = { 0xa6, 0x71, 0x4c, 0x22, 0x13,
	    0x4a };

	memset(c, 0, sizeof(*c));
	snprintf(c->bridge, sizeof(c->bridge), "br0");
	snprintf(c->ports[0], sizeof(c->ports[0]), "va");
	snprintf(c->ports[1], sizeof(c->ports[1]), "vc");
	c->nports = 2;
	memcpy(c->bridge_mac, mac, sizeof(mac));
	c->port = 10025;
	c->mark = 1;
	c->ipv6 = 1;
}

/* Splits a batch into its messages; every byte must belong to one. */
static size_t
split(const char *b, size_t len, const struct nlmsghdr **m)
{
	const struct nlmsghdr	*nlh = (const struct nlmsghdr *)b;
	int			 rem = (int)len;
	size_t			 n = 0;

	for (; mnl_nlmsg_ok(nlh, rem) && n < MSGS_MAX;
	    nlh = mnl_nlmsg_next(nlh, &rem))
		m[n++] = nlh;
	CHECK(rem == 0, "%d bytes after the last message", rem);
	return n;
}

static int
nft_type(const struct nlmsghdr *nlh)
{
	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
		return -1;
	return NFNL_MSG_TYPE(nlh->nlmsg_type);
}

static int
family(const struct nlmsghdr *nlh)
{
	return ((const struct nfgenmsg *)mnl_nlmsg_get_payload(nlh))->
	    nfgen_family;
}

/* Begin and end framing, consecutive sequence numbers, an ack asked of
 * every message in between. */
static void
check_framing(const struct nlmsghdr **m, size_t n, uint32_t seq)
{
	size_t	i;

	CHECK(n >= 3, "%zu messages", n);
	if (n < 3)
		return;
	CHECK(m[0]->nlmsg_type == NFNL_MSG_BATCH_BEGIN, "first type %u",
	    m[0]->nlmsg_type);
	CHECK(m[n - 1]->nlmsg_type == NFNL_MSG_BATCH_END, "last type %u",
	    m[n - 1]->nlmsg_type);
	CHECK(ntohs(((const struct nfgenmsg *)mnl_nlmsg_get_payload(m[0]))->
	    res_id) == NFNL_SUBSYS_NFTABLES, "batch for nf_tables");
	for (i = 0; i < n; i++) {
		CHECK(m[i]->nlmsg_seq == seq + (uint32_t)i,
		    "message %zu has seq %u, want %u", i, m[i]->nlmsg_seq,
		    seq + (uint32_t)i);
		if (i == 0 || i == n - 1)
			continue;
		CHECK((m[i]->nlmsg_flags & (NLM_F_REQUEST | NLM_F_ACK)) ==
		    (NLM_F_REQUEST | NLM_F_ACK), "message %zu flags %#x", i,
		    m[i]->nlmsg_flags);
		CHECK(nft_type(m[i]) >= 0, "message %zu not nf_tables", i);
	}
}

static void
rule_text(struct nftnl_rule *r, char *out, size_t len)
{
	struct nftnl_expr_iter	*it;
	struct nftnl_expr	*e;
	char			 one[512];
	size_t			 off = 0, n;

	out[0] = '\0';
	if ((it = nftnl_expr_iter_create(r)) == NULL)
		return;
	while ((e = nftnl_expr_iter_next(it)) != NULL && off < len) {
		nftnl_expr_snprintf(one, sizeof(one), e, NFTNL_OUTPUT_DEFAULT,
		    0);
		for (n = strlen(one); n > 0 && one[n - 1] == ' '; n--)
			one[n - 1] = '\0';
		off += (size_t)snprintf(out + off, len - off, "[ %s %s ]\n",
		    nftnl_expr_get_str(e, NFTNL_EXPR_NAME), one);
	}
	nftnl_expr_iter_destroy(it);
}

/* nft's comment: one user data attribute, type 0, with its NUL. */
static const char *
rule_comment(struct nftnl_rule *r)
{
	const char	*ud;
	uint32_t	 len;

	ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
	if (ud == NULL || len < 3 || ud[0] != 0 ||
	    (uint8_t)ud[1] != len - 2 || ud[len - 1] != '\0')
		return "";
	return ud + 2;
}

/* The tproxy port and the marks, decoded rather than compared as text. */
static void
check_values(struct nftnl_rule *r, const struct nft_divert_conf *c)
{
	struct nftnl_expr_iter	*it;
	struct nftnl_expr	*e, *prev = NULL;
	const void		*d;
	const char		*name;
	uint16_t		 port;
	uint32_t		 len, mark;

	if ((it = nftnl_expr_iter_create(r)) == NULL)
		return;
	while ((e = nftnl_expr_iter_next(it)) != NULL) {
		name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
		if (strcmp(name, "tproxy") == 0) {
			CHECK(prev != NULL && strcmp(nftnl_expr_get_str(prev,
			    NFTNL_EXPR_NAME), "immediate") == 0,
			    "tproxy port from an immediate");
			d = prev != NULL ? nftnl_expr_get(prev,
			    NFTNL_EXPR_IMM_DATA, &len) : NULL;
			CHECK(d != NULL && len == 2, "port is 2 bytes");
			if (d != NULL && len == 2) {
				memcpy(&port, d, 2);
				CHECK(ntohs(port) == c->port, "tproxy to :%u,"
				    " want :%u", ntohs(port), c->port);
			}
			CHECK(nftnl_expr_get_u32(e, NFTNL_EXPR_TPROXY_REG_PORT)
			    == nftnl_expr_get_u32(prev, NFTNL_EXPR_IMM_DREG),
			    "tproxy reads the port's register");
		}
		if (strcmp(name, "meta") == 0 &&
		    nftnl_expr_is_set(e, NFTNL_EXPR_META_SREG) &&
		    nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) ==
		    NFT_META_MARK) {
			d = prev != NULL ? nftnl_expr_get(prev,
			    NFTNL_EXPR_IMM_DATA, &len) : NULL;
			CHECK(d != NULL && len == 4, "mark is 4 bytes");
			if (d != NULL && len == 4) {
				memcpy(&mark, d, 4);
				CHECK(mark == c->mark, "mark %u, want %u",
				    mark, c->mark);
			}
		}
		prev = e;
	}
	nftnl_expr_iter_destroy(it);
}

static void
check_table(const struct nlmsghdr *nlh, int type, int fam, int nth)
{
	struct nftnl_table	*t = nftnl_table_alloc();

	CHECK(nft_type(nlh) == type, "table message %d type %d", nth,
	    nft_type(nlh));
	if (t == NULL || nftnl_table_nlmsg_parse(nlh, t) != 0) {
		CHECK(0, "table message %d parses", nth);
		goto out;
	}
	CHECK(family(nlh) == fam, "table family %d", family(nlh));
	CHECK(strcmp(nftnl_table_get_str(t, NFTNL_TABLE_NAME), "spork") == 0,
	    "table name %s", nftnl_table_get_str(t, NFTNL_TABLE_NAME));
	if (nth < 2) {
		/* Creating an empty table, then deleting: no flags, or an
		 * existing table would be changed rather than replaced. */
		CHECK(!nftnl_table_is_set(t, NFTNL_TABLE_FLAGS),
		    "no flags on the placeholder");
	} else {
		CHECK(nftnl_table_is_set(t, NFTNL_TABLE_FLAGS) &&
		    nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS) ==
		    NFT_TABLE_F_OWNER, "the table is owned, nothing else");
		CHECK(nftnl_table_is_set(t, NFTNL_TABLE_USERDATA),
		    "the table has a comment");
	}
out:
	if (t != NULL)
		nftnl_table_free(t);
}

static void
check_chain(const struct nlmsghdr *nlh, int fam, int prio)
{
	struct nftnl_chain	*ch = nftnl_chain_alloc();

	if (ch == NULL || nftnl_chain_nlmsg_parse(nlh, ch) != 0) {
		CHECK(0, "chain parses");
		goto out;
	}
	CHECK(family(nlh) == fam, "chain family %d", family(nlh));
	CHECK(strcmp(nftnl_chain_get_str(ch, NFTNL_CHAIN_NAME),
	    "prerouting") == 0, "chain name");
	CHECK(strcmp(nftnl_chain_get_str(ch, NFTNL_CHAIN_TYPE), "filter") == 0,
	    "chain type");
	CHECK(nftnl_chain_get_u32(ch, NFTNL_CHAIN_HOOKNUM) == 0,
	    "prerouting hook (NF_BR_PRE_ROUTING, NF_INET_PRE_ROUTING)");
	CHECK(nftnl_chain_get_s32(ch, NFTNL_CHAIN_PRIO) == prio,
	    "priority %d, want %d", nftnl_chain_get_s32(ch, NFTNL_CHAIN_PRIO),
	    prio);
	CHECK(nftnl_chain_get_u32(ch, NFTNL_CHAIN_POLICY) == NF_ACCEPT,
	    "policy accept");
out:
	if (ch != NULL)
		nftnl_chain_free(ch);
}

static void
check_set(const struct nlmsghdr *nlh, const struct want_set *w)
{
	struct nftnl_set	*s = nftnl_set_alloc();

	if (s == NULL || nftnl_set_nlmsg_parse(nlh, s) != 0) {
		CHECK(0, "set %s parses", w->name);
		goto out;
	}
	CHECK(family(nlh) == NFPROTO_BRIDGE, "sets live in the bridge table");
	CHECK(strcmp(nftnl_set_get_str(s, NFTNL_SET_NAME), w->name) == 0,
	    "set %s, want %s", nftnl_set_get_str(s, NFTNL_SET_NAME), w->name);
	CHECK(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) == w->key_len,
	    "%s key length", w->name);
	CHECK(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE) == w->key_type,
	    "%s key type", w->name);
	CHECK(nftnl_set_get_u32(s, NFTNL_SET_FLAGS) == w->flags,
	    "%s flags %#x", w->name, nftnl_set_get_u32(s, NFTNL_SET_FLAGS));
out:
	if (s != NULL)
		nftnl_set_free(s);
}

/* The elements of one set element message: keys, and timeouts in ms
 * (UINT64_MAX when absent). */
static size_t
elems(const struct nlmsghdr *nlh, char *set, size_t setlen,
    unsigned char keys[][16], uint32_t *klen, uint64_t *timeout, size_t max)
{
	struct nftnl_set		*s = nftnl_set_alloc();
	struct nftnl_set_elems_iter	*it;
	struct nftnl_set_elem		*e;
	const void			*k;
	size_t				 n = 0;

	if (s == NULL || nftnl_set_elems_nlmsg_parse(nlh, s) != 0 ||
	    (it = nftnl_set_elems_iter_create(s)) == NULL) {
		CHECK(0, "set elements parse");
		goto out;
	}
	snprintf(set, setlen, "%s", nftnl_set_get_str(s, NFTNL_SET_NAME));
	while ((e = nftnl_set_elems_iter_next(it)) != NULL && n < max) {
		k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen[n]);
		memset(keys[n], 0, 16);
		if (k != NULL && klen[n] <= 16)
			memcpy(keys[n], k, klen[n]);
		timeout[n] = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT) ?
		    nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT) :
		    UINT64_MAX;
		n++;
	}
	nftnl_set_elems_iter_destroy(it);
out:
	if (s != NULL)
		nftnl_set_free(s);
	return n;
}

static void
check_ruleset(const struct nft_divert_conf *c, const struct want_rule *wr,
    size_t nwr, const struct want_set *ws, size_t nws)
{
	const struct nlmsghdr	*m[MSGS_MAX];
	struct nftnl_rule	*r;
	unsigned char		 keys[4][16];
	char			 text[TEXT_MAX], set[32];
	uint64_t		 timeout[4];
	uint32_t		 klen[4];
	static const char	 ports[2][16] = { "va", "vc" };
	size_t			 len, n, i, nr = 0, nt = 0, nc = 0, ns = 0;
	size_t			 np = 0;
	int			 type, prev = -1;

	len = nft_divert_build(c, buf.b, sizeof(buf.b), 1000);
	CHECK(len > 0 && len <= sizeof(buf.b), "built %zu bytes", len);
	if (len == 0)
		return;
	n = split(buf.b, len, m);
	check_framing(m, n, 1000);
	for (i = 1; i + 1 < n; i++) {
		type = nft_type(m[i]);
		switch (type) {
		case NFT_MSG_NEWTABLE:
		case NFT_MSG_DELTABLE:
			CHECK(nt < 6, "at most 6 table messages");
			check_table(m[i], type, nt < 3 ? NFPROTO_BRIDGE :
			    NFPROTO_INET, (int)(nt % 3));
			CHECK(nt % 3 == 1 ? type == NFT_MSG_DELTABLE :
			    type == NFT_MSG_NEWTABLE, "new, delete, new");
			nt++;
			break;
		case NFT_MSG_NEWCHAIN:
			CHECK(nc < 2, "two chains");
			check_chain(m[i], nc == 0 ? NFPROTO_BRIDGE :
			    NFPROTO_INET, nc == 0 ? -300 : -150);
			CHECK(prev != NFT_MSG_NEWRULE || nc == 1,
			    "the chain comes before its rules");
			nc++;
			break;
		case NFT_MSG_NEWSET:
			CHECK(ns < nws, "%zu sets at most", nws);
			if (ns < nws)
				check_set(m[i], &ws[ns]);
			ns++;
			break;
		case NFT_MSG_NEWSETELEM:
			CHECK(!c->use_ibrname, "elements only for ports");
			CHECK(prev == NFT_MSG_NEWSET ||
			    prev == NFT_MSG_NEWSETELEM,
			    "elements right after their set");
			CHECK(elems(m[i], set, sizeof(set), keys, klen,
			    timeout, 4) == 1, "one port a message");
			CHECK(strcmp(set, "ports") == 0, "elements of %s", set);
			CHECK(np < 2 && klen[0] == 16 && memcmp(keys[0],
			    ports[np], 16) == 0, "port %zu, padded to 16", np);
			CHECK(timeout[0] == UINT64_MAX, "ports never expire");
			np++;
			break;
		case NFT_MSG_NEWRULE:
			CHECK(nr < nwr, "%zu rules at most", nwr);
			if (nr >= nwr || (r = nftnl_rule_alloc()) == NULL)
				break;
			CHECK(nftnl_rule_nlmsg_parse(m[i], r) == 0,
			    "rule %zu parses", nr);
			CHECK(family(m[i]) == wr[nr].family, "rule %zu family",
			    nr);
			CHECK(strcmp(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN),
			    "prerouting") == 0, "rule %zu chain", nr);
			CHECK(strcmp(rule_comment(r), wr[nr].comment) == 0,
			    "rule %zu comment '%s', want '%s'", nr,
			    rule_comment(r), wr[nr].comment);
			rule_text(r, text, sizeof(text));
			CHECK(strcmp(text, wr[nr].exprs) == 0,
			    "rule %zu (%s):\n%s\nwant:\n%s", nr, wr[nr].comment,
			    text, wr[nr].exprs);
			check_values(r, c);
			nftnl_rule_free(r);
			nr++;
			break;
		default:
			CHECK(0, "unexpected message type %d", type);
		}
		prev = type;
	}
	CHECK(nt == 6, "%zu table messages", nt);
	CHECK(nc == 2, "%zu chains", nc);
	CHECK(ns == nws, "%zu sets, want %zu", ns, nws);
	CHECK(nr == nwr, "%zu rules, want %zu", nr, nwr);
	CHECK(np == (c->use_ibrname ? 0 : 2), "%zu ports", np);
}

/* Another port and mark end up in the tproxy and mark statements. */
static void
check_port_mark(void)
{
	struct nft_divert_conf	 c;
	const struct nlmsghdr	*m[MSGS_MAX];
	struct nftnl_rule	*r;
	size_t			 len, n, i, ntproxy = 0;
	char			 text[TEXT_MAX];

	conf_init(&c);
	c.port = 2525;
	c.mark = 0x2a;
	len = nft_divert_build(&c, buf.b, sizeof(buf.b), 7);
	n = split(buf.b, len, m);
	for (i = 0; i < n; i++) {
		if (nft_type(m[i]) != NFT_MSG_NEWRULE ||
		    (r = nftnl_rule_alloc()) == NULL)
			continue;
		if (nftnl_rule_nlmsg_parse(m[i], r) == 0) {
			check_values(r, &c);
			rule_text(r, text, sizeof(text));
			if (strstr(text, "[ tproxy ") != NULL) {
				ntproxy++;
				CHECK(strstr(text, "[ immediate reg 1"
				    " 0x0000dd09 ]") != NULL,
				    "port 2525 in network order");
			}
		}
		nftnl_rule_free(r);
	}
	CHECK(ntproxy == 2, "%zu tproxy rules", ntproxy);
}

/* Too small a buffer: 0, and nothing written past its end. */
static void
check_capacity(void)
{
	struct nft_divert_conf	c;
	static char		full[NFT_DIVERT_BATCH_MAX];
	size_t			len, small, i;
	int			clean = 1, zero = 1;

	conf_init(&c);
	len = nft_divert_build(&c, buf.b, sizeof(buf.b), 1);
	memcpy(full, buf.b, len);
	for (small = 0; small < len; small += small < 64 ? 1 : 61) {
		memset(buf.b, 0xa5, sizeof(buf.b));
		if (nft_divert_build(&c, buf.b, small, 1) != 0)
			zero = 0;
		for (i = small; i < len; i++)
			if ((unsigned char)buf.b[i] != 0xa5)
				clean = 0;
	}
	memset(buf.b, 0xa5, sizeof(buf.b));
	CHECK(nft_divert_build(&c, buf.b, len - 1, 1) == 0, "one byte short");
	CHECK(zero, "too small a buffer gives 0");
	CHECK(clean, "nothing written past the buffer's end");
	CHECK(nft_divert_build(&c, buf.b, len, 1) == len, "exact fit");
	CHECK(memcmp(buf.b, full, len) == 0, "same bytes every time");
}

static void
check_bad_confs(void)
{
	struct nft_divert_conf	c;
	int			k;

	for (k = 0; k < 9; k++) {
		conf_init(&c);
		switch (k) {
		case 0: c.port = 0; break;
		case 1: c.mark = 0; break;
		case 2: c.bridge[0] = '\0'; break;
		case 3: snprintf(c.bridge, sizeof(c.bridge), "br\"0"); break;
		case 4: c.nports = NFT_DIVERT_PORTS_MAX + 1; break;
		case 5: c.table = "bad name"; break;
		case 6: memset(c.bridge_mac, 0, 6); break;
		case 7: c.bridge_mac[0] = 0x01; break;
		case 8: snprintf(c.ports[1], sizeof(c.ports[1]), "a b"); break;
		}
		CHECK(nft_divert_build(&c, buf.b, sizeof(buf.b), 1) == 0,
		    "bad conf %d refused", k);
	}
}

static void
check_bypass(void)
{
	static const struct {
		int		 add, src;
		const char	*addr;
		unsigned	 timeout;
		const char	*set;
		uint32_t	 klen;
		const char	*key;
		uint64_t	 timeout_ms;
	} cases[] = {
		{ 1, 1, "192.0.2.1", 60, "bypass_src4", 4, "\xc0\x00\x02\x01",
		  60000 },
		{ 1, 0, "198.51.100.25", 0, "bypass_dst4", 4,
		  "\xc6\x33\x64\x19", UINT64_MAX },
		{ 1, 0, "2001:db8::25", 3600, "bypass_dst6", 16,
		  "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x25", 3600000 },
		{ 0, 1, "2001:db8::1", 60, "bypass_src6", 16,
		  "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", UINT64_MAX },
	};
	struct nft_divert_conf	 c;
	const struct nlmsghdr	*m[MSGS_MAX];
	unsigned char		 keys[4][16];
	char			 set[32];
	uint64_t		 timeout[4];
	uint32_t		 klen[4];
	size_t			 i, len, n;

	conf_init(&c);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = nft_divert_bypass_build(&c, cases[i].add, cases[i].src,
		    cases[i].addr, cases[i].timeout, buf.b, sizeof(buf.b),
		    0xfffffffeU);
		CHECK(len > 0, "bypass %s built", cases[i].addr);
		if (len == 0)
			continue;
		n = split(buf.b, len, m);
		CHECK(n == 3, "begin, one message, end");
		if (n != 3)
			continue;
		/* The sequence numbers wrap around like any others. */
		check_framing(m, n, 0xfffffffeU);
		CHECK(nft_type(m[1]) == (cases[i].add ? NFT_MSG_NEWSETELEM :
		    NFT_MSG_DELSETELEM), "%s: add or delete", cases[i].addr);
		CHECK(family(m[1]) == NFPROTO_BRIDGE, "bridge family");
		CHECK(elems(m[1], set, sizeof(set), keys, klen, timeout, 4) ==
		    1, "%s: one element", cases[i].addr);
		CHECK(strcmp(set, cases[i].set) == 0, "%s: set %s, want %s",
		    cases[i].addr, set, cases[i].set);
		CHECK(klen[0] == cases[i].klen &&
		    memcmp(keys[0], cases[i].key, cases[i].klen) == 0,
		    "%s: key bytes", cases[i].addr);
		CHECK(timeout[0] == cases[i].timeout_ms,
		    "%s: timeout %llu ms", cases[i].addr,
		    (unsigned long long)timeout[0]);
	}
	CHECK(nft_divert_bypass_build(&c, 1, 1, "192.0.2.300", 0, buf.b,
	    sizeof(buf.b), 1) == 0, "not an address");
	CHECK(nft_divert_bypass_build(&c, 1, 1, "192.0.2.0/24", 0, buf.b,
	    sizeof(buf.b), 1) == 0, "no prefixes");
	CHECK(nft_divert_bypass_build(&c, 1, 1, NULL, 0, buf.b,
	    sizeof(buf.b), 1) == 0, "no address");
	c.ipv6 = 0;
	CHECK(nft_divert_bypass_build(&c, 1, 1, "2001:db8::1", 0, buf.b,
	    sizeof(buf.b), 1) == 0, "IPv6 not diverted: no IPv6 sets");
	CHECK(nft_divert_bypass_build(&c, 1, 1, "192.0.2.1", 0, buf.b, 20,
	    1) == 0, "buffer too small");
}

/* The nft rendering carries every rule the batch does, by its comment. */
static void
check_print(const struct nft_divert_conf *c, const struct want_rule *wr,
    size_t nwr, const char *const *want, size_t nwant)
{
	char	*text = NULL, *p;
	size_t	 size = 0, i, rules = 0;
	FILE	*f;

	if ((f = open_memstream(&text, &size)) == NULL) {
		CHECK(0, "open_memstream");
		return;
	}
	nft_divert_print(c, f);
	fclose(f);
	for (i = 0; i < nwant; i++)
		CHECK(strstr(text, want[i]) != NULL, "printed: %s", want[i]);
	for (i = 0; i < nwr; i++) {
		CHECK(strstr(text, wr[i].comment) != NULL, "printed rule: %s",
		    wr[i].comment);
	}
	for (p = text; (p = strstr(p, "\n\t\t")) != NULL; p++)
		if (strncmp(p + 3, "type ", 5) != 0 &&
		    strncmp(p + 3, "comment ", 8) != 0 &&
		    strncmp(p + 3, "flags ", 6) != 0 &&
		    strncmp(p + 3, "elements ", 9) != 0 &&
		    strstr(p + 3, "comment \"") != NULL &&
		    strstr(p + 3, "comment \"") < strchr(p + 3, '\n'))
			rules++;
	CHECK(rules == nwr, "%zu rules printed, want %zu", rules, nwr);
	CHECK(strstr(text, "persist") == NULL, "never persist");
	free(text);
}

/* The SYN expressions as nft --debug=netlink prints them for
 * "tcp dport 25 tcp flags syn / fin,syn,rst,ack". */
#define E_SYN		E_DPORT "[ payload load 1b @ transport header + 13" \
			" => reg 1 ]\n[ bitwise reg 1 = ( reg 1 & 0x00000017 )" \
			" ^ 0x00000000 ]\n[ cmp eq reg 1 0x00000002 ]\n"

/* The target's info, decoded: NFQUEUE revision 3, one queue, bypass. */
static void
check_nfqueue(struct nftnl_rule *r, uint16_t num)
{
	struct nftnl_expr_iter		*it;
	struct nftnl_expr		*e, *last = NULL;
	const struct xt_NFQ_info_v3	*info;
	uint32_t			 len = 0;

	if ((it = nftnl_expr_iter_create(r)) == NULL)
		return;
	while ((e = nftnl_expr_iter_next(it)) != NULL)
		last = e;
	CHECK(last != NULL && strcmp(nftnl_expr_get_str(last,
	    NFTNL_EXPR_NAME), "target") == 0, "the rule ends in a target");
	if (last != NULL && strcmp(nftnl_expr_get_str(last, NFTNL_EXPR_NAME),
	    "target") == 0) {
		CHECK(strcmp(nftnl_expr_get_str(last, NFTNL_EXPR_TG_NAME),
		    "NFQUEUE") == 0, "target NFQUEUE");
		CHECK(nftnl_expr_get_u32(last, NFTNL_EXPR_TG_REV) == 3,
		    "revision 3");
		info = nftnl_expr_get(last, NFTNL_EXPR_TG_INFO, &len);
		CHECK(info != NULL && len == sizeof(*info), "info of %u bytes",
		    len);
		if (info != NULL && len == sizeof(*info)) {
			CHECK(info->queuenum == num, "queue %u, want %u",
			    info->queuenum, num);
			CHECK(info->queues_total == 1, "one queue");
			CHECK(info->flags == NFQ_FLAG_BYPASS,
			    "bypass when nobody listens, nothing else");
		}
	}
	nftnl_expr_iter_destroy(it);
}

/* Connect-before-accept adds one chain at raw priority to the inet table
 * and one rule in it; the rest of the ruleset does not change. */
static void
check_queue(void)
{
	static const char *const print_q[] = {
		"\tchain syn {\n\t\ttype filter hook prerouting priority raw;"
		" policy accept;\n",
		"tcp dport 25 tcp flags syn / fin,syn,rst,ack queue num 2525"
		" bypass comment",
	};
	struct nft_divert_conf	 c;
	const struct nlmsghdr	*m[MSGS_MAX];
	struct nftnl_chain	*ch;
	struct nftnl_rule	*r;
	char			 text[TEXT_MAX], *ptext = NULL;
	size_t			 len, n, i, nc = 0, nr = 0, nsyn = 0, psize = 0;
	size_t			 plain;
	FILE			*f;

	conf_init(&c);
	plain = nft_divert_build(&c, buf.b, sizeof(buf.b), 1);
	c.queue = 1;
	c.queue_num = 2525;
	len = nft_divert_build(&c, buf.b, sizeof(buf.b), 1);
	CHECK(len > plain, "the queue adds to the batch");
	n = split(buf.b, len, m);
	check_framing(m, n, 1);
	for (i = 1; i + 1 < n; i++) {
		switch (nft_type(m[i])) {
		case NFT_MSG_NEWCHAIN:
			if ((ch = nftnl_chain_alloc()) == NULL ||
			    nftnl_chain_nlmsg_parse(m[i], ch) != 0) {
				CHECK(0, "chain parses");
				break;
			}
			if (nc == 2) {
				CHECK(family(m[i]) == NFPROTO_INET,
				    "the SYN chain is inet");
				CHECK(strcmp(nftnl_chain_get_str(ch,
				    NFTNL_CHAIN_NAME), "syn") == 0, "named syn");
				CHECK(nftnl_chain_get_u32(ch,
				    NFTNL_CHAIN_HOOKNUM) == 0, "prerouting");
				CHECK(nftnl_chain_get_s32(ch, NFTNL_CHAIN_PRIO)
				    == -300, "raw priority: before conntrack");
				CHECK(nftnl_chain_get_u32(ch,
				    NFTNL_CHAIN_POLICY) == NF_ACCEPT,
				    "policy accept");
			}
			nftnl_chain_free(ch);
			nc++;
			break;
		case NFT_MSG_NEWRULE:
			nr++;
			if ((r = nftnl_rule_alloc()) == NULL ||
			    nftnl_rule_nlmsg_parse(m[i], r) != 0) {
				CHECK(0, "rule parses");
				break;
			}
			if (strcmp(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN),
			    "syn") == 0) {
				nsyn++;
				CHECK(nc == 3, "the rule follows its chain");
				CHECK(family(m[i]) == NFPROTO_INET, "inet");
				rule_text(r, text, sizeof(text));
				CHECK(strncmp(text, E_SYN, strlen(E_SYN)) == 0,
				    "SYN match:\n%s\nwant:\n%s", text, E_SYN);
				CHECK(strstr(rule_comment(r), "queue 2525") !=
				    NULL, "comment names the queue");
				check_nfqueue(r, 2525);
			}
			nftnl_rule_free(r);
			break;
		}
	}
	CHECK(nc == 3, "%zu chains, want 3", nc);
	CHECK(nsyn == 1, "%zu rules in syn, want 1", nsyn);
	CHECK(nr == sizeof(want_full) / sizeof(want_full[0]) + 1,
	    "%zu rules", nr);

	if ((f = open_memstream(&ptext, &psize)) == NULL) {
		CHECK(0, "open_memstream");
		return;
	}
	nft_divert_print(&c, f);
	fclose(f);
	for (i = 0; i < sizeof(print_q) / sizeof(print_q[0]); i++)
		CHECK(strstr(ptext, print_q[i]) != NULL, "printed: %s",
		    print_q[i]);
	free(ptext);
}

void
test_nft(void)
{
	static const char *const print_full[] = {
		"table bridge spork {\n\tflags owner\n",
		"table inet spork {\n\tflags owner\n",
		"type filter hook prerouting priority -300; policy accept;",
		"type filter hook prerouting priority mangle; policy accept;",
		"\t\telements = { \"va\", \"vc\" }\n",
		"meta iifname @ports ether type ip tcp dport 25 ether daddr set"
		" a6:71:4c:22:13:4a meta pkttype set host comment",
		"ether type ip6 tcp sport 25 ip6 saddr @bypass_dst6 meta mark set 0x00000001 return",
		"meta nfproto ipv4 tcp dport 25 tproxy ip to :10025 meta mark"
		" set 0x00000001 accept",
		"tproxy ip6 to :10025",
		"meta l4proto tcp socket transparent 1 meta mark set 0x00000001"
		" accept",
		"set bypass_src6 {\n\t\ttype ipv6_addr\n\t\tflags timeout\n",
	};
	static const char *const print_v4[] = {
		"meta ibrname \"br0\" ether type ip tcp dport 25",
		"set bypass_dst4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n",
	};
	struct nft_divert_conf	c;

	conf_init(&c);
	check_ruleset(&c, want_full, sizeof(want_full) / sizeof(want_full[0]),
	    sets_full, sizeof(sets_full) / sizeof(sets_full[0]));
	check_print(&c, want_full, sizeof(want_full) / sizeof(want_full[0]),
	    print_full, sizeof(print_full) / sizeof(print_full[0]));

	conf_init(&c);
	c.ipv6 = 0;
	c.use_ibrname = 1;
	check_ruleset(&c, want_v4_ibrname, sizeof(want_v4_ibrname) /
	    sizeof(want_v4_ibrname[0]), sets_v4_ibrname,
	    sizeof(sets_v4_ibrname) / sizeof(sets_v4_ibrname[0]));
	check_print(&c, want_v4_ibrname, sizeof(want_v4_ibrname) /
	    sizeof(want_v4_ibrname[0]), print_v4,
	    sizeof(print_v4) / sizeof(print_v4[0]));

	check_port_mark();
	check_queue();
	check_capacity();
	check_bad_confs();
	check_bypass();
}
