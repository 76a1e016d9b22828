/*
 * request: one HTTP request from arrival to the completion callback.
 *
 * Ownership: created by the access handler on its first call, stored in MHD's
 * *req_cls, and freed only by the completion callback (request_free), which is
 * always called from inside MHD_run on the owning worker (EVENTLOOP.md P9).
 * Everything hanging off a request (body, buffers, the curl handle, the
 * dialect's state, allocated with the request) is owned by it. Callbacks never
 * free a request; they set flags.
 *
 * Phases: BODY (reading the upload) → UPSTREAM (a backend is working, the
 * connection is suspended and no response is queued yet) → STREAMING (a
 * streamed response is queued and fed from `out`) or REPLIED (a whole
 * response is queued). Exactly one response is ever queued.
 */
#ifndef GATEWAY_REQUEST_H
#define GATEWAY_REQUEST_H

#include "apierr.h"
#include "buf.h"
#include "curl_glue.h"
#include "dialect.h"
#include "ndjson.h"
#include "ratelimit.h"
#include "redis_glue.h"
#include "routes.h"
#include "worker.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

enum phase { PHASE_BODY, PHASE_UPSTREAM, PHASE_STREAMING, PHASE_REPLIED };

struct request {
    struct worker *w;            /* borrowed: the owner */
    struct MHD_Connection *conn; /* borrowed from MHD */
    struct snapshot *snap;       /* a reference: what was in force when it started */
    const struct cfg *cfg;       /* snap->cfg */
    struct worker_entry live;    /* in the worker's live list: ticked, shut down */
    struct worker_task task;     /* resume and/or unpause, run by the loop */
    struct curl_xfer xfer;       /* the transfer's completion, from curl_glue */

    const struct route *route; /* never NULL */
    enum phase phase;
    const char *method; /* borrowed from MHD, valid for the request's life */
    char *path;         /* owned: the URL path as requested */
    char id[72];        /* x-request-id */
    /* the client (clientaddr.h): the TCP peer, or the address a trusted
     * proxy forwarded; client_known false when the peer has no IP address */
    unsigned char client[16]; /* IPv4 mapped into IPv6 (netaddr.h) */
    bool client_known;
    struct buf body;  /* the upload, bounded by limits.max_body_bytes */
    size_t body_seen; /* upload bytes received, kept or not */
    bool body_too_big;
    bool refused;      /* err is the answer, sent once the upload is drained */
    bool close;        /* answer with Connection: close (MHD then closes the connection) */
    bool http11;       /* the client spoke HTTP/1.1: a stream goes out chunked (reply.c) */
    int status;        /* what was sent, for the access log */
    struct apierr err; /* set when the answer is an error */

