/* SPDX-License-Identifier: MIT */
/*
 * The protected servers' key pairs, found by the SHA-256 digest of their
 * certificate's public key (SPKI), and the key reader that fetches them.
 * Key files stay readable by root only: a small child forked before
 * privileges are dropped reads them on request (at start and at each
 * reload) and sends their bytes over a socket pair; nothing else in it
 * runs. It also reads the local CA that signs outbound leaves
 * (tls_outbound_ca_file and its key), on a request of its own. A set is
 * built whole or refused whole with the file that broke it
 * named, so a bad file never leaves the daemon half-loaded. Scan workers
 * are forked by the scan loader, which never sees this set.
 *
 * Layout of tls_keys_dir: every file holding a certificate (NAME.pem or
 * NAME.crt, the chain with the leaf first) is one pair; its private key is
 * in the same file, or in NAME-key.pem, or in NAME.key. A file with only
 * a key is read as the key of its certificate and nothing else.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "sandbox.h"
#include "sock.h"
#include "tls_keys.h"

#define TLS_KEYFILE_MAX		(60 * 1024)	/* one file's bytes */
#define TLS_KEYFILES_MAX	512		/* files in the directory */
#define TLS_KEYD_TIMEOUT_S	10

/* Requests to the reader: the kind, then a sequence number that each of
 * its messages answering it carries (an answer that came after its
 * request timed out is told apart from the next one's). */
#define KEYD_ASK_KEYS	'R'	/* tls_keys_dir, tls_cert_file */
#define KEYD_ASK_CA	'C'	/* the outbound CA: its certificate, key */

/* Messages from the reader: a type byte, the request's sequence number,
 * then its payload. */
#define KEYD_FILE	'F'	/* NAME NUL BYTES */
#define KEYD_ERROR	'E'	/* text */
#define KEYD_END	'Z'

struct tls_keys {
	size_t		 n;
	struct tls_key	 k[];
};

#define KEYD_MSG_MAX	(2 + 256 + 1 + TLS_KEYFILE_MAX + 1)

static int		 keyd_fd = -1;
static pid_t		 keyd_pid = -1;
static unsigned char	 keyd_seq;	/* the reader: the request it answers;
					 * the daemon: the last it sent */

/* ------------------------------------------------------------------ */
/* The reader (child)                                                  */

static void
keyd_send(int fd, char type, const char *a, size_t alen, const char *b,
    size_t blen)
{
	static char	msg[KEYD_MSG_MAX];
	size_t		n = 0;

	if (alen > 256 || blen > TLS_KEYFILE_MAX + 1)
		_exit(2);
	msg[n++] = type;
	msg[n++] = (char)keyd_seq;
	memcpy(msg + n, a, alen);
	n += alen;
	if (b != NULL) {
		msg[n++] = '\0';
		memcpy(msg + n, b, blen);
		n += blen;
	}
	if (send(fd, msg, n, MSG_NOSIGNAL) == -1)
		_exit(1);
}

/* "PATH: WHY" to the daemon: the answer ends there. */
static void
keyd_error(int fd, const char *path, const char *why)
{
	char	text[256];

	snprintf(text, sizeof(text), "%.180s: %.70s", path, why);
	keyd_send(fd, KEYD_ERROR, text, strlen(text), NULL, 0);
}

/* Send one file (a link too when follow); 0, or -1 after an error
 * message. */
static int
keyd_file(int fd, const char *path, const char *name, int follow)
{
	static char	data[TLS_KEYFILE_MAX + 1];
	struct stat	st;
	ssize_t		n;
	size_t		len = 0;
	int		f;

	/* O_NONBLOCK: a FIFO does not hang the reader (it is not a file). */
	if ((f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK |
	    (follow ? 0 : O_NOFOLLOW))) == -1 ||
	    fstat(f, &st) == -1) {
		keyd_error(fd, path, strerror(errno));
		if (f != -1)
			close(f);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(f);
		if (!follow)
			return 0;	/* in tls_keys_dir: not a pair */
		keyd_error(fd, path, "not a regular file");
		return -1;
	}
	while ((n = read(f, data + len, sizeof(data) - len)) > 0)
		len += (size_t)n;
	close(f);
	if (n == -1 || len > TLS_KEYFILE_MAX) {
		keyd_error(fd, path, n == -1 ? strerror(errno) :
		    "larger than 60 KiB");
		return -1;
	}
	keyd_send(fd, KEYD_FILE, name, strlen(name), data, len);
	return 0;
}

