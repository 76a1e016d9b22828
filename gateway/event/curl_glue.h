/*
 * curl_glue: the libcurl multi handle of one worker. curl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to call it back
 * (CURLMOPT_TIMERFUNCTION); the worker's epoll loop calls back into curl and
 * then curl_glue_collect, which hands every finished transfer to its owner.
 *
 * A transfer's owner embeds a struct curl_xfer and points CURLOPT_PRIVATE at
 * it (curl_xfer_start does both); `done` is called once per finished
 * transfer, from the loop, never from inside a curl callback.
 *
 * When libcurl's multi interface itself fails (curl_multi_socket_action
 * returns an error, which in practice means memory ran out inside it),
 * libcurl's contract is that every transfer in progress on that multi handle
 * has failed (curl_multi_socket_action(3)): each is handed to its owner as
 * done with CURLE_OUT_OF_MEMORY, and the multi handle is replaced by a new
 * one before the loop turns again (README "Out of memory"). Until a new one
 * could be made, curl_glue_add fails.
 * Worker thread only.
 */
#ifndef GATEWAY_CURL_GLUE_H
#define GATEWAY_CURL_GLUE_H

#include "worker.h"

/* Idle upstream connections a worker keeps for reuse; also how many
 * transfers in flight share connections before new ones take their own
 * (curl_glue.c says why). */
#define UPSTREAM_IDLE_MAX 256

struct curl_xfer {
    /* The transfer is over (result is CURLE_OK or why not). The owner
     * detaches the handle with curl_glue_release. */
    void (*done)(struct curl_xfer *x, CURLcode result);
    struct curl_xfer *prev, *next; /* the worker's transfers in flight (curl_glue's) */
};

/* The worker has UPSTREAM_IDLE_MAX transfers or more in flight: a new one
 * takes a connection of its own (curl_glue.c), and a new stream a small
 * receive buffer (engine.c), since with that many open, memory per
 * transfer counts more than a read call saved in a burst. */
static inline bool curl_glue_crowded(const struct worker *w)
{
    return w->ntransfers >= UPSTREAM_IDLE_MAX;
}

int curl_glue_init(struct worker *w);
void curl_glue_free(struct worker *w);
void curl_glue_on_timer(struct worker *w);
/* After a failure of the multi interface, try again to replace the multi
 * handle (a no-op otherwise). */
void curl_glue_renew(struct worker *w);
/* Hand every finished transfer to its owner (x->done). */
void curl_glue_collect(struct worker *w);
/* Run transfers that are due now (a transfer just added is) and hand over
 * those that finished: what the loop does at its next turn, done at once.
 * For an access handler that has just started a transfer (see engine_start:
 * the only call into curl from inside an MHD callback, safe because curl's
 * callbacks and the done hooks only set flags and queue work). */
void curl_glue_kick(struct worker *w);
/* An easy handle, reused from the pool when it can be, since creating one
 * costs more than the rest of a small request: it keeps the options of its
 * last transfer, so the caller sets every option it relies on. NULL on OOM. */
CURL *curl_glue_easy(struct worker *w);
/* Point c's CURLOPT_PRIVATE at x and add it to the multi handle. 0, or -1
 * (c is then back in the pool). */
int curl_glue_add(struct worker *w, CURL *c, struct curl_xfer *x);
/* Detach c from the multi handle (closing its connection if the transfer was
 * still running: that is how a backend learns the client left) and return it
 * to the pool. Never from inside a curl callback. */
void curl_glue_release(struct worker *w, CURL *c);

#endif
