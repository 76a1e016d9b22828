/* Unit tests for target.c: the URL a transfer is sent to, as a string and,
 * for the translated routes' paths, already parsed for libcurl. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "target.h"

#include <curl/curl.h>
#include <string.h>

static struct cfg *load(const char *text)
{
    struct cfg_errors e;
    cfg_errors_init(&e);
    struct cfg *c = cfg_load_buffer(text, strlen(text), "t.json", "/", &e);
    if (!c)
        fail_msg("%s", e.text.p ? e.text.p : "");
    cfg_errors_free(&e);
    return c;
}

/* What libcurl would send to: the parsed URL printed back. */
static void assert_parsed(CURLU *u, const char *want)
{
    assert_non_null(u);
    char *got = NULL;
    assert_int_equal(curl_url_get(u, CURLUPART_URL, &got, 0), CURLUE_OK);
    assert_string_equal(got, want);
    curl_free(got);
}

static void test_parsed_paths(void **state)
{
    (void)state;
    struct cfg *c = load("{\"backends\": [{\"name\": \"a\", \"url\": \"http://127.0.0.1:11434\"},"
                         " {\"name\": \"b\", \"url\": \"https://[::1]:8443\"}]}");
    struct target *t = target_array_new(c);
    assert_non_null(t);
    char url[256];
    assert_int_equal(target_url(&t[0], "/api/chat", 9, url, sizeof url), 31);
    assert_string_equal(url, "http://127.0.0.1:11434/api/chat");
    assert_parsed(target_parsed(&t[0], "/api/chat"), "http://127.0.0.1:11434/api/chat");
    assert_parsed(target_parsed(&t[0], "/api/generate"), "http://127.0.0.1:11434/api/generate");
    assert_parsed(target_parsed(&t[0], "/api/embed"), "http://127.0.0.1:11434/api/embed");
    assert_parsed(target_parsed(&t[1], "/api/chat"), "https://[::1]:8443/api/chat");
    /* any other path goes by its string, and a prefix is not a match */
    assert_null(target_parsed(&t[0], "/api/show"));
    assert_null(target_parsed(&t[0], "/api/chat/x"));
    assert_null(target_parsed(&t[0], "/api/cha"));
    assert_null(target_parsed(&t[0], ""));
    target_array_free(t, c);
    cfg_unref(c);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parsed_paths),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
