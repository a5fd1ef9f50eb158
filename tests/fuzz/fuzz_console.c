/* SPDX-License-Identifier: MIT */
/*
 * The web console's own reading of request bytes: form_get() on a POST
 * body (what /login reads before anyone is logged in: csrf, user,
 * password; and every page's arguments), then what the values go
 * through: token_equal() (CSRF and the pre-login cookie), user_valid(),
 * quarantine_id_valid(), parse_time() and like_arg() (the search form),
 * and html_n(), which every attacker byte passes on its way into a page.
 * The HTTP syntax itself (request line, headers, the Cookie header and
 * the query string) is libmicrohttpd's: MHD_lookup_connection_value()
 * hands the console decoded values, which reach the same functions.
 *
 * Byte 0 picks the output size for form_get (1 to 128, or the sizes the
 * console uses), the rest up to its first NUL is the body (access_cb()
 * refuses a body with a NUL), in a block of exactly its size.
 *
 * Invariants:
 *  - form_get returns out or NULL, NULL exactly when no pair of the body
 *    (split at '&') starts with "name="; out is NUL-terminated within
 *    outlen and is the pair's value with '+' as space and %XX (two hex
 *    digits) as that byte, every other byte as it is, cut at outlen - 1
 *    bytes: never longer than the value;
 *  - token_equal is strcmp() == 0; user_valid and quarantine_id_valid
 *    accept exactly their documented alphabets and lengths;
 *  - parse_time gives -1 or a whole number of seconds, and a time >= 0
 *    written as "YYYY-MM-DD HH:MM:SS" reads back the same;
 *  - like_arg is "%" + the value with \ before each % _ \ + "%";
 *  - html_n writes no < > " ' and no & that does not start one of its
 *    entities, no control byte but TAB and LF, stops at n bytes or the
 *    first NUL, at most 6 bytes per byte.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console.h"
#include "fuzz.h"

/* console.c's, which is not linked (it holds main). */
const struct conf	*console_conf;

static const char *const names[] = {
	"csrf", "user", "password", "id", "sender", "rcpt", "msgid",
	"client", "from", "to", "",
};
#define NNAMES	(sizeof(names) / sizeof(names[0]))
enum { N_CSRF, N_USER, N_PASSWORD, N_ID, N_SENDER, N_RCPT, N_MSGID,
    N_CLIENT, N_FROM, N_TO };

/* The buffers console_http.c and console_pages.c give form_get. */
static const size_t sizes[] = { 65, 128, 512, 32, 128, 1, 2, 3 };

static int
is_hex(unsigned char c)
{
	return c != '\0' && strchr("0123456789abcdefABCDEF", c) != NULL;
}

static int
hex(unsigned char c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* The model: split at '&', find the pair, decode it all, then cut. */
static int
model_form(const char *form, const char *name, char *out, size_t *olen,
    size_t *rawlen)
{
	size_t		 nl = strlen(name), pl, i, o = 0;
	const char	*p = form, *amp;

	for (;;) {
		amp = strchr(p, '&');
		pl = amp != NULL ? (size_t)(amp - p) : strlen(p);
		if (pl > nl && memcmp(p, name, nl) == 0 && p[nl] == '=')
			break;
		if (amp == NULL)
			return 0;
		p = amp + 1;
	}
	p += nl + 1;
	pl -= nl + 1;
	for (i = 0; i < pl; i++) {
		if (p[i] == '+')
			out[o++] = ' ';
		else if (p[i] == '%' && i + 2 < pl &&
		    is_hex((unsigned char)p[i + 1]) &&
		    is_hex((unsigned char)p[i + 2])) {
			out[o++] = (char)(hex((unsigned char)p[i + 1]) * 16 +
			    hex((unsigned char)p[i + 2]));
			i += 2;
		} else
			out[o++] = p[i];
	}
	*olen = o;
	*rawlen = pl;
	return 1;
}

static void
check_form(const char *form, const char *name, size_t outlen, char *val,
    size_t vallen)
{
	char		*out, *want;
	const char	*r;
	size_t		 wl = 0, raw = 0, keep, flen = strlen(form);
	int		 found;

	out = malloc(outlen);
	want = malloc(flen + 1);
	FUZZ_CHECK(out != NULL && want != NULL, "malloc");
	memset(out, 0xaa, outlen);
	r = form_get(form, name, out, outlen);
	found = model_form(form, name, want, &wl, &raw);
	FUZZ_CHECK(r == NULL || r == out, "returned neither out nor NULL");
	FUZZ_CHECK((r != NULL) == found, "\"%s\" %s, the model says %s", name,
	    r ? "found" : "not found", found ? "found" : "not found");
	if (r != NULL) {
		FUZZ_CHECK(memchr(out, '\0', outlen) != NULL,
		    "\"%s\" not terminated within %zu", name, outlen);
		FUZZ_CHECK(wl <= raw, "decoded %zu of %zu", wl, raw);
		keep = wl < outlen - 1 ? wl : outlen - 1;
		if (memcmp(out, want, keep) != 0 || out[keep] != '\0') {
			fuzz_dump("got", out, keep + 1);
			fuzz_dump("model", want, keep);
			FUZZ_CHECK(0, "\"%s\" is not the model's value", name);
		}
		if (val != NULL)
			snprintf(val, vallen, "%s", out);
	} else if (val != NULL)
		val[0] = '\0';
	free(out);
	free(want);
}

static void
check_like(const char *s)
{
	char	*l = like_arg(s);
	size_t	 n, i, j = 0, sl = strlen(s);

	FUZZ_CHECK(l != NULL, "like_arg: NULL");
	n = strlen(l);
	FUZZ_CHECK(n >= 2 && n <= 2 * sl + 2 && l[0] == '%' &&
	    l[n - 1] == '%', "like_arg: not %%...%%");
	for (i = 1; i < n - 1; i++, j++) {
		if (l[i] == '\\') {
			i++;
			FUZZ_CHECK(i < n - 1 && (l[i] == '%' || l[i] == '_' ||
			    l[i] == '\\'), "like_arg: a lone backslash");
		} else
			FUZZ_CHECK(l[i] != '%' && l[i] != '_',
			    "like_arg: an unescaped %c", l[i]);
		FUZZ_CHECK(j < sl && l[i] == s[j], "like_arg: not the value");
	}
	FUZZ_CHECK(j == sl, "like_arg: %zu bytes of %zu", j, sl);
	free(l);
}

static void
check_time(const char *s)
{
	double		t = parse_time(s), t2;
	time_t		tt;
	struct tm	tm;
	char		back[64];

	FUZZ_CHECK(isfinite(t) && t == floor(t), "parse_time: %g", t);
	if (t < 0 || t > 253402300799.0)	/* after 9999: not written */
		return;
	tt = (time_t)t;
	FUZZ_CHECK(gmtime_r(&tt, &tm) != NULL, "gmtime");
	strftime(back, sizeof(back), "%Y-%m-%d %H:%M:%S", &tm);
	t2 = parse_time(back);
	FUZZ_CHECK(t2 == t, "parse_time(\"%s\") = %.0f, not %.0f", back, t2,
	    t);
}

static void
check_valid(const char *s)
{
	size_t	n = strlen(s), i;
	int	user = n > 0 && n < CONSOLE_USER_MAX, qid = n > 0 && n < 64;

	for (i = 0; i < n; i++) {
		unsigned char	c = (unsigned char)s[i];
		int		alnum = (c >= 'a' && c <= 'z') ||
				    (c >= 'A' && c <= 'Z') ||
				    (c >= '0' && c <= '9');

		if (!alnum && c != '.' && c != '_' && c != '-')
			user = 0;
		if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'f') &&
		    !(c >= 'A' && c <= 'F') && c != 'T' && c != '-')
			qid = 0;
	}
	FUZZ_CHECK(!!user_valid(s) == user, "user_valid(\"%s\")", s);
	FUZZ_CHECK(!!quarantine_id_valid(s) == qid,
	    "quarantine_id_valid(\"%s\")", s);
}

