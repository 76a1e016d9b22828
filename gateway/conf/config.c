/*
 * config.c: reading gateway.json.
 *
 * The pipeline, in cfg_load_buffer():
 *   1. copy the text and blank out comments (and a UTF-8 BOM) with spaces,
 *      keeping every newline, so offsets and line numbers stay those of the file;
 *   2. cJSON_ParseWithLengthOpts(); on a syntax error its end pointer gives the
 *      offset, hence the line;
 *   3. walk the text once more beside the cJSON tree (which cJSON builds in
 *      document order) to record the line and offset of every item: cJSON keeps
 *      no positions, and this index lets any later check say FILE:LINE. It also
 *      gives the number's text as written, so that 1.5, 1e3 and -1 are told
 *      apart exactly instead of through a double;
 *   4. check every key against the tables below (type, bounds, default, where
 *      it goes), collecting every problem, then the cross references;
 *   5. sort the problems by line and hand them over, or return the snapshot.
 *
 * Everything a snapshot points to lives in its arena (or in the cJSON tree it
 * keeps, for alias options), so freeing is two calls.
 */
#include "config.h"

#include "arena.h"
#include "diag.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the load context ---- */

struct pos {
    const cJSON *item;
    unsigned line; /* of the key for object members, else of the value */
    size_t off;    /* of the value */
};

struct msg {
    unsigned line;
    unsigned seq;
    char *text; /* malloc'd, "FILE:LINE: ..." */
};

struct msglist {
    struct msg *v;
    size_t n, cap;
    unsigned total;
};

struct named;

struct ctx {
    const char *name; /* the file, for messages */
    const char *text; /* comment-stripped copy */
    size_t len;
    struct pos *pos; /* sorted by item */
    size_t npos;
    struct msglist errs;
    struct msglist notes;
    unsigned seq;
    struct cfg *c;
    const char *base_dir; /* absolute, no trailing '/' unless it is "/" */
    bool oom;
    bool backends_ok;     /* "backends" was an array we could read */
    const cJSON *aliases; /* checked last, once the backends are known */
    struct named *bnames; /* backend names, sorted (for the aliases' lookups) */
    size_t nbnames;
    const cJSON *auth_item;
};

#define PATH_MAX_LEN 256

static unsigned line_of(const struct ctx *x, const cJSON *item);

static void msg_free(struct msglist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].text);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

__attribute__((format(printf, 5, 0))) static void
vadd(struct ctx *x, struct msglist *l, unsigned line, const char *path, const char *fmt, va_list ap)
{
    l->total++;
    if (l->n >= CFG_MAX_ERRORS)
        return;
    char text[1024];
    int n;
    if (line)
        n = snprintf(text, sizeof text, "%s:%u: ", x->name, line);
    else
        n = snprintf(text, sizeof text, "%s: ", x->name);
    if (n < 0 || (size_t)n >= sizeof text)
        n = 0;
    if (path && *path) {
        int k = snprintf(text + n, sizeof text - (size_t)n, "%s: ", path);
        if (k > 0 && (size_t)k < sizeof text - (size_t)n)
            n += k;
    }
    vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct msg *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            x->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    char *dup = strdup(text);
    if (!dup) {
        x->oom = true;
        return;
    }
    l->v[l->n++] = (struct msg){line, x->seq++, dup};
}

/* A problem at the line of item (0 = unknown). path may be NULL. */
__attribute__((format(printf, 4, 5))) static void err(struct ctx *x, const cJSON *item,
                                                      const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vadd(x, &x->errs, line_of(x, item), path, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 4, 5))) static void err_line(struct ctx *x, unsigned line,
                                                           const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vadd(x, &x->errs, line, path, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 4, 5))) static void note(struct ctx *x, const cJSON *item,
                                                       const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vadd(x, &x->notes, line_of(x, item), path, fmt, ap);
    va_end(ap);
}

static void *xalloc(struct ctx *x, size_t n)
{
    void *p = arena_alloc(&x->c->arena, n);
    if (!p)
        x->oom = true;
    return p;
}

static void *xalloc_array(struct ctx *x, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        x->oom = true;
        return NULL;
    }
    return xalloc(x, n * size);
}

static char *xstrndup(struct ctx *x, const char *s, size_t n)
{
    char *p = xalloc(x, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static char *xstrdup(struct ctx *x, const char *s)
{
    return xstrndup(x, s, strlen(s));
}

/* ---- showing the user's text back, safely ---- */

/* ---- comments ---- */

/*
 * Overwrite // and block comments with spaces (keeping '\n'), string-aware.
 * Returns 0, or -1 with *bad_off at an unterminated block comment.
 */
static int strip_comments(char *s, size_t len, size_t *bad_off)
{
    size_t i = 0;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        memset(s, ' ', 3);
        i = 3;
    }
    while (i < len) {
        char ch = s[i];
        if (ch == '"') {
            for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\' && i + 1 < len)
                    i++;
            i++;
        } else if (ch == '/' && i + 1 < len && s[i + 1] == '/') {
            while (i < len && s[i] != '\n')
                s[i++] = ' ';
        } else if (ch == '/' && i + 1 < len && s[i + 1] == '*') {
            size_t start = i;
            s[i] = s[i + 1] = ' ';
            i += 2;
            for (;;) {
                if (i >= len) {
                    *bad_off = start;
                    return -1;
                }
                if (s[i] == '*' && i + 1 < len && s[i + 1] == '/') {
                    s[i] = s[i + 1] = ' ';
                    i += 2;
                    break;
                }
                if (s[i] != '\n')
                    s[i] = ' ';
                i++;
            }
        } else {
            i++;
        }
    }
    return 0;
}

/* ---- the position index: a second walk beside cJSON's tree ---- */

struct scan {
    const char *s;
    size_t len, i;
    unsigned line;
    struct pos *v;
    size_t n, cap;
    bool bad;
};

static void scan_ws(struct scan *sc)
{
    /* cJSON skips every byte <= 32 as whitespace. */
    while (sc->i < sc->len && (unsigned char)sc->s[sc->i] <= 32) {
        if (sc->s[sc->i] == '\n')
            sc->line++;
        sc->i++;
    }
}

static void scan_string(struct scan *sc)
{
    sc->i++; /* the opening quote */
    while (sc->i < sc->len && sc->s[sc->i] != '"') {
        if (sc->s[sc->i] == '\\')
            sc->i++;
        if (sc->i < sc->len) {
            if (sc->s[sc->i] == '\n')
                sc->line++;
            sc->i++;
        }
    }
    if (sc->i >= sc->len)
        sc->bad = true;
    else
        sc->i++;
}

static void scan_record(struct scan *sc, const cJSON *item, unsigned line)
{
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        struct pos *v = realloc(sc->v, cap * sizeof *v);
        if (!v) {
            sc->bad = true;
            return;
        }
        sc->v = v;
        sc->cap = cap;
    }
    sc->v[sc->n++] = (struct pos){item, line, sc->i};
}

static bool is_num_char(char ch)
{
    return (ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == '.' || ch == 'e' ||
           ch == 'E';
}

static void scan_value(struct scan *sc, const cJSON *item, unsigned key_line, int depth)
{
    scan_ws(sc);
    if (sc->i >= sc->len || !item || depth > 1100) {
        sc->bad = true;
        return;
    }
    scan_record(sc, item, key_line ? key_line : sc->line);
    if (sc->bad)
        return;
    char ch = sc->s[sc->i];
    if (ch == '{' || ch == '[') {
        bool obj = ch == '{';
        char close = obj ? '}' : ']';
        if (obj ? !cJSON_IsObject(item) : !cJSON_IsArray(item)) {
            sc->bad = true;
            return;
        }
        sc->i++;
        const cJSON *child = item->child;
        scan_ws(sc);
        if (sc->i < sc->len && sc->s[sc->i] == close) {
            sc->i++;
            sc->bad = child != NULL;
            return;
        }
        for (;;) {
            unsigned kl = 0;
            scan_ws(sc);
            if (!child || sc->i >= sc->len) {
                sc->bad = true;
                return;
            }
            if (obj) {
                if (sc->s[sc->i] != '"') {
                    sc->bad = true;
                    return;
                }
                kl = sc->line;
                scan_string(sc);
                scan_ws(sc);
                if (sc->bad || sc->i >= sc->len || sc->s[sc->i] != ':') {
                    sc->bad = true;
                    return;
                }
                sc->i++;
            }
            scan_value(sc, child, kl, depth + 1);
            if (sc->bad)
                return;
            child = child->next;
            scan_ws(sc);
            if (sc->i < sc->len && sc->s[sc->i] == ',') {
                sc->i++;
                continue;
            }
            if (sc->i < sc->len && sc->s[sc->i] == close) {
                sc->i++;
                break;
            }
            sc->bad = true;
            return;
        }
        sc->bad = child != NULL;
    } else if (ch == '"') {
        if (!cJSON_IsString(item))
            sc->bad = true;
        else
            scan_string(sc);
    } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
        if (!cJSON_IsNumber(item))
            sc->bad = true;
        while (sc->i < sc->len && is_num_char(sc->s[sc->i]))
            sc->i++;
    } else {
        while (sc->i < sc->len && sc->s[sc->i] >= 'a' && sc->s[sc->i] <= 'z')
            sc->i++;
    }
}

