/* Unit tests for choice.c: the candidates (up, has the model, allowed), the
 * preference for a loaded model, least busy relative to weight and its ties,
 * a cold load started once, spilling to a cold backend, queueing, the
 * outcomes without a candidate, and a randomized check of every rule against
 * made-up states. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "choice.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define NB(a) (sizeof(a) / sizeof((a)[0]))
#define NOT_SET ((size_t)-1)

/* A backend that is up, lists the model, is allowed and has it loaded, idle,
 * with a limit of 2 in flight and 4 queued, weight 1. */
static struct choice_backend ready(void)
{
    return (struct choice_backend){.up = true,
                                   .has_model = true,
                                   .allowed = true,
                                   .loaded = true,
                                   .max_inflight = 2,
                                   .weight = 1,
                                   .max_queue = 4};
}

/* The same, without the model loaded. */
static struct choice_backend cold(void)
{
    struct choice_backend b = ready();
    b.loaded = false;
    return b;
}

/* choice_pick, checking that *idx is set exactly when there is one. */
static enum choice_outcome choose(const struct choice_backend *v, size_t n, size_t *idx)
{
    *idx = NOT_SET;
    enum choice_outcome o = choice_pick(v, n, idx);
    if (o == CHOICE_SEND || o == CHOICE_QUEUE)
        assert_true(*idx < n);
    else
        assert_int_equal(*idx, NOT_SET);
    return o;
}

/* The outcome must be o on backend want. */
static void expect(const struct choice_backend *v, size_t n, enum choice_outcome o, size_t want)
{
    size_t idx;
    enum choice_outcome got = choose(v, n, &idx);
    if (got != o)
        fail_msg("outcome %s, expected %s", choice_outcome_name(got), choice_outcome_name(o));
    if (o == CHOICE_SEND || o == CHOICE_QUEUE)
        assert_int_equal(idx, want);
}

static void expect_none(const struct choice_backend *v, size_t n, enum choice_outcome o)
{
    expect(v, n, o, NOT_SET);
}

static void test_single_backend(void **state)
{
    (void)state;
    struct choice_backend v[1] = {ready()};
    expect(v, 1, CHOICE_SEND, 0);
    v[0].inflight = 1;
    expect(v, 1, CHOICE_SEND, 0);
    /* full: queue, until the queue is full too */
    v[0].inflight = 2;
    expect(v, 1, CHOICE_QUEUE, 0);
    v[0].queued = 3;
    expect(v, 1, CHOICE_QUEUE, 0);
    v[0].queued = 4;
    expect_none(v, 1, CHOICE_FULL);
    /* over the limit (lowered by a reload) is full as well */
    v[0].inflight = 7;
    v[0].queued = 9;
    expect_none(v, 1, CHOICE_FULL);
    v[0].queued = 0;
    expect(v, 1, CHOICE_QUEUE, 0);
    /* no queue at all */
    v[0].max_queue = 0;
    expect_none(v, 1, CHOICE_FULL);
    v[0].inflight = 1;
    expect(v, 1, CHOICE_SEND, 0);
    /* a cold backend alone gets the request: it is the only candidate */
    v[0] = cold();
    expect(v, 1, CHOICE_SEND, 0);
    v[0].inflight = 2;
    expect(v, 1, CHOICE_QUEUE, 0);
}

static void test_candidates(void **state)
{
    (void)state;
    /* the least busy backend is skipped while it is not a candidate */
    struct choice_backend v[3] = {ready(), ready(), ready()};
    v[0].inflight = 1;
    v[2].inflight = 1;
    expect(v, 3, CHOICE_SEND, 1);
    v[1].up = false;
    expect(v, 3, CHOICE_SEND, 0);
    v[1].up = true;
    v[1].has_model = false;
    expect(v, 3, CHOICE_SEND, 0);
    v[1].has_model = true;
    v[1].allowed = false;
    expect(v, 3, CHOICE_SEND, 0);
    /* nor queued on: the others are full and so is the queue of 0 */
    v[0].inflight = v[2].inflight = 2;
    v[0].queued = 4;
    v[1].inflight = 0;
    expect(v, 3, CHOICE_QUEUE, 2);
    v[2].queued = 4;
    expect_none(v, 3, CHOICE_FULL);
    v[1].allowed = true;
    expect(v, 3, CHOICE_SEND, 1);
    /* a loaded non-candidate does not keep a cold candidate from a cold load */
    struct choice_backend w[2] = {ready(), cold()};
    w[0].allowed = false;
    expect(w, 2, CHOICE_SEND, 1);
    w[0].allowed = true;
    w[0].up = false;
    expect(w, 2, CHOICE_SEND, 1);
    w[0].up = true;
    w[0].has_model = false;
    expect(w, 2, CHOICE_SEND, 1);
    w[0].has_model = true;
    expect(w, 2, CHOICE_SEND, 0);
}

