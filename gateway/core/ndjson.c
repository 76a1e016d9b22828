#include "ndjson.h"

#include <string.h>

/* A tail buffer bigger than this is given back once its line has been handed
 * on, instead of being kept for the next: a stream that once got a 16 MiB
 * line (tool calls on the done line) must not hold 16 MiB for the rest of
 * its life, nor alongside the frame that line became. Token lines are a few
 * hundred bytes, so ordinary streams keep their small buffer. */
#define TAIL_KEEP (64u << 10)

/* The tail's line has been handed on: forget it. */
static void tail_done(struct ndjson *s)
{
    if (s->tail.cap > TAIL_KEEP)
        buf_free(&s->tail);
    else
        buf_reset(&s->tail);
}

void ndjson_init(struct ndjson *s, size_t max_line)
{
    buf_init(&s->tail, max_line);
}

void ndjson_free(struct ndjson *s)
{
    buf_free(&s->tail);
}

size_t ndjson_pending(const struct ndjson *s)
{
    return s->tail.len;
}

static int emit(const char *line, size_t len, ndjson_line_fn fn, void *ud)
{
    if (len && line[len - 1] == '\r')
        len--;
    /* Whitespace-only lines carry nothing. */
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len)
        return 0;
    return fn(ud, line, len);
}

int ndjson_feed(struct ndjson *s, const char *p, size_t n, ndjson_line_fn fn, void *ud)
{
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return buf_append(&s->tail, p, (size_t)(end - p)); /* 0, or BUF_FULL/BUF_NOMEM */
        int rc;
        if (s->tail.len) {
            if ((rc = buf_append(&s->tail, p, (size_t)(nl - p))) < 0)
                return rc;
            rc = emit(s->tail.p, s->tail.len, fn, ud);
            tail_done(s);
        } else {
            if ((size_t)(nl - p) > s->tail.max)
                return BUF_FULL;
            rc = emit(p, (size_t)(nl - p), fn, ud);
        }
        if (rc)
            return rc;
        p = nl + 1;
    }
    return 0;
}

int ndjson_finish(struct ndjson *s, ndjson_line_fn fn, void *ud)
{
    if (!s->tail.len)
        return 0;
    int rc = emit(s->tail.p, s->tail.len, fn, ud);
    tail_done(s);
    return rc;
}
