#include "ratelimit.h"

#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Bucket levels are fixed point: one unit (a request, a token) is MINUTE_MS
 * ticks, so a bucket whose limit is L refills exactly L ticks per ms. Every
 * quantity is then an integer (no drift, and a fake clock gets exact whole
 * numbers), and a level in ticks means the same whatever the limit, so a
 * reload that changes the limit only has to clamp it. The largest capacity,
 * UINT_MAX * 60000, is below 2^48: int64 holds it with room to spare.
 */
#define MINUTE_MS 60000

/* Ceiling on distinct key ids: entries are never freed, and ids come only
 * from keys that authenticated, so this is ten times KEYS_MAX and is only
 * reached by a process that outlives a great many key rotations. */
#define RL_STATES_MAX (1u << 20)

struct bucket {
    int64_t level;  /* ticks; a token bucket may go down to -capacity */
    int64_t at;     /* ms when level was last brought up to date */
    unsigned limit; /* the limit level was computed for; 0 = not in use */
};

struct rl_state {
    pthread_mutex_t mu;
    struct bucket req, tok; /* under mu */
    /* Atomics, so that metrics and rl_release need no lock. inflight only
     * grows under mu (where it is checked against the limit). */
    atomic_uint inflight;
    atomic_uint_least64_t prompt, completion;
    uint64_t hash;
    char id[]; /* NUL-terminated, owned */
};

/* Open addressing with linear probing, at most half full so that probes stay
 * short. The slots hold pointers: a state never moves when the table grows. */
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rl_state **table; /* table_cap slots, a power of two; owned */
static size_t table_cap, table_n;
static bool table_full_warned;

static int64_t capacity(unsigned limit)
{
    return (int64_t)limit * MINUTE_MS;
}

/*
 * Bring b up to now and onto limit (which a reload may have changed). The
 * time since the last update is refilled at the limit that was in force then;
 * the level is then clamped to the new capacity. A bucket that comes into use
 * starts full. A now older than the last update (another thread read the
 * clock first) refills nothing.
 */
static void bucket_update(struct bucket *b, unsigned limit, int64_t now)
{
    if (!limit) {
        b->limit = 0;
        return;
    }
    if (!b->limit) {
        b->limit = limit;
        b->level = capacity(limit);
        b->at = now;
        return;
    }
    if (now > b->at) {
        int64_t dt = now - b->at;
        /* two minutes take any level from -capacity to full; clamping dt
         * first keeps dt * limit far from overflow */
        if (dt > 2 * MINUTE_MS)
            dt = 2 * MINUTE_MS;
        b->level += dt * b->limit;
        if (b->level > capacity(b->limit))
            b->level = capacity(b->limit);
        b->at = now;
    }
    b->limit = limit;
    if (b->level > capacity(limit))
        b->level = capacity(limit);
    if (b->level < -capacity(limit))
        b->level = -capacity(limit);
}

/* Whole ms (rounded up) until b holds at least `need` ticks; 0 if it does. */
static int64_t bucket_wait_ms(const struct bucket *b, int64_t need)
{
    if (b->level >= need)
        return 0;
    return (need - b->level + b->limit - 1) / b->limit;
}

unsigned rl_retry_after_s(int64_t ms)
{
    int64_t s = (ms + 999) / 1000;
    return s < 1 ? 1 : s > (int64_t)UINT32_MAX ? UINT32_MAX : (unsigned)s;
}

/* FNV-1a. Key ids are not chosen by clients (only the ids of keys that
 * authenticated get here), so a keyed hash buys nothing. */
static uint64_t hash_id(const char *id)
{
    uint64_t h = 14695981039346656037ull;
    for (; *id; id++) {
        h ^= (unsigned char)*id;
        h *= 1099511628211ull;
    }
    return h;
}

