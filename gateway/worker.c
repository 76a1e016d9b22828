#include "worker.h"

#include "jarena.h"
#include "log.h"
#include "relay.h"
#include "request.h"
#include "server.h"
#include "snapshot.h"
#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 250 /* timeouts and keep-alives are checked this often */
#define MAX_EVENTS 256

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct snapshot *worker_snapshot(struct worker *w)
{
    unsigned gen = snapshot_generation();
    if (gen != w->snap_gen) {
        struct snapshot *s = snapshot_acquire();
        if (s) {
            snapshot_unref(w->snap);
            w->snap = s;
            w->snap_gen = gen;
        }
    }
    return w->snap;
}

/* A listening socket of our own, so that every worker can bind the same
 * address with SO_REUSEPORT and the kernel spreads connections over them. */
static int listen_socket(const struct cfg_addr *l)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    const char *host = strcmp(l->host, "localhost") == 0 ? "127.0.0.1" : l->host;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)l->port);
        len = sizeof *in4;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)l->port);
        len = sizeof *in6;
    } else {
        log_error("listen address \"%s\" is not an IP address", l->host);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error_errno("socket");
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0) {
        log_error_errno("cannot listen on %s", l->text);
        close(fd);
        return -1;
    }
    return fd;
}

static int epoll_add(struct worker *w, int fd, uint32_t events, struct watch *wt)
{
    struct epoll_event ev = {.events = events, .data.ptr = wt};
    return epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int worker_init(struct worker *w, int id, struct gateway *gw)
{
    const struct cfg *cfg = gw->cfg;
    memset(w, 0, sizeof *w);
    w->id = id;
    w->gw = gw;
    w->event.fd = -1;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        goto fail;
    w->event.kind = WATCH_EVENT;
    w->event.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->event.fd < 0 || epoll_add(w, w->event.fd, EPOLLIN, &w->event) < 0)
        goto fail;
    if (route_inbox_init(&w->inbox, w->event.fd) < 0)
        goto fail;
    w->inbox_live = true;
    if (upstream_init(w) < 0)
        goto fail;
    w->snap_gen = snapshot_generation();
    w->snap = snapshot_acquire();
    if (!w->snap)
        goto fail;
    w->daemons = calloc(cfg->nlisten, sizeof *w->daemons);
    w->daemon_watch = calloc(cfg->nlisten, sizeof *w->daemon_watch);
    if (!w->daemons || !w->daemon_watch)
        goto fail;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        int fd = listen_socket(&cfg->listen[i]);
        if (fd < 0)
            goto fail;
        struct MHD_Daemon *d = server_start_daemon(w, fd);
        if (!d) {
            close(fd);
            goto fail;
        }
        w->daemons[w->ndaemons] = d;
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
        struct watch *wt = &w->daemon_watch[w->ndaemons++];
        wt->kind = WATCH_MHD;
        wt->fd = info->epoll_fd;
        wt->ptr = d;
        if (epoll_add(w, wt->fd, EPOLLIN, wt) < 0)
            goto fail;
    }
    return 0;
fail:
    log_error_errno("worker %d: cannot start", id);
    worker_free(w);
    return -1;
}

void worker_free(struct worker *w)
{
    for (size_t i = 0; i < w->ndaemons; i++)
        MHD_stop_daemon(w->daemons[i]);
    w->ndaemons = 0;
    free(w->daemons);
    free(w->daemon_watch);
    w->daemons = NULL;
    w->daemon_watch = NULL;
    upstream_free(w);
    snapshot_unref(w->snap);
    w->snap = NULL;
    if (w->inbox_live)
        route_inbox_destroy(&w->inbox);
    w->inbox_live = false;
    if (w->event.fd >= 0)
        close(w->event.fd);
    if (w->epfd >= 0)
        close(w->epfd);
    w->event.fd = w->epfd = -1;
}

void worker_defer(struct worker *w, struct request *r)
{
    if (r->deferred)
        return;
    r->deferred = true;
    r->dprev = NULL;
    r->dnext = w->deferred;
    if (w->deferred)
        w->deferred->dprev = r;
    w->deferred = r;
}

/* Cross-library work queued by callbacks (EVENTLOOP.md loop step 3). */
static void run_deferred(struct worker *w)
{
    /* Unpausing can deliver data that queues the same request again; every
     * pass clears the flags it acts on, so this ends. */
    for (int guard = 0; w->deferred && guard < 100000; guard++) {
        struct request *r = w->deferred;
        w->deferred = r->dnext;
        if (w->deferred)
            w->deferred->dprev = NULL;
        r->deferred = false;
        r->dnext = r->dprev = NULL;
        relay_run_deferred(r);
    }
}

void worker_watch_hangup(struct worker *w, struct request *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci || r->hangup_watched)
        return;
    r->hangup.kind = WATCH_HANGUP;
    r->hangup.fd = ci->connect_fd;
    r->hangup.ptr = r;
    if (epoll_add(w, r->hangup.fd, EPOLLRDHUP, &r->hangup) == 0)
        r->hangup_watched = true;
}

