/*
 * json: the cJSON helpers every translation shares.
 *
 *  - json_parse: exactly one JSON value from bytes that need not be
 *    NUL-terminated, without cJSON's process-wide error pointer.
 *  - Reading: json_get, json_unset (absent and null are the same for every
 *    optional field), json_type_name (for messages), json_is_integer,
 *    json_has_entries.
 *  - Building trees that borrow from another: json_add and json_push (which
 *    free the item when it cannot be added), json_ref (a shallow stand-in for
 *    an item of another tree), json_str_ref.
 *  - Writing JSON text: json_put_str, json_put_number.
 *
 * Ownership: a tree built with json_ref/json_str_ref borrows from the tree
 * or strings it points at and must be freed before them; keys given to
 * json_add must outlive the tree (literals, or keys of a tree that does).
 * Writers append to a caller's buf and return 0, or -1 with nothing
 * appended. Any thread: nothing here touches cJSON's global state, and the
 * trees are the caller's.
 */
#ifndef GATEWAY_JSON_H
#define GATEWAY_JSON_H

#include "buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/*
 * Parse len bytes at p as exactly one JSON value (whitespace around it
 * allowed). cJSON 1.7.15 can read one byte past the length it is given
 * (DaveGamble/cJSON #804), so this parses a NUL-terminated copy kept in
 * scratch (reset first; the caller frees it; a copy over JSON_SCRATCH_KEEP
 * bytes is freed before the call returns, so that one huge line does not
 * stay held by whoever parses many). Returns the tree (the caller frees it),
 * or NULL on a syntax error, with *errpos the offset of the problem, or when
 * memory runs out, with *errpos JSON_NOMEM.
 */
#define JSON_SCRATCH_KEEP (64u << 10)
#define JSON_NOMEM ((size_t)-1)
cJSON *json_parse(struct buf *scratch, const char *p, size_t len, size_t *errpos);

static inline cJSON *json_get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Absent and null mean the same for every optional field. */
static inline bool json_unset(const cJSON *it)
{
    return !it || cJSON_IsNull(it);
}

/* "a string", "a number", ... "null": what it is, for an error message. */
const char *json_type_name(const cJSON *it);

/* d is a whole number with |d| < 2^63. */
bool json_is_integer(double d);

/* An array with at least one element. */
static inline bool json_has_entries(const cJSON *arr)
{
    return cJSON_IsArray(arr) && arr->child;
}

/* Add item under key (see Ownership) / to an array. false when item is NULL
 * or cannot be added; then item has been freed. */
bool json_add(cJSON *obj, const char *key, cJSON *item);
bool json_push(cJSON *arr, cJSON *item);

/* A shallow stand-in for item: prints like it, frees nothing of it. NULL
 * when memory runs out. */
cJSON *json_ref(const cJSON *item);

static inline cJSON *json_str_ref(const char *s)
{
    return cJSON_CreateStringReference(s);
}

/* Append s as a quoted JSON string. */
static inline int json_put_str(struct buf *out, const char *s)
{
    return buf_json_str(out, s, strlen(s));
}

/* Append d as a JSON number, the shortest of %.15g/%.17g that reads back
 * as d; non-finite values (cJSON parses 1e999 as inf) become 0. */
int json_put_number(struct buf *out, double d);

#endif
