#include "redis_sync.h"

#include "shared_dns.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

/* One command's answer: 0 unless it failed or Redis refused it. */
static int command(redisContext *rc, int argc, const char **argv, const char *what, char *why,
                   size_t whysz)
{
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    if (!r) {
        snprintf(why, whysz, "%s: %s", what, rc->errstr);
        return -1;
    }
    int bad = r->type == REDIS_REPLY_ERROR;
    if (bad)
        snprintf(why, whysz, "%s refused: %.200s", what, r->str);
    freeReplyObject(r);
    return bad ? -1 : 0;
}

redisContext *redis_sync_open(const struct cfg_shared *c, unsigned timeout_ms, char *why,
                              size_t whysz)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    char addr[INET6_ADDRSTRLEN];
    const char *ip = c->addr;
    if (!c->unix_path && c->host && shared_dns_get(c->host, c->port, addr, sizeof addr))
        ip = addr;
    if (!c->unix_path && !ip[0]) {
        snprintf(why, whysz, "its host name does not resolve");
        return NULL;
    }
    redisContext *rc = c->unix_path ? redisConnectUnixWithTimeout(c->unix_path, tv)
                                    : redisConnectWithTimeout(ip, (int)c->port, tv);
    if (!rc) {
        snprintf(why, whysz, "out of memory");
        return NULL;
    }
    if (rc->err || redisSetTimeout(rc, tv) != REDIS_OK) {
        snprintf(why, whysz, "%s", rc->errstr);
        redisFree(rc);
        return NULL;
    }
    int bad = 0;
    if (c->password) {
        const char *a[3] = {"AUTH", c->user ? c->user : c->password, c->password};
        bad = command(rc, c->user ? 3 : 2, a, "AUTH", why, whysz);
    }
    if (!bad && c->db) {
        char db[16];
        snprintf(db, sizeof db, "%u", c->db);
        const char *a[2] = {"SELECT", db};
        bad = command(rc, 2, a, "SELECT", why, whysz);
    }
    if (bad) {
        redisFree(rc);
        return NULL;
    }
    return rc;
}
