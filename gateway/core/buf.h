/*
 * buf: a bounded, growable byte buffer, and str: a borrowed view.
 *
 * Every buf has a ceiling (`max`) fixed at init; an append that would pass it
 * fails with BUF_FULL (-1), one for which memory ran out with BUF_NOMEM (-2);
 * either leaves the buffer exactly as it was. Callers that only care whether
 * it worked test `< 0`; those that answer a client tell the two apart (413 or
 * 502 for a ceiling, 500 out of memory for the other). The bytes are always
 * followed by a '\0' (not counted in len) once anything has been appended, so
 * b->p can be handed to C string functions. The buf owns b->p.
 * Not thread-safe; a buf belongs to whoever holds it.
 */
#ifndef GATEWAY_BUF_H
#define GATEWAY_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct buf {
    char *p;      /* owned; NULL until the first append */
    size_t len;   /* bytes in use */
    size_t cap;   /* bytes allocated */
    size_t max;   /* ceiling on len */
    bool counted; /* cap is charged to the memory budget (buf_count) */
};

struct str {
    const char *p; /* borrowed */
    size_t len;
};

#define STR_LIT(s) ((struct str){(s), sizeof(s) - 1})

#define BUF_FULL (-1)
#define BUF_NOMEM (-2)

void buf_init(struct buf *b, size_t max);
/* From now on b's allocation counts against the memory budget (what it holds
 * already is charged at once). It stays counted across buf_free. */
void buf_count(struct buf *b);
/* What b has charged to the memory budget: its allocation, if counted. */
static inline size_t buf_held(const struct buf *b)
{
    return b->counted ? b->cap : 0;
}
void buf_free(struct buf *b);
/* Forget the contents, keep the allocation. */
void buf_reset(struct buf *b);
/* Cut the contents back to their first len bytes (len <= b->len): undo the
 * appends of a write that failed halfway. */
void buf_truncate(struct buf *b, size_t len);
/* Make room for n more bytes without changing len. */
int buf_reserve(struct buf *b, size_t n);
/* buf_append when the bytes do not fit in what is allocated. */
int buf_append_grow(struct buf *b, const void *p, size_t n);
/* Inline because nearly every append fits (a stream writes a frame in six
 * or seven of them): then it is a copy, not two calls. cap <= max + 1, so
 * what fits in cap is under max too. */
static inline int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n < b->cap - b->len) {
        if (n)
            memcpy(b->p + b->len, p, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
    }
    return buf_append_grow(b, p, n);
}
static inline int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Append v in decimal (no printf machinery: this runs per request). */
int buf_put_int(struct buf *b, long long v);
/*
 * A consumer's position in a buf that a producer keeps appending to (a
 * response drained by libmicrohttpd a few KiB at a time). Reading only
 * advances off; the bytes before it are dropped when the buf empties (no
 * copy at all) or, while it does not, once they are at least BUF_COMPACT_MIN
 * and at least as many as those still unread, so that every byte is moved
 * at most about once however small the reads: draining n bytes costs O(n),
 * not O(n^2 / read size). The bytes before off stay in b->len (and count
 * against b->max) until then. One reader per buf; it belongs with the buf.
 */
struct buf_reader {
    size_t off; /* b->p[0 .. off) has been read */
};

#define BUF_COMPACT_MIN (64u << 10)

/* Bytes of b not read yet. */
size_t buf_unread(const struct buf *b, const struct buf_reader *rd);
/* Copy up to max unread bytes to dst; returns how many. */
size_t buf_read(struct buf *b, struct buf_reader *rd, void *dst, size_t max);
/* Bytes this thread's buf_read calls have moved to compact their bufs
 * since the thread started: what draining costs, for the unit tests. */
size_t buf_bytes_moved(void);
/*
 * The length (1 to 4) of the well-formed UTF-8 sequence that s[0..n) starts
 * with (RFC 3629: no overlong form, no surrogate, nothing above U+10FFFF),
 * or 0 when it starts none. n >= 1.
 */
static inline size_t buf_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xc2 || c > 0xf4)
        return 0;
    size_t k = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] >= 0x90))
        return 0;
    return k;
}

/* Append s as a quoted JSON string, escaping what JSON requires. Each byte
 * that is not part of well-formed UTF-8 becomes U+FFFD, so the output is
 * always valid JSON, whatever a client or a backend sent. */
int buf_json_str(struct buf *b, const char *s, size_t n);
/* The same without the quotes: the inside of a JSON string, so that one
 * string can be written in several pieces. */
int buf_json_esc(struct buf *b, const char *s, size_t n);
/* Take the bytes away from b (caller frees); b is left empty. The charge of
 * a counted buf (buf_held before the call) goes with the bytes: whoever
 * frees them gives it back with membudget_release. */
char *buf_detach(struct buf *b, size_t *len);

#endif
