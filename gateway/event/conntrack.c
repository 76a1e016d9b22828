#include "conntrack.h"

#include "apierr.h"
#include "buf.h"
#include "clock.h"
#include "log.h"
#include "mhd_glue.h"
#include "netaddr.h"
#include "rand.h"
#include "snapshot.h"
#include "tlscreds.h"
#include "worker.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>

#define PEER_BUCKETS 4096

struct peer {
    struct peer *next;
    unsigned char addr[16]; /* the key: peer_key's /32 or /64 */
    unsigned n;
};

int peers_init(struct peers *p, unsigned limit)
{
    memset(p, 0, sizeof *p);
    p->limit = limit;
    p->nbucket = PEER_BUCKETS;
    p->bucket = calloc(p->nbucket, sizeof *p->bucket);
    if (!p->bucket)
        return -1;
    pthread_mutex_init(&p->lock, NULL);
    return 0;
}

void peers_free(struct peers *p)
{
    if (!p->bucket)
        return;
    for (size_t i = 0; i < p->nbucket; i++) {
        for (struct peer *e = p->bucket[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(p->bucket);
    p->bucket = NULL;
    pthread_mutex_destroy(&p->lock);
}

/*
 * The part of an address that counts as one client: an IPv4 address whole
 * (a /32), an IPv6 address by its /64. An IPv6 client is normally given a
 * whole /64 (SLAAC, privacy addresses, a host's own prefix), so counting per
 * /128 would let one client open 2^64 times the limit.
 */
static void peer_key(const unsigned char addr[16], unsigned char key[16])
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memcpy(key, addr, 16);
    if (memcmp(addr, v4mapped, sizeof v4mapped) != 0)
        memset(key + 8, 0, 8);
}

static size_t bucket_of(const struct peers *p, const unsigned char key[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % p->nbucket;
}

bool peers_enter(struct peers *p, const unsigned char addr[16])
{
    bool ok = true;
    unsigned char key[16];
    peer_key(addr, key);
    pthread_mutex_lock(&p->lock);
    struct peer **slot = &p->bucket[bucket_of(p, key)], *e;
    for (e = *slot; e && memcmp(e->addr, key, 16) != 0; e = e->next)
        ;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            ok = false; /* OOM: refuse this one connection */
            goto out;
        }
        memcpy(e->addr, key, 16);
        e->next = *slot;
        *slot = e;
    }
    if (p->limit && e->n >= p->limit)
        ok = false; /* e->n >= 1 here, so e is not an empty leftover */
    else
        e->n++;
out:
    pthread_mutex_unlock(&p->lock);
    return ok;
}

void peers_leave(struct peers *p, const unsigned char addr[16])
{
    unsigned char key[16];
    peer_key(addr, key);
    pthread_mutex_lock(&p->lock);
    for (struct peer **pp = &p->bucket[bucket_of(p, key)]; *pp; pp = &(*pp)->next) {
        struct peer *e = *pp;
        if (memcmp(e->addr, key, 16) != 0)
            continue;
        if (--e->n == 0) {
            *pp = e->next;
            free(e);
        }
        break;
    }
    pthread_mutex_unlock(&p->lock);
}

static void address_of(struct MHD_Connection *c, unsigned char out[16])
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    netaddr_ip_of(ci ? ci->client_addr : NULL, out);
}

/* A trusted proxy (trusted_proxies) carries many clients over its
 * connections, and which ones is only known from each request's head:
 * counting it as one client would let a busy proxy lock out everyone
 * behind it, so it is not held to limits.max_connections_per_address
 * (limits.max_connections still bounds it). */
static bool trusted_proxy(struct worker *w, const unsigned char addr[16])
{
    const struct snapshot *s = worker_snapshot(w);
    const struct cfg_cidrs *t = s ? &s->cfg->trusted_proxies : &w->gw->cfg->trusted_proxies;
    return t->n && netaddr_cidr_match(t->v, t->n, addr);
}

/* The credentials a TLS connection accepted now gets: the snapshot's; the
 * start-up configuration's when a reload dropped "tls" (the listeners stay
 * TLS until a restart). */
static struct tls_creds *tls_in_force(struct worker *w)
{
    const struct snapshot *s = worker_snapshot(w);
    if (s && s->cfg->tls.creds)
        return s->cfg->tls.creds;
    return w->gw->cfg->tls.creds;
}

static void conn_cut(struct worker *w, struct conn *cn, const char *what)
{
    char text[INET6_ADDRSTRLEN];
    netaddr_ip_text(cn->addr, text);
    /* debug: under a flood this is one line per connection the attacker opens */
    log_debug("client %s: %s: connection closed", text, what);
    /* MHD reads the end of file on its next run and closes the socket. */
    shutdown(cn->fd, SHUT_RDWR);
    cn->deadline = 0;
    worker_mhd_due(w);
}

