#include "curl_glue.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/*
 * curl's sockets stay in the worker's epoll set between transfers. curl says
 * CURL_POLL_REMOVE when a transfer ends and asks for the same keep-alive
 * socket again with the next request: taking it out and putting it back
 * would cost two epoll_ctl calls per request, a good share of all the system
 * calls one request makes. So REMOVE only marks the socket unwanted; it stays
 * registered (level-triggered) and is taken out only if something happens on
 * it while unwanted (the backend closed an idle connection: curl finds that
 * out itself when it next checks the connection). curl's close-socket
 * callback tells us when the fd goes away (closing it drops its epoll
 * registration), so a new socket with the same number starts unregistered.
 * State per fd number, in a table the worker owns; entries are kept for the
 * worker's life, so an event still in this turn's batch never points at
 * freed memory.
 */
struct curl_sock {
    struct worker_watch wt; /* wt.fd: the socket */
    uint32_t in_epoll;      /* the events registered; 0 = not in the epoll set */
    bool wanted;            /* curl watches it (between POLL_IN/OUT and REMOVE) */
};

static void on_socket_event(struct worker_watch *wt, uint32_t events);

static struct curl_sock *sock_of(struct worker *w, curl_socket_t s)
{
    if (s < 0)
        return NULL;
    size_t i = (size_t)s;
    if (i >= w->ncsocks) {
        size_t n = w->ncsocks ? w->ncsocks : 64;
        while (n <= i)
            n *= 2;
        struct curl_sock **t = realloc(w->csocks, n * sizeof *t);
        if (!t)
            return NULL;
        memset(t + w->ncsocks, 0, (n - w->ncsocks) * sizeof *t);
        w->csocks = t;
        w->ncsocks = n;
    }
    if (!w->csocks[i]) {
        struct curl_sock *cs = calloc(1, sizeof *cs);
        if (!cs)
            return NULL;
        cs->wt = (struct worker_watch){.on_event = on_socket_event, .ctx = w, .fd = s};
        w->csocks[i] = cs;
    }
    return w->csocks[i];
}

static void lost(struct worker *w, CURLMcode rc);

static void on_socket_event(struct worker_watch *wt, uint32_t events)
{
    struct worker *w = wt->ctx;
    struct curl_sock *cs = (struct curl_sock *)wt;
    if (!cs->wanted) {
        if (cs->in_epoll) {
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, wt->fd, NULL);
            cs->in_epoll = 0;
        }
        return;
    }
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
    (void)socketp;
    struct worker *w = userp;
    struct curl_sock *cs = sock_of(w, s);
    /* -1 tells libcurl that every transfer on this multi handle failed
     * (CURLMOPT_SOCKETFUNCTION(3)); curl_multi_socket_action then returns an
     * error, and lost() acts on it. */
    if (!cs)
        return what == CURL_POLL_REMOVE ? 0 : -1;
    if (what == CURL_POLL_REMOVE) {
        cs->wanted = false;
        return 0;
    }
    uint32_t events = 0;
    if (what & CURL_POLL_IN)
        events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        events |= EPOLLOUT;
    cs->wanted = true;
    if (cs->in_epoll == events)
        return 0;
    struct epoll_event ev = {.events = events, .data.ptr = &cs->wt};
    int op = cs->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int rc = epoll_ctl(w->epfd, op, s, &ev);
    /* Our record and the kernel's can only disagree if a socket was closed
     * without the close-socket callback: trust the kernel. */
    if (rc < 0 && op == EPOLL_CTL_MOD && errno == ENOENT)
        rc = epoll_ctl(w->epfd, EPOLL_CTL_ADD, s, &ev);
    else if (rc < 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
        rc = epoll_ctl(w->epfd, EPOLL_CTL_MOD, s, &ev);
    if (rc < 0) {
        cs->in_epoll = 0;
        log_warn_errno("worker %d: epoll_ctl for an upstream socket", w->id);
        return -1;
    }
    cs->in_epoll = events;
    return 0;
}

/* Closing the fd drops its epoll registration: forget ours with it. */
static int on_close_socket(void *clientp, curl_socket_t s)
{
    struct worker *w = clientp;
    if (s >= 0 && (size_t)s < w->ncsocks && w->csocks[s]) {
        w->csocks[s]->in_epoll = 0;
        w->csocks[s]->wanted = false;
    }
    return close(s);
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
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)UPSTREAM_IDLE_MAX);
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
    /* After the cleanup: closing its connections calls on_close_socket. */
    for (size_t i = 0; i < w->ncsocks; i++)
        free(w->csocks[i]);
    free(w->csocks);
    w->csocks = NULL;
    w->ncsocks = 0;
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
    /* Its idle connections go with it (closing them calls on_close_socket). */
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

void curl_glue_kick(struct worker *w)
{
    curl_glue_on_timer(w);
    curl_glue_collect(w);
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
    CURL *c = curl_easy_init();
    /* Kept across transfers (handles are never reset). */
    if (c) {
        curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
        curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, w);
    }
    return c;
}

/*
 * libcurl 7.88 looks for a connection to reuse by walking every connection it
 * has to that backend, in use or not, and once it holds more than
 * CURLMOPT_MAXCONNECTS it walks all of them again at the end of each transfer
 * to find the oldest idle one to close. With thousands of streams open on a
 * worker that is quadratic: at 9,000 streams the first tokens came seconds
 * late. So beyond UPSTREAM_IDLE_MAX transfers in flight a new one takes a
 * fresh connection, which is closed when it ends: none of those walks happens
 * for it, it costs one TCP handshake on a stream that lasts seconds, and
 * never more than UPSTREAM_IDLE_MAX connections are left idle.
 */
static void to_pool(struct worker *w, CURL *c)
{
    /* No curl_easy_reset: every transfer sets each option it relies on, and
     * resetting costs more than the options it would clear. */
    if (w->neasy < sizeof w->easy_pool / sizeof w->easy_pool[0]) {
        w->easy_pool[w->neasy++] = c;
    } else {
        curl_easy_cleanup(c);
    }
}

int curl_glue_add(struct worker *w, CURL *c, struct curl_xfer *x)
{
    long crowded = curl_glue_crowded(w);
    curl_easy_setopt(c, CURLOPT_PRIVATE, x);
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, crowded);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, crowded);
    x->prev = x->next = NULL;
    if (w->curl_lost || curl_multi_add_handle(w->multi, c) != CURLM_OK) {
        curl_easy_setopt(c, CURLOPT_PRIVATE, NULL);
        to_pool(w, c);
        return -1;
    }
    x->next = w->xfers;
    if (w->xfers)
        w->xfers->prev = x;
    w->xfers = x;
    w->ntransfers++;
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
    w->ntransfers--;
    to_pool(w, c);
}
