/* convert_dense.c - deepseek-convert's architectures beside DeepSeek-V2/V3 (convert.h): Qwen2,
   Llama and Qwen3, which the DeepSeek-R1 distills (and DeepSeek LLM / Coder, LlamaForCausalLM)
   are, and DeepSeek-MoE (DeepseekForCausalLM, deepseek-moe-16b). Each writes what llama.cpp's
   converter writes (conversion/qwen.py Qwen2Model / Qwen3Model, llama.py LlamaModel,
   deepseek.py DeepseekModel, their keys on top of base.py's TextModel.set_gguf_parameters) for
   what llama.cpp's loaders read (src/models/{qwen2,llama,qwen3,deepseek}.cpp).

   What llama.cpp's converter would write but its loader would then run as another model is
   refused here instead, naming the key: Qwen2 and DeepSeek-MoE with a head size other than
   hidden_size / num_attention_heads (their attn_output must be square there), Qwen3 and Llama
   with attention biases (llama.cpp's qwen3 has none; Llama's are not implemented here), Llama's
   MLP biases, and DeepSeek-MoE routing other than softmax over unnormalized top-k weights
   without rope scaling (its graph hardcodes those). */
#include "convert.h"

#include <string.h>

/* ================================================================== config.json */

/* Multi-head attention's shape, as TextModel reads it: num_key_value_heads defaults to the heads,
   head_dim to hidden_size / num_attention_heads (the size llama.cpp assumes when no key_length
   is written). */
static int attn_dims(const cJSON *r, const char *p, config *c, char *err) {
    c->kv_set = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(r, "num_key_value_heads"));
    c->head_dim_set = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(r, "head_dim"));
    if (conv_cfg_int(r, p, "num_attention_heads", 1, 1 << 16, CONV_NO_DEFAULT, &c->n_head, err) ||
        conv_cfg_int(r, p, "num_key_value_heads", 1, c->n_head, c->n_head, &c->n_head_kv, err))
        return -1;
    if (!c->head_dim_set && c->n_embd % c->n_head != 0)
        return conv_fail(err, "%s: hidden_size %lld is not a multiple of num_attention_heads %lld", p,
                         (long long)c->n_embd, (long long)c->n_head);
    if (conv_cfg_int(r, p, "head_dim", 2, 1 << 16, c->n_embd / c->n_head, &c->head_dim, err)) return -1;
    if (c->n_head % c->n_head_kv != 0)
        return conv_fail(err, "%s: num_attention_heads %lld is not a multiple of num_key_value_heads %lld", p,
                         (long long)c->n_head, (long long)c->n_head_kv);
    if (c->head_dim % 2 != 0) /* rope turns pairs */
        return conv_fail(err, "%s: head_dim %lld is odd", p, (long long)c->head_dim);
    return 0;
}

static int dense_dims(const cJSON *r, const char *p, config *c, char *err) {
    if (conv_cfg_int(r, p, "num_hidden_layers", 1, 4096, CONV_NO_DEFAULT, &c->n_layer, err) ||
        conv_cfg_int(r, p, "max_position_embeddings", 1, UINT32_MAX, CONV_NO_DEFAULT, &c->n_ctx, err) ||
        conv_cfg_int(r, p, "hidden_size", 1, 1 << 20, CONV_NO_DEFAULT, &c->n_embd, err) ||
        conv_cfg_int(r, p, "intermediate_size", 1, 1 << 24, CONV_NO_DEFAULT, &c->n_ff, err) ||
        attn_dims(r, p, c, err) || conv_cfg_int(r, p, "vocab_size", 1, INT32_MAX, CONV_NO_DEFAULT, &c->n_vocab, err) ||
        conv_cfg_rope(r, p, c, err))
        return -1;
    c->n_dense = c->n_layer;
    c->n_expert_used = c->n_group = c->topk_group = -1;
    c->tie = conv_json_true(r, "tie_word_embeddings");
    return 0;
}

/* A key whose true value would make another model than llama.cpp's graph computes. */
static int refuse_true(const cJSON *r, const char *p, const char *key, const config *c, char *err) {
    if (!conv_json_true(r, key)) return 0;
    return conv_fail(err, "%s: '%s' true is not supported for %s", p, key, c->arch->hf);
}

static int refuse_llama3(const char *p, const config *c, char *err) {
    if (c->scaling != ROPE_LLAMA3) return 0;
    return conv_fail(err, "%s: rope_scaling type 'llama3' is not supported for %s (only LlamaForCausalLM has it)", p,
                     c->arch->hf);
}

