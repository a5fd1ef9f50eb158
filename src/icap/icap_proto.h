/* SPDX-License-Identifier: MIT */
#ifndef SPORK_ICAP_PROTO_H
#define SPORK_ICAP_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * ICAP (RFC 3507) as bytes: the request head, the encapsulated HTTP
 * heads, and the chunked body, parsed strictly (CRLF only, named limits,
 * nothing guessed); no I/O. icap.c owns the connections.
 */

#define ICAP_HEAD_MAX		16384	/* the ICAP head */
#define ICAP_HTTP_HEADS_MAX	65536	/* the encapsulated HTTP heads (as
					 * Squid's own request head limit) */
#define ICAP_HEADERS_MAX	100	/* header lines in one head */
#define ICAP_URL_MAX		2048	/* kept of the HTTP request's URL */
#define ICAP_SERVICE_MAX	64
#define ICAP_CHUNK_LINE_MAX	1024	/* a chunk-size line, extensions too */
#define ICAP_PREVIEW_MAX	(1L << 30)	/* the largest Preview: value */
#define ICAP_CLIENT_IP_MAX	64	/* X-Client-IP, its NUL included */
#define ICAP_CHUNK_HEAD_MAX	20	/* icap_chunk_head's buffer */

enum icap_method {
	ICAP_OPTIONS,
	ICAP_REQMOD,
	ICAP_RESPMOD,
};

enum icap_body {
	ICAP_BODY_NONE,		/* null-body, or OPTIONS without a body */
	ICAP_BODY_REQ,		/* req-body */
	ICAP_BODY_RES,		/* res-body */
};

struct icap_req {
	enum icap_method	method;
	char			service[ICAP_SERVICE_MAX];	/* the URI's path,
							 * no '/', no query */
	int			allow_204;	/* "Allow: 204" */
	long			preview;	/* -1: no Preview header */
	/* Encapsulated: offsets into the bytes after the ICAP head, -1
	 * when absent; body is the offset of the *-body or null-body
	 * entry (the end of the HTTP heads, at most ICAP_HTTP_HEADS_MAX). An
	 * OPTIONS without Encapsulated has all three -1. */
	long			req_hdr;
	long			res_hdr;
	long			body;
	enum icap_body		body_kind;
	char			client_ip[ICAP_CLIENT_IP_MAX];	/* X-Client-IP
						 * (an IPv4 or IPv6 literal),
						 * "" if none */
};

struct icap_http {
	char			url[ICAP_URL_MAX];	/* the request's URL:
						 * absolute, or http://Host/path */
	int			status;		/* the response's, 0 if none */
	int			chunked_te;	/* Transfer-Encoding seen in the
						 * response head (informational) */
	int			url_truncated;	/* url was cut to fit */
};

/*
 * The length of the head at the start of buf (up to and including the
 * blank line): 0 when more bytes are needed, -1 when it cannot be a head
 * (a bare LF or CR, more than max bytes without the blank line, a NUL).
 */
ssize_t	icap_head_end(const char *buf, size_t len, size_t max);

/*
 * Parses the ICAP head (request line and headers, blank line included:
 * len is what icap_head_end returned). 0, or the ICAP status code to
 * answer (400 malformed, 501 an unknown method, 505 a well-formed
 * version other than ICAP/1.0) with a short reason in err. 405 (a method
 * the service does not offer) is the caller's to answer: the parser
 * does not know the services.
 */
int	icap_parse_head(const char *head, size_t len, struct icap_req *,
	    char *err, size_t errlen);

/*
 * Parses the encapsulated HTTP heads, hdrs[0, len) being the bytes from
 * offset 0 to r->body (len at least r->body; only those are read): the
 * request head at r->req_hdr and the response head at r->res_hdr, each
 * ending with its blank line where the next offset begins. 0, or 400
 * with err. A request without a Host header (HTTP/1.0) keeps its target
 * as url.
 */
int	icap_parse_http(const char *hdrs, size_t len, const struct icap_req *r,
	    struct icap_http *, char *err, size_t errlen);

/* The chunked body decoder: feed it what arrives, in any pieces. */
struct icap_chunked {
	int		state;		/* private */
	uint64_t	left;		/* bytes left in the current chunk */
	size_t		linelen;	/* private: the size line read so far */
	char		line[ICAP_CHUNK_LINE_MAX];
	int		done;		/* the zero chunk and its CRLF are in */
	int		ieof;		/* the zero chunk said "; ieof" */
	uint64_t	total;		/* data bytes decoded */
};

void	icap_chunked_init(struct icap_chunked *);
/*
 * Decodes in[0, len), handing data to out (which returns -1 to stop; a
 * NULL out discards). Returns the bytes consumed (fewer than len only
 * once done: the rest belongs to the next request; 0 once done), or -1
 * with err on a malformed body: a size that is not hex, has more than 16
 * digits or exceeds 2^62, a missing CRLF, a bare CR or LF, a line longer
 * than ICAP_CHUNK_LINE_MAX, a trailer line, "ieof" on a chunk other than
 * the zero chunk, or out refusing. Other extensions are ignored. After
 * an error every call fails again.
 */
ssize_t	icap_chunked_feed(struct icap_chunked *, const char *in, size_t len,
	    int (*out)(void *, const char *, size_t), void *arg,
	    char *err, size_t errlen);

/* Writes one chunk's size line ("1a2b\r\n", lowercase hex, then a NUL)
 * into buf (at least ICAP_CHUNK_HEAD_MAX bytes); returns its length
 * without the NUL. The data and "\r\n" follow. */
size_t	icap_chunk_head(char *buf, size_t len);

#endif
