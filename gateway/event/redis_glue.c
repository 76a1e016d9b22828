#include "redis_glue.h"

#include "clock.h"
#include "log.h"
#include "shared_dns.h"

#include <hiredis/async.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define SCRIPTS_MAX 8

enum link_state {
    LINK_OFF,        /* no "shared" in the configuration */
    LINK_WAIT,       /* no connection: the next try is at retry_at */
    LINK_CONNECTING, /* connecting, or the handshake is not answered yet */
    LINK_READY,
};

enum pending_kind { P_CALL, P_LOAD, P_HANDSHAKE, P_PING };

/* A command in flight, in the order sent (which is the order of answers). */
struct redis_pending {
    struct redis_pending *prev, *next;
    struct redis_link *link;
    struct redis_call *call; /* who waits for the answer; NULL = nobody */
    int64_t sent;            /* monotonic ms */
    enum pending_kind kind;
    int script; /* index in link->scripts, or -1 */
    /* P_CALL: the script's keys and arguments (copies, in data), kept to
     * send it again as EVAL when the server answers NOSCRIPT */
    bool retried;
    int nkeys, nargs;
    char *args[REDIS_ARGS_MAX];
    char data[];
};

struct script_slot {
    const struct redis_script *s;
    char sha[41]; /* "" until SCRIPT LOAD answered on this connection */
    bool loading;
};

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

struct redis_link {
    struct worker *w;
    struct cfg *cfg;               /* a reference: the configuration followed; NULL = off */
    const struct cfg_shared *conf; /* &cfg->shared */
    redisAsyncContext *ac;         /* NULL when there is no connection */
    bool connected;                /* hiredis has called on_connect with REDIS_OK */
    struct worker_watch watch;     /* ac's socket */
    bool registered;
    uint32_t events;          /* what epoll is asked for */
    struct worker_task flush; /* writes what callbacks queued, in one go */
    bool flushing;
    enum link_state state;
    int64_t retry_at, connect_deadline;
    unsigned backoff_ms;
    unsigned back_seen;  /* back_gen when this link last tried */
    bool drop;           /* a callback found the connection unusable */
    char drop_why[160];  /* ... and why */
    const char *closing; /* close_link is freeing ac: why (NULL = quietly) */
    bool closing_by_us;
    struct redis_pending *head, *tail;
    struct script_slot scripts[SCRIPTS_MAX];
};

/* Process-wide, any worker: an outage was announced and is not over yet;
 * the first connection was announced. */
static atomic_bool away;
static atomic_bool announced;
/* Bumped when a link comes back after an outage: the other workers' links,
 * waiting out their backoff, try again at once (at their next tick). */
static atomic_uint back_gen;
/* Counted for metrics (redis_glue_stats): each link adds and removes itself
 * as its state changes (set_state); outages when "is away" is logged. */
static atomic_uint links_on, links_ready;
static atomic_uint_least64_t outages;

bool redis_glue_away(void)
{
    return atomic_load(&away);
}

void redis_glue_stats(struct redis_glue_stats *s)
{
    s->links = atomic_load_explicit(&links_on, memory_order_relaxed);
    s->ready = atomic_load_explicit(&links_ready, memory_order_relaxed);
    s->outages = atomic_load_explicit(&outages, memory_order_relaxed);
}

static void announce_away(const struct redis_link *l, const char *why)
{
    if (!atomic_exchange(&away, true) && (atomic_fetch_add(&outages, 1), true))
        log_warn("shared limits: Redis at %s is away (%s); each replica applies its own "
                 "limits meanwhile",
                 l->conf->redis, why);
}

static void announce_ready(const struct redis_link *l)
{
    if (atomic_exchange(&away, false) && (atomic_fetch_add(&back_gen, 1), true))
        log_info("shared limits: Redis at %s is back; limits are shared again", l->conf->redis);
    else if (!atomic_exchange(&announced, true))
        log_info("shared limits: connected to Redis at %s; limits are shared", l->conf->redis);
}