/* Move every state into a table of new_cap slots. Under table_mu. */
static int table_grow(size_t new_cap)
{
    struct rl_state **t = calloc(new_cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < table_cap; i++) {
        struct rl_state *s = table[i];
        if (!s)
            continue;
        size_t j = s->hash & (new_cap - 1);
        while (t[j])
            j = (j + 1) & (new_cap - 1);
        t[j] = s;
    }
    free(table);
    table = t;
    table_cap = new_cap;
    return 0;
}

static struct rl_state *state_new(const char *key_id, size_t len, uint64_t h)
{
    struct rl_state *s = calloc(1, sizeof *s + len + 1);
    if (!s)
        return NULL;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return NULL;
    }
    atomic_init(&s->inflight, 0);
    atomic_init(&s->prompt, 0);
    atomic_init(&s->completion, 0);
    s->hash = h;
    memcpy(s->id, key_id, len + 1);
    return s;
}

struct rl_state *rl_state_for(const char *key_id)
{
    if (!key_id)
        return NULL;
    uint64_t h = hash_id(key_id);
    struct rl_state *s = NULL;
    pthread_mutex_lock(&table_mu);
    if (table_cap) {
        for (size_t i = h & (table_cap - 1); table[i]; i = (i + 1) & (table_cap - 1)) {
            if (table[i]->hash == h && strcmp(table[i]->id, key_id) == 0) {
                s = table[i];
                goto out_unlock;
            }
        }
    }
    if (table_n >= RL_STATES_MAX) {
        if (!table_full_warned)
            log_warn("ratelimit: %u distinct key ids seen; further new keys are not limited",
                     RL_STATES_MAX);
        table_full_warned = true;
        goto out_unlock;
    }
    if ((table_n + 1) * 2 > table_cap && table_grow(table_cap ? table_cap * 2 : 64) < 0)
        goto out_unlock;
    s = state_new(key_id, strlen(key_id), h);
    if (!s)
        goto out_unlock;
    size_t i = h & (table_cap - 1);
    while (table[i])
        i = (i + 1) & (table_cap - 1);
    table[i] = s;
    table_n++;
out_unlock:
    pthread_mutex_unlock(&table_mu);
    return s;
}

/* The parts of the verdict that describe the buckets (the state's, under
 * its mutex, or copies). */
static void fill_levels(const struct bucket *r, const struct bucket *t, struct rl_verdict *v)
{
    if (r->limit) {
        v->limit_requests = r->limit;
        v->remaining_requests = (long)(r->level / MINUTE_MS);
        v->reset_requests_ms = bucket_wait_ms(r, capacity(r->limit));
    }
    if (t->limit) {
        v->limit_tokens = t->limit;
        v->remaining_tokens = t->level > 0 ? (long)(t->level / MINUTE_MS) : 0;
        v->reset_tokens_ms = bucket_wait_ms(t, capacity(t->limit));
    }
}

bool rl_admit(struct rl_state *s, const struct rl_limits *lim, bool counts_inflight, int64_t now_ms,
              struct rl_verdict *v)
{
    static const struct rl_limits none = {0};
    if (!lim)
        lim = &none;
    memset(v, 0, sizeof *v);
    /* An in-flight place is held only when there is a limit to hold it
     * against: the caller releases exactly when counts_inflight and
     * max_inflight were both set at admission (auth.c). */
    bool take_inflight = counts_inflight && lim->max_inflight;

    pthread_mutex_lock(&s->mu);
    bucket_update(&s->req, lim->rpm, now_ms);
    bucket_update(&s->tok, lim->tpm, now_ms);

