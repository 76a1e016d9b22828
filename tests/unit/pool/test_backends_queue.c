/* Unit tests for the routing state of backends.c: slots (max_inflight), the
 * FIFO wait queue (max_queue), grants through a worker's route_inbox and its
 * eventfd, leaving a queue or a grant, limits changed by a reload, loaded /
 * loading / warm models, alias name lists, "only" and "tried", down backends,
 * and many threads routing at once; what a route says of the model's
 * "thinking" capability (set as a /api/show would), and the reading of
 * /api/show's capabilities. No discovery thread and no HTTP: the
 * backends are on loopback ports where nothing is polled, and their state is
 * set with backends_set_discovered(). Time is a fake clock passed in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backends.h"
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* ---- a table from a made-up configuration ---- */

struct lim {
    unsigned inflight, queue, weight;
};

static struct cfg *cfg_for(size_t n, const struct lim *l, unsigned interval_s)
{
    static char text[16384];
    size_t len = (size_t)snprintf(text, sizeof text,
                                  "{\"discovery_interval_s\": %u, \"backends\": [", interval_s);
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "%s{\"name\": \"b%zu\", \"url\": \"http://127.0.0.1:%zu\", "
                                "\"max_inflight\": %u, \"max_queue\": %u, \"weight\": %u}",
                                i ? ", " : "", i, 9 + i, l[i].inflight, l[i].queue,
                                l[i].weight ? l[i].weight : 1);
        assert_true(len < sizeof text);
    }
    len += (size_t)snprintf(text + len, sizeof text - len, "]}");
    assert_true(len < sizeof text);
    struct cfg_errors e;
    cfg_errors_init(&e);
    struct cfg *c = cfg_load_buffer(text, len, "q.json", "/", &e);
    if (!c)
        fail_msg("%s", e.text.p ? e.text.p : "");
    cfg_errors_free(&e);
    return c;
}

/* A table that is never started: no thread, no polls. */
static struct backends *table(size_t n, const struct lim *l, unsigned interval_s)
{
    struct cfg *c = cfg_for(n, l, interval_s);
    struct backends *b = backends_new(c);
    assert_non_null(b);
    cfg_unref(c); /* the table holds its own reference */
    assert_int_equal(backends_count(b), n);
    return b;
}

/* One backend with these limits. */
static struct backends *table1(unsigned max_inflight, unsigned max_queue)
{
    const struct lim l = {max_inflight, max_queue, 1};
    return table(1, &l, 5);
}

/* Apply a reload's limits (same backends) to b. */
static void relimit(struct backends *b, size_t n, const struct lim *l)
{
    struct cfg *c = cfg_for(n, l, 5);
    backends_set_limits(b, c);
    cfg_unref(c);
}

static void up(struct backends *b, size_t idx, const char *const *models, size_t nmodels,
               const char *const *loaded, size_t nloaded)
{
    assert_int_equal(backends_set_discovered(b, idx, true, models, nmodels, loaded, nloaded), 0);
}

static void down(struct backends *b, size_t idx)
{
    assert_int_equal(backends_set_discovered(b, idx, false, NULL, 0, NULL, 0), 0);
}

static const char *const M[] = {"m"};

/* Backend idx is up with model "m", in memory when loaded. */
static void up_m(struct backends *b, size_t idx, bool loaded)
{
    up(b, idx, M, 1, M, loaded ? 1 : 0);
}

static struct route_ask ask_m(void)
{
    return (struct route_ask){.names = M, .nnames = 1};
}

static struct backend_stats stats(struct backends *b, int idx)
{
    struct backend_stats st;
    backends_stats(b, idx, &st);
    return st;
}

static void assert_counts(struct backends *b, int idx, unsigned inflight, unsigned queued)
{
    struct backend_stats st = stats(b, idx);
    if (st.inflight != inflight || st.queued != queued)
        fail_msg("backend %d: inflight %u queued %u, expected inflight %u queued %u", idx,
                 st.inflight, st.queued, inflight, queued);
}

/* ---- a fake worker: an eventfd and its inbox ---- */

struct worker {
    int efd;
    struct route_inbox in;
};

static void worker_init(struct worker *w)
{
    w->efd = eventfd(0, EFD_NONBLOCK);
    assert_true(w->efd >= 0);
    assert_int_equal(route_inbox_init(&w->in, w->efd), 0);
}

static void worker_free(struct worker *w)
{
    assert_null(w->in.head);
    route_inbox_destroy(&w->in);
    close(w->efd);
}

/* How many times the eventfd was written since the last call (0: not readable). */
static uint64_t wakes(struct worker *w)
{
    uint64_t v = 0;
    ssize_t r = read(w->efd, &v, sizeof v);
    if (r < 0) {
        assert_int_equal(errno, EAGAIN);
        return 0;
    }
    assert_int_equal(r, (ssize_t)sizeof v);
    return v;
}

static void waiter_init(struct route_waiter *rw, struct worker *w, void *owner)
{
    memset(rw, 0, sizeof *rw);
    rw->owner = owner;
    rw->inbox = &w->in;
}

/* Take w's grants and check they are exactly want[0..n), in that order; each
 * is then started, as a worker does (its state back to idle). */
static void expect_taken(struct worker *w, struct route_waiter *const *want, size_t n)
{
    struct route_waiter *g = route_inbox_take(&w->in);
    for (size_t k = 0; k < n; k++) {
        if (g != want[k])
            fail_msg("grant %zu: got waiter %p (owner %p), expected %p", k, (void *)g,
                     g ? g->owner : NULL, (void *)want[k]);
        assert_int_equal(g->state, WAITER_GRANTED);
        struct route_waiter *next = g->next;
        g->next = NULL;
        backends_taken(g->table, g);
        g = next;
    }
    if (g)
        fail_msg("an extra grant: waiter %p (owner %p)", (void *)g, g->owner);
    assert_null(w->in.head);
}

static enum choice_outcome route_at(struct backends *b, const struct route_ask *ask,
                                    struct route_waiter *rw, int64_t now, int *idx, size_t *name)
{
    *idx = -1;
    *name = (size_t)-1;
    return backends_route(b, ask, rw, now, idx, name, NULL);
}

/* Route for "m" and expect outcome o on backend want (o SEND or QUEUE). */
static void expect_route(struct backends *b, struct route_waiter *rw, int64_t now,
                         enum choice_outcome o, int want)
{
    struct route_ask ask = ask_m();
    int idx;
    size_t name;
    enum choice_outcome got = route_at(b, &ask, rw, now, &idx, &name);
    if (got != o || idx != want)
        fail_msg("route: %s on %d, expected %s on %d", choice_outcome_name(got), idx,
                 choice_outcome_name(o), want);
    assert_int_equal(name, 0);
    if (o == CHOICE_QUEUE) {
        assert_int_equal(rw->state, WAITER_QUEUED);
        assert_int_equal(rw->backend, want);
        assert_ptr_equal(rw->table, b);
    }
}

