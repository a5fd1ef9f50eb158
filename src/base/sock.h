/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SOCK_H
#define SPORK_SOCK_H

#include <sys/socket.h>
#include <sys/types.h>

#define SOCK_ADDRSTR_MAX	64	/* "[v6]:port" with room to spare */

int	sock_parse_addr(const char *, struct sockaddr_storage *);
int	sock_format(const struct sockaddr_storage *, char *, size_t);
int	sock_format_host(const struct sockaddr_storage *, char *, size_t);
/* 0.0.0.0 or :: (every address of the box, the bridged side's too). */
int	sock_is_wildcard(const struct sockaddr_storage *);
socklen_t sock_len(const struct sockaddr_storage *);
int	sock_listen(const struct sockaddr_storage *, int transparent, int backlog);
int	sock_accept(int lfd, struct sockaddr_storage *peer,
	    struct sockaddr_storage *local);
int	sock_connect(const struct sockaddr_storage *dst,
	    const struct sockaddr_storage *src_or_null, int transparent);
int	sock_connect_result(int fd);
void	sock_reset(int fd);
void	sock_drain(int fd, size_t max);
int	sock_send_fd(int sock, const void *, size_t, int fd);
ssize_t	sock_recv_fd(int sock, void *, size_t, int *fd);
pid_t	sock_fork_pair(int *fd);
int	sock_hand_over(int sock, const void *, size_t, int end, pid_t child);

#endif
