/*
 * Unit tests for the Anthropic Messages dialect (proto/messages_*.c): the
 * request translation (messages_request), the whole message
 * (messages_answer), every streamed event sequence (messages_stream), and the
 * error shape (messages_error). Each test pins exact output.
 *
 * JSON is written with single quotes; q() turns them into double quotes.
 * Tool-use ids are random: norm() replaces each "toolu_" + 24 characters
 * with "toolu_X" before comparing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "dialect.h"
#include "helpers.h"
#include "messages_answer.h"
#include "messages_error.h"
#include "messages_request.h"
#include "messages_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */

/* s with every tool-use id made "toolu_X" (a static buffer). */
static const char *norm(const char *s)
{
    static char out[65536];
    size_t o = 0;
    assert_true(strlen(s) < sizeof out);
    while (*s) {
        if (strncmp(s, "toolu_", 6) == 0) {
            memcpy(out + o, "toolu_X", 7);
            o += 7;
            s += 6;
            size_t n = 0;
            while (n < 24 && s[n] &&
                   ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
                    (s[n] >= '0' && s[n] <= '9')))
                n++;
            assert_int_equal(n, 24);
            s += n;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
    return out;
}

DEFINE_NATIVE_WITH(messages)

static void expect_native(const char *body, const char *expected)
{
    assert_string_equal(native_with(body, NULL), q(expected));
}

static void expect_reject(const char *body, const char *param, const char *msg_part)
{
    struct messages_req r;
    struct apierr err = {0};
    const char *b = q(body);
    assert_int_equal(messages_req_parse(&r, b, strlen(b), &err), -1);
    assert_null(r.root);
    assert_null(r.native);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.param, param);
    if (msg_part && !strstr(err.message, msg_part))
        fail_msg("message '%s' lacks '%s'", err.message, msg_part);
}

#define M "'model':'claude-x',"
#define HI "'messages':[{'role':'user','content':'hi'}]"
#define NHI "'messages':[{'role':'user','content':'hi'}]"
#define HEAD "{'model':'llama3.2','stream':false,"

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

static void req_minimal(void **state)
{
    (void)state;
    expect_native("{" M HI "}", HEAD NHI "}");
    expect_native("{" M "'stream':true," HI "}", "{'model':'llama3.2','stream':true," NHI "}");
}

static void req_options(void **state)
{
    (void)state;
    expect_native("{" M "'max_tokens':64,'temperature':0.5,'top_p':0.9,'top_k':20,"
                  "'stop_sequences':['END','###']," HI "}",
                  HEAD NHI ",'options':{'temperature':0.5,'top_p':0.9,'top_k':20,"
                           "'num_predict':64,'stop':['END','###']}}");
    /* an empty stop list adds nothing; the alias's options go under the client's */
    assert_string_equal(native_with("{" M "'stop_sequences':[],'temperature':1," HI "}",
                                    "{'num_ctx':8192,'temperature':0.1}"),
                        q(HEAD NHI ",'options':{'num_ctx':8192,'temperature':1}}"));
}

static void req_ignored_fields(void **state)
{
    (void)state;
    expect_native("{" M "'metadata':{'user_id':'u'},'service_tier':'auto','context_management':"
                  "{'edits':[]},'container':null,'unknown':1,"
                  "'messages':[{'role':'user','content':[{'type':'text','text':'hi',"
                  "'cache_control':{'type':'ephemeral'}}]}]}",
                  HEAD NHI "}");
}

static void req_system(void **state)
{
    (void)state;
    expect_native("{" M "'system':'Be brief.'," HI "}",
                  HEAD "'messages':[{'role':'system','content':'Be brief.'},"
                       "{'role':'user','content':'hi'}]}");
    expect_native("{" M "'system':[{'type':'text','text':'A','cache_control':{'type':"
                  "'ephemeral'}},{'type':'text','text':'B'}]," HI "}",
                  HEAD "'messages':[{'role':'system','content':'A\\nB'},"
                       "{'role':'user','content':'hi'}]}");
    expect_native("{" M "'system':[]," HI "}", HEAD NHI "}");
}