/* Route for "m" and expect an outcome without a backend. */
static void expect_none(struct backends *b, struct route_waiter *rw, int64_t now,
                        enum choice_outcome o)
{
    struct route_ask ask = ask_m();
    int idx;
    size_t name;
    enum choice_outcome got = route_at(b, &ask, rw, now, &idx, &name);
    if (got != o)
        fail_msg("route: %s, expected %s", choice_outcome_name(got), choice_outcome_name(o));
    assert_int_equal(idx, -1);
    if (rw)
        assert_int_equal(rw->state, WAITER_IDLE);
}

/* A request on backend idx ends after answering (the common case). */
static void done(struct backends *b, int idx)
{
    backends_done(b, idx, "m", false, true, 1000);
}

/* ---- slots and the queue ---- */

static void test_send_until_full_then_fifo(void **state)
{
    (void)state;
    struct backends *b = table1(2, 10);
    up_m(b, 0, true);
    struct worker w;
    worker_init(&w);
    struct route_waiter r[3];
    for (int k = 0; k < 3; k++)
        waiter_init(&r[k], &w, &r[k]);

    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    assert_counts(b, 0, 1, 0);
    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    assert_counts(b, 0, 2, 0);
    for (int k = 0; k < 3; k++) {
        expect_route(b, &r[k], 1000, CHOICE_QUEUE, 0);
        assert_counts(b, 0, 2, (unsigned)k + 1);
    }
    assert_int_equal(wakes(&w), 0);
    assert_null(route_inbox_take(&w.in));

    /* The first slot freed goes to the oldest waiter; it keeps the slot. */
    done(b, 0);
    assert_counts(b, 0, 2, 2);
    assert_int_equal(r[0].state, WAITER_GRANTED);
    assert_int_equal(r[1].state, WAITER_QUEUED);
    assert_int_equal(wakes(&w), 1);
    struct route_waiter *want0[] = {&r[0]};
    expect_taken(&w, want0, 1);

    /* Two more grants before the worker looks: taken oldest first. */
    done(b, 0);
    assert_counts(b, 0, 2, 1);
    done(b, 0); /* r[0]'s request */
    assert_counts(b, 0, 2, 0);
    assert_int_equal(wakes(&w), 2);
    struct route_waiter *want12[] = {&r[1], &r[2]};
    expect_taken(&w, want12, 2);

    /* With nobody waiting, a slot freed is free: no grant, no wake. */
    done(b, 0);
    assert_counts(b, 0, 1, 0);
    done(b, 0);
    assert_counts(b, 0, 0, 0);
    assert_int_equal(wakes(&w), 0);
    assert_null(route_inbox_take(&w.in));
    /* A done with nothing in flight does not wrap the count. */
    done(b, 0);
    assert_counts(b, 0, 0, 0);

    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    assert_counts(b, 0, 1, 0);
    done(b, 0);
    worker_free(&w);
    backends_unref(b);
}

static void test_queue_full(void **state)
{
    (void)state;
    struct backends *b = table1(1, 2);
    up_m(b, 0, true);
    struct worker w;
    worker_init(&w);
    struct route_waiter r[3];
    for (int k = 0; k < 3; k++)
        waiter_init(&r[k], &w, &r[k]);

    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    expect_route(b, &r[0], 1000, CHOICE_QUEUE, 0);
    expect_route(b, &r[1], 1000, CHOICE_QUEUE, 0);
    expect_none(b, &r[2], 1000, CHOICE_FULL);
    assert_counts(b, 0, 1, 2);

    /* A place freed in the queue takes the next one. */
    backends_leave(b, &r[1]);
    assert_counts(b, 0, 1, 1);
    expect_route(b, &r[2], 1000, CHOICE_QUEUE, 0);
    assert_counts(b, 0, 1, 2);

    backends_leave(b, &r[0]);
    backends_leave(b, &r[2]);
    assert_counts(b, 0, 1, 0);
    done(b, 0);
    assert_counts(b, 0, 0, 0);
    assert_int_equal(wakes(&w), 0);
    worker_free(&w);
    backends_unref(b);
}

static void test_max_queue_zero(void **state)
{
    (void)state;
    struct backends *b = table1(1, 0);
    up_m(b, 0, true);
    struct worker w;
    worker_init(&w);
    struct route_waiter r;
    waiter_init(&r, &w, &r);

    expect_route(b, &r, 1000, CHOICE_SEND, 0);
    assert_int_equal(r.state, WAITER_IDLE); /* a SEND does not touch the waiter */
    expect_none(b, &r, 1000, CHOICE_FULL);
    assert_counts(b, 0, 1, 0);
    done(b, 0);
    expect_route(b, &r, 1000, CHOICE_SEND, 0);
    done(b, 0);
    assert_counts(b, 0, 0, 0);
    worker_free(&w);
    backends_unref(b);
}

static void test_no_limit_never_queues(void **state)
{
    (void)state;
    struct backends *b = table1(0, 100);
    up_m(b, 0, true);
    struct worker w;
    worker_init(&w);
    struct route_waiter r;
    waiter_init(&r, &w, &r);
    for (unsigned k = 0; k < 500; k++) {
        expect_route(b, &r, 1000, CHOICE_SEND, 0);
        assert_int_equal(r.state, WAITER_IDLE);
    }
    assert_counts(b, 0, 500, 0);
    for (unsigned k = 0; k < 500; k++)
        done(b, 0);
    assert_counts(b, 0, 0, 0);
    assert_int_equal(wakes(&w), 0);
    worker_free(&w);
    backends_unref(b);
}

/* ---- leaving ---- */

static void test_leave_queued(void **state)
{
    (void)state;
    struct backends *b = table1(1, 10);
    up_m(b, 0, true);
    struct worker w;
    worker_init(&w);
    struct route_waiter r[5];
    for (int k = 0; k < 5; k++)
        waiter_init(&r[k], &w, &r[k]);

    /* Leaving when idle (never queued) changes nothing. */
    backends_leave(b, &r[0]);
    assert_int_equal(r[0].state, WAITER_IDLE);

    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    for (int k = 0; k < 5; k++)
        expect_route(b, &r[k], 1000, CHOICE_QUEUE, 0);
    assert_counts(b, 0, 1, 5);

    backends_leave(b, &r[2]); /* the middle */
    assert_int_equal(r[2].state, WAITER_IDLE);
    assert_counts(b, 0, 1, 4);
    backends_leave(b, &r[2]); /* twice: nothing more */
    assert_counts(b, 0, 1, 4);
    backends_leave(b, &r[0]); /* the head */
    assert_counts(b, 0, 1, 3);
    backends_leave(b, &r[4]); /* the tail */
    assert_counts(b, 0, 1, 2);
    assert_int_equal(wakes(&w), 0);

    /* Only those still queued are granted, in order. */
    done(b, 0);
    assert_counts(b, 0, 1, 1);
    struct route_waiter *want1[] = {&r[1]};
    expect_taken(&w, want1, 1);
    done(b, 0);
    struct route_waiter *want3[] = {&r[3]};
    expect_taken(&w, want3, 1);
    assert_counts(b, 0, 1, 0);
    assert_int_equal(wakes(&w), 2);
    done(b, 0);
    assert_counts(b, 0, 0, 0);
    assert_null(route_inbox_take(&w.in));
    assert_int_equal(wakes(&w), 0);

    /* The queue is usable again after emptying from both ends. */
    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    expect_route(b, &r[0], 1000, CHOICE_QUEUE, 0);
    done(b, 0);
    expect_taken(&w, (struct route_waiter *[]){&r[0]}, 1);
    done(b, 0);
    assert_counts(b, 0, 0, 0);
    worker_free(&w);
    backends_unref(b);
}

