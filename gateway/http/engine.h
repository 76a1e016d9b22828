/*
 * engine: the relay engine. It owns a relayed request's life from routing to
 * the last byte: it asks the route's dialect (dialect.h) to translate the
 * client's body, chooses a backend (or queues for one), runs the curl
 * transfer, feeds the native answer to the dialect line by line (or whole),
 * and enforces the first-token and idle timeouts, keep-alives,
 * back-pressure, failover before the first answer line, and cancellation
 * when the client leaves. It knows no dialect by name. Worker thread only.
 *
 * Entry points by caller:
 *  - access handler (inside MHD_run): engine_start, engine_resumed, engine_upload;
 *  - content reader (inside MHD_run): engine_read;
 *  - completion callback: engine_completed, then request_free → engine_release;
 *  - the loop (between curl and MHD), through the request's embedded loop
 *    structures: engine_upstream_done, engine_tick, engine_run_task,
 *    engine_shutdown, and engine_granted for a slot another worker handed over.
 */
#ifndef GATEWAY_ENGINE_H
#define GATEWAY_ENGINE_H

#include "curl_glue.h"
#include "worker.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <stdint.h>
#include <sys/types.h>

struct request;

enum MHD_Result engine_start(struct request *r);
enum MHD_Result engine_resumed(struct request *r);
/* A piece of a streamed upload (ROUTE_UPLOAD), or its end (*size 0): what
 * fits in the window is taken (*size says what is left for later). */
enum MHD_Result engine_upload(struct request *r, const char *data, size_t *size);
ssize_t engine_read(struct request *r, char *dst, size_t max);
void engine_upstream_done(struct curl_xfer *x, CURLcode result);
void engine_tick(struct worker_entry *e, int64_t now);
void engine_run_task(struct worker_task *t);
void engine_shutdown(struct worker_entry *e);
/* A request queued for a backend slot got one (worker, from its inbox). */
void engine_granted(struct request *r);
void engine_completed(struct request *r, enum MHD_RequestTerminationCode toe);
void engine_release(struct request *r);

#endif
