/*
 * Unit tests for gateway/proto/embeddings.c, through the dialect table the
 * engine uses: every request rule and its 400 (message and param), the
 * native body byte for byte, float and base64 answers (the base64 decoded
 * here and compared float by float), usage, and malformed native answers.
 *
 * JSON in this file is written with single quotes; dq() turns them into
 * double quotes (no test text needs a real apostrophe).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "embeddings.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct dialect *const D = &dialect_embeddings;

/* A copy of s with ' as " (the caller frees it). */
static char *dq(const char *s)
{
    char *c = strdup(s);
    assert_non_null(c);
    for (char *p = c; (p = strchr(p, '\'')); p++)
        *p = '"';
    return c;
}

/* The engine's side of translate(): what the dialect asked, and its answer. */
struct resolver {
    int calls;
    char model[128];
    bool stream;
    const cJSON *options; /* the alias's, handed back */
    int refuse;           /* non-zero: refuse with this status */
};

static int resolve(void *ctx, const char *client_model, bool stream, struct dialect_model *m,
                   struct apierr *e)
{
    struct resolver *r = ctx;
    r->calls++;
    snprintf(r->model, sizeof r->model, "%s", client_model);
    r->stream = stream;
    if (r->refuse)
        return apierr_set(e, r->refuse, APIERR_PERMISSION, "model_not_allowed", "model",
                          "Not in this key's scope");
    m->name = "nomic-embed-text";
    m->options = r->options;
    return 0;
}

/* One request's life, as far as the engine takes it. */
struct session {
    void *st; /* the dialect's state, zeroed as the engine does */
    struct buf native;
    struct apierr err;
    struct resolver res;
    int rc; /* translate()'s */
};

/* translate() on body as it stands, into a native buffer with this ceiling,
 * then begin(), as the engine runs them. t is zeroed by the caller, who may
 * have set t->res first. */
static void run(struct session *t, const char *body, size_t len, size_t native_max)
{
    t->st = calloc(1, D->state_size);
    assert_non_null(t->st);
    buf_init(&t->native, native_max);
    t->rc = D->translate(t->st, body, len, resolve, &t->res, &t->native, &t->err);
    struct dialect_answer a = {.client_model = "text-embedding-3-small", .created = 1};
    assert_int_equal(D->begin(t->st, &a), 0);
    ((struct dialect_common *)t->st)->backend = "gpu1";
}

static void start_with(struct session *t, const char *body_sq, const char *options_sq)
{
    memset(t, 0, sizeof *t);
    cJSON *opts = NULL;
    if (options_sq) {
        char *o = dq(options_sq);
        opts = cJSON_Parse(o);
        free(o);
        assert_non_null(opts);
    }
    t->res.options = opts;
    char *b = dq(body_sq);
    run(t, b, strlen(b), 1u << 26);
    free(b);
    cJSON_Delete(opts);
    t->res.options = NULL;
}

static void start(struct session *t, const char *body_sq)
{
    start_with(t, body_sq, NULL);
}

static void finish(struct session *t)
{
    D->release(t->st);
    free(t->st);
    buf_free(&t->native);
}

static void expect_native_with(const char *body_sq, const char *options_sq, const char *native_sq)
{
    struct session t;
    start_with(&t, body_sq, options_sq);
    if (t.rc != 0)
        fail_msg("rejected: %d %s (param %s)", t.err.status, t.err.message, t.err.param);
    char *want = dq(native_sq);
    assert_string_equal(t.native.p, want);
    free(want);
    /* resolve: exactly once, with the client's name, never a stream */
    assert_int_equal(t.res.calls, 1);
    assert_false(t.res.stream);
    cJSON *j = cJSON_Parse(t.native.p);
    assert_true(cJSON_IsObject(j));
    cJSON_Delete(j);
    finish(&t);
}

static void expect_native(const char *body_sq, const char *native_sq)
{
    expect_native_with(body_sq, NULL, native_sq);
}

/* A 400 naming param ("" = null) whose message holds msg_part; no backend
 * was asked for, nothing was written. */
static void expect_reject(const char *body_sq, const char *param, const char *msg_part)
{
    struct session t;
    start(&t, body_sq);
    if (t.rc != -1)
        fail_msg("accepted: %s -> %s", body_sq, t.native.p);
    assert_int_equal(t.err.status, 400);
    assert_string_equal(t.err.type, APIERR_INVALID);
    assert_null(t.err.code);
    assert_string_equal(t.err.param, param);
    if (!strstr(t.err.message, msg_part))
        fail_msg("%s: message '%s' lacks '%s'", body_sq, t.err.message, msg_part);
    assert_int_equal(t.res.calls, 0);
    assert_int_equal(t.native.len, 0);
    finish(&t);
}

/* Translate a native answer (single quotes) for t; the output is in *out. */
static int answer_into(struct session *t, const char *native_sq, struct buf *out)
{
    char *n = dq(native_sq);
    int rc = D->complete(t->st, n, strlen(n), out, &t->err);
    free(n);
    return rc;
}

/* The answer's JSON for a request body and a native answer. */
static void expect_answer(const char *body_sq, const char *native_sq, const char *want_sq)
{
    struct session t;
    struct buf out;
    start(&t, body_sq);
    assert_int_equal(t.rc, 0);
    buf_init(&out, 1u << 26);
    if (answer_into(&t, native_sq, &out) != 0)
        fail_msg("failed: %d %s", t.err.status, t.err.message);
    char *want = dq(want_sq);
    assert_string_equal(out.p, want);
    free(want);
    buf_free(&out);
    finish(&t);
}

