/*
 * clientaddr: who the client is, when a proxy stands between it and us
 * (DESIGN.md "Client addresses, proxies and the brute-force guard").
 *
 * The client address is the TCP peer, unless the peer is in trusted_proxies:
 * then X-Forwarded-For is walked from its right end (every such header, in
 * the order received, as one comma list), as nginx's real_ip_recursive does:
 * each address that is itself a trusted proxy is passed over, and the first
 * one that is not is the client. When every address is trusted, the
 * left-most is. An entry that is not an address (a name, "unknown", an
 * obfuscated id) ends the walk: the client is then the last address the
 * walk accepted, the hop that handed us the entry (README "Client
 * addresses and proxies" says why). A peer that is not trusted can write
 * what it likes in the header: nothing of it is read.
 *
 * The address is what the brute-force guard counts and exempts, and the
 * access log's "client". Forwarded (RFC 7239) is not read: choosing between
 * two headers by which one is present would let a client forge the one its
 * proxy does not set.
 *
 * clientaddr_walk() is a pure function; clientaddr_of() reads a connection
 * (worker thread, inside an MHD callback).
 */
#ifndef GATEWAY_CLIENTADDR_H
#define GATEWAY_CLIENTADDR_H

#include "config.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

/* At most this many X-Forwarded-For headers are read: the right-most ones
 * (a longer chain than that is not a deployment, it is an attack). */
#define CLIENTADDR_MAX_HEADERS 16

/*
 * The client behind peer (16-byte form, netaddr.h) given the values of its
 * X-Forwarded-For headers xff[0..n) in the order received, into out (which
 * may be peer).
 */
void clientaddr_walk(const unsigned char peer[16], const char *const *xff, size_t n,
                     const struct cfg_cidrs *trusted, unsigned char out[16]);

/*
 * The client of a request on conn under cfg's trusted_proxies, into out
 * (16-byte form; netaddr_ip_text makes its text, only where a line needs it:
 * that costs more than the rest of this). false when the connection has no
 * IP peer.
 */
bool clientaddr_of(struct MHD_Connection *conn, const struct cfg *cfg, unsigned char out[16]);

#endif
