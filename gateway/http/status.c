#include "status.h"

#include "backends.h"
#include "fleet.h"
#include "clock.h"
#include "keys.h"
#include "metrics.h"
#include "ratelimit.h"
#include "redis_glue.h"
#include "routes.h"
#include "snapshot.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define ERRORS_SHOWN 20

void status_sample(struct status_history *h, const struct metrics *m, int64_t now_ms)
{
    uint64_t rq, tk;
    metrics_totals(m, &rq, &tk);
    h->s[h->head].t_ms = now_ms;
    h->s[h->head].requests = rq;
    h->s[h->head].tokens = tk;
    h->head = (h->head + 1) % (STATUS_HISTORY + 1);
    if (h->n < STATUS_HISTORY + 1)
        h->n++;
}

static int str(struct buf *b, const char *name, const char *v)
{
    return buf_printf(b, "\"%s\":", name) | buf_json_str(b, v ? v : "", strlen(v ? v : ""));
}

static int num(struct buf *b, const char *name, uint64_t v)
{
    return buf_printf(b, "\"%s\":%llu", name, (unsigned long long)v);
}

/* Per-second rates between consecutive samples, oldest first: "requests"
 * and "tokens" arrays of equal length. */
static int rates(struct buf *b, const struct status_history *h)
{
    int rc = buf_puts(b, "\"rates\":{\"interval_s\":1");
    for (int which = 0; which < 2; which++) {
        rc |= buf_puts(b, which ? ",\"tokens\":[" : ",\"requests\":[");
        size_t first = (h->head + STATUS_HISTORY + 1 - h->n) % (STATUS_HISTORY + 1);
        for (size_t k = 1; k < h->n; k++) {
            size_t i = (first + k) % (STATUS_HISTORY + 1);
            size_t p = (first + k - 1) % (STATUS_HISTORY + 1);
            int64_t dt = h->s[i].t_ms - h->s[p].t_ms;
            uint64_t d =
                which ? h->s[i].tokens - h->s[p].tokens : h->s[i].requests - h->s[p].requests;
            double per_s = dt > 0 ? (double)d * 1000.0 / (double)dt : 0;
            rc |= buf_printf(b, "%s%.2f", k > 1 ? "," : "", per_s);
        }
        rc |= buf_puts(b, "]");
    }
    return rc | buf_puts(b, "}");
}

struct loaded_ctx {
    struct buf *b;
    int rc;
    bool first;
};

static void add_loaded(void *ud, const char *name)
{
    struct loaded_ctx *c = ud;
    c->rc |= buf_puts(c->b, c->first ? "" : ",") | buf_json_str(c->b, name, strlen(name));
    c->first = false;
}

static int backends(struct buf *b, const struct snapshot *snap, struct metrics_sums *s)
{
    int rc = buf_puts(b, "\"backends\":[");
    for (size_t i = 0; snap && i < snap->cfg->nbackends; i++) {
        const char *name = snap->cfg->backends[i].name;
        struct backend_stats st;
        backends_stats(snap->backends, (int)i, &st);
        struct ctab_entry *f = ctab_get(&s->failovers, &name, false);
        rc |= buf_puts(b, i ? ",{" : "{") | str(b, "name", name);
        rc |=
            buf_printf(b, ",\"up\":%s,", st.up ? "true" : "false") | str(b, "version", st.version);
        rc |= buf_puts(b, ",") | num(b, "models", st.nmodels) | buf_puts(b, ",\"loaded\":[");
        struct loaded_ctx c = {.b = b, .first = true};
        backends_each_loaded(snap->backends, (int)i, add_loaded, &c);
        rc |= c.rc | buf_puts(b, "],") | num(b, "inflight", st.inflight);
        rc |= buf_puts(b, ",") | num(b, "queue", st.queued);
        rc |= buf_puts(b, ",") | num(b, "failovers", f ? ctab_value(f, 0) : 0) | buf_puts(b, "}");
    }
    return rc | buf_puts(b, "]");
}

