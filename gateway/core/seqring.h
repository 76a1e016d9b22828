/*
 * seqring: a ring of the last N fixed-size records, written by one thread
 * and read by others without locks (a seqlock per slot).
 *
 * Who writes and who reads: only the owner calls seqring_push(); any thread
 * may call seqring_read(). A slot's sequence number is odd while the owner
 * writes it and says which record it holds once even; a reader copies the
 * slot and keeps the copy only when the number was the same, and even,
 * before and after (so a record being overwritten is skipped, never torn).
 * Every access to shared memory is atomic (the record's words are relaxed
 * atomics ordered by the fences around them), so the pattern is race-free
 * in the C11 model and under ThreadSanitizer.
 */
#ifndef GATEWAY_SEQRING_H
#define GATEWAY_SEQRING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SEQRING_RECORD 192 /* bytes per record, at most */

struct seqring_slot {
    atomic_uint_least64_t seq; /* 2k+1 while record k is written, 2k+2 once it is */
    atomic_uint_least64_t w[SEQRING_RECORD / 8];
};

struct seqring {
    struct seqring_slot *slots; /* n, owned */
    size_t n;
    atomic_uint_least64_t head; /* records pushed: the owner's, release-stored */
};

/* A ring of n slots (n >= 1). 0, or -1 on OOM. */
int seqring_init(struct seqring *r, size_t n);
void seqring_free(struct seqring *r);

/* Owner only: append rec (len <= SEQRING_RECORD bytes; the rest of the slot
 * reads as zero), overwriting the oldest when full. */
void seqring_push(struct seqring *r, const void *rec, size_t len);

/* Any thread: copy up to max of the newest records, newest first, into out
 * (SEQRING_RECORD bytes each), with their record numbers (0 = the first
 * ever pushed) into seq when it is not NULL. Returns how many. */
size_t seqring_read(const struct seqring *r, void *out, uint64_t *seq, size_t max);

#endif