static void test_leave_granted_passes_slot(void **state)
{
    (void)state;
    struct backends *b = table1(1, 10);
    up_m(b, 0, true);
    struct worker w;
    worker_init(&w);
    struct route_waiter r[2];
    for (int k = 0; k < 2; k++)
        waiter_init(&r[k], &w, &r[k]);

    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    expect_route(b, &r[0], 1000, CHOICE_QUEUE, 0);
    expect_route(b, &r[1], 1000, CHOICE_QUEUE, 0);
    done(b, 0);
    assert_int_equal(r[0].state, WAITER_GRANTED);
    assert_ptr_equal(w.in.head, &r[0]);

    /* r[0] leaves before its worker took the grant: r[1] gets the slot. */
    backends_leave(b, &r[0]);
    assert_int_equal(r[0].state, WAITER_IDLE);
    assert_int_equal(r[1].state, WAITER_GRANTED);
    assert_counts(b, 0, 1, 0);
    assert_int_equal(wakes(&w), 2);
    expect_taken(&w, (struct route_waiter *[]){&r[1]}, 1);

    /* A grant taken but not used, with nobody waiting: the slot is free. */
    r[1].state = WAITER_GRANTED; /* as before the worker started it */
    backends_leave(b, &r[1]);
    assert_int_equal(r[1].state, WAITER_IDLE);
    assert_counts(b, 0, 0, 0);
    assert_int_equal(wakes(&w), 0);

    /* A granted waiter in the inbox with nobody waiting: freed as well. */
    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    waiter_init(&r[0], &w, &r[0]);
    expect_route(b, &r[0], 1000, CHOICE_QUEUE, 0);
    done(b, 0);
    assert_counts(b, 0, 1, 0);
    backends_leave(b, &r[0]);
    assert_counts(b, 0, 0, 0);
    assert_null(w.in.head);
    assert_null(route_inbox_take(&w.in));
    assert_int_equal(wakes(&w), 1);

    worker_free(&w);
    backends_unref(b);
}

/* Several grants in one inbox; the one in the middle leaves. */
static void test_leave_granted_in_middle(void **state)
{
    (void)state;
    struct backends *b = table1(3, 10);
    up_m(b, 0, true);
    struct worker w;
    worker_init(&w);
    struct route_waiter r[5];
    for (int k = 0; k < 5; k++)
        waiter_init(&r[k], &w, &r[k]);
    for (int k = 0; k < 3; k++)
        expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    for (int k = 0; k < 5; k++)
        expect_route(b, &r[k], 1000, CHOICE_QUEUE, 0);
    for (int k = 0; k < 3; k++)
        done(b, 0);
    assert_counts(b, 0, 3, 2);
    assert_int_equal(wakes(&w), 3);

    backends_leave(b, &r[1]); /* r[3] gets its slot */
    assert_counts(b, 0, 3, 1);
    backends_leave(b, &r[2]); /* between r[3] and r[0] in the inbox: r[4] */
    assert_counts(b, 0, 3, 0);
    backends_leave(b, &r[4]); /* at the inbox's head; nobody waits: freed */
    assert_counts(b, 0, 2, 0);
    assert_int_equal(wakes(&w), 2);
    expect_taken(&w, (struct route_waiter *[]){&r[0], &r[3]}, 2);
    for (int k = 0; k < 5; k++)
        assert_int_equal(r[k].state, WAITER_IDLE);
    done(b, 0);
    done(b, 0);
    assert_counts(b, 0, 0, 0);
    worker_free(&w);
    backends_unref(b);
}

static void test_two_inboxes(void **state)
{
    (void)state;
    struct backends *b = table1(1, 10);
    up_m(b, 0, true);
    struct worker wa, wb;
    worker_init(&wa);
    worker_init(&wb);
    struct route_waiter a1, a2, b1;
    waiter_init(&a1, &wa, "a1");
    waiter_init(&b1, &wb, "b1");
    waiter_init(&a2, &wa, "a2");

    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    expect_route(b, &a1, 1000, CHOICE_QUEUE, 0);
    expect_route(b, &b1, 1000, CHOICE_QUEUE, 0);
    expect_route(b, &a2, 1000, CHOICE_QUEUE, 0);

    done(b, 0);
    assert_int_equal(wakes(&wa), 1);
    assert_int_equal(wakes(&wb), 0);
    done(b, 0);
    assert_int_equal(wakes(&wa), 0);
    assert_int_equal(wakes(&wb), 1);
    done(b, 0);
    assert_int_equal(wakes(&wa), 1);
    assert_int_equal(wakes(&wb), 0);
    assert_counts(b, 0, 1, 0);

    expect_taken(&wb, (struct route_waiter *[]){&b1}, 1);
    assert_string_equal(b1.owner, "b1");
    expect_taken(&wa, (struct route_waiter *[]){&a1, &a2}, 2);
    done(b, 0);
    assert_counts(b, 0, 0, 0);
    worker_free(&wa);
    worker_free(&wb);
    backends_unref(b);
}

/* ---- limits changed by a reload ---- */

static void test_lower_max_inflight_drains(void **state)
{
    (void)state;
    struct backends *b = table1(3, 10);
    up_m(b, 0, true);
    struct worker w;
    worker_init(&w);
    struct route_waiter r[2];
    for (int k = 0; k < 2; k++)
        waiter_init(&r[k], &w, &r[k]);
    for (int k = 0; k < 3; k++)
        expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    expect_route(b, &r[0], 1000, CHOICE_QUEUE, 0);

    relimit(b, 1, &(struct lim){1, 10, 1});
    assert_counts(b, 0, 3, 1); /* counts and queue carry over */
    expect_route(b, &r[1], 1000, CHOICE_QUEUE, 0);

    /* 3 in flight for a limit of 1: two must end before a grant. */
    done(b, 0);
    assert_counts(b, 0, 2, 2);
    assert_int_equal(r[0].state, WAITER_QUEUED);
    done(b, 0);
    assert_counts(b, 0, 1, 2);
    assert_int_equal(wakes(&w), 0);
    assert_null(route_inbox_take(&w.in));
    done(b, 0);
    assert_counts(b, 0, 1, 1);
    assert_int_equal(wakes(&w), 1);
    expect_taken(&w, (struct route_waiter *[]){&r[0]}, 1);
    done(b, 0);
    expect_taken(&w, (struct route_waiter *[]){&r[1]}, 1);
    assert_counts(b, 0, 1, 0);
    done(b, 0);
    assert_counts(b, 0, 0, 0);

    /* max_queue lowered to 0: full at once. */
    relimit(b, 1, &(struct lim){1, 0, 1});
    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    expect_none(b, &r[0], 1000, CHOICE_FULL);
    done(b, 0);
    worker_free(&w);
    backends_unref(b);
}

