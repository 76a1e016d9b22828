/*
 * redis_server_fixture: a real redis-server for unit tests, on a Unix socket
 * in a temp dir (no TCP port, no persistence), and a blocking command on a
 * connection of the test's own. Needs only hiredis, so any layer's tests may
 * use it. When redis-server is not installed the tests that need it skip,
 * saying so (deploy/install-deps.sh --test installs it).
 */
#ifndef TESTS_REDIS_SERVER_FIXTURE_H
#define TESTS_REDIS_SERVER_FIXTURE_H

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct redis_server {
    pid_t pid; /* 0: not running */
    char dir[64];
    char sock[128];
};

/* Start redis-server on dir/redis.sock and wait (5 s at most) until it
 * answers. -1: not installed or would not start. */
static inline int rs_start(struct redis_server *f)
{
    if (!f->dir[0]) {
        snprintf(f->dir, sizeof f->dir, "/tmp/ogw-unit-redis-XXXXXX");
        if (!mkdtemp(f->dir))
            return -1;
    }
    snprintf(f->sock, sizeof f->sock, "%s/redis.sock", f->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", f->sock,
               "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", f->dir,
               (char *)NULL);
        _exit(127);
    }
    f->pid = pid;
    for (int i = 0; i < 500; i++) {
        redisContext *c = redisConnectUnix(f->sock);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c) {
            redisFree(c);
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            f->pid = 0;
            return -1;
        }
        usleep(10000);
    }
    return -1;
}

static inline void rs_kill(struct redis_server *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGCONT);
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
    }
    f->pid = 0;
    unlink(f->sock);
}

/* A command on a connection of the test's own (blocking hiredis). */
static inline redisReply *rs_command(struct redis_server *f, const char *fmt, ...)
{
    redisContext *c = redisConnectUnix(f->sock);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

#endif
