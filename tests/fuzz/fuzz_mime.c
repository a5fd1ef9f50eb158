/* SPDX-License-Identifier: MIT */
/*
 * The "clean" policy's MIME rewriting (src/checks/mime_clean.c, GMime underneath)
 * against arbitrary messages. A part counts as infected when its decoded
 * content holds the marker "VIR<DEL>US" (libclamav is not linked: the target is
 * the rewriting, not the engine). The input is first made what the relay
 * spools: CRLF line ends only, no NUL. Checked on every input:
 *  - no crash, leak or undefined behaviour on any message;
 *  - a cleaned message has CRLF line ends only;
 *  - cleaning is complete: cleaning the cleaned message finds nothing, so
 *    no infected part is left behind in any part GMime can see.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "mime_clean.h"

/* DEL cannot reach a notice (names are made printable there), so a
 * notice that quotes an attacker's file name never counts as infected. */
#define MARK	"VIR\177US"

static int
marker_scan(void *arg, const void *data, size_t len, char *name,
    size_t namelen)
{
	(void)arg;
	if (len == 0 || memmem(data, len, MARK, sizeof(MARK) - 1) == NULL)
		return 0;
	snprintf(name, namelen, "Fuzz.Marker");
	return 1;
}

static int
memfd_with(const void *p, size_t len)
{
	int	fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd == -1)
		abort();
	if (len > 0 && write(fd, p, len) != (ssize_t)len)
		abort();
	return fd;
}

/* What the DATA framer spools: bare CR and LF made CRLF, NUL dropped. */
static size_t
canonicalize(const uint8_t *p, size_t len, char **out)
{
	char	*o = malloc(2 * len + 1);
	size_t	 i, n = 0;

	if (o == NULL)
		abort();
	for (i = 0; i < len; i++) {
		if (p[i] == '\0')
			continue;
		if (p[i] == '\r') {
			o[n++] = '\r';
			o[n++] = '\n';
			if (i + 1 < len && p[i + 1] == '\n')
				i++;
		} else if (p[i] == '\n') {
			o[n++] = '\r';
			o[n++] = '\n';
		} else
			o[n++] = (char)p[i];
	}
	*out = o;
	return n;
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int			 init;
	struct mime_clean_result	 res, res2;
	char				 err[256], *out, *msg;
	size_t				 where;
	int				 in, o, o2, rc;

	if (!init) {
		mime_clean_init();
		init = 1;
	}
	size = canonicalize(data, size, &msg);
	in = memfd_with(msg, size);
	o = memfd_with(NULL, 0);
	rc = mime_clean(in, size, o, marker_scan, NULL, &res, err, sizeof(err));
	if (rc == 0 && res.removed > 0) {
		out = malloc(res.size ? res.size : 1);
		FUZZ_CHECK(pread(o, out, res.size, 0) == (ssize_t)res.size,
		    "short output");
		FUZZ_CHECK(fuzz_crlf_only(out, res.size, &where),
		    "bare CR or LF at %zu", where);
		o2 = memfd_with(NULL, 0);
		rc = mime_clean(o, res.size, o2, marker_scan, NULL, &res2, err,
		    sizeof(err));
		/* GMime may refuse to parse again what it wrote from junk (a
		 * header with no name, say); then there is nothing to judge
		 * here: sporkd rescans every cleaned message with libclamav,
		 * which also sees headers, and rejects what is not clean. */
		if (rc == 0 && res2.removed != 0)
			fuzz_dump("cleaned", out, res.size);
		FUZZ_CHECK(rc == -1 || res2.removed == 0, "cleaning the "
		    "cleaned message removed %u more", res2.removed);
		close(o2);
		free(out);
	}
	close(in);
	close(o);
	free(msg);
	return 0;
}
