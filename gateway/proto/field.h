/*
 * field: reading the fields of a client's JSON body, with the 400s that name
 * them, as every OpenAI dialect words them ("Invalid type for 'x': expected a
 * string, but got a number instead.", err->param = "x").
 *
 * Each function returns 0 (or a value) on success and -1 (or NULL) with err
 * set otherwise; `null` is the same as absent for every optional field.
 * Trees and strings returned point into the caller's parsed body. Pure
 * functions; any thread.
 */
#ifndef GATEWAY_FIELD_H
#define GATEWAY_FIELD_H

#include "apierr.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* err = 500: memory ran out while translating. Returns -1. */
int field_oom(struct apierr *err);

/* err = 400 naming param: it is not of the expected type (e.g. "a string").
 * Returns -1. */
int field_bad_type(struct apierr *err, const char *param, const char *expected, const cJSON *got);

/* err = 400 naming param: it is required. Returns -1. */
int field_missing(struct apierr *err, const char *param);

/*
 * The client's body (len bytes at body, need not be NUL-terminated) parsed
 * in scratch: the object (the caller frees it), or NULL with err set (400:
 * empty, not JSON with the byte where it fails, not an object; or 500).
 */
cJSON *field_body(struct buf *scratch, const char *body, size_t len, struct apierr *err);

/* The required "model": a non-empty string, or NULL with err set. */
const char *field_model(const cJSON *root, struct apierr *err);

/*
 * How every request translation starts: the body parsed in scratch into
 * *root (field_body), its *model (field_model, borrowed from *root) and an
 * empty *native object for the translated fields. 0, or -1 with err set; the
 * caller frees what was made with field_free either way.
 */
int field_start(struct buf *scratch, const char *body, size_t len, cJSON **root, const char **model,
                cJSON **native, struct apierr *err);

/* Free a translation's trees, the ones that borrow from root first; each
 * pointer is left NULL. */
void field_free(cJSON **options, cJSON **native, cJSON **root);

/* The integer root[key] in [min, max]: *present says whether it was there,
 * and *out gets it when it was (else it is untouched). */
int field_int(const cJSON *root, const char *key, double min, double max, bool *present,
              long long *out, struct apierr *err);

/* "stream" (a boolean, default false) and stream_options.include_usage
 * (which counts only when streaming). */
int field_stream(const cJSON *root, bool *stream, bool *include_usage, struct apierr *err);

/* "n", which must be 1 or absent: Ollama generates one choice. */
int field_n(const cJSON *root, struct apierr *err);

#endif