static void test_raise_max_inflight(void **state)
{
    (void)state;
    struct backends *b = table1(1, 0);
    up_m(b, 0, true);
    struct worker w;
    worker_init(&w);
    struct route_waiter r;
    waiter_init(&r, &w, &r);
    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    expect_none(b, &r, 1000, CHOICE_FULL);

    relimit(b, 1, &(struct lim){3, 0, 1});
    assert_counts(b, 0, 1, 0);
    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    expect_none(b, &r, 1000, CHOICE_FULL);
    assert_counts(b, 0, 3, 0);

    /* To 0, no limit of ours: never full, never queued. */
    relimit(b, 1, &(struct lim){0, 10, 1});
    for (int k = 0; k < 10; k++)
        expect_route(b, &r, 1000, CHOICE_SEND, 0);
    assert_counts(b, 0, 13, 0);
    /* And back to 2: the 13 drain to 1 before anyone is granted. */
    relimit(b, 1, &(struct lim){2, 10, 1});
    expect_route(b, &r, 1000, CHOICE_QUEUE, 0);
    for (int k = 0; k < 11; k++)
        done(b, 0);
    assert_counts(b, 0, 2, 1);
    assert_int_equal(wakes(&w), 0);
    done(b, 0);
    assert_counts(b, 0, 2, 0);
    expect_taken(&w, (struct route_waiter *[]){&r}, 1);
    done(b, 0);
    done(b, 0);
    assert_counts(b, 0, 0, 0);
    worker_free(&w);
    backends_unref(b);
}

/*
 * Waiters queued when max_inflight is raised get the new slots at once: the
 * queue is FIFO, so a request arriving after the reload must not be sent
 * while older ones still wait for the slots it takes.
 */
static void test_raise_max_inflight_grants_queued(void **state)
{
    (void)state;
    struct backends *b = table1(1, 10);
    up_m(b, 0, true);
    struct worker w;
    worker_init(&w);
    struct route_waiter r[3];
    for (int k = 0; k < 3; k++)
        waiter_init(&r[k], &w, &r[k]);
    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    expect_route(b, &r[0], 1000, CHOICE_QUEUE, 0);
    expect_route(b, &r[1], 1000, CHOICE_QUEUE, 0);

    relimit(b, 1, &(struct lim){3, 10, 1});
    /* The two new slots go to the two waiters. */
    assert_counts(b, 0, 3, 0);
    assert_int_equal(wakes(&w), 2);
    expect_taken(&w, (struct route_waiter *[]){&r[0], &r[1]}, 2);
    /* And a new request waits behind them. */
    expect_route(b, &r[2], 1000, CHOICE_QUEUE, 0);
    backends_leave(b, &r[2]);
    for (int k = 0; k < 3; k++)
        done(b, 0);
    assert_counts(b, 0, 0, 0);
    worker_free(&w);
    backends_unref(b);
}

/* ---- loaded, loading, warm ---- */

static void test_loaded_preferred(void **state)
{
    (void)state;
    const struct lim l[2] = {{0, 10, 1}, {2, 10, 1}};
    struct backends *b = table(2, l, 5);
    up_m(b, 0, false);
    up_m(b, 1, true);
    /* Loaded on 1: sent there even when busier than 0. */
    expect_route(b, NULL, 1000, CHOICE_SEND, 1);
    expect_route(b, NULL, 1000, CHOICE_SEND, 1);
    assert_counts(b, 0, 0, 0);
    assert_counts(b, 1, 2, 0);
    /* 1 is full: a cold load on 0 rather than a wait. */
    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    assert_counts(b, 0, 1, 0);
    done(b, 0);
    done(b, 1);
    done(b, 1);
    assert_counts(b, 1, 0, 0);
    assert_int_equal(stats(b, 1).nloaded, 1);
    assert_int_equal(stats(b, 0).nloaded, 0);
    assert_int_equal(stats(b, 0).nmodels, 1);
    backends_unref(b);
}

/* Both full, both with room in their queue: the one with it loaded. */
static void test_queue_prefers_loaded(void **state)
{
    (void)state;
    const struct lim l[2] = {{1, 10, 1}, {1, 10, 1}};
    struct backends *b = table(2, l, 5);
    up_m(b, 0, false);
    up_m(b, 1, true);
    struct worker w;
    worker_init(&w);
    struct route_waiter r[2];
    for (int k = 0; k < 2; k++)
        waiter_init(&r[k], &w, &r[k]);
    expect_route(b, NULL, 1000, CHOICE_SEND, 1);
    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    expect_route(b, &r[0], 1000, CHOICE_QUEUE, 1);
    expect_route(b, &r[1], 1000, CHOICE_QUEUE, 1);
    assert_counts(b, 1, 1, 2);
    assert_counts(b, 0, 1, 0);
    backends_leave(b, &r[0]);
    backends_leave(b, &r[1]);
    done(b, 0);
    done(b, 1);
    worker_free(&w);
    backends_unref(b);
}

/* A cold load under way draws the requests for that model, even to its
 * queue while another backend that has the model (not loaded) is free. */
static void test_cold_load_draws_requests(void **state)
{
    (void)state;
    const struct lim l[2] = {{1, 10, 1}, {1, 10, 1}};
    struct backends *b = table(2, l, 2);
    up_m(b, 0, false);
    up_m(b, 1, false);
    struct worker w;
    worker_init(&w);
    struct route_waiter r;
    waiter_init(&r, &w, &r);

    expect_route(b, NULL, 1000, CHOICE_SEND, 0); /* a tie: the lower index */
    assert_true(backends_begin(b, 0, "m", 1000));
    expect_route(b, &r, 1100, CHOICE_QUEUE, 0);
    assert_counts(b, 1, 0, 0);

    /* It answers: no longer loading but loaded (warm), still full. Nothing
     * loaded has a free slot: a cold load on 1 rather than a wait. */
    backends_answered(b, 0, "m", true, 1200);
    expect_route(b, NULL, 1300, CHOICE_SEND, 1);
    assert_false(backends_begin(b, 0, "m", 1300)); /* warm on 0 */
    assert_true(backends_begin(b, 1, "m", 1300));  /* cold on 1 */
    backends_answered(b, 1, "m", true, 1400);
    backends_done(b, 1, "m", false, true, 1500);

    backends_done(b, 0, "m", false, true, 1500);
    expect_taken(&w, (struct route_waiter *[]){&r}, 1);
    assert_false(backends_begin(b, 0, "m", 1600));
    backends_done(b, 0, "m", false, true, 1700);
    assert_counts(b, 0, 0, 0);
    assert_counts(b, 1, 0, 0);
    worker_free(&w);
    backends_unref(b);
}

