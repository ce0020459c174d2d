/* deepseek-synth - a GGUF with random weights and the layer shapes of a real DeepSeek model.

   deepseek-synth -o OUT.gguf --shape NAME [--layers N] [--dense N] [--heads N] [--experts N]
                  [--vocab N] [--top-k N] [--no-indexer] [--type f16|bf16|f32] [--seed S]
                  [--tokenizer FILE.gguf]

   Benchmarks at real dimensions need no real checkpoint (tens to hundreds of GB): a shape keeps
   one model's per-layer widths and lets the counts that only multiply the file's size (layers,
   MLA heads, routed experts, vocabulary) be set. The shapes are DeepSeek's MLA models (V3.2 with
   its lightning indexer, V3 / R1, V2-Lite: architecture deepseek2 or deepseek32, MLA split into
   attn_k_b / attn_v_b), the R1 distills on other bases (Qwen2, Llama, Qwen3: grouped-query
   attention, q/k/v biases, llama3's rope_freqs, q/k norms, YaRN) and DeepSeekMoE 16B
   (architecture deepseek: multi-head attention, softmax-routed experts). Each file holds the
   tensors and keys llama.cpp's converter writes for such a model (norms, biases, the router,
   rope_freqs and the indexer's head weights in F32), so llama.cpp loads it too;
   deepseek-quantize makes its Q8_0 or Q4_K_M twin.

   Weights: each tensor has its own random stream, keyed by the seed and the tensor's name, so a
   seed always gives the same bytes, and files that differ in one setting share every tensor it
   does not touch: `--shape v32 --no-indexer` is v32 less its indexers, all else identical.
   Values are near-Gaussian (four uniforms summed) with std 1/sqrt(fan-in), so each projection
   keeps its input's scale; embeddings have std 1, norms are 1, the router's correction bias has
   std 0.01, q/k/v biases std 0.1; rope_freqs holds the converter's llama3 factors. Tensors are
   generated and written in pieces: memory stays a few MB whatever the model's size. There is no
   tokenizer (tokenizer.ggml.model "none", llama.cpp's word for it, with <arch>.vocab_size dummy
   tokens): benchmarks feed token ids. */
#include "deepseek.h"
#include "args.h"
#include "qmix.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROG "deepseek-synth"
/* values generated and written per piece */
#define CHUNK ((size_t)1 << 20)
/* DeepSeek's indexer keys are one FP8 block of 128 (the runtime and llama.cpp require it) */
#define IDX_DIM 128

/* ---- architectures: what llama.cpp's converter writes for each beyond the common decoder ---- */

typedef enum { ARCH_DEEPSEEK2, ARCH_QWEN2, ARCH_LLAMA, ARCH_QWEN3, ARCH_DEEPSEEK } arch_id;

typedef struct {
    const char *name; /* general.architecture (a deepseek2 shape with an indexer: deepseek32) */
    int mla;          /* DeepSeek-V2 attention and its keys (DeepseekV2Model); else q/k/v heads */
    int moe;          /* routed experts after the leading dense layers */
    int qkv_bias;     /* attn_q / attn_k / attn_v biases (Qwen2's checkpoints have them) */
    int qk_norm;      /* per-head RMS norms of q and k (Qwen3) */
    /* attention.key_length / value_length: the converter writes them when the transformers
       config has head_dim (Qwen3's config.json; LlamaConfig fills it in) */
    int head_dim_keys;
    int rope_dim_key;  /* rope.dimension_count (LlamaModel and DeepseekModel write it) */
    int rope_none_key; /* rope.scaling.type "none" (DeepseekModel writes it whatever the config) */
    /* llama.cpp takes the head width as hidden / heads when no key_length says otherwise */
    int head_from_embd;
} arch_info;

static const arch_info ARCHS[] = {
    [ARCH_DEEPSEEK2] = {.name = "deepseek2", .mla = 1, .moe = 1},
    [ARCH_QWEN2] = {.name = "qwen2", .qkv_bias = 1, .head_from_embd = 1},
    [ARCH_LLAMA] = {.name = "llama", .head_dim_keys = 1, .rope_dim_key = 1},
    [ARCH_QWEN3] = {.name = "qwen3", .qk_norm = 1, .head_dim_keys = 1},
    [ARCH_DEEPSEEK] = {.name = "deepseek", .moe = 1, .rope_dim_key = 1, .rope_none_key = 1, .head_from_embd = 1},
};

/* RoPE of the q/k-head architectures, as their configs' rope_scaling says (MLA shapes: YaRN) */
typedef enum { ROPE_PLAIN, ROPE_YARN, ROPE_LLAMA3 } rope_kind;

/* A model's dimensions: llama.cpp's hyper-parameters, in its converter's terms. */
typedef struct {
    const char *name, *what;
    arch_id arch;
    int indexer; /* deepseek32: a lightning indexer in every layer */
    int n_layer, n_dense, n_embd, n_ff, n_head, n_vocab, n_ctx;
    float rms_eps;
    /* MLA (arch deepseek2) */
    int q_lora, kv_lora, dn, dr, dv;
    /* q/k/v heads (the other architectures) */
    int n_head_kv, head_dim;
    /* experts */
    int n_expert, n_used, n_shared, n_ff_exp, n_group, n_group_used;
    int gating; /* llama.cpp's expert_gating_func: 1 softmax, 2 sigmoid */
    int exp_bias, exp_norm;
    float exp_scale;
    /* RoPE: YaRN's factor over rope_orig positions (MLA: yarn_log_multiplier = 0.1 x mscale_all,
       others: yarn_attn_factor when not 0), or llama3's factor between its low and high bands */
    rope_kind rope;
    float rope_theta, rope_factor, mscale_all, yarn_attn, rope_low, rope_high;
    int rope_orig;
    int idx_head, idx_topk;
    int dropped_indexer; /* --no-indexer took it away */
} shape;

/* MLA shapes: the released configs' widths (DeepSeek-V3.2-Exp's config.json, V3's, V2-Lite's),
   with fewer layers, heads, experts and tokens by default: see usage() for why. The others: the
   Hugging Face configs of DeepSeek-R1-Distill-Qwen-1.5B and -7B, -Llama-8B, DeepSeek-R1-0528-Qwen3-8B
   and deepseek-moe-16b, all of it (--layers cuts them). tiny-*: a few MB each, for tests
   (tiny-v32 and tiny-v2lite are tests/data/tiny-v32's and tiny-v2-lite's shapes; tiny-qwen3's q
   is wider than its hidden size, as Qwen3-0.6B's). */
