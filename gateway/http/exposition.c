#include "exposition.h"

#include "backends.h"
#include "fleet.h"
#include "membudget.h"
#include "metrics.h"
#include "promtext.h"
#include "redis_glue.h"
#include "routes.h"
#include "snapshot.h"

#include <curl/curl.h>
#include <dirent.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define NAME(s) "ollama_gateway_" s

static int requests(struct buf *b, const struct metrics_sums *s)
{
    int rc = prom_family(b, NAME("requests_total"), "counter",
                         "Requests answered, by route, model (\"\" unless it resolved) and HTTP "
                         "status.");
    size_t n = ctab_published(&s->requests);
    const struct ctab_entry **v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return -1;
    ctab_sorted(&s->requests, v, n);
    for (size_t i = 0; i < n; i++) {
        struct prom_label l[] = {{"route", v[i]->label[ML_ROUTE]},
                                 {"model", v[i]->label[ML_MODEL]},
                                 {"status", v[i]->label[ML_STATUS]}};
        rc |= prom_sample(b, NAME("requests_total"), l, 3, ctab_value(v[i], MV_REQUESTS));
    }
    free(v);
    return rc;
}

static int histogram(struct buf *b, const char *name, const char *help, const uint64_t *bounds,
                     size_t nbounds, const uint64_t *counts, const uint64_t *sums, size_t nroutes)
{
    int rc = prom_family(b, name, "histogram", help);
    for (size_t r = 0; r < nroutes; r++) {
        uint64_t total = 0;
        for (size_t i = 0; i <= nbounds; i++)
            total += counts[r * (nbounds + 1) + i];
        if (!total)
            continue; /* a route never asked for says nothing */
        struct prom_label l = {"route", routes_metric_label(r)};
        rc |= prom_histogram(b, name, &l, 1, bounds, nbounds, &counts[r * (nbounds + 1)], sums[r]);
    }
    return rc;
}

/* Tokens by model and key name (the key id the workers keep is summed away),
 * and requests by key name. */
static int usage(struct buf *b, const struct metrics_sums *s)
{
    struct ctab byname, bykey;
    size_t n = ctab_published(&s->usage);
    if (ctab_init(&byname, 2, n + 1) < 0)
        return -1;
    if (ctab_init(&bykey, 1, n + 1) < 0) {
        ctab_free(&byname);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const struct ctab_entry *e = ctab_at(&s->usage, i);
        const char *l2[2] = {e->label[ML_USE_MODEL], e->label[ML_USE_KEY]};
        struct ctab_entry *d = ctab_get(&byname, l2, true);
        struct ctab_entry *k = ctab_get(&bykey, &e->label[ML_USE_KEY], true);
        if (!d || !k) {
            rc = -1;
            break;
        }
        for (unsigned c = 0; c < CTAB_VALUES; c++) {
            ctab_add(d, c, ctab_value(e, c));
            ctab_add(k, c, ctab_value(e, c));
        }
    }
    size_t nn = ctab_published(&byname), nk = ctab_published(&bykey);
    const struct ctab_entry **v = malloc((nn + nk + 1) * sizeof *v);
    if (rc || !v) {
        rc = -1;
        goto out;
    }
    ctab_sorted(&byname, v, nn);
    rc |=
        prom_family(b, NAME("tokens_total"), "counter",
                    "Tokens by model (\"\" unless it resolved), key name (\"\" without a key) and "
                    "kind: prompt or completion (a stream cut short counts one completion token "
                    "per line received).");
    static const char *const kinds[] = {"prompt", "completion"};
    for (size_t i = 0; i < nn; i++) {
        for (unsigned kd = 0; kd < 2; kd++) {
            struct prom_label l[] = {
                {"model", v[i]->label[0]}, {"key", v[i]->label[1]}, {"kind", kinds[kd]}};
            rc |= prom_sample(b, NAME("tokens_total"), l, 3,
                              ctab_value(v[i], kd ? MV_USE_COMPLETION : MV_USE_PROMPT));
        }
    }
    ctab_sorted(&bykey, v, nk);
    rc |= prom_family(b, NAME("key_requests_total"), "counter",
                      "Requests that authenticated with a key, by key name.");
    for (size_t i = 0; i < nk; i++) {
        if (!v[i]->label[0][0])
            continue; /* no key */
        struct prom_label l = {"key", v[i]->label[0]};
        rc |= prom_sample(b, NAME("key_requests_total"), &l, 1, ctab_value(v[i], MV_USE_REQUESTS));
    }
out:
    free(v);
    ctab_free(&byname);
    ctab_free(&bykey);
    return rc;
}

