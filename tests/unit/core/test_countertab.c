/* Unit tests for countertab.c: entries found again by their labels, the
 * ceiling on entries, sorting, and a reader thread summing while the owner
 * appends and counts (run under ThreadSanitizer in the TSan build). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "countertab.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static void test_get_and_add(void **state)
{
    (void)state;
    struct ctab t;
    assert_int_equal(ctab_init(&t, 2, 10), 0);
    const char *l1[] = {"ab", ""}, *l2[] = {"a", "b"}, *l3[] = {"ab", NULL};
    struct ctab_entry *e1 = ctab_get(&t, l1, true);
    struct ctab_entry *e2 = ctab_get(&t, l2, true);
    assert_non_null(e1);
    assert_non_null(e2);
    assert_ptr_not_equal(e1, e2);
    assert_ptr_equal(ctab_get(&t, l3, false), e1); /* NULL reads as "" */
    ctab_add(e1, 0, 5);
    ctab_add(e1, 0, 2);
    ctab_add(e1, 2, 1);
    assert_int_equal(ctab_value(e1, 0), 7);
    assert_int_equal(ctab_value(e1, 1), 0);
    assert_int_equal(ctab_value(e1, 2), 1);
    assert_int_equal(ctab_published(&t), 2);
    assert_string_equal(ctab_at(&t, 1)->label[0], "a");
    assert_string_equal(ctab_at(&t, 1)->label[1], "b");
    const char *l4[] = {"x", "y"};
    assert_null(ctab_get(&t, l4, false));
    assert_int_equal(ctab_published(&t), 2);
    ctab_free(&t);
}

static void test_ceiling_and_sort(void **state)
{
    (void)state;
    struct ctab t;
    assert_int_equal(ctab_init(&t, 1, 1), 0); /* rounded up to one chunk */
    char name[16];
    for (int i = CTAB_CHUNK - 1; i >= 0; i--) {
        snprintf(name, sizeof name, "n%03d", i);
        const char *l[] = {name};
        assert_non_null(ctab_get(&t, l, true));
    }
    const char *more[] = {"one too many"};
    assert_null(ctab_get(&t, more, true));
    const char *again[] = {"n005"};
    assert_non_null(ctab_get(&t, again, true)); /* an existing one is still found */
    const struct ctab_entry *v[CTAB_CHUNK];
    ctab_sorted(&t, v, CTAB_CHUNK);
    for (int i = 0; i < CTAB_CHUNK; i++) {
        snprintf(name, sizeof name, "n%03d", i);
        assert_string_equal(v[i]->label[0], name);
    }
    ctab_free(&t);
}

#define KEYS 300
#define ROUNDS 20

static struct ctab shared;
static atomic_bool done;

/* The owner: ROUNDS passes over KEYS label sets, one count each. */
static void *owner(void *arg)
{
    (void)arg;
    char name[16];
    for (int r = 0; r < ROUNDS; r++)
        for (int k = 0; k < KEYS; k++) {
            snprintf(name, sizeof name, "k%d", k);
            const char *l[] = {name, "x"};
            struct ctab_entry *e = ctab_get(&shared, l, true);
            ctab_add(e, 0, 1);
            ctab_add(e, 1, 2);
        }
    atomic_store(&done, true);
    return NULL;
}

static void test_reader_while_owner_writes(void **state)
{
    (void)state;
    assert_int_equal(ctab_init(&shared, 2, KEYS), 0);
    atomic_store(&done, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, owner, NULL), 0);
    uint64_t last = 0;
    for (int seen_done = 0; seen_done < 2;) {
        seen_done += atomic_load(&done); /* one more pass after the owner ends */
        size_t n = ctab_published(&shared);
        uint64_t a = 0, b = 0;
        for (size_t i = 0; i < n; i++) {
            const struct ctab_entry *e = ctab_at(&shared, i);
            assert_string_equal(e->label[1], "x"); /* a published entry is whole */
            a += ctab_value(e, 0);
            b += ctab_value(e, 1);
        }
        assert_true(a >= last);          /* totals never go back */
        assert_true(b <= 2 * a + 2 * n); /* at most one entry's second count ahead */
        last = a;
    }
    pthread_join(t, NULL);
    assert_int_equal(last, KEYS * ROUNDS);
    ctab_free(&shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_add),
        cmocka_unit_test(test_ceiling_and_sort),
        cmocka_unit_test(test_reader_while_owner_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
