/* conntrack's address table: connections per client address, shared by the
 * workers. (The deadlines are exercised against the real daemon in
 * tests/integration/slowclients.test.mjs.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "conntrack.h"

#include <pthread.h>
#include <string.h>

static void addr4(unsigned char a[16], unsigned char last)
{
    memset(a, 0, 16);
    a[10] = a[11] = 0xff;
    a[12] = 127;
    a[15] = last;
}

static void test_limit_per_address(void **state)
{
    (void)state;
    struct peers p;
    assert_int_equal(peers_init(&p, 3), 0);
    unsigned char a[16], b[16];
    addr4(a, 1);
    addr4(b, 2);
    for (int i = 0; i < 3; i++)
        assert_true(peers_enter(&p, a));
    assert_false(peers_enter(&p, a)); /* the fourth from a */
    assert_true(peers_enter(&p, b));  /* another address is counted apart */
    peers_leave(&p, a);
    assert_true(peers_enter(&p, a)); /* a freed place is taken again */
    assert_false(peers_enter(&p, a));
    for (int i = 0; i < 3; i++)
        peers_leave(&p, a);
    peers_leave(&p, b);
    /* Every entry went back to zero and was freed: a full cycle again. */
    for (int i = 0; i < 3; i++)
        assert_true(peers_enter(&p, a));
    for (int i = 0; i < 3; i++)
        peers_leave(&p, a);
    peers_free(&p); /* the ASan build checks that nothing is left */
}

static void addr6(unsigned char a[16], unsigned char sixth, unsigned char last)
{
    /* 2001:db8:0:<sixth>::<last> (documentation prefix) */
    static const unsigned char base[16] = {0x20, 0x01, 0x0d, 0xb8};
    memcpy(a, base, 16);
    a[6] = sixth;
    a[15] = last;
}

/* An IPv6 client owns a /64: every address in it shares one count; the
 * next /64 is another client. */
static void test_ipv6_counts_per_64(void **state)
{
    (void)state;
    struct peers p;
    assert_int_equal(peers_init(&p, 2), 0);
    unsigned char a[16], b[16], c[16], other[16];
    addr6(a, 1, 1);
    addr6(b, 1, 2);
    addr6(c, 1, 3);
    c[8] = 0xfe; /* interface id differs in its high half too */
    addr6(other, 2, 1);
    assert_true(peers_enter(&p, a));
    assert_true(peers_enter(&p, b));
    assert_false(peers_enter(&p, c));    /* third from the same /64 */
    assert_false(peers_enter(&p, a));    /* a itself is full too */
    assert_true(peers_enter(&p, other)); /* the next /64 is apart */
    peers_leave(&p, b);                  /* any address of the /64 gives back */
    assert_true(peers_enter(&p, c));
    peers_leave(&p, a);
    peers_leave(&p, c);
    peers_leave(&p, other);
    peers_free(&p);
}

/* IPv4 stays per /32: the mapped prefix (::ffff:0:0/96) is not one client. */
static void test_ipv4_counts_per_address(void **state)
{
    (void)state;
    struct peers p;
    assert_int_equal(peers_init(&p, 1), 0);
    unsigned char a[16], b[16], loop6[16] = {0};
    addr4(a, 1);
    addr4(b, 2);
    loop6[15] = 1; /* ::1, which shares ::/64 with nothing mapped */
    assert_true(peers_enter(&p, a));
    assert_true(peers_enter(&p, b));
    assert_true(peers_enter(&p, loop6));
    assert_false(peers_enter(&p, a));
    peers_leave(&p, a);
    peers_leave(&p, b);
    peers_leave(&p, loop6);
    peers_free(&p);
}

static void test_zero_is_no_limit(void **state)
{
    (void)state;
    struct peers p;
    assert_int_equal(peers_init(&p, 0), 0);
    unsigned char a[16];
    addr4(a, 1);
    for (int i = 0; i < 1000; i++)
        assert_true(peers_enter(&p, a));
    for (int i = 0; i < 1000; i++)
        peers_leave(&p, a);
    peers_free(&p);
}

struct racer {
    struct peers *p;
    int granted;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    unsigned char a[16];
    addr4(a, 9);
    for (int i = 0; i < 1000; i++)
        if (peers_enter(r->p, a))
            r->granted++;
    return NULL;
}

/* Workers take places at once: the limit holds across threads. */
static void test_limit_across_threads(void **state)
{
    (void)state;
    struct peers p;
    assert_int_equal(peers_init(&p, 64), 0);
    pthread_t t[4];
    struct racer r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct racer){.p = &p};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        total += r[i].granted;
    }
    assert_int_equal(total, 64);
    unsigned char a[16];
    addr4(a, 9);
    for (int i = 0; i < total; i++)
        peers_leave(&p, a);
    assert_true(peers_enter(&p, a));
    peers_leave(&p, a);
    peers_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_per_address),    cmocka_unit_test(test_zero_is_no_limit),
        cmocka_unit_test(test_ipv6_counts_per_64),   cmocka_unit_test(test_ipv4_counts_per_address),
        cmocka_unit_test(test_limit_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
