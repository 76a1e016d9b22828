/* Unit tests for authguard_shared.c: an address's unit as text, and the
 * guard's Lua script, run by a real redis-server through redis_glue, against
 * the local guard (authguard.c) as the oracle: the same failures from the
 * same addresses on the same fake clock block at the same moments, for the
 * same seconds, doubling alike. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "authguard.h"
#include "authguard_shared.h"
#include "redis_fixture.h"

#include <arpa/inet.h>
#include <inttypes.h>

#define T0 1000000

static struct redis_fixture fx;

struct answer {
    struct redis_call call;
    bool done;
    long long blocked, started;
};

static void on_answer(struct redis_call *c, const redisReply *r)
{
    struct answer *a = (struct answer *)(void *)c;
    a->done = true;
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    a->blocked = r->element[0]->integer;
    a->started = r->element[1]->integer;
}

static void shared_fail(const struct sockaddr *sa, unsigned limit, int64_t now, long long *blocked,
                        long long *started)
{
    static unsigned seq;
    char unit[64], hash[80], set[80], lim[16], n[24], name[16];
    ags_unit(sa, unit, sizeof unit);
    snprintf(hash, sizeof hash, "g:ag:%s", unit);
    snprintf(set, sizeof set, "g:agf:%s", unit);
    snprintf(lim, sizeof lim, "%u", limit);
    snprintf(n, sizeof n, "%" PRId64, now);
    snprintf(name, sizeof name, "f%u", seq++);
    const char *args[5] = {hash, set, lim, n, name};
    struct answer a = {.call.done = on_answer};
    assert_int_equal(redis_glue_eval(&fx.w, &a.call, &ags_fail_script, 2, 5, args), 0);
    assert_true(fx_until(&fx, &a.done, 3000));
    *blocked = a.blocked;
    *started = a.started;
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof fx);
    if (fx_redis_start(&fx) < 0) {
        print_message("redis-server is not installed or would not start: skipped "
                      "(deploy/install-deps.sh --test)\n");
        return 0;
    }
    if (fx_worker(&fx, fx_cfg(&fx, 2000, "g:")) < 0 || !fx_until_ready(&fx, 3000))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (fx.cfg)
        fx_worker_free(&fx);
    fx_redis_kill(&fx);
    rmdir(fx.srv.dir);
    return 0;
}

static struct sockaddr_storage v4(const char *s)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, s, &in->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *s)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, s, &in6->sin6_addr), 1);
    return ss;
}

static void test_unit(void **state)
{
    (void)state;
    char u[64];
    struct sockaddr_storage a = v4("192.0.2.7");
    ags_unit((struct sockaddr *)&a, u, sizeof u);
    assert_string_equal(u, "4:192.0.2.7");
    a = v6("::ffff:192.0.2.7");
    ags_unit((struct sockaddr *)&a, u, sizeof u);
    assert_string_equal(u, "4:192.0.2.7");
    a = v6("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
    ags_unit((struct sockaddr *)&a, u, sizeof u);
    assert_string_equal(u, "6:2001:db8:1:2::/64");
    ags_unit(NULL, u, sizeof u);
    assert_string_equal(u, "-");
    struct sockaddr un = {.sa_family = AF_UNIX};
    ags_unit(&un, u, sizeof u);
    assert_string_equal(u, "-");
    struct apierr e;
    ags_refusal(&e, 60);
    assert_int_equal(e.status, 429);
    assert_int_equal(e.retry_after_s, 60);
}

/* Failures from four addresses (two of them one IPv6 /64) at pseudo-random
 * times, with now and then an hour's silence: the script blocks exactly
 * when the local guard does, for as long, and doubles alike. */
static void test_same_as_local(void **state)
{
    (void)state;
    if (!fx.srv.pid)
        skip();
    const unsigned limit = 5;
    struct authguard *g = authguard_new(limit);
    assert_non_null(g);
    struct sockaddr_storage addrs[4] = {v4("192.0.2.1"), v4("198.51.100.9"), v6("2001:db8:0:1::1"),
                                        v6("2001:db8:0:1::2")};
    uint64_t seed = 42;
    int64_t now = T0;
    int blocks = 0, doubled = 0;
    for (int step = 0; step < 2000; step++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned x = (unsigned)(seed >> 33);
        now += x % 97 == 0 ? 3700000 : (int64_t)(x % 9000);
        const struct sockaddr *sa = (const struct sockaddr *)&addrs[(x >> 8) % 4];
        unsigned lb = authguard_blocked(g, sa, now);
        long long sb, ss;
        shared_fail(sa, limit, now, &sb, &ss);
        if (lb) {
            if ((long long)lb != sb || ss)
                fail_msg("step %d: local blocked %u s, shared %lld s (started %lld)", step, lb, sb,
                         ss);
            continue;
        }
        unsigned ls = authguard_failed(g, sa, now);
        if ((long long)ls != ss || (long long)ls != sb)
            fail_msg("step %d: local started %u s, shared blocked %lld started %lld", step, ls, sb,
                     ss);
        blocks += ls > 0;
        doubled += ls > 60;
    }
    assert_true(blocks > 20);
    assert_true(doubled > 5);
    authguard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unit),
        cmocka_unit_test(test_same_as_local),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
