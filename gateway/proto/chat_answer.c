#include "chat_answer.h"

#include "json.h"
#include "ollama.h"
#include "rand.h"

bool chat_fast_path = true;

void chat_set_fast_path(bool on)
{
    chat_fast_path = on;
}

/* One native logprob entry's "bytes" as an OpenAI array of ints, or null. */
static int put_bytes(struct buf *out, const cJSON *bytes)
{
    if (!cJSON_IsArray(bytes))
        return buf_puts(out, "null");
    int rc = buf_append(out, "[", 1);
    bool first = true;
    for (const cJSON *b = bytes->child; b; b = b->next) {
        if (!cJSON_IsNumber(b))
            continue;
        double d = b->valuedouble;
        int v = d >= 0 && d <= 255 ? (int)d : 0;
        rc |= buf_printf(out, first ? "%d" : ",%d", v);
        first = false;
    }
    return rc | buf_append(out, "]", 1);
}

static int put_logprob(struct buf *out, const cJSON *e, bool with_top)
{
    const cJSON *tok = json_get(e, "token"), *lp = json_get(e, "logprob");
    int rc = buf_puts(out, "{\"token\":");
    rc |= json_put_str(out, cJSON_IsString(tok) ? tok->valuestring : "");
    rc |= buf_puts(out, ",\"logprob\":");
    rc |= json_put_number(out, cJSON_IsNumber(lp) ? lp->valuedouble : 0);
    rc |= buf_puts(out, ",\"bytes\":");
    rc |= put_bytes(out, json_get(e, "bytes"));
    if (with_top) {
        const cJSON *top = json_get(e, "top_logprobs");
        rc |= buf_puts(out, ",\"top_logprobs\":[");
        bool first = true;
        for (const cJSON *t = cJSON_IsArray(top) ? top->child : NULL; t; t = t->next) {
            if (!cJSON_IsObject(t))
                continue;
            if (!first)
                rc |= buf_append(out, ",", 1);
            rc |= put_logprob(out, t, false);
            first = false;
        }
        rc |= buf_append(out, "]", 1);
    }
    return rc | buf_append(out, "}", 1);
}

int chat_put_logprobs(struct buf *out, const cJSON *arr)
{
    int rc = buf_puts(out, "{\"content\":[");
    bool first = true;
    for (const cJSON *e = arr->child; e; e = e->next) {
        if (!cJSON_IsObject(e))
            continue;
        if (!first)
            rc |= buf_append(out, ",", 1);
        rc |= put_logprob(out, e, true);
        first = false;
    }
    return rc | buf_puts(out, "],\"refusal\":null}");
}

/*
 * A native message's tool calls, checked before anything is written. Each
 * must be an object with function.name a string; returns the count, or -1
 * with *why set.
 */
static int count_tool_calls(const cJSON *tcs, const char **why)
{
    int n = 0;
    for (const cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc; tc = tc->next, n++) {
        const cJSON *fn = json_get(tc, "function");
        if (!cJSON_IsObject(tc) || !cJSON_IsObject(fn)) {
            *why = "a tool call without a function object";
            return -1;
        }
        if (!cJSON_IsString(json_get(fn, "name"))) {
            *why = "a tool call without a function name";
            return -1;
        }
    }
    return n;
}

int chat_put_tool_calls(struct buf *out, const cJSON *tcs, bool with_index, unsigned *next)
{
    int rc = 0;
    bool first = true;
    for (const cJSON *tc = tcs->child; tc; tc = tc->next) {
        const cJSON *fn = json_get(tc, "function");
        const cJSON *id = json_get(tc, "id");
        const cJSON *args = json_get(fn, "arguments");
        if (!first)
            rc |= buf_append(out, ",", 1);
        first = false;
        if (with_index)
            rc |= buf_printf(out, "{\"index\":%u,\"id\":", (*next)++);
        else
            rc |= buf_puts(out, "{\"id\":");
        if (cJSON_IsString(id) && id->valuestring[0]) {
            rc |= json_put_str(out, id->valuestring);
        } else {
            char made[40];
            rand_id(made, sizeof made, "call_");
            rc |= json_put_str(out, made);
        }
        rc |= buf_puts(out, ",\"type\":\"function\",\"function\":{\"name\":");
        rc |= json_put_str(out, json_get(fn, "name")->valuestring);
        rc |= buf_puts(out, ",\"arguments\":");
        if (cJSON_IsString(args)) {
            rc |= json_put_str(out, args->valuestring);
        } else if (json_unset(args)) {
            rc |= buf_puts(out, "\"{}\"");
        } else {
            char *text = cJSON_PrintUnformatted(args);
            rc |= text ? json_put_str(out, text) : -1;
            if (text)
                cJSON_free(text);
        }
        rc |= buf_puts(out, "}}");
    }
    return rc;
}

const char *chat_read_message(const cJSON *j, const cJSON **content, const cJSON **thinking,
                              const cJSON **tcs)
{
    const cJSON *msg = json_get(j, "message");
    const char *why = NULL;
    *content = msg ? json_get(msg, "content") : NULL;
    *thinking = msg ? json_get(msg, "thinking") : NULL;
    *tcs = msg ? json_get(msg, "tool_calls") : NULL;
    if ((!json_unset(msg) && !cJSON_IsObject(msg)) ||
        (!json_unset(*content) && !cJSON_IsString(*content)) ||
        (!json_unset(*thinking) && !cJSON_IsString(*thinking)) ||
        (!json_unset(*tcs) && !cJSON_IsArray(*tcs)))
        return "a malformed message";
    return count_tool_calls(*tcs, &why) < 0 ? why : NULL;
}

const char *chat_finish_reason(const cJSON *obj, bool tool_calls)
{
    if (ollama_length(obj))
        return "length";
    return tool_calls ? "tool_calls" : "stop";
}
