/* SPDX-License-Identifier: MIT */
/*
 * The console's pages, as HTML written into a memory stream: the
 * dashboard (mail flow per minute by verdict, an inline SVG drawn here;
 * TLS coverage, scanner, divert and worker pool from sporkd's `status`),
 * the tracking center (search, results, one message's story) and the
 * quarantine (list, one message, release and delete behind a confirmation
 * form). Everything that came from mail, sporkd or the request goes
 * through html() before it reaches a page (text sporkd escaped already
 * through html_sporkd()); SQL takes it only as bound parameters, LIKE
 * patterns with their wildcards escaped. Searches and message views are
 * logged, one line each, their values escaped. Who may see a page and whether a POST carries its token was
 * settled by console_http.c before a function here runs.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>
#include <sqlite3.h>

#include "console.h"
#include "track_read.h"
#include "log.h"

#define STATUS_KEYS_MAX		512
#define ARG_MAX			512
#define LOG_VALUE_MAX		96	/* bytes of a searched value in a log line */
#define TRACK_RESULTS_MAX	200
#define TRACK_ID_PER_SEC	1000000	/* track.h: an id is its record's time */
#define CHART_W			760
#define CHART_H			260
#define CHART_L			44	/* left margin: y labels */
#define CHART_R			120	/* right margin: legend */
#define CHART_T			12
#define CHART_B			28	/* bottom margin: x labels */
#define CHART_SERIES_MAX	8
#define CHART_HOURS_MAX		24

static void	track_dberr(FILE *, struct sqlite3 *);

const char console_css[] =
    "body{font:14px/1.4 sans-serif;margin:0;color:#222;background:#f6f6f4}"
    "header{background:#2b3a42;color:#fff;padding:8px 16px;display:flex;"
    "gap:18px;align-items:center}header a{color:#fff}"
    "header form{margin-left:auto}main{padding:12px 16px}"
    "table{border-collapse:collapse;background:#fff;margin:8px 0}"
    "td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;"
    "vertical-align:top}th{background:#eee}"
    "pre{background:#fff;border:1px solid #ccc;padding:8px;"
    "white-space:pre-wrap;word-break:break-all;max-height:40em;overflow:auto}"
    ".cards{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}"
    ".card{background:#fff;border:1px solid #ccc;padding:8px 12px;"
    "min-width:220px}.err{color:#a00}.ok{color:#070}"
    "form.search label{display:inline-block;margin:2px 10px 2px 0}"
    "svg{background:#fff;border:1px solid #ccc}"
    "button.danger{background:#a00;color:#fff}";

/* ---------------------------------------------------------------- html */

/* U+202A-U+202E and U+2066-U+2069 in UTF-8 (bidi embeddings, overrides
 * and isolates, which would turn the rest of a line around): the code
 * point, else 0. u[0] is not NUL, so u[1] may be read; u[2] only after
 * u[1] matched, so never past a NUL. */
static unsigned
bidi_control(const unsigned char *u)
{
	if (u[0] != 0xe2 || (u[1] != 0x80 && u[1] != 0x81))
		return 0;
	if ((u[1] == 0x80 && u[2] >= 0xaa && u[2] <= 0xae) ||
	    (u[1] == 0x81 && u[2] >= 0xa6 && u[2] <= 0xa9))
		return 0x2000u | (unsigned)(u[1] & 0x3f) << 6 | (u[2] & 0x3f);
	return 0;
}

/*
 * Text into HTML: the five entities; a control byte (but TAB and LF) as
 * \xNN, a bidi control as \uXXXX, and so a backslash as \\: visible
 * and unambiguous. backslash 0: text sporkd escaped already (printable
 * ASCII with its own \\ and \xNN), which must not be escaped twice.
 */
static void
html_esc(FILE *fp, const char *s, size_t n, int backslash)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 i;
	unsigned		 cp;

	for (i = 0; i < n && u[i] != '\0'; i++) {
		unsigned char	c = u[i];

		switch (c) {
		case '&': fputs("&amp;", fp); break;
		case '<': fputs("&lt;", fp); break;
		case '>': fputs("&gt;", fp); break;
		case '"': fputs("&quot;", fp); break;
		case '\'': fputs("&#39;", fp); break;
		case '\\': fputs(backslash ? "\\\\" : "\\", fp); break;
		default:
			if (c < 0x20 && c != '\t' && c != '\n')
				fprintf(fp, "\\x%02x", c);
			else if (n - i >= 3 && (cp = bidi_control(u + i)) != 0) {
				fprintf(fp, "\\u%04x", cp);
				i += 2;
			} else
				fputc(c, fp);
		}
	}
}

void
html_n(FILE *fp, const char *s, size_t n)
{
	html_esc(fp, s, n, 1);
}

static void
html_sporkd(FILE *fp, const char *s, size_t n)
{
	html_esc(fp, s, n, 0);
}

void
html(FILE *fp, const char *s)
{
	html_n(fp, s != NULL ? s : "", (size_t)-1);
}

static void
csrf_field(FILE *fp, const struct console_req *r)
{
	fputs("<input type=\"hidden\" name=\"csrf\" value=\"", fp);
	html(fp, r->csrf);
	fputs("\">", fp);
}

void
page_begin(struct console_page *p, const struct console_req *r,
    const char *title)
{
	p->fp = open_memstream(&p->text, &p->len);
	if (p->fp == NULL)
		fatal("open_memstream: %s", strerror(errno));
	p->status = MHD_HTTP_OK;
	p->type = "text/html; charset=utf-8";
	fputs("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<title>", p->fp);
	html(p->fp, title);
	fputs(" - spork</title><link rel=\"stylesheet\" href=\"/style.css\">"
	    "</head><body><header><b>spork</b>", p->fp);
	if (r->user != NULL) {
		fputs("<a href=\"/\">Dashboard</a><a href=\"/track\">Tracking"
		    "</a><a href=\"/quarantine\">Quarantine</a>"
		    "<a href=\"/metrics\">Metrics</a>"
		    "<form method=\"post\" action=\"/logout\">", p->fp);
		html(p->fp, r->user);
		fputc(' ', p->fp);
		csrf_field(p->fp, r);
		fputs("<button type=\"submit\">Log out</button></form>", p->fp);
	}
	fputs("</header><main><h1>", p->fp);
	html(p->fp, title);
	fputs("</h1>", p->fp);
}