    /* Of the conditions that refuse, report the one that lifts last: that is
     * when a retry can succeed. Ties go to the first checked. */
    int64_t wait_ms = 0;
    if (s->req.limit) {
        int64_t w = bucket_wait_ms(&s->req, MINUTE_MS);
        if (w > wait_ms) {
            wait_ms = w;
            v->which = "requests";
        }
    }
    if (s->tok.limit) {
        /* "more than 0" is at least one tick in fixed point */
        int64_t w = bucket_wait_ms(&s->tok, 1);
        if (w > wait_ms) {
            wait_ms = w;
            v->which = "tokens";
        }
    }
    if (take_inflight && atomic_load(&s->inflight) >= lim->max_inflight) {
        /* a place frees up when some response ends: no way to know when */
        if (wait_ms < 1000) {
            wait_ms = 1000;
            v->which = "concurrent requests";
        }
    }
    v->ok = !v->which;
    if (v->ok) {
        if (s->req.limit)
            s->req.level -= MINUTE_MS;
        if (take_inflight)
            atomic_fetch_add(&s->inflight, 1);
    } else {
        v->retry_after_s = rl_retry_after_s(wait_ms);
    }
    fill_levels(&s->req, &s->tok, v);
    pthread_mutex_unlock(&s->mu);
    return v->ok;
}

void rl_release(struct rl_state *s)
{
    if (!s)
        return;
    /* Never below zero, even on a stray second release: an underflow would
     * shut the key out for good. */
    unsigned n = atomic_load(&s->inflight);
    while (n && !atomic_compare_exchange_weak(&s->inflight, &n, n - 1))
        ;
}

void rl_charge(struct rl_state *s, const struct rl_limits *lim, long prompt_tokens,
               long completion_tokens, int64_t now_ms)
{
    if (!s)
        return;
    uint64_t p = prompt_tokens > 0 ? (uint64_t)prompt_tokens : 0;
    uint64_t c = completion_tokens > 0 ? (uint64_t)completion_tokens : 0;
    atomic_fetch_add(&s->prompt, p);
    atomic_fetch_add(&s->completion, c);
    if (!lim || !lim->tpm)
        return;

    pthread_mutex_lock(&s->mu);
    bucket_update(&s->tok, lim->tpm, now_ms);
    /* Anything from 2 * limit up drives a full bucket to the floor; capping
     * the count first keeps the multiplication from overflowing. */
    uint64_t n = p + c;
    if (n > 2 * (uint64_t)lim->tpm)
        n = 2 * (uint64_t)lim->tpm;
    s->tok.level -= (int64_t)n * MINUTE_MS;
    if (s->tok.level < -capacity(lim->tpm))
        s->tok.level = -capacity(lim->tpm);
    pthread_mutex_unlock(&s->mu);
}

/* The state for key_id if there is one; never creates it. */
static struct rl_state *find(const char *key_id)
{
    uint64_t h = hash_id(key_id);
    struct rl_state *s = NULL;
    pthread_mutex_lock(&table_mu);
    for (size_t i = table_cap ? h & (table_cap - 1) : 0; table_cap && table[i];
         i = (i + 1) & (table_cap - 1)) {
        if (table[i]->hash == h && strcmp(table[i]->id, key_id) == 0) {
            s = table[i];
            break;
        }
    }
    pthread_mutex_unlock(&table_mu);
    return s;
}

bool rl_peek(const char *key_id, const struct rl_limits *lim, int64_t now_ms, struct rl_verdict *v,
             unsigned *inflight)
{
    static const struct rl_limits none = {0};
    if (!lim)
        lim = &none;
    memset(v, 0, sizeof *v);
    v->ok = true;
    *inflight = 0;
    struct bucket req = {0}, tok = {0};
    struct rl_state *s = key_id ? find(key_id) : NULL;
    if (s) {
        pthread_mutex_lock(&s->mu);
        req = s->req;
        tok = s->tok;
        pthread_mutex_unlock(&s->mu);
        *inflight = atomic_load(&s->inflight);
    }
    /* brought up to now on the copies: the state itself is left as it is */
    bucket_update(&req, lim->rpm, now_ms);
    bucket_update(&tok, lim->tpm, now_ms);
    fill_levels(&req, &tok, v);
    return s != NULL;
}

