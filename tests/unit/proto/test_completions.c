/*
 * Unit tests for the legacy completions dialect's pure translation:
 * proto/completions_request.c (a /v1/completions body -> the native
 * /api/generate body, and every 400) and proto/completions_answer.c (native
 * lines -> text_completion SSE chunks, a whole answer -> a text_completion
 * object). Each test pins exact output.
 *
 * JSON in this file is written with single quotes for readability; q()
 * turns them into double quotes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "completions_answer.h"
#include "completions_request.h"
#include "dialect.h"
#include "helpers.h"
#include "jarena.h"
#include "sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

DEFINE_NATIVE_WITH(completions)

static void expect_native(const char *body, const char *expected)
{
    assert_string_equal(native_with(body, NULL), q(expected));
}

/* A rejected request: status 400, param and a piece of the message. */
static void expect_reject(const char *body, const char *param, const char *msg_part)
{
    struct completions_req r;
    struct apierr err = {0};
    const char *b = q(body);
    assert_int_equal(completions_req_parse(&r, b, strlen(b), &err), -1);
    assert_null(r.root);
    assert_null(r.native);
    assert_null(r.options);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, APIERR_INVALID);
    assert_string_equal(err.param, param);
    if (msg_part && !strstr(err.message, msg_part))
        fail_msg("message '%s' lacks '%s'", err.message, msg_part);
}

/* PROTOCOL §5.6, §5.8: nothing injected, "stream" always explicit */
static void req_minimal(void **state)
{
    (void)state;
    expect_native("{'model':'gpt-3.5-turbo-instruct','prompt':'Say'}",
                  "{'model':'llama3.2','stream':false,'prompt':'Say'}");
    expect_native("{'model':'m','prompt':'Say','stream':true}",
                  "{'model':'llama3.2','stream':true,'prompt':'Say'}");
}

static void req_every_field(void **state)
{
    (void)state;
    expect_native("{'model':'m','prompt':'def f(','suffix':'\\n  return x','max_tokens':16,"
                  "'stop':'\\n\\n','seed':7,'temperature':0.2,'top_p':0.9,'presence_penalty':0.5,"
                  "'frequency_penalty':-0.5,'logprobs':3,'n':1,'best_of':1,'echo':false,"
                  "'user':'u1','logit_bias':{'50256':-100},'stream':true,"
                  "'stream_options':{'include_usage':true}}",
                  "{'model':'llama3.2','stream':true,'prompt':'def f(','suffix':'\\n  return x',"
                  "'logprobs':true,'top_logprobs':3,'options':{'temperature':0.2,'top_p':0.9,"
                  "'presence_penalty':0.5,'frequency_penalty':-0.5,'seed':7,'num_predict':16,"
                  "'stop':['\\n\\n']}}");
    /* the extensions chat takes come through the same shared function */
    expect_native("{'model':'m','prompt':'a','top_k':40,'min_p':0.05,'repeat_penalty':1.1,"
                  "'stop':['x','y'],'max_completion_tokens':9}",
                  "{'model':'llama3.2','stream':false,'prompt':'a','options':{'min_p':0.05,"
                  "'repeat_penalty':1.1,'top_k':40,'num_predict':9,'stop':['x','y']}}");
}

/* The thinking switch, mapped as chat completions map it (effort.h). */
static void req_think(void **state)
{
    (void)state;
    expect_native("{'model':'m','prompt':'a','reasoning_effort':'minimal'}",
                  "{'model':'llama3.2','stream':false,'prompt':'a','think':'low'}");
    expect_native("{'model':'m','prompt':'a','reasoning':{'effort':'none'}}",
                  "{'model':'llama3.2','stream':false,'prompt':'a','think':false}");
    expect_native("{'model':'m','prompt':'a','think':true,'reasoning_effort':'low'}",
                  "{'model':'llama3.2','stream':false,'prompt':'a','think':true}");
    expect_native("{'model':'m','prompt':'a','reasoning_effort':null,'temperature':1}",
                  "{'model':'llama3.2','stream':false,'prompt':'a','options':{'temperature':1}}");
    expect_reject("{'model':'m','prompt':'a','reasoning_effort':'huge'}", "reasoning_effort",
                  "Supported values are");
    expect_reject("{'model':'m','prompt':'a','reasoning_effort':3}", "reasoning_effort",
                  "expected a string");
    expect_reject("{'model':'m','prompt':'a','think':[]}", "think", "a boolean or a string");
}

static void req_fields_of_struct(void **state)
{
    (void)state;
    struct completions_req r;
    struct apierr err;
    const char *b = q("{'model':'gpt-x','prompt':['Once'],'stream':true,'stream_options':{"
                      "'include_usage':true},'max_tokens':5,'echo':true}");
    assert_int_equal(completions_req_parse(&r, b, strlen(b), &err), 0);
    assert_string_equal(r.model, "gpt-x");
    assert_string_equal(r.prompt, "Once");
    assert_true(r.stream);
    assert_true(r.want.include_usage);
    assert_false(r.want.logprobs);
    assert_string_equal(r.want.echo, "Once");
    assert_int_equal(r.max_tokens, 5);
    completions_req_free(&r);
    completions_req_free(&r); /* twice is fine */

    b = q("{'model':'x','prompt':'p','stream_options':{'include_usage':true},'logprobs':0}");
    assert_int_equal(completions_req_parse(&r, b, strlen(b), &err), 0);
    assert_false(r.stream);
    assert_false(r.want.include_usage); /* only on a stream */
    assert_true(r.want.logprobs);
    assert_null(r.want.echo);
    assert_int_equal(r.max_tokens, -1);
    completions_req_free(&r);
}

