/*
 * diag: the words our messages about JSON files are made of (gateway.json,
 * the keys file): a value quoted safely, the path of a member
 * ("backends[0].url", aliases["gpt-4o*"]), the line of an offset, and "did
 * you mean ...?" for a misspelt name. Pure, any thread.
 */
#ifndef GATEWAY_DIAG_H
#define GATEWAY_DIAG_H

#include <stdbool.h>
#include <stddef.h>

/* s as a quoted string for a message: at most ~48 bytes of it, control
 * characters as '?', quotes and backslashes escaped. Returns out. */
const char *diag_show(char *out, size_t outsz, const char *s);
#define DIAG_SHOWBUF 128
#define DIAG_SHOW(buf, s) diag_show((buf), sizeof(buf), (s))

/* [A-Za-z_][A-Za-z0-9_]* */
bool diag_is_ident(const char *s);
/* parent.key, or parent["key"] when the key is not a plain identifier. */
void diag_path_key(char *out, size_t n, const char *parent, const char *key);
/* parent[i] */
void diag_path_index(char *out, size_t n, const char *parent, size_t i);
/* The 1-based line of offset off in s[0..len). */
unsigned diag_line_at(const char *s, size_t len, size_t off);

/* Optimal string alignment distance (edits and swaps of neighbours, as in
 * "modle"); SIZE_MAX for strings over 64 bytes. */
size_t diag_edit_distance(const char *a, const char *b);
/* The candidate a mistyped s most likely means, or NULL: within a third of
 * its length in edits (1 to 3), or one a prefix of the other. */
const char *diag_suggest(const char *s, const char *const *cands, size_t n);

#endif
