/* Unit tests for accesslog.c: every line is valid JSON, whatever the client
 * named: a 64 KiB model name is cut with "..." inside the string, malformed
 * UTF-8 becomes U+FFFD. Each line is parsed with cJSON. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "accesslog.h"
#include "clock.h"
#include "log.h"
#include "request.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/test_accesslog.XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    return log_access_open(path);
}

static int teardown(void **state)
{
    (void)state;
    log_access_close();
    unlink(path);
    return 0;
}

/* The one line the access log holds now, parsed; the file is emptied. */
static cJSON *take_line(void)
{
    assert_int_equal(log_flush(5000), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[1 << 17];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    assert_true(truncate(path, 0) == 0);
    assert_true(n > 0 && n < sizeof text);
    assert_int_equal(text[n - 1], '\n');
    assert_null(memchr(text, '\n', n - 1)); /* one line */
    for (size_t i = 0, k; i < n; i += k) {  /* well-formed UTF-8 throughout */
        k = buf_utf8_len((const unsigned char *)text + i, n - i);
        assert_true(k > 0);
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, n - 1, &end, 0);
    assert_non_null(j);
    assert_ptr_equal(end, text + n - 1);
    return j;
}

static void request_with(struct request *r, char *model)
{
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "req-1");
    r->method = "POST";
    r->path = "/v1/chat/completions";
    r->model = model;
    r->upstream_model = model;
    r->backend = -1;
    r->status = 404;
    r->t_start = now_ms();
}

static void check_long_model(void)
{
    struct request r;
    char *model = malloc(65537);
    assert_non_null(model);
    memset(model, 'm', 65536);
    model[65536] = '\0';
    /* a three-byte character across the cut: it must not be split */
    memcpy(model + 252, "\xe2\x82\xac", 3);
    request_with(&r, model);
    accesslog_write(&r, MHD_REQUEST_TERMINATED_COMPLETED_OK);
    cJSON *j = take_line();
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "model"));
    assert_non_null(m);
    assert_true(strlen(m) <= 256);
    assert_int_equal(strlen(m), 252 + 3);
    assert_memory_equal(m, model, 252);
    assert_string_equal(m + 252, "...");
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "status")), 404);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "path")),
                        "/v1/chat/completions");
    cJSON_Delete(j);
    free(model);
}

static void check_bad_utf8(void)
{
    struct request r;
    char model[] = "llama\xff\xc3 \"q\"\n\xe2\x82\xac";
    request_with(&r, model);
    accesslog_write(&r, MHD_REQUEST_TERMINATED_COMPLETED_OK);
    cJSON *j = take_line();
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "model")),
                        "llama\xef\xbf\xbd\xef\xbf\xbd \"q\"\n\xe2\x82\xac");
    cJSON_Delete(j);
}

static void long_model_name(void **state)
{
    (void)state;
    check_long_model();
}

static void bad_utf8(void **state)
{
    (void)state;
    check_bad_utf8();
}

/* The same through the writer thread, as the gateway runs. */
static void through_the_writer(void **state)
{
    (void)state;
    assert_int_equal(log_writer_start(LOG_RING_BYTES), 0);
    check_long_model();
    check_bad_utf8();
    assert_int_equal(log_writer_stop(5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(long_model_name, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(through_the_writer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
