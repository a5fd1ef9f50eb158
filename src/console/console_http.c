/* SPDX-License-Identifier: MIT */
/*
 * The console's HTTP side: libmicrohttpd over TLS on the sockets main()
 * bound, one thread per connection, a few per client address. This file
 * owns who may do what: logins (accounts file, crypt(3), at most
 * CRYPT_CONCURRENT_MAX at once, slowed per address, per account and
 * refused beyond a global rate), sessions (ids from getrandom, expiry
 * after console_session_timeout without a request and SESSION_LIFETIME_MS
 * after the login), CSRF tokens (one per session, required on every POST,
 * compared in constant time), the security headers every response
 * carries, and the routing of a request to its page. It trusts nothing in
 * a request; pages get the decoded arguments through console_arg() and
 * never see a cookie.
 */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
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
#define PASSWORD_MAX		512
/* yescrypt takes about 16 MiB per hash: this many at once, never a queue. */
#define CRYPT_CONCURRENT_MAX	2
#define CRYPT_BUSY_RETRY_S	5
#define FAIL_SLOTS		64	/* addresses (IPv6: /64s) that failed */
#define FAIL_USER_SLOTS		64	/* accounts that failed */
#define FAIL_KEY_MAX		INET6_ADDRSTRLEN
#define FAIL_WINDOW_S		900
#define FAIL_DELAY_MAX_S	16
#define FAILS_PER_MIN_MAX	30	/* all addresses and accounts together */
#define SESSION_LIFETIME_MS	(12ULL * 3600 * 1000)	/* however active */
#define HTTP_CONNS_MAX		32
#define HTTP_CONNS_PER_IP	4
#define HTTP_TIMEOUT_S		30
#define HSTS			"max-age=31536000"
/* TLS 1.2 and 1.3, forward secrecy and AEAD only: no RSA key exchange,
 * no CBC, no SHA-1 MAC; our order, not the client's. */
#define TLS_PRIORITIES		"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-RSA:-DHE-RSA:-AES-128-CBC:-AES-256-CBC:-CAMELLIA-128-CBC:" \
	"-CAMELLIA-256-CBC:-SHA1:%SERVER_PRECEDENCE"
/* __Host-: the browser takes them only with Secure, Path=/, no Domain. */
#define COOKIE_SESSION		"__Host-spork_session"
#define COOKIE_PRELOGIN		"__Host-spork_login"
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
	uint64_t	created_ms;
	uint64_t	last_ms;
};

/* Failed logins of one address (or /64) or one account. */
struct fail_slot {
	char		key[FAIL_KEY_MAX];
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
static struct fail_slot		 user_fails[FAIL_USER_SLOTS];
static time_t			 fail_minute;	/* now / 60 */
static unsigned			 fails_this_minute;
static pthread_mutex_t		 lock = PTHREAD_MUTEX_INITIALIZER;
static sem_t			 crypt_slots;

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

/* What failed logins are counted by: the address, an IPv6 client's /64
 * (one host has them all), an IPv4-mapped one as IPv4. */
static void
fail_key(const struct sockaddr_storage *ss, const char *from, char *out,
    size_t len)
{
	const struct in6_addr	*a6;
	struct in6_addr		 net;

	if (ss->ss_family != AF_INET6) {
		snprintf(out, len, "%s", from);
		return;
	}
	a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a6)) {
		inet_ntop(AF_INET, &a6->s6_addr[12], out, (socklen_t)len);
		return;
	}
	memset(&net, 0, sizeof(net));
	memcpy(&net, a6, 8);
	inet_ntop(AF_INET6, &net, out, (socklen_t)len);
	if (strlen(out) + 3 < len)
		strcat(out, "/64");
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

/* Idle for console_session_timeout, or older than SESSION_LIFETIME_MS. */
static const char *
session_expired(const struct session *s, uint64_t now)
{
	if (now - s->last_ms > console_conf->console_session_timeout)
		return "idle";
	if (now - s->created_ms > SESSION_LIFETIME_MS)
		return "lifetime";
	return NULL;
}

