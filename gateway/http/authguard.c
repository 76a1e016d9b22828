#include "authguard.h"

#include "log.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_MS 60000     /* failures count for a sliding minute */
#define BLOCK_S 60          /* the first block */
#define BLOCK_MAX_S 900     /* doubling stops at 15 min */
#define MEMORY_MS 3600000   /* a block within an hour of the last one's end doubles */
#define WARN_EVERY_MS 60000 /* "table full" at most once a minute */
#define PROBE 16            /* an address lives within PROBE slots of its home slot */
#define SWEEP 4             /* slots looked at for clean-up per locked call */
#define SLOT_MASK (AUTHGUARD_SLOTS - 1)

_Static_assert((AUTHGUARD_SLOTS & SLOT_MASK) == 0, "AUTHGUARD_SLOTS must be a power of two");

/*
 * The failure window is a ring of (time, count) pairs, oldest first.
 *
 * With a limit up to RING (the default is 10) each failure has its own
 * pair, so the window is exact: the limit-th failure blocks when the first of
 * the last `limit` failures is less than 60 s old. A higher limit (up to a
 * million) cannot keep a timestamp per failure in bounded memory, so a
 * failure less than COARSE_MS after the newest pair is added to that pair:
 * RING pairs then always span the minute, and a pair leaves the window with
 * its first failure, up to COARSE_MS early. A limit that high is for shared
 * NAT addresses, where a few seconds do not matter.
 *
 * A fixed window (a count and the time it started) would be smaller but
 * would miss limit failures that straddle two windows.
 */
#define RING 16
#define COARSE_MS ((WINDOW_MS + RING - 2) / (RING - 1))

struct slot_key {
    uint64_t addr;   /* IPv4 address, or the /64 of an IPv6 one */
    uint16_t home;   /* the slot the hash chose */
    uint8_t fam;     /* 0 = free slot, 4, 6 */
    uint8_t watched; /* counted in watch[home] and nwatched */
};

struct entry {
    int64_t blocked_until;  /* 0 = no block, or one that has not been cleared yet */
    int64_t last_block_end; /* 0 = never blocked */
    int64_t last_seen;      /* latest failure: eviction order, and time never goes back */
    unsigned block_s;       /* length of the latest block */
    unsigned nring;
    int64_t at[RING];
    uint32_t n[RING];
};

struct authguard {
    pthread_mutex_t mu;
    atomic_uint limit;
    /*
     * Lock-free answers for the common case; each is updated under mu and
     * read without it (a reader racing a failure may miss it by a request,
     * which is harmless):
     *   horizon: no block ends later, so at or after it nothing is blocked;
     *   nwatched: entries with failures in their ring or a block set;
     *   watch[h]: the same, counted by home slot, so that an address whose
     *   home has none needs no lock even when others are being watched.
     */
    _Atomic int64_t horizon;
    atomic_uint nwatched;
    atomic_uint watch[AUTHGUARD_SLOTS];
    /* under mu */
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    size_t sweep;
    int64_t last_warn;
    bool warned;
    struct slot_key keys[AUTHGUARD_SLOTS]; /* apart from entries: probes touch few lines */
    struct entry e[AUTHGUARD_SLOTS];
};

struct authguard *authguard_new(unsigned limit)
{
    struct authguard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    if (pthread_mutex_init(&g->mu, NULL) != 0) {
        free(g);
        return NULL;
    }
    atomic_init(&g->limit, limit);
    atomic_init(&g->horizon, INT64_MIN);
    atomic_init(&g->nwatched, 0);
    for (size_t i = 0; i < AUTHGUARD_SLOTS; i++)
        atomic_init(&g->watch[i], 0);
    /* keyed, so that no one can aim many addresses at one probe window */
    crypto_shorthash_keygen(g->hash_key);
    return g;
}

