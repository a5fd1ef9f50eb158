/* SPDX-License-Identifier: MIT */
/*
 * Milter replies: the input is what a milter sends back on its socket. It
 * goes through milter_reader in chunks whose sizes come from the input's
 * own hash (as a socket would split it), every packet through
 * milter_reply_parse, every negotiation answer through milter_negotiate
 * against our offer and a smaller one, and every reply through
 * milter_reply_allowed after each command.
 *
 * Invariants:
 *  - the reader hands out exactly the packets of the input, in order, each
 *    the bytes at its place (length field, code, data), whatever the
 *    chunking; it fails exactly at the first length of 0 or above
 *    MILTER_PACKET_MAX and never elsewhere, stays failed, and when it
 *    waits what is left is a piece of one packet; it never takes more
 *    than it has room for, always takes a read of up to MILTER_FEED_MAX
 *    once drained, and a full reader always has a packet;
 *  - a parsed reply's strings lie inside the packet, end at its NUL and
 *    hold none before; header names are printable ASCII without ':';
 *    header values break lines only with (CR)LF + SP/HT and hold no other
 *    control byte but HT; addresses, arguments and reasons hold no control
 *    byte and keep to their limits; reply text is lines of one 4xx/5xx
 *    code, '-' on all but the last, printable ASCII, within the limits;
 *    replies that carry nothing carried nothing; a refused reply has a
 *    printable reason;
 *  - negotiation accepts exactly the answers sendmail and Postfix would
 *    (version 2 to ours, nothing asked beyond the offer, no macro lists
 *    before version 6) and what it keeps is what the milter said, plus
 *    NOUNKNOWN/NODATA for the versions that lack those commands;
 *  - an edit is allowed only after SMFIC_BODYEOB with its action
 *    negotiated, SMFIR_SKIP only after a body chunk with SKIP, nothing
 *    after a command that gets no reply;
 *  - a header value made CRLF for the message has no bare CR or LF.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "milter_proto.h"
#include "fuzz.h"

static const int	cmds[] = {
	SMFIC_OPTNEG, SMFIC_CONNECT, SMFIC_HELO, SMFIC_MAIL, SMFIC_RCPT,
	SMFIC_DATA, SMFIC_HEADER, SMFIC_EOH, SMFIC_BODY, SMFIC_BODYEOB,
	SMFIC_UNKNOWN, SMFIC_MACRO, SMFIC_ABORT, SMFIC_QUIT,
};

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
check_printable(const char *what, const char *s, size_t cap)
{
	size_t	n = strnlen(s, cap), i;

	FUZZ_CHECK(n < cap, "%s not terminated", what);
	for (i = 0; i < n; i++)
		FUZZ_CHECK(s[i] >= 0x20 && s[i] <= 0x7e, "%s byte %zu is 0x%02x",
		    what, i, (unsigned char)s[i]);
}

/* s[0..len) lies inside the packet, ends at a NUL, holds none before. */
static void
check_string(const char *what, const struct milter_packet *pkt,
    const char *s, size_t len)
{
	FUZZ_CHECK(s != NULL, "%s missing", what);
	FUZZ_CHECK(s >= pkt->data && s + len < pkt->data + pkt->len,
	    "%s outside the packet", what);
	FUZZ_CHECK(s[len] == '\0' && memchr(s, '\0', len) == NULL,
	    "%s is not %zu bytes and a NUL", what, len);
}

static void
check_no_ctl(const char *what, const char *s, size_t len, size_t max)
{
	size_t	i;

	FUZZ_CHECK(len <= max, "%s of %zu bytes", what, len);
	for (i = 0; i < len; i++)
		FUZZ_CHECK((unsigned char)s[i] >= 0x20 &&
		    (unsigned char)s[i] != 0x7f, "%s byte %zu is 0x%02x", what,
		    i, (unsigned char)s[i]);
}

