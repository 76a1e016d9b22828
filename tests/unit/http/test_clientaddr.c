/* clientaddr.c: the X-Forwarded-For walk (nginx real_ip_recursive) as a pure
 * function: peers trusted or not, several hops, several headers, ports,
 * IPv6, and where a malformed entry stops it. */
#include "clientaddr.h"
#include "netaddr.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* trusted: a NULL-terminated list of blocks. */
static const char *walk(const char *peer, const char *const *trusted, const char *const *xff,
                        size_t n)
{
    static char text[INET6_ADDRSTRLEN];
    struct netaddr_cidr set[8];
    size_t nt = 0;
    char why[320];
    for (; trusted && trusted[nt]; nt++)
        if (netaddr_cidr_parse(&set[nt], trusted[nt], why, sizeof why) < 0)
            fail_msg("%s: %s", trusted[nt], why);
    struct cfg_cidrs t = {nt ? set : NULL, nt};
    unsigned char p[16], out[16];
    if (!netaddr_ip_parse(peer, strlen(peer), p))
        fail_msg("peer %s", peer);
    clientaddr_walk(p, xff, n, &t, out);
    netaddr_ip_text(out, text);
    return text;
}

#define W1(peer, trusted, one) walk(peer, trusted, (const char *const[]){one}, 1)

static const char *const proxy[] = {"127.0.0.2/32", NULL};
static const char *const chain[] = {"127.0.0.2/32", "10.0.0.0/8", "fd00::/8", NULL};

static void untrusted_peer(void **state)
{
    (void)state;
    /* no trusted proxies, or a peer that is not one: the header is not read */
    assert_string_equal(W1("127.0.0.1", NULL, "203.0.113.9"), "127.0.0.1");
    assert_string_equal(W1("127.0.0.1", proxy, "203.0.113.9"), "127.0.0.1");
    assert_string_equal(W1("::1", proxy, "203.0.113.9"), "::1");
    assert_string_equal(W1("198.51.100.7", chain, "10.0.0.1, 127.0.0.2"), "198.51.100.7");
}

static void one_hop(void **state)
{
    (void)state;
    assert_string_equal(W1("127.0.0.2", proxy, "203.0.113.9"), "203.0.113.9");
    /* the right-most untrusted entry: what the client wrote itself is left of it */
    assert_string_equal(W1("127.0.0.2", proxy, "1.1.1.1, 2.2.2.2, 203.0.113.9"), "203.0.113.9");
    /* a client that claims to be the proxy is passed over like the proxy */
    assert_string_equal(W1("127.0.0.2", proxy, "6.6.6.6, 203.0.113.9"), "203.0.113.9");
    /* no header (or an empty one): the proxy itself */
    assert_string_equal(walk("127.0.0.2", proxy, NULL, 0), "127.0.0.2");
    assert_string_equal(W1("127.0.0.2", proxy, ""), "127.0.0.2");
    assert_string_equal(W1("127.0.0.2", proxy, " , ,"), "127.0.0.2");
    /* spaces, tabs and empty elements as HTTP lists allow */
    assert_string_equal(W1("127.0.0.2", proxy, "\t203.0.113.9 , ,"), "203.0.113.9");
    /* ports and brackets */
    assert_string_equal(W1("127.0.0.2", proxy, "203.0.113.9:4711"), "203.0.113.9");
    assert_string_equal(W1("127.0.0.2", proxy, "[2001:db8::7]:4711"), "2001:db8::7");
    assert_string_equal(W1("127.0.0.2", proxy, "2001:DB8::7"), "2001:db8::7");
    /* an IPv4-mapped entry is its IPv4 address */
    assert_string_equal(W1("127.0.0.2", proxy, "::ffff:203.0.113.9"), "203.0.113.9");
}

static void recursive(void **state)
{
    (void)state;
    /* client -> 10.1.1.1 -> 10.2.2.2 -> 127.0.0.2 (us) */
    assert_string_equal(W1("127.0.0.2", chain, "203.0.113.9, 10.1.1.1, 10.2.2.2"), "203.0.113.9");
    /* an untrusted hop in the middle ends the walk there */
    assert_string_equal(W1("127.0.0.2", chain, "203.0.113.9, 198.51.100.1, 10.2.2.2"),
                        "198.51.100.1");
    /* every entry trusted: the left-most */
    assert_string_equal(W1("127.0.0.2", chain, "10.9.9.9, 10.1.1.1, 127.0.0.2"), "10.9.9.9");
    /* IPv6 hops */
    assert_string_equal(W1("127.0.0.2", chain, "2001:db8::1, fd00::2, [fd00::3]:80"),
                        "2001:db8::1");
    /* the peer reached over IPv6 */
    static const char *const v6[] = {"::1", NULL};
    assert_string_equal(W1("::1", v6, "203.0.113.9, ::1"), "203.0.113.9");
}

static void several_headers(void **state)
{
    (void)state;
    /* two headers are one list, the first header's entries first */
    const char *const two[] = {"203.0.113.9, 10.1.1.1", "10.2.2.2"};
    assert_string_equal(walk("127.0.0.2", chain, two, 2), "203.0.113.9");
    const char *const mid[] = {"1.1.1.1", "198.51.100.1, 10.1.1.1", "10.2.2.2"};
    assert_string_equal(walk("127.0.0.2", chain, mid, 3), "198.51.100.1");
    const char *const trusted_all[] = {"10.3.3.3", "", "10.1.1.1, 10.2.2.2"};
    assert_string_equal(walk("127.0.0.2", chain, trusted_all, 3), "10.3.3.3");
}

static void malformed(void **state)
{
    (void)state;
    /* the walk stops at an entry that is no address: the last address it
     * accepted (the hop that handed the entry over) is the client */
    assert_string_equal(W1("127.0.0.2", proxy, "unknown"), "127.0.0.2");
    assert_string_equal(W1("127.0.0.2", proxy, "203.0.113.9, garbage"), "127.0.0.2");
    assert_string_equal(W1("127.0.0.2", chain, "203.0.113.9, _hidden, 10.1.1.1"), "10.1.1.1");
    assert_string_equal(W1("127.0.0.2", chain, "203.0.113.9 10.1.1.1"), "127.0.0.2");
    assert_string_equal(W1("127.0.0.2", chain, "host.example, 10.1.1.1"), "10.1.1.1");
    /* left of the client it is never read */
    assert_string_equal(W1("127.0.0.2", chain, "garbage, 203.0.113.9, 10.1.1.1"), "203.0.113.9");
    const char *const two[] = {"203.0.113.9", "10.1.1.1, bad entry"};
    assert_string_equal(walk("127.0.0.2", chain, two, 2), "127.0.0.2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(untrusted_peer),  cmocka_unit_test(one_hop),   cmocka_unit_test(recursive),
        cmocka_unit_test(several_headers), cmocka_unit_test(malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
