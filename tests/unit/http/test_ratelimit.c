/* Unit tests for ratelimit.c: the request and token buckets against a fake
 * clock, in-flight places, limits changed by a reload, the key table under
 * threads, and the x-ratelimit-* headers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratelimit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define T0 1000000 /* an arbitrary start on the fake monotonic clock */

static int reset(void **state)
{
    (void)state;
    rl_reset_all();
    return 0;
}

static bool admit(struct rl_state *s, unsigned rpm, unsigned tpm, unsigned inflight, int64_t now,
                  struct rl_verdict *v)
{
    struct rl_limits lim = {.rpm = rpm, .tpm = tpm, .max_inflight = inflight};
    return rl_admit(s, &lim, true, now, v);
}

static void charge(struct rl_state *s, unsigned tpm, long prompt, long completion, int64_t now)
{
    struct rl_limits lim = {.tpm = tpm};
    rl_charge(s, &lim, prompt, completion, now);
}

static void test_state_for(void **state)
{
    (void)state;
    struct rl_state *a = rl_state_for("aaaaaaaaaaaa");
    struct rl_state *b = rl_state_for("bbbbbbbbbbbb");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(rl_state_for("aaaaaaaaaaaa"), a);
    assert_null(rl_state_for(NULL));

    /* enough ids to grow the table several times: the first pointers stay valid */
    struct rl_state *all[1000];
    char id[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "k%011d", i);
        all[i] = rl_state_for(id);
        assert_non_null(all[i]);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "k%011d", i);
        assert_ptr_equal(rl_state_for(id), all[i]);
    }
    assert_ptr_equal(rl_state_for("aaaaaaaaaaaa"), a);
    assert_ptr_equal(rl_state_for("bbbbbbbbbbbb"), b);
}

static void test_rpm(void **state)
{
    (void)state;
    struct rl_state *s = rl_state_for("rpm");
    struct rl_verdict v;

    for (long i = 0; i < 3; i++) {
        assert_true(admit(s, 3, 0, 0, T0, &v));
        assert_true(v.ok);
        assert_int_equal(v.limit_requests, 3);
        assert_int_equal(v.remaining_requests, 2 - i);
        /* each unit used takes 20 s to come back */
        assert_int_equal(v.reset_requests_ms, 20000 * (i + 1));
        assert_int_equal(v.limit_tokens, 0);
    }
    assert_false(admit(s, 3, 0, 0, T0, &v));
    assert_false(v.ok);
    assert_string_equal(v.which, "requests");
    assert_int_equal(v.retry_after_s, 20);
    assert_int_equal(v.remaining_requests, 0);
    assert_int_equal(v.reset_requests_ms, 60000);

    /* the wait counts down, rounded up to whole seconds */
    assert_false(admit(s, 3, 0, 0, T0 + 10000, &v));
    assert_int_equal(v.retry_after_s, 10);
    assert_false(admit(s, 3, 0, 0, T0 + 19001, &v));
    assert_int_equal(v.retry_after_s, 1);
    assert_false(admit(s, 3, 0, 0, T0 + 19999, &v));
    assert_int_equal(v.retry_after_s, 1);
    assert_int_equal(v.reset_requests_ms, 40001);

    /* after 20 s exactly one more */
    assert_true(admit(s, 3, 0, 0, T0 + 20000, &v));
    assert_int_equal(v.remaining_requests, 0);
    assert_int_equal(v.reset_requests_ms, 60000);
    assert_false(admit(s, 3, 0, 0, T0 + 20000, &v));
    assert_int_equal(v.retry_after_s, 20);

    /* a long pause refills to capacity and no further */
    assert_true(admit(s, 3, 0, 0, T0 + 3600000, &v));
    assert_int_equal(v.remaining_requests, 2);
    assert_int_equal(v.reset_requests_ms, 20000);
}