static void
check_value(const char *s, size_t len)
{
	struct buf	b;
	size_t		i, bare = 0, where;

	for (i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)s[i];

		if (c == '\r')
			FUZZ_CHECK(i + 1 < len && s[i + 1] == '\n',
			    "value: bare CR at %zu", i);
		else if (c == '\n') {
			FUZZ_CHECK(i + 1 < len && (s[i + 1] == ' ' ||
			    s[i + 1] == '\t'), "value: LF at %zu starts a new "
			    "line", i);
			if (i == 0 || s[i - 1] != '\r')
				bare++;
		} else
			FUZZ_CHECK((c >= 0x20 || c == '\t') && c != 0x7f,
			    "value byte %zu is 0x%02x", i, c);
	}
	/* Made CRLF for the message: one CR more per bare LF, no bare CR
	 * or LF left. */
	buf_init(&b, len * 2 + 16);
	FUZZ_CHECK(milter_header_value_crlf(&b, s, len) == 0, "crlf append");
	FUZZ_CHECK(buf_used(&b) == len + bare, "crlf: %zu bytes from %zu + %zu",
	    buf_used(&b), len, bare);
	FUZZ_CHECK(buf_used(&b) == 0 || fuzz_crlf_only(buf_head(&b),
	    buf_used(&b), &where), "crlf: bare CR or LF at %zu", where);
	buf_free(&b);
}

/* Lines of "DDD-" and a last "DDD ", one code, printable, in the limits. */
static void
check_text(const struct milter_reply *r)
{
	const char	*l = r->text, *end = r->text + r->textlen, *e;
	size_t		 lines = 0, i;

	FUZZ_CHECK(r->textlen <= MILTER_REPLY_TEXT_MAX &&
	    strlen(r->text) == r->textlen, "text length %zu", r->textlen);
	FUZZ_CHECK(r->smtp_code >= 400 && r->smtp_code <= 599, "code %d",
	    r->smtp_code);
	for (;;) {
		for (e = l; e < end && *e != '\r' && *e != '\n'; e++)
			;
		lines++;
		FUZZ_CHECK(e - l >= 4 && e - l <= MILTER_REPLY_LINE_MAX,
		    "line %zu of %td bytes", lines, e - l);
		FUZZ_CHECK(l[0] - '0' == r->smtp_code / 100 &&
		    l[1] - '0' == r->smtp_code / 10 % 10 &&
		    l[2] - '0' == r->smtp_code % 10, "line %zu: another code",
		    lines);
		FUZZ_CHECK(l[3] == (e == end ? ' ' : '-'), "line %zu marked "
		    "'%c'", lines, l[3]);
		for (i = 0; i < (size_t)(e - l); i++)
			FUZZ_CHECK((l[i] >= 0x20 && l[i] <= 0x7e) ||
			    l[i] == '\t', "line %zu byte %zu is 0x%02x", lines,
			    i, (unsigned char)l[i]);
		if (e == end)
			break;
		FUZZ_CHECK(e + 1 < end && e[0] == '\r' && e[1] == '\n',
		    "line %zu not ended by CRLF", lines);
		l = e + 2;
	}
	FUZZ_CHECK(lines <= MILTER_REPLY_LINES_MAX, "%zu lines", lines);
}

