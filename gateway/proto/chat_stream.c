#include "chat_stream.h"

#include "chat_answer.h"
#include "jscan.h"
#include "json.h"
#include "ollama.h"
#include "sse.h"
#include "upstream_error.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Ceiling of the stream's private buffers; the real bound is the engine's
 * line limit. */
#define SCRATCH_MAX (SIZE_MAX / 4)

int chat_stream_init(struct chat_stream *s, const char *client_model, bool include_usage,
                     const char *id, long created)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->head, SCRATCH_MAX);
    buf_init(&s->scratch, SCRATCH_MAX);
    s->include_usage = include_usage;
    int rc = buf_puts(&s->head, "{\"id\":");
    rc |= json_put_str(&s->head, id);
    rc |= buf_printf(&s->head,
                     ",\"object\":\"chat.completion.chunk\",\"created\":%ld,\"model\":", created);
    rc |= json_put_str(&s->head, client_model);
    rc |= buf_puts(&s->head, ",\"choices\":[");
    return rc ? -1 : 0;
}

void chat_stream_set_backend(struct chat_stream *s, const char *backend)
{
    snprintf(s->backend, sizeof s->backend, "%s", backend ? backend : "");
}

void chat_stream_free(struct chat_stream *s)
{
    buf_free(&s->head);
    buf_free(&s->scratch);
}

/* "data: " + prefix + '{"index":0,"delta":{' (+ the role on the first chunk). */
static int chunk_open(struct chat_stream *s, struct buf *out, bool *first_field)
{
    int rc = sse_begin(out);
    rc |= buf_append(out, s->head.p, s->head.len);
    rc |= buf_puts(out, "{\"index\":0,\"delta\":{");
    *first_field = true;
    if (!s->started) {
        rc |= buf_puts(out, "\"role\":\"assistant\"");
        *first_field = false;
        s->started = true;
    }
    return rc;
}

static int field(struct buf *out, bool *first_field, const char *name)
{
    int rc = *first_field ? 0 : buf_append(out, ",", 1);
    *first_field = false;
    return rc | buf_puts(out, name);
}

/* '}' closing the delta, logprobs if any, "finish_reason":null, the frame end. */
static int chunk_close(struct buf *out, const cJSON *logprobs)
{
    int rc = buf_append(out, "}", 1);
    if (logprobs) {
        rc |= buf_puts(out, ",\"logprobs\":");
        rc |= chat_put_logprobs(out, logprobs);
    }
    rc |= buf_puts(out, ",\"finish_reason\":null}]}");
    return rc | sse_end(out);
}

static int stream_fail(struct chat_stream *s)
{
    s->failed = true;
    return CHAT_FAIL;
}

/*
 * The fast path for the line that makes up almost every stream:
 *   {"model":"…","created_at":"…","message":{"role":"assistant","content":"…"},"done":false}
 * (content and/or thinking). It validates the line as it scans and copies the
 * content's JSON string literal as it stands instead of parsing the line into
 * a cJSON tree and escaping the text again. It only takes lines whose output
 * it can make byte for byte the same as the general path's: any other key, a
 * duplicate key, done:true, or an escape that buf_json_str would write
 * differently (Go's \u003c for '<', say) sends the line to the general path.
 */

/* A stream line's members: model, created_at, message, done:false; each once. */
struct line_scan {
    struct str content, thinking;
    bool done, msg, model, created;
};

static const char *line_member(void *ud, const struct str *key, const char *p, const char *end)
{
    struct line_scan *l = ud;
    struct str ignored;
    bool *seen = jscan_key_is(key, "\"model\"")        ? &l->model
                 : jscan_key_is(key, "\"created_at\"") ? &l->created
                 : jscan_key_is(key, "\"done\"")       ? &l->done
                 : jscan_key_is(key, "\"message\"")    ? &l->msg
                                                       : NULL;
    if (!seen || *seen)
        return NULL;
    *seen = true;
    if (seen == &l->done)
        return jscan_word(p, end, "false");
    if (seen == &l->msg)
        return ollama_scan_message(p, end, &l->content, &l->thinking);
    return jscan_string(p, end, false, &ignored);
}

/* 1: the line was translated into out; 0: use the general path. */
static int fast_line(struct chat_stream *s, const char *line, size_t len, struct buf *out)
{
    const char *end = line + len;
    struct line_scan l = {0};
    const char *p = jscan_object(line, end, line_member, &l);
    /* {} is the general path's to judge */
    if (!p || jscan_ws(p, end) != end || !(l.done || l.msg || l.model || l.created))
        return 0;
    struct str content = l.content, thinking = l.thinking;

    size_t start = out->len;
    bool saved_started = s->started;
    bool has_text = content.len > 2, ff;
    int rc = 0;
    if (thinking.len > 2) {
        rc |= chunk_open(s, out, &ff);
        rc |= field(out, &ff, "\"reasoning_content\":");
        rc |= buf_append(out, thinking.p, thinking.len);
        rc |= field(out, &ff, "\"reasoning\":");
        rc |= buf_append(out, thinking.p, thinking.len);
        rc |= chunk_close(out, NULL);
    }
    if (has_text) {
        rc |= chunk_open(s, out, &ff);
        rc |= field(out, &ff, "\"content\":");
        rc |= buf_append(out, content.p, content.len);
        rc |= chunk_close(out, NULL);
    }
    if (rc) {
        /* let the general path report it the usual way */
        buf_truncate(out, start);
        s->started = saved_started;
        return 0;
    }
    return 1;
}

