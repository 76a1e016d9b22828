/*
 * Unit tests for gateway/chat.c: request translation, stream translation,
 * non-stream translation and upstream error mapping. Each test pins exact
 * output. "PROTOCOL §5.N" names the pitfall (PROTOCOL.md section 5) a test
 * guards.
 *
 * JSON in this file is written with single quotes for readability; q()
 * turns them into double quotes (no test text needs a real apostrophe).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "chat.h"
#include "rand.h"
#include "jarena.h"
#include "sse.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */

static char qbufs[16][16384];
static unsigned qnext;

/* 'x' -> "x" (a rotating set of static buffers) */
static const char *q(const char *s)
{
    char *b = qbufs[qnext++ % 16];
    size_t n = strlen(s);
    assert_true(n < sizeof qbufs[0]);
    for (size_t i = 0; i <= n; i++)
        b[i] = s[i] == '\'' ? '"' : s[i];
    return b;
}

/* Parse + translate; returns the native body (static buffer). */
static const char *native_with(const char *body, const char *alias_json)
{
    static char result[16384];
    struct chat_req r;
    struct apierr err = {0};
    struct buf out;
    cJSON *alias = alias_json ? cJSON_Parse(q(alias_json)) : NULL;
    const char *b = q(body);
    buf_init(&out, 1 << 20);
    int rc = chat_req_parse(&r, b, strlen(b), &err);
    if (rc != 0)
        fail_msg("unexpected rejection: %d %s (%s)", err.status, err.message, err.param);
    assert_int_equal(chat_req_to_ollama(&r, "llama3.2", alias, &out, &err), 0);
    assert_true(out.len < sizeof result);
    memcpy(result, out.p, out.len + 1);
    /* what we send must be one valid JSON object */
    cJSON *check = cJSON_Parse(result);
    assert_non_null(check);
    assert_true(cJSON_IsObject(check));
    cJSON_Delete(check);
    chat_req_free(&r);
    cJSON_Delete(alias);
    buf_free(&out);
    return result;
}

static const char *native(const char *body)
{
    return native_with(body, NULL);
}

static void expect_native(const char *body, const char *expected)
{
    assert_string_equal(native(body), q(expected));
}

/* A rejected request: status, param ("" = null) and a piece of the message. */
static void expect_reject(const char *body, int status, const char *param, const char *msg_part)
{
    struct chat_req r;
    struct apierr err = {0};
    const char *b = q(body);
    assert_int_equal(chat_req_parse(&r, b, strlen(b), &err), -1);
    assert_null(r.root);
    assert_null(r.native);
    assert_int_equal(err.status, status);
    assert_string_equal(err.type, APIERR_INVALID);
    assert_string_equal(err.param, param);
    if (msg_part && !strstr(err.message, msg_part))
        fail_msg("message '%s' lacks '%s'", err.message, msg_part);
}

#define USER_HI "'messages':[{'role':'user','content':'hi'}]"
#define NATIVE_HI "'messages':[{'role':'user','content':'hi'}]"

/* Every SSE event in out must be "data: <JSON object>" or "data: [DONE]". */
static void check_frames(const char *p, size_t len)
{
    const char *end = p + len;
    while (p < end) {
        const char *sep = strstr(p, "\n\n");
        assert_non_null(sep);
        assert_true(sep < end);
        assert_memory_equal(p, "data: ", 6);
        const char *payload = p + 6;
        size_t n = (size_t)(sep - payload);
        assert_null(memchr(payload, '\n', n));
        if (!(n == 6 && memcmp(payload, "[DONE]", 6) == 0)) {
            cJSON *j = cJSON_ParseWithLength(payload, n);
            assert_non_null(j);
            assert_true(cJSON_IsObject(j));
            cJSON_Delete(j);
        }
        p = sep + 2;
    }
}

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
/* Requests: the basics                                                      */

/* PROTOCOL §5.6, §5.8: nothing injected, "stream" always explicit */
static void req_minimal_injects_nothing(void **state)
{
    (void)state;
    expect_native("{'model':'gpt-4o'," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI "}");
}

/* PROTOCOL §5.8 */
static void req_stream_true_is_explicit(void **state)
{
    (void)state;
    expect_native("{'model':'m','stream':true," USER_HI "}",
                  "{'model':'llama3.2','stream':true," NATIVE_HI "}");
}

static void req_fields_of_struct(void **state)
{
    (void)state;
    struct chat_req r;
    struct apierr err;
    const char *b = q("{'model':'gpt-4o','stream':true,'stream_options':{'include_usage':true},"
                      "'max_tokens':7,'tools':[{'type':'function','function':{'name':'f'}}],"
                      "'logprobs':true," USER_HI "}");
    assert_int_equal(chat_req_parse(&r, b, strlen(b), &err), 0);
    assert_string_equal(r.model, "gpt-4o");
    assert_true(r.stream);
    assert_true(r.include_usage);
    assert_true(r.has_tools);
    assert_true(r.logprobs);
    assert_int_equal(r.max_tokens, 7);
    chat_req_free(&r);
    chat_req_free(&r); /* twice is fine */

    b = q("{'model':'x'," USER_HI "}");
    assert_int_equal(chat_req_parse(&r, b, strlen(b), &err), 0);
    assert_false(r.stream);
    assert_false(r.include_usage);
    assert_false(r.has_tools);
    assert_int_equal(r.max_tokens, -1);
    chat_req_free(&r);
}

