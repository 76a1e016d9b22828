/*
 * jarena: a per-thread bump allocator for cJSON's short-lived trees.
 *
 * Every streamed token is one NDJSON line that cJSON turns into a dozen small
 * allocations, used for a microsecond and freed. Between jarena_begin() and
 * jarena_end() on a thread, cJSON allocates from that thread's 64 KiB block
 * instead (falling back to malloc when it is full); frees of block memory are
 * no-ops, and jarena_end() rewinds the block. Rule: nothing cJSON allocates
 * inside a begin/end pair may be used after the end. Outside a pair cJSON
 * uses malloc/free as usual, so other code is unaffected.
 * jarena_init() installs the hooks; call it once in main before any thread.
 */
#ifndef GATEWAY_JARENA_H
#define GATEWAY_JARENA_H

void jarena_init(void);
void jarena_begin(void);
void jarena_end(void);
/* How many of cJSON's allocations have failed on this thread so far (inside
 * a begin/end pair or not). cJSON's parser answers NULL both for bad JSON
 * and for memory that ran out: a caller that compares this count before and
 * after tells a client's mistake (400) from the gateway's trouble (500). */
unsigned long jarena_nomem(void);
/* Release this thread's block; call as a thread that used it exits. */
void jarena_thread_free(void);

#endif
