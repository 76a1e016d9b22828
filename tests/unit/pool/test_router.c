/* Unit tests for router.c: alias resolution and Ollama model-name rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "glob.h"
#include "router.h"

#include <stdio.h>
#include <string.h>

static struct cfg *load(const char *aliases_json)
{
    char text[8192];
    assert_true(strlen(aliases_json) < 4096);
    snprintf(text, sizeof text,
             "{\"backends\": [{\"name\": \"gpu1\", \"url\": \"http://127.0.0.1:11434\"}],\n"
             " \"aliases\": %s}",
             aliases_json);
    struct cfg_errors e;
    cfg_errors_init(&e);
    struct cfg *c = cfg_load_buffer(text, strlen(text), "r.json", "/", &e);
    if (!c)
        fail_msg("%s", e.text.p ? e.text.p : "");
    cfg_errors_free(&e);
    return c;
}

/* The model an alias lookup lands on, or NULL. */
static const char *model_for(const struct cfg *c, const char *name)
{
    const struct cfg_alias *a = router_alias(c, name);
    return a ? a->model : NULL;
}

static void test_exact_beats_glob(void **state)
{
    (void)state;
    struct cfg *c = load("{\"gpt-4o*\": \"glob\", \"gpt-4o-mini\": \"exact\", \"*\": \"any\"}");
    assert_string_equal(model_for(c, "gpt-4o-mini"), "exact");
    assert_string_equal(model_for(c, "gpt-4o"), "glob");
    assert_string_equal(model_for(c, "gpt-4o-2024-08-06"), "glob");
    assert_string_equal(model_for(c, "llama"), "any");
    const struct cfg_alias *a = router_alias(c, "gpt-4o-mini");
    assert_string_equal(a->name, "gpt-4o-mini");
    assert_false(a->glob);
    cfg_unref(c);
}

static void test_longest_glob_wins(void **state)
{
    (void)state;
    /* written shortest first, and longest first: length decides, not order */
    struct cfg *c =
        load("{\"gpt-*\": \"short\", \"gpt-4o*\": \"long\", \"gpt-4o-mini*\": \"longest\"}");
    assert_string_equal(model_for(c, "gpt-4o-mini-tts"), "longest");
    assert_string_equal(model_for(c, "gpt-4o-audio"), "long");
    assert_string_equal(model_for(c, "gpt-3.5-turbo"), "short");
    cfg_unref(c);
    c = load("{\"gpt-4o-mini*\": \"longest\", \"gpt-4o*\": \"long\", \"gpt-*\": \"short\"}");
    assert_string_equal(model_for(c, "gpt-4o-mini-tts"), "longest");
    assert_string_equal(model_for(c, "gpt-4o-audio"), "long");
    assert_string_equal(model_for(c, "gpt-3.5-turbo"), "short");
    cfg_unref(c);
}

static void test_glob_ties_first_written(void **state)
{
    (void)state;
    /* both 5 bytes long and both match "gpt-4": the first written wins */
    struct cfg *c = load("{\"gpt-?\": \"first\", \"gp*-4\": \"second\"}");
    assert_string_equal(model_for(c, "gpt-4"), "first");
    cfg_unref(c);
    c = load("{\"gp*-4\": \"first\", \"gpt-?\": \"second\"}");
    assert_string_equal(model_for(c, "gpt-4"), "first");
    cfg_unref(c);
}

static void test_no_match(void **state)
{
    (void)state;
    struct cfg *c = load("{\"gpt-3.5-turbo\": \"llama3.2\", \"claude-*\": \"qwen\"}");
    assert_null(router_alias(c, "llama3.2"));
    assert_null(router_alias(c, "gpt-3.5"));
    assert_null(router_alias(c, "gpt-3.5-turbo-16k"));
    assert_null(router_alias(c, ""));
    assert_null(router_alias(c, NULL));
    assert_null(router_alias(NULL, "x"));
    /* exact names are case-sensitive, as OpenAI model ids are */
    assert_null(router_alias(c, "GPT-3.5-turbo"));
    assert_null(router_alias(c, "Claude-3"));
    cfg_unref(c);

    c = load("{}");
    assert_null(router_alias(c, "anything"));
    cfg_unref(c);
}