static int counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
    return prom_family(b, name, "counter", help) | prom_sample(b, name, NULL, 0, v);
}

static int gauge(struct buf *b, const char *name, const char *help, uint64_t v)
{
    return prom_family(b, name, "gauge", help) | prom_sample(b, name, NULL, 0, v);
}

/* Per backend of the configuration in force, from the table the requests
 * route on; failovers also for backends a reload has since removed. */
static int backends(struct buf *b, struct metrics_sums *s)
{
    struct snapshot *snap = snapshot_acquire();
    size_t n = snap ? snap->cfg->nbackends : 0;
    struct backend_stats *st = calloc(n ? n : 1, sizeof *st);
    if (!st) {
        snapshot_unref(snap);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        backends_stats(snap->backends, (int)i, &st[i]);
    static const struct {
        const char *name, *help;
    } fam[] = {
        {NAME("backend_up"), "1 when discovery (or the last request) found the backend up."},
        {NAME("backend_inflight"), "Requests in flight on the backend (holding a slot)."},
        {NAME("backend_queue_length"), "Requests waiting for a slot on the backend."},
        {NAME("backend_models"), "Models the backend lists (/api/tags)."},
        {NAME("backend_loaded_models"), "Models loaded in the backend's memory (/api/ps)."},
    };
    int rc = 0;
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        rc |= prom_family(b, fam[f].name, "gauge", fam[f].help);
        for (size_t i = 0; i < n; i++) {
            struct prom_label l = {"backend", snap->cfg->backends[i].name};
            uint64_t v = f == 0   ? st[i].up
                         : f == 1 ? st[i].inflight
                         : f == 2 ? st[i].queued
                         : f == 3 ? st[i].nmodels
                                  : st[i].nloaded;
            rc |= prom_sample(b, fam[f].name, &l, 1, v);
        }
    }
    rc |= prom_family(b, NAME("backend_failovers_total"), "counter",
                      "Requests that moved to another backend after this one failed before "
                      "answering (refused, reset, or a 5xx).");
    for (size_t i = 0; i < n; i++) {
        const char *name = snap->cfg->backends[i].name;
        struct ctab_entry *e = ctab_get(&s->failovers, &name, false);
        struct prom_label l = {"backend", name};
        rc |= prom_sample(b, NAME("backend_failovers_total"), &l, 1, e ? ctab_value(e, 0) : 0);
    }
    size_t nf = ctab_published(&s->failovers);
    for (size_t k = 0; k < nf; k++) {
        const struct ctab_entry *e = ctab_at(&s->failovers, k);
        bool configured = false;
        for (size_t i = 0; i < n && !configured; i++)
            configured = strcmp(snap->cfg->backends[i].name, e->label[0]) == 0;
        if (configured)
            continue;
        struct prom_label l = {"backend", e->label[0]};
        rc |= prom_sample(b, NAME("backend_failovers_total"), &l, 1, ctab_value(e, 0));
    }
    free(st);
    snapshot_unref(snap);
    return rc;
}

