/*
 * Unit tests for core/rand.c: response and tool-call ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "helpers.h"
#include "rand.h"

#include <ctype.h>
#include <string.h>

static void make_id(void **state)
{
    (void)state;
    char a[64], b[64], small[8];
    rand_id(a, sizeof a, "chatcmpl-");
    rand_id(b, sizeof b, "chatcmpl-");
    assert_int_equal(strlen(a), 9 + 24);
    assert_memory_equal(a, "chatcmpl-", 9);
    assert_string_not_equal(a, b);
    for (size_t k = 9; k < strlen(a); k++)
        assert_true(isalnum((unsigned char)a[k]));
    rand_id(small, sizeof small, "chatcmpl-");
    assert_string_equal(small, "chatcmp");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(make_id),
    };
    return cmocka_run_group_tests(tests, setup_sodium, NULL);
}
