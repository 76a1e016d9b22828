/* Unit tests for apierr.c: an error that echoes a client's text (a model name
 * with malformed UTF-8, a message cut in the middle of a character) is still
 * valid JSON, parsed here with cJSON. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "apierr.h"

#include <cjson/cJSON.h>
#include <string.h>

/* The message of e's JSON, parsed; the JSON must be well-formed UTF-8. */
static char *message_of(const struct apierr *e, struct buf *out)
{
    buf_reset(out);
    assert_int_equal(apierr_json(e, out), 0);
    for (size_t i = 0, k; i < out->len; i += k) {
        k = buf_utf8_len((const unsigned char *)out->p + i, out->len - i);
        assert_true(k > 0);
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(out->p, out->len, &end, 0);
    assert_non_null(j);
    cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"));
    assert_non_null(m);
    static char copy[1024];
    assert_true(strlen(m) < sizeof copy);
    memcpy(copy, m, strlen(m) + 1);
    cJSON_Delete(j);
    return copy;
}

static void bad_utf8_model(void **state)
{
    (void)state;
    struct apierr e;
    struct buf out;
    buf_init(&out, 1 << 16);
    apierr_invalid(&e, "model", "The model `%s` does not exist", "llama\xff\xfe");
    assert_string_equal(message_of(&e, &out),
                        "The model `llama\xef\xbf\xbd\xef\xbf\xbd` does not exist");

    /* a long name of euro signs, cut by the message's size inside one */
    char name[600];
    for (size_t i = 0; i + 3 < sizeof name; i += 3)
        memcpy(name + i, "\xe2\x82\xac", 3);
    name[597] = '\0';
    apierr_invalid(&e, "model", "xy%s", name);
    const char *m = message_of(&e, &out);
    size_t n = strlen(m);
    /* 319 bytes: "xy", 105 whole euro signs, and two bytes of the next */
    assert_memory_equal(m, "xy\xe2\x82\xac", 5);
    assert_int_equal(n, 2 + 105 * 3 + 6);
    assert_string_equal(m + n - 6, "\xef\xbf\xbd\xef\xbf\xbd");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_utf8_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
