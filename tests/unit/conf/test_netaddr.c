/* netaddr.c: "host:port" listen addresses, their overlaps, and the URLs of
 * backends and CORS origins. */
#include "netaddr.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

static struct netaddr parse_ok(const char *s)
{
    struct netaddr a;
    char why[320] = "";
    if (netaddr_parse(&a, s, why, sizeof why) != 0)
        fail_msg("refused %s: %s", s, why);
    assert_ptr_equal(a.text, s); /* borrowed, not copied */
    return a;
}

static void expect_refused(const char *s, const char *needle)
{
    struct netaddr a;
    char why[320] = "";
    if (netaddr_parse(&a, s, why, sizeof why) != -1)
        fail_msg("accepted %s", s);
    if (!strstr(why, needle))
        fail_msg("%s: missing \"%s\" in \"%s\"", s, needle, why);
}

static void addresses(void **state)
{
    (void)state;
    struct netaddr a = parse_ok("127.0.0.1:8080");
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 8080);
    assert_int_equal(a.family, AF_INET);
    assert_true(a.loopback);
    assert_false(a.wildcard);

    a = parse_ok("127.9.8.7:1");
    assert_true(a.loopback);
    a = parse_ok("10.1.2.3:65535");
    assert_false(a.loopback);
    assert_int_equal(a.port, 65535);
    a = parse_ok("0.0.0.0:80");
    assert_true(a.wildcard);
    assert_false(a.loopback);

    a = parse_ok("[::1]:8081");
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.family, AF_INET6);
    assert_true(a.loopback);
    a = parse_ok("[::]:8080");
    assert_string_equal(a.host, "::");
    assert_true(a.wildcard);
    /* canonical form, and a v4-mapped loopback */
    a = parse_ok("[0:0:0:0:0:0:0:1]:9");
    assert_string_equal(a.host, "::1");
    a = parse_ok("[::ffff:127.0.0.1]:2");
    assert_true(a.loopback);

    a = parse_ok("LocalHost:80");
    assert_string_equal(a.host, "localhost");
    assert_int_equal(a.family, AF_UNSPEC);
    assert_true(a.loopback);
}

static void refused(void **state)
{
    (void)state;
    expect_refused("127.0.0.1", "has no port");
    expect_refused("8080", "has no host: write \"127.0.0.1:8080\"");
    expect_refused(":8080", "has no host: write \"127.0.0.1:8080\"");
    expect_refused("::1:8080", "IPv6 addresses go in brackets");
    expect_refused("[::1:8080", "has \"[\" without \"]\"");
    expect_refused("[::1]8080", "needs \":PORT\" after the \"]\"");
    expect_refused("[zz]:80", "\"zz\" is not an IPv6 address");
    expect_refused("example.com:80", "\"example.com\" is not an IP address");
    expect_refused("*:80", "\"*\" is not an address");
    expect_refused("127.0.0.1:0", "the port \"0\" is not a number from 1 to 65535");
    expect_refused("127.0.0.1:65536", "not a number from 1 to 65535");
    expect_refused("127.0.0.1:+80", "not a number from 1 to 65535");
    expect_refused("127.0.0.1:", "not a number from 1 to 65535");
    char longhost[100];
    snprintf(longhost, sizeof longhost, "%070d:80", 1);
    expect_refused(longhost, "the host is too long");
}

static void overlaps(void **state)
{
    (void)state;
    struct netaddr lo = parse_ok("127.0.0.1:8080"), lo6 = parse_ok("[::1]:8080"),
                   any4 = parse_ok("0.0.0.0:8080"), any6 = parse_ok("[::]:8080"),
                   name = parse_ok("localhost:8080"), other = parse_ok("127.0.0.1:8081"),
                   ten = parse_ok("10.0.0.1:8080");
    assert_true(netaddr_overlap(&lo, &lo));
    assert_false(netaddr_overlap(&lo, &other)); /* another port */
    assert_false(netaddr_overlap(&lo, &lo6));   /* v6-only sockets */
    assert_false(netaddr_overlap(&lo, &ten));
    assert_true(netaddr_overlap(&any4, &lo));
    assert_true(netaddr_overlap(&ten, &any4));
    assert_false(netaddr_overlap(&any4, &lo6));
    assert_true(netaddr_overlap(&any6, &lo6));
    assert_false(netaddr_overlap(&any6, &lo));
    assert_true(netaddr_overlap(&name, &lo));
    assert_true(netaddr_overlap(&lo6, &name));
    assert_true(netaddr_overlap(&name, &any4));
    assert_true(netaddr_overlap(&any6, &name));
    struct netaddr unset = {0};
    assert_false(netaddr_overlap(&unset, &lo));
}

static void expect_url(const char *s, bool origin, const char *want)
{
    char out[256], why[400] = "";
    if (netaddr_url(s, origin, out, why, sizeof why) != 0)
        fail_msg("refused %s: %s", s, why);
    assert_string_equal(out, want);
}

static void expect_bad_url(const char *s, bool origin, const char *needle)
{
    char out[256], why[400] = "";
    if (netaddr_url(s, origin, out, why, sizeof why) != -1)
        fail_msg("accepted %s", s);
    if (!strstr(why, needle))
        fail_msg("%s: missing \"%s\" in \"%s\"", s, needle, why);
}

static void urls(void **state)
{
    (void)state;
    expect_url("http://127.0.0.1:11434", false, "http://127.0.0.1:11434");
    expect_url("HTTP://Gpu1.Local:11434/", false, "http://Gpu1.Local:11434");
    expect_url("https://[::1]:443", false, "https://[::1]:443");
    expect_url("http://h", false, "http://h");
    /* an origin is lower-cased whole: browsers send it so */
    expect_url("https://App.Example.com", true, "https://app.example.com");
    expect_url("https://app.example.com:8443/", true, "https://app.example.com:8443");

    expect_bad_url("127.0.0.1:11434", false, "\"127.0.0.1:11434\" has no scheme");
    expect_bad_url("gopher://h", false, "must start with http:// or https://");
    expect_bad_url("http://", false, "has no host");
    expect_bad_url("http://:80", false, "has no host");
    expect_bad_url("http://[zz]:80", false, "has a bad IPv6 host");
    expect_bad_url("http://a b", false, "cannot be in a host name");
    expect_bad_url("http://h:0", false, "the port must be a number from 1 to 65535");
    expect_bad_url("http://h:99999", false, "the port must be a number");
    expect_bad_url("http://h/api", false, "must not have a path, query or fragment");
    expect_bad_url("http://h?x=1", false, "must not have a path, query or fragment");
    expect_bad_url("https://a.com/x", true, "an origin has no path: write \"https://a.com\"");
    /* credentials are refused and never echoed */
    char out[256], why[400];
    assert_int_equal(netaddr_url("http://user:s3cret@h", false, out, why, sizeof why), -1);
    assert_non_null(strstr(why, "must not hold credentials"));
    assert_null(strstr(why, "s3cret"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(addresses),
        cmocka_unit_test(refused),
        cmocka_unit_test(overlaps),
        cmocka_unit_test(urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
