/* SPDX-License-Identifier: MIT */
#ifndef SPORK_JOURNAL_FORMAT_H
#define SPORK_JOURNAL_FORMAT_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"

/*
 * What a journal copy looks like, with no I/O: its Maildir file name and
 * the envelope lines that open it (journal.h writes them).
 */

#define JOURNAL_NAME_MAX	256	/* a Maildir file name */
#define JOURNAL_HOST_MAX	64	/* of the host part, before escaping */

/*
 * A unique Maildir name, "SEC.MUSECPpidQseq.host" (the Maildir
 * convention: time, then what makes it unique on this host, then the
 * host with '/' and ':' written as \057 and \072). -1 when it does not
 * fit len.
 */
int	journal_maildir_name(char *out, size_t len, time_t sec, long usec,
	    pid_t pid, unsigned seq, const char *host);

/* The envelope of one journaled message, as the relay holds it. */
struct journal_envelope {
	const char	 *sender;	/* "<path>", "<>" for the null one */
	char *const	 *rcpts;	/* "<path>" each: those the server
					 * accepted at RCPT */
	size_t		  nrcpts;
	const char	 *client;	/* addr:port */
	const char	 *server;
};

/*
 * The lines that open a copy: X-Spork-Journal-Sender, one
 * X-Spork-Journal-Recipient per recipient, X-Spork-Journal-Client and
 * X-Spork-Journal-Server, each ending in CRLF. Control bytes in a value
 * become '?', so that no value can end its line early. -1 when b is full.
 */
int	journal_envelope_format(struct buf *b, const struct journal_envelope *);

#endif
