/* SPDX-License-Identifier: MIT */
/*
 * The content policy: the detectors on tables of numbers, the rules
 * parser on good and bad lines, and the rewriter on a golden corpus: each
 * case runs tests/data/content/IN.in through a set of rules; what would be
 * delivered (the headers to prepend, then the rewritten message or the
 * original) is compared byte for byte with CASE.ref (SPORK_UPDATE_GOLDEN=1
 * writes them). Also checked: the decision, which parts changed, the DKIM
 * verdict, strict CRLF, and input bytes that must survive or go.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "content.h"
#include "dlp.h"
#include "mime_clean.h"
#include "sock.h"
#include "unit.h"

#define CONTENT_DIR	"tests/data/content"
#define CONTENT_MAX	(1 << 20)

static const struct {
	enum dlp_kind	 kind;
	const char	*text;
	unsigned	 found;
} dlp_cases[] = {
	{ DLP_CARD, "4111 1111 1111 1111", 1 },
	{ DLP_CARD, "4111-1111-1111-1111", 1 },
	{ DLP_CARD, "pay 4111111111111111.", 1 },
	{ DLP_CARD, "4111 1111 1111 1112", 0 },		/* Luhn */
	{ DLP_CARD, "41111111111111111111", 0 },	/* 20 digits */
	{ DLP_CARD, "x4111111111111111", 0 },		/* not a word */
	{ DLP_CARD, "4111111111111111x", 0 },
	{ DLP_CARD, "4111  1111 1111 1111", 0 },	/* double space */
	{ DLP_CARD, "378282246310005", 1 },		/* Amex */
	{ DLP_CARD, "5555555555554444 and 4012888888881881", 2 },
	{ DLP_CARD, "0000000000000000", 0 },
	{ DLP_CARD, "1234567812345670", 0 },		/* Luhn, no issuer */
	{ DLP_CARD, "", 0 },
	{ DLP_IBAN, "DE89 3704 0044 0532 0130 00", 1 },
	{ DLP_IBAN, "DE89370400440532013000", 1 },
	{ DLP_IBAN, "DE88370400440532013000", 0 },	/* mod 97 */
	{ DLP_IBAN, "DE8937040044053201300", 0 },	/* length */
	{ DLP_IBAN, "GB82WEST12345698765432", 1 },
	{ DLP_IBAN, "GB82 WEST 1234 5698 7654 32", 1 },
	{ DLP_IBAN, "XX89370400440532013000", 0 },	/* no such country */
	{ DLP_IBAN, "NL91ABNA0417164300", 1 },
	{ DLP_SSN, "123-45-6789", 1 },
	{ DLP_SSN, "000-45-6789", 0 },
	{ DLP_SSN, "666-45-6789", 0 },
	{ DLP_SSN, "900-45-6789", 0 },
	{ DLP_SSN, "123-00-6789", 0 },
	{ DLP_SSN, "123-45-0000", 0 },
	{ DLP_SSN, "078-05-1120", 0 },
	{ DLP_SSN, "123456789", 0 },
	{ DLP_SSN, "1-123-45-6789", 0 },
	{ DLP_SSN, "123-45-67890", 0 },
};

static const struct {
	const char	*line;
	int		 ok;
} rule_cases[] = {
	{ "rule a all action=tag", 1 },
	{ "  # a comment", 1 },
	{ "", 1 },
	{ "rule b dir=outbound dlp=card action=redact", 1 },
	{ "rule c ext=EXE,scr action=strip header=\"X-A: b\"", 1 },
	{ "rule d regex=\"(?i)a\\\"b\" action=reject reply=\"550 5.7.1 no\"", 1 },
	{ "rule e size=10m action=quarantine", 1 },
	{ "rule f all action=footer footer=\"-- \\nAcme\"", 1 },
	{ "rule g magic=application/x-dosexec action=reject", 1 },
	{ "rule", 0 },
	{ "rule h", 0 },			/* no match */
	{ "rule i all", 0 },			/* no action */
	{ "rule j all action=redact", 0 },
	{ "rule k dlp=card action=strip", 0 },
	{ "rule l dlp=visa action=tag", 0 },
	{ "rule m regex=\"(\" action=tag", 0 },
	{ "rule n all action=footer", 0 },	/* footer= missing */
	{ "rule o all action=tag reply=\"250 ok\"", 0 },
	{ "rule p all ext=exe action=tag", 0 },	/* two matches */
	{ "rule q all action=tag header=\"no colon\"", 0 },
	{ "rule r all action=tag dir=sideways", 0 },
	{ "rule s size=ten action=tag", 0 },
	{ "rule t all action=tag reply=\"550 unterminated", 0 },
	{ "rule a all action=tag", 0 },		/* defined twice */
	{ "rule bad/name all action=tag", 0 },
	{ "match x", 0 },
};

