#include "keystate.h"

#include "log.h"
#include "redis_sync.h"
#include "snapshot.h"
#include "clock.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

const char *keystate_of(const struct key *k)
{
    if (!k)
        return "revoked"; /* gone from the file */
    if (k->revoked)
        return "revoked";
    if (k->disabled)
        return "disabled";
    return NULL;
}

static bool same_state(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* One change to tell: "HSET <prefix>keys id state" or "HDEL ...". */
struct change {
    char id[KEY_ID_LEN + 1];
    const char *state; /* NULL: enabled again */
};

/* Send cmds (already appended) and check each answer. */
static int answers(redisContext *rc, int n, const struct cfg_shared *c)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK) {
            log_warn("shared limits: Redis at %s did not answer while sharing key states: %s",
                     c->redis, rc->errstr);
            return -1;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            log_warn("shared limits: Redis at %s refused a key state: %.200s", c->redis, r->str);
            bad = -1;
        }
        freeReplyObject(r);
    }
    return bad;
}

/* Main thread only: when a change could not be told, the keyring Redis was
 * last told about (a reference), and when to try again; NULL: nothing owed. */
static struct keyring *owed;
static int64_t owed_retry_at;

static void forgive(void)
{
    keyring_unref(owed);
    owed = NULL;
}

void keystate_forget(void)
{
    forgive();
}

static int share(const struct cfg *cfg, const struct keyring *before, const struct keyring *after,
                 bool retry);

int keystate_share(const struct cfg *cfg, const struct keyring *before, const struct keyring *after)
{
    return share(cfg, before, after, false);
}

int64_t keystate_retry_at(void)
{
    return owed ? owed_retry_at : -1;
}

void keystate_retry(void)
{
    struct snapshot *snap = snapshot_acquire();
    if (!owed || !snap || !snap->cfg->shared.enabled)
        forgive();
    else
        share(snap->cfg, owed, snap->keys, true);
    snapshot_unref(snap);
}

static int share(const struct cfg *cfg, const struct keyring *before, const struct keyring *after,
                 bool retry)
{
    const struct cfg_shared *c = &cfg->shared;
    if (!c->enabled) {
        forgive(); /* another server, or none: nothing is owed to it */
        return 0;
    }
    /* Something is owed: tell what changed since Redis was last told, and
     * every key this file refuses (Redis may have come back empty). */
    bool full = owed != NULL;
    if (owed)
        before = owed;
    if (!before)
        return 0;
    /* The changes: every key of either ring whose state differs. */
    size_t nb = before->n, na = after ? after->n : 0, nc = 0;
    struct change *ch = calloc(nb + na ? nb + na : 1, sizeof *ch);
    if (!ch)
        return -1;
    for (size_t i = 0; i < na; i++) {
        const struct key *k = &after->v[i];
        const struct key *old = keyring_find(before, k->id);
        const char *was = old ? keystate_of(old) : NULL; /* a new key: nothing to take back */
        if (!same_state(was, keystate_of(k)) || (full && keystate_of(k))) {
            memcpy(ch[nc].id, k->id, sizeof ch[nc].id);
            ch[nc++].state = keystate_of(k);
        }
    }
    for (size_t i = 0; i < nb; i++) {
        const struct key *k = &before->v[i];
        if ((after && keyring_find(after, k->id)) || keystate_of(k))
            continue; /* still there, or refused already */
        memcpy(ch[nc].id, k->id, sizeof ch[nc].id);
        ch[nc++].state = "revoked";
    }
    int rc_out = (int)nc;
    if (!nc)
        goto out;
    char why[256] = "its host name does not resolve";
    redisContext *rc = !c->unix_path && !c->addr[0] && !c->host
                           ? NULL
                           : redis_sync_open(c, KEYSTATE_TIMEOUT_MS, why, sizeof why);
    if (!rc) {
        if (!retry) /* once per change, not once per try */
            log_warn("shared limits: cannot reach Redis at %s to share key states (%s); they "
                     "are told when it answers",
                     c->redis, why);
        rc_out = -1;
        goto out;
    }
    char hash[SHARED_PREFIX_MAX + 8];
    snprintf(hash, sizeof hash, "%skeys", c->prefix);
    int n = 0;
    for (size_t i = 0; i < nc; i++) {
        const char *set[4] = {"HSET", hash, ch[i].id, ch[i].state};
        const char *del[3] = {"HDEL", hash, ch[i].id};
        if (ch[i].state)
            redisAppendCommandArgv(rc, 4, set, NULL);
        else
            redisAppendCommandArgv(rc, 3, del, NULL);
        n++;
    }
    if (answers(rc, n, c) < 0) {
        rc_out = -1;
    } else {
        for (size_t i = 0; i < nc; i++)
            log_info("shared limits: told Redis that key %s %s", ch[i].id,
                     ch[i].state
                         ? (strcmp(ch[i].state, "revoked") == 0 ? "is revoked" : "is disabled")
                         : "is usable again");
    }
    redisFree(rc);
out:
    free(ch);
    if (rc_out >= 0) {
        forgive();
    } else {
        if (!owed) /* a reference: the caller's ring may go with its snapshot */
            owed = keyring_ref((struct keyring *)before);
        owed_retry_at = now_ms() + KEYSTATE_RETRY_MS;
    }
    return rc_out;
}
