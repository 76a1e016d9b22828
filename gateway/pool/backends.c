#include "backends.h"

#include "log.h"
#include "router.h"
#include "shared_dns.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DISCOVERY_BODY_MAX (8u << 20) /* a /api/tags answer with thousands of models */
#define FAILURES_TO_MARK_DOWN 3       /* requests refused in a row */
/* A busy Ollama can be slow to answer /api/tags; a backend that answers late
 * or with an error is taken out only after this many polls in a row. One that
 * refuses the connection (nothing listens) is taken out at once. */
#define POLLS_TO_MARK_DOWN 3
/* /api/show calls per backend per poll: a backend with hundreds of models is
 * asked about a few at a time, never all at once. */
#define SHOWS_PER_ROUND 4
#define SHOW_BODY_MAX (4u << 20) /* licenses, templates, model_info */
/* model_entry.caps before /api/show answered for the entry's digest, and
 * after an answer that listed no capabilities (asked once per digest). */
#define CAPS_UNASKED (-1)
#define CAPS_UNLISTED (-2)

enum poll_result { POLL_OK, POLL_REFUSED, POLL_FAILED };

struct model_entry {
    char *name; /* owned, as the backend lists it */
    long modified;
    char *json;   /* owned: the entry as the backend listed it (one line), or NULL */
    char *digest; /* owned: as /api/tags lists it, or NULL */
    int caps;     /* MODEL_CAP_* bits /api/show gave for this digest, or CAPS_* */
    /* A request was routed to it while its capabilities were unknown: the
     * next poll asks about it first. Set by workers under the read lock
     * (hence atomic), read by discovery. */
    atomic_bool wanted;
};

/* Routing state of one model on one backend (under the table's mutex). */
struct model_use {
    char *name;         /* owned, as sent */
    unsigned cold;      /* requests in flight that started a cold load */
    int64_t warm_until; /* monotonic ms: it answered recently, so it is loaded */
};

struct backend {
    const struct cfg_backend *conf; /* borrowed from cfg */
    /* discovery's, under the read-write lock */
    bool up;
    int failures;               /* request failures since the last good poll */
    int poll_failures;          /* polls failed in a row */
    bool polled;                /* at least one poll has finished */
    struct model_entry *models; /* owned: /api/tags */
    size_t nmodels;
    struct model_entry *loaded; /* owned: /api/ps */
    size_t nloaded;
    char version[32]; /* /api/version, "" until known */
    size_t show_next; /* discovery thread's own: where the next round's shows start */
    /* routing's, under the mutex */
    unsigned max_inflight, max_queue, weight;
    unsigned inflight, queued;
    struct route_waiter *qhead, *qtail;
    struct model_use *uses;
    size_t nuses, cuses;
};

struct backends {
    atomic_uint refs;
    struct cfg *cfg; /* a reference */
    struct backend *v;
    size_t n;
    pthread_rwlock_t lock; /* guards discovery's fields of every struct backend */
    pthread_mutex_t mu;    /* guards routing's fields; taken after lock, never before */
    int64_t warm_ms;       /* how long an answer counts as "loaded" */
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
    bool stopping;
    bool poke; /* poll now: a backend was just marked down */
    bool thread_started;
    pthread_t thread;
};

static void free_models(struct model_entry *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].name);
        free(m[i].json);
        free(m[i].digest);
    }
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
    /* Two polls of /api/ps: by then it shows the model if it is still loaded. */
    b->warm_ms = 2 * (int64_t)cfg->discovery_interval_s * 1000 + 1000;
    pthread_rwlock_init(&b->lock, NULL);
    pthread_mutex_init(&b->mu, NULL);
    backends_set_limits(b, cfg);
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
    for (size_t i = 0; i < b->n; i++) {
        struct backend *be = &b->v[i];
        free_models(be->models, be->nmodels);
        free_models(be->loaded, be->nloaded);
        for (size_t k = 0; k < be->nuses; k++)
            free(be->uses[k].name);
        free(be->uses);
    }
    free(b->v);
    pthread_rwlock_destroy(&b->lock);
    pthread_mutex_destroy(&b->mu);
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
        if (!str_eq(x->name, y->name) || !str_eq(x->url, y->url) || x->nheaders != y->nheaders)
            return false;
        for (size_t h = 0; h < x->nheaders; h++)
            if (!str_eq(x->headers[h], y->headers[h]))
                return false;
    }
    return true;
}