static int
keyd_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
keyd_read_all(int fd, const char *dir, const char *cert, const char *key)
{
	static char	 both[2 * TLS_KEYFILE_MAX];
	char		 path[1024], *names[TLS_KEYFILES_MAX];
	struct dirent	*de;
	DIR		*d;
	size_t		 n = 0, i;
	int		 ok = 1;

	if (dir[0] != '\0') {
		if ((d = opendir(dir)) == NULL) {
			keyd_error(fd, dir, strerror(errno));
			return;
		}
		while ((de = readdir(d)) != NULL && n < TLS_KEYFILES_MAX)
			if (de->d_name[0] != '.')
				names[n++] = strdup(de->d_name);
		closedir(d);
		qsort(names, n, sizeof(names[0]), keyd_name_cmp);
		for (i = 0; i < n; i++) {
			if (ok && names[i] != NULL) {
				snprintf(path, sizeof(path), "%.700s/%.255s",
				    dir, names[i]);
				ok = keyd_file(fd, path, names[i], 0) == 0;
			}
			free(names[i]);
		}
		if (!ok)
			return;
	}
	if (cert[0] != '\0') {
		/* The single pair of tls_cert_file and tls_key_file: one
		 * file's worth, the key after the chain, each followed by a
		 * newline. Larger is refused, never cut. */
		struct stat	 st;
		int		 f;
		ssize_t		 r = 0;
		size_t		 len = 0;
		const char	*p[2] = { cert, key };

		for (i = 0; i < 2; i++) {
			if (p[i][0] == '\0')
				continue;
			if ((f = open(p[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK))
			    == -1 || fstat(f, &st) == -1) {
				keyd_error(fd, p[i], strerror(errno));
				if (f != -1)
					close(f);
				return;
			}
			if (!S_ISREG(st.st_mode)) {
				close(f);
				keyd_error(fd, p[i], "not a regular file");
				return;
			}
			/* One byte past the limit tells a file that is
			 * larger (len stays within both's 2 x limit). */
			while (len <= TLS_KEYFILE_MAX && (r = read(f, both +
			    len, TLS_KEYFILE_MAX + 1 - len)) > 0)
				len += (size_t)r;
			close(f);
			if (r == -1 || len > TLS_KEYFILE_MAX) {
				keyd_error(fd, p[i], r == -1 ? strerror(errno) :
				    i == 0 ? "larger than 60 KiB" :
				    "larger than 60 KiB with tls_cert_file");
				return;
			}
			both[len++] = '\n';
		}
		keyd_send(fd, KEYD_FILE, cert, strlen(cert), both, len);
	}
	keyd_send(fd, KEYD_END, "", 0, NULL, 0);
}

/* The outbound CA: its certificate as "ca", its key as "ca-key". */
static void
keyd_read_ca(int fd, const char *ca, const char *ca_key)
{
	if (ca[0] == '\0' || ca_key[0] == '\0')
		keyd_error(fd, "tls_outbound_ca_file", "not set");
	else if (keyd_file(fd, ca, "ca", 1) == 0 &&
	    keyd_file(fd, ca_key, "ca-key", 1) == 0)
		keyd_send(fd, KEYD_END, "", 0, NULL, 0);
}

static void __attribute__((noreturn))
keyd_main(int fd, const char *const paths[5])
{
	struct sandbox_conf	sc = { 0, 0, 0 };
	char			req[2], err[256];

	/* Nothing of the daemon's but the request channel. */
	if (fd > 3)
		(void)close_range(3, (unsigned)fd - 1, 0);
	(void)close_range((unsigned)fd + 1, ~0U, 0);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	(void)prctl(PR_SET_DUMPABLE, 0);
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	/* It reads files and sends their bytes: root's uid (the keys are
	 * root's), no capability, the scan workers' allow list. */
	if (sandbox_enter(&sc, err, sizeof(err)) == -1) {
		log_err(NULL, "tls key reader: %s", err);
		_exit(1);
	}
	while (recv(fd, req, sizeof(req), 0) == (ssize_t)sizeof(req)) {
		keyd_seq = (unsigned char)req[1];
		if (req[0] == KEYD_ASK_CA)
			keyd_read_ca(fd, paths[3], paths[4]);
		else
			keyd_read_all(fd, paths[0], paths[1], paths[2]);
	}
	_exit(0);
}

int
tls_keyd_start(const char *dir, const char *cert_file, const char *key_file,
    const char *ca_file, const char *ca_key_file, char *err, size_t errlen)
{
	struct timeval	 tv = { TLS_KEYD_TIMEOUT_S, 0 };
	static char	 p[5][1024];
	const char	*in[5] = { dir, cert_file, key_file, ca_file,
			    ca_key_file };
	const char	*paths[5];
	pid_t		 pid;
	size_t		 i;
	int		 fd;

	if (dir[0] == '\0' && cert_file[0] == '\0' && ca_file[0] == '\0')
		return 0;
	for (i = 0; i < 5; i++) {
		snprintf(p[i], sizeof(p[i]), "%s", in[i]);
		paths[i] = p[i];
	}
	if ((pid = sock_fork_pair(&fd)) == -1) {
		snprintf(err, errlen, "key reader: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		keyd_main(fd, paths);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	keyd_fd = fd;
	keyd_pid = pid;
	return 0;
}

void
tls_keyd_stop(void)
{
	if (keyd_fd != -1)
		close(keyd_fd);
	keyd_fd = -1;
	keyd_pid = -1;
}

/* ------------------------------------------------------------------ */
/* The set                                                             */

int
tls_spki_digest(X509 *x, unsigned char out[TLS_SPKI_LEN])
{
	unsigned char	*der = NULL;
	unsigned int	 dl = 0;
	int		 len;

	if ((len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)) <= 0)
		return -1;
	if (EVP_Digest(der, (size_t)len, out, &dl, EVP_sha256(), NULL) != 1 ||
	    dl != TLS_SPKI_LEN) {
		OPENSSL_free(der);
		return -1;
	}
	OPENSSL_free(der);
	return 0;
}

void
tls_spki_hex(const unsigned char spki[TLS_SPKI_LEN], char out[TLS_SPKI_HEX])
{
	static const char	hex[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < TLS_SPKI_LEN; i++) {
		out[2 * i] = hex[spki[i] >> 4];
		out[2 * i + 1] = hex[spki[i] & 15];
	}
	out[2 * TLS_SPKI_LEN] = '\0';
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t	l = strlen(s), sl = strlen(suffix);

	return l >= sl && strcmp(s + l - sl, suffix) == 0;
}

static EVP_PKEY *
pem_key(const char *text, size_t len)
{
	BIO		*b = BIO_new_mem_buf(text, (int)len);
	EVP_PKEY	*k;

	if (b == NULL)
		return NULL;
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	ERR_clear_error();
	return k;
}

static X509 *
pem_leaf(const char *text, size_t len)
{
	BIO	*b = BIO_new_mem_buf(text, (int)len);
	X509	*x;

	if (b == NULL)
		return NULL;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	ERR_clear_error();
	return x;
}

/* The index of the file named base + suffix, or -1. */
static long
find_name(const char *const *names, size_t n, const char *base, size_t bl,
    const char *suffix)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strncmp(names[i], base, bl) == 0 &&
		    strcmp(names[i] + bl, suffix) == 0)
			return (long)i;
	return -1;
}

