/*
 * Unit tests for proto/chat_stream.c: native NDJSON lines, one at a time, as
 * chat.completion.chunk SSE frames. Each test pins exact output. "PROTOCOL
 * §5.N" names the pitfall (PROTOCOL.md section 5) a test guards.
 *
 * JSON in this file is written with single quotes for readability; q()
 * turns them into double quotes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "chat_answer.h"
#include "chat_stream.h"
#include "helpers.h"
#include "jarena.h"
#include "sse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */

struct run {
    struct chat_stream s;
    struct buf out;
    struct apierr err;
    int rc;       /* last chat_stream_line result */
    int consumed; /* lines fed */
};

/* Feed NULL-terminated lines until one does not return CHAT_MORE. */
static void run_lines(struct run *r, bool usage, const char *const *lines)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->out, 1 << 20);
    assert_int_equal(chat_stream_init(&r->s, "gpt-x", usage, "chatcmpl-t", 1700000000), 0);
    chat_stream_set_backend(&r->s, "gpu1");
    r->rc = CHAT_MORE;
    for (; lines[r->consumed] && r->rc == CHAT_MORE; r->consumed++) {
        const char *l = q(lines[r->consumed]);
        r->rc = chat_stream_line(&r->s, l, strlen(l), &r->out, &r->err);
    }
    check_frames(r->out.p ? r->out.p : "", r->out.len);
}

static void run_free(struct run *r)
{
    chat_stream_free(&r->s);
    buf_free(&r->out);
}

#define HEAD                                                                                       \
    "data: {\"id\":\"chatcmpl-t\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"    \
    "\"model\":\"gpt-x\",\"choices\":["
#define CHUNK(delta) HEAD "{\"index\":0,\"delta\":" delta ",\"finish_reason\":null}]}\n\n"
#define FINISH(reason) HEAD "{\"index\":0,\"delta\":{},\"finish_reason\":\"" reason "\"}]}\n\n"
#define USAGE(p, c, t)                                                                             \
    HEAD "],\"usage\":{\"prompt_tokens\":" #p ",\"completion_tokens\":" #c ",\"total_tokens\":" #t \
         "}}\n\n"
#define DONE "data: [DONE]\n\n"

