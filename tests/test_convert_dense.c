/* test_convert_dense - deepseek-convert on the R1 distills' architectures and DeepSeek-MoE
   (tests/hfgen.c's checkpoints, tests/data/distill/README.md): the qwen2 / llama / qwen3 /
   deepseek GGUF llama.cpp's converter writes and its loader reads.

   usage: test_convert_dense DEEPSEEK-CONVERT MODEL HF_DIR F32.gguf Q8_0.gguf Q4_K_M.gguf

   MODEL is qwen2, llama, qwen3 or deepseek; F32.gguf is the build's conversion of HF_DIR, the
   other two deepseek-quantize's copies of it. Checked, with expectations from llama.cpp's
   conversion/ and src/models/ and values from HF_DIR's files:
   - exactly llama.cpp's tensors: names, ggml shapes, F32; values equal to the checkpoint's, the
     q / k rows of llama and deepseek reordered as LlamaModel.permute does, llama's rope_freqs
     as LlamaModel.generate_extra_tensors computes them (here in double);
   - exactly llama.cpp's model keys with their values, its general.* and tokenizer keys
     (tokenizer.ggml.pre, BOS / EOS, add_bos) and generation_config.json's general.sampling.*;
   - --outtype q8_0 / q4_k_m equal deepseek-quantize's files byte for byte;
   - DeepSeek-Coder's linear rope scaling on the llama checkpoint, and bad configs refused with
     the key named.
   Metadata is read by a GGUF parser of this file's own, not the library's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "deepseek.h"
#include "safetensors.h"
#include "testutil.h"

#define PATH_LEN 1024

static const char *convert, *model, *hf, *f32_path, *q8_path, *q4_path;
static char dir[256];
static cJSON *cfg, *gen; /* HF_DIR's config.json and generation_config.json */

/* ================================================================== helpers */

static char *join(char *buf, const char *d, const char *name) {
    int n = snprintf(buf, PATH_LEN, "%s/%s", d, name);
    assert_true(n > 0 && n < PATH_LEN);
    return buf;
}

static char *read_text(const char *path) {
    size_t n = 0;
    char *text = (char *)slurp(path, &n);
    assert_non_null(text);
    text = realloc(text, n + 1);
    assert_non_null(text);
    text[n] = '\0';
    return text;
}

static cJSON *read_json(const char *d, const char *name) {
    char p[PATH_LEN];
    char *text = read_text(join(p, d, name));
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("config lacks %s", key);
    return v->valuedouble;
}

static int has(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key) != NULL; }

static int is(const char *name) { return strcmp(model, name) == 0; }

