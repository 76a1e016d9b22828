/* OpenAI chat completions as a dialect of the relay engine (dialect.h): the
 * glue between the engine's calls and the chat_request, chat_stream and
 * chat_complete translations. */
#include "chat_dialect.h"

#include "chat_complete.h"
#include "chat_request.h"
#include "chat_stream.h"
#include "sse.h"
#include "upstream_error.h"
#include "thinking.h"

struct chat_state {
    struct dialect_common c;
    struct dialect_answer a;
    struct chat_stream cs;
    const char *cs_backend; /* the name cs was last given */
    bool include_usage;
    bool cs_live;
};

static int translate(void *st, const char *body, size_t len, dialect_resolve_fn resolve, void *ctx,
                     struct buf *native, struct apierr *err)
{
    struct chat_state *s = st;
    struct chat_req req;
    if (chat_req_parse(&req, body, len, err) < 0)
        return -1;
    struct dialect_model m = {0}; /* a resolve that knows no backend leaves no_thinking false */
    int rc = resolve(ctx, req.model, req.stream, &m, err);
    if (rc == 0) {
        s->c.asks_thinking = thinking_gate(req.native, m.no_thinking);
        rc = chat_req_to_ollama(&req, m.name, m.options, native, err);
    }
    s->include_usage = req.include_usage;
    chat_req_free(&req);
    return rc;
}

static int begin(void *st, const struct dialect_answer *a)
{
    struct chat_state *s = st;
    s->a = *a;
    if (!a->stream)
        return 0;
    if (chat_stream_init(&s->cs, a->client_model, s->include_usage, a->id, a->created) < 0) {
        chat_stream_free(&s->cs);
        return -1;
    }
    s->cs_live = true;
    return 0;
}

static int line(void *st, const char *p, size_t len, struct buf *out, struct apierr *err)
{
    struct chat_state *s = st;
    if (s->cs_backend != s->c.backend) {
        chat_stream_set_backend(&s->cs, s->c.backend);
        s->cs_backend = s->c.backend;
    }
    int rc = chat_stream_line(&s->cs, p, len, out, err);
    if (rc == CHAT_DONE) {
        s->c.prompt_tokens = s->cs.prompt_tokens;
        s->c.completion_tokens = s->cs.completion_tokens;
        return DIALECT_DONE;
    }
    return rc == CHAT_MORE ? DIALECT_MORE : DIALECT_FAIL;
}

static int eof(void *st, struct buf *out, struct apierr *err)
{
    (void)out;
    struct chat_state *s = st;
    return chat_stream_eof(&s->cs, err) == CHAT_DONE ? DIALECT_DONE : DIALECT_FAIL;
}

static int complete(void *st, const char *body, size_t len, struct buf *out, struct apierr *err)
{
    struct chat_state *s = st;
    return chat_complete(body, len, s->a.client_model, s->a.id, s->a.created, s->c.backend, out,
                         &s->c.prompt_tokens, &s->c.completion_tokens, err);
}

static void release(void *st)
{
    struct chat_state *s = st;
    if (s->cs_live)
        chat_stream_free(&s->cs);
    s->cs_live = false;
}

const struct dialect dialect_chat = {
    .name = "chat.completions",
    .native_path = "/api/chat",
    .id_prefix = "chatcmpl-",
    .stream_type = "text/event-stream",
    .errors = &errshape_openai,
    .state_size = sizeof(struct chat_state),
    .translate = translate,
    .begin = begin,
    .line = line,
    .eof = eof,
    .complete = complete,
    .upstream_error = upstream_error_map,
    .keepalive = sse_keepalive,
    .release = release,
};
