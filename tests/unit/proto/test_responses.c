/*
 * Unit tests for the Responses API dialect's pure translation:
 * proto/responses_request.c (a /v1/responses body -> the native /api/chat
 * body, and every 400), proto/responses_answer.c (a whole native answer ->
 * a response object) and proto/responses_stream.c (native lines -> the
 * numbered SSE events, in the order the openai SDK's accumulator needs).
 * Each test pins exact output.
 *
 * JSON in this file is written with single quotes for readability; q()
 * turns them into double quotes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "dialect.h"
#include "helpers.h"
#include "responses_answer.h"
#include "responses_request.h"
#include "responses_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

DEFINE_NATIVE_WITH(responses)

static void expect_native(const char *body, const char *expected)
{
    assert_string_equal(native_with(body, NULL), q(expected));
}

static void expect_reject(const char *body, const char *param, const char *msg_part)
{
    struct responses_req r;
    struct apierr err = {0};
    const char *b = q(body);
    assert_int_equal(responses_req_parse(&r, b, strlen(b), &err), -1);
    assert_null(r.root);
    assert_null(r.native);
    assert_null(r.options);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, APIERR_INVALID);
    assert_string_equal(err.param, param ? param : "");
    if (msg_part && !strstr(err.message, msg_part))
        fail_msg("message '%s' lacks '%s'", err.message, msg_part);
}

/* A string input is one user message; stream is always explicit. */
static void req_string_input(void **state)
{
    (void)state;
    expect_native(
        "{'model':'gpt-5','input':'Hi'}",
        "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'Hi'}]}");
    expect_native("{'model':'gpt-5','input':'Hi','stream':true}",
                  "{'model':'llama3.2','stream':true,'messages':[{'role':'user','content':'Hi'}]}");
}

/* instructions first; developer = system; parts joined with a newline. */
static void req_items(void **state)
{
    (void)state;
    expect_native(
        "{'model':'m','instructions':'Be brief.','input':["
        "{'type':'message','role':'developer','content':[{'type':'input_text','text':'Rules'}]},"
        "{'role':'user','content':[{'type':'input_text','text':'a'},{'type':'input_text','text':'b'"
        "}]},"
        "{'type':'message','role':'assistant','content':[{'type':'output_text','text':'ok'}]},"
        "{'role':'system','content':'sys'}]}",
        "{'model':'llama3.2','stream':false,'messages':["
        "{'role':'system','content':'Be brief.'},{'role':'system','content':'Rules'},"
        "{'role':'user','content':'a\\nb'},{'role':'assistant','content':'ok'},"
        "{'role':'system','content':'sys'}]}");
}

/* input_image: a data URL's payload in images. */
static void req_image(void **state)
{
    (void)state;
    expect_native(
        "{'model':'m','input':[{'role':'user','content':["
        "{'type':'input_text','text':'What is it?'},"
        "{'type':'input_image','image_url':'data:image/png;base64,iVBORw==','detail':'auto'}]}]}",
        "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':"
        "'What is it?','images':['iVBORw==']}]}");
    expect_reject("{'model':'m','input':[{'role':'user','content':[{'type':'input_image',"
                  "'image_url':'https://x/y.png'}]}]}",
                  "input[0].content[0].image_url", "does not fetch");
    expect_reject("{'model':'m','input':[{'role':'user','content':[{'type':'input_image',"
                  "'file_id':'file-1'}]}]}",
                  "input[0].content[0].file_id", "stores nothing");
    expect_reject("{'model':'m','input':[{'role':'user','content':[{'type':'input_file',"
                  "'file_data':'x'}]}]}",
                  "input[0].content[0].type", "input_file");
}

/* function_call items ride on the assistant message before them (or a new
 * one); function_call_output is a tool message named after its call. */
static void req_function_round_trip(void **state)
{
    (void)state;
    expect_native(
        "{'model':'m','input':[{'role':'user','content':'Weather?'},"
        "{'type':'reasoning','id':'rs_1','summary':[],'encrypted_content':'xx'},"
        "{'type':'function_call','call_id':'c1','name':'get_weather','arguments':'{\\'city\\':\\'"
        "Paris\\'}'},"
        "{'type':'function_call','call_id':'c2','name':'now','arguments':''},"
        "{'type':'function_call_output','call_id':'c1','output':'sunny'},"
        "{'type':'function_call_output','call_id':'c2','output':[{'type':'input_text','text':'noon'"
        "}]}]}",
        "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'Weather?'},"
        "{'role':'assistant','content':'','tool_calls':["
        "{'id':'c1','function':{'name':'get_weather','arguments':{'city':'Paris'}}},"
        "{'id':'c2','function':{'name':'now','arguments':{}}}]},"
        "{'role':'tool','content':'sunny','tool_call_id':'c1','tool_name':'get_weather'},"
        "{'role':'tool','content':'noon','tool_call_id':'c2','tool_name':'now'}]}");
    /* after an assistant message: on it */
    expect_native(
        "{'model':'m','input':[{'role':'assistant','content':'Let me see.'},"
        "{'type':'function_call','call_id':'c1','name':'f','arguments':'{}'}]}",
        "{'model':'llama3.2','stream':false,'messages':[{'role':'assistant','content':"
        "'Let me see.','tool_calls':[{'id':'c1','function':{'name':'f','arguments':{}}}]}]}");
    expect_reject("{'model':'m','input':[{'type':'function_call','call_id':'c1','name':'f',"
                  "'arguments':'[1]'}]}",
                  "input[0].arguments", "not an object");
    expect_reject("{'model':'m','input':[{'type':'function_call','name':'f','arguments':'{}'}]}",
                  "input[0].call_id", "Missing");
    expect_reject("{'model':'m','input':[{'type':'function_call_output','call_id':'c'}]}",
                  "input[0].output", "Missing");
}