/* clang-format off */
#define MLA_V3 .arch = ARCH_DEEPSEEK2, .n_embd = 7168, .n_ff = 18432, .q_lora = 1536, .kv_lora = 512, .dn = 128, \
    .dr = 64, .dv = 128, .n_expert = 16, .n_used = 8, .n_shared = 1, .n_ff_exp = 2048, .n_group = 8,             \
    .n_group_used = 4, .gating = 2, .exp_bias = 1, .exp_norm = 1, .exp_scale = 2.5f, .n_vocab = 32768,            \
    .n_ctx = 163840, .rms_eps = 1e-6f, .rope = ROPE_YARN, .rope_theta = 10000, .rope_orig = 4096,                  \
    .rope_factor = 40, .mscale_all = 1.0f
#define MLA_TINY .arch = ARCH_DEEPSEEK2, .n_layer = 3, .n_dense = 1, .n_embd = 256, .n_ff = 512, .n_head = 4,     \
    .kv_lora = 64, .dn = 32, .dr = 16, .dv = 32, .n_vocab = 1024, .n_ctx = 128, .rms_eps = 1e-6f,                \
    .rope = ROPE_YARN, .rope_theta = 10000, .rope_orig = 32, .rope_factor = 4
#define TINY_HEADS .n_layer = 3, .n_embd = 256, .n_ff = 512, .n_head = 4, .n_vocab = 1024
static const shape SHAPES[] = {
    {.name = "v32", .what = "DeepSeek-V3.2 (deepseek32: V3 + lightning indexer)", MLA_V3, .indexer = 1,
     .n_layer = 2, .n_dense = 0, .n_head = 16, .idx_head = 64, .idx_topk = 2048},
    {.name = "v3", .what = "DeepSeek-V3 / R1 (deepseek2): v32 without the indexer", MLA_V3,
     .n_layer = 2, .n_dense = 0, .n_head = 16},
    {.name = "v2lite", .what = "DeepSeek-V2-Lite (deepseek2: direct q, softmax top-6 of 64, 2 shared)",
     .arch = ARCH_DEEPSEEK2, .n_layer = 3, .n_dense = 1, .n_embd = 2048, .n_ff = 10944, .n_head = 16, .q_lora = 0,
     .kv_lora = 512, .dn = 128, .dr = 64, .dv = 128, .n_expert = 64, .n_used = 6, .n_shared = 2, .n_ff_exp = 1408,
     .n_group = 1, .n_group_used = 1, .gating = 1, .exp_scale = 1.0f, .n_vocab = 102400, .n_ctx = 163840,
     .rms_eps = 1e-6f, .rope = ROPE_YARN, .rope_theta = 10000, .rope_orig = 4096, .rope_factor = 40,
     .mscale_all = 0.707f},
    {.name = "qwen2-1.5b", .what = "DeepSeek-R1-Distill-Qwen-1.5B (qwen2: 12 q / 2 kv heads, q/k/v biases)",
     .arch = ARCH_QWEN2, .n_layer = 28, .n_embd = 1536, .n_ff = 8960, .n_head = 12, .n_head_kv = 2,
     .head_dim = 128, .n_vocab = 151936, .n_ctx = 131072, .rms_eps = 1e-6f, .rope_theta = 10000},
    {.name = "qwen2-7b", .what = "DeepSeek-R1-Distill-Qwen-7B (qwen2: 28 q / 4 kv heads, q/k/v biases)",
     .arch = ARCH_QWEN2, .n_layer = 28, .n_embd = 3584, .n_ff = 18944, .n_head = 28, .n_head_kv = 4,
     .head_dim = 128, .n_vocab = 152064, .n_ctx = 131072, .rms_eps = 1e-6f, .rope_theta = 10000},
    {.name = "llama-8b", .what = "DeepSeek-R1-Distill-Llama-8B (llama: 32 q / 8 kv heads, llama3 RoPE)",
     .arch = ARCH_LLAMA, .n_layer = 32, .n_embd = 4096, .n_ff = 14336, .n_head = 32, .n_head_kv = 8,
     .head_dim = 128, .n_vocab = 128256, .n_ctx = 131072, .rms_eps = 1e-5f, .rope = ROPE_LLAMA3,
     .rope_theta = 500000, .rope_factor = 8, .rope_low = 1, .rope_high = 4, .rope_orig = 8192},
    {.name = "qwen3-8b", .what = "DeepSeek-R1-0528-Qwen3-8B (qwen3: 32 q / 8 kv heads, q/k norms, YaRN x4)",
     .arch = ARCH_QWEN3, .n_layer = 36, .n_embd = 4096, .n_ff = 12288, .n_head = 32, .n_head_kv = 8,
     .head_dim = 128, .n_vocab = 151936, .n_ctx = 131072, .rms_eps = 1e-6f, .rope = ROPE_YARN,
     .rope_theta = 1000000, .rope_factor = 4, .rope_orig = 32768, .yarn_attn = 0.8782488562869419f},
    {.name = "deepseek-moe-16b", .what = "deepseek-moe-16b (deepseek: 16 heads, softmax top-6 of 64, 2 shared)",
     .arch = ARCH_DEEPSEEK, .n_layer = 28, .n_dense = 1, .n_embd = 2048, .n_ff = 10944, .n_head = 16,
     .n_head_kv = 16, .head_dim = 128, .n_expert = 64, .n_used = 6, .n_shared = 2, .n_ff_exp = 1408,
     .n_group = 1, .n_group_used = 1, .gating = 1, .exp_scale = 1.0f, .n_vocab = 102400, .n_ctx = 4096,
     .rms_eps = 1e-6f, .rope_theta = 10000},
    {.name = "tiny-v32", .what = "tests/data/tiny-v32's shape (deepseek32, indexer 8 x 128, top 16)", MLA_TINY,
     .indexer = 1, .q_lora = 96, .n_expert = 16, .n_used = 4, .n_shared = 1, .n_ff_exp = 32, .n_group = 4,
     .n_group_used = 2, .gating = 2, .exp_bias = 1, .exp_norm = 1, .exp_scale = 2.5f, .mscale_all = 1.0f,
     .idx_head = 8, .idx_topk = 16},
    {.name = "tiny-v3", .what = "tiny-v32 without the indexer (deepseek2)", MLA_TINY,
     .q_lora = 96, .n_expert = 16, .n_used = 4, .n_shared = 1, .n_ff_exp = 32, .n_group = 4, .n_group_used = 2,
     .gating = 2, .exp_bias = 1, .exp_norm = 1, .exp_scale = 2.5f, .mscale_all = 1.0f},
    {.name = "tiny-v2lite", .what = "a tiny V2-Lite (deepseek2: direct q, softmax top-3 of 8, 2 shared)", MLA_TINY,
     .q_lora = 0, .n_expert = 8, .n_used = 3, .n_shared = 2, .n_ff_exp = 32, .n_group = 1, .n_group_used = 1,
     .gating = 1, .exp_scale = 1.0f, .mscale_all = 0.707f},
    {.name = "tiny-qwen2", .what = "a tiny qwen2-1.5b (4 q / 2 kv heads of 64, q/k/v biases)", TINY_HEADS,
     .arch = ARCH_QWEN2, .n_head_kv = 2, .head_dim = 64, .n_ctx = 131072, .rms_eps = 1e-6f, .rope_theta = 10000},
    {.name = "tiny-llama", .what = "a tiny llama-8b (4 q / 2 kv heads of 64, llama3 RoPE)", TINY_HEADS,
     .arch = ARCH_LLAMA, .n_head_kv = 2, .head_dim = 64, .n_ctx = 131072, .rms_eps = 1e-5f, .rope = ROPE_LLAMA3,
     .rope_theta = 500000, .rope_factor = 8, .rope_low = 1, .rope_high = 4, .rope_orig = 8192},
    {.name = "tiny-qwen3", .what = "a tiny qwen3-8b (4 q / 2 kv heads of 128: q 512 wide, hidden 256)", TINY_HEADS,
     .arch = ARCH_QWEN3, .n_head_kv = 2, .head_dim = 128, .n_ctx = 131072, .rms_eps = 1e-6f, .rope = ROPE_YARN,
     .rope_theta = 1000000, .rope_factor = 4, .rope_orig = 32768, .yarn_attn = 0.8782488562869419f},
    {.name = "tiny-deepseek-moe", .what = "a tiny deepseek-moe-16b (4 heads, softmax top-3 of 8, 2 shared)",
     TINY_HEADS, .arch = ARCH_DEEPSEEK, .n_dense = 1, .n_head_kv = 4, .head_dim = 64, .n_expert = 8, .n_used = 3,
     .n_shared = 2, .n_ff_exp = 32, .n_group = 1, .n_group_used = 1, .gating = 1, .exp_scale = 1.0f, .n_ctx = 4096,
     .rms_eps = 1e-6f, .rope_theta = 10000},
};
/* clang-format on */
#define N_SHAPES (sizeof SHAPES / sizeof SHAPES[0])

