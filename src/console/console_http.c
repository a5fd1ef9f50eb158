/* SPDX-License-Identifier: MIT */
/*
 * The console's HTTP side: libmicrohttpd over TLS on the sockets main()
 * bound, one thread per connection. This file owns who may do what:
 * logins (accounts file, crypt(3)), sessions (ids from getrandom, expiry
 * after console_session_timeout without a request), CSRF tokens (one per
 * session, required on every POST, compared in constant time), the
 * security headers every response carries, and the routing of a request
 * to its page. It trusts nothing in a request; pages get the decoded
 * arguments through console_arg() and never see a cookie.
 */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cidr.h"
#include "console.h"
#include "log.h"

#define SESSIONS_MAX		256
#define FORM_MAX		(16 * 1024)	/* a POST body */
#define USERS_LINE_MAX		1024
#define FAIL_SLOTS		64		/* addresses with failed logins */
#define FAIL_WINDOW_S		900
#define FAIL_DELAY_MAX_S	16
#define HTTP_CONNS_MAX		32
#define HTTP_TIMEOUT_S		120
#define COOKIE_SESSION		"spork_session"
#define COOKIE_PRELOGIN		"spork_login"
#define COOKIE_ATTRS		"; Path=/; Secure; HttpOnly; SameSite=Strict"

/* What the browser may do with our pages: our stylesheet, our own
 * forms, nothing else (the chart is inline SVG, no script at all). */
static const char csp[] = "default-src 'none'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'";

struct session {
	char		id[CONSOLE_TOKEN_HEX + 1];	/* "" when free */
	char		csrf[CONSOLE_TOKEN_HEX + 1];
	char		user[CONSOLE_USER_MAX];
	uint64_t	last_ms;
};

struct fail_slot {
	char		addr[INET6_ADDRSTRLEN];
	unsigned	count;
	time_t		last;
};

/* Per request: the POST body as it arrives. */
struct req_state {
	size_t		len;
	int		too_big;
	char		body[FORM_MAX + 1];
};

static struct MHD_Daemon	*daemons[CONF_ADDRS_MAX];
static int			 ndaemons;
static struct session		 sessions[SESSIONS_MAX];
static struct fail_slot		 fails[FAIL_SLOTS];
static pthread_mutex_t		 lock = PTHREAD_MUTEX_INITIALIZER;

/* A hash of random bytes, made at start, for unknown users: the same
 * work as for a known one. */
static char			 dummy_hash[CRYPT_OUTPUT_SIZE];

static uint64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
random_hex(char out[CONSOLE_TOKEN_HEX + 1])
{
	unsigned char	r[CONSOLE_TOKEN_HEX / 2];
	size_t		i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	for (i = 0; i < sizeof(r); i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/* Constant time in the length of b (the secret's, always 64). */
int
token_equal(const char *a, const char *b)
{
	size_t		la = strlen(a), lb = strlen(b), i;
	unsigned char	d = la != lb;

	for (i = 0; i < lb; i++)
		d |= (unsigned char)(i < la ? a[i] : 0) ^ (unsigned char)b[i];
	return d == 0;
}

static void
client_addr(struct MHD_Connection *c, char *out, size_t len,
    struct sockaddr_storage *ss)
{
	const union MHD_ConnectionInfo	*ci;
	const struct sockaddr		*sa;

	snprintf(out, len, "unknown");
	memset(ss, 0, sizeof(*ss));
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		memcpy(ss, sa, sizeof(struct sockaddr_in));
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    out, (socklen_t)len);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(ss, sa, sizeof(struct sockaddr_in6));
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
		    (socklen_t)len);
	}
}

/* ---------------------------------------------------------- sessions */

