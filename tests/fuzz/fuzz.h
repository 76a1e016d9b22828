/*
 * What every fuzz target here shares: libFuzzer's entry points (declared so
 * -Wmissing-prototypes is satisfied), CHECK, which aborts on a broken
 * invariant so the fuzzer records the input, and for the translation
 * targets fuzz_alias_options(), fuzz_split(), fuzz_sse() and
 * fuzz_openai_chunk().
 */
#ifndef GATEWAY_FUZZ_H
#define GATEWAY_FUZZ_H

#include "ndjson.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

/* An alias's "options", as the engine hands them to a dialect's translate. */
static inline cJSON *fuzz_alias_options(void)
{
    return cJSON_Parse("{\"num_ctx\":8192,\"temperature\":0.5,\"stop\":[\"<|end|>\"]}");
}

/*
 * in[0..len) through an NDJSON splitter (lines up to 1 MiB) in pieces of
 * step, 2*step, 3*step bytes in turn, as curl might hand them over, then its
 * end: each line to fn. Returns 0, fn's non-zero value, or -1 for a line too
 * long (the engine fails the stream then).
 */
static inline int fuzz_split(const char *in, size_t len, unsigned step, ndjson_line_fn fn, void *ud)
{
    struct ndjson nd;
    int stop = 0;
    ndjson_init(&nd, 1u << 20);
    for (size_t at = 0, k = 0; at < len && !stop; k++) {
        size_t n = step * (k % 3 + 1);
        if (n > len - at)
            n = len - at;
        stop = ndjson_feed(&nd, in + at, n, fn, ud);
        at += n;
    }
    if (!stop)
        stop = ndjson_finish(&nd, fn, ud);
    ndjson_free(&nd);
    return stop;
}

/*
 * Walk the SSE events of a translated stream: each must be "data: <one
 * line>\n\n", and "[DONE]" may only be the very last; every other payload
 * must be a JSON object, handed to fn. Returns the number of [DONE] events.
 */
static inline int fuzz_sse(const struct buf *out, void (*fn)(const cJSON *j, void *ud), void *ud)
{
    int dones = 0;
    const char *p = out->p ? out->p : "", *end = p + out->len;
    while (p < end) {
        const char *sep = strstr(p, "\n\n");
        CHECK(sep && sep < end);
        CHECK(memcmp(p, "data: ", 6) == 0);
        const char *payload = p + 6;
        size_t n = (size_t)(sep - payload);
        CHECK(!memchr(payload, '\n', n));
        CHECK(!dones);
        if (n == 6 && memcmp(payload, "[DONE]", 6) == 0) {
            dones++;
        } else {
            cJSON *j = cJSON_ParseWithLength(payload, n);
            CHECK(cJSON_IsObject(j));
            fn(j, ud);
            cJSON_Delete(j);
        }
        p = sep + 2;
    }
    return dones;
}

/* What fuzz_openai_chunk found. */
enum { FUZZ_ERROR, FUZZ_USAGE, FUZZ_CHOICES };

/*
 * The parts every OpenAI stream event of the translation targets shares: an
 * error event ({"error":{"message",...}}), or a chunk with the given id and
 * object, created 1700000000, the model "gpt-\"fuzz\"" and a choices array;
 * an empty one only in the usage chunk, whose total is the sum of its counts.
 */
static inline int fuzz_openai_chunk(const cJSON *j, const char *id, const char *object)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (e) {
        CHECK(cJSON_IsObject(e));
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "message")));
        return FUZZ_ERROR;
    }
    CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring, id) == 0);
    CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(j, "object")->valuestring, object) == 0);
    CHECK(cJSON_GetObjectItemCaseSensitive(j, "created")->valuedouble == 1700000000.0);
    CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(j, "model")->valuestring, "gpt-\"fuzz\"") == 0);
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    CHECK(cJSON_IsArray(choices));
    if (choices->child)
        return FUZZ_CHOICES;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    CHECK(cJSON_IsNumber(pt) && cJSON_IsNumber(ct));
    CHECK(cJSON_GetObjectItemCaseSensitive(u, "total_tokens")->valuedouble ==
          pt->valuedouble + ct->valuedouble);
    return FUZZ_USAGE;
}

#endif
