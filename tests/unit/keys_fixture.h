/*
 * What the unit tests of the keyring and keys file (conf/test_keys.c) and of
 * the key commands (cli/test_keycmd.c) share: well-formed secrets and
 * records, loading a keys file from text, a temporary folder per test, file
 * reading and writing, and capturing the log. static inline, so a test file
 * that does not use one pays nothing for it. Include after <cmocka.h>.
 */
#ifndef GATEWAY_TEST_KEYS_FIXTURE_H
#define GATEWAY_TEST_KEYS_FIXTURE_H

#include "buf.h"
#include "config.h"
#include "keys.h"
#include "keysfile.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ID_A "aaaaaaaaaaa1"
#define ID_B "bbbbbbbbbbb2"
#define ID_C "ccccccccccc3"

/* "og-<id>-" and 43 copies of fill: a well-formed secret. */
static inline void token(char out[KEY_SECRET_SIZE], const char *id, char fill)
{
    snprintf(out, KEY_SECRET_SIZE, "og-%s-", id);
    memset(out + 16, fill, 43);
    out[KEY_SECRET_LEN] = '\0';
}

/* One record for the secret tok, with extra fields (", \"rpm\": 1" ...). */
static inline void record(struct buf *b, const char *id, const char *name, const char *tok,
                          const char *extra)
{
    unsigned char h[KEY_HASH_LEN];
    char hex[2 * KEY_HASH_LEN + 1];
    key_hash(tok, strlen(tok), h);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    if (b->len && b->p[b->len - 1] == '}')
        buf_puts(b, ",\n");
    buf_printf(b, "{\"id\": \"%s\", \"name\": \"%s\", \"hash\": \"blake2b:%s\"%s}", id, name, hex,
               extra ? extra : "");
}

static inline struct keyring *load_text(const char *text, struct cfg_errors *e)
{
    cfg_errors_init(e);
    return keyring_load_buffer(text, strlen(text), "k.json", e);
}

/* {"version": 1, "keys": [records]}: must load. */
static inline struct keyring *load_records(const struct buf *records)
{
    struct buf t;
    buf_init(&t, 1u << 20);
    buf_printf(&t, "{\"version\": 1, \"keys\": [%s]}", records->p ? records->p : "");
    struct cfg_errors e;
    struct keyring *kr = load_text(t.p, &e);
    if (!kr)
        fail_msg("unexpected errors:\n%s", e.text.p ? e.text.p : "");
    assert_int_equal(e.count, 0);
    cfg_errors_free(&e);
    buf_free(&t);
    return kr;
}

static inline void assert_has(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle))
        fail_msg("missing \"%s\" in:\n%s", needle, hay ? hay : "(nothing)");
}

/* Expect text to be refused; returns the errors (caller frees). */
static inline void load_bad(const char *text, struct cfg_errors *e)
{
    struct keyring *kr = load_text(text, e);
    if (kr) {
        keyring_unref(kr);
        fail_msg("expected errors for: %s", text);
    }
    assert_true(e->count > 0);
    assert_non_null(e->text.p);
}

static inline void expect_error(const char *text, const char *needle)
{
    struct cfg_errors e;
    load_bad(text, &e);
    assert_has(e.text.p, needle);
    cfg_errors_free(&e);
}

static inline enum key_verdict verify(const struct keyring *kr, const char *tok, int64_t now)
{
    const struct key *k;
    return keyring_verify(kr, tok, strlen(tok), now, &k);
}

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Per-test folder under /tmp. */
struct tmp {
    char dir[64];
};

static inline int setup_dir(void **state)
{
    struct tmp *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    snprintf(t->dir, sizeof t->dir, "/tmp/test_keys.XXXXXX");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static inline int teardown_dir(void **state)
{
    struct tmp *t = *state;
    nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
    return 0;
}

static inline void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static inline char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    struct buf b;
    buf_init(&b, 1u << 24);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    if (!b.p)
        buf_append(&b, "", 0);
    return buf_detach(&b, &n);
}

/* Entries in dir other than . and .. */
static inline size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Diagnostics (log.h) go to a temporary file until logs_end(), which
 * returns what was logged (caller frees). */
static inline int logs_begin(void)
{
    char name[] = "/tmp/test_keys.log.XXXXXX";
    int fd = mkstemp(name);
    assert_true(fd >= 0);
    unlink(name);
    log_set_fd(fd);
    return fd;
}

static inline char *logs_end(int fd)
{
    log_set_fd(2);
    struct buf b;
    buf_init(&b, 1u << 20);
    buf_append(&b, "", 0);
    lseek(fd, 0, SEEK_SET);
    char chunk[1024];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        buf_append(&b, chunk, (size_t)n);
    close(fd);
    size_t len;
    return buf_detach(&b, &len);
}

/* ---- secrets, hashes, verification ---- */

static inline bool is_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

#endif
