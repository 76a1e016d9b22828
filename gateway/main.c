/*
 * main: the command line, signals, and the wiring of the modules: load the
 * configuration, start discovery, start one worker per CPU (or `workers`),
 * then wait for signals on a signalfd (EVENTLOOP.md P16).
 */
#include "backends.h"
#include "config.h"
#include "jarena.h"
#include "log.h"
#include "worker.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <errno.h>
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

#define DEFAULT_CONFIG "/etc/ollama-gateway/gateway.json"
#define GRACE_S 30

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
    fprintf(f,
            "usage: ollama-gateway [serve] [-c FILE]   run in the foreground\n"
            "       ollama-gateway check -c FILE       validate the configuration\n"
            "       ollama-gateway --version | --help\n"
            "\n"
            "FILE defaults to " DEFAULT_CONFIG ".\n"
            "The access log (JSON lines) goes to stdout, diagnostics to stderr.\n"
            "Signals: SIGTERM/SIGINT drain streams in flight (up to %d s), then exit 0.\n",
            GRACE_S);
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

static int cmd_serve(const char *path)
{
    struct cfg *cfg = cfg_load(path, NULL);
    if (!cfg)
        return 1;
    log_set_level(cfg->log.level);
    if (log_access_open(cfg->log.access) < 0) {
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

    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    struct gateway gw = {.cfg = cfg, .grace_s = GRACE_S, .started_ms = rt.tv_sec * 1000LL};
    atomic_init(&gw.stopping, false);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    gw.nworkers = cfg->workers ? cfg->workers : (unsigned)(ncpu > 0 ? ncpu : 1);

    int rc = 2;
    gw.backends = backends_new(cfg);
    struct worker *workers = calloc(gw.nworkers, sizeof *workers);
    if (!gw.backends || !workers || sfd < 0)
        goto out;
    backends_poll_all(gw.backends);
    if (backends_start(gw.backends) < 0)
        goto out;
    unsigned started = 0;
    for (; started < gw.nworkers; started++)
        if (worker_init(&workers[started], (int)started, &gw) < 0)
            break;
    if (started < gw.nworkers) {
        for (unsigned i = 0; i < started; i++)
            worker_free(&workers[i]);
        goto out;
    }
    for (unsigned i = 0; i < gw.nworkers; i++)
        if (worker_start(&workers[i]) < 0) {
            log_error_errno("cannot start worker %u", i);
            abort(); /* a half-started gateway cannot be unwound safely */
        }
    for (size_t i = 0; i < cfg->nlisten; i++)
        log_info("listening on %s with %u workers", cfg->listen[i].text, gw.nworkers);
    notify_systemd("READY=1");

    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(sfd, &si, sizeof si);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof si) {
            log_error_errno("signalfd");
            break;
        }
        if (si.ssi_signo == SIGHUP) {
            log_warn("SIGHUP: live reload is not in force yet; restart to apply changes");
            continue;
        }
        log_info("%s: finishing requests in flight (up to %d s), then exiting",
                 strsignal((int)si.ssi_signo), GRACE_S);
        break;
    }
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
    if (rc)
        log_error("cannot start the gateway");
    free(workers);
    backends_free(gw.backends);
    if (sfd >= 0)
        close(sfd);
    cfg_unref(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd = "serve";
    const char *path = DEFAULT_CONFIG;
    int i = 1;
    if (argc > 1 && argv[1][0] != '-')
        cmd = argv[i++];
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            printf("ollama-gateway %s\n", GATEWAY_VERSION);
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
    if (strcmp(cmd, "serve") == 0)
        rc = cmd_serve(path);
    else if (strcmp(cmd, "check") == 0)
        rc = cfg_check(path);
    else {
        fprintf(stderr, "ollama-gateway: unknown command \"%s\"\n", cmd);
        usage(stderr);
        rc = 1;
    }
    curl_global_cleanup();
    return rc;
}
