/* tools/server_text.h: the reasoning / answer / tool-call split of generated text, which must cut
   a streamed text (held back where a tag may be starting) as it cuts the whole, and DeepSeek's
   and Qwen3's tool-call syntaxes turned into OpenAI's tool_calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "server_text.h"

static char *part(const char *s, size_t a, size_t b) { return strndup(s + a, b - a); }

static void expect_split(const char *s, int in_think, tool_syntax t, const char *r, const char *c, const char *tools) {
    text_parts p = text_split(s, strlen(s), in_think, t, 1);
    char *x = part(s, p.r0, p.r1), *y = part(s, p.c0, p.c1), *z = part(s, p.tools, strlen(s));
    assert_string_equal(x, r);
    assert_string_equal(y, c);
    assert_string_equal(z, tools);
    free(x), free(y), free(z);
}

static void test_split_whole(void **st) {
    (void)st;
    expect_split("Hello there", 0, TOOLS_NONE, "", "Hello there", "");
    expect_split("I think so.</think>\n\nYes.", 1, TOOLS_NONE, "I think so.", "Yes.", "");
    expect_split("still thinking", 1, TOOLS_NONE, "still thinking", "", "");
    expect_split("\n<think>\nhmm\n</think>\n\nOK", 0, TOOLS_NONE, "\nhmm\n", "OK", "");
    expect_split("Let me look." TOOL_CALLS_BEGIN "x", 0, TOOLS_DEEPSEEK, "", "Let me look.", TOOL_CALLS_BEGIN "x");
    expect_split("a<tool_call>\n{}", 0, TOOLS_QWEN3, "", "a", "<tool_call>\n{}");
    expect_split("a<tool_call>", 0, TOOLS_NONE, "", "a<tool_call>", ""); /* no tools asked: all content */
}

/* Every prefix of the text, cut as a stream would be, gives prefixes of the final parts. */
static void check_stream(const char *s, int in_think, tool_syntax t) {
    size_t n = strlen(s);
    text_parts f = text_split(s, n, in_think, t, 1);
    size_t last_r = 0, last_c = 0;
    for (size_t k = 0; k <= n; k++) {
        text_parts p = text_split(s, k, in_think, t, 0);
        size_t nr = p.r1 - p.r0, nc = p.c1 > p.c0 ? p.c1 - p.c0 : 0;
        assert_true(nr >= last_r && nc >= last_c); /* never taken back */
        if (nr) assert_int_equal(p.r0, f.r0), assert_true(nr <= f.r1 - f.r0);
        if (nc) assert_int_equal(p.c0, f.c0), assert_true(nc <= f.c1 - f.c0);
        last_r = nr, last_c = nc;
    }
    assert_int_equal(last_r, f.r1 - f.r0);
}

static void test_split_streamed(void **st) {
    (void)st;
    check_stream("Reasoning here.</think>\n\nThe answer.", 1, TOOLS_NONE);
    check_stream("<think>\nhmm</think>ok", 0, TOOLS_NONE);
    check_stream("<thin and more", 0, TOOLS_NONE);
    check_stream("Calling." TOOL_CALLS_BEGIN TOOL_CALL_BEGIN "function" TOOL_SEP "f\n```json\n{}\n```" TOOL_CALL_END
                 TOOL_CALLS_END, 0, TOOLS_DEEPSEEK);
    check_stream("x</think>y<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>", 1, TOOLS_QWEN3);
    /* a tail that may be "</think>" is held back */
    text_parts p = text_split("abc</thi", 8, 1, TOOLS_NONE, 0);
    assert_int_equal(p.r1 - p.r0, 3);
}

static void expect_call(cJSON *calls, int i, const char *name, const char *args) {
    cJSON *c = cJSON_GetArrayItem(calls, i), *f = cJSON_GetObjectItem(c, "function");
    assert_string_equal(cJSON_GetObjectItem(c, "type")->valuestring, "function");
    assert_non_null(cJSON_GetObjectItem(c, "id"));
    assert_string_equal(cJSON_GetObjectItem(f, "name")->valuestring, name);
    assert_string_equal(cJSON_GetObjectItem(f, "arguments")->valuestring, args);
}

