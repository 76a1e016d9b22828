/* Unit tests for sharedcfg.c: the Redis address forms, their problems (never
 * quoting a password), the "shared" section loaded through gateway.json
 * (defaults, a Unix socket made absolute, the password file, a name that
 * does not resolve), and when two sections name the same server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void parse_ok(const char *url, struct shared_url *u, char *buf)
{
    char why[320];
    if (sharedcfg_parse_url(url, buf, u, why, sizeof why) < 0)
        fail_msg("%s: %s", url, why);
}

static void parse_bad(const char *url, const char *expect)
{
    char buf[256], why[320] = "";
    struct shared_url u;
    assert_int_equal(sharedcfg_parse_url(url, buf, &u, why, sizeof why), -1);
    if (!strstr(why, expect))
        fail_msg("%s: \"%s\" does not say \"%s\"", url, why, expect);
    assert_null(strstr(why, "s3cret"));
}

static void test_urls(void **state)
{
    (void)state;
    char buf[256];
    struct shared_url u;
    parse_ok("redis://10.0.0.5:6380/2", &u, buf);
    assert_false(u.unix_socket);
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_null(u.user);
    assert_null(u.password);

    parse_ok("redis://redis", &u, buf);
    assert_string_equal(u.host, "redis");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);

    parse_ok("redis://:p%40ss@cache.internal:6379/0", &u, buf);
    assert_string_equal(u.host, "cache.internal");
    assert_null(u.user);
    assert_string_equal(u.password, "p@ss");

    parse_ok("redis://gw:pa:ss@[::1]:7000/", &u, buf);
    assert_string_equal(u.user, "gw");
    assert_string_equal(u.password, "pa:ss");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 0);

    parse_ok("unix:/run/redis/redis.sock", &u, buf);
    assert_true(u.unix_socket);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    parse_ok("unix:///run/r.sock", &u, buf);
    assert_string_equal(u.path, "/run/r.sock");

    parse_bad("http://127.0.0.1:6379", "is not a Redis address");
    parse_bad("rediss://127.0.0.1:6379", "TLS");
    parse_bad("redis://", "names no host");
    parse_bad("redis://:s3cret@", "names no host");
    parse_bad("redis://h:0", "port");
    parse_bad("redis://h:65536", "port");
    parse_bad("redis://h:abc", "port");
    parse_bad("redis://h/x", "database");
    parse_bad("redis://h/1000001", "database");
    parse_bad("redis://h?db=1", "query");
    parse_bad("redis://[::1", "']'");
    parse_bad("redis://[::1]x:1", "after the IPv6");
    parse_ok("redis://u@h", &u, buf);
    assert_string_equal(u.user, "u");
    assert_null(u.password);
    parse_bad("redis://:s3cret%4@h", "%-escape");
    parse_bad("redis://:s3cret%00@h", "%-escape");
    parse_bad("unix:", "names no socket");
}

static struct cfg *load(const char *shared, struct cfg_errors *e, const char *dir)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"backends\": [{\"url\": \"http://127.0.0.1:11434\"}],\n\"shared\": %s}", shared);
    cfg_errors_init(e);
    return cfg_load_buffer(text, strlen(text), "t.json", dir, e);
}

/* shared (relative paths against dir) must be refused with a message holding expect. */
static void load_bad_in(const char *shared, const char *dir, const char *expect)
{
    struct cfg_errors e;
    struct cfg *c = load(shared, &e, dir);
    if (c) {
        cfg_unref(c);
        fail_msg("expected a problem with %s", shared);
    }
    const char *t = e.text.p ? e.text.p : "";
    if (!strstr(t, expect))
        fail_msg("%s: \"%s\" does not say \"%s\"", shared, t, expect);
    assert_null(strstr(t, "s3cret"));
    cfg_errors_free(&e);
}

static void load_bad(const char *shared, const char *expect)
{
    load_bad_in(shared, "/etc/gw", expect);
}