static int cmp_pos(const void *a, const void *b)
{
    uintptr_t pa = (uintptr_t)((const struct pos *)a)->item;
    uintptr_t pb = (uintptr_t)((const struct pos *)b)->item;
    return pa < pb ? -1 : pa > pb;
}

/* Build x->pos. If the walk loses step with cJSON (it should not), the
 * positions found up to there are kept and the rest report no line. */
static void build_index(struct ctx *x, const cJSON *root)
{
    struct scan sc = {.s = x->text, .len = x->len, .line = 1};
    scan_value(&sc, root, 0, 0);
    if (sc.n)
        qsort(sc.v, sc.n, sizeof *sc.v, cmp_pos);
    x->pos = sc.v;
    x->npos = sc.n;
}

static const struct pos *pos_of(const struct ctx *x, const cJSON *item)
{
    if (!item || !x->npos)
        return NULL;
    struct pos key = {.item = item};
    return bsearch(&key, x->pos, x->npos, sizeof key, cmp_pos);
}

static unsigned line_of(const struct ctx *x, const cJSON *item)
{
    const struct pos *p = pos_of(x, item);
    return p ? p->line : 0;
}

/* The number as written in the file: sets *n; NULL when unknown. */
static const char *num_text(const struct ctx *x, const cJSON *item, size_t *n)
{
    const struct pos *p = pos_of(x, item);
    if (!p || p->off >= x->len)
        return NULL;
    size_t e = p->off;
    while (e < x->len && is_num_char(x->text[e]))
        e++;
    *n = e - p->off;
    return *n ? x->text + p->off : NULL;
}

/* "a string", "the number 1.5", ... for "expected X, got Y". */
static const char *describe(const struct ctx *x, const cJSON *v, char *out, size_t outsz)
{
    char q[DIAG_SHOWBUF];
    if (cJSON_IsString(v)) {
        snprintf(out, outsz, "the string %s", DIAG_SHOW(q, v->valuestring));
    } else if (cJSON_IsNumber(v)) {
        size_t n;
        const char *t = num_text(x, v, &n);
        if (t && n < 40)
            snprintf(out, outsz, "the number %.*s", (int)n, t);
        else
            snprintf(out, outsz, "a number");
    } else if (cJSON_IsTrue(v)) {
        snprintf(out, outsz, "true");
    } else if (cJSON_IsFalse(v)) {
        snprintf(out, outsz, "false");
    } else if (cJSON_IsNull(v)) {
        snprintf(out, outsz, "null");
    } else if (cJSON_IsArray(v)) {
        snprintf(out, outsz, "an array");
    } else if (cJSON_IsObject(v)) {
        snprintf(out, outsz, "an object");
    } else {
        snprintf(out, outsz, "something else");
    }
    return out;
}

/* ---- scalar parsers ---- */

/*
 * Digits only, no sign, min..max (OpenBSD strtonum semantics, on strtoull).
 * Returns 0, or -1 with *why "is not a whole number", "is too small", "is too
 * large".
 */
static int parse_uint(const char *s, size_t n, unsigned long long min, unsigned long long max,
                      unsigned long long *out, const char **why)
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) {
        *why = n ? "is too large" : "is not a whole number";
        return -1;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (tmp[0] < '0' || tmp[0] > '9') {
        *why = tmp[0] == '-' && n > 1 && strspn(tmp + 1, "0123456789") == n - 1
                   ? "is negative"
                   : "is not a whole number";
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(tmp, &end, 10);
    if (*end != '\0') {
        *why = "is not a whole number";
        return -1;
    }
    if (errno == ERANGE || v > max) {
        *why = "is too large";
        return -1;
    }
    if (v < min) {
        *why = "is too small";
        return -1;
    }
    *out = v;
    return 0;
}

static int get_uint(struct ctx *x, const cJSON *v, const char *path, unsigned long long min,
                    unsigned long long max, unsigned long long *out)
{
    char d[DIAG_SHOWBUF];
    if (!cJSON_IsNumber(v)) {
        const char *hint = "";
        if (cJSON_IsString(v) && v->valuestring[0] &&
            strspn(v->valuestring, "0123456789") == strlen(v->valuestring))
            hint = "; write it without quotes";
        err(x, v, path, "expected a whole number from %llu to %llu, got %s%s", min, max,
            describe(x, v, d, sizeof d), hint);
        return -1;
    }
    size_t n = 0;
    const char *t = num_text(x, v, &n);
    const char *why;
    if (t) {
        if (parse_uint(t, n, min, max, out, &why) == 0)
            return 0;
        err(x, v, path, "%.*s %s (allowed: whole numbers from %llu to %llu)",
            (int)(n < 40 ? n : 40), t, why, min, max);
        return -1;
    }
    /* No position (should not happen): judge the double. */
    double dv = v->valuedouble;
    if (dv >= (double)min && dv <= (double)max && dv == (double)(unsigned long long)dv) {
        *out = (unsigned long long)dv;
        return 0;
    }
    err(x, v, path, "expected a whole number from %llu to %llu", min, max);
    return -1;
}

static const char *get_string(struct ctx *x, const cJSON *v, const char *path, const char *what)
{
    char d[DIAG_SHOWBUF];
    if (!cJSON_IsString(v)) {
        err(x, v, path, "expected %s (a string), got %s", what, describe(x, v, d, sizeof d));
        return NULL;
    }
    if (!v->valuestring[0]) {
        err(x, v, path, "is empty: expected %s", what);
        return NULL;
    }
    return v->valuestring;
}

/* ---- "did you mean" ---- */

/* ---- the key tables ---- */

struct key;
typedef void (*key_fn)(struct ctx *x, const cJSON *v, const char *path, void *base,
                       const struct key *k);

struct key {
    const char *name;
    key_fn fn;
    size_t off;                  /* of the target, from the table's base */
    size_t width;                /* of the target, for numbers */
    unsigned long long min, max; /* numbers */
    unsigned long long def;      /* numbers, booleans, enums */
    const void *arg;             /* a sub-table, or the NULL-terminated choices of an enum */
    const char *sdef;            /* default of a string or path */
    const char *required;        /* non-NULL: the key must be there; says what to write */
    const char *notice;          /* non-NULL: warned about when present (not built yet) */
};

struct table {
    const struct key *keys;
    size_t n;
};

#define TABLE(a)                                                                                   \
    {                                                                                              \
        (a), sizeof(a) / sizeof((a)[0])                                                            \
    }

static void key_uint(struct ctx *x, const cJSON *v, const char *path, void *base,
                     const struct key *k)
{
    unsigned long long val;
    if (get_uint(x, v, path, k->min, k->max, &val) < 0)
        return;
    char *p = (char *)base + k->off;
    if (k->width == sizeof(size_t)) {
        size_t t = (size_t)val;
        memcpy(p, &t, sizeof t);
    } else {
        unsigned t = (unsigned)val;
        memcpy(p, &t, sizeof t);
    }
}

static void key_bool(struct ctx *x, const cJSON *v, const char *path, void *base,
                     const struct key *k)
{
    char d[DIAG_SHOWBUF];
    if (!cJSON_IsBool(v)) {
        const char *hint = cJSON_IsString(v) && (strcmp(v->valuestring, "true") == 0 ||
                                                 strcmp(v->valuestring, "false") == 0)
                               ? "; write it without quotes"
                               : "";
        err(x, v, path, "expected true or false, got %s%s", describe(x, v, d, sizeof d), hint);
        return;
    }
    bool b = cJSON_IsTrue(v);
    memcpy((char *)base + k->off, &b, sizeof b);
}

static void key_enum(struct ctx *x, const cJSON *v, const char *path, void *base,
                     const struct key *k)
{
    const char *const *choices = k->arg;
    char d[DIAG_SHOWBUF], list[256] = "";
    size_t n = 0;
    for (; choices[n]; n++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s\"%s\"", n ? ", " : "", choices[n]);
    }
    if (!cJSON_IsString(v)) {
        err(x, v, path, "expected one of %s, got %s", list, describe(x, v, d, sizeof d));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v->valuestring, choices[i]) == 0) {
            int t = (int)i;
            memcpy((char *)base + k->off, &t, sizeof t);
            return;
        }
    }
    const char *s = diag_suggest(v->valuestring, choices, n);
    if (s)
        err(x, v, path, "%s is not one of %s (did you mean \"%s\"?)", DIAG_SHOW(d, v->valuestring),
            list, s);
    else
        err(x, v, path, "%s is not one of %s", DIAG_SHOW(d, v->valuestring), list);
}

/* dir + "/" + p, unless p is absolute. */
static const char *resolve(struct ctx *x, const char *p)
{
    if (p[0] == '/')
        return xstrdup(x, p);
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    size_t dl = strlen(x->base_dir), pl = strlen(p);
    bool slash = dl > 0 && x->base_dir[dl - 1] == '/';
    char *out = xalloc(x, dl + pl + 2);
    if (!out)
        return NULL;
    memcpy(out, x->base_dir, dl);
    if (!slash)
        out[dl++] = '/';
    memcpy(out + dl, p, pl + 1);
    return out;
}

