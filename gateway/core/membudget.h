/*
 * membudget: the process-wide count of bytes held for requests, which
 * limits.max_buffered_bytes bounds.
 *
 * A counted buf (buf_count) adds what it allocates here on every growth and
 * takes it back when it is freed; the request object itself is counted too.
 * The relay admits a new request only while the count is under the budget
 * (http/handler.c); requests in flight are never cut for it.
 *
 * Who touches it: every worker thread, from its own requests' buffers (a
 * growth, a free) and at admission (a read); nothing else. The counter is
 * one lock-free atomic with relaxed ordering: it is a gauge that orders
 * nothing, and an admission that reads it a moment stale lets at most one
 * more request in per worker. Growths double, so a request costs a handful
 * of atomic adds, not one per byte or per append: about 10 per chat request,
 * streamed or not (counted over 1,000 of each), at 13-18 ns each with two
 * threads contending, against 47-78 us of CPU per request. Batching them per
 * worker would save under 0.5 % and make the gauge lag, so it is not done.
 */
#ifndef GATEWAY_MEMBUDGET_H
#define GATEWAY_MEMBUDGET_H

#include <stddef.h>

/* n more bytes are held. */
void membudget_charge(size_t n);
/* n bytes charged before are given back. */
void membudget_release(size_t n);
/* Bytes held right now, across all workers. */
size_t membudget_used(void);

#endif
