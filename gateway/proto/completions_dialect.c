/* OpenAI legacy completions as a dialect of the relay engine (dialect.h): the
 * glue between the engine's calls and the completions_request and
 * completions_answer translations. */
#include "completions_dialect.h"

#include "completions_answer.h"
#include "completions_request.h"
#include "field.h"
#include "sse.h"
#include "upstream_error.h"
#include "thinking.h"

#include <stdlib.h>
#include <string.h>

struct completions_state {
    struct dialect_common c;
    struct dialect_answer a;
    struct completions_want want; /* echo: owned (the request's body is gone by the answer) */
    struct completions_stream cs;
    bool cs_live;
};

/* want.echo is allocated here, on the first successful translation (a
 * failover translates again from the same body: the copy is kept), and freed
 * by release(), which the engine calls for every state translate() touched. */
static int translate(void *st, const char *body, size_t len, dialect_resolve_fn resolve, void *ctx,
                     struct buf *native, struct apierr *err)
{
    struct completions_state *s = st;
    struct completions_req req;
    if (completions_req_parse(&req, body, len, err) < 0)
        return -1;
    struct dialect_model m = {0}; /* a resolve that knows no backend leaves no_thinking false */
    char *echo = NULL;
    int rc = resolve(ctx, req.model, req.stream, &m, err);
    if (rc == 0 && req.want.echo && !s->want.echo) {
        echo = strdup(req.want.echo);
        if (!echo)
            rc = field_oom(err);
    }
    if (rc == 0) {
        s->c.asks_thinking = thinking_gate(req.native, m.no_thinking);
        rc = completions_req_to_ollama(&req, m.name, m.options, native, err);
    }
    if (rc == 0 && echo) {
        s->want.echo = echo;
        echo = NULL;
    }
    free(echo);
    s->want.include_usage = req.want.include_usage;
    s->want.logprobs = req.want.logprobs;
    completions_req_free(&req);
    return rc;
}

static void release(void *st)
{
    struct completions_state *s = st;
    if (s->cs_live)
        completions_stream_free(&s->cs);
    s->cs_live = false;
    free((char *)s->want.echo);
    s->want.echo = NULL;
}

static int begin(void *st, const struct dialect_answer *a)
{
    struct completions_state *s = st;
    s->a = *a;
    if (!a->stream)
        return 0;
    s->cs_live = true;
    if (completions_stream_init(&s->cs, a->client_model, &s->want, a->id, a->created) < 0) {
        release(s);
        return -1;
    }
    return 0;
}

static int line(void *st, const char *p, size_t len, struct buf *out, struct apierr *err)
{
    struct completions_state *s = st;
    s->cs.backend = s->c.backend;
    int rc = completions_stream_line(&s->cs, p, len, out, err);
    if (rc == DIALECT_DONE) {
        s->c.prompt_tokens = s->cs.prompt_tokens;
        s->c.completion_tokens = s->cs.completion_tokens;
    }
    return rc;
}

static int eof(void *st, struct buf *out, struct apierr *err)
{
    (void)out;
    struct completions_state *s = st;
    s->cs.backend = s->c.backend;
    return completions_stream_eof(&s->cs, err);
}

static int complete(void *st, const char *body, size_t len, struct buf *out, struct apierr *err)
{
    struct completions_state *s = st;
    return completions_complete(body, len, s->a.client_model, s->a.id, s->a.created, &s->want,
                                s->c.backend, out, &s->c.prompt_tokens, &s->c.completion_tokens,
                                err);
}

const struct dialect dialect_completions = {
    .name = "completions",
    .native_path = "/api/generate",
    .id_prefix = "cmpl-",
    .stream_type = "text/event-stream",
    .errors = &errshape_openai,
    .state_size = sizeof(struct completions_state),
    .translate = translate,
    .begin = begin,
    .line = line,
    .eof = eof,
    .complete = complete,
    .upstream_error = upstream_error_map,
    .keepalive = sse_keepalive,
    .release = release,
};
