/*
 * sharedcfg: the "shared" section of gateway.json, the Redis (or Valkey)
 * server that several gateway replicas keep their limits in:
 *
 *     "shared": {"redis": "redis://10.0.0.5:6379/0", "prefix": "ogw:",
 *                "password_file": "redis.pass", "timeout_ms": 100}
 *
 * "redis" is redis://[user[:password]@]host[:port][/db] (port 6379 and db 0
 * by default; user and password percent-decoded) or unix:/path/to/socket.
 * A host name is resolved here, when the file is loaded (start, `check`,
 * SIGHUP), on the main thread, so that no worker ever waits for DNS, and
 * again by the discovery thread while the gateway runs (pool/shared_dns.h):
 * a name that does not resolve leaves `addr` empty and the gateway on its
 * local limits until it does.
 *
 * Pure parsing (sharedcfg_parse_url) plus the table the configuration walker
 * uses; everything is allocated in the snapshot's arena and lives as long
 * as the struct cfg that holds it. Main thread (loads) or any (parsing).
 */
#ifndef GATEWAY_SHAREDCFG_H
#define GATEWAY_SHAREDCFG_H

#include "walker.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

/* Ceilings on what the section may hold. */
#define SHARED_PREFIX_MAX 64
#define SHARED_SECRET_MAX 512

struct cfg_shared {
    bool enabled;                /* "shared" with a usable "redis" is present */
    const char *unix_path;       /* absolute, for unix:; NULL for TCP */
    const char *host;            /* TCP: the host as written (no brackets) */
    char addr[INET6_ADDRSTRLEN]; /* TCP: host resolved to a numeric address; "" = unresolved */
    unsigned port;               /* TCP: 1..65535, default 6379 */
    unsigned db;                 /* 0..1000000, default 0: SELECTed after connecting */
    const char *user;            /* NULL = none (AUTH with the password alone) */
    const char *password;        /* NULL = none; from the URL or password_file */
    const char *password_file;   /* absolute; NULL = none */
    const char *prefix;          /* of every key written, default "ogw:" */
    unsigned timeout_ms;         /* 1..10000, default 100: an answer later than this = away */
    unsigned lease_s;  /* 1..3600, default 30: a place in flight not renewed is free after it */
    const char *redis; /* the address for messages, without any password */
};

/* Where a parsed URL's parts point: into buf, which the caller provides
 * (strlen(url) + 1 bytes). */
struct shared_url {
    bool unix_socket;
    const char *path; /* unix: as written after "unix:" */
    const char *host; /* TCP */
    unsigned port, db;
    const char *user, *password; /* NULL = absent; percent-decoded (a user without a
                                    password takes it from password_file) */
};

/* Parse url into *u, its strings in buf. 0, or -1 with why[] saying what is
 * wrong (never quoting the password). */
int sharedcfg_parse_url(const char *url, char *buf, struct shared_url *u, char *why, size_t whysz);

/* host's first address, numeric, into out; false when it does not resolve.
 * Blocks on DNS: the main thread (loads) and the discovery thread
 * (shared_dns.h), never a worker. */
bool sharedcfg_resolve(const char *host, unsigned port, char *out, size_t size);

/* Do a and b name the same server, credentials and key space? (A worker
 * keeps its connection across a reload that changes neither.) */
bool sharedcfg_same(const struct cfg_shared *a, const struct cfg_shared *b);

/* The walker's setter for "shared", and its table (for "it belongs in"). */
void sharedcfg_key(struct walk *w, const cJSON *v, const char *path, void *base,
                   const struct walk_key *k);
extern const struct walk_table sharedcfg_table;

#endif
