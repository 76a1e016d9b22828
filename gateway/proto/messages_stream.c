#include "messages_stream.h"

#include "chat_answer.h"
#include "dialect.h"
#include "json.h"
#include "messages_answer.h"
#include "ollama.h"
#include "upstream_error.h"

#include <stdint.h>
#include <string.h>

/* Ceiling of the line copy; the real bound is the engine's line limit. */
#define SCRATCH_MAX (SIZE_MAX / 4)

/* Kinds of block that stay open across native lines. */
enum { BLOCK_NONE, BLOCK_THINKING, BLOCK_TEXT };

void messages_stream_init(struct messages_stream *s, const char *id, const char *model)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->scratch, SCRATCH_MAX);
    s->id = id;
    s->model = model;
}

void messages_stream_free(struct messages_stream *s)
{
    buf_free(&s->scratch);
}

/* "event: <name>\ndata: {"type":"<name>"" — the caller writes the rest of
 * the object and ev_end. */
static int ev_begin(struct buf *out, const char *name)
{
    int rc = buf_puts(out, "event: ");
    rc |= buf_puts(out, name);
    rc |= buf_puts(out, "\ndata: {\"type\":\"");
    rc |= buf_puts(out, name);
    return rc | buf_append(out, "\"", 1);
}

static int ev_end(struct buf *out)
{
    return buf_append(out, "}\n\n", 3);
}

