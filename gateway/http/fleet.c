#include "fleet.h"

#include "log.h"
#include "redis_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t field(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_STRING)
        return 0; /* nil: never used anywhere */
    char *end;
    unsigned long long v = strtoull(r->str, &end, 10);
    return end != r->str && *end == '\0' ? (uint64_t)v : 0;
}

int fleet_read(const struct cfg *cfg, const struct keyring *keys, struct fleet_use *out)
{
    const struct cfg_shared *c = &cfg->shared;
    if (!c->enabled)
        return -1;
    size_t n = keys ? keys->n : 0;
    memset(out, 0, n * sizeof *out);
    char why[256];
    redisContext *rc = redis_sync_open(c, c->timeout_ms, why, sizeof why);
    if (!rc) {
        log_debug("metrics: the fleet's totals left out: Redis at %s: %s", c->redis, why);
        return -1;
    }
    char name[SHARED_PREFIX_MAX + KEY_ID_LEN + 8];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%suse:%s", c->prefix, keys->v[i].id);
        const char *a[5] = {"HMGET", name, "requests", "prompt", "completion"};
        if (redisAppendCommandArgv(rc, 5, a, NULL) != REDIS_OK) {
            redisFree(rc);
            return -1;
        }
    }
    int result = 0;
    for (size_t i = 0; i < n && !result; i++) {
        redisReply *r = NULL;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r) {
            log_debug("metrics: the fleet's totals left out: Redis at %s: %s", c->redis,
                      rc->errstr);
            result = -1;
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
            out[i] = (struct fleet_use){field(r->element[0]), field(r->element[1]),
                                        field(r->element[2])};
        } else {
            result = -1;
        }
        freeReplyObject(r);
    }
    redisFree(rc);
    return result;
}
