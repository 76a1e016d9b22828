#include "responses_stream.h"

#include "chat_answer.h"
#include "json.h"
#include "ollama.h"
#include "upstream_error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRATCH_MAX (SIZE_MAX / 4)

/* What the stream keeps of the answer for response.completed (the done
 * items, the open item's text): as much as a whole non-streamed answer may
 * be. Past it the stream fails (500) rather than hold an unbounded answer
 * twice. */
#define KEPT_MAX (64u << 20)

/* The kinds of item that stay open while their text streams. */
enum { OPEN_NONE, OPEN_REASONING, OPEN_MESSAGE };

int responses_stream_init(struct responses_stream *s, const char *id, const char *client_model,
                          long created)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->items, KEPT_MAX);
    buf_init(&s->text, KEPT_MAX);
    buf_init(&s->scratch, SCRATCH_MAX);
    snprintf(s->id, sizeof s->id, "%s", id);
    s->model = strdup(client_model);
    s->meta = (struct responses_meta){.id = s->id, .model = s->model, .created = created};
    return s->model ? 0 : -1;
}

void responses_stream_set_namespaces(struct responses_stream *s, const char *p, size_t len)
{
    s->meta.namespaces = p;
    s->meta.namespaces_len = len;
}

void responses_stream_set_customs(struct responses_stream *s, const char *p, size_t len)
{
    s->meta.customs = p;
    s->meta.customs_len = len;
}

void responses_stream_set_backend(struct responses_stream *s, const char *backend)
{
    snprintf(s->backend, sizeof s->backend, "%s", backend ? backend : "");
}

void responses_stream_free(struct responses_stream *s)
{
    buf_free(&s->items);
    buf_free(&s->text);
    buf_free(&s->scratch);
    free(s->model);
    s->model = NULL;
}

/* "event: <type>\ndata: {"type":"<type>","sequence_number":N" — the caller
 * writes the rest of the object, then ev_end. */
static int ev_begin(struct responses_stream *s, struct buf *out, const char *type)
{
    return buf_printf(out, "event: %s\ndata: {\"type\":\"%s\",\"sequence_number\":%u", type, type,
                      s->seq++);
}

static int ev_end(struct buf *out)
{
    return buf_puts(out, "}\n\n");
}

/* ,"item_id":…,"output_index":N for the item at index with the prefix. */
static int put_ref(struct responses_stream *s, struct buf *out, const char *prefix, unsigned index)
{
    int rc = buf_puts(out, ",\"item_id\":");
    rc |= responses_put_item_id(out, &s->meta, prefix, index);
    return rc | buf_printf(out, ",\"output_index\":%u", index);
}

/* An event that carries a whole response (created, in_progress, completed…). */
static int put_response_event(struct responses_stream *s, struct buf *out, const char *type,
                              const struct responses_end *e)
{
    int rc = ev_begin(s, out, type);
    rc |= buf_puts(out, ",\"response\":");
    rc |= responses_put_response(out, &s->meta, s->items.p, s->items.len, e);
    return rc | ev_end(out);
}

static int start(struct responses_stream *s, struct buf *out)
{
    if (s->started)
        return 0;
    s->started = true;
    struct responses_end e = {.status = "in_progress"};
    int rc = put_response_event(s, out, "response.created", &e);
    return rc | put_response_event(s, out, "response.in_progress", &e);
}

/* output_item.added/.done for the open item, written by put. */
static int item_event(struct responses_stream *s, struct buf *out, bool done)
{
    unsigned index = s->nitems - 1;
    int rc = ev_begin(s, out, done ? "response.output_item.done" : "response.output_item.added");
    rc |= buf_printf(out, ",\"output_index\":%u,\"item\":", index);
    if (s->open == OPEN_REASONING)
        rc |= responses_put_reasoning(out, &s->meta, index, s->text.p, s->text.len, done);
    else
        rc |= responses_put_message(out, &s->meta, index, s->text.p, s->text.len, done);
    return rc | ev_end(out);
}

/* The part (summary or content) of the open item, as in its .added/.done. */
static int put_part(struct responses_stream *s, struct buf *out)
{
    int rc = buf_puts(out, s->open == OPEN_REASONING ? "{\"type\":\"summary_text\",\"text\":\""
                                                     : "{\"type\":\"output_text\",\"text\":\"");
    if (s->text.len)
        rc |= buf_append(out, s->text.p, s->text.len);
    return rc | buf_puts(out, s->open == OPEN_REASONING ? "\"}"
                                                        : "\",\"annotations\":[],\"logprobs\":[]}");
}

static int part_event(struct responses_stream *s, struct buf *out, const char *type)
{
    bool r = s->open == OPEN_REASONING;
    int rc = ev_begin(s, out, type);
    rc |= put_ref(s, out, r ? "rs" : "msg", s->nitems - 1);
    rc |= buf_puts(out, r ? ",\"summary_index\":0,\"part\":" : ",\"content_index\":0,\"part\":");
    rc |= put_part(s, out);
    return rc | ev_end(out);
}

