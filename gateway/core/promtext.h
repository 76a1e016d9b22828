/*
 * promtext: Prometheus' text exposition format, version 0.0.4, written into a
 * buf: a family's "# HELP" and "# TYPE" lines, samples with escaped label
 * values, and histograms as cumulative _bucket{le="..."} lines, _sum and
 * _count. The format's rules followed here: label values escape \ " and
 * newline; HELP text escapes \ and newline; a histogram's buckets are
 * cumulative, end with le="+Inf", and its _count equals that last bucket.
 *
 * Pure functions over the caller's buf; any thread. Every function returns 0,
 * or < 0 when the buf refused an append (its ceiling or memory).
 */
#ifndef GATEWAY_PROMTEXT_H
#define GATEWAY_PROMTEXT_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

/* One label: name="value". The value is escaped as it is written. */
struct prom_label {
    const char *name;
    const char *value;
};

/* "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram). */
int prom_family(struct buf *b, const char *name, const char *type, const char *help);

/* name{labels} value, for a whole number (counters, most gauges). */
int prom_sample(struct buf *b, const char *name, const struct prom_label *l, size_t nl,
                uint64_t value);

/* name{labels} value, for a value in millionths written exactly as a decimal:
 * 1500000 → "1.5", 250 → "0.00025" (seconds kept in microseconds). */
int prom_sample_micro(struct buf *b, const char *name, const struct prom_label *l, size_t nl,
                      uint64_t micro);

/* name{labels} value, for any double ("%.17g"; NaN and infinities as the
 * format spells them). */
int prom_sample_double(struct buf *b, const char *name, const struct prom_label *l, size_t nl,
                       double value);

/*
 * A histogram's lines for one label set: name_bucket{labels,le="bound"} for
 * each of the nbounds upper bounds (in millionths, ascending) and "+Inf",
 * cumulative; then name_sum (sum_micro, in millionths) and name_count.
 * counts has nbounds + 1 entries, NOT cumulative: counts[i] observations fell
 * in (bounds[i-1], bounds[i]], counts[nbounds] above the last bound.
 */
int prom_histogram(struct buf *b, const char *name, const struct prom_label *l, size_t nl,
                   const uint64_t *bounds_micro, size_t nbounds, const uint64_t *counts,
                   uint64_t sum_micro);

/* A label value as the format escapes it (\\, \", \n), appended to b. */
int prom_escape_value(struct buf *b, const char *s);

/* millionths as the shortest exact decimal ("0.005", "2.5", "300"), into b. */
int prom_put_micro(struct buf *b, uint64_t micro);

#endif
