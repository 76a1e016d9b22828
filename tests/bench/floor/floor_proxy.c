/*
 * floor_proxy: what the gateway's two libraries cost by themselves
 * (tests/bench/run.sh, the "floor" rows; tests/bench/README.md).
 *
 * A proxy that drives libmicrohttpd and libcurl the way the gateway does
 * (gateway/event/: one event loop per worker thread, each with its own
 * libmicrohttpd daemon in external-epoll mode on an SO_REUSEPORT socket,
 * suspend/resume while the backend answers, a libcurl multi handle driven
 * by curl_multi_socket_action, pooled easy handles, the upstream URL parsed
 * once, upstream sockets left in the epoll set between transfers) and that
 * does nothing else: no key, no route, no JSON, no translation, no log, no
 * metrics. It forwards the client's body to the upstream's OpenAI
 * /v1/chat/completions, as nginx does in the benchmark, and relays the answer
 * byte for byte: whole with a length when it is not a stream, chunk by chunk
 * when it is (a request whose body says "stream":true).
 *
 * Its CPU per request beside nginx's is what any proxy built on these two
 * libraries pays before it does any work of its own; beside the gateway's, it
 * is what the gateway's own work costs.
 *
 * With --client raw, a request that is not a stream goes upstream through a
 * minimal HTTP/1.1 client of its own instead of libcurl (keep-alive sockets
 * that stay in the epoll set, one writev out, reads until Content-Length):
 * what libmicrohttpd alone costs, and so what replacing libcurl on the hot
 * path could win at most. It handles only what the benchmark's fake sends (an
 * answer with a Content-Length); streams still go through libcurl.
 *
 *   floor_proxy --port P --upstream http://127.0.0.1:Q [--workers N] [--client curl|raw]
 *
 * Loopback only: it binds 127.0.0.1. A benchmark tool, never installed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536
#define MAX_EVENTS 256
#define EASY_POOL 256
#define CONNECTION_MEMORY (8 << 10) /* the gateway's (gateway/event/mhd_glue.c) */

static int port;
static const char *upstream;
static CURLU *upstream_url; /* parsed once; libcurl copies it per transfer */
static char upstream_text[512];
static struct curl_slist *headers;
static volatile sig_atomic_t stopping;
static bool raw_client;
static struct sockaddr_in upstream_addr;
static char raw_head[256]; /* the request head up to Content-Length's value */

/* epoll data of a raw upstream socket: its fd with this bit (curl's: fd + 1,
 * MHD's epoll fd: 0) */
#define RAW_TAG (1ull << 40)

struct worker {
    int epfd;
    struct MHD_Daemon *daemon;
    CURLM *multi;
    long long curl_deadline; /* ms on CLOCK_MONOTONIC, or -1 */
    bool mhd_due;            /* a connection was resumed: run MHD */
    CURL *pool[EASY_POOL];
    size_t npool;
    size_t ntransfers;          /* in flight: EASY_POOL or more is "crowded", as in curl_glue.h */
    uint32_t in_epoll[MAX_FDS]; /* events registered per upstream socket; 0 = none */
    bool wanted[MAX_FDS];       /* libcurl watches it */
    struct req *raw_owner[MAX_FDS]; /* a raw socket's request; NULL when idle */
    int raw_idle[EASY_POOL];        /* idle raw sockets, newest last */
    size_t nraw_idle;
};

struct req {
    struct worker *w;
    struct MHD_Connection *conn;
    char *body;
    size_t blen, bcap;
    char *out; /* the upstream's answer not yet handed to MHD */
    size_t olen, ocap, ooff;
    CURL *easy;                    /* while the transfer runs */
    int raw_fd;                    /* while a raw exchange runs, else -1 */
    size_t raw_head_end, raw_need; /* the answer's head length, and the whole answer's */
    long status;
    bool started, done, failed, stream, suspended, queued;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int append(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + n)
            c *= 2;
        char *q = realloc(*p, c);
        if (!q)
            return -1;
        *p = q;
        *cap = c;
    }
    memcpy(*p + *len, s, n);
    *len += n;
    return 0;
}

static void wake(struct req *r)
{
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
        r->w->mhd_due = true; /* a resume alone does not wake MHD's epoll fd */
    }
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    struct req *r = ud;
    size_t n = size * nmemb;
    if (append(&r->out, &r->olen, &r->ocap, p, n) < 0)
        return 0;
    if (r->stream)
        wake(r);
    return n;
}