static const arch_info *arch_of(const shape *s) { return &ARCHS[s->arch]; }

static const char *arch_name(const shape *s) { return s->indexer ? "deepseek32" : arch_of(s)->name; }

typedef struct {
    const char *out, *shape_name, *tokenizer;
    int layers, dense, heads, experts, vocab, top_k; /* -1: the shape's own */
    int type, seed, no_indexer, list;
} options;

static void usage(FILE *fp) {
    fputs("usage: deepseek-synth -o OUT.gguf --shape NAME [options]\n"
          "       deepseek-synth --list\n"
          "\n"
          "Writes a model with random weights and the layer shapes of a real DeepSeek model, for\n"
          "benchmarks (deepseek-bench, llama.cpp) at real dimensions. Quantize it with deepseek-quantize.\n"
          "\n"
          "  -o, --output FILE   the GGUF to write\n"
          "      --shape NAME    the model's widths:\n",
          fp);
    for (size_t i = 0; i < N_SHAPES; i++)
        fprintf(fp, "                        %-17s %s\n", SHAPES[i].name, SHAPES[i].what);
    fputs("      --layers N      decoder layers, leading dense layers included (default: the shape's;\n"
          "                      the R1 distills and deepseek-moe-16b have all of theirs)\n"
          "      --dense N       leading dense layers of an expert model (v32 / v3: 0, v2lite,\n"
          "                      deepseek-moe-16b and tiny-*: 1)\n"
          "      --heads N       MLA heads (the real models have 128 (V3, V3.2) and 16 (V2-Lite));\n"
          "                      the other shapes keep theirs\n"
          "      --experts N     routed experts per MoE layer (real: 256 and 64); a multiple of the\n"
          "                      shape's expert groups, enough for its experts per token\n"
          "      --vocab N       vocabulary (real: 129280 and 102400)\n"
          "      --top-k N       keys each query attends with the indexer (v32: 2048, as released)\n"
          "      --no-indexer    a deepseek32 shape as plain deepseek2: the same weights less the\n"
          "                      indexers (with the same --seed), V3.2's V3 twin\n"
          "      --type T        f16 (default), bf16 or f32 for the matrices; norms, biases, router,\n"
          "                      rope_freqs and the indexer's head weights are F32, as llama.cpp's\n"
          "                      converter writes them\n"
          "      --seed S        the weights' seed (default 1): the same seed, the same file\n"
          "      --tokenizer F   the tokenizer (and chat template) of the GGUF F instead of none, so\n"
          "                      that the model takes text (deepseek-server); the vocabulary is F's\n"
          "      --list          the shapes with their parameter counts and sizes (F16, and what\n"
          "                      deepseek-quantize's Q8_0 and Q4_K_M make of them)\n"
          "  -h, --help          this help\n"
          "      --version       the version\n"
          "\n"
          "v32's defaults: 2 MoE layers and no dense lead (V3.2: 61, 3 dense), 16 MLA heads (128),\n"
          "16 routed experts (256; still 8 used, from 4 of 8 groups), vocabulary 32768 (129280): 2.07 B\n"
          "parameters, a 4.1 GB F16 file, 2.2 GB as Q8_0. Per layer a token's experts and indexer cost\n"
          "what V3.2's do (8 experts of 2048 and a shared one; 64 x 128 indexer heads over every earlier\n"
          "key, MLA over the top 2048), its attention has 1/8 of the heads. The file fits in memory and\n"
          "a prompt token costs about 1.8 GFLOP of matmuls (V3.2: about 75), so contexts of 16k tokens,\n"
          "which a decode-speed-at-depth curve needs, can be filled on a small machine. Compare it with\n"
          "its V3 twin, --no-indexer. The other shapes are whole models (llama-8b: 16 GB as F16, 4.9 GB\n"
          "as Q4_K_M); --layers 2 makes a quick one with every kind of layer.\n",
          fp);
}

/* ---- options ---- */

static void parse_type(args_it *it, int *type) {
    const char *o = it->argv[it->i], *v = args_value(it);
    if (!v) return;
    if (!strcmp(v, "f16") || !strcmp(v, "F16")) *type = DS_TYPE_F16;
    else if (!strcmp(v, "bf16") || !strcmp(v, "BF16")) *type = DS_TYPE_BF16;
    else if (!strcmp(v, "f32") || !strcmp(v, "F32")) *type = DS_TYPE_F32;
    else args_fail(it, "%s: type '%s' is not written here (f16, bf16 or f32; deepseek-quantize quantizes)", o, v);
}