static void key_path(struct ctx *x, const cJSON *v, const char *path, void *base,
                     const struct key *k)
{
    const char *s = get_string(x, v, path, "a file path");
    if (!s)
        return;
    const char *r = resolve(x, s);
    memcpy((char *)base + k->off, &r, sizeof r);
}

static uint64_t walk_object(struct ctx *x, const cJSON *obj, const char *path,
                            const struct table *t, void *base);

static void key_object(struct ctx *x, const cJSON *v, const char *path, void *base,
                       const struct key *k)
{
    walk_object(x, v, path, k->arg, (char *)base + k->off);
}

/* The bit walk_object() sets when t's key `name` is present. */
static uint64_t key_bit(const struct table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->keys[i].name, name) == 0)
            return UINT64_C(1) << i;
    return 0;
}

static void apply_defaults(struct ctx *x, const struct table *t, void *base)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct key *k = &t->keys[i];
        char *p = (char *)base + k->off;
        if (k->fn == key_uint) {
            if (k->width == sizeof(size_t)) {
                size_t v = (size_t)k->def;
                memcpy(p, &v, sizeof v);
            } else {
                unsigned v = (unsigned)k->def;
                memcpy(p, &v, sizeof v);
            }
        } else if (k->fn == key_bool) {
            bool b = k->def != 0;
            memcpy(p, &b, sizeof b);
        } else if (k->fn == key_enum) {
            int e = (int)k->def;
            memcpy(p, &e, sizeof e);
        } else if (k->fn == key_object) {
            apply_defaults(x, k->arg, p);
        } else if (k->sdef) {
            const char *s = k->fn == key_path ? resolve(x, k->sdef) : xstrdup(x, k->sdef);
            memcpy(p, &s, sizeof s);
        }
    }
}

/* A key that is not in the table: say so, and guess what was meant. */
static void unknown_key(struct ctx *x, const cJSON *m, const char *path, const struct table *t);

/*
 * Check obj against t, storing into base. Returns the set of keys present
 * (bit i = t->keys[i]).
 */
static uint64_t walk_object(struct ctx *x, const cJSON *obj, const char *path,
                            const struct table *t, void *base)
{
    char d[DIAG_SHOWBUF];
    if (!cJSON_IsObject(obj)) {
        err(x, obj, path, "expected an object { ... }, got %s", describe(x, obj, d, sizeof d));
        return 0;
    }
    uint64_t seen = 0;
    const cJSON *first[64] = {0};
    for (const cJSON *m = obj->child; m; m = m->next) {
        size_t i;
        for (i = 0; i < t->n; i++)
            if (strcmp(m->string, t->keys[i].name) == 0)
                break;
        if (i == t->n) {
            unknown_key(x, m, path, t);
            continue;
        }
        char sub[PATH_MAX_LEN];
        diag_path_key(sub, sizeof sub, path, m->string);
        if (seen & (UINT64_C(1) << i)) {
            err(x, m, sub, "given twice (first on line %u); remove one", line_of(x, first[i]));
            continue;
        }
        seen |= UINT64_C(1) << i;
        first[i] = m;
        if (t->keys[i].notice)
            note(x, m, sub, "%s", t->keys[i].notice);
        t->keys[i].fn(x, m, sub, base, &t->keys[i]);
    }
    for (size_t i = 0; i < t->n; i++)
        if (t->keys[i].required && !(seen & (UINT64_C(1) << i)))
            err(x, obj, path, "missing \"%s\": %s", t->keys[i].name, t->keys[i].required);
    return seen;
}

/* ---- listen addresses ---- */

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* p[0..n) as an IPv6 literal (no brackets). */
static bool parse_ipv6(const char *p, size_t n, struct in6_addr *out)
{
    char h[INET6_ADDRSTRLEN + 8];
    if (n >= sizeof h)
        return false;
    memcpy(h, p, n);
    h[n] = '\0';
    return inet_pton(AF_INET6, h, out) == 1;
}

/* Parse "host:port" into a (host allocated in the arena). Returns 0, or -1
 * with why filled. */
static int parse_addr(struct ctx *x, const char *s, struct cfg_addr *a, char *why, size_t whysz)
{
    char q[DIAG_SHOWBUF];
    const char *host, *port;
    size_t hl;
    memset(a, 0, sizeof *a);
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb) {
            snprintf(why, whysz,
                     "has \"[\" without \"]\": write IPv6 addresses like \"[::1]:8080\"");
            return -1;
        }
        host = s + 1;
        hl = (size_t)(rb - host);
        if (rb[1] != ':') {
            snprintf(why, whysz, "needs \":PORT\" after the \"]\", e.g. \"[::1]:8080\"");
            return -1;
        }
        port = rb + 2;
        struct in6_addr a6;
        if (!parse_ipv6(host, hl, &a6)) {
            char hs[64];
            snprintf(hs, sizeof hs, "%.*s", (int)(hl < 60 ? hl : 60), host);
            snprintf(why, whysz, "%s is not an IPv6 address", DIAG_SHOW(q, hs));
            return -1;
        }
        char canon[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &a6, canon, sizeof canon);
        a->host = xstrdup(x, canon);
        a->family = AF_INET6;
        a->wildcard = IN6_IS_ADDR_UNSPECIFIED(&a6);
        a->loopback =
            IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            if (all_digits(s, strlen(s)))
                snprintf(why, whysz,
                         "has no host: write \"127.0.0.1:%.8s\" (this machine only) or "
                         "\"0.0.0.0:%.8s\" (every IPv4 interface)",
                         s, s);
            else
                snprintf(why, whysz, "has no port: write \"HOST:PORT\", e.g. \"127.0.0.1:8080\"");
            return -1;
        }
        host = s;
        hl = (size_t)(colon - s);
        port = colon + 1;
        if (memchr(host, ':', hl)) {
            snprintf(why, whysz, "IPv6 addresses go in brackets: \"[::1]:8080\", \"[::]:8080\"");
            return -1;
        }
        if (hl == 0) {
            snprintf(why, whysz,
                     "has no host: write \"127.0.0.1%s\" (this machine only) or \"0.0.0.0%s\" "
                     "(every IPv4 interface)",
                     strlen(colon) < 8 ? colon : ":PORT", strlen(colon) < 8 ? colon : ":PORT");
            return -1;
        }
        char h[64];
        if (hl >= sizeof h) {
            snprintf(why, whysz, "the host is too long: give an IP address or \"localhost\"");
            return -1;
        }
        memcpy(h, host, hl);
        h[hl] = '\0';
        struct in_addr a4;
        if (strcasecmp(h, "localhost") == 0) {
            a->host = xstrdup(x, "localhost");
            a->family = AF_UNSPEC;
            a->loopback = true;
        } else if (inet_pton(AF_INET, h, &a4) == 1) {
            char canon[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &a4, canon, sizeof canon);
            a->host = xstrdup(x, canon);
            a->family = AF_INET;
            a->wildcard = a4.s_addr == htonl(INADDR_ANY);
            a->loopback = (ntohl(a4.s_addr) >> 24) == 127;
        } else if (strcmp(h, "*") == 0) {
            snprintf(why, whysz,
                     "\"*\" is not an address: write \"0.0.0.0:PORT\" (every IPv4 interface) "
                     "or \"[::]:PORT\" (every IPv6 interface)");
            return -1;
        } else {
            snprintf(why, whysz,
                     "%s is not an IP address: give one of this machine's addresses (e.g. "
                     "127.0.0.1, or 0.0.0.0 for all) or \"localhost\"; host names are not "
                     "resolved",
                     DIAG_SHOW(q, h));
            return -1;
        }
    }
    unsigned long long pv;
    const char *why2;
    if (!all_digits(port, strlen(port)) ||
        parse_uint(port, strlen(port), 1, 65535, &pv, &why2) < 0) {
        snprintf(why, whysz, "the port %s is not a number from 1 to 65535", DIAG_SHOW(q, port));
        return -1;
    }
    a->port = (unsigned)pv;
    a->text = xstrdup(x, s);
    return 0;
}

/* Would binding both a and b fail, or listen twice? */
static bool addr_overlap(const struct cfg_addr *a, const struct cfg_addr *b)
{
    if (!a->host || !b->host || a->port != b->port)
        return false;
    if (a->family == b->family && strcmp(a->host, b->host) == 0)
        return true;
    /* "localhost" is bound as the loopback address itself */
    if (a->family == AF_UNSPEC &&
        (strcmp(b->host, "127.0.0.1") == 0 || strcmp(b->host, "::1") == 0))
        return true;
    if (b->family == AF_UNSPEC &&
        (strcmp(a->host, "127.0.0.1") == 0 || strcmp(a->host, "::1") == 0))
        return true;
    bool v4a = a->family == AF_INET || a->family == AF_UNSPEC;
    bool v4b = b->family == AF_INET || b->family == AF_UNSPEC;
    bool v6a = a->family == AF_INET6 || a->family == AF_UNSPEC;
    bool v6b = b->family == AF_INET6 || b->family == AF_UNSPEC;
    if (a->family == AF_INET && a->wildcard && v4b)
        return true;
    if (b->family == AF_INET && b->wildcard && v4a)
        return true;
    if (a->family == AF_INET6 && a->wildcard && v6b)
        return true;
    if (b->family == AF_INET6 && b->wildcard && v6a)
        return true;
    return false;
}

