/*
 * What every fuzz target here shares: libFuzzer's entry points (declared so
 * -Wmissing-prototypes is satisfied) and CHECK, which aborts on a broken
 * invariant so the fuzzer records the input.
 */
#ifndef GATEWAY_FUZZ_H
#define GATEWAY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

#endif