/* Function tools, namespace groups flattened, hosted tools left out. */
static void req_tools(void **state)
{
    (void)state;
    expect_native(
        "{'model':'m','input':'x','tools':["
        "{'type':'function','name':'a','description':'A','parameters':{'type':'object'},'strict':"
        "true},"
        "{'type':'web_search'},{'type':'file_search','vector_store_ids':['v']},"
        "{'type':'namespace','name':'ns','description':'d','tools':["
        "{'type':'function','name':'b'},{'type':'custom','name':'c'}]}]}",
        "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'x'}],"
        "'tools':[{'type':'function','function':{'name':'a','description':'A','parameters':"
        "{'type':'object'}}},{'type':'function','function':{'name':'b'}}]}");
    /* only hosted tools: no tools at all */
    expect_native("{'model':'m','input':'x','tools':[{'type':'web_search'}]}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'x'}]}");
    expect_reject("{'model':'m','input':'x','tools':[{'type':'function'}]}", "tools[0].name",
                  "Missing");
    expect_reject("{'model':'m','input':'x','tools':[{'type':'function','name':'a',"
                  "'parameters':3}]}",
                  "tools[0].parameters", "JSON Schema");
}

static void req_tool_choice(void **state)
{
    (void)state;
    const char *tools = "'tools':[{'type':'function','name':'a'},{'type':'function','name':'b'}]";
    char body[512];
    snprintf(body, sizeof body, "{'model':'m','input':'x',%s,'tool_choice':'none'}", tools);
    expect_native(body,
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'x'}]}");
    snprintf(body, sizeof body, "{'model':'m','input':'x',%s,'tool_choice':'required'}", tools);
    expect_native(body, "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':"
                        "'x'}],'tools':[{'type':'function','function':{'name':'a'}},"
                        "{'type':'function','function':{'name':'b'}}]}");
    snprintf(body, sizeof body,
             "{'model':'m','input':'x',%s,'tool_choice':{'type':'function','name':'b'}}", tools);
    expect_native(body, "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':"
                        "'x'}],'tools':[{'type':'function','function':{'name':'b'}}]}");
    snprintf(body, sizeof body,
             "{'model':'m','input':'x',%s,'tool_choice':{'type':'allowed_tools','mode':'auto',"
             "'tools':[{'type':'function','name':'a'}]}}",
             tools);
    expect_native(body, "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':"
                        "'x'}],'tools':[{'type':'function','function':{'name':'a'}}]}");
    snprintf(body, sizeof body,
             "{'model':'m','input':'x',%s,'tool_choice':{'type':'function','name':'zz'}}", tools);
    expect_reject(body, "tool_choice.name", "No function tool named 'zz'");
    snprintf(body, sizeof body, "{'model':'m','input':'x',%s,'tool_choice':'sometimes'}", tools);
    expect_reject(body, "tool_choice", "sometimes");
}

/* Sampling, format and thinking. */
static void req_options(void **state)
{
    (void)state;
    expect_native("{'model':'m','input':'x','temperature':0.5,'top_p':0.9,'max_output_tokens':64,"
                  "'text':{'format':{'type':'json_schema','name':'s','schema':{'type':'object'},"
                  "'strict':true},'verbosity':'low'},'reasoning':{'effort':'minimal',"
                  "'summary':'auto'}}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'x'}],"
                  "'format':{'type':'object'},'think':'low','options':{'temperature':0.5,"
                  "'top_p':0.9,'num_predict':64}}");
    expect_native("{'model':'m','input':'x','text':{'format':{'type':'json_object'}},"
                  "'reasoning':{'effort':'none'}}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'x'}],"
                  "'format':'json','think':false}");
    expect_native("{'model':'m','input':'x','reasoning':{'effort':'xhigh'}}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'x'}],"
                  "'think':'max'}");
    /* the alias's options under the client's */
    assert_string_equal(
        native_with("{'model':'m','input':'x','temperature':1}",
                    "{'temperature':0.1,'num_ctx':8192}"),
        q("{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'x'}],"
          "'options':{'num_ctx':8192,'temperature':1}}"));
    expect_reject("{'model':'m','input':'x','reasoning':{'effort':'huge'}}", "reasoning.effort",
                  "huge");
    expect_reject("{'model':'m','input':'x','max_output_tokens':0}", "max_output_tokens", NULL);
    expect_reject("{'model':'m','input':'x','temperature':'hot'}", "temperature", "a number");
    expect_reject("{'model':'m','input':'x','top_p':2}", "top_p", NULL);
    expect_reject("{'model':'m','input':'x','text':{'format':{'type':'json_schema'}}}",
                  "text.format.schema", "Missing");
    expect_reject("{'model':'m','input':'x','text':{'format':{'type':'xml'}}}", "text.format.type",
                  "xml");
}

