#include "request.h"

#include "clientaddr.h"
#include "clock.h"
#include "engine.h"
#include "membudget.h"
#include "rand.h"
#include "snapshot.h"

#include <netinet/in.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The client's x-request-id if it is short and plain, so it can go into
 * headers and logs unescaped; otherwise a fresh random one. */
static void set_request_id(struct request *r)
{
    const char *theirs = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "x-request-id");
    if (theirs) {
        size_t n = strlen(theirs);
        bool ok = n > 0 && n < 65;
        for (size_t i = 0; ok && i < n; i++) {
            char c = theirs[i];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == ':';
        }
        if (ok) {
            memcpy(r->id, theirs, n + 1);
            return;
        }
    }
    rand_id(r->id, sizeof r->id, "req_");
}

struct request *request_new(struct worker *w, struct MHD_Connection *conn, const char *url,
                            const char *method)
{
    const struct route *rt = routes_match(url);
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "anthropic-version"))
        rt = routes_anthropic(rt);
    /* The dialect's state lives right after the request: one allocation. */
    size_t at = (sizeof(struct request) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    size_t extra = rt->dialect ? rt->dialect->state_size : 0;
    struct request *r = calloc(1, at + extra);
    if (!r)
        return NULL;
    /* The request itself counts against the memory budget, so that idle
     * connections by the thousand are seen too (its buffers count as they
     * grow, below). */
    r->held = at + extra;
    membudget_charge(r->held);
    r->route = rt;
    if (extra)
        r->dst = (struct dialect_common *)((char *)r + at);
    r->w = w;
    r->conn = conn;
    r->snap = snapshot_ref(worker_snapshot(w));
    r->cfg = r->snap->cfg;
    r->method = method;
    r->path = strdup(url);
    if (!r->path) {
        snapshot_unref(r->snap);
        membudget_release(r->held);
        free(r);
        return NULL;
    }
    r->phase = PHASE_BODY;
    r->backend = -1;
    r->t_start_us = now_us();
    r->t_start = r->t_start_us / 1000;
    buf_init(&r->body, r->cfg->limits.max_body_bytes);
    buf_init(&r->upbody, (size_t)r->cfg->limits.max_body_bytes * 2 + 4096);
    buf_init(&r->uperr, 64u << 10);
    buf_init(&r->out, 0); /* sized by relay when it knows the kind of answer */
    buf_count(&r->body);
    buf_count(&r->upbody);
    buf_count(&r->uperr);
    buf_count(&r->out);
    set_request_id(r);
    r->client_known = clientaddr_of(conn, r->cfg, r->client);
    r->hangup.fd = -1;
    r->task.run = engine_run_task;
    r->xfer.done = engine_upstream_done;
    worker_enter(w, &r->live);
    return r;
}

void request_free(struct request *r)
{
    struct worker *w = r->w;
    engine_release(r);
    worker_cancel(w, &r->task);
    worker_leave(w, &r->live);
    buf_free(&r->body);
    buf_free(&r->upbody);
    buf_free(&r->uperr);
    buf_free(&r->out);
    snapshot_unref(r->snap);
    free(r->path);
    /* A whole answer handed to libmicrohttpd (reply_typed) is freed right
     * after this callback, with the response: its charge ends here. */
    membudget_release(r->held + r->reply_held);
    free(r);
}

int request_status(const struct request *r, enum MHD_RequestTerminationCode toe)
{
    if (r->status)
        return r->status;
    return toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? 200 : 499;
}

void request_tokens(const struct request *r, long *prompt, long *completion)
{
    *prompt = r->prompt_tokens;
    *completion = r->completion_tokens;
    if (!*prompt && !*completion)
        *completion = r->up_lines;
}

void request_suspend(struct request *r)
{
    if (r->suspended)
        return;
    MHD_suspend_connection(r->conn);
    r->suspended = true;
    /* No hang-up watch yet: engine_tick adds it to a request that is still
     * suspended at the next tick (EVENTLOOP.md P3). */
}

void request_resume(struct request *r)
{
    if (!r->suspended)
        return;
    r->suspended = false;
    MHD_resume_connection(r->conn);
    worker_mhd_due(r->w);
}

void request_wake(struct request *r)
{
    r->want_resume = true;
    worker_defer(r->w, &r->task);
}
