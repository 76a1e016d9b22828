/*
 * libFuzzer target: the NDJSON splitter against a reference splitter.
 *
 * The input is cut into pieces whose sizes come from the input itself; the
 * lines delivered must equal splitting the whole input at '\n', dropping one
 * trailing '\r' and whitespace-only lines, with a final unterminated line
 * flushed by ndjson_finish; and ndjson_feed must fail (-1) exactly when some
 * line is longer than max_line.
 */
#include "fuzz.h"
#include "buf.h"
#include "ndjson.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Each line followed by its length as 8 bytes, so any byte may be in a line. */
static void put_line(struct buf *b, const char *line, size_t len)
{
    CHECK(buf_append(b, line, len) == 0);
    CHECK(buf_append(b, &len, sizeof len) == 0);
}

static int collect(void *ud, const char *line, size_t len)
{
    CHECK(len > 0 && !memchr(line, '\n', len));
    put_line(ud, line, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_line = 1 + data[0] % 128;
    uint32_t x = 0x9e3779b9u ^ data[1];
    const char *in = (const char *)data + 2;
    size_t len = size - 2;

    /* reference */
    struct buf want;
    bool too_long = false;
    buf_init(&want, 1u << 24);
    for (const char *p = in, *end = in + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t n = (size_t)(e - p);
        if (n > max_line)
            too_long = true;
        if (n && p[n - 1] == '\r')
            n--;
        size_t ws = 0;
        while (ws < n && (p[ws] == ' ' || p[ws] == '\t'))
            ws++;
        if (ws < n)
            put_line(&want, p, n);
        p = nl ? nl + 1 : end;
    }

    struct ndjson nd;
    struct buf got;
    int rc = 0;
    buf_init(&got, 1u << 24);
    ndjson_init(&nd, max_line);
    for (size_t at = 0; at < len && rc == 0;) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        size_t n = x % 4 == 0 ? 0 : 1 + x % (2 * max_line + 3);
        if (n > len - at)
            n = len - at;
        rc = ndjson_feed(&nd, in + at, n, collect, &got);
        CHECK(ndjson_pending(&nd) <= max_line);
        at += n;
    }
    if (rc == 0)
        rc = ndjson_finish(&nd, collect, &got);
    CHECK(rc == 0 || rc == -1);
    CHECK((rc == -1) == too_long);
    if (rc == 0) {
        CHECK(got.len == want.len);
        CHECK(!got.len || memcmp(got.p, want.p, got.len) == 0);
        CHECK(ndjson_pending(&nd) == 0);
    }
    ndjson_free(&nd);
    buf_free(&got);
    buf_free(&want);
    return 0;
}
