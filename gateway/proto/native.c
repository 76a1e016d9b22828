#include "native.h"

#include "jarena.h"
#include "ollama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct native_state {
    struct dialect_common c;
    const char *client_model; /* borrowed from the engine (begin) */
    const char *upstream;     /* the name sent: borrowed from the engine (resolve) */
    bool done;                /* the done:true line was relayed */
    bool failed;
};

/* How a route of the family reads its body. */
struct native_rules {
    bool stream_default; /* stream when "stream" is absent */
    bool stream_allowed; /* "stream" means anything at all */
    bool admin;          /* pass the body as it is; the model may be absent */
};

static const struct native_rules rules_stream = {true, true, false};
static const struct native_rules rules_whole = {false, false, false};
static const struct native_rules rules_admin = {true, true, true};

#define bad_request(e, ...) apierr_set((e), 400, APIERR_INVALID, NULL, NULL, __VA_ARGS__)

/* The alias's options under the client's: a key the client set wins. */
static int merge_options(cJSON *root, const cJSON *alias_options, struct apierr *e)
{
    if (!alias_options)
        return 0;
    cJSON *opts = cJSON_GetObjectItemCaseSensitive(root, "options");
    if (opts && !cJSON_IsObject(opts) && !cJSON_IsNull(opts))
        return bad_request(e, "%s must be an object", "options");
    if (!cJSON_IsObject(opts)) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "options");
        opts = cJSON_AddObjectToObject(root, "options");
        if (!opts)
            goto oom;
    }
    const cJSON *o;
    cJSON_ArrayForEach(o, alias_options)
    {
        if (cJSON_GetObjectItemCaseSensitive(opts, o->string))
            continue;
        cJSON *copy = cJSON_Duplicate(o, true);
        if (!copy || !cJSON_AddItemToObject(opts, o->string, copy)) {
            cJSON_Delete(copy);
            goto oom;
        }
    }
    return 0;
oom:
    return apierr_nomem(e);
}

static int translate(struct native_state *s, const struct native_rules *rules, const char *body,
                     size_t len, dialect_resolve_fn resolve, void *ctx, struct buf *native,
                     struct apierr *e)
{
    const char *end = NULL;
    unsigned long nomem = jarena_nomem();
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    int rc = -1;
    if (!root && jarena_nomem() != nomem) {
        apierr_nomem(e);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        bad_request(e, "%s",
                    len ? "the request body is not a JSON object" : "missing request body");
        goto out;
    }
    bool stream = rules->stream_default;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (st && !cJSON_IsNull(st)) {
        if (!cJSON_IsBool(st)) {
            bad_request(e, "%s must be true or false", "stream");
            goto out;
        }
        stream = rules->stream_allowed && cJSON_IsTrue(st);
    }
    /* "model", or the "name" that older clients send. */
    const char *field = "model";
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!model || cJSON_IsNull(model)) {
        field = "name";
        model = cJSON_GetObjectItemCaseSensitive(root, "name");
    }
    const char *name = cJSON_GetStringValue(model);
    if (model && !cJSON_IsNull(model) && !name) {
        bad_request(e, "%s must be a string", field);
        goto out;
    }
    if ((!name || !name[0]) && !rules->admin) {
        bad_request(e, "%s", "model is required");
        goto out;
    }
    struct dialect_model m;
    if (resolve(ctx, name ? name : "", stream, &m, e) < 0)
        goto out;
    s->upstream = m.name;
    if (rules->admin) {
        /* An admin manages the backends' own names: the body goes as it came. */
        rc = buf_append(native, body, len);
        if (rc < 0)
            goto too_big;
        goto out;
    }
    if (!cJSON_SetValuestring(model, m.name) || merge_options(root, m.options, e) < 0) {
        if (!e->status)
            apierr_nomem(e);
        goto out;
    }
    char *text = cJSON_PrintUnformatted(root);
    if (!text) {
        apierr_nomem(e);
        goto out;
    }
    rc = buf_puts(native, text);
    cJSON_free(text);
    if (rc < 0)
        goto too_big;
    goto out;