/* Exit status of the shell command; its output goes to dir/log. */
static int run(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    size_t n = strlen(cmd);
    snprintf(cmd + n, sizeof cmd - n, " > '%s/log' 2>&1", dir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int log_has(const char *needle) {
    char p[PATH_LEN];
    char *text = read_text(join(p, dir, "log"));
    int found = strstr(text, needle) != NULL;
    if (!found) fprintf(stderr, "output lacks '%s':\n%s", needle, text);
    free(text);
    return found;
}

/* ================================================================== a GGUF's metadata, read here */

enum { G_U8, G_I8, G_U16, G_I16, G_U32, G_I32, G_F32, G_BOOL, G_STR, G_ARR, G_U64, G_I64, G_F64 };

typedef struct {
    char key[128];
    uint32_t type, arr_type;
    double v;         /* numbers and bools */
    const uint8_t *s; /* a string's bytes, or an array's first element */
    uint64_t len;     /* a string's length, an array's count */
} kv;

typedef struct {
    uint8_t *file;
    kv *kv;
    uint64_t n_kv;
} meta;

static size_t scalar_size(uint32_t t) {
    static const size_t S[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    assert_true(t < 13 && t != G_STR && t != G_ARR);
    return S[t];
}

static double scalar(const uint8_t *p, uint32_t t) {
    union {
        uint8_t b[8];
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint64_t u64;
        int64_t i64;
        double f64;
    } u;
    memcpy(u.b, p, scalar_size(t));
    switch (t) {
    case G_U8:
    case G_BOOL: return u.u8;
    case G_I8: return u.i8;
    case G_U16: return u.u16;
    case G_I16: return u.i16;
    case G_U32: return u.u32;
    case G_I32: return u.i32;
    case G_F32: return u.f32;
    case G_U64: return (double)u.u64;
    case G_I64: return (double)u.i64;
    default: return u.f64;
    }
}

static uint64_t u64_at(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* p past one value of type t (strings and arrays of strings walked) */
static const uint8_t *skip_value(const uint8_t *p, uint32_t t) {
    if (t == G_STR) return p + 8 + u64_at(p);
    assert_int_not_equal(t, G_ARR);
    return p + scalar_size(t);
}

static meta read_meta(const char *path) {
    size_t n;
    meta m = {slurp(path, &n), NULL, 0};
    assert_non_null(m.file);
    const uint8_t *p = m.file;
    assert_memory_equal(p, "GGUF", 4);
    m.n_kv = u64_at(p + 16);
    p += 24;
    m.kv = calloc(m.n_kv, sizeof *m.kv);
    for (uint64_t i = 0; i < m.n_kv; i++) {
        kv *e = &m.kv[i];
        uint64_t kl = u64_at(p);
        assert_true(kl < sizeof e->key);
        memcpy(e->key, p + 8, kl);
        p += 8 + kl;
        memcpy(&e->type, p, 4);
        p += 4;
        if (e->type == G_STR) {
            e->len = u64_at(p);
            e->s = p + 8;
            p += 8 + e->len;
        } else if (e->type == G_ARR) {
            memcpy(&e->arr_type, p, 4);
            e->len = u64_at(p + 4);
            e->s = p + 12;
            p += 12;
            for (uint64_t k = 0; k < e->len; k++) p = skip_value(p, e->arr_type);
        } else {
            e->v = scalar(p, e->type);
            p += scalar_size(e->type);
        }
    }
    return m;
}

static const kv *find_kv(const meta *m, const char *key) {
    for (uint64_t i = 0; i < m->n_kv; i++)
        if (strcmp(m->kv[i].key, key) == 0) return &m->kv[i];
    return NULL;
}

static const kv *want_kv(const meta *m, const char *key, uint32_t type) {
    const kv *e = find_kv(m, key);
    if (!e) fail_msg("no metadata %s", key);
    if (e->type != type) fail_msg("%s has GGUF type %u, expected %u", key, e->type, type);
    return e;
}

static void want_str(const meta *m, const char *key, const char *s) {
    const kv *e = want_kv(m, key, G_STR);
    if (e->len != strlen(s) || memcmp(e->s, s, e->len) != 0)
        fail_msg("%s is '%.*s', expected '%s'", key, (int)e->len, (const char *)e->s, s);
}

/* element i of a string array */
static void array_str(const kv *e, uint64_t i, const uint8_t **s, uint64_t *len) {
    const uint8_t *p = e->s;
    assert_true(e->type == G_ARR && e->arr_type == G_STR && i < e->len);
    for (uint64_t k = 0; k < i; k++) p = skip_value(p, G_STR);
    *len = u64_at(p);
    *s = p + 8;
}

/* ================================================================== the model keys llama.cpp writes */

typedef struct {
    const char *key;
    uint32_t type;
    double v;
    const char *s;
} expect;

typedef struct {
    expect e[40];
    int n;
} expects;

static void add(expects *x, const char *key, uint32_t type, double v, const char *s) {
    assert_true(x->n < 40);
    x->e[x->n++] = (expect){key, type, v, s};
}

/* TextModel.set_gguf_parameters and each model class's own, from config.json */
static void model_keys(expects *x) {
    int64_t H = (int64_t)num(cfg, "hidden_size"), nh = (int64_t)num(cfg, "num_attention_heads");
    add(x, "block_count", G_U32, num(cfg, "num_hidden_layers"), NULL);
    add(x, "context_length", G_U32, num(cfg, "max_position_embeddings"), NULL);
    add(x, "embedding_length", G_U32, H, NULL);
    add(x, "feed_forward_length", G_U32, num(cfg, "intermediate_size"), NULL);
    add(x, "attention.head_count", G_U32, nh, NULL);
    add(x, "attention.head_count_kv", G_U32, num(cfg, "num_key_value_heads"), NULL);
    add(x, "rope.freq_base", G_F32, num(cfg, "rope_theta"), NULL);
    add(x, "attention.layer_norm_rms_epsilon", G_F32, num(cfg, "rms_norm_eps"), NULL);
    if (is("qwen3")) { /* yarn, and the head size from head_dim */
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(cfg, "rope_scaling");
        add(x, "rope.scaling.type", G_STR, 0, "yarn");
        add(x, "rope.scaling.factor", G_F32, num(rs, "factor"), NULL);
        add(x, "rope.scaling.original_context_length", G_U32, num(rs, "original_max_position_embeddings"), NULL);
        add(x, "rope.scaling.yarn_attn_factor", G_F32, num(rs, "attn_factor"), NULL);
        add(x, "attention.key_length", G_U32, num(cfg, "head_dim"), NULL);
        add(x, "attention.value_length", G_U32, num(cfg, "head_dim"), NULL);
    }
    if (is("llama")) {
        add(x, "vocab_size", G_U32, num(cfg, "vocab_size"), NULL);
        add(x, "rope.dimension_count", G_U32, (double)(H / nh), NULL);
    }
    if (is("deepseek")) {
        add(x, "expert_count", G_U32, num(cfg, "n_routed_experts"), NULL);
        add(x, "expert_used_count", G_U32, num(cfg, "num_experts_per_tok"), NULL);
        add(x, "expert_gating_func", G_U32, 1, NULL); /* softmax */
        add(x, "rope.dimension_count", G_U32, (double)(H / nh), NULL);
        add(x, "rope.scaling.type", G_STR, 0, "none");
        add(x, "leading_dense_block_count", G_U32, num(cfg, "first_k_dense_replace"), NULL);
        add(x, "vocab_size", G_U32, num(cfg, "vocab_size"), NULL);
        add(x, "expert_feed_forward_length", G_U32, num(cfg, "moe_intermediate_size"), NULL);
        add(x, "expert_weights_scale", G_F32, 1.0, NULL);
        add(x, "expert_shared_count", G_U32, num(cfg, "n_shared_experts"), NULL);
    }
}

static void check_value(const meta *m, const char *key, const expect *e) {
    const kv *k = want_kv(m, key, e->type);
    if (e->type == G_STR) want_str(m, key, e->s);
    else if (e->type == G_F32 && k->v != (double)(float)e->v) fail_msg("%s = %.9g, expected %.9g", key, k->v, e->v);
    else if (e->type != G_F32 && k->v != e->v) fail_msg("%s = %.0f, expected %.0f", key, k->v, e->v);
}

/* Every expected "<arch>." key with its value, and no other key outside general.* and tokenizer.* */
static void check_model_keys(const meta *m) {
    expects x = {0};
    char key[160];
    model_keys(&x);
    want_str(m, "general.architecture", model);
    for (int i = 0; i < x.n; i++) {
        snprintf(key, sizeof key, "%s.%s", model, x.e[i].key);
        check_value(m, key, &x.e[i]);
    }
    int n_arch = 0;
    for (uint64_t i = 0; i < m->n_kv; i++) {
        const char *k = m->kv[i].key;
        int mine = strncmp(k, model, strlen(model)) == 0 && k[strlen(model)] == '.';
        if (!mine && strncmp(k, "general.", 8) != 0 && strncmp(k, "tokenizer.", 10) != 0) fail_msg("key %s", k);
        n_arch += mine;
    }
    assert_int_equal(n_arch, x.n);
}

/* generation_config.json's sampling defaults, as gguf-py's Metadata copies them */
static void check_general(const meta *m) {
    static const struct {
        const char *hf, *gguf;
        uint32_t type;
    } S[] = {{"top_k", "general.sampling.top_k", G_I32},
             {"top_p", "general.sampling.top_p", G_F32},
             {"temperature", "general.sampling.temp", G_F32},
             {"repetition_penalty", "general.sampling.penalty_repeat", G_F32}};
    want_str(m, "general.type", "model");
    assert_non_null(find_kv(m, "general.name"));
    assert_int_equal(want_kv(m, "general.quantization_version", G_U32)->v, 2);
    assert_int_equal(want_kv(m, "general.file_type", G_U32)->v, 0);
    for (size_t i = 0; i < sizeof S / sizeof S[0]; i++) {
        if (has(gen, S[i].hf)) check_value(m, S[i].gguf, &(expect){S[i].gguf, S[i].type, num(gen, S[i].hf), NULL});
        else assert_null(find_kv(m, S[i].gguf));
    }
}

/* The pre-tokenizer this runtime and llama.cpp name, BOS / EOS and whether BOS is added, as
   gguf-py's SpecialVocab reads tokenizer_config.json, tokenizer.json and config.json. */
static void check_tokenizer(const meta *m) {
    static const struct {
        const char *model, *pre, *bos, *eos;
        int add_bos;
    } T[] = {{"qwen2", "qwen2", "<|endoftext|>", "<|im_end|>", 0},
             {"llama", "llama-bpe", "<|begin_of_text|>", "<|eot_id|>", 1},
             {"qwen3", "deepseek-v3",
              "<\xef\xbd\x9c"
              "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
              "<\xef\xbd\x9c"
              "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
              1},
             {"deepseek", "deepseek-llm",
              "<\xef\xbd\x9c"
              "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
              "<\xef\xbd\x9c"
              "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
              1}};
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        if (!is(T[i].model)) continue;
        const kv *tokens = want_kv(m, "tokenizer.ggml.tokens", G_ARR);
        const char *want[2] = {T[i].bos, T[i].eos},
                   *keys[2] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"};
        want_str(m, "tokenizer.ggml.model", "gpt2");
        want_str(m, "tokenizer.ggml.pre", T[i].pre);
        assert_int_equal(tokens->len, num(cfg, "vocab_size")); /* padded to the model's vocabulary */
        for (int k = 0; k < 2; k++) {
            const uint8_t *s;
            uint64_t len;
            array_str(tokens, (uint64_t)want_kv(m, keys[k], G_U32)->v, &s, &len);
            if (len != strlen(want[k]) || memcmp(s, want[k], len) != 0)
                fail_msg("%s is '%.*s', expected '%s'", keys[k], (int)len, (const char *)s, want[k]);
        }
        assert_int_equal(want_kv(m, "tokenizer.ggml.add_bos_token", G_BOOL)->v, T[i].add_bos);
        return;
    }
    fail_msg("model %s?", model);
}

/* ================================================================== tensors */

typedef struct {
    char name[96], hf[128];
    int n_dims;
    int64_t ne[3];
    int heads; /* q / k rows reordered over this many heads (llama, deepseek) */
} want_tensor;

typedef struct {
    want_tensor t[256];
    int n;
} tensor_list;

static want_tensor *push(tensor_list *L, const char *name, const char *hf_name, int nd, int64_t a, int64_t b,
                         int64_t c) {
    assert_true(L->n < 256);
    want_tensor *t = &L->t[L->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->hf, sizeof t->hf, "%s", hf_name ? hf_name : "");
    t->n_dims = nd;
    t->ne[0] = a;
    t->ne[1] = b;
    t->ne[2] = c;
    return t;
}

/* blk.L.<gguf> from model.layers.L.<hf>, ggml shape */
static want_tensor *layer(tensor_list *L, int il, const char *gguf, const char *hf_name, int nd, int64_t a, int64_t b) {
    char n[96], h[128];
    snprintf(n, sizeof n, "blk.%d.%s", il, gguf);
    snprintf(h, sizeof h, "model.layers.%d.%s", il, hf_name);
    return push(L, n, h, nd, a, b, 1);
}

static void ffn(tensor_list *L, int il, int64_t H, int64_t F, const char *gguf_suffix, const char *hf_prefix) {
    char g[64], h[96];
    const char *parts[3][2] = {{"ffn_gate", "gate_proj"}, {"ffn_up", "up_proj"}, {"ffn_down", "down_proj"}};
    for (int k = 0; k < 3; k++) {
        snprintf(g, sizeof g, "%s%s.weight", parts[k][0], gguf_suffix);
        snprintf(h, sizeof h, "%s.%s.weight", hf_prefix, parts[k][1]);
        layer(L, il, g, h, 2, k == 2 ? F : H, k == 2 ? H : F);
    }
}

static void attention_tensors(tensor_list *L, int il, int64_t H, int64_t nh, int64_t nkv, int64_t hd) {
    int perm = is("llama") || is("deepseek");
    layer(L, il, "attn_norm.weight", "input_layernorm.weight", 1, H, 1);
    layer(L, il, "attn_q.weight", "self_attn.q_proj.weight", 2, H, nh * hd)->heads = perm ? (int)nh : 0;
    layer(L, il, "attn_k.weight", "self_attn.k_proj.weight", 2, H, nkv * hd)->heads = perm ? (int)nkv : 0;
    layer(L, il, "attn_v.weight", "self_attn.v_proj.weight", 2, H, nkv * hd);
    layer(L, il, "attn_output.weight", "self_attn.o_proj.weight", 2, nh * hd, H);
    if (is("qwen2")) {
        layer(L, il, "attn_q.bias", "self_attn.q_proj.bias", 1, nh * hd, 1);
        layer(L, il, "attn_k.bias", "self_attn.k_proj.bias", 1, nkv * hd, 1);
        layer(L, il, "attn_v.bias", "self_attn.v_proj.bias", 1, nkv * hd, 1);
    }
    if (is("qwen3")) {
        layer(L, il, "attn_q_norm.weight", "self_attn.q_norm.weight", 1, hd, 1);
        layer(L, il, "attn_k_norm.weight", "self_attn.k_norm.weight", 1, hd, 1);
    }
    layer(L, il, "ffn_norm.weight", "post_attention_layernorm.weight", 1, H, 1);
}

/* llama.cpp's tensors for this config (src/models/<arch>.cpp's create_tensor shapes) */
static void expected_tensors(tensor_list *L) {
    int64_t H = (int64_t)num(cfg, "hidden_size"), nh = (int64_t)num(cfg, "num_attention_heads");
    int64_t nkv = (int64_t)num(cfg, "num_key_value_heads"), V = (int64_t)num(cfg, "vocab_size");
    int64_t hd = has(cfg, "head_dim") ? (int64_t)num(cfg, "head_dim") : H / nh,
            F = (int64_t)num(cfg, "intermediate_size");
    int n_layer = (int)num(cfg, "num_hidden_layers"),
        dense = is("deepseek") ? (int)num(cfg, "first_k_dense_replace") : n_layer;
    if (is("llama")) push(L, "rope_freqs.weight", NULL, 1, hd / 2, 1, 1);
    push(L, "token_embd.weight", "model.embed_tokens.weight", 2, H, V, 1);
    for (int il = 0; il < n_layer; il++) {
        attention_tensors(L, il, H, nh, nkv, hd);
        if (il < dense) {
            ffn(L, il, H, F, "", "mlp");
            continue;
        }
        int64_t E = (int64_t)num(cfg, "n_routed_experts"), Fe = (int64_t)num(cfg, "moe_intermediate_size");
        layer(L, il, "ffn_gate_inp.weight", "mlp.gate.weight", 2, H, E);
        for (int k = 0; k < 3; k++) { /* stacked experts: ne[2] is the expert */
            static const char *const names[3] = {"ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"};
            want_tensor *t = layer(L, il, names[k], "", 3, k == 2 ? Fe : H, k == 2 ? H : Fe);
            t->ne[2] = E;
        }
        ffn(L, il, H, Fe * (int64_t)num(cfg, "n_shared_experts"), "_shexp", "mlp.shared_experts");
    }
    push(L, "output_norm.weight", "model.norm.weight", 1, H, 1, 1);
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "tie_word_embeddings")))
        push(L, "output.weight", "lm_head.weight", 2, H, V, 1);
}

