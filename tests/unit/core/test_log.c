/* Unit tests for log.c: the diagnostic line format, levels, errno variants,
 * and the access log (one line per write, reopen, off). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

struct writer {
    int id;
};

static void *write_lines(void *arg)
{
    struct writer *w = arg;
    char line[600];
    for (int i = 0; i < 200; i++) {
        int n = snprintf(line, sizeof line, "{\"w\":%d,\"i\":%d,\"pad\":\"", w->id, i);
        memset(line + n, 'x', 500);
        n += 500;
        n += snprintf(line + n, sizeof line - (size_t)n, "\"}");
        log_access_line(line, (size_t)n);
    }
    return NULL;
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

    /* concurrent writers never interleave inside a line */
    unlink(b);
    assert_int_equal(log_access_open(b), 0);
    pthread_t t[4];
    struct writer w[4];
    for (int i = 0; i < 4; i++) {
        w[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, write_lines, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    const char *all = slurp(b);
    int lines = 0;
    for (const char *p = all; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        /* {"w":N,"i":N,"pad":"x...x"} whole: 500 x's, then the closing "} */
        assert_memory_equal(p, "{\"w\":", 5);
        const char *pad = strstr(p, "\"pad\":\"");
        assert_true(pad && pad < nl);
        pad += 7;
        assert_int_equal(strspn(pad, "x"), 500);
        assert_ptr_equal(pad + 500 + 2, nl);
        assert_memory_equal(pad + 500, "\"}", 2);
        lines++;
        p = nl + 1;
    }
    assert_int_equal(lines, 800);

    log_access_close();
    assert_false(log_access_enabled());
    unlink(a);
    unlink(b);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errno, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_line, setup, teardown),
        cmocka_unit_test(test_access_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
