/* SPDX-License-Identifier: MIT */
/*
 * The shape of a journal copy (journal_format.h): the Maildir file name
 * and the envelope block before the message, written and read back. Pure
 * functions: no clock, no files, no randomness; the caller passes the
 * time, pid, host and the block's nonce. The envelope values come from
 * the client (through the server's acceptance), so a control byte in one
 * is replaced, never written; the message itself is the client's too, so
 * the block is delimited by a nonce the client cannot know.
 */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "journal_format.h"

#define JOURNAL_FIELD_OPEN	"X-Spork-Journal"
#define JOURNAL_FIELD_END	"X-Spork-Journal-End"

int
journal_maildir_name(char *out, size_t len, time_t sec, long usec,
    pid_t pid, unsigned seq, const char *host)
{
	char	h[4 * JOURNAL_HOST_MAX + 1];
	size_t	i, o = 0;
	int	n;

	for (i = 0; host[i] != '\0' && i < JOURNAL_HOST_MAX; i++) {
		if (host[i] == '/' || host[i] == ':') {
			o += (size_t)snprintf(h + o, sizeof(h) - o, "\\%03o",
			    (unsigned char)host[i]);
			continue;
		}
		h[o++] = (unsigned char)host[i] <= 0x20 ||
		    (unsigned char)host[i] >= 0x7f ? '_' : host[i];
	}
	h[o] = '\0';
	if (o == 0)
		snprintf(h, sizeof(h), "localhost");
	n = snprintf(out, len, "%lld.M%06ldP%ldQ%u.%s", (long long)sec, usec,
	    (long)pid, seq, h);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* One "Name: value" line, control bytes in the value as '?'. */
static int
field(struct buf *b, const char *name, const char *value)
{
	char	c;
	size_t	i;

	if (buf_append(b, name, strlen(name)) == -1 ||
	    buf_append(b, ": ", 2) == -1)
		return -1;
	for (i = 0; value[i] != '\0'; i++) {
		c = (unsigned char)value[i] < 0x20 || value[i] == 0x7f ? '?' :
		    value[i];
		if (buf_append(b, &c, 1) == -1)
			return -1;
	}
	return buf_append(b, "\r\n", 2);
}

/* Length of the nonce that opens p, up to its first byte not [0-9a-f];
 * 0 when there is none or it is longer than JOURNAL_NONCE_MAX. */
static size_t
nonce_len(const char *p, size_t len)
{
	size_t	n;

	for (n = 0; n < len && ((p[n] >= '0' && p[n] <= '9') ||
	    (p[n] >= 'a' && p[n] <= 'f')); n++)
		;
	return n > JOURNAL_NONCE_MAX ? 0 : n;
}

int
journal_envelope_format(struct buf *b, const struct journal_envelope *e,
    const char *nonce)
{
	size_t	i, n = strlen(nonce);

	if (n == 0 || nonce_len(nonce, n) != n)
		return -1;
	if (field(b, JOURNAL_FIELD_OPEN, nonce) == -1 ||
	    field(b, "X-Spork-Journal-Sender", e->sender) == -1)
		return -1;
	for (i = 0; i < e->nrcpts; i++)
		if (field(b, "X-Spork-Journal-Recipient", e->rcpts[i]) == -1)
			return -1;
	if (field(b, "X-Spork-Journal-Client", e->client) == -1 ||
	    field(b, "X-Spork-Journal-Server", e->server) == -1 ||
	    field(b, JOURNAL_FIELD_END, nonce) == -1)
		return -1;
	return 0;
}

size_t
journal_envelope_len(const char *p, size_t len)
{
	static const char	first[] = JOURNAL_FIELD_OPEN ": ";
	static const char	last[] = JOURNAL_FIELD_END ": ";
	const char		*nonce, *line, *nl;
	size_t			 n, off;

	if (len < sizeof(first) - 1 ||
	    memcmp(p, first, sizeof(first) - 1) != 0)
		return 0;
	nonce = p + sizeof(first) - 1;
	n = nonce_len(nonce, len - (size_t)(nonce - p));
	off = (size_t)(nonce - p) + n;
	if (n == 0 || len - off < 2 || memcmp(p + off, "\r\n", 2) != 0)
		return 0;
	for (off += 2; off < len; off = (size_t)(nl - p) + 1) {
		line = p + off;
		if ((nl = memchr(line, '\n', len - off)) == NULL)
			return 0;
		/* Exactly the End line with this nonce, CRLF and nothing
		 * more: any other line, forged or folded, is inside. */
		if ((size_t)(nl - line) == sizeof(last) - 1 + n + 1 &&
		    memcmp(line, last, sizeof(last) - 1) == 0 &&
		    memcmp(line + sizeof(last) - 1, nonce, n) == 0 &&
		    line[sizeof(last) - 1 + n] == '\r')
			return (size_t)(nl - p) + 1;
	}
	return 0;
}