/* PROTOCOL §5.13: include_usage only counts on a stream */
static void req_include_usage_needs_stream(void **state)
{
    (void)state;
    struct chat_req r;
    struct apierr err;
    const char *b = q("{'model':'x','stream_options':{'include_usage':true}," USER_HI "}");
    assert_int_equal(chat_req_parse(&r, b, strlen(b), &err), 0);
    assert_false(r.include_usage);
    chat_req_free(&r);
}

/* Unknown fields are dropped, never forwarded (not even native-looking ones). */
static void req_unknown_fields_not_forwarded(void **state)
{
    (void)state;
    expect_native("{'model':'m','user':'u1','metadata':{'a':'b'},'store':true,"
                  "'parallel_tool_calls':false,'logit_bias':{'50256':-100},'service_tier':'auto',"
                  "'keep_alive':0,'options':{'num_ctx':99},'format':'json','images':['x'],"
                  "'messages':[{'role':'user','content':'hi','name':'bob','extra':1}]}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI "}");
}

/* null is the same as absent */
static void req_nulls_are_absent(void **state)
{
    (void)state;
    expect_native("{'model':'m','temperature':null,'top_p':null,'stop':null,'seed':null,"
                  "'max_tokens':null,'n':null,'stream':null,'stream_options':null,"
                  "'response_format':null,'tools':null,'tool_choice':null,"
                  "'reasoning_effort':null,'logprobs':null," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI "}");
}

static void req_strings_survive_escaping(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"a\\\"b\\\\c\\n\\u0001\\u00e9\\ud83d\\ude00/\"}]}";
    const char *out = native(body);
    assert_non_null(strstr(out, "\"content\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\xf0\x9f\x98\x80/\""));
}

/* ------------------------------------------------------------------------ */
/* Requests: wrong types name the field                                      */

static void req_rejects_bad_bodies(void **state)
{
    (void)state;
    expect_reject("", 400, "", "empty");
    expect_reject("{'model':", 400, "", "parse");
    expect_reject("{'model':'m'} x", 400, "", "parse");
    expect_reject("[1,2]", 400, "", "JSON object");
    expect_reject("'text'", 400, "", "JSON object");
}

static void req_rejects_bad_model(void **state)
{
    (void)state;
    expect_reject("{" USER_HI "}", 400, "model", "Missing required parameter");
    expect_reject("{'model':''," USER_HI "}", 400, "model", "empty");
    expect_reject("{'model':5," USER_HI "}", 400, "model", "expected a string, but got a number");
}

/* DESIGN.md: "temperature": "hot" is our own 400 naming the field */
static void req_rejects_temperature_hot(void **state)
{
    (void)state;
    expect_reject("{'model':'m','temperature':'hot'," USER_HI "}", 400, "temperature",
                  "expected a number, but got a string");
    expect_reject("{'model':'m','temperature':-1," USER_HI "}", 400, "temperature", "minimum");
    expect_reject("{'model':'m','temperature':1e999," USER_HI "}", 400, "temperature", NULL);
    expect_reject("{'model':'m','top_p':1.5," USER_HI "}", 400, "top_p", "range");
    expect_reject("{'model':'m','presence_penalty':true," USER_HI "}", 400, "presence_penalty",
                  "boolean");
    expect_reject("{'model':'m','frequency_penalty':[1]," USER_HI "}", 400, "frequency_penalty",
                  "array");
}

static void req_rejects_bad_integers(void **state)
{
    (void)state;
    expect_reject("{'model':'m','seed':1.5," USER_HI "}", 400, "seed", "integer");
    expect_reject("{'model':'m','seed':'1'," USER_HI "}", 400, "seed", "integer");
    expect_reject("{'model':'m','max_tokens':0," USER_HI "}", 400, "max_tokens", "range");
    expect_reject("{'model':'m','max_tokens':2.5," USER_HI "}", 400, "max_tokens", "integer");
    expect_reject("{'model':'m','max_completion_tokens':-3," USER_HI "}", 400,
                  "max_completion_tokens", "range");
    expect_reject("{'model':'m','top_k':-1," USER_HI "}", 400, "top_k", NULL);
}

static void req_rejects_bad_flags(void **state)
{
    (void)state;
    expect_reject("{'model':'m','stream':'yes'," USER_HI "}", 400, "stream", "boolean");
    expect_reject("{'model':'m','stream':true,'stream_options':[]," USER_HI "}", 400,
                  "stream_options", "object");
    expect_reject("{'model':'m','stream':true,'stream_options':{'include_usage':1}," USER_HI "}",
                  400, "stream_options.include_usage", "boolean");
    expect_reject("{'model':'m','logprobs':1," USER_HI "}", 400, "logprobs", "boolean");
}

