#include "auth.h"

#include "authguard.h"
#include "authguard_shared.h"
#include "clock.h"
#include "handler.h"
#include "keys.h"
#include "log.h"
#include "netaddr.h"
#include "ratelimit_shared.h"
#include "request.h"
#include "snapshot.h"

#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The credential the client sent, or NULL (*len 0). Authorization must use
 * the Bearer scheme; the OpenAI SDKs send that, Azure-style clients send
 * api-key, and some tools send x-api-key. */
static const char *presented(struct MHD_Connection *c, size_t *len, bool *wrong_scheme)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    *wrong_scheme = false;
    if (v) {
        while (*v == ' ' || *v == '\t')
            v++;
        if (strncasecmp(v, "Bearer", 6) == 0 && (v[6] == ' ' || v[6] == '\t')) {
            v += 6;
            while (*v == ' ' || *v == '\t')
                v++;
        } else {
            *wrong_scheme = *v != '\0';
            v = NULL;
        }
    }
    if (!v || !*v)
        v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "api-key");
    if (!v || !*v)
        v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key");
    if (!v || !*v) {
        *len = 0;
        return NULL;
    }
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    *len = n;
    return v;
}

/* r's client as the brute-force guard takes it, or NULL when the guard
 * must leave it alone: no IP address, or one in limits.auth_guard_exempt
 * (fail2ban's ignoreip). */
static const struct sockaddr *guarded(const struct request *r, struct sockaddr_in6 *sa)
{
    const struct cfg_cidrs *ex = &r->cfg->limits.auth_guard_exempt;
    if (!r->client_known || (ex->n && netaddr_cidr_match(ex->v, ex->n, r->client)))
        return NULL;
    memset(sa, 0, sizeof *sa);
    sa->sin6_family = AF_INET6;
    memcpy(&sa->sin6_addr, r->client, 16); /* IPv4 mapped: the guard counts it as IPv4 */
    return (const struct sockaddr *)(const void *)sa;
}

static void day_of(int64_t t, char *out, size_t size)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, size, "%Y-%m-%d", &tm);
}

/* The 401 for a credential that did not check out. The secret is never
 * echoed; a key is named by its public id only. */
static void refuse(struct apierr *e, enum key_verdict v, const struct key *k, bool none,
                   bool wrong_scheme)
{
    if (none && wrong_scheme) {
        apierr_set(e, 401, APIERR_INVALID, "invalid_api_key", NULL,
                   "The Authorization header must use the Bearer scheme: "
                   "Authorization: Bearer YOUR_KEY");
    } else if (none) {
        apierr_set(e, 401, APIERR_INVALID, "invalid_api_key", NULL,
                   "You didn't provide an API key. Send it in an Authorization header using "
                   "Bearer auth (Authorization: Bearer YOUR_KEY), or in an api-key or "
                   "x-api-key header");
    } else if (v == KEY_EXPIRED && k) {
        char day[16];
        day_of(k->expires - 1, day, sizeof day);
        apierr_set(e, 401, APIERR_INVALID, "invalid_api_key", NULL,
                   "The API key og-%s-*** expired at the end of %s", k->id, day);
    } else if ((v == KEY_DISABLED || v == KEY_REVOKED) && k) {
        apierr_set(e, 401, APIERR_INVALID, "invalid_api_key", NULL, "The API key og-%s-*** %s",
                   k->id, key_verdict_text(v));
    } else {
        apierr_set(e, 401, APIERR_INVALID, "invalid_api_key", NULL,
                   "Incorrect API key provided. Keys look like og-<id>-<secret>; an "
                   "administrator can list them with `ollama-gateway key list`");
    }
}

void auth_key_refusal(const struct request *r, enum key_verdict v, struct apierr *e)
{
    refuse(e, v, r->key, false, false);
}

void auth_refusal(const struct request *r, struct apierr *e)
{
    apierr_set(e, 429, APIERR_RATE_LIMIT, "rate_limit_exceeded", NULL,
               "Rate limit reached for key og-%s-*** on %s; try again in %u s", r->key->id,
               r->rlv.which, r->rlv.retry_after_s);
    e->retry_after_s = r->rlv.retry_after_s;
}