static int open_item(struct responses_stream *s, struct buf *out, int kind)
{
    s->open = kind;
    s->nitems++;
    buf_reset(&s->text);
    int rc = item_event(s, out, false);
    return rc | part_event(s, out,
                           kind == OPEN_REASONING ? "response.reasoning_summary_part.added"
                                                  : "response.content_part.added");
}

static int close_item(struct responses_stream *s, struct buf *out)
{
    if (s->open == OPEN_NONE)
        return 0;
    bool r = s->open == OPEN_REASONING;
    int rc =
        ev_begin(s, out, r ? "response.reasoning_summary_text.done" : "response.output_text.done");
    rc |= put_ref(s, out, r ? "rs" : "msg", s->nitems - 1);
    rc |=
        buf_puts(out, r ? ",\"summary_index\":0,\"text\":\"" : ",\"content_index\":0,\"text\":\"");
    if (s->text.len)
        rc |= buf_append(out, s->text.p, s->text.len);
    rc |= buf_puts(out, r ? "\"" : "\",\"logprobs\":[]");
    rc |= ev_end(out);
    rc |= part_event(s, out,
                     r ? "response.reasoning_summary_part.done" : "response.content_part.done");
    rc |= item_event(s, out, true);
    /* the done item, for the final response's output */
    if (s->items.len)
        rc |= buf_append(&s->items, ",", 1);
    if (r)
        rc |= responses_put_reasoning(&s->items, &s->meta, s->nitems - 1, s->text.p, s->text.len,
                                      true);
    else
        rc |=
            responses_put_message(&s->items, &s->meta, s->nitems - 1, s->text.p, s->text.len, true);
    s->open = OPEN_NONE;
    return rc;
}

/* A delta of text for an item of the kind, opening it first if need be. */
static int delta(struct responses_stream *s, struct buf *out, int kind, const char *text)
{
    int rc = 0;
    if (s->open != kind) {
        rc |= close_item(s, out);
        rc |= open_item(s, out, kind);
    }
    bool r = kind == OPEN_REASONING;
    size_t from = s->text.len;
    rc |= buf_json_esc(&s->text, text, strlen(text));
    rc |= ev_begin(s, out,
                   r ? "response.reasoning_summary_text.delta" : "response.output_text.delta");
    rc |= put_ref(s, out, r ? "rs" : "msg", s->nitems - 1);
    rc |= buf_puts(out,
                   r ? ",\"summary_index\":0,\"delta\":\"" : ",\"content_index\":0,\"delta\":\"");
    rc |= buf_append(out, s->text.p + from, s->text.len - from);
    rc |= buf_puts(out, r ? "\"" : "\",\"logprobs\":[]");
    return rc | ev_end(out);
}

/* What differs between a function call's events and a custom tool call's:
 * their names, the item id's prefix, the field that carries the text, and
 * the item's writer. */
struct call_kind {
    const char *delta_event, *done_event, *ref, *text_field;
    bool name_in_done; /* the done event repeats the name (function calls) */
    int (*put)(struct buf *, const struct responses_meta *, unsigned, const char *, const char *,
               const char *, bool);
};

static const struct call_kind function_kind = {
    .delta_event = "response.function_call_arguments.delta",
    .done_event = "response.function_call_arguments.done",
    .ref = "fc",
    .text_field = "arguments",
    .name_in_done = true,
    .put = responses_put_call,
};

static const struct call_kind custom_kind = {
    .delta_event = "response.custom_tool_call_input.delta",
    .done_event = "response.custom_tool_call_input.done",
    .ref = "ctc",
    .text_field = "input",
    .name_in_done = false,
    .put = responses_put_custom_call,
};

/* One whole call as its four events: added, its text as one delta, done,
 * the item done; and the item kept for response.completed. */
static int call_events(struct responses_stream *s, struct buf *out, const struct call_kind *k,
                       unsigned index, const char *call_id, const char *name, const char *text)
{
    int rc = ev_begin(s, out, "response.output_item.added");
    rc |= buf_printf(out, ",\"output_index\":%u,\"item\":", index);
    rc |= k->put(out, &s->meta, index, call_id, name, text, false);
    rc |= ev_end(out);
    rc |= ev_begin(s, out, k->delta_event);
    rc |= put_ref(s, out, k->ref, index);
    rc |= buf_puts(out, ",\"delta\":");
    rc |= json_put_str(out, text);
    rc |= ev_end(out);
    rc |= ev_begin(s, out, k->done_event);
    rc |= put_ref(s, out, k->ref, index);
    if (k->name_in_done) {
        rc |= buf_puts(out, ",\"name\":");
        rc |= json_put_str(out, name);
    }
    rc |= buf_printf(out, ",\"%s\":", k->text_field);
    rc |= json_put_str(out, text);
    rc |= ev_end(out);
    rc |= ev_begin(s, out, "response.output_item.done");
    rc |= buf_printf(out, ",\"output_index\":%u,\"item\":", index);
    rc |= k->put(out, &s->meta, index, call_id, name, text, true);
    rc |= ev_end(out);
    if (s->items.len)
        rc |= buf_append(&s->items, ",", 1);
    return rc | k->put(&s->items, &s->meta, index, call_id, name, text, true);
}