static int parse_args(int argc, char **argv, options *o) {
    args_it it = args_begin(PROG, argc, argv);
    for (const char *a; (a = args_next(&it));) {
        if (args_help_version(&it, a, usage, 0)) continue;
        if (args_is(a, "-o|--output")) o->out = args_value(&it);
        else if (args_is(a, "--shape")) o->shape_name = args_value(&it);
        else if (args_is(a, "--layers")) args_value_int(&it, 1, 4096, &o->layers);
        else if (args_is(a, "--dense")) args_value_int(&it, 0, 4096, &o->dense);
        else if (args_is(a, "--heads")) args_value_int(&it, 1, 1024, &o->heads);
        else if (args_is(a, "--experts")) args_value_int(&it, 1, 65536, &o->experts);
        else if (args_is(a, "--vocab")) args_value_int(&it, 1, 1 << 24, &o->vocab);
        else if (args_is(a, "--top-k")) args_value_int(&it, 1, 1 << 30, &o->top_k);
        else if (args_is(a, "--type")) parse_type(&it, &o->type);
        else if (args_is(a, "--seed")) args_value_int(&it, 0, 2147483647, &o->seed);
        else if (args_is(a, "--tokenizer")) o->tokenizer = args_value(&it);
        else if (args_is(a, "--no-indexer")) o->no_indexer = 1;
        else if (args_is(a, "--list")) o->list = 1;
        else args_unknown(&it);
    }
    if (it.failed) return -1;
    if (o->list) return 0;
    if (!o->shape_name) return args_none_given(&it, "shape", "--shape NAME");
    if (!o->out) return args_none_given(&it, "output file", "-o FILE");
    return 0;
}

static const shape *find_shape(const char *name) {
    for (size_t i = 0; i < N_SHAPES; i++)
        if (!strcmp(name, SHAPES[i].name)) return &SHAPES[i];
    return NULL;
}

PRINTF_LIKE(1, 2)
static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

/* The options a shape's architecture has no use for: each names what is missing. */
static int check_fit(const options *o, const shape *s) {
    if (o->top_k >= 0 && (!s->indexer || o->no_indexer))
        return usage_error("--top-k: the model has no indexer (shape '%s'%s)", s->name,
                           o->no_indexer ? ", --no-indexer" : "");
    if (o->heads >= 0 && !arch_of(s)->mla)
        return usage_error("--heads: only the MLA shapes' heads can be set (shape '%s' keeps its %d)", s->name,
                           s->n_head);
    if ((o->dense >= 0 || o->experts >= 0) && !arch_of(s)->moe)
        return usage_error("%s: the model has no experts (shape '%s')", o->dense >= 0 ? "--dense" : "--experts",
                           s->name);
    return 0;
}

/* Whether the routing counts can pick each token's experts. */
static int check_experts(const shape *s) {
    if (s->n_expert % s->n_group)
        return usage_error("--experts: %d experts do not split into the shape's %d expert groups", s->n_expert,
                           s->n_group);
    if (s->n_group == 1 && s->n_used > s->n_expert)
        return usage_error("--experts: %d experts, fewer than the %d each token uses", s->n_expert, s->n_used);
    /* a token's experts come from n_group_used groups of n_expert / n_group each */
    if (s->n_used > s->n_group_used * (s->n_expert / s->n_group))
        return usage_error("--experts: with %d experts, the %d groups a token uses hold fewer than its %d experts "
                           "(give at least %d)",
                           s->n_expert, s->n_group_used, s->n_used,
                           (s->n_used + s->n_group_used - 1) / s->n_group_used * s->n_group);
    return 0;
}

/* The shape with the options' counts, or -1 (said on stderr) when they cannot make a model. */
static int resolve(const options *o, const shape *base, shape *s) {
    *s = *base;
    if (check_fit(o, s)) return -1;
    if (o->layers >= 0) s->n_layer = o->layers;
    if (o->dense >= 0) s->n_dense = o->dense;
    if (o->heads >= 0) s->n_head = o->heads;
    if (o->experts >= 0) s->n_expert = o->experts;
    if (o->vocab >= 0) s->n_vocab = o->vocab;
    if (o->top_k >= 0) s->idx_topk = o->top_k;
    if (o->no_indexer && s->indexer) { /* a shape without one is left as it is */
        s->indexer = 0;
        s->dropped_indexer = 1;
    }
    if (arch_of(s)->head_from_embd && (int64_t)s->n_head * s->head_dim != s->n_embd) /* a table entry's slip */
        return usage_error("shape '%s': %d heads of %d are not its hidden size %d, which %s's loader needs", s->name,
                           s->n_head, s->head_dim, s->n_embd, arch_name(s));
    if (!arch_of(s)->moe) s->n_dense = s->n_layer; /* every layer is a dense one */
    if (s->n_dense > s->n_layer)
        return usage_error("--dense: %d leading dense layers, but the model has %d layers", s->n_dense, s->n_layer);
    if (s->n_dense == s->n_layer) return 0; /* no MoE layer: the routing counts do not matter */
    return check_experts(s);
}

/* ---- the tensors ---- */

typedef enum { INIT_RANDOM, INIT_VALUE, INIT_LLAMA3 } init_kind;

typedef struct {
    char name[64];
    ds_type type;
    int n_dims;
    int64_t ne[3];
    init_kind init;
    float std;   /* INIT_RANDOM: values of this std */
    float value; /* INIT_VALUE: every value */
} tensor_spec;

typedef struct {
    tensor_spec *t;
    size_t n, cap;
    int oom;
} plan;

static void add_init(plan *p, const char *name, ds_type type, int n_dims, const int64_t ne[3], init_kind init,
                     float std, float value) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        tensor_spec *t = realloc(p->t, cap * sizeof *t);
        if (!t) {
            p->oom = 1;
            return;
        }
        p->t = t;
        p->cap = cap;
    }
    tensor_spec *t = &p->t[p->n++];
    *t = (tensor_spec){
        .type = type, .n_dims = n_dims, .ne = {ne[0], ne[1], ne[2]}, .init = init, .std = std, .value = value};
    snprintf(t->name, sizeof t->name, "%s", name);
}

static void add(plan *p, const char *name, ds_type type, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2, float std,
                float value) {
    const int64_t ne[3] = {ne0, ne1, ne2};
    add_init(p, name, type, n_dims, ne, std > 0 ? INIT_RANDOM : INIT_VALUE, std, value);
}

/* blk.IL.SUFFIX */
static const char *blk(int il, const char *suffix) {
    static char name[64];
    snprintf(name, sizeof name, "blk.%d.%s", il, suffix);
    return name;
}

/* A projection with rows of ne0 inputs: std 1/sqrt(ne0) keeps its input's scale. */
static void mat(plan *p, const char *name, ds_type type, int64_t ne0, int64_t ne1, int64_t ne2) {
    add(p, name, type, ne2 > 1 ? 3 : 2, ne0, ne1, ne2, (float)(1.0 / sqrt((double)ne0)), 0);
}

