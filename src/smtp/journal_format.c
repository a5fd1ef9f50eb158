/* SPDX-License-Identifier: MIT */
/*
 * The shape of a journal copy (journal_format.h): the Maildir file name
 * and the envelope lines before the message. Pure functions: no clock,
 * no files; the caller passes the time, pid and host. The envelope
 * values come from the client (through the server's acceptance), so a
 * control byte in one is replaced, never written.
 */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "journal_format.h"

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

int
journal_envelope_format(struct buf *b, const struct journal_envelope *e)
{
	size_t	i;

	if (field(b, "X-Spork-Journal-Sender", e->sender) == -1)
		return -1;
	for (i = 0; i < e->nrcpts; i++)
		if (field(b, "X-Spork-Journal-Recipient", e->rcpts[i]) == -1)
			return -1;
	if (field(b, "X-Spork-Journal-Client", e->client) == -1 ||
	    field(b, "X-Spork-Journal-Server", e->server) == -1)
		return -1;
	return 0;
}
