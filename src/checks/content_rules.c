/* SPDX-License-Identifier: MIT */
/*
 * The content policy's rules file and its bookkeeping in the relay: parse
 * `rule NAME ...` lines at startup and at each reload (errors name the
 * line), decide a client's direction from inside_networks, keep the
 * per-rule counters and log one line per decision. A reload's rules become
 * active with the scan generation that applies them; a rules set is
 * reference counted, so the old one lives while an old generation still
 * answers with its rule numbers. Applying the rules to a message is
 * content_scan.c's, inside a scan worker; this module never sees a
 * message body. The rules are trusted (the admin's), results from a
 * worker are not: rule indices are checked against the table.
 *
 *   rule NAME [dir=any|inbound|outbound] MATCH action=ACTION [OPTION=VALUE]
 *
 * MATCH is `all`, `type=GLOB[,GLOB]`, `magic=GLOB[,GLOB]`, `ext=EXT[,EXT]`,
 * `size=SIZE`, `dlp=card|iban|ssn` or `regex=PCRE2`; values may be
 * "quoted" (with \" and \\ inside).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "content.h"
#include "log.h"

#define RULES_LINE_MAX	4096
#define TOKEN_MAX	2048

static struct content_rules	*content_rules_active;

static const char *const match_names[] = {
	[CM_ALL] = "all", [CM_TYPE] = "type", [CM_MAGIC] = "magic",
	[CM_EXT] = "ext", [CM_SIZE] = "size", [CM_DLP] = "dlp",
	[CM_REGEX] = "regex",
};

const char *
content_match_name(enum content_match m)
{
	return (unsigned)m < sizeof(match_names) / sizeof(match_names[0]) ?
	    match_names[m] : "unknown";
}

/* One word, or key="quoted value"; quotes removed. 0 at end of line. */
static int
token(char **pp, char *out, size_t outlen, char *err, size_t errlen)
{
	char	*p = *pp;
	size_t	 n = 0;
	int	 q = 0;

	p += strspn(p, " \t\r\n");
	if (*p == '\0' || *p == '#')
		return 0;
	for (; *p && (q || !strchr(" \t\r\n", *p)); p++) {
		if (*p == '"') {
			q = !q;
			continue;
		}
		if (q && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		if (n + 1 >= outlen) {
			snprintf(err, errlen, "word too long");
			return -1;
		}
		out[n++] = *p;
	}
	if (q) {
		snprintf(err, errlen, "unterminated quote");
		return -1;
	}
	out[n] = '\0';
	*pp = p;
	return 1;
}

static int
printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

/* "Name: value": a field name (RFC 5322 ftext) and a printable value. */
static int
header_ok(const char *h)
{
	const char	*c = strchr(h, ':');
	const char	*s;

	if (c == NULL || c == h || !printable(h))
		return 0;
	for (s = h; s < c; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return 0;
	return 1;
}

static int
parse_size(const char *v, size_t *out)
{
	unsigned long long	n;
	char			*ep;

	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	n = strtoull(v, &ep, 10);
	if (errno)
		return -1;
	switch (*ep | 0x20) {
	case 'k': n *= 1024; ep++; break;
	case 'm': n *= 1024 * 1024; ep++; break;
	case 'g': n *= 1024ULL * 1024 * 1024; ep++; break;
	}
	if (*ep != '\0')
		return -1;
	*out = (size_t)n;
	return 0;
}

static int
set_str(char *dst, size_t cap, const char *v, const char *key, char *err,
    size_t errlen)
{
	if (strlen(v) >= cap) {
		snprintf(err, errlen, "%s too long (max %zu)", key, cap - 1);
		return -1;
	}
	snprintf(dst, cap, "%s", v);
	return 0;
}

static int
rule_match(struct content_rule *r, const char *k, const char *v, int *have,
    char *err, size_t errlen)
{
	PCRE2_SIZE	 eoff;
	int		 ecode;
	char		 msg[256];
	size_t		 i;

	if (*have) {
		snprintf(err, errlen, "one match per rule ('%s' is a second)",
		    k);
		return -1;
	}
	*have = 1;
	for (i = CM_TYPE; i < sizeof(match_names) / sizeof(match_names[0]);
	    i++)
		if (strcmp(k, match_names[i]) == 0)
			break;
	r->match = (enum content_match)i;
	switch (r->match) {
	case CM_TYPE:
	case CM_MAGIC:
	case CM_EXT:
		if (*v == '\0')
			break;
		if (set_str(r->pattern, sizeof(r->pattern), v, k, err,
		    errlen) == -1)
			return -1;
		/* Types and extensions compare without case. */
		for (i = 0; r->pattern[i]; i++)
			r->pattern[i] = (char)tolower((unsigned char)
			    r->pattern[i]);
		return 0;
	case CM_SIZE:
		if (parse_size(v, &r->size) == -1)
			break;
		return 0;
	case CM_DLP:
		if (dlp_kind_parse(v, &r->dlp) == -1) {
			snprintf(err, errlen, "dlp: want card, iban or ssn, not "
			    "'%s'", v);
			return -1;
		}
		return 0;
	case CM_REGEX:
		if (set_str(r->pattern, sizeof(r->pattern), v, k, err,
		    errlen) == -1)
			return -1;
		r->re = pcre2_compile((PCRE2_SPTR)v, PCRE2_ZERO_TERMINATED, 0,
		    &ecode, &eoff, NULL);
		if (r->re == NULL) {
			pcre2_get_error_message(ecode, (PCRE2_UCHAR *)msg,
			    sizeof(msg));
			snprintf(err, errlen, "regex at offset %zu: %s",
			    (size_t)eoff, msg);
			return -1;
		}
		return 0;
	default:
		snprintf(err, errlen, "unknown key '%s'", k);
		return -1;
	}
	snprintf(err, errlen, "bad %s '%s'", k, v);
	return -1;
}

/* Which actions make sense for which kind of match. */
static int
rule_check(const struct content_rule *r, char *err, size_t errlen)
{
	int	ok;

	switch (r->action) {
	case ACT_STRIP:
		ok = r->match != CM_ALL && r->match != CM_DLP &&
		    r->match != CM_REGEX;
		break;
	case ACT_REDACT:
		ok = r->match == CM_DLP || r->match == CM_REGEX;
		break;
	case ACT_FOOTER:
		ok = r->match == CM_ALL && r->footer[0] != '\0';
		break;
	case ACT_NONE:
		snprintf(err, errlen, "no action= (reject, quarantine, strip, "
		    "redact, tag or footer)");
		return -1;
	default:
		ok = 1;
	}
	if (!ok) {
		snprintf(err, errlen, "action %s does not go with %s%s",
		    action_name(r->action), content_match_name(r->match),
		    r->action == ACT_FOOTER ? " (footer needs all and footer=)" :
		    "");
		return -1;
	}
	if (r->reply[0] != '\0' && !(r->reply[0] == '5' &&
	    isdigit((unsigned char)r->reply[1]) &&
	    isdigit((unsigned char)r->reply[2]) && r->reply[3] == ' ')) {
		snprintf(err, errlen, "reply must be a 5xx reply line");
		return -1;
	}
	return 0;
}

int
content_rules_parse_line(struct content_rules *rs, char *line, char *err,
    size_t errlen)
{
	struct content_rule	*r;
	char			 tok[TOKEN_MAX], *p = line, *v;
	int			 rc, have = 0, i;
	size_t			 j;

	if ((rc = token(&p, tok, sizeof(tok), err, errlen)) <= 0)
		return rc;
	if (strcmp(tok, "rule") != 0) {
		snprintf(err, errlen, "want 'rule NAME ...', not '%.40s'", tok);
		return -1;
	}
	if (rs->n == CONTENT_RULES_MAX) {
		snprintf(err, errlen, "too many rules (at most %d)",
		    CONTENT_RULES_MAX);
		return -1;
	}
	r = &rs->r[rs->n];
	memset(r, 0, sizeof(*r));
	if (token(&p, tok, sizeof(tok), err, errlen) <= 0 || strchr(tok, '=') ||
	    strlen(tok) >= sizeof(r->name)) {
		snprintf(err, errlen, "rule needs a name (up to %zu characters)",
		    sizeof(r->name) - 1);
		return -1;
	}
	for (j = 0; tok[j]; j++)
		if (!isalnum((unsigned char)tok[j]) && !strchr("-_.", tok[j])) {
			snprintf(err, errlen, "rule name: letters, digits, "
			    "'-', '_' and '.' only");
			return -1;
		}
	for (i = 0; i < rs->n; i++)
		if (strcmp(rs->r[i].name, tok) == 0) {
			snprintf(err, errlen, "rule %s defined twice", tok);
			return -1;
		}
	memcpy(r->name, tok, strlen(tok) + 1);	/* length checked above */
	while ((rc = token(&p, tok, sizeof(tok), err, errlen)) > 0) {
		if (strcmp(tok, "all") == 0) {
			if (have) {
				snprintf(err, errlen, "one match per rule");
				goto fail;
			}
			have = 1;
			r->match = CM_ALL;
			continue;
		}
		if ((v = strchr(tok, '=')) == NULL) {
			snprintf(err, errlen, "want KEY=VALUE, not '%.40s'",
			    tok);
			goto fail;
		}
		*v++ = '\0';
		if (!printable(v)) {
			snprintf(err, errlen, "%s: control characters", tok);
			goto fail;
		}
		if (strcmp(tok, "dir") == 0) {
			if (strcmp(v, "any") == 0)
				r->dir = CD_ANY;
			else if (strcmp(v, "inbound") == 0)
				r->dir = CD_INBOUND;
			else if (strcmp(v, "outbound") == 0)
				r->dir = CD_OUTBOUND;
			else {
				snprintf(err, errlen, "dir: want any, inbound "
				    "or outbound");
				goto fail;
			}
		} else if (strcmp(tok, "action") == 0) {
			if (action_parse(v, CONTENT_ACTIONS,
			    &r->action) == -1) {
				snprintf(err, errlen, "action: want reject, "
				    "quarantine, strip, redact, tag or footer");
				goto fail;
			}
		} else if (strcmp(tok, "reply") == 0) {
			if (set_str(r->reply, sizeof(r->reply), v, tok, err,
			    errlen) == -1)
				goto fail;
		} else if (strcmp(tok, "subject_tag") == 0) {
			if (set_str(r->subject_tag, sizeof(r->subject_tag), v,
			    tok, err, errlen) == -1)
				goto fail;
		} else if (strcmp(tok, "header") == 0 ||
		    strcmp(tok, "set_header") == 0) {
			if (!header_ok(v)) {
				snprintf(err, errlen, "%s: want \"Name: value\"",
				    tok);
				goto fail;
			}
			if (set_str(tok[0] == 'h' ? r->header : r->set_header,
			    sizeof(r->header), v, tok, err, errlen) == -1)
				goto fail;
		} else if (strcmp(tok, "footer") == 0) {
			if (set_str(r->footer, sizeof(r->footer), v, tok, err,
			    errlen) == -1)
				goto fail;
		} else if (rule_match(r, tok, v, &have, err, errlen) == -1)
			goto fail;
	}
	if (rc == -1)
		goto fail;
	if (!have) {
		snprintf(err, errlen, "rule %s matches nothing (all, type=, "
		    "magic=, ext=, size=, dlp= or regex=)", r->name);
		goto fail;
	}
	if (rule_check(r, err, errlen) == -1)
		goto fail;
	rs->n++;
	return 1;
fail:
	pcre2_code_free(r->re);
	r->re = NULL;
	return -1;
}

int
content_net_parse(const char *s, struct content_net *n)
{
	char		 a[INET6_ADDRSTRLEN + 8], *slash;
	unsigned long	 bits;
	char		*ep;

	if (strlen(s) >= sizeof(a))
		return -1;
	snprintf(a, sizeof(a), "%s", s);
	memset(n, 0, sizeof(*n));
	if ((slash = strchr(a, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, a, n->addr) == 1) {
		n->family = AF_INET;
		n->bits = 32;
	} else if (inet_pton(AF_INET6, a, n->addr) == 1) {
		n->family = AF_INET6;
		n->bits = 128;
	} else
		return -1;
	if (slash != NULL) {
		errno = 0;
		bits = strtoul(slash, &ep, 10);
		if (errno || *slash == '\0' || *ep != '\0' || bits > n->bits)
			return -1;
		n->bits = (unsigned)bits;
	}
	return 0;
}

struct content_rules *
content_rules_load(const char *path, const char *const *nets, int nnets,
    char *err, size_t errlen)
{
	struct content_rules	*rs;
	FILE			*fp;
	char			 line[RULES_LINE_MAX], sub[512];
	size_t			 lineno = 0;
	int			 i;

	if ((rs = calloc(1, sizeof(*rs))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rs->refs = 1;
	snprintf(rs->path, sizeof(rs->path), "%s", path);
	for (i = 0; i < nnets; i++) {
		if (rs->nnets == CONTENT_NETS_MAX ||
		    content_net_parse(nets[i], &rs->nets[rs->nnets]) == -1) {
			snprintf(err, errlen, "inside_networks: bad network "
			    "'%s' (want ADDR or ADDR/BITS)", nets[i]);
			goto fail;
		}
		rs->nnets++;
	}
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strlen(line) == sizeof(line) - 1 &&
		    line[sizeof(line) - 2] != '\n') {
			snprintf(err, errlen, "%s:%zu: line too long", path,
			    lineno);
			fclose(fp);
			goto fail;
		}
		if (content_rules_parse_line(rs, line, sub, sizeof(sub)) ==
		    -1) {
			snprintf(err, errlen, "%s:%zu: %s", path, lineno, sub);
			fclose(fp);
			goto fail;
		}
	}
	fclose(fp);
	return rs;
fail:
	content_rules_free(rs);
	return NULL;
}

struct content_rules *
content_rules_ref(struct content_rules *rs)
{
	if (rs != NULL)
		rs->refs++;
	return rs;
}

void
content_rules_free(struct content_rules *rs)
{
	int	i;

	if (rs == NULL)
		return;
	/* refs 0: a set built by hand (the tests), with one owner. */
	if (rs->refs > 1) {
		rs->refs--;
		return;
	}
	for (i = 0; i < rs->n; i++)
		pcre2_code_free(rs->r[i].re);
	free(rs);
}

static int
net_contains(const struct content_net *n, const uint8_t *a)
{
	unsigned	full = n->bits / 8, rest = n->bits % 8;
	uint8_t		mask;

	if (memcmp(n->addr, a, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (n->addr[full] & mask) == (a[full] & mask);
}

/* 1: the client is inside (its mail is outbound), 0: outside. */
int
content_outbound(const struct content_rules *rs,
    const struct sockaddr_storage *ss)
{
	const struct sockaddr_in6	*s6 = (const void *)ss;
	const struct sockaddr_in	*s4 = (const void *)ss;
	const uint8_t			*a;
	int				 fam = ss->ss_family, i;

	if (fam == AF_INET)
		a = (const uint8_t *)&s4->sin_addr;
	else if (fam == AF_INET6) {
		a = s6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			fam = AF_INET;
			a += 12;
		}
	} else
		return 0;
	for (i = 0; i < rs->nnets; i++)
		if (rs->nets[i].family == fam && net_contains(&rs->nets[i], a))
			return 1;
	return 0;
}

/* The index of the rule called name, or -1. */
int
content_rules_find(const struct content_rules *rs, const char *name)
{
	int	i;

	for (i = 0; rs != NULL && i < rs->n; i++)
		if (strcmp(rs->r[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * A rule keeps its counters across a reload as long as it keeps its name
 * (even if its match or action changed: the name is what the admin sees);
 * a new name starts from zero.
 */
void
content_set_active(struct content_rules *rs)
{
	struct content_rules	*old = content_rules_active;
	int			 i, j;

	if (rs == old)
		return;
	if (rs != NULL && old != NULL) {
		rs->checked = old->checked;
		rs->errors = old->errors;
		rs->rewritten = old->rewritten;
		for (i = 0; i < rs->n; i++) {
			if ((j = content_rules_find(old, rs->r[i].name)) == -1)
				continue;
			rs->r[i].hits = old->r[j].hits;
			rs->r[i].matches = old->r[j].matches;
		}
		log_info(NULL, "content rules active path=%s rules=%d "
		    "previous=%d", rs->path, rs->n, old->n);
	}
	content_rules_active = content_rules_ref(rs);
	content_rules_free(old);
}

struct content_rules *
content_active(void)
{
	return content_rules_active;
}

/*
 * Counters, and one log line per rule that matched, then the outcome. The
 * log names the rules that judged the message; the counters are the
 * active set's, by name, when a reload came in between.
 */
void
content_account(const char *sid, const struct content_result *res,
    uint64_t size, uint64_t new_size)
{
	struct content_rules	*rs = content_rules_active;
	const struct content_rules *by = res->rules ? res->rules : rs;
	static const char *const dkim[] = { "none", "kept", "broken" };
	const char		*dir = res->outbound ? "outbound" : "inbound";
	const struct content_rule *r;
	int			 i, j;

	if (rs == NULL || !res->checked)
		return;
	rs->checked++;
	if (res->action == ACT_ERROR) {
		rs->errors++;
		log_warn(sid, "content error direction=%s: %s", dir,
		    res->error);
		return;
	}
	for (i = 0; i < by->n; i++) {
		if (!(res->hits & (1ULL << i)))
			continue;
		r = &by->r[i];
		j = by == rs ? i : content_rules_find(rs, r->name);
		if (j != -1) {
			rs->r[j].hits++;
			rs->r[j].matches += res->count[i];
		}
		log_info(sid, "content rule=%s match=%s%s%s action=%s "
		    "direction=%s count=%u", r->name,
		    content_match_name(r->match), r->match == CM_DLP ? ":" : "",
		    r->match == CM_DLP ? dlp_kind_name(r->dlp) : "",
		    action_name(r->action), dir, res->count[i]);
	}
	if (res->hits == 0)
		return;
	if (res->rewritten)
		rs->rewritten++;
	log_info(sid, "content decision action=%s rule=%s direction=%s "
	    "where=\"%s\" rewritten=%s size=%llu new_size=%llu dkim=%s",
	    action_name(res->action),
	    res->rule >= 0 && res->rule < by->n ? by->r[res->rule].name : "-",
	    dir, res->where, res->rewritten ? (res->body_changed ? "body" :
	    "headers") : "no", (unsigned long long)size,
	    (unsigned long long)(res->rewritten ? new_size : size),
	    dkim[res->dkim <= CDKIM_BROKEN ? res->dkim : 0]);
}

void
content_status(struct buf *out)
{
	struct content_rules	*rs = content_rules_active;
	int			 i;

	if (rs == NULL) {
		buf_printf(out, "content.rules=0\n");
		return;
	}
	buf_printf(out, "content.rules=%d\ncontent.checked=%llu\n"
	    "content.rewritten=%llu\ncontent.errors=%llu\n", rs->n,
	    (unsigned long long)rs->checked,
	    (unsigned long long)rs->rewritten,
	    (unsigned long long)rs->errors);
	for (i = 0; i < rs->n; i++)
		buf_printf(out, "content.rule name=%s match=%s action=%s "
		    "hits=%llu matches=%llu\n", rs->r[i].name,
		    content_match_name(rs->r[i].match),
		    action_name(rs->r[i].action),
		    (unsigned long long)rs->r[i].hits,
		    (unsigned long long)rs->r[i].matches);
}
