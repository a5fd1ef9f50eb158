/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a local stream socket (mode 0660) that takes one
 * command line per connection and answers with lines, the first being
 * "ok ..." or "error: ...", then closes. sporkctl is its client. Commands:
 * status, metrics, tls, reload, quarantine list|show ID|text ID|release ID|delete ID,
 * bypass. Who is asking is read from the socket (SO_PEERCRED): root and
 * members of control_admin_group may change things (reload, release,
 * delete, bypass); anyone else who can open the socket may only look.
 * Input is bounded and quarantine ids are checked before they name a file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "cba.h"
#include "conf.h"
#include "content.h"
#include "control.h"
#include "ev.h"
#include "journal.h"
#include "icap.h"
#include "log.h"
#include "metrics.h"
#include "nft_divert.h"
#include "prequeue.h"
#include "quarantine.h"
#include "relay.h"
#include "scanner.h"
#include "smtp_client.h"
#include "spam.h"
#include "sock.h"
#include "spool.h"
#include "tls_dest.h"
#include "track.h"

#define CTL_LINE_MAX		1024
#define CTL_OUT_MAX		(1024 * 1024)
#define CTL_TEXT_MAX		(64 * 1024)	/* quarantine text */
#define CTL_TEXT_LINES		2000
#define CTL_LIST_MAX		2000	/* quarantine list entries */
#define CTL_CONNS_MAX		16
#define CTL_TIMEOUT_MS		10000
#define CTL_RELEASE_TIMEOUT_MS	60000
#define CTL_RCPTS_MAX		1000

struct ctl_conn {
	int			 fd;
	struct ev_io		 io;
	struct ev_timer		 timer;
	struct buf		 in, out;
	int			 replying;	/* command taken; flush, close */
	int			 waiting;	/* a release is in flight */
	int			 dead;
	int			 admin;		/* may change things */
	uid_t			 uid;
	/* release in flight */
	char			 id[QUARANTINE_ID_MAX];
	char			**rcpts;
	size_t			 nrcpts;
	char			 path[CONF_PATH_MAX + 64];
	char			 prefix[128];
};

static struct ev_loop		*ctl_loop;
static const struct conf	*ctl_conf;
static struct scan_backend	*ctl_scanner;
static struct metric_family	*ctl_m_sessions, *ctl_m_spool, *ctl_m_uptime;
static struct metric_family	*ctl_m_status;
static struct spam		*ctl_spam;
static int			(*ctl_reload)(void);
static struct ev_io		 ctl_listen_io;
static int			 ctl_nconns;
static uint64_t			 ctl_started;
static gid_t			 ctl_admin_gid;
static int			 ctl_admin_group;	/* configured */

/* Root, or in control_admin_group (as its primary or a listed member). */
static int
ctl_peer_admin(int fd, uid_t *uid)
{
	struct ucred	 cr;
	socklen_t	 len = sizeof(cr);
	struct passwd	*pw;
	struct group	*gr;
	char		**m;

	*uid = (uid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1)
		return 0;
	*uid = cr.uid;
	if (cr.uid == 0)
		return 1;
	if (!ctl_admin_group)
		return 0;
	if (cr.gid == ctl_admin_gid)
		return 1;
	if ((pw = getpwuid(cr.uid)) == NULL ||
	    (gr = getgrgid(ctl_admin_gid)) == NULL)
		return 0;
	for (m = gr->gr_mem; *m != NULL; m++)
		if (strcmp(*m, pw->pw_name) == 0)
			return 1;
	return 0;
}

static void	ctl_update(struct ctl_conn *);

