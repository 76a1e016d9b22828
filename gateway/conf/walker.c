#include "walker.h"

#include "arena.h"
#include "diag.h"
#include "num.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- allocation ---- */

void *walk_alloc(struct walk *w, size_t n)
{
    void *p = arena_alloc(w->arena, n);
    if (!p)
        w->jf->oom = true;
    return p;
}

void *walk_alloc_array(struct walk *w, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        w->jf->oom = true;
        return NULL;
    }
    return walk_alloc(w, n * size);
}

char *walk_strndup(struct walk *w, const char *s, size_t n)
{
    char *p = walk_alloc(w, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *walk_strdup(struct walk *w, const char *s)
{
    return walk_strndup(w, s, strlen(s));
}

const char *walk_resolve(struct walk *w, const char *p)
{
    if (p[0] == '/')
        return walk_strdup(w, p);
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    size_t dl = strlen(w->base_dir), pl = strlen(p);
    bool slash = dl > 0 && w->base_dir[dl - 1] == '/';
    char *out = walk_alloc(w, dl + pl + 2);
    if (!out)
        return NULL;
    memcpy(out, w->base_dir, dl);
    if (!slash)
        out[dl++] = '/';
    memcpy(out + dl, p, pl + 1);
    return out;
}

/* ---- values ---- */

/* "; write it without quotes" for a quoted value that would be right bare.
 * Not in a terse file: the gateway writes those, people do not type them. */
static const char *unquote_hint(const struct walk *w, bool applies)
{
    return applies && !w->jf->kind->terse ? "; write it without quotes" : "";
}

/* v as a whole number from k->min to k->max into *out: 0, or -1 after
 * reporting (in k->means and k->fix's words). */
static int walk_uint(struct walk *w, const cJSON *v, const char *path, const struct walk_key *k,
                     unsigned long long *out)
{
    unsigned long long min = k->min, max = k->max;
    const char *means = k->means ? k->means : "", *fix = k->fix ? k->fix : "";
    char expected[192], hint[128];
    snprintf(expected, sizeof expected, "a whole number from %llu to %llu%s%s", min, max,
             *means ? " " : "", means);
    if (!cJSON_IsNumber(v)) {
        bool digits = cJSON_IsString(v) && v->valuestring[0] &&
                      strspn(v->valuestring, "0123456789") == strlen(v->valuestring);
        snprintf(hint, sizeof hint, "%s%s", unquote_hint(w, digits), fix);
        jf_mismatch(w->jf, v, path, expected, hint);
        return -1;
    }
    size_t n = 0;
    const char *t = jf_num_text(w->jf, v, &n);
    const char *why;
    if (t) {
        if (num_parse_uint(t, n, min, max, out, &why) == 0)
            return 0;
        jf_error(w->jf, v, path, "%.*s %s (allowed: whole numbers from %llu to %llu)%s",
                 (int)(n < 40 ? n : 40), t, why, min, max, fix);
        return -1;
    }
    /* Not indexed (the keys file): judge the value, so 1e3 is 1000. */
    double dv = v->valuedouble;
    if (dv >= (double)min && dv <= (double)max && dv == (double)(unsigned long long)dv) {
        *out = (unsigned long long)dv;
        return 0;
    }
    jf_mismatch(w->jf, v, path, expected, fix);
    return -1;
}

const char *walk_string(struct walk *w, const cJSON *v, const char *path, const char *what)
{
    if (cJSON_IsString(v) && v->valuestring)
        return v->valuestring;
    char expected[256];
    if (w->jf->kind->terse)
        snprintf(expected, sizeof expected, "a string (%s)", what);
    else
        snprintf(expected, sizeof expected, "%s (a string)", what);
    jf_mismatch(w->jf, v, path, expected, "");
    return NULL;
}

const char *walk_text(struct walk *w, const cJSON *v, const char *path, const char *what)
{
    const char *s = walk_string(w, v, path, what);
    if (s && !s[0]) {
        jf_error(w->jf, v, path, "is empty: expected %s", what);
        return NULL;
    }
    return s;
}

/* ---- the common setters ---- */

void walk_set_uint(struct walk *w, const cJSON *v, const char *path, void *base,
                   const struct walk_key *k)
{
    unsigned long long val;
    if (walk_uint(w, v, path, k, &val) < 0)
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

void walk_set_bool(struct walk *w, const cJSON *v, const char *path, void *base,
                   const struct walk_key *k)
{
    if (!cJSON_IsBool(v)) {
        bool quoted = cJSON_IsString(v) &&
                      (strcmp(v->valuestring, "true") == 0 || strcmp(v->valuestring, "false") == 0);
        jf_mismatch(w->jf, v, path, "true or false", unquote_hint(w, quoted));
        return;
    }
    bool b = cJSON_IsTrue(v);
    memcpy((char *)base + k->off, &b, sizeof b);
}

void walk_set_enum(struct walk *w, const cJSON *v, const char *path, void *base,
                   const struct walk_key *k)
{
    const char *const *choices = k->arg;
    char d[DIAG_SHOWBUF], list[256 + 8] = "one of ";
    size_t n = 0;
    for (; choices[n]; n++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s\"%s\"", n ? ", " : "", choices[n]);
    }
    if (!cJSON_IsString(v)) {
        jf_mismatch(w->jf, v, path, list, "");
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
        jf_error(w->jf, v, path, "%s is not %s (did you mean \"%s\"?)",
                 DIAG_SHOW(d, v->valuestring), list, s);
    else
        jf_error(w->jf, v, path, "%s is not %s", DIAG_SHOW(d, v->valuestring), list);
}

void walk_set_path(struct walk *w, const cJSON *v, const char *path, void *base,
                   const struct walk_key *k)
{
    const char *s = walk_text(w, v, path, "a file path");
    if (!s)
        return;
    const char *r = walk_resolve(w, s);
    memcpy((char *)base + k->off, &r, sizeof r);
}

void walk_set_object(struct walk *w, const cJSON *v, const char *path, void *base,
                     const struct walk_key *k)
{
    walk_object(w, v, path, k->arg, (char *)base + k->off);
}

/* ---- unique names ---- */

/* Equal names in the order they were written. */
static int then_position(int c, const struct walk_name *x, const struct walk_name *y)
{
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_name(const void *a, const void *b)
{
    const struct walk_name *x = a, *y = b;
    return then_position(strcmp(x->name, y->name), x, y);
}

static int cmp_name_icase(const void *a, const void *b)
{
    const struct walk_name *x = a, *y = b;
    return then_position(strcasecmp(x->name, y->name), x, y);
}

void walk_dups(struct jf *f, struct walk_name *v, size_t n, bool icase, walk_dup_fn dup,
               const void *ud)
{
    if (n < 2)
        return;
    qsort(v, n, sizeof *v, icase ? cmp_name_icase : cmp_name);
    size_t first = 0;
    for (size_t i = 1; i < n; i++) {
        bool same = icase ? strcasecmp(v[i].name, v[first].name) == 0
                          : strcmp(v[i].name, v[first].name) == 0;
        if (same)
            dup(f, &v[first], &v[i], ud);
        else
            first = i;
    }
}

/* ---- tables ---- */

uint64_t walk_bit(const struct walk_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->keys[i].name, name) == 0)
            return UINT64_C(1) << i;
    return 0;
}

void walk_defaults(struct walk *w, const struct walk_table *t, void *base)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct walk_key *k = &t->keys[i];
        char *p = (char *)base + k->off;
        if (k->fn == walk_set_uint) {
            if (k->width == sizeof(size_t)) {
                size_t v = (size_t)k->def;
                memcpy(p, &v, sizeof v);
            } else {
                unsigned v = (unsigned)k->def;
                memcpy(p, &v, sizeof v);
            }
        } else if (k->fn == walk_set_bool) {
            bool b = k->def != 0;
            memcpy(p, &b, sizeof b);
        } else if (k->fn == walk_set_enum) {
            int e = (int)k->def;
            memcpy(p, &e, sizeof e);
        } else if (k->fn == walk_set_object) {
            walk_defaults(w, k->arg, p);
        } else if (k->sdef) {
            const char *s =
                k->fn == walk_set_path ? walk_resolve(w, k->sdef) : walk_strdup(w, k->sdef);
            memcpy(p, &s, sizeof s);
        }
    }
}

