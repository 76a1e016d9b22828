#include "jarena.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

#define BLOCK (64u << 10)

static _Thread_local char *block; /* owned by the thread; lives as long as it */
static _Thread_local size_t used;
static _Thread_local int depth;
static _Thread_local unsigned long failed;

static void *arena_malloc(size_t n)
{
    if (depth && block) {
        size_t a = (n + 15) & ~(size_t)15;
        if (a >= n && a <= BLOCK - used) {
            void *p = block + used;
            used += a;
            return p;
        }
    }
    void *p = malloc(n);
    if (!p)
        failed++;
    return p;
}

unsigned long jarena_nomem(void)
{
    return failed;
}

static void arena_free(void *p)
{
    uintptr_t u = (uintptr_t)p, b = (uintptr_t)block;
    if (block && u >= b && u < b + BLOCK)
        return;
    free(p);
}

void jarena_init(void)
{
    cJSON_Hooks hooks = {.malloc_fn = arena_malloc, .free_fn = arena_free};
    cJSON_InitHooks(&hooks);
}

void jarena_begin(void)
{
    if (!block)
        block = malloc(BLOCK); /* NULL just means plain malloc */
    depth++;
}

void jarena_end(void)
{
    if (depth > 0 && --depth == 0)
        used = 0;
}

void jarena_thread_free(void)
{
    free(block);
    block = NULL;
    used = 0;
    depth = 0;
}