/* PROTOCOL §5.15: n > 1 is a 400, not a silent single choice */
static void req_n(void **state)
{
    (void)state;
    expect_native("{'model':'m','n':1," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI "}");
    expect_reject("{'model':'m','n':2," USER_HI "}", 400, "n", "exactly one choice");
    expect_reject("{'model':'m','n':0," USER_HI "}", 400, "n", "at least 1");
    expect_reject("{'model':'m','n':'2'," USER_HI "}", 400, "n", "integer");
}

static void req_rejects_legacy_functions(void **state)
{
    (void)state;
    expect_reject("{'model':'m','functions':[{'name':'f'}]," USER_HI "}", 400, "functions",
                  "tools");
}

/* ------------------------------------------------------------------------ */
/* Requests: sampling options                                                */

/* PROTOCOL §5.6 */
static void req_sampling_options(void **state)
{
    (void)state;
    expect_native("{'model':'m','temperature':0.2,'top_p':0.9,'presence_penalty':-0.5,"
                  "'frequency_penalty':1,'seed':42,'max_tokens':100,'stop':'END'," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI ",'options':{'temperature':0.2,"
                  "'top_p':0.9,'presence_penalty':-0.5,'frequency_penalty':1,'seed':42,"
                  "'num_predict':100,'stop':['END']}}");
}

/* PROTOCOL §5.6: max_completion_tokens is read (Ollama's /v1 ignores it) and wins */
static void req_max_completion_tokens_wins(void **state)
{
    (void)state;
    expect_native("{'model':'m','max_completion_tokens':64," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI ",'options':{'num_predict':64}}");
    expect_native("{'model':'m','max_tokens':10,'max_completion_tokens':64," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI ",'options':{'num_predict':64}}");
}

static void req_stop_array(void **state)
{
    (void)state;
    expect_native("{'model':'m','stop':['a','b']," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI ",'options':{'stop':['a','b']}}");
    expect_native("{'model':'m','stop':[]," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI "}");
    expect_reject("{'model':'m','stop':['a',3]," USER_HI "}", 400, "stop[1]", "string");
    expect_reject("{'model':'m','stop':7," USER_HI "}", 400, "stop", NULL);
}

static void req_ollama_sampling_extensions(void **state)
{
    (void)state;
    expect_native("{'model':'m','top_k':40,'min_p':0.05,'repetition_penalty':1.1," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI
                  ",'options':{'min_p':0.05,'repeat_penalty':1.1,'top_k':40}}");
    expect_native("{'model':'m','repeat_penalty':1.2," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI
                  ",'options':{'repeat_penalty':1.2}}");
    expect_reject("{'model':'m','repeat_penalty':0," USER_HI "}", 400, "repeat_penalty",
                  "greater than 0");
}

/* PROTOCOL §5.6, §5.19: alias options (e.g. num_ctx) under client options */
static void req_alias_options_merge(void **state)
{
    (void)state;
    assert_string_equal(
        native_with("{'model':'m'," USER_HI "}", "{'num_ctx':8192}"),
        q("{'model':'llama3.2','stream':false," NATIVE_HI ",'options':{'num_ctx':8192}}"));
    assert_string_equal(native_with("{'model':'m','temperature':0.7," USER_HI "}",
                                    "{'num_ctx':8192,'temperature':0.1,'stop':['x']}"),
                        q("{'model':'llama3.2','stream':false," NATIVE_HI
                          ",'options':{'num_ctx':8192,'stop':['x'],'temperature':0.7}}"));
    assert_string_equal(native_with("{'model':'m'," USER_HI "}", "{}"),
                        q("{'model':'llama3.2','stream':false," NATIVE_HI "}"));
}

/* ------------------------------------------------------------------------ */
/* Requests: messages                                                        */

static void req_rejects_bad_messages(void **state)
{
    (void)state;
    expect_reject("{'model':'m'}", 400, "messages", "Missing required parameter");
    expect_reject("{'model':'m','messages':3}", 400, "messages", "expected an array");
    expect_reject("{'model':'m','messages':[]}", 400, "messages", "at least one");
    expect_reject("{'model':'m','messages':[{'role':'user','content':'a'},'hi']}", 400,
                  "messages[1]", "expected an object");
    expect_reject("{'model':'m','messages':[{'content':'a'}]}", 400, "messages[0].role", "Missing");
    expect_reject("{'model':'m','messages':[{'role':'root','content':'a'}]}", 400,
                  "messages[0].role", "'root'");
    expect_reject("{'model':'m','messages':[{'role':'function','content':'a','name':'f'}]}", 400,
                  "messages[0].role", "deprecated");
    expect_reject("{'model':'m','messages':[{'role':'user'}]}", 400, "messages[0].content",
                  "Missing content");
    expect_reject("{'model':'m','messages':[{'role':'user','content':null}]}", 400,
                  "messages[0].content", NULL);
    expect_reject("{'model':'m','messages':[{'role':'assistant','content':null}]}", 400,
                  "messages[0].content", NULL);
    expect_reject("{'model':'m','messages':[{'role':'user','content':5}]}", 400,
                  "messages[0].content", "a string or an array of content parts");
}

