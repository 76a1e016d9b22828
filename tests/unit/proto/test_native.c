/* Unit tests for gateway/proto/native.c: Ollama's own API as dialects of the
 * relay engine. The body renamed on the way in (and nothing else touched),
 * answer lines renamed on the way out, errors as Ollama's text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "native.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the engine's resolve saw, and what it answers. */
struct fake_engine {
    const char *want_name; /* the name to answer with */
    const cJSON *options;
    int refuse; /* answer -1 with a 403 */
    int calls;
    char model[64];
    bool stream;
};

static int resolve(void *ctx, const char *client_model, bool stream, struct dialect_model *m,
                   struct apierr *e)
{
    struct fake_engine *f = ctx;
    f->calls++;
    snprintf(f->model, sizeof f->model, "%s", client_model);
    f->stream = stream;
    if (f->refuse)
        return apierr_set(e, 403, APIERR_PERMISSION, "model_not_allowed", "model", "no");
    /* The engine's names live as long as the request: a copy, not the
     * client's string, which dies with the parsed body. */
    m->name = f->want_name ? f->want_name : f->model;
    m->options = f->options;
    return 0;
}

struct run {
    void *st;
    struct buf native, out;
    struct apierr e;
    struct fake_engine f;
};

static void run_init(struct run *r, const struct dialect *d)
{
    memset(r, 0, sizeof *r);
    r->st = calloc(1, d->state_size);
    assert_non_null(r->st);
    buf_init(&r->native, 1 << 20);
    buf_init(&r->out, 1 << 20);
}

static void run_free(struct run *r, const struct dialect *d)
{
    d->release(r->st);
    free(r->st);
    buf_free(&r->native);
    buf_free(&r->out);
}

static int translate(struct run *r, const struct dialect *d, const char *body)
{
    return d->translate(r->st, body, strlen(body), resolve, &r->f, &r->native, &r->e);
}

static void begin(struct run *r, const struct dialect *d, const char *client_model)
{
    struct dialect_answer a = {
        .client_model = client_model, .id = "", .created = 1, .stream = true};
    assert_int_equal(d->begin(r->st, &a), 0);
    ((struct dialect_common *)r->st)->backend = "gpu1";
}

static int line(struct run *r, const struct dialect *d, const char *l)
{
    return d->line(r->st, l, strlen(l), &r->out, &r->e);
}

/* The alias's name replaces the client's; every other byte of meaning stays. */
static void body_renamed(void **state)
{
    (void)state;
    const struct dialect *d = &dialect_native_stream;
    struct run r;
    run_init(&r, d);
    r.f.want_name = "llama3.2";
    assert_int_equal(
        translate(
            &r, d,
            "{\"model\":\"gpt-3.5-turbo\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
            "\"keep_alive\":\"5m\",\"think\":false,\"unknown\":[1,2]}"),
        0);
    assert_string_equal(r.f.model, "gpt-3.5-turbo");
    assert_true(r.f.stream); /* Ollama's default */
    assert_string_equal(r.native.p, "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
                                    "\"content\":\"hi\"}],\"keep_alive\":\"5m\",\"think\":false,"
                                    "\"unknown\":[1,2]}");
    run_free(&r, d);
}

static void stream_flag(void **state)
{
    (void)state;
    const struct dialect *d = &dialect_native_stream;
    struct run r;
    run_init(&r, d);
    assert_int_equal(translate(&r, d, "{\"model\":\"m\",\"stream\":false}"), 0);
    assert_false(r.f.stream);
    buf_reset(&r.native);
    assert_int_equal(translate(&r, d, "{\"model\":\"m\",\"stream\":null}"), 0);
    assert_true(r.f.stream);
    buf_reset(&r.native);
    assert_int_equal(translate(&r, d, "{\"model\":\"m\",\"stream\":\"yes\"}"), -1);
    assert_int_equal(r.e.status, 400);
    assert_non_null(strstr(r.e.message, "stream"));
    run_free(&r, d);
    /* /api/embed, /api/show: never a stream, whatever the body says */
    d = &dialect_native_whole;
    run_init(&r, d);
    assert_int_equal(translate(&r, d, "{\"model\":\"m\",\"stream\":true}"), 0);
    assert_false(r.f.stream);
    run_free(&r, d);
}

