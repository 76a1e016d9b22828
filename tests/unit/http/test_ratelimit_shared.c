/* Unit tests for ratelimit_shared.c: the Lua scripts, run by a real
 * redis-server through redis_glue, against the local limiter (ratelimit.c)
 * as the oracle: the same sequence of admissions and charges on the same
 * fake clock must give the same verdicts, field for field (the headers and
 * 429s of a shared key read exactly as a local one's). Also the parsing of
 * an admission answer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratelimit_shared.h"
#include "redis_fixture.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define T0 1000000 /* fake monotonic ms: what the scripts are given as now */

static struct redis_fixture fx;

struct answer {
    struct redis_call call;
    bool done;
    int ok; /* rls_verdict's result */
    struct rl_verdict v;
    long long integer;
};

static void on_admit(struct redis_call *c, const redisReply *r)
{
    struct answer *a = (struct answer *)(void *)c;
    a->done = true;
    a->ok = rls_verdict(r, &a->v);
}

static void on_charge(struct redis_call *c, const redisReply *r)
{
    struct answer *a = (struct answer *)(void *)c;
    a->done = true;
    a->ok = r && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
    a->integer = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

/* Admission with a place in flight (max_inflight > 0) leased as `lease`
 * for lease_ms. */
static void shared_admit_inflight(const char *key, unsigned rpm, unsigned tpm, unsigned mi,
                                  const char *lease, int64_t lease_ms, int64_t now,
                                  struct rl_verdict *v)
{
    struct answer a = {.call.done = on_admit};
    char set[64], r[16], t[16], n[24], m[16], l[24];
    snprintf(set, sizeof set, "%s:if", key);
    snprintf(r, sizeof r, "%u", rpm);
    snprintf(t, sizeof t, "%u", tpm);
    snprintf(n, sizeof n, "%" PRId64, now);
    snprintf(m, sizeof m, "%u", mi);
    snprintf(l, sizeof l, "%" PRId64, lease_ms);
    const char *args[11] = {key, set, "u:ag:4:192.0.2.1",  "u:keys", r, t, n,
                            m,   l,   lease ? lease : "-", "walkkey"};
    assert_int_equal(redis_glue_eval(&fx.w, &a.call, &rls_admit_script, 4, 11, args), 0);
    assert_true(fx_until(&fx, &a.done, 3000));
    assert_int_equal(a.ok, 0);
    *v = a.v;
}

static void shared_admit(const char *key, unsigned rpm, unsigned tpm, int64_t now,
                         struct rl_verdict *v)
{
    shared_admit_inflight(key, rpm, tpm, 0, NULL, 1000, now, v);
}

/* Renew or release a lease; returns the script's answer. */
static long long shared_lease(const char *key, const char *op, const char *lease, int64_t lease_ms,
                              int64_t now)
{
    struct answer a = {.call.done = on_charge};
    char set[64], n[24], l[24];
    snprintf(set, sizeof set, "%s:if", key);
    snprintf(n, sizeof n, "%" PRId64, now);
    snprintf(l, sizeof l, "%" PRId64, lease_ms);
    const char *args[5] = {set, op, n, l, lease};
    assert_int_equal(redis_glue_eval(&fx.w, &a.call, &rls_lease_script, 1, 5, args), 0);
    assert_true(fx_until(&fx, &a.done, 3000));
    return a.integer;
}

static void shared_charge(const char *key, unsigned tpm, long tokens, int64_t now)
{
    struct answer a = {.call.done = on_charge};
    char t[16], k[24], n[24];
    snprintf(t, sizeof t, "%u", tpm);
    snprintf(k, sizeof k, "%ld", tokens);
    snprintf(n, sizeof n, "%" PRId64, now);
    const char *args[5] = {key, t, k, n, "0"};
    assert_int_equal(redis_glue_eval(&fx.w, &a.call, &rls_charge_script, 1, 5, args), 0);
    assert_true(fx_until(&fx, &a.done, 3000));
    assert_int_equal(a.integer, 1);
}

static void same_verdict(const struct rl_verdict *local, const struct rl_verdict *shared,
                         const char *what)
{
    if (local->ok != shared->ok || (local->which == NULL) != (shared->which == NULL) ||
        (local->which && strcmp(local->which, shared->which) != 0) ||
        local->retry_after_s != shared->retry_after_s ||
        local->limit_requests != shared->limit_requests ||
        local->remaining_requests != shared->remaining_requests ||
        local->reset_requests_ms != shared->reset_requests_ms ||
        local->limit_tokens != shared->limit_tokens ||
        local->remaining_tokens != shared->remaining_tokens ||
        local->reset_tokens_ms != shared->reset_tokens_ms) {
        print_error("%s: local ok=%d which=%s retry=%u req %ld/%ld reset %" PRId64
                    " tok %ld/%ld reset %" PRId64 "\n"
                    "%s: shared ok=%d which=%s retry=%u req %ld/%ld reset %" PRId64
                    " tok %ld/%ld reset %" PRId64 "\n",
                    what, local->ok, local->which ? local->which : "-", local->retry_after_s,
                    local->remaining_requests, local->limit_requests, local->reset_requests_ms,
                    local->remaining_tokens, local->limit_tokens, local->reset_tokens_ms, what,
                    shared->ok, shared->which ? shared->which : "-", shared->retry_after_s,
                    shared->remaining_requests, shared->limit_requests, shared->reset_requests_ms,
                    shared->remaining_tokens, shared->limit_tokens, shared->reset_tokens_ms);
        fail();
    }
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
    if (fx_worker(&fx, fx_cfg(&fx, 2000, "u:")) < 0 || !fx_until_ready(&fx, 3000))
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
    rl_reset_all();
    return 0;
}

#define NEED_REDIS()                                                                               \
    do {                                                                                           \
        if (!fx.srv.pid)                                                                           \
            skip();                                                                                \
    } while (0)

/* rpm 3: three pass at once, the fourth waits 20 s; one comes back per 20 s. */
static void test_rpm_by_hand(void **state)
{
    (void)state;
    NEED_REDIS();
    struct rl_verdict v;
    for (int i = 0; i < 3; i++) {
        shared_admit("u:rl:hand", 3, 0, T0, &v);
        assert_true(v.ok);
        assert_int_equal(v.limit_requests, 3);
        assert_int_equal(v.remaining_requests, 2 - i);
        assert_int_equal(v.limit_tokens, 0);
    }
    shared_admit("u:rl:hand", 3, 0, T0, &v);
    assert_false(v.ok);
    assert_string_equal(v.which, "requests");
    assert_int_equal(v.retry_after_s, 20);
    assert_int_equal(v.reset_requests_ms, 60000);
    shared_admit("u:rl:hand", 3, 0, T0 + 20000, &v);
    assert_true(v.ok);
    assert_int_equal(v.remaining_requests, 0);
    /* the hash lives three minutes past its last use */
    redisReply *r = fx_command(&fx, "PTTL u:rl:hand");
    assert_non_null(r);
    assert_true(r->integer > 170000 && r->integer <= 180000);
    freeReplyObject(r);
}

/* A pseudo-random walk of admissions, charges, waits and limit changes: the
 * scripts and the local limiter agree at every step. */
static void test_same_as_local(void **state)
{
    (void)state;
    NEED_REDIS();
    struct rl_state *s = rl_state_for("walk00000000");
    assert_non_null(s);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int64_t now = T0;
    unsigned rpm = 5, tpm = 300, mi = 2;
    char what[128];
    /* places in flight: leases long enough never to expire in the walk */
    static char held[3000][16];
    int nheld = 0;
    for (int step = 0; step < 3000; step++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned x = (unsigned)(seed >> 33);
        switch (x % 10) {
        case 0: /* time passes: a little, or a lot (the two-minute clamp) */
            now += x % 7 == 0 ? 200000 : (int64_t)(x % 15000);
            break;
        case 1: /* a reload changes the limits (0 = off) */
            rpm = (x >> 4) % 4 == 0 ? 0 : 1 + (x >> 8) % 20;
            tpm = (x >> 12) % 4 == 0 ? 0 : 1 + (x >> 16) % 1000;
            mi = (x >> 20) % 4;
            break;
        case 4: /* a request in flight ends */
            if (nheld) {
                rl_release(s);
                assert_int_equal(shared_lease("u:rl:walk", "release", held[--nheld], 1, now), 1);
            }
            break;
        case 2:
        case 3: { /* an answer's tokens, sometimes more than twice the limit */
            long n = (long)((x >> 4) % 2500);
            struct rl_limits lim = {.tpm = tpm};
            rl_charge(s, &lim, n, 0, now);
            shared_charge("u:rl:walk", tpm, n, now);
            break;
        }
        default: {
            struct rl_limits lim = {.rpm = rpm, .tpm = tpm, .max_inflight = mi};
            struct rl_verdict lv, sv;
            rl_admit(s, &lim, true, now, &lv);
            snprintf(held[nheld], sizeof held[nheld], "L%d", step);
            shared_admit_inflight("u:rl:walk", rpm, tpm, mi, held[nheld], 1000000000000, now, &sv);
            if (sv.ok && mi)
                nheld++;
            snprintf(what, sizeof what, "step %d (rpm %u tpm %u inflight %u/%u)", step, rpm, tpm,
                     nheld, mi);
            same_verdict(&lv, &sv, what);
        }
        }
    }
}

/* Leases: a place in flight is taken, refused when the set is full,
 * renewed, released, and free again once its lease is over (a replica that
 * died holding it). */
static void test_leases(void **state)
{
    (void)state;
    NEED_REDIS();
    struct rl_verdict v;
    shared_admit_inflight("u:rl:lease", 0, 0, 1, "A", 1000, T0, &v);
    assert_true(v.ok);
    assert_int_equal(v.limit_requests, 0);
    shared_admit_inflight("u:rl:lease", 0, 0, 1, "B", 1000, T0 + 500, &v);
    assert_false(v.ok);
    assert_string_equal(v.which, "concurrent requests");
    assert_int_equal(v.retry_after_s, 1);
    /* renewed at +900: held until +1900 */
    assert_int_equal(shared_lease("u:rl:lease", "renew", "A", 1000, T0 + 900), 1);
    shared_admit_inflight("u:rl:lease", 0, 0, 1, "B", 1000, T0 + 1500, &v);
    assert_false(v.ok);
    /* not renewed: free after +1900, as if its replica had died */
    shared_admit_inflight("u:rl:lease", 0, 0, 1, "B", 1000, T0 + 1901, &v);
    assert_true(v.ok);
    /* renewing a lease that expired does not bring it back */
    assert_int_equal(shared_lease("u:rl:lease", "renew", "A", 1000, T0 + 1902), 0);
    assert_int_equal(shared_lease("u:rl:lease", "release", "B", 1000, T0 + 1903), 1);
    assert_int_equal(shared_lease("u:rl:lease", "release", "B", 1000, T0 + 1904), 0);
    shared_admit_inflight("u:rl:lease", 0, 0, 1, "C", 1000, T0 + 1905, &v);
    assert_true(v.ok);
    /* a refusal for requests takes no place in flight */
    shared_admit_inflight("u:rl:lease2", 1, 0, 2, "D", 1000, T0, &v);
    assert_true(v.ok);
    shared_admit_inflight("u:rl:lease2", 1, 0, 2, "E", 1000, T0, &v);
    assert_false(v.ok);
    assert_string_equal(v.which, "requests");
    redisReply *r = fx_command(&fx, "ZCARD u:rl:lease2:if");
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
}

/* Limits as large as a key may have: levels near 2^48 ticks stay exact. */
static void test_large_limits(void **state)
{
    (void)state;
    NEED_REDIS();
    struct rl_state *s = rl_state_for("large0000000");
    unsigned big = 4294967295u;
    struct rl_limits lim = {.rpm = big, .tpm = big};
    struct rl_verdict lv, sv;
    int64_t now = T0;
    for (int i = 0; i < 5; i++) {
        rl_admit(s, &lim, false, now, &lv);
        shared_admit("u:rl:large", big, big, now, &sv);
        same_verdict(&lv, &sv, "large");
        struct rl_limits c = {.tpm = big};
        rl_charge(s, &c, 1234567891, 0, now);
        shared_charge("u:rl:large", big, 1234567891, now);
        now += 7;
    }
}

/* The charge's other half: the fleet's usage totals, added whether or not
 * a bucket is charged (tpm "0"), in the same call. */
static const struct redis_script read_hash = {
    .name = "read",
    .text = "local h = redis.call('HMGET', KEYS[1], ARGV[1], ARGV[2], ARGV[3])\n"
            "for i = 1, 3 do h[i] = tonumber(h[i] or '-1') end\n"
            "return h\n",
};

struct triple {
    struct redis_call call;
    bool done;
    long long v[3];
};

static void on_triple(struct redis_call *c, const redisReply *r)
{
    struct triple *t = (struct triple *)(void *)c;
    t->done = true;
    for (size_t i = 0; i < 3; i++)
        t->v[i] = r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                          r->element[i]->type == REDIS_REPLY_INTEGER
                      ? r->element[i]->integer
                      : -2;
}

static void read3(const char *key, const char *a, const char *b, const char *c, long long *out)
{
    struct triple t = {.call.done = on_triple};
    const char *args[4] = {key, a, b, c};
    assert_int_equal(redis_glue_eval(&fx.w, &t.call, &read_hash, 1, 4, args), 0);
    assert_true(fx_until(&fx, &t.done, 3000));
    memcpy(out, t.v, sizeof t.v);
}

static void charge_use(const char *tpm, const char *prompt, const char *completion)
{
    struct answer a = {.call.done = on_charge};
    char n[24];
    snprintf(n, sizeof n, "%lld", atoll(prompt) + atoll(completion));
    const char *args[7] = {"u:rl:use", "u:use:use", tpm, n, "1000000", prompt, completion};
    assert_int_equal(redis_glue_eval(&fx.w, &a.call, &rls_charge_script, 2, 7, args), 0);
    assert_true(fx_until(&fx, &a.done, 3000));
    assert_int_equal(a.integer, 1);
}

static void test_usage_totals(void **state)
{
    (void)state;
    NEED_REDIS();
    long long v[3];
    charge_use("0", "7", "3");   /* not admitted by Redis: totals only */
    charge_use("0", "0", "0");   /* a request without tokens still counts */
    charge_use("100", "5", "1"); /* admitted: its bucket is charged too */
    read3("u:use:use", "requests", "prompt", "completion", v);
    assert_int_equal(v[0], 3);
    assert_int_equal(v[1], 12);
    assert_int_equal(v[2], 4);
    /* only the last call touched the bucket: full (100) less 6 tokens */
    read3("u:rl:use", "tl", "tn", "rl", v);
    assert_int_equal(v[0], (100 - 6) * 60000LL);
    assert_int_equal(v[1], 100);
    assert_int_equal(v[2], -1); /* no request bucket */
}

static void test_verdict_parse(void **state)
{
    (void)state;
    struct rl_verdict v;
    assert_int_equal(rls_verdict(NULL, &v), -1);
    redisReply e[8], *pe[8], top = {.type = REDIS_REPLY_ARRAY, .elements = 8, .element = pe};
    long long vals[8] = {2, 1500, 3, 4000, 0, 60000, 10, 100};
    for (int i = 0; i < 8; i++) {
        e[i] = (redisReply){.type = REDIS_REPLY_INTEGER, .integer = vals[i]};
        pe[i] = &e[i];
    }
    assert_int_equal(rls_verdict(&top, &v), 0);
    assert_false(v.ok);
    assert_string_equal(v.which, "tokens");
    assert_int_equal(v.retry_after_s, 2);
    assert_int_equal(v.limit_requests, 10);
    assert_int_equal(v.remaining_requests, 3);
    assert_int_equal(v.reset_requests_ms, 4000);
    assert_int_equal(v.limit_tokens, 100);
    assert_int_equal(v.reset_tokens_ms, 60000);
    e[0].integer = 3;
    assert_int_equal(rls_verdict(&top, &v), 0);
    assert_string_equal(v.which, "concurrent requests");
    e[0].integer = 4;
    assert_int_equal(rls_verdict(&top, &v), 0);
    assert_string_equal(v.which, RLS_GUARD);
    e[0].integer = 6;
    assert_int_equal(rls_verdict(&top, &v), 0);
    assert_string_equal(v.which, RLS_DISABLED);
    e[0].integer = 7; /* no such limit */
    assert_int_equal(rls_verdict(&top, &v), -1);
    e[0].integer = 0;
    e[3].type = REDIS_REPLY_STRING;
    assert_int_equal(rls_verdict(&top, &v), -1);
    e[3].type = REDIS_REPLY_INTEGER;
    top.elements = 7;
    assert_int_equal(rls_verdict(&top, &v), -1);
    top.elements = 8;
    assert_int_equal(rls_verdict(&top, &v), 0);
    assert_true(v.ok);
    assert_int_equal(v.retry_after_s, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpm_by_hand),   cmocka_unit_test(test_same_as_local),
        cmocka_unit_test(test_leases),        cmocka_unit_test(test_large_limits),
        cmocka_unit_test(test_verdict_parse), cmocka_unit_test(test_usage_totals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
