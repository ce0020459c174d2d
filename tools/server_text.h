/* server_text.h - what deepseek-server makes of a model's generated text: the reasoning, the
   answer and the tool calls, as DeepSeek's API returns them (reasoning_content, content,
   tool_calls).

   The text is cut the same way while it streams and when it is done, so that the streamed
   pieces add up to the whole answer: a split point is only trusted once no later token can move
   it (a tail that may be the start of "</think>" or of a tool-call marker is held back until the
   next tokens decide). */
#ifndef DS_TOOLS_SERVER_TEXT_H
#define DS_TOOLS_SERVER_TEXT_H

#include <string.h>

#include <cjson/cJSON.h>

#include "think.h" /* partial_tag */

/* How a chat template writes tool calls in the model's answer. */
typedef enum {
    TOOLS_NONE,    /* no tool calls parsed (the text stays content) */
    TOOLS_DEEPSEEK, /* <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```
                      <｜tool▁call▁end｜>...<｜tool▁calls▁end｜> (V3, R1 and its distills), or
                      <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜> (V3.1) */
    TOOLS_QWEN3,    /* <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, one per call */
    TOOLS_DSML,     /* V3.2: <｜DSML｜function_calls>\n<｜DSML｜invoke name="NAME">\n<｜DSML｜parameter
                       name="K" string="true|false">V</｜DSML｜parameter>...</｜DSML｜invoke>...
                       </｜DSML｜function_calls> (string="false": V is JSON) */
    TOOLS_DSML_V4   /* V4: the same invokes in a <｜DSML｜tool_calls> ... </｜DSML｜tool_calls> block */
} tool_syntax;

#define TOOL_CALLS_BEGIN "<｜tool▁calls▁begin｜>"
#define TOOL_CALLS_END "<｜tool▁calls▁end｜>"
#define TOOL_CALL_BEGIN "<｜tool▁call▁begin｜>"
#define TOOL_CALL_END "<｜tool▁call▁end｜>"
#define TOOL_SEP "<｜tool▁sep｜>"
#define DSML_CALLS "<｜DSML｜function_calls>"
#define DSML_CALLS_V4 "<｜DSML｜tool_calls>"
#define DSML_INVOKE "<｜DSML｜invoke name=\""
#define DSML_INVOKE_END "</｜DSML｜invoke>"
#define DSML_PARAM "<｜DSML｜parameter name=\""
#define DSML_PARAM_END "</｜DSML｜parameter>"

static inline const char *tool_marker(tool_syntax t) {
    switch (t) {
    case TOOLS_DEEPSEEK: return TOOL_CALLS_BEGIN;
    case TOOLS_QWEN3: return "<tool_call>";
    case TOOLS_DSML: return DSML_CALLS;
    case TOOLS_DSML_V4: return DSML_CALLS_V4;
    default: return NULL;
    }
}

/* The parts of text[0..len): [r0, r1) reasoning, [c0, c1) the answer, tools the offset of the tool
   calls (len when none). */
typedef struct {
    size_t r0, r1, c0, c1, tools;
} text_parts;

static inline const char *find_in(const char *s, size_t from, size_t len, const char *tag) {
    return from <= len ? memmem(s + from, len - from, tag, strlen(tag)) : NULL;
}

/* Cuts text[0..len). in_think: the prompt left the model inside <think>. final: no more text
   will come (nothing is held back). */
static inline text_parts text_split(const char *s, size_t len, int in_think, tool_syntax tools, int final) {
    text_parts p = {0, 0, 0, 0, len};
    size_t at = 0;
    if (!in_think) { /* a model that opens <think> itself (Qwen3), maybe after blank lines */
        size_t ws = 0;
        while (ws < len && strchr(" \n", s[ws])) ws++;
        if (len - ws >= 7 && !memcmp(s + ws, "<think>", 7)) in_think = 1, at = ws + 7;
        else if (!final && len - ws < 7 && !memcmp(s + ws, "<think>", len - ws)) return (text_parts){0, 0, 0, 0, 0};
    }
    if (in_think) {
        const char *e = find_in(s, at, len, "</think>");
        p.r0 = at;
        if (!e) {
            p.r1 = final ? len : len - partial_tag(s + at, len - at, "</think>");
            p.c0 = p.c1 = p.tools = p.r1;
            return p;
        }
        p.r1 = (size_t)(e - s);
        at = p.r1 + 8;
        while (at < len && strchr(" \n", s[at])) at++; /* the answer starts after the blank lines */
    } else p.r0 = p.r1 = 0;
    p.c0 = at;
    const char *mark = tool_marker(tools);
    const char *t = mark ? find_in(s, at, len, mark) : NULL;
    if (t) p.c1 = p.tools = (size_t)(t - s);
    else p.c1 = p.tools = final || !mark ? len : len - partial_tag(s + at, len - at, mark);
    return p;
}

