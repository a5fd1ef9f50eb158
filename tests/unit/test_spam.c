/* SPDX-License-Identifier: MIT */
/*
 * Spam engines: the rspamd HTTP/JSON and spamd SPAMD reply parsers with
 * good, hostile and truncated replies, every prefix of a good reply, the
 * request heads, the threshold policy and the score config type.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "spam.h"
#include "spam_policy.h"
#include "spam_proto.h"
#include "unit.h"

#define HTTP_OK(body) "HTTP/1.1 200 OK\r\nConnection: close\r\n" \
	"Server: rspamd/3.4\r\nContent-Length: %zu\r\n" \
	"Content-Type: application/json\r\n\r\n" body

struct reply_case {
	const char	*text;		/* with one %zu: the body length */
	int		 eof;
	int		 rc;		/* 0 more, 1 parsed, -1 error */
	double		 score;
	double		 required;
	const char	*symbols;	/* when parsed */
	const char	*error;		/* substring of r.error when -1 */
};

/* Fill "%zu" with the length of what follows the blank line. */
static size_t
render(char *out, size_t outlen, const char *fmt)
{
	const char	*pct = strstr(fmt, "%zu"), *blank;
	size_t		 body;

	if (pct == NULL)
		return (size_t)snprintf(out, outlen, "%s", fmt);
	blank = strstr(fmt, "\r\n\r\n");
	body = blank != NULL ? strlen(blank + 4) : 0;
	return (size_t)snprintf(out, outlen, "%.*s%zu%s", (int)(pct - fmt),
	    fmt, body, pct + 3);
}

static void
run_cases(const char *what, const struct reply_case *t, size_t n,
    int (*parse)(const char *, size_t, int, struct spam_result *))
{
	struct spam_result	r;
	char			msg[8192];
	size_t			i, len;
	int			rc;

	for (i = 0; i < n; i++) {
		memset(&r, 0, sizeof(r));
		len = render(msg, sizeof(msg), t[i].text);
		rc = parse(msg, len, t[i].eof, &r);
		CHECK(rc == t[i].rc, "%s %zu: rc %d want %d (error \"%s\")",
		    what, i, rc, t[i].rc, r.error);
		if (rc != t[i].rc)
			continue;
		if (rc == 1) {
			CHECK(r.ok == 1, "%s %zu: ok", what, i);
			CHECK(fabs(r.score - t[i].score) < 1e-9 &&
			    fabs(r.required - t[i].required) < 1e-9,
			    "%s %zu: score %f/%f want %f/%f", what, i, r.score,
			    r.required, t[i].score, t[i].required);
			if (t[i].symbols != NULL)
				CHECK(strcmp(r.symbols, t[i].symbols) == 0,
				    "%s %zu: symbols [%s] want [%s]", what, i,
				    r.symbols, t[i].symbols);
		} else
			CHECK(r.ok == 0, "%s %zu: not ok", what, i);
		if (rc == -1 && t[i].error != NULL)
			CHECK(strstr(r.error, t[i].error) != NULL,
			    "%s %zu: error [%s] want [%s]", what, i, r.error,
			    t[i].error);
	}
}

/* Every strict prefix of a complete reply: more wanted while open, an
 * error once closed; never a score. */
static void
prefixes(const char *what, const char *fmt,
    int (*parse)(const char *, size_t, int, struct spam_result *))
{
	struct spam_result	r;
	char			msg[8192], *cut;
	size_t			len, k;
	int			rc0, rc1;

	len = render(msg, sizeof(msg), fmt);
	for (k = 0; k < len; k++) {
		/* A copy of exactly k bytes: overreads show under ASan. */
		if ((cut = malloc(k + 1)) == NULL)
			return;
		memcpy(cut, msg, k);
		memset(&r, 0, sizeof(r));
		rc0 = parse(cut, k, 0, &r);
		memset(&r, 0, sizeof(r));
		rc1 = parse(cut, k, 1, &r);
		free(cut);
		CHECK(rc0 == 0 && rc1 == -1 && !r.ok, "%s prefix %zu/%zu: open "
		    "%d closed %d", what, k, len, rc0, rc1);
	}
	memset(&r, 0, sizeof(r));
	CHECK(parse(msg, len, 0, &r) == 1 && r.ok, "%s whole", what);
}

