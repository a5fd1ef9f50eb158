/* SPDX-License-Identifier: MIT */
/*
 * The cages of sporkd's processes.
 *
 * A scanner worker (and, with DNS allowed, an SPF helper) enters its cage
 * after the engine is mapped and before the first message: resource
 * limits, no capabilities, no new privileges, and a seccomp filter that is
 * an allow list: the file, memory and time calls libclamav, GMime,
 * libmagic, libarchive and PCRE2 make while scanning (found by tracing the
 * test corpus: clamav-testfiles' 44 packed and archived samples, the
 * content and MIME corpora), reading and writing on the descriptors it was
 * given, and nothing else. Any other call is trapped: the worker writes
 * the call's number to its stderr and exits, its message gets a temporary
 * failure, and the loader starts another worker. Signals go to the worker
 * itself only (abort()): kill, tkill, rt_sigqueueinfo, pidfd_* and the
 * rest are outside the list.
 *
 * The workers run as scan_user, never as the relay's user: the loader
 * takes that identity once its engine is compiled (sandbox_become), with
 * the relay's uid kept only as the saved uid, so that the relay may still
 * kill a worker whose scan overran while the worker, whose filter has no
 * set*id call, can neither signal the relay nor open its spool or
 * quarantine.
 *
 * The relay's own filter (sandbox_daemon) is a deny list: it kills on
 * running programs, tracing, mounts, namespaces (clone with a CLONE_NEW*
 * flag included; clone3, whose flags a filter cannot see, answers ENOSYS
 * and glibc falls back to clone), modules and the like, and allows exactly
 * one change of identity: the loader's into scan_user.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <termios.h>
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
	SCMP_SYS(mknod), SCMP_SYS(mknodat), SCMP_SYS(open_tree),
	SCMP_SYS(move_mount), SCMP_SYS(fsopen), SCMP_SYS(fsmount),
	SCMP_SYS(fsconfig), SCMP_SYS(fspick), SCMP_SYS(mount_setattr),
	SCMP_SYS(pidfd_getfd), SCMP_SYS(kcmp), SCMP_SYS(setuid),
	SCMP_SYS(setreuid), SCMP_SYS(setfsuid), SCMP_SYS(setgid),
	SCMP_SYS(setregid), SCMP_SYS(setfsgid),
};

/*
 * What a scanner worker may call. Reading and writing go through the
 * descriptors it holds (its socket to the relay, the message, its temp
 * files): socket(), connect() and open-by-handle are not here.
 */
static const int sandbox_allow_worker[] = {
	/* files, in its temp directory and the message */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv),
	SCMP_SYS(pwritev), SCMP_SYS(lseek), SCMP_SYS(close),
	SCMP_SYS(close_range), SCMP_SYS(fstat), SCMP_SYS(stat),
	SCMP_SYS(lstat), SCMP_SYS(newfstatat), SCMP_SYS(statx),
	SCMP_SYS(statfs), SCMP_SYS(fstatfs), SCMP_SYS(open),
	SCMP_SYS(openat), SCMP_SYS(access), SCMP_SYS(faccessat),
	SCMP_SYS(faccessat2), SCMP_SYS(getdents64), SCMP_SYS(getdents),
	SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(rmdir),
	SCMP_SYS(unlink), SCMP_SYS(unlinkat), SCMP_SYS(rename),
	SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(chmod),
	SCMP_SYS(fchmod), SCMP_SYS(fchmodat), SCMP_SYS(ftruncate),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(fadvise64),
	SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getcwd),
	SCMP_SYS(umask), SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3),
	SCMP_SYS(fcntl), SCMP_SYS(flock), SCMP_SYS(memfd_create),
	/* memory */
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(mprotect), SCMP_SYS(madvise), SCMP_SYS(brk),
	/* its socket to the relay, and syslog's */
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom),
	SCMP_SYS(sendto), SCMP_SYS(poll), SCMP_SYS(ppoll),
	/* time, and itself */
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
	SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(getppid), SCMP_SYS(getuid), SCMP_SYS(geteuid),
	SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(getresuid),
	SCMP_SYS(getresgid), SCMP_SYS(getgroups), SCMP_SYS(getrusage),
	SCMP_SYS(times), SCMP_SYS(sysinfo), SCMP_SYS(uname),
	SCMP_SYS(getrlimit), SCMP_SYS(sched_yield),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(set_robust_list),
	SCMP_SYS(get_robust_list), SCMP_SYS(rseq),
	SCMP_SYS(set_tid_address), SCMP_SYS(futex), SCMP_SYS(getrandom),
	SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
	SCMP_SYS(restart_syscall), SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/* An SPF helper asks DNS itself (libspf2 through the libc resolver). */