static void vec(plan *p, const char *name, int64_t n, float value) { add(p, name, DS_TYPE_F32, 1, n, 1, 1, 0, value); }

/* A bias: small next to its projection's outputs (std 1), but not nothing, so that a forward
   pass that drops it gives other logits. */
static void bias(plan *p, const char *name, int64_t n) { add(p, name, DS_TYPE_F32, 1, n, 1, 1, 0.1f, 0); }

static void plan_mla(plan *p, const shape *s, ds_type type, int il) {
    const int64_t D = s->n_embd, H = s->n_head, R = s->kv_lora, qk = s->dn + s->dr;
    vec(p, blk(il, "attn_norm.weight"), D, 1);
    if (s->q_lora) {
        mat(p, blk(il, "attn_q_a.weight"), type, D, s->q_lora, 1);
        vec(p, blk(il, "attn_q_a_norm.weight"), s->q_lora, 1);
        mat(p, blk(il, "attn_q_b.weight"), type, s->q_lora, H * qk, 1);
    } else {
        mat(p, blk(il, "attn_q.weight"), type, D, H * qk, 1);
    }
    mat(p, blk(il, "attn_kv_a_mqa.weight"), type, D, R + s->dr, 1);
    vec(p, blk(il, "attn_kv_a_norm.weight"), R, 1);
    mat(p, blk(il, "attn_k_b.weight"), type, s->dn, R, H);
    mat(p, blk(il, "attn_v_b.weight"), type, R, s->dv, H);
    mat(p, blk(il, "attn_output.weight"), type, H * s->dv, D, 1);
}

/* q/k/v heads (llama.cpp's create_tensor_qkv, unfused, as the converters write them) */
static void plan_qkv(plan *p, const shape *s, ds_type type, int il) {
    const arch_info *a = arch_of(s);
    const int64_t D = s->n_embd, Q = (int64_t)s->n_head * s->head_dim, KV = (int64_t)s->n_head_kv * s->head_dim;
    vec(p, blk(il, "attn_norm.weight"), D, 1);
    mat(p, blk(il, "attn_q.weight"), type, D, Q, 1);
    mat(p, blk(il, "attn_k.weight"), type, D, KV, 1);
    mat(p, blk(il, "attn_v.weight"), type, D, KV, 1);
    if (a->qkv_bias) {
        bias(p, blk(il, "attn_q.bias"), Q);
        bias(p, blk(il, "attn_k.bias"), KV);
        bias(p, blk(il, "attn_v.bias"), KV);
    }
    mat(p, blk(il, "attn_output.weight"), type, Q, D, 1);
    if (!a->qk_norm) return;
    vec(p, blk(il, "attn_k_norm.weight"), s->head_dim, 1);
    vec(p, blk(il, "attn_q_norm.weight"), s->head_dim, 1);
}

static void plan_indexer(plan *p, const shape *s, ds_type type, int il) {
    mat(p, blk(il, "indexer.attn_q_b.weight"), type, s->q_lora, (int64_t)s->idx_head * IDX_DIM, 1);
    mat(p, blk(il, "indexer.attn_k.weight"), type, s->n_embd, IDX_DIM, 1);
    vec(p, blk(il, "indexer.k_norm.weight"), IDX_DIM, 1);
    vec(p, blk(il, "indexer.k_norm.bias"), IDX_DIM, 0);
    mat(p, blk(il, "indexer.proj.weight"), DS_TYPE_F32, s->n_embd, s->idx_head, 1);
}

static void plan_ffn(plan *p, const shape *s, ds_type type, int il) {
    const int64_t D = s->n_embd, E = s->n_expert, Fe = s->n_ff_exp, Fs = (int64_t)s->n_ff_exp * s->n_shared;
    vec(p, blk(il, "ffn_norm.weight"), D, 1);
    if (il < s->n_dense) {
        mat(p, blk(il, "ffn_gate.weight"), type, D, s->n_ff, 1);
        mat(p, blk(il, "ffn_up.weight"), type, D, s->n_ff, 1);
        mat(p, blk(il, "ffn_down.weight"), type, s->n_ff, D, 1);
        return;
    }
    mat(p, blk(il, "ffn_gate_inp.weight"), DS_TYPE_F32, D, E, 1);
    if (s->exp_bias) add(p, blk(il, "exp_probs_b.bias"), DS_TYPE_F32, 1, E, 1, 1, 0.01f, 0);
    /* stacked experts: 3-D even for one expert, as the loader's shapes say */
    add(p, blk(il, "ffn_gate_exps.weight"), type, 3, D, Fe, E, (float)(1.0 / sqrt((double)D)), 0);
    add(p, blk(il, "ffn_up_exps.weight"), type, 3, D, Fe, E, (float)(1.0 / sqrt((double)D)), 0);
    add(p, blk(il, "ffn_down_exps.weight"), type, 3, Fe, D, E, (float)(1.0 / sqrt((double)Fe)), 0);
    if (!s->n_shared) return;
    mat(p, blk(il, "ffn_gate_shexp.weight"), type, D, Fs, 1);
    mat(p, blk(il, "ffn_up_shexp.weight"), type, D, Fs, 1);
    mat(p, blk(il, "ffn_down_shexp.weight"), type, Fs, D, 1);
}

/* Every tensor in llama.cpp's converter's order: rope_freqs (LlamaModel's generate_extra_tensors
   come first), the embedding, the layers, the head. */
static int make_plan(const shape *s, ds_type type, plan *p) {
    if (s->rope == ROPE_LLAMA3) {
        const int64_t ne[3] = {s->head_dim / 2, 1, 1};
        add_init(p, "rope_freqs.weight", DS_TYPE_F32, 1, ne, INIT_LLAMA3, 0, 0);
    }
    add(p, "token_embd.weight", type, 2, s->n_embd, s->n_vocab, 1, 1.0f, 0);
    for (int il = 0; il < s->n_layer; il++) {
        if (arch_of(s)->mla) plan_mla(p, s, type, il);
        else plan_qkv(p, s, type, il);
        if (s->indexer) plan_indexer(p, s, type, il);
        plan_ffn(p, s, type, il);
    }
    vec(p, "output_norm.weight", s->n_embd, 1);
    mat(p, "output.weight", type, s->n_embd, s->n_vocab, 1);
    return p->oom ? -1 : 0;
}

static int64_t n_elems(const tensor_spec *t) { return t->ne[0] * t->ne[1] * t->ne[2]; }

static double spec_bytes(const tensor_spec *t, ds_type type) {
    return (double)ds_type_row_size(type, t->ne[0]) * (double)(t->ne[1] * t->ne[2]);
}

/* The tensor bytes of deepseek-quantize's FTYPE (a llama.cpp file type) of the plan, by the
   quantizer's own rules (qmix.c), or -1 when they refuse it. */
