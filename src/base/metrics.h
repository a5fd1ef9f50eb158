/* SPDX-License-Identifier: MIT */
#ifndef SPORK_METRICS_H
#define SPORK_METRICS_H

#include "buf.h"

/*
 * Counters, gauges and histograms in the Prometheus text format, for
 * `sporkctl metrics` and the console's /metrics. A family is declared
 * once (name, type, help; buckets for a histogram); its series are
 * found by their label text, made on first use, at most
 * METRICS_SERIES_MAX a family (past it, counted under
 * spork_metrics_dropped_total and not kept). Nothing here knows what
 * the numbers mean; each module updates its own, and a module whose
 * values are read rather than counted registers a collector that sets
 * its gauges just before each exposition.
 */

#define METRICS_FAMILIES_MAX	96
#define METRICS_SERIES_MAX	128
#define METRICS_BUCKETS_MAX	16
#define METRICS_LABELS_MAX	160

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
};

struct metric_family;

/* name: spork_..._total for counters, _seconds for times. buckets (upper
 * bounds, increasing; n of them) only for a histogram. */
struct metric_family *metrics_family(const char *name, enum metric_type,
	    const char *help, const double *buckets, int nbuckets);
/* labels: "" or the text between the braces, `verdict="virus"`;
 * label values must have been escaped with metrics_label_value(). */
void	metrics_add(struct metric_family *, const char *labels, double);
void	metrics_set(struct metric_family *, const char *labels, double);
void	metrics_observe(struct metric_family *, const char *labels, double);
/* A label value, escaped as the format wants (\\, \", \n). */
void	metrics_label_value(const char *in, char *out, size_t len);

typedef void metrics_collect_cb(void *arg);
void	metrics_collector(metrics_collect_cb *, void *arg);

/* Runs the collectors, then writes every family. */
int	metrics_write(struct buf *);

#endif