static void
ctl_free(struct ctl_conn *c)
{
	size_t	i;

	for (i = 0; i < c->nrcpts; i++)
		free(c->rcpts[i]);
	free(c->rcpts); c->rcpts = NULL;
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

static void
ctl_close(struct ctl_conn *c)
{
	ev_timer_del(ctl_loop, &c->timer);
	ev_io_del(ctl_loop, &c->io);
	close(c->fd);
	c->fd = -1;
	ctl_nconns--;
	if (c->waiting)
		c->dead = 1;	/* freed when the release answers */
	else
		ctl_free(c);
}

/* Quarantine ids are ours: digits, letters, '-' and 'T'; never a path. */
static int
id_valid(const char *id)
{
	size_t	n = strlen(id);

	if (n == 0 || n >= QUARANTINE_ID_MAX)
		return 0;
	return strspn(id, "0123456789abcdefABCDEFT-") == n;
}

static void
q_path(char *out, size_t len, const char *id, const char *ext)
{
	snprintf(out, len, "%s/%s.%s", ctl_conf->quarantine_dir, id, ext);
}

static int
q_meta_get(FILE *fp, const char *key, char *val, size_t len)
{
	char	line[1024];
	size_t	kl = strlen(key);

	rewind(fp);
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, key, kl) == 0 && line[kl] == ':' &&
		    line[kl + 1] == ' ') {
			line[strcspn(line, "\n")] = '\0';
			snprintf(val, len, "%s", line + kl + 2);
			return 0;
		}
	val[0] = '\0';
	return -1;
}

/*
 * The divert: whose it is and, for sporkd's own, what happens to SMTP
 * on the bridge when sporkd dies (spork-setup --failure leaves a
 * fail-closed table; without it the bridge passes it unscanned).
 */
static void
divert_status(struct buf *out)
{
	int	fc;

	if (ctl_conf->divert_bridge[0] == '\0') {
		buf_printf(out, "divert.owner=spork-setup\n");
		return;
	}
	fc = nft_divert_table_exists("spork_failclosed");
	buf_printf(out, "divert.owner=sporkd\ndivert.bridge=%s\n"
	    "divert.installed=%d\ndivert.failure=%s\n",
	    ctl_conf->divert_bridge, nft_divert_fd() != -1, fc == 1 ?
	    "fail-closed" : fc == 0 ? "fail-open" : "unknown");
}

/* Every module's counters, one key=value a field. */
static void
status_write(struct buf *out)
{
	size_t	smem, sdisk;

	spool_usage(&smem, &sdisk);
	buf_printf(out, "uptime_s=%llu\nsessions=%zu\n"
	    "spool.memory_bytes=%zu\nspool.disk_bytes=%zu\n",
	    (unsigned long long)(ev_now() - ctl_started) / 1000,
	    relay_sessions(), smem, sdisk);
	if (ctl_scanner != NULL)
		ctl_scanner->status(ctl_scanner, out);
	else
		buf_printf(out, "scan.backend=none\n");
	tls_cov_status(out);
	cba_status(out);
	prequeue_status(out);
	content_status(out);
	if (ctl_spam != NULL)
		spam_status(ctl_spam, out);
	track_status(out);
	journal_status(out);
	icap_status(out);
	divert_status(out);
}

static void
cmd_status(struct ctl_conn *c)
{
	buf_printf(&c->out, "ok\n");
	status_write(&c->out);
}

/*
 * Before each exposition: the gauges read rather than counted, and every
 * numeric dotted field of status as spork_status{field="..."}, so that
 * no counter sporkd keeps is missing from the metrics.
 */
