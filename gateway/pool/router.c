#include "router.h"

#include "glob.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const struct cfg_alias *router_alias(const struct cfg *c, const char *client_model)
{
    if (!c || !client_model)
        return NULL;
    /* Exact names: a binary search over the sorted index. */
    size_t lo = 0, hi = c->nexact;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(client_model, c->exact[mid]->name);
        if (cmp == 0)
            return c->exact[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    /* Globs in file order; a longer pattern beats a shorter one, the first
     * of equal length stays. */
    const struct cfg_alias *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < c->nglobs; i++) {
        const struct cfg_alias *a = c->globs[i];
        size_t len = strlen(a->name);
        if ((!best || len > best_len) && glob_match(a->name, client_model)) {
            best = a;
            best_len = len;
        }
    }
    return best;
}

/* A model name in Ollama's parts; missing parts are empty spans. */
struct mname {
    const char *host, *ns, *model, *tag, *digest;
    size_t host_len, ns_len, model_len, tag_len, digest_len;
};

static void split_name(const char *s, struct mname *n)
{
    size_t len = strlen(s);
    memset(n, 0, sizeof *n);
    /* "@digest" first: it contains ':' itself. */
    const char *at = NULL;
    const char *last_slash = NULL;
    for (const char *p = s; *p; p++) {
        if (*p == '/')
            last_slash = p;
    }
    at = strchr(last_slash ? last_slash : s, '@');
    if (at) {
        n->digest = at + 1;
        n->digest_len = (size_t)(s + len - at - 1);
        len = (size_t)(at - s);
    }
    const char *base = last_slash ? last_slash + 1 : s;
    const char *colon = NULL;
    for (const char *p = base; p < s + len; p++)
        if (*p == ':')
            colon = p;
    const char *mend = colon ? colon : s + len;
    if (colon) {
        n->tag = colon + 1;
        n->tag_len = (size_t)(s + len - colon - 1);
    }
    n->model = base;
    n->model_len = (size_t)(mend - base);
    if (last_slash) {
        /* What precedes the model: "ns", or "host/ns"; as in Ollama's
         * ParseNameBare the namespace is the last segment and the host all
         * the rest, less any "scheme://". */
        const char *prefix = s;
        size_t plen = (size_t)(last_slash - s);
        const char *slash = memrchr(prefix, '/', plen);
        if (slash) {
            n->host = prefix;
            n->host_len = (size_t)(slash - prefix);
            n->ns = slash + 1;
            n->ns_len = plen - n->host_len - 1;
            const char *scheme = memmem(n->host, n->host_len, "://", 3);
            if (scheme) {
                n->host_len -= (size_t)(scheme + 3 - n->host);
                n->host = scheme + 3;
            }
        } else {
            n->ns = prefix;
            n->ns_len = plen;
        }
    }
}

static bool span_eq(const char *a, size_t al, const char *b, size_t bl, const char *def)
{
    if (al == 0) {
        a = def;
        al = strlen(def);
    }
    if (bl == 0) {
        b = def;
        bl = strlen(def);
    }
    return al == bl && strncasecmp(a, b, al) == 0;
}

bool router_model_eq(const char *a, const char *b)
{
    if (!a || !b || !*a || !*b)
        return false;
    struct mname x, y;
    split_name(a, &x);
    split_name(b, &y);
    if (x.model_len == 0 || y.model_len == 0)
        return false;
    if (x.digest_len && y.digest_len &&
        !(x.digest_len == y.digest_len && strncasecmp(x.digest, y.digest, x.digest_len) == 0))
        return false;
    return span_eq(x.model, x.model_len, y.model, y.model_len, "") &&
           span_eq(x.tag, x.tag_len, y.tag, y.tag_len, "latest") &&
           span_eq(x.ns, x.ns_len, y.ns, y.ns_len, "library") &&
           span_eq(x.host, x.host_len, y.host, y.host_len, "registry.ollama.ai");
}

int router_model_normalize(const char *name, char *out, size_t outsz)
{
    if (outsz == 0)
        return -1;
    out[0] = '\0';
    struct mname n;
    split_name(name, &n);
    int k;
    if (n.tag) {
        k = snprintf(out, outsz, "%s", name);
    } else {
        size_t head = n.digest ? (size_t)(n.digest - 1 - name) : strlen(name);
        k = snprintf(out, outsz, "%.*s:latest%s%s", (int)head, name, n.digest ? "@" : "",
                     n.digest ? n.digest : "");
    }
    if (k < 0 || (size_t)k >= outsz) {
        out[0] = '\0';
        return -1;
    }
    return k;
}

/* s[0..n) lower-cased onto out at *len, then sep; false when out is full. */
static bool put_lower(char *out, size_t outsz, size_t *len, const char *s, size_t n,
                      const char *sep)
{
    size_t sl = strlen(sep);
    if (*len + n + sl >= outsz)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        out[(*len)++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    memcpy(out + *len, sep, sl + 1);
    *len += sl;
    return true;
}

static bool span_is(const char *s, size_t n, const char *def)
{
    return n == 0 || (n == strlen(def) && strncasecmp(s, def, n) == 0);
}

int router_model_label(const char *name, char *out, size_t outsz)
{
    if (outsz == 0)
        return -1;
    out[0] = '\0';
    struct mname n;
    split_name(name ? name : "", &n);
    if (n.model_len == 0)
        return -1;
    bool host = !span_is(n.host, n.host_len, "registry.ollama.ai");
    bool ns = host || !span_is(n.ns, n.ns_len, "library");
    bool tag = !span_is(n.tag, n.tag_len, "latest");
    size_t len = 0;
    bool ok = (!host || put_lower(out, outsz, &len, n.host, n.host_len, "/")) &&
              (!ns || put_lower(out, outsz, &len, n.ns_len ? n.ns : "library",
                                n.ns_len ? n.ns_len : 7, "/")) &&
              put_lower(out, outsz, &len, n.model, n.model_len, tag ? ":" : "") &&
              (!tag || put_lower(out, outsz, &len, n.tag, n.tag_len, ""));
    if (!ok) {
        out[0] = '\0';
        return -1;
    }
    return (int)len;
}
