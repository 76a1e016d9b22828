#include "accesslog.h"

#include "clock.h"
#include "keys.h"
#include "log.h"
#include "request.h"

#include <string.h>
#include <sys/time.h>
#include <time.h>

/* ,"name":"value" or ,"name":null; name is a literal with its quotes. */
static void str_field(struct buf *b, const char *name, const char *value)
{
    buf_puts(b, name);
    if (value)
        buf_json_str(b, value, strlen(value));
    else
        buf_puts(b, "null");
}

static void int_field(struct buf *b, const char *name, long long v)
{
    buf_puts(b, name);
    buf_put_int(b, v);
}

/* "2026-11-22T10:00:00" for the current second, formatted once per second
 * per thread rather than once per request. */
static const char *second_stamp(time_t sec)
{
    static _Thread_local time_t cached = -1;
    static _Thread_local char text[32];
    if (sec != cached) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
        cached = sec;
    }
    return text;
}

void accesslog_write(const struct request *r, enum MHD_RequestTerminationCode toe)
{
    if (!log_access_enabled())
        return;
    struct buf b;
    buf_init(&b, 64u << 10);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int64_t now = now_ms();
    int status = r->status;
    if (!status)
        status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? 200 : 499;
    char ms[8] = {'.',
                  (char)('0' + tv.tv_usec / 100000),
                  (char)('0' + tv.tv_usec / 10000 % 10),
                  (char)('0' + tv.tv_usec / 1000 % 10),
                  'Z',
                  '"',
                  '\0'};

    buf_puts(&b, "{\"ts\":\"");
    buf_puts(&b, second_stamp(tv.tv_sec));
    buf_puts(&b, ms);
    str_field(&b, ",\"request_id\":", r->id);
    str_field(&b, ",\"key_id\":", r->key ? r->key->id : NULL);
    str_field(&b, ",\"key_name\":", r->key ? r->key->name : NULL);
    str_field(&b, ",\"method\":", r->method);
    str_field(&b, ",\"path\":", r->path);
    int_field(&b, ",\"status\":", status);
    /* an admin route may name no model ("" from the dialect): null, as for none */
    str_field(&b, ",\"model\":", r->model && r->model[0] ? r->model : NULL);
    str_field(&b, ",\"upstream_model\":",
              r->upstream_model && r->upstream_model[0] ? r->upstream_model : NULL);
    /* the backend that served it: the last one tried (none when it was never sent) */
    str_field(&b, ",\"backend\":",
              r->attempts && r->backend >= 0 ? r->cfg->backends[r->backend].name : NULL);
    int_field(&b, ",\"attempts\":", (long)r->attempts);
    int_field(&b, ",\"queue_ms\":", r->queue_ms);
    buf_puts(&b, r->stream ? ",\"stream\":true" : ",\"stream\":false");
    int_field(&b, ",\"prompt_tokens\":", r->prompt_tokens);
    int_field(&b, ",\"completion_tokens\":", r->completion_tokens);
    if (r->t_first)
        int_field(&b, ",\"ttft_ms\":", r->t_first - r->t_start);
    else
        buf_puts(&b, ",\"ttft_ms\":null");
    int_field(&b, ",\"duration_ms\":", now - r->t_start);
    str_field(&b, ",\"error\":", r->err.status ? (r->err.code ? r->err.code : r->err.type) : NULL);
    if (buf_puts(&b, "}") == 0)
        log_access_line(b.p, b.len);
    buf_free(&b);
}