static void fill_slots(struct backend *be);

void backends_set_limits(struct backends *b, const struct cfg *cfg)
{
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n && i < cfg->nbackends; i++) {
        b->v[i].max_inflight = cfg->backends[i].max_inflight;
        b->v[i].max_queue = cfg->backends[i].max_queue;
        b->v[i].weight = cfg->backends[i].weight ? cfg->backends[i].weight : 1;
        fill_slots(&b->v[i]); /* a raised limit lets waiters in at once */
    }
    pthread_mutex_unlock(&b->mu);
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    struct buf *out = ud;
    return buf_append(out, p, size * n) < 0 ? 0 : size * n;
}

/* GET url+path (POST post, when not NULL) into out. Blocking: discovery
 * thread only. *why gets a short reason for the log when the result is not
 * POLL_OK. */
static enum poll_result http_call(const struct cfg_backend *be, const char *path, const char *post,
                                  struct buf *out, char *why, size_t whysize)
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
    if (post) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    }
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

static enum poll_result http_get(const struct cfg_backend *be, const char *path, struct buf *out,
                                 char *why, size_t whysize)
{
    return http_call(be, path, NULL, out, why, whysize);
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
        m[k].caps = CAPS_UNASKED;
        atomic_init(&m[k].wanted, false);
        const char *digest = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "digest"));
        if (digest && !(m[k].digest = strdup(digest))) {
            free(m[k].name);
            break;
        }
        /* Kept whole for the native /api/tags and /api/ps, which list what
         * Ollama said about each model. */
        m[k].json = cJSON_PrintUnformatted(it);
        k++;
    }
    cJSON_Delete(root);
    *out = m;
    *nout = k;
    return 0;
}

/* Keep what /api/show said about each model of the new list m whose digest
 * is the one the backend listed before: the same model. One pulled again has
 * a new digest and is asked again. Discovery thread (the only writer of
 * be->models). */
static void carry_caps(struct backends *b, const struct backend *be, struct model_entry *m,
                       size_t n)
{
    pthread_rwlock_rdlock(&b->lock);
    for (size_t k = 0; k < n; k++) {
        for (size_t j = 0; j < be->nmodels; j++) {
            const struct model_entry *old = &be->models[j];
            if (strcmp(old->name, m[k].name) == 0 && str_eq(old->digest, m[k].digest)) {
                m[k].caps = old->caps;
                atomic_store_explicit(&m[k].wanted,
                                      atomic_load_explicit(&old->wanted, memory_order_relaxed),
                                      memory_order_relaxed);
                break;
            }
        }
    }
    pthread_rwlock_unlock(&b->lock);
}

/* Put a poll's result in force (it takes models and loaded). Returns whether
 * the backend is up now; *was_up and *first tell what it was before. */
static bool publish(struct backends *b, size_t i, enum poll_result res, struct model_entry *models,
                    size_t nmodels, struct model_entry *loaded, size_t nloaded, bool *was_up,
                    bool *first)
{
    struct backend *be = &b->v[i];
    pthread_rwlock_wrlock(&b->lock);
    *was_up = be->up;
    if (res == POLL_OK) {
        free_models(be->models, be->nmodels);
        free_models(be->loaded, be->nloaded);
        be->models = models;
        be->nmodels = nmodels;
        be->loaded = loaded;
        be->nloaded = nloaded;
        be->up = true;
        be->failures = 0;
        be->poll_failures = 0;
    } else if (res == POLL_REFUSED || ++be->poll_failures >= POLLS_TO_MARK_DOWN) {
        be->up = false;
    }
    bool is_up = be->up;
    *first = !be->polled;
    be->polled = true;
    pthread_rwlock_unlock(&b->lock);
    return is_up;
}

static struct model_entry *copy_names(const char *const *names, size_t n)
{
    struct model_entry *m = calloc(n ? n : 1, sizeof *m);
    for (size_t k = 0; m && k < n; k++) {
        m[k].caps = CAPS_UNASKED;
        atomic_init(&m[k].wanted, false);
        if (!(m[k].name = strdup(names[k]))) {
            free_models(m, k);
            return NULL;
        }
    }
    return m;
}

