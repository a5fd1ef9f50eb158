/* SPDX-License-Identifier: MIT */
/*
 * Pre-queue checks: network prefixes, DNS list names (IPv4 and IPv6),
 * greylisting triplet keys, the retry-window decision, the disk store
 * (reload, torn lines, compaction) and the configuration keys.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidr.h"
#include "conf.h"
#include "dns.h"
#include "greylist.h"
#include "unit.h"

static void
addr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) == 1)
		ss->ss_family = AF_INET;
	else if (inet_pton(AF_INET6, s,
	    &((struct sockaddr_in6 *)ss)->sin6_addr) == 1)
		ss->ss_family = AF_INET6;
}

static void
test_cidr(void)
{
	static const struct {
		const char	*net;
		const char	*canon;		/* NULL: invalid */
		const char	*in, *out;
	} t[] = {
		{ "10.0.0.0/8", "10.0.0.0/8", "10.200.1.1", "11.0.0.1" },
		{ "10.25.0.77/24", "10.25.0.0/24", "10.25.0.1", "10.25.1.1" },
		{ "192.0.2.1", "192.0.2.1/32", "192.0.2.1", "192.0.2.2" },
		{ "0.0.0.0/0", "0.0.0.0/0", "203.0.113.9", "2001:db8::1" },
		{ "10.25.0.0/24", "10.25.0.0/24", "::ffff:10.25.0.9",
		    "::ffff:10.26.0.9" },
		{ "fd25::/64", "fd25::/64", "fd25::1", "fd26::1" },
		{ "2001:db8::1/128", "2001:db8::1/128", "2001:db8::1",
		    "10.0.0.1" },
		{ "2001:db8:abcd:12ff::/60", "2001:db8:abcd:12f0::/60",
		    "2001:db8:abcd:12f3::1", "2001:db8:abcd:1300::1" },
		{ "10.0.0.0/33", NULL, NULL, NULL },
		{ "10.0.0.0/", NULL, NULL, NULL },
		{ "10.0.0.0/-1", NULL, NULL, NULL },
		{ "fd25::/129", NULL, NULL, NULL },
		{ "example.org", NULL, NULL, NULL },
		{ "", NULL, NULL, NULL },
	};
	struct sockaddr_storage	ss;
	struct cidr		c;
	char			out[64];
	size_t			i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].canon == NULL) {
			CHECK(cidr_parse(t[i].net, &c) == -1, "cidr %s valid",
			    t[i].net);
			continue;
		}
		CHECK(cidr_parse(t[i].net, &c) == 0, "cidr %s", t[i].net);
		CHECK(cidr_format(&c, out, sizeof(out)) == 0 &&
		    strcmp(out, t[i].canon) == 0, "cidr %s: %s", t[i].net, out);
		addr(t[i].in, &ss);
		CHECK(cidr_match(&c, &ss), "%s in %s", t[i].in, t[i].net);
		addr(t[i].out, &ss);
		CHECK(!cidr_match(&c, &ss), "%s not in %s", t[i].out,
		    t[i].net);
	}
}

static void
test_dns_names(void)
{
	static const struct {
		const char	*addr, *zone, *name;
	} t[] = {
		{ "10.25.0.1", "bl.test", "1.0.25.10.bl.test" },
		{ "192.0.2.99", "zen.example.org", "99.2.0.192.zen.example.org" },
		{ "::ffff:192.0.2.99", "bl.test", "99.2.0.192.bl.test" },
		{ "fd25::1", "bl.test", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
		    "0.0.0.0.0.0.0.0.5.2.d.f.bl.test" },
		{ "2001:db8:1:2:3:4:5:abcd", "x.y",
		    "d.c.b.a.5.0.0.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1."
		    "0.0.2.x.y" },
	};
	struct sockaddr_storage	ss;
	char			out[DNS_NAME_MAX + 1], zone[300];
	size_t			i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		addr(t[i].addr, &ss);
		CHECK(dns_list_name(&ss, t[i].zone, out, sizeof(out)) == 0 &&
		    strcmp(out, t[i].name) == 0, "%s: got %s", t[i].addr, out);
	}
	/* A name longer than DNS allows is refused, not cut. */
	memset(zone, 'a', sizeof(zone) - 1);
	zone[sizeof(zone) - 1] = '\0';
	zone[220] = '\0';
	addr("fd25::1", &ss);
	CHECK(dns_list_name(&ss, zone, out, sizeof(out)) == -1, "long name");
	addr("10.0.0.1", &ss);
	CHECK(dns_list_name(&ss, zone, out, 8) == -1, "short buffer");
}

