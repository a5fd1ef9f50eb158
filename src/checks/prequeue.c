/* SPDX-License-Identifier: MIT */
/*
 * Pre-queue checks, before a message is taken: DNS block and allow lists
 * (c-ares), SPF (the libspf2 helper), greylisting (disk or Redis), early
 * talkers, and which direction they apply to. The relay asks at four
 * points, the banner, MAIL, RCPT and DATA, and gets pass, wait (a lookup
 * is out; the session is woken when it lands) or a reply to give the
 * client itself. Lookups start as early as their inputs are known: the
 * lists at connect, SPF at MAIL, greylisting at RCPT. Nothing here
 * blocks; nothing here writes to the client's connection (the banner
 * check peeks, and drains an early talker's bytes before its refusal).
 * Every decision is one log line and a counter.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "buf.h"
#include "cidr.h"
#include "conf.h"
#include "dns.h"
#include "ev.h"
#include "greylist.h"
#include "greylist_redis.h"
#include "log.h"
#include "prequeue.h"
#include "sock.h"
#include "spf.h"

#define PQ_LOOKUPS_MAX		(2 * CONF_ZONES_MAX)
#define PQ_PATH_MAX		256
#define PQ_HEADERS_MAX		2048
#define PQ_REDIS_TIMEOUT_MS	3000
#define PQ_DRAIN_MAX		(64 * 1024)	/* an early talker's bytes */

enum pq_step { STEP_IDLE, STEP_PENDING, STEP_DONE };

struct pq_lookup {
	struct prequeue		*pq;
	int			 wl;		/* an allow list */
	int			 zone;		/* index in its list */
	struct dns_query	*q;
	int			 listed;
	char			 answer[INET_ADDRSTRLEN];
};

struct prequeue {
	char			 id[12];
	struct sockaddr_storage	 peer;
	char			 ip[SOCK_ADDRSTR_MAX];
	prequeue_wake_cb	*wake;
	void			*arg;
	int			 exempt;	/* direction not checked */
	int			 in_call;	/* no wake inside our own calls */
	/* connect */
	struct pq_lookup	 look[PQ_LOOKUPS_MAX];
	int			 nlook;
	int			 dns_pending;
	int			 whitelisted;
	int			 connect_zone;	/* listed, action connect; -1 */
	int			 rcpt_zone;	/* listed, action rcpt; -1 */
	struct ev_timer		 pause;
	int			 pause_pending;
	/* transaction */
	char			 sender[PQ_PATH_MAX];
	struct spf_query	*spfq;
	enum pq_step		 spf_step;
	struct spf_result	 spf;
	/* the recipient being greylisted */
	char			 rcpt[PQ_PATH_MAX];
	struct gr_query		*grq;
	enum pq_step		 gl_step;
	enum greylist_verdict	 gl;
	/* a refusal decided while earlier replies were still owed */
	char			 held_rcpt[PQ_PATH_MAX];
	char			 held[512];
	char			 headers[PQ_HEADERS_MAX];
};

typedef unsigned long long	counter;

static struct {
	counter	inbound, outbound, exempt, early_talker;
	counter	bl_listed[CONF_ZONES_MAX], bl_rejected[CONF_ZONES_MAX],
		bl_tagged[CONF_ZONES_MAX], bl_errors[CONF_ZONES_MAX];
	counter	wl_listed[CONF_ZONES_MAX], wl_errors[CONF_ZONES_MAX];
	counter	spf[SPFR_COUNT], spf_rejected, spf_tempfailed, spf_tagged;
	counter	gl[GL_ERROR + 1], gl_whitelisted;
} pq_stats;

static struct ev_loop		*pq_loop;
static const struct conf	*pq_conf;
static struct greylist_store	*pq_gl;
static int			 pq_redis;

/* ------------------------------------------------------------------ */

