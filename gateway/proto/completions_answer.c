#include "completions_answer.h"

#include "dialect.h"
#include "jscan.h"
#include "json.h"
#include "ollama.h"
#include "sse.h"
#include "upstream_error.h"

#include <stdint.h>
#include <string.h>

/* Ceiling of the stream's private buffers; the real bound is the engine's
 * line limit. */
#define SCRATCH_MAX (SIZE_MAX / 4)

/* A chunk is head + TEXT_OPEN + the text + a close: CLOSE_PLAIN for a text
 * delta, or the logprobs and finish reason written out. */
static const char TEXT_OPEN[] = "{\"text\":";
static const char CLOSE_PLAIN[] = ",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n";

static bool fast_path = true;

void completions_set_fast_path(bool on)
{
    fast_path = on;
}

/* Characters (code points) of UTF-8 text, as OpenAI's text_offset counts
 * them: the bytes that do not continue a sequence. */
static long chars_of(const char *s)
{
    long n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* ------------------------------------------------------------------------ */
/* logprobs: native [{token,logprob,top_logprobs:[{token,logprob}]}] as       */
/* OpenAI's {tokens, token_logprobs, top_logprobs, text_offset}              */

static const char *token_of(const cJSON *e)
{
    const cJSON *t = json_get(e, "token");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static double logprob_of(const cJSON *e)
{
    const cJSON *lp = json_get(e, "logprob");
    return cJSON_IsNumber(lp) ? lp->valuedouble : 0;
}

/* Does an alternative before `stop` in the list starting at t name token? */
static bool named_before(const cJSON *t, const cJSON *stop, const char *token)
{
    for (; t != stop; t = t->next)
        if (cJSON_IsObject(t) && strcmp(token_of(t), token) == 0)
            return true;
    return false;
}

/* One token's {"<alternative>":logprob,...}: Ollama's alternatives (each
 * token once, as JSON object keys must be), then the chosen token if it was
 * not among them. */
static int put_top(struct buf *out, const cJSON *e)
{
    const cJSON *top = json_get(e, "top_logprobs");
    const cJSON *first = cJSON_IsArray(top) ? top->child : NULL;
    const char *chosen = token_of(e);
    int rc = buf_append(out, "{", 1);
    bool empty = true;
    for (const cJSON *t = first; t; t = t->next) {
        if (!cJSON_IsObject(t) || named_before(first, t, token_of(t)))
            continue;
        rc |= empty ? 0 : buf_append(out, ",", 1);
        rc |= json_put_str(out, token_of(t));
        rc |= buf_append(out, ":", 1);
        rc |= json_put_number(out, logprob_of(t));
        empty = false;
    }
    if (!named_before(first, NULL, chosen)) {
        rc |= empty ? 0 : buf_append(out, ",", 1);
        rc |= json_put_str(out, chosen);
        rc |= buf_append(out, ":", 1);
        rc |= json_put_number(out, logprob_of(e));
    }
    return rc | buf_append(out, "}", 1);
}

enum lp_part { LP_TOKENS, LP_LOGPROBS, LP_TOP, LP_OFFSETS };

/* One of the four arrays, over the entries that are objects; text_offset
 * starts at base characters. */
static int put_part(struct buf *out, const cJSON *arr, enum lp_part part, long base)
{
    int rc = buf_append(out, "[", 1);
    bool empty = true;
    for (const cJSON *e = arr->child; e; e = e->next) {
        if (!cJSON_IsObject(e))
            continue;
        rc |= empty ? 0 : buf_append(out, ",", 1);
        empty = false;
        switch (part) {
        case LP_TOKENS:
            rc |= json_put_str(out, token_of(e));
            break;
        case LP_LOGPROBS:
            rc |= json_put_number(out, logprob_of(e));
            break;
        case LP_TOP:
            rc |= put_top(out, e);
            break;
        case LP_OFFSETS:
            rc |= buf_put_int(out, base);
            base += chars_of(token_of(e));
            break;
        }
    }
    return rc | buf_append(out, "]", 1);
}

static int put_logprobs(struct buf *out, const cJSON *arr, long base)
{
    int rc = buf_puts(out, "{\"tokens\":");
    rc |= put_part(out, arr, LP_TOKENS, base);
    rc |= buf_puts(out, ",\"token_logprobs\":");
    rc |= put_part(out, arr, LP_LOGPROBS, base);
    rc |= buf_puts(out, ",\"top_logprobs\":");
    rc |= put_part(out, arr, LP_TOP, base);
    rc |= buf_puts(out, ",\"text_offset\":");
    rc |= put_part(out, arr, LP_OFFSETS, base);
    return rc | buf_append(out, "}", 1);
}

/* ',"index":0,"logprobs":…,"finish_reason":…' (null, or finish quoted). */
static int put_choice_tail(struct buf *out, const cJSON *logprobs, long base, const char *finish)
{
    int rc = buf_puts(out, ",\"index\":0,\"logprobs\":");
    rc |= logprobs ? put_logprobs(out, logprobs, base) : buf_puts(out, "null");
    if (!finish)
        return rc | buf_puts(out, ",\"finish_reason\":null");
    rc |= buf_puts(out, ",\"finish_reason\":\"");
    rc |= buf_puts(out, finish);
    return rc | buf_append(out, "\"", 1);
}

/* ',"usage":{...}}' closing the object. */
static int put_usage(struct buf *out, long prompt_tokens, long completion_tokens)
{
    int rc = buf_puts(out, ",\"usage\":{\"prompt_tokens\":");
    rc |= buf_put_int(out, prompt_tokens);
    rc |= buf_puts(out, ",\"completion_tokens\":");
    rc |= buf_put_int(out, completion_tokens);
    rc |= buf_puts(out, ",\"total_tokens\":");
    rc |= buf_put_int(out, prompt_tokens + completion_tokens);
    return rc | buf_puts(out, "}}");
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */

int completions_stream_init(struct completions_stream *s, const char *client_model,
                            const struct completions_want *want, const char *id, long created)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->head, SCRATCH_MAX);
    buf_init(&s->scratch, SCRATCH_MAX);
    s->want = *want;
    s->echoed = !want->echo;
    s->text_offset = want->echo ? chars_of(want->echo) : 0;
    int rc = sse_begin(&s->head);
    rc |= buf_puts(&s->head, "{\"id\":");
    rc |= json_put_str(&s->head, id);
    rc |= buf_puts(&s->head, ",\"object\":\"text_completion\",\"created\":");
    rc |= buf_put_int(&s->head, created);
    rc |= buf_puts(&s->head, ",\"model\":");
    rc |= json_put_str(&s->head, client_model);
    rc |= buf_puts(&s->head, ",\"choices\":[");
    return rc ? -1 : 0;
}

void completions_stream_free(struct completions_stream *s)
{
    buf_free(&s->head);
    buf_free(&s->scratch);
}

static int stream_fail(struct completions_stream *s)
{
    s->failed = true;
    return DIALECT_FAIL;
}

/* A chunk's start: "data: " + head + '{"text":'. */
static int chunk_open(const struct completions_stream *s, struct buf *out)
{
    int rc = buf_append(out, s->head.p, s->head.len);
    return rc | buf_append(out, TEXT_OPEN, sizeof TEXT_OPEN - 1);
}

/* A chunk's end, after its text. */
static int chunk_close(struct buf *out, const cJSON *logprobs, long base, const char *finish)
{
    if (!logprobs && !finish)
        return buf_append(out, CLOSE_PLAIN, sizeof CLOSE_PLAIN - 1);
    int rc = put_choice_tail(out, logprobs, base, finish);
    rc |= buf_puts(out, "}]}");
    return rc | sse_end(out);
}

/*
 * The fast path for the line that makes up almost every stream:
 *   {"model":"…","created_at":"…","response":"…","done":false}
 * (and "thinking", which is dropped). The response literal is copied as it
 * stands. Lines it cannot write byte for byte as the general path would
 * (another key, a duplicate, done:true, an escape buf_json_str writes
 * otherwise) go to the general path; so do streams that asked for logprobs
 * (every line of them carries some) and the first line of an echo.
 */
struct line_scan {
    struct str response;
    bool model, created, thinking, done;
};

static const char *line_member(void *ud, const struct str *key, const char *p, const char *end)
{
    struct line_scan *l = ud;
    struct str ignored;
    if (jscan_key_is(key, "\"response\"")) {
        if (l->response.p)
            return NULL;
        return jscan_string(p, end, true, &l->response);
    }
    bool *seen = jscan_key_is(key, "\"model\"")        ? &l->model
                 : jscan_key_is(key, "\"created_at\"") ? &l->created
                 : jscan_key_is(key, "\"done\"")       ? &l->done
                 : jscan_key_is(key, "\"thinking\"")   ? &l->thinking
                                                       : NULL;
    if (!seen || *seen)
        return NULL;
    *seen = true;
    if (seen == &l->done)
        return jscan_word(p, end, "false");
    return jscan_string(p, end, false, &ignored);
}

/* 1: the line was translated into out; 0: use the general path. */
static int fast_line(const struct completions_stream *s, const char *line, size_t len,
                     struct buf *out)
{
    const char *end = line + len;
    struct line_scan l = {0};
    const char *p = jscan_object(line, end, line_member, &l);
    if (!p || jscan_ws(p, end) != end)
        return 0;
    if (l.response.len <= 2) /* absent or "": nothing to send */
        return 1;
    size_t start = out->len;
    int rc = chunk_open(s, out);
    rc |= buf_append(out, l.response.p, l.response.len);
    rc |= buf_append(out, CLOSE_PLAIN, sizeof CLOSE_PLAIN - 1);
    if (rc) {
        /* let the general path report it the usual way */
        buf_truncate(out, start);
        return 0;
    }
    return 1;
}

int completions_stream_line(struct completions_stream *s, const char *line, size_t len,
                            struct buf *out, struct apierr *err)
{
    if (fast_path && s->echoed && !s->want.logprobs && !s->failed && !s->done &&
        fast_line(s, line, len, out))
        return DIALECT_MORE;
    if (s->failed) {
        upstream_fail(err, s->backend, "stream had already failed.");
        return DIALECT_FAIL;
    }
    if (s->done)
        return DIALECT_DONE;

    size_t start = out->len;
    long saved_offset = s->text_offset;
    int ret = DIALECT_MORE, rc = 0;
    cJSON *j = ollama_line(&s->scratch, line, len, s->backend, err);
    if (!j)
        return stream_fail(s);
    const cJSON *resp = json_get(j, "response");
    if (!json_unset(resp) && !cJSON_IsString(resp)) {
        upstream_fail(err, s->backend, "sent a stream line with a malformed response.");
        goto out_fail;
    }
    const cJSON *logprobs = s->want.logprobs ? json_get(j, "logprobs") : NULL;
    if (!json_has_entries(logprobs))
        logprobs = NULL;

    if (!s->echoed) {
        /* the prompt first, as soon as the model answers */
        rc |= chunk_open(s, out);
        rc |= json_put_str(out, s->want.echo);
        rc |= chunk_close(out, NULL, 0, NULL);
    }
    if (cJSON_IsString(resp) && resp->valuestring[0]) {
        rc |= chunk_open(s, out);
        rc |= json_put_str(out, resp->valuestring);
        rc |= chunk_close(out, logprobs, s->text_offset, NULL);
        s->text_offset += chars_of(resp->valuestring);
    }
    if (cJSON_IsTrue(json_get(j, "done"))) {
        s->prompt_tokens = ollama_count(j, "prompt_eval_count");
        s->completion_tokens = ollama_count(j, "eval_count");
        rc |= chunk_open(s, out);
        rc |= buf_append(out, "\"\"", 2);
        rc |= chunk_close(out, NULL, 0, ollama_length(j) ? "length" : "stop");
        if (s->want.include_usage) {
            rc |= buf_append(out, s->head.p, s->head.len);
            rc |= buf_append(out, "]", 1);
            rc |= put_usage(out, s->prompt_tokens, s->completion_tokens);
            rc |= sse_end(out);
        }
        rc |= sse_done(out);
        ret = DIALECT_DONE;
    }
    if (rc) {
        apierr_no_room(err, "the streamed answer");
        goto out_fail;
    }
    s->echoed = true;
    s->done = ret == DIALECT_DONE;
    cJSON_Delete(j);
    return ret;

out_fail:
    buf_truncate(out, start);
    s->text_offset = saved_offset;
    cJSON_Delete(j);
    return stream_fail(s);
}

int completions_stream_eof(struct completions_stream *s, struct apierr *err)
{
    return ollama_eof(s->done, &s->failed, s->backend, err);
}

/* ------------------------------------------------------------------------ */
/* Whole answers                                                             */

/* The text: the echoed prompt (if any), then the answer's text, given as a
 * JSON literal to copy (lit.p set) or as text to escape; one JSON string. */
static int put_text(struct buf *out, const char *echo, struct str lit, const char *text)
{
    int rc = buf_append(out, "\"", 1);
    if (echo)
        rc |= buf_json_esc(out, echo, strlen(echo));
    if (lit.p)
        rc |= buf_append(out, lit.p + 1, lit.len - 2);
    else
        rc |= buf_json_esc(out, text, strlen(text));
    return rc | buf_append(out, "\"", 1);
}

int completions_complete(const char *body, size_t len, const char *client_model, const char *id,
                         long created, const struct completions_want *want,
                         const char *backend_name, struct buf *out, long *prompt_tokens,
                         long *completion_tokens, struct apierr *err)
{
    struct ollama_fast_answer a;
    struct str lit = {0};
    const char *text = "", *finish;
    const cJSON *logprobs = NULL;
    long pt, ct;
    size_t start = out->len;
    cJSON *j = NULL;

    if (fast_path && ollama_scan_answer(body, len, &a) && !a.message) {
        lit = a.content;
        finish = ollama_fast_length(&a) ? "length" : "stop";
        pt = a.prompt_tokens;
        ct = a.completion_tokens;
    } else {
        j = ollama_answer(body, len, backend_name, err);
        if (!j)
            return -1;
        const cJSON *resp = json_get(j, "response");
        if (!json_unset(resp) && !cJSON_IsString(resp)) {
            upstream_fail(err, backend_name, "answered with a malformed response.");
            cJSON_Delete(j);
            return -1;
        }
        if (cJSON_IsString(resp))
            text = resp->valuestring;
        logprobs = want->logprobs ? json_get(j, "logprobs") : NULL;
        if (!json_has_entries(logprobs))
            logprobs = NULL;
        finish = ollama_length(j) ? "length" : "stop";
        pt = ollama_count(j, "prompt_eval_count");
        ct = ollama_count(j, "eval_count");
    }

    int rc = buf_puts(out, "{\"id\":");
    rc |= json_put_str(out, id);
    rc |= buf_puts(out, ",\"object\":\"text_completion\",\"created\":");
    rc |= buf_put_int(out, created);
    rc |= buf_puts(out, ",\"model\":");
    rc |= json_put_str(out, client_model);
    rc |= buf_puts(out, ",\"choices\":[{\"text\":");
    rc |= put_text(out, want->echo, lit, text);
    rc |= put_choice_tail(out, logprobs, want->echo ? chars_of(want->echo) : 0, finish);
    rc |= buf_puts(out, "}]");
    rc |= put_usage(out, pt, ct);
    cJSON_Delete(j);
    return ollama_answer_written(rc, out, start, pt, ct, prompt_tokens, completion_tokens, err);
}