static float *source(const safetensors_file *st, const char *name, size_t n) {
    char err[256];
    const safetensors_tensor *t = safetensors_find(st, name);
    if (!t) fail_msg("checkpoint lacks %s", name);
    assert_int_equal((size_t)t->n_elements, n);
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    assert_int_equal(safetensors_read_f32(t, v, n, err, sizeof err), 0);
    return v;
}

static void same_floats(const char *name, const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], 4) != 0)
            fail_msg("%s[%zu] = %.9g, checkpoint %.9g", name, i, (double)got[i], (double)want[i]);
}

/* LlamaModel.permute: within each head, row 2j + s of the GGUF is row s * d/2 + j of the
   checkpoint (a 1-D bias permutes alike, a "row" being one value) */
static float *permuted(const float *v, int64_t rows, int64_t cols, int heads) {
    int64_t hd = rows / heads, half = hd / 2;
    float *out = malloc((size_t)(rows * cols) * sizeof *out);
    assert_non_null(out);
    for (int h = 0; h < heads; h++)
        for (int64_t j = 0; j < half; j++)
            for (int s = 0; s < 2; s++)
                memcpy(out + (h * hd + 2 * j + s) * cols, v + (h * hd + s * half + j) * cols, (size_t)cols * 4);
    return out;
}