    /* relayed through the engine (route->dialect) */
    struct dialect_common *dst;    /* the dialect's state, allocated with the request */
    bool dst_live;                 /* begun: release it */
    char *model;                   /* owned: the model as the client asked for it */
    const struct cfg_alias *alias; /* borrowed from cfg: the alias model names, or NULL */
    const char *upstream_model;    /* the name sent: borrowed from cfg (an alias) or model */
    bool no_thinking;              /* upbody was built for a backend whose model is known to lack
                                      the "thinking" capability: without a switch that turns it on */
    int backend;                   /* index in cfg->backends, or -1 */
    /* routing (backends.h): the slot on backend, the queue, failover */
    struct route_waiter waiter; /* in a backend's queue, or granted a slot */
    /* waiter is queued, or granted and not yet taken from the inbox: this
     * thread's own view, so that no tick reads waiter.state, which the
     * thread granting the slot writes (backends.h) */
    bool queued;
    bool holds_slot;          /* backend's slot is ours until backends_done */
    bool cold;                /* this request started a cold load on backend */
    int tried[3];             /* the backends tried, in order */
    unsigned attempts;        /* how many of tried[] */
    unsigned failovers;       /* tried[0..failovers) failed before answering and the
                                 request moved on (metrics) */
    bool model_known;         /* the model resolved: an alias, or a backend lists it
                                 (metrics label it by name; anything else is "") */
    bool cancelled_upstream;  /* the client left while a transfer ran: it was cut */
    int64_t t_queued, t_sent; /* monotonic ms: entered the queue; sent to backend */
    long queue_ms;            /* time spent waiting for a slot */
    CURL *easy;               /* owned; NULL once finished or aborted */
    struct buf upbody;        /* the native request body (curl reads it while sending) */
    /* a streamed upload (ROUTE_UPLOAD): the client's body passes through a
     * bounded window on its way to the backend, never whole in memory */
    struct buf window;   /* received from the client, not yet read by curl */
    size_t window_off;   /* how much of window curl has read */
    bool uploading;      /* the body streams to the backend as it arrives */
    bool upload_done;    /* the client's body is complete */
    bool upload_paused;  /* curl's read side paused: the window was empty */
    bool upload_waiting; /* the connection is suspended: the window was full */
    struct ndjson nd;
    long up_status;   /* backend's HTTP status, 0 until known */
    struct buf uperr; /* a non-200 answer's body */
    struct buf out;   /* bytes for the client: out_rd.off of them sent already */
    struct buf_reader out_rd;
    bool stream;    /* the client asked for a streamed answer */
    bool suspended; /* MHD connection suspended by us (P1) */
    bool paused;    /* curl transfer paused by us (P7) */
    bool want_resume, want_unpause, want_upload;
    bool ended;                 /* out holds the last bytes of the response */
    bool client_gone;           /* the client hung up */
    struct worker_watch hangup; /* the client's socket, while suspended (fd -1: unwatched) */
    bool keepalive_sent;        /* the streamed response began before the first token */
    bool cut;                   /* end the response abruptly (no clean end possible) */
    char resp_id[48]; /* the response id (the dialect's prefix), the same on every chunk */
    long created;
    int64_t t_start, t_first, t_last_up, t_next_keepalive; /* monotonic ms */
    int64_t t_data;     /* monotonic ms of the upstream callback in progress (engine.c on_data) */
    int64_t t_start_us; /* t_start in µs, for metrics' duration histogram */
    long prompt_tokens, completion_tokens;
    long up_lines; /* NDJSON lines received: the token estimate for a stream cut short */

    /* charged to the memory budget (membudget.h) besides the counted bufs:
     * the request's own allocation, and a whole answer handed to MHD */
    size_t held, reply_held;

    /* who is calling (auth.c) */
    const struct key *key; /* borrowed from snap->keys; NULL = auth "none" */
    struct rl_state *rl;   /* the key's limiter state and totals; NULL without a key */
    struct rl_verdict rlv; /* what admission said, for the x-ratelimit-* headers */
    bool rl_inflight;      /* holds a place in flight until auth_finish */
    bool auth_failed;      /* refused 401: no key, or one that did not check out */
    bool guard_refused;    /* refused 429: its address is blocked (authguard.h) */
    bool guard_blocked;    /* its failure started a block of its address */
    /* shared limits (ratelimit_shared.h) */
    struct redis_call rl_call; /* the check sent to Redis */
    bool rl_waiting;           /* ... not answered yet: the request may not go on */
    bool rl_shared;            /* admitted by Redis: its tokens are charged there */
    bool rl_lease;             /* holds a place in flight leased in Redis */
    int64_t rl_renew_at;       /* monotonic ms: when the lease is renewed */
    char rl_lease_id[32];      /* the lease's name, random */
    bool rl_fallback;          /* "shared" is on but Redis did not judge: local limits did */
};

struct key;

/* Allocate a request for a new connection's request (with room for its
 * route's dialect state); NULL on OOM. */
struct request *request_new(struct worker *w, struct MHD_Connection *conn, const char *url,
                            const char *method);
void request_free(struct request *r);

/* The status the client got (or would have): what was sent, else 200 for a
 * completed request and 499 for one whose client left. For the access log
 * and metrics alike. */
int request_status(const struct request *r, enum MHD_RequestTerminationCode toe);

/* The tokens r is charged for: Ollama's counts, or for a stream cut short
 * (which never got them) one completion token per line received, as Ollama
 * sends one line per token. For the key's limits and metrics alike. */
void request_tokens(const struct request *r, long *prompt, long *completion);

/* Suspend r's connection (only from inside an MHD callback of r). */
void request_suspend(struct request *r);
/* Resume r's connection (loop context only; r must be suspended). */
void request_resume(struct request *r);
/* Ask the loop to resume r when it gets to it (safe from curl callbacks). */
void request_wake(struct request *r);

/* The request that embeds a loop structure. */
#define request_of(ptr, member) ((struct request *)((char *)(ptr)-offsetof(struct request, member)))

#endif
