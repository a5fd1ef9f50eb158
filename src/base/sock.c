/* SPDX-License-Identifier: MIT */
/*
 * The only place that knows about transparent ("foreign") sockets: the
 * IP_TRANSPARENT listener whose accepted sockets carry the original
 * destination as their local address, and the upstream socket bound to the
 * client's own address. Everything is non-blocking and close-on-exec.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sock.h"

socklen_t
sock_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
}

/* "1.2.3.4:25", "[2001:db8::1]:25"; the port is mandatory. */
int
sock_parse_addr(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 host[INET6_ADDRSTRLEN + 1];
	const char		*port, *end;
	char			*ep;
	unsigned long		 p;
	size_t			 hl;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return -1;
		hl = (size_t)(end - s - 1);
		port = end + 2;
		s++;
	} else {
		if ((end = strrchr(s, ':')) == NULL)
			return -1;
		hl = (size_t)(end - s);
		port = end + 1;
	}
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	errno = 0;
	p = strtoul(port, &ep, 10);
	if (*port == '\0' || *ep != '\0' || errno || p > 65535)
		return -1;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		return 0;
	}
	return -1;
}

int
sock_format(const struct sockaddr_storage *ss, char *out, size_t len)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;
	char				 h[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, h, sizeof(h));
		return snprintf(out, len, "%s:%u", h, ntohs(sin->sin_port));
	}
	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, h, sizeof(h));
		return snprintf(out, len, "[%s]:%u", h, ntohs(sin6->sin6_port));
	}
	return snprintf(out, len, "?");
}

/* The address alone, no port, no brackets. */
int
sock_is_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	return ss->ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(
	    &((const struct sockaddr_in6 *)ss)->sin6_addr);
}

int
sock_format_host(const struct sockaddr_storage *ss, char *out, size_t len)
{
	const void	*a = ss->ss_family == AF_INET6 ?
			    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
			    (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	return inet_ntop(ss->ss_family, a, out, (socklen_t)len) ? 0 : -1;
}

static int
sock_set_transparent(int fd, int family)
{
	int	on = 1;

	if (family == AF_INET6)
		return setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &on,
		    sizeof(on));
	return setsockopt(fd, SOL_IP, IP_TRANSPARENT, &on, sizeof(on));
}

int
sock_listen(const struct sockaddr_storage *ss, int transparent, int backlog)
{
	int	fd, on = 1, saved;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    IPPROTO_TCP);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		goto fail;
	if (ss->ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1)
		goto fail;
	if (transparent && sock_set_transparent(fd, ss->ss_family) == -1)
		goto fail;
	if (bind(fd, (const struct sockaddr *)ss, sock_len(ss)) == -1)
		goto fail;
	if (listen(fd, backlog) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/*
 * For a transparent listener the accepted socket's local address is the
 * destination the client asked for (TPROXY keeps it), so getsockname()
 * is the original-destination lookup.
 */
int
sock_accept(int lfd, struct sockaddr_storage *peer,
    struct sockaddr_storage *local)
{
	socklen_t	sl = sizeof(*peer);
	int		fd, on = 1;

	fd = accept4(lfd, (struct sockaddr *)peer, &sl,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1)
		return -1;
	sl = sizeof(*local);
	if (getsockname(fd, (struct sockaddr *)local, &sl) == -1) {
		close(fd);
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	return fd;
}

/*
 * Start a non-blocking connect. With a source address the socket is made
 * transparent and bound to it (port 0: the kernel picks one), so the
 * server sees the client's own address.
 */
int
sock_connect(const struct sockaddr_storage *dst,
    const struct sockaddr_storage *src, int transparent)
{
	struct sockaddr_storage	b;
	int			fd, saved, on = 1;

	fd = socket(dst->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    IPPROTO_TCP);
	if (fd == -1)
		return -1;
	if (transparent && sock_set_transparent(fd, dst->ss_family) == -1)
		goto fail;
	if (src != NULL) {
		b = *src;
		if (b.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&b)->sin6_port = 0;
		else
			((struct sockaddr_in *)&b)->sin_port = 0;
		if (bind(fd, (struct sockaddr *)&b, sock_len(&b)) == -1)
			goto fail;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (connect(fd, (const struct sockaddr *)dst, sock_len(dst)) == -1 &&
	    errno != EINPROGRESS)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* 0 when the pending connect succeeded, else -1 with errno set. */
int
sock_connect_result(int fd)
{
	int		err = 0;
	socklen_t	sl = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == -1)
		return -1;
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

/* Close with a TCP reset: the client treats the MX as unreachable. */
void
sock_reset(int fd)
{
	struct linger	l = { 1, 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* One datagram with an optional descriptor (fd -1: none) over AF_UNIX. */
int
sock_send_fd(int sock, const void *p, size_t len, int fd)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cm;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cbuf;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)p;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd != -1) {
		memset(&cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof(cbuf.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Receive one datagram; *fd is -1 unless a descriptor came with it. */
ssize_t
sock_recv_fd(int sock, void *p, size_t len, int *fd)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cm;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	ssize_t		 n;

	*fd = -1;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = p;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = sizeof(cbuf.buf);
	if ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) <= 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(cm), sizeof(int));
	return n;
}

/*
 * A child process joined to this one by a SOCK_SEQPACKET pair. Returns 0
 * in the child with *fd its end, the child's pid in the parent with *fd
 * the parent's end, -1 (errno set) when neither could be made.
 */
pid_t
sock_fork_pair(int *fd)
{
	int	sv[2];
	pid_t	pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	if ((pid = fork()) == -1) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	close(sv[pid == 0 ? 0 : 1]);
	*fd = sv[pid == 0 ? 1 : 0];
	return pid;
}

/*
 * Hand the parent's end of a sock_fork_pair() over sock with msg; on
 * failure the child is killed. The end is closed either way.
 */
int
sock_hand_over(int sock, const void *msg, size_t len, int end, pid_t child)
{
	int	rc;

	if ((rc = sock_send_fd(sock, msg, len, end)) == -1)
		kill(child, SIGKILL);
	close(end);
	return rc == -1 ? -1 : 0;
}

/* Read and drop what the peer has sent, up to max bytes, never waiting. */
void
sock_drain(int fd, size_t max)
{
	char	b[4096];
	size_t	got = 0;
	ssize_t	n;

	while (got < max && (n = recv(fd, b, sizeof(b), MSG_DONTWAIT)) > 0)
		got += (size_t)n;
}