/* A 502 upstream_error naming the backend, holding msg_part; out unchanged. */
static void expect_bad_answer(const char *body_sq, const char *native_sq, const char *msg_part)
{
    struct session t;
    struct buf out;
    start(&t, body_sq);
    assert_int_equal(t.rc, 0);
    buf_init(&out, 1u << 20);
    assert_int_equal(buf_puts(&out, "before"), 0);
    if (answer_into(&t, native_sq, &out) != -1)
        fail_msg("accepted %s: %s", native_sq, out.p);
    assert_string_equal(out.p, "before");
    assert_int_equal(t.err.status, 502);
    assert_string_equal(t.err.type, APIERR_API);
    assert_string_equal(t.err.code, "upstream_error");
    assert_string_equal(t.err.param, "");
    if (!strstr(t.err.message, "Backend \"gpu1\"") || !strstr(t.err.message, msg_part))
        fail_msg("%s: message '%s' lacks the backend or '%s'", native_sq, t.err.message, msg_part);
    buf_free(&out);
    finish(&t);
}

/* The float32 values of a base64 embedding. */
static size_t decode_floats(const char *b64, size_t len, float *f, size_t max)
{
    size_t n = 0;
    unsigned char *bin = malloc(len + 1);
    assert_non_null(bin);
    assert_int_equal(
        sodium_base642bin(bin, len + 1, b64, len, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL),
        0);
    assert_int_equal(n % 4, 0);
    assert_true(n / 4 <= max);
    for (size_t i = 0; i < n / 4; i++) {
        const unsigned char *b = bin + 4 * i;
        uint32_t u =
            (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(&f[i], &u, sizeof u);
    }
    free(bin);
    return n / 4;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

static void req_string_input(void **state)
{
    (void)state;
    expect_native("{'model':'text-embedding-3-small','input':'hello'}",
                  "{'model':'nomic-embed-text','input':['hello'],'truncate':true}");
    struct session t;
    start(&t, "{'model':'text-embedding-3-small','input':'hello'}");
    assert_string_equal(t.res.model, "text-embedding-3-small");
    finish(&t);
}

static void req_array_input(void **state)
{
    (void)state;
    expect_native("{'model':'m','input':['a', 'b','' ]}",
                  "{'model':'nomic-embed-text','input':['a','b',''],'truncate':true}");
}

/* Ollama's /v1 sends "" as [""]: one (empty) input, one vector back. */
static void req_empty_string_is_one_input(void **state)
{
    (void)state;
    expect_native("{'model':'m','input':''}",
                  "{'model':'nomic-embed-text','input':[''],'truncate':true}");
}

static void req_strings_survive(void **state)
{
    (void)state;
    /* escapes come out in their shortest form, UTF-8 as it stands */
    expect_native("{'model':'m','input':['\\u00e9\\u20ac \\ud83d\\ude00','q\\'b\\\\s\\/',"
                  "'\\b\\f\\n\\r\\t\\u0001\\u001f']}",
                  "{'model':'nomic-embed-text','input':['é€ 😀','q\\'b\\\\s/',"
                  "'\\b\\f\\n\\r\\t\\u0001\\u001f'],'truncate':true}");
}

static void req_dimensions_and_alias_options(void **state)
{
    (void)state;
    expect_native("{'model':'m','input':'x','dimensions':256}",
                  "{'model':'nomic-embed-text','input':['x'],'truncate':true,'dimensions':256}");
    expect_native("{'model':'m','input':'x','dimensions':1.0}",
                  "{'model':'nomic-embed-text','input':['x'],'truncate':true,'dimensions':1}");
    expect_native_with("{'model':'m','input':['x'],'dimensions':64}", "{'num_ctx':8192}",
                       "{'model':'nomic-embed-text','input':['x'],'truncate':true,"
                       "'dimensions':64,'options':{'num_ctx':8192}}");
    /* an alias without options, or with an empty object: no "options" */
    expect_native_with("{'model':'m','input':'x'}", "{}",
                       "{'model':'nomic-embed-text','input':['x'],'truncate':true}");
}

static void req_ignored_fields(void **state)
{
    (void)state;
    /* user, unknown fields, a client's options: never forwarded; null is absent */
    expect_native("{'model':'m','input':'x','user':'u-1','options':{'num_ctx':1},'stream':true,"
                  "'encoding_format':null,'dimensions':null,'extra':[1,{}]}",
                  "{'model':'nomic-embed-text','input':['x'],'truncate':true}");
    expect_native("{'user':42,'input':'x','model':'m','encoding_format':'float'}",
                  "{'model':'nomic-embed-text','input':['x'],'truncate':true}");
}

static void req_bad_bodies(void **state)
{
    (void)state;
    expect_reject("", "", "The request body is empty");
    expect_reject("not json", "",
                  "could not parse the JSON body of your request (error at byte 0)");
    expect_reject("{'model':'m','input':'x'} x", "", "error at byte 26");
    expect_reject("{'model':'m','input':'x'", "", "could not parse");
    expect_reject("['m']", "", "must be a JSON object, not an array");
    expect_reject("null", "", "must be a JSON object, not null");
}

static void req_bad_model(void **state)
{
    (void)state;
    expect_reject("{'input':'x'}", "model", "Missing required parameter: 'model'.");
    expect_reject("{'model':null,'input':'x'}", "model", "Missing required parameter: 'model'.");
    expect_reject("{'model':5,'input':'x'}", "model",
                  "Invalid type for 'model': expected a string, but got a number instead.");
    expect_reject("{'model':'','input':'x'}", "model", "'model' must not be empty.");
}

static void req_bad_input(void **state)
{
    (void)state;
    expect_reject("{'model':'m'}", "input", "Missing required parameter: 'input'.");
    expect_reject("{'model':'m','input':null}", "input", "Missing required parameter: 'input'.");
    expect_reject("{'model':'m','input':[]}", "input", "'input' must not be an empty array");
    expect_reject("{'model':'m','input':5}", "input",
                  "Invalid type for 'input': expected a string or an array of strings, but got a "
                  "number instead.");
    expect_reject("{'model':'m','input':{'text':'x'}}", "input", "but got an object instead");
    expect_reject("{'model':'m','input':true}", "input", "but got a boolean instead");
}

static void req_token_arrays(void **state)
{
    (void)state;
    const char *msg = "Token arrays are not supported in 'input'";
    expect_reject("{'model':'m','input':[1,2,3]}", "input", msg);
    expect_reject("{'model':'m','input':[[1,2],[3]]}", "input", msg);
    expect_reject("{'model':'m','input':[[]]}", "input", msg);
    /* mixed: the first item that is not a string is named */
    expect_reject("{'model':'m','input':['a',3]}", "input[1]",
                  "Invalid type for 'input[1]': expected a string, but got a number instead.");
    expect_reject("{'model':'m','input':[[1],'a']}", "input[0]", "but got an array instead");
    expect_reject("{'model':'m','input':['a','b',null]}", "input[2]", "but got null instead");
    expect_reject("{'model':'m','input':[['a']]}", "input[0]", "but got an array instead");
    expect_reject("{'model':'m','input':['a',{}]}", "input[1]", "but got an object instead");
}

static void req_encoding_format(void **state)
{
    (void)state;
    expect_reject("{'model':'m','input':'x','encoding_format':'binary'}", "encoding_format",
                  "Invalid value for 'encoding_format': \"binary\". Supported values are: 'float' "
                  "and 'base64'.");
    expect_reject("{'model':'m','input':'x','encoding_format':'Base64'}", "encoding_format",
                  "\"Base64\"");
    expect_reject("{'model':'m','input':'x','encoding_format':''}", "encoding_format", "\"\"");
    expect_reject("{'model':'m','input':'x','encoding_format':1}", "encoding_format",
                  "Invalid type for 'encoding_format': expected a string, but got a number");
    /* base64 changes nothing upstream */
    expect_native("{'model':'m','input':'x','encoding_format':'base64'}",
                  "{'model':'nomic-embed-text','input':['x'],'truncate':true}");
}

static void req_dimensions(void **state)
{
    (void)state;
    const char *msg = "Invalid value for 'dimensions': expected an integer from 1 to 2147483647.";
    expect_reject("{'model':'m','input':'x','dimensions':0}", "dimensions", msg);
    expect_reject("{'model':'m','input':'x','dimensions':-3}", "dimensions", msg);
    expect_reject("{'model':'m','input':'x','dimensions':1.5}", "dimensions", msg);
    expect_reject("{'model':'m','input':'x','dimensions':3e9}", "dimensions", msg);
    expect_reject("{'model':'m','input':'x','dimensions':'256'}", "dimensions",
                  "Invalid type for 'dimensions': expected an integer, but got a string instead.");
    expect_native("{'model':'m','input':'x','dimensions':2147483647}",
                  "{'model':'nomic-embed-text','input':['x'],'truncate':true,"
                  "'dimensions':2147483647}");
}

/* The engine's refusal (scope, say) passes through untouched. */
static void req_resolve_refuses(void **state)
{
    (void)state;
    struct session t;
    memset(&t, 0, sizeof t);
    t.res.refuse = 403;
    const char *b = "{\"model\":\"secret\",\"input\":\"x\"}";
    run(&t, b, strlen(b), 1 << 20);
    assert_int_equal(t.rc, -1);
    assert_int_equal(t.err.status, 403);
    assert_string_equal(t.err.code, "model_not_allowed");
    assert_int_equal(t.res.calls, 1);
    assert_int_equal(t.native.len, 0);
    finish(&t);
}

/* Bodies up to the configured maximum: many inputs, and one long input
 * whose escapes are the kind that grow when written back naively. */
static void req_large(void **state)
{
    (void)state;
    struct buf body;
    buf_init(&body, 1u << 26);
    assert_int_equal(buf_puts(&body, "{\"model\":\"m\",\"input\":["), 0);
    for (int i = 0; i < 20000; i++)
        assert_int_equal(buf_printf(&body, "%s\"input number %d\"", i ? "," : "", i), 0);
    assert_int_equal(buf_puts(&body, "]}"), 0);
    struct session t;
    memset(&t, 0, sizeof t);
    /* the engine's ceiling: twice the body limit, and a bit */
    run(&t, body.p, body.len, 2 * body.len + 4096);
    assert_int_equal(t.rc, 0);
    cJSON *j = cJSON_Parse(t.native.p);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "input")), 20000);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "input"), 19999)->valuestring,
                        "input number 19999");
    cJSON_Delete(j);
    finish(&t);

    buf_reset(&body);
    assert_int_equal(buf_puts(&body, "{\"model\":\"m\",\"input\":\""), 0);
    for (int i = 0; i < 500000; i++)
        assert_int_equal(buf_puts(&body, "\\b"), 0);
    assert_int_equal(buf_puts(&body, "\"}"), 0);
    memset(&t, 0, sizeof t);
    run(&t, body.p, body.len, body.len + 4096);
    assert_int_equal(t.rc, 0);
    assert_true(t.native.len < body.len + 64);
    finish(&t);
    buf_free(&body);
}