too_big: /* rc: BUF_FULL, or BUF_NOMEM, which is no fault of the client's */
    if (rc == BUF_NOMEM)
        rc = apierr_nomem(e);
    else
        rc = apierr_set(e, 413, APIERR_INVALID, "request_too_large", NULL,
                        "The request is too large to forward");
out:
    cJSON_Delete(root);
    return rc;
}

static int translate_stream(void *st, const char *body, size_t len, dialect_resolve_fn resolve,
                            void *ctx, struct buf *native, struct apierr *e)
{
    return translate(st, &rules_stream, body, len, resolve, ctx, native, e);
}

static int translate_whole(void *st, const char *body, size_t len, dialect_resolve_fn resolve,
                           void *ctx, struct buf *native, struct apierr *e)
{
    return translate(st, &rules_whole, body, len, resolve, ctx, native, e);
}

static int translate_admin(void *st, const char *body, size_t len, dialect_resolve_fn resolve,
                           void *ctx, struct buf *native, struct apierr *e)
{
    return translate(st, &rules_admin, body, len, resolve, ctx, native, e);
}

/* A blob's bytes are the client's own: nothing to read or write here. */
static int translate_blob(void *st, const char *body, size_t len, dialect_resolve_fn resolve,
                          void *ctx, struct buf *native, struct apierr *e)
{
    (void)body;
    (void)len;
    (void)native;
    struct native_state *s = st;
    struct dialect_model m;
    if (resolve(ctx, "", false, &m, e) < 0)
        return -1;
    s->upstream = m.name;
    return 0;
}

static int begin(void *st, const struct dialect_answer *a)
{
    struct native_state *s = st;
    s->client_model = a->client_model;
    return 0;
}

/* Append p[0..len) to out, with a leading {"model":"<upstream>" written as
 * the client's name. */
static int relay_renamed(const struct native_state *s, const char *p, size_t len, struct buf *out)
{
    static const char head[] = "{\"model\":\"";
    size_t h = sizeof head - 1, n = s->upstream ? strlen(s->upstream) : 0;
    if (n && s->client_model && strcmp(s->upstream, s->client_model) != 0 && len > h + n &&
        memcmp(p, head, h) == 0 && memcmp(p + h, s->upstream, n) == 0 && p[h + n] == '"') {
        size_t start = out->len;
        if (buf_append(out, head, h - 1) < 0 ||
            buf_json_str(out, s->client_model, strlen(s->client_model)) < 0 ||
            buf_append(out, p + h + n + 1, len - h - n - 1) < 0) {
            out->len = start;
            return -1;
        }
        return 0;
    }
    return buf_append(out, p, len);
}

/* The last "<key>":<digits> in p, or 0: Ollama's counts sit at the end of
 * its last object, and a key cannot appear unescaped inside a string. */
static long count_of(const char *p, size_t len, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = len; i > k + 2; i--) {
        const char *q = p + i - k - 3;
        if (q[0] == '"' && memcmp(q + 1, key, k) == 0 && q[k + 1] == '"' && q[k + 2] == ':') {
            long v = 0;
            for (const char *d = q + k + 3; d < p + len && *d >= '0' && *d <= '9'; d++)
                v = v < 1000000000000L ? v * 10 + (*d - '0') : v;
            return v;
        }
    }
    return 0;
}

static int out_of_room(struct native_state *s, struct apierr *e)
{
    s->failed = true;
    return apierr_no_room(e, "the answer");
}

