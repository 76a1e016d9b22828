/*
 * libFuzzer target: the embeddings dialect (gateway/proto/embeddings.c),
 * both ways. The first byte chooses how many inputs the answer is for
 * (1-4, bits 0-1) and whether the alias has options (bit 2); the rest is
 * used twice: as a client's /v1/embeddings body, and as a native /api/embed
 * answer, translated once for encoding_format float and once for base64.
 *
 * Invariants checked (abort on violation):
 *  - request: a rejection is a 400 (resolve never asked) with a message and
 *    nothing written; an acceptance asked resolve once, for no stream, and
 *    wrote one JSON object holding only model (the upstream name), input (a
 *    non-empty array of strings), truncate true, dimensions (an integer >= 1,
 *    only when asked for) and options (a non-empty object, only from the
 *    alias).
 *  - answer: float and base64 agree on success or failure (and on the
 *    message); a success is one JSON object, "list", with exactly one
 *    "embedding" per input, indexed in order, the client's model name, and
 *    usage.prompt_tokens == usage.total_tokens == the state's count; every
 *    number of the float form, read back with strtof, is its base64 twin bit
 *    for bit; a failure is a 502 (or 500) that leaves
 *    the output as it was and renders as an OpenAI error.
 */
#include "fuzz.h"
#include "apierr.h"
#include "embeddings.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct dialect *const D = &dialect_embeddings;
static cJSON *alias_options;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    alias_options = cJSON_Parse("{\"num_ctx\":8192}");
    return sodium_init() < 0 || !alias_options ? -1 : 0;
}

struct asked {
    int calls;
    bool stream;
    bool options;
};