/* ------------------------------------------------------------------------ */
/* Answers                                                                   */

#define TWO "{'model':'text-embedding-3-small','input':['a','b']}"
#define TWO_B64 "{'model':'text-embedding-3-small','input':['a','b'],'encoding_format':'base64'}"
#define NATIVE_TWO                                                                                 \
    "{'model':'nomic-embed-text','embeddings':[[0.1,-0.2,0.30000001],[1e-7,0,-0,3.4028235e38]],"   \
    "'total_duration':14143917,'load_duration':1019500,'prompt_eval_count':7}"

static void answer_floats(void **state)
{
    (void)state;
    expect_answer(TWO, NATIVE_TWO,
                  "{'object':'list','data':["
                  "{'object':'embedding','index':0,'embedding':[0.1,-0.2,0.30000001]},"
                  "{'object':'embedding','index':1,'embedding':[1e-7,0,-0,3.4028235e38]}],"
                  "'model':'text-embedding-3-small','usage':{'prompt_tokens':7,'total_tokens':7}}");
}

static void answer_usage_is_recorded(void **state)
{
    (void)state;
    struct session t;
    struct buf out;
    start(&t, TWO);
    buf_init(&out, 1 << 20);
    assert_int_equal(answer_into(&t, NATIVE_TWO, &out), 0);
    const struct dialect_common *c = t.st;
    assert_int_equal(c->prompt_tokens, 7);
    assert_int_equal(c->completion_tokens, 0);
    buf_free(&out);
    finish(&t);
}

