/* chat.c - DeepSeek's chat formats (deepseek.h: CHAT), part of libdeepseek beside the core.

   Kept out of deepseek.c, which holds the forward pass and what it needs: a conversation is
   turned into text here through the public API only (the model's template text, its BOS / EOS
   token strings), and that text is tokenized as any other. util.h has what it shares with
   deepseek.c: the error convention (fail) and put_utf8. */
#include "deepseek.h"
#include "util.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Chat templates without a Jinja interpreter: a GGUF's tokenizer.chat_template is
   recognised as one of DeepSeek's templates, whose output is then reproduced byte for byte,
   quirks included (tests/data/chat-templates/README.md has the templates and golden renderings).

   "Reproduced" means: what Hugging Face transformers' apply_chat_template gives for the same
   messages. A message maps to the Jinja dict as: content NULL is None, n_tool_calls > 0 is a
   'tool_calls' key (absent otherwise), a tool call is {type, function: {name, arguments}}. Where
   the template would raise (None + str, for instance) the render fails with -1; roles a template
   does not test for are skipped, as the template skips them. NULL bos/eos are empty strings (an
   absent token renders as nothing). -1 also answers an unknown style and malformed arguments
   (n_msgs < 0, msgs NULL with n_msgs > 0, n_tool_calls < 0 or > 0 with tool_calls NULL).

   V3.2 has no template: what is reproduced is DeepSeek's encoder, encode_messages() of
   encoding_dsv32.py, with the mapping described at chat_render_v32. V4 has none either (DeepSeek
   ships encoding_dsv4.py): what is reproduced is the template llama.cpp's converter writes into
   V4 GGUFs, with V3.2's mapping of an answer's reasoning (chat_render_v4). */
/* The markers, in UTF-8: ｜ is U+FF5C and ▁ is U+2581, not ASCII. */
#define CHAT_USER "<｜User｜>"
#define CHAT_ASSISTANT "<｜Assistant｜>"
#define CHAT_EOS "<｜end▁of▁sentence｜>"
#define CHAT_CALLS_BEGIN "<｜tool▁calls▁begin｜>"
#define CHAT_CALLS_END "<｜tool▁calls▁end｜>"
#define CHAT_CALL_BEGIN "<｜tool▁call▁begin｜>"
#define CHAT_CALL_END "<｜tool▁call▁end｜>"
#define CHAT_OUTPUTS_BEGIN "<｜tool▁outputs▁begin｜>"
#define CHAT_OUTPUTS_END "<｜tool▁outputs▁end｜>"
#define CHAT_OUTPUT_BEGIN "<｜tool▁output▁begin｜>"
#define CHAT_OUTPUT_END "<｜tool▁output▁end｜>"
#define CHAT_SEP "<｜tool▁sep｜>"
#define CHAT_THINK "<think>"
#define CHAT_THINK_END "</think>"
#define CHAT_DSML "｜DSML｜"

/* ---- detection ---- */

static int chat_has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

/* "<｜Assistant｜><think>" then a newline, written in the template either as a Jinja escape
   (R1's JSON has '\\n') or as the character itself (a JSON '\n'). */
static int chat_has_think_prompt(const char *t) {
    static const char open[] = CHAT_ASSISTANT "<think>";
    for (const char *p = strstr(t, open); p; p = strstr(p + 1, open)) {
        const char *q = p + sizeof open - 1;
        if (*q == '\n' || (q[0] == '\\' && q[1] == 'n')) return 1;
    }
    return 0;
}

/* Distinctive substrings, as llama.cpp's llm_chat_detect_template does:
   - V2: "'Assistant: ' + message['content'] + eos_token" (DeepSeek LLM chat, V2 / V2-Lite chat,
     Coder-V2 / V2-Lite instruct: one template).
   - DeepSeek Coder instruct: "### Instruction:" and "<|EOT|>" (llama.cpp's test).
   - <|im_start|> templates: Qwen3's hybrid one, which alone finds the last query
     (ns.last_query_index) and reads enable_thinking; and plain ChatML, a template that names
     neither system prompts, tools nor thinking (llama.cpp's own, for one). Other ChatML-based
     templates (Qwen2.5's default system prompt, tools) would render differently: unknown.
   - The <｜User｜>/<｜Assistant｜> family splits into:
     * V3.2-style templates, which spell out DSML tool calls (｜DSML｜ and function_calls):
       rendered as DeepSeek's V3.2 encoder, which is what such a template (llama.cpp's, for one)
       stands for but not its exact text.
     * V4's, DSML with the block named tool_calls ("tool_calls>", which V3.2's never writes):
       llama.cpp's V4 and V4-Flash-0731 templates, what llama.cpp's converter puts in a V4 GGUF
       (DeepSeek ships an encoder, no template), rendered as that text.
     * V3.1-style hybrid templates, which open answers with "<｜Assistant｜></think>" (DeepSeek's
       V3.1 and V3.1-Terminus, unsloth's edits of it, V3.2-Exp's) or "<｜Assistant｜><think></think>"
       (llama.cpp's edit) and switch on a `thinking` variable: rendered as DeepSeek's V3.1 text.
     * The R1 distills' template, the one that keeps only the last system message
       ("ns.system_prompt = message['content']", where V3 and R1 join them all): V3's tool calls,
       R1's reasoning drop and <think>\n. Its first revision (neither) is rendered as the latest.
     * R1, which differs from V3 in that earlier answers lose their reasoning
       (content.split('</think>')[-1]) and, since the 2025-02 revision, the generation prompt
       opens a think block ('<｜Assistant｜><think>\n'); either mark means R1. Its tool calls also
       differ (see chat_r1_assistant). R1's earlier revision (no <think>\n) is rendered as that
       latest R1 template, which is what DeepSeek recommends for the model but not its exact text.
     * V3: the rest of the family, which must also name <｜end▁of▁sentence｜>. */
static ds_chat_style chat_detect_im(const char *t) {
    if (chat_has(t, "last_query_index") && chat_has(t, "enable_thinking")) return DS_CHAT_QWEN3;
    if (chat_has(t, "<|im_end|>") && !chat_has(t, "system") && !chat_has(t, "tool") && !chat_has(t, "think"))
        return DS_CHAT_CHATML;
    return DS_CHAT_UNKNOWN;
}

static ds_chat_style chat_detect_deepseek(const char *t) {
    if (chat_has(t, CHAT_DSML))
        return chat_has(t, "function_calls") ? DS_CHAT_DEEPSEEK3_2
               : chat_has(t, "tool_calls>")  ? DS_CHAT_DEEPSEEK4
                                             : DS_CHAT_UNKNOWN;
    if (chat_has(t, CHAT_ASSISTANT CHAT_THINK_END) || chat_has(t, CHAT_ASSISTANT CHAT_THINK CHAT_THINK_END))
        return DS_CHAT_DEEPSEEK3_1;
    if (chat_has(t, "ns.system_prompt = message['content']")) return DS_CHAT_DEEPSEEK_R1_DISTILL;
    if (chat_has(t, "split('</think>')[-1]") || chat_has_think_prompt(t)) return DS_CHAT_DEEPSEEK_R1;
    if (chat_has(t, CHAT_EOS)) return DS_CHAT_DEEPSEEK3;
    return DS_CHAT_UNKNOWN;
}

ds_chat_style ds_chat_detect(const char *t) {
    if (!t) return DS_CHAT_UNKNOWN;
    if (chat_has(t, "'Assistant: ' + message['content'] + eos_token")) return DS_CHAT_DEEPSEEK2;
    if (chat_has(t, "### Instruction:") && chat_has(t, "<|EOT|>")) return DS_CHAT_DEEPSEEK_CODER;
    if (chat_has(t, "<|im_start|>")) return chat_detect_im(t);
    if (chat_has(t, CHAT_USER) && chat_has(t, CHAT_ASSISTANT)) return chat_detect_deepseek(t);
    return DS_CHAT_UNKNOWN;
}

/* In ds_chat_style order: the enum indexes it. */
static const char *const chat_names[] = {"unknown",     "deepseek3",   "deepseek-r1",         "deepseek2",
                                         "deepseek3.1", "deepseek3.2", "deepseek-r1-distill", "deepseek-coder",
                                         "qwen3",       "chatml",      "deepseek4",           NULL};
enum { CHAT_N_STYLES = (int)(sizeof chat_names / sizeof *chat_names) - 1 };
_Static_assert(CHAT_N_STYLES == DS_CHAT_DEEPSEEK4 + 1, "chat_names lists every ds_chat_style");

const char *ds_chat_style_name(ds_chat_style s) { return (unsigned)s < CHAT_N_STYLES ? chat_names[s] : "unknown"; }

const char *const *ds_chat_template_names(void) { return chat_names + 1; }

ds_chat_style ds_chat_style_from_name(const char *name) {
    for (int s = 1; name && s < CHAT_N_STYLES; s++)
        if (!strcmp(chat_names[s], name)) return (ds_chat_style)s;
    return DS_CHAT_UNKNOWN;
}

int ds_chat_opens_think(ds_chat_style s) { return s == DS_CHAT_DEEPSEEK_R1 || s == DS_CHAT_DEEPSEEK_R1_DISTILL; }