/* The alias's options under the client's: the client's keys win. */
static void options_merged(void **state)
{
    (void)state;
    const struct dialect *d = &dialect_native_stream;
    cJSON *opts = cJSON_Parse("{\"num_ctx\":8192,\"temperature\":0.5}");
    struct run r;
    run_init(&r, d);
    r.f.options = opts;
    assert_int_equal(translate(&r, d, "{\"model\":\"m\",\"options\":{\"temperature\":0.1}}"), 0);
    assert_string_equal(r.native.p,
                        "{\"model\":\"m\",\"options\":{\"temperature\":0.1,\"num_ctx\":8192}}");
    buf_reset(&r.native);
    assert_int_equal(translate(&r, d, "{\"model\":\"m\"}"), 0);
    assert_string_equal(r.native.p,
                        "{\"model\":\"m\",\"options\":{\"num_ctx\":8192,\"temperature\":0.5}}");
    buf_reset(&r.native);
    assert_int_equal(translate(&r, d, "{\"model\":\"m\",\"options\":7}"), -1);
    assert_int_equal(r.e.status, 400);
    run_free(&r, d);
    cJSON_Delete(opts);
}

static void bad_bodies(void **state)
{
    (void)state;
    const struct dialect *d = &dialect_native_whole;
    static const char *const bad[] = {
        "", "[1]", "{\"model\":", "{}", "{\"model\":\"\"}", "{\"model\":7}", "{\"name\":null}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct run r;
        run_init(&r, d);
        assert_int_equal(translate(&r, d, bad[i]), -1);
        assert_int_equal(r.e.status, 400);
        assert_int_equal(r.f.calls, 0);
        assert_int_equal(r.native.len, 0);
        run_free(&r, d);
    }
    /* Older clients name the model "name" (show, pull, delete). */
    struct run r;
    run_init(&r, d);
    r.f.want_name = "x:latest";
    assert_int_equal(translate(&r, d, "{\"name\":\"x\"}"), 0);
    assert_string_equal(r.native.p, "{\"name\":\"x:latest\"}");
    run_free(&r, d);
    /* A refusal from the engine (scope) is passed on with nothing written. */
    run_init(&r, d);
    r.f.refuse = 1;
    assert_int_equal(translate(&r, d, "{\"model\":\"x\"}"), -1);
    assert_int_equal(r.e.status, 403);
    assert_int_equal(r.native.len, 0);
    run_free(&r, d);
}

/* Admin routes pass the body byte for byte, model or not. */
static void admin_passthrough(void **state)
{
    (void)state;
    const struct dialect *d = &dialect_native_admin;
    struct run r;
    run_init(&r, d);
    const char *body = "{ \"source\": \"a\",  \"destination\": \"b\" }";
    assert_int_equal(translate(&r, d, body), 0);
    assert_string_equal(r.native.p, body);
    assert_string_equal(r.f.model, "");
    run_free(&r, d);
    run_init(&r, d);
    assert_int_equal(translate(&r, d, "{\"model\":\"tinyllama\",\"insecure\":true}"), 0);
    assert_string_equal(r.f.model, "tinyllama");
    assert_true(r.f.stream);
    assert_string_equal(r.native.p, "{\"model\":\"tinyllama\",\"insecure\":true}");
    run_free(&r, d);
}

/* Answer lines: the model renamed at the head, the rest as Ollama wrote it;
 * the done line's counts are kept. */
