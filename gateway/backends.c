#include "backends.h"

#include "log.h"
#include "router.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DISCOVERY_BODY_MAX (8u << 20) /* a /api/tags answer with thousands of models */
#define FAILURES_TO_MARK_DOWN 3       /* requests refused in a row */
/* A busy Ollama can be slow to answer /api/tags; a backend that answers late
 * or with an error is taken out only after this many polls in a row. One that
 * refuses the connection (nothing listens) is taken out at once. */
#define POLLS_TO_MARK_DOWN 3

enum poll_result { POLL_OK, POLL_REFUSED, POLL_FAILED };

struct model_entry {
    char *name; /* owned, as the backend lists it */
    long modified;
};

struct backend {
    const struct cfg_backend *conf; /* borrowed from cfg */
    bool up;
    int failures;               /* request failures since the last good poll */
    int poll_failures;          /* polls failed in a row */
    bool polled;                /* at least one poll has finished */
    struct model_entry *models; /* owned */
    size_t nmodels;
};

struct backends {
    atomic_uint refs;
    struct cfg *cfg; /* a reference */
    struct backend *v;
    size_t n;
    pthread_rwlock_t lock; /* guards every struct backend field but conf */
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
    bool stopping;
    bool poke; /* poll now: a backend was just marked down */
    bool thread_started;
    pthread_t thread;
};

static void free_models(struct model_entry *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(m[i].name);
    free(m);
}

struct backends *backends_new(struct cfg *cfg)
{
    struct backends *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->cfg = cfg_ref(cfg);
    b->n = cfg->nbackends;
    b->v = calloc(b->n ? b->n : 1, sizeof *b->v);
    if (!b->v) {
        cfg_unref(b->cfg);
        free(b);
        return NULL;
    }
    for (size_t i = 0; i < b->n; i++)
        b->v[i].conf = &cfg->backends[i];
    pthread_rwlock_init(&b->lock, NULL);
    pthread_mutex_init(&b->wake_lock, NULL);
    pthread_cond_init(&b->wake, NULL);
    return b;
}

struct backends *backends_ref(struct backends *b)
{
    if (b)
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void backends_unref(struct backends *b)
{
    if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    backends_stop(b);
    for (size_t i = 0; i < b->n; i++)
        free_models(b->v[i].models, b->v[i].nmodels);
    free(b->v);
    pthread_rwlock_destroy(&b->lock);
    pthread_mutex_destroy(&b->wake_lock);
    pthread_cond_destroy(&b->wake);
    cfg_unref(b->cfg);
    free(b);
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

bool backends_same_config(const struct cfg *a, const struct cfg *b)
{
    if (a->nbackends != b->nbackends || a->discovery_interval_s != b->discovery_interval_s)
        return false;
    for (size_t i = 0; i < a->nbackends; i++) {
        const struct cfg_backend *x = &a->backends[i], *y = &b->backends[i];
        if (!str_eq(x->name, y->name) || !str_eq(x->url, y->url) ||
            x->max_inflight != y->max_inflight || x->weight != y->weight ||
            x->nheaders != y->nheaders)
            return false;
        for (size_t h = 0; h < x->nheaders; h++)
            if (!str_eq(x->headers[h], y->headers[h]))
                return false;
    }
    return true;
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    struct buf *out = ud;
    return buf_append(out, p, size * n) < 0 ? 0 : size * n;
}

/* GET url+path into out. Blocking: discovery thread only. *why gets a short
 * reason for the log when the result is not POLL_OK. */
static enum poll_result http_get(const struct cfg_backend *be, const char *path, struct buf *out,
                                 char *why, size_t whysize)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", be->url, path);
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, whysize, "out of memory");
        return POLL_FAILED;
    }
    struct curl_slist *hdrs = NULL;
    for (const char *const *h = be->headers; h && *h; h++)
        hdrs = curl_slist_append(hdrs, *h);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    if (rc == CURLE_OK && status == 200)
        return POLL_OK;
    if (rc != CURLE_OK)
        snprintf(why, whysize, "%s %s", path, curl_easy_strerror(rc));
    else
        snprintf(why, whysize, "%s answered HTTP %ld", path, status);
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ? POLL_REFUSED
                                                                           : POLL_FAILED;
}

static long parse_rfc3339(const char *s)
{
    struct tm tm = {0};
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return (long)timegm(&tm);
}

/* Parse {"models":[{"name":…,"modified_at":…}]} into a fresh array. */
static int parse_tags(const struct buf *body, struct model_entry **out, size_t *nout)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body->p ? body->p : "", body->len, &end, 0);
    cJSON *models = cJSON_GetObjectItemCaseSensitive(root, "models");
    if (!cJSON_IsArray(models) && !cJSON_IsNull(models)) {
        cJSON_Delete(root);
        return -1;
    }
    size_t n = (size_t)cJSON_GetArraySize(models), k = 0;
    struct model_entry *m = calloc(n ? n : 1, sizeof *m);
    if (!m) {
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, models)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (!cJSON_IsString(name))
            name = cJSON_GetObjectItemCaseSensitive(it, "model");
        if (!cJSON_IsString(name) || !name->valuestring[0])
            continue;
        m[k].name = strdup(name->valuestring);
        if (!m[k].name)
            break;
        m[k].modified = parse_rfc3339(
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "modified_at")));
        k++;
    }
    cJSON_Delete(root);
    *out = m;
    *nout = k;
    return 0;
}

