#include "authguard_shared.h"

#include "log.h"
#include "rand.h"
#include "request.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/*
 * authguard.c's rule on the Redis side. The hash "<prefix>ag:<unit>" holds
 * until (ms, the block's end), bs (the last block's seconds); it lives an
 * hour past the block's end, which is exactly as long as it can double the
 * next one. The failures of the sliding minute are a sorted set beside it,
 * "<prefix>agf:<unit>", scored by time. A blocked address's failures are
 * not counted (locally it is refused before its key is looked at).
 */
const struct redis_script ags_fail_script = {
    .name = "guard",
    .text = "local now\n"
            "if ARGV[2] ~= '0' then now = tonumber(ARGV[2]) else\n"
            "  local t = redis.call('TIME')\n"
            "  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
            "end\n"
            "local limit = tonumber(ARGV[1])\n"
            "local h = redis.call('HMGET', KEYS[1], 'until', 'bs')\n"
            "local untl, bs = tonumber(h[1]) or 0, tonumber(h[2]) or 0\n"
            "if untl > now then return {math.floor((untl - now + 999) / 1000), 0} end\n"
            "if limit == 0 then return {0, 0} end\n"
            "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)\n"
            "redis.call('ZADD', KEYS[2], now, ARGV[3])\n"
            "redis.call('PEXPIRE', KEYS[2], 60000)\n"
            "if redis.call('ZCARD', KEYS[2]) < limit then return {0, 0} end\n"
            "local s = 60\n"
            "if untl > 0 and now - untl < 3600000 and bs > 0 then\n"
            "  if bs >= 450 then s = 900 else s = bs * 2 end\n"
            "end\n"
            "untl = now + s * 1000\n"
            "redis.call('HSET', KEYS[1], 'until', string.format('%d', untl), 'bs', s)\n"
            "redis.call('PEXPIRE', KEYS[1], s * 1000 + 3600000)\n"
            "redis.call('DEL', KEYS[2])\n"
            "return {s, s}\n",
};

void ags_unit(const struct sockaddr *sa, char *out, size_t size)
{
    char t[INET6_ADDRSTRLEN];
    if (sa && sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, t, sizeof t);
        snprintf(out, size, "4:%s", t);
        return;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            inet_ntop(AF_INET, a->s6_addr + 12, t, sizeof t);
            snprintf(out, size, "4:%s", t);
            return;
        }
        struct in6_addr p = {0};
        memcpy(p.s6_addr, a->s6_addr, 8); /* the /64 */
        inet_ntop(AF_INET6, &p, t, sizeof t);
        snprintf(out, size, "6:%s/64", t);
        return;
    }
    snprintf(out, size, "-");
}

int ags_key(const struct request *r, const struct sockaddr *sa, char *out, size_t size)
{
    char unit[INET6_ADDRSTRLEN + 8];
    ags_unit(sa, unit, sizeof unit);
    int n = snprintf(out, size, "%sag:%s", redis_glue_prefix(r->w), unit);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

void ags_refusal(struct apierr *e, unsigned seconds)
{
    apierr_set(e, 429, APIERR_RATE_LIMIT, "rate_limit_exceeded", NULL,
               "Too many failed authentication attempts from this address; try again in %u s",
               seconds);
    e->retry_after_s = seconds;
}

static void failed_answered(struct redis_call *c, const redisReply *reply)
{
    struct request *r = request_of(c, rl_call);
    r->rl_waiting = false;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER &&
        reply->element[1]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer > 0) {
        long long s = reply->element[0]->integer;
        ags_refusal(&r->err, s > 86400 ? 86400 : (unsigned)s);
        if (reply->element[1]->integer > 0)
            log_warn("authentication failed too often from one address, counted across "
                     "replicas: refused for %lld s",
                     s);
    }
    if (r->suspended)
        request_wake(r);
}

bool ags_failed(struct request *r, const struct sockaddr *sa, unsigned limit)
{
    char hash[SHARED_PREFIX_MAX + INET6_ADDRSTRLEN + 16], set[sizeof hash + 1];
    if (!limit || !redis_glue_ready(r->w) || r->rl_waiting || ags_key(r, sa, hash, sizeof hash) < 0)
        return false;
    if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return false;
    /* "<prefix>agf:<unit>" beside "<prefix>ag:<unit>" */
    size_t p = strlen(redis_glue_prefix(r->w));
    snprintf(set, sizeof set, "%.*sagf:%s", (int)p, hash, hash + p + 3);
    char lim[16], name[32];
    snprintf(lim, sizeof lim, "%u", limit);
    rand_id(name, sizeof name, "");
    const char *args[5] = {hash, set, lim, "0", name};
    r->rl_call.done = failed_answered;
    if (redis_glue_eval(r->w, &r->rl_call, &ags_fail_script, 2, 5, args) < 0)
        return false;
    r->rl_waiting = true;
    return true;
}
