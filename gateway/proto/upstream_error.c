#include "upstream_error.h"

#include "jscan.h"
#include "json.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The parse copy's ceiling; the real bound is the engine's on an error body. */
#define SCRATCH_MAX (SIZE_MAX / 4)

static void backend_label(char *out, size_t size, const char *backend)
{
    if (backend && backend[0])
        snprintf(out, size, "Backend \"%.63s\"", backend);
    else
        snprintf(out, size, "The backend");
}

void upstream_excerpt(char *out, size_t size, const char *p, size_t len)
{
    size_t o = 0, i = 0;
    bool space = false;
    /* each step writes at most 2 bytes; keep 4 for "...\0" */
    for (; i < len && o + 6 <= size; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            space = o > 0;
            continue;
        }
        if (space)
            out[o++] = ' ';
        space = false;
        out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (jscan_ws(p + i, p + len) != p + len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

const char *upstream_error_text(const cJSON *e)
{
    if (cJSON_IsString(e))
        return e->valuestring;
    const cJSON *m = cJSON_IsObject(e) ? json_get(e, "message") : NULL;
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

int upstream_fail(struct apierr *err, const char *backend, const char *fmt, ...)
{
    char who[96], what[sizeof err->message];
    va_list ap;
    backend_label(who, sizeof who, backend);
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return apierr_set(err, 502, APIERR_API, "upstream_error", NULL, "%s %s", who, what);
}

static bool has(const char *text, const char *needle)
{
    return text && strcasestr(text, needle) != NULL;
}

void upstream_error_map(int status, const char *body, size_t len, const char *backend_name,
                        struct apierr *err)
{
    char who[96], reason[200];
    const char *text = NULL; /* Ollama's own error message, when the body is {"error":...} */
    struct buf scratch;
    size_t at;

    backend_label(who, sizeof who, backend_name);
    buf_init(&scratch, SCRATCH_MAX);
    cJSON *j = body && len ? json_parse(&scratch, body, len, &at) : NULL;
    buf_free(&scratch);
    if (cJSON_IsObject(j))
        text = upstream_error_text(json_get(j, "error"));
    /* Only Ollama's own message is quoted: anything else (an HTML error page
     * from a proxy in front of the backend, say) is described, never relayed. */
    if (text)
        upstream_excerpt(reason, sizeof reason, text, strlen(text));
    else if (body && len)
        snprintf(reason, sizeof reason, "a %zu-byte answer that is not Ollama's JSON error", len);
    else
        snprintf(reason, sizeof reason, "(empty body)");

    if (status == 400) {
        const char *param = NULL;
        if (has(text, "does not support tools"))
            param = "tools";
        else if (has(text, "does not support insert"))
            param = "suffix";
        else if (has(text, "does not support thinking") || has(text, "invalid think value"))
            param = "reasoning_effort";
        else if (has(text, "does not support"))
            param = "model";
        else if (has(text, "top_logprobs"))
            param = "top_logprobs";
        else if (has(text, "invalid model name"))
            param = "model";
        apierr_set(err, 400, APIERR_INVALID, NULL, param, "%s rejected the request: %s", who,
                   reason);
    } else if (status == 404 && has(text, "not found")) {
        apierr_set(err, 404, APIERR_INVALID, "model_not_found", "model",
                   "%s does not have this model: %s", who, reason);
    } else if (status == 404) {
        apierr_set(err, 502, APIERR_API, "upstream_error", NULL,
                   "%s answered HTTP 404 (%s); check the backend's URL.", who, reason);
        err->no_retry = true;
    } else if (status == 500 && (has(text, "invalid format") || has(text, "schema"))) {
        apierr_set(err, 400, APIERR_INVALID, NULL, "response_format",
                   "%s could not use the response_format: %s", who, reason);
    } else if (status == 500 && has(text, "does not support")) {
        apierr_set(err, 400, APIERR_INVALID, NULL, "model", "%s rejected the request: %s", who,
                   reason);
    } else if (status == 500 &&
               ((has(text, "option \"") && has(text, "must be of type")) ||
                has(text, "more system memory") || has(text, "unable to allocate"))) {
        apierr_set(err, 502, APIERR_API, "upstream_error", NULL,
                   "%s failed and retrying will not help: %s", who, reason);
        err->no_retry = true;
    } else if (status == 503 || status == 429) {
        apierr_set(err, 503, APIERR_API, "backend_unavailable", NULL, "%s is busy (HTTP %d): %s",
                   who, status, reason);
    } else if (status == 401 || status == 403) {
        apierr_set(err, 502, APIERR_API, "upstream_error", NULL,
                   "%s refused the gateway's request (HTTP %d: %s); check the backend's "
                   "configured headers, and that Ollama accepts the gateway's Host and Origin.",
                   who, status, reason);
        err->no_retry = true;
    } else if (status >= 400 && status < 500 && status != 408 && status != 499) {
        apierr_set(err, 502, APIERR_API, "upstream_error", NULL,
                   "%s refused the gateway's request (HTTP %d): %s", who, status, reason);
        err->no_retry = true;
    } else {
        apierr_set(err, 502, APIERR_API, "upstream_error", NULL, "%s failed (HTTP %d): %s", who,
                   status, reason);
    }
    cJSON_Delete(j);
}
