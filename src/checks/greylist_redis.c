/* SPDX-License-Identifier: MIT */
/*
 * Greylisting state in Redis, shared by several appliances: hiredis's
 * asynchronous API on the event loop (its socket is an ev_io; each query
 * has its own deadline). A record is a string "FIRST LAST PASSED" under
 * "spork:greylist:" + triplet, with a TTL of greylist_max while
 * greylisted and greylist_expiry once passed, so Redis does the expiry.
 * Read, decide (greylist_decide, as for the disk store), write: two
 * appliances deciding at once can at worst both answer 450. When Redis
 * is down or slow, the answer is GL_ERROR and the caller lets mail pass;
 * reconnection is attempted at most once a second.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "greylist_redis.h"
#include "log.h"
#include "sock.h"

#define GR_PREFIX		"spork:greylist:"
#define GR_RECONNECT_MS		1000

struct gr_query {
	greylist_cb	*cb;		/* NULL once answered or cancelled */
	void		*arg;
	char		*key;
	struct ev_timer	 timer;
	int		 caller;	/* the caller holds it */
	int		 pending;	/* hiredis holds it */
};

static struct ev_loop		*gr_loop;
static redisAsyncContext	*gr_ac;
static int			 gr_connected;
static struct ev_io		 gr_io;
static int			 gr_mask;
static char			 gr_host[64];
static int			 gr_port;
static struct greylist_times	 gr_t;
static unsigned			 gr_timeout;
static uint64_t			 gr_last_try;

/* ------------------------------------------------------------------ */
/* hiredis on ev                                                       */

static void
gr_io_cb(struct ev_io *io, int events)
{
	(void)io;
	if ((events & EV_READ) && gr_ac != NULL)
		redisAsyncHandleRead(gr_ac);
	if ((events & EV_WRITE) && gr_ac != NULL)
		redisAsyncHandleWrite(gr_ac);
}

static void
gr_set_mask(int mask)
{
	gr_mask = mask;
	if (mask == 0)
		ev_io_del(gr_loop, &gr_io);
	else if (ev_io_set(gr_loop, &gr_io, mask) == -1)
		log_warn(NULL, "greylist redis: epoll: %s", strerror(errno));
}

static void gr_add_read(void *d) { (void)d; gr_set_mask(gr_mask | EV_READ); }
static void gr_del_read(void *d) { (void)d; gr_set_mask(gr_mask & ~EV_READ); }
static void gr_add_write(void *d) { (void)d; gr_set_mask(gr_mask | EV_WRITE); }
static void gr_del_write(void *d) { (void)d; gr_set_mask(gr_mask & ~EV_WRITE); }
static void gr_cleanup(void *d) { (void)d; gr_set_mask(0); }

static void
gr_on_connect(const redisAsyncContext *ac, int status)
{
	if (status != REDIS_OK) {
		log_warn(NULL, "greylist redis %s:%d: connect failed: %s",
		    gr_host, gr_port, ac->errstr);
		gr_ac = NULL;		/* hiredis frees it */
		gr_connected = 0;
		return;
	}
	gr_connected = 1;
	log_info(NULL, "greylist redis %s:%d connected", gr_host, gr_port);
}

static void
gr_on_disconnect(const redisAsyncContext *ac, int status)
{
	if (status != REDIS_OK)
		log_warn(NULL, "greylist redis %s:%d: disconnected: %s",
		    gr_host, gr_port, ac->errstr);
	gr_ac = NULL;
	gr_connected = 0;
}

static int
gr_connect(void)
{
	redisAsyncContext	*ac;

	if (gr_ac != NULL)
		return 0;
	if (gr_last_try != 0 && ev_now() - gr_last_try < GR_RECONNECT_MS)
		return -1;
	gr_last_try = ev_now();
	if ((ac = redisAsyncConnect(gr_host, gr_port)) == NULL)
		return -1;
	if (ac->err) {
		log_warn(NULL, "greylist redis %s:%d: %s", gr_host, gr_port,
		    ac->errstr);
		redisAsyncFree(ac);
		return -1;
	}
	ev_io_init(&gr_io, ac->c.fd, gr_io_cb, NULL);
	gr_mask = 0;
	ac->ev.addRead = gr_add_read;
	ac->ev.delRead = gr_del_read;
	ac->ev.addWrite = gr_add_write;
	ac->ev.delWrite = gr_del_write;
	ac->ev.cleanup = gr_cleanup;
	redisAsyncSetConnectCallback(ac, gr_on_connect);
	redisAsyncSetDisconnectCallback(ac, gr_on_disconnect);
	gr_ac = ac;
	return 0;
}