int backends_set_discovered(struct backends *b, size_t idx, bool up, const char *const *models,
                            size_t nmodels, const char *const *loaded, size_t nloaded)
{
    if (idx >= b->n)
        return -1;
    bool was_up, first;
    if (!up) {
        publish(b, idx, POLL_REFUSED, NULL, 0, NULL, 0, &was_up, &first);
        return 0;
    }
    struct model_entry *m = copy_names(models, nmodels), *l = copy_names(loaded, nloaded);
    if (!m || !l) {
        free_models(m, m ? nmodels : 0);
        free_models(l, l ? nloaded : 0);
        return -1;
    }
    publish(b, idx, POLL_OK, m, nmodels, l, nloaded, &was_up, &first);
    return 0;
}

int backends_parse_caps(const char *body, size_t len, unsigned *caps)
{
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {
        {"completion", MODEL_CAP_COMPLETION}, {"tools", MODEL_CAP_TOOLS},
        {"thinking", MODEL_CAP_THINKING},     {"insert", MODEL_CAP_INSERT},
        {"vision", MODEL_CAP_VISION},         {"embedding", MODEL_CAP_EMBEDDING},
    };
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "capabilities");
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(root);
        return -1;
    }
    *caps = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        const char *name = cJSON_GetStringValue(it);
        for (size_t k = 0; name && k < sizeof known / sizeof known[0]; k++)
            if (strcmp(name, known[k].name) == 0)
                *caps |= known[k].bit;
    }
    cJSON_Delete(root);
    return 0;
}

static struct model_entry *entry_on(const struct backend *be, const char *model)
{
    for (size_t k = 0; k < be->nmodels; k++)
        if (router_model_eq(be->models[k].name, model))
            return &be->models[k];
    return NULL;
}

static int set_caps(struct backends *b, size_t idx, const char *model, int caps)
{
    pthread_rwlock_wrlock(&b->lock);
    struct model_entry *e = entry_on(&b->v[idx], model);
    if (e)
        e->caps = caps;
    pthread_rwlock_unlock(&b->lock);
    return e ? 0 : -1;
}

int backends_set_caps(struct backends *b, size_t idx, const char *model, unsigned caps)
{
    return idx < b->n ? set_caps(b, idx, model, (int)caps) : -1;
}

/* Ask backend i's /api/show about one model; publish its capabilities.
 * false: the show failed (the model stays unasked). Discovery thread. */
static bool show_one(struct backends *b, size_t i, const char *model)
{
    const struct cfg_backend *conf = b->v[i].conf;
    char why[192] = "out of memory";
    enum poll_result res = POLL_FAILED;
    struct buf body;
    buf_init(&body, SHOW_BODY_MAX);
    cJSON *ask = cJSON_CreateObject();
    char *post =
        ask && cJSON_AddStringToObject(ask, "model", model) ? cJSON_PrintUnformatted(ask) : NULL;
    cJSON_Delete(ask);
    if (post)
        res = http_call(conf, "/api/show", post, &body, why, sizeof why);
    cJSON_free(post);
    if (res == POLL_OK) {
        unsigned caps = 0;
        bool listed = backends_parse_caps(body.p ? body.p : "", body.len, &caps) == 0;
        set_caps(b, i, model, listed ? (int)caps : CAPS_UNLISTED);
        log_debug("backend %s: %s %s", conf->name, model,
                  !listed                     ? "lists no capabilities"
                  : caps & MODEL_CAP_THINKING ? "can think"
                                              : "cannot think: thinking switches are left out");
    } else {
        log_debug("backend %s: /api/show for %s failed (%s); asked again later", conf->name, model,
                  why);
    }
    buf_free(&body);
    return res == POLL_OK;
}

/* Whether names[0..n) holds name. */
static bool listed_in(char *const *names, size_t n, const char *name)
{
    for (size_t j = 0; j < n; j++)
        if (strcmp(names[j], name) == 0)
            return true;
    return false;
}

