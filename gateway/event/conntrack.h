/*
 * conntrack: every client connection a worker holds, with its deadline, and
 * the process-wide count of connections per client address.
 *
 * libmicrohttpd 0.9.75 knows only an idle timeout, which a client that sends
 * one byte a second never reaches. So each connection gets an entry (struct
 * conn) at MHD_CONNECTION_NOTIFY_STARTED, freed at NOTIFY_CLOSED, with one
 * deadline at a time: the request head's (from the accept, or from the end of
 * the previous request on a kept-alive connection), then the body's (set by
 * the HTTP layer once the head is in), then none while the request is
 * answered. The worker's tick shuts down the socket of a connection past its
 * deadline (shutdown(2): MHD finds the end of file on its next read and
 * closes it itself; we never close an fd MHD owns).
 *
 * Ownership: an entry is owned by its worker, reachable from MHD's
 * socket_context; the HTTP layer borrows it for a request's life (the
 * connection outlives its requests). Worker thread only, except the address
 * table (struct peers), which every worker shares under its mutex.
 */
#ifndef GATEWAY_CONNTRACK_H
#define GATEWAY_CONNTRACK_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct worker;

/* Connections per client address, across all workers: an IPv4 client is
 * its address (/32), an IPv6 client its /64. The address is the TCP peer's
 * (counted at the accept, before any header); a peer in trusted_proxies is
 * not counted (conntrack.c says why). */
struct peers {
    pthread_mutex_t lock;
    unsigned limit;       /* 0 = no limit */
    struct peer **bucket; /* owned: chains of addresses with connections */
    size_t nbucket;
};

struct conn {
    struct conn *prev, *next;  /* in the worker's list */
    struct MHD_Connection *mc; /* borrowed: MHD's connection */
    int fd;                    /* borrowed from MHD: shut down, never closed */
    int64_t deadline;          /* monotonic ms; 0 = none */
    const char *what;          /* the deadline's key, for the log */
    unsigned char addr[16];    /* the client's address (IPv4 mapped into IPv6) */
    bool counted;              /* holds a place in struct peers */
    bool in_request;           /* the HTTP layer has the current request's head */
    bool refused;              /* answered and shut down by conntrack_bad_length */
    /* A reference, on a TLS connection only: the credentials in force when
     * it was accepted, which the certificate callback serves (mhd_glue.c).
     * Held until the connection closes, so a reload that replaces them never
     * frees a chain or key GnuTLS is using. */
    struct tls_creds *tls;
    void *tls_session; /* borrowed from MHD, TLS only: its gnutls_session_t */
    struct worker *w;  /* borrowed: the worker whose daemon accepted it */
};

/* 0, or -1 (OOM). limit: limits.max_connections_per_address. */
int peers_init(struct peers *p, unsigned limit);
void peers_free(struct peers *p);
/* Take a place for addr (16 bytes, IPv4 mapped into IPv6): false when its
 * /32 (IPv4) or /64 (IPv6) has p->limit connections already (or on OOM).
 * Any thread. */
bool peers_enter(struct peers *p, const unsigned char addr[16]);
/* Give back a place that peers_enter granted. Any thread. */
void peers_leave(struct peers *p, const unsigned char addr[16]);

/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback; cls: the worker. */
void conntrack_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);

/* The entry of MHD's connection c (NULL if it has none). */
struct conn *conntrack_of(struct MHD_Connection *c);

/* Give cn a deadline ms milliseconds from now (what: the key named in the
 * log when it is cut), or none with ms < 0. */
void conntrack_deadline(struct conn *cn, int64_t ms, const char *what);

/* The HTTP layer took the current request's head (true), or finished with
 * that request (false). */
void conntrack_in_request(struct conn *cn, bool in);

/*
 * libmicrohttpd 0.9.75 is refusing a request head of w whose Content-Length
 * it cannot parse (its log said so, from inside its run): answer that
 * connection with the gateway's own JSON 400 and shut it down, before
 * libmicrohttpd writes its HTML one (which the shut-down socket then refuses).
 */
void conntrack_bad_length(struct worker *w);

/* The tick: shut down every connection of w past its deadline. */
void conntrack_tick(struct worker *w, int64_t now);

#endif
