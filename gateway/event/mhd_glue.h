/*
 * mhd_glue: the libmicrohttpd daemons of one worker, in external-epoll mode
 * (EVENTLOOP.md §4): started on a listening socket the worker made, with the
 * access and completion callbacks of the layer above (worker_hooks), their
 * messages in our log format. Worker thread only.
 */
#ifndef GATEWAY_MHD_GLUE_H
#define GATEWAY_MHD_GLUE_H

#include "worker.h"

#include <microhttpd.h>

/* An external-epoll daemon on the already-listening socket fd; the hooks'
 * callbacks get w as their cls. NULL on failure. */
struct MHD_Daemon *mhd_glue_start(struct worker *w, int fd);

#endif
