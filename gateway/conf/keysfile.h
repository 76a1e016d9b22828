/*
 * keysfile: the keys file on disk (DESIGN.md "Keys file"): reading it into a
 * keyring (keys.h), refusing one that others may read, replacing it
 * atomically, and the lock that serialises the `key` commands that edit it.
 *
 * The file is JSON, {"version": 1, "keys": [record, ...]}, written only by
 * `ollama-gateway key ...` (keycmd.c) through keys_write_file(): a
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
 * The file is read through the same reader (jsonfile.h) and table walker
 * (walker.h) as gateway.json, in the keys file's own words: it is written
 * by the gateway, so a problem names the JSON path ("keys[2].rpm") and how
 * to recover, not a line.
 *
 * Threads: any thread may load (the reload thread does, so does `key`);
 * nothing here keeps state. What a load returns is the caller's.
 */
#ifndef GATEWAY_KEYSFILE_H
#define GATEWAY_KEYSFILE_H

#include "config.h"
#include "keys.h"

#include <stddef.h>
#include <stdint.h>

/* At most this many records in a keys file. */
#define KEYS_MAX 100000
/* Largest keys file accepted. */
#define KEYS_MAX_FILE_BYTES (64u << 20)

/*
 * Load and check the keys file at path. Returns a keyring holding one
 * reference, or NULL after reporting every problem to errs (or log_error()
 * when errs is NULL), each as "PATH: keys[N].field: what is wrong; how to
 * fix it". A missing file is a problem whose message says how to create a
 * key (`ollama-gateway key create NAME -c CONFIG`; config_path names the
 * configuration in that hint, may be NULL).
 */
struct keyring *keyring_load(const char *path, const char *config_path, struct cfg_errors *errs);
/*
 * The same checks on text[0..len) (need not be '\0'-terminated), named
 * `name` in messages and as the keyring's path. Never reads a file: for
 * `key` commands, which check what they are about to write, and the fuzzer.
 */
struct keyring *keyring_load_buffer(const char *text, size_t len, const char *name,
                                    struct cfg_errors *errs);

/*
 * Replace the file at path with text[0..len) atomically: write a temporary
 * file (mode 0600) in the same folder, fsync it, rename it over path, fsync
 * the folder. Returns 0, or -1 with errno set and a message logged; path is
 * then untouched.
 */
int keys_write_file(const char *path, const char *text, size_t len);

/*
 * Serialise with the other writers of the keys file at path: an exclusive
 * flock(2) on "PATH.lock" beside it (never on the keys file itself, which
 * keys_write_file() replaces). Waits for the lock. Returns the descriptor
 * that holds it (closing it releases the lock; the lock file stays, since
 * deleting it would open a race), or -1 with why[] saying what failed.
 */
int keys_lock(const char *path, char *why, size_t whysize);

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