static void poll_one(struct backends *b, size_t i)
{
    struct backend *be = &b->v[i];
    struct buf body;
    buf_init(&body, DISCOVERY_BODY_MAX);
    struct model_entry *models = NULL;
    size_t nmodels = 0;
    char why[192] = "";
    enum poll_result res = http_get(be->conf, "/api/tags", &body, why, sizeof why);
    if (res == POLL_OK && parse_tags(&body, &models, &nmodels) < 0) {
        snprintf(why, sizeof why, "/api/tags answered something that is not a model list");
        res = POLL_FAILED;
    }
    buf_free(&body);

    pthread_rwlock_wrlock(&b->lock);
    bool was_up = be->up;
    if (res == POLL_OK) {
        free_models(be->models, be->nmodels);
        be->models = models;
        be->nmodels = nmodels;
        be->up = true;
        be->failures = 0;
        be->poll_failures = 0;
    } else if (res == POLL_REFUSED || ++be->poll_failures >= POLLS_TO_MARK_DOWN) {
        be->up = false;
    }
    bool is_up = be->up;
    bool first = !be->polled;
    be->polled = true;
    pthread_rwlock_unlock(&b->lock);
    if (first && !is_up)
        log_warn("backend %s (%s) is not answering (%s): requests get 503 until it does",
                 be->conf->name, be->conf->url, why);
    if (is_up && !was_up)
        log_info("backend %s (%s) is up with %zu models", be->conf->name, be->conf->url, nmodels);
    else if (!is_up && was_up)
        log_warn("backend %s (%s) is down: %s", be->conf->name, be->conf->url, why);
    else if (res != POLL_OK && is_up)
        log_warn("backend %s (%s): %s; still in service", be->conf->name, be->conf->url, why);
}

void backends_poll_all(struct backends *b)
{
    for (size_t i = 0; i < b->n; i++)
        poll_one(b, i);
}

static void *discovery_main(void *arg)
{
    struct backends *b = arg;
    for (;;) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += b->cfg->discovery_interval_s;
        pthread_mutex_lock(&b->wake_lock);
        while (!b->stopping && !b->poke) {
            if (pthread_cond_timedwait(&b->wake, &b->wake_lock, &until))
                break;
        }
        b->poke = false;
        bool stop = b->stopping;
        pthread_mutex_unlock(&b->wake_lock);
        if (stop)
            return NULL;
        backends_poll_all(b);
    }
}

int backends_start(struct backends *b)
{
    if (pthread_create(&b->thread, NULL, discovery_main, b))
        return -1;
    b->thread_started = true;
    return 0;
}

void backends_stop(struct backends *b)
{
    if (!b->thread_started)
        return;
    pthread_mutex_lock(&b->wake_lock);
    b->stopping = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->wake_lock);
    pthread_join(b->thread, NULL);
    b->thread_started = false;
}

static bool backend_has(const struct backend *be, const char *model)
{
    for (size_t k = 0; k < be->nmodels; k++)
        if (router_model_eq(be->models[k].name, model))
            return true;
    return false;
}

int backends_pick(struct backends *b, const char *model, bool *any_up)
{
    int found = -1;
    bool up = false;
    pthread_rwlock_rdlock(&b->lock);
    for (size_t i = 0; i < b->n && found < 0; i++) {
        if (!b->v[i].up)
            continue;
        up = true;
        if (backend_has(&b->v[i], model))
            found = (int)i;
    }
    pthread_rwlock_unlock(&b->lock);
    if (any_up)
        *any_up = up;
    return found;
}

bool backends_any_up(struct backends *b)
{
    bool up = false;
    pthread_rwlock_rdlock(&b->lock);
    for (size_t i = 0; i < b->n && !up; i++)
        up = b->v[i].up;
    pthread_rwlock_unlock(&b->lock);
    return up;
}

void backends_report_failure(struct backends *b, int idx)
{
    if (idx < 0 || (size_t)idx >= b->n)
        return;
    bool went_down = false;
    pthread_rwlock_wrlock(&b->lock);
    struct backend *be = &b->v[idx];
    if (be->up && ++be->failures >= FAILURES_TO_MARK_DOWN) {
        be->up = false;
        went_down = true;
    }
    pthread_rwlock_unlock(&b->lock);
    if (went_down) {
        log_warn("backend %s marked down after %d failed requests", be->conf->name,
                 FAILURES_TO_MARK_DOWN);
        /* Let discovery look again now rather than at the next interval. */
        pthread_mutex_lock(&b->wake_lock);
        b->poke = true;
        pthread_cond_signal(&b->wake);
        pthread_mutex_unlock(&b->wake_lock);
    }
}

void backends_each_model(struct backends *b, void (*fn)(void *ud, const char *name, long modified),
                         void *ud)
{
    pthread_rwlock_rdlock(&b->lock);
    for (size_t i = 0; i < b->n; i++) {
        if (!b->v[i].up)
            continue;
        for (size_t k = 0; k < b->v[i].nmodels; k++) {
            const char *name = b->v[i].models[k].name;
            bool seen = false;
            /* Report a model once however many backends have it. */
            for (size_t j = 0; j < i && !seen; j++)
                seen = b->v[j].up && backend_has(&b->v[j], name);
            if (!seen)
                fn(ud, name, b->v[i].models[k].modified);
        }
    }
    pthread_rwlock_unlock(&b->lock);
}
