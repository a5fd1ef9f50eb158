/* SPDX-License-Identifier: MIT */
/*
 * The listeners, and what happens to a connection before it is a session:
 * accepted in batches, reset at max_sessions (overload), given the
 * upstream connection connect-before-accept made for it, then handed to
 * the relay. Under overload with overload_policy bypass and the divert
 * owned by sporkd, the client is first exempted from the divert for
 * overload_bypass_time, so that its retry goes to the server directly,
 * unscanned; a client that holds sessions of its own is never exempted.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "accept.h"
#include "cba.h"
#include "log.h"
#include "nft_divert.h"
#include "ratelimit.h"
#include "relay.h"
#include "sock.h"

#define ACCEPT_LISTENERS_MAX	(2 * CONF_ADDRS_MAX)
#define ACCEPT_BACKLOG		1024
#define ACCEPT_BATCH		64	/* accepts per wakeup */

struct listener {
	struct ev_io		 io;
	int			 transparent;
	int			 port;
};

static struct ev_loop		*accept_loop;
static const struct conf	*accept_conf;
static struct listener		 listeners[ACCEPT_LISTENERS_MAX];
static int			 nlisteners;

static void
overload(const struct sockaddr_storage *peer)
{
	char		a[SOCK_ADDRSTR_MAX], host[SOCK_ADDRSTR_MAX], err[256];
	int		bypass = accept_conf->overload_bypass &&
			    nft_divert_fd() != -1;
	uint32_t	held = rl_sessions(peer);

	sock_format(peer, a, sizeof(a));
	/* A client that holds sessions of its own is part of the load: it
	 * is never sent around the scanner (it could fill the table on
	 * purpose to get there). */
	if (bypass && held > 0)
		bypass = 0;
	if (bypass) {
		sock_format_host(peer, host, sizeof(host));
		if (nft_divert_bypass(1, 1, host,
		    accept_conf->overload_bypass_time / 1000, err,
		    sizeof(err)) == -1) {
			log_warn(NULL, "overload bypass %s: %s", host, err);
			bypass = 0;
		}
	}
	log_warn(NULL, "overload client=%s sessions=%zu client_sessions=%u "
	    "action=%s", a, relay_sessions(), (unsigned)held,
	    bypass ? "reset+bypass" : "reset");
}

static void
listener_cb(struct ev_io *io, int events)
{
	struct listener		*l = io->arg;
	struct sockaddr_storage	 peer, local;
	char			 id[16];
	int			 i, fd, up;

	(void)events;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		fd = sock_accept(l->io.fd, &peer, &local);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn(NULL, "accept: %s", strerror(errno));
			return;
		}
		if (relay_sessions() >= accept_conf->max_sessions) {
			overload(&peer);
			sock_reset(fd);
			continue;
		}
		up = l->transparent ? cba_take(&peer, &local, id,
		    sizeof(id)) : -1;
		relay_session_new(l->transparent, l->port, fd, &peer, &local,
		    up, up != -1 ? id : NULL);
	}
}

static int
listener_open(const struct sockaddr_storage *a, int transparent)
{
	struct listener	*l;
	char		 as[SOCK_ADDRSTR_MAX];
	int		 fd;

	sock_format(a, as, sizeof(as));
	if ((fd = sock_listen(a, transparent, ACCEPT_BACKLOG)) == -1) {
		log_err(NULL, "listen %s%s: %s", as,
		    transparent ? " (transparent)" : "", strerror(errno));
		return -1;
	}
	l = &listeners[nlisteners++];
	l->transparent = transparent;
	/* sin_port and sin6_port sit at the same place. */
	l->port = ntohs(((const struct sockaddr_in *)a)->sin_port);
	ev_io_init(&l->io, fd, listener_cb, l);
	if (ev_io_set(accept_loop, &l->io, EV_READ) == -1) {
		log_err(NULL, "epoll: %s", strerror(errno));
		return -1;
	}
	log_info(NULL, "listening on %s mode=%s", as,
	    transparent ? "transparent" : "explicit");
	return 0;
}

int
accept_listen(struct ev_loop *loop, const struct conf *conf)
{
	int	i;

	accept_loop = loop;
	accept_conf = conf;
	for (i = 0; i < conf->transparent_listen.n; i++)
		if (listener_open(&conf->transparent_listen.a[i], 1) == -1)
			return -1;
	for (i = 0; i < conf->explicit_listen.n; i++)
		if (listener_open(&conf->explicit_listen.a[i], 0) == -1)
			return -1;
	return 0;
}

void
accept_stop(void)
{
	int	i;

	for (i = 0; i < nlisteners; i++) {
		ev_io_del(accept_loop, &listeners[i].io);
		close(listeners[i].io.fd);
	}
	nlisteners = 0;
}
