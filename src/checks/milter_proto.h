/* SPDX-License-Identifier: MIT */
#ifndef SPORK_MILTER_PROTO_H
#define SPORK_MILTER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * The MTA side of the Sendmail milter protocol, version 6, as bytes: the
 * commands sporkd sends a milter, the framing of what comes back, the
 * parsing of each reply and the option negotiation. No sockets, no state
 * machine: the session that hosts milters owns those.
 *
 * Every constant below is the value in sendmail 8.17's libmilter/mfdef.h
 * and libmilter/mfapi.h, the protocol's only specification; the names are
 * kept so that a log line or a packet dump can be read against them. We
 * define them ourselves rather than include those headers so that building
 * spork does not need libmilter-dev (Postfix does the same).
 *
 * On the wire every packet is a 4-byte big-endian length that counts the
 * command byte and the data, the command byte, then the data.
 */

/* What we speak (SMFI_PROT_VERSION), and the oldest answer we take:
 * libmilter's own floor (SMFI_PROT_VERSION_MIN in engine.c). */
#define MILTER_VERSION		6
#define MILTER_VERSION_MIN	2
#define MILTER_LEN_BYTES	4	/* the length field */
#define MILTER_OPTLEN		12	/* version, actions, protocol */
#define MILTER_CHUNK_SIZE	65535	/* body bytes per SMFIC_BODY */

/*
 * The most data we put in one packet. libmilter refuses a command whose
 * data exceeds its MILTER_MAX_DATA_SIZE (65535) unless the MTA offered
 * SMFIP_MDS_256K or SMFIP_MDS_1M, which we never do: body chunks stay at
 * MILTER_CHUNK_SIZE and any other command that would not fit is refused
 * by its encoder (EMSGSIZE) instead of killing the milter's session.
 */
#define MILTER_SEND_MAX		65535

/*
 * The largest length field we accept from a milter (command byte
 * included), so 1 MiB of data. libmilter sends a replaced body in
 * MILTER_CHUNK_SIZE pieces and its largest negotiable packet is
 * MILTER_MDS_1M (1 MiB - 1); other implementations (rspamd's milter, the
 * Go and Python libraries) stay below that. A larger length is a broken or
 * hostile milter, and refusing it bounds what one milter connection can
 * make us hold.
 */
#define MILTER_PACKET_MAX	((1U << 20) + 1)

/*
 * Room the reader keeps beyond one largest packet, so that a feed of up to
 * this many bytes (one socket read) always fits once every whole packet
 * has been taken out: what is left then is less than one packet.
 */
#define MILTER_FEED_MAX		65536

/*
 * Limits on what a reply may carry, and why:
 *  REPLY_TEXT_MAX	SMFIR_REPLYCODE text, all lines; real ones are a
 *			line or three
 *  REPLY_LINE_MAX	one line without CRLF: RFC 5321 4.5.3.1.5 says 512
 *			with it
 *  REPLY_LINES_MAX	smfi_setmlreply's own limit
 *  HDR_NAME_MAX	sendmail's MAXNAME; real names are under 80
 *  ADDR_MAX		a path, RFC 5321 4.5.3.1.3
 *  ARGS_MAX		ESMTP parameters: a command line is 512 plus what
 *			extensions add
 *  REASON_MAX		a quarantine reason, a log value
 *  SYMLIST_MAX		one stage's macro name list
 *  SYMLISTS_MAX	all stages' lists, kept per milter connection
 *  MACROS_MAX		names per stage: sendmail's MAXFILTERMACROS
 *  ERROR_MAX		a reason, for a log line
 */
#define MILTER_REPLY_TEXT_MAX	4096
#define MILTER_REPLY_LINE_MAX	510
#define MILTER_REPLY_LINES_MAX	32
#define MILTER_HDR_NAME_MAX	256
#define MILTER_ADDR_MAX		256
#define MILTER_ARGS_MAX		1024
#define MILTER_REASON_MAX	1024
#define MILTER_SYMLIST_MAX	1024
#define MILTER_SYMLISTS_MAX	2048
#define MILTER_MACROS_MAX	50
#define MILTER_ERROR_MAX	192

