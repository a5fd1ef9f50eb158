/* SPDX-License-Identifier: MIT */
/*
 * The configuration file: `key value...` lines, `#` comments. One table
 * names every key, its type and its default; conf_defaults() applies the
 * defaults through the same parser as the file, so the documented default
 * and the real one cannot drift. Errors name the file, the line and the key.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "action.h"
#include "conf.h"
#include "log.h"
#include "sock.h"

#define CONF_LINE_MAX	4096
#define CONF_TRACK_SIZE_MIN	(16ULL * 1024 * 1024)	/* track_max_size, but 0 */

enum conf_type {
	CT_ADDRS,	/* list of ADDR:PORT */
	CT_STR,
	CT_WORDS,	/* list of words: paths, host:port */
	CT_BOOL,
	CT_SIZE,	/* bytes, k/m/g suffix */
	CT_COUNT,
	CT_TIME,	/* seconds, s/m/h suffix; stored in ms */
	CT_MILTERS,	/* NAME=SOCKET[,timeout=T][,default=A][,direction=D] */
	CT_ENUM,	/* one word of the key's table, stored as its value */
	CT_NETS,	/* list of ADDR[/PREFIX] */
	CT_ZONES,	/* list of ZONE[:connect|rcpt|tag] */
	CT_WLZONES,	/* list of ZONE (DNS whitelists) */
	CT_MSEC,	/* like CT_TIME, 0 allowed */
	CT_LTIME,	/* seconds, s/m/h/d suffix, up to 1000d; in seconds */
	CT_SCORE,	/* a decimal spam score, or off (stored as INFINITY) */
};

/* A word of an enumerated key and the value it stands for. */
struct conf_word {
	const char	*w;
	int		 v;
};

struct conf_key {
	const char	*name;
	enum conf_type	 type;
	size_t		 off;
	size_t		 len;		/* CT_STR: capacity */
	const char	*def;
	const struct conf_word *words;	/* CT_ENUM */
};

#define K(n, t, d)	KN(#n, n, t, d)
#define KN(name, n, t, d) { name, t, offsetof(struct conf, n), \
			  sizeof(((struct conf *)0)->n), d, NULL }
/* An enumerated key: its words, then its default word. */
#define KE(name, n, w, d) { name, CT_ENUM, offsetof(struct conf, n), \
			  sizeof(((struct conf *)0)->n), d, w }
#define W(...)		((const struct conf_word[]){ __VA_ARGS__, { NULL, 0 } })

/* The actions a scan verdict may be given (virus_action adds clean). */
#define W_ACTIONS	{ "reject", ACT_REJECT }, { "tempfail", ACT_TEMPFAIL }, \
			{ "tag", ACT_TAG }, { "quarantine", ACT_QUARANTINE }
#define W_PROBE		W({ "relay", PROBE_RELAY }, { "252", PROBE_252 }, \
			{ "502", PROBE_502 })
#define W_PQACTION	W({ "reject", ACT_REJECT }, { "tempfail", ACT_TEMPFAIL }, \
			{ "tag", ACT_TAG }, { "none", ACT_NONE })