void conntrack_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    struct worker *w = cls;
    struct conn *cn = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        /* A daemon at its connection limit took its listening socket out of
         * its epoll set, and puts it back only at the start of a run; with
         * no connection left it has no timeout, so without this run it would
         * never accept again. */
        worker_mhd_due(w);
        if (!cn)
            return;
        if (cn->counted && w->gw->peers)
            peers_leave(w->gw->peers, cn->addr);
        tls_creds_unref(cn->tls);
        if (cn->prev)
            cn->prev->next = cn->next;
        else
            w->conns = cn->next;
        if (cn->next)
            cn->next->prev = cn->prev;
        free(cn);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    cn = calloc(1, sizeof *cn);
    if (!cn) {
        /* No entry, no deadline: such a connection cannot be let in. */
        if (ci)
            shutdown(ci->connect_fd, SHUT_RDWR);
        return;
    }
    cn->fd = ci ? ci->connect_fd : -1;
    cn->mc = c;
    address_of(c, cn->addr);
    cn->w = w;
    const union MHD_ConnectionInfo *ti =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ti && ti->tls_session) {
        cn->tls = tls_creds_ref(tls_in_force(w));
        mhd_glue_tls_transport(cn, ti->tls_session);
    }
    cn->next = w->conns;
    if (w->conns)
        w->conns->prev = cn;
    w->conns = cn;
    *socket_context = cn;
    struct peers *p = w->gw->peers;
    if (p && p->limit && !trusted_proxy(w, cn->addr)) {
        cn->counted = peers_enter(p, cn->addr);
        if (!cn->counted) {
            conn_cut(w, cn, "over limits.max_connections_per_address");
            return;
        }
    }
    conntrack_deadline(cn, (int64_t)w->gw->cfg->limits.header_timeout_s * 1000,
                       "request head not complete within limits.header_timeout_s");
}

struct conn *conntrack_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void conntrack_deadline(struct conn *cn, int64_t ms, const char *what)
{
    if (!cn)
        return;
    cn->deadline = ms < 0 ? 0 : now_ms() + ms;
    cn->what = what;
}

void conntrack_in_request(struct conn *cn, bool in)
{
    if (cn)
        cn->in_request = in;
}

/* The connection whose head libmicrohttpd is parsing right now: its head is
 * complete (MHD gives a header size only from then on), no response is
 * queued yet (MHD's own refusals of other heads have one), and the HTTP
 * layer has not seen it. Heads are parsed one at a time on a worker, and the
 * first access-handler call follows a good one within the same MHD call, so
 * at most one connection fits. */
static struct conn *parsing_head(struct worker *w)
{
    for (struct conn *cn = w->conns; cn; cn = cn->next) {
        /* Bytes written on a TLS connection's socket would break its
         * record stream: there, libmicrohttpd's own answer goes out. */
        if (cn->in_request || cn->refused || cn->fd < 0 || !cn->mc || cn->tls)
            continue;
        if (!MHD_get_connection_info(cn->mc, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE))
            continue;
        if (MHD_get_connection_info(cn->mc, MHD_CONNECTION_INFO_HTTP_STATUS))
            continue;
        return cn;
    }
    return NULL;
}

void conntrack_bad_length(struct worker *w)
{
    struct conn *cn = parsing_head(w);
    if (!cn)
        return; /* not found: libmicrohttpd's own answer goes out */
    struct apierr e;
    apierr_set(&e, 400, APIERR_INVALID, "invalid_request", NULL,
               "The request's framing is ambiguous: Content-Length is not a decimal number "
               "of at most 18 digits");
    struct buf body;
    buf_init(&body, 4096);
    char id[32];
    rand_id(id, sizeof id, "req_");
    char head[256];
    int n = -1;
    if (apierr_json(&e, &body) == 0)
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nx-request-id: %s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     id, body.len);
    /* Written on MHD's socket while MHD is inside its parse and has sent
     * nothing for this request; a few hundred bytes fit any socket's send
     * buffer, so one non-blocking send each is enough (a short write only
     * truncates an answer to a client that sent garbage). */
    if (n > 0 && (size_t)n < sizeof head &&
        send(cn->fd, head, (size_t)n, MSG_NOSIGNAL | MSG_MORE) == n)
        (void)send(cn->fd, body.p, body.len, MSG_NOSIGNAL);
    buf_free(&body);
    cn->refused = true;
    char text[INET6_ADDRSTRLEN];
    netaddr_ip_text(cn->addr, text);
    /* debug: under a flood this is one line per request the attacker sends */
    log_debug("client %s: malformed Content-Length: 400, connection closed (%s)", text, id);
    /* Nothing after the head is read as a request: MHD's own answer then
     * fails on the shut-down socket, and MHD closes it. */
    shutdown(cn->fd, SHUT_RDWR);
    cn->deadline = 0;
    worker_mhd_due(w);
}

void conntrack_tick(struct worker *w, int64_t now)
{
    for (struct conn *cn = w->conns; cn; cn = cn->next) {
        if (cn->deadline && now >= cn->deadline && cn->fd >= 0)
            conn_cut(w, cn, cn->what);
    }
}
