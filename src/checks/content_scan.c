/* SPDX-License-Identifier: MIT */
/*
 * The content policy applied to one message, inside a scan worker (no
 * network, no new processes): GMime parses the hostile MIME, each leaf
 * part is decoded once and checked against the rules for this direction:
 * declared type, type detected from the bytes (libmagic), file name
 * extension (names inside zip, 7z, rar, tar and compressed tars too,
 * listed by libarchive in memory, never extracted to disk), size, and in
 * text parts the data detectors and regular expressions.
 *
 * Rewriting keeps what it can: headers to add go back to the relay, which
 * prepends them, so the message is not touched at all; a subject tag or a
 * replaced header edits only those lines of the header block and copies
 * the body byte for byte; only a part stripped, redacted or given a
 * footer makes GMime serialize the message again (untouched parts are
 * written from their original bytes), and that is reported as breaking
 * DKIM. Nothing is written when a reject or quarantine decides anyway.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <gmime/gmime.h>
#include <magic.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "content.h"
#include "dlp.h"
#include "mime_clean.h"

#define CS_DEPTH_MAX		32	/* MIME nesting walked */
#define CS_MAGIC_BYTES		(1024 * 1024)	/* given to libmagic */
#define CS_ARCHIVE_DEPTH	3	/* archives inside archives */
#define CS_ARCHIVE_ENTRIES	10000	/* per message */
#define CS_ARCHIVE_NESTED_MAX	(16 * 1024 * 1024)	/* read to look inside */
#define CS_HEADER_MAX		(1024 * 1024)
#define CS_REGEX_MATCH_LIMIT	1000000
#define CS_NOTICE_MAX		1024

static magic_t			 cs_magic;
static pcre2_match_context	*cs_mctx;

struct cs {
	const struct content_rules	*rs;
	struct content_result		*res;
	int				 outbound;
	int				 body_changed;
	int				 footer_plain, footer_html;
	unsigned			 parts;
	unsigned			 entries;
	char				 err[256];
	int				 failed;
};

/* Per leaf part, what the rules look at. */
struct cs_part {
	GMimePart	*part;
	char		 type[128];	/* declared, lower case */
	char		 magic[128];	/* detected, lower case */
	char		 file[256];
	char		 names[4096];	/* archive entries, NUL separated */
	size_t		 nameslen;
	int		 attached;	/* inside an attached message */
	int		 attachment;	/* Content-Disposition: attachment */
	unsigned	 index;
	int		 strip;		/* a strip rule that matched, or -1 */
};

static const char *const cs_archive_types[] = {
	"application/zip", "application/x-7z-compressed", "application/x-rar",
	"application/vnd.rar", "application/x-tar", "application/gzip",
	"application/x-gzip", "application/x-bzip2", "application/x-xz",
	"application/zstd", "application/vnd.ms-cab-compressed", NULL,
};

int
content_scan_init(char *err, size_t errlen)
{
	/* No decompression helpers: libmagic would fork them. */
	cs_magic = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS |
	    MAGIC_ERROR);
	if (cs_magic == NULL || magic_load(cs_magic, NULL) == -1) {
		snprintf(err, errlen, "libmagic: %s", cs_magic ?
		    magic_error(cs_magic) : strerror(errno));
		return -1;
	}
	if ((cs_mctx = pcre2_match_context_create(NULL)) == NULL) {
		snprintf(err, errlen, "pcre2: out of memory");
		return -1;
	}
	pcre2_set_match_limit(cs_mctx, CS_REGEX_MATCH_LIMIT);
	pcre2_set_depth_limit(cs_mctx, CS_REGEX_MATCH_LIMIT / 10);
	return 0;
}

static int
rule_applies(const struct cs *cs, const struct content_rule *r)
{
	return r->dir == CD_ANY || (r->dir == CD_OUTBOUND) == cs->outbound;
}

static void
hit(struct cs *cs, int i, unsigned count, const char *where)
{
	struct content_result		*res = cs->res;
	const struct content_rule	*r = &cs->rs->r[i];

	res->hits |= 1ULL << i;
	res->count[i] += count;
	if (r->action > res->action) {
		res->action = r->action;
		res->rule = i;
		snprintf(res->where, sizeof(res->where), "%s", where);
	}
}

/* Printable ASCII for log lines and notices. */
static void
ascii(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e ||
		    *s == '"' || *s == '\'' || *s == '\\')
			*s = '?';
}

