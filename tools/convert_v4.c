/* convert_v4.c - deepseek-convert for DeepSeek-V4 (DeepseekV4ForCausalLM), written as llama.cpp
   writes it: architecture `deepseek4`. Groundwork for a V4 forward pass: this project's runtime
   does not run deepseek4 yet; llama.cpp loads what this writes.

   WHAT THIS FOLLOWS (read from llama.cpp's source, conversion/deepseek.py DeepseekV4Model,
   conversion/base.py TextModel / repack_mxfp4_blocks, gguf-py's constants and writer,
   src/models/deepseek4.cpp's load_arch_hparams / load_arch_tensors, tests/test-llama-archs.cpp)

   -- config.json (the keys the converter reads; E = hidden_size, H = num_attention_heads,
      D = head_dim, QL = q_lora_rank, G = o_groups, OL = o_lora_rank, HC = hc_mult,
      MIX = (2 + HC) * HC, NE = n_routed_experts, NU = num_experts_per_tok, FF =
      moe_intermediate_size, NS = n_shared_experts, IH = index_n_heads, ID = index_head_dim)
     architectures ["DeepseekV4ForCausalLM"], num_hidden_layers, max_position_embeddings,
     hidden_size, num_attention_heads, num_key_value_heads (1), head_dim, qk_rope_head_dim,
     q_lora_rank, o_lora_rank, o_groups, n_routed_experts, num_experts_per_tok,
     n_shared_experts, moe_intermediate_size, routed_scaling_factor, norm_topk_prob,
     scoring_func ("sqrtsoftplus": llama.cpp's loader refuses any other), swiglu_limit,
     index_n_heads, index_head_dim, index_topk, sliding_window, compress_ratios (one per layer,
     0 = sliding window only, 4 = compressed sparse attention with the lightning indexer, 128 =
     heavily compressed; the loader refuses other values and a list shorter than block_count),
     compress_rope_theta, hc_mult, hc_sinkhorn_iters, hc_eps, num_hash_layers,
     num_nextn_predict_layers, rope_theta, rope_scaling (yarn: factor,
     original_max_position_embeddings, beta_fast, beta_slow; "type" accepted for "rope_type"),
     rms_norm_eps, vocab_size; optional: intermediate_size (feed_forward_length), n_group /
     topk_group (expert_group_count / expert_group_used_count), *_token_id.

   -- checkpoint tensors (DeepSeek's own names, no "model." prefix; PyTorch shapes)
     embed.weight [V, E]           -> token_embd.weight
     norm.weight [E]               -> output_norm.weight
     head.weight [V, E]            -> output.weight
     hc_head_fn [HC, HC*E]         -> output_hc_fn.weight     (F32)
     hc_head_base [HC]             -> output_hc_base.weight
     hc_head_scale [1]             -> output_hc_scale.weight
     layers.N. (-> blk.N.):
       attn_norm.weight [E] -> attn_norm.weight;  ffn_norm.weight [E] -> ffn_norm.weight
       attn.attn_sink [H] -> attn_sinks.weight (F32)
       attn.wq_a.weight [QL, E] -> attn_q_a.weight;  attn.q_norm.weight [QL] -> attn_q_a_norm.weight
       attn.wq_b.weight [H*D, QL] -> attn_q_b.weight
       attn.wkv.weight [D, E] -> attn_kv.weight;  attn.kv_norm.weight [D] -> attn_kv_a_norm.weight
       attn.wo_a.weight [G*OL, H*D/G] -> attn_output_a.weight (ggml {H*D/G, G*OL}; the loader
         reshapes it to {H*D/G, OL, G})
       attn.wo_b.weight [E, G*OL] -> attn_output_b.weight
       hc_attn_fn [MIX, HC*E], hc_attn_base [MIX], hc_attn_scale [3] -> hc_attn_{fn,base,scale}.weight
       hc_ffn_fn, hc_ffn_base, hc_ffn_scale (same shapes) -> hc_ffn_{fn,base,scale}.weight
       ratio r != 0 (coff = 2 when r == 4, else 1):
         attn.compressor.wkv.weight [coff*D, E] -> attn_compressor_kv.weight
         attn.compressor.wgate.weight [coff*D, E] -> attn_compressor_gate.weight
         attn.compressor.ape [r, coff*D] -> attn_compressor_ape.weight
         attn.compressor.norm.weight [D] -> attn_compressor_norm.weight
       r == 4, the indexer:
         attn.indexer.wq_b.weight [IH*ID, QL] -> indexer.attn_q_b.weight
         attn.indexer.weights_proj.weight [IH, E] -> indexer.proj.weight
         attn.indexer.compressor.{wkv,wgate}.weight [2*ID, E] -> indexer_compressor_{kv,gate}.weight
         attn.indexer.compressor.ape [4, 2*ID] -> indexer_compressor_ape.weight
         attn.indexer.compressor.norm.weight [ID] -> indexer_compressor_norm.weight
       ffn.gate.weight [NE, E] -> ffn_gate_inp.weight
       N < num_hash_layers: ffn.gate.tid2eid [V, NU] (integers) -> ffn_gate_tid2eid.weight, I32
         {NU, V}; such a layer's ffn.gate.bias, if any, is dropped (unused: hash routing)
       else: ffn.gate.bias [NE] -> exp_probs_b.bias
       ffn.gate.bias_vl [NE] (the vision variant only) -> exp_probs_b_vl.bias
       ffn.shared_experts.w1/w3.weight [FF*NS, E] -> ffn_gate_shexp / ffn_up_shexp.weight
       ffn.shared_experts.w2.weight [E, FF*NS] -> ffn_down_shexp.weight
       ffn.experts.K.w1/w3.weight [FF, E/2] + .scale [FF, E/32]; w2.weight [E, FF/2] + .scale
         [E, FF/32]: FP4 (e2m1, two per byte, element 2i in the low nibble) with one E8M0 scale per
         32 elements -> ffn_gate_exps / ffn_up_exps {E, FF, NE}, ffn_down_exps {FF, E, NE},
         stacked by expert, MXFP4
     mtp.K.*: the MTP block. llama.cpp's converter drops every mtp.* tensor from the model file
       (it writes them only with --mtp-only, as a separate mtp-*.gguf: block_count then counts
       them, e_proj | h_proj concatenated along the input as blk.N.nextn.eh_proj (Q8_0), enorm,
       hnorm, norm -> nextn.shared_head_norm, hc_head_* at the root). So does this converter; no
       nextn_predict_layers key is written. aligner.* and image_* (vision) are dropped too.

   -- dtypes as stored: FP8 weights are F8_E4M3 with a "<name>.scale" of E8M0 bytes, one per
      128 x 128 block ([ceil(rows/128), ceil(cols/128)]); llama.cpp dequantizes them as
      weight * 2^(scale_byte - 127) (the scale tensor viewed as uint8 when it is not
      torch.float8_e8m0fnu: a 1-byte dtype is required) and forces the result to Q8_0. The FP4
      experts' weights are int8 (I8; U8 read alike) and their scales F8_E8M0. What else is F32
      in the checkpoint stays F32 (forced), BF16 matrices stay BF16 (forced), 1-D tensors are
      F32. general.file_type is 38 (MOSTLY_MXFP4_MOE) whatever --outtype says. WHICH tensors the
      release stores as FP8, BF16 or F32 is not in llama.cpp's code (it decides by dtype); the
      tests' checkpoint (tests/hfgen.c deepseek-v4) picks: FP8 attention and shared-expert
      matrices, BF16 embeddings, head, router, compressors, indexer projection and wo_a, F32
      hyper-connection tensors, sinks, ape and router bias.

   -- the MXFP4 repack (base.py repack_mxfp4_blocks), lossless: per row and 32-element group, the
      scale byte as is, then 16 bytes qs[j] = code[j] | code[j + 16] << 4, code[2i] / code[2i+1]
      being source byte i's low / high nibble. Both sides index ggml's kvalues_mxfp4 {0, 1, 2, 3,
      4, 6, 8, 12, -0, -1, ...} order: e2m1's value is kvalue / 2 * 2^(e - 127), ggml's kvalue *
      2^(e - 128) - the same number, no bit changes.

   -- GGUF keys (deepseek4.*): block_count (num_hidden_layers), context_length,
      embedding_length, [feed_forward_length], attention.head_count, attention.head_count_kv,
      rope.scaling.{type,factor,original_context_length,yarn_beta_fast,yarn_beta_slow,...},
      rope.freq_base, attention.layer_norm_rms_epsilon, expert_count, expert_used_count,
      [expert_group_count, expert_group_used_count], expert_gating_func (4 = sqrtsoftplus),
      attention.key_length = attention.value_length = head_dim, general.file_type,
      rope.dimension_count (qk_rope_head_dim), attention.q_lora_rank, attention.sliding_window,
      expert_feed_forward_length, expert_shared_count, expert_weights_scale
      (routed_scaling_factor), expert_weights_norm (norm_topk_prob), swiglu_clamp_exp and
      swiglu_clamp_shexp ([swiglu_limit] x block_count, f32 arrays),
      attention.indexer.{head_count,key_length,top_k}, attention.output_group_count,
      attention.output_lora_rank, attention.compress_ratios (i32 array, as given),
      attention.compress_rope_freq_base, hyper_connection.{count,sinkhorn_iterations,epsilon},
      hash_layer_count, embedding_length_out (hidden_size x hc_mult). llama.cpp also writes its
      own chat template (models/templates/deepseek-ai-DeepSeek-V4.jinja) when the tokenizer has
      none: not here (this converter has no copy of it).

   OUTPUT TYPES HERE: --outtype f32 / f16 / bf16 applies to every matrix that is not F32 in the
   checkpoint (FP8 ones dequantized first); --outtype q8_0 gives llama.cpp's own choice (FP8
   -> Q8_0, BF16 -> BF16, other 16-bit -> Q8_0 but ffn_gate_inp / indexer.proj F32: what
   llama.cpp's converter writes for this checkpoint, tested by tests/convert_v4_check.py). F32 tensors, 1-D tensors and tid2eid as
   above; experts always MXFP4. Other quantized outtypes are refused. */