static double quantized_bytes(const shape *s, const plan *p, const char *ftype) {
    char err[256];
    const qmix_ftype *ft = qmix_find_ftype(ftype, err, sizeof err);
    qmix_tensor *t = calloc(p->n + 1, sizeof *t);
    size_t *order = calloc(p->n + 1, sizeof *order);
    ds_type *types = calloc(p->n + 1, sizeof *types);
    const int64_t n_head_kv = arch_of(s)->mla ? 1 : s->n_head_kv; /* split MLA is MQA over the latent */
    const int64_t n_expert = arch_of(s)->moe ? s->n_expert : 0;
    qmix_model m = {n_expert, s->n_head, n_head_kv, s->n_layer};
    qmix_opts o;
    double bytes = -1;
    if (ft && t && order && types) {
        for (size_t i = 0; i < p->n; i++)
            t[i] = (qmix_tensor){p->t[i].name, p->t[i].type, {p->t[i].ne[0], p->t[i].ne[1], p->t[i].ne[2], 1}};
        qmix_opts_init(&o, ft);
        o.type_70b = qmix_type_70b(arch_name(s), s->n_layer, s->n_head, n_head_kv, n_expert);
        if (qmix_plan(&o, &m, t, p->n, order, types, err, sizeof err) == 0) bytes = 0;
        for (size_t i = 0; bytes >= 0 && i < p->n; i++) bytes += spec_bytes(&p->t[i], types[i]);
        qmix_opts_free(&o);
    }
    free(t);
    free(order);
    free(types);
    return bytes;
}

static void plan_sizes(const plan *p, double *params, double *bytes) {
    *params = *bytes = 0;
    for (size_t i = 0; i < p->n; i++) {
        *params += (double)n_elems(&p->t[i]);
        *bytes += spec_bytes(&p->t[i], p->t[i].type);
    }
}

/* ---- metadata: llama.cpp's converter's keys, under the architecture's prefix ---- */

typedef struct {
    ds_gguf_writer *w;
    const char *arch;
} meta;

static const char *key(const meta *m, const char *k) {
    static char buf[128];
    snprintf(buf, sizeof buf, "%s.%s", m->arch, k);
    return buf;
}

static void u32(const meta *m, const char *k, uint32_t v) { ds_gguf_set_u32(m->w, key(m, k), v); }
static void f32(const meta *m, const char *k, float v) { ds_gguf_set_f32(m->w, key(m, k), v); }
static void str(const meta *m, const char *k, const char *v) { ds_gguf_set_str(m->w, key(m, k), v); }
static void flag(const meta *m, const char *k) { ds_gguf_set_bool(m->w, key(m, k), 1); }

static uint32_t file_type(ds_type t) { return t == DS_TYPE_F32 ? 0 : t == DS_TYPE_F16 ? 1 : 32; }

static void meta_general(const meta *m, const shape *s, ds_type type) {
    char name[96];
    snprintf(name, sizeof name, "synth-%s%s", s->name, s->dropped_indexer ? "-no-indexer" : "");
    ds_gguf_set_str(m->w, "general.architecture", m->arch);
    ds_gguf_set_str(m->w, "general.type", "model");
    ds_gguf_set_str(m->w, "general.name", name);
    ds_gguf_set_u32(m->w, "general.file_type", file_type(type));
}

/* DeepseekV2Model's keys (deepseek2, deepseek32) */
static void meta_mla(const meta *m, const shape *s) {
    u32(m, "block_count", (uint32_t)s->n_layer);
    u32(m, "context_length", (uint32_t)s->n_ctx);
    u32(m, "embedding_length", (uint32_t)s->n_embd);
    u32(m, "feed_forward_length", (uint32_t)s->n_ff);
    u32(m, "attention.head_count", (uint32_t)s->n_head);
    u32(m, "attention.head_count_kv", 1); /* absorbed MLA is MQA over the latent */
    f32(m, "attention.layer_norm_rms_epsilon", s->rms_eps);
    u32(m, "leading_dense_block_count", (uint32_t)s->n_dense);
    u32(m, "vocab_size", (uint32_t)s->n_vocab);
    u32(m, "attention.q_lora_rank", (uint32_t)s->q_lora);
    u32(m, "attention.kv_lora_rank", (uint32_t)s->kv_lora);
    u32(m, "attention.key_length", (uint32_t)(s->kv_lora + s->dr));
    u32(m, "attention.value_length", (uint32_t)s->kv_lora);
    u32(m, "attention.key_length_mla", (uint32_t)(s->dn + s->dr));
    u32(m, "attention.value_length_mla", (uint32_t)s->dv);
    u32(m, "rope.dimension_count", (uint32_t)s->dr);
    f32(m, "rope.freq_base", s->rope_theta);
    str(m, "rope.scaling.type", "yarn");
    f32(m, "rope.scaling.factor", s->rope_factor);
    u32(m, "rope.scaling.original_context_length", (uint32_t)s->rope_orig);
    f32(m, "rope.scaling.yarn_beta_fast", 32.0f);
    f32(m, "rope.scaling.yarn_beta_slow", 1.0f);
    f32(m, "rope.scaling.yarn_log_multiplier", 0.1f * s->mscale_all); /* loaders divide by 0.1 again */
}

static void meta_mla_moe(const meta *m, const shape *s) {
    u32(m, "expert_count", (uint32_t)s->n_expert);
    u32(m, "expert_used_count", (uint32_t)s->n_used);
    u32(m, "expert_group_count", (uint32_t)s->n_group);
    u32(m, "expert_group_used_count", (uint32_t)s->n_group_used);
    u32(m, "expert_gating_func", (uint32_t)s->gating);
    u32(m, "expert_feed_forward_length", (uint32_t)s->n_ff_exp);
    u32(m, "expert_shared_count", (uint32_t)s->n_shared);
    f32(m, "expert_weights_scale", s->exp_scale);
    if (s->exp_norm) flag(m, "expert_weights_norm");
    if (!s->indexer) return;
    u32(m, "attention.indexer.head_count", (uint32_t)s->idx_head);
    u32(m, "attention.indexer.key_length", IDX_DIM);
    u32(m, "attention.indexer.top_k", (uint32_t)s->idx_topk);
}

/* TextModel.set_gguf_parameters' RoPE keys: YaRN's from rope_scaling (llama3's factors are the
   rope_freqs tensor instead), then the base frequency. */
static void meta_rope(const meta *m, const shape *s) {
    if (s->rope == ROPE_YARN) {
        str(m, "rope.scaling.type", "yarn");
        f32(m, "rope.scaling.factor", s->rope_factor);
        u32(m, "rope.scaling.original_context_length", (uint32_t)s->rope_orig);
        if (s->yarn_attn) f32(m, "rope.scaling.yarn_attn_factor", s->yarn_attn);
    }
    f32(m, "rope.freq_base", s->rope_theta);
}

