/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SPAM_H
#define SPORK_SPAM_H

#include <stddef.h>

#include "buf.h"
#include "ev.h"

#define SPAM_SERVERS_MAX	8
#define SPAM_SYMBOLS_MAX	256	/* names kept for the log and header */
#define SPAM_MESSAGE_MAX	128	/* the engine's text for the reply */
#define SPAM_ERROR_MAX		128
#define SPAM_ENGINE_MAX		96

enum spam_kind {
	SPAM_RSPAMD,		/* HTTP, POST /checkv2, JSON reply */
	SPAM_SPAMD,		/* SpamAssassin's SPAMC/SPAMD protocol */
};

struct spam_conf {
	enum spam_kind	 kind;
	/* "host:port", "[v6]:port" or "name:port"; tried in turn */
	char		 servers[SPAM_SERVERS_MAX][256];
	int		 nservers;
	unsigned	 timeout_ms;	/* the whole exchange, connects included */
};

/* What the engine learns besides the message (rspamd's headers). */
struct spam_envelope {
	const char	 *client;	/* address, no port */
	const char	 *helo;
	const char	 *sender;	/* reverse path, with or without <> */
	char *const	 *rcpts;
	size_t		  nrcpts;
	const char	 *queue_id;	/* the session id */
};

struct spam_result {
	int		 ok;		/* 1: scored; 0: engine unavailable */
	double		 score;
	double		 required;	/* the engine's own threshold */
	int		 is_spam;	/* the engine's own opinion */
	char		 action[32];	/* rspamd's action, "" for spamd */
	char		 symbols[SPAM_SYMBOLS_MAX];	/* "A,B,C", sanitized */
	char		 message[SPAM_MESSAGE_MAX];	/* sanitized, may be "" */
	char		 engine[SPAM_ENGINE_MAX];	/* "rspamd [::1]:11333" */
	char		 error[SPAM_ERROR_MAX];		/* when !ok */
	unsigned	 ms;
};

typedef void	spam_done_cb(void *arg, const struct spam_result *);

struct spam;
struct spam_job;

/*
 * The client of a spam engine daemon. Names resolve here, with
 * getaddrinfo(), which blocks: call at startup only. NULL with a message
 * in err when the configuration is unusable.
 */
struct spam	*spam_new(struct ev_loop *, const struct spam_conf *,
		    char *err, size_t errlen);
/*
 * Check size bytes readable from fd at offset 0 (pread, never the file
 * position; fd is dup'ed). cb runs exactly once, from the event loop and
 * never inside submit, unless the job is cancelled first; a slow or dead
 * engine gets cb with ok == 0 within timeout_ms. NULL with errno set.
 */
struct spam_job	*spam_submit(struct spam *, int fd, size_t size,
		    const struct spam_envelope *, spam_done_cb *, void *arg);
void		 spam_cancel(struct spam *, struct spam_job *);
/* Count one decision under its rule name (see spam_policy.h). */
void		 spam_count(struct spam *, int rule);
void		 spam_status(struct spam *, struct buf *out);
void		 spam_free(struct spam *);
const char	*spam_kind_name(enum spam_kind);
int		 spam_kind_parse(const char *, enum spam_kind *);

#endif