/* An array of one string is that string; null is absent; "" suffix is none. */
static void req_prompt_forms(void **state)
{
    (void)state;
    expect_native("{'model':'m','prompt':['Say \\'hi\\'']}",
                  "{'model':'llama3.2','stream':false,'prompt':'Say \\'hi\\''}");
    expect_native("{'model':'m','prompt':'p','suffix':'','temperature':null,'stop':null,"
                  "'logprobs':null,'echo':null,'n':null,'best_of':null,'stream':null,"
                  "'stream_options':null}",
                  "{'model':'llama3.2','stream':false,'prompt':'p'}");
    expect_native("{'model':'m','prompt':'p','stop':[]}",
                  "{'model':'llama3.2','stream':false,'prompt':'p'}");
}

static void req_alias_options(void **state)
{
    (void)state;
    assert_string_equal(native_with("{'model':'m','prompt':'p','temperature':0.7}",
                                    "{'num_ctx':8192,'temperature':0.1}"),
                        q("{'model':'llama3.2','stream':false,'prompt':'p','options':{"
                          "'num_ctx':8192,'temperature':0.7}}"));
}

static void req_rejects_body_and_model(void **state)
{
    (void)state;
    expect_reject("", "", "empty");
    expect_reject("{'model':", "", "parse");
    expect_reject("['m']", "", "JSON object");
    expect_reject("{'prompt':'p'}", "model", "Missing required parameter");
    expect_reject("{'model':'','prompt':'p'}", "model", "empty");
    expect_reject("{'model':3,'prompt':'p'}", "model", "expected a string");
}

/* One prompt per request, as text: every other shape is a 400 naming prompt. */
static void req_rejects_prompts(void **state)
{
    (void)state;
    expect_reject("{'model':'m'}", "prompt", "Missing required parameter");
    expect_reject("{'model':'m','prompt':null}", "prompt", "Missing required parameter");
    expect_reject("{'model':'m','prompt':''}", "prompt", "must not be empty");
    expect_reject("{'model':'m','prompt':['']}", "prompt", "must not be empty");
    expect_reject("{'model':'m','prompt':[]}", "prompt", "empty array");
    expect_reject("{'model':'m','prompt':['a','b']}", "prompt", "holds 2 prompts");
    expect_reject("{'model':'m','prompt':['a',1]}", "prompt", "holds 2 prompts");
    expect_reject("{'model':'m','prompt':[1,2,3]}", "prompt", "Token arrays");
    expect_reject("{'model':'m','prompt':[[1,2]]}", "prompt", "Token arrays");
    expect_reject("{'model':'m','prompt':[null]}", "prompt", "must be strings, not null");
    expect_reject("{'model':'m','prompt':5}", "prompt",
                  "expected a string or an array of one string, but got a number");
    expect_reject("{'model':'m','prompt':{'text':'a'}}", "prompt", "an object");
}

static void req_rejects_other_fields(void **state)
{
    (void)state;
    expect_reject("{'model':'m','prompt':'p','suffix':5}", "suffix", "expected a string");
    expect_reject("{'model':'m','prompt':'p','n':2}", "n", "exactly one choice");
    expect_reject("{'model':'m','prompt':'p','n':0}", "n", "at least 1");
    expect_reject("{'model':'m','prompt':'p','best_of':3}", "best_of", "exactly one completion");
    expect_reject("{'model':'m','prompt':'p','best_of':0}", "best_of", "exactly one completion");
    expect_reject("{'model':'m','prompt':'p','best_of':'1'}", "best_of", "integer");
    expect_reject("{'model':'m','prompt':'p','logprobs':true}", "logprobs", "integer");
    expect_reject("{'model':'m','prompt':'p','logprobs':21}", "logprobs", "range");
    expect_reject("{'model':'m','prompt':'p','logprobs':-1}", "logprobs", "range");
    expect_reject("{'model':'m','prompt':'p','logprobs':1.5}", "logprobs", "integer");
    expect_reject("{'model':'m','prompt':'p','echo':'yes'}", "echo", "boolean");
    expect_reject("{'model':'m','prompt':'p','echo':true,'logprobs':1}", "echo",
                  "'echo' with 'logprobs'");
    expect_reject("{'model':'m','prompt':'p','stream':1}", "stream", "boolean");
    expect_reject("{'model':'m','prompt':'p','stream':true,'stream_options':{'include_usage':"
                  "'y'}}",
                  "stream_options.include_usage", "boolean");
    expect_reject("{'model':'m','prompt':'p','temperature':'hot'}", "temperature",
                  "expected a number, but got a string");
    expect_reject("{'model':'m','prompt':'p','max_tokens':0}", "max_tokens", "range");
    expect_reject("{'model':'m','prompt':'p','stop':['a',2]}", "stop[1]", "string");
    expect_reject("{'model':'m','prompt':'p','seed':0.5}", "seed", "integer");
}