static const struct conf_key conf_keys[] = {
	K(transparent_listen,	CT_ADDRS,	"0.0.0.0:10025 [::]:10025"),
	K(explicit_listen,	CT_ADDRS,	""),
	K(explicit_upstream,	CT_ADDRS,	""),
	K(user,			CT_STR,		""),
	K(scan_enable,		CT_BOOL,	"yes"),
	K(clamav_database_dir,	CT_STR,		"/var/lib/clamav"),
	K(clamav_signatures,	CT_WORDS,	""),
	K(spool_dir,		CT_STR,		"/var/spool/spork"),
	K(spool_memory_max,	CT_SIZE,	"256k"),
	K(spool_memory_budget,	CT_SIZE,	"512m"),
	K(spool_disk_budget,	CT_SIZE,	"8g"),
	K(message_size_limit,	CT_SIZE,	"100m"),
	K(max_recipients,	CT_COUNT,	"1000"),
	K(max_command_line,	CT_SIZE,	"2048"),
	K(max_text_line,	CT_SIZE,	"1000"),
	K(max_reply_line,	CT_SIZE,	"2048"),
	K(max_reply_lines,	CT_COUNT,	"100"),
	K(max_sessions,		CT_COUNT,	"10000"),
	KE("overload_policy", overload_bypass,
	    W({ "refuse", 0 }, { "bypass", 1 }), "refuse"),
	K(overload_bypass_time,	CT_TIME,	"1m"),
	K(max_sessions_per_client, CT_COUNT,	"100"),
	K(max_connections_per_minute, CT_COUNT,	"1200"),
	K(client_v6_prefix,	CT_COUNT,	"64"),
	K(max_junk_commands,	CT_COUNT,	"100"),
	K(max_header_size,	CT_SIZE,	"1m"),
	K(min_data_rate,	CT_SIZE,	"256"),
	K(min_data_rate_grace,	CT_TIME,	"30s"),
	K(timeout_request,	CT_TIME,	"2m"),
	KE("bare_newline", bare_newline, W({ "reject", BARE_REJECT },
	    { "normalize", BARE_NORMALIZE }), "reject"),
	K(milters,		CT_MILTERS,	""),
	KE("vrfy_outside", vrfy_outside, W_PROBE, "252"),
	KE("expn_outside", expn_outside, W_PROBE, "502"),
	KE("scan_backend", scan_backend, W({ "workers", SCAN_BACKEND_WORKERS },
	    { "clamd", SCAN_BACKEND_CLAMD }), "workers"),
	K(scan_workers,		CT_COUNT,	"2"),
	K(scan_user,		CT_STR,		"nobody"),
	K(scan_timeout,		CT_TIME,	"150s"),
	K(scan_max_size,	CT_SIZE,	"400m"),
	K(scan_max_file_size,	CT_SIZE,	"100m"),
	K(scan_max_recursion,	CT_COUNT,	"17"),
	K(scan_max_files,	CT_COUNT,	"10000"),
	K(scan_max_time,	CT_TIME,	"120s"),
	K(scan_worker_memory,	CT_SIZE,	"4g"),
	KE("virus_action", virus_action, W(W_ACTIONS, { "clean", ACT_CLEAN }),
	    "reject"),
	KE("encrypted_action", encrypted_action, W(W_ACTIONS), "tempfail"),
	KE("limits_action", limits_action, W(W_ACTIONS), "tempfail"),
	KE("scan_error_action", scan_error_action, W(W_ACTIONS),
	    "tempfail"),
	K(scan_header,		CT_BOOL,	"yes"),
	K(quarantine_dir,	CT_STR,		"/var/spool/spork/quarantine"),
	KE("quarantine_then", quarantine_then_deliver,
	    W({ "reject", 0 }, { "deliver", 1 }), "reject"),
	K(notice_to,		CT_STR,		""),
	K(notice_from,		CT_STR,		""),
	K(notice_actions,	CT_WORDS,	"reject quarantine clean"),
	K(notice_server,	CT_STR,		""),
	K(control_socket,	CT_STR,		"/run/spork/sporkd.sock"),
	K(control_admin_group,	CT_STR,		""),
	K(divert_bridge,	CT_STR,		""),
	K(divert_table,		CT_STR,		"sporkd"),
	K(divert_mark,		CT_COUNT,	"1"),
	K(connect_before_accept, CT_BOOL,	"no"),
	K(connect_before_accept_queue, CT_COUNT, "25"),
	K(connect_before_accept_per_source, CT_COUNT, "8"),
	KE("tls_policy", tls_policy, W({ "passthrough", TLS_PASSTHROUGH },
	    { "intercept", TLS_INTERCEPT }, { "strip", TLS_STRIP }), "intercept"),
	K(tls_intercept_servers, CT_WORDS,	""),
	K(tls_passthrough_servers, CT_WORDS,	""),
	K(tls_strip_servers,	CT_WORDS,	""),
	K(tls_keys_dir,		CT_STR,		""),
	K(tls_key_recheck,	CT_TIME,	"10m"),
	K(tls_outbound_clients,	CT_WORDS,	""),
	K(tls_outbound_ca_file,	CT_STR,		""),
	K(tls_outbound_ca_key_file, CT_STR,	""),
	K(tls_outbound_verify_ca_file, CT_STR,	""),
	K(tls_cert_file,	CT_STR,		""),
	K(tls_key_file,		CT_STR,		""),
	K(tls_ca_file,		CT_STR,		""),
	K(tls_verify,		CT_BOOL,	"no"),
	K(tls_upstream_name,	CT_STR,		""),
	K(tls_min_protocol,	CT_STR,		"TLSv1.2"),
	K(clamd_servers,	CT_WORDS,	""),
	K(clamd_connect_timeout, CT_TIME,	"5s"),
	K(clamd_health_interval, CT_TIME,	"10s"),
	K(clamd_max_stream,	CT_SIZE,	"25m"),
	KE("spam_engine", spam_engine, W({ "none", SPAM_ENGINE_NONE },
	    { "rspamd", SPAM_ENGINE_RSPAMD }, { "spamd", SPAM_ENGINE_SPAMD }),
	    "none"),
	K(spam_servers,		CT_WORDS,	""),
	K(spam_timeout,		CT_TIME,	"15s"),
	K(spam_max_size,	CT_SIZE,	"2m"),
	K(spam_tag_score,	CT_SCORE,	"5"),
	K(spam_quarantine_score, CT_SCORE,	"off"),
	K(spam_reject_score,	CT_SCORE,	"15"),
	KE("spam_unavailable_action", spam_unavailable_tempfail,
	    W({ "accept", 0 }, { "tempfail", 1 }), "accept"),
	K(timeout_connect,	CT_TIME,	"30s"),
	K(timeout_greeting,	CT_TIME,	"5m"),
	K(timeout_command,	CT_TIME,	"5m"),
	K(timeout_reply,	CT_TIME,	"5m"),
	K(timeout_data_init,	CT_TIME,	"2m"),
	K(timeout_data_block,	CT_TIME,	"3m"),
	K(timeout_data_final,	CT_TIME,	"10m"),
	K(timeout_passthrough,	CT_TIME,	"10m"),
	K(inside_networks,	CT_NETS,	""),
	KE("prequeue_apply", prequeue_apply, W({ "inbound", DIR_INBOUND },
	    { "outbound", DIR_OUTBOUND }, { "both", DIR_BOTH }), "inbound"),
	K(early_talker,		CT_BOOL,	"no"),
	K(greet_pause,		CT_MSEC,	"0"),
	K(dns_servers,		CT_WORDS,	""),
	K(dns_timeout,		CT_TIME,	"5s"),
	K(dnsbl_zones,		CT_ZONES,	""),
	K(dnswl_zones,		CT_WLZONES,	""),
	K(spf_enable,		CT_BOOL,	"no"),
	KE("spf_fail_action", spf_fail_action, W_PQACTION, "tag"),
	KE("spf_softfail_action", spf_softfail_action, W_PQACTION, "tag"),
	K(spf_timeout,		CT_TIME,	"20s"),
	K(spf_helpers,		CT_COUNT,	"2"),
	K(greylist_enable,	CT_BOOL,	"no"),
	K(greylist_min,		CT_LTIME,	"5m"),
	K(greylist_max,		CT_LTIME,	"4h"),
	K(greylist_expiry,	CT_LTIME,	"36d"),
	K(greylist_file,	CT_STR,		""),
	K(greylist_redis,	CT_STR,		""),
	K(greylist_whitelist,	CT_NETS,	""),
	K(content_rules,	CT_STR,		""),
	K(track_db,		CT_STR,		""),
	K(track_retention,	CT_LTIME,	"30d"),
	K(track_max_size,	CT_SIZE,	"1g"),
	K(track_json,		CT_BOOL,	"no"),
	K(console_listen,	CT_ADDRS,	""),
	K(console_user,		CT_STR,		"spork-web"),
	K(console_users_file,	CT_STR,		"/etc/spork/console.users"),
	K(console_cert_file,	CT_STR,		""),
	K(console_key_file,	CT_STR,		""),
	K(console_session_timeout, CT_TIME,	"30m"),
	K(console_metrics_networks, CT_NETS,	"127.0.0.0/8 ::1"),
	K(icap_listen,		CT_ADDRS,	""),
	K(icap_service,		CT_STR,		"avscan"),
	K(icap_networks,	CT_NETS,	"127.0.0.0/8 ::1"),
	K(icap_max_connections,	CT_COUNT,	"1000"),
	K(icap_max_body,	CT_SIZE,	"100m"),
	K(icap_preview,		CT_SIZE,	"1k"),
	K(icap_answer_after,	CT_SIZE,	"60k"),
	K(icap_timeout,		CT_TIME,	"2m"),
	K(icap_block_page,	CT_STR,		""),
	K(journal_inbound,	CT_STR,		""),
	K(journal_outbound,	CT_STR,		""),
	K(journal_server,	CT_STR,		""),
	K(journal_retention,	CT_LTIME,	"0"),
	KE("journal_failure", journal_failure_deliver,
	    W({ "tempfail", 0 }, { "deliver", 1 }), "tempfail"),
	KE("log_level", log_level, W({ "error", LOG_LVL_ERR },
	    { "warning", LOG_LVL_WARN }, { "info", LOG_LVL_INFO },
	    { "debug", LOG_LVL_DEBUG }), "info"),
	K(log_syslog,		CT_BOOL,	"yes"),
	K(log_stderr,		CT_BOOL,	"yes"),
};