static void
test_triplets(void)
{
	static const struct {
		const char	*addr, *sender, *rcpt, *key;
	} t[] = {
		{ "10.25.0.1", "<a@Client.Example>", "<Bob@example.test>",
		    "10.25.0.0/24 a@client.example bob@example.test" },
		{ "10.25.0.200", "a@client.example", "bob@example.test",
		    "10.25.0.0/24 a@client.example bob@example.test" },
		{ "10.25.1.1", "<a@client.example> SIZE=10", "<b@x>",
		    "10.25.1.0/24 a@client.example b@x" },
		{ "10.25.0.1", "<>", "<b@x> NOTIFY=NEVER",
		    "10.25.0.0/24 <> b@x" },
		{ "fd25::1:2:3:4", "<a@b>", "<c@d>", "fd25::/64 a@b c@d" },
		{ "fd25:0:0:1::9", "<a@b>", "<c@d>", "fd25:0:0:1::/64 a@b c@d" },
		{ "::ffff:10.25.0.9", "<a@b>", "<c@d>", "10.25.0.0/24 a@b c@d" },
		{ "10.25.0.1", "<a\tb@c>", "<c@d>", "10.25.0.0/24 a?b@c c@d" },
		{ "10.25.0.1", "<a@b>", "<>", NULL },
	};
	struct sockaddr_storage	ss;
	char			key[GREYLIST_KEY_MAX];
	size_t			i;
	int			rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		addr(t[i].addr, &ss);
		rc = greylist_key(&ss, t[i].sender, t[i].rcpt, key, sizeof(key));
		if (t[i].key == NULL)
			CHECK(rc == -1, "triplet %zu refused", i);
		else
			CHECK(rc == 0 && strcmp(key, t[i].key) == 0,
			    "triplet %zu: got [%s]", i, rc == 0 ? key : "");
	}
}

static void
test_decide(void)
{
	static const struct greylist_times gt = { 60, 3600, 86400 };
	static const struct {
		int			exists;
		struct greylist_rec	in;
		int64_t			now;
		enum greylist_verdict	v;
		struct greylist_rec	out;
	} t[] = {
		{ 0, { 0, 0, 0 }, 1000, GL_NEW, { 1000, 1000, 0 } },
		{ 1, { 1000, 1000, 0 }, 1030, GL_EARLY, { 1000, 1030, 0 } },
		{ 1, { 1000, 1030, 0 }, 1060, GL_PASSED, { 1000, 1060, 1 } },
		{ 1, { 1000, 1000, 0 }, 4600, GL_PASSED, { 1000, 4600, 1 } },
		/* retried after greylist_max: starts over */
		{ 1, { 1000, 1000, 0 }, 4601, GL_NEW, { 4601, 4601, 0 } },
		{ 1, { 1000, 1060, 1 }, 50000, GL_KNOWN, { 1000, 50000, 1 } },
		/* not seen for longer than the expiry */
		{ 1, { 1000, 1060, 1 }, 1060 + 86401, GL_NEW,
		    { 1060 + 86401, 1060 + 86401, 0 } },
	};
	struct greylist_rec	r;
	enum greylist_verdict	v;
	char			s[80];
	size_t			i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		r = t[i].in;
		v = greylist_decide(&r, t[i].exists, t[i].now, &gt);
		CHECK(v == t[i].v && r.first == t[i].out.first &&
		    r.last == t[i].out.last && r.passed == t[i].out.passed,
		    "decide %zu: %s %lld %lld %u", i, greylist_verdict_name(v),
		    (long long)r.first, (long long)r.last, r.passed);
		CHECK(greylist_rec_format(&r, s, sizeof(s)) > 0 &&
		    greylist_rec_parse(s, &r) > 0 && r.first == t[i].out.first
		    && r.passed == t[i].out.passed, "round trip %zu", i);
	}
	CHECK(greylist_rec_parse("12 11 0", &r) == -1, "last before first");
	CHECK(greylist_rec_parse("x 1 0", &r) == -1, "not a number");
	CHECK(greylist_rec_parse("1 2", &r) == -1, "short");
	CHECK(greylist_rec_parse("1 2 3x", &r) == -1, "trailing junk");
}