void rl_totals(struct rl_state *s, uint64_t *prompt_tokens, uint64_t *completion_tokens,
               unsigned *inflight)
{
    if (prompt_tokens)
        *prompt_tokens = s ? atomic_load(&s->prompt) : 0;
    if (completion_tokens)
        *completion_tokens = s ? atomic_load(&s->completion) : 0;
    if (inflight)
        *inflight = s ? atomic_load(&s->inflight) : 0;
}

/* The decimal digits of v at p (room for 20); returns how many. These run
 * for every answer to a key with limits, so no printf. */
static size_t put_u64(char *p, uint64_t v)
{
    char t[20];
    size_t n = 0;
    do
        t[n++] = (char)('0' + v % 10);
    while (v /= 10);
    for (size_t i = 0; i < n; i++)
        p[i] = t[n - 1 - i];
    return n;
}

static const char *long_text(long v, char *out)
{
    size_t n = 0;
    if (v < 0)
        out[n++] = '-';
    n += put_u64(out + n, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    out[n] = '\0';
    return out;
}

void rl_headers(const struct rl_verdict *v,
                void (*fn)(void *ud, const char *name, const char *value), void *ud)
{
    char num[24];
    char dur[48];
    if (v->limit_requests) {
        fn(ud, "x-ratelimit-limit-requests", long_text(v->limit_requests, num));
        fn(ud, "x-ratelimit-remaining-requests", long_text(v->remaining_requests, num));
        fn(ud, "x-ratelimit-reset-requests", rl_duration(v->reset_requests_ms, dur, sizeof dur));
    }
    if (v->limit_tokens) {
        fn(ud, "x-ratelimit-limit-tokens", long_text(v->limit_tokens, num));
        fn(ud, "x-ratelimit-remaining-tokens", long_text(v->remaining_tokens, num));
        fn(ud, "x-ratelimit-reset-tokens", rl_duration(v->reset_tokens_ms, dur, sizeof dur));
    }
}

char *rl_duration(int64_t ms, char *out, size_t size)
{
    /* Go's time.Duration.String() at millisecond resolution: below a second
     * "NNNms"; from there h, m (both once a larger unit is present) and s,
     * the seconds with their fraction and no trailing zeros. */
    char tmp[64];
    size_t n = 0;
    uint64_t u = ms < 0 ? 0 - (uint64_t)ms : (uint64_t)ms;
    if (!size)
        return out;
    if (ms < 0)
        tmp[n++] = '-';
    if (u == 0) {
        tmp[n++] = '0';
        tmp[n++] = 's';
    } else if (u < 1000) {
        n += put_u64(tmp + n, u);
        tmp[n++] = 'm';
        tmp[n++] = 's';
    } else {
        uint64_t h = u / 3600000, m = u / 60000 % 60, s = u / 1000 % 60;
        unsigned frac = (unsigned)(u % 1000);
        if (h) {
            n += put_u64(tmp + n, h);
            tmp[n++] = 'h';
        }
        if (h || m) {
            n += put_u64(tmp + n, m);
            tmp[n++] = 'm';
        }
        n += put_u64(tmp + n, s);
        if (frac) {
            tmp[n++] = '.';
            tmp[n++] = (char)('0' + frac / 100);
            tmp[n++] = (char)('0' + frac / 10 % 10);
            tmp[n++] = (char)('0' + frac % 10);
            while (tmp[n - 1] == '0')
                n--;
        }
        tmp[n++] = 's';
    }
    size_t k = n < size - 1 ? n : size - 1; /* cut as snprintf would */
    memcpy(out, tmp, k);
    out[k] = '\0';
    return out;
}

void rl_reset_all(void)
{
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < table_cap; i++) {
        if (!table[i])
            continue;
        pthread_mutex_destroy(&table[i]->mu);
        free(table[i]);
    }
    free(table);
    table = NULL;
    table_cap = table_n = 0;
    table_full_warned = false;
    pthread_mutex_unlock(&table_mu);
}
