/* Unit tests for metrics.c: requests counted on two workers (threads of
 * their own) are summed exactly, by route, model and status; a model that
 * did not resolve is counted as ""; tokens by model and key; failovers by
 * the backend that failed; histogram counts equal request counts; the
 * ring of recent errors; in flight is never negative while a reader sums
 * under way (run under ThreadSanitizer in the TSan build). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "handler.h"
#include "keys.h"
#include "metrics.h"
#include "request.h"
#include "routes.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PER_WORKER 2000

static struct cfg_backend backends[2] = {{.name = "A"}, {.name = "B"}};
static struct cfg cfg = {.backends = backends, .nbackends = 2};
static struct key alice = {.id = "aaaaaaaaaaaa", .name = "alice"};
static struct http_shared shared;
static struct gateway gw = {.app = &shared, .nworkers = 2};
static struct worker workers[2];
static atomic_bool stop;

/* One finished request on w, as the completion callback sees it. */
static void account(struct worker *w, const char *path, const char *model, bool known, int status,
                    long prompt, long completion, unsigned failovers)
{
    struct request r = {0};
    r.w = w;
    r.cfg = &cfg;
    r.route = routes_match(path);
    r.model = (char *)model;
    r.model_known = known;
    r.status = status;
    r.key = prompt || completion ? &alice : NULL;
    r.prompt_tokens = prompt;
    r.completion_tokens = completion;
    r.t_start_us = now_us() - 1500; /* 1.5 ms ago */
    r.t_start = r.t_start_us / 1000;
    if (status == 200) {
        r.t_first = r.t_start + 1; /* 1 ms: the first bucket (10 ms) */
    }
    r.attempts = failovers + 1;
    r.failovers = failovers;
    for (unsigned i = 0; i < r.attempts; i++)
        r.tried[i] = (int)i;
    if (status >= 400)
        apierr_set(&r.err, status, APIERR_INVALID, "x", NULL, "error %d on %s", status, path);
    metrics_started(w);
    metrics_account(&r, MHD_REQUEST_TERMINATED_COMPLETED_OK);
}

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_WORKER; i++) {
        account(w, "/v1/chat/completions", "llama3.2", true, 200, 7, 3, i % 100 == 0);
        account(w, "/v1/chat/completions", "random-name", false, 404, 0, 0, 0);
    }
    return NULL;
}

static uint64_t requests_of(const struct metrics_sums *s, const char *route, const char *model,
                            const char *status)
{
    const char *l[] = {route, model, status};
    struct ctab_entry *e = ctab_get((struct ctab *)&s->requests, l, false);
    return e ? ctab_value(e, MV_REQUESTS) : 0;
}

static void test_two_workers_summed(void **state)
{
    (void)state;
    shared.metrics = metrics_new(2, 0);
    assert_non_null(shared.metrics);
    for (int i = 0; i < 2; i++) {
        workers[i].id = i;
        workers[i].gw = &gw;
    }
    atomic_store(&stop, false);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker_thread, &workers[i]), 0);
    /* sums taken while the workers count: never in flight below 0, never a
     * request finished before its counts are visible */
    for (int k = 0; k < 50; k++) {
        struct metrics_sums s;
        assert_int_equal(metrics_sum(shared.metrics, &s), 0);
        assert_true(s.started >= s.finished);
        uint64_t counted = requests_of(&s, "/v1/chat/completions", "llama3.2", "200") +
                           requests_of(&s, "/v1/chat/completions", "", "404");
        assert_true(counted >= s.finished);
        metrics_sums_free(&s);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);

    struct metrics_sums s;
    assert_int_equal(metrics_sum(shared.metrics, &s), 0);
    assert_int_equal(s.started, 4 * PER_WORKER);
    assert_int_equal(s.finished, 4 * PER_WORKER);
    assert_int_equal(requests_of(&s, "/v1/chat/completions", "llama3.2", "200"), 2 * PER_WORKER);
    assert_int_equal(requests_of(&s, "/v1/chat/completions", "", "404"), 2 * PER_WORKER);
    assert_int_equal(requests_of(&s, "/v1/chat/completions", "random-name", "404"), 0);
    /* tokens: model, key name, key id */
    const char *ul[] = {"llama3.2", "alice", "aaaaaaaaaaaa"};
    struct ctab_entry *u = ctab_get(&s.usage, ul, false);
    assert_non_null(u);
    assert_int_equal(ctab_value(u, MV_USE_REQUESTS), 2 * PER_WORKER);
    assert_int_equal(ctab_value(u, MV_USE_PROMPT), 7 * 2 * PER_WORKER);
    assert_int_equal(ctab_value(u, MV_USE_COMPLETION), 3 * 2 * PER_WORKER);
    assert_int_equal(s.prompt_tokens, 7 * 2 * PER_WORKER);
    /* failovers: from A (tried[0]) on every hundredth request */
    const char *fa[] = {"A"}, *fb[] = {"B"};
    struct ctab_entry *f = ctab_get(&s.failovers, fa, false);
    assert_non_null(f);
    assert_int_equal(ctab_value(f, 0), 2 * PER_WORKER / 100);
    assert_null(ctab_get(&s.failovers, fb, false));
    /* histograms: one duration per request, one first token per 200 */
    size_t chat = routes_metric_index(routes_match("/v1/chat/completions"));
    uint64_t dur = 0, ttft = 0;
    for (size_t i = 0; i <= METRICS_DURATION_BUCKETS; i++)
        dur += s.duration[chat * (METRICS_DURATION_BUCKETS + 1) + i];
    for (size_t i = 0; i <= METRICS_TTFT_BUCKETS; i++)
        ttft += s.ttft[chat * (METRICS_TTFT_BUCKETS + 1) + i];
    assert_int_equal(dur, 4 * PER_WORKER);
    assert_int_equal(ttft, 2 * PER_WORKER);
    /* a first token 1 ms in: the first bucket (10 ms); durations of 1.5 ms
     * and whatever the scheduler added: all below the 10 s bound (index 10) */
    assert_int_equal(s.ttft[chat * (METRICS_TTFT_BUCKETS + 1)], 2 * PER_WORKER);
    uint64_t upto10s = 0;
    for (size_t i = 0; i <= 10; i++)
        upto10s += s.duration[chat * (METRICS_DURATION_BUCKETS + 1) + i];
    assert_int_equal(metrics_duration_bounds[10], 10000000);
    assert_int_equal(upto10s, 4 * PER_WORKER);
    assert_true(s.duration_sum[chat] >= 4 * PER_WORKER * 1500ULL);
    metrics_sums_free(&s);

    /* recent errors: the newest of each worker, newest first */
    struct metrics_error e[8];
    size_t n = metrics_recent_errors(shared.metrics, e, 8);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(e[i].status, 404);
        assert_int_equal(e[i].route, chat);
        assert_string_equal(e[i].message, "error 404 on /v1/chat/completions");
        if (i)
            assert_true(e[i].ts_ms <= e[i - 1].ts_ms);
    }
    metrics_free(shared.metrics);
    shared.metrics = NULL;
}