/* LlamaModel.generate_extra_tensors, in double */
static void check_rope_freqs(const ds_gguf_tensor_info *t) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(cfg, "rope_scaling");
    double base = num(cfg, "rope_theta"), factor = num(rs, "factor"), lo = num(rs, "low_freq_factor");
    double hi = num(rs, "high_freq_factor"), old = num(rs, "original_max_position_embeddings");
    int64_t dim = 2 * t->ne[0];
    const float *got = t->data;
    int seen[3] = {0, 0, 0};
    for (int64_t i = 0; i < t->ne[0]; i++) {
        double wave = 2 * M_PI * pow(base, (double)(2 * i) / (double)dim), smooth = (old / wave - lo) / (hi - lo);
        double want = wave < old / hi ? 1 : wave > old / lo ? factor : 1 / ((1 - smooth) / factor + smooth);
        seen[want == 1 ? 0 : want == factor ? 1 : 2]++;
        if (fabs(got[i] - want) > 1e-6 * want)
            fail_msg("rope_freqs[%lld] = %.9g, expected %.9g", (long long)i, got[i], want);
    }
    /* the generated model has frequencies in all three ranges */
    assert_true(seen[0] && seen[1] && seen[2]);
}

static void check_values(const safetensors_file *st, const want_tensor *w, const ds_gguf_tensor_info *t) {
    size_t n = (size_t)(w->ne[0] * w->ne[1] * w->ne[2]);
    assert_int_equal(t->size, n * 4);
    if (!w->hf[0] && w->n_dims == 1) return check_rope_freqs(t);
    if (w->n_dims == 3) { /* stacked experts */
        int il;
        char k[64], name[160];
        assert_int_equal(sscanf(w->name, "blk.%d.%63[^.]", &il, k), 2);
        const char *proj = strstr(k, "gate") ? "gate_proj" : strstr(k, "up") ? "up_proj" : "down_proj";
        size_t per = n / (size_t)w->ne[2];
        for (int64_t e = 0; e < w->ne[2]; e++) {
            snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%lld.%s.weight", il, (long long)e, proj);
            float *v = source(st, name, per);
            same_floats(w->name, (const float *)t->data + e * per, v, per);
            free(v);
        }
        return;
    }
    float *v = source(st, w->hf, n);
    if (w->heads) {
        float *p = permuted(v, w->n_dims == 2 ? w->ne[1] : w->ne[0], w->n_dims == 2 ? w->ne[0] : 1, w->heads);
        free(v);
        v = p;
    }
    same_floats(w->name, t->data, v, n);
    free(v);
}