static int admit(struct request *r, const struct sockaddr *sa, struct apierr *e)
{
    const struct key *k = r->key;
    struct rl_limits lim = {.rpm = k->rpm, .tpm = k->tpm, .max_inflight = k->max_inflight};
    /* Every key has a limiter state, limits or not: it also keeps the key's
     * token totals for metrics. */
    r->rl = rl_state_for(k->id);
    if (!r->rl) {
        /* out of memory: serve rather than refuse a paying client */
        log_warn("key %s: no memory for its rate-limit state; served without limits", k->id);
        return 0;
    }
    bool generation = (r->route->flags & ROUTE_GENERATES) != 0;
    /* With "shared", the limits are Redis's to judge (the answer comes
     * later: ratelimit_shared.h); without it, or while it is away, here. */
    if (rls_admit(r, &lim, generation, sa) == RLS_WAIT)
        return 0;
    if (rl_admit(r->rl, &lim, generation, now_ms(), &r->rlv)) {
        r->rl_inflight = generation && lim.max_inflight;
        return 0;
    }
    auth_refusal(r, e);
    return -1;
}

int auth_request(struct request *r, struct apierr *e)
{
    if (r->cfg->auth == CFG_AUTH_NONE || (r->route->flags & ROUTE_PUBLIC))
        return 0;
    struct authguard *g = ((const struct http_shared *)r->w->gw->app)->authguard;
    struct sockaddr_in6 sa6;
    const struct sockaddr *sa = guarded(r, &sa6);
    int64_t now = now_ms();
    unsigned wait = g ? authguard_blocked(g, sa, now) : 0;
    if (wait) {
        r->guard_refused = true;
        apierr_set(e, 429, APIERR_RATE_LIMIT, "rate_limit_exceeded", NULL,
                   "Too many failed authentication attempts from this address; try again in "
                   "%u s",
                   wait);
        e->retry_after_s = wait;
        return -1;
    }
    size_t len;
    bool wrong_scheme;
    const char *tok = presented(r->conn, &len, &wrong_scheme);
    const struct key *k = NULL;
    enum key_verdict v =
        tok ? keyring_verify(r->snap->keys, tok, len, (int64_t)time(NULL), &k) : KEY_MALFORMED;
    if (v != KEY_OK) {
        refuse(e, v, k, !tok, wrong_scheme);
        r->auth_failed = true;
        unsigned blocked = g ? authguard_failed(g, sa, now) : 0;
        r->guard_blocked = blocked != 0;
        /* counted across replicas too: the answer may make this a 429 */
        r->err = *e;
        if (!blocked)
            ags_failed(r, sa, r->cfg->limits.auth_failures_per_minute);
        char client[INET6_ADDRSTRLEN] = "";
        if (blocked && r->client_known)
            netaddr_ip_text(r->client, client);
        if (blocked)
            log_warn("authentication failed too often from %s (last: %s%s): refused for %u s",
                     client, k ? "key og-" : "", k ? k->id : key_verdict_text(v), blocked);
        return -1;
    }
    r->key = k;
    if ((r->route->flags & ROUTE_ADMIN) && !k->admin)
        return apierr_set(e, 403, APIERR_PERMISSION, "admin_required", NULL,
                          "Model management needs an admin key (ollama-gateway key create NAME "
                          "--admin); the API key og-%s-*** is not one",
                          k->id);
    return admit(r, sa, e);
}

int auth_scope(const struct request *r, const char *model, struct apierr *e)
{
    if (!r->key || key_allows_model(r->key, model))
        return 0;
    return apierr_set(e, 403, APIERR_PERMISSION, "model_not_allowed", "model",
                      "The API key og-%s-*** may not use the model '%s'", r->key->id, model);
}

struct add_ctx {
    struct MHD_Response *resp;
    bool failed;
};

static void add_one(void *ud, const char *name, const char *value)
{
    struct add_ctx *c = ud;
    if (MHD_add_response_header(c->resp, name, value) != MHD_YES)
        c->failed = true;
}

int auth_add_headers(const struct request *r, struct MHD_Response *resp)
{
    struct add_ctx c = {.resp = resp};
    if (r->rl)
        rl_headers(&r->rlv, add_one, &c);
    return c.failed ? -1 : 0;
}

void auth_finish(struct request *r)
{
    if (!r->rl)
        return;
    long prompt, completion;
    request_tokens(r, &prompt, &completion);
    bool charged = rls_finish(r, prompt, completion);
    if (r->rl_inflight) {
        rl_release(r->rl);
        r->rl_inflight = false;
    }
    if (prompt || completion) {
        const struct key *k = r->key;
        /* Charged to Redis: the local call keeps the totals only. */
        struct rl_limits lim = {.tpm = charged ? 0 : k->tpm};
        rl_charge(r->rl, &lim, prompt, completion, now_ms());
    }
}
