/*
 * backends: what the gateway knows about each Ollama server, kept fresh by a
 * discovery thread that polls /api/tags and /api/ps every interval, and
 * /api/version when a backend comes up (never a route that generates or
 * loads a model), and the routing state that all workers share. Discovery
 * also asks /api/show for each model's capabilities, once per model digest
 * (a model pulled again under its name has a new digest in /api/tags, and is
 * asked again), at most SHOWS_PER_ROUND models per backend per poll, first
 * the loaded ones and those a request was routed to while they were unknown;
 * a show that fails leaves the capabilities unknown, and the model is asked
 * again at a later poll.
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
#include "choice.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

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
/* Put in force what a poll of backend idx found: up with these models (and
 * these loaded), or down (models kept from before). What discovery does
 * after each poll; tests use it to set up a table without HTTP. */
int backends_set_discovered(struct backends *b, size_t idx, bool up, const char *const *models,
                            size_t nmodels, const char *const *loaded, size_t nloaded);

/* Ollama's capabilities of a model (/api/show "capabilities"), as bits. */
enum model_cap {
    MODEL_CAP_COMPLETION = 1 << 0,
    MODEL_CAP_TOOLS = 1 << 1,
    MODEL_CAP_THINKING = 1 << 2,
    MODEL_CAP_INSERT = 1 << 3,
    MODEL_CAP_VISION = 1 << 4,
    MODEL_CAP_EMBEDDING = 1 << 5,
};
/* The capability bits of a /api/show answer: 0 and *caps set, or -1 when it
 * is not a JSON object with a "capabilities" array (an Ollama too old to
 * list them, or not Ollama). Names it does not know are left out. Pure. */
int backends_parse_caps(const char *body, size_t len, unsigned *caps);
/* Put in force what /api/show said about model (as listed) on backend idx:
 * what discovery does after a show; tests use it to set up a table without
 * HTTP. -1 when idx does not list model. */
int backends_set_caps(struct backends *b, size_t idx, const char *model, unsigned caps);

/* Whether a model on a backend can think (Ollama's "thinking" capability),
 * as far as discovery knows. */
enum backend_thinking {
    THINKING_UNKNOWN, /* not asked yet, the show failed, or it lists no capabilities */
    THINKING_YES,
    THINKING_NO,
};
/* Start/stop the discovery thread (main thread only). */
int backends_start(struct backends *b);
void backends_stop(struct backends *b);

/* Would a table for cfg b be the same as one for cfg a: the same backends,
 * in the same order, with the same URLs, headers and polling interval? Then
 * a reload keeps the table it has (with what discovery knows, the requests
 * in flight and the queues), and backends_set_limits() applies b's
 * max_inflight, max_queue and weight. */
bool backends_same_config(const struct cfg *a, const struct cfg *b);
void backends_set_limits(struct backends *b, const struct cfg *cfg);

/*
 * Routing (the rules are choice.h's). Besides what discovery knows, the table
 * keeps per backend the requests in flight, a FIFO wait queue, and per model
 * whether a cold load is under way and when it last answered. That state is
 * under one mutex per table, taken four times per request (route, begin, first answer, done).
 *
 * A request that has to wait is queued with a route_waiter embedded in it.
 * Whoever frees a slot on that backend (any worker) hands the slot to the
 * head of its queue: the waiter moves to its worker's route_inbox and the
 * worker's eventfd is written; the worker then takes its granted waiters with
 * route_inbox_take() and starts them. A waiter is in at most one list at a
 * time (a backend's queue or an inbox), always under the table's mutex and,
 * for the inbox, the inbox's own.
 */
struct route_inbox {
    pthread_mutex_t mu;
    struct route_waiter *head; /* granted, not yet taken */
    int efd;                   /* written once per grant */
};

enum waiter_state { WAITER_IDLE, WAITER_QUEUED, WAITER_GRANTED };

struct route_waiter {
    struct route_waiter *prev, *next;
    struct route_inbox *inbox; /* the owner's */
    void *owner;               /* the request */
    struct backends *table;    /* where it is queued or was granted */
    int backend;               /* the backend it waits for, or was granted */
    /* Read and written only under the table's mutex (inside backends.c):
     * another worker's thread grants the slot. The owner keeps its own
     * record of whether it waits. */
    enum waiter_state state;
    /* Set by backends_route on the owner's thread when it queues the waiter:
     * its place in the queue then, 1 = first (for the log). */
    unsigned position;
};

