/* Unit tests for redis_glue.c against a real redis-server on a Unix socket:
 * connect and handshake, pipelined calls answered in order, a cancelled
 * call never called back, NOSCRIPT answered by sending the script again, a
 * server that stops answering (the per-command deadline: done(NULL), the
 * process-wide "away", a reconnect once it answers), a server killed and
 * started again, and a reload that drops "shared". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "redis_fixture.h"

static struct redis_fixture fx;

static const struct redis_script echo = {
    .name = "echo",
    .text = "return {KEYS[1], ARGV[1]}",
};

struct answer {
    struct redis_call call;
    bool done, failed;
    char got[64];
    int order;
};

static int answered_count;

static void on_answer(struct redis_call *c, const redisReply *r)
{
    struct answer *a = (struct answer *)(void *)c;
    a->done = true;
    a->order = answered_count++;
    a->failed = !r || r->type != REDIS_REPLY_ARRAY || r->elements != 2;
    if (!a->failed)
        snprintf(a->got, sizeof a->got, "%s=%s", r->element[0]->str, r->element[1]->str);
}

static int call(struct answer *a, const char *key, const char *val)
{
    memset(a, 0, sizeof *a);
    a->call.done = on_answer;
    const char *args[2] = {key, val};
    return redis_glue_eval(&fx.w, &a->call, &echo, 1, 2, args);
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof fx);
    if (fx_redis_start(&fx) < 0) {
        print_message("redis-server is not installed or would not start: skipped "
                      "(deploy/install-deps.sh --test)\n");
        return 0;
    }
    return fx_worker(&fx, fx_cfg(&fx, 100, "t:"));
}

static int teardown(void **state)
{
    (void)state;
    if (fx.cfg)
        fx_worker_free(&fx);
    fx_redis_kill(&fx);
    rmdir(fx.srv.dir);
    return 0;
}

#define NEED_REDIS()                                                                               \
    do {                                                                                           \
        if (!fx.srv.pid)                                                                           \
            skip();                                                                                \
    } while (0)

static void test_connect_and_pipeline(void **state)
{
    (void)state;
    NEED_REDIS();
    assert_true(fx_until_ready(&fx, 3000));
    assert_string_equal(redis_glue_prefix(&fx.w), "t:");
    /* 200 calls queued in one go go out together and come back in order */
    static struct answer a[200];
    answered_count = 0;
    char key[16], val[16];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "v%d", i);
        assert_int_equal(call(&a[i], key, val), 0);
    }
    assert_true(fx_until(&fx, &a[199].done, 3000));
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "k%d=v%d", i, i);
        assert_true(a[i].done);
        assert_false(a[i].failed);
        assert_string_equal(a[i].got, key);
        assert_int_equal(a[i].order, i);
    }
    /* the first call sent EVAL and SCRIPT LOAD; the server has the script now */
    redisReply *r = fx_command(&fx, "INFO memory");
    assert_non_null(r);
    assert_non_null(strstr(r->str, "number_of_cached_scripts:1"));
    freeReplyObject(r);
    /* fire and forget */
    const char *args[2] = {"x", "y"};
    assert_int_equal(redis_glue_eval(&fx.w, NULL, &echo, 1, 2, args), 0);
    assert_int_equal(call(&a[0], "last", "one"), 0);
    assert_true(fx_until(&fx, &a[0].done, 3000));
    assert_string_equal(a[0].got, "last=one");
}

static void test_cancel(void **state)
{
    (void)state;
    NEED_REDIS();
    assert_true(fx_until_ready(&fx, 3000));
    struct answer a, b;
    assert_int_equal(call(&a, "a", "1"), 0);
    assert_int_equal(call(&b, "b", "2"), 0);
    redis_glue_cancel(&a.call);
    assert_null(a.call.pending);
    assert_true(fx_until(&fx, &b.done, 3000));
    assert_false(a.done);
    redis_glue_cancel(&a.call); /* twice is harmless */
}

