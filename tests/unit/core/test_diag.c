/* diag.c: the pieces of file diagnostics, shared by config.c and keys.c. */
#include "diag.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void show_quotes_and_bounds(void **state)
{
    (void)state;
    char b[DIAG_SHOWBUF];
    assert_string_equal(DIAG_SHOW(b, "plain"), "\"plain\"");
    assert_string_equal(DIAG_SHOW(b, "a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_string_equal(DIAG_SHOW(b, "tab\there\x7f"), "\"tab?here?\"");
    char longs[200];
    memset(longs, 'x', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    const char *q = DIAG_SHOW(b, longs);
    assert_true(strlen(q) < 60);
    assert_non_null(strstr(q, "...\""));
    char tiny[8];
    assert_true(strlen(diag_show(tiny, sizeof tiny, longs)) < sizeof tiny);
}

static void paths(void **state)
{
    (void)state;
    char p[128];
    diag_path_key(p, sizeof p, "", "backends");
    assert_string_equal(p, "backends");
    diag_path_key(p, sizeof p, "limits", "max_body_bytes");
    assert_string_equal(p, "limits.max_body_bytes");
    diag_path_key(p, sizeof p, "aliases", "gpt-4o*");
    assert_string_equal(p, "aliases[\"gpt-4o*\"]");
    diag_path_key(p, sizeof p, "aliases", "9lives");
    assert_string_equal(p, "aliases[\"9lives\"]");
    diag_path_index(p, sizeof p, "backends", 3);
    assert_string_equal(p, "backends[3]");
    assert_true(diag_is_ident("_a9"));
    assert_false(diag_is_ident("a-b"));
    assert_false(diag_is_ident(""));
}

static void lines(void **state)
{
    (void)state;
    const char *s = "a\nbb\n\nc";
    assert_int_equal(diag_line_at(s, strlen(s), 0), 1);
    assert_int_equal(diag_line_at(s, strlen(s), 2), 2);
    assert_int_equal(diag_line_at(s, strlen(s), 6), 4);
    assert_int_equal(diag_line_at(s, strlen(s), 999), 4); /* past the end: the last line */
}

static void did_you_mean(void **state)
{
    (void)state;
    assert_int_equal(diag_edit_distance("model", "model"), 0);
    assert_int_equal(diag_edit_distance("modle", "model"), 1); /* a swap is one edit */
    assert_int_equal(diag_edit_distance("", "abc"), 3);
    assert_int_equal(diag_edit_distance("kitten", "sitting"), 3);
    char big[80];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_true(diag_edit_distance(big, "a") == SIZE_MAX);

    static const char *const fields[] = {"id",  "name", "hash",        "models",
                                         "rpm", "tpm",  "max_inflight"};
    const size_t n = sizeof fields / sizeof *fields;
    assert_string_equal(diag_suggest("modles", fields, n), "models");
    assert_string_equal(diag_suggest("max_inflite", fields, n), "max_inflight");
    assert_string_equal(diag_suggest("max_in", fields, n), "max_inflight"); /* a prefix */
    assert_string_equal(diag_suggest("NAME", fields, n), "name");
    assert_null(diag_suggest("colour", fields, n));
    assert_null(diag_suggest("x", NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(show_quotes_and_bounds),
        cmocka_unit_test(paths),
        cmocka_unit_test(lines),
        cmocka_unit_test(did_you_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
