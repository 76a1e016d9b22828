#include "relay.h"

#include "auth.h"
#include "backends.h"
#include "jarena.h"
#include "rand.h"
#include "log.h"
#include "request.h"
#include "router.h"
#include "server.h"
#include "snapshot.h"
#include "sse.h"
#include "upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Back-pressure (EVENTLOOP.md P6/P7): the transfer is paused while more than
 * OUT_HIGH bytes wait for the client and resumed below OUT_LOW. The hard
 * ceiling only has to hold what one curl write (at most UPSTREAM_RECV_BUFFER
 * bytes, or one long NDJSON line completed by it) can turn into, so a paused
 * transfer can always make progress. */
#define OUT_HIGH (64u << 10)
#define OUT_LOW (16u << 10)
#define OUT_STREAM_MAX (64u << 20)
#define NONSTREAM_MAX (64u << 20) /* a whole non-streamed native answer */
#define MAX_NDJSON_LINE (16u << 20)
/* curl's receive buffer per transfer (its default is 16 KiB). A token line
 * is ~150 bytes; with thousands of slow streams open this buffer is a good
 * part of what each one costs, and a whole non-streamed answer just takes a
 * few more reads. */
#define UPSTREAM_RECV_BUFFER 2048L

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
static void release_route(struct request *r)
{
    struct backends *b = r->snap->backends;
    backends_leave(b, &r->waiter);
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
        upstream_release(r->w, r->easy);
        r->easy = NULL;
        r->paused = false;
    }
    release_route(r);
}

/* The first answer line (or byte, non-streamed) from the backend. */
static void first_answer(struct request *r, int64_t now)
{
    r->t_first = now;
    backends_answered(r->snap->backends, r->backend, r->upstream_model, r->cold, now);
    r->cold = false;
}

/* New bytes (or the end) are in r->out: make sure the client gets them. */
static void flush(struct request *r)
{
    if (r->client_gone)
        return;
    r->t_next_keepalive = now_ms() + (int64_t)r->cfg->limits.keepalive_interval_s * 1000;
    if (r->suspended)
        request_wake(r);
}

/* The answer failed. Before anything reached the client it becomes a real
 * HTTP error; after that, one final SSE error frame and no [DONE]. */
static void fail(struct request *r, const struct apierr *e)
{
    if (r->ended)
        return;
    r->err = *e;
    r->ended = true;
    bool started = r->phase == PHASE_STREAMING || r->out.len > 0 || r->keepalive_sent;
    if (r->stream && started && sse_error(&r->out, e) < 0)
        r->cut = true;
    flush(r);
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud);

static int start_transfer(struct request *r)
{
    const struct upstream_target *t = &r->snap->targets[r->backend];
    CURL *c = upstream_easy(r->w);
    if (!c)
        return -1;
    curl_easy_setopt(c, CURLOPT_URL, t->chat_url);
    curl_easy_setopt(c, CURLOPT_PRIVATE, r);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->upbody.p);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->upbody.len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    /* Backends are reached directly: an http_proxy in the daemon's environment
     * must not reroute them (and looking it up costs five getenv calls). */
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, UPSTREAM_RECV_BUFFER);
    /* No CURLOPT_ACCEPT_ENCODING: a paused transfer would keep inflating into
     * memory (EVENTLOOP.md §3). */
    if (curl_multi_add_handle(r->w->multi, c) != CURLM_OK) {
        upstream_release(r->w, c);
        return -1;
    }
    r->easy = c;
    return 0;
}

/* What r asks the router for: the model's names (an alias may give several)
 * and the backends it may use. */
static void ask_of(const struct request *r, struct route_ask *ask)
{
    const struct cfg_alias *alias = router_alias(r->cfg, r->model);
    *ask = (struct route_ask){
        .names = alias ? alias->models : (const char *const *)&r->model,
        .nnames = alias ? alias->nmodels : 1,
        .only = alias && alias->backends ? alias->backend_index : NULL,
        .nonly = alias ? alias->nbackends : 0,
        .tried = r->tried,
        .ntried = r->attempts,
    };
}

/* Put name in the native body: it starts {"model":"<name>", (chat.c). */
static int set_model(struct buf *body, const char *name)
{
    static const char head[] = "{\"model\":";
    size_t h = sizeof head - 1, i = h + 1;
    if (body->len <= h || memcmp(body->p, head, h) != 0 || body->p[h] != '"')
        return -1;
    while (i < body->len && body->p[i] != '"')
        i += body->p[i] == '\\' ? 2 : 1;
    if (i >= body->len)
        return -1;
    struct buf nb;
    buf_init(&nb, body->max);
    if (buf_append(&nb, head, h) < 0 || buf_json_str(&nb, name, strlen(name)) < 0 ||
        buf_append(&nb, body->p + i + 1, body->len - i - 1) < 0) {
        buf_free(&nb);
        return -1;
    }
    buf_free(body);
    *body = nb;
    return 0;
}