static void req_blocks(void **state)
{
    (void)state;
    /* text joined with \n, images in order */
    expect_native("{" M "'messages':[{'role':'user','content':[{'type':'text','text':'a'},"
                  "{'type':'image','source':{'type':'base64','media_type':'image/png',"
                  "'data':'QUJD'}},{'type':'text','text':'b'}]}]}",
                  HEAD "'messages':[{'role':'user','content':'a\\nb','images':['QUJD']}]}");
    /* an empty block list is still a turn */
    expect_native("{" M "'messages':[{'role':'user','content':[]}]}",
                  HEAD "'messages':[{'role':'user','content':''}]}");
}

static void req_tool_round_trip(void **state)
{
    (void)state;
    expect_native(
        "{" M "'messages':[{'role':'user','content':'weather?'},"
        "{'role':'assistant','content':[{'type':'thinking','thinking':'hm','signature':'sig'},"
        "{'type':'redacted_thinking','data':'xx'},{'type':'text','text':'Checking.'},"
        "{'type':'tool_use','id':'toolu_1','name':'get_weather','input':{'city':'Paris'}},"
        "{'type':'tool_use','id':'toolu_2','name':'now','input':{}}]},"
        "{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_1','content':"
        "'18C'},{'type':'tool_result','tool_use_id':'toolu_2','is_error':true,'content':"
        "[{'type':'text','text':'no'},{'type':'text','text':'clock'}]},"
        "{'type':'text','text':'thanks'}]}]}",
        HEAD "'messages':[{'role':'user','content':'weather?'},"
             "{'role':'assistant','content':'Checking.','thinking':'hm','tool_calls':["
             "{'id':'toolu_1','function':{'name':'get_weather','arguments':{'city':'Paris'}}},"
             "{'id':'toolu_2','function':{'name':'now','arguments':{}}}]},"
             "{'role':'tool','content':'18C','tool_call_id':'toolu_1','tool_name':'get_weather'},"
             "{'role':'tool','content':'no\\nclock','tool_call_id':'toolu_2','tool_name':'now'},"
             "{'role':'user','content':'thanks'}]}");
    /* a turn of results only adds no empty user message; an unknown id has no name */
    expect_native("{" M "'messages':[{'role':'user','content':[{'type':'tool_result',"
                  "'tool_use_id':'t9'}]}]}",
                  HEAD "'messages':[{'role':'tool','content':'','tool_call_id':'t9'}]}");
}

#define WEATHER                                                                                    \
    "{'name':'get_weather','description':'Weather','input_schema':{'type':'object'},"              \
    "'cache_control':{'type':'ephemeral'}}"
#define NWEATHER                                                                                   \
    "{'type':'function','function':{'name':'get_weather','description':'Weather',"                 \
    "'parameters':{'type':'object'}}}"

static void req_tools(void **state)
{
    (void)state;
    expect_native("{" M HI ",'tools':[" WEATHER ",{'type':'custom','name':'b'},"
                  "{'type':'web_search_20250305','name':'web_search','max_uses':3},"
                  "{'type':'bash_20250124','name':'bash'}],'tool_choice':{'type':'auto'}}",
                  HEAD NHI ",'tools':[" NWEATHER ",{'type':'function','function':{'name':'b'}}]}");
    /* any: all kept (it cannot be enforced) */
    expect_native("{" M HI ",'tools':[" WEATHER "],'tool_choice':{'type':'any',"
                  "'disable_parallel_tool_use':true}}",
                  HEAD NHI ",'tools':[" NWEATHER "]}");
    /* none: no tools */
    expect_native("{" M HI ",'tools':[" WEATHER "],'tool_choice':{'type':'none'}}", HEAD NHI "}");
    /* tool: only that one */
    expect_native("{" M HI ",'tools':[{'name':'a'}," WEATHER "],'tool_choice':{'type':'tool',"
                  "'name':'get_weather'}}",
                  HEAD NHI ",'tools':[" NWEATHER "]}");
    /* only server tools: no tools at all */
    expect_native("{" M HI ",'tools':[{'type':'web_search_20250305','name':'web_search'}]}",
                  HEAD NHI "}");
}

static void req_thinking(void **state)
{
    (void)state;
    expect_native("{" M HI ",'thinking':{'type':'enabled','budget_tokens':2048}}",
                  HEAD NHI ",'think':true}");
    expect_native("{" M HI ",'thinking':{'type':'adaptive'}}", HEAD NHI ",'think':true}");
    expect_native("{" M HI ",'thinking':{'type':'disabled'}}", HEAD NHI ",'think':false}");
}

