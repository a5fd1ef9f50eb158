/* SPDX-License-Identifier: MIT */
/*
 * The end of a message (message_end.h): the tracking record and the
 * message metrics. It reads the first lines of the spool for the
 * Message-ID and Subject (bounded: MESSAGE_END_HEAD bytes, unfolded,
 * control bytes dropped) and never writes anything but the record and
 * the counters.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "metrics.h"
#include "message_end.h"
#include "sock.h"
#include "track.h"

#define MESSAGE_END_HEAD	16384	/* header bytes read for the fields */
#define MESSAGE_END_HEAD_FIRST	4096	/* ... first */
#define MESSAGE_END_FIELD	512
#define MESSAGE_END_PATH		258	/* RFC 5321's 256, and the brackets */

static struct metric_family	*me_messages;
static struct metric_family	*me_dot_seconds;
static struct metric_family	*me_rcpts;

void
message_end_init(void)
{
	static const double	dot_b[] = { .01, .025, .05, .1, .25, .5, 1,
				    2.5, 5, 10, 30, 60 };

	me_messages = metrics_family("spork_messages_total", METRIC_COUNTER,
	    "Messages that reached the end of data, by verdict and action.",
	    NULL, 0);
	me_dot_seconds = metrics_family("spork_final_dot_seconds",
	    METRIC_HISTOGRAM, "From the client's final dot to its reply "
	    "(scan, checks and the server's answer).", dot_b,
	    sizeof(dot_b) / sizeof(dot_b[0]));
	me_rcpts = metrics_family("spork_message_recipients_total",
	    METRIC_COUNTER, "Recipients of those messages, by the server's "
	    "answer class.", NULL, 0);
}

/*
 * The value of header `name` in the head of the message: unfolded,
 * control bytes dropped, at most outlen - 1 bytes. "" when absent.
 */
void
message_end_header(const char *head, size_t len, const char *name, char *out,
    size_t outlen)
{
	size_t	nl = strlen(name), i = 0, o = 0;

	out[0] = '\0';
	while (i < len) {
		/* At the start of a line. */
		if (head[i] == '\r' || head[i] == '\n')
			return;			/* end of the header */
		if (len - i > nl && strncasecmp(head + i, name, nl) == 0 &&
		    head[i + nl] == ':') {
			for (i += nl + 1; i < len; i++) {
				if (head[i] == '\n') {
					if (i + 1 < len && (head[i + 1] == ' ' ||
					    head[i + 1] == '\t'))
						continue;
					break;
				}
				if (((unsigned char)head[i] < 0x20 &&
				    head[i] != '\t') || head[i] == 0x7f)
					continue;
				if (o + 1 < outlen && (o > 0 ||
				    (head[i] != ' ' && head[i] != '\t')))
					out[o++] = head[i] == '\t' ? ' ' :
					    head[i];
			}
			while (o > 0 && out[o - 1] == ' ')
				o--;
			out[o] = '\0';
			return;
		}
		while (i < len && head[i] != '\n')
			i++;
		i++;
	}
}

/* The reply code at the start of a reply line; 0 if there is none. */
static int
atoi_code(const char *r)
{
	if (!isdigit((unsigned char)r[0]) || !isdigit((unsigned char)r[1]) ||
	    !isdigit((unsigned char)r[2]))
		return 0;
	return (r[0] - '0') * 100 + (r[1] - '0') * 10 + (r[2] - '0');
}

/* An envelope path without its angle brackets ("<>" stays). */
static const char *
bare(const char *path, char *out, size_t len)
{
	size_t	l = strlen(path);

	if (l > 2 && path[0] == '<' && path[l - 1] == '>') {
		snprintf(out, len, "%.*s", (int)(l - 2), path + 1);
		return out;
	}
	return path;
}

static const char *
class_of(int code)
{
	switch (code / 100) {
	case 2:		return "2xx";
	case 4:		return "4xx";
	default:	return "5xx";
	}
}