void authguard_free(struct authguard *g)
{
    if (!g)
        return;
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void authguard_set_limit(struct authguard *g, unsigned limit)
{
    if (g)
        atomic_store(&g->limit, limit);
}

/* sa as a table key; false for families that are not counted (AF_UNIX). */
static bool addr_key(const struct sockaddr *sa, struct slot_key *k)
{
    memset(k, 0, sizeof *k);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(&k->addr, &in->sin_addr, 4);
        k->fam = 4;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            memcpy(&k->addr, in6->sin6_addr.s6_addr + 12, 4);
            k->fam = 4;
        } else {
            memcpy(&k->addr, in6->sin6_addr.s6_addr, 8);
            k->fam = 6;
        }
        return true;
    }
    return false;
}

static void set_home(const struct authguard *g, struct slot_key *k)
{
    unsigned char in[9], out[crypto_shorthash_BYTES];
    in[0] = k->fam;
    memcpy(in + 1, &k->addr, 8);
    crypto_shorthash(out, in, sizeof in, g->hash_key);
    k->home = (uint16_t)((out[0] | (unsigned)out[1] << 8) & SLOT_MASK);
}

/* The slot holding k, or -1. Under mu. */
static long find(const struct authguard *g, const struct slot_key *k)
{
    for (unsigned i = 0; i < PROBE; i++) {
        size_t j = (k->home + i) & SLOT_MASK;
        if (g->keys[j].fam == k->fam && g->keys[j].addr == k->addr)
            return (long)j;
    }
    return -1;
}

/* Bring the lock-free counters in line with entry j. Under mu. */
static void rewatch(struct authguard *g, size_t j)
{
    struct slot_key *k = &g->keys[j];
    const struct entry *e = &g->e[j];
    bool want = k->fam && (e->nring || e->blocked_until);
    if (want == (bool)k->watched)
        return;
    k->watched = want;
    if (want) {
        atomic_fetch_add(&g->watch[k->home], 1);
        atomic_fetch_add(&g->nwatched, 1);
    } else {
        atomic_fetch_sub(&g->watch[k->home], 1);
        atomic_fetch_sub(&g->nwatched, 1);
    }
}

/* Drop what has expired from entry j; true when nothing is left worth
 * keeping (no failures, no block, no recent block to double). Under mu. */
static bool refresh(struct authguard *g, size_t j, int64_t now)
{
    struct entry *e = &g->e[j];
    if (e->blocked_until && e->blocked_until <= now)
        e->blocked_until = 0;
    unsigned old = 0;
    while (old < e->nring && now - e->at[old] >= WINDOW_MS)
        old++;
    if (old) {
        e->nring -= old;
        memmove(e->at, e->at + old, e->nring * sizeof e->at[0]);
        memmove(e->n, e->n + old, e->nring * sizeof e->n[0]);
    }
    rewatch(g, j);
    return !e->nring && !e->blocked_until &&
           (!e->last_block_end || now - e->last_block_end >= MEMORY_MS);
}

static void slot_free(struct authguard *g, size_t j)
{
    memset(&g->e[j], 0, sizeof g->e[j]);
    rewatch(g, j);
    g->keys[j].fam = 0;
    g->keys[j].addr = 0;
}

/* Free a few stale entries per call, so that the watch counters fall back
 * to zero after an attack even if its addresses never come back. Under mu. */
static void sweep(struct authguard *g, int64_t now)
{
    for (unsigned i = 0; i < SWEEP; i++) {
        size_t j = g->sweep;
        g->sweep = (g->sweep + 1) & SLOT_MASK;
        if (g->keys[j].fam && refresh(g, j, now))
            slot_free(g, j);
    }
}

/* A slot for k within its probe window: a free one, else the one whose last
 * failure is oldest among those not blocked; -1 when every one is blocked.
 * Under mu. */