static const struct {
	const char		*name;	/* NAME.ref */
	const char		*in;	/* IN.in */
	const char		*rules;
	int			 outbound;
	enum action	 action;
	int			 rewritten;
	int			 body;
	enum content_dkim	 dkim;
	unsigned		 count0;	/* rule 0's count */
	const char		*kept[3];
	const char		*gone[2];
} cases[] = {
	{ "card-redact", "card",
	    "rule card dir=outbound dlp=card action=redact\n", 1, ACT_REDACT,
	    1, 1, CDKIM_NONE, 2,
	    { "\r\n\r\nq,revenue\r\n1,100\r\n2,120\r\n--b1--\r\n",
	      "Not a card: 4111 1111 1111 1112, nor order 1234567890123.",
	      "X-Spork-Content: card=redact\r\n" },
	    { "4111 1111 1111 1111", NULL } },
	{ "card-inbound", "card",
	    "rule card dir=outbound dlp=card action=redact\n", 0, ACT_NONE,
	    0, 0, CDKIM_NONE, 0, { NULL }, { NULL } },
	{ "exe-strip", "exe-renamed",
	    "rule ext ext=exe action=reject\n"
	    "rule exe magic=application/x-dosexec action=strip\n", 1,
	    ACT_STRIP, 1, 1, CDKIM_NONE, 0,
	    { "JVBERi0xLjQKJeLjz9MKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8",
	      "The report is attached.\r\n", "X-Spork-Removed: exe\r\n" },
	    { "TVqQAAMAAAAEAAAA", NULL } },
	{ "exe-reject", "exe-renamed",
	    "rule ext ext=exe action=reject\n"
	    "rule magic magic=application/x-dosexec,application/x-msdownload "
	    "action=reject reply=\"550 5.7.1 No executables\"\n", 1,
	    ACT_REJECT, 0, 0, CDKIM_NONE, 0, { NULL }, { NULL } },
	{ "zip-reject", "zip-exe", "rule exe ext=exe,scr action=reject\n", 0,
	    ACT_REJECT, 0, 0, CDKIM_NONE, 2, { NULL }, { NULL } },
	{ "zip-strip", "zip-exe", "rule scr ext=scr action=strip\n", 0,
	    ACT_STRIP, 1, 1, CDKIM_NONE, 1, { "Unpack and run.\r\n",
	    "\"setup.zip\" (application/zip) was removed" }, { "UEsDB",
	    NULL } },
	{ "footer", "footer",
	    "rule foot dir=outbound all action=footer "
	    "footer=\"Caf\xc3\xa9 Corp\\nConfidential\"\n", 1, ACT_FOOTER, 1, 1,
	    CDKIM_NONE, 2, { "Caf=E9 at noon?\r\n\r\nCaf=E9 Corp\r\n"
	    "Confidential\r\n", "Subject: lunch\r\n" }, { NULL } },
	{ "tag-header", "dkim-subject",
	    "rule t all action=tag header=\"X-Policy: checked\"\n", 1,
	    ACT_TAG, 0, 0, CDKIM_KEPT, 1, { "X-Policy: checked\r\n" },
	    { NULL } },
	{ "tag-subject", "dkim-subject",
	    "rule spam regex=\"(?i)cheap watches\" action=tag "
	    "subject_tag=[SPAM] set_header=\"X-Old: replaced\"\n", 0, ACT_TAG,
	    1, 0, CDKIM_BROKEN, 1,
	    { "Subject: [SPAM] =?utf-8?q?caf=C3=A9?= offer\r\n",
	      "\r\n\r\nCheap watches.\r\n", "X-Old: replaced\r\n" },
	    { "X-Old: replace me", NULL } },
	{ "dlp-mix", "dlp-mix",
	    "rule iban dlp=iban action=redact\n"
	    "rule ssn dlp=ssn action=redact\n"
	    "rule bird regex=\"(?i)project\\s+bluebird\" action=tag\n", 1,
	    ACT_REDACT, 1, 1, CDKIM_NONE, 2,
	    { "DE88 3704 0044 0532 0130 00",
	      "666-12-3456, 078-05-1120, 123-45-67890",
	      "X-Spork-Content: iban=redact; ssn=redact; bird=tag\r\n" },
	    { "DE89 3704", "SSN 123-45-6789;" } },
	{ "dlp-quarantine", "dlp-mix",
	    "rule iban dlp=iban action=redact\n"
	    "rule bird regex=(?i)bluebird action=quarantine\n", 1,
	    ACT_QUARANTINE, 0, 0, CDKIM_NONE, 2, { NULL }, { NULL } },
	{ "utf16", "utf16", "rule card dlp=card action=redact\n", 0,
	    ACT_REDACT, 1, 1, CDKIM_NONE, 1, { "charset=utf-8" },
	    { NULL } },
};

