/*
 * config: gateway.json, loaded into an immutable, reference-counted snapshot.
 *
 * The file is JSON with // line and slash-star block comments (DESIGN.md,
 * "Configuration").
 * cfg_load() reads it, checks every key (types, bounds, unknown keys, cross
 * references) and either returns a snapshot or reports *every* problem as
 *
 *     FILE:LINE: json.path: what is wrong, and how to fix it
 *
 * and returns NULL. `ollama-gateway check` and `serve` (and SIGHUP reloads)
 * all go through cfg_load(), so what check accepts, serve accepts (STYLE C3).
 * The text is read by jsonfile.h, the tables are walked by walker.h and
 * addresses are judged by netaddr.h; what is here (and in config.c) is the
 * schema: which keys there are, what they mean, and how they go together.
 *
 * Ownership and threads: a struct cfg is never modified after cfg_load()
 * returns it. The caller gets one reference; cfg_ref()/cfg_unref() are atomic,
 * so any thread may take or drop a reference, and the last cfg_unref() frees
 * the snapshot with every string, array and cJSON object it points to. Every
 * pointer inside a cfg is owned by the cfg and lives as long as it does.
 * A reloading daemon holds the configuration in force in a struct snapshot
 * (snapshot.h), which requests keep to their end.
 *
 * Relative paths in the file are resolved against the folder that holds it;
 * every path in a cfg is absolute.
 */
#ifndef GATEWAY_CONFIG_H
#define GATEWAY_CONFIG_H

#include "buf.h"
#include "netaddr.h"
#include "sharedcfg.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct tls_creds; /* tlscreds.h */

#define CFG_DEFAULT_PATH "/etc/ollama-gateway/gateway.json"
/* Largest configuration file accepted. */
#define CFG_MAX_FILE_BYTES (4u << 20)
/* At most this many "listen" addresses and "backends". */
#define CFG_MAX_LISTEN 64
#define CFG_MAX_BACKENDS 1024

struct cfg_backend {
    const char *name;           /* unique, [A-Za-z0-9_.-]+; default "backend<N>" (N = its index) */
    const char *url;            /* "http[s]://host[:port]", no trailing '/' */
    unsigned max_inflight;      /* 0..100000; 0 = no limit of ours (default): Ollama queues */
    unsigned max_queue;         /* 0..100000, default 100: requests waiting for a slot */
    unsigned weight;            /* 1..1000, default 1 */
    const char *const *headers; /* NULL-terminated "Name: value" lines for curl_slist_append;
                                   an empty value is written "Name;" (curl's way to send it) */
    size_t nheaders;
};

struct cfg_alias {
    const char *name; /* the client-facing name, or a glob (has * ? or [) */
    bool glob;
    const char *model;             /* the Ollama model to ask for: models[0] */
    const char *const *models;     /* NULL-terminated: its names on different backends */
    size_t nmodels;                /* >= 1 */
    const cJSON *options;          /* an object of Ollama option defaults, or NULL; read-only */
    const char *const *backends;   /* NULL-terminated backend names, or NULL = any backend */
    const unsigned *backend_index; /* the same, as indexes into cfg->backends */
    size_t nbackends;
    unsigned order; /* position in the file, 0-based */
};

/* A list of CIDR blocks (netaddr.h), in file order. */
struct cfg_cidrs {
    const struct netaddr_cidr *v; /* n of them; NULL when n is 0 */
    size_t n;
};
/* At most this many blocks in one list. */
#define CFG_MAX_CIDRS 1024

struct cfg_limits {
    size_t max_body_bytes;                /* 1024..1073741824, default 16777216 */
    unsigned max_connections;             /* 1..1000000, default 10000 */
    unsigned max_connections_per_address; /* 0..1000000, default 256; 0 = no limit */
    unsigned header_timeout_s; /* 1..3600, default 10: a request head must be complete by then */
    unsigned body_timeout_s;   /* 1..86400, default 60: a kept body must be complete by then */
    unsigned idle_timeout_s;   /* 1..86400, default 30: libmicrohttpd's idle timeout */
    unsigned first_token_timeout_s;    /* 1..86400, default 300 */
    unsigned idle_stream_timeout_s;    /* 1..86400, default 120 */
    unsigned queue_timeout_s;          /* 1..3600, default 30 */
    unsigned keepalive_interval_s;     /* 1..3600, default 5: ": keep-alive" while waiting */
    unsigned auth_failures_per_minute; /* 0..1000000, default 10; 0 = no brute-force guard */
    unsigned shutdown_grace_s;         /* 0..86400, default 30: SIGTERM lets streams finish */
    size_t max_buffered_bytes; /* 0 or max_body_bytes..2^40, default 1 GiB: the memory budget
                                  (core/membudget.h); 0 = none */
    struct cfg_cidrs auth_guard_exempt; /* never blocked by the brute-force guard; default
                                           127.0.0.0/8 and ::1; [] = no exemption */
};

enum cfg_auth { CFG_AUTH_KEYS = 0, CFG_AUTH_NONE = 1 };

