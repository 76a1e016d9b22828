/* Unit tests for gateway/core/jscan.c: what the scanners accept, and the
 * escaped-NUL check that keeps cJSON from cutting a string short. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "jscan.h"

#include <string.h>

static bool has_nul(const char *s)
{
    return jscan_has_nul(s, s + strlen(s));
}

static void nul_escapes(void **state)
{
    (void)state;
    assert_true(has_nul("{\"model\":\"m\\u0000hang\"}"));
    assert_true(has_nul("\\u0000"));
    assert_true(has_nul("{\"a\":\"x\\\\\\u0000\"}")); /* \\ then \u0000: three backslashes */
    assert_false(has_nul("{\"a\":\"\\\\u0000\"}"));   /* an escaped backslash, then text */
    assert_false(has_nul("{\"a\":\"\\\\\\\\u0000\"}"));
    assert_false(has_nul("{\"model\":\"u0000\"}"));
    assert_false(has_nul("{\"a\":\"\\u0001\\u00e9\"}"));
    assert_false(has_nul(""));
    assert_false(has_nul("\\u000"));
    /* only [p, end) is read */
    const char *s = "x\\u0000";
    assert_false(jscan_has_nul(s, s + 6));
    assert_true(jscan_has_nul(s, s + 7));
}

/* jscan_string looks at eight bytes at a time: every byte that matters, at
 * every position in and across those words, must still be seen. */
static const char *scan(const char *s, size_t n, bool verbatim, size_t *len)
{
    struct str lit = {0};
    const char *e = jscan_string(s, s + n, verbatim, &lit);
    *len = e ? lit.len : 0;
    return e;
}

static void string_every_position(void **state)
{
    (void)state;
    char s[64];
    size_t len;
    for (size_t n = 0; n <= 40; n++) {
        /* plain bytes next to the ones that matter: ' ' '!' '#' '[' ']' '~' DEL */
        static const char plain[] = " !#[]~\x7f"
                                    "abc";
        s[0] = '"';
        for (size_t i = 0; i < n; i++)
            s[1 + i] = plain[i % (sizeof plain - 1)];
        s[1 + n] = '"';
        memcpy(s + 2 + n, "xyz", 3);
        assert_ptr_equal(scan(s, n + 5, true, &len), s + n + 2);
        assert_int_equal(len, n + 2);
        /* no closing quote before the end */
        assert_null(scan(s, n + 1, true, &len));
        for (size_t k = 0; k < n; k++) {
            char t[64];
            memcpy(t, s, n + 5);
            t[1 + k] = '\x01'; /* a raw control character */
            assert_null(scan(t, n + 5, false, &len));
            t[1 + k] = '\x1f';
            assert_null(scan(t, n + 5, true, &len));
            t[1 + k] = '"'; /* the literal ends early */
            assert_ptr_equal(scan(t, n + 5, true, &len), t + k + 2);
            assert_int_equal(len, k + 2);
            t[1 + k] = '\xff'; /* not UTF-8: refused only when verbatim */
            assert_null(scan(t, n + 5, true, &len));
            assert_ptr_equal(scan(t, n + 5, false, &len), t + n + 2);
            if (k + 1 < n) {
                t[1 + k] = '\\'; /* an escaped quote inside */
                t[2 + k] = '"';
                assert_ptr_equal(scan(t, n + 5, true, &len), t + n + 2);
                t[1 + k] = '\xc3'; /* é, two bytes of UTF-8 */
                t[2 + k] = '\xa9';
                assert_ptr_equal(scan(t, n + 5, true, &len), t + n + 2);
                t[2 + k] = 'a'; /* a lead byte without its follower */
                assert_null(scan(t, n + 5, true, &len));
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nul_escapes),
        cmocka_unit_test(string_every_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