/* Redis's state for "shared" (only when the configuration in force has it). */
static int shared(struct buf *b, const struct metrics_sums *s)
{
    struct snapshot *snap = snapshot_acquire();
    bool on = snap && snap->cfg->shared.enabled;
    snapshot_unref(snap);
    if (!on)
        return 0;
    struct redis_glue_stats st;
    redis_glue_stats(&st);
    int rc = gauge(b, NAME("shared_redis_up"),
                   "1 when every worker's connection to the shared limits' Redis is ready "
                   "(the minimum over workers), else 0: limits are local meanwhile.",
                   st.links && st.ready >= st.links);
    rc |=
        gauge(b, NAME("shared_redis_connections"),
              "Workers whose connection to Redis is ready (of ollama_gateway_workers).", st.ready);
    rc |= counter(b, NAME("shared_redis_outages_total"),
                  "Times Redis went away (the warning logged once per outage).", st.outages);
    rc |= counter(b, NAME("shared_fallbacks_total"),
                  "Admission checks that local limits judged because Redis was away, too slow "
                  "or gave no usable answer.",
                  s->shared_fallbacks);
    return rc;
}

/* Each key's totals over every replica (fleet.h), when Redis answers. */
static int fleet(struct buf *b)
{
    struct snapshot *snap = snapshot_acquire();
    size_t n = snap && snap->keys ? snap->keys->n : 0;
    struct fleet_use *u = snap && snap->cfg->shared.enabled && n ? calloc(n, sizeof *u) : NULL;
    int rc = 0;
    if (u && fleet_read(snap->cfg, snap->keys, u) == 0) {
        rc |= prom_family(b, NAME("fleet_key_requests_total"), "counter",
                          "Requests with the key over every replica sharing this Redis, by key "
                          "name (from Redis; since it last started empty).");
        for (size_t i = 0; i < n; i++) {
            struct prom_label l = {"key", snap->keys->v[i].name};
            rc |= prom_sample(b, NAME("fleet_key_requests_total"), &l, 1, u[i].requests);
        }
        rc |= prom_family(b, NAME("fleet_tokens_total"), "counter",
                          "Tokens of the key's requests over every replica sharing this Redis, "
                          "by key name and kind: prompt or completion.");
        for (size_t i = 0; i < n; i++) {
            struct prom_label l[] = {{"key", snap->keys->v[i].name}, {"kind", "prompt"}};
            rc |= prom_sample(b, NAME("fleet_tokens_total"), l, 2, u[i].prompt);
            l[1].value = "completion";
            rc |= prom_sample(b, NAME("fleet_tokens_total"), l, 2, u[i].completion);
        }
    }
    free(u);
    snapshot_unref(snap);
    return rc;
}

static int reloads(struct buf *b, const struct metrics *m)
{
    uint64_t v[4] = {atomic_load(&m->reloads_ok), atomic_load(&m->reloads_failed),
                     atomic_load(&m->keys_reloads_ok), atomic_load(&m->keys_reloads_failed)};
    int rc = prom_family(b, NAME("reloads_total"), "counter",
                         "Reloads of the configuration and keys on SIGHUP, by result: ok (put in "
                         "force) or failed (refused; the old one stays).");
    struct prom_label ok = {"result", "ok"}, failed = {"result", "failed"};
    rc |= prom_sample(b, NAME("reloads_total"), &ok, 1, v[0]);
    rc |= prom_sample(b, NAME("reloads_total"), &failed, 1, v[1]);
    rc |= prom_family(b, NAME("keys_reloads_total"), "counter",
                      "Reloads of the keys file after it changed on disk, by result.");
    rc |= prom_sample(b, NAME("keys_reloads_total"), &ok, 1, v[2]);
    rc |= prom_sample(b, NAME("keys_reloads_total"), &failed, 1, v[3]);
    rc |= gauge(b, NAME("last_reload_successful"),
                "0 when the last reload (either kind) was refused, else 1.",
                atomic_load(&m->last_reload_ok) ? 1 : 0);
    return rc;
}

