#include "buf.h"

#include "membudget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->counted = false;
}

void buf_count(struct buf *b)
{
    if (b->counted)
        return;
    b->counted = true;
    if (b->cap)
        membudget_charge(b->cap);
}

void buf_free(struct buf *b)
{
    if (b->counted && b->cap)
        membudget_release(b->cap);
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

void buf_truncate(struct buf *b, size_t len)
{
    b->len = len;
    if (b->p)
        b->p[len] = '\0';
}

int buf_reserve(struct buf *b, size_t n)
{
    if (n > b->max - b->len)
        return BUF_FULL;
    size_t need = b->len + n + 1; /* + the '\0' */
    if (need <= b->cap)
        return 0;
    /* The first allocation is what is asked for (at least 256 bytes): a
     * reservation of a known size (a declared body) costs exactly that;
     * later growth doubles. */
    size_t cap = b->cap ? b->cap : need > 256 ? need : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->p, cap);
    if (!p)
        return BUF_NOMEM;
    if (b->counted)
        membudget_charge(cap - b->cap);
    b->p = p;
    b->cap = cap;
    return 0;
}

int buf_append_grow(struct buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    int rc = buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int buf_put_int(struct buf *b, long long v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    return buf_append(b, tmp + i, sizeof tmp - i);
}

static _Thread_local size_t moved; /* per thread: workers never share a buf */

size_t buf_unread(const struct buf *b, const struct buf_reader *rd)
{
    return b->len - rd->off;
}

size_t buf_read(struct buf *b, struct buf_reader *rd, void *dst, size_t max)
{
    size_t n = b->len - rd->off;
    if (n > max)
        n = max;
    if (n)
        memcpy(dst, b->p + rd->off, n);
    rd->off += n;
    size_t left = b->len - rd->off;
    if (!left) {
        buf_reset(b);
        rd->off = 0;
    } else if (rd->off >= BUF_COMPACT_MIN && rd->off >= left) {
        memmove(b->p, b->p + rd->off, left);
        moved += left;
        buf_truncate(b, left);
        rd->off = 0;
    }
    return n;
}

size_t buf_bytes_moved(void)
{
    return moved;
}

/* Append the escaped bytes of s (no quotes); on -1 the caller rolls back.
 * Always inlined: buf_json_str runs for every string of every answer, and
 * was a single function before buf_json_esc shared its loop. */
__attribute__((always_inline)) static inline int json_escape(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* bytes copied verbatim since the last escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen = 0;
        switch (c) {
        case '"':
            esc[0] = '\\', esc[1] = '"', elen = 2;
            break;
        case '\\':
            esc[0] = '\\', esc[1] = '\\', elen = 2;
            break;
        case '\n':
            esc[0] = '\\', esc[1] = 'n', elen = 2;
            break;
        case '\r':
            esc[0] = '\\', esc[1] = 'r', elen = 2;
            break;
        case '\t':
            esc[0] = '\\', esc[1] = 't', elen = 2;
            break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            } else if (c >= 0x80) {
                size_t k = buf_utf8_len((const unsigned char *)s + i, n - i);
                if (k) {
                    run += k;
                    i += k - 1;
                    continue;
                }
                memcpy(esc, "\xef\xbf\xbd", 3); /* U+FFFD */
                elen = 3;
            }
        }
        if (!elen) {
            run++;
            continue;
        }
        if (buf_append(b, s + i - run, run) < 0 || buf_append(b, esc, elen) < 0)
            return -1;
        run = 0;
    }
    return buf_append(b, s + n - run, run);
}

int buf_json_str(struct buf *b, const char *s, size_t n)
{
    size_t start = b->len;
    /* Worst case is 6 bytes per input byte; reserve once for the common case. */
    if (buf_reserve(b, n + 2) < 0)
        return -1;
    if (buf_append(b, "\"", 1) < 0 || json_escape(b, s, n) < 0 || buf_append(b, "\"", 1) < 0) {
        buf_truncate(b, start);
        return -1;
    }
    return 0;
}

int buf_json_esc(struct buf *b, const char *s, size_t n)
{
    size_t start = b->len;
    if (buf_reserve(b, n) < 0)
        return -1;
    if (json_escape(b, s, n) < 0) {
        buf_truncate(b, start);
        return -1;
    }
    return 0;
}

char *buf_detach(struct buf *b, size_t *len)
{
    char *p = b->p;
    if (len)
        *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}
