/*
 * main: the command line, signals, and the wiring of the modules: load the
 * configuration and keys, start discovery, start one worker per CPU (or
 * `workers`), then wait for signals on a signalfd (EVENTLOOP.md P16) and for
 * changes to the keys file.
 */
#include "authguard.h"
#include "clock.h"
#include "config.h"
#include "handler.h"
#include "jarena.h"
#include "keycmd.h"
#include "keys.h"
#include "keysfile.h"
#include "keystate.h"
#include "log.h"
#include "metrics.h"
#include "metrics_listener.h"
#include "reload.h"
#include "reply.h"
#include "snapshot.h"
#include "tlscreds.h"
#include "worker.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* An MHD-internal abort is logged in our format before the process dies
 * (EVENTLOOP.md P15). */
static void mhd_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
    (void)cls;
    log_error("libmicrohttpd panic at %s:%u: %s", file ? file : "?", line,
              reason ? reason : "(no reason)");
    abort();
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ollama-gateway [serve] [-c FILE]   run in the foreground\n"
               "       ollama-gateway check -c FILE       validate the configuration and keys\n"
               "       ollama-gateway key create NAME [--models GLOB,...] [--rpm N] [--tpm N]\n"
               "                          [--max-inflight N] [--expires YYYY-MM-DD] [--admin]\n"
               "                          [-c FILE]      add a key; prints its secret once\n"
               "       ollama-gateway key list [--json] [-c FILE]\n"
               "       ollama-gateway key revoke|disable|enable ID [-c FILE]\n"
               "       ollama-gateway key init [NAME] [-c FILE]   a first key, unless one exists\n"
               "       ollama-gateway --version | --help\n"
               "\n"
               "FILE defaults to " CFG_DEFAULT_PATH ".\n"
               "The access log (JSON lines) goes to stdout, diagnostics to stderr.\n"
               "Signals: SIGHUP reloads the configuration and keys (a change to the keys\n"
               "file is picked up by itself); SIGTERM/SIGINT drain streams in flight (up\n"
               "to limits.shutdown_grace_s), then exit 0.\n");
}

/* systemd Type=notify readiness without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void notify_systemd(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= 108)
        return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path));
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0)
        log_warn_errno("sd_notify");
    close(fd);
}

/* A change to the keys file is acted on once it has been quiet this long, so
 * that an editor's several writes make one reload. */
#define KEYS_SETTLE_MS 100

/* Wait for a signal; meanwhile reload the keys when their file changes.
 * Returns the signal, or -1 when the signalfd fails. */
/* What a reload changes outside the snapshot: the guard's threshold. */
static void apply_reload(struct authguard *guard)
{
    struct snapshot *s = snapshot_acquire();
    if (s)
        authguard_set_limit(guard, s->cfg->limits.auth_failures_per_minute);
    snapshot_unref(s);
}

static int wait_signal(int sfd, const char *config_path, struct authguard *guard,
                       struct metrics *metrics)
{
    int64_t reload_at = -1;
    for (;;) {
        struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
                              {.fd = reload_watch_fd(), .events = POLLIN}};
        int timeout = -1;
        /* the sooner of a keys file to read and key states owed to Redis */
        int64_t due = keystate_retry_at();
        if (reload_at >= 0 && (due < 0 || reload_at < due))
            due = reload_at;
        if (due >= 0) {
            int64_t left = due - now_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        int n = poll(p, p[1].fd >= 0 ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR) {
            log_error_errno("poll");
            return -1;
        }
        if (n > 0 && p[1].fd >= 0 && (p[1].revents & POLLIN) && reload_watch_changed())
            reload_at = now_ms() + KEYS_SETTLE_MS;
        if (reload_at >= 0 && now_ms() >= reload_at) {
            reload_at = -1;
            metrics_reloaded(metrics, true, reload_keys() == 0);
        }
        if (keystate_retry_at() >= 0 && now_ms() >= keystate_retry_at())
            keystate_retry();
        if (n <= 0 || !(p[0].revents & POLLIN))
            continue;
        struct signalfd_siginfo si;
        ssize_t got = read(sfd, &si, sizeof si);
        if (got < 0 && errno == EINTR)
            continue;
        if (got != (ssize_t)sizeof si) {
            log_error_errno("signalfd");
            return -1;
        }
        if (si.ssi_signo != SIGHUP)
            return (int)si.ssi_signo;
        log_info("SIGHUP: reloading %s", config_path);
        /* A refused reload read no keys (or dropped them): a change to the
         * keys file still waiting stays due, or a revocation would be lost. */
        int ok = reload_all(config_path) == 0;
        metrics_reloaded(metrics, false, ok);
        if (ok) {
            apply_reload(guard);
            reload_at = -1; /* the keys were just read */
        }
    }
}

