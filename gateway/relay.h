/*
 * relay: one chat completion relayed to one backend. It builds the native
 * request, runs the curl transfer, turns the NDJSON answer into SSE frames (or
 * one chat.completion body) in r->out, and enforces the first-token and idle
 * timeouts, keep-alives, back-pressure and cancellation. Worker thread only.
 *
 * Entry points by caller:
 *  - access handler (inside MHD_run): relay_start, relay_resumed;
 *  - content reader (inside MHD_run): relay_read;
 *  - completion callback: relay_completed, then request_free → relay_release;
 *  - the loop, between curl and MHD: relay_upstream_done, relay_tick,
 *    relay_client_gone, relay_run_deferred, relay_shutdown, relay_granted.
 */
#ifndef GATEWAY_RELAY_H
#define GATEWAY_RELAY_H

#include <curl/curl.h>
#include <microhttpd.h>
#include <stdint.h>
#include <sys/types.h>

struct request;

enum MHD_Result relay_start(struct request *r);
enum MHD_Result relay_resumed(struct request *r);
ssize_t relay_read(struct request *r, char *dst, size_t max);
void relay_upstream_done(struct request *r, CURLcode result);
void relay_tick(struct request *r, int64_t now);
void relay_client_gone(struct request *r);
void relay_run_deferred(struct request *r);
void relay_shutdown(struct request *r);
/* A request queued for a backend slot got one (worker, from its inbox). */
void relay_granted(struct request *r);
void relay_completed(struct request *r, enum MHD_RequestTerminationCode toe);
void relay_release(struct request *r);

#endif
