/* Unit tests for promtext.c: Prometheus text format 0.0.4 as written: HELP
 * and TYPE lines, label values escaped (\\, \", \n) and HELP text (\\, \n),
 * exact decimals for millionths, histograms with cumulative buckets, +Inf,
 * _sum and _count. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "promtext.h"

#include <math.h>
#include <string.h>

static struct buf b;

static int setup(void **state)
{
    (void)state;
    buf_init(&b, 1 << 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    buf_free(&b);
    return 0;
}

static void test_family(void **state)
{
    (void)state;
    assert_int_equal(prom_family(&b, "x_total", "counter", "Back\\slash and\nnewline \"kept\"."),
                     0);
    assert_string_equal(b.p, "# HELP x_total Back\\\\slash and\\nnewline \"kept\".\n"
                             "# TYPE x_total counter\n");
}

static void test_escaped_labels(void **state)
{
    (void)state;
    struct prom_label l[] = {{"model", "a\"b\\c\nd"}, {"key", ""}, {"k", NULL}};
    assert_int_equal(prom_sample(&b, "m", l, 3, 42), 0);
    assert_string_equal(b.p, "m{model=\"a\\\"b\\\\c\\nd\",key=\"\",k=\"\"} 42\n");
    buf_reset(&b);
    assert_int_equal(prom_sample(&b, "plain", NULL, 0, UINT64_MAX), 0);
    assert_string_equal(b.p, "plain 18446744073709551615\n");
}

static void test_micro(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        const char *text;
    } cases[] = {{0, "0"},           {1, "0.000001"},       {250, "0.00025"},
                 {5000, "0.005"},    {1500000, "1.5"},      {2500000, "2.5"},
                 {300000000, "300"}, {1234567, "1.234567"}, {10000000, "10"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_reset(&b);
        assert_int_equal(prom_put_micro(&b, cases[i].v), 0);
        assert_string_equal(b.p, cases[i].text);
    }
    buf_reset(&b);
    prom_sample_double(&b, "d", NULL, 0, NAN);
    prom_sample_double(&b, "d", NULL, 0, INFINITY);
    prom_sample_double(&b, "d", NULL, 0, 0.5);
    assert_string_equal(b.p, "d NaN\nd +Inf\nd 0.5\n");
}

static void test_histogram(void **state)
{
    (void)state;
    const uint64_t bounds[] = {5000, 100000, 2500000};
    /* 1 at or below 5 ms, 0 in (5, 100] ms, 2 in (0.1, 2.5] s, 3 above */
    const uint64_t counts[] = {1, 0, 2, 3};
    struct prom_label l = {"route", "/v1/chat/completions"};
    assert_int_equal(prom_histogram(&b, "h", &l, 1, bounds, 3, counts, 12345678), 0);
    assert_string_equal(b.p, "h_bucket{route=\"/v1/chat/completions\",le=\"0.005\"} 1\n"
                             "h_bucket{route=\"/v1/chat/completions\",le=\"0.1\"} 1\n"
                             "h_bucket{route=\"/v1/chat/completions\",le=\"2.5\"} 3\n"
                             "h_bucket{route=\"/v1/chat/completions\",le=\"+Inf\"} 6\n"
                             "h_sum{route=\"/v1/chat/completions\"} 12.345678\n"
                             "h_count{route=\"/v1/chat/completions\"} 6\n");
    buf_reset(&b);
    const uint64_t none[] = {0, 0, 0, 0};
    assert_int_equal(prom_histogram(&b, "h", NULL, 0, bounds, 3, none, 0), 0);
    assert_string_equal(b.p,
                        "h_bucket{le=\"0.005\"} 0\nh_bucket{le=\"0.1\"} 0\n"
                        "h_bucket{le=\"2.5\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}

static void test_ceiling(void **state)
{
    (void)state;
    struct buf small;
    buf_init(&small, 16);
    struct prom_label l = {"model", "a-name-longer-than-the-buffer"};
    assert_true(prom_sample(&small, "m", &l, 1, 1) < 0);
    buf_free(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaped_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_micro, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram, setup, teardown),
        cmocka_unit_test(test_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