static void release(struct req *r)
{
    if (!r->easy)
        return;
    curl_multi_remove_handle(r->w->multi, r->easy);
    r->w->ntransfers--;
    if (r->w->npool < EASY_POOL)
        r->w->pool[r->w->npool++] = r->easy;
    else
        curl_easy_cleanup(r->easy);
    r->easy = NULL;
}

static void collect(struct worker *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        r->failed = m->data.result != CURLE_OK;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &r->status);
        release(r);
        r->done = true;
        wake(r);
    }
}

static void kick(struct worker *w)
{
    int running;
    w->curl_deadline = -1;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(w);
}

static int on_close_socket(void *clientp, curl_socket_t s);

static CURL *new_easy(struct worker *w)
{
    CURL *c = curl_easy_init();
    if (c) {
        curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
        curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, w);
    }
    return c;
}

static int start(struct req *r)
{
    struct worker *w = r->w;
    CURL *c = w->npool ? w->pool[--w->npool] : new_easy(w);
    if (!c)
        return -1;
    curl_easy_setopt(c, CURLOPT_URL, upstream_text);
    curl_easy_setopt(c, CURLOPT_CURLU, upstream_url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body ? r->body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->blen);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_PRIVATE, r);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    /* as the gateway (engine.c start_transfer, curl_glue.c curl_glue_add) */
    long crowded = w->ntransfers >= EASY_POOL;
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, !r->stream ? 16384L : crowded ? 1024L : 4096L);
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, crowded);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, crowded);
    if (curl_multi_add_handle(w->multi, c) != CURLM_OK) {
        curl_easy_cleanup(c);
        return -1;
    }
    r->easy = c;
    w->ntransfers++;
    r->started = true;
    kick(w);
    return 0;
}

/* ---- the raw upstream client (--client raw) ---- */

static void raw_drop(struct worker *w, int fd)
{
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->raw_owner[fd] = NULL;
    close(fd);
}

static int raw_connect(struct worker *w)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || fd >= MAX_FDS)
        goto fail;
    /* a blocking connect: loopback answers at once, and it is not what is measured */
    if (connect(fd, (struct sockaddr *)&upstream_addr, sizeof upstream_addr) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
        goto fail;
    struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = RAW_TAG | (uint64_t)fd};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &e) < 0)
        goto fail;
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

static int raw_start(struct req *r)
{
    struct worker *w = r->w;
    char len[32];
    int n = snprintf(len, sizeof len, "%zu\r\n\r\n", r->blen);
    struct iovec iov[3] = {{raw_head, strlen(raw_head)}, {len, (size_t)n}, {r->body, r->blen}};
    size_t total = iov[0].iov_len + iov[1].iov_len + iov[2].iov_len;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = w->nraw_idle > 0;
        int fd = reused ? w->raw_idle[--w->nraw_idle] : raw_connect(w);
        if (fd < 0)
            return -1;
        if (writev(fd, iov, r->blen ? 3 : 2) == (ssize_t)total) {
            r->raw_fd = fd;
            w->raw_owner[fd] = r;
            r->started = true;
            return 0;
        }
        raw_drop(w, fd); /* a kept connection the upstream had closed: once more, fresh */
        if (!reused)
            return -1;
    }
    return -1;
}

/* The answer's head is in: its status and Content-Length. */
static int raw_head_parse(struct req *r)
{
    char *end = memmem(r->out, r->olen, "\r\n\r\n", 4);
    if (!end)
        return 0;
    r->raw_head_end = (size_t)(end - r->out) + 4;
    if (r->olen < 12 || memcmp(r->out, "HTTP/1.1 ", 9) != 0)
        return -1;
    r->status = strtol(r->out + 9, NULL, 10);
    const char *cl = NULL;
    for (char *p = r->out; p < end; p++)
        if ((*p == 'C' || *p == 'c') && p > r->out && p[-1] == '\n' &&
            strncasecmp(p, "Content-Length:", 15) == 0) {
            cl = p + 15;
            break;
        }
    if (!cl)
        return -1; /* chunked or close-delimited: not the benchmark's non-streamed answer */
    r->raw_need = r->raw_head_end + (size_t)strtoul(cl, NULL, 10);
    return 1;
}