/* Address families in SMFIC_CONNECT. */
#define SMFIA_UNKNOWN		'U'
#define SMFIA_UNIX		'L'
#define SMFIA_INET		'4'
#define SMFIA_INET6		'6'

/* Commands, MTA to milter. */
#define SMFIC_ABORT		'A'
#define SMFIC_BODY		'B'
#define SMFIC_CONNECT		'C'
#define SMFIC_MACRO		'D'
#define SMFIC_BODYEOB		'E'
#define SMFIC_HELO		'H'
#define SMFIC_QUIT_NC		'K'
#define SMFIC_HEADER		'L'
#define SMFIC_MAIL		'M'
#define SMFIC_EOH		'N'
#define SMFIC_OPTNEG		'O'	/* also its answer's code */
#define SMFIC_QUIT		'Q'
#define SMFIC_RCPT		'R'
#define SMFIC_DATA		'T'
#define SMFIC_UNKNOWN		'U'

/* Replies, milter to MTA. */
#define SMFIR_ADDRCPT		'+'
#define SMFIR_DELRCPT		'-'
#define SMFIR_ADDRCPT_PAR	'2'
#define SMFIR_SHUTDOWN		'4'
#define SMFIR_ACCEPT		'a'
#define SMFIR_REPLBODY		'b'
#define SMFIR_CONTINUE		'c'
#define SMFIR_DISCARD		'd'
#define SMFIR_CHGFROM		'e'
#define SMFIR_CONN_FAIL		'f'
#define SMFIR_ADDHEADER		'h'
#define SMFIR_INSHEADER		'i'
#define SMFIR_SETSYMLIST	'l'	/* named only: the lists come in
					 * the SMFIC_OPTNEG answer */
#define SMFIR_CHGHEADER		'm'
#define SMFIR_PROGRESS		'p'
#define SMFIR_QUARANTINE	'q'
#define SMFIR_REJECT		'r'
#define SMFIR_SKIP		's'
#define SMFIR_TEMPFAIL		't'
#define SMFIR_REPLYCODE		'y'

/* Actions the milter may ask for (SMFIF_*, mfapi.h). */
#define SMFIF_ADDHDRS		0x00000001U	/* add, insert */
#define SMFIF_CHGBODY		0x00000002U	/* replace the body */
#define SMFIF_ADDRCPT		0x00000004U
#define SMFIF_DELRCPT		0x00000008U
#define SMFIF_CHGHDRS		0x00000010U	/* change, delete */
#define SMFIF_QUARANTINE	0x00000020U
#define SMFIF_CHGFROM		0x00000040U
#define SMFIF_ADDRCPT_PAR	0x00000080U	/* ADDRCPT with args */
#define SMFIF_SETSYMLIST	0x00000100U	/* choose macros per stage */
#define SMFI_V2_ACTS		0x0000003FU
#define SMFI_CURR_ACTS		0x000001FFU

/*
 * Protocol flags (SMFIP_*). Three kinds share the word: steps the milter
 * does not want (NO*), replies it will not send (NR_*), and extras (SKIP,
 * RCPT_REJ, HDR_LEADSPC). The MTA offers, the milter picks a subset.
 */
#define SMFIP_NOCONNECT		0x00000001U
#define SMFIP_NOHELO		0x00000002U
#define SMFIP_NOMAIL		0x00000004U
#define SMFIP_NORCPT		0x00000008U
#define SMFIP_NOBODY		0x00000010U
#define SMFIP_NOHDRS		0x00000020U
#define SMFIP_NOEOH		0x00000040U
#define SMFIP_NR_HDR		0x00000080U
#define SMFIP_NOUNKNOWN		0x00000100U
#define SMFIP_NODATA		0x00000200U
#define SMFIP_SKIP		0x00000400U	/* MTA takes SMFIR_SKIP */
#define SMFIP_RCPT_REJ		0x00000800U	/* refused RCPTs */
#define SMFIP_NR_CONN		0x00001000U
#define SMFIP_NR_HELO		0x00002000U
#define SMFIP_NR_MAIL		0x00004000U
#define SMFIP_NR_RCPT		0x00008000U
#define SMFIP_NR_DATA		0x00010000U
#define SMFIP_NR_UNKN		0x00020000U
#define SMFIP_NR_EOH		0x00040000U
#define SMFIP_NR_BODY		0x00080000U
#define SMFIP_HDR_LEADSPC	0x00100000U	/* values keep their leading
						 * space; we add none */
