/*
 * Unit tests for proto/chat_complete.c: a whole native /api/chat answer as a
 * chat.completion object (PROTOCOL.md §5.14). Each test pins exact output.
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
#include "chat_complete.h"
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Non-streamed answers (PROTOCOL §5.14)                                     */

static void expect_complete(const char *body, const char *expected)
{
    struct buf out;
    struct apierr err;
    long pt = -1, ct = -1;
    const char *b = q(body);
    buf_init(&out, 1 << 16);
    if (chat_complete(b, strlen(b), "gpt-x", "chatcmpl-t", 1700000000, "gpu1", &out, &pt, &ct,
                      &err) != 0)
        fail_msg("chat_complete failed: %s", err.message);
    assert_string_equal(out.p, q(expected));
    assert_true(pt >= 0 && ct >= 0);
    cJSON *j = cJSON_Parse(out.p);
    assert_non_null(j);
    cJSON_Delete(j);
    buf_free(&out);
}

#define C_HEAD "{'id':'chatcmpl-t','object':'chat.completion','created':1700000000,'model':'gpt-x',"

/* PROTOCOL §5.14 */
static void complete_text(void **state)
{
    (void)state;
    expect_complete("{'model':'llama3.2','message':{'role':'assistant','content':'Hello!'},"
                    "'done':true,'done_reason':'stop','prompt_eval_count':9,'eval_count':3}",
                    C_HEAD "'choices':[{'index':0,'message':{'role':'assistant','content':"
                           "'Hello!'},'logprobs':null,'finish_reason':'stop'}],'usage':{"
                           "'prompt_tokens':9,'completion_tokens':3,'total_tokens':12}}");
}

/* PROTOCOL §5.14, §5.2: content null with tool calls, no index, finish tool_calls */
static void complete_tool_calls(void **state)
{
    (void)state;
    expect_complete("{'message':{'role':'assistant','content':'','tool_calls':[{'id':'call_1',"
                    "'function':{'index':0,'name':'f','arguments':{'a':1}}},{'function':{'index':"
                    "0,'name':'g','arguments':{}},'id':'call_2'}]},'done':true,'done_reason':"
                    "'stop'}",
                    C_HEAD "'choices':[{'index':0,'message':{'role':'assistant','content':null,"
                           "'tool_calls':[{'id':'call_1','type':'function','function':{'name':"
                           "'f','arguments':'{\\'a\\':1}'}},{'id':'call_2','type':'function',"
                           "'function':{'name':'g','arguments':'{}'}}]},'logprobs':null,"
                           "'finish_reason':'tool_calls'}],'usage':{'prompt_tokens':0,"
                           "'completion_tokens':0,'total_tokens':0}}");
}

/* PROTOCOL §5.7 */
static void complete_thinking_and_length(void **state)
{
    (void)state;
    expect_complete("{'message':{'role':'assistant','content':'4','thinking':'2+2'},'done':true,"
                    "'done_reason':'length','eval_count':100}",
                    C_HEAD "'choices':[{'index':0,'message':{'role':'assistant','content':'4',"
                           "'reasoning_content':'2+2','reasoning':'2+2'},'logprobs':null,"
                           "'finish_reason':'length'}],'usage':{'prompt_tokens':0,"
                           "'completion_tokens':100,'total_tokens':100}}");
    /* text beside tool calls stays a string */
    expect_complete("{'message':{'content':'ok','tool_calls':[{'id':'x','function':{'name':'f'}}]},"
                    "'done':true}",
                    C_HEAD "'choices':[{'index':0,'message':{'role':'assistant','content':'ok',"
                           "'tool_calls':[{'id':'x','type':'function','function':{'name':'f',"
                           "'arguments':'{}'}}]},'logprobs':null,'finish_reason':'tool_calls'}],"
                           "'usage':{'prompt_tokens':0,'completion_tokens':0,'total_tokens':0}}");
}

static void complete_failures(void **state)
{
    (void)state;
    const char *bad[] = {"", "nope", "[]", "{'error':'model crashed'}",
                         "{'message':{'content':1},'done':true}"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct buf out;
        struct apierr err;
        const char *b = q(bad[k]);
        buf_init(&out, 1 << 16);
        buf_puts(&out, "x");
        assert_int_equal(chat_complete(b, strlen(b), "m", "i", 1, "gpu1", &out, NULL, NULL, &err),
                         -1);
        assert_string_equal(out.p, "x");
        assert_int_equal(err.status, 502);
        assert_string_equal(err.code, "upstream_error");
        assert_non_null(strstr(err.message, "gpu1"));
        buf_free(&out);
    }
}

