#include "membudget.h"

#include <stdatomic.h>

/* One cache line of its own: every worker writes it. */
static _Alignas(64) atomic_size_t used;

void membudget_charge(size_t n)
{
    atomic_fetch_add_explicit(&used, n, memory_order_relaxed);
}

void membudget_release(size_t n)
{
    atomic_fetch_sub_explicit(&used, n, memory_order_relaxed);
}

size_t membudget_used(void)
{
    return atomic_load_explicit(&used, memory_order_relaxed);
}