static void test_loaded_preferred(void **state)
{
    (void)state;
    /* a busy loaded backend beats an idle cold one, as long as it has a slot */
    struct choice_backend v[3] = {cold(), ready(), cold()};
    v[0].max_inflight = v[1].max_inflight = v[2].max_inflight = 8;
    v[1].inflight = 7;
    v[1].queued = 3;
    expect(v, 3, CHOICE_SEND, 1);
    /* also against weight */
    v[0].weight = 100;
    expect(v, 3, CHOICE_SEND, 1);
    /* and against a cold backend without a limit */
    v[2].max_inflight = 0;
    expect(v, 3, CHOICE_SEND, 1);
    /* the least busy of the loaded ones */
    v[0].loaded = true;
    v[0].max_inflight = 1000;
    v[0].inflight = 800; /* 800/100 > 7/1 */
    expect(v, 3, CHOICE_SEND, 1);
    v[0].inflight = 600;
    expect(v, 3, CHOICE_SEND, 0);
}

static void test_weight(void **state)
{
    (void)state;
    /* weight 3 with 2 in flight (2/3) beats weight 1 with 1 (1/1) */
    struct choice_backend v[2] = {ready(), ready()};
    v[0].max_inflight = v[1].max_inflight = 8;
    v[0].inflight = 1;
    v[1].weight = 3;
    v[1].inflight = 2;
    expect(v, 2, CHOICE_SEND, 1);
    /* weight 3 with 4 (4/3) loses to weight 1 with 1 */
    v[1].inflight = 4;
    expect(v, 2, CHOICE_SEND, 0);
    /* 3/3 against 1/1: a tie, broken by the index */
    v[1].inflight = 3;
    expect(v, 2, CHOICE_SEND, 0);
    /* and by fewer queued */
    v[0].queued = 1;
    expect(v, 2, CHOICE_SEND, 1);

    /* a weighted share: 12 requests on weights 1, 2 and 3 with no limit go
     * 2, 4 and 6 */
    struct choice_backend w[3] = {ready(), ready(), ready()};
    for (int i = 0; i < 3; i++) {
        w[i].max_inflight = 0;
        w[i].weight = (unsigned)i + 1;
    }
    for (int r = 0; r < 12; r++) {
        size_t idx;
        assert_int_equal(choose(w, 3, &idx), CHOICE_SEND);
        w[idx].inflight++;
    }
    assert_int_equal(w[0].inflight, 2);
    assert_int_equal(w[1].inflight, 4);
    assert_int_equal(w[2].inflight, 6);
}

static void test_weight_zero(void **state)
{
    (void)state;
    /* weight 0 is weight 1: 1/0 is not "infinitely busy" nor 0/0 a tie with
     * everything */
    struct choice_backend v[2] = {ready(), ready()};
    v[0].max_inflight = v[1].max_inflight = 8;
    v[0].weight = 0;
    v[0].inflight = 1;
    v[1].weight = 2;
    v[1].inflight = 1;
    expect(v, 2, CHOICE_SEND, 1);
    v[1].inflight = 3;
    expect(v, 2, CHOICE_SEND, 0);
    v[1].inflight = 2; /* 1/1 against 2/2 */
    expect(v, 2, CHOICE_SEND, 0);
    v[0].inflight = 2; /* 2/1 against 2/2 */
    expect(v, 2, CHOICE_SEND, 1);
    v[1].weight = 0;
    expect(v, 2, CHOICE_SEND, 0);

    /* in the queue order too: 2 queued on weight 0 against 3 on weight 2 */
    struct choice_backend w[2] = {ready(), ready()};
    w[0].inflight = w[1].inflight = 2;
    w[0].max_queue = w[1].max_queue = 8;
    w[0].weight = 0;
    w[0].queued = 2;
    w[1].weight = 2;
    w[1].queued = 3;
    expect(w, 2, CHOICE_QUEUE, 1);
    w[1].queued = 5;
    expect(w, 2, CHOICE_QUEUE, 0);

    struct choice_backend a = ready(), b = ready();
    a.weight = 0;
    a.inflight = 1;
    b.weight = 1;
    b.inflight = 1;
    assert_false(choice_less_busy(&a, &b));
    assert_false(choice_less_busy(&b, &a));
    b.inflight = 2;
    assert_true(choice_less_busy(&a, &b));
    assert_false(choice_less_busy(&b, &a));
}

