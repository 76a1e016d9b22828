/* cors.c: the origin allowlist and the preflight's header list, as pure
 * functions. */
#include "cors.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static bool allowed(const char *const *origins, const char *origin)
{
    size_t n = 0;
    while (origins[n])
        n++;
    return cors_origin_allowed(origins, n, origin);
}

static void origins(void **state)
{
    (void)state;
    /* as config.c stores them: lower-case, no trailing slash */
    static const char *const list[] = {"https://app.example.com", "http://localhost:5173",
                                       "https://[::1]:8443", "https://b.example:443", NULL};
    assert_true(allowed(list, "https://app.example.com"));
    assert_true(allowed(list, "https://App.Example.COM"));
    assert_true(allowed(list, "HTTPS://app.example.com"));
    /* the default port is the same as none, both ways */
    assert_true(allowed(list, "https://app.example.com:443"));
    assert_true(allowed(list, "https://b.example"));
    assert_true(allowed(list, "http://localhost:5173"));
    assert_true(allowed(list, "https://[::1]:8443"));
    /* exact: scheme, host and port all count */
    assert_false(allowed(list, "http://app.example.com"));
    assert_false(allowed(list, "https://app.example.com:8443"));
    assert_false(allowed(list, "https://evil.app.example.com"));
    assert_false(allowed(list, "https://app.example.com.evil.net"));
    assert_false(allowed(list, "https://app.example.comx"));
    assert_false(allowed(list, "http://localhost:5174"));
    assert_false(allowed(list, "http://localhost"));
    assert_false(allowed(list, "null"));
    assert_false(allowed(list, ""));
    assert_false(allowed(list, "https://app.example.com/path"));
    assert_false(allowed(list, NULL));
    static const char *const none[] = {NULL};
    assert_false(allowed(none, "https://app.example.com"));

    /* "*": any http or https origin, never "null" or another scheme */
    static const char *const any[] = {"*", NULL};
    assert_true(allowed(any, "https://anything.example"));
    assert_true(allowed(any, "http://127.0.0.1:3000"));
    assert_false(allowed(any, "null"));
    assert_false(allowed(any, "file://"));
    assert_false(allowed(any, "chrome-extension://abcdef"));
    assert_false(allowed(any, "https://a.example\r\nX-Evil: 1"));
    char longer[400];
    memset(longer, 'a', sizeof longer - 1);
    memcpy(longer, "https://", 8);
    longer[sizeof longer - 1] = '\0';
    assert_false(allowed(any, longer));
}

static void headers(void **state)
{
    (void)state;
    char out[1024];
    /* what the openai SDK sends from a browser */
    assert_true(cors_allow_headers("authorization,content-type,x-stainless-arch,x-stainless-lang,"
                                   "x-stainless-os,x-stainless-package-version,"
                                   "x-stainless-retry-count,x-stainless-runtime,"
                                   "x-stainless-runtime-version,x-stainless-timeout",
                                   out, sizeof out));
    assert_string_equal(out, "authorization, content-type, x-stainless-arch, x-stainless-lang, "
                             "x-stainless-os, x-stainless-package-version, "
                             "x-stainless-retry-count, x-stainless-runtime, "
                             "x-stainless-runtime-version, x-stainless-timeout");
    /* Anthropic's */
    assert_true(cors_allow_headers("anthropic-dangerous-direct-browser-access,anthropic-version,"
                                   "content-type,x-api-key,anthropic-beta",
                                   out, sizeof out));
    assert_non_null(strstr(out, "anthropic-dangerous-direct-browser-access"));
    assert_true(cors_allow_headers(" OpenAI-Organization , openai-project,api-key,X-Request-Id ",
                                   out, sizeof out));
    assert_string_equal(out, "OpenAI-Organization, openai-project, api-key, X-Request-Id");
    assert_true(cors_allow_headers("accept, user-agent, x-ollama-backend", out, sizeof out));
    assert_true(cors_allow_headers("", out, sizeof out));
    assert_string_equal(out, "");

    /* one that is not sent by SDKs: left out, and not all allowed */
    assert_false(cors_allow_headers("authorization, x-custom, content-type", out, sizeof out));
    assert_string_equal(out, "authorization, content-type");
    assert_false(cors_allow_headers("cookie", out, sizeof out));
    assert_string_equal(out, "");
    /* a bare prefix is no header of the family */
    assert_false(cors_allow_headers("x-stainless-, openai-", out, sizeof out));
    assert_string_equal(out, "");
    /* no header names with odd characters */
    assert_false(cors_allow_headers("x-stainless-a b, x-stainless-(x)", out, sizeof out));
    /* what does not fit is left out too */
    char small[16];
    assert_false(cors_allow_headers("authorization, content-type", small, sizeof small));
    assert_string_equal(small, "authorization");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(origins),
        cmocka_unit_test(headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
