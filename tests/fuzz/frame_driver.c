/* SPDX-License-Identifier: MIT */
/*
 * frame_driver: the real DATA framer and dot-stuffer on stdin, for the
 * smuggling report. Stdin is what a client sends after 354. Prints, one
 * key=value per line (byte strings in hex):
 *   end        1 if the framer found the end of the message
 *   consumed   bytes of stdin the framer took (through the end, if any)
 *   input      bytes on stdin
 *   errors     DATA_ERR_* flags by name, or none
 *   content    what the relay spools and scans
 *   upstream   the content re-serialized as the relay sends it to the
 *              server: dot-stuffed, then the terminator
 *   rest       the bytes after the end: read as commands by the relay
 * Options: -n normalize bare CR/LF (default reject), -c N feed N bytes at a
 * time (default 8192, the relay's chunk), -l N line limit without CRLF
 * (default 998), -s N size limit (default 100 MiB).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp_data.h"

static void
hex(const char *key, const char *p, size_t len)
{
	size_t	i;

	printf("%s=", key);
	for (i = 0; i < len; i++)
		printf("%02x", (unsigned char)p[i]);
	putchar('\n');
}

static void
usage(void)
{
	fprintf(stderr, "usage: frame_driver [-n] [-c chunk] [-l max_line] "
	    "[-s max_size] < message\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct data_framer	 df;
	struct data_stuffer	 ds;
	char			*in = NULL, *content, *up, tmp[65536];
	size_t			 inlen = 0, cap = 0, chunk = 8192, pos = 0;
	size_t			 clen = 0, ulen = 0, used, olen, max_line = 998;
	size_t			 max_size = (size_t)100 << 20;
	ssize_t			 n;
	int			 ch, normalize = 0, end = 0;

	while ((ch = getopt(argc, argv, "nc:l:s:")) != -1) {
		switch (ch) {
		case 'n':
			normalize = 1;
			break;
		case 'c':
			chunk = strtoul(optarg, NULL, 10);
			break;
		case 'l':
			max_line = strtoul(optarg, NULL, 10);
			break;
		case 's':
			max_size = strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (chunk == 0)
		usage();
	while ((n = read(0, tmp, sizeof(tmp))) > 0) {
		if (inlen + (size_t)n > cap) {
			cap = (inlen + (size_t)n) * 2;
			if ((in = realloc(in, cap)) == NULL)
				return 1;
		}
		memcpy(in + inlen, tmp, (size_t)n);
		inlen += (size_t)n;
	}
	if (n < 0)
		return 1;

	if ((content = malloc(3 * inlen + 16)) == NULL ||
	    (up = malloc(6 * inlen + 16)) == NULL)
		return 1;
	data_framer_init(&df, normalize, max_line, max_size);
	while (pos < inlen && !end) {
		used = data_framer_feed(&df, in + pos,
		    inlen - pos < chunk ? inlen - pos : chunk, content + clen,
		    3 * inlen + 16 - clen, &olen, &end);
		clen += olen;
		pos += used;
	}

	data_stuffer_init(&ds);
	used = data_stuffer_feed(&ds, content, clen, up, 6 * inlen + 16,
	    &ulen);
	if (used != clen)
		return 1;
	ulen += data_stuffer_end(&ds, up + ulen, 6 * inlen + 16 - ulen);

	printf("end=%d\nconsumed=%zu\ninput=%zu\n", end, pos, inlen);
	printf("errors=%s%s%s%s%s%s\n", df.errors == 0 ? "none" : "",
	    df.errors & DATA_ERR_BARE_LF ? " bare-lf" : "",
	    df.errors & DATA_ERR_BARE_CR ? " bare-cr" : "",
	    df.errors & DATA_ERR_LONG_LINE ? " long-line" : "",
	    df.errors & DATA_ERR_TOO_BIG ? " too-big" : "",
	    df.errors & DATA_ERR_NUL ? " nul" : "");
	hex("content", content, clen);
	hex("upstream", up, ulen);
	hex("rest", in + pos, inlen - pos);
	free(in);
	free(content);
	free(up);
	return 0;
}
