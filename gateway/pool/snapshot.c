#include "snapshot.h"

#include "target.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct snapshot *current;
static atomic_uint generation;

struct snapshot *snapshot_new(struct cfg *cfg, struct keyring *keys, struct backends *backends)
{
    struct snapshot *s = calloc(1, sizeof *s);
    struct target *t = target_array_new(cfg);
    if (!s || !t) {
        free(s);
        target_array_free(t, cfg);
        backends_unref(backends);
        keyring_unref(keys);
        cfg_unref(cfg);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->cfg = cfg;
    s->keys = keys;
    s->backends = backends;
    s->targets = t;
    return s;
}

struct snapshot *snapshot_ref(struct snapshot *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void snapshot_unref(struct snapshot *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    target_array_free(s->targets, s->cfg);
    backends_unref(s->backends);
    keyring_unref(s->keys);
    cfg_unref(s->cfg);
    free(s);
}

void snapshot_publish(struct snapshot *s)
{
    pthread_mutex_lock(&current_lock);
    struct snapshot *old = current;
    current = s;
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    pthread_mutex_unlock(&current_lock);
    snapshot_unref(old);
}

struct snapshot *snapshot_acquire(void)
{
    pthread_mutex_lock(&current_lock);
    struct snapshot *s = snapshot_ref(current);
    pthread_mutex_unlock(&current_lock);
    return s;
}

unsigned snapshot_generation(void)
{
    return atomic_load_explicit(&generation, memory_order_acquire);
}
