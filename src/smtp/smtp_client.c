/* SPDX-License-Identifier: MIT */
/*
 * A small SMTP client for messages the daemon sends on its own: releasing
 * a quarantined message to its original destination, notices, journal
 * copies. One message per connection, strictly in lockstep (no
 * pipelining): greeting, EHLO, MAIL, every RCPT, DATA, the dot-stuffed
 * body from a file, QUIT. The result is the server's final reply and its
 * code, or why there was none (code 0). Event-driven; never
 * blocks; knows nothing about why the message is being sent.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "ev.h"
#include "log.h"
#include "smtp_client.h"
#include "smtp_data.h"
#include "smtp_proto.h"
#include "sock.h"

#define SC_BUF_MAX	(128 * 1024)
#define SC_CHUNK	8192
#define SC_REPLY_LINE	2048
#define SC_REPLY_LINES	100

enum sc_state {
	SC_CONNECT,
	SC_GREETING,
	SC_EHLO,
	SC_MAIL,
	SC_RCPT,
	SC_DATA,
	SC_BODY,
	SC_DOT,
	SC_QUIT,
};

struct smtp_client {
	struct ev_loop		*loop;
	struct smtp_client_msg	 m;
	enum sc_state		 state;
	int			 fd;
	int			 body;		/* message file */
	off_t			 bodysize;
	off_t			 sent;
	size_t			 rcpt_next;
	size_t			 rcpt_ok;
	int			 rcpt_code;	/* the refusal to report when
						 * none was accepted */
	struct ev_io		 io;
	struct ev_timer		 timer;
	struct buf		 in, out;
	struct data_stuffer	 ds;
	smtp_client_cb		*cb;
	void			*arg;
	int			 done;
};

