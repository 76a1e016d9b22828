/*
 * ratelimit: per-key limits that hold across every worker thread: requests
 * per minute (rpm), tokens per minute (tpm) and requests in flight.
 *
 * rpm and tpm are token buckets that hold at most `limit` units and refill
 * continuously at limit/60 s (so a full minute's allowance may be used in a
 * burst, and then one unit comes back every 60/limit seconds):
 *   - a request is admitted when the request bucket holds at least 1 (it
 *     takes 1) and, when tpm is set, the token bucket holds more than 0;
 *   - tokens are charged when a response completes (rl_charge), so the token
 *     bucket may go negative: a long answer is paid for in full, and the key
 *     waits until the bucket is positive again. It never goes below -limit.
 * The in-flight count is taken by rl_admit and given back by rl_release.
 *
 * State lives in a process-wide table keyed by key id, so it survives a
 * reload of the keys file (the limits themselves come from the key record at
 * each call, so a reload that changes them applies at once). Entries are
 * never freed: there are at most KEYS_MAX of them per distinct id seen.
 * Time is passed in (monotonic milliseconds) so that tests can use a fake
 * clock. Any thread; each key's state has its own mutex.
 */
#ifndef GATEWAY_RATELIMIT_H
#define GATEWAY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rl_limits {
    unsigned rpm, tpm, max_inflight; /* 0 = no limit */
};

struct rl_state;

/* What the caller needs to answer: 429 details, or the x-ratelimit-* headers. */
struct rl_verdict {
    bool ok;
    const char *which;         /* when !ok: "requests", "tokens" or "concurrent requests" */
    unsigned retry_after_s;    /* when !ok: whole seconds, at least 1 */
    long limit_requests;       /* 0 = no rpm limit (no -requests headers) */
    long remaining_requests;   /* after this request */
    int64_t reset_requests_ms; /* until the request bucket is full again */
    long limit_tokens;         /* 0 = no tpm limit (no -tokens headers) */
    long remaining_tokens;     /* floor, never negative */
    int64_t reset_tokens_ms;
};

/* The state for a key id (created on first use); NULL only on OOM. The
 * pointer stays valid until rl_reset_all() (tests) or exit. */
struct rl_state *rl_state_for(const char *key_id);

/*
 * Admit one request at now_ms? counts_inflight: whether it holds a place in
 * flight (generation routes) until rl_release(). Nothing is taken when the
 * answer is no. v is always filled.
 */
bool rl_admit(struct rl_state *s, const struct rl_limits *lim, bool counts_inflight, int64_t now_ms,
              struct rl_verdict *v);
/* Give back the in-flight place taken by an admitted counts_inflight request. */
void rl_release(struct rl_state *s);
/* Charge a completed response's tokens (also kept in the key's totals). */
void rl_charge(struct rl_state *s, const struct rl_limits *lim, long prompt_tokens,
               long completion_tokens, int64_t now_ms);

/*
 * A key's headroom now, for the status page, without touching its state:
 * the verdict's limit_/remaining_/reset_ fields as an admission at now_ms
 * would see them before taking anything (for a key never seen, full
 * buckets), and its requests in flight. Returns whether the key has a state.
 */
bool rl_peek(const char *key_id, const struct rl_limits *lim, int64_t now_ms, struct rl_verdict *v,
             unsigned *inflight);

/* Totals since start, for metrics. */
void rl_totals(struct rl_state *s, uint64_t *prompt_tokens, uint64_t *completion_tokens,
               unsigned *inflight);

/*
 * Call fn(name, value) for each x-ratelimit-* header the verdict calls for:
 * x-ratelimit-limit-requests, x-ratelimit-remaining-requests,
 * x-ratelimit-reset-requests (and the -tokens three), only for the limits
 * that are set. Reset values are written the way OpenAI writes them, a Go
 * duration: "1s", "6m0s", "120ms", "1m30.5s" (see rl_duration).
 */
void rl_headers(const struct rl_verdict *v,
                void (*fn)(void *ud, const char *name, const char *value), void *ud);

/* ms as a Go-style duration into out: 0 → "0s", 120 → "120ms", 1500 → "1.5s",
 * 60000 → "1m0s", 90500 → "1m30.5s", 3600000 → "1h0m0s". Returns out. */
char *rl_duration(int64_t ms, char *out, size_t size);

/* Whole seconds to wait for a bucket ms away, as a 429's Retry-After: at
 * least 1. */
unsigned rl_retry_after_s(int64_t ms);

/* Forget every key's state (tests only; no other thread may be using it). */
void rl_reset_all(void);

#endif
