/* chatjson.h - a conversation in the fixtures' JSON form ({"role", "content", "tool_calls"})
   as ds_chat_message values. Needs cJSON and cmocka. */
#ifndef DS_CHATJSON_H
#define DS_CHATJSON_H

#include <stdlib.h>

#include "deepseek.h"

/* Strings point into the cJSON tree. */
static inline const char *str_or_null(const cJSON *j) { return cJSON_IsString(j) ? j->valuestring : NULL; }

typedef struct {
    ds_chat_message *msgs;
    ds_tool_call *calls;
    int n;
} conversation;

static inline void to_call(const cJSON *j, ds_tool_call *c) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(j, "function");
    c->type = str_or_null(cJSON_GetObjectItemCaseSensitive(j, "type"));
    c->name = str_or_null(cJSON_GetObjectItemCaseSensitive(fn, "name"));
    c->arguments = str_or_null(cJSON_GetObjectItemCaseSensitive(fn, "arguments"));
}

static inline int count_calls(const cJSON *messages) {
    int n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, messages) n += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "tool_calls"));
    return n;
}

static inline conversation to_conversation(const cJSON *messages) {
    conversation c = {0};
    c.n = cJSON_GetArraySize(messages);
    c.msgs = calloc((size_t)c.n + 1, sizeof *c.msgs);
    c.calls = calloc((size_t)count_calls(messages) + 1, sizeof *c.calls);
    assert_non_null(c.msgs);
    assert_non_null(c.calls);
    ds_tool_call *next = c.calls;
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, messages) {
        ds_chat_message *d = &c.msgs[i++];
        d->role = str_or_null(cJSON_GetObjectItemCaseSensitive(m, "role"));
        d->content = str_or_null(cJSON_GetObjectItemCaseSensitive(m, "content"));
        const cJSON *tc, *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        d->tool_calls = next;
        cJSON_ArrayForEach(tc, calls) to_call(tc, &next[d->n_tool_calls++]);
        next += d->n_tool_calls;
    }
    return c;
}

static inline void free_conversation(conversation *c) {
    free(c->msgs);
    free(c->calls);
}

#endif