static int cmd_serve(const char *path)
{
    struct cfg *cfg = cfg_load(path, NULL);
    if (!cfg)
        return 1;
    log_set_level(cfg->log.level);
    if (log_access_open(cfg->log.access) < 0) {
        log_error_errno("cannot open the access log %s", cfg->log.access);
        cfg_unref(cfg);
        return 1;
    }
    cfg_features_not_in_force(cfg, NULL, NULL);

    /* Signals are read in this thread's loop; every thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    /* From here no thread writes its own log lines: a reader that stalls
     * must not stall a worker (log.h). Started after the mask so the writer
     * takes no signal. */
    bool writer = log_writer_start(LOG_RING_BYTES) == 0;
    if (!writer)
        log_warn_errno("cannot start the log writer; logging synchronously");

    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    struct http_shared http = {.started_ms = rt.tv_sec * 1000LL};
    struct gateway gw = {.cfg = cfg, .hooks = &handler_hooks, .app = &http};
    atomic_init(&gw.stopping, false);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    gw.nworkers = cfg->workers ? cfg->workers : (unsigned)(ncpu > 0 ? ncpu : 1);

    int rc = 2;
    bool started_reload = false;
    http.authguard = authguard_new(cfg->limits.auth_failures_per_minute);
    /* Counted whether or not metrics are served: the counting costs a few
     * relaxed stores per request, and a branch per count would cost as much. */
    http.metrics = metrics_new(gw.nworkers, rt.tv_sec);
    struct metrics_listener *mlisten = NULL;
    struct worker *workers = calloc(gw.nworkers, sizeof *workers);
    /* Outlives the workers: stopping their daemons closes connections that
     * still hold places in it. */
    struct peers peers = {0};
    if (!http.authguard || !http.metrics || !workers || sfd < 0 ||
        peers_init(&peers, cfg->limits.max_connections_per_address) < 0 || reply_init() < 0) {
        log_error_errno("cannot allocate the gateway's state");
        goto out;
    }
    gw.peers = &peers;
    bool bad_input;
    if (reload_start(cfg_ref(cfg), &bad_input) < 0) {
        rc = bad_input ? 1 : 2;
        goto out;
    }
    started_reload = true;
    unsigned started = 0;
    for (; started < gw.nworkers; started++)
        if (worker_init(&workers[started], (int)started, &gw) < 0)
            break;
    if (started < gw.nworkers) {
        for (unsigned i = 0; i < started; i++)
            worker_free(&workers[i]);
        goto out;
    }
    /* Bound before the workers start: a port that cannot be had stops the
     * start, as an API listen address does. */
    if (cfg->metrics.enabled &&
        !(mlisten = metrics_listener_start(&cfg->metrics.listen, http.metrics, gw.nworkers))) {
        for (unsigned i = 0; i < gw.nworkers; i++)
            worker_free(&workers[i]);
        goto out;
    }
    unsigned running = 0;
    for (; running < gw.nworkers; running++)
        if (worker_start(&workers[running]) < 0) {
            log_error_errno("cannot start worker %u", running);
            break;
        }
    if (running < gw.nworkers) {
        /* The ones that run have served nothing yet: stop them as at exit. */
        atomic_store(&gw.stopping, true);
        for (unsigned i = 0; i < running; i++)
            worker_stop(&workers[i]);
        for (unsigned i = 0; i < running; i++)
            worker_join(&workers[i]);
        for (unsigned i = 0; i < gw.nworkers; i++)
            worker_free(&workers[i]);
        goto out;
    }
    for (size_t i = 0; i < cfg->nlisten; i++)
        log_info("listening on %s%s with %u workers", cfg->listen[i].text,
                 cfg->listen[i].tls ? " (TLS)" : "", gw.nworkers);
    notify_systemd("READY=1");

    int sig = wait_signal(sfd, path, http.authguard, http.metrics);
    /* The grace period of the configuration in force now (a reload may have
     * changed it); published to the workers by the atomic store below. */
    struct snapshot *now = snapshot_acquire();
    gw.grace_s = (now ? now->cfg : cfg)->limits.shutdown_grace_s;
    snapshot_unref(now);
    if (sig > 0)
        log_info("%s: finishing requests in flight (up to %u s), then exiting", strsignal(sig),
                 gw.grace_s);
    notify_systemd("STOPPING=1");
    atomic_store(&gw.stopping, true);
    for (unsigned i = 0; i < gw.nworkers; i++)
        worker_stop(&workers[i]);
    for (unsigned i = 0; i < gw.nworkers; i++)
        worker_join(&workers[i]);
    for (unsigned i = 0; i < gw.nworkers; i++)
        worker_free(&workers[i]);
    rc = 0;
out:
    /* after the workers: it reads their counters */
    metrics_listener_stop(mlisten);
    if (rc)
        log_error("cannot start the gateway");
    free(workers);
    reply_cleanup();
    peers_free(&peers);
    if (started_reload)
        reload_stop();
    authguard_free(http.authguard);
    metrics_free(http.metrics);
    if (sfd >= 0)
        close(sfd);
    cfg_unref(cfg);
    /* The last lines, written before the process exits; bounded, so that a
     * reader that never reads cannot keep the gateway from exiting. */
    if (writer && log_writer_stop(LOG_FLUSH_MS) < 0)
        log_warn("the log reader did not read: some lines were not written");
    return rc;
}

