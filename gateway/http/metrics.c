#include "metrics.h"

#include "clock.h"
#include "handler.h"
#include "keys.h"
#include "request.h"
#include "router.h"
#include "routes.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* 5 ms .. 5 min, and 10 ms .. 2 min, in microseconds */
const uint64_t metrics_duration_bounds[METRICS_DURATION_BUCKETS] = {
    5000,    10000,   25000,    50000,    100000,   250000,    500000,   1000000,
    2500000, 5000000, 10000000, 30000000, 60000000, 120000000, 300000000};
const uint64_t metrics_ttft_bounds[METRICS_TTFT_BUCKETS] = {
    10000,   25000,   50000,    100000,   250000,   500000,   1000000,
    2500000, 5000000, 10000000, 20000000, 30000000, 60000000, 120000000};

_Static_assert(sizeof(struct metrics_error) <= SEQRING_RECORD, "a recent error fits a ring slot");

static int histo_init(struct metrics_histo *h, size_t nroutes, size_t nbounds)
{
    h->nbounds = nbounds;
    h->bucket = calloc(nroutes * (nbounds + 1), sizeof *h->bucket);
    h->sum = calloc(nroutes, sizeof *h->sum);
    if (!h->bucket || !h->sum)
        return -1;
    for (size_t i = 0; i < nroutes * (nbounds + 1); i++)
        atomic_init(&h->bucket[i], 0);
    for (size_t i = 0; i < nroutes; i++)
        atomic_init(&h->sum[i], 0);
    return 0;
}

static void histo_free(struct metrics_histo *h)
{
    free(h->bucket);
    free(h->sum);
}

/* Owner only. */
static void histo_observe(struct metrics_histo *h, const uint64_t *bounds, size_t route,
                          uint64_t us)
{
    size_t i = 0;
    while (i < h->nbounds && us > bounds[i])
        i++;
    ctab_bump(&h->bucket[route * (h->nbounds + 1) + i], 1);
    ctab_bump(&h->sum[route], us);
}

static void mworker_free(struct metrics_worker *mw)
{
    if (!mw)
        return;
    ctab_free(&mw->requests);
    ctab_free(&mw->usage);
    ctab_free(&mw->failovers);
    histo_free(&mw->duration);
    histo_free(&mw->ttft);
    seqring_free(&mw->errors);
    free(mw);
}

static struct metrics_worker *mworker_new(size_t nroutes)
{
    /* its own cache lines: workers never write next to each other */
    size_t size = (sizeof(struct metrics_worker) + 63) / 64 * 64;
    struct metrics_worker *mw = aligned_alloc(64, size);
    if (!mw)
        return NULL;
    memset(mw, 0, size);
    atomic_uint_least64_t *c[] = {
        &mw->started,       &mw->finished,          &mw->upstream_cancels,
        &mw->auth_failures, &mw->guard_refusals,    &mw->guard_blocks,
        &mw->prompt_tokens, &mw->completion_tokens, &mw->shared_fallbacks};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        atomic_init(c[i], 0);
    if (ctab_init(&mw->requests, 3, METRICS_SERIES) < 0 ||
        ctab_init(&mw->usage, 3, METRICS_SERIES) < 0 ||
        ctab_init(&mw->failovers, 1, METRICS_SERIES) < 0 ||
        histo_init(&mw->duration, nroutes, METRICS_DURATION_BUCKETS) < 0 ||
        histo_init(&mw->ttft, nroutes, METRICS_TTFT_BUCKETS) < 0 ||
        seqring_init(&mw->errors, METRICS_ERRORS) < 0) {
        mworker_free(mw);
        return NULL;
    }
    return mw;
}

struct metrics *metrics_new(unsigned nworkers, int64_t started_s)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->nworkers = nworkers;
    m->nroutes = routes_metric_count();
    m->started_s = started_s;
    atomic_init(&m->reloads_ok, 0);
    atomic_init(&m->reloads_failed, 0);
    atomic_init(&m->keys_reloads_ok, 0);
    atomic_init(&m->keys_reloads_failed, 0);
    atomic_init(&m->last_reload_s, 0);
    atomic_init(&m->last_reload_ok, true);
    m->w = calloc(nworkers ? nworkers : 1, sizeof *m->w);
    if (!m->w)
        goto fail;
    for (unsigned i = 0; i < nworkers; i++)
        if (!(m->w[i] = mworker_new(m->nroutes)))
            goto fail;
    return m;
fail:
    metrics_free(m);
    return NULL;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    for (unsigned i = 0; m->w && i < m->nworkers; i++)
        mworker_free(m->w[i]);
    free(m->w);
    free(m);
}

static struct metrics_worker *of_worker(struct worker *w)
{
    const struct http_shared *h = w->gw->app;
    if (!h || !h->metrics || w->id < 0 || (unsigned)w->id >= h->metrics->nworkers)
        return NULL;
    return h->metrics->w[w->id];
}

void metrics_started(struct worker *w)
{
    struct metrics_worker *mw = of_worker(w);
    if (mw)
        ctab_bump(&mw->started, 1);
}

