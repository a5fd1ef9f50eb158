/* SPDX-License-Identifier: MIT */
/*
 * Drives src/kernel/nft_divert.c against the running kernel for tests/nft/run.sh.
 *
 *	nftdriver probe
 *	nftdriver print   [CONF]
 *	nftdriver install [CONF]	then reads commands on stdin:
 *		bypass add|del src|dst ADDR [TIMEOUT_S]
 *		list | reinstall | drop-caps | remove | quit
 *	nftdriver listen [--transparent] PORT BANNER	(IPv4 and IPv6)
 *	nftdriver connect ADDR PORT	prints the first line it is sent
 *
 * CONF: --bridge NAME (its MAC and ports are read from the kernel),
 * --port N, --mark N, --table NAME, --no-ipv6, --ibrname yes|no|auto.
 * install answers "installed" or "error: ...", then each command with
 * "ok" or "error: ..." (list prints its elements first). It holds the
 * netlink socket, hence the tables, until remove, quit or its death; at EOF
 * on stdin it keeps holding them until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "nft_divert.h"

#define REPORT_MAX	4096
#define ERR_MAX		512

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: nftdriver probe | print [CONF] | install [CONF]"
	    " | listen [--transparent] PORT BANNER | connect ADDR PORT\n"
	    "CONF: --bridge NAME --port N --mark N --table NAME --no-ipv6"
	    " --ibrname yes|no|auto\n");
	exit(2);
}

static unsigned long
num(const char *s, unsigned long max)
{
	char		*end;
	unsigned long	 v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (*s == '\0' || *end != '\0' || errno != 0 || v > max)
		usage();
	return v;
}

static void
parse_conf(struct nft_divert_conf *c, int argc, char **argv)
{
	char		 err[ERR_MAX], report[REPORT_MAX];
	const char	*bridge = "br0", *ibrname = "auto";
	int		 i, have;

	memset(c, 0, sizeof(*c));
	c->port = 10025;
	c->mark = 1;
	c->ipv6 = 1;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--no-ipv6") == 0)
			c->ipv6 = 0;
		else if (i + 1 == argc)
			usage();
		else if (strcmp(argv[i], "--bridge") == 0)
			bridge = argv[++i];
		else if (strcmp(argv[i], "--port") == 0)
			c->port = (uint16_t)num(argv[++i], 65535);
		else if (strcmp(argv[i], "--mark") == 0)
			c->mark = (uint32_t)num(argv[++i], 0xffffffffUL);
		else if (strcmp(argv[i], "--table") == 0)
			c->table = argv[++i];
		else if (strcmp(argv[i], "--ibrname") == 0)
			ibrname = argv[++i];
		else
			usage();
	}
	if (nft_divert_read_bridge(c, bridge, err, sizeof(err)) == -1) {
		fprintf(stderr, "nftdriver: %s\n", err);
		exit(1);
	}
	if (strcmp(ibrname, "auto") == 0) {
		if ((have = nft_divert_probe(report, sizeof(report))) == -1) {
			fprintf(stderr, "nftdriver: probe: %s", report);
			exit(1);
		}
		c->use_ibrname = (have & NFT_DIVERT_HAVE_IBRNAME) != 0;
	} else {
		c->use_ibrname = strcmp(ibrname, "yes") == 0;
	}
}

/* What priv_drop() keeps: CAP_NET_RAW only. */
static int
drop_caps(void)
{
	struct __user_cap_header_struct	hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct	data[2];

	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = 1U << CAP_NET_RAW;
	return (int)syscall(SYS_capset, &hdr, data);
}

static void
command(const struct nft_divert_conf *c, char *line)
{
	char		 err[ERR_MAX];
	char		*w[6], *save = NULL;
	int		 n = 0, r;

	for (w[n] = strtok_r(line, " \t\n", &save); w[n] != NULL && n < 5;
	    w[n] = strtok_r(NULL, " \t\n", &save))
		n++;
	if (n == 0)
		return;
	if (strcmp(w[0], "bypass") == 0 && (n == 4 || n == 5) &&
	    (strcmp(w[1], "add") == 0 || strcmp(w[1], "del") == 0) &&
	    (strcmp(w[2], "src") == 0 || strcmp(w[2], "dst") == 0)) {
		if (nft_divert_bypass(w[1][0] == 'a', w[2][0] == 's', w[3],
		    n == 5 ? (unsigned)num(w[4], 1000000) : 0, err,
		    sizeof(err)) == -1)
			printf("error: %s\n", err);
		else
			printf("ok\n");
	} else if (strcmp(w[0], "list") == 0) {
		if ((r = nft_divert_bypass_list(stdout)) == -1)
			printf("error: %s\n", strerror(errno));
		else
			printf("ok %d\n", r);
	} else if (strcmp(w[0], "reinstall") == 0) {
		if (nft_divert_install(c, err, sizeof(err)) == -1)
			printf("error: %s\n", err);
		else
			printf("ok\n");
	} else if (strcmp(w[0], "drop-caps") == 0) {
		if (drop_caps() == -1)
			printf("error: capset: %s\n", strerror(errno));
		else
			printf("ok\n");
	} else if (strcmp(w[0], "remove") == 0) {
		nft_divert_remove();
		printf("ok\n");
	} else if (strcmp(w[0], "quit") == 0) {
		printf("ok\n");
		exit(0);
	} else {
		printf("error: unknown command\n");
	}
}