static void key_listen(struct ctx *x, const cJSON *v, const char *path, void *base,
                       const struct key *k)
{
    (void)base;
    (void)k;
    char d[DIAG_SHOWBUF], why[320], sub[PATH_MAX_LEN];
    size_t n;
    if (cJSON_IsString(v)) {
        n = 1;
    } else if (cJSON_IsArray(v)) {
        n = (size_t)cJSON_GetArraySize(v);
        if (n == 0) {
            err(x, v, path, "is empty: list at least one \"host:port\", e.g. [\"127.0.0.1:8080\"]");
            return;
        }
        if (n > CFG_MAX_LISTEN) {
            err(x, v, path, "lists %zu addresses; at most %d are supported", n, CFG_MAX_LISTEN);
            return;
        }
    } else {
        err(x, v, path,
            "expected a list of \"host:port\" strings, e.g. [\"127.0.0.1:8080\"], got %s",
            describe(x, v, d, sizeof d));
        return;
    }
    struct cfg_addr *addrs = xalloc_array(x, n, sizeof *addrs);
    if (!addrs)
        return;
    size_t got = 0;
    const cJSON *e = cJSON_IsString(v) ? v : v->child;
    for (size_t i = 0; e && i < n; i++, e = cJSON_IsString(v) ? NULL : e->next) {
        if (cJSON_IsString(v))
            snprintf(sub, sizeof sub, "%s", path);
        else
            diag_path_index(sub, sizeof sub, path, i);
        const char *s = get_string(x, e, sub, "\"host:port\"");
        if (!s)
            continue;
        struct cfg_addr a;
        if (parse_addr(x, s, &a, why, sizeof why) < 0) {
            err(x, e, sub, "%s: %s", DIAG_SHOW(d, s), why);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < got; j++) {
            if (addr_overlap(&addrs[j], &a)) {
                char d2[DIAG_SHOWBUF];
                if (addrs[j].family == a.family && strcmp(addrs[j].host, a.host) == 0)
                    err(x, e, sub, "%s is listed twice", DIAG_SHOW(d, s));
                else
                    err(x, e, sub, "%s overlaps %s: one socket cannot take the other's port",
                        DIAG_SHOW(d, s), DIAG_SHOW(d2, addrs[j].text));
                dup = true;
                break;
            }
        }
        if (!dup)
            addrs[got++] = a;
    }
    x->c->listen = addrs;
    x->c->nlisten = got;
}

static void key_addr(struct ctx *x, const cJSON *v, const char *path, void *base,
                     const struct key *k)
{
    char d[DIAG_SHOWBUF], why[320];
    const char *s = get_string(x, v, path, "\"host:port\", e.g. \"127.0.0.1:9464\"");
    if (!s)
        return;
    struct cfg_addr a;
    if (parse_addr(x, s, &a, why, sizeof why) < 0) {
        err(x, v, path, "%s: %s", DIAG_SHOW(d, s), why);
        return;
    }
    memcpy((char *)base + k->off, &a, sizeof a);
}

/* ---- URLs ---- */

/*
 * "http[s]://host[:port][/]" -> "http[s]://host[:port]" in the arena, scheme
 * lower-cased. For an origin (CORS) the host is lower-cased too. Returns
 * NULL with why filled (never echoing user info or query: they may be secret).
 */
static char *parse_url(struct ctx *x, const char *s, bool origin, char *why, size_t whysz)
{
    char q[DIAG_SHOWBUF];
    size_t skip;
    if (strncasecmp(s, "http://", 7) == 0) {
        skip = 7;
    } else if (strncasecmp(s, "https://", 8) == 0) {
        skip = 8;
    } else if (!strstr(s, "://")) {
        snprintf(why, whysz, "%s has no scheme: write \"http://%.64s\"", DIAG_SHOW(q, s), s);
        return NULL;
    } else {
        snprintf(why, whysz, "must start with http:// or https://");
        return NULL;
    }
    const char *auth = s + skip;
    size_t al = strcspn(auth, "/?#");
    const char *rest = auth + al;
    if (memchr(auth, '@', al)) {
        snprintf(why, whysz,
                 "must not hold credentials (user:password@): send them in \"headers\" "
                 "instead, e.g. {\"Authorization\": \"Basic ...\"}");
        return NULL;
    }
    if (al == 0) {
        snprintf(why, whysz, "has no host");
        return NULL;
    }
    const char *hend;
    if (auth[0] == '[') {
        const char *rb = memchr(auth, ']', al);
        struct in6_addr a6;
        if (!rb || !parse_ipv6(auth + 1, (size_t)(rb - auth - 1), &a6)) {
            snprintf(why, whysz, "has a bad IPv6 host: write it like \"http://[::1]:11434\"");
            return NULL;
        }
        hend = rb + 1;
    } else {
        hend = auth;
        while (hend < auth + al && *hend != ':') {
            char ch = *hend;
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_')) {
                snprintf(why, whysz, "the host has a character that cannot be in a host name");
                return NULL;
            }
            hend++;
        }
        if (hend == auth) {
            snprintf(why, whysz, "has no host");
            return NULL;
        }
    }
    if (hend < auth + al) {
        unsigned long long pv;
        const char *w;
        if (*hend != ':' ||
            parse_uint(hend + 1, (size_t)(auth + al - hend - 1), 1, 65535, &pv, &w) < 0) {
            snprintf(why, whysz, "the port must be a number from 1 to 65535");
            return NULL;
        }
    }
    if (rest[0] && strcmp(rest, "/") != 0 && origin) {
        snprintf(why, whysz, "an origin has no path: write \"%.*s%.*s\"", (int)skip, s,
                 (int)(al < 200 ? al : 200), auth);
        return NULL;
    }
    if (rest[0] && strcmp(rest, "/") != 0) {
        snprintf(why, whysz,
                 "must not have a path, query or fragment (the gateway adds /api/chat and the "
                 "like): write \"%.*s%.*s\"",
                 (int)skip, s, (int)(al < 200 ? al : 200), auth);
        return NULL;
    }
    char *out = xstrndup(x, s, skip + al);
    if (!out)
        return NULL;
    for (size_t i = 0; i < skip; i++)
        out[i] = (char)(out[i] >= 'A' && out[i] <= 'Z' ? out[i] + 32 : out[i]);
    if (origin) /* browsers send it lower-case */
        for (size_t i = skip; out[i]; i++)
            out[i] = (char)(out[i] >= 'A' && out[i] <= 'Z' ? out[i] + 32 : out[i]);
    return out;
}

/* ---- backends ---- */

static bool backend_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return false;
    return true;
}

static void key_bname(struct ctx *x, const cJSON *v, const char *path, void *base,
                      const struct key *k)
{
    (void)k;
    char d[DIAG_SHOWBUF];
    const char *s = get_string(x, v, path, "a short name like \"gpu1\"");
    if (!s)
        return;
    if (!backend_name_ok(s)) {
        err(x, v, path, "%s: use 1 to 64 letters, digits, '_', '.' or '-' (e.g. \"gpu1\")",
            DIAG_SHOW(d, s));
        return;
    }
    ((struct cfg_backend *)base)->name = xstrdup(x, s);
}

static void key_url(struct ctx *x, const cJSON *v, const char *path, void *base,
                    const struct key *k)
{
    (void)k;
    char why[400];
    const char *s =
        get_string(x, v, path, "the Ollama server's URL, e.g. \"http://127.0.0.1:11434\"");
    if (!s)
        return;
    char *u = parse_url(x, s, false, why, sizeof why);
    if (!u) {
        if (!x->oom)
            err(x, v, path, "%s", why);
        return;
    }
    ((struct cfg_backend *)base)->url = u;
}

static bool is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

struct named {
    const char *name;
    const cJSON *item;
    size_t idx;
};

