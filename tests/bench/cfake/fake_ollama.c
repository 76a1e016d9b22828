/* A fake Ollama for the benchmark (tests/bench/run.sh), in plain C so that it
 * outruns both proxies: one thread, one epoll, HTTP/1.1 keep-alive.
 *
 *   fake_ollama [--port N] [--tokens 32] [--delay-ms 0]
 *
 * prints {"port":N} once listening on 127.0.0.1 and answers, shaped exactly
 * like tests/fake_ollama/fake.mjs in its default scenario:
 *   POST /api/chat              native NDJSON stream, or one object ("stream":false)
 *   POST /v1/chat/completions   OpenAI SSE ("stream":true), or one object
 *   GET  /api/tags, /api/ps, /api/version, /v1/models, /
 * Each answer carries N tokens " w0" ... " w<N-1>"; with --delay-ms the
 * stream's lines are that far apart (a non-streamed answer waits as long as
 * its stream would have). The waits are one timerfd over a binary heap of
 * deadlines, so thousands of slow streams cost a heap entry each.
 * Not: request bodies in chunked encoding, pipelining, thinking models'
 * reasoning tokens, the scripted scenarios of fake.mjs. Test-only. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
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

#define IN_MAX (1 << 20) /* largest request (head + body) */

struct buf {
    char *p;
    size_t len, cap, off; /* off: already sent */
};

enum route { R_NATIVE, R_OPENAI };

struct conn {
    int fd;
    int open;
    int want_out; /* EPOLLOUT registered */
    int close_after;
    struct buf in;
    struct buf out;
    /* the answer being streamed (or the non-streamed one waiting) */
    int busy;
    enum route route;
    int stream;
    int usage;
    int next; /* next line to write: 0..tokens (tokens = the done line) */
    char model[256];
    size_t model_len;
    unsigned long id; /* chatcmpl-fake<id> */
    long created;
    struct buf pre; /* what every line of this answer starts with */
    size_t heap_at; /* index in the heap + 1; 0 = not waiting */
    uint64_t due_ns;
};

static int g_tokens = 32;
static long g_delay_ms;
static int g_ep;
static int g_tfd;
static struct conn **g_conns;
static size_t g_nconns;
static unsigned long g_oa_counter;
static struct conn **g_heap;
static size_t g_heap_len, g_heap_cap;
static volatile sig_atomic_t g_stop;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fake_ollama: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q)
        die("out of memory");
    return q;
}

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

