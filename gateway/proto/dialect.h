/*
 * dialect: what the relay engine (http/engine.c) needs from one client API,
 * as a table of pure functions, in the manner of nginx's handler pointers or
 * h2o's generator callbacks. The engine owns a request's life (routing,
 * queues, the transfer, timeouts, back-pressure, failover, cancel) and knows
 * no dialect; a dialect knows no socket, clock or backend table. Each one
 * translates between one client API and one of Ollama's native routes:
 *
 *   dialect_chat         OpenAI /v1/chat/completions <-> /api/chat
 *   dialect_embeddings   OpenAI /v1/embeddings       <-> /api/embed
 *   dialect_completions  OpenAI /v1/completions      <-> /api/generate
 *   dialect_messages     Anthropic /v1/messages      <-> /api/chat
 *   dialect_native_*     Ollama's own API (native.h), the model renamed both ways
 *
 * A request's life, as the engine calls it:
 *   1. translate(): validate the client's body, ask `resolve` (the engine:
 *      key scope, alias, which name the backend knows the model by) and
 *      append the native body. Called again with the same body when a
 *      failover lands on a backend that lists the model under another of an
 *      alias's names, so the name is always passed in, never patched; and
 *      again when the backend chosen is known to lack the capability a
 *      thinking switch the client sent needs (thinking.h), or the one a
 *      failover lands on has it after all.
 *   2. begin(): the answer starts: the engine's response id and time.
 *   3. line() for each native NDJSON line of a streamed answer, then eof();
 *      or complete() once with a whole non-streamed native answer.
 *   4. release(), once for every request whose translate() was called,
 *      whatever happened after it (a failed translate or begin included): it
 *      frees what the state holds, as they left it, and may run on a state
 *      it has already released.
 * upstream_error() turns a backend's non-200 answer into the dialect's error;
 * errors render through `errors` (a whole response before the first byte, an
 * in-band frame after it).
 *
 * State: state_size bytes per request, zeroed by the engine, starting with a
 * struct dialect_common that the engine reads (token counts) and writes (the
 * backend's name, for messages). Everything else in it is the dialect's; it
 * frees what it allocated in release(). Output is appended to the engine's
 * bounded buffer; on failure nothing is appended and err says why.
 * Threading: any thread, no shared state; cJSON trees made inside a call die
 * within it (they may come from the thread's jarena).
 */
#ifndef GATEWAY_DIALECT_H
#define GATEWAY_DIALECT_H

#include "apierr.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* line() and eof() results. */
enum { DIALECT_FAIL = -1, DIALECT_MORE = 0, DIALECT_DONE = 1 };

/* The first member of every dialect's state. */
struct dialect_common {
    const char *backend;    /* set by the engine: the backend now serving (for messages) */
    int status;             /* set by the engine to the backend's 2xx status before
                               complete(); the status the whole answer is sent with */
    long prompt_tokens;     /* set by the dialect from the native counts */
    long completion_tokens; /* (0 when absent) */
    bool asks_thinking;     /* set by translate(): the client turned thinking on
                               (thinking.h), whether or not it was sent */
};

/* The engine's answer to "where does this model go". */
struct dialect_model {
    const char *name;     /* the name the backend knows the model by; lives as long as
                             the request (a dialect may keep the pointer) */
    const cJSON *options; /* the alias's "options" (client options win), or NULL; valid
                             during the call */
    bool no_thinking;     /* the backend is known to lack Ollama's "thinking"
                             capability: leave out a switch that turns it on */
};

/* Called by translate() exactly once, as soon as it knows the model the
 * client asked for and whether it wants a stream. 0 and *m filled, or -1 with
 * e set (the dialect then returns -1 without writing anything). */
typedef int (*dialect_resolve_fn)(void *ctx, const char *client_model, bool stream,
                                  struct dialect_model *m, struct apierr *e);

/* How a route shapes its errors. */
struct errshape {
    const char *content_type; /* of a whole error response */
    /* The body of a whole error response. */
    int (*body)(struct buf *out, const struct apierr *e);
    /* The in-band error after the first byte of a stream; the stream then
     * ends without its clean end marker. */
    int (*frame)(struct buf *out, const struct apierr *e);
    /* The HTTP status a whole error response is sent with; NULL: e->status. */
    int (*status)(const struct apierr *e);
};

/* The engine's facts about the answer, for begin(). Strings are borrowed for
 * the request's life. */
struct dialect_answer {
    const char *client_model; /* as the client asked */
    const char *id;           /* the response id, made with id_prefix */
    long created;             /* Unix time */
    bool stream;
};

struct dialect {
    const char *name;        /* for logs: "chat.completions" */
    const char *native_path; /* "/api/chat"; NULL = the request's own path */
    const char *id_prefix;   /* "chatcmpl-"; NULL = no id */
    const char *stream_type; /* Content-Type of a streamed answer */
    const struct errshape *errors;
    size_t state_size; /* >= sizeof(struct dialect_common) */

    int (*translate)(void *st, const char *body, size_t len, dialect_resolve_fn resolve, void *ctx,
                     struct buf *native, struct apierr *err);
    int (*begin)(void *st, const struct dialect_answer *a);
    /* One native line (no '\n', not NUL-terminated): DIALECT_MORE, DIALECT_DONE
     * (the last bytes of a clean answer were written), or DIALECT_FAIL with err
     * set and nothing written. */
    int (*line)(void *st, const char *line, size_t len, struct buf *out, struct apierr *err);
    /* The native stream ended: DIALECT_DONE if it was complete (anything
     * still owed has been written to out), else DIALECT_FAIL with err set. */
    int (*eof)(void *st, struct buf *out, struct apierr *err);
    /* A whole non-streamed native answer: 0, or -1 with err set. */
    int (*complete)(void *st, const char *body, size_t len, struct buf *out, struct apierr *err);
    /* A native non-200 answer (any body) from the named backend. */
    void (*upstream_error)(int status, const char *body, size_t len, const char *backend,
                           struct apierr *err);
    /* A keep-alive while the first token is awaited; NULL: the dialect has none. */
    int (*keepalive)(struct buf *out);
    /* The in-band error after the first byte, for a stream whose frames
     * carry state (Responses numbers every event); NULL: errors->frame. */
    int (*fail_frame)(void *st, struct buf *out, const struct apierr *e);
    void (*release)(void *st);
};

extern const struct errshape errshape_openai; /* {"error":{...}}; SSE data frame */
extern const struct errshape errshape_ollama; /* {"error":"text"}; an NDJSON line */

#endif
