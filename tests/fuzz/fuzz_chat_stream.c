/*
 * libFuzzer target: arbitrary upstream bytes through the NDJSON splitter into
 * chat_stream_line (cut into pieces chosen by the input), plus the same bytes
 * as a non-streamed answer (chat_complete, fast path on and off: the same
 * bytes) and as an error body (upstream_error_map).
 *
 * Invariants checked on the SSE output (abort on violation): every event is
 * "data: <one line>\n\n"; every payload is a JSON object, or [DONE] as the
 * very last event and only after CHAT_DONE; every chunk has the same id and
 * created, object "chat.completion.chunk", the client's model; the role
 * appears exactly once, on the first chunk; tool-call indexes are 0,1,2... in
 * order, each with id, type "function", name and string arguments; exactly
 * one finish chunk, after all content; a failed stream ends with the error
 * event and no [DONE].
 */
#include "fuzz.h"
#include "apierr.h"
#include "chat_answer.h"
#include "chat_complete.h"
#include "chat_stream.h"
#include "sse.h"
#include "upstream_error.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return sodium_init() < 0 ? -1 : 0;
}

struct feed {
    struct chat_stream s;
    struct buf out;
    struct apierr err;
    int rc;
};

static int on_line(void *ud, const char *line, size_t len)
{
    struct feed *f = ud;
    f->rc = chat_stream_line(&f->s, line, len, &f->out, &f->err);
    return f->rc == CHAT_MORE ? 0 : 1;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

struct seen {
    int roles, finishes, usages, errors, dones, chunks;
    unsigned next_index;
    bool include_usage;
};

static void check_chunk(const cJSON *j, void *ud)
{
    struct seen *v = ud;
    int kind = fuzz_openai_chunk(j, "chatcmpl-fuzz", "chat.completion.chunk");
    if (kind == FUZZ_ERROR) {
        v->errors++;
        return;
    }
    CHECK(!v->errors && !v->usages);
    if (kind == FUZZ_USAGE) {
        CHECK(v->include_usage && v->finishes == 1);
        v->usages++;
        return;
    }
    const cJSON *choices = get(j, "choices");
    CHECK(!choices->child->next);
    const cJSON *c = choices->child;
    CHECK(get(c, "index")->valuedouble == 0);
    const cJSON *delta = get(c, "delta");
    CHECK(cJSON_IsObject(delta));
    const cJSON *fr = get(c, "finish_reason");
    CHECK(v->finishes == 0);
    if (cJSON_IsString(fr)) {
        CHECK(!delta->child);
        CHECK(v->roles == 1);
        const char *r = fr->valuestring;
        CHECK(strcmp(r, "stop") == 0 || strcmp(r, "length") == 0 || strcmp(r, "tool_calls") == 0);
        CHECK(strcmp(r, "tool_calls") != 0 || v->next_index > 0);
        CHECK(strcmp(r, "stop") != 0 || v->next_index == 0);
        v->finishes++;
        return;
    }
    CHECK(cJSON_IsNull(fr));
    v->chunks++;
    const cJSON *role = get(delta, "role");
    if (role) {
        CHECK(v->chunks == 1 && strcmp(role->valuestring, "assistant") == 0);
        v->roles++;
    }
    CHECK(v->roles == 1);
    const cJSON *tcs = get(delta, "tool_calls");
    for (const cJSON *tc = tcs ? tcs->child : NULL; tc; tc = tc->next) {
        CHECK(get(tc, "index")->valuedouble == (double)v->next_index++);
        CHECK(cJSON_IsString(get(tc, "id")) && get(tc, "id")->valuestring[0]);
        CHECK(strcmp(get(tc, "type")->valuestring, "function") == 0);
        const cJSON *fn = get(tc, "function");
        CHECK(cJSON_IsString(get(fn, "name")));
        CHECK(cJSON_IsString(get(fn, "arguments")));
    }
}

static void check_sse(const struct buf *out, int rc, bool include_usage, unsigned tool_calls)
{
    struct seen v = {.include_usage = include_usage};
    v.dones = fuzz_sse(out, check_chunk, &v);
    CHECK(v.next_index == tool_calls);
    if (rc == CHAT_DONE) {
        CHECK(v.dones == 1 && v.finishes == 1 && v.roles == 1 && !v.errors);
        CHECK(v.usages == (include_usage ? 1 : 0));
    } else {
        CHECK(!v.dones && !v.finishes && !v.usages);
        CHECK(v.errors == (rc == CHAT_FAIL ? 1 : 0));
    }
}

static void check_error_json(const struct apierr *e)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    CHECK(apierr_json(e, &b) == 0);
    cJSON *j = cJSON_ParseWithLength(b.p, b.len);
    CHECK(cJSON_IsObject(j));
    cJSON_Delete(j);
    buf_free(&b);
}

/* Tool-call ids the gateway makes up ("call_" + 24 random characters) differ
 * between two runs; blank them so the runs can be compared. */