static const int sandbox_allow_dns[] = {
	SCMP_SYS(socket), SCMP_SYS(connect), SCMP_SYS(bind),
	SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(setsockopt),
	SCMP_SYS(getsockopt), SCMP_SYS(recvmmsg), SCMP_SYS(sendmmsg),
	SCMP_SYS(ioctl),
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * Built with SPORK_VALGRIND (only build/valgrind/, for `make valgrind`:
 * valgrind cannot run seccomp filters) no filter is loaded, and
 * set_limit() leaves RLIMIT_NOFILE's hard limit alone (valgrind refuses
 * to change it); the rest of the cages stays.
 */
#ifdef SPORK_VALGRIND
static int
filter_daemon(const struct sandbox_ids *ids, char *err, size_t errlen)
{
	(void)sandbox_kill_all;
	(void)ids;
	(void)err;
	(void)errlen;
	return 0;
}

static int
filter_worker(int dns, char *err, size_t errlen)
{
	(void)sandbox_allow_worker;
	(void)sandbox_allow_dns;
	(void)dns;
	(void)err;
	(void)errlen;
	return 0;
}
#else
/* One argument comparison, every field set (the SCMP_A* macros leave
 * datum_b out for two-operand comparisons). */
static struct scmp_arg_cmp
arg_cmp(unsigned arg, enum scmp_compare op, uint64_t a, uint64_t b)
{
	struct scmp_arg_cmp	c;

	c.arg = arg;
	c.op = op;
	c.datum_a = a;
	c.datum_b = b;
	return c;
}

static int
rules_add(scmp_filter_ctx ctx, uint32_t action, const int *calls, size_t n)
{
	size_t	i;
	int	rc;

	for (i = 0; i < n; i++)
		if (calls[i] >= 0 &&
		    (rc = seccomp_rule_add(ctx, action, calls[i], 0)) < 0)
			return rc;
	return 0;
}

static int
filter_load(scmp_filter_ctx ctx, int rc, char *err, size_t errlen)
{
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0) {
		snprintf(err, errlen, "seccomp filter: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

static int
filter_daemon(const struct sandbox_ids *ids, char *err, size_t errlen)
{
	scmp_filter_ctx	ctx;
	const uint32_t	kill = SCMP_ACT_KILL_PROCESS;
	const uint64_t	newns[] = { CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID,
			    CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS,
			    CLONE_NEWCGROUP, CLONE_NEWTIME };
	size_t		i;
	int		rc;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	rc = rules_add(ctx, kill, sandbox_kill_all, NELEM(sandbox_kill_all));
	/* fork() yes, a new namespace never. */
	for (i = 0; rc == 0 && i < NELEM(newns); i++)
		rc = seccomp_rule_add(ctx, kill, SCMP_SYS(clone), 1,
		    arg_cmp(0, SCMP_CMP_MASKED_EQ, newns[i], newns[i]));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
		    SCMP_SYS(clone3), 0);
	/* One change of identity: the scan loader's into scan_user, with
	 * the relay's uid as saved uid and no supplementary group. */
	if (rc == 0 && ids->set) {
		rc = seccomp_rule_add(ctx, kill, SCMP_SYS(setresuid), 1,
		    arg_cmp(0, SCMP_CMP_NE, ids->uid, 0));
		if (rc == 0)
			rc = seccomp_rule_add(ctx, kill, SCMP_SYS(setresuid), 1,
			    arg_cmp(1, SCMP_CMP_NE, ids->uid, 0));
		if (rc == 0)
			rc = seccomp_rule_add(ctx, kill, SCMP_SYS(setresuid), 1,
			    arg_cmp(2, SCMP_CMP_NE, ids->saved_uid, 0));
		if (rc == 0)
			rc = seccomp_rule_add(ctx, kill, SCMP_SYS(setresgid), 1,
			    arg_cmp(0, SCMP_CMP_NE, ids->gid, 0));
		if (rc == 0)
			rc = seccomp_rule_add(ctx, kill, SCMP_SYS(setresgid), 1,
			    arg_cmp(1, SCMP_CMP_NE, ids->gid, 0));
		if (rc == 0)
			rc = seccomp_rule_add(ctx, kill, SCMP_SYS(setresgid), 1,
			    arg_cmp(2, SCMP_CMP_NE, ids->gid, 0));
		if (rc == 0)
			rc = seccomp_rule_add(ctx, kill, SCMP_SYS(setgroups), 1,
			    arg_cmp(0, SCMP_CMP_NE, 0, 0));
	} else if (rc == 0) {
		rc = seccomp_rule_add(ctx, kill, SCMP_SYS(setresuid), 0);
		if (rc == 0)
			rc = seccomp_rule_add(ctx, kill, SCMP_SYS(setresgid), 0);
		if (rc == 0)
			rc = seccomp_rule_add(ctx, kill, SCMP_SYS(setgroups), 0);
	}
	return filter_load(ctx, rc, err, errlen);
}

/*
 * A call outside the allow list: say which, then go. (The call was not
 * made; a handler replaced by an exploit gains nothing.)
 */
static void
sigsys_handler(int sig, siginfo_t *si, void *uc)
{
	char	 msg[96], num[12], *p = num + sizeof(num);
	unsigned n = (unsigned)si->si_syscall;
	size_t	 len;

	(void)sig;
	(void)uc;
	do {
		*--p = (char)('0' + n % 10);
		n /= 10;
	} while (n != 0 && p > num);
	len = (size_t)(num + sizeof(num) - p);
	memcpy(msg, "sporkd sandbox: system call ", 28);
	memcpy(msg + 28, p, len);
	memcpy(msg + 28 + len, " is not allowed; exiting\n", 25);
	(void)!write(STDERR_FILENO, msg, 28 + len + 25);
	_exit(SANDBOX_EXIT_SYSCALL);
}

static int
filter_worker(int dns, char *err, size_t errlen)
{
	struct sigaction sa;
	scmp_filter_ctx	 ctx;
	pid_t		 self = getpid();
	int		 rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigsys_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) == -1) {
		snprintf(err, errlen, "sigaction: %s", strerror(errno));
		return -1;
	}
	if ((ctx = seccomp_init(SCMP_ACT_TRAP)) == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	rc = rules_add(ctx, SCMP_ACT_ALLOW, sandbox_allow_worker,
	    NELEM(sandbox_allow_worker));
	if (rc == 0 && dns)
		rc = rules_add(ctx, SCMP_ACT_ALLOW, sandbox_allow_dns,
		    NELEM(sandbox_allow_dns));
	/* isatty() from stdio; nothing else of ioctl. */
	if (rc == 0 && !dns)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		    arg_cmp(1, SCMP_CMP_EQ, TCGETS, 0));
	/* Signals to itself only (abort()); single-threaded: tid = pid. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 2,
		    arg_cmp(0, SCMP_CMP_EQ, (uint64_t)self, 0),
		    arg_cmp(1, SCMP_CMP_EQ, (uint64_t)self, 0));
	/* Its own limits may be read, or lowered (raising needs a
	 * capability it has not). */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64),
		    1, arg_cmp(0, SCMP_CMP_EQ, 0, 0));
	return filter_load(ctx, rc, err, errlen);
}
#endif

