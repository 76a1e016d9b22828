/*
 * libFuzzer target: an arbitrary /v1/chat/completions body through
 * chat_req_parse and chat_req_to_ollama.
 *
 * Invariants checked (abort on violation): a rejection is a 400 (or 500) with
 * a message and renders as valid JSON; an accepted request always translates,
 * and the native body is one JSON object holding only keys we translate, with
 * "model" = the upstream name, an explicit boolean "stream", a non-empty
 * "messages" array of {role in system|user|assistant|tool, content string},
 * and "options" never empty.
 */
#include "fuzz.h"
#include "apierr.h"
#include "chat_request.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static cJSON *alias;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    alias = fuzz_alias_options();
    return 0;
}

static bool allowed_key(const char *k)
{
    static const char *const keys[] = {"model",  "stream", "messages", "options",     "tools",
                                       "format", "think",  "logprobs", "top_logprobs"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

static void check_native(const char *text, size_t len, bool stream)
{
    cJSON *j = cJSON_ParseWithLength(text, len);
    CHECK(cJSON_IsObject(j));
    for (const cJSON *it = j->child; it; it = it->next)
        CHECK(allowed_key(it->string));
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    CHECK(cJSON_IsString(model) && strcmp(model->valuestring, "upstream:tag") == 0);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "stream");
    CHECK(cJSON_IsBool(st) && cJSON_IsTrue(st) == stream);
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages");
    CHECK(cJSON_IsArray(msgs) && msgs->child);
    for (const cJSON *m = msgs->child; m; m = m->next) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        CHECK(cJSON_IsString(role));
        CHECK(strcmp(role->valuestring, "system") == 0 || strcmp(role->valuestring, "user") == 0 ||
              strcmp(role->valuestring, "assistant") == 0 ||
              strcmp(role->valuestring, "tool") == 0);
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "content")));
        const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        for (const cJSON *tc = tcs ? tcs->child : NULL; tc; tc = tc->next) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
            CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(fn, "arguments")));
        }
    }
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(j, "options");
    CHECK(!opts || (cJSON_IsObject(opts) && opts->child));
    cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chat_req r;
    struct apierr err;
    struct buf out;
    buf_init(&out, 64u << 20);
    if (chat_req_parse(&r, (const char *)data, size, &err) == 0) {
        CHECK(r.root && r.native && r.model && r.model[0]);
        /* with and without alias options */
        CHECK(chat_req_to_ollama(&r, "upstream:tag", size % 2 ? alias : NULL, &out, &err) == 0);
        check_native(out.p, out.len, r.stream);
        chat_req_free(&r);
    } else {
        CHECK(err.status == 400 || err.status == 500);
        CHECK(err.message[0]);
        CHECK(!r.root && !r.native && !r.options);
        CHECK(apierr_json(&err, &out) == 0);
        cJSON *j = cJSON_ParseWithLength(out.p, out.len);
        CHECK(cJSON_IsObject(j));
        cJSON_Delete(j);
    }
    buf_free(&out);
    return 0;
}