static void mask_generated_ids(struct buf *b)
{
    for (char *p = b->p; p && (p = strstr(p, "\"call_")); p += 6) {
        size_t n = 0;
        while (n < 24 && p[6 + n] && p[6 + n] != '"')
            n++;
        if (n == 24 && p[30] == '"')
            memset(p + 6, 'X', 24);
    }
}

/* Run the stream translation over in[0..len) with the fast path on or off;
 * the caller owns f->out afterwards. */
static void run_stream(struct feed *f, const char *in, size_t len, unsigned step,
                       bool include_usage, bool fast)
{
    memset(f, 0, sizeof *f);
    chat_set_fast_path(fast);
    buf_init(&f->out, 16u << 20);
    CHECK(chat_stream_init(&f->s, "gpt-\"fuzz\"", include_usage, "chatcmpl-fuzz", 1700000000) == 0);
    chat_stream_set_backend(&f->s, "fuzz");
    f->rc = CHAT_MORE;
    if (fuzz_split(in, len, step, on_line, f) == -1) {
        /* over-long line: the server would fail the stream like this */
        CHECK(f->rc == CHAT_MORE);
        f->rc = CHAT_FAIL;
        apierr_set(&f->err, 502, APIERR_API, "upstream_error", NULL, "line too long");
    } else if (f->rc == CHAT_MORE) {
        f->rc = chat_stream_eof(&f->s, &f->err);
        CHECK(f->rc == CHAT_FAIL);
    }
    if (f->rc == CHAT_FAIL) {
        CHECK(f->err.status == 502 || f->err.status == 500);
        CHECK(sse_error(&f->out, &f->err) == 0);
    }
    chat_set_fast_path(true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool include_usage = data[0] & 1;
    unsigned step = 1 + data[1] % 64; /* piece size pattern */
    const char *in = (const char *)data + 2;
    size_t len = size - 2;

    struct feed f, slow;
    run_stream(&f, in, len, step, include_usage, true);
    check_sse(&f.out, f.rc, include_usage, f.s.tool_calls);
    CHECK(f.s.done == (f.rc == CHAT_DONE));
    CHECK(f.s.prompt_tokens >= 0 && f.s.completion_tokens >= 0);
    /* The fast path for plain content lines must change nothing at all. */
    run_stream(&slow, in, len, step, include_usage, false);
    mask_generated_ids(&f.out);
    mask_generated_ids(&slow.out);
    CHECK(slow.rc == f.rc && slow.out.len == f.out.len);
    CHECK(f.out.len == 0 || memcmp(slow.out.p, f.out.p, f.out.len) == 0);
    CHECK(slow.s.prompt_tokens == f.s.prompt_tokens);
    chat_stream_free(&slow.s);
    buf_free(&slow.out);
    chat_stream_free(&f.s);
    buf_free(&f.out);

    /* the same bytes as a non-streamed answer */
    struct buf out;
    struct apierr err;
    long pt = -1, ct = -1;
    buf_init(&out, 16u << 20);
    int crc = chat_complete(in, len, "gpt-x", "chatcmpl-fuzz", 1, "fuzz", &out, &pt, &ct, &err);
    {
        /* the non-streamed fast path must change nothing either */
        struct buf o2;
        struct apierr e2;
        long pt2 = -1, ct2 = -1;
        buf_init(&o2, 16u << 20);
        chat_set_fast_path(false);
        int rc2 = chat_complete(in, len, "gpt-x", "chatcmpl-fuzz", 1, "fuzz", &o2, &pt2, &ct2, &e2);
        chat_set_fast_path(true);
        mask_generated_ids(&out);
        mask_generated_ids(&o2);
        CHECK(rc2 == crc && pt2 == pt && ct2 == ct && o2.len == out.len);
        CHECK(out.len == 0 || memcmp(o2.p, out.p, out.len) == 0);
        CHECK(crc == 0 || strcmp(e2.message, err.message) == 0);
        buf_free(&o2);
    }
    if (crc == 0) {
        cJSON *j = cJSON_ParseWithLength(out.p, out.len);
        CHECK(cJSON_IsObject(j));
        CHECK(strcmp(get(j, "object")->valuestring, "chat.completion") == 0);
        const cJSON *c = get(j, "choices")->child;
        CHECK(cJSON_IsString(get(c, "finish_reason")));
        CHECK(cJSON_IsObject(get(j, "usage")));
        cJSON_Delete(j);
        CHECK(pt >= 0 && ct >= 0);
    } else {
        CHECK(out.len == 0);
        CHECK(err.status == 502 || err.status == 500);
        check_error_json(&err);
    }
    buf_free(&out);

    /* and as an error body */
    static const int statuses[] = {400, 401, 403, 404, 429, 499, 500, 502, 503, 504, 200, 0};
    upstream_error_map(statuses[data[1] % 12], in, len, data[0] & 2 ? "fuzz" : NULL, &err);
    CHECK(err.status >= 400 && err.status < 600);
    check_error_json(&err);
    return 0;
}
