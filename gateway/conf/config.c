/*
 * config.c: the schema of gateway.json. Its tables (listen, tls, workers,
 * keys_file, auth, backends, aliases, limits, cors, log, metrics, ...), the
 * setters that judge what the common ones in walker.c cannot, and the
 * checks that need more than one key: the backend names aliases refer to,
 * "auth": "none" on a public address, metrics on the API's own port.
 * Reading the text is jsonfile.c's job, walking a table walker.c's,
 * addresses and URLs netaddr.c's.
 *
 * The pipeline, in cfg_load_buffer():
 *   1. jf_parse(): comments blanked, cJSON, the position index (FILE:LINE);
 *   2. the top-level table walked into the snapshot (type, bounds, default,
 *      where it goes), collecting every problem;
 *   3. the aliases, once the backends' names are known, then the checks
 *      across keys;
 *   4. the problems sorted by line and handed over, or the snapshot
 *      returned.
 *
 * Everything a snapshot points to lives in its arena or in the cJSON tree it
 * keeps (alias options, the listen addresses' texts), so freeing is two
 * calls.
 */
#include "config.h"

#include "arena.h"
#include "diag.h"
#include "fileio.h"
#include "glob.h"
#include "jsonfile.h"
#include "log.h"
#include "sharedcfg.h"
#include "tlscreds.h"
#include "walker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(CFG_MAX_ERRORS == JF_MAX_SHOWN, "one limit on the problems shown");

/* gateway.json is written by people. */
static const struct jf_kind gateway_json = {
    .comments = true,
    .lines = true,
    .guess = true,
    .empty = "is empty: it must hold a JSON object, at least {\"backends\": [{\"url\": "
             "\"http://127.0.0.1:11434\"}]}",
    .fix = "",
    .fix_after = "",
};

/* ---- the load context ---- */

struct ctx {
    struct walk w; /* what the setters get; ctx_of() finds the rest */
    struct jf jf;
    struct cfg *c;
    bool backends_ok;         /* "backends" was an array we could read */
    const cJSON *aliases;     /* checked last, once the backends are known */
    struct walk_name *bnames; /* backend names, sorted (for the aliases' lookups) */
    size_t nbnames;
};

static struct ctx *ctx_of(struct walk *w)
{
    return (struct ctx *)(void *)((char *)w - offsetof(struct ctx, w));
}

/* ---- listen addresses ---- */

/* A "host:port" or a list of them at path into *out (in the arena), each
 * checked, none overlapping another. */
static void parse_addrs(struct walk *w, const cJSON *v, const char *path,
                        const struct netaddr **out, size_t *nout)
{
    char d[DIAG_SHOWBUF], why[320], sub[WALK_PATH_MAX];
    size_t n;
    if (cJSON_IsString(v)) {
        n = 1;
    } else if (cJSON_IsArray(v)) {
        n = (size_t)cJSON_GetArraySize(v);
        if (n == 0) {
            jf_error(w->jf, v, path,
                     "is empty: list at least one \"host:port\", e.g. [\"127.0.0.1:8080\"]");
            return;
        }
        if (n > CFG_MAX_LISTEN) {
            jf_error(w->jf, v, path, "lists %zu addresses; at most %d are supported", n,
                     CFG_MAX_LISTEN);
            return;
        }
    } else {
        jf_mismatch(w->jf, v, path, "a list of \"host:port\" strings, e.g. [\"127.0.0.1:8080\"]",
                    "");
        return;
    }
    struct netaddr *addrs = walk_alloc_array(w, n, sizeof *addrs);
    if (!addrs)
        return;
    size_t got = 0;
    const cJSON *e = cJSON_IsString(v) ? v : v->child;
    for (size_t i = 0; e && i < n; i++, e = cJSON_IsString(v) ? NULL : e->next) {
        if (cJSON_IsString(v))
            snprintf(sub, sizeof sub, "%s", path);
        else
            diag_path_index(sub, sizeof sub, path, i);
        const char *s = walk_text(w, e, sub, "\"host:port\"");
        if (!s)
            continue;
        struct netaddr a;
        if (netaddr_parse(&a, s, why, sizeof why) < 0) {
            jf_error(w->jf, e, sub, "%s: %s", DIAG_SHOW(d, s), why);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < got; j++) {
            if (netaddr_overlap(&addrs[j], &a)) {
                char d2[DIAG_SHOWBUF];
                if (addrs[j].family == a.family && strcmp(addrs[j].host, a.host) == 0)
                    jf_error(w->jf, e, sub, "%s is listed twice", DIAG_SHOW(d, s));
                else
                    jf_error(w->jf, e, sub,
                             "%s overlaps %s: one socket cannot take the other's port",
                             DIAG_SHOW(d, s), DIAG_SHOW(d2, addrs[j].text));
                dup = true;
                break;
            }
        }
        if (!dup)
            addrs[got++] = a;
    }
    *out = addrs;
    *nout = got;
}

static void key_listen(struct walk *w, const cJSON *v, const char *path, void *base,
                       const struct walk_key *k)
{
    (void)k;
    struct cfg *c = base;
    parse_addrs(w, v, path, &c->listen, &c->nlisten);
}

