/* test_chat - chat templates: every golden row rendered byte for byte, template detection, the
   length / truncation contract of ds_chat_render and the inputs it must refuse.

   usage: test_chat STYLE TEMPLATE ROWS [STYLE TEMPLATE ROWS ...]
     STYLE     the name ds_chat_style_name gives the style TEMPLATE must be detected as
     TEMPLATE  a tokenizer_config.json (its chat_template) or a template file (.jinja, read whole);
               "-" for none: the rows are rendered with the style named STYLE (V3.2's encoder)
     ROWS      .jsonl of {"messages", "add_generation_prompt", "text"} rendered by that template
               ("-" for none: the detection alone is checked),
               with "thinking" (V3.1, V3.2, Qwen3; absent: the template's default) and "tools"
               (V3.2, Qwen3: JSON text or null) where given;
               "text": null marks a conversation the template refuses (raises an error)
   Rows are rendered with the style detected from TEMPLATE and DeepSeek-V3's BOS / EOS strings
   (DeepSeek Coder's EOS is <|EOT|>; Qwen3 and ChatML use neither). */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "chatjson.h"
#include "testutil.h"

#include "deepseek.h"

#define BOS "<｜begin▁of▁sentence｜>"
#define EOS "<｜end▁of▁sentence｜>"

/* The styles from the first to the last (DS_CHAT_UNKNOWN excluded), in enum order. */
static int n_styles(void) {
    int n = 0;
    for (const char *const *s = ds_chat_template_names(); *s; s++) n++;
    return n;
}

typedef struct {
    const char *style, *template_path, *rows_path;
    char *template; /* loaded by main */
} golden_set;

static golden_set *sets;
static int n_sets;

/* ---- loading ---- */

static char *load_text(const char *path) {
    size_t n;
    uint8_t *b = slurp(path, &n);
    if (!b) return NULL;
    char *s = realloc(b, n + 1);
    if (!s) {
        free(b);
        return NULL;
    }
    s[n] = '\0';
    return s;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A tokenizer_config.json's chat_template, or a whole template file; "-" is an empty template. */
static char *load_template(const char *path) {
    if (!strcmp(path, "-")) return calloc(1, 1);
    char *text = load_text(path);
    if (!text || !ends_with(path, ".json")) return text;
    cJSON *cfg = cJSON_Parse(text);
    free(text);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    char *tmpl = NULL;
    if (cJSON_IsString(t) && (tmpl = malloc(strlen(t->valuestring) + 1))) strcpy(tmpl, t->valuestring);
    cJSON_Delete(cfg);
    return tmpl;
}

static const char *template_of(const char *style) {
    for (int i = 0; i < n_sets; i++)
        if (strcmp(sets[i].style, style) == 0) return sets[i].template;
    return NULL;
}

/* ---- golden rows ---- */

static void print_escaped(const char *label, const char *s) {
    fprintf(stderr, "  %s: \"", label);
    for (; *s; s++) {
        if (*s == '\n') fputs("\\n", stderr);
        else if (*s == '"' || *s == '\\') fprintf(stderr, "\\%c", *s);
        else fputc(*s, stderr);
    }
    fputs("\"\n", stderr);
}

/* ds_chat_render_ex as a length: the text's full length (whether or not it fitted in cap), or -1
   where it refuses. The status must say which: DS_OK only when the text and its NUL fitted. */
static long render_ex(ds_chat_style style, const char *bos, const char *eos, const ds_chat_message *msgs, int n,
                      const ds_chat_params *p, char *buf, size_t cap) {
    size_t len = 12345;
    char err[256];
    ds_status st = ds_chat_render_ex(style, bos, eos, msgs, n, p, buf, cap, &len, err, sizeof err);
    if (st != DS_OK && st != DS_ERR_SMALL_BUFFER) {
        assert_true(st == DS_ERR_ARG || st == DS_ERR_UNSUPPORTED);
        assert_int_equal(len, 0);
        assert_true(err[0] != 0);
        return -1;
    }
    assert_int_equal(st, len < cap ? DS_OK : DS_ERR_SMALL_BUFFER);
    return (long)len;
}

/* ds_chat_render, which must agree with ds_chat_render_ex and its default params. */
static long render(ds_chat_style style, const char *bos, const char *eos, const ds_chat_message *msgs, int n, int agp,
                   char *buf, size_t cap) {
    size_t len = 12345;
    char err[256];
    ds_status st = ds_chat_render(style, bos, eos, msgs, n, agp, buf, cap, &len, err, sizeof err);
    ds_chat_params p = ds_chat_default_params();
    p.add_generation_prompt = agp;
    long n_ex = render_ex(style, bos, eos, msgs, n, &p, NULL, 0);
    if (st != DS_OK && st != DS_ERR_SMALL_BUFFER) {
        assert_int_equal(len, 0);
        assert_true(err[0] != 0);
        assert_int_equal(n_ex, -1);
        return -1;
    }
    assert_int_equal(st, len < cap ? DS_OK : DS_ERR_SMALL_BUFFER);
    assert_int_equal(n_ex, (long)len);
    return (long)len;
}

/* 0 when the row renders as expected; the first difference is printed otherwise. */
static int check_row(ds_chat_style style, const cJSON *row, int line) {
    const cJSON *expect = cJSON_GetObjectItemCaseSensitive(row, "text");
    ds_chat_params p = ds_chat_default_params();
    p.add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "add_generation_prompt"));
    const cJSON *thinking = cJSON_GetObjectItemCaseSensitive(row, "thinking");
    if (thinking) p.thinking = cJSON_IsTrue(thinking);
    p.tools = str_or_null(cJSON_GetObjectItemCaseSensitive(row, "tools"));
    conversation c = to_conversation(cJSON_GetObjectItemCaseSensitive(row, "messages"));
    const char *eos = style == DS_CHAT_DEEPSEEK_CODER ? "<|EOT|>" : EOS;
    long n = render_ex(style, BOS, eos, c.msgs, c.n, &p, NULL, 0);
    int bad = 0;
    if (!cJSON_IsString(expect)) {
        bad = n != -1;
        if (bad) fprintf(stderr, "line %d: rendered %ld bytes, the template refuses it\n", line, n);
    } else if (n != (long)strlen(expect->valuestring)) {
        fprintf(stderr, "line %d: length %ld, expected %zu\n", line, n, strlen(expect->valuestring));
        bad = 1;
    } else {
        char *buf = malloc((size_t)n + 1);
        assert_non_null(buf);
        assert_int_equal(render_ex(style, BOS, eos, c.msgs, c.n, &p, buf, (size_t)n + 1), n);
        bad = memcmp(buf, expect->valuestring, (size_t)n + 1) != 0;
        if (bad) {
            fprintf(stderr, "line %d differs\n", line);
            print_escaped("expected", expect->valuestring);
            print_escaped("rendered", buf);
        }
        free(buf);
    }
    free_conversation(&c);
    return bad;
}