int ds_chat_has_thinking_switch(ds_chat_style s) {
    return s == DS_CHAT_DEEPSEEK3_1 || s == DS_CHAT_DEEPSEEK3_2 || s == DS_CHAT_QWEN3 || s == DS_CHAT_DEEPSEEK4;
}

ds_chat_params ds_chat_default_params(void) { return (ds_chat_params){1, -1, NULL, DS_CHAT_UNKNOWN}; }

/* ---- output ---- */

/* Writes what fits into the caller's buffer (always NUL-terminated when cap > 0) and counts the
   full length, so one pass both renders and sizes. A NULL piece is the template's error of
   concatenating None: it marks the whole render failed; chat_fail gives other reasons. */
typedef struct {
    char *buf;
    size_t cap;
    size_t len;
    int failed, nomem;
    const char *why; /* the first failure's reason; NULL: a missing text */
} chat_buf;

static void chat_fail(chat_buf *o, const char *why) {
    if (!o->failed) o->why = why;
    o->failed = 1;
}

static void chat_put_n(chat_buf *o, const char *s, size_t n) {
    if (o->len < o->cap) {
        size_t room = o->cap - 1 - o->len, k = n < room ? n : room;
        memcpy(o->buf + o->len, s, k);
        o->buf[o->len + k] = '\0';
    }
    o->len = n > SIZE_MAX - o->len ? SIZE_MAX : o->len + n;
}

static void chat_put(chat_buf *o, const char *s) {
    if (s) chat_put_n(o, s, strlen(s));
    else chat_fail(o, NULL);
}

/* A value written by {{ }}: Jinja prints None as "None" where concatenation would fail. */
static void chat_put_py(chat_buf *o, const char *s) { chat_put(o, s ? s : "None"); }

static int chat_is_role(const ds_chat_message *m, const char *role) { return m->role && strcmp(m->role, role) == 0; }

/* All system messages, joined by a blank line, go first whatever their position. */
static void chat_put_system(chat_buf *o, const ds_chat_message *msgs, int n) {
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (!chat_is_role(&msgs[i], "system")) continue;
        if (!first) chat_put(o, "\n\n");
        chat_put(o, msgs[i].content);
        first = 0;
    }
}

/* The text after the first "</think>" (Jinja's content.split('</think>', 1)[1]), or s whole. */
static const char *chat_after_first_think(const char *s) {
    const char *p = strstr(s, CHAT_THINK_END);
    return p ? p + strlen(CHAT_THINK_END) : s;
}

/* ---- DeepSeek V3, R1 and the R1 distills ---- */

typedef enum { CHAT_V3, CHAT_R1, CHAT_DISTILL } chat_v3_kind;

typedef struct {
    int is_first;        /* a first tool call was written: never reset, as in the template */
    int is_tool;         /* inside tool outputs */
    int is_output_first; /* no tool output written yet: never reset either */
} chat_v3_state;

/* type<｜tool▁sep｜>name\n```json\nargs\n```<｜tool▁call▁end｜> */
static void chat_put_call(chat_buf *o, const ds_tool_call *c) {
    chat_put(o, c->type);
    chat_put(o, CHAT_SEP);
    chat_put(o, c->name);
    chat_put(o, "\n```json\n");
    chat_put(o, c->arguments);
    chat_put(o, "\n```" CHAT_CALL_END);
}

/* The text after the last "</think>" (Jinja's content.split('</think>')[-1]). */
static const char *chat_after_reasoning(const char *s) {
    for (const char *p = strstr(s, "</think>"); p; p = strstr(s, "</think>")) s = p + 8;
    return s;
}

/* V3 takes the tool-call path on content None alone (text with calls loses the calls). Every
   call but the conversation's very first is followed by <｜tool▁calls▁end｜><｜end▁of▁sentence｜>,
   so a lone call gets neither; and as is_first is never reset, every later call-only turn
   starts with "\n<｜tool▁call▁begin｜>" and no <｜Assistant｜>. The distills' template is V3's
   but for dropping the reasoning of answers that do not follow tool outputs. */
static void chat_v3_assistant(chat_buf *o, chat_v3_state *st, const ds_chat_message *m, int drop_reasoning) {
    if (!m->content) {
        st->is_tool = 0;
        for (int i = 0; i < m->n_tool_calls; i++) {
            if (!st->is_first) {
                chat_put(o, CHAT_ASSISTANT CHAT_CALLS_BEGIN CHAT_CALL_BEGIN);
                chat_put_call(o, &m->tool_calls[i]);
                st->is_first = 1;
            } else {
                chat_put(o, "\n" CHAT_CALL_BEGIN);
                chat_put_call(o, &m->tool_calls[i]);
                chat_put(o, CHAT_CALLS_END CHAT_EOS);
            }
        }
        return;
    }
    /* after tool outputs the answer continues them: no <｜Assistant｜> */
    chat_put(o, st->is_tool ? CHAT_OUTPUTS_END : CHAT_ASSISTANT);
    chat_put(o, drop_reasoning && !st->is_tool ? chat_after_reasoning(m->content) : m->content);
    chat_put(o, CHAT_EOS);
    st->is_tool = 0;
}

/* R1 tests for a 'tool_calls' key; text before the calls is kept (reasoning included) only in
   the first call-writing turn, and each such turn ends with <｜tool▁calls▁end｜>. Plain answers
   lose their reasoning, except right after tool outputs. */
static void chat_r1_assistant(chat_buf *o, chat_v3_state *st, const ds_chat_message *m) {
    if (m->n_tool_calls > 0) {
        st->is_tool = 0;
        for (int i = 0; i < m->n_tool_calls; i++) {
            if (!st->is_first) {
                chat_put(o, CHAT_ASSISTANT);
                if (m->content) chat_put(o, m->content);
                chat_put(o, CHAT_CALLS_BEGIN CHAT_CALL_BEGIN);
                st->is_first = 1;
            } else {
                chat_put(o, "\n" CHAT_CALL_BEGIN);
            }
            chat_put_call(o, &m->tool_calls[i]);
        }
        chat_put(o, CHAT_CALLS_END CHAT_EOS);
        return;
    }
    if (st->is_tool) {
        chat_put(o, CHAT_OUTPUTS_END);
        chat_put(o, m->content);
    } else {
        chat_put(o, CHAT_ASSISTANT); /* a NULL content fails: '</think>' in None raises */
        chat_put(o, m->content ? chat_after_reasoning(m->content) : NULL);
    }
    chat_put(o, CHAT_EOS);
    st->is_tool = 0;
}

static void chat_v3_tool(chat_buf *o, chat_v3_state *st, const ds_chat_message *m, int r1) {
    st->is_tool = 1;
    if (st->is_output_first) chat_put(o, CHAT_OUTPUTS_BEGIN);
    else if (!r1) chat_put(o, "\n");
    st->is_output_first = 0;
    chat_put(o, CHAT_OUTPUT_BEGIN);
    chat_put(o, m->content);
    chat_put(o, CHAT_OUTPUT_END);
}

/* The distills keep the last system message alone, and print None as Jinja does. */
static void chat_put_last_system(chat_buf *o, const ds_chat_message *msgs, int n) {
    const ds_chat_message *last = NULL;
    for (int i = 0; i < n; i++)
        if (chat_is_role(&msgs[i], "system")) last = &msgs[i];
    if (last) chat_put_py(o, last->content);
}

static void chat_render_v3(chat_buf *o, const char *bos, const ds_chat_message *msgs, int n, int add_gen,
                           chat_v3_kind kind) {
    chat_v3_state st = {0, 0, 1};
    int r1 = kind == CHAT_R1;
    chat_put(o, bos);
    (kind == CHAT_DISTILL ? chat_put_last_system : chat_put_system)(o, msgs, n);
    for (int i = 0; i < n && !o->failed; i++) {
        const ds_chat_message *m = &msgs[i];
        if (chat_is_role(m, "user")) {
            st.is_tool = 0; /* without <｜tool▁outputs▁end｜>: the template's own omission */
            chat_put(o, CHAT_USER);
            chat_put(o, m->content);
        } else if (chat_is_role(m, "assistant")) {
            if (r1) chat_r1_assistant(o, &st, m);
            else chat_v3_assistant(o, &st, m, kind == CHAT_DISTILL);
        } else if (chat_is_role(m, "tool")) {
            chat_v3_tool(o, &st, m, r1);
        }
    }
    if (st.is_tool) chat_put(o, CHAT_OUTPUTS_END);
    else if (add_gen) chat_put(o, kind == CHAT_V3 ? CHAT_ASSISTANT : CHAT_ASSISTANT "<think>\n");
}

/* ---- DeepSeek V3.1 and V3.1-Terminus ---- */

typedef struct {
    int is_tool;      /* right after a tool output */
    int is_last_user; /* right after a user message: the next answer opens with <｜Assistant｜> */
} chat_v31_state;

/* The tool-call turn: text (kept whole) then name<｜tool▁sep｜>arguments per call, arguments as
   given. Only a turn right after the user gets <｜Assistant｜></think>: after a tool output or
   another answer the calls follow directly. */