/* One whole tool call, a function's or a custom tool's. */
static int call(struct responses_stream *s, struct buf *out, const cJSON *tc)
{
    char idbuf[96];
    unsigned index = s->nitems++;
    const char *name = json_get(json_get(tc, "function"), "name")->valuestring;
    const char *call_id = responses_call_id(tc, &s->meta, index, idbuf, sizeof idbuf);
    bool custom = responses_is_custom(&s->meta, name);
    char *text = custom ? responses_custom_input(tc) : responses_call_args(tc);
    if (!text)
        return -1;
    int rc =
        call_events(s, out, custom ? &custom_kind : &function_kind, index, call_id, name, text);
    cJSON_free(text);
    return rc;
}

static int finish(struct responses_stream *s, struct buf *out, const cJSON *j)
{
    s->prompt_tokens = ollama_count(j, "prompt_eval_count");
    s->completion_tokens = ollama_count(j, "eval_count");
    int rc = close_item(s, out);
    if (!s->nitems) { /* no output at all: one empty message */
        rc |= open_item(s, out, OPEN_MESSAGE);
        rc |= close_item(s, out);
    }
    bool length = ollama_length(j);
    struct responses_end e = {
        .status = length ? "incomplete" : "completed",
        .length = length,
        .usage = true,
        .input_tokens = s->prompt_tokens,
        .output_tokens = s->completion_tokens,
    };
    return rc |
           put_response_event(s, out, length ? "response.incomplete" : "response.completed", &e);
}

static bool has_text(const cJSON *v)
{
    return cJSON_IsString(v) && v->valuestring[0];
}

int responses_stream_line(struct responses_stream *s, const char *line, size_t len, struct buf *out,
                          struct apierr *err)
{
    if (s->failed) {
        upstream_fail(err, s->backend, "stream had already failed.");
        return RESPONSES_FAIL;
    }
    if (s->done)
        return RESPONSES_DONE;
    size_t at = out->len;
    unsigned seq = s->seq;
    size_t items = s->items.len;
    bool started = s->started;
    cJSON *j = ollama_line(&s->scratch, line, len, s->backend, err);
    if (!j) {
        s->failed = true;
        return RESPONSES_FAIL;
    }
    const cJSON *content, *thinking, *tcs;
    const char *why = chat_read_message(j, &content, &thinking, &tcs);
    if (why) {
        upstream_fail(err, s->backend, "sent a stream line with %s.", why);
        goto fail;
    }
    bool is_done = cJSON_IsTrue(json_get(j, "done"));
    int rc = start(s, out);
    if (has_text(thinking))
        rc |= delta(s, out, OPEN_REASONING, thinking->valuestring);
    if (has_text(content))
        rc |= delta(s, out, OPEN_MESSAGE, content->valuestring);
    for (const cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc && !rc; tc = tc->next) {
        rc |= close_item(s, out);
        rc |= call(s, out, tc);
    }
    if (is_done)
        rc |= finish(s, out, j);
    if (rc) {
        apierr_no_room(err, "the streamed answer");
        goto fail;
    }
    cJSON_Delete(j);
    if (!is_done)
        return RESPONSES_MORE;
    s->done = true;
    return RESPONSES_DONE;

fail:
    /* Nothing of this line reaches the client; the failure event goes on
     * numbering from what it saw. */
    buf_truncate(out, at);
    buf_truncate(&s->items, items);
    s->seq = seq;
    s->started = started;
    s->failed = true;
    cJSON_Delete(j);
    return RESPONSES_FAIL;
}

int responses_stream_eof(struct responses_stream *s, struct apierr *err)
{
    return ollama_eof(s->done, &s->failed, s->backend, err) == DIALECT_DONE ? RESPONSES_DONE
                                                                            : RESPONSES_FAIL;
}

int responses_stream_fail(struct responses_stream *s, struct buf *out, const struct apierr *e)
{
    size_t at = out->len;
    unsigned seq = s->seq;
    struct responses_end end = {.status = "failed", .error = e};
    int rc = start(s, out);
    rc |= put_response_event(s, out, "response.failed", &end);
    if (rc) {
        buf_truncate(out, at);
        s->seq = seq;
        return -1;
    }
    return 0;
}
