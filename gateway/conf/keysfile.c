/*
 * keysfile.c: the keys file. A load reads the text through jsonfile.c and
 * walks it with walker.c against the two tables below (the top level and a
 * record), so every field of every record is checked and every problem
 * collected before deciding; a keyring is only built from a file with
 * none. Everything a keyring points to lives in one arena that dies with
 * its last reference (keys.c).
 */
#include "keysfile.h"

#include "arena.h"
#include "diag.h"
#include "fileio.h"
#include "jsonfile.h"
#include "num.h"
#include "walker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HASH_PREFIX "blake2b:"
#define HASH_PREFIX_LEN (sizeof HASH_PREFIX - 1)
#define NAME_MAX_BYTES 128
#define MODEL_MAX_BYTES 512
#define MODELS_MAX 1000
/* A number macro as a string literal, for messages. */
#define TEXT_(n) #n
#define TEXT(n) TEXT_(n)

/* The keys file is written by the gateway: no comments; a syntax error is
 * damage, not a slip; a problem is found by its JSON path; nothing but
 * plain white space may follow the object. */
static const struct jf_kind keys_json = {
    .terse = true,
    .strict_end = true,
    .empty = "is empty: it must hold {\"version\": 1, \"keys\": []}; create keys with "
             "ollama-gateway key create",
    .fix = "; restore the file from a backup or correct it",
    .fix_after = "; remove it",
};

/* ---- dates and times ---- */

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* "YYYY-MM-DD" at s[0..10) into y, m, d; a real date from 1970 on. */
static bool parse_date(const char *s, int *y, int *m, int *d)
{
    if (!num_all_digits(s, 4) || s[4] != '-' || !num_all_digits(s + 5, 2) || s[7] != '-' ||
        !num_all_digits(s + 8, 2))
        return false;
    *y = num(s, 4);
    *m = num(s + 5, 2);
    *d = num(s + 8, 2);
    return *y >= 1970 && *m >= 1 && *m <= 12 && *d >= 1 && *d <= days_in_month(*y, *m);
}

int keys_parse_day(const char *s, int64_t *end)
{
    int y, m, d;
    if (!s || strlen(s) != 10 || !parse_date(s, &y, &m, &d))
        return -1;
    /* The start of the next day: timegm() carries day 32 into the next month. */
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d + 1};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *end = (int64_t)t;
    return 0;
}

/* "YYYY-MM-DDTHH:MM:SSZ" (UTC) as Unix seconds. */
static int parse_time(const char *s, int64_t *out)
{
    int y, mo, d;
    if (strlen(s) != 20 || !parse_date(s, &y, &mo, &d) || s[10] != 'T' ||
        !num_all_digits(s + 11, 2) || s[13] != ':' || !num_all_digits(s + 14, 2) || s[16] != ':' ||
        !num_all_digits(s + 17, 2) || s[19] != 'Z')
        return -1;
    int h = num(s + 11, 2), mi = num(s + 14, 2), sec = num(s + 17, 2);
    if (h > 23 || mi > 59 || sec > 60) /* 60: a leap second */
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (int64_t)t;
    return 0;
}

/* ---- record fields ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase too: the file holds one spelling of each hash */
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* "\"S\" is not WHAT": a field whose text is not of its form. */
static void not_a(struct walk *w, const cJSON *v, const char *path, const char *s, const char *what)
{
    char d[DIAG_SHOWBUF];
    jf_error(w->jf, v, path, "%s is not %s", diag_show(d, sizeof d, s), what);
}

static void set_id(struct walk *w, const cJSON *v, const char *path, void *base,
                   const struct walk_key *k)
{
    (void)k;
    const char *s = walk_string(w, v, path, "12 characters a-z 0-9");
    if (!s)
        return;
    if (keys_is_id(s, strlen(s)))
        memcpy(((struct key *)base)->id, s, KEY_ID_LEN + 1);
    else
        not_a(w, v, path, s,
              "a key id (12 characters a-z 0-9, the part after \"og-\" in the secret); ids are "
              "made by ollama-gateway key create: restore the record or remove it");
}