static void chat_v31_calls(chat_buf *o, chat_v31_state *st, const ds_chat_message *m) {
    if (st->is_last_user) chat_put(o, CHAT_ASSISTANT CHAT_THINK_END);
    st->is_last_user = st->is_tool = 0;
    if (m->content) chat_put(o, m->content);
    chat_put(o, CHAT_CALLS_BEGIN);
    for (int i = 0; i < m->n_tool_calls; i++) {
        chat_put(o, CHAT_CALL_BEGIN);
        chat_put(o, m->tool_calls[i].name);
        chat_put(o, CHAT_SEP);
        chat_put(o, m->tool_calls[i].arguments);
        chat_put(o, CHAT_CALL_END);
    }
    chat_put(o, CHAT_CALLS_END CHAT_EOS);
}

/* An answer right after the user opens with <｜Assistant｜></think> whatever the thinking mode
   (the template's <think> there needs a 'prefix' key, which these messages cannot carry) and
   loses its reasoning; an answer after tool outputs is written whole, reasoning included. */
static void chat_v31_answer(chat_buf *o, chat_v31_state *st, const ds_chat_message *m) {
    if (st->is_last_user) chat_put(o, CHAT_ASSISTANT CHAT_THINK_END);
    st->is_last_user = 0;
    const char *text = m->content && !st->is_tool ? chat_after_first_think(m->content) : m->content;
    st->is_tool = 0;
    chat_put(o, text); /* None fails either way: None + str, or '</think>' in None */
    chat_put(o, CHAT_EOS);
}

/* Systems first as in V3; tool outputs are bare <｜tool▁output▁begin｜>...<｜tool▁output▁end｜>
   pairs; the generation prompt (<think> or </think> by thinking) only follows a user message. */
static void chat_render_v31(chat_buf *o, const char *bos, const ds_chat_message *msgs, int n, const ds_chat_params *p) {
    chat_v31_state st = {0, 0};
    chat_put(o, bos);
    chat_put_system(o, msgs, n);
    for (int i = 0; i < n && !o->failed; i++) {
        const ds_chat_message *m = &msgs[i];
        if (chat_is_role(m, "user")) {
            st.is_tool = 0;
            st.is_last_user = 1;
            chat_put(o, CHAT_USER);
            chat_put(o, m->content);
        } else if (chat_is_role(m, "assistant")) {
            (m->n_tool_calls > 0 ? chat_v31_calls : chat_v31_answer)(o, &st, m);
        } else if (chat_is_role(m, "tool")) {
            st.is_last_user = 0;
            st.is_tool = 1;
            chat_put(o, CHAT_OUTPUT_BEGIN);
            chat_put(o, m->content);
            chat_put(o, CHAT_OUTPUT_END);
        }
    }
    if (p->add_generation_prompt && st.is_last_user && !st.is_tool)
        chat_put(o, p->thinking > 0 ? CHAT_ASSISTANT CHAT_THINK : CHAT_ASSISTANT CHAT_THINK_END);
}

/* ---- JSON as Python's json module reads and writes it (V3.2) ----
   V3.2's encoder parses tool arguments with json.loads and writes values back with
   json.dumps(ensure_ascii=False): ", " and ": " between items, keys in their order (a repeated
   key keeps its first place and its last value), integers digit for digit, floats as repr()
   writes them, NaN and Infinity accepted. The text is parsed once into a flat node list, then
   written from it. */

enum { JS_MAX_DEPTH = 500 }; /* nesting refused beyond this (Python stops near its recursion limit, 1000) */

typedef enum { JS_NULL, JS_FALSE, JS_TRUE, JS_NUMBER, JS_STRING, JS_ARRAY, JS_OBJECT } js_kind;

typedef struct {
    js_kind kind;
    const char *s; /* a number's text; a string's text between its quotes, escapes as written */
    size_t n;
    int first, next; /* first child and next sibling, -1 for none; an object's children are its
                        keys, each followed by its value */
} js_node;

typedef struct {
    js_node *v;
    int n, cap;
    const char *p, *end;
    int nomem;
} js_doc;

static int js_add(js_doc *d, js_kind kind, const char *s, size_t n) {
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 32;
        js_node *v = cap > d->cap ? realloc(d->v, (size_t)cap * sizeof *v) : NULL;
        if (!v) {
            d->nomem = 1;
            return -1;
        }
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n] = (js_node){kind, s, n, -1, -1};
    return d->n++;
}

static void js_ws(js_doc *d) {
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r')) d->p++;
}

static int js_word(js_doc *d, const char *w) {
    size_t k = strlen(w);
    if ((size_t)(d->end - d->p) < k || memcmp(d->p, w, k) != 0) return 0;
    d->p += k;
    return 1;
}

static int js_digit(const js_doc *d, const char *p) { return p < d->end && *p >= '0' && *p <= '9'; }

static void js_digits(js_doc *d) {
    while (js_digit(d, d->p)) d->p++;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?, NaN, Infinity or -Infinity; a '.' or an 'e'
   without digits is left for the caller to trip over, as Python's regex leaves it. */
static int js_number(js_doc *d) {
    const char *s = d->p;
    if (js_word(d, "NaN") || js_word(d, "Infinity") || js_word(d, "-Infinity"))
        return js_add(d, JS_NUMBER, s, (size_t)(d->p - s));
    if (d->p < d->end && *d->p == '-') d->p++;
    if (!js_digit(d, d->p)) return -1;
    if (*d->p == '0') d->p++;
    else js_digits(d);
    if (d->p < d->end && *d->p == '.' && js_digit(d, d->p + 1)) {
        d->p++;
        js_digits(d);
    }
    if (d->p < d->end && (*d->p == 'e' || *d->p == 'E')) {
        const char *q = d->p + 1;
        if (q < d->end && (*q == '+' || *q == '-')) q++;
        if (js_digit(d, q)) {
            d->p = q;
            js_digits(d);
        }
    }
    return js_add(d, JS_NUMBER, s, (size_t)(d->p - s));
}

static int js_hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int h = c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
}

/* At the opening quote. Raw control characters are refused, as Python's strict mode does. */
static int js_string(js_doc *d) {
    const char *s = ++d->p;
    for (; d->p < d->end && *d->p != '"'; d->p++) {
        if ((unsigned char)*d->p < 0x20) return -1;
        if (*d->p != '\\') continue;
        if (++d->p == d->end) return -1;
        if (*d->p == 'u') {
            if (d->end - d->p < 5 || js_hex4(d->p + 1) < 0) return -1;
            d->p += 4;
        } else if (!strchr("\"\\/bfnrt", *d->p) || !*d->p) {
            return -1;
        }
    }
    if (d->p == d->end) return -1;
    int i = js_add(d, JS_STRING, s, (size_t)(d->p - s));
    d->p++;
    return i;
}

static int js_value(js_doc *d, int depth);

/* The items of an array or object (at its opening bracket), chained under node `parent`. */
static int js_items(js_doc *d, int parent, int depth) {
    int object = d->v[parent].kind == JS_OBJECT, last = -1;
    char close = object ? '}' : ']';
    d->p++;
    js_ws(d);
    if (d->p < d->end && *d->p == close) {
        d->p++;
        return parent;
    }
    for (;;) {
        int key = -1;
        if (object) {
            if (d->p == d->end || *d->p != '"' || (key = js_string(d)) < 0) return -1;
            js_ws(d);
            if (d->p == d->end || *d->p != ':') return -1;
            d->p++;
        }
        int value = js_value(d, depth + 1);
        if (value < 0) return -1;
        int head = key >= 0 ? key : value;
        if (key >= 0) d->v[key].next = value;
        if (last < 0) d->v[parent].first = head;
        else d->v[last].next = head;
        last = value;
        js_ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            js_ws(d);
            continue;
        }
        if (d->p < d->end && *d->p == close) {
            d->p++;
            return parent;
        }
        return -1;
    }
}

static int js_value(js_doc *d, int depth) {
    js_ws(d);
    if (d->p == d->end || depth > JS_MAX_DEPTH) return -1;
    const char *s = d->p;
    switch (*d->p) {
    case '{':
    case '[': {
        int i = js_add(d, *d->p == '{' ? JS_OBJECT : JS_ARRAY, s, 1);
        return i < 0 ? -1 : js_items(d, i, depth);
    }
    case '"': return js_string(d);
    case 't': return js_word(d, "true") ? js_add(d, JS_TRUE, s, 4) : -1;
    case 'f': return js_word(d, "false") ? js_add(d, JS_FALSE, s, 5) : -1;
    case 'n': return js_word(d, "null") ? js_add(d, JS_NULL, s, 4) : -1;
    default: return js_number(d);
    }
}

/* The root node of text, or -1 when it is not one JSON value (surrounding whitespace allowed). */
static int js_parse(js_doc *d, const char *text) {
    *d = (js_doc){NULL, 0, 0, text, text + strlen(text), 0};
    int root = js_value(d, 0);
    js_ws(d);
    return root >= 0 && d->p == d->end ? root : -1;
}

/* A string token's characters as UTF-8 into out (n bytes suffice: no escape is shorter than
   what it stands for). A lone surrogate has no UTF-8: strict, that is -1 (Python keeps it, and
   the prompt's encoding fails later); otherwise it is written as its 3 bytes, for comparing. */
