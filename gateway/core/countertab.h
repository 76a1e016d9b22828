/*
 * countertab: a table of labelled counters that one thread appends to and
 * any thread reads, without locks. Each entry is a tuple of up to
 * CTAB_LABELS label values (strings) and CTAB_VALUES counters.
 *
 * Who writes and who reads:
 *  - The owner (one thread, e.g. a worker) is the only one to call
 *    ctab_get() and ctab_add(). It finds entries through a hash index only it
 *    touches, appends new ones, and bumps counters with relaxed atomic
 *    stores (no read-modify-write: nobody else writes them).
 *  - Any thread may read: ctab_published() (an acquire load of the count)
 *    then ctab_at(i) for i below it, and ctab_value() (relaxed loads). An
 *    entry's labels are written before its number is published with a
 *    release store and never change after, and entries live in storage that
 *    never moves (chunks of pointers allocated once), so a reader sees a
 *    whole entry or none.
 * Memory is bounded: at most `max` entries (set at init); ctab_get() refuses
 * to create beyond that (the caller then counts under a folded label set).
 * Entries are freed only by ctab_free(), when no thread reads any more.
 */
#ifndef GATEWAY_COUNTERTAB_H
#define GATEWAY_COUNTERTAB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTAB_LABELS 3
#define CTAB_VALUES 3
#define CTAB_CHUNK 64 /* entries per chunk of pointers */

struct ctab_entry {
    const char *label[CTAB_LABELS]; /* into the entry's own allocation; immutable */
    atomic_uint_least64_t v[CTAB_VALUES];
    uint64_t hash;
};

struct ctab {
    unsigned nlabels;
    size_t max;                 /* a multiple of CTAB_CHUNK */
    struct ctab_entry ***chunk; /* max / CTAB_CHUNK slots, allocated at init; a chunk
                                   is set (by the owner) before any entry in it is
                                   published, and never moves */
    atomic_size_t n;            /* published entries: release store by the owner */
    /* the owner's alone */
    uint32_t *index; /* open addressing: entry number + 1, 0 = empty */
    size_t index_cap;
};

/* An empty table of entries with nlabels labels (1..CTAB_LABELS), at most
 * max entries (rounded up to a multiple of CTAB_CHUNK). 0, or -1 on OOM. */
int ctab_init(struct ctab *t, unsigned nlabels, size_t max);
/* Free everything (no reader may be left). */
void ctab_free(struct ctab *t);

/* Owner only: the entry for these labels (nlabels strings, NULL reads as
 * ""). Missing: created when create is true and the table has room, else
 * NULL. NULL also when memory ran out. */
struct ctab_entry *ctab_get(struct ctab *t, const char *const *labels, bool create);

/* Owner only: add n to counter k of e. */
static inline void ctab_add(struct ctab_entry *e, unsigned k, uint64_t n)
{
    uint64_t v = atomic_load_explicit(&e->v[k], memory_order_relaxed);
    atomic_store_explicit(&e->v[k], v + n, memory_order_relaxed);
}

/* Any thread: how many entries are published; then ctab_at(t, i) for each
 * i below it, and ctab_value() of their counters. */
size_t ctab_published(const struct ctab *t);
const struct ctab_entry *ctab_at(const struct ctab *t, size_t i);
static inline uint64_t ctab_value(const struct ctab_entry *e, unsigned k)
{
    return atomic_load_explicit(&e->v[k], memory_order_relaxed);
}

/* A single-writer counter outside a table (the same rule as ctab_add). */
static inline void ctab_bump(atomic_uint_least64_t *c, uint64_t n)
{
    uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
    atomic_store_explicit(c, v + n, memory_order_relaxed);
}

/* Entries sorted by their labels (strcmp, label by label) into out (n
 * pointers, n = ctab_published() as the caller read it): a stable order for
 * exposition. */
void ctab_sorted(const struct ctab *t, const struct ctab_entry **out, size_t n);

#endif
