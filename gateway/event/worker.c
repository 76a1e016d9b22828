#include "worker.h"

#include "clock.h"
#include "curl_glue.h"
#include "jarena.h"
#include "log.h"
#include "mhd_glue.h"
#include "redis_glue.h"
#include "snapshot.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
/* Connections the kernel may hold for a worker before it accepts them. A
 * burst of thousands of clients (a fleet of agents reconnecting) would
 * otherwise overflow a small queue and be refused while the workers catch
 * up; the kernel caps it at net.core.somaxconn (4096 by default). */
#define LISTEN_BACKLOG 4096

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
static int listen_socket(const struct netaddr *l)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (netaddr_sockaddr(l, &ss, &len) < 0) {
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
    /* Accepted sockets inherit it. GnuTLS may write a handshake's flight in
     * more than one send, beneath libmicrohttpd's own cork and no-delay
     * handling (which covers only its sends of HTTP data): with Nagle's
     * algorithm on, a second small write waits for the client's (delayed)
     * ACK of the first. */
    if (l->tls)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        log_error_errno("cannot listen on %s", l->text);
        close(fd);
        return -1;
    }
    return fd;
}

static int epoll_add(struct worker *w, int fd, uint32_t events, struct worker_watch *wt)
{
    struct epoll_event ev = {.events = events, .data.ptr = wt};
    return epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
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

static void on_eventfd(struct worker_watch *wt, uint32_t events)
{
    (void)events;
    struct worker *w = wt->ctx;
    uint64_t v;
    if (read(wt->fd, &v, sizeof v) < 0 && errno != EAGAIN)
        log_warn_errno("worker %d: eventfd", w->id);
    if (atomic_load(&w->gw->stopping))
        begin_drain(w);
    w->gw->hooks->wake(w);
}

static void on_mhd(struct worker_watch *wt, uint32_t events)
{
    (void)events;
    struct worker *w = wt->ctx;
    w->mhd_due = true;
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
    w->event.on_event = on_eventfd;
    w->event.ctx = w;
    w->event.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->event.fd < 0 || epoll_add(w, w->event.fd, EPOLLIN, &w->event) < 0)
        goto fail;
    if (route_inbox_init(&w->inbox, w->event.fd) < 0)
        goto fail;
    w->inbox_live = true;
    if (curl_glue_init(w) < 0)
        goto fail;
    w->snap_gen = snapshot_generation();
    w->snap = snapshot_acquire();
    if (!w->snap)
        goto fail;
    if (redis_glue_init(w) < 0)
        goto fail;
    redis_glue_configure(w, w->snap->cfg);
    w->daemons = calloc(cfg->nlisten, sizeof *w->daemons);
    w->daemon_watch = calloc(cfg->nlisten, sizeof *w->daemon_watch);
    w->daemon_calm = calloc(cfg->nlisten, sizeof *w->daemon_calm);
    if (!w->daemons || !w->daemon_watch || !w->daemon_calm)
        goto fail;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        int fd = listen_socket(&cfg->listen[i]);
        if (fd < 0)
            goto fail;
        struct MHD_Daemon *d = mhd_glue_start(w, fd, cfg->listen[i].tls);
        if (!d) {
            close(fd);
            goto fail;
        }
        w->daemons[w->ndaemons] = d;
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
        struct worker_watch *wt = &w->daemon_watch[w->ndaemons++];
        wt->on_event = on_mhd;
        wt->ctx = w;
        wt->fd = info->epoll_fd;
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
    free(w->daemon_calm);
    w->daemons = NULL;
    w->daemon_watch = NULL;
    w->daemon_calm = NULL;
    curl_glue_free(w);
    redis_glue_free(w);
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

void worker_defer(struct worker *w, struct worker_task *t)
{
    if (t->queued)
        return;
    t->queued = true;
    t->prev = NULL;
    t->next = w->tasks;
    if (w->tasks)
        w->tasks->prev = t;
    w->tasks = t;
}

void worker_cancel(struct worker *w, struct worker_task *t)
{
    if (!t->queued)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        w->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->queued = false;
    t->next = t->prev = NULL;
}

/* Cross-library work queued by callbacks (EVENTLOOP.md loop step 3). */
static void run_deferred(struct worker *w)
{
    /* Unpausing can deliver data that queues the same task again; every
     * pass clears the flags it acts on, so this ends. */
    for (int guard = 0; w->tasks && guard < 100000; guard++) {
        struct worker_task *t = w->tasks;
        worker_cancel(w, t);
        t->run(t);
    }
}

void worker_enter(struct worker *w, struct worker_entry *e)
{
    e->prev = NULL;
    e->next = w->live;
    if (w->live)
        w->live->prev = e;
    w->live = e;
    w->nlive++;
}

void worker_leave(struct worker *w, struct worker_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        w->live = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->next = e->prev = NULL;
    w->nlive--;
}

int worker_rewatch(struct worker *w, struct worker_watch *wt, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = wt};
    return wt->fd < 0 ? -1 : epoll_ctl(w->epfd, EPOLL_CTL_MOD, wt->fd, &ev);
}