static void
ctl_collect(void *arg)
{
	struct buf	 b;
	char		*p, *end, *tok, *eq, *ep, label[METRICS_LABELS_MAX];
	char		 esc[METRICS_LABELS_MAX - 16];
	size_t		 smem, sdisk;
	double		 v;

	(void)arg;
	spool_usage(&smem, &sdisk);
	metrics_set(ctl_m_sessions, "", (double)relay_sessions());
	metrics_set(ctl_m_spool, "where=\"memory\"", (double)smem);
	metrics_set(ctl_m_spool, "where=\"disk\"", (double)sdisk);
	metrics_set(ctl_m_uptime, "", (double)(ev_now() - ctl_started) / 1000);
	buf_init(&b, CTL_OUT_MAX);
	status_write(&b);
	if (buf_append(&b, "", 1) == -1) {
		buf_free(&b);
		return;
	}
	for (p = buf_head(&b); *p != '\0'; p = end) {
		end = p + strcspn(p, "\n");
		if (*end == '\n')
			*end++ = '\0';
		/* Quoted text (a server's error) is not ours to parse: a
		 * word in it could pose as a field. */
		p[strcspn(p, "\"")] = '\0';
		for (tok = strtok(p, " "); tok != NULL; tok = strtok(NULL, " ")) {
			if ((eq = strchr(tok, '=')) == NULL ||
			    memchr(tok, '.', (size_t)(eq - tok)) == NULL)
				continue;
			*eq = '\0';
			v = strtod(eq + 1, &ep);
			if (ep == eq + 1 || *ep != '\0')
				continue;
			metrics_label_value(tok, esc, sizeof(esc));
			snprintf(label, sizeof(label), "field=\"%s\"", esc);
			metrics_set(ctl_m_status, label, v);
		}
	}
	buf_free(&b);
}

static void
cmd_metrics(struct ctl_conn *c)
{
	buf_printf(&c->out, "ok\n");
	if (metrics_write(&c->out) == -1) {
		buf_clear(&c->out);
		buf_printf(&c->out, "error: metrics do not fit\n");
	}
}

static void
cmd_q_list(struct ctl_conn *c)
{
	DIR		*d;
	struct dirent	*e;
	FILE		*fp;
	char		 path[CONF_PATH_MAX + 64], id[QUARANTINE_ID_MAX];
	char		 sender[300], verdict[64], name[300], client[80];
	size_t		 l;
	int		 n = 0;

	if ((d = opendir(ctl_conf->quarantine_dir)) == NULL) {
		buf_printf(&c->out, "error: %s: %s\n",
		    ctl_conf->quarantine_dir, strerror(errno));
		return;
	}
	buf_printf(&c->out, "ok\n");
	while ((e = readdir(d)) != NULL) {
		/* The event loop waits while this runs: a bounded list. */
		if (n == CTL_LIST_MAX) {
			buf_printf(&c->out, "truncated=1\n");
			break;
		}
		l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".meta") != 0 ||
		    e->d_name[0] == '.' || l - 5 >= sizeof(id))
			continue;
		snprintf(id, sizeof(id), "%.*s", (int)(l - 5), e->d_name);
		q_path(path, sizeof(path), id, "meta");
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		q_meta_get(fp, "client", client, sizeof(client));
		q_meta_get(fp, "sender", sender, sizeof(sender));
		q_meta_get(fp, "verdict", verdict, sizeof(verdict));
		q_meta_get(fp, "name", name, sizeof(name));
		fclose(fp);
		/* The sender's and the name's bytes are escaped, as show
		 * does: they cannot drive the admin's terminal. */
		buf_printf(&c->out, "%s client=%s sender=", id, client);
		(void)buf_append_escaped(&c->out, sender, strlen(sender));
		buf_printf(&c->out, " verdict=%s name=", verdict);
		(void)buf_append_escaped(&c->out, name, strlen(name));
		buf_printf(&c->out, "\n");
		n++;
	}
	closedir(d);
	buf_printf(&c->out, "count=%d\n", n);
}

static void
cmd_q_show(struct ctl_conn *c, const char *id)
{
	char	 path[CONF_PATH_MAX + 64], line[1024];
	FILE	*fp;
	int	 lines = 0;

	q_path(path, sizeof(path), id, "meta");
	if ((fp = fopen(path, "r")) == NULL) {
		buf_printf(&c->out, "error: no quarantined message %s\n", id);
		return;
	}
	/* Envelope and headers are the sender's words: escaped, so that
	 * they cannot drive the admin's terminal. */
	buf_printf(&c->out, "ok\n");
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		(void)buf_append_escaped(&c->out, line, strlen(line));
		buf_printf(&c->out, "\n");
	}
	fclose(fp);
	buf_printf(&c->out, "--- headers\n");
	q_path(path, sizeof(path), id, "eml");
	if ((fp = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), fp) != NULL && lines++ < 200) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			break;
		(void)buf_append_escaped(&c->out, line, strlen(line));
		buf_printf(&c->out, "\n");
	}
	fclose(fp);
}