struct cfg {
    atomic_uint refs;
    const char *path; /* the file as named to cfg_load() (or the name given to
                         cfg_load_buffer()); use it in messages */
    const char *dir;  /* absolute folder that relative paths were resolved against */

    /* Every API listener, default one, 127.0.0.1:8080: "listen", then "tls.listen";
     * each one's .tls says whether it speaks TLS. */
    const struct netaddr *listen;
    size_t nlisten;
    struct {
        const char *cert; /* absolute; both NULL when there is no "tls" */
        const char *key;
        const char *priorities; /* GnuTLS's; default TLS_DEFAULT_PRIORITIES (tlscreds.h) */
        /* "tls.listen" as written; its addresses are also in listen[] above,
         * with .tls set. Empty: every listen address speaks TLS. */
        const struct netaddr *listen;
        size_t nlisten;
        /* A reference: the chain and key, read and judged by cfg_load()
         * (never by cfg_load_buffer(), which reads no file); NULL without
         * "tls". */
        struct tls_creds *creds;
    } tls;
    unsigned workers;                  /* 0..256; 0 = one per CPU (default) */
    const char *keys_file;             /* absolute; default <dir>/keys.json */
    enum cfg_auth auth;                /* default CFG_AUTH_KEYS */
    bool allow_unauthenticated_public; /* default false */
    struct cfg_cidrs trusted_proxies;  /* peers whose X-Forwarded-For is believed; default none */

    const struct cfg_backend *backends; /* at least one */
    size_t nbackends;
    const struct cfg_alias *aliases; /* in file order */
    size_t naliases;

    unsigned discovery_interval_s; /* 1..3600, default 5 */
    bool expose_backend_models;    /* default true */
    bool native_api;               /* default true: Ollama's native API (/api/..., GET /)
                                      through the gateway, behind the same keys; false
                                      answers those routes 404 */
    struct cfg_limits limits;
    struct {
        const char *const *origins; /* NULL-terminated; "*" allowed; NULL = no CORS */
        size_t norigins;
    } cors;
    struct {
        int level;          /* LOG_LEVEL_* (log.h); default LOG_LEVEL_INFO */
        const char *access; /* "-" = stdout (default), an absolute path, or NULL = off */
    } log;
    struct {
        bool enabled; /* true when "metrics" is present */
        struct netaddr listen;
    } metrics;
    struct cfg_shared shared; /* limits kept in Redis for many replicas (sharedcfg.h) */

    /* Private to config.c and router.c. */
    struct arena *arena;
    cJSON *json;                    /* the parsed file; alias options and listen
                                       texts point into it */
    const struct cfg_alias **exact; /* non-glob aliases sorted by name (strcmp) */
    size_t nexact;
    const struct cfg_alias **globs; /* glob aliases, in file order */
    size_t nglobs;
    const char *const *notices; /* see cfg_features_not_in_force() */
    size_t nnotices;
};

/*
 * Problems found by a load, one "FILE:LINE: message\n" line each, sorted by
 * line. At most CFG_MAX_ERRORS lines are kept; count says how many were found
 * (a final line says how many were left out).
 */
#define CFG_MAX_ERRORS 100
struct cfg_errors {
    struct buf text; /* owned */
    unsigned count;
};

void cfg_errors_init(struct cfg_errors *e);
void cfg_errors_free(struct cfg_errors *e);
/* log_error() each line. */
void cfg_errors_log(const struct cfg_errors *e);
/* One problem found outside any parse (opening or reading a file), a whole
 * message such as "PATH: cannot open: ...": added to e, or log_error()'d
 * when e is NULL. */
void cfg_errors_add(struct cfg_errors *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Load and check the file at path. Returns a snapshot holding one reference,
 * or NULL when the file has any problem (or memory ran out). The problems go
 * to errs when it is not NULL, else to log_error(), one call per problem.
 * Messages name the file as `path` was written.
 */
struct cfg *cfg_load(const char *path, struct cfg_errors *errs);

/*
 * The same from memory: text[0..len) (need not be '\0'-terminated), named
 * `name` in messages, relative paths resolved against base_dir (NULL = the
 * current directory). Never reads a file.
 */
struct cfg *cfg_load_buffer(const char *text, size_t len, const char *name, const char *base_dir,
                            struct cfg_errors *errs);

/* Take another reference (returns c). c may be NULL. */
struct cfg *cfg_ref(struct cfg *c);
/* Drop a reference; the last one frees. c may be NULL. */
void cfg_unref(struct cfg *c);

/*
 * One warning per configured key whose feature is not built yet (so an
 * operator is never misled into thinking, say, TLS or API keys protect the
 * port), each "FILE:LINE: key: ... is not in force yet: ...". fn NULL =
 * log_warn() each. Call it once after a successful load, in serve and check.
 */
typedef void (*cfg_notice_fn)(void *ud, const char *msg);
void cfg_features_not_in_force(const struct cfg *c, cfg_notice_fn fn, void *ud);

/*
 * The configuration half of `ollama-gateway check -c path`: load, print every
 * problem (then the not-in-force warnings) to stderr. Returns the snapshot
 * (one reference), or NULL when there were problems.
 */
struct cfg *cfg_check(const char *path);

#endif