static long js_decode(const char *s, size_t n, char *out, int strict) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            out[k++] = s[i++];
            continue;
        }
        char e = s[i + 1];
        i += 2;
        if (e != 'u') {
            static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
            const char *f = strchr(from, e);
            out[k++] = f ? to[f - from] : e;
            continue;
        }
        uint32_t c = (uint32_t)js_hex4(s + i);
        i += 4;
        if (c >= 0xD800 && c < 0xDC00 && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') {
            int lo = js_hex4(s + i + 2);
            if (lo >= 0xDC00 && lo < 0xE000) {
                c = 0x10000 + ((c - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                i += 6;
            }
        }
        if (strict && c >= 0xD800 && c < 0xE000) return -1;
        k += (size_t)put_utf8(c, out + k);
    }
    return (long)k;
}

/* The characters of string node i, malloc'd and NUL-terminated, *n long; NULL when out of
   memory (o->nomem) or, strict, for a lone surrogate (o failed). */
static char *js_text(chat_buf *o, const js_doc *d, int i, size_t *n, int strict) {
    const js_node *v = &d->v[i];
    char *t = malloc(v->n + 1);
    long k = t ? js_decode(v->s, v->n, t, strict) : -1;
    if (!t) o->nomem = 1;
    else if (k < 0) chat_fail(o, "a lone UTF-16 surrogate in a JSON string");
    if (k < 0) {
        free(t);
        return NULL;
    }
    t[k] = '\0';
    *n = (size_t)k;
    return t;
}

/* 1 when string node k holds exactly the n bytes s. */
static int js_equal(chat_buf *o, const js_doc *d, int k, const char *s, size_t n) {
    const js_node *v = &d->v[k];
    if (!memchr(v->s, '\\', v->n)) return v->n == n && !memcmp(v->s, s, n);
    size_t m;
    char *t = js_text(o, d, k, &m, 0);
    int same = t && m == n && !memcmp(t, s, n);
    free(t);
    return same;
}

static int js_same_string(chat_buf *o, const js_doc *d, int a, int b) {
    const js_node *y = &d->v[b];
    if (!memchr(y->s, '\\', y->n)) return js_equal(o, d, a, y->s, y->n);
    size_t n;
    char *t = js_text(o, d, b, &n, 0);
    int same = t && js_equal(o, d, a, t, n);
    free(t);
    return same;
}

/* A string's characters as they are, for DSML: a NUL would end the prompt, so it is refused. */
static void js_put_raw(chat_buf *o, const js_doc *d, int i) {
    size_t n;
    char *t = js_text(o, d, i, &n, 1);
    if (!t) return;
    if (strlen(t) != n) chat_fail(o, "a NUL character in a tool argument");
    else chat_put_n(o, t, n);
    free(t);
}

/* json.dumps of a str with ensure_ascii=False: only '"', '\\' and control characters escaped. */
static void js_put_string(chat_buf *o, const js_doc *d, int i) {
    size_t n;
    char *t = js_text(o, d, i, &n, 1);
    if (!t) return;
    chat_put(o, "\"");
    for (size_t a = 0, b = 0; a < n; a = ++b) {
        while (b < n && (unsigned char)t[b] >= 0x20 && t[b] != '"' && t[b] != '\\') b++;
        chat_put_n(o, t + a, b - a);
        if (b == n) break;
        static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
        const char *f = t[b] ? strchr(from, t[b]) : NULL;
        char esc[8];
        if (f) snprintf(esc, sizeof esc, "\\%c", to[f - from]);
        else snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)t[b]);
        chat_put(o, esc);
    }
    chat_put(o, "\"");
    free(t);
}

/* Python's dict of an object: key k is written where it first appears (0 for a later repeat),
   with the value of its last occurrence (*value). */
static int js_member(chat_buf *o, const js_doc *d, int object, int key, int *value) {
    for (int k = d->v[object].first; k != key; k = d->v[d->v[k].next].next)
        if (js_same_string(o, d, k, key)) return 0;
    *value = d->v[key].next;
    for (int k = d->v[*value].next; k >= 0; k = d->v[d->v[k].next].next)
        if (js_same_string(o, d, k, key)) *value = d->v[k].next;
    return 1;
}

/* The value of the object's key `name` (its last occurrence), or -1. */
static int js_get(chat_buf *o, const js_doc *d, int object, const char *name) {
    int found = -1;
    for (int k = d->v[object].first; k >= 0; k = d->v[d->v[k].next].next)
        if (js_equal(o, d, k, name, strlen(name))) found = d->v[k].next;
    return found;
}

/* strtod and snprintf("%e") in the C locale, whatever LC_NUMERIC the program chose. */
static pthread_once_t chat_locale_once = PTHREAD_ONCE_INIT;
static locale_t chat_locale;
static void chat_locale_init(void) { chat_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

static locale_t chat_c_numeric(void) {
    pthread_once(&chat_locale_once, chat_locale_init);
    return chat_locale ? uselocale(chat_locale) : (locale_t)0;
}

static void chat_restore_numeric(locale_t old) {
    if (old) uselocale(old);
}

/* The digits of %e text e (no point) into d, their count returned; *point where the point goes:
   the value is 0.d * 10^point. */
static int js_mantissa(const char *e, char *d, int *point) {
    int n = 0;
    for (; *e != 'e'; e++)
        if (*e >= '0' && *e <= '9') d[n++] = *e;
    *point = atoi(e + 1) + 1;
    return n;
}

/* 1 when the n digits d, one unit up in their last place, read back as x (then d holds them). */
static int js_up_reads_back(double x, char *d, int n, int *point) {
    char up[24], text[48];
    memcpy(up, d, (size_t)n);
    int i = n - 1, p = *point;
    for (; i >= 0 && up[i] == '9'; i--) up[i] = '0';
    if (i >= 0) up[i]++;
    else up[0] = '1', p++; /* 99..9 + 1: 100..0, one more integer digit */
    snprintf(text, sizeof text, "0.%.*se%d", n, up, p);
    if (strtod(text, NULL) != x) return 0;
    memcpy(d, up, (size_t)n);
    *point = p;
    return 1;
}

/* x > 0's digits as Python's repr (David Gay's shortest mode) has them: the fewest that read back
   as x. That is the shortest %e that does, except next to a power of two, where the gap below x
   is half the one above: the nearest p digits may miss while those one unit above read back. */
static int js_shortest(double x, char d[24], int *point) {
    char e[40];
    int n = 0;
    locale_t old = chat_c_numeric();
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, x);
        n = js_mantissa(e, d, point);
        if (strtod(e, NULL) == x || js_up_reads_back(x, d, n, point)) break;
    }
    chat_restore_numeric(old);
    return n;
}

/* repr(float): fixed-point for -4 < point <= 16 (".0" added when whole), else d.ddde+XX. */
static void js_put_float(chat_buf *o, double x) {
    if (isnan(x) || isinf(x) || x == 0) {
        chat_put(o, isnan(x) ? "NaN" : isinf(x) ? (x < 0 ? "-Infinity" : "Infinity") : signbit(x) ? "-0.0" : "0.0");
        return;
    }
    char d[24], out[64];
    int point, n = js_shortest(fabs(x), d, &point), k = 0;
    if (x < 0) out[k++] = '-';
    if (point <= -4 || point > 16) {
        out[k++] = d[0];
        if (n > 1) out[k++] = '.';
        memcpy(out + k, d + 1, (size_t)n - 1);
        k += n - 1;
        k += snprintf(out + k, sizeof out - (size_t)k, "e%c%02d", point > 0 ? '+' : '-', abs(point - 1));
    } else if (point <= 0) {
        k += snprintf(out + k, sizeof out - (size_t)k, "0.%.*s%.*s", -point, "0000", n, d);
    } else if (point < n) {
        k += snprintf(out + k, sizeof out - (size_t)k, "%.*s.%.*s", point, d, n - point, d + point);
    } else {
        k += snprintf(out + k, sizeof out - (size_t)k, "%.*s%.*s.0", n, d, point - n, "0000000000000000");
    }
    chat_put_n(o, out, (size_t)k);
}

/* Python reads an integer as an int (written back digit for digit, -0 as 0), the rest as float. */
static void js_put_number(chat_buf *o, const js_node *v) {
    if (v->s[0] == 'N' || v->s[0] == 'I' || (v->n > 1 && v->s[1] == 'I')) { /* NaN, Infinity, -Infinity */
        chat_put_n(o, v->s, v->n);
    } else if (memchr(v->s, '.', v->n) || memchr(v->s, 'e', v->n) || memchr(v->s, 'E', v->n)) {
        locale_t old = chat_c_numeric();
        double x = strtod(v->s, NULL); /* it stops where the token does: after it comes , ] } or space */
        chat_restore_numeric(old);
        js_put_float(o, x);
    } else if (v->n == 2 && !memcmp(v->s, "-0", 2)) {
        chat_put(o, "0");
    } else {
        chat_put_n(o, v->s, v->n);
    }
}

/* json.dumps(value, ensure_ascii=False) of node i. */
static void js_put(chat_buf *o, const js_doc *d, int i) {
    const js_node *v = &d->v[i];
    switch (v->kind) {
    case JS_NULL: chat_put(o, "null"); return;
    case JS_FALSE: chat_put(o, "false"); return;
    case JS_TRUE: chat_put(o, "true"); return;
    case JS_NUMBER: js_put_number(o, v); return;
    case JS_STRING: js_put_string(o, d, i); return;
    case JS_ARRAY:
        chat_put(o, "[");
        for (int c = v->first; c >= 0 && !o->failed; c = d->v[c].next) {
            if (c != v->first) chat_put(o, ", ");
            js_put(o, d, c);
        }
        chat_put(o, "]");
        return;
    case JS_OBJECT: {
        chat_put(o, "{");
        int value, first = 1;
        for (int k = v->first; k >= 0 && !o->failed; k = d->v[d->v[k].next].next) {
            if (!js_member(o, d, i, k, &value)) continue;
            if (!first) chat_put(o, ", ");
            first = 0;
            js_put_string(o, d, k);
            chat_put(o, ": ");
            js_put(o, d, value);
        }
        chat_put(o, "}");
        return;
    }
    }
}