/* ---- tool calls ---- */

/* s[0..n) with the spaces and newlines at both ends dropped, as a new cJSON string. */
static inline cJSON *json_trimmed(const char *s, size_t n) {
    while (n && strchr(" \n\r\t", *s)) s++, n--;
    while (n && strchr(" \n\r\t", s[n - 1])) n--;
    char *c = malloc(n + 1);
    if (!c) return NULL;
    memcpy(c, s, n);
    c[n] = 0;
    cJSON *j = cJSON_CreateString(c);
    free(c);
    return j;
}

/* {"id", "type": "function", "function": {"name", "arguments"}} appended to calls. */
static inline int add_call(cJSON *calls, const char *name, size_t n_name, cJSON *args) {
    char id[32];
    snprintf(id, sizeof id, "call_%d", cJSON_GetArraySize(calls));
    cJSON *c = cJSON_CreateObject(), *f = cJSON_CreateObject(), *nm = json_trimmed(name, n_name);
    if (!c || !f || !nm || !args) {
        cJSON_Delete(c), cJSON_Delete(f), cJSON_Delete(nm), cJSON_Delete(args);
        return -1;
    }
    cJSON_AddStringToObject(c, "id", id);
    cJSON_AddStringToObject(c, "type", "function");
    cJSON_AddItemToObject(f, "name", nm);
    cJSON_AddItemToObject(f, "arguments", args);
    cJSON_AddItemToObject(c, "function", f);
    cJSON_AddItemToArray(calls, c);
    return 0;
}

/* One DeepSeek call, s[0..n) between <｜tool▁call▁begin｜> and <｜tool▁call▁end｜>. */
static inline int parse_deepseek_call(cJSON *calls, const char *s, size_t n) {
    const char *sep = memmem(s, n, TOOL_SEP, strlen(TOOL_SEP));
    if (!sep) return -1;
    size_t k = (size_t)(sep - s), at = k + strlen(TOOL_SEP);
    if (k == 8 && !memcmp(s, "function", 8)) { /* V3 / R1: NAME\n```json\nARGS\n``` */
        const char *nl = memchr(s + at, '\n', n - at);
        const char *open = find_in(s, at, n, "```json"), *close;
        if (!nl || !open || !(close = find_in(s, (size_t)(open - s) + 7, n, "```"))) return -1;
        return add_call(calls, s + at, (size_t)(nl - s) - at,
                        json_trimmed(open + 7, (size_t)(close - open) - 7));
    }
    return add_call(calls, s, k, json_trimmed(s + at, n - at)); /* V3.1: NAME<｜tool▁sep｜>ARGS */
}

static inline int parse_deepseek_calls(cJSON *calls, const char *s, size_t n) {
    size_t at = strlen(TOOL_CALLS_BEGIN);
    for (;;) {
        const char *b = find_in(s, at, n, TOOL_CALL_BEGIN);
        if (!b) break;
        size_t from = (size_t)(b - s) + strlen(TOOL_CALL_BEGIN);
        const char *e = find_in(s, from, n, TOOL_CALL_END);
        if (!e || parse_deepseek_call(calls, s + from, (size_t)(e - s) - from)) return -1;
        at = (size_t)(e - s) + strlen(TOOL_CALL_END);
    }
    return cJSON_GetArraySize(calls) ? 0 : -1;
}

static inline int parse_qwen3_calls(cJSON *calls, const char *s, size_t n) {
    size_t at = 0;
    for (const char *b; (b = find_in(s, at, n, "<tool_call>"));) {
        size_t from = (size_t)(b - s) + 11;
        const char *e = find_in(s, from, n, "</tool_call>");
        if (!e) return -1;
        cJSON *j = cJSON_ParseWithLength(s + from, (size_t)(e - s) - from);
        cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
        cJSON *args = cJSON_GetObjectItemCaseSensitive(j, "arguments");
        char *a = args ? (cJSON_IsString(args) ? strdup(args->valuestring) : cJSON_PrintUnformatted(args)) : NULL;
        int rc = cJSON_IsString(name) && a ? add_call(calls, name->valuestring, strlen(name->valuestring),
                                                      cJSON_CreateString(a))
                                          : -1;
        free(a);
        cJSON_Delete(j);
        if (rc) return -1;
        at = (size_t)(e - s) + 12;
    }
    return cJSON_GetArraySize(calls) ? 0 : -1;
}

