#include "apierr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void set_param(struct apierr *e, const char *param)
{
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
}

int apierr_set(struct apierr *e, int status, const char *type, const char *code, const char *param,
               const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    e->type = type;
    e->code = code;
    e->no_retry = false;
    e->retry_after_s = 0;
    set_param(e, param);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

int apierr_invalid(struct apierr *e, const char *param, const char *fmt, ...)
{
    va_list ap;
    e->status = 400;
    e->type = APIERR_INVALID;
    e->code = NULL;
    e->no_retry = false;
    e->retry_after_s = 0;
    set_param(e, param);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

int apierr_no_room(struct apierr *e, const char *what)
{
    return apierr_set(e, 500, APIERR_API, "internal_error", NULL,
                      "The gateway could not buffer %s (out of memory or over the output limit).",
                      what);
}

int apierr_nomem(struct apierr *e)
{
    return apierr_set(e, 500, APIERR_API, "out_of_memory", NULL,
                      "The gateway ran out of memory while handling this request; retry shortly.");
}

int apierr_json(const struct apierr *e, struct buf *out)
{
    const char *msg = e->message;
    if (buf_puts(out, "{\"error\":{\"message\":") < 0 || buf_json_str(out, msg, strlen(msg)) < 0 ||
        buf_puts(out, ",\"type\":") < 0 ||
        buf_json_str(out, e->type ? e->type : APIERR_API, strlen(e->type ? e->type : APIERR_API)) <
            0 ||
        buf_puts(out, ",\"param\":") < 0)
        return -1;
    if (e->param[0] ? buf_json_str(out, e->param, strlen(e->param)) : buf_puts(out, "null"))
        return -1;
    if (buf_puts(out, ",\"code\":") < 0)
        return -1;
    if (e->code ? buf_json_str(out, e->code, strlen(e->code)) : buf_puts(out, "null"))
        return -1;
    return buf_puts(out, "}}");
}