int
prequeue_init(struct ev_loop *loop, const struct conf *c, char *err,
    size_t errlen)
{
	struct greylist_times	t;
	char			path[CONF_PATH_MAX + 16];

	pq_loop = loop;
	pq_conf = c;
	if ((c->dnsbl_zones.n > 0 || c->dnswl_zones.n > 0) &&
	    dns_init(loop, &c->dns_servers, c->dns_timeout, err, errlen) == -1)
		return -1;
	if (c->spf_enable && spf_init(loop, c, err, errlen) == -1)
		return -1;
	if (!c->greylist_enable)
		return 0;
	t.min = c->greylist_min;
	t.max = c->greylist_max;
	t.expiry = c->greylist_expiry;
	if (c->greylist_redis[0] != '\0') {
		pq_redis = 1;
		return greylist_redis_init(loop, c->greylist_redis, &t,
		    PQ_REDIS_TIMEOUT_MS, err, errlen);
	}
	if (c->greylist_file[0] != '\0')
		snprintf(path, sizeof(path), "%s", c->greylist_file);
	else
		snprintf(path, sizeof(path), "%s/greylist", c->spool_dir);
	if ((pq_gl = greylist_open(path, &t, (int64_t)time(NULL), err,
	    errlen)) == NULL)
		return -1;
	log_info(NULL, "greylist file=%s triplets=%zu", path,
	    greylist_count(pq_gl));
	return 0;
}

static void
pq_wake(struct prequeue *pq)
{
	if (!pq->in_call)
		pq->wake(pq->arg);
}

static const char *
zone_action_name(int a)
{
	switch (a) {
	case ACT_CONNECT:	return "reject-connect";
	case ACT_TAG:		return "tag";
	default:		return "reject-rcpt";
	}
}

/* Every list has answered: settle what the connection is. */
static void
pq_lists_settle(struct prequeue *pq)
{
	const struct conf_zones	*bl = &pq_conf->dnsbl_zones;
	const struct conf_zones	*wl = &pq_conf->dnswl_zones;
	struct pq_lookup	*l;
	int			 i;

	for (i = 0; i < pq->nlook; i++) {
		l = &pq->look[i];
		if (l->wl && l->listed && !pq->whitelisted) {
			pq->whitelisted = 1;
			log_info(pq->id, "prequeue check=dnswl zone=%s client=%s "
			    "result=listed answer=%s action=skip-checks",
			    wl->zone[l->zone], pq->ip, l->answer);
		}
	}
	for (i = 0; i < pq->nlook; i++) {
		l = &pq->look[i];
		if (l->wl || !l->listed)
			continue;
		log_info(pq->id, "prequeue check=dnsbl zone=%s client=%s "
		    "result=listed answer=%s action=%s", bl->zone[l->zone],
		    pq->ip, l->answer, pq->whitelisted ? "none-whitelisted" :
		    zone_action_name(bl->action[l->zone]));
		if (pq->whitelisted)
			continue;
		if (bl->action[l->zone] == ACT_CONNECT && pq->connect_zone < 0)
			pq->connect_zone = l->zone;
		else if (bl->action[l->zone] == ACT_REJECT &&
		    pq->rcpt_zone < 0)
			pq->rcpt_zone = l->zone;
		else if (bl->action[l->zone] == ACT_TAG)
			pq_stats.bl_tagged[l->zone]++;
	}
}

static void
pq_dns_answer(void *arg, int status, const struct in_addr *a, int n)
{
	struct pq_lookup	*l = arg;
	struct prequeue		*pq = l->pq;
	const char		*zone;
	uint32_t		 h;
	int			 i;

	l->q = NULL;
	zone = l->wl ? pq_conf->dnswl_zones.zone[l->zone] :
	    pq_conf->dnsbl_zones.zone[l->zone];
	if (status == -1) {
		(l->wl ? pq_stats.wl_errors : pq_stats.bl_errors)[l->zone]++;
		log_info(pq->id, "prequeue check=%s zone=%s client=%s "
		    "result=error action=none", l->wl ? "dnswl" : "dnsbl", zone,
		    pq->ip);
	}
	/* Only 127.0.0.0/8 means listed; 127.255.255.0/24 is how lists
	 * say "you may not query us" (RFC 5782 and common practice). */
	for (i = 0; i < n; i++) {
		h = ntohl(a[i].s_addr);
		if ((h >> 24) != 127 || (h >> 8) == 0x7fffff)
			continue;
		l->listed = 1;
		inet_ntop(AF_INET, &a[i], l->answer, sizeof(l->answer));
		break;
	}
	if (l->listed)
		(l->wl ? pq_stats.wl_listed : pq_stats.bl_listed)[l->zone]++;
	else if (status == 0)
		log_debug(pq->id, "prequeue check=%s zone=%s client=%s "
		    "result=not-listed", l->wl ? "dnswl" : "dnsbl", zone,
		    pq->ip);
	if (--pq->dns_pending == 0) {
		pq_lists_settle(pq);
		pq_wake(pq);
	}
}