static void lines_renamed(void **state)
{
    (void)state;
    const struct dialect *d = &dialect_native_stream;
    struct run r;
    run_init(&r, d);
    r.f.want_name = "llama3.2";
    assert_int_equal(translate(&r, d, "{\"model\":\"gpt-3.5-turbo\"}"), 0);
    begin(&r, d, "gpt-3.5-turbo");
    assert_int_equal(line(&r, d,
                          "{\"model\":\"llama3.2\",\"created_at\":\"t\",\"message\":{\"role\":"
                          "\"assistant\",\"content\":\"Hi\"},\"done\":false}"),
                     DIALECT_MORE);
    assert_int_equal(line(&r, d,
                          "{\"model\":\"llama3.2\",\"created_at\":\"t\",\"message\":{\"role\":"
                          "\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\","
                          "\"prompt_eval_count\":26,\"eval_count\":3}"),
                     DIALECT_DONE);
    assert_string_equal(r.out.p,
                        "{\"model\":\"gpt-3.5-turbo\",\"created_at\":\"t\",\"message\":{\"role\":"
                        "\"assistant\",\"content\":\"Hi\"},\"done\":false}\n"
                        "{\"model\":\"gpt-3.5-turbo\",\"created_at\":\"t\",\"message\":{\"role\":"
                        "\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\","
                        "\"prompt_eval_count\":26,\"eval_count\":3}\n");
    const struct dialect_common *c = r.st;
    assert_int_equal(c->prompt_tokens, 26);
    assert_int_equal(c->completion_tokens, 3);
    assert_int_equal(d->eof(r.st, &r.out, &r.e), DIALECT_DONE);
    run_free(&r, d);
}

/* A client name that needs escaping is written as a JSON string; a line
 * naming another model, or none, is relayed as it is. */
static void lines_other(void **state)
{
    (void)state;
    const struct dialect *d = &dialect_native_stream;
    struct run r;
    run_init(&r, d);
    r.f.want_name = "m";
    assert_int_equal(translate(&r, d, "{\"model\":\"a\\\"b\"}"), 0);
    begin(&r, d, "a\"b");
    assert_int_equal(line(&r, d, "{\"model\":\"m\",\"response\":\"x\",\"done\":false}"),
                     DIALECT_MORE);
    assert_int_equal(line(&r, d, "{\"model\":\"mm\",\"response\":\"y\",\"done\":false}"),
                     DIALECT_MORE);
    assert_int_equal(line(&r, d, "{\"response\":\"z\",\"done\":false}"), DIALECT_MORE);
    assert_string_equal(r.out.p, "{\"model\":\"a\\\"b\",\"response\":\"x\",\"done\":false}\n"
                                 "{\"model\":\"mm\",\"response\":\"y\",\"done\":false}\n"
                                 "{\"response\":\"z\",\"done\":false}\n");
    /* EOF without the done line: the answer was cut short */
    assert_int_equal(d->eof(r.st, &r.out, &r.e), DIALECT_FAIL);
    assert_int_equal(r.e.status, 502);
    assert_non_null(strstr(r.e.message, "gpu1"));
    run_free(&r, d);
}

/* {"error":…} mid-stream: a failure with Ollama's own text, nothing written;
 * a line that is not JSON is one too. */
static void lines_error(void **state)
{
    (void)state;
    const struct dialect *d = &dialect_native_stream;
    struct run r;
    run_init(&r, d);
    assert_int_equal(translate(&r, d, "{\"model\":\"m\"}"), 0);
    begin(&r, d, "m");
    assert_int_equal(
        line(&r, d, "{\"error\":\"an error was encountered while running the model\"}"),
        DIALECT_FAIL);
    assert_string_equal(r.e.message, "an error was encountered while running the model");
    assert_int_equal(r.out.len, 0);
    assert_int_equal(line(&r, d, "{\"model\":\"m\",\"done\":false}"), DIALECT_FAIL);
    run_free(&r, d);
    run_init(&r, d);
    assert_int_equal(translate(&r, d, "{\"model\":\"m\"}"), 0);
    begin(&r, d, "m");
    assert_int_equal(line(&r, d, "<html>"), DIALECT_FAIL);
    assert_int_equal(r.e.status, 502);
    assert_int_equal(r.out.len, 0);
    run_free(&r, d);
}

/* Progress streams end at EOF, with no done line. */
static void admin_progress(void **state)
{
    (void)state;
    const struct dialect *d = &dialect_native_admin;
    struct run r;
    run_init(&r, d);
    assert_int_equal(translate(&r, d, "{\"model\":\"x\"}"), 0);
    begin(&r, d, "x");
    assert_int_equal(line(&r, d, "{\"status\":\"pulling manifest\"}"), DIALECT_MORE);
    assert_int_equal(line(&r, d, "{\"status\":\"success\"}"), DIALECT_MORE);
    assert_int_equal(d->eof(r.st, &r.out, &r.e), DIALECT_DONE);
    assert_string_equal(r.out.p, "{\"status\":\"pulling manifest\"}\n{\"status\":\"success\"}\n");
    run_free(&r, d);
}