/* Every change of l->state goes through here, to keep the counts. */
static void set_state(struct redis_link *l, enum link_state st)
{
    if (l->state == LINK_OFF && st != LINK_OFF)
        atomic_fetch_add(&links_on, 1);
    else if (l->state != LINK_OFF && st == LINK_OFF)
        atomic_fetch_sub(&links_on, 1);
    if (l->state != LINK_READY && st == LINK_READY)
        atomic_fetch_add(&links_ready, 1);
    else if (l->state == LINK_READY && st != LINK_READY)
        atomic_fetch_sub(&links_ready, 1);
    l->state = st;
}

/* ---- the five hooks hiredis calls, and the loop's side of them ---- */

static void set_events(struct redis_link *l, uint32_t ev)
{
    if (!l->ac || (l->registered && ev == l->events))
        return;
    if (!l->registered) {
        if (worker_watch(l->w, &l->watch, l->ac->c.fd, ev) < 0) {
            log_warn_errno("shared limits: cannot watch the Redis socket");
            l->drop = true;
            snprintf(l->drop_why, sizeof l->drop_why, "epoll refused its socket");
            return;
        }
        l->registered = true;
    } else {
        worker_rewatch(l->w, &l->watch, ev);
    }
    l->events = ev;
}

static void ev_add_read(void *d)
{
    struct redis_link *l = d;
    set_events(l, l->events | EPOLLIN);
}

static void ev_del_read(void *d)
{
    struct redis_link *l = d;
    set_events(l, l->events & ~(uint32_t)EPOLLIN);
}

/* Connected, hiredis wants to write: a task does it at the loop's next
 * step, with whatever else was queued by then (pipelining, and no epoll
 * round trip). While connecting, or when the kernel took only part, wait
 * for EPOLLOUT. */
static void ev_add_write(void *d)
{
    struct redis_link *l = d;
    if (l->connected && !l->flushing)
        worker_defer(l->w, &l->flush);
    else
        set_events(l, l->events | EPOLLOUT);
}

static void ev_del_write(void *d)
{
    struct redis_link *l = d;
    set_events(l, l->events & ~(uint32_t)EPOLLOUT);
}

static void ev_cleanup(void *d)
{
    struct redis_link *l = d;
    worker_unwatch(l->w, &l->watch);
    l->registered = false;
    l->events = 0;
    worker_cancel(l->w, &l->flush);
}

static void run_flush(struct worker_task *t)
{
    struct redis_link *l = (struct redis_link *)((char *)t - offsetof(struct redis_link, flush));
    if (!l->ac || !l->connected)
        return;
    l->flushing = true;
    redisAsyncHandleWrite(l->ac); /* may drop the connection: ac is not used after */
    l->flushing = false;
}