/* The models of backend i whose capabilities are not known for their digest
 * yet, at most SHOWS_PER_ROUND: the loaded ones and those requests were
 * routed to first (they are what requests use); then in turn, from where the
 * last round stopped, so that a model whose show keeps failing does not hold
 * up the others. Into names (strdup'd). Discovery thread. */
static size_t models_to_show(struct backends *b, size_t i, char *names[SHOWS_PER_ROUND])
{
    struct backend *be = &b->v[i];
    size_t n = 0;
    pthread_rwlock_rdlock(&b->lock);
    for (size_t l = 0; l < be->nloaded && n < SHOWS_PER_ROUND; l++) {
        const struct model_entry *e = entry_on(be, be->loaded[l].name);
        if (e && e->caps == CAPS_UNASKED && !listed_in(names, n, e->name) &&
            (names[n] = strdup(e->name)))
            n++;
    }
    for (size_t k = 0; k < be->nmodels && n < SHOWS_PER_ROUND; k++) {
        const struct model_entry *e = &be->models[k];
        if (e->caps == CAPS_UNASKED && atomic_load_explicit(&e->wanted, memory_order_relaxed) &&
            !listed_in(names, n, e->name) && (names[n] = strdup(e->name)))
            n++;
    }
    size_t start = be->show_next;
    for (size_t t = 0; t < be->nmodels && n < SHOWS_PER_ROUND; t++) {
        size_t k = (start + t) % be->nmodels;
        const struct model_entry *e = &be->models[k];
        if (e->caps != CAPS_UNASKED || listed_in(names, n, e->name))
            continue;
        if (!(names[n] = strdup(e->name)))
            break;
        n++;
        be->show_next = k + 1;
    }
    pthread_rwlock_unlock(&b->lock);
    return n;
}

/* Learn the capabilities of a few more of backend i's models. The first
 * show that fails ends the round: a backend that cannot answer is not asked
 * again and again. Never on a request's path. Discovery thread. */
static void learn_caps(struct backends *b, size_t i)
{
    char *names[SHOWS_PER_ROUND];
    size_t n = models_to_show(b, i, names), k = 0;
    while (k < n && show_one(b, i, names[k]))
        k++;
    for (k = 0; k < n; k++)
        free(names[k]);
}

/* The version an Ollama reports, for the log and /api/version. */
static void poll_version(const struct cfg_backend *conf, char *out, size_t n)
{
    struct buf body;
    char why[192];
    buf_init(&body, 4096);
    snprintf(out, n, "?");
    if (http_get(conf, "/api/version", &body, why, sizeof why) == POLL_OK) {
        cJSON *root = cJSON_ParseWithLength(body.p ? body.p : "", body.len);
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "version"));
        if (v)
            snprintf(out, n, "%s", v);
        cJSON_Delete(root);
    }
    buf_free(&body);
}

static void poll_one(struct backends *b, size_t i)
{
    struct backend *be = &b->v[i];
    struct buf body;
    buf_init(&body, DISCOVERY_BODY_MAX);
    struct model_entry *models = NULL, *loaded = NULL;
    size_t nmodels = 0, nloaded = 0;
    char why[192] = "";
    enum poll_result res = http_get(be->conf, "/api/tags", &body, why, sizeof why);
    if (res == POLL_OK && parse_tags(&body, &models, &nmodels) < 0) {
        snprintf(why, sizeof why, "/api/tags answered something that is not a model list");
        res = POLL_FAILED;
    }
    /* /api/ps (Ollama 0.1.38+) says which models are in memory. A backend
     * without it still serves: its models just never count as loaded. */
    buf_reset(&body);
    if (res == POLL_OK) {
        carry_caps(b, be, models, nmodels);
        char pswhy[192];
        if (http_get(be->conf, "/api/ps", &body, pswhy, sizeof pswhy) != POLL_OK ||
            parse_tags(&body, &loaded, &nloaded) < 0) {
            loaded = NULL;
            nloaded = 0;
        }
    }
    buf_free(&body);

    bool was_up, first;
    bool is_up = publish(b, i, res, models, nmodels, loaded, nloaded, &was_up, &first);
    if (first && !is_up)
        log_warn("backend %s (%s) is not answering (%s): requests get 503 until it does",
                 be->conf->name, be->conf->url, why);
    if (is_up && !was_up) {
        char version[sizeof be->version];
        poll_version(be->conf, version, sizeof version);
        pthread_rwlock_wrlock(&b->lock);
        memcpy(be->version, version, sizeof version);
        pthread_rwlock_unlock(&b->lock);
        log_info("backend %s (%s) is up: Ollama %s, %zu models, %zu loaded", be->conf->name,
                 be->conf->url, version, nmodels, nloaded);
    } else if (!is_up && was_up) {
        log_warn("backend %s (%s) is down: %s", be->conf->name, be->conf->url, why);
    } else if (res != POLL_OK && is_up) {
        log_warn("backend %s (%s): %s; still in service", be->conf->name, be->conf->url, why);
    }
    if (res == POLL_OK)
        learn_caps(b, i);
}