/* PROTOCOL §5.15: developer -> system */
static void req_developer_becomes_system(void **state)
{
    (void)state;
    expect_native("{'model':'m','messages':[{'role':'developer','content':'be brief'},"
                  "{'role':'system','content':'s'},{'role':'user','content':'hi'}]}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'system','content':"
                  "'be brief'},{'role':'system','content':'s'},{'role':'user','content':'hi'}]}");
}

/* PROTOCOL §5.5: text parts joined with \n in one message, images beside them */
static void req_content_parts_merge(void **state)
{
    (void)state;
    expect_native(
        "{'model':'m','messages':[{'role':'user','content':["
        "{'type':'text','text':'What is'},"
        "{'type':'image_url','image_url':{'url':'data:image/png;base64,iVBORw0K','detail':'low'}},"
        "{'type':'text','text':'in this picture?'},"
        "{'type':'image_url','image_url':'data:image/jpeg;base64,/9j/4AAQ'}]}]}",
        "{'model':'llama3.2','stream':false,'messages':[{'role':'user','images':["
        "'iVBORw0K','/9j/4AAQ'],'content':'What is\\nin this picture?'}]}");
}

/* PROTOCOL §5.5 */
static void req_content_parts_single_and_empty(void **state)
{
    (void)state;
    expect_native(
        "{'model':'m','messages':[{'role':'user','content':[{'type':'text','text':'hi'}]}]}",
        "{'model':'llama3.2','stream':false," NATIVE_HI "}");
    expect_native("{'model':'m','messages':[{'role':'user','content':[]}]}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':''}]}");
    expect_native("{'model':'m','messages':[{'role':'user','content':[{'type':'image_url',"
                  "'image_url':{'url':'data:;base64,QUJDRA=='}}]}]}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'user','images':"
                  "['QUJDRA=='],'content':''}]}");
}

/* PROTOCOL §5.5: http(s) URLs are refused deliberately */
static void req_content_parts_rejected(void **state)
{
    (void)state;
    expect_reject("{'model':'m','messages':[{'role':'user','content':[{'type':'text','text':'a'},"
                  "{'type':'image_url','image_url':{'url':'https://x.test/cat.png'}}]}]}",
                  400, "messages[0].content[1].image_url.url", "not supported");
    expect_reject("{'model':'m','messages':[{'role':'user','content':[{'type':'image_url',"
                  "'image_url':'HTTP://x.test/a.png'}]}]}",
                  400, "messages[0].content[0].image_url", "base64");
    expect_reject("{'model':'m','messages':[{'role':'user','content':[{'type':'image_url',"
                  "'image_url':{'url':'data:image/png;base64,%%%'}}]}]}",
                  400, "messages[0].content[0].image_url.url", "not valid base64");
    expect_reject("{'model':'m','messages':[{'role':'user','content':[{'type':'image_url',"
                  "'image_url':{'url':'data:image/png;base64,'}}]}]}",
                  400, "messages[0].content[0].image_url.url", "not valid base64");
    expect_reject("{'model':'m','messages':[{'role':'user','content':[{'type':'image_url',"
                  "'image_url':{'url':'data:text/plain;base64,QUJD'}}]}]}",
                  400, "messages[0].content[0].image_url.url", "image/*");
    expect_reject("{'model':'m','messages':[{'role':'user','content':[{'type':'image_url',"
                  "'image_url':{'url':'data:image/png,rawbytes'}}]}]}",
                  400, "messages[0].content[0].image_url.url", ";base64,");
    expect_reject("{'model':'m','messages':[{'role':'user','content':[{'type':'image_url',"
                  "'image_url':{}}]}]}",
                  400, "messages[0].content[0].image_url.url", "Missing");
    expect_reject("{'model':'m','messages':[{'role':'user','content':[{'type':'input_audio',"
                  "'input_audio':{'data':'QUJD','format':'wav'}}]}]}",
                  400, "messages[0].content[0].type", "input_audio");
    expect_reject("{'model':'m','messages':[{'role':'user','content':['hi']}]}", 400,
                  "messages[0].content[0]", "object");
    expect_reject("{'model':'m','messages':[{'role':'user','content':[{'text':'hi'}]}]}", 400,
                  "messages[0].content[0].type", "Missing");
    expect_reject("{'model':'m','messages':[{'role':'user','content':[{'type':'text'}]}]}", 400,
                  "messages[0].content[0].text", "Missing");
    expect_reject("{'model':'m','messages':[{'role':'user','content':[{'type':'text','text':1}]}]}",
                  400, "messages[0].content[0].text", "string");
}

#define CALL_F(args)                                                                               \
    "{'role':'assistant','content':null,'tool_calls':[{'id':'call_1','type':'function',"           \
    "'function':{'name':'get_weather','arguments':" args "}}]}"