/* An answer makes a model count as loaded for 2 intervals + 1 s. */
static void test_warm_expires(void **state)
{
    (void)state;
    const struct lim l[2] = {{0, 10, 1}, {0, 10, 1}};
    struct backends *b = table(2, l, 2); /* warm for 2*2*1000+1000 = 5000 ms */
    up_m(b, 0, false);
    up_m(b, 1, false);

    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    assert_true(backends_begin(b, 0, "m", 1000));
    /* Loading on 0: a second request goes there too, though 1 is idle. */
    expect_route(b, NULL, 1500, CHOICE_SEND, 0);
    backends_done(b, 0, "m", false, false, 1600); /* it gave up, uncounted */
    backends_answered(b, 0, "m", true, 2000);     /* warm until 7000 */
    assert_counts(b, 0, 1, 0);

    /* Loaded (warm) on 0 only: preferred though busier. */
    expect_route(b, NULL, 6999, CHOICE_SEND, 0);
    assert_false(backends_begin(b, 0, "m", 6999));
    backends_done(b, 0, "m", false, false, 6999); /* not answered: no warmer */
    assert_counts(b, 0, 1, 0);
    /* At 7000 it no longer counts: neither loaded nor loading, 1 is less busy. */
    expect_route(b, NULL, 7000, CHOICE_SEND, 1);
    expect_route(b, NULL, 7000, CHOICE_SEND, 0);  /* 1 in flight each: the lower index */
    assert_true(backends_begin(b, 0, "m", 7000)); /* a cold load again */
    backends_done(b, 0, "m", true, false, 7000);
    backends_done(b, 1, "m", false, false, 7000);

    /* The first request ends, answered: warm again from its end. */
    backends_done(b, 0, "m", false, true, 8000); /* warm until 13000 */
    assert_counts(b, 0, 0, 0);
    expect_route(b, NULL, 8000, CHOICE_SEND, 0);
    expect_route(b, NULL, 12999, CHOICE_SEND, 0);
    assert_counts(b, 0, 2, 0);
    expect_route(b, NULL, 13000, CHOICE_SEND, 1);
    done(b, 0);
    done(b, 0);
    done(b, 1);
    backends_unref(b);
}

/* A cold request that ends without an answer ends the load, warms nothing. */
static void test_cold_done_unanswered(void **state)
{
    (void)state;
    const struct lim l[2] = {{0, 10, 1}, {0, 10, 1}};
    struct backends *b = table(2, l, 2);
    up_m(b, 0, false);
    up_m(b, 1, false);

    /* A and B: two cold requests on 0. */
    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    bool cold_a = backends_begin(b, 0, "m", 1000);
    assert_true(cold_a);
    expect_route(b, NULL, 1000, CHOICE_SEND, 0); /* loading there, though 1 is idle */
    bool cold_b = backends_begin(b, 0, "m", 1000);
    assert_true(cold_b); /* nothing answered yet: cold as well */
    assert_counts(b, 0, 2, 0);

    /* A fails before answering: B still loads, so C goes to 0 too. */
    backends_done(b, 0, "m", cold_a, false, 1100);
    expect_route(b, NULL, 1100, CHOICE_SEND, 0);
    assert_counts(b, 0, 2, 0);

    /* B fails as well: no load under way on 0 and nothing warm there, so D
     * goes to the less busy 1 (C is still on 0). */
    backends_done(b, 0, "m", cold_b, false, 1200);
    expect_route(b, NULL, 1200, CHOICE_SEND, 1);
    assert_counts(b, 0, 1, 0);
    assert_counts(b, 1, 1, 0);
    backends_done(b, 1, "m", false, false, 1300);
    backends_done(b, 0, "m", false, false, 1300);
    assert_counts(b, 0, 0, 0);
    assert_counts(b, 1, 0, 0);
    backends_unref(b);
}

/* In /api/ps: never a cold load. Another name of the same model: the same. */
static void test_begin_in_ps(void **state)
{
    (void)state;
    struct backends *b = table1(0, 10);
    static const char *const names[] = {"llama3.2:latest", "qwen:7b"};
    static const char *const ps[] = {"llama3.2"};
    up(b, 0, names, 2, ps, 1);
    assert_false(backends_begin(b, 0, "llama3.2:latest", 1000));
    assert_false(backends_begin(b, 0, "llama3.2", 1000));
    assert_true(backends_begin(b, 0, "qwen:7b", 1000));
    backends_done(b, 0, "qwen:7b", true, false, 1000);
    /* out of range: nothing */
    assert_false(backends_begin(b, 1, "qwen:7b", 1000));
    assert_false(backends_begin(b, -1, "qwen:7b", 1000));
    backends_done(b, 1, "m", false, true, 1000);
    backends_answered(b, -1, "m", true, 1000);
    assert_counts(b, 0, 0, 0);
    backends_unref(b);
}

/* ---- which names, which backends ---- */

static void test_alias_names(void **state)
{
    (void)state;
    const struct lim l[2] = {{0, 10, 1}, {0, 10, 1}};
    struct backends *b = table(2, l, 5);
    static const char *const only_b[] = {"b"};
    static const char *const only_c[] = {"c"};
    up(b, 0, only_b, 1, NULL, 0);
    up(b, 1, only_c, 1, only_c, 1);
    static const char *const names[] = {"a", "b"};
    struct route_ask ask = {.names = names, .nnames = 2};
    int idx;
    size_t name;
    assert_int_equal(route_at(b, &ask, NULL, 1000, &idx, &name), CHOICE_SEND);
    assert_int_equal(idx, 0);
    assert_int_equal(name, 1);
    assert_int_equal(backends_name_on(b, 0, &ask, NULL), 1);
    assert_int_equal(backends_name_on(b, 1, &ask, NULL), -1);
    assert_int_equal(backends_name_on(b, 2, &ask, NULL), -1);
    assert_int_equal(backends_name_on(b, -1, &ask, NULL), -1);
    backends_done(b, idx, names[name], false, false, 1000); /* unanswered: not warm */

    /* The first name listed wins where a backend has both. */
    static const char *const both[] = {"b", "a"};
    up(b, 0, both, 2, NULL, 0);
    assert_int_equal(backends_name_on(b, 0, &ask, NULL), 0);
    assert_int_equal(route_at(b, &ask, NULL, 1000, &idx, &name), CHOICE_SEND);
    assert_int_equal(idx, 0);
    assert_int_equal(name, 0);
    backends_done(b, idx, names[name], false, false, 1000); /* unanswered: not warm */

    /* Loaded under its name on that backend ("c" on 1). */
    static const char *const ac[] = {"a", "c"};
    struct route_ask ask2 = {.names = ac, .nnames = 2};
    assert_int_equal(route_at(b, &ask2, NULL, 1000, &idx, &name), CHOICE_SEND);
    assert_int_equal(idx, 1);
    assert_int_equal(name, 1);
    backends_done(b, idx, ac[name], false, true, 1000);

    /* A backend that went down lists nothing for a grant. */
    down(b, 0);
    assert_int_equal(backends_name_on(b, 0, &ask, NULL), -1);
    assert_int_equal(stats(b, 0).nmodels, 2); /* kept from before */
    assert_false(stats(b, 0).up);
    backends_unref(b);
}

