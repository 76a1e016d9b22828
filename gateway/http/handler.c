#include "handler.h"

#include "accesslog.h"
#include "auth.h"
#include "conntrack.h"
#include "cors.h"
#include "engine.h"
#include "log.h"
#include "membudget.h"
#include "metrics.h"
#include "ratelimit_shared.h"
#include "reply.h"
#include "request.h"
#include "routes.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Retry-After when the memory budget is spent: streams drain in seconds. */
#define BUDGET_RETRY_AFTER_S 2

/* The budget is spent (true) or not: said once on each change, not per
 * request. Any worker may flip it. */
static atomic_bool budget_spent;

/*
 * The memory budget (limits.max_buffered_bytes, core/membudget.h) admits a
 * request that goes to a backend only while the bytes held for requests in
 * flight, plus the body it declares, fit under it. Requests answered here
 * (health, model lists) hold next to nothing and stay answered, so probes
 * see a live gateway. In-flight requests are never cut for it.
 */
static bool over_budget(const struct request *r, long long declared)
{
    size_t limit = r->cfg->limits.max_buffered_bytes;
    if (!limit || !r->route->dialect)
        return false;
    size_t used = membudget_used();
    size_t want = declared > 0 ? (size_t)declared : 0;
    bool over = used >= limit || want > limit - used;
    if (over != atomic_load_explicit(&budget_spent, memory_order_relaxed) &&
        atomic_exchange_explicit(&budget_spent, over, memory_order_relaxed) != over) {
        if (over)
            log_warn("memory budget spent: %zu bytes held for requests (limits.max_buffered_bytes "
                     "%zu); new requests get 503 until it drains",
                     used, limit);
        else
            log_info("memory budget: %zu bytes held (limits.max_buffered_bytes %zu); new "
                     "requests are admitted again",
                     used, limit);
    }
    return over;
}

static void too_large(const struct request *r, struct apierr *e)
{
    apierr_set(e, 413, APIERR_INVALID, "request_too_large", NULL,
               "Request body is larger than %zu bytes (limits.max_body_bytes)", r->body.max);
}

/* The upload is complete (or the connection was resumed): act on it. */
static enum MHD_Result dispatch(struct request *r)
{
    /* The body is in (or streams to a backend under engine_upload's idle
     * rule): no deadline while the request is answered. */
    conntrack_deadline(conntrack_of(r->conn), -1, NULL);
    if (r->phase == PHASE_UPSTREAM)
        return engine_resumed(r);
    if (r->phase != PHASE_BODY)
        return MHD_YES; /* a response is queued already */
    if (r->rl_waiting) {
        /* waits for the shared limits' answer, which resumes it */
        request_suspend(r);
        return MHD_YES;
    }
    if (r->refused)
        return reply_error(r, &r->err);
    struct apierr e;
    if (r->body_too_big) {
        too_large(r, &e);
        return reply_error(r, &e);
    }
    const struct route *rt = r->route;
    if (!routes_allows(rt, r->method)) {
        apierr_set(&e, 405, APIERR_INVALID, "method_not_allowed", NULL,
                   "%s is not allowed on %s; use %s", r->method, r->path, routes_allowed(rt));
        return reply_error(r, &e);
    }
    if (rt->dialect)
        return engine_start(r);
    return rt->handler(r);
}

/* The declared upload size: -1 when there is none, -2 when unknown (chunked). */
static long long declared_body(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end == cl || *end != '\0' || n > (unsigned long long)LLONG_MAX)
            return -2;
        return n ? (long long)n : -1;
    }
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding") ? -2 : -1;
}

/* What the request's framing headers say, gathered over all of them. */
struct framing {
    const char *length; /* the first Content-Length */
    bool lengths_differ, bad_length, chunked;
    unsigned codings;    /* Transfer-Encoding headers */
    bool other_coding;   /* a Transfer-Encoding that is not just "chunked" */
    bool folded_framing; /* a framing header continued on the next line */
};

/* libmicrohttpd 0.9.75 appends a folded line (obs-fold: a line starting with
 * a space) to the header's name, not its value: "Transfer-Encoding:" then
 * " chunked" becomes a header named "Transfer-Encodingchunked". A proxy that
 * unfolds it sees a chunked body where we would see none or a Content-Length
 * one, so a name that merely starts with a framing header's name is refused. */
