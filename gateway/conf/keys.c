/*
 * keys.c: the keys file, and checking the key a client presents.
 *
 * Loading walks the cJSON tree once, checks every field of every record and
 * collects every problem (as config.c does) before deciding; a keyring is
 * only built from a file with none. Everything a keyring points to lives in
 * one arena that dies with the last reference.
 *
 * keyring_verify() runs on every request: it parses the token in place,
 * finds the id by binary search over the records (sorted by id at load),
 * hashes the token once (BLAKE2b, well under a microsecond for 59 bytes) and
 * compares in constant time. It allocates nothing and takes no lock.
 */
#include "keys.h"

#include "arena.h"
#include "diag.h"
#include "fileio.h"
#include "log.h"
#include "glob.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HASH_PREFIX "blake2b:"
#define HASH_PREFIX_LEN (sizeof HASH_PREFIX - 1)
#define NAME_MAX_BYTES 128
#define MODEL_MAX_BYTES 512
#define MODELS_MAX 1000
#define LIMIT_MAX 1000000000.0

/* ---- problems ---- */

struct kctx {
    const char *name;       /* the file, for messages */
    struct cfg_errors errs; /* collected here, handed over at the end */
    unsigned total;         /* found, including those not kept */
    unsigned kept;
    bool oom;
    struct arena *arena;
};

/* One problem: "NAME: PATH: message", or "NAME:LINE: message" for one
 * found in the text before there is a tree (line > 0, path NULL). */
__attribute__((format(printf, 4, 0))) static void
vkerr(struct kctx *x, unsigned line, const char *path, const char *fmt, va_list ap)
{
    x->total++;
    if (x->kept >= CFG_MAX_ERRORS)
        return;
    char text[1024];
    int n = line ? snprintf(text, sizeof text, "%s:%u: ", x->name, line)
                 : snprintf(text, sizeof text, "%s: ", x->name);
    if (n < 0 || (size_t)n >= sizeof text)
        n = 0;
    if (path && *path) {
        int k = snprintf(text + n, sizeof text - (size_t)n, "%s: ", path);
        if (k > 0 && (size_t)k < sizeof text - (size_t)n)
            n += k;
    }
    vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
    /* one problem, one line, whatever the file held */
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (buf_printf(&x->errs.text, "%s\n", text) < 0)
        x->oom = true;
    x->kept++;
}

__attribute__((format(printf, 3, 4))) static void kerr(struct kctx *x, const char *path,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vkerr(x, 0, path, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 3, 4))) static void kerr_line(struct kctx *x, unsigned line,
                                                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vkerr(x, line, NULL, fmt, ap);
    va_end(ap);
}

/* Hand the problems to out, or log them one by one when out is NULL. */
static void emit(struct kctx *x, struct cfg_errors *out)
{
    if (x->oom)
        buf_printf(&x->errs.text, "%s: out of memory\n", x->name);
    if (x->total > x->kept)
        buf_printf(&x->errs.text, "%s: ... and %u more problems\n", x->name, x->total - x->kept);
    if (out) {
        if (x->errs.text.len)
            buf_append(&out->text, x->errs.text.p, x->errs.text.len);
        out->count += x->total + (x->oom ? 1 : 0);
    } else {
        cfg_errors_log(&x->errs);
    }
}

/* A problem outside any parse (opening or reading the file). */
__attribute__((format(printf, 2, 3))) static void report(struct cfg_errors *errs, const char *fmt,
                                                         ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (errs) {
        buf_printf(&errs->text, "%s\n", msg);
        errs->count++;
    } else {
        log_error("%s", msg);
    }
}

/* What a JSON value is, for "must be X, not Y" messages. */
static const char *describe(const cJSON *v, char *out, size_t outsz)
{
    if (cJSON_IsString(v) && v->valuestring)
        return diag_show(out, outsz, v->valuestring);
    if (cJSON_IsNumber(v)) {
        snprintf(out, outsz, "%.17g", v->valuedouble);
        return out;
    }
    if (cJSON_IsTrue(v))
        return "true";
    if (cJSON_IsFalse(v))
        return "false";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    return "an unknown value";
}

