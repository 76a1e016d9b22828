/*
 * jsonfile: reading one of our JSON files, and gathering every problem found
 * in it as
 *
 *     FILE:LINE: json.path: what is wrong, and how to fix it
 *
 * gateway.json (config.c) and the keys file (keysfile.c) are both read
 * through here. jf_parse() takes the text through:
 *   1. a NUL check, then a '\0'-terminated copy;
 *   2. for a file with comments, // and block comments (and a UTF-8 BOM)
 *      blanked out with spaces, every newline kept, so offsets and line
 *      numbers stay those of the file (cJSON_Minify would move them);
 *   3. cJSON_ParseWithLengthOpts(); on a syntax error its end pointer gives
 *      the offset, hence the line (never cJSON_GetErrorPtr(): it is one
 *      process-wide variable);
 *   4. for a file whose messages name lines, a second walk over the text
 *      beside cJSON's tree (which cJSON builds in document order) that
 *      records the line and offset of every value. cJSON keeps no positions;
 *      this index lets any later check say FILE:LINE, and gives a number's
 *      text as written, so that 1.5, 1e3 and -1 are told apart exactly
 *      rather than through a double.
 * The checks after that (walker.h, then each file's own) report through
 * jf_error() and friends, and jf_report() hands the problems over sorted by
 * line, at most JF_MAX_SHOWN of them and then a count of the rest.
 *
 * The two files speak differently, and their messages are part of what
 * operators and tests rely on, so what differs is spelled out in a struct
 * jf_kind rather than decided here: gateway.json is written by people (it
 * has comments, a syntax error is a slip worth guessing at, and every
 * message names a line); the keys file is written by the gateway (a syntax
 * error is damage to restore from a backup, and messages name the JSON path
 * only, in the words "must be X, not Y").
 *
 * Ownership and threads: a struct jf belongs to one load, on one thread. It
 * owns its copy of the text, the position index and the messages, and frees
 * them in jf_free(). The tree jf_parse() returns is the caller's; the index
 * points into it, so it must outlive the jf's use of the index.
 */
#ifndef GATEWAY_JSONFILE_H
#define GATEWAY_JSONFILE_H

#include "buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* Problems shown at the most; the rest are counted ("... and N more"). */
#define JF_MAX_SHOWN 100

/* What differs between the files read through here. */
struct jf_kind {
    bool comments;         /* // and block comments may appear */
    bool lines;            /* index every value: messages about one name its line,
                              and its number can be read as written */
    bool guess;            /* a syntax error guesses at the slip: a trailing comma,
                              a missing ',' or ':' */
    bool terse;            /* "must be X, not Y" with values shown bare ("\"x\"", 1.5),
                              rather than "expected X, got the string \"x\"" */
    bool strict_end;       /* only " \t\r\n\f\v" may follow the value, rather
                              than every byte cJSON skips between tokens (<= 32) */
    const char *empty;     /* the message for a file with nothing in it */
    const char *fix;       /* appended to a syntax error: how to recover ("" none) */
    const char *fix_after; /* appended to "unexpected text after the end of the
                              top-level object" ("" none) */
};

struct jf_pos;
struct jf_msg;

struct jf_msgs {
    struct jf_msg *v; /* owned */
    size_t n, cap;
    unsigned total; /* found, including those not kept */
};

struct jf {
    const char *name;           /* borrowed: the file as messages name it */
    const struct jf_kind *kind; /* borrowed, static */
    char *text;                 /* owned: the copy cJSON parsed, comments blanked */
    size_t len;
    struct jf_pos *pos; /* owned: where each value is, sorted by item */
    size_t npos;
    struct jf_msgs errs;  /* problems: any one fails the load */
    struct jf_msgs notes; /* warnings that do not (config.c's "not in force yet") */
    unsigned seq;         /* order of discovery, for a stable sort */
    bool oom;             /* memory ran out somewhere: the load must fail */
};

void jf_init(struct jf *f, const char *name, const struct jf_kind *kind);
void jf_free(struct jf *f);

/*
 * Parse text[0..len) (need not be '\0'-terminated). Returns the tree (the
 * caller's, to cJSON_Delete()) or NULL after reporting why: a NUL byte, an
 * unterminated comment, nothing in it (kind->empty), a syntax error, text
 * after the end. Any JSON value is returned; whether it must be an object
 * is the caller's to say.
 */
cJSON *jf_parse(struct jf *f, const char *text, size_t len);

/*
 * A problem at item's line (when kind->lines and the item is indexed; else
 * none), under the JSON path `path` (NULL or "" for none).
 */
void jf_error(struct jf *f, const cJSON *item, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A problem at a line of the text (0 = none), for checks on the text itself. */
void jf_error_line(struct jf *f, unsigned line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A warning at item's line: it does not fail the load. */
void jf_note(struct jf *f, const cJSON *item, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/*
 * "expected EXPECTED, got <v>HINT", or in a terse file "must be EXPECTED,
 * not <v>HINT": the one way a value of the wrong kind is reported. hint may
 * be "" ("; write it without quotes", "; remove it").
 */
void jf_mismatch(struct jf *f, const cJSON *v, const char *path, const char *expected,
                 const char *hint);
/*
 * When no more problems will be shown, count one and return true, so that
 * the caller spares itself the work of wording it (guessing what was meant).
 */
bool jf_spare(struct jf *f);
/* Did the load find a problem, or run out of memory? */
bool jf_failed(const struct jf *f);

/* The line of item, 0 when unknown (or the file's messages name none). */
unsigned jf_line(const struct jf *f, const cJSON *item);
/* The number item as written in the file: sets *n; NULL when unknown. */
const char *jf_num_text(const struct jf *f, const cJSON *item, size_t *n);
/* What v is, for messages: "the string \"x\"", "the number 1.5", "an array",
 * ... (terse: "\"x\"", "1.5", "an array"). Returns out or a static string. */
const char *jf_describe(const struct jf *f, const cJSON *v, char *out, size_t outsz);

/*
 * Hand the problems over: each as one "FILE:LINE: ...\n" line appended to
 * out, sorted by line (then by discovery), or log_error()'d one by one when
 * out is NULL; "out of memory" when memory ran out. Returns how many
 * problems there were, shown or not.
 */
unsigned jf_report(struct jf *f, struct buf *out);
/*
 * The warnings, sorted by line, into v[0..n) (room for f->notes.n), as
 * texts that f owns. Returns n.
 */
size_t jf_notes(struct jf *f, const char **v);

#endif
