/* SPDX-License-Identifier: MIT */
/*
 * The content policy's rewriter and detectors against arbitrary messages:
 * GMime's parse, the walk over parts, libmagic, libarchive's listing, the
 * detectors, redaction, footers and the header block edits, with one rule
 * of each kind. Errors are fine; a crash, a read past a buffer, an action
 * outside the table, a rewrite alongside a reject or headers the relay
 * would refuse are not. The detectors also run on the raw input: a
 * redaction keeps the length and only ever writes X.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "content.h"
#include "dlp.h"
#include "fuzz.h"
#include "mime_clean.h"

static struct content_rules	*rules;

static const char *const rule_lines[] = {
	"rule a ext=exe,scr action=strip",
	"rule b magic=application/x-dosexec action=strip",
	"rule c type=application/x-* action=tag subject_tag=[T]",
	"rule d size=100k action=strip",
	"rule e dlp=card action=redact",
	"rule f dlp=iban action=redact set_header=\"X-F: 1\"",
	"rule g dlp=ssn action=redact",
	"rule h regex=\"(?i)secret\\s+\\w+\" action=redact",
	"rule i all action=footer footer=\"Caf\xc3\xa9\\nfooter\"",
	"rule j all action=tag header=\"X-J: 1\"",
};

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
setup(void)
{
	char	line[256], err[256];
	size_t	i;

	mime_clean_init();
	if (content_scan_init(err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	if ((rules = calloc(1, sizeof(*rules))) == NULL)
		abort();
	for (i = 0; i < sizeof(rule_lines) / sizeof(rule_lines[0]); i++) {
		snprintf(line, sizeof(line), "%s", rule_lines[i]);
		if (content_rules_parse_line(rules, line, err, sizeof(err)) != 1) {
			fprintf(stderr, "%s: %s\n", rule_lines[i], err);
			abort();
		}
	}
}

struct redact {
	char	*copy;
	size_t	 size;
	int	 kind;
};

static int
redact_cb(void *arg, size_t off, size_t len)
{
	struct redact	*r = arg;

	if (len == 0 || off + len > r->size) {
		fprintf(stderr, "match [%zu, +%zu) outside %zu bytes\n", off,
		    len, r->size);
		abort();
	}
	dlp_redact((enum dlp_kind)r->kind, r->copy + off, len);
	return 0;
}

static void
detectors(const uint8_t *data, size_t size)
{
	struct redact	r;
	size_t		i;

	r.size = size;
	for (r.kind = DLP_CARD; r.kind <= DLP_SSN; r.kind++) {
		if ((r.copy = malloc(size + 1)) == NULL)
			abort();
		memcpy(r.copy, data, size);
		(void)dlp_find((enum dlp_kind)r.kind, r.copy, size, redact_cb,
		    &r);
		for (i = 0; i < size; i++)
			if (r.copy[i] != (char)data[i] && r.copy[i] != 'X') {
				fuzz_dump("input", data, size);
				abort();
			}
		free(r.copy);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct content_result	 res;
	uint64_t		 outsize;
	char			 err[256];
	const char		*h;
	ssize_t			 n;
	size_t			 off = 0;
	int			 in, out, rc;

	if (rules == NULL)
		setup();
	detectors(data, size);
	if ((in = memfd_create("fuzz_in", MFD_CLOEXEC)) == -1 ||
	    (out = memfd_create("fuzz_out", MFD_CLOEXEC)) == -1)
		abort();
	while (off < size) {
		if ((n = write(in, data + off, size - off)) <= 0)
			abort();
		off += (size_t)n;
	}
	rc = content_scan(rules, in, size, size % 2, out, &res, &outsize, err,
	    sizeof(err));
	if (rc == 0) {
		if (res.action > ACT_ERROR || (res.rewritten &&
		    res.action >= ACT_QUARANTINE) || (res.hits >>
		    rules->n) != 0 || (res.rule >= rules->n)) {
			fprintf(stderr, "bad result action=%d rewritten=%d\n",
			    res.action, res.rewritten);
			abort();
		}
		for (h = res.headers; *h; h++)
			if ((*h == '\n' && (h == res.headers || h[-1] != '\r'))
			    || (*h == '\r' && h[1] != '\n')) {
				fuzz_dump("headers", res.headers,
				    strlen(res.headers));
				abort();
			}
		if (res.rewritten && (uint64_t)lseek(out, 0, SEEK_END) !=
		    outsize) {
			fprintf(stderr, "output size %llu reported, file differs\n",
			    (unsigned long long)outsize);
			abort();
		}
	} else if (memchr(err, '\0', sizeof(err)) == NULL)
		abort();
	close(in);
	close(out);
	return 0;
}