/* One DSML parameter, s[0..n) after <｜DSML｜parameter name=": K" string="true|false">V, into args. */
static inline int parse_dsml_param(cJSON *args, const char *s, size_t n) {
    const char *q = memchr(s, '"', n), *gt = q ? find_in(s, (size_t)(q - s), n, ">") : NULL;
    if (!q || !gt) return -1;
    char *k = strndup(s, (size_t)(q - s));
    int is_str = find_in(s, (size_t)(q - s), (size_t)(gt - s), "string=\"true\"") != NULL;
    size_t v0 = (size_t)(gt - s) + 1;
    cJSON *v = is_str ? NULL : cJSON_ParseWithLength(s + v0, n - v0);
    if (!v) { /* a string, or a value that is not JSON: kept as its text */
        char *t = strndup(s + v0, n - v0);
        v = t ? cJSON_CreateString(t) : NULL;
        free(t);
    }
    if (!k || !v) {
        free(k), cJSON_Delete(v);
        return -1;
    }
    cJSON_AddItemToObject(args, k, v);
    free(k);
    return 0;
}

/* One <｜DSML｜invoke name="NAME">...</｜DSML｜invoke>, s[0..n) after its opening quote. */
static inline int parse_dsml_invoke(cJSON *calls, const char *s, size_t n) {
    const char *q = memchr(s, '"', n);
    cJSON *args = cJSON_CreateObject();
    if (!q || !args) {
        cJSON_Delete(args);
        return -1;
    }
    size_t at = (size_t)(q - s);
    for (const char *p; (p = find_in(s, at, n, DSML_PARAM));) {
        size_t from = (size_t)(p - s) + strlen(DSML_PARAM);
        const char *e = find_in(s, from, n, DSML_PARAM_END);
        if (!e || parse_dsml_param(args, s + from, (size_t)(e - s) - from)) {
            cJSON_Delete(args);
            return -1;
        }
        at = (size_t)(e - s) + strlen(DSML_PARAM_END);
    }
    char *a = cJSON_PrintUnformatted(args);
    cJSON_Delete(args);
    int rc = a ? add_call(calls, s, (size_t)(q - s), cJSON_CreateString(a)) : -1;
    free(a);
    return rc;
}

static inline int parse_dsml_calls(cJSON *calls, const char *s, size_t n) {
    size_t at = 0;
    for (const char *b; (b = find_in(s, at, n, DSML_INVOKE));) {
        size_t from = (size_t)(b - s) + strlen(DSML_INVOKE);
        const char *e = find_in(s, from, n, DSML_INVOKE_END);
        if (!e || parse_dsml_invoke(calls, s + from, (size_t)(e - s) - from)) return -1;
        at = (size_t)(e - s) + strlen(DSML_INVOKE_END);
    }
    return cJSON_GetArraySize(calls) ? 0 : -1;
}

/* The OpenAI tool_calls array of s[0..n) (which starts at the tool marker), or NULL where the
   calls are not well formed (the text then stays part of the answer). */
static inline cJSON *parse_tool_calls(tool_syntax t, const char *s, size_t n) {
    cJSON *calls = cJSON_CreateArray();
    int rc = !calls ? -1 : t == TOOLS_DEEPSEEK ? parse_deepseek_calls(calls, s, n)
                         : t == TOOLS_QWEN3   ? parse_qwen3_calls(calls, s, n)
                         : t == TOOLS_DSML || t == TOOLS_DSML_V4 ? parse_dsml_calls(calls, s, n)
                                              : -1;
    if (rc) {
        cJSON_Delete(calls);
        return NULL;
    }
    return calls;
}

/* The earliest end of a stop string in s[0..len) that lies past `from` (the text before was
   checked already), as the offset where it starts; len when none. */
static inline size_t stop_at(const char *s, size_t from, size_t len, char *const *stop, int n_stop) {
    size_t best = len;
    for (int i = 0; i < n_stop; i++) {
        size_t k = strlen(stop[i]);
        size_t at = from + 1 > k ? from + 1 - k : 0;
        const char *hit = k ? find_in(s, at, len, stop[i]) : NULL;
        if (hit && (size_t)(hit - s) < best) best = (size_t)(hit - s);
    }
    return best;
}

/* How much of the end of s[0..len) may be the start of a stop string. */
static inline size_t stop_partial(const char *s, size_t len, char *const *stop, int n_stop) {
    size_t hold = 0;
    for (int i = 0; i < n_stop; i++) {
        size_t k = *stop[i] ? partial_tag(s, len, stop[i]) : 0;
        if (k > hold) hold = k;
    }
    return hold;
}

#endif