/* Copies the live session for id (touching it) into *out; 0 if none. */
static int
session_find(const char *id, struct session *out)
{
	uint64_t	now = now_ms();
	int		i, found = 0;

	if (id == NULL || strlen(id) != CONSOLE_TOKEN_HEX)
		return 0;
	pthread_mutex_lock(&lock);
	for (i = 0; i < SESSIONS_MAX; i++) {
		struct session	*s = &sessions[i];

		if (s->id[0] == '\0')
			continue;
		if (now - s->last_ms > console_conf->console_session_timeout) {
			log_info(NULL, "console user=%s action=session-expired "
			    "idle_ms=%llu", s->user,
			    (unsigned long long)(now - s->last_ms));
			memset(s, 0, sizeof(*s));
			continue;
		}
		if (!found && token_equal(id, s->id)) {
			s->last_ms = now;
			*out = *s;
			found = 1;
		}
	}
	pthread_mutex_unlock(&lock);
	return found;
}

static int
session_new(const char *user, struct session *out)
{
	uint64_t	now = now_ms();
	int		i, slot = -1;
	uint64_t	oldest = UINT64_MAX;

	memset(out, 0, sizeof(*out));
	if (random_hex(out->id) == -1 || random_hex(out->csrf) == -1)
		return -1;
	snprintf(out->user, sizeof(out->user), "%s", user);
	out->last_ms = now;
	pthread_mutex_lock(&lock);
	/* A free slot, else the longest idle session goes. */
	for (i = 0; i < SESSIONS_MAX; i++) {
		if (sessions[i].id[0] == '\0' || now - sessions[i].last_ms >
		    console_conf->console_session_timeout) {
			slot = i;
			break;
		}
		if (sessions[i].last_ms < oldest) {
			oldest = sessions[i].last_ms;
			slot = i;
		}
	}
	sessions[slot] = *out;
	pthread_mutex_unlock(&lock);
	return 0;
}

static void
session_end(const char *id)
{
	int	i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < SESSIONS_MAX; i++)
		if (sessions[i].id[0] != '\0' && token_equal(id, sessions[i].id))
			memset(&sessions[i], 0, sizeof(sessions[i]));
	pthread_mutex_unlock(&lock);
}

/* ------------------------------------------------------------ logins */

int
user_valid(const char *u)
{
	size_t	n = strlen(u);

	return n > 0 && n < CONSOLE_USER_MAX && strspn(u,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") == n;
}

/* The account's hash from console_users_file, read at each login so that
 * a changed file needs no restart. */
static int
user_hash(const char *user, char *hash, size_t len)
{
	FILE	*fp;
	char	 line[USERS_LINE_MAX], *colon;
	size_t	 ul = strlen(user);
	int	 found = 0;

	if ((fp = fopen(console_conf->console_users_file, "re")) == NULL) {
		log_err(NULL, "console users file %s: %s",
		    console_conf->console_users_file, strerror(errno));
		return 0;
	}
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if ((colon = strchr(line, ':')) == NULL ||
		    (size_t)(colon - line) != ul ||
		    strncmp(line, user, ul) != 0)
			continue;
		snprintf(hash, len, "%s", colon + 1);
		found = 1;
	}
	fclose(fp);
	return found;
}

static int
password_ok(const char *user, const char *pw)
{
	struct crypt_data	*cd;
	char			 hash[USERS_LINE_MAX];
	const char		*h;
	int			 known, ok;

	known = user_valid(user) && user_hash(user, hash, sizeof(hash));
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return 0;
	h = crypt_r(pw, known ? hash : dummy_hash, cd);
	ok = known && h != NULL && h[0] != '*' &&
	    strlen(h) == strlen(hash) && token_equal(h, hash);
	free(cd);
	return ok;
}

/* Failed logins per address: each one makes the next attempt from there
 * wait longer (1, 2, 4 ... 16 s), for FAIL_WINDOW_S. */
