/* Unit tests for config.c: loading gateway.json, defaults, and every kind of
 * problem reported as FILE:LINE. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "tls_fixture.h"
#include "tlscreds.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The rest of a minimal valid file, after its "{" (for "{\"key\": 1, " MIN_TAIL). */
#define MIN_TAIL "\"backends\": [{\"url\": \"http://127.0.0.1:11434\"}]}"
#define MIN_OK "{" MIN_TAIL

/* Load text as "t.json" with relative paths under /etc/gw. */
static struct cfg *load(const char *text, struct cfg_errors *e)
{
    cfg_errors_init(e);
    return cfg_load_buffer(text, strlen(text), "t.json", "/etc/gw", e);
}

/* Expect text to fail; returns the errors (caller frees). */
static void load_bad(const char *text, struct cfg_errors *e)
{
    struct cfg *c = load(text, e);
    if (c) {
        cfg_unref(c);
        fail_msg("expected errors for: %s", text);
    }
    assert_true(e->count > 0);
    assert_non_null(e->text.p);
}

static void assert_has(const struct cfg_errors *e, const char *needle)
{
    if (!e->text.p || !strstr(e->text.p, needle))
        fail_msg("missing \"%s\" in:\n%s", needle, e->text.p ? e->text.p : "(nothing)");
}

static void expect_error(const char *text, const char *needle)
{
    struct cfg_errors e;
    load_bad(text, &e);
    assert_has(&e, needle);
    cfg_errors_free(&e);
}

static struct cfg *load_ok(const char *text)
{
    struct cfg_errors e;
    struct cfg *c = load(text, &e);
    if (!c)
        fail_msg("unexpected errors:\n%s", e.text.p ? e.text.p : "");
    assert_int_equal(e.count, 0);
    cfg_errors_free(&e);
    return c;
}

static const char full_config[] =
    "{\n"                                                               /* 1 */
    "  \"listen\": [\"127.0.0.1:8080\", \"[::1]:8081\"],\n"             /* 2 */
    "  \"tls\": { \"cert\": \"cert.pem\", \"key\": \"/k/key.pem\" },\n" /* 3 */
    "  \"workers\": 4,\n"                                               /* 4 */
    "  \"keys_file\": \"keys.json\",\n"                                 /* 5 */
    "  \"auth\": \"none\",\n"                                           /* 6 */
    "  \"allow_unauthenticated_public\": true,\n"                       /* 7 */
    "  \"backends\": [\n"                                               /* 8 */
    "    { \"name\": \"gpu1\", \"url\": \"http://127.0.0.1:11434/\",\n" /* 9 */
    "      \"max_inflight\": 8,\n"                                      /* 10 */
    "      \"weight\": 3,\n"                                            /* 11 */
    "      \"headers\": { \"Authorization\": \"Bearer abc\", \"X-Empty\": \"\" } },\n"
    "    { \"name\": \"gpu2\", \"url\": \"https://[::1]:443\" }\n" /* 13 */
    "  ],\n"                                                       /* 14 */
    "  \"aliases\": {\n"                                           /* 15 */
    "    \"gpt-3.5-turbo\": \"llama3.2\",\n"                       /* 16 */
    "    \"gpt-4o*\": { \"model\": \"qwen2.5:14b\", \"options\": { \"num_ctx\": 8192 },\n"
    "                   \"backends\": [\"gpu2\"] },\n"                                /* 18 */
    "    \"text-embedding-3-small\": \"nomic-embed-text\"\n"                          /* 19 */
    "  },\n"                                                                          /* 20 */
    "  \"discovery_interval_s\": 7,\n"                                                /* 21 */
    "  \"expose_backend_models\": false,\n"                                           /* 22 */
    "  \"limits\": {\n"                                                               /* 23 */
    "    \"max_body_bytes\": 1048576,\n"                                              /* 24 */
    "    \"max_connections\": 500, \"max_connections_per_address\": 7,\n"             /* 25 */
    "    \"header_timeout_s\": 11, \"body_timeout_s\": 12, \"idle_timeout_s\": 13,\n" /* 26 */
    "    \"first_token_timeout_s\": 301,\n"                                           /* 27 */
    "    \"idle_stream_timeout_s\": 121,\n"                                           /* 28 */
    "    \"queue_timeout_s\": 31,\n"                                                  /* 29 */
    "    \"keepalive_interval_s\": 6\n"                                               /* 30 */
    "  },\n"                                                                          /* 31 */
    "  \"cors\": { \"origins\": [\"https://App.Example.com\", \"*\"] },\n"            /* 32 */
    "  \"log\": { \"level\": \"debug\", \"access\": \"logs/access.log\" },\n"
    "  \"metrics\": { \"listen\": \"127.0.0.1:9464\" }\n" /* 34 */
    "}\n";

static void test_full_config(void **state)
{
    (void)state;
    struct cfg *c = load_ok(full_config);
    assert_string_equal(c->path, "t.json");
    assert_string_equal(c->dir, "/etc/gw");

    assert_int_equal(c->nlisten, 2);
    assert_string_equal(c->listen[0].host, "127.0.0.1");
    assert_int_equal(c->listen[0].port, 8080);
    assert_int_equal(c->listen[0].family, AF_INET);
    assert_true(c->listen[0].loopback);
    assert_false(c->listen[0].wildcard);
    assert_string_equal(c->listen[0].text, "127.0.0.1:8080");
    assert_string_equal(c->listen[1].host, "::1");
    assert_int_equal(c->listen[1].port, 8081);
    assert_int_equal(c->listen[1].family, AF_INET6);
    assert_true(c->listen[1].loopback);

    assert_string_equal(c->tls.cert, "/etc/gw/cert.pem");
    assert_string_equal(c->tls.key, "/k/key.pem");
    assert_int_equal(c->workers, 4);
    assert_string_equal(c->keys_file, "/etc/gw/keys.json");
    assert_int_equal(c->auth, CFG_AUTH_NONE);
    assert_true(c->allow_unauthenticated_public);

    assert_int_equal(c->nbackends, 2);
    const struct cfg_backend *b = &c->backends[0];
    assert_string_equal(b->name, "gpu1");
    assert_string_equal(b->url, "http://127.0.0.1:11434");
    assert_int_equal(b->max_inflight, 8);
    assert_int_equal(b->weight, 3);
    assert_int_equal(b->nheaders, 2);
    assert_string_equal(b->headers[0], "Authorization: Bearer abc");
    assert_string_equal(b->headers[1], "X-Empty;");
    assert_null(b->headers[2]);
    b = &c->backends[1];
    assert_string_equal(b->name, "gpu2");
    assert_string_equal(b->url, "https://[::1]:443");
    assert_int_equal(b->max_inflight, 0);
    assert_int_equal(b->weight, 1);
    assert_int_equal(b->nheaders, 0);
    assert_non_null(b->headers);
    assert_null(b->headers[0]);

    assert_int_equal(c->naliases, 3);
    const struct cfg_alias *a = &c->aliases[0];
    assert_string_equal(a->name, "gpt-3.5-turbo");
    assert_false(a->glob);
    assert_string_equal(a->model, "llama3.2");
    assert_null(a->options);
    assert_null(a->backends);
    assert_int_equal(a->nbackends, 0);
    a = &c->aliases[1];
    assert_string_equal(a->name, "gpt-4o*");
    assert_true(a->glob);
    assert_string_equal(a->model, "qwen2.5:14b");
    assert_non_null(a->options);
    const cJSON *nc = cJSON_GetObjectItemCaseSensitive(a->options, "num_ctx");
    assert_true(cJSON_IsNumber(nc));
    assert_int_equal(nc->valueint, 8192);
    assert_int_equal(a->nbackends, 1);
    assert_string_equal(a->backends[0], "gpu2");
    assert_null(a->backends[1]);
    assert_int_equal(a->backend_index[0], 1);
    assert_int_equal(a->order, 1);
    assert_string_equal(c->aliases[2].name, "text-embedding-3-small");
    assert_string_equal(c->aliases[2].model, "nomic-embed-text");

    assert_int_equal(c->discovery_interval_s, 7);
    assert_false(c->expose_backend_models);
    assert_int_equal(c->limits.max_body_bytes, 1048576);
    assert_int_equal(c->limits.max_connections, 500);
    assert_int_equal(c->limits.header_timeout_s, 11);
    assert_int_equal(c->limits.max_connections_per_address, 7);
    assert_int_equal(c->limits.body_timeout_s, 12);
    assert_int_equal(c->limits.idle_timeout_s, 13);
    assert_int_equal(c->limits.first_token_timeout_s, 301);
    assert_int_equal(c->limits.idle_stream_timeout_s, 121);
    assert_int_equal(c->limits.queue_timeout_s, 31);
    assert_int_equal(c->limits.keepalive_interval_s, 6);

    assert_int_equal(c->cors.norigins, 2);
    assert_string_equal(c->cors.origins[0], "https://app.example.com");
    assert_string_equal(c->cors.origins[1], "*");
    assert_null(c->cors.origins[2]);
    assert_int_equal(c->log.level, LOG_LEVEL_DEBUG);
    assert_string_equal(c->log.access, "/etc/gw/logs/access.log");
    assert_true(c->metrics.enabled);
    assert_string_equal(c->metrics.listen.host, "127.0.0.1");
    assert_int_equal(c->metrics.listen.port, 9464);
    cfg_unref(c);
}

