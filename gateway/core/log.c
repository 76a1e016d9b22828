#include "log.h"

#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = LOG_LEVEL_INFO;
static atomic_int log_fd = 2;

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

__attribute__((format(printf, 3, 0))) static void log_emit(int level, int errnum, const char *fmt,
                                                           va_list ap)
{
    char line[LOG_LINE_MAX];
    const size_t room = sizeof line - 1; /* keep one byte for the '\n' */
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

/* ---- access log ---- */

static pthread_mutex_t access_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int access_fd = -1; /* stable once set: reopen dup3()s onto it */
static atomic_bool access_on;

int log_access_open(const char *target)
{
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
    pthread_mutex_lock(&access_mu);
    int fd = atomic_exchange(&access_fd, -1);
    atomic_store(&access_on, false);
    if (fd >= 0)
        close(fd);
    pthread_mutex_unlock(&access_mu);
}
