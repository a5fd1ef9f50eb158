/* SPDX-License-Identifier: MIT */
#ifndef SPORK_LOG_H
#define SPORK_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

void	log_init(const char *ident, int to_syslog, int to_stderr);
void	log_set_level(enum log_level);
int	log_level_parse(const char *, enum log_level *);
void	log_msg(enum log_level, const char *sid, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#define log_err(sid, ...)	log_msg(LOG_LVL_ERR, sid, __VA_ARGS__)
#define log_warn(sid, ...)	log_msg(LOG_LVL_WARN, sid, __VA_ARGS__)
#define log_info(sid, ...)	log_msg(LOG_LVL_INFO, sid, __VA_ARGS__)
#define log_debug(sid, ...)	log_msg(LOG_LVL_DEBUG, sid, __VA_ARGS__)

#endif
