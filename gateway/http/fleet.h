/*
 * fleet: each key's usage totals for the whole fleet of replicas sharing one
 * Redis ("shared"): requests, prompt and completion tokens, which every
 * replica adds to the hash "<prefix>use:<key id>" when a request with the
 * key ends (ratelimit_shared.h, in the same script call as its token
 * charge). The metrics listener shows them beside its own counts
 * (ollama_gateway_fleet_* in /metrics, the keys' fleet columns in
 * /status.json).
 *
 * Threads: the metrics listener's only, never a worker: it reads with a
 * blocking connection of its own (pool/redis_sync.h), one pipelined HMGET
 * per key, bounded by shared.timeout_ms for the connect and each read, so a
 * Redis that is away delays a scrape by that much at most and the totals
 * are left out of it.
 */
#ifndef GATEWAY_FLEET_H
#define GATEWAY_FLEET_H

#include "config.h"
#include "keys.h"

#include <stdint.h>

struct fleet_use {
    uint64_t requests, prompt, completion;
};

/* The fleet's totals of each key of keys into out[i] (keys->n entries). 0,
 * or -1 when cfg has no "shared" or Redis could not be read. */
int fleet_read(const struct cfg *cfg, const struct keyring *keys, struct fleet_use *out);

#endif