static void	sc_finish(struct smtp_client *, int ok, int code,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
sc_finish(struct smtp_client *c, int ok, int code, const char *fmt, ...)
{
	char	why[600];
	va_list	ap;

	if (c->done)
		return;
	c->done = 1;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	ev_timer_del(c->loop, &c->timer);
	if (c->fd != -1) {
		(void)buf_write_fd(&c->out, c->fd);	/* QUIT, best effort */
		ev_io_del(c->loop, &c->io);
		close(c->fd);
		c->fd = -1;
	}
	c->cb(c->arg, ok, code, why);
	/* Freed from a zero timer: we may be inside our own callback. */
	ev_timer_init(&c->timer, smtp_client_free_cb, c);
	ev_timer_set(c->loop, &c->timer, 0);
}

void
smtp_client_free_cb(struct ev_timer *t)
{
	struct smtp_client	*c = t->arg;

	if (c->body != -1)
		close(c->body);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

static void
sc_cmd(struct smtp_client *c, const char *verb, const char *arg)
{
	if (buf_append(&c->out, verb, strlen(verb)) == -1 ||
	    buf_append(&c->out, arg, strlen(arg)) == -1 ||
	    buf_append(&c->out, "\r\n", 2) == -1)
		sc_finish(c, 0, 0, "command too long");
}

static void
sc_pump(struct smtp_client *c)
{
	char	in[SC_CHUNK], out[2 * SC_CHUNK + 8];
	ssize_t	n;
	size_t	olen;

	while (c->state == SC_BODY && buf_used(&c->out) < SC_BUF_MAX / 2) {
		n = pread(c->body, in, sizeof(in), c->sent);
		if (n < 0) {
			sc_finish(c, 0, 0, "reading the message: %s",
			    strerror(errno));
			return;
		}
		if (n == 0) {
			olen = data_stuffer_end(&c->ds, out, sizeof(out));
			buf_append(&c->out, out, olen);
			c->state = SC_DOT;
			return;
		}
		data_stuffer_feed(&c->ds, in, (size_t)n, out, sizeof(out),
		    &olen);
		if (buf_append(&c->out, out, olen) == -1) {
			sc_finish(c, 0, 0, "output buffer full");
			return;
		}
		c->sent += n;
	}
}

/* One complete reply has arrived: move the dialogue on. */
static void
sc_reply(struct smtp_client *c, int code, const char *r, size_t len)
{
	int	ok = code / 100 == 2;
	int	tl = (int)(memchr(r, '\r', len) ? (const char *)memchr(r,
		    '\r', len) - r : (int)len);

	switch (c->state) {
	case SC_GREETING:
		if (!ok)
			goto refused;
		sc_cmd(c, "EHLO ", c->m.helo);
		c->state = SC_EHLO;
		break;
	case SC_EHLO:
		if (!ok)
			goto refused;
		sc_cmd(c, "MAIL FROM:", c->m.sender);
		c->state = SC_MAIL;
		break;
	case SC_MAIL:
		if (!ok)
			goto refused;
		c->state = SC_RCPT;
		/* FALLTHROUGH */
	case SC_RCPT:
		if (c->rcpt_next > 0 && ok)
			c->rcpt_ok++;
		/* A temporary refusal outweighs a permanent one: with no
		 * recipient accepted, the message may still go later. */
		else if (c->rcpt_next > 0 && (c->rcpt_code == 0 ||
		    code / 100 == 4))
			c->rcpt_code = code;
		if (c->rcpt_next < c->m.nrcpts) {
			sc_cmd(c, "RCPT TO:", c->m.rcpts[c->rcpt_next++]);
			break;
		}
		if (c->rcpt_ok == 0) {
			sc_finish(c, 0, c->rcpt_code, "%.*s", tl, r);
			break;
		}
		sc_cmd(c, "DATA", "");
		c->state = SC_DATA;
		break;
	case SC_DATA:
		if (code != 354)
			goto refused;
		data_stuffer_init(&c->ds);
		c->state = SC_BODY;
		if (c->m.prefix != NULL)
			buf_append(&c->out, c->m.prefix, strlen(c->m.prefix));
		sc_pump(c);
		break;
	case SC_DOT:
		sc_cmd(c, "QUIT", "");
		c->state = SC_QUIT;
		if (!ok)
			goto refused;
		sc_finish(c, 1, code, "%.*s (%zu of %zu recipients)", tl, r,
		    c->rcpt_ok, c->m.nrcpts);
		break;
	default:
		break;
	}
	return;
refused:
	sc_finish(c, 0, code, "%.*s", tl, r);
}

static void
sc_io(struct ev_io *io, int events)
{
	struct smtp_client	*c = io->arg;
	const char		*why;
	size_t			 used;
	ssize_t			 n;
	int			 code, rc, mask;

	if (c->state == SC_CONNECT) {
		if (sock_connect_result(c->fd) == -1) {
			sc_finish(c, 0, 0, "connect: %s", strerror(errno));
			return;
		}
		c->state = SC_GREETING;
	}
	if (events & EV_WRITE) {
		if (buf_write_fd(&c->out, c->fd) == -1 && errno != EAGAIN) {
			sc_finish(c, 0, 0, "write: %s", strerror(errno));
			return;
		}
		sc_pump(c);
	}
	if (events & EV_READ) {
		n = buf_read_fd(&c->in, c->fd);
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			sc_finish(c, 0, 0, "connection lost%s",
			    c->state == SC_QUIT ? " after the final reply" : "");
			return;
		}
		while (!c->done && buf_used(&c->in) > 0) {
			rc = smtp_reply_scan(buf_head(&c->in), buf_used(&c->in),
			    SC_REPLY_LINE, SC_REPLY_LINES, &used, &code, &why);
			if (rc == 0)
				break;
			if (rc == -1) {
				sc_finish(c, 0, 0, "bad reply: %s", why);
				return;
			}
			sc_reply(c, code, buf_head(&c->in), used);
			buf_consume(&c->in, used);
		}
	}
	if (c->done)
		return;
	mask = EV_READ | (buf_used(&c->out) > 0 ? EV_WRITE : 0);
	if (ev_io_set(c->loop, &c->io, mask) == -1)
		sc_finish(c, 0, 0, "epoll: %s", strerror(errno));
	else
		ev_timer_set(c->loop, &c->timer, c->m.timeout_ms);
}

static void
sc_timeout(struct ev_timer *t)
{
	struct smtp_client	*c = t->arg;

	sc_finish(c, 0, 0, "timeout");
}

int
smtp_client_send(struct ev_loop *loop, const struct smtp_client_msg *m,
    smtp_client_cb *cb, void *arg)
{
	struct smtp_client	*c;
	struct stat		 st;
	int			 saved;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->loop = loop;
	c->m = *m;
	c->fd = -1;
	c->cb = cb;
	c->arg = arg;
	buf_init(&c->in, SC_BUF_MAX);
	buf_init(&c->out, SC_BUF_MAX);
	c->body = m->path != NULL ? open(m->path, O_RDONLY | O_CLOEXEC) :
	    fcntl(m->body_fd, F_DUPFD_CLOEXEC, 0);
	if (c->body == -1 || fstat(c->body, &st) == -1)
		goto fail;
	c->bodysize = st.st_size;
	c->fd = sock_connect(&m->dst, m->src_valid ? &m->src : NULL,
	    m->src_valid);
	if (c->fd == -1)
		goto fail;
	c->state = SC_CONNECT;
	ev_io_init(&c->io, c->fd, sc_io, c);
	ev_timer_init(&c->timer, sc_timeout, c);
	if (ev_io_set(loop, &c->io, EV_WRITE) == -1)
		goto fail;
	ev_timer_set(loop, &c->timer, m->timeout_ms);
	return 0;
fail:
	saved = errno;
	if (c->fd != -1)
		close(c->fd);
	if (c->body != -1)
		close(c->body);
	free(c);
	errno = saved;
	return -1;
}
