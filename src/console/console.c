/* SPDX-License-Identifier: MIT */
/*
 * spork-console: the web console, a process of its own. main() reads
 * sporkd's configuration file, binds the console_listen addresses
 * (never a wildcard: the console must not be reachable from the bridged
 * segment), reads the certificate and key, drops to console_user and
 * refuses to go on as root or in group root; then libmicrohttpd serves (console_http.c)
 * until SIGTERM. It shares no memory with sporkd: it asks sporkd over
 * control_socket and reads track_db read-only.
 * `spork-console -p` reads a password on stdin and prints its yescrypt
 * hash, for console_users_file.
 */
#include <crypt.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "console.h"
#include "log.h"
#include "sock.h"

#define PEM_MAX		(256 * 1024)
#define PASSWORD_MAX	512

const struct conf	*console_conf;
static struct conf	 conf;

static void
usage(void)
{
	fprintf(stderr, "usage: spork-console [-d] [-c file]\n"
	    "       spork-console -p   (password on stdin, hash on stdout)\n");
	exit(2);
}

static int
hash_password(void)
{
	char		 pw[PASSWORD_MAX];
	char		 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char	*h;
	int		 rc = 1;

	if (fgets(pw, sizeof(pw), stdin) == NULL) {
		fprintf(stderr, "spork-console: no password on stdin\n");
		return 1;
	}
	pw[strcspn(pw, "\r\n")] = '\0';
	if (pw[0] == '\0') {
		fprintf(stderr, "spork-console: empty password\n");
		return 1;
	}
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return 1;
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL ||
	    (h = crypt_r(pw, salt, cd)) == NULL || h[0] == '*')
		fprintf(stderr, "spork-console: crypt: %s\n", strerror(errno));
	else {
		printf("%s\n", h);
		rc = 0;
	}
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

static char *
read_pem(const char *path, char *err, size_t errlen)
{
	FILE	*fp;
	char	*b;
	size_t	 n;

	if ((fp = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((b = malloc(PEM_MAX + 1)) == NULL) {
		fclose(fp);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = fread(b, 1, PEM_MAX, fp);
	if (ferror(fp) || n == PEM_MAX || n == 0) {
		snprintf(err, errlen, "%s: %s", path, ferror(fp) ?
		    strerror(errno) : n == 0 ? "empty" : "too large");
		fclose(fp);
		free(b);
		return NULL;
	}
	fclose(fp);
	b[n] = '\0';
	return b;
}

static int
bind_all(int *fds, char *err, size_t errlen)
{
	const struct conf_addrs	*a = &conf.console_listen;
	socklen_t		 sl;
	int			 i, fd, on = 1;

	if (a->n == 0) {
		snprintf(err, errlen, "console_listen is empty: no console");
		return -1;
	}
	for (i = 0; i < a->n; i++) {
		const struct sockaddr_storage	*ss = &a->a[i];

		if (sock_is_wildcard(ss)) {
			snprintf(err, errlen, "console_listen: a wildcard "
			    "address would reach the bridged segment; name "
			    "the management address");
			return -1;
		}
		sl = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6);
		if ((fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC,
		    0)) == -1 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on)) == -1 ||
		    (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
		    IPV6_V6ONLY, &on, sizeof(on)) == -1) ||
		    bind(fd, (const struct sockaddr *)ss, sl) == -1 ||
		    listen(fd, 64) == -1) {
			snprintf(err, errlen, "console_listen #%d: %s", i + 1,
			    strerror(errno));
			return -1;
		}
		fds[i] = fd;
	}
	return a->n;
}

/* Group root among the real, effective or supplementary groups. */
static int
in_group_root(void)
{
	gid_t	*g;
	int	 n, i, found = 0;

	if (getgid() == 0 || getegid() == 0)
		return 1;
	if ((n = getgroups(0, NULL)) <= 0)
		return n == -1;
	if ((g = calloc((size_t)n, sizeof(*g))) == NULL)
		return 1;
	if ((n = getgroups(n, g)) == -1)
		found = 1;
	for (i = 0; i < n && !found; i++)
		found = g[i] == 0;
	free(g);
	return found;
}

/* To console_user when started as root; never root (user or group)
 * afterwards. */
static int
drop_privileges(char *err, size_t errlen)
{
	struct passwd	*pw;

	if (geteuid() == 0) {
		if ((pw = getpwnam(conf.console_user)) == NULL) {
			snprintf(err, errlen, "console_user %s: no such user",
			    conf.console_user);
			return -1;
		}
		if (initgroups(pw->pw_name, pw->pw_gid) == -1 ||
		    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
			snprintf(err, errlen, "dropping to %s: %s",
			    conf.console_user, strerror(errno));
			return -1;
		}
	}
	if (getuid() == 0 || geteuid() == 0 || setuid(0) != -1) {
		snprintf(err, errlen, "still root after dropping privileges: "
		    "console_user must not be root");
		return -1;
	}
	if (in_group_root()) {
		snprintf(err, errlen, "still in group root after dropping "
		    "privileges: console_user must not be in group root "
		    "(gid %ld)", (long)getgid());
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char	*path = "/etc/spork/spork.conf";
	char		 err[1024], *cert = NULL, *key = NULL;
	const char	*cf, *kf;
	int		 ch, foreground = 0, fds[CONF_ADDRS_MAX], n, sig;
	sigset_t	 set;

	while ((ch = getopt(argc, argv, "c:dp")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'd':
			foreground = 1;
			break;
		case 'p':
			return hash_password();
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("spork-console", 0, 1);
	if (conf_load(&conf, path, err, sizeof(err)) == -1) {
		log_err(NULL, "console config: %s", err);
		return 1;
	}
	console_conf = &conf;
	if (foreground)
		log_init("spork-console", 0, 1);
	else
		log_init("spork-console", conf.log_syslog, conf.log_stderr);
	log_set_level((enum log_level)conf.log_level);

	cf = conf.console_cert_file[0] ? conf.console_cert_file :
	    conf.tls_cert_file;
	kf = conf.console_key_file[0] ? conf.console_key_file :
	    conf.tls_key_file;
	if (cf[0] == '\0' || kf[0] == '\0') {
		log_err(NULL, "console: no certificate: set console_cert_file "
		    "and console_key_file (or tls_cert_file and tls_key_file)");
		return 1;
	}
	if ((n = bind_all(fds, err, sizeof(err))) == -1 ||
	    (cert = read_pem(cf, err, sizeof(err))) == NULL ||
	    (key = read_pem(kf, err, sizeof(err))) == NULL ||
	    drop_privileges(err, sizeof(err)) == -1) {
		log_err(NULL, "console: %s", err);
		return 1;
	}
	/* Signals are taken by sigwait below, never by the server threads. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (console_http_start(fds, n, cert, key, err, sizeof(err)) == -1) {
		log_err(NULL, "console: %s", err);
		return 1;
	}
	explicit_bzero(key, strlen(key));
	free(key);
	free(cert);
	log_info(NULL, "console listening addresses=%d user=%s uid=%ld "
	    "control=%s track_db=%s session_timeout_ms=%u", n,
	    conf.console_user, (long)getuid(), conf.control_socket,
	    conf.track_db[0] ? conf.track_db : "(none)",
	    conf.console_session_timeout);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP)
			continue;	/* accounts are read at each login */
		break;
	}
	log_info(NULL, "console stopping signal=%d", sig);
	console_http_stop();
	return 0;
}
