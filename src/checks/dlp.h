/* SPDX-License-Identifier: MIT */
#ifndef SPORK_DLP_H
#define SPORK_DLP_H

#include <stddef.h>

enum dlp_kind {
	DLP_CARD,		/* payment card number, Luhn-checked */
	DLP_IBAN,		/* IBAN, country length and mod-97 checked */
	DLP_SSN,		/* US Social Security number, AAA-GG-SSSS */
};

/* A match at [off, off + len) of the text; return -1 to stop. */
typedef int	dlp_match_fn(void *arg, size_t off, size_t len);

int		 dlp_kind_parse(const char *, enum dlp_kind *);
const char	*dlp_kind_name(enum dlp_kind);
unsigned	 dlp_find(enum dlp_kind, const char *text, size_t len,
		    dlp_match_fn *, void *arg);
void		 dlp_redact(enum dlp_kind, char *match, size_t len);
int		 dlp_luhn(const char *digits, size_t n);
int		 dlp_iban_valid(const char *compact, size_t n);

#endif