static void tensors_and_values(void **state) {
    (void)state;
    char err[256], p[PATH_LEN];
    tensor_list L = {0};
    ds_gguf *g = NULL;
    safetensors_file *st = NULL;
    expected_tensors(&L);
    assert_int_equal(ds_gguf_open(f32_path, &g, err, sizeof err), DS_OK);
    assert_int_equal(safetensors_open(join(p, hf, "model.safetensors"), &st, err, sizeof err), 0);
    assert_int_equal(ds_gguf_n_tensors(g), L.n);
    for (int i = 0; i < L.n; i++) {
        ds_gguf_tensor_info t;
        size_t k = 0;
        for (; k < ds_gguf_n_tensors(g); k++) {
            ds_gguf_tensor(g, k, &t);
            if (strcmp(t.name, L.t[i].name) == 0) break;
        }
        if (k == ds_gguf_n_tensors(g)) fail_msg("no tensor %s", L.t[i].name);
        if (t.type != DS_TYPE_F32) fail_msg("%s is %s", t.name, ds_type_name(t.type));
        assert_int_equal(t.n_dims, L.t[i].n_dims);
        for (int d = 0; d < 3; d++)
            if (t.ne[d] != L.t[i].ne[d])
                fail_msg("%s ne[%d] = %lld, expected %lld", t.name, d, (long long)t.ne[d], (long long)L.t[i].ne[d]);
        check_values(st, &L.t[i], &t);
    }
    safetensors_close(st);
    ds_gguf_close(g);
}

