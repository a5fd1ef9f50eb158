/* SPDX-License-Identifier: MIT */
/*
 * The names of the actions (action.h), as the configuration, the logs,
 * the notices and the tracking records spell them. Nothing else.
 */
#include <stdio.h>
#include <string.h>

#include "action.h"

static const char *const action_names[ACT_COUNT] = {
	[ACT_NONE] = "none",
	[ACT_DELIVER] = "deliver",
	[ACT_TAG] = "tag",
	[ACT_FOOTER] = "footer",
	[ACT_REDACT] = "redact",
	[ACT_STRIP] = "strip",
	[ACT_CLEAN] = "clean",
	[ACT_QUARANTINE] = "quarantine",
	[ACT_TEMPFAIL] = "tempfail",
	[ACT_REJECT] = "reject",
	[ACT_CONNECT] = "reject-connect",
	[ACT_ERROR] = "error",
};

const char *
action_name(enum action a)
{
	return (unsigned)a < ACT_COUNT ? action_names[a] : "unknown";
}

int
action_parse(const char *s, unsigned allowed, enum action *a)
{
	int	i;

	for (i = 0; i < ACT_COUNT; i++)
		if ((allowed & ACT_BIT(i)) && strcmp(s, action_names[i]) == 0) {
			*a = (enum action)i;
			return 0;
		}
	return -1;
}

void
action_words(unsigned allowed, char *out, size_t len)
{
	size_t	l = 0;
	int	i, n = 0, left;

	for (i = 0; i < ACT_COUNT; i++)
		n += (allowed & ACT_BIT(i)) != 0;
	out[0] = '\0';
	for (i = 0, left = n; i < ACT_COUNT && l < len; i++) {
		if (!(allowed & ACT_BIT(i)))
			continue;
		left--;
		l += (size_t)snprintf(out + l, len - l, "%s%s",
		    action_names[i], left == 0 ? "" : left == 1 ? " or " :
		    ", ");
	}
}