/* Accepted and ignored: never forwarded. */
static void req_ignored(void **state)
{
    (void)state;
    expect_native(
        "{'model':'m','input':'x','store':false,'include':['reasoning.encrypted_content'],"
        "'parallel_tool_calls':true,'prompt_cache_key':'k','client_metadata':{'a':1},"
        "'metadata':{'b':'c'},'truncation':'auto','user':'u','service_tier':'auto',"
        "'previous_response_id':null,'background':false}",
        "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'x'}]}");
}

/* Stateless: what needs storage is refused, saying so. */
static void req_stateful_refused(void **state)
{
    (void)state;
    expect_reject("{'model':'m','input':'x','previous_response_id':'resp_1'}",
                  "previous_response_id", "stores nothing");
    expect_reject("{'model':'m','input':'x','conversation':'conv_1'}", "conversation",
                  "stores nothing");
    expect_reject("{'model':'m','input':'x','background':true}", "background", "stores nothing");
    expect_reject("{'model':'m','input':[{'type':'item_reference','id':'msg_1'}]}", "input[0]",
                  "stores nothing");
}

static void req_rejects(void **state)
{
    (void)state;
    expect_reject("{'input':'x'}", "model", "Missing");
    expect_reject("{'model':'m'}", "input", "Missing");
    expect_reject("{'model':'m','input':3}", "input", "a string or an array");
    expect_reject("{'model':'m','input':[]}", "input", "at least one");
    expect_reject("{'model':'m','input':[3]}", "input[0]", "an object");
    expect_reject("{'model':'m','input':[{'role':'tool','content':'x'}]}", "input[0].role", "tool");
    expect_reject("{'model':'m','input':[{'role':'user'}]}", "input[0].content", "Missing");
    expect_reject("{'model':'m','input':[{'type':'web_search_call','id':'w'}]}", "input[0].type",
                  "web_search_call");
    expect_reject("{'model':'m','input':'x','instructions':5}", "instructions", "a string");
    expect_reject("{'model':'m','input':'x','stream':'yes'}", "stream", "a boolean");
    expect_reject("{'model':'m','input':'x','tools':{}}", "tools", "an array");
    expect_reject("[1]", NULL, "must be a JSON object");
}

/* ------------------------------------------------------------------------ */
/* Whole answers                                                             */

static const struct responses_meta META = {.id = "resp_R", .model = "gpt-5", .created = 7};

static const char *complete(const char *native)
{
    static char result[16384];
    struct buf out;
    struct apierr err = {0};
    long pt = -1, ct = -1;
    const char *b = q(native);
    buf_init(&out, 1 << 20);
    if (responses_complete(b, strlen(b), &META, "fake0", &out, &pt, &ct, &err) != 0)
        fail_msg("unexpected failure: %d %s", err.status, err.message);
    assert_true(out.len < sizeof result);
    memcpy(result, out.p, out.len + 1);
    buf_free(&out);
    return result;
}

#define RESP_HEAD(status) "{'id':'resp_R','object':'response','created_at':7,'status':'" status "'"
#define USAGE(i, o, t)                                                                             \
    "'usage':{'input_tokens':" #i                                                                  \
    ",'input_tokens_details':{'cached_tokens':0},'output_tokens':" #o                              \
    ",'output_tokens_details':{'reasoning_tokens':0},'total_tokens':" #t "}"

static void answer_text(void **state)
{
    (void)state;
    assert_string_equal(
        complete("{'model':'x','created_at':'t','message':{'role':'assistant','content':'Hi'},"
                 "'done':true,'done_reason':'stop','prompt_eval_count':5,'eval_count':2}"),
        q(RESP_HEAD("completed") ",'error':null,'incomplete_details':null,'model':'gpt-5',"
                                 "'output':[{'id':'msg_R_0','type':'message','status':'completed',"
                                 "'role':'assistant','content':[{'type':'output_text','text':'Hi',"
                                 "'annotations':[],'logprobs':[]}]}]," USAGE(5, 2, 7) "}"));
}

static void answer_reasoning_and_calls(void **state)
{
    (void)state;
    assert_string_equal(
        complete("{'message':{'role':'assistant','content':'','thinking':'Hmm \\'q\\'',"
                 "'tool_calls':[{'id':'call_9','function':{'name':'f','arguments':{'a':1}}},"
                 "{'function':{'name':'g','arguments':{}}}]},'done':true,'done_reason':'stop',"
                 "'prompt_eval_count':3,'eval_count':4}"),
        q(RESP_HEAD("completed") ",'error':null,'incomplete_details':null,'model':'gpt-5',"
                                 "'output':[{'id':'rs_R_0','type':'reasoning','summary':[{'type':"
                                 "'summary_text','text':'Hmm \\'q\\''}]},"
                                 "{'id':'fc_R_1','type':'function_call','status':'completed',"
                                 "'call_id':'call_9','name':'f','arguments':'{\\'a\\':1}'},"
                                 "{'id':'fc_R_2','type':'function_call','status':'completed',"
                                 "'call_id':'call_R_2','name':'g','arguments':'{}'}]," USAGE(
                                     3, 4, 7) "}"));
}

/* done_reason "length": incomplete, max_output_tokens. */
static void answer_incomplete(void **state)
{
    (void)state;
    assert_string_equal(
        complete("{'message':{'role':'assistant','content':'Hel'},'done':true,"
                 "'done_reason':'length','eval_count':1}"),
        q(RESP_HEAD("incomplete") ",'error':null,'incomplete_details':{'reason':"
                                  "'max_output_tokens'},'model':'gpt-5','output':[{'id':'msg_R_0',"
                                  "'type':'message','status':'completed','role':'assistant',"
                                  "'content':[{'type':'output_text','text':'Hel','annotations':[],"
                                  "'logprobs':[]}]}]," USAGE(0, 1, 1) "}"));
}