/* Out of memory anywhere in cJSON: a clean 500 or success, never a leak or crash. */
static void req_out_of_memory(void **state)
{
    (void)state;
    const char *b = q("{'model':'m','prompt':['p'],'suffix':'s','temperature':0.3,'stop':['a'],"
                      "'logprobs':2,'stream':true}");
    cJSON *alias = cJSON_Parse(q("{'num_ctx':4096}"));
    cJSON_Hooks hooks = {failing_malloc, free};
    bool succeeded = false;
    for (fail_at = 1; !succeeded && fail_at < 5000; fail_at++) {
        struct completions_req r;
        struct apierr err;
        struct buf out;
        buf_init(&out, 1 << 20);
        allocs = 0;
        cJSON_InitHooks(&hooks);
        if (completions_req_parse(&r, b, strlen(b), &err) == 0) {
            if (completions_req_to_ollama(&r, "x", alias, &out, &err) == 0)
                succeeded = true;
            else
                assert_int_equal(err.status, 500);
            completions_req_free(&r);
        } else {
            assert_true(err.status == 500 || err.status == 400);
        }
        cJSON_InitHooks(NULL);
        buf_free(&out);
    }
    assert_true(succeeded);
    cJSON_Delete(alias);
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */

struct run {
    struct completions_stream s;
    struct buf out;
    struct apierr err;
    int rc;       /* last completions_stream_line result */
    int consumed; /* lines fed */
};

/* Feed NULL-terminated lines until one does not return DIALECT_MORE. */
static void run_lines(struct run *r, const struct completions_want *want, const char *const *lines)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->out, 1 << 20);
    assert_int_equal(completions_stream_init(&r->s, "gpt-x", want, "cmpl-t", 1700000000), 0);
    r->s.backend = "gpu1";
    r->rc = DIALECT_MORE;
    for (; lines[r->consumed] && r->rc == DIALECT_MORE; r->consumed++) {
        const char *l = q(lines[r->consumed]);
        r->rc = completions_stream_line(&r->s, l, strlen(l), &r->out, &r->err);
    }
    check_frames(r->out.p ? r->out.p : "", r->out.len);
}

static void run_free(struct run *r)
{
    completions_stream_free(&r->s);
    buf_free(&r->out);
}

static const struct completions_want PLAIN = {0}, USAGE_ON = {.include_usage = true},
                                     LOGPROBS_ON = {.logprobs = true};

#define HEAD                                                                                       \
    "data: {\"id\":\"cmpl-t\",\"object\":\"text_completion\",\"created\":1700000000,\"model\":"    \
    "\"gpt-x\",\"choices\":["
#define CHUNK(text)                                                                                \
    HEAD "{\"text\":" text ",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n"
#define FINAL(reason)                                                                              \
    HEAD "{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"" reason "\"}]}\n\n"
#define USAGE(p, c, t)                                                                             \
    HEAD "],\"usage\":{\"prompt_tokens\":" #p ",\"completion_tokens\":" #c ",\"total_tokens\":" #t \
         "}}\n\n"
#define DONE "data: [DONE]\n\n"

#define G_TEXT(t)                                                                                  \
    "{'model':'llama3.2','created_at':'2026-08-21T10:00:00.1Z','response':'" t "','done':false}"
#define G_DONE(extra)                                                                              \
    "{'model':'llama3.2','created_at':'2026-08-21T10:00:00.9Z','response':'','done':true" extra    \
    ",'context':[1,2,3]}"

static void expect_stream(const struct completions_want *want, const char *const *lines,
                          const char *expected)
{
    struct run r;
    run_lines(&r, want, lines);
    assert_int_equal(r.rc, DIALECT_DONE);
    assert_true(r.s.done);
    assert_string_equal(r.out.p, expected);
    run_free(&r);
}

/* Text deltas, the final chunk with an empty text, [DONE]. */
static void stream_text(void **state)
{
    (void)state;
    const char *lines[] = {G_TEXT("Hel"), G_TEXT("lo"),
                           G_DONE(",'done_reason':'stop','prompt_eval_count':26,'eval_count':2"),
                           NULL};
    expect_stream(&PLAIN, lines, CHUNK("\"Hel\"") CHUNK("\"lo\"") FINAL("stop") DONE);
}

/* The usage chunk (choices []) after the final chunk, before [DONE]. */
static void stream_include_usage(void **state)
{
    (void)state;
    const char *lines[] = {
        G_TEXT("Hi"), G_DONE(",'done_reason':'stop','prompt_eval_count':26,'eval_count':2"), NULL};
    struct run r;
    run_lines(&r, &USAGE_ON, lines);
    assert_int_equal(r.rc, DIALECT_DONE);
    assert_string_equal(r.out.p, CHUNK("\"Hi\"") FINAL("stop") USAGE(26, 2, 28) DONE);
    assert_int_equal(r.s.prompt_tokens, 26);
    assert_int_equal(r.s.completion_tokens, 2);
    run_free(&r);
    /* missing or absurd counts are 0 */
    const char *lines2[] = {G_DONE(",'prompt_eval_count':-3,'eval_count':'x'"), NULL};
    expect_stream(&USAGE_ON, lines2, FINAL("stop") USAGE(0, 0, 0) DONE);
}

