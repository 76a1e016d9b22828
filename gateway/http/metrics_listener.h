/*
 * metrics_listener: the monitoring port (metrics.listen): GET /metrics
 * (exposition.h), GET /status (a live page) and GET /status.json (what the
 * page shows, status.h); anything else 404. It is not behind API keys: it
 * listens on an address of its own, loopback by default, and says only how
 * the gateway is doing (no secret, no prompt text).
 *
 * Threads: one of its own, never a worker's. It runs a libmicrohttpd daemon
 * in external-epoll mode and, once a second, samples the request and token
 * totals into the status page's history (status.h), so everything it
 * serves is built on that thread and the request path does nothing for it
 * but count (metrics.h). Started and stopped by the main thread; only a
 * restart changes its address.
 */
#ifndef GATEWAY_METRICS_LISTENER_H
#define GATEWAY_METRICS_LISTENER_H

#include "netaddr.h"

struct metrics;
struct metrics_listener;

/* Bind addr and start the thread; the listener reads m (which must outlive
 * it). NULL, with the reason logged, when it cannot. */
struct metrics_listener *metrics_listener_start(const struct netaddr *addr, struct metrics *m,
                                                unsigned nworkers);
/* Stop the thread, close the port, free (NULL is fine). */
void metrics_listener_stop(struct metrics_listener *l);

#endif
