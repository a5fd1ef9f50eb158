/* SPDX-License-Identifier: MIT */
#ifndef SPORK_MILTER_H
#define SPORK_MILTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"
#include "ev.h"
#include "spool.h"

/*
 * One conversation with one milter about one received message, on the
 * event loop: the MTA side of the milter protocol (milter_proto.c has the
 * bytes). The whole SMTP conversation is replayed to the milter once the
 * message is in: connect, HELO, MAIL, each accepted RCPT, DATA, the
 * headers, the body, end of message; the milter's answers and edits come
 * back as one result. The milter never sees a command the server refused.
 */

/* What the milter is told. Owned by the caller until the result. */
struct milter_input {
	const char			*id;		/* the session's, also {i} */
	const char			*helo;
	const char			*sender;	/* with <> */
	char				**rcpts;	/* accepted, with <> */
	size_t				 nrcpts;
	const struct sockaddr_storage	*peer;		/* the client */
	const struct spool		*spool;		/* NULL with probe */
	size_t				 max_header;	/* header block bound */
	size_t				 max_message;	/* a new body's bound */
	/* RCPT time: the conversation ends with the answer to the one
	 * recipient in rcpts (no message yet). */
	int				 probe;
};

enum milter_outcome {
	MO_CONTINUE,		/* deliver, with the edits */
	MO_ACCEPT,		/* deliver; it wants to see no more */
	MO_REJECT,		/* reply (5xx) */
	MO_TEMPFAIL,		/* reply (4xx) */
	MO_DISCARD,		/* it wants the message dropped */
	MO_FAILED,		/* down, silent or broken: its default */
};

/* A header edit, in the order the milter sent it. */
struct milter_edit {
	int			 code;		/* SMFIR_ADDHEADER, INS, CHG */
	uint32_t		 index;
	char			*name;
	char			*value;		/* CRLF folds; "" deletes (CHG) */
};

/* An envelope edit, in the order the milter sent it. */
struct milter_env_edit {
	int			 code;		/* SMFIR_CHGFROM, ADDRCPT,
						 * ADDRCPT_PAR, DELRCPT */
	char			*addr;		/* as sent, <> or not */
	char			*args;		/* ESMTP parameters (CHGFROM,
						 * ADDRCPT_PAR); NULL: none */
};

struct milter_result {
	enum milter_outcome	 outcome;
	char			 reply[1024];	/* MO_REJECT, MO_TEMPFAIL */
	char			 error[256];	/* MO_FAILED: why */
	struct milter_edit	*edits;
	size_t			 nedits;
	int			 body_replaced;
	char			*body;		/* the new body, CRLF lines */
	size_t			 bodylen;
	int			 quarantine;
	char			 reason[256];	/* its quarantine reason */
	int			 leadspc;	/* values keep their own space */
	struct milter_env_edit	*env;		/* sender, recipients */
	size_t			 nenv;
	unsigned		 ms;
};

struct milter_conv;
typedef void	milter_done_cb(void *arg, struct milter_result *);

/* Starts the conversation; done is called once, never from inside this
 * call. NULL (errno) if it could not start at all. */
struct milter_conv *milter_start(struct ev_loop *, const struct conf_milter *,
	    const struct milter_input *, milter_done_cb *done, void *arg);
void	milter_cancel(struct milter_conv *);
/* Frees what the last batch of events ended. */
void	milter_reap(void);
void	milter_result_free(struct milter_result *);
/*
 * The message with the result's edits applied, as a new copy that the
 * spool adopts: header edits in order, then the new body if any. 0, or -1
 * with err (the spool is unchanged).
 */
int	milter_apply(struct spool *, const struct milter_result *,
	    size_t max_header, char *err, size_t errlen);

/*
 * An envelope as the milters leave it, built from the client's by each
 * result's envelope edits in order: a change of sender replaces it (and
 * its ESMTP parameters: NULL keeps the client's), a deleted recipient
 * goes (every one with that address), an added one comes last unless it
 * is there already. Addresses are kept as paths ("<a@b>"), the milter's
 * own form wrapped in <> when it left them out, and compared without the
 * <> and case-insensitively (milter_addr_eq).
 */
struct milter_envelope {
	char			*sender;
	char			*sender_args;
	int			 sender_changed;
	char			**rcpt;
	char			**rcpt_args;	/* NULL each: none given */
	size_t			 nrcpt;
};

/* 0, or -1 (ENOMEM). */
int	milter_envelope_init(struct milter_envelope *, const char *sender,
	    char *const *rcpts, size_t nrcpts);
/* 0, or -1 with errno ENOMEM, or E2BIG past max recipients (the
 * envelope is then as far as it got). */
int	milter_envelope_edit(struct milter_envelope *,
	    const struct milter_result *, size_t max);
void	milter_envelope_free(struct milter_envelope *);
/* Two addresses, paths or not, name the same mailbox: equal without
 * their <> and ignoring case. */
int	milter_addr_eq(const char *, const char *);

#endif