void backends_poll_all(struct backends *b)
{
    for (size_t i = 0; i < b->n; i++)
        poll_one(b, i);
}

static void *discovery_main(void *arg)
{
    struct backends *b = arg;
    pthread_setname_np(pthread_self(), "gw-discovery");
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
        shared_dns_refresh(); /* Redis's address too, if it is a name */
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
    return entry_on(be, model) != NULL;
}

/* What discovery knows of whether model can think on be, for a request
 * routed there: when it is not known yet, the next poll asks first. Read
 * lock held. */
static enum backend_thinking thinking_of(struct backend *be, const char *model)
{
    struct model_entry *e = entry_on(be, model);
    if (e && e->caps == CAPS_UNASKED && !atomic_load_explicit(&e->wanted, memory_order_relaxed))
        atomic_store_explicit(&e->wanted, true, memory_order_relaxed);
    if (!e || e->caps < 0)
        return THINKING_UNKNOWN;
    return e->caps & MODEL_CAP_THINKING ? THINKING_YES : THINKING_NO;
}

/* Which of ask's names be lists, or -1. Read lock held. */
static long name_on(const struct backend *be, const struct route_ask *ask)
{
    for (size_t n = 0; n < ask->nnames; n++)
        if (backend_has(be, ask->names[n]))
            return (long)n;
    return -1;
}

static bool in_ps(const struct backend *be, const char *model)
{
    for (size_t k = 0; k < be->nloaded; k++)
        if (router_model_eq(be->loaded[k].name, model))
            return true;
    return false;
}

/* The routing state of model on be; created when create. Mutex held. */
static struct model_use *use_of(struct backend *be, const char *model, bool create)
{
    /* Nearly always the very name it was created with: try that first, it
     * is four times per request. */
    for (size_t k = 0; k < be->nuses; k++)
        if (strcmp(be->uses[k].name, model) == 0)
            return &be->uses[k];
    for (size_t k = 0; k < be->nuses; k++)
        if (router_model_eq(be->uses[k].name, model))
            return &be->uses[k];
    if (!create)
        return NULL;
    if (be->nuses == be->cuses) {
        size_t c = be->cuses ? 2 * be->cuses : 4;
        struct model_use *u = realloc(be->uses, c * sizeof *u);
        if (!u)
            return NULL;
        be->uses = u;
        be->cuses = c;
    }
    char *name = strdup(model);
    if (!name)
        return NULL;
    be->uses[be->nuses] = (struct model_use){.name = name};
    return &be->uses[be->nuses++];
}

static bool allowed(const struct route_ask *ask, size_t i)
{
    for (size_t t = 0; t < ask->ntried; t++)
        if (ask->tried[t] == (int)i)
            return false;
    if (!ask->only)
        return true;
    for (size_t k = 0; k < ask->nonly; k++)
        if (ask->only[k] == i)
            return true;
    return false;
}

#define VIEW_ON_STACK 16