static void key_addr(struct walk *w, const cJSON *v, const char *path, void *base,
                     const struct walk_key *k)
{
    char d[DIAG_SHOWBUF], why[320];
    const char *s = walk_text(w, v, path, "\"host:port\", e.g. \"127.0.0.1:9464\"");
    if (!s)
        return;
    struct netaddr a;
    if (netaddr_parse(&a, s, why, sizeof why) < 0) {
        jf_error(w->jf, v, path, "%s: %s", DIAG_SHOW(d, s), why);
        return;
    }
    memcpy((char *)base + k->off, &a, sizeof a);
}

/* A URL checked by netaddr_url(), in the arena; NULL after reporting. */
static const char *url(struct walk *w, const char *s, bool origin, char *why, size_t whysz)
{
    char *u = walk_alloc(w, strlen(s) + 1);
    if (!u)
        return NULL;
    if (netaddr_url(s, origin, u, why, whysz) < 0)
        return NULL;
    return u;
}

/* ---- CIDR lists ---- */

/* A list of CIDR blocks into the struct cfg_cidrs at base + k->off. An empty
 * list is a value of its own ("none"), not a missing key. */
static void key_cidrs(struct walk *w, const cJSON *v, const char *path, void *base,
                      const struct walk_key *k)
{
    char d[DIAG_SHOWBUF], sub[WALK_PATH_MAX], why[320];
    struct cfg_cidrs *out = (struct cfg_cidrs *)((char *)base + k->off);
    if (!cJSON_IsArray(v)) {
        jf_mismatch(w->jf, v, path,
                    "a list of addresses or CIDR blocks, e.g. [\"127.0.0.1\", \"10.0.0.0/8\"]", "");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n > CFG_MAX_CIDRS) {
        jf_error(w->jf, v, path, "lists %zu blocks; at most %d are supported", n, CFG_MAX_CIDRS);
        return;
    }
    struct netaddr_cidr *cs = n ? walk_alloc_array(w, n, sizeof *cs) : NULL;
    if (n && !cs)
        return;
    size_t got = 0, i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        diag_path_index(sub, sizeof sub, path, i);
        const char *s = walk_text(w, e, sub, "an address or CIDR block, e.g. \"10.0.0.0/8\"");
        if (!s)
            continue;
        if (netaddr_cidr_parse(&cs[got], s, why, sizeof why) < 0) {
            jf_error(w->jf, e, sub, "%s: %s", DIAG_SHOW(d, s), why);
            continue;
        }
        got++;
    }
    out->v = got ? cs : NULL;
    out->n = got;
}

/* limits.auth_guard_exempt when the file does not set it: loopback, so that
 * a proxy on the same host, or a local tool, never locks itself out. */
