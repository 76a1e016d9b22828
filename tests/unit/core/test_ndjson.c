/*
 * Unit tests for gateway/ndjson.c: the same lines come out however the bytes
 * are cut (byte by byte, at random, all at once), CRLF and blank lines are
 * dropped, over-long lines fail, and a final unterminated line is flushed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ndjson.h"

#include <stdio.h>
#include <string.h>

/* Collected lines, each followed by '|' (no test line contains '|'). */
struct sink {
    struct buf got;
    int calls;
    int stop_at; /* return 7 from this call (1-based); 0 = never */
    const char *piece;
    size_t piece_len;
    int zero_copy; /* lines that pointed straight into the fed piece */
};

static int collect(void *ud, const char *line, size_t len)
{
    struct sink *s = ud;
    s->calls++;
    assert_true(len > 0);
    assert_null(memchr(line, '\n', len));
    if (s->piece && line >= s->piece && line + len <= s->piece + s->piece_len)
        s->zero_copy++;
    assert_int_equal(buf_append(&s->got, line, len), 0);
    assert_int_equal(buf_append(&s->got, "|", 1), 0);
    return s->stop_at && s->calls == s->stop_at ? 7 : 0;
}

static void sink_init(struct sink *s)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->got, 1 << 20);
}

/* Feed input cut at the given offsets (ascending, ending at len), then finish. */
static int feed_cuts(struct ndjson *nd, struct sink *s, const char *in, size_t len,
                     const size_t *cuts, size_t ncuts)
{
    size_t at = 0;
    for (size_t k = 0; k < ncuts; k++) {
        s->piece = in + at;
        s->piece_len = cuts[k] - at;
        int rc = ndjson_feed(nd, in + at, cuts[k] - at, collect, s);
        if (rc)
            return rc;
        at = cuts[k];
    }
    assert_int_equal(at, len);
    s->piece = NULL;
    return ndjson_finish(nd, collect, s);
}

static void whole_input(void **state)
{
    (void)state;
    struct ndjson nd;
    struct sink s;
    const char *in = "{\"a\":1}\n{\"b\":2}\n";
    size_t cut = strlen(in);
    ndjson_init(&nd, 1024);
    sink_init(&s);
    assert_int_equal(feed_cuts(&nd, &s, in, strlen(in), &cut, 1), 0);
    assert_string_equal(s.got.p, "{\"a\":1}|{\"b\":2}|");
    assert_int_equal(s.zero_copy, 2); /* whole lines are not copied */
    assert_int_equal(ndjson_pending(&nd), 0);
    ndjson_free(&nd);
    buf_free(&s.got);
}

/* CRLF endings lose the CR; blank and whitespace-only lines vanish. */
static void crlf_and_blank_lines(void **state)
{
    (void)state;
    struct ndjson nd;
    struct sink s;
    const char *in = "\n\r\n{\"a\":1}\r\n   \n\t\r\n{\"b\":2}\n\n \"x\" \n";
    size_t cut = strlen(in);
    ndjson_init(&nd, 1024);
    sink_init(&s);
    assert_int_equal(feed_cuts(&nd, &s, in, strlen(in), &cut, 1), 0);
    assert_string_equal(s.got.p, "{\"a\":1}|{\"b\":2}| \"x\" |");
    ndjson_free(&nd);
    buf_free(&s.got);
}

/* A final line without '\n' comes out of ndjson_finish, once. */
static void unterminated_tail(void **state)
{
    (void)state;
    struct ndjson nd;
    struct sink s;
    ndjson_init(&nd, 1024);
    sink_init(&s);
    assert_int_equal(ndjson_feed(&nd, "{\"a\":1}\n{\"done\":", 16, collect, &s), 0);
    assert_string_equal(s.got.p, "{\"a\":1}|");
    assert_int_equal(ndjson_pending(&nd), 8);
    assert_int_equal(ndjson_feed(&nd, "true}", 5, collect, &s), 0);
    assert_int_equal(ndjson_pending(&nd), 13);
    assert_int_equal(ndjson_finish(&nd, collect, &s), 0);
    assert_string_equal(s.got.p, "{\"a\":1}|{\"done\":true}|");
    assert_int_equal(ndjson_pending(&nd), 0);
    assert_int_equal(ndjson_finish(&nd, collect, &s), 0); /* nothing more */
    assert_int_equal(s.calls, 2);
    /* a tail of "\r" or blanks is nothing */
    assert_int_equal(ndjson_feed(&nd, "  \r", 3, collect, &s), 0);
    assert_int_equal(ndjson_finish(&nd, collect, &s), 0);
    assert_int_equal(s.calls, 2);
    ndjson_free(&nd);
    buf_free(&s.got);
}

