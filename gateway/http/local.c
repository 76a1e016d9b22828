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

/* An answer that could not be built (memory ran out, or MODELS_MAX): a 500
 * rather than a connection closed without a word (README "Out of memory"). */
static enum MHD_Result no_room(struct request *r, struct buf *b)
{
    buf_free(b);
    struct apierr e;
    apierr_no_room(&e, "the answer");
    return reply_error(r, &e);
}

enum MHD_Result local_models(struct request *r)
{
    struct buf b;
    buf_init(&b, MODELS_MAX);
    bool anthropic = r->route->handler == local_anthropic_models;
    if ((anthropic ? models_list_anthropic : models_list)(r->snap, r->key, started_ms(r), &b) < 0)
        return no_room(r, &b);
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
    bool anthropic = r->route->handler == local_anthropic_model;
    if ((anthropic ? models_get_anthropic : models_get)(r->snap, started_ms(r), id, &b) < 0) {
        buf_free(&b);
        apierr_set(&e, 404, APIERR_INVALID, "model_not_found", "model",
                   "The model '%s' does not exist", id);
        return reply_error(r, &e);
    }
    return reply_buf(r, 200, &b);
}

enum MHD_Result local_anthropic_models(struct request *r)
{
    return local_models(r);
}

enum MHD_Result local_anthropic_model(struct request *r)
{
    return local_model(r);
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

static enum MHD_Result native_list(struct request *r, bool loaded)
{
    struct buf b;
    buf_init(&b, MODELS_MAX);
    if (models_native_list(r->snap, r->key, loaded, &b) < 0)
        return no_room(r, &b);
    return reply_buf(r, 200, &b);
}

enum MHD_Result local_ollama_tags(struct request *r)
{
    return native_list(r, false);
}

enum MHD_Result local_ollama_ps(struct request *r)
{
    return native_list(r, true);
}

/* The lowest version among the backends: what a client may rely on
 * whichever backend serves it. */
enum MHD_Result local_ollama_version(struct request *r)
{
    char v[32];
    struct apierr e;
    if (backends_version(r->snap->backends, v, sizeof v) < 0) {
        apierr_set(&e, 503, APIERR_API, "backend_unavailable", NULL,
                   "No backend is up, so no version is known; try again shortly");
        return reply_error(r, &e);
    }
    struct buf b;
    buf_init(&b, 128);
    if (buf_puts(&b, "{\"version\":") < 0 || buf_json_str(&b, v, strlen(v)) < 0 ||
        buf_puts(&b, "}") < 0)
        return no_room(r, &b);
    return reply_buf(r, 200, &b);
}

enum MHD_Result local_ollama_root(struct request *r)
{
    struct buf b;
    buf_init(&b, 64);
    if (buf_puts(&b, "Ollama is running") < 0)
        return no_room(r, &b);
    return reply_typed(r, 200, "text/plain; charset=utf-8", &b);
}