static void default_guard_exempt(struct ctx *x)
{
    static const char *const loopback[] = {"127.0.0.0/8", "::1"};
    char why[320];
    struct netaddr_cidr *cs = walk_alloc_array(&x->w, 2, sizeof *cs);
    if (!cs)
        return;
    for (size_t i = 0; i < 2; i++)
        if (netaddr_cidr_parse(&cs[i], loopback[i], why, sizeof why) < 0)
            return;
    x->c->limits.auth_guard_exempt = (struct cfg_cidrs){cs, 2};
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

static void key_bname(struct walk *w, const cJSON *v, const char *path, void *base,
                      const struct walk_key *k)
{
    (void)k;
    char d[DIAG_SHOWBUF];
    const char *s = walk_text(w, v, path, "a short name like \"gpu1\"");
    if (!s)
        return;
    if (!backend_name_ok(s)) {
        jf_error(w->jf, v, path, "%s: use 1 to 64 letters, digits, '_', '.' or '-' (e.g. \"gpu1\")",
                 DIAG_SHOW(d, s));
        return;
    }
    ((struct cfg_backend *)base)->name = walk_strdup(w, s);
}

static void key_url(struct walk *w, const cJSON *v, const char *path, void *base,
                    const struct walk_key *k)
{
    (void)k;
    char why[400] = "";
    const char *s =
        walk_text(w, v, path, "the Ollama server's URL, e.g. \"http://127.0.0.1:11434\"");
    if (!s)
        return;
    const char *u = url(w, s, false, why, sizeof why);
    if (!u) {
        if (why[0])
            jf_error(w->jf, v, path, "%s", why);
        return;
    }
    ((struct cfg_backend *)base)->url = u;
}

static bool is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int cmp_name_only(const void *a, const void *b)
{
    return strcmp(((const struct walk_name *)a)->name, ((const struct walk_name *)b)->name);
}

static const char *const reserved_headers[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                               "Content-Type", NULL};

static void header_dup(struct jf *f, const struct walk_name *first, const struct walk_name *again,
                       const void *ud)
{
    char sub[WALK_PATH_MAX];
    diag_path_key(sub, sizeof sub, ud, again->name);
    jf_error(f, again->item, sub,
             "set twice (first on line %u; header names ignore case); remove one",
             jf_line(f, first->item));
}

static void key_headers(struct walk *w, const cJSON *v, const char *path, void *base,
                        const struct walk_key *k)
{
    (void)k;
    char d[DIAG_SHOWBUF], sub[WALK_PATH_MAX];
    struct cfg_backend *b = base;
    if (!cJSON_IsObject(v)) {
        jf_mismatch(w->jf, v, path,
                    "an object of header names and values, e.g. "
                    "{\"Authorization\": \"Bearer ...\"}",
                    "");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    const char **lines = walk_alloc_array(w, n + 1, sizeof *lines);
    struct walk_name *names = calloc(n ? n : 1, sizeof *names);
    if (!lines || !names) {
        w->jf->oom = true;
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
            jf_error(w->jf, h, sub,
                     "%s is not a header name (letters, digits and !#$%%&'*+-.^_`|~ only)",
                     DIAG_SHOW(d, name));
            continue;
        }
        names[nn] = (struct walk_name){name, h, nn};
        nn++;
        bool reserved = false;
        for (size_t i = 0; reserved_headers[i]; i++)
            reserved = reserved || strcasecmp(name, reserved_headers[i]) == 0;
        if (reserved) {
            jf_error(w->jf, h, sub, "is set by the gateway itself and cannot be configured");
            continue;
        }
        if (!cJSON_IsString(h)) {
            jf_mismatch(w->jf, h, sub, "the header's value as a string", "");
            continue;
        }
        bool clean = true;
        for (const char *p = h->valuestring; *p; p++)
            if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
                clean = false;
        if (!clean) {
            /* Never echo a header value: it is often a secret. */
            jf_error(w->jf, h, sub, "the value has a line break or control character; remove it");
            continue;
        }
        size_t nl = strlen(name), vl = strlen(h->valuestring);
        char *line = walk_alloc(w, nl + vl + 3);
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
    walk_dups(w->jf, names, nn, true, header_dup, path);
    free(names);
    b->headers = lines;
    b->nheaders = got;
}

static const struct walk_key backend_keys[] = {
    {.name = "name", .fn = key_bname},
    {.name = "url",
     .fn = key_url,
     .required = "the Ollama server's address, e.g. \"url\": \"http://127.0.0.1:11434\""},
    {.name = "max_inflight",
     .fn = walk_set_uint,
     .off = offsetof(struct cfg_backend, max_inflight),
     .width = sizeof(unsigned),
     .min = 0,
     .max = 100000,
     .def = 0},
    {.name = "max_queue",
     .fn = walk_set_uint,
     .off = offsetof(struct cfg_backend, max_queue),
     .width = sizeof(unsigned),
     .min = 0,
     .max = 100000,
     .def = 100},
    {.name = "weight",
     .fn = walk_set_uint,
     .off = offsetof(struct cfg_backend, weight),
     .width = sizeof(unsigned),
     .min = 1,
     .max = 1000,
     .def = 1},
    {.name = "headers", .fn = key_headers},
};
static const struct walk_table backend_table = WALK_TABLE(backend_keys);

static void backend_dup(struct jf *f, const struct walk_name *first, const struct walk_name *again,
                        const void *ud)
{
    (void)ud;
    char sub[WALK_PATH_MAX], d[DIAG_SHOWBUF];
    snprintf(sub, sizeof sub, "backends[%zu].name", again->idx);
    jf_error(f, again->item, sub,
             "%s is already the name of backends[%zu] (line %u); names must be unique",
             DIAG_SHOW(d, again->name), first->idx, jf_line(f, first->item));
}

static void key_backends(struct walk *w, const cJSON *v, const char *path, void *base,
                         const struct walk_key *k)
{
    (void)k;
    struct ctx *x = ctx_of(w);
    struct cfg *c = base;
    char sub[WALK_PATH_MAX];
    if (!cJSON_IsArray(v)) {
        jf_mismatch(w->jf, v, path,
                    "a list of backends, e.g. [{\"name\": \"local\", \"url\": "
                    "\"http://127.0.0.1:11434\"}]",
                    "");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0) {
        jf_error(w->jf, v, path,
                 "is empty: list at least one Ollama server, e.g. [{\"name\": \"local\", "
                 "\"url\": \"http://127.0.0.1:11434\"}]");
        return;
    }
    if (n > CFG_MAX_BACKENDS) {
        jf_error(w->jf, v, path, "lists %zu backends; at most %d are supported", n,
                 CFG_MAX_BACKENDS);
        return;
    }
    struct cfg_backend *bs = walk_alloc_array(w, n, sizeof *bs);
    struct walk_name *names = calloc(n, sizeof *names);
    if (!bs || !names) {
        w->jf->oom = true;
        free(names);
        return;
    }
    size_t i = 0, nn = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        struct cfg_backend *b = &bs[i];
        diag_path_index(sub, sizeof sub, path, i);
        walk_defaults(w, &backend_table, b);
        walk_object(w, e, sub, &backend_table, b);
        if (!b->name) {
            char def[32];
            snprintf(def, sizeof def, "backend%zu", i);
            b->name = walk_strdup(w, def);
        }
        if (!b->headers) {
            const char **none = walk_alloc(w, sizeof *none);
            b->headers = none;
        }
        const cJSON *ne = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "name") : NULL;
        if (b->name)
            names[nn++] = (struct walk_name){b->name, ne ? ne : e, i};
    }
    walk_dups(w->jf, names, nn, false, backend_dup, NULL); /* sorts names */
    x->bnames = names;
    x->nbnames = nn;
    c->backends = bs;
    c->nbackends = n;
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
static const char *model_name(struct walk *w, const cJSON *v, const char *path)
{
    char d[DIAG_SHOWBUF];
    const char *s = walk_text(w, v, path, "an Ollama model name, e.g. \"llama3.2\"");
    if (!s)
        return NULL;
    if (!model_name_ok(s)) {
        jf_error(w->jf, v, path,
                 "%s is not a model name (no spaces or control characters, at most 256 "
                 "bytes)",
                 DIAG_SHOW(d, s));
        return NULL;
    }
    return walk_strdup(w, s);
}

/* "model": "name", or a list of the names one model has on different
 * backends (each backend is sent the first of them it lists). */
static void key_model(struct walk *w, const cJSON *v, const char *path, void *base,
                      const struct walk_key *k)
{
    (void)k;
    char sub[WALK_PATH_MAX];
    struct cfg_alias *a = base;
    size_t n = cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 1;
    if (cJSON_IsArray(v) && (n == 0 || n > 64)) {
        jf_error(w->jf, v, path, "lists %zu names; give 1 to 64 names of the model", n);
        return;
    }
    if (!cJSON_IsArray(v) && !cJSON_IsString(v)) {
        jf_mismatch(w->jf, v, path,
                    "an Ollama model name, e.g. \"llama3.2\", or a list of the names it has "
                    "on different backends",
                    "");
        return;
    }
    const char **names = walk_alloc_array(w, n + 1, sizeof *names);
    if (!names)
        return;
    size_t got = 0, i = 0;
    if (!cJSON_IsArray(v)) {
        if ((names[0] = model_name(w, v, path)))
            got = 1;
    } else {
        for (const cJSON *e = v->child; e; e = e->next, i++) {
            diag_path_index(sub, sizeof sub, path, i);
            if ((names[got] = model_name(w, e, sub)))
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

static void key_options(struct walk *w, const cJSON *v, const char *path, void *base,
                        const struct walk_key *k)
{
    (void)k;
    char sub[WALK_PATH_MAX];
    if (!cJSON_IsObject(v)) {
        jf_mismatch(w->jf, v, path, "an object of Ollama options, e.g. {\"num_ctx\": 8192}", "");
        return;
    }
    bool ok = true;
    for (const cJSON *o = v->child; o; o = o->next) {
        if (cJSON_IsNumber(o) || cJSON_IsString(o) || cJSON_IsBool(o) || cJSON_IsArray(o))
            continue;
        diag_path_key(sub, sizeof sub, path, o->string);
        jf_mismatch(w->jf, o, sub, "a number, string, boolean or array", "");
        ok = false;
    }
    if (ok)
        ((struct cfg_alias *)base)->options = v;
}

static void alias_backend_dup(struct jf *f, const struct walk_name *first,
                              const struct walk_name *again, const void *ud)
{
    (void)first;
    char sub[WALK_PATH_MAX], d[DIAG_SHOWBUF];
    diag_path_index(sub, sizeof sub, ud, again->idx);
    jf_error(f, again->item, sub, "%s is listed twice", DIAG_SHOW(d, again->name));
}

static void key_alias_backends(struct walk *w, const cJSON *v, const char *path, void *base,
                               const struct walk_key *k)
{
    (void)k;
    struct ctx *x = ctx_of(w);
    char d[DIAG_SHOWBUF], sub[WALK_PATH_MAX];
    struct cfg_alias *a = base;
    if (!cJSON_IsArray(v)) {
        jf_mismatch(w->jf, v, path, "a list of backend names, e.g. [\"gpu1\"]", "");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0) {
        jf_error(w->jf, v, path,
                 "is empty: name at least one backend, or remove the key to allow any");
        return;
    }
    const char **names = walk_alloc_array(w, n + 1, sizeof *names);
    unsigned *idx = walk_alloc_array(w, n, sizeof *idx);
    struct walk_name *nv = calloc(n, sizeof *nv);
    if (!names || !idx || !nv) {
        w->jf->oom = true;
        free(nv);
        return;
    }
    size_t got = 0, i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        diag_path_index(sub, sizeof sub, path, i);
        const char *s = walk_text(w, e, sub, "a backend name");
        if (!s)
            continue;
        struct walk_name key = {.name = s};
        const struct walk_name *hit =
            x->nbnames ? bsearch(&key, x->bnames, x->nbnames, sizeof key, cmp_name_only) : NULL;
        if (!hit) {
            /* Without readable backends there is nothing to compare with. */
            if (x->backends_ok && !jf_spare(w->jf)) {
                const char *cands[16];
                size_t nc = 0;
                for (size_t b = 0; b < x->c->nbackends && nc < 16; b++)
                    if (x->c->backends[b].name)
                        cands[nc++] = x->c->backends[b].name;
                const char *sg = diag_suggest(s, cands, nc);
                if (sg)
                    jf_error(w->jf, e, sub, "no backend is named %s (did you mean \"%s\"?)",
                             DIAG_SHOW(d, s), sg);
                else
                    jf_error(w->jf, e, sub,
                             "no backend is named %s; the names are set in \"backends\"",
                             DIAG_SHOW(d, s));
            }
            continue;
        }
        nv[got] = (struct walk_name){hit->name, e, i};
        names[got] = hit->name;
        idx[got++] = (unsigned)hit->idx;
    }
    walk_dups(w->jf, nv, got, false, alias_backend_dup, path);
    free(nv);
    names[got] = NULL;
    a->backends = names;
    a->backend_index = idx;
    a->nbackends = got;
}

static const struct walk_key alias_keys[] = {
    {.name = "model",
     .fn = key_model,
     .required = "the Ollama model to use, e.g. \"model\": \"llama3.2\""},
    {.name = "options", .fn = key_options},
    {.name = "backends", .fn = key_alias_backends},
};
static const struct walk_table alias_table = WALK_TABLE(alias_keys);

static void alias_dup(struct jf *f, const struct walk_name *first, const struct walk_name *again,
                      const void *ud)
{
    (void)ud;
    char sub[WALK_PATH_MAX];
    diag_path_key(sub, sizeof sub, "aliases", again->name);
    jf_error(f, again->item, sub, "defined twice (first on line %u); remove one",
             jf_line(f, first->item));
}

static int cmp_alias_ptr(const void *a, const void *b)
{
    const struct cfg_alias *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static void parse_aliases(struct ctx *x, const cJSON *v)
{
    struct walk *w = &x->w;
    char d[DIAG_SHOWBUF], sub[WALK_PATH_MAX];
    const char *path = "aliases";
    if (!cJSON_IsObject(v)) {
        jf_mismatch(w->jf, v, path,
                    "an object of client-facing names and models, e.g. "
                    "{\"gpt-3.5-turbo\": \"llama3.2\"}",
                    "");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0)
        return;
    struct cfg_alias *as = walk_alloc_array(w, n, sizeof *as);
    struct walk_name *names = calloc(n, sizeof *names);
    if (!as || !names) {
        w->jf->oom = true;
        free(names);
        return;
    }
    size_t got = 0, i = 0;
    for (const cJSON *m = v->child; m; m = m->next, i++) {
        diag_path_key(sub, sizeof sub, path, m->string);
        const char *name = m->string;
        if (!model_name_ok(name)) {
            jf_error(w->jf, m, path,
                     "%s is not a usable model name (non-empty, no spaces or control "
                     "characters, at most 256 bytes)",
                     DIAG_SHOW(d, name));
            continue;
        }
        struct cfg_alias *a = &as[got];
        memset(a, 0, sizeof *a);
        if (cJSON_IsString(m)) {
            key_model(w, m, sub, a, NULL);
        } else if (cJSON_IsObject(m)) {
            walk_object(w, m, sub, &alias_table, a);
        } else {
            jf_mismatch(w->jf, m, sub, "a model name or {\"model\": ..., \"options\": {...}}", "");
            continue;
        }
        if (!a->model)
            continue;
        a->name = walk_strdup(w, name);
        a->glob = glob_is_pattern(name);
        a->order = (unsigned)i;
        names[got] = (struct walk_name){name, m, i};
        got++;
    }
    walk_dups(w->jf, names, got, false, alias_dup, NULL);
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
    const struct cfg_alias **ex = walk_alloc_array(&x->w, ne ? ne : 1, sizeof *ex);
    const struct cfg_alias **gl = walk_alloc_array(&x->w, ng ? ng : 1, sizeof *gl);
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

static void key_origins(struct walk *w, const cJSON *v, const char *path, void *base,
                        const struct walk_key *k)
{
    (void)k;
    char d[DIAG_SHOWBUF], sub[WALK_PATH_MAX], why[400];
    if (!cJSON_IsArray(v)) {
        jf_mismatch(w->jf, v, path,
                    "a list of origins, e.g. [\"https://app.example.com\"] or "
                    "[\"*\"]",
                    "");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    const char **o = walk_alloc_array(w, n + 1, sizeof *o);
    if (!o)
        return;
    size_t got = 0, i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        diag_path_index(sub, sizeof sub, path, i);
        const char *s = walk_text(w, e, sub, "an origin like \"https://app.example.com\"");
        if (!s)
            continue;
        if (strcmp(s, "*") == 0) {
            o[got++] = walk_strdup(w, "*");
            continue;
        }
        why[0] = '\0';
        const char *u = url(w, s, true, why, sizeof why);
        if (!u) {
            if (why[0])
                jf_error(w->jf, e, sub,
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

static void key_access(struct walk *w, const cJSON *v, const char *path, void *base,
                       const struct walk_key *k)
{
    const char *s = walk_text(w, v, path, "\"-\" (stdout), \"off\", or a file path");
    if (!s)
        return;
    const char *r = NULL;
    if (strcmp(s, "-") == 0)
        r = walk_strdup(w, "-");
    else if (strcmp(s, "off") != 0)
        r = walk_resolve(w, s);
    memcpy((char *)base + k->off, &r, sizeof r);
}

static void key_tls_listen(struct walk *w, const cJSON *v, const char *path, void *base,
                           const struct walk_key *k)
{
    (void)k;
    cfg_tls_t *t = base;
    parse_addrs(w, v, path, &t->listen, &t->nlisten);
}

static void key_priorities(struct walk *w, const cJSON *v, const char *path, void *base,
                           const struct walk_key *k)
{
    char d[DIAG_SHOWBUF], why[200];
    const char *s = walk_text(w, v, path, "a GnuTLS priority string, e.g. \"SECURE128\"");
    if (!s)
        return;
    if (tls_priorities_check(s, why, sizeof why) < 0) {
        jf_error(w->jf, v, path, "%s: %s (see gnutls-cli --list --priority STRING)",
                 DIAG_SHOW(d, s), why);
        return;
    }
    const char *p = walk_strdup(w, s);
    memcpy((char *)base + k->off, &p, sizeof p);
}

static const struct walk_key tls_keys[] = {
    {.name = "cert",
     .fn = walk_set_path,
     .off = offsetof(cfg_tls_t, cert),
     .required = "the certificate chain, PEM, e.g. \"cert\": \"cert.pem\""},
    {.name = "key",
     .fn = walk_set_path,
     .off = offsetof(cfg_tls_t, key),
     .required = "the private key, PEM, e.g. \"key\": \"key.pem\""},
    {.name = "listen", .fn = key_tls_listen},
    {.name = "priorities",
     .fn = key_priorities,
     .off = offsetof(cfg_tls_t, priorities),
     .sdef = TLS_DEFAULT_PRIORITIES},
};
static const struct walk_table tls_table = WALK_TABLE(tls_keys);

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const struct walk_key log_keys[] = {
    {.name = "level",
     .fn = walk_set_enum,
     .off = offsetof(cfg_log_t, level),
     .def = LOG_LEVEL_INFO,
     .arg = log_levels},
    {.name = "access", .fn = key_access, .off = offsetof(cfg_log_t, access), .sdef = "-"},
};
static const struct walk_table log_table = WALK_TABLE(log_keys);

static const struct walk_key cors_keys[] = {
    {.name = "origins", .fn = key_origins},
};
static const struct walk_table cors_table = WALK_TABLE(cors_keys);

static const struct walk_key metrics_keys[] = {
    {.name = "listen",
     .fn = key_addr,
     .off = offsetof(cfg_metrics_t, listen),
     .required = "where /metrics is served, e.g. \"listen\": \"127.0.0.1:9464\""},
};
static const struct walk_table metrics_table = WALK_TABLE(metrics_keys);

#define LIMIT(n, f, lo, hi, d)                                                                     \
    .name = n, .fn = walk_set_uint, .off = offsetof(struct cfg_limits, f),                         \
    .width = sizeof(((struct cfg_limits *)0)->f), .min = lo, .max = hi, .def = d

static const struct walk_key limits_keys[] = {
    {LIMIT("max_body_bytes", max_body_bytes, 1024, 1073741824, 16777216)},
    {LIMIT("max_connections", max_connections, 1, 1000000, 10000)},
    {LIMIT("max_connections_per_address", max_connections_per_address, 0, 1000000, 256)},
    {LIMIT("header_timeout_s", header_timeout_s, 1, 3600, 10)},
    {LIMIT("body_timeout_s", body_timeout_s, 1, 86400, 60)},
    {LIMIT("idle_timeout_s", idle_timeout_s, 1, 86400, 30)},
    {LIMIT("first_token_timeout_s", first_token_timeout_s, 1, 86400, 300)},
    {LIMIT("idle_stream_timeout_s", idle_stream_timeout_s, 1, 86400, 120)},
    {LIMIT("queue_timeout_s", queue_timeout_s, 1, 3600, 30)},
    {LIMIT("keepalive_interval_s", keepalive_interval_s, 1, 3600, 5)},
    {LIMIT("auth_failures_per_minute", auth_failures_per_minute, 0, 1000000, 10)},
    {LIMIT("shutdown_grace_s", shutdown_grace_s, 0, 86400, 30)},
    {LIMIT("max_buffered_bytes", max_buffered_bytes, 0, 1ULL << 40, 1ULL << 30),
     .means = "(0 = no budget)"},
    {.name = "auth_guard_exempt",
     .fn = key_cidrs,
     .off = offsetof(struct cfg_limits, auth_guard_exempt)},
};
static const struct walk_table limits_table = WALK_TABLE(limits_keys);

static void key_metrics(struct walk *w, const cJSON *v, const char *path, void *base,
                        const struct walk_key *k)
{
    cfg_metrics_t *m = (cfg_metrics_t *)((char *)base + k->off);
    uint64_t seen = walk_object(w, v, path, &metrics_table, m);
    m->enabled = (seen & walk_bit(&metrics_table, "listen")) && m->listen.host[0];
}

static void key_aliases(struct walk *w, const cJSON *v, const char *path, void *base,
                        const struct walk_key *k)
{
    (void)path;
    (void)base;
    (void)k;
    ctx_of(w)->aliases = v; /* checked once the backends are known */
}

static const char *const auth_choices[] = {"keys", "none", NULL};

static const struct walk_key top_keys[] = {
    {.name = "listen", .fn = key_listen},
    {.name = "tls", .fn = walk_set_object, .off = offsetof(struct cfg, tls), .arg = &tls_table},
    {.name = "workers",
     .fn = walk_set_uint,
     .off = offsetof(struct cfg, workers),
     .width = sizeof(unsigned),
     .min = 0,
     .max = 256,
     .def = 0},
    {.name = "keys_file",
     .fn = walk_set_path,
     .off = offsetof(struct cfg, keys_file),
     .sdef = "keys.json"},
    {.name = "auth",
     .fn = walk_set_enum,
     .off = offsetof(struct cfg, auth),
     .def = CFG_AUTH_KEYS,
     .arg = auth_choices},
    {.name = "allow_unauthenticated_public",
     .fn = walk_set_bool,
     .off = offsetof(struct cfg, allow_unauthenticated_public),
     .def = 0},
    {.name = "trusted_proxies", .fn = key_cidrs, .off = offsetof(struct cfg, trusted_proxies)},
    {.name = "backends",
     .fn = key_backends,
     .required = "list the Ollama servers, e.g. \"backends\": [{\"name\": \"local\", \"url\": "
                 "\"http://127.0.0.1:11434\"}]"},
    {.name = "aliases", .fn = key_aliases},
    {.name = "discovery_interval_s",
     .fn = walk_set_uint,
     .off = offsetof(struct cfg, discovery_interval_s),
     .width = sizeof(unsigned),
     .min = 1,
     .max = 3600,
     .def = 5},
    {.name = "expose_backend_models",
     .fn = walk_set_bool,
     .off = offsetof(struct cfg, expose_backend_models),
     .def = 1},
    {.name = "native_api", .fn = walk_set_bool, .off = offsetof(struct cfg, native_api), .def = 1},
    {.name = "limits",
     .fn = walk_set_object,
     .off = offsetof(struct cfg, limits),
     .arg = &limits_table},
    {.name = "cors", .fn = walk_set_object, .off = offsetof(struct cfg, cors), .arg = &cors_table},
    {.name = "log", .fn = walk_set_object, .off = offsetof(struct cfg, log), .arg = &log_table},
    {.name = "metrics", .fn = key_metrics, .off = offsetof(struct cfg, metrics)},
    {.name = "shared", .fn = sharedcfg_key, .off = offsetof(struct cfg, shared)},
};

/* Nested tables searched for a key written at the top level by mistake. */
static const struct walk_nest top_nest[] = {
    {"limits", &limits_table}, {"log", &log_table},         {"tls", &tls_table},
    {"cors", &cors_table},     {"metrics", &metrics_table}, {"backends[]", &backend_table},
};

static const struct walk_table top_table = {
    .keys = top_keys,
    .n = sizeof top_keys / sizeof top_keys[0],
    .nest = top_nest,
    .nnest = sizeof top_nest / sizeof top_nest[0],
};

/* ---- after the walk ---- */

static void check_cross(struct ctx *x, const cJSON *root)
{
    struct cfg *c = x->c;
    char d[DIAG_SHOWBUF], d2[DIAG_SHOWBUF];
    /* Without keys, anyone who can reach the port can use the GPUs. */
    if (c->auth == CFG_AUTH_NONE && !c->allow_unauthenticated_public) {
        for (size_t i = 0; i < c->nlisten; i++) {
            if (!c->listen[i].loopback) {
                jf_error(&x->jf, cJSON_GetObjectItemCaseSensitive(root, "auth"), "auth",
                         "\"none\" with the non-loopback listen address %s would let anyone who "
                         "can reach it use the backends: use \"auth\": \"keys\", listen on "
                         "127.0.0.1 or [::1], or set \"allow_unauthenticated_public\": true",
                         DIAG_SHOW(d, c->listen[i].text));
                break;
            }
        }
    }
    /* A budget below one body would refuse every request that carries one
     * of the largest bodies allowed, forever. */
    if (c->limits.max_buffered_bytes && c->limits.max_buffered_bytes < c->limits.max_body_bytes) {
        const cJSON *li = cJSON_GetObjectItemCaseSensitive(root, "limits");
        const cJSON *bi = li ? cJSON_GetObjectItemCaseSensitive(li, "max_buffered_bytes") : NULL;
        jf_error(&x->jf, bi ? bi : li, "limits.max_buffered_bytes",
                 "%zu is less than limits.max_body_bytes (%zu): a request with a body that large "
                 "could never be admitted; raise it, or use 0 for no budget",
                 c->limits.max_buffered_bytes, c->limits.max_body_bytes);
    }
    if (c->metrics.enabled) {
        for (size_t i = 0; i < c->nlisten; i++) {
            if (netaddr_overlap(&c->listen[i], &c->metrics.listen)) {
                const cJSON *mi = cJSON_GetObjectItemCaseSensitive(root, "metrics");
                const cJSON *li = mi ? cJSON_GetObjectItemCaseSensitive(mi, "listen") : NULL;
                jf_error(&x->jf, li ? li : mi, "metrics.listen",
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
    struct netaddr *a = walk_alloc(&x->w, sizeof *a);
    if (!a || netaddr_parse(a, "127.0.0.1:8080", why, sizeof why) < 0)
        return;
    x->c->listen = a;
    x->c->nlisten = 1;
}

/* "tls" makes every listen address speak TLS, or, with "tls.listen", adds
 * those addresses as TLS listeners beside the plain ones. */
static void merge_tls_listen(struct ctx *x, const cJSON *root)
{
    struct cfg *c = x->c;
    if (!c->tls.cert)
        return;
    if (!c->tls.nlisten) {
        for (size_t i = 0; i < c->nlisten; i++)
            ((struct netaddr *)&c->listen[i])->tls = true;
        return;
    }
    const cJSON *tl = cJSON_GetObjectItemCaseSensitive(root, "tls");
    tl = tl ? cJSON_GetObjectItemCaseSensitive(tl, "listen") : NULL;
    size_t n = c->nlisten + c->tls.nlisten;
    if (n > CFG_MAX_LISTEN) {
        jf_error(&x->jf, tl, "tls.listen",
                 "listen and tls.listen list %zu addresses together; at most %d are supported", n,
                 CFG_MAX_LISTEN);
        return;
    }
    struct netaddr *all = walk_alloc_array(&x->w, n, sizeof *all);
    if (!all)
        return;
    memcpy(all, c->listen, c->nlisten * sizeof *all);
    size_t got = c->nlisten;
    char d[DIAG_SHOWBUF], d2[DIAG_SHOWBUF], sub[WALK_PATH_MAX];
    for (size_t i = 0; i < c->tls.nlisten; i++) {
        const struct netaddr *a = &c->tls.listen[i];
        bool clash = false;
        for (size_t j = 0; j < c->nlisten && !clash; j++) {
            if (!netaddr_overlap(&c->listen[j], a))
                continue;
            const cJSON *e = cJSON_IsArray(tl) ? cJSON_GetArrayItem(tl, (int)i) : tl;
            diag_path_index(sub, sizeof sub, "tls.listen", i);
            jf_error(&x->jf, e ? e : tl, sub,
                     "%s is also a plain listen address (%s): one port speaks either TLS or "
                     "plain HTTP; list it in one place only",
                     DIAG_SHOW(d, a->text), DIAG_SHOW(d2, c->listen[j].text));
            clash = true;
        }
        if (clash)
            continue;
        all[got] = *a;
        all[got++].tls = true;
    }
    c->listen = all;
    c->nlisten = got;
}

static void cfg_free(struct cfg *c)
{
    if (!c)
        return;
    tls_creds_unref(c->tls.creds);
    cJSON_Delete(c->json);
    arena_free(c->arena);
    free(c);
}

/* The notices move into the snapshot, sorted by line. */
static void keep_notices(struct ctx *x)
{
    const char **v = walk_alloc_array(&x->w, x->jf.notes.n + 1, sizeof *v);
    if (!v)
        return;
    size_t n = jf_notes(&x->jf, v);
    for (size_t i = 0; i < n; i++)
        v[i] = walk_strdup(&x->w, v[i]);
    x->c->notices = v;
    x->c->nnotices = n;
}

struct cfg *cfg_load_buffer(const char *text, size_t len, const char *name, const char *base_dir,
                            struct cfg_errors *errs)
{
    struct ctx x = {0};
    jf_init(&x.jf, name ? name : "gateway.json", &gateway_json);
    char cwd[PATH_MAX];
    struct cfg *c = calloc(1, sizeof *c);
    if (!c) {
        x.jf.oom = true;
        goto out;
    }
    atomic_init(&c->refs, 1);
    x.c = c;
    if (!base_dir)
        base_dir = getcwd(cwd, sizeof cwd) ? cwd : "/";
    x.w = (struct walk){.jf = &x.jf, .arena = &c->arena, .base_dir = base_dir};
    c->path = walk_strdup(&x.w, x.jf.name);
    c->dir = walk_strdup(&x.w, base_dir);

    if (len > CFG_MAX_FILE_BYTES) {
        jf_error_line(&x.jf, 0, NULL, "is larger than %u bytes; is this the right file?",
                      CFG_MAX_FILE_BYTES);
        goto out;
    }
    cJSON *root = jf_parse(&x.jf, text, len);
    if (!root)
        goto out;
    c->json = root;
    if (!cJSON_IsObject(root)) {
        char d[DIAG_SHOWBUF];
        jf_error(&x.jf, root, NULL, "the file must hold one JSON object { ... }, not %s",
                 jf_describe(&x.jf, root, d, sizeof d));
        goto out;
    }

    walk_defaults(&x.w, &top_table, c);
    default_guard_exempt(&x);
    uint64_t seen = walk_object(&x.w, root, "", &top_table, c);
    if (x.aliases)
        parse_aliases(&x, x.aliases);
    if (!(seen & walk_bit(&top_table, "listen")))
        add_default_listen(&x);
    merge_tls_listen(&x, root);
    check_cross(&x, root);
    index_aliases(&x);
    keep_notices(&x);

out:
    if (jf_failed(&x.jf)) {
        unsigned n = jf_report(&x.jf, errs ? &errs->text : NULL);
        if (errs)
            errs->count += n;
        cfg_free(c);
        c = NULL;
    }
    free(x.bnames);
    jf_free(&x.jf);
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

void cfg_errors_add(struct cfg_errors *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (e) {
        buf_vprintf(&e->text, fmt, ap);
        buf_puts(&e->text, "\n");
        e->count++;
    } else {
        char msg[LOG_LINE_MAX]; /* a longer line is cut by the log anyway */
        vsnprintf(msg, sizeof msg, fmt, ap);
        log_error("%s", msg);
    }
    va_end(ap);
}

struct cfg *cfg_load(const char *path, struct cfg_errors *errs)
{
    struct cfg *c = NULL;
    char *text = NULL;
    size_t len;
    /* O_NONBLOCK: a FIFO there would hold the start or a reload until
     * something writes to it; a regular file ignores it */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        cfg_errors_add(errs, "%s: cannot open: %s%s", path, strerror(e),
                       e == ENOENT ? " (name another file with -c FILE)" : "");
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        cfg_errors_add(errs, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        cfg_errors_add(errs, "%s: is not a regular file", path);
        goto out;
    }
    if (fileio_read_all(fd, CFG_MAX_FILE_BYTES, &text, &len) < 0) {
        if (errno == EFBIG)
            cfg_errors_add(errs, "%s: is larger than %u bytes; is this the right file?", path,
                           CFG_MAX_FILE_BYTES);
        else if (errno == ENOMEM)
            cfg_errors_add(errs, "%s: out of memory", path);
        else
            cfg_errors_add(errs, "%s: cannot read: %s", path, strerror(errno));
        goto out;
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
        cfg_errors_add(errs, "%s: cannot resolve its folder: %s", path, strerror(errno));
        goto out;
    }
    c = cfg_load_buffer(text, len, path, dir, errs);
    if (c && c->tls.cert) {
        /* The certificate and key are judged with the rest, so that `check`,
         * the start and a reload refuse the same files. */
        char why[1024];
        c->tls.creds = tls_creds_load(c->tls.cert, c->tls.key, why, sizeof why);
        if (!c->tls.creds) {
            cfg_errors_add(errs, "%s: tls: %s", path, why);
            cfg_unref(c);
            c = NULL;
        }
    }
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