static void buf_add(struct buf *b, const void *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void buf_fmt(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    buf_reserve(b, 256);
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("vsnprintf");
    if ((size_t)n >= b->cap - b->len) {
        buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* A whole number in decimal, without printf. */
static void buf_num(struct buf *b, unsigned long x)
{
    char t[24];
    size_t i = sizeof t;
    do {
        t[--i] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    buf_add(b, t + i, sizeof t - i);
}

/* A chunk of chunked transfer encoding: its size in hex, the data. */
static void buf_chunk(struct buf *b, const char *p, size_t n)
{
    char t[20];
    size_t i = sizeof t, x = n;
    t[--i] = '\n';
    t[--i] = '\r';
    do {
        t[--i] = "0123456789abcdef"[x & 15];
        x >>= 4;
    } while (x);
    buf_add(b, t + i, sizeof t - i);
    buf_add(b, p, n);
    buf_add(b, "\r\n", 2);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the deadline heap, one timerfd ---- */

static void heap_set(size_t i, struct conn *c)
{
    g_heap[i] = c;
    c->heap_at = i + 1;
}

static void heap_up(size_t i)
{
    struct conn *c = g_heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (g_heap[parent]->due_ns <= c->due_ns)
            break;
        heap_set(i, g_heap[parent]);
        i = parent;
    }
    heap_set(i, c);
}

static void heap_down(size_t i)
{
    struct conn *c = g_heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        uint64_t best = c->due_ns;
        if (l < g_heap_len && g_heap[l]->due_ns < best) {
            m = l;
            best = g_heap[l]->due_ns;
        }
        if (l + 1 < g_heap_len && g_heap[l + 1]->due_ns < best)
            m = l + 1;
        if (m == i)
            break;
        heap_set(i, g_heap[m]);
        i = m;
    }
    heap_set(i, c);
}

static void arm_timer(void)
{
    struct itimerspec its = {0};
    if (g_heap_len) {
        uint64_t due = g_heap[0]->due_ns;
        its.it_value.tv_sec = (time_t)(due / 1000000000u);
        its.it_value.tv_nsec = (long)(due % 1000000000u);
        if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
            its.it_value.tv_nsec = 1;
    }
    if (timerfd_settime(g_tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        die("timerfd_settime: %s", strerror(errno));
}

static void heap_push(struct conn *c, uint64_t due)
{
    int was_head = g_heap_len == 0 || due < g_heap[0]->due_ns;
    if (g_heap_len == g_heap_cap) {
        g_heap_cap = g_heap_cap ? g_heap_cap * 2 : 256;
        g_heap = xrealloc(g_heap, g_heap_cap * sizeof *g_heap);
    }
    c->due_ns = due;
    g_heap[g_heap_len] = c;
    heap_up(g_heap_len++);
    if (was_head)
        arm_timer();
}

static void heap_remove(struct conn *c)
{
    if (!c->heap_at)
        return;
    size_t i = c->heap_at - 1;
    c->heap_at = 0;
    struct conn *last = g_heap[--g_heap_len];
    if (i < g_heap_len) {
        heap_set(i, last);
        heap_up(i);
        heap_down(last->heap_at - 1);
    }
}

/* ---- time stamps, cached per second ---- */

static char g_date[40];    /* Date: header value */
static char g_rfc_sec[24]; /* 2026-12-07T05:23:27 */
static time_t g_cached_sec = -1;

static void refresh_time(struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
    if (ts->tv_sec == g_cached_sec)
        return;
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    strftime(g_date, sizeof g_date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    strftime(g_rfc_sec, sizeof g_rfc_sec, "%Y-%m-%dT%H:%M:%S", &tm);
    g_cached_sec = ts->tv_sec;
}

/* RFC 3339 with nanoseconds, UTC, like Go's time.Now().UTC() marshalled. */
static void add_created_at(struct buf *b)
{
    struct timespec ts;
    char ns[11];
    refresh_time(&ts);
    buf_str(b, g_rfc_sec);
    ns[0] = '.';
    for (int i = 9; i >= 1; i--, ts.tv_nsec /= 10)
        ns[i] = (char)('0' + ts.tv_nsec % 10);
    ns[10] = 'Z';
    buf_add(b, ns, sizeof ns);
}

static long unix_now(void)
{
    struct timespec ts;
    refresh_time(&ts);
    return (long)ts.tv_sec;
}

/* ---- connections ---- */

static void conn_events(struct conn *c, int out)
{
    if (c->want_out == out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = out;
}

static void conn_close(struct conn *c)
{
    heap_remove(c);
    close(c->fd); /* also leaves the epoll set */
    c->open = 0;
    c->busy = 0;
    c->in.len = c->out.len = c->out.off = 0;
    if (c->in.cap > 65536) {
        free(c->in.p);
        c->in = (struct buf){0};
    }
    if (c->out.cap > 65536) {
        free(c->out.p);
        c->out = (struct buf){0};
    }
}

/* Send what is queued. Returns 0, or -1 when the connection was closed. */
static int conn_flush(struct conn *c)
{
    while (c->out.off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out.off, c->out.len - c->out.off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                conn_events(c, 1);
                return 0;
            }
            conn_close(c);
            return -1;
        }
        c->out.off += (size_t)n;
    }
    c->out.len = c->out.off = 0;
    conn_events(c, 0);
    if (!c->busy && c->close_after) {
        conn_close(c);
        return -1;
    }
    return 0;
}

/* ---- answers ---- */

static void head(struct conn *c, int status, const char *reason, const char *type, long length)
{
    buf_fmt(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", status, reason, type);
    if (length >= 0)
        buf_fmt(&c->out, "Content-Length: %ld\r\n", length);
    buf_fmt(&c->out, "Date: %s\r\nConnection: %s\r\n", g_date,
            c->close_after ? "close" : "keep-alive");
    if (!c->close_after)
        buf_str(&c->out, "Keep-Alive: timeout=30\r\n");
    if (length < 0)
        buf_str(&c->out, "Transfer-Encoding: chunked\r\n");
    buf_str(&c->out, "\r\n");
}

static void send_body(struct conn *c, int status, const char *reason, const char *type,
                      const char *body, size_t len)
{
    (void)unix_now(); /* the Date header */
    head(c, status, reason, type, (long)len);
    buf_add(&c->out, body, len);
}

#define JSON_TYPE "application/json; charset=utf-8"

static void add_tokens(struct buf *b)
{
    for (int i = 0; i < g_tokens; i++) {
        buf_add(b, " w", 2);
        buf_num(b, (unsigned long)i);
    }
}

/* The metrics of Ollama's done line (fake.mjs DEFAULT_METRICS, eval_count = tokens). */
static void add_metrics(struct buf *b)
{
    buf_fmt(b,
            "\"total_duration\":182242375,\"load_duration\":41295167,\"prompt_eval_count\":26,"
            "\"prompt_eval_duration\":24573166,\"eval_count\":%d,\"eval_duration\":115959084",
            g_tokens);
}

static struct buf g_line; /* scratch: one line before it is framed */

static void model_str(struct conn *c, struct buf *b)
{
    buf_add(b, "\"", 1);
    buf_add(b, c->model, c->model_len);
    buf_add(b, "\"", 1);
}

/* What every line of the answer starts with, built once per answer:
 * native {"model":M,"created_at":"   OpenAI data: {"id":..,"choices": */
static void build_prefix(struct conn *c)
{
    c->pre.len = 0;
    if (c->route == R_NATIVE) {
        buf_str(&c->pre, "{\"model\":");
        model_str(c, &c->pre);
        buf_str(&c->pre, ",\"created_at\":\"");
        return;
    }
    buf_fmt(
        &c->pre,
        "data: {\"id\":\"chatcmpl-fake%lu\",\"object\":\"chat.completion.chunk\",\"created\":%ld,"
        "\"model\":",
        c->id, c->created);
    model_str(c, &c->pre);
    buf_str(&c->pre, ",\"system_fingerprint\":\"fp_ollama\",\"choices\":");
}

static void oa_frame_head(struct conn *c)
{
    buf_add(&g_line, c->pre.p, c->pre.len);
}

/* Line i of the stream (i == tokens: the done line), as one chunk of c->out. */
static void stream_line(struct conn *c, int i)
{
    g_line.len = 0;
    if (c->route == R_NATIVE) {
        buf_add(&g_line, c->pre.p, c->pre.len);
        add_created_at(&g_line);
        if (i < g_tokens) {
            buf_str(&g_line, "\",\"message\":{\"role\":\"assistant\",\"content\":\" w");
            buf_num(&g_line, (unsigned long)i);
            buf_str(&g_line, "\"},\"done\":false}\n");
        } else {
            buf_str(&g_line, "\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
                             "\"done\":true,\"done_reason\":\"stop\",");
            add_metrics(&g_line);
            buf_str(&g_line, "}\n");
        }
    } else if (i < g_tokens) {
        oa_frame_head(c);
        buf_str(&g_line, i == 0 ? "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\" w"
                                : "[{\"index\":0,\"delta\":{\"content\":\" w");
        buf_num(&g_line, (unsigned long)i);
        buf_str(&g_line, "\"},\"finish_reason\":null}]}\n\n");
    } else {
        if (g_tokens == 0) {
            oa_frame_head(c);
            buf_str(&g_line, "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                             "\"finish_reason\":null}]}\n\n");
        }
        oa_frame_head(c);
        buf_str(&g_line, "[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    }
    buf_chunk(&c->out, g_line.p, g_line.len);
    if (i == g_tokens && c->route == R_OPENAI) {
        g_line.len = 0;
        if (c->usage) {
            oa_frame_head(c);
            buf_fmt(&g_line,
                    "[],\"usage\":{\"prompt_tokens\":26,\"completion_tokens\":%d,"
                    "\"total_tokens\":%d}}\n\n",
                    g_tokens, 26 + g_tokens);
        }
        buf_str(&g_line, "data: [DONE]\n\n");
        buf_chunk(&c->out, g_line.p, g_line.len);
    }
    if (i == g_tokens) {
        buf_str(&c->out, "0\r\n\r\n");
        c->busy = 0;
    }
}

static void whole_answer(struct conn *c)
{
    g_line.len = 0;
    if (c->route == R_NATIVE) {
        buf_str(&g_line, "{\"model\":");
        model_str(c, &g_line);
        buf_str(&g_line, ",\"created_at\":\"");
        add_created_at(&g_line);
        buf_str(&g_line, "\",\"message\":{\"role\":\"assistant\",\"content\":\"");
        add_tokens(&g_line);
        buf_str(&g_line, "\"},\"done\":true,\"done_reason\":\"stop\",");
        add_metrics(&g_line);
        buf_str(&g_line, "}");
    } else {
        buf_fmt(&g_line,
                "{\"id\":\"chatcmpl-fake%lu\",\"object\":\"chat.completion\",\"created\":%ld,"
                "\"model\":",
                c->id, c->created);
        model_str(c, &g_line);
        buf_str(&g_line, ",\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,"
                         "\"message\":{\"role\":\"assistant\",\"content\":\"");
        add_tokens(&g_line);
        buf_fmt(&g_line,
                "\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":26,"
                "\"completion_tokens\":%d,\"total_tokens\":%d}}",
                g_tokens, 26 + g_tokens);
    }
    send_body(c, 200, "OK", JSON_TYPE, g_line.p, g_line.len);
    c->busy = 0;
}

/* Write the lines that are due; wait for the next one, or finish. */
static void advance(struct conn *c)
{
    if (!c->stream) {
        whole_answer(c);
        return;
    }
    do {
        stream_line(c, c->next++);
    } while (c->busy && g_delay_ms == 0);
    if (c->busy)
        heap_push(c, now_ns() + (uint64_t)g_delay_ms * 1000000u);
}

/* ---- the request: a minimal scan of the top level of the JSON body ---- */

/* Skip a JSON string starting at s (on the quote); returns past its end. */
static const char *skip_string(const char *s, const char *end)
{
    for (s++; s < end; s++) {
        if (*s == '\\')
            s++;
        else if (*s == '"')
            return s + 1;
    }
    return NULL;
}

/* The body's top-level "model" (raw JSON string contents) and "stream"
 * (1, 0, or -1 when absent). Returns 0, or -1 when the body is not an object. */
static int scan_body(const char *s, size_t n, const char **model, size_t *model_len, int *stream)
{
    const char *end = s + n;
    int depth = 0, expect_key = 0;
    *model = NULL;
    *model_len = 0;
    *stream = -1;
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
        s++;
    if (s >= end || *s != '{')
        return -1;
    while (s < end) {
        char ch = *s;
        if (ch == '"') {
            const char *q = skip_string(s, end);
            if (!q)
                return -1;
            if (depth == 1 && expect_key) {
                const char *key = s + 1;
                size_t klen = (size_t)(q - 1 - key);
                const char *v = q;
                while (v < end &&
                       (*v == ' ' || *v == ':' || *v == '\t' || *v == '\n' || *v == '\r'))
                    v++;
                if (klen == 5 && !memcmp(key, "model", 5) && v < end && *v == '"') {
                    const char *ve = skip_string(v, end);
                    if (!ve)
                        return -1;
                    *model = v + 1;
                    *model_len = (size_t)(ve - 1 - (v + 1));
                } else if (klen == 6 && !memcmp(key, "stream", 6)) {
                    if (end - v >= 4 && !memcmp(v, "true", 4))
                        *stream = 1;
                    else if (end - v >= 5 && !memcmp(v, "false", 5))
                        *stream = 0;
                }
                expect_key = 0;
            }
            s = q;
            continue;
        }
        if (ch == '{' || ch == '[') {
            depth++;
            expect_key = ch == '{' && depth == 1;
        } else if (ch == '}' || ch == ']') {
            depth--;
        } else if (ch == ',' && depth == 1) {
            expect_key = 1;
        }
        s++;
    }
    return depth == 0 ? 0 : -1;
}

static const char *const MODELS[] = {"llama3.2:latest", "qwen3:latest", "nomic-embed-text:latest",
                                     "hf.co/org/repo:Q4"};

/* Ollama's model key: lower case, ":latest" when the name has no tag. */
static int known_model(const char *m, size_t n)
{
    char key[300];
    if (n + 8 > sizeof key)
        return 0;
    for (size_t i = 0; i < n; i++)
        key[i] = (char)(m[i] >= 'A' && m[i] <= 'Z' ? m[i] + 32 : m[i]);
    size_t slash = n;
    while (slash > 0 && key[slash - 1] != '/')
        slash--;
    if (!memchr(key + slash, ':', n - slash)) {
        memcpy(key + n, ":latest", 7);
        n += 7;
    }
    for (size_t i = 0; i < sizeof MODELS / sizeof *MODELS; i++)
        if (strlen(MODELS[i]) == n && !memcmp(MODELS[i], key, n))
            return 1;
    return 0;
}

static void chat_error(struct conn *c, int status, const char *reason, int openai, const char *type,
                       const char *msg)
{
    g_line.len = 0;
    if (openai)
        buf_fmt(&g_line,
                "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,\"code\":null}}",
                msg, type);
    else
        buf_fmt(&g_line, "{\"error\":\"%s\"}", msg);
    send_body(c, status, reason, JSON_TYPE, g_line.p, g_line.len);
}

static void handle_chat(struct conn *c, enum route route, const char *body, size_t len)
{
    const char *model;
    size_t mlen;
    int stream;
    int openai = route == R_OPENAI;
    if (scan_body(body, len, &model, &mlen, &stream) < 0) {
        chat_error(c, 400, "Bad Request", openai, "invalid_request_error", "invalid request");
        return;
    }
    if (!model || !mlen) {
        chat_error(c, 400, "Bad Request", openai, "invalid_request_error", "model is required");
        return;
    }
    if (mlen >= sizeof c->model || !known_model(model, mlen)) {
        char msg[300];
        snprintf(msg, sizeof msg, "model '%.*s' not found", (int)(mlen > 200 ? 200 : mlen), model);
        chat_error(c, 404, "Not Found", openai, "not_found_error", msg);
        return;
    }
    memcpy(c->model, model, mlen);
    c->model_len = mlen;
    c->route = route;
    c->stream = openai ? stream == 1 : stream != 0; /* native: absent = true */
    c->usage = openai && c->stream && memmem(body, len, "\"include_usage\":true", 20) != NULL;
    if (openai) {
        c->id = ++g_oa_counter;
        c->created = unix_now();
    }
    c->busy = 1;
    c->next = 0;
    if (c->stream) {
        build_prefix(c);
        (void)unix_now();
        head(c, 200, "OK", openai ? "text/event-stream" : "application/x-ndjson", -1);
        advance(c);
    } else if (g_delay_ms > 0) {
        /* the generation time of the stream it stands for */
        heap_push(c, now_ns() + (uint64_t)g_delay_ms * 1000000u * (uint64_t)g_tokens);
    } else {
        whole_answer(c);
    }
}

static const char TAGS_FMT[] =
    "{\"models\":["
    "{\"name\":\"llama3.2:latest\",\"model\":\"llama3.2:latest\",\"modified_at\":\"2026-01-10T10:"
    "00:"
    "00.000000000Z\",\"size\":1000000000,\"digest\":"
    "\"17177962e7130a9fe50f07d9058650327164635c12fc381fedc3c2a552886b30\",\"details\":{"
    "\"parent_model\":\"\",\"format\":\"gguf\",\"family\":\"llama\",\"families\":[\"llama\"],"
    "\"parameter_size\":\"3.2B\",\"quantization_level\":\"Q4_K_M\"}},"
    "{\"name\":\"qwen3:latest\",\"model\":\"qwen3:latest\",\"modified_at\":\"2026-02-11T10:00:00."
    "000000000Z\",\"size\":1000001000,\"digest\":"
    "\"08534653248b5bc2191d29271dc5fedf1a96b144edf7f2674d672b241470bd40\",\"details\":{"
    "\"parent_model\":\"\",\"format\":\"gguf\",\"family\":\"qwen3\",\"families\":[\"qwen3\"],"
    "\"parameter_size\":\"8.2B\",\"quantization_level\":\"Q4_K_M\"}},"
    "{\"name\":\"nomic-embed-text:latest\",\"model\":\"nomic-embed-text:latest\",\"modified_at\":"
    "\"2026-03-12T10:00:00.000000000Z\",\"size\":1000002000,\"digest\":"
    "\"10886753ec3b09dda767d55999092b801d783cdc24f9e0e5b10045071e2d9a06\",\"details\":{"
    "\"parent_model\":\"\",\"format\":\"gguf\",\"family\":\"nomic-bert\",\"families\":[\"nomic-"
    "bert\"],\"parameter_size\":\"137M\",\"quantization_level\":\"F16\"}},"
    "{\"name\":\"hf.co/org/repo:Q4\",\"model\":\"hf.co/org/repo:Q4\",\"modified_at\":\"2026-04-"
    "13T10:00:00.000000000Z\",\"size\":1000003000,\"digest\":"
    "\"03763f386fb3b8608c8af485a7ccf959397a72abd5a248237359825a32247f86\",\"details\":{"
    "\"parent_model\":\"\",\"format\":\"gguf\",\"family\":\"llama\",\"families\":[\"llama\"],"
    "\"parameter_size\":\"1B\",\"quantization_level\":\"Q4_0\"}}]}";

static void handle_ps(struct conn *c)
{
    /* /api/ps: every model loaded (the CLI fake's default), expiring in 5 minutes */
    static const struct {
        const char *name, *digest, *family, *psize, *quant;
        long long size;
        int ctx;
    } M[] = {
        {"llama3.2:latest", "17177962e7130a9fe50f07d9058650327164635c12fc381fedc3c2a552886b30",
         "llama", "3.2B", "Q4_K_M", 1000000000LL, 4096},
        {"qwen3:latest", "08534653248b5bc2191d29271dc5fedf1a96b144edf7f2674d672b241470bd40",
         "qwen3", "8.2B", "Q4_K_M", 1000001000LL, 4096},
        {"nomic-embed-text:latest",
         "10886753ec3b09dda767d55999092b801d783cdc24f9e0e5b10045071e2d9a06", "nomic-bert", "137M",
         "F16", 1000002000LL, 2048},
        {"hf.co/org/repo:Q4", "03763f386fb3b8608c8af485a7ccf959397a72abd5a248237359825a32247f86",
         "llama", "1B", "Q4_0", 1000003000LL, 4096},
    };
    char exp[40];
    time_t t = (time_t)unix_now() + 300;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    g_line.len = 0;
    buf_str(&g_line, "{\"models\":[");
    for (size_t i = 0; i < sizeof M / sizeof *M; i++)
        buf_fmt(&g_line,
                "%s{\"name\":\"%s\",\"model\":\"%s\",\"size\":%lld,\"digest\":\"%s\",\"details\":{"
                "\"parent_model\":\"\",\"format\":\"gguf\",\"family\":\"%s\",\"families\":[\"%s\"],"
                "\"parameter_size\":\"%s\",\"quantization_level\":\"%s\"},\"expires_at\":\"%s\","
                "\"size_vram\":%lld,\"context_length\":%d}",
                i ? "," : "", M[i].name, M[i].name, M[i].size, M[i].digest, M[i].family,
                M[i].family, M[i].psize, M[i].quant, exp, M[i].size, M[i].ctx);
    buf_str(&g_line, "]}");
    send_body(c, 200, "OK", JSON_TYPE, g_line.p, g_line.len);
}

static const char V1_MODELS[] =
    "{\"object\":\"list\",\"data\":[{\"id\":\"llama3.2:latest\",\"object\":\"model\",\"created\":"
    "1768039200,\"owned_by\":\"library\"},{\"id\":\"qwen3:latest\",\"object\":\"model\","
    "\"created\":"
    "1770804000,\"owned_by\":\"library\"},{\"id\":\"nomic-embed-text:latest\",\"object\":\"model\","
    "\"created\":1773309600,\"owned_by\":\"library\"},{\"id\":\"hf.co/org/repo:Q4\",\"object\":"
    "\"model\",\"created\":1776074400,\"owned_by\":\"library\"}]}";

static void route_request(struct conn *c, const char *method, size_t mlen, const char *path,
                          size_t plen, const char *body, size_t blen)
{
#define IS(s) (plen == sizeof(s) - 1 && !memcmp(path, s, plen))
#define METHOD(s) (mlen == sizeof(s) - 1 && !memcmp(method, s, mlen))
    const char *q = memchr(path, '?', plen);
    if (q)
        plen = (size_t)(q - path);
    if (IS("/api/chat") || IS("/v1/chat/completions")) {
        if (!METHOD("POST"))
            goto not_allowed;
        handle_chat(c, IS("/api/chat") ? R_NATIVE : R_OPENAI, body, blen);
    } else if (IS("/api/tags")) {
        if (!METHOD("GET") && !METHOD("HEAD"))
            goto not_allowed;
        send_body(c, 200, "OK", JSON_TYPE, TAGS_FMT, sizeof TAGS_FMT - 1);
    } else if (IS("/api/ps")) {
        if (!METHOD("GET"))
            goto not_allowed;
        handle_ps(c);
    } else if (IS("/api/version")) {
        if (!METHOD("GET") && !METHOD("HEAD"))
            goto not_allowed;
        send_body(c, 200, "OK", JSON_TYPE, "{\"version\":\"0.33.0\"}", 20);
    } else if (IS("/v1/models")) {
        if (!METHOD("GET") && !METHOD("HEAD"))
            goto not_allowed;
        send_body(c, 200, "OK", JSON_TYPE, V1_MODELS, sizeof V1_MODELS - 1);
    } else if (IS("/")) {
        send_body(c, 200, "OK", "text/plain; charset=utf-8", "Ollama is running", 17);
    } else {
        send_body(c, 404, "Not Found", "text/plain", "404 page not found", 18);
    }
    if (METHOD("HEAD") && !c->busy) {
        /* drop the body of a HEAD answer: it is the last thing queued */
        char *hdr_end = memmem(c->out.p, c->out.len, "\r\n\r\n", 4);
        if (hdr_end)
            c->out.len = (size_t)(hdr_end + 4 - c->out.p);
    }
    return;
not_allowed:
    send_body(c, 405, "Method Not Allowed", "text/plain", "405 method not allowed", 22);
#undef IS
#undef METHOD
}

/* Header value of NAME in the head [h, end), or NULL. */
static const char *header(const char *h, const char *end, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *line = memchr(h, '\n', (size_t)(end - h));
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' && !strncasecmp(line, name, nlen)) {
            const char *v = line + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        line = eol < end ? eol : NULL;
    }
    return NULL;
}

/* Parse and answer every complete request in c->in (one at a time: the
 * next is read only when the answer is finished). */
static void process_input(struct conn *c)
{
    while (c->open && !c->busy && c->in.len) {
        const char *p = c->in.p;
        const char *he = memmem(p, c->in.len, "\r\n\r\n", 4);
        if (!he) {
            if (c->in.len >= IN_MAX)
                conn_close(c);
            return;
        }
        size_t head_len = (size_t)(he - p) + 4;
        const char *sp1 = memchr(p, ' ', head_len);
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(he - sp1 - 1)) : NULL;
        if (!sp1 || !sp2) {
            conn_close(c);
            return;
        }
        size_t vlen, blen = 0;
        const char *v = header(p, he + 2, "Content-Length", &vlen);
        if (v) {
            char num[24];
            if (vlen >= sizeof num) {
                conn_close(c);
                return;
            }
            memcpy(num, v, vlen);
            num[vlen] = 0;
            char *e;
            unsigned long long x = strtoull(num, &e, 10);
            if (*e || x > IN_MAX) {
                conn_close(c);
                return;
            }
            blen = (size_t)x;
        } else if (header(p, he + 2, "Transfer-Encoding", &vlen)) {
            c->close_after = 1;
            send_body(c, 411, "Length Required", "text/plain", "length required", 15);
            conn_flush(c);
            return;
        }
        if (c->in.len < head_len + blen) {
            v = header(p, he + 2, "Expect", &vlen);
            if (v && vlen == 12 && !strncasecmp(v, "100-continue", 12) && c->in.len == head_len)
                buf_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
            if (c->out.len && conn_flush(c) < 0)
                return;
            return;
        }
        v = header(p, he + 2, "Connection", &vlen);
        if (v && vlen == 5 && !strncasecmp(v, "close", 5))
            c->close_after = 1;
        if (!memcmp(sp2 + 1, "HTTP/1.0", 8) &&
            !(v && vlen == 10 && !strncasecmp(v, "keep-alive", 10)))
            c->close_after = 1;
        route_request(c, p, (size_t)(sp1 - p), sp1 + 1, (size_t)(sp2 - sp1 - 1), p + head_len,
                      blen);
        /* the request is consumed (the answer copied what it needs) */
        size_t used = head_len + blen;
        memmove(c->in.p, c->in.p + used, c->in.len - used);
        c->in.len -= used;
        if (conn_flush(c) < 0)
            return;
    }
}

static void on_readable(struct conn *c)
{
    buf_reserve(&c->in, 16384);
    ssize_t n = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->in.len += (size_t)n;
    process_input(c);
}

static struct conn *conn_for(int fd)
{
    if ((size_t)fd >= g_nconns) {
        size_t n = g_nconns ? g_nconns : 1024;
        while (n <= (size_t)fd)
            n *= 2;
        g_conns = xrealloc(g_conns, n * sizeof *g_conns);
        memset(g_conns + g_nconns, 0, (n - g_nconns) * sizeof *g_conns);
        g_nconns = n;
    }
    if (!g_conns[fd]) {
        g_conns[fd] = calloc(1, sizeof(struct conn));
        if (!g_conns[fd])
            die("out of memory");
    }
    return g_conns[fd];
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                fprintf(stderr, "fake_ollama: accept: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = conn_for(fd);
        c->fd = fd;
        c->open = 1;
        c->want_out = 0;
        c->close_after = 0;
        c->busy = 0;
        c->heap_at = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            die("epoll_ctl: %s", strerror(errno));
    }
}

static void on_timer(void)
{
    uint64_t ticks;
    if (read(g_tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
        die("timerfd read: %s", strerror(errno));
    uint64_t now = now_ns();
    while (g_heap_len && g_heap[0]->due_ns <= now) {
        struct conn *c = g_heap[0];
        heap_remove(c);
        advance(c);
        if (conn_flush(c) == 0 && !c->busy)
            process_input(c); /* a request that came while this one was answered */
    }
    arm_timer();
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static long arg_num(const char *name, const char *v)
{
    char *e;
    long x = v ? strtol(v, &e, 10) : -1;
    if (!v || *e || x < 0 || x > 100000000)
        die("%s needs a whole number", name);
    return x;
}

int main(int argc, char **argv)
{
    long port = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--port"))
            port = arg_num(a, v), i++;
        else if (!strcmp(a, "--tokens"))
            g_tokens = (int)arg_num(a, v), i++;
        else if (!strcmp(a, "--delay-ms"))
            g_delay_ms = arg_num(a, v), i++;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            puts("usage: fake_ollama [--port N] [--tokens 32] [--delay-ms 0]");
            return 0;
        } else
            die("unknown argument %s", a);
    }
    if (port > 65535)
        die("--port: %ld", port);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0)
        die("bind 127.0.0.1:%ld: %s", port, strerror(errno));
    if (listen(lfd, 4096) < 0)
        die("listen: %s", strerror(errno));
    socklen_t sl = sizeof sin;
    getsockname(lfd, (struct sockaddr *)&sin, &sl);

    g_ep = epoll_create1(EPOLL_CLOEXEC);
    g_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (g_ep < 0 || g_tfd < 0)
        die("epoll/timerfd: %s", strerror(errno));
    /* the listener and the timer are told apart from connections by these tags */
    static char tag_listen, tag_timer;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_listen};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &tag_timer;
    epoll_ctl(g_ep, EPOLL_CTL_ADD, g_tfd, &ev);

    printf("{\"port\":%d}\n", ntohs(sin.sin_port));
    fflush(stdout);

    struct epoll_event evs[256];
    while (!g_stop) {
        int n = epoll_wait(g_ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &tag_listen) {
                on_accept(lfd);
            } else if (p == &tag_timer) {
                on_timer();
            } else {
                struct conn *c = p;
                if (!c->open)
                    continue;
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                    conn_close(c);
                    continue;
                }
                if (evs[i].events & EPOLLOUT) {
                    if (conn_flush(c) < 0)
                        continue;
                    if (!c->busy)
                        process_input(c);
                }
                if (c->open && (evs[i].events & EPOLLIN))
                    on_readable(c);
            }
        }
    }
    for (size_t i = 0; i < g_nconns; i++) {
        if (g_conns[i]) {
            if (g_conns[i]->open)
                close(g_conns[i]->fd);
            free(g_conns[i]->in.p);
            free(g_conns[i]->out.p);
            free(g_conns[i]->pre.p);
            free(g_conns[i]);
        }
    }
    free(g_conns);
    free(g_heap);
    free(g_line.p);
    close(lfd);
    close(g_tfd);
    close(g_ep);
    return 0;
}
