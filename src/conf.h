/* SPDX-License-Identifier: MIT */
#ifndef SPORK_CONF_H
#define SPORK_CONF_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#define CONF_ADDRS_MAX	8
#define CONF_FILES_MAX	16
#define CONF_PATH_MAX	512

enum bare_newline {
	BARE_REJECT,
	BARE_NORMALIZE,
};

struct conf_addrs {
	struct sockaddr_storage	a[CONF_ADDRS_MAX];
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
	size_t			max_header_size;
	size_t			min_data_rate;
	unsigned		timeout_request;
	int			bare_newline;
	unsigned		timeout_connect;	/* all timeouts in ms */
	unsigned		timeout_greeting;
	unsigned		timeout_command;
	unsigned		timeout_reply;
	unsigned		timeout_data_init;
	unsigned		timeout_data_block;
	unsigned		timeout_data_final;
	unsigned		timeout_passthrough;
	char			scan_backend[16];
	size_t			scan_workers;
	char			scan_user[64];
	unsigned		scan_timeout;
	size_t			scan_max_size;
	size_t			scan_max_file_size;
	size_t			scan_max_recursion;
	size_t			scan_max_files;
	unsigned		scan_max_time;
	size_t			scan_worker_memory;
	int			virus_action;
	int			encrypted_action;
	int			limits_action;
	int			scan_error_action;
	int			scan_header;
	char			quarantine_dir[CONF_PATH_MAX];
	int			quarantine_then_deliver;
	char			notice_to[256];
	char			notice_from[256];
	struct conf_words	notice_actions;
	char			notice_server[256];
	char			control_socket[CONF_PATH_MAX];
	char			divert_bridge[16];
	char			divert_table[32];
	size_t			divert_mark;
	char			tls_policy[16];
	struct conf_words	tls_intercept_servers;
	struct conf_words	tls_passthrough_servers;
	struct conf_words	tls_strip_servers;
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
	char			spam_engine[16];	/* none, rspamd, spamd */
	struct conf_words	spam_servers;
	unsigned		spam_timeout;
	size_t			spam_max_size;
	double			spam_tag_score;		/* INFINITY: off */
	double			spam_quarantine_score;
	double			spam_reject_score;
	int			spam_unavailable_tempfail;
	int			log_level;
	int			log_syslog;
	int			log_stderr;
};

void	conf_defaults(struct conf *);
const char *conf_key_name(size_t);
int	conf_load(struct conf *, const char *path, char *err, size_t errlen);
int	conf_set(struct conf *, const char *key, const char *value,
	    char *err, size_t errlen);

#endif
