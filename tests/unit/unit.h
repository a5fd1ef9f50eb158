/* SPDX-License-Identifier: MIT */
#ifndef SPORK_UNIT_H
#define SPORK_UNIT_H

#include <stddef.h>
#include <stdio.h>

extern int	unit_failed;
extern int	unit_checks;
extern const char *unit_datadir;

#define CHECK(cond, ...) do {						\
	unit_checks++;							\
	if (!(cond)) {							\
		unit_failed++;						\
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__,	\
		    #cond);						\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)

/* Helpers the tests share (main.c). */
char	*unit_slurp(const char *path, size_t max, size_t *len);
int	 unit_crlf_only(const char *, size_t);

void	test_smtp_proto(void);
void	test_smtp_data(void);
void	test_conf(void);
void	test_spool(void);
void	test_nft(void);
void	test_sandbox(void);
void	test_mime(void);
void	test_synq(void);
void	test_prequeue(void);
void	test_content(void);
void	test_spam(void);
void	test_hostport(void);
void	test_tls(void);
void	test_verdict_policy(void);
void	test_buf(void);
void	test_ratelimit(void);
void	test_milter(void);
void	test_track(void);
void	test_journal(void);
void	test_icap_proto(void);

#endif
