/* Unit tests for gateway/sse.c: exact framing, and no half frames on failure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "sse.h"

#include <string.h>

/* PROTOCOL §5.11: each event is "data: <one-line JSON>\n\n", no event: lines */
static void data_one_line(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(sse_data(&b, "{\"a\":1}", 7), 0);
    assert_string_equal(b.p, "data: {\"a\":1}\n\n");
    assert_int_equal(sse_data(&b, "{}", 2), 0);
    assert_string_equal(b.p, "data: {\"a\":1}\n\ndata: {}\n\n");
    buf_free(&b);
}

/* Not NUL-terminated: only len bytes are used. */
static void data_uses_len(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(sse_data(&b, "{}garbage", 2), 0);
    assert_string_equal(b.p, "data: {}\n\n");
    buf_free(&b);
}

/* Line breaks inside the payload become more data: lines, never a frame end. */
static void data_multi_line(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1024);
    const char *json = "{\n\"a\": 1\r\n}";
    assert_int_equal(sse_data(&b, json, strlen(json)), 0);
    assert_string_equal(b.p, "data: {\ndata: \"a\": 1\ndata: }\n\n");
    buf_reset(&b);
    assert_int_equal(sse_data(&b, "x\n", 2), 0);
    assert_string_equal(b.p, "data: x\n\n");
    buf_reset(&b);
    assert_int_equal(sse_data(&b, "", 0), 0);
    assert_string_equal(b.p, "data: \n\n");
    buf_free(&b);
}

static void begin_end(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(sse_begin(&b), 0);
    assert_int_equal(buf_puts(&b, "{\"x\":true}"), 0);
    assert_int_equal(sse_end(&b), 0);
    assert_string_equal(b.p, "data: {\"x\":true}\n\n");
    buf_free(&b);
}

static void comment(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(sse_comment(&b, "keep-alive"), 0);
    assert_string_equal(b.p, ": keep-alive\n\n");
    buf_reset(&b);
    /* a line break cannot end the event or start a field */
    assert_int_equal(sse_comment(&b, "a\ndata: evil\r\nb\rc\n"), 0);
    assert_string_equal(b.p, ": a\n: data: evil\n: b\n: c\n\n");
    buf_reset(&b);
    assert_int_equal(sse_comment(&b, ""), 0);
    assert_string_equal(b.p, ": \n\n");
    buf_free(&b);
}

static void done(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(sse_done(&b), 0);
    assert_string_equal(b.p, "data: [DONE]\n\n");
    buf_free(&b);
}

/* PROTOCOL §5.9: the in-band error frame, an object under "error" */
static void error_frame(void **state)
{
    (void)state;
    struct buf b;
    struct apierr e;
    buf_init(&b, 1024);
    apierr_set(&e, 502, APIERR_API, "upstream_error", NULL, "Backend \"gpu1\" failed: %s", "boom");
    assert_int_equal(sse_error(&b, &e), 0);
    assert_string_equal(b.p, "data: {\"error\":{\"message\":\"Backend \\\"gpu1\\\" failed: boom\","
                             "\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"}}"
                             "\n\n");
    buf_reset(&b);
    apierr_invalid(&e, "messages[0].content", "bad\nline");
    assert_int_equal(sse_error(&b, &e), 0);
    assert_string_equal(b.p, "data: {\"error\":{\"message\":\"bad\\nline\",\"type\":"
                             "\"invalid_request_error\",\"param\":\"messages[0].content\","
                             "\"code\":null}}\n\n");
    buf_free(&b);
}

/* At the ceiling every writer fails and leaves the buffer exactly as it was;
 * below it, the frame is appended whole. */
static struct apierr ceiling_err;

static int w_data(struct buf *b)
{
    return sse_data(b, "{\"k\":\"v\"}\n{}", 12);
}

static int w_comment(struct buf *b)
{
    return sse_comment(b, "x\ny");
}

static int w_done(struct buf *b)
{
    return sse_done(b);
}

static int w_error(struct buf *b)
{
    return sse_error(b, &ceiling_err);
}

static void ceiling_leaves_buffer_intact(void **state)
{
    (void)state;
    static const struct {
        int (*write)(struct buf *);
        const char *frame;
    } writers[] = {
        {w_data, "data: {\"k\":\"v\"}\ndata: {}\n\n"},
        {w_comment, ": x\n: y\n\n"},
        {w_done, "data: [DONE]\n\n"},
        {w_error, "data: {\"error\":{\"message\":\"long message\",\"type\":\"api_error\","
                  "\"param\":null,\"code\":\"upstream_error\"}}\n\n"},
    };
    apierr_set(&ceiling_err, 502, APIERR_API, "upstream_error", NULL, "long message");
    for (size_t w = 0; w < sizeof writers / sizeof writers[0]; w++) {
        size_t flen = strlen(writers[w].frame);
        for (size_t max = 2; max < flen + 4; max++) {
            struct buf b;
            buf_init(&b, max);
            assert_int_equal(buf_puts(&b, "ab"), 0);
            int rc = writers[w].write(&b);
            if (max < flen + 2) {
                assert_int_equal(rc, -1);
                assert_int_equal(b.len, 2);
                assert_string_equal(b.p, "ab");
            } else {
                assert_int_equal(rc, 0);
                assert_int_equal(b.len, flen + 2);
                assert_memory_equal(b.p + 2, writers[w].frame, flen);
            }
            buf_free(&b);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(data_one_line),   cmocka_unit_test(data_uses_len),
        cmocka_unit_test(data_multi_line), cmocka_unit_test(begin_end),
        cmocka_unit_test(comment),         cmocka_unit_test(done),
        cmocka_unit_test(error_frame),     cmocka_unit_test(ceiling_leaves_buffer_intact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