static void
lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* Is w in the comma-separated list (globs when glob is set)? */
static int
in_list(const char *list, const char *w, int glob)
{
	char		 item[CONTENT_PATTERN_MAX];
	const char	*p = list;
	size_t		 l;

	if (*w == '\0')
		return 0;
	while (*p) {
		l = strcspn(p, ",");
		if (l > 0 && l < sizeof(item)) {
			memcpy(item, p, l);
			item[l] = '\0';
			if (glob ? fnmatch(item, w, 0) == 0 :
			    strcmp(item, w) == 0)
				return 1;
		}
		p += l;
		p += *p == ',';
	}
	return 0;
}

/* The extension of a file name, lower case: "a.tar.exe. " gives "exe". */
static void
extension(const char *name, char *ext, size_t extlen)
{
	char		 n[256];
	const char	*dot, *base;
	size_t		 l;

	snprintf(n, sizeof(n), "%s", name);
	l = strlen(n);
	while (l > 0 && (n[l - 1] == '.' || n[l - 1] == ' '))
		n[--l] = '\0';	/* Windows drops these */
	base = strrchr(n, '/') ? strrchr(n, '/') + 1 : n;
	if (strrchr(base, '\\'))
		base = strrchr(base, '\\') + 1;
	dot = strrchr(base, '.');
	snprintf(ext, extlen, "%s", dot ? dot + 1 : "");
	lower(ext);
}

static int
is_archive(const char *magic)
{
	int	i;

	for (i = 0; cs_archive_types[i] != NULL; i++)
		if (strcmp(magic, cs_archive_types[i]) == 0)
			return 1;
	return 0;
}

static void
names_add(struct cs_part *p, const char *name)
{
	size_t	l = strlen(name);

	if (p->nameslen + l + 1 > sizeof(p->names))
		return;		/* the names we keep are for the log */
	memcpy(p->names + p->nameslen, name, l + 1);
	p->nameslen += l + 1;
}

static void	archive_list(struct cs *, struct cs_part *, const void *,
		    size_t, int depth);

static void
part_hit(struct cs *cs, struct cs_part *p, int i, const char *where)
{
	hit(cs, i, 1, where);
	if (cs->rs->r[i].action == ACT_STRIP && p->strip == -1)
		p->strip = i;
}

static int
ext_rules_want(const struct cs *cs, const char *ext, int *rule)
{
	const struct content_rule	*r;
	int				 i;

	for (i = 0; i < cs->rs->n; i++) {
		r = &cs->rs->r[i];
		if (r->match == CM_EXT && rule_applies(cs, r) &&
		    in_list(r->pattern, ext, 0)) {
			*rule = i;
			return 1;
		}
	}
	return 0;
}

/* Entry names (and nested archives) through libarchive, in memory. */
static void
archive_list(struct cs *cs, struct cs_part *p, const void *data, size_t len,
    int depth)
{
	struct archive		*a;
	struct archive_entry	*e;
	const char		*name;
	char			 ext[32], where[256], n[200];
	void			*inner;
	la_ssize_t		 got;
	la_int64_t		 sz;
	int			 i, rule;

	if ((a = archive_read_new()) == NULL)
		return;
	archive_read_support_format_zip(a);
	archive_read_support_format_7zip(a);
	archive_read_support_format_rar(a);
	archive_read_support_format_rar5(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_cab(a);
	/* Only filters built into the library: no external programs. */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_zstd(a);
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK)
		goto done;
	while (cs->entries < CS_ARCHIVE_ENTRIES &&
	    archive_read_next_header(a, &e) == ARCHIVE_OK) {
		cs->entries++;
		if ((name = archive_entry_pathname(e)) == NULL)
			continue;
		names_add(p, name);
		extension(name, ext, sizeof(ext));
		snprintf(n, sizeof(n), "%s", name);
		ascii(n);
		if (ext_rules_want(cs, ext, &rule)) {
			snprintf(where, sizeof(where), "part %u '%.80s' entry "
			    "'%.80s'", p->index, p->file, n);
			part_hit(cs, p, rule, where);
		}
		sz = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
		for (i = 0; i < cs->rs->n; i++)
			if (cs->rs->r[i].match == CM_SIZE &&
			    rule_applies(cs, &cs->rs->r[i]) && sz >= 0 &&
			    (uint64_t)sz > cs->rs->r[i].size) {
				snprintf(where, sizeof(where), "part %u '%.80s' "
				    "entry '%.80s' size=%lld", p->index, p->file,
				    n, (long long)sz);
				part_hit(cs, p, i, where);
			}
		/* An archive inside: read it into memory and look in. */
		if (depth + 1 >= CS_ARCHIVE_DEPTH || sz <= 0 ||
		    sz > CS_ARCHIVE_NESTED_MAX || archive_entry_filetype(e) !=
		    AE_IFREG)
			continue;
		if (!in_list("zip,7z,rar,tar,gz,tgz,bz2,xz,zst,cab,jar", ext,
		    0))
			continue;
		if ((inner = malloc((size_t)sz)) == NULL)
			continue;
		got = archive_read_data(a, inner, (size_t)sz);
		if (got > 0)
			archive_list(cs, p, inner, (size_t)got, depth + 1);
		free(inner);
	}
done:
	archive_read_free(a);
}

