/* An open-loop load generator for streamed chat requests, for tests/bench/run.sh
 * scenarios (d) and (e). One thread, one epoll, non-blocking sockets.
 *
 *   paced --port N [--path /v1/chat/completions] [--format sse|ndjson]
 *         [--tokens 8] [--model llama3.2] [--timeout-s 30] [--progress]
 *     rate mode (the default):
 *         [--rate 1000] [--duration-s 10] [--warmup-s 2] [--connections 1000]
 *     hold mode:
 *         --streams N [--ramp-ms 5000]
 *
 * Rate mode sends request i at start + i/rate, whatever the answers do (an
 * open loop: a slow answer does not delay the next request, so a stall shows
 * up in the latencies instead of hiding as a lower request rate, the
 * "coordinated omission" of closed-loop tools such as wrk). Requests go out on
 * a pool of keep-alive connections, opened as needed up to --connections;
 * when all are busy a request waits for one, and that wait counts, because
 * every latency is measured from the request's scheduled send time. Requests
 * scheduled in the first --warmup-s seconds are sent but not measured.
 *
 * Hold mode opens --streams requests, evenly spread over --ramp-ms, each on a
 * connection of its own that is closed when its stream ends, so that all of
 * them can be open at once (scenario (e)).
 *
 * Every answer is checked: status 200, exactly --tokens content deltas
 * " w0" ... " w<N-1>" in order (what tests/bench/cfake sends), and the end
 * marker (SSE "data: [DONE]", NDJSON "done":true). Time to first token is
 * scheduled send -> first line carrying content; total is scheduled send ->
 * the end of the response. Connects to 127.0.0.1 only. Prints one JSON line
 * on stdout:
 *   {"mode":"rate","scheduled":..,"measured":..,"ok":..,"failed":..,"tokens":..,
 *    "expected_tokens":..,"ttft_ms":{"p50":..,"p90":..,"p99":..,"p99.9":..,"max":..},
 *    "total_ms":{..},"send_lag_ms":{"p50":..,"p99":..,"max":..},"peak_open":..,
 *    "peak_connections":..,"wall_ms":..,"errors":{"<reason>":count}}
 * Exit status: 0 when every measured request was answered correctly, 1 when
 * one was not, 2 on bad usage or a local failure. Test-only, never installed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 2048      /* response head; the proxies' are about 250 bytes */
#define BODY_LINE_MAX 1024 /* kept of one body line: the content field comes early */
#define READ_SIZE 65536
#define MAX_REQUESTS 10000000 /* bound on one run's schedule */
#define MAX_REASONS 32

enum state { S_CONNECTING, S_SENDING, S_WAITING, S_IDLE };
enum body { B_CHUNKED, B_LENGTH, B_EOF };
enum chunk { CH_SIZE, CH_EXT, CH_DATA, CH_DATA_END, CH_TRAILER };

struct conn {
    int fd;
    enum state state;
    size_t pos;      /* index in g_conns */
    size_t idle_pos; /* index in g_idle + 1; 0 = not idle */
    int want_out;    /* EPOLLOUT registered */
    int used;        /* has carried a request before the current one */
    /* the request in flight (req < 0: none) */
    long req;
    size_t sent;
    int got_bytes;
    /* the response */
    int in_body;
    char head[HEAD_MAX];
    size_t head_len;
    int status;
    int keep_alive;
    enum body body;
    unsigned long long remaining; /* B_LENGTH: body bytes; B_CHUNKED: of this chunk */
    enum chunk chunk;
    int trailer_empty; /* B_CHUNKED trailer: the current line is empty so far */
    char line[BODY_LINE_MAX];
    size_t line_len;
    int tokens;
    int ended;
    int counted_open;
    const char *bad; /* first thing wrong with this answer */
};

/* options */
static int o_port;
static const char *o_path = "/v1/chat/completions";
static int o_sse = 1;
static int o_tokens = 8;
static const char *o_model = "llama3.2";
static double o_rate = 1000;
static double o_duration_s = 10;
static double o_warmup_s = 2;
static long o_connections = 1000;
static long o_streams; /* > 0: hold mode */
static double o_ramp_ms = 5000;
static double o_timeout_s = 30;
static int o_progress;

