/*
 * Unit tests for gateway/core/membudget.c and the buffers that charge it: a
 * counted buf charges what it allocates and gives it back when freed (a
 * detached one keeps its charge), uncounted bufs charge nothing, a long
 * NDJSON line and a big parse copy are given back once handed on, and
 * charges from several threads at once add up exactly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "buf.h"
#include "json.h"
#include "membudget.h"
#include "ndjson.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void counted_buf(void **state)
{
    (void)state;
    size_t base = membudget_used();
    struct buf b;
    buf_init(&b, 1u << 20);
    buf_count(&b);
    assert_int_equal(membudget_used(), base); /* nothing allocated yet */
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    for (int i = 0; i < 100; i++)
        assert_int_equal(buf_append(&b, chunk, sizeof chunk), 0);
    assert_int_equal(membudget_used(), base + b.cap);
    assert_int_equal(buf_held(&b), b.cap);
    buf_reset(&b); /* the allocation is kept, and so is its charge */
    assert_int_equal(membudget_used(), base + b.cap);
    buf_free(&b);
    assert_int_equal(membudget_used(), base);
    /* still counted after a free: the next growth is charged again */
    assert_int_equal(buf_append(&b, chunk, 10), 0);
    assert_int_equal(membudget_used(), base + b.cap);
    /* a detached buffer's charge goes with the bytes */
    size_t held = buf_held(&b), len;
    char *p = buf_detach(&b, &len);
    assert_int_equal(membudget_used(), base + held);
    free(p);
    membudget_release(held);
    assert_int_equal(membudget_used(), base);
    /* a failed append (over the ceiling) charges nothing */
    buf_init(&b, 100);
    buf_count(&b);
    assert_int_equal(buf_append(&b, chunk, 101), -1);
    assert_int_equal(membudget_used(), base);
    buf_free(&b);
}

static void uncounted_buf(void **state)
{
    (void)state;
    size_t base = membudget_used();
    struct buf b;
    buf_init(&b, 1u << 20);
    assert_int_equal(buf_reserve(&b, 5000), 0);
    assert_int_equal(membudget_used(), base);
    /* counting a buf that holds memory already charges it at once */
    buf_count(&b);
    assert_int_equal(membudget_used(), base + b.cap);
    buf_free(&b);
    assert_int_equal(membudget_used(), base);
}

/* A reservation of a known size (a declared body) costs exactly that. */
static void exact_first_reservation(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 16u << 20);
    assert_int_equal(buf_reserve(&b, 10000000), 0);
    assert_int_equal(b.cap, 10000001); /* + the '\0' */
    buf_free(&b);
    buf_init(&b, 1000);
    assert_int_equal(buf_reserve(&b, 3), 0);
    assert_int_equal(b.cap, 256); /* small ones still start at 256 */
    buf_free(&b);
}

static int count_lines(void *ud, const char *line, size_t len)
{
    (void)line;
    *(size_t *)ud += len;
    return 0;
}

/* A long line's tail buffer is given back as soon as the line is handed on:
 * a stream must not keep megabytes for its later token lines. */
static void long_line_given_back(void **state)
{
    (void)state;
    size_t base = membudget_used();
    struct ndjson nd;
    ndjson_init(&nd, 16u << 20);
    buf_count(&nd.tail);
    size_t n = 3u << 20, got = 0;
    char *line = malloc(n);
    assert_non_null(line);
    memset(line, 'x', n);
    for (size_t off = 0; off < n; off += 2048) /* as curl hands it over */
        assert_int_equal(
            ndjson_feed(&nd, line + off, n - off < 2048 ? n - off : 2048, count_lines, &got), 0);
    assert_true(membudget_used() >= base + n); /* held while incomplete */
    assert_int_equal(ndjson_feed(&nd, "\n", 1, count_lines, &got), 0);
    assert_int_equal(got, n);
    assert_int_equal(nd.tail.cap, 0);
    assert_int_equal(membudget_used(), base);
    /* short lines keep their small buffer for the next one */
    assert_int_equal(ndjson_feed(&nd, "{\"a\":", 5, count_lines, &got), 0);
    assert_int_equal(ndjson_feed(&nd, "1}\n", 3, count_lines, &got), 0);
    assert_true(nd.tail.cap > 0);
    ndjson_free(&nd);
    assert_int_equal(membudget_used(), base);
    free(line);
}

/* json_parse's copy of a big input is not kept for the next parse. */
static void big_parse_copy_given_back(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    char *doc = malloc(n);
    assert_non_null(doc);
    memset(doc, 'z', n);
    doc[0] = '"';
    doc[n - 1] = '"';
    struct buf scratch;
    buf_init(&scratch, SIZE_MAX / 4);
    size_t at;
    cJSON *j = json_parse(&scratch, doc, n, &at);
    assert_non_null(j);
    assert_int_equal(strlen(j->valuestring), n - 2);
    assert_int_equal(scratch.cap, 0);
    cJSON_Delete(j);
    j = json_parse(&scratch, "{\"a\":1}", 7, &at);
    assert_non_null(j);
    assert_true(scratch.cap > 0); /* a small copy is kept */
    cJSON_Delete(j);
    buf_free(&scratch);
    free(doc);
}

#define ROUNDS 200000

static void *churn(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        membudget_charge(4096);
        membudget_charge(1);
        membudget_release(4097);
    }
    return NULL;
}

/* Workers charge and release at once: nothing is lost between them. */
static void threads_add_up(void **state)
{
    (void)state;
    size_t base = membudget_used();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, NULL), 0);
    membudget_charge(777);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(membudget_used(), base + 777);
    membudget_release(777);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counted_buf),
        cmocka_unit_test(uncounted_buf),
        cmocka_unit_test(exact_first_reservation),
        cmocka_unit_test(long_line_given_back),
        cmocka_unit_test(big_parse_copy_given_back),
        cmocka_unit_test(threads_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