/* Attachment rules: type, detected type, extension, size. */
static int
check_attachment(struct cs *cs, struct cs_part *p, const GByteArray *data)
{
	const struct content_rule	*r;
	const char			*m;
	char				 ext[32], where[256];
	int				 i, matched;

	extension(p->file, ext, sizeof(ext));
	m = magic_buffer(cs_magic, data->data, data->len < CS_MAGIC_BYTES ?
	    data->len : CS_MAGIC_BYTES);
	snprintf(p->magic, sizeof(p->magic), "%s", m ? m : "");
	lower(p->magic);
	if (is_archive(p->magic))
		archive_list(cs, p, data->data, data->len, 0);
	for (i = 0; i < cs->rs->n; i++) {
		r = &cs->rs->r[i];
		if (!rule_applies(cs, r))
			continue;
		switch (r->match) {
		case CM_TYPE:
			matched = in_list(r->pattern, p->type, 1);
			break;
		case CM_MAGIC:
			matched = in_list(r->pattern, p->magic, 1);
			break;
		case CM_EXT:
			matched = in_list(r->pattern, ext, 0);
			break;
		case CM_SIZE:
			matched = data->len > r->size;
			break;
		default:
			matched = 0;
		}
		if (!matched)
			continue;
		snprintf(where, sizeof(where), "part %u '%.80s' type=%.50s "
		    "detected=%.50s size=%u", p->index, p->file, p->type,
		    p->magic, data->len);
		part_hit(cs, p, i, where);
	}
	return p->strip;
}

struct redact_ctx {
	char				*text;
	const struct content_rule	*r;
	int				 redact;
	unsigned			 n;
};

static int
redact_cb(void *arg, size_t off, size_t len)
{
	struct redact_ctx	*rc = arg;

	rc->n++;
	if (rc->redact)
		dlp_redact(rc->r->dlp, rc->text + off, len);
	return 0;
}

static unsigned
regex_find(const struct content_rule *r, char *text, size_t len, int redact)
{
	pcre2_match_data	*md;
	PCRE2_SIZE		*ov, off = 0, i;
	unsigned		 n = 0;
	int			 rc;

	if ((md = pcre2_match_data_create_from_pattern(r->re, NULL)) == NULL)
		return 0;
	while (off <= len) {
		rc = pcre2_match(r->re, (PCRE2_SPTR)text, len, off, 0, md,
		    cs_mctx);
		if (rc < 0)
			break;
		ov = pcre2_get_ovector_pointer(md);
		n++;
		if (redact)
			for (i = ov[0]; i < ov[1]; i++)
				if (!isspace((unsigned char)text[i]))
					text[i] = 'X';
		off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
	}
	pcre2_match_data_free(md);
	return n;
}

/* Detectors and expressions over a text part; 1 if it was redacted. */
static int
check_text(struct cs *cs, struct cs_part *p, char *text, size_t len)
{
	const struct content_rule	*r;
	struct redact_ctx		 rc;
	char				 where[256];
	unsigned			 n;
	int				 i, redacted = 0;

	for (i = 0; i < cs->rs->n; i++) {
		r = &cs->rs->r[i];
		if (!rule_applies(cs, r) || (r->match != CM_DLP &&
		    r->match != CM_REGEX))
			continue;
		memset(&rc, 0, sizeof(rc));
		rc.text = text;
		rc.r = r;
		rc.redact = r->action == ACT_REDACT;
		n = r->match == CM_DLP ? dlp_find(r->dlp, text, len, redact_cb,
		    &rc) : regex_find(r, text, len, rc.redact);
		if (n == 0)
			continue;
		snprintf(where, sizeof(where), "part %u %.50s%s%.80s%s matches=%u",
		    p->index, p->type, p->file[0] ? " '" : "", p->file,
		    p->file[0] ? "'" : "", n);
		hit(cs, i, n, where);
		redacted |= rc.redact;
	}
	return redacted;
}