static void
pq_pause_done(struct ev_timer *t)
{
	struct prequeue	*pq = t->arg;

	pq->pause_pending = 0;
	pq_wake(pq);
}

static void
pq_lookup_start(struct prequeue *pq, int wl, int zone, const char *zname)
{
	struct pq_lookup	*l = &pq->look[pq->nlook++];
	char			 name[DNS_NAME_MAX + 1];

	l->pq = pq;
	l->wl = wl;
	l->zone = zone;
	if (dns_list_name(&pq->peer, zname, name, sizeof(name)) == -1) {
		pq_dns_answer(l, -1, NULL, 0);
		return;
	}
	l->q = dns_query_a(name, pq_dns_answer, l);
}

struct prequeue *
prequeue_new(const char *sid, const struct sockaddr_storage *peer,
    prequeue_wake_cb *wake, void *arg)
{
	const struct conf	*c = pq_conf;
	struct prequeue		*pq;
	int			 inside, i;

	if (c == NULL)
		return NULL;
	/* Nothing to check: no state kept (idle sessions stay small). */
	if (c->dnsbl_zones.n == 0 && c->dnswl_zones.n == 0 &&
	    !c->spf_enable && !c->greylist_enable && !c->early_talker &&
	    c->greet_pause == 0)
		return NULL;
	if ((pq = calloc(1, sizeof(*pq))) == NULL)
		return NULL;
	snprintf(pq->id, sizeof(pq->id), "%s", sid);
	pq->peer = *peer;
	pq->wake = wake;
	pq->arg = arg;
	pq->connect_zone = pq->rcpt_zone = -1;
	ev_timer_init(&pq->pause, pq_pause_done, pq);
	if (sock_format_host(peer, pq->ip, sizeof(pq->ip)) == -1)
		snprintf(pq->ip, sizeof(pq->ip), "unknown");
	inside = cidr_list_match(c->inside_networks.net, c->inside_networks.n,
	    peer);
	if (inside)
		pq_stats.outbound++;
	else
		pq_stats.inbound++;
	if (c->prequeue_apply != DIR_BOTH &&
	    c->prequeue_apply != (inside ? DIR_OUTBOUND : DIR_INBOUND)) {
		pq->exempt = 1;
		pq_stats.exempt++;
		log_debug(pq->id, "prequeue client=%s direction=%s checks=none",
		    pq->ip, inside ? "outbound" : "inbound");
		return pq;
	}
	/* All counted first: an answer that comes at once must not settle
	 * the lists before the others are asked. */
	pq->in_call = 1;
	pq->dns_pending = c->dnswl_zones.n + c->dnsbl_zones.n;
	for (i = 0; i < c->dnswl_zones.n; i++)
		pq_lookup_start(pq, 1, i, c->dnswl_zones.zone[i]);
	for (i = 0; i < c->dnsbl_zones.n; i++)
		pq_lookup_start(pq, 0, i, c->dnsbl_zones.zone[i]);
	pq->in_call = 0;
	if (c->greet_pause > 0) {
		pq->pause_pending = 1;
		ev_timer_set(pq_loop, &pq->pause, c->greet_pause);
	}
	return pq;
}

static void
pq_tx_cancel(struct prequeue *pq)
{
	spf_cancel(pq->spfq);
	pq->spfq = NULL;
	pq->spf_step = STEP_IDLE;
	greylist_redis_cancel(pq->grq);
	pq->grq = NULL;
	pq->gl_step = STEP_IDLE;
}

void
prequeue_free(struct prequeue *pq)
{
	int	i;

	if (pq == NULL)
		return;
	for (i = 0; i < pq->nlook; i++)
		dns_cancel(pq->look[i].q);
	ev_timer_del(pq_loop, &pq->pause);
	pq_tx_cancel(pq);
	free(pq);
}