static void test_tool_calls(void **st) {
    (void)st;
    const char *v3 = TOOL_CALLS_BEGIN TOOL_CALL_BEGIN "function" TOOL_SEP "get_weather\n```json\n{\"city\": \"Paris\"}\n```"
        TOOL_CALL_END "\n" TOOL_CALL_BEGIN "function" TOOL_SEP "get_time\n```json\n{}\n```" TOOL_CALL_END TOOL_CALLS_END;
    cJSON *c = parse_tool_calls(TOOLS_DEEPSEEK, v3, strlen(v3));
    assert_non_null(c);
    assert_int_equal(cJSON_GetArraySize(c), 2);
    expect_call(c, 0, "get_weather", "{\"city\": \"Paris\"}");
    expect_call(c, 1, "get_time", "{}");
    cJSON_Delete(c);
    const char *v31 = TOOL_CALLS_BEGIN TOOL_CALL_BEGIN "get_weather" TOOL_SEP "{\"city\": \"Oslo\"}" TOOL_CALL_END TOOL_CALLS_END;
    assert_non_null(c = parse_tool_calls(TOOLS_DEEPSEEK, v31, strlen(v31)));
    expect_call(c, 0, "get_weather", "{\"city\": \"Oslo\"}");
    cJSON_Delete(c);
    const char *q = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": [1, 2]}}\n</tool_call>\n<tool_call>\n"
                    "{\"name\": \"g\", \"arguments\": \"{}\"}\n</tool_call>";
    assert_non_null(c = parse_tool_calls(TOOLS_QWEN3, q, strlen(q)));
    assert_int_equal(cJSON_GetArraySize(c), 2);
    expect_call(c, 0, "f", "{\"a\":[1,2]}");
    expect_call(c, 1, "g", "{}");
    cJSON_Delete(c);
    const char *dsml = DSML_CALLS "\n" DSML_INVOKE "get_weather\">\n" DSML_PARAM "city\" string=\"true\">Paris, \"FR\""
        DSML_PARAM_END "\n" DSML_PARAM "days\" string=\"false\">3" DSML_PARAM_END "\n" DSML_PARAM
        "opts\" string=\"false\">{\"u\": [1]}" DSML_PARAM_END "\n" DSML_INVOKE_END "\n" DSML_INVOKE "now\">\n" DSML_INVOKE_END
        "\n</｜DSML｜function_calls>";
    assert_non_null(c = parse_tool_calls(TOOLS_DSML, dsml, strlen(dsml)));
    assert_int_equal(cJSON_GetArraySize(c), 2);
    expect_call(c, 0, "get_weather", "{\"city\":\"Paris, \\\"FR\\\"\",\"days\":3,\"opts\":{\"u\":[1]}}");
    expect_call(c, 1, "now", "{}");
    cJSON_Delete(c);
    expect_split("Checking.\n\n" DSML_CALLS "x", 0, TOOLS_DSML, "", "Checking.\n\n", DSML_CALLS "x");
    /* V4: the same invokes in a tool_calls block */
    const char *v4 = "Sure.\n\n" DSML_CALLS_V4 "\n" DSML_INVOKE "get_weather\">\n" DSML_PARAM "city\" string=\"true\">Oslo"
        DSML_PARAM_END "\n" DSML_INVOKE_END "\n</｜DSML｜tool_calls>";
    text_parts p4 = text_split(v4, strlen(v4), 0, TOOLS_DSML_V4, 1);
    assert_int_equal(p4.r1 - p4.r0, 0);
    assert_non_null(c = parse_tool_calls(TOOLS_DSML_V4, v4 + p4.tools, strlen(v4) - p4.tools));
    expect_call(c, 0, "get_weather", "{\"city\":\"Oslo\"}");
    cJSON_Delete(c);
    /* not well formed: no calls (the text stays the answer) */
    const char *bad[] = {TOOL_CALLS_BEGIN, TOOL_CALLS_BEGIN TOOL_CALL_BEGIN "function" TOOL_SEP "f\n```json\n{}",
                         TOOL_CALLS_BEGIN TOOL_CALL_BEGIN "no separator" TOOL_CALL_END};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_null(parse_tool_calls(TOOLS_DEEPSEEK, bad[i], strlen(bad[i])));
    assert_null(parse_tool_calls(TOOLS_QWEN3, "<tool_call>\n{\"name\": 3}\n</tool_call>", 36));
    assert_null(parse_tool_calls(TOOLS_QWEN3, "<tool_call>\n{broken\n</tool_call>", 32));
}

static void test_stop(void **st) {
    (void)st;
    char *stop[] = {"STOP", "\n\n"};
    const char *s = "abc STOP def\n\n";
    assert_int_equal(stop_at(s, 0, strlen(s), stop, 2), 4);
    assert_int_equal(stop_at(s, 9, strlen(s), stop, 2), 12); /* STOP ended before: only what ends past 9 */
    assert_int_equal(stop_at("abc", 0, 3, stop, 2), 3);
    assert_int_equal(stop_partial("abc ST", 6, stop, 2), 2);
    assert_int_equal(stop_partial("abc\n", 4, stop, 2), 1);
    assert_int_equal(stop_partial("abc", 3, stop, 2), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_split_whole), cmocka_unit_test(test_split_streamed),
                                       cmocka_unit_test(test_tool_calls), cmocka_unit_test(test_stop)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
