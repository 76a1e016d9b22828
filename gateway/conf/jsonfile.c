#include "jsonfile.h"

#include "diag.h"
#include "log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jf_pos {
    const cJSON *item;
    unsigned line; /* of the key for object members, else of the value */
    size_t off;    /* of the value */
};

struct jf_msg {
    unsigned line;
    unsigned seq;
    char *text; /* malloc'd, "FILE:LINE: ..." */
};

void jf_init(struct jf *f, const char *name, const struct jf_kind *kind)
{
    memset(f, 0, sizeof *f);
    f->name = name;
    f->kind = kind;
}

static void msgs_free(struct jf_msgs *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].text);
    free(l->v);
    memset(l, 0, sizeof *l);
}

void jf_free(struct jf *f)
{
    free(f->text);
    free(f->pos);
    msgs_free(&f->errs);
    msgs_free(&f->notes);
    f->text = NULL;
    f->pos = NULL;
    f->len = f->npos = 0;
}

/* Room for one more element of size `size` in v (n in use, *cap allocated):
 * v itself or its replacement, or NULL (v untouched) when memory ran out. */
static void *grow(void *v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return v;
    size_t more = *cap ? *cap * 2 : 16;
    void *p = realloc(v, more * size);
    if (p)
        *cap = more;
    return p;
}

/* ---- problems ---- */

__attribute__((format(printf, 5, 0))) static void
vadd(struct jf *f, struct jf_msgs *l, unsigned line, const char *path, const char *fmt, va_list ap)
{
    l->total++;
    if (l->n >= JF_MAX_SHOWN)
        return;
    char text[1024];
    int n;
    if (line)
        n = snprintf(text, sizeof text, "%s:%u: ", f->name, line);
    else
        n = snprintf(text, sizeof text, "%s: ", f->name);
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
    struct jf_msg *v = grow(l->v, l->n, &l->cap, sizeof *v);
    if (v)
        l->v = v;
    char *dup = v ? strdup(text) : NULL;
    if (!dup) {
        f->oom = true;
        return;
    }
    l->v[l->n++] = (struct jf_msg){line, f->seq++, dup};
}

void jf_error(struct jf *f, const cJSON *item, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vadd(f, &f->errs, jf_line(f, item), path, fmt, ap);
    va_end(ap);
}

void jf_error_line(struct jf *f, unsigned line, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vadd(f, &f->errs, line, path, fmt, ap);
    va_end(ap);
}

void jf_note(struct jf *f, const cJSON *item, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vadd(f, &f->notes, jf_line(f, item), path, fmt, ap);
    va_end(ap);
}

void jf_mismatch(struct jf *f, const cJSON *v, const char *path, const char *expected,
                 const char *hint)
{
    char d[DIAG_SHOWBUF];
    const char *got = jf_describe(f, v, d, sizeof d);
    if (f->kind->terse)
        jf_error(f, v, path, "must be %s, not %s%s", expected, got, hint);
    else
        jf_error(f, v, path, "expected %s, got %s%s", expected, got, hint);
}

bool jf_spare(struct jf *f)
{
    if (f->errs.n < JF_MAX_SHOWN)
        return false;
    f->errs.total++;
    return true;
}

bool jf_failed(const struct jf *f)
{
    return f->errs.total || f->oom;
}

static int cmp_msg(const void *a, const void *b)
{
    const struct jf_msg *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

unsigned jf_report(struct jf *f, struct buf *out)
{
    if (f->oom)
        jf_error_line(f, 0, NULL, "out of memory");
    struct jf_msgs *l = &f->errs;
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cmp_msg);
    for (size_t i = 0; i < l->n; i++) {
        if (out)
            buf_printf(out, "%s\n", l->v[i].text);
        else
            log_error("%s", l->v[i].text);
    }
    if (l->total > l->n) {
        unsigned more = l->total - (unsigned)l->n;
        if (out)
            buf_printf(out, "%s: ... and %u more problems\n", f->name, more);
        else
            log_error("%s: ... and %u more problems", f->name, more);
    }
    return l->total;
}

size_t jf_notes(struct jf *f, const char **v)
{
    struct jf_msgs *l = &f->notes;
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cmp_msg);
    for (size_t i = 0; i < l->n; i++)
        v[i] = l->v[i].text;
    return l->n;
}

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
    struct jf_pos *v;
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
    struct jf_pos *v = grow(sc->v, sc->n, &sc->cap, sizeof *v);
    if (!v) {
        sc->bad = true;
        return;
    }
    sc->v = v;
    sc->v[sc->n++] = (struct jf_pos){item, line, sc->i};
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
    uintptr_t pa = (uintptr_t)((const struct jf_pos *)a)->item;
    uintptr_t pb = (uintptr_t)((const struct jf_pos *)b)->item;
    return pa < pb ? -1 : pa > pb;
}

/* Build f->pos. If the walk loses step with cJSON (it should not), the
 * positions found up to there are kept and the rest report no line. */
static void build_index(struct jf *f, const cJSON *root)
{
    struct scan sc = {.s = f->text, .len = f->len, .line = 1};
    scan_value(&sc, root, 0, 0);
    if (sc.n)
        qsort(sc.v, sc.n, sizeof *sc.v, cmp_pos);
    f->pos = sc.v;
    f->npos = sc.n;
}

