/*
 * netaddr: the network addresses gateway.json names, read and judged:
 * "host:port" listen addresses (an IPv4 address, an IPv6 one in brackets,
 * or "localhost"; host names are never resolved, so that what is checked is
 * what gets bound), and the URLs of backends and CORS origins,
 * "http[s]://host[:port]". Each parser says why a text is not one, in words
 * that go after the quoted text in a message.
 *
 * Pure functions: no allocation, no state, any thread. A struct netaddr
 * borrows the text it was parsed from (the caller keeps that alive: a
 * configuration snapshot keeps its parsed file).
 */
#ifndef GATEWAY_NETADDR_H
#define GATEWAY_NETADDR_H

#include <netinet/in.h>
#include <stdbool.h>
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

#endif