#include "convert.h"

#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V4_MAX_LAYERS 4096
#define MXFP4_BLOCK 32
#define MXFP4_BYTES 17

/* ================================================================== config.json */

static struct {
    int64_t o_lora, o_groups, sliding, hc_mult, hc_iters, n_hash, n_ff;
    int has_ff;
    int32_t ratios[V4_MAX_LAYERS + 64]; /* the layers and MTP blocks */
    size_t n_ratios;
    double swiglu, compress_theta, hc_eps;
} V4;

static int cfg_i(const cJSON *r, const char *p, const char *k, int64_t lo, int64_t hi, int64_t *out, char *err) {
    return conv_cfg_int(r, p, k, lo, hi, CONV_NO_DEFAULT, out, err);
}

static int cfg_f(const cJSON *r, const char *p, const char *k, double *out, char *err) {
    opt_f64 v;
    if (conv_cfg_num(r, p, k, &v, err) != 0) return -1;
    if (!v.set) return conv_fail(err, "%s: '%s' is missing", p, k);
    *out = v.v;
    return 0;
}

static int cfg_ratios(const cJSON *r, const char *p, const config *c, char *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, "compress_ratios");
    if (!cJSON_IsArray(a)) return conv_fail(err, "%s: 'compress_ratios' must be an array", p);
    size_t n = (size_t)cJSON_GetArraySize(a);
    if (n < (size_t)c->n_layer || n > sizeof V4.ratios / sizeof V4.ratios[0])
        return conv_fail(err, "%s: 'compress_ratios' has %zu entries for %lld layers", p, n, (long long)c->n_layer);
    V4.n_ratios = n;
    size_t i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (v != 0 && v != 4 && v != 128)
            return conv_fail(err, "%s: compress_ratios[%zu] must be 0, 4 or 128 (what llama.cpp's deepseek4 loads)", p,
                             i);
        V4.ratios[i] = (int32_t)v;
    }
    return 0;
}

