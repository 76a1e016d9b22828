/*
 * What the unit tests of the translations share: q(), which lets test JSON be
 * written with single quotes, check_frames(), the SSE framing check,
 * setup_sodium(), the group setup of tests that make random ids, and
 * failing_malloc(), an allocator for cJSON_InitHooks that fails on the
 * fail_at-th call (counted in allocs), for out-of-memory tests, and
 * DEFINE_NATIVE_WITH(), a dialect's request translated to its native body.
 * static inline, so a test file that does not use one pays nothing for it.
 * Include after <cmocka.h>.
 */
#ifndef GATEWAY_TEST_HELPERS_H
#define GATEWAY_TEST_HELPERS_H

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* 'x' -> "x", in one of a rotating set of static buffers (no test text
 * needs a real apostrophe). */
static inline const char *q(const char *s)
{
    static char qbufs[16][16384];
    static unsigned qnext;
    char *b = qbufs[qnext++ % 16];
    size_t n = strlen(s);
    assert_true(n < sizeof qbufs[0]);
    for (size_t i = 0; i <= n; i++)
        b[i] = s[i] == '\'' ? '"' : s[i];
    return b;
}

/* Every SSE event in out must be "data: <JSON object>" or "data: [DONE]". */
static inline void check_frames(const char *p, size_t len)
{
    const char *end = p + len;
    while (p < end) {
        const char *sep = strstr(p, "\n\n");
        assert_non_null(sep);
        assert_true(sep < end);
        assert_memory_equal(p, "data: ", 6);
        const char *payload = p + 6;
        size_t n = (size_t)(sep - payload);
        assert_null(memchr(payload, '\n', n));
        if (!(n == 6 && memcmp(payload, "[DONE]", 6) == 0)) {
            cJSON *j = cJSON_ParseWithLength(payload, n);
            assert_non_null(j);
            assert_true(cJSON_IsObject(j));
            cJSON_Delete(j);
        }
        p = sep + 2;
    }
}

static long fail_at __attribute__((unused)), allocs __attribute__((unused));

static inline void *failing_malloc(size_t n)
{
    if (++allocs == fail_at)
        return NULL;
    return malloc(n);
}

/* Group setup: random ids come from libsodium. */
static inline int setup_sodium(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

/*
 * native_with(body, alias_json): parse body (q() quoting) as a PREFIX request
 * and translate it under the upstream name "llama3.2" with the alias options
 * given (or none); the native body, checked to be one JSON object, in a
 * static buffer. A rejection fails the test. For the dialects whose request
 * side is PREFIX_req_parse / PREFIX_req_to_ollama / PREFIX_req_free.
 */
#define DEFINE_NATIVE_WITH(prefix)                                                                 \
    static const char *native_with(const char *body, const char *alias_json)                       \
    {                                                                                              \
        static char result[16384];                                                                 \
        struct prefix##_req r;                                                                     \
        struct apierr err = {0};                                                                   \
        struct buf out;                                                                            \
        cJSON *alias = alias_json ? cJSON_Parse(q(alias_json)) : NULL;                             \
        const char *b = q(body);                                                                   \
        buf_init(&out, 1 << 20);                                                                   \
        if (prefix##_req_parse(&r, b, strlen(b), &err) != 0)                                       \
            fail_msg("unexpected rejection: %d %s (%s)", err.status, err.message, err.param);      \
        assert_int_equal(prefix##_req_to_ollama(&r, "llama3.2", alias, &out, &err), 0);            \
        assert_true(out.len < sizeof result);                                                      \
        memcpy(result, out.p, out.len + 1);                                                        \
        cJSON *check = cJSON_Parse(result);                                                        \
        assert_true(cJSON_IsObject(check));                                                        \
        cJSON_Delete(check);                                                                       \
        prefix##_req_free(&r);                                                                     \
        cJSON_Delete(alias);                                                                       \
        buf_free(&out);                                                                            \
        return result;                                                                             \
    }

#endif
