/*
 * Unit tests for proto/upstream_error.c: a backend's non-200 answer mapped to
 * the OpenAI error sent to the client (PROTOCOL.md §5.10), and the bounds of
 * the excerpt of Ollama's message it quotes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "upstream_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Upstream errors (PROTOCOL §5.10)                                          */

struct mapping {
    int status;
    const char *body;
    int want_status;
    const char *type, *code, *param;
    bool no_retry;
    const char *msg_part;
};

static void check_mapping(const struct mapping *m)
{
    struct apierr err;
    memset(&err, 0x55, sizeof err);
    upstream_error_map(m->status, m->body, m->body ? strlen(m->body) : 0, "gpu1", &err);
    assert_int_equal(err.status, m->want_status);
    assert_string_equal(err.type, m->type);
    if (m->code)
        assert_string_equal(err.code, m->code);
    else
        assert_null(err.code);
    assert_string_equal(err.param, m->param);
    assert_int_equal(err.no_retry, m->no_retry);
    assert_non_null(strstr(err.message, "gpu1"));
    if (m->msg_part && !strstr(err.message, m->msg_part))
        fail_msg("message '%s' lacks '%s'", err.message, m->msg_part);
    /* never Ollama's raw JSON */
    assert_null(strstr(err.message, "{\"error\""));
    /* nor anything that is not Ollama's own message (an HTML page, say) */
    assert_null(strstr(err.message, "<html>"));
}

static void upstream_error_mapping(void **state)
{
    (void)state;
    const struct mapping cases[] = {
        {400, "{\"error\":\"invalid model name\"}", 400, APIERR_INVALID, NULL, "model", false,
         "invalid model name"},
        {400, "{\"error\":\"registry.ollama.ai/library/gemma:2b does not support tools\"}", 400,
         APIERR_INVALID, NULL, "tools", false, "does not support tools"},
        {400, "{\"error\":\"registry.ollama.ai/library/llama3.2:latest does not support insert\"}",
         400, APIERR_INVALID, NULL, "suffix", false, "does not support insert"},
        {400, "{\"error\":\"\\\"qwen\\\" does not support thinking\"}", 400, APIERR_INVALID, NULL,
         "reasoning_effort", false, NULL},
        {404, "{\"error\":\"model 'llama9' not found\"}", 404, APIERR_INVALID, "model_not_found",
         "model", false, "model 'llama9' not found"},
        {404, "404 page not found", 502, APIERR_API, "upstream_error", "", true, "404"},
        {500,
         "{\"error\":\"invalid format: \\\"xml\\\"; expected \\\"json\\\" or a valid JSON "
         "Schema object\"}",
         400, APIERR_INVALID, NULL, "response_format", false, "invalid format"},
        {500, "{\"error\":\"option \\\"temperature\\\" must be of type float32\"}", 502, APIERR_API,
         "upstream_error", "", true, "temperature"},
        {500, "{\"error\":\"model requires more system memory (9.1 GiB) than is available\"}", 502,
         APIERR_API, "upstream_error", "", true, NULL},
        {500, "{\"error\":\"llama runner process has terminated\"}", 502, APIERR_API,
         "upstream_error", "", false, "terminated"},
        {503, "{\"error\":\"server busy, please try again.  maximum pending requests exceeded\"}",
         503, APIERR_API, "backend_unavailable", "", false, "server busy"},
        {429, NULL, 503, APIERR_API, "backend_unavailable", "", false, NULL},
        {403, NULL, 502, APIERR_API, "upstream_error", "", true, "403"},
        {401, "{\"error\":\"unauthorized\"}", 502, APIERR_API, "upstream_error", "", true, NULL},
        {502, "<html><body>Bad Gateway</body></html>", 502, APIERR_API, "upstream_error", "", false,
         "not Ollama's JSON error"},
        {504, "", 502, APIERR_API, "upstream_error", "", false, "504"},
        {200, "{}", 502, APIERR_API, "upstream_error", "", false, NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        check_mapping(&cases[k]);
}

/* Wrap text as Ollama's {"error":"..."} body, JSON-escaped. */
static void ollama_error_body(struct buf *b, const char *text, size_t n)
{
    buf_reset(b);
    assert_int_equal(buf_puts(b, "{\"error\":"), 0);
    assert_int_equal(buf_json_str(b, text, n), 0);
    assert_int_equal(buf_puts(b, "}"), 0);
}

static void upstream_error_excerpt_is_bounded(void **state)
{
    (void)state;
    char text[4096];
    struct apierr err;
    struct buf body;
    buf_init(&body, 1 << 16);
    memset(text, 'x', sizeof text);
    text[10] = '\n';
    text[11] = '\x01';
    ollama_error_body(&body, text, sizeof text);
    upstream_error_map(500, body.p, body.len, NULL, &err);
    assert_int_equal(err.status, 502);
    assert_non_null(strstr(err.message, "The backend"));
    assert_non_null(strstr(err.message, "..."));
    assert_null(strchr(err.message, '\n'));
    assert_null(strchr(err.message, '\x01'));

    /* words and spaces: two bytes per step right up to the cut (found by fuzz_chat_stream) */
    for (size_t k = 0; k < sizeof text; k++)
        text[k] = k % 2 ? ' ' : 'w';
    for (size_t n = 150; n < 260; n++) {
        ollama_error_body(&body, text, n);
        upstream_error_map(502, body.p, body.len, "gpu1", &err);
        assert_non_null(strstr(err.message, "w w w"));
        assert_true(strlen(err.message) < sizeof err.message - 1);
    }
    /* a cut that only drops trailing blanks is not marked */
    ollama_error_body(&body, "short reason   \n", 16);
    upstream_error_map(502, body.p, body.len, "gpu1", &err);
    assert_non_null(strstr(err.message, "short reason"));
    assert_null(strstr(err.message, "..."));
    buf_free(&body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(upstream_error_mapping),
        cmocka_unit_test(upstream_error_excerpt_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
