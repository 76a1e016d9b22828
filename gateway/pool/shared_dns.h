/*
 * shared_dns: the Redis host name of "shared" (sharedcfg.h) resolved again
 * while the gateway runs, so that a Redis whose address changes (a container
 * recreated, a Service that did not exist yet when the gateway started) is
 * found without a reload. The backends' discovery thread, which already
 * spends its life on network calls, refreshes it once per round
 * (discovery_interval_s); a worker reads the latest address when it
 * connects, never on a request's path.
 *
 * One entry for the process: host, port and the numeric address, under a
 * mutex (the discovery thread writes, workers read).
 */
#ifndef GATEWAY_SHARED_DNS_H
#define GATEWAY_SHARED_DNS_H

#include <stdbool.h>
#include <stddef.h>

/* Resolve the host of the configuration in force, if it names one (a
 * numeric address or a Unix socket needs nothing). Blocks on DNS: the
 * discovery thread only. */
void shared_dns_refresh(void);

/* The latest address found for host:port into out; false when there is
 * none (not resolved since the start, or another host). */
bool shared_dns_get(const char *host, unsigned port, char *out, size_t size);

/* Forget the entry (tests). */
void shared_dns_reset(void);

#endif