/* done_reason length -> length; anything else (stop, load, absent) -> stop */
static void stream_length_and_stop(void **state)
{
    (void)state;
    const char *length[] = {G_TEXT("a"), G_DONE(",'done_reason':'length'"), NULL};
    expect_stream(&PLAIN, length, CHUNK("\"a\"") FINAL("length") DONE);
    const char *stop[] = {G_TEXT("a"), G_DONE(",'done_reason':'stop'"), NULL};
    expect_stream(&PLAIN, stop, CHUNK("\"a\"") FINAL("stop") DONE);
    const char *load[] = {G_DONE(",'done_reason':'load'"), NULL};
    expect_stream(&PLAIN, load, FINAL("stop") DONE);
    const char *none[] = {G_TEXT("a"), G_DONE(""), NULL};
    expect_stream(&PLAIN, none, CHUNK("\"a\"") FINAL("stop") DONE);
}

/* Thinking is no part of a legacy completion: dropped; empty lines write nothing. */
static void stream_drops_thinking(void **state)
{
    (void)state;
    const char *lines[] = {"{'model':'qwen3','response':'','thinking':'Let me','done':false}",
                           "{'model':'qwen3','response':'','thinking':' think','done':false}",
                           "{'model':'qwen3','response':'4','thinking':'.','done':false}",
                           "{'done':false}",
                           G_TEXT(""),
                           "{'model':'qwen3','response':'!','done':true,'done_reason':'stop'}",
                           NULL};
    expect_stream(&PLAIN, lines, CHUNK("\"4\"") CHUNK("\"!\"") FINAL("stop") DONE);
}

/* echo: the prompt is the first chunk, written when the first line arrives. */
static void stream_echo(void **state)
{
    (void)state;
    struct completions_want want = {.echo = "Say \"hi\"\n"};
    const char *lines[] = {G_TEXT(" Hi"), G_DONE(",'done_reason':'stop'"), NULL};
    expect_stream(&want, lines, CHUNK("\"Say \\\"hi\\\"\\n\"") CHUNK("\" Hi\"") FINAL("stop") DONE);
    /* even when nothing is generated */
    const char *empty[] = {G_DONE(""), NULL};
    expect_stream(&want, empty, CHUNK("\"Say \\\"hi\\\"\\n\"") FINAL("stop") DONE);
}

/* {"error":...} mid-stream: fail, nothing written for it, no [DONE]. */
static void stream_error_line(void **state)
{
    (void)state;
    const char *lines[] = {G_TEXT("a"), "{'error':'an error was encountered while running: boom'}",
                           G_DONE(""), NULL};
    struct run r;
    run_lines(&r, &PLAIN, lines);
    assert_int_equal(r.rc, DIALECT_FAIL);
    assert_int_equal(r.consumed, 2);
    assert_string_equal(r.out.p, CHUNK("\"a\""));
    assert_int_equal(r.err.status, 502);
    assert_string_equal(r.err.type, APIERR_API);
    assert_string_equal(r.err.code, "upstream_error");
    assert_non_null(strstr(r.err.message, "Backend \"gpu1\" failed while generating"));
    assert_non_null(strstr(r.err.message, "boom"));
    /* the dialect then writes the in-band error frame: no [DONE] */
    assert_int_equal(errshape_openai.frame(&r.out, &r.err), 0);
    assert_string_equal(r.out.p, CHUNK("\"a\"") "data: {\"error\":{\"message\":\"Backend "
                                                "\\\"gpu1\\\" failed while generating: an error "
                                                "was encountered while running: boom\",\"type\":"
                                                "\"api_error\",\"param\":null,\"code\":"
                                                "\"upstream_error\"}}\n\n");
    /* and the stream stays failed */
    const char *l = q(G_DONE(""));
    struct apierr e2;
    assert_int_equal(completions_stream_line(&r.s, l, strlen(l), &r.out, &e2), DIALECT_FAIL);
    assert_int_equal(completions_stream_eof(&r.s, &e2), DIALECT_FAIL);
    run_free(&r);

    /* a first line that fails writes nothing, not even the echo */
    struct completions_want want = {.echo = "p"};
    const char *first[] = {"{'error':'model crashed'}", NULL};
    run_lines(&r, &want, first);
    assert_int_equal(r.rc, DIALECT_FAIL);
    assert_int_equal(r.out.len, 0);
    run_free(&r);
}