static void test_golden(void **state) {
    const golden_set *g = *state;
    assert_non_null(g->template);
    ds_chat_style style = *g->template ? ds_chat_detect(g->template) : ds_chat_style_from_name(g->style);
    assert_string_equal(ds_chat_style_name(style), g->style);
    if (!strcmp(g->rows_path, "-")) {
        printf("# %s: detected as %s\n", g->template_path, g->style);
        return;
    }

    char *text = load_text(g->rows_path);
    assert_non_null(text);
    int rows = 0, failures = 0;
    for (char *line = text, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        assert_non_null(end); /* every row ends with a newline */
        *end = '\0';
        cJSON *row = cJSON_Parse(line);
        assert_non_null(row);
        failures += check_row(style, row, ++rows);
        cJSON_Delete(row);
    }
    free(text);
    printf("# %s: %d rows as %s\n", g->rows_path, rows, g->style);
    assert_true(rows > 0);
    assert_int_equal(failures, 0);
}

/* ---- detection ---- */

/* s with the first occurrence of from replaced by to (malloc'd), or NULL if from is absent. */
static char *replace(const char *s, const char *from, const char *to) {
    const char *p = s ? strstr(s, from) : NULL;
    if (!p) return NULL;
    size_t a = (size_t)(p - s), nf = strlen(from), nt = strlen(to), rest = strlen(p + nf);
    char *r = malloc(a + nt + rest + 1);
    assert_non_null(r);
    memcpy(r, s, a);
    memcpy(r + a, to, nt);
    memcpy(r + a + nt, p + nf, rest + 1);
    return r;
}

static void expect_detect(const char *tmpl, ds_chat_style want) {
    assert_non_null(tmpl);
    assert_string_equal(ds_chat_style_name(ds_chat_detect(tmpl)), ds_chat_style_name(want));
}

static void test_detect_unknown(void **state) {
    (void)state;
    assert_int_equal(ds_chat_detect(NULL), DS_CHAT_UNKNOWN);
    expect_detect("", DS_CHAT_UNKNOWN);
    /* a plain ChatML template is ChatML; one with more to it (a default system prompt) is not */
    expect_detect("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                  "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_"
                  "prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
                  DS_CHAT_CHATML);
    expect_detect("{% if messages[0]['role'] != 'system' %}{{'<|im_start|>system\\nYou are a helpful assistant."
                  "<|im_end|>\\n'}}{% endif %}{% for message in messages %}{{'<|im_start|>' + message['role'] + "
                  "'\\n' + message['content'] + '<|im_end|>\\n'}}{% endfor %}",
                  DS_CHAT_UNKNOWN);
    /* "### Instruction:" without DeepSeek Coder's <|EOT|> (Alpaca) */
    expect_detect("{% for m in messages %}{{'### Instruction:\\n' + m['content'] + '\\n\\n### Response:\\n'}}"
                  "{% endfor %}",
                  DS_CHAT_UNKNOWN);
    /* ASCII look-alikes of the markers are not DeepSeek's */
    expect_detect("{{'<|User|>' + m}}{{'<|Assistant|>' + m + '<|end_of_sentence|>'}}", DS_CHAT_UNKNOWN);
    /* DSML with neither V3.2's function_calls block nor V4's tool_calls block */
    expect_detect("{%- set dsml_token = '｜DSML｜' -%}{{'<｜User｜>' + m}}{{'<｜Assistant｜>'}}"
                  "{{'<' + dsml_token + 'invoke name=\"' + name + '\">'}}",
                  DS_CHAT_UNKNOWN);
}

/* R1's revisions and relatives, derived from the real templates so that only the distinguishing
   detail changes. */