static void test_ties(void **state)
{
    (void)state;
    struct choice_backend v[4] = {ready(), ready(), ready(), ready()};
    for (int i = 0; i < 4; i++) {
        v[i].inflight = 1;
        v[i].max_inflight = 4;
    }
    /* all equal: the lowest index */
    expect(v, 4, CHOICE_SEND, 0);
    /* equal in flight: fewer queued */
    v[0].queued = 2;
    v[1].queued = 1;
    v[2].queued = 1;
    v[3].queued = 3;
    expect(v, 4, CHOICE_SEND, 1);
    /* queued only breaks ties: fewer in flight wins over a longer queue */
    v[3].inflight = 0;
    expect(v, 4, CHOICE_SEND, 3);
    /* the lower index only breaks ties of both */
    v[3].inflight = 1;
    v[1].queued = 2;
    expect(v, 4, CHOICE_SEND, 2);
    v[2].allowed = false;
    expect(v, 4, CHOICE_SEND, 0);

    /* choice_less_busy is a strict order */
    struct choice_backend a = ready(), b = ready();
    assert_false(choice_less_busy(&a, &a));
    assert_false(choice_less_busy(&a, &b));
    assert_false(choice_less_busy(&b, &a));
    b.queued = 1;
    assert_true(choice_less_busy(&a, &b));
    assert_false(choice_less_busy(&b, &a));
    a.inflight = 2;
    a.weight = 3;
    b.inflight = 1;
    b.weight = 1;
    b.queued = 0;
    a.queued = 5;
    assert_true(choice_less_busy(&a, &b));
    assert_false(choice_less_busy(&b, &a));
    /* large values do not overflow */
    a.inflight = 4000000000u;
    a.weight = 4000000000u;
    b.inflight = 2;
    b.weight = 1;
    assert_true(choice_less_busy(&a, &b));
    assert_false(choice_less_busy(&b, &a));
}

static void test_cold_load_once(void **state)
{
    (void)state;
    /* the model is loading on 1, loaded nowhere: everything goes to 1, though
     * 0 and 2 are idle */
    struct choice_backend v[3] = {cold(), cold(), cold()};
    v[1].loading = true;
    v[1].inflight = 1;
    expect(v, 3, CHOICE_SEND, 1);
    /* when full, queued there */
    v[1].inflight = 2;
    expect(v, 3, CHOICE_QUEUE, 1);
    v[1].queued = 3;
    expect(v, 3, CHOICE_QUEUE, 1);
    /* only with its queue full too does another backend get a cold load */
    v[1].queued = 4;
    expect(v, 3, CHOICE_SEND, 0);
    v[0].inflight = 1;
    expect(v, 3, CHOICE_SEND, 2);
    /* and when those are full, queued on them */
    v[0].inflight = v[2].inflight = 2;
    v[2].queued = 1;
    expect(v, 3, CHOICE_QUEUE, 0);
    v[0].queued = v[2].queued = 4;
    expect_none(v, 3, CHOICE_FULL);

    /* the loading backend is preferred even when it is busier by weight */
    struct choice_backend w[2] = {cold(), cold()};
    w[0].weight = 10;
    w[0].max_inflight = 0;
    w[1].loading = true;
    w[1].max_inflight = 0;
    w[1].inflight = 30;
    expect(w, 2, CHOICE_SEND, 1);
    /* two loading: the less busy of them */
    w[0].loading = true;
    expect(w, 2, CHOICE_SEND, 0);

    /* a loading backend that is not a candidate does not hold requests back */
    struct choice_backend x[2] = {cold(), cold()};
    x[0].loading = true;
    x[0].inflight = 2;
    x[0].allowed = false; /* tried already */
    x[1].inflight = 1;
    expect(x, 2, CHOICE_SEND, 1);
    x[0].allowed = true;
    expect(x, 2, CHOICE_QUEUE, 0);
    x[0].up = false;
    expect(x, 2, CHOICE_SEND, 1);

    /* once the model is loaded somewhere, loading is not a preference: the
     * loaded backend, then any free slot */
    struct choice_backend y[3] = {cold(), cold(), ready()};
    y[1].loading = true;
    y[2].inflight = 1;
    expect(y, 3, CHOICE_SEND, 2);
    y[2].inflight = 2;
    expect(y, 3, CHOICE_SEND, 0);
    y[1].inflight = 1;
    expect(y, 3, CHOICE_SEND, 0);
    y[0].inflight = 2;
    expect(y, 3, CHOICE_SEND, 1);
    y[1].inflight = 2;
    y[0].queued = y[1].queued = 0;
    /* all full: the queue of the loaded one, even when longer */
    y[2].queued = 3;
    expect(y, 3, CHOICE_QUEUE, 2);
    /* the loaded one's queue full: shortest of the others */
    y[2].queued = 4;
    y[0].queued = 1;
    expect(y, 3, CHOICE_QUEUE, 1);
}