static void
check_html(const char *s, size_t n)
{
	static const char *const ents[] = { "&amp;", "&lt;", "&gt;",
	    "&quot;", "&#39;" };
	char	*text = NULL;
	size_t	 len = 0, i, k, in = strnlen(s, n);
	FILE	*fp = open_memstream(&text, &len);

	FUZZ_CHECK(fp != NULL, "open_memstream");
	html_n(fp, s, n);
	fclose(fp);
	FUZZ_CHECK(len <= 6 * in, "html: %zu bytes for %zu", len, in);
	FUZZ_CHECK(in > 0 || len == 0, "html: output for nothing");
	for (i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)text[i];

		FUZZ_CHECK(c != '<' && c != '>' && c != '"' && c != '\'',
		    "html: a raw %c at %zu", c, i);
		FUZZ_CHECK(c >= 0x20 || c == '\t' || c == '\n',
		    "html: control byte 0x%02x at %zu", c, i);
		if (c == '&') {
			for (k = 0; k < 5; k++)
				if (strncmp(text + i, ents[k],
				    strlen(ents[k])) == 0)
					break;
			FUZZ_CHECK(k < 5, "html: a bare & at %zu", i);
		}
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	 vals[NNAMES][512];
	char	*form;
	size_t	 outlen, i, n;

	if (size < 1)
		return 0;
	outlen = data[0] & 0x80 ? sizes[data[0] % 8] : 1 + (size_t)data[0];
	n = strnlen((const char *)data + 1, size - 1);
	form = malloc(n + 1);
	FUZZ_CHECK(form != NULL, "malloc");
	memcpy(form, data + 1, n);
	form[n] = '\0';

	for (i = 0; i < NNAMES; i++) {
		check_form(form, names[i], outlen, NULL, 0);
		/* The sizes the console gives, for the values below. */
		check_form(form, names[i], sizeof(vals[i]), vals[i],
		    sizeof(vals[i]));
	}

	FUZZ_CHECK(!!token_equal(vals[N_CSRF], vals[N_USER]) ==
	    (strcmp(vals[N_CSRF], vals[N_USER]) == 0), "token_equal");
	FUZZ_CHECK(token_equal(vals[N_PASSWORD], vals[N_PASSWORD]),
	    "token_equal: not equal to itself");
	for (i = 0; i < NNAMES; i++)
		check_valid(vals[i]);
	check_valid(form);
	check_time(vals[N_FROM]);
	check_time(vals[N_TO]);
	check_time(form);
	check_like(vals[N_SENDER]);
	check_like(form);
	check_html(vals[N_MSGID], sizeof(vals[N_MSGID]));
	check_html(form, (size_t)-1);
	check_html(form, n / 2);
	free(form);
	return 0;
}
