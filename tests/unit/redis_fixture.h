/*
 * redis_fixture: a real redis-server (redis_server_fixture.h) for unit tests
 * of the Redis glue and the shared limits' scripts, and a worker with just enough of a loop to
 * drive redis_glue: an epoll set, the deferred tasks and redis_glue_service.
 *
 * Header-only (static functions) so that each test executable has its own.
 * When redis-server is not installed the tests skip, saying so
 * (deploy/install-deps.sh --test installs it).
 */
#ifndef TESTS_REDIS_FIXTURE_H
#define TESTS_REDIS_FIXTURE_H

#include "clock.h"
#include "config.h"
#include "redis_glue.h"
#include "worker.h"
#include "redis_server_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct redis_fixture {
    struct redis_server srv;
    struct worker w;
    struct cfg *cfg;
};

static inline int fx_redis_start(struct redis_fixture *f)
{
    return rs_start(&f->srv);
}

static inline void fx_redis_kill(struct redis_fixture *f)
{
    rs_kill(&f->srv);
}

#define fx_command(f, ...) rs_command(&(f)->srv, __VA_ARGS__)

/* The configuration naming the fixture's socket (timeout_ms as given). */
static inline struct cfg *fx_cfg(struct redis_fixture *f, unsigned timeout_ms, const char *prefix)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"backends\": [{\"url\": \"http://127.0.0.1:11434\"}], \"shared\": {\"redis\": "
             "\"unix:%s\", \"prefix\": \"%s\", \"timeout_ms\": %u}}",
             f->srv.sock, prefix, timeout_ms);
    return cfg_load_buffer(text, strlen(text), "unit.json", "/", NULL);
}

/* A worker with an epoll set and nothing else, its link following cfg. */
static inline int fx_worker(struct redis_fixture *f, struct cfg *cfg)
{
    memset(&f->w, 0, sizeof f->w);
    f->w.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (f->w.epfd < 0 || redis_glue_init(&f->w) < 0)
        return -1;
    f->cfg = cfg;
    redis_glue_configure(&f->w, cfg);
    return 0;
}

static inline void fx_worker_free(struct redis_fixture *f)
{
    redis_glue_free(&f->w);
    close(f->w.epfd);
    cfg_unref(f->cfg);
    f->cfg = NULL;
}

/* One turn of the loop, waiting at most wait_ms for an event. */
static inline void fx_turn(struct redis_fixture *f, int wait_ms)
{
    struct worker *w = &f->w;
    struct epoll_event ev[16];
    int64_t at = redis_glue_deadline(w);
    int64_t now = now_ms();
    if (w->tasks)
        wait_ms = 0;
    else if (at >= 0 && at - now < wait_ms)
        wait_ms = at <= now ? 0 : (int)(at - now);
    int n = epoll_wait(w->epfd, ev, 16, wait_ms);
    for (int i = 0; i < n; i++) {
        struct worker_watch *wt = ev[i].data.ptr;
        if (wt->fd >= 0)
            wt->on_event(wt, ev[i].events);
    }
    redis_glue_service(w, now_ms());
    for (int guard = 0; w->tasks && guard < 1000; guard++) {
        struct worker_task *t = w->tasks;
        worker_cancel(w, t);
        t->run(t);
    }
}

/* Turn the loop until *flag is true or ms have passed; returns *flag. */
static inline bool fx_until(struct redis_fixture *f, const bool *flag, int ms)
{
    int64_t end = now_ms() + ms;
    while (!*flag && now_ms() < end)
        fx_turn(f, 10);
    return *flag;
}

/* Turn the loop until the link is ready or ms have passed. */
static inline bool fx_until_ready(struct redis_fixture *f, int ms)
{
    int64_t end = now_ms() + ms;
    while (!redis_glue_ready(&f->w) && now_ms() < end)
        fx_turn(f, 10);
    return redis_glue_ready(&f->w);
}

#endif