/* Lines that are not JSON objects, or with a malformed response: 502. */
static void stream_garbage_lines(void **state)
{
    (void)state;
    const char *bad[] = {
        "garbage",
        "[1,2]",
        "{'done':false} trailing",
        "{'response':5,'done':false}",
        "{'response':['x'],'done':true}",
        "{'error':{'message':'nested'}}",
        "{'response':'x','error':'late'}",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const char *lines[] = {G_TEXT("ok"), bad[k], NULL};
        struct run r;
        run_lines(&r, &PLAIN, lines);
        assert_int_equal(r.rc, DIALECT_FAIL);
        assert_string_equal(r.out.p, CHUNK("\"ok\""));
        assert_int_equal(r.err.status, 502);
        assert_string_equal(r.err.code, "upstream_error");
        assert_non_null(strstr(r.err.message, "Backend \"gpu1\""));
        run_free(&r);
    }
}

/* The stream ends before its done line: 502; after it: clean. */
static void stream_eof(void **state)
{
    (void)state;
    const char *early[] = {G_TEXT("a"), NULL};
    struct run r;
    struct apierr err;
    run_lines(&r, &PLAIN, early);
    assert_int_equal(r.rc, DIALECT_MORE);
    assert_int_equal(completions_stream_eof(&r.s, &err), DIALECT_FAIL);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.code, "upstream_error");
    assert_non_null(strstr(err.message, "Backend \"gpu1\" closed the stream before"));
    run_free(&r);

    const char *none[] = {NULL};
    run_lines(&r, &PLAIN, none);
    assert_int_equal(completions_stream_eof(&r.s, &err), DIALECT_FAIL);
    run_free(&r);

    const char *whole[] = {G_TEXT("a"), G_DONE(""), NULL};
    run_lines(&r, &PLAIN, whole);
    size_t len = r.out.len;
    const char *l = q(G_TEXT("late"));
    assert_int_equal(completions_stream_line(&r.s, l, strlen(l), &r.out, &err), DIALECT_DONE);
    assert_int_equal(r.out.len, len);
    assert_int_equal(completions_stream_eof(&r.s, &err), DIALECT_DONE);
    run_free(&r);
}

/* Text on the done line itself comes before the final chunk. */
static void stream_text_on_done_line(void **state)
{
    (void)state;
    const char *lines[] = {
        G_TEXT("a"), "{'response':'b','done':true,'done_reason':'length','eval_count':2}", NULL};
    expect_stream(&USAGE_ON, lines,
                  CHUNK("\"a\"") CHUNK("\"b\"") FINAL("length") USAGE(0, 2, 2) DONE);
}

#define LP_LINE(tok, lp, top)                                                                      \
    "{'response':'" tok "','done':false,'logprobs':[{'token':'" tok "','logprob':" lp              \
    ",'bytes':[1],'top_logprobs':" top "}]}"

/* logprobs as OpenAI's legacy object: tokens, token_logprobs, top_logprobs
 * (the alternatives, each once, and the chosen token), text_offset in
 * characters from the start of the text. */
static void stream_logprobs(void **state)
{
    (void)state;
    const char *lines[] = {
        LP_LINE("\xc3\xa9t\xc3\xa9", "-0.5",
                "[{'token':'\xc3\xa9t\xc3\xa9','logprob':-0.5},{'token':'ete','logprob':-2},"
                "{'token':'ete','logprob':-3}]"),
        LP_LINE(" x", "-1.25", "[{'token':' y','logprob':-0.75}]"),
        "{'response':'ab','done':false,'logprobs':[{'token':'a','logprob':-0.1},{'token':'b',"
        "'logprob':-0.2},7]}",
        G_DONE(""), NULL};
    expect_stream(
        &LOGPROBS_ON, lines,
        HEAD "{\"text\":\"\xc3\xa9t\xc3\xa9\",\"index\":0,\"logprobs\":{\"tokens\":[\"\xc3\xa9t"
             "\xc3\xa9\"],\"token_logprobs\":[-0.5],\"top_logprobs\":[{\"\xc3\xa9t\xc3\xa9\":-0.5,"
             "\"ete\":-2}],\"text_offset\":[0]},\"finish_reason\":null}]}\n\n" HEAD
             "{\"text\":\" x\",\"index\":0,\"logprobs\":{\"tokens\":[\" x\"],\"token_logprobs\":"
             "[-1.25],\"top_logprobs\":[{\" y\":-0.75,\" x\":-1.25}],\"text_offset\":[3]},"
             "\"finish_reason\":null}]}\n\n" HEAD
             "{\"text\":\"ab\",\"index\":0,\"logprobs\":{\"tokens\":[\"a\",\"b\"],"
             "\"token_logprobs\":[-0.1,-0.2],\"top_logprobs\":[{\"a\":-0.1},{\"b\":-0.2}],"
             "\"text_offset\":[5,6]},\"finish_reason\":null}]}\n\n" FINAL("stop") DONE);
}

