/*
 * keys.c: the keyring on the request path (keys.h). The records come from
 * keysfile.c; here they are only looked up, checked and counted.
 */
#include "keys.h"

#include "arena.h"
#include "glob.h"

#include <stdlib.h>
#include <string.h>

bool keys_is_id(const char *s, size_t n)
{
    if (n != KEY_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static void keyring_free(struct keyring *k)
{
    if (!k)
        return;
    arena_free(k->priv);
    free(k);
}

struct keyring *keyring_empty(void)
{
    struct keyring *kr = calloc(1, sizeof *kr);
    if (kr)
        atomic_init(&kr->refs, 1);
    return kr;
}

struct keyring *keyring_ref(struct keyring *k)
{
    if (k)
        atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void keyring_unref(struct keyring *k)
{
    if (k && atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) == 1)
        keyring_free(k);
}

/* ---- checking a key ---- */

/* The record whose id is id[0..KEY_ID_LEN), or NULL. */
static const struct key *find(const struct keyring *kr, const char *id)
{
    size_t lo = 0, hi = kr ? kr->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(id, kr->v[mid].id, KEY_ID_LEN);
        if (c == 0)
            return &kr->v[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const struct key *keyring_find(const struct keyring *kr, const char *id)
{
    if (!id || !keys_is_id(id, strlen(id)))
        return NULL;
    return find(kr, id);
}

static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

enum key_verdict keyring_verify(const struct keyring *kr, const char *token, size_t len,
                                int64_t now_s, const struct key **out)
{
    const struct key *unused;
    if (!out)
        out = &unused;
    *out = NULL;
    if (!token || len != KEY_SECRET_LEN || memcmp(token, "og-", 3) != 0 ||
        !keys_is_id(token + 3, KEY_ID_LEN) || token[3 + KEY_ID_LEN] != '-')
        return KEY_MALFORMED;
    for (size_t i = 3 + KEY_ID_LEN + 1; i < len; i++)
        if (!is_b64url(token[i]))
            return KEY_MALFORMED;
    const struct key *k = find(kr, token + 3);
    if (!k)
        return KEY_UNKNOWN;
    *out = k;
    unsigned char h[KEY_HASH_LEN];
    key_hash(token, len, h);
    /* Only a caller who holds the secret learns the key's state. */
    if (sodium_memcmp(h, k->hash, KEY_HASH_LEN) != 0)
        return KEY_WRONG;
    if (k->revoked)
        return KEY_REVOKED;
    if (k->disabled)
        return KEY_DISABLED;
    if (k->expires && now_s >= k->expires)
        return KEY_EXPIRED;
    return KEY_OK;
}

bool key_allows_model(const struct key *k, const char *model)
{
    if (!k)
        return false;
    if (!k->models)
        return true;
    if (!model)
        return false;
    for (size_t i = 0; i < k->nmodels; i++)
        if (glob_match(k->models[i], model))
            return true;
    return false;
}

const char *key_verdict_text(enum key_verdict v)
{
    switch (v) {
    case KEY_OK:
        return "is valid";
    case KEY_MALFORMED:
        return "is not an API key of this gateway (og-<id>-<secret>)";
    case KEY_UNKNOWN:
        return "is not known";
    case KEY_WRONG:
        return "is not valid";
    case KEY_EXPIRED:
        return "has expired";
    case KEY_DISABLED:
        return "is disabled";
    case KEY_REVOKED:
        return "has been revoked";
    }
    return "is not valid";
}

/* ---- making keys ---- */

void key_hash(const char *s, size_t len, unsigned char hash[KEY_HASH_LEN])
{
    crypto_generichash(hash, KEY_HASH_LEN, (const unsigned char *)s, len, NULL, 0);
}

void key_generate(char *id, char *secret, unsigned char hash[KEY_HASH_LEN])
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    /* randombytes_uniform() draws without modulo bias. */
    for (size_t i = 0; i < KEY_ID_LEN; i++)
        id[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
    id[KEY_ID_LEN] = '\0';

    unsigned char raw[32];
    char b64[sodium_base64_ENCODED_LEN(sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    _Static_assert(sizeof b64 == 43 + 1, "43 base64url characters for 32 bytes");
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);

    memcpy(secret, "og-", 3);
    memcpy(secret + 3, id, KEY_ID_LEN);
    secret[3 + KEY_ID_LEN] = '-';
    memcpy(secret + 3 + KEY_ID_LEN + 1, b64, 43);
    secret[KEY_SECRET_LEN] = '\0';
    sodium_memzero(b64, sizeof b64);
    key_hash(secret, KEY_SECRET_LEN, hash);
}
