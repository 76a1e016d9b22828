/*
 * libFuzzer target: the Responses API dialect's pure translation.
 *
 * The first byte chooses. Odd: the rest is a client's /v1/responses body,
 * through responses_req_parse and responses_req_to_ollama. Even: its second
 * byte is the size pattern of the pieces, and the rest upstream bytes,
 * through the NDJSON splitter into responses_stream_line (then the failure
 * event if it failed), then as a whole answer (responses_complete); calls
 * to the tools named in `customs` are custom tool calls.
 *
 * Invariants checked (abort on violation). Requests: a rejection is a 400
 * (or 500) with a message and nothing left to free; an accepted request
 * translates to one JSON object holding only model (the upstream name), an
 * explicit boolean stream, a non-empty messages array (each with a role the
 * native API knows and a string content), and tools, format, think and a
 * non-empty options when present. Streams: every event is "event: T\ndata:
 * <one line>\n\n" whose JSON object has type T and sequence_number counting
 * from 0; the first is response.created, then response.in_progress; every
 * delta names an item opened by output_item.added and not yet done; a clean
 * stream ends with exactly one response.completed or response.incomplete
 * carrying usage, a failed one with exactly one response.failed, nothing
 * after either. Whole answers: a response object with output and usage, or
 * nothing written and a 502/500.
 */
#include "fuzz.h"
#include "apierr.h"
#include "dialect.h"
#include "responses_answer.h"
#include "responses_request.h"
#include "responses_stream.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static cJSON *alias;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    alias = fuzz_alias_options();
    return 0;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static bool is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static void check_error_json(const struct apierr *e)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    CHECK(e->message[0]);
    CHECK(apierr_json(e, &b) == 0);
    cJSON *j = cJSON_ParseWithLength(b.p, b.len);
    CHECK(cJSON_IsObject(j));
    cJSON_Delete(j);
    buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

static void check_native(const char *text, size_t len, const struct responses_req *r)
{
    static const char *const keys[] = {"model",  "stream", "messages", "tools",
                                       "format", "think",  "options"};
    cJSON *j = cJSON_ParseWithLength(text, len);
    CHECK(cJSON_IsObject(j));
    for (const cJSON *it = j->child; it; it = it->next) {
        size_t k = 0;
        while (k < sizeof keys / sizeof keys[0] && !is(it->string, keys[k]))
            k++;
        CHECK(k < sizeof keys / sizeof keys[0]);
    }
    CHECK(is(get(j, "model")->valuestring, "upstream:tag"));
    CHECK(cJSON_IsBool(get(j, "stream")) && cJSON_IsTrue(get(j, "stream")) == r->stream);
    const cJSON *msgs = get(j, "messages");
    CHECK(cJSON_IsArray(msgs) && msgs->child);
    for (const cJSON *m = msgs->child; m; m = m->next) {
        const cJSON *role = get(m, "role");
        CHECK(cJSON_IsString(role));
        const char *rs = role->valuestring;
        CHECK(is(rs, "system") || is(rs, "user") || is(rs, "assistant") || is(rs, "tool"));
        CHECK(cJSON_IsString(get(m, "content")));
        const cJSON *tcs = get(m, "tool_calls");
        CHECK(!tcs || (is(rs, "assistant") && cJSON_IsArray(tcs) && tcs->child));
        for (const cJSON *tc = tcs ? tcs->child : NULL; tc; tc = tc->next)
            CHECK(cJSON_IsObject(get(get(tc, "function"), "arguments")));
    }
    const cJSON *tools = get(j, "tools");
    CHECK(!tools || (cJSON_IsArray(tools) && tools->child));
    for (const cJSON *t = tools ? tools->child : NULL; t; t = t->next)
        CHECK(cJSON_IsString(get(get(t, "function"), "name")));
    const cJSON *opts = get(j, "options");
    CHECK(!opts || (cJSON_IsObject(opts) && opts->child));
    cJSON_Delete(j);
}

static void fuzz_request(const char *body, size_t size)
{
    struct responses_req r;
    struct apierr err;
    struct buf out;
    buf_init(&out, 64u << 20);
    if (responses_req_parse(&r, body, size, &err) == 0) {
        CHECK(r.root && r.native && r.model && r.model[0]);
        CHECK(responses_req_to_ollama(&r, "upstream:tag", size % 2 ? alias : NULL, &out, &err) ==
              0);
        check_native(out.p, out.len, &r);
        responses_req_free(&r);
    } else {
        CHECK(err.status == 400 || err.status == 500);
        CHECK(!r.root && !r.native && !r.options);
        check_error_json(&err);
    }
    buf_free(&out);
}

/* ------------------------------------------------------------------------ */
/* Answers                                                                   */

struct feed {
    struct responses_stream s;
    struct buf out;
    struct apierr err;
    int rc;
};

static int on_line(void *ud, const char *line, size_t len)
{
    struct feed *f = ud;
    f->rc = responses_stream_line(&f->s, line, len, &f->out, &f->err);
    return f->rc == RESPONSES_MORE ? 0 : 1;
}

/* What the events have said so far. */
struct seen {
    unsigned seq;
    int ends, fails;
    int open_item;   /* output_index of the item added and not done, or -1 */
    unsigned nitems; /* items added */
    unsigned ndone;  /* items done */
};

