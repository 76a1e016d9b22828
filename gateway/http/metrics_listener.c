#include "metrics_listener.h"

#include "buf.h"
#include "clock.h"
#include "exposition.h"
#include "log.h"
#include "metrics.h"
#include "mhd_glue.h"
#include "status.h"

#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNECTIONS 64 /* scrapers and browsers, not clients */
/* One address (a browser holds about 6, a Prometheus one per target) cannot
 * take every slot: idle connections held open from one place (a slowloris,
 * a leaking client) would otherwise shut every scraper out for good, each
 * slot given back by IDLE_TIMEOUT_S only to be taken again. */
#define MAX_PER_ADDRESS 16
#define IDLE_TIMEOUT_S 30
#define EXPOSITION_MAX (64u << 20)
#define STATUS_JSON_MAX (16u << 20)
#define SAMPLE_MS 1000 /* the status page's history: one sample a second */

struct metrics_listener {
    struct metrics *m; /* borrowed */
    unsigned nworkers;
    bool loopback; /* listening on a loopback address: see host_allowed */
    struct MHD_Daemon *d;
    int stop_fd; /* eventfd: written by metrics_listener_stop */
    pthread_t thread;
    struct status_history history; /* the thread's own */
    char csp[256];                 /* the status page's policy (status_page_csp) */
    int64_t next_sample;           /* monotonic ms */
};

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    mhd_glue_log("metrics listener: libmicrohttpd", fmt, ap);
}

/* What every answer here says: its type (never sniffed into another), and
 * that it is live, never to be cached. */
static void common_headers(struct MHD_Response *resp, const char *type)
{
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *type,
                              struct buf *body)
{
    size_t len = body->len;
    char *p = buf_detach(body, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, p ? p : (char *)"", p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(p);
        return MHD_NO;
    }
    common_headers(resp, type);
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status, const char *msg)
{
    struct buf b;
    buf_init(&b, 4096);
    buf_puts(&b, msg);
    enum MHD_Result rc = answer(conn, status, "text/plain; charset=utf-8", &b);
    buf_free(&b);
    return rc;
}

/* A document written afresh for each GET or HEAD: write fills b, at most max
 * bytes; what names it in the answer when memory runs out. */
static enum MHD_Result document(struct metrics_listener *l, struct MHD_Connection *conn, bool get,
                                size_t max, int (*write)(struct metrics_listener *, struct buf *),
                                const char *type, const char *what)
{
    if (!get)
        return text(conn, 405, "Only GET is allowed here.\n");
    struct buf b;
    buf_init(&b, max);
    enum MHD_Result rc;
    if (write(l, &b) < 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "The %s could not be written (out of memory).\n", what);
        rc = text(conn, 500, msg);
    } else {
        rc = answer(conn, 200, type, &b);
    }
    buf_free(&b);
    return rc;
}

static int write_metrics(struct metrics_listener *l, struct buf *b)
{
    return exposition_write(l->m, l->nworkers, b);
}

static int write_status(struct metrics_listener *l, struct buf *b)
{
    return status_json(&l->history, l->m, l->nworkers, b);
}

/*
 * A listener on loopback is reached by name only as "localhost": any other
 * name in Host is a web page's own host name pointed at 127.0.0.1 (DNS
 * rebinding), for which the browser would let that page read the answers
 * (key names, backends, errors). IP literals cannot be rebound; a request
 * without Host (HTTP/1.0) is no browser's.
 */
