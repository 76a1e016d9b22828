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

#endif