/* The q/k/v-head architectures: TextModel.set_gguf_parameters' keys, then the model class's. */
static void meta_qkv(const meta *m, const shape *s) {
    const arch_info *a = arch_of(s);
    u32(m, "block_count", (uint32_t)s->n_layer);
    u32(m, "context_length", (uint32_t)s->n_ctx);
    u32(m, "embedding_length", (uint32_t)s->n_embd);
    u32(m, "feed_forward_length", (uint32_t)s->n_ff);
    u32(m, "attention.head_count", (uint32_t)s->n_head);
    u32(m, "attention.head_count_kv", (uint32_t)s->n_head_kv);
    meta_rope(m, s);
    f32(m, "attention.layer_norm_rms_epsilon", s->rms_eps);
    if (a->moe) {
        u32(m, "expert_count", (uint32_t)s->n_expert);
        u32(m, "expert_used_count", (uint32_t)s->n_used);
        u32(m, "expert_gating_func", (uint32_t)s->gating); /* scoring_func */
    }
    if (a->head_dim_keys) {
        u32(m, "attention.key_length", (uint32_t)s->head_dim);
        u32(m, "attention.value_length", (uint32_t)s->head_dim);
    }
    /* LlamaModel and DeepseekModel write vocab_size; for qwen2 and qwen3, whose converter writes
       the token list instead, it is the count llama.cpp reads for the "none" tokenizer's tokens */
    u32(m, "vocab_size", (uint32_t)s->n_vocab);
    if (a->rope_dim_key) u32(m, "rope.dimension_count", (uint32_t)s->head_dim);
    if (a->rope_none_key) str(m, "rope.scaling.type", "none");
    if (!a->moe) return;
    u32(m, "leading_dense_block_count", (uint32_t)s->n_dense);
    u32(m, "expert_feed_forward_length", (uint32_t)s->n_ff_exp);
    f32(m, "expert_weights_scale", s->exp_scale);
    u32(m, "expert_shared_count", (uint32_t)s->n_shared);
}

/* --tokenizer: the GGUF whose tokenizer.* keys the model takes (NULL: none). */
static ds_gguf *tokenizer_gguf;

/* The tokenizer of --tokenizer's file, or none: "none" is llama.cpp's word for it, and
   vocab_size its dummy tokens' count. */
static void meta_vocab(const meta *m) {
    if (!tokenizer_gguf) {
        ds_gguf_set_str(m->w, "tokenizer.ggml.model", "none");
        return;
    }
    for (size_t i = 0; i < ds_gguf_n_kv(tokenizer_gguf); i++)
        if (!strncmp(ds_gguf_kv_key(tokenizer_gguf, i), "tokenizer.", 10)) ds_gguf_copy_kv(m->w, tokenizer_gguf, i);
}

/* Opens --tokenizer's file; the vocabulary is its token count unless --vocab asks for more. */
static int open_tokenizer(options *o) {
    char err[512];
    ds_model *m = NULL;
    if (ds_model_load(o->tokenizer, &m, err, sizeof err) || ds_gguf_open(o->tokenizer, &tokenizer_gguf, err, sizeof err)) {
        fprintf(stderr, PROG ": --tokenizer: %s\n", err);
        ds_model_free(m);
        return -1;
    }
    int n = ds_model_n_tokens(m);
    ds_model_free(m);
    if (n < 1) {
        fprintf(stderr, PROG ": --tokenizer %s: the file has no tokenizer\n", o->tokenizer);
        return -1;
    }
    if (o->vocab < 0) o->vocab = n;
    if (o->vocab < n) {
        fprintf(stderr, PROG ": --vocab %d: %s's tokenizer has %d tokens\n", o->vocab, o->tokenizer, n);
        return -1;
    }
    return 0;
}

static void meta_model(const meta *m, const shape *s, ds_type type) {
    meta_general(m, s, type);
    if (arch_of(s)->mla) {
        meta_mla(m, s);
        meta_mla_moe(m, s);
    } else {
        meta_qkv(m, s);
    }
    meta_vocab(m);
}

/* ---- random values: xoshiro256**, one stream per tensor ---- */