static void test_spill_cold(void **state)
{
    (void)state;
    /* two loaded, one cold: the cold one only once both loaded are full,
     * even though their queues have room */
    struct choice_backend v[3] = {ready(), cold(), ready()};
    v[0].inflight = 2;
    v[2].inflight = 1;
    expect(v, 3, CHOICE_SEND, 2);
    v[2].inflight = 2;
    expect(v, 3, CHOICE_SEND, 1);
    /* the cold one full too: the loaded ones' queues, the shortest */
    v[1].inflight = 2;
    v[0].queued = 2;
    v[2].queued = 1;
    expect(v, 3, CHOICE_QUEUE, 2);
    /* even when the cold queue is shorter */
    v[1].queued = 0;
    expect(v, 3, CHOICE_QUEUE, 2);
    /* loaded queues full: the cold queue */
    v[0].queued = v[2].queued = 4;
    expect(v, 3, CHOICE_QUEUE, 1);
    v[1].queued = 4;
    expect_none(v, 3, CHOICE_FULL);
    /* a cold backend without a limit always takes the spill */
    v[1].max_inflight = 0;
    v[1].inflight = 100;
    expect(v, 3, CHOICE_SEND, 1);

    /* among cold backends, by the order of rule 2 */
    struct choice_backend w[4] = {ready(), cold(), cold(), cold()};
    w[0].inflight = 2;
    w[1].inflight = 1;
    w[2].inflight = 1;
    w[2].weight = 2;
    w[3].inflight = 1;
    expect(w, 4, CHOICE_SEND, 2);
}

static void test_queue_choice(void **state)
{
    (void)state;
    /* all full: the shortest queue relative to weight */
    struct choice_backend v[3] = {ready(), ready(), ready()};
    for (int i = 0; i < 3; i++)
        v[i].inflight = 2;
    v[0].queued = 2;
    v[1].queued = 3;
    v[1].weight = 2; /* 3/2 < 2/1 */
    v[2].queued = 2;
    expect(v, 3, CHOICE_QUEUE, 1);
    v[1].queued = 5; /* 5/2 > 2/1 */
    v[1].max_queue = 8;
    expect(v, 3, CHOICE_QUEUE, 0);
    /* a shorter queue that is full is no choice */
    v[0].queued = 0;
    v[0].max_queue = 0;
    expect(v, 3, CHOICE_QUEUE, 2);
    /* loaded preferred: a long loaded queue beats an empty cold one */
    v[0].max_queue = 4;
    v[0].loaded = false;
    expect(v, 3, CHOICE_QUEUE, 2);
    v[1].queued = v[1].max_queue;
    v[2].queued = v[2].max_queue;
    expect(v, 3, CHOICE_QUEUE, 0);
    v[0].queued = 4;
    expect_none(v, 3, CHOICE_FULL);
}

