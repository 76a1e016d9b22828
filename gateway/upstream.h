/*
 * upstream: the libcurl multi glue of one worker. curl tells us which sockets
 * to watch (CURLMOPT_SOCKETFUNCTION) and when to call it back
 * (CURLMOPT_TIMERFUNCTION); the worker's epoll loop calls upstream_on_socket
 * and upstream_on_timer, then upstream_collect to finish transfers.
 * Worker thread only. Easy handles carry their request in CURLOPT_PRIVATE.
 */
#ifndef GATEWAY_UPSTREAM_H
#define GATEWAY_UPSTREAM_H

#include "worker.h"

/* What the gateway sends to one backend's /api/chat, built once per worker
 * from the configuration rather than once per request. */
struct upstream_target {
    char *chat_url;             /* owned: "<url>/api/chat" */
    struct curl_slist *headers; /* owned: ours, then the backend's configured ones */
};

/* One target per cfg->backends entry; NULL on OOM. */
struct upstream_target *upstream_targets_new(const struct cfg *cfg);
void upstream_targets_free(struct upstream_target *t, const struct cfg *cfg);

int upstream_init(struct worker *w);
void upstream_free(struct worker *w);
void upstream_on_socket(struct worker *w, struct watch *wt, uint32_t epoll_events);
void upstream_on_timer(struct worker *w);
/* Free the watches of sockets curl dropped during this loop turn. */
void upstream_free_dead_watches(struct worker *w);
/* Hand every finished transfer to its request (relay_upstream_done). */
void upstream_collect(struct worker *w);
/* An easy handle, reused from the pool when it can be, since creating one
 * costs more than the rest of a small request: it keeps the options of its
 * last transfer, so the caller sets every option it relies on. NULL on OOM. */
CURL *upstream_easy(struct worker *w);
/* Detach c from the multi handle (closing its connection if the transfer was
 * still running: that is how a backend learns the client left) and return it
 * to the pool. Never from inside a curl callback. */
void upstream_release(struct worker *w, CURL *c);

#endif
