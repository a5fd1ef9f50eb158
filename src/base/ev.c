/* SPDX-License-Identifier: MIT */
/*
 * The event loop: epoll for descriptors, a binary min-heap of one-shot
 * timers, and a hook run after every batch (the relay reaps dead sessions
 * there, so no callback ever sees freed memory). Single-threaded; nothing
 * here blocks except epoll_wait itself. Knows nothing about sockets or SMTP.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "ev.h"
#include "log.h"

#define EV_BATCH	256

struct ev_loop {
	int		  epfd;
	int		  stop;
	struct ev_timer	**heap;
	size_t		  nheap;
	size_t		  capheap;
	ev_hook_cb	 *hook;
	void		 *hook_arg;
};

uint64_t
ev_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct ev_loop *
ev_new(void)
{
	struct ev_loop	*l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		free(l);
		return NULL;
	}
	return l;
}

void
ev_free(struct ev_loop *l)
{
	close(l->epfd);
	free(l->heap); l->heap = NULL;
	free(l);
}

void
ev_stop(struct ev_loop *l)
{
	l->stop = 1;
}

void
ev_set_hook(struct ev_loop *l, ev_hook_cb *cb, void *arg)
{
	l->hook = cb;
	l->hook_arg = arg;
}

void
ev_io_init(struct ev_io *io, int fd, ev_io_cb *cb, void *arg)
{
	io->fd = fd;
	io->mask = 0;
	io->added = 0;
	io->cb = cb;
	io->arg = arg;
}

int
ev_io_set(struct ev_loop *l, struct ev_io *io, int mask)
{
	struct epoll_event	ee;

	if (io->added && io->mask == mask)
		return 0;
	/* Nothing wanted: out of the set, since epoll reports a hang-up
	 * or an error even with no events asked for, and nobody would
	 * take it (the loop would spin). */
	if (mask == 0) {
		ev_io_del(l, io);
		return 0;
	}
	memset(&ee, 0, sizeof(ee));
	ee.events = ((mask & EV_READ) ? EPOLLIN | EPOLLRDHUP : 0) |
	    ((mask & EV_WRITE) ? EPOLLOUT : 0);
	ee.data.ptr = io;
	if (epoll_ctl(l->epfd, io->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	    io->fd, &ee) == -1)
		return -1;
	io->added = 1;
	io->mask = mask;
	return 0;
}

void
ev_io_del(struct ev_loop *l, struct ev_io *io)
{
	if (io->added && epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL) == -1)
		log_warn(NULL, "event epoll_ctl del fd=%d: %s", io->fd,
		    strerror(errno));
	io->added = 0;
	io->mask = 0;
}

void
ev_timer_init(struct ev_timer *t, ev_timer_cb *cb, void *arg)
{
	t->when = 0;
	t->slot = 0;
	t->cb = cb;
	t->arg = arg;
}

static void
heap_swap(struct ev_loop *l, size_t a, size_t b)
{
	struct ev_timer	*t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->slot = a;
	l->heap[b]->slot = b;
}

static void
heap_up(struct ev_loop *l, size_t i)
{
	while (i > 0 && l->heap[(i - 1) / 2]->when > l->heap[i]->when) {
		heap_swap(l, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct ev_loop *l, size_t i)
{
	size_t	c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && l->heap[c + 1]->when < l->heap[c]->when)
			c++;
		if (l->heap[i]->when <= l->heap[c]->when)
			break;
		heap_swap(l, i, c);
		i = c;
	}
}

void
ev_timer_del(struct ev_loop *l, struct ev_timer *t)
{
	size_t	i = t->slot;

	if (t->when == 0)
		return;
	if (i >= l->nheap || l->heap[i] != t)
		fatal("ev_timer_del: timer not in heap");
	l->nheap--;
	if (i != l->nheap) {
		l->heap[i] = l->heap[l->nheap];
		l->heap[i]->slot = i;
		heap_down(l, i);
		heap_up(l, i);
	}
	t->when = 0;
}

/* Arm (or re-arm) a timer to fire ms milliseconds from now. */
void
ev_timer_set(struct ev_loop *l, struct ev_timer *t, uint64_t ms)
{
	struct ev_timer	**nh;
	size_t		  ncap;

	ev_timer_del(l, t);
	if (l->nheap == l->capheap) {
		ncap = l->capheap ? l->capheap * 2 : 64;
		if ((nh = realloc(l->heap, ncap * sizeof(*nh))) == NULL)
			fatal("ev_timer_set: out of memory");
		l->heap = nh;
		l->capheap = ncap;
	}
	t->when = ev_now() + (ms ? ms : 1);
	t->slot = l->nheap;
	l->heap[l->nheap++] = t;
	heap_up(l, t->slot);
}

static int
ev_next_timeout(struct ev_loop *l)
{
	uint64_t	now;

	if (l->nheap == 0)
		return -1;
	now = ev_now();
	if (l->heap[0]->when <= now)
		return 0;
	if (l->heap[0]->when - now > 60000)
		return 60000;
	return (int)(l->heap[0]->when - now);
}

static void
ev_run_timers(struct ev_loop *l)
{
	uint64_t	 now = ev_now();
	struct ev_timer	*t;

	while (l->nheap > 0 && l->heap[0]->when <= now) {
		t = l->heap[0];
		ev_timer_del(l, t);
		t->cb(t);
	}
}

/*
 * One batch: wait up to timeout_ms (-1: until the next timer), run the
 * callbacks, the timers due and the hook. Returns how many descriptors
 * had events, or -1 with errno (EINTR is a batch with none).
 */
int
ev_run_once(struct ev_loop *l, int timeout_ms)
{
	struct epoll_event	 evs[EV_BATCH];
	struct ev_io		*io;
	int			 n, i, m;

	n = epoll_wait(l->epfd, evs, EV_BATCH, timeout_ms);
	if (n == -1)
		return errno == EINTR ? 0 : -1;
	for (i = 0; i < n; i++) {
		io = evs[i].data.ptr;
		m = 0;
		if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP |
		    EPOLLERR))
			m |= EV_READ;
		if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			m |= EV_WRITE;
		/* Only deliver what is still armed: an earlier callback
		 * in this batch may have changed its mind. */
		m &= io->mask;
		if (m)
			io->cb(io, m);
	}
	ev_run_timers(l);
	if (l->hook)
		l->hook(l->hook_arg);
	return n;
}

int
ev_run(struct ev_loop *l)
{
	while (!l->stop)
		if (ev_run_once(l, ev_next_timeout(l)) == -1)
			return -1;
	return 0;
}
