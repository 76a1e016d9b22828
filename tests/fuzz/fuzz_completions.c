/*
 * libFuzzer target: the legacy completions dialect's pure translation.
 *
 * The first byte chooses. Odd: the rest is a client's /v1/completions body,
 * through completions_req_parse and completions_req_to_ollama. Even: its bits
 * 1-3 are include_usage, logprobs and echo, the second byte the size pattern
 * of the pieces, and the rest upstream bytes, through the NDJSON splitter
 * into completions_stream_line (fast path on and off: the same bytes), then
 * as a whole answer (completions_complete, on and off: the same bytes).
 *
 * Invariants checked (abort on violation). Requests: a rejection is a 400 (or
 * 500) with a message; an accepted request translates to one JSON object
 * holding only model (the upstream name), an explicit boolean stream, the
 * non-empty prompt, and suffix, logprobs, top_logprobs and a non-empty
 * options when present; echo and logprobs never both. Streams: every event is
 * "data: <one line>\n\n", every payload a JSON object or [DONE] as the very
 * last event and only after DIALECT_DONE; every chunk has the same id and
 * created, object "text_completion" and the client's model; with echo the
 * first chunk is the prompt; text chunks (one choice, index 0, a string text,
 * finish_reason null) come before exactly one final chunk (text "",
 * finish_reason stop or length), then the usage chunk iff include_usage; a
 * failed stream ends with one error event and no [DONE]. Whole answers:
 * object text_completion with a text, a finish reason and usage, or nothing
 * written and a 502/500.
 */
#include "fuzz.h"
#include "apierr.h"
#include "completions_answer.h"
#include "completions_request.h"
#include "dialect.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ECHO "Once \"upon\"\n\xc3\xa9"

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

static void check_native(const char *text, size_t len, const struct completions_req *r)
{
    static const char *const keys[] = {"model",    "stream",       "prompt", "suffix",
                                       "logprobs", "top_logprobs", "options"};
    cJSON *j = cJSON_ParseWithLength(text, len);
    CHECK(cJSON_IsObject(j));
    for (const cJSON *it = j->child; it; it = it->next) {
        size_t k = 0;
        while (k < sizeof keys / sizeof keys[0] && strcmp(it->string, keys[k]) != 0)
            k++;
        CHECK(k < sizeof keys / sizeof keys[0]);
    }
    CHECK(strcmp(get(j, "model")->valuestring, "upstream:tag") == 0);
    CHECK(cJSON_IsBool(get(j, "stream")) && cJSON_IsTrue(get(j, "stream")) == r->stream);
    const cJSON *prompt = get(j, "prompt");
    CHECK(cJSON_IsString(prompt) && prompt->valuestring[0]);
    CHECK(strcmp(prompt->valuestring, r->prompt) == 0);
    const cJSON *suffix = get(j, "suffix");
    CHECK(!suffix || (cJSON_IsString(suffix) && suffix->valuestring[0]));
    CHECK(cJSON_IsTrue(get(j, "logprobs")) == r->want.logprobs);
    const cJSON *top = get(j, "top_logprobs");
    CHECK(!top || (cJSON_IsNumber(top) && top->valuedouble >= 0 && top->valuedouble <= 20));
    const cJSON *opts = get(j, "options");
    CHECK(!opts || (cJSON_IsObject(opts) && opts->child));
    CHECK(!(r->want.echo && r->want.logprobs));
    CHECK(!r->want.echo || strcmp(r->want.echo, r->prompt) == 0);
    cJSON_Delete(j);
}