static void set_name(struct walk *w, const cJSON *v, const char *path, void *base,
                     const struct walk_key *k)
{
    (void)k;
    const char *s = walk_string(w, v, path, "a label for people");
    if (!s)
        return;
    if (!*s)
        jf_error(w->jf, v, path, "is empty; give the key a name, like \"ci\" or \"alice laptop\"");
    else if (strlen(s) > NAME_MAX_BYTES)
        jf_error(w->jf, v, path, "is longer than %d bytes; shorten it", NAME_MAX_BYTES);
    else if (has_control(s))
        jf_error(w->jf, v, path, "contains control characters; remove them");
    else
        ((struct key *)base)->name = walk_strdup(w, s);
}

static void set_hash(struct walk *w, const cJSON *v, const char *path, void *base,
                     const struct walk_key *k)
{
    (void)k;
    struct key *rec = base;
    const char *s = walk_string(w, v, path, "\"blake2b:\" and 64 hex digits");
    if (!s)
        return;
    bool ok = strlen(s) == HASH_PREFIX_LEN + 2 * KEY_HASH_LEN &&
              memcmp(s, HASH_PREFIX, HASH_PREFIX_LEN) == 0;
    for (size_t i = 0; ok && i < KEY_HASH_LEN; i++) {
        int hi = hexval(s[HASH_PREFIX_LEN + 2 * i]);
        int lo = hexval(s[HASH_PREFIX_LEN + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            ok = false;
        else
            rec->hash[i] = (unsigned char)(hi << 4 | lo);
    }
    if (!ok)
        not_a(w, v, path, s,
              "\"blake2b:\" followed by 64 lowercase hex digits; hashes are written by "
              "ollama-gateway key create: restore the record from a backup, or remove it and "
              "create a new key");
}

static void set_models(struct walk *w, const cJSON *v, const char *path, void *base,
                       const struct walk_key *k)
{
    (void)k;
    struct key *rec = base;
    char ipath[WALK_PATH_MAX];
    if (!cJSON_IsArray(v)) {
        jf_mismatch(w->jf, v, path,
                    "an array of model names or globs, like [\"llama3*\", \"qwen2.5:14b\"]",
                    "; remove the field to allow every model");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0) {
        jf_error(w->jf, v, path,
                 "is empty, so the key could use no model at all; list model globs, or remove "
                 "the field to allow every model");
        return;
    }
    if (n > MODELS_MAX) {
        jf_error(w->jf, v, path,
                 "lists %zu models; at most %d are allowed: use globs like \"llama3*\"", n,
                 MODELS_MAX);
        return;
    }
    const char **models = walk_alloc_array(w, n, sizeof *models);
    if (!models)
        return;
    bool ok = true;
    size_t i = 0;
    for (const cJSON *m = v->child; m; m = m->next, i++) {
        diag_path_index(ipath, sizeof ipath, path, i);
        if (!cJSON_IsString(m) || !m->valuestring) {
            jf_mismatch(w->jf, m, ipath, "a model name or glob (a string)", "");
            ok = false;
        } else if (!*m->valuestring) {
            jf_error(w->jf, m, ipath,
                     "is empty; give a model name or a glob like \"llama3*\", or remove it");
            ok = false;
        } else if (strlen(m->valuestring) > MODEL_MAX_BYTES || has_control(m->valuestring)) {
            not_a(w, m, ipath, m->valuestring,
                  "a model name (longer than " TEXT(
                      MODEL_MAX_BYTES) " bytes, or control characters); "
                                       "correct it");
            ok = false;
        } else if (ok) {
            models[i] = walk_strdup(w, m->valuestring);
        }
    }
    if (ok) {
        rec->models = models;
        rec->nmodels = n;
    }
}

static void set_expires(struct walk *w, const cJSON *v, const char *path, void *base,
                        const struct walk_key *k)
{
    (void)k;
    const char *s = walk_string(w, v, path, "a date like \"2025-12-31\"");
    if (s && keys_parse_day(s, &((struct key *)base)->expires) < 0)
        not_a(w, v, path, s,
              "a date YYYY-MM-DD (like \"2025-12-31\"; the key works until the end of that day, "
              "UTC); correct it, or remove the field for a key that never expires");
}

/* A UTC time, stored as Unix seconds (int64_t) at k->off. */
static void set_time(struct walk *w, const cJSON *v, const char *path, void *base,
                     const struct walk_key *k)
{
    int64_t t;
    const char *s = walk_string(w, v, path, "a UTC time like \"2025-01-31T12:00:00Z\"");
    if (!s)
        return;
    if (parse_time(s, &t) < 0)
        not_a(w, v, path, s,
              "a UTC time YYYY-MM-DDTHH:MM:SSZ (like \"2025-01-31T12:00:00Z\"); correct it");
    else
        memcpy((char *)base + k->off, &t, sizeof t);
}

static void set_revoked(struct walk *w, const cJSON *v, const char *path, void *base,
                        const struct walk_key *k)
{
    struct key *rec = base;
    set_time(w, v, path, base, k);
    /* 0 means "not revoked": a key revoked at the epoch stays revoked. */
    if (rec->revoked == 0)
        rec->revoked = 1;
}

#define LIMIT(n, f)                                                                                \
    .name = n, .fn = walk_set_uint, .off = offsetof(struct key, f), .width = sizeof(unsigned),     \
    .max = 1000000000, .means = "(0 or absent = no limit)",                                        \
    .fix = "; correct it or remove the field"

#define RECORD_NEEDS                                                                               \
    "every record needs id, name and hash (ollama-gateway key create writes them): restore the "   \
    "record from a backup or remove it"

static const struct walk_key record_keys[] = {
    {.name = "id", .fn = set_id, .required = RECORD_NEEDS},
    {.name = "name", .fn = set_name, .required = RECORD_NEEDS},
    {.name = "hash", .fn = set_hash, .required = RECORD_NEEDS},
    {.name = "models", .fn = set_models},
    {LIMIT("rpm", rpm)},
    {LIMIT("tpm", tpm)},
    {LIMIT("max_inflight", max_inflight)},
    {.name = "expires", .fn = set_expires},
    {.name = "disabled", .fn = walk_set_bool, .off = offsetof(struct key, disabled)},
    {.name = "revoked", .fn = set_revoked, .off = offsetof(struct key, revoked)},
    {.name = "admin", .fn = walk_set_bool, .off = offsetof(struct key, admin)},
    {.name = "created", .fn = set_time, .off = offsetof(struct key, created)},
};

static const struct walk_words record_words = {
    .twice = "appears twice in this record; keep one",
    .unknown = "a record has id, name, hash, models, rpm, tpm, max_inflight, expires, disabled, "
               "revoked, admin and created: remove it",
    .guess = true,
};

static const struct walk_table record_table = {
    .keys = record_keys,
    .n = sizeof record_keys / sizeof record_keys[0],
    .words = &record_words,
};

/* ---- the top level: {"version": 1, "keys": [...]} ---- */

struct top {
    const cJSON *keys; /* the records, when "keys" is an array */
};

static void set_version(struct walk *w, const cJSON *v, const char *path, void *base,
                        const struct walk_key *k)
{
    (void)base;
    (void)k;
    char d[DIAG_SHOWBUF];
    if (!cJSON_IsNumber(v) || v->valuedouble != 1)
        jf_error(w->jf, v, path,
                 "is %s, but this gateway reads version 1 keys files; was it written by a "
                 "newer ollama-gateway?",
                 jf_describe(w->jf, v, d, sizeof d));
}

static void set_records(struct walk *w, const cJSON *v, const char *path, void *base,
                        const struct walk_key *k)
{
    (void)k;
    if (!cJSON_IsArray(v))
        jf_mismatch(w->jf, v, path, "an array of key records [...]", "");
    else
        ((struct top *)base)->keys = v;
}

static const struct walk_key top_keys[] = {
    {.name = "version", .fn = set_version, .required = "add \"version\": 1"},
    {.name = "keys",
     .fn = set_records,
     .required = "add \"keys\": [] (then create keys with ollama-gateway key create)"},
};

static const struct walk_words top_words = {
    .twice = "appears twice; keep one",
    .unknown = "a keys file holds only \"version\" and \"keys\": remove it",
};

static const struct walk_table top_table = {
    .keys = top_keys,
    .n = sizeof top_keys / sizeof top_keys[0],
    .words = &top_words,
};

/* ---- loading ---- */

static int cmp_key(const void *a, const void *b)
{
    return strcmp(((const struct key *)a)->id, ((const struct key *)b)->id);
}

static void id_dup(struct jf *f, const struct walk_name *first, const struct walk_name *again,
                   const void *ud)
{
    (void)ud;
    char path[64];
    snprintf(path, sizeof path, "keys[%zu].id", again->idx);
    jf_error(f, again->item, path,
             "\"%s\" is also the id of keys[%zu]; ids must be unique: remove one of the two "
             "records",
             again->name, first->idx);
}

/* Report every id used twice, at the later record. v[i].id is usable when it
 * is not empty (set_id stores only ids). */
static void check_duplicates(struct jf *f, const struct key *v, size_t n)
{
    struct walk_name *ids = n ? malloc(n * sizeof *ids) : NULL;
    if (n && !ids) {
        f->oom = true;
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].id[0])
            ids[m++] = (struct walk_name){v[i].id, NULL, i};
    walk_dups(f, ids, m, false, id_dup, NULL);
    free(ids);
}

struct keyring *keyring_load_buffer(const char *text, size_t len, const char *name,
                                    struct cfg_errors *errs)
{
    struct jf f;
    struct arena *arena = NULL;
    struct keyring *kr = NULL;
    cJSON *root = NULL;
    jf_init(&f, name ? name : "keys.json", &keys_json);
    struct walk w = {.jf = &f, .arena = &arena};
    if (!text)
        len = 0;

    if (len > KEYS_MAX_FILE_BYTES) {
        jf_error_line(&f, 0, NULL, "is larger than %u MiB; is keys_file the right file?",
                      KEYS_MAX_FILE_BYTES >> 20);
        goto out;
    }
    root = jf_parse(&f, text, len);
    if (!root)
        goto out;
    if (!cJSON_IsObject(root)) {
        char d[DIAG_SHOWBUF];
        jf_error(&f, root, NULL,
                 "must hold one JSON object {\"version\": 1, \"keys\": [...]}, not %s",
                 jf_describe(&f, root, d, sizeof d));
        goto out;
    }

    kr = calloc(1, sizeof *kr);
    if (!kr) {
        f.oom = true;
        goto out;
    }
    atomic_init(&kr->refs, 1);
    kr->path = walk_strdup(&w, f.name);

    struct top top = {0};
    walk_object(&w, root, "", &top_table, &top);
    size_t n = top.keys ? (size_t)cJSON_GetArraySize(top.keys) : 0;
    if (n > KEYS_MAX) {
        jf_error(&f, NULL, "keys", "holds %zu records; at most %d are allowed", n, KEYS_MAX);
        goto out;
    }
    struct key *v = n ? walk_alloc_array(&w, n, sizeof *v) : NULL;
    if (n && !v)
        goto out;
    size_t i = 0;
    for (const cJSON *r = top.keys ? top.keys->child : NULL; r; r = r->next, i++) {
        char path[48];
        diag_path_index(path, sizeof path, "keys", i);
        if (!cJSON_IsObject(r))
            jf_mismatch(&f, r, path, "an object {\"id\": ..., \"name\": ..., \"hash\": ...}",
                        "; remove it");
        else
            walk_object(&w, r, path, &record_table, &v[i]);
    }
    check_duplicates(&f, v, n);
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_key);
    kr->v = v;
    kr->n = n;

out:
    if (jf_failed(&f)) {
        unsigned found = jf_report(&f, errs ? &errs->text : NULL);
        if (errs)
            errs->count += found;
        arena_free(arena);
        free(kr);
        kr = NULL;
    } else {
        kr->priv = arena;
    }
    jf_free(&f);
    cJSON_Delete(root);
    return kr;
}

