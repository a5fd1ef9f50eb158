/* SPDX-License-Identifier: MIT */
/*
 * Data detectors for the content policy: payment card numbers (13 to 19
 * digits, grouped by single spaces or dashes, issuer prefix and Luhn
 * checked), IBANs (country code, that country's length, ISO 7064 mod 97)
 * and US Social Security numbers in the AAA-GG-SSSS form (SSA rules: no
 * area 000, 666 or 9xx, no group 00, no serial 0000, not the two numbers
 * published in advertising). Pure functions over a byte buffer, in any
 * ASCII-compatible charset; they allocate nothing and trust nothing.
 * A match must stand alone: no letter or digit directly before or after.
 */
#include <string.h>

#include "dlp.h"

#define CARD_MIN	13
#define CARD_MAX	19
#define IBAN_MIN	15
#define IBAN_MAX	34

/* Country code and IBAN length (the SWIFT registry). */
static const char iban_lengths[] =
    "AD24AE23AL28AT20AZ28BA20BE16BG22BH22BR29BY28CH21CR22CY28CZ24DE22"
    "DK18DO28EE20EG29ES24FI18FO18FR27GB22GE22GI23GL18GR27GT28HR21HU28"
    "IE22IL23IQ23IS26IT27JO30KW30KZ20LB28LC32LI21LT20LU20LV21MC27MD24"
    "ME22MK19MR27MT31MU30NL18NO15PK24PL28PS29PT25QA29RO24RS22SA24SC31"
    "SE24SI19SK24SM27ST25SV28TL23TN24TR26UA29VA22VG24XK20";

static const char *const dlp_names[] = {
	[DLP_CARD] = "card", [DLP_IBAN] = "iban", [DLP_SSN] = "ssn",
};

int
dlp_kind_parse(const char *s, enum dlp_kind *k)
{
	size_t	i;

	for (i = 0; i < sizeof(dlp_names) / sizeof(dlp_names[0]); i++)
		if (strcmp(s, dlp_names[i]) == 0) {
			*k = (enum dlp_kind)i;
			return 0;
		}
	return -1;
}