static void test_defaults(void **state)
{
    (void)state;
    struct cfg *c = load_ok(MIN_OK);
    assert_int_equal(c->nlisten, 1);
    assert_string_equal(c->listen[0].host, "127.0.0.1");
    assert_int_equal(c->listen[0].port, 8080);
    assert_true(c->listen[0].loopback);
    assert_null(c->tls.cert);
    assert_null(c->tls.key);
    assert_int_equal(c->workers, 0);
    assert_string_equal(c->keys_file, "/etc/gw/keys.json");
    assert_int_equal(c->auth, CFG_AUTH_KEYS);
    assert_false(c->allow_unauthenticated_public);
    assert_int_equal(c->nbackends, 1);
    assert_string_equal(c->backends[0].name, "backend0");
    assert_string_equal(c->backends[0].url, "http://127.0.0.1:11434");
    assert_int_equal(c->backends[0].max_inflight, 0);
    assert_int_equal(c->backends[0].weight, 1);
    assert_int_equal(c->naliases, 0);
    assert_int_equal(c->nexact, 0);
    assert_int_equal(c->nglobs, 0);
    assert_int_equal(c->discovery_interval_s, 5);
    assert_true(c->expose_backend_models);
    assert_int_equal(c->limits.max_body_bytes, 16777216);
    assert_int_equal(c->limits.max_buffered_bytes, 1u << 30);
    assert_int_equal(c->limits.max_connections, 10000);
    assert_int_equal(c->limits.header_timeout_s, 10);
    assert_int_equal(c->limits.max_connections_per_address, 256);
    assert_int_equal(c->limits.body_timeout_s, 60);
    assert_int_equal(c->limits.idle_timeout_s, 30);
    assert_int_equal(c->limits.first_token_timeout_s, 300);
    assert_int_equal(c->limits.idle_stream_timeout_s, 120);
    assert_int_equal(c->limits.queue_timeout_s, 30);
    assert_int_equal(c->limits.keepalive_interval_s, 5);
    assert_int_equal(c->cors.norigins, 0);
    assert_null(c->cors.origins);
    assert_int_equal(c->trusted_proxies.n, 0);
    assert_null(c->trusted_proxies.v);
    /* loopback is exempt from the guard unless the file says otherwise */
    assert_int_equal(c->limits.auth_guard_exempt.n, 2);
    assert_int_equal(c->limits.auth_guard_exempt.v[0].bits, 96 + 8);
    assert_int_equal(c->limits.auth_guard_exempt.v[1].bits, 128);
    assert_int_equal(c->log.level, LOG_LEVEL_INFO);
    assert_string_equal(c->log.access, "-");
    assert_false(c->metrics.enabled);
    cfg_unref(c);

    /* A partial "limits" keeps the other defaults. */
    c = load_ok("{\"backends\": [{\"url\": \"http://h\"}], \"limits\": {\"max_connections\": 9}, "
                "\"log\": {\"access\": \"off\"}}");
    assert_int_equal(c->limits.max_connections, 9);
    assert_int_equal(c->limits.max_body_bytes, 16777216);
    assert_int_equal(c->limits.keepalive_interval_s, 5);
    assert_int_equal(c->log.level, LOG_LEVEL_INFO);
    assert_null(c->log.access);
    cfg_unref(c);
}

/* The shipped example must load. __FILE__ is absolute under CMake, relative
 * to the source tree when compiled by hand from there. */
static void test_shipped_config(void **state)
{
    (void)state;
    char path[PATH_MAX];
    const char *slash = strrchr(__FILE__, '/');
    int n = (int)(slash ? slash - __FILE__ : 0);
    snprintf(path, sizeof path, "%.*s%s../../../conf/gateway.json", n, __FILE__, n ? "/" : "");
    struct cfg_errors e;
    cfg_errors_init(&e);
    struct cfg *c = cfg_load(path, &e);
    if (!c)
        fail_msg("%s:\n%s", path, e.text.p ? e.text.p : "");
    cfg_errors_free(&e);
    assert_int_equal(c->nlisten, 1);
    assert_string_equal(c->listen[0].text, "127.0.0.1:8080");
    assert_int_equal(c->nbackends, 1);
    assert_string_equal(c->backends[0].name, "local");
    assert_string_equal(c->backends[0].url, "http://127.0.0.1:11434");
    assert_int_equal(c->auth, CFG_AUTH_KEYS);
    assert_int_equal(c->naliases, 3);
    assert_string_equal(c->aliases[0].name, "gpt-3.5-turbo");
    assert_string_equal(c->aliases[0].model, "llama3.2");
    assert_true(c->aliases[1].glob);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(c->aliases[1].options, "num_ctx"));
    assert_string_equal(c->aliases[2].model, "nomic-embed-text");
    assert_string_equal(c->log.access, "-");
    /* keys.json next to the file, absolute */
    assert_true(c->keys_file[0] == '/');
    size_t kl = strlen(c->keys_file);
    assert_true(kl > 15 && strcmp(c->keys_file + kl - 15, "/conf/keys.json") == 0);
    cfg_unref(c);
}

