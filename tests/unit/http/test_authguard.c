/* Unit tests for authguard.c: blocking after a minute's failures, doubling
 * blocks, per-address (and per-/64) counting, a full table, and threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "authguard.h"
#include "log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define T0 5000000 /* an arbitrary start on the fake monotonic clock */
#define SEC 1000

/* Room for either family, handed out as a struct sockaddr. */
struct addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
    } u;
};

static const struct sockaddr *ip(struct addr *a, const char *text)
{
    memset(a, 0, sizeof *a);
    if (inet_pton(AF_INET, text, &a->u.in.sin_addr) == 1) {
        a->u.in.sin_family = AF_INET;
        a->u.in.sin_port = htons(40000);
    } else if (inet_pton(AF_INET6, text, &a->u.in6.sin6_addr) == 1) {
        a->u.in6.sin6_family = AF_INET6;
        a->u.in6.sin6_port = htons(40001);
    } else {
        fail_msg("bad address %s", text);
    }
    return &a->u.sa;
}

static const struct sockaddr *ip4n(struct addr *a, uint32_t n)
{
    memset(a, 0, sizeof *a);
    a->u.in.sin_family = AF_INET;
    a->u.in.sin_addr.s_addr = htonl(n);
    return &a->u.sa;
}

/* Fail n times at now from sa; the block the last one started. */
static unsigned fail_n(struct authguard *g, const struct sockaddr *sa, int n, int64_t now)
{
    unsigned started = 0;
    for (int i = 0; i < n; i++)
        started = authguard_failed(g, sa, now);
    return started;
}

static void test_block_after_limit(void **state)
{
    (void)state;
    struct authguard *g = authguard_new(3);
    struct addr a;
    const struct sockaddr *sa = ip(&a, "192.0.2.7");

    assert_int_equal(authguard_blocked(g, sa, T0), 0);
    assert_int_equal(authguard_failed(g, sa, T0), 0);
    assert_int_equal(authguard_failed(g, sa, T0 + 20 * SEC), 0);
    assert_int_equal(authguard_blocked(g, sa, T0 + 20 * SEC), 0);
    assert_int_equal(authguard_failed(g, sa, T0 + 59 * SEC), 60);
    assert_int_equal(authguard_blocked(g, sa, T0 + 59 * SEC), 60);
    /* remaining seconds, rounded up */
    assert_int_equal(authguard_blocked(g, sa, T0 + 59 * SEC + 1), 60);
    assert_int_equal(authguard_blocked(g, sa, T0 + 60 * SEC), 59);
    assert_int_equal(authguard_blocked(g, sa, T0 + 118 * SEC + 500), 1);
    assert_int_equal(authguard_blocked(g, sa, T0 + 119 * SEC - 1), 1);
    /* failures while blocked are refused before counting: no longer block */
    assert_int_equal(authguard_failed(g, sa, T0 + 100 * SEC), 0);
    assert_int_equal(authguard_blocked(g, sa, T0 + 100 * SEC), 19);
    assert_int_equal(authguard_blocked(g, sa, T0 + 119 * SEC), 0);
    assert_int_equal(authguard_blocked(g, sa, T0 + 200 * SEC), 0);
    /* the count started again from nothing */
    assert_int_equal(fail_n(g, sa, 2, T0 + 200 * SEC), 0);
    assert_int_equal(authguard_blocked(g, sa, T0 + 200 * SEC), 0);
    authguard_free(g);
}

static void test_sliding_minute(void **state)
{
    (void)state;
    struct authguard *g = authguard_new(3);
    struct addr a;
    const struct sockaddr *sa = ip(&a, "192.0.2.8");

    /* three failures, but never three within 60 s */
    assert_int_equal(authguard_failed(g, sa, T0), 0);
    assert_int_equal(authguard_failed(g, sa, T0 + 30 * SEC), 0);
    assert_int_equal(authguard_failed(g, sa, T0 + 60 * SEC), 0);
    assert_int_equal(authguard_blocked(g, sa, T0 + 60 * SEC), 0);
    /* the window slides: 30, 60 and 89.999 are within a minute */
    assert_int_equal(authguard_failed(g, sa, T0 + 90 * SEC - 1), 60);
    authguard_free(g);

    /* a fixed window starting at the first failure would miss this */
    g = authguard_new(3);
    assert_int_equal(authguard_failed(g, sa, T0), 0);
    assert_int_equal(authguard_failed(g, sa, T0 + 50 * SEC), 0);
    assert_int_equal(authguard_failed(g, sa, T0 + 70 * SEC), 0);
    assert_int_equal(authguard_failed(g, sa, T0 + 80 * SEC), 60);
    authguard_free(g);

    /* one at a time, more than 20 s apart, never blocks */
    g = authguard_new(3);
    for (int i = 0; i < 100; i++)
        assert_int_equal(authguard_failed(g, sa, T0 + i * 30001), 0);
    authguard_free(g);
}

