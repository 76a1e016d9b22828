#include "handler.h"

#include "accesslog.h"
#include "auth.h"
#include "engine.h"
#include "log.h"
#include "reply.h"
#include "request.h"
#include "routes.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The upload is complete (or the connection was resumed): act on it. */
static enum MHD_Result dispatch(struct request *r)
{
    if (r->phase == PHASE_UPSTREAM)
        return engine_resumed(r);
    if (r->phase != PHASE_BODY)
        return MHD_YES; /* a response is queued already */
    if (r->refused)
        return reply_error(r, &r->err);
    struct apierr e;
    if (r->body_too_big) {
        apierr_set(&e, 413, APIERR_INVALID, "request_too_large", NULL,
                   "Request body is larger than %zu bytes (limits.max_body_bytes)", r->body.max);
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

/*
 * A refused request is answered once its upload has been read and dropped:
 * answering while the client is still sending makes the kernel reset the
 * connection over the unread bytes, and many clients (Node's fetch among
 * them) then lose the answer and report a network error instead of the 401.
 * Draining is bounded by limits.max_body_bytes, as a kept body is; beyond it,
 * or when the client waits for "100 Continue", the answer goes out at once.
 */
static enum MHD_Result refuse(struct request *r, const struct apierr *e)
{
    r->err = *e;
    long long n = declared_body(r->conn);
    const char *expect = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Expect");
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
    (void)version;
    struct worker *w = cls;
    struct request *r = *req_cls;
    if (!r) {
        r = request_new(w, conn, url, method);
        if (!r)
            return MHD_NO;
        *req_cls = r;
        /* Credentials and limits are checked before the body is read: a
         * refused request is never kept in memory and never reaches a backend. */
        struct apierr e;
        /* Switched off, the native API is not there at all: 404 before the key. */
        if ((r->route->flags & ROUTE_NATIVE) && !r->cfg->native_api) {
            apierr_set(&e, 404, APIERR_INVALID, "not_found", NULL,
                       "Ollama's native API is off on this gateway (native_api: false); "
                       "use the OpenAI API under /v1");
            return refuse(r, &e);
        }
        if (auth_request(r, &e) < 0)
            return refuse(r, &e);
        /* An upload that streams to the backend starts now, not at its end. */
        if ((r->route->flags & ROUTE_UPLOAD) && strcmp(method, "POST") == 0)
            return dispatch(r);
        /* A declared body over the limit is refused before it is read. */
        long long n = declared_body(conn);
        if (n > (long long)r->body.max) {
            r->body_too_big = true;
            return dispatch(r);
        }
        return MHD_YES;
    }
    if (r->uploading)
        return engine_upload(r, upload_data, upload_size);
    if (*upload_size) {
        r->body_seen += *upload_size;
        if (r->refused) {
            if (r->body_seen > r->body.max)
                return reply_error(r, &r->err);
        } else if (buf_append(&r->body, upload_data, *upload_size) < 0) {
            r->body_too_big = true; /* over the limit: answered now, see refuse() */
            return dispatch(r);
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
    (void)cls;
    (void)conn;
    struct request *r = *req_cls;
    if (!r)
        return;
    engine_completed(r, toe);
    auth_finish(r);
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

const struct worker_hooks handler_hooks = {
    .tick = engine_tick,
    .shutdown = engine_shutdown,
    .wake = on_wake,
    .access = on_access,
    .completed = on_completed,
};
