/*
 * worker: one thread, one epoll loop. It owns, for its whole life, one
 * libmicrohttpd daemon per listen address (external-epoll mode, the listening
 * socket shared with the other workers through SO_REUSEPORT), one libcurl
 * multi handle driven by curl_multi_socket_action, and every request that
 * arrives on its connections. Nothing a worker owns is touched by another
 * thread, so the request path takes no locks (backends_* lookups aside).
 *
 * Cross-library rule (EVENTLOOP.md P4/P5): a libcurl callback or an MHD
 * callback only sets flags and queues the request with worker_defer(); the
 * loop performs resume/unpause between curl_multi_socket_action and MHD_run.
 * The main thread talks to a worker only through worker_stop(), which writes
 * to the worker's eventfd; another worker only by granting a backend slot to
 * a request queued here (backends.h: route_inbox), which writes to it too.
 */
#ifndef GATEWAY_WORKER_H
#define GATEWAY_WORKER_H

#include "backends.h"
#include "config.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct request;

/* State shared by every worker: read-only while they run, except the flags.
 * What reloads (configuration, keys, backends) is in the published snapshot
 * (snapshot.h); cfg here is the one the process started with, for what only
 * a restart changes: listen addresses, workers, connection limits. */
struct gateway {
    struct cfg *cfg;             /* a reference: the start-up configuration */
    struct authguard *authguard; /* failed authentications per client address */
    atomic_bool stopping;        /* SIGTERM/SIGINT seen: drain, then exit */
    unsigned grace_s;            /* how long streams may take to finish after SIGTERM */
    int64_t started_ms;          /* wall clock, for /v1/models "created" */
    unsigned nworkers;
};

/* What an epoll event points at. */
enum watch_kind { WATCH_MHD, WATCH_CURL, WATCH_EVENT, WATCH_HANGUP };
struct watch {
    enum watch_kind kind;
    int fd;             /* -1 once curl has forgotten the socket (see dead) */
    void *ptr;          /* the daemon, the request, or NULL */
    struct watch *dead; /* next in the worker's list of watches to free */
};

struct worker {
    int id;
    struct gateway *gw; /* borrowed */
    pthread_t thread;
    int epfd;
    struct watch event;       /* eventfd: a message from main, or a slot granted */
    struct route_inbox inbox; /* slots on backends granted to requests queued here */
    bool inbox_live;
    struct MHD_Daemon **daemons;
    struct watch *daemon_watch;
    size_t ndaemons;
    CURLM *multi;
    CURL *easy_pool[64]; /* finished easy handles, reset, ready for reuse */
    size_t neasy;
    int64_t curl_deadline; /* monotonic ms; -1 = no curl timer */
    /* Curl socket watches that curl dropped while events for them may still
     * sit in this turn's epoll batch: freed at the end of the turn. */
    struct watch *dead_watches;
    struct snapshot *snap; /* a reference to the snapshot in force, as of snap_gen */
    unsigned snap_gen;
    struct request *active; /* every live request (doubly linked) */
    size_t nactive;
    struct request *deferred; /* requests with cross-library work queued */
    int64_t next_tick;
    bool mhd_due; /* MHD has work: its fd was ready or a connection was resumed */
    bool draining;
    int64_t drain_deadline;
};

/* Monotonic milliseconds. */
int64_t now_ms(void);

/* The snapshot in force, as this worker last saw it (refreshed when a reload
 * published a new one). Borrowed: take a reference to keep it. */
struct snapshot *worker_snapshot(struct worker *w);

/* Create worker id: bind its listen sockets and daemons (errors are logged).
 * Returns 0, or -1 with everything it made undone. */
int worker_init(struct worker *w, int id, struct gateway *gw);
int worker_start(struct worker *w);
/* Ask the worker to drain and stop (any thread); then join. */
void worker_stop(struct worker *w);
void worker_join(struct worker *w);
void worker_free(struct worker *w);

/* Queue r for the loop's deferred step (resume and/or unpause). */
void worker_defer(struct worker *w, struct request *r);
/* Watch a suspended connection's socket for the client hanging up. */
void worker_watch_hangup(struct worker *w, struct request *r);
void worker_unwatch_hangup(struct worker *w, struct request *r);

#endif
