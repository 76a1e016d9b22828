#include "ratelimit_shared.h"

#include "auth.h"
#include "authguard_shared.h"
#include "clock.h"
#include "keys.h"
#include "log.h"
#include "rand.h"
#include "request.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/*
 * The Lua below is ratelimit.c's bucket_update, bucket_wait_ms and rl_admit /
 * rl_charge, line for line, on a hash per key: rl/ra/rn and tl/ta/tn are
 * the request and token buckets' level (ticks), last update (ms) and the
 * limit the level was computed for (0 = not in use). Redis's Lua numbers
 * are doubles: every level is below 2^48, so they are exact, and they are
 * written back with %d (a long in Redis's Lua 5.1) so that no digit is
 * lost to tostring's 14. A hash idle for two minutes would be full anyway:
 * it expires after three.
 */
#define LUA_COMMON                                                                                 \
    "local M = 60000\n"                                                                            \
    "local function now_ms()\n"                                                                    \
    "  if ARGV[3] ~= '0' then return tonumber(ARGV[3]) end\n"                                      \
    "  local t = redis.call('TIME')\n"                                                             \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                         \
    "end\n"                                                                                        \
    "local function update(level, at, blimit, limit, now)\n"                                       \
    "  if limit == 0 then return level, at, 0 end\n"                                               \
    "  if blimit == 0 then return limit * M, now, limit end\n"                                     \
    "  if now > at then\n"                                                                         \
    "    local dt = now - at\n"                                                                    \
    "    if dt > 2 * M then dt = 2 * M end\n"                                                      \
    "    level = level + dt * blimit\n"                                                            \
    "    if level > blimit * M then level = blimit * M end\n"                                      \
    "    at = now\n"                                                                               \
    "  end\n"                                                                                      \
    "  if level > limit * M then level = limit * M end\n"                                          \
    "  if level < -limit * M then level = -limit * M end\n"                                        \
    "  return level, at, limit\n"                                                                  \
    "end\n"                                                                                        \
    "local function num(v) return tonumber(v) or 0 end\n"                                          \
    "local function save(...)\n"                                                                   \
    "  local a = {...}\n"                                                                          \
    "  for i = 2, #a, 2 do a[i] = string.format('%d', a[i]) end\n"                                 \
    "  redis.call('HSET', KEYS[1], unpack(a))\n"                                                   \
    "  redis.call('PEXPIRE', KEYS[1], 3 * M)\n"                                                    \
    "end\n"

const struct redis_script rls_admit_script = {
    .name = "admit",
    .text = LUA_COMMON
    "local function wait(level, limit, need)\n"
    "  if level >= need then return 0 end\n"
    "  return math.floor((need - level + limit - 1) / limit)\n"
    "end\n"
    "local rpm, tpm, now = tonumber(ARGV[1]), tonumber(ARGV[2]), now_ms()\n"
    "local gu = tonumber(redis.call('HGET', KEYS[3], 'until') or '0') or 0\n"
    "if gu > now then return {4, gu - now, 0, 0, 0, 0, 0, 0} end\n"
    "local ks = redis.call('HGET', KEYS[4], ARGV[7])\n"
    "if ks then\n"
    "  if ks == 'revoked' then return {5, 0, 0, 0, 0, 0, 0, 0} end\n"
    "  return {6, 0, 0, 0, 0, 0, 0, 0}\n"
    "end\n"
    "local h = redis.call('HMGET', KEYS[1], 'rl', 'ra', 'rn', 'tl', 'ta', 'tn')\n"
    "local rl, ra, rn = update(num(h[1]), num(h[2]), num(h[3]), rpm, now)\n"
    "local tl, ta, tn = update(num(h[4]), num(h[5]), num(h[6]), tpm, now)\n"
    "local which, w = 0, 0\n"
    "if rn > 0 then local x = wait(rl, rn, M); if x > w then w = x; which = 1 end end\n"
    "if tn > 0 then local x = wait(tl, tn, 1); if x > w then w = x; which = 2 end end\n"
    "local mi, lease = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "if mi > 0 then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
    "  if redis.call('ZCARD', KEYS[2]) >= mi and w < 1000 then w = 1000; which = 3 end\n"
    "end\n"
    "if which == 0 then\n"
    "  if rn > 0 then rl = rl - M end\n"
    "  if mi > 0 then\n"
    "    redis.call('ZADD', KEYS[2], string.format('%d', now + lease), ARGV[6])\n"
    "    redis.call('PEXPIRE', KEYS[2], lease + 1000)\n"
    "  end\n"
    "end\n"
    "save('rl', rl, 'ra', ra, 'rn', rn, 'tl', tl, 'ta', ta, 'tn', tn)\n"
    "local rr, rs, tr, ts = 0, 0, 0, 0\n"
    "if rn > 0 then rr = math.floor(rl / M); rs = wait(rl, rn, rn * M) end\n"
    "if tn > 0 then if tl > 0 then tr = math.floor(tl / M) end; ts = wait(tl, tn, tn * M) end\n"
    "return {which, w, rr, rs, tr, ts, rn, tn}\n",
};

const struct redis_script rls_lease_script = {
    .name = "lease",
    .text = "local now\n"
            "if ARGV[2] ~= '0' then now = tonumber(ARGV[2]) else\n"
            "  local t = redis.call('TIME')\n"
            "  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
            "end\n"
            "if ARGV[1] == 'release' then return redis.call('ZREM', KEYS[1], ARGV[4]) end\n"
            "local lease = tonumber(ARGV[3])\n"
            "local n = redis.call('ZADD', KEYS[1], 'XX', 'CH', string.format('%d', now + lease), "
            "ARGV[4])\n"
            "if redis.call('PTTL', KEYS[1]) < lease + 1000 then\n"
            "  redis.call('PEXPIRE', KEYS[1], lease + 1000)\n"
            "end\n"
            "return n\n",
};

const struct redis_script rls_charge_script = {
    .name = "charge",
    .text = LUA_COMMON "local tpm, n, now = tonumber(ARGV[1]), tonumber(ARGV[2]), now_ms()\n"
                       "if KEYS[2] then\n"
                       "  redis.call('HINCRBY', KEYS[2], 'requests', 1)\n"
                       "  if tonumber(ARGV[4]) > 0 then redis.call('HINCRBY', KEYS[2], 'prompt', "
                       "ARGV[4]) end\n"
                       "  if tonumber(ARGV[5]) > 0 then redis.call('HINCRBY', KEYS[2], "
                       "'completion', ARGV[5]) end\n"
                       "end\n"
                       "if tpm == 0 or n <= 0 then return 1 end\n"
                       "local h = redis.call('HMGET', KEYS[1], 'tl', 'ta', 'tn')\n"
                       "local tl, ta, tn = update(num(h[1]), num(h[2]), num(h[3]), tpm, now)\n"
                       "if n > 2 * tpm then n = 2 * tpm end\n"
                       "tl = tl - n * M\n"
                       "if tl < -tpm * M then tl = -tpm * M end\n"
                       "save('tl', tl, 'ta', ta, 'tn', tn)\n"
                       "return 1\n",
};

int rls_verdict(const redisReply *reply, struct rl_verdict *v)
{
    memset(v, 0, sizeof *v);
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 8)
        return -1;
    long long n[8];
    for (size_t i = 0; i < 8; i++) {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER)
            return -1;
        n[i] = reply->element[i]->integer;
    }
    static const char *const which[] = {NULL,      "requests",  "tokens",    "concurrent requests",
                                        RLS_GUARD, RLS_REVOKED, RLS_DISABLED};
    if (n[0] < 0 || n[0] > 6)
        return -1;
    v->which = which[n[0]];
    v->ok = !v->which;
    if (!v->ok)
        v->retry_after_s = rl_retry_after_s(n[1]);
    if (n[6] > 0) {
        v->limit_requests = (long)n[6];
        v->remaining_requests = (long)n[2];
        v->reset_requests_ms = n[3];
    }
    if (n[7] > 0) {
        v->limit_tokens = (long)n[7];
        v->remaining_tokens = (long)n[4];
        v->reset_tokens_ms = n[5];
    }
    return 0;
}

