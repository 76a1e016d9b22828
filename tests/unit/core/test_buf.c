/* Unit tests for gateway/buf.c: the ceiling, failure atomicity, JSON escaping. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "buf.h"

#include <stdlib.h>
#include <limits.h>
#include <string.h>

static void starts_empty(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 16);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 16);
    buf_reset(&b); /* fine on an empty buf */
    buf_free(&b);
    buf_free(&b); /* twice is fine */
}

static void append_terminates(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 64);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.p, "abc");
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(buf_puts(&b, "de"), 0);
    assert_string_equal(b.p, "abcde");
    assert_true(b.cap > b.len);
    buf_free(&b);

    /* an empty append still yields a '\0'-terminated string */
    buf_init(&b, 0);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_non_null(b.p);
    assert_string_equal(b.p, "");
    buf_free(&b);
}

/* The ceiling is exact: max bytes fit, max + 1 do not. */
static void ceiling_is_exact(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 5);
    assert_int_equal(buf_append(&b, "12345", 5), 0);
    assert_int_equal(buf_append(&b, "6", 1), -1);
    assert_string_equal(b.p, "12345");
    assert_true(b.cap <= b.max + 1);
    buf_free(&b);

    buf_init(&b, 5);
    assert_int_equal(buf_append(&b, "123456", 6), -1);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

/* A failed append, printf or json_str leaves len and bytes untouched. */
static void failure_leaves_buffer_intact(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 20);
    assert_int_equal(buf_puts(&b, "hello"), 0);
    char *before = strdup(b.p);

    assert_int_equal(buf_append(&b, "0123456789abcdefg", 16), -1);
    assert_int_equal(buf_printf(&b, "%s-%d", "0123456789", 12345), -1);
    assert_int_equal(buf_json_str(&b, "0123456789abcd", 14), -1);
    /* fits unescaped (13 + 2 = 15 = room) but not escaped: rolled back */
    assert_int_equal(buf_json_str(&b, "\n\n\n\n\n\n\n\n\n\n\n\n\n", 13), -1);
    assert_int_equal(buf_json_str(&b, "abcdefghijk\"m", 13), -1);
    assert_int_equal(buf_reserve(&b, 16), -1);

    assert_int_equal(b.len, 5);
    assert_string_equal(b.p, before);
    /* and it still works afterwards */
    assert_int_equal(buf_puts(&b, " world"), 0);
    assert_string_equal(b.p, "hello world");
    free(before);
    buf_free(&b);
}

static void printf_grows(void **state)
{
    (void)state;
    struct buf b;
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_printf(&b, "%d:", 42), 0);
    assert_int_equal(buf_printf(&b, "%s|%s", big, big), 0); /* past the 256-byte fast path */
    assert_int_equal(b.len, 3 + 999 * 2 + 1);
    assert_memory_equal(b.p, "42:xxx", 6);
    assert_int_equal(b.p[3 + 999], '|');
    assert_int_equal(b.p[b.len], '\0');
    assert_int_equal(buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 3 + 999 * 2 + 1);
    buf_free(&b);

    /* exactly at the ceiling through the slow path */
    buf_init(&b, 300);
    assert_int_equal(buf_printf(&b, "%.300s", big), 0);
    assert_int_equal(b.len, 300);
    assert_int_equal(buf_printf(&b, "x"), -1);
    buf_free(&b);
}

static void reader(void **state)
{
    (void)state;
    struct buf b;
    struct buf_reader rd = {0};
    char out[16];
    buf_init(&b, 64);
    buf_puts(&b, "abcdef");
    assert_int_equal(buf_unread(&b, &rd), 6);
    assert_int_equal(buf_read(&b, &rd, out, 2), 2);
    assert_memory_equal(out, "ab", 2);
    assert_int_equal(buf_unread(&b, &rd), 4);
    assert_int_equal(buf_read(&b, &rd, out, 0), 0);
    buf_puts(&b, "gh"); /* the producer appends behind the reader */
    assert_int_equal(buf_read(&b, &rd, out, sizeof out), 6);
    assert_memory_equal(out, "cdefgh", 6);
    /* drained: the buf is empty again, the reader back at its start */
    assert_int_equal(b.len, 0);
    assert_int_equal(rd.off, 0);
    assert_string_equal(b.p, "");
    assert_int_equal(buf_read(&b, &rd, out, sizeof out), 0);
    buf_free(&b);
}

#define BIG (16u << 20)
#define READ (4u << 10)

static char pattern(size_t i)
{
    return (char)('a' + (i * 7 + i / 4093) % 26);
}

/* One long line (16 MiB, as a done line full of tool calls can be) drained
 * by libmicrohttpd's few-KiB reads. Moving the remainder down on every read
 * costs sum(16 MiB - k * 4 KiB) = about 32 GiB; the reader moves nothing
 * until the end, then at most about the size of the buffer in all. */