static void test_doubling(void **state)
{
    (void)state;
    struct authguard *g = authguard_new(3);
    struct addr a;
    const struct sockaddr *sa = ip(&a, "198.51.100.1");
    static const unsigned want[] = {60, 120, 240, 480, 900, 900};
    int64_t now = T0;

    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(fail_n(g, sa, 3, now), want[i]);
        assert_int_equal(authguard_blocked(g, sa, now), want[i]);
        now += (int64_t)want[i] * SEC;
        assert_int_equal(authguard_blocked(g, sa, now - 1), 1);
        assert_int_equal(authguard_blocked(g, sa, now), 0);
        now += 10 * SEC;
    }
    /* an hour after the last block ended it starts again from 60 s */
    now += 3600 * SEC;
    assert_int_equal(fail_n(g, sa, 3, now), 60);
    /* just within the hour: doubled */
    now += 60 * SEC + 3600 * SEC - 1;
    assert_int_equal(fail_n(g, sa, 3, now), 120);
    authguard_free(g);
}

static void test_other_address_unaffected(void **state)
{
    (void)state;
    struct authguard *g = authguard_new(3);
    struct addr a, b;
    const struct sockaddr *attacker = ip(&a, "192.0.2.66");
    const struct sockaddr *user = ip(&b, "192.0.2.67");

    assert_int_equal(fail_n(g, attacker, 3, T0), 60);
    assert_int_equal(authguard_blocked(g, user, T0), 0);
    assert_int_equal(fail_n(g, user, 2, T0), 0);
    assert_int_equal(authguard_blocked(g, user, T0), 0);
    assert_int_equal(authguard_blocked(g, attacker, T0 + SEC), 59);
    /* the attacker keeps failing: only it stays out */
    for (int i = 0; i < 50; i++)
        authguard_failed(g, attacker, T0 + SEC + i);
    assert_int_equal(authguard_blocked(g, user, T0 + 2 * SEC), 0);
    authguard_free(g);
}

static void test_ipv6_prefix(void **state)
{
    (void)state;
    struct authguard *g = authguard_new(3);
    struct addr a, b, c, d;

    /* one machine with many addresses in its /64 */
    authguard_failed(g, ip(&a, "2001:db8:1:2::1"), T0);
    authguard_failed(g, ip(&a, "2001:db8:1:2:ffff:ffff:ffff:ffff"), T0);
    assert_int_equal(authguard_failed(g, ip(&a, "2001:db8:1:2:abcd::9"), T0), 60);
    assert_int_equal(authguard_blocked(g, ip(&b, "2001:db8:1:2::77"), T0), 60);
    /* the next /64 and an IPv4 address are other clients */
    assert_int_equal(authguard_blocked(g, ip(&c, "2001:db8:1:3::1"), T0), 0);
    assert_int_equal(authguard_blocked(g, ip(&c, "2001:db8:1:1::1"), T0), 0);
    assert_int_equal(authguard_blocked(g, ip(&d, "0.0.0.0"), T0), 0);
    assert_int_equal(fail_n(g, ip(&c, "2001:db8:1:3::1"), 2, T0), 0);
    assert_int_equal(authguard_blocked(g, ip(&c, "2001:db8:1:3::1"), T0), 0);
    authguard_free(g);
}

static void test_ipv4_mapped(void **state)
{
    (void)state;
    struct authguard *g = authguard_new(3);
    struct addr a, b;

    authguard_failed(g, ip(&a, "1.2.3.4"), T0);
    authguard_failed(g, ip(&a, "::ffff:1.2.3.4"), T0);
    assert_int_equal(authguard_failed(g, ip(&a, "1.2.3.4"), T0), 60);
    assert_int_equal(authguard_blocked(g, ip(&b, "::ffff:1.2.3.4"), T0), 60);
    assert_int_equal(authguard_blocked(g, ip(&b, "1.2.3.4"), T0), 60);
    /* mapped addresses are not one /64: the neighbour is someone else */
    assert_int_equal(authguard_blocked(g, ip(&b, "::ffff:1.2.3.5"), T0), 0);
    assert_int_equal(authguard_blocked(g, ip(&b, "1.2.3.5"), T0), 0);
    /* nor is the IPv6 address whose low bytes happen to match */
    assert_int_equal(authguard_blocked(g, ip(&b, "::1.2.3.4"), T0), 0);
    authguard_free(g);
}