/* ---- DeepSeek V3.2: DeepSeek's encoder (encoding_dsv32.py), DSML tool calls ---- */

#define CHAT_V32_FUNCTION_CALLS "<" CHAT_DSML "function_calls>"

/* TOOLS_SYSTEM_TEMPLATE, up to where the schemas go. */
static const char chat_v32_tools_head[] =
    "## Tools\n\nYou have access to a set of tools you can use to answer the user's question.\nYou can invoke "
    "functions by writing a \"" CHAT_V32_FUNCTION_CALLS "\" block like the following as part of your reply to the "
    "user:\n" CHAT_V32_FUNCTION_CALLS "\n<" CHAT_DSML "invoke name=\"$FUNCTION_NAME\">\n<" CHAT_DSML
    "parameter name=\"$PARAMETER_NAME\" string=\"true|false\">$PARAMETER_VALUE</" CHAT_DSML
    "parameter>\n...\n</" CHAT_DSML "invoke>\n<" CHAT_DSML "invoke name=\"$FUNCTION_NAME2\">\n...\n</" CHAT_DSML
    "invoke>\n</" CHAT_DSML "function_calls>\n\nString and scalar parameters should be specified as is without any "
    "escaping or quotes, while lists and objects should use JSON format. The \"string\" attribute should be set to "
    "\"true\" for string type parameters and \"false\" for other types (numbers, booleans, arrays, objects).\n\nIf "
    "the thinking_mode is enabled, then after function results you should strongly consider outputting a thinking "
    "block. Here is an example:\n\n" CHAT_V32_FUNCTION_CALLS "\n...\n</" CHAT_DSML
    "function_calls>\n\n<function_results>\n...\n</function_results>\n\n" CHAT_THINK
    "...thinking about results" CHAT_THINK_END "\n\nHere are the functions available in JSONSchema "
    "format:\n<functions>\n";

typedef struct {
    const ds_chat_message *m;
    int n, thinking;
    int last_user;  /* the last user or developer message, -1 for none */
    int tools_at;   /* the system message the tools follow; -1 for an empty one put first */
    js_doc tools;   /* params->tools, parsed */
    int tools_root; /* its array, -1 for no tools */
} chat_v32;

/* The encoder's input from a message: an assistant's "R</think>A" is reasoning_content R (a
   leading <think> dropped: the prompt wrote it) and content A. reasoning->s is NULL without
   </think>; NULL content is an empty answer (the encoder's `content or ""`). */
typedef struct {
    const char *s;
    size_t n;
} chat_span;

static void chat_v32_split(const char *content, chat_span *reasoning, chat_span *answer) {
    const char *end = content ? strstr(content, CHAT_THINK_END) : NULL;
    *reasoning = (chat_span){NULL, 0};
    *answer = (chat_span){content ? content : "", content ? strlen(content) : 0};
    if (!end) return;
    const char *r = strncmp(content, CHAT_THINK, strlen(CHAT_THINK)) ? content : content + strlen(CHAT_THINK);
    *reasoning = (chat_span){r, (size_t)(end - r)}; /* "</think>" cannot start inside "<think>" */
    *answer = (chat_span){end + strlen(CHAT_THINK_END), strlen(end + strlen(CHAT_THINK_END))};
}

/* The tools after a system message's content, one JSON schema (each tool's "function") a line. */
static void chat_v32_tools(chat_buf *o, const chat_v32 *c) {
    const js_doc *d = &c->tools;
    chat_put(o, "\n\n");
    chat_put(o, chat_v32_tools_head);
    for (int t = d->v[c->tools_root].first; t >= 0 && !o->failed; t = d->v[t].next) {
        if (t != d->v[c->tools_root].first) chat_put(o, "\n");
        js_put(o, d, js_get(o, d, t, "function"));
    }
    chat_put(o, "\n</functions>\n");
}

/* A system message stays where it is (`content or ""`), the first one followed by the tools. */
static void chat_v32_system(chat_buf *o, const chat_v32 *c, int i) {
    if (c->m[i].content) chat_put(o, c->m[i].content);
    if (i == c->tools_at && c->tools_root >= 0) chat_v32_tools(o, c);
}

/* Every user turn ends with <｜Assistant｜> and </think>, the last one in thinking mode with
   <think>: the encoder has no add_generation_prompt. A developer turn is a user turn with a
   preamble; in thinking mode one before the last user turn is dropped by drop_thinking_messages
   while the loop still counts it, and the encoder fails. */
static void chat_v32_user(chat_buf *o, const chat_v32 *c, int i) {
    const ds_chat_message *m = &c->m[i];
    int developer = chat_is_role(m, "developer");
    if (!m->content) {
        chat_fail(o, "a user or developer message without content (Python would write None)");
        return;
    }
    if (developer && !*m->content) {
        chat_fail(o, "a developer message needs content");
        return;
    }
    if (developer && c->thinking && i < c->last_user) {
        chat_fail(o, "in thinking mode the encoder fails on a developer message before the last user one");
        return;
    }
    chat_put(o, CHAT_USER);
    if (developer) chat_put(o, "\n\n# The user's message is: ");
    chat_put(o, m->content);
    chat_put(o, CHAT_ASSISTANT);
    chat_put(o, i == c->last_user && c->thinking ? CHAT_THINK : CHAT_THINK_END);
}

/* A tool result is the k-th of the assistant turn before the run of results it is in; the first
   opens <function_results>, the one answering the turn's last call closes it and, like a user
   turn, opens the next answer. A result that is the very first message is counted against the
   conversation's last message: the encoder reads messages[-1] there. */
static void chat_v32_tool(chat_buf *o, const chat_v32 *c, int i) {
    const ds_chat_message *a = NULL;
    int j = i - 1, order = 1;
    while (j >= 0 && chat_is_role(&c->m[j], "tool")) j--;
    int empty_system_first = c->tools_at < 0 && c->tools_root >= 0; /* then no result is message 0 */
    if (i == 0 && !empty_system_first) a = &c->m[c->n - 1];
    else if (j >= 0 && chat_is_role(&c->m[j], "assistant")) a = &c->m[j], order = i - j;
    if (!a) {
        chat_fail(o, "a tool result without an assistant turn before it");
        return;
    }
    if (a->n_tool_calls < order) {
        chat_fail(o, "more tool results than the assistant turn made tool calls");
        return;
    }
    if (!c->m[i].content) {
        chat_fail(o, "a tool result without content (Python would write None)");
        return;
    }
    if (order == 1) chat_put(o, "\n\n<function_results>");
    chat_put(o, "\n<result>");
    chat_put(o, c->m[i].content);
    chat_put(o, "</result>");
    if (order == a->n_tool_calls) {
        chat_put(o, "\n</function_results>\n\n");
        chat_put(o, i >= c->last_user && c->thinking ? CHAT_THINK : CHAT_THINK_END);
    }
}

/* <｜DSML｜invoke name="NAME">, one <｜DSML｜parameter> line per argument (strings as they are,
   string="true"; other values as JSON, string="false"), </｜DSML｜invoke>. */
static void chat_dsml_invoke(chat_buf *o, const ds_tool_call *call, const char *no_name) {
    js_doc d = {0};
    int root = call->arguments ? js_parse(&d, call->arguments) : -1;
    if (!call->name) chat_fail(o, no_name);
    else if (d.nomem) o->nomem = 1;
    else if (root < 0 || d.v[root].kind != JS_OBJECT) chat_fail(o, "tool call arguments that are not a JSON object");
    if (!o->failed && !o->nomem) {
        chat_put(o, "<" CHAT_DSML "invoke name=\"");
        chat_put(o, call->name);
        chat_put(o, "\">\n");
        int value, first = 1;
        for (int k = d.v[root].first; k >= 0 && !o->failed; k = d.v[d.v[k].next].next) {
            if (!js_member(o, &d, root, k, &value)) continue;
            if (!first) chat_put(o, "\n");
            first = 0;
            int is_str = d.v[value].kind == JS_STRING;
            chat_put(o, "<" CHAT_DSML "parameter name=\"");
            js_put_raw(o, &d, k);
            chat_put(o, is_str ? "\" string=\"true\">" : "\" string=\"false\">");
            (is_str ? js_put_raw : js_put)(o, &d, value);
            chat_put(o, "</" CHAT_DSML "parameter>");
        }
        chat_put(o, "\n</" CHAT_DSML "invoke>");
    }
    free(d.v);
}

static void chat_v32_invoke(chat_buf *o, const ds_tool_call *call) {
    chat_dsml_invoke(o, call, "a tool call without a name (Python would write None)");
}

/* [reasoning</think>] answer [\n\n<｜DSML｜function_calls>...] <｜end▁of▁sentence｜>; the reasoning
   only in thinking mode after the last user turn, where the encoder insists on reasoning or
   tool calls. Earlier turns' reasoning is dropped (drop_thinking), and chat mode drops it all. */