/* ---- files ---- */

static void set_why(char *why, size_t whysize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whysize, const char *fmt, ...)
{
    if (!why || !whysize)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whysize, fmt, ap);
    va_end(ap);
}

/* Is st a file we may read keys from? 0, or -1 with why[] and errno set. */
static int check_stat(const struct stat *st, const char *path, char *why, size_t whysize)
{
    if (S_ISDIR(st->st_mode)) {
        set_why(why, whysize, "is a folder, not a keys file; point keys_file at a file");
        errno = EISDIR;
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        set_why(why, whysize, "is not a regular file; point keys_file at a file");
        errno = EINVAL;
        return -1;
    }
    if (st->st_mode & 077) {
        set_why(why, whysize,
                "may be read or written by group or others (mode %04o), but it holds the "
                "key hashes; fix it with: chmod 600 %s",
                (unsigned)(st->st_mode & 07777), path);
        errno = EPERM;
        return -1;
    }
    return 0;
}

int keys_check_mode(const char *path, char *why, size_t whysize)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        if (e == ENOENT)
            set_why(why, whysize, "does not exist");
        else
            set_why(why, whysize, "cannot read its status: %s", strerror(e));
        errno = e;
        return -1;
    }
    return check_stat(&st, path, why, whysize);
}

enum keys_read keys_read_file(const char *path, char **text, size_t *len, char *why, size_t whysize)
{
    enum keys_read rc = KEYS_READ_FAILED;
    *text = NULL;
    *len = 0;
    /* O_NONBLOCK: a FIFO put in its place must not hang us; it is refused below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            set_why(why, whysize, "does not exist");
            rc = KEYS_READ_MISSING;
        } else {
            set_why(why, whysize, "cannot open: %s%s", strerror(e),
                    e == EACCES ? " (run the command as the gateway's user, or with sudo)" : "");
        }
        errno = e;
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        set_why(why, whysize, "cannot read its status: %s", strerror(errno));
        goto out;
    }
    /* Checked again on what was opened: the path may have changed since. */
    if (check_stat(&st, path, why, whysize) < 0) {
        rc = KEYS_READ_REFUSED;
        goto out;
    }
    if (fileio_read_all(fd, KEYS_MAX_FILE_BYTES, text, len) < 0) {
        if (errno == EFBIG) {
            set_why(why, whysize, "is larger than %u MiB; is keys_file the right file?",
                    KEYS_MAX_FILE_BYTES >> 20);
            rc = KEYS_READ_REFUSED;
        } else if (errno == ENOMEM) {
            set_why(why, whysize, "out of memory");
        } else {
            set_why(why, whysize, "cannot read: %s", strerror(errno));
        }
        goto out;
    }
    rc = KEYS_READ_OK;
out:;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

struct keyring *keyring_load(const char *path, const char *config_path, struct cfg_errors *errs)
{
    char why[512];
    char *text = NULL;
    size_t len;
    if (keys_check_mode(path, why, sizeof why) < 0) {
        if (errno == ENOENT)
            goto missing;
        cfg_errors_add(errs, "%s: %s", path, why);
        return NULL;
    }
    switch (keys_read_file(path, &text, &len, why, sizeof why)) {
    case KEYS_READ_OK:
        break;
    case KEYS_READ_MISSING:
        goto missing;
    case KEYS_READ_REFUSED:
    case KEYS_READ_FAILED:
        cfg_errors_add(errs, "%s: %s", path, why);
        return NULL;
    }
    struct keyring *kr = keyring_load_buffer(text, len, path, errs);
    free(text);
    return kr;
missing:
    cfg_errors_add(errs, "%s: no keys file; create a key with: ollama-gateway key create NAME%s%s",
                   path, config_path ? " -c " : "", config_path ? config_path : "");
    return NULL;
}

int keys_write_file(const char *path, const char *text, size_t len)
{
    return fileio_replace(path, text, len, 0600);
}

int keys_lock(const char *path, char *why, size_t whysize)
{
    char lock[PATH_MAX];
    int n = snprintf(lock, sizeof lock, "%s.lock", path);
    if (n < 0 || (size_t)n >= sizeof lock) {
        set_why(why, whysize, "%s: the path is too long", path);
        return -1;
    }
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        int e = errno;
        set_why(why, whysize, "cannot open the lock file %s: %s%s", lock, strerror(e),
                e == ENOENT   ? " (does the folder exist? keys_file in the configuration names it)"
                : e == EACCES ? " (run the command as the gateway's user, or with sudo)"
                              : "");
        errno = e;
        return -1;
    }
    while (flock(fd, LOCK_EX) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        set_why(why, whysize, "cannot lock %s: %s", lock, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}