/* ---- values ---- */

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

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
    if (!all_digits(s, 4) || s[4] != '-' || !all_digits(s + 5, 2) || s[7] != '-' ||
        !all_digits(s + 8, 2))
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
    if (strlen(s) != 20 || !parse_date(s, &y, &mo, &d) || s[10] != 'T' || !all_digits(s + 11, 2) ||
        s[13] != ':' || !all_digits(s + 14, 2) || s[16] != ':' || !all_digits(s + 17, 2) ||
        s[19] != 'Z')
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

bool keys_is_id(const char *s, size_t n)
{
    if (n != KEY_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

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

static char *xstrdup(struct kctx *x, const char *s)
{
    size_t n = strlen(s);
    char *p = arena_alloc(&x->arena, n + 1);
    if (!p) {
        x->oom = true;
        return NULL;
    }
    memcpy(p, s, n + 1);
    return p;
}

/* ---- records ---- */

enum field {
    F_ID,
    F_NAME,
    F_HASH,
    F_MODELS,
    F_RPM,
    F_TPM,
    F_MAX_INFLIGHT,
    F_EXPIRES,
    F_DISABLED,
    F_REVOKED,
    F_ADMIN,
    F_CREATED,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "id",           "name",    "hash",     "models",  "rpm",   "tpm",
    "max_inflight", "expires", "disabled", "revoked", "admin", "created",
};

static int field_of(const char *s)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strcmp(s, field_names[i]) == 0)
            return i;
    return -1;
}

static void check_string_field(struct kctx *x, const cJSON *v, const char *path, const char *what,
                               const char **out)
{
    char d[DIAG_SHOWBUF];
    if (!cJSON_IsString(v) || !v->valuestring) {
        kerr(x, path, "must be a string (%s), not %s", what, describe(v, d, sizeof d));
        return;
    }
    *out = v->valuestring;
}

static void check_limit(struct kctx *x, const cJSON *v, const char *path, unsigned *out)
{
    char d[DIAG_SHOWBUF];
    /* NaN fails every comparison; in range, the cast is exact only for whole numbers */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= LIMIT_MAX) ||
        v->valuedouble != (double)(unsigned)v->valuedouble) {
        kerr(x, path,
             "must be a whole number from 0 to 1000000000 (0 or absent = no limit), not %s; "
             "correct it or remove the field",
             describe(v, d, sizeof d));
        return;
    }
    *out = (unsigned)v->valuedouble;
}

static void check_bool(struct kctx *x, const cJSON *v, const char *path, bool *out)
{
    char d[DIAG_SHOWBUF];
    if (!cJSON_IsBool(v)) {
        kerr(x, path, "must be true or false, not %s", describe(v, d, sizeof d));
        return;
    }
    *out = cJSON_IsTrue(v);
}

static void check_time(struct kctx *x, const cJSON *v, const char *path, int64_t *out)
{
    char d[DIAG_SHOWBUF];
    const char *s = NULL;
    check_string_field(x, v, path, "a UTC time like \"2025-01-31T12:00:00Z\"", &s);
    if (!s)
        return;
    if (parse_time(s, out) < 0)
        kerr(x, path,
             "%s is not a UTC time YYYY-MM-DDTHH:MM:SSZ (like \"2025-01-31T12:00:00Z\"); "
             "correct it",
             diag_show(d, sizeof d, s));
}

