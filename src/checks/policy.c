/* SPDX-License-Identifier: MIT */
/*
 * Policy: from a scan result and the configuration to an action, the
 * client's reply and the headers added to what is delivered. The relay
 * carries the decision out; nothing here touches a socket. Nothing that
 * was not scanned clean is ever described as clean.
 */
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "policy.h"

/*
 * Headers from a worker are prepended as they are: only whole CRLF lines
 * of printable text, the first not a continuation, no blank line.
 */
static int
headers_sane(const char *h)
{
	const char	*s;

	if (*h == ' ' || *h == '\t')
		return 0;
	for (s = h; *s; s++) {
		if (s[0] == '\r' && s[1] == '\n') {
			if (s[2] == '\r' || s == h)
				return 0;
			s++;
			continue;
		}
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return 0;
		if ((unsigned char)*s == 0x7f)
			return 0;
	}
	return s == h || (s - h >= 2 && s[-2] == '\r' && s[-1] == '\n');
}

/*
 * The content policy's verdict, for a message the virus policy would
 * deliver: reject or quarantine it, or deliver it (possibly rewritten)
 * with the content headers on top. A check that failed is a scan error.
 */
static void
policy_content(const struct conf *c, const struct scan_result *r,
    struct policy_decision *d)
{
	const struct content_result	*cr = &r->content;
	const struct content_rules	*rs = cr->rules ? cr->rules :
					    content_active();
	size_t				 l;

	if (!cr->checked || !d->deliver)
		return;
	switch (cr->action) {
	case ACT_ERROR:
		d->content = 1;
		d->action = (enum action)c->scan_error_action;
		d->deliver = d->action == ACT_TAG;
		snprintf(d->reply, sizeof(d->reply), "%s",
		    d->action == ACT_TEMPFAIL ? "451 4.3.0 Error: content check "
		    "failed, try again later" : "554 5.3.0 Error: content check "
		    "failed");
		if (d->action == ACT_QUARANTINE)
			d->deliver = c->quarantine_then_deliver;
		return;
	case ACT_REJECT:
	case ACT_QUARANTINE:
		d->content = 1;
		d->action = cr->action == ACT_REJECT ? ACT_REJECT :
		    ACT_QUARANTINE;
		/* A virus already removed stays removed: what may be
		 * delivered after the quarantine is the cleaned copy. */
		d->deliver = cr->action == ACT_QUARANTINE &&
		    c->quarantine_then_deliver;
		if (rs != NULL && cr->rule >= 0 && cr->rule < rs->n &&
		    rs->r[cr->rule].reply[0] != '\0')
			snprintf(d->reply, sizeof(d->reply), "%s",
			    rs->r[cr->rule].reply);
		else
			snprintf(d->reply, sizeof(d->reply), "550 5.7.1 Message "
			    "rejected by content policy (%s)", rs != NULL &&
			    cr->rule >= 0 && cr->rule < rs->n ?
			    rs->r[cr->rule].name : "rule");
		break;
	case ACT_NONE:
		return;
	default:
		d->content = 1;
		d->rewritten = cr->rewritten;
		break;
	}
	if (d->deliver && headers_sane(cr->headers)) {
		l = strlen(d->header);
		snprintf(d->header + l, sizeof(d->header) - l, "%s",
		    cr->headers);
	}
}

/* Header values stay one line of printable ASCII whatever the name. */
static void
sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

void
policy_decide(const struct conf *c, const struct scan_result *r, int scanned,
    struct policy_decision *d)
{
	char	name[SCAN_NAME_MAX], engine[SCAN_ENGINE_MAX];
	int	a;

	memset(d, 0, sizeof(*d));
	if (!scanned) {
		d->action = ACT_DELIVER;
		d->deliver = 1;
		return;
	}
	snprintf(name, sizeof(name), "%s", r->name);
	snprintf(engine, sizeof(engine), "%s", r->engine);
	sanitize(name);
	sanitize(engine);