static int
file_lines(const char *path)
{
	FILE	*fp = fopen(path, "r");
	int	 n = 0, ch;

	if (fp == NULL)
		return -1;
	while ((ch = getc(fp)) != EOF)
		n += ch == '\n';
	fclose(fp);
	return n;
}

static void
test_store(void)
{
	static const struct greylist_times gt = { 60, 3600, 86400 };
	char			 dir[] = "/tmp/spork-unit-gl.XXXXXX", path[64],
				 err[256];
	struct greylist_store	*g;
	FILE			*fp;
	int			 i;

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/greylist", dir);
	g = greylist_open(path, &gt, 1000, err, sizeof(err));
	CHECK(g != NULL, "open: %s", err);
	if (g == NULL)
		return;
	CHECK(greylist_check(g, "k1", 1000) == GL_NEW, "k1 new");
	CHECK(greylist_check(g, "k1", 1010) == GL_EARLY, "k1 early");
	CHECK(greylist_check(g, "k2", 1010) == GL_NEW, "k2 new");
	CHECK(greylist_check(g, "k1", 1070) == GL_PASSED, "k1 passed");
	CHECK(greylist_count(g) == 2, "two triplets");
	greylist_close(g);

	/* A restart keeps what was decided; a torn last line (a crash in
	 * the middle of a write) and garbage are skipped. */
	fp = fopen(path, "a");
	fputs("garbage line\ng1 5 4 0 backwards\ng1 1000 1000 0 torn", fp);
	fclose(fp);
	g = greylist_open(path, &gt, 1100, err, sizeof(err));
	CHECK(g != NULL, "reopen: %s", err);
	if (g == NULL)
		return;
	CHECK(greylist_count(g) == 2, "two triplets after restart: %zu",
	    greylist_count(g));
	CHECK(file_lines(path) == 2, "compacted at open: %d lines",
	    file_lines(path));
	CHECK(greylist_check(g, "k1", 1100) == GL_KNOWN, "k1 known");
	CHECK(greylist_check(g, "k2", 1100) == GL_PASSED, "k2 passed");
	CHECK(greylist_check(g, "torn", 1100) == GL_NEW, "torn is new");
	greylist_close(g);

	/* Expired records go at the next open; the journal is rewritten
	 * once dead lines outnumber live ones. */
	g = greylist_open(path, &gt, 1100 + 86400 + 10, err, sizeof(err));
	CHECK(g != NULL && greylist_count(g) == 0, "all expired");
	for (i = 0; g != NULL && i < 3000; i++)
		CHECK(greylist_check(g, "churn", 200000 + i % 50) ==
		    (i ? GL_EARLY : GL_NEW), "churn %d", i);
	CHECK(file_lines(path) <= 1001, "journal compacted: %d lines",
	    file_lines(path));
	greylist_close(g);
	g = greylist_open(path, &gt, 203000, err, sizeof(err));
	CHECK(g != NULL && greylist_count(g) == 1, "churn survives");
	if (g != NULL)
		CHECK(greylist_check(g, "churn", 203001) == GL_PASSED,
		    "churn retried within the window");
	greylist_close(g);
	unlink(path);
	rmdir(dir);
}

static int
load_text(struct conf *c, const char *text, char *err, size_t errlen)
{
	char	path[] = "/tmp/spork-unit-pq.XXXXXX";
	int	fd, rc;

	if ((fd = mkstemp(path)) == -1)
		return -2;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		return -2;
	}
	close(fd);
	rc = conf_load(c, path, err, errlen);
	if (rc == -1 && strncmp(err, path, strlen(path)) == 0)
		memmove(err, "F", 1), memmove(err + 1, err + strlen(path),
		    strlen(err + strlen(path)) + 1);
	unlink(path);
	return rc;
}