static void
content_dlp(void)
{
	char	buf[128];
	size_t	i;

	for (i = 0; i < sizeof(dlp_cases) / sizeof(dlp_cases[0]); i++)
		CHECK(dlp_find(dlp_cases[i].kind, dlp_cases[i].text,
		    strlen(dlp_cases[i].text), NULL, NULL) ==
		    dlp_cases[i].found, "%s \"%s\"",
		    dlp_kind_name(dlp_cases[i].kind), dlp_cases[i].text);
	snprintf(buf, sizeof(buf), "GB82 WEST 1234 5698 7654 32");
	dlp_redact(DLP_IBAN, buf, strlen(buf));
	CHECK(strcmp(buf, "GBXX XXXX XXXX XXXX XXXX XX") == 0, "%s", buf);
	snprintf(buf, sizeof(buf), "4111-1111-1111-1111");
	dlp_redact(DLP_CARD, buf, strlen(buf));
	CHECK(strcmp(buf, "XXXX-XXXX-XXXX-XXXX") == 0, "%s", buf);
}

static void
content_parse(void)
{
	struct content_rules	*rs;
	struct content_net	 n;
	struct sockaddr_storage	 ss;
	char			 line[1024], err[512];
	size_t			 i;
	int			 rc;

	rs = calloc(1, sizeof(*rs));
	for (i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
		snprintf(line, sizeof(line), "%s\n", rule_cases[i].line);
		err[0] = '\0';
		rc = content_rules_parse_line(rs, line, err, sizeof(err));
		CHECK((rc >= 0) == rule_cases[i].ok, "\"%s\": rc %d %s",
		    rule_cases[i].line, rc, err);
		CHECK(rc >= 0 || err[0] != '\0', "\"%s\": no message",
		    rule_cases[i].line);
	}
	CHECK(strcmp(rs->r[2].pattern, "exe,scr") == 0, "%s",
	    rs->r[2].pattern);
	CHECK(strcmp(rs->r[3].pattern, "(?i)a\"b") == 0, "%s",
	    rs->r[3].pattern);
	CHECK(rs->r[4].size == 10 << 20, "%zu", rs->r[4].size);
	content_rules_free(rs);

	/* The documented sample file loads. */
	rs = content_rules_load("etc/content.rules", NULL, 0, err,
	    sizeof(err));
	CHECK(rs != NULL && rs->n == 6, "etc/content.rules: %s", rs ? "count"
	    : err);
	content_rules_free(rs);

	/* Direction: inside networks, v4, v6 and v4-mapped clients. */
	rs = calloc(1, sizeof(*rs));
	CHECK(content_net_parse("10.25.0.0/24", &rs->nets[0]) == 0, "net");
	CHECK(content_net_parse("fd25::/64", &rs->nets[1]) == 0, "net6");
	rs->nnets = 2;
	CHECK(content_net_parse("10.0.0.0/33", &n) == -1, "/33");
	CHECK(content_net_parse("10.0.0/8", &n) == -1, "short");
	CHECK(content_net_parse("10.0.0.0/", &n) == -1, "empty bits");
	CHECK(sock_parse_addr("10.25.0.1:25", &ss) == 0, "addr");
	CHECK(content_outbound(rs, &ss) == 1, "10.25.0.1 inside");
	CHECK(sock_parse_addr("10.25.1.1:25", &ss) == 0, "addr");
	CHECK(content_outbound(rs, &ss) == 0, "10.25.1.1 outside");
	CHECK(sock_parse_addr("[fd25::1]:25", &ss) == 0, "addr6");
	CHECK(content_outbound(rs, &ss) == 1, "fd25::1 inside");
	CHECK(sock_parse_addr("[::ffff:10.25.0.9]:25", &ss) == 0, "mapped");
	CHECK(content_outbound(rs, &ss) == 1, "mapped inside");
	CHECK(sock_parse_addr("[fd26::1]:25", &ss) == 0, "addr6");
	CHECK(content_outbound(rs, &ss) == 0, "fd26::1 outside");
	content_rules_free(rs);
}