static void
check_reply(const struct milter_packet *pkt, int rc,
    const struct milter_reply *r)
{
	size_t	i;
	char	flags[256];

	FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
	FUZZ_CHECK(r->code == pkt->cmd, "code %d for packet %d", r->code,
	    pkt->cmd);
	FUZZ_CHECK(milter_reply_name(pkt->cmd) != NULL, "no name");
	check_printable("error", r->error, sizeof(r->error));
	if (rc == -1) {
		FUZZ_CHECK(r->error[0] != '\0', "refused without a reason");
		return;
	}
	FUZZ_CHECK(r->error[0] == '\0', "accepted with a reason: %s",
	    r->error);
	switch (pkt->cmd) {
	case SMFIR_ACCEPT:
	case SMFIR_CONTINUE:
	case SMFIR_DISCARD:
	case SMFIR_REJECT:
	case SMFIR_TEMPFAIL:
	case SMFIR_PROGRESS:
	case SMFIR_SKIP:
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		FUZZ_CHECK(pkt->len == 0, "%s with data",
		    milter_reply_name(pkt->cmd));
		break;
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		check_string("name", pkt, r->name, r->namelen);
		check_string("value", pkt, r->value, r->valuelen);
		FUZZ_CHECK(r->value == r->name + r->namelen + 1 &&
		    r->value + r->valuelen + 1 == pkt->data + pkt->len,
		    "header fields are not the whole packet");
		FUZZ_CHECK(r->namelen >= 1 &&
		    r->namelen <= MILTER_HDR_NAME_MAX, "name of %zu",
		    r->namelen);
		for (i = 0; i < r->namelen; i++)
			FUZZ_CHECK(r->name[i] > 0x20 && r->name[i] < 0x7f &&
			    r->name[i] != ':', "name byte %zu is 0x%02x", i,
			    (unsigned char)r->name[i]);
		if (pkt->cmd != SMFIR_ADDHEADER)
			FUZZ_CHECK(r->name == pkt->data + 4 &&
			    r->index == get_u32((const uint8_t *)pkt->data),
			    "index");
		else
			FUZZ_CHECK(r->name == pkt->data, "name not first");
		check_value(r->value, r->valuelen);
		break;
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
	case SMFIR_CHGFROM:
	case SMFIR_ADDRCPT_PAR:
		check_string("address", pkt, r->addr, r->addrlen);
		FUZZ_CHECK(r->addr == pkt->data && r->addrlen > 0,
		    "address not first or empty");
		check_no_ctl("address", r->addr, r->addrlen, MILTER_ADDR_MAX);
		if (r->args != NULL) {
			FUZZ_CHECK(pkt->cmd == SMFIR_CHGFROM ||
			    pkt->cmd == SMFIR_ADDRCPT_PAR, "args for %s",
			    milter_reply_name(pkt->cmd));
			check_string("args", pkt, r->args, r->argslen);
			FUZZ_CHECK(r->args + r->argslen + 1 ==
			    pkt->data + pkt->len, "bytes after the args");
			check_no_ctl("args", r->args, r->argslen,
			    MILTER_ARGS_MAX);
		} else
			FUZZ_CHECK(r->addrlen + 1 == pkt->len,
			    "bytes after the address");
		break;
	case SMFIR_QUARANTINE:
		check_string("reason", pkt, r->reason, r->reasonlen);
		FUZZ_CHECK(r->reasonlen + 1 == pkt->len, "bytes after reason");
		check_no_ctl("reason", r->reason, r->reasonlen,
		    MILTER_REASON_MAX);
		break;
	case SMFIR_REPLBODY:
		FUZZ_CHECK(r->body == pkt->data && r->bodylen == pkt->len,
		    "body is not the packet");
		break;
	case SMFIR_REPLYCODE:
		FUZZ_CHECK(pkt->len >= 1 && pkt->data[pkt->len - 1] == '\0' &&
		    memchr(pkt->data, '\0', pkt->len - 1) == NULL,
		    "reply text not one string");
		check_text(r);
		break;
	case SMFIC_OPTNEG:
		FUZZ_CHECK(pkt->len >= MILTER_OPTLEN &&
		    r->version == get_u32((const uint8_t *)pkt->data) &&
		    r->actions == get_u32((const uint8_t *)pkt->data + 4) &&
		    r->protocol == get_u32((const uint8_t *)pkt->data + 8),
		    "negotiation words");
		FUZZ_CHECK((r->symlists >> MILTER_STAGES) == 0, "stages");
		for (i = 0; i < MILTER_STAGES; i++) {
			if ((r->symlists & (1U << i)) == 0)
				continue;
			check_string("macro list", pkt, r->symlist[i],
			    r->symlistlen[i]);
			FUZZ_CHECK(r->symlistlen[i] <= MILTER_SYMLIST_MAX,
			    "list of %zu", r->symlistlen[i]);
			check_no_ctl("macro list", r->symlist[i],
			    r->symlistlen[i], MILTER_SYMLIST_MAX);
		}
		check_printable("actions", milter_actions_str(flags,
		    sizeof(flags), r->actions), sizeof(flags));
		check_printable("protocol", milter_protocol_str(flags,
		    sizeof(flags), r->protocol), sizeof(flags));
		break;
	default:
		FUZZ_CHECK(0, "accepted unknown reply code 0x%02x", pkt->cmd);
	}
}

