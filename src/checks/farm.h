/* SPDX-License-Identifier: MIT */
#ifndef SPORK_FARM_H
#define SPORK_FARM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "ev.h"
#include "sock.h"

#define FARM_SERVERS_MAX	16	/* configured entries */
#define FARM_ENTRY_MAX		256	/* one entry, with its NUL */
#define FARM_ADDRS_MAX		64	/* resolved addresses, all entries */
#define FARM_ERR_MAX		128
#define FARM_LABEL_MAX		120	/* what a probe learns (clamd: version) */

enum farm_state {
	FARM_UNKNOWN,		/* not probed yet: used like an up one */
	FARM_UP,
	FARM_DOWN,		/* tried only when no other is left */
};

/* Why a job ends without an answer (the adapter turns it into a result). */
enum farm_end {
	FARM_EXHAUSTED,		/* every address tried, none answered */
	FARM_DEADLINE,		/* deadline_ms spent */
	FARM_BROKEN,		/* our side: epoll, memory, the descriptor */
};

struct farm;
struct farm_job;

/* One health exchange with one address: connect, a command, an answer. */
struct farm_probe {
	struct farm		*f;
	struct farm_addr	*a;
	int			 state;		/* farm.c's */
	int			 sock;
	const char		*what;		/* the command's name, for reasons */
	const char		*cmd;
	size_t			 cmdlen;
	size_t			 sent;
	struct ev_io		 io;
	struct ev_timer		 timer;
	struct buf		 in;
};

struct farm_addr {
	struct sockaddr_storage	 ss;
	char			 name[SOCK_ADDRSTR_MAX];
	int			 server;	/* index of its entry */
	enum farm_state		 state;
	uint64_t		 down_until;	/* with down_ms: usable from then */
	char			 reason[FARM_ERR_MAX];	/* the last failure */
	char			 label[FARM_LABEL_MAX];
	unsigned long		 answers;	/* results from this address */
	unsigned long		 failures;	/* failed attempts */
	struct farm_probe	 probe;
};

/*
 * What the protocol adapter does. Each job callback either leaves the job
 * as it is (reply returning 0) or moves it on before returning: ends it
 * with farm_job_end() or sends it elsewhere with farm_job_retry().
 */
struct farm_ops {
	/* The reply so far; eof: the server closed (0 is then a bug). 0:
	 * wants more; -1: the job has moved on. */
	int	(*reply)(struct farm_job *, const char *, size_t, int eof);
	/* No answer: why is the job's last error, or the local trouble. */
	void	(*fail)(struct farm_job *, enum farm_end, const char *why);
	/* A job made by farm_defer(), now from the loop. */
	void	(*deliver)(struct farm_job *);
	/* The health timer: start a probe of an idle address. */
	void	(*probe)(struct farm *, struct farm_addr *);
	/* A probe's answer so far: 0 wants more; -1 the probe is over
	 * (farm_probe_stop(), _fail() or _send() called). */
	int	(*probe_answer)(struct farm *, struct farm_addr *, const char *,
		    size_t);
};

struct farm_conf {
	const char		*name;		/* "clamd": every log line's first word */
	const char		*verb;		/* "scan": a job's lines, "scans in flight" */
	const char		*answer;	/* "answer": in "... too long" */
	const char		*label_key;	/* "version": in state lines; NULL: none */
	const char		(*entries)[FARM_ENTRY_MAX];	/* "host:port" */
	int			 nentries;
	int			 entries_max;
	size_t			 addrs_max;	/* at most FARM_ADDRS_MAX */
	int			 strict;	/* every entry must resolve */
	unsigned		 connect_ms;	/* per attempt, probes too */
	unsigned		 deadline_ms;	/* from submit to the result */
	unsigned		 down_ms;	/* a failed address rests; 0: until
						 * an answer or a probe */
	unsigned		 health_ms;	/* probe every address; 0: off */
	size_t			 jobs_max;
	size_t			 reply_max;
	int			 framed;	/* chunks carry a 4-byte big-endian
						 * length; an empty one ends */
	const struct farm_ops	*ops;
	void			*arg;		/* the adapter's, farm_arg() */
};

struct farm	*farm_new(struct ev_loop *, const struct farm_conf *, char *err,
		    size_t errlen);
int		 farm_reload(struct farm *);
void		 farm_free(struct farm *);
void		*farm_arg(const struct farm *);

struct farm_job	*farm_submit(struct farm *, int fd, size_t size, const void *head,
		    size_t headlen, size_t ctxsize);
struct farm_job	*farm_defer(struct farm *, size_t ctxsize);
void		 farm_cancel(struct farm *, struct farm_job *);
void		 farm_job_end(struct farm_job *);
void		 farm_job_retry(struct farm_job *, const char *what,
		    const char *detail);
struct farm_addr *farm_job_answered(struct farm_job *);
void		*farm_job_ctx(struct farm_job *);
struct farm	*farm_job_farm(const struct farm_job *);
unsigned	 farm_job_id(const struct farm_job *);
size_t		 farm_job_size(const struct farm_job *);
unsigned	 farm_job_attempts(const struct farm_job *);
unsigned	 farm_job_ms(const struct farm_job *);
const char	*farm_job_state(const struct farm_job *);
const struct farm_addr *farm_job_addr(const struct farm_job *);

void		 farm_probe_send(struct farm *, struct farm_addr *,
		    const char *what, const char *cmd, size_t cmdlen);
void		 farm_probe_stop(struct farm_addr *);
void		 farm_probe_fail(struct farm_addr *, const char *what,
		    const char *detail);
void		 farm_addr_up(struct farm *, struct farm_addr *,
		    const char *label);

size_t		 farm_naddrs(const struct farm *);
struct farm_addr *farm_addr(const struct farm *, size_t);
int		 farm_addr_usable(const struct farm_addr *);
size_t		 farm_up(const struct farm *);
size_t		 farm_njobs(const struct farm *);
unsigned long	 farm_failovers(const struct farm *);
const char	*farm_entry(const struct farm *, int);
const char	*farm_state_name(enum farm_state);
int		 farm_status_unresolved(const struct farm *, struct buf *);

int		 farm_connect(const struct sockaddr_storage *);

#endif
