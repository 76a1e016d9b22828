/*
 * Unit tests for proto/chat_request.c: a client's /v1/chat/completions body,
 * validated and translated into the native /api/chat body. Each test pins
 * exact output. "PROTOCOL §5.N" names the pitfall (PROTOCOL.md section 5) a
 * test guards.
 *
 * JSON in this file is written with single quotes for readability; q()
 * turns them into double quotes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "chat_request.h"
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */

DEFINE_NATIVE_WITH(chat)

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
