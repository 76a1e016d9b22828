/*
 * jscan: reading JSON text in place, without building a tree.
 *
 * The translations' fast paths (proto/) read the few shapes that make up
 * almost all of the traffic, a streamed token line or a plain whole answer,
 * with these functions. They validate as they go and hand back views of the
 * input (a string literal with its quotes, as it stands), so that a literal
 * can be copied to the output instead of being parsed into a cJSON tree and
 * escaped again. On anything they do not recognise they return NULL and the
 * caller takes its general (cJSON) path, which must then write the same
 * bytes. So a scanner here may refuse valid JSON, but never accepts text that
 * cJSON would refuse.
 *
 * Views are struct str (buf.h) into the caller's input: borrowed, nothing is
 * allocated or owned. Input need not be NUL-terminated: every function reads
 * [p, end) only. Pure functions, no state; any thread.
 *
 * jscan_object and the small helpers are static inline on purpose: where a
 * fast path expands jscan_object with its own member callback, the compiler
 * knows the callback and calls (or inlines) it directly instead of through a
 * pointer, for every key of every token line.
 */
#ifndef GATEWAY_JSCAN_H
#define GATEWAY_JSCAN_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Skip JSON whitespace. */
static inline const char *jscan_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/*
 * The JSON string literal at p: *lit is set to it (quotes included) and the
 * end of the literal is returned, or NULL. With `verbatim`, only literals
 * that buf_json_str would write byte for byte from the text they decode to
 * are taken (escapes \" \\ \n \r \t, and lower-case \u00XX for the other
 * control characters but NUL, and only well-formed UTF-8), so the caller may copy *lit to its
 * output as it stands. Without it, any escape cJSON decodes is taken (a lone surrogate escape,
 * which cJSON may refuse, never is).
 */
const char *jscan_string(const char *p, const char *end, bool verbatim, struct str *lit);

/* Called by jscan_object with p at a member's value: returns the end of the
 * value it took, or NULL to give up. key is the key's literal, quotes
 * included. */
typedef const char *(*jscan_member_fn)(void *ud, const struct str *key, const char *p,
                                       const char *end);

/* The JSON object at p (after optional whitespace), each member handed to
 * fn. Returns the end of the object, or NULL. */
static inline const char *jscan_object(const char *p, const char *end, jscan_member_fn fn, void *ud)
{
    p = jscan_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    p = jscan_ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        struct str key;
        p = jscan_string(p, end, false, &key);
        if (!p)
            return NULL;
        p = jscan_ws(p, end);
        if (p >= end || *p != ':')
            return NULL;
        p = fn(ud, &key, jscan_ws(p + 1, end), end);
        if (!p)
            return NULL;
        p = jscan_ws(p, end);
        if (p < end && *p == ',') {
            p = jscan_ws(p + 1, end);
            continue;
        }
        return p < end && *p == '}' ? p + 1 : NULL;
    }
}

/* Is key (a literal from jscan_object) the given key? quoted includes the
 * quotes: jscan_key_is(key, "\"model\""). Escaped keys never match. */
static inline bool jscan_key_is(const struct str *key, const char *quoted)
{
    size_t n = strlen(quoted);
    return key->len == n && memcmp(key->p, quoted, n) == 0;
}

/* The bare word at p (true, false, null): the end of it, or NULL. */
static inline const char *jscan_word(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(end - p) >= n && memcmp(p, word, n) == 0 ? p + n : NULL;
}

/*
 * A JSON number made of digits only, fewer than 15 of them (what Ollama
 * writes for token counts and durations): *v is its value and the end of it
 * is returned; anything else (a sign, a fraction, an exponent, 15 digits and
 * more) is NULL.
 */
static inline const char *jscan_count(const char *p, const char *end, long *v)
{
    const char *start = p;
    long x = 0;
    while (p < end && *p >= '0' && *p <= '9' && p - start < 15)
        x = x * 10 + (*p++ - '0');
    if (p == start ||
        (p < end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9'))))
        return NULL;
    *v = x;
    return p;
}

/* The JSON array at p whose elements are all counts (jscan_count), such as
 * the "context" of an /api/generate answer: the end of it, or NULL. */
const char *jscan_count_array(const char *p, const char *end);

/* Does the JSON text [p, end) escape a NUL (\u0000) inside a string? cJSON
 * would end the string there and keep the shorter text, so a model name
 * "m\u0000x" would silently become "m". A backslash-escaped backslash
 * ("\\u0000", the six characters) is not one. */
bool jscan_has_nul(const char *p, const char *end);

#endif