/* the schedule */
static long g_total;     /* requests to send */
static long g_first;     /* first measured request */
static double g_gap_ns;  /* between scheduled sends */
static uint64_t g_start; /* monotonic ns of request 0 */
static long g_next;      /* next request to send (all before it were sent) */

/* per request, in ms (NAN: not reached) */
static double *g_ttft, *g_total_ms, *g_lag;
static unsigned char *g_ok;

static struct conn **g_conns;
static size_t g_nconns, g_peak_conns;
static struct conn **g_idle;
static size_t g_nidle;
static long g_inflight, g_open, g_peak_open;
static long g_done; /* requests finished, well or not */
static long long g_tokens_got;
static int g_ep, g_tfd;
static char *g_request;
static size_t g_request_len;

static struct {
    char name[64];
    long count;
} g_reasons[MAX_REASONS];
static long g_warmup_failed;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("paced: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t sched_ns(long i)
{
    return g_start + (uint64_t)llround((double)i * g_gap_ns);
}

static double ms_since(uint64_t t0, uint64_t t1)
{
    return t1 >= t0 ? (double)(t1 - t0) / 1e6 : 0;
}

static void count_reason(const char *why)
{
    for (int i = 0; i < MAX_REASONS; i++) {
        if (!g_reasons[i].name[0])
            snprintf(g_reasons[i].name, sizeof g_reasons[i].name, "%s", why);
        if (!strcmp(g_reasons[i].name, why)) {
            g_reasons[i].count++;
            return;
        }
    }
    /* more distinct reasons than slots: lump the rest together */
    snprintf(g_reasons[MAX_REASONS - 1].name, sizeof g_reasons[0].name, "other");
    g_reasons[MAX_REASONS - 1].count++;
}

static void watch(struct conn *c, int out)
{
    if (c->want_out == out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = out;
}

static void idle_remove(struct conn *c)
{
    if (!c->idle_pos)
        return;
    struct conn *last = g_idle[--g_nidle];
    g_idle[c->idle_pos - 1] = last;
    last->idle_pos = c->idle_pos;
    c->idle_pos = 0;
}

static void conn_close(struct conn *c)
{
    idle_remove(c);
    close(c->fd); /* also takes it out of the epoll set */
    struct conn *last = g_conns[--g_nconns];
    g_conns[c->pos] = last;
    last->pos = c->pos;
    free(c);
}

/* The request on c is over: record it, and free the connection or close it. */
static void finish(struct conn *c, const char *why, uint64_t now)
{
    long i = c->req;
    if (c->counted_open)
        g_open--;
    c->counted_open = 0;
    g_inflight--;
    g_done++;
    if (!why && c->status != 200)
        why = "status";
    if (!why && c->tokens != o_tokens)
        why = c->tokens < o_tokens ? "missing tokens" : "extra tokens";
    if (!why && !c->ended)
        why = "no end marker";
    if (i >= g_first) {
        g_tokens_got += c->tokens;
        if (why) {
            char name[64];
            if (!strcmp(why, "status"))
                snprintf(name, sizeof name, "status %d", c->status);
            else
                snprintf(name, sizeof name, "%s", why);
            count_reason(name);
        } else {
            g_ok[i - g_first] = 1;
            g_total_ms[i - g_first] = ms_since(sched_ns(i), now);
        }
    } else if (why) {
        g_warmup_failed++;
    }
    c->req = -1;
    if (why || !c->keep_alive || o_streams > 0) {
        conn_close(c);
        return;
    }
    c->state = S_IDLE;
    c->used = 1;
    watch(c, 0);
    g_idle[g_nidle++] = c;
    c->idle_pos = g_nidle;
}

static void send_more(struct conn *c, uint64_t now)
{
    while (c->sent < g_request_len) {
        ssize_t n = send(c->fd, g_request + c->sent, g_request_len - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            watch(c, 1);
            return;
        }
        finish(c, "send failed", now);
        return;
    }
    c->state = S_WAITING;
    watch(c, 0);
}

/* Put request i on connection c (idle, or just connected). */
static void start_request(struct conn *c, long i, uint64_t now)
{
    c->req = i;
    c->sent = 0;
    c->got_bytes = 0;
    c->in_body = 0;
    c->head_len = 0;
    c->status = 0;
    c->keep_alive = 1;
    c->line_len = 0;
    c->tokens = 0;
    c->ended = 0;
    c->counted_open = 0;
    c->bad = NULL;
    if (i >= g_first)
        g_lag[i - g_first] = ms_since(sched_ns(i), now);
    c->state = S_SENDING;
    send_more(c, now);
}

/* A new connection for request i; returns 0 when it could not even start. */
static int open_conn(long i, uint64_t now)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        die("out of memory");
    c->fd = fd;
    c->req = i;
    c->pos = g_nconns;
    g_conns[g_nconns++] = c;
    if (g_nconns > g_peak_conns)
        g_peak_conns = g_nconns;
    g_inflight++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->want_out = 1;
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        finish(c, "connect failed", now);
        return 1;
    }
    c->state = S_CONNECTING;
    return 1;
}