static struct content_rules *
rules_of(const char *const *lines)
{
	struct content_rules	*rs = calloc(1, sizeof(*rs));
	char			 line[256], err[256];

	rs->refs = 1;
	for (; *lines != NULL; lines++) {
		snprintf(line, sizeof(line), "%s", *lines);
		CHECK(content_rules_parse_line(rs, line, err, sizeof(err)) == 1,
		    "%s: %s", *lines, err);
	}
	return rs;
}

/*
 * A reload: counters carried over by rule name, and a message judged by
 * the old rules after the swap counted on the new rule of that name.
 */
static void
content_reload(void)
{
	static const char *const la[] = { "rule keep ext=exe action=reject",
	    "rule gone all action=tag", NULL };
	static const char *const lb[] = { "rule new ext=bat action=reject",
	    "rule keep ext=exe,scr action=reject", NULL };
	struct content_rules	*a = rules_of(la), *b = rules_of(lb);
	struct content_result	 res;

	memset(&res, 0, sizeof(res));
	res.checked = 1;
	res.action = ACT_REJECT;
	res.rule = 0;
	res.hits = 3;
	res.count[0] = res.count[1] = 1;
	res.rules = a;
	content_set_active(a);
	CHECK(a->refs == 2, "active holds a reference: %u", a->refs);
	content_account("test", &res, 10, 10);
	CHECK(a->r[0].hits == 1 && a->r[1].hits == 1, "counted on a");

	content_set_active(b);
	CHECK(content_active() == b && a->refs == 1 && b->refs == 2,
	    "swap: refs a=%u b=%u", a->refs, b->refs);
	CHECK(b->checked == 1, "totals carried: %llu",
	    (unsigned long long)b->checked);
	CHECK(b->r[1].hits == 1 && b->r[0].hits == 0, "keep carried, new "
	    "from zero: %llu %llu", (unsigned long long)b->r[1].hits,
	    (unsigned long long)b->r[0].hits);
	CHECK(content_rules_find(b, "gone") == -1, "gone is gone");

	content_account("test", &res, 10, 10);	/* judged by a, in flight */
	CHECK(b->r[1].hits == 2 && b->r[1].matches == 2, "old result counted "
	    "on keep by name: %llu", (unsigned long long)b->r[1].hits);
	CHECK(b->r[0].hits == 0 && b->checked == 2, "not on another rule");
	CHECK(a->r[0].hits == 1, "the old set is no longer counted on");

	content_set_active(NULL);
	CHECK(b->refs == 1, "unset drops the reference: %u", b->refs);
	content_rules_free(a);
	content_rules_free(b);
}

