#include "netaddr.h"

#include "diag.h"
#include "num.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* p[0..n) as an IPv6 literal (no brackets). */
static bool parse_ipv6(const char *p, size_t n, struct in6_addr *out)
{
    char h[INET6_ADDRSTRLEN + 8];
    if (n >= sizeof h)
        return false;
    memcpy(h, p, n);
    h[n] = '\0';
    return inet_pton(AF_INET6, h, out) == 1;
}

int netaddr_parse(struct netaddr *a, const char *s, char *why, size_t whysz)
{
    char q[DIAG_SHOWBUF];
    const char *host, *port;
    size_t hl;
    memset(a, 0, sizeof *a);
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb) {
            snprintf(why, whysz,
                     "has \"[\" without \"]\": write IPv6 addresses like \"[::1]:8080\"");
            return -1;
        }
        host = s + 1;
        hl = (size_t)(rb - host);
        if (rb[1] != ':') {
            snprintf(why, whysz, "needs \":PORT\" after the \"]\", e.g. \"[::1]:8080\"");
            return -1;
        }
        port = rb + 2;
        struct in6_addr a6;
        if (!parse_ipv6(host, hl, &a6)) {
            char hs[64];
            snprintf(hs, sizeof hs, "%.*s", (int)(hl < 60 ? hl : 60), host);
            snprintf(why, whysz, "%s is not an IPv6 address", DIAG_SHOW(q, hs));
            return -1;
        }
        inet_ntop(AF_INET6, &a6, a->host, sizeof a->host);
        a->family = AF_INET6;
        a->wildcard = IN6_IS_ADDR_UNSPECIFIED(&a6);
        a->loopback =
            IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            if (num_all_digits(s, strlen(s)))
                snprintf(why, whysz,
                         "has no host: write \"127.0.0.1:%.8s\" (this machine only) or "
                         "\"0.0.0.0:%.8s\" (every IPv4 interface)",
                         s, s);
            else
                snprintf(why, whysz, "has no port: write \"HOST:PORT\", e.g. \"127.0.0.1:8080\"");
            return -1;
        }
        host = s;
        hl = (size_t)(colon - s);
        port = colon + 1;
        if (memchr(host, ':', hl)) {
            snprintf(why, whysz, "IPv6 addresses go in brackets: \"[::1]:8080\", \"[::]:8080\"");
            return -1;
        }
        if (hl == 0) {
            snprintf(why, whysz,
                     "has no host: write \"127.0.0.1%s\" (this machine only) or \"0.0.0.0%s\" "
                     "(every IPv4 interface)",
                     strlen(colon) < 8 ? colon : ":PORT", strlen(colon) < 8 ? colon : ":PORT");
            return -1;
        }
        char h[64];
        if (hl >= sizeof h) {
            snprintf(why, whysz, "the host is too long: give an IP address or \"localhost\"");
            return -1;
        }
        memcpy(h, host, hl);
        h[hl] = '\0';
        struct in_addr a4;
        if (strcasecmp(h, "localhost") == 0) {
            snprintf(a->host, sizeof a->host, "localhost");
            a->family = AF_UNSPEC;
            a->loopback = true;
        } else if (inet_pton(AF_INET, h, &a4) == 1) {
            inet_ntop(AF_INET, &a4, a->host, sizeof a->host);
            a->family = AF_INET;
            a->wildcard = a4.s_addr == htonl(INADDR_ANY);
            a->loopback = (ntohl(a4.s_addr) >> 24) == 127;
        } else if (strcmp(h, "*") == 0) {
            snprintf(why, whysz,
                     "\"*\" is not an address: write \"0.0.0.0:PORT\" (every IPv4 interface) "
                     "or \"[::]:PORT\" (every IPv6 interface)");
            return -1;
        } else {
            snprintf(why, whysz,
                     "%s is not an IP address: give one of this machine's addresses (e.g. "
                     "127.0.0.1, or 0.0.0.0 for all) or \"localhost\"; host names are not "
                     "resolved",
                     DIAG_SHOW(q, h));
            return -1;
        }
    }
    unsigned long long pv;
    const char *why2;
    if (!num_all_digits(port, strlen(port)) ||
        num_parse_uint(port, strlen(port), 1, 65535, &pv, &why2) < 0) {
        a->host[0] = '\0';
        snprintf(why, whysz, "the port %s is not a number from 1 to 65535", DIAG_SHOW(q, port));
        return -1;
    }
    a->port = (unsigned)pv;
    a->text = s;
    return 0;
}

