/*
 * redis_sync: a blocking connection to the "shared" Redis (sharedcfg.h),
 * for the threads that serve no request and may wait a bounded time: the
 * main thread telling key states (keystate.h) and the metrics listener's
 * thread reading the fleet's usage totals (http/fleet.h). Workers use their
 * own asynchronous links (event/redis_glue.h) and never this.
 *
 * Connecting, AUTH and SELECT are done here; every read and write after it
 * is bounded by the same timeout. The caller frees the context.
 */
#ifndef GATEWAY_REDIS_SYNC_H
#define GATEWAY_REDIS_SYNC_H

#include "config.h"

#include <hiredis/hiredis.h>

/* A ready connection to c's server, or NULL with why[] saying what failed
 * (never a password). timeout_ms bounds the connect and each command. */
redisContext *redis_sync_open(const struct cfg_shared *c, unsigned timeout_ms, char *why,
                              size_t whysz);

#endif