static int resolve(void *ctx, const char *client_model, bool stream, struct dialect_model *m,
                   struct apierr *e)
{
    struct asked *a = ctx;
    (void)e;
    CHECK(client_model && client_model[0]);
    a->calls++;
    a->stream = stream;
    m->name = "upstream:tag";
    m->options = a->options ? alias_options : NULL;
    return 0;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static void check_error(const struct apierr *e)
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

static void check_native(const struct buf *native, bool options)
{
    cJSON *j = cJSON_ParseWithLength(native->p, native->len);
    CHECK(cJSON_IsObject(j));
    for (const cJSON *it = j->child; it; it = it->next)
        CHECK(strcmp(it->string, "model") == 0 || strcmp(it->string, "input") == 0 ||
              strcmp(it->string, "truncate") == 0 || strcmp(it->string, "dimensions") == 0 ||
              strcmp(it->string, "options") == 0);
    const cJSON *model = get(j, "model");
    CHECK(cJSON_IsString(model) && strcmp(model->valuestring, "upstream:tag") == 0);
    const cJSON *input = get(j, "input");
    CHECK(cJSON_IsArray(input) && input->child);
    for (const cJSON *it = input->child; it; it = it->next)
        CHECK(cJSON_IsString(it));
    CHECK(cJSON_IsTrue(get(j, "truncate")));
    const cJSON *dim = get(j, "dimensions");
    CHECK(!dim || (cJSON_IsNumber(dim) && dim->valuedouble >= 1 &&
                   dim->valuedouble == (double)(long)dim->valuedouble));
    const cJSON *opts = get(j, "options");
    CHECK(options ? cJSON_IsObject(opts) && opts->child : !opts);
    cJSON_Delete(j);
}

static void fuzz_request(const char *p, size_t len, bool options)
{
    void *st = calloc(1, D->state_size);
    struct asked asked = {.options = options};
    struct buf native;
    struct apierr err;
    CHECK(st);
    buf_init(&native, 2 * len + 4096); /* the engine's ceiling */
    if (D->translate(st, p, len, resolve, &asked, &native, &err) == 0) {
        CHECK(asked.calls == 1 && !asked.stream);
        check_native(&native, options);
    } else {
        /* 400s come before the backend is asked for; a 500 (memory) may come after */
        CHECK(err.status == 400 || err.status == 500);
        CHECK(asked.calls == 0 || err.status == 500);
        CHECK(native.len == 0);
        check_error(&err);
    }
    D->release(st);
    free(st);
    buf_free(&native);
}

/* The request that sets a state up for k inputs. */
static void *state_for(unsigned k, bool base64)
{
    static const char *const bodies[2][4] = {
        {"{\"model\":\"m\",\"input\":\"a\"}", "{\"model\":\"m\",\"input\":[\"a\",\"b\"]}",
         "{\"model\":\"m\",\"input\":[\"a\",\"b\",\"c\"]}",
         "{\"model\":\"m\",\"input\":[\"a\",\"b\",\"c\",\"d\"]}"},
        {"{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":\"base64\"}",
         "{\"model\":\"m\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\"}",
         "{\"model\":\"m\",\"input\":[\"a\",\"b\",\"c\"],\"encoding_format\":\"base64\"}",
         "{\"model\":\"m\",\"input\":[\"a\",\"b\",\"c\",\"d\"],\"encoding_format\":\"base64\"}"},
    };
    void *st = calloc(1, D->state_size);
    struct asked asked = {0};
    struct buf native;
    struct apierr err;
    const char *b = bodies[base64][k - 1];
    CHECK(st);
    buf_init(&native, 1 << 12);
    CHECK(D->translate(st, b, strlen(b), resolve, &asked, &native, &err) == 0);
    buf_free(&native);
    struct dialect_answer a = {.client_model = "text-\"embedding\"-3"};
    CHECK(D->begin(st, &a) == 0);
    ((struct dialect_common *)st)->backend = "fuzz";
    return st;
}

/* The bytes a base64 string holds (the caller frees them); *n their count. */
static unsigned char *bytes_of(const char *b64, size_t *n)
{
    size_t len = strlen(b64);
    unsigned char *bin = malloc(len + 1);
    CHECK(bin);
    CHECK(sodium_base642bin(bin, len + 1, b64, len, NULL, n, NULL,
                            sodium_base64_VARIANT_ORIGINAL) == 0);
    return bin;
}

static void check_answers(const struct buf *fl, const struct buf *b64, unsigned k, long tokens)
{
    cJSON *a = cJSON_ParseWithLength(fl->p, fl->len);
    cJSON *b = cJSON_ParseWithLength(b64->p, b64->len);
    CHECK(cJSON_IsObject(a) && cJSON_IsObject(b));
    for (int v = 0; v < 2; v++) {
        const cJSON *j = v ? b : a;
        CHECK(strcmp(get(j, "object")->valuestring, "list") == 0);
        CHECK(strcmp(get(j, "model")->valuestring, "text-\"embedding\"-3") == 0);
        const cJSON *u = get(j, "usage");
        CHECK(get(u, "prompt_tokens")->valuedouble == (double)tokens);
        CHECK(get(u, "total_tokens")->valuedouble == (double)tokens);
        CHECK(cJSON_GetArraySize(get(j, "data")) == (int)k);
    }
    const cJSON *x = get(a, "data")->child, *y = get(b, "data")->child;
    const char *text = fl->p; /* the float form's numbers, read as written */
    for (unsigned i = 0; i < k; i++, x = x->next, y = y->next) {
        CHECK(strcmp(get(x, "object")->valuestring, "embedding") == 0);
        CHECK(get(x, "index")->valuedouble == i && get(y, "index")->valuedouble == i);
        const cJSON *fv = get(x, "embedding"), *bv = get(y, "embedding");
        CHECK(cJSON_IsArray(fv) && cJSON_IsString(bv));
        size_t n = (size_t)cJSON_GetArraySize(fv), got;
        unsigned char *bin = bytes_of(bv->valuestring, &got);
        CHECK(got == 4 * n);
        text = strstr(text, "\"embedding\":[");
        CHECK(text);
        text += 13;
        /* each number as written is the float32 whose little-endian bytes
         * the base64 form holds, bit for bit */
        for (size_t at = 0; at < n; at++) {
            char *end;
            float g = strtof(text, &end);
            uint32_t u;
            CHECK(end != text && (*end == ',' || *end == ']'));
            memcpy(&u, &g, sizeof u);
            for (unsigned byte = 0; byte < 4; byte++)
                CHECK(bin[4 * at + byte] == (unsigned char)(u >> (8 * byte)));
            text = end + 1;
        }
        free(bin);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void fuzz_answer(const char *p, size_t len, unsigned k)
{
    void *fs = state_for(k, false), *bs = state_for(k, true);
    struct buf fl, b64;
    struct apierr fe, be;
    buf_init(&fl, 64u << 20);
    buf_init(&b64, 64u << 20);
    CHECK(buf_puts(&fl, "x") == 0 && buf_puts(&b64, "x") == 0);
    int frc = D->complete(fs, p, len, &fl, &fe);
    int brc = D->complete(bs, p, len, &b64, &be);
    CHECK(frc == brc);
    if (frc == 0) {
        struct buf f1 = {fl.p + 1, fl.len - 1, 0, 0}, b1 = {b64.p + 1, b64.len - 1, 0, 0};
        long tokens = ((struct dialect_common *)fs)->prompt_tokens;
        CHECK(tokens >= 0 && tokens == ((struct dialect_common *)bs)->prompt_tokens);
        CHECK(((struct dialect_common *)fs)->completion_tokens == 0);
        check_answers(&f1, &b1, k, tokens);
    } else {
        CHECK(fl.len == 1 && b64.len == 1);
        CHECK(fe.status == 502 || fe.status == 500);
        CHECK(strcmp(fe.message, be.message) == 0);
        check_error(&fe);
    }
    D->release(fs);
    D->release(bs);
    free(fs);
    free(bs);
    buf_free(&fl);
    buf_free(&b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    fuzz_request(p, len, data[0] & 4);
    fuzz_answer(p, len, (data[0] & 3) + 1u);
    return 0;
}
