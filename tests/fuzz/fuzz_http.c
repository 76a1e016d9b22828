/*
 * HTTP request handling through the real handler, in process: each input is
 * the bytes a client sends on one connection (request head, body, maybe more
 * requests after it). A worker is initialised once, as the daemon's main
 * does, but not started: this thread hands it one end of a socketpair
 * (MHD_add_connection, as if accepted), writes the input to the other end,
 * half-closes it, and turns the worker's loop until the gateway closes the
 * connection. Everything below the socket is the daemon's own code:
 * libmicrohttpd's parser, the framing checks, auth, the route table, the
 * relay engine and each dialect's translation, the error shapes and the
 * access log (written to /dev/null). The one backend is a closed port
 * (127.0.0.1:9), so a request that would go upstream ends in the engine's
 * 503, without network traffic: what is fuzzed is what the gateway does with
 * the client's bytes.
 *
 * The answer is checked too: it starts with an HTTP/1.1 status line (or is
 * empty: libmicrohttpd may close a connection whose head it cannot parse).
 */
#include "fuzz.h"

#include "authguard.h"
#include "clock.h"
#include "handler.h"
#include "jarena.h"
#include "log.h"
#include "reload.h"
#include "reply.h"
#include "worker.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static struct worker w;
static struct gateway gw;
static struct http_shared http;

/* %u: a loopback port that was free a moment ago (the configuration wants a
 * real one; no client ever connects to it). */
static const char config[] =
    "{\"listen\": [\"127.0.0.1:%u\"], \"workers\": 1, \"auth\": \"none\",\n"
    " \"backends\": [{\"name\": \"b\", \"url\": \"http://127.0.0.1:9\"}],\n"
    " \"aliases\": {\"gpt-4o\": \"llama3.2\", \"text-embedding-3-small\": \"nomic-embed-text\"},\n"
    " \"discovery_interval_s\": 3600,\n"
    /* the peer is 127.0.0.1: X-Forwarded-For is walked, Origin judged */
    " \"trusted_proxies\": [\"127.0.0.0/8\", \"10.0.0.0/8\", \"fd00::/8\"],\n"
    " \"cors\": {\"origins\": [\"https://app.example.com\", \"http://localhost:5173\"]},\n"
    " \"limits\": {\"max_body_bytes\": 65536, \"auth_failures_per_minute\": 0},\n"
    " \"log\": {\"level\": \"error\", \"access\": \"/dev/null\"}}\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    CHECK(sodium_init() >= 0);
    jarena_init();
    CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    CHECK(probe >= 0 && bind(probe, (struct sockaddr *)&a, sizeof a) == 0 &&
          getsockname(probe, (struct sockaddr *)&a, &alen) == 0);
    close(probe);
    char text[sizeof config + 8];
    int len = snprintf(text, sizeof text, config, (unsigned)ntohs(a.sin_port));
    char path[] = "/tmp/fuzz_http_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, text, (size_t)len) == len);
    close(fd);
    struct cfg *cfg = cfg_load(path, NULL);
    unlink(path);
    CHECK(cfg);
    log_set_level(LOG_LEVEL_ERROR);
    CHECK(log_access_open(cfg->log.access) == 0);
    bool bad_input;
    CHECK(reload_start(cfg_ref(cfg), &bad_input) == 0);
    CHECK(reply_init() == 0);
    http.authguard = authguard_new(0);
    CHECK(http.authguard);
    gw = (struct gateway){.cfg = cfg, .hooks = &handler_hooks, .app = &http, .nworkers = 1};
    atomic_init(&gw.stopping, false);
    CHECK(worker_init(&w, 0, &gw) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    /* Room for the whole input and answer in the socket buffers: neither
     * side ever waits for the other to read. */
    int big = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (MHD_add_connection(w.daemons[0], sv[0], (struct sockaddr *)&peer, sizeof peer) != MHD_YES) {
        close(sv[1]); /* MHD closed sv[0] */
        return 0;
    }
    size_t off = 0;
    char answer[4096];
    size_t got = 0;
    bool eof = false;
    /* Bounded: a connection that neither side ends in this many turns is a
     * hang, and the fuzzer says so. */
    for (int turn = 0; turn < 2000 && !eof; turn++) {
        if (off < size) {
            ssize_t n = write(sv[1], data + off, size - off);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN)
                off = size; /* the gateway closed its end */
            if (off == size)
                shutdown(sv[1], SHUT_WR);
        } else if (size == 0 && turn == 0) {
            shutdown(sv[1], SHUT_WR);
        }
        CHECK(worker_turn(&w) == 0);
        for (;;) {
            char buf[8192];
            ssize_t n = read(sv[1], buf, sizeof buf);
            if (n > 0) {
                size_t keep = (size_t)n < sizeof answer - got ? (size_t)n : sizeof answer - got;
                memcpy(answer + got, buf, keep);
                got += keep;
                continue;
            }
            if (n == 0 || errno != EAGAIN)
                eof = true;
            break;
        }
    }
    CHECK(eof);
    CHECK(got == 0 || (got >= 9 && memcmp(answer, "HTTP/1.", 7) == 0));
    close(sv[1]);
    return 0;
}
