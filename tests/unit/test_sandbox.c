/* SPDX-License-Identifier: MIT */
/*
 * The cages really hold, each tried in a child:
 * - a scan worker's (sandbox_enter): its allow list ends it on reaching
 *   for the network, a new process, a program, or another process by any
 *   signal call (kill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo,
 *   pidfd_open, pidfd_send_signal) or a change of identity; reading files
 *   and abort() still work;
 * - the relay's (sandbox_daemon): no namespace by clone or unshare, clone3
 *   answers ENOSYS (fork still works), and the only change of identity is
 *   the scan loader's into scan_user;
 * - a worker as scan_user with the relay's uid saved can be signalled by
 *   the relay and cannot signal it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"
#include "unit.h"

enum try {
	TRY_SOCKET, TRY_EXEC, TRY_FORK, TRY_FILE, TRY_KILL, TRY_TGKILL,
	TRY_SIGQUEUE, TRY_TGSIGQUEUE, TRY_PIDFD_OPEN, TRY_PIDFD_SIGNAL,
	TRY_SETUID, TRY_ABORT,
};

#define DIED(sig)	(128 + (sig))

static int
status(pid_t pid)
{
	int	st;

	if (pid == -1 || waitpid(pid, &st, 0) == -1)
		return -1;
	return WIFSIGNALED(st) ? DIED(WTERMSIG(st)) : WEXITSTATUS(st);
}

/* A process to aim at that is not the worker itself. */
static pid_t
target(void)
{
	pid_t	pid;

	if ((pid = fork()) == 0) {
		pause();
		_exit(0);
	}
	return pid;
}

static int
caged(enum try what)
{
	struct sandbox_conf	c = { 0, 0, 0 };
	siginfo_t		si;
	char			err[256], buf[16];
	pid_t			pid, t, parent = getpid();
	int			fd, rc;

	if ((t = target()) == -1)
		return -1;
	if ((pid = fork()) == 0) {
		/* The trapped call's line is not wanted in the output. */
		if ((fd = open("/dev/null", O_WRONLY)) != -1)
			dup2(fd, STDERR_FILENO);
		if (sandbox_enter(&c, err, sizeof(err)) == -1) {
			fprintf(stderr, "sandbox_enter: %s\n", err);
			_exit(3);
		}
		memset(&si, 0, sizeof(si));
		si.si_code = SI_QUEUE;
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
		case TRY_KILL:
			(void)kill(t, SIGTERM);
			break;
		case TRY_TGKILL:
			(void)syscall(SYS_tgkill, t, t, SIGTERM);
			break;
		case TRY_SIGQUEUE:
			(void)syscall(SYS_rt_sigqueueinfo, t, SIGTERM, &si);
			break;
		case TRY_TGSIGQUEUE:
			(void)syscall(SYS_rt_tgsigqueueinfo, t, t, SIGTERM, &si);
			break;
		case TRY_PIDFD_OPEN:
			(void)syscall(SYS_pidfd_open, parent, 0);
			break;
		case TRY_PIDFD_SIGNAL:
			(void)syscall(SYS_pidfd_send_signal, 0, SIGTERM, NULL, 0);
			break;
		case TRY_SETUID:
			(void)!setresuid(0, 0, 0);
			break;
		case TRY_ABORT:
			abort();
		}
		_exit(2);
	}
	rc = status(pid);
	kill(t, SIGKILL);
	(void)status(t);
	return rc;
}

enum try_daemon { D_CLONE_NEWUSER, D_UNSHARE, D_CLONE3, D_FORK, D_SETUID };

static int
relay_caged(enum try_daemon what)
{
	struct sandbox_ids	ids;
	char			err[256];
	pid_t			pid, child;
	long			rc;

	memset(&ids, 0, sizeof(ids));
	if ((pid = fork()) == 0) {
		if (sandbox_daemon(&ids, err, sizeof(err)) == -1) {
			fprintf(stderr, "sandbox_daemon: %s\n", err);
			_exit(3);
		}
		switch (what) {
		case D_CLONE_NEWUSER:
			rc = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0,
			    0, 0);
			if (rc == 0)
				_exit(0);
			_exit(rc > 0 ? 5 : 6);
		case D_UNSHARE:
			(void)unshare(CLONE_NEWUSER);
			_exit(5);
		case D_CLONE3:
			rc = syscall(SYS_clone3, NULL, 0);
			_exit(rc == -1 && errno == ENOSYS ? 0 : 5);
		case D_FORK:
			if ((child = fork()) == 0)
				_exit(0);
			_exit(status(child) == 0 ? 0 : 5);
		case D_SETUID:
			(void)!setresuid(65534, 65534, 65534);
			_exit(5);
		}
		_exit(2);
	}
	return status(pid);
}

/*
 * The relay as uid 1, a worker become uid 65534 with uid 1 saved (as the
 * loader does under the relay's filter): the relay kills the worker, the
 * worker cannot signal the relay.
 */