static void req_format(void **state)
{
    (void)state;
    expect_native("{" M HI ",'output_config':{'effort':'high','format':{'type':'json_schema',"
                  "'schema':{'type':'object'}}}}",
                  HEAD NHI ",'format':{'type':'object'}}");
    expect_native("{" M HI ",'output_format':{'type':'json_schema','schema':{'type':'array'}}}",
                  HEAD NHI ",'format':{'type':'array'}}");
    expect_native("{" M HI ",'output_config':{'effort':'low'}}", HEAD NHI "}");
    expect_reject("{" M HI ",'output_config':{'format':{'type':'json'}}}",
                  "output_config.format.type", NULL);
    expect_reject("{" M HI ",'output_format':{'type':'json_schema'}}", "output_format.schema",
                  NULL);
    expect_reject("{" M HI ",'output_config':1}", "output_config", NULL);
}

static void req_rejected(void **state)
{
    (void)state;
    expect_reject("", "", "empty");
    expect_reject("{'messages':[]", "", "parse");
    expect_reject("{" HI "}", "model", NULL);
    expect_reject("{'model':'m'}", "messages", NULL);
    expect_reject("{" M "'messages':[]}", "messages", "at least one");
    expect_reject("{" M "'messages':[{'role':'system','content':'x'}]}", "messages[0].role",
                  "top-level 'system'");
    expect_reject("{" M "'messages':[{'role':'user'}]}", "messages[0].content", NULL);
    expect_reject("{" M "'messages':[{'role':'user','content':5}]}", "messages[0].content",
                  "number");
    expect_reject("{" M "'messages':[{'role':'user','content':[{'type':'document'}]}]}",
                  "messages[0].content[0].type", "document");
    expect_reject("{" M "'messages':[{'role':'user','content':[{'type':'tool_use','id':'a',"
                  "'name':'b'}]}]}",
                  "messages[0].content[0].type", NULL);
    expect_reject("{" M "'messages':[{'role':'assistant','content':[{'type':'tool_result',"
                  "'tool_use_id':'a'}]}]}",
                  "messages[0].content[0].type", NULL);
    expect_reject("{" M "'messages':[{'role':'user','content':[{'type':'image','source':"
                  "{'type':'url','url':'https://x/y.png'}}]}]}",
                  "messages[0].content[0].source.type", "base64");
    expect_reject("{" M "'messages':[{'role':'user','content':[{'type':'image','source':"
                  "{'type':'base64','media_type':'text/plain','data':'QQ=='}}]}]}",
                  "messages[0].content[0].source.media_type", NULL);
    expect_reject("{" M "'messages':[{'role':'user','content':[{'type':'image','source':"
                  "{'type':'base64','data':'not base64!'}}]}]}",
                  "messages[0].content[0].source.data", "base64");
    expect_reject("{" M "'messages':[{'role':'assistant','content':[{'type':'tool_use','id':'a',"
                  "'name':'b','input':'{}'}]}]}",
                  "messages[0].content[0].input", "object");
    expect_reject("{" M "'messages':[{'role':'user','content':[{'type':'tool_result'}]}]}",
                  "messages[0].content[0].tool_use_id", NULL);
    expect_reject("{" M "'messages':[{'role':'user','content':[{'type':'tool_result',"
                  "'tool_use_id':'a','content':[{'type':'document'}]}]}]}",
                  "messages[0].content[0].content[0].type", NULL);
    expect_reject("{" M HI ",'system':[{'type':'image'}]}", "system[0].type", NULL);
    expect_reject("{" M HI ",'system':3}", "system", NULL);
    expect_reject("{" M HI ",'stream':'yes'}", "stream", NULL);
    expect_reject("{" M HI ",'max_tokens':0}", "max_tokens", NULL);
    expect_reject("{" M HI ",'max_tokens':1.5}", "max_tokens", NULL);
    expect_reject("{" M HI ",'temperature':'hot'}", "temperature", NULL);
    expect_reject("{" M HI ",'top_p':2}", "top_p", NULL);
    expect_reject("{" M HI ",'top_k':-1}", "top_k", NULL);
    expect_reject("{" M HI ",'stop_sequences':'END'}", "stop_sequences", NULL);
    expect_reject("{" M HI ",'stop_sequences':[1]}", "stop_sequences[0]", NULL);
    expect_reject("{" M HI ",'tools':{}}", "tools", NULL);
    expect_reject("{" M HI ",'tools':[{'description':'x'}]}", "tools[0].name", NULL);
    expect_reject("{" M HI ",'tools':[{'name':'a','input_schema':[]}]}", "tools[0].input_schema",
                  NULL);
    expect_reject("{" M HI ",'tools':[" WEATHER "],'tool_choice':'auto'}", "tool_choice", NULL);
    expect_reject("{" M HI ",'tools':[" WEATHER "],'tool_choice':{'type':'required'}}",
                  "tool_choice.type", NULL);
    expect_reject("{" M HI ",'tools':[" WEATHER "],'tool_choice':{'type':'tool','name':'x'}}",
                  "tool_choice.name", "No tool named 'x'");
    expect_reject("{" M HI ",'thinking':true}", "thinking", NULL);
    expect_reject("{" M HI ",'thinking':{'type':'on'}}", "thinking.type", NULL);
}

