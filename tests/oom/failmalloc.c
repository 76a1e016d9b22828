/*
 * failmalloc: an LD_PRELOAD allocator shim that makes the Nth allocation of
 * the daemon's worker threads fail, for tests/oom/oom.test.mjs.
 *
 * The daemon starts with the shim loaded but idle, so startup and the first
 * discovery polls are not disturbed. The test arms it through a small shared
 * file (FAILMALLOC_STATE, created by the test, mapped here MAP_SHARED), so
 * that arming costs no signal (the daemon owns its signals) and no system
 * call inside malloc:
 *
 *   word 0  fail_at   0: count only; N > 0: the Nth counted allocation fails
 *   word 1  count     allocations counted since the test reset it
 *   word 2  failed    allocations this shim has made fail
 *   word 3  armed     0: nothing is counted; 1: counting
 *
 * Only threads named "gw-worker*" are counted: a request lives and dies on
 * one worker, and the discovery and log-writer threads would make the count
 * of one request vary with the time of day. libcurl's and libmicrohttpd's
 * allocations on a worker are counted like ours: the daemon must handle
 * their failures too.
 *
 * The real functions are found with dlsym(RTLD_NEXT): libc's in a plain
 * build, AddressSanitizer's in a sanitized one (run with
 * ASAN_OPTIONS=verify_asan_link_order=0), so LeakSanitizer still sees every
 * block and reports what a failure path forgot to free. free() is not
 * wrapped: every block comes from the next allocator, which frees it.
 */
#include <dlfcn.h>
#include <execinfo.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

void *malloc(size_t n);
void *calloc(size_t k, size_t n);
void *realloc(void *p, size_t n);
void *aligned_alloc(size_t align, size_t n);
int posix_memalign(void **out, size_t align, size_t n);
void *memalign(size_t align, size_t n);
char *strdup(const char *s);
char *strndup(const char *s, size_t n);

struct state {
    _Atomic uint64_t fail_at;
    _Atomic uint64_t count;
    _Atomic uint64_t failed;
    _Atomic uint64_t armed;
};

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static struct state *st;
static bool want_trace; /* FAILMALLOC_BACKTRACE: print where each failure hit */

/* dlsym may allocate (its error buffer) before the real functions are
 * known: those few blocks come from here and are never freed by anyone
 * who could tell (dlerror's buffer lives as long as the thread). */
static _Alignas(max_align_t) char boot[4096];
static size_t boot_used;

static void *boot_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > sizeof boot - boot_used)
        return NULL;
    void *p = boot + boot_used;
    boot_used += n;
    return p;
}

static bool resolving;

static void resolve(void)
{
    if (real_malloc || resolving)
        return;
    resolving = true;
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    resolving = false;
}

__attribute__((constructor)) static void failmalloc_init(void)
{
    resolve();
    want_trace = getenv("FAILMALLOC_BACKTRACE") != NULL;
    if (want_trace) { /* the first call loads libgcc: not inside a failure */
        void *pc[2];
        backtrace(pc, 2);
    }
    const char *path = getenv("FAILMALLOC_STATE");
    if (!path)
        return;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    void *m = mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd); /* the mapping stays; no descriptor of ours for the test to count */
    if (m != MAP_FAILED)
        st = m;
}

/* Per thread: -1 not yet known, 0 not a worker, 1 a worker. Known only once
 * armed: a worker names itself after its first allocations. initial-exec, so
 * reading it never calls into the allocator. */
static __thread __attribute__((tls_model("initial-exec"))) signed char is_worker = -1;

/* Whether this allocation is the one to fail. */
static bool should_fail(void)
{
    if (!st || !atomic_load_explicit(&st->armed, memory_order_relaxed))
        return false;
    if (is_worker < 0) {
        char name[17] = {0};
        prctl(PR_GET_NAME, name, 0, 0, 0);
        is_worker = strncmp(name, "gw-worker", 9) == 0;
    }
    if (!is_worker)
        return false;
    uint64_t n = atomic_fetch_add(&st->count, 1) + 1;
    uint64_t at = atomic_load(&st->fail_at);
    if (at == 0 || n != at)
        return false;
    atomic_fetch_add(&st->failed, 1);
    if (want_trace) {
        void *pc[32];
        static const char head[] = "failmalloc: failing this allocation:\n";
        (void)!write(2, head, sizeof head - 1);
        backtrace_symbols_fd(pc, backtrace(pc, 32), 2);
    }
    return true;
}

void *malloc(size_t n)
{
    resolve();
    if (!real_malloc)
        return boot_alloc(n);
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return real_malloc(n);
}

void *calloc(size_t k, size_t n)
{
    resolve();
    if (!real_calloc) {
        /* boot is zeroed static storage, never reused */
        if (n && k > SIZE_MAX / n)
            return NULL;
        return boot_alloc(k * n);
    }
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return real_calloc(k, n);
}

void *realloc(void *p, size_t n)
{
    resolve();
    if (p && (char *)p >= boot && (char *)p < boot + sizeof boot) {
        void *q = malloc(n);
        if (q)
            memcpy(q, p, n < sizeof boot ? n : sizeof boot); /* overreads only boot */
        return q;
    }
    /* realloc(p, 0) frees: not an allocation that can fail */
    if (n && should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return real_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    resolve();
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return real_aligned_alloc(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    resolve();
    if (should_fail())
        return ENOMEM;
    return real_posix_memalign(out, align, n);
}

void *memalign(size_t align, size_t n)
{
    resolve();
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return real_memalign(align, n);
}

/* Under AddressSanitizer strdup does not go through malloc: counted here in
 * both builds, once. */
char *strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

char *strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}