static void test_noscript(void **state)
{
    (void)state;
    NEED_REDIS();
    assert_true(fx_until_ready(&fx, 3000));
    struct answer a;
    assert_int_equal(call(&a, "warm", "1"), 0);
    assert_true(fx_until(&fx, &a.done, 3000));
    redisReply *r = fx_command(&fx, "SCRIPT FLUSH");
    assert_non_null(r);
    freeReplyObject(r);
    /* EVALSHA meets NOSCRIPT; the glue sends the text: the caller sees an answer */
    assert_int_equal(call(&a, "after", "flush"), 0);
    assert_true(fx_until(&fx, &a.done, 3000));
    assert_false(a.failed);
    assert_string_equal(a.got, "after=flush");
    assert_true(redis_glue_ready(&fx.w));
}

static void test_silent_server(void **state)
{
    (void)state;
    NEED_REDIS();
    assert_true(fx_until_ready(&fx, 3000));
    assert_false(redis_glue_away());
    kill(fx.srv.pid, SIGSTOP);
    struct answer a;
    int64_t t0 = now_ms();
    assert_int_equal(call(&a, "slow", "1"), 0);
    assert_true(fx_until(&fx, &a.done, 3000));
    int64_t took = now_ms() - t0;
    assert_true(a.failed); /* done(NULL) */
    assert_true(took >= 100 && took < 1000);
    assert_true(redis_glue_away());
    assert_false(redis_glue_ready(&fx.w));
    assert_int_equal(call(&a, "while", "away"), -1); /* not sent: the caller decides alone */
    kill(fx.srv.pid, SIGCONT);
    assert_true(fx_until_ready(&fx, 5000));
    assert_false(redis_glue_away());
    assert_int_equal(call(&a, "back", "1"), 0);
    assert_true(fx_until(&fx, &a.done, 3000));
    assert_string_equal(a.got, "back=1");
}

static void test_killed_and_restarted(void **state)
{
    (void)state;
    NEED_REDIS();
    assert_true(fx_until_ready(&fx, 3000));
    struct answer a;
    assert_int_equal(call(&a, "before", "1"), 0);
    assert_true(fx_until(&fx, &a.done, 3000));
    kill(fx.srv.pid, SIGKILL);
    waitpid(fx.srv.pid, NULL, 0);
    fx.srv.pid = 0;
    unlink(fx.srv.sock);
    /* the loss is seen without any call in flight */
    int64_t end = now_ms() + 3000;
    while (redis_glue_ready(&fx.w) && now_ms() < end)
        fx_turn(&fx, 10);
    assert_false(redis_glue_ready(&fx.w));
    assert_true(redis_glue_away());
    /* tries go on (backoff) while nothing listens */
    for (int i = 0; i < 30; i++)
        fx_turn(&fx, 10);
    assert_false(redis_glue_ready(&fx.w));
    assert_int_equal(fx_redis_start(&fx), 0);
    assert_true(fx_until_ready(&fx, 8000));
    assert_false(redis_glue_away());
    /* an empty server: the script is sent with its text again */
    assert_int_equal(call(&a, "after", "restart"), 0);
    assert_true(fx_until(&fx, &a.done, 3000));
    assert_string_equal(a.got, "after=restart");
}

static void test_reload_drops_shared(void **state)
{
    (void)state;
    NEED_REDIS();
    assert_true(fx_until_ready(&fx, 3000));
    struct answer a;
    assert_int_equal(call(&a, "inflight", "1"), 0);
    const char *text = "{\"backends\": [{\"url\": \"http://127.0.0.1:11434\"}]}";
    struct cfg *plain = cfg_load_buffer(text, strlen(text), "unit.json", "/", NULL);
    assert_non_null(plain);
    redis_glue_configure(&fx.w, plain);
    assert_true(a.done && a.failed); /* dropped with the connection */
    assert_false(redis_glue_ready(&fx.w));
    assert_int_equal(redis_glue_deadline(&fx.w), -1);
    assert_false(redis_glue_away()); /* a reload is not an outage */
    /* and back: a new prefix follows the configuration */
    struct cfg *again = fx_cfg(&fx, 100, "other:");
    redis_glue_configure(&fx.w, again);
    cfg_unref(plain);
    assert_true(fx_until_ready(&fx, 3000));
    assert_string_equal(redis_glue_prefix(&fx.w), "other:");
    cfg_unref(fx.cfg);
    fx.cfg = again;
}