static void test_unlimited(void **state)
{
    (void)state;
    /* max_inflight 0: always a free slot, never a queue */
    struct choice_backend v[2] = {ready(), ready()};
    v[0].max_inflight = 0;
    v[0].inflight = 1000000;
    v[0].max_queue = 100;
    v[1].inflight = 2;
    expect(v, 2, CHOICE_SEND, 0);
    v[0].queued = 50;
    expect(v, 2, CHOICE_SEND, 0);
    /* even with a queue "full" */
    v[0].queued = 100;
    expect(v, 2, CHOICE_SEND, 0);
    v[0].max_queue = 0;
    v[0].queued = 0;
    expect(v, 2, CHOICE_SEND, 0);

    /* no limit on 1 and the model loaded elsewhere: the cold load comes once
     * 0 is full, and no request queues on 1 */
    struct choice_backend w[2] = {ready(), cold()};
    w[1].max_inflight = 0;
    w[1].max_queue = 10;
    w[1].inflight = 5;
    expect(w, 2, CHOICE_SEND, 0);
    w[0].inflight = 2;
    expect(w, 2, CHOICE_SEND, 1);
    /* a backend without a limit but not a candidate does not queue */
    w[1].allowed = false;
    expect(w, 2, CHOICE_QUEUE, 0);
    w[0].max_queue = 0;
    expect_none(w, 2, CHOICE_FULL);
}

static void test_no_candidate(void **state)
{
    (void)state;
    size_t idx;
    /* no backends at all */
    assert_int_equal(choose(NULL, 0, &idx), CHOICE_NONE_UP);

    /* the model only on a backend that is down */
    struct choice_backend v[3] = {ready(), ready(), ready()};
    v[0].up = false;
    v[1].has_model = false;
    v[2].has_model = false;
    expect_none(v, 3, CHOICE_NONE_UP);
    /* on none: the up ones do not have it */
    v[0].has_model = false;
    expect_none(v, 3, CHOICE_NO_MODEL);
    /* a backend up without the model and one down with it: down */
    v[0].has_model = true;
    v[1].up = false;
    expect_none(v, 3, CHOICE_NONE_UP);
    /* every backend down */
    v[0].has_model = v[1].has_model = v[2].has_model = false;
    v[2].up = false;
    expect_none(v, 3, CHOICE_NONE_UP);
    v[0].has_model = v[1].has_model = v[2].has_model = true;
    expect_none(v, 3, CHOICE_NONE_UP);

    /* allowed: only the alias's backends count. 0 is up with the model but
     * not allowed, 1 is allowed and down. */
    struct choice_backend w[2] = {ready(), ready()};
    w[0].allowed = false;
    w[1].up = false;
    expect_none(w, 2, CHOICE_NONE_UP);
    w[1].has_model = false;
    expect_none(w, 2, CHOICE_NONE_UP);
    /* 1 allowed and up, without the model */
    w[1].up = true;
    expect_none(w, 2, CHOICE_NO_MODEL);
    /* none allowed */
    w[1].allowed = false;
    expect_none(w, 2, CHOICE_NONE_UP);
    /* an allowed, down backend with the model beats an up one without: the
     * model exists, its backend is down */
    struct choice_backend x[3] = {ready(), ready(), ready()};
    x[0].has_model = false;
    x[1].up = false;
    x[2].allowed = false;
    expect_none(x, 3, CHOICE_NONE_UP);
    x[1].has_model = false;
    expect_none(x, 3, CHOICE_NO_MODEL);
    /* the states of non-candidates do not matter */
    for (int i = 0; i < 3; i++) {
        x[i].loaded = x[i].loading = true;
        x[i].inflight = 9;
        x[i].queued = 9;
    }
    expect_none(x, 3, CHOICE_NO_MODEL);
}

static void test_failover(void **state)
{
    (void)state;
    /* 0 was tried and failed: the next pick is the other loaded one, even
     * though 0 is the least busy */
    struct choice_backend v[3] = {ready(), ready(), cold()};
    v[1].inflight = 1;
    expect(v, 3, CHOICE_SEND, 0);
    v[0].allowed = false;
    expect(v, 3, CHOICE_SEND, 1);
    /* and then the cold one */
    v[1].allowed = false;
    expect(v, 3, CHOICE_SEND, 2);
    /* all tried: none left that is up and allowed */
    v[2].allowed = false;
    expect_none(v, 3, CHOICE_NONE_UP);
    /* a tried backend is not queued on either */
    v[0].allowed = v[1].allowed = true;
    v[0].inflight = v[1].inflight = 2;
    v[1].queued = 4;
    expect(v, 3, CHOICE_QUEUE, 0);
    v[0].allowed = false;
    expect_none(v, 3, CHOICE_FULL);
}