static void metadata(void **state) {
    (void)state;
    meta m = read_meta(f32_path);
    check_model_keys(&m);
    check_general(&m);
    check_tokenizer(&m);
    free(m.kv);
    free(m.file);
}

/* convert --outtype = convert to F32 + deepseek-quantize (which tests/data/distill's SHA256SUMS
   hold to llama-quantize's bytes) */
static void quantized_outtypes(void **state) {
    (void)state;
    const char *types[2] = {"q8_0", "q4_k_m"}, *files[2] = {q8_path, q4_path};
    char out[PATH_LEN];
    for (int i = 0; i < 2; i++) {
        join(out, dir, "q.gguf");
        assert_int_equal(run("'%s' '%s' -o '%s' --outtype %s --name %s -t 1", convert, hf, out, types[i], model), 0);
        assert_same_file(out, files[i]);
    }
}

/* ================================================================== config variants */

/* dir/variant: HF_DIR's files (linked) with config.json's key set to the JSON value (NULL: removed) */
static const char *variant(const char *key, const char *value) {
    static char vd[PATH_LEN];
    char a[PATH_LEN], b[PATH_LEN];
    static const char *const files[] = {"model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    join(vd, dir, "variant");
    if (access(vd, F_OK) != 0) {
        assert_int_equal(mkdir(vd, 0755), 0);
        for (int i = 0; i < 3; i++) {
            if (realpath(join(a, hf, files[i]), b) == NULL) fail_msg("%s?", a);
            assert_int_equal(symlink(b, join(a, vd, files[i])), 0);
        }
    }
    cJSON *c = cJSON_Duplicate(cfg, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(c, key);
    if (value) {
        cJSON *v = cJSON_Parse(value);
        assert_non_null(v);
        cJSON_AddItemToObject(c, key, v);
    }
    char *text = cJSON_Print(c);
    FILE *fp = fopen(join(a, vd, "config.json"), "w");
    assert_true(fp && fputs(text, fp) >= 0 && fclose(fp) == 0);
    free(text);
    cJSON_Delete(c);
    return vd;
}

/* DeepSeek-Coder's LlamaForCausalLM: linear rope scaling is two keys, and no rope_freqs */
static void linear_rope_scaling(void **state) {
    (void)state;
    if (!is("llama")) skip();
    char out[PATH_LEN];
    const char *vd = variant("rope_scaling", "{\"factor\": 4.0, \"type\": \"linear\"}");
    join(out, dir, "linear.gguf");
    assert_int_equal(run("'%s' '%s' -o '%s' -t 1", convert, vd, out), 0);
    meta m = read_meta(out);
    want_str(&m, "llama.rope.scaling.type", "linear");
    assert_true(want_kv(&m, "llama.rope.scaling.factor", G_F32)->v == 4.0);
    free(m.kv);
    free(m.file);
    char err[256];
    ds_gguf *g = NULL;
    assert_int_equal(ds_gguf_open(out, &g, err, sizeof err), DS_OK);
    for (size_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        ds_gguf_tensor_info t;
        ds_gguf_tensor(g, i, &t);
        assert_string_not_equal(t.name, "rope_freqs.weight");
    }
    ds_gguf_close(g);
}

typedef struct {
    const char *model, *key, *value, *needle;
} bad;

/* What llama.cpp's converter would write as another model, or cannot, is refused naming the key */
static const bad BAD[] = {
    {"qwen2", "head_dim", "64", "head_dim 64 x num_attention_heads 14 is not hidden_size 448"},
    {"qwen2", "rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8}",
     "'llama3' is not supported for Qwen2ForCausalLM"},
    {"qwen2", "num_key_value_heads", "4", "num_attention_heads 14 is not a multiple of num_key_value_heads 4"},
    {"qwen2", "num_key_value_heads", "28", "'num_key_value_heads' must be an integer in [1, 14]"},
    {"qwen2", "tie_word_embeddings", "false", "no lm_head.weight, and config.json's tie_word_embeddings is not true"},
    {"qwen2", "architectures", "[\"Qwen3ForCausalLM\"]",
     "'model.layers.0.self_attn.q_proj.bias' does not belong in layer 0"},
    {"llama", "attention_bias", "true", "'attention_bias' true is not supported for LlamaForCausalLM"},
    {"llama", "mlp_bias", "true", "'mlp_bias' true is not supported for LlamaForCausalLM"},
    {"llama", "rope_scaling",
     "{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 2, \"high_freq_factor\": 2}",
     "low_freq_factor equals high_freq_factor"},
    {"llama", "rope_scaling", "{\"type\": \"dynamic\", \"factor\": 2}", "rope_scaling type 'dynamic' is not supported"},
    {"llama", "vocab_size", NULL, "'vocab_size' is missing"},
    {"qwen3", "attention_bias", "true", "'attention_bias' true is not supported for Qwen3ForCausalLM"},
    {"qwen3", "head_dim", "32", "'model.layers.0.self_attn.q_proj.weight' has shape [512, 256], expected [256, 256]"},
    {"qwen3", "rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 4}",
     "'original_max_position_embeddings' is missing"},
    {"qwen3", "rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8}",
     "'llama3' is not supported for Qwen3ForCausalLM"},
    {"qwen3", "head_dim", "33", "head_dim 33 is odd"},
    {"deepseek", "norm_topk_prob", "true", "'norm_topk_prob' true is not supported for DeepseekForCausalLM"},
    {"deepseek", "scoring_func", "\"sigmoid\"", "scoring_func 'sigmoid' is not supported for DeepseekForCausalLM"},
    {"deepseek", "first_k_dense_replace", NULL, "'first_k_dense_replace' is missing"},
    {"deepseek", "moe_layer_freq", "2", "moe_layer_freq 2 is not supported"},
    {"deepseek", "rope_scaling", "{\"type\": \"linear\", \"factor\": 4}",
     "rope_scaling is not supported for DeepseekForCausalLM"},
    {"deepseek", "n_routed_experts", "4",
     "'model.layers.1.mlp.experts.4.down_proj.weight' is not an expert of this MoE model"},
};

static void bad_configs(void **state) {
    (void)state;
    char out[PATH_LEN];
    int n = 0;
    join(out, dir, "bad.gguf");
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        if (!is(BAD[i].model)) continue;
        const char *vd = variant(BAD[i].key, BAD[i].value);
        if (run("'%s' '%s' -o '%s' -t 1", convert, vd, out) != 1 || !log_has(BAD[i].needle))
            fail_msg("%s = %s: expected a refusal with '%s'", BAD[i].key, BAD[i].value ? BAD[i].value : "(none)",
                     BAD[i].needle);
        assert_int_not_equal(access(out, F_OK), 0); /* nothing written */
        n++;
    }
    assert_true(n >= 4);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: test_convert_dense DEEPSEEK-CONVERT MODEL HF_DIR F32.gguf Q8_0.gguf Q4_K_M.gguf\n");
        return 2;
    }
    convert = argv[1];
    model = argv[2];
    hf = argv[3];
    f32_path = argv[4];
    q8_path = argv[5];
    q4_path = argv[6];
    snprintf(dir, sizeof dir, "test_convert_dense.XXXXXX");
    if (!mkdtemp(dir)) return 2;
    cfg = read_json(hf, "config.json");
    gen = read_json(hf, "generation_config.json");
    const struct CMUnitTest tests[] = {cmocka_unit_test(tensors_and_values), cmocka_unit_test(metadata),
                                       cmocka_unit_test(quantized_outtypes), cmocka_unit_test(linear_rope_scaling),
                                       cmocka_unit_test(bad_configs)};
    int rc = cmocka_run_group_tests_name(model, tests, NULL, NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    cJSON_Delete(cfg);
    cJSON_Delete(gen);
    return rc;
}
