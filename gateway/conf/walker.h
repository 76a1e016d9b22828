/*
 * walker: checking a JSON object against a table of the keys it may hold
 * (after redis's config table): each key has a name, a setter that checks
 * its value and stores it at an offset into the struct being filled, bounds
 * and a default for numbers, booleans and enums, a default for strings and
 * paths, and optionally the words to say when it is missing, or that its
 * feature is not in force yet. walk_object() takes one object through its
 * table: an unknown key is a problem with a guess at what was meant, a key
 * given twice is a problem, a missing required key is a problem, and every
 * value goes to its setter. Everything is reported through jsonfile.h and
 * the walk goes on, so that one run finds every problem.
 *
 * gateway.json (config.c) and the keys file (keysfile.c) are both walked
 * here, each with setters of its own beside the common ones below. A table
 * with `words` speaks the keys file's language ("keys[0].rpm: unknown
 * field; ...", at the member's own path); one without, gateway.json's
 * ("backends[0]: unknown key \"colour\" (known keys: ...)", at the object).
 *
 * Ownership and threads: a struct walk belongs to one load, on one thread.
 * It borrows the jf (where problems go) and the arena (what setters
 * allocate from: the object being built owns all of it). Tables are static
 * and read-only.
 */
#ifndef GATEWAY_WALKER_H
#define GATEWAY_WALKER_H

#include "jsonfile.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;

/* Room for a JSON path in messages ("backends[3].headers[\"X-Key\"]"). */
#define WALK_PATH_MAX 256

struct walk {
    struct jf *jf;        /* borrowed: where problems go */
    struct arena **arena; /* borrowed: what the setters allocate from */
    const char *base_dir; /* relative paths resolve against it (absolute, no
                             trailing '/' unless it is "/"); NULL in a file
                             that names no paths (the keys file) */
};

struct walk_key;
/* Check v (the member at path) and store it into base + k->off. */
typedef void (*walk_fn)(struct walk *w, const cJSON *v, const char *path, void *base,
                        const struct walk_key *k);

struct walk_key {
    const char *name;
    walk_fn fn;
    size_t off;                  /* of the target, from the table's base */
    size_t width;                /* of the target, for walk_set_uint: unsigned or size_t */
    unsigned long long min, max; /* numbers */
    unsigned long long def;      /* numbers, booleans, enums */
    const void *arg;             /* a sub-table, or the NULL-terminated choices of an enum */
    const char *sdef;            /* default of a string or path */
    const char *required;        /* non-NULL: the key must be there; says what to write */
    const char *notice;          /* non-NULL: warned about when present (not built yet) */
    const char *means;           /* walk_set_uint: said after the bounds in a message,
                                    e.g. "(0 or absent = no limit)" */
    const char *fix;             /* walk_set_uint: appended to a message about the value,
                                    e.g. "; correct it or remove the field" */
};

/* The words of the keys file for what the walker finds itself. */
struct walk_words {
    const char *twice;   /* the whole message for a key given twice */
    const char *unknown; /* after "unknown field; " when no key is close */
    bool guess;          /* "unknown field; did you mean \"...\"?" when one is */
};

/* A table searched when a key is unknown here: it may be at the wrong level. */
struct walk_nest {
    const char *parent; /* where the key belongs: "limits", "backends[]" */
    const struct walk_table *t;
};

struct walk_table {
    const struct walk_key *keys; /* at most 64 */
    size_t n;
    const struct walk_words *words; /* NULL: gateway.json's words */
    const struct walk_nest *nest;   /* for "it belongs in \"limits\"" */
    size_t nnest;
};

#define WALK_TABLE(a)                                                                              \
    {                                                                                              \
        (a), sizeof(a) / sizeof((a)[0])                                                            \
    }

/*
 * Check obj against t, storing into base. Returns the set of keys present
 * (bit i = t->keys[i]), whatever their values.
 */
uint64_t walk_object(struct walk *w, const cJSON *obj, const char *path, const struct walk_table *t,
                     void *base);
/* Store each key's default into base (recursing into walk_set_object). */
void walk_defaults(struct walk *w, const struct walk_table *t, void *base);
/* The bit walk_object() sets when t's key `name` is present. */
uint64_t walk_bit(const struct walk_table *t, const char *name);

/* The common setters. */
/* A whole number from k->min to k->max: as written when the file is indexed
 * (1.0 and 1e3 are not), else by its value. Stored as k->width bytes. */
void walk_set_uint(struct walk *w, const cJSON *v, const char *path, void *base,
                   const struct walk_key *k);
/* true or false (a bool). */
void walk_set_bool(struct walk *w, const cJSON *v, const char *path, void *base,
                   const struct walk_key *k);
/* One of the strings in k->arg, stored as its index (an int). */
void walk_set_enum(struct walk *w, const cJSON *v, const char *path, void *base,
                   const struct walk_key *k);
/* A file path, stored absolute (a const char * in the arena). */
void walk_set_path(struct walk *w, const cJSON *v, const char *path, void *base,
                   const struct walk_key *k);
/* An object walked through the table k->arg into base + k->off. */
void walk_set_object(struct walk *w, const cJSON *v, const char *path, void *base,
                     const struct walk_key *k);

/* The checks the setters are made of. */
/* v's string (maybe ""), or NULL after reporting that v is not WHAT, a string. */
const char *walk_string(struct walk *w, const cJSON *v, const char *path, const char *what);
/* The same, and not empty ("is empty: expected WHAT"). */
const char *walk_text(struct walk *w, const cJSON *v, const char *path, const char *what);

/* A name written in the file (a backend's, an alias's, a header's, a key id),
 * for walk_dups(). */
struct walk_name {
    const char *name;
    const cJSON *item; /* where it is written (for its line) */
    size_t idx;        /* its position among its siblings */
};
typedef void (*walk_dup_fn)(struct jf *f, const struct walk_name *first,
                            const struct walk_name *again, const void *ud);
/*
 * Names that must be unique: sort v[0..n) by name (ignoring case when
 * icase), then position, and call dup(first, again) for every name written
 * again, `first` being where it was written first.
 */
void walk_dups(struct jf *f, struct walk_name *v, size_t n, bool icase, walk_dup_fn dup,
               const void *ud);

/* Allocation from the arena; NULL (and the jf marked out of memory) on failure. */
void *walk_alloc(struct walk *w, size_t n);
void *walk_alloc_array(struct walk *w, size_t n, size_t size);
char *walk_strndup(struct walk *w, const char *s, size_t n);
char *walk_strdup(struct walk *w, const char *s);
/* p made absolute against w->base_dir, in the arena. */
const char *walk_resolve(struct walk *w, const char *p);

#endif