static void test_detect_variants(void **state) {
    (void)state;
    const char *v3 = template_of("deepseek3"), *r1 = template_of("deepseek-r1");
    if (!v3 || !r1) skip();
    static const char v3_prompt[] = "{{'<｜Assistant｜>'}}{% endif %}";
    char *v;

    /* V3's template with R1's generation prompt, "\n" as Jinja escape or as the character */
    expect_detect(v = replace(v3, v3_prompt, "{{'<｜Assistant｜><think>\\n'}}{% endif %}"), DS_CHAT_DEEPSEEK_R1);
    free(v);
    expect_detect(v = replace(v3, v3_prompt, "{{'<｜Assistant｜><think>\n'}}{% endif %}"), DS_CHAT_DEEPSEEK_R1);
    free(v);
    /* "<think>" alone after the marker is not R1's prompt */
    expect_detect(v = replace(v3, v3_prompt, "{{'<｜Assistant｜><think>'}}{% endif %}"), DS_CHAT_DEEPSEEK3);
    free(v);
    /* R1 before its generation prompt opened <think>: the reasoning split still tells */
    expect_detect(v = replace(r1, "<｜Assistant｜><think>\\n'", "<｜Assistant｜>'"), DS_CHAT_DEEPSEEK_R1);
    free(v);
    /* without the split and the <think> prompt R1's template is V3's family */
    char *w = replace(r1, "<｜Assistant｜><think>\\n'", "<｜Assistant｜>'");
    expect_detect(v = replace(w, "{% set content = content.split('</think>')[-1] %}", ""), DS_CHAT_DEEPSEEK3);
    free(v);
    free(w);
}

/* V3.1's and V3.2's relatives, from the real templates (see the README). */
static void test_detect_hybrid(void **state) {
    (void)state;
    /* a V3.1-style fragment: the hybrid thinking markers */
    expect_detect("{{'<｜User｜>' + message['content']}}{%- if ns.is_last_user -%}"
                  "{{'<｜Assistant｜></think>'}}{%- endif -%}{{content + '<｜end▁of▁sentence｜>'}}"
                  "{%- if not thinking -%}{{'</think>'}}{%- else -%}{{'<think>'}}{%- endif -%}",
                  DS_CHAT_DEEPSEEK3_1);
    const char *v31 = template_of("deepseek3.1");
    if (!v31) skip();
    char *v;
    /* llama.cpp's edit writes <think></think> where DeepSeek's writes </think> */
    expect_detect(v = replace(v31, "{{'<｜Assistant｜></think>'}}", "{{'<｜Assistant｜><think></think>'}}"),
                  DS_CHAT_DEEPSEEK3_1);
    free(v);
    /* unsloth's edit: split + join instead of split(..., 1) */
    expect_detect(
        v = replace(v31, "content.split('</think>', 1)[1]", "content.split('</think>')[1:] | join('</think>')"),
        DS_CHAT_DEEPSEEK3_1);
    free(v);
    /* DSML: V3.2 names its block function_calls, V4 tool_calls (V3.2's templates test
       message['tool_calls'] too, but never write "tool_calls>") */
    expect_detect("{%- set dsml_token = '｜DSML｜' -%}{{'<｜User｜>' + m}}{{'<｜Assistant｜>'}}"
                  "{{'<' + dsml_token + 'tool_calls>'}}",
                  DS_CHAT_DEEPSEEK4);
    expect_detect("{%- set dsml_token = '｜DSML｜' -%}{{'<｜User｜>' + m}}{{'<｜Assistant｜>'}}"
                  "{%- if message['tool_calls'] -%}{{'<' + dsml_token + 'function_calls>'}}{%- endif -%}",
                  DS_CHAT_DEEPSEEK3_2);
    const char *v4 = template_of("deepseek4");
    if (!v4) skip();
    /* V4's template with its block renamed function_calls everywhere is V3.2's family */
    char *w = replace(v4, "tool_calls>", "function_calls>"), *x;
    assert_non_null(w);
    while ((x = replace(w, "tool_calls>", "function_calls>"))) {
        free(w);
        w = x;
    }
    expect_detect(w, DS_CHAT_DEEPSEEK3_2);
    free(w);
}

static void test_names(void **state) {
    (void)state;
    assert_string_equal(ds_chat_style_name(DS_CHAT_UNKNOWN), "unknown");
    assert_string_equal(ds_chat_style_name(DS_CHAT_DEEPSEEK3), "deepseek3");
    assert_string_equal(ds_chat_style_name(DS_CHAT_DEEPSEEK_R1), "deepseek-r1");
    assert_string_equal(ds_chat_style_name(DS_CHAT_DEEPSEEK2), "deepseek2");
    assert_string_equal(ds_chat_style_name(DS_CHAT_DEEPSEEK3_1), "deepseek3.1");
    assert_string_equal(ds_chat_style_name(DS_CHAT_DEEPSEEK3_2), "deepseek3.2");
    assert_string_equal(ds_chat_style_name(DS_CHAT_DEEPSEEK_R1_DISTILL), "deepseek-r1-distill");
    assert_string_equal(ds_chat_style_name(DS_CHAT_DEEPSEEK_CODER), "deepseek-coder");
    assert_string_equal(ds_chat_style_name(DS_CHAT_QWEN3), "qwen3");
    assert_string_equal(ds_chat_style_name(DS_CHAT_CHATML), "chatml");
    assert_string_equal(ds_chat_style_name(DS_CHAT_DEEPSEEK4), "deepseek4");
    assert_string_equal(ds_chat_style_name((ds_chat_style)99), "unknown");
    assert_string_equal(ds_chat_style_name((ds_chat_style)-1), "unknown");
    /* the name list is the styles in order, and each name maps back */
    const char *const *names = ds_chat_template_names();
    assert_int_equal(n_styles(), DS_CHAT_DEEPSEEK4);
    for (int s = 1; s <= n_styles(); s++) {
        assert_string_equal(names[s - 1], ds_chat_style_name((ds_chat_style)s));
        assert_int_equal(ds_chat_style_from_name(names[s - 1]), s);
    }
    assert_null(names[n_styles()]);
    assert_int_equal(ds_chat_style_from_name("unknown"), DS_CHAT_UNKNOWN);
    assert_int_equal(ds_chat_style_from_name("DeepSeek3"), DS_CHAT_UNKNOWN);
    assert_int_equal(ds_chat_style_from_name(""), DS_CHAT_UNKNOWN);
    assert_int_equal(ds_chat_style_from_name(NULL), DS_CHAT_UNKNOWN);
    for (int s = DS_CHAT_UNKNOWN; s <= n_styles(); s++) {
        assert_int_equal(ds_chat_opens_think((ds_chat_style)s),
                         s == DS_CHAT_DEEPSEEK_R1 || s == DS_CHAT_DEEPSEEK_R1_DISTILL);
        assert_int_equal(ds_chat_has_thinking_switch((ds_chat_style)s),
                         s == DS_CHAT_DEEPSEEK3_1 || s == DS_CHAT_DEEPSEEK3_2 || s == DS_CHAT_QWEN3 ||
                             s == DS_CHAT_DEEPSEEK4);
    }
    ds_chat_params p = ds_chat_default_params();
    assert_int_equal(p.add_generation_prompt, 1);
    assert_int_equal(p.thinking, -1);
    assert_null(p.tools);
    assert_int_equal(p.style, DS_CHAT_UNKNOWN);
}