/* The output ceiling: a 500, out untouched. */
static void stream_output_ceiling(void **state)
{
    (void)state;
    struct completions_stream s;
    struct buf out;
    struct apierr err;
    buf_init(&out, 100);
    assert_int_equal(completions_stream_init(&s, "gpt-x", &PLAIN, "cmpl-t", 1), 0);
    buf_puts(&out, "keep");
    const char *fast = q(G_TEXT("this will not fit in one hundred bytes of output at all"));
    const char *slow = q("{'response':'this will not fit either, \\u0041 at all','done':true}");
    assert_int_equal(completions_stream_line(&s, fast, strlen(fast), &out, &err), DIALECT_FAIL);
    assert_int_equal(err.status, 500);
    assert_string_equal(out.p, "keep");
    completions_stream_free(&s);
    assert_int_equal(completions_stream_init(&s, "gpt-x", &PLAIN, "cmpl-t", 1), 0);
    assert_int_equal(completions_stream_line(&s, slow, strlen(slow), &out, &err), DIALECT_FAIL);
    assert_int_equal(err.status, 500);
    assert_string_equal(out.p, "keep");
    completions_stream_free(&s);
    buf_free(&out);
}

/* Client-chosen strings are escaped; lines need not be NUL-terminated. */
static void stream_escapes_and_unterminated(void **state)
{
    (void)state;
    struct completions_stream s;
    struct buf out;
    struct apierr err;
    const char *text = "{\"response\":\"tab\\t\\u0000nul\"}";
    size_t n = strlen(text);
    char *exact = malloc(n); /* no room for a '\0': ASan checks nothing reads past it */
    memcpy(exact, text, n);
    buf_init(&out, 1 << 16);
    assert_int_equal(completions_stream_init(&s, "we\"ird\nmodel", &PLAIN, "id\\1", 5), 0);
    assert_int_equal(completions_stream_line(&s, exact, n, &out, &err), DIALECT_MORE);
    assert_string_equal(out.p, "data: {\"id\":\"id\\\\1\",\"object\":\"text_completion\","
                               "\"created\":5,\"model\":\"we\\\"ird\\nmodel\",\"choices\":[{"
                               "\"text\":\"tab\\t\",\"index\":0,\"logprobs\":null,"
                               "\"finish_reason\":null}]}\n\n");
    /* a line cut inside a string */
    assert_int_equal(completions_stream_line(&s, exact, 16, &out, &err), DIALECT_FAIL);
    free(exact);
    completions_stream_free(&s);
    completions_stream_free(&s);
    buf_free(&out);
}

/* The relay runs the translation inside jarena_begin/end: the same output. */
static void stream_under_jarena(void **state)
{
    (void)state;
    const char *lines[] = {"{'response':'','thinking':'hmm','done':false}",
                           LP_LINE("Hi", "-0.5", "[{'token':'Ho','logprob':-1}]"),
                           G_DONE(",'done_reason':'length','eval_count':1"), NULL};
    struct completions_want want = {.include_usage = true, .logprobs = true};
    struct run plain, arena;
    run_lines(&plain, &want, lines);
    jarena_init();
    jarena_begin();
    run_lines(&arena, &want, lines);
    jarena_end();
    cJSON_InitHooks(NULL);
    assert_int_equal(arena.rc, DIALECT_DONE);
    assert_string_equal(arena.out.p, plain.out.p);
    run_free(&plain);
    run_free(&arena);
}

/* The token-line fast path writes exactly what the general path writes,
 * whatever the line holds (it hands over everything it cannot match). */
static void stream_fast_path_matches_general_path(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"model\":\"llama3.2\",\"created_at\":\"2026-08-21T10:00:00.1Z\",\"response\":"
        "\"Hel\\\"lo\\n\\t\\\\ \\u0001\",\"done\":false}",
        "{\"model\":\"q\",\"created_at\":\"x\",\"response\":\"\",\"thinking\":\"hm\\u00e9\","
        "\"done\":false}",
        "{\"response\":\"\\u003cb\\u003e \\u00e9 \\/\",\"done\":false}",
        "{\"response\":\"x\",\"response\":\"y\",\"done\":false}",
        " { \"model\" : \"m\" , \"response\" : \"spaced\" , \"done\" : false } ",
        "{\"model\":\"\\uD800\",\"response\":\"lone surrogate in model\"}",
        "{\"model\":\"m\",\"response\":\"ok\",\"done\":false} trailing",
        "{\"model\":\"m\",\"response\":\"\\u0000nul\",\"done\":false}",
        "{\"model\":\"m\",\"response\":\"ok\",\"done\":false,\"logprobs\":[]}",
        "{\"model\":\"m\",\"response\":\"ok\",\"thinking\":5,\"done\":false}",
        "{\"model\":\"m\",\"response\":null,\"done\":false}",
        "{\"message\":{\"content\":\"chat?\"},\"done\":false}",
        "{}",
        "{\"model\":\"m\",\"response\":\"last\",\"done\":true,\"done_reason\":\"stop\","
        "\"eval_count\":9}",
    };
    struct buf fast, slow;
    struct apierr err;
    buf_init(&fast, 1 << 20);
    buf_init(&slow, 1 << 20);
    for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++) {
        struct completions_stream a, b;
        assert_int_equal(completions_stream_init(&a, "m", &USAGE_ON, "cmpl-x", 1), 0);
        assert_int_equal(completions_stream_init(&b, "m", &USAGE_ON, "cmpl-x", 1), 0);
        buf_reset(&fast);
        buf_reset(&slow);
        completions_set_fast_path(true);
        int ra = completions_stream_line(&a, lines[k], strlen(lines[k]), &fast, &err);
        completions_set_fast_path(false);
        int rb = completions_stream_line(&b, lines[k], strlen(lines[k]), &slow, &err);
        completions_set_fast_path(true);
        assert_int_equal(ra, rb);
        assert_int_equal(fast.len, slow.len);
        if (fast.len)
            assert_memory_equal(fast.p, slow.p, fast.len);
        completions_stream_free(&a);
        completions_stream_free(&b);
    }
    buf_free(&fast);
    buf_free(&slow);
}