/* Missing or odd counts are 0, as chat's are. */
static void answer_usage_defaults(void **state)
{
    (void)state;
    const char *want = "{'object':'list','data':[{'object':'embedding','index':0,'embedding':[1]}],"
                       "'model':'text-embedding-3-small','usage':{'prompt_tokens':0,"
                       "'total_tokens':0}}";
    expect_answer("{'model':'m','input':'x'}", "{'embeddings':[[1]]}", want);
    expect_answer("{'model':'m','input':'x'}", "{'embeddings':[[1]],'prompt_eval_count':-4}", want);
    expect_answer("{'model':'m','input':'x'}", "{'embeddings':[[1]],'prompt_eval_count':2.5}",
                  want);
    expect_answer("{'model':'m','input':'x'}", "{'embeddings':[[1]],'prompt_eval_count':'9'}",
                  want);
    expect_answer("{'model':'m','input':'x'}",
                  "{'prompt_eval_count':1000000000000000,'embeddings':[[1]]}", want);
    expect_answer("{'model':'m','input':'x'}",
                  "{'prompt_eval_count':999999999999999,'embeddings':[[1]]}",
                  "{'object':'list','data':[{'object':'embedding','index':0,'embedding':[1]}],"
                  "'model':'text-embedding-3-small','usage':{'prompt_tokens':999999999999999,"
                  "'total_tokens':999999999999999}}");
}

/* Whitespace anywhere, members in any order, unknown members of any shape,
 * escaped keys: all read as a JSON decoder would. */
static void answer_tolerant_reading(void **state)
{
    (void)state;
    expect_answer("{'model':'m','input':['x','y']}",
                  " {\n 'prompt_eval_count' : 3 ,'extra':{'a':[1,{'b':null,'c':[true,false]}],"
                  "'d':'q\\'\\\\u'}, 'embe\\u0064dings' : [ [ 1.5 , -2E-3 ] ,\t[ ] ] } \n",
                  "{'object':'list','data':["
                  "{'object':'embedding','index':0,'embedding':[1.5,-2E-3]},"
                  "{'object':'embedding','index':1,'embedding':[]}],"
                  "'model':'text-embedding-3-small','usage':{'prompt_tokens':3,'total_tokens':3}}");
}

/* Long spellings (a float64 encoder's) become %.9g of the float32 value;
 * every number, short or long, reads back as the same float32. */
static void answer_long_numbers_round_trip(void **state)
{
    (void)state;
    struct session t;
    struct buf native, out;
    start(&t, "{'model':'m','input':'x'}");
    buf_init(&native, 1 << 22);
    buf_init(&out, 1 << 22);
    float want[4000];
    uint32_t seed = 12345;
    assert_int_equal(buf_puts(&native, "{\"embeddings\":[["), 0);
    for (int i = 0; i < 4000; i++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t bits = seed & 0xbf7fffffu; /* finite: the exponent never all ones */
        float f;
        memcpy(&f, &bits, sizeof f);
        double d = (double)f * (1.0 + (i % 3) * 1e-12); /* not exactly a float32 */
        assert_int_equal(buf_printf(&native, "%s%.*g", i ? "," : "", i % 2 ? 17 : 9, d), 0);
        want[i] = strtof(strrchr(native.p, i ? ',' : '[') + 1, NULL);
    }
    assert_int_equal(buf_puts(&native, "]]}"), 0);
    assert_int_equal(D->complete(t.st, native.p, native.len, &out, &t.err), 0);
    cJSON *j = cJSON_Parse(out.p);
    const cJSON *v =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0), "embedding");
    assert_int_equal(cJSON_GetArraySize(v), 4000);
    int i = 0;
    for (const cJSON *x = v->child; x; x = x->next, i++)
        assert_true((float)x->valuedouble == want[i] || (want[i] == 0 && x->valuedouble == 0));
    /* and nothing longer than %.9g needs */
    for (const char *p = strstr(out.p, "\"embedding\":[") + 13; *p != ']';) {
        size_t n = strcspn(p, ",]");
        assert_true(n <= 15);
        p += n + (p[n] == ',');
    }
    cJSON_Delete(j);
    buf_free(&native);
    buf_free(&out);
    finish(&t);
}