static void check_models(struct kctx *x, const cJSON *v, const char *path, struct key *k)
{
    char d[DIAG_SHOWBUF], ipath[192];
    if (!cJSON_IsArray(v)) {
        kerr(x, path,
             "must be an array of model names or globs, like [\"llama3*\", \"qwen2.5:14b\"], "
             "not %s; remove the field to allow every model",
             describe(v, d, sizeof d));
        return;
    }
    size_t n = 0;
    for (const cJSON *m = v->child; m; m = m->next)
        n++;
    if (n == 0) {
        kerr(x, path,
             "is empty, so the key could use no model at all; list model globs, or remove "
             "the field to allow every model");
        return;
    }
    if (n > MODELS_MAX) {
        kerr(x, path, "lists %zu models; at most %d are allowed: use globs like \"llama3*\"", n,
             MODELS_MAX);
        return;
    }
    const char **models = arena_alloc(&x->arena, n * sizeof *models);
    if (!models) {
        x->oom = true;
        return;
    }
    bool ok = true;
    size_t i = 0;
    for (const cJSON *m = v->child; m; m = m->next, i++) {
        snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
        if (!cJSON_IsString(m) || !m->valuestring) {
            kerr(x, ipath, "must be a model name or glob (a string), not %s",
                 describe(m, d, sizeof d));
            ok = false;
        } else if (!*m->valuestring) {
            kerr(x, ipath, "is empty; give a model name or a glob like \"llama3*\", or remove it");
            ok = false;
        } else if (strlen(m->valuestring) > MODEL_MAX_BYTES || has_control(m->valuestring)) {
            kerr(x, ipath,
                 "%s is not a model name (longer than %d bytes, or control characters); "
                 "correct it",
                 diag_show(d, sizeof d, m->valuestring), MODEL_MAX_BYTES);
            ok = false;
        } else if (ok) {
            models[i] = xstrdup(x, m->valuestring);
        }
    }
    if (ok) {
        k->models = models;
        k->nmodels = n;
    }
}

/* Check one record, filling k. Returns true when its id is usable (for the
 * duplicate check), whatever else is wrong with it. */
