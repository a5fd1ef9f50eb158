/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SMTP_CLIENT_H
#define SPORK_SMTP_CLIENT_H

#include <stddef.h>
#include <sys/socket.h>

#include "ev.h"

struct smtp_client_msg {
	struct sockaddr_storage	  dst;
	struct sockaddr_storage	  src;		/* transparent source */
	int			  src_valid;
	char			  helo[256];
	char			  sender[256];	/* with <> */
	char			**rcpts;	/* with <>; kept by the caller */
	size_t			  nrcpts;
	const char		 *path;		/* CRLF message file, or */
	int			  body_fd;	/* when path is NULL (dup'd) */
	const char		 *prefix;	/* header lines to prepend */
	unsigned		  timeout_ms;	/* per step */
};

/*
 * ok: the server accepted the message; code: the server's reply that
 * ended the dialogue (the final one, or the refusal), 0 when none did
 * (connect, timeout, connection lost, a local error); why: that reply or
 * the failure. A refusal's code lets the caller tell permanent (5xx)
 * from temporary (4xx, or 0).
 */
typedef void	smtp_client_cb(void *arg, int ok, int code, const char *why);

int	smtp_client_send(struct ev_loop *, const struct smtp_client_msg *,
	    smtp_client_cb *, void *arg);
void	smtp_client_free_cb(struct ev_timer *);

#endif
