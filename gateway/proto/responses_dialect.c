/* The Responses API as a dialect of the relay engine (dialect.h): the glue
 * between the engine's calls and the responses_request, responses_stream and
 * responses_answer translations. */
#include "responses_dialect.h"

#include "responses_answer.h"
#include "responses_request.h"
#include "responses_stream.h"
#include "sse.h"
#include "upstream_error.h"
#include "thinking.h"

#include <stdlib.h>

struct responses_state {
    struct dialect_common c;
    struct dialect_answer a;
    struct responses_stream rs;
    const char *rs_backend; /* the name rs was last given */
    char *namespaces;       /* owned: the request's namespace pairs */
    size_t namespaces_len;
    char *customs; /* owned: the request's custom tool names */
    size_t customs_len;
    bool rs_live;
};

static int translate(void *st, const char *body, size_t len, dialect_resolve_fn resolve, void *ctx,
                     struct buf *native, struct apierr *err)
{
    struct responses_state *s = st;
    struct responses_req req;
    if (responses_req_parse(&req, body, len, err) < 0)
        return -1;
    /* translate() runs again on a failover: the same body, the same map */
    free(s->namespaces);
    s->namespaces = buf_detach(&req.namespaces, &s->namespaces_len);
    free(s->customs);
    s->customs = buf_detach(&req.customs, &s->customs_len);
    struct dialect_model m = {0}; /* a resolve that knows no backend leaves no_thinking false */
    int rc = resolve(ctx, req.model, req.stream, &m, err);
    if (rc == 0) {
        s->c.asks_thinking = thinking_gate(req.native, m.no_thinking);
        rc = responses_req_to_ollama(&req, m.name, m.options, native, err);
    }
    responses_req_free(&req);
    return rc;
}

static int begin(void *st, const struct dialect_answer *a)
{
    struct responses_state *s = st;
    s->a = *a;
    if (!a->stream)
        return 0;
    s->rs_live = true; /* freed in release() even when init fails */
    if (responses_stream_init(&s->rs, a->id, a->client_model, a->created) < 0)
        return -1;
    responses_stream_set_namespaces(&s->rs, s->namespaces, s->namespaces_len);
    responses_stream_set_customs(&s->rs, s->customs, s->customs_len);
    return 0;
}

static void name_backend(struct responses_state *s)
{
    if (s->rs_backend != s->c.backend) {
        responses_stream_set_backend(&s->rs, s->c.backend);
        s->rs_backend = s->c.backend;
    }
}

static int line(void *st, const char *p, size_t len, struct buf *out, struct apierr *err)
{
    struct responses_state *s = st;
    name_backend(s);
    int rc = responses_stream_line(&s->rs, p, len, out, err);
    if (rc == RESPONSES_DONE) {
        s->c.prompt_tokens = s->rs.prompt_tokens;
        s->c.completion_tokens = s->rs.completion_tokens;
        return DIALECT_DONE;
    }
    return rc == RESPONSES_MORE ? DIALECT_MORE : DIALECT_FAIL;
}

static int eof(void *st, struct buf *out, struct apierr *err)
{
    (void)out;
    struct responses_state *s = st;
    name_backend(s);
    return responses_stream_eof(&s->rs, err) == RESPONSES_DONE ? DIALECT_DONE : DIALECT_FAIL;
}

static int complete(void *st, const char *body, size_t len, struct buf *out, struct apierr *err)
{
    struct responses_state *s = st;
    struct responses_meta m = {.id = s->a.id,
                               .model = s->a.client_model,
                               .created = s->a.created,
                               .namespaces = s->namespaces,
                               .namespaces_len = s->namespaces_len,
                               .customs = s->customs,
                               .customs_len = s->customs_len};
    return responses_complete(body, len, &m, s->c.backend, out, &s->c.prompt_tokens,
                              &s->c.completion_tokens, err);
}

static int fail_frame(void *st, struct buf *out, const struct apierr *e)
{
    struct responses_state *s = st;
    return responses_stream_fail(&s->rs, out, e);
}

static void release(void *st)
{
    struct responses_state *s = st;
    if (s->rs_live)
        responses_stream_free(&s->rs);
    s->rs_live = false;
    free(s->namespaces);
    s->namespaces = NULL;
    free(s->customs);
    s->customs = NULL;
}

const struct dialect dialect_responses = {
    .name = "responses",
    .native_path = "/api/chat",
    .id_prefix = "resp_",
    .stream_type = "text/event-stream",
    .errors = &errshape_openai,
    .state_size = sizeof(struct responses_state),
    .translate = translate,
    .begin = begin,
    .line = line,
    .eof = eof,
    .complete = complete,
    .upstream_error = upstream_error_map,
    .keepalive = sse_keepalive,
    .fail_frame = fail_frame,
    .release = release,
};