static GByteArray *
decode(GMimePart *part)
{
	GMimeDataWrapper	*w;
	GMimeStream		*mem;
	GByteArray		*ba;

	if ((w = g_mime_part_get_content(part)) == NULL)
		return g_byte_array_new();
	mem = g_mime_stream_mem_new();
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
	if (g_mime_data_wrapper_write_to_stream(w, mem) == -1) {
		ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
		g_object_unref(mem);
		g_byte_array_free(ba, TRUE);
		return NULL;
	}
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	g_object_unref(mem);
	return ba;
}

/* New decoded content, encoded as before (7bit turns QP if need be). */
static void
set_content(GMimePart *part, const void *data, size_t len)
{
	GMimeContentEncoding	 enc = g_mime_part_get_content_encoding(part);
	GMimeDataWrapper	*w;
	GMimeStream		*st;
	const unsigned char	*p = data;
	size_t			 i;

	st = g_mime_stream_mem_new_with_buffer(data, len);
	w = g_mime_data_wrapper_new_with_stream(st,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(part, w);
	g_object_unref(w);
	g_object_unref(st);
	if (enc == GMIME_CONTENT_ENCODING_DEFAULT ||
	    enc == GMIME_CONTENT_ENCODING_7BIT)
		for (i = 0; i < len; i++)
			if (p[i] >= 0x80) {
				enc = GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
				break;
			}
	g_mime_part_set_content_encoding(part, enc);
}

static int
charset_is(const char *cs, const char *prefix)
{
	return cs != NULL && strncasecmp(cs, prefix, strlen(prefix)) == 0;
}

static int
non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* The footer in the part's charset, "\n" as line breaks; NULL if not. */
static GString *
footer_text(const char *footer, int html, const char *charset)
{
	GString		*g = g_string_new(html ? "<p>" : "\r\n");
	const char	*s;
	char		*conv;
	iconv_t		 cd;

	for (s = footer; *s; s++) {
		if (s[0] == '\\' && s[1] == 'n') {
			g_string_append(g, html ? "<br>\r\n" : "\r\n");
			s++;
		} else if (html && *s == '<')
			g_string_append(g, "&lt;");
		else if (html && *s == '>')
			g_string_append(g, "&gt;");
		else if (html && *s == '&')
			g_string_append(g, "&amp;");
		else
			g_string_append_c(g, *s);
	}
	g_string_append(g, html ? "</p>\r\n" : "\r\n");
	if (!non_ascii(g->str) || charset == NULL ||
	    charset_is(charset, "utf-8") || charset_is(charset, "us-ascii"))
		return g;
	if ((cd = g_mime_iconv_open(charset, "UTF-8")) == (iconv_t)-1) {
		g_string_free(g, TRUE);
		return NULL;
	}
	conv = g_mime_iconv_strdup(cd, g->str);
	g_mime_iconv_close(cd);
	g_string_free(g, TRUE);
	if (conv == NULL)
		return NULL;
	g = g_string_new(conv);
	g_free(conv);
	return g;
}

/*
 * Are the part's Content-Type parameter names plain tokens? GMime
 * re-encodes the header when a parameter is set, and on an 8-bit name it
 * asks for gigabytes (found by fuzz_content): such a part is left as it
 * came.
 */
static int
params_sane(GMimeObject *o)
{
	GMimeContentType	*ct = g_mime_object_get_content_type(o);
	GMimeParamList		*pl;
	const char		*n;
	int			 i, len;

	if (ct == NULL || (pl = g_mime_content_type_get_parameters(ct)) == NULL)
		return 1;
	len = g_mime_param_list_length(pl);
	for (i = 0; i < len; i++) {
		n = g_mime_param_get_name(g_mime_param_list_get_parameter_at(pl,
		    i));
		for (; n != NULL && *n; n++)
			if ((unsigned char)*n <= 0x20 || (unsigned char)*n >= 0x7f)
				return 0;
	}
	return 1;
}

/* Footer rules: once in the first text/plain and text/html body part. */
static int
add_footer(struct cs *cs, struct cs_part *p, GByteArray **data)
{
	const struct content_rule	*r;
	const char			*charset;
	GByteArray			*ba = *data;
	GString				*f;
	int				 html, i, done = 0;
	size_t				 at, k;
	char				 where[128];

	html = strcmp(p->type, "text/html") == 0;
	if (p->attached || p->attachment || (!html &&
	    strcmp(p->type, "text/plain") != 0) ||
	    (html ? cs->footer_html : cs->footer_plain) ||
	    !params_sane(GMIME_OBJECT(p->part)))
		return 0;
	charset = g_mime_object_get_content_type_parameter(
	    GMIME_OBJECT(p->part), "charset");
	if (charset_is(charset, "utf-16") || charset_is(charset, "utf-32"))
		return 0;
	for (i = 0; i < cs->rs->n; i++) {
		r = &cs->rs->r[i];
		if (r->action != ACT_FOOTER || !rule_applies(cs, r))
			continue;
		if ((f = footer_text(r->footer, html, charset)) == NULL)
			continue;
		at = ba->len;
		if (html) {
			/* Before the last </body>, if there is one. */
			for (k = ba->len; k >= 7; k--)
				if (strncasecmp((char *)ba->data + k - 7,
				    "</body>", 7) == 0) {
					at = k - 7;
					break;
				}
		} else if (at > 0 && ba->data[at - 1] != '\n')
			g_byte_array_append(ba, (const guint8 *)"\r\n", 2),
			    at = ba->len;
		g_byte_array_set_size(ba, ba->len + (guint)f->len);
		memmove(ba->data + at + f->len, ba->data + at,
		    ba->len - f->len - at);
		memcpy(ba->data + at, f->str, f->len);
		if (non_ascii(f->str) && (charset == NULL ||
		    charset_is(charset, "us-ascii")))
			g_mime_object_set_content_type_parameter(
			    GMIME_OBJECT(p->part), "charset", "utf-8");
		g_string_free(f, TRUE);
		snprintf(where, sizeof(where), "part %u %.50s", p->index,
		    p->type);
		hit(cs, i, 1, where);
		done = 1;
	}
	if (done) {
		if (html)
			cs->footer_html = 1;
		else
			cs->footer_plain = 1;
	}
	*data = ba;
	return done;
}

static GMimeObject *
notice_part(const struct cs_part *p, const struct content_rule *r)
{
	GMimeTextPart	*np;
	char		 text[CS_NOTICE_MAX], file[256], type[128];

	snprintf(file, sizeof(file), "%s", p->file);
	snprintf(type, sizeof(type), "%s", p->type);
	ascii(file);
	ascii(type);
	snprintf(text, sizeof(text),
	    "This part of the message%s%s%s (%s) was removed before\r\n"
	    "delivery by the content policy (rule %s).\r\n",
	    file[0] ? " \"" : "", file, file[0] ? "\"" : "", type, r->name);
	np = g_mime_text_part_new_with_subtype("plain");
	g_mime_text_part_set_text(np, text);
	g_mime_text_part_set_charset(np, "us-ascii");
	g_mime_part_set_content_encoding(GMIME_PART(np),
	    GMIME_CONTENT_ENCODING_7BIT);
	g_mime_object_set_disposition(GMIME_OBJECT(np), "inline");
	g_mime_object_set_header(GMIME_OBJECT(np), "X-Spork-Removed",
	    r->name, NULL);
	return GMIME_OBJECT(np);
}

static void
replace(GMimeObject *parent, int index, GMimeObject *np)
{
	GMimeObject	*old;

	if (GMIME_IS_MULTIPART(parent)) {
		old = g_mime_multipart_replace(GMIME_MULTIPART(parent), index,
		    np);
		if (old != NULL)
			g_object_unref(old);
	} else
		g_mime_message_set_mime_part(GMIME_MESSAGE(parent), np);
}

static void
leaf(struct cs *cs, GMimePart *part, GMimeObject *parent, int index,
    int attached)
{
	GMimeContentType	*ct;
	GMimeObject		*np;
	GByteArray		*data;
	struct cs_part		*p;
	const char		*fn, *disp, *charset;
	char			*mt, *text = NULL;
	size_t			 tlen = 0;
	int			 strip, changed = 0, converted = 0;
	iconv_t			 cd;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		cs->failed = 1;
		snprintf(cs->err, sizeof(cs->err), "out of memory");
		return;
	}
	p->part = part;
	p->index = ++cs->parts;
	p->attached = attached;
	p->strip = -1;
	ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
	mt = ct != NULL ? g_mime_content_type_get_mime_type(ct) : NULL;
	snprintf(p->type, sizeof(p->type), "%s", mt ? mt : "text/plain");
	g_free(mt);
	lower(p->type);
	ascii(p->type);
	fn = g_mime_part_get_filename(part);
	snprintf(p->file, sizeof(p->file), "%s", fn ? fn : "");
	ascii(p->file);
	disp = g_mime_object_get_disposition(GMIME_OBJECT(part));
	p->attachment = disp != NULL && strcasecmp(disp, "attachment") == 0;
	if ((data = decode(part)) == NULL) {
		cs->failed = 1;
		snprintf(cs->err, sizeof(cs->err), "cannot decode part %u",
		    p->index);
		free(p);
		return;
	}
	if ((strip = check_attachment(cs, p, data)) >= 0) {
		np = notice_part(p, &cs->rs->r[strip]);
		replace(parent, index, np);
		g_object_unref(np);
		cs->body_changed = 1;
		goto done;
	}
	if (strncmp(p->type, "text/", 5) != 0)
		goto done;
	/* Wide charsets are read as UTF-8; redacting then writes UTF-8. */
	charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part),
	    "charset");
	if ((charset_is(charset, "utf-16") || charset_is(charset, "utf-32") ||
	    charset_is(charset, "ucs-")) &&
	    (cd = g_mime_iconv_open("UTF-8", charset)) != (iconv_t)-1) {
		text = g_mime_iconv_strndup(cd, (const char *)data->data,
		    data->len);
		g_mime_iconv_close(cd);
		if (text != NULL) {
			converted = 1;
			tlen = strlen(text);
		}
	}
	if (text == NULL) {
		text = (char *)data->data;
		tlen = data->len;
	}
	if (check_text(cs, p, text, tlen)) {
		changed = 1;
		if (converted) {
			g_byte_array_set_size(data, 0);
			g_byte_array_append(data, (guint8 *)text, (guint)tlen);
			g_mime_object_set_content_type_parameter(
			    GMIME_OBJECT(part), "charset", "utf-8");
		}
	}
	if (converted)
		g_free(text);
	changed |= add_footer(cs, p, &data);
	if (changed) {
		set_content(part, data->data, data->len);
		cs->body_changed = 1;
	}