/* ------------------------------------------------------------------ */
/* The banner                                                          */

/*
 * Before the server's banner reaches the client: hold it while a list or
 * the greet pause is pending; refuse a client that has already talked, or
 * one a "connect" list names.
 */
enum prequeue_answer
prequeue_greeting(struct prequeue *pq, int cfd, size_t buffered,
    char *reply, size_t len)
{
	const struct conf	*c = pq_conf;
	char			 b[4096];
	size_t			 drained = 0;
	ssize_t			 n;

	if (pq == NULL || pq->exempt)
		return PREQUEUE_PASS;
	if (c->early_talker && (buffered > 0 ||
	    recv(cfd, b, 1, MSG_PEEK | MSG_DONTWAIT) == 1)) {
		/* Unread bytes at close would turn it into a reset, and the
		 * refusal would be lost with them. */
		while (drained < PQ_DRAIN_MAX &&
		    (n = recv(cfd, b, sizeof(b), MSG_DONTWAIT)) > 0)
			drained += (size_t)n;
		pq_stats.early_talker++;
		log_info(pq->id, "prequeue check=early-talker client=%s "
		    "result=talked-first bytes=%zu action=reject", pq->ip,
		    buffered + drained);
		snprintf(reply, len, "554 5.5.0 Error: SMTP protocol "
		    "synchronization (client talked before the greeting)");
		return PREQUEUE_REPLY;
	}
	if (pq->dns_pending > 0 || pq->pause_pending)
		return PREQUEUE_WAIT;
	if (pq->connect_zone >= 0) {
		pq_stats.bl_rejected[pq->connect_zone]++;
		snprintf(reply, len, "554 5.7.1 Service unavailable; client "
		    "[%s] blocked using %s", pq->ip,
		    c->dnsbl_zones.zone[pq->connect_zone]);
		return PREQUEUE_REPLY;
	}
	return PREQUEUE_PASS;
}

/* ------------------------------------------------------------------ */
/* MAIL                                                                */

static enum action
spf_action(enum spf_res r)
{
	if (r == SPFR_FAIL)
		return (enum action)pq_conf->spf_fail_action;
	if (r == SPFR_SOFTFAIL)
		return (enum action)pq_conf->spf_softfail_action;
	return ACT_NONE;
}

static const char *
pq_action_name(enum action a)
{
	switch (a) {
	case ACT_REJECT:	return "reject";
	case ACT_TEMPFAIL:	return "tempfail";
	case ACT_TAG:		return "tag";
	case ACT_CONNECT:	return "reject-connect";
	default:		return "none";
	}
}

static void
pq_spf_done(struct prequeue *pq, const struct spf_result *r)
{
	enum action	a = spf_action(r->result);

	pq->spfq = NULL;
	pq->spf = *r;
	pq->spf_step = STEP_DONE;
	pq_stats.spf[r->result]++;
	if (a == ACT_TAG)
		pq_stats.spf_tagged++;
	log_info(pq->id, "prequeue check=spf client=%s sender=\"%s\" "
	    "result=%s action=%s%s%s%s", pq->ip, pq->sender,
	    spf_res_name(r->result), pq_action_name(a),
	    r->comment[0] ? " comment=\"" : "", r->comment,
	    r->comment[0] ? "\"" : "");
}

static void
pq_spf_answer(void *arg, const struct spf_result *r)
{
	struct prequeue	*pq = arg;

	pq_spf_done(pq, r);
	pq_wake(pq);
}

/* Copy the path out of "<path>" or a bare path; quotes become '?'. */
static void
pq_path(const char *in, size_t inlen, char *out, size_t len)
{
	size_t	i = 0, n = 0;

	while (i < inlen && in[i] == ' ')
		i++;
	if (i < inlen && in[i] == '<')
		i++;
	for (; i < inlen && in[i] != '>' && in[i] != ' ' && n + 1 < len; i++)
		out[n++] = (unsigned char)in[i] < 0x21 || in[i] == '"' ?
		    '?' : in[i];
	out[n] = '\0';
}