static void check_event(const char *type, const cJSON *j, struct seen *v)
{
    CHECK(cJSON_IsObject(j));
    CHECK(is(get(j, "type")->valuestring, type));
    const cJSON *sn = get(j, "sequence_number");
    CHECK(cJSON_IsNumber(sn) && sn->valuedouble == v->seq);
    CHECK(!v->ends && !v->fails);
    if (v->seq == 0)
        CHECK(is(type, "response.created"));
    if (v->seq == 1)
        CHECK(is(type, "response.in_progress"));
    v->seq++;
    const cJSON *resp = get(j, "response");
    if (is(type, "response.completed") || is(type, "response.incomplete")) {
        CHECK(v->open_item < 0 && v->nitems > 0 && v->ndone == v->nitems);
        CHECK(cJSON_IsObject(get(resp, "usage")));
        CHECK(cJSON_GetArraySize(get(resp, "output")) == (int)v->nitems);
        v->ends++;
    } else if (is(type, "response.failed")) {
        CHECK(cJSON_IsObject(get(resp, "error")));
        v->fails++;
    } else if (is(type, "response.output_item.added")) {
        CHECK(v->open_item < 0);
        CHECK(get(j, "output_index")->valuedouble == v->nitems);
        v->open_item = (int)v->nitems++;
    } else if (is(type, "response.output_item.done")) {
        CHECK(v->open_item >= 0 && get(j, "output_index")->valuedouble == v->open_item);
        v->open_item = -1;
        v->ndone++;
    } else if (!is(type, "response.created") && !is(type, "response.in_progress")) {
        /* parts, deltas, dones: about the open item */
        CHECK(v->open_item >= 0 && get(j, "output_index")->valuedouble == v->open_item);
        CHECK(cJSON_IsString(get(j, "item_id")));
    }
}

static void check_events(const struct buf *out, int rc)
{
    struct seen v = {.open_item = -1};
    const char *p = out->p ? out->p : "", *end = p + out->len;
    while (p < end) {
        CHECK(end - p > 7 && memcmp(p, "event: ", 7) == 0);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        CHECK(nl);
        char type[64];
        size_t tl = (size_t)(nl - p - 7);
        CHECK(tl < sizeof type);
        memcpy(type, p + 7, tl);
        type[tl] = '\0';
        CHECK(end - nl > 7 && memcmp(nl + 1, "data: ", 6) == 0);
        const char *data = nl + 7;
        const char *sep = strstr(data, "\n\n");
        CHECK(sep && sep < end);
        CHECK(!memchr(data, '\n', (size_t)(sep - data)));
        cJSON *j = cJSON_ParseWithLength(data, (size_t)(sep - data));
        check_event(type, j, &v);
        cJSON_Delete(j);
        p = sep + 2;
    }
    if (rc == RESPONSES_DONE)
        CHECK(v.ends == 1 && !v.fails);
    else
        CHECK(v.fails == 1 && !v.ends);
}

/* Tool names the answers treat as custom tools (custom_tool_call items and
 * their input events), as if the request had offered them. */
static const char customs[] = "apply_patch\0c";

static void fuzz_answer(const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    unsigned step = 1 + data[1] % 64;
    const char *in = (const char *)data + 2;
    size_t len = size - 2;

    struct feed f;
    memset(&f, 0, sizeof f);
    buf_init(&f.out, 16u << 20);
    CHECK(responses_stream_init(&f.s, "resp_fuzz", "gpt-\"fuzz\"", 1700000000) == 0);
    responses_stream_set_backend(&f.s, "fuzz");
    responses_stream_set_customs(&f.s, customs, sizeof customs);
    f.rc = RESPONSES_MORE;
    if (fuzz_split(in, len, step, on_line, &f) == -1) {
        CHECK(f.rc == RESPONSES_MORE);
        f.rc = RESPONSES_FAIL;
        apierr_set(&f.err, 502, APIERR_API, "upstream_error", NULL, "line too long");
    } else if (f.rc == RESPONSES_MORE) {
        f.rc = responses_stream_eof(&f.s, &f.err);
        CHECK(f.rc == RESPONSES_FAIL);
    }
    if (f.rc == RESPONSES_FAIL) {
        CHECK(f.err.status == 502 || f.err.status == 500);
        CHECK(responses_stream_fail(&f.s, &f.out, &f.err) == 0);
    } else {
        CHECK(f.s.done && f.s.prompt_tokens >= 0 && f.s.completion_tokens >= 0);
    }
    check_events(&f.out, f.rc);
    responses_stream_free(&f.s);
    buf_free(&f.out);

    /* the same bytes as a whole answer */
    struct responses_meta m = {.id = "resp_fuzz",
                               .model = "gpt-x",
                               .created = 1,
                               .customs = customs,
                               .customs_len = sizeof customs};
    struct buf out;
    struct apierr err;
    long pt = -1, ct = -1;
    buf_init(&out, 16u << 20);
    if (responses_complete(in, len, &m, "fuzz", &out, &pt, &ct, &err) == 0) {
        cJSON *j = cJSON_ParseWithLength(out.p, out.len);
        CHECK(cJSON_IsObject(j));
        CHECK(is(get(j, "object")->valuestring, "response"));
        const cJSON *output = get(j, "output");
        CHECK(cJSON_IsArray(output) && output->child);
        CHECK(cJSON_IsObject(get(j, "usage")));
        cJSON_Delete(j);
        CHECK(pt >= 0 && ct >= 0);
    } else {
        CHECK(out.len == 0);
        CHECK(err.status == 502 || err.status == 500);
        check_error_json(&err);
    }
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_request((const char *)data + 1, size - 1);
    else
        fuzz_answer(data, size);
    return 0;
}
