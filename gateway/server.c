#include "server.h"

#include "accesslog.h"
#include "auth.h"
#include "keys.h"
#include "log.h"
#include "models.h"
#include "relay.h"
#include "request.h"
#include "snapshot.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STREAM_BLOCK 1024           /* MHD's chunk buffer for SSE responses */
#define CONNECTION_MEMORY (8 << 10) /* per connection: read buffer, headers, response block */

static void add_headers(struct request *r, struct MHD_Response *resp, const char *content_type)
{
    MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "x-request-id", r->id);
    auth_add_headers(r, resp);
    if (r->err.status && r->err.retry_after_s) {
        char s[16];
        snprintf(s, sizeof s, "%u", r->err.retry_after_s);
        MHD_add_response_header(resp, "Retry-After", s);
    }
    if (r->w->draining)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

static enum MHD_Result queue_json(struct request *r, int status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    add_headers(r, resp, "application/json");
    if (r->err.status && r->err.no_retry)
        MHD_add_response_header(resp, "x-should-retry", "false");
    r->status = status;
    r->phase = PHASE_REPLIED;
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result server_reply_json(struct request *r, int status, const char *body, size_t len)
{
    return queue_json(r, status,
                      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY));
}

enum MHD_Result server_reply_buf(struct request *r, int status, struct buf *body)
{
    size_t len;
    char *p = buf_detach(body, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, p ? p : (char *)"", p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        free(p);
    return queue_json(r, status, resp);
}

enum MHD_Result server_reply_error(struct request *r, const struct apierr *e)
{
    if (e != &r->err)
        r->err = *e;
    struct buf b;
    buf_init(&b, 4096);
    if (apierr_json(e, &b) < 0) {
        buf_free(&b);
        return MHD_NO;
    }
    enum MHD_Result rc = server_reply_json(r, e->status, b.p, b.len);
    buf_free(&b);
    return rc;
}

static ssize_t read_stream(void *cls, uint64_t pos, char *dst, size_t max)
{
    (void)pos;
    return relay_read(cls, dst, max);
}

enum MHD_Result server_reply_stream(struct request *r)
{
    /* No free callback: the request is owned by the completion callback (P9). */
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, read_stream, r, NULL);
    if (!resp)
        return MHD_NO;
    add_headers(r, resp, "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    r->status = 200;
    r->phase = PHASE_STREAMING;
    enum MHD_Result rc = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result reply_status(struct request *r, int status, const char *json)
{
    return server_reply_json(r, status, json, strlen(json));
}

static enum MHD_Result not_found(struct request *r)
{
    struct apierr e;
    apierr_set(&e, 404, APIERR_INVALID, "not_found", NULL, "Unknown route %s %s", r->method,
               r->path);
    return server_reply_error(r, &e);
}

static enum MHD_Result wrong_method(struct request *r, const char *allowed)
{
    struct apierr e;
    apierr_set(&e, 405, APIERR_INVALID, "method_not_allowed", NULL,
               "%s is not allowed on %s; use %s", r->method, r->path, allowed);
    return server_reply_error(r, &e);
}

static bool is_get(const struct request *r)
{
    return strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
}

static enum MHD_Result reply_models(struct request *r, const char *id)
{
    struct buf b;
    buf_init(&b, 16u << 20);
    enum MHD_Result rc;
    if (id) {
        struct apierr e;
        if (auth_scope(r, id, &e) < 0) {
            buf_free(&b);
            return server_reply_error(r, &e);
        }
        if (models_get(r->snap, r->w->gw->started_ms, id, &b) < 0) {
            apierr_set(&e, 404, APIERR_INVALID, "model_not_found", "model",
                       "The model '%s' does not exist", id);
            buf_free(&b);
            return server_reply_error(r, &e);
        }
    } else if (models_list(r->snap, r->key, r->w->gw->started_ms, &b) < 0) {
        buf_free(&b);
        return MHD_NO;
    }
    rc = server_reply_buf(r, 200, &b);
    buf_free(&b);
    return rc;
}

/* The upload is complete (or the connection was resumed): act on it. */
static enum MHD_Result dispatch(struct request *r)
{
    if (r->phase == PHASE_UPSTREAM)
        return relay_resumed(r);
    if (r->phase != PHASE_BODY)
        return MHD_YES; /* a response is queued already */
    if (r->refused)
        return server_reply_error(r, &r->err);
    if (r->body_too_big) {
        struct apierr e;
        apierr_set(&e, 413, APIERR_INVALID, "request_too_large", NULL,
                   "Request body is larger than %zu bytes (limits.max_body_bytes)", r->body.max);
        return server_reply_error(r, &e);
    }
    switch (r->route) {
    case ROUTE_CHAT:
        if (strcmp(r->method, "POST") != 0)
            return wrong_method(r, "POST");
        return relay_start(r);
    case ROUTE_MODELS:
        return is_get(r) ? reply_models(r, NULL) : wrong_method(r, "GET");
    case ROUTE_MODEL:
        return is_get(r) ? reply_models(r, r->path + strlen("/v1/models/"))
                         : wrong_method(r, "GET");
    case ROUTE_HEALTHZ:
        return reply_status(r, 200, "{\"status\":\"ok\"}");
    case ROUTE_READYZ:
        return backends_any_up(r->snap->backends)
                   ? reply_status(r, 200, "{\"status\":\"ready\"}")
                   : reply_status(r, 503, "{\"status\":\"no backend is up\"}");
    case ROUTE_UNKNOWN:
        break;
    }
    return not_found(r);
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
        return server_reply_error(r, &r->err);
    r->refused = true;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
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
        if (auth_request(r, &e) < 0)
            return refuse(r, &e);
        /* A declared body over the limit is refused before it is read. */
        long long n = declared_body(conn);
        if (n > (long long)r->body.max) {
            r->body_too_big = true;
            return dispatch(r);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        r->body_seen += *upload_size;
        if (r->refused) {
            if (r->body_seen > r->body.max)
                return server_reply_error(r, &r->err);
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
    relay_completed(r, toe);
    auth_finish(r);
    accesslog_write(r, toe);
    request_free(r);
    *req_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_debug("libmicrohttpd: %s", msg);
}

struct MHD_Daemon *server_start_daemon(struct worker *w, int fd)
{
    const struct cfg *cfg = w->gw->cfg;
    unsigned nworkers = w->gw->nworkers ? w->gw->nworkers : 1;
    unsigned limit = (unsigned)(cfg->limits.max_connections / nworkers);
    if (limit < 4)
        limit = 4;
    return MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, w, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, w,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->limits.header_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
}