static void answer_errors(void **state)
{
    (void)state;
    struct buf out;
    struct apierr err = {0};
    buf_init(&out, 1 << 20);
    const char *b = q("{'error':'model crashed'}");
    assert_int_equal(responses_complete(b, strlen(b), &META, "fake0", &out, NULL, NULL, &err), -1);
    assert_int_equal(err.status, 502);
    assert_non_null(strstr(err.message, "model crashed"));
    b = q("{'message':{'tool_calls':[{'function':{}}]},'done':true}");
    assert_int_equal(responses_complete(b, strlen(b), &META, "fake0", &out, NULL, NULL, &err), -1);
    assert_int_equal(err.status, 502);
    assert_int_equal(out.len, 0);
    /* the ceiling: a 500 and nothing written */
    out.max = 20;
    b = q("{'message':{'content':'Hi'},'done':true}");
    assert_int_equal(responses_complete(b, strlen(b), &META, "fake0", &out, NULL, NULL, &err), -1);
    assert_int_equal(err.status, 500);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */

/* Feed lines (single-quoted JSON, NULL-terminated) and return what was
 * written; *last gets the last result. */
static const char *feed(struct responses_stream *s, const char *const *lines, int *last)
{
    static char result[65536];
    struct buf out;
    struct apierr err = {0};
    buf_init(&out, 1 << 20);
    *last = RESPONSES_MORE;
    for (size_t i = 0; lines[i]; i++) {
        const char *l = q(lines[i]);
        *last = responses_stream_line(s, l, strlen(l), &out, &err);
        if (*last != RESPONSES_MORE)
            break;
    }
    assert_true(out.len < sizeof result);
    memcpy(result, out.p ? out.p : "", out.len + 1);
    buf_free(&out);
    return result;
}

/* Every event is "event: T\ndata: {...T...}\n\n", sequence numbers count
 * from 0; returns the event types joined with spaces. */
static const char *event_types(const char *p)
{
    static char types[4096];
    size_t n = 0;
    unsigned seq = 0;
    types[0] = '\0';
    while (*p) {
        assert_memory_equal(p, "event: ", 7);
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char type[96];
        size_t tl = (size_t)(nl - p - 7);
        assert_true(tl < sizeof type);
        memcpy(type, p + 7, tl);
        type[tl] = '\0';
        assert_memory_equal(nl + 1, "data: ", 6);
        const char *data = nl + 7;
        const char *end = strstr(data, "\n\n");
        assert_non_null(end);
        cJSON *j = cJSON_ParseWithLength(data, (size_t)(end - data));
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, type);
        assert_int_equal(cJSON_GetObjectItem(j, "sequence_number")->valueint, seq++);
        cJSON_Delete(j);
        n += (size_t)snprintf(types + n, sizeof types - n, "%s%s", n ? " " : "",
                              type + (strncmp(type, "response.", 9) == 0 ? 9 : 0));
        p = end + 2;
    }
    return types;
}

static void start(struct responses_stream *s)
{
    assert_int_equal(responses_stream_init(s, "resp_R", "gpt-5", 7), 0);
    responses_stream_set_backend(s, "fake0");
}

/* The whole text stream, byte for byte. */
static void stream_text_exact(void **state)
{
    (void)state;
    struct responses_stream s;
    int last;
    start(&s);
    const char *lines[] = {
        "{'model':'x','created_at':'t','message':{'role':'assistant','content':'He'},'done':false}",
        "{'model':'x','created_at':'t','message':{'role':'assistant','content':'y\\n'},'done':"
        "false}",
        "{'model':'x','message':{'role':'assistant','content':''},'done':true,'done_reason':'stop',"
        "'prompt_eval_count':5,'eval_count':2}",
        NULL};
    const char *out = feed(&s, lines, &last);
    assert_int_equal(last, RESPONSES_DONE);
    const char *head = "{'id':'resp_R','object':'response','created_at':7,'status':'in_progress',"
                       "'error':null,'incomplete_details':null,'model':'gpt-5','output':[],'usage':"
                       "null}";
    const char *item = "{'id':'msg_R_0','type':'message','status':'completed','role':'assistant',"
                       "'content':[{'type':'output_text','text':'Hey\\n','annotations':[],"
                       "'logprobs':[]}]}";
    char expected[8192];
    snprintf(
        expected, sizeof expected,
        "event: response.created\ndata: {'type':'response.created','sequence_number':0,"
        "'response':%s}\n\n"
        "event: response.in_progress\ndata: {'type':'response.in_progress','sequence_number':1,"
        "'response':%s}\n\n"
        "event: response.output_item.added\ndata: {'type':'response.output_item.added',"
        "'sequence_number':2,'output_index':0,'item':{'id':'msg_R_0','type':'message','status':"
        "'in_progress','role':'assistant','content':[]}}\n\n"
        "event: response.content_part.added\ndata: {'type':'response.content_part.added',"
        "'sequence_number':3,'item_id':'msg_R_0','output_index':0,'content_index':0,'part':{"
        "'type':'output_text','text':'','annotations':[],'logprobs':[]}}\n\n"
        "event: response.output_text.delta\ndata: {'type':'response.output_text.delta',"
        "'sequence_number':4,'item_id':'msg_R_0','output_index':0,'content_index':0,'delta':'He',"
        "'logprobs':[]}\n\n"
        "event: response.output_text.delta\ndata: {'type':'response.output_text.delta',"
        "'sequence_number':5,'item_id':'msg_R_0','output_index':0,'content_index':0,'delta':"
        "'y\\n','logprobs':[]}\n\n"
        "event: response.output_text.done\ndata: {'type':'response.output_text.done',"
        "'sequence_number':6,'item_id':'msg_R_0','output_index':0,'content_index':0,'text':"
        "'Hey\\n','logprobs':[]}\n\n"
        "event: response.content_part.done\ndata: {'type':'response.content_part.done',"
        "'sequence_number':7,'item_id':'msg_R_0','output_index':0,'content_index':0,'part':{"
        "'type':'output_text','text':'Hey\\n','annotations':[],'logprobs':[]}}\n\n"
        "event: response.output_item.done\ndata: {'type':'response.output_item.done',"
        "'sequence_number':8,'output_index':0,'item':%s}\n\n"
        "event: response.completed\ndata: {'type':'response.completed','sequence_number':9,"
        "'response':{'id':'resp_R','object':'response','created_at':7,'status':'completed',"
        "'error':null,'incomplete_details':null,'model':'gpt-5','output':[%s]," USAGE(5, 2,
                                                                                      7) "}}\n\n",
        head, head, item, item);
    assert_string_equal(out, q(expected));
    assert_int_equal(s.prompt_tokens, 5);
    assert_int_equal(s.completion_tokens, 2);
    struct apierr err = {0};
    assert_int_equal(responses_stream_eof(&s, &err), RESPONSES_DONE);
    responses_stream_free(&s);
}