/* ------------------------------------------------------------------------ */
/* Whole answers                                                             */

static void expect_complete_with(const struct completions_want *want, const char *body,
                                 const char *expected)
{
    struct buf out;
    struct apierr err;
    long pt = -1, ct = -1;
    const char *b = q(body);
    buf_init(&out, 1 << 16);
    if (completions_complete(b, strlen(b), "gpt-x", "cmpl-t", 1700000000, want, "gpu1", &out, &pt,
                             &ct, &err) != 0)
        fail_msg("completions_complete failed: %s", err.message);
    assert_string_equal(out.p, q(expected));
    assert_true(pt >= 0 && ct >= 0);
    buf_free(&out);
}

#define C_HEAD "{'id':'cmpl-t','object':'text_completion','created':1700000000,'model':'gpt-x',"
#define C_USAGE(p, c, t)                                                                           \
    "'usage':{'prompt_tokens':" #p ",'completion_tokens':" #c ",'total_tokens':" #t "}}"

static void complete_text(void **state)
{
    (void)state;
    expect_complete_with(&PLAIN,
                         "{'model':'llama3.2','created_at':'2026-12-04T00:40:16.08Z','response':"
                         "'Hello!','done':true,'done_reason':'stop','context':[1,2,3],"
                         "'total_duration':5,'prompt_eval_count':9,'eval_count':3}",
                         C_HEAD "'choices':[{'text':'Hello!','index':0,'logprobs':null,"
                                "'finish_reason':'stop'}]," C_USAGE(9, 3, 12));
    expect_complete_with(&PLAIN,
                         "{'response':'cut','thinking':'so','done':true,'done_reason':'length',"
                         "'eval_count':4}",
                         C_HEAD "'choices':[{'text':'cut','index':0,'logprobs':null,"
                                "'finish_reason':'length'}]," C_USAGE(0, 4, 4));
    /* Ollama's empty-prompt answer, and an answer without text */
    expect_complete_with(&PLAIN, "{'response':'','done':true,'done_reason':'load'}",
                         C_HEAD "'choices':[{'text':'','index':0,'logprobs':null,"
                                "'finish_reason':'stop'}]," C_USAGE(0, 0, 0));
    expect_complete_with(&PLAIN, "{'done':true}",
                         C_HEAD "'choices':[{'text':'','index':0,'logprobs':null,"
                                "'finish_reason':'stop'}]," C_USAGE(0, 0, 0));
}

/* echo: one text, the prompt then the answer, each escaped. */
static void complete_echo(void **state)
{
    (void)state;
    struct completions_want want = {.echo = "Q: \"2+2\"\nA:"};
    expect_complete_with(&want, "{'response':' 4\\t','done':true,'eval_count':2}",
                         C_HEAD "'choices':[{'text':'Q: \\'2+2\\'\\nA: 4\\t','index':0,"
                                "'logprobs':null,'finish_reason':'stop'}]," C_USAGE(0, 2, 2));
    /* the same through the general path (an escape the fast path leaves to it) */
    expect_complete_with(&want, "{'response':' \\u0034\\t','done':true,'eval_count':2}",
                         C_HEAD "'choices':[{'text':'Q: \\'2+2\\'\\nA: 4\\t','index':0,"
                                "'logprobs':null,'finish_reason':'stop'}]," C_USAGE(0, 2, 2));
}

static void complete_logprobs(void **state)
{
    (void)state;
    expect_complete_with(
        &LOGPROBS_ON,
        "{'response':'ab','done':true,'logprobs':[{'token':'a','logprob':-0.5,"
        "'top_logprobs':[{'token':'a','logprob':-0.5},{'token':'c','logprob':-1}"
        "]},{'token':'b','logprob':-0.25,'top_logprobs':[]}]}",
        C_HEAD "'choices':[{'text':'ab','index':0,'logprobs':{'tokens':['a','b'],"
               "'token_logprobs':[-0.5,-0.25],'top_logprobs':[{'a':-0.5,'c':-1},"
               "{'b':-0.25}],'text_offset':[0,1]},'finish_reason':'stop'}]," C_USAGE(0, 0, 0));
}

