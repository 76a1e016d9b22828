/* jsonfile.c: reading our JSON files and wording their problems, in both of
 * the files' voices (by hand: gateway.json; by the gateway: the keys file).
 * Problems going to the log instead are tested through the loaders
 * (test_config.c, test_keys.c). */
#include "jsonfile.h"

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
    .comments = true,
    .lines = true,
    .guess = true,
    .empty = "is empty: write {}",
    .fix = "",
    .fix_after = "",
};

static const struct jf_kind by_gateway = {
    .terse = true,
    .strict_end = true,
    .empty = "is empty: restore it",
    .fix = "; restore the file from a backup",
    .fix_after = "; remove it",
};

/* Parse text as "f.json"; the problems (if any) into *out. */
static cJSON *parse(const struct jf_kind *kind, const char *text, struct jf *f)
{
    jf_init(f, "f.json", kind);
    return jf_parse(f, text, strlen(text));
}

/* The report of a jf, as one string (caller frees). */
static char *report(struct jf *f, unsigned *count)
{
    struct buf b;
    buf_init(&b, 1u << 20);
    buf_append(&b, "", 0);
    unsigned n = jf_report(f, &b);
    if (count)
        *count = n;
    size_t len;
    return buf_detach(&b, &len);
}

/* text must be refused with exactly `want` as the report. */
static void expect_report(const struct jf_kind *kind, const char *text, const char *want)
{
    struct jf f;
    cJSON *root = parse(kind, text, &f);
    assert_null(root);
    assert_true(jf_failed(&f));
    unsigned n;
    char *got = report(&f, &n);
    assert_string_equal(got, want);
    assert_int_equal(n, 1);
    free(got);
    jf_free(&f);
}

static void comments_and_lines(void **state)
{
    (void)state;
    struct jf f;
    cJSON *root = parse(&by_hand,
                        "\xEF\xBB\xBF// a comment\n"              /* 1 */
                        "{ /* block */ \"a\": 1,\n"               /* 2 */
                        "  \"s\": \"x//y /* z */\", /* two\n"     /* 3 */
                        "  lines */ \"n\": 1.50e3,\n"             /* 4 */
                        "  \"list\": [\n    true,\n    -2\n  ]\n" /* 5-8 */
                        "} // end",
                        &f);
    assert_non_null(root);
    assert_false(jf_failed(&f));
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "a");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "s");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "n");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "list");
    assert_string_equal(s->valuestring, "x//y /* z */"); /* comments in strings stay */
    assert_int_equal(jf_line(&f, root), 2);
    assert_int_equal(jf_line(&f, a), 2);
    assert_int_equal(jf_line(&f, s), 3);
    assert_int_equal(jf_line(&f, n), 4); /* after a comment that spans lines */
    assert_int_equal(jf_line(&f, list), 5);
    assert_int_equal(jf_line(&f, list->child), 6);
    assert_int_equal(jf_line(&f, list->child->next), 7);
    assert_int_equal(jf_line(&f, NULL), 0);
    size_t len = 0;
    const char *t = jf_num_text(&f, n, &len);
    assert_non_null(t);
    assert_int_equal(len, 6);
    assert_memory_equal(t, "1.50e3", 6);
    assert_null(jf_num_text(&f, s, &len)); /* not a number */
    cJSON_Delete(root);
    jf_free(&f);

    /* a file without comments keeps them as text, and has no index */
    root = parse(&by_gateway, "{\"a\": 1}", &f);
    assert_non_null(root);
    assert_int_equal(jf_line(&f, root->child), 0);
    assert_null(jf_num_text(&f, root->child, &len));
    cJSON_Delete(root);
    jf_free(&f);
    expect_report(&by_gateway, "// x\n{}",
                  "f.json:1: JSON syntax error near \"// x\"; restore the file from a backup\n");
}

