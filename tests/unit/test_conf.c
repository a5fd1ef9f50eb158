/* SPDX-License-Identifier: MIT */
/* Config: defaults, every type, and errors naming file, line and key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "unit.h"

static int
load_text(struct conf *c, const char *text, char *err, size_t errlen)
{
	char	path[] = "/tmp/spork-unit-conf.XXXXXX";
	int	fd, rc;

	if ((fd = mkstemp(path)) == -1)
		return -2;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		return -2;
	}
	close(fd);
	rc = conf_load(c, path, err, errlen);
	/* Error messages name the file: replace it for comparison. */
	if (rc == -1 && strncmp(err, path, strlen(path)) == 0)
		memmove(err, "F", 1), memmove(err + 1, err + strlen(path),
		    strlen(err + strlen(path)) + 1);
	unlink(path);
	return rc;
}

void
test_conf(void)
{
	static const struct {
		const char	*text;
		const char	*err;	/* NULL: valid */
	} t[] = {
		{ "", NULL },
		{ "# only a comment\n\n   \n", NULL },
		{ "max_recipients 500 # trailing comment\n", NULL },
		{ "bogus 1\n", "F:1: unknown key 'bogus'" },
		{ "\nmax_recipients ten\n",
		    "F:2: key 'max_recipients': bad count 'ten'" },
		{ "max_recipients 50\n",
		    "F: max_recipients below RFC 5321's 100" },
		{ "message_size_limit 10q\n", "F:1: key 'message_size_limit': "
		    "bad size (bytes, or with k/m/g) '10q'" },
		{ "timeout_command 0\n", "F:1: key 'timeout_command': bad time "
		    "'0' (1s to 24h; seconds, or with s/m/h)" },
		{ "scan_enable maybe\n",
		    "F:1: key 'scan_enable': want yes or no, not 'maybe'" },
		{ "transparent_listen 1.2.3.4\n", "F:1: key "
		    "'transparent_listen': bad address '1.2.3.4' (want "
		    "ADDR:PORT or [ADDR6]:PORT)" },
		{ "explicit_listen 127.0.0.1:2525\n",
		    "F: explicit_listen needs exactly one explicit_upstream" },
		{ "transparent_listen\n",
		    "F: no listener: set transparent_listen or explicit_listen" },
		{ "bare_newline sometimes\n", "F:1: key 'bare_newline': want "
		    "reject or normalize, not 'sometimes'" },
		{ "connect_before_accept yes\n", "F: connect_before_accept "
		    "needs divert_bridge and a transparent_listen" },
		{ "divert_bridge br0\nconnect_before_accept yes\n", NULL },
		{ "divert_bridge br0\nconnect_before_accept yes\n"
		    "connect_before_accept_queue 65536\n", "F: "
		    "connect_before_accept_queue must be 0 to 65535" },
		{ "spam_engine rspamd\n",
		    "F: spam_engine rspamd needs spam_servers" },
		{ "spam_engine spamassassin\nspam_servers [::1]:783\n",
		    "F:1: key 'spam_engine': want none, rspamd or spamd, not "
		    "'spamassassin'" },
		{ "spam_engine spamd\nspam_servers [::1]:783\n", NULL },
		{ "spam_servers a:1 b:1 c:1 d:1 e:1 f:1 g:1 h:1 i:1\n",
		    "F: spam_servers: at most 8" },
		{ "spam_engine spamd\nspam_servers [::1]:783\n"
		    "spam_timeout 10m\n",
		    "F: spam_timeout must not exceed scan_timeout" },
		{ "scan_timeout 5s\n", NULL },
		{ "track_max_size 2m\n", "F: track_max_size: at least 16m "
		    "(or 0: no bound), not 2097152 bytes" },
		{ "track_max_size 16m\n", NULL },
		{ "track_max_size 0\n", NULL },
		{ "notice_actions reject tempfail quarantine clean strip "
		    "redact tag\n", NULL },
		{ "notice_actions reject footer\n", "F: notice_actions: "
		    "'footer' is not one of reject tempfail quarantine clean "
		    "strip redact tag" },
		{ "notice_actions deliver\n", "F: notice_actions: 'deliver' "
		    "is not one of reject tempfail quarantine clean strip "
		    "redact tag" },
		{ "spam_reject_score 1e3\n", "F:1: key 'spam_reject_score': "
		    "want a score such as 5 or 7.5, or off, not '1e3'" },
	};
	struct conf	c;
	char		err[1024];
	size_t		i;
	int		rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err[0] = '\0';
		rc = load_text(&c, t[i].text, err, sizeof(err));
		if (t[i].err == NULL)
			CHECK(rc == 0, "conf %zu: %s", i, err);
		else
			CHECK(rc == -1 && strcmp(err, t[i].err) == 0,
			    "conf %zu: got [%s] want [%s]", i, err, t[i].err);
	}

	/* Defaults as documented in etc/spork.conf. */
	conf_defaults(&c);
	CHECK(c.transparent_listen.n == 2, "default listeners");
	CHECK(c.message_size_limit == 100 * 1024 * 1024, "default size");
	CHECK(c.timeout_data_final == 600000, "default final timeout");
	CHECK(c.bare_newline == BARE_REJECT, "default bare newline");
	CHECK(strcmp(c.clamav_database_dir, "/var/lib/clamav") == 0,
	    "default database dir");
	CHECK(c.connect_before_accept == 0 &&
	    c.connect_before_accept_queue == 25, "connect-before-accept off");

	/* Values of every kind. */
	rc = load_text(&c, "explicit_listen 127.0.0.1:2525 [::1]:2525\n"
	    "explicit_upstream [2001:db8::1]:25\n"
	    "spool_memory_max 1m\ntimeout_command 2m\nlog_syslog no\n"
	    "clamav_signatures /a.hdb /b.ndb\nbare_newline normalize\n",
	    err, sizeof(err));
	CHECK(rc == 0, "full config: %s", err);
	CHECK(c.explicit_listen.n == 2, "explicit listeners");
	CHECK(c.spool_memory_max == 1048576, "1m");
	CHECK(c.timeout_command == 120000, "2m");
	CHECK(c.log_syslog == 0, "log_syslog");
	CHECK(c.clamav_signatures.n == 2 &&
	    strcmp(c.clamav_signatures.w[1], "/b.ndb") == 0, "signature files");
	CHECK(c.bare_newline == BARE_NORMALIZE, "normalize");

	/* Every key is documented in the shipped config, with a value line. */
	{
		FILE		*fp = fopen("etc/spork.conf", "r");
		char		 line[1024];
		const char	*k;
		size_t		 j, kl;
		int		 found;

		CHECK(fp != NULL, "etc/spork.conf readable");
		for (j = 0; fp != NULL && (k = conf_key_name(j)) != NULL; j++) {
			kl = strlen(k);
			found = 0;
			rewind(fp);
			while (!found && fgets(line, sizeof(line), fp) != NULL)
				found = strncmp(line, k, kl) == 0 &&
				    (line[kl] == ' ' || line[kl] == '\n');
			CHECK(found, "key %s not in etc/spork.conf", k);
		}
		if (fp != NULL)
			fclose(fp);
	}

	/* The shipped config is valid. */
	rc = conf_load(&c, "etc/spork.conf", err, sizeof(err));
	CHECK(rc == 0, "etc/spork.conf: %s", err);
}
