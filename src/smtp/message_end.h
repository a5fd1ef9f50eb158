/* SPDX-License-Identifier: MIT */
#ifndef SPORK_MESSAGE_END_H
#define SPORK_MESSAGE_END_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "action.h"
#include "spool.h"

/*
 * What becomes of a message once the client has its answer to the end
 * of data: one tracking record (track.h) and the message metrics
 * (spork_messages_total by verdict and action, the final-dot latency).
 * The session (relay.c) fills this in at each of the places a message
 * ends and knows nothing of either.
 */
struct message_end {
	const char			*id;
	const char			*client;	/* addr:port */
	const struct sockaddr_storage	*peer;
	const char			*server;
	int				 inside;
	const char			*helo;
	const char			*sender;
	char				**rcpts;	/* accepted at RCPT */
	size_t				 nrcpts;
	char				**refused;	/* refused by the server */
	char				**refused_reply;
	size_t				 nrefused;
	const struct spool		*spool;		/* Message-ID, Subject */
	const char			*kind;		/* verdict word */
	enum action			 action;
	double				 score;		/* NAN: none */
	const char			*qid;
	const char			*tls;
	const char			*reply;		/* what the client got */
	size_t				 replylen;
	int				 by_server;	/* reply is the server's */
	int				 at_dot;	/* answers a final dot */
	uint64_t			 dot_ms;	/* since that dot */
};

void	message_end_init(void);
void	message_end(const struct message_end *);

/*
 * The value of header `name` in the head of the message: unfolded,
 * control bytes dropped, at most outlen - 1 bytes. "" when absent.
 */
void	message_end_header(const char *head, size_t len, const char *name,
	    char *out, size_t outlen);

#endif
