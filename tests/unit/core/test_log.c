/* Unit tests for log.c: the diagnostic line format, levels, errno variants,
 * the access log (one line per write, reopen, off), and the rings drained by
 * the writer thread (whole lines only, drops counted and reported). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

static int pipe_fds[2];

static int setup(void **state)
{
    (void)state;
    if (pipe(pipe_fds) < 0)
        return -1;
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    log_set_fd(pipe_fds[1]);
    log_set_level(LOG_LEVEL_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_fd(2);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return 0;
}

/* Everything logged since the last call. */
static const char *drain(void)
{
    static char out[16384];
    ssize_t n = read(pipe_fds[0], out, sizeof out - 1);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

/* "2026-11-22T10:00:00.123Z " */
static void assert_timestamp(const char *line)
{
    assert_true(strlen(line) > 25);
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] == 'd')
            assert_true(line[i] >= '0' && line[i] <= '9');
        else
            assert_int_equal(line[i], shape[i]);
    }
}

static void test_format(void **state)
{
    (void)state;
    log_warn("backend %s: %d", "gpu1", 42);
    const char *out = drain();
    assert_timestamp(out);
    assert_string_equal(out + 25, "warn: backend gpu1: 42\n");

    log_error("e");
    out = drain();
    assert_string_equal(out + 25, "error: e\n");
    log_info("i");
    out = drain();
    assert_string_equal(out + 25, "info: i\n");
}

static void test_levels(void **state)
{
    (void)state;
    log_set_level(LOG_LEVEL_WARN);
    log_info("hidden");
    log_debug("hidden");
    log_warn("shown");
    log_error("shown too");
    const char *out = drain();
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "warn: shown\n"));
    assert_non_null(strstr(out, "error: shown too\n"));

    log_set_level(LOG_LEVEL_DEBUG);
    log_debug("dbg %d", 1);
    assert_non_null(strstr(drain(), "debug: dbg 1\n"));
    assert_true(log_enabled(LOG_LEVEL_DEBUG));

    log_set_level(LOG_LEVEL_ERROR);
    assert_false(log_enabled(LOG_LEVEL_WARN));
    log_warn("no");
    assert_string_equal(drain(), "");
    log_set_level(99); /* clamped */
    assert_int_equal(log_get_level(), LOG_LEVEL_DEBUG);
    log_set_level(-5);
    assert_int_equal(log_get_level(), LOG_LEVEL_ERROR);
    log_set_level(LOG_LEVEL_INFO);

    assert_int_equal(log_level_from_string("error"), LOG_LEVEL_ERROR);
    assert_int_equal(log_level_from_string("warn"), LOG_LEVEL_WARN);
    assert_int_equal(log_level_from_string("info"), LOG_LEVEL_INFO);
    assert_int_equal(log_level_from_string("debug"), LOG_LEVEL_DEBUG);
    assert_int_equal(log_level_from_string("warning"), -1);
    assert_int_equal(log_level_from_string(NULL), -1);
    assert_string_equal(log_level_name(LOG_LEVEL_WARN), "warn");
    assert_string_equal(log_level_name(7), "?");
}

static void test_errno(void **state)
{
    (void)state;
    errno = ENOENT;
    log_warn_errno("open %s", "x.json");
    assert_int_equal(errno, ENOENT); /* preserved */
    const char *out = drain();
    assert_string_equal(out + 25, "warn: open x.json: No such file or directory\n");
    errno = EACCES;
    log_error_errno("bind");
    assert_string_equal(drain() + 25, "error: bind: Permission denied\n");
    errno = EINVAL;
    log_info("plain");
    assert_int_equal(errno, EINVAL);
    assert_string_equal(drain() + 25, "info: plain\n");
}

static void test_one_line(void **state)
{
    (void)state;
    /* a peer's text with newlines cannot forge a second log line */
    log_warn("bad name %s", "x\nZ error: forged\r");
    const char *out = drain();
    assert_string_equal(out + 25, "warn: bad name x Z error: forged \n");

    /* a long message is cut, still one line, ending in "..." */
    char *big = malloc(10000);
    assert_non_null(big);
    memset(big, 'a', 9999);
    big[9999] = '\0';
    log_info("%s", big);
    free(big);
    out = drain();
    size_t n = strlen(out);
    assert_int_equal(n, LOG_LINE_MAX - 1);
    assert_int_equal(out[n - 1], '\n');
    assert_memory_equal(out + n - 4, "...", 3);
    assert_null(memchr(out, '\n', n - 1));
}

