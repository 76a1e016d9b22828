/* Unit tests for gateway/http/routes.c: the one table of what the gateway
 * answers, and the error shape each path gets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "messages_error.h"
#include "routes.h"

#include <string.h>

static void exact_paths(void **state)
{
    (void)state;
    const struct route *rt = routes_match("/v1/chat/completions");
    assert_non_null(rt->dialect);
    assert_string_equal(rt->path, "/v1/chat/completions");
    assert_true(rt->flags & ROUTE_GENERATES);
    assert_ptr_equal(rt->errors, &errshape_openai);
    /* no prefix matching on exact routes */
    assert_string_not_equal(routes_match("/v1/chat/completions/x")->path, "/v1/chat/completions");
    assert_null(routes_match("/healthz")->dialect);
    assert_true(routes_match("/healthz")->flags & ROUTE_PUBLIC);
    assert_true(routes_match("/readyz")->flags & ROUTE_PUBLIC);
    assert_false(routes_match("/v1/models")->flags & ROUTE_PUBLIC);
}

/* "/v1/models/" takes ids with '/' (Ollama's own router cannot), not "". */
static void prefix_paths(void **state)
{
    (void)state;
    const struct route *rt = routes_match("/v1/models/hf.co/org/repo:Q4");
    assert_string_equal(rt->path, "/v1/models/");
    assert_string_not_equal(routes_match("/v1/models/")->path, "/v1/models/");
    rt = routes_match("/api/blobs/sha256:abc");
    assert_true(rt->flags & ROUTE_UPLOAD);
    assert_true(rt->flags & ROUTE_ADMIN);
}

/* Every native route is switchable and answers in Ollama's shape; model
 * management is admin only; unknown paths get the shape of their API. */
static void native_family(void **state)
{
    (void)state;
    static const char *const open_routes[] = {"/api/chat",       "/api/generate", "/api/embed",
                                              "/api/embeddings", "/api/show",     "/api/tags",
                                              "/api/ps",         "/api/version",  "/"};
    for (size_t i = 0; i < sizeof open_routes / sizeof open_routes[0]; i++) {
        const struct route *rt = routes_match(open_routes[i]);
        assert_string_equal(rt->path, open_routes[i]);
        assert_true(rt->flags & ROUTE_NATIVE);
        assert_false(rt->flags & ROUTE_ADMIN);
        assert_ptr_equal(rt->errors, &errshape_ollama);
    }
    static const char *const admin[] = {"/api/pull", "/api/push",   "/api/create",
                                        "/api/copy", "/api/delete", "/api/blobs/sha256:00"};
    for (size_t i = 0; i < sizeof admin / sizeof admin[0]; i++) {
        const struct route *rt = routes_match(admin[i]);
        assert_true(rt->flags & ROUTE_ADMIN);
        assert_true(rt->flags & ROUTE_NATIVE);
        assert_non_null(rt->dialect);
    }
    const struct route *nf = routes_match("/api/nope");
    assert_ptr_equal(nf->errors, &errshape_ollama);
    assert_non_null(nf->handler);
    assert_true(nf->flags & ROUTE_NATIVE); /* switched off with the rest */
    nf = routes_match("/v2/anything");
    assert_ptr_equal(nf->errors, &errshape_openai);
    assert_false(nf->flags & ROUTE_NATIVE);
    /* every route relays through a dialect or answers locally, never both */
    static const char *const all[] = {"/v1/chat/completions",
                                      "/v1/embeddings",
                                      "/v1/models",
                                      "/api/chat",
                                      "/api/tags",
                                      "/api/pull",
                                      "/x"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const struct route *rt = routes_match(all[i]);
        assert_true((rt->dialect == NULL) != (rt->handler == NULL));
    }
}

static void methods(void **state)
{
    (void)state;
    const struct route *chat = routes_match("/v1/chat/completions");
    assert_true(routes_allows(chat, "POST"));
    assert_false(routes_allows(chat, "GET"));
    assert_false(routes_allows(chat, "HEAD"));
    assert_false(routes_allows(chat, "PUT"));
    assert_string_equal(routes_allowed(chat), "POST");
    const struct route *models = routes_match("/v1/models");
    assert_true(routes_allows(models, "GET"));
    assert_true(routes_allows(models, "HEAD")); /* GET routes answer HEAD */
    assert_string_equal(routes_allowed(models), "GET");
    const struct route *del = routes_match("/api/delete");
    assert_true(routes_allows(del, "DELETE"));
    assert_false(routes_allows(del, "POST"));
    const struct route *blobs = routes_match("/api/blobs/sha256:00");
    assert_true(routes_allows(blobs, "HEAD"));
    assert_true(routes_allows(blobs, "POST"));
    assert_false(routes_allows(blobs, "GET"));
    assert_string_equal(routes_allowed(blobs), "HEAD, POST");
    /* an unknown path answers 404 to any method, never 405 */
    const struct route *nf = routes_match("/nowhere");
    assert_true(routes_allows(nf, "PATCH"));
    assert_true(routes_allows(nf, "GET"));
}

/* Anthropic's API: /v1/messages and its family answer in its shape, and
 * /v1/models has an Anthropic twin that routes_anthropic picks. */
static void anthropic_family(void **state)
{
    (void)state;
    const struct route *rt = routes_match("/v1/messages");
    assert_non_null(rt->dialect);
    assert_true(rt->flags & ROUTE_GENERATES);
    assert_ptr_equal(rt->errors, &errshape_anthropic);
    rt = routes_match("/v1/messages/count_tokens");
    assert_null(rt->dialect);
    assert_ptr_equal(rt->errors, &errshape_anthropic);
    assert_true(routes_allows(rt, "POST"));
    const struct route *models = routes_match("/v1/models");
    const struct route *am = routes_anthropic(models);
    assert_ptr_not_equal(am, models);
    assert_ptr_equal(am->errors, &errshape_anthropic);
    assert_ptr_equal(routes_anthropic(routes_match("/v1/models/x"))->errors, &errshape_anthropic);
    /* any other route is itself */
    rt = routes_match("/v1/chat/completions");
    assert_ptr_equal(routes_anthropic(rt), rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_paths),      cmocka_unit_test(prefix_paths),
        cmocka_unit_test(native_family),    cmocka_unit_test(methods),
        cmocka_unit_test(anthropic_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
