#include "rand.h"

#include <sodium.h>
#include <string.h>

#define POOL 512

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