static int line(void *st, const char *p, size_t len, struct buf *out, struct apierr *e)
{
    struct native_state *s = st;
    if (s->failed)
        return DIALECT_FAIL;
    if (s->done)
        return DIALECT_DONE;
    /* A plain token line ends this way; anything else is looked at closely. */
    static const char tail[] = ",\"done\":false}";
    bool plain =
        len >= sizeof tail && memcmp(p + len - (sizeof tail - 1), tail, sizeof tail - 1) == 0;
    if (!plain) {
        const char *end = NULL;
        unsigned long nomem = jarena_nomem();
        cJSON *root = cJSON_ParseWithLengthOpts(p, len, &end, 0);
        if (!root && jarena_nomem() != nomem) {
            s->failed = true;
            return apierr_nomem(e);
        }
        if (!cJSON_IsObject(root)) {
            cJSON_Delete(root);
            s->failed = true;
            return apierr_set(e, 502, APIERR_API, "upstream_error", NULL,
                              "backend %s sent a line that is not a JSON object",
                              s->c.backend ? s->c.backend : "?");
        }
        const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "error"));
        if (err) {
            if (err[0])
                apierr_set(e, 502, APIERR_API, "upstream_error", NULL, "%s", err);
            else
                apierr_set(e, 502, APIERR_API, "upstream_error", NULL,
                           "backend %s reported an error without saying what",
                           s->c.backend ? s->c.backend : "?");
            cJSON_Delete(root);
            s->failed = true;
            return DIALECT_FAIL;
        }
        s->done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "done"));
        if (s->done) {
            s->c.prompt_tokens = ollama_count(root, "prompt_eval_count");
            s->c.completion_tokens = ollama_count(root, "eval_count");
        }
        cJSON_Delete(root);
    }
    size_t start = out->len;
    if (relay_renamed(s, p, len, out) < 0 || buf_append(out, "\n", 1) < 0) {
        out->len = start;
        return out_of_room(s, e);
    }
    return s->done ? DIALECT_DONE : DIALECT_MORE;
}

static int eof_done(void *st, struct buf *out, struct apierr *e)
{
    (void)out;
    struct native_state *s = st;
    return ollama_eof(s->done, &s->failed, s->c.backend, e);
}

/* Progress streams (pull, push, create) have no done line: they end when
 * the backend has said what it had to say. */
static int eof_any(void *st, struct buf *out, struct apierr *e)
{
    (void)out;
    (void)e;
    struct native_state *s = st;
    return s->failed ? DIALECT_FAIL : DIALECT_DONE;
}

static int complete(void *st, const char *body, size_t len, struct buf *out, struct apierr *e)
{
    struct native_state *s = st;
    if (relay_renamed(s, body, len, out) < 0)
        return out_of_room(s, e);
    s->c.prompt_tokens = count_of(body, len, "prompt_eval_count");
    s->c.completion_tokens = count_of(body, len, "eval_count");
    return 0;
}

/* Ollama's own error text when it sent one, so native clients see what they
 * would see talking to Ollama; the status stays Ollama's. */
static void upstream_error(int status, const char *body, size_t len, const char *backend,
                           struct apierr *e)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "error"));
    if (status < 400 || status > 599)
        status = 502;
    if (text && text[0]) {
        apierr_set(e, status, APIERR_API, "upstream_error", NULL, "%s", text);
    } else {
        /* Not Ollama's JSON (a proxy's page, gin's plain-text 404): say who
         * answered what, with the start of it. */
        size_t n = 0; /* the first line, at most 120 bytes (body need not end in '\0') */
        while (n < len && n < 120 && body[n] != '\r' && body[n] != '\n')
            n++;
        apierr_set(e, status >= 500 ? 502 : status, APIERR_API, "upstream_error", NULL,
                   "backend %s answered HTTP %d%s%.*s", backend ? backend : "?", status,
                   n ? ": " : "", (int)n, body);
    }
    e->no_retry = status != 503 && status != 429;
    cJSON_Delete(root);
}

static void release(void *st)
{
    (void)st;
}

#define NATIVE_DIALECT(tr, eof_fn)                                                                 \
    {                                                                                              \
        .name = "ollama", .native_path = NULL, .id_prefix = NULL,                                  \
        .stream_type = "application/x-ndjson", .errors = &errshape_ollama,                         \
        .state_size = sizeof(struct native_state), .translate = tr, .begin = begin, .line = line,  \
        .eof = eof_fn, .complete = complete, .upstream_error = upstream_error, .keepalive = NULL,  \
        .release = release,                                                                        \
    }

const struct dialect dialect_native_stream = NATIVE_DIALECT(translate_stream, eof_done);
const struct dialect dialect_native_whole = NATIVE_DIALECT(translate_whole, eof_done);
const struct dialect dialect_native_admin = NATIVE_DIALECT(translate_admin, eof_any);
const struct dialect dialect_native_blob = NATIVE_DIALECT(translate_blob, eof_any);
