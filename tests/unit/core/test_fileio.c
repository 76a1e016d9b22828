/* fileio.c: reading a whole file under a ceiling (writing it atomically is
 * exercised through keys_write_file() in test_keys.c). */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* A file holding n bytes of fill, opened for reading (unlinked already). */
static int file_of(size_t n, char fill)
{
    char name[] = "/tmp/test_fileio.XXXXXX";
    int fd = mkstemp(name);
    assert_true(fd >= 0);
    unlink(name);
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memset(p, fill, n);
    assert_int_equal(fileio_write_all(fd, p, n), 0);
    free(p);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static void whole_file(void **state)
{
    (void)state;
    char *text;
    size_t len;
    int fd = file_of(5000, 'a');
    assert_int_equal(fileio_read_all(fd, 5000, &text, &len), 0);
    assert_int_equal(len, 5000);
    assert_int_equal(text[0], 'a');
    assert_int_equal(text[4999], 'a');
    assert_int_equal(text[5000], '\0');
    free(text);
    close(fd);

    fd = file_of(0, 'a');
    assert_int_equal(fileio_read_all(fd, 10, &text, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
    close(fd);
}

static void over_the_ceiling(void **state)
{
    (void)state;
    char *text = (char *)1;
    size_t len = 7;
    int fd = file_of(5001, 'a');
    errno = 0;
    assert_int_equal(fileio_read_all(fd, 5000, &text, &len), -1);
    assert_int_equal(errno, EFBIG);
    assert_null(text);
    assert_int_equal(len, 0);
    close(fd);
}

/* A pipe has no size: the buffer grows as it is read, up to the ceiling. */
static void growing(void **state)
{
    (void)state;
    int p[2];
    char *text;
    size_t len;
    char chunk[3000];
    memset(chunk, 'z', sizeof chunk);

    assert_int_equal(pipe(p), 0);
    assert_int_equal(fileio_write_all(p[1], chunk, sizeof chunk), 0);
    close(p[1]);
    assert_int_equal(fileio_read_all(p[0], sizeof chunk, &text, &len), 0);
    assert_int_equal(len, sizeof chunk);
    assert_int_equal(text[len - 1], 'z');
    assert_int_equal(text[len], '\0');
    free(text);
    close(p[0]);

    assert_int_equal(pipe(p), 0);
    assert_int_equal(fileio_write_all(p[1], chunk, sizeof chunk), 0);
    close(p[1]);
    errno = 0;
    assert_int_equal(fileio_read_all(p[0], sizeof chunk - 1, &text, &len), -1);
    assert_int_equal(errno, EFBIG);
    assert_null(text);
    close(p[0]);
}

static void bad_descriptor(void **state)
{
    (void)state;
    char *text;
    size_t len;
    errno = 0;
    assert_int_equal(fileio_read_all(-1, 10, &text, &len), -1);
    assert_int_equal(errno, EBADF);
    assert_null(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_file),
        cmocka_unit_test(over_the_ceiling),
        cmocka_unit_test(growing),
        cmocka_unit_test(bad_descriptor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
