/* SPDX-License-Identifier: MIT */
#ifndef SPORK_CONSOLE_H
#define SPORK_CONSOLE_H

/*
 * spork-console's internal interfaces, shared by its files only:
 * console.c (main: config, sockets, certificate, privileges),
 * console_http.c (requests, sessions, CSRF, logins, responses),
 * console_pages.c (the HTML pages and the chart),
 * console_data.c (the control socket client and the tracking database).
 */

#include <stdio.h>
#include <sys/socket.h>

#include "conf.h"

#define CONSOLE_USER_MAX	64	/* account names */
#define CONSOLE_TOKEN_HEX	64	/* session ids and CSRF tokens: 32 bytes */
#define CONSOLE_CTL_OUT_MAX	(2 * 1024 * 1024)

/* What a page handler knows about its request. */
struct console_req {
	const char	*user;		/* logged-in account, or NULL */
	const char	*csrf;		/* the session's CSRF token, or NULL */
	const char	*from;		/* client address, for log lines */
	const char	*form;		/* POST body (urlencoded), or "" */
	void		*conn;		/* struct MHD_Connection */
};

/* A page being written: an open_memstream, its status and type. */
struct console_page {
	FILE		*fp;
	char		*text;
	size_t		 len;
	int		 status;
	const char	*type;
	unsigned	 retry_after_s;	/* a Retry-After header when > 0 */
};

extern const struct conf	*console_conf;

/* console_http.c */
int	console_http_start(const int *fds, int nfds, const char *cert,
	    const char *key, char *err, size_t errlen);
void	console_http_stop(void);
const char *console_arg(const struct console_req *, const char *name,
	    char *out, size_t outlen);
/* What reads a request's bytes before any login (and fuzz_console):
 * the value of name in an urlencoded body, '+' and %XX decoded, cut at
 * outlen - 1 bytes (outlen > 0), or NULL when there is no such pair;
 * a token compare in constant time in b's length; an account name's
 * syntax. */
const char *form_get(const char *form, const char *name, char *out,
	    size_t outlen);
int	token_equal(const char *a, const char *b);
int	user_valid(const char *);

/* console_pages.c */
/* The search form's words: a time ("YYYY-MM-DD[ T]HH:MM[:SS]" or
 * "YYYY-MM-DD", UTC; -1 if not a time) and a LIKE pattern (malloc'd). */
double	parse_time(const char *);
char	*like_arg(const char *);
void	page_begin(struct console_page *, const struct console_req *,
	    const char *title);
void	page_end(struct console_page *);
void	html(FILE *, const char *);
void	html_n(FILE *, const char *, size_t);
void	page_login(struct console_page *, const struct console_req *,
	    const char *token, const char *msg);
void	page_dashboard(struct console_page *, const struct console_req *);
void	page_track(struct console_page *, const struct console_req *);
void	page_track_msg(struct console_page *, const struct console_req *);
void	page_quarantine(struct console_page *, const struct console_req *);
void	page_q_show(struct console_page *, const struct console_req *);
void	page_q_confirm(struct console_page *, const struct console_req *,
	    const char *action);
void	page_q_do(struct console_page *, const struct console_req *,
	    const char *action);
void	page_error(struct console_page *, const struct console_req *,
	    int status, const char *msg);
extern const char	console_css[];

/* console_data.c */
int	ctl_ask(const char *cmd, char **out, size_t *outlen);
int	quarantine_id_valid(const char *);
struct sqlite3;
/* Read-only, its queries interrupted TRACK_DEADLINE_MS after the open
 * (one handle per thread at a time); track_timed_out says a query
 * failed for that. */
struct sqlite3 *track_open(char *err, size_t errlen);
int	track_timed_out(struct sqlite3 *);

#endif
