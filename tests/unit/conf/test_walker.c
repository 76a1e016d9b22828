/* walker.c: checking objects against key tables, in gateway.json's words and
 * in the keys file's. */
#include "walker.h"

#include "arena.h"
#include "buf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const struct jf_kind by_hand = {
    .comments = true, .lines = true, .guess = true, .empty = "empty", .fix = "", .fix_after = ""};
static const struct jf_kind by_gateway = {
    .terse = true, .empty = "empty", .fix = "", .fix_after = ""};

struct inner {
    unsigned a;
};

struct conf {
    unsigned n;
    size_t big;
    bool b;
    int e;
    const char *path;
    struct inner in;
};

static const struct walk_key inner_keys[] = {
    {.name = "depth",
     .fn = walk_set_uint,
     .off = offsetof(struct inner, a),
     .width = sizeof(unsigned),
     .min = 1,
     .max = 9,
     .def = 3},
};
static const struct walk_table inner_table = WALK_TABLE(inner_keys);

static const char *const colours[] = {"red", "green", "blue", NULL};

static const struct walk_key conf_keys[] = {
    {.name = "n",
     .fn = walk_set_uint,
     .off = offsetof(struct conf, n),
     .width = sizeof(unsigned),
     .min = 0,
     .max = 256,
     .def = 7,
     .required = "write \"n\": 1"},
    {.name = "big",
     .fn = walk_set_uint,
     .off = offsetof(struct conf, big),
     .width = sizeof(size_t),
     .min = 1,
     .max = 1ull << 40,
     .def = 1ull << 33},
    {.name = "b", .fn = walk_set_bool, .off = offsetof(struct conf, b), .def = 1},
    {.name = "colour",
     .fn = walk_set_enum,
     .off = offsetof(struct conf, e),
     .def = 2,
     .arg = colours},
    {.name = "path", .fn = walk_set_path, .off = offsetof(struct conf, path), .sdef = "d/x.pem"},
    {.name = "inner",
     .fn = walk_set_object,
     .off = offsetof(struct conf, in),
     .arg = &inner_table,
     .notice = "not in force yet"},
};
static const struct walk_nest conf_nest[] = {{"inner", &inner_table}};
static const struct walk_table conf_table = {
    .keys = conf_keys,
    .n = sizeof conf_keys / sizeof conf_keys[0],
    .nest = conf_nest,
    .nnest = 1,
};

/* The same keys in the keys file's words. */
static const struct walk_words words = {
    .twice = "appears twice here; keep one",
    .unknown = "a conf has n, big, b, colour, path and inner: remove it",
    .guess = true,
};
static const struct walk_table terse_table = {
    .keys = conf_keys,
    .n = sizeof conf_keys / sizeof conf_keys[0],
    .words = &words,
};

struct run {
    struct jf jf;
    struct arena *arena;
    struct walk w;
    cJSON *root;
    struct conf c;
    uint64_t seen;
    char *report;
    unsigned count;
};

/* Parse text as "w.json" and walk it through t into r->c, defaults first. */
static void walk(struct run *r, const struct jf_kind *kind, const struct walk_table *t,
                 const char *text)
{
    memset(r, 0, sizeof *r);
    jf_init(&r->jf, "w.json", kind);
    r->w = (struct walk){.jf = &r->jf, .arena = &r->arena, .base_dir = "/etc/gw"};
    r->root = jf_parse(&r->jf, text, strlen(text));
    assert_non_null(r->root);
    walk_defaults(&r->w, t, &r->c);
    r->seen = walk_object(&r->w, r->root, "", t, &r->c);
    struct buf b;
    buf_init(&b, 1u << 20);
    buf_append(&b, "", 0);
    r->count = jf_report(&r->jf, &b);
    size_t len;
    r->report = buf_detach(&b, &len);
}

static void done(struct run *r)
{
    free(r->report);
    cJSON_Delete(r->root);
    jf_free(&r->jf);
    arena_free(r->arena);
}

static void expect(const char *kind_text, const struct jf_kind *kind, const struct walk_table *t,
                   const char *text, const char *needle)
{
    struct run r;
    walk(&r, kind, t, text);
    if (!strstr(r.report, needle))
        fail_msg("%s: missing \"%s\" in:\n%s", kind_text, needle, r.report);
    done(&r);
}
#define EXPECT_HAND(text, needle) expect("by hand", &by_hand, &conf_table, text, needle)
#define EXPECT_TERSE(text, needle) expect("terse", &by_gateway, &terse_table, text, needle)

