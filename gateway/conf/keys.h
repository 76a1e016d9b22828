/*
 * keys: API keys as every request meets them: the keyring (the records of
 * the keys file, loaded), checking the key a client presents, a key's model
 * scopes, and making new secrets (DESIGN.md "Keys file"). Reading, writing
 * and locking the file itself is keysfile.h.
 *
 * A secret is "og-<id>-<secret>": <id> is KEY_ID_LEN characters of
 * [a-z0-9] (public: it names the key in logs, `key list` and messages) and
 * <secret> is 32 random bytes from libsodium in unpadded base64url (43
 * characters). Only BLAKE2b-256 (crypto_generichash) of the whole secret
 * string is stored: API keys are high-entropy random tokens, so a fast hash
 * is right and a slow password hash would only cost CPU on every request.
 *
 * keyring_verify() runs on every request: it parses the token in place,
 * finds the id by binary search over the records (sorted by id at load),
 * hashes the token once (BLAKE2b, well under a microsecond for 59 bytes) and
 * compares in constant time. It allocates nothing and takes no lock.
 *
 * Ownership and threads: a struct keyring is immutable once loaded and
 * reference-counted (atomic), like struct cfg; any thread may verify against
 * it, take or drop a reference. Every pointer in it lives as long as it: all
 * of it is in one arena (keysfile.c builds it), freed with the last
 * reference.
 */
#ifndef GATEWAY_KEYS_H
#define GATEWAY_KEYS_H

#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_ID_LEN 12
#define KEY_HASH_LEN crypto_generichash_BYTES /* 32 */
/* "og-" + id + "-" + 43 base64url characters, and the terminating NUL. */
#define KEY_SECRET_LEN (3 + KEY_ID_LEN + 1 + 43)
#define KEY_SECRET_SIZE (KEY_SECRET_LEN + 1)

struct key {
    char id[KEY_ID_LEN + 1];
    const char *name;
    unsigned char hash[KEY_HASH_LEN];
    const char *const *models; /* globs; NULL (and nmodels 0) = every model */
    size_t nmodels;
    unsigned rpm, tpm, max_inflight; /* 0 = no limit */
    int64_t expires;                 /* Unix seconds when it stops working; 0 = never */
    int64_t created;                 /* Unix seconds */
    int64_t revoked;                 /* Unix seconds; 0 = not revoked */
    bool disabled;
    bool admin;
};

struct keyring {
    atomic_uint refs;
    const char *path;    /* as given to keyring_load */
    const struct key *v; /* sorted by id (strcmp) */
    size_t n;
    void *priv; /* the struct arena that holds everything above; freed with the keyring */
};

/* Is s[0..n) a key id: KEY_ID_LEN characters of [a-z0-9]? */
bool keys_is_id(const char *s, size_t n);

/* An empty keyring (no key is valid), for auth "none" and tests. */
struct keyring *keyring_empty(void);
struct keyring *keyring_ref(struct keyring *k);
void keyring_unref(struct keyring *k);

enum key_verdict {
    KEY_OK,
    KEY_MALFORMED, /* not og-<id>-<secret> at all */
    KEY_UNKNOWN,   /* well formed, no key with that id */
    KEY_WRONG,     /* the id exists, the secret does not match */
    KEY_EXPIRED,
    KEY_DISABLED,
    KEY_REVOKED,
};

/*
 * Check the secret token[0..len) a client presented, at Unix time now_s.
 * The hash comparison is constant-time (sodium_memcmp). *out is set to the
 * record whenever the id exists (also for EXPIRED/DISABLED/REVOKED/WRONG, so
 * that messages and logs can name the id), else NULL. A revoked key reports
 * KEY_REVOKED, a disabled one KEY_DISABLED, an expired one KEY_EXPIRED, each
 * only when the secret matched (otherwise KEY_WRONG).
 */
enum key_verdict keyring_verify(const struct keyring *kr, const char *token, size_t len,
                                int64_t now_s, const struct key **out);

/* The record with this id, or NULL. */
const struct key *keyring_find(const struct keyring *kr, const char *id);

/* May key k use the client-facing model name? (glob_match over k->models) */
bool key_allows_model(const struct key *k, const char *model);

/* A short, static description of a verdict for messages: "is not valid",
 * "has expired", "is disabled", "has been revoked", ... */
const char *key_verdict_text(enum key_verdict v);

/*
 * A new secret: id (KEY_ID_LEN+1 bytes), the secret string (KEY_SECRET_SIZE
 * bytes) and its hash. Random bytes from libsodium's randombytes_buf.
 */
void key_generate(char *id, char *secret, unsigned char hash[KEY_HASH_LEN]);
/* BLAKE2b-256 of s[0..len). */
void key_hash(const char *s, size_t len, unsigned char hash[KEY_HASH_LEN]);

#endif