static void test_limit_zero_and_null(void **state)
{
    (void)state;
    struct authguard *g = authguard_new(0);
    struct addr a, u;
    const struct sockaddr *sa = ip(&a, "192.0.2.1");
    assert_int_equal(fail_n(g, sa, 1000, T0), 0);
    assert_int_equal(authguard_blocked(g, sa, T0), 0);

    /* turned on by a reload; and off again, which lifts blocks in force */
    authguard_set_limit(g, 2);
    assert_int_equal(fail_n(g, sa, 2, T0), 60);
    assert_int_equal(authguard_blocked(g, sa, T0), 60);
    authguard_set_limit(g, 0);
    assert_int_equal(authguard_blocked(g, sa, T0), 0);
    authguard_set_limit(g, 2);
    assert_int_equal(authguard_blocked(g, sa, T0), 60);

    /* no address: never counted, never blocked */
    assert_int_equal(authguard_failed(g, NULL, T0), 0);
    assert_int_equal(authguard_blocked(g, NULL, T0), 0);
    /* nor a local socket */
    memset(&u, 0, sizeof u);
    u.u.un.sun_family = AF_UNIX;
    assert_int_equal(fail_n(g, &u.u.sa, 10, T0), 0);
    assert_int_equal(authguard_blocked(g, &u.u.sa, T0), 0);
    /* no guard at all */
    assert_int_equal(authguard_blocked(NULL, sa, T0), 0);
    assert_int_equal(authguard_failed(NULL, sa, T0), 0);
    authguard_set_limit(NULL, 3);
    authguard_free(NULL);
    authguard_free(g);
}

static void test_limit_changes(void **state)
{
    (void)state;
    struct authguard *g = authguard_new(5);
    struct addr a;
    const struct sockaddr *sa = ip(&a, "192.0.2.2");
    assert_int_equal(fail_n(g, sa, 3, T0), 0);
    /* lowered below the count: the next failure blocks */
    authguard_set_limit(g, 2);
    assert_int_equal(authguard_failed(g, sa, T0 + SEC), 60);
    authguard_free(g);
}

static void test_high_limit(void **state)
{
    (void)state;
    /* above the ring size the window is kept in coarse steps */
    struct authguard *g = authguard_new(1000);
    struct addr a;
    const struct sockaddr *sa = ip(&a, "192.0.2.3");
    assert_int_equal(fail_n(g, sa, 999, T0), 0);
    assert_int_equal(authguard_failed(g, sa, T0 + 59 * SEC), 60);
    authguard_free(g);

    /* spread evenly over 59 s, 17 per second: still all counted */
    g = authguard_new(1000);
    unsigned started = 0;
    for (int i = 0; i < 1000; i++)
        started = authguard_failed(g, sa, T0 + (int64_t)i * 59);
    assert_int_equal(started, 60);
    authguard_free(g);

    /* and spread over well past a minute, never 1000 within one */
    g = authguard_new(1000);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(authguard_failed(g, sa, T0 + (int64_t)i * 100), 0);
    authguard_free(g);

    /* a limit raised past the ring while failures are recorded */
    g = authguard_new(16);
    assert_int_equal(fail_n(g, sa, 15, T0), 0);
    authguard_set_limit(g, 40);
    for (int i = 0; i < 25; i++)
        assert_int_equal(authguard_failed(g, sa, T0 + 1000 + i * 1000), i == 24 ? 60 : 0);
    authguard_free(g);
}

/* Count the lines written to the read end of a pipe. */
static int count_lines(int fd)
{
    char buf[4096];
    int lines = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    return lines;
}

