#include "engine.h"

#include "auth.h"
#include "backends.h"
#include "clock.h"
#include "jarena.h"
#include "jscan.h"
#include "log.h"
#include "rand.h"
#include "reply.h"
#include "request.h"
#include "router.h"
#include "snapshot.h"
#include "target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

/* Back-pressure (EVENTLOOP.md P6/P7): the transfer is paused while more than
 * OUT_HIGH bytes wait for the client and resumed below OUT_LOW. The hard
 * ceiling only has to hold what one curl write (at most UPSTREAM_RECV_BUFFER
 * bytes, or one long NDJSON line completed by it) can turn into, so a paused
 * transfer can always make progress. */
#define OUT_HIGH (64u << 10)
#define OUT_LOW (16u << 10)
#define OUT_STREAM_MAX (64u << 20)
/* A drained output buffer larger than this (it held a long line's frame) is
 * freed; back-pressure alone never grows one past it. */
#define OUT_KEEP (2 * OUT_HIGH)
#define NONSTREAM_MAX (64u << 20) /* a whole non-streamed native answer */
#define MAX_NDJSON_LINE (16u << 20)
/* curl's receive buffer, allocated for each transfer and freed at its end.
 * Each read costs curl two system calls (the read, and a poll to see whether
 * more is waiting), so a burst (a whole answer, lines that queued while the
 * client was slow) wants a big one; a stream holds its buffer for its whole
 * life, and with thousands of slow streams open it is a good part of what
 * each costs. A non-streamed answer takes curl's default; a stream 4 KiB,
 * what nginx reads an upstream with (proxy_buffer_size, one page); a stream
 * started on a crowded worker (curl_glue_crowded) 1 KiB, curl's least: a
 * 32-token answer that arrives at once then takes 6 reads instead of 3, but
 * each stream holds 3 KiB less (README "Performance"). curl 7.88 refuses
 * to resize the buffer of a running transfer, so the choice is made here. */
#define UPSTREAM_RECV_BUFFER 16384L
#define UPSTREAM_RECV_BUFFER_STREAM 4096L
#define UPSTREAM_RECV_BUFFER_CROWDED 1024L
/* A streamed upload (a blob of gigabytes) holds at most this much of the
 * client's body at a time: beyond it the client's connection is suspended,
 * so TCP makes the client wait for the backend. */
#define UPLOAD_WINDOW (256u << 10)

static const struct cfg_backend *backend_of(const struct request *r)
{
    return r->backend >= 0 ? &r->cfg->backends[r->backend] : NULL;
}

static const char *backend_name(const struct request *r)
{
    const struct cfg_backend *be = backend_of(r);
    return be ? be->name : "-";
}

#define MAX_ATTEMPTS (sizeof((struct request *)0)->tried / sizeof(int))
/* Retry-After for a 503 because every backend is busy. */
#define BUSY_RETRY_AFTER_S 2

/* Leave the queue, and give back the backend slot r holds. */
static void leave_queue(struct request *r)
{
    backends_leave(r->snap->backends, &r->waiter);
    r->queued = false;
}

static void release_route(struct request *r)
{
    struct backends *b = r->snap->backends;
    leave_queue(r);
    if (r->holds_slot) {
        backends_done(b, r->backend, r->upstream_model, r->cold, r->t_first != 0, now_ms());
        r->holds_slot = false;
        r->cold = false;
    }
}

static void abort_upstream(struct request *r)
{
    if (r->easy) {
        /* Removing a live transfer closes its connection: that close is what
         * makes Ollama stop generating. */
        curl_glue_release(r->w, r->easy);
        r->easy = NULL;
        r->paused = false;
    }
    release_route(r);
}

/* The first answer line (or byte, non-streamed) from the backend. From here
 * on there is no failover, so the client's body is no longer needed, nor,
 * once curl has sent all of it, the native body: a stream may stay open for
 * minutes, and an agent's request body is often hundreds of kilobytes. */
static void first_answer(struct request *r, int64_t now)
{
    r->t_first = now;
    backends_answered(r->snap->backends, r->backend, r->upstream_model, r->cold, now);
    r->cold = false;
    buf_free(&r->body);
    /* curl reads the body from upbody (CURLOPT_POSTFIELDS, not copied) */
    curl_off_t sent = 0;
    if (r->upbody.p && !r->uploading &&
        (!r->easy || (curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK &&
                      sent >= (curl_off_t)r->upbody.len)))
        buf_free(&r->upbody);
}

/* New bytes (or the end) are in r->out at time now: make sure the client
 * gets them. */
static void flush_at(struct request *r, int64_t now)
{
    if (r->client_gone)
        return;
    r->t_next_keepalive = now + (int64_t)r->cfg->limits.keepalive_interval_s * 1000;
    if (r->suspended)
        request_wake(r);
}

static void flush(struct request *r)
{
    flush_at(r, now_ms());
}