static void req_out_of_memory(void **state)
{
    (void)state;
    const char *b =
        q("{" M "'max_tokens':9,'stop_sequences':['a'],'system':[{'type':'text','text':'s'},"
          "{'type':'text','text':'t'}],'thinking':{'type':'enabled'},'tools':[" WEATHER "],"
          "'messages':[{'role':'user','content':[{'type':'text','text':'a'},{'type':'text',"
          "'text':'b'},{'type':'image','source':{'type':'base64','data':'QUJD'}}]},"
          "{'role':'assistant','content':[{'type':'tool_use','id':'t','name':'get_weather',"
          "'input':{}}]},{'role':'user','content':[{'type':'tool_result','tool_use_id':'t',"
          "'content':[{'type':'text','text':'x'},{'type':'text','text':'y'}]}]}]}");
    cJSON_Hooks hooks = {failing_malloc, free};
    bool succeeded = false;
    for (fail_at = 1; !succeeded && fail_at < 5000; fail_at++) {
        struct messages_req r;
        struct apierr err;
        struct buf out;
        buf_init(&out, 1 << 20);
        allocs = 0;
        cJSON_InitHooks(&hooks);
        if (messages_req_parse(&r, b, strlen(b), &err) == 0) {
            if (messages_req_to_ollama(&r, "x", NULL, &out, &err) == 0)
                succeeded = true;
            else
                assert_int_equal(err.status, 500);
            messages_req_free(&r);
        } else {
            assert_true(err.status == 500 || err.status == 400);
        }
        cJSON_InitHooks(NULL);
        buf_free(&out);
    }
    assert_true(succeeded);
}

/* ------------------------------------------------------------------------ */
/* Whole messages                                                            */

static const char *complete(const char *native, long *pt, long *ct, struct apierr *err)
{
    static char result[16384];
    struct buf out;
    buf_init(&out, 1 << 20);
    const char *b = q(native);
    int rc = messages_complete(b, strlen(b), "claude-x", "msg_t", "gpu1", &out, pt, ct, err);
    if (rc < 0) {
        assert_int_equal(out.len, 0);
        buf_free(&out);
        return NULL;
    }
    assert_true(out.len < sizeof result);
    memcpy(result, norm(out.p), strlen(norm(out.p)) + 1);
    buf_free(&out);
    return result;
}

#define MSG(content, reason, in, out)                                                              \
    "{'id':'msg_t','type':'message','role':'assistant','model':'claude-x','content':[" content     \
    "],'stop_reason':'" reason "','stop_sequence':null,'usage':{'input_tokens':" #in               \
    ",'output_tokens':" #out "}}"

static void answer_text(void **state)
{
    (void)state;
    long pt = -1, ct = -1;
    struct apierr err;
    assert_string_equal(
        complete("{'model':'m','message':{'role':'assistant','content':'Hi \\'there\\''},"
                 "'done':true,'done_reason':'stop','prompt_eval_count':12,'eval_count':3}",
                 &pt, &ct, &err),
        q(MSG("{'type':'text','text':'Hi \\'there\\''}", "end_turn", 12, 3)));
    assert_int_equal(pt, 12);
    assert_int_equal(ct, 3);
    /* no text at all: one empty text block; length -> max_tokens */
    assert_string_equal(complete("{'message':{'role':'assistant','content':''},'done':true,"
                                 "'done_reason':'length','eval_count':1}",
                                 NULL, NULL, &err),
                        q(MSG("{'type':'text','text':''}", "max_tokens", 0, 1)));
}