void
page_end(struct console_page *p)
{
	fputs("</main></body></html>\n", p->fp);
	fclose(p->fp);
	p->fp = NULL;
}

void
page_error(struct console_page *p, const struct console_req *r, int status,
    const char *msg)
{
	page_begin(p, r, status == MHD_HTTP_FORBIDDEN ? "Forbidden" : "Error");
	fputs("<p class=\"err\">", p->fp);
	html(p->fp, msg);
	fputs("</p>", p->fp);
	page_end(p);
	p->status = status;
}

void
page_login(struct console_page *p, const struct console_req *r,
    const char *token, const char *msg)
{
	page_begin(p, r, "Log in");
	if (msg != NULL) {
		fputs("<p class=\"err\" id=\"login-error\">", p->fp);
		html(p->fp, msg);
		fputs("</p>", p->fp);
	}
	fputs("<form method=\"post\" action=\"/login\">"
	    "<input type=\"hidden\" name=\"csrf\" value=\"", p->fp);
	html(p->fp, token);
	fputs("\"><p><label>User <input name=\"user\" id=\"user\" "
	    "autocomplete=\"username\" required></label></p>"
	    "<p><label>Password <input name=\"password\" id=\"password\" "
	    "type=\"password\" autocomplete=\"current-password\" required>"
	    "</label></p><p><button type=\"submit\" id=\"login\">Log in"
	    "</button></p></form>", p->fp);
	page_end(p);
}

/* ------------------------------------------------------- sporkd status */

struct kv {
	char	*k, *v;
};

struct status {
	char		*text;
	struct kv	 kv[STATUS_KEYS_MAX];
	int		 n;
	char		 err[CONF_PATH_MAX + 128];
};

/*
 * `status` answers "ok", then lines "key=value", or "key a=b c=d" for a
 * thing with several fields (scan.worker pid=... state=...): the key is
 * the line's first word up to '=' or a space.
 */
static int
status_load(struct status *st)
{
	size_t	 len;
	char	*line, *save = NULL, *sep;

	memset(st, 0, sizeof(*st));
	if (ctl_ask("status", &st->text, &len) == -1) {
		snprintf(st->err, sizeof(st->err), "sporkd does not answer on "
		    "%s: %s", console_conf->control_socket, strerror(errno));
		return -1;
	}
	if (strncmp(st->text, "ok", 2) != 0) {
		snprintf(st->err, sizeof(st->err), "%.*s", 200, st->text);
		return -1;
	}
	for (line = strtok_r(st->text, "\n", &save); line != NULL &&
	    st->n < STATUS_KEYS_MAX; line = strtok_r(NULL, "\n", &save)) {
		if ((sep = line + strcspn(line, "= ")) == line || *sep == '\0')
			continue;
		*sep = '\0';
		st->kv[st->n].k = line;
		st->kv[st->n].v = sep + 1;
		st->n++;
	}
	return 0;
}

static const char *
status_get(const struct status *st, const char *k)
{
	int	i;

	for (i = 0; i < st->n; i++)
		if (strcmp(st->kv[i].k, k) == 0)
			return st->kv[i].v;
	return NULL;
}

static void
status_row(FILE *fp, const struct status *st, const char *label,
    const char *k)
{
	fputs("<tr><th>", fp);
	html(fp, label);
	fputs("</th><td>", fp);
	html(fp, status_get(st, k) != NULL ? status_get(st, k) : "-");
	fputs("</td></tr>", fp);
}

/* Every key with this prefix, as it came. */
static void
status_rows_prefix(FILE *fp, const struct status *st, const char *prefix)
{
	size_t	pl = strlen(prefix);
	int	i;

	for (i = 0; i < st->n; i++)
		if (strncmp(st->kv[i].k, prefix, pl) == 0) {
			fputs("<tr><th>", fp);
			html(fp, st->kv[i].k);
			fputs("</th><td>", fp);
			html(fp, st->kv[i].v);
			fputs("</td></tr>", fp);
		}
}

/* ---------------------------------------------------------- the chart */

struct series {
	char		verdict[32];
	unsigned	*count;
};

static const char *
verdict_colour(const char *v, int i)
{
	static const char *const spare[] = { "#1f77b4", "#8c564b", "#e377c2",
	    "#7f7f7f", "#bcbd22", "#17becf" };

	if (strcmp(v, "clean") == 0)
		return "#2ca02c";
	if (strcmp(v, "virus") == 0)
		return "#d62728";
	if (strcmp(v, "spam") == 0)
		return "#ff7f0e";
	if (strcmp(v, "content") == 0)
		return "#9467bd";
	return spare[i % 6];
}

static void
hhmm(char *out, size_t len, time_t t)
{
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%H:%M", &tm);
}

/*
 * Messages per minute by verdict over the last `hours` hours, from the
 * tracking database: one bucket per `hours` minutes, drawn as one line
 * per verdict with a point for each bucket that had mail.
 */