/* The message's text after its header: escaped like show, at most
 * CTL_TEXT_MAX bytes and CTL_TEXT_LINES lines (then "--- truncated"). */
static void
cmd_q_text(struct ctl_conn *c, const char *id)
{
	char	 path[CONF_PATH_MAX + 64], line[1024];
	FILE	*fp;
	size_t	 bytes = 0, lines = 0, l;
	int	 body = 0;

	q_path(path, sizeof(path), id, "eml");
	if ((fp = fopen(path, "r")) == NULL) {
		buf_printf(&c->out, "error: no quarantined message %s\n", id);
		return;
	}
	buf_printf(&c->out, "ok\n");
	while (fgets(line, sizeof(line), fp) != NULL) {
		l = strcspn(line, "\r\n");
		line[l] = '\0';
		if (!body) {
			body = l == 0;
			continue;
		}
		if (bytes + l > CTL_TEXT_MAX || lines == CTL_TEXT_LINES) {
			buf_printf(&c->out, "--- truncated\n");
			break;
		}
		bytes += l;
		lines++;
		(void)buf_append_escaped(&c->out, line, l);
		buf_printf(&c->out, "\n");
	}
	fclose(fp);
}

static void
cmd_q_delete(struct ctl_conn *c, const char *id)
{
	char	path[CONF_PATH_MAX + 64];

	q_path(path, sizeof(path), id, "meta");
	if (unlink(path) == -1) {
		buf_printf(&c->out, "error: no quarantined message %s\n", id);
		return;
	}
	q_path(path, sizeof(path), id, "eml");
	unlink(path);
	log_info(NULL, "quarantine id=%s deleted", id);
	buf_printf(&c->out, "ok deleted %s\n", id);
}

static void
release_done(void *arg, int ok, int code, const char *why)
{
	struct ctl_conn	*c = arg;
	char		 path[CONF_PATH_MAX + 64];

	(void)code;	/* the operator reads the reply's text */
	c->waiting = 0;
	log_info(NULL, "quarantine id=%s release=%s reply=\"%s\"", c->id,
	    ok ? "delivered" : "failed", why);
	if (ok) {
		q_path(path, sizeof(path), c->id, "meta");
		unlink(path);
		unlink(c->path);
	}
	if (c->dead) {
		ctl_free(c);
		return;
	}
	buf_printf(&c->out, "%s %s: %s\n", ok ? "ok released" :
	    "error: release failed", c->id, why);
	ctl_update(c);
}