int worker_watch(struct worker *w, struct worker_watch *wt, int fd, uint32_t events)
{
    wt->fd = fd;
    if (epoll_add(w, fd, events, wt) < 0) {
        wt->fd = -1;
        return -1;
    }
    return 0;
}

void worker_unwatch(struct worker *w, struct worker_watch *wt)
{
    if (wt->fd < 0)
        return;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, wt->fd, NULL);
    wt->fd = -1;
}

void worker_mhd_due(struct worker *w)
{
    w->mhd_due = true;
}

/*
 * How long a zero MHD timeout is not believed after a run that only found
 * TLS handshakes waiting for their clients (mhd_glue.h): libmicrohttpd
 * 0.9.75 asks for another run at once for as long as such a handshake
 * waits, which would spin the loop. Any event on the daemon's epoll fd (the
 * client's next flight, a new connection) still runs it at once; what waits
 * up to this long is only work that libmicrohttpd would do without an event
 * on a daemon with a stalled handshake at that moment.
 */
#define TLS_CALM_MS 20

/* MHD_run costs an epoll_wait of its own, so it runs only when MHD has
 * something to do: its epoll fd was ready, a connection was resumed (that
 * alone does not wake MHD's fd), or one of its timeouts is due. MHD's
 * contract (call it after every poll when it has a timeout) is kept in
 * substance: when no timeout is due, a call would find nothing to do. */
static void run_mhd(struct worker *w)
{
    /* Cleared before the runs: a callback inside them may ask for another
     * (a connection closed, see conntrack.c). */
    bool was_due = w->mhd_due;
    w->mhd_due = false;
    int64_t now = now_ms();
    for (size_t i = 0; i < w->ndaemons; i++) {
        MHD_UNSIGNED_LONG_LONG t;
        bool due = was_due;
        /* A connection that has just sent a response needs a few more MHD
         * rounds with no I/O (MHD says so with a zero timeout): give them
         * here rather than through as many turns of our own epoll_wait. */
        for (int round = 0; round < 4; round++) {
            if (!due && !(MHD_get_timeout(w->daemons[i], &t) == MHD_YES && t == 0 &&
                          now >= w->daemon_calm[i]))
                break;
            uint64_t stalls = w->tls_stalls, moves = w->tls_moves;
            MHD_run(w->daemons[i]);
            due = false;
            if (w->tls_stalls != stalls && w->tls_moves == moves) {
                w->daemon_calm[i] = now_ms() + TLS_CALM_MS;
                break;
            }
        }
    }
}