static void complete_failures(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "nope",
                         "[]",
                         "{'error':'model crashed'}",
                         "{'response':1,'done':true}",
                         "{'response':'x'} trailing"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct buf out;
        struct apierr err;
        const char *b = q(bad[k]);
        buf_init(&out, 1 << 16);
        buf_puts(&out, "x");
        assert_int_equal(
            completions_complete(b, strlen(b), "m", "i", 1, &PLAIN, "gpu1", &out, NULL, NULL, &err),
            -1);
        assert_string_equal(out.p, "x");
        assert_int_equal(err.status, 502);
        assert_string_equal(err.code, "upstream_error");
        assert_non_null(strstr(err.message, "gpu1"));
        buf_free(&out);
    }
    /* the ceiling: a 500 and out unchanged */
    struct buf small;
    struct apierr err;
    const char *b = q("{'response':'a long enough answer to pass a small ceiling','done':true}");
    buf_init(&small, 64);
    assert_int_equal(
        completions_complete(b, strlen(b), "m", "i", 1, &PLAIN, "gpu1", &small, NULL, NULL, &err),
        -1);
    assert_int_equal(err.status, 500);
    assert_int_equal(small.len, 0);
    buf_free(&small);
}

/* The whole-answer fast path writes exactly what the general path writes. */
static void complete_fast_path_matches_general_path(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"model\":\"llama3.2\",\"created_at\":\"2026-12-04T00:40:16.08Z\",\"response\":\" w0 "
        "w1\",\"done\":true,\"done_reason\":\"stop\",\"context\":[128006,882,128007],"
        "\"total_duration\":182242375,\"load_duration\":41295167,\"prompt_eval_count\":26,"
        "\"prompt_eval_duration\":24573166,\"eval_count\":32,\"eval_duration\":115959084}",
        "{\"response\":\"cut\",\"thinking\":\"\\u00e9\",\"done\":true,\"done_reason\":\"length\"}",
        "{\"response\":\"\\u003cb\\u003e\",\"done\":true}",
        "{\"response\":\"x\",\"context\":[]}",
        "{\"response\":\"x\",\"context\":[1,-2]}",
        "{\"response\":\"x\",\"context\":[1.5]}",
        "{\"response\":\"x\",\"context\":[1,]}",
        "{\"response\":\"x\",\"context\":\"no\"}",
        "{\"response\":\"x\",\"eval_count\":1e3}",
        "{\"response\":\"x\",\"response\":\"y\"}",
        "{\"response\":\"x\",\"message\":{\"content\":\"chat\"}}",
        "{\"response\":\"x\",\"logprobs\":[]}",
        "{\"response\":null,\"done\":true}",
        "{}",
        " { \"response\" : \"spaced\" , \"prompt_eval_count\" : 0012 } ",
        "{\"response\":\"x\"} trailing",
        "{\"error\":\"boom\"}",
    };
    const struct completions_want wants[] = {{0}, {.echo = "p\n"}};
    struct buf fast, slow;
    buf_init(&fast, 1 << 20);
    buf_init(&slow, 1 << 20);
    for (size_t w = 0; w < 2; w++) {
        for (size_t k = 0; k < sizeof bodies / sizeof bodies[0]; k++) {
            struct apierr ea, eb;
            long pa = -1, ca = -1, pb = -1, cb = -1;
            const char *b = bodies[k];
            buf_reset(&fast);
            buf_reset(&slow);
            completions_set_fast_path(true);
            int ra = completions_complete(b, strlen(b), "gpt-x", "cmpl-1", 7, &wants[w], "b", &fast,
                                          &pa, &ca, &ea);
            completions_set_fast_path(false);
            int rb = completions_complete(b, strlen(b), "gpt-x", "cmpl-1", 7, &wants[w], "b", &slow,
                                          &pb, &cb, &eb);
            completions_set_fast_path(true);
            assert_int_equal(ra, rb);
            assert_int_equal(pa, pb);
            assert_int_equal(ca, cb);
            assert_int_equal(fast.len, slow.len);
            if (fast.len)
                assert_memory_equal(fast.p, slow.p, fast.len);
            if (ra < 0)
                assert_string_equal(ea.message, eb.message);
        }
    }
    buf_free(&fast);
    buf_free(&slow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(req_minimal),
        cmocka_unit_test(req_every_field),
        cmocka_unit_test(req_think),
        cmocka_unit_test(req_fields_of_struct),
        cmocka_unit_test(req_prompt_forms),
        cmocka_unit_test(req_alias_options),
        cmocka_unit_test(req_rejects_body_and_model),
        cmocka_unit_test(req_rejects_prompts),
        cmocka_unit_test(req_rejects_other_fields),
        cmocka_unit_test(req_out_of_memory),
        cmocka_unit_test(stream_text),
        cmocka_unit_test(stream_include_usage),
        cmocka_unit_test(stream_length_and_stop),
        cmocka_unit_test(stream_drops_thinking),
        cmocka_unit_test(stream_echo),
        cmocka_unit_test(stream_error_line),
        cmocka_unit_test(stream_garbage_lines),
        cmocka_unit_test(stream_eof),
        cmocka_unit_test(stream_text_on_done_line),
        cmocka_unit_test(stream_logprobs),
        cmocka_unit_test(stream_output_ceiling),
        cmocka_unit_test(stream_escapes_and_unterminated),
        cmocka_unit_test(stream_under_jarena),
        cmocka_unit_test(stream_fast_path_matches_general_path),
        cmocka_unit_test(complete_text),
        cmocka_unit_test(complete_echo),
        cmocka_unit_test(complete_logprobs),
        cmocka_unit_test(complete_failures),
        cmocka_unit_test(complete_fast_path_matches_general_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