int route_inbox_init(struct route_inbox *in, int efd);
void route_inbox_destroy(struct route_inbox *in);
/* Detach and return the granted waiters (a list linked by next), oldest first. */
struct route_waiter *route_inbox_take(struct route_inbox *in);

/* What a request asks for. */
struct route_ask {
    const char *const *names; /* the model's names (an alias's list, or the one asked) */
    size_t nnames;
    const unsigned *only; /* allowed backend indexes (an alias's "backends"), NULL = all */
    size_t nonly;
    const int *tried; /* backends this request already tried */
    size_t ntried;
};

/* The route chosen: CHOICE_SEND (the slot is taken: send to *idx the name
 * names[*name]), CHOICE_QUEUE (w is queued on *idx; the grant comes through
 * w->inbox), or the reason there is none. With either of the first two,
 * *thinking (when not NULL) says whether that model there can think. */
enum choice_outcome backends_route(struct backends *b, const struct route_ask *ask,
                                   struct route_waiter *w, int64_t now_ms, int *idx, size_t *name,
                                   enum backend_thinking *thinking);
/* A granted waiter: which of ask's names to send to w->backend, and
 * (thinking, when not NULL) whether it can think there. -1 if the backend no
 * longer lists any (the caller gives the slot back). */
long backends_name_on(struct backends *b, int idx, const struct route_ask *ask,
                      enum backend_thinking *thinking);
/* The owner took w from its inbox (route_inbox_take) and uses the granted
 * slot: w is idle again, the slot is the owner's until backends_done. */
void backends_taken(struct backends *b, struct route_waiter *w);
/* Leave the queue (client gone, timeout, re-route), or give back a slot that
 * was granted but not used. Idle waiters: nothing to do. */
void backends_leave(struct backends *b, struct route_waiter *w);
/* The request is being sent to idx for model (as sent). Returns whether it
 * starts a cold load there (the model is not in memory there): pass that to
 * backends_answered and backends_done. */
bool backends_begin(struct backends *b, int idx, const char *model, int64_t now_ms);
/* A request sent to idx asking for model (as sent) is over: give back its
 * slot (the first waiter in the queue gets it). answered: it received a
 * first answer line, so the model is loaded there now. */
void backends_done(struct backends *b, int idx, const char *model, bool cold, bool answered,
                   int64_t now_ms);
/* The first answer line for model from idx: a cold load there is over. */
void backends_answered(struct backends *b, int idx, const char *model, bool cold, int64_t now_ms);

bool backends_any_up(struct backends *b);
bool backends_is_up(struct backends *b, int idx);

/* Per-backend figures for metrics. */
struct backend_stats {
    bool up;
    unsigned inflight, queued;
    size_t nmodels, nloaded;
    char version[32]; /* Ollama's /api/version, "" until known */
};
size_t backends_count(const struct backends *b);
void backends_stats(struct backends *b, int idx, struct backend_stats *st);

/* Call fn with the name of each model loaded on backend idx (/api/ps), under
 * the read lock (fn must not call back into backends). */
void backends_each_loaded(struct backends *b, int idx, void (*fn)(void *ud, const char *name),
                          void *ud);

/* Tell discovery about a request that failed to connect, so that a dead
 * backend is noticed before its next poll. */
void backends_report_failure(struct backends *b, int idx);
/* A request reached idx and got an answer: reset its failure count. */
void backends_report_success(struct backends *b, int idx);

/* A model as discovery found it on a backend. Borrowed, valid during the
 * callback only. */
struct backend_model {
    const char *name; /* as Ollama lists it */
    long modified;    /* Unix time, 0 if unknown */
    const char *json; /* the whole entry Ollama sent (one line), or NULL */
};

/* Call fn for every distinct model on up backends, once however many have
 * it: from /api/tags, or from /api/ps (loaded: the models in memory). Under
 * the read lock: fn must not call back into backends. */
void backends_each_model(struct backends *b, bool loaded,
                         void (*fn)(void *ud, const struct backend_model *m), void *ud);

/* The lowest Ollama version an up backend reported (what every backend
 * supports), into out. 0, or -1 when none is known. */
int backends_version(struct backends *b, char *out, size_t n);

#endif