static int
parse_number(const char *v, const char *suffixes, const unsigned long long *mult,
    unsigned long long *out)
{
	unsigned long long	 n;
	const char		*s;
	char			*ep;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoull(v, &ep, 10);
	if (errno)
		return -1;
	if (*ep != '\0') {
		if (ep[1] != '\0' || (s = strchr(suffixes, ep[0] | 0x20)) == NULL)
			return -1;
		if (n > ULLONG_MAX / mult[s - suffixes])
			return -1;
		n *= mult[s - suffixes];
	}
	*out = n;
	return 0;
}

/*
 * One word of `milters`: NAME=SOCKET[,timeout=T][,default=A][,direction=D],
 * SOCKET being unix:/path or inet:HOST:PORT.
 */
static int
parse_milter(const char *w, struct conf_milter *m, char *err, size_t errlen)
{
	static const unsigned long long	 timem[] = { 1, 60, 3600 };
	unsigned long long		 n;
	const char			*eq, *o, *end;
	char				 opt[64];
	size_t				 l;

	memset(m, 0, sizeof(*m));
	m->timeout = 30000;
	m->def = ACT_TEMPFAIL;
	m->direction = DIR_BOTH;
	if ((eq = strchr(w, '=')) == NULL || eq == w ||
	    (size_t)(eq - w) >= sizeof(m->name) ||
	    strspn(w, "abcdefghijklmnopqrstuvwxyz0123456789-_") !=
	    (size_t)(eq - w)) {
		snprintf(err, errlen, "milter '%.100s': want NAME=SOCKET "
		    "(name of a-z 0-9 - _)", w);
		return -1;
	}
	memcpy(m->name, w, (size_t)(eq - w));
	o = eq + 1;
	l = strcspn(o, ",");
	if (l >= sizeof(m->socket) || (strncmp(o, "unix:/", 6) != 0 &&
	    strncmp(o, "inet:", 5) != 0) || l <= 6) {
		snprintf(err, errlen, "milter %s: want unix:/PATH or "
		    "inet:HOST:PORT", m->name);
		return -1;
	}
	memcpy(m->socket, o, l);
	for (o += l; *o == ','; o = end) {
		o++;
		end = o + strcspn(o, ",");
		if ((size_t)(end - o) >= sizeof(opt))
			goto bad;
		memcpy(opt, o, (size_t)(end - o));
		opt[end - o] = '\0';
		if (strncmp(opt, "timeout=", 8) == 0) {
			if (parse_number(opt + 8, "smh", timem, &n) == -1 ||
			    n == 0 || n > 3600)
				goto bad;
			m->timeout = (unsigned)n * 1000;
		} else if (strcmp(opt, "default=accept") == 0)
			m->def = ACT_DELIVER;
		else if (strcmp(opt, "default=tempfail") == 0)
			m->def = ACT_TEMPFAIL;
		else if (strcmp(opt, "default=reject") == 0)
			m->def = ACT_REJECT;
		else if (strcmp(opt, "direction=both") == 0)
			m->direction = DIR_BOTH;
		else if (strcmp(opt, "direction=inbound") == 0)
			m->direction = DIR_INBOUND;
		else if (strcmp(opt, "direction=outbound") == 0)
			m->direction = DIR_OUTBOUND;
		else
			goto bad;
	}
	if (*o != '\0')
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "milter %s: bad option (want timeout=1s..1h, "
	    "default=accept|tempfail|reject, direction=both|inbound|"
	    "outbound)", m->name);
	return -1;
}

