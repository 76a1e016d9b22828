#include "reply.h"

#include "auth.h"
#include "cors.h"
#include "engine.h"
#include "request.h"

#include <stdio.h>
#include <stdlib.h>

/*
 * The block libmicrohttpd allocates with a callback response, for the
 * callback to fill. Only a response sent as it comes, without chunks (to an
 * HTTP/1.0 client), is read into it; a chunked one (HTTP/1.1) is read
 * straight into the connection's own write buffer (try_ready_chunked_body in
 * 0.9.75's connection.c) and never touches the block. So an HTTP/1.1 stream
 * asks for the smallest block there is, saving 1 KiB for each open stream.
 */
#define STREAM_BLOCK 1024
#define STREAM_BLOCK_CHUNKED 1

/*
 * The last resort (README "Out of memory"): when the request's own answer
 * cannot be built because memory ran out, one of these, made at startup, is
 * queued instead. Queuing a response that exists allocates nothing of ours
 * (libmicrohttpd writes the head into the connection's own pool), and the
 * connection is closed after it, which gives its memory back.
 */
static struct MHD_Response *oom_openai, *oom_ollama;

static struct MHD_Response *oom_response(const struct errshape *shape)
{
    struct apierr e;
    apierr_nomem(&e);
    struct buf b;
    buf_init(&b, 4096);
    struct MHD_Response *resp = NULL;
    if (shape->body(&b, &e) == 0) {
        size_t len;
        char *p = buf_detach(&b, &len);
        resp = MHD_create_response_from_buffer(len, p, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(p);
    }
    buf_free(&b);
    if (resp && (MHD_add_response_header(resp, "Content-Type", shape->content_type) != MHD_YES ||
                 MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    return resp;
}

int reply_init(void)
{
    oom_openai = oom_response(&errshape_openai);
    oom_ollama = oom_response(&errshape_ollama);
    if (oom_openai && oom_ollama)
        return 0;
    reply_cleanup();
    return -1;
}

void reply_cleanup(void)
{
    if (oom_openai)
        MHD_destroy_response(oom_openai);
    if (oom_ollama)
        MHD_destroy_response(oom_ollama);
    oom_openai = oom_ollama = NULL;
}

enum MHD_Result reply_oom_conn(struct MHD_Connection *conn, const struct route *rt)
{
    struct MHD_Response *resp = rt->errors == &errshape_ollama ? oom_ollama : oom_openai;
    if (!resp) /* reply_init was not called: a unit test */
        return MHD_NO;
    return MHD_queue_response(conn, 500, resp);
}

static enum MHD_Result reply_oom(struct request *r)
{
    struct MHD_Response *resp = r->route->errors == &errshape_ollama ? oom_ollama : oom_openai;
    if (!resp)
        return MHD_NO;
    apierr_nomem(&r->err);
    r->status = 500;
    r->close = true;
    r->phase = PHASE_REPLIED;
    return MHD_queue_response(r->conn, 500, resp);
}

/* The headers every answer carries (content_type NULL: an answer without a
 * body). false: one could not be added (memory ran out), and an answer
 * without its Content-Type, x-request-id or CORS headers is not sent. */
static bool add_headers(struct request *r, struct MHD_Response *resp, const char *content_type)
{
    bool ok =
        (!content_type || MHD_add_response_header(resp, "Content-Type", content_type) == MHD_YES) &&
        MHD_add_response_header(resp, "x-request-id", r->id) == MHD_YES &&
        auth_add_headers(r, resp) == 0 && cors_add_headers(r, resp) == 0;
    if (ok && r->err.status && r->err.retry_after_s) {
        char s[16];
        snprintf(s, sizeof s, "%u", r->err.retry_after_s);
        ok = MHD_add_response_header(resp, "Retry-After", s) == MHD_YES;
    }
    if (ok && (r->w->draining || r->close))
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
    if (ok && r->err.status == 405)
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, routes_allowed(r->route)) ==
             MHD_YES;
    if (ok && r->err.status && r->err.no_retry)
        ok = MHD_add_response_header(resp, "x-should-retry", "false") == MHD_YES;
    return ok;
}

enum MHD_Result reply_response(struct request *r, int status, const char *content_type,
                               struct MHD_Response *resp)
{
    if (!resp)
        return reply_oom(r);
    if (!add_headers(r, resp, content_type)) {
        MHD_destroy_response(resp);
        return reply_oom(r);
    }
    r->status = status;
    r->phase = PHASE_REPLIED;
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result reply_json(struct request *r, int status, const char *body, size_t len)
{
    return reply_response(
        r, status, "application/json",
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY));
}

/* A response that takes body's bytes over (body is left empty). */
static struct MHD_Response *response_of(struct request *r, struct buf *body)
{
    size_t len;
    /* The bytes go to libmicrohttpd, and their charge with them until the
     * request completes (request_free). */
    r->reply_held += buf_held(body);
    char *p = buf_detach(body, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, p ? p : (char *)"", p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        free(p);
    return resp;
}

enum MHD_Result reply_typed(struct request *r, int status, const char *content_type,
                            struct buf *body)
{
    return reply_response(r, status, content_type, response_of(r, body));
}

enum MHD_Result reply_buf(struct request *r, int status, struct buf *body)
{
    return reply_typed(r, status, "application/json", body);
}

enum MHD_Result reply_error(struct request *r, const struct apierr *e)
{
    if (e != &r->err)
        r->err = *e;
    const struct errshape *shape = r->route->errors;
    struct buf b;
    buf_init(&b, 4096);
    if (shape->body(&b, e) < 0) {
        buf_free(&b);
        return reply_oom(r);
    }
    return reply_typed(r, shape->status ? shape->status(e) : e->status, shape->content_type, &b);
}

static ssize_t read_stream(void *cls, uint64_t pos, char *dst, size_t max)
{
    (void)pos;
    return engine_read(cls, dst, max);
}

enum MHD_Result reply_stream(struct request *r)
{
    struct MHD_Response *resp;
    if (r->ended && !r->err.status && !r->cut && !r->keepalive_sent && r->out_rd.off == 0) {
        /* The whole stream is here already (a quick backend): one response
         * with a length, which libmicrohttpd writes together with its
         * headers, where a chunked one costs three writes (the headers, the
         * data, the last chunk). The events are the same bytes, and a client
         * reads them as they come either way. */
        resp = response_of(r, &r->out);
    } else {
        /* No free callback: the request is owned by the completion callback (P9). */
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
                                                 r->http11 ? STREAM_BLOCK_CHUNKED : STREAM_BLOCK,
                                                 read_stream, r, NULL);
    }
    if (!resp)
        return reply_oom(r);
    if (!add_headers(r, resp, r->route->dialect->stream_type) ||
        MHD_add_response_header(resp, "Cache-Control", "no-cache") != MHD_YES ||
        MHD_add_response_header(resp, "X-Accel-Buffering", "no") != MHD_YES) {
        MHD_destroy_response(resp);
        return reply_oom(r);
    }
    r->status = 200;
    r->phase = PHASE_STREAMING;
    enum MHD_Result rc = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}