static void test_glob_syntax(void **state)
{
    (void)state;
    struct cfg *c = load("{\"text-embedding-3-[sl]*\": \"nomic-embed-text\", \"org/*\": \"m\", "
                         "\"v?\": \"q\"}");
    assert_string_equal(model_for(c, "text-embedding-3-small"), "nomic-embed-text");
    assert_string_equal(model_for(c, "text-embedding-3-large"), "nomic-embed-text");
    assert_null(router_alias(c, "text-embedding-3-medium"));
    /* no FNM_PATHNAME: '*' crosses '/' */
    assert_string_equal(model_for(c, "org/team/model"), "m");
    assert_string_equal(model_for(c, "v1"), "q");
    assert_null(router_alias(c, "v12"));
    cfg_unref(c);

    assert_true(glob_is_pattern("a*"));
    assert_true(glob_is_pattern("a?"));
    assert_true(glob_is_pattern("[ab]"));
    assert_false(glob_is_pattern("gpt-3.5-turbo"));
    assert_true(glob_match("gpt-*", "gpt-4/x"));
    assert_false(glob_match("gpt-*", "GPT-4"));
}

static void test_many_exact(void **state)
{
    (void)state;
    /* enough exact names for the binary search to matter */
    char json[4096];
    size_t n = (size_t)snprintf(json, sizeof json, "{");
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"m%02d\": \"t%02d\"", i ? ", " : "",
                              (i * 37) % 60, (i * 37) % 60);
    snprintf(json + n, sizeof json - n, "}");
    struct cfg *c = load(json);
    for (int i = 0; i < 60; i++) {
        char name[8], want[8];
        snprintf(name, sizeof name, "m%02d", i);
        snprintf(want, sizeof want, "t%02d", i);
        assert_string_equal(model_for(c, name), want);
    }
    assert_null(router_alias(c, "m60"));
    assert_null(router_alias(c, "m"));
    cfg_unref(c);
}

static void test_model_eq(void **state)
{
    (void)state;
    assert_true(router_model_eq("llama3.2", "llama3.2"));
    assert_true(router_model_eq("llama3.2", "llama3.2:latest"));
    assert_true(router_model_eq("llama3.2:latest", "llama3.2"));
    assert_true(router_model_eq("Llama3.2", "llama3.2:LATEST"));
    assert_true(router_model_eq("library/llama3.2", "llama3.2:latest"));
    assert_true(router_model_eq("registry.ollama.ai/library/llama3.2:latest", "llama3.2"));
    assert_true(router_model_eq("registry.ollama.ai/library/llama3.2:1b", "llama3.2:1b"));
    assert_true(router_model_eq("hf.co/bartowski/Qwen:Q4_K_M", "HF.CO/bartowski/qwen:q4_k_m"));
    assert_true(router_model_eq("user/model", "registry.ollama.ai/user/model:latest"));
    assert_true(router_model_eq("localhost:5000/ns/m", "localhost:5000/ns/m:latest"));

    assert_false(router_model_eq("llama3.2", "llama3.2:1b"));
    assert_false(router_model_eq("llama3.2:3b", "llama3.2:1b"));
    assert_false(router_model_eq("llama3.2", "llama3.1"));
    assert_false(router_model_eq("llama3", "llama3.2"));
    assert_false(router_model_eq("user/llama3.2", "llama3.2"));
    assert_false(router_model_eq("hf.co/user/m", "user/m"));
    assert_false(router_model_eq("localhost:5000/ns/m", "localhost:5001/ns/m"));
    assert_false(router_model_eq("", ""));
    assert_false(router_model_eq("", "llama3.2"));
    assert_false(router_model_eq(NULL, "llama3.2"));
    assert_false(router_model_eq("ns/", "ns/"));

    /* digests: equal when both give the same one, or only one gives one */
    assert_true(router_model_eq("m@sha256:abc", "m:latest@sha256:ABC"));
    assert_false(router_model_eq("m@sha256:abc", "m@sha256:def"));
    assert_true(router_model_eq("m:7b@sha256:abc", "m:7b"));
    assert_false(router_model_eq("m:7b@sha256:abc", "m:8b"));
}

