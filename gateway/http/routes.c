#include "routes.h"

#include "chat_dialect.h"
#include "embeddings.h"
#include "completions_dialect.h"
#include "local.h"
#include "messages_dialect.h"
#include "messages_error.h"
#include "native.h"
#include "responses_dialect.h"

#include <string.h>

#define NATIVE ROUTE_NATIVE
#define ADMIN ROUTE_ADMIN
#define OLLAMA (&errshape_ollama)

/* The table. Exact paths first is not needed: an exact route only matches its
 * own path, and no prefix route shadows another. */
static const struct route table[] = {
    {METHOD_POST, "/v1/chat/completions", ROUTE_GENERATES, &errshape_openai, &dialect_chat, NULL},
    {METHOD_POST, "/v1/embeddings", ROUTE_GENERATES, &errshape_openai, &dialect_embeddings, NULL},
    {METHOD_POST, "/v1/completions", ROUTE_GENERATES, &errshape_openai, &dialect_completions, NULL},
    {METHOD_POST, "/v1/messages", ROUTE_GENERATES, &errshape_anthropic, &dialect_messages, NULL},
    /* Anthropic's other message routes (count_tokens, batches): not here, in its shape */
    {METHOD_ANY, "/v1/messages/", ROUTE_PREFIX, &errshape_anthropic, NULL, local_not_found},
    {METHOD_POST, "/v1/responses", ROUTE_GENERATES, &errshape_openai, &dialect_responses, NULL},
    {METHOD_GET, "/v1/models", 0, &errshape_openai, NULL, local_models},
    {METHOD_GET, "/v1/models/", ROUTE_PREFIX, &errshape_openai, NULL, local_model},
    {METHOD_GET, "/healthz", ROUTE_PUBLIC, &errshape_openai, NULL, local_healthz},
    {METHOD_GET, "/readyz", ROUTE_PUBLIC, &errshape_openai, NULL, local_readyz},
    /* Ollama's native API */
    {METHOD_POST, "/api/chat", NATIVE | ROUTE_GENERATES, OLLAMA, &dialect_native_stream, NULL},
    {METHOD_POST, "/api/generate", NATIVE | ROUTE_GENERATES, OLLAMA, &dialect_native_stream, NULL},
    {METHOD_POST, "/api/embed", NATIVE | ROUTE_GENERATES, OLLAMA, &dialect_native_whole, NULL},
    {METHOD_POST, "/api/embeddings", NATIVE | ROUTE_GENERATES, OLLAMA, &dialect_native_whole, NULL},
    {METHOD_POST, "/api/show", NATIVE, OLLAMA, &dialect_native_whole, NULL},
    {METHOD_GET, "/api/tags", NATIVE, OLLAMA, NULL, local_ollama_tags},
    {METHOD_GET, "/api/ps", NATIVE, OLLAMA, NULL, local_ollama_ps},
    {METHOD_GET, "/api/version", NATIVE, OLLAMA, NULL, local_ollama_version},
    {METHOD_GET, "/", NATIVE, OLLAMA, NULL, local_ollama_root},
    /* model management: admin keys only */
    {METHOD_POST, "/api/pull", NATIVE | ADMIN, OLLAMA, &dialect_native_admin, NULL},
    {METHOD_POST, "/api/push", NATIVE | ADMIN, OLLAMA, &dialect_native_admin, NULL},
    {METHOD_POST, "/api/create", NATIVE | ADMIN, OLLAMA, &dialect_native_admin, NULL},
    {METHOD_POST, "/api/copy", NATIVE | ADMIN, OLLAMA, &dialect_native_admin, NULL},
    {METHOD_DELETE, "/api/delete", NATIVE | ADMIN, OLLAMA, &dialect_native_admin, NULL},
    {METHOD_HEAD | METHOD_POST, "/api/blobs/", NATIVE | ADMIN | ROUTE_PREFIX | ROUTE_UPLOAD, OLLAMA,
     &dialect_native_blob, NULL},
};

static const struct route not_found = {METHOD_ANY, "", 0, &errshape_openai, NULL, local_not_found};
/* An unknown /api/ path answers in Ollama's shape. */
static const struct route native_not_found = {METHOD_ANY, "/api/", NATIVE,
                                              OLLAMA,     NULL,    local_not_found};

/* /v1/models for Anthropic's clients (routes_anthropic). */
static const struct route anthropic_models = {
    METHOD_GET, "/v1/models", 0, &errshape_anthropic, NULL, local_anthropic_models};
static const struct route anthropic_model = {
    METHOD_GET, "/v1/models/", ROUTE_PREFIX, &errshape_anthropic, NULL, local_anthropic_model};

const struct route *routes_anthropic(const struct route *rt)
{
    if (rt->handler == local_models)
        return &anthropic_models;
    if (rt->handler == local_model)
        return &anthropic_model;
    return rt;
}

const struct route *routes_match(const char *path)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const struct route *rt = &table[i];
        if (rt->flags & ROUTE_PREFIX) {
            size_t n = strlen(rt->path);
            if (strncmp(path, rt->path, n) == 0 && path[n])
                return rt;
        } else if (strcmp(path, rt->path) == 0) {
            return rt;
        }
    }
    return strncmp(path, "/api/", 5) == 0 ? &native_not_found : &not_found;
}

#define NROUTES (sizeof table / sizeof table[0])

size_t routes_metric_count(void)
{
    return NROUTES + 1;
}

size_t routes_metric_index(const struct route *rt)
{
    rt = rt == &anthropic_models  ? routes_match("/v1/models")
         : rt == &anthropic_model ? routes_match("/v1/models/x")
                                  : rt;
    if (rt >= table && rt < table + NROUTES)
        return (size_t)(rt - table);
    return NROUTES; /* not_found, native_not_found */
}

const char *routes_metric_label(size_t i)
{
    return i < NROUTES ? table[i].path : "other";
}

bool routes_allows(const struct route *rt, const char *method)
{
    unsigned m = 0;
    if (strcmp(method, "GET") == 0)
        m = METHOD_GET;
    else if (strcmp(method, "HEAD") == 0)
        m = METHOD_GET | METHOD_HEAD;
    else if (strcmp(method, "POST") == 0)
        m = METHOD_POST;
    else if (strcmp(method, "DELETE") == 0)
        m = METHOD_DELETE;
    return (rt->methods & (m | METHOD_ANY)) != 0;
}

const char *routes_allowed(const struct route *rt)
{
    static const char *const names[] = {
        "",       "GET",         "POST",         "GET, POST",
        "DELETE", "GET, DELETE", "POST, DELETE", "GET, POST, DELETE"};
    if (rt->methods & METHOD_HEAD)
        return rt->methods & METHOD_POST ? "HEAD, POST" : "HEAD";
    return names[rt->methods & 7];
}