/* ---- access log ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_access_log(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_log.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char a[64], b[64];
    snprintf(a, sizeof a, "%s/a.log", dir);
    snprintf(b, sizeof b, "%s/b.log", dir);

    assert_int_equal(log_access_line("{\"x\":0}", 7), 0); /* off: nothing, no error */
    assert_false(log_access_enabled());

    mode_t old_mask = umask(022);
    assert_int_equal(log_access_open(a), 0);
    umask(old_mask);
    assert_true(log_access_enabled());
    struct stat st;
    assert_int_equal(stat(a, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(log_access_line("{\"x\":1}", 7), 0);
    assert_int_equal(log_access_line("{\"x\":2}", 7), 0);
    assert_string_equal(slurp(a), "{\"x\":1}\n{\"x\":2}\n");

    /* reopen elsewhere: later lines go to the new file only */
    assert_int_equal(log_access_open(b), 0);
    assert_int_equal(log_access_line("{\"x\":3}", 7), 0);
    assert_string_equal(slurp(a), "{\"x\":1}\n{\"x\":2}\n");
    assert_string_equal(slurp(b), "{\"x\":3}\n");

    /* appends to what is there */
    assert_int_equal(log_access_open(a), 0);
    assert_int_equal(log_access_line("{\"x\":4}", 7), 0);
    assert_string_equal(slurp(a), "{\"x\":1}\n{\"x\":2}\n{\"x\":4}\n");

    /* a failed open keeps the old target */
    assert_int_equal(log_access_open("/nonexistent/dir/x.log"), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(log_access_line("{\"x\":5}", 7), 0);
    assert_string_equal(slurp(a), "{\"x\":1}\n{\"x\":2}\n{\"x\":4}\n{\"x\":5}\n");

    /* off */
    assert_int_equal(log_access_open("off"), 0);
    assert_int_equal(log_access_line("{\"x\":6}", 7), 0);
    assert_int_equal(log_access_open(NULL), 0);
    assert_false(log_access_enabled());
    assert_string_equal(slurp(a), "{\"x\":1}\n{\"x\":2}\n{\"x\":4}\n{\"x\":5}\n");

    log_access_close();
    assert_false(log_access_enabled());
    unlink(a);
    unlink(b);
    rmdir(dir);
}

/* ---- the writer thread and the rings ---- */

/* Open the access log on a pipe's write end, through /proc so that the log
 * module has a descriptor of its own (it dup3()s onto it on reopen). */
static void access_to_pipe(int fds[2])
{
    assert_int_equal(pipe(fds), 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[1]);
    assert_int_equal(log_access_open(path), 0);
}

/* One line {"w":W,"i":I,"pad":"ccc…c"} with `pad` copies of 'a'+W. */
static size_t make_line(char *line, int w, int i, size_t pad)
{
    int n = snprintf(line, 64, "{\"w\":%d,\"i\":%d,\"pad\":\"", w, i);
    memset(line + n, 'a' + w, pad);
    memcpy(line + n + pad, "\"}", 2);
    return (size_t)n + pad + 2;
}

/* Check that text[0..len) is whole lines as make_line writes them, each
 * writer's in order (gaps allowed: dropped lines); returns the count. */
static int check_lines(const char *text, size_t len, size_t pad, int writers)
{
    int last[16];
    for (int w = 0; w < writers; w++)
        last[w] = -1;
    int lines = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl); /* the last line is whole too */
        int w, i, k = 0;
        assert_int_equal(sscanf(p, "{\"w\":%d,\"i\":%d,\"pad\":\"%n", &w, &i, &k), 2);
        assert_true(k > 0 && w >= 0 && w < writers);
        assert_true(i > last[w]);
        last[w] = i;
        const char *pad_at = p + k;
        char c = (char)('a' + w);
        size_t run = 0;
        while (pad_at + run < nl && pad_at[run] == c)
            run++;
        /* a piece of another writer's line inside this one ends the run early */
        assert_int_equal(run, pad);
        assert_ptr_equal(pad_at + pad + 2, nl);
        assert_memory_equal(pad_at + pad, "\"}", 2);
        lines++;
        p = nl + 1;
    }
    return lines;
}

/* Blocking read of whatever is there, or -1 after 10 s without a byte. */
static ssize_t read_some(int fd, char *out, size_t n)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0)
        return -1;
    return read(fd, out, n);
}

/* A full ring drops whole lines, counts them, and the writer reports the
 * count on the diagnostic descriptor once its reader has caught up. */