void
prequeue_mail(struct prequeue *pq, const char *sender, const char *helo)
{
	struct spf_result	r;
	char			h[PQ_PATH_MAX];

	if (pq == NULL)
		return;
	pq_tx_cancel(pq);
	pq_path(sender, strlen(sender), pq->sender, sizeof(pq->sender));
	if (pq->exempt || pq->whitelisted || !pq_conf->spf_enable)
		return;
	pq_path(helo, strlen(helo), h, sizeof(h));
	pq->spf_step = STEP_PENDING;
	if ((pq->spfq = spf_check(&pq->peer, h, pq->sender, pq_spf_answer,
	    pq)) == NULL) {
		memset(&r, 0, sizeof(r));
		r.result = SPFR_TEMPERROR;
		snprintf(r.comment, sizeof(r.comment), "SPF helper unavailable");
		pq_spf_done(pq, &r);
	}
}

/*
 * The server refused the MAIL the checks were started for: back to the
 * sender of the transaction that stands, or to none.
 */
void
prequeue_mail_restore(struct prequeue *pq, const char *sender,
    const char *helo)
{
	if (pq == NULL)
		return;
	if (sender != NULL) {
		prequeue_mail(pq, sender, helo);
		return;
	}
	pq_tx_cancel(pq);
	pq->sender[0] = '\0';
}

/* ------------------------------------------------------------------ */
/* RCPT                                                                */

static void
pq_gl_answer(void *arg, enum greylist_verdict v)
{
	struct prequeue	*pq = arg;

	pq->grq = NULL;
	pq->gl = v;
	pq->gl_step = STEP_DONE;
	pq_wake(pq);
}

static enum prequeue_answer
pq_greylist(struct prequeue *pq, const char *rcpt, char *reply, size_t len)
{
	char			key[GREYLIST_KEY_MAX];
	enum greylist_verdict	v;

	if (cidr_list_match(pq_conf->greylist_whitelist.net,
	    pq_conf->greylist_whitelist.n, &pq->peer)) {
		pq_stats.gl_whitelisted++;
		log_info(pq->id, "prequeue check=greylist client=%s "
		    "result=whitelisted action=none", pq->ip);
		return PREQUEUE_PASS;
	}
	if (greylist_key(&pq->peer, pq->sender, rcpt, key, sizeof(key)) == -1)
		return PREQUEUE_PASS;
	if (pq->gl_step != STEP_IDLE && strcmp(pq->rcpt, rcpt) != 0) {
		greylist_redis_cancel(pq->grq);
		pq->grq = NULL;
		pq->gl_step = STEP_IDLE;
	}
	switch (pq->gl_step) {
	case STEP_PENDING:
		return PREQUEUE_WAIT;
	case STEP_IDLE:
		snprintf(pq->rcpt, sizeof(pq->rcpt), "%s", rcpt);
		if (pq_redis) {
			pq->gl_step = STEP_PENDING;
			pq->in_call = 1;
			pq->grq = greylist_redis_check(key, pq_gl_answer, pq);
			pq->in_call = 0;
			if (pq->grq == NULL) {
				pq->gl = GL_ERROR;
				pq->gl_step = STEP_DONE;
			}
			if (pq->gl_step == STEP_PENDING)
				return PREQUEUE_WAIT;
		} else {
			pq->gl = greylist_check(pq_gl, key, (int64_t)time(NULL));
			pq->gl_step = STEP_DONE;
		}
		/* FALLTHROUGH */
	case STEP_DONE:
		break;
	}
	v = pq->gl;
	pq->gl_step = STEP_IDLE;
	pq_stats.gl[v]++;
	log_info(pq->id, "prequeue check=greylist triplet=\"%s\" store=%s "
	    "result=%s action=%s", key, pq_redis ? "redis" : "disk",
	    greylist_verdict_name(v), v == GL_NEW || v == GL_EARLY ?
	    "tempfail" : "none");
	if (v == GL_NEW || v == GL_EARLY) {
		snprintf(reply, len, "450 4.7.1 <%s>: Recipient address "
		    "rejected: Greylisted, try again later", rcpt);
		return PREQUEUE_REPLY;
	}
	return PREQUEUE_PASS;
}

