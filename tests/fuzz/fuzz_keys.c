/*
 * libFuzzer target for the keys file and for the key a client presents:
 * arbitrary bytes go through keyring_load_buffer() (cJSON, every record
 * check, duplicate ids, error formatting), a keyring that loads is queried
 * the way requests would, and the same bytes are presented as a token to
 * keyring_verify() against a fixed keyring.
 *
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Igateway \
 *       tests/fuzz/fuzz_keys.c gateway/keys.c gateway/config.c gateway/router.c \
 *       gateway/log.c gateway/buf.c -lcjson -lsodium
 *   ./a.out -dict=tests/fuzz/keys.dict tests/fuzz/corpus/keys
 */
#include "fuzz.h"
#include "keys.h"
#include "keysfile.h"
#include "log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* One key, ID_A with secret SECRET_A, to present tokens to. */
#define ID_A "fuzzfuzzfuzz"
#define SECRET_A "og-" ID_A "-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
static struct keyring *fixed;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    /* keyring_load_buffer(..., NULL) logs: keep the fuzzer's output readable */
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull >= 0)
        log_set_fd(devnull);
    unsigned char h[KEY_HASH_LEN];
    char hex[2 * KEY_HASH_LEN + 1], text[512];
    key_hash(SECRET_A, strlen(SECRET_A), h);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(text, sizeof text,
             "{\"version\": 1, \"keys\": [{\"id\": \"" ID_A "\", \"name\": \"f\", "
             "\"hash\": \"blake2b:%s\", \"models\": [\"llama3*\"], \"expires\": \"2100-01-01\"}]}",
             hex);
    fixed = keyring_load_buffer(text, strlen(text), "fixed.json", NULL);
    CHECK(fixed && fixed->n == 1);
    const struct key *k;
    CHECK(keyring_verify(fixed, SECRET_A, strlen(SECRET_A), 0, &k) == KEY_OK);
    return 0;
}

static bool well_formed(const char *t, size_t n)
{
    if (n != KEY_SECRET_LEN || memcmp(t, "og-", 3) != 0 || t[15] != '-')
        return false;
    for (size_t i = 3; i < 15; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9')))
            return false;
    for (size_t i = 16; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
              (t[i] >= '0' && t[i] <= '9') || t[i] == '-' || t[i] == '_'))
            return false;
    return true;
}

static void check_loaded(const struct keyring *kr)
{
    char tok[KEY_SECRET_SIZE];
    for (size_t i = 0; i < kr->n; i++) {
        const struct key *k = &kr->v[i];
        /* sorted, unique, and found by id */
        if (i > 0)
            CHECK(strcmp(kr->v[i - 1].id, k->id) < 0);
        CHECK(strlen(k->id) == KEY_ID_LEN);
        CHECK(keyring_find(kr, k->id) == k);
        CHECK(k->name && *k->name && strlen(k->name) <= 128);
        CHECK((k->models == NULL) == (k->nmodels == 0));
        for (size_t m = 0; m < k->nmodels; m++)
            CHECK(k->models[m] && *k->models[m]);
        (void)key_allows_model(k, "llama3.2");
        (void)key_allows_model(k, k->name);
        /* a made-up secret for a real id: it can only be wrong */
        snprintf(tok, sizeof tok, "og-%s-", k->id);
        memset(tok + 16, 'Q', KEY_SECRET_LEN - 16);
        tok[KEY_SECRET_LEN] = '\0';
        const struct key *out = NULL;
        CHECK(keyring_verify(kr, tok, KEY_SECRET_LEN, k->expires, &out) == KEY_WRONG);
        CHECK(out == k);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct cfg_errors errs;
    cfg_errors_init(&errs);
    struct keyring *kr = keyring_load_buffer(text, size, "fuzz.json", &errs);
    if (!kr) {
        /* a refusal always says why, one line per problem */
        CHECK(errs.count > 0 && errs.text.p && errs.text.p[errs.text.len - 1] == '\n');
    } else {
        CHECK(errs.count == 0);
        struct keyring *held = keyring_ref(kr);
        check_loaded(kr);
        keyring_unref(held);
        keyring_unref(kr);
    }
    cfg_errors_free(&errs);

    /* the same bytes as a presented key */
    const struct key *k = (const struct key *)1;
    enum key_verdict v = keyring_verify(fixed, text, size, 0, &k);
    if (!well_formed(text, size)) {
        CHECK(v == KEY_MALFORMED && k == NULL);
    } else if (memcmp(text + 3, ID_A, KEY_ID_LEN) != 0) {
        CHECK(v == KEY_UNKNOWN && k == NULL);
    } else {
        CHECK(k == &fixed->v[0]);
        bool same = memcmp(text, SECRET_A, KEY_SECRET_LEN) == 0;
        CHECK(v == (same ? KEY_OK : KEY_WRONG));
        if (same)
            CHECK(keyring_verify(fixed, text, size, INT64_MAX, &k) == KEY_EXPIRED);
    }
    return 0;
}
