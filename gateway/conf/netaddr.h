/*
 * netaddr: the network addresses gateway.json names, read and judged:
 * "host:port" listen addresses (an IPv4 address, an IPv6 one in brackets,
 * or "localhost"; host names are never resolved, so that what is checked is
 * what gets bound), and the URLs of backends and CORS origins,
 * "http[s]://host[:port]"; CIDR blocks (trusted_proxies,
 * limits.auth_guard_exempt) and the one test of an address against a list of
 * them; the addresses that X-Forwarded-For holds. Each parser says why a
 * text is not one, in words that go after the quoted text in a message.
 *
 * An IP address is held in one form for both families: 16 bytes, an IPv4
 * address as IPv4-mapped IPv6 (::ffff:a.b.c.d), so that one comparison, one
 * table key and one text form serve both.
 *
 * Pure functions: no allocation, no state, any thread. A struct netaddr
 * borrows the text it was parsed from (the caller keeps that alive: a
 * configuration snapshot keeps its parsed file).
 */
#ifndef GATEWAY_NETADDR_H
#define GATEWAY_NETADDR_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <stddef.h>

/* A "host:port" listen address. */
struct netaddr {
    const char *text;            /* borrowed: as written, for messages: "[::1]:8080" */
    char host[INET6_ADDRSTRLEN]; /* no brackets, canonical: "127.0.0.1", "::1",
                                    "0.0.0.0", "::", "localhost"; "" when unset */
    unsigned port;               /* 1..65535 */
    int family;    /* AF_INET, AF_INET6, or AF_UNSPEC for "localhost" (both loopbacks) */
    bool loopback; /* 127.0.0.0/8, ::1, ::ffff:127.x.y.z or "localhost" */
    bool wildcard; /* 0.0.0.0 or :: */
    bool tls;      /* a listener that speaks TLS (set by config.c; netaddr_parse() clears it) */
};

/* Parse "host:port" into *a. Returns 0, or -1 with why[] saying what is wrong
 * and how to write it instead. */
int netaddr_parse(struct netaddr *a, const char *s, char *why, size_t whysz);

/* The socket address to bind for a ("localhost" binds 127.0.0.1) into *ss,
 * its length into *len. 0, or -1 when a's host is not an IP address. */
int netaddr_sockaddr(const struct netaddr *a, struct sockaddr_storage *ss, socklen_t *len);

/* Would binding both a and b fail, or listen twice? (Same address and port,
 * or one is a wildcard or "localhost" covering the other.) */
bool netaddr_overlap(const struct netaddr *a, const struct netaddr *b);

/*
 * "http[s]://host[:port][/]" into out as "http[s]://host[:port]", the scheme
 * lower-cased; for an origin (CORS) the host too, since browsers send it so.
 * out needs strlen(s) + 1 bytes. Returns 0, or -1 with why[] filled (never
 * echoing user info or a query: they may be secret).
 */
int netaddr_url(const char *s, bool origin, char *out, char *why, size_t whysz);

/* A CIDR block: the leading `bits` bits of addr (the 16-byte form above; an
 * IPv4 block's prefix counts the 96 bits of the mapping, so 10.0.0.0/8 is
 * held as ::ffff:10.0.0.0 with bits 104). Bits past the prefix are zero. */
struct netaddr_cidr {
    unsigned char addr[16];
    unsigned bits; /* 0..128 */
};

/* "10.0.0.0/8", "fd00::/8", or one address ("10.1.2.3" = /32, "::1" = /128).
 * Returns 0, or -1 with why[] filled (a prefix too long, bits set past the
 * prefix: "write \"10.0.0.0/8\"", not an address). */
int netaddr_cidr_parse(struct netaddr_cidr *c, const char *s, char *why, size_t whysz);

/* Is addr (16-byte form) inside one of set[0..n)? */
bool netaddr_cidr_match(const struct netaddr_cidr *set, size_t n, const unsigned char addr[16]);

/* p[0..n) as an IP address in the 16-byte form: "1.2.3.4", "2001:db8::1",
 * and, as proxies write them in X-Forwarded-For, with a port
 * ("1.2.3.4:5678", "[2001:db8::1]:5678") or in brackets ("[::1]"). Nothing
 * else: no host names, no zone ids, no spaces. */
bool netaddr_ip_parse(const char *p, size_t n, unsigned char out[16]);

/* A socket address (AF_INET or AF_INET6) in the 16-byte form; false for
 * other families (out is then zeroed). */
bool netaddr_ip_of(const struct sockaddr *sa, unsigned char out[16]);

/* The 16-byte form as text: an IPv4 (or IPv4-mapped) address dotted,
 * "10.1.2.3", else IPv6's canonical text. out holds INET6_ADDRSTRLEN. */
void netaddr_ip_text(const unsigned char addr[16], char out[INET6_ADDRSTRLEN]);

#endif