static void test_only_and_tried(void **state)
{
    (void)state;
    const struct lim l[3] = {{0, 10, 1}, {0, 10, 1}, {0, 10, 1}};
    struct backends *b = table(3, l, 5);
    for (size_t i = 0; i < 3; i++)
        up_m(b, i, true);
    int idx;
    size_t name;

    static const unsigned only2[] = {2};
    struct route_ask a = {.names = M, .nnames = 1, .only = only2, .nonly = 1};
    assert_int_equal(route_at(b, &a, NULL, 1000, &idx, &name), CHOICE_SEND);
    assert_int_equal(idx, 2);

    static const int tried0[] = {0};
    a = (struct route_ask){.names = M, .nnames = 1, .tried = tried0, .ntried = 1};
    assert_int_equal(route_at(b, &a, NULL, 1000, &idx, &name), CHOICE_SEND);
    assert_int_equal(idx, 1); /* not 0; 2 has one in flight */

    static const unsigned only01[] = {0, 1};
    static const int tried01[] = {1, 0};
    a = (struct route_ask){
        .names = M, .nnames = 1, .only = only01, .nonly = 2, .tried = tried01, .ntried = 1};
    assert_int_equal(route_at(b, &a, NULL, 1000, &idx, &name), CHOICE_SEND);
    assert_int_equal(idx, 0); /* only 0 and 1, not 1: 0 */
    a.ntried = 2;             /* every one allowed was tried */
    assert_int_equal(route_at(b, &a, NULL, 1000, &idx, &name), CHOICE_NONE_UP);
    assert_int_equal(idx, -1);

    /* Allowed backends are up but lack the model: 404's reason. */
    static const char *const other[] = {"x"};
    up(b, 2, other, 1, NULL, 0);
    a = (struct route_ask){.names = M, .nnames = 1, .only = only2, .nonly = 1};
    assert_int_equal(route_at(b, &a, NULL, 1000, &idx, &name), CHOICE_NO_MODEL);

    assert_counts(b, 0, 1, 0);
    assert_counts(b, 1, 1, 0);
    assert_counts(b, 2, 1, 0);
    for (int i = 0; i < 3; i++)
        done(b, i);
    backends_unref(b);
}

static void test_down_backends(void **state)
{
    (void)state;
    const struct lim l[2] = {{0, 10, 1}, {0, 10, 1}};
    struct backends *b = table(2, l, 5);
    assert_false(backends_any_up(b)); /* never polled */
    expect_none(b, NULL, 1000, CHOICE_NONE_UP);

    up_m(b, 0, true);
    up_m(b, 1, false);
    assert_true(backends_any_up(b));
    expect_route(b, NULL, 1000, CHOICE_SEND, 0);
    done(b, 0);

    down(b, 0);
    assert_false(backends_is_up(b, 0));
    assert_true(backends_is_up(b, 1));
    assert_false(backends_is_up(b, 2));
    expect_route(b, NULL, 1000, CHOICE_SEND, 1);
    done(b, 1);

    /* The model only on a backend that is down: 503, not 404. */
    static const char *const other[] = {"x"};
    up(b, 1, other, 1, NULL, 0);
    expect_none(b, NULL, 1000, CHOICE_NONE_UP);
    /* Nobody has it: 404. */
    up(b, 0, other, 1, NULL, 0);
    expect_none(b, NULL, 1000, CHOICE_NO_MODEL);
    down(b, 0);
    down(b, 1);
    assert_false(backends_any_up(b));
    expect_none(b, NULL, 1000, CHOICE_NONE_UP);
    /* Up again with the model. */
    up_m(b, 1, true);
    expect_route(b, NULL, 1000, CHOICE_SEND, 1);
    done(b, 1);

    struct backend_stats st = stats(b, 5);
    assert_false(st.up);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(backends_set_discovered(b, 2, true, M, 1, NULL, 0), -1);
    backends_unref(b);
}

/* More backends than the view on the stack holds. */
static void test_many_backends(void **state)
{
    (void)state;
    enum { N = 40 };
    struct lim l[N];
    for (size_t i = 0; i < N; i++)
        l[i] = (struct lim){1, 2, 1};
    struct backends *b = table(N, l, 5);
    static const char *const other[] = {"x"};
    for (size_t i = 0; i < N; i++)
        up(b, i, i >= 30 ? M : other, 1, NULL, 0);
    struct worker w;
    worker_init(&w);
    struct route_waiter r[21];
    for (int k = 0; k < 10; k++)
        expect_route(b, NULL, 1000, CHOICE_SEND, 30 + k);
    /* Queues by length, then index: 30, 31, ... 39, 30, 31, ... */
    for (int k = 0; k < 20; k++) {
        waiter_init(&r[k], &w, &r[k]);
        expect_route(b, &r[k], 1000, CHOICE_QUEUE, 30 + k % 10);
    }
    waiter_init(&r[20], &w, &r[20]);
    expect_none(b, &r[20], 1000, CHOICE_FULL);
    for (int k = 0; k < 20; k++)
        backends_leave(b, &r[k]);
    for (int k = 30; k < N; k++) {
        assert_counts(b, k, 1, 0);
        done(b, k);
    }
    worker_free(&w);
    backends_unref(b);
}

/* ---- many threads ---- */

#define THREADS 4
#define ITERS 2000
#define MAX_INFLIGHT 3
/* Per thread, requests routed and not yet over: 1 and 4 in turns of 200
 * iterations, so that the queue fills (4 * 4 for 3 slots) and empties. */
#define OUTSTANDING(i) (((i) / 200) % 2 ? 4u : 1u)

enum tw { TW_NONE, TW_QUEUED, TW_LEFT, TW_TAKEN, TW_OVER };

struct thread_ctx {
    struct backends *b;
    struct worker w;
    struct route_waiter *rw; /* ITERS */
    unsigned char *st;       /* ITERS: enum tw */
    size_t *pending;         /* ITERS: indexes of queued waiters not yet taken */
    size_t npending;
    unsigned held; /* slots held: sent, or granted and taken */
    uint64_t seed;
    unsigned long sent, queued, granted, left, full, wakes;
    unsigned max_seen;
    char err[200];
};

static atomic_bool go;

static uint64_t rnd(struct thread_ctx *t)
{
    t->seed ^= t->seed << 13;
    t->seed ^= t->seed >> 7;
    t->seed ^= t->seed << 17;
    return t->seed;
}