/* The entry for labels, or for folded ones (model and key "") once the table
 * is nearly full; NULL when even that cannot be had (memory ran out). */
static struct ctab_entry *series(struct ctab *t, const char *const *labels, const char *const *fold)
{
    struct ctab_entry *e = ctab_get(t, labels, ctab_published(t) < METRICS_FOLD_AT);
    return e ? e : ctab_get(t, fold, true);
}

static void record_error(struct metrics_worker *mw, const struct request *r, size_t route,
                         int status)
{
    struct metrics_error e = {.route = (uint16_t)route, .status = (uint16_t)status};
    struct timeval tv;
    gettimeofday(&tv, NULL);
    e.ts_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    /* apierr messages name key ids (public) and model names, never a
     * secret or what a prompt said */
    const char *msg = r->err.status ? r->err.message : "";
    size_t n = strlen(msg);
    if (n >= sizeof e.message) {
        n = sizeof e.message - 1;
        while (n && ((unsigned char)msg[n] & 0xc0) == 0x80) /* not inside a character */
            n--;
    }
    memcpy(e.message, msg, n);
    e.message[n] = '\0';
    seqring_push(&mw->errors, &e, sizeof e);
}

void metrics_account(const struct request *r, enum MHD_RequestTerminationCode toe)
{
    struct metrics_worker *mw = of_worker(r->w);
    if (!mw)
        return;
    int status = request_status(r, toe);
    size_t route = routes_metric_index(r->route);
    /* the model as one name, however the client spelled it (case, tag,
     * registry...): its spellings would otherwise each be a series */
    char canon[METRICS_MODEL_MAX];
    const char *model = "";
    if (r->model_known && r->model)
        model = r->alias                                                 ? r->alias->name
                : router_model_label(r->model, canon, sizeof canon) >= 0 ? canon
                                                                         : "";
    char code[4] = "999"; /* no printf on this path: statuses are 100..999 */
    if (status >= 100 && status <= 999) {
        code[0] = (char)('0' + status / 100);
        code[1] = (char)('0' + status / 10 % 10);
        code[2] = (char)('0' + status % 10);
    }

    const char *rl[3] = {routes_metric_label(route), model, code};
    const char *rf[3] = {rl[0], "", code};
    struct ctab_entry *e = series(&mw->requests, rl, rf);
    if (e)
        ctab_add(e, MV_REQUESTS, 1);

    long prompt, completion;
    request_tokens(r, &prompt, &completion);
    prompt = prompt > 0 ? prompt : 0;
    completion = completion > 0 ? completion : 0;
    if (r->key || prompt || completion) {
        const char *ul[3] = {model, r->key ? r->key->name : "", r->key ? r->key->id : ""};
        const char *uf[3] = {"", "", ""};
        e = series(&mw->usage, ul, uf);
        if (e) {
            ctab_add(e, MV_USE_REQUESTS, 1);
            ctab_add(e, MV_USE_PROMPT, (uint64_t)prompt);
            ctab_add(e, MV_USE_COMPLETION, (uint64_t)completion);
        }
        ctab_bump(&mw->prompt_tokens, (uint64_t)prompt);
        ctab_bump(&mw->completion_tokens, (uint64_t)completion);
    }

    for (unsigned i = 0; i < r->failovers && i < r->attempts; i++) {
        const char *bl[1] = {r->cfg->backends[r->tried[i]].name};
        const char *bf[1] = {""};
        e = series(&mw->failovers, bl, bf);
        if (e)
            ctab_add(e, 0, 1);
    }

    int64_t now = now_us();
    histo_observe(&mw->duration, metrics_duration_bounds, route,
                  (uint64_t)(now > r->t_start_us ? now - r->t_start_us : 0));
    /* in ms, as the access log's ttft_ms: the first line's time is taken
     * on the relay's path, which pays for no finer clock */
    if (r->t_first)
        histo_observe(&mw->ttft, metrics_ttft_bounds, route,
                      (uint64_t)(r->t_first > r->t_start ? r->t_first - r->t_start : 0) * 1000);

    if (r->cancelled_upstream)
        ctab_bump(&mw->upstream_cancels, 1);
    if (r->auth_failed)
        ctab_bump(&mw->auth_failures, 1);
    if (r->guard_refused)
        ctab_bump(&mw->guard_refusals, 1);
    if (r->guard_blocked)
        ctab_bump(&mw->guard_blocks, 1);
    if (r->rl_fallback)
        ctab_bump(&mw->shared_fallbacks, 1);
    if (status >= 400)
        record_error(mw, r, route, status);
    /* last: a scrape that sees it finished sees it counted */
    atomic_store_explicit(&mw->finished,
                          atomic_load_explicit(&mw->finished, memory_order_relaxed) + 1,
                          memory_order_release);
}

void metrics_reloaded(struct metrics *m, bool keys_only, bool ok)
{
    if (!m)
        return;
    atomic_uint_least64_t *c = keys_only ? (ok ? &m->keys_reloads_ok : &m->keys_reloads_failed)
                                         : (ok ? &m->reloads_ok : &m->reloads_failed);
    ctab_bump(c, 1);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    atomic_store_explicit(&m->last_reload_s, tv.tv_sec, memory_order_relaxed);
    atomic_store_explicit(&m->last_reload_ok, ok, memory_order_relaxed);
}