typedef struct {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The stream of one tensor: the seed and the name's FNV-1a hash. */
static void rng_seed(rng *r, uint64_t seed, const char *name) {
    uint64_t h = 1469598103934665603ull, x = seed;
    for (const char *c = name; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
    x = splitmix64(&x) ^ h;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Mean 0, std 1: the sum of four 16-bit uniforms (Irwin-Hall), one draw per value; near
   enough to a Gaussian for weights, with tails cut at 3.46 std. */
static float rng_normal(rng *r) {
    uint64_t v = rng_next(r);
    float sum = (float)(v & 0xffff) + (float)((v >> 16) & 0xffff) + (float)((v >> 32) & 0xffff) + (float)(v >> 48);
    return ((sum + 2.0f) / 65536.0f - 2.0f) * 1.7320508f;
}

/* ---- writing ---- */

typedef struct {
    ds_gguf_writer *w;
    const shape *s;
    uint64_t seed;
    float *vals;
    uint8_t *bytes;
    double done, total; /* values */
    int tty;
    char err[512];
} writer;

/* llama3's divisor of rotary frequency i (of head_dim / 2), as LlamaModel.generate_extra_tensors
   computes it in float32: 1 for wavelengths under original / high, the factor above
   original / low, and between them the smooth blend. */
static float llama3_factor(const shape *s, int64_t i) {
    const float freq = 1.0f / powf(s->rope_theta, (float)(2 * i) / (float)s->head_dim);
    const float wavelen = (float)(2 * 3.14159265358979323846) / freq, orig = (float)s->rope_orig;
    if (wavelen < orig / s->rope_high) return 1.0f;
    if (wavelen > orig / s->rope_low) return s->rope_factor;
    const float smooth = (orig / wavelen - s->rope_low) / (s->rope_high - s->rope_low);
    return 1.0f / ((1.0f - smooth) / s->rope_factor + smooth);
}

/* Values [at, at + n) of tensor t. */
static void fill(const shape *s, const tensor_spec *t, rng *r, float *v, int64_t at, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (t->init == INIT_RANDOM) v[i] = t->std * rng_normal(r);
        else if (t->init == INIT_LLAMA3) v[i] = llama3_factor(s, at + (int64_t)i);
        else v[i] = t->value;
    }
}

static const void *encode(ds_type type, const float *v, uint8_t *out, size_t n, size_t *n_bytes) {
    uint16_t *h = (uint16_t *)out;
    if (type == DS_TYPE_F32) {
        *n_bytes = n * sizeof *v;
        return v;
    }
    for (size_t i = 0; i < n; i++) h[i] = type == DS_TYPE_F16 ? ds_fp32_to_fp16(v[i]) : ds_fp32_to_bf16(v[i]);
    *n_bytes = n * sizeof *h;
    return out;
}

static void progress(const writer *wr) {
    if (wr->tty) fprintf(stderr, "\r" PROG ": %5.1f%%", 100.0 * wr->done / (wr->total > 0 ? wr->total : 1));
}

static int write_tensor(writer *wr, const tensor_spec *t) {
    rng r;
    rng_seed(&r, wr->seed, t->name);
    for (int64_t at = 0, n = n_elems(t); at < n; at += (int64_t)CHUNK) {
        size_t k = n - at < (int64_t)CHUNK ? (size_t)(n - at) : CHUNK, n_bytes;
        fill(wr->s, t, &r, wr->vals, at, k);
        const void *b = encode(t->type, wr->vals, wr->bytes, k, &n_bytes);
        if (ds_gguf_writer_write(wr->w, b, n_bytes, wr->err, sizeof wr->err)) return -1;
        wr->done += (double)k;
        progress(wr);
    }
    return 0;
}

static int write_model(const options *o, const shape *s, const plan *p, writer *wr) {
    const meta m = {wr->w, arch_name(s)};
    meta_model(&m, s, (ds_type)o->type);
    for (size_t i = 0; i < p->n; i++) ds_gguf_add_tensor(wr->w, p->t[i].name, p->t[i].type, p->t[i].n_dims, p->t[i].ne);
    if (ds_gguf_writer_begin(wr->w, o->out, wr->err, sizeof wr->err)) return -1;
    for (size_t i = 0; i < p->n; i++)
        if (write_tensor(wr, &p->t[i])) return -2;
    if (ds_gguf_writer_finish(wr->w, wr->err, sizeof wr->err)) return -2;
    return 0;
}

/* "2.07 B" / "3.1 M"; "4.14 GB" / "5.0 MB" */
static const char *amount(char *buf, size_t n, double x, const char *big, const char *small) {
    if (x < 0) snprintf(buf, n, "?"); /* the quantizer's rules refuse the model */
    else if (x >= 1e9) snprintf(buf, n, "%.2f %s", x / 1e9, big);
    else snprintf(buf, n, "%.1f %s", x / 1e6, small);
    return buf;
}

/* "28 layers (1 dense), 16 heads (16 kv), 64 experts (6 used)": what the counts are */
static void describe_counts(FILE *fp, const shape *s) {
    const arch_info *a = arch_of(s);
    fprintf(fp, "%d layers", s->n_layer);
    if (a->moe) fprintf(fp, " (%d dense)", s->n_dense);
    fprintf(fp, ", %d heads", s->n_head);
    if (!a->mla) fprintf(fp, " (%d kv)", s->n_head_kv);
    if (a->moe) fprintf(fp, ", %d experts (%d used)", s->n_expert, s->n_used);
    fprintf(fp, ", vocab %d", s->n_vocab);
    if (s->indexer) fprintf(fp, ", indexer %dx%d top %d", s->idx_head, IDX_DIM, s->idx_topk);
}

static void describe(FILE *fp, const shape *s, const plan *p, ds_type type) {
    double params, bytes, q8 = quantized_bytes(s, p, "Q8_0"), q4 = quantized_bytes(s, p, "Q4_K_M");
    char a[32], b[32], c[32], d[32];
    plan_sizes(p, &params, &bytes);
    fprintf(fp, "%s%s (%s): ", s->name, s->dropped_indexer ? " without its indexers" : "", arch_name(s));
    describe_counts(fp, s);
    fprintf(fp, ": %s parameters, %s %s, as Q8_0 %s, Q4_K_M %s\n", amount(a, sizeof a, params, "B", "M"),
            ds_type_name(type), amount(b, sizeof b, bytes, "GB", "MB"), amount(c, sizeof c, q8, "GB", "MB"),
            amount(d, sizeof d, q4, "GB", "MB"));
}

static const options DEFAULTS = {
    .layers = -1, .dense = -1, .heads = -1, .experts = -1, .vocab = -1, .top_k = -1, .type = DS_TYPE_F16, .seed = 1};

static int list_shapes(void) {
    for (size_t i = 0; i < N_SHAPES; i++) {
        plan p = {0};
        shape s;
        if (resolve(&DEFAULTS, &SHAPES[i], &s)) return 1;
        if (make_plan(&s, DS_TYPE_F16, &p)) {
            free(p.t);
            fprintf(stderr, PROG ": out of memory\n");
            return 1;
        }
        describe(stdout, &s, &p, DS_TYPE_F16);
        free(p.t);
    }
    return fflush(stdout) ? 1 : 0;
}

static int run(const options *o, const shape *s) {
    plan p = {0};
    writer wr = {.s = s, .seed = (uint64_t)o->seed, .tty = isatty(STDERR_FILENO)};
    int rc = make_plan(s, (ds_type)o->type, &p);
    wr.vals = malloc(CHUNK * sizeof *wr.vals);
    wr.bytes = malloc(CHUNK * sizeof(uint16_t));
    if (rc || !wr.vals || !wr.bytes || ds_gguf_writer_new(&wr.w, wr.err, sizeof wr.err)) {
        if (!wr.err[0]) snprintf(wr.err, sizeof wr.err, "out of memory");
        rc = -1;
    }
    if (!rc) {
        double params, bytes;
        plan_sizes(&p, &params, &bytes);
        wr.total = params;
        fprintf(stderr, PROG ": writing %s: ", o->out);
        describe(stderr, s, &p, (ds_type)o->type);
        rc = write_model(o, s, &p, &wr);
        if (wr.tty) fputc('\n', stderr);
    }
    if (rc == -2) remove_partial(o->out);
    if (rc) fprintf(stderr, PROG ": %s\n", wr.err);
    ds_gguf_writer_free(wr.w);
    free(wr.vals);
    free(wr.bytes);
    free(p.t);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    options o = DEFAULTS;
    if (parse_args(argc, argv, &o)) return 1;
    if (o.list) return list_shapes();
    const shape *base = find_shape(o.shape_name);
    if (!base) {
        fprintf(stderr, PROG ": --shape: unknown shape '%s' (", o.shape_name);
        for (size_t i = 0; i < N_SHAPES; i++) fprintf(stderr, "%s%s", i ? ", " : "", SHAPES[i].name);
        fputs(")\n", stderr);
        return 1;
    }
    shape s;
    if (o.tokenizer && open_tokenizer(&o)) return 1;
    int rc = resolve(&o, base, &s) ? 1 : run(&o, &s);
    ds_gguf_close(tokenizer_gguf);
    return rc;
}
