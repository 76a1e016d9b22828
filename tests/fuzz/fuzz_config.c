/*
 * libFuzzer target for the configuration parser: arbitrary bytes go through
 * cfg_load_buffer() (comment stripping, cJSON, the position index, every key
 * check, error formatting), and a snapshot that loads is queried through the
 * router the way requests would.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Igateway tests/fuzz/fuzz_config.c \
 *       gateway/config.c gateway/router.c gateway/log.c gateway/buf.c -lcjson
 *   ./a.out tests/fuzz/corpus/config
 */
#include "fuzz.h"
#include "config.h"
#include "router.h"

#include <stdint.h>
#include <string.h>

static void count_notice(void *ud, const char *msg)
{
    *(size_t *)ud += strlen(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_errors errs;
    cfg_errors_init(&errs);
    struct cfg *c = cfg_load_buffer((const char *)data, size, "fuzz.json", "/etc/gw", &errs);
    if (!c) {
        /* a refusal always says why, one line per problem */
        if (errs.count == 0 || !errs.text.p || errs.text.p[errs.text.len - 1] != '\n')
            __builtin_trap();
    } else {
        if (errs.count != 0 || c->nbackends == 0 || c->nlisten == 0)
            __builtin_trap();
        size_t n = 0;
        cfg_features_not_in_force(c, count_notice, &n);
        struct cfg *held = cfg_ref(c);
        for (size_t i = 0; i < c->naliases; i++) {
            const struct cfg_alias *a = router_alias(c, c->aliases[i].name);
            /* an exact alias always resolves to itself (names are unique) */
            if (!c->aliases[i].glob && a != &c->aliases[i])
                __builtin_trap();
            if (!a)
                a = &c->aliases[i];
            char norm[300];
            router_model_normalize(a->model, norm, sizeof norm);
            (void)router_model_eq(a->model, c->aliases[i].name);
        }
        for (size_t i = 0; i < c->nbackends; i++)
            for (const char *const *h = c->backends[i].headers; *h; h++)
                if (strpbrk(*h, "\r\n"))
                    __builtin_trap();
        router_alias(c, "gpt-4o-mini");
        cfg_unref(held);
        cfg_unref(c);
    }
    cfg_errors_free(&errs);
    return 0;
}
