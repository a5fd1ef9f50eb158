/* SPDX-License-Identifier: MIT */
#ifndef SPORK_NFT_DIVERT_H
#define SPORK_NFT_DIVERT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NFT_DIVERT_PORTS_MAX	8
#define NFT_DIVERT_IFNAMSIZ	16
#define NFT_DIVERT_TABLE_MAX	32	/* table name, with its NUL */
/* A batch buffer this size holds the whole ruleset (it needs about 9 KiB). */
#define NFT_DIVERT_BATCH_MAX	32768

struct nft_divert_conf {
	char		 bridge[NFT_DIVERT_IFNAMSIZ];	/* br0 */
	/* The bridge's ports, for kernels without meta ibrname. */
	char		 ports[NFT_DIVERT_PORTS_MAX][NFT_DIVERT_IFNAMSIZ];
	int		 nports;
	unsigned char	 bridge_mac[6];
	uint16_t	 port;		/* sporkd's transparent listener */
	uint32_t	 mark;		/* fwmark of diverted packets, not 0 */
	int		 ipv6;		/* divert IPv6 too */
	int		 use_ibrname;	/* the kernel has meta ibrname */
	/* Connect-before-accept: new SMTP connections' SYNs go to this
	 * netfilter queue first (xt NFQUEUE through nft compat, with
	 * bypass: accepted as if unqueued when no process listens). */
	int		 queue;
	uint16_t	 queue_num;
	const char	*table;		/* both tables' name; NULL: "spork" */
};

/* What nft_divert_probe() found; NFT_DIVERT_NEED must all be there. */
#define NFT_DIVERT_HAVE_BRIDGE		0x0001	/* bridge family, -300 */
#define NFT_DIVERT_HAVE_INET		0x0002	/* inet family, mangle */
#define NFT_DIVERT_HAVE_OWNER		0x0004	/* table flag owner (5.12+) */
#define NFT_DIVERT_HAVE_ETHER_SET	0x0008	/* ether daddr set */
#define NFT_DIVERT_HAVE_PKTTYPE_SET	0x0010	/* meta pkttype set host */
#define NFT_DIVERT_HAVE_IFNAME_SET	0x0020	/* meta iifname @set */
#define NFT_DIVERT_HAVE_TIMEOUT_SET	0x0040	/* address sets with timeouts */
#define NFT_DIVERT_HAVE_SOCKET		0x0080	/* socket transparent */
#define NFT_DIVERT_HAVE_TPROXY4		0x0100	/* tproxy ip */
#define NFT_DIVERT_HAVE_TPROXY6		0x0200	/* tproxy ip6 */
#define NFT_DIVERT_HAVE_MARK_SET	0x0400	/* meta mark set */
#define NFT_DIVERT_HAVE_IBRNAME		0x0800	/* meta ibrname: optional */
#define NFT_DIVERT_HAVE_PERSIST		0x1000	/* persist (6.9+): unused */
#define NFT_DIVERT_HAVE_NFQUEUE		0x2000	/* xt NFQUEUE via compat */
#define NFT_DIVERT_NEED			0x07ff

/* Pure: the whole divert as one nf_tables batch (begin, tables with flag
 * owner, sets, chains, rules, end) in buf, which must be aligned for a
 * struct nlmsghdr; sequence numbers run from seq up, one per message.
 * Returns the bytes used, or 0 if conf is invalid or buf too small. */
size_t	nft_divert_build(const struct nft_divert_conf *, char *buf, size_t len,
	    uint32_t seq);
/* Pure: the batch that adds (add=1) or deletes one bypass element: an
 * SMTP client's address (is_source=1) or an SMTP server's, IPv4 or IPv6,
 * timing out after timeout_s seconds (0: never; ignored when deleting).
 * Returns the bytes used, or 0 if addr is no address or its family is not
 * diverted. */
size_t	nft_divert_bypass_build(const struct nft_divert_conf *, int add,
	    int is_source, const char *addr, unsigned timeout_s, char *buf,
	    size_t len, uint32_t seq);

/* Installs (or replaces, atomically) the divert over a netlink socket kept
 * open until nft_divert_remove(): the kernel deletes the tables when that
 * socket closes, whatever ends the process. Every message's ack is checked
 * by sequence number. Returns 0, or -1 with a message in err. */
int	nft_divert_install(const struct nft_divert_conf *, char *err,
	    size_t errlen);
/* Closes the socket: the kernel removes the tables. */
void	nft_divert_remove(void);
/* The socket's descriptor, or -1: a child that must not keep the divert
 * alive after the daemon dies closes it (close_range() does too). */
int	nft_divert_fd(void);
/* Whether bridge table name exists (1, 0; -1: not known). */
int	nft_divert_table_exists(const char *name);

/* The same ruleset in nft syntax, as `nft list table` shows it; `nft -f`
 * takes it (without "flags owner", or nft's exit deletes the tables). */
void	nft_divert_print(const struct nft_divert_conf *, FILE *);

/* Bypass elements, over the installing socket (an owner table accepts
 * changes from no other); both need CAP_NET_ADMIN at the time of the call.
 * A bypassed client (is_source=1) or server is matched in both directions,
 * so both halves of its connections are bridged untouched; connections
 * already diverted break. An install empties the sets. Adding an element
 * again resets its timeout on recent kernels (6.18 does). */
int	nft_divert_bypass(int add, int is_source, const char *addr,
	    unsigned timeout_s, char *err, size_t errlen);
/* One line per element ("source 192.0.2.1 timeout=60 expires=42"); returns
 * how many, or -1 with errno. */
int	nft_divert_bypass_list(FILE *out);

/* Tries each feature the divert needs, each in a throwaway dormant table
 * (its chain never sees a packet) created in one batch and deleted in the
 * next. Writes a report in plain words and returns the NFT_DIVERT_HAVE_*
 * bits found, or -1 (report says why) if it could not ask the kernel. */
int	nft_divert_probe(char *report, size_t len);

/* Fills bridge, bridge_mac, ports and nports from the kernel's view of the
 * bridge named name (rtnetlink). Returns 0, or -1 with a message in err. */
int	nft_divert_read_bridge(struct nft_divert_conf *, const char *name,
	    char *err, size_t errlen);

#endif