static void
chart(FILE *fp, int hours)
{
	struct series	 s[CHART_SERIES_MAX];
	sqlite3		*db;
	sqlite3_stmt	*q = NULL;
	char		 err[512], t1[8];
	const int	 nb = 60;
	double		 bsec = 60.0 * hours, start, now = (double)time(NULL);
	double		 pw = CHART_W - CHART_L - CHART_R;
	double		 ph = CHART_H - CHART_T - CHART_B;
	unsigned	 max = 0, total = 0;
	int		 ns = 0, i, b, rc;

	memset(s, 0, sizeof(s));
	start = floor(now / 60.0) * 60.0 + 60.0 - bsec * nb;
	if ((db = track_open(err, sizeof(err))) == NULL) {
		fputs("<p class=\"err\">", fp);
		html(fp, err);
		fputs("</p>", fp);
		return;
	}
	/* The ids from start's on: the newest rows of the table. */
	rc = sqlite3_prepare_v2(db, "SELECT CAST((t - ?1) / ?2 AS INTEGER), "
	    "verdict, COUNT(*) FROM messages WHERE id >= ?3 GROUP BY 1, 2",
	    -1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_double(q, 1, start);
		sqlite3_bind_double(q, 2, bsec);
		sqlite3_bind_int64(q, 3, (sqlite3_int64)(start *
		    TRACK_ID_PER_SEC));
	}
	while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char	*v = (const char *)sqlite3_column_text(q, 1);

		rc = SQLITE_OK;
		b = sqlite3_column_int(q, 0);
		if (b < 0 || b >= nb)
			continue;
		if (v == NULL || v[0] == '\0')
			v = "unknown";
		for (i = 0; i < ns && strcmp(s[i].verdict, v) != 0; i++)
			;
		if (i == ns) {
			if (ns == CHART_SERIES_MAX)
				i = ns - 1;	/* the last one takes the rest */
			else if ((s[ns].count = calloc(nb, sizeof(unsigned)))
			    == NULL)
				continue;
			else
				snprintf(s[ns++].verdict, sizeof(s[0].verdict),
				    "%s", v);
		}
		s[i].count[b] += (unsigned)sqlite3_column_int(q, 2);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		track_dberr(fp, db);
	sqlite3_finalize(q);
	sqlite3_close(db);
	for (i = 0; i < ns; i++)
		for (b = 0; b < nb; b++) {
			total += s[i].count[b];
			if (s[i].count[b] > max)
				max = s[i].count[b];
		}
	if (max < 4)
		max = 4;
	fprintf(fp, "<svg id=\"flow\" xmlns=\"http://www.w3.org/2000/svg\" "
	    "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
	    "aria-label=\"mail flow\" data-total=\"%u\">", CHART_W, CHART_H,
	    CHART_W, CHART_H, total);
	/* Axes, three horizontal guides, a time label every 10 buckets. */
	for (i = 0; i <= 2; i++) {
		double	y = CHART_T + ph - ph * i / 2.0;

		fprintf(fp, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" "
		    "y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" "
		    "font-size=\"11\" text-anchor=\"end\">%.3g</text>",
		    CHART_L, y, CHART_L + pw, y, CHART_L - 4, y + 4,
		    max * i / 2.0 / hours);
	}
	for (b = 0; b <= nb; b += 10) {
		double	x = CHART_L + pw * b / nb;

		hhmm(t1, sizeof(t1), (time_t)(start + bsec * b));
		fprintf(fp, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" "
		    "text-anchor=\"middle\">%s</text>", x, CHART_H - 10, t1);
	}
	for (i = 0; i < ns; i++) {
		const char	*col = verdict_colour(s[i].verdict, i);

		fputs("<g class=\"series\" data-verdict=\"", fp);
		html(fp, s[i].verdict);
		fprintf(fp, "\"><polyline fill=\"none\" stroke=\"%s\" "
		    "stroke-width=\"1.5\" points=\"", col);
		for (b = 0; b < nb; b++)
			fprintf(fp, "%.1f,%.1f ", CHART_L + pw * (b + 0.5) / nb,
			    CHART_T + ph - ph * s[i].count[b] / max);
		fputs("\"/>", fp);
		for (b = 0; b < nb; b++) {
			if (s[i].count[b] == 0)
				continue;
			hhmm(t1, sizeof(t1), (time_t)(start + bsec * b));
			fprintf(fp, "<circle class=\"pt\" cx=\"%.1f\" "
			    "cy=\"%.1f\" r=\"3\" fill=\"%s\" data-count=\"%u\">"
			    "<title>%s ", CHART_L + pw * (b + 0.5) / nb,
			    CHART_T + ph - ph * s[i].count[b] / max, col,
			    s[i].count[b], t1);
			html(fp, s[i].verdict);
			fprintf(fp, ": %u</title></circle>", s[i].count[b]);
		}
		fprintf(fp, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" "
		    "fill=\"%s\"/><text x=\"%d\" y=\"%d\" font-size=\"12\">",
		    CHART_W - CHART_R + 12, CHART_T + 16 * i, col,
		    CHART_W - CHART_R + 26, CHART_T + 16 * i + 9);
		html(fp, s[i].verdict);
		fputs("</text></g>", fp);
		free(s[i].count);
	}
	if (ns == 0)
		fprintf(fp, "<text x=\"%d\" y=\"%d\" font-size=\"13\" "
		    "text-anchor=\"middle\">no mail in this period</text>",
		    CHART_L + (int)pw / 2, CHART_T + (int)ph / 2);
	fprintf(fp, "</svg><p>%u messages; messages per minute, %d-minute "
	    "buckets; times UTC.</p>", total, hours);
}

/* ------------------------------------------------------------ dashboard */

