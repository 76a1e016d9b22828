#include "sse.h"

#include <string.h>

static int rollback(struct buf *out, size_t len)
{
    out->len = len;
    if (out->p)
        out->p[len] = '\0';
    return -1;
}

int sse_data(struct buf *out, const char *json, size_t len)
{
    size_t start = out->len;
    const char *p = json, *end = json + len;
    /* The common case (one line) costs one reservation and two appends. */
    if (buf_reserve(out, len + 8) < 0)
        return -1;
    do {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        size_t n = (size_t)(eol - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (buf_append(out, "data: ", 6) < 0 || buf_append(out, p, n) < 0 ||
            buf_append(out, "\n", 1) < 0)
            return rollback(out, start);
        p = nl ? nl + 1 : end;
    } while (p < end);
    if (buf_append(out, "\n", 1) < 0)
        return rollback(out, start);
    return 0;
}

int sse_begin(struct buf *out)
{
    return buf_append(out, "data: ", 6);
}

int sse_end(struct buf *out)
{
    return buf_append(out, "\n\n", 2);
}

int sse_comment(struct buf *out, const char *text)
{
    size_t start = out->len;
    const char *p = text;
    for (;;) {
        size_t n = strcspn(p, "\r\n");
        if (buf_append(out, ": ", 2) < 0 || buf_append(out, p, n) < 0 ||
            buf_append(out, "\n", 1) < 0)
            return rollback(out, start);
        p += n;
        if (!*p)
            break;
        /* one line break (CRLF counts as one) starts the next comment line */
        if (p[0] == '\r' && p[1] == '\n')
            p++;
        p++;
        if (!*p)
            break;
    }
    if (buf_append(out, "\n", 1) < 0)
        return rollback(out, start);
    return 0;
}

int sse_keepalive(struct buf *out)
{
    return sse_comment(out, "keep-alive");
}

int sse_done(struct buf *out)
{
    static const char done[] = "data: [DONE]\n\n";
    return buf_append(out, done, sizeof done - 1);
}

int sse_error(struct buf *out, const struct apierr *e)
{
    size_t start = out->len;
    if (sse_begin(out) < 0 || apierr_json(e, out) < 0 || sse_end(out) < 0)
        return rollback(out, start);
    return 0;
}