static void chat_v32_assistant(chat_buf *o, const chat_v32 *c, int i) {
    const ds_chat_message *m = &c->m[i];
    chat_span reasoning, answer;
    chat_v32_split(m->content, &reasoning, &answer);
    if (c->thinking && i > c->last_user) {
        if (!reasoning.n && !m->n_tool_calls) {
            chat_fail(o, "in thinking mode an answer after the last user message needs its reasoning "
                         "(\"reasoning</think>answer\") or tool calls");
            return;
        }
        chat_put_n(o, reasoning.s ? reasoning.s : "", reasoning.n);
        chat_put(o, CHAT_THINK_END);
    }
    chat_put_n(o, answer.s, answer.n);
    if (m->n_tool_calls > 0) {
        chat_put(o, "\n\n" CHAT_V32_FUNCTION_CALLS "\n");
        for (int k = 0; k < m->n_tool_calls && !o->failed && !o->nomem; k++) {
            if (k) chat_put(o, "\n");
            chat_v32_invoke(o, &m->tool_calls[k]);
        }
        chat_put(o, "\n</" CHAT_DSML "function_calls>");
    }
    chat_put(o, CHAT_EOS);
}

/* params->tools parsed into d: the array's node, or -1 for none (NULL or []) or a failure. */
static int chat_parse_tools(chat_buf *o, js_doc *d, const char *tools) {
    if (!tools) return -1;
    int root = js_parse(d, tools);
    if (d->nomem) o->nomem = 1;
    if (root < 0 || d->v[root].kind != JS_ARRAY) {
        chat_fail(o, "the tools are not a JSON array");
        return -1;
    }
    return d->v[root].first >= 0 ? root : -1;
}

/* V3.2's tools: objects each with a "function" (its schema). */
static void chat_v32_parse_tools(chat_buf *o, chat_v32 *c, const char *tools) {
    c->tools_root = chat_parse_tools(o, &c->tools, tools);
    for (int t = c->tools_root >= 0 ? c->tools.v[c->tools_root].first : -1; t >= 0; t = c->tools.v[t].next)
        if (c->tools.v[t].kind != JS_OBJECT || js_get(o, &c->tools, t, "function") < 0) {
            chat_fail(o, "a tool without a \"function\"");
            return;
        }
}

/* DeepSeek's encode_messages(messages, thinking_mode, drop_thinking=True) with messages mapped
   as chat_v32_split says and the tools given to the first system message, or to an empty
   system message put first when there is none. add_generation_prompt plays no part. Unknown
   roles fail, as the encoder raises on them. */
static void chat_render_v32(chat_buf *o, const char *bos, const ds_chat_message *msgs, int n, const ds_chat_params *p) {
    chat_v32 c = {msgs, n, p->thinking > 0, -1, -1, {0}, -1};
    chat_v32_parse_tools(o, &c, p->tools);
    for (int i = 0; i < n; i++) {
        if ((chat_is_role(&msgs[i], "user") || chat_is_role(&msgs[i], "developer"))) c.last_user = i;
        if (chat_is_role(&msgs[i], "system") && c.tools_at < 0) c.tools_at = i;
    }
    chat_put(o, bos);
    if (c.tools_at < 0 && c.tools_root >= 0 && !o->failed) chat_v32_tools(o, &c);
    for (int i = 0; i < n && !o->failed && !o->nomem; i++) {
        const ds_chat_message *m = &msgs[i];
        if (chat_is_role(m, "system")) chat_v32_system(o, &c, i);
        else if (chat_is_role(m, "user") || chat_is_role(m, "developer")) chat_v32_user(o, &c, i);
        else if (chat_is_role(m, "assistant")) chat_v32_assistant(o, &c, i);
        else if (chat_is_role(m, "tool")) chat_v32_tool(o, &c, i);
        else chat_fail(o, "a role DeepSeek's encoder does not know");
    }
    free(c.tools.v);
}

/* ---- DeepSeek V4: llama.cpp's template (deepseek-ai-DeepSeek-V4.jinja), DSML tool_calls ---- */

#define CHAT_V4_TOOL_CALLS "<" CHAT_DSML "tool_calls>"

/* The template's tools_header and tools_footer, around the schemas (one JSON line each). */
static const char chat_v4_tools_head[] =
    "## Tools\n\nYou have access to a set of tools to help answer the user's question. You can invoke tools by "
    "writing a \"" CHAT_V4_TOOL_CALLS "\" block like the following:\n\n" CHAT_V4_TOOL_CALLS "\n<" CHAT_DSML
    "invoke name=\"$TOOL_NAME\">\n<" CHAT_DSML "parameter name=\"$PARAMETER_NAME\" string=\"true|false\">"
    "$PARAMETER_VALUE</" CHAT_DSML "parameter>\n...\n</" CHAT_DSML "invoke>\n<" CHAT_DSML
    "invoke name=\"$TOOL_NAME2\">\n...\n</" CHAT_DSML "invoke>\n</" CHAT_DSML "tool_calls>\n\nString parameters "
    "should be specified as is and set `string=\"true\"`. For all other types (numbers, booleans, arrays, "
    "objects), pass the value in JSON format and set `string=\"false\"`.\n\nIf thinking_mode is enabled "
    "(triggered by " CHAT_THINK "), you MUST output your complete reasoning inside " CHAT_THINK "..." CHAT_THINK_END
    " BEFORE any tool calls or final response.\n\nOtherwise, output directly after " CHAT_THINK_END
    " with tool calls or final response.\n\n### Available Tool Schemas\n\n";
static const char chat_v4_tools_foot[] =
    "\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.\n";

typedef struct {
    const ds_chat_message *m;
    int n, thinking;
    int last_user;     /* the last user, developer or tool message, -1 for none */
    int has_tool_msgs; /* any tool message: then every answer keeps its reasoning (thinking mode) */
    js_doc tools;      /* params->tools, parsed */
    int tools_root;    /* its array, -1 for no tools (NULL or []) */
} chat_v4;

/* 1 when tool node t is {"type": "function", ...}: the template describes only those, each by
   its "function" (which must then be there: tojson of Undefined raises); other entries, objects
   or not, are skipped. */
static int chat_v4_is_function(chat_buf *o, const js_doc *d, int t) {
    if (d->v[t].kind != JS_OBJECT) return 0;
    int type = js_get(o, d, t, "type");
    return type >= 0 && d->v[type].kind == JS_STRING && js_equal(o, d, type, "function", 8);
}

static void chat_v4_parse_tools(chat_buf *o, chat_v4 *c, const char *tools) {
    c->tools_root = chat_parse_tools(o, &c->tools, tools);
    for (int t = c->tools_root >= 0 ? c->tools.v[c->tools_root].first : -1; t >= 0; t = c->tools.v[t].next)
        if (chat_v4_is_function(o, &c->tools, t) && js_get(o, &c->tools, t, "function") < 0) {
            chat_fail(o, "a tool of type \"function\" without a \"function\"");
            return;
        }
}

/* The system prompt: every system message's `content or ""`, joined by blank lines, then (when
   there are tools) a blank line, the tools header, each function tool's schema as a JSON line and
   the footer; the blank line only when the joined text is not empty. */
static void chat_v4_system(chat_buf *o, const chat_v4 *c) {
    int n_sys = 0, text = 0;
    for (int i = 0; i < c->n; i++) {
        const ds_chat_message *m = &c->m[i];
        if (!chat_is_role(m, "system")) continue;
        if (n_sys++) chat_put(o, "\n\n");
        if (m->content) chat_put(o, m->content);
        text |= m->content && *m->content;
    }
    if (c->tools_root < 0) return;
    if (n_sys > 1 || text) chat_put(o, "\n\n");
    chat_put(o, chat_v4_tools_head);
    const js_doc *d = &c->tools;
    for (int t = d->v[c->tools_root].first; t >= 0 && !o->failed; t = d->v[t].next) {
        if (!chat_v4_is_function(o, d, t)) continue;
        js_put(o, d, js_get(o, d, t, "function"));
        chat_put(o, "\n");
    }
    chat_put(o, chat_v4_tools_foot);
}

/* V4's invoke: V3.2's (the same parameter lines, a blank line for no arguments), then a newline. */
static void chat_v4_invoke(chat_buf *o, const ds_tool_call *call) {
    chat_dsml_invoke(o, call, "a tool call without a name (the template adds None to a string)");
    if (!o->failed && !o->nomem) chat_put(o, "\n");
}

/* <｜Assistant｜>, then in thinking mode <think>reasoning</think> where the reasoning is kept (with
   tools, with tool messages in the conversation, or after the last user / tool message) and
   </think> elsewhere, then the answer, the tool calls and <｜end▁of▁sentence｜> (the text, not
   eos). "R</think>A" is reasoning R and answer A as chat_v32_split says. */
