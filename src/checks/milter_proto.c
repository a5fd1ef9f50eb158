/* SPDX-License-Identifier: MIT */
/*
 * The MTA side of the Sendmail milter protocol (version 6) as bytes: the
 * commands sporkd sends, the framing of the milter's stream, the parsing
 * of every reply, the option negotiation and what it implies (which
 * commands go out, which get an answer, which replies may answer them).
 * Knows nothing about sockets, sessions or policy. Trusts nothing a milter
 * sends: a packet is well-formed to the last byte or it is an error with
 * a reason, never a guess; nothing read from a milter that will reach an
 * SMTP peer (reply text, headers, addresses) can carry a line break other
 * than a header fold. Written from mfdef.h/mfapi.h and the behaviour of
 * sendmail's and Postfix's MTA sides, which are the protocol in practice.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "milter_proto.h"

#define MILTER_HEAD	(MILTER_LEN_BYTES + 1)	/* length + code */

/* A piece of a packet's data. */
struct milter_part {
	const void	*p;
	size_t		 len;
};

static int	milter_fail_errno(struct buf *, size_t, int);
static int	milter_packet(struct buf *, int, const struct milter_part *,
		    size_t);
static int	milter_envelope(struct buf *, int, const char *,
		    const char *const *, size_t);
static void	milter_put_u32(unsigned char *, uint32_t);
static uint32_t	milter_get_u32(const char *);
static void	milter_reader_drop(struct milter_reader *);
static int	milter_reader_fail(struct milter_reader *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	milter_err(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static const char *milter_byte(char *, size_t, int);
static int	milter_string(const char *, size_t, size_t *);
static int	milter_fields(struct milter_reply *,
		    const struct milter_packet *, size_t, int, int,
		    const char **, size_t *);
static int	milter_check_name(struct milter_reply *, const char *,
		    size_t);
static int	milter_check_value(struct milter_reply *, const char *,
		    size_t);
static int	milter_check_text(struct milter_reply *, const char *,
		    const char *, size_t, size_t);
static int	milter_check_symlist(struct milter_reply *, int, const char *,
		    size_t);
static int	milter_enhanced(const char *, size_t, char);
static int	milter_replycode(struct milter_reply *, const char *, size_t);
static int	milter_optneg(struct milter_reply *,
		    const struct milter_packet *);
static int	milter_header(struct milter_reply *,
		    const struct milter_packet *);
static int	milter_envelope_edit(struct milter_reply *,
		    const struct milter_packet *);
static int	milter_edit(int, uint32_t *, const char **);
static int	milter_name_eq(const char *, size_t, const char *);
static char	*milter_flags_str(char *, size_t, uint32_t,
		    const char *const *, size_t);

/* ---- names ---- */

static const struct {
	int		 code;
	const char	*name;
} milter_cmds[] = {
	{ SMFIC_ABORT,		"SMFIC_ABORT" },
	{ SMFIC_BODY,		"SMFIC_BODY" },
	{ SMFIC_CONNECT,	"SMFIC_CONNECT" },
	{ SMFIC_MACRO,		"SMFIC_MACRO" },
	{ SMFIC_BODYEOB,	"SMFIC_BODYEOB" },
	{ SMFIC_HELO,		"SMFIC_HELO" },
	{ SMFIC_QUIT_NC,	"SMFIC_QUIT_NC" },
	{ SMFIC_HEADER,		"SMFIC_HEADER" },
	{ SMFIC_MAIL,		"SMFIC_MAIL" },
	{ SMFIC_EOH,		"SMFIC_EOH" },
	{ SMFIC_OPTNEG,		"SMFIC_OPTNEG" },
	{ SMFIC_QUIT,		"SMFIC_QUIT" },
	{ SMFIC_RCPT,		"SMFIC_RCPT" },
	{ SMFIC_DATA,		"SMFIC_DATA" },
	{ SMFIC_UNKNOWN,	"SMFIC_UNKNOWN" },
}, milter_replies[] = {
	{ SMFIR_ADDRCPT,	"SMFIR_ADDRCPT" },
	{ SMFIR_DELRCPT,	"SMFIR_DELRCPT" },
	{ SMFIR_ADDRCPT_PAR,	"SMFIR_ADDRCPT_PAR" },
	{ SMFIR_SHUTDOWN,	"SMFIR_SHUTDOWN" },
	{ SMFIR_ACCEPT,		"SMFIR_ACCEPT" },
	{ SMFIR_REPLBODY,	"SMFIR_REPLBODY" },
	{ SMFIR_CONTINUE,	"SMFIR_CONTINUE" },
	{ SMFIR_DISCARD,	"SMFIR_DISCARD" },
	{ SMFIR_CHGFROM,	"SMFIR_CHGFROM" },
	{ SMFIR_CONN_FAIL,	"SMFIR_CONN_FAIL" },
	{ SMFIR_ADDHEADER,	"SMFIR_ADDHEADER" },
	{ SMFIR_INSHEADER,	"SMFIR_INSHEADER" },
	{ SMFIR_SETSYMLIST,	"SMFIR_SETSYMLIST" },
	{ SMFIR_CHGHEADER,	"SMFIR_CHGHEADER" },
	{ SMFIR_PROGRESS,	"SMFIR_PROGRESS" },
	{ SMFIR_QUARANTINE,	"SMFIR_QUARANTINE" },
	{ SMFIR_REJECT,		"SMFIR_REJECT" },
	{ SMFIR_SKIP,		"SMFIR_SKIP" },
	{ SMFIR_TEMPFAIL,	"SMFIR_TEMPFAIL" },
	{ SMFIR_REPLYCODE,	"SMFIR_REPLYCODE" },
	/* The negotiation answer carries the command's code. */
	{ SMFIC_OPTNEG,		"SMFIC_OPTNEG" },
};

static const char *const milter_stages[MILTER_STAGES] = {
	"SMFIM_CONNECT", "SMFIM_HELO", "SMFIM_ENVFROM", "SMFIM_ENVRCPT",
	"SMFIM_DATA", "SMFIM_EOM", "SMFIM_EOH",
};

/* Bit i of the word is named [i]. */
static const char *const milter_action_names[] = {
	"ADDHDRS", "CHGBODY", "ADDRCPT", "DELRCPT", "CHGHDRS", "QUARANTINE",
	"CHGFROM", "ADDRCPT_PAR", "SETSYMLIST",
};
static const char *const milter_protocol_names[] = {
	"NOCONNECT", "NOHELO", "NOMAIL", "NORCPT", "NOBODY", "NOHDRS",
	"NOEOH", "NR_HDR", "NOUNKNOWN", "NODATA", "SKIP", "RCPT_REJ",
	"NR_CONN", "NR_HELO", "NR_MAIL", "NR_RCPT", "NR_DATA", "NR_UNKN",
	"NR_EOH", "NR_BODY", "HDR_LEADSPC",
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

const char *
milter_cmd_name(int code)
{
	size_t	i;

	for (i = 0; i < NELEM(milter_cmds); i++)
		if (milter_cmds[i].code == code)
			return milter_cmds[i].name;
	return "?";
}

const char *
milter_reply_name(int code)
{
	size_t	i;

	for (i = 0; i < NELEM(milter_replies); i++)
		if (milter_replies[i].code == code)
			return milter_replies[i].name;
	return "?";
}

const char *
milter_stage_name(int stage)
{
	if (stage < 0 || stage >= MILTER_STAGES)
		return "?";
	return milter_stages[stage];
}

static char *
milter_flags_str(char *dst, size_t dstlen, uint32_t mask,
    const char *const *names, size_t nnames)
{
	uint32_t	 unknown = 0;
	size_t		 i, o = 0;
	int		 n;

	if (dstlen == 0)
		return dst;
	dst[0] = '\0';
	for (i = 0; i < 32; i++) {
		if ((mask & (1U << i)) == 0)
			continue;
		if (i >= nnames) {
			unknown |= 1U << i;
			continue;
		}
		n = snprintf(dst + o, dstlen - o, "%s%s", o ? "," : "",
		    names[i]);
		if (n < 0 || (size_t)n >= dstlen - o)
			return dst;	/* cut short: still a C string */
		o += (size_t)n;
	}
	if (unknown != 0) {
		n = snprintf(dst + o, dstlen - o, "%s0x%08x", o ? "," : "",
		    unknown);
		if (n > 0 && (size_t)n < dstlen - o)
			o += (size_t)n;
	}
	if (o == 0)
		snprintf(dst, dstlen, "-");
	return dst;
}

char *
milter_actions_str(char *dst, size_t dstlen, uint32_t mask)
{
	return milter_flags_str(dst, dstlen, mask, milter_action_names,
	    NELEM(milter_action_names));
}

char *
milter_protocol_str(char *dst, size_t dstlen, uint32_t mask)
{
	return milter_flags_str(dst, dstlen, mask, milter_protocol_names,
	    NELEM(milter_protocol_names));
}

/* ---- encoders ---- */

static void
milter_put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/*
 * Undo a half-written packet: a milter that reads a length and gets fewer
 * bytes is out of step for the rest of the connection. Appends only ever
 * add at the tail (compaction keeps the bytes before it), so the old
 * content ends `used' bytes after the head.
 */
static int
milter_fail_errno(struct buf *b, size_t used, int e)
{
	if (buf_used(b) > used)
		b->len = b->off + used;
	errno = e;
	return -1;
}

/* One packet from its pieces, all of it or nothing. */
static int
milter_packet(struct buf *b, int cmd, const struct milter_part *parts,
    size_t nparts)
{
	unsigned char	 head[MILTER_HEAD];
	size_t		 i, len = 0, used = buf_used(b);

	for (i = 0; i < nparts; i++)
		len += parts[i].len;
	if (len > MILTER_SEND_MAX)
		return milter_fail_errno(b, used, EMSGSIZE);
	if (buf_room(b) < MILTER_HEAD + len)
		return milter_fail_errno(b, used, ENOBUFS);
	milter_put_u32(head, (uint32_t)len + 1);
	head[MILTER_LEN_BYTES] = (unsigned char)cmd;
	if (buf_append(b, head, sizeof(head)) == -1)
		return milter_fail_errno(b, used, errno);
	for (i = 0; i < nparts; i++)
		if (buf_append(b, parts[i].p, parts[i].len) == -1)
			return milter_fail_errno(b, used, errno);
	return 0;
}

int
milter_put_optneg(struct buf *b, uint32_t version, uint32_t actions,
    uint32_t protocol)
{
	unsigned char		data[MILTER_OPTLEN];
	struct milter_part	part = { data, sizeof(data) };

	milter_put_u32(data, version);
	milter_put_u32(data + 4, actions);
	milter_put_u32(data + 8, protocol);
	return milter_packet(b, SMFIC_OPTNEG, &part, 1);
}

int
milter_put_macros(struct buf *b, int cmd, const struct milter_macro *m,
    size_t n)
{
	unsigned char	 c = (unsigned char)cmd;
	unsigned char	 head[MILTER_HEAD];
	size_t		 i, len = 1, used = buf_used(b);

	for (i = 0; i < n; i++) {
		if (m[i].name == NULL || m[i].name[0] == '\0' ||
		    m[i].value == NULL)
			return milter_fail_errno(b, used, EINVAL);
		len += strlen(m[i].name) + 1 + strlen(m[i].value) + 1;
		if (len > MILTER_SEND_MAX)
			return milter_fail_errno(b, used, EMSGSIZE);
	}
	if (buf_room(b) < MILTER_HEAD + len)
		return milter_fail_errno(b, used, ENOBUFS);
	milter_put_u32(head, (uint32_t)len + 1);
	head[MILTER_LEN_BYTES] = SMFIC_MACRO;
	if (buf_append(b, head, sizeof(head)) == -1 ||
	    buf_append(b, &c, 1) == -1)
		return milter_fail_errno(b, used, errno);
	for (i = 0; i < n; i++)
		if (buf_append(b, m[i].name, strlen(m[i].name) + 1) == -1 ||
		    buf_append(b, m[i].value, strlen(m[i].value) + 1) == -1)
			return milter_fail_errno(b, used, errno);
	return 0;
}

int
milter_put_connect(struct buf *b, const char *hostname, int family,
    uint16_t port, const char *address)
{
	unsigned char		fam = (unsigned char)family;
	unsigned char		nport[2];
	struct milter_part	parts[4];

	if (hostname == NULL)
		return milter_fail_errno(b, buf_used(b), EINVAL);
	parts[0].p = hostname;
	parts[0].len = strlen(hostname) + 1;
	parts[1].p = &fam;
	parts[1].len = 1;
	/* libmilter reads no port and no address after 'U'. */
	if (family == SMFIA_UNKNOWN)
		return milter_packet(b, SMFIC_CONNECT, parts, 2);
	if ((family != SMFIA_INET && family != SMFIA_INET6 &&
	    family != SMFIA_UNIX) || address == NULL)
		return milter_fail_errno(b, buf_used(b), EINVAL);
	if (family == SMFIA_UNIX)
		port = 0;
	nport[0] = (unsigned char)(port >> 8);
	nport[1] = (unsigned char)port;
	parts[2].p = nport;
	parts[2].len = 2;
	parts[3].p = address;
	parts[3].len = strlen(address) + 1;
	return milter_packet(b, SMFIC_CONNECT, parts, 4);
}

int
milter_put_helo(struct buf *b, const char *name)
{
	struct milter_part	part;

	if (name == NULL)
		return milter_fail_errno(b, buf_used(b), EINVAL);
	part.p = name;
	part.len = strlen(name) + 1;
	return milter_packet(b, SMFIC_HELO, &part, 1);
}

/* MAIL and RCPT: the path, then each parameter, each NUL-terminated. */
static int
milter_envelope(struct buf *b, int cmd, const char *path,
    const char *const *args, size_t nargs)
{
	unsigned char	 head[MILTER_HEAD];
	size_t		 i, len, used = buf_used(b);

	if (path == NULL || (nargs > 0 && args == NULL))
		return milter_fail_errno(b, used, EINVAL);
	len = strlen(path) + 1;
	for (i = 0; i < nargs; i++) {
		if (args[i] == NULL)
			return milter_fail_errno(b, used, EINVAL);
		len += strlen(args[i]) + 1;
		if (len > MILTER_SEND_MAX)
			return milter_fail_errno(b, used, EMSGSIZE);
	}
	if (len > MILTER_SEND_MAX)
		return milter_fail_errno(b, used, EMSGSIZE);
	if (buf_room(b) < MILTER_HEAD + len)
		return milter_fail_errno(b, used, ENOBUFS);
	milter_put_u32(head, (uint32_t)len + 1);
	head[MILTER_LEN_BYTES] = (unsigned char)cmd;
	if (buf_append(b, head, sizeof(head)) == -1 ||
	    buf_append(b, path, strlen(path) + 1) == -1)
		return milter_fail_errno(b, used, errno);
	for (i = 0; i < nargs; i++)
		if (buf_append(b, args[i], strlen(args[i]) + 1) == -1)
			return milter_fail_errno(b, used, errno);
	return 0;
}

int
milter_put_mail(struct buf *b, const char *sender, const char *const *args,
    size_t nargs)
{
	return milter_envelope(b, SMFIC_MAIL, sender, args, nargs);
}

int
milter_put_rcpt(struct buf *b, const char *rcpt, const char *const *args,
    size_t nargs)
{
	return milter_envelope(b, SMFIC_RCPT, rcpt, args, nargs);
}

int
milter_put_data(struct buf *b)
{
	return milter_packet(b, SMFIC_DATA, NULL, 0);
}

int
milter_put_header(struct buf *b, const char *name, const char *value)
{
	struct milter_part	parts[2];

	if (name == NULL || name[0] == '\0' || value == NULL)
		return milter_fail_errno(b, buf_used(b), EINVAL);
	parts[0].p = name;
	parts[0].len = strlen(name) + 1;
	parts[1].p = value;
	parts[1].len = strlen(value) + 1;
	return milter_packet(b, SMFIC_HEADER, parts, 2);
}

int
milter_put_eoh(struct buf *b)
{
	return milter_packet(b, SMFIC_EOH, NULL, 0);
}

int
milter_put_body(struct buf *b, const void *p, size_t len)
{
	const char		*s = p;
	struct milter_part	 part;
	size_t			 chunks, used = buf_used(b);

	if (len == 0)
		return 0;
	if (p == NULL)
		return milter_fail_errno(b, used, EINVAL);
	chunks = (len + MILTER_CHUNK_SIZE - 1) / MILTER_CHUNK_SIZE;
	if (buf_room(b) < len || buf_room(b) - len < chunks * MILTER_HEAD)
		return milter_fail_errno(b, used, ENOBUFS);
	while (len > 0) {
		part.p = s;
		part.len = len < MILTER_CHUNK_SIZE ? len : MILTER_CHUNK_SIZE;
		if (milter_packet(b, SMFIC_BODY, &part, 1) == -1)
			return milter_fail_errno(b, used, errno);
		s += part.len;
		len -= part.len;
	}
	return 0;
}

int
milter_put_eob(struct buf *b)
{
	return milter_packet(b, SMFIC_BODYEOB, NULL, 0);
}

int
milter_put_abort(struct buf *b)
{
	return milter_packet(b, SMFIC_ABORT, NULL, 0);
}

int
milter_put_quit(struct buf *b)
{
	return milter_packet(b, SMFIC_QUIT, NULL, 0);
}

int
milter_put_quit_nc(struct buf *b)
{
	return milter_packet(b, SMFIC_QUIT_NC, NULL, 0);
}

int
milter_put_unknown(struct buf *b, const char *line)
{
	struct milter_part	part;

	if (line == NULL)
		return milter_fail_errno(b, buf_used(b), EINVAL);
	part.p = line;
	part.len = strlen(line) + 1;
	return milter_packet(b, SMFIC_UNKNOWN, &part, 1);
}

void
milter_offer_default(struct milter_offer *o)
{
	o->version = MILTER_VERSION;
	o->actions = MILTER_OFFER_ACTIONS;
	o->protocol = MILTER_OFFER_PROTOCOL;
}

int
milter_put_offer(struct buf *b, const struct milter_offer *o)
{
	return milter_put_optneg(b, o->version, o->actions, o->protocol);
}

/* ---- framing ---- */

static uint32_t
milter_get_u32(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;

	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void
milter_reader_init(struct milter_reader *r)
{
	buf_init(&r->in, MILTER_LEN_BYTES + MILTER_PACKET_MAX +
	    MILTER_FEED_MAX);
	r->taken = 0;
	r->failed = 0;
	r->error[0] = '\0';
}

void
milter_reader_free(struct milter_reader *r)
{
	buf_free(&r->in);
	r->taken = 0;
}

static int
milter_reader_fail(struct milter_reader *r, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->failed = 1;
	return -1;
}

/* The packet handed out last is done with once the caller comes back. */
static void
milter_reader_drop(struct milter_reader *r)
{
	if (r->taken > 0) {
		buf_consume(&r->in, r->taken);
		r->taken = 0;
	}
}

size_t
milter_reader_feed(struct milter_reader *r, const void *p, size_t len)
{
	size_t	room;

	if (r->failed)
		return 0;
	milter_reader_drop(r);
	room = buf_room(&r->in);
	if (len > room)
		len = room;
	if (len > 0 && buf_append(&r->in, p, len) == -1) {
		milter_reader_fail(r, "out of memory for milter input");
		return 0;
	}
	return len;
}

int
milter_reader_next(struct milter_reader *r, struct milter_packet *pkt)
{
	const char	*h;
	size_t		 used;
	uint32_t	 len;

	if (r->failed)
		return -1;
	milter_reader_drop(r);
	if ((used = buf_used(&r->in)) < MILTER_LEN_BYTES)
		return 0;
	h = buf_head(&r->in);
	len = milter_get_u32(h);
	/* Checked before the rest arrives: nobody waits for 4 GB. */
	if (len == 0)
		return milter_reader_fail(r, "milter packet of length 0");
	if (len > MILTER_PACKET_MAX)
		return milter_reader_fail(r, "milter packet of length %u, "
		    "above %u", len, MILTER_PACKET_MAX);
	if (used - MILTER_LEN_BYTES < len)
		return 0;
	pkt->cmd = (unsigned char)h[MILTER_LEN_BYTES];
	pkt->data = h + MILTER_HEAD;
	pkt->len = len - 1;
	r->taken = MILTER_LEN_BYTES + (size_t)len;
	return 1;
}

/* ---- replies ---- */

static int
milter_err(char *dst, size_t dstlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(dst, dstlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A code or byte for a reason: 'y' or 0x0a. */
static const char *
milter_byte(char *dst, size_t dstlen, int c)
{
	if (c > 0x20 && c < 0x7f && c != '\'')
		snprintf(dst, dstlen, "'%c'", c);
	else
		snprintf(dst, dstlen, "0x%02x", (unsigned)c & 0xff);
	return dst;
}

/* The length of the NUL-terminated string at p, within left bytes. */
static int
milter_string(const char *p, size_t left, size_t *len)
{
	const char	*nul = memchr(p, '\0', left);

	if (nul == NULL)
		return -1;
	*len = (size_t)(nul - p);
	return 0;
}

/*
 * nreq NUL-terminated strings from off, then up to nopt more, into s[] and
 * l[] (NULL and 0 for an optional one absent); nothing may follow.
 */
static int
milter_fields(struct milter_reply *r, const struct milter_packet *pkt,
    size_t off, int nreq, int nopt, const char **s, size_t *l)
{
	const char	*rn = milter_reply_name(pkt->cmd);
	int		 i;

	for (i = 0; i < nreq + nopt; i++) {
		s[i] = NULL;
		l[i] = 0;
		if (off == pkt->len && i >= nreq)
			continue;
		if (off >= pkt->len)
			return milter_err(r->error, sizeof(r->error), "reply "
			    "%s: field %d missing", rn, i + 1);
		if (milter_string(pkt->data + off, pkt->len - off,
		    &l[i]) == -1)
			return milter_err(r->error, sizeof(r->error), "reply "
			    "%s: field %d not NUL-terminated", rn, i + 1);
		s[i] = pkt->data + off;
		off += l[i] + 1;
	}
	if (off != pkt->len)
		return milter_err(r->error, sizeof(r->error), "reply %s: %zu "
		    "bytes after the last field", rn, pkt->len - off);
	return 0;
}

/* A header field name: RFC 5322 ftext, printable ASCII but ':'. */
static int
milter_check_name(struct milter_reply *r, const char *s, size_t len)
{
	size_t	i;
	char	b[8];

	if (len == 0)
		return milter_err(r->error, sizeof(r->error),
		    "empty header name");
	if (len > MILTER_HDR_NAME_MAX)
		return milter_err(r->error, sizeof(r->error), "header name of "
		    "%zu bytes, above %d", len, MILTER_HDR_NAME_MAX);
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 ||
		    (unsigned char)s[i] >= 0x7f || s[i] == ':')
			return milter_err(r->error, sizeof(r->error), "header "
			    "name byte %zu is %s", i, milter_byte(b, sizeof(b),
			    (unsigned char)s[i]));
	return 0;
}

/*
 * A header value: folds are LF or CRLF followed by SP or HT (libmilter
 * tells milters to fold with a bare LF and let the MTA add the CR), no
 * other control byte but HT. Anything else would end the header early or
 * smuggle a new one into the message.
 */
static int
milter_check_value(struct milter_reply *r, const char *s, size_t len)
{
	size_t		i;
	unsigned char	c;
	char		b[8];

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '\r') {
			if (i + 1 == len || s[i + 1] != '\n')
				return milter_err(r->error, sizeof(r->error),
				    "header value has a bare CR at byte %zu",
				    i);
			c = (unsigned char)s[++i];
		}
		if (c == '\n') {
			if (i + 1 == len || (s[i + 1] != ' ' &&
			    s[i + 1] != '\t'))
				return milter_err(r->error, sizeof(r->error),
				    "header value has a line break not "
				    "followed by SP or HT at byte %zu", i);
			continue;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return milter_err(r->error, sizeof(r->error), "header "
			    "value byte %zu is %s", i, milter_byte(b,
			    sizeof(b), c));
	}
	return 0;
}

/* An address, ESMTP arguments or a reason: no control bytes, a limit. */
static int
milter_check_text(struct milter_reply *r, const char *what, const char *s,
    size_t len, size_t max)
{
	size_t	i;
	char	b[8];

	if (len > max)
		return milter_err(r->error, sizeof(r->error), "%s of %zu "
		    "bytes, above %zu", what, len, max);
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return milter_err(r->error, sizeof(r->error), "%s byte "
			    "%zu is %s", what, i, milter_byte(b, sizeof(b),
			    (unsigned char)s[i]));
	return 0;
}

/* Macro names ("i", "{auth_type}") separated by spaces or commas. */
static int
milter_check_symlist(struct milter_reply *r, int stage, const char *s,
    size_t len)
{
	size_t	i, names = 0;
	int	in = 0;
	char	b[8];

	if (len > MILTER_SYMLIST_MAX)
		return milter_err(r->error, sizeof(r->error), "macro list for "
		    "%s of %zu bytes, above %d", milter_stage_name(stage), len,
		    MILTER_SYMLIST_MAX);
	for (i = 0; i < len; i++) {
		if (s[i] == ' ' || s[i] == ',') {
			in = 0;
			continue;
		}
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return milter_err(r->error, sizeof(r->error), "macro "
			    "list for %s: byte %zu is %s",
			    milter_stage_name(stage), i, milter_byte(b,
			    sizeof(b), (unsigned char)s[i]));
		if (!in && ++names > MILTER_MACROS_MAX)
			return milter_err(r->error, sizeof(r->error), "macro "
			    "list for %s: more than %d names",
			    milter_stage_name(stage), MILTER_MACROS_MAX);
		in = 1;
	}
	return 0;
}

/*
 * An RFC 3463 enhanced status code at the start of s, class c: "c.d.d"
 * with 1 to 3 digits after each dot, then SP or the end. 1 when it is
 * one, 0 when not.
 */
static int
milter_enhanced(const char *s, size_t len, char c)
{
	size_t	i = 0, part, digits;

	if (len < 5 || s[0] != c || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
		if (digits < 1 || digits > 3)
			return 0;
		if (part == 0) {
			if (i == len || s[i] != '.')
				return 0;
			i++;
		}
	}
	return i == len || s[i] == ' ';
}

/*
 * SMFIR_REPLYCODE: "DDD text" or "DDD X.Y.Z text", or lines of those
 * joined by CRLF with '-' after the code on every line but the last
 * (smfi_setmlreply). One 4xx or 5xx code throughout; an enhanced code,
 * when there is one, of the same class. Only printable ASCII and HT: this
 * text goes to an SMTP client as it is.
 */
static int
milter_replycode(struct milter_reply *r, const char *s, size_t len)
{
	size_t		 pos = 0, e, lines = 0, i, ll;
	const char	*l;
	char		 b[8];
	int		 last;

	if (len == 0)
		return milter_err(r->error, sizeof(r->error),
		    "empty reply text");
	if (len > MILTER_REPLY_TEXT_MAX)
		return milter_err(r->error, sizeof(r->error), "reply text of "
		    "%zu bytes, above %d", len, MILTER_REPLY_TEXT_MAX);
	/* We add the final CRLF; one from the milter would be an empty
	 * line to the client. */
	if (len >= 2 && s[len - 2] == '\r' && s[len - 1] == '\n')
		return milter_err(r->error, sizeof(r->error), "reply text ends "
		    "with CRLF");
	r->textlen = 0;
	for (;;) {
		for (e = pos; e < len; e++) {
			unsigned char	c = (unsigned char)s[e];

			if (c == '\r' && e + 1 < len && s[e + 1] == '\n')
				break;
			if (c == '\r' || c == '\n')
				return milter_err(r->error, sizeof(r->error),
				    "reply text has a bare %s at byte %zu",
				    c == '\r' ? "CR" : "LF", e);
			if ((c < 0x20 && c != '\t') || c >= 0x7f)
				return milter_err(r->error, sizeof(r->error),
				    "reply text byte %zu is %s", e,
				    milter_byte(b, sizeof(b), c));
		}
		l = s + pos;
		ll = e - pos;
		last = e == len;
		if (++lines > MILTER_REPLY_LINES_MAX)
			return milter_err(r->error, sizeof(r->error), "reply "
			    "text of more than %d lines",
			    MILTER_REPLY_LINES_MAX);
		if (ll > MILTER_REPLY_LINE_MAX)
			return milter_err(r->error, sizeof(r->error), "reply "
			    "line %zu of %zu bytes, above %d", lines, ll,
			    MILTER_REPLY_LINE_MAX);
		if (ll < 4 || (l[0] != '4' && l[0] != '5') ||
		    l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9' ||
		    (l[3] != ' ' && l[3] != '-'))
			return milter_err(r->error, sizeof(r->error), "reply "
			    "line %zu does not start with a 4xx or 5xx code "
			    "and SP or '-'", lines);
		if (lines == 1)
			r->smtp_code = (l[0] - '0') * 100 + (l[1] - '0') * 10 +
			    (l[2] - '0');
		else if (memcmp(l, s, 3) != 0)
			return milter_err(r->error, sizeof(r->error), "reply "
			    "line %zu has code %.3s, the first %.3s", lines, l,
			    s);
		if (last && l[3] != ' ')
			return milter_err(r->error, sizeof(r->error), "reply "
			    "ends with a continuation line (%.3s-)", l);
		if (!last && l[3] != '-')
			return milter_err(r->error, sizeof(r->error), "reply "
			    "line %zu is marked last (%.3s SP) but more "
			    "follow", lines, l);
		if (ll > 4 && l[4] >= '0' && l[4] <= '9' &&
		    !milter_enhanced(l + 4, ll - 4, l[0]))
			return milter_err(r->error, sizeof(r->error), "reply "
			    "line %zu: not an enhanced status code of class "
			    "%c", lines, l[0]);
		/* sendmail prints the text with printf: "%%" is one '%'.
		 * A lone '%' stays, we never use the text as a format. */
		for (i = 0; i < ll; i++) {
			r->text[r->textlen++] = l[i];
			if (l[i] == '%' && i + 1 < ll && l[i + 1] == '%')
				i++;
		}
		if (last)
			break;
		r->text[r->textlen++] = '\r';
		r->text[r->textlen++] = '\n';
		pos = e + 2;
	}
	r->text[r->textlen] = '\0';
	return 0;
}

/* SMFIC_OPTNEG: three words, then in version 6 (stage, names) pairs. */
static int
milter_optneg(struct milter_reply *r, const struct milter_packet *pkt)
{
	size_t		off = MILTER_OPTLEN, l;
	uint32_t	stage;

	if (pkt->len < MILTER_OPTLEN)
		return milter_err(r->error, sizeof(r->error), "negotiation "
		    "reply of %zu bytes, %d at least", pkt->len, MILTER_OPTLEN);
	r->version = milter_get_u32(pkt->data);
	r->actions = milter_get_u32(pkt->data + 4);
	r->protocol = milter_get_u32(pkt->data + 8);
	while (off < pkt->len) {
		if (pkt->len - off < MILTER_LEN_BYTES + 1)
			return milter_err(r->error, sizeof(r->error), "macro "
			    "list truncated at byte %zu", off);
		stage = milter_get_u32(pkt->data + off);
		off += MILTER_LEN_BYTES;
		if (stage >= MILTER_STAGES)
			return milter_err(r->error, sizeof(r->error), "macro "
			    "list for unknown stage %u", stage);
		if (r->symlists & (1U << stage))
			return milter_err(r->error, sizeof(r->error), "two "
			    "macro lists for %s",
			    milter_stage_name((int)stage));
		if (milter_string(pkt->data + off, pkt->len - off, &l) == -1)
			return milter_err(r->error, sizeof(r->error), "macro "
			    "list for %s not NUL-terminated",
			    milter_stage_name((int)stage));
		if (milter_check_symlist(r, (int)stage, pkt->data + off,
		    l) == -1)
			return -1;
		r->symlists |= 1U << stage;
		r->symlist[stage] = pkt->data + off;
		r->symlistlen[stage] = l;
		off += l + 1;
	}
	return 0;
}

/* SMFIR_ADDHEADER, or the two with an index first. */
static int
milter_header(struct milter_reply *r, const struct milter_packet *pkt)
{
	const char	*s[2];
	size_t		 l[2], off = 0;

	if (pkt->cmd != SMFIR_ADDHEADER) {
		if (pkt->len < MILTER_LEN_BYTES)
			return milter_err(r->error, sizeof(r->error), "reply "
			    "%s of %zu bytes, no room for the index",
			    milter_reply_name(pkt->cmd), pkt->len);
		r->index = milter_get_u32(pkt->data);
		off = MILTER_LEN_BYTES;
	}
	if (milter_fields(r, pkt, off, 2, 0, s, l) == -1)
		return -1;
	r->name = s[0];
	r->namelen = l[0];
	r->value = s[1];
	r->valuelen = l[1];
	if (milter_check_name(r, r->name, r->namelen) == -1 ||
	    milter_check_value(r, r->value, r->valuelen) == -1)
		return -1;
	return 0;
}

/* The envelope edits: an address, and ESMTP arguments for two of them. */
static int
milter_envelope_edit(struct milter_reply *r, const struct milter_packet *pkt)
{
	const char	*s[2];
	size_t		 l[2];
	int		 args = pkt->cmd == SMFIR_CHGFROM ||
			    pkt->cmd == SMFIR_ADDRCPT_PAR;

	if (milter_fields(r, pkt, 0, 1, args, s, l) == -1)
		return -1;
	r->addr = s[0];
	r->addrlen = l[0];
	if (args) {
		r->args = s[1];
		r->argslen = l[1];
	}
	if (r->addrlen == 0)
		return milter_err(r->error, sizeof(r->error), "reply %s with "
		    "an empty address", milter_reply_name(pkt->cmd));
	if (milter_check_text(r, "address", r->addr, r->addrlen,
	    MILTER_ADDR_MAX) == -1)
		return -1;
	if (r->args != NULL && milter_check_text(r, "ESMTP arguments",
	    r->args, r->argslen, MILTER_ARGS_MAX) == -1)
		return -1;
	return 0;
}

int
milter_reply_parse(const struct milter_packet *pkt, struct milter_reply *r)
{
	const char	*s;
	size_t		 l;
	char		 code[8];

	memset(r, 0, sizeof(*r));
	r->code = pkt->cmd;
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
		if (pkt->len != 0)
			return milter_err(r->error, sizeof(r->error), "reply "
			    "%s with %zu bytes of data, none allowed",
			    milter_reply_name(pkt->cmd), pkt->len);
		return 0;
	case SMFIC_OPTNEG:
		return milter_optneg(r, pkt);
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		return milter_header(r, pkt);
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
	case SMFIR_CHGFROM:
	case SMFIR_ADDRCPT_PAR:
		return milter_envelope_edit(r, pkt);
	case SMFIR_QUARANTINE:
		if (milter_fields(r, pkt, 0, 1, 0, &s, &l) == -1)
			return -1;
		r->reason = s;
		r->reasonlen = l;
		return milter_check_text(r, "quarantine reason", r->reason,
		    r->reasonlen, MILTER_REASON_MAX);
	case SMFIR_REPLBODY:
		r->body = pkt->data;
		r->bodylen = pkt->len;
		return 0;
	case SMFIR_REPLYCODE:
		if (milter_fields(r, pkt, 0, 1, 0, &s, &l) == -1)
			return -1;
		return milter_replycode(r, s, l);
	case SMFIR_SETSYMLIST:
		return milter_err(r->error, sizeof(r->error), "reply "
		    "SMFIR_SETSYMLIST outside the negotiation");
	default:
		return milter_err(r->error, sizeof(r->error), "unknown reply "
		    "code %s", milter_byte(code, sizeof(code), pkt->cmd));
	}
}

int
milter_reply_final(int code)
{
	switch (code) {
	case SMFIR_ACCEPT:
	case SMFIR_CONTINUE:
	case SMFIR_DISCARD:
	case SMFIR_REJECT:
	case SMFIR_TEMPFAIL:
	case SMFIR_REPLYCODE:
	case SMFIR_SKIP:
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
	case SMFIC_OPTNEG:
		return 1;
	default:
		return 0;
	}
}

int
milter_header_value_crlf(struct buf *b, const char *s, size_t len)
{
	size_t	i, run = 0, used = buf_used(b);

	for (i = 0; i < len; i++) {
		if (s[i] != '\n' || (i > 0 && s[i - 1] == '\r'))
			continue;
		if (buf_append(b, s + run, i - run) == -1 ||
		    buf_append(b, "\r\n", 2) == -1)
			return milter_fail_errno(b, used, errno);
		run = i + 1;
	}
	if (buf_append(b, s + run, len - run) == -1)
		return milter_fail_errno(b, used, errno);
	return 0;
}

/* ---- negotiation ---- */

int
milter_negotiate(const struct milter_offer *o, const struct milter_reply *r,
    struct milter_neg *n)
{
	char		names[MILTER_ERROR_MAX];
	uint32_t	extra;
	size_t		total = 0;
	int		i;

	memset(n, 0, sizeof(*n));
	if (r->code != SMFIC_OPTNEG)
		return milter_err(n->error, sizeof(n->error), "answered the "
		    "negotiation with %s", milter_reply_name(r->code));
	if (r->version < MILTER_VERSION_MIN)
		return milter_err(n->error, sizeof(n->error), "milter "
		    "protocol version %u, %d at least", r->version,
		    MILTER_VERSION_MIN);
	if (r->version > o->version)
		return milter_err(n->error, sizeof(n->error), "milter "
		    "protocol version %u, we offered %u", r->version,
		    o->version);
	if ((extra = r->actions & ~o->actions) != 0)
		return milter_err(n->error, sizeof(n->error), "asks for "
		    "actions we did not offer: %s", milter_actions_str(names,
		    sizeof(names), extra));
	if ((extra = r->protocol & ~o->protocol) != 0)
		return milter_err(n->error, sizeof(n->error), "asks for "
		    "protocol flags we did not offer: %s",
		    milter_protocol_str(names, sizeof(names), extra));
	if (r->symlists != 0 && r->version < 6)
		return milter_err(n->error, sizeof(n->error), "macro lists "
		    "from a version %u milter", r->version);
	for (i = 0; i < MILTER_STAGES; i++) {
		if ((r->symlists & (1U << i)) == 0)
			continue;
		if (r->symlistlen[i] > sizeof(n->symbuf) - total)
			return milter_err(n->error, sizeof(n->error), "macro "
			    "lists longer than %zu bytes in all",
			    sizeof(n->symbuf));
		memcpy(n->symbuf + total, r->symlist[i], r->symlistlen[i]);
		n->symoff[i] = (uint16_t)total;
		n->symlen[i] = (uint16_t)r->symlistlen[i];
		total += r->symlistlen[i];
	}
	n->symlists = r->symlists;
	n->version = r->version;
	n->actions = r->actions;
	/* Commands older versions do not know are never sent to them
	 * (sendmail: milter_negotiate). */
	n->protocol = r->protocol;
	if (r->version <= 2)
		n->protocol |= SMFIP_NOUNKNOWN;
	if (r->version <= 3)
		n->protocol |= SMFIP_NODATA;
	return 0;
}

int
milter_neg_sends(const struct milter_neg *n, int cmd)
{
	switch (cmd) {
	case SMFIC_CONNECT:
		return (n->protocol & SMFIP_NOCONNECT) == 0;
	case SMFIC_HELO:
		return (n->protocol & SMFIP_NOHELO) == 0;
	case SMFIC_MAIL:
		return (n->protocol & SMFIP_NOMAIL) == 0;
	case SMFIC_RCPT:
		return (n->protocol & SMFIP_NORCPT) == 0;
	case SMFIC_DATA:
		return (n->protocol & SMFIP_NODATA) == 0;
	case SMFIC_HEADER:
		return (n->protocol & SMFIP_NOHDRS) == 0;
	case SMFIC_EOH:
		return (n->protocol & SMFIP_NOEOH) == 0;
	case SMFIC_BODY:
		return (n->protocol & SMFIP_NOBODY) == 0;
	case SMFIC_UNKNOWN:
		return (n->protocol & SMFIP_NOUNKNOWN) == 0;
	case SMFIC_OPTNEG:
	case SMFIC_MACRO:
	case SMFIC_BODYEOB:
	case SMFIC_ABORT:
	case SMFIC_QUIT:
	case SMFIC_QUIT_NC:
		return 1;
	default:
		return 0;
	}
}

int
milter_neg_replies(const struct milter_neg *n, int cmd)
{
	switch (cmd) {
	case SMFIC_CONNECT:
		return (n->protocol & SMFIP_NR_CONN) == 0;
	case SMFIC_HELO:
		return (n->protocol & SMFIP_NR_HELO) == 0;
	case SMFIC_MAIL:
		return (n->protocol & SMFIP_NR_MAIL) == 0;
	case SMFIC_RCPT:
		return (n->protocol & SMFIP_NR_RCPT) == 0;
	case SMFIC_DATA:
		return (n->protocol & SMFIP_NR_DATA) == 0;
	case SMFIC_HEADER:
		return (n->protocol & SMFIP_NR_HDR) == 0;
	case SMFIC_EOH:
		return (n->protocol & SMFIP_NR_EOH) == 0;
	case SMFIC_BODY:
		return (n->protocol & SMFIP_NR_BODY) == 0;
	case SMFIC_UNKNOWN:
		return (n->protocol & SMFIP_NR_UNKN) == 0;
	case SMFIC_OPTNEG:
	case SMFIC_BODYEOB:
		return 1;
	default:
		/* MACRO, ABORT, QUIT, QUIT_NC: libmilter never answers. */
		return 0;
	}
}

int
milter_stage_of(int cmd)
{
	switch (cmd) {
	case SMFIC_CONNECT:
		return SMFIM_CONNECT;
	case SMFIC_HELO:
		return SMFIM_HELO;
	case SMFIC_MAIL:
		return SMFIM_ENVFROM;
	case SMFIC_RCPT:
		return SMFIM_ENVRCPT;
	case SMFIC_DATA:
		return SMFIM_DATA;
	case SMFIC_EOH:
		return SMFIM_EOH;
	case SMFIC_BODYEOB:
		return SMFIM_EOM;
	default:
		return -1;
	}
}

/* s[0..len) and name the same macro, one level of braces aside. */
static int
milter_name_eq(const char *s, size_t len, const char *name)
{
	size_t	nl = strlen(name);

	if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
		s++;
		len -= 2;
	}
	if (nl >= 2 && name[0] == '{' && name[nl - 1] == '}') {
		name++;
		nl -= 2;
	}
	return len > 0 && len == nl && memcmp(s, name, len) == 0;
}

int
milter_neg_wants(const struct milter_neg *n, int stage, const char *name)
{
	const char	*s, *end;
	size_t		 tl;

	if (stage < 0 || stage >= MILTER_STAGES ||
	    (n->symlists & (1U << stage)) == 0)
		return -1;
	s = n->symbuf + n->symoff[stage];
	end = s + n->symlen[stage];
	while (s < end) {
		if (*s == ' ' || *s == ',') {
			s++;
			continue;
		}
		for (tl = 0; s + tl < end && s[tl] != ' ' && s[tl] != ','; tl++)
			;
		if (milter_name_eq(s, tl, name))
			return 1;
		s += tl;
	}
	return 0;
}

/* The action an edit needs, and whether code is an edit at all. */
static int
milter_edit(int code, uint32_t *action, const char **what)
{
	switch (code) {
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
		*action = SMFIF_ADDHDRS;
		*what = "ADDHDRS";
		return 1;
	case SMFIR_CHGHEADER:
		*action = SMFIF_CHGHDRS;
		*what = "CHGHDRS";
		return 1;
	case SMFIR_REPLBODY:
		*action = SMFIF_CHGBODY;
		*what = "CHGBODY";
		return 1;
	case SMFIR_ADDRCPT:
		*action = SMFIF_ADDRCPT;
		*what = "ADDRCPT";
		return 1;
	case SMFIR_DELRCPT:
		*action = SMFIF_DELRCPT;
		*what = "DELRCPT";
		return 1;
	case SMFIR_CHGFROM:
		*action = SMFIF_CHGFROM;
		*what = "CHGFROM";
		return 1;
	case SMFIR_ADDRCPT_PAR:
		*action = SMFIF_ADDRCPT_PAR;
		*what = "ADDRCPT_PAR";
		return 1;
	default:
		return 0;
	}
}

int
milter_reply_allowed(const struct milter_neg *n, int cmd,
    const struct milter_reply *r, char *why, size_t whylen)
{
	const char	*what, *cn = milter_cmd_name(cmd);
	const char	*rn = milter_reply_name(r->code);
	uint32_t	 action;

	if (cmd == SMFIC_OPTNEG || r->code == SMFIC_OPTNEG) {
		if (cmd == r->code)
			return 1;
		milter_err(why, whylen, "%s answers %s", rn, cn);
		return 0;
	}
	if (!milter_neg_replies(n, cmd)) {
		milter_err(why, whylen, "%s after %s, which gets no reply",
		    rn, cn);
		return 0;
	}
	if (milter_edit(r->code, &action, &what)) {
		if (cmd != SMFIC_BODYEOB) {
			milter_err(why, whylen, "%s after %s: edits come "
			    "after SMFIC_BODYEOB only", rn, cn);
			return 0;
		}
		if ((n->actions & action) == 0) {
			milter_err(why, whylen, "%s without %s negotiated",
			    rn, what);
			return 0;
		}
		return 1;
	}
	switch (r->code) {
	case SMFIR_ACCEPT:
	case SMFIR_CONTINUE:
	case SMFIR_REJECT:
	case SMFIR_TEMPFAIL:
	case SMFIR_REPLYCODE:
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
	case SMFIR_PROGRESS:
		return 1;
	case SMFIR_QUARANTINE:
		/* Postfix takes it at any stage; so do we. */
		if ((n->actions & SMFIF_QUARANTINE) == 0) {
			milter_err(why, whylen, "%s without QUARANTINE "
			    "negotiated", rn);
			return 0;
		}
		return 1;
	case SMFIR_DISCARD:
		if (cmd == SMFIC_CONNECT || cmd == SMFIC_HELO) {
			milter_err(why, whylen, "%s after %s: there is no "
			    "message to discard", rn, cn);
			return 0;
		}
		return 1;
	case SMFIR_SKIP:
		if (cmd != SMFIC_BODY || (n->protocol & SMFIP_SKIP) == 0) {
			milter_err(why, whylen, "%s after %s%s", rn, cn,
			    (n->protocol & SMFIP_SKIP) == 0 ?
			    " without SKIP negotiated" : ": only body "
			    "chunks are skipped");
			return 0;
		}
		return 1;
	default:
		milter_err(why, whylen, "%s is not a reply", rn);
		return 0;
	}
}