/* `check`: the configuration, then the keys file it names. */
static int cmd_check(const char *path)
{
    struct cfg *cfg = cfg_check(path);
    if (!cfg)
        return 1;
    int rc = 0;
    char why[512];
    if (cfg->auth == CFG_AUTH_KEYS && keys_check_mode(cfg->keys_file, why, sizeof why) < 0 &&
        errno == ENOENT) {
        fprintf(stderr,
                "warning: %s does not exist: every API request gets 401 until a key is "
                "created with: ollama-gateway key create NAME -c %s\n",
                cfg->keys_file, path);
    } else if (cfg->auth == CFG_AUTH_KEYS) {
        struct cfg_errors errs;
        cfg_errors_init(&errs);
        struct keyring *k = keyring_load(cfg->keys_file, path, &errs);
        if (errs.text.len)
            fwrite(errs.text.p, 1, errs.text.len, stderr);
        cfg_errors_free(&errs);
        if (k)
            fprintf(stderr, "%s: %zu keys OK\n", cfg->keys_file, k->n);
        else
            rc = 1;
        keyring_unref(k);
    }
    if (cfg->tls.creds) {
        char line[700], warn[400];
        tls_creds_describe(cfg->tls.creds, time(NULL), line, sizeof line, warn, sizeof warn);
        fprintf(stderr, "%s: %s\n", cfg->tls.cert, line);
        if (warn[0])
            fprintf(stderr, "warning: %s: %s\n", cfg->tls.cert, warn);
    }
    if (!rc)
        fprintf(stderr, "%s: configuration OK\n", path);
    cfg_unref(cfg);
    return rc;
}

/*
 * Large buffers (a 16 MiB request body, a long answer) go to mmap and back to
 * the system when freed. glibc otherwise raises its mmap threshold after the
 * first such free, keeps later ones on the heap, and a few large requests
 * leave the process 100 MB larger for good.
 */
static void malloc_policy(void)
{
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
}

int main(int argc, char **argv)
{
    malloc_policy();
    const char *cmd = "serve";
    const char *path = CFG_DEFAULT_PATH;
    int i = 1;
    bool key_cmd = argc > 1 && strcmp(argv[1], "key") == 0;
    if (argc > 1 && argv[1][0] != '-')
        cmd = argv[i++];
    for (; i < argc && !key_cmd; i++) {
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            /* A sanitized build says so: its memory figures are not the release's. */
            printf("ollama-gateway %s%s%s%s\n", GATEWAY_VERSION,
                   GATEWAY_SANITIZERS[0] ? " (sanitizers: " : "", GATEWAY_SANITIZERS,
                   GATEWAY_SANITIZERS[0] ? ")" : "");
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            path = argv[++i];
            continue;
        }
        fprintf(stderr, "ollama-gateway: unexpected argument \"%s\"\n", argv[i]);
        usage(stderr);
        return 1;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "ollama-gateway: libsodium failed to initialise\n");
        return 2;
    }
    jarena_init();
    MHD_set_panic_func(mhd_panic, NULL);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "ollama-gateway: libcurl failed to initialise\n");
        return 2;
    }
    int rc;
    if (key_cmd)
        rc = keycmd_main(argc - 1, argv + 1, CFG_DEFAULT_PATH);
    else if (strcmp(cmd, "serve") == 0)
        rc = cmd_serve(path);
    else if (strcmp(cmd, "check") == 0)
        rc = cmd_check(path);
    else {
        fprintf(stderr, "ollama-gateway: unknown command \"%s\"\n", cmd);
        usage(stderr);
        rc = 1;
    }
    curl_global_cleanup();
    return rc;
}
