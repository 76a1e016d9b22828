#include "curl_glue.h"

#include "clock.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

static void lost(struct worker *w, CURLMcode rc);

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
    CURLMcode rc = curl_multi_socket_action(w->multi, wt->fd, mask, &running);
    if (rc != CURLM_OK)
        lost(w, rc);
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
        /* -1 tells libcurl that every transfer on this multi handle failed
         * (CURLMOPT_SOCKETFUNCTION(3)); curl_multi_socket_action then
         * returns an error, and lost() acts on it. */
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

static CURLM *new_multi(struct worker *w)
{
    CURLM *m = curl_multi_init();
    if (!m)
        return NULL;
    /* Options that only store a number or a pointer: they cannot fail. */
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(m, CURLMOPT_TIMERDATA, w);
    /* Keep enough idle upstream connections for a busy worker to reuse. */
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, 256L);
    return m;
}

int curl_glue_init(struct worker *w)
{
    w->curl_deadline = -1;
    w->xfers = NULL;
    w->curl_lost = false;
    w->multi = new_multi(w);
    return w->multi ? 0 : -1;
}

void curl_glue_free(struct worker *w)
{
    while (w->neasy)
        curl_easy_cleanup(w->easy_pool[--w->neasy]);
    if (w->multi)
        curl_multi_cleanup(w->multi);
    w->multi = NULL;
}

/*
 * libcurl's multi interface failed (rc): by its contract every transfer in
 * progress failed with it, and the handle may be unusable (a socket callback
 * that returned -1 marks it dead). Each transfer goes back to its owner as
 * failed for lack of memory (the owner answers its client and releases the
 * handle), then the multi handle is replaced; curl_glue_renew tries again
 * later if even that fails.
 */
static void lost(struct worker *w, CURLMcode rc)
{
    log_warn("worker %d: libcurl's multi interface failed (%s): failing its %s transfers", w->id,
             curl_multi_strerror(rc), w->xfers ? "running" : "(no)");
    w->curl_lost = true;
    w->curl_deadline = -1;
    while (w->xfers) {
        struct curl_xfer *x = w->xfers;
        /* done releases the handle, which unlinks x; unlink it here as well
         * in case the owner keeps it */
        w->xfers = x->next;
        if (w->xfers)
            w->xfers->prev = NULL;
        x->prev = x->next = NULL;
        x->done(x, CURLE_OUT_OF_MEMORY);
    }
    curl_glue_renew(w);
}

void curl_glue_renew(struct worker *w)
{
    if (!w->curl_lost)
        return;
    CURLM *m = new_multi(w);
    if (!m)
        return; /* the next tick tries again; meanwhile transfers cannot start */
    /* Its idle connections go with it (their sockets leave epoll through
     * on_socket as it closes them). */
    curl_multi_cleanup(w->multi);
    w->multi = m;
    w->curl_deadline = -1;
    w->curl_lost = false;
}

void curl_glue_on_timer(struct worker *w)
{
    int running = 0;
    w->curl_deadline = -1;
    CURLMcode rc = curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if (rc != CURLM_OK)
        lost(w, rc);
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
    x->prev = x->next = NULL;
    if (w->curl_lost || curl_multi_add_handle(w->multi, c) != CURLM_OK) {
        curl_glue_release(w, c);
        return -1;
    }
    x->next = w->xfers;
    if (w->xfers)
        w->xfers->prev = x;
    w->xfers = x;
    return 0;
}

void curl_glue_release(struct worker *w, CURL *c)
{
    struct curl_xfer *x = NULL;
    curl_easy_getinfo(c, CURLINFO_PRIVATE, (char **)&x);
    if (x && (x->prev || x->next || w->xfers == x)) {
        if (x->prev)
            x->prev->next = x->next;
        else
            w->xfers = x->next;
        if (x->next)
            x->next->prev = x->prev;
        x->prev = x->next = NULL;
    }
    curl_easy_setopt(c, CURLOPT_PRIVATE, NULL);
    curl_multi_remove_handle(w->multi, c);
    /* No curl_easy_reset: every transfer sets each option it relies on, and
     * resetting costs more than the options it would clear. */
    if (w->neasy < sizeof w->easy_pool / sizeof w->easy_pool[0]) {
        w->easy_pool[w->neasy++] = c;
    } else {
        curl_easy_cleanup(c);
    }
}