/* Ask for the model as name from now on (a backend may list it under another
 * of the alias's names). -1: out of memory. */
static int use_name(struct request *r, const char *name)
{
    if (name != r->upstream_model && strcmp(name, r->upstream_model) != 0 &&
        set_model(&r->upbody, name) < 0)
        return -1;
    r->upstream_model = name;
    return 0;
}

/* Send r to backend idx, whose slot r holds, asking for name. */
static int send_to(struct request *r, int idx, const char *name, struct apierr *e)
{
    r->backend = idx;
    r->holds_slot = true;
    if (use_name(r, name) < 0) {
        release_route(r);
        return apierr_set(e, 500, APIERR_API, "internal_error", NULL, "Out of memory");
    }
    int64_t now = now_ms();
    r->cold = backends_begin(r->snap->backends, idx, name, now);
    if (r->cs_live)
        chat_stream_set_backend(&r->cs, backend_name(r));
    r->up_status = 0;
    buf_reset(&r->uperr);
    /* A backend that failed over may have left half a line behind. */
    if (r->cs_live && ndjson_pending(&r->nd)) {
        ndjson_free(&r->nd);
        ndjson_init(&r->nd, MAX_NDJSON_LINE);
    }
    if (start_transfer(r) < 0) {
        release_route(r);
        return apierr_set(e, 500, APIERR_API, "internal_error", NULL,
                          "Could not start the request");
    }
    r->tried[r->attempts++] = idx;
    r->t_sent = r->t_last_up = now;
    r->t_next_keepalive = now + (int64_t)r->cfg->limits.keepalive_interval_s * 1000;
    return 0;
}

/*
 * Choose a backend for r (choice.h's rules; not one it tried already) and
 * send r there, or queue it for a slot there. -1: e says why not: 404 when
 * no backend has the model, 503 when those that have it are down or full.
 */