static void
check_negotiate(const struct milter_offer *o, const struct milter_reply *r,
    struct milter_neg *n)
{
	size_t	total = 0, i;
	int	rc, refuse;

	for (i = 0; i < MILTER_STAGES; i++)
		if (r->symlists & (1U << i))
			total += r->symlistlen[i];
	refuse = r->version < MILTER_VERSION_MIN || r->version > o->version ||
	    (r->actions & ~o->actions) != 0 ||
	    (r->protocol & ~o->protocol) != 0 ||
	    (r->symlists != 0 && r->version < 6) ||
	    total > MILTER_SYMLISTS_MAX;
	rc = milter_negotiate(o, r, n);
	check_printable("negotiation error", n->error, sizeof(n->error));
	FUZZ_CHECK(rc == (refuse ? -1 : 0), "negotiation rc %d, refuse %d "
	    "(%s)", rc, refuse, n->error);
	if (rc == -1) {
		FUZZ_CHECK(n->error[0] != '\0', "refused without a reason");
		return;
	}
	FUZZ_CHECK(n->version == r->version && n->actions == r->actions &&
	    (n->protocol & ~(SMFIP_NOUNKNOWN | SMFIP_NODATA)) ==
	    (r->protocol & ~(SMFIP_NOUNKNOWN | SMFIP_NODATA)) &&
	    (n->protocol & r->protocol) == r->protocol,
	    "kept something else");
	FUZZ_CHECK(((n->protocol & SMFIP_NOUNKNOWN) != 0) ==
	    (n->version <= 2 || (r->protocol & SMFIP_NOUNKNOWN) != 0) &&
	    ((n->protocol & SMFIP_NODATA) != 0) ==
	    (n->version <= 3 || (r->protocol & SMFIP_NODATA) != 0),
	    "old versions' commands");
	FUZZ_CHECK(n->symlists == r->symlists, "lists");
	for (i = 0; i < MILTER_STAGES; i++)
		if (r->symlists & (1U << i))
			FUZZ_CHECK(n->symlen[i] == r->symlistlen[i] &&
			    n->symoff[i] + n->symlen[i] <= sizeof(n->symbuf) &&
			    memcmp(n->symbuf + n->symoff[i], r->symlist[i],
			    r->symlistlen[i]) == 0, "list %zu copied", i);
	(void)milter_neg_wants(n, SMFIM_ENVFROM, "{auth_type}");
	(void)milter_neg_wants(n, SMFIM_CONNECT, "j");
}

/* The NO* flag that keeps a command from being sent, or 0. */
static uint32_t
step_flag(int cmd)
{
	switch (cmd) {
	case SMFIC_CONNECT:
		return SMFIP_NOCONNECT;
	case SMFIC_HELO:
		return SMFIP_NOHELO;
	case SMFIC_MAIL:
		return SMFIP_NOMAIL;
	case SMFIC_RCPT:
		return SMFIP_NORCPT;
	case SMFIC_DATA:
		return SMFIP_NODATA;
	case SMFIC_HEADER:
		return SMFIP_NOHDRS;
	case SMFIC_EOH:
		return SMFIP_NOEOH;
	case SMFIC_BODY:
		return SMFIP_NOBODY;
	case SMFIC_UNKNOWN:
		return SMFIP_NOUNKNOWN;
	default:
		return 0;
	}
}