static void
content_case(size_t k)
{
	struct content_rules	*rs;
	struct content_result	 res;
	char			 path[512], err[512], line[1024], *in, *out, *ref;
	char			*p, *nl;
	size_t			 inlen, reflen, hl, j;
	uint64_t		 outsize = 0;
	ssize_t			 n = 0;
	int			 ifd, ofd, rc;
	FILE			*fp;

	rs = calloc(1, sizeof(*rs));
	for (p = (char *)cases[k].rules; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		CHECK(content_rules_parse_line(rs, line, err, sizeof(err)) >= 0,
		    "%s: %s", cases[k].name, err);
	}
	snprintf(path, sizeof(path), "%s/%s.in", CONTENT_DIR, cases[k].in);
	in = unit_slurp(path, CONTENT_MAX, &inlen);
	CHECK(in != NULL, "%s: %s", path, strerror(errno));
	if (in == NULL) {
		content_rules_free(rs);
		return;
	}
	ifd = memfd_create("in", 0);
	ofd = memfd_create("out", 0);
	CHECK(write(ifd, in, inlen) == (ssize_t)inlen, "%s", path);
	err[0] = '\0';
	rc = content_scan(rs, ifd, inlen, cases[k].outbound, ofd, &res,
	    &outsize, err, sizeof(err));
	CHECK(rc == 0, "%s: %s", cases[k].name, err);
	CHECK(res.action == cases[k].action, "%s: action %s", cases[k].name,
	    action_name(res.action));
	CHECK(res.rewritten == cases[k].rewritten, "%s: rewritten %d",
	    cases[k].name, res.rewritten);
	CHECK(res.body_changed == cases[k].body, "%s: body %d",
	    cases[k].name, res.body_changed);
	CHECK(res.dkim == cases[k].dkim, "%s: dkim %d", cases[k].name,
	    res.dkim);
	CHECK(res.count[0] == cases[k].count0, "%s: count %u", cases[k].name,
	    res.count[0]);
	if (res.action == ACT_NONE || res.action >= ACT_QUARANTINE) {
		CHECK(outsize == 0 && lseek(ofd, 0, SEEK_END) == 0,
		    "%s: output written", cases[k].name);
		goto done;
	}
	/* What the relay would deliver: the headers, then the message. */
	hl = strlen(res.headers);
	out = malloc(CONTENT_MAX + hl);
	memcpy(out, res.headers, hl);
	if (res.rewritten) {
		n = pread(ofd, out + hl, CONTENT_MAX, 0);
		CHECK(n == (ssize_t)outsize, "%s: size %zd vs %llu",
		    cases[k].name, n, (unsigned long long)outsize);
	} else {
		memcpy(out + hl, in, inlen);
		n = (ssize_t)inlen;
	}
	n = n < 0 ? 0 : n + (ssize_t)hl;
	CHECK(unit_crlf_only(out, (size_t)n), "%s: bare CR or LF",
	    cases[k].name);
	for (j = 0; j < 3 && cases[k].kept[j] != NULL; j++)
		CHECK(memmem(out, (size_t)n, cases[k].kept[j],
		    strlen(cases[k].kept[j])) != NULL, "%s: no \"%.50s\"",
		    cases[k].name, cases[k].kept[j]);
	for (j = 0; j < 2 && cases[k].gone[j] != NULL; j++)
		CHECK(memmem(out, (size_t)n, cases[k].gone[j],
		    strlen(cases[k].gone[j])) == NULL, "%s: still \"%.50s\"",
		    cases[k].name, cases[k].gone[j]);
	/* A body left alone is the input's, byte for byte. */
	if (!res.body_changed) {
		const char *b1 = memmem(in, inlen, "\r\n\r\n", 4);
		const char *b2 = memmem(out, (size_t)n, "\r\n\r\n", 4);

		CHECK(b1 != NULL && b2 != NULL && (size_t)(out + n - b2) ==
		    (size_t)(in + inlen - b1) && memcmp(b1, b2,
		    (size_t)(in + inlen - b1)) == 0, "%s: body changed",
		    cases[k].name);
	}
	snprintf(path, sizeof(path), "%s/%s.ref", CONTENT_DIR, cases[k].name);
	if (getenv("SPORK_UPDATE_GOLDEN") != NULL &&
	    (fp = fopen(path, "wb")) != NULL) {
		fwrite(out, 1, (size_t)n, fp);
		fclose(fp);
	}
	ref = unit_slurp(path, CONTENT_MAX, &reflen);
	CHECK(ref != NULL && reflen == (size_t)n &&
	    memcmp(ref, out, reflen) == 0, "%s: output differs from %s",
	    cases[k].name, path);
	free(ref);
	free(out);
done:
	free(in);
	close(ifd);
	close(ofd);
	content_rules_free(rs);
}

/* Input that is not a sensible message: no crash, a clear answer. */
static void
content_junk(void)
{
	static const char *const junk[] = {
		"",
		"\r\n",
		"Subject: x\r\n",
		"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n",
		"Content-Type: application/zip\r\nContent-Transfer-Encoding: "
		    "base64\r\n\r\nUEsDBBQAAAAIAAAAIQAAAAAAAAAAAAAAAAAFAAAAYS5l\r\n",
		"Content-Type: text/plain; charset=utf-16\r\n\r\n\xff\xfe\x34",
	};
	struct content_rules	*rs;
	struct content_result	 res;
	char			 line[256], err[256];
	uint64_t		 outsize;
	size_t			 i;
	int			 ifd, ofd, rc;

	rs = calloc(1, sizeof(*rs));
	snprintf(line, sizeof(line), "rule a ext=exe action=strip");
	content_rules_parse_line(rs, line, err, sizeof(err));
	snprintf(line, sizeof(line), "rule b dlp=card action=redact");
	content_rules_parse_line(rs, line, err, sizeof(err));
	snprintf(line, sizeof(line), "rule c all action=tag subject_tag=[X]");
	content_rules_parse_line(rs, line, err, sizeof(err));
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		ifd = memfd_create("in", 0);
		ofd = memfd_create("out", 0);
		CHECK(write(ifd, junk[i], strlen(junk[i])) ==
		    (ssize_t)strlen(junk[i]), "write");
		rc = content_scan(rs, ifd, strlen(junk[i]), 1, ofd, &res,
		    &outsize, err, sizeof(err));
		CHECK(rc == 0 || rc == -1, "junk %zu", i);
		close(ifd);
		close(ofd);
	}
	content_rules_free(rs);
}

void
test_content(void)
{
	char	err[512];
	size_t	k;

	content_dlp();
	content_parse();
	content_reload();
	mime_clean_init();
	CHECK(content_scan_init(err, sizeof(err)) == 0, "%s", err);
	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
		content_case(k);
	content_junk();
}
