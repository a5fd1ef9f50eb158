/* SPDX-License-Identifier: MIT */
/*
 * The "clean" policy's MIME rewriting, with the real libclamav engine and
 * the project's test signatures: each tests/data/mime/NAME.in is cleaned
 * and compared byte for byte with NAME.ref (SPORK_UPDATE_GOLDEN=1 writes
 * the .ref files). Also checked: strict CRLF, the virus gone, what was not
 * infected still there byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mime_clean.h"
#include "scan_engine.h"
#include "unit.h"

#define MIME_DIR	"tests/data/mime"
#define MIME_MAX	(1 << 20)

static const struct {
	const char	*name;
	unsigned	 removed;
	const char	*kept[4];	/* input bytes that must survive */
} mime_cases[] = {
	{ "attachment", 1, {
	    "Received: from client.example (client.example [192.0.2.10])\r\n"
	    "\tby mx.example with ESMTP; Fri, 27 Nov 2026 06:00:00 +0000\r\n",
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "Hello Bob,=20\r\nthe figures are attached.  Caf=C3=A9 at noon?\r\n",
	    "q,revenue\r\n1,100\r\n2,120\r\n",
	    "This is a multi-part message in MIME format.\r\n" } },
	{ "singlepart", 1, { "Message-ID: <single-1@example.org>\r\n" } },
	{ "nested", 1, { "See the forwarded message.\r\n",
	    "Please pay.\r\n", "Subject: invoice\r\n" } },
	{ "clean", 0, { NULL } },
};

static int
unit_scan(void *arg, const void *data, size_t len, char *name,
    size_t namelen)
{
	struct scan_result	r;

	scan_engine_scan_mem(arg, data, len, &r);
	snprintf(name, namelen, "%s", r.name);
	if (r.verdict == SCAN_CLEAN)
		return 0;
	return r.verdict == SCAN_VIRUS ? 1 : -1;
}

static void
mime_case(const struct scan_engine *e, size_t k)
{
	struct mime_clean_result res;
	struct scan_result	 r;
	char			 path[512], err[256], *in, *out, *ref;
	size_t			 inlen, reflen, j;
	int			 ifd, ofd, rc;
	ssize_t			 n;
	FILE			*fp;

	snprintf(path, sizeof(path), "%s/%s.in", MIME_DIR, mime_cases[k].name);
	in = unit_slurp(path, MIME_MAX, &inlen);
	CHECK(in != NULL, "%s: %s", path, strerror(errno));
	if (in == NULL)
		return;
	ifd = memfd_create("in", 0);
	ofd = memfd_create("out", 0);
	CHECK(write(ifd, in, inlen) == (ssize_t)inlen, "%s", path);
	err[0] = '\0';
	rc = mime_clean(ifd, inlen, ofd, unit_scan, (void *)e, &res, err,
	    sizeof(err));
	CHECK(rc == 0, "%s: %s", path, err);
	CHECK(res.removed == mime_cases[k].removed, "%s: removed %u", path,
	    res.removed);
	out = malloc(MIME_MAX);
	n = pread(ofd, out, MIME_MAX, 0);
	CHECK(n == (ssize_t)res.size, "%s: size %zd vs %zu", path, n,
	    res.size);
	if (res.removed == 0) {
		CHECK(n == 0, "%s: nothing to clean, %zd bytes written", path,
		    n);
		goto done;
	}
	CHECK(n > 0 && unit_crlf_only(out, (size_t)n),
	    "%s: bare CR or LF in output", path);
	CHECK(memmem(out, (size_t)n, "EICAR", 5) == NULL, "%s: virus left",
	    path);
	CHECK(memmem(out, (size_t)n, "X-Spork-Removed: ", 17) != NULL,
	    "%s: no notice", path);
	scan_engine_scan(e, ofd, (size_t)n, &r);
	CHECK(r.verdict == SCAN_CLEAN, "%s: output scans %s (%s)", path,
	    scan_verdict_name(r.verdict), r.name);
	for (j = 0; j < 4 && mime_cases[k].kept[j] != NULL; j++)
		CHECK(memmem(out, (size_t)n, mime_cases[k].kept[j],
		    strlen(mime_cases[k].kept[j])) != NULL, "%s: lost "
		    "\"%.40s\"", path, mime_cases[k].kept[j]);
	snprintf(path, sizeof(path), "%s/%s.ref", MIME_DIR,
	    mime_cases[k].name);
	if (getenv("SPORK_UPDATE_GOLDEN") != NULL &&
	    (fp = fopen(path, "wb")) != NULL) {
		fwrite(out, 1, (size_t)n, fp);
		fclose(fp);
	}
	ref = unit_slurp(path, MIME_MAX, &reflen);
	CHECK(ref != NULL && reflen == (size_t)n &&
	    memcmp(ref, out, reflen) == 0, "%s: output differs", path);
	free(ref);
done:
	free(out);
	free(in);
	close(ifd);
	close(ofd);
}

/* Input that is not a sensible message: no crash, a clear answer. */
static void
mime_junk(const struct scan_engine *e)
{
	static const char *const junk[] = {
		"",
		"\r\n",
		"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n",
		"Content-Type: message/rfc822\r\n\r\nContent-Type: message/"
		    "rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=x"
		    "\r\n\r\n--x\r\n--x--\r\n",
		"Content-Transfer-Encoding: base64\r\n\r\n!!!!====\r\n",
	};
	struct mime_clean_result res;
	char			 err[256];
	size_t			 i;
	int			 ifd, ofd, rc;

	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		ifd = memfd_create("in", 0);
		ofd = memfd_create("out", 0);
		CHECK(write(ifd, junk[i], strlen(junk[i])) ==
		    (ssize_t)strlen(junk[i]), "write");
		rc = mime_clean(ifd, strlen(junk[i]), ofd, unit_scan,
		    (void *)e, &res, err, sizeof(err));
		CHECK((rc == 0 && res.removed == 0) || rc == -1,
		    "junk %zu: rc %d removed %u", i, rc, res.removed);
		close(ifd);
		close(ofd);
	}
}

void
test_mime(void)
{
	struct scan_engine_conf	 c;
	struct scan_engine	*e;
	char			 err[512];
	size_t			 k;

	memset(&c, 0, sizeof(c));
	snprintf(c.dbdir, sizeof(c.dbdir), "tests/data/clamav");
	snprintf(c.tmpdir, sizeof(c.tmpdir), "/tmp");
	c.max_scansize = 100 << 20;
	c.max_filesize = 50 << 20;
	c.max_recursion = 17;
	c.max_files = 1000;
	c.max_scantime = 60000;
	mime_clean_init();
	e = scan_engine_load(&c, err, sizeof(err));
	CHECK(e != NULL, "engine: %s", err);
	if (e == NULL)
		return;
	for (k = 0; k < sizeof(mime_cases) / sizeof(mime_cases[0]); k++)
		mime_case(e, k);
	mime_junk(e);
	scan_engine_free(e);
}
