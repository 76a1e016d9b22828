#include "fileio.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fileio_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int fileio_read_all(int fd, size_t max, char **text, size_t *len)
{
    struct stat st;
    *text = NULL;
    *len = 0;
    if (fstat(fd, &st) < 0)
        return -1;
    if (st.st_size > 0 && (uintmax_t)st.st_size > max) {
        errno = EFBIG;
        return -1;
    }
    size_t cap = (st.st_size > 0 ? (size_t)st.st_size : 0) + 1, n = 0;
    char *p = malloc(cap);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        char *dst = p + n;
        size_t room = cap - 1 - n;
        char probe;
        if (room == 0) { /* full: is that the end, or did the file grow? */
            dst = &probe;
            room = 1;
        }
        ssize_t r = read(fd, dst, room);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        if (r == 0)
            break;
        if (dst == &probe) {
            if (n + 1 > max) {
                errno = EFBIG;
                goto fail;
            }
            size_t grown = cap <= max / 2 ? cap * 2 : max + 1; /* never room for more than max */
            char *q = realloc(p, grown);
            if (!q) {
                errno = ENOMEM;
                goto fail;
            }
            p = q;
            cap = grown;
            p[n] = probe;
        }
        n += (size_t)r;
    }
    p[n] = '\0';
    *text = p;
    *len = n;
    return 0;
fail:;
    int e = errno;
    free(p);
    errno = e;
    return -1;
}

int fileio_replace(const char *path, const char *text, size_t len, mode_t mode)
{
    char dir[PATH_MAX], tmp[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int n;
    if (!slash)
        n = snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        n = snprintf(dir, sizeof dir, "/");
    else
        n = snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int m = snprintf(tmp, sizeof tmp, "%s%s.%s.XXXXXX", slash ? dir : "",
                     slash && slash != path ? "/" : "", base);
    if (!*base || n < 0 || (size_t)n >= sizeof dir || m < 0 || (size_t)m >= sizeof tmp) {
        errno = *base ? ENAMETOOLONG : EISDIR;
        log_error_errno("cannot write %s", path);
        return -1;
    }

    /* In the same folder, so that rename() replaces path in one step. */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        log_error_errno("cannot create a temporary file next to %s", path);
        return -1;
    }
    const char *step = "set the mode of";
    if (fchmod(fd, mode) < 0)
        goto fail;
    step = "write";
    if (fileio_write_all(fd, text, len) < 0)
        goto fail;
    step = "sync";
    if (fsync(fd) < 0)
        goto fail;
    step = "close";
    int rc = close(fd);
    fd = -1;
    if (rc < 0)
        goto fail;
    step = "rename into place";
    if (rename(tmp, path) < 0)
        goto fail;

    /* The rename is durable only once the folder is synced. Past this point
     * path already holds the new text, so a failure here is only a warning. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || (fsync(dfd) < 0 && errno != EINVAL)) /* EINVAL: cannot sync folders */
        log_warn_errno("%s was written, but its folder %s could not be synced (a crash now "
                       "could lose the change)",
                       path, dir);
    if (dfd >= 0)
        close(dfd);
    return 0;

fail:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = e;
    log_error_errno("cannot %s %s (for %s)", step, tmp, path);
    errno = e;
    return -1;
}
