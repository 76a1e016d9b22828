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
#include <arpa/inet.h>
#include <netinet/in.h>

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

/* ---- IP addresses and CIDR blocks ---- */

static struct netaddr_cidr cidr_ok(const char *s)
{
    struct netaddr_cidr c;
    char why[320] = "";
    if (netaddr_cidr_parse(&c, s, why, sizeof why) != 0)
        fail_msg("refused %s: %s", s, why);
    return c;
}

static void expect_bad_cidr(const char *s, const char *needle)
{
    struct netaddr_cidr c;
    char why[320] = "";
    if (netaddr_cidr_parse(&c, s, why, sizeof why) != -1)
        fail_msg("accepted %s", s);
    if (!strstr(why, needle))
        fail_msg("%s: missing \"%s\" in \"%s\"", s, needle, why);
}

/* The 16-byte form of an address text (which must parse). */
static void ip(const char *s, unsigned char out[16])
{
    if (!netaddr_ip_parse(s, strlen(s), out))
        fail_msg("not an address: %s", s);
}

static bool in(const char *const *blocks, size_t n, const char *addr)
{
    struct netaddr_cidr set[8];
    unsigned char a[16];
    for (size_t i = 0; i < n; i++)
        set[i] = cidr_ok(blocks[i]);
    ip(addr, a);
    return netaddr_cidr_match(set, n, a);
}

static void cidrs(void **state)
{
    (void)state;
    struct netaddr_cidr c = cidr_ok("10.0.0.0/8");
    assert_int_equal(c.bits, 104);
    assert_int_equal(cidr_ok("10.1.2.3").bits, 128);
    assert_int_equal(cidr_ok("0.0.0.0/0").bits, 96);
    assert_int_equal(cidr_ok("::/0").bits, 0);
    assert_int_equal(cidr_ok("fd00::/8").bits, 8);
    assert_int_equal(cidr_ok("::1").bits, 128);
    assert_int_equal(cidr_ok("192.168.0.0/17").bits, 113);

    expect_bad_cidr("10.0.0.1/8", "bits are set past the /8 prefix: write \"10.0.0.0/8\"");
    expect_bad_cidr("fd00::1/8", "write \"fd00::/8\"");
    expect_bad_cidr("10.0.0.0/33", "not a number from 0 to 32 for an IPv4");
    expect_bad_cidr("::/129", "not a number from 0 to 128 for an IPv6");
    expect_bad_cidr("10.0.0.0/", "the prefix length \"\" is not a number");
    expect_bad_cidr("10.0.0.0/8x", "is not a number");
    expect_bad_cidr("10.0.0.0/-1", "is not a number");
    expect_bad_cidr("localhost", "not an IP address or CIDR block");
    expect_bad_cidr("[::1]", "not an IP address or CIDR block");
    expect_bad_cidr("10.0.0", "not an IP address");
    expect_bad_cidr("", "not an IP address");

    static const char *const lan[] = {"10.0.0.0/8", "192.168.1.0/24", "fd00::/8", "::1",
                                      "172.16.0.0/12"};
    assert_true(in(lan, 5, "10.255.1.2"));
    assert_true(in(lan, 5, "192.168.1.200"));
    assert_false(in(lan, 5, "192.168.2.1"));
    assert_true(in(lan, 5, "172.31.255.255"));
    assert_false(in(lan, 5, "172.32.0.0"));
    assert_false(in(lan, 5, "11.0.0.0"));
    assert_true(in(lan, 5, "fd12:3456::7"));
    assert_false(in(lan, 5, "fe80::1"));
    assert_true(in(lan, 5, "::1"));
    assert_false(in(lan, 5, "::2"));
    /* an IPv4-mapped IPv6 peer is its IPv4 address */
    assert_true(in(lan, 5, "::ffff:10.9.8.7"));
    /* an IPv4 block never takes an IPv6 address whose bytes look alike */
    assert_false(in(lan, 5, "a00::1"));
    static const char *const all4[] = {"0.0.0.0/0"};
    assert_true(in(all4, 1, "203.0.113.9"));
    assert_false(in(all4, 1, "2001:db8::1"));
    static const char *const all[] = {"::/0"};
    assert_true(in(all, 1, "2001:db8::1"));
    assert_true(in(all, 1, "203.0.113.9")); /* mapped: inside ::/0 too */
    static const char *const odd[] = {"10.0.0.128/25"};
    assert_true(in(odd, 1, "10.0.0.255"));
    assert_false(in(odd, 1, "10.0.0.127"));
    assert_false(in(NULL, 0, "10.0.0.1"));
}

static void ip_forms(void **state)
{
    (void)state;
    unsigned char a[16], b[16];
    char t[INET6_ADDRSTRLEN];
    ip("203.0.113.9", a);
    netaddr_ip_text(a, t);
    assert_string_equal(t, "203.0.113.9");
    ip("203.0.113.9:54321", b); /* with a port, as some proxies write it */
    assert_memory_equal(a, b, 16);
    ip("::ffff:203.0.113.9", b);
    assert_memory_equal(a, b, 16);
    ip("2001:DB8::1", a);
    netaddr_ip_text(a, t);
    assert_string_equal(t, "2001:db8::1");
    ip("[2001:db8::1]", b);
    assert_memory_equal(a, b, 16);
    ip("[2001:db8::1]:443", b);
    assert_memory_equal(a, b, 16);
    static const char *const bad[] = {"",
                                      "unknown",
                                      "_hidden",
                                      "example.com",
                                      "1.2.3.4 ",
                                      " 1.2.3.4",
                                      "1.2.3.4:",
                                      "1.2.3.4:99999",
                                      "1.2.3.4:x",
                                      "[::1",
                                      "[::1]x",
                                      "[::1]:",
                                      "[1.2.3.4]",
                                      "::1:80:x:",
                                      "fe80::1%eth0",
                                      "1.2.3",
                                      "1.2.3.4.5",
                                      "[]",
                                      "2001:db8::1:8080:1:2:3:4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (netaddr_ip_parse(bad[i], strlen(bad[i]), a))
            fail_msg("took %s as an address", bad[i]);
    /* only the first n bytes count */
    assert_true(netaddr_ip_parse("10.0.0.1,junk", 8, a));
    netaddr_ip_text(a, t);
    assert_string_equal(t, "10.0.0.1");

    struct sockaddr_in s4 = {.sin_family = AF_INET};
    s4.sin_addr.s_addr = htonl(0x7f000002);
    assert_true(netaddr_ip_of((struct sockaddr *)&s4, a));
    netaddr_ip_text(a, t);
    assert_string_equal(t, "127.0.0.2");
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    assert_true(netaddr_ip_of((struct sockaddr *)&s6, a));
    netaddr_ip_text(a, t);
    assert_string_equal(t, "::1");
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_false(netaddr_ip_of(&un, a));
    assert_false(netaddr_ip_of(NULL, a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(addresses), cmocka_unit_test(refused), cmocka_unit_test(overlaps),
        cmocka_unit_test(urls),      cmocka_unit_test(cidrs),   cmocka_unit_test(ip_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