/* "<prefix><kind>:<key id>": kind "rl" the buckets' hash, "if" the leases. */
static int key_name(const struct request *r, const char *kind, char *out, size_t size)
{
    int n = snprintf(out, size, "%s%s:%s", redis_glue_prefix(r->w), kind, r->key->id);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

#define KEY_NAME_MAX (SHARED_PREFIX_MAX + KEY_ID_LEN + 8)

static int64_t lease_ms(const struct request *r)
{
    return (int64_t)r->cfg->shared.lease_s * 1000;
}

static void answered(struct redis_call *c, const redisReply *reply)
{
    struct request *r = request_of(c, rl_call);
    const struct key *k = r->key;
    bool generation = (r->route->flags & ROUTE_GENERATES) != 0;
    r->rl_waiting = false;
    if (rls_verdict(reply, &r->rlv) == 0) {
        r->rl_shared = r->rlv.ok;
        if (r->rlv.ok && r->rl_lease_id[0]) {
            r->rl_lease = true;
            r->rl_renew_at = now_ms() + lease_ms(r) / 3;
        }
    } else {
        /* Redis is away, too slow, or answered nonsense: this replica's
         * own limits decide, in flight included. */
        r->rl_fallback = true;
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_debug("shared limits: key %s checked locally: %.200s", k->id, reply->str);
        struct rl_limits lim = {.rpm = k->rpm, .tpm = k->tpm, .max_inflight = k->max_inflight};
        if (rl_admit(r->rl, &lim, generation, now_ms(), &r->rlv))
            r->rl_inflight = generation && lim.max_inflight;
    }
    if (!r->rlv.ok && !r->refused) {
        /* Blocked, revoked or disabled through another replica: the
         * answer one gateway gives, with no x-ratelimit-* headers. */
        if (strcmp(r->rlv.which, RLS_GUARD) == 0) {
            ags_refusal(&r->err, r->rlv.retry_after_s);
            memset(&r->rlv, 0, sizeof r->rlv);
        } else if (strcmp(r->rlv.which, RLS_REVOKED) == 0 ||
                   strcmp(r->rlv.which, RLS_DISABLED) == 0) {
            bool revoked = strcmp(r->rlv.which, RLS_REVOKED) == 0;
            auth_key_refusal(r, revoked ? KEY_REVOKED : KEY_DISABLED, &r->err);
            memset(&r->rlv, 0, sizeof r->rlv);
        } else {
            auth_refusal(r, &r->err);
        }
        r->refused = true;
    }
    if (r->suspended)
        request_wake(r);
}

enum rls_start rls_admit(struct request *r, const struct rl_limits *lim, bool counts_inflight,
                         const struct sockaddr *sa)
{
    unsigned mi = counts_inflight ? lim->max_inflight : 0;
    /* Every key asks, limits or not: the address may be blocked, or the
     * key revoked, through another replica. */
    if ((r->route->flags & ROUTE_UPLOAD) && strcmp(r->method, "POST") == 0)
        return RLS_LOCAL;
    /* From here on a local check is a fallback (counted for metrics). */
    r->rl_fallback = r->cfg->shared.enabled;
    if (!redis_glue_ready(r->w))
        return RLS_LOCAL;
    char hash[KEY_NAME_MAX], set[KEY_NAME_MAX], block[SHARED_PREFIX_MAX + INET6_ADDRSTRLEN + 16],
        states[SHARED_PREFIX_MAX + 8];
    snprintf(states, sizeof states, "%skeys", redis_glue_prefix(r->w));
    if (key_name(r, "rl", hash, sizeof hash) < 0 || key_name(r, "if", set, sizeof set) < 0 ||
        ags_key(r, sa, block, sizeof block) < 0)
        return RLS_LOCAL;
    char rpm[16], tpm[16], max[16], lease[24];
    snprintf(rpm, sizeof rpm, "%u", lim->rpm);
    snprintf(tpm, sizeof tpm, "%u", lim->tpm);
    snprintf(max, sizeof max, "%u", mi);
    snprintf(lease, sizeof lease, "%lld", (long long)lease_ms(r));
    /* A place in flight is a lease in the key's sorted set, named at
     * random so that no two requests of any replica share one. */
    r->rl_lease_id[0] = '\0';
    if (mi)
        rand_id(r->rl_lease_id, sizeof r->rl_lease_id, "");
    const char *args[11] = {
        hash, set, block, states, rpm, tpm, "0", max, lease, mi ? r->rl_lease_id : "-", r->key->id};
    r->rl_call.done = answered;
    if (redis_glue_eval(r->w, &r->rl_call, &rls_admit_script, 4, 11, args) < 0)
        return RLS_LOCAL;
    r->rl_fallback = false; /* until the answer says otherwise */
    r->rl_waiting = true;
    return RLS_WAIT;
}

/* Renew or release r's lease, not waiting for the answer: a lease that is
 * never released (Redis away meanwhile) expires on its own. */
static void lease_op(struct request *r, const char *op)
{
    char set[KEY_NAME_MAX], lease[24];
    if (key_name(r, "if", set, sizeof set) < 0)
        return;
    snprintf(lease, sizeof lease, "%lld", (long long)lease_ms(r));
    const char *args[5] = {set, op, "0", lease, r->rl_lease_id};
    redis_glue_eval(r->w, NULL, &rls_lease_script, 1, 5, args);
}

void rls_tick(struct request *r, int64_t now)
{
    if (!r->rl_lease || now < r->rl_renew_at)
        return;
    lease_op(r, "renew");
    r->rl_renew_at = now + lease_ms(r) / 3;
}

bool rls_finish(struct request *r, long prompt, long completion)
{
    if (r->rl_waiting) {
        redis_glue_cancel(&r->rl_call);
        r->rl_waiting = false;
    }
    if (r->rl_lease) {
        lease_op(r, "release");
        r->rl_lease = false;
    }
    /* The fleet's usage totals count every request with the key, refused or
     * judged locally too (as ollama_gateway_key_requests_total does), in the
     * same script call as the charge: no extra round trip, no waiting. */
    long tokens = prompt + completion;
    bool charge = r->rl_shared && r->key->tpm && tokens > 0;
    char hash[KEY_NAME_MAX], use[KEY_NAME_MAX], tpm[16], n[24], p[24], c[24];
    if (!redis_glue_ready(r->w) || key_name(r, "rl", hash, sizeof hash) < 0 ||
        key_name(r, "use", use, sizeof use) < 0)
        return r->rl_shared && !charge;
    snprintf(tpm, sizeof tpm, "%u", charge ? r->key->tpm : 0);
    snprintf(n, sizeof n, "%ld", tokens);
    snprintf(p, sizeof p, "%ld", prompt > 0 ? prompt : 0);
    snprintf(c, sizeof c, "%ld", completion > 0 ? completion : 0);
    const char *args[7] = {hash, use, tpm, n, "0", p, c};
    bool sent = redis_glue_eval(r->w, NULL, &rls_charge_script, 2, 7, args) == 0;
    return r->rl_shared && (!charge || sent);
}