static unsigned
fail_delay(const char *addr, int record)
{
	time_t		now = time(NULL);
	unsigned	n = 0;
	int		i, slot = 0;

	pthread_mutex_lock(&lock);
	for (i = 0; i < FAIL_SLOTS && strcmp(fails[i].addr, addr) != 0; i++)
		if (fails[i].last < fails[slot].last)
			slot = i;
	if (i < FAIL_SLOTS)
		slot = i;
	else if (record) {
		snprintf(fails[slot].addr, sizeof(fails[slot].addr), "%s",
		    addr);
		fails[slot].count = 0;
	} else
		goto done;
	if (now - fails[slot].last > FAIL_WINDOW_S)
		fails[slot].count = 0;
	if (record) {
		fails[slot].count++;
		fails[slot].last = now;
	}
	n = fails[slot].count;
done:
	pthread_mutex_unlock(&lock);
	if (n == 0)
		return 0;
	return n > 5 ? FAIL_DELAY_MAX_S : 1u << (n - 1);
}

/* ------------------------------------------------------------- forms */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The value of name in an urlencoded body, decoded into out. */
const char *
form_get(const char *form, const char *name, char *out, size_t outlen)
{
	size_t		nl = strlen(name), o = 0;
	const char	*p = form, *v;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
			for (v = p + nl + 1; *v != '\0' && *v != '&' &&
			    o + 1 < outlen; v++) {
				if (*v == '+')
					out[o++] = ' ';
				else if (*v == '%' && hexval(v[1]) >= 0 &&
				    hexval(v[2]) >= 0) {
					out[o++] = (char)(hexval(v[1]) * 16 +
					    hexval(v[2]));
					v += 2;
				} else
					out[o++] = *v;
			}
			out[o] = '\0';
			return out;
		}
		if ((p = strchr(p, '&')) != NULL)
			p++;
	}
	return NULL;
}

/* A request's argument: the POST body's, else the query string's. */
const char *
console_arg(const struct console_req *r, const char *name, char *out,
    size_t outlen)
{
	const char	*v;

	if (r->form[0] != '\0' && form_get(r->form, name, out, outlen))
		return out;
	v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
	if (v == NULL)
		return NULL;
	snprintf(out, outlen, "%s", v);
	return out;
}

/* --------------------------------------------------------- responses */

