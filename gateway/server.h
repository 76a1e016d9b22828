/*
 * server: the libmicrohttpd side of a worker. It starts the worker's daemons,
 * routes each request (chat completions to relay.c, the small endpoints here),
 * sends whole responses, and writes the access log line when a request ends.
 * Worker thread only; every function that queues a response must be called
 * from inside the access handler (EVENTLOOP.md P10).
 */
#ifndef GATEWAY_SERVER_H
#define GATEWAY_SERVER_H

#include "apierr.h"
#include "buf.h"
#include "worker.h"

#include <microhttpd.h>

struct request;

/* An external-epoll daemon on the already-listening socket fd. */
struct MHD_Daemon *server_start_daemon(struct worker *w, int fd);

/* Queue a whole JSON response (body copied). */
enum MHD_Result server_reply_json(struct request *r, int status, const char *body, size_t len);
/* The same, handing body's bytes to MHD instead of copying them (body is
 * left empty). */
enum MHD_Result server_reply_buf(struct request *r, int status, struct buf *body);
/* Queue an OpenAI-shaped error response. */
enum MHD_Result server_reply_error(struct request *r, const struct apierr *e);
/* Queue the streamed (SSE) response fed from r->out. */
enum MHD_Result server_reply_stream(struct request *r);

#endif
