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

/* ok: the server accepted the message; why: its reply or the failure. */
typedef void	smtp_client_cb(void *arg, int ok, const char *why);

int	smtp_client_send(struct ev_loop *, const struct smtp_client_msg *,
	    smtp_client_cb *, void *arg);
void	smtp_client_free_cb(struct ev_timer *);

#endif