/* Every spelling of a number gives the float32 strtof() gives, bit for bit
 * (the scanner reads most of them without strtof): shortest and long
 * spellings of random floats, integers around 2^24 (where whole numbers
 * fall halfway between floats), mantissa-and-exponent forms at the edges of
 * exact doubles, and odd ones. Checked through base64, which carries the
 * bits, and through the float form, which must read back the same. */
static void answer_floats_read_as_strtof(void **state)
{
    (void)state;
    enum { TOKENS = 60000 };
    static char tokens[TOKENS][40];
    static const char *const odd[] = {
        "0",
        "-0",
        "0.0",
        "-0e0",
        "1E+3",
        "1e-0",
        "123456789",
        "0.1e1",
        "1e22",
        "1e-22",
        "9e22",
        "1e23",
        "1e-23",
        "16777217",
        "16777216.5",
        "33554435",
        "1.5e-45",
        "1e-45",
        "3.4028235e38",
        "3.40282356e38",
        "1.17549435e-38",
        "9007199254740993e-22",
        "9007199254740992e-22",
        "1234567890123456789",
        "12345678901234567890",
        "0.30000001192092896",
        "4.9406564584124654e-324",
        "1e000000000000000000000000000000000000000000000000005",
        "-25e-00000000001",
        "0.000000000000000000000001",
    };
    size_t n = 0;
    uint32_t seed = 99;
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++)
        snprintf(tokens[n++], sizeof tokens[0], "%s", odd[i]);
    while (n < TOKENS) {
        seed = seed * 1664525u + 1013904223u;
        uint32_t bits = seed & 0xbfffffffu; /* finite */
        float f;
        memcpy(&f, &bits, sizeof f);
        switch (n % 4) {
        case 0:
            snprintf(tokens[n++], sizeof tokens[0], "%.*g", (int)(seed >> 28) % 9 + 1, (double)f);
            break;
        case 1: /* a float64 encoder's spelling, nudged off the float */
            snprintf(tokens[n++], sizeof tokens[0], "%.*g", (int)(seed >> 28) % 8 + 10,
                     (double)f * (1.0 + (double)(seed % 7) * 1e-9));
            break;
        case 2: /* whole numbers near 2^24 and 2^25, halfway cases among them */
            snprintf(tokens[n++], sizeof tokens[0], "%u", (1u << 24) + (seed >> 8) % (1u << 25));
            break;
        default: /* m * 10^e with m up to 2^53 */
            snprintf(tokens[n++], sizeof tokens[0], "%llue%d",
                     (unsigned long long)(((uint64_t)seed << 21 ^ seed) & ((1ull << 53) - 1)),
                     (int)(seed >> 26) % 45 - 22 - 10);
        }
        if (!isfinite(strtof(tokens[n - 1], NULL)))
            n--;
    }
    for (int b64 = 0; b64 < 2; b64++) {
        struct session t;
        struct buf native, out;
        start(&t, b64 ? "{'model':'m','input':'x','encoding_format':'base64'}"
                      : "{'model':'m','input':'x'}");
        buf_init(&native, 1 << 22);
        buf_init(&out, 1 << 22);
        assert_int_equal(buf_puts(&native, "{\"embeddings\":[["), 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(buf_printf(&native, "%s%s", i ? "," : "", tokens[i]), 0);
        assert_int_equal(buf_puts(&native, "]]}"), 0);
        if (D->complete(t.st, native.p, native.len, &out, &t.err) != 0)
            fail_msg("%s", t.err.message);
        const char *e = strstr(out.p, "\"embedding\":") + 12;
        if (b64) {
            static float got[TOKENS];
            size_t len = strcspn(e + 1, "\"");
            assert_int_equal(decode_floats(e + 1, len, got, TOKENS), n);
            for (size_t i = 0; i < n; i++) {
                float want = strtof(tokens[i], NULL);
                if (memcmp(&got[i], &want, sizeof want) != 0)
                    fail_msg("%s: %a, strtof says %a", tokens[i], (double)got[i], (double)want);
            }
        } else {
            const char *p = e + 1;
            for (size_t i = 0; i < n; i++) {
                char *end;
                float got = strtof(p, &end), want = strtof(tokens[i], NULL);
                if (memcmp(&got, &want, sizeof want) != 0)
                    fail_msg("%s came out as %.*s", tokens[i], (int)(end - p), p);
                p = end + 1;
            }
        }
        buf_free(&native);
        buf_free(&out);
        finish(&t);
    }
}

static void answer_base64(void **state)
{
    (void)state;
    struct session t;
    struct buf out;
    start(&t, TWO_B64);
    buf_init(&out, 1 << 20);
    assert_int_equal(answer_into(&t, NATIVE_TWO, &out), 0);
    cJSON *j = cJSON_Parse(out.p);
    assert_non_null(j);
    const cJSON *data = cJSON_GetObjectItem(j, "data");
    assert_int_equal(cJSON_GetArraySize(data), 2);
    static const char *const texts[2][4] = {{"0.1", "-0.2", "0.30000001"},
                                            {"1e-7", "0", "-0", "3.4028235e38"}};
    static const size_t counts[2] = {3, 4};
    for (int i = 0; i < 2; i++) {
        const cJSON *e = cJSON_GetArrayItem(data, i);
        assert_string_equal(cJSON_GetObjectItem(e, "object")->valuestring, "embedding");
        assert_int_equal(cJSON_GetObjectItem(e, "index")->valueint, i);
        const char *b64 = cJSON_GetObjectItem(e, "embedding")->valuestring;
        float f[8];
        assert_int_equal(decode_floats(b64, strlen(b64), f, 8), counts[i]);
        for (size_t k = 0; k < counts[i]; k++) {
            float w = strtof(texts[i][k], NULL);
            assert_memory_equal(&f[k], &w, sizeof w); /* bit for bit: -0 stays -0 */
        }
    }
    /* 0.1f is cdcccc3d, little-endian, in standard base64 with padding */
    assert_non_null(strstr(out.p, "\"embedding\":\"zczMPc3MTL6amZk+\"}"));
    assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "text-embedding-3-small");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "total_tokens")->valueint,
                     7);
    cJSON_Delete(j);
    buf_free(&out);
    finish(&t);
}

