/*
 * snapshot: everything a request relies on, frozen when it starts: the
 * configuration, the API keys, the backend table (with its discovery state)
 * and the upstream targets built from it.
 *
 * A reload (SIGHUP for everything, inotify for the keys file) builds a new
 * snapshot on the main thread and publishes it; requests already running
 * keep the one they started with until they finish (DESIGN.md "Signals and
 * lifecycle"). A reload that leaves the backends as they were shares the old
 * backend table, so discovery state, and later queues, carry over.
 *
 * Ownership and threads: a snapshot is immutable and reference-counted
 * (atomic); any thread may take or drop a reference, and the last drop frees
 * it with what it holds. snapshot_publish() and snapshot_acquire() are
 * thread-safe; snapshot_generation() is a lock-free check that lets a worker
 * keep its own reference and only re-acquire when something was published.
 */
#ifndef GATEWAY_SNAPSHOT_H
#define GATEWAY_SNAPSHOT_H

#include "backends.h"
#include "config.h"
#include "keys.h"

#include <stdatomic.h>

struct target;

struct snapshot {
    atomic_uint refs;
    struct cfg *cfg;           /* a reference */
    struct keyring *keys;      /* a reference; empty with auth "none" */
    struct backends *backends; /* a reference */
    struct target *targets;    /* owned: one per cfg->backends entry */
};

/* Build a snapshot from references the caller hands over (all three, also on
 * failure). NULL on OOM. */
struct snapshot *snapshot_new(struct cfg *cfg, struct keyring *keys, struct backends *backends);
struct snapshot *snapshot_ref(struct snapshot *s);
void snapshot_unref(struct snapshot *s);

/* Make s (the caller's reference is taken over) the one in force; NULL at
 * exit. The previous one loses the reference publish held. */
void snapshot_publish(struct snapshot *s);
/* The snapshot in force, with a new reference; NULL before the first publish. */
struct snapshot *snapshot_acquire(void);
/* Bumped by every publish. */
unsigned snapshot_generation(void);

#endif