done:
	g_byte_array_free(data, TRUE);
	free(p);
}

static void
walk(struct cs *cs, GMimeObject *obj, GMimeObject *parent, int index,
    int depth, int attached)
{
	GMimeMessage	*inner;
	int		 i, n;

	if (obj == NULL || cs->failed)
		return;
	if (depth > CS_DEPTH_MAX) {
		cs->failed = 1;
		snprintf(cs->err, sizeof(cs->err), "MIME nesting deeper than "
		    "%d", CS_DEPTH_MAX);
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));
		for (i = 0; i < n && !cs->failed; i++)
			walk(cs, g_mime_multipart_get_part(GMIME_MULTIPART(obj),
			    i), obj, i, depth + 1, attached);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		if (inner != NULL)
			walk(cs, g_mime_message_get_mime_part(inner),
			    GMIME_OBJECT(inner), -1, depth + 1, 1);
	} else if (GMIME_IS_PART(obj))
		leaf(cs, GMIME_PART(obj), parent, index, attached);
}

/* ------------------------------------------------------------------ */
/* The header block, edited as bytes                                   */

struct hedit {
	char		 tag[256];	/* subject prefix */
	char		 drop[8][128];	/* field names removed */
	int		 ndrop;
	int		 has_dkim;
	int		 signed_changed;
	int		 subject_seen;
};

