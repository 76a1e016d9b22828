/*
 * exposition: the text GET /metrics answers (Prometheus' text format 0.0.4):
 * the sums of every worker's counters (metrics.h), each backend's state as
 * the snapshot in force knows it, reloads, build information and a few
 * figures about the process. README "Metrics" lists every series.
 *
 * Called on the metrics listener's thread (metrics_listener.h); it takes no
 * lock a request takes, except for a moment the backend table's (to copy
 * each backend's figures), as a request does.
 */
#ifndef GATEWAY_EXPOSITION_H
#define GATEWAY_EXPOSITION_H

#include "buf.h"

struct metrics;

/* Append the whole exposition to out. 0, or -1 (out's ceiling or memory). */
int exposition_write(const struct metrics *m, unsigned nworkers, struct buf *out);

#endif
