/*
 * arena: the memory an immutable object owns (a configuration snapshot, a
 * keyring), allocated piece by piece while it is built and freed in one
 * call. Every allocation is zeroed and aligned for any type. Not thread-safe
 * while being built; nothing to lock afterwards, since nothing changes.
 * (jarena.h is a different thing: a per-thread scratch for cJSON trees.)
 */
#ifndef GATEWAY_ARENA_H
#define GATEWAY_ARENA_H

#include <stddef.h>

struct arena;

/* n zeroed bytes from *a (a new block is pushed when the current one is
 * full; *a starts as NULL). NULL when out of memory. */
void *arena_alloc(struct arena **a, size_t n);
/* Free every block of a (NULL is fine). */
void arena_free(struct arena *a);

#endif
