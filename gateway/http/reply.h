/*
 * reply: the responses a request can queue, with the headers every answer
 * carries (x-request-id, the key's x-ratelimit-*, the CORS headers for an
 * allowed origin (cors.h), Retry-After on an error that has one,
 * Connection: close while draining). Errors are rendered in the
 * shape of the request's route (routes.h). Exactly one response is queued
 * per request; every function here must be called from inside MHD's access
 * handler (EVENTLOOP.md P10). Worker thread only.
 */
#ifndef GATEWAY_REPLY_H
#define GATEWAY_REPLY_H

#include "apierr.h"
#include "buf.h"

#include <microhttpd.h>
#include <stddef.h>

struct request;
struct route;

/* Make the out-of-memory answers that are queued when a request's own answer
 * cannot be built (README "Out of memory"): at startup, before any worker
 * runs. -1: memory ran out already. reply_cleanup frees them at exit. */
int reply_init(void);
void reply_cleanup(void);
/* Queue the out-of-memory answer on a connection that has no request object
 * (it could not be allocated); rt is the route the URL matched. */
enum MHD_Result reply_oom_conn(struct MHD_Connection *conn, const struct route *rt);

/* Queue a whole JSON response (body copied). */
enum MHD_Result reply_json(struct request *r, int status, const char *body, size_t len);
/* The same, handing body's bytes to MHD instead of copying them (body is
 * left empty). */
enum MHD_Result reply_buf(struct request *r, int status, struct buf *body);
/* The same with another Content-Type. */
enum MHD_Result reply_typed(struct request *r, int status, const char *content_type,
                            struct buf *body);
/* Queue resp (taken over; NULL = memory ran out: the out-of-memory answer
 * is queued instead) with the headers every answer carries; content_type
 * NULL for an answer without a body. */
enum MHD_Result reply_response(struct request *r, int status, const char *content_type,
                               struct MHD_Response *resp);
/* Queue an error response in the route's shape. */
enum MHD_Result reply_error(struct request *r, const struct apierr *e);
/* Queue the streamed response fed from r->out (engine_read). */
enum MHD_Result reply_stream(struct request *r);

#endif