static const struct jf_pos *pos_of(const struct jf *f, const cJSON *item)
{
    if (!item || !f->npos)
        return NULL;
    struct jf_pos key = {.item = item};
    return bsearch(&key, f->pos, f->npos, sizeof key, cmp_pos);
}

unsigned jf_line(const struct jf *f, const cJSON *item)
{
    const struct jf_pos *p = pos_of(f, item);
    return p ? p->line : 0;
}

const char *jf_num_text(const struct jf *f, const cJSON *item, size_t *n)
{
    const struct jf_pos *p = pos_of(f, item);
    if (!p || p->off >= f->len)
        return NULL;
    size_t e = p->off;
    while (e < f->len && is_num_char(f->text[e]))
        e++;
    *n = e - p->off;
    return *n ? f->text + p->off : NULL;
}

const char *jf_describe(const struct jf *f, const cJSON *v, char *out, size_t outsz)
{
    bool terse = f->kind->terse;
    char q[DIAG_SHOWBUF];
    if (cJSON_IsString(v) && v->valuestring) {
        if (terse)
            return diag_show(out, outsz, v->valuestring);
        snprintf(out, outsz, "the string %s", DIAG_SHOW(q, v->valuestring));
        return out;
    }
    if (cJSON_IsNumber(v)) {
        size_t n;
        const char *t = jf_num_text(f, v, &n);
        if (terse)
            snprintf(out, outsz, "%.17g", v->valuedouble);
        else if (t && n < 40)
            snprintf(out, outsz, "the number %.*s", (int)n, t);
        else
            snprintf(out, outsz, "a number");
        return out;
    }
    switch (v ? v->type & 0xFF : cJSON_Invalid) {
    case cJSON_True:
        return "true";
    case cJSON_False:
        return "false";
    case cJSON_NULL:
        return "null";
    case cJSON_Array:
        return "an array";
    case cJSON_Object:
        return "an object";
    default:
        return terse ? "an unknown value" : "something else";
    }
}

/* ---- syntax ---- */

/* The usual JSON-with-comments mistake: a ',' right before '}' or ']'.
 * Reports each one; returns how many. */
static unsigned report_trailing_commas(struct jf *f)
{
    const char *s = f->text;
    size_t len = f->len;
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
            jf_error_line(f, line, NULL,
                          "JSON syntax error: a comma before '%c' (JSON allows no trailing "
                          "comma); remove it",
                          s[j]);
            found++;
        }
    }
    return found;
}

static void report_syntax(struct jf *f, size_t off)
{
    const char *s = f->text, *fix = f->kind->fix;
    size_t len = f->len;
    char q[DIAG_SHOWBUF], near[40];
    size_t ws = off < len ? strspn(s + off, " \t\r\n\f\v") : 0;
    if (off >= len || off + ws >= len) {
        jf_error_line(f, diag_line_at(s, len, len), NULL,
                      "JSON syntax error: the text ends too early (a missing '}', ']' or "
                      "'\"'?)%s",
                      fix);
        return;
    }
    size_t nl = strcspn(s + off, "\r\n");
    snprintf(near, sizeof near, "%.*s", (int)(nl < 24 ? nl : 24), s + off);
    const char *hint = "";
    if (f->kind->guess) {
        size_t p = off;
        while (p > 0 && (unsigned char)s[p - 1] <= 32)
            p--;
        char prev = p > 0 ? s[p - 1] : '\0';
        if (strchr("\"{[0123456789-tfn", s[off]) && prev && strchr("\"}]0123456789el", prev))
            hint = " (a missing ',' or ':' before it?)";
    }
    jf_error_line(f, diag_line_at(s, len, off), NULL, "JSON syntax error near %s%s%s",
                  DIAG_SHOW(q, near), hint, fix);
}

cJSON *jf_parse(struct jf *f, const char *text, size_t len)
{
    if (!text) {
        text = "";
        len = 0;
    }
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        jf_error_line(f, diag_line_at(text, len, (size_t)(nul - text)), NULL,
                      "contains a NUL byte: is this a text file?");
        return NULL;
    }
    /* A terminated copy: cJSON then never has to trust the length alone. */
    char *copy = malloc(len + 1);
    if (!copy) {
        f->oom = true;
        return NULL;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    f->text = copy;
    f->len = len;
    size_t bad;
    if (f->kind->comments && strip_comments(copy, len, &bad) < 0) {
        jf_error_line(f, diag_line_at(copy, len, bad), NULL,
                      "this /* comment is never closed: add the closing */");
        return NULL;
    }
    if (strspn(copy, " \t\r\n\f\v") == len) {
        jf_error_line(f, 0, NULL, "%s", f->kind->empty);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    if (!root) {
        size_t off = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : len;
        if (!f->kind->guess || report_trailing_commas(f) == 0)
            report_syntax(f, off);
        return NULL;
    }
    /* White space may follow the value, and nothing else. */
    size_t after = (size_t)(end - copy);
    if (f->kind->strict_end)
        after += strspn(copy + after, " \t\r\n\f\v");
    else
        while (after < len && (unsigned char)copy[after] <= 32)
            after++;
    if (after < len) {
        jf_error_line(f, diag_line_at(copy, len, after), NULL,
                      "unexpected text after the end of the top-level object%s",
                      f->kind->fix_after);
        cJSON_Delete(root);
        return NULL;
    }
    if (f->kind->lines)
        build_index(f, root);
    return root;
}
