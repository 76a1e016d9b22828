/*
 * lockstat: an LD_PRELOAD library that counts, for the process it is loaded
 * into, every pthread mutex and read-write lock taken through the dynamic
 * linker (the gateway's own locks, libcurl's and libmicrohttpd's; not glibc's
 * internal ones), how many were contended (already held when asked for), and
 * how long the contended ones waited. At exit it prints one line to stderr:
 *
 *   lockstat: locks 1234567 contended 1234 wait_us 5678
 *
 * followed by the callers that took most of them ("lockstat: caller ..."), so
 * that a count can be read as "whose lock".
 *
 * Used by tests/bench/locks.sh to put numbers on "the request path takes these
 * locks" under a saturating load. Benchmark tool only: never linked into the
 * gateway. Counters are relaxed atomics: any thread.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static atomic_ullong locks, contended, wait_ns;

/* Locks taken per calling address: an open-addressing table filled with
 * compare-and-swap, never resized (what does not fit is only in the total). */
#define CALLERS 1024
static struct {
    _Atomic(uintptr_t) pc;
    atomic_ullong n;
} callers[CALLERS];

static void count_caller(void *ret)
{
    uintptr_t pc = (uintptr_t)ret;
    for (size_t i = 0, h = (pc >> 4) % CALLERS; i < CALLERS; i++, h = (h + 1) % CALLERS) {
        uintptr_t seen = atomic_load_explicit(&callers[h].pc, memory_order_relaxed);
        if (seen == 0 && atomic_compare_exchange_strong(&callers[h].pc, &seen, pc))
            seen = pc;
        if (seen == pc) {
            atomic_fetch_add_explicit(&callers[h].n, 1, memory_order_relaxed);
            return;
        }
    }
}

static int (*real_mutex_lock)(pthread_mutex_t *);
static int (*real_rdlock)(pthread_rwlock_t *);
static int (*real_wrlock)(pthread_rwlock_t *);

__attribute__((constructor)) static void lockstat_init(void)
{
    real_mutex_lock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
    real_rdlock = (int (*)(pthread_rwlock_t *))dlsym(RTLD_NEXT, "pthread_rwlock_rdlock");
    real_wrlock = (int (*)(pthread_rwlock_t *))dlsym(RTLD_NEXT, "pthread_rwlock_wrlock");
}

__attribute__((destructor)) static void lockstat_report(void)
{
    fprintf(stderr, "lockstat: locks %llu contended %llu wait_us %llu\n",
            (unsigned long long)atomic_load(&locks), (unsigned long long)atomic_load(&contended),
            (unsigned long long)atomic_load(&wait_ns) / 1000);
    for (int top = 0; top < 12; top++) {
        size_t best = CALLERS;
        for (size_t i = 0; i < CALLERS; i++)
            if (atomic_load(&callers[i].n) &&
                (best == CALLERS || atomic_load(&callers[i].n) > atomic_load(&callers[best].n)))
                best = i;
        if (best == CALLERS)
            break;
        Dl_info info = {0};
        void *pc = (void *)atomic_load(&callers[best].pc);
        dladdr(pc, &info);
        fprintf(stderr, "lockstat: caller %-40s %-28s %llu\n",
                info.dli_sname ? info.dli_sname : "?", info.dli_fname ? info.dli_fname : "?",
                (unsigned long long)atomic_load(&callers[best].n));
        atomic_store(&callers[best].n, 0);
    }
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The lock was busy: take it the slow way and count the wait. */
static void waited(uint64_t t0)
{
    atomic_fetch_add_explicit(&contended, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&wait_ns, now_ns() - t0, memory_order_relaxed);
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
    atomic_fetch_add_explicit(&locks, 1, memory_order_relaxed);
    count_caller(__builtin_return_address(0));
    if (pthread_mutex_trylock(m) == 0)
        return 0;
    uint64_t t0 = now_ns();
    int rc = real_mutex_lock(m);
    waited(t0);
    return rc;
}

int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
    atomic_fetch_add_explicit(&locks, 1, memory_order_relaxed);
    count_caller(__builtin_return_address(0));
    if (pthread_rwlock_tryrdlock(l) == 0)
        return 0;
    uint64_t t0 = now_ns();
    int rc = real_rdlock(l);
    waited(t0);
    return rc;
}

int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
    atomic_fetch_add_explicit(&locks, 1, memory_order_relaxed);
    count_caller(__builtin_return_address(0));
    if (pthread_rwlock_trywrlock(l) == 0)
        return 0;
    uint64_t t0 = now_ns();
    int rc = real_wrlock(l);
    waited(t0);
    return rc;
}