static int cfg_scoring(const cJSON *r, const char *p, char *err) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "scoring_func");
    if (cJSON_IsString(s) && strcmp(s->valuestring, "sqrtsoftplus") == 0) return 0;
    return conv_fail(err, "%s: scoring_func must be 'sqrtsoftplus' (llama.cpp's deepseek4 loader refuses others)", p);
}

static int v4_read(const cJSON *r, const char *p, config *c, char *err) {
    const int64_t BIG = UINT32_MAX;
    memset(&V4, 0, sizeof V4);
    c->kv_set = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(r, "num_key_value_heads"));
    V4.has_ff = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(r, "intermediate_size"));
    if (cfg_i(r, p, "num_hidden_layers", 1, V4_MAX_LAYERS, &c->n_layer, err) ||
        cfg_i(r, p, "max_position_embeddings", 1, BIG, &c->n_ctx, err) ||
        cfg_i(r, p, "hidden_size", 1, 1 << 20, &c->n_embd, err) ||
        cfg_i(r, p, "num_attention_heads", 1, 1 << 16, &c->n_head, err) ||
        conv_cfg_int(r, p, "num_key_value_heads", 1, 1 << 16, 1, &c->n_head_kv, err) ||
        cfg_i(r, p, "head_dim", 2, 1 << 16, &c->head_dim, err) ||
        cfg_i(r, p, "qk_rope_head_dim", 0, c->head_dim, &c->rope, err) ||
        cfg_i(r, p, "q_lora_rank", 1, 1 << 20, &c->q_lora, err) ||
        cfg_i(r, p, "o_lora_rank", 1, 1 << 20, &V4.o_lora, err) ||
        cfg_i(r, p, "o_groups", 1, 1 << 16, &V4.o_groups, err) ||
        cfg_i(r, p, "n_routed_experts", 1, 1 << 16, &c->n_expert, err) ||
        cfg_i(r, p, "num_experts_per_tok", 1, c->n_expert, &c->n_expert_used, err) ||
        cfg_i(r, p, "n_shared_experts", 1, 1 << 10, &c->n_shared, err) ||
        cfg_i(r, p, "moe_intermediate_size", 1, 1 << 24, &c->n_ff_exp, err) ||
        conv_cfg_int(r, p, "intermediate_size", 1, 1 << 24, 0, &V4.n_ff, err) ||
        conv_cfg_int(r, p, "n_group", 1, 1 << 16, -1, &c->n_group, err) ||
        conv_cfg_int(r, p, "topk_group", 1, 1 << 16, -1, &c->topk_group, err) ||
        conv_cfg_num(r, p, "routed_scaling_factor", &c->routed_scale, err) || cfg_scoring(r, p, err) ||
        cfg_f(r, p, "swiglu_limit", &V4.swiglu, err) || cfg_i(r, p, "index_n_heads", 1, 1 << 16, &c->idx_heads, err) ||
        cfg_i(r, p, "index_head_dim", 1, 1 << 16, &c->idx_dim, err) ||
        cfg_i(r, p, "index_topk", 1, BIG, &c->idx_topk, err) ||
        cfg_i(r, p, "sliding_window", 1, BIG, &V4.sliding, err) ||
        cfg_f(r, p, "compress_rope_theta", &V4.compress_theta, err) ||
        cfg_i(r, p, "hc_mult", 1, 64, &V4.hc_mult, err) ||
        cfg_i(r, p, "hc_sinkhorn_iters", 0, 1 << 16, &V4.hc_iters, err) || cfg_f(r, p, "hc_eps", &V4.hc_eps, err) ||
        cfg_i(r, p, "num_hash_layers", 0, c->n_layer, &V4.n_hash, err) ||
        conv_cfg_int(r, p, "num_nextn_predict_layers", 0, 64, 0, &c->n_nextn, err) ||
        cfg_i(r, p, "vocab_size", 1, INT32_MAX, &c->n_vocab, err) || cfg_ratios(r, p, c, err) ||
        conv_cfg_rope(r, p, c, err))
        return -1;
    if (!c->routed_scale.set) return conv_fail(err, "%s: 'routed_scaling_factor' is missing", p);
    if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(r, "norm_topk_prob")))
        return conv_fail(err, "%s: 'norm_topk_prob' must be true or false", p);
    c->norm_topk = conv_json_true(r, "norm_topk_prob");
    c->n_ff = V4.n_ff;
    c->n_dense = 0;
    c->gating = 4; /* sqrtsoftplus */
    if ((c->n_head * c->head_dim) % V4.o_groups != 0)
        return conv_fail(err, "%s: num_attention_heads x head_dim is not a multiple of o_groups", p);
    if (c->n_embd % MXFP4_BLOCK || c->n_ff_exp % MXFP4_BLOCK)
        return conv_fail(err, "%s: hidden_size and moe_intermediate_size must be multiples of 32 (FP4 groups)", p);
    return 0;
}

/* ================================================================== metadata */

