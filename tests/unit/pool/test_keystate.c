/* Unit tests for keystate.c: the changes between two keyrings told to a real
 * redis-server (revoked, disabled, enabled again, removed from the file),
 * nothing told when nothing changed or without "shared", and a Redis that
 * cannot be reached. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "keystate.h"
#include "keys_fixture.h"
#include "redis_server_fixture.h"

static struct redis_server srv;
static struct cfg *cfg;

static int setup(void **state)
{
    (void)state;
    if (rs_start(&srv) < 0) {
        print_message("redis-server is not installed or would not start: skipped "
                      "(deploy/install-deps.sh --test)\n");
        return 0;
    }
    char text[512];
    snprintf(text, sizeof text,
             "{\"backends\": [{\"url\": \"http://127.0.0.1:11434\"}], \"shared\": {\"redis\": "
             "\"unix:%s\", \"prefix\": \"k:\"}}",
             srv.sock);
    cfg = cfg_load_buffer(text, strlen(text), "unit.json", "/", NULL);
    return cfg ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cfg_unref(cfg);
    rs_kill(&srv);
    rmdir(srv.dir);
    return 0;
}

/* A keyring of A, B, C with extra fields for each ("" = none). */
static struct keyring *ring(const char *a, const char *b, const char *c)
{
    struct buf r;
    buf_init(&r, 1u << 16);
    char t[KEY_SECRET_SIZE];
    if (a) {
        token(t, ID_A, 'a');
        record(&r, ID_A, "a", t, a);
    }
    if (b) {
        token(t, ID_B, 'b');
        record(&r, ID_B, "b", t, b);
    }
    if (c) {
        token(t, ID_C, 'c');
        record(&r, ID_C, "c", t, c);
    }
    struct keyring *k = load_records(&r);
    buf_free(&r);
    return k;
}

static const char *state_of(const char *id)
{
    static char out[32];
    redisReply *r = rs_command(&srv, "HGET k:keys %s", id);
    assert_non_null(r);
    snprintf(out, sizeof out, "%s", r->type == REDIS_REPLY_STRING ? r->str : "(nil)");
    freeReplyObject(r);
    return out;
}

#define REVOKED ", \"revoked\": \"2025-01-02T03:04:05Z\""
#define DISABLED ", \"disabled\": true"

static void test_changes(void **state)
{
    (void)state;
    if (!srv.pid)
        skip();
    struct keyring *r0 = ring("", "", "");
    struct keyring *r1 = ring(REVOKED, DISABLED, "");
    assert_int_equal(keystate_share(cfg, r0, r0), 0); /* nothing changed */
    assert_int_equal(keystate_share(cfg, r0, r1), 2);
    assert_string_equal(state_of(ID_A), "revoked");
    assert_string_equal(state_of(ID_B), "disabled");
    assert_string_equal(state_of(ID_C), "(nil)");
    /* B enabled again, C gone from the file */
    struct keyring *r2 = ring(REVOKED, "", NULL);
    assert_int_equal(keystate_share(cfg, r1, r2), 2);
    assert_string_equal(state_of(ID_A), "revoked");
    assert_string_equal(state_of(ID_B), "(nil)");
    assert_string_equal(state_of(ID_C), "revoked");
    /* a start (no keyring before) tells nothing */
    assert_int_equal(keystate_share(cfg, NULL, r0), 0);
    assert_string_equal(state_of(ID_C), "revoked");
    keyring_unref(r0);
    keyring_unref(r1);
    keyring_unref(r2);
}

static void test_without_shared_or_redis(void **state)
{
    (void)state;
    struct keyring *r0 = ring("", NULL, NULL);
    struct keyring *r1 = ring(REVOKED, NULL, NULL);
    const char *plain = "{\"backends\": [{\"url\": \"http://127.0.0.1:11434\"}]}";
    struct cfg *p = cfg_load_buffer(plain, strlen(plain), "unit.json", "/", NULL);
    assert_non_null(p);
    assert_int_equal(keystate_share(p, r0, r1), 0);
    cfg_unref(p);
    const char *gone = "{\"backends\": [{\"url\": \"http://127.0.0.1:11434\"}], \"shared\": "
                       "{\"redis\": \"unix:/nonexistent/redis.sock\"}}";
    struct cfg *g = cfg_load_buffer(gone, strlen(gone), "unit.json", "/", NULL);
    assert_non_null(g);
    assert_int_equal(keystate_share(g, r0, r1), -1); /* logged; the reload goes on */
    cfg_unref(g);
    keyring_unref(r0);
    keyring_unref(r1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changes),
        cmocka_unit_test(test_without_shared_or_redis),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