/* The non-streamed fast path must write exactly what the general path
 * writes, whatever the answer holds (it hands over everything it cannot
 * match). */
static void complete_fast_path_matches_general_path(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"model\":\"llama3.2\",\"created_at\":\"2026-12-04T00:40:16.08Z\",\"message\":{\"role\":"
        "\"assistant\",\"content\":\" w0 w1\"},\"done\":true,\"done_reason\":\"stop\","
        "\"total_duration\":182242375,\"load_duration\":41295167,\"prompt_eval_count\":26,"
        "\"prompt_eval_duration\":24573166,\"eval_count\":32,\"eval_duration\":115959084}",
        "{\"model\":\"m\",\"message\":{\"content\":\"cut\"},\"done\":true,\"done_reason\":"
        "\"length\",\"eval_count\":7}",
        "{\"model\":\"q\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":"
        "\"hm \\\"so\\\"\"},\"done\":true}",
        "{\"message\":{\"content\":\"\\u003cb\\u003e \\u00e9\"},\"done\":true}",
        "{\"message\":{\"content\":\"x\"},\"eval_count\":1e3}",
        "{\"message\":{\"content\":\"x\"},\"eval_count\":1234567890123456}",
        "{\"message\":{\"content\":\"x\"},\"eval_count\":-2}",
        "{\"message\":{\"content\":\"x\"},\"eval_count\":4,\"eval_count\":5}",
        "{\"message\":{\"content\":\"x\"},\"done_reason\":\"len\\u0067th\"}",
        "{\"message\":{\"content\":\"x\"},\"done_reason\":null}",
        "{\"message\":{\"content\":\"x\"},\"logprobs\":[]}",
        "{\"model\":\"m\",\"done\":true}",
        "{\"message\":{\"content\":\"x\"}} ",
        "{\"message\":{\"content\":\"x\"}} trailing",
        "{\"error\":\"boom\"}",
        " { \"message\" : { \"content\" : \"spaced\" } , \"prompt_eval_count\" : 0012 } ",
    };
    struct buf fast, slow;
    buf_init(&fast, 1 << 20);
    buf_init(&slow, 1 << 20);
    unsigned took_fast = 0;
    for (size_t k = 0; k < sizeof bodies / sizeof bodies[0]; k++) {
        struct apierr ea, eb;
        long pa = -1, ca = -1, pb = -1, cb = -1;
        buf_reset(&fast);
        buf_reset(&slow);
        chat_set_fast_path(true);
        int ra = chat_complete(bodies[k], strlen(bodies[k]), "gpt-x", "chatcmpl-1", 7, "b", &fast,
                               &pa, &ca, &ea);
        chat_set_fast_path(false);
        int rb = chat_complete(bodies[k], strlen(bodies[k]), "gpt-x", "chatcmpl-1", 7, "b", &slow,
                               &pb, &cb, &eb);
        chat_set_fast_path(true);
        assert_int_equal(ra, rb);
        assert_int_equal(pa, pb);
        assert_int_equal(ca, cb);
        assert_int_equal(fast.len, slow.len);
        if (fast.len)
            assert_memory_equal(fast.p, slow.p, fast.len);
        if (ra < 0)
            assert_string_equal(ea.message, eb.message);
        took_fast += ra == 0 && k < 4;
    }
    assert_int_equal(took_fast, 4);
    /* the first one is the common case: check the numbers made it */
    buf_reset(&fast);
    long pt = 0, ct = 0;
    struct apierr e;
    assert_int_equal(chat_complete(bodies[0], strlen(bodies[0]), "gpt-x", "chatcmpl-1", 7, "b",
                                   &fast, &pt, &ct, &e),
                     0);
    assert_int_equal(pt, 26);
    assert_int_equal(ct, 32);
    assert_non_null(strstr(fast.p, "\"content\":\" w0 w1\""));
    assert_non_null(strstr(fast.p, "\"total_tokens\":58}"));
    buf_free(&fast);
    buf_free(&slow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(complete_text),
        cmocka_unit_test(complete_tool_calls),
        cmocka_unit_test(complete_thinking_and_length),
        cmocka_unit_test(complete_failures),
        cmocka_unit_test(complete_fast_path_matches_general_path),
    };
    return cmocka_run_group_tests(tests, setup_sodium, NULL);
}