/* The answer failed. Before anything reached the client it becomes a real
 * HTTP error; after that, the dialect's in-band error frame, and no clean end. */
static void fail(struct request *r, const struct apierr *e)
{
    if (r->ended)
        return;
    r->err = *e;
    r->ended = true;
    bool started = r->phase == PHASE_STREAMING || r->out.len > 0 || r->keepalive_sent;
    const struct dialect *d = r->route->dialect;
    if (r->stream && started &&
        (d && d->fail_frame ? d->fail_frame(r->dst, &r->out, e)
                            : r->route->errors->frame(&r->out, e)) < 0)
        r->cut = true;
    flush(r);
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud);
static size_t on_upload_read(char *dst, size_t size, size_t nitems, void *ud);

static int start_transfer(struct request *r)
{
    const struct target *t = &r->snap->targets[r->backend];
    const char *path = r->route->dialect->native_path ? r->route->dialect->native_path : r->path;
    char url[4096];
    if (target_url(t, path, strlen(path), url, sizeof url) < 0)
        return -1;
    CURL *c = curl_glue_easy(r->w);
    if (!c)
        return -1;
    /* The options libcurl copies (URL, CUSTOMREQUEST, PROXY) can fail for
     * lack of memory, and a handle from the pool would then keep its last
     * transfer's value: a request sent to the wrong path. Checked; the
     * others only store a number or a pointer. */
    if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK)
        goto fail;
    /* With the URL string set too, libcurl neither parses it nor prints it
     * back from the parsed copy (url.c parseurlandfillconn, 7.88); NULL for
     * other paths, which also clears a pooled handle's last one. */
    curl_easy_setopt(c, CURLOPT_CURLU, target_parsed(t, path));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* Options a reused handle may carry from its last transfer. */
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    if (curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL) != CURLE_OK)
        goto fail;
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    if (r->uploading) {
        /* No POSTFIELDS: curl reads the body from on_upload_read. */
        const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
        char *end = NULL;
        long long n = cl ? strtoll(cl, &end, 10) : -1;
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_upload_read);
        curl_easy_setopt(c, CURLOPT_READDATA, r);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(cl && end && !*end && n >= 0 ? n : -1));
    } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->upbody.p ? r->upbody.p : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->upbody.len);
    }
    if (r->method[0] == 'H')
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (r->method[0] == 'D' && /* DELETE /api/delete carries a body, as Ollama's client sends it */
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE") != CURLE_OK)
        goto fail;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    /* Backends are reached directly: an http_proxy in the daemon's environment
     * must not reroute them (and looking it up costs five getenv calls). */
    if (curl_easy_setopt(c, CURLOPT_PROXY, "") != CURLE_OK)
        goto fail;
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE,
                     !r->stream                ? UPSTREAM_RECV_BUFFER
                     : curl_glue_crowded(r->w) ? UPSTREAM_RECV_BUFFER_CROWDED
                                               : UPSTREAM_RECV_BUFFER_STREAM);
    /* No CURLOPT_ACCEPT_ENCODING: a paused transfer would keep inflating into
     * memory (EVENTLOOP.md §3). */
    if (curl_glue_add(r->w, c, &r->xfer) < 0)
        return -1;
    r->easy = c;
    return 0;
fail:
    curl_glue_release(r->w, c); /* back to the pool; its next user sets every option */
    return -1;
}

/* What r asks the router for: the model's names (an alias may give several)
 * and the backends it may use. */
static void ask_of(const struct request *r, struct route_ask *ask)
{
    const struct cfg_alias *alias = r->alias;
    *ask = (struct route_ask){
        .names = alias ? alias->models : (const char *const *)&r->model,
        .nnames = alias ? alias->nmodels : 1,
        .only = alias && alias->backends ? alias->backend_index : NULL,
        .nonly = alias ? alias->nbackends : 0,
        .tried = r->tried,
        .ntried = r->attempts,
    };
}

static int resolve(void *ctx, const char *client_model, bool stream, struct dialect_model *m,
                   struct apierr *e);

/* (Re)build the native body for r->upstream_model from the client's body. */
static int translate(struct request *r, struct apierr *e)
{
    buf_reset(&r->upbody);
    /* The parsed request lives only in this call: its cJSON tree comes from
     * the thread's arena (jarena.h), and once translated nothing of it is
     * kept, because with thousands of streams open every byte per stream
     * counts. */
    jarena_begin();
    int rc = r->route->dialect->translate(r->dst, r->body.p ? r->body.p : "", r->body.len, resolve,
                                          r, &r->upbody, e);
    jarena_end();
    return rc;
}

/* Ask r->backend for the model as name from now on (a backend may list it
 * under another of the alias's names), where it can think or not, as far as
 * discovery knows: the native body is built again when it would differ,
 * that is for another name, or when the client turned thinking on and the
 * model there is known to lack the capability (thinking.h) or, after a
 * failover, no longer is. -1: e says why not. */