static int loop_timeout(struct worker *w, int64_t now)
{
    if (w->tasks || w->mhd_due)
        return 0;
    int64_t until = w->next_tick;
    if (w->curl_deadline >= 0 && w->curl_deadline < until)
        until = w->curl_deadline;
    int64_t redis_at = redis_glue_deadline(w);
    if (redis_at >= 0 && redis_at < until)
        until = redis_at;
    for (size_t i = 0; i < w->ndaemons; i++) {
        MHD_UNSIGNED_LONG_LONG t;
        if (MHD_get_timeout(w->daemons[i], &t) != MHD_YES)
            continue;
        int64_t at = now + (int64_t)t;
        if (t == 0 && w->daemon_calm[i] > now)
            at = w->daemon_calm[i]; /* see run_mhd() */
        if (at < until)
            until = at;
    }
    return until <= now ? 0 : (int)(until - now);
}

/* One turn of the loop (README "The loop turn"). */
static int turn(struct worker *w, struct epoll_event *evs, int64_t now)
{
    int n = epoll_wait(w->epfd, evs, MAX_EVENTS, loop_timeout(w, now));
    if (n < 0 && errno != EINTR) {
        log_error_errno("worker %d: epoll_wait", w->id);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        struct worker_watch *wt = evs[i].data.ptr;
        if (wt->fd >= 0) /* not dropped earlier in this batch */
            wt->on_event(wt, evs[i].events);
    }
    now = now_ms();
    if (w->curl_deadline >= 0 && now >= w->curl_deadline)
        curl_glue_on_timer(w);
    curl_glue_collect(w);
    if (now >= w->next_tick) {
        w->next_tick = now + WORKER_TICK_MS;
        /* a reload may have changed "shared": reconnect, or close */
        redis_glue_configure(w, worker_snapshot(w)->cfg);
        for (struct worker_entry *e = w->live, *next; e; e = next) {
            next = e->next;
            w->gw->hooks->tick(e, now);
        }
        conntrack_tick(w, now);
        curl_glue_collect(w);
        curl_glue_renew(w);
    }
    redis_glue_service(w, now);
    run_deferred(w);
    run_mhd(w);
    return 0;
}

int worker_turn(struct worker *w)
{
    struct epoll_event evs[MAX_EVENTS];
    return turn(w, evs, now_ms());
}

/* After the grace period, how long the loop goes on writing the endings the
 * shutdown hooks queued (each stream's error frame and the end of its
 * chunked body) before the daemons close what is left. */
#define FLUSH_MS 1000

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[MAX_EVENTS];
    /* Named for top -H and gdb, and for tests/oom's allocator shim, which
     * fails allocations on worker threads only. */
    char name[16];
    snprintf(name, sizeof name, "gw-worker-%d", w->id);
    pthread_setname_np(pthread_self(), name);
    w->next_tick = now_ms() + WORKER_TICK_MS;
    w->mhd_due = true;
    for (;;) {
        int64_t now = now_ms();
        if (w->draining && (w->nlive == 0 || now >= w->drain_deadline))
            break;
        if (turn(w, evs, now) < 0)
            break;
    }
    /* Grace period over (or nothing left): end what remains, resume every
     * suspended connection (MHD forbids stopping with suspended ones, P8).
     * One MHD_run does not write a resumed connection's ending (the resume
     * is processed first, the write in a later round), so the loop goes on
     * until every request has completed or FLUSH_MS have passed; then
     * MHD_stop_daemon closes whatever is left. */
    for (struct worker_entry *e = w->live, *next; e; e = next) {
        next = e->next;
        w->gw->hooks->shutdown(e);
    }
    run_deferred(w);
    w->mhd_due = true;
    int64_t flush_end = now_ms() + FLUSH_MS;
    while (w->nlive && now_ms() < flush_end && turn(w, evs, now_ms()) == 0)
        w->mhd_due = true;
    for (size_t i = 0; i < w->ndaemons; i++)
        MHD_run(w->daemons[i]);
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