#define SMFIP_MDS_256K		0x10000000U	/* never offered */
#define SMFIP_MDS_1M		0x20000000U	/* never offered */
#define SMFI_V2_PROT		0x0000007FU
#define SMFI_CURR_PROT		0x001FFFFFU

/* Stages a milter may ask macros for (SMFIM_*), in SMFIR_SETSYMLIST. */
#define SMFIM_CONNECT		0
#define SMFIM_HELO		1
#define SMFIM_ENVFROM		2
#define SMFIM_ENVRCPT		3
#define SMFIM_DATA		4
#define SMFIM_EOM		5
#define SMFIM_EOH		6
#define MILTER_STAGES		7

/*
 * What sporkd offers every milter: every action and every protocol flag
 * of version 6. The session hosting milters must honour whatever subset
 * milter_negotiate() returns (skip the NO* steps, wait for no reply after
 * NR_* steps, stop body chunks after SMFIR_SKIP, send rejected RCPTs for
 * RCPT_REJ, keep header values as they are for HDR_LEADSPC).
 */
#define MILTER_OFFER_ACTIONS	SMFI_CURR_ACTS
#define MILTER_OFFER_PROTOCOL	SMFI_CURR_PROT

/* ---- encoders ---- */

/* One macro for SMFIC_MACRO: a one-letter name ("i") or "{long_name}". */
struct milter_macro {
	const char	*name;
	const char	*value;
};

/*
 * Each appends whole packets to the buffer or nothing: 0, or -1 with errno
 * ENOBUFS (the buffer's maximum), EMSGSIZE (data above MILTER_SEND_MAX),
 * EINVAL (a bad argument) or ENOMEM. Strings are C strings and go out
 * NUL-terminated, as the protocol wants.
 */
int	milter_put_optneg(struct buf *, uint32_t version, uint32_t actions,
	    uint32_t protocol);
/* The macros that go before command cmd (SMFIC_CONNECT, SMFIC_MAIL...). */
int	milter_put_macros(struct buf *, int cmd, const struct milter_macro *,
	    size_t n);
/* SMFIA_INET, SMFIA_INET6, SMFIA_UNIX (port ignored, sent as 0) or
 * SMFIA_UNKNOWN (port and address are not sent at all). */
int	milter_put_connect(struct buf *, const char *hostname, int family,
	    uint16_t port, const char *address);
int	milter_put_helo(struct buf *, const char *name);
/* The path as the client gave it ("<a@b>"), then each ESMTP parameter. */
int	milter_put_mail(struct buf *, const char *sender,
	    const char *const *args, size_t nargs);
int	milter_put_rcpt(struct buf *, const char *rcpt,
	    const char *const *args, size_t nargs);
int	milter_put_data(struct buf *);
/* Name without the colon; the value as the milter should see it. */
int	milter_put_header(struct buf *, const char *name, const char *value);
int	milter_put_eoh(struct buf *);
/* As many SMFIC_BODY packets of at most MILTER_CHUNK_SIZE as it takes;
 * nothing for an empty body. */
int	milter_put_body(struct buf *, const void *, size_t);
int	milter_put_eob(struct buf *);
int	milter_put_abort(struct buf *);
int	milter_put_quit(struct buf *);
int	milter_put_quit_nc(struct buf *);
int	milter_put_unknown(struct buf *, const char *line);