const char *
dlp_kind_name(enum dlp_kind k)
{
	return dlp_names[k];
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static int
is_alnum(char c)
{
	return is_digit(c) || is_upper(c) || (c >= 'a' && c <= 'z');
}

int
dlp_luhn(const char *d, size_t n)
{
	unsigned	sum = 0, v;
	size_t		i;

	for (i = 0; i < n; i++) {
		v = (unsigned)(d[n - 1 - i] - '0');
		if (i % 2 == 1 && (v *= 2) > 9)
			v -= 9;
		sum += v;
	}
	return n > 0 && sum % 10 == 0;
}

/* Issuers' prefixes: Visa, Mastercard, Amex, Discover, JCB, Diners, ... */
static int
card_prefix(const char *d, size_t n)
{
	int	two = (d[0] - '0') * 10 + (d[1] - '0');

	switch (d[0]) {
	case '4':
		return n == 13 || n == 16 || n == 19;
	case '5':
		return two >= 51 && two <= 55 && n == 16;
	case '2':
		return two >= 22 && two <= 27 && n == 16;
	case '3':
		return ((two == 34 || two == 37) && n == 15) ||
		    (two == 35 && n >= 16) || ((two == 30 || two == 36 ||
		    two == 38) && n >= 14);
	case '6':
		return n >= 16;
	default:
		return 0;
	}
}

static int
all_same(const char *d, size_t n)
{
	size_t	i;

	for (i = 1; i < n; i++)
		if (d[i] != d[0])
			return 0;
	return 1;
}

/* A card number starting at p[i]; its length in the text, or 0. */
static size_t
card_at(const char *p, size_t len, size_t i)
{
	char	d[CARD_MAX + 1];
	size_t	n = 0, j = i, end = i;

	while (j < len) {
		if (is_digit(p[j])) {
			if (n == CARD_MAX + 1)
				return 0;	/* too long a run: not a card */
			d[n++] = p[j++];
			end = j;
		} else if ((p[j] == ' ' || p[j] == '-') && j + 1 < len &&
		    is_digit(p[j + 1]) && n > 0)
			j++;
		else
			break;
	}
	if (n < CARD_MIN || n > CARD_MAX || (end < len && is_alnum(p[end])))
		return 0;
	if (!card_prefix(d, n) || all_same(d, n) || !dlp_luhn(d, n))
		return 0;
	return end - i;
}

int
dlp_iban_valid(const char *s, size_t n)
{
	unsigned	rem = 0;
	size_t		i, k;
	char		c;

	if (n < IBAN_MIN || n > IBAN_MAX)
		return 0;
	/* Rearranged: BBAN first, then country and check digits. */
	for (i = 0; i < n; i++) {
		c = s[(i + 4) % n];
		if (is_digit(c))
			rem = (rem * 10 + (unsigned)(c - '0')) % 97;
		else if (is_upper(c)) {
			k = (size_t)(c - 'A' + 10);
			rem = (rem * 100 + (unsigned)k) % 97;
		} else
			return 0;
	}
	return rem == 1;
}

static size_t
iban_length(const char *cc)
{
	const char	*t;

	for (t = iban_lengths; *t; t += 4)
		if (t[0] == cc[0] && t[1] == cc[1])
			return (size_t)((t[2] - '0') * 10 + (t[3] - '0'));
	return 0;
}

/* An IBAN starting at p[i], compact or in groups of four. */
static size_t
iban_at(const char *p, size_t len, size_t i)
{
	char	c[IBAN_MAX];
	size_t	want, n = 0, j = i;

	if (i + 4 > len || !is_upper(p[i]) || !is_upper(p[i + 1]) ||
	    !is_digit(p[i + 2]) || !is_digit(p[i + 3]))
		return 0;
	if ((want = iban_length(p + i)) == 0)
		return 0;
	while (j < len && n < want) {
		if (is_digit(p[j]) || is_upper(p[j]))
			c[n++] = p[j++];
		else if (p[j] == ' ' && n % 4 == 0 && j + 1 < len &&
		    is_alnum(p[j + 1]))
			j++;
		else
			break;
	}
	if (n != want || (j < len && is_alnum(p[j])))
		return 0;
	return dlp_iban_valid(c, n) ? j - i : 0;
}

static int
digits(const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (!is_digit(p[i]))
			return 0;
	return 1;
}

static size_t
ssn_at(const char *p, size_t len, size_t i)
{
	const char	*s = p + i;
	int		 area;

	if (i + 11 > len || !digits(s, 3) || s[3] != '-' ||
	    !digits(s + 4, 2) || s[6] != '-' || !digits(s + 7, 4))
		return 0;
	if (i + 11 < len && (is_alnum(s[11]) || s[11] == '-'))
		return 0;
	area = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (area == 0 || area == 666 || area >= 900 ||
	    memcmp(s + 4, "00", 2) == 0 || memcmp(s + 7, "0000", 4) == 0 ||
	    memcmp(s, "078-05-1120", 11) == 0 ||
	    memcmp(s, "219-09-9999", 11) == 0)
		return 0;
	return 11;
}

unsigned
dlp_find(enum dlp_kind k, const char *p, size_t len, dlp_match_fn *fn,
    void *arg)
{
	unsigned	found = 0;
	size_t		i = 0, m;

	while (i < len) {
		/* Only at the start of a word, and not inside a number. */
		if (i > 0 && (is_alnum(p[i - 1]) || (k == DLP_SSN &&
		    p[i - 1] == '-'))) {
			i++;
			continue;
		}
		switch (k) {
		case DLP_CARD:
			m = is_digit(p[i]) ? card_at(p, len, i) : 0;
			break;
		case DLP_IBAN:
			m = iban_at(p, len, i);
			break;
		case DLP_SSN:
			m = ssn_at(p, len, i);
			break;
		default:
			m = 0;
		}
		if (m == 0) {
			i++;
			continue;
		}
		found++;
		if (fn != NULL && fn(arg, i, m) == -1)
			break;
		i += m;
	}
	return found;
}

/*
 * Overwrite a match in place, same length: the digits of a card number
 * or an SSN, everything after the country code of an IBAN.
 */
void
dlp_redact(enum dlp_kind k, char *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (k == DLP_IBAN ? (i >= 2 && is_alnum(p[i])) : is_digit(p[i]))
			p[i] = 'X';
}
