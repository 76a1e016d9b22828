/*
 * keys: API keys. The keys file, its records, and checking a key a client
 * presents (DESIGN.md "Keys file").
 *
 * A secret is "og-<id>-<secret>": <id> is KEY_ID_LEN characters of
 * [a-z0-9] (public: it names the key in logs, `key list` and messages) and
 * <secret> is 32 random bytes from libsodium in unpadded base64url (43
 * characters). Only BLAKE2b-256 (crypto_generichash) of the whole secret
 * string is stored: API keys are high-entropy random tokens, so a fast hash
 * is right and a slow password hash would only cost CPU on every request.
 *
 * The keys file is JSON, {"version": 1, "keys": [record, ...]}, written only
 * by `ollama-gateway key ...` (keycmd.c) through keys_write_file(): a
 * temporary file in the same folder, fsync, rename, fsync of the folder;
 * mode 0600. keyring_load() refuses a file that is group- or world-readable
 * (or not a regular file) and says how to fix it.
 *
 * Record fields: "id", "name", "hash" ("blake2b:" + 64 hex digits),
 * "models" (array of globs over client-facing names; absent = every model),
 * "rpm", "tpm", "max_inflight" (absent or 0 = no limit), "expires"
 * ("YYYY-MM-DD": the key works until the end of that day, UTC), "disabled"
 * (bool), "revoked" (ISO-8601 UTC time it was revoked), "admin" (bool),
 * "created" (ISO-8601 UTC). Unknown fields are an error.
 *
 * Ownership and threads: a struct keyring is immutable once loaded and
 * reference-counted (atomic), like struct cfg; any thread may verify against
 * it, take or drop a reference. Every pointer in it lives as long as it.
 */
#ifndef GATEWAY_KEYS_H
#define GATEWAY_KEYS_H

#include "config.h"

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
/* At most this many records in a keys file. */
#define KEYS_MAX 100000
/* Largest keys file accepted. */
#define KEYS_MAX_FILE_BYTES (64u << 20)

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
    void *priv; /* keys.c's allocations */
};

/*
 * Load and check the keys file at path. Returns a keyring holding one
 * reference, or NULL after reporting every problem to errs (or log_error()
 * when errs is NULL), each as "PATH: keys[N].field: what is wrong; how to
 * fix it". A missing file is a problem whose message says how to create a
 * key (`ollama-gateway key create NAME -c CONFIG`; config_path names the
 * configuration in that hint, may be NULL).
 */
/* Is s[0..n) a key id: KEY_ID_LEN characters of [a-z0-9]? */
bool keys_is_id(const char *s, size_t n);

struct keyring *keyring_load(const char *path, const char *config_path, struct cfg_errors *errs);
/*
 * The same checks on text[0..len) (need not be '\0'-terminated), named
 * `name` in messages and as the keyring's path. Never reads a file: for
 * `key` commands, which check what they are about to write, and the fuzzer.
 */
struct keyring *keyring_load_buffer(const char *text, size_t len, const char *name,
                                    struct cfg_errors *errs);
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

/*
 * Replace the file at path with text[0..len) atomically: write a temporary
 * file (mode 0600) in the same folder, fsync it, rename it over path, fsync
 * the folder. Returns 0, or -1 with errno set and a message logged; path is
 * then untouched.
 */
int keys_write_file(const char *path, const char *text, size_t len);

/*
 * Is the file at path safe to read keys from? 0 when it is a regular file
 * with no group or world permission bits; else -1 with why[] saying what is
 * wrong and how to fix it ("chmod 600 PATH"). errno ENOENT when missing.
 */
int keys_check_mode(const char *path, char *why, size_t whysize);

/*
 * Read the keys file whole, checking on the open file what keys_check_mode()
 * checks, and the size (KEYS_MAX_FILE_BYTES). On KEYS_READ_OK *text is a
 * malloc'd, '\0'-terminated copy (caller frees) of *len bytes; otherwise
 * *text is NULL and why[] says what is wrong, without the path in front.
 */
enum keys_read {
    KEYS_READ_OK,
    KEYS_READ_MISSING, /* no such file */
    KEYS_READ_REFUSED, /* not a regular file, group/world permissions, too big: fixable */
    KEYS_READ_FAILED,  /* an I/O error (errno set) */
};
enum keys_read keys_read_file(const char *path, char **text, size_t *len, char *why,
                              size_t whysize);

/*
 * "YYYY-MM-DD" (a real date, year 1970..9999) as the Unix second at which
 * that day ends in UTC: the key works until 23:59:59 of it. 0, or -1 when s
 * is not such a date.
 */
int keys_parse_day(const char *s, int64_t *end);

#endif