/* Reasoning, then text, then a call. */
static void stream_reasoning_text_call(void **state)
{
    (void)state;
    struct responses_stream s;
    int last;
    start(&s);
    const char *lines[] = {
        "{'message':{'role':'assistant','content':'','thinking':'Let'},'done':false}",
        "{'message':{'role':'assistant','content':'','thinking':' me'},'done':false}",
        "{'message':{'role':'assistant','content':'Ok'},'done':false}",
        "{'message':{'role':'assistant','content':'','tool_calls':[{'id':'c1','function':{'name':"
        "'f','arguments':{'x':[1,2]}}}]},'done':false}",
        "{'message':{'role':'assistant','content':''},'done':true,'done_reason':'stop'}",
        NULL};
    const char *out = feed(&s, lines, &last);
    assert_int_equal(last, RESPONSES_DONE);
    assert_string_equal(
        event_types(out),
        "created in_progress output_item.added reasoning_summary_part.added "
        "reasoning_summary_text.delta reasoning_summary_text.delta reasoning_summary_text.done "
        "reasoning_summary_part.done output_item.done output_item.added content_part.added "
        "output_text.delta output_text.done content_part.done output_item.done output_item.added "
        "function_call_arguments.delta function_call_arguments.done output_item.done completed");
    assert_non_null(strstr(
        out, q("{'type':'response.reasoning_summary_text.done','sequence_number':6,'item_id':"
               "'rs_R_0','output_index':0,'summary_index':0,'text':'Let me'}")));
    assert_non_null(strstr(out, q("{'type':'response.output_item.added','sequence_number':15,"
                                  "'output_index':2,'item':{'id':'fc_R_2','type':'function_call',"
                                  "'status':'in_progress','call_id':'c1','name':'f','arguments':"
                                  "''}}")));
    assert_non_null(strstr(out, q("{'type':'response.function_call_arguments.delta',"
                                  "'sequence_number':16,'item_id':'fc_R_2','output_index':2,"
                                  "'delta':'{\\'x\\':[1,2]}'}")));
    assert_non_null(strstr(out, q("{'type':'response.function_call_arguments.done',"
                                  "'sequence_number':17,'item_id':'fc_R_2','output_index':2,"
                                  "'name':'f','arguments':'{\\'x\\':[1,2]}'}")));
    /* the final response holds all three items, in order */
    assert_non_null(strstr(
        out, q("'output':[{'id':'rs_R_0','type':'reasoning','summary':[{'type':'summary_text',"
               "'text':'Let me'}]},{'id':'msg_R_1','type':'message','status':'completed','role':"
               "'assistant','content':[{'type':'output_text','text':'Ok','annotations':[],"
               "'logprobs':[]}]},{'id':'fc_R_2','type':'function_call','status':'completed',"
               "'call_id':'c1','name':'f','arguments':'{\\'x\\':[1,2]}'}]")));
    responses_stream_free(&s);
}

/* Thinking after text opens a new reasoning item; tool calls on the done
 * line; no id from Ollama: one is made from the response id. */