static void answer_thinking_and_tools(void **state)
{
    (void)state;
    struct apierr err;
    assert_string_equal(
        complete("{'message':{'role':'assistant','content':'','thinking':'hm','tool_calls':["
                 "{'id':'call_1','function':{'index':0,'name':'f','arguments':{'a':[1,2]}}},"
                 "{'function':{'name':'g','arguments':'{\\'b\\':true}'}},"
                 "{'function':{'name':'h'}}]},'done':true,'done_reason':'stop'}",
                 NULL, NULL, &err),
        q(MSG("{'type':'thinking','thinking':'hm','signature':''},"
              "{'type':'tool_use','id':'toolu_X','name':'f','input':{'a':[1,2]}},"
              "{'type':'tool_use','id':'toolu_X','name':'g','input':{'b':true}},"
              "{'type':'tool_use','id':'toolu_X','name':'h','input':{}}",
              "tool_use", 0, 0)));
    assert_string_equal(
        complete("{'message':{'role':'assistant','content':'ok','thinking':'t'},'done':true}", NULL,
                 NULL, &err),
        q(MSG("{'type':'thinking','thinking':'t','signature':''},{'type':'text','text':'ok'}",
              "end_turn", 0, 0)));
}

static void answer_errors(void **state)
{
    (void)state;
    struct apierr err;
    assert_null(complete("{'error':'model crashed'}", NULL, NULL, &err));
    assert_int_equal(err.status, 502);
    assert_non_null(strstr(err.message, "model crashed"));
    assert_null(complete("not json", NULL, NULL, &err));
    assert_int_equal(err.status, 502);
    assert_null(complete("{'message':{'content':5},'done':true}", NULL, NULL, &err));
    assert_int_equal(err.status, 502);
    assert_null(
        complete("{'message':{'tool_calls':[{'function':{}}]},'done':true}", NULL, NULL, &err));
    assert_int_equal(err.status, 502);
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */

struct run {
    struct messages_stream s;
    struct buf out;
    struct apierr err;
    int rc;
};

static void run_lines(struct run *r, const char *const *lines)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->out, 1 << 20);
    messages_stream_init(&r->s, "msg_t", "claude-x");
    r->s.backend = "gpu1";
    r->rc = DIALECT_MORE;
    for (int i = 0; lines[i] && r->rc == DIALECT_MORE; i++) {
        const char *l = q(lines[i]);
        r->rc = messages_stream_line(&r->s, l, strlen(l), &r->out, &r->err);
    }
}

static void run_free(struct run *r)
{
    messages_stream_free(&r->s);
    buf_free(&r->out);
}

#define EV(name, rest) "event: " name "\ndata: {'type':'" name "'" rest "}\n\n"
#define START                                                                                      \
    EV("message_start", ",'message':{'id':'msg_t','type':'message','role':'assistant','model':"    \
                        "'claude-x','content':[],'stop_reason':null,'stop_sequence':null,"         \
                        "'usage':{'input_tokens':0,'output_tokens':0}}")