static void values_and_defaults(void **state)
{
    (void)state;
    struct run r;
    walk(&r, &by_hand, &conf_table, "{\"n\": 1}");
    assert_int_equal(r.count, 0);
    assert_int_equal(r.c.n, 1);
    assert_true(r.c.big == 1ull << 33);
    assert_true(r.c.b);
    assert_int_equal(r.c.e, 2);
    assert_string_equal(r.c.path, "/etc/gw/d/x.pem");
    assert_int_equal(r.c.in.a, 3);
    assert_true(r.seen == walk_bit(&conf_table, "n"));
    done(&r);

    walk(&r, &by_hand, &conf_table,
         "{\"n\": 256, \"big\": 1099511627776, \"b\": false, \"colour\": \"red\",\n"
         "\"path\": \"./k.pem\", \"inner\": {\"depth\": 9}}");
    assert_int_equal(r.count, 0);
    assert_int_equal(r.c.n, 256);
    assert_true(r.c.big == 1ull << 40);
    assert_false(r.c.b);
    assert_int_equal(r.c.e, 0);
    assert_string_equal(r.c.path, "/etc/gw/k.pem");
    assert_int_equal(r.c.in.a, 9);
    assert_true(r.seen == (1u << 6) - 1);
    assert_true(walk_bit(&conf_table, "inner") == 1u << 5);
    assert_true(walk_bit(&conf_table, "nope") == 0);
    /* a key with a notice is warned about, not refused */
    const char *notes[1];
    assert_int_equal(jf_notes(&r.jf, notes), 1);
    assert_string_equal(notes[0], "w.json:2: inner: not in force yet");
    done(&r);

    walk(&r, &by_hand, &conf_table, "{\"n\": 0, \"path\": \"/abs/p\"}");
    assert_string_equal(r.c.path, "/abs/p");
    done(&r);
}

static void numbers(void **state)
{
    (void)state;
    /* by hand: judged as written */
    EXPECT_HAND("{\"n\": 1.0}", "w.json:1: n: 1.0 is not a whole number (allowed: whole numbers "
                                "from 0 to 256)");
    EXPECT_HAND("{\"n\": 1e2}", "n: 1e2 is not a whole number");
    EXPECT_HAND("{\"n\": -1}", "n: -1 is negative");
    EXPECT_HAND("{\"n\": 257}", "n: 257 is too large");
    EXPECT_HAND("{\"n\": 1, \"inner\": {\"depth\": 0}}", "inner.depth: 0 is too small");
    EXPECT_HAND("{\"n\": \"4\"}", "n: expected a whole number from 0 to 256, got the string "
                                  "\"4\"; write it without quotes");
    EXPECT_HAND("{\"n\": true}", "n: expected a whole number from 0 to 256, got true\n");

    /* not indexed: judged by value, in the terse words */
    struct run r;
    walk(&r, &by_gateway, &terse_table, "{\"n\": 1e2, \"big\": 2.0}");
    assert_int_equal(r.count, 0);
    assert_int_equal(r.c.n, 100);
    assert_int_equal(r.c.big, 2);
    done(&r);
    EXPECT_TERSE("{\"n\": 1.5}", "w.json: n: must be a whole number from 0 to 256, not 1.5\n");
    EXPECT_TERSE("{\"n\": \"4\"}", "w.json: n: must be a whole number from 0 to 256, not \"4\"\n");
}

/* A key's own words around its bounds, as the keys file's limits have. */
static void number_words(void **state)
{
    (void)state;
    static const struct walk_key keys[] = {
        {.name = "rpm",
         .fn = walk_set_uint,
         .off = offsetof(struct conf, n),
         .width = sizeof(unsigned),
         .max = 100,
         .means = "(0 = no limit)",
         .fix = "; correct it"},
    };
    static const struct walk_table t = {.keys = keys, .n = 1, .words = &words};
    expect("terse", &by_gateway, &t, "{\"rpm\": -1}",
           "w.json: rpm: must be a whole number from 0 to 100 (0 = no limit), not -1; correct "
           "it\n");
    expect("terse", &by_gateway, &t, "{\"rpm\": [1]}",
           "w.json: rpm: must be a whole number from 0 to 100 (0 = no limit), not an array; "
           "correct it\n");
    static const struct walk_table hand = {.keys = keys, .n = 1};
    expect("by hand", &by_hand, &hand, "{\"rpm\": 101}",
           "w.json:1: rpm: 101 is too large (allowed: whole numbers from 0 to 100); correct it\n");
}

static void other_types(void **state)
{
    (void)state;
    EXPECT_HAND("{\"n\": 1, \"b\": \"true\"}",
                "b: expected true or false, got the string \"true\"; write it without quotes");
    EXPECT_HAND("{\"n\": 1, \"b\": 1}", "b: expected true or false, got the number 1\n");
    EXPECT_TERSE("{\"n\": 1, \"b\": \"true\"}", "w.json: b: must be true or false, not \"true\"\n");
    EXPECT_HAND("{\"n\": 1, \"colour\": \"gren\"}",
                "colour: \"gren\" is not one of \"red\", \"green\", \"blue\" (did you mean "
                "\"green\"?)");
    EXPECT_HAND("{\"n\": 1, \"colour\": \"purple\"}",
                "colour: \"purple\" is not one of \"red\", \"green\", \"blue\"\n");
    EXPECT_HAND("{\"n\": 1, \"colour\": 3}",
                "colour: expected one of \"red\", \"green\", \"blue\", got the number 3");
    EXPECT_HAND("{\"n\": 1, \"path\": 5}",
                "path: expected a file path (a string), got the number 5");
    EXPECT_TERSE("{\"n\": 1, \"path\": 5}", "w.json: path: must be a string (a file path), not 5");
    EXPECT_HAND("{\"n\": 1, \"path\": \"\"}", "path: is empty: expected a file path");
    EXPECT_HAND("{\"n\": 1, \"inner\": []}", "inner: expected an object { ... }, got an array");
}

