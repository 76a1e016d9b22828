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