static void v4_meta(ds_gguf_writer *w, const options *o, const config *c, const plan *p) {
    (void)o;
    (void)p;
    uint32_t nl = (uint32_t)c->n_layer;
    conv_kv_u32(w, c, "block_count", nl);
    conv_kv_u32(w, c, "context_length", (uint32_t)c->n_ctx);
    conv_kv_u32(w, c, "embedding_length", (uint32_t)c->n_embd);
    if (V4.has_ff) conv_kv_u32(w, c, "feed_forward_length", (uint32_t)c->n_ff);
    conv_kv_u32(w, c, "attention.head_count", (uint32_t)c->n_head);
    if (c->kv_set) conv_kv_u32(w, c, "attention.head_count_kv", (uint32_t)c->n_head_kv);
    conv_meta_rope(w, c);
    conv_kv_f32(w, c, "attention.layer_norm_rms_epsilon", (float)c->rms_eps);
    conv_kv_u32(w, c, "expert_count", (uint32_t)c->n_expert);
    conv_kv_u32(w, c, "expert_used_count", (uint32_t)c->n_expert_used);
    if (c->n_group > 0) conv_kv_u32(w, c, "expert_group_count", (uint32_t)c->n_group);
    if (c->topk_group > 0) conv_kv_u32(w, c, "expert_group_used_count", (uint32_t)c->topk_group);
    conv_kv_u32(w, c, "expert_gating_func", 4);
    conv_kv_u32(w, c, "attention.key_length", (uint32_t)c->head_dim);
    conv_kv_u32(w, c, "attention.value_length", (uint32_t)c->head_dim);
    ds_gguf_set_u32(w, "general.file_type", 38); /* LlamaFileType.MOSTLY_MXFP4_MOE */
    conv_kv_u32(w, c, "rope.dimension_count", (uint32_t)c->rope);
    conv_kv_u32(w, c, "attention.q_lora_rank", (uint32_t)c->q_lora);
    conv_kv_u32(w, c, "attention.sliding_window", (uint32_t)V4.sliding);
    conv_kv_u32(w, c, "expert_feed_forward_length", (uint32_t)c->n_ff_exp);
    conv_kv_u32(w, c, "expert_shared_count", (uint32_t)c->n_shared);
    conv_kv_f32(w, c, "expert_weights_scale", (float)c->routed_scale.v);
    conv_kv_bool(w, c, "expert_weights_norm", c->norm_topk);
    float *clamp = malloc(nl * sizeof *clamp);
    char key[128];
    if (clamp) {
        for (uint32_t i = 0; i < nl; i++) clamp[i] = (float)V4.swiglu;
        snprintf(key, sizeof key, "%s.swiglu_clamp_exp", c->arch->name);
        ds_gguf_set_arr_f32(w, key, clamp, nl);
        snprintf(key, sizeof key, "%s.swiglu_clamp_shexp", c->arch->name);
        ds_gguf_set_arr_f32(w, key, clamp, nl);
        free(clamp);
    }
    conv_kv_u32(w, c, "attention.indexer.head_count", (uint32_t)c->idx_heads);
    conv_kv_u32(w, c, "attention.indexer.key_length", (uint32_t)c->idx_dim);
    conv_kv_u32(w, c, "attention.indexer.top_k", (uint32_t)c->idx_topk);
    conv_kv_u32(w, c, "attention.output_group_count", (uint32_t)V4.o_groups);
    conv_kv_u32(w, c, "attention.output_lora_rank", (uint32_t)V4.o_lora);
    snprintf(key, sizeof key, "%s.attention.compress_ratios", c->arch->name);
    ds_gguf_set_arr_i32(w, key, V4.ratios, V4.n_ratios);
    conv_kv_f32(w, c, "attention.compress_rope_freq_base", (float)V4.compress_theta);
    conv_kv_u32(w, c, "hyper_connection.count", (uint32_t)V4.hc_mult);
    conv_kv_u32(w, c, "hyper_connection.sinkhorn_iterations", (uint32_t)V4.hc_iters);
    conv_kv_f32(w, c, "hyper_connection.epsilon", (float)V4.hc_eps);
    conv_kv_u32(w, c, "hash_layer_count", (uint32_t)V4.n_hash);
    conv_kv_u32(w, c, "embedding_length_out", (uint32_t)(c->n_embd * V4.hc_mult));
}

/* The driver's slot machinery is not used for V4 (conv_v4_write has its own plan). */
static int v4_need(const plan *p, int64_t il, int s) {
    (void)p;
    (void)il;
    (void)s;
    return 0;
}

static int v4_shape(const config *c, int s, int64_t *sh) {
    (void)c;
    (void)s;
    (void)sh;
    return 0;
}

const conv_arch conv_deepseek4 = {
    "DeepseekV4ForCausalLM", "deepseek_v4", "deepseek4", v4_read, v4_need, v4_shape, v4_meta, 0, 0};

/* ================================================================== the tensor plan */

typedef enum { V_FLOAT, V_I32, V_MXFP4 } v_kind;

typedef struct {
    char name[CONV_NAME_LEN];
    ds_type type;
    int n_dims;
    int64_t ne[CONV_MAX_NE];
    v_kind kind;
    const safetensors_tensor *src, *scale; /* V_FLOAT: scale set when FP8 */
    const safetensors_tensor **w, **s;     /* V_MXFP4: per expert */
    int64_t limit;                         /* V_I32: the expert count its values stay below */
} v_out;

typedef struct {
    const options *opt;
    const config *cfg;
    safetensors_dir *st;
    v_out *out;
    size_t n_out, cap;
    const safetensors_tensor **used;
    size_t n_used, cap_used;
    size_t n_skipped, n_mtp;
    int q8; /* --outtype q8_0: llama.cpp's own types */
} v_plan;

static int mark(v_plan *p, const safetensors_tensor *t, char *err) {
    const safetensors_tensor **u = conv_push(&p->used, &p->n_used, &p->cap_used, sizeof *p->used, err);
    if (!u) return -1;
    *u = t;
    return 0;
}

static v_out *push(v_plan *p, char *err) { return conv_push(&p->out, &p->n_out, &p->cap, sizeof *p->out, err); }

static int is_fp8(safetensors_dtype d) { return d == SAFETENSORS_F8_E4M3 || d == SAFETENSORS_F8_E5M2; }
static int is_byte(safetensors_dtype d) {
    return d == SAFETENSORS_F8_E8M0 || d == SAFETENSORS_U8 || d == SAFETENSORS_I8;
}

