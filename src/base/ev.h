/* SPDX-License-Identifier: MIT */
#ifndef SPORK_EV_H
#define SPORK_EV_H

#include <stddef.h>
#include <stdint.h>

#define EV_READ		0x1
#define EV_WRITE	0x2

struct ev_loop;
struct ev_io;
struct ev_timer;

typedef void	ev_io_cb(struct ev_io *, int events);
typedef void	ev_timer_cb(struct ev_timer *);
typedef void	ev_hook_cb(void *);

/* Embedded in the owner's struct; the owner keeps it alive while armed. */
struct ev_io {
	int		 fd;
	int		 mask;		/* EV_READ | EV_WRITE currently armed */
	int		 added;
	ev_io_cb	*cb;
	void		*arg;
};

struct ev_timer {
	uint64_t	 when;		/* monotonic ms; 0 when not armed */
	size_t		 slot;		/* index in the heap */
	ev_timer_cb	*cb;
	void		*arg;
};

struct ev_loop	*ev_new(void);
void		 ev_free(struct ev_loop *);
int		 ev_run(struct ev_loop *);
int		 ev_run_once(struct ev_loop *, int timeout_ms);
void		 ev_stop(struct ev_loop *);
void		 ev_set_hook(struct ev_loop *, ev_hook_cb *, void *);

void		 ev_io_init(struct ev_io *, int fd, ev_io_cb *, void *);
int		 ev_io_set(struct ev_loop *, struct ev_io *, int mask);
void		 ev_io_del(struct ev_loop *, struct ev_io *);

void		 ev_timer_init(struct ev_timer *, ev_timer_cb *, void *);
void		 ev_timer_set(struct ev_loop *, struct ev_timer *, uint64_t ms);
void		 ev_timer_del(struct ev_loop *, struct ev_timer *);
uint64_t	 ev_now(void);

#endif