static void chat_v4_assistant(chat_buf *o, const chat_v4 *c, int i) {
    const ds_chat_message *m = &c->m[i];
    chat_span reasoning, answer;
    chat_v32_split(m->content, &reasoning, &answer);
    chat_put(o, CHAT_ASSISTANT);
    if (c->thinking && (c->tools_root >= 0 || c->has_tool_msgs || i > c->last_user)) {
        chat_put(o, CHAT_THINK);
        chat_put_n(o, reasoning.s ? reasoning.s : "", reasoning.n);
    }
    chat_put(o, CHAT_THINK_END);
    chat_put_n(o, answer.s, answer.n);
    if (m->n_tool_calls > 0) {
        chat_put(o, "\n\n" CHAT_V4_TOOL_CALLS "\n");
        for (int k = 0; k < m->n_tool_calls && !o->failed && !o->nomem; k++) chat_v4_invoke(o, &m->tool_calls[k]);
        chat_put(o, "</" CHAT_DSML "tool_calls>");
    }
    chat_put(o, CHAT_EOS);
}

/* llama.cpp's DeepSeek-V4 template (and V4-Flash-0731's, the same but for reasoning_effort,
   which ds_chat_params does not carry) with thinking = params->thinking > 0 (-1: unset, chat
   mode), drop_thinking left true, the tools as `tools`. A run of user, developer and tool
   messages is one user turn, its parts joined by blank lines, tool results as
   <tool_result>...</tool_result>; system messages (written first) and unknown roles are skipped
   without ending the run. None contents are empty texts. */
static void chat_render_v4(chat_buf *o, const char *bos, const ds_chat_message *msgs, int n, const ds_chat_params *p) {
    chat_v4 c = {msgs, n, p->thinking > 0, -1, 0, {0}, -1};
    chat_v4_parse_tools(o, &c, p->tools);
    for (int i = 0; i < n; i++) {
        int tool = chat_is_role(&msgs[i], "tool");
        if (tool || chat_is_role(&msgs[i], "user") || chat_is_role(&msgs[i], "developer")) c.last_user = i;
        c.has_tool_msgs |= tool;
    }
    chat_put(o, bos);
    if (!o->failed && !o->nomem) chat_v4_system(o, &c);
    int in_user = 0;
    for (int i = 0; i < n && !o->failed && !o->nomem; i++) {
        const ds_chat_message *m = &msgs[i];
        int tool = chat_is_role(m, "tool");
        if (tool || chat_is_role(m, "user") || chat_is_role(m, "developer")) {
            chat_put(o, in_user ? "\n\n" : CHAT_USER);
            in_user = 1;
            if (tool) chat_put(o, "<tool_result>");
            if (m->content) chat_put(o, m->content);
            if (tool) chat_put(o, "</tool_result>");
        } else if (chat_is_role(m, "assistant")) {
            in_user = 0;
            chat_v4_assistant(o, &c, i);
        }
    }
    if (p->add_generation_prompt)
        chat_put(o, p->thinking > 0 ? CHAT_ASSISTANT CHAT_THINK : CHAT_ASSISTANT CHAT_THINK_END);
    free(c.tools.v);
}

/* ---- DeepSeek V2 ---- */

/* Messages in order (a system message where it stands); tool calls and tool messages are not
   part of this format and are ignored, but an assistant turn still needs its text. */
static void chat_render_v2(chat_buf *o, const char *bos, const char *eos, const ds_chat_message *msgs, int n,
                           int add_gen) {
    chat_put(o, bos);
    for (int i = 0; i < n && !o->failed; i++) {
        const ds_chat_message *m = &msgs[i];
        if (chat_is_role(m, "user")) {
            chat_put(o, "User: ");
            chat_put(o, m->content);
            chat_put(o, "\n\n");
        } else if (chat_is_role(m, "assistant")) {
            chat_put(o, "Assistant: ");
            chat_put(o, m->content);
            chat_put(o, eos);
        } else if (chat_is_role(m, "system")) {
            chat_put(o, m->content);
            chat_put(o, "\n\n");
        }
    }
    if (add_gen) chat_put(o, "Assistant:");
}

/* ---- DeepSeek Coder instruct (1.3B, 6.7B, 33B) ---- */

#define CODER_SYSTEM                                                                                            \
    "You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek Company, " \
    "and you only answer questions related to computer science. For politically sensitive questions, "         \
    "security and privacy issues, and other non-computer science questions, you will refuse to answer\n"

/* The default system prompt unless the conversation has a system message; system messages are
   written bare where they stand, users as instructions and every other role, unknown ones
   included, as a response closed by <|EOT|> (written as text: the template does not use
   eos_token). */
static void chat_render_coder(chat_buf *o, const char *bos, const ds_chat_message *msgs, int n, int add_gen) {
    int has_system = 0;
    for (int i = 0; i < n; i++) has_system |= chat_is_role(&msgs[i], "system");
    chat_put(o, bos);
    if (!has_system) chat_put(o, CODER_SYSTEM);
    for (int i = 0; i < n && !o->failed; i++) {
        const ds_chat_message *m = &msgs[i];
        if (chat_is_role(m, "system")) {
            chat_put_py(o, m->content);
        } else if (chat_is_role(m, "user")) {
            chat_put(o, "### Instruction:\n");
            chat_put(o, m->content);
            chat_put(o, "\n");
        } else {
            chat_put(o, "### Response:\n");
            chat_put(o, m->content);
            chat_put(o, "\n<|EOT|>\n");
        }
    }
    if (add_gen) chat_put(o, "### Response:\n");
}

/* ---- ChatML, llama.cpp's template for a model without one ---- */

static void chat_render_chatml(chat_buf *o, const ds_chat_message *msgs, int n, int add_gen) {
    for (int i = 0; i < n && !o->failed; i++) {
        chat_put(o, "<|im_start|>");
        chat_put(o, msgs[i].role);
        chat_put(o, "\n");
        chat_put(o, msgs[i].content);
        chat_put(o, "<|im_end|>\n");
    }
    if (add_gen) chat_put(o, "<|im_start|>assistant\n");
}

/* ---- Qwen3 ---- */

typedef struct {
    const ds_chat_message *m;
    int n;
    int last_query; /* the last user message that is not a tool response */
    js_doc tools;
    int tools_root; /* -1 for none */
} chat_qwen;

static int chat_has_prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static int chat_has_suffix(const char *s, const char *x) {
    size_t n = strlen(s), k = strlen(x);
    return n >= k && !strcmp(s + n - k, x);
}

/* The last user message, from the end, that is not wholly a <tool_response>; the last message
   when there is none. */
static void chat_qwen_last_query(chat_buf *o, chat_qwen *q) {
    q->last_query = q->n - 1;
    for (int i = q->n - 1; i >= 0; i--) {
        const char *c = q->m[i].content;
        if (!chat_is_role(&q->m[i], "user")) continue;
        if (!c) {
            chat_fail(o, "a user message without content (the template calls None.startswith)");
            return;
        }
        if (!chat_has_prefix(c, "<tool_response>") || !chat_has_suffix(c, "</tool_response>")) {
            q->last_query = i;
            return;
        }
    }
}

static void chat_qwen_tools(chat_buf *o, const chat_qwen *q) {
    chat_put(o, "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided "
                "with function signatures within <tools></tools> XML tags:\n<tools>");
    for (int t = q->tools.v[q->tools_root].first; t >= 0 && !o->failed; t = q->tools.v[t].next) {
        chat_put(o, "\n");
        js_put(o, &q->tools, t);
    }
    chat_put(o, "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
                "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
                "<args-json-object>}\n</tool_call><|im_end|>\n");
}

/* The first message, when it is a system message, opens the system turn; the tools follow it. */
static void chat_qwen_system(chat_buf *o, const chat_qwen *q) {
    if (!q->n) {
        chat_fail(o, "no messages (the template reads messages[0])");
        return;
    }
    int sys = chat_is_role(&q->m[0], "system");
    if (q->tools_root < 0 && !sys) return;
    chat_put(o, "<|im_start|>system\n");
    if (sys) chat_put(o, q->m[0].content);
    if (q->tools_root < 0) chat_put(o, "<|im_end|>\n");
    else if (sys) chat_put(o, "\n\n");
    if (q->tools_root >= 0) chat_qwen_tools(o, q);
}

/* s[0..n) without the given leading / trailing newlines (Python's lstrip / rstrip('\n')). */
static chat_span chat_strip_nl(const char *s, size_t n, int left, int right) {
    while (left && n && *s == '\n') s++, n--;
    while (right && n && s[n - 1] == '\n') n--;
    return (chat_span){s, n};
}

/* "R</think>A": content A after the last </think> (leading newlines dropped) and reasoning R,
   before the first </think>, after its last <think>, without the newlines around it. */
static void chat_qwen_split(const char *c, chat_span *reasoning, chat_span *content) {
    const char *end = strstr(c, CHAT_THINK_END), *r = c;
    size_t k = strlen(CHAT_THINK);
    *reasoning = (chat_span){"", 0};
    *content = (chat_span){c, strlen(c)};
    if (!end) return;
    const char *a = chat_after_reasoning(c);
    *content = chat_strip_nl(a, strlen(a), 1, 0);
    for (const char *p = strstr(r, CHAT_THINK); p && p + k <= end; p = strstr(r, CHAT_THINK)) r = p + k;
    *reasoning = chat_strip_nl(r, (size_t)(end - r), 1, 1);
}