static void test_comments(void **state)
{
    (void)state;
    const char *text = "// leading comment\n"                                       /* 1 */
                       "{ /* block */ \"backends\": [ // trailing\n"                /* 2 */
                       "  {\"url\": \"http://127.0.0.1:11434\", /* a\n"             /* 3 */
                       "  multi-line\n"                                             /* 4 */
                       "  comment */ \"headers\": {\"X-A\": \"a//b /* c */ d\"}}\n" /* 5 */
                       "], \"aliases\": {\"x//y\": \"m/*z*/\"}\n"                   /* 6 */
                       "} // the end";                                              /* 7 */
    struct cfg *c = load_ok(text);
    assert_string_equal(c->backends[0].url, "http://127.0.0.1:11434");
    assert_string_equal(c->backends[0].headers[0], "X-A: a//b /* c */ d");
    assert_string_equal(c->aliases[0].name, "x//y");
    assert_string_equal(c->aliases[0].model, "m/*z*/");
    cfg_unref(c);

    /* Line numbers after a multi-line comment are those of the file. */
    expect_error("{\n/*\n\n\n*/ \"workers\": 999,\n" MIN_TAIL,
                 "t.json:5: workers: 999 is too large");
    /* An escaped quote does not end the string for the stripper. */
    c = load_ok("{\"aliases\": {\"a\": \"b\\\"//\"}, \"backends\": [{\"url\": \"http://h\"}]}");
    assert_string_equal(c->aliases[0].model, "b\"//");
    cfg_unref(c);
    /* A UTF-8 byte order mark is allowed. */
    c = load_ok("\xEF\xBB\xBF" MIN_OK);
    cfg_unref(c);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("{\n  \"backends\": [\n    {\"url\": \"http://h\",},\n  ]\n}",
                 "t.json:3: JSON syntax error: a comma before '}'");
    expect_error("{\n  \"backends\": [\n    {\"url\": \"http://h\",},\n  ]\n}",
                 "t.json:3: JSON syntax error: a comma before ']'");
    expect_error("{\n\"workers\": 1\n\"auth\": \"none\"}", "t.json:3: JSON syntax error near");
    expect_error("{\n\"backends\": [\n", "the text ends too early");
    expect_error("{\n\"a\": 1 /* open\n", "t.json:2: this /* comment is never closed");
    expect_error("", "t.json: is empty");
    expect_error("  // only a comment\n", "t.json: is empty");
    expect_error("[1, 2]", "t.json:1: the file must hold one JSON object { ... }, not an array");
    expect_error(MIN_OK "\n{}", "t.json:2: unexpected text after the end");
    struct cfg_errors e;
    cfg_errors_init(&e);
    static const char nul[] = "{\n\"a\": \"x\0y\"}";
    assert_null(cfg_load_buffer(nul, sizeof nul - 1, "t.json", "/", &e));
    assert_has(&e, "t.json:2: contains a NUL byte");
    cfg_errors_free(&e);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_error("{\"listn\": [], " MIN_TAIL,
                 "t.json:1: unknown key \"listn\" (did you mean \"listen\"?)");
    expect_error("{\n\"limits\": {\"max_body\": 5},\n" MIN_TAIL,
                 "t.json:2: limits: unknown key \"max_body\" (did you mean \"max_body_bytes\"?)");
    expect_error(
        "{\n\"max_connections\": 5,\n" MIN_TAIL,
        "t.json:2: unknown key \"max_connections\" at the top level: it belongs in \"limits\"");
    expect_error(
        "{\"backends\": [{\"url\": \"http://h\",\n \"colour\": 1}]}",
        "t.json:2: backends[0]: unknown key \"colour\" (known keys: name, url, max_inflight, "
        "max_queue, weight, headers)");
    expect_error("{\"aliases\": {\"a\": {\"modle\": \"m\"}}, " MIN_TAIL,
                 "aliases.a: unknown key \"modle\" (did you mean \"model\"?)");
    expect_error("{\"tls\": {\"cert\": \"c\", \"key\": \"k\", \"ca\": \"x\"}, " MIN_TAIL,
                 "tls: unknown key \"ca\"");
    expect_error("{\"log\": {\"levl\": \"info\"}, " MIN_TAIL,
                 "log: unknown key \"levl\" (did you mean \"level\"?)");
    expect_error("{\"Listen\": [], " MIN_TAIL, "unknown key \"Listen\" (did you mean \"listen\"?)");
    expect_error("{\"workers\": 1, \"workers\": 2, " MIN_TAIL,
                 "workers: given twice (first on line 1)");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error("{\"workers\": \"4\", " MIN_TAIL,
                 "workers: expected a whole number from 0 to 256, got the string \"4\"; write it "
                 "without quotes");
    expect_error("{\"workers\": true, " MIN_TAIL,
                 "workers: expected a whole number from 0 to 256, got true");
    expect_error("{\"workers\": null, " MIN_TAIL, "got null");
    expect_error("{\"expose_backend_models\": \"true\", " MIN_TAIL,
                 "expose_backend_models: expected true or false, got the string \"true\"; write it "
                 "without quotes");
    expect_error("{\"expose_backend_models\": 1, " MIN_TAIL,
                 "expected true or false, got the number 1");
    expect_error("{\"listen\": 8080, " MIN_TAIL,
                 "listen: expected a list of \"host:port\" strings");
    expect_error("{\"listen\": [8080], " MIN_TAIL,
                 "listen[0]: expected \"host:port\" (a string), got the number 8080");
    expect_error("{\"backends\": {\"url\": \"http://h\"}}",
                 "backends: expected a list of backends");
    expect_error("{\"backends\": [\"http://h\"]}",
                 "backends[0]: expected an object { ... }, got the string");
    expect_error("{\"limits\": [], " MIN_TAIL, "limits: expected an object { ... }, got an array");
    expect_error("{\"auth\": 1, " MIN_TAIL,
                 "auth: expected one of \"keys\", \"none\", got the number 1");
    expect_error("{\"aliases\": [], " MIN_TAIL,
                 "aliases: expected an object of client-facing names");
    expect_error("{\"aliases\": {\"a\": 3}, " MIN_TAIL, "aliases.a: expected a model name or");
    expect_error("{\"aliases\": {\"a\": {\"model\": \"m\", \"options\": 3}}, " MIN_TAIL,
                 "aliases.a.options: expected an object of Ollama options");
    expect_error(
        "{\"aliases\": {\"a\": {\"model\": \"m\", \"options\": {\"stop\": null}}}, " MIN_TAIL,
        "aliases.a.options.stop: expected a number, string, boolean or array, got null");
    expect_error("{\"cors\": {\"origins\": \"*\"}, " MIN_TAIL,
                 "cors.origins: expected a list of origins");
    expect_error("{\"keys_file\": 5, " MIN_TAIL,
                 "keys_file: expected a file path (a string), got the number 5");
    expect_error("{\"keys_file\": \"\", " MIN_TAIL, "keys_file: is empty: expected a file path");
    expect_error(
        "{\"backends\": [{\"url\": \"http://h\", \"headers\": {\"X\": 1}}]}",
        "backends[0].headers.X: expected the header's value as a string, got the number 1");
}

