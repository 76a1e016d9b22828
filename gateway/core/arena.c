#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 8192

struct arena {
    struct arena *next;
    size_t used, cap;
    max_align_t data[];
};

void *arena_alloc(struct arena **a, size_t n)
{
    const size_t al = alignof(max_align_t);
    if (n > SIZE_MAX / 2)
        return NULL;
    n = n ? (n + al - 1) & ~(al - 1) : al;
    struct arena *b = *a;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = *a;
        b->used = 0;
        b->cap = cap;
        *a = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void arena_free(struct arena *a)
{
    while (a) {
        struct arena *next = a->next;
        free(a);
        a = next;
    }
}