/* Send every request that is due and has a connection to go on. */
static void dispatch(uint64_t now)
{
    while (g_next < g_total && sched_ns(g_next) <= now) {
        if (g_nidle > 0) {
            struct conn *c = g_idle[g_nidle - 1];
            idle_remove(c);
            g_inflight++;
            start_request(c, g_next++, now);
        } else if ((long)g_nconns < o_connections) {
            long i = g_next++;
            if (!open_conn(i, now)) {
                /* out of file descriptors or memory: count it, do not retry */
                if (i >= g_first)
                    count_reason("socket failed");
                else
                    g_warmup_failed++;
                g_done++;
            }
        } else {
            return; /* all connections busy: it waits, and the wait counts */
        }
    }
}

static void arm_timer(void)
{
    static long armed_for = -1;
    if (armed_for == g_next)
        return; /* one timerfd_settime per scheduled send, not per wake-up */
    armed_for = g_next;
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (g_next < g_total) {
        uint64_t t = sched_ns(g_next);
        its.it_value.tv_sec = (time_t)(t / 1000000000u);
        its.it_value.tv_nsec = (long)(t % 1000000000u);
        if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
            its.it_value.tv_nsec = 1;
    }
    if (timerfd_settime(g_tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        die("timerfd_settime: %s", strerror(errno));
}

/* ---- the response ---- */

/* The content of a JSON line's first "content":"..." (NULL: none). The
 * fake's tokens have no escapes; a backslash would only make a mismatch. */
static const char *content_of(const char *s, size_t n, size_t *len)
{
    static const char key[] = "\"content\":\"";
    const char *p = memmem(s, n, key, sizeof key - 1);
    if (!p)
        return NULL;
    p += sizeof key - 1;
    const char *q = memchr(p, '"', (size_t)(s + n - p));
    if (!q)
        return NULL;
    *len = (size_t)(q - p);
    return p;
}

static void body_line(struct conn *c, const char *s, size_t n, uint64_t now)
{
    if (n && s[n - 1] == '\r')
        n--;
    if (c->status != 200 || c->bad)
        return;
    if (o_sse) {
        if (n < 5 || memcmp(s, "data:", 5))
            return; /* blank lines between events, comments, other fields */
        s += 5, n -= 5;
        if (n && *s == ' ')
            s++, n--;
        if (n == 6 && !memcmp(s, "[DONE]", 6)) {
            c->ended = 1;
            return;
        }
    } else if (!n) {
        return;
    }
    if (c->ended) {
        c->bad = "data after the end marker";
        return;
    }
    if (n >= 8 && !memcmp(s, "{\"error\"", 8)) {
        c->bad = "error event";
        return;
    }
    size_t len = 0;
    const char *t = content_of(s, n, &len);
    if (t && len > 0) {
        char want[32];
        int wl = snprintf(want, sizeof want, " w%d", c->tokens);
        if ((size_t)wl != len || memcmp(t, want, len)) {
            c->bad = "token out of order";
            return;
        }
        if (c->tokens == 0 && c->req >= g_first)
            g_ttft[c->req - g_first] = ms_since(sched_ns(c->req), now);
        c->tokens++;
    }
    if (!o_sse && memmem(s, n, "\"done\":true", 11))
        c->ended = 1;
}

/* Body bytes after the transfer coding is removed: split into lines. */
static void body_bytes(struct conn *c, const char *p, size_t n, uint64_t now)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        size_t room = BODY_LINE_MAX - c->line_len;
        memcpy(c->line + c->line_len, p, take < room ? take : room);
        c->line_len += take < room ? take : room;
        if (!nl)
            return;
        body_line(c, c->line, c->line_len, now);
        c->line_len = 0;
        p += take + 1;
        n -= take + 1;
    }
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Chunked transfer coding; returns 1 at the end of the body, -1 on garbage. */
static int dechunk(struct conn *c, const char *p, size_t n, uint64_t now)
{
    size_t i = 0;
    while (i < n) {
        char ch = p[i];
        switch (c->chunk) {
        case CH_SIZE:
            if (hexval(ch) >= 0) {
                if (c->remaining > (1ull << 40))
                    return -1;
                c->remaining = c->remaining * 16 + (unsigned)hexval(ch);
            } else if (ch == '\n') {
                c->chunk = c->remaining ? CH_DATA : CH_TRAILER;
                c->trailer_empty = 1;
            } else if (ch == ';' || ch == '\r' || ch == ' ') {
                c->chunk = CH_EXT;
            } else {
                return -1;
            }
            i++;
            break;
        case CH_EXT:
            if (ch == '\n') {
                c->chunk = c->remaining ? CH_DATA : CH_TRAILER;
                c->trailer_empty = 1;
            }
            i++;
            break;
        case CH_DATA: {
            size_t take = n - i;
            if (take > c->remaining)
                take = (size_t)c->remaining;
            body_bytes(c, p + i, take, now);
            c->remaining -= take;
            i += take;
            if (!c->remaining)
                c->chunk = CH_DATA_END;
            break;
        }
        case CH_DATA_END: /* the CRLF after a chunk's data */
            if (ch == '\n')
                c->chunk = CH_SIZE;
            else if (ch != '\r')
                return -1;
            i++;
            break;
        case CH_TRAILER: /* trailer fields, then an empty line */
            i++;
            if (ch == '\n') {
                if (c->trailer_empty) {
                    if (i != n)
                        c->bad = "bytes after the response";
                    return 1;
                }
                c->trailer_empty = 1;
            } else if (ch != '\r') {
                c->trailer_empty = 0;
            }
            break;
        }
    }
    return 0;
}

/* Parse the head once it is complete; returns the offset of the body, or 0. */
static size_t parse_head(struct conn *c)
{
    char *end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t body_at = (size_t)(end - c->head) + 4;
    *end = '\0';
    if (strncmp(c->head, "HTTP/1.1 ", 9) && strncmp(c->head, "HTTP/1.0 ", 9)) {
        c->bad = "not HTTP";
        return body_at;
    }
    c->status = (int)strtol(c->head + 9, NULL, 10);
    c->keep_alive = c->head[7] == '1';
    c->body = B_EOF;
    for (char *line = strstr(c->head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (!strncasecmp(line, "content-length:", 15)) {
            c->body = B_LENGTH;
            c->remaining = strtoull(line + 15, NULL, 10);
        } else if (!strncasecmp(line, "transfer-encoding:", 18)) {
            if (strcasestr(line, "chunked"))
                c->body = B_CHUNKED;
        } else if (!strncasecmp(line, "connection:", 11)) {
            char *v = line + 11;
            while (*v == ' ')
                v++;
            if (!strncasecmp(v, "close", 5))
                c->keep_alive = 0;
        }
    }
    if (c->body == B_CHUNKED) {
        c->remaining = 0;
        c->chunk = CH_SIZE;
    }
    if (c->body == B_EOF)
        c->keep_alive = 0;
    if (c->status == 200) {
        c->counted_open = 1;
        if (++g_open > g_peak_open)
            g_peak_open = g_open;
    }
    return body_at;
}

/* Bytes from the socket; returns 1 when the response is complete. */
static int response_bytes(struct conn *c, const char *p, size_t n, uint64_t now)
{
    if (!c->in_body) {
        size_t room = HEAD_MAX - 1 - c->head_len;
        size_t take = n < room ? n : room;
        memcpy(c->head + c->head_len, p, take);
        size_t before = c->head_len;
        c->head_len += take;
        size_t body_at = parse_head(c);
        if (!body_at) {
            if (c->head_len == HEAD_MAX - 1)
                c->bad = "response head too long";
            return c->bad != NULL;
        }
        if (c->bad)
            return 1;
        c->in_body = 1;
        p += body_at - before;
        n -= body_at - before;
        if (c->body == B_LENGTH && c->remaining == 0)
            return 1;
    }
    if (c->body == B_CHUNKED) {
        int r = dechunk(c, p, n, now);
        if (r < 0)
            c->bad = "bad chunked coding";
        return r != 0;
    }
    if (c->body == B_LENGTH) {
        size_t take = n < c->remaining ? n : (size_t)c->remaining;
        body_bytes(c, p, take, now);
        c->remaining -= take;
        if (take < n)
            c->bad = "bytes after the response";
        return c->remaining == 0;
    }
    body_bytes(c, p, n, now);
    return 0;
}

static void on_readable(struct conn *c, uint64_t now)
{
    static char buf[READ_SIZE];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (c->req < 0) {
        /* idle: the server closed it (or sent something unasked) */
        conn_close(c);
        return;
    }
    if (n < 0) {
        finish(c, c->got_bytes ? "reset mid-answer" : "reset before the answer", now);
        return;
    }
    if (n == 0) {
        if (c->in_body && c->body == B_EOF) {
            if (c->line_len)
                body_line(c, c->line, c->line_len, now);
            finish(c, c->bad, now);
        } else {
            finish(c,
                   c->got_bytes ? "closed mid-answer"
                   : c->used    ? "keep-alive connection closed"
                                : "closed before the answer",
                   now);
        }
        return;
    }
    c->got_bytes = 1;
    if (response_bytes(c, buf, (size_t)n, now))
        finish(c, c->bad, now);
}

static void on_event(struct conn *c, uint32_t events, uint64_t now)
{
    if (c->state == S_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            finish(c, "connect failed", now);
            return;
        }
        start_request(c, c->req, now); /* counted in flight by open_conn already */
        return;
    }
    if (c->state == S_SENDING && (events & EPOLLOUT)) {
        send_more(c, now);
        if (c->req < 0)
            return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(c, now);
}

/* ---- the report ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Percentiles of the values that are not NAN, as a JSON object. */
static void print_pcts(const char *name, const double *v, long n, int all)
{
    double *s = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!s)
        die("out of memory");
    long k = 0;
    for (long i = 0; i < n; i++)
        if (!isnan(v[i]))
            s[k++] = v[i];
    qsort(s, (size_t)k, sizeof *s, cmp_double);
    static const double ps[] = {50, 90, 99, 99.9};
    static const char *const names[] = {"p50", "p90", "p99", "p99.9"};
    printf("\"%s\":{", name);
    for (int j = 0; j < 4; j++) {
        if (!all && j != 0 && j != 2)
            continue;
        /* nearest rank, like slow_streams.mjs */
        long r = (long)ceil(ps[j] / 100 * (double)k) - 1;
        if (r < 0)
            r = 0;
        if (k)
            printf("\"%s\":%.3f,", names[j], s[r]);
        else
            printf("\"%s\":null,", names[j]);
    }
    if (k)
        printf("\"max\":%.3f,\"n\":%ld}", s[k - 1], k);
    else
        printf("\"max\":null,\"n\":0}");
    free(s);
}

static void report(uint64_t t_end)
{
    long measured = g_total - g_first, ok = 0;
    for (long i = 0; i < measured; i++)
        ok += g_ok[i];
    printf("{\"mode\":\"%s\",\"rate\":%.1f,\"scheduled\":%ld,\"measured\":%ld,\"ok\":%ld,"
           "\"failed\":%ld,\"warmup_failed\":%ld,\"tokens\":%lld,\"expected_tokens\":%lld,",
           o_streams > 0 ? "hold" : "rate", 1e9 / g_gap_ns, g_total, measured, ok, measured - ok,
           g_warmup_failed, g_tokens_got, (long long)measured * o_tokens);
    print_pcts("ttft_ms", g_ttft, measured, 1);
    putchar(',');
    print_pcts("total_ms", g_total_ms, measured, 1);
    putchar(',');
    print_pcts("send_lag_ms", g_lag, measured, 0);
    printf(",\"peak_open\":%ld,\"peak_connections\":%zu,\"wall_ms\":%.0f,\"measured_s\":%.3f,"
           "\"errors\":{",
           g_peak_open, g_peak_conns, ms_since(g_start, t_end), (double)measured * g_gap_ns / 1e9);
    int first = 1;
    for (int i = 0; i < MAX_REASONS && g_reasons[i].name[0]; i++) {
        printf("%s\"%s\":%ld", first ? "" : ",", g_reasons[i].name, g_reasons[i].count);
        first = 0;
    }
    printf("}}\n");
    fflush(stdout);
}

/* ---- main ---- */

static double num(const char *opt, const char *v, double lo, double hi)
{
    char *end;
    if (!v)
        die("%s needs a value", opt);
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= lo && d <= hi))
        die("%s: '%s' is not a number from %g to %g", opt, v, lo, hi);
    return d;
}