/* PROTOCOL §5.4: arguments string -> object; content null allowed with tool_calls */
static void req_assistant_tool_calls(void **state)
{
    (void)state;
    expect_native("{'model':'m','messages':[{'role':'user','content':'weather?'}," CALL_F(
                      "'{\\'city\\':\\'Tokyo\\'}'") "]}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':"
                  "'weather?'},{'role':'assistant','content':'','tool_calls':[{'id':'call_1',"
                  "'function':{'name':'get_weather','arguments':{'city':'Tokyo'}}}]}]}");
}

/* PROTOCOL §5.4: "{}" for a call without arguments */
static void req_tool_call_empty_object(void **state)
{
    (void)state;
    expect_native("{'model':'m','messages':[" CALL_F("' {} '") "]}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'assistant','content':"
                  "'','tool_calls':[{'id':'call_1','function':{'name':'get_weather','arguments':"
                  "{}}}]}]}");
    /* lenient: an object instead of a string is taken as is */
    expect_native("{'model':'m','messages':[" CALL_F("{'a':[1]}") "]}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'assistant','content':"
                  "'','tool_calls':[{'id':'call_1','function':{'name':'get_weather','arguments':"
                  "{'a':[1]}}}]}]}");
}

/* PROTOCOL §5.4: parse failures (including "") are a clear 400 */
static void req_tool_call_bad_arguments(void **state)
{
    (void)state;
    const char *param = "messages[0].tool_calls[0].function.arguments";
    expect_reject("{'model':'m','messages':[" CALL_F("''") "]}", 400, param, "an empty string");
    expect_reject("{'model':'m','messages':[" CALL_F("'{city:'") "]}", 400, param, "invalid JSON");
    expect_reject("{'model':'m','messages':[" CALL_F("'[1,2]'") "]}", 400, param, "not an object");
    expect_reject("{'model':'m','messages':[" CALL_F("'{} {}'") "]}", 400, param, "invalid JSON");
    expect_reject("{'model':'m','messages':[" CALL_F("7") "]}", 400, param, "number");
    expect_reject("{'model':'m','messages':[{'role':'assistant','tool_calls':[{'type':'function',"
                  "'function':{'name':'f'}}]}]}",
                  400, param, "Missing");
    expect_reject("{'model':'m','messages':[{'role':'assistant','tool_calls':[{'type':'function',"
                  "'function':{'arguments':'{}'}}]}]}",
                  400, "messages[0].tool_calls[0].function.name", "Missing");
    expect_reject("{'model':'m','messages':[{'role':'assistant','tool_calls':[{'type':'custom',"
                  "'custom':{'name':'f','input':'x'}}]}]}",
                  400, "messages[0].tool_calls[0].type", "function");
    expect_reject("{'model':'m','messages':[{'role':'assistant','tool_calls':{}}]}", 400,
                  "messages[0].tool_calls", "array");
}

/* PROTOCOL §3.3: tool_name from name, or from the earlier call's id */
static void req_tool_results(void **state)
{
    (void)state;
    expect_native("{'model':'m','messages':[{'role':'assistant','content':'','tool_calls':["
                  "{'id':'c1','type':'function','function':{'name':'f1','arguments':'{}'}},"
                  "{'id':'c2','type':'function','function':{'name':'f2','arguments':'{}'}}]},"
                  "{'role':'tool','tool_call_id':'c2','content':'two'},"
                  "{'role':'tool','tool_call_id':'c1','content':'one','name':'explicit'},"
                  "{'role':'tool','tool_call_id':'zz','content':[{'type':'text','text':'?'}]}]}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'assistant','content':'',"
                  "'tool_calls':[{'id':'c1','function':{'name':'f1','arguments':{}}},{'id':'c2',"
                  "'function':{'name':'f2','arguments':{}}}]},"
                  "{'role':'tool','content':'two','tool_call_id':'c2','tool_name':'f2'},"
                  "{'role':'tool','content':'one','tool_call_id':'c1','tool_name':'explicit'},"
                  "{'role':'tool','content':'?','tool_call_id':'zz'}]}");
    expect_reject("{'model':'m','messages':[{'role':'tool','tool_call_id':5,'content':'x'}]}", 400,
                  "messages[0].tool_call_id", "string");
}

/* PROTOCOL §5.7: prior reasoning goes back as native thinking */
static void req_assistant_reasoning_replayed(void **state)
{
    (void)state;
    expect_native("{'model':'m','messages':[{'role':'assistant','content':'4',"
                  "'reasoning_content':'2+2'},{'role':'assistant','content':'5','reasoning':'r'}]}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'assistant','content':"
                  "'4','thinking':'2+2'},{'role':'assistant','content':'5','thinking':'r'}]}");
}

/* ------------------------------------------------------------------------ */
/* Requests: response_format, tools, thinking, logprobs                      */

