/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SMTP_PROTO_H
#define SPORK_SMTP_PROTO_H

#include <stddef.h>

#include "buf.h"

enum smtp_verb {
	VERB_OTHER,
	VERB_HELO,
	VERB_EHLO,
	VERB_MAIL,
	VERB_RCPT,
	VERB_DATA,
	VERB_BDAT,
	VERB_RSET,
	VERB_NOOP,
	VERB_QUIT,
	VERB_VRFY,
	VERB_EXPN,
	VERB_HELP,
	VERB_STARTTLS,
	VERB_AUTH,
	VERB_REFUSED,		/* a hidden extension's verb (BURL, ATRN...) */
};

/* What the client is told of one EHLO keyword (smtp_proto.c's table). */
enum smtp_ext {
	EXT_PASS,		/* relayed as the server wrote it */
	EXT_HIDE,		/* removed from the reply */
	EXT_SIZE,		/* relayed, capped at our limit */
	EXT_STARTTLS,		/* relayed unless tls_policy strip */
};

/* Result of looking for one CRLF-terminated line in a buffer. */
enum smtp_line {
	LINE_PARTIAL,		/* no line end yet, within the limit */
	LINE_OK,		/* CRLF-terminated, no bare CR, no NUL */
	LINE_BARE_LF,		/* ended by LF alone */
	LINE_BARE_CR,		/* a CR not followed by LF inside the line */
	LINE_NUL,		/* a NUL byte inside the line */
	LINE_TOO_LONG,		/* no line end within the limit */
};

struct smtp_cmd {
	enum smtp_verb	 verb;
	const char	*args;		/* after the verb and one space */
	size_t		 argslen;
};

/* What the EHLO filter learned and changed. */
struct smtp_ehlo {
	int	 starttls;
	int	 pipelining;
	int	 pipeconnect;		/* offered (and hidden) */
	int	 hidden;		/* extensions removed */
	size_t	 size;			/* server's SIZE, 0 if none/unlimited */
};

enum smtp_line	smtp_line_scan(const char *, size_t len, size_t max,
		    size_t *linelen, size_t *consumed);
void		smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *);
const char     *smtp_verb_name(enum smtp_verb);

int		smtp_reply_scan(const char *, size_t len, size_t maxline,
		    size_t maxlines, size_t *consumed, int *code,
		    const char **why);
int		smtp_reply_copy(struct buf *out, const char *reply, size_t len);
int		smtp_ehlo_filter(struct buf *out, const char *reply, size_t len,
		    size_t size_limit, struct smtp_ehlo *);
int		smtp_ehlo_filter_tls(struct buf *out, const char *reply,
		    size_t len, size_t size_limit, int hide_starttls,
		    struct smtp_ehlo *);
enum smtp_ext	smtp_ehlo_keyword(const char *kw);
const char     *smtp_mail_param_refused(const char *args, size_t len);

#endif
