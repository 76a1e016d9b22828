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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nul_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