/* Vectors longer than one base64 block (768 floats) encode as one string,
 * the same as encoding the whole vector at once. */
static void answer_base64_blocks(void **state)
{
    (void)state;
    static const size_t dims[] = {0, 1, 2, 3, 767, 768, 769, 1536, 2000, 4097};
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
        size_t n = dims[d];
        struct session t;
        struct buf native, out;
        start(&t, "{'model':'m','input':['x'],'encoding_format':'base64'}");
        buf_init(&native, 1 << 22);
        buf_init(&out, 1 << 22);
        float *want = calloc(n + 1, sizeof *want);
        unsigned char *bytes = calloc(n + 1, 4);
        assert_int_equal(buf_puts(&native, "{\"embeddings\":[["), 0);
        for (size_t i = 0; i < n; i++) {
            want[i] = (float)((double)i / 7.0 - 100.0);
            assert_int_equal(buf_printf(&native, "%s%.9g", i ? "," : "", (double)want[i]), 0);
            uint32_t u;
            memcpy(&u, &want[i], sizeof u);
            for (int b = 0; b < 4; b++)
                bytes[4 * i + (size_t)b] = (unsigned char)(u >> (8 * b));
        }
        assert_int_equal(buf_puts(&native, "]]}"), 0);
        assert_int_equal(D->complete(t.st, native.p, native.len, &out, &t.err), 0);
        cJSON *j = cJSON_Parse(out.p);
        const char *b64 =
            cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0), "embedding")
                ->valuestring;
        size_t whole_len = sodium_base64_ENCODED_LEN(4 * n, sodium_base64_VARIANT_ORIGINAL);
        char *whole = malloc(whole_len);
        sodium_bin2base64(whole, whole_len, bytes, 4 * n, sodium_base64_VARIANT_ORIGINAL);
        assert_string_equal(b64, whole);
        float *got = calloc(n + 1, sizeof *got);
        assert_int_equal(decode_floats(b64, strlen(b64), got, n), n);
        assert_true(n == 0 || memcmp(got, want, n * sizeof *got) == 0);
        free(got);
        free(whole);
        free(bytes);
        free(want);
        cJSON_Delete(j);
        buf_free(&native);
        buf_free(&out);
        finish(&t);
    }
}

static void answer_empty_vector(void **state)
{
    (void)state;
    expect_answer("{'model':'m','input':'','encoding_format':'base64'}",
                  "{'embeddings':[[]],'prompt_eval_count':1}",
                  "{'object':'list','data':[{'object':'embedding','index':0,'embedding':''}],"
                  "'model':'text-embedding-3-small','usage':{'prompt_tokens':1,'total_tokens':1}}");
}

static void answer_client_name_escaped(void **state)
{
    (void)state;
    struct session t;
    struct buf out;
    start(&t, "{'model':'m','input':'x'}");
    struct dialect_answer a = {.client_model = "we\"ird\\name"};
    assert_int_equal(D->begin(t.st, &a), 0);
    buf_init(&out, 1 << 20);
    assert_int_equal(answer_into(&t, "{'embeddings':[[1]]}", &out), 0);
    assert_non_null(strstr(out.p, ",\"model\":\"we\\\"ird\\\\name\","));
    buf_free(&out);
    finish(&t);
}