int chat_stream_line(struct chat_stream *s, const char *line, size_t len, struct buf *out,
                     struct apierr *err)
{
    if (chat_fast_path && !s->failed && !s->done && fast_line(s, line, len, out))
        return CHAT_MORE;
    if (s->failed) {
        upstream_fail(err, s->backend, "stream had already failed.");
        return CHAT_FAIL;
    }
    if (s->done)
        return CHAT_DONE;

    size_t start = out->len;
    bool saved_started = s->started;
    unsigned saved_calls = s->tool_calls;
    const char *why = NULL;
    int ret = CHAT_MORE;

    cJSON *j = ollama_line(&s->scratch, line, len, s->backend, err);
    if (!j)
        return stream_fail(s);
    const cJSON *content, *thinking, *tcs;
    why = chat_read_message(j, &content, &thinking, &tcs);
    if (why) {
        upstream_fail(err, s->backend, "sent a stream line with %s.", why);
        goto out_fail;
    }

    const cJSON *logprobs = json_get(j, "logprobs");
    if (!json_has_entries(logprobs))
        logprobs = NULL;
    bool has_text = cJSON_IsString(content) && content->valuestring[0];
    bool has_calls = json_has_entries(tcs);
    bool is_done = cJSON_IsTrue(json_get(j, "done"));
    bool ff;
    int rc = 0;

    /* Thinking first, in its own chunk: clients that read either field see
     * reasoning and answer separately, as from Ollama's own /v1 since 0.17.8. */
    if (cJSON_IsString(thinking) && thinking->valuestring[0]) {
        rc |= chunk_open(s, out, &ff);
        rc |= field(out, &ff, "\"reasoning_content\":");
        rc |= json_put_str(out, thinking->valuestring);
        rc |= field(out, &ff, "\"reasoning\":");
        rc |= json_put_str(out, thinking->valuestring);
        rc |= chunk_close(out, has_text || has_calls ? NULL : logprobs);
        if (!has_text && !has_calls)
            logprobs = NULL;
    }
    if (has_text || has_calls || logprobs) {
        rc |= chunk_open(s, out, &ff);
        if (has_text || !has_calls) {
            rc |= field(out, &ff, "\"content\":");
            rc |= json_put_str(out, cJSON_IsString(content) ? content->valuestring : "");
        }
        if (has_calls) {
            rc |= field(out, &ff, "\"tool_calls\":[");
            rc |= chat_put_tool_calls(out, tcs, true, &s->tool_calls);
            rc |= buf_append(out, "]", 1);
        }
        rc |= chunk_close(out, logprobs);
    }
    if (is_done) {
        s->prompt_tokens = ollama_count(j, "prompt_eval_count");
        s->completion_tokens = ollama_count(j, "eval_count");
        if (!s->started) {
            /* an empty answer still opens with the role (Node's helper needs it) */
            rc |= chunk_open(s, out, &ff);
            rc |= field(out, &ff, "\"content\":\"\"");
            rc |= chunk_close(out, NULL);
        }
        rc |= sse_begin(out);
        rc |= buf_append(out, s->head.p, s->head.len);
        rc |= buf_printf(out, "{\"index\":0,\"delta\":{},\"finish_reason\":\"%s\"}]}",
                         chat_finish_reason(j, s->tool_calls > 0));
        rc |= sse_end(out);
        if (s->include_usage) {
            rc |= sse_begin(out);
            rc |= buf_append(out, s->head.p, s->head.len);
            rc |= buf_printf(out,
                             "],\"usage\":{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,"
                             "\"total_tokens\":%ld}}",
                             s->prompt_tokens, s->completion_tokens,
                             s->prompt_tokens + s->completion_tokens);
            rc |= sse_end(out);
        }
        rc |= sse_done(out);
        ret = CHAT_DONE;
    }
    if (rc) {
        apierr_no_room(err, "the streamed answer");
        goto out_fail;
    }
    if (ret == CHAT_DONE)
        s->done = true;
    cJSON_Delete(j);
    return ret;

out_fail:
    buf_truncate(out, start);
    s->started = saved_started;
    s->tool_calls = saved_calls;
    cJSON_Delete(j);
    return stream_fail(s);
}

int chat_stream_eof(struct chat_stream *s, struct apierr *err)
{
    return ollama_eof(s->done, &s->failed, s->backend, err) == DIALECT_DONE ? CHAT_DONE : CHAT_FAIL;
}