static void test_numbers(void **state)
{
    (void)state;
    expect_error("{\"workers\": 1.5, " MIN_TAIL,
                 "workers: 1.5 is not a whole number (allowed: whole numbers from 0 to 256)");
    expect_error("{\"workers\": 1.0, " MIN_TAIL, "workers: 1.0 is not a whole number");
    expect_error("{\"workers\": 1e2, " MIN_TAIL, "workers: 1e2 is not a whole number");
    expect_error("{\"workers\": -1, " MIN_TAIL, "workers: -1 is negative");
    expect_error("{\"workers\": 257, " MIN_TAIL,
                 "workers: 257 is too large (allowed: whole numbers from 0 to 256)");
    expect_error("{\"workers\": 99999999999999999999999, " MIN_TAIL,
                 "workers: 99999999999999999999999 is too large");
    expect_error("{\"discovery_interval_s\": 0, " MIN_TAIL, "discovery_interval_s: 0 is too small");
    expect_error("{\"limits\": {\"max_body_bytes\": 1023}, " MIN_TAIL,
                 "limits.max_body_bytes: 1023 is too small");
    expect_error("{\"limits\": {\"max_body_bytes\": 1073741825}, " MIN_TAIL,
                 "limits.max_body_bytes: 1073741825 is too large");
    expect_error("{\"limits\": {\"max_connections\": 1000001}, " MIN_TAIL,
                 "limits.max_connections: 1000001 is too large");
    expect_error("{\"limits\": {\"header_timeout_s\": 3601}, " MIN_TAIL,
                 "limits.header_timeout_s: 3601 is too large");
    expect_error("{\"limits\": {\"body_timeout_s\": 0}, " MIN_TAIL,
                 "limits.body_timeout_s: 0 is too small");
    expect_error("{\"limits\": {\"idle_timeout_s\": 86401}, " MIN_TAIL,
                 "limits.idle_timeout_s: 86401 is too large");
    expect_error("{\"limits\": {\"max_connections_per_address\": 1000001}, " MIN_TAIL,
                 "limits.max_connections_per_address: 1000001 is too large");
    expect_error("{\"limits\": {\"first_token_timeout_s\": 86401}, " MIN_TAIL,
                 "first_token_timeout_s: 86401 is too large");
    expect_error("{\"limits\": {\"idle_stream_timeout_s\": 0}, " MIN_TAIL,
                 "idle_stream_timeout_s: 0 is too small");
    expect_error("{\"limits\": {\"queue_timeout_s\": 3601}, " MIN_TAIL,
                 "queue_timeout_s: 3601 is too large");
    expect_error("{\"limits\": {\"keepalive_interval_s\": 0}, " MIN_TAIL,
                 "keepalive_interval_s: 0 is too small");
    expect_error("{\"backends\": [{\"url\": \"http://h\", \"weight\": 0}]}",
                 "backends[0].weight: 0 is too small");
    expect_error("{\"backends\": [{\"url\": \"http://h\", \"weight\": 1001}]}",
                 "backends[0].weight: 1001 is too large");
    expect_error("{\"backends\": [{\"url\": \"http://h\", \"max_inflight\": 100001}]}",
                 "backends[0].max_inflight: 100001 is too large");
    expect_error("{\"limits\": {\"max_buffered_bytes\": 1099511627777}, " MIN_TAIL,
                 "limits.max_buffered_bytes: 1099511627777 is too large");
    /* a budget that could never admit the largest body allowed */
    expect_error(
        "{\"limits\": {\"max_buffered_bytes\": 1048576, \"max_body_bytes\": 2097152}, " MIN_TAIL,
        "limits.max_buffered_bytes: 1048576 is less than limits.max_body_bytes (2097152)");
    struct cfg *b = load_ok("{\"limits\": {\"max_buffered_bytes\": 0}, " MIN_TAIL);
    assert_int_equal(b->limits.max_buffered_bytes, 0); /* no budget */
    cfg_unref(b);
    b = load_ok("{\"limits\": {\"max_buffered_bytes\": 16777216}, " MIN_TAIL);
    assert_int_equal(b->limits.max_buffered_bytes, 16777216);
    cfg_unref(b);
    /* the bounds themselves are fine */
    struct cfg *c = load_ok("{\"workers\": 256, \"limits\": {\"max_body_bytes\": 1073741824, "
                            "\"max_connections\": 1, \"first_token_timeout_s\": 86400}, " MIN_TAIL);
    assert_int_equal(c->workers, 256);
    assert_int_equal(c->limits.max_body_bytes, 1073741824);
    assert_int_equal(c->limits.max_connections, 1);
    assert_int_equal(c->limits.first_token_timeout_s, 86400);
    cfg_unref(c);
}

static void test_listen(void **state)
{
    (void)state;
    struct cfg *c = load_ok("{\"listen\": \"localhost:80\", " MIN_TAIL);
    assert_int_equal(c->nlisten, 1);
    assert_string_equal(c->listen[0].host, "localhost");
    assert_int_equal(c->listen[0].family, AF_UNSPEC);
    assert_true(c->listen[0].loopback);
    cfg_unref(c);
    c = load_ok("{\"listen\": [\"0.0.0.0:8080\", \"[::]:8080\", \"10.1.2.3:1\", "
                "\"[::ffff:127.0.0.1]:2\"], " MIN_TAIL);
    assert_int_equal(c->nlisten, 4);
    assert_true(c->listen[0].wildcard);
    assert_false(c->listen[0].loopback);
    assert_string_equal(c->listen[1].host, "::");
    assert_true(c->listen[1].wildcard);
    assert_int_equal(c->listen[1].family, AF_INET6);
    assert_false(c->listen[2].loopback);
    assert_int_equal(c->listen[2].port, 1);
    assert_true(c->listen[3].loopback);
    cfg_unref(c);

    expect_error("{\n\"listen\": [\"127.0.0.1\"],\n" MIN_TAIL,
                 "t.json:2: listen[0]: \"127.0.0.1\": has no port");
    expect_error("{\"listen\": [\"8080\"], " MIN_TAIL,
                 "listen[0]: \"8080\": has no host: write \"127.0.0.1:8080\"");
    expect_error("{\"listen\": [\":8080\"], " MIN_TAIL, "has no host");
    expect_error("{\"listen\": [\"::1:8080\"], " MIN_TAIL, "IPv6 addresses go in brackets");
    expect_error("{\"listen\": [\"[::1:8080\"], " MIN_TAIL, "has \"[\" without \"]\"");
    expect_error("{\"listen\": [\"[::1]8080\"], " MIN_TAIL, "needs \":PORT\" after the \"]\"");
    expect_error("{\"listen\": [\"[zz]:80\"], " MIN_TAIL, "\"zz\" is not an IPv6 address");
    expect_error("{\"listen\": [\"example.com:80\"], " MIN_TAIL,
                 "\"example.com\" is not an IP address");
    expect_error("{\"listen\": [\"*:80\"], " MIN_TAIL, "\"*\" is not an address");
    expect_error("{\"listen\": [\"127.0.0.1:0\"], " MIN_TAIL,
                 "the port \"0\" is not a number from 1 to 65535");
    expect_error("{\"listen\": [\"127.0.0.1:65536\"], " MIN_TAIL,
                 "the port \"65536\" is not a number");
    expect_error("{\"listen\": [\"127.0.0.1:+80\"], " MIN_TAIL, "the port \"+80\" is not a number");
    expect_error("{\"listen\": [], " MIN_TAIL, "listen: is empty");
    expect_error("{\"listen\": [\"127.0.0.1:80\", \"127.0.0.1:80\"], " MIN_TAIL,
                 "listen[1]: \"127.0.0.1:80\" is listed twice");
    expect_error("{\"listen\": [\"0.0.0.0:80\", \"127.0.0.1:80\"], " MIN_TAIL,
                 "listen[1]: \"127.0.0.1:80\" overlaps \"0.0.0.0:80\"");
    expect_error("{\"listen\": [\"[::1]:80\", \"[::]:80\"], " MIN_TAIL, "overlaps");
    expect_error("{\"listen\": [\"localhost:80\", \"127.0.0.1:80\"], " MIN_TAIL, "overlaps");
    /* separate families and ports coexist (IPv6 sockets are bound v6-only) */
    cfg_unref(load_ok("{\"listen\": [\"0.0.0.0:80\", \"[::]:80\", \"127.0.0.1:81\", "
                      "\"localhost:82\", \"127.0.0.2:82\"], " MIN_TAIL));
    expect_error(
        "{\"listen\": [\"127.0.0.1:80\"], \"metrics\": {\"listen\": \"127.0.0.1:80\"}, " MIN_TAIL,
        "metrics.listen: \"127.0.0.1:80\" overlaps the API listener");
    expect_error("{\"metrics\": {}, " MIN_TAIL, "metrics: missing \"listen\"");
    expect_error("{\"metrics\": {\"listen\": \"9464\"}, " MIN_TAIL,
                 "metrics.listen: \"9464\": has no host");
}