void
message_end(const struct message_end *m)
{
	struct track_rcpt	 tr[TRACK_RCPTS_MAX];
	struct track_rec	 rec;
	struct timespec		 ts;
	char			 head[MESSAGE_END_HEAD], mid[MESSAGE_END_FIELD];
	char			 subj[MESSAGE_END_FIELD], reply[1024];
	char			 addr[SOCK_ADDRSTR_MAX], labels[128];
	char			 kind[48], esc[48], sender[MESSAGE_END_PATH];
	static char		 paths[TRACK_RCPTS_MAX][MESSAGE_END_PATH];
	ssize_t			 hl = 0;
	size_t			 i, n = 0, rl;
	int			 code;

	rl = m->replylen;
	while (rl > 0 && (m->reply[rl - 1] == '\n' || m->reply[rl - 1] == '\r'))
		rl--;
	snprintf(reply, sizeof(reply), "%.*s", (int)rl, m->reply);
	code = atoi_code(reply);
	/* A message the checks let through and the server refused. */
	snprintf(kind, sizeof(kind), "%s", m->by_server && code / 100 != 2 ?
	    "refused-by-server" : m->kind[0] != '\0' ? m->kind : "none");
	metrics_label_value(kind, esc, sizeof(esc));
	snprintf(labels, sizeof(labels), "verdict=\"%s\",action=\"%s\"", esc,
	    m->by_server && code / 100 != 2 ? (code / 100 == 4 ?
	    "tempfail" : "reject") : action_name(m->action));
	metrics_add(me_messages, labels, 1);
	if (m->at_dot)
		metrics_observe(me_dot_seconds, "", m->dot_ms / 1000.0);

	for (i = 0; i < m->nrcpts + m->nrefused; i++) {
		snprintf(labels, sizeof(labels), "answer=\"%s\"", class_of(
		    i < m->nrcpts ? code : atoi_code(m->refused_reply[i -
		    m->nrcpts])));
		metrics_add(me_rcpts, labels, 1);
	}
	if (!track_wanted())
		return;

	/* Most headers fit the first 4 KiB; more is read only if not. */
	if (m->spool != NULL && m->spool->size > 0 &&
	    (hl = spool_read(m->spool, 0, head, MESSAGE_END_HEAD_FIRST)) > 0 &&
	    hl == MESSAGE_END_HEAD_FIRST && memmem(head, (size_t)hl,
	    "\r\n\r\n", 4) == NULL)
		hl = spool_read(m->spool, 0, head, sizeof(head));
	if (hl < 0)
		hl = 0;
	message_end_header(head, (size_t)hl, "Message-ID", mid, sizeof(mid));
	message_end_header(head, (size_t)hl, "Subject", subj, sizeof(subj));

	for (i = 0; i < m->nrcpts && n < TRACK_RCPTS_MAX; i++, n++) {
		tr[n].addr = bare(m->rcpts[i], paths[n], sizeof(paths[n]));
		tr[n].code = code;
		tr[n].reply = reply;
	}
	for (i = 0; i < m->nrefused && n < TRACK_RCPTS_MAX; i++, n++) {
		tr[n].addr = bare(m->refused[i], paths[n], sizeof(paths[n]));
		tr[n].code = atoi_code(m->refused_reply[i]);
		tr[n].reply = m->refused_reply[i];
	}

	memset(&rec, 0, sizeof(rec));
	clock_gettime(CLOCK_REALTIME, &ts);
	rec.t = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	rec.session = m->id;
	rec.client = m->client;
	addr[0] = '\0';
	if (m->peer != NULL && m->peer->ss_family != AF_UNSPEC)
		sock_format_host(m->peer, addr, sizeof(addr));
	rec.client_addr = addr;
	rec.server = m->server;
	rec.direction = m->inside ? "outbound" : "inbound";
	rec.helo = m->helo;
	rec.sender = bare(m->sender, sender, sizeof(sender));
	rec.rcpts = tr;
	rec.nrcpts = n;
	rec.size = m->spool != NULL ? m->spool->size : 0;
	rec.message_id = mid;
	rec.subject = subj;
	rec.verdict = kind;
	rec.action = m->by_server && code / 100 != 2 ? (code / 100 == 4 ?
	    "tempfail" : "reject") : action_name(m->action);
	rec.score = m->score;
	rec.tls = m->tls;
	rec.quarantine = m->qid;
	rec.reply = reply;
	track_message(&rec);
}