/* A key that is not in the table: say so, and guess what was meant. */
static void unknown_key(struct walk *w, const cJSON *m, const char *path,
                        const struct walk_table *t)
{
    char d[DIAG_SHOWBUF];
    if (jf_spare(w->jf))
        return;
    const char *cands[64];
    size_t n = 0;
    for (size_t i = 0; i < t->n && n < 64; i++)
        cands[n++] = t->keys[i].name;
    const struct walk_words *words = t->words;
    const char *s = !words || words->guess ? diag_suggest(m->string, cands, n) : NULL;
    if (words) {
        char sub[WALK_PATH_MAX];
        diag_path_key(sub, sizeof sub, path, m->string);
        if (s)
            jf_error(w->jf, m, sub, "unknown field; did you mean \"%s\"?", s);
        else
            jf_error(w->jf, m, sub, "unknown field; %s", words->unknown);
        return;
    }
    if (s) {
        jf_error(w->jf, m, path, "unknown key %s (did you mean \"%s\"?)", DIAG_SHOW(d, m->string),
                 s);
        return;
    }
    for (size_t j = 0; j < t->nnest; j++) {
        const struct walk_table *nt = t->nest[j].t;
        for (size_t i = 0; i < nt->n; i++) {
            if (strcmp(m->string, nt->keys[i].name) == 0) {
                jf_error(w->jf, m, path, "unknown key %s at the top level: it belongs in \"%s\"",
                         DIAG_SHOW(d, m->string), t->nest[j].parent);
                return;
            }
        }
    }
    char list[512] = "";
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", cands[i]);
    }
    jf_error(w->jf, m, path, "unknown key %s (known keys: %s)", DIAG_SHOW(d, m->string), list);
}

uint64_t walk_object(struct walk *w, const cJSON *obj, const char *path, const struct walk_table *t,
                     void *base)
{
    struct jf *f = w->jf;
    char sub[WALK_PATH_MAX];
    if (!cJSON_IsObject(obj)) {
        jf_mismatch(f, obj, path, "an object { ... }", "");
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
            unknown_key(w, m, path, t);
            continue;
        }
        diag_path_key(sub, sizeof sub, path, m->string);
        if (seen & (UINT64_C(1) << i)) {
            if (t->words)
                jf_error(f, m, sub, "%s", t->words->twice);
            else
                jf_error(f, m, sub, "given twice (first on line %u); remove one",
                         jf_line(f, first[i]));
            continue;
        }
        seen |= UINT64_C(1) << i;
        first[i] = m;
        if (t->keys[i].notice)
            jf_note(f, m, sub, "%s", t->keys[i].notice);
        t->keys[i].fn(w, m, sub, base, &t->keys[i]);
    }
    for (size_t i = 0; i < t->n; i++) {
        const struct walk_key *k = &t->keys[i];
        if (!k->required || (seen & (UINT64_C(1) << i)))
            continue;
        if (t->words) {
            diag_path_key(sub, sizeof sub, path, k->name);
            jf_error(f, obj, sub, "missing; %s", k->required);
        } else {
            jf_error(f, obj, path, "missing \"%s\": %s", k->name, k->required);
        }
    }
    return seen;
}