static void raw_event(struct worker *w, int fd)
{
    struct req *r = w->raw_owner[fd];
    if (!r) { /* idle: the upstream closed it (or sent what nobody asked for) */
        for (size_t i = 0; i < w->nraw_idle; i++)
            if (w->raw_idle[i] == fd) {
                w->raw_idle[i] = w->raw_idle[--w->nraw_idle];
                break;
            }
        raw_drop(w, fd);
        return;
    }
    for (;;) {
        if (r->ocap - r->olen < 4096) {
            size_t c = r->ocap ? r->ocap * 2 : 16384;
            char *q = realloc(r->out, c);
            if (!q)
                goto fail;
            r->out = q;
            r->ocap = c;
        }
        ssize_t n = recv(fd, r->out + r->olen, r->ocap - r->olen, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0)
            goto fail;
        r->olen += (size_t)n;
        if (!r->raw_need && raw_head_parse(r) < 0)
            goto fail;
        if (r->raw_need && r->olen >= r->raw_need)
            break;
    }
    /* whole: the body to the client, the socket back to the idle stack */
    memmove(r->out, r->out + r->raw_head_end, r->olen - r->raw_head_end);
    r->olen -= r->raw_head_end;
    w->raw_owner[fd] = NULL;
    r->raw_fd = -1;
    if (w->nraw_idle < EASY_POOL)
        w->raw_idle[w->nraw_idle++] = fd;
    else
        raw_drop(w, fd);
    r->done = true;
    wake(r);
    return;
fail:
    raw_drop(w, fd);
    r->raw_fd = -1;
    r->failed = r->done = true;
    wake(r);
}

static ssize_t relay(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct req *r = cls;
    if (r->ooff < r->olen) {
        size_t n = r->olen - r->ooff < max ? r->olen - r->ooff : max;
        memcpy(buf, r->out + r->ooff, n);
        r->ooff += n;
        if (r->ooff == r->olen)
            r->ooff = r->olen = 0;
        return (ssize_t)n;
    }
    if (r->done)
        return r->failed ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
    r->suspended = true;
    MHD_suspend_connection(r->conn);
    return 0;
}

static enum MHD_Result answer(struct req *r)
{
    struct MHD_Response *resp;
    if (r->easy) /* a stream's first bytes: the status line is in */
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    unsigned status = r->failed || !r->status ? 502 : (unsigned)r->status;
    if (r->done && !r->ooff) {
        /* whole: one response with a length (the gateway does the same) */
        resp = MHD_create_response_from_buffer(r->olen, r->out, MHD_RESPMEM_MUST_FREE);
        if (resp) {
            r->out = NULL;
            r->olen = r->ocap = 0;
        }
    } else {
        /* a chunked response never uses the block (gateway/http/reply.c) */
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1, relay, r, NULL);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->stream ? "text/event-stream" : "application/json");
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->queued = true;
    return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *size, void **ctx)
{
    (void)url;
    (void)method;
    (void)version;
    struct req *r = *ctx;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->w = cls;
        r->conn = conn;
        r->raw_fd = -1;
        *ctx = r;
        return MHD_YES;
    }
    if (*size) {
        if (append(&r->body, &r->blen, &r->bcap, data, *size) < 0)
            return MHD_NO;
        *size = 0;
        return MHD_YES;
    }
    if (r->queued)
        return MHD_YES;
    if (!r->started) {
        r->stream = r->blen && memmem(r->body, r->blen, "\"stream\":true", 13);
        if ((raw_client && !r->stream ? raw_start(r) : start(r)) < 0)
            return MHD_NO;
    }
    if (r->done || (r->stream && r->olen))
        return answer(r);
    r->suspended = true;
    MHD_suspend_connection(conn);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct req *r = *ctx;
    if (!r)
        return;
    release(r); /* a client that left: the upstream transfer goes too */
    if (r->raw_fd >= 0)
        raw_drop(r->w, r->raw_fd);
    free(r->body);
    free(r->out);
    free(r);
    *ctx = NULL;
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct worker *w = userp;
    if (s < 0 || s >= MAX_FDS)
        return -1;
    if (what == CURL_POLL_REMOVE) {
        w->wanted[s] = false; /* left in the set until it next reports */
        return 0;
    }
    uint32_t ev = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    w->wanted[s] = true;
    if (w->in_epoll[s] == ev)
        return 0;
    struct epoll_event e = {.events = ev, .data.u64 = (uint64_t)s + 1};
    int op = w->in_epoll[s] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(w->epfd, op, s, &e) < 0 &&
        epoll_ctl(w->epfd, op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &e) < 0)
        return -1;
    w->in_epoll[s] = ev;
    return 0;
}

static int on_close_socket(void *clientp, curl_socket_t s)
{
    struct worker *w = clientp;
    if (s >= 0 && s < MAX_FDS)
        w->in_epoll[s] = 0, w->wanted[s] = false;
    return close(s);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct worker *w = userp;
    w->curl_deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    return 0;
}