bool netaddr_overlap(const struct netaddr *a, const struct netaddr *b)
{
    if (!a->host[0] || !b->host[0] || a->port != b->port)
        return false;
    if (a->family == b->family && strcmp(a->host, b->host) == 0)
        return true;
    /* "localhost" is bound as the loopback address itself */
    if (a->family == AF_UNSPEC &&
        (strcmp(b->host, "127.0.0.1") == 0 || strcmp(b->host, "::1") == 0))
        return true;
    if (b->family == AF_UNSPEC &&
        (strcmp(a->host, "127.0.0.1") == 0 || strcmp(a->host, "::1") == 0))
        return true;
    bool v4a = a->family == AF_INET || a->family == AF_UNSPEC;
    bool v4b = b->family == AF_INET || b->family == AF_UNSPEC;
    bool v6a = a->family == AF_INET6 || a->family == AF_UNSPEC;
    bool v6b = b->family == AF_INET6 || b->family == AF_UNSPEC;
    if (a->family == AF_INET && a->wildcard && v4b)
        return true;
    if (b->family == AF_INET && b->wildcard && v4a)
        return true;
    if (a->family == AF_INET6 && a->wildcard && v6b)
        return true;
    if (b->family == AF_INET6 && b->wildcard && v6a)
        return true;
    return false;
}

static char lower(char ch)
{
    return (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
}

int netaddr_url(const char *s, bool origin, char *out, char *why, size_t whysz)
{
    char q[DIAG_SHOWBUF];
    size_t skip;
    if (strncasecmp(s, "http://", 7) == 0) {
        skip = 7;
    } else if (strncasecmp(s, "https://", 8) == 0) {
        skip = 8;
    } else if (!strstr(s, "://")) {
        snprintf(why, whysz, "%s has no scheme: write \"http://%.64s\"", DIAG_SHOW(q, s), s);
        return -1;
    } else {
        snprintf(why, whysz, "must start with http:// or https://");
        return -1;
    }
    const char *auth = s + skip;
    size_t al = strcspn(auth, "/?#");
    const char *rest = auth + al;
    if (memchr(auth, '@', al)) {
        snprintf(why, whysz,
                 "must not hold credentials (user:password@): send them in \"headers\" "
                 "instead, e.g. {\"Authorization\": \"Basic ...\"}");
        return -1;
    }
    if (al == 0) {
        snprintf(why, whysz, "has no host");
        return -1;
    }
    const char *hend;
    if (auth[0] == '[') {
        const char *rb = memchr(auth, ']', al);
        struct in6_addr a6;
        if (!rb || !parse_ipv6(auth + 1, (size_t)(rb - auth - 1), &a6)) {
            snprintf(why, whysz, "has a bad IPv6 host: write it like \"http://[::1]:11434\"");
            return -1;
        }
        hend = rb + 1;
    } else {
        hend = auth;
        while (hend < auth + al && *hend != ':') {
            char ch = *hend;
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_')) {
                snprintf(why, whysz, "the host has a character that cannot be in a host name");
                return -1;
            }
            hend++;
        }
        if (hend == auth) {
            snprintf(why, whysz, "has no host");
            return -1;
        }
    }
    if (hend < auth + al) {
        unsigned long long pv;
        const char *w;
        if (*hend != ':' ||
            num_parse_uint(hend + 1, (size_t)(auth + al - hend - 1), 1, 65535, &pv, &w) < 0) {
            snprintf(why, whysz, "the port must be a number from 1 to 65535");
            return -1;
        }
    }
    if (rest[0] && strcmp(rest, "/") != 0 && origin) {
        snprintf(why, whysz, "an origin has no path: write \"%.*s%.*s\"", (int)skip, s,
                 (int)(al < 200 ? al : 200), auth);
        return -1;
    }
    if (rest[0] && strcmp(rest, "/") != 0) {
        snprintf(why, whysz,
                 "must not have a path, query or fragment (the gateway adds /api/chat and the "
                 "like): write \"%.*s%.*s\"",
                 (int)skip, s, (int)(al < 200 ? al : 200), auth);
        return -1;
    }
    for (size_t i = 0; i < skip + al; i++)
        out[i] = i < skip || origin ? lower(s[i]) : s[i];
    out[skip + al] = '\0';
    return 0;
}

/* ---- IP addresses and CIDR blocks ---- */

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_v4(const unsigned char a[16])
{
    return memcmp(a, v4_mapped, sizeof v4_mapped) == 0;
}

/* p[0..n) as a bare IPv4 or IPv6 literal. */
static bool parse_bare(const char *p, size_t n, unsigned char out[16])
{
    char h[INET6_ADDRSTRLEN + 8];
    if (n == 0 || n >= sizeof h)
        return false;
    memcpy(h, p, n);
    h[n] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, h, &a4) == 1) {
        memcpy(out, v4_mapped, 12);
        memcpy(out + 12, &a4, 4);
        return true;
    }
    if (inet_pton(AF_INET6, h, &a6) != 1)
        return false;
    memcpy(out, &a6, 16);
    return true;
}