static long claim(struct authguard *g, const struct slot_key *k, int64_t now)
{
    long victim = -1;
    for (unsigned i = 0; i < PROBE; i++) {
        size_t j = (k->home + i) & SLOT_MASK;
        if (g->keys[j].fam && refresh(g, j, now))
            slot_free(g, j);
        if (!g->keys[j].fam) {
            victim = (long)j;
            break;
        }
        if (g->e[j].blocked_until)
            continue;
        if (victim < 0 || g->e[j].last_seen < g->e[victim].last_seen)
            victim = (long)j;
    }
    if (victim < 0)
        return -1;
    slot_free(g, (size_t)victim);
    g->keys[victim] = *k;
    g->keys[victim].watched = 0;
    return victim;
}

unsigned authguard_blocked(struct authguard *g, const struct sockaddr *sa, int64_t now_ms)
{
    struct slot_key k;
    unsigned wait = 0;
    /* the fast path: every authenticated request passes here */
    if (!g || !sa || !atomic_load(&g->limit) || now_ms >= atomic_load(&g->horizon))
        return 0;
    if (!addr_key(sa, &k))
        return 0;
    set_home(g, &k);
    if (!atomic_load(&g->watch[k.home]))
        return 0;

    pthread_mutex_lock(&g->mu);
    sweep(g, now_ms);
    long j = find(g, &k);
    if (j < 0)
        goto out_unlock;
    if (refresh(g, (size_t)j, now_ms)) {
        slot_free(g, (size_t)j);
        goto out_unlock;
    }
    if (g->e[j].blocked_until) {
        int64_t s = (g->e[j].blocked_until - now_ms + 999) / 1000;
        wait = s < 1 ? 1 : (unsigned)s;
    }
out_unlock:
    pthread_mutex_unlock(&g->mu);
    return wait;
}

unsigned authguard_failed(struct authguard *g, const struct sockaddr *sa, int64_t now_ms)
{
    struct slot_key k;
    unsigned started = 0;
    bool warn = false;
    unsigned limit = g ? atomic_load(&g->limit) : 0;
    if (!limit || !sa || !addr_key(sa, &k))
        return 0;
    set_home(g, &k);

    pthread_mutex_lock(&g->mu);
    sweep(g, now_ms);
    long found = find(g, &k);
    if (found < 0)
        found = claim(g, &k, now_ms);
    if (found < 0) {
        /* Every slot this address could use holds a blocked address: it goes
         * uncounted rather than make the table grow. */
        warn = !g->warned || now_ms - g->last_warn >= WARN_EVERY_MS;
        if (warn) {
            g->warned = true;
            g->last_warn = now_ms;
        }
        goto out_unlock;
    }
    size_t j = (size_t)found;
    struct entry *e = &g->e[j];
    int64_t now = now_ms > e->last_seen ? now_ms : e->last_seen;
    refresh(g, j, now);
    if (e->blocked_until)
        goto out_unlock; /* refused before its key was looked at: not counted again */

    e->last_seen = now;
    if (e->nring && (e->nring == RING || (limit > RING && now - e->at[e->nring - 1] < COARSE_MS))) {
        /* full only after the limit was raised past RING: lenient, never lost */
        e->n[e->nring - 1]++;
    } else {
        e->at[e->nring] = now;
        e->n[e->nring] = 1;
        e->nring++;
    }
    uint64_t total = 0;
    for (unsigned i = 0; i < e->nring; i++)
        total += e->n[i];
    if (total >= limit) {
        started = BLOCK_S;
        if (e->last_block_end && now - e->last_block_end < MEMORY_MS && e->block_s)
            started = e->block_s >= BLOCK_MAX_S / 2 ? BLOCK_MAX_S : e->block_s * 2;
        e->block_s = started;
        e->blocked_until = now + (int64_t)started * 1000;
        e->last_block_end = e->blocked_until;
        e->nring = 0;
        if (atomic_load(&g->horizon) < e->blocked_until)
            atomic_store(&g->horizon, e->blocked_until);
    }
    rewatch(g, j);
out_unlock:
    pthread_mutex_unlock(&g->mu);
    if (warn)
        log_warn("authguard: all %d slots for a failing address hold blocked addresses; "
                 "failures from new addresses are not counted for now",
                 PROBE);
    return started;
}
