/* Unit tests for seqring.c: newest first, the ring keeps only the last n,
 * and a reader racing the writer never gets a torn record (each record is
 * one value repeated; a torn one would mix two). Run under ThreadSanitizer
 * in the TSan build. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "seqring.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <string.h>

static void test_order_and_wrap(void **state)
{
    (void)state;
    struct seqring r;
    assert_int_equal(seqring_init(&r, 4), 0);
    unsigned char out[8][SEQRING_RECORD];
    uint64_t seq[8];
    assert_int_equal(seqring_read(&r, out, seq, 8), 0);
    for (int i = 0; i < 6; i++) {
        char rec[16];
        memset(rec, 'a' + i, sizeof rec);
        seqring_push(&r, rec, sizeof rec);
    }
    size_t n = seqring_read(&r, out, seq, 8);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(seq[i], 5 - i);
        assert_int_equal(out[i][0], 'a' + 5 - (int)i);
        assert_int_equal(out[i][15], 'a' + 5 - (int)i);
        assert_int_equal(out[i][16], 0); /* the rest of the slot is zero */
    }
    assert_int_equal(seqring_read(&r, out, NULL, 2), 2);
    assert_int_equal(out[0][0], 'f');
    seqring_free(&r);
}

static struct seqring shared;
static atomic_bool stop;
static atomic_size_t read_calls; /* the reader's calls while the writer runs */

/* Writes until the reader has raced it for a while (at least 200,000
 * records and 1,000 of the reader's calls), so the race is there however
 * the threads are scheduled; bounded at 50 million records. */
static void *writer(void *arg)
{
    (void)arg;
    unsigned char rec[SEQRING_RECORD];
    for (unsigned v = 0; v < 50000000u; v++) {
        if (v >= 200000 && atomic_load(&read_calls) >= 1000)
            break;
        memset(rec, (int)(v & 0xff), sizeof rec);
        seqring_push(&shared, rec, sizeof rec);
    }
    atomic_store(&stop, true);
    return NULL;
}

static void check_records(unsigned char (*out)[SEQRING_RECORD], const uint64_t *seq, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(out[i][0], seq[i] & 0xff);
        for (size_t k = 1; k < SEQRING_RECORD; k++)
            assert_int_equal(out[i][k], out[i][0]);
        if (i)
            assert_true(seq[i] < seq[i - 1]);
    }
}

static void test_never_torn(void **state)
{
    (void)state;
    assert_int_equal(seqring_init(&shared, 3), 0);
    atomic_store(&stop, false);
    atomic_store(&read_calls, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, writer, NULL), 0);
    unsigned char out[3][SEQRING_RECORD];
    uint64_t seq[3];
    while (!atomic_load(&stop)) {
        size_t n = seqring_read(&shared, out, seq, 3);
        check_records(out, seq, n);
        atomic_fetch_add(&read_calls, 1);
    }
    pthread_join(t, NULL);
    assert_true(atomic_load(&read_calls) >= 1000);
    /* at rest, the last three records are all there */
    assert_int_equal(seqring_read(&shared, out, seq, 3), 3);
    check_records(out, seq, 3);
    seqring_free(&shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_wrap),
        cmocka_unit_test(test_never_torn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
