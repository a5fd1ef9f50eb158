/* SPDX-License-Identifier: MIT */
/*
 * What the relay has learned of each server it saw with STARTTLS: the
 * certificate chain it presents (kept from the last full handshake, so a
 * resumed session still knows it), whether the key for it is held, the
 * upstream TLS session to resume, the certificate minted for it, and the
 * coverage counters that tell an admin how much of the mail was scanned.
 * A missing key is warned about once per server and key, not per session.
 * The table is bounded (TLS_DESTS_MAX); a server beyond it is handled as
 * one never seen. Knows nothing about SMTP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "buf.h"
#include "log.h"
#include "sock.h"
#include "tls_dest.h"

#define TLS_DESTS_MAX		4096
#define TLS_DEST_BUCKETS	256
/* An upstream session older than this is not resumed: a resumed session
 * shows no certificate, and the server may have changed it since. */
#define TLS_SESSION_REUSE_MS	(5 * 60 * 1000)

struct tls_dest {
	char			 name[SOCK_ADDRSTR_MAX];
	int			 known;		/* a chain was seen */
	unsigned char		 spki[TLS_SPKI_LEN];
	char			 subject[256];
	int			 have_key;
	char			 key_file[256];
	uint64_t		 checked;	/* last full handshake, ms */
	STACK_OF(X509)		*chain;
	SSL_SESSION		*session;
	uint64_t		 session_t;
	X509			*minted;
	unsigned char		 minted_spki[TLS_SPKI_LEN];
	int			 warned;
	unsigned char		 warned_spki[TLS_SPKI_LEN];
	unsigned long		 count[COV_MAX];
	struct tls_dest		*next;
};

static struct tls_dest	*tls_dests[TLS_DEST_BUCKETS];
static size_t		 tls_ndests;
static unsigned long	 tls_cov[COV_MAX];
static unsigned long	 tls_messages;		/* seen by the scanner */

static const char *const tls_cov_names[COV_MAX] = {
	[COV_INTERCEPTED] = "intercepted",
	[COV_OUTBOUND] = "intercepted_outbound",
	[COV_PASS_NOKEY] = "passthrough_no_key",
	[COV_PASS_POLICY] = "passthrough_policy",
	[COV_STRIPPED] = "stripped",
	[COV_FAILED] = "upstream_failed",
};

static unsigned
dest_hash(const char *s)
{
	unsigned	h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % TLS_DEST_BUCKETS;
}

struct tls_dest *
tls_dest_get(const char *server)
{
	static struct tls_dest	 overflow;
	struct tls_dest		*d;
	unsigned		 h = dest_hash(server);

	for (d = tls_dests[h]; d != NULL; d = d->next)
		if (strcmp(d->name, server) == 0)
			return d;
	if (tls_ndests >= TLS_DESTS_MAX || (d = calloc(1, sizeof(*d))) ==
	    NULL) {
		/* Remembers nothing: handled as a server never seen. */
		memset(&overflow, 0, sizeof(overflow));
		snprintf(overflow.name, sizeof(overflow.name), "%s", server);
		return &overflow;
	}
	snprintf(d->name, sizeof(d->name), "%s", server);
	d->next = tls_dests[h];
	tls_dests[h] = d;
	tls_ndests++;
	return d;
}

const char *
tls_dest_name(const struct tls_dest *d)
{
	return d->name;
}

int
tls_dest_known_keyless(const struct tls_dest *d, uint64_t now,
    uint64_t recheck)
{
	return d->known && !d->have_key && d->checked != 0 &&
	    now - d->checked < recheck;
}

STACK_OF(X509) *
tls_dest_presented(struct tls_dest *d, SSL *up, uint64_t now)
{
	STACK_OF(X509)	*ch;
	X509		*leaf;

	if (SSL_session_reused(up) && d->chain != NULL)
		return d->chain;
	ch = SSL_get_peer_cert_chain(up);
	if (ch == NULL || sk_X509_num(ch) == 0)
		return d->chain;
	leaf = sk_X509_value(ch, 0);
	if (d->chain != NULL)
		sk_X509_pop_free(d->chain, X509_free);
	d->chain = X509_chain_up_ref(ch);
	d->checked = now;
	if (tls_spki_digest(leaf, d->spki) == 0) {
		d->known = 1;
		X509_NAME_oneline(X509_get_subject_name(leaf), d->subject,
		    sizeof(d->subject));
	}
	return d->chain;
}

void
tls_dest_keyed(struct tls_dest *d, const struct tls_key *k,
    const char *session)
{
	char	hex[TLS_SPKI_HEX];

	d->have_key = k != NULL;
	snprintf(d->key_file, sizeof(d->key_file), "%s", k ? k->file : "");
	if (k != NULL || !d->known)
		return;
	if (d->warned && memcmp(d->warned_spki, d->spki, TLS_SPKI_LEN) == 0)
		return;
	d->warned = 1;
	memcpy(d->warned_spki, d->spki, TLS_SPKI_LEN);
	tls_spki_hex(d->spki, hex);
	log_warn(session, "tls key missing server=%s subject=\"%s\" "
	    "spki_sha256=%s: mail to it passes through unscanned until its "
	    "key pair is in tls_keys_dir", d->name, d->subject, hex);
}