/* PROTOCOL §5.16 */
static void req_response_format(void **state)
{
    (void)state;
    expect_native("{'model':'m','response_format':{'type':'text'}," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI "}");
    expect_native("{'model':'m','response_format':{'type':'json_object'}," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI ",'format':'json'}");
    expect_native(
        "{'model':'m','response_format':{'type':'json_schema','json_schema':{'name':'x',"
        "'strict':true,'schema':{'type':'object','properties':{'a':{'type':'string'}}}}}," USER_HI
        "}",
        "{'model':'llama3.2','stream':false," NATIVE_HI ",'format':{'type':'object',"
        "'properties':{'a':{'type':'string'}}}}");
}

/* PROTOCOL §5.16: a non-object schema is ours to reject (Ollama would 500) */
static void req_response_format_rejected(void **state)
{
    (void)state;
    expect_reject("{'model':'m','response_format':{'type':'json_schema','json_schema':{'name':'x',"
                  "'schema':'object'}}," USER_HI "}",
                  400, "response_format.json_schema.schema", "object");
    expect_reject(
        "{'model':'m','response_format':{'type':'json_schema','json_schema':{'name':'x'}}," USER_HI
        "}",
        400, "response_format.json_schema.schema", "Missing");
    expect_reject("{'model':'m','response_format':{'type':'json_schema'}," USER_HI "}", 400,
                  "response_format.json_schema", "Missing");
    expect_reject("{'model':'m','response_format':{'type':'xml'}," USER_HI "}", 400,
                  "response_format.type", "'xml'");
    expect_reject("{'model':'m','response_format':'json'," USER_HI "}", 400, "response_format",
                  "object");
}

#define TOOLS2                                                                                     \
    "'tools':[{'type':'function','function':{'name':'a','description':'A','parameters':{'type':"   \
    "'object','properties':{}},'strict':true}},{'type':'function','function':{'name':'b'}}]"
#define NATIVE_TOOL_A                                                                              \
    "{'type':'function','function':{'name':'a','description':'A','parameters':{'type':'object',"   \
    "'properties':{}}}}"
#define NATIVE_TOOL_B "{'type':'function','function':{'name':'b'}}"

static void req_tools(void **state)
{
    (void)state;
    expect_native("{'model':'m'," TOOLS2 "," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI ",'tools':[" NATIVE_TOOL_A
                  "," NATIVE_TOOL_B "]}");
    expect_native("{'model':'m','tools':[]," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI "}");
}

static void req_tools_rejected(void **state)
{
    (void)state;
    expect_reject("{'model':'m','tools':{}," USER_HI "}", 400, "tools", "array");
    expect_reject("{'model':'m','tools':[{'type':'function'}]," USER_HI "}", 400,
                  "tools[0].function", "Missing");
    expect_reject("{'model':'m','tools':[{'type':'function','function':{'name':''}}]," USER_HI "}",
                  400, "tools[0].function.name", "empty");
    expect_reject("{'model':'m','tools':[{'type':'custom','custom':{'name':'x'}}]," USER_HI "}",
                  400, "tools[0].type", "function");
    expect_reject("{'model':'m','tools':[{'type':'function','function':{'name':'a','parameters':"
                  "'{}'}}]," USER_HI "}",
                  400, "tools[0].function.parameters", "object");
    expect_reject("{'model':'m','tools':[{'type':'function','function':{'name':'a','description':"
                  "2}}]," USER_HI "}",
                  400, "tools[0].function.description", "string");
}

/* PROTOCOL §5.15: "none" drops the tools */
static void req_tool_choice_none(void **state)
{
    (void)state;
    struct chat_req r;
    struct apierr err;
    expect_native("{'model':'m','tool_choice':'none'," TOOLS2 "," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI "}");
    const char *b = q("{'model':'m','tool_choice':'none'," TOOLS2 "," USER_HI "}");
    assert_int_equal(chat_req_parse(&r, b, strlen(b), &err), 0);
    assert_false(r.has_tools);
    chat_req_free(&r);
}

/* PROTOCOL §5.15: "auto" and "required" keep every tool (required cannot be enforced) */
static void req_tool_choice_auto_required(void **state)
{
    (void)state;
    const char *all = "{'model':'llama3.2','stream':false," NATIVE_HI ",'tools':[" NATIVE_TOOL_A
                      "," NATIVE_TOOL_B "]}";
    expect_native("{'model':'m','tool_choice':'auto'," TOOLS2 "," USER_HI "}", all);
    expect_native("{'model':'m','tool_choice':'required'," TOOLS2 "," USER_HI "}", all);
}

/* PROTOCOL §5.15: a named function sends only that tool */
static void req_tool_choice_named(void **state)
{
    (void)state;
    expect_native("{'model':'m','tool_choice':{'type':'function','function':{'name':'b'}}," TOOLS2
                  "," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI ",'tools':[" NATIVE_TOOL_B "]}");
    expect_native("{'model':'m','tool_choice':{'type':'allowed_tools','allowed_tools':{'mode':"
                  "'auto','tools':[{'type':'function','function':{'name':'a'}}]}}," TOOLS2
                  "," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI ",'tools':[" NATIVE_TOOL_A "]}");
}

