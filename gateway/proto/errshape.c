/* The error shapes of the client APIs (dialect.h: struct errshape). */
#include "dialect.h"

#include "sse.h"

#include <string.h>

static int ollama_body(struct buf *out, const struct apierr *e)
{
    size_t start = out->len;
    if (buf_puts(out, "{\"error\":") < 0 || buf_json_str(out, e->message, strlen(e->message)) < 0 ||
        buf_puts(out, "}") < 0) {
        out->len = start;
        return -1;
    }
    return 0;
}

static int ollama_frame(struct buf *out, const struct apierr *e)
{
    size_t start = out->len;
    if (ollama_body(out, e) < 0 || buf_append(out, "\n", 1) < 0) {
        out->len = start;
        return -1;
    }
    return 0;
}

static int openai_body(struct buf *out, const struct apierr *e)
{
    size_t start = out->len;
    if (apierr_json(e, out) < 0) {
        out->len = start;
        return -1;
    }
    return 0;
}

const struct errshape errshape_openai = {
    .content_type = "application/json",
    .body = openai_body,
    .frame = sse_error,
};

const struct errshape errshape_ollama = {
    .content_type = "application/json; charset=utf-8",
    .body = ollama_body,
    .frame = ollama_frame,
};
