#include "accesslog.h"

#include "clock.h"
#include "keys.h"
#include "log.h"
#include "netaddr.h"
#include "request.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* Longest text of a string field, in bytes, "..." included: a client's
 * 64 KiB model name must not make a 64 KiB line (or, past the buffer's
 * ceiling, a line that is not JSON). */
#define FIELD_MAX 256

/* ,"name":"value" or ,"name":null; name is a literal with its quotes. A value
 * longer than FIELD_MAX is cut at a character boundary and ends in "..."
 * inside the string; malformed UTF-8 becomes U+FFFD (buf_json_str). */
static int str_field(struct buf *b, const char *name, const char *value)
{
    int rc = buf_puts(b, name);
    if (!value)
        return rc | buf_puts(b, "null");
    size_t n = strlen(value);
    if (n <= FIELD_MAX)
        return rc | buf_json_str(b, value, n);
    size_t cut = FIELD_MAX - 3;
    /* back over at most three continuation bytes, to the start of the
     * character the cut would split */
    for (int k = 0; k < 3 && ((unsigned char)value[cut] & 0xc0) == 0x80; k++)
        cut--;
    return rc | buf_append(b, "\"", 1) | buf_json_esc(b, value, cut) | buf_append(b, "...\"", 4);
}

static int int_field(struct buf *b, const char *name, long long v)
{
    return buf_puts(b, name) | buf_put_int(b, v);
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
    int status = request_status(r, toe);
    char ms[8] = {'.',
                  (char)('0' + tv.tv_usec / 100000),
                  (char)('0' + tv.tv_usec / 10000 % 10),
                  (char)('0' + tv.tv_usec / 1000 % 10),
                  'Z',
                  '"',
                  '\0'};

    int rc = 0;
    rc |= buf_puts(&b, "{\"ts\":\"");
    rc |= buf_puts(&b, second_stamp(tv.tv_sec));
    rc |= buf_puts(&b, ms);
    rc |= str_field(&b, ",\"request_id\":", r->id);
    char client[INET6_ADDRSTRLEN];
    if (r->client_known)
        netaddr_ip_text(r->client, client);
    rc |= str_field(&b, ",\"client\":", r->client_known ? client : NULL);
    rc |= str_field(&b, ",\"key_id\":", r->key ? r->key->id : NULL);
    rc |= str_field(&b, ",\"key_name\":", r->key ? r->key->name : NULL);
    rc |= str_field(&b, ",\"method\":", r->method);
    rc |= str_field(&b, ",\"path\":", r->path);
    rc |= int_field(&b, ",\"status\":", status);
    /* an admin route may name no model ("" from the dialect): null, as for none */
    rc |= str_field(&b, ",\"model\":", r->model && r->model[0] ? r->model : NULL);
    rc |= str_field(&b, ",\"upstream_model\":",
                    r->upstream_model && r->upstream_model[0] ? r->upstream_model : NULL);
    /* the backend that served it: the last one tried (none when it was never sent) */
    rc |= str_field(&b, ",\"backend\":",
                    r->attempts && r->backend >= 0 ? r->cfg->backends[r->backend].name : NULL);
    rc |= int_field(&b, ",\"attempts\":", (long)r->attempts);
    rc |= int_field(&b, ",\"queue_ms\":", r->queue_ms);
    rc |= buf_puts(&b, r->stream ? ",\"stream\":true" : ",\"stream\":false");
    rc |= int_field(&b, ",\"prompt_tokens\":", r->prompt_tokens);
    rc |= int_field(&b, ",\"completion_tokens\":", r->completion_tokens);
    if (r->t_first)
        rc |= int_field(&b, ",\"ttft_ms\":", r->t_first - r->t_start);
    else
        rc |= buf_puts(&b, ",\"ttft_ms\":null");
    rc |= int_field(&b, ",\"duration_ms\":", now - r->t_start);
    rc |= str_field(
        &b, ",\"error\":", r->err.status ? (r->err.code ? r->err.code : r->err.type) : NULL);
    rc |= buf_puts(&b, "}");
    /* every field is bounded, so this cannot fail but on OOM; a line with a
     * field missing would not be JSON */
    if (rc == 0)
        log_access_line(b.p, b.len);
    else /* the diagnostic goes through the log's own ring: no allocation */
        log_warn("request %s: no access-log line (out of memory)", r->id);
    buf_free(&b);
}