/* PROTOCOL §5.15 */
static void req_tool_choice_rejected(void **state)
{
    (void)state;
    expect_reject("{'model':'m','tool_choice':{'type':'function','function':{'name':'zz'}}," TOOLS2
                  "," USER_HI "}",
                  400, "tool_choice.function.name", "No tool named 'zz'");
    expect_reject("{'model':'m','tool_choice':'required'," USER_HI "}", 400, "tool_choice",
                  "only allowed when 'tools'");
    expect_reject("{'model':'m','tool_choice':{'type':'function','function':{'name':'a'}}," USER_HI
                  "}",
                  400, "tool_choice", "only allowed when 'tools'");
    expect_reject("{'model':'m','tool_choice':'any'," TOOLS2 "," USER_HI "}", 400, "tool_choice",
                  "'any'");
    expect_reject("{'model':'m','tool_choice':3," TOOLS2 "," USER_HI "}", 400, "tool_choice",
                  "number");
    expect_reject("{'model':'m','tool_choice':{'type':'function'}," TOOLS2 "," USER_HI "}", 400,
                  "tool_choice.function", "Missing");
    expect_reject("{'model':'m','tool_choice':{'type':'allowed_tools','allowed_tools':{'tools':["
                  "{'type':'function','function':{'name':'q'}}]}}," TOOLS2 "," USER_HI "}",
                  400, "tool_choice.allowed_tools.tools[0]", "'q'");
    /* "none" and "auto" without tools are harmless */
    expect_native("{'model':'m','tool_choice':'none'," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI "}");
}

static void expect_think(const char *fields, const char *think)
{
    char body[512], want[512];
    snprintf(body, sizeof body, "{'model':'m',%s," USER_HI "}", fields);
    if (think)
        snprintf(want, sizeof want, "{'model':'llama3.2','stream':false," NATIVE_HI ",'think':%s}",
                 think);
    else
        snprintf(want, sizeof want, "{'model':'llama3.2','stream':false," NATIVE_HI "}");
    assert_string_equal(native(body), q(want));
}

/* PROTOCOL §5.7, §1.2: efforts map to native think values */
static void req_reasoning_effort(void **state)
{
    (void)state;
    expect_think("'reasoning_effort':'none'", "false");
    expect_think("'reasoning_effort':'minimal'", "'low'");
    expect_think("'reasoning_effort':'low'", "'low'");
    expect_think("'reasoning_effort':'medium'", "'medium'");
    expect_think("'reasoning_effort':'high'", "'high'");
    expect_think("'reasoning_effort':'xhigh'", "'max'");
    expect_think("'reasoning_effort':'max'", "'max'");
    expect_think("'reasoning_effort':''", NULL);
    expect_reject("{'model':'m','reasoning_effort':'extreme'," USER_HI "}", 400, "reasoning_effort",
                  "'extreme'");
    expect_reject("{'model':'m','reasoning_effort':1," USER_HI "}", 400, "reasoning_effort",
                  "string");
}

/* PROTOCOL §5.7: think > reasoning.effort > reasoning_effort */
static void req_think_precedence(void **state)
{
    (void)state;
    expect_think("'reasoning':{'effort':'low'},'reasoning_effort':'high'", "'low'");
    expect_think("'think':true,'reasoning_effort':'none'", "true");
    expect_think("'think':false", "false");
    expect_think("'think':'high','reasoning':{'effort':'none'}", "'high'");
    expect_think("'think':'none'", "false");
    expect_reject("{'model':'m','think':3," USER_HI "}", 400, "think", "boolean or a string");
    expect_reject("{'model':'m','think':'hard'," USER_HI "}", 400, "think", "'hard'");
    expect_reject("{'model':'m','reasoning':{'effort':'x'}," USER_HI "}", 400, "reasoning.effort",
                  NULL);
    expect_reject("{'model':'m','reasoning':'high'," USER_HI "}", 400, "reasoning", "object");
}

static void req_logprobs(void **state)
{
    (void)state;
    expect_native("{'model':'m','logprobs':true,'top_logprobs':3," USER_HI "}",
                  "{'model':'llama3.2','stream':false," NATIVE_HI
                  ",'logprobs':true,'top_logprobs':3}");
    expect_reject("{'model':'m','logprobs':true,'top_logprobs':21," USER_HI "}", 400,
                  "top_logprobs", "range");
}

/* Out of memory anywhere in cJSON: a clean 500 or success, never a leak or crash. */
static long fail_at, allocs;

static void *failing_malloc(size_t n)
{
    if (++allocs == fail_at)
        return NULL;
    return malloc(n);
}