static void test_outcome_name(void **state)
{
    (void)state;
    assert_string_equal(choice_outcome_name(CHOICE_SEND), "send");
    assert_string_equal(choice_outcome_name(CHOICE_QUEUE), "queue");
    assert_string_equal(choice_outcome_name(CHOICE_FULL), "full");
    assert_string_equal(choice_outcome_name(CHOICE_NO_MODEL), "no_model");
    assert_string_equal(choice_outcome_name(CHOICE_NONE_UP), "none_up");
    assert_string_equal(choice_outcome_name((enum choice_outcome)42), "?");
}

/* The randomized check: a reference written from the header's rules, with
 * its own arithmetic, against choice_pick. */

static uint64_t rng_state = 0x5eed5c4ed0123457ull;

static uint32_t rnd(uint32_t below)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (uint32_t)(z % below);
}

static bool chance(uint32_t percent)
{
    return rnd(100) < percent;
}

static bool is_candidate(const struct choice_backend *b)
{
    return b->up && b->has_model && b->allowed;
}

static bool has_slot(const struct choice_backend *b)
{
    return b->max_inflight == 0 || b->inflight < b->max_inflight;
}

static bool has_room(const struct choice_backend *b)
{
    return b->max_inflight != 0 && b->queued < b->max_queue;
}

static unsigned long long wt(const struct choice_backend *b)
{
    return b->weight == 0 ? 1 : b->weight;
}

/* a/wa against b/wb: <0, 0, >0 */
static int cmp_ratio(unsigned a, unsigned long long wa, unsigned b, unsigned long long wb)
{
    unsigned long long x = a * wb, y = b * wa;
    return x < y ? -1 : x > y;
}

/* The order of rule 2: in flight relative to weight, then queued (relative
 * to weight, as choice_less_busy does). */
static int cmp_busy(const struct choice_backend *a, const struct choice_backend *b)
{
    int c = cmp_ratio(a->inflight, wt(a), b->inflight, wt(b));
    return c ? c : cmp_ratio(a->queued, wt(a), b->queued, wt(b));
}

enum set { ANY, LOADED, LOADING };

static bool in_set(const struct choice_backend *b, enum set s)
{
    return is_candidate(b) && (s == ANY || (s == LOADED ? b->loaded : b->loading));
}

/* Is i the first of the least busy candidates in s with a free slot? */
static bool best_send(const struct choice_backend *v, size_t n, size_t i, enum set s)
{
    if (!in_set(&v[i], s) || !has_slot(&v[i]))
        return false;
    for (size_t j = 0; j < n; j++) {
        if (j == i || !in_set(&v[j], s) || !has_slot(&v[j]))
            continue;
        int c = cmp_busy(&v[j], &v[i]);
        if (c < 0 || (c == 0 && j < i))
            return false;
    }
    return true;
}

/* Is i among the candidates in s with the shortest queue relative to weight
 * that has room? (The header does not order ties here.) */
static bool best_queue(const struct choice_backend *v, size_t n, size_t i, enum set s)
{
    if (!in_set(&v[i], s) || !has_room(&v[i]))
        return false;
    for (size_t j = 0; j < n; j++)
        if (j != i && in_set(&v[j], s) && has_room(&v[j]) &&
            cmp_ratio(v[j].queued, wt(&v[j]), v[i].queued, wt(&v[i])) < 0)
            return false;
    return true;
}

static bool any_in(const struct choice_backend *v, size_t n, enum set s,
                   bool (*pred)(const struct choice_backend *))
{
    for (size_t i = 0; i < n; i++)
        if (in_set(&v[i], s) && (pred == NULL || pred(&v[i])))
            return true;
    return false;
}

