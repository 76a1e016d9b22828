#include "responses_answer.h"

#include "chat_answer.h"
#include "json.h"
#include "ollama.h"
#include "upstream_error.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SCRATCH_MAX (SIZE_MAX / 4)

/* The random part of the response id: what follows "resp_". */
static const char *id_tail(const struct responses_meta *m)
{
    const char *u = strchr(m->id, '_');
    return u ? u + 1 : m->id;
}

int responses_put_item_id(struct buf *out, const struct responses_meta *m, const char *prefix,
                          unsigned index)
{
    return buf_printf(out, "\"%s_%s_%u\"", prefix, id_tail(m), index);
}

static int put_lit(struct buf *out, const char *esc, size_t len)
{
    int rc = buf_append(out, "\"", 1);
    if (len)
        rc |= buf_append(out, esc, len);
    return rc | buf_append(out, "\"", 1);
}

int responses_put_reasoning(struct buf *out, const struct responses_meta *m, unsigned index,
                            const char *esc, size_t len, bool done)
{
    int rc = buf_puts(out, "{\"id\":");
    rc |= responses_put_item_id(out, m, "rs", index);
    rc |= buf_puts(out, ",\"type\":\"reasoning\",\"summary\":[");
    if (done) {
        rc |= buf_puts(out, "{\"type\":\"summary_text\",\"text\":");
        rc |= put_lit(out, esc, len);
        rc |= buf_append(out, "}", 1);
    }
    return rc | buf_puts(out, "]}");
}

int responses_put_message(struct buf *out, const struct responses_meta *m, unsigned index,
                          const char *esc, size_t len, bool done)
{
    int rc = buf_puts(out, "{\"id\":");
    rc |= responses_put_item_id(out, m, "msg", index);
    rc |= buf_puts(out, done ? ",\"type\":\"message\",\"status\":\"completed\""
                             : ",\"type\":\"message\",\"status\":\"in_progress\"");
    rc |= buf_puts(out, ",\"role\":\"assistant\",\"content\":[");
    if (done) {
        rc |= buf_puts(out, "{\"type\":\"output_text\",\"text\":");
        rc |= put_lit(out, esc, len);
        rc |= buf_puts(out, ",\"annotations\":[],\"logprobs\":[]}");
    }
    return rc | buf_puts(out, "]}");
}

/* The namespace group the function tool name came from, or NULL. */
static const char *namespace_of(const struct responses_meta *m, const char *name)
{
    const char *p = m->namespaces, *end = p ? p + m->namespaces_len : NULL;
    while (p && p < end) {
        const char *ns = p + strlen(p) + 1;
        if (strcmp(p, name) == 0)
            return ns;
        p = ns + strlen(ns) + 1;
    }
    return NULL;
}

/* A call item: a function call (id "fc_…", its namespace if it has one, the
 * text as "arguments") or a custom tool call ("ctc_…", the text as "input"). */
static int put_call_item(struct buf *out, const struct responses_meta *m, unsigned index,
                         bool custom, const char *call_id, const char *name, const char *text,
                         bool done)
{
    const char *ns = custom ? NULL : namespace_of(m, name);
    int rc = buf_puts(out, "{\"id\":");
    rc |= responses_put_item_id(out, m, custom ? "ctc" : "fc", index);
    rc |= buf_puts(out, custom ? ",\"type\":\"custom_tool_call\"" : ",\"type\":\"function_call\"");
    rc |= buf_puts(out, done ? ",\"status\":\"completed\"" : ",\"status\":\"in_progress\"");
    rc |= buf_puts(out, ",\"call_id\":");
    rc |= json_put_str(out, call_id);
    rc |= buf_puts(out, ",\"name\":");
    rc |= json_put_str(out, name);
    if (ns) {
        rc |= buf_puts(out, ",\"namespace\":");
        rc |= json_put_str(out, ns);
    }
    rc |= buf_puts(out, custom ? ",\"input\":" : ",\"arguments\":");
    rc |= json_put_str(out, done ? text : "");
    return rc | buf_append(out, "}", 1);
}

int responses_put_call(struct buf *out, const struct responses_meta *m, unsigned index,
                       const char *call_id, const char *name, const char *args, bool done)
{
    return put_call_item(out, m, index, false, call_id, name, args, done);
}

bool responses_is_custom(const struct responses_meta *m, const char *name)
{
    for (const char *p = m->customs, *end = p ? p + m->customs_len : NULL; p && p < end;
         p += strlen(p) + 1)
        if (strcmp(p, name) == 0)
            return true;
    return false;
}

int responses_put_custom_call(struct buf *out, const struct responses_meta *m, unsigned index,
                              const char *call_id, const char *name, const char *input, bool done)
{
    return put_call_item(out, m, index, true, call_id, name, input, done);
}

char *responses_custom_input(const cJSON *tool_call)
{
    const cJSON *args = json_get(json_get(tool_call, "function"), "arguments");
    const cJSON *input = json_get(args, "input");
    if (!cJSON_IsString(input))
        return responses_call_args(tool_call);
    size_t n = strlen(input->valuestring) + 1;
    char *copy = cJSON_malloc(n);
    if (copy)
        memcpy(copy, input->valuestring, n);
    return copy;
}

char *responses_call_args(const cJSON *tool_call)
{
    const cJSON *args = json_get(json_get(tool_call, "function"), "arguments");
    const char *text = "{}";
    if (cJSON_IsString(args))
        text = args->valuestring;
    else if (!json_unset(args))
        return cJSON_PrintUnformatted(args);
    size_t n = strlen(text) + 1;
    char *copy = cJSON_malloc(n);
    if (copy)
        memcpy(copy, text, n);
    return copy;
}