static int use_name(struct request *r, const char *name, enum backend_thinking thinking,
                    struct apierr *e)
{
    bool no_thinking = thinking == THINKING_NO;
    bool same_name = name == r->upstream_model || strcmp(name, r->upstream_model) == 0;
    if (same_name && (no_thinking == r->no_thinking || !r->dst->asks_thinking))
        return 0;
    r->upstream_model = name;
    r->no_thinking = no_thinking;
    if (!r->body.p)
        return apierr_set(e, 500, APIERR_API, "internal_error", NULL,
                          "The request can no longer be sent to another backend");
    if (no_thinking && r->dst->asks_thinking)
        log_debug("request %s: %s on backend %s cannot think: its thinking switch is left out",
                  r->id, name, backend_name(r));
    return translate(r, e);
}

/* Start the transfer to r->backend (a slot there is ours, or the route
 * takes none). */
static int send_now(struct request *r, struct apierr *e)
{
    int64_t now = now_ms();
    r->dst->backend = backend_name(r);
    r->up_status = 0;
    buf_reset(&r->uperr);
    /* A backend that failed over may have left half a line behind. */
    if (r->stream && ndjson_pending(&r->nd)) {
        ndjson_free(&r->nd);
        ndjson_init(&r->nd, MAX_NDJSON_LINE);
        buf_count(&r->nd.tail);
    }
    if (start_transfer(r) < 0) {
        /* libcurl could not make or start the transfer: memory ran out */
        release_route(r);
        return apierr_nomem(e);
    }
    r->tried[r->attempts++] = r->backend;
    r->t_sent = r->t_last_up = now;
    r->t_next_keepalive = now + (int64_t)r->cfg->limits.keepalive_interval_s * 1000;
    return 0;
}

/* Send r to backend idx, whose slot r holds, asking for name. */
static int send_to(struct request *r, int idx, const char *name, enum backend_thinking thinking,
                   struct apierr *e)
{
    r->backend = idx;
    r->holds_slot = true;
    if (use_name(r, name, thinking, e) < 0) {
        release_route(r);
        return -1;
    }
    r->cold = backends_begin(r->snap->backends, idx, name, now_ms());
    return send_now(r, e);
}

/*
 * Model management (ROUTE_ADMIN) goes to the one backend the client names,
 * with the x-ollama-backend header or ?backend=, or to the only backend
 * there is: pulling or deleting a model is about one machine, and doing it
 * on all of them at once is what a script calling each by name is for. It
 * takes no slot (it does not occupy a model) and is never retried.
 */
static int route_pinned(struct request *r, struct apierr *e)
{
    const struct cfg *cfg = r->cfg;
    const char *want = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "x-ollama-backend");
    if (!want)
        want = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "backend");
    int idx = -1;
    if (!want && cfg->nbackends == 1)
        idx = 0;
    for (size_t i = 0; want && i < cfg->nbackends; i++)
        if (strcmp(cfg->backends[i].name, want) == 0)
            idx = (int)i;
    if (idx < 0) {
        char names[200] = "";
        size_t n = 0;
        for (size_t i = 0; i < cfg->nbackends && n < sizeof names; i++)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "",
                                  cfg->backends[i].name);
        return apierr_set(e, 400, APIERR_INVALID, "backend_required", NULL,
                          want ? "There is no backend named '%s'; name one of: %s"
                               : "%sName the backend with the x-ollama-backend header or "
                                 "?backend=: one of %s",
                          want ? want : "", names);
    }
    if (!backends_is_up(r->snap->backends, idx)) {
        apierr_set(e, 503, APIERR_API, "backend_unavailable", NULL,
                   "Backend %s is not available right now; try again shortly",
                   cfg->backends[idx].name);
        e->retry_after_s = BUSY_RETRY_AFTER_S;
        return -1;
    }
    r->backend = idx;
    return send_now(r, e);
}

/*
 * Choose a backend for r (choice.h's rules; not one it tried already) and
 * send r there, or queue it for a slot there. -1: e says why not: 404 when
 * no backend has the model, 503 when those that have it are down or full.
 */
