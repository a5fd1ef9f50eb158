/* SPDX-License-Identifier: MIT */
/*
 * Dropping privileges once listeners are bound and files are read: switch
 * to an unprivileged user, keeping only CAP_NET_RAW (what IP_TRANSPARENT
 * needs for the upstream sockets bound to clients' addresses), plus
 * CAP_NET_ADMIN when sporkd owns the divert (its bypass sets), plus
 * CAP_SETUID and CAP_SETGID when scan workers are forked after the drop
 * (they become scan_user; the relay's seccomp filter allows no other
 * change of identity), and set no_new_privs. Uses the raw capset(2)
 * interface: no libcap needed.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "priv.h"

static int
caps_set(unsigned long long keep)
{
	struct __user_cap_header_struct	hdr;
	struct __user_cap_data_struct	data[2];

	memset(&hdr, 0, sizeof(hdr));
	memset(data, 0, sizeof(data));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	data[0].effective = data[0].permitted = (unsigned)keep;
	data[1].effective = data[1].permitted = (unsigned)(keep >> 32);
	return (int)syscall(SYS_capset, &hdr, data);
}

int
priv_drop(const char *user, const char *const *dirs, int net_admin,
    int setid, char *err, size_t errlen)
{
	struct passwd	*pw;
	unsigned long long keep = 1ULL << CAP_NET_RAW;
	int		 c;

	/* Changing the bypass sets of the owned divert needs CAP_NET_ADMIN. */
	if (net_admin)
		keep |= 1ULL << CAP_NET_ADMIN;
	/* A scan loader started after the drop (a reload) becomes
	 * scan_user; the relay's seccomp filter allows that one change. */
	if (setid)
		keep |= 1ULL << CAP_SETUID | 1ULL << CAP_SETGID;

	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "user '%s' does not exist", user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "user '%s' is root", user);
		return -1;
	}
	/* The spool and the quarantine are where the daemon writes. */
	for (; *dirs != NULL; dirs++)
		if (chown(*dirs, pw->pw_uid, pw->pw_gid) == -1)
			goto fail;
	/* Nothing outside the bounding set can come back later. */
	for (c = 0; c <= CAP_LAST_CAP; c++)
		if (!(keep & (1ULL << c)) &&
		    prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == -1
		    && errno != EINVAL)
			goto fail;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1 ||
	    setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1 ||
	    caps_set(keep) == -1 ||
	    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "dropping privileges to '%s': %s", user,
	    strerror(errno));
	return -1;
}
