/* SPDX-License-Identifier: MIT */
/*
 * The scanner worker's cage really kills: in a child, after
 * sandbox_enter(), reaching for the network, a new process or a program
 * ends it with SIGSYS; reading and writing files goes on.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"
#include "unit.h"

enum { TRY_SOCKET, TRY_EXEC, TRY_FORK, TRY_FILE };

static int
caged(int what)
{
	struct sandbox_conf	c = { "nobody", 0, 0, 0 };
	char			err[256], buf[16];
	pid_t			pid;
	int			st, fd;

	if ((pid = fork()) == 0) {
		if (sandbox_enter(&c, err, sizeof(err)) == -1) {
			fprintf(stderr, "sandbox_enter: %s\n", err);
			_exit(3);
		}
		switch (what) {
		case TRY_SOCKET:
			(void)socket(AF_INET, SOCK_STREAM, 0);
			break;
		case TRY_EXEC:
			execl("/bin/true", "true", (char *)NULL);
			break;
		case TRY_FORK:
			(void)fork();
			break;
		case TRY_FILE:
			if ((fd = open("/proc/self/status", 0)) == -1 ||
			    read(fd, buf, sizeof(buf)) <= 0)
				_exit(4);
			_exit(0);
		}
		_exit(2);
	}
	if (pid == -1 || waitpid(pid, &st, 0) == -1)
		return -1;
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

void
test_sandbox(void)
{
#ifdef SPORK_VALGRIND
	/* The valgrind build has no filter to test (make unit tests it). */
	CHECK(caged(TRY_FILE) == 0, "file reading broken in the cage");
	return;
#endif
	CHECK(caged(TRY_SOCKET) == 128 + SIGSYS, "socket() not killed");
	CHECK(caged(TRY_EXEC) == 128 + SIGSYS, "execve() not killed");
	CHECK(caged(TRY_FORK) == 128 + SIGSYS, "fork() not killed");
	CHECK(caged(TRY_FILE) == 0, "file reading broken in the cage");
}
