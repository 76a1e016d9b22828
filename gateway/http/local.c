#include "local.h"

#include "auth.h"
#include "backends.h"
#include "handler.h"
#include "models.h"
#include "reply.h"
#include "request.h"
#include "snapshot.h"

#include <string.h>

#define MODELS_MAX (16u << 20) /* the largest model list we would send */

static int64_t started_ms(const struct request *r)
{
    const struct http_shared *h = r->w->gw->app;
    return h->started_ms;
}

enum MHD_Result local_models(struct request *r)
{
    struct buf b;
    buf_init(&b, MODELS_MAX);
    if (models_list(r->snap, r->key, started_ms(r), &b) < 0) {
        buf_free(&b);
        return MHD_NO;
    }
    return reply_buf(r, 200, &b);
}

enum MHD_Result local_model(struct request *r)
{
    const char *id = r->path + strlen(r->route->path);
    struct apierr e;
    if (auth_scope(r, id, &e) < 0)
        return reply_error(r, &e);
    struct buf b;
    buf_init(&b, MODELS_MAX);
    if (models_get(r->snap, started_ms(r), id, &b) < 0) {
        buf_free(&b);
        apierr_set(&e, 404, APIERR_INVALID, "model_not_found", "model",
                   "The model '%s' does not exist", id);
        return reply_error(r, &e);
    }
    return reply_buf(r, 200, &b);
}

static enum MHD_Result reply_literal(struct request *r, int status, const char *json)
{
    return reply_json(r, status, json, strlen(json));
}

enum MHD_Result local_healthz(struct request *r)
{
    return reply_literal(r, 200, "{\"status\":\"ok\"}");
}

enum MHD_Result local_readyz(struct request *r)
{
    return backends_any_up(r->snap->backends)
               ? reply_literal(r, 200, "{\"status\":\"ready\"}")
               : reply_literal(r, 503, "{\"status\":\"no backend is up\"}");
}

enum MHD_Result local_not_found(struct request *r)
{
    struct apierr e;
    apierr_set(&e, 404, APIERR_INVALID, "not_found", NULL, "Unknown route %s %s", r->method,
               r->path);
    return reply_error(r, &e);
}