void
tls_dest_count(struct tls_dest *d, enum tls_cov c)
{
	d->count[c]++;
	tls_cov[c]++;
}

/*
 * A copy of the server's last session for a new connection (the caller
 * frees it once set): a TLS 1.3 session offered once is not offered
 * again, and servers send no new ticket after a resumption, so the kept
 * one stays fresh for every connection.
 */
SSL_SESSION *
tls_dest_session(struct tls_dest *d, uint64_t now)
{
	if (d->session == NULL || now - d->session_t > TLS_SESSION_REUSE_MS ||
	    !SSL_SESSION_is_resumable(d->session))
		return NULL;
	return SSL_SESSION_dup(d->session);
}

/* The keys changed: every server's certificate is looked at again. */
void
tls_dest_keys_changed(void)
{
	struct tls_dest	*d;
	int		 i;

	for (i = 0; i < TLS_DEST_BUCKETS; i++)
		for (d = tls_dests[i]; d != NULL; d = d->next)
			d->checked = 0;
}

/* The CAs changed: every server gets a full, verified handshake next. */
void
tls_dest_trust_changed(void)
{
	struct tls_dest	*d;
	int		 i;

	for (i = 0; i < TLS_DEST_BUCKETS; i++)
		for (d = tls_dests[i]; d != NULL; d = d->next) {
			SSL_SESSION_free(d->session);
			d->session = NULL;
			d->session_t = 0;
			d->checked = 0;
		}
}

/* The outbound CA changed: every leaf minted under the old one goes. */
void
tls_dest_minted_forget(void)
{
	struct tls_dest	*d;
	int		 i;

	for (i = 0; i < TLS_DEST_BUCKETS; i++)
		for (d = tls_dests[i]; d != NULL; d = d->next) {
			X509_free(d->minted);
			d->minted = NULL;
		}
}

void
tls_dest_save_session(struct tls_dest *d, SSL_SESSION *sess, uint64_t now)
{
	SSL_SESSION_free(d->session);
	d->session = sess;
	d->session_t = now;
}

X509 *
tls_dest_minted(struct tls_dest *d, const unsigned char *spki)
{
	if (d->minted == NULL || memcmp(d->minted_spki, spki, TLS_SPKI_LEN))
		return NULL;
	return d->minted;
}

void
tls_dest_set_minted(struct tls_dest *d, X509 *x, const unsigned char *spki)
{
	X509_free(d->minted);
	d->minted = x;
	memcpy(d->minted_spki, spki, TLS_SPKI_LEN);
}

void
tls_cov_count(enum tls_cov c)
{
	tls_cov[c]++;
}

void
tls_cov_message(void)
{
	tls_messages++;
}

/*
 * Messages inside a passthrough session cannot be seen: each such session
 * counts as one unscanned message, so the share printed is a lower bound.
 */
void
tls_cov_status(struct buf *out)
{
	unsigned long	unseen = tls_cov[COV_PASS_NOKEY] +
			    tls_cov[COV_PASS_POLICY];
	int		i;

	for (i = 0; i < COV_MAX; i++)
		buf_printf(out, "tls.%s=%lu\n", tls_cov_names[i], tls_cov[i]);
	buf_printf(out, "tls.destinations=%zu\n", tls_ndests);
	buf_printf(out, "coverage.messages_scanned=%lu\n", tls_messages);
	buf_printf(out, "coverage.passthrough_sessions=%lu\n", unseen);
	if (tls_messages + unseen == 0)
		buf_printf(out, "coverage.scanned_pct=none\n");
	else
		buf_printf(out, "coverage.scanned_pct=%.1f\n",
		    100.0 * (double)tls_messages /
		    (double)(tls_messages + unseen));
}

void
tls_dest_list(struct buf *out)
{
	struct tls_dest	*d;
	char		 hex[TLS_SPKI_HEX];
	int		 i;

	for (i = 0; i < TLS_DEST_BUCKETS; i++)
		for (d = tls_dests[i]; d != NULL; d = d->next) {
			if (d->known)
				tls_spki_hex(d->spki, hex);
			else
				snprintf(hex, sizeof(hex), "unknown");
			buf_printf(out, "server=%s subject=\"%s\" "
			    "spki_sha256=%s key=%s%s%s intercepted=%lu "
			    "passthrough=%lu failed=%lu\n", d->name,
			    d->known ? d->subject : "", hex,
			    d->have_key ? "held" : d->known ? "missing" :
			    "unknown", d->have_key ? " key_file=" : "",
			    d->have_key ? d->key_file : "",
			    d->count[COV_INTERCEPTED] + d->count[COV_OUTBOUND],
			    d->count[COV_PASS_NOKEY] + d->count[COV_PASS_POLICY],
			    d->count[COV_FAILED]);
		}
}