static int cmp_named(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_named_icase(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcasecmp(x->name, y->name);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_name_only(const void *a, const void *b)
{
    return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

/* Sort v and call dup(first, again) for each name seen before. */
static void find_dups(struct ctx *x, struct named *v, size_t n, bool icase,
                      void (*dup)(struct ctx *, const struct named *, const struct named *,
                                  const void *),
                      const void *ud)
{
    if (n < 2)
        return;
    qsort(v, n, sizeof *v, icase ? cmp_named_icase : cmp_named);
    size_t first = 0;
    for (size_t i = 1; i < n; i++) {
        bool same = icase ? strcasecmp(v[i].name, v[first].name) == 0
                          : strcmp(v[i].name, v[first].name) == 0;
        if (same)
            dup(x, &v[first], &v[i], ud);
        else
            first = i;
    }
}

static const char *const reserved_headers[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                               "Content-Type", NULL};

static void header_dup(struct ctx *x, const struct named *first, const struct named *again,
                       const void *ud)
{
    char sub[PATH_MAX_LEN];
    diag_path_key(sub, sizeof sub, ud, again->name);
    err(x, again->item, sub, "set twice (first on line %u; header names ignore case); remove one",
        line_of(x, first->item));
}

static void key_headers(struct ctx *x, const cJSON *v, const char *path, void *base,
                        const struct key *k)
{
    (void)k;
    char d[DIAG_SHOWBUF], sub[PATH_MAX_LEN];
    struct cfg_backend *b = base;
    if (!cJSON_IsObject(v)) {
        err(x, v, path,
            "expected an object of header names and values, e.g. "
            "{\"Authorization\": \"Bearer ...\"}, got %s",
            describe(x, v, d, sizeof d));
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    const char **lines = xalloc_array(x, n + 1, sizeof *lines);
    struct named *names = calloc(n ? n : 1, sizeof *names);
    if (!lines || !names) {
        x->oom = true;
        free(names);
        return;
    }
    size_t got = 0, nn = 0;
    for (const cJSON *h = v->child; h; h = h->next) {
        diag_path_key(sub, sizeof sub, path, h->string);
        const char *name = h->string;
        bool ok = name[0] != '\0';
        for (const char *p = name; *p && ok; p++)
            ok = is_tchar(*p);
        if (!ok) {
            err(x, h, sub, "%s is not a header name (letters, digits and !#$%%&'*+-.^_`|~ only)",
                DIAG_SHOW(d, name));
            continue;
        }
        names[nn] = (struct named){name, h, nn};
        nn++;
        bool reserved = false;
        for (size_t i = 0; reserved_headers[i]; i++)
            reserved = reserved || strcasecmp(name, reserved_headers[i]) == 0;
        if (reserved) {
            err(x, h, sub, "is set by the gateway itself and cannot be configured");
            continue;
        }
        if (!cJSON_IsString(h)) {
            err(x, h, sub, "expected the header's value as a string, got %s",
                describe(x, h, d, sizeof d));
            continue;
        }
        bool clean = true;
        for (const char *p = h->valuestring; *p; p++)
            if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
                clean = false;
        if (!clean) {
            /* Never echo a header value: it is often a secret. */
            err(x, h, sub, "the value has a line break or control character; remove it");
            continue;
        }
        size_t nl = strlen(name), vl = strlen(h->valuestring);
        char *line = xalloc(x, nl + vl + 3);
        if (!line)
            break;
        memcpy(line, name, nl);
        if (vl) {
            memcpy(line + nl, ": ", 2);
            memcpy(line + nl + 2, h->valuestring, vl + 1);
        } else {
            memcpy(line + nl, ";", 2); /* curl: "Name;" sends an empty header */
        }
        lines[got++] = line;
    }
    lines[got] = NULL;
    find_dups(x, names, nn, true, header_dup, path);
    free(names);
    b->headers = lines;
    b->nheaders = got;
}

static const struct key backend_keys[] = {
    {.name = "name", .fn = key_bname},
    {.name = "url",
     .fn = key_url,
     .required = "the Ollama server's address, e.g. \"url\": \"http://127.0.0.1:11434\""},
    {.name = "max_inflight",
     .fn = key_uint,
     .off = offsetof(struct cfg_backend, max_inflight),
     .width = sizeof(unsigned),
     .min = 0,
     .max = 100000,
     .def = 0},
    {.name = "max_queue",
     .fn = key_uint,
     .off = offsetof(struct cfg_backend, max_queue),
     .width = sizeof(unsigned),
     .min = 0,
     .max = 100000,
     .def = 100},
    {.name = "weight",
     .fn = key_uint,
     .off = offsetof(struct cfg_backend, weight),
     .width = sizeof(unsigned),
     .min = 1,
     .max = 1000,
     .def = 1},
    {.name = "headers", .fn = key_headers},
};
static const struct table backend_table = TABLE(backend_keys);

static void backend_dup(struct ctx *x, const struct named *first, const struct named *again,
                        const void *ud)
{
    (void)ud;
    char sub[PATH_MAX_LEN], d[DIAG_SHOWBUF];
    snprintf(sub, sizeof sub, "backends[%zu].name", again->idx);
    err(x, again->item, sub,
        "%s is already the name of backends[%zu] (line %u); names must be unique",
        DIAG_SHOW(d, again->name), first->idx, line_of(x, first->item));
}

static void key_backends(struct ctx *x, const cJSON *v, const char *path, void *base,
                         const struct key *k)
{
    (void)base;
    (void)k;
    char d[DIAG_SHOWBUF], sub[PATH_MAX_LEN];
    if (!cJSON_IsArray(v)) {
        err(x, v, path,
            "expected a list of backends, e.g. [{\"name\": \"local\", \"url\": "
            "\"http://127.0.0.1:11434\"}], got %s",
            describe(x, v, d, sizeof d));
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0) {
        err(x, v, path,
            "is empty: list at least one Ollama server, e.g. [{\"name\": \"local\", "
            "\"url\": \"http://127.0.0.1:11434\"}]");
        return;
    }
    if (n > CFG_MAX_BACKENDS) {
        err(x, v, path, "lists %zu backends; at most %d are supported", n, CFG_MAX_BACKENDS);
        return;
    }
    struct cfg_backend *bs = xalloc_array(x, n, sizeof *bs);
    struct named *names = calloc(n, sizeof *names);
    if (!bs || !names) {
        x->oom = true;
        free(names);
        return;
    }
    size_t i = 0, nn = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        struct cfg_backend *b = &bs[i];
        diag_path_index(sub, sizeof sub, path, i);
        apply_defaults(x, &backend_table, b);
        walk_object(x, e, sub, &backend_table, b);
        if (!b->name) {
            char def[32];
            snprintf(def, sizeof def, "backend%zu", i);
            b->name = xstrdup(x, def);
        }
        if (!b->headers) {
            const char **none = xalloc(x, sizeof *none);
            b->headers = none;
        }
        const cJSON *ne = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "name") : NULL;
        if (b->name)
            names[nn++] = (struct named){b->name, ne ? ne : e, i};
    }
    find_dups(x, names, nn, false, backend_dup, NULL); /* sorts names */
    x->bnames = names;
    x->nbnames = nn;
    x->c->backends = bs;
    x->c->nbackends = n;
    x->backends_ok = true;
}

/* ---- aliases ---- */

static bool model_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 256)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* One model name of an alias; NULL after reporting why it is not one. */
static const char *model_name(struct ctx *x, const cJSON *v, const char *path)
{
    char d[DIAG_SHOWBUF];
    const char *s = get_string(x, v, path, "an Ollama model name, e.g. \"llama3.2\"");
    if (!s)
        return NULL;
    if (!model_name_ok(s)) {
        err(x, v, path,
            "%s is not a model name (no spaces or control characters, at most 256 "
            "bytes)",
            DIAG_SHOW(d, s));
        return NULL;
    }
    return xstrdup(x, s);
}

/* "model": "name", or a list of the names one model has on different
 * backends (each backend is sent the first of them it lists). */
static void key_model(struct ctx *x, const cJSON *v, const char *path, void *base,
                      const struct key *k)
{
    (void)k;
    char d[DIAG_SHOWBUF], sub[PATH_MAX_LEN];
    struct cfg_alias *a = base;
    size_t n = cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 1;
    if (cJSON_IsArray(v) && (n == 0 || n > 64)) {
        err(x, v, path, "lists %zu names; give 1 to 64 names of the model", n);
        return;
    }
    if (!cJSON_IsArray(v) && !cJSON_IsString(v)) {
        err(x, v, path,
            "expected an Ollama model name, e.g. \"llama3.2\", or a list of the names it has "
            "on different backends, got %s",
            describe(x, v, d, sizeof d));
        return;
    }
    const char **names = xalloc_array(x, n + 1, sizeof *names);
    if (!names)
        return;
    size_t got = 0, i = 0;
    if (!cJSON_IsArray(v)) {
        if ((names[0] = model_name(x, v, path)))
            got = 1;
    } else {
        for (const cJSON *e = v->child; e; e = e->next, i++) {
            diag_path_index(sub, sizeof sub, path, i);
            if ((names[got] = model_name(x, e, sub)))
                got++;
        }
    }
    if (got != n)
        return;
    names[got] = NULL;
    a->model = names[0];
    a->models = names;
    a->nmodels = got;
}

static void key_options(struct ctx *x, const cJSON *v, const char *path, void *base,
                        const struct key *k)
{
    (void)k;
    char d[DIAG_SHOWBUF], sub[PATH_MAX_LEN];
    if (!cJSON_IsObject(v)) {
        err(x, v, path, "expected an object of Ollama options, e.g. {\"num_ctx\": 8192}, got %s",
            describe(x, v, d, sizeof d));
        return;
    }
    bool ok = true;
    for (const cJSON *o = v->child; o; o = o->next) {
        if (cJSON_IsNumber(o) || cJSON_IsString(o) || cJSON_IsBool(o) || cJSON_IsArray(o))
            continue;
        diag_path_key(sub, sizeof sub, path, o->string);
        err(x, o, sub, "expected a number, string, boolean or array, got %s",
            describe(x, o, d, sizeof d));
        ok = false;
    }
    if (ok)
        ((struct cfg_alias *)base)->options = v;
}

static void alias_backend_dup(struct ctx *x, const struct named *first, const struct named *again,
                              const void *ud)
{
    (void)first;
    char sub[PATH_MAX_LEN], d[DIAG_SHOWBUF];
    diag_path_index(sub, sizeof sub, ud, again->idx);
    err(x, again->item, sub, "%s is listed twice", DIAG_SHOW(d, again->name));
}

static void key_alias_backends(struct ctx *x, const cJSON *v, const char *path, void *base,
                               const struct key *k)
{
    (void)k;
    char d[DIAG_SHOWBUF], sub[PATH_MAX_LEN];
    struct cfg_alias *a = base;
    if (!cJSON_IsArray(v)) {
        err(x, v, path, "expected a list of backend names, e.g. [\"gpu1\"], got %s",
            describe(x, v, d, sizeof d));
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0) {
        err(x, v, path, "is empty: name at least one backend, or remove the key to allow any");
        return;
    }
    const char **names = xalloc_array(x, n + 1, sizeof *names);
    unsigned *idx = xalloc_array(x, n, sizeof *idx);
    struct named *nv = calloc(n, sizeof *nv);
    if (!names || !idx || !nv) {
        x->oom = true;
        free(nv);
        return;
    }
    size_t got = 0, i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        diag_path_index(sub, sizeof sub, path, i);
        const char *s = get_string(x, e, sub, "a backend name");
        if (!s)
            continue;
        struct named key = {.name = s};
        const struct named *hit =
            x->nbnames ? bsearch(&key, x->bnames, x->nbnames, sizeof key, cmp_name_only) : NULL;
        if (!hit) {
            if (x->backends_ok && x->errs.n >= CFG_MAX_ERRORS) {
                x->errs.total++; /* not shown: spare the guessing */
            } else if (x->backends_ok) {
                const char *cands[16];
                size_t nc = 0;
                for (size_t b = 0; b < x->c->nbackends && nc < 16; b++)
                    if (x->c->backends[b].name)
                        cands[nc++] = x->c->backends[b].name;
                const char *sg = diag_suggest(s, cands, nc);
                if (sg)
                    err(x, e, sub, "no backend is named %s (did you mean \"%s\"?)", DIAG_SHOW(d, s),
                        sg);
                else
                    err(x, e, sub, "no backend is named %s; the names are set in \"backends\"",
                        DIAG_SHOW(d, s));
            }
            continue;
        }
        nv[got] = (struct named){hit->name, e, i};
        names[got] = hit->name;
        idx[got++] = (unsigned)hit->idx;
    }
    find_dups(x, nv, got, false, alias_backend_dup, path);
    free(nv);
    names[got] = NULL;
    a->backends = names;
    a->backend_index = idx;
    a->nbackends = got;
}