static void test_backends(void **state)
{
    (void)state;
    struct cfg *c = load_ok("{\"backends\": [{\"url\": \"HTTPS://Ollama.example:8443/\"}, "
                            "{\"name\": \"b.-_1\", \"url\": \"http://a\"}]}");
    assert_string_equal(c->backends[0].url, "https://Ollama.example:8443");
    assert_string_equal(c->backends[0].name, "backend0");
    assert_string_equal(c->backends[1].name, "b.-_1");
    assert_string_equal(c->backends[1].url, "http://a");
    cfg_unref(c);

    expect_error("{}", "t.json:1: missing \"backends\"");
    expect_error("{\"backends\": []}", "backends: is empty");
    expect_error("{\"backends\": [{\"name\": \"x\"}]}", "backends[0]: missing \"url\"");
    expect_error("{\"backends\": [{\"url\": \"ftp://h\"}]}",
                 "backends[0].url: must start with http:// or https://");
    expect_error(
        "{\"backends\": [{\"url\": \"127.0.0.1:11434\"}]}",
        "backends[0].url: \"127.0.0.1:11434\" has no scheme: write \"http://127.0.0.1:11434\"");
    expect_error("{\"backends\": [{\"url\": \"http://h/ollama\"}]}",
                 "backends[0].url: must not have a path");
    expect_error("{\"backends\": [{\"url\": \"http://h?x=1\"}]}",
                 "must not have a path, query or fragment");
    expect_error("{\"backends\": [{\"url\": \"http://h:0\"}]}",
                 "the port must be a number from 1 to 65535");
    expect_error("{\"backends\": [{\"url\": \"http://h:x\"}]}", "the port must be a number");
    expect_error("{\"backends\": [{\"url\": \"http://\"}]}", "has no host");
    expect_error("{\"backends\": [{\"url\": \"http://a b\"}]}", "cannot be in a host name");
    expect_error("{\"backends\": [{\"url\": \"http://[::1\"}]}", "has a bad IPv6 host");
    /* credentials in the URL: refused, and never echoed */
    struct cfg_errors e;
    load_bad("{\"backends\": [{\"url\": \"http://user:s3cret@h\"}]}", &e);
    assert_has(&e, "must not hold credentials");
    assert_null(strstr(e.text.p, "s3cret"));
    cfg_errors_free(&e);

    expect_error("{\"backends\": [{\"name\": \"a b\", \"url\": \"http://h\"}]}",
                 "backends[0].name: \"a b\": use 1 to 64 letters");
    expect_error("{\"backends\": [{\"name\": \"\", \"url\": \"http://h\"}]}",
                 "backends[0].name: is empty");
    expect_error("{\"backends\": [\n{\"name\": \"gpu\", \"url\": \"http://a\"},\n"
                 "{\"name\": \"gpu\", \"url\": \"http://b\"}]}",
                 "t.json:3: backends[1].name: \"gpu\" is already the name of backends[0] (line 2)");
}

static void test_headers(void **state)
{
    (void)state;
    struct cfg_errors e;
    load_bad("{\"backends\": [{\"url\": \"http://h\", \"headers\": {\n"
             "\"X-Key\": \"abc\\r\\nEvil: 1\",\n"
             "\"Bad Name\": \"v\",\n"
             "\"Content-Length\": \"1\",\n"
             "\"x-key\": \"again\",\n"
             "\"\": \"v\"}}]}",
             &e);
    assert_has(&e, "t.json:2: backends[0].headers[\"X-Key\"]: the value has a line break");
    assert_has(&e,
               "t.json:3: backends[0].headers[\"Bad Name\"]: \"Bad Name\" is not a header name");
    assert_has(&e, "t.json:4: backends[0].headers[\"Content-Length\"]: is set by the gateway");
    assert_has(&e, "t.json:5: backends[0].headers[\"x-key\"]: set twice (first on line 2");
    assert_has(&e, "t.json:6: backends[0].headers[\"\"]: \"\" is not a header name");
    assert_null(strstr(e.text.p, "Evil")); /* values are never echoed */
    assert_int_equal(e.count, 5);
    cfg_errors_free(&e);
    expect_error("{\"backends\": [{\"url\": \"http://h\", \"headers\": [\"X: y\"]}]}",
                 "backends[0].headers: expected an object of header names and values");
    expect_error("{\"backends\": [{\"url\": \"http://h\", \"headers\": {\"X:Y\": \"v\"}}]}",
                 "is not a header name");
}

static void test_aliases(void **state)
{
    (void)state;
    struct cfg *c = load_ok("{\"aliases\": {\"b\": \"m1\", \"a\": \"m2\", \"g*\": \"m3\", \"x?\": "
                            "\"m4\", \"[ab]c\": \"m5\"}, " MIN_TAIL);
    assert_int_equal(c->naliases, 5);
    assert_int_equal(c->nexact, 2);
    assert_string_equal(c->exact[0]->name, "a"); /* sorted */
    assert_string_equal(c->exact[1]->name, "b");
    assert_int_equal(c->nglobs, 3);
    assert_string_equal(c->globs[0]->name, "g*"); /* file order */
    assert_string_equal(c->globs[1]->name, "x?");
    assert_string_equal(c->globs[2]->name, "[ab]c");
    cfg_unref(c);

    /* one model under different names on different backends */
    c = load_ok("{\"aliases\": {\"a\": {\"model\": [\"llama3.2:3b\", \"llama3.2\"]}, \"b\": "
                "\"m\"}, " MIN_TAIL);
    assert_int_equal(c->exact[0]->nmodels, 2);
    assert_string_equal(c->exact[0]->model, "llama3.2:3b");
    assert_string_equal(c->exact[0]->models[1], "llama3.2");
    assert_null(c->exact[0]->models[2]);
    assert_int_equal(c->exact[1]->nmodels, 1);
    assert_string_equal(c->exact[1]->models[0], "m");
    cfg_unref(c);
    expect_error("{\"aliases\": {\"a\": {\"model\": []}}, " MIN_TAIL,
                 "aliases.a.model: lists 0 names; give 1 to 64 names of the model");
    expect_error("{\"aliases\": {\"a\": {\"model\": [\"m\", 3]}}, " MIN_TAIL,
                 "aliases.a.model[1]: expected an Ollama model name");
    expect_error("{\"aliases\": {\"a\": {\"model\": {}}}, " MIN_TAIL,
                 "aliases.a.model: expected an Ollama model name, e.g. \"llama3.2\", or a list");
    expect_error("{\"aliases\": {\"a\": \"\"}, " MIN_TAIL,
                 "aliases.a: is empty: expected an Ollama model name");
    expect_error("{\"aliases\": {\"a\": \"two words\"}, " MIN_TAIL,
                 "aliases.a: \"two words\" is not a model name");
    expect_error("{\"aliases\": {\"\": \"m\"}, " MIN_TAIL,
                 "aliases: \"\" is not a usable model name");
    expect_error("{\"aliases\": {\n\"a\": \"m\",\n\"a\": \"n\"}, " MIN_TAIL,
                 "t.json:3: aliases.a: defined twice (first on line 2)");
    expect_error("{\"aliases\": {\"a\": {\"options\": {}}}, " MIN_TAIL,
                 "aliases.a: missing \"model\"");
    expect_error("{\"aliases\": {\"gpt-4o*\": {\"model\": \"m\", \"backends\": []}}, " MIN_TAIL,
                 "aliases[\"gpt-4o*\"].backends: is empty");
    /* an alias naming an unknown backend; aliases written before backends */
    expect_error(
        "{\"aliases\": {\"a\": {\"model\": \"m\",\n\"backends\": [\"gpu2\"]}},\n"
        "\"backends\": [{\"name\": \"gpu1\", \"url\": \"http://h\"}]}",
        "t.json:2: aliases.a.backends[0]: no backend is named \"gpu2\" (did you mean \"gpu1\"?)");
    expect_error("{\"aliases\": {\"a\": {\"model\": \"m\", \"backends\": [\"zzz\"]}}, " MIN_TAIL,
                 "no backend is named \"zzz\"; the names are set in \"backends\"");
    expect_error("{\"aliases\": {\"a\": {\"model\": \"m\", \"backends\": [\"backend0\", "
                 "\"backend0\"]}}, " MIN_TAIL,
                 "aliases.a.backends[1]: \"backend0\" is listed twice");
}