/* The relay's own filter, once privileges are dropped. */
int
sandbox_daemon(const struct sandbox_ids *ids, char *err, size_t errlen)
{
	return filter_daemon(ids, err, errlen);
}

int
sandbox_ids_resolve(struct sandbox_ids *ids, const char *scan_user,
    const char *relay_user, char *err, size_t errlen)
{
	struct passwd	*pw;
	uid_t		 relay_uid;

	memset(ids, 0, sizeof(*ids));
	if (geteuid() != 0)
		return 0;	/* no identity to change to */
	if ((pw = getpwnam(scan_user)) == NULL) {
		snprintf(err, errlen, "scan_user '%s' does not exist",
		    scan_user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "scan_user '%s' is root", scan_user);
		return -1;
	}
	ids->uid = pw->pw_uid;
	ids->gid = pw->pw_gid;
	relay_uid = 0;
	if (relay_user != NULL && relay_user[0] != '\0') {
		if ((pw = getpwnam(relay_user)) == NULL) {
			snprintf(err, errlen, "user '%s' does not exist",
			    relay_user);
			return -1;
		}
		relay_uid = pw->pw_uid;
	}
	/* A relay running as root needs no saved uid to signal workers. */
	ids->saved_uid = relay_uid != 0 ? relay_uid : ids->uid;
	ids->set = 1;
	return 0;
}

int
sandbox_become(const struct sandbox_ids *ids, char *err, size_t errlen)
{
	if (!ids->set)
		return 0;
	if (setgroups(0, NULL) == -1 ||
	    setresgid(ids->gid, ids->gid, ids->gid) == -1 ||
	    setresuid(ids->uid, ids->uid, ids->saved_uid) == -1) {
		snprintf(err, errlen, "becoming the scan user: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
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
	if (set_limit(RLIMIT_CORE, 0) == -1 ||
	    set_limit(RLIMIT_NOFILE, 256) == -1 ||
	    set_limit(RLIMIT_AS, c->max_memory) == -1 ||
	    set_limit(RLIMIT_FSIZE, c->max_file) == -1)
		goto syserr;
	if (caps_clear() == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1 ||
	    set_limit(RLIMIT_NPROC, 0) == -1)
		goto syserr;
	return filter_worker(c->dns, err, errlen);
syserr:
	snprintf(err, errlen, "sandbox: %s", strerror(errno));
	return -1;
}
