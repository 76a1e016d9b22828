/* Unit tests for shared_dns.c: the Redis host of the configuration in force
 * looked up again ("localhost", from /etc/hosts), nothing for a numeric
 * address, a Unix socket or no "shared", and the entry kept when a later
 * lookup fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "shared_dns.h"
#include "snapshot.h"

#include <string.h>

static void publish(const char *shared)
{
    char text[512];
    snprintf(text, sizeof text, "{\"backends\": [{\"url\": \"http://127.0.0.1:11434\"}]%s%s}",
             shared ? ", \"shared\": " : "", shared ? shared : "");
    struct cfg *c = cfg_load_buffer(text, strlen(text), "unit.json", "/", NULL);
    assert_non_null(c);
    struct backends *b = backends_new(c); /* never started: no thread */
    assert_non_null(b);
    struct snapshot *s = snapshot_new(c, keyring_empty(), b);
    assert_non_null(s);
    snapshot_publish(s);
}

static void test_refresh(void **state)
{
    (void)state;
    char out[64];
    shared_dns_reset();
    shared_dns_refresh(); /* nothing published: nothing to do */
    assert_false(shared_dns_get("localhost", 6390, out, sizeof out));

    publish("{\"redis\": \"redis://localhost:6390/0\"}");
    shared_dns_refresh();
    assert_true(shared_dns_get("localhost", 6390, out, sizeof out));
    assert_true(strcmp(out, "127.0.0.1") == 0 || strcmp(out, "::1") == 0);
    assert_false(shared_dns_get("localhost", 6391, out, sizeof out)); /* another port */
    assert_false(shared_dns_get("redis", 6390, out, sizeof out));     /* another host */

    /* a name that does not resolve (any more): the last address found stays */
    publish("{\"redis\": \"redis://no-such-host.invalid:6390/0\"}");
    shared_dns_refresh();
    assert_false(shared_dns_get("no-such-host.invalid", 6390, out, sizeof out));
    assert_true(shared_dns_get("localhost", 6390, out, sizeof out));

    /* numeric addresses, sockets and no "shared" need no lookup */
    shared_dns_reset();
    publish("{\"redis\": \"redis://127.0.0.1:6390/0\"}");
    shared_dns_refresh();
    assert_false(shared_dns_get("127.0.0.1", 6390, out, sizeof out));
    publish("{\"redis\": \"unix:/run/redis.sock\"}");
    shared_dns_refresh();
    publish(NULL);
    shared_dns_refresh();
    assert_false(shared_dns_get("localhost", 6390, out, sizeof out));
    snapshot_publish(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refresh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
