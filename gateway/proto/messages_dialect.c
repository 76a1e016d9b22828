/* Anthropic Messages as a dialect of the relay engine (dialect.h): the glue
 * between the engine's calls and the messages_* translations. */
#include "messages_dialect.h"

#include "messages_answer.h"
#include "messages_error.h"
#include "messages_request.h"
#include "messages_stream.h"
#include "upstream_error.h"
#include "thinking.h"

struct messages_state {
    struct dialect_common c;
    struct dialect_answer a;
    struct messages_stream ms;
    bool ms_live;
};

static int translate(void *st, const char *body, size_t len, dialect_resolve_fn resolve, void *ctx,
                     struct buf *native, struct apierr *err)
{
    struct messages_state *s = st;
    struct messages_req req;
    if (messages_req_parse(&req, body, len, err) < 0)
        return -1;
    struct dialect_model m = {0}; /* a resolve that knows no backend leaves no_thinking false */
    int rc = resolve(ctx, req.model, req.stream, &m, err);
    if (rc == 0) {
        s->c.asks_thinking = thinking_gate(req.native, m.no_thinking);
        rc = messages_req_to_ollama(&req, m.name, m.options, native, err);
    }
    messages_req_free(&req);
    return rc;
}

static int begin(void *st, const struct dialect_answer *a)
{
    struct messages_state *s = st;
    s->a = *a;
    if (a->stream) {
        messages_stream_init(&s->ms, a->id, a->client_model);
        s->ms_live = true;
    }
    return 0;
}

static int line(void *st, const char *p, size_t len, struct buf *out, struct apierr *err)
{
    struct messages_state *s = st;
    s->ms.backend = s->c.backend;
    int rc = messages_stream_line(&s->ms, p, len, out, err);
    if (rc == DIALECT_DONE) {
        s->c.prompt_tokens = s->ms.prompt_tokens;
        s->c.completion_tokens = s->ms.completion_tokens;
    }
    return rc;
}

static int eof(void *st, struct buf *out, struct apierr *err)
{
    (void)out;
    struct messages_state *s = st;
    s->ms.backend = s->c.backend;
    return messages_stream_eof(&s->ms, err);
}

static int complete(void *st, const char *body, size_t len, struct buf *out, struct apierr *err)
{
    struct messages_state *s = st;
    return messages_complete(body, len, s->a.client_model, s->a.id, s->c.backend, out,
                             &s->c.prompt_tokens, &s->c.completion_tokens, err);
}

static void release(void *st)
{
    struct messages_state *s = st;
    if (s->ms_live)
        messages_stream_free(&s->ms);
    s->ms_live = false;
}

const struct dialect dialect_messages = {
    .name = "messages",
    .native_path = "/api/chat",
    .id_prefix = "msg_",
    .stream_type = "text/event-stream",
    .errors = &errshape_anthropic,
    .state_size = sizeof(struct messages_state),
    .translate = translate,
    .begin = begin,
    .line = line,
    .eof = eof,
    .complete = complete,
    .upstream_error = upstream_error_map,
    .keepalive = messages_ping,
    .release = release,
};
