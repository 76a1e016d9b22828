#include "diag.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* s as a quoted string for a message: at most ~48 bytes of it, control
 * characters as '?', quotes and backslashes escaped. */
const char *diag_show(char *out, size_t outsz, const char *s)
{
    size_t o = 0, i = 0;
    const size_t limit = 48;
    out[o++] = '"';
    for (; s[i] && i < limit && o + 4 < outsz; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            out[o++] = '\\';
        out[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (s[i] && o + 5 < outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

bool diag_is_ident(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* parent.key, or parent["key"] when the key is not a plain identifier. */
void diag_path_key(char *out, size_t n, const char *parent, const char *key)
{
    char q[DIAG_SHOWBUF];
    if (diag_is_ident(key) && strlen(key) < 64)
        snprintf(out, n, "%s%s%s", parent, *parent ? "." : "", key);
    else
        snprintf(out, n, "%s[%s]", parent, DIAG_SHOW(q, key));
}

void diag_path_index(char *out, size_t n, const char *parent, size_t i)
{
    snprintf(out, n, "%s[%zu]", parent, i);
}

unsigned diag_line_at(const char *s, size_t len, size_t off)
{
    unsigned line = 1;
    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++)
        if (s[i] == '\n')
            line++;
    return line;
}

/* Optimal string alignment distance: edits and swaps of neighbours ("modle"). */
size_t diag_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t r0[65], r1[65], r2[65]; /* rows i-2, i-1, i */
    size_t *pp = r0, *p = r1, *cur = r2;
    for (size_t j = 0; j <= lb; j++)
        p[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = p[j - 1] + (a[i - 1] != b[j - 1]);
            if (p[j] + 1 < best)
                best = p[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = pp;
        pp = p;
        p = cur;
        cur = t;
    }
    return p[lb];
}

/* Is `cand` a likely meaning of the mistyped `s`? Lower score = closer. */
static size_t closeness(const char *s, const char *cand)
{
    size_t ls = strlen(s), lc = strlen(cand);
    size_t d = diag_edit_distance(s, cand);
    size_t allowed = (ls < lc ? ls : lc) / 3;
    if (allowed < 1)
        allowed = 1;
    if (allowed > 3)
        allowed = 3;
    if (d <= allowed)
        return d;
    /* "warning" for "warn", "max_body" for "max_body_bytes" */
    size_t m = ls < lc ? ls : lc;
    if (m >= 3 && strncasecmp(s, cand, m) == 0)
        return 4;
    if (strcasecmp(s, cand) == 0)
        return 0;
    return SIZE_MAX;
}

const char *diag_suggest(const char *s, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t d = closeness(s, cands[i]);
        if (d < bestd) {
            bestd = d;
            best = cands[i];
        }
    }
    return best;
}