/* ---- framing ---- */

/* One packet, pointing into the reader's buffer. */
struct milter_packet {
	int		 cmd;		/* the code byte, 0..255 */
	const char	*data;
	size_t		 len;		/* data, not the code */
};

/*
 * Bytes from the milter's socket, split anywhere, made into packets. The
 * caller may read the socket straight into `in' (buf_read_fd), which like
 * any call on the reader ends the life of the packet handed out last; the
 * buffer holds at most one largest packet, its length field and
 * MILTER_FEED_MAX bytes more.
 */
struct milter_reader {
	struct buf	 in;
	size_t		 taken;		/* the packet handed out */
	int		 failed;
	char		 error[MILTER_ERROR_MAX];
};

void	milter_reader_init(struct milter_reader *);
void	milter_reader_free(struct milter_reader *);
/* Takes what fits and says how much; 0 for a full reader (take a packet
 * out first) or a failed one. Up to MILTER_FEED_MAX bytes always fit
 * after milter_reader_next() has returned 0. */
size_t	milter_reader_feed(struct milter_reader *, const void *, size_t);
/*
 * 1: a whole packet in *pkt, valid until the next call on this reader;
 * 0: not yet; -1: a length of 0 or above MILTER_PACKET_MAX, with the
 * reason in r->error. After -1 the stream is lost and stays failed.
 */
int	milter_reader_next(struct milter_reader *, struct milter_packet *);

/* ---- replies ---- */

/*
 * A reply, checked strictly: every string NUL-terminated inside the packet
 * with nothing after the last field; pointers go into the packet and are
 * valid as long as it is. Which fields a code fills:
 *
 *  SMFIC_OPTNEG	version, actions, protocol; symlist[stage] for the
 *			stages the milter chose macros for (symlists bit set)
 *  SMFIR_ADDHEADER	name, value
 *  SMFIR_INSHEADER	index (0: above the first header), name, value
 *  SMFIR_CHGHEADER	index (1: first header of that name; 0 means 1 to
 *			sendmail and Postfix), name, value ("" deletes)
 *  SMFIR_ADDRCPT, SMFIR_DELRCPT	addr
 *  SMFIR_CHGFROM, SMFIR_ADDRCPT_PAR	addr, args (NULL when absent)
 *  SMFIR_QUARANTINE	reason (may be "")
 *  SMFIR_REPLBODY	body (any bytes, a piece of the new body)
 *  SMFIR_REPLYCODE	smtp_code (the first line's), text: the SMTP reply
 *			without its final CRLF, lines joined by CRLF, "%%"
 *			made "%" (libmilter's printf convention)
 *  the rest		nothing: they carry no data
 *
 * Header names are printable ASCII without ':'; header values may be
 * folded with LF or CRLF followed by SP or HT (libmilter documents the
 * bare LF form), nothing else below 0x20 but HT; addresses, arguments
 * and reasons hold no control characters; reply text is printable ASCII.
 */
struct milter_reply {
	int		 code;
	uint32_t	 version;
	uint32_t	 actions;
	uint32_t	 protocol;
	uint32_t	 symlists;		/* bit (1 << stage) */
	const char	*symlist[MILTER_STAGES];
	size_t		 symlistlen[MILTER_STAGES];
	uint32_t	 index;
	const char	*name;
	size_t		 namelen;
	const char	*value;
	size_t		 valuelen;
	const char	*addr;
	size_t		 addrlen;
	const char	*args;
	size_t		 argslen;
	const char	*reason;
	size_t		 reasonlen;
	const char	*body;
	size_t		 bodylen;
	int		 smtp_code;
	size_t		 textlen;
	char		 text[MILTER_REPLY_TEXT_MAX + 1];
	char		 error[MILTER_ERROR_MAX];
};

/* 0, or -1 with the reason in r->error. */
int	milter_reply_parse(const struct milter_packet *,
	    struct milter_reply *);

/* 1 when the reply ends the wait for an answer to a command; 0 for those
 * that come before the answer (edits, SMFIR_PROGRESS, SMFIR_QUARANTINE). */