static int route(struct request *r, struct apierr *e)
{
    if (r->route->flags & ROUTE_ADMIN)
        return route_pinned(r, e);
    struct route_ask ask;
    ask_of(r, &ask);
    r->waiter.owner = r;
    r->waiter.inbox = &r->w->inbox;
    int idx = -1;
    size_t k = 0;
    int64_t now = now_ms();
    enum backend_thinking thinking = THINKING_UNKNOWN;
    enum choice_outcome o =
        backends_route(r->snap->backends, &ask, &r->waiter, now, &idx, &k, &thinking);
    /* A name some backend lists (or an alias) is a model metrics may name;
     * any other name a client sends is not, or their labels would be
     * unbounded. */
    if (o != CHOICE_NO_MODEL || r->alias)
        r->model_known = true;
    switch (o) {
    case CHOICE_SEND:
        return send_to(r, idx, ask.names[k], thinking, e);
    case CHOICE_QUEUE:
        r->backend = idx;
        r->queued = true;
        if (use_name(r, ask.names[k], thinking, e) < 0) {
            leave_queue(r);
            return -1;
        }
        r->t_queued = now;
        /* The one sign that a request waits (tests wait for it): debug, as
         * a busy gateway queues many. */
        log_debug("request %s queued for backend %s (position %u)", r->id, backend_name(r),
                  r->waiter.position);
        return 0;
    case CHOICE_FULL:
    case CHOICE_NONE_UP:
        apierr_set(
            e, 503, APIERR_API, "backend_unavailable", NULL,
            o == CHOICE_FULL
                ? "Every backend that serves '%s' is busy and its queue is full; retry shortly"
                : "No backend that serves '%s' is available right now; try again shortly",
            r->model);
        e->retry_after_s = BUSY_RETRY_AFTER_S;
        return -1;
    case CHOICE_NO_MODEL:
        break;
    }
    if (ask.names[0] != r->model)
        return apierr_set(e, 404, APIERR_INVALID, "model_not_found", "model",
                          "The model '%s' (an alias of '%s') does not exist on any backend",
                          r->model, ask.names[0]);
    return apierr_set(e, 404, APIERR_INVALID, "model_not_found", "model",
                      "The model '%s' does not exist", r->model);
}

/* The dialect knows the model the client asked for: check the key's scope
 * (on the name the client asked for, alias or not) and say which name the
 * backend is asked for. Later calls (a failover under another name) just
 * give the current name. */
static int resolve(void *ctx, const char *client_model, bool stream, struct dialect_model *m,
                   struct apierr *e)
{
    struct request *r = ctx;
    if (!r->model) {
        r->model = strdup(client_model);
        if (!r->model)
            return apierr_nomem(e);
        r->stream = stream;
        /* An admin route manages the backends' own names: no scope, no alias. */
        if (!(r->route->flags & ROUTE_ADMIN)) {
            if (auth_scope(r, r->model, e) < 0)
                return -1;
            r->alias = router_alias(r->cfg, r->model);
        }
        /* The first of the model's names; send_to() changes it for a
         * backend that lists the model under another. */
        r->upstream_model = r->alias ? r->alias->model : r->model;
    }
    m->name = r->upstream_model;
    m->options = r->alias ? r->alias->options : NULL;
    m->no_thinking = r->no_thinking;
    return 0;
}

enum MHD_Result engine_start(struct request *r)
{
    const struct dialect *d = r->route->dialect;
    struct apierr e = {0};
    /* cJSON ends a string at an escaped NUL and keeps the rest of the
     * request: "m\u0000x" would be served as the model "m". Refused whole. */
    if (r->body.p && jscan_has_nul(r->body.p, r->body.p + r->body.len)) {
        apierr_invalid(&e, NULL,
                       "The request holds a NUL character (\\u0000) in a string, which the "
                       "gateway does not accept");
        return reply_error(r, &e);
    }
    r->dst_live = true; /* released at the end, whatever happens from here */
    /* Draining (EVENTLOOP.md P8): nothing new is sent upstream or suspended,
     * so the drain only waits for what was already running. The listeners
     * are closed; this is a request on a kept-alive connection, and the
     * answer closes it. */
    if (r->w->draining) {
        apierr_set(&e, 503, APIERR_API, "backend_unavailable", NULL,
                   "The gateway is shutting down; retry the request");
        e.retry_after_s = BUSY_RETRY_AFTER_S;
        return reply_error(r, &e);
    }
    if (translate(r, &e) < 0)
        return reply_error(r, &e);
    if (d->id_prefix)
        rand_id(r->resp_id, sizeof r->resp_id, d->id_prefix);
    r->created = (long)time(NULL);
    struct dialect_answer a = {
        .client_model = r->model, .id = r->resp_id, .created = r->created, .stream = r->stream};
    if (d->begin(r->dst, &a) < 0) {
        apierr_nomem(&e);
        return reply_error(r, &e);
    }
    if ((r->route->flags & ROUTE_UPLOAD) && strcmp(r->method, "POST") == 0) {
        r->uploading = true;
        buf_init(&r->window, UPLOAD_WINDOW);
        buf_count(&r->window);
    }
    if (r->stream) {
        ndjson_init(&r->nd, MAX_NDJSON_LINE);
        buf_count(&r->nd.tail);
        r->out.max = OUT_STREAM_MAX;
    } else {
        r->out.max = NONSTREAM_MAX;
    }
    if (route(r, &e) < 0)
        return reply_error(r, &e);
    r->phase = PHASE_UPSTREAM;
    if (r->uploading) /* an upload goes on arriving: see engine_upload */
        return MHD_YES;
    if (r->easy) {
        /* Send it now rather than at the loop's next turn: a backend that
         * answers at once (a small model, a cached answer, a nearby box) is
         * then answered without suspending the connection, which costs
         * libmicrohttpd two epoll_ctl calls and a read that finds nothing. */
        curl_glue_kick(r->w);
        if (r->ended || (r->stream && r->out.len))
            return engine_resumed(r);
    }
    request_suspend(r);
    return MHD_YES;
}

