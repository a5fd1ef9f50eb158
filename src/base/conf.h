/* SPDX-License-Identifier: MIT */
#ifndef SPORK_CONF_H
#define SPORK_CONF_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "action.h"
#include "cidr.h"

#define CONF_ADDRS_MAX	8
#define CONF_FILES_MAX	16
#define CONF_PATH_MAX	512
#define CONF_NETS_MAX	64
#define CONF_ZONES_MAX	8
#define CONF_ZONE_MAX	200
#define CONF_SPF_HELPERS_MAX	16
#define CONF_SPAM_SERVERS_MAX	8

/* The actions notice_actions may name. */
#define NOTICE_ACTIONS	(ACT_BIT(ACT_REJECT) | ACT_BIT(ACT_TEMPFAIL) | \
			ACT_BIT(ACT_QUARANTINE) | ACT_BIT(ACT_CLEAN) | \
			ACT_BIT(ACT_STRIP) | ACT_BIT(ACT_REDACT) | ACT_BIT(ACT_TAG))

enum bare_newline {
	BARE_REJECT,
	BARE_NORMALIZE,
};

/* What an outside client's VRFY or EXPN gets. */
enum probe_policy {
	PROBE_RELAY,		/* the server answers */
	PROBE_252,		/* 252: cannot verify, will try delivery */
	PROBE_502,		/* 502: not implemented */
};

enum scan_backend_kind {
	SCAN_BACKEND_WORKERS,	/* libclamav in sandboxed local workers */
	SCAN_BACKEND_CLAMD,	/* a clamd farm */
};

enum spam_engine_kind {
	SPAM_ENGINE_NONE,
	SPAM_ENGINE_RSPAMD,
	SPAM_ENGINE_SPAMD,
};

/* What STARTTLS gets: tls_policy and the per-server lists. */
enum tls_policy {
	TLS_PASSTHROUGH,	/* splice after the server's 220, unscanned */
	TLS_INTERCEPT,		/* both halves, when the server's key is held */
	TLS_STRIP,		/* STARTTLS hidden from the client */
	TLS_OUTBOUND,		/* both halves, a leaf minted by the local CA */
};

/* One milter of `milters`, in the order given. */
#define CONF_MILTERS_MAX	8
enum direction {
	DIR_BOTH,
	DIR_INBOUND,		/* clients outside inside_networks */
	DIR_OUTBOUND,		/* clients inside */
};
struct conf_milter {
	char			name[32];
	char			socket[CONF_PATH_MAX];	/* unix:P, inet:H:P */
	unsigned		timeout;		/* ms, per answer */
	enum action		def;	/* down: deliver, tempfail or reject */
	enum direction		direction;
};
struct conf_milters {
	struct conf_milter	m[CONF_MILTERS_MAX];
	int			n;
};

struct conf_addrs {
	struct sockaddr_storage	a[CONF_ADDRS_MAX];
	int			n;
};

struct conf_nets {
	struct cidr		net[CONF_NETS_MAX];
	int			n;
};

/* DNS list zones, each with its action: "zone:connect|rcpt|tag". */
struct conf_zones {
	char			zone[CONF_ZONES_MAX][CONF_ZONE_MAX];
	enum action		action[CONF_ZONES_MAX];	/* reject, connect, tag */
	int			n;
};

struct conf_words {
	char			w[CONF_FILES_MAX][CONF_PATH_MAX];
	int			n;
};

