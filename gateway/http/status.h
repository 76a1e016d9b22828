/*
 * status: the live status page of the monitoring listener: GET /status (one
 * self-contained HTML page, status_page.html, built into the binary) and
 * GET /status.json, what the page shows: each backend (up, version, models
 * loaded, in flight, queue, failovers), requests and tokens per second over
 * the last minutes, each key's use and headroom under its limits, and the
 * recent errors (time, route, status, message; never a secret or prompt
 * text).
 *
 * Threads: the metrics listener's only. It owns the history (a ring of
 * totals it samples once a second, so that the request path does nothing
 * for the charts) and builds the JSON from the workers' counters
 * (metrics.h), the snapshot in force and the keys' limiter state.
 */
#ifndef GATEWAY_STATUS_H
#define GATEWAY_STATUS_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

struct metrics;

#define STATUS_HISTORY 300 /* samples, one a second: five minutes */

struct status_history {
    struct {
        int64_t t_ms; /* monotonic */
        uint64_t requests, tokens;
    } s[STATUS_HISTORY + 1]; /* a ring: one more than the rates it gives */
    size_t n, head;          /* samples held; where the next goes */
};

/* Record the totals now (the listener calls it once a second). */
void status_sample(struct status_history *h, const struct metrics *m, int64_t now_ms);

/* The JSON of GET /status.json into out. 0, or -1 (memory). */
int status_json(const struct status_history *h, const struct metrics *m, unsigned nworkers,
                struct buf *out);

/* The Content-Security-Policy the page is served with: nothing from
 * elsewhere, no framing, and only its own inline script and style, named by
 * their SHA-256 (so an injected script or style would not run even if some
 * text ever reached the page as markup). 0, or -1 when the page has no
 * <script> or <style> element or out is too small. */
int status_page_csp(char *out, size_t size);

/* status_page.html, as built in (generated from the file by gateway/embed.cmake). */
extern const char status_page_html[];
extern const size_t status_page_html_len;

#endif