static void test_normalize(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(router_model_normalize("llama3.2", out, sizeof out), 15);
    assert_string_equal(out, "llama3.2:latest");
    assert_int_equal(router_model_normalize("llama3.2:1b", out, sizeof out), 11);
    assert_string_equal(out, "llama3.2:1b");
    router_model_normalize("localhost:5000/ns/m", out, sizeof out);
    assert_string_equal(out, "localhost:5000/ns/m:latest");
    router_model_normalize("localhost:5000/ns/m:q4", out, sizeof out);
    assert_string_equal(out, "localhost:5000/ns/m:q4");
    router_model_normalize("hf.co/u/m", out, sizeof out);
    assert_string_equal(out, "hf.co/u/m:latest");
    router_model_normalize("m@sha256:abc", out, sizeof out);
    assert_string_equal(out, "m:latest@sha256:abc");
    router_model_normalize("m:7b@sha256:abc", out, sizeof out);
    assert_string_equal(out, "m:7b@sha256:abc");

    /* too small: -1 and an empty string, never a cut name */
    char small[10];
    assert_int_equal(router_model_normalize("llama3.2", small, sizeof small), -1);
    assert_string_equal(small, "");
    char exact[16];
    assert_int_equal(router_model_normalize("llama3.2", exact, sizeof exact), 15);
    assert_string_equal(exact, "llama3.2:latest");
    assert_int_equal(router_model_normalize("x", out, 0), -1);
}

/* Every spelling router_model_eq joins gets one label; different models
 * keep different ones. */
static void test_label(void **state)
{
    (void)state;
    static const char *const same[] = {
        "llama3.2",
        "LLAMA3.2",
        "llama3.2:latest",
        "Llama3.2:LATEST",
        "library/llama3.2",
        "registry.ollama.ai/library/llama3.2:latest",
        "REGISTRY.OLLAMA.AI/Library/llama3.2",
        "https://registry.ollama.ai/library/llama3.2",
        "llama3.2@sha256:0123",
        "llama3.2:latest@sha256:4567",
    };
    char out[64];
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        assert_true(router_model_eq(same[i], "llama3.2"));
        assert_int_equal(router_model_label(same[i], out, sizeof out), 8);
        assert_string_equal(out, "llama3.2");
    }
    router_model_label("llama3.2:1B", out, sizeof out);
    assert_string_equal(out, "llama3.2:1b");
    router_model_label("hf.co/Org/M:Q4_K_M", out, sizeof out);
    assert_string_equal(out, "hf.co/org/m:q4_k_m");
    router_model_label("jmorgan/m", out, sizeof out);
    assert_string_equal(out, "jmorgan/m");
    router_model_label("localhost:5000/library/m:7b", out, sizeof out);
    assert_string_equal(out, "localhost:5000/library/m:7b");
    assert_false(router_model_eq("localhost:5000/library/m:7b", "m:7b"));
    /* no model, or too long: -1 and "" */
    assert_int_equal(router_model_label("", out, sizeof out), -1);
    assert_int_equal(router_model_label(NULL, out, sizeof out), -1);
    char small[8];
    assert_int_equal(router_model_label("llama3.2", small, sizeof small), -1);
    assert_string_equal(small, "");
    char exact[9];
    assert_int_equal(router_model_label("Llama3.2", exact, sizeof exact), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_beats_glob),
        cmocka_unit_test(test_longest_glob_wins),
        cmocka_unit_test(test_glob_ties_first_written),
        cmocka_unit_test(test_no_match),
        cmocka_unit_test(test_glob_syntax),
        cmocka_unit_test(test_many_exact),
        cmocka_unit_test(test_model_eq),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