static int message_start(struct messages_stream *s, struct buf *out)
{
    int rc = ev_begin(out, "message_start");
    rc |= buf_puts(out, ",\"message\":{\"id\":");
    rc |= json_put_str(out, s->id);
    rc |= buf_puts(out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    rc |= json_put_str(out, s->model);
    rc |= buf_puts(out, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                        "\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}");
    return rc | ev_end(out);
}

static int block_stop(struct messages_stream *s, struct buf *out)
{
    if (s->open == BLOCK_NONE)
        return 0;
    s->open = BLOCK_NONE;
    int rc = ev_begin(out, "content_block_stop");
    rc |= buf_printf(out, ",\"index\":%u", s->blocks - 1);
    return rc | ev_end(out);
}

/* content_block_start with the block's opening object (its JSON text). */
static int block_start(struct messages_stream *s, struct buf *out, const char *block)
{
    int rc = ev_begin(out, "content_block_start");
    rc |= buf_printf(out, ",\"index\":%u,\"content_block\":", s->blocks++);
    rc |= buf_puts(out, block);
    return rc | ev_end(out);
}

/* A thinking or text delta, opening its block (and closing another) first. */
static int text_delta(struct messages_stream *s, struct buf *out, int kind, const char *text)
{
    int rc = 0;
    if (s->open != kind) {
        rc |= block_stop(s, out);
        rc |= block_start(s, out,
                          kind == BLOCK_TEXT ? "{\"type\":\"text\",\"text\":\"\"}"
                                             : "{\"type\":\"thinking\",\"thinking\":\"\","
                                               "\"signature\":\"\"}");
        s->open = kind;
    }
    rc |= ev_begin(out, "content_block_delta");
    rc |= buf_printf(out, ",\"index\":%u,\"delta\":", s->blocks - 1);
    rc |= buf_puts(out, kind == BLOCK_TEXT ? "{\"type\":\"text_delta\",\"text\":"
                                           : "{\"type\":\"thinking_delta\",\"thinking\":");
    rc |= json_put_str(out, text);
    rc |= buf_append(out, "}", 1);
    return rc | ev_end(out);
}

/* One tool_use block: start, the whole input as one input_json_delta, stop. */
static int tool_use(struct messages_stream *s, struct buf *out, const cJSON *tc)
{
    const cJSON *fn = json_get(tc, "function");
    char id[40];
    messages_tool_id(id, sizeof id);
    char *input = messages_input_text(json_get(fn, "arguments"));
    if (!input)
        return -1;
    int rc = block_stop(s, out);
    rc |= ev_begin(out, "content_block_start");
    rc |= buf_printf(out,
                     ",\"index\":%u,\"content_block\":{\"type\":\"tool_use\",\"id\":", s->blocks++);
    rc |= json_put_str(out, id);
    rc |= buf_puts(out, ",\"name\":");
    rc |= json_put_str(out, json_get(fn, "name")->valuestring);
    rc |= buf_puts(out, ",\"input\":{}}");
    rc |= ev_end(out);
    rc |= ev_begin(out, "content_block_delta");
    rc |= buf_printf(
        out,
        ",\"index\":%u,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":", s->blocks - 1);
    rc |= json_put_str(out, input);
    rc |= buf_append(out, "}", 1);
    rc |= ev_end(out);
    cJSON_free(input);
    s->open = BLOCK_TEXT; /* any open kind: block_stop closes it */
    rc |= block_stop(s, out);
    s->tool_uses++;
    return rc;
}

static int finish(struct messages_stream *s, struct buf *out, const cJSON *j)
{
    int rc = 0;
    s->prompt_tokens = ollama_count(j, "prompt_eval_count");
    s->completion_tokens = ollama_count(j, "eval_count");
    if (!s->blocks) {
        rc |= block_start(s, out, "{\"type\":\"text\",\"text\":\"\"}");
        s->open = BLOCK_TEXT;
    }
    rc |= block_stop(s, out);
    rc |= ev_begin(out, "message_delta");
    rc |= buf_puts(out, ",\"delta\":{\"stop_reason\":\"");
    rc |= buf_puts(out, messages_stop_reason(j, s->tool_uses > 0));
    rc |= buf_printf(out,
                     "\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":%ld,"
                     "\"output_tokens\":%ld}",
                     s->prompt_tokens, s->completion_tokens);
    rc |= ev_end(out);
    rc |= ev_begin(out, "message_stop");
    return rc | ev_end(out);
}

int messages_stream_line(struct messages_stream *s, const char *line, size_t len, struct buf *out,
                         struct apierr *err)
{
    if (s->failed) {
        upstream_fail(err, s->backend, "stream had already failed.");
        return DIALECT_FAIL;
    }
    if (s->done)
        return DIALECT_DONE;
    cJSON *j = ollama_line(&s->scratch, line, len, s->backend, err);
    if (!j) {
        s->failed = true;
        return DIALECT_FAIL;
    }
    const cJSON *content, *thinking, *tcs;
    const char *why = chat_read_message(j, &content, &thinking, &tcs);
    if (why) {
        upstream_fail(err, s->backend, "sent a stream line with %s.", why);
        cJSON_Delete(j);
        s->failed = true;
        return DIALECT_FAIL;
    }
    /* what to restore when this line's events do not fit */
    struct messages_stream saved = *s;
    size_t start = out->len;
    bool is_done = cJSON_IsTrue(json_get(j, "done"));
    int rc = 0;
    if (!s->started) {
        rc |= message_start(s, out);
        s->started = true;
    }
    if (cJSON_IsString(thinking) && thinking->valuestring[0])
        rc |= text_delta(s, out, BLOCK_THINKING, thinking->valuestring);
    if (cJSON_IsString(content) && content->valuestring[0])
        rc |= text_delta(s, out, BLOCK_TEXT, content->valuestring);
    for (const cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc; tc = tc->next)
        rc |= tool_use(s, out, tc);
    if (is_done)
        rc |= finish(s, out, j);
    cJSON_Delete(j);
    if (rc) {
        buf_truncate(out, start);
        *s = saved;
        s->failed = true;
        apierr_no_room(err, "the streamed answer");
        return DIALECT_FAIL;
    }
    if (is_done) {
        s->done = true;
        return DIALECT_DONE;
    }
    return DIALECT_MORE;
}

int messages_stream_eof(struct messages_stream *s, struct apierr *err)
{
    return ollama_eof(s->done, &s->failed, s->backend, err);
}
