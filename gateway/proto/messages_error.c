#include "messages_error.h"

#include <string.h>

const char *messages_error_type(const struct apierr *e)
{
    switch (e->status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    default:
        return e->status >= 500 ? "api_error" : "invalid_request_error";
    }
}

int messages_error_status(const struct apierr *e)
{
    /* Anthropic's clients know 529 as "try again shortly"; 503 is ours for
     * the same thing */
    return e->status == 503 ? 529 : e->status;
}

/* {"type":"error","error":{"type":…,"message":…}} */
static int put_error(struct buf *out, const struct apierr *e)
{
    int rc = buf_puts(out, "{\"type\":\"error\",\"error\":{\"type\":\"");
    rc |= buf_puts(out, messages_error_type(e));
    rc |= buf_puts(out, "\",\"message\":");
    rc |= buf_json_str(out, e->message, strlen(e->message));
    return rc | buf_puts(out, "}}");
}

static int body(struct buf *out, const struct apierr *e)
{
    size_t start = out->len;
    if (put_error(out, e)) {
        buf_truncate(out, start);
        return -1;
    }
    return 0;
}

static int frame(struct buf *out, const struct apierr *e)
{
    size_t start = out->len;
    int rc = buf_puts(out, "event: error\ndata: ");
    rc |= put_error(out, e);
    rc |= buf_puts(out, "\n\n");
    if (rc) {
        buf_truncate(out, start);
        return -1;
    }
    return 0;
}

int messages_ping(struct buf *out)
{
    static const char ping[] = "event: ping\ndata: {\"type\":\"ping\"}\n\n";
    return buf_append(out, ping, sizeof ping - 1);
}

const struct errshape errshape_anthropic = {
    .content_type = "application/json",
    .body = body,
    .frame = frame,
    .status = messages_error_status,
};
