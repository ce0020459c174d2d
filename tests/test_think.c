/* test_think - the CLI's reasoning filter (tools/think.h): <think> ... </think> hidden or shown
   exactly, whatever the token boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "think.h"

/* The filter's output for text cut into pieces of `step` bytes (0: one piece). */
static char *run(const char *text, int in_think, int at_start, int hide, int dim, size_t step) {
    char *out = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&out, &len);
    text_out o = {.in_think = in_think, .at_start = at_start, .hide = hide, .dim = dim, .fp = fp};
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i += step ? step : n) text_put(&o, text + i, step && n - i > step ? step : n - i);
    text_end(&o);
    fclose(fp);
    return out;
}

/* Every split of text gives want. */
static void expect(const char *text, int in_think, int at_start, int hide, const char *want) {
    for (size_t step = 0; step <= strlen(text); step++) {
        char *got = run(text, in_think, at_start, hide, 0, step);
        if (strcmp(got, want)) fprintf(stderr, "step %zu: got \"%s\" want \"%s\"\n", step, got, want);
        assert_string_equal(got, want);
        free(got);
    }
}

static const char R1[] = "Let me think.\n2 + 2 = 4.\n</think>\n\nThe answer is 4.";

static void r1_hidden(void **state) {
    (void)state;
    expect(R1, 1, 1, 1, "The answer is 4.");
}

static void r1_shown_verbatim(void **state) {
    (void)state;
    expect(R1, 1, 1, 0, R1);
}

static void unclosed_reasoning_hidden(void **state) {
    (void)state;
    expect("still thinking </thin", 1, 1, 1, "");
}

static void think_opened_by_the_model(void **state) {
    (void)state;
    expect("<think>hmm</think>Yes.", 0, 1, 1, "Yes.");
    expect("<think>hmm</think>Yes.", 0, 1, 0, "<think>hmm</think>Yes.");
    /* only at the start of the answer */
    expect("I wrote <think>x</think> here", 0, 1, 1, "I wrote <think>x</think> here");
    expect("<thin", 0, 1, 1, "<thin");
}

static void plain_text_untouched(void **state) {
    (void)state;
    expect("a </think> b <think>", 0, 0, 1, "a </think> b <think>");
}

/* Dimmed: stripping the escape codes gives the text back, and the answer is not dimmed. */
static void dimmed(void **state) {
    (void)state;
    for (size_t step = 0; step < 12; step++) {
        char *got = run(R1, 1, 1, 0, 1, step), *w = got;
        for (const char *r = got; *r;) {
            if (!strncmp(r, "\033[2m", 4) || !strncmp(r, "\033[0m", 4)) r += 4;
            else *w++ = *r++;
        }
        *w = 0;
        assert_string_equal(got, R1);
        free(got);
        got = run(R1, 1, 1, 0, 1, step);
        const char *answer = strstr(got, "The answer");
        assert_non_null(answer);
        const char *last_dim = NULL;
        for (const char *p = strstr(got, "\033[2m"); p; p = strstr(p + 1, "\033[2m")) last_dim = p;
        assert_true(last_dim && last_dim < answer && strstr(last_dim, "\033[0m") < answer);
        free(got);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(r1_hidden),
        cmocka_unit_test(r1_shown_verbatim),
        cmocka_unit_test(unclosed_reasoning_hidden),
        cmocka_unit_test(think_opened_by_the_model),
        cmocka_unit_test(plain_text_untouched),
        cmocka_unit_test(dimmed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