static const char *describe(const struct choice_backend *v, size_t n)
{
    static char text[2048];
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof text - 100; i++)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "\n  [%zu] up=%d has=%d allowed=%d loaded=%d loading=%d "
                                "inflight=%u/%u weight=%u queued=%u/%u",
                                i, v[i].up, v[i].has_model, v[i].allowed, v[i].loaded, v[i].loading,
                                v[i].inflight, v[i].max_inflight, v[i].weight, v[i].queued,
                                v[i].max_queue);
    return text;
}

/* What the header's rules say for v; an empty message if choice_pick's o,
 * idx agree. Returns the rule that applied (1: no candidate). */
static int check(const struct choice_backend *v, size_t n, enum choice_outcome o, size_t idx,
                 const char **why)
{
    *why = NULL;
    if (!any_in(v, n, ANY, NULL)) {
        bool down_with = false, allowed_up = false;
        for (size_t i = 0; i < n; i++) {
            down_with |= v[i].allowed && !v[i].up && v[i].has_model;
            allowed_up |= v[i].allowed && v[i].up;
        }
        enum choice_outcome want = down_with || !allowed_up ? CHOICE_NONE_UP : CHOICE_NO_MODEL;
        if (o != want)
            *why =
                want == CHOICE_NONE_UP ? "rule 1: expected none_up" : "rule 1: expected no_model";
        return 1;
    }
    bool loaded = any_in(v, n, LOADED, NULL);
    if (any_in(v, n, LOADED, has_slot)) {
        if (o != CHOICE_SEND || !best_send(v, n, idx, LOADED))
            *why = "rule 2: expected send to the least busy loaded backend";
        return 2;
    }
    if (!loaded && any_in(v, n, LOADING, NULL)) {
        if (any_in(v, n, LOADING, has_slot)) {
            if (o != CHOICE_SEND || !best_send(v, n, idx, LOADING))
                *why = "rule 3: expected send to the loading backend";
            return 3;
        }
        if (any_in(v, n, LOADING, has_room)) {
            if (o != CHOICE_QUEUE || !best_queue(v, n, idx, LOADING))
                *why = "rule 3: expected queue on the loading backend";
            return 3;
        }
    }
    if (any_in(v, n, ANY, has_slot)) {
        if (o != CHOICE_SEND || !best_send(v, n, idx, ANY))
            *why = "rule 4: expected send to the least busy candidate";
        return 4;
    }
    if (any_in(v, n, LOADED, has_room)) {
        if (o != CHOICE_QUEUE || !best_queue(v, n, idx, LOADED))
            *why = "rule 5: expected queue on the shortest loaded queue";
        return 5;
    }
    if (any_in(v, n, ANY, has_room)) {
        if (o != CHOICE_QUEUE || !best_queue(v, n, idx, ANY))
            *why = "rule 5: expected queue on the shortest queue";
        return 5;
    }
    if (o != CHOICE_FULL)
        *why = "rule 6: expected full";
    return 6;
}

/* Invariants that hold whatever the rule, checked independently of check(). */
static void check_invariants(const struct choice_backend *v, size_t n, enum choice_outcome o,
                             size_t idx)
{
    bool candidate = false, slot = false, room = false, loaded_slot = false;
    for (size_t i = 0; i < n; i++) {
        if (!is_candidate(&v[i]))
            continue;
        candidate = true;
        slot |= has_slot(&v[i]);
        room |= has_room(&v[i]);
        loaded_slot |= v[i].loaded && has_slot(&v[i]);
    }
    switch (o) {
    case CHOICE_SEND:
        assert_true(idx < n);
        assert_true(is_candidate(&v[idx]));
        assert_true(has_slot(&v[idx]));
        if (loaded_slot)
            assert_true(v[idx].loaded);
        break;
    case CHOICE_QUEUE:
        assert_true(idx < n);
        assert_true(is_candidate(&v[idx]));
        assert_true(has_room(&v[idx]));
        assert_int_not_equal(v[idx].max_inflight, 0);
        assert_false(has_slot(&v[idx]));
        assert_false(loaded_slot);
        /* queued while a slot is free elsewhere: only behind a cold load */
        if (slot)
            assert_true(v[idx].loading && !v[idx].loaded);
        break;
    case CHOICE_FULL:
        assert_true(candidate);
        assert_false(slot);
        assert_false(room);
        break;
    case CHOICE_NO_MODEL:
    case CHOICE_NONE_UP:
        assert_false(candidate);
        break;
    default:
        fail_msg("outcome %d", (int)o);
    }
}