static void
test_rspamd(void)
{
	static const struct reply_case t[] = {
		/* rspamd 3.4's answer to GTUBE, verbatim. */
		{ HTTP_OK("{\"is_skipped\":true,\"score\":15.0,"
		    "\"required_score\":15.0,\"action\":\"reject\",\"symbols\":"
		    "{\"GTUBE\":{\"name\":\"GTUBE\",\"score\":0.0,"
		    "\"metric_score\":0.0}},\"messages\":{\"smtp_message\":"
		    "\"Gtube pattern\"},\"message-id\":\"g@x\",\"time_real\":"
		    "0.3}"), 0, 1, 15.0, 15.0, "GTUBE", NULL },
		{ HTTP_OK("{\"is_skipped\":false,\"score\":0.0,"
		    "\"required_score\":15.0,\"action\":\"no action\","
		    "\"symbols\":{},\"messages\":{}}"), 0, 1, 0, 15, "", NULL },
		{ HTTP_OK("{\"score\":-2.5,\"required_score\":7,\"symbols\":"
		    "{\"A\":{},\"B_2\":{},\"we ird\\n\":{}}}"), 0, 1, -2.5, 7,
		    "A,B_2,we?ird?", NULL },
		/* HTTP/1.0, no Content-Length: the body ends at close. */
		{ "HTTP/1.0 200 OK\r\n\r\n{\"score\":1,\"required_score\":2}",
		    1, 1, 1, 2, "", NULL },
		{ "HTTP/1.0 200 OK\r\n\r\n{\"score\":1,\"required_score\":2}",
		    0, 0, 0, 0, NULL, NULL },
		/* Errors from the engine or the way. */
		{ "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
		    "\r\n", 0, -1, 0, 0, NULL, "HTTP 500 Internal Server Error" },
		{ "HTTP/1.1 413 Payload Too Large\r\n\r\n", 0, -1, 0, 0, NULL,
		    "HTTP 413" },
		{ "SPAMD/1.1 0 EX_OK\r\n\r\n", 0, -1, 0, 0, NULL,
		    "not an HTTP reply" },
		{ "HTTP/1.1 2000 OK\r\n\r\n", 0, -1, 0, 0, NULL,
		    "not an HTTP reply" },
		{ "", 1, -1, 0, 0, NULL, "closed without a reply" },
		{ "HTTP/1.1 200 OK\r\nContent-Le", 1, -1, 0, 0, NULL,
		    "truncated" },
		/* Framing the parser refuses rather than guesses. */
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n",
		    0, -1, 0, 0, NULL, "transfer-encoding" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5"
		    "\r\n\r\n{\"a\":", 0, -1, 0, 0, NULL, "content-length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, -1, 0, 0,
		    NULL, "content-length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", 0,
		    -1, 0, 0, NULL, "content-length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}junk", 0, -1,
		    0, 0, NULL, "after the reply" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{\"score\":1",
		    0, 0, 0, 0, NULL, NULL },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{\"score\":1",
		    1, -1, 0, 0, NULL, "truncated" },
		/* Hostile or broken JSON: never a score. */
		{ HTTP_OK("{\"score\":1,\"required_score\":2"), 0, -1, 0, 0,
		    NULL, "bad JSON" },
		{ HTTP_OK("[1,2]"), 0, -1, 0, 0, NULL, "not an object" },
		{ HTTP_OK("{\"score\":\"15\",\"required_score\":2}"), 0, -1, 0,
		    0, NULL, "no usable score" },
		{ HTTP_OK("{\"required_score\":2}"), 0, -1, 0, 0, NULL,
		    "no usable score" },
		{ HTTP_OK("{\"score\":1}"), 0, -1, 0, 0, NULL,
		    "required_score" },
		{ HTTP_OK("{\"score\":1e308,\"required_score\":2}"), 0, -1, 0,
		    0, NULL, "no usable score" },
		{ HTTP_OK("{\"score\":1e999,\"required_score\":2}"), 0, -1, 0,
		    0, NULL, "bad JSON" },
		{ HTTP_OK("{\"score\":NaN,\"required_score\":2}"), 0, -1, 0, 0,
		    NULL, "bad JSON" },
		{ HTTP_OK("{\"score\":1,\"score\":20,\"required_score\":2}"), 0,
		    -1, 0, 0, NULL, "bad JSON" },
		{ HTTP_OK("{\"score\":1,\"required_score\":2,\"symbols\":[]}"),
		    0, -1, 0, 0, NULL, "symbols is not" },
		{ HTTP_OK("{\"score\":1,\"required_score\":2,\"action\":7}"), 0,
		    -1, 0, 0, NULL, "action is not" },
		{ HTTP_OK("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
		    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["),
		    0, -1, 0, 0, NULL, "bad JSON" },
		{ HTTP_OK(""), 0, -1, 0, 0, NULL, "bad JSON" },
	};
	struct spam_result	r;
	char			big[SPAM_SYMBOLS_MAX * 8], msg[sizeof(big) + 256];
	size_t			i, l;

	run_cases("rspamd", t, sizeof(t) / sizeof(t[0]), spam_rspamd_reply);
	prefixes("rspamd", t[0].text, spam_rspamd_reply);

	/* A NUL inside the JSON is refused, not cut short. */
	{
		static const char	nul[] = "HTTP/1.1 200 OK\r\n"
		    "Content-Length: 33\r\n\r\n{\"score\":1,\"required_score\":"
		    "2}\0{}";

		memset(&r, 0, sizeof(r));
		CHECK(spam_rspamd_reply(nul, sizeof(nul) - 1, 0, &r) == -1 &&
		    !r.ok, "NUL in JSON: %s", r.error);
	}

	/* Many symbols: the list is cut with ",..." and stays in bounds. */
	l = (size_t)snprintf(big, sizeof(big), "{\"score\":3,\"required_score\""
	    ":5,\"symbols\":{");
	for (i = 0; i < 100; i++)
		l += (size_t)snprintf(big + l, sizeof(big) - l, "%s\"SYMBOL_%02zu"
		    "\":{}", i > 0 ? "," : "", i);
	snprintf(big + l, sizeof(big) - l, "}}");
	l = (size_t)snprintf(msg, sizeof(msg), "HTTP/1.1 200 OK\r\n"
	    "Content-Length: %zu\r\n\r\n%s", strlen(big), big);
	memset(&r, 0, sizeof(r));
	CHECK(spam_rspamd_reply(msg, l, 0, &r) == 1, "many symbols: %s",
	    r.error);
	CHECK(strlen(r.symbols) < sizeof(r.symbols) &&
	    strcmp(r.symbols + strlen(r.symbols) - 4, ",...") == 0 &&
	    strncmp(r.symbols, "SYMBOL_00,SYMBOL_01,", 20) == 0,
	    "many symbols cut: [%s]", r.symbols);
}

static void
test_spamd(void)
{
	static const struct reply_case t[] = {
		/* spamd 4.0.1's answers, verbatim. */
		{ "SPAMD/1.1 0 EX_OK\r\nContent-length: 43\r\nSpam: True ; "
		    "1000.0 / 5.0\r\n\r\nGTUBE,NO_RECEIVED,NO_RELAYS,"
		    "TVD_SPACE_RATIO", 0, 1, 1000, 5,
		    "GTUBE,NO_RECEIVED,NO_RELAYS,TVD_SPACE_RATIO", NULL },
		{ "SPAMD/1.1 0 EX_OK\r\nContent-length: %zu\r\nSpam: False ; "
		    "4.2 / 5.0\r\n\r\nMISSING_DATE,MISSING_MID\r\n", 0, 1, 4.2,
		    5, "MISSING_DATE,MISSING_MID", NULL },
		{ "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1000.0 / 5.0\r\n\r\n", 1,
		    1, 1000, 5, "", NULL },
		{ "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1000.0 / 5.0\r\n\r\n", 0,
		    0, 0, 0, NULL, NULL },
		{ "SPAMD/1.5 0 EX_OK\r\nspam: yes;-3/5\r\n\r\n", 1, 1, -3, 5,
		    "", NULL },
		{ "SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.0 / 5.0\r\n\r\n", 1, 1,
		    0, 5, "", NULL },
		/* Errors. */
		{ "SPAMD/1.0 76 Bad header line: Content-length: x\r\n", 0, -1,
		    0, 0, NULL, "spamd error: 76 Bad header line" },
		{ "SPAMD/1.0 0", 0, 0, 0, 0, NULL, NULL },
		{ "SPAMD/1.0 0", 1, -1, 0, 0, NULL, "truncated" },
		{ "", 1, -1, 0, 0, NULL, "closed without a reply" },
		{ "HTTP/1.1 200 OK\r\n\r\n", 0, -1, 0, 0, NULL,
		    "not a SPAMD reply" },
		{ "SPAMD/ 0 EX_OK\r\n\r\n", 0, -1, 0, 0, NULL,
		    "not a SPAMD reply" },
		{ "SPAMD/1.1 00 EX_OK\r\n\r\n", 0, -1, 0, 0, NULL,
		    "spamd error" },
		{ "SPAMD/1.1 0 EX_OK\r\n\r\n", 1, -1, 0, 0, NULL,
		    "no Spam header" },
		{ "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5\r\nSpam: False ; 1 "
		    "/ 5\r\n\r\n", 1, -1, 0, 0, NULL, "two Spam headers" },
		{ "SPAMD/1.1 0 EX_OK\r\nSpam: Maybe ; 1 / 5\r\n\r\n", 1, -1, 0,
		    0, NULL, "bad Spam header" },
		{ "SPAMD/1.1 0 EX_OK\r\nSpam: True ; inf / 5\r\n\r\n", 1, -1, 0,
		    0, NULL, "bad Spam header" },
		{ "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 0x10 / 5\r\n\r\n", 1, -1,
		    0, 0, NULL, "bad Spam header" },
		{ "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1e3 / 5\r\n\r\n", 1, -1, 0,
		    0, NULL, "bad Spam header" },
		{ "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 10 / 5 junk\r\n\r\n", 1,
		    -1, 0, 0, NULL, "bad Spam header" },
		{ "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 10 /\r\n\r\n", 1, -1, 0, 0,
		    NULL, "bad Spam header" },
		{ "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 99999999 / 5\r\n\r\n", 1,
		    -1, 0, 0, NULL, "bad Spam header" },
		{ "SPAMD/1.1 0 EX_OK\r\nSpam: True ; "
		    "1.000000000000000000000000001 / 5\r\n\r\n", 1, -1, 0, 0,
		    NULL, "bad Spam header" },
		{ "SPAMD/1.1 0 EX_OK\r\nContent-length: 3\r\nSpam: True ; 9 / 5"
		    "\r\n\r\nA,B,C", 0, -1, 0, 0, NULL, "after the reply" },
		{ "SPAMD/1.1 0 EX_OK\r\nContent-length: 30\r\nSpam: True ; 9 / "
		    "5\r\n\r\nA,B", 1, -1, 0, 0, NULL, "truncated" },
		{ "SPAMD/1.1 0 EX_OK\r\nContent-length: %zu\r\nSpam: True ; 9 / "
		    "5\r\n\r\n,,A\"B,,<script>,", 0, 1, 9, 5, "A?B,?script?",
		    NULL },
	};

	run_cases("spamd", t, sizeof(t) / sizeof(t[0]), spam_spamd_reply);
	prefixes("spamd", t[0].text, spam_spamd_reply);

	/* Negative zero is shown as zero. */
	{
		static const char	nz[] = "SPAMD/1.1 0 EX_OK\r\nSpam: False ; "
		    "-0.0 / 5.0\r\n\r\n";
		struct spam_result	r;

		memset(&r, 0, sizeof(r));
		CHECK(spam_spamd_reply(nz, sizeof(nz) - 1, 1, &r) == 1 &&
		    !signbit(r.score), "negative zero: %f", r.score);
	}
}

static void
test_heads(void)
{
	char *const	 rcpts[] = { "<alice@example.test>", NULL,
			    "<bob@exa\r\nmple.test>" };
	struct spam_envelope e = { "10.25.0.1", "client example\r\nX: y",
			    "<a@client.example.test>", rcpts, 3, "0a1b2c3d" };
	struct buf	 b;
	char		*s;

	buf_init(&b, SPAM_HEAD_MAX);
	CHECK(spam_rspamd_head(&b, &e, 1234) == 0, "rspamd head");
	s = strndup(buf_head(&b), buf_used(&b));
	CHECK(s != NULL && strcmp(s, "POST /checkv2 HTTP/1.1\r\n"
	    "Host: localhost\r\nConnection: close\r\nUser-Agent: sporkd\r\n"
	    "Content-Length: 1234\r\nQueue-Id: 0a1b2c3d\r\nIP: 10.25.0.1\r\n"
	    "Helo: client?example??X:?y\r\nFrom: a@client.example.test\r\n"
	    "Rcpt: alice@example.test\r\nRcpt: bob@exa??mple.test\r\n\r\n")
	    == 0, "rspamd head: [%s]", s);
	free(s);
	buf_free(&b);

	/* The null reverse path: no From header. */
	e.sender = "<>";
	e.nrcpts = 0;
	CHECK(spam_rspamd_head(&b, &e, 0) == 0, "rspamd bounce head");
	s = strndup(buf_head(&b), buf_used(&b));
	CHECK(s != NULL && strstr(s, "From:") == NULL && strstr(s, "Rcpt:") ==
	    NULL, "bounce head: [%s]", s);
	free(s);
	buf_free(&b);

	CHECK(spam_spamd_head(&b, &e, 99) == 0, "spamd head");
	s = strndup(buf_head(&b), buf_used(&b));
	CHECK(s != NULL && strcmp(s, "SYMBOLS SPAMC/1.5\r\nContent-length: "
	    "99\r\n\r\n") == 0, "spamd head: [%s]", s);
	free(s);
	buf_free(&b);
}

static void
test_policy(void)
{
	static const struct {
		const char		*conf;
		int			 ok;
		double			 score;
		const char		*message;
		enum action	 action;
		enum spam_rule		 rule;
		int			 deliver;
		const char		*reply;		/* prefix */
		const char		*header;	/* substring */
	} t[] = {
		{ "", 1, 0.5, "", ACT_DELIVER, SPAM_RULE_HAM, 1, "",
		    "X-Spam-Score: 0.50\r\nX-Spam-Status: No, score=0.50 "
		    "required=5.00 engine=rspamd tests=A,B\r\n" },
		{ "", 1, 5, "", ACT_TAG, SPAM_RULE_TAG, 1, "",
		    "X-Spam-Flag: YES\r\nX-Spam-Score: 5.00\r\n"
		    "X-Spam-Status: Yes, score=5.00" },
		{ "", 1, 14.99, "", ACT_TAG, SPAM_RULE_TAG, 1, "", "Yes" },
		{ "", 1, 15, "Gtube pattern", ACT_REJECT, SPAM_RULE_REJECT,
		    0, "550 5.7.1 Message rejected as spam (Gtube pattern)",
		    "" },
		{ "", 1, 1000, "", ACT_REJECT, SPAM_RULE_REJECT, 0,
		    "550 5.7.1 Message rejected as spam", "" },
		{ "spam_quarantine_score 10\n", 1, 12, "", ACT_QUARANTINE,
		    SPAM_RULE_QUARANTINE, 0, "550 5.7.1", "" },
		{ "spam_quarantine_score 10\nquarantine_then deliver\n", 1, 12,
		    "", ACT_QUARANTINE, SPAM_RULE_QUARANTINE, 1, "",
		    "X-Spam-Flag: YES" },
		{ "spam_tag_score off\nspam_reject_score off\n", 1, 500, "",
		    ACT_DELIVER, SPAM_RULE_HAM, 1, "", "required=15.00" },
		{ "spam_tag_score off\n", 1, 14, "", ACT_DELIVER,
		    SPAM_RULE_HAM, 1, "", "required=15.00" },
		{ "spam_tag_score -1.5\n", 1, -1, "", ACT_TAG,
		    SPAM_RULE_TAG, 1, "", "score=-1.00 required=-1.50" },
		{ "", 0, 0, "", ACT_DELIVER, SPAM_RULE_UNAVAILABLE_ACCEPT,
		    1, "", "X-Spam-Status: Unknown, engine=rspamd unavailable" },
		{ "spam_unavailable_action tempfail\n", 0, 0, "",
		    ACT_TEMPFAIL, SPAM_RULE_UNAVAILABLE_TEMPFAIL, 0,
		    "451 4.7.1 Message deferred: spam check unavailable", "" },
	};
	struct spam_decision	d;
	struct spam_result	r;
	struct conf		c;
	char			path[] = "/tmp/spork-unit-spam.XXXXXX", err[512];
	size_t			i;
	FILE			*fp;
	int			fd;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if ((fd = mkstemp(path)) == -1 ||
		    (fp = fdopen(fd, "w")) == NULL) {
			CHECK(0, "policy %zu: temporary file", i);
			return;
		}
		fputs(t[i].conf, fp);
		fclose(fp);
		CHECK(conf_load(&c, path, err, sizeof(err)) == 0,
		    "policy %zu: %s", i, err);
		unlink(path);
		strcpy(path, "/tmp/spork-unit-spam.XXXXXX");
		memset(&r, 0, sizeof(r));
		r.ok = t[i].ok;
		r.score = t[i].score;
		r.required = 15;
		snprintf(r.symbols, sizeof(r.symbols), "A,B");
		snprintf(r.message, sizeof(r.message), "%s", t[i].message);
		snprintf(r.engine, sizeof(r.engine), "rspamd [::1]:11333");
		spam_policy_decide(&c, &r, &d);
		CHECK(d.action == t[i].action && d.rule == t[i].rule &&
		    d.deliver == t[i].deliver, "policy %zu: action %s rule %s "
		    "deliver %d", i, action_name(d.action),
		    spam_rule_name(d.rule), d.deliver);
		CHECK(strncmp(d.reply, t[i].reply, strlen(t[i].reply)) == 0,
		    "policy %zu: reply [%s]", i, d.reply);
		CHECK(strstr(d.header, t[i].header) != NULL,
		    "policy %zu: header [%s]", i, d.header);
		CHECK(d.deliver || d.header[0] == '\0',
		    "policy %zu: no header when not delivered", i);
	}
	spam_policy_skipped(3000000, 2097152, &d);
	CHECK(d.deliver && d.rule == SPAM_RULE_SKIPPED &&
	    strstr(d.header, "Unknown, not checked") != NULL, "skipped");
}

static void
test_score_conf(void)
{
	static const struct {
		const char	*v;
		int		 ok;
		double		 want;
	} t[] = {
		{ "5", 1, 5 }, { "7.5", 1, 7.5 }, { "-2", 1, -2 },
		{ "0", 1, 0 }, { "off", 1, INFINITY }, { "999999.9", 1,
		999999.9 }, { "1000000", 0, 0 }, { "", 0, 0 }, { "-", 0, 0 },
		{ "5.", 0, 0 }, { ".5", 0, 0 }, { "1e3", 0, 0 },
		{ "inf", 0, 0 }, { "nan", 0, 0 }, { "0x10", 0, 0 },
		{ "5 6", 0, 0 }, { "+5", 0, 0 }, { "Off", 0, 0 },
	};
	struct conf	c;
	char		err[512];
	size_t		i;
	int		rc;

	conf_defaults(&c);
	CHECK(c.spam_engine == SPAM_ENGINE_NONE && c.spam_tag_score == 5 &&
	    c.spam_reject_score == 15 && isinf(c.spam_quarantine_score) &&
	    c.spam_unavailable_tempfail == 0 && c.spam_timeout == 15000,
	    "spam defaults");
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		rc = conf_set(&c, "spam_tag_score", t[i].v, err, sizeof(err));
		CHECK((rc == 0) == t[i].ok, "score '%s': rc %d %s", t[i].v, rc,
		    rc ? err : "");
		if (rc == 0 && t[i].ok)
			CHECK(c.spam_tag_score == t[i].want, "score '%s': %f",
			    t[i].v, c.spam_tag_score);
	}
	CHECK(conf_set(&c, "spam_unavailable_action", "bounce", err,
	    sizeof(err)) == -1 && strstr(err, "accept or tempfail") != NULL,
	    "unavailable action: %s", err);
}

void
test_spam(void)
{
	test_rspamd();
	test_spamd();
	test_heads();
	test_policy();
	test_score_conf();
}