static void test_enums_and_paths(void **state)
{
    (void)state;
    expect_error("{\"auth\": \"nonee\", " MIN_TAIL,
                 "auth: \"nonee\" is not one of \"keys\", \"none\" (did you mean \"none\"?)");
    expect_error("{\"log\": {\"level\": \"warning\"}, " MIN_TAIL,
                 "log.level: \"warning\" is not one of \"error\", \"warn\", \"info\", \"debug\" "
                 "(did you mean \"warn\"?)");
    expect_error("{\"log\": {\"level\": \"INFO\"}, " MIN_TAIL, "(did you mean \"info\"?)");
    expect_error("{\"tls\": {\"cert\": \"c.pem\"}, " MIN_TAIL, "tls: missing \"key\"");
    expect_error(
        "{\"cors\": {\"origins\": [\"https://a.com/x\"]}, " MIN_TAIL,
        "cors.origins[0]: \"https://a.com/x\": an origin has no path: write \"https://a.com\"");
    expect_error("{\"cors\": {\"origins\": [\"a.com\"]}, " MIN_TAIL,
                 "cors.origins[0]: \"a.com\": \"a.com\" has no scheme");

    struct cfg *c = load_ok("{\"keys_file\": \"/var/lib/og/keys.json\", \"tls\": {\"cert\": "
                            "\"./c.pem\", \"key\": \"sub/k.pem\"}, \"log\": {\"access\": "
                            "\"/var/log/a.log\"}, " MIN_TAIL);
    assert_string_equal(c->keys_file, "/var/lib/og/keys.json");
    assert_string_equal(c->tls.cert, "/etc/gw/c.pem");
    assert_string_equal(c->tls.key, "/etc/gw/sub/k.pem");
    assert_string_equal(c->log.access, "/var/log/a.log");
    cfg_unref(c);
}

