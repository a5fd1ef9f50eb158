/* SPDX-License-Identifier: MIT */
/*
 * The scanner worker's cage (and, with DNS allowed, the SPF helper's), entered after the engine is mapped and before
 * the first message: an unprivileged user (when started as root), no
 * capabilities, no new privileges, resource limits, and a seccomp filter
 * that kills the process on any attempt to reach the network, run a
 * program, create a process or reach into another one.
 *
 * The filter is a deny list rather than an allow list: libclamav's parsers
 * touch a wide and version-dependent set of file and memory calls, and a
 * missed call in an allow list turns a clean message into a tempfail. What
 * an exploited parser would need to do harm is what is denied.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "sandbox.h"

/*
 * Denied to every process of sporkd, the relay included, even after a
 * bug: running programs, tracing, namespaces, modules and the like.
 */
static const int sandbox_kill_all[] = {
	SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(ptrace),
	SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
	SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(chroot),
	SCMP_SYS(pivot_root), SCMP_SYS(setns), SCMP_SYS(unshare),
	SCMP_SYS(init_module), SCMP_SYS(finit_module),
	SCMP_SYS(delete_module), SCMP_SYS(kexec_load), SCMP_SYS(bpf),
	SCMP_SYS(perf_event_open), SCMP_SYS(keyctl), SCMP_SYS(add_key),
	SCMP_SYS(request_key), SCMP_SYS(userfaultfd), SCMP_SYS(personality),
	SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter),
	SCMP_SYS(io_uring_register), SCMP_SYS(reboot), SCMP_SYS(swapon),
	SCMP_SYS(swapoff), SCMP_SYS(sethostname), SCMP_SYS(setdomainname),
	SCMP_SYS(mknod), SCMP_SYS(mknodat),
};

/*
 * Denied to a scanner worker besides: the network, new processes, other
 * processes, identities and ownership. (The relay keeps these: it has
 * sockets, forks loaders and kills workers.)
 */
static const int sandbox_kill_worker[] = {
	SCMP_SYS(socket), SCMP_SYS(socketpair), SCMP_SYS(connect),
	SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(accept), SCMP_SYS(accept4),
	SCMP_SYS(fork), SCMP_SYS(vfork), SCMP_SYS(clone), SCMP_SYS(clone3),
	SCMP_SYS(kill), SCMP_SYS(tkill), SCMP_SYS(setuid), SCMP_SYS(setgid),
	SCMP_SYS(setreuid), SCMP_SYS(setregid), SCMP_SYS(setresuid),
	SCMP_SYS(setresgid), SCMP_SYS(setgroups), SCMP_SYS(capset),
	SCMP_SYS(chown), SCMP_SYS(fchown), SCMP_SYS(lchown),
	SCMP_SYS(fchownat),
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * One filter killing the process on the calls of both lists. Built with
 * SPORK_VALGRIND (only build/valgrind/, for `make valgrind`: valgrind
 * cannot run seccomp filters) this step is left out, and set_limit()
 * leaves RLIMIT_NOFILE's hard limit alone (valgrind refuses to change it);
 * the rest of the cage stays.
 */
#ifdef SPORK_VALGRIND
static int
filter_load(const int *more, size_t nmore, char *err, size_t errlen)
{
	(void)sandbox_kill_all;
	(void)more;
	(void)nmore;
	(void)err;
	(void)errlen;
	return 0;
}
#else
static int
filter_load(const int *more, size_t nmore, char *err, size_t errlen)
{
	scmp_filter_ctx	ctx;
	size_t		i;
	int		rc, call;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	for (i = 0; i < NELEM(sandbox_kill_all) + nmore; i++) {
		call = i < NELEM(sandbox_kill_all) ? sandbox_kill_all[i] :
		    more[i - NELEM(sandbox_kill_all)];
		if (call >= 0 && (rc = seccomp_rule_add(ctx,
		    SCMP_ACT_KILL_PROCESS, call, 0)) < 0) {
			snprintf(err, errlen, "seccomp rule %zu: %s", i,
			    strerror(-rc));
			seccomp_release(ctx);
			return -1;
		}
	}
	if ((rc = seccomp_load(ctx)) < 0) {
		snprintf(err, errlen, "seccomp_load: %s", strerror(-rc));
		seccomp_release(ctx);
		return -1;
	}
	seccomp_release(ctx);
	return 0;
}
#endif

/* The relay's own filter, once privileges are dropped. */
int
sandbox_daemon(char *err, size_t errlen)
{
	return filter_load(NULL, 0, err, errlen);
}

static int
caps_clear(void)
{
	struct __user_cap_header_struct	hdr;
	struct __user_cap_data_struct	data[2];

	memset(&hdr, 0, sizeof(hdr));
	memset(data, 0, sizeof(data));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	return (int)syscall(SYS_capset, &hdr, data);
}

/* Lower a limit (never raise it: that would need privilege). */
static int
set_limit(int res, uint64_t v)
{
	struct rlimit	rl, cur;

	if (getrlimit(res, &cur) == -1)
		return -1;
	rl.rlim_cur = rl.rlim_max = v ? (rlim_t)v : RLIM_INFINITY;
	if (cur.rlim_max != RLIM_INFINITY && (rl.rlim_max == RLIM_INFINITY ||
	    rl.rlim_max > cur.rlim_max))
		rl.rlim_cur = rl.rlim_max = cur.rlim_max;
#ifdef SPORK_VALGRIND
	if (res == RLIMIT_NOFILE)
		rl.rlim_max = cur.rlim_max;
#endif
	return setrlimit(res, &rl);
}

int
sandbox_enter(const struct sandbox_conf *c, char *err, size_t errlen)
{
	struct passwd	*pw;

	if (set_limit(RLIMIT_CORE, 0) == -1 ||
	    set_limit(RLIMIT_NOFILE, 256) == -1 ||
	    set_limit(RLIMIT_AS, c->max_memory) == -1 ||
	    set_limit(RLIMIT_FSIZE, c->max_file) == -1)
		goto syserr;
	if (geteuid() == 0) {
		if ((pw = getpwnam(c->user)) == NULL) {
			snprintf(err, errlen, "scan user '%s' does not exist",
			    c->user);
			return -1;
		}
		if (setgroups(1, &pw->pw_gid) == -1 ||
		    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
			goto syserr;
	}
	if (caps_clear() == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1 ||
	    set_limit(RLIMIT_NPROC, 0) == -1)
		goto syserr;

	if (c->dns) {
		/* The SPF helper asks DNS itself: it keeps socket and
		 * connect, and loses the rest of the worker's list. */
		int	calls[NELEM(sandbox_kill_worker)];
		size_t	i, n = 0;

		for (i = 0; i < NELEM(sandbox_kill_worker); i++)
			if (sandbox_kill_worker[i] != SCMP_SYS(socket) &&
			    sandbox_kill_worker[i] != SCMP_SYS(connect))
				calls[n++] = sandbox_kill_worker[i];
		return filter_load(calls, n, err, errlen);
	}
	return filter_load(sandbox_kill_worker, NELEM(sandbox_kill_worker),
	    err, errlen);
syserr:
	snprintf(err, errlen, "sandbox: %s", strerror(errno));
	return -1;
}