static const struct key alias_keys[] = {
    {.name = "model",
     .fn = key_model,
     .required = "the Ollama model to use, e.g. \"model\": \"llama3.2\""},
    {.name = "options", .fn = key_options},
    {.name = "backends", .fn = key_alias_backends},
};
static const struct table alias_table = TABLE(alias_keys);

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static void alias_dup(struct ctx *x, const struct named *first, const struct named *again,
                      const void *ud)
{
    (void)ud;
    char sub[PATH_MAX_LEN];
    diag_path_key(sub, sizeof sub, "aliases", again->name);
    err(x, again->item, sub, "defined twice (first on line %u); remove one",
        line_of(x, first->item));
}

static int cmp_alias_ptr(const void *a, const void *b)
{
    const struct cfg_alias *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static void parse_aliases(struct ctx *x, const cJSON *v)
{
    char d[DIAG_SHOWBUF], sub[PATH_MAX_LEN];
    const char *path = "aliases";
    if (!cJSON_IsObject(v)) {
        err(x, v, path,
            "expected an object of client-facing names and models, e.g. "
            "{\"gpt-3.5-turbo\": \"llama3.2\"}, got %s",
            describe(x, v, d, sizeof d));
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0)
        return;
    struct cfg_alias *as = xalloc_array(x, n, sizeof *as);
    struct named *names = calloc(n, sizeof *names);
    if (!as || !names) {
        x->oom = true;
        free(names);
        return;
    }
    size_t got = 0, i = 0;
    for (const cJSON *m = v->child; m; m = m->next, i++) {
        diag_path_key(sub, sizeof sub, path, m->string);
        const char *name = m->string;
        if (!model_name_ok(name)) {
            err(x, m, path,
                "%s is not a usable model name (non-empty, no spaces or control "
                "characters, at most 256 bytes)",
                DIAG_SHOW(d, name));
            continue;
        }
        struct cfg_alias *a = &as[got];
        memset(a, 0, sizeof *a);
        if (cJSON_IsString(m)) {
            key_model(x, m, sub, a, NULL);
        } else if (cJSON_IsObject(m)) {
            walk_object(x, m, sub, &alias_table, a);
        } else {
            err(x, m, sub, "expected a model name or {\"model\": ..., \"options\": {...}}, got %s",
                describe(x, m, d, sizeof d));
            continue;
        }
        if (!a->model)
            continue;
        a->name = xstrdup(x, name);
        a->glob = has_glob(name);
        a->order = (unsigned)i;
        names[got] = (struct named){name, m, i};
        got++;
    }
    find_dups(x, names, got, false, alias_dup, NULL);
    free(names);
    x->c->aliases = as;
    x->c->naliases = got;
}

/* The indexes router.c searches: exact names sorted, globs in file order. */
static void index_aliases(struct ctx *x)
{
    struct cfg *c = x->c;
    size_t ne = 0, ng = 0;
    for (size_t i = 0; i < c->naliases; i++)
        *(c->aliases[i].glob ? &ng : &ne) += 1;
    const struct cfg_alias **ex = xalloc_array(x, ne ? ne : 1, sizeof *ex);
    const struct cfg_alias **gl = xalloc_array(x, ng ? ng : 1, sizeof *gl);
    if (!ex || !gl)
        return;
    ne = ng = 0;
    for (size_t i = 0; i < c->naliases; i++) {
        if (c->aliases[i].glob)
            gl[ng++] = &c->aliases[i];
        else
            ex[ne++] = &c->aliases[i];
    }
    if (ne > 1)
        qsort(ex, ne, sizeof *ex, cmp_alias_ptr);
    c->exact = ex;
    c->nexact = ne;
    c->globs = gl;
    c->nglobs = ng;
}

/* ---- cors, log, metrics, tls, limits ---- */

/* The anonymous structs inside struct cfg, named for the tables. */
typedef __typeof__(((struct cfg *)0)->tls) cfg_tls_t;
typedef __typeof__(((struct cfg *)0)->log) cfg_log_t;
typedef __typeof__(((struct cfg *)0)->cors) cfg_cors_t;
typedef __typeof__(((struct cfg *)0)->metrics) cfg_metrics_t;

static void key_origins(struct ctx *x, const cJSON *v, const char *path, void *base,
                        const struct key *k)
{
    (void)k;
    char d[DIAG_SHOWBUF], sub[PATH_MAX_LEN], why[400];
    if (!cJSON_IsArray(v)) {
        err(x, v, path,
            "expected a list of origins, e.g. [\"https://app.example.com\"] or "
            "[\"*\"], got %s",
            describe(x, v, d, sizeof d));
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    const char **o = xalloc_array(x, n + 1, sizeof *o);
    if (!o)
        return;
    size_t got = 0, i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        diag_path_index(sub, sizeof sub, path, i);
        const char *s = get_string(x, e, sub, "an origin like \"https://app.example.com\"");
        if (!s)
            continue;
        if (strcmp(s, "*") == 0) {
            o[got++] = xstrdup(x, "*");
            continue;
        }
        char *u = parse_url(x, s, true, why, sizeof why);
        if (!u) {
            if (!x->oom)
                err(x, e, sub,
                    "%s: %s (an origin is \"*\" or scheme://host[:port], like "
                    "\"https://app.example.com\")",
                    DIAG_SHOW(d, s), why);
            continue;
        }
        o[got++] = u;
    }
    o[got] = NULL;
    cfg_cors_t *cors = base;
    cors->origins = o;
    cors->norigins = got;
}

static void key_access(struct ctx *x, const cJSON *v, const char *path, void *base,
                       const struct key *k)
{
    const char *s = get_string(x, v, path, "\"-\" (stdout), \"off\", or a file path");
    if (!s)
        return;
    const char *r = NULL;
    if (strcmp(s, "-") == 0)
        r = xstrdup(x, "-");
    else if (strcmp(s, "off") != 0)
        r = resolve(x, s);
    memcpy((char *)base + k->off, &r, sizeof r);
}

static void key_metrics(struct ctx *x, const cJSON *v, const char *path, void *base,
                        const struct key *k);

static const struct key tls_keys[] = {
    {.name = "cert",
     .fn = key_path,
     .off = offsetof(cfg_tls_t, cert),
     .required = "the certificate chain, PEM, e.g. \"cert\": \"cert.pem\""},
    {.name = "key",
     .fn = key_path,
     .off = offsetof(cfg_tls_t, key),
     .required = "the private key, PEM, e.g. \"key\": \"key.pem\""},
};
static const struct table tls_table = TABLE(tls_keys);

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const struct key log_keys[] = {
    {.name = "level",
     .fn = key_enum,
     .off = offsetof(cfg_log_t, level),
     .def = LOG_LEVEL_INFO,
     .arg = log_levels},
    {.name = "access", .fn = key_access, .off = offsetof(cfg_log_t, access), .sdef = "-"},
};
static const struct table log_table = TABLE(log_keys);

static const struct key cors_keys[] = {
    {.name = "origins", .fn = key_origins},
};
static const struct table cors_table = TABLE(cors_keys);

static const struct key metrics_keys[] = {
    {.name = "listen",
     .fn = key_addr,
     .off = offsetof(cfg_metrics_t, listen),
     .required = "where /metrics is served, e.g. \"listen\": \"127.0.0.1:9464\""},
};
static const struct table metrics_table = TABLE(metrics_keys);

#define LIMIT(n, f, lo, hi, d)                                                                     \
    .name = n, .fn = key_uint, .off = offsetof(struct cfg_limits, f),                              \
    .width = sizeof(((struct cfg_limits *)0)->f), .min = lo, .max = hi, .def = d

static const struct key limits_keys[] = {
    {LIMIT("max_body_bytes", max_body_bytes, 1024, 1073741824, 16777216)},
    {LIMIT("max_connections", max_connections, 1, 1000000, 10000)},
    {LIMIT("header_timeout_s", header_timeout_s, 1, 3600, 10)},
    {LIMIT("first_token_timeout_s", first_token_timeout_s, 1, 86400, 300)},
    {LIMIT("idle_stream_timeout_s", idle_stream_timeout_s, 1, 86400, 120)},
    {LIMIT("queue_timeout_s", queue_timeout_s, 1, 3600, 30)},
    {LIMIT("keepalive_interval_s", keepalive_interval_s, 1, 3600, 5)},
    {LIMIT("auth_failures_per_minute", auth_failures_per_minute, 0, 1000000, 10)},
};
static const struct table limits_table = TABLE(limits_keys);

static void key_metrics(struct ctx *x, const cJSON *v, const char *path, void *base,
                        const struct key *k)
{
    cfg_metrics_t *m = (cfg_metrics_t *)((char *)base + k->off);
    uint64_t seen = walk_object(x, v, path, &metrics_table, m);
    m->enabled = (seen & key_bit(&metrics_table, "listen")) && m->listen.host;
}

static void key_aliases(struct ctx *x, const cJSON *v, const char *path, void *base,
                        const struct key *k)
{
    (void)path;
    (void)base;
    (void)k;
    x->aliases = v; /* checked once the backends are known */
}

static void key_auth(struct ctx *x, const cJSON *v, const char *path, void *base,
                     const struct key *k)
{
    x->auth_item = v;
    key_enum(x, v, path, base, k);
}

static const char *const auth_choices[] = {"keys", "none", NULL};

static const struct key top_keys[] = {
    {.name = "listen", .fn = key_listen},
    {.name = "tls",
     .fn = key_object,
     .off = offsetof(struct cfg, tls),
     .arg = &tls_table,
     .notice = "not in force yet: the listeners speak plain HTTP"},
    {.name = "workers",
     .fn = key_uint,
     .off = offsetof(struct cfg, workers),
     .width = sizeof(unsigned),
     .min = 0,
     .max = 256,
     .def = 0},
    {.name = "keys_file",
     .fn = key_path,
     .off = offsetof(struct cfg, keys_file),
     .sdef = "keys.json"},
    {.name = "auth",
     .fn = key_auth,
     .off = offsetof(struct cfg, auth),
     .def = CFG_AUTH_KEYS,
     .arg = auth_choices},
    {.name = "allow_unauthenticated_public",
     .fn = key_bool,
     .off = offsetof(struct cfg, allow_unauthenticated_public),
     .def = 0},
    {.name = "backends",
     .fn = key_backends,
     .required = "list the Ollama servers, e.g. \"backends\": [{\"name\": \"local\", \"url\": "
                 "\"http://127.0.0.1:11434\"}]"},
    {.name = "aliases", .fn = key_aliases},
    {.name = "discovery_interval_s",
     .fn = key_uint,
     .off = offsetof(struct cfg, discovery_interval_s),
     .width = sizeof(unsigned),
     .min = 1,
     .max = 3600,
     .def = 5},
    {.name = "expose_backend_models",
     .fn = key_bool,
     .off = offsetof(struct cfg, expose_backend_models),
     .def = 1},
    {.name = "limits", .fn = key_object, .off = offsetof(struct cfg, limits), .arg = &limits_table},
    {.name = "cors",
     .fn = key_object,
     .off = offsetof(struct cfg, cors),
     .arg = &cors_table,
     .notice = "not in force yet: no CORS headers are sent"},
    {.name = "log", .fn = key_object, .off = offsetof(struct cfg, log), .arg = &log_table},
    {.name = "metrics",
     .fn = key_metrics,
     .off = offsetof(struct cfg, metrics),
     .notice = "not in force yet: no metrics listener is started"},
};
static const struct table top_table = TABLE(top_keys);

/* key_auth is an enum too, for apply_defaults. */
static void apply_top_defaults(struct ctx *x)
{
    apply_defaults(x, &top_table, x->c);
    x->c->auth = CFG_AUTH_KEYS;
}

/* Nested tables searched for a key written at the wrong level. */
static const struct {
    const char *parent;
    const struct table *t;
} nested_tables[] = {
    {"limits", &limits_table}, {"log", &log_table},         {"tls", &tls_table},
    {"cors", &cors_table},     {"metrics", &metrics_table}, {"backends[]", &backend_table},
};

static void unknown_key(struct ctx *x, const cJSON *m, const char *path, const struct table *t)
{
    char d[DIAG_SHOWBUF];
    if (x->errs.n >= CFG_MAX_ERRORS) {
        x->errs.total++; /* not shown: spare the guessing */
        return;
    }
    const char *cands[64];
    size_t n = 0;
    for (size_t i = 0; i < t->n && n < 64; i++)
        cands[n++] = t->keys[i].name;
    const char *s = diag_suggest(m->string, cands, n);
    if (s) {
        err(x, m, path, "unknown key %s (did you mean \"%s\"?)", DIAG_SHOW(d, m->string), s);
        return;
    }
    if (t == &top_table) {
        for (size_t j = 0; j < sizeof nested_tables / sizeof nested_tables[0]; j++) {
            const struct table *nt = nested_tables[j].t;
            for (size_t i = 0; i < nt->n; i++) {
                if (strcmp(m->string, nt->keys[i].name) == 0) {
                    err(x, m, path, "unknown key %s at the top level: it belongs in \"%s\"",
                        DIAG_SHOW(d, m->string), nested_tables[j].parent);
                    return;
                }
            }
        }
    }
    char list[512] = "";
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", cands[i]);
    }
    err(x, m, path, "unknown key %s (known keys: %s)", DIAG_SHOW(d, m->string), list);
}