static void stream_interleaved_and_done_calls(void **state)
{
    (void)state;
    struct responses_stream s;
    int last;
    start(&s);
    const char *lines[] = {
        "{'message':{'role':'assistant','content':'A'},'done':false}",
        "{'message':{'role':'assistant','content':'','thinking':'T'},'done':false}",
        "{'message':{'role':'assistant','content':'B','tool_calls':[{'function':{'name':'g',"
        "'arguments':{}}}]},'done':true,'done_reason':'stop'}",
        NULL};
    const char *out = feed(&s, lines, &last);
    assert_int_equal(last, RESPONSES_DONE);
    assert_string_equal(
        event_types(out),
        "created in_progress output_item.added content_part.added output_text.delta "
        "output_text.done content_part.done output_item.done output_item.added "
        "reasoning_summary_part.added reasoning_summary_text.delta reasoning_summary_text.done "
        "reasoning_summary_part.done output_item.done output_item.added content_part.added "
        "output_text.delta output_text.done content_part.done output_item.done output_item.added "
        "function_call_arguments.delta function_call_arguments.done output_item.done completed");
    assert_non_null(strstr(out, q("'call_id':'call_R_3','name':'g','arguments':'{}'")));
    responses_stream_free(&s);
}

/* done_reason "length": response.incomplete. An empty answer: one empty
 * message. */
static void stream_incomplete_and_empty(void **state)
{
    (void)state;
    struct responses_stream s;
    int last;
    start(&s);
    const char *lines[] = {"{'message':{'role':'assistant','content':'a'},'done':false}",
                           "{'message':{'role':'assistant','content':''},'done':true,"
                           "'done_reason':'length','eval_count':1}",
                           NULL};
    const char *out = feed(&s, lines, &last);
    assert_int_equal(last, RESPONSES_DONE);
    assert_string_equal(event_types(out),
                        "created in_progress output_item.added content_part.added "
                        "output_text.delta output_text.done content_part.done output_item.done "
                        "incomplete");
    assert_non_null(strstr(out, q("'status':'incomplete','error':null,'incomplete_details':{"
                                  "'reason':'max_output_tokens'}")));
    responses_stream_free(&s);

    start(&s);
    const char *empty[] = {"{'message':{'role':'assistant','content':''},'done':true}", NULL};
    out = feed(&s, empty, &last);
    assert_int_equal(last, RESPONSES_DONE);
    assert_string_equal(event_types(out),
                        "created in_progress output_item.added content_part.added "
                        "output_text.done content_part.done output_item.done completed");
    responses_stream_free(&s);
}

/* An error line after the first event: FAIL with nothing written for it,
 * then the failure event goes on numbering; later lines fail too. */
static void stream_error_after_first_event(void **state)
{
    (void)state;
    struct responses_stream s;
    struct apierr err = {0};
    struct buf out;
    int last;
    start(&s);
    const char *lines[] = {"{'message':{'role':'assistant','content':'a'},'done':false}", NULL};
    const char *first = feed(&s, lines, &last);
    assert_int_equal(last, RESPONSES_MORE);
    assert_string_equal(event_types(first),
                        "created in_progress output_item.added content_part.added "
                        "output_text.delta");
    buf_init(&out, 1 << 20);
    const char *bad = q("{'error':'out of memory'}");
    assert_int_equal(responses_stream_line(&s, bad, strlen(bad), &out, &err), RESPONSES_FAIL);
    assert_int_equal(out.len, 0);
    assert_int_equal(err.status, 502);
    assert_non_null(strstr(err.message, "out of memory"));
    apierr_set(&err, 502, APIERR_API, "upstream_error", NULL, "boom");
    assert_int_equal(responses_stream_fail(&s, &out, &err), 0);
    assert_string_equal(
        out.p, q("event: response.failed\ndata: {'type':'response.failed','sequence_number':5,"
                 "'response':{'id':'resp_R','object':'response','created_at':7,'status':'failed',"
                 "'error':{'code':'upstream_error','message':'boom'},'incomplete_details':null,"
                 "'model':'gpt-5','output':[],'usage':null}}\n\n"));
    const char *good = q("{'message':{'content':'b'},'done':false}");
    assert_int_equal(responses_stream_line(&s, good, strlen(good), &out, &err), RESPONSES_FAIL);
    assert_int_equal(responses_stream_eof(&s, &err), RESPONSES_FAIL);
    buf_free(&out);
    responses_stream_free(&s);
}

/* A failure before any event (only keep-alives went out): the failure
 * still starts with response.created, as the SDK's accumulator needs. */
static void stream_fail_before_first_event(void **state)
{
    (void)state;
    struct responses_stream s;
    struct apierr err = {0};
    struct buf out;
    start(&s);
    buf_init(&out, 1 << 20);
    apierr_set(&err, 504, APIERR_API, "upstream_timeout", NULL, "too slow");
    assert_int_equal(responses_stream_fail(&s, &out, &err), 0);
    assert_string_equal(event_types(out.p), "created in_progress failed");
    assert_non_null(strstr(out.p, q("'error':{'code':'upstream_timeout','message':'too slow'}")));
    buf_free(&out);
    responses_stream_free(&s);
}

/* Broken lines, an early end, and the ceiling: nothing written. */
static void stream_broken(void **state)
{
    (void)state;
    struct responses_stream s;
    struct apierr err = {0};
    struct buf out;
    buf_init(&out, 1 << 20);
    start(&s);
    assert_int_equal(responses_stream_line(&s, "not json", 8, &out, &err), RESPONSES_FAIL);
    assert_int_equal(err.status, 502);
    assert_int_equal(out.len, 0);
    responses_stream_free(&s);

    start(&s);
    const char *l = q("{'message':{'content':'a'},'done':false}");
    assert_int_equal(responses_stream_line(&s, l, strlen(l), &out, &err), RESPONSES_MORE);
    assert_int_equal(responses_stream_eof(&s, &err), RESPONSES_FAIL);
    assert_non_null(strstr(err.message, "closed the stream"));
    responses_stream_free(&s);

    buf_reset(&out);
    out.max = 100;
    start(&s);
    assert_int_equal(responses_stream_line(&s, l, strlen(l), &out, &err), RESPONSES_FAIL);
    assert_int_equal(err.status, 500);
    assert_int_equal(out.len, 0);
    responses_stream_free(&s);
    buf_free(&out);
}

