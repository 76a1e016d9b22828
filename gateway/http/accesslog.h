/*
 * accesslog: the one JSON line per request that DESIGN.md "Observability"
 * lists, written when the request completes. Never a secret, never prompt or
 * answer text. Worker thread (from the completion callback).
 */
#ifndef GATEWAY_ACCESSLOG_H
#define GATEWAY_ACCESSLOG_H

#include <microhttpd.h>

struct request;

void accesslog_write(const struct request *r, enum MHD_RequestTerminationCode toe);

#endif