static const char *key_state(const struct key *k, int64_t now_s)
{
    if (k->revoked)
        return "revoked";
    if (k->disabled)
        return "disabled";
    if (k->expires && k->expires <= now_s)
        return "expired";
    return "active";
}

/* Each key of the keyring in force: what it used (summed over models by its
 * id), and its headroom now. */
static int keys(struct buf *b, const struct snapshot *snap, const struct metrics_sums *s,
                const struct fleet_use *fleet)
{
    int rc = buf_puts(b, "\"keys\":[");
    size_t n = snap && snap->keys ? snap->keys->n : 0;
    size_t nu = ctab_published(&s->usage);
    int64_t now = now_ms();
    for (size_t i = 0; i < n; i++) {
        const struct key *k = &snap->keys->v[i];
        uint64_t use[CTAB_VALUES] = {0};
        for (size_t u = 0; u < nu; u++) {
            const struct ctab_entry *e = ctab_at(&s->usage, u);
            if (strcmp(e->label[ML_USE_KEY_ID], k->id) == 0)
                for (unsigned c = 0; c < CTAB_VALUES; c++)
                    use[c] += ctab_value(e, c);
        }
        struct rl_limits lim = {.rpm = k->rpm, .tpm = k->tpm, .max_inflight = k->max_inflight};
        struct rl_verdict v;
        unsigned inflight;
        rl_peek(k->id, &lim, now, &v, &inflight);
        rc |= buf_puts(b, i ? ",{" : "{") | str(b, "name", k->name) | buf_puts(b, ",");
        rc |= str(b, "id", k->id) | buf_puts(b, ",") | str(b, "state", key_state(k, time(NULL)));
        rc |= buf_puts(b, ",") | num(b, "requests", use[MV_USE_REQUESTS]);
        rc |= buf_puts(b, ",") | num(b, "prompt_tokens", use[MV_USE_PROMPT]);
        rc |= buf_puts(b, ",") | num(b, "completion_tokens", use[MV_USE_COMPLETION]);
        rc |= buf_puts(b, ",") | num(b, "inflight", inflight);
        rc |= buf_puts(b, ",") | num(b, "rpm", k->rpm) | buf_puts(b, ",") | num(b, "tpm", k->tpm);
        rc |= buf_puts(b, ",") | num(b, "max_inflight", k->max_inflight);
        /* headroom: what is left of each limit now; null without that limit */
        if (k->rpm)
            rc |= buf_printf(b, ",\"remaining_requests\":%ld", v.remaining_requests);
        else
            rc |= buf_puts(b, ",\"remaining_requests\":null");
        if (k->tpm)
            rc |= buf_printf(b, ",\"remaining_tokens\":%ld", v.remaining_tokens);
        else
            rc |= buf_puts(b, ",\"remaining_tokens\":null");
        /* every replica's use, from Redis; null without "shared" or Redis */
        if (fleet)
            rc |= buf_printf(b,
                             ",\"fleet\":{\"requests\":%llu,\"prompt_tokens\":%llu,"
                             "\"completion_tokens\":%llu}",
                             (unsigned long long)fleet[i].requests,
                             (unsigned long long)fleet[i].prompt,
                             (unsigned long long)fleet[i].completion);
        else
            rc |= buf_puts(b, ",\"fleet\":null");
        rc |= buf_puts(b, "}");
    }
    return rc | buf_puts(b, "]");
}

/* "shared": null without it, else Redis's address and state. */
static int shared(struct buf *b, const struct snapshot *snap, const struct metrics_sums *s)
{
    if (!snap || !snap->cfg->shared.enabled)
        return buf_puts(b, "\"shared\":null");
    struct redis_glue_stats st;
    redis_glue_stats(&st);
    int rc = buf_puts(b, "\"shared\":{") | str(b, "redis", snap->cfg->shared.redis);
    rc |= buf_printf(b, ",\"up\":%s,", st.links && st.ready >= st.links ? "true" : "false");
    rc |= num(b, "connections", st.ready) | buf_puts(b, ",") | num(b, "outages", st.outages);
    rc |= buf_puts(b, ",") | num(b, "fallbacks", s->shared_fallbacks);
    return rc | buf_puts(b, "}");
}

