/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per event, session id first, then key=value fields.
 * Lines go to stderr (with a timestamp) and/or syslog (mail facility).
 * This module knows nothing about SMTP; it never allocates.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

#define LOG_LINE_MAX	2048

static int		 log_syslog;
static int		 log_stderr = 1;
static char		 log_tag[32] = "sporkd";	/* on stderr lines */
static enum log_level	 log_current = LOG_LVL_INFO;

static const char *const log_names[] = {
	[LOG_LVL_ERR] = "error",
	[LOG_LVL_WARN] = "warning",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

static const int log_prio[] = {
	[LOG_LVL_ERR] = LOG_ERR,
	[LOG_LVL_WARN] = LOG_WARNING,
	[LOG_LVL_INFO] = LOG_INFO,
	[LOG_LVL_DEBUG] = LOG_DEBUG,
};

void
log_init(const char *ident, int to_syslog, int to_stderr)
{
	log_syslog = to_syslog;
	log_stderr = to_stderr;
	/* sporkd's helpers write under sporkd's name; other programs
	 * under their own. */
	snprintf(log_tag, sizeof(log_tag), "%s",
	    strncmp(ident, "sporkd", 6) == 0 ? "sporkd" : ident);
	/* Again in a child: a fresh connection under the child's name. */
	closelog();
	if (log_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_level(enum log_level lvl)
{
	log_current = lvl;
}

int
log_level_parse(const char *s, enum log_level *lvl)
{
	size_t	i;

	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (strcmp(s, log_names[i]) == 0) {
			*lvl = (enum log_level)i;
			return 0;
		}
	return -1;
}

static void
log_emit(enum log_level lvl, const char *sid, const char *fmt, va_list ap)
{
	char		 line[LOG_LINE_MAX];
	char		 stamp[32];
	struct timespec	 ts;
	struct tm	 tm;
	char		*p;
	int		 n = 0;

	if (sid != NULL)
		n = snprintf(line, sizeof(line), "%s ", sid);
	if (n < 0)
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One event, one line: a control byte from anyone's input (a
	 * request path, a reply) can neither start a forged line nor drive
	 * a terminal. */
	for (p = line; *p != '\0'; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			*p = '?';

	if (log_stderr) {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s[%s] %s\n", stamp,
		    ts.tv_nsec / 1000000, log_tag, log_names[lvl], line);
	}
	if (log_syslog)
		syslog(log_prio[lvl], "%s", line);
}

void
log_msg(enum log_level lvl, const char *sid, const char *fmt, ...)
{
	va_list	ap;

	if (lvl > log_current)
		return;
	va_start(ap, fmt);
	log_emit(lvl, sid, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, NULL, fmt, ap);
	va_end(ap);
	abort();
}
