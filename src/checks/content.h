/* SPDX-License-Identifier: MIT */
#ifndef SPORK_CONTENT_H
#define SPORK_CONTENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "action.h"
#include "buf.h"
#include "dlp.h"

#define CONTENT_RULES_MAX	64	/* one bit each in a result */
#define CONTENT_NAME_MAX	32
#define CONTENT_PATTERN_MAX	512
#define CONTENT_TEXT_MAX	512
#define CONTENT_NETS_MAX	64
#define CONTENT_HEADERS_MAX	1024

enum content_dir {
	CD_ANY,
	CD_INBOUND,		/* from a client outside inside_networks */
	CD_OUTBOUND,		/* from a client inside */
};

enum content_match {
	CM_ALL,			/* every message */
	CM_TYPE,		/* a part's declared Content-Type */
	CM_MAGIC,		/* a part's type detected from its bytes */
	CM_EXT,			/* a file name's extension, archives included */
	CM_SIZE,		/* a part larger than size */
	CM_DLP,			/* a detector in a text part */
	CM_REGEX,		/* a regular expression in a text part */
};

/* The actions a rule may take; the strongest of all hits wins. */
#define CONTENT_ACTIONS	(ACT_BIT(ACT_TAG) | ACT_BIT(ACT_FOOTER) | \
			ACT_BIT(ACT_REDACT) | ACT_BIT(ACT_STRIP) | \
			ACT_BIT(ACT_QUARANTINE) | ACT_BIT(ACT_REJECT))

enum content_dkim {
	CDKIM_NONE,		/* no DKIM-Signature */
	CDKIM_KEPT,		/* only headers added on top */
	CDKIM_BROKEN,		/* the body or a signed header changed */
};

struct content_rule {
	char			 name[CONTENT_NAME_MAX];
	enum content_dir	 dir;
	enum content_match	 match;
	enum action	 action;
	char			 pattern[CONTENT_PATTERN_MAX];	/* a,b,c */
	size_t			 size;
	enum dlp_kind		 dlp;
	void			*re;		/* pcre2_code */
	char			 reply[CONTENT_TEXT_MAX];
	char			 subject_tag[64];
	char			 header[CONTENT_TEXT_MAX];	/* added */
	char			 set_header[CONTENT_TEXT_MAX];	/* replaced */
	char			 footer[CONTENT_TEXT_MAX];
	/* counters, kept by the relay */
	uint64_t		 hits;		/* messages */
	uint64_t		 matches;	/* parts or matches */
};

struct content_net {
	int			 family;
	uint8_t			 addr[16];
	unsigned		 bits;
};

struct content_rules {
	struct content_rule	 r[CONTENT_RULES_MAX];
	int			 n;
	struct content_net	 nets[CONTENT_NETS_MAX];
	int			 nnets;
	char			 path[512];
	uint64_t		 checked, errors, rewritten;
	unsigned		 refs;		/* the active set, generations */
};

/* What the worker found; travels back inside struct scan_result. */
struct content_result {
	int			 checked;
	int			 outbound;
	enum action	 action;
	int			 rule;		/* the deciding rule */
	uint64_t		 hits;		/* bit i: rule i matched */
	uint32_t		 count[CONTENT_RULES_MAX];
	int			 rewritten;	/* a new message is attached */
	int			 body_changed;
	enum content_dkim	 dkim;
	char			 headers[CONTENT_HEADERS_MAX];	/* to prepend */
	char			 where[256];	/* first hit, for the log */
	char			 error[256];
	/* Set by the relay, never taken from a worker: the rules that judged
	 * the message (a reload may have made others active since). */
	const struct content_rules *rules;
};

/* The rules file and the inside networks (relay side). */
struct content_rules *content_rules_load(const char *path,
		    const char *const *nets, int nnets, char *err,
		    size_t errlen);
int		 content_rules_parse_line(struct content_rules *, char *line,
		    char *err, size_t errlen);
int		 content_net_parse(const char *, struct content_net *);
/* Loaded rules start with one reference; free drops one. */
struct content_rules *content_rules_ref(struct content_rules *);
void		 content_rules_free(struct content_rules *);
int		 content_rules_find(const struct content_rules *,
		    const char *name);
int		 content_outbound(const struct content_rules *,
		    const struct sockaddr_storage *client);
const char	*content_match_name(enum content_match);
/* The active rules, for the relay's accounting and sporkctl status.
 * Setting takes a reference and carries the counters over by rule name. */
void		 content_set_active(struct content_rules *);
struct content_rules *content_active(void);
void		 content_account(const char *sid, const struct content_result *,
		    uint64_t size, uint64_t new_size);
void		 content_status(struct buf *);

/* Inside a scan worker. */
int		 content_scan_init(char *err, size_t errlen);
int		 content_scan(const struct content_rules *, int fd, size_t size,
		    int outbound, int outfd, struct content_result *,
		    uint64_t *outsize, char *err, size_t errlen);

#endif
