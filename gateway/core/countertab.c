#include "countertab.h"

#include <stdlib.h>
#include <string.h>

int ctab_init(struct ctab *t, unsigned nlabels, size_t max)
{
    memset(t, 0, sizeof *t);
    t->nlabels = nlabels < 1 ? 1 : nlabels > CTAB_LABELS ? CTAB_LABELS : nlabels;
    t->max = (max + CTAB_CHUNK - 1) / CTAB_CHUNK * CTAB_CHUNK;
    if (!t->max)
        t->max = CTAB_CHUNK;
    atomic_init(&t->n, 0);
    t->chunk = calloc(t->max / CTAB_CHUNK, sizeof *t->chunk);
    return t->chunk ? 0 : -1;
}

void ctab_free(struct ctab *t)
{
    size_t n = atomic_load_explicit(&t->n, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        free(t->chunk[i / CTAB_CHUNK][i % CTAB_CHUNK]);
    for (size_t c = 0; t->chunk && c < t->max / CTAB_CHUNK; c++)
        free(t->chunk[c]);
    free(t->chunk);
    free(t->index);
    memset(t, 0, sizeof *t);
}

/* FNV-1a over the labels, each followed by a 0 byte so that ("ab","") and
 * ("a","b") differ. */
static uint64_t hash_labels(const char *const *labels, unsigned n)
{
    uint64_t h = 14695981039346656037ull;
    for (unsigned i = 0; i < n; i++) {
        for (const char *s = labels[i] ? labels[i] : ""; *s; s++) {
            h ^= (unsigned char)*s;
            h *= 1099511628211ull;
        }
        h ^= 0xff;
        h *= 1099511628211ull;
    }
    return h;
}

static bool same(const struct ctab_entry *e, const char *const *labels, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (strcmp(e->label[i], labels[i] ? labels[i] : "") != 0)
            return false;
    return true;
}

static struct ctab_entry *entry(const struct ctab *t, size_t i)
{
    return t->chunk[i / CTAB_CHUNK][i % CTAB_CHUNK];
}

/* Rebuild the index with cap slots (a power of two). */
static int index_grow(struct ctab *t, size_t n, size_t cap)
{
    uint32_t *ix = calloc(cap, sizeof *ix);
    if (!ix)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t j = entry(t, i)->hash & (cap - 1);
        while (ix[j])
            j = (j + 1) & (cap - 1);
        ix[j] = (uint32_t)(i + 1);
    }
    free(t->index);
    t->index = ix;
    t->index_cap = cap;
    return 0;
}

struct ctab_entry *ctab_get(struct ctab *t, const char *const *labels, bool create)
{
    unsigned nl = t->nlabels;
    uint64_t h = hash_labels(labels, nl);
    /* the owner's own count: no other thread changes it */
    size_t n = atomic_load_explicit(&t->n, memory_order_relaxed);
    if (t->index_cap) {
        for (size_t j = h & (t->index_cap - 1); t->index[j]; j = (j + 1) & (t->index_cap - 1)) {
            struct ctab_entry *e = entry(t, t->index[j] - 1);
            if (e->hash == h && same(e, labels, nl))
                return e;
        }
    }
    if (!create || n >= t->max)
        return NULL;
    if ((n + 1) * 2 > t->index_cap && index_grow(t, n, t->index_cap ? t->index_cap * 2 : 16) < 0)
        return NULL;
    size_t len[CTAB_LABELS], total = 0;
    for (unsigned i = 0; i < nl; i++) {
        len[i] = strlen(labels[i] ? labels[i] : "");
        total += len[i] + 1;
    }
    struct ctab_entry *e = calloc(1, sizeof *e + total);
    if (!e)
        return NULL;
    char *text = (char *)(e + 1);
    for (unsigned i = 0; i < nl; i++) {
        memcpy(text, labels[i] ? labels[i] : "", len[i] + 1);
        e->label[i] = text;
        text += len[i] + 1;
    }
    for (unsigned i = nl; i < CTAB_LABELS; i++)
        e->label[i] = "";
    for (unsigned k = 0; k < CTAB_VALUES; k++)
        atomic_init(&e->v[k], 0);
    e->hash = h;
    size_t c = n / CTAB_CHUNK;
    if (!t->chunk[c]) {
        t->chunk[c] = calloc(CTAB_CHUNK, sizeof **t->chunk);
        if (!t->chunk[c]) {
            free(e);
            return NULL;
        }
    }
    t->chunk[c][n % CTAB_CHUNK] = e;
    size_t j = h & (t->index_cap - 1);
    while (t->index[j])
        j = (j + 1) & (t->index_cap - 1);
    t->index[j] = (uint32_t)(n + 1);
    /* publish: the entry and its chunk pointer are written before this */
    atomic_store_explicit(&t->n, n + 1, memory_order_release);
    return e;
}

size_t ctab_published(const struct ctab *t)
{
    return atomic_load_explicit(&t->n, memory_order_acquire);
}

const struct ctab_entry *ctab_at(const struct ctab *t, size_t i)
{
    return entry(t, i);
}

static int cmp_entries(const void *a, const void *b)
{
    const struct ctab_entry *x = *(const struct ctab_entry *const *)a;
    const struct ctab_entry *y = *(const struct ctab_entry *const *)b;
    for (unsigned i = 0; i < CTAB_LABELS; i++) { /* unused labels are "" */
        int c = strcmp(x->label[i], y->label[i]);
        if (c)
            return c;
    }
    return 0;
}

void ctab_sorted(const struct ctab *t, const struct ctab_entry **out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = entry(t, i);
    qsort(out, n, sizeof *out, cmp_entries);
}