enum MHD_Result engine_upload(struct request *r, const char *data, size_t *size)
{
    if (r->phase != PHASE_UPSTREAM) { /* answered already: the rest is dropped */
        *size = 0;
        return MHD_YES;
    }
    if (!*size) {
        r->upload_done = true;
        r->t_sent = now_ms();   /* the backend can answer from now on */
        if (r->upload_paused) { /* curl waits: let it read the end */
            r->want_upload = true;
            worker_defer(r->w, &r->task);
        }
        return engine_resumed(r);
    }
    if (r->ended) {
        /* The backend answered before the upload ended (it refused it, or
         * failed). The rest of the body is read and dropped, up to
         * limits.max_body_bytes, and the answer sent at its end: answering
         * while the client still sends makes the kernel reset the connection
         * over the unread bytes, and the client loses the answer. Beyond
         * that the answer goes at once. */
        r->body_seen += *size;
        *size = 0;
        if (r->body_seen <= r->body.max)
            return MHD_YES;
        return engine_resumed(r);
    }
    size_t room = r->window.max - r->window.len;
    size_t n = *size < room ? *size : room;
    if (n && buf_append(&r->window, data, n) == 0) {
        *size -= n;
        if (r->upload_paused) {
            r->want_upload = true;
            worker_defer(r->w, &r->task);
        }
    }
    if (*size) { /* the window is full: wait for curl to read it */
        r->upload_waiting = true;
        request_suspend(r);
    }
    return MHD_YES;
}

static size_t on_upload_read(char *dst, size_t size, size_t nitems, void *ud)
{
    struct request *r = ud;
    size_t avail = r->window.len - r->window_off, n = size * nitems;
    if (!avail) {
        if (r->upload_done)
            return 0;
        r->upload_paused = true;
        return CURL_READFUNC_PAUSE;
    }
    if (n > avail)
        n = avail;
    memcpy(dst, r->window.p + r->window_off, n);
    r->window_off += n;
    r->t_last_up = now_ms();
    if (r->window_off == r->window.len) {
        buf_reset(&r->window);
        r->window_off = 0;
    }
    if (r->upload_waiting) { /* room again: let MHD hand over the rest */
        r->upload_waiting = false;
        request_wake(r);
    }
    return n;
}

enum MHD_Result engine_resumed(struct request *r)
{
    if (r->stream && (r->out.len || r->keepalive_sent))
        return reply_stream(r);
    if (r->ended) {
        if (r->err.status)
            return reply_error(r, &r->err);
        return reply_buf(r, r->dst->status ? r->dst->status : 200, &r->out);
    }
    request_suspend(r); /* woken early: nothing to send yet */
    return MHD_YES;
}

ssize_t engine_read(struct request *r, char *dst, size_t max)
{
    if (r->client_gone)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (r->out.len) {
        size_t n = buf_read(&r->out, &r->out_rd, dst, max);
        /* Drained after a long line: give its memory back rather than keep
         * megabytes for a stream whose frames are a few hundred bytes. On a
         * crowded worker give back any drained buffer: its streams are many
         * and mostly idle, and a free and a malloc per token cost less than
         * holding 256 bytes for each of them. */
        if (!r->out.len && (r->out.cap > OUT_KEEP || curl_glue_crowded(r->w)))
            buf_free(&r->out);
        if (r->paused && buf_unread(&r->out, &r->out_rd) < OUT_LOW) {
            r->want_unpause = true;
            worker_defer(r->w, &r->task);
        }
        return (ssize_t)n;
    }
    if (r->ended)
        return r->cut ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
    request_suspend(r); /* never return 0 without suspending (P2) */
    return 0;
}