static enum prequeue_answer
pq_rcpt(struct prequeue *pq, const char *rcpt, char *reply, size_t len)
{
	const struct conf	*c = pq_conf;
	enum action		 a;

	if (pq->rcpt_zone >= 0) {
		pq_stats.bl_rejected[pq->rcpt_zone]++;
		log_info(pq->id, "prequeue check=dnsbl zone=%s client=%s "
		    "rcpt=\"%s\" action=reject-rcpt",
		    c->dnsbl_zones.zone[pq->rcpt_zone], pq->ip, rcpt);
		snprintf(reply, len, "554 5.7.1 <%s>: Service unavailable; "
		    "client [%s] blocked using %s", rcpt, pq->ip,
		    c->dnsbl_zones.zone[pq->rcpt_zone]);
		return PREQUEUE_REPLY;
	}
	if (pq->spf_step == STEP_PENDING)
		return PREQUEUE_WAIT;
	if (pq->spf_step == STEP_DONE) {
		a = spf_action(pq->spf.result);
		if (a == ACT_REJECT || a == ACT_TEMPFAIL) {
			if (a == ACT_REJECT)
				pq_stats.spf_rejected++;
			else
				pq_stats.spf_tempfailed++;
			log_info(pq->id, "prequeue check=spf client=%s "
			    "sender=\"%s\" rcpt=\"%s\" result=%s action=%s",
			    pq->ip, pq->sender, rcpt,
			    spf_res_name(pq->spf.result), pq_action_name(a));
			snprintf(reply, len, "%s <%s>: Recipient address "
			    "rejected: SPF %s: %s", a == ACT_REJECT ?
			    "550 5.7.23" : "451 4.7.24", rcpt,
			    spf_res_name(pq->spf.result), pq->spf.comment[0] ?
			    pq->spf.comment : "sender not permitted");
			return PREQUEUE_REPLY;
		}
	}
	if (c->greylist_enable)
		return pq_greylist(pq, rcpt, reply, len);
	return PREQUEUE_PASS;
}

/*
 * RCPT: pass, wait, or refuse. The relay answers only once every earlier
 * reply is out (can_reply); a refusal decided before that is held here
 * and given when the same command is asked again, so that it is decided,
 * logged and counted once. The relay asks only once it knows the sender
 * the RCPT goes with: behind a nested MAIL, the server's answer to it says
 * whether the checks are still that MAIL's or the restored sender's.
 */
enum prequeue_answer
prequeue_rcpt(struct prequeue *pq, const char *args, size_t argslen,
    int can_reply, char *reply, size_t len)
{
	char			rcpt[PQ_PATH_MAX];
	enum prequeue_answer	a;

	if (pq == NULL || pq->exempt || pq->whitelisted)
		return PREQUEUE_PASS;
	if (argslen >= 3 && strncasecmp(args, "TO:", 3) == 0) {
		args += 3;
		argslen -= 3;
	}
	pq_path(args, argslen, rcpt, sizeof(rcpt));
	if (pq->held[0] != '\0' && strcmp(pq->held_rcpt, rcpt) == 0) {
		if (!can_reply)
			return PREQUEUE_WAIT;
		snprintf(reply, len, "%s", pq->held);
		pq->held[0] = '\0';
		return PREQUEUE_REPLY;
	}
	pq->held[0] = '\0';
	if ((a = pq_rcpt(pq, rcpt, reply, len)) == PREQUEUE_REPLY &&
	    !can_reply) {
		snprintf(pq->held, sizeof(pq->held), "%s", reply);
		snprintf(pq->held_rcpt, sizeof(pq->held_rcpt), "%s", rcpt);
		return PREQUEUE_WAIT;
	}
	return a;
}

/* ------------------------------------------------------------------ */
/* DATA                                                                */

/*
 * DATA waits while the SPF check is out. RCPT has waited for it already,
 * but a nested MAIL the server refused starts it again, for the sender
 * that stands (prequeue_mail_restore()), after the recipients: the
 * message's Received-SPF must be that check's, never left out.
 */
enum prequeue_answer
prequeue_data(struct prequeue *pq)
{
	if (pq != NULL && pq->spf_step == STEP_PENDING)
		return PREQUEUE_WAIT;
	return PREQUEUE_PASS;
}

/* ------------------------------------------------------------------ */