static void
test_scan_identity(void)
{
	struct sandbox_ids	ids = { 1, 65534, 65534, 1 };
	struct sandbox_conf	c = { 0, 0, 0 };
	char			err[256];
	pid_t			relay, worker, killer;
	int			p[2];
	uid_t			r, e, s;
	char			ok;

	if (geteuid() != 0) {
		printf("  (not root: scan identity not tried)\n");
		return;
	}
	if ((relay = fork()) == 0) {
		if (setresgid(1, 1, 1) == -1 || setresuid(1, 1, 1) == -1)
			_exit(3);
		pause();
		_exit(0);
	}
	if (pipe(p) == -1)
		return;
	if ((worker = fork()) == 0) {
		close(p[0]);
		if (sandbox_daemon(&ids, err, sizeof(err)) == -1 ||
		    sandbox_become(&ids, err, sizeof(err)) == -1) {
			fprintf(stderr, "become: %s\n", err);
			_exit(3);
		}
		if (getresuid(&r, &e, &s) == -1 || r != 65534 || e != 65534 ||
		    s != 1)
			_exit(4);
		/* Before its own cage: even a kill(2) the filter would
		 * allow fails for want of permission. */
		if (kill(relay, 0) == 0 || errno != EPERM)
			_exit(5);
		if (sandbox_enter(&c, err, sizeof(err)) == -1)
			_exit(6);
		ok = 'y';
		(void)!write(p[1], &ok, 1);
		for (;;)
			sleep(60);	/* pause() is not in its list */
	}
	close(p[1]);
	ok = 0;
	(void)!read(p[0], &ok, 1);
	close(p[0]);
	CHECK(ok == 'y', "worker did not reach its cage as scan_user");
	/* The relay's side: uid 1 may kill the worker (its saved uid). */
	if ((killer = fork()) == 0) {
		if (setresuid(1, 1, 1) == -1)
			_exit(3);
		_exit(kill(worker, SIGKILL) == 0 ? 0 : 4);
	}
	CHECK(status(killer) == 0, "kill from the relay's uid failed");
	CHECK(status(worker) == DIED(SIGKILL),
	    "the relay's uid could not kill the worker");
	kill(relay, SIGKILL);
	(void)status(relay);

	/* The relay's filter refuses any other identity. */
	if ((worker = fork()) == 0) {
		if (sandbox_daemon(&ids, err, sizeof(err)) == -1)
			_exit(3);
		(void)!setresuid(65534, 65534, 65534);	/* no saved relay */
		_exit(0);
	}
	CHECK(status(worker) == DIED(SIGSYS),
	    "the relay's filter let another identity through");
}

void
test_sandbox(void)
{
#ifdef SPORK_VALGRIND
	/* The valgrind build has no filter to test (make unit tests it). */
	CHECK(caged(TRY_FILE) == 0, "file reading broken in the cage");
	return;
#endif
	CHECK(caged(TRY_SOCKET) == SANDBOX_EXIT_SYSCALL, "socket() allowed");
	CHECK(caged(TRY_EXEC) == SANDBOX_EXIT_SYSCALL, "execve() allowed");
	CHECK(caged(TRY_FORK) == SANDBOX_EXIT_SYSCALL, "fork() allowed");
	CHECK(caged(TRY_FILE) == 0, "file reading broken in the cage");
	CHECK(caged(TRY_KILL) == SANDBOX_EXIT_SYSCALL, "kill() allowed");
	CHECK(caged(TRY_TGKILL) == SANDBOX_EXIT_SYSCALL,
	    "tgkill() on another process allowed");
	CHECK(caged(TRY_SIGQUEUE) == SANDBOX_EXIT_SYSCALL,
	    "rt_sigqueueinfo() allowed");
	CHECK(caged(TRY_TGSIGQUEUE) == SANDBOX_EXIT_SYSCALL,
	    "rt_tgsigqueueinfo() allowed");
	CHECK(caged(TRY_PIDFD_OPEN) == SANDBOX_EXIT_SYSCALL,
	    "pidfd_open() allowed");
	CHECK(caged(TRY_PIDFD_SIGNAL) == SANDBOX_EXIT_SYSCALL,
	    "pidfd_send_signal() allowed");
	CHECK(caged(TRY_SETUID) == SANDBOX_EXIT_SYSCALL,
	    "setresuid() allowed");
	CHECK(caged(TRY_ABORT) == DIED(SIGABRT), "abort() broken in the cage");

	CHECK(relay_caged(D_CLONE_NEWUSER) == DIED(SIGSYS),
	    "relay: clone(CLONE_NEWUSER) allowed");
	CHECK(relay_caged(D_UNSHARE) == DIED(SIGSYS),
	    "relay: unshare() allowed");
	CHECK(relay_caged(D_CLONE3) == 0, "relay: clone3() not ENOSYS");
	CHECK(relay_caged(D_FORK) == 0, "relay: fork() broken");
	CHECK(relay_caged(D_SETUID) == DIED(SIGSYS),
	    "relay: setresuid() allowed with no scan identity");
	test_scan_identity();
}