const char *responses_call_id(const cJSON *tool_call, const struct responses_meta *m,
                              unsigned index, char *buf, size_t size)
{
    const cJSON *id = json_get(tool_call, "id");
    if (cJSON_IsString(id) && id->valuestring[0])
        return id->valuestring;
    snprintf(buf, size, "call_%s_%u", id_tail(m), index);
    return buf;
}

int responses_put_response(struct buf *out, const struct responses_meta *m, const char *items,
                           size_t items_len, const struct responses_end *e)
{
    int rc = buf_puts(out, "{\"id\":");
    rc |= json_put_str(out, m->id);
    rc |= buf_puts(out, ",\"object\":\"response\",\"created_at\":");
    rc |= buf_put_int(out, m->created);
    rc |= buf_puts(out, ",\"status\":\"");
    rc |= buf_puts(out, e->status);
    rc |= buf_puts(out, "\",\"error\":");
    if (e->error) {
        rc |= buf_puts(out, "{\"code\":");
        rc |= json_put_str(out, e->error->code ? e->error->code : "server_error");
        rc |= buf_puts(out, ",\"message\":");
        rc |= json_put_str(out, e->error->message);
        rc |= buf_append(out, "}", 1);
    } else {
        rc |= buf_puts(out, "null");
    }
    rc |= buf_puts(out, e->length ? ",\"incomplete_details\":{\"reason\":\"max_output_tokens\"}"
                                  : ",\"incomplete_details\":null");
    rc |= buf_puts(out, ",\"model\":");
    rc |= json_put_str(out, m->model);
    rc |= buf_puts(out, ",\"output\":[");
    if (items_len)
        rc |= buf_append(out, items, items_len);
    rc |= buf_puts(out, "],\"usage\":");
    if (e->usage) {
        rc |= buf_puts(out, "{\"input_tokens\":");
        rc |= buf_put_int(out, e->input_tokens);
        rc |= buf_puts(out, ",\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":");
        rc |= buf_put_int(out, e->output_tokens);
        rc |=
            buf_puts(out, ",\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":");
        rc |= buf_put_int(out, e->input_tokens + e->output_tokens);
        rc |= buf_append(out, "}", 1);
    } else {
        rc |= buf_puts(out, "null");
    }
    return rc | buf_append(out, "}", 1);
}

/* The output items of a whole answer, comma-separated, into items. */
static int put_items(struct buf *items, const struct responses_meta *m, const cJSON *content,
                     const cJSON *thinking, const cJSON *tcs)
{
    struct buf esc;
    buf_init(&esc, SCRATCH_MAX);
    unsigned n = 0;
    int rc = 0;
    bool has_calls = json_has_entries(tcs);
    const char *text = cJSON_IsString(content) ? content->valuestring : "";
    if (cJSON_IsString(thinking) && thinking->valuestring[0]) {
        rc |= buf_json_esc(&esc, thinking->valuestring, strlen(thinking->valuestring));
        rc |= responses_put_reasoning(items, m, n++, esc.p, esc.len, true);
        buf_reset(&esc);
    }
    if (text[0] || !has_calls) {
        if (n)
            rc |= buf_append(items, ",", 1);
        rc |= buf_json_esc(&esc, text, strlen(text));
        rc |= responses_put_message(items, m, n++, esc.p, esc.len, true);
    }
    for (const cJSON *tc = has_calls ? tcs->child : NULL; tc && !rc; tc = tc->next) {
        char idbuf[96];
        const char *name = json_get(json_get(tc, "function"), "name")->valuestring;
        bool custom = responses_is_custom(m, name);
        char *args = custom ? responses_custom_input(tc) : responses_call_args(tc);
        if (!args) {
            rc = -1;
            break;
        }
        if (n)
            rc |= buf_append(items, ",", 1);
        const char *call_id = responses_call_id(tc, m, n, idbuf, sizeof idbuf);
        rc |= custom ? responses_put_custom_call(items, m, n, call_id, name, args, true)
                     : responses_put_call(items, m, n, call_id, name, args, true);
        n++;
        cJSON_free(args);
    }
    buf_free(&esc);
    return rc;
}

int responses_complete(const char *body, size_t len, const struct responses_meta *m,
                       const char *backend_name, struct buf *out, long *prompt_tokens,
                       long *completion_tokens, struct apierr *err)
{
    size_t start = out->len;
    cJSON *j = ollama_answer(body, len, backend_name, err);
    if (!j)
        return -1;
    const cJSON *content, *thinking, *tcs;
    const char *why = chat_read_message(j, &content, &thinking, &tcs);
    if (why) {
        upstream_fail(err, backend_name, "answered with %s.", why);
        cJSON_Delete(j);
        return -1;
    }
    struct buf items;
    buf_init(&items, out->max);
    struct responses_end e = {
        .status = ollama_length(j) ? "incomplete" : "completed",
        .length = ollama_length(j),
        .usage = true,
        .input_tokens = ollama_count(j, "prompt_eval_count"),
        .output_tokens = ollama_count(j, "eval_count"),
    };
    int rc = put_items(&items, m, content, thinking, tcs);
    if (!rc)
        rc = responses_put_response(out, m, items.p, items.len, &e);
    buf_free(&items);
    cJSON_Delete(j);
    return ollama_answer_written(rc, out, start, e.input_tokens, e.output_tokens, prompt_tokens,
                                 completion_tokens, err);
}