/*
 * Header lines for the message being delivered, CRLF-ended, or NULL. The
 * SPF check is done by now: DATA waited for it (prequeue_data()).
 */
const char *
prequeue_headers(struct prequeue *pq)
{
	const struct conf_zones	*bl;
	size_t			 off = 0;
	int			 i;

	if (pq == NULL || pq->exempt)
		return NULL;
	bl = &pq_conf->dnsbl_zones;
	pq->headers[0] = '\0';
	if (pq->spf_step == STEP_DONE && pq->spf.header[0] != '\0')
		off += (size_t)snprintf(pq->headers + off,
		    sizeof(pq->headers) - off, "%s\r\n", pq->spf.header);
	for (i = 0; i < pq->nlook && !pq->whitelisted; i++) {
		if (pq->look[i].wl || !pq->look[i].listed ||
		    bl->action[pq->look[i].zone] != ACT_TAG ||
		    off >= sizeof(pq->headers))
			continue;
		off += (size_t)snprintf(pq->headers + off,
		    sizeof(pq->headers) - off, "X-Spork-DNSBL: %s listed "
		    "(%s) client=%s\r\n", bl->zone[pq->look[i].zone],
		    pq->look[i].answer, pq->ip);
	}
	if (off >= sizeof(pq->headers))
		return NULL;	/* never a cut header line */
	return off > 0 ? pq->headers : NULL;
}

void
prequeue_status(struct buf *b)
{
	const struct conf	*c = pq_conf;
	int			 i;

	if (c == NULL)
		return;
	buf_printf(b, "prequeue.sessions.inbound=%llu\n"
	    "prequeue.sessions.outbound=%llu\nprequeue.sessions.exempt=%llu\n"
	    "prequeue.early_talker.rejected=%llu\n", pq_stats.inbound,
	    pq_stats.outbound, pq_stats.exempt, pq_stats.early_talker);
	for (i = 0; i < c->dnsbl_zones.n; i++)
		buf_printf(b, "prequeue.dnsbl.%s.listed=%llu\n"
		    "prequeue.dnsbl.%s.rejected=%llu\n"
		    "prequeue.dnsbl.%s.tagged=%llu\n"
		    "prequeue.dnsbl.%s.errors=%llu\n", c->dnsbl_zones.zone[i],
		    pq_stats.bl_listed[i], c->dnsbl_zones.zone[i],
		    pq_stats.bl_rejected[i], c->dnsbl_zones.zone[i],
		    pq_stats.bl_tagged[i], c->dnsbl_zones.zone[i],
		    pq_stats.bl_errors[i]);
	for (i = 0; i < c->dnswl_zones.n; i++)
		buf_printf(b, "prequeue.dnswl.%s.listed=%llu\n"
		    "prequeue.dnswl.%s.errors=%llu\n", c->dnswl_zones.zone[i],
		    pq_stats.wl_listed[i], c->dnswl_zones.zone[i],
		    pq_stats.wl_errors[i]);
	if (c->spf_enable) {
		for (i = 0; i < SPFR_COUNT; i++)
			buf_printf(b, "prequeue.spf.%s=%llu\n",
			    spf_res_name((enum spf_res)i), pq_stats.spf[i]);
		buf_printf(b, "prequeue.spf.rejected=%llu\n"
		    "prequeue.spf.tempfailed=%llu\nprequeue.spf.tagged=%llu\n",
		    pq_stats.spf_rejected, pq_stats.spf_tempfailed,
		    pq_stats.spf_tagged);
	}
	if (c->greylist_enable) {
		for (i = 0; i <= GL_ERROR; i++)
			buf_printf(b, "prequeue.greylist.%s=%llu\n",
			    greylist_verdict_name((enum greylist_verdict)i),
			    pq_stats.gl[i]);
		buf_printf(b, "prequeue.greylist.whitelisted=%llu\n"
		    "prequeue.greylist.store=%s\n", pq_stats.gl_whitelisted,
		    pq_redis ? (greylist_redis_connected() ? "redis" :
		    "redis-down") : "disk");
		if (pq_gl != NULL)
			buf_printf(b, "prequeue.greylist.triplets=%zu\n",
			    greylist_count(pq_gl));
	}
}
