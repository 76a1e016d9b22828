#include "rand.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/random.h>

/* Each worker's random bytes, refilled with one getrandom call: a chat
 * request takes one or two 24-byte ids (request id, response id), so 4 KiB
 * last about ninety requests. */
#define POOL 4096

static _Thread_local unsigned char pool[POOL];
static _Thread_local size_t left; /* unused bytes at the end of pool */

/* POOL bytes from the kernel in one getrandom(2), where libsodium's
 * randombytes_buf asks 256 bytes at a time (sixteen system calls for the
 * pool). Reads of up to 256 bytes are never cut short; a longer one may be
 * by a signal, so the rest is asked again. libsodium when getrandom fails. */
static void refill(void)
{
    size_t got = 0;
    while (got < POOL) {
        ssize_t n = getrandom(pool + got, POOL - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            randombytes_buf(pool + got, POOL - got);
            break;
        }
        got += (size_t)n;
    }
    left = POOL;
}

void rand_bytes(void *p, size_t n)
{
    unsigned char *out = p;
    if (n > POOL) {
        randombytes_buf(out, n);
        return;
    }
    if (left < n)
        refill();
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