	switch (r->verdict) {
	case SCAN_CLEAN:
		a = ACT_DELIVER;
		break;
	case SCAN_VIRUS:
		a = c->virus_action;
		break;
	case SCAN_ENCRYPTED:
		a = c->encrypted_action;
		break;
	case SCAN_LIMITS:
		a = c->limits_action;
		break;
	default:
		a = c->scan_error_action;
		break;
	}
	/* Nothing cleaned (no part found, or what was left still not
	 * clean): the virus is rejected as if clean were not configured. */
	if (a == ACT_CLEAN && !(r->verdict == SCAN_VIRUS && r->cleaned))
		a = ACT_REJECT;
	d->action = (enum action)a;

	switch (r->verdict) {
	case SCAN_VIRUS:
		snprintf(d->reply, sizeof(d->reply), "%s Message %s: virus "
		    "found: %s", a == ACT_TEMPFAIL ? "451 4.7.1" : "550 5.7.1",
		    a == ACT_TEMPFAIL ? "deferred" : "rejected", name);
		break;
	case SCAN_ENCRYPTED:
		snprintf(d->reply, sizeof(d->reply), "%s Message %s: "
		    "encrypted content cannot be scanned (%s)",
		    a == ACT_TEMPFAIL ? "451 4.7.1" : "550 5.7.1",
		    a == ACT_TEMPFAIL ? "deferred" : "rejected", name);
		break;
	case SCAN_LIMITS:
		snprintf(d->reply, sizeof(d->reply), "%s Message %s: "
		    "exceeds scan limits (%s)",
		    a == ACT_TEMPFAIL ? "451 4.7.1" : "550 5.7.1",
		    a == ACT_TEMPFAIL ? "deferred" : "rejected", name);
		break;
	case SCAN_ERROR:
	case SCAN_TIMEOUT:
		snprintf(d->reply, sizeof(d->reply), "%s",
		    a == ACT_TEMPFAIL ? "451 4.3.0 Error: virus scan failed, "
		    "try again later" : "554 5.3.0 Error: virus scan failed");
		break;
	case SCAN_CLEAN:
		break;
	}

	if (a == ACT_DELIVER || a == ACT_TAG)
		d->deliver = 1;
	else if (a == ACT_CLEAN)
		d->deliver = d->cleaned = 1;
	else if (a == ACT_QUARANTINE)
		d->deliver = c->quarantine_then_deliver;

	if (d->deliver && c->scan_header)
		snprintf(d->header, sizeof(d->header),
		    "X-Spork-Scanned: engine=\"%s\"; result=%s%s%s\r\n", engine,
		    scan_verdict_name(r->verdict),
		    r->verdict != SCAN_CLEAN ? "; name=" : "",
		    r->verdict != SCAN_CLEAN ? name : "");
	if (d->deliver && r->verdict != SCAN_CLEAN) {
		size_t	l = strlen(d->header);

		snprintf(d->header + l, sizeof(d->header) - l, "%s: %s\r\n",
		    d->cleaned ? "X-Spork-Virus-Removed" :
		    r->verdict == SCAN_VIRUS ? "X-Spork-Virus" :
		    "X-Spork-Unscanned", r->verdict == SCAN_VIRUS ? name :
		    scan_verdict_name(r->verdict));
	}
	d->scan_action = d->action;
	policy_content(c, r, d);
}

/*
 * Notices name decisions by their actions, whichever policy took them:
 * the virus policy's, the content policy's (strip and redact are its
 * own), the spam engine's and the milters'. One notice per message,
 * about the strongest decision; refusing beats keeping a copy, which
 * beats changing the message, which beats marking it.
 */
static const int notice_ranks[ACT_COUNT] = {
	[ACT_REJECT] = 7, [ACT_TEMPFAIL] = 6, [ACT_QUARANTINE] = 5,
	[ACT_CLEAN] = 4, [ACT_STRIP] = 4, [ACT_REDACT] = 3, [ACT_TAG] = 2,
};

/*
 * Whether a notice mail goes out for a decision with this action: 0 if
 * not, else its strength (higher is stronger).
 */
int
policy_notice_wanted(const struct conf *c, enum action a)
{
	int	j;

	if (c->notice_to[0] == '\0' || (unsigned)a >= ACT_COUNT)
		return 0;
	for (j = 0; j < c->notice_actions.n; j++)
		if (strcmp(c->notice_actions.w[j], action_name(a)) == 0)
			return notice_ranks[a];
	return 0;
}
