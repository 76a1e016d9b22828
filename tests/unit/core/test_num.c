/* num.c: whole numbers as people write them, strtonum-style. */
#include "num.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static int parse(const char *s, unsigned long long min, unsigned long long max,
                 unsigned long long *out, const char **why)
{
    return num_parse_uint(s, strlen(s), min, max, out, why);
}

static void digits(void **state)
{
    (void)state;
    assert_true(num_all_digits("0", 1));
    assert_true(num_all_digits("0123456789", 10));
    assert_false(num_all_digits("", 0));
    assert_false(num_all_digits("12a", 3));
    assert_false(num_all_digits("-1", 2));
    assert_false(num_all_digits(" 1", 2));
    /* only n bytes are looked at */
    assert_true(num_all_digits("12x", 2));
}

static void in_bounds(void **state)
{
    (void)state;
    unsigned long long v = 99;
    const char *why = NULL;
    assert_int_equal(parse("0", 0, 10, &v, &why), 0);
    assert_int_equal(v, 0);
    assert_int_equal(parse("10", 0, 10, &v, &why), 0);
    assert_int_equal(v, 10);
    assert_int_equal(parse("007", 1, 10, &v, &why), 0);
    assert_int_equal(v, 7);
    assert_int_equal(parse("18446744073709551615", 0, UINT64_MAX, &v, &why), 0);
    assert_true(v == UINT64_MAX);
    /* not '\0'-terminated: only n bytes count */
    assert_int_equal(num_parse_uint("8080/x", 4, 1, 65535, &v, &why), 0);
    assert_int_equal(v, 8080);
}

static void refused(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        unsigned long long min, max;
        const char *why;
    } cases[] = {
        {"", 0, 10, "is not a whole number"},
        {"-1", 0, 10, "is negative"},
        {"-", 0, 10, "is not a whole number"},
        {"-1.5", 0, 10, "is not a whole number"},
        {"+1", 0, 10, "is not a whole number"},
        {" 1", 0, 10, "is not a whole number"},
        {"1 ", 0, 10, "is not a whole number"},
        {"1.0", 0, 10, "is not a whole number"},
        {"1e3", 0, 10000, "is not a whole number"},
        {"0x10", 0, 100, "is not a whole number"},
        {"11", 0, 10, "is too large"},
        {"0", 1, 10, "is too small"},
        {"18446744073709551616", 0, UINT64_MAX, "is too large"},
        {"99999999999999999999999", 0, 10, "is too large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned long long v = 42;
        const char *why = NULL;
        if (parse(cases[i].s, cases[i].min, cases[i].max, &v, &why) != -1)
            fail_msg("accepted \"%s\"", cases[i].s);
        assert_string_equal(why, cases[i].why);
        assert_int_equal(v, 42); /* untouched */
    }
    /* longer than any number: too large, without reading it all */
    char huge[100];
    memset(huge, '1', sizeof huge);
    unsigned long long v;
    const char *why;
    assert_int_equal(num_parse_uint(huge, sizeof huge, 0, 10, &v, &why), -1);
    assert_string_equal(why, "is too large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digits),
        cmocka_unit_test(in_bounds),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