static bool port_ok(const char *p, size_t n)
{
    unsigned long long v;
    const char *w;
    return n > 0 && num_all_digits(p, n) && num_parse_uint(p, n, 0, 65535, &v, &w) == 0;
}

bool netaddr_ip_parse(const char *p, size_t n, unsigned char out[16])
{
    if (n && p[0] == '[') {
        const char *rb = memchr(p, ']', n);
        if (!rb)
            return false;
        size_t after = n - (size_t)(rb + 1 - p);
        if (after && !(rb[1] == ':' && port_ok(rb + 2, after - 1)))
            return false;
        struct in6_addr a6;
        if (!parse_ipv6(p + 1, (size_t)(rb - p - 1), &a6))
            return false;
        memcpy(out, &a6, 16);
        return true;
    }
    if (parse_bare(p, n, out))
        return true;
    /* "a.b.c.d:port": one colon, a dotted address before it */
    const char *colon = memchr(p, ':', n);
    if (!colon || memchr(colon + 1, ':', n - (size_t)(colon + 1 - p)))
        return false;
    if (!port_ok(colon + 1, n - (size_t)(colon + 1 - p)))
        return false;
    return parse_bare(p, (size_t)(colon - p), out) && is_v4(out);
}

bool netaddr_ip_of(const struct sockaddr *sa, unsigned char out[16])
{
    memset(out, 0, 16);
    if (sa && sa->sa_family == AF_INET) {
        memcpy(out, v4_mapped, 12);
        memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return true;
    }
    if (sa && sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

void netaddr_ip_text(const unsigned char addr[16], char out[INET6_ADDRSTRLEN])
{
    if (is_v4(addr))
        inet_ntop(AF_INET, addr + 12, out, INET6_ADDRSTRLEN);
    else
        inet_ntop(AF_INET6, addr, out, INET6_ADDRSTRLEN);
}

/* Keep the leading bits of a, zero the rest. */
static void mask(unsigned char a[16], unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        a[i] &= (unsigned char)(0xff00u >> keep);
    }
}

int netaddr_cidr_parse(struct netaddr_cidr *c, const char *s, char *why, size_t whysz)
{
    char q[DIAG_SHOWBUF];
    memset(c, 0, sizeof *c);
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    if (!parse_bare(s, hl, c->addr)) {
        snprintf(why, whysz,
                 "not an IP address or CIDR block: write one like \"10.0.0.0/8\", "
                 "\"192.168.1.7\" or \"fd00::/8\" (no host names, no brackets)");
        return -1;
    }
    bool v4 = is_v4(c->addr);
    unsigned max = v4 ? 32 : 128;
    unsigned long long bits = max;
    if (slash) {
        const char *w;
        if (!num_all_digits(slash + 1, strlen(slash + 1)) ||
            num_parse_uint(slash + 1, strlen(slash + 1), 0, max, &bits, &w) < 0) {
            snprintf(why, whysz,
                     "the prefix length %s is not a number from 0 to %u for an IPv%d "
                     "address",
                     DIAG_SHOW(q, slash + 1), max, v4 ? 4 : 6);
            return -1;
        }
    }
    c->bits = (unsigned)bits + (v4 ? 96 : 0);
    unsigned char m[16];
    memcpy(m, c->addr, 16);
    mask(m, c->bits);
    if (memcmp(m, c->addr, 16) != 0) {
        /* "10.1.2.3/8" is almost always a typo for one of two things; say both */
        char t[INET6_ADDRSTRLEN];
        netaddr_ip_text(m, t);
        snprintf(why, whysz,
                 "bits are set past the /%llu prefix: write \"%s/%llu\" for the block, or the "
                 "address alone for just that address",
                 bits, t, bits);
        return -1;
    }
    return 0;
}

bool netaddr_cidr_match(const struct netaddr_cidr *set, size_t n, const unsigned char addr[16])
{
    for (size_t i = 0; i < n; i++) {
        unsigned full = set[i].bits / 8, rest = set[i].bits % 8;
        if (memcmp(set[i].addr, addr, full) != 0)
            continue;
        if (rest && ((set[i].addr[full] ^ addr[full]) & (unsigned char)(0xff00u >> rest)))
            continue;
        return true;
    }
    return false;
}

int netaddr_sockaddr(const struct netaddr *a, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    const char *host = strcmp(a->host, "localhost") == 0 ? "127.0.0.1" : a->host;
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)a->port);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)a->port);
        *len = sizeof *in6;
        return 0;
    }
    return -1;
}
