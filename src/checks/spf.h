/* SPDX-License-Identifier: MIT */
#ifndef SPORK_SPF_H
#define SPORK_SPF_H

#include <sys/socket.h>

#include "conf.h"
#include "ev.h"

enum spf_res {
	SPFR_NONE,
	SPFR_NEUTRAL,
	SPFR_PASS,
	SPFR_FAIL,
	SPFR_SOFTFAIL,
	SPFR_TEMPERROR,
	SPFR_PERMERROR,
	SPFR_COUNT
};

struct spf_result {
	enum spf_res	result;
	char		header[960];	/* "Received-SPF: ..." without CRLF */
	char		comment[320];	/* for an SMTP reply */
};

struct spf_query;
typedef void	spf_cb(void *arg, const struct spf_result *);

int	spf_init(struct ev_loop *, const struct conf *, char *err,
	    size_t errlen);
struct spf_query *spf_check(const struct sockaddr_storage *client,
	    const char *helo, const char *sender, spf_cb *, void *arg);
void	spf_cancel(struct spf_query *);
const char *spf_res_name(enum spf_res);

#endif