struct conf {
	struct conf_addrs	transparent_listen;
	struct conf_addrs	explicit_listen;
	struct conf_addrs	explicit_upstream;
	char			user[64];
	int			scan_enable;
	char			clamav_database_dir[CONF_PATH_MAX];
	struct conf_words	clamav_signatures;
	char			spool_dir[CONF_PATH_MAX];
	size_t			spool_memory_max;
	size_t			spool_memory_budget;
	size_t			spool_disk_budget;
	size_t			message_size_limit;
	size_t			max_recipients;
	size_t			max_command_line;
	size_t			max_text_line;
	size_t			max_reply_line;
	size_t			max_reply_lines;
	size_t			max_sessions;
	int			overload_bypass;
	unsigned		overload_bypass_time;
	size_t			max_sessions_per_client;
	size_t			max_connections_per_minute;
	size_t			client_v6_prefix;
	size_t			max_junk_commands;
	size_t			max_header_size;
	size_t			min_data_rate;
	unsigned		min_data_rate_grace;	/* ms */
	unsigned		timeout_request;
	enum bare_newline	bare_newline;
	struct conf_milters	milters;
	enum probe_policy	vrfy_outside;
	enum probe_policy	expn_outside;
	unsigned		timeout_connect;	/* all timeouts in ms */
	unsigned		timeout_greeting;
	unsigned		timeout_command;
	unsigned		timeout_reply;
	unsigned		timeout_data_init;
	unsigned		timeout_data_block;
	unsigned		timeout_data_final;
	unsigned		timeout_passthrough;
	enum scan_backend_kind	scan_backend;
	size_t			scan_workers;
	char			scan_user[64];
	unsigned		scan_timeout;
	size_t			scan_max_size;
	size_t			scan_max_file_size;
	size_t			scan_max_recursion;
	size_t			scan_max_files;
	unsigned		scan_max_time;
	size_t			scan_worker_memory;
	enum action		virus_action;
	enum action		encrypted_action;
	enum action		limits_action;
	enum action		scan_error_action;
	int			scan_header;
	char			quarantine_dir[CONF_PATH_MAX];
	int			quarantine_then_deliver;
	char			notice_to[256];
	char			notice_from[256];
	struct conf_words	notice_actions;
	char			notice_server[256];
	char			control_socket[CONF_PATH_MAX];
	char			control_admin_group[64];
	char			divert_bridge[16];
	char			divert_table[32];
	size_t			divert_mark;
	int			connect_before_accept;
	size_t			connect_before_accept_queue;
	size_t			connect_before_accept_per_source;
	enum tls_policy		tls_policy;
	struct conf_words	tls_intercept_servers;
	struct conf_words	tls_passthrough_servers;
	struct conf_words	tls_strip_servers;
	char			tls_keys_dir[CONF_PATH_MAX];
	unsigned		tls_key_recheck;	/* ms */
	struct conf_words	tls_outbound_clients;
	char			tls_outbound_ca_file[CONF_PATH_MAX];
	char			tls_outbound_ca_key_file[CONF_PATH_MAX];
	char			tls_outbound_verify_ca_file[CONF_PATH_MAX];
	char			tls_cert_file[CONF_PATH_MAX];
	char			tls_key_file[CONF_PATH_MAX];
	char			tls_ca_file[CONF_PATH_MAX];
	int			tls_verify;
	char			tls_upstream_name[256];
	char			tls_min_protocol[16];
	struct conf_words	clamd_servers;
	unsigned		clamd_connect_timeout;
	unsigned		clamd_health_interval;
	size_t			clamd_max_stream;
	/* pre-queue checks */
	struct conf_nets	inside_networks;
	enum direction		prequeue_apply;
	int			early_talker;
	unsigned		greet_pause;		/* ms, 0 = none */
	struct conf_words	dns_servers;
	unsigned		dns_timeout;
	struct conf_zones	dnsbl_zones;
	struct conf_zones	dnswl_zones;
	int			spf_enable;
	enum action		spf_fail_action;
	enum action		spf_softfail_action;
	unsigned		spf_timeout;
	size_t			spf_helpers;
	int			greylist_enable;
	unsigned		greylist_min;		/* seconds */
	unsigned		greylist_max;
	unsigned		greylist_expiry;
	char			greylist_file[CONF_PATH_MAX];
	char			greylist_redis[256];
	struct conf_nets	greylist_whitelist;
	char			content_rules[CONF_PATH_MAX];
	enum spam_engine_kind	spam_engine;
	struct conf_words	spam_servers;
	unsigned		spam_timeout;
	size_t			spam_max_size;
	double			spam_tag_score;		/* INFINITY: off */
	double			spam_quarantine_score;
	double			spam_reject_score;
	int			spam_unavailable_tempfail;
	/* message tracking */
	char			track_db[CONF_PATH_MAX];	/* "": off */
	unsigned		track_retention;	/* seconds */
	size_t			track_max_size;
	int			track_json;
	/* the web console (spork-console, its own process) */
	struct conf_addrs	console_listen;
	char			console_user[64];
	char			console_users_file[CONF_PATH_MAX];
	char			console_cert_file[CONF_PATH_MAX];
	char			console_key_file[CONF_PATH_MAX];
	unsigned		console_session_timeout;	/* ms */
	struct conf_nets	console_metrics_networks;
	/* the ICAP service (RFC 3507) for web proxies */
	struct conf_addrs	icap_listen;		/* empty: off */
	char			icap_service[64];	/* the URI's path */
	struct conf_nets	icap_networks;		/* who may use it */
	size_t			icap_max_connections;
	size_t			icap_max_body;
	size_t			icap_preview;
	size_t			icap_answer_after;	/* 0: hold all */
	unsigned		icap_timeout;		/* ms */
	char			icap_block_page[CONF_PATH_MAX];	/* "": built in */
	/* the journal of delivered mail */
	char			journal_inbound[CONF_PATH_MAX];	/* "": none */
	char			journal_outbound[CONF_PATH_MAX];
	char			journal_server[256];	/* ADDR:PORT */
	unsigned		journal_retention;	/* seconds, 0: forever */
	int			journal_failure_deliver;	/* else tempfail */
	int			log_level;	/* enum log_level */
	int			log_syslog;
	int			log_stderr;
};

void	conf_defaults(struct conf *);
const char *conf_key_name(size_t);
const char *conf_word(const char *key, int value);
int	conf_load(struct conf *, const char *path, char *err, size_t errlen);
int	conf_set(struct conf *, const char *key, const char *value,
	    char *err, size_t errlen);

#endif