static void random_backend(struct choice_backend *b)
{
    b->up = chance(85);
    b->has_model = chance(80);
    b->allowed = chance(85);
    b->loaded = chance(40);
    b->loading = chance(25);
    b->max_inflight = chance(20) ? 0 : rnd(5);
    b->inflight = rnd(6);
    b->weight = rnd(4);
    b->max_queue = rnd(4);
    b->queued = rnd(5);
}

static void test_random(void **state)
{
    (void)state;
    unsigned outcomes[CHOICE_NONE_UP + 1] = {0}, rules[7] = {0}, cold_sends = 0;
    for (int round = 0; round < 20000; round++) {
        struct choice_backend v[8];
        size_t n = rnd(9);
        for (size_t i = 0; i < n; i++)
            random_backend(&v[i]);
        /* often a crowd of full backends, to reach the queue and full */
        if (chance(30))
            for (size_t i = 0; i < n; i++)
                if (v[i].max_inflight)
                    v[i].inflight = v[i].max_inflight + rnd(2);
        struct choice_backend copy[8];
        memcpy(copy, v, sizeof v);

        size_t idx;
        enum choice_outcome o = choose(v, n, &idx);
        /* pure: the view is not written */
        assert_memory_equal(copy, v, sizeof v);
        assert_true((unsigned)o < NB(outcomes));
        outcomes[o]++;

        const char *why;
        int rule = check(v, n, o, idx, &why);
        if (why)
            fail_msg("round %d: %s; got %s on %zu for:%s", round, why, choice_outcome_name(o), idx,
                     describe(v, n));
        rules[rule]++;
        check_invariants(v, n, o, idx);
        if (o == CHOICE_SEND && !v[idx].loaded)
            cold_sends++;

        /* deterministic */
        size_t idx2;
        assert_int_equal(choose(v, n, &idx2), o);
        assert_int_equal(idx2, idx);

        /* weight 0 is weight 1 */
        for (size_t i = 0; i < n; i++)
            if (v[i].weight == 0)
                v[i].weight = 1;
        assert_int_equal(choose(v, n, &idx2), o);
        assert_int_equal(idx2, idx);

        /* the state of a non-candidate beyond up, has_model and allowed does
         * not matter */
        for (size_t i = 0; i < n; i++) {
            if (is_candidate(&v[i]))
                continue;
            v[i].loaded = chance(50);
            v[i].loading = chance(50);
            v[i].inflight = rnd(6);
            v[i].max_inflight = rnd(3);
            v[i].queued = rnd(3);
            v[i].max_queue = rnd(5);
            v[i].weight = rnd(100);
        }
        assert_int_equal(choose(v, n, &idx2), o);
        assert_int_equal(idx2, idx);

        /* choice_less_busy: a strict order that agrees with the reference */
        if (n >= 2) {
            const struct choice_backend *a = &v[rnd((uint32_t)n)], *b = &v[rnd((uint32_t)n)];
            assert_int_equal(choice_less_busy(a, b), cmp_busy(a, b) < 0);
            assert_false(choice_less_busy(a, b) && choice_less_busy(b, a));
            assert_false(choice_less_busy(a, a));
        }
    }
    /* the generator reached every outcome and rule, often enough to mean it */
    for (size_t i = 0; i < NB(outcomes); i++)
        if (outcomes[i] < 200)
            fail_msg("outcome %s only %u times", choice_outcome_name((enum choice_outcome)i),
                     outcomes[i]);
    for (size_t i = 1; i < NB(rules); i++)
        if (rules[i] < 200)
            fail_msg("rule %zu only %u times", i, rules[i]);
    assert_true(cold_sends > 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_backend),   cmocka_unit_test(test_candidates),
        cmocka_unit_test(test_loaded_preferred), cmocka_unit_test(test_weight),
        cmocka_unit_test(test_weight_zero),      cmocka_unit_test(test_ties),
        cmocka_unit_test(test_cold_load_once),   cmocka_unit_test(test_spill_cold),
        cmocka_unit_test(test_queue_choice),     cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_no_candidate),     cmocka_unit_test(test_failover),
        cmocka_unit_test(test_outcome_name),     cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
