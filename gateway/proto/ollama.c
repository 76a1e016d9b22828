#include "ollama.h"

#include "json.h"
#include "upstream_error.h"

#include <stdint.h>
#include <string.h>

/* The parse copy's ceiling; the real bound is the engine's on a line or an
 * answer. */
#define SCRATCH_MAX (SIZE_MAX / 4)

/* Parse p as a native object; `whole` words failures as those of a whole
 * answer rather than of a stream line. */
static cJSON *parse(struct buf *scratch, const char *p, size_t len, bool whole, const char *backend,
                    struct apierr *err)
{
    char what[128];
    size_t at;
    cJSON *j = json_parse(scratch, p, len, &at);
    if (!j && at == JSON_NOMEM) {
        apierr_nomem(err);
        return NULL;
    }
    if (!j || !cJSON_IsObject(j)) {
        upstream_excerpt(what, sizeof what, p, len < 80 ? len : 80);
        if (whole)
            upstream_fail(err, backend,
                          j ? "answered with something that is not a JSON object: %s"
                            : "answered with invalid JSON: %s",
                          what);
        else
            upstream_fail(err, backend,
                          j ? "sent a stream line that is not a JSON object: %s"
                            : "sent a stream line that is not valid JSON: %s",
                          what);
        cJSON_Delete(j);
        return NULL;
    }
    const cJSON *e = json_get(j, "error");
    if (!json_unset(e)) {
        const char *text = upstream_error_text(e);
        upstream_fail(err, backend, whole ? "failed: %.250s" : "failed while generating: %.250s",
                      text ? text : "(no message)");
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

cJSON *ollama_line(struct buf *scratch, const char *line, size_t len, const char *backend,
                   struct apierr *err)
{
    return parse(scratch, line, len, false, backend, err);
}

cJSON *ollama_answer(const char *body, size_t len, const char *backend, struct apierr *err)
{
    struct buf scratch;
    buf_init(&scratch, SCRATCH_MAX);
    cJSON *j = parse(&scratch, body, len, true, backend, err);
    buf_free(&scratch);
    return j;
}

int ollama_body(const char *model, bool stream, const cJSON *fields, const cJSON *client_options,
                const cJSON *alias_options, struct buf *out, struct apierr *err)
{
    int rc = -1;
    char *text = NULL;
    cJSON *w = cJSON_CreateObject();
    cJSON *opts = cJSON_CreateObject();
    if (!w || !opts) {
        cJSON_Delete(opts);
        goto out;
    }
    if (!json_add(w, "model", json_str_ref(model)) ||
        !json_add(w, "stream", cJSON_CreateBool(stream))) {
        cJSON_Delete(opts);
        goto out;
    }
    for (const cJSON *it = fields ? fields->child : NULL; it; it = it->next) {
        if (!json_add(w, it->string, json_ref(it))) {
            cJSON_Delete(opts);
            goto out;
        }
    }
    /* Alias defaults first, each unless the client set it; then the client's. */
    if (cJSON_IsObject(alias_options)) {
        for (const cJSON *a = alias_options->child; a; a = a->next) {
            if (!a->string || (client_options && json_get(client_options, a->string)))
                continue;
            if (!json_add(opts, a->string, json_ref(a))) {
                cJSON_Delete(opts);
                goto out;
            }
        }
    }
    for (const cJSON *c = client_options ? client_options->child : NULL; c; c = c->next) {
        if (!json_add(opts, c->string, json_ref(c))) {
            cJSON_Delete(opts);
            goto out;
        }
    }
    if (!opts->child)
        cJSON_Delete(opts);
    else if (!json_add(w, "options", opts))
        goto out;

    text = cJSON_PrintUnformatted(w);
    if (text && buf_append(out, text, strlen(text)) == 0)
        rc = 0;
out:
    if (text)
        cJSON_free(text);
    cJSON_Delete(w);
    if (rc < 0)
        apierr_set(err, 500, APIERR_API, "internal_error", NULL,
                   "The gateway could not build the backend request (out of memory).");
    return rc;
}

int ollama_eof(bool done, bool *failed, const char *backend, struct apierr *err)
{
    if (done)
        return DIALECT_DONE;
    if (!*failed)
        upstream_fail(err, backend, "closed the stream before the answer was complete.");
    else
        upstream_fail(err, backend, "stream had already failed.");
    *failed = true;
    return DIALECT_FAIL;
}

int ollama_answer_written(int rc, struct buf *out, size_t start, long pt, long ct,
                          long *prompt_tokens, long *completion_tokens, struct apierr *err)
{
    if (rc) {
        buf_truncate(out, start);
        return apierr_no_room(err, "the answer");
    }
    if (prompt_tokens)
        *prompt_tokens = pt;
    if (completion_tokens)
        *completion_tokens = ct;
    return 0;
}

long ollama_count(const cJSON *obj, const char *key)
{
    const cJSON *v = json_get(obj, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || !(v->valuedouble < 1e15))
        return 0;
    return (long)v->valuedouble;
}

bool ollama_length(const cJSON *obj)
{
    const cJSON *dr = json_get(obj, "done_reason");
    return cJSON_IsString(dr) && strcmp(dr->valuestring, "length") == 0;
}

const char *ollama_message_member(void *ud, const struct str *key, const char *p, const char *end)
{
    struct ollama_message_scan *m = ud;
    struct str val, *slot;
    if (jscan_key_is(key, "\"role\"")) {
        if (m->role)
            return NULL;
        m->role = true;
        return jscan_string(p, end, false, &val);
    }
    if (jscan_key_is(key, "\"content\""))
        slot = m->content;
    else if (jscan_key_is(key, "\"thinking\""))
        slot = m->thinking;
    else
        return NULL; /* tool_calls, images, … */
    if (slot->p)
        return NULL;
    return jscan_string(p, end, true, slot);
}

/* A whole answer's members, each at most once. */
struct answer_scan {
    struct ollama_fast_answer *f;
    unsigned seen; /* 1 << index in answer_keys */
};

/* /api/chat's keys first: a chat answer never gets as far as the others. */
static const char *const answer_keys[] = {
    "\"model\"",         "\"created_at\"",        "\"message\"",
    "\"done\"",          "\"done_reason\"",       "\"total_duration\"",
    "\"load_duration\"", "\"prompt_eval_count\"", "\"prompt_eval_duration\"",
    "\"eval_count\"",    "\"eval_duration\"",     "\"response\"",
    "\"thinking\"",      "\"context\"",
};
enum {
    A_MODEL,
    A_CREATED,
    A_MESSAGE,
    A_DONE,
    A_REASON,
    A_TOTAL_DURATION,
    A_LOAD_DURATION,
    A_PROMPT_COUNT,
    A_PROMPT_DURATION,
    A_COUNT,
    A_DURATION,
    A_RESPONSE,
    A_THINKING,
    A_CONTEXT,
};

static const char *answer_member(void *ud, const struct str *key, const char *p, const char *end)
{
    struct answer_scan *a = ud;
    struct ollama_fast_answer *f = a->f;
    struct str ignored;
    long v = 0;
    size_t k = 0;
    while (k < sizeof answer_keys / sizeof *answer_keys && !jscan_key_is(key, answer_keys[k]))
        k++;
    if (k == sizeof answer_keys / sizeof *answer_keys || (a->seen & (1u << k)))
        return NULL;
    a->seen |= 1u << k;
    switch (k) {
    case A_MODEL:
    case A_CREATED:
    case A_THINKING: /* /api/generate's thinking: legacy completions drop it */
        return jscan_string(p, end, false, &ignored);
    case A_MESSAGE:
        f->message = true;
        return ollama_scan_message(p, end, &f->content, &f->thinking);
    case A_RESPONSE:
        f->response = true;
        return f->content.p ? NULL : jscan_string(p, end, true, &f->content);
    case A_CONTEXT:
        return jscan_count_array(p, end);
    case A_DONE: {
        const char *q = jscan_word(p, end, "true");
        return q ? q : jscan_word(p, end, "false");
    }
    case A_REASON:
        p = jscan_string(p, end, false, &f->reason);
        return p && !memchr(f->reason.p, '\\', f->reason.len) ? p : NULL;
    }
    p = jscan_count(p, end, &v);
    if (jscan_key_is(key, "\"prompt_eval_count\""))
        f->prompt_tokens = v;
    else if (jscan_key_is(key, "\"eval_count\""))
        f->completion_tokens = v;
    return p;
}

bool ollama_scan_answer(const char *body, size_t len, struct ollama_fast_answer *f)
{
    const char *end = body + len;
    struct answer_scan a = {.f = f};
    memset(f, 0, sizeof *f);
    const char *p = jscan_object(body, end, answer_member, &a);
    return p && jscan_ws(p, end) == end;
}