static void
test_pq_conf(void)
{
	static const struct {
		const char	*text;
		const char	*err;	/* NULL: valid */
	} t[] = {
		{ "dnsbl_zones bl.test bl2.test:connect b3.test:tag b4:rcpt\n",
		    NULL },
		{ "dnsbl_zones bl.test:bounce\n", "F:1: key 'dnsbl_zones': bad "
		    "zone 'bl.test:bounce' (want NAME or NAME:connect, "
		    "NAME:rcpt, NAME:tag)" },
		{ "dnsbl_zones .bl.test\n", "F:1: key 'dnsbl_zones': bad zone "
		    "'.bl.test' (want NAME or NAME:connect, NAME:rcpt, "
		    "NAME:tag)" },
		{ "dnsbl_zones a b c d e f g h i\n", "F:1: key 'dnsbl_zones': "
		    "too many or too long zones (at most 8)" },
		{ "dnswl_zones wl.test:connect\n", "F:1: key 'dnswl_zones': "
		    "bad zone 'wl.test:connect' (want a DNS name)" },
		{ "inside_networks 10.0.0.0/8 fd00::/8 192.0.2.1\n", NULL },
		{ "inside_networks 10.0.0.0/40\n", "F:1: key 'inside_networks'"
		    ": bad network '10.0.0.0/40' (want ADDR or ADDR/PREFIX)" },
		{ "prequeue_apply sideways\n", "F:1: key 'prequeue_apply': "
		    "want inbound, outbound or both, not 'sideways'" },
		{ "spf_fail_action bounce\n", "F:1: key 'spf_fail_action': "
		    "want reject, tempfail, tag or none, not 'bounce'" },
		{ "spf_helpers 4\n", NULL },
		{ "spf_helpers 0\n", "F: spf_helpers must be 1 to 16" },
		{ "spf_helpers 17\n", "F: spf_helpers must be 1 to 16" },
		{ "greylist_enable yes\ngreylist_min 4h\ngreylist_max 1h\n",
		    "F: greylist_min must be shorter than greylist_max" },
		{ "greylist_enable yes\ngreylist_expiry 1h\n",
		    "F: greylist_expiry must be at least greylist_max" },
		{ "greylist_expiry 1001d\n", "F:1: key 'greylist_expiry': bad "
		    "time '1001d' (0, or 1s to 1000d; seconds, or with s/m/h/d)" },
		{ "greet_pause 0\n", NULL },
		{ "greet_pause 2h\n", "F:1: key 'greet_pause': bad time '2h' "
		    "(0, or 1s to 1h; seconds, or with s/m/h)" },
		{ "dns_servers 127.0.0.1\n", "F: dns_servers: want ADDR:PORT "
		    "or [ADDR6]:PORT, not '127.0.0.1'" },
		{ "greylist_redis localhost\n", "F: greylist_redis: want "
		    "ADDR:PORT, not 'localhost'" },
	};
	struct conf	c;
	char		err[1024];
	size_t		i;
	int		rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err[0] = '\0';
		rc = load_text(&c, t[i].text, err, sizeof(err));
		if (t[i].err == NULL)
			CHECK(rc == 0, "pq conf %zu: %s", i, err);
		else
			CHECK(rc == -1 && strcmp(err, t[i].err) == 0,
			    "pq conf %zu: got [%s] want [%s]", i, err, t[i].err);
	}
	rc = load_text(&c, "dnsbl_zones bl.test a.test:connect t.test:tag\n"
	    "dnswl_zones wl.test\ngreylist_min 30s\ngreylist_max 2d\n"
	    "greet_pause 2s\ndns_servers 127.0.0.1:53 [::1]:5353\n", err,
	    sizeof(err));
	CHECK(rc == 0, "pq conf: %s", err);
	CHECK(c.dnsbl_zones.n == 3 && strcmp(c.dnsbl_zones.zone[1], "a.test")
	    == 0 && c.dnsbl_zones.action[0] == ACT_REJECT &&
	    c.dnsbl_zones.action[1] == ACT_CONNECT &&
	    c.dnsbl_zones.action[2] == ACT_TAG, "zones and actions");
	CHECK(c.dnswl_zones.n == 1, "allow list");
	CHECK(c.greylist_min == 30 && c.greylist_max == 2 * 86400,
	    "greylist times in seconds");
	CHECK(c.greet_pause == 2000, "greet pause in ms");
	CHECK(c.dns_servers.n == 2, "dns servers");
	conf_defaults(&c);
	CHECK(c.early_talker == 0 && c.spf_enable == 0 &&
	    c.greylist_enable == 0 && c.greylist_expiry == 36 * 86400 &&
	    c.prequeue_apply == DIR_INBOUND, "pre-queue defaults");
}

void
test_prequeue(void)
{
	test_cidr();
	test_dns_names();
	test_triplets();
	test_decide();
	test_store();
	test_pq_conf();
}