static void test_ring_full_drops(void **state)
{
    (void)state;
    int ap[2];
    access_to_pipe(ap);
    assert_int_equal(log_writer_start(16384), 0);
    unsigned long long before = log_dropped(true);

    /* Nobody reads ap[0]: the pipe (64 KiB) and the writer's copy and the ring
     * (16 KiB each) fill up, and 200 lines of 1 KiB do not fit in them. */
    enum { N = 200, PAD = 1000 };
    static char line[PAD + 64];
    int dropped = 0;
    for (int i = 0; i < N; i++) {
        size_t n = make_line(line, 0, i, PAD);
        if (log_access_line(line, n) < 0) {
            assert_int_equal(errno, EAGAIN);
            dropped++;
        }
    }
    assert_true(dropped > 0);
    assert_int_equal(log_dropped(true) - before, (unsigned long long)dropped);

    /* Now read: exactly the lines that were queued arrive, whole. */
    static char got[N * (PAD + 64)];
    size_t len = 0;
    int want = N - dropped, lines = 0;
    while (lines < want) {
        ssize_t r = read_some(ap[0], got + len, sizeof got - len);
        assert_true(r > 0);
        for (ssize_t k = 0; k < r; k++)
            lines += got[len + (size_t)k] == '\n';
        len += (size_t)r;
    }
    assert_int_equal(check_lines(got, len, PAD, 1), want);

    /* And the report, perhaps in several parts, adds up to the drops. */
    int fl = fcntl(pipe_fds[0], F_GETFL);
    fcntl(pipe_fds[0], F_SETFL, fl & ~O_NONBLOCK);
    static char diag[8192];
    size_t dlen = 0;
    long reported = 0;
    while (reported < dropped) {
        ssize_t r = read_some(pipe_fds[0], diag + dlen, sizeof diag - 1 - dlen);
        assert_true(r > 0);
        dlen += (size_t)r;
        diag[dlen] = '\0';
        reported = 0;
        for (const char *p = diag; (p = strstr(p, "warn: access log: ")); p++)
            reported += strtol(p + 18, NULL, 10);
    }
    assert_int_equal(reported, dropped);
    assert_non_null(strstr(diag, " lines dropped, the reader is too slow\n"));
    fcntl(pipe_fds[0], F_SETFL, fl);

    assert_int_equal(log_writer_stop(5000), 0);
    log_access_close();
    close(ap[0]);
    close(ap[1]);
}

/* Lines far longer than PIPE_BUF from several threads into a pipe that is
 * read in small pieces: a pipe makes only writes up to PIPE_BUF atomic, so
 * threads that write their own lines (the old log.c) interleave them. */
enum { IL_WRITERS = 4, IL_LINES = 24, IL_PAD = 100000 };

struct il_reader {
    int fd;
    char *got;
    size_t len, cap;
};

static void *il_read(void *arg)
{
    struct il_reader *rd = arg;
    for (;;) {
        size_t room = rd->cap - rd->len < 4096 ? rd->cap - rd->len : 4096;
        ssize_t r = read(rd->fd, rd->got + rd->len, room);
        if (r <= 0)
            break;
        rd->len += (size_t)r;
    }
    return NULL;
}

static void *il_write(void *arg)
{
    int w = (int)(intptr_t)arg;
    char *line = malloc(IL_PAD + 64);
    assert_non_null(line);
    for (int i = 0; i < IL_LINES; i++) {
        size_t n = make_line(line, w, i, IL_PAD);
        (void)log_access_line(line, n); /* a drop is allowed, a split line is not */
    }
    free(line);
    return NULL;
}

static void test_ring_no_interleave(void **state)
{
    (void)state;
    int ap[2];
    access_to_pipe(ap);
    assert_int_equal(log_writer_start(1u << 20), 0);
    struct il_reader rd = {.fd = ap[0], .cap = (size_t)IL_WRITERS * IL_LINES * (IL_PAD + 64)};
    rd.got = malloc(rd.cap);
    assert_non_null(rd.got);
    pthread_t reader, t[IL_WRITERS];
    assert_int_equal(pthread_create(&reader, NULL, il_read, &rd), 0);
    for (int i = 0; i < IL_WRITERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, il_write, (void *)(intptr_t)i), 0);
    for (int i = 0; i < IL_WRITERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(log_writer_stop(10000), 0);
    log_access_close();
    close(ap[1]); /* the reader's EOF */
    pthread_join(reader, NULL);
    int lines = check_lines(rd.got, rd.len, IL_PAD, IL_WRITERS);
    assert_true(lines > 0);
    free(rd.got);
    close(ap[0]);
}

/* While the writer runs, diagnostics take the same way; stopping it writes
 * what is queued and makes logging synchronous again. */
static void test_writer_diagnostics(void **state)
{
    (void)state;
    assert_int_equal(log_writer_start(0), 0);
    assert_int_equal(log_writer_start(0), -1);
    assert_int_equal(errno, EBUSY);
    log_warn("through the ring %d", 1);
    assert_int_equal(log_flush(5000), 0);
    assert_string_equal(drain() + 25, "warn: through the ring 1\n");
    log_info("queued at stop");
    assert_int_equal(log_writer_stop(5000), 0);
    assert_string_equal(drain() + 25, "info: queued at stop\n");
    log_info("synchronous");
    assert_string_equal(drain() + 25, "info: synchronous\n");
    assert_int_equal(log_flush(10), 0); /* no writer: nothing to wait for */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errno, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_line, setup, teardown),
        cmocka_unit_test(test_access_log),
        cmocka_unit_test_setup_teardown(test_ring_full_drops, setup, teardown),
        cmocka_unit_test(test_ring_no_interleave),
        cmocka_unit_test_setup_teardown(test_writer_diagnostics, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
