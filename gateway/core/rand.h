/*
 * rand: unpredictable bytes for identifiers (request ids, chatcmpl-… ids,
 * tool-call ids) without a getrandom(2) system call per identifier. Each
 * thread keeps a small pool filled from libsodium's randombytes_buf and hands
 * it out; bytes are never handed out twice. Not for secrets that must survive
 * a fork (keys use randombytes_buf directly). Any thread.
 */
#ifndef GATEWAY_RAND_H
#define GATEWAY_RAND_H

#include <stddef.h>

void rand_bytes(void *p, size_t n);

/* Write prefix + 24 random [A-Za-z0-9] characters into out (size bytes,
 * NUL-terminated, truncated to fit): "req_…", "chatcmpl-…", "call_…". */
void rand_id(char *out, size_t size, const char *prefix);

#endif