static void
cmd_q_release(struct ctl_conn *c, const char *id)
{
	struct smtp_client_msg	 m;
	char			 path[CONF_PATH_MAX + 64], v[512], line[1024];
	char			 **nr;
	FILE			*fp;

	q_path(path, sizeof(path), id, "meta");
	if ((fp = fopen(path, "r")) == NULL) {
		buf_printf(&c->out, "error: no quarantined message %s\n", id);
		return;
	}
	memset(&m, 0, sizeof(m));
	q_meta_get(fp, "server", v, sizeof(v));
	if (sock_parse_addr(v, &m.dst) == -1) {
		buf_printf(&c->out, "error: bad server '%s' in %s\n", v, path);
		fclose(fp);
		return;
	}
	q_meta_get(fp, "mode", v, sizeof(v));
	if (strcmp(v, "transparent") == 0) {
		/* Released from the client's own address, as it came. */
		q_meta_get(fp, "client", v, sizeof(v));
		m.src_valid = sock_parse_addr(v, &m.src) == 0;
	}
	q_meta_get(fp, "helo", m.helo, sizeof(m.helo));
	if (m.helo[0] == '\0')
		snprintf(m.helo, sizeof(m.helo), "localhost");
	q_meta_get(fp, "sender", m.sender, sizeof(m.sender));
	rewind(fp);
	while (fgets(line, sizeof(line), fp) != NULL &&
	    c->nrcpts < CTL_RCPTS_MAX) {
		if (strncmp(line, "rcpt: ", 6) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		if ((nr = realloc(c->rcpts, (c->nrcpts + 1) * sizeof(*nr)))
		    == NULL)
			break;
		c->rcpts = nr;
		if ((c->rcpts[c->nrcpts] = strdup(line + 6)) != NULL)
			c->nrcpts++;
	}
	fclose(fp);
	if (c->nrcpts == 0) {
		buf_printf(&c->out, "error: %s has no recipients\n", id);
		return;
	}
	snprintf(c->id, sizeof(c->id), "%s", id);
	q_path(c->path, sizeof(c->path), id, "eml");
	snprintf(c->prefix, sizeof(c->prefix), "X-Spork-Released: id=%s\r\n",
	    id);
	m.rcpts = c->rcpts;
	m.nrcpts = c->nrcpts;
	m.path = c->path;
	m.prefix = c->prefix;
	m.timeout_ms = CTL_RELEASE_TIMEOUT_MS;
	if (smtp_client_send(ctl_loop, &m, release_done, c) == -1) {
		buf_printf(&c->out, "error: release %s: %s\n", id,
		    strerror(errno));
		return;
	}
	c->waiting = 1;
	log_info(NULL, "quarantine id=%s release started", id);
}

/*
 * bypass add ADDR [server] [timeout N[s|m|h]] | bypass del ADDR [server] |
 * bypass list: clients (or, with "server", servers) whose connections
 * the owned divert leaves alone.
 */
static void
cmd_bypass(struct ctl_conn *c, int argc, char **argv)
{
	char		 err[256], *text = NULL, *e;
	size_t		 len = 0;
	FILE		*fp;
	unsigned long	 t = 0;
	int		 add, server = 0, i;

	if (nft_divert_fd() == -1) {
		buf_printf(&c->out, "error: the divert is not sporkd's "
		    "(divert_bridge is not set)\n");
		return;
	}
	if (strcmp(argv[1], "list") == 0) {
		if ((fp = open_memstream(&text, &len)) == NULL ||
		    nft_divert_bypass_list(fp) == -1) {
			if (fp != NULL)
				fclose(fp);
			free(text);
			buf_printf(&c->out, "error: cannot list the bypass "
			    "sets\n");
			return;
		}
		fclose(fp);
		buf_printf(&c->out, "ok\n");
		buf_append(&c->out, text, len);
		free(text);
		return;
	}
	add = strcmp(argv[1], "add") == 0;
	if ((!add && strcmp(argv[1], "del") != 0) || argc < 3) {
		buf_printf(&c->out, "error: bypass add|del ADDR [server] "
		    "[timeout SECONDS] | bypass list\n");
		return;
	}
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "server") == 0)
			server = 1;
		else if (strcmp(argv[i], "timeout") == 0 && i + 1 < argc) {
			t = strtoul(argv[++i], &e, 10);
			if (*e == 'm')
				t *= 60;
			else if (*e == 'h')
				t *= 3600;
			else if (*e != '\0' && *e != 's')
				t = 0;
		}
	}
	if (nft_divert_bypass(add, !server, argv[2], (unsigned)t, err,
	    sizeof(err)) == -1) {
		buf_printf(&c->out, "error: %s\n", err);
		return;
	}
	log_info(NULL, "bypass %s %s=%s timeout=%lu", add ? "add" : "del",
	    server ? "server" : "client", argv[2], t);
	buf_printf(&c->out, "ok\n");
}

