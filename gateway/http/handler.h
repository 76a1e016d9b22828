/*
 * handler: the HTTP side of a worker: libmicrohttpd's access and completion
 * callbacks. Each request is matched against the route table (routes.h) on
 * its first callback, authenticated before its body is read, then handed to
 * the relay engine (a route with a dialect) or to a local handler; when it
 * completes, its key's limits are settled and the access log line written.
 * The loop's hooks (worker.h) come from here too. Worker thread only.
 */
#ifndef GATEWAY_HANDLER_H
#define GATEWAY_HANDLER_H

#include "worker.h"

#include <stdint.h>

struct authguard;
struct metrics;

/* The HTTP layer's process-wide state (struct gateway's `app`). */
struct http_shared {
    struct authguard *authguard; /* failed authentications per client address */
    int64_t started_ms;          /* wall clock, for /v1/models "created" */
    struct metrics *metrics;     /* per-worker counters (metrics.h), or NULL */
};

extern const struct worker_hooks handler_hooks;

#endif