static int on_line(void *ud, const char *line, size_t len)
{
    struct request *r = ud;
    /* Lines, not bytes, are what the stream's clocks count: a backend that
     * dribbles a byte at a time must not keep a stream alive forever. The
     * time is the callback's (on_data), read once for all its lines. */
    r->t_last_up = r->t_data;
    if (!r->t_first)
        first_answer(r, r->t_last_up);
    r->up_lines++;
    struct apierr e = {0};
    int rc = r->route->dialect->line(r->dst, line, len, &r->out, &e);
    if (rc == DIALECT_MORE)
        return 0;
    if (rc == DIALECT_DONE) {
        r->ended = true;
        r->prompt_tokens = r->dst->prompt_tokens;
        r->completion_tokens = r->dst->completion_tokens;
        return 1;
    }
    fail(r, &e); /* a real HTTP error if nothing reached the client yet */
    return 1;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    struct request *r = ud;
    size_t n = size * nmemb;
    if (!r->up_status)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->up_status);
    if (r->up_status < 200 || r->up_status > 299) {
        buf_append(&r->uperr, p, n); /* beyond 64 KiB the start is enough */
        return n;
    }
    if (r->ended)
        return r->err.status ? CURL_WRITEFUNC_ERROR : n;
    if (!r->stream) {
        if (!r->t_first)
            first_answer(r, now_ms());
        int rc = buf_append(&r->out, p, n);
        if (rc < 0) {
            struct apierr e;
            if (rc == BUF_NOMEM)
                apierr_nomem(&e);
            else
                apierr_set(&e, 502, APIERR_API, "upstream_error", NULL,
                           "Backend %s sent an answer larger than %zu bytes", backend_name(r),
                           r->out.max);
            buf_reset(&r->out);
            fail(r, &e);
            return CURL_WRITEFUNC_ERROR;
        }
        return n;
    }
    /* Check room before touching the bytes: after a pause curl hands us the
     * very same bytes again (P7). */
    if (buf_unread(&r->out, &r->out_rd) >= OUT_HIGH) {
        r->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    size_t before = r->out.len;
    r->t_data = now_ms();
    jarena_begin(); /* each line's cJSON tree dies within on_line */
    int rc = ndjson_feed(&r->nd, p, n, on_line, r);
    jarena_end();
    if (rc < 0) {
        struct apierr e;
        if (rc == BUF_NOMEM)
            apierr_nomem(&e);
        else
            apierr_set(&e, 502, APIERR_API, "upstream_error", NULL,
                       "Backend %s sent a line longer than %u bytes", backend_name(r),
                       MAX_NDJSON_LINE);
        fail(r, &e);
    }
    if (r->out.len != before || r->ended)
        flush_at(r, r->t_data);
    /* After a failure stop reading: a garbage-spewing backend is cut off. */
    return r->ended && r->err.status ? CURL_WRITEFUNC_ERROR : n;
}

/*
 * Failover: a backend that failed before sending any of its answer (it could
 * not be reached, dropped the connection, or said 5xx, such as Ollama's 503
 * "server busy") has generated nothing the client could have seen, so the
 * request may go to another backend that has the model: at most
 * MAX_ATTEMPTS backends, none twice. Once an answer line has arrived, never.
 */
static bool retryable(const struct request *r, CURLcode result)
{
    if (r->t_first || r->up_lines || r->client_gone || r->w->draining ||
        (r->route->flags & ROUTE_ADMIN))
        return false;
    if (r->attempts >= MAX_ATTEMPTS)
        return false;
    /* Our own memory running out is no fault of the backend. */
    if (result != CURLE_OK)
        return result != CURLE_ABORTED_BY_CALLBACK && result != CURLE_WRITE_ERROR &&
               result != CURLE_OUT_OF_MEMORY;
    return r->up_status >= 500;
}

static bool failover(struct request *r, CURLcode result)
{
    char why[96];
    if (result != CURLE_OK)
        snprintf(why, sizeof why, "%s", curl_easy_strerror(result));
    else
        snprintf(why, sizeof why, "HTTP %ld", r->up_status);
    const char *failed = backend_name(r);
    struct apierr e;
    long status = r->up_status;
    if (route(r, &e) < 0) {
        r->up_status = status; /* route() failed before touching it; keep it */
        return false;
    }
    r->failovers++; /* from tried[failovers - 1], the last one tried */
    log_info("request %s: backend %s failed before answering (%s): %s %s", r->id, failed, why,
             r->easy ? "retried on" : "queued for", backend_name(r));
    return true;
}

