#include "messages_answer.h"

#include "chat_answer.h"
#include "json.h"
#include "ollama.h"
#include "rand.h"
#include "upstream_error.h"

#include <stdint.h>
#include <string.h>

const char *messages_stop_reason(const cJSON *done, bool tool_use)
{
    if (ollama_length(done))
        return "max_tokens";
    return tool_use ? "tool_use" : "end_turn";
}

char *messages_input_text(const cJSON *args)
{
    if (cJSON_IsObject(args))
        return cJSON_PrintUnformatted(args);
    if (cJSON_IsString(args)) {
        /* some backends send the arguments as JSON text, as OpenAI does
         * (json_parse: cJSON_Parse would write cJSON's global error) */
        struct buf scratch;
        size_t at;
        buf_init(&scratch, SIZE_MAX / 4);
        cJSON *o = json_parse(&scratch, args->valuestring, strlen(args->valuestring), &at);
        buf_free(&scratch);
        char *text = cJSON_IsObject(o) ? cJSON_PrintUnformatted(o) : NULL;
        bool parsed = cJSON_IsObject(o);
        cJSON_Delete(o);
        if (parsed)
            return text;
    }
    char *empty = cJSON_malloc(3);
    if (empty)
        memcpy(empty, "{}", 3);
    return empty;
}

void messages_tool_id(char *out, size_t size)
{
    rand_id(out, size, "toolu_");
}

static int put_tool_uses(struct buf *out, const cJSON *tcs, bool *first)
{
    int rc = 0;
    for (const cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc; tc = tc->next) {
        const cJSON *fn = json_get(tc, "function");
        char id[40];
        messages_tool_id(id, sizeof id);
        char *input = messages_input_text(json_get(fn, "arguments"));
        if (!*first)
            rc |= buf_append(out, ",", 1);
        *first = false;
        rc |= buf_puts(out, "{\"type\":\"tool_use\",\"id\":");
        rc |= json_put_str(out, id);
        rc |= buf_puts(out, ",\"name\":");
        rc |= json_put_str(out, json_get(fn, "name")->valuestring);
        rc |= buf_puts(out, ",\"input\":");
        rc |= input ? buf_puts(out, input) : -1;
        rc |= buf_append(out, "}", 1);
        cJSON_free(input);
    }
    return rc;
}

int messages_complete(const char *body, size_t len, const char *client_model, const char *id,
                      const char *backend, struct buf *out, long *prompt_tokens,
                      long *completion_tokens, struct apierr *err)
{
    size_t start = out->len;
    cJSON *j = ollama_answer(body, len, backend, err);
    if (!j)
        return -1;
    const cJSON *content, *thinking, *tcs;
    const char *why = chat_read_message(j, &content, &thinking, &tcs);
    if (why) {
        upstream_fail(err, backend, "answered with %s.", why);
        cJSON_Delete(j);
        return -1;
    }
    bool has_calls = json_has_entries(tcs);
    bool has_thinking = cJSON_IsString(thinking) && thinking->valuestring[0];
    bool has_text = cJSON_IsString(content) && content->valuestring[0];
    long pt = ollama_count(j, "prompt_eval_count"), ct = ollama_count(j, "eval_count");
    bool first = true;

    int rc = buf_puts(out, "{\"id\":");
    rc |= json_put_str(out, id);
    rc |= buf_puts(out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    rc |= json_put_str(out, client_model);
    rc |= buf_puts(out, ",\"content\":[");
    if (has_thinking) {
        rc |= buf_puts(out, "{\"type\":\"thinking\",\"thinking\":");
        rc |= json_put_str(out, thinking->valuestring);
        rc |= buf_puts(out, ",\"signature\":\"\"}");
        first = false;
    }
    if (has_text || (!has_thinking && !has_calls)) {
        rc |=
            buf_puts(out, first ? "{\"type\":\"text\",\"text\":" : ",{\"type\":\"text\",\"text\":");
        rc |= json_put_str(out, has_text ? content->valuestring : "");
        rc |= buf_append(out, "}", 1);
        first = false;
    }
    rc |= put_tool_uses(out, tcs, &first);
    rc |= buf_puts(out, "],\"stop_reason\":\"");
    rc |= buf_puts(out, messages_stop_reason(j, has_calls));
    rc |= buf_puts(out, "\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":");
    rc |= buf_put_int(out, pt);
    rc |= buf_puts(out, ",\"output_tokens\":");
    rc |= buf_put_int(out, ct);
    rc |= buf_puts(out, "}}");
    cJSON_Delete(j);
    return ollama_answer_written(rc, out, start, pt, ct, prompt_tokens, completion_tokens, err);
}