void
page_dashboard(struct console_page *p, const struct console_req *r)
{
	struct status	 st;
	char		 a[16], eng[256], *f[3] = { NULL, NULL, NULL }, *save;
	const char	*v;
	int		 hours = 1, i;

	if (console_arg(r, "hours", a, sizeof(a)) != NULL)
		hours = atoi(a);
	if (hours < 1 || hours > CHART_HOURS_MAX)
		hours = 1;
	page_begin(p, r, "Dashboard");
	fprintf(p->fp, "<h2>Mail flow, last %d hour%s</h2><p>", hours,
	    hours == 1 ? "" : "s");
	for (i = 1; i <= CHART_HOURS_MAX; i *= (i == 1 ? 6 : 4))
		fprintf(p->fp, "<a href=\"/?hours=%d\">%d h</a> ", i, i);
	fputs("</p>", p->fp);
	chart(p->fp, hours);

	if (status_load(&st) == -1) {
		fputs("<p class=\"err\" id=\"status-error\">", p->fp);
		html(p->fp, st.err);
		fputs("</p>", p->fp);
		free(st.text);
		page_end(p);
		return;
	}
	fputs("<div class=\"cards\">", p->fp);

	fputs("<div class=\"card\" id=\"tls\"><h2>TLS coverage</h2><table>",
	    p->fp);
	status_row(p->fp, &st, "scanned (lower bound)", "coverage.scanned_pct");
	status_rows_prefix(p->fp, &st, "tls.");
	status_rows_prefix(p->fp, &st, "coverage.");
	fputs("</table></div>", p->fp);

	/* scan.engine is "NAME VERSION/SIGNATURE VERSION/SIGNATURES". */
	snprintf(eng, sizeof(eng), "%s", (v = status_get(&st, "scan.engine"))
	    != NULL ? v : "");
	f[0] = strtok_r(eng, "/", &save);
	f[1] = f[0] != NULL ? strtok_r(NULL, "/", &save) : NULL;
	f[2] = f[1] != NULL ? strtok_r(NULL, "/", &save) : NULL;
	fputs("<div class=\"card\" id=\"scanner\"><h2>Scanner</h2><table>",
	    p->fp);
	status_row(p->fp, &st, "backend", "scan.backend");
	fputs("<tr><th>engine</th><td>", p->fp);
	html(p->fp, f[0] != NULL ? f[0] : "-");
	fputs("</td></tr><tr><th>signature version</th><td>", p->fp);
	html(p->fp, f[1] != NULL ? f[1] : "-");
	fputs("</td></tr><tr><th>signatures</th><td>", p->fp);
	html(p->fp, f[2] != NULL ? f[2] : "-");
	fputs("</td></tr>", p->fp);
	status_row(p->fp, &st, "generation", "scan.generation");
	status_row(p->fp, &st, "reloads", "scan.reloads");
	status_row(p->fp, &st, "reloads refused", "scan.reloads_refused");
	status_row(p->fp, &st, "scans", "scan.scans");
	fputs("</table></div>", p->fp);

	/* The divert's owner is in the configuration; sporkd's status
	 * names its state when it knows it (divert.* keys). */
	fputs("<div class=\"card\" id=\"divert\"><h2>Divert</h2><table>"
	    "<tr><th>owner</th><td>", p->fp);
	if (console_conf->divert_bridge[0] != '\0') {
		fputs("sporkd (bridge ", p->fp);
		html(p->fp, console_conf->divert_bridge);
		fputs(")", p->fp);
	} else
		fputs("spork-setup (static divert)", p->fp);
	fputs("</td></tr><tr><th>sporkd</th><td class=\"ok\">running, "
	    "answering</td></tr><tr><th>failure policy</th><td>", p->fp);
	if ((v = status_get(&st, "divert.failure")) != NULL)
		html(p->fp, v);
	else if (console_conf->divert_bridge[0] == '\0')
		fputs("fail-closed (a static divert without sporkd resets "
		    "connections)", p->fp);
	else
		fputs("not reported by sporkd (spork-setup --failure)", p->fp);
	fputs("</td></tr>", p->fp);
	status_rows_prefix(p->fp, &st, "divert.");
	status_rows_prefix(p->fp, &st, "cba.");
	fputs("</table></div>", p->fp);

	fputs("<div class=\"card\" id=\"workers\"><h2>Worker pool</h2><table>",
	    p->fp);
	status_row(p->fp, &st, "workers", "scan.workers");
	status_row(p->fp, &st, "busy", "scan.busy");
	status_row(p->fp, &st, "sent ahead", "scan.ahead");
	status_row(p->fp, &st, "queue", "scan.queue");
	status_row(p->fp, &st, "memory (PSS kB)", "scan.pss_kb");
	status_row(p->fp, &st, "timeouts", "scan.timeouts");
	status_row(p->fp, &st, "worker deaths", "scan.worker_deaths");
	for (i = 0; i < st.n; i++)
		if (strcmp(st.kv[i].k, "scan.worker") == 0) {
			fputs("<tr><th>worker</th><td>", p->fp);
			html(p->fp, st.kv[i].v);
			fputs("</td></tr>", p->fp);
		}
	fputs("</table></div>", p->fp);

	fputs("<div class=\"card\" id=\"sessions\"><h2>sporkd</h2><table>",
	    p->fp);
	status_row(p->fp, &st, "uptime (s)", "uptime_s");
	status_row(p->fp, &st, "sessions", "sessions");
	status_row(p->fp, &st, "spool in memory (bytes)", "spool.memory_bytes");
	status_row(p->fp, &st, "spool on disk (bytes)", "spool.disk_bytes");
	status_rows_prefix(p->fp, &st, "track.");
	fputs("</table></div></div>", p->fp);
	free(st.text);
	page_end(p);
}

/* ------------------------------------------------------ tracking center */

static void
when(FILE *fp, double t)
{
	char		s[32];
	time_t		tt = (time_t)t;
	struct tm	tm;

	gmtime_r(&tt, &tm);
	strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm);
	fputs(s, fp);
}