/* A call to a function of a namespace group carries its namespace, in the
 * whole answer and in every event of a stream; the request remembers which
 * names came from which group. */
static void namespaces(void **state)
{
    (void)state;
    struct responses_req r;
    struct apierr err = {0};
    const char *b = q("{'model':'m','input':'x','tools':[{'type':'function','name':'top'},"
                      "{'type':'namespace','name':'crm','tools':[{'type':'function','name':"
                      "'lookup'},{'type':'function','name':'save'}]}]}");
    assert_int_equal(responses_req_parse(&r, b, strlen(b), &err), 0);
    assert_int_equal(r.namespaces.len, sizeof "lookup\0crm\0save\0crm");
    assert_memory_equal(r.namespaces.p, "lookup\0crm\0save\0crm", r.namespaces.len);

    struct responses_meta m = META;
    m.namespaces = r.namespaces.p;
    m.namespaces_len = r.namespaces.len;
    struct buf out;
    buf_init(&out, 1 << 20);
    const char *native = q("{'message':{'role':'assistant','content':'','tool_calls':["
                           "{'id':'a','function':{'name':'save','arguments':{}}},"
                           "{'id':'b','function':{'name':'top','arguments':{}}}]},'done':true}");
    assert_int_equal(responses_complete(native, strlen(native), &m, "f", &out, NULL, NULL, &err),
                     0);
    assert_non_null(strstr(out.p, q("'call_id':'a','name':'save','namespace':'crm','arguments'")));
    assert_non_null(strstr(out.p, q("'call_id':'b','name':'top','arguments'")));

    struct responses_stream s;
    int last;
    start(&s);
    responses_stream_set_namespaces(&s, r.namespaces.p, r.namespaces.len);
    const char *lines[] = {"{'message':{'role':'assistant','content':'','tool_calls':[{'id':'c',"
                           "'function':{'name':'lookup','arguments':{}}}]},'done':true}",
                           NULL};
    const char *ev = feed(&s, lines, &last);
    assert_int_equal(last, RESPONSES_DONE);
    /* output_item.added, output_item.done, the final response */
    const char *item = q("'name':'lookup','namespace':'crm'");
    const char *p = ev;
    int n = 0;
    while ((p = strstr(p, item)) != NULL) {
        n++;
        p++;
    }
    assert_int_equal(n, 3);
    responses_stream_free(&s);
    buf_free(&out);
    responses_req_free(&r);
}

/* Custom (freeform) tools, as Codex CLI sends apply_patch: offered to Ollama
 * as a function taking one string `input` described by the grammar; their
 * past calls and outputs go back as tool calls and tool messages; a call is
 * answered as a custom_tool_call item (whole and streamed, with the
 * custom_tool_call_input events), its input taken from the `input` argument
 * (or the whole arguments when the model named them otherwise). */
