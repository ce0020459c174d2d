/* convert.h - what deepseek-convert's driver (convert.c: options, the tensor plan, the writer,
   the tokenizer, DeepSeek-V2/V3/V3.2) shares with the files describing further architectures
   (convert_dense.c: Qwen2, Llama, Qwen3, DeepSeek-MoE).

   An architecture is a conv_arch: the Hugging Face class that selects it, its GGUF name, and its
   functions for what differs between architectures: reading config.json, which tensors a layer
   has and their shapes, and the metadata keys. The rest (placing checkpoint tensors, checking
   them, stacking experts, streaming the output) is the driver's, for all of them. */
#ifndef DS_TOOLS_CONVERT_H
#define DS_TOOLS_CONVERT_H

#include "deepseek.h"
#include "errmsg.h"
#include "qmix.h"
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CONV_ERR_LEN 1024
#define conv_fail(err, ...) tool_fail(err, CONV_ERR_LEN, __VA_ARGS__)
/* Room for one more item of `size` bytes at the end of the growing array *items (*n of them,
   capacity *cap, doubling from 256): the new item, zeroed, with *n counted; NULL (err says so)
   when out of memory. */
static inline void *conv_push(void *items, size_t *n, size_t *cap, size_t size, char *err) {
    void **p = items;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 256;
        void *q = realloc(*p, c * size);
        if (!q) {
            conv_fail(err, "out of memory");
            return NULL;
        }
        *p = q;
        *cap = c;
    }
    void *item = (char *)*p + (*n)++ * size;
    memset(item, 0, size);
    return item;
}

/* conv_cfg_int: the key has no default, it must be there */
#define CONV_NO_DEFAULT INT64_MIN

typedef struct {
    const char *hf_dir, *out_path, *tok_dir, *name, *tok_pre;
    ds_type wtype;
    uint32_t file_type;
    const qmix_ftype *mix; /* a quantized file type, or NULL for f32/f16/bf16 */
    int mla_split, mtp, vocab_only, threads;
} options;

typedef struct {
    int set;
    double v;
} opt_f64;

enum { ROPE_NONE, ROPE_LINEAR, ROPE_YARN, ROPE_LLAMA3 };

/* generation_config.json's sampling defaults, which llama.cpp's converter copies to
   general.sampling.* */
typedef struct {
    int top_k_set;
    int64_t top_k;
    opt_f64 top_p, min_p, temp, repeat;
} sampling;

typedef struct conv_arch conv_arch;

typedef struct {
    const conv_arch *arch;
    int v32; /* DeepSeek-V3.2 (deepseek_v32): every layer has a lightning indexer; written as deepseek32 */
    int64_t n_layer, n_ctx, n_embd, n_ff, n_head, q_lora, kv_lora, nope, rope, vdim, n_vocab;
    int64_t n_head_kv, head_dim;          /* grouped-query attention (the dense architectures and DeepSeek-MoE) */
    int kv_set, head_dim_set;             /* config.json names num_key_value_heads / head_dim */
    int64_t idx_heads, idx_dim, idx_topk; /* the indexer's index_n_heads, index_head_dim, index_topk */
    int64_t n_expert, n_expert_used, n_group, topk_group, n_shared, n_ff_exp, n_dense, n_nextn;
    int64_t block_o, block_i, orig_ctx;
    double rms_eps;
    opt_f64 rope_theta, routed_scale, factor, yarn_ext, yarn_attn, beta_fast, beta_slow, mscale_all;
    opt_f64 low_freq, high_freq; /* llama3 rope scaling */
    int scaling;                 /* ROPE_* */
    int norm_topk, gating, tie;
    int64_t special_id[7]; /* config.json's *_token_id, -1 when absent */
    sampling samp;
} config;

/* A layer's tensors: the Hugging Face name after "model.layers.N." and the GGUF one after
   "blk.N." (convert.c's SLOTS); experts are kept apart. */
enum slot {
    S_ATTN_NORM,
    S_Q,
    S_Q_BIAS,
    S_K,
    S_K_BIAS,
    S_V,
    S_V_BIAS,
    S_Q_A,
    S_Q_A_NORM,
    S_Q_B,
    S_KV_A,
    S_KV_A_NORM,
    S_KV_B,
    S_Q_NORM,
    S_K_NORM,
    S_O,
    S_IDX_Q_B,
    S_IDX_K,
    S_IDX_K_NORM,
    S_IDX_K_NORM_B,
    S_IDX_PROJ,
    S_FFN_NORM,
    S_GATE,
    S_UP,
    S_DOWN,
    S_GATE_INP,
    S_EXP_B,
    S_GATE_SH,
    S_UP_SH,
    S_DOWN_SH,
    S_NX_EH,
    S_NX_EMBED,
    S_NX_ENORM,
    S_NX_HNORM,
    S_NX_HEAD,
    S_NX_HEAD_NORM,
    S_COUNT
};

typedef struct {
    const safetensors_tensor *slot[S_COUNT];
    const safetensors_tensor **experts; /* [3][n_expert]: gate, up, down */
    int any;
} layer_src;

