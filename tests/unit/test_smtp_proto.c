/* SPDX-License-Identifier: MIT */
/* Command lines, verbs, replies and the EHLO filter. */
#include <string.h>

#include "buf.h"
#include "smtp_proto.h"
#include "unit.h"

static void
test_lines(void)
{
	static const struct {
		const char	*in;
		size_t		 max;
		enum smtp_line	 want;
		size_t		 linelen;
		size_t		 consumed;
	} t[] = {
		{ "EHLO x\r\n", 512, LINE_OK, 6, 8 },
		{ "EHLO x\r\nQUIT\r\n", 512, LINE_OK, 6, 8 },
		{ "EHLO x", 512, LINE_PARTIAL, 0, 6 },
		{ "EHLO x\r", 512, LINE_PARTIAL, 0, 7 },
		{ "EHLO x\n", 512, LINE_BARE_LF, 6, 7 },
		{ "\n", 512, LINE_BARE_LF, 0, 1 },
		{ "\r\n", 512, LINE_OK, 0, 2 },
		{ "EH\rLO\r\n", 512, LINE_BARE_CR, 5, 7 },
		{ "MAIL FROM:<a>\r\r\n", 512, LINE_BARE_CR, 14, 16 },
		{ "0123456789", 8, LINE_TOO_LONG, 0, 8 },
		{ "0123456\r\n", 8, LINE_TOO_LONG, 0, 8 },
		{ "012345\r\n", 8, LINE_OK, 6, 8 },
	};
	size_t	i, ll, used;
	enum smtp_line r;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		r = smtp_line_scan(t[i].in, strlen(t[i].in), t[i].max, &ll,
		    &used);
		CHECK(r == t[i].want, "line %zu: got %d want %d", i, r,
		    t[i].want);
		if (r != LINE_PARTIAL && r != LINE_TOO_LONG)
			CHECK(ll == t[i].linelen, "line %zu: len %zu", i, ll);
		CHECK(used == t[i].consumed, "line %zu: consumed %zu", i, used);
	}
	/* A NUL inside a line. */
	r = smtp_line_scan("NO\0OP\r\n", 7, 512, &ll, &used);
	CHECK(r == LINE_NUL, "nul: got %d", r);
	/* Found by fuzzing: a bare-LF line must not hide a NUL or a bare CR
	 * (normalize mode would forward it). */
	r = smtp_line_scan("NO\0OP\n", 6, 512, &ll, &used);
	CHECK(r == LINE_NUL, "nul in bare-LF line: got %d", r);
	r = smtp_line_scan("NO\rOP\n", 6, 512, &ll, &used);
	CHECK(r == LINE_BARE_CR, "bare CR in bare-LF line: got %d", r);
}

static void
test_verbs(void)
{
	static const struct {
		const char	*in;
		enum smtp_verb	 verb;
		const char	*args;
	} t[] = {
		{ "EHLO client.example", VERB_EHLO, "client.example" },
		{ "ehlo client.example", VERB_EHLO, "client.example" },
		{ "MAIL FROM:<a@b> SIZE=10", VERB_MAIL, "FROM:<a@b> SIZE=10" },
		{ "DATA", VERB_DATA, "" },
		{ "data", VERB_DATA, "" },
		{ "DATAX", VERB_OTHER, "" },
		{ "DATA x", VERB_DATA, "x" },
		{ "BDAT 10 LAST", VERB_BDAT, "10 LAST" },
		{ "STARTTLS", VERB_STARTTLS, "" },
		{ "QUIT", VERB_QUIT, "" },
		{ "XCLIENT ADDR=1.2.3.4", VERB_REFUSED, "ADDR=1.2.3.4" },
		{ "burl imap://x LAST", VERB_REFUSED, "imap://x LAST" },
		{ "ATRN example.test", VERB_REFUSED, "example.test" },
		{ "XFORWARD NAME=x", VERB_OTHER, "NAME=x" },
		{ "ETRN example.test", VERB_OTHER, "example.test" },
		{ "", VERB_OTHER, "" },
		{ "AUTH PLAIN", VERB_AUTH, "PLAIN" },
		{ "DATA\tx", VERB_DATA, "x" },		/* found by fuzzing */
		{ "BDAT\t10", VERB_BDAT, "10" },
		{ " BDAT 92 LAST", VERB_BDAT, "92 LAST" },	/* fuzzing */
		{ "BDAT\v92 LAST", VERB_BDAT, "92 LAST" },
		{ "\tSTARTTLS", VERB_STARTTLS, "" },
		{ "\fDATA", VERB_DATA, "" },
	};
	struct smtp_cmd	c;
	size_t		i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		smtp_cmd_parse(t[i].in, strlen(t[i].in), &c);
		CHECK(c.verb == t[i].verb, "verb %zu (%s): %d", i, t[i].in,
		    c.verb);
		if (t[i].verb != VERB_OTHER || t[i].args[0])
			CHECK(c.argslen == strlen(t[i].args) &&
			    memcmp(c.args, t[i].args, c.argslen) == 0,
			    "args %zu (%s)", i, t[i].in);
	}
}