struct tls_keys *
tls_keys_parse(const char *const *names, const char *const *texts,
    const size_t *lens, size_t n, char *err, size_t errlen)
{
	struct tls_keys	*ks;
	struct tls_key	*k;
	size_t		 i, bl, j;
	long		 ki;
	X509		*leaf;
	EVP_PKEY	*key;

	if ((ks = calloc(1, sizeof(*ks) + n * sizeof(ks->k[0]))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (ends_with(names[i], "-key.pem") ||
		    ends_with(names[i], ".key"))
			continue;
		if ((leaf = pem_leaf(texts[i], lens[i])) == NULL)
			continue;	/* no certificate: a key, or else */
		key = pem_key(texts[i], lens[i]);
		if (key == NULL) {
			bl = strlen(names[i]);
			if (ends_with(names[i], ".pem") ||
			    ends_with(names[i], ".crt"))
				bl -= 4;
			if ((ki = find_name(names, n, names[i], bl, "-key.pem"))
			    == -1)
				ki = find_name(names, n, names[i], bl, ".key");
			if (ki != -1)
				key = pem_key(texts[ki], lens[ki]);
		}
		if (key == NULL) {
			snprintf(err, errlen, "%s: no private key (in the file, "
			    "in NAME-key.pem or in NAME.key)", names[i]);
			X509_free(leaf);
			goto fail;
		}
		if (X509_check_private_key(leaf, key) != 1) {
			ERR_clear_error();
			snprintf(err, errlen, "%s: the private key does not "
			    "match the certificate", names[i]);
			X509_free(leaf);
			EVP_PKEY_free(key);
			goto fail;
		}
		k = &ks->k[ks->n];
		if (tls_spki_digest(leaf, k->spki) == -1) {
			snprintf(err, errlen, "%s: cannot digest the public "
			    "key", names[i]);
			X509_free(leaf);
			EVP_PKEY_free(key);
			goto fail;
		}
		for (j = 0; j < ks->n; j++)
			if (memcmp(ks->k[j].spki, k->spki, TLS_SPKI_LEN) == 0)
				break;
		if (j < ks->n) {	/* the same key twice: the first wins */
			X509_free(leaf);
			EVP_PKEY_free(key);
			continue;
		}
		k->leaf = leaf;
		k->key = key;
		snprintf(k->file, sizeof(k->file), "%s", names[i]);
		X509_NAME_oneline(X509_get_subject_name(leaf), k->subject,
		    sizeof(k->subject));
		ks->n++;
	}
	return ks;
fail:
	tls_keys_free(ks);
	return NULL;
}

/* The files of one answer of the reader, as it sent them. */
struct keyd_answer {
	char		*names[TLS_KEYFILES_MAX + 1];
	char		*texts[TLS_KEYFILES_MAX + 1];
	size_t		 lens[TLS_KEYFILES_MAX + 1];
	size_t		 n;
};

static void
keyd_answer_free(struct keyd_answer *a)
{
	size_t	i;

	for (i = 0; i < a->n; i++) {
		OPENSSL_cleanse(a->texts[i], a->lens[i]);
		free(a->texts[i]);
		free(a->names[i]);
	}
	a->n = 0;
}

/* Ask the reader (KEYD_ASK_*) and take its answer into a: 0, or -1 with
 * err (a's files freed). */
static int
keyd_ask(char kind, struct keyd_answer *a, char *err, size_t errlen)
{
	static char	 msg[KEYD_MSG_MAX + 1];
	char		 req[2];
	ssize_t		 r = 0;
	size_t		 nl;
	int		 rc = -1;

	a->n = 0;
	req[0] = kind;
	req[1] = (char)++keyd_seq;
	if (send(keyd_fd, req, sizeof(req), MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(req)) {
		snprintf(err, errlen, "key reader: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		if ((r = recv(keyd_fd, msg, sizeof(msg) - 1, 0)) <= 0) {
			snprintf(err, errlen, "key reader: %s", r == 0 ?
			    "gone" : strerror(errno));
			goto done;
		}
		msg[r] = '\0';
		if (r < 2) {
			snprintf(err, errlen, "key reader: bad message");
			goto done;
		}
		if (msg[1] != req[1])
			continue;	/* an earlier request's, late */
		if (msg[0] == KEYD_END)
			break;
		if (msg[0] == KEYD_ERROR) {
			snprintf(err, errlen, "%s", msg + 2);
			goto done;
		}
		nl = strnlen(msg + 2, (size_t)r - 2);
		if (msg[0] != KEYD_FILE || 2 + nl >= (size_t)r ||
		    a->n == TLS_KEYFILES_MAX + 1) {
			snprintf(err, errlen, "key reader: bad message");
			goto done;
		}
		a->names[a->n] = strdup(msg + 2);
		a->lens[a->n] = (size_t)r - 3 - nl;
		a->texts[a->n] = malloc(a->lens[a->n] + 1);
		if (a->names[a->n] == NULL || a->texts[a->n] == NULL) {
			free(a->names[a->n]);
			free(a->texts[a->n]);
			snprintf(err, errlen, "out of memory");
			goto done;
		}
		memcpy(a->texts[a->n], msg + 3 + nl, a->lens[a->n]);
		a->texts[a->n][a->lens[a->n]] = '\0';
		a->n++;
	}
	rc = 0;
done:
	/* Cut short in the middle of an answer: read the rest of it, so
	 * that the next request does not wade through it (a late one is
	 * told apart by its number). */
	while (r >= 2 && msg[1] == req[1] && msg[0] != KEYD_END &&
	    msg[0] != KEYD_ERROR && (r = recv(keyd_fd, msg, sizeof(msg), 0))
	    > 0)
		;
	OPENSSL_cleanse(msg, sizeof(msg));
	if (rc == -1)
		keyd_answer_free(a);
	return rc;
}

struct tls_keys *
tls_keys_load(char *err, size_t errlen)
{
	static struct keyd_answer	 a;
	struct tls_keys			*ks;

	if (keyd_fd == -1) {
		/* Nothing configured: an empty set. */
		return tls_keys_parse(NULL, NULL, NULL, 0, err, errlen);
	}
	if (keyd_ask(KEYD_ASK_KEYS, &a, err, errlen) == -1)
		return NULL;
	ks = tls_keys_parse((const char *const *)a.names,
	    (const char *const *)a.texts, a.lens, a.n, err, errlen);
	keyd_answer_free(&a);
	return ks;
}

int
tls_ca_parse(const char *cert, size_t certlen, const char *key,
    size_t keylen, X509 **ca, EVP_PKEY **ca_key, char *err, size_t errlen)
{
	*ca = pem_leaf(cert, certlen);
	*ca_key = pem_key(key, keylen);
	if (*ca == NULL || *ca_key == NULL)
		snprintf(err, errlen, "%s: no %s", *ca == NULL ?
		    "tls_outbound_ca_file" : "tls_outbound_ca_key_file",
		    *ca == NULL ? "certificate" : "private key");
	else if (X509_check_private_key(*ca, *ca_key) != 1)
		snprintf(err, errlen, "tls_outbound_ca_key_file does not "
		    "match tls_outbound_ca_file");
	else if (X509_check_ca(*ca) == 0)
		snprintf(err, errlen, "tls_outbound_ca_file: not a CA "
		    "certificate");
	else
		return 0;
	ERR_clear_error();
	X509_free(*ca);
	EVP_PKEY_free(*ca_key);
	*ca = NULL;
	*ca_key = NULL;
	return -1;
}

int
tls_ca_load(X509 **ca, EVP_PKEY **ca_key, char *err, size_t errlen)
{
	static struct keyd_answer	 a;
	int				 rc;

	*ca = NULL;
	*ca_key = NULL;
	if (keyd_fd == -1) {
		snprintf(err, errlen, "key reader: not started");
		return -1;
	}
	if (keyd_ask(KEYD_ASK_CA, &a, err, errlen) == -1)
		return -1;
	if (a.n != 2) {
		snprintf(err, errlen, "key reader: bad answer");
		keyd_answer_free(&a);
		return -1;
	}
	rc = tls_ca_parse(a.texts[0], a.lens[0], a.texts[1], a.lens[1], ca,
	    ca_key, err, errlen);
	keyd_answer_free(&a);
	return rc;
}

void
tls_keys_free(struct tls_keys *ks)
{
	size_t	i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->n; i++) {
		X509_free(ks->k[i].leaf);
		EVP_PKEY_free(ks->k[i].key);
	}
	free(ks);
}

size_t
tls_keys_count(const struct tls_keys *ks)
{
	return ks != NULL ? ks->n : 0;
}

int
tls_keys_same(const struct tls_keys *a, const struct tls_keys *b)
{
	const struct tls_key	*o;
	size_t			 i;

	if (tls_keys_count(a) != tls_keys_count(b))
		return 0;
	for (i = 0; i < tls_keys_count(b); i++)
		if ((o = tls_keys_find(a, b->k[i].spki)) == NULL ||
		    X509_cmp(o->leaf, b->k[i].leaf) != 0 ||
		    EVP_PKEY_eq(o->key, b->k[i].key) != 1)
			return 0;
	return 1;
}

const struct tls_key *
tls_keys_find(const struct tls_keys *ks, const unsigned char spki[TLS_SPKI_LEN])
{
	size_t	i;

	for (i = 0; ks != NULL && i < ks->n; i++)
		if (memcmp(ks->k[i].spki, spki, TLS_SPKI_LEN) == 0)
			return &ks->k[i];
	return NULL;
}