/* ------------------------------------------------------------------ */

int
greylist_redis_init(struct ev_loop *loop, const char *addr,
    const struct greylist_times *t, unsigned timeout_ms, char *err,
    size_t errlen)
{
	struct sockaddr_storage	ss;
	char			port[8];

	gr_loop = loop;
	gr_t = *t;
	gr_timeout = timeout_ms;
	if (sock_parse_addr(addr, &ss) == -1 ||
	    sock_format_host(&ss, gr_host, sizeof(gr_host)) == -1) {
		snprintf(err, errlen, "greylist_redis: bad address '%s'", addr);
		return -1;
	}
	snprintf(port, sizeof(port), "%s", strrchr(addr, ':') + 1);
	gr_port = atoi(port);
	(void)gr_connect();
	return 0;
}

int
greylist_redis_connected(void)
{
	return gr_connected;
}

static void
gr_maybe_free(struct gr_query *q)
{
	if (q->caller || q->pending)
		return;
	ev_timer_del(gr_loop, &q->timer);
	free(q->key);
	free(q);
}

/* The caller's reference ends with its callback. */
static void
gr_answer(struct gr_query *q, enum greylist_verdict v)
{
	ev_timer_del(gr_loop, &q->timer);
	if (!q->caller)
		return;
	q->caller = 0;
	q->cb(q->arg, v);
}

static void
gr_timeout_cb(struct ev_timer *t)
{
	struct gr_query	*q = t->arg;

	if (q->pending)
		log_warn(NULL, "greylist redis %s:%d: no answer in %u ms",
		    gr_host, gr_port, gr_timeout);
	gr_answer(q, GL_ERROR);
	gr_maybe_free(q);
}

static void
gr_got(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct gr_query		*q = privdata;
	redisReply		*r = reply;
	struct greylist_rec	 rec;
	enum greylist_verdict	 v;
	char			 val[80], ttl[16];
	int			 exists = 0;

	(void)ac;
	q->pending = 0;
	if (r == NULL || (r->type != REDIS_REPLY_STRING &&
	    r->type != REDIS_REPLY_NIL)) {
		gr_answer(q, GL_ERROR);
		gr_maybe_free(q);
		return;
	}
	memset(&rec, 0, sizeof(rec));
	if (r->type == REDIS_REPLY_STRING && r->len < 80 &&
	    greylist_rec_parse(r->str, &rec) >= 0)
		exists = 1;
	v = greylist_decide(&rec, exists, (int64_t)time(NULL), &gr_t);
	greylist_rec_format(&rec, val, sizeof(val));
	snprintf(ttl, sizeof(ttl), "%u", greylist_ttl(&rec, &gr_t));
	if (gr_ac != NULL)
		redisAsyncCommand(gr_ac, NULL, NULL, "SET %s%s %s EX %s",
		    GR_PREFIX, q->key, val, ttl);
	gr_answer(q, v);
	gr_maybe_free(q);
}

/*
 * The callback runs once, later, with the verdict (GL_ERROR when Redis is
 * unreachable or slow); NULL when out of memory.
 */
struct gr_query *
greylist_redis_check(const char *key, greylist_cb *cb, void *arg)
{
	struct gr_query	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->key = strdup(key)) == NULL) {
		free(q);
		return NULL;
	}
	q->cb = cb;
	q->arg = arg;
	q->caller = 1;
	ev_timer_init(&q->timer, gr_timeout_cb, q);
	ev_timer_set(gr_loop, &q->timer, gr_timeout);
	if (gr_connect() == 0 && redisAsyncCommand(gr_ac, gr_got, q,
	    "GET %s%s", GR_PREFIX, key) == REDIS_OK)
		q->pending = 1;
	else
		ev_timer_set(gr_loop, &q->timer, 1);	/* answer GL_ERROR */
	return q;
}

void
greylist_redis_cancel(struct gr_query *q)
{
	if (q == NULL || !q->caller)
		return;
	q->caller = 0;
	gr_maybe_free(q);
}
