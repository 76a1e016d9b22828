#include "upstream.h"

#include "log.h"
#include "relay.h"
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    struct worker *w = userp;
    struct watch *wt = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (wt) {
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, s, NULL);
            curl_multi_assign(w->multi, s, NULL);
            /* An event for it may still wait in the current epoll batch. */
            wt->fd = -1;
            wt->dead = w->dead_watches;
            w->dead_watches = wt;
        }
        return 0;
    }
    struct epoll_event ev = {0};
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    int op = EPOLL_CTL_MOD;
    if (!wt) {
        wt = malloc(sizeof *wt);
        if (!wt)
            return -1;
        wt->kind = WATCH_CURL;
        wt->fd = s;
        wt->ptr = NULL;
        wt->dead = NULL;
        curl_multi_assign(w->multi, s, wt);
        op = EPOLL_CTL_ADD;
    }
    ev.data.ptr = wt;
    if (epoll_ctl(w->epfd, op, s, &ev) < 0) {
        log_warn_errno("worker %d: epoll_ctl for an upstream socket", w->id);
        return -1;
    }
    return 0;
}

/* Only records the deadline: calling libcurl from here is forbidden. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct worker *w = userp;
    w->curl_deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    return 0;
}

int upstream_init(struct worker *w)
{
    w->curl_deadline = -1;
    w->multi = curl_multi_init();
    if (!w->multi)
        return -1;
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    /* Keep enough idle upstream connections for a busy worker to reuse. */
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, 256L);
    return 0;
}

void upstream_free(struct worker *w)
{
    upstream_free_dead_watches(w);
    while (w->neasy)
        curl_easy_cleanup(w->easy_pool[--w->neasy]);
    if (w->multi)
        curl_multi_cleanup(w->multi);
    w->multi = NULL;
}

void upstream_on_socket(struct worker *w, struct watch *wt, uint32_t events)
{
    int mask = 0, running = 0;
    if (wt->fd < 0)
        return; /* curl dropped this socket earlier in the same batch */
    if (events & EPOLLIN)
        mask |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        mask |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        mask |= CURL_CSELECT_ERR;
    curl_multi_socket_action(w->multi, wt->fd, mask, &running);
}

void upstream_on_timer(struct worker *w)
{
    int running = 0;
    w->curl_deadline = -1;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

void upstream_collect(struct worker *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct request *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode result = m->data.result;
        /* m is invalid once the handle is removed: relay_upstream_done removes it. */
        relay_upstream_done(r, result);
    }
}

CURL *upstream_easy(struct worker *w)
{
    if (w->neasy)
        return w->easy_pool[--w->neasy];
    return curl_easy_init();
}

void upstream_release(struct worker *w, CURL *c)
{
    curl_multi_remove_handle(w->multi, c);
    /* No curl_easy_reset: every transfer sets each option it relies on, and
     * resetting costs more than the options it would clear. */
    if (w->neasy < sizeof w->easy_pool / sizeof w->easy_pool[0]) {
        w->easy_pool[w->neasy++] = c;
    } else {
        curl_easy_cleanup(c);
    }
}

void upstream_free_dead_watches(struct worker *w)
{
    while (w->dead_watches) {
        struct watch *wt = w->dead_watches;
        w->dead_watches = wt->dead;
        free(wt);
    }
}

/* Append line to *list; on failure free the whole list (curl leaves it). */
static int header_append(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l) {
        curl_slist_free_all(*list);
        *list = NULL;
        return -1;
    }
    *list = l;
    return 0;
}

struct upstream_target *upstream_targets_new(const struct cfg *cfg)
{
    struct upstream_target *t = calloc(cfg->nbackends ? cfg->nbackends : 1, sizeof *t);
    if (!t)
        return NULL;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        const struct cfg_backend *be = &cfg->backends[i];
        size_t n = strlen(be->url) + sizeof "/api/chat";
        t[i].chat_url = malloc(n);
        if (!t[i].chat_url)
            goto fail;
        snprintf(t[i].chat_url, n, "%s/api/chat", be->url);
        /* Expect: off, so a large body does not wait for 100-continue. */
        if (header_append(&t[i].headers, "Content-Type: application/json") < 0 ||
            header_append(&t[i].headers, "Expect:") < 0)
            goto fail;
        for (const char *const *h = be->headers; h && *h; h++)
            if (header_append(&t[i].headers, *h) < 0)
                goto fail;
    }
    return t;
fail:
    upstream_targets_free(t, cfg);
    return NULL;
}

void upstream_targets_free(struct upstream_target *t, const struct cfg *cfg)
{
    if (!t)
        return;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        free(t[i].chat_url);
        curl_slist_free_all(t[i].headers);
    }
    free(t);
}