static bool parse_record(struct kctx *x, const cJSON *rec, size_t index, struct key *k)
{
    char path[48], fpath[160], d[DIAG_SHOWBUF];
    snprintf(path, sizeof path, "keys[%zu]", index);
    if (!cJSON_IsObject(rec)) {
        kerr(x, path,
             "must be an object {\"id\": ..., \"name\": ..., \"hash\": ...}, not %s; remove it",
             describe(rec, d, sizeof d));
        return false;
    }
    unsigned seen = 0;
    bool id_ok = false;
    for (const cJSON *m = rec->child; m; m = m->next) {
        const char *fname = m->string ? m->string : "";
        diag_path_key(fpath, sizeof fpath, path, fname);
        int f = field_of(fname);
        if (f < 0) {
            const char *near = diag_suggest(fname, field_names, F_COUNT);
            if (near)
                kerr(x, fpath, "unknown field; did you mean \"%s\"?", near);
            else
                kerr(x, fpath,
                     "unknown field; a record has id, name, hash, models, rpm, tpm, "
                     "max_inflight, expires, disabled, revoked, admin and created: remove it");
            continue;
        }
        if (seen & (1u << f)) {
            kerr(x, fpath, "appears twice in this record; keep one");
            continue;
        }
        seen |= 1u << f;
        const char *s = NULL;
        switch ((enum field)f) {
        case F_ID:
            check_string_field(x, m, fpath, "12 characters a-z 0-9", &s);
            if (s && keys_is_id(s, strlen(s))) {
                memcpy(k->id, s, KEY_ID_LEN + 1);
                id_ok = true;
            } else if (s) {
                kerr(x, fpath,
                     "%s is not a key id (12 characters a-z 0-9, the part after \"og-\" in "
                     "the secret); ids are made by ollama-gateway key create: restore the "
                     "record or remove it",
                     diag_show(d, sizeof d, s));
            }
            break;
        case F_NAME:
            check_string_field(x, m, fpath, "a label for people", &s);
            if (!s)
                break;
            if (!*s)
                kerr(x, fpath, "is empty; give the key a name, like \"ci\" or \"alice laptop\"");
            else if (strlen(s) > NAME_MAX_BYTES)
                kerr(x, fpath, "is longer than %d bytes; shorten it", NAME_MAX_BYTES);
            else if (has_control(s))
                kerr(x, fpath, "contains control characters; remove them");
            else
                k->name = xstrdup(x, s);
            break;
        case F_HASH: {
            check_string_field(x, m, fpath, "\"blake2b:\" and 64 hex digits", &s);
            if (!s)
                break;
            bool ok = strlen(s) == HASH_PREFIX_LEN + 2 * KEY_HASH_LEN &&
                      memcmp(s, HASH_PREFIX, HASH_PREFIX_LEN) == 0;
            for (size_t i = 0; ok && i < KEY_HASH_LEN; i++) {
                int hi = hexval(s[HASH_PREFIX_LEN + 2 * i]);
                int lo = hexval(s[HASH_PREFIX_LEN + 2 * i + 1]);
                if (hi < 0 || lo < 0)
                    ok = false;
                else
                    k->hash[i] = (unsigned char)(hi << 4 | lo);
            }
            if (!ok)
                kerr(x, fpath,
                     "%s is not \"blake2b:\" followed by 64 lowercase hex digits; hashes are "
                     "written by ollama-gateway key create: restore the record from a backup, "
                     "or remove it and create a new key",
                     diag_show(d, sizeof d, s));
            break;
        }
        case F_MODELS:
            check_models(x, m, fpath, k);
            break;
        case F_RPM:
            check_limit(x, m, fpath, &k->rpm);
            break;
        case F_TPM:
            check_limit(x, m, fpath, &k->tpm);
            break;
        case F_MAX_INFLIGHT:
            check_limit(x, m, fpath, &k->max_inflight);
            break;
        case F_EXPIRES:
            check_string_field(x, m, fpath, "a date like \"2025-12-31\"", &s);
            if (s && keys_parse_day(s, &k->expires) < 0)
                kerr(x, fpath,
                     "%s is not a date YYYY-MM-DD (like \"2025-12-31\"; the key works until "
                     "the end of that day, UTC); correct it, or remove the field for a key "
                     "that never expires",
                     diag_show(d, sizeof d, s));
            break;
        case F_DISABLED:
            check_bool(x, m, fpath, &k->disabled);
            break;
        case F_REVOKED:
            check_time(x, m, fpath, &k->revoked);
            /* 0 means "not revoked": a key revoked at the epoch stays revoked. */
            if (k->revoked == 0)
                k->revoked = 1;
            break;
        case F_ADMIN:
            check_bool(x, m, fpath, &k->admin);
            break;
        case F_CREATED:
            check_time(x, m, fpath, &k->created);
            break;
        case F_COUNT:
            break;
        }
    }
    static const enum field required[] = {F_ID, F_NAME, F_HASH};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!(seen & (1u << required[i]))) {
            diag_path_key(fpath, sizeof fpath, path, field_names[required[i]]);
            kerr(x, fpath,
                 "missing; every record needs id, name and hash (ollama-gateway key create "
                 "writes them): restore the record from a backup or remove it");
        }
    return id_ok;
}

struct idref {
    const char *id;
    size_t index;
};

static int cmp_idref(const void *a, const void *b)
{
    const struct idref *p = a, *q = b;
    int c = strcmp(p->id, q->id);
    if (c)
        return c;
    return p->index < q->index ? -1 : p->index > q->index;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(((const struct key *)a)->id, ((const struct key *)b)->id);
}

/* Report every id used twice, at the later record. */
static void check_duplicates(struct kctx *x, const struct key *v, const bool *id_ok, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += id_ok[i];
    if (m < 2)
        return;
    struct idref *refs = malloc(m * sizeof *refs);
    if (!refs) {
        x->oom = true;
        return;
    }
    m = 0;
    for (size_t i = 0; i < n; i++)
        if (id_ok[i])
            refs[m++] = (struct idref){v[i].id, i};
    qsort(refs, m, sizeof *refs, cmp_idref);
    for (size_t i = 1; i < m; i++) {
        if (strcmp(refs[i].id, refs[i - 1].id) != 0)
            continue;
        size_t first = i - 1;
        while (first > 0 && strcmp(refs[first - 1].id, refs[i].id) == 0)
            first--;
        char path[64];
        snprintf(path, sizeof path, "keys[%zu].id", refs[i].index);
        kerr(x, path,
             "\"%s\" is also the id of keys[%zu]; ids must be unique: remove one of the two "
             "records",
             refs[i].id, refs[first].index);
    }
    free(refs);
}