static void test_table_full(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    log_set_fd(fds[1]);

    struct authguard *g = authguard_new(1);
    struct addr a;
    const uint32_t base = 0x0a000000; /* 10.0.0.0 */
    const uint32_t n = AUTHGUARD_SLOTS + 100;
    unsigned blocked = 0;
    for (uint32_t i = 0; i < n; i++)
        if (authguard_failed(g, ip4n(&a, base + i), T0))
            blocked++;
    /* never more tracked than there are slots; most slots do get used */
    assert_true(blocked <= AUTHGUARD_SLOTS);
    assert_true(blocked > AUTHGUARD_SLOTS / 2);
    unsigned still = 0;
    for (uint32_t i = 0; i < n; i++)
        still += authguard_blocked(g, ip4n(&a, base + i), T0 + SEC) != 0;
    assert_int_equal(still, blocked);
    /* addresses that found no slot were not counted, and said so once */
    assert_true(blocked < n);
    assert_int_equal(count_lines(fds[0]), 1);

    /* once the blocks end, their slots are reused */
    assert_int_equal(authguard_failed(g, ip4n(&a, base + n), T0 + 61 * SEC), 60);
    assert_int_equal(authguard_blocked(g, ip4n(&a, base + n), T0 + 61 * SEC), 60);
    blocked = 0;
    for (uint32_t i = 0; i < n; i++)
        if (authguard_failed(g, ip4n(&a, base + 100000 + i), T0 + 62 * SEC))
            blocked++;
    assert_true(blocked <= AUTHGUARD_SLOTS);
    assert_true(blocked > AUTHGUARD_SLOTS / 2);
    /* a minute later the warning may come once more */
    assert_true(count_lines(fds[0]) <= 1);
    authguard_free(g);

    /* without blocks the oldest entries are evicted and counting goes on */
    g = authguard_new(3);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(fail_n(g, ip4n(&a, base + i), 2, T0 + i), 0);
    assert_int_equal(fail_n(g, ip4n(&a, base + n + 1), 3, T0 + n), 60);
    assert_int_equal(authguard_blocked(g, ip4n(&a, base + n + 1), T0 + n), 60);
    /* the most recent ones are still counted */
    assert_int_equal(authguard_failed(g, ip4n(&a, base + n - 1), T0 + n), 60);
    assert_int_equal(count_lines(fds[0]), 0);
    authguard_free(g);

    log_set_fd(2);
    close(fds[0]);
    close(fds[1]);
}

static void test_quiet_after_expiry(void **state)
{
    (void)state;
    /* after a burst of failures the blocked addresses come back */
    struct authguard *g = authguard_new(2);
    struct addr a;
    for (uint32_t i = 0; i < 500; i++)
        fail_n(g, ip4n(&a, 0xc0000200 + i), 2, T0);
    for (uint32_t i = 0; i < 500; i++)
        assert_int_equal(authguard_blocked(g, ip4n(&a, 0xc0000200 + i), T0 + 30 * SEC), 30);
    for (uint32_t i = 0; i < 500; i++) {
        assert_int_equal(authguard_blocked(g, ip4n(&a, 0xc0000200 + i), T0 + 60 * SEC), 0);
    }
    /* each still remembers its block within the hour */
    assert_int_equal(fail_n(g, ip4n(&a, 0xc0000200), 2, T0 + 61 * SEC), 120);
    /* an hour after their blocks ended, all start again from 60 s */
    for (uint32_t i = 0; i < 500; i++)
        assert_int_equal(fail_n(g, ip4n(&a, 0xc0000200 + i), 2, T0 + 5000 * SEC), 60);
    authguard_free(g);
}

struct worker {
    struct authguard *g;
    int id;
    unsigned blocks;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct addr a, shared, mine;
    ip(&shared, "192.0.2.200");
    ip4n(&mine, 0xc6336400u + (uint32_t)w->id); /* 198.51.100.x */
    for (int i = 0; i < 5000; i++) {
        int64_t now = T0 + i;
        authguard_blocked(w->g, &shared.u.sa, now);
        if (authguard_failed(w->g, &shared.u.sa, now))
            w->blocks++;
        authguard_blocked(w->g, &mine.u.sa, now);
        authguard_failed(w->g, ip4n(&a, 0x0b000000u + (uint32_t)(w->id * 5000 + i)), now);
        if (i == 2500)
            authguard_set_limit(w->g, 10);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct authguard *g = authguard_new(10);
    struct worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.g = g, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    unsigned blocks = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        blocks += w[i].blocks;
    }
    /* within the 5 s the threads ran, the shared address was blocked once */
    assert_int_equal(blocks, 1);
    struct addr a;
    assert_true(authguard_blocked(g, ip(&a, "192.0.2.200"), T0 + 5000) > 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(authguard_blocked(g, ip4n(&a, 0xc6336400u + (uint32_t)i), T0 + 5000), 0);
    authguard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_after_limit),
        cmocka_unit_test(test_sliding_minute),
        cmocka_unit_test(test_doubling),
        cmocka_unit_test(test_other_address_unaffected),
        cmocka_unit_test(test_ipv6_prefix),
        cmocka_unit_test(test_ipv4_mapped),
        cmocka_unit_test(test_limit_zero_and_null),
        cmocka_unit_test(test_limit_changes),
        cmocka_unit_test(test_high_limit),
        cmocka_unit_test(test_table_full),
        cmocka_unit_test(test_quiet_after_expiry),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