void engine_upstream_done(struct curl_xfer *x, CURLcode result)
{
    struct request *r = request_of(x, xfer);
    const struct dialect *d = r->route->dialect;
    /* An answer with no body (Ollama's 200 to a delete) never reached on_data. */
    if (!r->up_status && result == CURLE_OK)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->up_status);
    abort_upstream(r); /* the transfer is over: just detach and free it */
    if (r->ended) {
        flush(r);
        return;
    }
    struct apierr e = {0};
    /* Only a refused connection says nothing listens there; a slow connect
     * may just be a busy backend. */
    if (result == CURLE_COULDNT_CONNECT || result == CURLE_COULDNT_RESOLVE_HOST)
        backends_report_failure(r->snap->backends, r->backend);
    else if (r->up_status)
        backends_report_success(r->snap->backends, r->backend);
    if (retryable(r, result) && failover(r, result))
        return;
    if (result == CURLE_OUT_OF_MEMORY) {
        apierr_nomem(&e);
        fail(r, &e);
        return;
    }
    if (result != CURLE_OK) {
        apierr_set(&e, 502, APIERR_API, "upstream_error", NULL, "Backend %s failed: %s",
                   backend_name(r), curl_easy_strerror(result));
        fail(r, &e);
        return;
    }
    if (r->up_status < 200 || r->up_status > 299) {
        d->upstream_error((int)r->up_status, r->uperr.p ? r->uperr.p : "", r->uperr.len,
                          backend_name(r), &e);
        fail(r, &e);
        return;
    }
    if (r->stream) {
        r->t_data = now_ms(); /* a last line without its newline is read now */
        jarena_begin();
        ndjson_finish(&r->nd, on_line, r);
        jarena_end();
        if (!r->ended && d->eof(r->dst, &r->out, &e) != DIALECT_DONE)
            fail(r, &e);
        else
            r->ended = true;
        flush(r);
        return;
    }
    struct buf json;
    buf_init(&json, NONSTREAM_MAX);
    buf_count(&json);
    r->dst->status = (int)r->up_status;
    jarena_begin(); /* the answer's cJSON tree dies inside complete */
    int rc = d->complete(r->dst, r->out.p ? r->out.p : "", r->out.len, &json, &e);
    jarena_end();
    r->prompt_tokens = r->dst->prompt_tokens;
    r->completion_tokens = r->dst->completion_tokens;
    if (rc < 0) {
        buf_free(&json);
        buf_reset(&r->out);
        fail(r, &e);
        return;
    }
    buf_free(&r->out);
    r->out = json;
    r->ended = true;
    flush(r);
}

static void client_gone(struct worker_watch *wt, uint32_t events);

/* Watch a suspended connection's socket for the client hanging up. */
static void watch_hangup(struct request *r)
{
    if (r->hangup.fd >= 0)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    r->hangup.on_event = client_gone;
    r->hangup.ctx = r;
    worker_watch(r->w, &r->hangup, ci->connect_fd, EPOLLRDHUP);
}

/* A queued request: its queue time is bounded, and a backend that went down
 * meanwhile is not waited for. */
static void tick_queued(struct request *r, int64_t now)
{
    const struct cfg_limits *l = &r->cfg->limits;
    struct apierr e;
    if (r->suspended)
        watch_hangup(r);
    if (now - r->t_queued >= (int64_t)l->queue_timeout_s * 1000) {
        leave_queue(r);
        r->queue_ms = (long)(now - r->t_queued);
        apierr_set(&e, 503, APIERR_API, "backend_unavailable", NULL,
                   "Every backend that serves '%s' stayed busy for %u s "
                   "(limits.queue_timeout_s); retry shortly",
                   r->model, (unsigned)l->queue_timeout_s);
        e.retry_after_s = BUSY_RETRY_AFTER_S;
        fail(r, &e);
        return;
    }
    if (!backends_is_up(r->snap->backends, r->backend)) {
        leave_queue(r);
        if (route(r, &e) < 0)
            fail(r, &e);
    }
}

void engine_granted(struct request *r)
{
    backends_taken(r->snap->backends, &r->waiter);
    r->queued = false;
    r->holds_slot = true; /* the slot came with the grant */
    int64_t now = now_ms();
    r->queue_ms += (long)(now - r->t_queued);
    struct route_ask ask;
    ask_of(r, &ask);
    enum backend_thinking thinking = THINKING_UNKNOWN;
    long k = backends_name_on(r->snap->backends, r->backend, &ask, &thinking);
    struct apierr e;
    if (k < 0) {
        /* It went down or lost the model while we waited: choose again. */
        release_route(r);
        if (route(r, &e) < 0)
            fail(r, &e);
        return;
    }
    if (send_to(r, r->backend, ask.names[k], thinking, &e) < 0)
        fail(r, &e);
}

/* The backend is too slow for a limit: drop the transfer, answer 504. */
static void time_out(struct request *r, const char *what, const char *limit, unsigned seconds)
{
    struct apierr e;
    abort_upstream(r);
    apierr_set(&e, 504, APIERR_API, "upstream_timeout", NULL, "Backend %s %s %u s (limits.%s)",
               backend_name(r), what, seconds, limit);
    fail(r, &e);
}