static void expect_stream(bool usage, const char *const *lines, const char *expected)
{
    struct run r;
    run_lines(&r, usage, lines);
    assert_int_equal(r.rc, CHAT_DONE);
    assert_true(r.s.done);
    assert_string_equal(r.out.p, expected);
    run_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */

#define L_TEXT(t)                                                                                  \
    "{'model':'llama3.2','created_at':'2026-08-21T10:00:00Z','message':{'role':'assistant','"      \
    "content':'" t "'},'done':false}"
#define L_DONE(extra)                                                                              \
    "{'model':'llama3.2','message':{'role':'assistant','content':''},'done':true" extra "}"

/* PROTOCOL §5.1, §5.3, §5.12: role once, content deltas, finish chunk, [DONE] */
static void stream_text(void **state)
{
    (void)state;
    const char *lines[] = {L_TEXT("Hel"), L_TEXT("lo"),
                           L_DONE(",'done_reason':'stop','prompt_eval_count':26,'eval_count':2"),
                           NULL};
    expect_stream(false, lines,
                  CHUNK("{\"role\":\"assistant\",\"content\":\"Hel\"}")
                      CHUNK("{\"content\":\"lo\"}") FINISH("stop") DONE);
}

/* PROTOCOL §5.13: the usage chunk comes after the finish chunk, choices [] */
static void stream_include_usage(void **state)
{
    (void)state;
    const char *lines[] = {
        L_TEXT("Hi"), L_DONE(",'done_reason':'stop','prompt_eval_count':26,'eval_count':2"), NULL};
    struct run r;
    run_lines(&r, true, lines);
    assert_int_equal(r.rc, CHAT_DONE);
    assert_string_equal(r.out.p, CHUNK("{\"role\":\"assistant\",\"content\":\"Hi\"}") FINISH("stop")
                                     USAGE(26, 2, 28) DONE);
    assert_int_equal(r.s.prompt_tokens, 26);
    assert_int_equal(r.s.completion_tokens, 2);
    run_free(&r);
}

/* PROTOCOL §5.8: missing metric fields count as 0 */
static void stream_missing_metrics(void **state)
{
    (void)state;
    const char *lines[] = {L_TEXT("a"), L_DONE(",'done_reason':'stop','eval_count':1"), NULL};
    expect_stream(true, lines,
                  CHUNK("{\"role\":\"assistant\",\"content\":\"a\"}") FINISH("stop") USAGE(0, 1, 1)
                      DONE);
    const char *lines2[] = {L_DONE(",'prompt_eval_count':-4,'eval_count':'x'"), NULL};
    expect_stream(true, lines2,
                  CHUNK("{\"role\":\"assistant\",\"content\":\"\"}") FINISH("stop") USAGE(0, 0, 0)
                      DONE);
}

/* PROTOCOL §5.3, §3.5: an empty answer still opens with a role chunk */
static void stream_empty_answer(void **state)
{
    (void)state;
    const char *lines[] = {L_TEXT(""), L_DONE(""), NULL};
    expect_stream(false, lines,
                  CHUNK("{\"role\":\"assistant\",\"content\":\"\"}") FINISH("stop") DONE);
}

/* Empty deltas are skipped; the role goes on the first chunk that is written. */
static void stream_skips_empty_deltas(void **state)
{
    (void)state;
    const char *lines[] = {L_TEXT(""),
                           "{'message':{'role':'assistant'},'done':false}",
                           "{'done':false}",
                           L_TEXT("x"),
                           L_TEXT(""),
                           L_DONE(""),
                           NULL};
    struct run r;
    run_lines(&r, false, lines);
    assert_int_equal(r.rc, CHAT_DONE);
    assert_string_equal(r.out.p,
                        CHUNK("{\"role\":\"assistant\",\"content\":\"x\"}") FINISH("stop") DONE);
    run_free(&r);
}

/* PROTOCOL §5.7: thinking in reasoning_content and reasoning, before content */
static void stream_thinking(void **state)
{
    (void)state;
    const char *lines[] = {
        "{'message':{'role':'assistant','content':'','thinking':'Let me'},'done':false}",
        "{'message':{'role':'assistant','content':'','thinking':' think'},'done':false}",
        "{'message':{'role':'assistant','content':'4','thinking':'.'},'done':false}",
        L_DONE(",'done_reason':'stop'"), NULL};
    expect_stream(false, lines,
                  CHUNK("{\"role\":\"assistant\",\"reasoning_content\":\"Let me\","
                        "\"reasoning\":\"Let me\"}")
                      CHUNK("{\"reasoning_content\":\" think\",\"reasoning\":\" think\"}")
                          CHUNK("{\"reasoning_content\":\".\",\"reasoning\":\".\"}")
                              CHUNK("{\"content\":\"4\"}") FINISH("stop") DONE);
}

#define TC(id, name, args) "{" id "'function':{'index':0,'name':'" name "','arguments':" args "}}"

/* PROTOCOL §5.2, §5.3: tool call on a non-final line; finish_reason tool_calls */
static void stream_tool_call_mid_stream(void **state)
{
    (void)state;
    const char *lines[] = {
        "{'message':{'role':'assistant','content':'','tool_calls':[" TC(
            "'id':'call_k3j9x0ab',", "get_weather", "{'city':'Tokyo'}") "]},'done':false}",
        L_DONE(",'done_reason':'stop','prompt_eval_count':169,'eval_count':15"), NULL};
    expect_stream(true, lines,
                  CHUNK("{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":"
                        "\"call_k3j9x0ab\",\"type\":\"function\",\"function\":{\"name\":"
                        "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Tokyo\\\"}\"}}]}")
                      FINISH("tool_calls") USAGE(169, 15, 184) DONE);
}

/* PROTOCOL §5.2: tool calls (and trailing content) on the done line itself */
static void stream_tool_call_on_done_line(void **state)
{
    (void)state;
    const char *lines[] = {L_TEXT("Checking."),
                           "{'message':{'role':'assistant','content':' Done','tool_calls':[" TC(
                               "'id':'c9',", "f", "{}") "]},'done':true,'done_reason':'stop'}",
                           NULL};
    expect_stream(false, lines,
                  CHUNK("{\"role\":\"assistant\",\"content\":\"Checking.\"}")
                      CHUNK("{\"content\":\" Done\",\"tool_calls\":[{\"index\":0,\"id\":\"c9\","
                            "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
                            "\"{}\"}}]}") FINISH("tool_calls") DONE);
}

/* PROTOCOL §5.3: dense indexes assigned by us, across lines; Ollama's index ignored */
static void stream_two_tool_calls(void **state)
{
    (void)state;
    const char *lines[] = {
        "{'message':{'role':'assistant','content':'','tool_calls':[" TC(
            "'id':'a',", "f", "{'x':1}") "," TC("'id':'b',", "g", "{}") "]},'done':false}",
        "{'message':{'role':'assistant','content':'','tool_calls':[{'id':'c','function':{'index':"
        "0,'name':'h'}}]},'done':false}",
        L_DONE(",'done_reason':'stop'"), NULL};
    struct run r;
    run_lines(&r, false, lines);
    assert_int_equal(r.rc, CHAT_DONE);
    assert_string_equal(
        r.out.p,
        CHUNK("{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"type\":"
              "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}},"
              "{\"index\":1,\"id\":\"b\",\"type\":\"function\",\"function\":{\"name\":\"g\","
              "\"arguments\":\"{}\"}}]}")
            CHUNK("{\"tool_calls\":[{\"index\":2,\"id\":\"c\",\"type\":\"function\","
                  "\"function\":{\"name\":\"h\",\"arguments\":\"{}\"}}]}") FINISH("tool_calls")
                DONE);
    assert_int_equal(r.s.tool_calls, 3);
    run_free(&r);
}

/* PROTOCOL §5.3: a tool call without an id gets "call_" + 24 random characters */
static void stream_tool_call_generated_id(void **state)
{
    (void)state;
    const char *lines[] = {"{'message':{'role':'assistant','content':'','tool_calls':[" TC(
                               "", "f", "'{\\'raw\\':true}'") "]},'done':true}",
                           NULL};
    struct run r;
    run_lines(&r, false, lines);
    assert_int_equal(r.rc, CHAT_DONE);
    const char *id = strstr(r.out.p, "\"id\":\"call_");
    assert_non_null(id);
    id += strlen("\"id\":\"call_");
    for (int k = 0; k < 24; k++)
        assert_true(isalnum((unsigned char)id[k]));
    assert_int_equal(id[24], '"');
    /* arguments already a string are passed on as that string */
    assert_non_null(strstr(r.out.p, "\"arguments\":\"{\\\"raw\\\":true}\""));
    run_free(&r);
}

/* PROTOCOL §5.2: length stays length even when tools were called */
static void stream_length(void **state)
{
    (void)state;
    const char *lines[] = {L_TEXT("a"), L_DONE(",'done_reason':'length'"), NULL};
    expect_stream(false, lines,
                  CHUNK("{\"role\":\"assistant\",\"content\":\"a\"}") FINISH("length") DONE);
    const char *lines2[] = {"{'message':{'role':'assistant','content':'','tool_calls':[" TC(
                                "'id':'a',", "f", "{}") "]},'done':false}",
                            L_DONE(",'done_reason':'length'"), NULL};
    struct run r;
    run_lines(&r, false, lines2);
    assert_non_null(strstr(r.out.p, FINISH("length")));
    run_free(&r);
    /* unknown reasons (load, cloud-specific) are stop */
    const char *lines3[] = {L_TEXT("a"), L_DONE(",'done_reason':'load'"), NULL};
    expect_stream(false, lines3,
                  CHUNK("{\"role\":\"assistant\",\"content\":\"a\"}") FINISH("stop") DONE);
}

/* PROTOCOL §5.9, §5.8: {"error":...} mid-stream fails, writes nothing, no [DONE] */
static void stream_mid_stream_error(void **state)
{
    (void)state;
    const char *lines[] = {L_TEXT("a"),
                           "{'error':'an error was encountered while running the model: boom'}",
                           L_DONE(""), NULL};
    struct run r;
    run_lines(&r, false, lines);
    assert_int_equal(r.rc, CHAT_FAIL);
    assert_int_equal(r.consumed, 2);
    assert_string_equal(r.out.p, CHUNK("{\"role\":\"assistant\",\"content\":\"a\"}"));
    assert_int_equal(r.err.status, 502);
    assert_string_equal(r.err.type, APIERR_API);
    assert_string_equal(r.err.code, "upstream_error");
    assert_non_null(strstr(r.err.message, "gpu1"));
    assert_non_null(strstr(r.err.message, "boom"));
    /* the caller then writes the in-band error frame */
    assert_int_equal(sse_error(&r.out, &r.err), 0);
    assert_null(strstr(r.out.p, "[DONE]"));
    check_frames(r.out.p, r.out.len);
    /* and the stream stays failed */
    const char *l = q(L_DONE(""));
    struct apierr e2;
    assert_int_equal(chat_stream_line(&r.s, l, strlen(l), &r.out, &e2), CHAT_FAIL);
    assert_int_equal(chat_stream_eof(&r.s, &e2), CHAT_FAIL);
    run_free(&r);
}

/* A line that is not JSON, not an object, or malformed: 502, nothing written */
static void stream_garbage_lines(void **state)
{
    (void)state;
    const char *bad[] = {
        "garbage",
        "[1,2]",
        "{'done':false} trailing",
        "{'message':'text','done':false}",
        "{'message':{'content':5},'done':false}",
        "{'message':{'content':'x','tool_calls':{}},'done':false}",
        "{'message':{'content':'x','tool_calls':[{'function':{'arguments':{}}}]},'done':true}",
        "{'message':{'content':'x','tool_calls':[7]},'done':false}",
        "{'error':{'message':'nested'}}",
        "{'message':{'content':'x'},'error':'late'}",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const char *lines[] = {L_TEXT("ok"), bad[k], NULL};
        struct run r;
        run_lines(&r, false, lines);
        assert_int_equal(r.rc, CHAT_FAIL);
        assert_string_equal(r.out.p, CHUNK("{\"role\":\"assistant\",\"content\":\"ok\"}"));
        assert_int_equal(r.err.status, 502);
        assert_string_equal(r.err.code, "upstream_error");
        assert_non_null(strstr(r.err.message, "Backend \"gpu1\""));
        run_free(&r);
    }
}

static void stream_after_done_and_eof(void **state)
{
    (void)state;
    const char *lines[] = {L_DONE(""), NULL};
    struct run r;
    struct apierr err;
    run_lines(&r, false, lines);
    size_t len = r.out.len;
    const char *l = q(L_TEXT("late"));
    assert_int_equal(chat_stream_line(&r.s, l, strlen(l), &r.out, &err), CHAT_DONE);
    assert_int_equal(r.out.len, len);
    assert_int_equal(chat_stream_eof(&r.s, &err), CHAT_DONE);
    run_free(&r);

    /* the backend hung up before done:true */
    const char *early[] = {L_TEXT("a"), NULL};
    run_lines(&r, false, early);
    assert_int_equal(r.rc, CHAT_MORE);
    assert_int_equal(chat_stream_eof(&r.s, &err), CHAT_FAIL);
    assert_int_equal(err.status, 502);
    assert_non_null(strstr(err.message, "closed the stream"));
    run_free(&r);
}

/* The output ceiling: CHAT_FAIL with a 500 and out untouched. */
static void stream_output_ceiling(void **state)
{
    (void)state;
    struct chat_stream s;
    struct buf out;
    struct apierr err;
    buf_init(&out, 100);
    assert_int_equal(chat_stream_init(&s, "gpt-x", false, "chatcmpl-t", 1), 0);
    buf_puts(&out, "keep");
    const char *l = q(L_TEXT("this will not fit in one hundred bytes of output at all"));
    assert_int_equal(chat_stream_line(&s, l, strlen(l), &out, &err), CHAT_FAIL);
    assert_int_equal(err.status, 500);
    assert_string_equal(out.p, "keep");
    assert_false(s.started);
    chat_stream_free(&s);
    buf_free(&out);
}

/* Client-chosen strings in the prefix are escaped. */
static void stream_escapes_model_and_content(void **state)
{
    (void)state;
    struct chat_stream s;
    struct buf out;
    struct apierr err;
    buf_init(&out, 1 << 16);
    assert_int_equal(chat_stream_init(&s, "we\"ird\nmodel", false, "id\\1", 5), 0);
    const char *l =
        "{\"message\":{\"content\":\"tab\\t\\u0000nul \\u001f\xe2\x82\xac\"},\"done\":false}";
    assert_int_equal(chat_stream_line(&s, l, strlen(l), &out, &err), CHAT_MORE);
    assert_string_equal(out.p, "data: {\"id\":\"id\\\\1\",\"object\":\"chat.completion.chunk\","
                               "\"created\":5,\"model\":\"we\\\"ird\\nmodel\",\"choices\":[{"
                               "\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
                               "\"tab\\t\"},\"finish_reason\":null}]}\n\n");
    check_frames(out.p, out.len);
    chat_stream_free(&s);
    chat_stream_free(&s);
    buf_free(&out);
}

/* Lines need not be NUL-terminated (they point into curl's buffer). */
static void stream_unterminated_line(void **state)
{
    (void)state;
    struct chat_stream s;
    struct buf out;
    struct apierr err;
    const char *text = "{\"message\":{\"content\":\"A\"},\"done\":false}";
    size_t n = strlen(text);
    char *exact = malloc(n); /* no room for a '\0': ASan checks cJSON stays inside */
    memcpy(exact, text, n);
    buf_init(&out, 1 << 16);
    assert_int_equal(chat_stream_init(&s, "m", false, "i", 1), 0);
    assert_int_equal(chat_stream_line(&s, exact, n, &out, &err), CHAT_MORE);
    assert_non_null(strstr(out.p, "\"content\":\"A\""));
    /* a line cut inside a string */
    assert_int_equal(chat_stream_line(&s, exact, 24, &out, &err), CHAT_FAIL);
    free(exact);
    chat_stream_free(&s);
    buf_free(&out);
}

static void stream_logprobs(void **state)
{
    (void)state;
    const char *lines[] = {
        "{'message':{'role':'assistant','content':'Hi'},'done':false,'logprobs':[{'token':'Hi',"
        "'logprob':-0.25,'bytes':[72,105],'top_logprobs':[{'token':'Hi','logprob':-0.25},"
        "{'token':'Yo','logprob':-1.5,'bytes':[89,111]}]}]}",
        L_DONE(""), NULL};
    expect_stream(false, lines,
                  HEAD "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},"
                       "\"logprobs\":{\"content\":[{\"token\":\"Hi\",\"logprob\":-0.25,\"bytes\":"
                       "[72,105],\"top_logprobs\":[{\"token\":\"Hi\",\"logprob\":-0.25,\"bytes\":"
                       "null},{\"token\":\"Yo\",\"logprob\":-1.5,\"bytes\":[89,111]}]}],"
                       "\"refusal\":null},\"finish_reason\":null}]}\n\n" FINISH("stop") DONE);
}

/* The relay runs chat_stream_line inside jarena_begin/end (cJSON trees from a
 * per-thread bump block): the output must not change, nothing may outlive it. */
static void stream_under_jarena(void **state)
{
    (void)state;
    const char *lines[] = {
        "{'message':{'role':'assistant','content':'','thinking':'hmm'},'done':false}",
        "{'message':{'role':'assistant','content':'Hi'},'done':false,'logprobs':[{'token':'Hi',"
        "'logprob':-0.5}]}",
        "{'message':{'role':'assistant','content':'','tool_calls':[" TC(
            "'id':'a',", "f", "{'deep':{'list':[1,2,3],'s':'x'}}") "]},'done':true,"
                                                                   "'done_reason':'stop'}",
        NULL};
    struct run plain, arena;
    run_lines(&plain, true, lines);
    jarena_init();
    jarena_begin();
    run_lines(&arena, true, lines);
    jarena_end();
    cJSON_InitHooks(NULL);
    assert_int_equal(arena.rc, CHAT_DONE);
    assert_string_equal(arena.out.p, plain.out.p);
    run_free(&plain);
    run_free(&arena);
}

/* The plain-content fast path must write exactly what the general path
 * writes, whatever the line holds (it hands over everything it cannot match). */
static void fast_path_matches_general_path(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"model\":\"llama3.2\",\"created_at\":\"2026-08-21T10:00:00.1Z\",\"message\":{\"role\":"
        "\"assistant\",\"content\":\"Hel\\\"lo\\n\\t\\\\ \\u0001\"},\"done\":false}",
        "{\"model\":\"q\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"hm\"}"
        ","
        "\"done\":false}",
        "{\"model\":\"q\",\"message\":{\"thinking\":\"a\",\"content\":\"b\"}}",
        "{\"message\":{\"content\":\"\\u003cb\\u003e \\u00e9 \\/\"},\"done\":false}",
        "{\"message\":{\"content\":\"x\",\"content\":\"y\"},\"done\":false}",
        " { \"model\" : \"m\" , \"message\" : { \"content\" : \"spaced\" } , \"done\" : false } ",
        "{\"model\":\"\\uD800\",\"message\":{\"content\":\"lone surrogate in model\"}}",
        "{\"model\":\"m\",\"message\":{\"content\":\"ok\"},\"done\":false} trailing",
        "{\"model\":\"m\",\"message\":{\"content\":\"\"},\"done\":false}",
        "{\"model\":\"m\",\"message\":{\"content\":\"\\u0000nul\"},\"done\":false}",
        /* malformed UTF-8 (a stray byte, a cut sequence, a surrogate) becomes
         * U+FFFD on the general path, so the fast path must hand it over */
        "{\"model\":\"m\",\"message\":{\"content\":\"bad \xff byte\"},\"done\":false}",
        "{\"model\":\"m\",\"message\":{\"content\":\"cut \xe2\x82\"},\"done\":false}",
        "{\"model\":\"m\",\"message\":{\"content\":\"\xed\xa0\x80\"},\"done\":false}",
        "{\"model\":\"m\",\"message\":{\"content\":\"good \xe2\x82\xac\"},\"done\":false}",
        "{\"model\":\"m\",\"message\":{\"content\":\"last\"},\"done\":true,\"done_reason\":"
        "\"stop\","
        "\"eval_count\":9}",
    };
    struct buf fast, slow;
    struct apierr err;
    buf_init(&fast, 1 << 20);
    buf_init(&slow, 1 << 20);
    for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++) {
        struct chat_stream a, b;
        assert_int_equal(chat_stream_init(&a, "m", true, "chatcmpl-x", 1), 0);
        assert_int_equal(chat_stream_init(&b, "m", true, "chatcmpl-x", 1), 0);
        buf_reset(&fast);
        buf_reset(&slow);
        chat_set_fast_path(true);
        int ra = chat_stream_line(&a, lines[k], strlen(lines[k]), &fast, &err);
        chat_set_fast_path(false);
        int rb = chat_stream_line(&b, lines[k], strlen(lines[k]), &slow, &err);
        chat_set_fast_path(true);
        assert_int_equal(ra, rb);
        assert_int_equal(fast.len, slow.len);
        if (fast.len)
            assert_memory_equal(fast.p, slow.p, fast.len);
        chat_stream_free(&a);
        chat_stream_free(&b);
    }
    buf_free(&fast);
    buf_free(&slow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stream_text),
        cmocka_unit_test(stream_include_usage),
        cmocka_unit_test(stream_missing_metrics),
        cmocka_unit_test(stream_empty_answer),
        cmocka_unit_test(stream_skips_empty_deltas),
        cmocka_unit_test(stream_thinking),
        cmocka_unit_test(stream_tool_call_mid_stream),
        cmocka_unit_test(stream_tool_call_on_done_line),
        cmocka_unit_test(stream_two_tool_calls),
        cmocka_unit_test(stream_tool_call_generated_id),
        cmocka_unit_test(stream_length),
        cmocka_unit_test(stream_mid_stream_error),
        cmocka_unit_test(stream_garbage_lines),
        cmocka_unit_test(stream_after_done_and_eof),
        cmocka_unit_test(stream_output_ceiling),
        cmocka_unit_test(stream_escapes_model_and_content),
        cmocka_unit_test(stream_unterminated_line),
        cmocka_unit_test(stream_logprobs),
        cmocka_unit_test(stream_under_jarena),
        cmocka_unit_test(fast_path_matches_general_path),
    };
    return cmocka_run_group_tests(tests, setup_sodium, NULL);
}