static void
ctl_command(struct ctl_conn *c, char *line)
{
	char	*argv[6], *p;
	int	 argc = 0;

	for (p = strtok(line, " \t"); p != NULL && argc < 6;
	    p = strtok(NULL, " \t"))
		argv[argc++] = p;
	if (!c->admin && argc >= 1 && (strcmp(argv[0], "reload") == 0 ||
	    strcmp(argv[0], "bypass") == 0 || (argc >= 2 &&
	    strcmp(argv[0], "quarantine") == 0 &&
	    (strcmp(argv[1], "release") == 0 ||
	    strcmp(argv[1], "delete") == 0)))) {
		log_warn(NULL, "control refused uid=%ld command=%s%s%s: not "
		    "root nor in control_admin_group", (long)c->uid, argv[0],
		    argc >= 2 ? " " : "", argc >= 2 ? argv[1] : "");
		buf_printf(&c->out, "error: not permitted (root or "
		    "control_admin_group only)\n");
		c->replying = 1;
		return;
	}
	if (argc == 1 && strcmp(argv[0], "status") == 0)
		cmd_status(c);
	else if (argc == 1 && strcmp(argv[0], "metrics") == 0)
		cmd_metrics(c);
	else if (argc == 1 && strcmp(argv[0], "tls") == 0) {
		buf_printf(&c->out, "ok\n");
		tls_dest_list(&c->out);
	}
	else if (argc == 1 && strcmp(argv[0], "reload") == 0) {
		if (ctl_reload == NULL || ctl_reload() == -1)
			buf_printf(&c->out, "error: reload failed\n");
		else
			buf_printf(&c->out, "ok reload started\n");
	} else if (argc >= 2 && strcmp(argv[0], "bypass") == 0)
		cmd_bypass(c, argc, argv);
	else if (argc == 2 && strcmp(argv[0], "quarantine") == 0 &&
	    strcmp(argv[1], "list") == 0)
		cmd_q_list(c);
	else if (argc == 3 && strcmp(argv[0], "quarantine") == 0) {
		if (!id_valid(argv[2]))
			buf_printf(&c->out, "error: bad id\n");
		else if (strcmp(argv[1], "show") == 0)
			cmd_q_show(c, argv[2]);
		else if (strcmp(argv[1], "text") == 0)
			cmd_q_text(c, argv[2]);
		else if (strcmp(argv[1], "release") == 0)
			cmd_q_release(c, argv[2]);
		else if (strcmp(argv[1], "delete") == 0)
			cmd_q_delete(c, argv[2]);
		else
			buf_printf(&c->out, "error: unknown command\n");
	} else
		buf_printf(&c->out, "error: unknown command (status, metrics, "
		    "tls, reload, "
		    "quarantine list|show ID|text ID|release ID|delete ID, "
		    "bypass add|del ADDR [server] [timeout SECONDS], "
		    "bypass list)\n");
	c->replying = 1;
}

static void
ctl_update(struct ctl_conn *c)
{
	int	mask = 0;

	if (c->fd == -1)
		return;
	if (buf_used(&c->out) > 0)
		mask |= EV_WRITE;
	if (!c->replying)
		mask |= EV_READ;
	if (c->replying && !c->waiting && buf_used(&c->out) == 0) {
		ctl_close(c);
		return;
	}
	if (ev_io_set(ctl_loop, &c->io, mask) == -1)
		ctl_close(c);
}

static void
ctl_io(struct ev_io *io, int events)
{
	struct ctl_conn	*c = io->arg;
	char		 line[CTL_LINE_MAX], *nl;
	ssize_t		 n;
	size_t		 l;

	if (events & EV_READ) {
		n = buf_read_fd(&c->in, c->fd);
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			ctl_close(c);
			return;
		}
		nl = memchr(buf_head(&c->in), '\n', buf_used(&c->in));
		if (nl != NULL) {
			l = (size_t)(nl - buf_head(&c->in));
			snprintf(line, sizeof(line), "%.*s", (int)l,
			    buf_head(&c->in));
			line[strcspn(line, "\r")] = '\0';
			ctl_command(c, line);
		} else if (buf_room(&c->in) == 0) {
			buf_printf(&c->out, "error: line too long\n");
			c->replying = 1;
		}
	}
	if ((events & EV_WRITE) && buf_write_fd(&c->out, c->fd) == -1 &&
	    errno != EAGAIN) {
		ctl_close(c);
		return;
	}
	ctl_update(c);
}

