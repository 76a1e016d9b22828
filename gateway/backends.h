/*
 * backends: what the gateway knows about each Ollama server, kept fresh by a
 * discovery thread that polls /api/version, /api/tags and /api/ps (never a
 * route that generates or loads a model).
 *
 * Ownership and threads: one struct backends per distinct set of configured
 * backends, reference-counted (snapshots that share it hold references),
 * created and stopped by the main thread. The discovery thread is the only
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

/* Build the table for cfg (it keeps a reference to cfg), holding one
 * reference of its own. */
struct backends *backends_new(struct cfg *cfg);
struct backends *backends_ref(struct backends *b);
/* The last reference frees the table; its discovery thread must have been
 * stopped by then (backends_stop), so that no worker ever joins a thread. */
void backends_unref(struct backends *b);
/* Poll every backend once, synchronously (used at start, before serving). */
void backends_poll_all(struct backends *b);
/* Start/stop the discovery thread (main thread only). */
int backends_start(struct backends *b);
void backends_stop(struct backends *b);

/* Would a table for cfg b be the same as one for cfg a: the same backends,
 * in the same order, with the same settings and polling interval? Then a
 * reload keeps the table it has (and what discovery knows). */
bool backends_same_config(const struct cfg *a, const struct cfg *b);

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
