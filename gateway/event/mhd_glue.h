/*
 * mhd_glue: the libmicrohttpd daemons of one worker, in external-epoll mode
 * (EVENTLOOP.md §4): started on a listening socket the worker made, with the
 * access and completion callbacks of the layer above (worker_hooks), their
 * messages in our log format. Worker thread only.
 *
 * A TLS daemon (GnuTLS, through libmicrohttpd) has no certificate of its
 * own: a certificate callback hands GnuTLS, per connection, the credentials
 * conntrack pinned to that connection when it was accepted (the ones of the
 * snapshot in force then), so a reload's new certificate serves every
 * connection accepted after it, and connections already open keep theirs.
 */
#ifndef GATEWAY_MHD_GLUE_H
#define GATEWAY_MHD_GLUE_H

#include "worker.h"

#include <microhttpd.h>
#include <stdbool.h>

/* An external-epoll daemon on the already-listening socket fd, speaking TLS
 * when tls is true; the hooks' callbacks get w as their cls. NULL on
 * failure. */
struct MHD_Daemon *mhd_glue_start(struct worker *w, int fd, bool tls);

#endif