static void test_rpm_fractional_refill(void **state)
{
    (void)state;
    /* 7 per minute: a unit comes back every 8571.43 ms, not a whole number */
    struct rl_state *s = rl_state_for("rpm7");
    struct rl_verdict v;
    for (int i = 0; i < 7; i++)
        assert_true(admit(s, 7, 0, 0, T0, &v));
    assert_false(admit(s, 7, 0, 0, T0, &v));
    assert_int_equal(v.retry_after_s, 9); /* 8571.43 ms rounded up */
    assert_int_equal(v.reset_requests_ms, 60000);
    assert_false(admit(s, 7, 0, 0, T0 + 8571, &v));
    assert_int_equal(v.retry_after_s, 1);
    assert_true(admit(s, 7, 0, 0, T0 + 8572, &v));
    assert_int_equal(v.remaining_requests, 0);
    assert_int_equal(v.reset_requests_ms, 60000);
    /* the fraction refilled beyond the unit is kept: the next one is back at
     * 2 * 8571.43 ms, not at 2 * 8572 */
    assert_false(admit(s, 7, 0, 0, T0 + 17142, &v));
    assert_true(admit(s, 7, 0, 0, T0 + 17143, &v));
}

static void test_no_limits(void **state)
{
    (void)state;
    struct rl_state *s = rl_state_for("free");
    struct rl_verdict v;
    for (int i = 0; i < 1000; i++)
        assert_true(admit(s, 0, 0, 0, T0, &v));
    assert_int_equal(v.limit_requests, 0);
    assert_int_equal(v.limit_tokens, 0);
    assert_null(v.which);
    assert_true(rl_admit(s, NULL, true, T0, &v));
    unsigned inflight = 99;
    rl_totals(s, NULL, NULL, &inflight);
    assert_int_equal(inflight, 0); /* no limit: no place is held, none is released */
}

static void test_tpm(void **state)
{
    (void)state;
    struct rl_state *s = rl_state_for("tpm");
    struct rl_verdict v;

    assert_true(admit(s, 0, 600, 0, T0, &v));
    assert_int_equal(v.limit_tokens, 600);
    assert_int_equal(v.remaining_tokens, 600);
    assert_int_equal(v.reset_tokens_ms, 0);
    assert_int_equal(v.limit_requests, 0);

    /* admission only needs the bucket above 0: a 1000-token answer is paid in full */
    charge(s, 600, 300, 700, T0);
    assert_false(admit(s, 0, 600, 0, T0, &v));
    assert_string_equal(v.which, "tokens");
    assert_int_equal(v.remaining_tokens, 0);
    /* -400 refills at 10 per second: 40 s to reach 0, and admission needs more than 0 */
    assert_int_equal(v.retry_after_s, 41);
    assert_int_equal(v.reset_tokens_ms, 100000);
    assert_false(admit(s, 0, 600, 0, T0 + 40000, &v));
    assert_int_equal(v.retry_after_s, 1);
    assert_int_equal(v.remaining_tokens, 0);
    assert_true(admit(s, 0, 600, 0, T0 + 40001, &v));
    assert_int_equal(v.remaining_tokens, 0); /* 0.01 token: floor */
    assert_true(admit(s, 0, 600, 0, T0 + 40100, &v));
    assert_int_equal(v.remaining_tokens, 1);

    uint64_t p, c;
    rl_totals(s, &p, &c, NULL);
    assert_int_equal(p, 300);
    assert_int_equal(c, 700);
}

static void test_tpm_floor(void **state)
{
    (void)state;
    struct rl_state *s = rl_state_for("tpmfloor");
    struct rl_verdict v;
    /* from full, 5000 tokens would reach -4400: the floor is -600 */
    charge(s, 600, 0, 5000, T0);
    assert_false(admit(s, 0, 600, 0, T0, &v));
    assert_int_equal(v.retry_after_s, 61);
    assert_int_equal(v.reset_tokens_ms, 120000);
    /* a second huge charge stays at the floor; so does LONG_MAX */
    charge(s, 600, 1000000, 1000000, T0);
    charge(s, 600, 9223372036854775807L, 0, T0);
    assert_false(admit(s, 0, 600, 0, T0, &v));
    assert_int_equal(v.reset_tokens_ms, 120000);
    assert_true(admit(s, 0, 600, 0, T0 + 60001, &v));
    /* negative counts charge nothing and count nothing */
    charge(s, 600, -5, -7, T0 + 60001);
    assert_true(admit(s, 0, 600, 0, T0 + 60001, &v));
    uint64_t p, c;
    rl_totals(s, &p, &c, NULL);
    assert_int_equal(p, 1000000 + 9223372036854775807ull);
    assert_int_equal(c, 1005000);
}

