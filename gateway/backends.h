/*
 * backends: what the gateway knows about each Ollama server, kept fresh by a
 * discovery thread that polls /api/version, /api/tags and /api/ps (never a
 * route that generates or loads a model).
 *
 * Ownership and threads: one struct backends per configuration snapshot,
 * created by main before the workers start. The discovery thread is the only
 * writer; workers read through backends_* calls that take a short read lock
 * and copy out what they need, so no pointer into the table escapes the lock.
 * A request never waits for discovery: it routes on the last known state.
 */
#ifndef GATEWAY_BACKENDS_H
#define GATEWAY_BACKENDS_H

#include "buf.h"
#include "config.h"

#include <stdbool.h>

struct backends;

/* Build the table for cfg (borrowed; it must outlive the table). */
struct backends *backends_new(const struct cfg *cfg);
/* Poll every backend once, synchronously (used at start, before serving). */
void backends_poll_all(struct backends *b);
/* Start/stop the discovery thread. */
int backends_start(struct backends *b);
void backends_stop(struct backends *b);
void backends_free(struct backends *b);

/* Index of the first backend that is up and has model (Ollama name rules),
 * or -1. *any_up tells whether any backend was up at all. */
int backends_pick(struct backends *b, const char *model, bool *any_up);
bool backends_any_up(struct backends *b);

/* Tell discovery about a request that failed to connect, so that a dead
 * backend is noticed before its next poll. */
void backends_report_failure(struct backends *b, int idx);

/* Call fn for every distinct model name (as Ollama lists it) on up backends,
 * under the read lock: fn must not call back into backends. */
void backends_each_model(struct backends *b, void (*fn)(void *ud, const char *name, long modified),
                         void *ud);

#endif
