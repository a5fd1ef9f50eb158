/* SPDX-License-Identifier: MIT */
/*
 * The tracking record's JSON line: track_json() on a record cut from the
 * input. Bytes 0-27 are the numbers (flags, recipient count, how often
 * the subject repeats, t, score and size as raw bytes), the rest is split
 * at NUL bytes into the 14 text fields in track.h's order, then recipient
 * addresses and replies, taken in turn again and again when there are
 * more recipients than strings: up to 31, or with flag bits 0xf0 from
 * 990 to 1500 (past TRACK_RCPTS_MAX), short fixed words after the 32nd.
 *
 * Invariants:
 *  - track_json() succeeds in a large buffer, and the output is one JSON
 *    object (jansson parses it, no duplicate keys), with exactly the keys
 *    track.h names: t, the 14 fields, size, score, recipients, and
 *    rcpts_omitted only past TRACK_RCPTS_MAX (never truncated: no
 *    per-string budget in track_json);
 *  - every string round-trips: decoded, it is the field with each byte
 *    that is not part of a valid UTF-8 sequence (no overlong forms, no
 *    surrogates, nothing past U+10FFFF) replaced by U+FFFD, all of it when
 *    the field is at most TRACK_FIELD_MAX bytes, else cut at 995 to 998
 *    bytes, at a character boundary of the whole field; quarantine is null
 *    exactly when empty or NULL;
 *  - t and score are the record's to 3 decimals (t 0 when not finite,
 *    score null), size and each code are the record's, recipients in
 *    order;
 *  - in a buffer one byte too small it fails (-1, ENOBUFS); in one of
 *    exactly its size it gives the same bytes (outputs up to 64 KB).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "track.h"
#include "fuzz.h"

#define NFIELDS		14
#define RCPTS_TRIED	1500
#define SUBJECT_REP	8
#define OUT_MAX		(64u * 1024 * 1024)
#define SMALL_MAX	(64u * 1024)

static const char *const field_names[NFIELDS] = {
	"session", "client", "client_addr", "server", "direction", "helo",
	"sender", "message_id", "subject", "verdict", "action", "tls",
	"quarantine", "reply",
};

/* The length of the valid UTF-8 character at s (n bytes there), 0 if
 * there is none: decoded, then checked against its range. */