static void test_charge_without_tpm(void **state)
{
    (void)state;
    struct rl_state *s = rl_state_for("totals");
    struct rl_verdict v;
    charge(s, 0, 10, 20, T0);
    rl_charge(s, NULL, 1, 2, T0);
    assert_true(admit(s, 0, 0, 0, T0, &v));
    uint64_t p, c;
    rl_totals(s, &p, &c, NULL);
    assert_int_equal(p, 11);
    assert_int_equal(c, 22);
    /* a tpm set later starts full: tokens charged with no limit are not owed */
    assert_true(admit(s, 0, 5, 0, T0, &v));
    assert_int_equal(v.remaining_tokens, 5);
}

static void test_inflight(void **state)
{
    (void)state;
    struct rl_state *s = rl_state_for("inflight");
    struct rl_limits lim = {.max_inflight = 2};
    struct rl_verdict v;
    unsigned n;

    assert_true(rl_admit(s, &lim, true, T0, &v));
    assert_true(rl_admit(s, &lim, true, T0, &v));
    assert_false(rl_admit(s, &lim, true, T0, &v));
    assert_string_equal(v.which, "concurrent requests");
    assert_int_equal(v.retry_after_s, 1);
    /* a route that does not hold a place is not held back */
    assert_true(rl_admit(s, &lim, false, T0, &v));
    rl_totals(s, NULL, NULL, &n);
    assert_int_equal(n, 2);

    rl_release(s);
    assert_true(rl_admit(s, &lim, true, T0, &v));
    assert_false(rl_admit(s, &lim, true, T0, &v));
    rl_release(s);
    rl_release(s);
    rl_totals(s, NULL, NULL, &n);
    assert_int_equal(n, 0);
    /* a stray release does not wrap around */
    rl_release(s);
    rl_release(NULL);
    rl_totals(s, NULL, NULL, &n);
    assert_int_equal(n, 0);
    assert_true(rl_admit(s, &lim, true, T0, &v));
    assert_true(rl_admit(s, &lim, true, T0, &v));
    assert_false(rl_admit(s, &lim, true, T0, &v));
}

static void test_nothing_taken_on_denial(void **state)
{
    (void)state;
    struct rl_state *s = rl_state_for("denial");
    struct rl_limits lim = {.rpm = 2, .tpm = 100, .max_inflight = 1};
    struct rl_verdict v;
    unsigned n;

    /* denied on tokens: neither a request unit nor a place is taken */
    rl_charge(s, &lim, 0, 150, T0);
    for (int i = 0; i < 5; i++) {
        assert_false(rl_admit(s, &lim, true, T0, &v));
        assert_string_equal(v.which, "tokens");
        assert_int_equal(v.remaining_requests, 2);
        assert_int_equal(v.reset_requests_ms, 0);
    }
    rl_totals(s, NULL, NULL, &n);
    assert_int_equal(n, 0);

    /* -50 at 100 per minute: above 0 after 30.001 s */
    assert_true(rl_admit(s, &lim, true, T0 + 30001, &v));
    assert_int_equal(v.remaining_requests, 1);
    /* denied on the in-flight place: no request unit taken */
    for (int i = 0; i < 5; i++) {
        assert_false(rl_admit(s, &lim, true, T0 + 30001, &v));
        assert_string_equal(v.which, "concurrent requests");
        assert_int_equal(v.remaining_requests, 1);
    }
    rl_release(s);
    assert_true(rl_admit(s, &lim, true, T0 + 30001, &v));
    assert_int_equal(v.remaining_requests, 0);
    rl_release(s);
    /* denied on requests: no place taken */
    assert_false(rl_admit(s, &lim, true, T0 + 30001, &v));
    assert_string_equal(v.which, "requests");
    assert_int_equal(v.retry_after_s, 30);
    rl_totals(s, NULL, NULL, &n);
    assert_int_equal(n, 0);
}