static void check_inflight(struct thread_ctx *t)
{
    struct backend_stats st;
    backends_stats(t->b, 0, &st);
    if (st.inflight > t->max_seen)
        t->max_seen = st.inflight;
    if (st.inflight > MAX_INFLIGHT && !t->err[0])
        snprintf(t->err, sizeof t->err, "inflight %u > %u", st.inflight, MAX_INFLIGHT);
}

static void drop_pending(struct thread_ctx *t, size_t i)
{
    for (size_t k = 0; k < t->npending; k++) {
        if (t->pending[k] == i) {
            memmove(&t->pending[k], &t->pending[k + 1], (t->npending - k - 1) * sizeof *t->pending);
            t->npending--;
            return;
        }
    }
    if (!t->err[0])
        snprintf(t->err, sizeof t->err, "waiter %zu granted but not pending", i);
}

static void take_grants(struct thread_ctx *t)
{
    uint64_t v;
    if (read(t->w.efd, &v, sizeof v) == (ssize_t)sizeof v)
        t->wakes += v;
    struct route_waiter *next;
    for (struct route_waiter *g = route_inbox_take(&t->w.in); g; g = next) {
        next = g->next;
        g->next = NULL;
        uintptr_t off = (uintptr_t)g - (uintptr_t)t->rw;
        size_t i = (size_t)(off / sizeof *g);
        if (off % sizeof *g || i >= ITERS) {
            snprintf(t->err, sizeof t->err, "a waiter of another thread in this inbox");
            continue;
        }
        if (g->state != WAITER_GRANTED || t->st[i] != TW_QUEUED) {
            if (!t->err[0])
                snprintf(t->err, sizeof t->err, "waiter %zu granted in state %d/%d", i,
                         (int)g->state, (int)t->st[i]);
            continue;
        }
        backends_taken(g->table, g);
        t->st[i] = TW_TAKEN;
        t->granted++;
        t->held++;
        drop_pending(t, i);
    }
}

static void end_one(struct thread_ctx *t)
{
    if (!t->held)
        return;
    t->held--;
    backends_done(t->b, 0, "m", false, true, 1000);
    check_inflight(t);
}

/* Leave the oldest pending waiter: queued, or perhaps granted meanwhile by
 * another thread and in the inbox. Either way it must never be taken. */
static void leave_one(struct thread_ctx *t)
{
    if (!t->npending)
        return;
    size_t i = t->pending[0];
    backends_leave(t->b, &t->rw[i]);
    if (t->rw[i].state != WAITER_IDLE && !t->err[0])
        snprintf(t->err, sizeof t->err, "waiter %zu not idle after leaving", i);
    t->st[i] = TW_LEFT;
    t->left++;
    memmove(&t->pending[0], &t->pending[1], (t->npending - 1) * sizeof *t->pending);
    t->npending--;
    check_inflight(t);
}