enum choice_outcome backends_route(struct backends *b, const struct route_ask *ask,
                                   struct route_waiter *w, int64_t now, int *idx, size_t *name,
                                   enum backend_thinking *thinking)
{
    struct choice_backend stack[VIEW_ON_STACK], *view = stack;
    long names_stack[VIEW_ON_STACK], *names = names_stack;
    if (b->n > VIEW_ON_STACK) {
        view = calloc(b->n, sizeof *view);
        names = calloc(b->n, sizeof *names);
        if (!view || !names) {
            free(view);
            free(names);
            return CHOICE_NONE_UP;
        }
    }
    pthread_rwlock_rdlock(&b->lock);
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n; i++) {
        struct backend *be = &b->v[i];
        long k = name_on(be, ask);
        names[i] = k;
        const struct model_use *u = k >= 0 ? use_of(be, ask->names[k], false) : NULL;
        view[i] = (struct choice_backend){
            .up = be->up,
            .has_model = k >= 0,
            .allowed = allowed(ask, i),
            .loaded = k >= 0 && (in_ps(be, ask->names[k]) || (u && u->warm_until > now)),
            .loading = u && u->cold > 0,
            .inflight = be->inflight,
            .max_inflight = be->max_inflight,
            .weight = be->weight,
            .queued = be->queued,
            .max_queue = be->max_queue,
        };
    }
    size_t i = 0;
    enum choice_outcome o = choice_pick(view, b->n, &i);
    if (o == CHOICE_SEND) {
        b->v[i].inflight++;
    } else if (o == CHOICE_QUEUE) {
        struct backend *be = &b->v[i];
        w->table = b;
        w->backend = (int)i;
        w->state = WAITER_QUEUED;
        w->next = NULL;
        w->prev = be->qtail;
        if (be->qtail)
            be->qtail->next = w;
        else
            be->qhead = w;
        be->qtail = w;
        be->queued++;
        w->position = be->queued;
    }
    if ((o == CHOICE_SEND || o == CHOICE_QUEUE) && thinking)
        *thinking = thinking_of(&b->v[i], ask->names[names[i]]);
    pthread_mutex_unlock(&b->mu);
    pthread_rwlock_unlock(&b->lock);
    if (o == CHOICE_SEND || o == CHOICE_QUEUE) {
        *idx = (int)i;
        *name = (size_t)names[i];
    }
    if (view != stack) {
        free(view);
        free(names);
    }
    return o;
}

long backends_name_on(struct backends *b, int idx, const struct route_ask *ask,
                      enum backend_thinking *thinking)
{
    if (idx < 0 || (size_t)idx >= b->n)
        return -1;
    pthread_rwlock_rdlock(&b->lock);
    long k = b->v[idx].up ? name_on(&b->v[idx], ask) : -1;
    if (k >= 0 && thinking)
        *thinking = thinking_of(&b->v[idx], ask->names[k]);
    pthread_rwlock_unlock(&b->lock);
    return k;
}

/* A cold load is starting: the request was sent to idx for model, which is
 * not in memory there. Returns whether the request counts as cold. */
bool backends_begin(struct backends *b, int idx, const char *model, int64_t now)
{
    if (idx < 0 || (size_t)idx >= b->n)
        return false;
    bool cold = false;
    pthread_rwlock_rdlock(&b->lock);
    pthread_mutex_lock(&b->mu);
    struct backend *be = &b->v[idx];
    struct model_use *u = use_of(be, model, true);
    if (u && !in_ps(be, model) && u->warm_until <= now) {
        u->cold++;
        cold = true;
    }
    pthread_mutex_unlock(&b->mu);
    pthread_rwlock_unlock(&b->lock);
    return cold;
}

/* Unlink w from its backend's queue. Mutex held. */
static void dequeue(struct backend *be, struct route_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        be->qhead = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        be->qtail = w->prev;
    w->prev = w->next = NULL;
    be->queued--;
}

