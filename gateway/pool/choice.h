/*
 * choice: the choice of a backend for one request. Pure: it looks at a view
 * of the backends that the caller fills in (backends.c, under its lock; unit
 * tests, with made-up states) and does no locking, I/O or clock reading.
 *
 * The rules, in order (README "Routing"):
 *  1. Candidates are the backends that are up, have the model, are allowed
 *     (an alias's "backends" list; not already tried by this request).
 *  2. A candidate where the model is loaded and that has a free slot: the
 *     fewest requests in flight relative to weight (inflight/weight; ties:
 *     fewer queued relative to weight, then the lower index).
 *  3. Else, when no candidate has the model loaded but one is loading it (a
 *     request sent there started a cold load that has not answered yet):
 *     that backend, so that a model is loaded once, not everywhere at once.
 *     It is sent there when it has a free slot, else queued there.
 *  4. Else a candidate with a free slot, by the same order as in 2: a cold
 *     load, only when every backend that has the model loaded is full.
 *  5. Else queue: on the backend with the shortest queue relative to weight
 *     that has room, preferring those that have the model loaded.
 *  6. Else every candidate is full: CHOICE_FULL.
 * "A free slot": max_inflight is 0 (no limit of ours) or inflight is below
 * it. "Room in the queue": queued is below max_queue (and max_inflight > 0:
 * a backend without a limit never queues).
 */
#ifndef GATEWAY_CHOICE_H
#define GATEWAY_CHOICE_H

#include <stdbool.h>
#include <stddef.h>

struct choice_backend {
    bool up;
    bool has_model; /* the backend lists the model (one of its names) */
    bool allowed;   /* the alias admits it and this request has not tried it */
    bool loaded;    /* in /api/ps, or answered for this model recently */
    bool loading;   /* a cold load of the model is under way there */
    unsigned inflight;
    unsigned max_inflight; /* 0 = no limit */
    unsigned weight;       /* >= 1 */
    unsigned queued;
    unsigned max_queue;
};

enum choice_outcome {
    CHOICE_SEND,     /* *idx has a free slot: send now */
    CHOICE_QUEUE,    /* *idx is full: wait in its queue */
    CHOICE_FULL,     /* candidates exist, every one is full and so is its queue */
    CHOICE_NO_MODEL, /* backends are up, none allowed has the model */
    CHOICE_NONE_UP,  /* no allowed backend is up */
};

enum choice_outcome choice_pick(const struct choice_backend *v, size_t n, size_t *idx);

/* Is a before b for "fewest in flight relative to weight" (then fewer queued)? */
bool choice_less_busy(const struct choice_backend *a, const struct choice_backend *b);

const char *choice_outcome_name(enum choice_outcome o);

#endif
