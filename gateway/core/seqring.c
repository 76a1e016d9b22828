#include "seqring.h"

#include <stdlib.h>
#include <string.h>

#define WORDS (SEQRING_RECORD / 8)

int seqring_init(struct seqring *r, size_t n)
{
    r->n = n ? n : 1;
    r->slots = calloc(r->n, sizeof *r->slots);
    atomic_init(&r->head, 0);
    if (!r->slots)
        return -1;
    for (size_t i = 0; i < r->n; i++) {
        atomic_init(&r->slots[i].seq, 0);
        for (size_t k = 0; k < WORDS; k++)
            atomic_init(&r->slots[i].w[k], 0);
    }
    return 0;
}

void seqring_free(struct seqring *r)
{
    free(r->slots);
    r->slots = NULL;
    r->n = 0;
}

void seqring_push(struct seqring *r, const void *rec, size_t len)
{
    uint64_t words[WORDS] = {0};
    memcpy(words, rec, len < sizeof words ? len : sizeof words);
    uint64_t k = atomic_load_explicit(&r->head, memory_order_relaxed);
    struct seqring_slot *s = &r->slots[k % r->n];
    atomic_store_explicit(&s->seq, 2 * k + 1, memory_order_relaxed);
    /* the odd number is visible before any new word */
    atomic_thread_fence(memory_order_release);
    for (size_t i = 0; i < WORDS; i++)
        atomic_store_explicit(&s->w[i], words[i], memory_order_relaxed);
    atomic_store_explicit(&s->seq, 2 * k + 2, memory_order_release);
    atomic_store_explicit(&r->head, k + 1, memory_order_release);
}

size_t seqring_read(const struct seqring *r, void *out, uint64_t *seq, size_t max)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t got = 0;
    uint64_t words[WORDS];
    for (uint64_t k = head; k > 0 && got < max && head - k < r->n; k--) {
        const struct seqring_slot *s = &r->slots[(k - 1) % r->n];
        uint64_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (s1 != 2 * (k - 1) + 2)
            continue; /* being written, or already overwritten by a newer record */
        for (size_t i = 0; i < WORDS; i++)
            words[i] = atomic_load_explicit(&s->w[i], memory_order_relaxed);
        /* the words are read before the number is read again */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->seq, memory_order_relaxed) != s1)
            continue;
        memcpy((char *)out + got * SEQRING_RECORD, words, SEQRING_RECORD);
        if (seq)
            seq[got] = k - 1;
        got++;
    }
    return got;
}