static void wait_a_little(struct thread_ctx *t)
{
    struct pollfd p = {.fd = t->w.efd, .events = POLLIN};
    (void)poll(&p, 1, 1);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *thread_main(void *arg)
{
    struct thread_ctx *t = arg;
    struct route_ask ask = ask_m();
    while (!atomic_load(&go))
        ;
    int64_t deadline = mono_ms() + 30000;
    for (size_t i = 0; i < ITERS && !t->err[0]; i++) {
        /* Make room: end some requests, take the grants. */
        while (t->held + t->npending >= OUTSTANDING(i) && !t->err[0]) {
            take_grants(t);
            if (t->held) {
                end_one(t);
            } else if (rnd(t) % 8 == 0) {
                leave_one(t);
            } else {
                if (mono_ms() > deadline) {
                    snprintf(t->err, sizeof t->err, "stuck: %zu waiting", t->npending);
                    break;
                }
                wait_a_little(t);
            }
        }
        waiter_init(&t->rw[i], &t->w, t);
        int idx;
        size_t name;
        enum choice_outcome o = backends_route(t->b, &ask, &t->rw[i], 1000, &idx, &name, NULL);
        check_inflight(t);
        if (o == CHOICE_SEND) {
            t->sent++;
            t->held++;
        } else if (o == CHOICE_QUEUE) {
            t->queued++;
            t->st[i] = TW_QUEUED;
            t->pending[t->npending++] = i;
        } else {
            t->full++;
        }
        uint64_t r = rnd(t) % 16;
        if (r < 5)
            end_one(t);
        else if (r < 10)
            take_grants(t);
        else if (r == 10)
            leave_one(t);
        else if (r == 11)
            sched_yield();
    }
    /* Drain: end everything held; wait for what is queued. */
    while ((t->held || t->npending) && !t->err[0]) {
        take_grants(t);
        while (t->held)
            end_one(t);
        if (t->npending) {
            if (mono_ms() > deadline) {
                snprintf(t->err, sizeof t->err, "stuck draining: %zu waiting", t->npending);
                break;
            }
            wait_a_little(t);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct backends *b = table1(MAX_INFLIGHT, 1000);
    up_m(b, 0, true);
    static struct thread_ctx t[THREADS];
    pthread_t th[THREADS];
    atomic_store(&go, false);
    for (int k = 0; k < THREADS; k++) {
        memset(&t[k], 0, sizeof t[k]);
        t[k].b = b;
        worker_init(&t[k].w);
        t[k].rw = calloc(ITERS, sizeof *t[k].rw);
        t[k].st = calloc(ITERS, 1);
        t[k].pending = calloc(ITERS, sizeof *t[k].pending);
        assert_non_null(t[k].rw);
        assert_non_null(t[k].st);
        assert_non_null(t[k].pending);
        t[k].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(k + 1);
        assert_int_equal(pthread_create(&th[k], NULL, thread_main, &t[k]), 0);
    }
    atomic_store(&go, true);
    for (int k = 0; k < THREADS; k++)
        assert_int_equal(pthread_join(th[k], NULL), 0);

    unsigned long queued = 0, granted = 0, sent = 0, left = 0;
    for (int k = 0; k < THREADS; k++) {
        if (t[k].err[0])
            fail_msg("thread %d: %s", k, t[k].err);
        assert_int_equal(t[k].full, 0); /* at most 4 * 4 outstanding for 1003 places */
        assert_true(t[k].max_seen <= MAX_INFLIGHT);
        assert_int_equal(t[k].held, 0);
        assert_int_equal(t[k].npending, 0);
        assert_int_equal(t[k].sent + t[k].queued, ITERS);
        assert_int_equal(t[k].queued, t[k].granted + t[k].left);
        /* Every waiter queued and not left was granted exactly once. */
        for (size_t i = 0; i < ITERS; i++) {
            if (t[k].st[i] == TW_QUEUED)
                fail_msg("thread %d: waiter %zu never granted", k, i);
            if (t[k].st[i] != TW_NONE)
                assert_int_equal(t[k].rw[i].state, WAITER_IDLE);
        }
        queued += t[k].queued;
        granted += t[k].granted;
        sent += t[k].sent;
        left += t[k].left;
    }
    assert_counts(b, 0, 0, 0);
    /* The queue was used, and so was leaving it. */
    assert_true(queued > 100);
    assert_true(granted > 100);
    assert_true(left > 0);
    print_message("threads: %lu sent, %lu queued, %lu granted, %lu left\n", sent, queued, granted,
                  left);
    for (int k = 0; k < THREADS; k++) {
        worker_free(&t[k].w);
        free(t[k].rw);
        free(t[k].st);
        free(t[k].pending);
    }
    backends_unref(b);
}

static void test_caps_parse(void **state)
{
    (void)state;
    unsigned caps = 99;
    const char *j = "{\"license\":\"x\",\"capabilities\":[\"completion\",\"tools\",\"thinking\"]}";
    assert_int_equal(backends_parse_caps(j, strlen(j), &caps), 0);
    assert_int_equal(caps, MODEL_CAP_COMPLETION | MODEL_CAP_TOOLS | MODEL_CAP_THINKING);
    j = "{\"capabilities\":[\"embedding\",\"some-future-thing\",3,null,\"vision\",\"insert\"]}";
    assert_int_equal(backends_parse_caps(j, strlen(j), &caps), 0);
    assert_int_equal(caps, MODEL_CAP_EMBEDDING | MODEL_CAP_VISION | MODEL_CAP_INSERT);
    j = "{\"capabilities\":[]}";
    assert_int_equal(backends_parse_caps(j, strlen(j), &caps), 0);
    assert_int_equal(caps, 0);
    /* An Ollama that lists none, or not an answer at all. */
    const char *bad[] = {"{\"license\":\"x\"}", "{\"capabilities\":\"thinking\"}", "[]", "nope",
                         ""};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        assert_int_equal(backends_parse_caps(bad[k], strlen(bad[k]), &caps), -1);
    /* Not NUL-terminated: only len bytes are read. */
    j = "{\"capabilities\":[\"thinking\"]}XYZ";
    assert_int_equal(backends_parse_caps(j, strlen(j) - 3, &caps), 0);
    assert_int_equal(caps, MODEL_CAP_THINKING);
}

static void test_route_says_thinking(void **state)
{
    (void)state;
    const struct lim l[2] = {{0, 10, 1}, {0, 10, 1}};
    struct backends *b = table(2, l, 5);
    static const char *const models[] = {"llama3.2:latest", "qwen3:latest"};
    up(b, 0, models, 2, models, 2);
    up(b, 1, models, 2, NULL, 0);
    static const char *const llama[] = {"llama3.2"}, *const qwen[] = {"qwen3"};
    struct route_ask al = {.names = llama, .nnames = 1}, aq = {.names = qwen, .nnames = 1};
    int idx;
    size_t name;
    enum backend_thinking th = THINKING_YES;

    /* Not shown yet: unknown (the switch then passes as asked). */
    assert_int_equal(backends_route(b, &al, NULL, 1000, &idx, &name, &th), CHOICE_SEND);
    assert_int_equal(idx, 0);
    assert_int_equal(th, THINKING_UNKNOWN);
    backends_done(b, idx, llama[name], false, false, 1000);

    /* Shown: per backend and model, under Ollama's name rules. */
    assert_int_equal(backends_set_caps(b, 0, "llama3.2", MODEL_CAP_COMPLETION | MODEL_CAP_TOOLS),
                     0);
    assert_int_equal(backends_set_caps(b, 0, "qwen3:latest", MODEL_CAP_THINKING), 0);
    assert_int_equal(backends_set_caps(b, 1, "llama3.2:latest", MODEL_CAP_THINKING), 0);
    assert_int_equal(backends_set_caps(b, 0, "mistral", MODEL_CAP_THINKING), -1);
    assert_int_equal(backends_set_caps(b, 2, "llama3.2", MODEL_CAP_THINKING), -1);
    assert_int_equal(backends_route(b, &al, NULL, 1000, &idx, &name, &th), CHOICE_SEND);
    assert_int_equal(idx, 0);
    assert_int_equal(th, THINKING_NO);
    backends_done(b, idx, llama[name], false, false, 1000);
    assert_int_equal(backends_route(b, &aq, NULL, 1000, &idx, &name, &th), CHOICE_SEND);
    assert_int_equal(idx, 0);
    assert_int_equal(th, THINKING_YES);
    backends_done(b, idx, qwen[name], false, false, 1000);

    /* Failover to backend 1 (0 tried): the other backend's own capability. */
    int tried[] = {0};
    al.tried = tried;
    al.ntried = 1;
    assert_int_equal(backends_route(b, &al, NULL, 1000, &idx, &name, &th), CHOICE_SEND);
    assert_int_equal(idx, 1);
    assert_int_equal(th, THINKING_YES);
    backends_done(b, idx, llama[name], false, false, 1000);
    al.tried = NULL;
    al.ntried = 0;

    /* A grant asks again, backend by backend; NULL is allowed. */
    th = THINKING_UNKNOWN;
    assert_int_equal(backends_name_on(b, 0, &al, &th), 0);
    assert_int_equal(th, THINKING_NO);
    assert_int_equal(backends_name_on(b, 1, &al, &th), 0);
    assert_int_equal(th, THINKING_YES);
    assert_int_equal(backends_name_on(b, 1, &aq, &th), 0);
    assert_int_equal(th, THINKING_UNKNOWN);
    assert_int_equal(backends_name_on(b, 1, &aq, NULL), 0);

    /* A list set without discovery (no digests to match) starts unknown. */
    up(b, 0, models, 2, models, 2);
    assert_int_equal(backends_name_on(b, 0, &al, &th), 0);
    assert_int_equal(th, THINKING_UNKNOWN);
    backends_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_until_full_then_fifo),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_max_queue_zero),
        cmocka_unit_test(test_no_limit_never_queues),
        cmocka_unit_test(test_leave_queued),
        cmocka_unit_test(test_leave_granted_passes_slot),
        cmocka_unit_test(test_leave_granted_in_middle),
        cmocka_unit_test(test_two_inboxes),
        cmocka_unit_test(test_lower_max_inflight_drains),
        cmocka_unit_test(test_raise_max_inflight),
        cmocka_unit_test(test_raise_max_inflight_grants_queued),
        cmocka_unit_test(test_loaded_preferred),
        cmocka_unit_test(test_queue_prefers_loaded),
        cmocka_unit_test(test_cold_load_draws_requests),
        cmocka_unit_test(test_warm_expires),
        cmocka_unit_test(test_cold_done_unanswered),
        cmocka_unit_test(test_begin_in_ps),
        cmocka_unit_test(test_alias_names),
        cmocka_unit_test(test_only_and_tried),
        cmocka_unit_test(test_down_backends),
        cmocka_unit_test(test_many_backends),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_caps_parse),
        cmocka_unit_test(test_route_says_thinking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