static void text_problems(void **state)
{
    (void)state;
    expect_report(&by_hand, "", "f.json: is empty: write {}\n");
    expect_report(&by_hand, " // nothing\n /* at all */ ", "f.json: is empty: write {}\n");
    expect_report(&by_gateway, "\n\t ", "f.json: is empty: restore it\n");
    expect_report(&by_hand, "{\n\"a\": 1 /* open\n",
                  "f.json:2: this /* comment is never closed: add the closing */\n");
    static const char nul[] = "{\n\n\"a\": \"x\0\"}";
    struct jf f;
    jf_init(&f, "f.json", &by_hand);
    assert_null(jf_parse(&f, nul, sizeof nul - 1));
    char *got = report(&f, NULL);
    assert_string_equal(got, "f.json:3: contains a NUL byte: is this a text file?\n");
    free(got);
    jf_free(&f);
    expect_report(&by_hand, "{}\n\n[]",
                  "f.json:3: unexpected text after the end of the top-level object\n");
    expect_report(&by_gateway, "{}\n{}",
                  "f.json:2: unexpected text after the end of the top-level object; remove it\n");
    /* what cJSON skips between tokens may follow the value, unless the end is
     * strict: then only white space */
    struct jf g;
    cJSON *root = parse(&by_hand, "{} \x01\n", &g);
    assert_non_null(root);
    cJSON_Delete(root);
    jf_free(&g);
    expect_report(&by_gateway, "{} \n\x01\n",
                  "f.json:2: unexpected text after the end of the top-level object; remove it\n");
    root = parse(&by_gateway, "{} \t\r\n\f\v", &g);
    assert_non_null(root);
    cJSON_Delete(root);
    jf_free(&g);
    /* not '\0'-terminated: only len bytes are read */
    jf_init(&g, "f.json", &by_gateway);
    root = jf_parse(&g, "[1]garbage", 3);
    assert_non_null(root);
    cJSON_Delete(root);
    jf_free(&g);
}

static void syntax(void **state)
{
    (void)state;
    /* by hand: the slip is guessed */
    struct jf f;
    assert_null(parse(&by_hand, "{\n\"a\": [1,],\n\"b\": {\"c\": 2,}\n}", &f));
    unsigned n;
    char *got = report(&f, &n);
    assert_string_equal(got, "f.json:2: JSON syntax error: a comma before ']' (JSON allows no "
                             "trailing comma); remove it\n"
                             "f.json:3: JSON syntax error: a comma before '}' (JSON allows no "
                             "trailing comma); remove it\n");
    assert_int_equal(n, 2);
    free(got);
    jf_free(&f);
    expect_report(&by_hand, "{\n\"a\": 1\n\"b\": 2}",
                  "f.json:3: JSON syntax error near \"\\\"b\\\": 2}\" (a missing ',' or ':' "
                  "before it?)\n");
    expect_report(&by_hand, "{\n\"a\": [\n",
                  "f.json:3: JSON syntax error: the text ends too early (a missing '}', ']' or "
                  "'\"'?)\n");
    /* by the gateway: damage, no guessing */
    expect_report(&by_gateway, "{\"a\": [1,]}",
                  "f.json:1: JSON syntax error near \"]}\"; restore the file from a backup\n");
    expect_report(&by_gateway, "{\n\"a\": 1\n\"b\": 2}",
                  "f.json:3: JSON syntax error near \"\\\"b\\\": 2}\"; restore the file from a "
                  "backup\n");
    expect_report(&by_gateway, "{\n\"a\": [\n",
                  "f.json:3: JSON syntax error: the text ends too early (a missing '}', ']' or "
                  "'\"'?); restore the file from a backup\n");
}