static uint64_t load(const atomic_uint_least64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Add every entry of src into dst (owned by the caller's thread). */
static int merge(struct ctab *dst, const struct ctab *src)
{
    size_t n = ctab_published(src);
    for (size_t i = 0; i < n; i++) {
        const struct ctab_entry *e = ctab_at(src, i);
        struct ctab_entry *d = ctab_get(dst, e->label, true);
        if (!d)
            return -1;
        for (unsigned k = 0; k < CTAB_VALUES; k++)
            ctab_add(d, k, ctab_value(e, k));
    }
    return 0;
}

static void merge_histo(uint64_t *dst, uint64_t *dst_sum, const struct metrics_histo *h,
                        size_t nroutes)
{
    for (size_t i = 0; i < nroutes * (h->nbounds + 1); i++)
        dst[i] += load(&h->bucket[i]);
    for (size_t i = 0; i < nroutes; i++)
        dst_sum[i] += load(&h->sum[i]);
}

int metrics_sum(const struct metrics *m, struct metrics_sums *s)
{
    memset(s, 0, sizeof *s);
    size_t cap = (size_t)METRICS_SERIES * (m->nworkers ? m->nworkers : 1);
    s->nroutes = m->nroutes;
    if (ctab_init(&s->requests, 3, cap) < 0 || ctab_init(&s->usage, 3, cap) < 0 ||
        ctab_init(&s->failovers, 1, cap) < 0)
        goto fail;
    s->duration = calloc(m->nroutes * (METRICS_DURATION_BUCKETS + 1), sizeof *s->duration);
    s->duration_sum = calloc(m->nroutes, sizeof *s->duration_sum);
    s->ttft = calloc(m->nroutes * (METRICS_TTFT_BUCKETS + 1), sizeof *s->ttft);
    s->ttft_sum = calloc(m->nroutes, sizeof *s->ttft_sum);
    if (!s->duration || !s->duration_sum || !s->ttft || !s->ttft_sum)
        goto fail;
    for (unsigned i = 0; i < m->nworkers; i++) {
        const struct metrics_worker *mw = m->w[i];
        /* finished first, with acquire: everything that request counted is
         * seen below; started after it, so started >= finished */
        s->finished += atomic_load_explicit(&mw->finished, memory_order_acquire);
        s->started += load(&mw->started);
        s->upstream_cancels += load(&mw->upstream_cancels);
        s->auth_failures += load(&mw->auth_failures);
        s->guard_refusals += load(&mw->guard_refusals);
        s->guard_blocks += load(&mw->guard_blocks);
        s->shared_fallbacks += load(&mw->shared_fallbacks);
        s->prompt_tokens += load(&mw->prompt_tokens);
        s->completion_tokens += load(&mw->completion_tokens);
        if (merge(&s->requests, &mw->requests) < 0 || merge(&s->usage, &mw->usage) < 0 ||
            merge(&s->failovers, &mw->failovers) < 0)
            goto fail;
        merge_histo(s->duration, s->duration_sum, &mw->duration, m->nroutes);
        merge_histo(s->ttft, s->ttft_sum, &mw->ttft, m->nroutes);
    }
    return 0;
fail:
    metrics_sums_free(s);
    return -1;
}

void metrics_sums_free(struct metrics_sums *s)
{
    ctab_free(&s->requests);
    ctab_free(&s->usage);
    ctab_free(&s->failovers);
    free(s->duration);
    free(s->duration_sum);
    free(s->ttft);
    free(s->ttft_sum);
    memset(s, 0, sizeof *s);
}

void metrics_totals(const struct metrics *m, uint64_t *requests, uint64_t *tokens)
{
    uint64_t rq = 0, tk = 0;
    for (unsigned i = 0; i < m->nworkers; i++) {
        rq += atomic_load_explicit(&m->w[i]->finished, memory_order_acquire);
        tk += load(&m->w[i]->prompt_tokens) + load(&m->w[i]->completion_tokens);
    }
    *requests = rq;
    *tokens = tk;
}

size_t metrics_recent_errors(const struct metrics *m, struct metrics_error *out, size_t max)
{
    /* each worker's newest, then merged by time */
    size_t got = 0;
    unsigned char rec[METRICS_ERRORS][SEQRING_RECORD];
    for (unsigned i = 0; i < m->nworkers; i++) {
        size_t n = seqring_read(&m->w[i]->errors, rec, NULL, METRICS_ERRORS);
        for (size_t k = 0; k < n; k++) {
            struct metrics_error e;
            memcpy(&e, rec[k], sizeof e);
            e.message[sizeof e.message - 1] = '\0';
            /* insertion into out, newest first, keeping max */
            size_t at = got;
            while (at > 0 && out[at - 1].ts_ms < e.ts_ms)
                at--;
            if (at >= max)
                continue;
            size_t move = (got < max ? got : max - 1) - at;
            memmove(&out[at + 1], &out[at], move * sizeof *out);
            out[at] = e;
            if (got < max)
                got++;
        }
    }
    return got;
}