static int errors(struct buf *b, const struct metrics *m)
{
    struct metrics_error e[ERRORS_SHOWN];
    size_t n = metrics_recent_errors(m, e, ERRORS_SHOWN);
    int rc = buf_puts(b, "\"errors\":[");
    for (size_t i = 0; i < n; i++) {
        rc |= buf_printf(b, "%s{\"time_ms\":%lld,", i ? "," : "", (long long)e[i].ts_ms);
        rc |= str(b, "route", routes_metric_label(e[i].route));
        rc |= buf_printf(b, ",\"status\":%u,", (unsigned)e[i].status);
        rc |= str(b, "message", e[i].message) | buf_puts(b, "}");
    }
    return rc | buf_puts(b, "]");
}

int status_json(const struct status_history *h, const struct metrics *m, unsigned nworkers,
                struct buf *out)
{
    struct metrics_sums s;
    if (metrics_sum(m, &s) < 0)
        return -1;
    struct snapshot *snap = snapshot_acquire();
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int rc = buf_puts(out, "{") | str(out, "version", GATEWAY_VERSION);
    rc |= buf_printf(out, ",\"now_ms\":%lld,\"started_s\":%lld,\"workers\":%u,",
                     (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000, (long long)m->started_s,
                     nworkers);
    rc |= str(out, "auth", snap && snap->cfg->auth == CFG_AUTH_KEYS ? "keys" : "none");
    rc |= buf_puts(out, ",\"totals\":{") | num(out, "requests", s.finished);
    rc |= buf_puts(out, ",") | num(out, "inflight", s.started - s.finished);
    rc |= buf_puts(out, ",") | num(out, "prompt_tokens", s.prompt_tokens);
    rc |= buf_puts(out, ",") | num(out, "completion_tokens", s.completion_tokens);
    rc |= buf_puts(out, ",") | num(out, "upstream_cancels", s.upstream_cancels);
    rc |= buf_puts(out, ",") | num(out, "auth_failures", s.auth_failures);
    rc |= buf_puts(out, ",") | num(out, "reloads_ok", atomic_load(&m->reloads_ok));
    rc |= buf_puts(out, ",") | num(out, "reloads_failed", atomic_load(&m->reloads_failed));
    rc |= buf_puts(out, "},") | backends(out, snap, &s) | buf_puts(out, ",") | rates(out, h);
    size_t nkeys = snap && snap->keys ? snap->keys->n : 0;
    struct fleet_use *fleet =
        snap && snap->cfg->shared.enabled && nkeys ? calloc(nkeys, sizeof *fleet) : NULL;
    if (fleet && fleet_read(snap->cfg, snap->keys, fleet) < 0) {
        free(fleet);
        fleet = NULL;
    }
    rc |= buf_puts(out, ",") | keys(out, snap, &s, fleet) | buf_puts(out, ",") | errors(out, m);
    free(fleet);
    rc |= buf_puts(out, ",") | shared(out, snap, &s);
    rc |= buf_puts(out, "}");
    snapshot_unref(snap);
    metrics_sums_free(&s);
    return rc ? -1 : 0;
}

/* 'sha256-<base64>' of the text between <tag> and </tag> in the page, for
 * a CSP source list. 0, or -1. */
static int element_hash(const char *tag, char *out, size_t size)
{
    char open[16], close[16];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(status_page_html, open);
    const char *b = a ? strstr(a, close) : NULL;
    if (!b)
        return -1;
    a += strlen(open);
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)a, (unsigned long long)(b - a));
    char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, h, sizeof h, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(out, size, "'sha256-%s'", b64);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

int status_page_csp(char *out, size_t size)
{
    char script[96], style[96];
    if (element_hash("script", script, sizeof script) < 0 ||
        element_hash("style", style, sizeof style) < 0)
        return -1;
    int n = snprintf(out, size,
                     "default-src 'none'; script-src %s; style-src %s; connect-src 'self'; "
                     "img-src 'self' data:; frame-ancestors 'none'",
                     script, style);
    return n > 0 && (size_t)n < size ? 0 : -1;
}