static bool host_allowed(const struct metrics_listener *l, struct MHD_Connection *conn)
{
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    if (!l->loopback || !host)
        return true;
    size_t n = strlen(host);
    unsigned char ip[16];
    if (netaddr_ip_parse(host, n, ip))
        return true;
    const char *colon = strchr(host, ':');
    size_t name = colon ? (size_t)(colon - host) : n;
    return name == 9 && strncasecmp(host, "localhost", 9) == 0 &&
           (!colon || (colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    (void)version;
    (void)upload;
    struct metrics_listener *l = cls;
    static int seen;
    /* a body (nobody should send one) is read and dropped before answering */
    if (!*req_cls) {
        *req_cls = &seen;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (!host_allowed(l, conn))
        return text(conn, 403,
                    "This monitoring port listens on loopback and answers only to Host: "
                    "localhost or an IP address.\n");
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(url, "/metrics") == 0)
        return document(l, conn, get, EXPOSITION_MAX, write_metrics,
                        "text/plain; version=0.0.4; charset=utf-8", "metrics");
    if (strcmp(url, "/status.json") == 0)
        return document(l, conn, get, STATUS_JSON_MAX, write_status, "application/json", "status");
    if (strcmp(url, "/status") == 0) {
        if (!get)
            return text(conn, 405, "Only GET is allowed here.\n");
        struct MHD_Response *resp = MHD_create_response_from_buffer(
            status_page_html_len, (void *)status_page_html, MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        common_headers(resp, "text/html; charset=utf-8");
        /* the page is its own: nothing from elsewhere, no framing by others */
        MHD_add_response_header(resp, "Content-Security-Policy", l->csp);
        enum MHD_Result rc = MHD_queue_response(conn, 200, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    return text(conn, 404,
                "Not found. This is the gateway's monitoring port: GET /metrics (Prometheus), "
                "GET /status (a live page), GET /status.json.\n");
}

static void *run(void *arg)
{
    struct metrics_listener *l = arg;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
    int mfd = info ? info->epoll_fd : -1;
    for (;;) {
        int64_t now = now_ms();
        if (now >= l->next_sample) {
            status_sample(&l->history, l->m, now);
            l->next_sample = now + SAMPLE_MS;
        }
        struct pollfd p[2] = {{.fd = l->stop_fd, .events = POLLIN}, {.fd = mfd, .events = POLLIN}};
        int timeout = (int)(l->next_sample - now);
        MHD_UNSIGNED_LONG_LONG to;
        if (MHD_get_timeout(l->d, &to) == MHD_YES && to < (MHD_UNSIGNED_LONG_LONG)timeout)
            timeout = (int)to;
        int n = poll(p, mfd >= 0 ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR) {
            log_error_errno("metrics listener: poll");
            break;
        }
        if (n > 0 && (p[0].revents & POLLIN))
            break;
        MHD_run(l->d);
    }
    return NULL;
}

static int listen_on(const struct netaddr *a)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (netaddr_sockaddr(a, &ss, &len) < 0) {
        log_error("metrics.listen \"%s\" is not an IP address", a->host);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error_errno("metrics listener: socket");
        return -1;
    }
    /* No SO_REUSEPORT: a second gateway on the same port must fail here,
     * not take half of the scrapes. */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
        log_error_errno("cannot listen on %s (metrics.listen)", a->text);
        close(fd);
        return -1;
    }
    return fd;
}

struct metrics_listener *metrics_listener_start(const struct netaddr *addr, struct metrics *m,
                                                unsigned nworkers)
{
    struct metrics_listener *l = calloc(1, sizeof *l);
    if (!l) {
        log_error("metrics listener: out of memory");
        return NULL;
    }
    l->m = m;
    l->nworkers = nworkers;
    l->loopback = addr->loopback;
    if (status_page_csp(l->csp, sizeof l->csp) < 0) {
        log_error("metrics listener: the built-in status page has no <script> or <style>");
        free(l);
        return NULL;
    }
    l->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int fd = listen_on(addr);
    if (l->stop_fd < 0 || fd < 0)
        goto fail;
    l->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, l,
                            MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned)MAX_PER_ADDRESS, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, l,
                            MHD_OPTION_END);
    if (!l->d) {
        log_error("metrics listener: libmicrohttpd could not start on %s", addr->text);
        close(fd);
        goto fail;
    }
    if (pthread_create(&l->thread, NULL, run, l) != 0) {
        log_error("metrics listener: cannot start its thread");
        MHD_socket q = MHD_quiesce_daemon(l->d);
        MHD_stop_daemon(l->d);
        if (q != MHD_INVALID_SOCKET)
            close(q);
        goto fail;
    }
    log_info("metrics on http://%s/metrics, status page on http://%s/status", addr->text,
             addr->text);
    return l;
fail:
    if (l->stop_fd >= 0)
        close(l->stop_fd);
    free(l);
    return NULL;
}

void metrics_listener_stop(struct metrics_listener *l)
{
    if (!l)
        return;
    uint64_t one = 1;
    if (write(l->stop_fd, &one, sizeof one) < 0)
        log_warn_errno("metrics listener: eventfd");
    pthread_join(l->thread, NULL);
    /* A daemon on a socket we gave it does not close that socket. */
    MHD_socket fd = MHD_quiesce_daemon(l->d);
    MHD_stop_daemon(l->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    close(l->stop_fd);
    free(l);
}