static enum MHD_Result
respond(struct MHD_Connection *c, struct console_page *p,
    const char *cookie1, const char *cookie2, const char *location)
{
	struct MHD_Response	*rs;
	enum MHD_Result		 ret;

	rs = MHD_create_response_from_buffer(p->len, p->text,
	    MHD_RESPMEM_MUST_FREE);
	if (rs == NULL) {
		free(p->text);
		return MHD_NO;
	}
	p->text = NULL;
	MHD_add_response_header(rs, "Content-Type", p->type);
	MHD_add_response_header(rs, "Content-Security-Policy", csp);
	MHD_add_response_header(rs, "X-Frame-Options", "DENY");
	MHD_add_response_header(rs, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(rs, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(rs, "Cache-Control", "no-store");
	if (cookie1 != NULL)
		MHD_add_response_header(rs, "Set-Cookie", cookie1);
	if (cookie2 != NULL)
		MHD_add_response_header(rs, "Set-Cookie", cookie2);
	if (location != NULL)
		MHD_add_response_header(rs, "Location", location);
	ret = MHD_queue_response(c, (unsigned)p->status, rs);
	MHD_destroy_response(rs);
	return ret;
}

static void
page_text(struct console_page *p, int status, const char *type,
    const char *text)
{
	p->fp = open_memstream(&p->text, &p->len);
	if (p->fp != NULL) {
		fputs(text, p->fp);
		fclose(p->fp);
		p->fp = NULL;
	}
	p->status = status;
	p->type = type;
}

static enum MHD_Result
redirect(struct MHD_Connection *c, const char *to, const char *cookie1,
    const char *cookie2)
{
	struct console_page	p = { 0 };

	page_text(&p, MHD_HTTP_SEE_OTHER, "text/plain; charset=utf-8",
	    "see other\n");
	return respond(c, &p, cookie1, cookie2, to);
}

/* /metrics: sporkd's `metrics` answer, its "ok" line taken off. */
static void
metrics(struct console_page *p)
{
	char	*out;
	size_t	 len;

	if (ctl_ask("metrics", &out, &len) == -1) {
		page_text(p, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "text/plain; charset=utf-8", "# sporkd does not answer "
		    "on its control socket\n");
		return;
	}
	if (strncmp(out, "ok\n", 3) == 0)
		page_text(p, MHD_HTTP_OK,
		    "text/plain; version=0.0.4; charset=utf-8", out + 3);
	else if (strncmp(out, "error: unknown command", 22) == 0)
		page_text(p, MHD_HTTP_NOT_IMPLEMENTED,
		    "text/plain; charset=utf-8", "# this sporkd has no "
		    "metrics command\n");
	else
		page_text(p, MHD_HTTP_BAD_GATEWAY, "text/plain; charset=utf-8",
		    out);
	free(out);
}

/* ----------------------------------------------------------- routing */

static enum MHD_Result
do_login(struct MHD_Connection *c, struct console_req *r,
    struct console_page *p)
{
	char		 user[CONSOLE_USER_MAX * 2], pw[512];
	char		 tok[CONSOLE_TOKEN_HEX + 1], cookie[256];
	const char	*pre;
	struct session	 s;
	unsigned	 d;

	pre = MHD_lookup_connection_value(c, MHD_COOKIE_KIND,
	    COOKIE_PRELOGIN);
	if (form_get(r->form, "csrf", tok, sizeof(tok)) == NULL ||
	    pre == NULL || strlen(pre) != CONSOLE_TOKEN_HEX ||
	    !token_equal(tok, pre)) {
		log_warn(NULL, "console user=- action=login result=refused "
		    "reason=csrf from=%s", r->from);
		page_error(p, r, MHD_HTTP_FORBIDDEN, "The login form has "
		    "expired: load it again.");
		return respond(c, p, NULL, NULL, NULL);
	}
	if (form_get(r->form, "user", user, sizeof(user)) == NULL)
		user[0] = '\0';
	if (form_get(r->form, "password", pw, sizeof(pw)) == NULL)
		pw[0] = '\0';
	/* An address that failed before waits before it is even checked. */
	if ((d = fail_delay(r->from, 0)) > 0)
		sleep(d);
	if (!password_ok(user, pw)) {
		explicit_bzero(pw, sizeof(pw));
		d = fail_delay(r->from, 1);
		log_warn(NULL, "console user=%s action=login result=failed "
		    "from=%s delay_s=%u", user_valid(user) ? user : "(invalid)",
		    r->from, d);
		sleep(1);
		page_login(p, r, pre, "Wrong user name or password.");
		p->status = MHD_HTTP_FORBIDDEN;
		return respond(c, p, NULL, NULL, NULL);
	}
	explicit_bzero(pw, sizeof(pw));
	if (session_new(user, &s) == -1) {
		page_error(p, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "No random bytes for a session.");
		return respond(c, p, NULL, NULL, NULL);
	}
	log_info(NULL, "console user=%s action=login result=ok from=%s",
	    s.user, r->from);
	snprintf(cookie, sizeof(cookie), COOKIE_SESSION "=%s" COOKIE_ATTRS,
	    s.id);
	return redirect(c, "/", cookie, COOKIE_PRELOGIN "=" COOKIE_ATTRS
	    "; Max-Age=0");
}

static enum MHD_Result
login_form(struct MHD_Connection *c, struct console_req *r,
    struct console_page *p)
{
	char		 tok[CONSOLE_TOKEN_HEX + 1], cookie[256];
	const char	*pre;

	/* The same token while the browser has one: a second load of the
	 * form (another tab, a favicon's redirect) must not void the first. */
	pre = MHD_lookup_connection_value(c, MHD_COOKIE_KIND,
	    COOKIE_PRELOGIN);
	if (pre != NULL && strlen(pre) == CONSOLE_TOKEN_HEX &&
	    strspn(pre, "0123456789abcdef") == CONSOLE_TOKEN_HEX)
		snprintf(tok, sizeof(tok), "%s", pre);
	else if (random_hex(tok) == -1) {
		page_error(p, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "No random bytes.");
		return respond(c, p, NULL, NULL, NULL);
	}
	snprintf(cookie, sizeof(cookie), COOKIE_PRELOGIN "=%s" COOKIE_ATTRS,
	    tok);
	page_login(p, r, tok, NULL);
	return respond(c, p, cookie, NULL, NULL);
}

static enum MHD_Result
route(struct MHD_Connection *c, const char *url, const char *method,
    const char *form)
{
	struct console_req	 r = { .form = form, .conn = c };
	struct console_page	 p = { 0 };
	struct sockaddr_storage	 ss;
	struct session		 s;
	char			 from[INET6_ADDRSTRLEN], tok[128];
	const char		*sid;
	int			 post = strcmp(method, "POST") == 0;
	int			 logged_in;

	client_addr(c, from, sizeof(from), &ss);
	r.from = from;
	if (!post && strcmp(method, "GET") != 0 &&
	    strcmp(method, "HEAD") != 0) {
		page_text(&p, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "text/plain; charset=utf-8", "GET or POST only\n");
		return respond(c, &p, NULL, NULL, NULL);
	}
	if (strcmp(url, "/style.css") == 0) {
		page_text(&p, MHD_HTTP_OK, "text/css", console_css);
		return respond(c, &p, NULL, NULL, NULL);
	}
	if (strcmp(url, "/favicon.ico") == 0) {
		page_text(&p, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
		    "no icon\n");
		return respond(c, &p, NULL, NULL, NULL);
	}
	sid = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE_SESSION);
	logged_in = session_find(sid, &s);
	if (logged_in) {
		r.user = s.user;
		r.csrf = s.csrf;
	}
	if (strcmp(url, "/metrics") == 0 && !post) {
		if (!logged_in && !cidr_list_match(
		    console_conf->console_metrics_networks.net,
		    console_conf->console_metrics_networks.n, &ss)) {
			page_text(&p, MHD_HTTP_UNAUTHORIZED,
			    "text/plain; charset=utf-8", "log in first, or "
			    "ask from console_metrics_networks\n");
			return respond(c, &p, NULL, NULL, NULL);
		}
		metrics(&p);
		return respond(c, &p, NULL, NULL, NULL);
	}
	if (strcmp(url, "/login") == 0) {
		if (post)
			return do_login(c, &r, &p);
		if (logged_in)
			return redirect(c, "/", NULL, NULL);
		return login_form(c, &r, &p);
	}
	if (!logged_in) {
		if (post) {
			log_warn(NULL, "console user=- action=%s result=refused "
			    "reason=no-session from=%s", url, from);
			page_error(&p, &r, MHD_HTTP_FORBIDDEN, "Not logged in.");
			return respond(c, &p, NULL, NULL, NULL);
		}
		return redirect(c, "/login", NULL, NULL);
	}
	/* Every state-changing request: POST, with this session's token. */
	if (post && (form_get(form, "csrf", tok, sizeof(tok)) == NULL ||
	    !token_equal(tok, s.csrf))) {
		log_warn(NULL, "console user=%s action=%s result=refused "
		    "reason=csrf from=%s", s.user, url, from);
		page_error(&p, &r, MHD_HTTP_FORBIDDEN, "Refused: the form's "
		    "token is missing or wrong. Reload the page and try "
		    "again.");
		return respond(c, &p, NULL, NULL, NULL);
	}
	if (post && strcmp(url, "/logout") == 0) {
		session_end(s.id);
		log_info(NULL, "console user=%s action=logout result=ok "
		    "from=%s", s.user, from);
		return redirect(c, "/login", COOKIE_SESSION "=" COOKIE_ATTRS
		    "; Max-Age=0", NULL);
	}
	if (post && strcmp(url, "/quarantine/release") == 0)
		page_q_do(&p, &r, "release");
	else if (post && strcmp(url, "/quarantine/delete") == 0)
		page_q_do(&p, &r, "delete");
	else if (post)
		page_error(&p, &r, MHD_HTTP_NOT_FOUND, "No such action.");
	else if (strcmp(url, "/") == 0)
		page_dashboard(&p, &r);
	else if (strcmp(url, "/track") == 0)
		page_track(&p, &r);
	else if (strcmp(url, "/track/message") == 0)
		page_track_msg(&p, &r);
	else if (strcmp(url, "/quarantine") == 0)
		page_quarantine(&p, &r);
	else if (strcmp(url, "/quarantine/show") == 0)
		page_q_show(&p, &r);
	else if (strcmp(url, "/quarantine/release") == 0)
		page_q_confirm(&p, &r, "release");
	else if (strcmp(url, "/quarantine/delete") == 0)
		page_q_confirm(&p, &r, "delete");
	else
		page_error(&p, &r, MHD_HTTP_NOT_FOUND, "No such page.");
	return respond(c, &p, NULL, NULL, NULL);
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct req_state	*st = *con_cls;
	struct console_page	 p = { 0 };

	(void)cls;
	(void)version;
	if (st == NULL) {
		if ((st = calloc(1, sizeof(*st))) == NULL)
			return MHD_NO;
		*con_cls = st;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (st->len + *upload_size > FORM_MAX)
			st->too_big = 1;
		else {
			memcpy(st->body + st->len, upload, *upload_size);
			st->len += *upload_size;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (st->too_big) {
		page_text(&p, MHD_HTTP_CONTENT_TOO_LARGE,
		    "text/plain; charset=utf-8", "form too large\n");
		return respond(c, &p, NULL, NULL, NULL);
	}
	st->body[st->len] = '\0';
	/* A NUL in the body would end the form early: refuse it whole. */
	if (strlen(st->body) != st->len) {
		page_text(&p, MHD_HTTP_BAD_REQUEST,
		    "text/plain; charset=utf-8", "bad form\n");
		return respond(c, &p, NULL, NULL, NULL);
	}
	return route(c, url, method, st->body);
}

static void
completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char	line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\r\n")] = '\0';
	log_warn(NULL, "console http: %s", line);
}

int
console_http_start(const int *fds, int nfds, const char *cert,
    const char *key, char *err, size_t errlen)
{
	struct crypt_data	*cd;
	char			 pw[CONSOLE_TOKEN_HEX + 1];
	char			 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	const char		*h;
	int			 i;

	if ((cd = calloc(1, sizeof(*cd))) == NULL || random_hex(pw) == -1 ||
	    crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL ||
	    (h = crypt_r(pw, salt, cd)) == NULL || h[0] == '*') {
		free(cd);
		snprintf(err, errlen, "crypt: no yescrypt");
		return -1;
	}
	snprintf(dummy_hash, sizeof(dummy_hash), "%s", h);
	free(cd);

	for (i = 0; i < nfds; i++) {
		daemons[i] = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
		    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS |
		    MHD_USE_ERROR_LOG, 0, NULL, NULL, access_cb, NULL,
		    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		    MHD_OPTION_LISTEN_SOCKET, fds[i],
		    MHD_OPTION_HTTPS_MEM_CERT, cert,
		    MHD_OPTION_HTTPS_MEM_KEY, key,
		    MHD_OPTION_HTTPS_PRIORITIES,
		    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNS_MAX,
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
		    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL,
		    MHD_OPTION_END);
		if (daemons[i] == NULL) {
			snprintf(err, errlen, "libmicrohttpd did not start "
			    "(certificate or key not usable?)");
			return -1;
		}
		ndaemons = i + 1;
	}
	return 0;
}

void
console_http_stop(void)
{
	int	i;

	for (i = 0; i < ndaemons; i++)
		MHD_stop_daemon(daemons[i]);
	ndaemons = 0;
}