/* The top level: {"version": 1, "keys": [...]}. Returns the "keys" array
 * when it is one. */
static const cJSON *parse_top(struct kctx *x, const cJSON *root)
{
    char d[DIAG_SHOWBUF], path[160];
    const cJSON *keys = NULL;
    bool have_version = false, have_keys = false;
    for (const cJSON *m = root->child; m; m = m->next) {
        const char *fname = m->string ? m->string : "";
        diag_path_key(path, sizeof path, "", fname);
        if (strcmp(fname, "version") == 0) {
            if (have_version) {
                kerr(x, path, "appears twice; keep one");
                continue;
            }
            have_version = true;
            if (!cJSON_IsNumber(m) || m->valuedouble != 1)
                kerr(x, path,
                     "is %s, but this gateway reads version 1 keys files; was it written by "
                     "a newer ollama-gateway?",
                     describe(m, d, sizeof d));
        } else if (strcmp(fname, "keys") == 0) {
            if (have_keys) {
                kerr(x, path, "appears twice; keep one");
                continue;
            }
            have_keys = true;
            if (!cJSON_IsArray(m))
                kerr(x, path, "must be an array of key records [...], not %s",
                     describe(m, d, sizeof d));
            else
                keys = m;
        } else {
            kerr(x, path,
                 "unknown field; a keys file holds only \"version\" and \"keys\": "
                 "remove it");
        }
    }
    if (!have_version)
        kerr(x, "version", "missing; add \"version\": 1");
    if (!have_keys)
        kerr(x, "keys",
             "missing; add \"keys\": [] (then create keys with ollama-gateway key "
             "create)");
    return keys;
}

static void report_syntax(struct kctx *x, const char *s, size_t len, size_t off)
{
    char q[DIAG_SHOWBUF], near[40];
    size_t ws = off < len ? strspn(s + off, " \t\r\n\f\v") : 0;
    if (off >= len || off + ws >= len) {
        kerr_line(x, diag_line_at(s, len, len),
                  "JSON syntax error: the text ends too early (a missing '}', ']' or '\"'?); "
                  "restore the file from a backup or correct it");
        return;
    }
    size_t nl = strcspn(s + off, "\r\n");
    snprintf(near, sizeof near, "%.*s", (int)(nl < 24 ? nl : 24), s + off);
    kerr_line(x, diag_line_at(s, len, off),
              "JSON syntax error near %s; restore the file from a backup or correct it",
              diag_show(q, sizeof q, near));
}

static void keyring_free(struct keyring *k)
{
    if (!k)
        return;
    arena_free(k->priv);
    free(k);
}

struct keyring *keyring_load_buffer(const char *text, size_t len, const char *name,
                                    struct cfg_errors *errs)
{
    struct kctx x = {.name = name ? name : "keys.json"};
    cfg_errors_init(&x.errs);
    struct keyring *kr = NULL;
    char *copy = NULL;
    cJSON *root = NULL;
    bool *id_ok = NULL;
    if (!text) {
        text = "";
        len = 0;
    }