static void req_out_of_memory(void **state)
{
    (void)state;
    const char *b = q("{'model':'m','temperature':0.3,'stop':['a']," TOOLS2 ",'tool_choice':"
                      "'auto','response_format':{'type':'json_schema','json_schema':{'schema':{}}},"
                      "'reasoning_effort':'low','messages':[{'role':'user','content':[{'type':"
                      "'text','text':'a'},{'type':'text','text':'b'},{'type':'image_url',"
                      "'image_url':'data:;base64,QUJD'}]}," CALL_F(
                          "'{}'") ",{'role':'tool',"
                                  "'tool_call_id':'call_1','content':'x'}]}");
    cJSON_Hooks hooks = {failing_malloc, free};
    bool succeeded = false;
    for (fail_at = 1; !succeeded && fail_at < 5000; fail_at++) {
        struct chat_req r;
        struct apierr err;
        struct buf out;
        buf_init(&out, 1 << 20);
        allocs = 0;
        cJSON_InitHooks(&hooks);
        if (chat_req_parse(&r, b, strlen(b), &err) == 0) {
            if (chat_req_to_ollama(&r, "x", NULL, &out, &err) == 0)
                succeeded = true;
            else
                assert_int_equal(err.status, 500);
            chat_req_free(&r);
        } else {
            assert_true(err.status == 500 || err.status == 400);
        }
        cJSON_InitHooks(NULL);
        buf_free(&out);
    }
    assert_true(succeeded);
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
    chat_upstream_error(m->status, m->body, m->body ? strlen(m->body) : 0, "gpu1", &err);
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
    chat_upstream_error(500, body.p, body.len, NULL, &err);
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
        chat_upstream_error(502, body.p, body.len, "gpu1", &err);
        assert_non_null(strstr(err.message, "w w w"));
        assert_true(strlen(err.message) < sizeof err.message - 1);
    }
    /* a cut that only drops trailing blanks is not marked */
    ollama_error_body(&body, "short reason   \n", 16);
    chat_upstream_error(502, body.p, body.len, "gpu1", &err);
    assert_non_null(strstr(err.message, "short reason"));
    assert_null(strstr(err.message, "..."));
    buf_free(&body);
}

/* The same for a whole non-streamed answer (chat_complete). */
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

static void make_id(void **state)
{
    (void)state;
    char a[64], b[64], small[8];
    rand_id(a, sizeof a, "chatcmpl-");
    rand_id(b, sizeof b, "chatcmpl-");
    assert_int_equal(strlen(a), 9 + 24);
    assert_memory_equal(a, "chatcmpl-", 9);
    assert_string_not_equal(a, b);
    for (size_t k = 9; k < strlen(a); k++)
        assert_true(isalnum((unsigned char)a[k]));
    rand_id(small, sizeof small, "chatcmpl-");
    assert_string_equal(small, "chatcmp");
}

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(req_minimal_injects_nothing),
        cmocka_unit_test(req_stream_true_is_explicit),
        cmocka_unit_test(req_fields_of_struct),
        cmocka_unit_test(req_include_usage_needs_stream),
        cmocka_unit_test(req_unknown_fields_not_forwarded),
        cmocka_unit_test(req_nulls_are_absent),
        cmocka_unit_test(req_strings_survive_escaping),
        cmocka_unit_test(req_rejects_bad_bodies),
        cmocka_unit_test(req_rejects_bad_model),
        cmocka_unit_test(req_rejects_temperature_hot),
        cmocka_unit_test(req_rejects_bad_integers),
        cmocka_unit_test(req_rejects_bad_flags),
        cmocka_unit_test(req_n),
        cmocka_unit_test(req_rejects_legacy_functions),
        cmocka_unit_test(req_sampling_options),
        cmocka_unit_test(req_max_completion_tokens_wins),
        cmocka_unit_test(req_stop_array),
        cmocka_unit_test(req_ollama_sampling_extensions),
        cmocka_unit_test(req_alias_options_merge),
        cmocka_unit_test(req_rejects_bad_messages),
        cmocka_unit_test(req_developer_becomes_system),
        cmocka_unit_test(req_content_parts_merge),
        cmocka_unit_test(req_content_parts_single_and_empty),
        cmocka_unit_test(req_content_parts_rejected),
        cmocka_unit_test(req_assistant_tool_calls),
        cmocka_unit_test(req_tool_call_empty_object),
        cmocka_unit_test(req_tool_call_bad_arguments),
        cmocka_unit_test(req_tool_results),
        cmocka_unit_test(req_assistant_reasoning_replayed),
        cmocka_unit_test(req_response_format),
        cmocka_unit_test(req_response_format_rejected),
        cmocka_unit_test(req_tools),
        cmocka_unit_test(req_tools_rejected),
        cmocka_unit_test(req_tool_choice_none),
        cmocka_unit_test(req_tool_choice_auto_required),
        cmocka_unit_test(req_tool_choice_named),
        cmocka_unit_test(req_tool_choice_rejected),
        cmocka_unit_test(req_reasoning_effort),
        cmocka_unit_test(req_think_precedence),
        cmocka_unit_test(req_logprobs),
        cmocka_unit_test(req_out_of_memory),
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
        cmocka_unit_test(complete_text),
        cmocka_unit_test(complete_tool_calls),
        cmocka_unit_test(complete_thinking_and_length),
        cmocka_unit_test(complete_failures),
        cmocka_unit_test(upstream_error_mapping),
        cmocka_unit_test(upstream_error_excerpt_is_bounded),
        cmocka_unit_test(fast_path_matches_general_path),
        cmocka_unit_test(complete_fast_path_matches_general_path),
        cmocka_unit_test(make_id),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
