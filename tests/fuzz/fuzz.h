/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the libFuzzer targets: an invariant check that prints
 * what broke (with the bytes involved) and aborts so libFuzzer saves the
 * input, and a small deterministic PRNG for chunk sizes derived from the
 * input itself (the same input always splits the same way).
 */
#ifndef SPORK_FUZZ_H
#define SPORK_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline void
fuzz_dump(const char *what, const void *p, size_t len)
{
	const unsigned char	*s = p;
	size_t			 i, n = len > 512 ? 512 : len;

	fprintf(stderr, "  %s (%zu bytes): \"", what, len);
	for (i = 0; i < n; i++) {
		if (s[i] == '\r')
			fputs("\\r", stderr);
		else if (s[i] == '\n')
			fputs("\\n", stderr);
		else if (s[i] == '\\' || s[i] == '"')
			fprintf(stderr, "\\%c", s[i]);
		else if (s[i] < 0x20 || s[i] > 0x7e)
			fprintf(stderr, "\\x%02x", s[i]);
		else
			fputc(s[i], stderr);
	}
	fprintf(stderr, "\"%s\n", n < len ? "..." : "");
}

/* A broken invariant: say which, then abort() so the input is kept. */
#define FUZZ_CHECK(cond, ...) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "INVARIANT %s:%d: %s: ", __FILE__,	\
		    __LINE__, #cond);					\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

/* FNV-1a: seeds the chunking from the input's own bytes. */
static inline uint64_t
fuzz_hash(const uint8_t *p, size_t len)
{
	uint64_t	h = 0xcbf29ce484222325ULL;
	size_t		i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h ? h : 1;
}

/* xorshift64*. */
static inline uint64_t
fuzz_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

/* Every LF preceded by CR and every CR followed by LF. */
static inline int
fuzz_crlf_only(const char *p, size_t len, size_t *where)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) {
			*where = i;
			return 0;
		}
		if (p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n')) {
			*where = i;
			return 0;
		}
	}
	return 1;
}

#endif