    if (len > KEYS_MAX_FILE_BYTES) {
        kerr(&x, NULL, "is larger than %u MiB; is keys_file the right file?",
             KEYS_MAX_FILE_BYTES >> 20);
        goto out;
    }
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        kerr_line(&x, diag_line_at(text, len, (size_t)(nul - text)),
                  "contains a NUL byte: is this a text file?");
        goto out;
    }
    /* A terminated copy: cJSON then never has to trust the length alone. */
    copy = malloc(len + 1);
    if (!copy) {
        x.oom = true;
        goto out;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (strspn(copy, " \t\r\n\f\v") == len) {
        kerr(&x, NULL,
             "is empty: it must hold {\"version\": 1, \"keys\": []}; create keys with "
             "ollama-gateway key create");
        goto out;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    if (!root) {
        size_t off = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : len;
        report_syntax(&x, copy, len, off);
        goto out;
    }
    size_t after = (size_t)(end - copy);
    after += strspn(copy + after, " \t\r\n\f\v");
    if (after < len) {
        kerr_line(&x, diag_line_at(copy, len, after),
                  "unexpected text after the end of the top-level object; remove it");
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        char d[DIAG_SHOWBUF];
        kerr(&x, NULL, "must hold one JSON object {\"version\": 1, \"keys\": [...]}, not %s",
             describe(root, d, sizeof d));
        goto out;
    }

    kr = calloc(1, sizeof *kr);
    if (!kr) {
        x.oom = true;
        goto out;
    }
    atomic_init(&kr->refs, 1);
    kr->path = xstrdup(&x, x.name);

    const cJSON *keys = parse_top(&x, root);
    size_t n = 0;
    for (const cJSON *r = keys ? keys->child : NULL; r; r = r->next)
        n++;
    if (n > KEYS_MAX) {
        kerr(&x, "keys", "holds %zu records; at most %d are allowed", n, KEYS_MAX);
        goto out;
    }
    struct key *v = n ? arena_alloc(&x.arena, n * sizeof *v) : NULL;
    id_ok = n ? calloc(n, sizeof *id_ok) : NULL;
    if (n && (!v || !id_ok)) {
        x.oom = true;
        goto out;
    }
    size_t i = 0;
    for (const cJSON *r = keys ? keys->child : NULL; r; r = r->next, i++)
        id_ok[i] = parse_record(&x, r, i, &v[i]);
    check_duplicates(&x, v, id_ok, n);
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_key);
    kr->v = v;
    kr->n = n;

out:
    if (x.total || x.oom) {
        emit(&x, errs);
        arena_free(x.arena);
        free(kr);
        kr = NULL;
    } else {
        kr->priv = x.arena;
    }
    cfg_errors_free(&x.errs);
    free(id_ok);
    cJSON_Delete(root);
    free(copy);
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
    char *p = NULL;
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
    if (st.st_size > (off_t)KEYS_MAX_FILE_BYTES) {
        set_why(why, whysize, "is larger than %u MiB; is keys_file the right file?",
                KEYS_MAX_FILE_BYTES >> 20);
        rc = KEYS_READ_REFUSED;
        goto out;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    p = malloc(cap);
    if (!p) {
        set_why(why, whysize, "out of memory");
        goto out;
    }
    for (;;) {
        char *dst = p + n;
        size_t room = cap - 1 - n;
        char probe;
        if (room == 0) { /* full: is that the end, or did the file grow? */
            dst = &probe;
            room = 1;
        }
        ssize_t r = read(fd, dst, room);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            set_why(why, whysize, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        if (dst == &probe) {
            if (n + 1 > KEYS_MAX_FILE_BYTES) {
                set_why(why, whysize, "is larger than %u MiB; is keys_file the right file?",
                        KEYS_MAX_FILE_BYTES >> 20);
                rc = KEYS_READ_REFUSED;
                goto out;
            }
            char *q = realloc(p, cap * 2);
            if (!q) {
                set_why(why, whysize, "out of memory");
                goto out;
            }
            p = q;
            cap *= 2;
            p[n] = probe;
        }
        n += (size_t)r;
    }
    p[n] = '\0';
    *text = p;
    *len = n;
    p = NULL;
    rc = KEYS_READ_OK;
out:
    free(p);
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
        report(errs, "%s: %s", path, why);
        return NULL;
    }
    switch (keys_read_file(path, &text, &len, why, sizeof why)) {
    case KEYS_READ_OK:
        break;
    case KEYS_READ_MISSING:
        goto missing;
    case KEYS_READ_REFUSED:
    case KEYS_READ_FAILED:
        report(errs, "%s: %s", path, why);
        return NULL;
    }
    struct keyring *kr = keyring_load_buffer(text, len, path, errs);
    free(text);
    return kr;
missing:
    report(errs, "%s: no keys file; create a key with: ollama-gateway key create NAME%s%s", path,
           config_path ? " -c " : "", config_path ? config_path : "");
    return NULL;
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

int keys_write_file(const char *path, const char *text, size_t len)
{
    return fileio_replace(path, text, len, 0600);
}