static int route(struct request *r, struct apierr *e)
{
    struct route_ask ask;
    ask_of(r, &ask);
    r->waiter.owner = r;
    r->waiter.inbox = &r->w->inbox;
    int idx = -1;
    size_t k = 0;
    int64_t now = now_ms();
    enum choice_outcome o = backends_route(r->snap->backends, &ask, &r->waiter, now, &idx, &k);
    switch (o) {
    case CHOICE_SEND:
        return send_to(r, idx, ask.names[k], e);
    case CHOICE_QUEUE:
        r->backend = idx;
        if (use_name(r, ask.names[k]) < 0) {
            backends_leave(r->snap->backends, &r->waiter);
            return apierr_set(e, 500, APIERR_API, "internal_error", NULL, "Out of memory");
        }
        r->t_queued = now;
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

/* Route the parsed request and start its transfer. */
static enum MHD_Result begin(struct request *r, const struct chat_req *creq)
{
    struct apierr e = {0};
    r->model = strdup(creq->model);
    if (!r->model) {
        apierr_set(&e, 500, APIERR_API, "internal_error", NULL, "Out of memory");
        return server_reply_error(r, &e);
    }
    r->stream = creq->stream;
    /* The scope is on the name the client asked for, alias or not. */
    if (auth_scope(r, r->model, &e) < 0)
        return server_reply_error(r, &e);

    const struct cfg_alias *alias = router_alias(r->cfg, r->model);
    r->upstream_model = alias ? alias->model : r->model;
    /* Built for the first of the model's names; send_to() changes the name
     * for a backend that lists the model under another. */
    if (chat_req_to_ollama(creq, r->upstream_model, alias ? alias->options : NULL, &r->upbody, &e) <
        0)
        return server_reply_error(r, &e);

    rand_id(r->chat_id, sizeof r->chat_id, "chatcmpl-");
    r->created = (long)time(NULL);
    if (r->stream) {
        if (chat_stream_init(&r->cs, r->model, creq->include_usage, r->chat_id, r->created) < 0) {
            apierr_set(&e, 500, APIERR_API, "internal_error", NULL, "Out of memory");
            return server_reply_error(r, &e);
        }
        r->cs_live = true;
        ndjson_init(&r->nd, MAX_NDJSON_LINE);
        r->out.max = OUT_STREAM_MAX;
    } else {
        r->out.max = NONSTREAM_MAX;
    }
    if (route(r, &e) < 0)
        return server_reply_error(r, &e);
    r->phase = PHASE_UPSTREAM;
    request_suspend(r);
    return MHD_YES;
}

enum MHD_Result relay_start(struct request *r)
{
    struct apierr e = {0};
    struct chat_req creq;
    /* The parsed request lives only in this call: its cJSON tree comes from
     * the thread's arena (jarena.h), and once translated nothing of it is
     * kept, because with thousands of streams open every byte per stream
     * counts. */
    jarena_begin();
    if (chat_req_parse(&creq, r->body.p ? r->body.p : "", r->body.len, &e) < 0) {
        jarena_end();
        return server_reply_error(r, &e);
    }
    enum MHD_Result rc = begin(r, &creq);
    chat_req_free(&creq);
    jarena_end();
    buf_free(&r->body);
    return rc;
}

enum MHD_Result relay_resumed(struct request *r)
{
    if (r->stream && (r->out.len || r->keepalive_sent))
        return server_reply_stream(r);
    if (r->ended) {
        if (r->err.status)
            return server_reply_error(r, &r->err);
        return server_reply_buf(r, 200, &r->out);
    }
    request_suspend(r); /* woken early: nothing to send yet */
    return MHD_YES;
}

ssize_t relay_read(struct request *r, char *dst, size_t max)
{
    if (r->client_gone)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (r->out.len) {
        size_t n = r->out.len < max ? r->out.len : max;
        memcpy(dst, r->out.p, n);
        buf_consume(&r->out, n);
        if (r->paused && r->out.len < OUT_LOW) {
            r->want_unpause = true;
            worker_defer(r->w, r);
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
    if (!r->t_first)
        first_answer(r, now_ms());
    r->up_lines++;
    struct apierr e = {0};
    int rc = chat_stream_line(&r->cs, line, len, &r->out, &e);
    if (rc == CHAT_MORE)
        return 0;
    if (rc == CHAT_DONE) {
        r->ended = true;
        r->prompt_tokens = r->cs.prompt_tokens;
        r->completion_tokens = r->cs.completion_tokens;
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
    r->t_last_up = now_ms();
    if (r->up_status != 200) {
        buf_append(&r->uperr, p, n); /* beyond 64 KiB the start is enough */
        return n;
    }
    if (r->ended)
        return r->err.status ? CURL_WRITEFUNC_ERROR : n;
    if (!r->stream) {
        if (!r->t_first)
            first_answer(r, r->t_last_up);
        if (buf_append(&r->out, p, n) < 0) {
            struct apierr e;
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
    if (r->out.len >= OUT_HIGH) {
        r->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    size_t before = r->out.len;
    jarena_begin(); /* each line's cJSON tree dies within on_line */
    int rc = ndjson_feed(&r->nd, p, n, on_line, r);
    jarena_end();
    if (rc < 0) {
        struct apierr e;
        apierr_set(&e, 502, APIERR_API, "upstream_error", NULL,
                   "Backend %s sent a line longer than %u bytes", backend_name(r), MAX_NDJSON_LINE);
        fail(r, &e);
    }
    if (r->out.len != before || r->ended)
        flush(r);
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
    if (r->t_first || r->up_lines || r->client_gone || r->w->draining)
        return false;
    if (r->attempts >= MAX_ATTEMPTS)
        return false;
    if (result != CURLE_OK)
        return result != CURLE_ABORTED_BY_CALLBACK && result != CURLE_WRITE_ERROR;
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
    log_info("request %s: backend %s failed before answering (%s): %s %s", r->id, failed, why,
             r->easy ? "retried on" : "queued for", backend_name(r));
    return true;
}

void relay_upstream_done(struct request *r, CURLcode result)
{
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
    if (result != CURLE_OK) {
        apierr_set(&e, 502, APIERR_API, "upstream_error", NULL, "Backend %s failed: %s",
                   backend_name(r), curl_easy_strerror(result));
        fail(r, &e);
        return;
    }
    if (r->up_status != 200) {
        chat_upstream_error((int)r->up_status, r->uperr.p ? r->uperr.p : "", r->uperr.len,
                            backend_name(r), &e);
        fail(r, &e);
        return;
    }
    if (r->stream) {
        jarena_begin();
        ndjson_finish(&r->nd, on_line, r);
        jarena_end();
        if (!r->ended && chat_stream_eof(&r->cs, &e) < 0)
            fail(r, &e);
        flush(r);
        return;
    }
    struct buf json;
    buf_init(&json, NONSTREAM_MAX);
    jarena_begin(); /* the answer's cJSON tree dies inside chat_complete */
    int rc = chat_complete(r->out.p ? r->out.p : "", r->out.len, r->model, r->chat_id, r->created,
                           backend_name(r), &json, &r->prompt_tokens, &r->completion_tokens, &e);
    jarena_end();
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

/* A queued request: its queue time is bounded, and a backend that went down
 * meanwhile is not waited for. */
static void tick_queued(struct request *r, int64_t now)
{
    const struct cfg_limits *l = &r->cfg->limits;
    struct apierr e;
    if (r->suspended)
        worker_watch_hangup(r->w, r);
    if (now - r->t_queued >= (int64_t)l->queue_timeout_s * 1000) {
        backends_leave(r->snap->backends, &r->waiter);
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
        backends_leave(r->snap->backends, &r->waiter);
        if (route(r, &e) < 0)
            fail(r, &e);
    }
}

void relay_granted(struct request *r)
{
    r->waiter.state = WAITER_IDLE;
    r->holds_slot = true; /* the slot came with the grant */
    int64_t now = now_ms();
    r->queue_ms += (long)(now - r->t_queued);
    struct route_ask ask;
    ask_of(r, &ask);
    long k = backends_name_on(r->snap->backends, r->backend, &ask);
    struct apierr e;
    if (k < 0) {
        /* It went down or lost the model while we waited: choose again. */
        release_route(r);
        if (route(r, &e) < 0)
            fail(r, &e);
        return;
    }
    if (send_to(r, r->backend, ask.names[k], &e) < 0)
        fail(r, &e);
}

void relay_tick(struct request *r, int64_t now)
{
    if (r->route != ROUTE_CHAT || r->ended)
        return;
    if (r->waiter.state == WAITER_QUEUED) {
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
     * then stays until the request completes (relay_completed drops it while
     * the fd is still open, so a reused fd number can never fire it). */
    if (r->suspended)
        worker_watch_hangup(r->w, r);
    const struct cfg_limits *l = &r->cfg->limits;
    struct apierr e;
    if (!r->t_first && now - r->t_sent >= (int64_t)l->first_token_timeout_s * 1000) {
        abort_upstream(r);
        apierr_set(&e, 504, APIERR_API, "upstream_timeout", NULL,
                   "Backend %s did not start answering within %u s "
                   "(limits.first_token_timeout_s)",
                   backend_name(r), (unsigned)l->first_token_timeout_s);
        fail(r, &e);
        return;
    }
    /* Upstream silence counts only while we are reading (P6). */
    if (r->t_first && !r->paused &&
        now - r->t_last_up >= (int64_t)l->idle_stream_timeout_s * 1000) {
        abort_upstream(r);
        apierr_set(&e, 504, APIERR_API, "upstream_timeout", NULL,
                   "Backend %s sent nothing for %u s (limits.idle_stream_timeout_s)",
                   backend_name(r), (unsigned)l->idle_stream_timeout_s);
        fail(r, &e);
        return;
    }
    if (r->stream && now >= r->t_next_keepalive && r->out.len == 0) {
        if (sse_comment(&r->out, "keep-alive") == 0) {
            r->keepalive_sent = true;
            flush(r);
        }
    }
}

void relay_client_gone(struct request *r)
{
    worker_unwatch_hangup(r->w, r);
    r->client_gone = true;
    abort_upstream(r);
    request_resume(r); /* MHD finds the EOF and completes the request */
}

void relay_run_deferred(struct request *r)
{
    if (r->want_unpause) {
        r->want_unpause = false;
        if (r->paused && r->easy) {
            r->paused = false;
            curl_easy_pause(r->easy, CURLPAUSE_CONT); /* may deliver data at once */
        }
    }
    if (r->want_resume) {
        r->want_resume = false;
        request_resume(r);
    }
}

void relay_shutdown(struct request *r)
{
    if (r->easy || r->waiter.state != WAITER_IDLE) {
        abort_upstream(r);
        struct apierr e;
        apierr_set(&e, 503, APIERR_API, "backend_unavailable", NULL,
                   "The gateway is shutting down; retry the request");
        fail(r, &e);
    }
    r->want_resume = false;
    request_resume(r);
}

void relay_completed(struct request *r, enum MHD_RequestTerminationCode toe)
{
    worker_unwatch_hangup(r->w, r);
    if (r->easy || r->waiter.state != WAITER_IDLE) {
        if (r->waiter.state == WAITER_QUEUED)
            r->queue_ms += (long)(now_ms() - r->t_queued);
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

void relay_release(struct request *r)
{
    abort_upstream(r);
    r->upstream_model = NULL; /* it may point into model */
    free(r->model);
    r->model = NULL;
    if (r->cs_live) {
        chat_stream_free(&r->cs);
        ndjson_free(&r->nd);
    }
    r->cs_live = false;
}