static void
ctl_timeout(struct ev_timer *t)
{
	struct ctl_conn	*c = t->arg;

	ctl_close(c);
}

static void
ctl_accept(struct ev_io *io, int events)
{
	struct ctl_conn	*c;
	int		 fd;

	(void)events;
	while ((fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) != -1) {
		if (ctl_nconns >= CTL_CONNS_MAX ||
		    (c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		ctl_nconns++;
		c->fd = fd;
		c->admin = ctl_peer_admin(fd, &c->uid);
		buf_init(&c->in, CTL_LINE_MAX);
		buf_init(&c->out, CTL_OUT_MAX);
		ev_io_init(&c->io, fd, ctl_io, c);
		ev_timer_init(&c->timer, ctl_timeout, c);
		ev_timer_set(ctl_loop, &c->timer, CTL_RELEASE_TIMEOUT_MS +
		    CTL_TIMEOUT_MS);
		ctl_update(c);
	}
}

int
control_init(struct ev_loop *loop, const struct conf *conf,
    struct scan_backend *scanner, char *err, size_t errlen)
{
	struct sockaddr_un	 sun;
	char			 dir[sizeof(sun.sun_path)], *slash;
	int			 fd;

	ctl_loop = loop;
	ctl_conf = conf;
	ctl_scanner = scanner;
	ctl_started = ev_now();
	ctl_m_sessions = metrics_family("spork_sessions", METRIC_GAUGE,
	    "SMTP sessions open.", NULL, 0);
	ctl_m_spool = metrics_family("spork_spool_bytes", METRIC_GAUGE,
	    "Messages being received, in memory and on disk.", NULL, 0);
	ctl_m_uptime = metrics_family("spork_uptime_seconds", METRIC_GAUGE,
	    "Since sporkd started.", NULL, 0);
	ctl_m_status = metrics_family("spork_status", METRIC_GAUGE,
	    "Every numeric field of sporkctl status (counters and gauges of "
	    "the scanner, worker pool, TLS coverage, pre-queue checks, "
	    "content rules, spam engine, connect-before-accept, tracking), "
	    "by its dotted name.", NULL, 0);
	metrics_collector(ctl_collect, NULL);
	if (conf->control_socket[0] == '\0')
		return 0;
	if (conf->control_admin_group[0] != '\0') {
		struct group	*gr = getgrnam(conf->control_admin_group);

		if (gr == NULL) {
			snprintf(err, errlen, "control_admin_group %s: no such "
			    "group", conf->control_admin_group);
			return -1;
		}
		ctl_admin_gid = gr->gr_gid;
		ctl_admin_group = 1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(conf->control_socket) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control_socket path too long");
		return -1;
	}
	strcpy(sun.sun_path, conf->control_socket);
	memcpy(dir, sun.sun_path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		(void)mkdir(dir, 0750);
	}
	(void)unlink(sun.sun_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(sun.sun_path, 0660) == -1 || (ctl_admin_group &&
	    chown(sun.sun_path, (uid_t)-1, ctl_admin_gid) == -1) ||
	    listen(fd, 16) == -1) {
		snprintf(err, errlen, "control socket %s: %s",
		    conf->control_socket, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	ev_io_init(&ctl_listen_io, fd, ctl_accept, NULL);
	if (ev_io_set(loop, &ctl_listen_io, EV_READ) == -1) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		return -1;
	}
	log_info(NULL, "control socket %s", conf->control_socket);
	return 0;
}

void
control_close(void)
{
	if (ctl_conf == NULL || ctl_conf->control_socket[0] == '\0' ||
	    !ctl_listen_io.added)
		return;
	ev_io_del(ctl_loop, &ctl_listen_io);
	close(ctl_listen_io.fd);
	(void)unlink(ctl_conf->control_socket);
}

void
control_set_reload(int (*fn)(void))
{
	ctl_reload = fn;
}

/* The spam engine's state and per-rule counters go into status. */
void
control_set_spam(struct spam *spam)
{
	ctl_spam = spam;
}