/* ---- the buffer contract ---- */

static const ds_chat_message chat[] = {
    {"system", "Be brief.", NULL, 0},
    {"user", "Hi", NULL, 0},
    {"assistant", "<think>greet</think>Hello!", NULL, 0},
    {"user", "Bye", NULL, 0},
};
#define N_CHAT ((int)(sizeof chat / sizeof chat[0]))

static void test_render_basics(void **state) {
    (void)state;
    char buf[512];
    long n = render(DS_CHAT_DEEPSEEK_R1, BOS, EOS, chat, N_CHAT, 1, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    assert_string_equal(buf,
                        BOS "Be brief.<｜User｜>Hi<｜Assistant｜>Hello!" EOS "<｜User｜>Bye<｜Assistant｜><think>\n");
    render(DS_CHAT_DEEPSEEK3, BOS, EOS, chat, N_CHAT, 0, buf, sizeof buf);
    assert_string_equal(buf, BOS "Be brief.<｜User｜>Hi<｜Assistant｜><think>greet</think>Hello!" EOS "<｜User｜>Bye");
    render(DS_CHAT_DEEPSEEK2, "<s>", "</s>", chat, N_CHAT, 1, buf, sizeof buf);
    assert_string_equal(buf, "<s>Be brief.\n\nUser: Hi\n\nAssistant: <think>greet</think>Hello!"
                             "</s>User: Bye\n\nAssistant:");
    /* no messages; NULL bos / eos are empty */
    assert_int_equal(render(DS_CHAT_DEEPSEEK3, NULL, NULL, NULL, 0, 1, buf, sizeof buf), strlen("<｜Assistant｜>"));
    assert_string_equal(buf, "<｜Assistant｜>");
    render(DS_CHAT_DEEPSEEK2, NULL, NULL, chat + 2, 1, 0, buf, sizeof buf);
    assert_string_equal(buf, "Assistant: <think>greet</think>Hello!");
}

/* The thinking switch, and NULL params as the defaults. */
static void test_render_thinking(void **state) {
    (void)state;
    char buf[512];
    ds_chat_params p = ds_chat_default_params();
    static const char history[] = BOS "Be brief.<｜User｜>Hi<｜Assistant｜></think>Hello!" EOS "<｜User｜>Bye";
    render_ex(DS_CHAT_DEEPSEEK3_1, BOS, EOS, chat, N_CHAT, NULL, buf, sizeof buf);
    assert_string_equal(buf, BOS "Be brief.<｜User｜>Hi<｜Assistant｜></think>Hello!" EOS
                                 "<｜User｜>Bye<｜Assistant｜></think>");
    p.thinking = 1;
    render_ex(DS_CHAT_DEEPSEEK3_1, BOS, EOS, chat, N_CHAT, &p, buf, sizeof buf);
    assert_string_equal(buf, BOS "Be brief.<｜User｜>Hi<｜Assistant｜></think>Hello!" EOS
                                 "<｜User｜>Bye<｜Assistant｜><think>");
    p.add_generation_prompt = 0;
    render_ex(DS_CHAT_DEEPSEEK3_1, BOS, EOS, chat, N_CHAT, &p, buf, sizeof buf);
    assert_string_equal(buf, history);
    /* V3.2's encoder always opens the answer after the last user turn */
    render_ex(DS_CHAT_DEEPSEEK3_2, BOS, EOS, chat, N_CHAT, &p, buf, sizeof buf);
    assert_string_equal(buf, BOS "Be brief.<｜User｜>Hi<｜Assistant｜></think>Hello!" EOS
                                 "<｜User｜>Bye<｜Assistant｜><think>");
    /* V4: </think> or <think> after <｜Assistant｜> in the prompt; in thinking mode an answer
       keeps its reasoning only after the last user turn (no tools, no tool messages) */
    p = ds_chat_default_params();
    render_ex(DS_CHAT_DEEPSEEK4, BOS, EOS, chat, N_CHAT, &p, buf, sizeof buf);
    assert_string_equal(buf, BOS "Be brief.<｜User｜>Hi<｜Assistant｜></think>Hello!" EOS
                                 "<｜User｜>Bye<｜Assistant｜></think>");
    p.thinking = 1;
    render_ex(DS_CHAT_DEEPSEEK4, BOS, EOS, chat, N_CHAT, &p, buf, sizeof buf);
    assert_string_equal(buf, BOS "Be brief.<｜User｜>Hi<｜Assistant｜></think>Hello!" EOS
                                 "<｜User｜>Bye<｜Assistant｜><think>");
    render_ex(DS_CHAT_DEEPSEEK4, BOS, EOS, chat, N_CHAT - 1, &p, buf, sizeof buf);
    assert_string_equal(buf, BOS "Be brief.<｜User｜>Hi<｜Assistant｜><think>greet</think>Hello!" EOS
                                 "<｜Assistant｜><think>");
    p.tools = "[{\"type\": \"function\", \"function\": {\"name\": \"f\"}}]"; /* tools keep all reasoning */
    p.add_generation_prompt = 0;
    char big[4096];
    render_ex(DS_CHAT_DEEPSEEK4, BOS, EOS, chat + 1, N_CHAT - 1, &p, big, sizeof big);
    assert_non_null(strstr(big, BOS "## Tools\n\n"));
    assert_non_null(strstr(big, "{\"name\": \"f\"}\n\nYou MUST"));
    assert_non_null(strstr(big, "<｜User｜>Hi<｜Assistant｜><think>greet</think>Hello!" EOS "<｜User｜>Bye"));
    p = ds_chat_default_params();
    p.add_generation_prompt = 0;
    /* the other styles ignore the switch */
    for (int s = DS_CHAT_DEEPSEEK3; s <= n_styles(); s++) {
        char a[1024], b[1024];
        if (ds_chat_has_thinking_switch((ds_chat_style)s)) continue;
        p.add_generation_prompt = 1;
        render_ex((ds_chat_style)s, BOS, EOS, chat, N_CHAT, &p, a, sizeof a);
        render((ds_chat_style)s, BOS, EOS, chat, N_CHAT, 1, b, sizeof b);
        assert_string_equal(a, b);
    }
    /* Qwen3: unset (its template's default) renders as on; off closes an empty <think> block */
#define QWEN_HISTORY                                                                                              \
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!"       \
    "<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
    char on[512];
    p = ds_chat_default_params();
    render_ex(DS_CHAT_QWEN3, NULL, NULL, chat, N_CHAT, &p, buf, sizeof buf);
    assert_string_equal(buf, QWEN_HISTORY "<|im_start|>assistant\n");
    p.thinking = 1;
    render_ex(DS_CHAT_QWEN3, NULL, NULL, chat, N_CHAT, &p, on, sizeof on);
    assert_string_equal(buf, on);
    p.thinking = 0;
    render_ex(DS_CHAT_QWEN3, NULL, NULL, chat, N_CHAT, &p, buf, sizeof buf);
    assert_string_equal(buf, QWEN_HISTORY "<|im_start|>assistant\n<think>\n\n</think>\n\n");
    p.add_generation_prompt = 0;
    render_ex(DS_CHAT_QWEN3, NULL, NULL, chat, N_CHAT, &p, buf, sizeof buf);
    assert_string_equal(buf, QWEN_HISTORY);
#undef QWEN_HISTORY
}

/* V3.2's tool arguments as Python's json module reads and writes them, and its refusals. */
static void test_v32_json(void **state) {
    (void)state;
    static const struct {
        const char *args, *params; /* params NULL: refused */
    } cases[] = {
        {"{}", ""},
        {" {\"a\" : \"x\\u0000y\"} ", NULL}, /* a NUL cannot be a DSML string */
        {"{\"a\": [\"x\\u0000y\", 1e-5, 12.5e-3, 4.35, 0.3, 2e15, 2.5e16]}",
         "<｜DSML｜parameter name=\"a\" string=\"false\">[\"x\\u0000y\", 1e-05, 0.0125, 4.35, 0.3, "
         "2000000000000000.0, 2.5e+16]</｜DSML｜parameter>"},
        {"{\"a\": \"\\ud800\"}", NULL}, /* a lone surrogate */
        {"{\"a\": \"\\ud83d\\ude00\"}", "<｜DSML｜parameter name=\"a\" string=\"true\">😀</｜DSML｜parameter>"},
        {"{\"a\": 01}", NULL},
        {"{\"a\": 1.}", NULL},
        {"{\"a\": .5}", NULL},
        {"{\"a\": 1e}", NULL},
        {"{\"a\": -}", NULL},
        {"{\"a\": \"tab\there\"}", NULL}, /* a raw control character in a string */
        {"{\"a\": \"\\x\"}", NULL},
        {"{\"a\": \"\\u12G4\"}", NULL},
        {"{\"a\": 1,}", NULL},
        {"{\"a\" 1}", NULL},
        {"{1: 2}", NULL},
        {"[]", NULL},
        {"\"str\"", NULL},
        {"", NULL},
        {"{\"a\": tru}", NULL},
        {"{\"a\": -Infinity, \"b\": [NaN]}",
         "<｜DSML｜parameter name=\"a\" string=\"false\">-Infinity</｜DSML｜parameter>\n"
         "<｜DSML｜parameter name=\"b\" string=\"false\">[NaN]</｜DSML｜parameter>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ds_tool_call call = {"function", "f", cases[i].args};
        const ds_chat_message m[] = {{"user", "x", NULL, 0}, {"assistant", NULL, &call, 1}};
        char buf[1024], want[1024];
        long n = render_ex(DS_CHAT_DEEPSEEK3_2, BOS, EOS, m, 2, NULL, buf, sizeof buf);
        if (!cases[i].params) {
            if (n != -1) fprintf(stderr, "case %zu rendered: %s\n", i, buf);
            assert_int_equal(n, -1);
            continue;
        }
        snprintf(want, sizeof want,
                 BOS "<｜User｜>x<｜Assistant｜></think>\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"f\">\n%s\n"
                     "</｜DSML｜invoke>\n</｜DSML｜function_calls>" EOS,
                 cases[i].params);
        assert_string_equal(buf, want);
    }
    /* deep nesting is refused, not a stack overflow */
    char deep[2100] = "{\"a\": ";
    size_t k = strlen(deep);
    for (int d = 0; d < 1000; d++) deep[k++] = '[';
    for (int d = 0; d < 1000; d++) deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = 0;
    ds_tool_call call = {"function", "f", deep};
    const ds_chat_message m[] = {{"user", "x", NULL, 0}, {"assistant", NULL, &call, 1}};
    assert_int_equal(render_ex(DS_CHAT_DEEPSEEK3_2, BOS, EOS, m, 2, NULL, NULL, 0), -1);
}

/* Floats are written the same whatever decimal point the program's locale uses. */
static void test_v32_locale(void **state) {
    (void)state;
    if (!setlocale(LC_NUMERIC, "de_DE.UTF-8") && !setlocale(LC_NUMERIC, "fr_FR.UTF-8")) skip();
    ds_tool_call call = {"function", "f", "{\"x\": 2.5}"};
    const ds_chat_message m[] = {{"user", "x", NULL, 0}, {"assistant", NULL, &call, 1}};
    char buf[512];
    render_ex(DS_CHAT_DEEPSEEK3_2, BOS, EOS, m, 2, NULL, buf, sizeof buf);
    setlocale(LC_NUMERIC, "C");
    assert_non_null(strstr(buf, ">2.5</"));
}

/* cap == 0 (buf may be NULL) sizes; a short buffer gets a NUL-terminated prefix and nothing past
   cap is touched. */
static void test_truncation(void **state) {
    (void)state;
    for (int s = DS_CHAT_DEEPSEEK3; s <= n_styles(); s++) {
        char full[1024];
        long n = render((ds_chat_style)s, BOS, EOS, chat, N_CHAT, 1, NULL, 0);
        assert_true(n > 0 && n < (long)sizeof full);
        assert_int_equal(render((ds_chat_style)s, BOS, EOS, chat, N_CHAT, 1, full, 0), n);
        assert_int_equal(render((ds_chat_style)s, BOS, EOS, chat, N_CHAT, 1, full, sizeof full), n);
        for (size_t cap = 1; cap <= (size_t)n + 2; cap++) {
            char buf[1040];
            memset(buf, 'X', sizeof buf);
            assert_int_equal(render((ds_chat_style)s, BOS, EOS, chat, N_CHAT, 1, buf, cap), n);
            size_t k = cap - 1 < (size_t)n ? cap - 1 : (size_t)n;
            assert_memory_equal(buf, full, k);
            assert_int_equal(buf[k], '\0');
            for (size_t i = cap; i < sizeof buf; i++) assert_int_equal(buf[i], 'X');
        }
    }
}

/* ---- refusals, and what is not one ---- */

static void expect_refused(ds_chat_style s, const ds_chat_message *m, int n) {
    char buf[64] = "untouched";
    assert_int_equal(render(s, BOS, EOS, m, n, 1, buf, sizeof buf), -1);
    assert_string_equal(buf, "");
    assert_int_equal(render(s, BOS, EOS, m, n, 1, NULL, 0), -1);
}

static void test_refusals(void **state) {
    (void)state;
    const ds_tool_call call = {"function", "f", "{}"}, no_name = {"function", NULL, "{}"};
    const ds_tool_call no_type = {NULL, "f", "{}"}, no_args = {"function", "f", NULL};
    const ds_chat_message user_null[] = {{"user", NULL, NULL, 0}};
    const ds_chat_message system_null[] = {{"system", NULL, NULL, 0}, {"user", "x", NULL, 0}};
    const ds_chat_message tool_null[] = {{"user", "x", NULL, 0}, {"tool", NULL, NULL, 0}};
    const ds_chat_message answer_null[] = {{"user", "x", NULL, 0}, {"assistant", NULL, NULL, 0}};
    const ds_chat_message calls_no_array[] = {{"assistant", NULL, NULL, 1}};
    const ds_chat_message calls_negative[] = {{"assistant", NULL, &call, -1}};
    for (int s = DS_CHAT_UNKNOWN; s <= DS_CHAT_DEEPSEEK2; s++) {
        expect_refused((ds_chat_style)s, user_null, 1);
        expect_refused((ds_chat_style)s, system_null, 2);
        expect_refused((ds_chat_style)s, chat, -1);
        expect_refused((ds_chat_style)s, NULL, 1);
        expect_refused((ds_chat_style)s, calls_no_array, 1);
        expect_refused((ds_chat_style)s, calls_negative, 1);
    }
    expect_refused(DS_CHAT_UNKNOWN, chat, N_CHAT);
    expect_refused((ds_chat_style)99, chat, N_CHAT);
    /* tool outputs need text in V3 / R1; V2 has no tool role and skips them */
    expect_refused(DS_CHAT_DEEPSEEK3, tool_null, 2);
    expect_refused(DS_CHAT_DEEPSEEK_R1, tool_null, 2);
    assert_true(render(DS_CHAT_DEEPSEEK2, BOS, EOS, tool_null, 2, 1, NULL, 0) > 0);
    /* an answer of None: V3 loops over no tool calls; R1 tests '</think>' in None; V2 adds it */
    assert_true(render(DS_CHAT_DEEPSEEK3, BOS, EOS, answer_null, 2, 1, NULL, 0) > 0);
    expect_refused(DS_CHAT_DEEPSEEK_R1, answer_null, 2);
    expect_refused(DS_CHAT_DEEPSEEK2, answer_null, 2);
    /* every part of a written tool call is concatenated */
    const ds_tool_call *bad[] = {&no_name, &no_type, &no_args};
    for (int i = 0; i < 3; i++) {
        const ds_chat_message m[] = {{"user", "x", NULL, 0}, {"assistant", NULL, bad[i], 1}};
        expect_refused(DS_CHAT_DEEPSEEK3, m, 2);
        expect_refused(DS_CHAT_DEEPSEEK_R1, m, 2);
        expect_refused(DS_CHAT_DEEPSEEK2, m, 2);                           /* 'Assistant: ' + None */
        if (bad[i] != &no_type) expect_refused(DS_CHAT_DEEPSEEK3_1, m, 2); /* V3.1 and V3.2 write no type */
        if (bad[i] != &no_type) expect_refused(DS_CHAT_DEEPSEEK3_2, m, 2);
    }
    for (int s = DS_CHAT_DEEPSEEK3_1; s <= DS_CHAT_DEEPSEEK3_2; s++) {
        expect_refused((ds_chat_style)s, user_null, 1);
        expect_refused((ds_chat_style)s, chat, -1);
        expect_refused((ds_chat_style)s, NULL, 1);
        expect_refused((ds_chat_style)s, calls_no_array, 1);
        expect_refused((ds_chat_style)s, calls_negative, 1);
        expect_refused((ds_chat_style)s, tool_null, 2);
    }
    expect_refused(DS_CHAT_DEEPSEEK3_1, system_null, 2); /* V3.2 writes `content or ""` */
    assert_true(render(DS_CHAT_DEEPSEEK3_2, BOS, EOS, system_null, 2, 1, NULL, 0) > 0);
    /* the distills, Coder, Qwen3 and ChatML: Jinja prints None where {{ }} writes a value alone */
    for (int s = DS_CHAT_DEEPSEEK_R1_DISTILL; s <= DS_CHAT_CHATML; s++) {
        expect_refused((ds_chat_style)s, user_null, 1);
        expect_refused((ds_chat_style)s, chat, -1);
        expect_refused((ds_chat_style)s, NULL, 1);
        expect_refused((ds_chat_style)s, calls_no_array, 1);
        expect_refused((ds_chat_style)s, calls_negative, 1);
    }
    char buf[512];
    render(DS_CHAT_DEEPSEEK_R1_DISTILL, BOS, EOS, system_null, 2, 0, buf, sizeof buf);
    assert_string_equal(buf, BOS "None<｜User｜>x");
    render(DS_CHAT_DEEPSEEK_CODER, BOS, EOS, system_null, 2, 0, buf, sizeof buf);
    assert_string_equal(buf, BOS "None### Instruction:\nx\n");
    expect_refused(DS_CHAT_QWEN3, system_null, 2);
    expect_refused(DS_CHAT_CHATML, system_null, 2);
    render(DS_CHAT_QWEN3, BOS, EOS, tool_null, 2, 0, buf, sizeof buf);
    assert_string_equal(buf, "<|im_start|>user\nx<|im_end|>\n<|im_start|>user\n<tool_response>\nNone\n</tool_response>"
                             "<|im_end|>\n");
    expect_refused(DS_CHAT_DEEPSEEK_R1_DISTILL, tool_null, 2);
    expect_refused(DS_CHAT_DEEPSEEK_CODER, tool_null, 2); /* a response, None + str */
    expect_refused(DS_CHAT_CHATML, tool_null, 2);
    assert_true(render(DS_CHAT_DEEPSEEK_R1_DISTILL, BOS, EOS, answer_null, 2, 1, NULL, 0) > 0); /* V3's loop */
    for (int s = DS_CHAT_DEEPSEEK_CODER; s <= DS_CHAT_CHATML; s++) expect_refused((ds_chat_style)s, answer_null, 2);
    const ds_chat_message no_role[] = {{NULL, "x", NULL, 0}};
    expect_refused(DS_CHAT_CHATML, no_role, 1);
    expect_refused(DS_CHAT_QWEN3, NULL, 0); /* messages[0] of none */
    /* V3.2's tools: a JSON array of objects with a "function" */
    static const char *bad_tools[] = {"{}", "[1]", "[{\"type\": \"function\"}]", "[{\"function\": {}},]", "x"};
    for (size_t i = 0; i < sizeof bad_tools / sizeof *bad_tools; i++) {
        ds_chat_params p = ds_chat_default_params();
        p.tools = bad_tools[i];
        assert_int_equal(render_ex(DS_CHAT_DEEPSEEK3_2, BOS, EOS, chat, N_CHAT, &p, NULL, 0), -1);
    }
    /* V4 writes `content or ''` everywhere and no call type; a call needs a name and object
       arguments; its tools are an array (entries other than function tools skipped, a function
       tool needs its "function") */
    expect_refused(DS_CHAT_DEEPSEEK4, chat, -1);
    expect_refused(DS_CHAT_DEEPSEEK4, NULL, 1);
    expect_refused(DS_CHAT_DEEPSEEK4, calls_no_array, 1);
    expect_refused(DS_CHAT_DEEPSEEK4, calls_negative, 1);
    render(DS_CHAT_DEEPSEEK4, BOS, EOS, user_null, 1, 1, buf, sizeof buf);
    assert_string_equal(buf, BOS "<｜User｜><｜Assistant｜></think>");
    render(DS_CHAT_DEEPSEEK4, BOS, EOS, system_null, 2, 0, buf, sizeof buf);
    assert_string_equal(buf, BOS "<｜User｜>x");
    render(DS_CHAT_DEEPSEEK4, BOS, EOS, tool_null, 2, 0, buf, sizeof buf);
    assert_string_equal(buf, BOS "<｜User｜>x\n\n<tool_result></tool_result>");
    render(DS_CHAT_DEEPSEEK4, BOS, EOS, answer_null, 2, 0, buf, sizeof buf);
    assert_string_equal(buf, BOS "<｜User｜>x<｜Assistant｜></think>" EOS);
    for (int i = 0; i < 3; i++) {
        const ds_chat_message m[] = {{"user", "x", NULL, 0}, {"assistant", NULL, bad[i], 1}};
        if (bad[i] == &no_type) assert_true(render(DS_CHAT_DEEPSEEK4, BOS, EOS, m, 2, 1, NULL, 0) > 0);
        else expect_refused(DS_CHAT_DEEPSEEK4, m, 2);
    }
    static const char *bad_v4_args[] = {"[]", "\"s\"", "null", "3", "{", "{\"a\": 1} x", "{\"a\": \"\\ud800\"}"};
    for (size_t i = 0; i < sizeof bad_v4_args / sizeof *bad_v4_args; i++) {
        const ds_tool_call c = {"function", "f", bad_v4_args[i]};
        const ds_chat_message m[] = {{"user", "x", NULL, 0}, {"assistant", NULL, &c, 1}};
        expect_refused(DS_CHAT_DEEPSEEK4, m, 2);
    }
    static const char *bad_v4_tools[] = {"{}", "x", "[1,]", "[{\"type\": \"function\"}]",
                                         "[{\"type\": \"function\", \"function\": {\"d\": \"\\udc00\"}}]"};
    for (size_t i = 0; i < sizeof bad_v4_tools / sizeof *bad_v4_tools; i++) {
        ds_chat_params p = ds_chat_default_params();
        p.tools = bad_v4_tools[i];
        assert_int_equal(render_ex(DS_CHAT_DEEPSEEK4, BOS, EOS, chat, N_CHAT, &p, NULL, 0), -1);
    }
    ds_chat_params p = ds_chat_default_params();
    p.tools = "[1, \"function\", {\"type\": \"other\"}, {\"function\": {}}]"; /* skipped: no schema */
    assert_true(render_ex(DS_CHAT_DEEPSEEK4, BOS, EOS, chat, N_CHAT, &p, NULL, 0) > 0);
}

/* Roles a template does not test for are skipped, a NULL role too. */
static void test_unknown_roles(void **state) {
    (void)state;
    const ds_chat_message with[] = {
        {"developer", "a", NULL, 0}, {"user", "Hi", NULL, 0},       {NULL, "b", NULL, 0},
        {"User", "c", NULL, 0},      {"assistant", "Yes", NULL, 0},
    };
    const ds_chat_message without[] = {{"user", "Hi", NULL, 0}, {"assistant", "Yes", NULL, 0}};
    /* V3.2's encoder refuses them; Coder writes them as responses, ChatML as turns */
    static const ds_chat_style skipping[] = {DS_CHAT_DEEPSEEK3,   DS_CHAT_DEEPSEEK_R1,         DS_CHAT_DEEPSEEK2,
                                             DS_CHAT_DEEPSEEK3_1, DS_CHAT_DEEPSEEK_R1_DISTILL, DS_CHAT_QWEN3};
    for (size_t i = 0; i < sizeof skipping / sizeof *skipping; i++) {
        char a[256], b[256];
        long na = render(skipping[i], BOS, EOS, with, 5, 1, a, sizeof a);
        long nb = render(skipping[i], BOS, EOS, without, 2, 1, b, sizeof b);
        assert_true(na > 0);
        assert_int_equal(na, nb);
        assert_string_equal(a, b);
    }
}

/* ---- main ---- */

int main(int argc, char **argv) {
    if (argc < 4 || (argc - 1) % 3) {
        fprintf(stderr, "usage: %s STYLE TEMPLATE ROWS [STYLE TEMPLATE ROWS ...]\n", argv[0]);
        return 2;
    }
    n_sets = (argc - 1) / 3;
    sets = calloc((size_t)n_sets, sizeof *sets);
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_detect_unknown), cmocka_unit_test(test_detect_variants),
        cmocka_unit_test(test_detect_hybrid),  cmocka_unit_test(test_names),
        cmocka_unit_test(test_render_basics),  cmocka_unit_test(test_render_thinking),
        cmocka_unit_test(test_v32_json),       cmocka_unit_test(test_v32_locale),
        cmocka_unit_test(test_truncation),     cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_unknown_roles),
    };
    size_t n_fixed = sizeof fixed / sizeof fixed[0], n_tests = n_fixed + (size_t)n_sets;
    struct CMUnitTest *tests = calloc(n_tests, sizeof *tests);
    if (!sets || !tests) return 2;
    for (int i = 0; i < n_sets; i++) {
        golden_set *g = &sets[i];
        *g = (golden_set){argv[1 + 3 * i], argv[2 + 3 * i], argv[3 + 3 * i], NULL};
        g->template = load_template(g->template_path);
        if (!g->template) fprintf(stderr, "%s: no chat template\n", g->template_path);
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(test_golden, g);
        tests[i].name = g->rows_path;
    }
    memcpy(tests + n_sets, fixed, sizeof fixed);
    int rc = _cmocka_run_group_tests("chat", tests, n_tests, NULL, NULL);
    for (int i = 0; i < n_sets; i++) free(sets[i].template);
    free(sets);
    free(tests);
    return rc;
}