void engine_tick(struct worker_entry *ent, int64_t now)
{
    struct request *r = request_of(ent, live);
    if (!r->route->dialect || r->phase == PHASE_BODY || r->ended)
        return;
    if (r->queued) {
        tick_queued(r, now);
        return;
    }
    if (!r->easy)
        return;
    /* The client's socket is watched for a hang-up from the first tick that
     * finds the request suspended (EVENTLOOP.md P3): EPOLLRDHUP is level-
     * triggered, so a client that already left is seen at once, and a client
     * is never noticed later than one tick after leaving. Most requests end
     * before their first tick and never pay the two epoll_ctl calls. The watch
     * then stays until the request completes (engine_completed drops it while
     * the fd is still open, so a reused fd number can never fire it). */
    if (r->suspended)
        watch_hangup(r);
    const struct cfg_limits *l = &r->cfg->limits;
    /* While a streamed upload is still arriving, the backend cannot answer
     * yet: what counts is that bytes keep moving (either way), and the
     * first-token clock starts when the upload is complete. */
    if (r->uploading && !r->upload_done) {
        if (now - r->t_last_up >= (int64_t)l->idle_stream_timeout_s * 1000)
            time_out(r, "saw no progress in the upload for", "idle_stream_timeout_s",
                     l->idle_stream_timeout_s);
        return;
    }
    /* A non-streamed answer must be complete within the limit (the client
     * waits for all of it): its first byte proves nothing, since a backend
     * can dribble the rest. */
    if ((!r->t_first || !r->stream) &&
        now - r->t_sent >= (int64_t)l->first_token_timeout_s * 1000) {
        time_out(r,
                 r->stream ? "did not start answering within" : "did not finish answering within",
                 "first_token_timeout_s", l->first_token_timeout_s);
        return;
    }
    /* Upstream silence (no complete line) counts only while we are reading
     * (P6): unpausing restarts it. */
    if (r->stream && r->t_first && !r->paused &&
        now - r->t_last_up >= (int64_t)l->idle_stream_timeout_s * 1000) {
        time_out(r, "sent nothing for", "idle_stream_timeout_s", l->idle_stream_timeout_s);
        return;
    }
    const struct dialect *d = r->route->dialect;
    if (r->stream && d->keepalive && now >= r->t_next_keepalive && r->out.len == 0) {
        if (d->keepalive(&r->out) == 0) {
            r->keepalive_sent = true;
            flush(r);
        }
    }
}

static void client_gone(struct worker_watch *wt, uint32_t events)
{
    (void)events;
    struct request *r = wt->ctx;
    worker_unwatch(r->w, &r->hangup);
    r->client_gone = true;
    r->cancelled_upstream |= r->easy != NULL;
    /* A half-close (FIN after the request) counts too: at the socket it is
     * what an aborted client sends, and the backend is freed at once. */
    if (!r->err.status)
        apierr_set(&r->err, 499, APIERR_INVALID, "client_closed", NULL,
                   "The client closed the connection before the answer was complete");
    abort_upstream(r);
    request_resume(r); /* MHD finds the EOF and completes the request */
}

void engine_run_task(struct worker_task *t)
{
    struct request *r = request_of(t, task);
    /* Unpause one direction, keeping the other as it is. */
    if (r->want_unpause) {
        r->want_unpause = false;
        if (r->paused && r->easy) {
            r->paused = false;
            r->t_last_up = now_ms();
            curl_easy_pause(r->easy, r->upload_paused ? CURLPAUSE_SEND : CURLPAUSE_CONT);
        }
    }
    if (r->want_upload) {
        r->want_upload = false;
        if (r->upload_paused && r->easy) {
            r->upload_paused = false;
            curl_easy_pause(r->easy, r->paused ? CURLPAUSE_RECV : CURLPAUSE_CONT);
        }
    }
    if (r->want_resume) {
        r->want_resume = false;
        request_resume(r);
    }
}

void engine_shutdown(struct worker_entry *ent)
{
    struct request *r = request_of(ent, live);
    if (r->easy || r->queued) {
        abort_upstream(r);
        struct apierr e;
        apierr_set(&e, 503, APIERR_API, "backend_unavailable", NULL,
                   "The gateway is shutting down; retry the request");
        fail(r, &e);
    }
    r->want_resume = false;
    request_resume(r);
}

void engine_completed(struct request *r, enum MHD_RequestTerminationCode toe)
{
    worker_unwatch(r->w, &r->hangup);
    if (r->easy || r->queued) {
        if (r->queued)
            r->queue_ms += (long)(now_ms() - r->t_queued);
        r->cancelled_upstream |= r->easy != NULL;
        abort_upstream(r);
        if (!r->err.status)
            apierr_set(&r->err, 499, APIERR_INVALID, "client_closed", NULL,
                       "The client closed the connection before the answer was complete");
    } else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->phase == PHASE_STREAMING &&
               !r->err.status) {
        apierr_set(&r->err, 499, APIERR_INVALID, "client_closed", NULL,
                   "The connection ended before the answer was delivered");
    }
}

void engine_release(struct request *r)
{
    abort_upstream(r);
    r->upstream_model = NULL; /* it may point into model */
    free(r->model);
    r->model = NULL;
    if (r->dst_live)
        r->route->dialect->release(r->dst);
    r->dst_live = false;
    ndjson_free(&r->nd);
    buf_free(&r->window);
}
