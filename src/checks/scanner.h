/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SCANNER_H
#define SPORK_SCANNER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "content.h"

#define SCAN_NAME_MAX	256
#define SCAN_ENGINE_MAX	128

enum scan_verdict {
	SCAN_CLEAN,
	SCAN_VIRUS,		/* name: the signature */
	SCAN_ENCRYPTED,		/* encrypted archive or document */
	SCAN_LIMITS,		/* a scan limit was exceeded */
	SCAN_ERROR,		/* name: what went wrong */
	SCAN_TIMEOUT,		/* the scan's wall-clock budget ran out */
};

struct scan_result {
	enum scan_verdict	verdict;
	char			name[SCAN_NAME_MAX];
	char			engine[SCAN_ENGINE_MAX];	/* for the scan header */
	unsigned		ms;
	/*
	 * The "clean" policy: when cleaned is set, cleaned_fd holds the
	 * message with its infected parts replaced by notices (it scanned
	 * clean), and the callback owns the descriptor.
	 */
	int			cleaned;
	int			cleaned_fd;
	unsigned		removed;	/* parts replaced */
	uint64_t		cleaned_size;
	/*
	 * The content policy (local workers only). When content.rewritten
	 * is set, cleaned_fd holds the message to deliver instead, of
	 * cleaned_size bytes, and the callback owns the descriptor.
	 */
	struct content_result	content;
};

/* Does a result carry a descriptor for the callback to adopt or close? */
#define SCAN_RESULT_HAS_FD(r)	((r)->cleaned || (r)->content.rewritten)

/* submit flags */
#define SCAN_OUTBOUND	0x1	/* the client is inside: content rules */
#define SCAN_VIRUS_ONLY	0x2	/* a second look after a milter rewrote the
				 * body: no content rules (applied once) */

typedef void	scan_done_cb(void *arg, const struct scan_result *);

struct scan_job;

/*
 * One interface for every scanning backend (local sandboxed workers,
 * remote clamd). Everything runs on the event loop; nothing blocks.
 */
struct scan_backend {
	const char	*name;
	/*
	 * Scan size bytes readable from fd at offset 0 (pread or mmap, never
	 * the file position). The backend dups fd if it needs it after the
	 * call. Returns a handle, or NULL with errno set. cb is called exactly
	 * once, from the event loop and never from inside submit, unless the
	 * job is cancelled first.
	 */
	struct scan_job	*(*submit)(struct scan_backend *, int fd, size_t size,
			    unsigned flags, scan_done_cb *cb, void *arg);
	/* The session is gone: drop the job; cb will not be called. */
	void		 (*cancel)(struct scan_backend *, struct scan_job *);
	/*
	 * Pick up new signatures, and the content rules when not NULL (the
	 * backend takes its own reference); in-flight scans finish on the old
	 * ones.
	 */
	int		 (*reload)(struct scan_backend *, struct content_rules *);
	/* Append "key=value" lines describing the backend's state. */
	void		 (*status)(struct scan_backend *, struct buf *out);
	void		 (*free)(struct scan_backend *);
	void		*impl;
};

const char	*scan_verdict_name(enum scan_verdict);

#endif
