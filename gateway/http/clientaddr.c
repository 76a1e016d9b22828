#include "clientaddr.h"

#include "netaddr.h"

#include <string.h>
#include <strings.h>

static bool trusted_addr(const struct cfg_cidrs *t, const unsigned char a[16])
{
    return t->n && netaddr_cidr_match(t->v, t->n, a);
}

static bool blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

void clientaddr_walk(const unsigned char peer[16], const char *const *xff, size_t n,
                     const struct cfg_cidrs *trusted, unsigned char out[16])
{
    unsigned char a[16];
    memmove(out, peer, 16);
    if (!trusted_addr(trusted, out))
        return;
    for (size_t h = n; h-- > 0;) {
        const char *v = xff[h];
        size_t end = strlen(v);
        for (;;) {
            /* the element v[start..end), right to left */
            size_t start = end;
            while (start > 0 && v[start - 1] != ',')
                start--;
            size_t b = start, e = end;
            while (b < e && blank(v[b]))
                b++;
            while (e > b && blank(v[e - 1]))
                e--;
            /* empty elements ("a, , b") are skipped, as HTTP's list syntax allows */
            if (b < e) {
                if (!netaddr_ip_parse(v + b, e - b, a))
                    return;
                memcpy(out, a, 16);
                if (!trusted_addr(trusted, a))
                    return;
            }
            if (start == 0)
                break;
            end = start - 1;
        }
    }
}

struct xff_values {
    const char *v[CLIENTADDR_MAX_HEADERS];
    size_t n;
};

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    struct xff_values *x = cls;
    if (strcasecmp(key, "X-Forwarded-For") != 0 || !value)
        return MHD_YES;
    if (x->n == CLIENTADDR_MAX_HEADERS) {
        /* keep the right-most: the walk starts there */
        memmove(x->v, x->v + 1, (CLIENTADDR_MAX_HEADERS - 1) * sizeof x->v[0]);
        x->n--;
    }
    x->v[x->n++] = value;
    return MHD_YES;
}

static bool peer_of(struct MHD_Connection *conn, unsigned char out[16])
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return netaddr_ip_of(ci ? ci->client_addr : NULL, out);
}

bool clientaddr_of(struct MHD_Connection *conn, const struct cfg *cfg, unsigned char out[16])
{
    if (!peer_of(conn, out))
        return false;
    if (trusted_addr(&cfg->trusted_proxies, out)) {
        struct xff_values x = {.n = 0};
        MHD_get_connection_values(conn, MHD_HEADER_KIND, collect, &x);
        clientaddr_walk(out, x.v, x.n, &cfg->trusted_proxies, out);
    }
    return true;
}