int	milter_reply_final(int code);

/*
 * Append a header value with each fold made CRLF, ready to go into the
 * message after "Name:" (and after the space we add unless
 * SMFIP_HDR_LEADSPC was negotiated). The value must have passed
 * milter_reply_parse. 0 or -1 (ENOBUFS, ENOMEM).
 */
int	milter_header_value_crlf(struct buf *, const char *, size_t);

/* ---- negotiation ---- */

struct milter_offer {
	uint32_t	 version;
	uint32_t	 actions;
	uint32_t	 protocol;
};

/* What was agreed with one milter; the macro lists are copied in. */
struct milter_neg {
	uint32_t	 version;
	uint32_t	 actions;
	/* The milter's flags, plus SMFIP_NOUNKNOWN for version 2 and
	 * SMFIP_NODATA for versions 2 and 3: commands it does not know. */
	uint32_t	 protocol;
	uint32_t	 symlists;		/* bit (1 << stage) */
	uint16_t	 symoff[MILTER_STAGES];
	uint16_t	 symlen[MILTER_STAGES];
	char		 symbuf[MILTER_SYMLISTS_MAX];
	char		 error[MILTER_ERROR_MAX];
};

/* Version 6, MILTER_OFFER_ACTIONS, MILTER_OFFER_PROTOCOL. */
void	milter_offer_default(struct milter_offer *);
/* The option negotiation packet for an offer. */
int	milter_put_offer(struct buf *, const struct milter_offer *);

/*
 * The milter's SMFIC_OPTNEG answer against our offer, as sendmail and
 * Postfix judge it: 0, or -1 with the reason in n->error when it is not
 * an SMFIC_OPTNEG, its version is below MILTER_VERSION_MIN or above ours,
 * it asks for an action or a protocol flag we did not offer, or it sends
 * macro lists from a version before 6 (which has none).
 */
int	milter_negotiate(const struct milter_offer *,
	    const struct milter_reply *, struct milter_neg *);

/* 1 when command cmd is to be sent at all (the NO* flags). */
int	milter_neg_sends(const struct milter_neg *, int cmd);
/* 1 when the milter answers command cmd (never for SMFIC_MACRO,
 * SMFIC_ABORT, SMFIC_QUIT, SMFIC_QUIT_NC; not for NR_* steps). */
int	milter_neg_replies(const struct milter_neg *, int cmd);
/*
 * Whether macro `name' goes to the milter at `stage': 1 it asked for it,
 * 0 it chose a list without it, -1 it chose no list for that stage (send
 * ours). "x" and "{x}" are the same name.
 */
int	milter_neg_wants(const struct milter_neg *, int stage,
	    const char *name);
/* The stage whose macros go before command cmd, or -1. */
int	milter_stage_of(int cmd);

/*
 * Whether reply r may answer command cmd under n: edits only after
 * SMFIC_BODYEOB and only those negotiated, SMFIR_SKIP only after
 * SMFIC_BODY with SMFIP_SKIP, SMFIR_DISCARD not after SMFIC_CONNECT or
 * SMFIC_HELO, SMFIC_OPTNEG only after SMFIC_OPTNEG, nothing after a
 * command the milter does not answer. 1, or 0 with the reason in why.
 */
int	milter_reply_allowed(const struct milter_neg *, int cmd,
	    const struct milter_reply *, char *why, size_t whylen);

/* ---- names, for log lines ---- */

/* "SMFIC_CONNECT", "SMFIR_ACCEPT", "SMFIM_EOH"; "?" for no such code. */
const char	*milter_cmd_name(int);
const char	*milter_reply_name(int);
const char	*milter_stage_name(int);
/* "ADDHDRS,CHGFROM", "NOHELO,NR_HDR,0x40000000", "-" for none; dst. */
char		*milter_actions_str(char *dst, size_t, uint32_t);
char		*milter_protocol_str(char *dst, size_t, uint32_t);

#endif