static int
install(int argc, char **argv)
{
	struct nft_divert_conf	c;
	char			err[ERR_MAX], line[512];

	parse_conf(&c, argc, argv);
	if (nft_divert_install(&c, err, sizeof(err)) == -1) {
		printf("error: %s\n", err);
		return 1;
	}
	printf("installed bridge=%s ports=%d ibrname=%s\n", c.bridge, c.nports,
	    c.use_ibrname ? "yes" : "no");
	while (fgets(line, sizeof(line), stdin) != NULL)
		command(&c, line);
	for (;;)
		pause();
}

static int
listen_one(int family, uint16_t port, int transparent)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 len;
	int			 fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	}
	if ((fd = socket(family, SOCK_STREAM, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
	    &one, sizeof(one)) == -1) ||
	    (transparent && (family == AF_INET ?
	    setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one)) :
	    setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one,
	    sizeof(one))) == -1) ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, 16) == -1) {
		perror("nftdriver: listen");
		exit(1);
	}
	return fd;
}

static int
serve(int argc, char **argv)
{
	struct pollfd	 pfd[2];
	const char	*banner;
	char		 line[256];
	uint16_t	 port;
	int		 transparent = 0, i, fd;

	if (argc > 0 && strcmp(argv[0], "--transparent") == 0) {
		transparent = 1;
		argc--;
		argv++;
	}
	if (argc != 2)
		usage();
	port = (uint16_t)num(argv[0], 65535);
	banner = argv[1];
	snprintf(line, sizeof(line), "%s\r\n", banner);
	pfd[0].fd = listen_one(AF_INET, port, transparent);
	pfd[1].fd = listen_one(AF_INET6, port, transparent);
	pfd[0].events = pfd[1].events = POLLIN;
	printf("listening\n");
	for (;;) {
		if (poll(pfd, 2, -1) == -1)
			continue;
		for (i = 0; i < 2; i++) {
			if (!(pfd[i].revents & POLLIN) ||
			    (fd = accept(pfd[i].fd, NULL, NULL)) == -1)
				continue;
			(void)!write(fd, line, strlen(line));
			close(fd);
		}
	}
}

static int
connect_print(int argc, char **argv)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	struct timeval		 tv = { .tv_sec = 3 };
	char			 buf[256];
	socklen_t		 len;
	ssize_t			 n;
	int			 fd;

	if (argc != 2)
		usage();
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, argv[0], &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)num(argv[1], 65535));
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, argv[0], &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)num(argv[1], 65535));
		len = sizeof(*sin6);
	} else {
		usage();
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    connect(fd, (struct sockaddr *)&ss, len) == -1) {
		printf("connect: %s\n", strerror(errno));
		return 1;
	}
	if ((n = read(fd, buf, sizeof(buf) - 1)) <= 0) {
		printf("read: %s\n", n == 0 ? "closed" : strerror(errno));
		return 1;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	printf("%s\n", buf);
	return 0;
}

int
main(int argc, char **argv)
{
	struct nft_divert_conf	c;
	char			report[REPORT_MAX];
	int			have;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	log_init("nftdriver", 0, 1);
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "probe") == 0) {
		have = nft_divert_probe(report, sizeof(report));
		fputs(report, stdout);
		return have == -1 ||
		    (have & NFT_DIVERT_NEED) != NFT_DIVERT_NEED;
	}
	if (strcmp(argv[1], "print") == 0) {
		parse_conf(&c, argc - 2, argv + 2);
		nft_divert_print(&c, stdout);
		return 0;
	}
	if (strcmp(argv[1], "install") == 0)
		return install(argc - 2, argv + 2);
	if (strcmp(argv[1], "listen") == 0)
		return serve(argc - 2, argv + 2);
	if (strcmp(argv[1], "connect") == 0)
		return connect_print(argc - 2, argv + 2);
	usage();
}
