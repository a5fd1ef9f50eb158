/* SPDX-License-Identifier: MIT */
/*
 * The Message-ID and Subject of the tracking record:
 * message_end_header() on arbitrary bytes as the head of a message. Byte 0
 * picks the output size (1 to 768 bytes; 512 is what message_end() uses),
 * byte 1 the header name, the rest is the head, in a buffer of exactly its
 * size (ASan sees any read past it).
 *
 * Invariants:
 *  - out is NUL-terminated within outlen, and nothing past outlen is
 *    written (out is a heap block of exactly outlen bytes);
 *  - it holds no control byte (below 0x20, tabs included, which become
 *    spaces, and DEL), no leading or trailing space;
 *  - it is the field as a model reads it: the first line of the header
 *    (up to the first empty line, or one starting with CR) that starts
 *    with the name, case-insensitively, and a colon; its value and the
 *    continuation lines (LF then SP or HT) joined without the LFs;
 *    control bytes dropped, tabs made spaces, leading spaces skipped,
 *    cut at outlen - 1 bytes, then trailing spaces taken off; "" when
 *    there is none.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message_end.h"
#include "fuzz.h"

static const char *const names[] = {
	"Message-ID", "Subject", "message-id", "X",
};

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* The model: find the line, unfold the value, then clean it. */
static void
model(const uint8_t *h, size_t len, const char *name, char *out,
    size_t outlen)
{
	size_t	nl = strlen(name), ls = 0, le, j, k, o = 0;
	char	*raw;
	size_t	 rn = 0;

	out[0] = '\0';
	for (ls = 0; ls < len; ls = le + 1) {
		for (le = ls; le < len && h[le] != '\n'; le++)
			;
		if (h[ls] == '\r' || h[ls] == '\n')
			return;
		if (le - ls <= nl || h[ls + nl] != ':')
			continue;
		for (k = 0; k < nl; k++)
			if (lower(h[ls + k]) != lower((unsigned char)name[k]))
				break;
		if (k == nl)
			break;
	}
	if (ls >= len)
		return;
	raw = malloc(len + 1);
	FUZZ_CHECK(raw != NULL, "malloc");
	for (j = ls + nl + 1; j < len; j++) {
		if (h[j] == '\n') {
			if (j + 1 < len && (h[j + 1] == ' ' ||
			    h[j + 1] == '\t'))
				continue;
			break;
		}
		if (h[j] < 0x20 && h[j] != '\t')
			continue;
		if (h[j] == 0x7f)
			continue;
		raw[rn++] = h[j] == '\t' ? ' ' : (char)h[j];
	}
	for (j = 0; j < rn && raw[j] == ' '; j++)
		;
	for (; j < rn && o + 1 < outlen; j++)
		out[o++] = raw[j];
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*name;
	size_t		 outlen, n, i;
	char		*out, *want;

	if (size < 2)
		return 0;
	outlen = data[0] == 0 ? 512 : 1 + (size_t)data[0] * 3;
	name = names[data[1] % (sizeof(names) / sizeof(names[0]))];
	data += 2;
	size -= 2;

	out = malloc(outlen);
	want = malloc(outlen);
	FUZZ_CHECK(out != NULL && want != NULL, "malloc");
	memset(out, 0xaa, outlen);
	message_end_header((const char *)data, size, name, out, outlen);

	n = strnlen(out, outlen);
	FUZZ_CHECK(n < outlen, "not terminated within %zu bytes", outlen);
	for (i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)out[i] >= 0x20 &&
		    (unsigned char)out[i] != 0x7f,
		    "control byte 0x%02x at %zu", (unsigned char)out[i], i);
	if (n > 0)
		FUZZ_CHECK(out[0] != ' ' && out[n - 1] != ' ',
		    "leading or trailing space");

	model(data, size, name, want, outlen);
	if (strcmp(out, want) != 0) {
		fuzz_dump("got", out, n);
		fuzz_dump("model", want, strlen(want));
		FUZZ_CHECK(0, "not the model's field (%s)", name);
	}
	free(out);
	free(want);
	return 0;
}