static void reader_drains_big_buffer_cheaply(void **state)
{
    (void)state;
    struct buf b;
    struct buf_reader rd = {0};
    buf_init(&b, 64u << 20);
    assert_int_equal(buf_reserve(&b, BIG), 0);
    for (size_t i = 0; i < BIG; i++)
        b.p[i] = pattern(i);
    buf_truncate(&b, BIG);
    size_t moved0 = buf_bytes_moved(), got = 0;
    char out[READ];
    size_t n;
    while ((n = buf_read(&b, &rd, out, sizeof out)) > 0) {
        for (size_t i = 0; i < n; i++)
            if (out[i] != pattern(got + i))
                fail_msg("byte %zu: got %c, want %c", got + i, out[i], pattern(got + i));
        got += n;
    }
    assert_int_equal(got, BIG);
    size_t moved = buf_bytes_moved() - moved0;
    print_message("drained %u bytes in %u-byte reads: %zu bytes moved\n", BIG, READ, moved);
    assert_true(moved <= BIG);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

/* A producer that keeps appending while the reader drains (a stream): what
 * is moved stays within what is read, and the bytes already read never pile
 * up beyond what is unread (or BUF_COMPACT_MIN). */
static void reader_with_producer(void **state)
{
    (void)state;
    struct buf b;
    struct buf_reader rd = {0};
    buf_init(&b, 64u << 20);
    size_t moved0 = buf_bytes_moved(), put = 0, got = 0, maxlen = 0;
    char in[3000], out[READ];
    while (got < BIG) {
        if (put < BIG) {
            size_t n = put + sizeof in <= BIG ? sizeof in : BIG - put;
            for (size_t i = 0; i < n; i++)
                in[i] = pattern(put + i);
            assert_int_equal(buf_append(&b, in, n), 0);
            put += n;
            if (put % (1u << 20) < sizeof in) /* now and then a burst */
                for (int k = 0; k < 200 && put < BIG; k++, put += sizeof in) {
                    for (size_t i = 0; i < sizeof in; i++)
                        in[i] = pattern(put + i);
                    assert_int_equal(buf_append(&b, in, sizeof in), 0);
                }
        }
        if (b.len > maxlen)
            maxlen = b.len;
        size_t unread = buf_unread(&b, &rd);
        assert_true(rd.off < BUF_COMPACT_MIN + READ || rd.off <= unread + READ);
        size_t n = buf_read(&b, &rd, out, sizeof out);
        for (size_t i = 0; i < n; i++)
            if (out[i] != pattern(got + i))
                fail_msg("byte %zu: got %c, want %c", got + i, out[i], pattern(got + i));
        got += n;
    }
    size_t moved = buf_bytes_moved() - moved0;
    print_message("streamed %u bytes: %zu moved, the buf at most %zu bytes\n", BIG, moved, maxlen);
    assert_true(moved <= BIG);
    buf_free(&b);
}

static void reset_keeps_allocation(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 64);
    buf_puts(&b, "abc");
    char *p = b.p;
    size_t cap = b.cap;
    buf_reset(&b);
    assert_ptr_equal(b.p, p);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.p, "");
    buf_free(&b);
}

static void detach(void **state)
{
    (void)state;
    struct buf b;
    size_t len = 0;
    buf_init(&b, 64);
    buf_puts(&b, "take me");
    char *p = buf_detach(&b, &len);
    assert_string_equal(p, "take me");
    assert_int_equal(len, 7);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 64); /* still usable */
    assert_int_equal(buf_puts(&b, "again"), 0);
    free(p);
    buf_free(&b);
}

static void reserve(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1000);
    assert_int_equal(buf_reserve(&b, 600), 0);
    assert_int_equal(b.len, 0);
    assert_true(b.cap >= 601);
    assert_true(b.cap <= 1001);
    assert_int_equal(buf_reserve(&b, 1000), 0);
    assert_int_equal(buf_reserve(&b, 1001), -1);
    buf_free(&b);
}

static const char *json(struct buf *b, const char *s, size_t n)
{
    buf_reset(b);
    assert_int_equal(buf_json_str(b, s, n), 0);
    return b->p;
}

/* JSON escaping: quotes, backslash, every control character; UTF-8 and DEL as is,
 * malformed UTF-8 as U+FFFD. */
