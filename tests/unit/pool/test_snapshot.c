/* Unit tests for snapshot.c (what a reload publishes and what a request
 * keeps) and backends_same_config (when a reload keeps the backend table). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backends.h"
#include "config.h"
#include "keys.h"
#include "snapshot.h"

#include <curl/curl.h>
#include <string.h>

static struct cfg *load(const char *text)
{
    struct cfg_errors e;
    cfg_errors_init(&e);
    struct cfg *c = cfg_load_buffer(text, strlen(text), "s.json", "/", &e);
    if (!c)
        fail_msg("%s", e.text.p ? e.text.p : "");
    cfg_errors_free(&e);
    return c;
}

static const char one[] = "{\"backends\": [{\"name\": \"a\", \"url\": \"http://127.0.0.1:1\"}]}";

static struct snapshot *make(const char *text)
{
    struct cfg *c = load(text);
    struct backends *b = backends_new(c); /* never started: no thread, no polls */
    assert_non_null(b);
    struct snapshot *s = snapshot_new(c, keyring_empty(), b);
    assert_non_null(s);
    return s;
}

static void test_publish_keeps_old_for_holders(void **state)
{
    (void)state;
    assert_null(snapshot_acquire());
    unsigned g0 = snapshot_generation();
    struct snapshot *s1 = make(one);
    snapshot_publish(s1);
    assert_int_equal(snapshot_generation(), g0 + 1);

    /* a request takes the snapshot in force ... */
    struct snapshot *held = snapshot_acquire();
    assert_ptr_equal(held, s1);
    assert_int_equal(atomic_load(&held->refs), 2);
    assert_non_null(held->targets);

    /* ... a reload publishes another ... */
    struct snapshot *s2 =
        make("{\"backends\": [{\"name\": \"b\", \"url\": \"http://127.0.0.1:2\"}]}");
    snapshot_publish(s2);
    assert_int_equal(snapshot_generation(), g0 + 2);
    struct snapshot *now = snapshot_acquire();
    assert_ptr_equal(now, s2);
    assert_string_equal(now->cfg->backends[0].name, "b");
    snapshot_unref(now);

    /* ... and the request still sees what it started with */
    assert_int_equal(atomic_load(&held->refs), 1);
    assert_string_equal(held->cfg->backends[0].name, "a");
    snapshot_unref(held); /* the last reference frees it (ASan checks) */

    snapshot_publish(NULL);
    assert_null(snapshot_acquire());
    snapshot_ref(NULL);
    snapshot_unref(NULL);
}

static void test_backends_shared_by_reference(void **state)
{
    (void)state;
    struct snapshot *s1 = make(one);
    /* a keys-only reload: same cfg and table, new keyring */
    struct snapshot *s2 =
        snapshot_new(cfg_ref(s1->cfg), keyring_empty(), backends_ref(s1->backends));
    assert_non_null(s2);
    assert_ptr_equal(s1->backends, s2->backends);
    snapshot_unref(s1);
    assert_string_equal(s2->cfg->backends[0].name, "a"); /* still alive */
    snapshot_unref(s2);
}

static void test_backends_same_config(void **state)
{
    (void)state;
    struct cfg *a = load(one);
    struct cfg *same = load("// a comment changes nothing\n"
                            "{\"backends\": [{\"name\": \"a\", \"url\": \"http://127.0.0.1:1/\"}],"
                            " \"aliases\": {\"x\": \"y\"}}");
    assert_true(backends_same_config(a, same));
    /* limits are applied to the table in place (backends_set_limits), so a
     * change to them keeps the table, its queues and its counts */
    const char *limits_only[] = {
        "{\"backends\": [{\"name\": \"a\", \"url\": \"http://127.0.0.1:1\", \"weight\": 2}]}",
        "{\"backends\": [{\"name\": \"a\", \"url\": \"http://127.0.0.1:1\", \"max_inflight\": 2}]}",
        "{\"backends\": [{\"name\": \"a\", \"url\": \"http://127.0.0.1:1\", \"max_queue\": 5}]}",
    };
    for (size_t i = 0; i < sizeof limits_only / sizeof *limits_only; i++) {
        struct cfg *b = load(limits_only[i]);
        if (!backends_same_config(a, b))
            fail_msg("should be the same table: %s", limits_only[i]);
        cfg_unref(b);
    }
    const char *differ[] = {
        "{\"backends\": [{\"name\": \"b\", \"url\": \"http://127.0.0.1:1\"}]}",
        "{\"backends\": [{\"name\": \"a\", \"url\": \"http://127.0.0.1:2\"}]}",
        "{\"backends\": [{\"name\": \"a\", \"url\": \"http://127.0.0.1:1\","
        " \"headers\": {\"X\": \"1\"}}]}",
        "{\"backends\": [{\"name\": \"a\", \"url\": \"http://127.0.0.1:1\"},"
        " {\"name\": \"c\", \"url\": \"http://127.0.0.1:3\"}]}",
        "{\"discovery_interval_s\": 9,"
        " \"backends\": [{\"name\": \"a\", \"url\": \"http://127.0.0.1:1\"}]}",
    };
    for (size_t i = 0; i < sizeof differ / sizeof *differ; i++) {
        struct cfg *b = load(differ[i]);
        if (backends_same_config(a, b))
            fail_msg("should differ: %s", differ[i]);
        cfg_unref(b);
    }
    cfg_unref(same);
    cfg_unref(a);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_keeps_old_for_holders),
        cmocka_unit_test(test_backends_shared_by_reference),
        cmocka_unit_test(test_backends_same_config),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