static void custom_tools(void **state)
{
    (void)state;
    expect_native(
        "{'model':'m','input':'x','tools':[{'type':'custom','name':'apply_patch','description':"
        "'Edit files.','format':{'type':'grammar','syntax':'lark','definition':'start: "
        "\\'x\\''}},{'type':'custom','name':'note'}],'tool_choice':'auto'}",
        "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'x'}],'tools':["
        "{'type':'function','function':{'name':'apply_patch','description':'Edit files.',"
        "'parameters':{'type':'object','properties':{'input':{'type':'string','description':"
        "'The whole input of the tool, as plain text. It must match this lark grammar:\\nstart: "
        "\\'x\\''}},'required':['input']}}},"
        "{'type':'function','function':{'name':'note','parameters':{'type':'object','properties':"
        "{'input':{'type':'string','description':'The whole input of the tool, as plain text.'}},"
        "'required':['input']}}}]}");
    /* tool_choice names a custom tool: only it is sent */
    expect_native("{'model':'m','input':'x','tools':[{'type':'custom','name':'a'},"
                  "{'type':'function','name':'b'}],'tool_choice':{'type':'custom','name':'a'}}",
                  "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'x'}],"
                  "'tools':[{'type':'function','function':{'name':'a','parameters':{'type':"
                  "'object','properties':{'input':{'type':'string','description':"
                  "'The whole input of the tool, as plain text.'}},'required':['input']}}}]}");
    /* a past call and its output */
    expect_native(
        "{'model':'m','input':[{'role':'user','content':'x'},"
        "{'type':'custom_tool_call','call_id':'c1','name':'apply_patch','input':'*** Begin'},"
        "{'type':'custom_tool_call_output','call_id':'c1','output':'Done'}]}",
        "{'model':'llama3.2','stream':false,'messages':[{'role':'user','content':'x'},"
        "{'role':'assistant','content':'','tool_calls':[{'id':'c1','function':{'name':"
        "'apply_patch','arguments':{'input':'*** Begin'}}}]},"
        "{'role':'tool','content':'Done','tool_call_id':'c1','tool_name':'apply_patch'}]}");
    expect_reject("{'model':'m','input':[{'type':'custom_tool_call','call_id':'c','name':'a'}]}",
                  "input[0].input", "Missing");
    expect_reject("{'model':'m','input':'x','tools':[{'type':'custom','name':''}]}",
                  "tools[0].name", "empty");
    expect_reject("{'model':'m','input':'x','tools':[{'type':'custom','name':'a','format':'g'}]}",
                  "tools[0].format", "object");

    struct responses_req r;
    struct apierr err = {0};
    const char *b = q("{'model':'m','input':'x','tools':[{'type':'function','name':'f'},"
                      "{'type':'custom','name':'apply_patch'},{'type':'custom','name':'note'}]}");
    assert_int_equal(responses_req_parse(&r, b, strlen(b), &err), 0);
    assert_int_equal(r.customs.len, sizeof "apply_patch\0note");
    assert_memory_equal(r.customs.p, "apply_patch\0note", r.customs.len);

    struct responses_meta m = META;
    m.customs = r.customs.p;
    m.customs_len = r.customs.len;
    struct buf out;
    buf_init(&out, 1 << 20);
    const char *native =
        q("{'message':{'role':'assistant','content':'','tool_calls':["
          "{'id':'a','function':{'name':'apply_patch','arguments':{'input':'*** Begin\\n'}}},"
          "{'id':'b','function':{'name':'note','arguments':{'text':'hi'}}},"
          "{'id':'c','function':{'name':'f','arguments':{}}}]},'done':true}");
    assert_int_equal(responses_complete(native, strlen(native), &m, "f", &out, NULL, NULL, &err),
                     0);
    assert_non_null(strstr(out.p, q("'output':[{'id':'ctc_R_0','type':'custom_tool_call','status':"
                                    "'completed','call_id':'a','name':'apply_patch','input':'*** "
                                    "Begin\\n'},{'id':'ctc_R_1','type':'custom_tool_call','status':"
                                    "'completed','call_id':'b','name':'note','input':'{\\'text\\':"
                                    "\\'hi\\'}'},{'id':'fc_R_2','type':'function_call','status':"
                                    "'completed','call_id':'c','name':'f','arguments':'{}'}]")));

    struct responses_stream s;
    int last;
    start(&s);
    responses_stream_set_customs(&s, r.customs.p, r.customs.len);
    const char *lines[] = {"{'message':{'role':'assistant','content':'','tool_calls':[{'id':'c',"
                           "'function':{'name':'apply_patch','arguments':{'input':'P'}}}]},"
                           "'done':true}",
                           NULL};
    const char *ev = feed(&s, lines, &last);
    assert_int_equal(last, RESPONSES_DONE);
    assert_string_equal(event_types(ev),
                        "created in_progress output_item.added custom_tool_call_input.delta "
                        "custom_tool_call_input.done output_item.done completed");
    const char *item = "{'id':'ctc_R_0','type':'custom_tool_call','status':'completed','call_id':"
                       "'c','name':'apply_patch','input':'P'}";
    char expected[2048];
    snprintf(expected, sizeof expected,
             "event: response.output_item.added\ndata: {'type':'response.output_item.added',"
             "'sequence_number':2,'output_index':0,'item':{'id':'ctc_R_0','type':"
             "'custom_tool_call','status':'in_progress','call_id':'c','name':'apply_patch',"
             "'input':''}}\n\n"
             "event: response.custom_tool_call_input.delta\ndata: {'type':"
             "'response.custom_tool_call_input.delta','sequence_number':3,'item_id':'ctc_R_0',"
             "'output_index':0,'delta':'P'}\n\n"
             "event: response.custom_tool_call_input.done\ndata: {'type':"
             "'response.custom_tool_call_input.done','sequence_number':4,'item_id':'ctc_R_0',"
             "'output_index':0,'input':'P'}\n\n"
             "event: response.output_item.done\ndata: {'type':'response.output_item.done',"
             "'sequence_number':5,'output_index':0,'item':%s}\n\n",
             item);
    assert_non_null(strstr(ev, q(expected)));
    snprintf(expected, sizeof expected, "'output':[%s]", item);
    assert_non_null(strstr(ev, q(expected)));
    responses_stream_free(&s);
    buf_free(&out);
    responses_req_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(req_string_input),
        cmocka_unit_test(req_items),
        cmocka_unit_test(req_image),
        cmocka_unit_test(req_function_round_trip),
        cmocka_unit_test(req_tools),
        cmocka_unit_test(req_tool_choice),
        cmocka_unit_test(req_options),
        cmocka_unit_test(req_ignored),
        cmocka_unit_test(req_stateful_refused),
        cmocka_unit_test(req_rejects),
        cmocka_unit_test(answer_text),
        cmocka_unit_test(answer_reasoning_and_calls),
        cmocka_unit_test(answer_incomplete),
        cmocka_unit_test(answer_errors),
        cmocka_unit_test(stream_text_exact),
        cmocka_unit_test(stream_reasoning_text_call),
        cmocka_unit_test(stream_interleaved_and_done_calls),
        cmocka_unit_test(stream_incomplete_and_empty),
        cmocka_unit_test(stream_error_after_first_event),
        cmocka_unit_test(stream_fail_before_first_event),
        cmocka_unit_test(stream_broken),
        cmocka_unit_test(namespaces),
        cmocka_unit_test(custom_tools),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
