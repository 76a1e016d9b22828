/*
 * authguard: brute-force protection. Failed authentications are counted per
 * client address; an address that fails too often is refused (429) for a
 * while before its credentials are even looked at. The address is the
 * request's client (clientaddr.h: the TCP peer, or the address a trusted
 * proxy forwarded); auth.c never passes one in limits.auth_guard_exempt.
 *
 * The unit is the address, never the key: an attacker guessing secrets for
 * a key id can only lock out its own address, not the key's legitimate
 * users elsewhere. IPv6 clients are counted by /64 (one machine usually
 * holds a whole /64); IPv4 by the full address (an IPv4-mapped IPv6 address
 * counts as its IPv4 address).
 *
 * Rule: `limit` failures within a sliding minute block the address for 60 s;
 * each further block within the next hour doubles the period, up to 15 min.
 * A success in between forgives nothing: otherwise a client holding one
 * valid key could interleave it with guesses without limit. (Clients behind
 * one NAT address share its count; the limit is per minute and generous
 * for that reason.) limit 0 turns the guard off.
 *
 * Memory is bounded: a fixed table of AUTHGUARD_SLOTS entries; when it is
 * full the entry with the oldest activity that is not blocked is reused.
 * Time is passed in (monotonic ms) for tests. Any thread (one mutex; it is
 * only touched on failures and for addresses that have failed).
 */
#ifndef GATEWAY_AUTHGUARD_H
#define GATEWAY_AUTHGUARD_H

#include <stdint.h>
#include <sys/socket.h>

#define AUTHGUARD_SLOTS 4096

struct authguard;

struct authguard *authguard_new(unsigned limit);
void authguard_free(struct authguard *g);
/* Change the limit (reload); counts and blocks are kept. */
void authguard_set_limit(struct authguard *g, unsigned limit);

/* Seconds (rounded up, at least 1) until sa may try again, or 0 when it is
 * not blocked. sa NULL = never blocked. */
unsigned authguard_blocked(struct authguard *g, const struct sockaddr *sa, int64_t now_ms);
/* Count a failed authentication from sa; returns the seconds of a block it
 * started (0 = none). */
unsigned authguard_failed(struct authguard *g, const struct sockaddr *sa, int64_t now_ms);

#endif
