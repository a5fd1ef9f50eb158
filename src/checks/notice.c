/* SPDX-License-Identifier: MIT */
/*
 * Notice mails: a short report to a configured address when the virus
 * policy, the content policy or the spam engine rejected, quarantined,
 * cleaned, stripped, redacted or tagged a message (notice_actions). It
 * names what decided (a virus, a rule and where it matched, a score),
 * never what a rule found in the message. The notice is
 * built in memory and sent over SMTP from the event loop, with the null
 * reverse path so that it can never bounce back and forth. It goes to
 * notice_server when set (from the box's own address), else to the
 * message's own destination from the client's address, the way a
 * quarantine release goes. A notice never changes what the client was
 * told about the message; a failure is logged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "notice.h"
#include "smtp_client.h"
#include "sock.h"
#include "spool.h"

#define NOTICE_TIMEOUT_MS	30000
#define NOTICE_HEADER_SCAN	16384	/* of the message, for its Subject */
#define NOTICE_FIELD_MAX	200

struct notice {
	char	 session[16];
	char	 to[260];
	char	*rcpts[1];
};

/* One line of printable ASCII, whatever the input. */
static void
ascii(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

/* The first line of a header field of the message, if it has one. */
static void
header_field(const struct spool *sp, const char *field, char *out,
    size_t outlen)
{
	char	 head[NOTICE_HEADER_SCAN + 1], *p, *e;
	size_t	 fl = strlen(field);
	ssize_t	 n;

	out[0] = '\0';
	if ((n = spool_read(sp, 0, head, NOTICE_HEADER_SCAN)) <= 0)
		return;
	head[n] = '\0';
	for (p = head; *p != '\0' && *p != '\r'; p = e + 2) {
		if ((e = strstr(p, "\r\n")) == NULL)
			return;
		if ((size_t)(e - p) > fl && strncasecmp(p, field, fl) == 0 &&
		    p[fl] == ':') {
			p += fl + 1;
			p += strspn(p, " \t");
			snprintf(out, outlen, "%.*s", (int)(e - p), p);
			ascii(out);
			return;
		}
	}
}

static void
notice_done(void *arg, int ok, int code, const char *why)
{
	struct notice	*n = arg;

	(void)code;	/* a notice is not retried: the text says it all */
	if (ok)
		log_info(n->session, "notice to=%s sent: %s", n->to, why);
	else
		log_warn(n->session, "notice to=%s failed: %s", n->to, why);
	free(n);
}

static int
notice_write(int fd, const struct conf *c, const struct notice_info *ni)
{
	char		 subject[NOTICE_FIELD_MAX], msgid[NOTICE_FIELD_MAX];
	char		 date[64], from[300], name[NOTICE_FIELD_MAX];
	char		 detail[2 * NOTICE_FIELD_MAX];
	time_t		 now = time(NULL);
	struct tm	 tm;
	FILE		*fp;
	size_t		 i;
	int		 rc;

	header_field(ni->spool, "Subject", subject, sizeof(subject));
	header_field(ni->spool, "Message-ID", msgid, sizeof(msgid));
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(from, sizeof(from), "%s", c->notice_from[0] ?
	    c->notice_from : "MAILER-DAEMON");
	snprintf(name, sizeof(name), "%s", ni->name);
	ascii(name);
	snprintf(detail, sizeof(detail), "%s", ni->detail != NULL ?
	    ni->detail : "");
	ascii(detail);
	if ((fp = fdopen(dup(fd), "w")) == NULL)
		return -1;
	fprintf(fp, "From: spork <%s>\r\n"
	    "To: <%s>\r\n"
	    "Date: %s\r\n"
	    "Subject: [spork] %s: %s\r\n"
	    "Auto-Submitted: auto-generated\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n"
	    "\r\n"
	    "A message was handled by spork's %s policy.\r\n"
	    "\r\n"
	    "Action:     %s\r\n"
	    "Verdict:    %s\r\n"
	    "Name:       %s\r\n",
	    from, c->notice_to, date, ni->action, name, ni->policy != NULL ?
	    ni->policy : ni->verdict, ni->action, ni->verdict, name);
	if (detail[0] != '\0')
		fprintf(fp, "Detail:     %s\r\n", detail);
	if (ni->removed > 0)
		fprintf(fp, "Removed:    %u part(s), replaced by a notice\r\n",
		    ni->removed);
	if (ni->quarantine_id != NULL && ni->quarantine_id[0] != '\0')
		fprintf(fp, "Quarantine: %s (sporkctl quarantine show %s)\r\n",
		    ni->quarantine_id, ni->quarantine_id);
	fprintf(fp, "Session:    %s\r\n"
	    "Client:     %s (HELO %s)\r\n"
	    "Server:     %s\r\n"
	    "Sender:     %s\r\n",
	    ni->session, ni->client, ni->helo[0] ? ni->helo : "-",
	    ni->server, ni->sender);
	for (i = 0; i < ni->nrcpts; i++)
		fprintf(fp, "Recipient:  %s\r\n", ni->rcpts[i]);
	fprintf(fp, "Subject:    %s\r\n"
	    "Message-ID: %s\r\n"
	    "Size:       %zu bytes\r\n",
	    subject[0] ? subject : "-", msgid[0] ? msgid : "-",
	    ni->spool->size);
	rc = ferror(fp) ? -1 : 0;
	if (fclose(fp) == EOF)
		rc = -1;
	return rc;
}

int
notice_send(struct ev_loop *loop, const struct conf *c,
    const struct notice_info *ni)
{
	struct smtp_client_msg	 m;
	struct notice		*n;
	int			 fd, saved;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return -1;
	snprintf(n->session, sizeof(n->session), "%s", ni->session);
	snprintf(n->to, sizeof(n->to), "<%s>", c->notice_to);
	n->rcpts[0] = n->to;
	memset(&m, 0, sizeof(m));
	if (c->notice_server[0] != '\0') {
		if (sock_parse_addr(c->notice_server, &m.dst) == -1)
			goto fail;
	} else {
		if (sock_parse_addr(ni->server, &m.dst) == -1)
			goto fail;
		if (ni->transparent)
			m.src_valid = sock_parse_addr(ni->client, &m.src) == 0;
	}
	snprintf(m.helo, sizeof(m.helo), "%s", "spork.invalid");
	snprintf(m.sender, sizeof(m.sender), "<>");
	m.rcpts = n->rcpts;
	m.nrcpts = 1;
	m.timeout_ms = NOTICE_TIMEOUT_MS;
	if ((fd = memfd_create("spork-notice", MFD_CLOEXEC)) == -1)
		goto fail;
	if (notice_write(fd, c, ni) == -1) {
		close(fd);
		goto fail;
	}
	m.body_fd = fd;
	if (smtp_client_send(loop, &m, notice_done, n) == -1) {
		close(fd);
		goto fail;
	}
	close(fd);
	return 0;
fail:
	saved = errno;
	log_warn(ni->session, "notice to=<%s> failed: %s", c->notice_to,
	    strerror(errno));
	free(n);
	errno = saved;
	return -1;
}