/* Problems are sorted by line, then by the order they were found. */
static void sorted_and_capped(void **state)
{
    (void)state;
    struct jf f;
    cJSON *root = parse(&by_hand, "{\n\"a\": 1,\n\"b\": 2}", &f);
    assert_non_null(root);
    const cJSON *a = root->child, *b = a->next;
    jf_error(&f, b, "b", "third line");
    jf_error(&f, a, "a", "second line, first");
    jf_error_line(&f, 0, NULL, "no line");
    jf_error(&f, a, NULL, "second line, second");
    jf_note(&f, b, "b", "a note");
    jf_note(&f, a, "a", "an earlier note");
    assert_true(jf_failed(&f));
    const char *notes[2];
    assert_int_equal(jf_notes(&f, notes), 2);
    assert_string_equal(notes[0], "f.json:2: a: an earlier note");
    assert_string_equal(notes[1], "f.json:3: b: a note");
    unsigned n;
    char *got = report(&f, &n);
    assert_string_equal(got, "f.json: no line\n"
                             "f.json:2: a: second line, first\n"
                             "f.json:2: second line, second\n"
                             "f.json:3: b: third line\n");
    assert_int_equal(n, 4);
    free(got);
    cJSON_Delete(root);
    jf_free(&f);

    /* control characters never split a message */
    jf_init(&f, "f.json", &by_hand);
    jf_error_line(&f, 1, "p\n", "a\rb\x7f");
    got = report(&f, NULL);
    assert_string_equal(got, "f.json:1: p?: a?b?\n");
    free(got);
    jf_free(&f);

    /* more than JF_MAX_SHOWN: counted, and the rest summarised */
    jf_init(&f, "f.json", &by_hand);
    for (int i = 0; i < JF_MAX_SHOWN + 5; i++) {
        assert_false(i < JF_MAX_SHOWN && jf_spare(&f));
        jf_error_line(&f, (unsigned)i + 1, NULL, "problem %d", i);
    }
    assert_true(jf_spare(&f)); /* counted, not worded */
    got = report(&f, &n);
    assert_int_equal(n, JF_MAX_SHOWN + 6);
    assert_non_null(strstr(got, "f.json:100: problem 99\nf.json: ... and 6 more problems\n"));
    assert_null(strstr(got, "problem 100"));
    free(got);
    jf_free(&f);
}

static void voices(void **state)
{
    (void)state;
    struct jf hand, gw;
    const char *text = "{\"s\": \"x\", \"n\": 1.5e0, \"t\": true, \"z\": null, \"l\": [], "
                       "\"o\": {}}";
    cJSON *r1 = parse(&by_hand, text, &hand), *r2 = parse(&by_gateway, text, &gw);
    assert_non_null(r1);
    assert_non_null(r2);
    static const char *const want_hand[] = {"the string \"x\"", "the number 1.5e0", "true", "null",
                                            "an array",         "an object"};
    static const char *const want_gw[] = {"\"x\"", "1.5", "true", "null", "an array", "an object"};
    char d[128];
    size_t i = 0;
    for (const cJSON *m = r1->child, *m2 = r2->child; m; m = m->next, m2 = m2->next, i++) {
        assert_string_equal(jf_describe(&hand, m, d, sizeof d), want_hand[i]);
        assert_string_equal(jf_describe(&gw, m2, d, sizeof d), want_gw[i]);
    }
    jf_mismatch(&hand, r1->child, "s", "a number", "; write it without quotes");
    jf_mismatch(&gw, r2->child, "s", "a number", "; correct it");
    char *got = report(&hand, NULL);
    assert_string_equal(got, "f.json:1: s: expected a number, got the string \"x\"; write it "
                             "without quotes\n");
    free(got);
    got = report(&gw, NULL);
    assert_string_equal(got, "f.json: s: must be a number, not \"x\"; correct it\n");
    free(got);
    cJSON_Delete(r1);
    cJSON_Delete(r2);
    jf_free(&hand);
    jf_free(&gw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(comments_and_lines),
        cmocka_unit_test(text_problems),
        cmocka_unit_test(syntax),
        cmocka_unit_test(sorted_and_capped),
        cmocka_unit_test(voices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