/* <tool_call>\n{"name": "NAME", "arguments": ARGS}\n</tool_call>, ARGS as given (None as null). */
static void chat_qwen_calls(chat_buf *o, const ds_chat_message *m, size_t content_len) {
    for (int k = 0; k < m->n_tool_calls; k++) {
        if (k || content_len) chat_put(o, "\n");
        chat_put(o, "<tool_call>\n{\"name\": \"");
        chat_put_py(o, m->tool_calls[k].name);
        chat_put(o, "\", \"arguments\": ");
        chat_put(o, m->tool_calls[k].arguments ? m->tool_calls[k].arguments : "null");
        chat_put(o, "}\n</tool_call>");
    }
}

/* Answers after the last query keep their reasoning in a <think> block (the last message always,
   an empty block then; others when they have reasoning); earlier ones lose it. */
static void chat_qwen_assistant(chat_buf *o, const chat_qwen *q, int i) {
    const ds_chat_message *m = &q->m[i];
    if (!m->content) {
        chat_fail(o, "an assistant message without content (the template tests '</think>' in None)");
        return;
    }
    chat_span reasoning, content;
    chat_qwen_split(m->content, &reasoning, &content);
    chat_put(o, "<|im_start|>assistant\n");
    if (i > q->last_query && (i == q->n - 1 || reasoning.n)) {
        chat_put(o, "<think>\n");
        chat_put_n(o, reasoning.s, reasoning.n);
        chat_put(o, "\n</think>\n\n");
        chat_span c = chat_strip_nl(content.s, content.n, 1, 0);
        chat_put_n(o, c.s, c.n);
    } else {
        chat_put_n(o, content.s, content.n);
    }
    chat_qwen_calls(o, m, content.n);
    chat_put(o, "<|im_end|>\n");
}

/* A run of tool outputs is one user turn of <tool_response> blocks. */
static void chat_qwen_tool(chat_buf *o, const chat_qwen *q, int i) {
    if (i == 0 || !chat_is_role(&q->m[i - 1], "tool")) chat_put(o, "<|im_start|>user");
    chat_put(o, "\n<tool_response>\n");
    chat_put_py(o, q->m[i].content);
    chat_put(o, "\n</tool_response>");
    if (i == q->n - 1 || !chat_is_role(&q->m[i + 1], "tool")) chat_put(o, "<|im_end|>\n");
}

/* Qwen3's template: no BOS; the tools (params->tools, each written as json.dumps writes it) in
   the system turn; enable_thinking = params->thinking (-1: unset) only changes the generation
   prompt, which thinking off closes with an empty <think> block. Unknown roles are skipped. */
static void chat_render_qwen3(chat_buf *o, const ds_chat_message *msgs, int n, const ds_chat_params *p) {
    chat_qwen q = {msgs, n, n - 1, {0}, -1};
    q.tools_root = chat_parse_tools(o, &q.tools, p->tools);
    if (!o->failed && !o->nomem) chat_qwen_system(o, &q);
    if (!o->failed) chat_qwen_last_query(o, &q);
    for (int i = 0; i < n && !o->failed && !o->nomem; i++) {
        const ds_chat_message *m = &msgs[i];
        if (chat_is_role(m, "user") || (i && chat_is_role(m, "system"))) {
            chat_put(o, "<|im_start|>");
            chat_put(o, m->role);
            chat_put(o, "\n");
            chat_put(o, m->content);
            chat_put(o, "<|im_end|>\n");
        } else if (chat_is_role(m, "assistant")) {
            chat_qwen_assistant(o, &q, i);
        } else if (chat_is_role(m, "tool")) {
            chat_qwen_tool(o, &q, i);
        }
    }
    if (p->add_generation_prompt) chat_put(o, p->thinking == 0 ? "<|im_start|>assistant\n<think>\n\n</think>\n\n"
                                                                : "<|im_start|>assistant\n");
    free(q.tools.v);
}

static int chat_render_style(chat_buf *o, ds_chat_style s, const char *bos, const char *eos,
                             const ds_chat_message *msgs, int n, const ds_chat_params *p) {
    int agp = p->add_generation_prompt;
    switch (s) {
    case DS_CHAT_DEEPSEEK3: chat_render_v3(o, bos, msgs, n, agp, CHAT_V3); return 0;
    case DS_CHAT_DEEPSEEK_R1: chat_render_v3(o, bos, msgs, n, agp, CHAT_R1); return 0;
    case DS_CHAT_DEEPSEEK_R1_DISTILL: chat_render_v3(o, bos, msgs, n, agp, CHAT_DISTILL); return 0;
    case DS_CHAT_DEEPSEEK2: chat_render_v2(o, bos, eos, msgs, n, agp); return 0;
    case DS_CHAT_DEEPSEEK3_1: chat_render_v31(o, bos, msgs, n, p); return 0;
    case DS_CHAT_DEEPSEEK3_2: chat_render_v32(o, bos, msgs, n, p); return 0;
    case DS_CHAT_DEEPSEEK_CODER: chat_render_coder(o, bos, msgs, n, agp); return 0;
    case DS_CHAT_QWEN3: chat_render_qwen3(o, msgs, n, p); return 0;
    case DS_CHAT_CHATML: chat_render_chatml(o, msgs, n, agp); return 0;
    case DS_CHAT_DEEPSEEK4: chat_render_v4(o, bos, msgs, n, p); return 0;
    case DS_CHAT_UNKNOWN: break;
    }
    return -1;
}

/* "a, b, c": the names of the styles, for messages. */
static const char *chat_names_list(char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    for (const char *const *n = ds_chat_template_names(); *n && k < cap; n++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", k ? ", " : "", *n);
    return buf;
}

ds_status ds_chat_render_ex(ds_chat_style s, const char *bos, const char *eos, const ds_chat_message *msgs, int n_msgs,
                            const ds_chat_params *params, char *buf, size_t cap, size_t *len, char *err,
                            size_t err_size) {
    ds_chat_params p = params ? *params : ds_chat_default_params();
    chat_buf o = {buf, buf ? cap : 0, 0, 0, 0, NULL};
    if (o.cap) buf[0] = '\0';
    *len = 0;
    if (n_msgs < 0 || (n_msgs > 0 && !msgs)) return fail(DS_ERR_ARG, err, err_size, "chat: %d messages", n_msgs);
    for (int i = 0; i < n_msgs; i++) {
        int nc = msgs[i].n_tool_calls;
        if (nc < 0 || (nc > 0 && !msgs[i].tool_calls))
            return fail(DS_ERR_ARG, err, err_size, "chat: message %d has %d tool calls and no array", i, nc);
    }
    char names[256];
    if (chat_render_style(&o, s, bos ? bos : "", eos ? eos : "", msgs, n_msgs, &p))
        return fail(DS_ERR_UNSUPPORTED, err, err_size, "chat: the chat template is not one this library renders (%s)",
                    chat_names_list(names, sizeof names));
    if (o.nomem || o.failed) {
        if (o.cap) buf[0] = '\0';
        if (o.nomem) return fail(DS_ERR_NOMEM, err, err_size, "chat: out of memory");
        return fail(DS_ERR_ARG, err, err_size, "chat: the template cannot render these messages (%s)",
                    o.why ? o.why : "a message without content where it needs text");
    }
    *len = o.len;
    if (o.len >= o.cap)
        return fail(DS_ERR_SMALL_BUFFER, err, err_size, "chat: the text is %zu bytes; the buffer holds %zu", o.len,
                    o.cap);
    return DS_OK;
}

ds_status ds_chat_render(ds_chat_style s, const char *bos, const char *eos, const ds_chat_message *msgs, int n_msgs,
                         int add_generation_prompt, char *buf, size_t cap, size_t *len, char *err, size_t err_size) {
    ds_chat_params p = ds_chat_default_params();
    p.add_generation_prompt = add_generation_prompt;
    return ds_chat_render_ex(s, bos, eos, msgs, n_msgs, &p, buf, cap, len, err, err_size);
}

ds_chat_style ds_model_chat_style(const ds_model *m) { return ds_chat_detect(ds_model_chat_template(m)); }

/* The template writes BOS and EOS as text; their token strings are that text. */
static const char *token_text(const ds_model *m, int id, char *buf, size_t cap) {
    size_t len;
    const char *s = id >= 0 ? ds_token_bytes(m, id, &len) : NULL;
    if (!s || len >= cap) return "";
    memcpy(buf, s, len);
    buf[len] = 0;
    return buf;
}

ds_status ds_chat_apply_ex(const ds_model *m, const ds_chat_message *msgs, int n_msgs, const ds_chat_params *params,
                           char *buf, size_t cap, size_t *len, char *err, size_t err_size) {
    char bos[128], eos[128];
    ds_chat_style style = params && params->style != DS_CHAT_UNKNOWN ? params->style : ds_model_chat_style(m);
    return ds_chat_render_ex(style, token_text(m, ds_model_bos(m), bos, sizeof bos),
                             token_text(m, ds_model_eos(m), eos, sizeof eos), msgs, n_msgs, params, buf, cap, len, err,
                             err_size);
}

ds_status ds_chat_apply(const ds_model *m, const ds_chat_message *msgs, int n_msgs, int add_generation_prompt,
                        char *buf, size_t cap, size_t *len, char *err, size_t err_size) {
    ds_chat_params p = ds_chat_default_params();
    p.add_generation_prompt = add_generation_prompt;
    return ds_chat_apply_ex(m, msgs, n_msgs, &p, buf, cap, len, err, err_size);
}