/* llama.cpp's qwen2 and deepseek graphs take attn_output as n_embd x n_embd. */
static int square_heads(const char *p, const config *c, char *err) {
    if (c->head_dim * c->n_head == c->n_embd) return 0;
    return conv_fail(err,
                     "%s: head_dim %lld x num_attention_heads %lld is not hidden_size %lld, which llama.cpp's %s "
                     "needs",
                     p, (long long)c->head_dim, (long long)c->n_head, (long long)c->n_embd, c->arch->name);
}

static int qwen2_read(const cJSON *r, const char *p, config *c, char *err) {
    return dense_dims(r, p, c, err) || refuse_llama3(p, c, err) || square_heads(p, c, err) ? -1 : 0;
}

static int qwen3_read(const cJSON *r, const char *p, config *c, char *err) {
    return dense_dims(r, p, c, err) || refuse_llama3(p, c, err) || refuse_true(r, p, "attention_bias", c, err) ? -1 : 0;
}

static int llama_read(const cJSON *r, const char *p, config *c, char *err) {
    return dense_dims(r, p, c, err) || refuse_true(r, p, "attention_bias", c, err) ||
                   refuse_true(r, p, "mlp_bias", c, err)
               ? -1
               : 0;
}

/* DeepseekMoE's routing as llama.cpp's deepseek graph computes it: softmax, top-k weights as
   they are, one MoE layer after every dense lead. */
static int deepseek_routing(const cJSON *r, const char *p, config *c, char *err) {
    int64_t freq = 1;
    if (conv_cfg_int(r, p, "n_routed_experts", 1, 1 << 16, CONV_NO_DEFAULT, &c->n_expert, err) ||
        conv_cfg_int(r, p, "num_experts_per_tok", 1, c->n_expert, CONV_NO_DEFAULT, &c->n_expert_used, err) ||
        conv_cfg_int(r, p, "n_shared_experts", 0, 1 << 16, CONV_NO_DEFAULT, &c->n_shared, err) ||
        conv_cfg_int(r, p, "moe_intermediate_size", 1, 1 << 24, CONV_NO_DEFAULT, &c->n_ff_exp, err) ||
        conv_cfg_int(r, p, "first_k_dense_replace", 0, c->n_layer, CONV_NO_DEFAULT, &c->n_dense, err) ||
        conv_cfg_int(r, p, "moe_layer_freq", 1, 1 << 16, 1, &freq, err) || conv_cfg_gating(r, p, c, err) ||
        refuse_true(r, p, "norm_topk_prob", c, err))
        return -1;
    if (freq != 1)
        return conv_fail(err,
                         "%s: moe_layer_freq %lld is not supported (llama.cpp's deepseek has MoE in every layer "
                         "after first_k_dense_replace)",
                         p, (long long)freq);
    if (c->gating == 2)
        return conv_fail(err,
                         "%s: scoring_func 'sigmoid' is not supported for %s (llama.cpp's deepseek routes by softmax)",
                         p, c->arch->hf);
    return 0;
}

static int deepseek_read(const cJSON *r, const char *p, config *c, char *err) {
    if (dense_dims(r, p, c, err) || square_heads(p, c, err) || deepseek_routing(r, p, c, err)) return -1;
    if (c->scaling != ROPE_NONE) /* DeepseekModel writes rope.scaling.type none whatever the config says */
        return conv_fail(err, "%s: rope_scaling is not supported for %s (llama.cpp's deepseek ignores it)", p,
                         c->arch->hf);
    return 0;
}

/* ================================================================== tensors */

/* q, k, v, output; the q/k/v biases (Qwen2) and q/k norms (Qwen3) where the architecture has them */
static int attn_need(int s, int bias, int qk_norm) {
    switch (s) {
    case S_Q:
    case S_K:
    case S_V:
    case S_O: return 1;
    case S_Q_BIAS:
    case S_K_BIAS:
    case S_V_BIAS: return bias;
    case S_Q_NORM:
    case S_K_NORM: return qk_norm;
    default: return 0;
    }
}

static int need_with(const plan *p, int64_t il, int s, int bias, int qk_norm) {
    int need = conv_ffn_need(p, il, s);
    return need >= 0 ? need : attn_need(s, bias, qk_norm);
}

static int qwen2_need(const plan *p, int64_t il, int s) { return need_with(p, il, s, 1, 0); }
static int qwen3_need(const plan *p, int64_t il, int s) { return need_with(p, il, s, 0, 1); }
static int plain_need(const plan *p, int64_t il, int s) { return need_with(p, il, s, 0, 0); }