/* The request's flags become the process-wide counters. */
static void test_flags_counted(void **state)
{
    (void)state;
    shared.metrics = metrics_new(1, 0);
    workers[0].id = 0;
    workers[0].gw = &gw;
    const struct {
        bool auth_failed, guard_refused, guard_blocked, cancelled;
        int status;
    } cases[] = {
        {true, false, false, false, 401},  {true, false, true, false, 401},
        {false, true, false, false, 429},  {false, false, false, true, 200},
        {false, false, false, false, 200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct request r = {0};
        r.w = &workers[0];
        r.cfg = &cfg;
        r.route = routes_match("/api/chat");
        r.status = cases[i].status;
        r.auth_failed = cases[i].auth_failed;
        r.guard_refused = cases[i].guard_refused;
        r.guard_blocked = cases[i].guard_blocked;
        r.cancelled_upstream = cases[i].cancelled;
        r.t_start_us = now_us();
        metrics_started(&workers[0]);
        metrics_account(&r, MHD_REQUEST_TERMINATED_COMPLETED_OK);
    }
    struct metrics_sums s;
    assert_int_equal(metrics_sum(shared.metrics, &s), 0);
    assert_int_equal(s.auth_failures, 2);
    assert_int_equal(s.guard_blocks, 1);
    assert_int_equal(s.guard_refusals, 1);
    assert_int_equal(s.upstream_cancels, 1);
    assert_int_equal(requests_of(&s, "/api/chat", "", "401"), 2);
    assert_int_equal(requests_of(&s, "/api/chat", "", "429"), 1);
    assert_int_equal(s.started - s.finished, 0);
    metrics_sums_free(&s);
    /* errors: the three of 400 and up, newest first, no message without an error */
    struct metrics_error e[8];
    assert_int_equal(metrics_recent_errors(shared.metrics, e, 8), 3);
    assert_int_equal(e[0].status, 429);
    assert_string_equal(e[0].message, "");
    metrics_free(shared.metrics);
    shared.metrics = NULL;
}

static void test_labels_fold_when_full(void **state)
{
    (void)state;
    shared.metrics = metrics_new(1, 0);
    workers[0].id = 0;
    workers[0].gw = &gw;
    char name[32];
    /* more distinct (known) models than a worker keeps: the rest fold into "" */
    for (int i = 0; i < METRICS_SERIES; i++) {
        snprintf(name, sizeof name, "m%d", i);
        account(&workers[0], "/v1/embeddings", name, true, 200, 0, 0, 0);
    }
    struct metrics_sums s;
    assert_int_equal(metrics_sum(shared.metrics, &s), 0);
    assert_true(ctab_published(&s.requests) <= METRICS_FOLD_AT + 1);
    uint64_t total = 0;
    for (size_t i = 0; i < ctab_published(&s.requests); i++)
        total += ctab_value(ctab_at(&s.requests, i), MV_REQUESTS);
    assert_int_equal(total, METRICS_SERIES); /* every request still counted */
    assert_int_equal(requests_of(&s, "/v1/embeddings", "", "200"),
                     METRICS_SERIES - METRICS_FOLD_AT);
    metrics_sums_free(&s);
    metrics_free(shared.metrics);
    shared.metrics = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_workers_summed),
        cmocka_unit_test(test_flags_counted),
        cmocka_unit_test(test_labels_fold_when_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
