#include "cors.h"

#include "netaddr.h"
#include "reply.h"
#include "request.h"
#include "routes.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* What SDKs send from a browser: the OpenAI, Anthropic and Ollama clients,
 * the gateway's own x-ollama-backend, and the Stainless SDKs' x-stainless-*
 * (runtime, retry count, timeout...) and OpenAI's openai-* (organization,
 * project, beta) families, matched as prefixes. */
static const char *const allowed_exact[] = {
    "authorization",     "content-type",     "accept",
    "user-agent",        "x-api-key",        "api-key",
    "anthropic-version", "anthropic-beta",   "anthropic-dangerous-direct-browser-access",
    "x-request-id",      "x-ollama-backend",
};
static const char *const allowed_prefix[] = {"x-stainless-", "openai-"};

/* Headers a page may read from an answer, besides the safelisted ones. */
static const char expose[] =
    "x-request-id, retry-after, x-should-retry, x-ratelimit-limit-requests, "
    "x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, "
    "x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens";

/* The methods a preflight is told about when the route takes any. */
#define ANY_METHODS "GET, POST, DELETE"

/* s (a configured origin, or a header's value) as a canonical origin in
 * out: scheme and host lower-case, no default port. false when it is not
 * scheme://host[:port] (http or https) or is too long. */
static bool canonical(const char *s, char out[CORS_ORIGIN_MAX])
{
    char why[8];
    if (strlen(s) >= CORS_ORIGIN_MAX || netaddr_url(s, true, out, why, sizeof why) < 0)
        return false;
    size_t n = strlen(out);
    bool https = strncmp(out, "https://", 8) == 0;
    const char *def = https ? ":443" : ":80";
    size_t dl = strlen(def);
    if (n > dl && strcmp(out + n - dl, def) == 0)
        out[n - dl] = '\0';
    return true;
}

bool cors_origin_allowed(const char *const *origins, size_t n, const char *origin)
{
    char want[CORS_ORIGIN_MAX], have[CORS_ORIGIN_MAX];
    if (!n || !origin || !canonical(origin, want))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(origins[i], "*") == 0)
            return true;
        if (canonical(origins[i], have) && strcmp(have, want) == 0)
            return true;
    }
    return false;
}

static bool header_allowed(const char *p, size_t n)
{
    for (size_t i = 0; i < sizeof allowed_exact / sizeof allowed_exact[0]; i++)
        if (strlen(allowed_exact[i]) == n && strncasecmp(p, allowed_exact[i], n) == 0)
            return true;
    for (size_t i = 0; i < sizeof allowed_prefix / sizeof allowed_prefix[0]; i++) {
        size_t pl = strlen(allowed_prefix[i]);
        if (n > pl && strncasecmp(p, allowed_prefix[i], pl) == 0)
            return true;
    }
    return false;
}

static bool tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

bool cors_allow_headers(const char *requested, char *out, size_t outsz)
{
    size_t len = 0;
    bool all = true;
    out[0] = '\0';
    for (const char *p = requested; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t n = (size_t)(end - start);
        if (!n)
            continue;
        bool name = true;
        for (size_t i = 0; i < n && name; i++)
            name = tchar(start[i]);
        if (!name || !header_allowed(start, n)) {
            all = false;
            continue;
        }
        size_t need = (len ? 2 : 0) + n;
        if (len + need + 1 > outsz) {
            all = false;
            continue;
        }
        if (len) {
            memcpy(out + len, ", ", 2);
            len += 2;
        }
        memcpy(out + len, start, n);
        len += n;
        out[len] = '\0';
    }
    return all;
}

static const char *origin_of(const struct request *r)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
}

bool cors_is_preflight(const struct request *r)
{
    if (!r->cfg->cors.norigins || strcmp(r->method, "OPTIONS") != 0 || !origin_of(r) ||
        !MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Method"))
        return false;
    /* a preflight has no body; an OPTIONS with one is an ordinary request */
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    return (!cl || strcmp(cl, "0") == 0) &&
           !MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Transfer-Encoding");
}

enum MHD_Result cors_preflight(struct request *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return reply_response(r, 204, NULL, NULL);
    bool ok = true;
    if (cors_origin_allowed(r->cfg->cors.origins, r->cfg->cors.norigins, origin_of(r))) {
        const char *methods = routes_allowed(r->route);
        char max_age[16];
        snprintf(max_age, sizeof max_age, "%d", CORS_MAX_AGE_S);
        ok = MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                                     methods[0] ? methods : ANY_METHODS) == MHD_YES &&
             MHD_add_response_header(resp, "Access-Control-Max-Age", max_age) == MHD_YES;
        const char *asked =
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Headers");
        char heads[1024];
        /* the allowed ones only: the browser names the one left out */
        if (ok && asked && (cors_allow_headers(asked, heads, sizeof heads), heads[0]))
            ok = MHD_add_response_header(resp, "Access-Control-Allow-Headers", heads) == MHD_YES;
    }
    if (!ok) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    return reply_response(r, 204, NULL, resp);
}

int cors_add_headers(const struct request *r, struct MHD_Response *resp)
{
    if (!r->cfg->cors.norigins)
        return 0;
    const char *origin = origin_of(r);
    /* Vary on every answer, allowed origin or not: a shared cache must not
     * hand an answer made for one Origin (or none) to a page of another */
    if (!cors_origin_allowed(r->cfg->cors.origins, r->cfg->cors.norigins, origin))
        return MHD_add_response_header(resp, "Vary", "Origin") == MHD_YES ? 0 : -1;
    bool ok = MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin) == MHD_YES &&
              MHD_add_response_header(resp, "Vary", "Origin") == MHD_YES &&
              MHD_add_response_header(resp, "Access-Control-Expose-Headers", expose) == MHD_YES;
    return ok ? 0 : -1;
}
