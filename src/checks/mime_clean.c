/* SPDX-License-Identifier: MIT */
/*
 * The "clean" verdict policy: replace each infected MIME part of a message
 * with a short text notice and keep everything else. Runs inside a scanner
 * worker (sandboxed, no network), because it parses hostile MIME with GMime
 * and decodes every part. The message is read from a descriptor; nothing
 * is written unless a part was replaced; the output always has CRLF line
 * ends. Parts are found with GMime's part iterator, which also walks into
 * attached messages (message/rfc822). The caller scans the output again:
 * cleaning is trusted only when the result scans clean.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "mime_clean.h"

#define NOTICE_MAX	768

void
mime_clean_init(void)
{
	g_mime_init();
}

/* Header and notice text stay printable ASCII whatever the input. */
static void
ascii(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e ||
		    *s == '"')
			*s = '?';
}

static void
names_add(struct mime_clean_result *res, const char *name)
{
	size_t	l = strlen(res->names);

	if (strstr(res->names, name) != NULL)
		return;
	snprintf(res->names + l, sizeof(res->names) - l, "%s%s",
	    l > 0 ? " " : "", name);
}

static GMimeObject *
notice_part(GMimePart *part, const char *virus)
{
	GMimeTextPart	*np;
	GMimeContentType *ct;
	char		 text[NOTICE_MAX], file[128], type[128], name[256];
	const char	*fn;
	char		*mt;

	fn = g_mime_part_get_filename(part);
	snprintf(file, sizeof(file), "%s", fn != NULL ? fn : "");
	ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
	mt = ct != NULL ? g_mime_content_type_get_mime_type(ct) : NULL;
	snprintf(type, sizeof(type), "%s", mt != NULL ? mt : "unknown");
	g_free(mt);
	snprintf(name, sizeof(name), "%s", virus);
	ascii(file);
	ascii(type);
	ascii(name);
	snprintf(text, sizeof(text),
	    "This part of the message%s%s%s (%s)\r\n"
	    "contained a virus and was removed before delivery.\r\n"
	    "\r\n"
	    "Virus: %s\r\n",
	    file[0] ? " \"" : "", file, file[0] ? "\"" : "", type, name);

	np = g_mime_text_part_new_with_subtype("plain");
	g_mime_text_part_set_text(np, text);
	g_mime_text_part_set_charset(np, "us-ascii");
	g_mime_part_set_content_encoding(GMIME_PART(np),
	    GMIME_CONTENT_ENCODING_7BIT);
	g_mime_object_set_disposition(GMIME_OBJECT(np), "inline");
	g_mime_object_set_header(GMIME_OBJECT(np), "X-Spork-Removed", name,
	    NULL);
	return GMIME_OBJECT(np);
}

/* 1: infected and replaced, 0: clean, -1: could not be scanned. */
static int
clean_part(GMimePartIter *it, GMimePart *part, mime_scan_fn *scan,
    void *arg, struct mime_clean_result *res, char *err, size_t errlen)
{
	GMimeDataWrapper *content;
	GMimeStream	*mem;
	GMimeObject	*np;
	GByteArray	*ba;
	char		 name[256];
	int		 rc;

	res->parts++;
	if ((content = g_mime_part_get_content(part)) == NULL)
		return 0;
	mem = g_mime_stream_mem_new();
	if (g_mime_data_wrapper_write_to_stream(content, mem) == -1) {
		g_object_unref(mem);
		snprintf(err, errlen, "cannot decode part %u", res->parts);
		return -1;
	}
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	name[0] = '\0';
	rc = scan(arg, ba->data, ba->len, name, sizeof(name));
	g_object_unref(mem);
	if (rc == -1) {
		snprintf(err, errlen, "part %u: %s", res->parts, name);
		return -1;
	}
	if (rc == 0)
		return 0;
	np = notice_part(part, name[0] ? name : "unknown");
	if (!g_mime_part_iter_replace(it, np)) {
		g_object_unref(np);
		snprintf(err, errlen, "cannot replace part %u", res->parts);
		return -1;
	}
	g_object_unref(np);
	res->removed++;
	names_add(res, name[0] ? name : "unknown");
	return 1;
}