static int
conf_set_one(struct conf *c, const struct conf_key *k, const char *v,
    char *err, size_t errlen)
{
	static const unsigned long long	 sizem[] = { 1024, 1024 * 1024,
					    1024ULL * 1024 * 1024 };
	static const unsigned long long	 timem[] = { 1, 60, 3600, 86400 };
	char				*p = (char *)c + k->off;
	char				 word[CONF_PATH_MAX];
	const char			*s;
	unsigned long long		 n;
	size_t				 wl;
	struct conf_addrs		*as;
	struct conf_words		*ws;
	struct conf_nets		*ns;
	struct conf_zones		*zs;
	const char			*colon;
	size_t				 i, l;

	switch (k->type) {
	case CT_ADDRS:
		as = (struct conf_addrs *)p;
		as->n = 0;
		for (s = v; *s; ) {
			s += strspn(s, " \t");
			if ((wl = strcspn(s, " \t")) == 0)
				break;
			if (wl >= sizeof(word) || as->n == CONF_ADDRS_MAX) {
				snprintf(err, errlen, "too many or too long "
				    "addresses (at most %d)", CONF_ADDRS_MAX);
				return -1;
			}
			memcpy(word, s, wl);
			word[wl] = '\0';
			if (sock_parse_addr(word, &as->a[as->n]) == -1) {
				snprintf(err, errlen, "bad address '%.200s' "
				    "(want ADDR:PORT or [ADDR6]:PORT)", word);
				return -1;
			}
			as->n++;
			s += wl;
		}
		return 0;
	case CT_STR:
		if (strlen(v) >= k->len) {
			snprintf(err, errlen, "value too long (max %zu)",
			    k->len - 1);
			return -1;
		}
		strcpy(p, v);
		return 0;
	case CT_WORDS:
		ws = (struct conf_words *)p;
		ws->n = 0;
		for (s = v; *s; ) {
			s += strspn(s, " \t");
			if ((wl = strcspn(s, " \t")) == 0)
				break;
			if (wl >= CONF_PATH_MAX || ws->n == CONF_FILES_MAX) {
				snprintf(err, errlen, "too many or too long "
				    "words (at most %d)", CONF_FILES_MAX);
				return -1;
			}
			memcpy(ws->w[ws->n], s, wl);
			ws->w[ws->n++][wl] = '\0';
			s += wl;
		}
		return 0;
	case CT_BOOL:
		if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
		    !strcmp(v, "1"))
			*(int *)p = 1;
		else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
		    !strcmp(v, "0"))
			*(int *)p = 0;
		else {
			snprintf(err, errlen, "want yes or no, not '%s'", v);
			return -1;
		}
		return 0;
	case CT_SIZE:
	case CT_COUNT:
		if (parse_number(v, k->type == CT_SIZE ? "kmg" : "", sizem,
		    &n) == -1 || n > SIZE_MAX / 2) {
			snprintf(err, errlen, "bad %s '%s'", k->type ==
			    CT_SIZE ? "size (bytes, or with k/m/g)" : "count",
			    v);
			return -1;
		}
		*(size_t *)p = (size_t)n;
		return 0;
	case CT_TIME:
		if (parse_number(v, "smh", timem, &n) == -1 || n == 0 ||
		    n > 86400) {
			snprintf(err, errlen, "bad time '%s' (1s to 24h; "
			    "seconds, or with s/m/h)", v);
			return -1;
		}
		*(unsigned *)p = (unsigned)n * 1000;
		return 0;
	case CT_MILTERS: {
		struct conf_milters	*ms = (struct conf_milters *)p;
		int			 j;

		ms->n = 0;
		for (s = v; *s; ) {
			s += strspn(s, " \t");
			if ((wl = strcspn(s, " \t")) == 0)
				break;
			if (wl >= sizeof(word) || ms->n == CONF_MILTERS_MAX) {
				snprintf(err, errlen, "too many or too long "
				    "milters (at most %d)", CONF_MILTERS_MAX);
				return -1;
			}
			memcpy(word, s, wl);
			word[wl] = '\0';
			if (parse_milter(word, &ms->m[ms->n], err, errlen) == -1)
				return -1;
			for (j = 0; j < ms->n; j++)
				if (strcmp(ms->m[j].name, ms->m[ms->n].name) == 0) {
					snprintf(err, errlen, "milter %s named "
					    "twice", ms->m[j].name);
					return -1;
				}
			ms->n++;
			s += wl;
		}
		return 0;
	}
	case CT_NETS:
		ns = (struct conf_nets *)p;
		ns->n = 0;
		for (s = v; *s; s += wl) {
			s += strspn(s, " \t");
			if ((wl = strcspn(s, " \t")) == 0)
				break;
			if (wl >= sizeof(word) || ns->n == CONF_NETS_MAX) {
				snprintf(err, errlen, "too many or too long "
				    "networks (at most %d)", CONF_NETS_MAX);
				return -1;
			}
			memcpy(word, s, wl);
			word[wl] = '\0';
			if (cidr_parse(word, &ns->net[ns->n]) == -1) {
				snprintf(err, errlen, "bad network '%.200s' "
				    "(want ADDR or ADDR/PREFIX)", word);
				return -1;
			}
			ns->n++;
		}
		return 0;
	case CT_ZONES:
	case CT_WLZONES:
		zs = (struct conf_zones *)p;
		zs->n = 0;
		for (s = v; *s; s += wl) {
			s += strspn(s, " \t");
			if ((wl = strcspn(s, " \t")) == 0)
				break;
			if (wl >= sizeof(word) || zs->n == CONF_ZONES_MAX) {
				snprintf(err, errlen, "too many or too long "
				    "zones (at most %d)", CONF_ZONES_MAX);
				return -1;
			}
			memcpy(word, s, wl);
			word[wl] = '\0';
			zs->action[zs->n] = k->type == CT_WLZONES ? ACT_NONE :
			    ACT_REJECT;
			if ((colon = strchr(word, ':')) != NULL) {
				if (k->type == CT_WLZONES)
					goto badzone;
				if (strcmp(colon + 1, "connect") == 0)
					zs->action[zs->n] = ACT_CONNECT;
				else if (strcmp(colon + 1, "tag") == 0)
					zs->action[zs->n] = ACT_TAG;
				else if (strcmp(colon + 1, "rcpt") != 0)
					goto badzone;
				word[colon - word] = '\0';
			}
			if (word[0] == '\0' || word[0] == '.' ||
			    strlen(word) >= CONF_ZONE_MAX ||
			    strspn(word, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") !=
			    strlen(word))
				goto badzone;
			strcpy(zs->zone[zs->n++], word);
		}
		return 0;
badzone:
		snprintf(err, errlen, "bad zone '%.200s' (want %s)", word,
		    k->type == CT_WLZONES ? "a DNS name" :
		    "NAME or NAME:connect, NAME:rcpt, NAME:tag");
		return -1;
	case CT_MSEC:
		if (strcmp(v, "0") == 0) {
			*(unsigned *)p = 0;
			return 0;
		}
		if (parse_number(v, "smh", timem, &n) == -1 || n == 0 ||
		    n > 3600) {
			snprintf(err, errlen, "bad time '%s' (0, or 1s to 1h; "
			    "seconds, or with s/m/h)", v);
			return -1;
		}
		*(unsigned *)p = (unsigned)n * 1000;
		return 0;
	case CT_LTIME:
		/* 0 parses ("forever" where a key allows it); conf_check
		 * refuses it for the others. */
		if (parse_number(v, "smhd", timem, &n) == -1 ||
		    n > 1000ULL * 86400) {
			snprintf(err, errlen, "bad time '%s' (0, or 1s to 1000d; "
			    "seconds, or with s/m/h/d)", v);
			return -1;
		}
		*(unsigned *)p = (unsigned)n;
		return 0;
	case CT_SCORE:
		if (strcmp(v, "off") == 0) {
			*(double *)p = INFINITY;
			return 0;
		}
		/* [-]digits[.digits]: nothing else strtod() would take. */
		s = v + (*v == '-');
		wl = strspn(s, "0123456789");
		if (wl > 0 && s[wl] == '.')
			wl = strspn(s + wl + 1, "0123456789") > 0 ? wl + 1 +
			    strspn(s + wl + 1, "0123456789") : 0;
		if (wl == 0 || s[wl] != '\0' || fabs(strtod(v, NULL)) >= 1e6) {
			snprintf(err, errlen, "want a score such as 5 or 7.5, "
			    "or off, not '%s'", v);
			return -1;
		}
		*(double *)p = strtod(v, NULL);
		return 0;
	case CT_ENUM:
		for (i = 0; k->words[i].w != NULL; i++)
			if (strcmp(v, k->words[i].w) == 0) {
				*(int *)p = k->words[i].v;
				return 0;
			}
		l = (size_t)snprintf(err, errlen, "want ");
		for (i = 0; k->words[i].w != NULL && l < errlen; i++)
			l += (size_t)snprintf(err + l, errlen - l, "%s%s",
			    k->words[i].w, k->words[i + 1].w == NULL ? "" :
			    k->words[i + 2].w == NULL ? " or " : ", ");
		if (l < errlen)
			snprintf(err + l, errlen - l, ", not '%s'", v);
		return -1;
	}
	fatal("conf_set_one: bad type %d", k->type);
}