static int build_info(struct buf *b, unsigned nworkers)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    struct prom_label l[] = {{"version", GATEWAY_VERSION},
                             {"libmicrohttpd", MHD_get_version()},
                             {"libcurl", cv ? cv->version : ""},
                             {"sanitizers", GATEWAY_SANITIZERS}};
    int rc = prom_family(b, NAME("build_info"), "gauge",
                         "Always 1; the labels say which build runs and on which libraries.");
    rc |= prom_sample(b, NAME("build_info"), l, 4, 1);
    return rc | gauge(b, NAME("workers"), "Worker threads (each one epoll loop).", nworkers);
}

static uint64_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n ? n - 1 : 0; /* less the one opendir holds */
}

/* The process_* series every Prometheus client library exports. */
static int process(struct buf *b, const struct metrics *m)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    uint64_t cpu_us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                      (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    unsigned long long vm = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (fscanf(f, "%llu %llu", &vm, &rss) != 2)
            vm = rss = 0;
        fclose(f);
    }
    long page = sysconf(_SC_PAGESIZE);
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    int rc = prom_family(b, "process_cpu_seconds_total", "counter",
                         "User and system CPU time spent, in seconds.");
    rc |= prom_sample_micro(b, "process_cpu_seconds_total", NULL, 0, cpu_us);
    rc |= gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.",
                rss * (uint64_t)page);
    rc |= gauge(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                vm * (uint64_t)page);
    rc |= gauge(b, "process_open_fds", "Open file descriptors.", open_fds());
    rc |= gauge(b, "process_max_fds", "The limit on open file descriptors.",
                rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur);
    rc |=
        gauge(b, "process_start_time_seconds",
              "When the gateway started, in seconds since the Unix epoch.", (uint64_t)m->started_s);
    return rc;
}

int exposition_write(const struct metrics *m, unsigned nworkers, struct buf *out)
{
    struct metrics_sums s;
    if (metrics_sum(m, &s) < 0)
        return -1;
    int rc = build_info(out, nworkers);
    rc |= requests(out, &s);
    rc |= histogram(out, NAME("request_duration_seconds"),
                    "Time from a request's arrival to its last byte, by route.",
                    metrics_duration_bounds, METRICS_DURATION_BUCKETS, s.duration, s.duration_sum,
                    s.nroutes);
    rc |= histogram(out, NAME("time_to_first_token_seconds"),
                    "Time from a request's arrival to the backend's first answer line (or byte, "
                    "for a whole answer), by route; only requests a backend answered.",
                    metrics_ttft_bounds, METRICS_TTFT_BUCKETS, s.ttft, s.ttft_sum, s.nroutes);
    rc |= usage(out, &s);
    rc |= gauge(out, NAME("inflight_requests"),
                "Requests received and not yet complete (every route).", s.started - s.finished);
    rc |= counter(out, NAME("upstream_cancels_total"),
                  "Backend transfers cut because the client left before the answer ended.",
                  s.upstream_cancels);
    rc |= counter(out, NAME("auth_failures_total"),
                  "Requests refused 401: no key, or one that is unknown, wrong, expired, "
                  "disabled or revoked.",
                  s.auth_failures);
    rc |= counter(out, NAME("auth_guard_refusals_total"),
                  "Requests refused 429 because their address failed too often "
                  "(limits.auth_failures_per_minute).",
                  s.guard_refusals);
    rc |= counter(out, NAME("auth_guard_blocks_total"),
                  "Times an address was blocked for failing too often.", s.guard_blocks);
    rc |= backends(out, &s);
    rc |= shared(out, &s);
    rc |= fleet(out);
    rc |= reloads(out, m);
    rc |= gauge(out, NAME("buffered_bytes"),
                "Bytes held for requests in flight (the memory budget, "
                "limits.max_buffered_bytes, counts these).",
                membudget_used());
    rc |= process(out, m);
    metrics_sums_free(&s);
    return rc ? -1 : 0;
}
