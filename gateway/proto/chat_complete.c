#include "chat_complete.h"

#include "chat_answer.h"
#include "json.h"
#include "ollama.h"
#include "upstream_error.h"

#include <string.h>

/* A string of the answer: a JSON literal to copy as it stands (from the fast
 * path), or text to escape. */
struct jtext {
    const char *lit; /* quotes included; NULL = use text */
    size_t litlen;
    const char *text;
};

static int put_jtext(struct buf *out, const struct jtext *t)
{
    return t->lit ? buf_append(out, t->lit, t->litlen) : json_put_str(out, t->text);
}

static bool jtext_empty(const struct jtext *t)
{
    return t->lit ? t->litlen <= 2 : !t->text || !t->text[0];
}

/* What a chat.completion object is made of. */
struct completion {
    struct jtext content, thinking;
    const cJSON *tcs;      /* tool calls (general path only), or NULL */
    const cJSON *logprobs; /* (general path only), or NULL */
    const char *finish_reason;
    long pt, ct;
};

static int put_completion(struct buf *out, const struct completion *c, const char *client_model,
                          const char *id, long created)
{
    bool has_calls = json_has_entries(c->tcs);
    unsigned n = 0;
    int rc = buf_puts(out, "{\"id\":");
    rc |= json_put_str(out, id);
    rc |= buf_puts(out, ",\"object\":\"chat.completion\",\"created\":");
    rc |= buf_put_int(out, created);
    rc |= buf_puts(out, ",\"model\":");
    rc |= json_put_str(out, client_model);
    rc |= buf_puts(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                        "\"content\":");
    if (jtext_empty(&c->content) && has_calls)
        rc |= buf_puts(out, "null");
    else
        rc |= put_jtext(out, &c->content);
    if (!jtext_empty(&c->thinking)) {
        rc |= buf_puts(out, ",\"reasoning_content\":");
        rc |= put_jtext(out, &c->thinking);
        rc |= buf_puts(out, ",\"reasoning\":");
        rc |= put_jtext(out, &c->thinking);
    }
    if (has_calls) {
        rc |= buf_puts(out, ",\"tool_calls\":[");
        rc |= chat_put_tool_calls(out, c->tcs, false, &n);
        rc |= buf_append(out, "]", 1);
    }
    rc |= buf_puts(out, "},\"logprobs\":");
    rc |=
        json_has_entries(c->logprobs) ? chat_put_logprobs(out, c->logprobs) : buf_puts(out, "null");
    rc |= buf_puts(out, ",\"finish_reason\":\"");
    rc |= buf_puts(out, c->finish_reason);
    rc |= buf_puts(out, "\"}],\"usage\":{\"prompt_tokens\":");
    rc |= buf_put_int(out, c->pt);
    rc |= buf_puts(out, ",\"completion_tokens\":");
    rc |= buf_put_int(out, c->ct);
    rc |= buf_puts(out, ",\"total_tokens\":");
    rc |= buf_put_int(out, c->pt + c->ct);
    rc |= buf_puts(out, "}}");
    return rc;
}

/*
 * The fast path for the answer of almost every non-streamed request: the
 * content (and thinking) literals are copied as they stand; anything else
 * (another key, a duplicate, tool calls, logprobs, an escape written
 * differently, a number that is not plain digits) leaves it to the general
 * path, which writes the same bytes. 1: c is filled.
 */
static int fast_complete(const char *body, size_t len, struct completion *c)
{
    struct ollama_fast_answer a;
    if (!ollama_scan_answer(body, len, &a) || !a.message || a.response)
        return 0;
    if (a.content.p)
        c->content = (struct jtext){.lit = a.content.p, .litlen = a.content.len};
    else
        c->content = (struct jtext){.text = ""};
    if (a.thinking.p)
        c->thinking = (struct jtext){.lit = a.thinking.p, .litlen = a.thinking.len};
    c->finish_reason = ollama_fast_length(&a) ? "length" : "stop";
    c->pt = a.prompt_tokens;
    c->ct = a.completion_tokens;
    return 1;
}

int chat_complete(const char *body, size_t len, const char *client_model, const char *id,
                  long created, const char *backend_name, struct buf *out, long *prompt_tokens,
                  long *completion_tokens, struct apierr *err)
{
    struct completion c = {0};
    size_t start = out->len;
    const char *why = NULL;
    cJSON *j = NULL;

    if (!chat_fast_path || !fast_complete(body, len, &c)) {
        memset(&c, 0, sizeof c);
        j = ollama_answer(body, len, backend_name, err);
        if (!j)
            return -1;
        const cJSON *content, *thinking;
        why = chat_read_message(j, &content, &thinking, &c.tcs);
        if (why) {
            upstream_fail(err, backend_name, "answered with %s.", why);
            cJSON_Delete(j);
            return -1;
        }
        c.content.text = cJSON_IsString(content) ? content->valuestring : "";
        c.thinking.text = cJSON_IsString(thinking) ? thinking->valuestring : NULL;
        c.logprobs = json_get(j, "logprobs");
        c.finish_reason = chat_finish_reason(j, json_has_entries(c.tcs));
        c.pt = ollama_count(j, "prompt_eval_count");
        c.ct = ollama_count(j, "eval_count");
    }
    int rc = put_completion(out, &c, client_model, id, created);
    cJSON_Delete(j);
    return ollama_answer_written(rc, out, start, c.pt, c.ct, prompt_tokens, completion_tokens, err);
}
