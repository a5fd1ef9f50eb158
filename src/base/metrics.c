/* SPDX-License-Identifier: MIT */
/*
 * The metrics registry (metrics.h): fixed-size families of series kept
 * in static tables, so that counting never allocates and a flood of new
 * label values can cost at most METRICS_SERIES_MAX series a family.
 * Written out in the Prometheus text exposition format 0.0.4. It trusts
 * its callers' names and escaped labels; it never parses anything.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"

#define METRICS_COLLECTORS_MAX	32

struct metric_series {
	char			 labels[METRICS_LABELS_MAX];
	double			 value;		/* counter, gauge; histogram sum */
	unsigned long long	 count;		/* histogram */
	unsigned long long	 bucket[METRICS_BUCKETS_MAX];
};

struct metric_family {
	const char		*name;
	const char		*help;
	enum metric_type	 type;
	double			 bounds[METRICS_BUCKETS_MAX];
	int			 nbounds;
	struct metric_series	 s[METRICS_SERIES_MAX];
	int			 n;
};

static struct metric_family	 metrics_fam[METRICS_FAMILIES_MAX];
static int			 metrics_nfam;
static unsigned long long	 metrics_dropped;
static struct {
	metrics_collect_cb	*cb;
	void			*arg;
} metrics_coll[METRICS_COLLECTORS_MAX];
static int			 metrics_ncoll;

struct metric_family *
metrics_family(const char *name, enum metric_type type, const char *help,
    const double *buckets, int nbuckets)
{
	struct metric_family	*f;
	int			 i;

	for (i = 0; i < metrics_nfam; i++)
		if (strcmp(metrics_fam[i].name, name) == 0)
			return &metrics_fam[i];
	if (metrics_nfam == METRICS_FAMILIES_MAX || nbuckets >
	    METRICS_BUCKETS_MAX)
		fatal("metrics: family %s does not fit", name);
	f = &metrics_fam[metrics_nfam++];
	f->name = name;
	f->help = help;
	f->type = type;
	for (i = 0; type == METRIC_HISTOGRAM && i < nbuckets; i++)
		f->bounds[i] = buckets[i];
	f->nbounds = type == METRIC_HISTOGRAM ? nbuckets : 0;
	return f;
}

static struct metric_series *
series(struct metric_family *f, const char *labels)
{
	int	i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->s[i].labels, labels) == 0)
			return &f->s[i];
	if (f->n == METRICS_SERIES_MAX ||
	    strlen(labels) >= METRICS_LABELS_MAX) {
		metrics_dropped++;
		return NULL;
	}
	snprintf(f->s[f->n].labels, METRICS_LABELS_MAX, "%s", labels);
	return &f->s[f->n++];
}

void
metrics_add(struct metric_family *f, const char *labels, double v)
{
	struct metric_series	*s;

	if ((s = series(f, labels)) != NULL)
		s->value += v;
}

void
metrics_set(struct metric_family *f, const char *labels, double v)
{
	struct metric_series	*s;

	if ((s = series(f, labels)) != NULL)
		s->value = v;
}

void
metrics_observe(struct metric_family *f, const char *labels, double v)
{
	struct metric_series	*s;
	int			 i;

	if ((s = series(f, labels)) == NULL)
		return;
	for (i = 0; i < f->nbounds; i++)
		if (v <= f->bounds[i])
			s->bucket[i]++;
	s->count++;
	s->value += v;
}

void
metrics_label_value(const char *in, char *out, size_t len)
{
	size_t	o = 0;

	for (; *in != '\0' && o + 3 < len; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else
			out[o++] = *in;
	}
	out[o] = '\0';
}

void
metrics_collector(metrics_collect_cb *cb, void *arg)
{
	if (metrics_ncoll == METRICS_COLLECTORS_MAX)
		fatal("metrics: too many collectors");
	metrics_coll[metrics_ncoll].cb = cb;
	metrics_coll[metrics_ncoll++].arg = arg;
}

/* A number as the format wants it: integers without a fraction. */
static int
put_value(struct buf *b, double v)
{
	if (isinf(v))
		return buf_printf(b, "%s\n", v > 0 ? "+Inf" : "-Inf");
	if (isnan(v))
		return buf_printf(b, "NaN\n");
	if (v == floor(v) && fabs(v) < 1e15)
		return buf_printf(b, "%.0f\n", v);
	return buf_printf(b, "%.6g\n", v);
}

static int
write_histogram(struct buf *b, const struct metric_family *f,
    const struct metric_series *s)
{
	const char	*sep = s->labels[0] != '\0' ? "," : "";
	int		 i;

	for (i = 0; i < f->nbounds; i++)
		if (buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name,
		    s->labels, sep, f->bounds[i], s->bucket[i]) == -1)
			return -1;
	if (buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name,
	    s->labels, sep, s->count) == -1 ||
	    buf_printf(b, "%s_sum%s%s%s ", f->name, s->labels[0] ? "{" : "",
	    s->labels, s->labels[0] ? "}" : "") == -1 ||
	    put_value(b, s->value) == -1 ||
	    buf_printf(b, "%s_count%s%s%s %llu\n", f->name,
	    s->labels[0] ? "{" : "", s->labels, s->labels[0] ? "}" : "",
	    s->count) == -1)
		return -1;
	return 0;
}

int
metrics_write(struct buf *b)
{
	static const char *const types[] = {
		[METRIC_COUNTER] = "counter", [METRIC_GAUGE] = "gauge",
		[METRIC_HISTOGRAM] = "histogram",
	};
	const struct metric_family	*f;
	const struct metric_series	*s;
	int				 i, j;

	for (i = 0; i < metrics_ncoll; i++)
		metrics_coll[i].cb(metrics_coll[i].arg);
	for (i = 0; i < metrics_nfam; i++) {
		f = &metrics_fam[i];
		if (buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name,
		    f->help, f->name, types[f->type]) == -1)
			return -1;
		for (j = 0; j < f->n; j++) {
			s = &f->s[j];
			if (f->type == METRIC_HISTOGRAM) {
				if (write_histogram(b, f, s) == -1)
					return -1;
				continue;
			}
			if (buf_printf(b, "%s%s%s%s ", f->name,
			    s->labels[0] ? "{" : "", s->labels,
			    s->labels[0] ? "}" : "") == -1 ||
			    put_value(b, s->value) == -1)
				return -1;
		}
	}
	return buf_printf(b, "# HELP spork_metrics_dropped_total Series not "
	    "kept: a family was full.\n# TYPE spork_metrics_dropped_total "
	    "counter\nspork_metrics_dropped_total %llu\n", metrics_dropped);
}