static void fuzz_request(const char *body, size_t size)
{
    struct completions_req r;
    struct apierr err;
    struct buf out;
    buf_init(&out, 64u << 20);
    if (completions_req_parse(&r, body, size, &err) == 0) {
        CHECK(r.root && r.native && r.model && r.model[0] && r.prompt);
        CHECK(completions_req_to_ollama(&r, "upstream:tag", size % 2 ? alias : NULL, &out, &err) ==
              0);
        check_native(out.p, out.len, &r);
        completions_req_free(&r);
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
    struct completions_stream s;
    struct buf out;
    struct apierr err;
    int rc;
};

static int on_line(void *ud, const char *line, size_t len)
{
    struct feed *f = ud;
    f->rc = completions_stream_line(&f->s, line, len, &f->out, &f->err);
    return f->rc == DIALECT_MORE ? 0 : 1;
}

/* Run the stream translation over in[0..len) with the fast path on or off;
 * the caller owns f->out and f->s afterwards. */
static void run_stream(struct feed *f, const char *in, size_t len, unsigned step,
                       const struct completions_want *want, bool fast)
{
    memset(f, 0, sizeof *f);
    completions_set_fast_path(fast);
    buf_init(&f->out, 16u << 20);
    CHECK(completions_stream_init(&f->s, "gpt-\"fuzz\"", want, "cmpl-fuzz", 1700000000) == 0);
    f->s.backend = "fuzz";
    f->rc = DIALECT_MORE;
    if (fuzz_split(in, len, step, on_line, f) == -1) {
        /* an over-long line: the engine fails the stream like this */
        CHECK(f->rc == DIALECT_MORE);
        f->rc = DIALECT_FAIL;
        apierr_set(&f->err, 502, APIERR_API, "upstream_error", NULL, "line too long");
    } else if (f->rc == DIALECT_MORE) {
        f->rc = completions_stream_eof(&f->s, &f->err);
        CHECK(f->rc == DIALECT_FAIL);
    }
    if (f->rc == DIALECT_FAIL) {
        CHECK(f->err.status == 502 || f->err.status == 500);
        CHECK(errshape_openai.frame(&f->out, &f->err) == 0);
    }
    completions_set_fast_path(true);
}

struct seen {
    int texts, finals, usages, errors, dones;
    const struct completions_want *want;
};

static void check_chunk(const cJSON *j, void *ud)
{
    struct seen *v = ud;
    const struct completions_want *want = v->want;
    int kind = fuzz_openai_chunk(j, "cmpl-fuzz", "text_completion");
    if (kind == FUZZ_ERROR) {
        v->errors++;
        return;
    }
    CHECK(!v->errors && !v->usages);
    if (kind == FUZZ_USAGE) {
        CHECK(want->include_usage && v->finals == 1);
        v->usages++;
        return;
    }
    const cJSON *c = get(j, "choices")->child;
    CHECK(!c->next && get(c, "index")->valuedouble == 0);
    const cJSON *text = get(c, "text");
    CHECK(cJSON_IsString(text));
    CHECK(!v->finals);
    const cJSON *lp = get(c, "logprobs");
    CHECK(cJSON_IsNull(lp) || (want->logprobs && cJSON_IsObject(lp)));
    const cJSON *fr = get(c, "finish_reason");
    if (cJSON_IsString(fr)) {
        CHECK(!text->valuestring[0]);
        CHECK(strcmp(fr->valuestring, "stop") == 0 || strcmp(fr->valuestring, "length") == 0);
        CHECK(!want->echo || v->texts > 0);
        v->finals++;
        return;
    }
    CHECK(cJSON_IsNull(fr));
    /* the echo chunk first; a text delta is never empty */
    if (want->echo && !v->texts)
        CHECK(strcmp(text->valuestring, want->echo) == 0);
    else
        CHECK(text->valuestring[0]);
    v->texts++;
}

static void check_sse(const struct buf *out, int rc, const struct completions_want *want)
{
    struct seen v = {.want = want};
    v.dones = fuzz_sse(out, check_chunk, &v);
    if (rc == DIALECT_DONE) {
        CHECK(v.dones == 1 && v.finals == 1 && !v.errors);
        CHECK(v.usages == (want->include_usage ? 1 : 0));
    } else {
        CHECK(rc == DIALECT_FAIL && v.errors == 1 && !v.dones && !v.finals && !v.usages);
    }
}

static void fuzz_answer(const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    struct completions_want want = {
        .include_usage = data[0] & 2, .logprobs = data[0] & 4, .echo = data[0] & 8 ? ECHO : NULL};
    unsigned step = 1 + data[1] % 64;
    const char *in = (const char *)data + 2;
    size_t len = size - 2;

    struct feed f, slow;
    run_stream(&f, in, len, step, &want, true);
    check_sse(&f.out, f.rc, &want);
    CHECK(f.s.done == (f.rc == DIALECT_DONE));
    CHECK(f.s.prompt_tokens >= 0 && f.s.completion_tokens >= 0);
    /* the fast path for plain token lines must change nothing at all */
    run_stream(&slow, in, len, step, &want, false);
    CHECK(slow.rc == f.rc && slow.out.len == f.out.len);
    CHECK(f.out.len == 0 || memcmp(slow.out.p, f.out.p, f.out.len) == 0);
    CHECK(slow.s.prompt_tokens == f.s.prompt_tokens);
    completions_stream_free(&slow.s);
    buf_free(&slow.out);
    completions_stream_free(&f.s);
    buf_free(&f.out);

    /* the same bytes as a whole answer, fast path on and off */
    struct buf out, o2;
    struct apierr err, e2;
    long pt = -1, ct = -1, pt2 = -1, ct2 = -1;
    buf_init(&out, 16u << 20);
    buf_init(&o2, 16u << 20);
    int rc =
        completions_complete(in, len, "gpt-x", "cmpl-fuzz", 1, &want, "fuzz", &out, &pt, &ct, &err);
    completions_set_fast_path(false);
    int rc2 =
        completions_complete(in, len, "gpt-x", "cmpl-fuzz", 1, &want, "fuzz", &o2, &pt2, &ct2, &e2);
    completions_set_fast_path(true);
    CHECK(rc == rc2 && pt == pt2 && ct == ct2 && out.len == o2.len);
    CHECK(out.len == 0 || memcmp(out.p, o2.p, out.len) == 0);
    if (rc == 0) {
        cJSON *j = cJSON_ParseWithLength(out.p, out.len);
        CHECK(cJSON_IsObject(j));
        CHECK(strcmp(get(j, "object")->valuestring, "text_completion") == 0);
        const cJSON *c = get(j, "choices")->child;
        CHECK(cJSON_IsString(get(c, "text")) && cJSON_IsString(get(c, "finish_reason")));
        CHECK(!want.echo || strncmp(get(c, "text")->valuestring, ECHO, strlen(ECHO)) == 0);
        CHECK(cJSON_IsObject(get(j, "usage")));
        cJSON_Delete(j);
        CHECK(pt >= 0 && ct >= 0);
    } else {
        CHECK(out.len == 0);
        CHECK(err.status == 502 || err.status == 500);
        CHECK(strcmp(err.message, e2.message) == 0);
        check_error_json(&err);
    }
    buf_free(&out);
    buf_free(&o2);
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
