/*
 * metrics: what the gateway counts, per worker and without locks, and the
 * sums the metrics listener (metrics_listener.h) reads at scrape time.
 *
 * Every request is counted at one place, when it completes
 * (metrics_account, beside the access-log line): its route, model and status,
 * its duration and time to first token, its tokens by model and key, the
 * backends it failed over from, whether the client left while a transfer ran,
 * how authentication went, and, for a status of 400 or more, a line in the
 * worker's ring of recent errors.
 *
 * Who writes and who reads:
 *  - struct metrics_worker: written only by its worker thread (counters as
 *    relaxed atomic stores, tables through countertab.h, errors through
 *    seqring.h); read by the metrics listener's thread with atomic loads.
 *    One per worker, allocated before the workers start, freed after they
 *    and the listener have stopped; never moved.
 *  - struct metrics' reload counters: written only by the main thread
 *    (reloads happen there), read by the listener's thread.
 *  - Everything else in struct metrics is set before any thread starts.
 * Summing (metrics_sum) runs on the reader's thread; it merges what each
 * worker has published so far into tables the reader owns.
 *
 * Labels stay bounded: route is one of the route table's paths or "other";
 * model is the name a client asked for only when it resolved (an alias, or a
 * model some backend lists; admin routes never), else ""; key is the key's
 * name from the keys file ("" without one); status is an HTTP status. Each
 * worker keeps at most METRICS_SERIES label sets per table; past
 * METRICS_FOLD_AT new ones are counted with model and key "" instead.
 */
#ifndef GATEWAY_METRICS_H
#define GATEWAY_METRICS_H

#include "countertab.h"
#include "seqring.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct request;
struct worker;

#define METRICS_SERIES 4096
/* bytes of a model label; a longer name is counted under "" */
#define METRICS_MODEL_MAX 256
#define METRICS_FOLD_AT (METRICS_SERIES - 256)
#define METRICS_ERRORS 32 /* recent errors kept per worker */

/* Histogram bucket upper bounds, in microseconds. */
#define METRICS_DURATION_BUCKETS 15
#define METRICS_TTFT_BUCKETS 14
extern const uint64_t metrics_duration_bounds[METRICS_DURATION_BUCKETS];
extern const uint64_t metrics_ttft_bounds[METRICS_TTFT_BUCKETS];

/* Counters indexes of the tables' values. */
enum { MV_REQUESTS = 0 };                                               /* requests */
enum { MV_USE_REQUESTS = 0, MV_USE_PROMPT = 1, MV_USE_COMPLETION = 2 }; /* usage */
enum { ML_ROUTE = 0, ML_MODEL = 1, ML_STATUS = 2 };                     /* requests' labels */
enum { ML_USE_MODEL = 0, ML_USE_KEY = 1, ML_USE_KEY_ID = 2 };           /* usage's labels */

/* A histogram's counts per route: routes x (nbounds + 1) buckets (not
 * cumulative), and a sum per route in microseconds. */
struct metrics_histo {
    size_t nbounds;
    atomic_uint_least64_t *bucket; /* owned */
    atomic_uint_least64_t *sum;    /* owned */
};

struct metrics_worker {
    atomic_uint_least64_t started, finished; /* requests; in flight = started - finished */
    atomic_uint_least64_t upstream_cancels;  /* transfers cut because the client left */
    atomic_uint_least64_t auth_failures;     /* 401: no key, or a key that did not check out */
    atomic_uint_least64_t guard_refusals;    /* 429: the address was blocked */
    atomic_uint_least64_t guard_blocks;      /* blocks started */
    atomic_uint_least64_t shared_fallbacks;  /* admissions judged locally: Redis away */
    atomic_uint_least64_t prompt_tokens, completion_tokens; /* totals, for the status page */
    struct ctab requests;                                   /* route, model, status -> requests */
    struct ctab usage;     /* model, key name, key id -> requests, prompt, completion tokens */
    struct ctab failovers; /* backend -> requests that moved on after it failed */
    struct metrics_histo duration, ttft;
    struct seqring errors; /* struct metrics_error records */
};

/* A recent error, as the ring keeps it (SEQRING_RECORD bytes at most). */
struct metrics_error {
    int64_t ts_ms;     /* wall clock */
    uint16_t route;    /* routes_metric_index */
    uint16_t status;   /* HTTP status */
    char message[180]; /* the error's message, cut; never a secret or prompt text */
};

struct metrics {
    unsigned nworkers;
    size_t nroutes;
    struct metrics_worker **w; /* nworkers, each cache-line aligned */
    int64_t started_s;         /* wall clock at start */
    /* the main thread's */
    atomic_uint_least64_t reloads_ok, reloads_failed;           /* SIGHUP */
    atomic_uint_least64_t keys_reloads_ok, keys_reloads_failed; /* the keys file changed */
    atomic_int_least64_t last_reload_s;                         /* wall clock, 0 = none */
    atomic_bool last_reload_ok;
};

/* The counters for nworkers workers; NULL on OOM. */
struct metrics *metrics_new(unsigned nworkers, int64_t started_s);
void metrics_free(struct metrics *m);

/* Worker thread: a request began (the access handler made it). */
void metrics_started(struct worker *w);
/* Worker thread: r is over; toe as MHD said. The one place a request is
 * counted. */
void metrics_account(const struct request *r, enum MHD_RequestTerminationCode toe);

/* Main thread: a reload of the configuration (keys_only false: SIGHUP) or of
 * the keys file alone, and whether it was put in force. */
void metrics_reloaded(struct metrics *m, bool keys_only, bool ok);

/* The sums over every worker, made on the reader's thread; it owns the
 * tables (free them with metrics_sums_free). */
struct metrics_sums {
    uint64_t started, finished, upstream_cancels, auth_failures, guard_refusals, guard_blocks;
    uint64_t shared_fallbacks;
    uint64_t prompt_tokens, completion_tokens;
    struct ctab requests, usage, failovers; /* the same labels as the workers' */
    size_t nroutes;
    uint64_t *duration, *duration_sum; /* nroutes x (bounds + 1), nroutes */
    uint64_t *ttft, *ttft_sum;
};
/* Sum what every worker has published. 0, or -1 on OOM (nothing to free). */
int metrics_sum(const struct metrics *m, struct metrics_sums *s);
void metrics_sums_free(struct metrics_sums *s);

/* Only the running totals (requests finished, tokens), cheap enough for a
 * sample a second. */
void metrics_totals(const struct metrics *m, uint64_t *requests, uint64_t *tokens);

/* The newest recent errors of every worker, newest first: up to max into
 * out. Returns how many. */
size_t metrics_recent_errors(const struct metrics *m, struct metrics_error *out, size_t max);

#endif