/* How an output tensor is made: copied, one half of MLA's kv_b, experts stacked, q / k rows
   reordered for ggml's rope, or computed (llama3's rope frequency factors). */
typedef enum { K_PLAIN, K_KB, K_VB, K_EXPERTS, K_PERMUTE, K_ROPE_FREQS } src_kind;

#define CONV_NAME_LEN 128
#define CONV_MAX_NE 4

typedef struct {
    char name[CONV_NAME_LEN];
    ds_type type;
    int n_dims;
    int64_t ne[CONV_MAX_NE];
    src_kind kind;
    int64_t heads; /* K_PERMUTE: the heads whose rows are reordered */
    const safetensors_tensor *src;
    const safetensors_tensor *const *experts;
} out_tensor;

typedef struct {
    const options *opt;
    const config *cfg;
    safetensors_dir *st;
    const safetensors_tensor *embd, *norm, *head;
    layer_src *layers; /* n_layer + n_nextn */
    int64_t n_layer_all, n_mtp;
    size_t n_skipped;
    out_tensor *out;
    size_t n_out, cap_out;
} plan;

struct conv_arch {
    const char *hf;         /* config.json's architectures[0], as llama.cpp's converter registers it */
    const char *model_type; /* config.json's model_type, for configs without architectures */
    const char *name;       /* general.architecture */
    /* config.json's keys of this architecture (rms_norm_eps, *_token_id, quantization_config
       are read for all) */
    int (*read)(const cJSON *root, const char *path, config *c, char *err);
    /* whether layer il must have slot s (1), may have it (2) or must not (0) */
    int (*need)(const plan *p, int64_t il, int s);
    /* the Hugging Face shape of slot s into sh; its dimension count */
    int (*shape)(const config *c, int s, int64_t *sh);
    /* the model keys, after general.name */
    void (*meta)(ds_gguf_writer *w, const options *o, const config *c, const plan *p);
    int mla;     /* DeepSeek's multi-head latent attention: --mla applies, MTP layers may follow */
    int permute; /* q / k rows reordered for ggml's interleaved rope, as llama.cpp's LlamaModel.permute */
};

extern const conv_arch conv_qwen2, conv_llama, conv_qwen3, conv_deepseek;

/* DeepSeek-V4 (convert_v4.c, `deepseek4`): its own tensor plan and writer; tok writes the
   driver's tokenizer keys (NULL: no tokenizer). */
extern const conv_arch conv_deepseek4;
/* general.name when --name is not given: the checkpoint folder's last component. */
const char *conv_default_name(const char *dir, char *buf, size_t size);
int conv_v4_write(const options *o, const config *c, void (*tok)(ds_gguf_writer *w, const void *arg),
                  const void *tok_arg, char *err);

/* ---- config.json (convert.c) ---- */

/* An integer in [lo, hi]; absent or null gives dflt (or an error when CONV_NO_DEFAULT). */
int conv_cfg_int(const cJSON *o, const char *path, const char *key, int64_t lo, int64_t hi, int64_t dflt, int64_t *out,
                 char *err);
/* A finite number, or out->set = 0 when absent or null. */
int conv_cfg_num(const cJSON *o, const char *path, const char *key, opt_f64 *out, char *err);
/* rope_theta and rope_scaling (or rope_parameters) as llama.cpp's converter reads them */
int conv_cfg_rope(const cJSON *r, const char *path, config *c, char *err);
/* scoring_func: softmax (1) or sigmoid (2), 0 when absent */
int conv_cfg_gating(const cJSON *r, const char *path, config *c, char *err);
/* whether config.json says true (absent is false) */
int conv_json_true(const cJSON *o, const char *key);

/* ---- the tensor plan (convert.c) ---- */

int conv_is_moe_layer(const plan *p, int64_t il);
/* The norms around attention, and the feed-forward slots (dense, routed experts' router, shared
   experts) every architecture here names alike; -1 for any other slot. */
int conv_ffn_need(const plan *p, int64_t il, int s);
int conv_ffn_shape(const config *c, int s, int64_t *sh);

static inline int conv_shape1(int64_t *sh, int64_t a) {
    sh[0] = a;
    return 1;
}
static inline int conv_shape2(int64_t *sh, int64_t a, int64_t b) {
    sh[0] = a;
    sh[1] = b;
    return 2;
}

/* ---- metadata (convert.c): "<architecture>.<key>" ---- */

void conv_kv_u32(ds_gguf_writer *w, const config *c, const char *key, uint32_t v);
void conv_kv_f32(ds_gguf_writer *w, const config *c, const char *key, float v);
void conv_kv_str(ds_gguf_writer *w, const config *c, const char *key, const char *v);
void conv_kv_bool(ds_gguf_writer *w, const config *c, const char *key, int v);
/* rope.scaling.* and rope.freq_base, as llama.cpp's TextModel writes them */
void conv_meta_rope(ds_gguf_writer *w, const config *c);

#endif