static int
name_is(const char *field, size_t flen, const char *name)
{
	size_t	l = strlen(name);

	return flen > l && strncasecmp(field, name, l) == 0 &&
	    (field[l] == ':' || field[l] == ' ' || field[l] == '\t');
}

/* Is name among the h= tag of a DKIM-Signature field? */
static int
dkim_signs(const char *field, size_t flen, const char *name)
{
	const char	*h = NULL, *p, *end = field + flen;
	size_t		 l = strlen(name), i;
	char		 w[128];

	for (p = field; p + 2 < end; p++)
		if ((p == field || p[-1] == ';' || isspace((unsigned char)
		    p[-1])) && p[0] == 'h' && (p[1] == '=' ||
		    isspace((unsigned char)p[1]))) {
			h = p + 1;
			while (h < end && *h != '=')
				h++;
			h++;
			break;
		}
	if (h == NULL || h >= end)
		return 0;
	while (h < end && *h != ';') {
		i = 0;
		while (h < end && *h != ':' && *h != ';') {
			if (!isspace((unsigned char)*h) && i + 1 < sizeof(w))
				w[i++] = *h;
			h++;
		}
		w[i] = '\0';
		if (i == l && strcasecmp(w, name) == 0)
			return 1;
		if (h < end && *h == ':')
			h++;
	}
	return 0;
}