/* max_line bytes are accepted, max_line + 1 are not, whole or in pieces. */
static void over_long_line(void **state)
{
    (void)state;
    char line[40];
    memset(line, 'x', sizeof line);
    for (int split = 0; split < 2; split++) {
        struct ndjson nd;
        struct sink s;
        sink_init(&s);
        ndjson_init(&nd, 32);
        line[32] = '\n';
        if (split) {
            assert_int_equal(ndjson_feed(&nd, line, 10, collect, &s), 0);
            assert_int_equal(ndjson_feed(&nd, line + 10, 23, collect, &s), 0);
        } else {
            assert_int_equal(ndjson_feed(&nd, line, 33, collect, &s), 0);
        }
        assert_int_equal(s.calls, 1);
        line[32] = 'x';
        line[33] = '\n';
        if (split) {
            assert_int_equal(ndjson_feed(&nd, line, 20, collect, &s), 0);
            assert_int_equal(ndjson_feed(&nd, line + 20, 14, collect, &s), -1);
        } else {
            assert_int_equal(ndjson_feed(&nd, line, 34, collect, &s), -1);
        }
        assert_int_equal(s.calls, 1);
        /* without any newline at all, the tail itself is bounded */
        ndjson_free(&nd);
        ndjson_init(&nd, 32);
        assert_int_equal(ndjson_feed(&nd, line, 32, collect, &s), 0);
        assert_int_equal(ndjson_feed(&nd, "y", 1, collect, &s), -1);
        ndjson_free(&nd);
        buf_free(&s.got);
    }
}

/* A callback's non-zero value stops the feed and is returned. */
static void callback_stops(void **state)
{
    (void)state;
    struct ndjson nd;
    struct sink s;
    ndjson_init(&nd, 1024);
    sink_init(&s);
    s.stop_at = 2;
    assert_int_equal(ndjson_feed(&nd, "a\nb\nc\n", 6, collect, &s), 7);
    assert_string_equal(s.got.p, "a|b|");
    ndjson_free(&nd);
    buf_free(&s.got);

    ndjson_init(&nd, 1024);
    sink_init(&s);
    s.stop_at = 1;
    assert_int_equal(ndjson_feed(&nd, "tail", 4, collect, &s), 0);
    assert_int_equal(ndjson_finish(&nd, collect, &s), 7);
    ndjson_free(&nd);
    buf_free(&s.got);
}

/* A stream like Ollama's, with awkward contents. */
static const char stream[] =
    "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"done\":"
    "false}\n"
    "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":"
    "\"\\n\\u00e9\xe2\x82\xac\"},\"done\":false}\r\n"
    "\n"
    "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{"
    "\"function\":{\"name\":\"f\",\"arguments\":{}}}]},\"done\":false}\n"
    "   \n"
    "{\"error\":\"x\"}\n"
    "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
    "\"done_reason\":\"stop\"}";

/* What any cutting must produce: split, strip one CR, drop blank lines. */
static void reference(struct buf *want)
{
    const char *p = stream, *end = stream + sizeof stream - 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t n = (size_t)(e - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (strspn(p, " \t") < n) {
            buf_append(want, p, n);
            buf_append(want, "|", 1);
        }
        p = nl ? nl + 1 : end;
    }
}

static void byte_by_byte(void **state)
{
    (void)state;
    struct ndjson nd;
    struct sink s;
    struct buf want;
    size_t len = sizeof stream - 1, cuts[sizeof stream];
    buf_init(&want, 1 << 16);
    reference(&want);
    for (size_t k = 0; k < len; k++)
        cuts[k] = k + 1;
    ndjson_init(&nd, 4096);
    sink_init(&s);
    assert_int_equal(feed_cuts(&nd, &s, stream, len, cuts, len), 0);
    assert_string_equal(s.got.p, want.p);
    assert_int_equal(s.calls, 5);
    ndjson_free(&nd);
    buf_free(&s.got);
    buf_free(&want);
}

/* xorshift32: reproducible cuts */
static uint32_t rnd(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void random_cuts(void **state)
{
    (void)state;
    struct buf want;
    size_t len = sizeof stream - 1;
    buf_init(&want, 1 << 16);
    reference(&want);
    uint32_t seed = 0x9e3779b9u;
    for (int round = 0; round < 2000; round++) {
        size_t cuts[sizeof stream], ncuts = 0, at = 0;
        while (at < len) {
            size_t step = 1 + rnd(&seed) % (round % 3 == 0 ? 8 : 90);
            at = at + step > len ? len : at + step;
            cuts[ncuts++] = at;
        }
        struct ndjson nd;
        struct sink s;
        ndjson_init(&nd, 4096);
        sink_init(&s);
        assert_int_equal(feed_cuts(&nd, &s, stream, len, cuts, ncuts), 0);
        if (strcmp(s.got.p, want.p) != 0)
            fail_msg("round %d: got %s", round, s.got.p);
        ndjson_free(&nd);
        buf_free(&s.got);
    }
    buf_free(&want);
}

/* Every two-piece split, including empty pieces. */
static void every_split_point(void **state)
{
    (void)state;
    struct buf want;
    size_t len = sizeof stream - 1;
    buf_init(&want, 1 << 16);
    reference(&want);
    for (size_t at = 0; at <= len; at++) {
        size_t cuts[2] = {at, len};
        struct ndjson nd;
        struct sink s;
        ndjson_init(&nd, 4096);
        sink_init(&s);
        assert_int_equal(feed_cuts(&nd, &s, stream, len, cuts, 2), 0);
        assert_string_equal(s.got.p, want.p);
        ndjson_free(&nd);
        buf_free(&s.got);
    }
    buf_free(&want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_input),       cmocka_unit_test(crlf_and_blank_lines),
        cmocka_unit_test(unterminated_tail), cmocka_unit_test(over_long_line),
        cmocka_unit_test(callback_stops),    cmocka_unit_test(byte_by_byte),
        cmocka_unit_test(random_cuts),       cmocka_unit_test(every_split_point),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