/* A host name that does not resolve: no connection tried, Redis away, the
 * loop not spinning; back on the socket after a reload. */
static void test_unresolved_name(void **state)
{
    (void)state;
    NEED_REDIS();
    assert_true(fx_until_ready(&fx, 3000));
    const char *text = "{\"backends\": [{\"url\": \"http://127.0.0.1:11434\"}], \"shared\": "
                       "{\"redis\": \"redis://no-such-host.invalid:6379/0\"}}";
    struct cfg *c = cfg_load_buffer(text, strlen(text), "unit.json", "/", NULL);
    assert_non_null(c);
    assert_string_equal(c->shared.addr, "");
    redis_glue_configure(&fx.w, c);
    for (int i = 0; i < 20; i++)
        fx_turn(&fx, 10);
    assert_false(redis_glue_ready(&fx.w));
    assert_true(redis_glue_away());
    assert_true(redis_glue_deadline(&fx.w) > now_ms()); /* waiting out its backoff */
    redis_glue_configure(&fx.w, fx.cfg);
    cfg_unref(c);
    assert_true(fx_until_ready(&fx, 3000));
    assert_false(redis_glue_away());
}

/* A configuration with password_file holding pw (written to the server's dir). */
static struct cfg *cfg_with_password(const char *pw)
{
    char path[160], text[512];
    snprintf(path, sizeof path, "%s/pw", fx.srv.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", pw);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0); /* other users may not read a secret */
    snprintf(text, sizeof text,
             "{\"backends\": [{\"url\": \"http://127.0.0.1:11434\"}], \"shared\": {\"redis\": "
             "\"unix:%s\", \"password_file\": \"%s\", \"prefix\": \"t:\"}}",
             fx.srv.sock, path);
    struct cfg *c = cfg_load_buffer(text, strlen(text), "unit.json", "/", NULL);
    unlink(path);
    assert_non_null(c);
    return c;
}

static void test_password(void **state)
{
    (void)state;
    NEED_REDIS();
    redisReply *r = fx_command(&fx, "CONFIG SET requirepass s3cret");
    assert_non_null(r);
    freeReplyObject(r);
    /* a wrong password: AUTH refused, the link never gets ready */
    struct cfg *wrong = cfg_with_password("nope");
    redis_glue_configure(&fx.w, wrong);
    assert_false(fx_until_ready(&fx, 600));
    assert_true(redis_glue_away());
    struct answer a;
    assert_int_equal(call(&a, "k", "v"), -1);
    /* the right one (a reload): ready */
    struct cfg *right = cfg_with_password("s3cret");
    redis_glue_configure(&fx.w, right);
    cfg_unref(wrong);
    assert_true(fx_until_ready(&fx, 3000));
    assert_false(redis_glue_away());
    assert_int_equal(call(&a, "with", "auth"), 0);
    assert_true(fx_until(&fx, &a.done, 3000));
    assert_string_equal(a.got, "with=auth");
    cfg_unref(fx.cfg);
    fx.cfg = right;
    redisContext *c = redisConnectUnix(fx.srv.sock);
    assert_non_null(c);
    r = redisCommand(c, "AUTH s3cret");
    freeReplyObject(r);
    r = redisCommand(c, "CONFIG SET requirepass %s", "");
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_and_pipeline),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_noscript),
        cmocka_unit_test(test_silent_server),
        cmocka_unit_test(test_killed_and_restarted),
        cmocka_unit_test(test_reload_drops_shared),
        cmocka_unit_test(test_unresolved_name),
        cmocka_unit_test(test_password),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