static void test_section(void **state)
{
    (void)state;
    struct cfg_errors e;
    struct cfg *c = load("{\"redis\": \"redis://127.0.0.1:6390/3\"}", &e, "/etc/gw");
    assert_non_null(c);
    assert_true(c->shared.enabled);
    assert_string_equal(c->shared.addr, "127.0.0.1");
    assert_int_equal(c->shared.port, 6390);
    assert_int_equal(c->shared.db, 3);
    assert_string_equal(c->shared.prefix, "ogw:");
    assert_int_equal(c->shared.timeout_ms, 100);
    assert_int_equal(c->shared.lease_s, 30);
    assert_null(c->shared.password);
    assert_string_equal(c->shared.redis, "127.0.0.1:6390/3");
    cfg_errors_free(&e);

    /* absent: everything stays local */
    const char *plain = "{\"backends\": [{\"url\": \"http://127.0.0.1:11434\"}]}";
    struct cfg *p = cfg_load_buffer(plain, strlen(plain), "t.json", "/", NULL);
    assert_non_null(p);
    assert_false(p->shared.enabled);
    assert_false(sharedcfg_same(&c->shared, &p->shared));
    assert_true(sharedcfg_same(&p->shared, &p->shared));
    cfg_unref(p);

    struct cfg *same =
        load("{\"redis\": \"redis://127.0.0.1:6390/3\", \"timeout_ms\": 100}", &e, "/elsewhere");
    assert_true(sharedcfg_same(&c->shared, &same->shared));
    cfg_errors_free(&e);
    struct cfg *other = load("{\"redis\": \"redis://127.0.0.1:6390/4\"}", &e, "/etc/gw");
    assert_false(sharedcfg_same(&c->shared, &other->shared));
    cfg_errors_free(&e);
    cfg_unref(same);
    cfg_unref(other);
    cfg_unref(c);

    c = load("{\"redis\": \"unix:run/redis.sock\", \"prefix\": \"a:b:\", \"timeout_ms\": 250}", &e,
             "/etc/gw");
    assert_non_null(c);
    assert_string_equal(c->shared.unix_path, "/etc/gw/run/redis.sock");
    assert_string_equal(c->shared.prefix, "a:b:");
    assert_int_equal(c->shared.timeout_ms, 250);
    assert_string_equal(c->shared.redis, "unix:/etc/gw/run/redis.sock");
    cfg_unref(c);
    cfg_errors_free(&e);

    /* a name that does not resolve is not a problem with the file */
    c = load("{\"redis\": \"redis://no-such-host.invalid:6379\"}", &e, "/etc/gw");
    assert_non_null(c);
    assert_true(c->shared.enabled);
    assert_string_equal(c->shared.addr, "");
    cfg_unref(c);
    cfg_errors_free(&e);

    load_bad("{\"prefix\": \"x\"}", "\"redis\"");
    load_bad("{\"redis\": \"redis://:s3cret@h:70000\"}", "port");
    load_bad("{\"redis\": 6379}", "shared.redis");
    load_bad("{\"redis\": \"redis://h\", \"prefix\": \"a b\"}", "shared.prefix");
    load_bad("{\"redis\": \"redis://h\", \"timeout_ms\": 0}", "shared.timeout_ms");
    load_bad("{\"redis\": \"redis://h\", \"timeout_ms\": 10001}", "shared.timeout_ms");
    load_bad("{\"redis\": \"redis://h\", \"colour\": 1}", "colour");
    load_bad("{\"redis\": \"redis://h\", \"lease_s\": 0}", "shared.lease_s");
    load_bad("{\"redis\": \"redis://h\", \"lease_s\": 3601}", "shared.lease_s");
    load_bad("{\"redis\": \"redis://h\", \"password_file\": \"/nonexistent/pw\"}", "cannot open");
    load_bad("[1]", "shared");
}

static void test_password_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/ogw-sharedcfg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/pw", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("s3cret-pass\nsecond line ignored\n", f);
    fclose(f);
    /* readable by others: refused, as the keys file and the TLS key are */
    assert_int_equal(chmod(path, 0644), 0);
    load_bad_in("{\"redis\": \"redis://127.0.0.1\", \"password_file\": \"pw\"}", dir,
                "other users may read or write it (mode 0644)");
    assert_int_equal(chmod(path, 0640), 0);
    struct cfg_errors e;
    struct cfg *c =
        load("{\"redis\": \"redis://gw@127.0.0.1\", \"password_file\": \"pw\"}", &e, dir);
    assert_non_null(c);
    assert_string_equal(c->shared.user, "gw");
    assert_string_equal(c->shared.password, "s3cret-pass");
    cfg_unref(c);
    cfg_errors_free(&e);
    load_bad("{\"redis\": \"redis://gw@127.0.0.1\"}", "but no password");
    c = load("{\"redis\": \"redis://127.0.0.1\", \"password_file\": \"pw\"}", &e, dir);
    assert_non_null(c);
    assert_string_equal(c->shared.password, "s3cret-pass");
    cfg_unref(c);
    cfg_errors_free(&e);
    load_bad("{\"redis\": \"redis://:s3cret@127.0.0.1\", \"password_file\": \"/etc/hostname\"}",
             "keep one");
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("\n", f);
    fclose(f);
    c = load("{\"redis\": \"redis://127.0.0.1\", \"password_file\": \"pw\"}", &e, dir);
    assert_null(c);
    assert_non_null(strstr(e.text.p, "first line must hold the password"));
    cfg_errors_free(&e);
    unlink(path);
    /* a FIFO is refused at once, not waited on (alarm: a hang fails the test) */
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(10);
    load_bad_in("{\"redis\": \"redis://127.0.0.1\", \"password_file\": \"pw\"}", dir,
                "is not a regular file");
    alarm(0);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_section),
        cmocka_unit_test(test_password_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