static void
check_allowed(const struct milter_neg *n, const struct milter_reply *r)
{
	char		why[MILTER_ERROR_MAX];
	size_t		i;
	int		ok, cmd, edit;
	uint32_t	need = 0;

	switch (r->code) {
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
		need = SMFIF_ADDHDRS;
		break;
	case SMFIR_CHGHEADER:
		need = SMFIF_CHGHDRS;
		break;
	case SMFIR_REPLBODY:
		need = SMFIF_CHGBODY;
		break;
	case SMFIR_ADDRCPT:
		need = SMFIF_ADDRCPT;
		break;
	case SMFIR_DELRCPT:
		need = SMFIF_DELRCPT;
		break;
	case SMFIR_CHGFROM:
		need = SMFIF_CHGFROM;
		break;
	case SMFIR_ADDRCPT_PAR:
		need = SMFIF_ADDRCPT_PAR;
		break;
	}
	edit = need != 0;
	/* Edits, progress and quarantine come before the answer, the rest
	 * are it. */
	FUZZ_CHECK(milter_reply_final(r->code) == !(edit ||
	    r->code == SMFIR_PROGRESS || r->code == SMFIR_QUARANTINE),
	    "%s final %d", milter_reply_name(r->code),
	    milter_reply_final(r->code));
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cmd = cmds[i];
		FUZZ_CHECK(milter_neg_sends(n, cmd) == !(n->protocol &
		    step_flag(cmd)), "%s sent with protocol 0x%08x",
		    milter_cmd_name(cmd), n->protocol);
		why[0] = '\0';
		ok = milter_reply_allowed(n, cmd, r, why, sizeof(why));
		check_printable("why", why, sizeof(why));
		FUZZ_CHECK(ok == 0 || ok == 1, "allowed %d", ok);
		if (!ok) {
			FUZZ_CHECK(why[0] != '\0', "not allowed, no reason");
			continue;
		}
		FUZZ_CHECK((cmd == SMFIC_OPTNEG) == (r->code == SMFIC_OPTNEG),
		    "%s answers %s", milter_reply_name(r->code),
		    milter_cmd_name(cmd));
		FUZZ_CHECK(milter_neg_replies(n, cmd), "a reply to %s, which "
		    "gets none", milter_cmd_name(cmd));
		if (edit)
			FUZZ_CHECK(cmd == SMFIC_BODYEOB &&
			    (n->actions & need) != 0, "edit %s after %s",
			    milter_reply_name(r->code), milter_cmd_name(cmd));
		if (r->code == SMFIR_SKIP)
			FUZZ_CHECK(cmd == SMFIC_BODY &&
			    (n->protocol & SMFIP_SKIP), "skip after %s",
			    milter_cmd_name(cmd));
		if (r->code == SMFIR_DISCARD)
			FUZZ_CHECK(cmd != SMFIC_CONNECT && cmd != SMFIC_HELO,
			    "discard after %s", milter_cmd_name(cmd));
		if (r->code == SMFIR_QUARANTINE)
			FUZZ_CHECK(n->actions & SMFIF_QUARANTINE,
			    "quarantine not negotiated");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct milter_reply	r;
	static struct milter_neg	n, n2;
	struct milter_reader		rd;
	struct milter_packet		pkt;
	struct milter_offer		o, small;
	uint64_t			seed = fuzz_hash(data, size);
	size_t				fed = 0, pos = 0, chunk, took;
	uint32_t			len;
	int				rc = 0, prc, failed = 0;

	milter_offer_default(&o);
	/* A smaller offer, from the input, to see refusals. */
	small.version = 2 + (uint32_t)(fuzz_rand(&seed) % 5);
	small.actions = (uint32_t)fuzz_rand(&seed) & SMFI_CURR_ACTS;
	small.protocol = (uint32_t)fuzz_rand(&seed) & SMFI_CURR_PROT;
	/* Until the milter negotiates: everything, as if it had asked. */
	memset(&n, 0, sizeof(n));
	n.version = 6;
	n.actions = SMFI_CURR_ACTS;
	n.protocol = (uint32_t)fuzz_rand(&seed) & SMFI_CURR_PROT;

	milter_reader_init(&rd);
	while (!failed) {
		/* Mostly small reads, sometimes a big one, as sockets do. */
		chunk = fuzz_rand(&seed) % 8 == 0 ? 1 + fuzz_rand(&seed) % 8192 :
		    1 + fuzz_rand(&seed) % 16;
		if (chunk > size - fed)
			chunk = size - fed;
		took = milter_reader_feed(&rd, data + fed, chunk);
		FUZZ_CHECK(took <= chunk, "took %zu of %zu", took, chunk);
		/* Every feed follows a drain: a read's worth always fits. */
		FUZZ_CHECK(took == chunk || (chunk > MILTER_FEED_MAX &&
		    buf_room(&rd.in) == 0), "took %zu of %zu with room %zu",
		    took, chunk, buf_room(&rd.in));
		fed += took;
		while ((rc = milter_reader_next(&rd, &pkt)) == 1) {
			/* The packet is the input's bytes at pos. */
			FUZZ_CHECK(size - pos >= 5, "a packet from nothing");
			len = get_u32(data + pos);
			FUZZ_CHECK(len >= 1 && len <= MILTER_PACKET_MAX &&
			    pkt.len == len - 1 && pos + 4 + len <= fed,
			    "packet length %zu, field %u", pkt.len, len);
			FUZZ_CHECK(pkt.cmd == data[pos + 4] &&
			    memcmp(pkt.data, data + pos + 5, pkt.len) == 0,
			    "packet at %zu is not the input", pos);
			pos += 4 + (size_t)len;
			prc = milter_reply_parse(&pkt, &r);
			check_reply(&pkt, prc, &r);
			if (prc == 0 && r.code == SMFIC_OPTNEG) {
				check_negotiate(&small, &r, &n2);
				check_negotiate(&o, &r, &n2);
				if (n2.error[0] == '\0')
					n = n2;
			}
			if (prc == 0)
				check_allowed(&n, &r);
		}
		if (rc == -1) {
			/* Exactly at a bad length, once it was all there. */
			FUZZ_CHECK(fed - pos >= 4, "failed on %zu bytes",
			    fed - pos);
			len = get_u32(data + pos);
			FUZZ_CHECK(len == 0 || len > MILTER_PACKET_MAX,
			    "failed on length %u: %s", len, rd.error);
			check_printable("reader error", rd.error,
			    sizeof(rd.error));
			FUZZ_CHECK(rd.error[0] != '\0', "no reason");
			FUZZ_CHECK(milter_reader_next(&rd, &pkt) == -1 &&
			    milter_reader_feed(&rd, "x", 1) == 0,
			    "failure not sticky");
			failed = 1;
			break;
		}
		/* Waiting: what is left is part of one good packet, and a
		 * reader with no room left would have had one. */
		FUZZ_CHECK(buf_room(&rd.in) > 0, "full and waiting");
		if (fed - pos >= 4) {
			len = get_u32(data + pos);
			FUZZ_CHECK(len >= 1 && len <= MILTER_PACKET_MAX &&
			    fed - pos < 4 + (size_t)len, "waiting on a "
			    "complete or bad packet at %zu", pos);
		}
		FUZZ_CHECK(buf_used(&rd.in) == fed - pos, "holds %zu, not %zu",
		    buf_used(&rd.in), fed - pos);
		if (fed == size)
			break;
	}
	milter_reader_free(&rd);
	return 0;
}