static void
test_replies(void)
{
	static const struct {
		const char	*in;
		int		 rc;
		int		 code;
		size_t		 consumed;
	} t[] = {
		{ "250 ok\r\n", 1, 250, 8 },
		{ "250\r\n", 1, 250, 5 },
		{ "250 ok\n", 1, 250, 7 },
		{ "250-a\r\n250-b\r\n250 c\r\n", 1, 250, 21 },
		{ "250-a\r\n250-b\r\n", 0, 0, 0 },
		{ "250-a\r\n251 c\r\n", -1, 0, 0 },
		{ "25 ok\r\n", -1, 0, 0 },
		{ "2500 ok\r\n", -1, 0, 0 },
		{ "abc ok\r\n", -1, 0, 0 },
		{ "150 ok\r\n", -1, 0, 0 },
		{ "650 ok\r\n", -1, 0, 0 },
		{ "\r\n", -1, 0, 0 },
		{ "\n", -1, 0, 0 },
		{ "25\r\n", -1, 0, 0 },
		{ "354 go ahead\r\nextra", 1, 354, 14 },
		{ "421 4.4.2 bye\r\n", 1, 421, 15 },
		{ "250 a\rb\r\n", -1, 0, 0 },	/* bare CR: found by fuzzing */
	};
	const char	*why;
	size_t		 i, used;
	int		 rc, code;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		used = 0;
		code = 0;
		rc = smtp_reply_scan(t[i].in, strlen(t[i].in), 512, 10, &used,
		    &code, &why);
		CHECK(rc == t[i].rc, "reply %zu: rc %d want %d", i, rc,
		    t[i].rc);
		if (rc == 1)
			CHECK(code == t[i].code && used == t[i].consumed,
			    "reply %zu: code %d used %zu", i, code, used);
	}
	/* Limits: reply line length and line count. */
	rc = smtp_reply_scan("250 0123456789\r\n", 16, 10, 10, &used, &code,
	    &why);
	CHECK(rc == -1, "long reply line accepted");
	rc = smtp_reply_scan("250-a\r\n250-a\r\n250 a\r\n", 21, 512, 2, &used,
	    &code, &why);
	CHECK(rc == -1, "too many reply lines accepted");
}

static void
ehlo_case(const char *in, size_t limit, const char *want, int hidden,
    int starttls)
{
	struct buf		out;
	struct smtp_ehlo	e;
	const char		*why;
	size_t			 used;
	int			 code;

	buf_init(&out, 65536);
	CHECK(smtp_reply_scan(in, strlen(in), 512, 100, &used, &code, &why)
	    == 1, "ehlo input not a reply: %s", in);
	CHECK(smtp_ehlo_filter(&out, in, used, limit, &e) == 0, "filter");
	CHECK(buf_used(&out) == strlen(want) &&
	    memcmp(buf_head(&out), want, strlen(want)) == 0,
	    "ehlo got [%.*s] want [%s]", (int)buf_used(&out), buf_head(&out),
	    want);
	CHECK(e.hidden == hidden, "hidden %d want %d", e.hidden, hidden);
	CHECK(e.starttls == starttls, "starttls %d", e.starttls);
	buf_free(&out);
}

