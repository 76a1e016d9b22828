/* Unit tests for keys.c (the keys file, checking a presented key, atomic
 * writes) (the cli tests of `ollama-gateway key ...`
 * are in cli/test_keycmd.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "keys.h"
#include "keysfile.h"
#include "log.h"

#include "keys_fixture.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void test_generate(void **state)
{
    (void)state;
    char id[KEY_ID_LEN + 1], secret[KEY_SECRET_SIZE], id2[KEY_ID_LEN + 1], secret2[KEY_SECRET_SIZE];
    unsigned char h[KEY_HASH_LEN], h2[KEY_HASH_LEN], again[KEY_HASH_LEN];
    key_generate(id, secret, h);
    key_generate(id2, secret2, h2);
    assert_int_equal(strlen(id), KEY_ID_LEN);
    assert_int_equal(strlen(secret), KEY_SECRET_LEN);
    assert_memory_equal(secret, "og-", 3);
    assert_memory_equal(secret + 3, id, KEY_ID_LEN);
    assert_int_equal(secret[15], '-');
    for (size_t i = 0; i < KEY_ID_LEN; i++)
        assert_true(is_id_char(id[i]));
    for (size_t i = 16; i < KEY_SECRET_LEN; i++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", secret[i]));
    /* the secret decodes to 32 bytes */
    unsigned char raw[64];
    size_t rawlen = 0;
    assert_int_equal(sodium_base642bin(raw, sizeof raw, secret + 16, 43, NULL, &rawlen, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    assert_int_equal(rawlen, 32);
    key_hash(secret, strlen(secret), again);
    assert_memory_equal(h, again, KEY_HASH_LEN);
    assert_string_not_equal(secret, secret2);
    assert_memory_not_equal(h, h2, KEY_HASH_LEN);

    /* every id character turns up, and nothing else */
    int seen[36] = {0};
    for (int round = 0; round < 300; round++) {
        key_generate(id, secret, h);
        for (size_t i = 0; i < KEY_ID_LEN; i++)
            seen[id[i] >= 'a' ? id[i] - 'a' : 26 + id[i] - '0']++;
    }
    for (int i = 0; i < 36; i++)
        assert_true(seen[i] > 0);
}

static void test_hash_known(void **state)
{
    (void)state;
    /* BLAKE2b-256 of "abc" (RFC 7693 appendix A is BLAKE2b-512; this is the
     * 32-byte output of the same function, unkeyed). */
    unsigned char h[KEY_HASH_LEN];
    char hex[2 * KEY_HASH_LEN + 1];
    key_hash("abc", 3, h);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    assert_string_equal(hex, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

static void test_verify_ok_wrong(void **state)
{
    (void)state;
    char ta[KEY_SECRET_SIZE], tb[KEY_SECRET_SIZE], wrong[KEY_SECRET_SIZE];
    token(ta, ID_A, 'A');
    token(tb, ID_B, 'B');
    struct buf r;
    buf_init(&r, 1u << 20);
    record(&r, ID_B, "b", tb, NULL);
    record(&r, ID_A, "a", ta, NULL);
    struct keyring *kr = load_records(&r);
    assert_int_equal(kr->n, 2);
    assert_string_equal(kr->path, "k.json");

    const struct key *k = NULL;
    assert_int_equal(keyring_verify(kr, ta, strlen(ta), 0, &k), KEY_OK);
    assert_non_null(k);
    assert_string_equal(k->id, ID_A);
    assert_string_equal(k->name, "a");
    assert_int_equal(verify(kr, tb, 0), KEY_OK);

    /* one character off, anywhere in the secret part */
    for (size_t pos = 16; pos < KEY_SECRET_LEN; pos += 7) {
        memcpy(wrong, ta, sizeof wrong);
        wrong[pos] = wrong[pos] == 'A' ? 'B' : 'A';
        k = NULL;
        assert_int_equal(keyring_verify(kr, wrong, strlen(wrong), 0, &k), KEY_WRONG);
        assert_non_null(k); /* the id exists: named for logs */
        assert_string_equal(k->id, ID_A);
    }
    /* the secret of the other key, under this id */
    memcpy(wrong, tb, sizeof wrong);
    memcpy(wrong + 3, ID_A, KEY_ID_LEN);
    assert_int_equal(verify(kr, wrong, 0), KEY_WRONG);
    keyring_unref(kr);
    buf_free(&r);
}

static void test_verify_malformed(void **state)
{
    (void)state;
    char ta[KEY_SECRET_SIZE];
    token(ta, ID_A, 'A');
    struct buf r;
    buf_init(&r, 1u << 20);
    record(&r, ID_A, "a", ta, NULL);
    struct keyring *kr = load_records(&r);

    char t[256];
    const struct key *k;
#define MALFORMED(s, n)                                                                            \
    do {                                                                                           \
        k = (const struct key *)1;                                                                 \
        assert_int_equal(keyring_verify(kr, (s), (n), 0, &k), KEY_MALFORMED);                      \
        assert_null(k);                                                                            \
    } while (0)

    /* missing or different prefix */
    snprintf(t, sizeof t, "xx-%s", ta + 3);
    MALFORMED(t, strlen(t));
    snprintf(t, sizeof t, "OG-%s", ta + 3);
    MALFORMED(t, strlen(t));
    MALFORMED(ta + 3, strlen(ta + 3));
    snprintf(t, sizeof t, "Bearer %s", ta);
    MALFORMED(t, strlen(t));
    /* short id (and the length made right again with one more secret char) */
    snprintf(t, sizeof t, "og-aaaaaaaaaaa-%.43sA", ta + 16);
    MALFORMED(t, strlen(t));
    /* uppercase or other characters in the id */
    memcpy(t, ta, KEY_SECRET_SIZE);
    t[5] = 'A';
    MALFORMED(t, strlen(t));
    memcpy(t, ta, KEY_SECRET_SIZE);
    t[5] = '_';
    MALFORMED(t, strlen(t));
    /* no '-' after the id */
    memcpy(t, ta, KEY_SECRET_SIZE);
    t[15] = '_';
    MALFORMED(t, strlen(t));
    /* 42 and 44 secret characters */
    MALFORMED(ta, KEY_SECRET_LEN - 1);
    snprintf(t, sizeof t, "%sA", ta);
    MALFORMED(t, strlen(t));
    /* characters outside base64url: standard base64, padding, space, UTF-8 */
    const char *bad = "+/=. \t\x80\xff";
    for (const char *b = bad; *b; b++) {
        memcpy(t, ta, KEY_SECRET_SIZE);
        t[30] = *b;
        MALFORMED(t, KEY_SECRET_LEN);
    }
    /* an embedded NUL, with the length saying the token goes on */
    memcpy(t, ta, KEY_SECRET_SIZE);
    t[30] = '\0';
    MALFORMED(t, KEY_SECRET_LEN);
    /* a trailing newline or space */
    snprintf(t, sizeof t, "%s\n", ta);
    MALFORMED(t, strlen(t));
    /* empty, NULL, huge */
    MALFORMED("", 0);
    MALFORMED(NULL, 0);
    size_t huge_len = 1u << 20;
    char *huge = malloc(huge_len);
    assert_non_null(huge);
    memcpy(huge, ta, KEY_SECRET_LEN);
    memset(huge + KEY_SECRET_LEN, 'A', huge_len - KEY_SECRET_LEN);
    MALFORMED(huge, huge_len);
    free(huge);
    /* out may be NULL */
    assert_int_equal(keyring_verify(kr, ta, strlen(ta), 0, NULL), KEY_OK);
#undef MALFORMED
    keyring_unref(kr);
    buf_free(&r);
}

static void test_verify_unknown(void **state)
{
    (void)state;
    char ta[KEY_SECRET_SIZE], tc[KEY_SECRET_SIZE];
    token(ta, ID_A, 'A');
    token(tc, ID_C, 'A');
    struct buf r;
    buf_init(&r, 1u << 20);
    record(&r, ID_A, "a", ta, NULL);
    struct keyring *kr = load_records(&r);
    const struct key *k = (const struct key *)1;
    assert_int_equal(keyring_verify(kr, tc, strlen(tc), 0, &k), KEY_UNKNOWN);
    assert_null(k);
    keyring_unref(kr);

    /* the empty keyring knows no key */
    kr = keyring_empty();
    assert_non_null(kr);
    assert_int_equal(kr->n, 0);
    assert_null(kr->path);
    assert_int_equal(verify(kr, ta, 0), KEY_UNKNOWN);
    assert_null(keyring_find(kr, ID_A));
    assert_int_equal(verify(kr, "nope", 0), KEY_MALFORMED);
    keyring_unref(kr);
    /* so does no keyring */
    assert_int_equal(verify(NULL, ta, 0), KEY_UNKNOWN);
    buf_free(&r);
}

static void test_expiry(void **state)
{
    (void)state;
    int64_t end;
    /* 2025-03-31 ends at 2025-04-01T00:00:00Z = 1743465600 */
    assert_int_equal(keys_parse_day("2025-03-31", &end), 0);
    assert_int_equal(end, 1743465600);
    assert_int_equal(keys_parse_day("2025-12-31", &end), 0);
    assert_int_equal(end, 1767225600); /* 2026-01-01 */
    assert_int_equal(keys_parse_day("2024-02-29", &end), 0);
    assert_int_equal(keys_parse_day("2000-02-29", &end), 0);
    assert_int_equal(keys_parse_day("1970-01-01", &end), 0);
    assert_int_equal(end, 86400);
    const char *bad[] = {
        "2023-02-29",           "2100-02-29", "2025-04-31", "2025-13-01", "2025-00-10",
        "2025-01-00",           "25-01-01",   "2025-1-01",  "2025/01/01", "1969-12-31",
        "2025-01-01T00:00:00Z", "",           " 2025-01-01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (keys_parse_day(bad[i], &end) == 0)
            fail_msg("accepted %s", bad[i]);
    assert_int_equal(keys_parse_day(NULL, &end), -1);

    char ta[KEY_SECRET_SIZE];
    token(ta, ID_A, 'A');
    struct buf r;
    buf_init(&r, 1u << 20);
    record(&r, ID_A, "a", ta, ", \"expires\": \"2025-03-31\"");
    struct keyring *kr = load_records(&r);
    assert_int_equal(kr->v[0].expires, 1743465600);
    /* works through 23:59:59 UTC of the day, not at 00:00:00 of the next */
    assert_int_equal(verify(kr, ta, 1743465600 - 86400), KEY_OK);
    assert_int_equal(verify(kr, ta, 1743465599), KEY_OK);
    assert_int_equal(verify(kr, ta, 1743465600), KEY_EXPIRED);
    assert_int_equal(verify(kr, ta, 1743465601), KEY_EXPIRED);
    /* a wrong secret stays wrong after expiry */
    char wrong[KEY_SECRET_SIZE];
    token(wrong, ID_A, 'B');
    assert_int_equal(verify(kr, wrong, 1743465600), KEY_WRONG);
    keyring_unref(kr);
    buf_free(&r);
}

static void test_disabled_revoked(void **state)
{
    (void)state;
    char ta[KEY_SECRET_SIZE], tb[KEY_SECRET_SIZE], tc[KEY_SECRET_SIZE], wrong[KEY_SECRET_SIZE];
    token(ta, ID_A, 'A');
    token(tb, ID_B, 'B');
    token(tc, ID_C, 'C');
    struct buf r;
    buf_init(&r, 1u << 20);
    record(&r, ID_A, "a", ta, ", \"disabled\": true");
    record(&r, ID_B, "b", tb, ", \"revoked\": \"2025-01-02T03:04:05Z\"");
    record(&r, ID_C, "c", tc,
           ", \"revoked\": \"1970-01-01T00:00:00Z\", \"disabled\": true, \"expires\": "
           "\"2020-01-01\"");
    struct keyring *kr = load_records(&r);
    const struct key *k = NULL;
    assert_int_equal(keyring_verify(kr, ta, strlen(ta), 0, &k), KEY_DISABLED);
    assert_string_equal(k->id, ID_A);
    assert_int_equal(keyring_verify(kr, tb, strlen(tb), 0, &k), KEY_REVOKED);
    assert_string_equal(k->id, ID_B);
    assert_int_equal(k->revoked, 1735787045);
    /* revoked wins over disabled and expired; revoked at the epoch is revoked */
    assert_int_equal(verify(kr, tc, 2000000000), KEY_REVOKED);
    /* only the holder of the secret learns the state */
    token(wrong, ID_B, 'X');
    assert_int_equal(keyring_verify(kr, wrong, strlen(wrong), 0, &k), KEY_WRONG);
    assert_string_equal(k->id, ID_B);
    token(wrong, ID_A, 'X');
    assert_int_equal(verify(kr, wrong, 0), KEY_WRONG);

    /* a disabled: false key works */
    buf_reset(&r);
    record(&r, ID_A, "a", ta, ", \"disabled\": false, \"admin\": true");
    keyring_unref(kr);
    kr = load_records(&r);
    assert_int_equal(verify(kr, ta, 0), KEY_OK);
    assert_true(kr->v[0].admin);
    keyring_unref(kr);
    buf_free(&r);

    for (int v = KEY_OK; v <= KEY_REVOKED; v++)
        assert_true(strlen(key_verdict_text((enum key_verdict)v)) > 0);
    assert_string_equal(key_verdict_text(KEY_REVOKED), "has been revoked");
    assert_string_equal(key_verdict_text(KEY_EXPIRED), "has expired");
    assert_string_equal(key_verdict_text(KEY_DISABLED), "is disabled");
}

static void test_find_and_fields(void **state)
{
    (void)state;
    char t[KEY_SECRET_SIZE];
    token(t, ID_A, 'A');
    struct buf r;
    buf_init(&r, 1u << 20);
    /* written out of order: the keyring sorts by id */
    record(&r, ID_C, "c", t, NULL);
    record(&r, ID_A, "a", t,
           ", \"models\": [\"llama3*\", \"qwen2.5:14b\"], \"rpm\": 60, \"tpm\": 100000, "
           "\"max_inflight\": 4, \"created\": \"2025-01-31T12:00:00Z\", \"admin\": false");
    record(&r, ID_B, "b", t, ", \"rpm\": 0, \"tpm\": 1000000000, \"max_inflight\": 1e3");
    struct keyring *kr = load_records(&r);
    assert_int_equal(kr->n, 3);
    for (size_t i = 1; i < kr->n; i++)
        assert_true(strcmp(kr->v[i - 1].id, kr->v[i].id) < 0);

    const struct key *a = keyring_find(kr, ID_A);
    assert_non_null(a);
    assert_string_equal(a->name, "a");
    assert_int_equal(a->nmodels, 2);
    assert_string_equal(a->models[0], "llama3*");
    assert_string_equal(a->models[1], "qwen2.5:14b");
    assert_int_equal(a->rpm, 60);
    assert_int_equal(a->tpm, 100000);
    assert_int_equal(a->max_inflight, 4);
    assert_int_equal(a->created, 1738324800);
    assert_int_equal(a->expires, 0);
    assert_int_equal(a->revoked, 0);
    assert_false(a->disabled);
    assert_false(a->admin);
    const struct key *b = keyring_find(kr, ID_B);
    assert_non_null(b);
    assert_null(b->models);
    assert_int_equal(b->nmodels, 0);
    assert_int_equal(b->tpm, 1000000000);
    assert_int_equal(b->max_inflight, 1000);
    assert_ptr_equal(keyring_find(kr, ID_C), &kr->v[2]);

    assert_null(keyring_find(kr, "aaaaaaaaaaa9"));
    assert_null(keyring_find(kr, "AAAAAAAAAAA1"));
    assert_null(keyring_find(kr, "aaaaaaaaaaa"));
    assert_null(keyring_find(kr, "aaaaaaaaaaa11"));
    assert_null(keyring_find(kr, ""));
    assert_null(keyring_find(kr, NULL));
    assert_null(keyring_find(NULL, ID_A));

    /* references */
    assert_ptr_equal(keyring_ref(kr), kr);
    keyring_unref(kr);
    assert_string_equal(keyring_find(kr, ID_B)->name, "b");
    keyring_unref(kr);
    keyring_ref(NULL);
    keyring_unref(NULL);
    buf_free(&r);
}

static void test_scopes(void **state)
{
    (void)state;
    char t[KEY_SECRET_SIZE];
    token(t, ID_A, 'A');
    struct buf r;
    buf_init(&r, 1u << 20);
    record(&r, ID_A, "scoped", t, ", \"models\": [\"llama3*\", \"qwen2.5:14b\", \"gpt-4o-?\"]");
    record(&r, ID_B, "all", t, NULL);
    struct keyring *kr = load_records(&r);
    const struct key *scoped = keyring_find(kr, ID_A), *all = keyring_find(kr, ID_B);

    assert_true(key_allows_model(all, "anything"));
    assert_true(key_allows_model(all, "llama3.2"));
    assert_true(key_allows_model(all, NULL));

    assert_true(key_allows_model(scoped, "llama3"));
    assert_true(key_allows_model(scoped, "llama3.2"));
    assert_true(key_allows_model(scoped, "llama3:8b"));
    assert_true(key_allows_model(scoped, "qwen2.5:14b"));
    assert_true(key_allows_model(scoped, "gpt-4o-x"));
    assert_false(key_allows_model(scoped, "llama2"));
    assert_false(key_allows_model(scoped, "Llama3"));
    assert_false(key_allows_model(scoped, "qwen2.5:7b"));
    assert_false(key_allows_model(scoped, "qwen2.5:14b-instruct"));
    assert_false(key_allows_model(scoped, "gpt-4o-mini"));
    assert_false(key_allows_model(scoped, ""));
    assert_false(key_allows_model(scoped, NULL));
    assert_false(key_allows_model(NULL, "llama3"));
    keyring_unref(kr);
    buf_free(&r);
}

/* ---- problems in the file ---- */

static void test_every_problem(void **state)
{
    (void)state;
    const char *text =
        "{\"version\": 1, \"keys\": [\n"
        " {\"id\": \"ABC\", \"name\": \"\", \"hash\": \"blake2b:00\", \"rpm\": -1,\n"
        "  \"tpm\": 1.5, \"max_inflight\": 1000000001, \"expires\": \"2024-02-30\",\n"
        "  \"created\": \"2025-01-01\", \"revoked\": \"2025-01-01T25:00:00Z\",\n"
        "  \"disabled\": \"yes\", \"admin\": 1, \"models\": \"llama3\"},\n"
        " {\"name\": \"x\\u0001y\"},\n"
        " 42,\n"
        " {\"id\": \"aaaaaaaaaaa1\", \"name\": \"ok\", \"hash\": \"blake2b:"
        "00000000000000000000000000000000000000000000000000000000000000AA\",\n"
        "  \"models\": [\"\", 3, \"ok*\"]}\n"
        "]}";
    struct cfg_errors e;
    load_bad(text, &e);
    const char *want[] = {
        "k.json: keys[0].id: \"ABC\" is not a key id",
        "k.json: keys[0].name: is empty",
        "k.json: keys[0].hash: \"blake2b:00\" is not",
        "k.json: keys[0].rpm: must be a whole number from 0 to 1000000000",
        "k.json: keys[0].tpm: must be a whole number",
        "k.json: keys[0].max_inflight: must be a whole number",
        "k.json: keys[0].expires: \"2024-02-30\" is not a date YYYY-MM-DD",
        "k.json: keys[0].created: \"2025-01-01\" is not a UTC time",
        "k.json: keys[0].revoked: \"2025-01-01T25:00:00Z\" is not a UTC time",
        "k.json: keys[0].disabled: must be true or false, not \"yes\"",
        "k.json: keys[0].admin: must be true or false, not 1",
        "k.json: keys[0].models: must be an array",
        "k.json: keys[1].name: contains control characters",
        "k.json: keys[1].id: missing",
        "k.json: keys[1].hash: missing",
        "k.json: keys[2]: must be an object",
        "k.json: keys[3].hash: \"blake2b:000",
        "k.json: keys[3].models[0]: is empty",
        "k.json: keys[3].models[1]: must be a model name or glob (a string), not 3",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_has(e.text.p, want[i]);
    assert_int_equal(e.count, sizeof want / sizeof want[0]);
    /* one problem, one line */
    size_t lines = 0;
    for (const char *p = e.text.p; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, e.count);
    cfg_errors_free(&e);
}

static void test_duplicates_and_unknown(void **state)
{
    (void)state;
    char t[KEY_SECRET_SIZE];
    token(t, ID_A, 'A');
    struct buf r;
    buf_init(&r, 1u << 20);
    record(&r, ID_A, "first", t, NULL);
    record(&r, ID_B, "other", t, NULL);
    record(&r, ID_A, "second", t, NULL);
    record(&r, ID_A, "third", t, NULL);
    struct buf f;
    buf_init(&f, 1u << 20);
    buf_printf(&f, "{\"version\": 1, \"keys\": [%s]}", r.p);
    struct cfg_errors e;
    load_bad(f.p, &e);
    assert_has(e.text.p, "k.json: keys[2].id: \"" ID_A "\" is also the id of keys[0]; ids must be "
                         "unique");
    assert_has(e.text.p, "k.json: keys[3].id: \"" ID_A "\" is also the id of keys[0]");
    assert_int_equal(e.count, 2);
    cfg_errors_free(&e);

    /* unknown fields, in a record and at the top */
    buf_reset(&r);
    record(&r, ID_A, "a", t, ", \"modles\": [\"x\"], \"colour\": \"red\", \"\\n\": 1");
    buf_reset(&f);
    buf_printf(&f, "{\"version\": 1, \"keys\": [%s], \"extra\": true}", r.p);
    load_bad(f.p, &e);
    assert_has(e.text.p, "k.json: keys[0].modles: unknown field; did you mean \"models\"?");
    assert_has(e.text.p, "k.json: keys[0].colour: unknown field");
    assert_has(e.text.p, "k.json: keys[0][\"?\"]: unknown field");
    assert_has(e.text.p, "k.json: extra: unknown field");
    assert_int_equal(e.count, 4);
    cfg_errors_free(&e);

    /* a field twice in one record */
    buf_reset(&r);
    record(&r, ID_A, "a", t, ", \"rpm\": 1, \"rpm\": 2");
    buf_reset(&f);
    buf_printf(&f, "{\"version\": 1, \"keys\": [%s]}", r.p);
    load_bad(f.p, &e);
    assert_has(e.text.p, "k.json: keys[0].rpm: appears twice in this record");
    cfg_errors_free(&e);
    buf_free(&r);
    buf_free(&f);
}

static void test_top_level(void **state)
{
    (void)state;
    struct cfg_errors e;
    struct keyring *kr = load_text("{\"version\": 1, \"keys\": []}", &e);
    assert_non_null(kr);
    assert_int_equal(kr->n, 0);
    keyring_unref(kr);
    cfg_errors_free(&e);

    expect_error("", "k.json: is empty");
    expect_error(" \n\t", "k.json: is empty");
    expect_error("[]", "k.json: must hold one JSON object");
    expect_error("{\"keys\": []}", "k.json: version: missing; add \"version\": 1");
    expect_error("{\"version\": 1}", "k.json: keys: missing");
    expect_error("{\"version\": 2, \"keys\": []}", "k.json: version: is 2, but this gateway reads "
                                                   "version 1");
    expect_error("{\"version\": \"1\", \"keys\": []}", "k.json: version: is \"1\"");
    expect_error("{\"version\": 1, \"keys\": {}}", "k.json: keys: must be an array");
    expect_error("{\"version\": 1, \"version\": 1, \"keys\": []}",
                 "k.json: version: appears twice");
    expect_error("{\"version\": 1,\n \"keys\": [}\n", "k.json:2: JSON syntax error near \"}\"");
    expect_error("{\"version\": 1,\n \"keys\": [\n", "k.json:3: JSON syntax error: the text ends");
    expect_error("{\"version\": 1, \"keys\": []}\n{}", "k.json:2: unexpected text after the end");
    const char nul[] = "{\"version\": 1,\n \"keys\": []\0}";
    cfg_errors_init(&e);
    assert_null(keyring_load_buffer(nul, sizeof nul - 1, "k.json", &e));
    assert_has(e.text.p, "k.json:2: contains a NUL byte");
    cfg_errors_free(&e);

    /* not '\0'-terminated: only len bytes are read */
    const char *full = "{\"version\": 1, \"keys\": []}garbage";
    cfg_errors_init(&e);
    kr = keyring_load_buffer(full, strlen(full) - 7, "k.json", &e);
    assert_non_null(kr);
    keyring_unref(kr);
    cfg_errors_free(&e);

    /* too many problems: the first CFG_MAX_ERRORS, then a count */
    struct buf f;
    buf_init(&f, 1u << 20);
    buf_puts(&f, "{\"version\": 1, \"keys\": [1");
    for (int i = 1; i < CFG_MAX_ERRORS + 20; i++)
        buf_puts(&f, ", 1");
    buf_puts(&f, "]}");
    load_bad(f.p, &e);
    assert_int_equal(e.count, CFG_MAX_ERRORS + 20);
    assert_has(e.text.p, "k.json: ... and 20 more problems");
    cfg_errors_free(&e);
    buf_free(&f);

    /* a NULL errs logs instead; the result is the same */
    int fd = logs_begin();
    assert_null(keyring_load_buffer("[]", 2, "k.json", NULL));
    char *logged = logs_end(fd);
    assert_has(logged, "error: k.json: must hold one JSON object");
    free(logged);
}

/* ---- files ---- */

static void test_modes(void **state)
{
    struct tmp *t = *state;
    char path[256], why[512], want[1024];
    snprintf(path, sizeof path, "%s/keys.json", t->dir);
    struct cfg_errors e;

    /* missing */
    errno = 0;
    assert_int_equal(keys_check_mode(path, why, sizeof why), -1);
    assert_int_equal(errno, ENOENT);
    cfg_errors_init(&e);
    assert_null(keyring_load(path, "/etc/gw/gateway.json", &e));
    snprintf(want, sizeof want,
             "%s: no keys file; create a key with: ollama-gateway key create NAME -c "
             "/etc/gw/gateway.json\n",
             path);
    assert_string_equal(e.text.p, want);
    assert_int_equal(e.count, 1);
    cfg_errors_free(&e);
    cfg_errors_init(&e);
    assert_null(keyring_load(path, NULL, &e));
    snprintf(want, sizeof want,
             "%s: no keys file; create a key with: ollama-gateway key create NAME\n", path);
    assert_string_equal(e.text.p, want);
    cfg_errors_free(&e);
    char *text;
    size_t len;
    assert_int_equal(keys_read_file(path, &text, &len, why, sizeof why), KEYS_READ_MISSING);
    assert_null(text);

    /* group- or world-readable: refused, saying how to fix it */
    snprintf(want, sizeof want, "chmod 600 %s", path);
    const mode_t bad[] = {0644, 0640, 0604, 0620, 0602, 0660, 0601};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, "{\"version\": 1, \"keys\": []}", bad[i]);
        errno = 0;
        assert_int_equal(keys_check_mode(path, why, sizeof why), -1);
        assert_int_not_equal(errno, ENOENT);
        assert_has(why, want);
        cfg_errors_init(&e);
        assert_null(keyring_load(path, NULL, &e));
        assert_has(e.text.p, want);
        assert_int_equal(e.count, 1);
        cfg_errors_free(&e);
        assert_int_equal(keys_read_file(path, &text, &len, why, sizeof why), KEYS_READ_REFUSED);
        assert_null(text);
    }
    write_text(path, "{\"version\": 1, \"keys\": []}", 0644);
    assert_int_equal(keys_check_mode(path, why, sizeof why), -1);
    assert_has(why, "(mode 0644)");

    /* private: fine */
    const mode_t good[] = {0600, 0400, 0700};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        write_text(path, "{\"version\": 1, \"keys\": []}", good[i]);
        assert_int_equal(keys_check_mode(path, why, sizeof why), 0);
        cfg_errors_init(&e);
        struct keyring *kr = keyring_load(path, NULL, &e);
        assert_non_null(kr);
        assert_string_equal(kr->path, path);
        assert_int_equal(e.count, 0);
        keyring_unref(kr);
        cfg_errors_free(&e);
        assert_int_equal(keys_read_file(path, &text, &len, why, sizeof why), KEYS_READ_OK);
        assert_string_equal(text, "{\"version\": 1, \"keys\": []}");
        assert_int_equal(len, strlen(text));
        free(text);
    }
    assert_int_equal(chmod(path, 0600), 0);

    /* a folder, and a FIFO */
    char sub[256];
    snprintf(sub, sizeof sub, "%s/dir.json", t->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(keys_check_mode(sub, why, sizeof why), -1);
    assert_has(why, "is a folder");
    cfg_errors_init(&e);
    assert_null(keyring_load(sub, NULL, &e));
    assert_has(e.text.p, "is a folder");
    cfg_errors_free(&e);
    snprintf(sub, sizeof sub, "%s/fifo.json", t->dir);
    assert_int_equal(mkfifo(sub, 0600), 0);
    assert_int_equal(keys_check_mode(sub, why, sizeof why), -1);
    assert_has(why, "not a regular file");
    assert_int_equal(keys_read_file(sub, &text, &len, why, sizeof why), KEYS_READ_REFUSED);

    /* bigger than the limit (a sparse file) */
    snprintf(sub, sizeof sub, "%s/big.json", t->dir);
    write_text(sub, "{", 0600);
    assert_int_equal(truncate(sub, (off_t)KEYS_MAX_FILE_BYTES + 1), 0);
    assert_int_equal(keys_read_file(sub, &text, &len, why, sizeof why), KEYS_READ_REFUSED);
    assert_has(why, "larger than 64 MiB");

    /* a bad file read from disk names the file */
    write_text(path, "{\"version\": 1, \"keys\": [1]}", 0600);
    cfg_errors_init(&e);
    assert_null(keyring_load(path, NULL, &e));
    snprintf(want, sizeof want, "%s: keys[0]: must be an object", path);
    assert_has(e.text.p, want);
    cfg_errors_free(&e);
}

static void test_write_atomic(void **state)
{
    struct tmp *t = *state;
    char path[256], why[128];
    snprintf(path, sizeof path, "%s/keys.json", t->dir);
    struct stat st;

    /* new file */
    assert_int_equal(keys_write_file(path, "one", 3), 0);
    char *got = read_text(path);
    assert_string_equal(got, "one");
    free(got);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(count_entries(t->dir), 1);

    /* replaced: content, mode 0600 even over a 0644 file, a new inode */
    assert_int_equal(chmod(path, 0644), 0);
    ino_t before = st.st_ino;
    const char *text = "{\"version\": 1, \"keys\": []}\n";
    assert_int_equal(keys_write_file(path, text, strlen(text)), 0);
    got = read_text(path);
    assert_string_equal(got, text);
    free(got);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_not_equal(st.st_ino, before);
    assert_int_equal(count_entries(t->dir), 1);
    assert_int_equal(keys_check_mode(path, why, sizeof why), 0);

    /* empty content and a large one */
    assert_int_equal(keys_write_file(path, "", 0), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
    size_t big = 3u << 20;
    char *p = malloc(big);
    assert_non_null(p);
    memset(p, 'x', big);
    assert_int_equal(keys_write_file(path, p, big), 0);
    free(p);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, (off_t)big);
    assert_int_equal(count_entries(t->dir), 1);

    /* the folder does not exist: -1, ENOENT, nothing created anywhere */
    char missing[256];
    snprintf(missing, sizeof missing, "%s/nope/keys.json", t->dir);
    int fd = logs_begin();
    errno = 0;
    assert_int_equal(keys_write_file(missing, "x", 1), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(count_entries(t->dir), 1);

    /* rename fails (a folder is in the way): the temporary file is removed */
    char sub[256];
    snprintf(sub, sizeof sub, "%s/taken", t->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    char inner[300];
    snprintf(inner, sizeof inner, "%s/x", sub);
    assert_int_equal(mkdir(inner, 0700), 0);
    errno = 0;
    assert_int_equal(keys_write_file(sub, "x", 1), -1);
    assert_true(errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST);
    assert_int_equal(count_entries(t->dir), 2);
    assert_int_equal(stat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* a name ending in '/' names no file */
    snprintf(missing, sizeof missing, "%s/", t->dir);
    assert_int_equal(keys_write_file(missing, "x", 1), -1);
    assert_int_equal(count_entries(t->dir), 2);

    /* each failure was logged, naming the file */
    char *logged = logs_end(fd);
    assert_has(logged, "error: cannot create a temporary file next to ");
    assert_has(logged, "/nope/keys.json: No such file or directory");
    assert_has(logged, "error: cannot rename into place ");
    assert_has(logged, "Is a directory");
    free(logged);

    /* a relative path writes in the current folder */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(t->dir), 0);
    assert_int_equal(keys_write_file("rel.json", "r", 1), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(count_entries(t->dir), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_hash_known),
        cmocka_unit_test(test_verify_ok_wrong),
        cmocka_unit_test(test_verify_malformed),
        cmocka_unit_test(test_verify_unknown),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_disabled_revoked),
        cmocka_unit_test(test_find_and_fields),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_every_problem),
        cmocka_unit_test(test_duplicates_and_unknown),
        cmocka_unit_test(test_top_level),
        cmocka_unit_test_setup_teardown(test_modes, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_write_atomic, setup_dir, teardown_dir),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