static void test_longest_wait_reported(void **state)
{
    (void)state;
    struct rl_state *s = rl_state_for("both");
    struct rl_limits lim = {.rpm = 1, .tpm = 60};
    struct rl_verdict v;
    assert_true(rl_admit(s, &lim, false, T0, &v));
    rl_charge(s, &lim, 0, 90, T0);
    /* requests are back in 60 s, tokens above 0 in 30.001 s: a retry must wait 60 */
    assert_false(rl_admit(s, &lim, false, T0, &v));
    assert_string_equal(v.which, "requests");
    assert_int_equal(v.retry_after_s, 60);
    rl_charge(s, &lim, 0, 200, T0);
    assert_false(rl_admit(s, &lim, false, T0, &v));
    assert_string_equal(v.which, "tokens");
    assert_int_equal(v.retry_after_s, 61);
}

static void test_limits_change(void **state)
{
    (void)state;
    struct rl_state *s = rl_state_for("reload");
    struct rl_verdict v;

    for (int i = 0; i < 10; i++)
        assert_true(admit(s, 10, 0, 0, T0, &v));
    assert_false(admit(s, 10, 0, 0, T0, &v));
    /* raised: the level is kept (empty), the new rate applies from now */
    assert_false(admit(s, 60, 0, 0, T0, &v));
    assert_int_equal(v.limit_requests, 60);
    assert_int_equal(v.retry_after_s, 1);
    assert_true(admit(s, 60, 0, 0, T0 + 1000, &v));
    assert_int_equal(v.remaining_requests, 0);

    /* lowered below the level: clamped to the new capacity */
    assert_true(admit(s, 60, 0, 0, T0 + 3600000, &v));
    assert_int_equal(v.remaining_requests, 59);
    assert_true(admit(s, 2, 0, 0, T0 + 3600000, &v));
    assert_int_equal(v.remaining_requests, 1);
    assert_int_equal(v.reset_requests_ms, 30000);

    /* removed, then set again: starts full */
    for (int i = 0; i < 100; i++)
        assert_true(admit(s, 0, 0, 0, T0 + 3600000, &v));
    assert_true(admit(s, 5, 0, 0, T0 + 3600000, &v));
    assert_int_equal(v.remaining_requests, 4);

    /* tokens: a lower tpm clamps the debt to the new floor too */
    struct rl_state *t = rl_state_for("reload-tpm");
    charge(t, 1000, 0, 3000, T0);
    assert_false(admit(t, 0, 1000, 0, T0, &v));
    assert_int_equal(v.reset_tokens_ms, 120000);
    assert_false(admit(t, 0, 100, 0, T0, &v));
    assert_int_equal(v.limit_tokens, 100);
    assert_int_equal(v.retry_after_s, 61); /* -100 at 100 per minute */
    assert_int_equal(v.reset_tokens_ms, 120000);
    /* and a higher capacity above the level: the level stays */
    assert_false(admit(t, 0, 6000, 0, T0, &v));
    assert_int_equal(v.retry_after_s, 2); /* -100 at 100 per second */
    assert_int_equal(v.reset_tokens_ms, 61000);
}

static void test_clock_backwards(void **state)
{
    (void)state;
    /* threads read the clock before taking the lock, so a slightly older now
     * may arrive after a newer one: nothing is refilled twice */
    struct rl_state *s = rl_state_for("clock");
    struct rl_verdict v;
    assert_true(admit(s, 1, 0, 0, T0 + 1000, &v));
    assert_false(admit(s, 1, 0, 0, T0, &v));
    assert_false(admit(s, 1, 0, 0, T0 + 60999, &v));
    assert_true(admit(s, 1, 0, 0, T0 + 61000, &v));
}

struct hammer {
    struct rl_state *s;
    int admitted;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    struct rl_limits lim = {.rpm = 500};
    struct rl_verdict v;
    for (int i = 0; i < 2000; i++) {
        /* look the state up each time, as every request does */
        struct rl_state *s = rl_state_for("hammered");
        if (s != h->s)
            return NULL; /* admitted stays short: the test fails */
        if (rl_admit(s, &lim, false, T0, &v))
            h->admitted++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct hammer h[4];
    pthread_t t[4];
    struct rl_state *s = rl_state_for("hammered");
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){.s = s};
        assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        total += h[i].admitted;
    }
    assert_int_equal(total, 500);
}

/* Many keys created, admitted, released and charged from several threads at
 * once (for ThreadSanitizer): the in-flight limit holds and no count is lost. */
static atomic_int busy, busy_max;