static size_t
utf8_char(const unsigned char *s, size_t n)
{
	uint32_t	cp, min;
	size_t		l, k;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		l = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		l = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		l = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (n < l)
		return 0;
	for (k = 1; k < l; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return l;
}

/*
 * What the string s (len bytes) decodes to when the first keep bytes are
 * kept: into out (room for 3 * keep bytes), its length in *outlen. 0 if
 * keep falls inside a character of the whole string.
 */
static int
expect(const unsigned char *s, size_t len, size_t keep, char *out,
    size_t *outlen)
{
	size_t	i = 0, o = 0, l;

	while (i < keep) {
		if ((l = utf8_char(s + i, len - i)) == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			l = 1;
		} else {
			if (i + l > keep)
				return 0;
			memcpy(out + o, s + i, l);
			o += l;
		}
		i += l;
	}
	*outlen = o;
	return 1;
}

static void
check_str(const char *what, json_t *j, const char *v)
{
	const unsigned char	*s = (const unsigned char *)(v ? v : "");
	size_t			 len = strlen((const char *)s), got, wl, k;
	const char		*g;
	char			*want;
	int			 ok = 0;

	FUZZ_CHECK(json_is_string(j), "%s is not a string", what);
	g = json_string_value(j);
	got = json_string_length(j);
	want = malloc(3 * len + 1);
	FUZZ_CHECK(want != NULL, "malloc");
	if (len <= TRACK_FIELD_MAX)
		ok = expect(s, len, len, want, &wl) && wl == got &&
		    memcmp(want, g, got) == 0;
	else
		for (k = TRACK_FIELD_MAX; !ok && k + 3 >= TRACK_FIELD_MAX; k--)
			ok = expect(s, len, k, want, &wl) && wl == got &&
			    memcmp(want, g, got) == 0;
	if (!ok) {
		fuzz_dump("field", s, len);
		fuzz_dump("decoded", g, got);
		if (len <= TRACK_FIELD_MAX && expect(s, len, len, want, &wl))
			fuzz_dump("expected", want, wl);
	}
	FUZZ_CHECK(ok, "%s does not round-trip (%zu bytes, %zu decoded)",
	    what, len, got);
	free(want);
}

static void
check_num(const char *what, json_t *j, double want)
{
	double	v;

	FUZZ_CHECK(json_is_real(j), "%s is not a real", what);
	v = json_real_value(j);
	FUZZ_CHECK(fabs(v - want) <= 0.0005 + fabs(want) * 1e-15,
	    "%s is %.17g, not %.17g", what, v, want);
}

static double
get_double(const uint8_t *p)
{
	double	d;

	memcpy(&d, p, sizeof(d));
	return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char		*fields[NFIELDS] = { NULL }, **segs = NULL;
	struct track_rcpt	*rcpts = NULL;
	struct track_rec	 r;
	struct buf		 b, small;
	json_t			*root, *j, *a, *o;
	json_error_t		 err;
	char			*text = NULL, *subject = NULL;
	size_t			 nsegs = 0, nrcpts, rep, i, n, keys, seg0, len;
	uint64_t		 sz;
	uint8_t			 flags;

	if (size < 28)
		return 0;
	flags = data[0];
	/* Many recipients cost: one input in sixteen. */
	if ((flags & 0xf0) == 0xf0)
		nrcpts = TRACK_RCPTS_MAX - 10 + ((size_t)data[1] |
		    (size_t)data[2] << 8) % (RCPTS_TRIED - TRACK_RCPTS_MAX + 11);
	else
		nrcpts = data[1] % 32;
	rep = 1 + data[3] % SUBJECT_REP;
	memset(&r, 0, sizeof(r));
	r.t = get_double(data + 4);
	r.score = (flags & 1) ? NAN : get_double(data + 12);
	memcpy(&sz, data + 20, sizeof(sz));
	r.size = (size_t)(sz & INT64_MAX);	/* JSON readers' integers */

	/* The strings, each its own allocation of exactly its size. */
	text = malloc(size - 28 + 1);
	segs = calloc(size - 28 + 1, sizeof(*segs));
	FUZZ_CHECK(text != NULL && segs != NULL, "malloc");
	memcpy(text, data + 28, size - 28);
	text[size - 28] = '\0';
	for (i = 0, seg0 = 0; i <= size - 28; i++)
		if (text[i] == '\0') {
			segs[nsegs++] = strdup(text + seg0);
			FUZZ_CHECK(segs[nsegs - 1] != NULL, "strdup");
			seg0 = i + 1;
		}
	/* Empty fields are NULL or "" as flag bit 1 says. */
	for (i = 0; i < NFIELDS && i < nsegs; i++)
		fields[i] = segs[i][0] == '\0' && (flags & 2) ? NULL : segs[i];
	if (fields[8] != NULL && rep > 1) {
		len = strlen(fields[8]);
		subject = malloc(len * rep + 1);
		FUZZ_CHECK(subject != NULL, "malloc");
		for (i = 0; i < rep; i++)
			memcpy(subject + i * len, fields[8], len);
		subject[len * rep] = '\0';
		fields[8] = subject;
	}
	r.session = fields[0];
	r.client = fields[1];
	r.client_addr = fields[2];
	r.server = fields[3];
	r.direction = fields[4];
	r.helo = fields[5];
	r.sender = fields[6];
	r.message_id = fields[7];
	r.subject = fields[8];
	r.verdict = fields[9];
	r.action = fields[10];
	r.tls = fields[11];
	r.quarantine = fields[12];
	r.reply = fields[13];
	if (nrcpts > 0) {
		rcpts = calloc(nrcpts, sizeof(*rcpts));
		FUZZ_CHECK(rcpts != NULL, "calloc");
		n = nsegs > NFIELDS ? nsegs - NFIELDS : 0;
		for (i = 0; i < nrcpts; i++) {
			rcpts[i].addr = n ? segs[NFIELDS + (2 * i) % n] : NULL;
			rcpts[i].reply = n ? segs[NFIELDS + (2 * i + 1) % n] :
			    NULL;
			/* Past the first 32 the count matters, not the
			 * words: short ones keep a run fast. */
			if (i >= 32) {
				rcpts[i].addr = "rcpt@example.org";
				rcpts[i].reply = i % 2 ? "250 2.1.5 Ok" : NULL;
			}
			rcpts[i].code = (int)(i * 37 % 1000) - (flags & 4 ?
			    500 : 0);
		}
	}
	r.rcpts = rcpts;
	r.nrcpts = nrcpts;
	if ((flags & 8) && nrcpts > 0)
		r.rcpts = NULL;		/* a count without a list: none */

	buf_init(&b, OUT_MAX);
	FUZZ_CHECK(track_json(&r, &b) == 0, "track_json failed: %s",
	    strerror(errno));
	root = json_loadb(buf_head(&b), buf_used(&b), JSON_REJECT_DUPLICATES,
	    &err);
	if (root == NULL)
		fuzz_dump("json", buf_head(&b), buf_used(&b));
	FUZZ_CHECK(root != NULL, "not JSON: %s at %d", err.text, err.position);
	FUZZ_CHECK(json_is_object(root), "not an object");

	check_num("t", json_object_get(root, "t"), isfinite(r.t) ? r.t : 0.0);
	for (i = 0; i < NFIELDS; i++) {
		j = json_object_get(root, field_names[i]);
		FUZZ_CHECK(j != NULL, "no %s", field_names[i]);
		if (i == 12 && (fields[i] == NULL || fields[i][0] == '\0'))
			FUZZ_CHECK(json_is_null(j), "quarantine not null");
		else
			check_str(field_names[i], j, fields[i]);
	}
	j = json_object_get(root, "size");
	FUZZ_CHECK(json_is_integer(j) &&
	    (uint64_t)json_integer_value(j) == (uint64_t)r.size,
	    "size is not %zu", r.size);
	j = json_object_get(root, "score");
	if (isfinite(r.score))
		check_num("score", j, r.score);
	else
		FUZZ_CHECK(json_is_null(j), "score not null");

	n = r.rcpts != NULL ? r.nrcpts : 0;
	a = json_object_get(root, "recipients");
	FUZZ_CHECK(json_is_array(a), "recipients not an array");
	FUZZ_CHECK(json_array_size(a) == (n < TRACK_RCPTS_MAX ? n :
	    TRACK_RCPTS_MAX), "%zu recipients of %zu", json_array_size(a), n);
	for (i = 0; i < json_array_size(a); i++) {
		o = json_array_get(a, i);
		FUZZ_CHECK(json_is_object(o) && json_object_size(o) == 3,
		    "recipient %zu not {rcpt, code, reply}", i);
		if (i < 32) {
			check_str("rcpt", json_object_get(o, "rcpt"),
			    r.rcpts[i].addr);
			check_str("rcpt reply", json_object_get(o, "reply"),
			    r.rcpts[i].reply);
		} else
			FUZZ_CHECK(json_is_string(json_object_get(o, "rcpt")) &&
			    strcmp(json_string_value(json_object_get(o,
			    "rcpt")), r.rcpts[i].addr) == 0 &&
			    json_is_string(json_object_get(o, "reply")) &&
			    strcmp(json_string_value(json_object_get(o,
			    "reply")), r.rcpts[i].reply ? r.rcpts[i].reply :
			    "") == 0, "recipient %zu", i);
		j = json_object_get(o, "code");
		FUZZ_CHECK(json_is_integer(j) &&
		    json_integer_value(j) == r.rcpts[i].code,
		    "recipient %zu code", i);
	}
	keys = 1 + NFIELDS + 3;
	j = json_object_get(root, "rcpts_omitted");
	if (n > TRACK_RCPTS_MAX) {
		FUZZ_CHECK(json_is_integer(j) && json_integer_value(j) ==
		    (json_int_t)(n - TRACK_RCPTS_MAX), "rcpts_omitted");
		keys++;
	} else
		FUZZ_CHECK(j == NULL, "rcpts_omitted with %zu", n);
	FUZZ_CHECK(json_object_get(root, "truncated") == NULL,
	    "truncated without a budget");
	FUZZ_CHECK(json_object_size(root) == keys, "%zu keys, not %zu",
	    json_object_size(root), keys);
	json_decref(root);

	/* Bounded: one byte short fails, its exact size gives the same
	 * (small outputs only: the many recipients' would halve the pace). */
	if (buf_used(&b) > SMALL_MAX)
		goto done;
	buf_init(&small, buf_used(&b) - 1);
	errno = 0;
	FUZZ_CHECK(track_json(&r, &small) == -1 && errno == ENOBUFS,
	    "fits in %zu bytes of %zu", buf_used(&b) - 1, buf_used(&b));
	buf_free(&small);
	buf_init(&small, buf_used(&b));
	FUZZ_CHECK(track_json(&r, &small) == 0 &&
	    buf_used(&small) == buf_used(&b) &&
	    memcmp(buf_head(&small), buf_head(&b), buf_used(&b)) == 0,
	    "not the same bytes again");
	buf_free(&small);
done:
	buf_free(&b);
	for (i = 0; i < nsegs; i++)
		free((void *)segs[i]);
	free(segs);
	free(subject);
	free(rcpts);
	free(text);
	return 0;
}
