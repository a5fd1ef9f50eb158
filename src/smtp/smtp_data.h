/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SMTP_DATA_H
#define SPORK_SMTP_DATA_H

#include <stddef.h>

/* Why a message body is refused once its end has been read. */
#define DATA_ERR_BARE_LF	0x01
#define DATA_ERR_BARE_CR	0x02
#define DATA_ERR_LONG_LINE	0x04
#define DATA_ERR_TOO_BIG	0x08
#define DATA_ERR_HEADER_BIG	0x10
#define DATA_ERR_NUL		0x20

/*
 * The DATA framer: reads what the client sends after 354, finds the one
 * true end (CRLF "." CRLF, nothing else), removes dot-stuffing and emits
 * the content with canonical CRLF line ends.
 */
struct data_framer {
	int	 state;
	int	 errors;		/* DATA_ERR_* seen so far */
	int	 normalize;		/* bare CR/LF become CRLF, else errors */
	size_t	 linelen;		/* bytes in the current line */
	size_t	 max_line;		/* text line limit without CRLF, 0 = none */
	size_t	 max_size;		/* content limit */
	size_t	 size;			/* content bytes emitted */
	size_t	 max_header;		/* header block limit, 0 = none */
	int	 in_header;		/* before the first empty line */
};

/* Dot-stuffing for the way out. */
struct data_stuffer {
	int	 sol;			/* at start of a line */
	int	 done;
};

void	data_framer_init(struct data_framer *, int normalize, size_t max_line,
	    size_t max_size);
size_t	data_framer_feed(struct data_framer *, const char *in, size_t inlen,
	    char *out, size_t outcap, size_t *outlen, int *end);

void	data_framer_header_limit(struct data_framer *, size_t);

void	data_stuffer_init(struct data_stuffer *);
size_t	data_stuffer_feed(struct data_stuffer *, const char *in, size_t inlen,
	    char *out, size_t outcap, size_t *outlen);
size_t	data_stuffer_end(struct data_stuffer *, char *out, size_t outcap);

#endif
