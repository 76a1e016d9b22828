#include "routes.h"

#include "chat_dialect.h"
#include "completions_dialect.h"
#include "local.h"

#include <string.h>

/* The table. Exact paths first is not needed: an exact route only matches its
 * own path, and no prefix route shadows another. */
static const struct route table[] = {
    {METHOD_POST, "/v1/chat/completions", ROUTE_GENERATES, &errshape_openai, &dialect_chat, NULL},
    {METHOD_POST, "/v1/completions", ROUTE_GENERATES, &errshape_openai, &dialect_completions, NULL},
    {METHOD_GET, "/v1/models", 0, &errshape_openai, NULL, local_models},
    {METHOD_GET, "/v1/models/", ROUTE_PREFIX, &errshape_openai, NULL, local_model},
    {METHOD_GET, "/healthz", ROUTE_PUBLIC, &errshape_openai, NULL, local_healthz},
    {METHOD_GET, "/readyz", ROUTE_PUBLIC, &errshape_openai, NULL, local_readyz},
};

static const struct route not_found = {METHOD_ANY, "", 0, &errshape_openai, NULL, local_not_found};

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
    return &not_found;
}

bool routes_allows(const struct route *rt, const char *method)
{
    unsigned m = 0;
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        m = METHOD_GET;
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
    return names[rt->methods & 7];
}
