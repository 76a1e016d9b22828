#include "rand.h"

#include <sodium.h>
#include <string.h>

/* Refilled with one getrandom call. A request takes about four 24-byte ids
 * (request id, response id, ...): 512 bytes cost a system call every five
 * requests, 4 KiB one every forty. */
#define POOL 4096

static _Thread_local unsigned char pool[POOL];
static _Thread_local size_t left; /* unused bytes at the end of pool */

void rand_bytes(void *p, size_t n)
{
    unsigned char *out = p;
    if (n > POOL) {
        randombytes_buf(out, n);
        return;
    }
    if (left < n) {
        randombytes_buf(pool, POOL);
        left = POOL;
    }
    memcpy(out, pool + POOL - left, n);
    sodium_memzero(pool + POOL - left, n); /* never hand the same bytes out again */
    left -= n;
}

void rand_id(char *out, size_t size, const char *prefix)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[24];
    size_t o = 0;
    if (!size)
        return;
    rand_bytes(rnd, sizeof rnd);
    for (; prefix && *prefix && o + 1 < size; prefix++)
        out[o++] = *prefix;
    for (size_t k = 0; k < sizeof rnd && o + 1 < size; k++)
        out[o++] = alphabet[rnd[k] % 62];
    out[o] = '\0';
}