static void on_socket(struct worker_watch *wt, uint32_t events)
{
    struct redis_link *l = wt->ctx;
    if (l->ac && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        redisAsyncHandleRead(l->ac);
    if (l->ac && (events & EPOLLOUT))
        redisAsyncHandleWrite(l->ac);
}

/* ---- the connection's life ---- */

/* The connection is gone (hiredis frees ac after this): try again later. */
static void lost(struct redis_link *l, const char *why)
{
    l->ac = NULL;
    l->connected = false;
    l->registered = false;
    l->events = 0;
    l->drop = false; /* about the connection that is gone */
    for (size_t i = 0; i < SCRIPTS_MAX; i++) {
        l->scripts[i].sha[0] = '\0';
        l->scripts[i].loading = false;
    }
    if (l->state == LINK_OFF)
        return;
    if (why)
        announce_away(l, why);
    set_state(l, LINK_WAIT);
    l->retry_at = now_ms() + l->backoff_ms;
    l->backoff_ms =
        l->backoff_ms * 2 > REDIS_BACKOFF_MAX_MS ? REDIS_BACKOFF_MAX_MS : l->backoff_ms * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_link *l = ac->data;
    if (status == REDIS_OK) {
        l->connected = true;
        /* What was queued before the connect completed goes out now. */
        worker_defer(l->w, &l->flush);
        return;
    }
    lost(l, ac->errstr[0] ? ac->errstr : "cannot connect");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct redis_link *l = ac->data;
    if (l->closing_by_us)
        lost(l, l->closing);
    else
        lost(l, ac->errstr[0] ? ac->errstr : "it closed the connection");
}

/* Drop the connection from the loop (never from inside a hiredis callback):
 * every command in flight fails (done(NULL)). why NULL: quietly (a reload). */
static void close_link(struct redis_link *l, const char *why)
{
    redisAsyncContext *ac = l->ac;
    if (!ac)
        return;
    l->closing = why;
    l->closing_by_us = true;
    bool was_connected = l->connected;
    redisAsyncFree(ac); /* calls every callback, then on_disconnect when connected */
    l->closing_by_us = false;
    if (!was_connected || l->ac) /* on_disconnect was not called */
        lost(l, why);
    l->drop = false;
}

static void unlink_pending(struct redis_link *l, struct redis_pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        l->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        l->tail = p->prev;
}

static struct redis_pending *new_pending(struct redis_link *l, enum pending_kind kind, int script)
{
    struct redis_pending *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->link = l;
    p->kind = kind;
    p->script = script;
    p->sent = now_ms();
    return p;
}

static void link_pending(struct redis_link *l, struct redis_pending *p)
{
    p->prev = l->tail;
    p->next = NULL;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
}

static int send_internal(struct redis_link *l, enum pending_kind kind, int script, int argc,
                         const char **argv);

/* Send call p: EVALSHA when the script's digest is known on this
 * connection, else EVAL (and SCRIPT LOAD, once, for the next calls). */
static int issue(struct redis_link *l, struct redis_pending *p)
{
    struct script_slot *slot = &l->scripts[p->script];
    bool have_sha = slot->sha[0] != '\0';
    const char *argv[REDIS_ARGS_MAX + 3];
    char nk[12];
    snprintf(nk, sizeof nk, "%d", p->nkeys);
    argv[0] = have_sha ? "EVALSHA" : "EVAL";
    argv[1] = have_sha ? slot->sha : slot->s->text;
    argv[2] = nk;
    for (int i = 0; i < p->nargs; i++)
        argv[3 + i] = p->args[i];
    if (redisAsyncCommandArgv(l->ac, on_reply, p, 3 + p->nargs, argv, NULL) != REDIS_OK)
        return -1;
    link_pending(l, p);
    if (p->call)
        p->call->pending = p;
    if (!have_sha && !slot->loading) {
        const char *load[3] = {"SCRIPT", "LOAD", slot->s->text};
        if (send_internal(l, P_LOAD, p->script, 3, load) == 0)
            slot->loading = true;
    }
    return 0;
}

static void ask_drop(struct redis_link *l, const char *what, const redisReply *r)
{
    if (l->drop)
        return;
    l->drop = true;
    snprintf(l->drop_why, sizeof l->drop_why, "%s: %.100s", what,
             r && r->type == REDIS_REPLY_ERROR && r->str ? r->str : "unexpected answer");
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct redis_pending *p = privdata;
    struct redis_link *l = p->link;
    const redisReply *r = reply;
    unlink_pending(l, p);
    bool failed = !r || r->type == REDIS_REPLY_ERROR;
    switch (p->kind) {
    case P_HANDSHAKE:
        if (r && failed)
            ask_drop(l, "AUTH or SELECT refused", r);
        break;
    case P_PING:
        if (!failed && l->state == LINK_CONNECTING && !l->drop) {
            set_state(l, LINK_READY);
            l->backoff_ms = REDIS_BACKOFF_MIN_MS;
            announce_ready(l);
        } else if (r && failed) {
            ask_drop(l, "PING refused", r);
        }
        break;
    case P_LOAD: {
        struct script_slot *s = &l->scripts[p->script];
        s->loading = false;
        if (r && r->type == REDIS_REPLY_STRING && r->len == 40) {
            memcpy(s->sha, r->str, 40);
            s->sha[40] = '\0';
        } else if (r) {
            log_warn("shared limits: Redis would not load the script %s: %.200s", s->s->name,
                     r->type == REDIS_REPLY_ERROR && r->str ? r->str : "unexpected answer");
        }
        break;
    }
    case P_CALL:
        if (r && r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            /* The server lost its scripts (SCRIPT FLUSH; a restart would
             * have closed the connection): send this one again with its
             * text, once, and load the script again for the next ones. */
            l->scripts[p->script].sha[0] = '\0';
            if (!p->retried && !l->drop) {
                p->retried = true;
                p->sent = now_ms();
                if (issue(l, p) == 0)
                    return;
            }
        }
        if (p->call) {
            struct redis_call *c = p->call;
            c->pending = NULL;
            c->done(c, r);
        }
        break;
    }
    free(p);
}

static int send_internal(struct redis_link *l, enum pending_kind kind, int script, int argc,
                         const char **argv)
{
    struct redis_pending *p = new_pending(l, kind, script);
    if (!p)
        return -1;
    if (redisAsyncCommandArgv(l->ac, on_reply, p, argc, argv, NULL) != REDIS_OK) {
        free(p);
        return -1;
    }
    link_pending(l, p);
    return 0;
}

static void connect_link(struct redis_link *l, int64_t now)
{
    const struct cfg_shared *c = l->conf;
    /* A name: its latest address from the discovery thread, else the one
     * found when the configuration was loaded. */
    char addr[INET6_ADDRSTRLEN];
    const char *ip = c->addr;
    if (!c->unix_path && c->host && shared_dns_get(c->host, c->port, addr, sizeof addr))
        ip = addr;
    set_state(l, LINK_CONNECTING);
    l->connect_deadline = now + REDIS_CONNECT_TIMEOUT_MS;
    if (!c->unix_path && !ip[0]) {
        lost(l, "its host name does not resolve");
        return;
    }
    redisAsyncContext *ac =
        c->unix_path ? redisAsyncConnectUnix(c->unix_path) : redisAsyncConnect(ip, (int)c->port);
    if (!ac) {
        lost(l, "out of memory");
        return;
    }
    if (ac->err) {
        char why[160];
        snprintf(why, sizeof why, "%.150s", ac->errstr);
        redisAsyncFree(ac);
        lost(l, why);
        return;
    }
    l->ac = ac;
    ac->data = l;
    ac->ev.data = l;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    l->watch.on_event = on_socket;
    l->watch.ctx = l;
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    redisAsyncSetConnectCallback(ac, on_connect); /* asks for EPOLLOUT: the connect's end */
    /* The handshake, pipelined behind the connect: the PING's answer says
     * that everything before it was accepted. */
    int rc = 0;
    if (c->password) {
        const char *auth[3] = {"AUTH", c->user ? c->user : c->password, c->password};
        rc |= send_internal(l, P_HANDSHAKE, -1, c->user ? 3 : 2, auth);
    }
    if (c->db) {
        char db[16];
        snprintf(db, sizeof db, "%u", c->db);
        const char *sel[2] = {"SELECT", db};
        rc |= send_internal(l, P_HANDSHAKE, -1, 2, sel);
    }
    const char *ping[1] = {"PING"};
    rc |= send_internal(l, P_PING, -1, 1, ping);
    if (rc) {
        l->drop = true;
        snprintf(l->drop_why, sizeof l->drop_why, "out of memory");
    }
}

/* ---- the worker's side ---- */

int redis_glue_init(struct worker *w)
{
    struct redis_link *l = calloc(1, sizeof *l);
    if (!l)
        return -1;
    l->w = w;
    l->watch.fd = -1;
    l->flush.run = run_flush;
    l->backoff_ms = REDIS_BACKOFF_MIN_MS;
    w->redis = l;
    return 0;
}

void redis_glue_free(struct worker *w)
{
    struct redis_link *l = w->redis;
    if (!l)
        return;
    set_state(l, LINK_OFF);
    close_link(l, NULL);
    worker_cancel(w, &l->flush);
    cfg_unref(l->cfg);
    free(l);
    w->redis = NULL;
}

void redis_glue_configure(struct worker *w, struct cfg *cfg)
{
    struct redis_link *l = w->redis;
    if (!l)
        return;
    const struct cfg_shared *nc = cfg ? &cfg->shared : NULL;
    bool on = nc && nc->enabled;
    if (!l->cfg && !on)
        return;
    if (l->cfg && on && sharedcfg_same(l->conf, nc)) {
        if (l->cfg != cfg) { /* the same server: keep the connection */
            struct cfg *old = l->cfg;
            l->cfg = cfg_ref(cfg);
            l->conf = &l->cfg->shared;
            cfg_unref(old);
        }
        return;
    }
    if (l->cfg)
        log_info("shared limits: %s %s", on ? "\"shared\" changed; reconnecting to" : "off:",
                 on ? nc->redis : "\"shared\" was removed from the configuration");
    set_state(l, LINK_OFF); /* quietly: no outage */
    close_link(l, NULL);
    atomic_store(&announced, false); /* "connected" is said again for the new server */
    cfg_unref(l->cfg);
    l->cfg = on ? cfg_ref(cfg) : NULL;
    l->conf = on ? &l->cfg->shared : NULL;
    if (on) {
        set_state(l, LINK_WAIT);
        l->retry_at = now_ms();
        l->backoff_ms = REDIS_BACKOFF_MIN_MS;
    }
}

void redis_glue_service(struct worker *w, int64_t now)
{
    struct redis_link *l = w->redis;
    if (!l || l->state == LINK_OFF)
        return;
    char why[200];
    if (l->ac && l->drop) {
        snprintf(why, sizeof why, "%s", l->drop_why);
        close_link(l, why);
    }
    if (l->ac && l->head && now - l->head->sent >= (int64_t)l->conf->timeout_ms) {
        snprintf(why, sizeof why, "no answer within shared.timeout_ms, %u ms", l->conf->timeout_ms);
        close_link(l, why);
    }
    if (l->ac && l->state == LINK_CONNECTING && now >= l->connect_deadline)
        close_link(l, "no connection within 1 s");
    unsigned gen = atomic_load(&back_gen);
    if (!l->ac && l->state == LINK_WAIT && (now >= l->retry_at || gen != l->back_seen)) {
        l->back_seen = gen;
        connect_link(l, now);
    }
}

int64_t redis_glue_deadline(const struct worker *w)
{
    const struct redis_link *l = w->redis;
    if (!l || l->state == LINK_OFF)
        return -1;
    if (l->drop && l->ac)
        return 0;
    if (!l->ac)
        return l->state == LINK_WAIT ? l->retry_at : -1;
    int64_t t = -1;
    if (l->head)
        t = l->head->sent + (int64_t)l->conf->timeout_ms;
    if (l->state == LINK_CONNECTING && (t < 0 || l->connect_deadline < t))
        t = l->connect_deadline;
    return t;
}

bool redis_glue_ready(const struct worker *w)
{
    const struct redis_link *l = w->redis;
    return l && l->state == LINK_READY && l->ac && !l->drop;
}

const char *redis_glue_prefix(const struct worker *w)
{
    const struct redis_link *l = w->redis;
    return l && l->conf && l->conf->prefix ? l->conf->prefix : "";
}

static int slot_of(struct redis_link *l, const struct redis_script *s)
{
    for (int i = 0; i < SCRIPTS_MAX; i++) {
        if (l->scripts[i].s == s)
            return i;
        if (!l->scripts[i].s) {
            l->scripts[i].s = s;
            return i;
        }
    }
    return -1;
}

int redis_glue_eval(struct worker *w, struct redis_call *c, const struct redis_script *s, int nkeys,
                    int nargs, const char *const *args)
{
    struct redis_link *l = w->redis;
    if (!redis_glue_ready(w) || nargs > REDIS_ARGS_MAX || nkeys > nargs || nkeys < 0)
        return -1;
    int k = slot_of(l, s);
    if (k < 0)
        return -1;
    size_t room = 0;
    for (int i = 0; i < nargs; i++)
        room += strlen(args[i]) + 1;
    struct redis_pending *p = calloc(1, sizeof *p + room);
    if (!p)
        return -1;
    p->link = l;
    p->kind = P_CALL;
    p->script = k;
    p->sent = now_ms();
    p->call = c;
    p->nkeys = nkeys;
    p->nargs = nargs;
    char *o = p->data;
    for (int i = 0; i < nargs; i++) {
        size_t n = strlen(args[i]) + 1;
        memcpy(o, args[i], n);
        p->args[i] = o;
        o += n;
    }
    if (issue(l, p) < 0) {
        free(p);
        return -1;
    }
    return 0;
}

void redis_glue_cancel(struct redis_call *c)
{
    if (c && c->pending) {
        c->pending->call = NULL;
        c->pending = NULL;
    }
}