static void *mixed_run(void *arg)
{
    int id = *(int *)arg;
    struct rl_limits lim = {.tpm = 1000000, .max_inflight = 3};
    struct rl_verdict v;
    char key[24];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "mixed%d", (i * 7 + id) % 200);
        struct rl_state *own = rl_state_for(key);
        struct rl_state *s = rl_state_for("mixed-shared");
        if (!own || !s)
            return NULL;
        rl_charge(own, NULL, 1, 0, T0);
        if (!rl_admit(s, &lim, true, T0 + i, &v))
            continue;
        int now = atomic_fetch_add(&busy, 1) + 1;
        int max = atomic_load(&busy_max);
        while (now > max && !atomic_compare_exchange_weak(&busy_max, &max, now))
            ;
        atomic_fetch_sub(&busy, 1);
        rl_release(s);
        rl_charge(s, &lim, 1, 2, T0 + i);
    }
    return NULL;
}

static void test_threads_mixed(void **state)
{
    (void)state;
    pthread_t t[4];
    int ids[4];
    atomic_store(&busy_max, 0);
    for (int i = 0; i < 4; i++) {
        ids[i] = i;
        assert_int_equal(pthread_create(&t[i], NULL, mixed_run, &ids[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_true(atomic_load(&busy_max) <= 3);
    uint64_t p, c, total = 0;
    unsigned n;
    rl_totals(rl_state_for("mixed-shared"), &p, &c, &n);
    assert_int_equal(n, 0);
    assert_int_equal(p * 2, c);
    char key[24];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "mixed%d", i);
        rl_totals(rl_state_for(key), &total, NULL, NULL);
        assert_int_equal(total, 60); /* 4 threads x 3000 / 200 keys */
    }
}

struct header {
    char name[64], value[64];
};

struct headers {
    struct header h[8];
    int n;
};

static void collect(void *ud, const char *name, const char *value)
{
    struct headers *hs = ud;
    if (hs->n == 8)
        fail_msg("too many headers");
    snprintf(hs->h[hs->n].name, sizeof hs->h[0].name, "%s", name);
    snprintf(hs->h[hs->n].value, sizeof hs->h[0].value, "%s", value);
    hs->n++;
}

/* rl_peek: the headroom as admission would see it, taking nothing. */
static void test_peek(void **state)
{
    (void)state;
    struct rl_limits lim = {.rpm = 6, .tpm = 600, .max_inflight = 2};
    struct rl_verdict v, a;
    unsigned inflight = 99;
    /* a key never seen: full buckets, no state made */
    assert_false(rl_peek("peek-new", &lim, T0, &v, &inflight));
    assert_int_equal(v.remaining_requests, 6);
    assert_int_equal(v.remaining_tokens, 600);
    assert_int_equal(inflight, 0);
    assert_false(rl_peek("peek-new", &lim, T0, &v, &inflight));
    struct rl_state *s = rl_state_for("peek-new");
    assert_true(rl_admit(s, &lim, true, T0, &a));
    assert_true(rl_admit(s, &lim, true, T0, &a));
    rl_charge(s, &lim, 100, 50, T0);
    for (int i = 0; i < 3; i++) { /* peeking takes nothing */
        assert_true(rl_peek("peek-new", &lim, T0, &v, &inflight));
        assert_int_equal(v.remaining_requests, 4);
        assert_int_equal(v.remaining_tokens, 450);
        assert_int_equal(inflight, 2);
    }
    /* 10 s later one request came back (6 a minute) */
    assert_true(rl_peek("peek-new", &lim, T0 + 10000, &v, &inflight));
    assert_int_equal(v.remaining_requests, 5);
    assert_true(rl_admit(s, &lim, false, T0, &a));
    assert_int_equal(a.remaining_requests, 3); /* the peek did not move the bucket */
}

static void test_headers(void **state)
{
    (void)state;
    struct rl_state *s = rl_state_for("headers");
    struct rl_verdict v;
    struct headers hs = {0};

    assert_true(admit(s, 3, 600, 0, T0, &v));
    charge(s, 600, 100, 50, T0);
    assert_true(admit(s, 3, 600, 0, T0, &v));
    rl_headers(&v, collect, &hs);
    assert_int_equal(hs.n, 6);
    static const char *const want[6][2] = {
        {"x-ratelimit-limit-requests", "3"},     {"x-ratelimit-remaining-requests", "1"},
        {"x-ratelimit-reset-requests", "40s"},   {"x-ratelimit-limit-tokens", "600"},
        {"x-ratelimit-remaining-tokens", "450"}, {"x-ratelimit-reset-tokens", "15s"},
    };
    for (int i = 0; i < 6; i++) {
        assert_string_equal(hs.h[i].name, want[i][0]);
        assert_string_equal(hs.h[i].value, want[i][1]);
    }

    /* only the limits that are set */
    hs.n = 0;
    assert_true(admit(s, 0, 600, 0, T0, &v));
    rl_headers(&v, collect, &hs);
    assert_int_equal(hs.n, 3);
    assert_string_equal(hs.h[0].name, "x-ratelimit-limit-tokens");
    hs.n = 0;
    assert_true(admit(s, 0, 0, 0, T0, &v));
    rl_headers(&v, collect, &hs);
    assert_int_equal(hs.n, 0);

    s = rl_state_for("headers2");
    for (int i = 0; i < 3; i++)
        assert_true(admit(s, 3, 0, 0, T0, &v));
    hs.n = 0;
    rl_headers(&v, collect, &hs);
    assert_int_equal(hs.n, 3);
    assert_string_equal(hs.h[1].value, "0");
    assert_string_equal(hs.h[2].name, "x-ratelimit-reset-requests");
    assert_string_equal(hs.h[2].value, "1m0s");
    /* a refusal carries them too */
    hs.n = 0;
    assert_false(admit(s, 3, 0, 0, T0 + 1250, &v));
    rl_headers(&v, collect, &hs);
    assert_int_equal(hs.n, 3);
    assert_string_equal(hs.h[1].value, "0");
    assert_string_equal(hs.h[2].value, "58.75s");
}

static void test_duration(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "0s"},           {1, "1ms"},
        {20, "20ms"},        {999, "999ms"},
        {1000, "1s"},        {1001, "1.001s"},
        {1010, "1.01s"},     {1500, "1.5s"},
        {59999, "59.999s"},  {60000, "1m0s"},
        {61250, "1m1.25s"},  {90500, "1m30.5s"},
        {360000, "6m0s"},    {3600000, "1h0m0s"},
        {3725000, "1h2m5s"}, {3600001, "1h0m0.001s"},
        {-1500, "-1.5s"},    {86400000, "24h0m0s"},
        {-20, "-20ms"},
    };
    char out[48];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_ptr_equal(rl_duration(cases[i].ms, out, sizeof out), out);
        assert_string_equal(out, cases[i].want);
    }
    assert_string_equal(rl_duration(INT64_MIN, out, sizeof out), "-2562047788015h12m55.808s");
    assert_string_equal(rl_duration(INT64_MAX, out, sizeof out), "2562047788015h12m55.807s");
    /* cut to fit, always terminated */
    char small[4];
    assert_string_equal(rl_duration(61250, small, sizeof small), "1m1");
    assert_ptr_equal(rl_duration(1, small, 0), small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_for, reset, reset),
        cmocka_unit_test_setup_teardown(test_rpm, reset, reset),
        cmocka_unit_test_setup_teardown(test_rpm_fractional_refill, reset, reset),
        cmocka_unit_test_setup_teardown(test_no_limits, reset, reset),
        cmocka_unit_test_setup_teardown(test_tpm, reset, reset),
        cmocka_unit_test_setup_teardown(test_tpm_floor, reset, reset),
        cmocka_unit_test_setup_teardown(test_charge_without_tpm, reset, reset),
        cmocka_unit_test_setup_teardown(test_inflight, reset, reset),
        cmocka_unit_test_setup_teardown(test_nothing_taken_on_denial, reset, reset),
        cmocka_unit_test_setup_teardown(test_longest_wait_reported, reset, reset),
        cmocka_unit_test_setup_teardown(test_limits_change, reset, reset),
        cmocka_unit_test_setup_teardown(test_clock_backwards, reset, reset),
        cmocka_unit_test_setup_teardown(test_threads, reset, reset),
        cmocka_unit_test_setup_teardown(test_threads_mixed, reset, reset),
        cmocka_unit_test_setup_teardown(test_peek, reset, reset),
        cmocka_unit_test_setup_teardown(test_headers, reset, reset),
        cmocka_unit_test_setup_teardown(test_duration, reset, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
