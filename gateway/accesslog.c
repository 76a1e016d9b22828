#include "accesslog.h"

#include "log.h"
#include "request.h"

#include <string.h>
#include <sys/time.h>
#include <time.h>

static void json_field(struct buf *b, const char *name, const char *value)
{
    buf_printf(b, ",\"%s\":", name);
    if (value)
        buf_json_str(b, value, strlen(value));
    else
        buf_puts(b, "null");
}

void accesslog_write(const struct request *r, enum MHD_RequestTerminationCode toe)
{
    struct buf b;
    buf_init(&b, 64u << 10);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    int64_t now = now_ms();
    int status = r->status;
    if (!status)
        status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? 200 : 499;

    buf_printf(&b, "{\"ts\":\"%s.%03ldZ\"", ts, (long)(tv.tv_usec / 1000));
    json_field(&b, "request_id", r->id);
    buf_puts(&b, ",\"key_id\":null,\"key_name\":null");
    json_field(&b, "method", r->method);
    json_field(&b, "path", r->path);
    buf_printf(&b, ",\"status\":%d", status);
    json_field(&b, "model", r->model);
    json_field(&b, "upstream_model", r->upstream_model);
    json_field(&b, "backend", r->backend >= 0 ? r->cfg->backends[r->backend].name : NULL);
    buf_printf(&b, ",\"stream\":%s", r->stream ? "true" : "false");
    buf_printf(&b, ",\"prompt_tokens\":%ld,\"completion_tokens\":%ld", r->prompt_tokens,
               r->completion_tokens);
    if (r->t_first)
        buf_printf(&b, ",\"ttft_ms\":%lld", (long long)(r->t_first - r->t_start));
    else
        buf_puts(&b, ",\"ttft_ms\":null");
    buf_printf(&b, ",\"duration_ms\":%lld", (long long)(now - r->t_start));
    if (r->err.status) {
        buf_puts(&b, ",\"error\":");
        const char *code = r->err.code ? r->err.code : r->err.type;
        buf_json_str(&b, code, strlen(code));
    } else {
        buf_puts(&b, ",\"error\":null");
    }
    if (buf_puts(&b, "}") == 0)
        log_access_line(b.p, b.len);
    buf_free(&b);
}