static bool extends(const char *key, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(key, name, n) == 0 && key[n] != '\0';
}

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    struct framing *f = cls;
    if (extends(key, "Transfer-Encoding") || extends(key, "Content-Length")) {
        f->folded_framing = true;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->chunked = true;
        f->codings++;
        /* Only "chunked" frames a body we can find the end of; with any
         * other coding libmicrohttpd reads until the client closes. */
        if (strcasecmp(value, "chunked") != 0)
            f->other_coding = true;
    } else if (strcasecmp(key, "Content-Length") == 0) {
        size_t n = strspn(value, "0123456789");
        if (n == 0 || n > 18 || value[n] != '\0')
            f->bad_length = true;
        if (!f->length)
            f->length = value;
        else if (strcmp(f->length, value) != 0)
            f->lengths_differ = true;
    }
    return MHD_YES;
}

/*
 * libmicrohttpd 0.9.75 takes two different Content-Lengths, or one with
 * Transfer-Encoding, and keeps the connection for what it thinks comes next:
 * a proxy in front of us that frames the body the other way would have us
 * read a second, smuggled request. Such a request gets 400, and its
 * connection is closed, so nothing after it is ever read as a request.
 */
static const char *bad_framing(struct MHD_Connection *conn)
{
    struct framing f = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, framing_header, &f);
    if (f.bad_length)
        return "Content-Length is not a decimal number";
    if (f.lengths_differ)
        return "two different Content-Length headers";
    if (f.length && f.chunked)
        return "both Content-Length and Transfer-Encoding";
    if (f.folded_framing)
        return "a Content-Length or Transfer-Encoding header folded over two lines";
    if (f.codings > 1)
        return "more than one Transfer-Encoding header";
    if (f.other_coding)
        return "a Transfer-Encoding other than chunked";
    return NULL;
}

/*
 * A refused request is answered once its upload has been read and dropped:
 * answering while the client is still sending makes the kernel reset the
 * connection over the unread bytes, and many clients (Node's fetch among
 * them) then lose the answer and report a network error instead of the 401.
 * Draining is bounded in time by limits.body_timeout_s; a declared body over
 * limits.max_body_bytes, or a client waiting for "100 Continue", gets the
 * answer at once, before any of the body is sent.
 */