#define BSTART(i, block) EV("content_block_start", ",'index':" #i ",'content_block':" block)
#define TEXT_START(i) BSTART(i, "{'type':'text','text':''}")
#define THINK_START(i) BSTART(i, "{'type':'thinking','thinking':'','signature':''}")
#define DELTA(i, d) EV("content_block_delta", ",'index':" #i ",'delta':" d)
#define TEXT(i, t) DELTA(i, "{'type':'text_delta','text':'" t "'}")
#define THINK(i, t) DELTA(i, "{'type':'thinking_delta','thinking':'" t "'}")
#define BSTOP(i) EV("content_block_stop", ",'index':" #i)
#define FINISH(reason, in, out)                                                                    \
    EV("message_delta", ",'delta':{'stop_reason':'" reason "','stop_sequence':null},'usage':"      \
                        "{'input_tokens':" #in ",'output_tokens':" #out "}")                       \
    EV("message_stop", "")

#define L_TEXT(t) "{'model':'m','message':{'role':'assistant','content':'" t "'},'done':false}"
#define L_THINK(t)                                                                                 \
    "{'model':'m','message':{'role':'assistant','content':'','thinking':'" t "'},'done':false}"
#define L_DONE(extra)                                                                              \
    "{'model':'m','message':{'role':'assistant','content':''},'done':true" extra "}"

static void expect_stream(const char *const *lines, const char *expected)
{
    struct run r;
    run_lines(&r, lines);
    assert_int_equal(r.rc, DIALECT_DONE);
    assert_true(r.s.done);
    assert_string_equal(norm(r.out.p), q(expected));
    run_free(&r);
}

static void stream_text(void **state)
{
    (void)state;
    const char *lines[] = {L_TEXT("Hel"), L_TEXT("lo"),
                           L_DONE(",'done_reason':'stop','prompt_eval_count':26,'eval_count':2"),
                           NULL};
    expect_stream(lines, START TEXT_START(0) TEXT(0, "Hel") TEXT(0, "lo") BSTOP(0)
                             FINISH("end_turn", 26, 2));
    struct run r;
    run_lines(&r, lines);
    assert_int_equal(r.s.prompt_tokens, 26);
    assert_int_equal(r.s.completion_tokens, 2);
    /* after the end: nothing more, DONE again */
    size_t len = r.out.len;
    const char *more = q(L_TEXT("x"));
    assert_int_equal(messages_stream_line(&r.s, more, strlen(more), &r.out, &r.err), DIALECT_DONE);
    assert_int_equal(r.out.len, len);
    assert_int_equal(messages_stream_eof(&r.s, &r.err), DIALECT_DONE);
    run_free(&r);
}

static void stream_empty_answer(void **state)
{
    (void)state;
    /* empty lines write nothing; the answer still has one (empty) text block */
    const char *lines[] = {L_TEXT(""), "{'done':false}", L_DONE(",'done_reason':'length'"), NULL};
    expect_stream(lines, START TEXT_START(0) BSTOP(0) FINISH("max_tokens", 0, 0));
}

static void stream_thinking_then_text(void **state)
{
    (void)state;
    const char *lines[] = {
        L_THINK("Let me"),
        L_THINK(" think"),
        "{'message':{'role':'assistant','content':'4','thinking':'.'},'done':false}",
        L_TEXT(" ok"),
        L_DONE(",'eval_count':5"),
        NULL};
    expect_stream(lines,
                  START THINK_START(0) THINK(0, "Let me") THINK(0, " think") THINK(0, ".") BSTOP(0)
                      TEXT_START(1) TEXT(1, "4") TEXT(1, " ok") BSTOP(1) FINISH("end_turn", 0, 5));
}

/* thinking after text opens a new block: blocks follow the native order */
static void stream_text_then_thinking(void **state)
{
    (void)state;
    const char *lines[] = {L_TEXT("a"), L_THINK("b"), L_TEXT("c"), L_DONE(""), NULL};
    expect_stream(lines, START TEXT_START(0) TEXT(0, "a") BSTOP(0) THINK_START(1) THINK(1, "b")
                             BSTOP(1) TEXT_START(2) TEXT(2, "c") BSTOP(2) FINISH("end_turn", 0, 0));
}

#define TOOL_START(i, name)                                                                        \
    BSTART(i, "{'type':'tool_use','id':'toolu_X','name':'" name "','input':{}}")
#define JSON(i, j) DELTA(i, "{'type':'input_json_delta','partial_json':'" j "'}")

static void stream_tool_calls(void **state)
{
    (void)state;
    const char *lines[] = {
        L_TEXT("Checking."),
        "{'message':{'role':'assistant','content':'','tool_calls':[{'id':'call_1','function':"
        "{'index':0,'name':'get_weather','arguments':{'city':'Paris'}}}]},'done':false}",
        "{'message':{'role':'assistant','content':'','tool_calls':[{'function':{'name':'now',"
        "'arguments':{}}}]},'done':true,'done_reason':'stop','prompt_eval_count':9,"
        "'eval_count':4}",
        NULL};
    expect_stream(lines,
                  START TEXT_START(0) TEXT(0, "Checking.") BSTOP(0) TOOL_START(1, "get_weather")
                      JSON(1, "{\\'city\\':\\'Paris\\'}") BSTOP(1) TOOL_START(2, "now")
                          JSON(2, "{}") BSTOP(2) FINISH("tool_use", 9, 4));
}

/* a done line that carries the last text, as some Ollama versions send it */
static void stream_text_on_done_line(void **state)
{
    (void)state;
    const char *lines[] = {"{'message':{'role':'assistant','content':'all'},'done':true}", NULL};
    expect_stream(lines, START TEXT_START(0) TEXT(0, "all") BSTOP(0) FINISH("end_turn", 0, 0));
}

static void stream_failures(void **state)
{
    (void)state;
    /* an error line from Ollama: nothing written for it, 502, then fails again */
    const char *lines[] = {L_TEXT("a"), "{'error':'runner crashed'}", NULL};
    struct run r;
    run_lines(&r, lines);
    assert_int_equal(r.rc, DIALECT_FAIL);
    assert_int_equal(r.err.status, 502);
    assert_non_null(strstr(r.err.message, "runner crashed"));
    assert_string_equal(r.out.p, q(START TEXT_START(0) TEXT(0, "a")));
    const char *more = q(L_TEXT("b"));
    assert_int_equal(messages_stream_line(&r.s, more, strlen(more), &r.out, &r.err), DIALECT_FAIL);
    run_free(&r);

    /* the backend hangs up before its done line */
    const char *cut[] = {L_TEXT("a"), NULL};
    run_lines(&r, cut);
    assert_int_equal(r.rc, DIALECT_MORE);
    assert_int_equal(messages_stream_eof(&r.s, &r.err), DIALECT_FAIL);
    assert_int_equal(r.err.status, 502);
    run_free(&r);

    /* a line that does not fit: nothing of it is written, 500 */
    memset(&r, 0, sizeof r);
    buf_init(&r.out, 40);
    messages_stream_init(&r.s, "msg_t", "claude-x");
    const char *l = q(L_TEXT("a"));
    assert_int_equal(messages_stream_line(&r.s, l, strlen(l), &r.out, &r.err), DIALECT_FAIL);
    assert_int_equal(r.err.status, 500);
    assert_int_equal(r.out.len, 0);
    run_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Errors and keep-alives                                                    */

static void error_shapes(void **state)
{
    (void)state;
    static const struct {
        int status, sent;
        const char *type;
    } map[] = {
        {400, 400, "invalid_request_error"},
        {401, 401, "authentication_error"},
        {403, 403, "permission_error"},
        {404, 404, "not_found_error"},
        {405, 405, "invalid_request_error"},
        {413, 413, "request_too_large"},
        {429, 429, "rate_limit_error"},
        {500, 500, "api_error"},
        {502, 502, "api_error"},
        {503, 529, "overloaded_error"},
        {504, 504, "api_error"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        struct apierr e;
        apierr_set(&e, map[i].status, APIERR_API, "x", NULL, "went \"wrong\"");
        assert_string_equal(messages_error_type(&e), map[i].type);
        assert_int_equal(errshape_anthropic.status(&e), map[i].sent);
        char want[256];
        snprintf(want, sizeof want,
                 "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"went "
                 "\\\"wrong\\\"\"}}",
                 map[i].type);
        struct buf b;
        buf_init(&b, 4096);
        assert_int_equal(errshape_anthropic.body(&b, &e), 0);
        assert_string_equal(b.p, want);
        buf_reset(&b);
        assert_int_equal(errshape_anthropic.frame(&b, &e), 0);
        char frame[300];
        snprintf(frame, sizeof frame, "event: error\ndata: %s\n\n", want);
        assert_string_equal(b.p, frame);
        buf_free(&b);
    }
}

static void ping(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 64);
    assert_int_equal(messages_ping(&b), 0);
    assert_string_equal(b.p, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(req_minimal),
        cmocka_unit_test(req_options),
        cmocka_unit_test(req_ignored_fields),
        cmocka_unit_test(req_system),
        cmocka_unit_test(req_blocks),
        cmocka_unit_test(req_tool_round_trip),
        cmocka_unit_test(req_tools),
        cmocka_unit_test(req_thinking),
        cmocka_unit_test(req_format),
        cmocka_unit_test(req_rejected),
        cmocka_unit_test(req_out_of_memory),
        cmocka_unit_test(answer_text),
        cmocka_unit_test(answer_thinking_and_tools),
        cmocka_unit_test(answer_errors),
        cmocka_unit_test(stream_text),
        cmocka_unit_test(stream_empty_answer),
        cmocka_unit_test(stream_thinking_then_text),
        cmocka_unit_test(stream_text_then_thinking),
        cmocka_unit_test(stream_tool_calls),
        cmocka_unit_test(stream_text_on_done_line),
        cmocka_unit_test(stream_failures),
        cmocka_unit_test(error_shapes),
        cmocka_unit_test(ping),
    };
    return cmocka_run_group_tests(tests, setup_sodium, NULL);
}
