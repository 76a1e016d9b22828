#include "jscan.h"

#include <stdint.h>
#include <string.h>

/* Each byte of v that is b, as its top bit (exact for the lowest such byte;
 * a borrow may also mark bytes above it, which plain_run never looks at). */
#define BYTES_EQ(v, b)                                                                             \
    ((((v) ^ (0x0101010101010101u * (b))) - 0x0101010101010101u) &                                 \
     ~((v) ^ (0x0101010101010101u * (b))) & 0x8080808080808080u)

/*
 * The first byte at or after p inside a string literal that needs a look:
 * '"', '\\', a control character, and, with high, a byte of 0x80 or more;
 * end when there is none. Eight bytes per step: token text is mostly plain
 * ASCII, and a stream scans every line's strings (a third of a streamed
 * request's own instructions went to this loop a byte at a time).
 */
static const char *plain_run(const char *p, const char *end, bool high)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t top = high ? 0x8080808080808080u : 0;
    while (end - p >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        uint64_t m = BYTES_EQ(v, '"') | BYTES_EQ(v, '\\') | (v & top) |
                     ((v - 0x2020202020202020u) & ~v & 0x8080808080808080u); /* < 0x20 */
        if (m)
            return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\' || c < 0x20 || (high && c >= 0x80))
            return p;
    }
    return end;
}

const char *jscan_string(const char *p, const char *end, bool verbatim, struct str *lit)
{
    static const char hex[] = "0123456789abcdef";
    const char *start = p;
    if (p >= end || *p != '"')
        return NULL;
    for (p++; p < end; p++) {
        p = plain_run(p, end, verbatim);
        if (p >= end)
            break;
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            lit->p = start;
            lit->len = (size_t)(p + 1 - start);
            return p + 1;
        }
        if (c < 0x20)
            return NULL;
        if (c >= 0x80 && verbatim) {
            /* buf_json_str writes U+FFFD for a byte of malformed UTF-8 */
            size_t k = buf_utf8_len((const unsigned char *)p, (size_t)(end - p));
            if (!k)
                return NULL;
            p += k - 1;
            continue;
        }
        if (c != '\\')
            continue;
        if (++p >= end)
            return NULL;
        switch (*p) {
        case '"':
        case '\\':
        case 'n':
        case 'r':
        case 't':
            break;
        case 'u': {
            if (end - p < 5)
                return NULL;
            /* Only \u00XX for a control character other than \n \r \t, in
             * lower-case hex, is written back identically. Elsewhere any
             * escape but a surrogate (which cJSON may refuse) will do. */
            if (!verbatim) {
                unsigned v = 0;
                for (int k = 1; k <= 4; k++) {
                    const char *h = strchr(hex, p[k] | 0x20);
                    if (!p[k] || !h || !*h)
                        return NULL;
                    v = v * 16 + (unsigned)(h - hex);
                }
                if (v >= 0xd800 && v <= 0xdfff)
                    return NULL;
                p += 4;
                break;
            }
            if (p[1] != '0' || p[2] != '0' || (p[3] != '0' && p[3] != '1'))
                return NULL;
            const char *h = strchr(hex, p[4]);
            if (!h || !*h)
                return NULL;
            int v = (p[3] - '0') * 16 + (int)(h - hex);
            if (v == 0 || v == '\n' || v == '\r' || v == '\t')
                return NULL;
            p += 4;
            break;
        }
        default:
            if (verbatim)
                return NULL;
            if (!*p || !strchr("/bf", *p)) /* strchr finds the NUL too */
                return NULL;
        }
    }
    return NULL;
}

const char *jscan_count_array(const char *p, const char *end)
{
    long v;
    if (p >= end || *p != '[')
        return NULL;
    p = jscan_ws(p + 1, end);
    if (p < end && *p == ']')
        return p + 1;
    for (;;) {
        p = jscan_count(p, end, &v);
        if (!p)
            return NULL;
        p = jscan_ws(p, end);
        if (p < end && *p == ',') {
            p = jscan_ws(p + 1, end);
            continue;
        }
        return p < end && *p == ']' ? p + 1 : NULL;
    }
}

bool jscan_has_nul(const char *p, const char *end)
{
    /* Outside strings a backslash is not valid JSON at all, so counting the
     * run of backslashes before each "u0000" is enough: an odd run ends in
     * the escape's own backslash. */
    for (const char *u = p; end - u >= 5; u++) {
        u = memchr(u, 'u', (size_t)(end - u));
        if (!u || end - u < 5)
            return false;
        if (memcmp(u, "u0000", 5) != 0)
            continue;
        size_t run = 0;
        for (const char *b = u; b > p && b[-1] == '\\'; b--)
            run++;
        if (run % 2 == 1)
            return true;
    }
    return false;
}
