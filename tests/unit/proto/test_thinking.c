/* Unit tests for thinking.c: which native "think" values turn thinking on,
 * the gate that leaves such a switch out for a model known to lack the
 * capability, and that every dialect that translates a thinking switch
 * (chat completions, legacy completions, Responses, Messages) goes through
 * it: its native body with and without the switch, and the asks_thinking it
 * reports to the engine. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "chat_dialect.h"
#include "completions_dialect.h"
#include "messages_dialect.h"
#include "responses_dialect.h"
#include "thinking.h"

#include "helpers.h"

#include <stdlib.h>
#include <string.h>

static void test_thinking_on(void **state)
{
    (void)state;
    const char *on[] = {"true", "'high'", "'low'", "'medium'", "'max'"};
    const char *off[] = {"false", "null", "''", "1", "{}"};
    for (size_t k = 0; k < sizeof on / sizeof on[0]; k++) {
        cJSON *j = cJSON_Parse(q(on[k]));
        assert_true(thinking_on(j));
        cJSON_Delete(j);
    }
    for (size_t k = 0; k < sizeof off / sizeof off[0]; k++) {
        cJSON *j = cJSON_Parse(q(off[k]));
        assert_false(thinking_on(j));
        cJSON_Delete(j);
    }
    assert_false(thinking_on(NULL));
}

/* fields (q() quoting) through the gate: what it returns, and the fields as
 * printed after. */
static void gate(const char *fields, bool no_thinking, bool want_on, const char *want_fields)
{
    cJSON *f = cJSON_Parse(q(fields));
    assert_non_null(f);
    assert_int_equal(thinking_gate(f, no_thinking), want_on);
    char *text = cJSON_PrintUnformatted(f);
    assert_string_equal(text, q(want_fields));
    cJSON_free(text);
    cJSON_Delete(f);
}

static void test_gate(void **state)
{
    (void)state;
    /* Left out only when it turns thinking on and the model cannot think. */
    gate("{'messages':[],'think':true,'tools':[]}", true, true, "{'messages':[],'tools':[]}");
    gate("{'think':'high'}", true, true, "{}");
    gate("{'think':true}", false, true, "{'think':true}");
    gate("{'think':'low'}", false, true, "{'think':'low'}");
    /* Turning it off goes to any model; no switch is no switch. */
    gate("{'think':false}", true, false, "{'think':false}");
    gate("{'think':false}", false, false, "{'think':false}");
    gate("{'messages':[]}", true, false, "{'messages':[]}");
    gate("{}", false, false, "{}");
}

/* ---- every dialect ---- */

static int resolve(void *ctx, const char *client_model, bool stream, struct dialect_model *m,
                   struct apierr *e)
{
    (void)client_model, (void)stream, (void)e;
    m->name = "llama3.2";
    m->options = NULL;
    m->no_thinking = *(const bool *)ctx;
    return 0;
}

/* body (q() quoting) through dialect d for a backend that can(not) think:
 * the native "think" as printed ("" when absent), and asks_thinking. */
static const char *think_sent(const struct dialect *d, const char *body, bool no_thinking,
                              bool *asks)
{
    static char result[64];
    void *st = calloc(1, d->state_size);
    assert_non_null(st);
    struct buf native;
    buf_init(&native, 1 << 20);
    struct apierr err = {0};
    const char *b = q(body);
    if (d->translate(st, b, strlen(b), resolve, &no_thinking, &native, &err) != 0)
        fail_msg("%s: unexpected rejection: %d %s", d->name, err.status, err.message);
    *asks = ((struct dialect_common *)st)->asks_thinking;
    cJSON *j = cJSON_ParseWithLength(native.p, native.len);
    assert_true(cJSON_IsObject(j));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "model")), "llama3.2");
    char *think = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "think"));
    snprintf(result, sizeof result, "%s", think ? think : "");
    cJSON_free(think);
    cJSON_Delete(j);
    buf_free(&native);
    d->release(st);
    free(st);
    return result;
}

static void test_every_dialect(void **state)
{
    (void)state;
    static const struct {
        const struct dialect *d;
        const char *on, *off, *none; /* thinking on, turned off, not asked */
        const char *sent;            /* what "on" sends to a model that can think */
    } cases[] = {
        {&dialect_chat,
         "{'model':'m','messages':[{'role':'user','content':'hi'}],'reasoning_effort':'high'}",
         "{'model':'m','messages':[{'role':'user','content':'hi'}],'reasoning_effort':'none'}",
         "{'model':'m','messages':[{'role':'user','content':'hi'}]}", "'high'"},
        {&dialect_completions, "{'model':'m','prompt':'hi','reasoning_effort':'medium'}",
         "{'model':'m','prompt':'hi','think':false}", "{'model':'m','prompt':'hi'}", "'medium'"},
        {&dialect_responses, "{'model':'m','input':'hi','reasoning':{'effort':'xhigh'}}",
         "{'model':'m','input':'hi','reasoning':{'effort':'none'}}", "{'model':'m','input':'hi'}",
         "'max'"},
        {&dialect_messages,
         "{'model':'m','max_tokens':9,'messages':[{'role':'user','content':'hi'}],"
         "'thinking':{'type':'enabled','budget_tokens':1024}}",
         "{'model':'m','max_tokens':9,'messages':[{'role':'user','content':'hi'}],"
         "'thinking':{'type':'disabled'}}",
         "{'model':'m','max_tokens':9,'messages':[{'role':'user','content':'hi'}]}", "true"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct dialect *d = cases[k].d;
        bool asks;
        assert_string_equal(think_sent(d, cases[k].on, false, &asks), q(cases[k].sent));
        assert_true(asks);
        assert_string_equal(think_sent(d, cases[k].on, true, &asks), "");
        assert_true(asks);
        assert_string_equal(think_sent(d, cases[k].off, true, &asks), "false");
        assert_false(asks);
        assert_string_equal(think_sent(d, cases[k].off, false, &asks), "false");
        assert_false(asks);
        assert_string_equal(think_sent(d, cases[k].none, true, &asks), "");
        assert_false(asks);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thinking_on),
        cmocka_unit_test(test_gate),
        cmocka_unit_test(test_every_dialect),
    };
    return cmocka_run_group_tests(tests, setup_sodium, NULL);
}