static void unknown_twice_missing(void **state)
{
    (void)state;
    /* gateway.json's words: at the object, with the line of the first */
    EXPECT_HAND("{\"n\": 1, \"bg\": 2}", "w.json:1: unknown key \"bg\" (did you mean \"big\"?)");
    EXPECT_HAND("{\"n\": 1,\n\"depth\": 2}",
                "w.json:2: unknown key \"depth\" at the top level: it belongs in \"inner\"");
    EXPECT_HAND("{\"n\": 1, \"inner\": {\"zzzz\": 1}}",
                "inner: unknown key \"zzzz\" (known keys: depth)");
    EXPECT_HAND("{\"n\": 1, \"qqqqqq\": 1}",
                "unknown key \"qqqqqq\" (known keys: n, big, b, colour, path, inner)");
    EXPECT_HAND("{\"n\": 1,\n\"n\": 2}", "w.json:2: n: given twice (first on line 1); remove one");
    EXPECT_HAND("{\"b\": true}", "w.json:1: missing \"n\": write \"n\": 1");
    /* the keys file's words: at the member itself */
    EXPECT_TERSE("{\"n\": 1, \"bg\": 2}", "w.json: bg: unknown field; did you mean \"big\"?");
    EXPECT_TERSE("{\"n\": 1, \"qqqqqq\": 1}",
                 "w.json: qqqqqq: unknown field; a conf has n, big, b, colour, path and inner: "
                 "remove it");
    EXPECT_TERSE("{\"n\": 1, \"\\n\": 1}", "w.json: [\"?\"]: unknown field;");
    EXPECT_TERSE("{\"n\": 1,\n\"n\": 2}", "w.json: n: appears twice here; keep one");
    EXPECT_TERSE("{\"b\": true}", "w.json: n: missing; write \"n\": 1");

    /* every problem of one object, in one walk */
    struct run r;
    walk(&r, &by_hand, &conf_table, "{\"n\": -1,\n\"b\": 2,\n\"x\": 3,\n\"b\": 4}");
    assert_int_equal(r.count, 4);
    done(&r);
}

static void dup_name(struct jf *f, const struct walk_name *first, const struct walk_name *again,
                     const void *ud)
{
    jf_error(f, again->item, ud, "%s[%zu] repeats [%zu]", again->name, again->idx, first->idx);
}

static void unique_names(void **state)
{
    (void)state;
    struct jf f;
    jf_init(&f, "w.json", &by_gateway);
    struct walk_name v[] = {{"b", NULL, 0}, {"a", NULL, 1}, {"B", NULL, 2},
                            {"a", NULL, 3}, {"c", NULL, 4}, {"a", NULL, 5}};
    walk_dups(&f, v, 6, false, dup_name, "x");
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(jf_report(&f, &b), 2);
    assert_string_equal(b.p, "w.json: x: a[3] repeats [1]\nw.json: x: a[5] repeats [1]\n");
    buf_free(&b);
    jf_free(&f);

    jf_init(&f, "w.json", &by_gateway);
    struct walk_name h[] = {{"X-Key", NULL, 0}, {"x-key", NULL, 1}, {"Other", NULL, 2}};
    walk_dups(&f, h, 3, true, dup_name, "h");
    buf_init(&b, 4096);
    assert_int_equal(jf_report(&f, &b), 1);
    assert_string_equal(b.p, "w.json: h: x-key[1] repeats [0]\n");
    buf_free(&b);
    jf_free(&f);
}

static void paths_and_memory(void **state)
{
    (void)state;
    struct jf f;
    struct arena *a = NULL;
    jf_init(&f, "w.json", &by_hand);
    struct walk w = {.jf = &f, .arena = &a, .base_dir = "/"};
    assert_string_equal(walk_resolve(&w, "k.json"), "/k.json");
    assert_string_equal(walk_resolve(&w, "./././k.json"), "/k.json");
    w.base_dir = "/etc/gw";
    assert_string_equal(walk_resolve(&w, "sub/k.json"), "/etc/gw/sub/k.json");
    assert_string_equal(walk_resolve(&w, "/abs"), "/abs");
    assert_string_equal(walk_strndup(&w, "abcdef", 3), "abc");
    assert_null(walk_alloc_array(&w, SIZE_MAX / 2, 4));
    assert_true(f.oom);
    assert_true(jf_failed(&f));
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(jf_report(&f, &b), 1);
    assert_string_equal(b.p, "w.json: out of memory\n");
    buf_free(&b);
    jf_free(&f);
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values_and_defaults),   cmocka_unit_test(numbers),
        cmocka_unit_test(number_words),          cmocka_unit_test(other_types),
        cmocka_unit_test(unknown_twice_missing), cmocka_unit_test(unique_names),
        cmocka_unit_test(paths_and_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