/* Move w, granted a slot, to its worker's inbox and wake the worker. Mutex held. */
static void grant(struct route_waiter *w)
{
    w->state = WAITER_GRANTED; /* it holds the slot now */
    struct route_inbox *in = w->inbox;
    pthread_mutex_lock(&in->mu);
    w->next = in->head;
    if (in->head)
        in->head->prev = w;
    in->head = w;
    pthread_mutex_unlock(&in->mu);
    uint64_t one = 1;
    if (write(in->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_warn("route: cannot wake a worker: %s", strerror(errno));
}

/* Hand the free slots of be to its oldest waiters, so that a slot is never
 * free while someone waits (and a newcomer never passes a waiter). Mutex held. */
static void fill_slots(struct backend *be)
{
    while (be->qhead && (be->max_inflight == 0 || be->inflight < be->max_inflight)) {
        struct route_waiter *w = be->qhead;
        dequeue(be, w);
        be->inflight++;
        grant(w);
    }
}

/* A slot on be is given back. (After a reload lowered max_inflight, the
 * excess drains before anyone waiting is let in.) Mutex held. */
static void pass_slot(struct backend *be)
{
    be->inflight--;
    fill_slots(be);
}

void backends_leave(struct backends *b, struct route_waiter *w)
{
    /* table is only ever written by the waiter's own thread; state also by
     * the thread that grants it a slot, so it is read under the mutex */
    if (w->table != b)
        return;
    pthread_mutex_lock(&b->mu);
    struct backend *be = &b->v[w->backend];
    if (w->state == WAITER_IDLE) {
        pthread_mutex_unlock(&b->mu);
        return;
    }
    if (w->state == WAITER_QUEUED) {
        dequeue(be, w);
    } else {
        /* Granted but not used: out of the inbox, and the slot passes on. */
        struct route_inbox *in = w->inbox;
        pthread_mutex_lock(&in->mu);
        if (w->prev)
            w->prev->next = w->next;
        else if (in->head == w)
            in->head = w->next;
        if (w->next)
            w->next->prev = w->prev;
        w->prev = w->next = NULL;
        pthread_mutex_unlock(&in->mu);
        pass_slot(be);
    }
    w->state = WAITER_IDLE;
    pthread_mutex_unlock(&b->mu);
}

void backends_taken(struct backends *b, struct route_waiter *w)
{
    pthread_mutex_lock(&b->mu);
    w->state = WAITER_IDLE;
    pthread_mutex_unlock(&b->mu);
}

static void answered(struct backends *b, struct backend *be, const char *model, bool cold,
                     int64_t now)
{
    struct model_use *u = use_of(be, model, true);
    if (!u)
        return;
    if (cold && u->cold)
        u->cold--;
    u->warm_until = now + b->warm_ms;
}

void backends_answered(struct backends *b, int idx, const char *model, bool cold, int64_t now)
{
    if (idx < 0 || (size_t)idx >= b->n)
        return;
    pthread_mutex_lock(&b->mu);
    answered(b, &b->v[idx], model, cold, now);
    pthread_mutex_unlock(&b->mu);
}

void backends_done(struct backends *b, int idx, const char *model, bool cold, bool got_answer,
                   int64_t now)
{
    if (idx < 0 || (size_t)idx >= b->n)
        return;
    pthread_mutex_lock(&b->mu);
    struct backend *be = &b->v[idx];
    if (got_answer) {
        answered(b, be, model, false, now);
    } else if (cold) {
        struct model_use *u = use_of(be, model, false);
        if (u && u->cold)
            u->cold--;
    }
    if (be->inflight)
        pass_slot(be);
    pthread_mutex_unlock(&b->mu);
}

int route_inbox_init(struct route_inbox *in, int efd)
{
    in->head = NULL;
    in->efd = efd;
    return pthread_mutex_init(&in->mu, NULL) ? -1 : 0;
}

void route_inbox_destroy(struct route_inbox *in)
{
    pthread_mutex_destroy(&in->mu);
}

struct route_waiter *route_inbox_take(struct route_inbox *in)
{
    pthread_mutex_lock(&in->mu);
    struct route_waiter *w = in->head;
    in->head = NULL;
    pthread_mutex_unlock(&in->mu);
    /* The inbox is a stack: reverse it so the oldest grant starts first. */
    struct route_waiter *out = NULL;
    while (w) {
        struct route_waiter *next = w->next;
        w->next = out;
        w->prev = NULL;
        out = w;
        w = next;
    }
    return out;
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

bool backends_is_up(struct backends *b, int idx)
{
    if (idx < 0 || (size_t)idx >= b->n)
        return false;
    pthread_rwlock_rdlock(&b->lock);
    bool up = b->v[idx].up;
    pthread_rwlock_unlock(&b->lock);
    return up;
}

size_t backends_count(const struct backends *b)
{
    return b->n;
}

void backends_stats(struct backends *b, int idx, struct backend_stats *st)
{
    memset(st, 0, sizeof *st);
    if (idx < 0 || (size_t)idx >= b->n)
        return;
    pthread_rwlock_rdlock(&b->lock);
    pthread_mutex_lock(&b->mu);
    const struct backend *be = &b->v[idx];
    st->up = be->up;
    st->inflight = be->inflight;
    st->queued = be->queued;
    st->nmodels = be->nmodels;
    st->nloaded = be->nloaded;
    memcpy(st->version, be->version, sizeof st->version);
    pthread_mutex_unlock(&b->mu);
    pthread_rwlock_unlock(&b->lock);
}

void backends_each_loaded(struct backends *b, int idx, void (*fn)(void *ud, const char *name),
                          void *ud)
{
    if (idx < 0 || (size_t)idx >= b->n)
        return;
    pthread_rwlock_rdlock(&b->lock);
    const struct backend *be = &b->v[idx];
    for (size_t i = 0; i < be->nloaded; i++)
        fn(ud, be->loaded[i].name);
    pthread_rwlock_unlock(&b->lock);
}

void backends_report_success(struct backends *b, int idx)
{
    if (idx < 0 || (size_t)idx >= b->n)
        return;
    pthread_rwlock_rdlock(&b->lock);
    bool any = b->v[idx].failures != 0;
    pthread_rwlock_unlock(&b->lock);
    if (!any)
        return; /* the common case takes no write lock */
    pthread_rwlock_wrlock(&b->lock);
    b->v[idx].failures = 0;
    pthread_rwlock_unlock(&b->lock);
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
        log_warn("backend %s marked down after %d failed requests in a row", be->conf->name,
                 FAILURES_TO_MARK_DOWN);
        /* Let discovery look again now rather than at the next interval. */
        pthread_mutex_lock(&b->wake_lock);
        b->poke = true;
        pthread_cond_signal(&b->wake);
        pthread_mutex_unlock(&b->wake_lock);
    }
}

void backends_each_model(struct backends *b, bool loaded,
                         void (*fn)(void *ud, const struct backend_model *m), void *ud)
{
    pthread_rwlock_rdlock(&b->lock);
    for (size_t i = 0; i < b->n; i++) {
        const struct backend *be = &b->v[i];
        if (!be->up)
            continue;
        const struct model_entry *list = loaded ? be->loaded : be->models;
        size_t n = loaded ? be->nloaded : be->nmodels;
        for (size_t k = 0; k < n; k++) {
            const char *name = list[k].name;
            bool seen = false;
            /* Report a model once however many backends have it. */
            for (size_t j = 0; j < i && !seen; j++) {
                const struct backend *other = &b->v[j];
                if (!other->up)
                    continue;
                const struct model_entry *ol = loaded ? other->loaded : other->models;
                size_t on = loaded ? other->nloaded : other->nmodels;
                for (size_t m = 0; m < on && !seen; m++)
                    seen = router_model_eq(ol[m].name, name);
            }
            if (!seen) {
                struct backend_model bm = {name, list[k].modified, list[k].json};
                fn(ud, &bm);
            }
        }
    }
    pthread_rwlock_unlock(&b->lock);
}

/* Compare dotted versions numerically ("0.9.0" < "0.12.1"); text after the
 * numbers ("-rc2") is ignored. */
static int version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        char *ea, *eb;
        unsigned long x = strtoul(a, &ea, 10), y = strtoul(b, &eb, 10);
        if (x != y)
            return x < y ? -1 : 1;
        if (ea == a || eb == b)
            break;
        a = *ea == '.' ? ea + 1 : ea;
        b = *eb == '.' ? eb + 1 : eb;
        if (*ea != '.' || *eb != '.')
            break;
    }
    return 0;
}

int backends_version(struct backends *b, char *out, size_t n)
{
    int rc = -1;
    pthread_rwlock_rdlock(&b->lock);
    for (size_t i = 0; i < b->n; i++) {
        const struct backend *be = &b->v[i];
        if (!be->up || !be->version[0] || strcmp(be->version, "?") == 0)
            continue;
        if (rc < 0 || version_cmp(be->version, out) < 0) {
            snprintf(out, n, "%s", be->version);
            rc = 0;
        }
    }
    pthread_rwlock_unlock(&b->lock);
    return rc;
}
