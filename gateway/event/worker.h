/*
 * worker: one thread, one epoll loop. It owns, for its whole life, one
 * libmicrohttpd daemon per listen address (external-epoll mode, the listening
 * socket shared with the other workers through SO_REUSEPORT), one libcurl
 * multi handle driven by curl_multi_socket_action (curl_glue.h), and every
 * connection that arrives on its daemons. Nothing a worker owns is touched by
 * another thread, so a request lives and dies on one thread.
 *
 * The loop knows nothing of HTTP requests or dialects: the layer above hands
 * it a table of hooks (struct worker_hooks) and embeds the loop's small
 * structures in its own objects:
 *  - struct worker_watch: an fd in the loop's epoll set with a callback (a
 *    suspended connection's socket watched for a hang-up, EVENTLOOP.md P3);
 *  - struct worker_task: cross-library work queued by a callback and run by
 *    the loop between curl_multi_socket_action and MHD_run (P4/P5): a curl
 *    or MHD callback only sets flags and calls worker_defer();
 *  - struct worker_entry: a live object (a request) that the loop visits
 *    every tick (timeouts, keep-alives) and at shutdown, and whose count ends
 *    a drain.
 * The main thread talks to a worker only through worker_stop(), which writes
 * to the worker's eventfd; another worker only by granting a backend slot to
 * a request queued here (backends.h: route_inbox), which writes to it too.
 */
#ifndef GATEWAY_WORKER_H
#define GATEWAY_WORKER_H

#include "backends.h"
#include "config.h"
#include "conntrack.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct worker;
struct curl_xfer;
struct redis_link;

/* An fd in the worker's epoll set. */
struct worker_watch {
    void (*on_event)(struct worker_watch *wt, uint32_t epoll_events);
    void *ctx; /* the owner's */
    /* -1 once its owner has unwatched it: an event for it still in this
     * turn's batch is then skipped. The owner frees it only outside the
     * event dispatch (requests are freed inside MHD_run). */
    int fd;
};

/* Work a callback queued for the loop (worker_defer). */
struct worker_task {
    void (*run)(struct worker_task *t);
    struct worker_task *prev, *next;
    bool queued;
};

/* A live object the loop ticks and, at the end, shuts down. */
struct worker_entry {
    struct worker_entry *prev, *next;
};

/* What the layer above does at the loop's moments. All run on the worker's
 * thread, outside any library callback. */
struct worker_hooks {
    /* Every WORKER_TICK_MS: check e's timeouts. */
    void (*tick)(struct worker_entry *e, int64_t now);
    /* The grace period is over: end e now (its connection is resumed). */
    void (*shutdown)(struct worker_entry *e);
    /* The eventfd fired: take what other threads handed over (w->inbox). */
    void (*wake)(struct worker *w);
    /* libmicrohttpd's access and completion callbacks (cls: the worker). */
    MHD_AccessHandlerCallback access;
    MHD_RequestCompletedCallback completed;
};

#define WORKER_TICK_MS 250 /* timeouts and keep-alives are checked this often */

/* State shared by every worker: read-only while they run, except the flags.
 * What reloads (configuration, keys, backends) is in the published snapshot
 * (snapshot.h); cfg here is the one the process started with, for what only
 * a restart changes: listen addresses, workers, connection limits. */
struct gateway {
    struct cfg *cfg;                  /* a reference: the start-up configuration */
    const struct worker_hooks *hooks; /* the layer above's */
    void *app;                        /* the layer above's process-wide state */
    atomic_bool stopping;             /* SIGTERM/SIGINT seen: drain, then exit */
    unsigned grace_s;                 /* how long streams may take to finish after SIGTERM */
    unsigned nworkers;
    struct peers *peers; /* borrowed: connections per client address (conntrack.h), or NULL */
};

struct worker {
    int id;
    struct gateway *gw; /* borrowed */
    pthread_t thread;
    int epfd;
    struct worker_watch event; /* eventfd: a message from main, or a slot granted */
    struct route_inbox inbox;  /* slots on backends granted to requests queued here */
    bool inbox_live;
    struct MHD_Daemon **daemons;
    struct worker_watch *daemon_watch;
    /* Per daemon: until when (monotonic ms) a zero MHD timeout is not taken
     * at its word, because the last run only found TLS handshakes waiting
     * for their clients (mhd_glue.h, run_mhd() in worker.c); 0 = none. */
    int64_t *daemon_calm;
    size_t ndaemons;
    /* Counted by the TLS connections' reads and writes (mhd_glue.c), worker
     * thread only: reads that found nothing mid-handshake, and I/O that
     * moved bytes. */
    uint64_t tls_stalls, tls_moves;
    CURLM *multi;
    CURL *easy_pool[64]; /* finished easy handles, reset, ready for reuse */
    size_t neasy;
    size_t ntransfers;         /* added to multi and not yet released */
    int64_t curl_deadline;     /* monotonic ms; -1 = no curl timer */
    struct curl_sock **csocks; /* curl's sockets by fd number (curl_glue.c) */
    size_t ncsocks;
    struct curl_xfer *xfers; /* transfers in flight on multi (curl_glue.h) */
    bool curl_lost;          /* multi failed and is not replaced yet (curl_glue.h) */
    struct snapshot *snap;   /* a reference to the snapshot in force, as of snap_gen */
    unsigned snap_gen;
    struct worker_entry *live; /* every live entry (doubly linked) */
    struct conn *conns;        /* every client connection and its deadline (conntrack.h) */
    size_t nlive;
    struct worker_task *tasks; /* deferred work */
    int64_t next_tick;
    bool mhd_due; /* MHD has work: its fd was ready or a connection was resumed */
    bool draining;
    int64_t drain_deadline;
    /* owned: the connection for shared limits (redis_glue.h) */
    struct redis_link *redis;
};

/* The snapshot in force, as this worker last saw it (refreshed when a reload
 * published a new one). Borrowed: take a reference to keep it. */
struct snapshot *worker_snapshot(struct worker *w);

/* Create worker id: bind its listen sockets and daemons (errors are logged).
 * Returns 0, or -1 with everything it made undone. */
int worker_init(struct worker *w, int id, struct gateway *gw);
int worker_start(struct worker *w);
/* One turn of the loop (epoll_wait, then everything it found due), in the
 * calling thread, for a worker that was initialised but not started: how
 * tests/fuzz/fuzz_http.c drives the real handler without a thread of its
 * own. -1: epoll failed. */
int worker_turn(struct worker *w);
/* Ask the worker to drain and stop (any thread); then join. */
void worker_stop(struct worker *w);
void worker_join(struct worker *w);
void worker_free(struct worker *w);

/* Queue t for the loop's deferred step. */
void worker_defer(struct worker *w, struct worker_task *t);
/* Forget a queued task (its owner is going away). */
void worker_cancel(struct worker *w, struct worker_task *t);

void worker_enter(struct worker *w, struct worker_entry *e);
void worker_leave(struct worker *w, struct worker_entry *e);

/* Watch fd for events (EPOLLRDHUP for a hang-up). 0, or -1. */
int worker_watch(struct worker *w, struct worker_watch *wt, int fd, uint32_t events);
void worker_unwatch(struct worker *w, struct worker_watch *wt);
/* Change the events a watched fd is watched for. 0, or -1. */
int worker_rewatch(struct worker *w, struct worker_watch *wt, uint32_t events);

/* A connection was resumed: MHD must run this turn. */
void worker_mhd_due(struct worker *w);

#endif