static void answer_malformed(void **state)
{
    (void)state;
    const char *one = "{'model':'m','input':'x'}";
    const char *syntax = "sent an /api/embed answer that is not one JSON object";
    const char *shape = "has \"embeddings\" that are not an array of arrays of numbers";
    const char *range = "has a number in \"embeddings\" that is not a 32-bit float";
    expect_bad_answer(one, "", syntax);
    expect_bad_answer(one, "   ", syntax);
    expect_bad_answer(one, "[[1]]", "not one JSON object (at byte 0)");
    expect_bad_answer(one, "{'embeddings':[[1]]", syntax);
    expect_bad_answer(one, "{'embeddings':[[1]]} x", "not one JSON object (at byte 21)");
    expect_bad_answer(one, "{'embeddings':[[1]]}{}", syntax);
    expect_bad_answer(one, "{'embeddings':[[1]],}", syntax);
    expect_bad_answer(one, "{'embeddings':[[1]],'x':tru}", syntax);
    expect_bad_answer(one, "{'embeddings':[[1]],'x':'\\q'}", syntax);
    expect_bad_answer(one, "{'embeddings':[[1]],'x':'\\u12'}", syntax);
    expect_bad_answer(one, "{'embeddings':[[1]],'x':[1,2}", syntax);
    expect_bad_answer(one, "{'embeddings':[[1]],'x':{'a' 1}}", syntax);
    expect_bad_answer(one, "{'embeddings':[[1]],'x':01}", syntax);
    expect_bad_answer(one, "{'embeddings':[[1]],'x':'a\nb'}", syntax);
    expect_bad_answer(one, "{'model':'x'}", "sent an /api/embed answer without \"embeddings\"");
    expect_bad_answer(one, "{}", "without \"embeddings\"");
    expect_bad_answer(one, "{'Embeddings':[[1]]}", "without \"embeddings\"");
    expect_bad_answer(one, "{'error':'boom'}", "without \"embeddings\"");
    expect_bad_answer(one, "{'embeddings':null}", shape);
    expect_bad_answer(one, "{'embeddings':[1,2]}", shape);
    expect_bad_answer(one, "{'embeddings':[['1']]}", shape);
    expect_bad_answer(one, "{'embeddings':[[1,]]}", shape);
    expect_bad_answer(one, "{'embeddings':[[1 2]]}", shape);
    expect_bad_answer(one, "{'embeddings':[[NaN]]}", shape);
    expect_bad_answer(one, "{'embeddings':[[Infinity]]}", shape);
    expect_bad_answer(one, "{'embeddings':[[1.]]}", shape);
    expect_bad_answer(one, "{'embeddings':[[.5]]}", shape);
    expect_bad_answer(one, "{'embeddings':[[+1]]}", shape);
    expect_bad_answer(one, "{'embeddings':[[0x10]]}", shape);
    expect_bad_answer(one, "{'embeddings':[[1]],'embeddings':[[1]]}", shape);
    expect_bad_answer(one, "{'embeddings':[[1e39]]}", range);
    expect_bad_answer(one, "{'embeddings':[[0.5,-3.5e38]]}", range);
    expect_bad_answer(one, "{'embeddings':[[1e99999]]}", "32-bit float (at byte 16)");
    expect_bad_answer(
        one,
        "{'embeddings':[[0.0000000000000000000000000000000000000000000000000000000000000001]]}",
        range);
    expect_bad_answer(TWO, "{'embeddings':[[1]]}", "sent 1 embeddings for 2 inputs");
    expect_bad_answer(TWO, "{'embeddings':[]}", "sent 0 embeddings for 2 inputs");
    expect_bad_answer(TWO, "{'embeddings':[[1],[2],[3]]}", "sent more than 2 embeddings for 2");
}

/* 64 levels of nesting in an ignored member are read; 65 are not. */
static void answer_nesting_limit(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1 << 12);
    for (int depth = 64; depth <= 65; depth++) {
        struct session t;
        struct buf out;
        start(&t, "{'model':'m','input':'x'}");
        buf_reset(&b);
        assert_int_equal(buf_puts(&b, "{\"x\":"), 0);
        for (int i = 0; i < depth; i++)
            assert_int_equal(buf_puts(&b, i % 2 ? "{\"k\":" : "["), 0);
        assert_int_equal(buf_puts(&b, "0"), 0);
        for (int i = depth - 1; i >= 0; i--)
            assert_int_equal(buf_puts(&b, i % 2 ? "}" : "]"), 0);
        assert_int_equal(buf_puts(&b, ",\"embeddings\":[[1]]}"), 0);
        buf_init(&out, 1 << 12);
        int rc = D->complete(t.st, b.p, b.len, &out, &t.err);
        assert_int_equal(rc, depth == 64 ? 0 : -1);
        buf_free(&out);
        finish(&t);
    }
    buf_free(&b);
}

/* Without a backend name the message says "The backend". */
static void answer_unnamed_backend(void **state)
{
    (void)state;
    struct session t;
    struct buf out;
    start(&t, "{'model':'m','input':'x'}");
    ((struct dialect_common *)t.st)->backend = NULL;
    buf_init(&out, 1 << 12);
    assert_int_equal(answer_into(&t, "{}", &out), -1);
    assert_string_equal(t.err.message,
                        "The backend sent an /api/embed answer without \"embeddings\".");
    buf_free(&out);
    finish(&t);
}

/* Past out's ceiling: a 502 saying so, and out as it was. */
static void answer_over_the_ceiling(void **state)
{
    (void)state;
    for (int b64 = 0; b64 < 2; b64++) {
        struct session t;
        struct buf native, out;
        start(&t, b64 ? "{'model':'m','input':['x','y'],'encoding_format':'base64'}"
                      : "{'model':'m','input':['x','y']}");
        buf_init(&native, 1 << 20);
        assert_int_equal(buf_puts(&native, "{\"embeddings\":[["), 0);
        for (int v = 0; v < 2; v++) {
            for (int i = 0; i < 3000; i++)
                assert_int_equal(buf_printf(&native, "%s0.123456", i ? "," : ""), 0);
            assert_int_equal(buf_puts(&native, v ? "]]}" : "],["), 0);
        }
        buf_init(&out, b64 ? 20000 : 30000);
        assert_int_equal(buf_puts(&out, "kept"), 0);
        assert_int_equal(D->complete(t.st, native.p, native.len, &out, &t.err), -1);
        assert_string_equal(out.p, "kept");
        assert_int_equal(t.err.status, 502);
        assert_string_equal(t.err.code, "upstream_error");
        assert_true(t.err.no_retry);
        assert_non_null(strstr(t.err.message, "Backend \"gpu1\" sent embeddings that take more "
                                              "than the gateway's limit of"));
        buf_free(&native);
        buf_free(&out);
        finish(&t);
    }
}