int
conf_set(struct conf *c, const char *key, const char *value, char *err,
    size_t errlen)
{
	size_t	i;
	char	sub[512];

	for (i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++) {
		if (strcmp(conf_keys[i].name, key) != 0)
			continue;
		if (conf_set_one(c, &conf_keys[i], value, sub, sizeof(sub))
		    == -1) {
			snprintf(err, errlen, "key '%s': %s", key, sub);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "unknown key '%s'", key);
	return -1;
}

/* The word an enumerated key's value v is written as, for logs. */
const char *
conf_word(const char *key, int v)
{
	size_t	i, j;

	for (i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++) {
		if (conf_keys[i].type != CT_ENUM ||
		    strcmp(conf_keys[i].name, key) != 0)
			continue;
		for (j = 0; conf_keys[i].words[j].w != NULL; j++)
			if (conf_keys[i].words[j].v == v)
				return conf_keys[i].words[j].w;
	}
	return "unknown";
}

/* The i-th key's name, NULL past the last: for documentation checks. */
const char *
conf_key_name(size_t i)
{
	return i < sizeof(conf_keys) / sizeof(conf_keys[0]) ?
	    conf_keys[i].name : NULL;
}

void
conf_defaults(struct conf *c)
{
	char	err[512];
	size_t	i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++)
		if (conf_set(c, conf_keys[i].name, conf_keys[i].def, err,
		    sizeof(err)) == -1)
			fatal("conf_defaults: %s", err);
}