static void json_escaping(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 4096);
    assert_string_equal(json(&b, "", 0), "\"\"");
    assert_string_equal(json(&b, "plain", 5), "\"plain\"");
    assert_string_equal(json(&b, "a\"b\\c/", 6), "\"a\\\"b\\\\c/\"");
    assert_string_equal(json(&b, "\n\r\t", 3), "\"\\n\\r\\t\"");
    assert_string_equal(json(&b, "\b\f\x01\x1f", 4), "\"\\u0008\\u000c\\u0001\\u001f\"");
    assert_string_equal(json(&b, "x\0y", 3), "\"x\\u0000y\"");
    assert_string_equal(json(&b, "\x7f", 1), "\"\x7f\"");
    assert_string_equal(json(&b, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14),
                        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    /* each byte of malformed UTF-8 becomes U+FFFD, so the JSON stays valid */
#define FFFD "\xef\xbf\xbd"
    assert_string_equal(json(&b, "\xff\xc3", 2), "\"" FFFD FFFD "\"");
    assert_string_equal(json(&b,
                             "a\xc0\x80"
                             "b",
                             4),
                        "\"a" FFFD FFFD "b\"");                                 /* overlong */
    assert_string_equal(json(&b, "\xed\xa0\x80", 3), "\"" FFFD FFFD FFFD "\""); /* surrogate */
    assert_string_equal(json(&b, "\xf4\x90\x80\x80", 4),
                        "\"" FFFD FFFD FFFD FFFD "\"");                      /* above U+10FFFF */
    assert_string_equal(json(&b, "x\xe2\x82", 3), "\"x" FFFD FFFD "\"");     /* cut short */
    assert_string_equal(json(&b, "\xe2\x82\"", 3), "\"" FFFD FFFD "\\\"\""); /* cut by a quote */
    assert_string_equal(json(&b, "\xf4\x8f\xbf\xbf\xed\x9f\xbf", 7),
                        "\"\xf4\x8f\xbf\xbf\xed\x9f\xbf\""); /* U+10FFFF, U+D7FF */
#undef FFFD
    /* only n bytes are read */
    assert_string_equal(json(&b, "abc\"", 3), "\"abc\"");

    /* every control character escapes to something JSON accepts */
    for (int c = 0; c < 0x20; c++) {
        char in = (char)c;
        const char *out = json(&b, &in, 1);
        assert_int_equal(out[0], '"');
        assert_int_equal(out[1], '\\');
        assert_int_equal(out[strlen(out) - 1], '"');
    }
    buf_free(&b);
}

/* Escapes across a long run: appends mid-run are correct. */
static void json_escaping_long(void **state)
{
    (void)state;
    struct buf b;
    char in[600];
    buf_init(&b, 1 << 16);
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = i % 50 == 49 ? '"' : 'a';
    assert_int_equal(buf_json_str(&b, in, sizeof in), 0);
    assert_int_equal(b.len, sizeof in + sizeof in / 50 + 2);
    size_t o = 1;
    for (size_t i = 0; i < sizeof in; i++) {
        if (in[i] == '"')
            assert_int_equal(b.p[o++], '\\');
        assert_int_equal(b.p[o++], in[i]);
    }
    buf_free(&b);
}

/* json_str appends after existing content, exactly up to the ceiling, and
 * rolls back to it on failure. */
static void json_appends(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 12);
    buf_puts(&b, "{\"k\":");
    assert_int_equal(buf_json_str(&b, "v", 1), 0);
    assert_string_equal(b.p, "{\"k\":\"v\"");
    assert_int_equal(buf_json_str(&b, "\t", 1), 0); /* 4 bytes, 4 left */
    assert_string_equal(b.p, "{\"k\":\"v\"\"\\t\"");
    assert_int_equal(buf_json_str(&b, "", 0), -1);
    assert_int_equal(b.len, 12);
    buf_free(&b);

    buf_init(&b, 9);
    buf_puts(&b, "ab");
    assert_int_equal(buf_json_str(&b, "\x01", 1), -1); /* 8 bytes needed, 7 left */
    assert_string_equal(b.p, "ab");
    buf_free(&b);
}

static void put_int(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 64);
    assert_int_equal(buf_put_int(&b, 0), 0);
    assert_int_equal(buf_put_int(&b, -7), 0);
    assert_int_equal(buf_put_int(&b, 1234567890123LL), 0);
    assert_int_equal(buf_put_int(&b, LLONG_MIN), 0);
    assert_string_equal(b.p, "0-71234567890123-9223372036854775808");
    buf_free(&b);
    buf_init(&b, 3);
    assert_int_equal(buf_put_int(&b, 1000), -1); /* over the ceiling: nothing written */
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_int),
        cmocka_unit_test(starts_empty),
        cmocka_unit_test(append_terminates),
        cmocka_unit_test(ceiling_is_exact),
        cmocka_unit_test(failure_leaves_buffer_intact),
        cmocka_unit_test(printf_grows),
        cmocka_unit_test(reader),
        cmocka_unit_test(reader_drains_big_buffer_cheaply),
        cmocka_unit_test(reader_with_producer),
        cmocka_unit_test(reset_keeps_allocation),
        cmocka_unit_test(detach),
        cmocka_unit_test(reserve),
        cmocka_unit_test(json_escaping),
        cmocka_unit_test(json_escaping_long),
        cmocka_unit_test(json_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