/* Write text to a fresh file in a fresh folder; path gets the file. */
static void write_tmp(char *dir, size_t dirsz, char *path, size_t pathsz, const char *text)
{
    snprintf(dir, dirsz, "/tmp/test_config.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, pathsz, "%s/gw.XXXXXX", dir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void remove_tmp(const char *dir, const char *path)
{
    unlink(path);
    rmdir(dir);
}

static void test_load_file(void **state)
{
    (void)state;
    char dir[64], path[96];
    write_tmp(dir, sizeof dir, path, sizeof path,
              "{\n  \"keys_file\": \"k/keys.json\",\n" MIN_TAIL);
    struct cfg_errors e;
    cfg_errors_init(&e);
    struct cfg *c = cfg_load(path, &e);
    assert_non_null(c);
    assert_int_equal(e.count, 0);
    char want[160];
    snprintf(want, sizeof want, "%s/k/keys.json", dir);
    assert_string_equal(c->keys_file, want);
    assert_string_equal(c->dir, dir);
    assert_string_equal(c->path, path);
    cfg_unref(c);
    remove_tmp(dir, path);

    /* Messages name the file as it was given. */
    write_tmp(dir, sizeof dir, path, sizeof path, "{\n\n  \"workers\": -3,\n" MIN_TAIL);
    assert_null(cfg_load(path, &e));
    char needle[160];
    snprintf(needle, sizeof needle, "%s:3: workers: -3 is negative", path);
    assert_has(&e, needle);
    cfg_errors_free(&e);
    remove_tmp(dir, path);

    cfg_errors_init(&e);
    assert_null(cfg_load("/nonexistent/gateway.json", &e));
    assert_has(&e, "/nonexistent/gateway.json: cannot open: No such file or directory");
    assert_int_equal(e.count, 1);
    cfg_errors_free(&e);

    cfg_errors_init(&e);
    assert_null(cfg_load("/tmp", &e));
    assert_has(&e, "/tmp: is not a regular file");
    cfg_errors_free(&e);

    /* a FIFO too, at once: the start or a reload must not wait for a
     * writer (alarm: a hang fails the test instead of stalling it) */
    char fdir[] = "/tmp/test_config.fifo.XXXXXX", fifo[64];
    assert_non_null(mkdtemp(fdir));
    snprintf(fifo, sizeof fifo, "%s/gateway.json", fdir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    cfg_errors_init(&e);
    alarm(10);
    assert_null(cfg_load(fifo, &e));
    alarm(0);
    assert_has(&e, "is not a regular file");
    cfg_errors_free(&e);
    unlink(fifo);
    rmdir(fdir);
}

static void test_tls_listeners(void **state)
{
    (void)state;
    /* no "tls": every listener plain */
    struct cfg *c = load_ok("{\"listen\": [\"127.0.0.1:1\", \"[::1]:2\"], " MIN_TAIL);
    assert_false(c->listen[0].tls || c->listen[1].tls);
    assert_null(c->tls.creds); /* cfg_load_buffer reads no file */
    cfg_unref(c);
    /* "tls" without "tls.listen": every listen address speaks TLS */
    c = load_ok("{\"listen\": [\"127.0.0.1:1\", \"[::1]:2\"], \"tls\": {\"cert\": \"c.pem\", "
                "\"key\": \"k.pem\"}, " MIN_TAIL);
    assert_int_equal(c->nlisten, 2);
    assert_true(c->listen[0].tls && c->listen[1].tls);
    assert_int_equal(c->tls.nlisten, 0);
    assert_string_equal(c->tls.priorities, TLS_DEFAULT_PRIORITIES);
    cfg_unref(c);
    /* "tls.listen": those speak TLS, beside the plain ones */
    c = load_ok("{\"listen\": \"0.0.0.0:8080\", \"tls\": {\"cert\": \"c.pem\", \"key\": "
                "\"k.pem\", \"listen\": [\"0.0.0.0:8443\", \"[::]:8443\"], \"priorities\": "
                "\"SECURE256\"}, " MIN_TAIL);
    assert_int_equal(c->nlisten, 3);
    assert_false(c->listen[0].tls);
    assert_int_equal(c->listen[0].port, 8080);
    assert_true(c->listen[1].tls && c->listen[2].tls);
    assert_int_equal(c->listen[1].port, 8443);
    assert_string_equal(c->listen[2].host, "::");
    assert_string_equal(c->tls.priorities, "SECURE256");
    cfg_unref(c);
    /* tls.listen alone: the default plain listener stays */
    c = load_ok("{\"tls\": {\"cert\": \"c.pem\", \"key\": \"k.pem\", \"listen\": "
                "\"127.0.0.1:8443\"}, " MIN_TAIL);
    assert_int_equal(c->nlisten, 2);
    assert_false(c->listen[0].tls);
    assert_int_equal(c->listen[0].port, 8080);
    assert_true(c->listen[1].tls);
    cfg_unref(c);

    expect_error("{\"listen\": \"0.0.0.0:8080\",\n\"tls\": {\"cert\": \"c\", \"key\": \"k\",\n"
                 "\"listen\": [\"127.0.0.1:9\", \"127.0.0.1:8080\"]}, " MIN_TAIL,
                 "t.json:3: tls.listen[1]: \"127.0.0.1:8080\" is also a plain listen address "
                 "(\"0.0.0.0:8080\"): one port speaks either TLS or plain HTTP");
    expect_error("{\"tls\": {\"cert\": \"c\", \"key\": \"k\", \"listen\": [\"8443\"]}, " MIN_TAIL,
                 "tls.listen[0]: \"8443\": has no host");
    expect_error("{\"tls\": {\"cert\": \"c\", \"key\": \"k\",\n\"priorities\": "
                 "\"NORMAL:+BOGUS\"}, " MIN_TAIL,
                 "t.json:2: tls.priorities: \"NORMAL:+BOGUS\": GnuTLS does not accept it at "
                 "\"+BOGUS\"");
    expect_error("{\"tls\": {\"cert\": \"c\", \"key\": \"k\", \"priorities\": 3}, " MIN_TAIL,
                 "tls.priorities:");
}

/* cfg_load reads and judges the certificate and key with the rest. */
static void test_tls_files(void **state)
{
    (void)state;
    struct tls_fixture fx;
    tls_fixture_make(&fx, -60, 3600);
    char dir[64], path[96], f[160];
    write_tmp(dir, sizeof dir, path, sizeof path,
              "{\"tls\": {\"cert\": \"cert.pem\", \"key\": \"key.pem\"}, " MIN_TAIL);
    tls_fixture_file(dir, "cert.pem", fx.leaf, f, sizeof f);
    tls_fixture_file(dir, "key.pem", fx.leaf_key, f, sizeof f);
    struct cfg_errors e;
    cfg_errors_init(&e);
    struct cfg *c = cfg_load(path, &e);
    if (!c)
        fail_msg("refused: %s", e.text.p);
    assert_non_null(c->tls.creds);
    assert_string_equal(c->tls.creds->subject, "CN=localhost");
    assert_true(c->listen[0].tls);
    cfg_unref(c);

    /* a key that does not belong to the certificate */
    tls_fixture_file(dir, "key.pem", fx.other_key, f, sizeof f);
    assert_null(cfg_load(path, &e));
    char needle[300];
    snprintf(needle, sizeof needle, "%s: tls: %s/key.pem is not the private key of the certificate",
             path, dir);
    assert_has(&e, needle);
    assert_int_equal(e.count, 1);
    cfg_errors_free(&e);
    unlink(f);

    /* no key file at all */
    cfg_errors_init(&e);
    assert_null(cfg_load(path, &e));
    assert_has(&e, "key.pem: cannot open: No such file or directory");
    cfg_errors_free(&e);
    snprintf(f, sizeof f, "%s/cert.pem", dir);
    unlink(f);
    remove_tmp(dir, path);
}

static void test_many_errors(void **state)
{
    (void)state;
    const char *text =
        "{\n"
        "  \"listen\": [\"nope\"],\n"                                          /* 2 */
        "  \"workers\": -1,\n"                                                 /* 3 */
        "  \"auth\": \"maybe\",\n"                                             /* 4 */
        "  \"backends\": [\n"                                                  /* 5 */
        "    {\"name\": \"a\", \"url\": \"http://h\"},\n"                      /* 6 */
        "    {\"name\": \"a\", \"url\": \"gopher://h\"}\n"                     /* 7 */
        "  ],\n"                                                               /* 8 */
        "  \"limits\": {\"max_body_bytes\": 1.5, \"bogus\": 1},\n"             /* 9 */
        "  \"aliases\": {\"x\": {\"model\": \"m\", \"backends\": [\"b\"]}},\n" /* 10 */
        "  \"lg\": {}\n"                                                       /* 11 */
        "}\n";
    struct cfg_errors e;
    load_bad(text, &e);
    assert_int_equal(e.count, 9);
    /* sorted by line, one per line of text */
    const char *want[] = {
        "t.json:2: listen[0]: \"nope\": has no port",
        "t.json:3: workers: -1 is negative",
        "t.json:4: auth: \"maybe\" is not one of",
        "t.json:7: backends[1].url: must start with http:// or https://",
        "t.json:7: backends[1].name: \"a\" is already the name of backends[0] (line 6)",
        "t.json:9: limits.max_body_bytes: 1.5 is not a whole number",
        "t.json:9: limits: unknown key \"bogus\"",
        "t.json:10: aliases.x.backends[0]: no backend is named \"b\"",
        "t.json:11: unknown key \"lg\" (did you mean \"log\"?)",
    };
    const char *p = e.text.p;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *hit = strstr(p, want[i]);
        if (!hit)
            fail_msg("missing or out of order \"%s\" in:\n%s", want[i], e.text.p);
        p = hit + 1;
    }
    cfg_errors_free(&e);

    /* more than CFG_MAX_ERRORS: counted, and the excess summarised */
    char big[16384];
    size_t n = (size_t)snprintf(big, sizeof big, "{");
    for (int i = 0; i < 150; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "\"k%d\": 1,\n", i);
    snprintf(big + n, sizeof big - n, "%s", MIN_TAIL);
    load_bad(big, &e);
    assert_int_equal(e.count, 150);
    assert_has(&e, "t.json: ... and 50 more problems");
    size_t lines = 0;
    for (const char *q = e.text.p; *q; q++)
        lines += *q == '\n';
    assert_int_equal(lines, CFG_MAX_ERRORS + 1);
    cfg_errors_free(&e);
}

struct notices {
    char text[4096];
    int n;
};

static void collect(void *ud, const char *msg)
{
    struct notices *ns = ud;
    size_t l = strlen(ns->text);
    snprintf(ns->text + l, sizeof ns->text - l, "%s\n", msg);
    ns->n++;
}

static void test_not_in_force(void **state)
{
    (void)state;
    struct cfg *c = load_ok(full_config);
    struct notices ns = {.n = 0};
    cfg_features_not_in_force(c, collect, &ns);
    /* auth is "none" here: no auth notice */
    assert_null(strstr(ns.text, "auth"));
    /* TLS is in force: nothing to say about it */
    assert_null(strstr(ns.text, "tls"));
    /* routing across backends is in force: nothing about it */
    assert_null(strstr(ns.text, "max_inflight"));
    assert_null(strstr(ns.text, "weight"));
    assert_null(strstr(ns.text, "backends:"));
    assert_null(strstr(ns.text, "queue_timeout_s"));
    /* CORS and metrics are in force: nothing about them */
    assert_null(strstr(ns.text, "cors"));
    assert_null(strstr(ns.text, "metrics"));
    assert_int_equal(ns.n, 0);
    cfg_unref(c);

    /* API keys are in force: nothing to say about them. */
    c = load_ok("{\n\"auth\": \"keys\",\n" MIN_TAIL);
    memset(&ns, 0, sizeof ns);
    cfg_features_not_in_force(c, collect, &ns);
    assert_int_equal(ns.n, 0);
    cfg_unref(c);
}

/* trusted_proxies and limits.auth_guard_exempt: CIDR lists, one parser. */
static void test_cidr_lists(void **state)
{
    (void)state;
    struct cfg *c =
        load_ok("{\"trusted_proxies\": [\"127.0.0.2/32\", \"10.0.0.0/8\", \"fd00::/8\", "
                "\"::1\"], \"limits\": {\"auth_guard_exempt\": []}, " MIN_TAIL);
    assert_int_equal(c->trusted_proxies.n, 4);
    assert_int_equal(c->trusted_proxies.v[0].bits, 128);
    assert_int_equal(c->trusted_proxies.v[1].bits, 104);
    assert_int_equal(c->trusted_proxies.v[2].bits, 8);
    assert_int_equal(c->trusted_proxies.v[3].bits, 128);
    /* an explicit empty list: no exemption at all */
    assert_int_equal(c->limits.auth_guard_exempt.n, 0);
    cfg_unref(c);
    c = load_ok("{\"limits\": {\"auth_guard_exempt\": [\"192.168.0.0/16\"]}, " MIN_TAIL);
    assert_int_equal(c->limits.auth_guard_exempt.n, 1);
    assert_int_equal(c->limits.auth_guard_exempt.v[0].bits, 112);
    cfg_unref(c);

    /* every bad block is reported, FILE:LINE and path */
    struct cfg_errors e;
    load_bad("{\n\"trusted_proxies\": [\"10.0.0.1/8\",\n \"nginx\", \"10.0.0.0/33\", \"\", 5],\n"
             "\"limits\": {\"auth_guard_exempt\": [\"::1/129\"]}, " MIN_TAIL,
             &e);
    assert_has(&e, "t.json:2: trusted_proxies[0]: \"10.0.0.1/8\": bits are set past the /8 "
                   "prefix: write \"10.0.0.0/8\"");
    assert_has(&e, "t.json:3: trusted_proxies[1]: \"nginx\": not an IP address or CIDR block");
    assert_has(&e, "t.json:3: trusted_proxies[2]: \"10.0.0.0/33\": the prefix length \"33\" is "
                   "not a number from 0 to 32");
    assert_has(&e, "t.json:3: trusted_proxies[3]: is empty");
    assert_has(&e, "t.json:3: trusted_proxies[4]:");
    assert_has(&e, "t.json:4: limits.auth_guard_exempt[0]: \"::1/129\": the prefix length");
    assert_int_equal(e.count, 6);
    cfg_errors_free(&e);
    expect_error("{\"trusted_proxies\": \"10.0.0.0/8\", " MIN_TAIL,
                 "trusted_proxies: expected a list of addresses or CIDR blocks");
}

/* "native_api": Ollama's own API through the gateway, on unless turned off. */
static void test_native_api(void **state)
{
    (void)state;
    struct cfg *c = load_ok(MIN_OK);
    assert_true(c->native_api);
    cfg_unref(c);
    c = load_ok("{\"native_api\": false, " MIN_TAIL);
    assert_false(c->native_api);
    cfg_unref(c);
    c = load_ok("{\"native_api\": true, " MIN_TAIL);
    assert_true(c->native_api);
    /* in force: nothing to warn about */
    struct notices ns = {.n = 0};
    cfg_features_not_in_force(c, collect, &ns);
    assert_int_equal(ns.n, 0);
    cfg_unref(c);

    expect_error("{\n\"native_api\": \"false\",\n" MIN_TAIL,
                 "t.json:2: native_api: expected true or false, got the string \"false\"; write it "
                 "without quotes");
    expect_error("{\n\n\"native_api\": 0,\n" MIN_TAIL,
                 "t.json:3: native_api: expected true or false, got the number 0");
    expect_error("{\"native_api\": null, " MIN_TAIL,
                 "t.json:1: native_api: expected true or false, got null");
    expect_error("{\"native_api\": true,\n\"native_api\": false, " MIN_TAIL,
                 "t.json:2: native_api: given twice (first on line 1); remove one");
    expect_error("{\"nativ_api\": true, " MIN_TAIL,
                 "t.json:1: unknown key \"nativ_api\" (did you mean \"native_api\"?)");
}

/* "auth": "none" is for loopback only unless the operator insists. */
static void test_auth_none_public(void **state)
{
    (void)state;
    expect_error("{\"listen\": [\"0.0.0.0:8080\"],\n\"auth\": \"none\", " MIN_TAIL,
                 "t.json:2: auth: \"none\" with the non-loopback listen address \"0.0.0.0:8080\"");
    expect_error("{\"listen\": [\"127.0.0.1:1\", \"[::]:8080\"], \"auth\": \"none\", " MIN_TAIL,
                 "allow_unauthenticated_public");
    struct cfg *c = load_ok("{\"listen\": [\"0.0.0.0:8080\"], \"auth\": \"none\", "
                            "\"allow_unauthenticated_public\": true, " MIN_TAIL);
    assert_int_equal(c->auth, CFG_AUTH_NONE);
    cfg_unref(c);
    c = load_ok("{\"listen\": [\"127.0.0.1:8080\", \"[::1]:8080\", \"localhost:9\"], "
                "\"auth\": \"none\", " MIN_TAIL);
    cfg_unref(c);
    /* keys on a public address is what it is for */
    c = load_ok("{\"listen\": [\"0.0.0.0:8080\"], " MIN_TAIL);
    assert_int_equal(c->limits.auth_failures_per_minute, 10);
    assert_int_equal(c->limits.shutdown_grace_s, 30);
    cfg_unref(c);
    /* SIGTERM's grace period: 0 (cut at once) up to a day */
    c = load_ok("{\"limits\": {\"shutdown_grace_s\": 0}, " MIN_TAIL);
    assert_int_equal(c->limits.shutdown_grace_s, 0);
    cfg_unref(c);
    expect_error("{\"limits\": {\"shutdown_grace_s\": 86401}, " MIN_TAIL, "shutdown_grace_s");
}

static void test_refcount(void **state)
{
    (void)state;
    struct cfg *c = load_ok(full_config);
    assert_int_equal(atomic_load(&c->refs), 1);
    assert_ptr_equal(cfg_ref(c), c);
    assert_int_equal(atomic_load(&c->refs), 2);
    cfg_unref(c);
    assert_int_equal(atomic_load(&c->refs), 1);
    /* still usable */
    assert_string_equal(c->backends[0].name, "gpu1");
    cfg_unref(c); /* the last reference frees it (ASan checks) */
    cfg_ref(NULL);
    cfg_unref(NULL);
}

static void test_errors_to_log(void **state)
{
    (void)state;
    /* errs NULL: one log_error() per problem */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    log_set_fd(fds[1]);
    const char *text = "{\"workers\": -1, \"auth\": 3, " MIN_TAIL;
    assert_null(cfg_load_buffer(text, strlen(text), "t.json", "/", NULL));
    log_set_fd(2);
    close(fds[1]);
    char out[4096] = "";
    ssize_t n = read(fds[0], out, sizeof out - 1);
    close(fds[0]);
    assert_true(n > 0);
    assert_non_null(strstr(
        out, " error: t.json:1: workers: -1 is negative (allowed: whole numbers from 0 to 256)\n"));
    assert_non_null(strstr(out, " error: t.json:1: auth: expected one of"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config),     cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_shipped_config),  cmocka_unit_test(test_comments),
        cmocka_unit_test(test_syntax_errors),   cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),     cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_listen),          cmocka_unit_test(test_backends),
        cmocka_unit_test(test_headers),         cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_enums_and_paths), cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_many_errors),     cmocka_unit_test(test_not_in_force),
        cmocka_unit_test(test_native_api),      cmocka_unit_test(test_auth_none_public),
        cmocka_unit_test(test_cidr_lists),      cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_errors_to_log),   cmocka_unit_test(test_tls_listeners),
        cmocka_unit_test(test_tls_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