/* ---- after the walk ---- */

static void check_cross(struct ctx *x, const cJSON *root)
{
    struct cfg *c = x->c;
    char d[DIAG_SHOWBUF], d2[DIAG_SHOWBUF];
    /* Without keys, anyone who can reach the port can use the GPUs. */
    if (c->auth == CFG_AUTH_NONE && !c->allow_unauthenticated_public) {
        for (size_t i = 0; i < c->nlisten; i++) {
            if (!c->listen[i].loopback) {
                err(x, x->auth_item, "auth",
                    "\"none\" with the non-loopback listen address %s would let anyone who "
                    "can reach it use the backends: use \"auth\": \"keys\", listen on "
                    "127.0.0.1 or [::1], or set \"allow_unauthenticated_public\": true",
                    DIAG_SHOW(d, c->listen[i].text));
                break;
            }
        }
    }
    if (c->metrics.enabled) {
        for (size_t i = 0; i < c->nlisten; i++) {
            if (addr_overlap(&c->listen[i], &c->metrics.listen)) {
                const cJSON *mi = cJSON_GetObjectItemCaseSensitive(root, "metrics");
                const cJSON *li = mi ? cJSON_GetObjectItemCaseSensitive(mi, "listen") : NULL;
                err(x, li ? li : mi, "metrics.listen",
                    "%s overlaps the API listener %s: give metrics a port of its own",
                    DIAG_SHOW(d, c->metrics.listen.text), DIAG_SHOW(d2, c->listen[i].text));
                break;
            }
        }
    }
}

static void add_default_listen(struct ctx *x)
{
    char why[320];
    struct cfg_addr *a = xalloc(x, sizeof *a);
    if (!a || parse_addr(x, "127.0.0.1:8080", a, why, sizeof why) < 0)
        return;
    x->c->listen = a;
    x->c->nlisten = 1;
}

static int cmp_msg(const void *a, const void *b)
{
    const struct msg *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void emit_errors(struct ctx *x, struct cfg_errors *out)
{
    struct msglist *l = &x->errs;
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cmp_msg);
    struct cfg_errors local;
    struct cfg_errors *e = out;
    if (!e) {
        cfg_errors_init(&local);
        e = &local;
    }
    for (size_t i = 0; i < l->n; i++) {
        buf_puts(&e->text, l->v[i].text);
        buf_puts(&e->text, "\n");
    }
    if (l->total > l->n)
        buf_printf(&e->text, "%s: ... and %u more problems\n", x->name, l->total - (unsigned)l->n);
    e->count += l->total;
    if (!out) {
        cfg_errors_log(&local);
        cfg_errors_free(&local);
    }
}

static void ctx_free(struct ctx *x)
{
    free(x->bnames);
    free(x->pos);
    msg_free(&x->errs);
    msg_free(&x->notes);
}