/* Thousands of vectors of a real model's size (768). */
static void answer_thousands_of_vectors(void **state)
{
    (void)state;
    enum { N = 3000, DIM = 768 };
    struct buf body, native;
    buf_init(&body, 1 << 20);
    buf_init(&native, 64u << 20);
    assert_int_equal(buf_puts(&body, "{\"model\":\"m\",\"input\":["), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(buf_puts(&body, i ? ",\"t\"" : "\"t\""), 0);
    size_t inputs_end = body.len;
    assert_int_equal(buf_puts(&native, "{\"model\":\"m\",\"embeddings\":["), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(buf_puts(&native, i ? ",[" : "["), 0);
        for (int k = 0; k < DIM; k++)
            assert_int_equal(
                buf_printf(&native, "%s%.9g", k ? "," : "", (double)(float)((i + k) % 97 / 97.0)),
                0);
        assert_int_equal(buf_puts(&native, "]"), 0);
    }
    assert_int_equal(buf_puts(&native, "],\"prompt_eval_count\":3000}"), 0);
    for (int b64 = 0; b64 < 2; b64++) {
        struct session t;
        memset(&t, 0, sizeof t);
        body.len = inputs_end;
        assert_int_equal(buf_puts(&body, b64 ? "],\"encoding_format\":\"base64\"}"
                                             : "],\"encoding_format\":\"float\"}"),
                         0);
        run(&t, body.p, body.len, 1 << 22);
        assert_int_equal(t.rc, 0);
        struct buf out;
        buf_init(&out, 64u << 20);
        assert_int_equal(D->complete(t.st, native.p, native.len, &out, &t.err), 0);
        cJSON *j = cJSON_Parse(out.p);
        const cJSON *data = cJSON_GetObjectItem(j, "data");
        assert_int_equal(cJSON_GetArraySize(data), N);
        const cJSON *last = cJSON_GetArrayItem(data, N - 1);
        assert_int_equal(cJSON_GetObjectItem(last, "index")->valueint, N - 1);
        const cJSON *e = cJSON_GetObjectItem(last, "embedding");
        float f[DIM];
        if (b64) {
            assert_int_equal(decode_floats(e->valuestring, strlen(e->valuestring), f, DIM), DIM);
        } else {
            assert_int_equal(cJSON_GetArraySize(e), DIM);
            int k = 0;
            for (const cJSON *x = e->child; x; x = x->next)
                f[k++] = (float)x->valuedouble;
        }
        for (int k = 0; k < DIM; k++)
            assert_true(f[k] == (float)((N - 1 + k) % 97 / 97.0));
        cJSON_Delete(j);
        buf_free(&out);
        finish(&t);
    }
    buf_free(&body);
    buf_free(&native);
}

/* ------------------------------------------------------------------------ */
/* The rest of the dialect                                                   */

static void dialect_table(void **state)
{
    (void)state;
    assert_string_equal(D->native_path, "/api/embed");
    assert_ptr_equal(D->errors, &errshape_openai);
    assert_null(D->id_prefix);
    assert_null(D->keepalive);
    assert_true(D->state_size >= sizeof(struct dialect_common));
}

static void never_streamed(void **state)
{
    (void)state;
    struct session t;
    struct buf out;
    start(&t, "{'model':'m','input':'x'}");
    buf_init(&out, 1 << 12);
    assert_int_equal(D->line(t.st, "{}", 2, &out, &t.err), DIALECT_FAIL);
    assert_int_equal(t.err.status, 500);
    assert_int_equal(D->eof(t.st, &out, &t.err), DIALECT_FAIL);
    assert_int_equal(out.len, 0);
    buf_free(&out);
    finish(&t);
}

/* Ollama's errors on /api/embed come out as OpenAI errors. */
static void backend_errors(void **state)
{
    (void)state;
    struct apierr e;
    const char *nf =
        "{\"error\":\"model \\\"nomic-embed-text\\\" not found, try pulling it first\"}";
    D->upstream_error(404, nf, strlen(nf), "gpu1", &e);
    assert_int_equal(e.status, 404);
    assert_string_equal(e.code, "model_not_found");
    assert_string_equal(e.param, "model");
    const char *bad = "{\"error\":\"this model does not support embeddings\"}";
    D->upstream_error(400, bad, strlen(bad), "gpu1", &e);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, "model");
    assert_non_null(strstr(e.message, "does not support embeddings"));
    D->upstream_error(500, "boom", 4, "gpu1", &e);
    assert_int_equal(e.status, 502);
    assert_string_equal(e.code, "upstream_error");
    assert_non_null(strstr(e.message, "gpu1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(req_string_input),
        cmocka_unit_test(req_array_input),
        cmocka_unit_test(req_empty_string_is_one_input),
        cmocka_unit_test(req_strings_survive),
        cmocka_unit_test(req_dimensions_and_alias_options),
        cmocka_unit_test(req_ignored_fields),
        cmocka_unit_test(req_bad_bodies),
        cmocka_unit_test(req_bad_model),
        cmocka_unit_test(req_bad_input),
        cmocka_unit_test(req_token_arrays),
        cmocka_unit_test(req_encoding_format),
        cmocka_unit_test(req_dimensions),
        cmocka_unit_test(req_resolve_refuses),
        cmocka_unit_test(req_large),
        cmocka_unit_test(answer_floats),
        cmocka_unit_test(answer_usage_is_recorded),
        cmocka_unit_test(answer_usage_defaults),
        cmocka_unit_test(answer_tolerant_reading),
        cmocka_unit_test(answer_long_numbers_round_trip),
        cmocka_unit_test(answer_floats_read_as_strtof),
        cmocka_unit_test(answer_base64),
        cmocka_unit_test(answer_base64_blocks),
        cmocka_unit_test(answer_empty_vector),
        cmocka_unit_test(answer_client_name_escaped),
        cmocka_unit_test(answer_malformed),
        cmocka_unit_test(answer_nesting_limit),
        cmocka_unit_test(answer_unnamed_backend),
        cmocka_unit_test(answer_over_the_ceiling),
        cmocka_unit_test(answer_thousands_of_vectors),
        cmocka_unit_test(dialect_table),
        cmocka_unit_test(never_streamed),
        cmocka_unit_test(backend_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
