/* SPDX-License-Identifier: MIT */
#ifndef SPORK_CHECKS_H
#define SPORK_CHECKS_H

#include <stddef.h>
#include <sys/socket.h>

#include "conf.h"
#include "ev.h"
#include "quarantine.h"
#include "scanner.h"
#include "spam.h"
#include "spool.h"

/*
 * The checks a received message goes through before it may be sent to
 * the server, as one asynchronous step with one result. The stages, in
 * this order (each only if configured):
 *
 *   1. virus scan, and the content rules (in the same worker pass: the
 *      scan backend applies them to the copy that would be delivered);
 *   2. the spam engine;
 *   3. the milters, in the order of `milters`, each seeing the message as
 *      the ones before it left it; a body a milter replaced is scanned
 *      for viruses again before it may go;
 *
 * each may deliver (adding headers), quarantine (then deliver or refuse)
 * or refuse; the first stage that refuses ends the run. The notice an
 * administrator asked for goes out once, for the strongest decision of
 * the run, when the run ends.
 *
 * The SMTP session (relay.c) hands over the envelope and the spool and
 * gets back either "deliver, with these headers first" (and, when the
 * milters changed it, "to this envelope") or "reply this".
 */

/* The message and its envelope; all owned by the caller, unchanged until
 * the run ends. The spool may be replaced by a cleaned or rewritten copy. */
struct check_msg {
	const char			*id;		/* session id, for logs */
	const char			*client;	/* "addr:port" */
	const char			*server;
	const char			*helo;
	const char			*sender;
	char				**rcpts;	/* accepted by the server */
	size_t				 nrcpts;
	const struct sockaddr_storage	*peer;
	int				 inside;	/* in inside_networks */
	/* Milters (bit i: the i-th of `milters`) that failed earlier in
	 * this session: not asked again, their default applies at once,
	 * as Postfix does. */
	unsigned			 milters_failed;
	int				 transparent;
	struct spool			*spool;
};

/*
 * The envelope the milters decided, as a change to the one the session
 * holds with the server: a new sender or none, recipients to add (not
 * among the accepted ones), recipients to delete. The session re-makes
 * the transaction with the server to match before the message may go.
 */
struct check_envelope {
	char		*sender;	/* "<path>"; NULL: unchanged */
	char		*sender_args;	/* with a new sender: its ESMTP
					 * parameters, NULL: the client's */
	char		**add;		/* "<path>" each, in order */
	char		**add_args;	/* each one's ESMTP parameters,
					 * NULL: none */
	size_t		 nadd;
	char		**del;		/* accepted ones, "<path>" each;
					 * see check_envelope_deletes() */
	size_t		 ndel;
};

struct check_result {
	int	 deliver;
	/* deliver: headers to add before the message's own (NULL: none),
	 * the caller's to free; the verdict fields for the log line. */
	char	*prefix;
	/* deliver: the envelope the milters changed, NULL: as the client
	 * gave it; the caller's to free (check_envelope_free()) once it
	 * takes it (sets it NULL), as prefix. */
	struct check_envelope *env;
	char	 verdict[256];
	/* !deliver: the whole reply to the client, and the verdict for the
	 * log line ("verdict=virus" and the like). */
	char	 reply[1024];
	unsigned milters_failed;	/* those that failed in this run */
	/* The same, as fields for tracking and metrics: the strongest
	 * decision of the run (kind: clean, virus, encrypted, limits,
	 * scan-error, content, spam, milter, error, unscanned), its
	 * action, the spam score (NAN: none) and any quarantine id. */
	char		 kind[24];
	enum action	 action;
	double		 score;
	char		 qid[QUARANTINE_ID_MAX];
};

struct check_run;
/* Called once per run, with the result (the callee may take prefix
 * and env).
 * sync: called from inside checks_start(). */
typedef void	check_done_cb(void *arg, struct check_result *, int sync);

void	checks_init(struct ev_loop *, const struct conf *,
	    struct scan_backend *);
void	checks_set_spam(struct spam *);
/* Starts the checks of m; NULL if they ended at once (done was called). */
struct check_run *checks_start(const struct check_msg *m, check_done_cb *done,
	    void *arg);
/* The session is gone: stops the run without calling done (a notice due
 * is still sent). */
void	checks_cancel(struct check_run *);
/* 1 when the envelope change deletes this accepted recipient ("<path>"):
 * the same address without <>, ignoring case. */
int	check_envelope_deletes(const struct check_envelope *,
	    const char *path);
void	check_envelope_free(struct check_envelope *);

/*
 * RCPT time: each milter's answer for one recipient, before it goes to
 * the server (a short conversation per milter: connect, HELO, MAIL, that
 * RCPT). As prequeue_rcpt(): the first ask starts the conversations and
 * says wait, wake(arg) is called when the answer is in, and asking again
 * with the same recipient gives it (once can_reply, so that replies stay
 * in order).
 */
enum check_rcpt_answer {
	CHECK_RCPT_PASS,
	CHECK_RCPT_WAIT,
	CHECK_RCPT_REPLY,
};
struct check_rcpt;
struct check_rcpt *checks_rcpt_new(const char *id,
	    const struct sockaddr_storage *peer, int inside,
	    void (*wake)(void *), void *arg);
enum check_rcpt_answer checks_rcpt(struct check_rcpt *, const char *helo,
	    const char *sender, const char *args, size_t argslen,
	    int can_reply, char *reply, size_t replylen);
void	checks_rcpt_free(struct check_rcpt *);
/* The milters that failed in this session (see check_msg), and more. */
unsigned checks_rcpt_failed(const struct check_rcpt *);
void	checks_rcpt_add_failed(struct check_rcpt *, unsigned);

#endif
