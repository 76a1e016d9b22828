/*
 * redis_glue: one asynchronous Redis connection per worker, driven by the
 * worker's own epoll loop (as Redis drives hiredis from its `ae` loop):
 * hiredis's async API asks for read and write interest through five hooks
 * (addRead, delRead, addWrite, delWrite, cleanup), and the loop calls
 * redisAsyncHandleRead/Write when the socket is ready.
 *
 * Commands are pipelined: a command queued by a callback is written by a
 * deferred task at the loop's next step, together with every other command
 * queued meanwhile, in one write; EPOLLOUT is asked for only while the
 * kernel will not take the bytes (and while connecting).
 *
 * Never blocking: the address was resolved when the configuration was
 * loaded (sharedcfg.h), the connect is non-blocking, and AUTH, SELECT and a
 * PING are pipelined behind it; the link is ready once the PING is answered.
 * Every command has a deadline (shared.timeout_ms): an answer later than
 * that means Redis is away, like a closed connection or a refused connect:
 * the connection is dropped, every command in flight fails at once (its
 * owner's done(NULL)), and a new connection is tried after a backoff that
 * doubles from REDIS_BACKOFF_MIN_MS to REDIS_BACKOFF_MAX_MS. A warning is
 * logged once per outage for the whole process, an info line when any
 * worker's link is ready again.
 *
 * Lua scripts: a caller names a script by a static struct redis_script; the
 * first use on a connection sends EVAL and a SCRIPT LOAD, later ones EVALSHA
 * with the loaded digest. A NOSCRIPT answer (the server lost its scripts)
 * is handed to the owner as the error it is and makes the next use load the
 * script again.
 *
 * A reload that changes "shared" (another server, password, database or
 * prefix) makes the link reconnect at the next tick; one that removes it
 * closes the link.
 *
 * Ownership: the link belongs to its worker (w->redis) and is touched only
 * by that worker's thread. A struct redis_call is embedded in its owner,
 * which may cancel it (redis_glue_cancel) before going away; done is called
 * at most once, from the loop (inside redisAsyncHandleRead, or when the link
 * is dropped), never after a cancel.
 */
#ifndef GATEWAY_REDIS_GLUE_H
#define GATEWAY_REDIS_GLUE_H

#include "worker.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>

#define REDIS_BACKOFF_MIN_MS 100
#define REDIS_BACKOFF_MAX_MS 5000
/* A connect (and its handshake) that takes longer than this has failed. */
#define REDIS_CONNECT_TIMEOUT_MS 1000
/* Arguments to one script call, keys included. */
#define REDIS_ARGS_MAX 16

struct redis_pending;

/* A Lua script; static, one per purpose. */
struct redis_script {
    const char *name; /* for messages */
    const char *text;
};

struct redis_call {
    /* The answer (an error reply included), or NULL: Redis is away, too
     * slow, or the link was dropped. */
    void (*done)(struct redis_call *c, const redisReply *reply);
    struct redis_pending *pending; /* the glue's: non-NULL while in flight */
};

/* The link's whole state; opaque. */
struct redis_link;

int redis_glue_init(struct worker *w);
void redis_glue_free(struct worker *w);

/* Bring the link in line with the configuration (a reference is taken):
 * connect, reconnect, or close. The loop calls it at each tick with the
 * snapshot's; tests call it directly. */
void redis_glue_configure(struct worker *w, struct cfg *cfg);
/* The loop's step: deadlines, reconnects, a close asked for by a callback. */
void redis_glue_service(struct worker *w, int64_t now);
/* When redis_glue_service has something to do next (monotonic ms), -1 = never. */
int64_t redis_glue_deadline(const struct worker *w);

/* Is the link up, its handshake answered? Only then does a call go out. */
bool redis_glue_ready(const struct worker *w);
/* The key prefix of the configuration the link follows ("" when none). */
const char *redis_glue_prefix(const struct worker *w);

/*
 * Run script s with nkeys keys then the other arguments (args[0..nargs),
 * '\0'-terminated strings, copied before this returns). c NULL: the answer
 * is not wanted (fire and forget). 0: queued (c->done will be called);
 * -1: not sent (the link is not ready, or memory ran out), and done is not
 * called.
 */
int redis_glue_eval(struct worker *w, struct redis_call *c, const struct redis_script *s, int nkeys,
                    int nargs, const char *const *args);
/* The owner of c goes away: its answer is dropped unread. */
void redis_glue_cancel(struct redis_call *c);

/* Whether Redis is away for the process (some worker's link failed and
 * none has come back since): for metrics and tests. */
bool redis_glue_away(void);

/* The process's links, for metrics and the status page (any thread: relaxed
 * atomics that each worker updates as its own link changes state, so the
 * figures may be a moment apart from each other). */
struct redis_glue_stats {
    unsigned links;   /* workers following a "shared" configuration */
    unsigned ready;   /* ... whose connection is up, its handshake answered */
    uint64_t outages; /* outages announced ("is away" logged) since the start */
};
void redis_glue_stats(struct redis_glue_stats *s);

#endif