static void
test_ehlo(void)
{
	/* Postfix's usual reply: CHUNKING hidden, SIZE capped. */
	ehlo_case("250-mx.example\r\n250-PIPELINING\r\n250-SIZE 204800000\r\n"
	    "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	    "250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n", 104857600,
	    "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n"
	    "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	    "250-DSN\r\n250 SMTPUTF8\r\n", 1, 1);
	/* A smaller server limit is kept; BINARYMIME in the middle goes. */
	ehlo_case("250-mx\r\n250-SIZE 1000\r\n250-BINARYMIME\r\n250 DSN\r\n",
	    5000, "250-mx\r\n250-SIZE 1000\r\n250 DSN\r\n", 1, 0);
	/* SIZE without a number (no limit) gets ours. */
	ehlo_case("250-mx\r\n250 SIZE\r\n", 5000,
	    "250-mx\r\n250 SIZE 5000\r\n", 0, 0);
	/* Lookalikes are unknown keywords: hidden too. */
	ehlo_case("250-mx\r\n250 CHUNKINGX\r\n", 5000, "250 mx\r\n", 1, 0);
	/* Single-line reply, lower case keyword, bare-LF server. */
	ehlo_case("250 mx\n", 5000, "250 mx\r\n", 0, 0);
	ehlo_case("250-mx\r\n250 chunking\r\n", 5000, "250 mx\r\n", 1, 0);
	/* Found by fuzzing: blanks before a keyword, a tab after it, SIZE
	 * read past its own line. */
	ehlo_case("250-mx\r\n250- CHUNKING\r\n250 DSN\r\n", 5000,
	    "250-mx\r\n250 DSN\r\n", 1, 0);
	ehlo_case("250-mx\r\n250-BINARYMIME\tx\r\n250 DSN\r\n", 5000,
	    "250-mx\r\n250 DSN\r\n", 1, 0);
	ehlo_case("250-mx\r\n250-SIZE\r\n250 7\r\n", 5000,
	    "250-mx\r\n250 SIZE 5000\r\n", 1, 0);
	ehlo_case("250-mx\r\n250 SIZE\t9999999\r\n", 5000,
	    "250-mx\r\n250 SIZE 5000\r\n", 0, 0);
	ehlo_case("250-mx\r\n250-CHUNKING\f\r\n250 DSN\r\n", 5000,
	    "250-mx\r\n250 DSN\r\n", 1, 0);
	ehlo_case("250-mx\r\n250 SIZE=1000\r\n", 5000,
	    "250-mx\r\n250 SIZE 1000\r\n", 0, 0);
	/* Debian's Exim 4.96: PRDR and PIPECONNECT hidden, CHUNKING too. */
	ehlo_case("250-mx.example Hello c [10.0.0.1]\r\n250-SIZE 52428800\r\n"
	    "250-8BITMIME\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n"
	    "250-CHUNKING\r\n250-STARTTLS\r\n250-PRDR\r\n250 HELP\r\n",
	    104857600, "250-mx.example Hello c [10.0.0.1]\r\n"
	    "250-SIZE 52428800\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
	    "250-STARTTLS\r\n250 HELP\r\n", 3, 1);
	/* Unknown keywords are hidden, X- ones and lookalikes included;
	 * AUTH in both forms, DSN, SMTPUTF8, REQUIRETLS, LIMITS pass. */
	ehlo_case("250-mx\r\n250-X-EXPS GSSAPI\r\n250-XEXCH50\r\n"
	    "250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n250-CHUNKINGX\r\n"
	    "250-LIMITS RCPTMAX=100\r\n250-REQUIRETLS\r\n250-BURL imap\r\n"
	    "250-XCLIENT ADDR NAME\r\n250-XFORWARD NAME ADDR\r\n"
	    "250 PRDRX\r\n", 5000,
	    "250-mx\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n"
	    "250-LIMITS RCPTMAX=100\r\n250-REQUIRETLS\r\n"
	    "250 XFORWARD NAME ADDR\r\n", 6, 0);
}

/* The table's word on each keyword the README's table names. */
static void
test_ehlo_table(void)
{
	static const struct {
		const char	*kw;
		enum smtp_ext	 act;
	} t[] = {
		{ "PIPELINING", EXT_PASS }, { "SIZE", EXT_SIZE },
		{ "STARTTLS", EXT_STARTTLS }, { "PRDR", EXT_HIDE },
		{ "PIPECONNECT", EXT_HIDE }, { "BURL", EXT_HIDE },
		{ "CHUNKING", EXT_HIDE }, { "BINARYMIME", EXT_HIDE },
		{ "SMTPUTF8", EXT_PASS }, { "DSN", EXT_PASS },
		{ "REQUIRETLS", EXT_PASS }, { "MT-PRIORITY", EXT_PASS },
		{ "LIMITS", EXT_PASS }, { "DELIVERBY", EXT_PASS },
		{ "FUTURERELEASE", EXT_PASS }, { "XCLIENT", EXT_HIDE },
		{ "XFORWARD", EXT_PASS }, { "ETRN", EXT_PASS },
		{ "ATRN", EXT_HIDE }, { "AUTH", EXT_PASS },
		{ "X-ANYTHING", EXT_HIDE }, { "NEWTHING", EXT_HIDE },
	};
	size_t	i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK(smtp_ehlo_keyword(t[i].kw) == t[i].act, "keyword %s: %d",
		    t[i].kw, smtp_ehlo_keyword(t[i].kw));
}

static void
test_mail_params(void)
{
	static const struct {
		const char	*in;
		const char	*refused;
	} t[] = {
		{ "FROM:<a@b> PRDR", "PRDR" },
		{ "FROM:<a@b> SIZE=10 prdr", "PRDR" },
		{ "FROM:<a@b>\tPRDR", "PRDR" },
		{ "FROM:<a@b> BODY=BINARYMIME", "BODY=BINARYMIME" },
		{ "FROM:<a@b> BODY=8BITMIME SMTPUTF8", NULL },
		{ "FROM:<a@b> PRDRX=1", NULL },
		{ "FROM:<\"x> PRDR\"@b> SIZE=1", NULL },	/* inside the path */
		{ "FROM:<> RET=HDRS ENVID=x MT-PRIORITY=3", NULL },
		{ "FROM: <a@b> PRDR=", "PRDR" },
		{ "FROM:a@b PRDR", "PRDR" },
		{ "FROM:<a@b", NULL },
		{ "", NULL },
	};
	const char	*r;
	size_t		 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		r = smtp_mail_param_refused(t[i].in, strlen(t[i].in));
		CHECK((r == NULL && t[i].refused == NULL) || (r != NULL &&
		    t[i].refused != NULL && strcmp(r, t[i].refused) == 0),
		    "mail params %zu (%s): %s", i, t[i].in, r ? r : "none");
	}
}

void
test_smtp_proto(void)
{
	test_lines();
	test_verbs();
	test_replies();
	test_ehlo();
	test_ehlo_table();
	test_mail_params();
}