/* Header block length (the blank line included), or 0 if none found. */
static size_t
header_end(const char *p, size_t len)
{
	const char	*e;

	if (len >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	e = memmem(p, len, "\r\n\r\n", 4);
	return e ? (size_t)(e - p) + 4 : 0;
}

/* Look at the original's header block: DKIM and which fields it signs. */
static void
headers_inspect(const char *p, size_t hlen, struct hedit *he)
{
	size_t	i = 0, j;
	int	k;

	while (i < hlen && !(p[i] == '\r' && p[i + 1] == '\n')) {
		for (j = i; j + 1 < hlen; j++)
			if (p[j] == '\r' && p[j + 1] == '\n' && (j + 2 >= hlen ||
			    (p[j + 2] != ' ' && p[j + 2] != '\t')))
				break;
		if (name_is(p + i, j - i, "DKIM-Signature")) {
			he->has_dkim = 1;
			if (he->tag[0] && dkim_signs(p + i, j - i, "subject"))
				he->signed_changed = 1;
			for (k = 0; k < he->ndrop; k++)
				if (dkim_signs(p + i, j - i, he->drop[k]))
					he->signed_changed = 1;
		}
		i = j + 2;
	}
}

static int
write_all(int fd, const void *p, size_t n)
{
	const char	*c = p;
	ssize_t		 w;

	while (n > 0) {
		if ((w = write(fd, c, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copy in to out with the header edits; the body byte for byte. */
static int
headers_rewrite(const char *in, size_t size, int outfd, struct hedit *he,
    size_t *outsize)
{
	size_t	hlen = header_end(in, size < CS_HEADER_MAX ? size :
		    CS_HEADER_MAX), i = 0, j, v;
	int	k, drop;

	*outsize = 0;
	while (i < hlen && !(in[i] == '\r' && in[i + 1] == '\n')) {
		for (j = i; j + 1 < hlen; j++)
			if (in[j] == '\r' && in[j + 1] == '\n' && (j + 2 >= hlen ||
			    (in[j + 2] != ' ' && in[j + 2] != '\t')))
				break;
		j += 2;
		for (drop = 0, k = 0; k < he->ndrop; k++)
			drop |= name_is(in + i, j - i, he->drop[k]);
		if (drop) {
			i = j;
			continue;
		}
		if (he->tag[0] && !he->subject_seen &&
		    name_is(in + i, j - i, "Subject")) {
			he->subject_seen = 1;
			v = i + (size_t)((const char *)memchr(in + i, ':',
			    j - i) - (in + i)) + 1;
			while (v < j && (in[v] == ' ' || in[v] == '\t'))
				v++;
			if (write_all(outfd, "Subject: ", 9) == -1 ||
			    write_all(outfd, he->tag, strlen(he->tag)) == -1 ||
			    (in[v] != '\r' && write_all(outfd, " ", 1) == -1) ||
			    write_all(outfd, in + v, j - v) == -1)
				return -1;
			*outsize += 9 + strlen(he->tag) + (in[v] != '\r') +
			    (j - v);
		} else {
			if (write_all(outfd, in + i, j - i) == -1)
				return -1;
			*outsize += j - i;
		}
		i = j;
	}
	if (write_all(outfd, in + i, size - i) == -1)
		return -1;
	*outsize += size - i;
	return 0;
}

/* Headers to prepend, tags and replaced fields, from every hit rule. */
static void
collect_headers(struct cs *cs, struct hedit *he)
{
	struct content_result		*res = cs->res;
	const struct content_rule	*r;
	size_t				 l;
	int				 i, first = 1;
	char				*c;

	l = 0;
	for (i = 0; i < cs->rs->n; i++) {
		if (!(res->hits & (1ULL << i)))
			continue;
		r = &cs->rs->r[i];
		l = strlen(res->headers);
		snprintf(res->headers + l, sizeof(res->headers) - l, "%s%s=%s",
		    first ? "X-Spork-Content: " : "; ", r->name,
		    action_name(r->action));
		first = 0;
	}
	if (!first) {
		l = strlen(res->headers);
		snprintf(res->headers + l, sizeof(res->headers) - l, "\r\n");
	}
	for (i = 0; i < cs->rs->n; i++) {
		if (!(res->hits & (1ULL << i)))
			continue;
		r = &cs->rs->r[i];
		l = strlen(res->headers);
		if (r->header[0])
			snprintf(res->headers + l, sizeof(res->headers) - l,
			    "%s\r\n", r->header);
		l = strlen(res->headers);
		if (r->set_header[0] && he->ndrop < 8) {
			snprintf(res->headers + l, sizeof(res->headers) - l,
			    "%s\r\n", r->set_header);
			snprintf(he->drop[he->ndrop], sizeof(he->drop[0]), "%s",
			    r->set_header);
			if ((c = strchr(he->drop[he->ndrop], ':')) != NULL)
				*c = '\0';
			he->ndrop++;
		}
		if (r->subject_tag[0] && strlen(he->tag) + strlen(r->subject_tag)
		    + 2 < sizeof(he->tag)) {
			l = strlen(he->tag);
			snprintf(he->tag + l, sizeof(he->tag) - l, "%s%s",
			    l ? " " : "", r->subject_tag);
		}
	}
}

static GMimeMessage *
parse(int fd, size_t size)
{
	GMimeStream	*st;
	GMimeParser	*parser;
	GMimeMessage	*msg;
	int		 dfd;

	if ((dfd = dup(fd)) == -1)
		return NULL;
	st = g_mime_stream_fs_new_with_bounds(dfd, 0, (gint64)size);
	parser = g_mime_parser_new_with_stream(st);
	g_object_unref(st);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	g_mime_parser_set_persist_stream(parser, TRUE);
	msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	return msg;
}

static void *
map(int fd, size_t size)
{
	void	*p;

	if (size == 0)
		return NULL;
	p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/*
 * Returns 0 with res filled in: when res->rewritten, outfd holds the
 * message to deliver instead (*outsize bytes), with res->headers still to
 * be prepended. -1 when the message could not be checked (err says why).
 */
int
content_scan(const struct content_rules *rs, int fd, size_t size,
    int outbound, int outfd, struct content_result *res, uint64_t *outsize,
    char *err, size_t errlen)
{
	struct cs	 cs;
	struct hedit	 he;
	GMimeMessage	*msg;
	char		*in = NULL, *body = NULL;
	size_t		 blen = 0, n = 0, hl;
	int		 tmp = -1, rc = -1, i;

	memset(res, 0, sizeof(*res));
	memset(&cs, 0, sizeof(cs));
	memset(&he, 0, sizeof(he));
	res->checked = 1;
	res->outbound = outbound;
	res->rule = -1;
	cs.rs = rs;
	cs.res = res;
	cs.outbound = outbound;
	*outsize = 0;
	if ((msg = parse(fd, size)) == NULL) {
		snprintf(err, errlen, "not a MIME message");
		return -1;
	}
	walk(&cs, g_mime_message_get_mime_part(msg), GMIME_OBJECT(msg), -1, 0,
	    0);
	if (cs.failed) {
		snprintf(err, errlen, "%s", cs.err);
		goto done;
	}
	/* `all` matches every message (a footer only where it went in). */
	for (i = 0; i < rs->n; i++)
		if (rs->r[i].match == CM_ALL && rs->r[i].action != ACT_FOOTER &&
		    rule_applies(&cs, &rs->r[i]))
			hit(&cs, i, 1, "message");
	collect_headers(&cs, &he);
	if (res->hits == 0 || res->action >= ACT_QUARANTINE) {
		rc = 0;
		goto done;
	}
	if ((in = map(fd, size)) == NULL && size > 0) {
		snprintf(err, errlen, "mmap: %s", strerror(errno));
		goto done;
	}
	hl = header_end(in, size < CS_HEADER_MAX ? size : CS_HEADER_MAX);
	headers_inspect(in, hl, &he);
	if (cs.body_changed) {
		if ((tmp = memfd_create("spork-content", MFD_CLOEXEC)) == -1 ||
		    mime_write(msg, tmp, &blen, err, errlen) == -1)
			goto done;
		if ((body = map(tmp, blen)) == NULL) {
			snprintf(err, errlen, "mmap: %s", strerror(errno));
			goto done;
		}
	}
	if (cs.body_changed || he.tag[0] || he.ndrop > 0) {
		if (headers_rewrite(cs.body_changed ? body : in,
		    cs.body_changed ? blen : size, outfd, &he, &n) == -1) {
			snprintf(err, errlen, "write: %s", strerror(errno));
			goto done;
		}
		res->rewritten = 1;
		*outsize = n;
	}
	/* No Subject to tag: the tag becomes one, added on top. */
	if (he.tag[0] && !he.subject_seen) {
		n = strlen(res->headers);
		snprintf(res->headers + n, sizeof(res->headers) - n,
		    "Subject: %s\r\n", he.tag);
	}
	res->body_changed = cs.body_changed;
	res->dkim = !he.has_dkim ? CDKIM_NONE : cs.body_changed ||
	    he.signed_changed ? CDKIM_BROKEN : CDKIM_KEPT;
	rc = 0;
done:
	if (body != NULL)
		munmap(body, blen);
	if (in != NULL)
		munmap(in, size);
	if (tmp != -1)
		close(tmp);
	g_object_unref(msg);
	return rc;
}
