#include "log.h"

#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = LOG_LEVEL_INFO;
static atomic_int log_fd = 2;

/* What a queued line is for. */
enum { TARGET_DIAG = 0, TARGET_ACCESS = 1 };
/* ring_put's answers. */
enum { RING_QUEUED = 0, RING_DROPPED = 1, RING_NOT_RUNNING = 2 };

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(int level)
{
    if (level < LOG_LEVEL_ERROR)
        level = LOG_LEVEL_ERROR;
    if (level > LOG_LEVEL_DEBUG)
        level = LOG_LEVEL_DEBUG;
    atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

int log_get_level(void)
{
    return atomic_load_explicit(&log_level, memory_order_relaxed);
}

bool log_enabled(int level)
{
    return level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

int log_level_from_string(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

const char *log_level_name(int level)
{
    if (level < LOG_LEVEL_ERROR || level > LOG_LEVEL_DEBUG)
        return "?";
    return level_names[level];
}

void log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

/* Format one diagnostic line, '\n' included, into line[LOG_LINE_MAX];
 * returns its length. */
__attribute__((format(printf, 3, 0))) static size_t
format_line(int level, int errnum, const char *fmt, va_list ap, char *line)
{
    const size_t room = LOG_LINE_MAX - 1; /* keep one byte for the '\n' */
    size_t n = 0;

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, room, "%Y-%m-%dT%H:%M:%S", &tm);
    int k =
        snprintf(line + n, room - n, ".%03ldZ %s: ", ts.tv_nsec / 1000000L, log_level_name(level));
    if (k > 0)
        n += (size_t)k < room - n ? (size_t)k : room - n - 1;
    size_t msg_start = n;

    k = vsnprintf(line + n, room - n, fmt, ap);
    bool cut = false;
    if (k > 0) {
        if ((size_t)k >= room - n) {
            n = room - 1;
            cut = true;
        } else {
            n += (size_t)k;
        }
    }
    if (errnum && !cut) {
        char ebuf[128];
        const char *es = strerror_r(errnum, ebuf, sizeof ebuf);
        k = snprintf(line + n, room - n, ": %s", es);
        if (k > 0) {
            if ((size_t)k >= room - n) {
                n = room - 1;
                cut = true;
            } else {
                n += (size_t)k;
            }
        }
    }
    if (cut)
        memcpy(line + n - 3, "...", 3);
    for (size_t i = msg_start; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            line[i] = ' ';
    }
    line[n++] = '\n';
    return n;
}

static int ring_put(int target, const char *a, size_t alen, const char *b, size_t blen);

__attribute__((format(printf, 3, 0))) static void log_emit(int level, int errnum, const char *fmt,
                                                           va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t n = format_line(level, errnum, fmt, ap, line);
    if (ring_put(TARGET_DIAG, line, n, NULL, 0) == RING_NOT_RUNNING)
        (void)fileio_write_all(atomic_load(&log_fd), line, n);
}

#define LOG_FN(fname, level, with_errno)                                                           \
    void fname(const char *fmt, ...)                                                               \
    {                                                                                              \
        int saved = errno;                                                                         \
        if (!log_enabled(level))                                                                   \
            return;                                                                                \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_emit(level, (with_errno) ? saved : 0, fmt, ap);                                        \
        va_end(ap);                                                                                \
        errno = saved;                                                                             \
    }

LOG_FN(log_error, LOG_LEVEL_ERROR, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FN(log_error_errno, LOG_LEVEL_ERROR, 1)
LOG_FN(log_warn_errno, LOG_LEVEL_WARN, 1)
LOG_FN(log_info_errno, LOG_LEVEL_INFO, 1)
LOG_FN(log_debug_errno, LOG_LEVEL_DEBUG, 1)

/* ---- the rings and the writer thread ---- */

/*
 * Each thread that logs while the writer runs gets a ring of records
 * { struct rec, bytes } stored circularly. The ring's mutex is held by its
 * producer for one memcpy and by the writer for one memcpy out; nobody holds
 * it across I/O. `rings_mu` guards the list's head (a new ring is pushed, the
 * writer unlinks orphans); `next` is written only under rings_mu, and only
 * the writer frees rings, so the writer may walk the list without the lock.
 */
struct rec {
    uint32_t len;    /* bytes that follow */
    uint32_t target; /* TARGET_* */
};

struct ring {
    pthread_mutex_t mu;
    char *p;                /* owned, cap bytes */
    size_t cap, head, used; /* read position and bytes in use, under mu */
    uint64_t dropped[2];    /* lines refused since the writer last looked, under mu */
    bool orphan;            /* its thread has exited, under mu: freed once empty */
    struct ring *next;      /* under rings_mu */
};

static pthread_mutex_t rings_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ring *rings;     /* under rings_mu */
static pthread_key_t ring_key; /* its destructor marks a thread's ring orphaned */
static pthread_once_t ring_key_once = PTHREAD_ONCE_INIT;
static _Thread_local struct ring *my_ring;

/* The writer: wmu guards the fields below it and is never held across I/O. */
static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wcv = PTHREAD_COND_INITIALIZER; /* to the writer: work */
static pthread_cond_t dcv = PTHREAD_COND_INITIALIZER; /* from the writer: a pass done */
static uint64_t flush_req, flush_done;
static bool stop_req, writer_exited;
static pthread_t writer_tid;
static bool writer_started; /* under wmu; the thread exists and is not joined */
static size_t ring_cap;     /* set before running turns true */

static atomic_bool running;
static atomic_bool pending;             /* a line was queued since the writer last looked */
static atomic_uint_fast64_t lost[2];    /* refused lines, total, for log_dropped() */
static atomic_uint_fast64_t no_ring[2]; /* dropped because a ring could not be made */

static void ring_orphan(void *arg)
{
    struct ring *r = arg;
    pthread_mutex_lock(&r->mu);
    r->orphan = true;
    pthread_mutex_unlock(&r->mu);
}

static void make_key(void)
{
    (void)pthread_key_create(&ring_key, ring_orphan);
}

static struct ring *ring_for_thread(void)
{
    if (my_ring)
        return my_ring;
    pthread_once(&ring_key_once, make_key);
    struct ring *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cap = ring_cap;
    r->p = malloc(r->cap);
    if (!r->p) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_lock(&rings_mu);
    r->next = rings;
    rings = r;
    pthread_mutex_unlock(&rings_mu);
    (void)pthread_setspecific(ring_key, r);
    my_ring = r;
    return r;
}

static void ring_copy_in(struct ring *r, size_t at, const void *src, size_t n)
{
    at %= r->cap;
    size_t first = r->cap - at < n ? r->cap - at : n;
    memcpy(r->p + at, src, first);
    memcpy(r->p, (const char *)src + first, n - first);
}

static void wake_writer(void)
{
    /* Only the first line since the writer's last look signals; the writer
     * checks `pending` under wmu before it sleeps, so no wake-up is lost. */
    if (atomic_exchange(&pending, true))
        return;
    pthread_mutex_lock(&wmu);
    pthread_cond_signal(&wcv);
    pthread_mutex_unlock(&wmu);
}

/* Queue the line a[0..alen) b[0..blen) whole, or drop it whole. */
static int ring_put(int target, const char *a, size_t alen, const char *b, size_t blen)
{
    if (!atomic_load(&running))
        return RING_NOT_RUNNING;
    struct ring *r = ring_for_thread();
    if (!r) {
        atomic_fetch_add(&no_ring[target], 1);
        atomic_fetch_add(&lost[target], 1);
        wake_writer();
        return RING_DROPPED;
    }
    struct rec h = {.len = (uint32_t)(alen + blen), .target = (uint32_t)target};
    size_t need = sizeof h + alen + blen;
    int rc = RING_QUEUED;
    pthread_mutex_lock(&r->mu);
    /* checked under the ring's lock: log_writer_stop() clears `running` and
     * then drains every ring under its lock, so a line queued here is seen */
    if (!atomic_load(&running)) {
        rc = RING_NOT_RUNNING;
    } else if (need > r->cap - r->used || alen + blen > UINT32_MAX) {
        r->dropped[target]++;
        atomic_fetch_add(&lost[target], 1);
        rc = RING_DROPPED;
    } else {
        size_t at = r->head + r->used;
        ring_copy_in(r, at, &h, sizeof h);
        ring_copy_in(r, at + sizeof h, a, alen);
        if (blen)
            ring_copy_in(r, at + sizeof h + alen, b, blen);
        r->used += need;
    }
    pthread_mutex_unlock(&r->mu);
    if (rc != RING_NOT_RUNNING)
        wake_writer(); /* a drop too: the writer reports it */
    return rc;
}

static atomic_int access_fd = -1; /* stable once set: reopen dup3()s onto it */

/* Write the records in out[0..n), batching runs for the same target into one
 * write. The bodies are moved down over the headers in place. */
static void write_records(char *out, size_t n)
{
    size_t rd = 0, run_start = 0, run_end = 0;
    int run_target = -1;
    while (rd < n) {
        struct rec h;
        memcpy(&h, out + rd, sizeof h);
        rd += sizeof h;
        if ((int)h.target != run_target) {
            if (run_target >= 0) {
                int fd = atomic_load(run_target == TARGET_ACCESS ? &access_fd : &log_fd);
                if (fd >= 0)
                    (void)fileio_write_all(fd, out + run_start, run_end - run_start);
            }
            run_target = (int)h.target;
            run_start = run_end = rd - sizeof h; /* reuse the header's bytes */
        }
        memmove(out + run_end, out + rd, h.len);
        run_end += h.len;
        rd += h.len;
    }
    if (run_target >= 0) {
        int fd = atomic_load(run_target == TARGET_ACCESS ? &access_fd : &log_fd);
        if (fd >= 0)
            (void)fileio_write_all(fd, out + run_start, run_end - run_start);
    }
}

/* A diagnostic from the writer itself: written at once, it owns the fds. */
__attribute__((format(printf, 1, 2))) static void writer_warn(const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_line(LOG_LEVEL_WARN, 0, fmt, ap, line);
    va_end(ap);
    (void)fileio_write_all(atomic_load(&log_fd), line, n);
}

/* One pass: empty every ring as it stands, write what it held, free the rings
 * of threads that have gone, report drops. `out` holds ring_cap bytes. */
static void drain_pass(char *out, uint64_t dropped[2])
{
    pthread_mutex_lock(&rings_mu);
    struct ring *r = rings;
    pthread_mutex_unlock(&rings_mu);
    while (r) {
        pthread_mutex_lock(&r->mu);
        size_t n = r->used;
        size_t first = r->cap - r->head < n ? r->cap - r->head : n;
        memcpy(out, r->p + r->head, first);
        memcpy(out + first, r->p, n - first);
        r->head = r->used = 0;
        for (int t = 0; t < 2; t++) {
            dropped[t] += r->dropped[t];
            r->dropped[t] = 0;
        }
        bool gone = r->orphan;
        pthread_mutex_unlock(&r->mu);
        write_records(out, n);
        struct ring *next = r->next;
        if (gone) {
            /* empty and its thread has exited: nobody else can reach it. Its
             * predecessor is looked up under the lock, since a ring made
             * meanwhile may have been pushed in front of it. */
            pthread_mutex_lock(&rings_mu);
            struct ring **pp = &rings;
            while (*pp != r)
                pp = &(*pp)->next;
            *pp = next;
            pthread_mutex_unlock(&rings_mu);
            pthread_mutex_destroy(&r->mu);
            free(r->p);
            free(r);
        }
        r = next;
    }
    for (int t = 0; t < 2; t++)
        dropped[t] += atomic_exchange(&no_ring[t], 0);
}

static void *writer_main(void *arg)
{
    char *out = arg;
    pthread_setname_np(pthread_self(), "gw-log");
    for (;;) {
        pthread_mutex_lock(&wmu);
        while (!atomic_load(&pending) && !stop_req && flush_done == flush_req)
            pthread_cond_wait(&wcv, &wmu);
        uint64_t target = flush_req;
        bool stop = stop_req;
        pthread_mutex_unlock(&wmu);

        atomic_store(&pending, false);
        uint64_t dropped[2] = {0, 0};
        drain_pass(out, dropped);
        /* Reported after the pass's writes went through, which is when the
         * reader has caught up enough to read it. */
        if (dropped[TARGET_ACCESS])
            writer_warn("access log: %llu lines dropped, the reader is too slow",
                        (unsigned long long)dropped[TARGET_ACCESS]);
        if (dropped[TARGET_DIAG])
            writer_warn("log: %llu diagnostic lines dropped, the reader is too slow",
                        (unsigned long long)dropped[TARGET_DIAG]);

        pthread_mutex_lock(&wmu);
        if (flush_done < target)
            flush_done = target;
        bool done = stop && !atomic_load(&pending);
        if (done)
            writer_exited = true;
        pthread_cond_broadcast(&dcv);
        pthread_mutex_unlock(&wmu);
        if (done)
            break;
    }
    free(out);
    return NULL;
}

int log_writer_start(size_t ring_bytes)
{
    int rc = -1;
    pthread_mutex_lock(&wmu);
    if (writer_started) {
        errno = EBUSY;
        goto out;
    }
    if (ring_bytes < 2 * (sizeof(struct rec) + LOG_LINE_MAX))
        ring_bytes = 2 * (sizeof(struct rec) + LOG_LINE_MAX);
    /* rings made by an earlier writer are emptied at its stop; they keep
     * their size, so the copy buffer covers the largest */
    size_t cap = ring_bytes;
    pthread_mutex_lock(&rings_mu);
    for (struct ring *r = rings; r; r = r->next)
        if (r->cap > cap)
            cap = r->cap;
    pthread_mutex_unlock(&rings_mu);
    char *out = malloc(cap);
    if (!out)
        goto out;
    ring_cap = ring_bytes;
    stop_req = writer_exited = false;
    flush_req = flush_done = 0;
    atomic_store(&running, true);
    /* the writer inherits the signal mask of its creator (main blocks them) */
    int e = pthread_create(&writer_tid, NULL, writer_main, out);
    if (e) {
        atomic_store(&running, false);
        free(out);
        errno = e;
        goto out;
    }
    writer_started = true;
    rc = 0;
out:
    pthread_mutex_unlock(&wmu);
    return rc;
}

/* Wait until the writer has done a pass that began after this call, or until
 * the deadline. wmu held. */
static int wait_pass(uint64_t want, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    while (flush_done < want && !writer_exited)
        if (pthread_cond_timedwait(&dcv, &wmu, &dl) == ETIMEDOUT)
            return flush_done >= want || writer_exited ? 0 : -1;
    return 0;
}

int log_flush(int timeout_ms)
{
    int saved = errno;
    int rc = 0;
    pthread_mutex_lock(&wmu);
    if (writer_started && !writer_exited) {
        uint64_t want = ++flush_req;
        pthread_cond_signal(&wcv);
        rc = wait_pass(want, timeout_ms);
    }
    pthread_mutex_unlock(&wmu);
    errno = saved;
    return rc;
}

int log_writer_stop(int timeout_ms)
{
    int rc = 0;
    pthread_mutex_lock(&wmu);
    if (!writer_started)
        goto out;
    /* From here on lines are written by their threads; what is queued is
     * drained by the writer's last passes. */
    atomic_store(&running, false);
    stop_req = true;
    pthread_cond_signal(&wcv);
    (void)wait_pass(UINT64_MAX, timeout_ms); /* returns once the writer has exited */
    if (!writer_exited) {
        /* Stuck in a write to a reader that does not read: leave it, the
         * process is about to exit. */
        pthread_detach(writer_tid);
        rc = -1;
    } else {
        pthread_mutex_unlock(&wmu);
        pthread_join(writer_tid, NULL);
        pthread_mutex_lock(&wmu);
    }
    writer_started = false;
out:
    pthread_mutex_unlock(&wmu);
    return rc;
}

unsigned long long log_dropped(bool access)
{
    return (unsigned long long)atomic_load(&lost[access ? TARGET_ACCESS : TARGET_DIAG]);
}

/* ---- access log ---- */

static pthread_mutex_t access_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool access_on;

int log_access_open(const char *target)
{
    /* Lines logged before the reopen go to the old target (as far as a
     * reader that keeps up allows: the wait is bounded). */
    (void)log_flush(LOG_FLUSH_MS);
    int rc = 0;
    pthread_mutex_lock(&access_mu);
    if (!target || strcmp(target, "off") == 0) {
        atomic_store(&access_on, false);
        goto out;
    }
    int fd;
    if (strcmp(target, "-") == 0)
        fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    else
        fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) {
        rc = -1;
        goto out;
    }
    int cur = atomic_load(&access_fd);
    if (cur < 0) {
        atomic_store(&access_fd, fd);
    } else {
        if (dup3(fd, cur, O_CLOEXEC) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            rc = -1;
            goto out;
        }
        close(fd);
    }
    atomic_store(&access_on, true);
out:
    pthread_mutex_unlock(&access_mu);
    return rc;
}

bool log_access_enabled(void)
{
    return atomic_load(&access_on);
}

int log_access_line(const char *json, size_t len)
{
    if (!atomic_load(&access_on))
        return 0;
    int q = ring_put(TARGET_ACCESS, json, len, "\n", 1);
    if (q == RING_QUEUED)
        return 0;
    if (q == RING_DROPPED) {
        errno = EAGAIN;
        return -1;
    }
    /* No writer (tests, or before the gateway starts it): written here. */
    int fd = atomic_load(&access_fd);
    struct iovec iov[2] = {
        {.iov_base = (void *)json, .iov_len = len},
        {.iov_base = "\n", .iov_len = 1},
    };
    int cnt = 2;
    struct iovec *v = iov;
    while (cnt > 0) {
        ssize_t w = writev(fd, v, cnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        /* A short write (a pipe, a full disk): carry on from where it stopped. */
        size_t done = (size_t)w;
        while (cnt > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++;
            cnt--;
        }
        if (cnt > 0) {
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    return 0;
}

void log_access_close(void)
{
    (void)log_flush(LOG_FLUSH_MS);
    pthread_mutex_lock(&access_mu);
    int fd = atomic_exchange(&access_fd, -1);
    atomic_store(&access_on, false);
    if (fd >= 0)
        close(fd);
    pthread_mutex_unlock(&access_mu);
}