/* Every CR followed by LF, every LF preceded by CR, no NUL. */
static int
canonical(int fd, size_t size)
{
	char	b[16384], prev = '\0';
	size_t	off, i;
	ssize_t	n;

	for (off = 0; off < size; off += (size_t)n) {
		if ((n = pread(fd, b, sizeof(b), (off_t)off)) <= 0)
			return 0;
		for (i = 0; i < (size_t)n; i++) {
			if (b[i] == '\0' || (b[i] == '\n' && prev != '\r') ||
			    (prev == '\r' && b[i] != '\n'))
				return 0;
			prev = b[i];
		}
	}
	return prev != '\r';
}

/* Serialize msg to outfd with CRLF line ends; *size is the file's size. */
int
mime_write(GMimeMessage *msg, int outfd, size_t *size, char *err,
    size_t errlen)
{
	GMimeFormatOptions *fo;
	GMimeStream	*fs, *filtered;
	GMimeFilter	*crlf;
	ssize_t		 n;
	int		 fd, rc = -1;

	if ((fd = dup(outfd)) == -1) {
		snprintf(err, errlen, "dup: %s", strerror(errno));
		return -1;
	}
	fs = g_mime_stream_fs_new(fd);		/* owns fd */
	filtered = g_mime_stream_filter_new(fs);
	crlf = g_mime_filter_unix2dos_new(FALSE);
	g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), crlf);
	g_object_unref(crlf);
	fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	n = g_mime_object_write_to_stream(GMIME_OBJECT(msg), fo, filtered);
	if (n == -1 || g_mime_stream_flush(filtered) == -1)
		snprintf(err, errlen, "cannot write the cleaned message: %s",
		    strerror(errno));
	else if ((*size = (size_t)lseek(outfd, 0, SEEK_END)) ==
	    (size_t)-1)
		snprintf(err, errlen, "lseek: %s", strerror(errno));
	else if (!canonical(outfd, *size))
		snprintf(err, errlen, "the rewritten message is not canonical "
		    "CRLF text");
	else
		rc = 0;
	g_mime_format_options_free(fo);
	g_object_unref(filtered);
	g_object_unref(fs);
	return rc;
}

/*
 * Returns 0 with res->removed > 0 when the output holds the cleaned
 * message, 0 with res->removed == 0 when no part was found infected
 * (nothing written), -1 when the message could not be parsed, scanned
 * or written (err says why).
 */
int
mime_clean(int fd, size_t size, int outfd, mime_scan_fn *scan, void *arg,
    struct mime_clean_result *res, char *err, size_t errlen)
{
	GMimeStream	*st;
	GMimeParser	*parser;
	GMimeMessage	*msg;
	GMimePartIter	*it;
	GMimeObject	*cur;
	int		 dfd, rc = 0;

	memset(res, 0, sizeof(*res));
	if ((dfd = dup(fd)) == -1) {
		snprintf(err, errlen, "dup: %s", strerror(errno));
		return -1;
	}
	st = g_mime_stream_fs_new_with_bounds(dfd, 0, (gint64)size);
	parser = g_mime_parser_new_with_stream(st);
	g_object_unref(st);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	g_mime_parser_set_persist_stream(parser, TRUE);
	msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	if (msg == NULL) {
		snprintf(err, errlen, "not a MIME message");
		return -1;
	}
	it = g_mime_part_iter_new(GMIME_OBJECT(msg));
	for (; g_mime_part_iter_is_valid(it); g_mime_part_iter_next(it)) {
		cur = g_mime_part_iter_get_current(it);
		if (!GMIME_IS_PART(cur))
			continue;	/* multiparts and message parts */
		if (clean_part(it, GMIME_PART(cur), scan, arg, res, err,
		    errlen) == -1) {
			rc = -1;
			break;
		}
	}
	g_mime_part_iter_free(it);
	if (rc == 0 && res->removed > 0)
		rc = mime_write(msg, outfd, &res->size, err, errlen);
	g_object_unref(msg);
	return rc;
}