void worker_unwatch_hangup(struct worker *w, struct request *r)
{
    if (!r->hangup_watched)
        return;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, r->hangup.fd, NULL);
    r->hangup_watched = false;
}

static void begin_drain(struct worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    w->mhd_due = true;
    w->drain_deadline = now_ms() + (int64_t)w->gw->grace_s * 1000;
    for (size_t i = 0; i < w->ndaemons; i++) {
        MHD_socket fd = MHD_quiesce_daemon(w->daemons[i]);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
}

/* MHD_run costs an epoll_wait of its own, so it runs only when MHD has
 * something to do: its epoll fd was ready, a connection was resumed (that
 * alone does not wake MHD's fd), or one of its timeouts is due. MHD's
 * contract (call it after every poll when it has a timeout) is kept in
 * substance: when no timeout is due, a call would find nothing to do. */
static void run_mhd(struct worker *w)
{
    for (size_t i = 0; i < w->ndaemons; i++) {
        MHD_UNSIGNED_LONG_LONG t;
        bool due = w->mhd_due;
        /* A connection that has just sent a response needs a few more MHD
         * rounds with no I/O (MHD says so with a zero timeout): give them
         * here rather than through as many turns of our own epoll_wait. */
        for (int round = 0; round < 4; round++) {
            if (!due && !(MHD_get_timeout(w->daemons[i], &t) == MHD_YES && t == 0))
                break;
            MHD_run(w->daemons[i]);
            due = false;
        }
    }
    w->mhd_due = false;
}

static int loop_timeout(struct worker *w, int64_t now)
{
    if (w->deferred || w->mhd_due)
        return 0;
    int64_t until = w->next_tick;
    if (w->curl_deadline >= 0 && w->curl_deadline < until)
        until = w->curl_deadline;
    for (size_t i = 0; i < w->ndaemons; i++) {
        MHD_UNSIGNED_LONG_LONG t;
        if (MHD_get_timeout(w->daemons[i], &t) == MHD_YES && now + (int64_t)t < until)
            until = now + (int64_t)t;
    }
    return until <= now ? 0 : (int)(until - now);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[MAX_EVENTS];
    w->next_tick = now_ms() + TICK_MS;
    w->mhd_due = true;
    for (;;) {
        int64_t now = now_ms();
        if (w->draining && (w->nactive == 0 || now >= w->drain_deadline))
            break;
        int n = epoll_wait(w->epfd, evs, MAX_EVENTS, loop_timeout(w, now));
        if (n < 0 && errno != EINTR) {
            log_error_errno("worker %d: epoll_wait", w->id);
            break;
        }
        for (int i = 0; i < n; i++) {
            struct watch *wt = evs[i].data.ptr;
            switch (wt->kind) {
            case WATCH_CURL:
                upstream_on_socket(w, wt, evs[i].events);
                break;
            case WATCH_HANGUP:
                relay_client_gone(wt->ptr);
                break;
            case WATCH_EVENT: {
                uint64_t v;
                if (read(wt->fd, &v, sizeof v) < 0 && errno != EAGAIN)
                    log_warn_errno("worker %d: eventfd", w->id);
                if (atomic_load(&w->gw->stopping))
                    begin_drain(w);
                /* Slots that other workers handed to requests queued here. */
                struct route_waiter *next;
                for (struct route_waiter *g = route_inbox_take(&w->inbox); g; g = next) {
                    next = g->next;
                    g->next = NULL;
                    relay_granted(g->owner);
                }
                break;
            }
            case WATCH_MHD:
                w->mhd_due = true;
                break;
            }
        }
        now = now_ms();
        if (w->curl_deadline >= 0 && now >= w->curl_deadline)
            upstream_on_timer(w);
        upstream_collect(w);
        if (now >= w->next_tick) {
            w->next_tick = now + TICK_MS;
            for (struct request *r = w->active; r; r = r->next)
                relay_tick(r, now);
            upstream_collect(w);
        }
        run_deferred(w);
        run_mhd(w);
        upstream_free_dead_watches(w);
    }
    /* Grace period over (or nothing left): cut what remains, resume every
     * suspended connection (MHD forbids stopping with suspended ones, P8),
     * and let MHD_stop_daemon complete them. */
    for (struct request *r = w->active; r; r = r->next)
        relay_shutdown(r);
    run_deferred(w);
    for (size_t i = 0; i < w->ndaemons; i++)
        MHD_run(w->daemons[i]);
    upstream_free_dead_watches(w);
    jarena_thread_free();
    return NULL;
}

int worker_start(struct worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) ? -1 : 0;
}

void worker_stop(struct worker *w)
{
    uint64_t one = 1;
    if (write(w->event.fd, &one, sizeof one) < 0)
        log_warn_errno("worker %d: cannot wake", w->id);
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}