/* Cross-key checks that no single value can fail on its own. */
/* A journal target: "" (none), an absolute Maildir path, or
 * "smtp:ADDRESS" sent to journal_server. */
static int
journal_target_check(const char *key, const char *v, const struct conf *c,
    char *err, size_t errlen)
{
	struct sockaddr_storage	ss;
	const char		*at;

	if (v[0] == '\0' || v[0] == '/')
		return 0;
	if (strncmp(v, "smtp:", 5) != 0 || (at = strchr(v + 5, '@')) == NULL ||
	    at == v + 5 || at[1] == '\0' || strpbrk(v + 5, " <>\"\\") != NULL) {
		snprintf(err, errlen, "%s: want a Maildir path (absolute) or "
		    "smtp:ADDRESS, not '%s'", key, v);
		return -1;
	}
	if (sock_parse_addr(c->journal_server, &ss) == -1) {
		snprintf(err, errlen, "%s %s needs journal_server ADDR:PORT, "
		    "not '%s'", key, v, c->journal_server);
		return -1;
	}
	return 0;
}

static int
conf_check(const struct conf *c, char *err, size_t errlen)
{
	struct sockaddr_storage	ss;
	enum action		na;
	int			i;

	if (c->explicit_listen.n > 0 && c->explicit_upstream.n != 1) {
		snprintf(err, errlen, "explicit_listen needs exactly one "
		    "explicit_upstream");
		return -1;
	}
	if (c->transparent_listen.n == 0 && c->explicit_listen.n == 0) {
		snprintf(err, errlen, "no listener: set transparent_listen "
		    "or explicit_listen");
		return -1;
	}
	if (c->max_command_line < 512) {
		snprintf(err, errlen, "max_command_line below RFC 5321's 512");
		return -1;
	}
	if (c->max_reply_line < 512) {
		snprintf(err, errlen, "max_reply_line below RFC 5321's 512");
		return -1;
	}
	if (c->max_text_line != 0 && c->max_text_line < 1000) {
		snprintf(err, errlen, "max_text_line below RFC 5321's 1000 "
		    "(0 disables the check)");
		return -1;
	}
	if (c->max_recipients < 100) {
		snprintf(err, errlen, "max_recipients below RFC 5321's 100");
		return -1;
	}
	if (c->scan_backend == SCAN_BACKEND_CLAMD && c->clamd_servers.n == 0) {
		snprintf(err, errlen, "scan_backend clamd needs clamd_servers");
		return -1;
	}
	if (c->spam_engine != SPAM_ENGINE_NONE && c->spam_servers.n == 0) {
		snprintf(err, errlen, "spam_engine %s needs spam_servers",
		    c->spam_engine == SPAM_ENGINE_RSPAMD ? "rspamd" : "spamd");
		return -1;
	}
	if (c->spam_servers.n > CONF_SPAM_SERVERS_MAX) {
		snprintf(err, errlen, "spam_servers: at most %d",
		    CONF_SPAM_SERVERS_MAX);
		return -1;
	}
	/* The message waits in the scanning state, whose own timer is
	 * scan_timeout (plus a margin): the spam deadline must come first. */
	if (c->spam_engine != SPAM_ENGINE_NONE &&
	    c->spam_timeout > c->scan_timeout) {
		snprintf(err, errlen, "spam_timeout must not exceed "
		    "scan_timeout");
		return -1;
	}
	if (c->client_v6_prefix < 48 || c->client_v6_prefix > 128) {
		snprintf(err, errlen, "client_v6_prefix must be 48 to 128");
		return -1;
	}
	if (c->tls_outbound_clients.n > 0 &&
	    (c->tls_outbound_ca_file[0] == '\0' ||
	    c->tls_outbound_ca_key_file[0] == '\0')) {
		snprintf(err, errlen, "tls_outbound_clients needs "
		    "tls_outbound_ca_file and tls_outbound_ca_key_file (the "
		    "local CA the inside MTAs trust; scripts/spork-cert)");
		return -1;
	}
	if (c->virus_action == ACT_CLEAN &&
	    c->scan_backend != SCAN_BACKEND_WORKERS) {
		snprintf(err, errlen, "virus_action clean needs scan_backend "
		    "workers (it scans each MIME part on its own)");
		return -1;
	}
	if (c->content_rules[0] != '\0' && (!c->scan_enable ||
	    c->scan_backend != SCAN_BACKEND_WORKERS)) {
		snprintf(err, errlen, "content_rules needs scan_enable yes and "
		    "scan_backend workers (the rules run in the local scan "
		    "workers)");
		return -1;
	}
	for (i = 0; i < c->notice_actions.n; i++)
		if (action_parse(c->notice_actions.w[i], NOTICE_ACTIONS,
		    &na) == -1) {
			snprintf(err, errlen, "notice_actions: '%s' is not one "
			    "of reject tempfail quarantine clean strip redact "
			    "tag", c->notice_actions.w[i]);
			return -1;
		}
	if (c->notice_server[0] != '\0' &&
	    sock_parse_addr(c->notice_server, &ss) == -1) {
		snprintf(err, errlen, "notice_server: want ADDR:PORT, not "
		    "'%s'", c->notice_server);
		return -1;
	}
	/* Below this a commit of the tracking writer holds too few records
	 * for its WAL to stay within its share (track.c): it keeps the
	 * bound by doing a few thousand records a second at most. */
	if (c->track_max_size != 0 && c->track_max_size < CONF_TRACK_SIZE_MIN) {
		snprintf(err, errlen, "track_max_size: at least 16m (or 0: "
		    "no bound), not %llu bytes",
		    (unsigned long long)c->track_max_size);
		return -1;
	}
	if (c->track_retention == 0 || c->greylist_min == 0 ||
	    c->greylist_max == 0 || c->greylist_expiry == 0) {
		snprintf(err, errlen, "track_retention and greylist_min, _max "
		    "and _expiry must be 1s or more (0 is journal_retention's "
		    "\"forever\")");
		return -1;
	}
	for (i = 0; i < c->icap_listen.n; i++)
		if (sock_is_wildcard(&c->icap_listen.a[i])) {
			snprintf(err, errlen, "icap_listen: a wildcard address "
			    "would serve the bridged segment too; name the "
			    "management address");
			return -1;
		}
	if (c->icap_service[0] == '\0' || strspn(c->icap_service,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_.") != strlen(c->icap_service)) {
		snprintf(err, errlen, "icap_service: want a name of letters, "
		    "digits, '-', '_' and '.', not '%s'", c->icap_service);
		return -1;
	}
	if (c->icap_preview > 65536 || c->icap_max_body == 0) {
		snprintf(err, errlen, "icap_preview must be 0 to 64k and "
		    "icap_max_body more than 0");
		return -1;
	}
	if (journal_target_check("journal_inbound", c->journal_inbound, c,
	    err, errlen) == -1 || journal_target_check("journal_outbound",
	    c->journal_outbound, c, err, errlen) == -1)
		return -1;
	if (c->scan_workers < 1 || c->scan_workers > 64) {
		snprintf(err, errlen, "scan_workers must be 1 to 64");
		return -1;
	}
	if (c->spf_helpers < 1 || c->spf_helpers > CONF_SPF_HELPERS_MAX) {
		snprintf(err, errlen, "spf_helpers must be 1 to %d",
		    CONF_SPF_HELPERS_MAX);
		return -1;
	}
	/* The queue rule lives in the divert sporkd owns: with a static
	 * divert no SYN would ever be held. */
	if (c->connect_before_accept && (c->divert_bridge[0] == '\0' ||
	    c->transparent_listen.n == 0)) {
		snprintf(err, errlen, "connect_before_accept needs "
		    "divert_bridge and a transparent_listen");
		return -1;
	}
	if (c->connect_before_accept_queue > 65535) {
		snprintf(err, errlen, "connect_before_accept_queue must be "
		    "0 to 65535");
		return -1;
	}
	if (c->greylist_enable && c->greylist_min >= c->greylist_max) {
		snprintf(err, errlen, "greylist_min must be shorter than "
		    "greylist_max");
		return -1;
	}
	if (c->greylist_enable && c->greylist_expiry < c->greylist_max) {
		snprintf(err, errlen, "greylist_expiry must be at least "
		    "greylist_max");
		return -1;
	}
	for (i = 0; i < c->dns_servers.n; i++)
		if (sock_parse_addr(c->dns_servers.w[i], &ss) == -1) {
			snprintf(err, errlen, "dns_servers: want ADDR:PORT or "
			    "[ADDR6]:PORT, not '%s'", c->dns_servers.w[i]);
			return -1;
		}
	if (c->greylist_redis[0] != '\0' &&
	    sock_parse_addr(c->greylist_redis, &ss) == -1) {
		snprintf(err, errlen, "greylist_redis: want ADDR:PORT, not "
		    "'%s'", c->greylist_redis);
		return -1;
	}
	if (c->max_reply_lines == 0 || c->max_sessions == 0 ||
	    c->message_size_limit == 0) {
		snprintf(err, errlen, "max_reply_lines, max_sessions and "
		    "message_size_limit must be positive");
		return -1;
	}
	return 0;
}

int
conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
	FILE	*fp;
	char	 line[CONF_LINE_MAX], sub[512], *k, *v, *e;
	size_t	 lineno = 0, l;
	int	 rc = -1;

	conf_defaults(c);
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		l = strlen(line);
		if (l == sizeof(line) - 1 && line[l - 1] != '\n') {
			snprintf(err, errlen, "%s:%zu: line too long", path,
			    lineno);
			goto done;
		}
		if ((e = strchr(line, '#')) != NULL)
			*e = '\0';
		k = line + strspn(line, " \t\r\n");
		if (*k == '\0')
			continue;
		v = k + strcspn(k, " \t\r\n");
		if (*v != '\0')
			*v++ = '\0';
		v += strspn(v, " \t");
		e = v + strlen(v);
		while (e > v && strchr(" \t\r\n", e[-1]) != NULL)
			*--e = '\0';
		if (conf_set(c, k, v, sub, sizeof(sub)) == -1) {
			snprintf(err, errlen, "%s:%zu: %s", path, lineno, sub);
			goto done;
		}
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (conf_check(c, sub, sizeof(sub)) == -1) {
		snprintf(err, errlen, "%s: %s", path, sub);
		goto done;
	}
	rc = 0;
done:
	fclose(fp);
	return rc;
}
