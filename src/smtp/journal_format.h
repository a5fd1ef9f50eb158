/* SPDX-License-Identifier: MIT */
#ifndef SPORK_JOURNAL_FORMAT_H
#define SPORK_JOURNAL_FORMAT_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"

/*
 * What a journal copy looks like, with no I/O: its Maildir file name and
 * the envelope block that opens it (journal.h writes them).
 */

#define JOURNAL_NAME_MAX	256	/* a Maildir file name */
#define JOURNAL_HOST_MAX	64	/* of the host part, before escaping */
#define JOURNAL_NONCE_LEN	16	/* hex digits: the block's delimiter */
#define JOURNAL_NONCE_MAX	64	/* what a reader takes */

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
 * The block that opens a copy, each line ending in CRLF:
 *
 *	X-Spork-Journal: NONCE
 *	X-Spork-Journal-Sender: <...>
 *	X-Spork-Journal-Recipient: <...>	(one per recipient)
 *	X-Spork-Journal-Client: ADDR:PORT
 *	X-Spork-Journal-Server: ADDR:PORT
 *	X-Spork-Journal-End: NONCE
 *
 * NONCE is random per copy (the caller's, [0-9a-f], at most
 * JOURNAL_NONCE_MAX), so a message that carries lines of the same names
 * cannot pass them off as its envelope: the block ends at the End line
 * with the first line's nonce, and everything after it is the message.
 * Control bytes in a value become '?', so that no value can end its line
 * early. -1 when b is full or the nonce is not one.
 */
int	journal_envelope_format(struct buf *b, const struct journal_envelope *,
	    const char *nonce);

/*
 * A reader's side of the same rule: the length of the envelope block
 * that opens p (through the CRLF of its End line), 0 when p does not
 * open with a complete one. The End line is exactly
 * "X-Spork-Journal-End: NONCE" CRLF: a line after it that starts with
 * white space (a message whose first line does) is the message's, never
 * a continuation of the block.
 */
size_t	journal_envelope_len(const char *p, size_t len);

#endif