static void usage(void)
{
    puts("usage: paced --port N [--path P] [--format sse|ndjson] [--tokens 8] [--model M]\n"
         "             [--timeout-s 30] [--progress]\n"
         "             [--rate 1000 --duration-s 10 --warmup-s 2 --connections 1000]\n"
         "             | --streams N [--ramp-ms 5000]");
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--progress")) {
            o_progress = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            exit(0);
        }
        i++;
        if (!strcmp(a, "--port"))
            o_port = (int)num(a, v, 1, 65535);
        else if (!strcmp(a, "--path") && v)
            o_path = v;
        else if (!strcmp(a, "--format") && v && (!strcmp(v, "sse") || !strcmp(v, "ndjson")))
            o_sse = !strcmp(v, "sse");
        else if (!strcmp(a, "--tokens"))
            o_tokens = (int)num(a, v, 1, 1000000);
        else if (!strcmp(a, "--model") && v)
            o_model = v;
        else if (!strcmp(a, "--rate"))
            o_rate = num(a, v, 0.001, 1e7);
        else if (!strcmp(a, "--duration-s"))
            o_duration_s = num(a, v, 0.001, 86400);
        else if (!strcmp(a, "--warmup-s"))
            o_warmup_s = num(a, v, 0, 86400);
        else if (!strcmp(a, "--connections"))
            o_connections = (long)num(a, v, 1, 1000000);
        else if (!strcmp(a, "--streams"))
            o_streams = (long)num(a, v, 1, 1000000);
        else if (!strcmp(a, "--ramp-ms"))
            o_ramp_ms = num(a, v, 0, 3.6e6);
        else if (!strcmp(a, "--timeout-s"))
            o_timeout_s = num(a, v, 0.001, 86400);
        else
            die("bad argument '%s' (--help lists them)", a);
    }
    if (!o_port)
        die("--port is required");
    if (strlen(o_model) > 200 || strpbrk(o_model, "\"\\") || strlen(o_path) > 200 ||
        o_path[0] != '/' || strpbrk(o_path, " \r\n"))
        die("--model or --path is not usable in a request");
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);

    if (o_streams > 0) {
        g_total = o_streams;
        g_first = 0;
        g_gap_ns = o_ramp_ms * 1e6 / (double)o_streams;
        o_connections = o_streams;
    } else {
        double warm = floor(o_rate * o_warmup_s), all = floor(o_rate * (o_warmup_s + o_duration_s));
        if (all > MAX_REQUESTS || all - warm < 1)
            die("--rate x --duration-s must give 1 to %d requests", MAX_REQUESTS);
        g_total = (long)all;
        g_first = (long)warm;
        g_gap_ns = 1e9 / o_rate;
    }
    long measured = g_total - g_first;
    g_ttft = malloc(sizeof(double) * (size_t)measured);
    g_total_ms = malloc(sizeof(double) * (size_t)measured);
    g_lag = malloc(sizeof(double) * (size_t)measured);
    g_ok = calloc((size_t)measured, 1);
    g_conns = calloc((size_t)o_connections, sizeof *g_conns);
    g_idle = calloc((size_t)o_connections, sizeof *g_idle);
    if (!g_ttft || !g_total_ms || !g_lag || !g_ok || !g_conns || !g_idle)
        die("out of memory");
    for (long i = 0; i < measured; i++)
        g_ttft[i] = g_total_ms[i] = g_lag[i] = NAN;

    char body[512];
    int bl = snprintf(body, sizeof body,
                      "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"Say something.\"}]}",
                      o_model);
    if (asprintf(&g_request,
                 "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                 "Accept: %s\r\nContent-Length: %d\r\n\r\n%s",
                 o_path, o_port, o_sse ? "text/event-stream" : "application/x-ndjson", bl,
                 body) < 0)
        die("out of memory");
    g_request_len = strlen(g_request);

    g_ep = epoll_create1(EPOLL_CLOEXEC);
    g_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (g_ep < 0 || g_tfd < 0)
        die("epoll/timerfd: %s", strerror(errno));
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, g_tfd, &tev) < 0)
        die("epoll_ctl: %s", strerror(errno));

    g_start = now_ns() + 10000000u; /* 10 ms from now: the first sends are on time */
    uint64_t schedule_end = sched_ns(g_total);
    /* Bounded: after the last scheduled send, every request has --timeout-s to
     * finish; what is still open 5 s after that is a timeout. */
    uint64_t hard_stop = schedule_end + (uint64_t)(o_timeout_s * 1e9) + 5000000000u;
    uint64_t timeout_ns = (uint64_t)(o_timeout_s * 1e9);
    uint64_t next_scan = g_start, next_progress = g_start + 2000000000u;
    struct epoll_event evs[256];
    arm_timer();

    for (;;) {
        uint64_t now = now_ns();
        if (g_next >= g_total && g_inflight == 0)
            break;
        if (now >= hard_stop) {
            while (g_nconns > 0) {
                struct conn *c = g_conns[g_nconns - 1];
                if (c->req >= 0)
                    finish(c, "timeout", now);
                else
                    conn_close(c);
            }
            for (; g_next < g_total; g_next++)
                count_reason("not sent");
            break;
        }
        int n = epoll_wait(g_ep, evs, 256, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        now = now_ns();
        for (int i = 0; i < n; i++) {
            if (!evs[i].data.ptr) {
                uint64_t expirations;
                if (read(g_tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
                    die("timerfd read: %s", strerror(errno));
                continue;
            }
            on_event(evs[i].data.ptr, evs[i].events, now);
        }
        /* Sends come after the events, so a connection freed by this round's
         * answers carries the next due request. (An event closes only its own
         * connection, and connections are opened only here, after the round:
         * no event of this round can name a freed connection.) */
        dispatch(now_ns());
        arm_timer();
        if (now >= next_scan) {
            next_scan = now + 100000000u;
            for (size_t k = 0; k < g_nconns;) {
                struct conn *c = g_conns[k];
                if (c->req >= 0 && now > sched_ns(c->req) + timeout_ns) {
                    finish(c, "timeout", now); /* closes c: slot k now holds another */
                    continue;
                }
                k++;
            }
        }
        if (o_progress && now >= next_progress) {
            next_progress = now + 2000000000u;
            fprintf(stderr, "  paced: %ld/%ld sent, %ld done, %ld in flight, %ld open streams\n",
                    g_next, g_total, g_done, g_inflight, g_open);
        }
    }
    uint64_t t_end = now_ns();
    report(t_end);
    long ok = 0;
    for (long i = 0; i < measured; i++)
        ok += g_ok[i];
    return ok == measured ? 0 : 1;
}
