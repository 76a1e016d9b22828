/*
 * routes: the one table of what the gateway answers (Taler's handler table,
 * nginx's location list). Each route is a method set and a path (exact, or a
 * prefix), what it needs (a key, an admin key), how its errors are shaped,
 * and either a dialect that the relay engine runs or a local handler.
 *
 * routes_match() runs on a request's first callback, before auth, so that
 * even a 401 comes in the shape of the route's API. Immutable; any thread.
 */
#ifndef GATEWAY_ROUTES_H
#define GATEWAY_ROUTES_H

#include "dialect.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

struct request;

/* Route flags. */
enum {
    ROUTE_PUBLIC = 1 << 0,    /* no key needed (health checks) */
    ROUTE_ADMIN = 1 << 1,     /* only keys created with --admin */
    ROUTE_GENERATES = 1 << 2, /* runs a model: in-flight limit, tokens charged */
    ROUTE_NATIVE = 1 << 3,    /* Ollama's native API: off when cfg native_api is false */
    ROUTE_PREFIX = 1 << 4,    /* path is a prefix: "/v1/models/" matches "/v1/models/x" */
    ROUTE_UPLOAD = 1 << 5,    /* a POST body streams to the backend as it arrives (blobs) */
};

/* Method sets. */
enum {
    METHOD_GET = 1 << 0, /* HEAD too */
    METHOD_POST = 1 << 1,
    METHOD_DELETE = 1 << 2,
    METHOD_HEAD = 1 << 3, /* HEAD only */
    METHOD_ANY = 1 << 4,  /* every method, those above and any other */
};

struct route {
    unsigned methods;
    const char *path;
    unsigned flags;
    const struct errshape *errors;
    const struct dialect *dialect; /* relayed by the engine, or NULL: */
    enum MHD_Result (*handler)(struct request *r);
};

/* The route for path. Never NULL: an unknown path gets a "not found" route
 * in the shape of the API its path belongs to. */
const struct route *routes_match(const char *path);

/* The route that answers rt's path to a client of Anthropic's API (one
 * that sends an anthropic-version header): GET /v1/models and
 * /v1/models/{id} in Anthropic's shapes; any other route is rt itself. */
const struct route *routes_anthropic(const struct route *rt);

/* Is method one of rt's methods? */
bool routes_allows(const struct route *rt, const char *method);

/*
 * Routes as metrics count them: a dense index 0..routes_metric_count()-1,
 * one per path of the table (Anthropic's /v1/models shares OpenAI's), and
 * one more, labelled "other", for every path no route has.
 */
size_t routes_metric_count(void);
size_t routes_metric_index(const struct route *rt);
/* The route label of index i: the route's path ("/v1/chat/completions", a
 * prefix route's with its trailing '/': "/v1/models/"), or "other". */
const char *routes_metric_label(size_t i);

/* "GET", "POST", "GET, POST" ...: the Allow list of a route, for a 405. */
const char *routes_allowed(const struct route *rt);

#endif