static int check_shape(const safetensors_tensor *t, int nd, const int64_t *sh, char *err) {
    int ok = t->n_dims == nd;
    for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == sh[i];
    if (ok) return 0;
    char want[96] = "", got[96] = "";
    for (int i = 0; i < nd; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "", (long long)sh[i]);
    for (int i = 0; i < t->n_dims; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    return conv_fail(err, "%s: tensor '%s' has shape [%s], expected [%s]", t->path, t->name, got, want);
}

/* The output type of a dense tensor from its checkpoint dtype (see the top of the file). With
   q8_0, llama.cpp's rules in its order: DeepseekV4Model.tensor_force_quant (FP8 -> Q8_0, F32 ->
   F32, BF16 -> BF16), then base.py's prepare_tensors (1-D -> F32; what is not forced and is
   ffn_gate_inp or indexer.proj -> F32; the rest the outtype). */
static ds_type dense_type(const v_plan *p, const safetensors_tensor *t, const char *gguf, int fp8, int nd) {
    if (nd < 2 || t->dtype == SAFETENSORS_F32 || t->dtype == SAFETENSORS_F64) return DS_TYPE_F32;
    if (!p->q8) return p->opt->wtype;
    if (fp8) return DS_TYPE_Q8_0;
    if (t->dtype == SAFETENSORS_BF16) return DS_TYPE_BF16;
    size_t n = strlen(gguf);
    if ((n >= 20 && strcmp(gguf + n - 20, ".ffn_gate_inp.weight") == 0) ||
        (n >= 20 && strcmp(gguf + n - 20, ".indexer.proj.weight") == 0))
        return DS_TYPE_F32;
    return DS_TYPE_Q8_0;
}

/* hf (PyTorch shape sh[nd]) as gguf; optional: absent is fine. */
static int dense(v_plan *p, const char *hf, const char *gguf, int nd, const int64_t *sh, int optional, char *err) {
    const safetensors_tensor *t = safetensors_dir_find(p->st, hf);
    if (!t) return optional ? 0 : conv_fail(err, "tensor '%s' is missing", hf);
    if (check_shape(t, nd, sh, err) || mark(p, t, err)) return -1;
    const safetensors_tensor *sc = NULL;
    if (is_fp8(t->dtype)) {
        char sname[CONV_NAME_LEN + 16];
        size_t n = strlen(hf);
        if (n < 7 || strcmp(hf + n - 7, ".weight") != 0 || nd != 2)
            return conv_fail(err, "tensor '%s' is FP8 but not a 2-D .weight", hf);
        snprintf(sname, sizeof sname, "%.*s.scale", (int)(n - 7), hf);
        sc = safetensors_dir_find(p->st, sname);
        if (!sc) return conv_fail(err, "FP8 tensor '%s' has no '%s'", hf, sname);
        const int64_t ssh[2] = {(sh[0] + 127) / 128, (sh[1] + 127) / 128};
        if (!is_byte(sc->dtype))
            return conv_fail(err, "%s: '%s' is %s, expected E8M0 bytes (F8_E8M0)", sc->path, sname,
                             safetensors_dtype_name(sc->dtype));
        if (check_shape(sc, 2, ssh, err) || mark(p, sc, err)) return -1;
    } else if (t->dtype != SAFETENSORS_F32 && t->dtype != SAFETENSORS_BF16 && t->dtype != SAFETENSORS_F16 &&
               t->dtype != SAFETENSORS_F64) {
        return conv_fail(err, "%s: tensor '%s' is %s, not a float type", t->path, hf, safetensors_dtype_name(t->dtype));
    }
    v_out *o = push(p, err);
    if (!o) return -1;
    snprintf(o->name, sizeof o->name, "%s", gguf);
    o->kind = V_FLOAT;
    o->n_dims = nd;
    for (int i = 0; i < nd; i++) o->ne[i] = sh[nd - 1 - i];
    o->src = t;
    o->scale = sc;
    o->type = dense_type(p, t, gguf, sc != NULL, nd);
    if (o->type == DS_TYPE_Q8_0 && o->ne[0] % 32 != 0) o->type = DS_TYPE_F16; /* as llama.cpp falls back */
    return 0;
}

static int dense1(v_plan *p, const char *hf, const char *gguf, int64_t a, int optional, char *err) {
    const int64_t sh[1] = {a};
    return dense(p, hf, gguf, 1, sh, optional, err);
}

static int dense2(v_plan *p, const char *hf, const char *gguf, int64_t a, int64_t b, char *err) {
    const int64_t sh[2] = {a, b};
    return dense(p, hf, gguf, 2, sh, 0, err);
}

#define HF(...) (snprintf(hf, sizeof hf, __VA_ARGS__), hf)
#define GG(...) (snprintf(gg, sizeof gg, __VA_ARGS__), gg)

static int tid2eid(v_plan *p, int64_t il, char *err) {
    char hf[CONV_NAME_LEN], gg[CONV_NAME_LEN];
    const config *c = p->cfg;
    const safetensors_tensor *t = safetensors_dir_find(p->st, HF("layers.%lld.ffn.gate.tid2eid", (long long)il));
    if (!t) return conv_fail(err, "Missing hash routing tensor %s", hf);
    const int64_t sh[2] = {c->n_vocab, c->n_expert_used};
    if (check_shape(t, 2, sh, err) || mark(p, t, err)) return -1;
    v_out *o = push(p, err);
    if (!o) return -1;
    snprintf(o->name, sizeof o->name, "%s", GG("blk.%lld.ffn_gate_tid2eid.weight", (long long)il));
    o->kind = V_I32;
    o->type = DS_TYPE_I32;
    o->n_dims = 2;
    o->ne[0] = c->n_expert_used;
    o->ne[1] = c->n_vocab;
    o->src = t;
    o->limit = c->n_expert;
    return 0;
}

/* ffn.experts.*.PROJ stacked as one MXFP4 tensor of ggml shape {cols, rows, n_expert}. */
static int experts(v_plan *p, int64_t il, const char *proj, const char *gguf, int64_t rows, int64_t cols, char *err) {
    char hf[CONV_NAME_LEN], gg[CONV_NAME_LEN];
    const config *c = p->cfg;
    v_out *o = push(p, err);
    if (!o) return -1;
    snprintf(o->name, sizeof o->name, "%s", GG("blk.%lld.%s", (long long)il, gguf));
    o->kind = V_MXFP4;
    o->type = DS_TYPE_MXFP4;
    o->n_dims = 3;
    o->ne[0] = cols;
    o->ne[1] = rows;
    o->ne[2] = c->n_expert;
    o->w = calloc((size_t)c->n_expert, sizeof *o->w);
    o->s = calloc((size_t)c->n_expert, sizeof *o->s);
    if (!o->w || !o->s) return conv_fail(err, "out of memory");
    const int64_t wsh[2] = {rows, cols / 2}, ssh[2] = {rows, cols / MXFP4_BLOCK};
    for (int64_t e = 0; e < c->n_expert; e++) {
        const safetensors_tensor *w = safetensors_dir_find(
            p->st, HF("layers.%lld.ffn.experts.%lld.%s.weight", (long long)il, (long long)e, proj));
        if (!w) return conv_fail(err, "Missing routed expert tensors for %s", hf);
        const safetensors_tensor *s =
            safetensors_dir_find(p->st, HF("layers.%lld.ffn.experts.%lld.%s.scale", (long long)il, (long long)e, proj));
        if (!s) return conv_fail(err, "Missing routed expert tensors for %s", hf);
        if (w->dtype != SAFETENSORS_I8 && w->dtype != SAFETENSORS_U8)
            return conv_fail(err, "%s: '%s' is %s; FP4 experts are packed two per byte (I8 or U8)", w->path, w->name,
                             safetensors_dtype_name(w->dtype));
        if (!is_byte(s->dtype))
            return conv_fail(err, "%s: '%s' is %s, expected E8M0 bytes (F8_E8M0)", s->path, s->name,
                             safetensors_dtype_name(s->dtype));
        if (check_shape(w, 2, wsh, err) || check_shape(s, 2, ssh, err) || mark(p, w, err) || mark(p, s, err)) return -1;
        o->w[e] = w;
        o->s[e] = s;
    }
    return 0;
}

static int plan_attention(v_plan *p, int64_t il, char *err) {
    const config *c = p->cfg;
    char hf[CONV_NAME_LEN], gg[CONV_NAME_LEN];
    const long long L = (long long)il;
    const int64_t E = c->n_embd, H = c->n_head, D = c->head_dim, QL = c->q_lora, G = V4.o_groups, OL = V4.o_lora;
    const int64_t HC = V4.hc_mult, MIX = (2 + HC) * HC, r = V4.ratios[il];
    if (dense1(p, HF("layers.%lld.attn_norm.weight", L), GG("blk.%lld.attn_norm.weight", L), E, 0, err) ||
        dense1(p, HF("layers.%lld.attn.attn_sink", L), GG("blk.%lld.attn_sinks.weight", L), H, 0, err) ||
        dense2(p, HF("layers.%lld.attn.wq_a.weight", L), GG("blk.%lld.attn_q_a.weight", L), QL, E, err) ||
        dense1(p, HF("layers.%lld.attn.q_norm.weight", L), GG("blk.%lld.attn_q_a_norm.weight", L), QL, 0, err) ||
        dense2(p, HF("layers.%lld.attn.wq_b.weight", L), GG("blk.%lld.attn_q_b.weight", L), H * D, QL, err) ||
        dense2(p, HF("layers.%lld.attn.wkv.weight", L), GG("blk.%lld.attn_kv.weight", L), D, E, err) ||
        dense1(p, HF("layers.%lld.attn.kv_norm.weight", L), GG("blk.%lld.attn_kv_a_norm.weight", L), D, 0, err) ||
        dense2(p, HF("layers.%lld.attn.wo_a.weight", L), GG("blk.%lld.attn_output_a.weight", L), G * OL, H * D / G,
               err) ||
        dense2(p, HF("layers.%lld.attn.wo_b.weight", L), GG("blk.%lld.attn_output_b.weight", L), E, G * OL, err))
        return -1;
    static const char *const HCK[2] = {"attn", "ffn"};
    for (int k = 0; k < 2; k++) {
        if (dense2(p, HF("layers.%lld.hc_%s_fn", L, HCK[k]), GG("blk.%lld.hc_%s_fn.weight", L, HCK[k]), MIX, HC * E,
                   err) ||
            dense1(p, HF("layers.%lld.hc_%s_base", L, HCK[k]), GG("blk.%lld.hc_%s_base.weight", L, HCK[k]), MIX, 0,
                   err) ||
            dense1(p, HF("layers.%lld.hc_%s_scale", L, HCK[k]), GG("blk.%lld.hc_%s_scale.weight", L, HCK[k]), 3, 0,
                   err))
            return -1;
    }
    if (r == 0) return 0;
    const int64_t coff = r == 4 ? 2 : 1, ID = c->idx_dim, IH = c->idx_heads;
    if (dense2(p, HF("layers.%lld.attn.compressor.wkv.weight", L), GG("blk.%lld.attn_compressor_kv.weight", L),
               coff * D, E, err) ||
        dense2(p, HF("layers.%lld.attn.compressor.wgate.weight", L), GG("blk.%lld.attn_compressor_gate.weight", L),
               coff * D, E, err) ||
        dense2(p, HF("layers.%lld.attn.compressor.ape", L), GG("blk.%lld.attn_compressor_ape.weight", L), r, coff * D,
               err) ||
        dense1(p, HF("layers.%lld.attn.compressor.norm.weight", L), GG("blk.%lld.attn_compressor_norm.weight", L), D, 0,
               err))
        return -1;
    if (r != 4) return 0;
    if (dense2(p, HF("layers.%lld.attn.indexer.wq_b.weight", L), GG("blk.%lld.indexer.attn_q_b.weight", L), IH * ID, QL,
               err) ||
        dense2(p, HF("layers.%lld.attn.indexer.weights_proj.weight", L), GG("blk.%lld.indexer.proj.weight", L), IH, E,
               err) ||
        dense2(p, HF("layers.%lld.attn.indexer.compressor.wkv.weight", L),
               GG("blk.%lld.indexer_compressor_kv.weight", L), 2 * ID, E, err) ||
        dense2(p, HF("layers.%lld.attn.indexer.compressor.wgate.weight", L),
               GG("blk.%lld.indexer_compressor_gate.weight", L), 2 * ID, E, err) ||
        dense2(p, HF("layers.%lld.attn.indexer.compressor.ape", L), GG("blk.%lld.indexer_compressor_ape.weight", L), 4,
               2 * ID, err) ||
        dense1(p, HF("layers.%lld.attn.indexer.compressor.norm.weight", L),
               GG("blk.%lld.indexer_compressor_norm.weight", L), ID, 0, err))
        return -1;
    return 0;
}

static int plan_ffn(v_plan *p, int64_t il, char *err) {
    const config *c = p->cfg;
    char hf[CONV_NAME_LEN], gg[CONV_NAME_LEN];
    const long long L = (long long)il;
    const int64_t E = c->n_embd, NE = c->n_expert, FF = c->n_ff_exp, SH = c->n_ff_exp * c->n_shared;
    if (dense2(p, HF("layers.%lld.ffn.gate.weight", L), GG("blk.%lld.ffn_gate_inp.weight", L), NE, E, err)) return -1;
    if (il < V4.n_hash) {
        /* hash layers route text tokens by tid2eid: gate.bias is unused, dropped */
        const safetensors_tensor *b = safetensors_dir_find(p->st, HF("layers.%lld.ffn.gate.bias", L));
        if (b && mark(p, b, err)) return -1;
        if (b) p->n_skipped++;
        if (tid2eid(p, il, err)) return -1;
    } else if (dense1(p, HF("layers.%lld.ffn.gate.bias", L), GG("blk.%lld.exp_probs_b.bias", L), NE, 0, err)) {
        return -1;
    }
    if (dense1(p, HF("layers.%lld.ffn.gate.bias_vl", L), GG("blk.%lld.exp_probs_b_vl.bias", L), NE, 1, err) ||
        dense1(p, HF("layers.%lld.ffn_norm.weight", L), GG("blk.%lld.ffn_norm.weight", L), E, 0, err) ||
        experts(p, il, "w1", "ffn_gate_exps.weight", FF, E, err) ||
        experts(p, il, "w2", "ffn_down_exps.weight", E, FF, err) ||
        experts(p, il, "w3", "ffn_up_exps.weight", FF, E, err) ||
        dense2(p, HF("layers.%lld.ffn.shared_experts.w1.weight", L), GG("blk.%lld.ffn_gate_shexp.weight", L), SH, E,
               err) ||
        dense2(p, HF("layers.%lld.ffn.shared_experts.w2.weight", L), GG("blk.%lld.ffn_down_shexp.weight", L), E, SH,
               err) ||
        dense2(p, HF("layers.%lld.ffn.shared_experts.w3.weight", L), GG("blk.%lld.ffn_up_shexp.weight", L), SH, E, err))
        return -1;
    return 0;
}

static int cmp_ptr(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return (x > y) - (x < y);
}

static int starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Every checkpoint tensor is converted, or dropped as llama.cpp's converter drops it. */
static int check_leftovers(v_plan *p, char *err) {
    qsort(p->used, p->n_used, sizeof *p->used, cmp_ptr);
    for (size_t i = 1; i < p->n_used; i++)
        if (p->used[i] == p->used[i - 1]) return conv_fail(err, "tensor '%s' used twice", p->used[i]->name);
    size_t n = safetensors_dir_count(p->st);
    for (size_t i = 0; i < n; i++) {
        const safetensors_tensor *t = safetensors_dir_at(p->st, i);
        if (bsearch(&t, p->used, p->n_used, sizeof *p->used, cmp_ptr)) continue;
        if (starts(t->name, "mtp.")) p->n_mtp++;
        else if (starts(t->name, "aligner.") || starts(t->name, "image_")) p->n_skipped++;
        else
            return conv_fail(err, "%s: tensor '%s' is not one llama.cpp's DeepSeek-V4 converter maps", t->path,
                             t->name);
    }
    return 0;
}

static int build(v_plan *p, char *err) {
    const config *c = p->cfg;
    const int64_t E = c->n_embd, V = c->n_vocab, HC = V4.hc_mult;
    if (p->opt->mix) {
        if (p->opt->mix->base != DS_TYPE_Q8_0)
            return conv_fail(err, "--outtype %s: DeepSeek-V4 is written as f32, f16, bf16 or q8_0 (llama.cpp's types)",
                             p->opt->mix->name);
        p->q8 = 1;
    }
    if (dense2(p, "embed.weight", "token_embd.weight", V, E, err)) return -1;
    for (int64_t il = 0; il < c->n_layer; il++)
        if (plan_attention(p, il, err) || plan_ffn(p, il, err)) return -1;
    if (dense1(p, "norm.weight", "output_norm.weight", E, 0, err) ||
        dense2(p, "head.weight", "output.weight", V, E, err) ||
        dense2(p, "hc_head_fn", "output_hc_fn.weight", HC, HC * E, err) ||
        dense1(p, "hc_head_base", "output_hc_base.weight", HC, 0, err) ||
        dense1(p, "hc_head_scale", "output_hc_scale.weight", 1, 0, err))
        return -1;
    return check_leftovers(p, err);
}

static void free_plan(v_plan *p) {
    for (size_t i = 0; i < p->n_out; i++) {
        free(p->out[i].w);
        free(p->out[i].s);
    }
    free(p->out);
    free(p->used);
}

/* ================================================================== tensor data */

static int64_t rows_of(const v_out *o) {
    int64_t r = 1;
    for (int i = 1; i < o->n_dims; i++) r *= o->ne[i];
    return r;
}

static int put(ds_gguf_writer *w, const void *data, size_t n, char *err) {
    return ds_gguf_writer_write(w, data, n, err, CONV_ERR_LEN) == DS_OK ? 0 : -1;
}

/* One row of floats in o's type. */
static int put_row(ds_gguf_writer *w, const v_out *o, const float *x, int64_t n, void *buf, char *err) {
    size_t bytes;
    switch (o->type) {
    case DS_TYPE_F32: return put(w, x, (size_t)n * sizeof *x, err);
    case DS_TYPE_F16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)buf)[i] = ds_fp32_to_fp16(x[i]);
        return put(w, buf, (size_t)n * 2, err);
    case DS_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)buf)[i] = ds_fp32_to_bf16(x[i]);
        return put(w, buf, (size_t)n * 2, err);
    case DS_TYPE_Q8_0:
        bytes = ds_quant_scalar_traits(DS_TYPE_Q8_0)->quantize(x, buf, n, NULL);
        return bytes ? put(w, buf, bytes, err) : conv_fail(err, "%s: Q8_0 quantization failed", o->name);
    default: return conv_fail(err, "%s: no writer for type %s", o->name, ds_type_name(o->type));
    }
}