/* "YYYY-MM-DD[ T]HH:MM[:SS]" or "YYYY-MM-DD", UTC; -1 if not a time. */
double
parse_time(const char *s)
{
	static const char *const fmts[] = { "%Y-%m-%dT%H:%M:%S",
	    "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
	    "%Y-%m-%d" };
	struct tm	tm;
	const char	*e;
	size_t		i;

	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		memset(&tm, 0, sizeof(tm));
		if ((e = strptime(s, fmts[i], &tm)) != NULL && *e == '\0')
			return (double)timegm(&tm);
	}
	return -1;
}

/* before, s with its % _ \ escaped (for ESCAPE '\'), after (malloc'd). */
static char *
like_escape(const char *before, const char *s, const char *after)
{
	char	*o, *p;

	if ((o = malloc(strlen(before) + strlen(s) * 2 + strlen(after) + 1)) ==
	    NULL)
		return NULL;
	p = o + sprintf(o, "%s", before);
	for (; *s != '\0'; s++) {
		if (*s == '%' || *s == '_' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	strcpy(p, after);
	return o;
}

/* "%s%" around a LIKE pattern, its own % _ \ escaped. */
char *
like_arg(const char *s)
{
	return like_escape("%", s, "%");
}

/* A value for a log line: printable ASCII but " and \, the rest as \xNN,
 * at most LOG_VALUE_MAX bytes of it. */
static const char *
log_safe(char *out, size_t outlen, const char *s)
{
	static const char	hex[] = "0123456789abcdef";
	size_t			o = 0, i;

	for (i = 0; s[i] != '\0' && i < LOG_VALUE_MAX && o + 5 < outlen; i++) {
		unsigned char	c = (unsigned char)s[i];

		if (c > 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[o++] = (char)c;
		else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (s[i] != '\0' && o + 3 < outlen)
		o += (size_t)snprintf(out + o, outlen - o, "...");
	out[o] = '\0';
	return out;
}

/* Why a tracking query stopped: too long (narrow it) or the database. */
static void
track_dberr(FILE *fp, struct sqlite3 *db)
{
	if (track_timed_out(db)) {
		fputs("<p class=\"err\" id=\"too-long\">The search took too "
		    "long and was stopped: narrow it (a shorter time range, a "
		    "fuller address or Message-ID).</p>", fp);
		return;
	}
	fputs("<p class=\"err\">tracking database: ", fp);
	html(fp, sqlite3_errmsg(db));
	fputs("</p>", fp);
}

struct search_field {
	const char	*name, *label, *sql;
	int		 like;		/* its ?s: the value as a pattern */
};

/* A time is the bound of a range of ids (an id is its record's time);
 * the first recipient is in the message's row, the others in
 * recipients. @M and @R are a segment's tables (track_read.h). */
static const struct search_field search_fields[] = {
	{ "sender", "Sender", "m.sender LIKE ? ESCAPE '\\'", 1 },
	{ "rcpt", "Recipient", "(m.rcpt LIKE ? ESCAPE '\\' OR EXISTS (SELECT "
	    "1 FROM @R r WHERE r.message = m.id AND r.rcpt LIKE ? "
	    "ESCAPE '\\'))", 2 },
	{ "msgid", "Message-ID", "m.message_id LIKE ? ESCAPE '\\'", 1 },
	{ "client", "Client address", "(m.client_addr = ? OR m.client LIKE "
	    "? ESCAPE '\\')", 0 },
	{ "from", "From (UTC)", "m.id >= ?", 0 },
	{ "to", "To (UTC)", "m.id <= ?", 0 },
};
#define NFIELDS	(sizeof(search_fields) / sizeof(search_fields[0]))

/* A search's values for track_read_each's hooks: each field's as typed,
 * as bound (a pattern, an address), as an id (a time). */
struct search {
	char		 (*val)[ARG_MAX];
	char		**bound;
	sqlite3_int64	*ids;
	FILE		*fp;
};

static void
search_bind(sqlite3_stmt *q, void *arg)
{
	const struct search	*ts = arg;
	size_t			 i;
	int			 j, k = 1;

	for (i = 0; i < NFIELDS; i++) {
		if (ts->val[i][0] == '\0')
			continue;
		if (search_fields[i].like) {
			for (j = 0; j < search_fields[i].like; j++)
				sqlite3_bind_text(q, k++, ts->bound[i], -1,
				    SQLITE_STATIC);
		} else if (i >= 4)
			sqlite3_bind_int64(q, k++, ts->ids[i]);
		else {
			sqlite3_bind_text(q, k++, ts->val[i], -1,
			    SQLITE_STATIC);
			sqlite3_bind_text(q, k++, ts->bound[i], -1,
			    SQLITE_STATIC);
		}
	}
}

static int
search_row(sqlite3_stmt *q, unsigned seg, void *arg)
{
	const struct search	*ts = arg;
	int			 k;

	(void)seg;
	fprintf(ts->fp, "<tr><td><a href=\"/track/message?id=%lld\">",
	    (long long)sqlite3_column_int64(q, 0));
	when(ts->fp, sqlite3_column_double(q, 1));
	fputs("</a></td>", ts->fp);
	for (k = 2; k <= 8; k++) {
		fputs("<td>", ts->fp);
		html(ts->fp, (const char *)sqlite3_column_text(q, k));
		fputs("</td>", ts->fp);
	}
	fputs("</tr>", ts->fp);
	return 0;
}

void
page_track(struct console_page *p, const struct console_req *r)
{
	char		 val[NFIELDS][ARG_MAX], err[512];
	char		 logv[LOG_VALUE_MAX * 4 + 8];
	char		*sql = NULL, *bound[NFIELDS];
	sqlite3_int64	 ids[NFIELDS];
	struct search	 ts;
	size_t		 sqllen = 0, i;
	FILE		*sf;
	sqlite3		*db = NULL;
	long		 rows;
	int		 any = 0, bad = 0;

	page_begin(p, r, "Tracking center");
	fputs("<form class=\"search\" method=\"get\" action=\"/track\">",
	    p->fp);
	for (i = 0; i < NFIELDS; i++) {
		bound[i] = NULL;
		if (console_arg(r, search_fields[i].name, val[i],
		    sizeof(val[i])) == NULL)
			val[i][0] = '\0';
		fputs("<label>", p->fp);
		html(p->fp, search_fields[i].label);
		fprintf(p->fp, " <input name=\"%s\" id=\"q-%s\" value=\"",
		    search_fields[i].name, search_fields[i].name);
		html(p->fp, val[i]);
		fprintf(p->fp, "\"%s></label>", i >= 4 ?
		    " placeholder=\"YYYY-MM-DD HH:MM\"" : "");
		any |= val[i][0] != '\0';
	}
	fputs("<button type=\"submit\" id=\"search\">Search</button></form>",
	    p->fp);
	if (!any) {
		fputs("<p>Give at least one field; the newest 200 matches are "
		    "shown.</p>", p->fp);
		page_end(p);
		return;
	}
	if ((sf = open_memstream(&sql, &sqllen)) == NULL)
		goto fail;
	for (i = 0; i < NFIELDS; i++)
		if (val[i][0] != '\0')
			fprintf(sf, " q.%s=\"%s\"", search_fields[i].name,
			    log_safe(logv, sizeof(logv), val[i]));
	fclose(sf);
	log_info(NULL, "console user=%s action=track%s from=%s", r->user, sql,
	    r->from);
	free(sql);
	sql = NULL;
	if ((sf = open_memstream(&sql, &sqllen)) == NULL)
		goto fail;
	fputs("SELECT m.id, m.t, m.client, m.sender, CASE WHEN m.rcpts > 1 "
	    "THEN m.rcpt || ' ' || (SELECT group_concat(rcpt, ' ') FROM "
	    "@R r WHERE r.message = m.id) ELSE m.rcpt END, "
	    "m.subject, m.verdict, m.action, m.reply FROM @M m WHERE 1",
	    sf);
	for (i = 0; i < NFIELDS; i++)
		if (val[i][0] != '\0')
			fprintf(sf, " AND %s", search_fields[i].sql);
	fprintf(sf, " ORDER BY m.id DESC LIMIT %d", TRACK_RESULTS_MAX);
	fclose(sf);
	if ((db = track_open(err, sizeof(err))) == NULL) {
		fputs("<p class=\"err\">", p->fp);
		html(p->fp, err);
		fputs("</p>", p->fp);
		goto done;
	}
	/* The values: LIKE patterns, ids from times. */
	for (i = 0; i < NFIELDS; i++) {
		if (val[i][0] == '\0')
			continue;
		if (search_fields[i].like) {
			if ((bound[i] = like_arg(val[i])) == NULL)
				goto fail;
		} else if (i >= 4) {
			double	t = parse_time(val[i]);

			if (t < 0) {
				bad = 1;
				fputs("<p class=\"err\">Not a time: ", p->fp);
				html(p->fp, val[i]);
				fputs(" (want YYYY-MM-DD HH:MM, UTC)</p>", p->fp);
			}
			ids[i] = (sqlite3_int64)(t * TRACK_ID_PER_SEC);
		} else {
			/* The address, or "ADDRESS:port" with its % _ as
			 * themselves. */
			if ((bound[i] = like_escape("", val[i], ":%")) == NULL)
				goto fail;
		}
	}
	if (bad)
		goto done;
	/* Segment by segment, newest first (track_read.h). */
	fputs("<table id=\"results\"><tr><th>time (UTC)</th><th>client</th>"
	    "<th>sender</th><th>recipients</th><th>subject</th><th>verdict</th>"
	    "<th>action</th><th>reply</th></tr>", p->fp);
	ts.val = val;
	ts.bound = bound;
	ts.ids = ids;
	ts.fp = p->fp;
	rows = track_read_each(db, sql, TRACK_RESULTS_MAX, search_bind,
	    search_row, &ts);
	fputs("</table>", p->fp);
	if (rows == TRACK_READ_NOMEM)
		goto fail;
	if (rows < 0)
		goto dberr;
	fprintf(p->fp, "<p id=\"count\">%ld message%s%s.</p>", rows,
	    rows == 1 ? "" : "s", rows == TRACK_RESULTS_MAX ?
	    " (the newest; narrow the search)" : "");
	goto done;
dberr:
	track_dberr(p->fp, db);
	goto done;
fail:
	fputs("<p class=\"err\">out of memory</p>", p->fp);
done:
	sqlite3_close(db);
	for (i = 0; i < NFIELDS; i++)
		free(bound[i]);
	free(sql);
	page_end(p);
}

static const char *const msg_cols[] = { "id", "t", "session", "client",
    "client_addr", "server", "direction", "helo", "sender", "size",
    "message_id", "subject", "verdict", "action", "score", "tls",
    "quarantine", "reply" };
#define NMSGCOLS	(sizeof(msg_cols) / sizeof(msg_cols[0]))

/* A recipient with its code and answer: q's columns i to i + 2. */
static void
rcpt_row(FILE *fp, sqlite3_stmt *q, int i)
{
	fputs("<tr><td>", fp);
	html(fp, (const char *)sqlite3_column_text(q, i));
	fprintf(fp, "</td><td>%d</td><td>", sqlite3_column_int(q, i + 1));
	html(fp, (const char *)sqlite3_column_text(q, i + 2));
	fputs("</td></tr>", fp);
}

void
page_track_msg(struct console_page *p, const struct console_req *r)
{
	char		 a[32], err[512];
	sqlite3		*db;
	sqlite3_stmt	*q = NULL;
	const char	*qid = NULL;
	size_t		 i;
	int		 rc;

	page_begin(p, r, "Message");
	if (console_arg(r, "id", a, sizeof(a)) == NULL ||
	    strspn(a, "0123456789") != strlen(a) || a[0] == '\0') {
		fputs("<p class=\"err\">No message id.</p>", p->fp);
		page_end(p);
		return;
	}
	if ((db = track_open(err, sizeof(err))) == NULL) {
		fputs("<p class=\"err\">", p->fp);
		html(p->fp, err);
		fputs("</p>", p->fp);
		page_end(p);
		return;
	}
	/* msg_cols, then the recipients and the first one. */
	rc = sqlite3_prepare_v2(db, "SELECT id, t, session, client, "
	    "client_addr, server, direction, helo, sender, size, message_id, "
	    "subject, verdict, action, score, tls, quarantine, reply, rcpts, "
	    "rcpt, rcpt_code, rcpt_reply FROM messages WHERE id = ?", -1, &q,
	    NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, strtoll(a, NULL, 10));
		rc = sqlite3_step(q);
	}
	log_info(NULL, "console user=%s action=track-view id=%s result=%s "
	    "from=%s", r->user, a, rc == SQLITE_ROW ? "ok" : rc == SQLITE_DONE ?
	    "none" : "error", r->from);
	if (rc == SQLITE_DONE)
		fputs("<p class=\"err\">No such message (kept for "
		    "track_retention only).</p>", p->fp);
	else if (rc != SQLITE_ROW)
		goto dberr;
	else {
		fputs("<table id=\"message\">", p->fp);
		for (i = 0; i < NMSGCOLS; i++) {
			fputs("<tr><th>", p->fp);
			html(p->fp, msg_cols[i]);
			fputs("</th><td>", p->fp);
			if (i == 1) {
				when(p->fp, sqlite3_column_double(q, 1));
				fputs(" UTC", p->fp);
			} else if (sqlite3_column_type(q, (int)i) == SQLITE_NULL)
				fputs("-", p->fp);
			else
				html(p->fp, (const char *)
				    sqlite3_column_text(q, (int)i));
			if (i == 16 && (qid = (const char *)
			    sqlite3_column_text(q, 16)) != NULL &&
			    quarantine_id_valid(qid))
				fprintf(p->fp, " <a href=\"/quarantine/show?"
				    "id=%s\">in the quarantine?</a>", qid);
			fputs("</td></tr>", p->fp);
		}
		fputs("</table><h2>Recipients</h2><table id=\"recipients\">"
		    "<tr><th>recipient</th><th>code</th><th>answer</th></tr>",
		    p->fp);
		if (sqlite3_column_int64(q, NMSGCOLS) > 0)
			rcpt_row(p->fp, q, NMSGCOLS + 1);
		sqlite3_finalize(q);
		q = NULL;
		if (sqlite3_prepare_v2(db, "SELECT rcpt, code, reply FROM "
		    "recipients WHERE message = ? ORDER BY n", -1, &q,
		    NULL) != SQLITE_OK)
			goto dberr;
		sqlite3_bind_int64(q, 1, strtoll(a, NULL, 10));
		while ((rc = sqlite3_step(q)) == SQLITE_ROW)
			rcpt_row(p->fp, q, 0);
		fputs("</table>", p->fp);
		if (rc != SQLITE_DONE)
			goto dberr;
	}
	goto done;
dberr:
	track_dberr(p->fp, db);
done:
	sqlite3_finalize(q);
	sqlite3_close(db);
	page_end(p);
}

/* ------------------------------------------------------------ quarantine */

/* One field of a `quarantine list` line: "ID client=A sender=S ...". */
static void
q_field(FILE *fp, const char *line, const char *key)
{
	char		 pat[32];
	const char	*v, *e;

	snprintf(pat, sizeof(pat), " %s=", key);
	if ((v = strstr(line, pat)) == NULL) {
		fputs("-", fp);
		return;
	}
	v += strlen(pat);
	/* Sender addresses have no spaces; the name is the last field. */
	e = strcmp(key, "name") == 0 ? v + strlen(v) : v + strcspn(v, " ");
	html_sporkd(fp, v, (size_t)(e - v));
}

void
page_quarantine(struct console_page *p, const struct console_req *r)
{
	char	*out, *line, *save = NULL, id[64];
	size_t	 len;
	int	 n = 0;

	page_begin(p, r, "Quarantine");
	if (ctl_ask("quarantine list", &out, &len) == -1) {
		fputs("<p class=\"err\">sporkd does not answer: ", p->fp);
		html(p->fp, strerror(errno));
		fputs("</p>", p->fp);
		page_end(p);
		return;
	}
	if (strncmp(out, "ok", 2) != 0) {
		fputs("<p class=\"err\">", p->fp);
		html(p->fp, out);
		fputs("</p>", p->fp);
		free(out);
		page_end(p);
		return;
	}
	fputs("<table id=\"quarantine\"><tr><th>id</th><th>client</th>"
	    "<th>sender</th><th>verdict</th><th>name</th><th></th></tr>",
	    p->fp);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		snprintf(id, sizeof(id), "%.*s", (int)strcspn(line, " "), line);
		if (!quarantine_id_valid(id) || line[strlen(id)] != ' ')
			continue;
		n++;
		fprintf(p->fp, "<tr class=\"qmsg\" data-id=\"%s\"><td><a "
		    "href=\"/quarantine/show?id=%s\">%s</a></td><td>", id, id,
		    id);
		q_field(p->fp, line, "client");
		fputs("</td><td>", p->fp);
		q_field(p->fp, line, "sender");
		fputs("</td><td>", p->fp);
		q_field(p->fp, line, "verdict");
		fputs("</td><td>", p->fp);
		q_field(p->fp, line, "name");
		fprintf(p->fp, "</td><td><a href=\"/quarantine/release?id=%s\">"
		    "release</a> <a href=\"/quarantine/delete?id=%s\">delete"
		    "</a></td></tr>", id, id);
	}
	fprintf(p->fp, "</table><p id=\"count\">%d message%s.</p>", n,
	    n == 1 ? "" : "s");
	free(out);
	page_end(p);
}

void
page_q_show(struct console_page *p, const struct console_req *r)
{
	char	 id[64], cmd[96], *out, *hdr;
	size_t	 len;

	if (console_arg(r, "id", id, sizeof(id)) == NULL ||
	    !quarantine_id_valid(id)) {
		page_error(p, r, MHD_HTTP_BAD_REQUEST, "Not a quarantine id.");
		return;
	}
	page_begin(p, r, "Quarantined message");
	snprintf(cmd, sizeof(cmd), "quarantine show %s", id);
	if (ctl_ask(cmd, &out, &len) == -1) {
		fputs("<p class=\"err\">sporkd does not answer: ", p->fp);
		html(p->fp, strerror(errno));
		fputs("</p>", p->fp);
		page_end(p);
		return;
	}
	log_info(NULL, "console user=%s action=show id=%s result=%s from=%s",
	    r->user, id, strncmp(out, "ok", 2) == 0 ? "ok" : "error", r->from);
	if (strncmp(out, "ok\n", 3) != 0) {
		fputs("<p class=\"err\">", p->fp);
		html(p->fp, out);
		fputs("</p>", p->fp);
		free(out);
		page_end(p);
		return;
	}
	/* sporkd escaped control bytes already; html() does the rest. */
	if ((hdr = strstr(out, "\n--- headers\n")) != NULL)
		*hdr = '\0';
	fputs("<h2>Envelope</h2><pre id=\"envelope\">", p->fp);
	html_sporkd(p->fp, out + 3, (size_t)-1);
	fputs("</pre><h2>Headers</h2><pre id=\"headers\">", p->fp);
	html_sporkd(p->fp, hdr != NULL ? hdr + 13 : "", (size_t)-1);
	fputs("</pre><h2>Text</h2>", p->fp);
	free(out);
	out = NULL;
	/* The text after the header, as stored (MIME parts undecoded):
	 * escaped by sporkd, then by html(); bounded by sporkd. */
	snprintf(cmd, sizeof(cmd), "quarantine text %s", id);
	if (ctl_ask(cmd, &out, &len) == -1 || strncmp(out, "ok\n", 3) != 0) {
		fputs("<p class=\"err\">The text could not be read.</p>", p->fp);
	} else {
		fputs("<pre id=\"text\">", p->fp);
		html_sporkd(p->fp, out + 3, (size_t)-1);
		fputs("</pre>", p->fp);
	}
	fprintf(p->fp, "<p><a href=\"/quarantine/release?id=%s\">Release"
	    "</a> <a href=\"/quarantine/delete?id=%s\">Delete</a></p>", id, id);
	free(out);
	page_end(p);
}

void
page_q_confirm(struct console_page *p, const struct console_req *r,
    const char *action)
{
	char	id[64];

	if (console_arg(r, "id", id, sizeof(id)) == NULL ||
	    !quarantine_id_valid(id)) {
		page_error(p, r, MHD_HTTP_BAD_REQUEST, "Not a quarantine id.");
		return;
	}
	page_begin(p, r, strcmp(action, "release") == 0 ?
	    "Release a message" : "Delete a message");
	fprintf(p->fp, "<p>%s quarantined message <b>%s</b>%s?</p>"
	    "<form method=\"post\" action=\"/quarantine/%s\">"
	    "<input type=\"hidden\" name=\"id\" value=\"%s\">",
	    strcmp(action, "release") == 0 ? "Release" : "Delete for good",
	    id, strcmp(action, "release") == 0 ? " to its original server, "
	    "from its original client's address" : "", action, id);
	csrf_field(p->fp, r);
	fprintf(p->fp, "<button type=\"submit\" id=\"confirm\"%s>%s</button> "
	    "<a href=\"/quarantine\">Cancel</a></form>",
	    strcmp(action, "delete") == 0 ? " class=\"danger\"" : "",
	    strcmp(action, "release") == 0 ? "Release" : "Delete");
	page_end(p);
}

void
page_q_do(struct console_page *p, const struct console_req *r,
    const char *action)
{
	char	 id[64], cmd[128], *out;
	size_t	 len;
	int	 ok;

	if (console_arg(r, "id", id, sizeof(id)) == NULL ||
	    !quarantine_id_valid(id)) {
		page_error(p, r, MHD_HTTP_BAD_REQUEST, "Not a quarantine id.");
		return;
	}
	snprintf(cmd, sizeof(cmd), "quarantine %s %s", action, id);
	if (ctl_ask(cmd, &out, &len) == -1) {
		log_warn(NULL, "console user=%s action=%s id=%s result=error "
		    "error=\"%s\" from=%s", r->user, action, id,
		    strerror(errno), r->from);
		page_error(p, r, MHD_HTTP_BAD_GATEWAY, "sporkd does not "
		    "answer.");
		return;
	}
	out[strcspn(out, "\n")] = '\0';
	ok = strncmp(out, "ok", 2) == 0;
	log_info(NULL, "console user=%s action=%s id=%s result=%s%s%s%s "
	    "from=%s", r->user, action, id, ok ? "ok" : "error",
	    ok ? "" : " error=\"", ok ? "" : out, ok ? "" : "\"", r->from);
	page_begin(p, r, ok ? "Done" : "Refused");
	fprintf(p->fp, "<p class=\"%s\" id=\"result\">", ok ? "ok" : "err");
	html(p->fp, out);
	fputs("</p><p><a href=\"/quarantine\">Back to the quarantine</a></p>",
	    p->fp);
	if (!ok)
		p->status = MHD_HTTP_BAD_GATEWAY;
	free(out);
	page_end(p);
}
