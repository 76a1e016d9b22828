#include "curl_glue.h"

#include "clock.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

static void on_socket_event(struct worker_watch *wt, uint32_t events)
{
    struct worker *w = wt->ctx;
    int mask = 0, running = 0;
    if (events & EPOLLIN)
        mask |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        mask |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        mask |= CURL_CSELECT_ERR;
    curl_multi_socket_action(w->multi, wt->fd, mask, &running);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    struct worker *w = userp;
    struct worker_watch *wt = socketp;
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
        wt->on_event = on_socket_event;
        wt->ctx = w;
        wt->fd = s;
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

int curl_glue_init(struct worker *w)
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

void curl_glue_free(struct worker *w)
{
    while (w->neasy)
        curl_easy_cleanup(w->easy_pool[--w->neasy]);
    if (w->multi)
        curl_multi_cleanup(w->multi);
    w->multi = NULL;
}

void curl_glue_on_timer(struct worker *w)
{
    int running = 0;
    w->curl_deadline = -1;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

void curl_glue_collect(struct worker *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct curl_xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode result = m->data.result;
        /* m is invalid once the handle is removed: x->done removes it. */
        x->done(x, result);
    }
}

CURL *curl_glue_easy(struct worker *w)
{
    if (w->neasy)
        return w->easy_pool[--w->neasy];
    return curl_easy_init();
}

int curl_glue_add(struct worker *w, CURL *c, struct curl_xfer *x)
{
    curl_easy_setopt(c, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(w->multi, c) != CURLM_OK) {
        curl_glue_release(w, c);
        return -1;
    }
    return 0;
}

void curl_glue_release(struct worker *w, CURL *c)
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