static int dense_shape(const config *c, int s, int64_t *sh) {
    int64_t H = c->n_embd, q = c->n_head * c->head_dim, kv = c->n_head_kv * c->head_dim;
    int nd = conv_ffn_shape(c, s, sh);
    if (nd >= 0) return nd;
    switch (s) {
    case S_Q: return conv_shape2(sh, q, H);
    case S_K:
    case S_V: return conv_shape2(sh, kv, H);
    case S_O: return conv_shape2(sh, H, q);
    case S_Q_BIAS: return conv_shape1(sh, q);
    case S_K_BIAS:
    case S_V_BIAS: return conv_shape1(sh, kv);
    case S_Q_NORM:
    case S_K_NORM: return conv_shape1(sh, c->head_dim);
    default: return conv_shape1(sh, 0); /* no such tensor here (attn_need says 0) */
    }
}

/* ================================================================== metadata */

/* TextModel.set_gguf_parameters, in its order, for the keys these configs have */
static void text_meta(ds_gguf_writer *w, const options *o, const config *c, const plan *p) {
    (void)p;
    conv_kv_u32(w, c, "block_count", (uint32_t)c->n_layer);
    conv_kv_u32(w, c, "context_length", (uint32_t)c->n_ctx);
    conv_kv_u32(w, c, "embedding_length", (uint32_t)c->n_embd);
    conv_kv_u32(w, c, "feed_forward_length", (uint32_t)c->n_ff);
    conv_kv_u32(w, c, "attention.head_count", (uint32_t)c->n_head);
    if (c->kv_set) conv_kv_u32(w, c, "attention.head_count_kv", (uint32_t)c->n_head_kv);
    conv_meta_rope(w, c);
    conv_kv_f32(w, c, "attention.layer_norm_rms_epsilon", (float)c->rms_eps);
    if (c->n_expert > 0) conv_kv_u32(w, c, "expert_count", (uint32_t)c->n_expert);
    if (c->n_expert_used >= 0) conv_kv_u32(w, c, "expert_used_count", (uint32_t)c->n_expert_used);
    if (c->gating) conv_kv_u32(w, c, "expert_gating_func", (uint32_t)c->gating);
    if (c->head_dim_set) {
        conv_kv_u32(w, c, "attention.key_length", (uint32_t)c->head_dim);
        conv_kv_u32(w, c, "attention.value_length", (uint32_t)c->head_dim);
    }
    if (!o->mix) /* llama-quantize moves it after general.quantization_version */
        ds_gguf_set_u32(w, "general.file_type", o->file_type);
}

/* LlamaModel: the vocabulary size and the rotated dimensions (the whole head) */
static void llama_meta(ds_gguf_writer *w, const options *o, const config *c, const plan *p) {
    text_meta(w, o, c, p);
    conv_kv_u32(w, c, "vocab_size", (uint32_t)c->n_vocab);
    conv_kv_u32(w, c, "rope.dimension_count", (uint32_t)c->head_dim);
}

/* DeepseekModel: expert_count again (the same value, where TextModel put it) is left out */
static void deepseek_meta(ds_gguf_writer *w, const options *o, const config *c, const plan *p) {
    text_meta(w, o, c, p);
    conv_kv_u32(w, c, "rope.dimension_count", (uint32_t)c->head_dim);
    conv_kv_str(w, c, "rope.scaling.type", "none");
    conv_kv_u32(w, c, "leading_dense_block_count", (uint32_t)c->n_dense);
    conv_kv_u32(w, c, "vocab_size", (uint32_t)c->n_vocab);
    conv_kv_u32(w, c, "expert_feed_forward_length", (uint32_t)c->n_ff_exp);
    conv_kv_f32(w, c, "expert_weights_scale", 1.0f);
    conv_kv_u32(w, c, "expert_shared_count", (uint32_t)c->n_shared);
}

/* ================================================================== the architectures */

/* Qwen2 and Qwen3 use NeoX rope in llama.cpp (halves, as Hugging Face rotates), Llama and
   DeepSeek-MoE the interleaved one, for which the converter reorders q / k rows. */
const conv_arch conv_qwen2 = {"Qwen2ForCausalLM", "qwen2",   "qwen2", qwen2_read, qwen2_need,
                              dense_shape,        text_meta, 0,       0};
const conv_arch conv_llama = {"LlamaForCausalLM", "llama",    "llama", llama_read, plain_need,
                              dense_shape,        llama_meta, 0,       1};
const conv_arch conv_qwen3 = {"Qwen3ForCausalLM", "qwen3",   "qwen3", qwen3_read, qwen3_need,
                              dense_shape,        text_meta, 0,       0};
const conv_arch conv_deepseek = {"DeepseekForCausalLM", "deepseek", "deepseek", deepseek_read, plain_need, dense_shape,
                                 deepseek_meta,         0,          1};
