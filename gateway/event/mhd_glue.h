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

#include "conntrack.h"
#include "worker.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>

/* An external-epoll daemon on the already-listening socket fd, speaking TLS
 * when tls is true; the hooks' callbacks get w as their cls. NULL on
 * failure. */
struct MHD_Daemon *mhd_glue_start(struct worker *w, int fd, bool tls);

/* A libmicrohttpd message (what an MHD_OPTION_EXTERNAL_LOGGER gets) as one
 * debug line of ours after who, its newline dropped; any thread. */
__attribute__((format(printf, 2, 0))) void mhd_glue_log(const char *who, const char *fmt,
                                                        va_list ap);

/*
 * A TLS connection was accepted (conntrack, at NOTIFY_STARTED): its GnuTLS
 * session reads and writes its socket through functions of ours, which
 * count for the loop (struct worker's tls_stalls and tls_moves) whether a
 * libmicrohttpd run moved any bytes. libmicrohttpd 0.9.75 keeps a
 * connection whose handshake waits for the client on its list of ready
 * ones (only its own reads after the handshake mark a socket drained), so
 * it asks to be run again at once, and the loop would spin until the
 * client's next flight or the head deadline; worker.c's run_mhd() stops
 * taking that at its word when a run only found handshakes waiting.
 */
void mhd_glue_tls_transport(struct conn *cn, void *session);

#endif
