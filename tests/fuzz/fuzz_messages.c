/*
 * libFuzzer target: the Anthropic Messages dialect's pure translation.
 *
 * The first byte chooses. Odd: the rest is a client's /v1/messages body,
 * through messages_req_parse and messages_req_to_ollama. Even: the second
 * byte is the size pattern of the pieces, the rest upstream bytes, through
 * the NDJSON splitter into messages_stream_line, then as a whole answer
 * (messages_complete).
 *
 * Invariants checked (abort on violation). Requests: a rejection is a 400 (or
 * 500) with a message; an accepted request translates to one JSON object
 * holding only model (the upstream name), an explicit boolean stream,
 * messages (each with a known role and a string content), and tools, think
 * and a non-empty options when present. Streams: every event is
 * "event: <name>\ndata: <one JSON object whose type is name>\n\n";
 * message_start comes first and once; blocks have dense indexes, one open at
 * a time, deltas only on the open block and of its kind; message_delta (after
 * every block closed) and message_stop end a stream that returned
 * DIALECT_DONE, and a failed one ends with exactly one error event. Whole
 * answers: a message object with content blocks, a stop reason and usage, or
 * nothing written and a 502/500.
 */
#include "fuzz.h"
#include "apierr.h"
#include "dialect.h"
#include "messages_answer.h"
#include "messages_error.h"
#include "messages_request.h"
#include "messages_stream.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *alias;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    alias = fuzz_alias_options();
    return sodium_init() < 0 ? -1 : 0;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static bool is(const cJSON *s, const char *v)
{
    return cJSON_IsString(s) && strcmp(s->valuestring, v) == 0;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

static void check_native(const char *text, size_t len, const struct messages_req *r)
{
    static const char *const keys[] = {"model", "stream", "messages", "tools",
                                       "think", "format", "options"};
    cJSON *j = cJSON_ParseWithLength(text, len);
    CHECK(cJSON_IsObject(j));
    for (const cJSON *it = j->child; it; it = it->next) {
        size_t k = 0;
        while (k < sizeof keys / sizeof keys[0] && strcmp(it->string, keys[k]) != 0)
            k++;
        CHECK(k < sizeof keys / sizeof keys[0]);
    }
    CHECK(is(get(j, "model"), "upstream:tag"));
    CHECK(cJSON_IsBool(get(j, "stream")) && cJSON_IsTrue(get(j, "stream")) == r->stream);
    const cJSON *msgs = get(j, "messages");
    CHECK(cJSON_IsArray(msgs));
    for (const cJSON *m = msgs->child; m; m = m->next) {
        const cJSON *role = get(m, "role");
        CHECK(is(role, "system") || is(role, "user") || is(role, "assistant") || is(role, "tool"));
        CHECK(cJSON_IsString(get(m, "content")));
    }
    const cJSON *tools = get(j, "tools");
    CHECK(!tools || (cJSON_IsArray(tools) && tools->child));
    const cJSON *format = get(j, "format");
    CHECK(!format || cJSON_IsObject(format));
    const cJSON *think = get(j, "think");
    CHECK(!think || cJSON_IsBool(think));
    const cJSON *opts = get(j, "options");
    CHECK(!opts || (cJSON_IsObject(opts) && opts->child));
    cJSON_Delete(j);
}

static void fuzz_request(const char *body, size_t size)
{
    struct messages_req r;
    struct apierr err;
    struct buf out;
    buf_init(&out, 64u << 20);
    if (messages_req_parse(&r, body, size, &err) == 0) {
        CHECK(r.root && r.native && r.model && r.model[0]);
        CHECK(messages_req_to_ollama(&r, "upstream:tag", size % 2 ? alias : NULL, &out, &err) == 0);
        check_native(out.p, out.len, &r);
        messages_req_free(&r);
    } else {
        CHECK(err.status == 400 || err.status == 500);
        CHECK(err.message[0]);
        CHECK(!r.root && !r.native && !r.options);
    }
    buf_free(&out);
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */

struct feed {
    struct messages_stream s;
    struct buf out;
    struct apierr err;
    int rc;
};

static int on_line(void *ud, const char *line, size_t len)
{
    struct feed *f = ud;
    f->rc = messages_stream_line(&f->s, line, len, &f->out, &f->err);
    return f->rc == DIALECT_MORE ? 0 : 1;
}

/* The events of out, checked one by one in order. */
struct order {
    bool started, delta_seen, stopped;
    int open;      /* index of the open block, -1 none */
    char kind[16]; /* its type (copied: the event's tree dies with it) */
    int blocks, errors;
};

static void check_event(struct order *o, const char *name, const cJSON *d)
{
    CHECK(is(get(d, "type"), name));
    CHECK(!o->stopped && !o->errors);
    if (strcmp(name, "error") == 0) {
        const cJSON *e = get(d, "error");
        CHECK(cJSON_IsObject(e) && cJSON_IsString(get(e, "type")) &&
              cJSON_IsString(get(e, "message")));
        o->errors++;
        return;
    }
    if (strcmp(name, "message_start") == 0) {
        CHECK(!o->started);
        const cJSON *m = get(d, "message");
        CHECK(is(get(m, "id"), "msg_fuzz") && is(get(m, "model"), "claude-\"fuzz\""));
        CHECK(cJSON_IsArray(get(m, "content")) && !get(m, "content")->child);
        o->started = true;
        return;
    }
    CHECK(o->started && !o->delta_seen);
    const cJSON *index = get(d, "index");
    if (strcmp(name, "content_block_start") == 0) {
        CHECK(o->open < 0 && cJSON_IsNumber(index) && index->valueint == o->blocks);
        const cJSON *b = get(d, "content_block");
        const cJSON *t = get(b, "type");
        CHECK(is(t, "text") || is(t, "thinking") || is(t, "tool_use"));
        if (is(t, "tool_use")) {
            CHECK(cJSON_IsString(get(b, "id")) &&
                  strncmp(get(b, "id")->valuestring, "toolu_", 6) == 0);
            CHECK(cJSON_IsString(get(b, "name")) && cJSON_IsObject(get(b, "input")));
        }
        snprintf(o->kind, sizeof o->kind, "%s", t->valuestring);
        o->open = o->blocks++;
    } else if (strcmp(name, "content_block_delta") == 0) {
        CHECK(o->open >= 0 && cJSON_IsNumber(index) && index->valueint == o->open);
        const cJSON *delta = get(d, "delta");
        if (strcmp(o->kind, "text") == 0) {
            CHECK(is(get(delta, "type"), "text_delta") && cJSON_IsString(get(delta, "text")));
        } else if (strcmp(o->kind, "thinking") == 0) {
            CHECK(is(get(delta, "type"), "thinking_delta") &&
                  cJSON_IsString(get(delta, "thinking")));
        } else {
            CHECK(is(get(delta, "type"), "input_json_delta"));
            const cJSON *pj = get(delta, "partial_json");
            CHECK(cJSON_IsString(pj));
            cJSON *input = cJSON_Parse(pj->valuestring);
            CHECK(cJSON_IsObject(input));
            cJSON_Delete(input);
        }
    } else if (strcmp(name, "content_block_stop") == 0) {
        CHECK(o->open >= 0 && cJSON_IsNumber(index) && index->valueint == o->open);
        o->open = -1;
    } else if (strcmp(name, "message_delta") == 0) {
        CHECK(o->open < 0 && o->blocks > 0);
        const cJSON *sr = get(get(d, "delta"), "stop_reason");
        CHECK(is(sr, "end_turn") || is(sr, "max_tokens") || is(sr, "tool_use"));
        const cJSON *u = get(d, "usage");
        CHECK(cJSON_IsNumber(get(u, "input_tokens")) && cJSON_IsNumber(get(u, "output_tokens")));
        o->delta_seen = true;
    } else {
        CHECK(false);
    }
}

static void check_events(const struct buf *out, int rc)
{
    struct order o = {.open = -1};
    const char *p = out->p ? out->p : "", *end = p + out->len;
    while (p < end) {
        CHECK((size_t)(end - p) > 7 && memcmp(p, "event: ", 7) == 0);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        CHECK(nl);
        char name[32];
        size_t n = (size_t)(nl - p - 7);
        CHECK(n > 0 && n < sizeof name);
        memcpy(name, p + 7, n);
        name[n] = '\0';
        p = nl + 1;
        CHECK((size_t)(end - p) > 6 && memcmp(p, "data: ", 6) == 0);
        const char *payload = p + 6;
        nl = memchr(payload, '\n', (size_t)(end - payload));
        CHECK(nl && nl + 1 < end && nl[1] == '\n');
        cJSON *d = cJSON_ParseWithLength(payload, (size_t)(nl - payload));
        CHECK(cJSON_IsObject(d));
        if (strcmp(name, "message_stop") == 0) {
            CHECK(o.delta_seen && !o.stopped && !o.errors);
            o.stopped = true;
        } else {
            check_event(&o, name, d);
        }
        cJSON_Delete(d);
        p = nl + 2;
    }
    if (rc == DIALECT_DONE)
        CHECK(o.stopped && !o.errors);
    else
        CHECK(rc == DIALECT_FAIL && o.errors == 1 && !o.stopped && !o.delta_seen);
}

static void fuzz_answer(const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    unsigned step = 1 + data[1] % 64;
    const char *in = (const char *)data + 2;
    size_t len = size - 2;

    struct feed f;
    memset(&f, 0, sizeof f);
    buf_init(&f.out, 16u << 20);
    messages_stream_init(&f.s, "msg_fuzz", "claude-\"fuzz\"");
    f.s.backend = "fuzz";
    f.rc = DIALECT_MORE;
    if (fuzz_split(in, len, step, on_line, &f) == -1) {
        /* an over-long line: the engine fails the stream like this */
        CHECK(f.rc == DIALECT_MORE);
        f.rc = DIALECT_FAIL;
        apierr_set(&f.err, 502, APIERR_API, "upstream_error", NULL, "line too long");
    } else if (f.rc == DIALECT_MORE) {
        f.rc = messages_stream_eof(&f.s, &f.err);
        CHECK(f.rc == DIALECT_FAIL);
    }
    if (f.rc == DIALECT_FAIL) {
        CHECK(f.err.status == 502 || f.err.status == 500);
        CHECK(errshape_anthropic.frame(&f.out, &f.err) == 0);
    }
    check_events(&f.out, f.rc);
    CHECK(f.s.done == (f.rc == DIALECT_DONE));
    CHECK(f.s.prompt_tokens >= 0 && f.s.completion_tokens >= 0);
    messages_stream_free(&f.s);
    buf_free(&f.out);

    struct buf out;
    struct apierr err;
    long pt = -1, ct = -1;
    buf_init(&out, 16u << 20);
    if (messages_complete(in, len, "claude-x", "msg_fuzz", "fuzz", &out, &pt, &ct, &err) == 0) {
        cJSON *j = cJSON_ParseWithLength(out.p, out.len);
        CHECK(cJSON_IsObject(j));
        CHECK(is(get(j, "type"), "message") && is(get(j, "role"), "assistant"));
        const cJSON *content = get(j, "content");
        CHECK(cJSON_IsArray(content) && content->child);
        const cJSON *sr = get(j, "stop_reason");
        CHECK(is(sr, "end_turn") || is(sr, "max_tokens") || is(sr, "tool_use"));
        CHECK(cJSON_IsObject(get(j, "usage")));
        cJSON_Delete(j);
        CHECK(pt >= 0 && ct >= 0);
    } else {
        CHECK(out.len == 0);
        CHECK(err.status == 502 || err.status == 500);
        CHECK(err.message[0]);
    }
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_request((const char *)data + 1, size - 1);
    else
        fuzz_answer(data, size);
    return 0;
}
