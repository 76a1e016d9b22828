/*
 * ndjson: an incremental splitter for newline-delimited JSON, as Ollama
 * streams it (one object per '\n', no framing beyond that).
 *
 * Bytes arrive in arbitrary pieces (curl hands us at most 16 KiB at a time);
 * complete lines are passed to a callback without copying when they lie whole
 * inside one piece, and a partial tail is kept in the splitter's own bounded
 * buffer until its '\n' arrives. Blank lines and a trailing '\r' are dropped.
 * The splitter owns its tail buffer; one splitter per upstream response.
 */
#ifndef GATEWAY_NDJSON_H
#define GATEWAY_NDJSON_H

#include "buf.h"

/* Return 0 to go on, non-zero to stop (ndjson_feed returns that value). */
typedef int (*ndjson_line_fn)(void *ud, const char *line, size_t len);

struct ndjson {
    struct buf tail; /* an incomplete line carried over between feeds */
};

/* max_line: the longest line accepted; a longer one makes feed return -1. */
void ndjson_init(struct ndjson *s, size_t max_line);
void ndjson_free(struct ndjson *s);
/* Split p[0..n) and call fn for each complete line. Returns 0, the callback's
 * non-zero value (keep it positive), BUF_FULL (-1) when a line exceeds
 * max_line, or BUF_NOMEM (-2) when its tail could not be kept. */
int ndjson_feed(struct ndjson *s, const char *p, size_t n, ndjson_line_fn fn, void *ud);
/* End of input: pass a final unterminated line (if any) to fn. */
int ndjson_finish(struct ndjson *s, ndjson_line_fn fn, void *ud);
/* Bytes held back as an incomplete line. */
size_t ndjson_pending(const struct ndjson *s);

#endif
