/*
 * buf: a bounded, growable byte buffer, and str: a borrowed view.
 *
 * Every buf has a ceiling (`max`) fixed at init; an append that would pass it
 * fails with -1 and leaves the buffer exactly as it was. The bytes are always
 * followed by a '\0' (not counted in len) once anything has been appended, so
 * b->p can be handed to C string functions. The buf owns b->p.
 * Not thread-safe; a buf belongs to whoever holds it.
 */
#ifndef GATEWAY_BUF_H
#define GATEWAY_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *p;    /* owned; NULL until the first append */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
    size_t max; /* ceiling on len */
};

struct str {
    const char *p; /* borrowed */
    size_t len;
};

#define STR_LIT(s) ((struct str){(s), sizeof(s) - 1})

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
/* Forget the contents, keep the allocation. */
void buf_reset(struct buf *b);
/* Cut the contents back to their first len bytes (len <= b->len): undo the
 * appends of a write that failed halfway. */
void buf_truncate(struct buf *b, size_t len);
/* Make room for n more bytes without changing len. */
int buf_reserve(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Append v in decimal (no printf machinery: this runs per request). */
int buf_put_int(struct buf *b, long long v);
/* Drop n bytes from the front (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Append s as a quoted JSON string, escaping what JSON requires. Invalid
 * UTF-8 is passed through untouched (cJSON printed it, or a client sent it). */
int buf_json_str(struct buf *b, const char *s, size_t n);
/* The same without the quotes: the inside of a JSON string, so that one
 * string can be written in several pieces. */
int buf_json_esc(struct buf *b, const char *s, size_t n);
/* Take the bytes away from b (caller frees); b is left empty. */
char *buf_detach(struct buf *b, size_t *len);

#endif