static enum MHD_Result refuse(struct request *r, const struct apierr *e)
{
    r->err = *e;
    long long n = declared_body(r->conn);
    const char *expect = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Expect");
    if (n == -1 && r->rl_waiting) {
        /* the shared guard's answer may make it a 429 (authguard_shared.h) */
        r->refused = true;
        return MHD_YES;
    }
    if (n == -1 || n > (long long)r->body.max ||
        (expect && strcasecmp(expect, "100-continue") == 0))
        return reply_error(r, &r->err);
    r->refused = true;
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_size, void **req_cls)
{
    struct worker *w = cls;
    struct request *r = *req_cls;
    if (!r) {
        r = request_new(w, conn, url, method);
        if (!r) /* answered without a request: nothing to log or free */
            return reply_oom_conn(conn, routes_match(url));
        *req_cls = r;
        r->http11 = strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
        metrics_started(w);
        conntrack_in_request(conntrack_of(conn), true);
        struct apierr e;
        const char *why = bad_framing(conn);
        if (why) {
            apierr_set(&e, 400, APIERR_INVALID, "invalid_request", NULL,
                       "The request's framing is ambiguous: %s", why);
            r->close = true;
            return reply_error(r, &e);
        }
        /* The head is in; the body, if any, has its own deadline. */
        conntrack_deadline(conntrack_of(conn), (int64_t)w->gw->cfg->limits.body_timeout_s * 1000,
                           "request body not complete within limits.body_timeout_s");
        /* Switched off, the native API is not there at all: 404 before the
         * key, and before a preflight, which would offer its methods. */
        if ((r->route->flags & ROUTE_NATIVE) && !r->cfg->native_api) {
            apierr_set(&e, 404, APIERR_INVALID, "not_found", NULL,
                       "Ollama's native API is off on this gateway (native_api: false); "
                       "use the OpenAI API under /v1");
            return refuse(r, &e);
        }
        /* A browser's preflight: no key, no backend (cors.h). */
        if (cors_is_preflight(r))
            return cors_preflight(r);
        /* Credentials and limits are checked before the body is read: a
         * refused request is never kept in memory and never reaches a backend. */
        /* Before the key: a refusal must cost nothing, not even a request
         * off the key's per-minute allowance. */
        long long n = declared_body(conn);
        if (over_budget(r, n <= (long long)r->body.max ? n : 0)) {
            apierr_set(&e, 503, APIERR_API, "server_overloaded", NULL,
                       "The gateway holds as many bytes for requests in flight as it may "
                       "(limits.max_buffered_bytes); retry shortly");
            e.retry_after_s = BUDGET_RETRY_AFTER_S;
            return refuse(r, &e);
        }
        if (auth_request(r, &e) < 0)
            return refuse(r, &e);
        /* An upload that streams to the backend starts now, not at its end. */
        if ((r->route->flags & ROUTE_UPLOAD) && strcmp(method, "POST") == 0)
            return dispatch(r);
        /* A declared body over the limit is refused before it is read. A
         * client that did not ask "100 Continue" is already sending it, and
         * an answer sent now would be lost to the reset that closing over
         * unread bytes makes: up to twice the limit, it is read and dropped
         * first (as chunked ones are), so the client gets its 413; beyond
         * that the connection is not worth the bytes. */
        if (n > (long long)r->body.max) {
            const char *ex = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
            if (n / 2 <= (long long)r->body.max && !(ex && strcasecmp(ex, "100-continue") == 0)) {
                too_large(r, &r->err);
                r->refused = true;
                return MHD_YES;
            }
            r->body_too_big = true;
            return dispatch(r);
        }
        /* A declared body is charged to the budget in full now (its one
         * allocation, exactly its size), so that requests arriving together
         * cannot all be admitted on the same free bytes. */
        if (n > 0 && buf_reserve(&r->body, (size_t)n) < 0) {
            apierr_set(&e, 500, APIERR_API, "internal_error", NULL, "Out of memory");
            return refuse(r, &e);
        }
        return MHD_YES;
    }
    if (r->uploading)
        return engine_upload(r, upload_data, upload_size);
    if (*upload_size) {
        r->body_seen += *upload_size;
        /* libmicrohttpd 0.9.75 cannot queue a response while a body is
         * arriving (the handler's MHD_NO would reset the connection), so a
         * refused body is read and dropped to its end; limits.body_timeout_s
         * bounds how long that may take. */
        int rc = r->refused ? 0 : buf_append(&r->body, upload_data, *upload_size);
        if (rc == BUF_NOMEM) {
            apierr_nomem(&r->err);
            r->refused = true;
        } else if (rc < 0) {
            /* Only a body of unknown length (chunked) gets here: a declared
             * one over the limit was refused before it was read. */
            too_large(r, &r->err);
            r->refused = true;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->client_gone)
        return MHD_NO;
    return dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct worker *w = cls;
    /* A kept-alive connection's next head has its deadline from now. */
    conntrack_deadline(conntrack_of(conn), (int64_t)w->gw->cfg->limits.header_timeout_s * 1000,
                       "request head not complete within limits.header_timeout_s");
    conntrack_in_request(conntrack_of(conn), false);
    struct request *r = *req_cls;
    if (!r)
        return;
    engine_completed(r, toe);
    auth_finish(r);
    /* every route is counted here, the same way, as it is logged */
    metrics_account(r, toe);
    accesslog_write(r, toe);
    request_free(r);
    *req_cls = NULL;
}

static void on_wake(struct worker *w)
{
    /* Slots that other workers handed to requests queued here. */
    struct route_waiter *next;
    for (struct route_waiter *g = route_inbox_take(&w->inbox); g; g = next) {
        next = g->next;
        g->next = NULL;
        engine_granted(g->owner);
    }
}

static void on_tick(struct worker_entry *e, int64_t now)
{
    engine_tick(e, now);
    rls_tick(request_of(e, live), now);
}

const struct worker_hooks handler_hooks = {
    .tick = on_tick,
    .shutdown = engine_shutdown,
    .wake = on_wake,
    .access = on_access,
    .completed = on_completed,
};