/* A whole answer: renamed, counts read from its end; an empty one stays empty. */
static void whole_answer(void **state)
{
    (void)state;
    const struct dialect *d = &dialect_native_whole;
    struct run r;
    run_init(&r, d);
    r.f.want_name = "nomic-embed-text";
    assert_int_equal(translate(&r, d, "{\"model\":\"text-embedding-3-small\",\"input\":\"a\"}"), 0);
    begin(&r, d, "text-embedding-3-small");
    const char *ans = "{\"model\":\"nomic-embed-text\",\"embeddings\":[[0.1,0.2]],"
                      "\"total_duration\":5,\"prompt_eval_count\":12}";
    assert_int_equal(d->complete(r.st, ans, strlen(ans), &r.out, &r.e), 0);
    assert_string_equal(r.out.p, "{\"model\":\"text-embedding-3-small\",\"embeddings\":[[0.1,0.2]],"
                                 "\"total_duration\":5,\"prompt_eval_count\":12}");
    const struct dialect_common *c = r.st;
    assert_int_equal(c->prompt_tokens, 12);
    assert_int_equal(c->completion_tokens, 0);
    buf_reset(&r.out);
    assert_int_equal(d->complete(r.st, "", 0, &r.out, &r.e), 0);
    assert_int_equal(r.out.len, 0);
    run_free(&r, d);
}

/* Ollama's error text and status pass through; anything else names the backend. */
static void upstream_errors(void **state)
{
    (void)state;
    const struct dialect *d = &dialect_native_stream;
    struct apierr e = {0};
    const char *b = "{\"error\":\"model 'x' not found\"}";
    d->upstream_error(404, b, strlen(b), "gpu1", &e);
    assert_int_equal(e.status, 404);
    assert_string_equal(e.message, "model 'x' not found");
    d->upstream_error(404, "404 page not found", 18, "gpu1", &e);
    assert_int_equal(e.status, 404);
    assert_string_equal(e.message, "backend gpu1 answered HTTP 404: 404 page not found");
    d->upstream_error(500, "<html>\nboom", 11, "gpu1", &e);
    assert_int_equal(e.status, 502);
    assert_string_equal(e.message, "backend gpu1 answered HTTP 500: <html>");
    d->upstream_error(503, "", 0, "gpu1", &e);
    assert_int_equal(e.status, 502);
    assert_false(e.no_retry);
    /* The shape Ollama's clients read, whole and as a last line. */
    struct buf out;
    buf_init(&out, 1024);
    apierr_set(&e, 403, APIERR_PERMISSION, NULL, NULL, "no \"way\"");
    assert_int_equal(d->errors->body(&out, &e), 0);
    assert_string_equal(out.p, "{\"error\":\"no \\\"way\\\"\"}");
    buf_reset(&out);
    assert_int_equal(d->errors->frame(&out, &e), 0);
    assert_string_equal(out.p, "{\"error\":\"no \\\"way\\\"\"}\n");
    buf_free(&out);
}

/* On a full buffer nothing is half-written. */
static void out_of_room(void **state)
{
    (void)state;
    const struct dialect *d = &dialect_native_stream;
    struct run r;
    run_init(&r, d);
    assert_int_equal(translate(&r, d, "{\"model\":\"m\"}"), 0);
    begin(&r, d, "m");
    r.out.max = 20;
    assert_int_equal(line(&r, d, "{\"model\":\"m\",\"response\":\"long enough\",\"done\":false}"),
                     DIALECT_FAIL);
    assert_int_equal(r.out.len, 0);
    assert_int_equal(r.e.status, 500);
    run_free(&r, d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(body_renamed),      cmocka_unit_test(stream_flag),
        cmocka_unit_test(options_merged),    cmocka_unit_test(bad_bodies),
        cmocka_unit_test(admin_passthrough), cmocka_unit_test(lines_renamed),
        cmocka_unit_test(lines_other),       cmocka_unit_test(lines_error),
        cmocka_unit_test(admin_progress),    cmocka_unit_test(whole_answer),
        cmocka_unit_test(upstream_errors),   cmocka_unit_test(out_of_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