static void cfg_free(struct cfg *c)
{
    if (!c)
        return;
    cJSON_Delete(c->json);
    arena_free(c->arena);
    free(c);
}

/* The notices move into the snapshot, sorted by line. */
static void keep_notices(struct ctx *x)
{
    struct msglist *l = &x->notes;
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cmp_msg);
    const char **v = xalloc_array(x, l->n + 1, sizeof *v);
    if (!v)
        return;
    for (size_t i = 0; i < l->n; i++)
        v[i] = xstrdup(x, l->v[i].text);
    x->c->notices = v;
    x->c->nnotices = l->n;
}

/* The usual JSON-with-comments mistake: a ',' right before '}' or ']'.
 * Reports each one; returns how many. */
static unsigned report_trailing_commas(struct ctx *x, const char *s, size_t len)
{
    unsigned found = 0, line = 1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n')
            line++;
        if (s[i] == '"') {
            for (i++; i < len && s[i] != '"'; i++) {
                if (s[i] == '\\')
                    i++;
                if (i < len && s[i] == '\n')
                    line++;
            }
            continue;
        }
        if (s[i] != ',')
            continue;
        size_t j = i + 1;
        while (j < len && (unsigned char)s[j] <= 32)
            j++;
        if (j < len && (s[j] == '}' || s[j] == ']')) {
            err_line(x, line, NULL,
                     "JSON syntax error: a comma before '%c' (JSON allows no trailing comma); "
                     "remove it",
                     s[j]);
            found++;
        }
    }
    return found;
}

static void report_syntax(struct ctx *x, const char *s, size_t len, size_t off)
{
    char q[DIAG_SHOWBUF], near[40];
    size_t ws = off < len ? strspn(s + off, " \t\r\n\f\v") : 0;
    if (off >= len || off + ws >= len) {
        err_line(x, diag_line_at(s, len, len), NULL,
                 "JSON syntax error: the text ends too early (a missing '}', ']' or '\"'?)");
        return;
    }
    size_t nl = strcspn(s + off, "\r\n");
    snprintf(near, sizeof near, "%.*s", (int)(nl < 24 ? nl : 24), s + off);
    size_t p = off;
    while (p > 0 && (unsigned char)s[p - 1] <= 32)
        p--;
    char prev = p > 0 ? s[p - 1] : '\0';
    const char *hint = "";
    if (strchr("\"{[0123456789-tfn", s[off]) && prev && strchr("\"}]0123456789el", prev))
        hint = " (a missing ',' or ':' before it?)";
    err_line(x, diag_line_at(s, len, off), NULL, "JSON syntax error near %s%s", DIAG_SHOW(q, near),
             hint);
}

struct cfg *cfg_load_buffer(const char *text, size_t len, const char *name, const char *base_dir,
                            struct cfg_errors *errs)
{
    struct ctx x = {.name = name ? name : "gateway.json"};
    if (!text) {
        text = "";
        len = 0;
    }
    char cwd[PATH_MAX];
    char *copy = NULL;
    struct cfg *c = calloc(1, sizeof *c);
    if (!c) {
        x.oom = true;
        goto out;
    }
    atomic_init(&c->refs, 1);
    x.c = c;
    if (!base_dir) {
        base_dir = getcwd(cwd, sizeof cwd) ? cwd : "/";
    }
    x.base_dir = base_dir;
    c->path = xstrdup(&x, x.name);
    c->dir = xstrdup(&x, base_dir);

    if (len > CFG_MAX_FILE_BYTES) {
        err_line(&x, 0, NULL, "is larger than %u bytes; is this the right file?",
                 CFG_MAX_FILE_BYTES);
        goto out;
    }
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        err_line(&x, diag_line_at(text, len, (size_t)(nul - text)), NULL,
                 "contains a NUL byte: is this a text file?");
        goto out;
    }
    copy = malloc(len + 1);
    if (!copy) {
        x.oom = true;
        goto out;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    size_t bad;
    if (strip_comments(copy, len, &bad) < 0) {
        err_line(&x, diag_line_at(copy, len, bad), NULL,
                 "this /* comment is never closed: add the closing */");
        goto out;
    }
    x.text = copy;
    x.len = len;

    size_t first = strspn(copy, " \t\r\n\f\v");
    if (first == len) {
        err_line(&x, 0, NULL,
                 "is empty: it must hold a JSON object, at least {\"backends\": [{\"url\": "
                 "\"http://127.0.0.1:11434\"}]}");
        goto out;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    if (!root) {
        size_t off = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : len;
        if (report_trailing_commas(&x, copy, len) == 0)
            report_syntax(&x, copy, len, off);
        goto out;
    }
    c->json = root;
    size_t after = (size_t)(end - copy);
    while (after < len && (unsigned char)copy[after] <= 32)
        after++;
    if (after < len) {
        err_line(&x, diag_line_at(copy, len, after), NULL,
                 "unexpected text after the end of the top-level object");
        goto out;
    }
    build_index(&x, root);
    if (!cJSON_IsObject(root)) {
        char d[DIAG_SHOWBUF];
        err(&x, root, NULL, "the file must hold one JSON object { ... }, not %s",
            describe(&x, root, d, sizeof d));
        goto out;
    }

    apply_top_defaults(&x);
    uint64_t seen = walk_object(&x, root, "", &top_table, c);
    if (x.aliases)
        parse_aliases(&x, x.aliases);
    if (!(seen & key_bit(&top_table, "listen")))
        add_default_listen(&x);
    check_cross(&x, root);
    index_aliases(&x);
    keep_notices(&x);

out:
    if (x.oom)
        err_line(&x, 0, NULL, "out of memory");
    if (x.errs.total || x.oom) {
        emit_errors(&x, errs);
        cfg_free(c);
        c = NULL;
    }
    ctx_free(&x);
    free(copy);
    return c;
}

/* ---- public ---- */

void cfg_errors_init(struct cfg_errors *e)
{
    buf_init(&e->text, 1u << 20);
    e->count = 0;
}

void cfg_errors_free(struct cfg_errors *e)
{
    buf_free(&e->text);
    e->count = 0;
}

void cfg_errors_log(const struct cfg_errors *e)
{
    const char *p = e->text.p;
    const char *end = p ? p + e->text.len : NULL;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        log_error("%.*s", (int)n, p);
        p += n + 1;
    }
}

/* Report a problem that has no parse context (reading the file). */
__attribute__((format(printf, 3, 4))) static void file_error(struct cfg_errors *errs,
                                                             const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (errs) {
        buf_printf(&errs->text, "%s: %s\n", path, msg);
        errs->count++;
    } else {
        log_error("%s: %s", path, msg);
    }
}

struct cfg *cfg_load(const char *path, struct cfg_errors *errs)
{
    struct cfg *c = NULL;
    char *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        file_error(errs, path, "cannot open: %s%s", strerror(e),
                   e == ENOENT ? " (name another file with -c FILE)" : "");
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        file_error(errs, path, "cannot stat: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        file_error(errs, path, "is not a regular file");
        goto out;
    }
    if (st.st_size > (off_t)CFG_MAX_FILE_BYTES) {
        file_error(errs, path, "is larger than %u bytes; is this the right file?",
                   CFG_MAX_FILE_BYTES);
        goto out;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    text = malloc(cap);
    if (!text) {
        file_error(errs, path, "out of memory");
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap > CFG_MAX_FILE_BYTES) {
                file_error(errs, path, "is larger than %u bytes; is this the right file?",
                           CFG_MAX_FILE_BYTES);
                goto out;
            }
            char *t = realloc(text, cap * 2);
            if (!t) {
                file_error(errs, path, "out of memory");
                goto out;
            }
            text = t;
            cap *= 2;
        }
        ssize_t r = read(fd, text + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            file_error(errs, path, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }

    /* Relative paths inside are relative to the file's own folder. */
    char dir[PATH_MAX];
    char *real = realpath(path, NULL);
    if (real) {
        char *slash = strrchr(real, '/');
        if (slash == real)
            snprintf(dir, sizeof dir, "/");
        else
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - real), real);
        free(real);
    } else {
        file_error(errs, path, "cannot resolve its folder: %s", strerror(errno));
        goto out;
    }
    c = cfg_load_buffer(text, len, path, dir, errs);
out:
    free(text);
    close(fd);
    return c;
}

struct cfg *cfg_ref(struct cfg *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void cfg_unref(struct cfg *c)
{
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        cfg_free(c);
}

void cfg_features_not_in_force(const struct cfg *c, cfg_notice_fn fn, void *ud)
{
    for (size_t i = 0; i < c->nnotices; i++) {
        if (fn)
            fn(ud, c->notices[i]);
        else
            log_warn("%s", c->notices[i]);
    }
}

static void print_warning(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "warning: %s\n", msg);
}

struct cfg *cfg_check(const char *path)
{
    struct cfg_errors errs;
    cfg_errors_init(&errs);
    struct cfg *c = cfg_load(path, &errs);
    if (errs.text.len)
        fwrite(errs.text.p, 1, errs.text.len, stderr);
    cfg_errors_free(&errs);
    if (c)
        cfg_features_not_in_force(c, print_warning, NULL);
    return c;
}