static int write_float(ds_gguf_writer *w, const v_out *o, char *err) {
    const int64_t cols = o->ne[0], rows = rows_of(o);
    float *x = malloc((size_t)cols * sizeof *x);
    void *buf = malloc((size_t)cols * 4 + 64);
    const unsigned char *sc = o->scale ? o->scale->data : NULL;
    const int64_t sc_cols = (cols + 127) / 128;
    int rc = x && buf ? 0 : conv_fail(err, "out of memory");
    for (int64_t r = 0; rc == 0 && r < rows; r++) {
        rc = safetensors_read_f32_at(o->src, (size_t)(r * cols), x, (size_t)cols, err, CONV_ERR_LEN);
        if (rc == 0 && sc) { /* weight * 2^(scale byte - 127), 128 x 128 blocks */
            for (int64_t j = 0; j < cols; j++) x[j] *= ldexpf(1.0f, (int)sc[(r / 128) * sc_cols + j / 128] - 127);
        }
        if (rc == 0) rc = put_row(w, o, x, cols, buf, err);
    }
    free(x);
    free(buf);
    return rc;
}

static int write_i32(ds_gguf_writer *w, const v_out *o, char *err) {
    size_t n = (size_t)(o->ne[0] * o->ne[1]);
    int32_t *v = malloc(n * sizeof *v);
    int rc = v ? safetensors_read_i32(o->src, v, n, err, CONV_ERR_LEN) : conv_fail(err, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (v[i] < 0 || v[i] >= o->limit)
            rc = conv_fail(err, "%s: '%s' routes to expert %d of %lld", o->src->path, o->src->name, (int)v[i],
                           (long long)o->limit);
    if (rc == 0) rc = put(w, v, n * sizeof *v, err);
    free(v);
    return rc;
}

/* base.py repack_mxfp4_blocks, one expert row at a time */
static int write_mxfp4(ds_gguf_writer *w, const v_out *o, char *err) {
    const int64_t cols = o->ne[0], rows = o->ne[1], nb = cols / MXFP4_BLOCK;
    unsigned char *row = malloc((size_t)(nb * MXFP4_BYTES));
    int rc = row ? 0 : conv_fail(err, "out of memory");
    for (int64_t e = 0; rc == 0 && e < o->ne[2]; e++) {
        const unsigned char *q = o->w[e]->data, *s = o->s[e]->data;
        for (int64_t r = 0; rc == 0 && r < rows; r++) {
            const unsigned char *qr = q + r * (cols / 2), *sr = s + r * nb;
            for (int64_t b = 0; b < nb; b++) {
                unsigned char code[MXFP4_BLOCK], *dst = row + b * MXFP4_BYTES;
                for (int i = 0; i < 16; i++) {
                    code[2 * i] = qr[b * 16 + i] & 0x0f;
                    code[2 * i + 1] = qr[b * 16 + i] >> 4;
                }
                dst[0] = sr[b];
                for (int j = 0; j < 16; j++) dst[1 + j] = (unsigned char)(code[j] | code[j + 16] << 4);
            }
            rc = put(w, row, (size_t)(nb * MXFP4_BYTES), err);
        }
        safetensors_release(o->w[e]);
    }
    free(row);
    return rc;
}

static int write_one(ds_gguf_writer *w, const v_out *o, char *err) {
    int rc = o->kind == V_FLOAT ? write_float(w, o, err)
             : o->kind == V_I32 ? write_i32(w, o, err)
                                : write_mxfp4(w, o, err);
    if (o->src) safetensors_release(o->src);
    return rc;
}

/* ================================================================== the file */


int conv_v4_write(const options *o, const config *c, void (*tok)(ds_gguf_writer *w, const void *arg),
                  const void *tok_arg, char *err) {
    v_plan p = {0};
    p.opt = o;
    p.cfg = c;
    int rc = safetensors_dir_open(o->hf_dir, &p.st, err, CONV_ERR_LEN);
    if (rc == 0) rc = build(&p, err);
    ds_gguf_writer *w = NULL;
    if (rc == 0 && ds_gguf_writer_new(&w, err, CONV_ERR_LEN) != DS_OK) rc = -1;
    int begun = 0;
    uint64_t bytes = 0;
    if (rc == 0) {
        char name[256];
        ds_gguf_set_str(w, "general.architecture", c->arch->name);
        ds_gguf_set_str(w, "general.type", "model");
        ds_gguf_set_str(w, "general.name", o->name ? o->name : conv_default_name(o->hf_dir, name, sizeof name));
        v4_meta(w, o, c, NULL);
        if (tok) tok(w, tok_arg);
        ds_gguf_set_u32(w, "general.quantization_version", 2);
        for (size_t i = 0; i < p.n_out; i++) {
            const v_out *t = &p.out[i];
            ds_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne);
            bytes += (uint64_t)ds_type_row_size(t->type, t->ne[0]) * (uint64_t)rows_of(t);
        }
        rc = ds_gguf_writer_begin(w, o->out_path, err, CONV_ERR_LEN) == DS_OK ? 0 : -1;
        begun = rc == 0;
    }
    for (size_t i = 0; rc == 0 && i < p.n_out; i++) rc = write_one(w, &p.out[i], err);
    if (rc == 0 && ds_gguf_writer_finish(w, err, CONV_ERR_LEN) != DS_OK) rc = -1;
    ds_gguf_writer_free(w);
    if (rc != 0 && begun) remove(o->out_path);
    if (rc == 0)
        fprintf(stderr,
                "deepseek-convert: wrote %s: deepseek4 %s (routed experts MXFP4), %zu tensors, %.2f MiB of data, "
                "%s; skipped %zu source tensors and %zu MTP tensors (llama.cpp's converter keeps MTP out of the "
                "model file)\n",
                o->out_path, p.q8 ? "q8_0 (llama.cpp's types)" : ds_type_name(o->wtype), p.n_out,
                (double)bytes / 1048576.0, tok ? "tokenizer included" : "no tokenizer", p.n_skipped, p.n_mtp);
    free_plan(&p);
    safetensors_dir_close(p.st);
    return rc;
}