/* Copies the live session for id (touching it) into *out; 0 if none. */
static int
session_find(const char *id, struct session *out)
{
	uint64_t	now = now_ms();
	const char	*why;
	int		i, found = 0;

	if (id == NULL || strlen(id) != CONSOLE_TOKEN_HEX)
		return 0;
	pthread_mutex_lock(&lock);
	for (i = 0; i < SESSIONS_MAX; i++) {
		struct session	*s = &sessions[i];

		if (s->id[0] == '\0')
			continue;
		if ((why = session_expired(s, now)) != NULL) {
			log_info(NULL, "console user=%s action=session-expired "
			    "reason=%s idle_ms=%llu age_ms=%llu", s->user, why,
			    (unsigned long long)(now - s->last_ms),
			    (unsigned long long)(now - s->created_ms));
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
	out->created_ms = now;
	out->last_ms = now;
	pthread_mutex_lock(&lock);
	/* A free slot, else the longest idle session goes. */
	for (i = 0; i < SESSIONS_MAX; i++) {
		if (sessions[i].id[0] == '\0' ||
		    session_expired(&sessions[i], now) != NULL) {
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

/* Ends the session id names; its account into user (when given), 0 if
 * there was none. */
static int
session_end(const char *id, char *user, size_t userlen)
{
	int	i, found = 0;

	if (id == NULL || strlen(id) != CONSOLE_TOKEN_HEX)
		return 0;
	pthread_mutex_lock(&lock);
	for (i = 0; i < SESSIONS_MAX; i++)
		if (sessions[i].id[0] != '\0' &&
		    token_equal(id, sessions[i].id)) {
			if (user != NULL)
				snprintf(user, userlen, "%s", sessions[i].user);
			explicit_bzero(&sessions[i], sizeof(sessions[i]));
			found = 1;
		}
	pthread_mutex_unlock(&lock);
	return found;
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

/*
 * crypt_r() with hash (the account's, or dummy_hash for none: the same
 * work), if one of the CRYPT_CONCURRENT_MAX slots is free: 1 right,
 * 0 wrong, -1 busy (no slot; nothing was hashed).
 */
static int
password_check(const char *hash, int known, const char *pw)
{
	struct crypt_data	*cd;
	const char		*h;
	int			 ok;

	if (sem_trywait(&crypt_slots) == -1)
		return -1;
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		sem_post(&crypt_slots);
		return 0;
	}
	h = crypt_r(pw, known ? hash : dummy_hash, cd);
	ok = known && h != NULL && h[0] != '*' &&
	    strlen(h) == strlen(hash) && token_equal(h, hash);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	sem_post(&crypt_slots);
	return ok;
}

/* key's slot in tab (made when create; the least recent one goes), with
 * its count cleared after FAIL_WINDOW_S; NULL if none. Under lock. */
static struct fail_slot *
fail_slot(struct fail_slot *tab, int n, const char *key, time_t now,
    int create)
{
	struct fail_slot	*s = NULL;
	int			 i, old = 0;

	for (i = 0; i < n && s == NULL; i++) {
		if (strcmp(tab[i].key, key) == 0)
			s = &tab[i];
		else if (tab[i].last < tab[old].last)
			old = i;
	}
	if (s == NULL) {
		if (!create)
			return NULL;
		s = &tab[old];
		snprintf(s->key, sizeof(s->key), "%s", key);
		s->count = 0;
		s->last = now;
	}
	if (now - s->last > FAIL_WINDOW_S)
		s->count = 0;
	return s;
}

/* After n failures: 0, 1, 2, 4 ... FAIL_DELAY_MAX_S seconds. */
static unsigned
fail_delay(unsigned n)
{
	if (n == 0)
		return 0;
	return n > 5 ? FAIL_DELAY_MAX_S : 1u << (n - 1);
}

/*
 * Before a password is hashed, the attempt counts as a failure of its
 * address and of its account (known accounts only: made-up names must
 * not push real ones out), so that parallel attempts see it at once.
 * -1 when the minute's FAILS_PER_MIN_MAX is spent (*retry_s: until the
 * next minute), else 0 and *delay_s, what the failures so far ask for.
 */
static int
login_admit(const char *addr, const char *user, time_t now,
    unsigned *delay_s, unsigned *retry_s)
{
	struct fail_slot	*a, *u = NULL;
	unsigned		 n;

	pthread_mutex_lock(&lock);
	if (now / 60 != fail_minute) {
		fail_minute = now / 60;
		fails_this_minute = 0;
	}
	if (fails_this_minute >= FAILS_PER_MIN_MAX) {
		pthread_mutex_unlock(&lock);
		*retry_s = (unsigned)(60 - now % 60);
		return -1;
	}
	fails_this_minute++;
	a = fail_slot(fails, FAIL_SLOTS, addr, now, 1);
	n = a->count++;
	a->last = now;
	if (user != NULL) {
		u = fail_slot(user_fails, FAIL_USER_SLOTS, user, now, 1);
		if (u->count > n)
			n = u->count;
		u->count++;
		u->last = now;
	}
	pthread_mutex_unlock(&lock);
	*delay_s = fail_delay(n);
	return 0;
}

/* The attempt's outcome: a right password clears its address's and its
 * account's failures and takes it off the minute's count. Returns what
 * the next attempt from there will wait. */
static unsigned
login_outcome(const char *addr, const char *user, time_t now, int ok)
{
	struct fail_slot	*a, *u = NULL;
	unsigned		 n = 0;

	pthread_mutex_lock(&lock);
	a = fail_slot(fails, FAIL_SLOTS, addr, now, 0);
	if (user != NULL)
		u = fail_slot(user_fails, FAIL_USER_SLOTS, user, now, 0);
	if (ok) {
		if (a != NULL)
			memset(a, 0, sizeof(*a));
		if (u != NULL)
			memset(u, 0, sizeof(*u));
		if (now / 60 == fail_minute && fails_this_minute > 0)
			fails_this_minute--;
	} else {
		n = a != NULL ? a->count : 0;
		if (u != NULL && u->count > n)
			n = u->count;
	}
	pthread_mutex_unlock(&lock);
	return fail_delay(n);
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
	MHD_add_response_header(rs, "Strict-Transport-Security", HSTS);
	if (p->retry_after_s > 0) {
		char	ra[16];

		snprintf(ra, sizeof(ra), "%u", p->retry_after_s);
		MHD_add_response_header(rs, "Retry-After", ra);
	}
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

/* A token from a form: exactly CONSOLE_TOKEN_HEX bytes, else NULL. */
static const char *
form_token(const char *form, char *tok, size_t len)
{
	if (form_get(form, "csrf", tok, len) == NULL ||
	    strlen(tok) != CONSOLE_TOKEN_HEX)
		return NULL;
	return tok;
}

static enum MHD_Result
do_login(struct MHD_Connection *c, struct console_req *r,
    struct console_page *p, const char *fkey)
{
	char		 user[CONSOLE_USER_MAX * 2], pw[PASSWORD_MAX];
	char		 tok[CONSOLE_TOKEN_HEX + 2], cookie[256];
	char		 hash[USERS_LINE_MAX], old[CONSOLE_USER_MAX];
	const char	*pre, *sid, *who;
	struct session	 s;
	unsigned	 d = 0, retry = 0;
	int		 known, ok;
	enum MHD_Result	 ret;

	hash[0] = '\0';
	pre = MHD_lookup_connection_value(c, MHD_COOKIE_KIND,
	    COOKIE_PRELOGIN);
	if (form_token(r->form, tok, sizeof(tok)) == NULL || pre == NULL ||
	    strlen(pre) != CONSOLE_TOKEN_HEX || !token_equal(tok, pre)) {
		log_warn(NULL, "console user=- action=login result=refused "
		    "reason=csrf from=%s", r->from);
		page_error(p, r, MHD_HTTP_FORBIDDEN, "The login form has "
		    "expired: load it again.");
		return respond(c, p, NULL, NULL, NULL);
	}
	if (form_get(r->form, "user", user, sizeof(user)) == NULL)
		user[0] = '\0';
	who = user_valid(user) ? user : "(invalid)";
	known = user_valid(user) && user_hash(user, hash, sizeof(hash));
	if (login_admit(fkey, known ? user : NULL, time(NULL), &d,
	    &retry) == -1) {
		log_warn(NULL, "console user=%s action=login result=refused "
		    "reason=rate from=%s retry_s=%u", who, r->from, retry);
		page_error(p, r, MHD_HTTP_SERVICE_UNAVAILABLE, "Too many failed "
		    "logins: try again in a minute.");
		p->retry_after_s = retry;
		ret = respond(c, p, NULL, NULL, NULL);
		goto done;
	}
	/* Counted already: parallel attempts from there wait longer. */
	if (d > 0)
		sleep(d);
	if (form_get(r->form, "password", pw, sizeof(pw)) == NULL)
		pw[0] = '\0';
	ok = password_check(hash, known, pw);
	explicit_bzero(pw, sizeof(pw));
	if (ok == -1) {
		log_warn(NULL, "console user=%s action=login result=refused "
		    "reason=busy from=%s waited_s=%u", who, r->from, d);
		page_error(p, r, MHD_HTTP_SERVICE_UNAVAILABLE, "Too many "
		    "logins at once: try again in a few seconds.");
		p->retry_after_s = CRYPT_BUSY_RETRY_S;
		ret = respond(c, p, NULL, NULL, NULL);
		goto done;
	}
	if (!ok) {
		d = login_outcome(fkey, known ? user : NULL, time(NULL), 0);
		log_warn(NULL, "console user=%s action=login result=failed "
		    "from=%s delay_s=%u", who, r->from, d);
		sleep(1);
		page_login(p, r, pre, "Wrong user name or password.");
		p->status = MHD_HTTP_FORBIDDEN;
		ret = respond(c, p, NULL, NULL, NULL);
		goto done;
	}
	login_outcome(fkey, user, time(NULL), 1);
	/* A login ends the session this browser had: one at a time. */
	sid = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE_SESSION);
	if (session_end(sid, old, sizeof(old)))
		log_info(NULL, "console user=%s action=session-replaced "
		    "from=%s", old, r->from);
	if (session_new(user, &s) == -1) {
		page_error(p, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "No random bytes for a session.");
		ret = respond(c, p, NULL, NULL, NULL);
		goto done;
	}
	log_info(NULL, "console user=%s action=login result=ok from=%s "
	    "waited_s=%u", s.user, r->from, d);
	snprintf(cookie, sizeof(cookie), COOKIE_SESSION "=%s" COOKIE_ATTRS,
	    s.id);
	explicit_bzero(&s, sizeof(s));
	ret = redirect(c, "/", cookie, COOKIE_PRELOGIN "=" COOKIE_ATTRS
	    "; Max-Age=0");
	explicit_bzero(cookie, sizeof(cookie));
done:
	explicit_bzero(hash, sizeof(hash));
	return ret;
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
	char			 from[INET6_ADDRSTRLEN], fkey[FAIL_KEY_MAX];
	char			 tok[CONSOLE_TOKEN_HEX + 2];
	const char		*sid;
	int			 post = strcmp(method, "POST") == 0;
	int			 logged_in;

	client_addr(c, from, sizeof(from), &ss);
	fail_key(&ss, from, fkey, sizeof(fkey));
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
			return do_login(c, &r, &p, fkey);
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
	if (post && (form_token(form, tok, sizeof(tok)) == NULL ||
	    !token_equal(tok, s.csrf))) {
		log_warn(NULL, "console user=%s action=%s result=refused "
		    "reason=csrf from=%s", s.user, url, from);
		page_error(&p, &r, MHD_HTTP_FORBIDDEN, "Refused: the form's "
		    "token is missing or wrong. Reload the page and try "
		    "again.");
		return respond(c, &p, NULL, NULL, NULL);
	}
	if (post && strcmp(url, "/logout") == 0) {
		session_end(s.id, NULL, 0);
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
	/* A login's body holds a password. */
	if (*con_cls != NULL)
		explicit_bzero(*con_cls, sizeof(struct req_state));
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
	explicit_bzero(cd, sizeof(*cd));
	explicit_bzero(pw, sizeof(pw));
	free(cd);
	if (sem_init(&crypt_slots, 0, CRYPT_CONCURRENT_MAX) == -1) {
		snprintf(err, errlen, "sem_init: %s", strerror(errno));
		return -1;
	}

	for (i = 0; i < nfds; i++) {
		daemons[i] = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
		    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS |
		    MHD_USE_ERROR_LOG, 0, NULL, NULL, access_cb, NULL,
		    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		    MHD_OPTION_LISTEN_SOCKET, fds[i],
		    MHD_OPTION_HTTPS_MEM_CERT, cert,
		    MHD_OPTION_HTTPS_MEM_KEY, key,
		    MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNS_MAX,
		    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		    (unsigned)HTTP_CONNS_PER_IP,
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
