/*
 * libFuzzer target: Ollama's native API as relayed by the gateway
 * (gateway/proto/native.c). The input's first line is a client body, run
 * through each native dialect's translation (the model renamed to a name
 * that needs escaping); the rest is a backend's answer, fed as NDJSON lines,
 * as a whole answer, and as an error body.
 *
 * Invariants (abort on violation): a translated body is one JSON object
 * whose "model" (or "name") is the new name, admin bodies pass unchanged;
 * every output line is one complete line; a line that is relayed keeps its
 * bytes after the renamed head; a failure writes nothing; after DONE or FAIL
 * nothing more is written; an error always has a status and a message.
 */
#include "fuzz.h"
#include "native.h"
#include "ndjson.h"

#include <cjson/cJSON.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static const char NEW_NAME[] = "backend \"m\":1";

static int resolve(void *ctx, const char *client_model, bool stream, struct dialect_model *m,
                   struct apierr *e)
{
    (void)ctx;
    (void)client_model;
    (void)stream;
    (void)e;
    m->name = NEW_NAME;
    m->options = NULL;
    return 0;
}

struct feed {
    const struct dialect *d;
    void *st;
    struct buf out;
    struct apierr err;
    int rc;
};

static int on_line(void *ud, const char *line, size_t len)
{
    struct feed *f = ud;
    size_t before = f->out.len;
    int rc = f->d->line(f->st, line, len, &f->out, &f->err);
    if (rc == DIALECT_FAIL) {
        CHECK(f->out.len == before);
        CHECK(f->err.status >= 400 && f->err.message[0]);
    } else if (f->out.len != before) {
        /* exactly one line, ending in '\n', with no other '\n' */
        CHECK(f->out.p[f->out.len - 1] == '\n');
        CHECK(memchr(f->out.p + before, '\n', f->out.len - before - 1) == NULL);
    }
    if (f->rc != DIALECT_MORE)
        CHECK(f->out.len == before);
    f->rc = rc == DIALECT_MORE ? f->rc : rc;
    return 0; /* keep feeding: later lines must write nothing */
}

static void run(const struct dialect *d, const char *body, size_t blen, const char *rest,
                size_t rlen)
{
    char st[512] __attribute__((aligned(16)));
    CHECK(d->state_size <= sizeof st);
    memset(st, 0, sizeof st);
    struct buf native;
    buf_init(&native, 1 << 20);
    struct apierr e = {0};
    int rc = d->translate(st, body, blen, resolve, NULL, &native, &e);
    if (rc < 0) {
        CHECK(native.len == 0 && e.status >= 400 && e.message[0]);
        buf_free(&native);
        d->release(st);
        return;
    }
    if (d == &dialect_native_admin) {
        CHECK(native.len == blen && memcmp(native.p ? native.p : "", body, blen) == 0);
    } else if (d != &dialect_native_blob) {
        cJSON *j = cJSON_ParseWithLength(native.p, native.len);
        CHECK(cJSON_IsObject(j));
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
        if (!m || cJSON_IsNull(m))
            m = cJSON_GetObjectItemCaseSensitive(j, "name");
        CHECK(cJSON_IsString(m) && strcmp(m->valuestring, NEW_NAME) == 0);
        cJSON_Delete(j);
    }
    buf_free(&native);
    struct dialect_answer a = {.client_model = "client\\model", .id = "", .created = 1};
    CHECK(d->begin(st, &a) == 0);
    ((struct dialect_common *)st)->backend = "fuzz";

    struct feed f = {.d = d, .st = st, .rc = DIALECT_MORE};
    buf_init(&f.out, 1 << 20);
    struct ndjson nd;
    ndjson_init(&nd, 1 << 16);
    ndjson_feed(&nd, rest, rlen, on_line, &f);
    ndjson_finish(&nd, on_line, &f);
    ndjson_free(&nd);
    if (f.rc == DIALECT_MORE) {
        struct apierr ee = {0};
        size_t before = f.out.len;
        if (d->eof(st, &f.out, &ee) == DIALECT_FAIL)
            CHECK(ee.status >= 400 && ee.message[0]);
        CHECK(f.out.len == before);
    }
    buf_reset(&f.out);
    struct apierr ce = {0};
    if (d->complete(st, rest, rlen, &f.out, &ce) < 0)
        CHECK(ce.status >= 400);
    buf_free(&f.out);
    struct apierr ue = {0};
    d->upstream_error(400 + (int)(rlen % 200), rest, rlen, "fuzz", &ue);
    CHECK(ue.status >= 400 && ue.status <= 599 && ue.message[0]);
    d->release(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nl = memchr(p, '\n', size);
    size_t blen = nl ? (size_t)(nl - p) : size;
    const char *rest = nl ? nl + 1 : p + size;
    size_t rlen = size - blen - (nl ? 1 : 0);
    run(&dialect_native_stream, p, blen, rest, rlen);
    run(&dialect_native_whole, p, blen, rest, rlen);
    run(&dialect_native_admin, p, blen, rest, rlen);
    run(&dialect_native_blob, p, blen, rest, rlen);
    return 0;
}
