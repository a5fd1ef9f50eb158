/* SPDX-License-Identifier: MIT */
/*
 * sporkctl: sends one command to sporkd's control socket and prints the
 * answer. Exit status 0 when the answer starts with "ok".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SPORKCTL_DEFAULT_SOCKET	"/run/spork/sporkd.sock"

static void
usage(void)
{
	fprintf(stderr, "usage: sporkctl [-s socket] command [args]\n"
	    "  status                      sessions, scanner, engine, workers,\n"
	    "                              TLS coverage\n"
	    "  tls                         servers seen with STARTTLS: subject,\n"
	    "                              key fingerprint, key held or not\n"
	    "  reload                      reload virus signatures\n"
	    "  quarantine list\n"
	    "  quarantine show ID\n"
	    "  quarantine release ID       deliver to its original server\n"
	    "  quarantine delete ID\n"
	    "  bypass add ADDR [server] [timeout 1h]   not intercepted\n"
	    "  bypass del ADDR [server]\n"
	    "  bypass list\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_un	 sun;
	const char		*path = SPORKCTL_DEFAULT_SOCKET;
	char			 line[1024], buf[4096];
	size_t			 l = 0;
	ssize_t			 n;
	int			 ch, fd, i, first = 1, ok = 0;

	while ((ch = getopt(argc, argv, "s:")) != -1) {
		if (ch != 's')
			usage();
		path = optarg;
	}
	if (optind == argc)
		usage();
	for (i = optind; i < argc; i++) {
		n = snprintf(line + l, sizeof(line) - l, "%s%s",
		    i > optind ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= sizeof(line) - l - 1) {
			fprintf(stderr, "sporkctl: command too long\n");
			return 2;
		}
		l += (size_t)n;
	}
	line[l++] = '\n';

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "sporkctl: socket path too long\n");
		return 2;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "sporkctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (write(fd, line, l) != (ssize_t)l) {
		fprintf(stderr, "sporkctl: write: %s\n", strerror(errno));
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (first) {
			ok = n >= 2 && buf[0] == 'o' && buf[1] == 'k';
			first = 0;
		}
		fwrite(buf, 1, (size_t)n, stdout);
	}
	close(fd);
	return ok ? 0 : 1;
}