static int listen_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 1024) < 0) {
        perror("floor_proxy: listen");
        exit(1);
    }
    return fd;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->curl_deadline = -1;
    w->multi = curl_multi_init();
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, 256L);
    w->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO, 0, NULL, NULL, on_access, w,
        MHD_OPTION_LISTEN_SOCKET, listen_socket(), MHD_OPTION_NOTIFY_COMPLETED, on_completed, w,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(MAX_FDS / 2), MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        w->daemon ? MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info) {
        fprintf(stderr, "floor_proxy: libmicrohttpd did not start\n");
        exit(1);
    }
    struct epoll_event me = {.events = EPOLLIN, .data.u64 = 0};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, info->epoll_fd, &me);
    struct epoll_event evs[MAX_EVENTS];
    while (!stopping) {
        long long now = now_ms(), until = now + 1000;
        MHD_UNSIGNED_LONG_LONG t;
        if (w->curl_deadline >= 0 && w->curl_deadline < until)
            until = w->curl_deadline;
        if (MHD_get_timeout(w->daemon, &t) == MHD_YES && now + (long long)t < until)
            until = now + (long long)t;
        int n = epoll_wait(w->epfd, evs, MAX_EVENTS,
                           w->mhd_due || until <= now ? 0 : (int)(until - now));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == 0) {
                w->mhd_due = true;
                continue;
            }
            if (evs[i].data.u64 & RAW_TAG) {
                raw_event(w, (int)(evs[i].data.u64 & ~RAW_TAG));
                continue;
            }
            int fd = (int)(evs[i].data.u64 - 1), mask = 0, running;
            if (!w->wanted[fd]) {
                epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
                w->in_epoll[fd] = 0;
                continue;
            }
            mask |= evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0;
            mask |= evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0;
            mask |= evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0;
            curl_multi_socket_action(w->multi, fd, mask, &running);
        }
        if (w->curl_deadline >= 0 && now_ms() >= w->curl_deadline)
            kick(w);
        collect(w);
        /* as gateway/event/worker.c run_mhd: a few rounds while MHD has
         * work without I/O (a response just sent, a resumed connection) */
        for (int round = 0; round < 4; round++) {
            if (!w->mhd_due && !(MHD_get_timeout(w->daemon, &t) == MHD_YES && t == 0))
                break;
            w->mhd_due = false;
            MHD_run(w->daemon);
        }
    }
    MHD_stop_daemon(w->daemon);
    return NULL;
}

/* A decimal in 1..65535 at the start of s (what follows it ignored), or 0. */
static int number(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return end != s && v > 0 && v <= 65535 ? (int)v : 0;
}

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

int main(int argc, char **argv)
{
    int workers = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = number(argv[i + 1]);
        else if (strcmp(argv[i], "--upstream") == 0)
            upstream = argv[i + 1];
        else if (strcmp(argv[i], "--workers") == 0)
            workers = number(argv[i + 1]);
        else if (strcmp(argv[i], "--client") == 0)
            raw_client = strcmp(argv[i + 1], "raw") == 0;
    }
    if (!port || !upstream || workers < 1 || workers > 64) {
        fprintf(stderr,
                "usage: floor_proxy --port P --upstream http://127.0.0.1:Q [--workers N]\n");
        return 2;
    }
    /* two sockets per stream, as many as the hard limit allows (as the gateway does) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(upstream_text, sizeof upstream_text, "%s/v1/chat/completions", upstream);
    upstream_url = curl_url();
    if (curl_url_set(upstream_url, CURLUPART_URL, upstream_text, 0) != CURLUE_OK) {
        fprintf(stderr, "floor_proxy: bad --upstream %s\n", upstream);
        return 2;
    }
    const char *hp = strncmp(upstream, "http://127.0.0.1:", 17) == 0 ? upstream + 17 : NULL;
    if (raw_client && !hp) {
        fprintf(stderr, "floor_proxy: --client raw needs --upstream http://127.0.0.1:PORT\n");
        return 2;
    }
    if (hp) {
        upstream_addr.sin_family = AF_INET;
        upstream_addr.sin_port = htons((uint16_t)number(hp));
        upstream_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        snprintf(raw_head, sizeof raw_head,
                 "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n"
                 "Content-Type: application/json\r\nContent-Length: ",
                 hp);
    }
    headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    pthread_t th[64];
    struct worker *ws = calloc((size_t)workers, sizeof *ws);
    if (!ws)
        return 1;
    for (int i = 0; i < workers; i++)
        pthread_create(&th[i], NULL, worker_main, &ws[i]);
    printf("{\"port\":%d}\n", port);
    fflush(stdout);
    for (int i = 0; i < workers; i++)
        pthread_join(th[i], NULL);
    return 0;
}
