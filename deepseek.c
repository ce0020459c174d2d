/* deepseek.c - the core of the DeepSeek CPU runtime, in the order a reader needs it. See
   deepseek.h for the API and its conventions.

    1. Errors, the model file, the model and the context: the structs everything else uses
    2. The forward pass, in the papers' order: embedding; attention (MLA, absorbed over the
       latent cache, in the split and the legacy layout; DeepSeek Sparse Attention's lightning
       indexer); feed-forward (dense SwiGLU, DeepSeekMoE with its router); the head; the MTP
       module
    3. Architectures (a table entry each: hyper-parameters, tensors, each layer's attention and
       feed-forward) and model loading
    4. Contexts: creation and evaluation
   The machinery:
    5. Matmul dispatch (float and block-format weights, OpenBLAS panels)
    6. The thread pool
    7. The KV cache and the scratch memory
    8. The sampler
    9. The vocabulary and the tokenizer
   10. GGUF: the reader
   11. GGUF: the writer
   12. GGUF: the reading API
   Chat formats are chat.c's: they turn a conversation into text through the public API. */
#include "deepseek.h"
#include "quant/quant.h"
#include "util.h"
#include "simd/simd.h"

#include <errno.h>
#include <float.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#ifdef DS_HAVE_OPENBLAS
#include <cblas.h>
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "GGUF files and this reader are little-endian"
#endif

/* ========================================================================================== */
/* 1. Errors, the model file, the model and the context                                       */
/* ========================================================================================== */

#ifndef DS_VERSION
#define DS_VERSION "unknown" /* meson passes the project's version */
#endif
const char *ds_version(void) { return DS_VERSION; }

const char *ds_status_name(ds_status s) {
    switch (s) {
    case DS_OK: return "ok";
    case DS_ERR_IO: return "i/o error";
    case DS_ERR_FORMAT: return "invalid file";
    case DS_ERR_UNSUPPORTED: return "unsupported";
    case DS_ERR_NOMEM: return "out of memory";
    case DS_ERR_ARG: return "invalid argument";
    case DS_ERR_CONTEXT_FULL: return "context full";
    case DS_ERR_SMALL_BUFFER: return "buffer too small";
    }
    return "unknown status";
}

/* fail(status, err, err_size, fmt, ...): the one way a function here reports failure (util.h). */

#define TRY(x)              \
    do {                    \
        ds_status s_ = (x); \
        if (s_) return s_;  \
    } while (0)

/* ---- the model file: a GGUF, mapped (section 10 reads and validates it) ---- */

/* clang-format off */
enum {
    GGUF_U8, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STR,
    GGUF_ARR, GGUF_U64, GGUF_I64, GGUF_F64, GGUF_NTYPES
};
static const size_t gguf_scalar_size[GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
/* clang-format on */

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGN 32

typedef struct {
    char *key;
    uint32_t type;      /* GGUF_* */
    uint32_t arr_type;  /* element type when type == GGUF_ARR */
    uint64_t n;         /* elements when type == GGUF_ARR */
    const uint8_t *val; /* the value's bytes (an array's first element) in the mapping */
} gguf_kv;

typedef struct {
    char *name;
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* unused dims are 1 */
    ds_type type;
    uint64_t offset; /* from the start of the data section */
    size_t size;
    const uint8_t *data;
} gguf_tensor;

typedef struct {
    char *path;
    uint8_t *map;
    size_t size;
    bool in_memory; /* map is a malloc'd copy of the file (ds_model_params.use_mmap = 0) */
    uint32_t version;
    size_t alignment;
    gguf_kv *kv;
    size_t n_kv;
    gguf_tensor *t;
    size_t n_t;
    size_t data_off;
} gguf_file;

static ds_status gguf_open(const char *path, bool use_mmap, gguf_file **out, char *err, size_t err_size);
static void gguf_close(gguf_file *f);
static const gguf_kv *gguf_find(const gguf_file *f, const char *key);
static const gguf_tensor *gguf_tensor_find(const gguf_file *f, const char *name);
static ds_status meta_int(const gguf_file *f, const char *key, bool required, int64_t lo, int64_t hi, int64_t *v,
                          char *err, size_t err_size);
static ds_status meta_float(const gguf_file *f, const char *key, bool required, float *v, char *err, size_t err_size);
static void meta_str(const gguf_file *f, const char *key, char *buf, size_t n);
static char *dup_n(const char *p, size_t n);

/* A growable byte buffer that remembers running out of memory (section 11). */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} byte_buf;
static void buf_put(byte_buf *b, const void *src, size_t n);

/* ---- the model ---- */

/* How routing turns router logits into expert scores: llama.cpp's expert_gating_func values. */
typedef enum { GATING_SOFTMAX = 1, GATING_SIGMOID = 2 } ds_gating;

typedef struct {
    int n_vocab, n_ctx_train, n_embd, n_layer, n_nextn;
    int n_head, n_ff, q_lora_rank, kv_lora_rank;
    int dn, dr, dv; /* per-head nope / rope / value dims */
    int n_lead_dense;
    int n_expert, n_expert_used, n_expert_shared, n_ff_exp;
    ds_gating gating;
    int n_group, n_group_used;
    float expert_scale;
    bool expert_norm;
    float rms_eps;
    float rope_base;
    bool yarn;
    float rope_factor, yarn_log_mul, beta_fast, beta_slow;
    int rope_orig_ctx;
    bool mla_split; /* attn_k_b + attn_v_b rather than the legacy attn_kv_b */
    /* DeepSeek Sparse Attention (deepseek32): the lightning indexer's heads, their width (one
       FP8 block), and how many keys each query attends; idx_topk 0 without it */
    int idx_n_head, idx_dim, idx_topk;
    /* grouped-query attention (llama, qwen2, qwen3, deepseek): n_head_kv heads of K (dk wide)
       and V (dv wide) cached per token, rotary on the first dr dims of each head; MLA leaves
       n_head_kv 0 */
    int n_head_kv, dk;
    bool rope_neox;        /* rotate the halves (x[i], x[i + dr/2]), not adjacent pairs */
    float rope_freq_scale; /* linear rope scaling: angles times 1 / rope.scaling.factor */
    float rope_attn_factor; /* rope.scaling.attn_factor: q and k scaled by it (llama.cpp's) */
    size_t kv_row;         /* floats cached per token and layer */
} ds_hparams;

/* A weight matrix (or a stack of them) in the mapping: rows of n_in elements. */
typedef struct {
    const uint8_t *data;
    ds_type type;
    const ds_type_traits *tr;
    const ds_type_traits *act;   /* block formats: the activation format they dot with; else NULL */
    int64_t n_in, n_rows, n_mat; /* ne0, ne1, ne2 */
    size_t row_size;
} ds_weight;

typedef struct ds_layer ds_layer;

/* The two halves of a decoder layer. Each reads the residual stream ctx->x of the batch's T
   tokens (at positions pos0 ..) and adds its output to it; which function a layer uses is the
   architecture's choice, made when its tensors are bound (section 3). */
typedef void (*attention_fn)(ds_context *ctx, const ds_layer *l, int il, int pos0, int T);
typedef void (*feed_forward_fn)(ds_context *ctx, const ds_layer *l, int T);

struct ds_layer {
    attention_fn attention;
    feed_forward_fn feed_forward;
    const float *attn_norm, *q_a_norm, *kv_a_norm, *ffn_norm, *exp_bias;
    ds_weight q_a, q_b, q, kv_a, k_b, v_b, kv_b, o;
    ds_weight gate, up, down;                /* dense layers */
    ds_weight gate_inp;                      /* router */
    ds_weight gate_exps, up_exps, down_exps; /* routed experts, one matrix per expert */
    ds_weight gate_sh, up_sh, down_sh;       /* shared experts, fused */
    /* the lightning indexer (deepseek32): q from the query latent, one shared k, head weights */
    ds_weight idx_q_b, idx_k, idx_proj;
    const float *idx_k_norm, *idx_k_bias; /* k's LayerNorm */
    /* grouped-query attention: q as above, k, v (or the three fused), optional biases, and
       qwen3's per-head RMSNorm of q and k */
    ds_weight k, v, qkv;
    const float *bq, *bk, *bv, *bo, *q_norm, *k_norm;
};

/* The first multi-token-prediction module (DeepSeek-V3 paper 2.2), llama.cpp's blk.N.nextn.*
   with N = n_layer: the main model's final-normed hidden state h[i] and the embedding of the
   token after it, each normalised, concatenated [embedding; h] and projected back to the model
   width, go through one more decoder layer and a head of their own: logits for token i + 2. */
typedef struct {
    bool present;
    const float *enorm, *hnorm, *head_norm;
    ds_weight eh_proj, embd, head; /* embd / head: the main model's when the file shares them */
    ds_layer layer;
} ds_nextn;

typedef struct ds_vocab ds_vocab;
typedef struct loader loader;

/* An architecture (section 3 has the table): its GGUF name (general.architecture, also its
   metadata keys' prefix), how its hyper-parameters are read, and how one decoder layer's
   tensors are bound, choosing the layer's attention and feed-forward functions; then its MTP
   module, if it has one, and the line that describes a loaded model. */
typedef struct {
    const char *name;
    ds_status (*load_hparams)(loader *L);
    ds_status (*bind_layer)(loader *L, ds_layer *l, int il);
    ds_status (*bind_mtp)(loader *L);
    void (*describe)(ds_model *m);
} ds_arch;

struct ds_model {
    gguf_file *file;
    const ds_arch *arch;
    ds_vocab *vocab; /* NULL when the file has no tokenizer */
    bool quantized;  /* some weight is in a block format: contexts need quantized activations */
    ds_hparams hp;
    ds_weight tok_embd, output;
    const float *output_norm;
    const float *rope_freqs; /* llama3's per-pair rotary divisors (rope_freqs.weight), or NULL */
    ds_layer *layers;
    ds_nextn mtp;
    float **owned; /* 1-D tensors widened to float32 */
    size_t n_owned;
    int bos, eos;
    char desc[320];
};

/* ---- the context: the caches and the activations of one batch ---- */

typedef struct ds_pool ds_pool;

struct ds_context {
    ds_model *m;
    ds_pool *pool;
    int n_ctx, n_batch, n_threads, n_past;
    float kq_scale;  /* softmax scale: YaRN's mscale^2 / sqrt(head dim) */
    uint8_t *kv;     /* the latent cache, [n_layer (+1 MTP)][n_ctx] rows of R + dr (section 7) */
    ds_type kv_type; /* its rows' type; F32 unless ds_context_params.cache_type asks */
    const ds_type_traits *kv_tr, *kv_f32;
    size_t kv_row_bytes;
    float *rope; /* [n_ctx][dr / 2][cos, sin] */
    /* the batch's activations, n_batch rows each, named for what they hold */
    float *x;             /* [T][D] the residual stream */
    float *xn;            /* [T][D] the normalised input of the current sublayer */
    float *branch;        /* [T][D] a sublayer's output, before it joins the residual stream */
    float *q_lat;         /* [T][q_lora_rank] the compressed query c_Q */
    float *q_heads;       /* [T][H][dn + dr] per head: q_nope | q_pe */
    float *kv_lat;        /* [T][R + dr] c_KV and k_pe as projected, before norm and rotary */
    float *q_abs;         /* [T][H][R + dr] the absorbed query: q_nope W_UK | rotated q_pe */
    float *o_lat;         /* [T][H][R] attention's weighted sum of cached latents */
    float *o_heads;       /* [T][H][dv] o_lat through W_UV (GQA: softmax . v): the heads' values */
    float *qkv;           /* [T][H dk | Hkv dk | Hkv dv] grouped-query attention's q, k, v */
    float *ff_gate;       /* [T][F] gate projection, then silu(gate) * up */
    float *ff_up;         /* [T][F] up projection */
    float *router_logits; /* [T][E] */
    float *route_w;       /* [T][K] chosen experts' weights */
    float *exp_act;       /* [T*K][Fe] silu(gate) * up of each (token, expert) pair */
    float *exp_out;       /* [T*K][D] each pair's down projection */
    float *shared_out;    /* [T][D] the shared experts' output */
    float *routed;        /* [D] one token's weighted sum of routed outputs */
    float *mtp_emb;       /* [T][D] MTP: the embeddings of the following tokens */
    int32_t *route_idx;   /* [T][K] chosen experts */
    int32_t *exp_count, *exp_start, *exp_pairs, *exp_active; /* pairs grouped by expert */
    /* DeepSeek Sparse Attention: the indexer's key cache, [n_layer (+1 MTP)][n_ctx] rows of
       idx_dim FP8 codes and their float scale (section 7), and the batch's indexer work */
    uint8_t *idx_cache;
    size_t idx_row_bytes;
    float *idx_q;         /* [T][Hi][Di] the indexer's queries */
    double *idx_qd;       /* [T][Hi][Di] their FP8 values, as the score kernel reads them */
    float *idx_w;         /* [T][Hi] head weights, FP8 scale of q folded in */
    float *idx_k;         /* [T][Di] the new keys before FP8 */
    float *idx_score;     /* [idx_rows][n_ctx] index scores of a group of queries */
    int idx_rows;         /* queries scored at once: bounds idx_score */
    int32_t *sel, *n_sel; /* [T][idx_topk] the keys each query attends (ascending), [T] how many */
    float *scratch;       /* per thread (scratch_of): attention scores, a widened row, dot products */
    size_t scratch_len;   /* floats per thread */
    const float **xptr;   /* per thread, n_batch activation rows a matmul reads */
    const void **qptr;    /* per thread, 2 x n_batch quantized activation rows (gate and up may differ) */
    uint8_t *actq[2];     /* activations quantized for block-format weights, two inputs at a time */
    size_t actq_cap;
    float *blas_scratch; /* per thread, one widened panel; NULL without BLAS */
    float *logits;
    size_t logits_cap;
    int n_logits;
    /* multi-token prediction (params.mtp): the final-normed hidden states of the last ds_eval
       call's tokens, from position hid_pos0; the MTP layer's cache is valid below mtp_past */
    bool mtp;
    float *hid, *mtp_in, *mtp_logits;
    size_t hid_cap, mtp_logits_cap;
    int hid_pos0, n_hid, mtp_past, n_mtp_logits;
    /* a batch of several sequences (ds_eval_seqs): row t is position row_pos[t] of row_seq[t]'s
       sequence, whose cache it reads and extends; NULL: one sequence, row t at pos0 + t */
    ds_context *const *row_seq;
    int *row_pos, *row_pos_buf;
    int row_pos_cap;
    char err[256];
};

/* ---- the machinery the forward pass calls (sections 5 to 7) ---- */

/* A job for the thread pool: fn(arg, i0, i1, tid) over the items [i0, i1) it is handed. */
typedef void (*task_fn)(void *arg, int64_t i0, int64_t i1, int tid);
static void pool_run(ds_pool *p, int64_t n_items, task_fn fn, void *arg);
static const ds_type_traits *kernel_traits(ds_type t);
static ds_index_fn index_scores(void);

/* Activations for a block-format weight: each input row quantized once to the format the
   weight dots with (Q8_0, Q8_1 or Q8_K, as ggml does), then read by every row of the weight. */
typedef struct {
    const ds_type_traits *tr; /* NULL: the input stays float */
    const uint8_t *data;      /* row i (matrix m, token t: i = m * T + t) at data + i * row_bytes */
    size_t row_bytes;
} qact;

static qact quantize_act(ds_context *ctx, const ds_type_traits *tr, const float *x, int64_t ldx, int64_t x_stride,
                         int n_mat, int T, int64_t n, int slot);
static void matmul(ds_context *ctx, const ds_weight *w, const float *x, int64_t ldx, int T, float *y, int64_t ldy);
static void matmul_pre(ds_context *ctx, const ds_weight *w, const float *x, int64_t ldx, int T, float *y, int64_t ldy,
                       const qact *pre);
static void matmul_heads(ds_context *ctx, const ds_weight *w, const uint8_t *base, int64_t rows, size_t w_stride,
                         int n_heads, const float *x, int64_t ldx, int64_t x_stride, float *y, int64_t ldy,
                         int64_t y_stride, int T);
static void row_dots(const ds_weight *w, const uint8_t *row, const float *const *xs, int T, float *out);
static void row_dots_q(const ds_weight *w, const uint8_t *row, const void *const *xs, int T, float *out);

/* A pool thread's own scratch: floats, and room for n_batch float and 2 x n_batch quantized
   activation-row pointers. */
typedef struct {
    float *f;
    const float **xs;
    const void **qs;
} thread_scratch;
static thread_scratch scratch_of(const ds_context *ctx, int tid);
static size_t kv_row(const ds_hparams *hp);
static uint8_t *kv_at(ds_context *ctx, int il, int pos);
/* The context whose cache row t of the batch belongs to, and the row's position in it. */
static ds_context *seq_of(ds_context *ctx, int t) { return ctx->row_seq ? ctx->row_seq[t] : ctx; }
static int pos_of(const ds_context *ctx, int pos0, int t) { return ctx->row_pos ? ctx->row_pos[t] : pos0 + t; }
static void kv_store(ds_context *ctx, int il, int pos, const float *row);
static float kv_dot(const ds_context *ctx, const float *q, const uint8_t *c, float *wide);
static const float *kv_floats(const ds_context *ctx, const uint8_t *c, float *wide);
static bool kv_type_ok(ds_type t);

/* ========================================================================================== */
/* 2. The forward pass, in the papers' order: embedding; per layer attention, then the feed-  */
/*    forward network, each added to the residual stream; the final norm and the head; MTP.   */
/*    Equations: DeepSeek-V2 (arXiv 2405.04434) section 2, DeepSeek-V3 (2412.19437) sec. 2.   */
/* ========================================================================================== */

/* ---- building blocks ---- */

/* RMSNorm(x) = x / sqrt(mean(x^2) + eps) * w */
static void rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

static void rmsnorm_rows(float *y, int64_t ldy, const float *x, int64_t ldx, const float *w, int n, int T, float eps) {
    for (int t = 0; t < T; t++) rmsnorm(y + t * ldy, x + t * ldx, w, n, eps);
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

static void softmax(float *x, int n) {
    float mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++) sum += (x[i] = expf(x[i] - mx));
    for (int i = 0; i < n; i++) x[i] /= sum;
}

/* g = silu(g) * u */
static void swiglu_rows(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = silu(g[i]) * u[i];
}

/* x += y over n floats: a sublayer's output joins the residual stream. */
static void add_rows(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

/* ---- embedding ---- */

/* Embedding rows of T tokens into out (T x n_embd). */
static void embed(const ds_weight *e, const int32_t *tokens, int T, float *out) {
    for (int t = 0; t < T; t++)
        e->tr->to_f32(e->data + (size_t)tokens[t] * e->row_size, out + (size_t)t * e->n_in, e->n_in);
}

/* ---- rotary position embedding (RoPE) with YaRN ---- */

/* Rotary angles with YaRN's frequency correction, as DeepSeek's reference computes them:
   per-pair frequencies ramp from interpolated (/factor) to the original between the
   correction dims of beta_fast and beta_slow; angles are float32 pos * inv_freq. YaRN also
   scales attention logits by mscale^2 = (1 + yarn_log_mul * ln factor)^2, folded into
   kq_scale with 1 / sqrt(head dim). The dense models' files may instead ask for linear
   scaling (angles times rope_freq_scale) or carry per-pair divisors (llama3's rope_freqs),
   and llama.cpp scales q and k by rope.scaling.attn_factor: kq_scale takes its square. */
static void rope_table(ds_context *ctx) {
    const ds_model *m = ctx->m;
    const ds_hparams *hp = &m->hp;
    const int dr = hp->dr, half = dr / 2;
    float low = 0, high = 0;
    if (hp->yarn) {
        double lb = 2.0 * log((double)hp->rope_base);
        double dlo = dr * log(hp->rope_orig_ctx / (hp->beta_fast * 2.0 * M_PI)) / lb;
        double dhi = dr * log(hp->rope_orig_ctx / (hp->beta_slow * 2.0 * M_PI)) / lb;
        low = (float)fmax(floor(dlo), 0.0);
        high = (float)fmin(ceil(dhi), dr - 1.0);
        if (low == high) high += 0.001f;
    }
    for (int i = 0; i < half; i++) {
        float base = (float)(1.0 / pow((double)hp->rope_base, (double)(2 * i) / dr));
        if (m->rope_freqs) base /= m->rope_freqs[i];
        float inv = base * hp->rope_freq_scale;
        if (hp->yarn) {
            float ramp = fminf(fmaxf(((float)i - low) / (high - low), 0.0f), 1.0f);
            inv = base / hp->rope_factor * ramp + base * (1.0f - ramp);
        }
        for (int pos = 0; pos < ctx->n_ctx; pos++) {
            float a = (float)pos * inv;
            ctx->rope[((size_t)pos * half + i) * 2] = (float)cos((double)a);
            ctx->rope[((size_t)pos * half + i) * 2 + 1] = (float)sin((double)a);
        }
    }
    double mscale = hp->yarn ? 1.0 + hp->yarn_log_mul * log((double)hp->rope_factor) : 1.0;
    mscale *= hp->rope_attn_factor;
    ctx->kq_scale = (float)(mscale * mscale / sqrt((double)hp->dk));
}

/* Rotate interleaved pairs (x[2i], x[2i+1]) by the angles of one position. */
static void rope(float *x, const float *cs, int dr) {
    for (int i = 0; i < dr / 2; i++) {
        float c = cs[2 * i], s = cs[2 * i + 1], a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = a * c - b * s;
        x[2 * i + 1] = a * s + b * c;
    }
}

/* Rotate half-split pairs (x[i], x[i + dr/2]) by the angles of one position. */
static void rope_half(float *x, const float *cs, int dr) {
    const int half = dr / 2;
    for (int i = 0; i < half; i++) {
        float c = cs[2 * i], s = cs[2 * i + 1], a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = a * s + b * c;
    }
}

/* ---- attention: multi-head latent attention (MLA), DeepSeek-V2 2.1 ----

   c_Q = RMSNorm(h W_DQ)                 q_nope, q_pe = c_Q W_UQ, RoPE(c_Q W_QR)  (per head)
   c_KV = RMSNorm(h W_DKV)               k_pe = RoPE(h W_KR)                      (shared by heads)
   score_s = (q_nope W_UK^T c_KV_s + q_pe k_pe_s) * kq_scale
   o = softmax(score) . c_KV             u = concat_heads(o W_UV) W_O

   Only c_KV and k_pe are cached ("the latent cache"): W_UK is absorbed into the query and W_UV
   applied after the weighted sum, so keys and values are never expanded per head. The two
   variants differ only in how W_UK and W_UV are stored. Attention variants to come take the
   same shape (attention_fn) and get their layers from the architecture table:
   DeepSeek Sparse Attention (V3.2: a lightning indexer picks the top-k cached latents),
   V4's compressed sparse attention, and grouped-query attention for the dense distills. */

/* q for every head: [q_nope (dn) | q_pe (dr)], from a low-rank pair or one projection. */
static void mla_project_q(ds_context *ctx, const ds_layer *l, int T) {
    const ds_hparams *hp = &ctx->m->hp;
    const int D = hp->n_embd, qr = hp->q_lora_rank, qd = hp->n_head * (hp->dn + hp->dr);
    if (!qr) {
        matmul(ctx, &l->q, ctx->xn, D, T, ctx->q_heads, qd);
        return;
    }
    matmul(ctx, &l->q_a, ctx->xn, D, T, ctx->q_lat, qr);
    rmsnorm_rows(ctx->q_lat, qr, ctx->q_lat, qr, l->q_a_norm, qr, T, hp->rms_eps);
    matmul(ctx, &l->q_b, ctx->q_lat, qr, T, ctx->q_heads, qd);
}

/* The new tokens' normalised latents and rotated shared k_pe go into the cache before any
   score is taken: the batch attends to itself, causally, through it. Each head's q_pe is
   rotated into the rope slot of its absorbed query. */
static void mla_cache_latents(ds_context *ctx, const ds_layer *l, int il, int pos0, int T) {
    const ds_hparams *hp = &ctx->m->hp;
    const int H = hp->n_head, R = hp->kv_lora_rank, dr = hp->dr, qdim = hp->dn + hp->dr, row = (int)kv_row(hp);
    matmul(ctx, &l->kv_a, ctx->xn, hp->n_embd, T, ctx->kv_lat, row);
    for (int t = 0; t < T; t++) {
        int pos = pos_of(ctx, pos0, t);
        const float *cs = ctx->rope + (size_t)pos * dr;
        float *lat = ctx->kv_lat + (size_t)t * row;
        rmsnorm(lat, lat, l->kv_a_norm, R, hp->rms_eps);
        rope(lat + R, cs, dr);
        kv_store(seq_of(ctx, t), il, pos, lat);
        for (int h = 0; h < H; h++) {
            float *qpe = ctx->q_abs + ((size_t)t * H + h) * row + R;
            memcpy(qpe, ctx->q_heads + ((size_t)t * H + h) * qdim + hp->dn, (size_t)dr * sizeof *qpe);
            rope(qpe, cs, dr);
        }
    }
}

/* The attention norm, the queries, and the new latents cached. */
static void mla_begin(ds_context *ctx, const ds_layer *l, int il, int pos0, int T) {
    const ds_hparams *hp = &ctx->m->hp;
    rmsnorm_rows(ctx->xn, hp->n_embd, ctx->x, hp->n_embd, l->attn_norm, hp->n_embd, T, hp->rms_eps);
    mla_project_q(ctx, l, T);
    mla_cache_latents(ctx, l, il, pos0, T);
}

/* Queries against the latent cache: one item per (token, head). Every causal key, or with
   sparse attention the keys the indexer chose (ctx->sel, ctx->n_sel per token). */
typedef struct {
    ds_context *ctx;
    const ds_layer *l;
    int il, pos0, T; /* the batch's tokens are at positions pos0 .. pos0 + T - 1 */
    bool sparse;
} attn_job;

/* The cache position of query t's s-th key. */
static int attn_key(const attn_job *j, int t, int s) {
    return j->sparse ? j->ctx->sel[(size_t)t * j->ctx->m->hp.idx_topk + s] : s;
}

static void mla_attend_task(void *arg, int64_t i0, int64_t i1, int tid) {
    const attn_job *j = arg;
    ds_context *ctx = j->ctx;
    const ds_hparams *hp = &ctx->m->hp;
    const int H = hp->n_head, R = hp->kv_lora_rank;
    const int64_t row = (int64_t)kv_row(hp);
    float *score = scratch_of(ctx, tid).f, *wide = score + ctx->n_ctx; /* a widened cache row */
    const size_t rb = ctx->kv_row_bytes;
    for (int64_t i = i0; i < i1; i++) {
        int t = (int)(i / H), h = (int)(i % H);
        int n = j->sparse ? ctx->n_sel[t] : pos_of(ctx, j->pos0, t) + 1; /* dense: causal, positions 0..pos */
        const uint8_t *cache = kv_at(seq_of(ctx, t), j->il, 0);
        const float *q = ctx->q_abs + ((size_t)t * H + h) * row;
        for (int s = 0; s < n; s++)
            score[s] = kv_dot(ctx, q, cache + (size_t)attn_key(j, t, s) * rb, wide) * ctx->kq_scale;
        softmax(score, n);
        float *lat = ctx->o_lat + ((size_t)t * H + h) * R;
        memset(lat, 0, (size_t)R * sizeof *lat);
        for (int s = 0; s < n; s++) {
            const float *c = kv_floats(ctx, cache + (size_t)attn_key(j, t, s) * rb, wide);
            for (int r = 0; r < R; r++) lat[r] += score[s] * c[r];
        }
    }
}

/* o_lat = softmax(q_abs . cache) . c_KV for every (token, head) */
static void mla_attend(ds_context *ctx, const ds_layer *l, int il, int pos0, int T, bool sparse) {
    attn_job aj = {ctx, l, il, pos0, T, sparse};
    pool_run(ctx->pool, (int64_t)T * ctx->m->hp.n_head, mla_attend_task, &aj);
}

/* u = concat_heads(o_heads) W_O, added to the residual stream. */
static void mla_output(ds_context *ctx, const ds_layer *l, int T) {
    const ds_hparams *hp = &ctx->m->hp;
    const int D = hp->n_embd;
    matmul(ctx, &l->o, ctx->o_heads, (int64_t)hp->n_head * hp->dv, T, ctx->branch, D);
    add_rows(ctx->x, ctx->branch, (int64_t)T * D);
}

/* After mla_begin, over the split layout (attn_k_b: W_UK per head, [dn] -> [R]; attn_v_b:
   W_UV per head, [R] -> [dv]): both absorptions are per-head matmuls. */
static void mla_heads_split(ds_context *ctx, const ds_layer *l, int il, int pos0, int T, bool sparse) {
    const ds_hparams *hp = &ctx->m->hp;
    const int H = hp->n_head, R = hp->kv_lora_rank, dv = hp->dv, qdim = hp->dn + hp->dr, row = (int)kv_row(hp);
    matmul_heads(ctx, &l->k_b, l->k_b.data, R, (size_t)R * l->k_b.row_size, H, ctx->q_heads, (int64_t)H * qdim, qdim,
                 ctx->q_abs, (int64_t)H * row, row, T);
    mla_attend(ctx, l, il, pos0, T, sparse);
    matmul_heads(ctx, &l->v_b, l->v_b.data, dv, (size_t)dv * l->v_b.row_size, H, ctx->o_lat, (int64_t)H * R, R,
                 ctx->o_heads, (int64_t)H * dv, dv, T);
    mla_output(ctx, l, T);
}

static void attention_mla(ds_context *ctx, const ds_layer *l, int il, int pos0, int T) {
    mla_begin(ctx, l, il, pos0, T);
    mla_heads_split(ctx, l, il, pos0, T, false);
}

/* Legacy attn_kv_b ([R] -> per head [dn | dv]): absorbing q_nope needs W_UK transposed, so
   each head's rows are widened and accumulated. */
static void mla_absorb_legacy_task(void *arg, int64_t i0, int64_t i1, int tid) {
    const attn_job *j = arg;
    ds_context *ctx = j->ctx;
    const ds_hparams *hp = &ctx->m->hp;
    const ds_weight *w = &j->l->kv_b;
    const int H = hp->n_head, R = hp->kv_lora_rank, qdim = hp->dn + hp->dr;
    float *wide = scratch_of(ctx, tid).f;
    for (int64_t i = i0; i < i1; i++) {
        int t = (int)(i / H), h = (int)(i % H);
        const float *qn = ctx->q_heads + ((size_t)t * H + h) * qdim;
        float *out = ctx->q_abs + ((size_t)t * H + h) * kv_row(hp);
        memset(out, 0, (size_t)R * sizeof *out);
        for (int d = 0; d < hp->dn; d++) {
            w->tr->to_f32(w->data + ((size_t)h * (hp->dn + hp->dv) + d) * w->row_size, wide, R);
            for (int r = 0; r < R; r++) out[r] += qn[d] * wide[r];
        }
    }
}

static void mla_heads_legacy(ds_context *ctx, const ds_layer *l, int il, int pos0, int T, bool sparse) {
    const ds_hparams *hp = &ctx->m->hp;
    const int H = hp->n_head, R = hp->kv_lora_rank, dn = hp->dn, dv = hp->dv;
    const ds_weight *kv_b = &l->kv_b;
    attn_job aj = {ctx, l, il, pos0, T, sparse};
    pool_run(ctx->pool, (int64_t)T * H, mla_absorb_legacy_task, &aj);
    mla_attend(ctx, l, il, pos0, T, sparse);
    matmul_heads(ctx, kv_b, kv_b->data + (size_t)dn * kv_b->row_size, dv, (size_t)(dn + dv) * kv_b->row_size, H,
                 ctx->o_lat, (int64_t)H * R, R, ctx->o_heads, (int64_t)H * dv, dv, T);
    mla_output(ctx, l, T);
}

static void attention_mla_legacy(ds_context *ctx, const ds_layer *l, int il, int pos0, int T) {
    mla_begin(ctx, l, il, pos0, T);
    mla_heads_legacy(ctx, l, il, pos0, T, false);
}

/* ---- DeepSeek Sparse Attention (V3.2, arXiv 2512.02556 section 2.1) ----

   The lightning indexer scores every earlier token s for query t from the attention input h
   and the query latent c_Q, with its own small heads rounded to FP8:
     q_j = Hadamard(RoPE(c_Q W_q^j)),  k_s = Hadamard(RoPE(LayerNorm(h_s W_k))),  w_j = h W_w^j
     I(t, s) = sum_j w_j ReLU(q_j . k_s)
   and MLA attends only the idx_topk keys of highest I (every causal key while there are fewer).
   As DeepSeek's code computes it: RoPE on the first dr dims ([rope | nope]) on half-split
   pairs; q per head and k each rounded to FP8 e4m3 with a power-of-two scale; the FP8
   products summed exactly; q's scale folded into w_j with 1 / sqrt(Hi Di); k's scale applied
   to the sum. Only k (FP8 codes + scale) is cached. */

/* x H / sqrt(n), H the Sylvester Hadamard matrix (n a power of two), by butterflies. */
static void hadamard(float *x, int n) {
    for (int h = 1; h < n; h *= 2)
        for (int i = 0; i < n; i += 2 * h)
            for (int j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
    const float scale = 1.0f / sqrtf((float)n);
    for (int i = 0; i < n; i++) x[i] *= scale;
}

/* LayerNorm(x) = (x - mean) / sqrt(var + eps) * w + b, the biased variance */
static void layernorm(float *y, const float *x, const float *w, const float *b, int n, float eps) {
    double sum = 0, ss = 0;
    for (int i = 0; i < n; i++) sum += x[i];
    const float mean = (float)(sum / n);
    for (int i = 0; i < n; i++) ss += (double)(x[i] - mean) * (x[i] - mean);
    const float inv = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * w[i] + b[i];
}

/* A cached indexer key: Di FP8 codes, then its scale. */
static uint8_t *idx_at(ds_context *ctx, int il, int pos) {
    return ctx->idx_cache + ((size_t)il * (size_t)ctx->n_ctx + (size_t)pos) * ctx->idx_row_bytes;
}

/* The FP8 steps. A build with DS_DSA_NO_FP8 (tests only: it proves that the rounding matters,
   tests/meson.build) keeps q and k in float32 instead, as llama.cpp's deepseek32 does. */
#ifndef DS_DSA_NO_FP8
static size_t idx_row_bytes(int Di) { return (size_t)Di + sizeof(float); }

static void idx_store_key(uint8_t *row, const float *k, int Di) {
    float s = ds_fp8_quant_block(k, Di, row);
    memcpy(row + Di, &s, sizeof s);
}

/* q's FP8 values into qd; returns its scale */
static float idx_round_query(const float *q, double *qd, int Di) {
    uint8_t codes[DS_FP8_INDEX_MAX];
    float s = ds_fp8_quant_block(q, Di, codes);
    for (int i = 0; i < Di; i++) qd[i] = ds_fp8_e4m3_to_f32(codes[i]);
    return s;
}

/* out[s] for the n cached keys from s0: the kernel's sums, times each key's scale */
static void idx_key_scores(ds_context *ctx, const double *qd, const float *w, int il, int s0, int n, float *out) {
    const int Hi = ctx->m->hp.idx_n_head, Di = ctx->m->hp.idx_dim;
    index_scores()(qd, w, idx_at(ctx, il, s0), ctx->idx_row_bytes, n, Hi, Di, out);
    for (int s = 0; s < n; s++) {
        float scale;
        memcpy(&scale, idx_at(ctx, il, s0 + s) + Di, sizeof scale);
        out[s] *= scale;
    }
}
#else
static size_t idx_row_bytes(int Di) { return (size_t)Di * sizeof(float); }
static void idx_store_key(uint8_t *row, const float *k, int Di) { memcpy(row, k, (size_t)Di * sizeof *k); }
static float idx_round_query(const float *q, double *qd, int Di) {
    for (int i = 0; i < Di; i++) qd[i] = q[i];
    return 1.0f;
}
static void idx_key_scores(ds_context *ctx, const double *qd, const float *w, int il, int s0, int n, float *out) {
    const int Hi = ctx->m->hp.idx_n_head, Di = ctx->m->hp.idx_dim;
    (void)index_scores;
    for (int s = 0; s < n; s++) {
        float k[DS_FP8_INDEX_MAX], score = 0;
        memcpy(k, idx_at(ctx, il, s0 + s), (size_t)Di * sizeof *k);
        for (int h = 0; h < Hi; h++) {
            double dot = 0;
            for (int i = 0; i < Di; i++) dot += qd[(size_t)h * Di + i] * k[i];
            score += (dot > 0 ? (float)dot : 0.0f) * w[h];
        }
        out[s] = score;
    }
}
#endif

/* The batch's indexer queries (as FP8 values) and head weights, and its keys into the cache. */
static void dsa_project(ds_context *ctx, const ds_layer *l, int il, int pos0, int T) {
    const ds_hparams *hp = &ctx->m->hp;
    const int D = hp->n_embd, Hi = hp->idx_n_head, Di = hp->idx_dim, dr = hp->dr;
    matmul(ctx, &l->idx_q_b, ctx->q_lat, hp->q_lora_rank, T, ctx->idx_q, (int64_t)Hi * Di);
    matmul(ctx, &l->idx_k, ctx->xn, D, T, ctx->idx_k, Di);
    matmul(ctx, &l->idx_proj, ctx->xn, D, T, ctx->idx_w, Hi);
    for (int t = 0; t < T; t++) {
        const int pos = pos_of(ctx, pos0, t);
        const float *cs = ctx->rope + (size_t)pos * dr;
        float *k = ctx->idx_k + (size_t)t * Di;
        layernorm(k, k, l->idx_k_norm, l->idx_k_bias, Di, 1e-6f);
        rope_half(k, cs, dr);
        hadamard(k, Di);
        idx_store_key(idx_at(seq_of(ctx, t), il, pos), k, Di);
        for (int h = 0; h < Hi; h++) {
            float *q = ctx->idx_q + ((size_t)t * Hi + h) * Di, *w = ctx->idx_w + (size_t)t * Hi + h;
            rope_half(q, cs, dr);
            hadamard(q, Di);
            float sq = idx_round_query(q, ctx->idx_qd + ((size_t)t * Hi + h) * Di, Di);
            *w = *w * (1.0f / sqrtf((float)Hi)) * sq * (1.0f / sqrtf((float)Di));
        }
    }
}

/* Index scores of a group of queries: one item per (query, block of keys). */
typedef struct {
    ds_context *ctx;
    int il, pos0, t0, n_rows, n_blocks; /* queries t0 .. t0 + n_rows - 1 of the batch */
} dsa_job;

enum { DSA_KEY_BLOCK = 64 };

static void dsa_score_task(void *arg, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    const dsa_job *j = arg;
    ds_context *ctx = j->ctx;
    const ds_hparams *hp = &ctx->m->hp;
    const int Hi = hp->idx_n_head, Di = hp->idx_dim;
    for (int64_t i = i0; i < i1; i++) {
        int r = (int)(i / j->n_blocks), t = j->t0 + r, n = pos_of(ctx, j->pos0, t) + 1;
        if (n <= hp->idx_topk) continue; /* attends every key: no scores needed */
        int s0 = (int)(i % j->n_blocks) * DSA_KEY_BLOCK, s1 = s0 + DSA_KEY_BLOCK < n ? s0 + DSA_KEY_BLOCK : n;
        if (s1 > s0)
            idx_key_scores(seq_of(ctx, t), ctx->idx_qd + (size_t)t * Hi * Di, ctx->idx_w + (size_t)t * Hi, j->il, s0, s1 - s0,
                           ctx->idx_score + (size_t)r * ctx->n_ctx + s0);
    }
}

/* The k-th largest of a[0..n) (k in 1..n), by quickselect on the copy in tmp. */
static float kth_largest(const float *a, int n, int k, float *tmp) {
    memcpy(tmp, a, (size_t)n * sizeof *tmp);
    int lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float pivot = tmp[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (tmp[i] > pivot) i++;
            while (tmp[j] < pivot) j--;
            if (i <= j) {
                float x = tmp[i];
                tmp[i++] = tmp[j];
                tmp[j--] = x;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break;
    }
    return tmp[want];
}

/* Each query's top idx_topk keys, in ascending position: those above the k-th largest score,
   then those equal to it from the lowest position (the scores of a fixed key order decide;
   DeepSeek's fixture has no ties at the boundary). */
static void dsa_select_task(void *arg, int64_t i0, int64_t i1, int tid) {
    const dsa_job *j = arg;
    ds_context *ctx = j->ctx;
    const int K = ctx->m->hp.idx_topk;
    float *tmp = scratch_of(ctx, tid).f;
    for (int64_t i = i0; i < i1; i++) {
        int t = j->t0 + (int)i, n = pos_of(ctx, j->pos0, t) + 1, m = 0; /* causal: keys 0..pos */
        int32_t *sel = ctx->sel + (size_t)t * K;
        const float *score = ctx->idx_score + (size_t)i * ctx->n_ctx;
        if (n <= K) {
            for (int s = 0; s < n; s++) sel[s] = s;
            ctx->n_sel[t] = n;
            continue;
        }
        float thr = kth_largest(score, n, K, tmp);
        int above = 0;
        for (int s = 0; s < n; s++) above += score[s] > thr;
        for (int s = 0, ties = K - above; s < n; s++)
            if (score[s] > thr || (score[s] == thr && ties-- > 0)) sel[m++] = s;
        ctx->n_sel[t] = m;
    }
}

/* The lightning indexer: the keys each of the batch's queries attends, into ctx->sel. Queries
   are scored idx_rows at a time, which bounds the score buffer to idx_rows x n_ctx. */
static void dsa_index(ds_context *ctx, const ds_layer *l, int il, int pos0, int T) {
    dsa_project(ctx, l, il, pos0, T);
    for (int t0 = 0; t0 < T; t0 += ctx->idx_rows) {
        int rows = T - t0 < ctx->idx_rows ? T - t0 : ctx->idx_rows;
        int keys = 0; /* the most keys a query of the group has */
        for (int t = t0; t < t0 + rows; t++) keys = pos_of(ctx, pos0, t) + 1 > keys ? pos_of(ctx, pos0, t) + 1 : keys;
        dsa_job j = {ctx, il, pos0, t0, rows, (keys + DSA_KEY_BLOCK - 1) / DSA_KEY_BLOCK};
        pool_run(ctx->pool, (int64_t)rows * j.n_blocks, dsa_score_task, &j);
        pool_run(ctx->pool, rows, dsa_select_task, &j);
    }
}

static void attention_dsa(ds_context *ctx, const ds_layer *l, int il, int pos0, int T) {
    mla_begin(ctx, l, il, pos0, T);
    dsa_index(ctx, l, il, pos0, T);
    mla_heads_split(ctx, l, il, pos0, T, true);
}

static void attention_dsa_legacy(ds_context *ctx, const ds_layer *l, int il, int pos0, int T) {
    mla_begin(ctx, l, il, pos0, T);
    dsa_index(ctx, l, il, pos0, T);
    mla_heads_legacy(ctx, l, il, pos0, T, true);
}

/* ---- attention: grouped-query attention (GQA), the dense distills' and DeepSeek-MoE's ----

   q_h = h W_q^h (+ b_q), k_g = h W_k^g (+ b_k), v_g = h W_v^g (+ b_v)   (H query heads,
   n_head_kv key/value heads; query head h reads group g = h / (H / n_head_kv))
   qwen3: q_h, k_g = RMSNorm(q_h), RMSNorm(k_g) per head; then RoPE on the first dr dims
   o_h = softmax(q_h k_g^T * kq_scale) v_g        u = concat_heads(o) W_O (+ b_O)

   The cache holds each token's rotated k and its v, [k of every group | v of every group]:
   exactly the tail of the projection row [q | k | v], which is stored as it is. */

static void add_bias_rows(float *y, int64_t ldy, const float *b, int n, int T) {
    if (b)
        for (int t = 0; t < T; t++) add_rows(y + (int64_t)t * ldy, b, n);
}

/* qkv[t] = [q | k | v] from one fused matrix or three sharing one quantized input. */
static void gqa_project(ds_context *ctx, const ds_layer *l, int T) {
    const ds_hparams *hp = &ctx->m->hp;
    const int D = hp->n_embd, nq = hp->n_head * hp->dk, nk = hp->n_head_kv * hp->dk, nv = hp->n_head_kv * hp->dv;
    const int64_t ld = nq + nk + nv;
    float *y = ctx->qkv;
    if (l->qkv.data) {
        matmul(ctx, &l->qkv, ctx->xn, D, T, y, ld);
    } else {
        qact in = {0};
        if (l->q.act && l->k.act == l->q.act && l->v.act == l->q.act)
            in = quantize_act(ctx, l->q.act, ctx->xn, D, 0, 1, T, D, 1);
        matmul_pre(ctx, &l->q, ctx->xn, D, T, y, ld, &in);
        matmul_pre(ctx, &l->k, ctx->xn, D, T, y + nq, ld, &in);
        matmul_pre(ctx, &l->v, ctx->xn, D, T, y + nq + nk, ld, &in);
    }
    add_bias_rows(y, ld, l->bq, nq, T);
    add_bias_rows(y + nq, ld, l->bk, nk, T);
    add_bias_rows(y + nq + nk, ld, l->bv, nv, T);
}

/* Per head: qwen3's norm, then the rotary (adjacent pairs, or halves for NeoX-style models),
   over n heads of width dk starting at x. */
static void gqa_rotate(const ds_hparams *hp, float *x, int n, const float *norm, const float *cs) {
    for (int h = 0; h < n; h++) {
        float *v = x + (size_t)h * hp->dk;
        if (norm) rmsnorm(v, v, norm, hp->dk, hp->rms_eps);
        if (hp->rope_neox) rope_half(v, cs, hp->dr);
        else rope(v, cs, hp->dr);
    }
}

/* The attention norm, q, k, v, and the new keys and values cached. */
static void gqa_begin(ds_context *ctx, const ds_layer *l, int il, int pos0, int T) {
    const ds_hparams *hp = &ctx->m->hp;
    const int D = hp->n_embd, nq = hp->n_head * hp->dk;
    const size_t ld = (size_t)nq + hp->kv_row;
    rmsnorm_rows(ctx->xn, D, ctx->x, D, l->attn_norm, D, T, hp->rms_eps);
    gqa_project(ctx, l, T);
    for (int t = 0; t < T; t++) {
        float *row = ctx->qkv + (size_t)t * ld;
        const int pos = pos_of(ctx, pos0, t);
        const float *cs = ctx->rope + (size_t)pos * hp->dr;
        gqa_rotate(hp, row, hp->n_head, l->q_norm, cs);
        gqa_rotate(hp, row + nq, hp->n_head_kv, l->k_norm, cs);
        kv_store(seq_of(ctx, t), il, pos, row + nq);
    }
}

/* n floats of a cache row from element e0: in place for F32, else widened (F16 and BF16
   anywhere; Q8_0 on whole blocks, which ds_context_new makes sure of). */
static const float *kv_slice(const ds_context *ctx, const uint8_t *row, size_t e0, int n, float *wide) {
    const ds_type_traits *tr = ctx->kv_tr;
    if (ctx->kv_type == DS_TYPE_F32) return (const float *)row + e0;
    tr->to_f32(row + e0 / (size_t)tr->block_size * tr->type_size, wide, n);
    return wide;
}

/* One item per (token, group): the group's query heads score every causal key, each cached
   k and v widened once for all of them. */
static void gqa_attend_task(void *arg, int64_t i0, int64_t i1, int tid) {
    const attn_job *j = arg;
    ds_context *ctx = j->ctx;
    const ds_hparams *hp = &ctx->m->hp;
    const int H = hp->n_head, Hkv = hp->n_head_kv, G = H / Hkv, dk = hp->dk, dv = hp->dv;
    const size_t ld = (size_t)H * dk + hp->kv_row, nc = (size_t)ctx->n_ctx, rb = ctx->kv_row_bytes;
    float *score = scratch_of(ctx, tid).f, *wide = score + (size_t)G * nc;
    for (int64_t i = i0; i < i1; i++) {
        const int t = (int)(i / Hkv), g = (int)(i % Hkv), n = pos_of(ctx, j->pos0, t) + 1;
        const uint8_t *cache = kv_at(seq_of(ctx, t), j->il, 0);
        const float *q = ctx->qkv + (size_t)t * ld + (size_t)g * G * dk;
        for (int s = 0; s < n; s++) {
            const float *k = kv_slice(ctx, cache + (size_t)s * rb, (size_t)g * dk, dk, wide);
            for (int h = 0; h < G; h++) score[h * nc + s] = ctx->kv_f32->dot_f32(q + h * dk, k, dk) * ctx->kq_scale;
        }
        for (int h = 0; h < G; h++) softmax(score + h * nc, n);
        float *o = ctx->o_heads + ((size_t)t * H + (size_t)g * G) * dv;
        memset(o, 0, (size_t)G * dv * sizeof *o);
        for (int s = 0; s < n; s++) {
            const float *v = kv_slice(ctx, cache + (size_t)s * rb, (size_t)Hkv * dk + (size_t)g * dv, dv, wide);
            for (int h = 0; h < G; h++)
                for (int d = 0; d < dv; d++) o[h * dv + d] += score[h * nc + s] * v[d];
        }
    }
}

static void attention_gqa(ds_context *ctx, const ds_layer *l, int il, int pos0, int T) {
    const ds_hparams *hp = &ctx->m->hp;
    const int D = hp->n_embd;
    gqa_begin(ctx, l, il, pos0, T);
    attn_job aj = {ctx, l, il, pos0, T, false};
    pool_run(ctx->pool, (int64_t)T * hp->n_head_kv, gqa_attend_task, &aj);
    matmul(ctx, &l->o, ctx->o_heads, (int64_t)hp->n_head * hp->dv, T, ctx->branch, D);
    add_bias_rows(ctx->branch, D, l->bo, D, T);
    add_rows(ctx->x, ctx->branch, (int64_t)T * D);
}

/* ---- feed-forward: dense SwiGLU, and DeepSeekMoE (V2 2.2, V3 2.1.2) ---- */

static void ffn_norm(ds_context *ctx, const ds_layer *l, int T) {
    const ds_hparams *hp = &ctx->m->hp;
    rmsnorm_rows(ctx->xn, hp->n_embd, ctx->x, hp->n_embd, l->ffn_norm, hp->n_embd, T, hp->rms_eps);
}

/* out = (silu(xn W_gate) * (xn W_up)) W_down */
static void swiglu_mlp(ds_context *ctx, const ds_weight *gate, const ds_weight *up, const ds_weight *down, int T,
                       float *out) {
    const int D = ctx->m->hp.n_embd;
    const int64_t F = gate->n_rows;
    qact in = {0};
    if (gate->act) in = quantize_act(ctx, gate->act, ctx->xn, D, 0, 1, T, D, 1); /* shared by up */
    matmul_pre(ctx, gate, ctx->xn, D, T, ctx->ff_gate, F, &in);
    matmul_pre(ctx, up, ctx->xn, D, T, ctx->ff_up, F, &in);
    swiglu_rows(ctx->ff_gate, ctx->ff_up, F * T);
    matmul(ctx, down, ctx->ff_gate, F, T, out, D);
}

/* The leading dense layers: h += SwiGLU(RMSNorm(h)). */
static void ffn_dense(ds_context *ctx, const ds_layer *l, int T) {
    ffn_norm(ctx, l, T);
    swiglu_mlp(ctx, &l->gate, &l->up, &l->down, T, ctx->branch);
    add_rows(ctx->x, ctx->branch, (int64_t)T * ctx->m->hp.n_embd);
}

/* The router's scores s_e from its logits: softmax over the experts (V2), or sigmoid (V3). */
static void expert_scores(ds_gating gating, const float *logit, float *s, int E) {
    if (gating == GATING_SIGMOID) {
        for (int e = 0; e < E; e++) s[e] = 1.0f / (1.0f + expf(-logit[e]));
        return;
    }
    memcpy(s, logit, (size_t)E * sizeof *s);
    softmax(s, E);
}

/* Group-limited routing for one token, as DeepSeek's reference gate: experts chosen by s_e +
   b_e (the V3 correction bias, used only for choosing) within the best n_group_used groups (a
   group scores the sum of its two best biased scores when there is a bias, its best score
   otherwise); g_e = s_e of the chosen, normalised to sum 1 when expert_norm, times
   expert_scale. tmp holds 4 x n_expert floats. */
static void route(const ds_hparams *hp, const float *bias, const float *logit, int32_t *idx, float *wt, float *tmp) {
    const int E = hp->n_expert, K = hp->n_expert_used;
    float *p = tmp, *sel = tmp + E;
    expert_scores(hp->gating, logit, p, E);
    for (int e = 0; e < E; e++) sel[e] = p[e] + (bias ? bias[e] : 0.0f);
    if (hp->n_group > 1 && hp->n_group_used < hp->n_group) {
        const int G = hp->n_group, gs = E / G;
        float *gscore = tmp + 2 * E;
        for (int g = 0; g < G; g++) {
            float a = -INFINITY, b = -INFINITY; /* best and second best */
            for (int e = g * gs; e < (g + 1) * gs; e++) {
                if (sel[e] > a) {
                    b = a;
                    a = sel[e];
                } else if (sel[e] > b) b = sel[e];
            }
            gscore[g] = bias && gs > 1 ? a + b : a;
        }
        for (int k = 0; k < G - hp->n_group_used; k++) { /* drop the worst groups */
            int worst = 0;
            for (int g = 1; g < G; g++)
                if (gscore[g] <= gscore[worst]) worst = g;
            gscore[worst] = INFINITY;
            for (int e = worst * gs; e < (worst + 1) * gs; e++) sel[e] = -INFINITY;
        }
    }
    float sum = 0, *taken = tmp + 3 * E;
    for (int e = 0; e < E; e++) taken[e] = 0;
    for (int k = 0; k < K; k++) { /* first index wins ties, as argmax */
        int best = -1;
        for (int e = 0; e < E; e++)
            if (!taken[e] && (best < 0 || sel[e] > sel[best])) best = e;
        taken[best] = 1;
        idx[k] = best;
        wt[k] = p[best];
        sum += wt[k];
    }
    float scale = hp->expert_scale != 0.0f ? hp->expert_scale : 1.0f;
    for (int k = 0; k < K; k++) wt[k] = (hp->expert_norm ? wt[k] / sum : wt[k]) * scale;
}

/* Routed experts. Each active expert's (token, slot) pairs are listed contiguously in
   exp_pairs; work items are (active expert, output row), so rows of all experts spread over
   the threads and only the chosen experts' rows are read. */
typedef struct {
    ds_context *ctx;
    const ds_layer *l;
    int n_active;
    qact gate_in, up_in, down_in; /* inputs quantized for block-format experts */
} moe_job;

/* Token rows for one expert: float rows, or their quantized twins when the weight needs them. */
static void dots(const ds_weight *w, const uint8_t *row, const float *const *xs, const void *const *qs, int n,
                 float *out) {
    if (w->act) row_dots_q(w, row, qs, n, out);
    else row_dots(w, row, xs, n, out);
}

static const void *qrow(const qact *q, size_t i) { return q->tr ? q->data + i * q->row_bytes : NULL; }

/* exp_act[pair] = silu(x W_gate_e) * (x W_up_e) */
static void moe_up_task(void *arg, int64_t i0, int64_t i1, int tid) {
    const moe_job *j = arg;
    ds_context *ctx = j->ctx;
    const ds_hparams *hp = &ctx->m->hp;
    const int D = hp->n_embd, K = hp->n_expert_used;
    const int64_t Fe = hp->n_ff_exp;
    const ds_weight *gw = &j->l->gate_exps, *uw = &j->l->up_exps;
    thread_scratch ts = scratch_of(ctx, tid);
    const void **gq = ts.qs, **uq = ts.qs + ctx->n_batch;
    float *g = ts.f, *u = g + ctx->n_batch;
    int ready = -1;
    for (int64_t i = i0; i < i1; i++) {
        int e = ctx->exp_active[i / Fe], n = ctx->exp_count[e], start = ctx->exp_start[e];
        int64_t r = i % Fe;
        if (e != ready) { /* the expert's tokens, for all its rows in this range */
            for (int k = 0; k < n; k++) {
                size_t tok = (size_t)(ctx->exp_pairs[start + k] / K);
                ts.xs[k] = ctx->xn + tok * D;
                gq[k] = qrow(&j->gate_in, tok);
                uq[k] = qrow(&j->up_in, tok);
            }
            ready = e;
        }
        dots(gw, gw->data + ((size_t)e * Fe + r) * gw->row_size, ts.xs, gq, n, g);
        dots(uw, uw->data + ((size_t)e * Fe + r) * uw->row_size, ts.xs, uq, n, u);
        for (int k = 0; k < n; k++) ctx->exp_act[(size_t)(start + k) * Fe + r] = silu(g[k]) * u[k];
    }
}

/* exp_out[token, slot] = exp_act[pair] W_down_e */
static void moe_down_task(void *arg, int64_t i0, int64_t i1, int tid) {
    const moe_job *j = arg;
    ds_context *ctx = j->ctx;
    const int D = ctx->m->hp.n_embd;
    const int64_t Fe = ctx->m->hp.n_ff_exp;
    const ds_weight *dw = &j->l->down_exps;
    thread_scratch ts = scratch_of(ctx, tid);
    int ready = -1;
    for (int64_t i = i0; i < i1; i++) {
        int e = ctx->exp_active[i / D], n = ctx->exp_count[e], start = ctx->exp_start[e];
        int64_t r = i % D;
        if (e != ready) {
            for (int k = 0; k < n; k++) {
                ts.xs[k] = ctx->exp_act + (size_t)(start + k) * Fe;
                ts.qs[k] = qrow(&j->down_in, (size_t)(start + k));
            }
            ready = e;
        }
        dots(dw, dw->data + ((size_t)e * D + r) * dw->row_size, ts.xs, ts.qs, n, ts.f);
        for (int k = 0; k < n; k++) ctx->exp_out[(size_t)ctx->exp_pairs[start + k] * D + r] = ts.f[k];
    }
}

/* Group the (token, slot) pairs by expert; returns the number of experts in use. */
static int group_by_expert(ds_context *ctx, int T) {
    const ds_hparams *hp = &ctx->m->hp;
    const int E = hp->n_expert, K = hp->n_expert_used;
    int n_active = 0, at = 0;
    memset(ctx->exp_count, 0, (size_t)E * sizeof *ctx->exp_count);
    for (int i = 0; i < T * K; i++) ctx->exp_count[ctx->route_idx[i]]++;
    for (int e = 0; e < E; e++) {
        ctx->exp_start[e] = at;
        at += ctx->exp_count[e];
        if (ctx->exp_count[e]) ctx->exp_active[n_active++] = e;
        ctx->exp_count[e] = 0;
    }
    for (int i = 0; i < T * K; i++) {
        int e = ctx->route_idx[i];
        ctx->exp_pairs[ctx->exp_start[e] + ctx->exp_count[e]++] = i;
    }
    return n_active;
}

/* DeepSeekMoE: h += sum_i FFN_shared_i(u) + sum_{e routed} g_e FFN_e(u), u = RMSNorm(h). */
static void ffn_moe(ds_context *ctx, const ds_layer *l, int T) {
    const ds_hparams *hp = &ctx->m->hp;
    const int D = hp->n_embd, E = hp->n_expert, K = hp->n_expert_used;
    ffn_norm(ctx, l, T);
    matmul(ctx, &l->gate_inp, ctx->xn, D, T, ctx->router_logits, E);
    for (int t = 0; t < T; t++)
        route(hp, l->exp_bias, ctx->router_logits + (size_t)t * E, ctx->route_idx + (size_t)t * K,
              ctx->route_w + (size_t)t * K, scratch_of(ctx, 0).f);
    moe_job j = {ctx, l, group_by_expert(ctx, T), {0}, {0}, {0}};
    const ds_type_traits *ga = l->gate_exps.act, *ua = l->up_exps.act, *da = l->down_exps.act;
    if (ga) j.gate_in = quantize_act(ctx, ga, ctx->xn, D, 0, 1, T, D, 0);
    if (ua) j.up_in = ua == ga ? j.gate_in : quantize_act(ctx, ua, ctx->xn, D, 0, 1, T, D, 1);
    pool_run(ctx->pool, (int64_t)j.n_active * hp->n_ff_exp, moe_up_task, &j);
    if (da) j.down_in = quantize_act(ctx, da, ctx->exp_act, hp->n_ff_exp, 0, 1, T * K, hp->n_ff_exp, 0);
    pool_run(ctx->pool, (int64_t)j.n_active * D, moe_down_task, &j);
    if (hp->n_expert_shared) swiglu_mlp(ctx, &l->gate_sh, &l->up_sh, &l->down_sh, T, ctx->shared_out);
    /* routed outputs summed in expert order (as the reference loops over experts), then the
       shared experts' output added with weight 1 */
    for (int t = 0; t < T; t++) {
        float *x = ctx->x + (size_t)t * D, *y = ctx->routed;
        const int32_t *idx = ctx->route_idx + (size_t)t * K;
        memset(y, 0, (size_t)D * sizeof *y);
        for (int e = 0; e < E; e++)
            for (int k = 0; k < K; k++) {
                if (idx[k] != e) continue;
                const float *o = ctx->exp_out + ((size_t)t * K + k) * D;
                float w = ctx->route_w[(size_t)t * K + k];
                for (int d = 0; d < D; d++) y[d] += o[d] * w;
            }
        for (int d = 0; d < D; d++) x[d] += hp->n_expert_shared ? y[d] + ctx->shared_out[(size_t)t * D + d] : y[d];
    }
}

/* ---- the head ---- */

/* Logits of the last n_out tokens of the batch into out. With MTP on, every token's
   final-normed state is kept for ds_eval_mtp. */
static void head(ds_context *ctx, int T, int n_out, float *out) {
    const ds_model *m = ctx->m;
    const int D = m->hp.n_embd;
    float *h = ctx->xn;
    int n_norm = n_out;
    if (ctx->mtp) {
        h = ctx->hid + (size_t)ctx->n_hid * D;
        n_norm = T;
        ctx->n_hid += T;
    }
    rmsnorm_rows(h, D, ctx->x + (size_t)(T - n_norm) * D, D, m->output_norm, D, n_norm, m->hp.rms_eps);
    if (n_out) matmul(ctx, &m->output, h + (size_t)(n_norm - n_out) * D, D, n_out, out, m->hp.n_vocab);
}

/* ---- the whole pass ---- */

/* The decoder over T tokens from position pos0 (or, in a batch of sequences, at the rows'
   own positions: ctx->row_pos), and the logits of the last n_out. */
static void decode(ds_context *ctx, const int32_t *tokens, int pos0, int T, int n_out, float *out) {
    const ds_model *m = ctx->m;
    embed(&m->tok_embd, tokens, T, ctx->x);
    for (int il = 0; il < m->hp.n_layer; il++) {
        const ds_layer *l = &m->layers[il];
        l->attention(ctx, l, il, pos0, T);
        l->feed_forward(ctx, l, T);
    }
    head(ctx, T, n_out, out);
}

static void forward(ds_context *ctx, const int32_t *tokens, int T, int n_out, float *out) {
    decode(ctx, tokens, ctx->n_past, T, n_out, out);
    ctx->n_past += T;
}

/* ---- multi-token prediction (V3 2.2) ----

   h'_i = W_eh [RMSNorm(Emb(t_{i+1})); RMSNorm(h_i)], one more decoder layer over h', then its
   own norm and the (shared) head: logits for t_{i+2}. Over the next T kept hidden rows
   (positions mtp_past onwards), whose tokens were followed by next[0..T); the logits of the
   last n_out rows into out. */
static void forward_mtp(ds_context *ctx, const int32_t *next, int T, int n_out, float *out) {
    const ds_model *m = ctx->m;
    const ds_nextn *n = &m->mtp;
    const int D = m->hp.n_embd, pos0 = ctx->mtp_past;
    const float eps = m->hp.rms_eps;
    const float *hid = ctx->hid + (size_t)(pos0 - ctx->hid_pos0) * D;
    embed(&n->embd, next, T, ctx->mtp_emb);
    for (int t = 0; t < T; t++) {
        float *in = ctx->mtp_in + (size_t)t * 2 * D;
        rmsnorm(in, ctx->mtp_emb + (size_t)t * D, n->enorm, D, eps);
        rmsnorm(in + D, hid + (size_t)t * D, n->hnorm, D, eps);
    }
    matmul(ctx, &n->eh_proj, ctx->mtp_in, 2 * D, T, ctx->x, D);
    n->layer.attention(ctx, &n->layer, m->hp.n_layer, pos0, T);
    n->layer.feed_forward(ctx, &n->layer, T);
    ctx->mtp_past += T;
    if (n_out == 0) return;
    rmsnorm_rows(ctx->xn, D, ctx->x + (size_t)(T - n_out) * D, D, n->head_norm, D, n_out, eps);
    matmul(ctx, &n->head, ctx->xn, D, n_out, out, m->hp.n_vocab);
}

/* A pass (forward, forward_mtp) over n tokens in batches of n_batch, keeping the logits of
   every token (all) or of the last one. */
typedef void (*pass_fn)(ds_context *ctx, const int32_t *tokens, int T, int n_out, float *out);

static void in_batches(ds_context *ctx, pass_fn pass, const int32_t *tokens, int n, int all, float *out) {
    const int V = ctx->m->hp.n_vocab;
    for (int i = 0; i < n; i += ctx->n_batch) {
        int T = n - i < ctx->n_batch ? n - i : ctx->n_batch;
        if (all) pass(ctx, tokens + i, T, T, out + (size_t)i * V);
        else pass(ctx, tokens + i, T, i + T == n ? 1 : 0, out);
    }
}

/* ========================================================================================== */
/* 3. Architectures (a table entry each) and model loading                                    */
/* ========================================================================================== */

struct loader {
    ds_model *m;
    char *err;
    size_t err_size;
};

static ds_status load_int(loader *L, const char *key, bool required, int64_t lo, int64_t hi, int *v) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", L->m->arch->name, key);
    int64_t x = *v;
    ds_status s = meta_int(L->m->file, full, required, lo, hi, &x, L->err, L->err_size);
    *v = (int)x;
    return s;
}

static ds_status load_float(loader *L, const char *key, bool required, float *v) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", L->m->arch->name, key);
    return meta_float(L->m->file, full, required, v, L->err, L->err_size);
}

/* DeepSeekMoE's keys (V1's, V2's and V3's; the later ones add the gating function, groups
   and weight normalisation): leading dense layers, then routed and shared experts. */
static ds_status moe_hparams(loader *L) {
    ds_hparams *hp = &L->m->hp;
    const gguf_file *f = L->m->file;
    const int BIG = 1 << 24;
    TRY(load_int(L, "leading_dense_block_count", false, 0, hp->n_layer, &hp->n_lead_dense));
    bool has_moe = hp->n_lead_dense < hp->n_layer;
    TRY(load_int(L, "expert_count", has_moe, 0, 65536, &hp->n_expert));
    TRY(load_int(L, "expert_used_count", has_moe, 0, hp->n_expert, &hp->n_expert_used));
    TRY(load_int(L, "expert_shared_count", false, 0, 4096, &hp->n_expert_shared));
    TRY(load_int(L, "expert_feed_forward_length", has_moe, 0, BIG, &hp->n_ff_exp));
    if (has_moe && (hp->n_expert < 1 || hp->n_expert_used < 1))
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: MoE layers need expert_count and expert_used_count >= 1",
                    f->path);
    int gating = GATING_SOFTMAX;
    TRY(load_int(L, "expert_gating_func", false, GATING_SOFTMAX, GATING_SIGMOID, &gating));
    hp->gating = (ds_gating)gating;
    hp->n_group = 1;
    TRY(load_int(L, "expert_group_count", false, 1, 65536, &hp->n_group));
    hp->n_group_used = hp->n_group;
    TRY(load_int(L, "expert_group_used_count", false, 1, hp->n_group, &hp->n_group_used));
    if (has_moe && hp->n_expert % hp->n_group)
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: %d experts do not split into %d groups", f->path,
                    hp->n_expert, hp->n_group);
    if (has_moe && hp->n_expert_used > hp->n_group_used * (hp->n_expert / hp->n_group))
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: %d experts per token cannot come from %d groups", f->path,
                    hp->n_expert_used, hp->n_group_used);
    TRY(load_float(L, "expert_weights_scale", false, &hp->expert_scale));
    int norm = 0;
    TRY(load_int(L, "expert_weights_norm", false, 0, 1, &norm));
    hp->expert_norm = norm;
    return DS_OK;
}

/* rope.freq_base and rope.scaling.*: the kind of scaling, its factor, YaRN's original context
   and correction betas. llama.cpp reads a missing type as linear; deepseek2 files say yarn
   when they scale and take YaRN's attention factor from their log multiplier, the dense
   models from ggml's 1 + 0.1 ln factor (with rope.scaling.attn_factor on top). */
static ds_status rope_hparams(loader *L, bool dense) {
    ds_hparams *hp = &L->m->hp;
    const gguf_file *f = L->m->file;
    char scaling[32], key[96];
    hp->rope_base = 10000.0f;
    TRY(load_float(L, "rope.freq_base", false, &hp->rope_base));
    snprintf(key, sizeof key, "%s.rope.scaling.type", L->m->arch->name);
    meta_str(f, key, scaling, sizeof scaling);
    if (dense && !scaling[0]) snprintf(scaling, sizeof scaling, "linear");
    float factor = 0.0f;
    TRY(load_float(L, "rope.scaling.factor", false, &factor));
    hp->rope_factor = hp->rope_freq_scale = hp->rope_attn_factor = 1.0f;
    if (!strcmp(scaling, "yarn")) {
        hp->rope_factor = factor > 0.0f ? factor : 1.0f;
        hp->yarn = hp->rope_factor > 1.0f;
    } else if (dense && !strcmp(scaling, "linear")) {
        hp->rope_freq_scale = factor > 0.0f ? 1.0f / factor : 1.0f;
    } else if (scaling[0] && strcmp(scaling, "none")) {
        return fail(DS_ERR_UNSUPPORTED, L->err, L->err_size, "%s: metadata '%s' is '%s': not supported (%s)", f->path,
                    key, scaling, dense ? "linear, yarn or none" : "yarn or none");
    }
    hp->rope_orig_ctx = hp->n_ctx_train;
    TRY(load_int(L, "rope.scaling.original_context_length", hp->yarn && !dense, 1, INT_MAX, &hp->rope_orig_ctx));
    TRY(load_float(L, "rope.scaling.yarn_log_multiplier", false, &hp->yarn_log_mul));
    if (dense && hp->yarn_log_mul != 0.0f)
        return fail(DS_ERR_UNSUPPORTED, L->err, L->err_size,
                    "%s: metadata '%s.rope.scaling.yarn_log_multiplier' is set: only deepseek2 files use it", f->path,
                    L->m->arch->name);
    if (dense) {
        hp->yarn_log_mul = 0.1f;
        TRY(load_float(L, "rope.scaling.attn_factor", false, &hp->rope_attn_factor));
    }
    hp->beta_fast = 32.0f;
    hp->beta_slow = 1.0f;
    TRY(load_float(L, "rope.scaling.yarn_beta_fast", false, &hp->beta_fast));
    TRY(load_float(L, "rope.scaling.yarn_beta_slow", false, &hp->beta_slow));
    if (hp->rope_base <= 1.0f || hp->beta_fast <= 0 || hp->beta_slow <= 0 || !(hp->rope_attn_factor > 0.0f))
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: rope parameters out of range", f->path);
    return DS_OK;
}

/* ---- deepseek2: DeepSeek-V2, V2-Lite, Coder-V2, V3, R1, V3.1 ---- */

static ds_status deepseek2_hparams(loader *L) {
    ds_hparams *hp = &L->m->hp;
    const gguf_file *f = L->m->file;
    const int BIG = 1 << 24;
    int n_block = 0, key_len = 0, val_len = 0, key_mla = 0, val_mla = 0;
    TRY(load_int(L, "block_count", true, 1, 4096, &n_block));
    TRY(load_int(L, "nextn_predict_layers", false, 0, n_block - 1, &hp->n_nextn));
    hp->n_layer = n_block - hp->n_nextn;
    TRY(load_int(L, "context_length", true, 1, INT_MAX, &hp->n_ctx_train));
    TRY(load_int(L, "embedding_length", true, 1, BIG, &hp->n_embd));
    TRY(load_int(L, "feed_forward_length", false, 0, BIG, &hp->n_ff));
    TRY(load_int(L, "attention.head_count", true, 1, 4096, &hp->n_head));
    TRY(load_int(L, "attention.q_lora_rank", false, 0, BIG, &hp->q_lora_rank));
    TRY(load_int(L, "attention.kv_lora_rank", true, 1, BIG, &hp->kv_lora_rank));
    TRY(load_int(L, "rope.dimension_count", true, 2, 4096, &hp->dr));
    if (hp->dr % 2)
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: rope.dimension_count %d is odd", f->path, hp->dr);
    TRY(load_int(L, "attention.key_length", true, 1, BIG, &key_len));
    TRY(load_int(L, "attention.value_length", true, 1, BIG, &val_len));
    TRY(load_int(L, "attention.key_length_mla", false, 1, BIG, &key_mla));
    TRY(load_int(L, "attention.value_length_mla", false, 1, BIG, &val_mla));
    hp->mla_split = key_mla && val_mla;
    hp->dn = (hp->mla_split ? key_mla : key_len) - hp->dr;
    hp->dv = hp->mla_split ? val_mla : val_len;
    if (hp->dn < 1)
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: attention key length leaves no room for the rope dims",
                    f->path);
    hp->dk = hp->dn + hp->dr;
    hp->kv_row = (size_t)hp->kv_lora_rank + (size_t)hp->dr;
    TRY(moe_hparams(L));
    hp->rms_eps = 1e-6f;
    TRY(load_float(L, "attention.layer_norm_rms_epsilon", false, &hp->rms_eps));
    if (hp->rms_eps < 0)
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: the norm epsilon is negative", f->path);
    return rope_hparams(L, false);
}

/* deepseek32 (DeepSeek-V3.2): deepseek2's, plus the lightning indexer's. Its queries come from
   the query latent and its FP8 blocks are DeepSeek's 128 values (one scale per key). */
static ds_status deepseek32_hparams(loader *L) {
    ds_hparams *hp = &L->m->hp;
    const char *path = L->m->file->path;
    TRY(deepseek2_hparams(L));
    TRY(load_int(L, "attention.indexer.head_count", true, 1, 4096, &hp->idx_n_head));
    TRY(load_int(L, "attention.indexer.key_length", true, 1, DS_FP8_INDEX_MAX, &hp->idx_dim));
    TRY(load_int(L, "attention.indexer.top_k", true, 1, INT_MAX, &hp->idx_topk));
    if (hp->idx_dim != 128)
        return fail(DS_ERR_UNSUPPORTED, L->err, L->err_size,
                    "%s: metadata 'deepseek32.attention.indexer.key_length' is %d: the indexer's keys are one FP8 "
                    "block of 128",
                    path, hp->idx_dim);
    if (hp->dr > hp->idx_dim)
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: the indexer's keys (%d) are narrower than the rope dims",
                    path, hp->idx_dim);
    if (!hp->q_lora_rank)
        return fail(DS_ERR_FORMAT, L->err, L->err_size,
                    "%s: metadata 'deepseek32.attention.q_lora_rank' is missing: the indexer reads the query latent",
                    path);
    return DS_OK;
}

/* Bind a named tensor: it must exist with exactly the expected shape and a type we compute with. */
static ds_status bind(loader *L, ds_weight *w, const char *name, int64_t ne0, int64_t ne1, int64_t ne2, bool required) {
    const gguf_file *f = L->m->file;
    const gguf_tensor *t = gguf_tensor_find(f, name);
    memset(w, 0, sizeof *w);
    if (!t)
        return required ? fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: tensor '%s' is missing", f->path, name) : DS_OK;
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != ne2 || t->ne[3] != 1)
        return fail(DS_ERR_FORMAT, L->err, L->err_size,
                    "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, %lld]", f->path, name,
                    (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], (long long)ne0,
                    (long long)ne1, (long long)ne2);
    const ds_type_traits *tr = kernel_traits(t->type);
    if ((uintptr_t)t->data % (tr->type_size < 4 ? tr->type_size : 4))
        return fail(DS_ERR_FORMAT, L->err, L->err_size,
                    "%s: tensor '%s' is not aligned for its type (general.alignment too small)", f->path, name);
    bool block = !tr->dot_f32 && tr->vec_dot && tr->to_f32;
    if (!tr->dot_f32 && !block)
        return fail(
            DS_ERR_UNSUPPORTED, L->err, L->err_size,
            "%s: tensor '%s' has type %s, which this build cannot compute with yet (F32, F16, BF16, Q4_0, Q4_1, "
            "Q5_0, Q5_1, Q8_0, Q2_K-Q6_K, IQ4_NL, IQ4_XS, IQ2_XXS, IQ1_S)",
            f->path, name, tr->name);
    if (ne0 % tr->block_size)
        return fail(DS_ERR_FORMAT, L->err, L->err_size,
                    "%s: tensor '%s': rows of %lld do not split into %s blocks of %d", f->path, name, (long long)ne0,
                    tr->name, tr->block_size);
    w->data = t->data;
    w->type = t->type;
    w->tr = tr;
    w->act = block ? kernel_traits(tr->vec_dot_type) : NULL;
    if (block) L->m->quantized = true;
    w->n_in = ne0;
    w->n_rows = ne1;
    w->n_mat = ne2;
    w->row_size = ds_type_row_size(t->type, ne0);
    return DS_OK;
}

/* A 1-D tensor as float32: used in place when F32, widened once otherwise. */
static ds_status bind_vec(loader *L, const float **out, const char *name, int64_t n, bool required) {
    ds_weight w;
    *out = NULL;
    TRY(bind(L, &w, name, n, 1, 1, required));
    if (!w.data) return DS_OK;
    if (w.type == DS_TYPE_F32 && ((uintptr_t)w.data % sizeof(float)) == 0) {
        *out = (const float *)w.data;
        return DS_OK;
    }
    ds_model *m = L->m;
    float *v = malloc((size_t)n * sizeof *v);
    float **o = realloc(m->owned, (m->n_owned + 1) * sizeof *o);
    if (!v || !o) {
        free(v);
        if (o) m->owned = o;
        return fail(DS_ERR_NOMEM, L->err, L->err_size, "out of memory");
    }
    m->owned = o;
    m->owned[m->n_owned++] = v;
    w.tr->to_f32(w.data, v, n);
    *out = v;
    return DS_OK;
}

static ds_status bindf(loader *L, ds_weight *w, int il, const char *suffix, int64_t ne0, int64_t ne1, int64_t ne2,
                       bool required) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s", il, suffix);
    return bind(L, w, name, ne0, ne1, ne2, required);
}

static ds_status bind_vecf(loader *L, const float **out, int il, const char *suffix, int64_t n, bool required) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s", il, suffix);
    return bind_vec(L, out, name, n, required);
}

static ds_status deepseek2_attention(loader *L, ds_layer *l, int il) {
    const ds_hparams *hp = &L->m->hp;
    int64_t D = hp->n_embd, H = hp->n_head, R = hp->kv_lora_rank, qk = hp->dn + hp->dr;
    TRY(bind_vecf(L, &l->attn_norm, il, "attn_norm.weight", D, true));
    if (hp->q_lora_rank) {
        TRY(bindf(L, &l->q_a, il, "attn_q_a.weight", D, hp->q_lora_rank, 1, true));
        TRY(bind_vecf(L, &l->q_a_norm, il, "attn_q_a_norm.weight", hp->q_lora_rank, true));
        TRY(bindf(L, &l->q_b, il, "attn_q_b.weight", hp->q_lora_rank, H * qk, 1, true));
    } else {
        TRY(bindf(L, &l->q, il, "attn_q.weight", D, H * qk, 1, true));
    }
    TRY(bindf(L, &l->kv_a, il, "attn_kv_a_mqa.weight", D, R + hp->dr, 1, true));
    TRY(bind_vecf(L, &l->kv_a_norm, il, "attn_kv_a_norm.weight", R, true));
    l->attention = hp->mla_split ? attention_mla : attention_mla_legacy;
    if (hp->mla_split) {
        TRY(bindf(L, &l->k_b, il, "attn_k_b.weight", hp->dn, R, H, true));
        TRY(bindf(L, &l->v_b, il, "attn_v_b.weight", R, hp->dv, H, true));
    } else {
        TRY(bindf(L, &l->kv_b, il, "attn_kv_b.weight", R, H * (hp->dn + hp->dv), 1, true));
    }
    return bindf(L, &l->o, il, "attn_output.weight", H * hp->dv, D, 1, true);
}

static ds_status deepseek2_ffn(loader *L, ds_layer *l, int il) {
    const ds_hparams *hp = &L->m->hp;
    int64_t D = hp->n_embd, E = hp->n_expert, Fe = hp->n_ff_exp;
    TRY(bind_vecf(L, &l->ffn_norm, il, "ffn_norm.weight", D, true));
    if (il < hp->n_lead_dense) {
        l->feed_forward = ffn_dense;
        if (hp->n_ff < 1)
            return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: metadata '%s.feed_forward_length' is missing",
                        L->m->file->path, L->m->arch->name);
        TRY(bindf(L, &l->gate, il, "ffn_gate.weight", D, hp->n_ff, 1, true));
        TRY(bindf(L, &l->up, il, "ffn_up.weight", D, hp->n_ff, 1, true));
        return bindf(L, &l->down, il, "ffn_down.weight", hp->n_ff, D, 1, true);
    }
    l->feed_forward = ffn_moe;
    TRY(bindf(L, &l->gate_inp, il, "ffn_gate_inp.weight", D, E, 1, true));
    TRY(bind_vecf(L, &l->exp_bias, il, "exp_probs_b.bias", E, false));
    TRY(bindf(L, &l->gate_exps, il, "ffn_gate_exps.weight", D, Fe, E, true));
    TRY(bindf(L, &l->up_exps, il, "ffn_up_exps.weight", D, Fe, E, true));
    TRY(bindf(L, &l->down_exps, il, "ffn_down_exps.weight", Fe, D, E, true));
    if (hp->n_expert_shared) {
        int64_t Fs = Fe * hp->n_expert_shared;
        TRY(bindf(L, &l->gate_sh, il, "ffn_gate_shexp.weight", D, Fs, 1, true));
        TRY(bindf(L, &l->up_sh, il, "ffn_up_shexp.weight", D, Fs, 1, true));
        TRY(bindf(L, &l->down_sh, il, "ffn_down_shexp.weight", Fs, D, 1, true));
    }
    return DS_OK;
}

static ds_status deepseek2_layer(loader *L, ds_layer *l, int il) {
    TRY(deepseek2_attention(L, l, il));
    return deepseek2_ffn(L, l, il);
}

/* MLA with the lightning indexer: every layer has one, the MTP layer too. */
static ds_status deepseek32_layer(loader *L, ds_layer *l, int il) {
    const ds_hparams *hp = &L->m->hp;
    const int64_t D = hp->n_embd, Hi = hp->idx_n_head, Di = hp->idx_dim;
    TRY(deepseek2_layer(L, l, il));
    l->attention = hp->mla_split ? attention_dsa : attention_dsa_legacy;
    TRY(bindf(L, &l->idx_q_b, il, "indexer.attn_q_b.weight", hp->q_lora_rank, Hi * Di, 1, true));
    TRY(bindf(L, &l->idx_k, il, "indexer.attn_k.weight", D, Di, 1, true));
    TRY(bind_vecf(L, &l->idx_k_norm, il, "indexer.k_norm.weight", Di, true));
    TRY(bind_vecf(L, &l->idx_k_bias, il, "indexer.k_norm.bias", Di, true));
    return bindf(L, &l->idx_proj, il, "indexer.proj.weight", D, Hi, 1, true);
}

/* Files converted without the MTP layer may still count it in nextn_predict_layers: without
   its projection the model simply has no MTP; with it, the rest must be there. Its decoder
   layer is bound as the architecture binds the others. */
static ds_status bind_mtp(loader *L, ds_status (*bind_layer)(loader *, ds_layer *, int)) {
    ds_model *m = L->m;
    const ds_hparams *hp = &m->hp;
    const int il = hp->n_layer;
    const int64_t D = hp->n_embd;
    ds_nextn *n = &m->mtp;
    if (hp->n_nextn < 1) return DS_OK;
    TRY(bindf(L, &n->eh_proj, il, "nextn.eh_proj.weight", 2 * D, D, 1, false));
    if (!n->eh_proj.data) return DS_OK;
    TRY(bind_vecf(L, &n->enorm, il, "nextn.enorm.weight", D, true));
    TRY(bind_vecf(L, &n->hnorm, il, "nextn.hnorm.weight", D, true));
    TRY(bind_vecf(L, &n->head_norm, il, "nextn.shared_head_norm.weight", D, true));
    TRY(bindf(L, &n->embd, il, "nextn.embed_tokens.weight", D, hp->n_vocab, 1, false));
    TRY(bindf(L, &n->head, il, "nextn.shared_head_head.weight", D, hp->n_vocab, 1, false));
    if (!n->embd.data) n->embd = m->tok_embd;
    if (!n->head.data) n->head = m->output;
    TRY(bind_layer(L, &n->layer, il)); /* always MoE: il >= the leading dense layers */
    n->present = true;
    return DS_OK;
}

static ds_status deepseek2_mtp(loader *L) { return bind_mtp(L, deepseek2_layer); }
static ds_status deepseek32_mtp(loader *L) { return bind_mtp(L, deepseek32_layer); }

/* ---- llama, qwen2, qwen3, deepseek: the R1 distills, DeepSeek-LLM / Coder, DeepSeek-MoE ----

   Grouped-query attention over a K/V cache, then SwiGLU or (deepseek) DeepSeekMoE. The
   keys are llama.cpp's: head dims default to n_embd / n_head, the rotary to the whole key
   head; llama and deepseek rotate adjacent pairs (llama.cpp's converter permutes q and k
   rows into that order), qwen2 and qwen3 the halves of each head. */

static ds_status gqa_hparams(loader *L, bool neox) {
    ds_hparams *hp = &L->m->hp;
    const char *path = L->m->file->path;
    const int BIG = 1 << 24;
    TRY(load_int(L, "block_count", true, 1, 4096, &hp->n_layer));
    TRY(load_int(L, "context_length", true, 1, INT_MAX, &hp->n_ctx_train));
    TRY(load_int(L, "embedding_length", true, 1, BIG, &hp->n_embd));
    TRY(load_int(L, "feed_forward_length", false, 0, BIG, &hp->n_ff));
    TRY(load_int(L, "attention.head_count", true, 1, 4096, &hp->n_head));
    hp->n_head_kv = hp->n_head;
    TRY(load_int(L, "attention.head_count_kv", false, 1, hp->n_head, &hp->n_head_kv));
    if (hp->n_head % hp->n_head_kv)
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: %d query heads do not split into %d key/value groups",
                    path, hp->n_head, hp->n_head_kv);
    hp->dk = hp->dv = hp->n_embd / hp->n_head;
    TRY(load_int(L, "attention.key_length", false, 1, BIG, &hp->dk));
    TRY(load_int(L, "attention.value_length", false, 1, BIG, &hp->dv));
    hp->dr = hp->dk;
    TRY(load_int(L, "rope.dimension_count", false, 2, hp->dk, &hp->dr));
    if (hp->dk < 2 || hp->dr % 2)
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: rotary dims %d of key heads of %d: not an even count",
                    path, hp->dr, hp->dk);
    hp->kv_row = (size_t)hp->n_head_kv * (size_t)(hp->dk + hp->dv);
    hp->rope_neox = neox;
    TRY(load_float(L, "attention.layer_norm_rms_epsilon", true, &hp->rms_eps));
    if (hp->rms_eps < 0)
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: the norm epsilon is negative", path);
    return rope_hparams(L, true);
}

/* Dense models: every layer's feed-forward is SwiGLU of feed_forward_length. A file with
   routed experts under these names (Mixtral-style llama) is not one of ours. */
static ds_status dense_hparams(loader *L, bool neox) {
    ds_hparams *hp = &L->m->hp;
    TRY(gqa_hparams(L, neox));
    int n_expert = 0;
    TRY(load_int(L, "expert_count", false, 0, 65536, &n_expert));
    if (n_expert)
        return fail(DS_ERR_UNSUPPORTED, L->err, L->err_size,
                    "%s: metadata '%s.expert_count' is %d: mixture-of-experts %s models are not supported",
                    L->m->file->path, L->m->arch->name, n_expert, L->m->arch->name);
    if (hp->n_ff < 1)
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: metadata '%s.feed_forward_length' is missing",
                    L->m->file->path, L->m->arch->name);
    hp->n_lead_dense = hp->n_layer;
    return DS_OK;
}

static ds_status llama_hparams(loader *L) { return dense_hparams(L, false); }
static ds_status qwen_hparams(loader *L) { return dense_hparams(L, true); }

/* DeepSeek-MoE-16B: llama's attention, DeepSeekMoE's softmax routing without weight
   normalisation, with shared experts. */
static ds_status deepseek_hparams(loader *L) {
    TRY(gqa_hparams(L, false));
    return moe_hparams(L);
}

/* A tensor this runtime would not apply: its presence must fail the load, never be ignored. */
static ds_status refuse(loader *L, int il, const char *suffix) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s", il, suffix);
    if (!gguf_tensor_find(L->m->file, name)) return DS_OK;
    return fail(DS_ERR_UNSUPPORTED, L->err, L->err_size, "%s: tensor '%s' is not supported", L->m->file->path, name);
}

static ds_status gqa_attention(loader *L, ds_layer *l, int il) {
    const ds_hparams *hp = &L->m->hp;
    const int64_t D = hp->n_embd, nq = (int64_t)hp->n_head * hp->dk, nk = (int64_t)hp->n_head_kv * hp->dk,
                  nv = (int64_t)hp->n_head_kv * hp->dv;
    l->attention = attention_gqa;
    TRY(bind_vecf(L, &l->attn_norm, il, "attn_norm.weight", D, true));
    TRY(bindf(L, &l->qkv, il, "attn_qkv.weight", D, nq + nk + nv, 1, false));
    TRY(refuse(L, il, "attn_qkv.bias"));
    if (!l->qkv.data) {
        TRY(bindf(L, &l->q, il, "attn_q.weight", D, nq, 1, true));
        TRY(bindf(L, &l->k, il, "attn_k.weight", D, nk, 1, true));
        TRY(bindf(L, &l->v, il, "attn_v.weight", D, nv, 1, true));
    }
    TRY(bind_vecf(L, &l->bq, il, "attn_q.bias", nq, false));
    TRY(bind_vecf(L, &l->bk, il, "attn_k.bias", nk, false));
    TRY(bind_vecf(L, &l->bv, il, "attn_v.bias", nv, false));
    TRY(bindf(L, &l->o, il, "attn_output.weight", (int64_t)hp->n_head * hp->dv, D, 1, true));
    return bind_vecf(L, &l->bo, il, "attn_output.bias", D, false);
}

static ds_status dense_ffn(loader *L, ds_layer *l, int il) {
    const ds_hparams *hp = &L->m->hp;
    const int64_t D = hp->n_embd;
    static const char *const biases[] = {"ffn_gate.bias", "ffn_up.bias", "ffn_down.bias"};
    for (size_t i = 0; i < 3; i++) TRY(refuse(L, il, biases[i]));
    l->feed_forward = ffn_dense;
    TRY(bind_vecf(L, &l->ffn_norm, il, "ffn_norm.weight", D, true));
    TRY(bindf(L, &l->gate, il, "ffn_gate.weight", D, hp->n_ff, 1, true));
    TRY(bindf(L, &l->up, il, "ffn_up.weight", D, hp->n_ff, 1, true));
    return bindf(L, &l->down, il, "ffn_down.weight", hp->n_ff, D, 1, true);
}

static ds_status dense_layer(loader *L, ds_layer *l, int il) {
    TRY(gqa_attention(L, l, il));
    return dense_ffn(L, l, il);
}

/* qwen3: every head of q and k RMS-normalised before the rotary. */
static ds_status qwen3_layer(loader *L, ds_layer *l, int il) {
    const int64_t dk = L->m->hp.dk;
    TRY(dense_layer(L, l, il));
    TRY(bind_vecf(L, &l->q_norm, il, "attn_q_norm.weight", dk, true));
    return bind_vecf(L, &l->k_norm, il, "attn_k_norm.weight", dk, true);
}

static ds_status deepseek_layer(loader *L, ds_layer *l, int il) {
    TRY(gqa_attention(L, l, il));
    return deepseek2_ffn(L, l, il);
}

static ds_status no_mtp(loader *L) {
    (void)L;
    return DS_OK;
}

/* The one line ds_model_desc gives: what the file holds, as the architecture sees it. */
static void describe_mla(ds_model *m) {
    const ds_hparams *hp = &m->hp;
    char dsa[64] = "";
    if (hp->idx_topk)
        snprintf(dsa, sizeof dsa, ", sparse: indexer %dx%d top %d", hp->idx_n_head, hp->idx_dim, hp->idx_topk);
    snprintf(m->desc, sizeof m->desc,
             "%s: %d layers (%d dense) + %d MTP, d_model %d, %d heads, q_lora %d, kv_lora %d, "
             "head dims %d+%d/%d, MLA %s%s, %d experts (%d used, %d shared, %s%s, %d/%d groups), vocab %d, ctx %d",
             m->arch->name, hp->n_layer, hp->n_lead_dense, hp->n_nextn, hp->n_embd, hp->n_head, hp->q_lora_rank,
             hp->kv_lora_rank, hp->dn, hp->dr, hp->dv, hp->mla_split ? "split k_b/v_b" : "legacy kv_b", dsa,
             hp->n_expert, hp->n_expert_used, hp->n_expert_shared, hp->gating == GATING_SIGMOID ? "sigmoid" : "softmax",
             m->layers && hp->n_lead_dense < hp->n_layer && m->layers[hp->n_lead_dense].exp_bias ? "+bias" : "",
             hp->n_group_used, hp->n_group, hp->n_vocab, hp->n_ctx_train);
}

static void describe_gqa(ds_model *m) {
    const ds_hparams *hp = &m->hp;
    char moe[96] = "", scaling[48] = "";
    if (hp->n_expert)
        snprintf(moe, sizeof moe, ", %d dense layers, %d experts (%d used, %d shared, softmax)", hp->n_lead_dense,
                 hp->n_expert, hp->n_expert_used, hp->n_expert_shared);
    if (hp->yarn) snprintf(scaling, sizeof scaling, ", yarn x%g from %d", hp->rope_factor, hp->rope_orig_ctx);
    else if (hp->rope_freq_scale != 1.0f) snprintf(scaling, sizeof scaling, ", linear x%g", 1.0 / hp->rope_freq_scale);
    else if (m->rope_freqs) snprintf(scaling, sizeof scaling, ", rope_freqs");
    snprintf(m->desc, sizeof m->desc,
             "%s: %d layers, d_model %d, %d heads / %d kv heads of %d+%d (rope %d %s, base %g%s)%s%s, ff %d, vocab "
             "%d, ctx %d",
             m->arch->name, hp->n_layer, hp->n_embd, hp->n_head, hp->n_head_kv, hp->dk, hp->dv, hp->dr,
             hp->rope_neox ? "neox" : "pairs", hp->rope_base, scaling, m->layers && m->layers[0].q_norm ? ", q/k norm" : "",
             moe, hp->n_ff, hp->n_vocab, hp->n_ctx_train);
}

/* ---- the table ---- */

static const ds_arch ARCHS[] = {
    {"deepseek2", deepseek2_hparams, deepseek2_layer, deepseek2_mtp, describe_mla},
    {"deepseek32", deepseek32_hparams, deepseek32_layer, deepseek32_mtp, describe_mla},
    {"llama", llama_hparams, dense_layer, no_mtp, describe_gqa},
    {"qwen2", qwen_hparams, dense_layer, no_mtp, describe_gqa},
    {"qwen3", qwen_hparams, qwen3_layer, no_mtp, describe_gqa},
    {"deepseek", deepseek_hparams, deepseek_layer, no_mtp, describe_gqa},
};

static ds_status find_arch(loader *L) {
    const gguf_file *f = L->m->file;
    char arch[64];
    meta_str(f, "general.architecture", arch, sizeof arch);
    if (!arch[0])
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: metadata 'general.architecture' is missing", f->path);
    for (size_t i = 0; i < sizeof ARCHS / sizeof *ARCHS; i++)
        if (!strcmp(arch, ARCHS[i].name)) {
            L->m->arch = &ARCHS[i];
            return DS_OK;
        }
    char known[160] = "";
    for (size_t i = 0, at = 0; i < sizeof ARCHS / sizeof *ARCHS && at < sizeof known; i++)
        at += (size_t)snprintf(known + at, sizeof known - at, "%s'%s'", i ? ", " : "", ARCHS[i].name);
    return fail(DS_ERR_UNSUPPORTED, L->err, L->err_size,
                "%s: architecture '%s' is not supported (this runtime runs %s)", f->path, arch, known);
}

/* ---- loading ---- */

static ds_status load_tensors(loader *L) {
    ds_model *m = L->m;
    const ds_hparams *hp = &m->hp;
    const gguf_tensor *te = gguf_tensor_find(m->file, "token_embd.weight");
    if (!te)
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: tensor 'token_embd.weight' is missing", m->file->path);
    if (te->ne[1] < 1 || te->ne[1] > INT_MAX / 2)
        return fail(DS_ERR_FORMAT, L->err, L->err_size, "%s: tensor 'token_embd.weight' has a bad vocabulary size",
                    m->file->path);
    m->hp.n_vocab = (int)te->ne[1];
    TRY(bind(L, &m->tok_embd, "token_embd.weight", hp->n_embd, hp->n_vocab, 1, true));
    TRY(bind_vec(L, &m->output_norm, "output_norm.weight", hp->n_embd, true));
    TRY(bind(L, &m->output, "output.weight", hp->n_embd, hp->n_vocab, 1, false));
    if (!m->output.data) m->output = m->tok_embd; /* tied embeddings */
    TRY(bind_vec(L, &m->rope_freqs, "rope_freqs.weight", hp->dr / 2, false));
    if (!(m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers)))
        return fail(DS_ERR_NOMEM, L->err, L->err_size, "out of memory");
    for (int il = 0; il < hp->n_layer; il++) TRY(m->arch->bind_layer(L, &m->layers[il], il));
    return m->arch->bind_mtp(L);
}

static ds_status vocab_load(const gguf_file *f, ds_vocab **out, char *err, size_t err_size);
static void vocab_free(ds_vocab *v);
static int vocab_size(const ds_vocab *v);
static int vocab_special(const ds_vocab *v, bool eos);

void ds_model_free(ds_model *m) {
    if (!m) return;
    vocab_free(m->vocab);
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    gguf_close(m->file);
    free(m);
}

/* A file without tensors that holds a tokenizer (deepseek-convert --vocab-only) loads as a
   vocabulary: it tokenizes and decodes but cannot make a context. */
static ds_status load_vocab_only(ds_model *m, char *err, size_t err_size) {
    if (!m->vocab)
        return fail(DS_ERR_FORMAT, err, err_size, "%s: the file has neither tensors nor a tokenizer", m->file->path);
    m->hp.n_vocab = vocab_size(m->vocab);
    snprintf(m->desc, sizeof m->desc, "vocabulary only: %d tokens", m->hp.n_vocab);
    return DS_OK;
}

ds_model_params ds_model_default_params(void) {
    ds_model_params p = {1, 0};
    return p;
}

/* Pages locked now are never paged out: a model larger than RAM fails here rather than
   thrashing later. */
static ds_status lock_weights(const gguf_file *f, char *err, size_t err_size) {
    if (mlock(f->map, f->size) == 0) return DS_OK;
    return fail(DS_ERR_IO, err, err_size,
                "%s: cannot lock %zu bytes in memory (--mlock): %s; raise the limit with 'ulimit -l'", f->path, f->size,
                strerror(errno));
}

ds_status ds_model_load(const char *path, ds_model **out, char *err, size_t err_size) {
    return ds_model_load_params(path, NULL, out, err, err_size);
}

ds_status ds_model_load_params(const char *path, const ds_model_params *p, ds_model **out, char *err, size_t err_size) {
    ds_model_params d = ds_model_default_params();
    if (!p) p = &d;
    *out = NULL;
    if (err && err_size) err[0] = 0;
    ds_model *m = calloc(1, sizeof *m);
    if (!m) return fail(DS_ERR_NOMEM, err, err_size, "out of memory");
    loader L = {m, err, err_size};
    ds_status s = gguf_open(path, p->use_mmap != 0, &m->file, err, err_size);
    if (!s && p->use_mlock) s = lock_weights(m->file, err, err_size);
    if (!s) s = vocab_load(m->file, &m->vocab, err, err_size);
    bool vocab_only = !s && m->file->n_t == 0;
    if (!s && vocab_only) s = load_vocab_only(m, err, err_size);
    if (!s && !vocab_only) s = find_arch(&L);
    if (!s && !vocab_only) s = m->arch->load_hparams(&L);
    if (!s && !vocab_only) s = load_tensors(&L);
    if (!s && m->vocab && vocab_size(m->vocab) > m->hp.n_vocab)
        s = fail(DS_ERR_FORMAT, err, err_size, "%s: the tokenizer has %d tokens but the embedding only %d rows", path,
                 vocab_size(m->vocab), m->hp.n_vocab);
    if (s) {
        ds_model_free(m);
        return s;
    }
    m->bos = m->eos = -1;
    if (m->vocab) {
        m->bos = vocab_special(m->vocab, false);
        m->eos = vocab_special(m->vocab, true);
    } else { /* ids alone still say where generation stops */
        int64_t id = -1;
        if (!meta_int(m->file, "tokenizer.ggml.bos_token_id", false, 0, m->hp.n_vocab - 1, &id, NULL, 0))
            m->bos = (int)id;
        id = -1;
        if (!meta_int(m->file, "tokenizer.ggml.eos_token_id", false, 0, m->hp.n_vocab - 1, &id, NULL, 0))
            m->eos = (int)id;
    }
    if (!vocab_only) m->arch->describe(m);
    *out = m;
    return DS_OK;
}

int ds_model_n_vocab(const ds_model *m) { return m->hp.n_vocab; }
int ds_model_n_ctx_train(const ds_model *m) { return m->hp.n_ctx_train; }
int ds_model_n_layer(const ds_model *m) { return m->hp.n_layer; }
int ds_model_has_mtp(const ds_model *m) { return m->mtp.present; }

static size_t weight_bytes(const ds_weight *w) { return w->data ? w->row_size * (size_t)(w->n_rows * w->n_mat) : 0; }

/* A decode step reads every weight of attention, of the dense layers, the routers and the
   shared experts, n_expert_used of each MoE layer's n_expert routed experts, the head, and one
   embedding row; 1-D norms and biases are left out (they stay in cache). */
size_t ds_model_decode_bytes(const ds_model *m) {
    const ds_hparams *hp = &m->hp;
    size_t n = m->tok_embd.row_size + weight_bytes(&m->output);
    for (int il = 0; m->layers && il < hp->n_layer; il++) {
        const ds_layer *l = &m->layers[il];
        const ds_weight *all[] = {&l->q_a,     &l->q_b,   &l->q,       &l->kv_a,    &l->k_b,   &l->v_b,
                                  &l->kv_b,    &l->o,     &l->gate,    &l->up,      &l->down,  &l->gate_inp,
                                  &l->gate_sh, &l->up_sh, &l->down_sh, &l->idx_q_b, &l->idx_k, &l->idx_proj,
                                  &l->k,       &l->v,     &l->qkv};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) n += weight_bytes(all[i]);
        const ds_weight *exps[] = {&l->gate_exps, &l->up_exps, &l->down_exps};
        for (size_t i = 0; i < 3; i++)
            n += exps[i]->data ? exps[i]->row_size * (size_t)exps[i]->n_rows * (size_t)hp->n_expert_used : 0;
    }
    return n;
}
int ds_model_bos(const ds_model *m) { return m->bos; }
int ds_model_eos(const ds_model *m) { return m->eos; }
const char *ds_model_desc(const ds_model *m) { return m->desc; }

/* ========================================================================================== */
/* 4. Contexts: creation and evaluation (the public API over the forward pass)               */
/* ========================================================================================== */

static bool alloc_buffers(ds_context *ctx);
static void free_buffers(ds_context *ctx);
static ds_pool *pool_new(int n);
static void pool_free(ds_pool *p);

/* Threads held by this process's live contexts: a context made with n_threads = 0 takes the
   physical cores the others leave (at least one), so two default contexts do not oversubscribe
   the machine. */
static atomic_int threads_in_use;

static int default_threads(void) {
    int free_cores = ds_physical_cores() - atomic_load(&threads_in_use);
    return free_cores > 1 ? free_cores : 1;
}

ds_context_params ds_context_default_params(void) {
    ds_context_params p = {0, 0, 0, 0, DS_TYPE_F32};
    return p;
}

void ds_context_free(ds_context *ctx) {
    if (!ctx) return;
    pool_free(ctx->pool);
    atomic_fetch_sub(&threads_in_use, ctx->n_threads);
    free_buffers(ctx);
    free(ctx->row_pos_buf);
    free(ctx);
}

ds_status ds_context_new(ds_model *m, const ds_context_params *p, ds_context **out, char *err, size_t err_size) {
    ds_context_params d = ds_context_default_params();
    if (!p) p = &d;
    *out = NULL;
    if (!m->layers)
        return fail(DS_ERR_ARG, err, err_size, "%s holds only a vocabulary: it can tokenize, not run", m->file->path);
    if (p->n_ctx < 0 || p->n_threads < 0 || p->n_batch < 0 || p->n_threads > 1024)
        return fail(DS_ERR_ARG, err, err_size, "context: negative n_ctx, n_threads or n_batch, or over 1024 threads");
    ds_type kt = (ds_type)p->cache_type;
    if (!kv_type_ok(kt))
        return fail(DS_ERR_UNSUPPORTED, err, err_size,
                    "context: cache type %s: the latent cache is f32, f16, bf16 or q8_0",
                    ds_type_name(kt) ? ds_type_name(kt) : "unknown");
    if (m->hp.n_head_kv && kernel_traits(kt)->block_size > 1 && (m->hp.dk % 32 || m->hp.dv % 32))
        return fail(DS_ERR_UNSUPPORTED, err, err_size,
                    "context: cache type %s needs key and value heads of a multiple of 32 (these are %d and %d)",
                    ds_type_name(kt), m->hp.dk, m->hp.dv);
    ds_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return fail(DS_ERR_NOMEM, err, err_size, "out of memory");
    ctx->m = m;
    ctx->n_ctx = p->n_ctx ? p->n_ctx : (m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096);
    ctx->n_threads = p->n_threads ? p->n_threads : default_threads();
    ctx->n_batch = p->n_batch ? p->n_batch : 512;
    if (ctx->n_batch > ctx->n_ctx) ctx->n_batch = ctx->n_ctx;
    if (p->mtp && !m->mtp.present) {
        free(ctx);
        return fail(DS_ERR_ARG, err, err_size, "%s has no multi-token-prediction layer (blk.%d.nextn.*)", m->file->path,
                    m->hp.n_layer);
    }
    ctx->mtp = p->mtp != 0;
    ctx->kv_type = kt;
    if (!alloc_buffers(ctx) || !(ctx->pool = pool_new(ctx->n_threads))) {
        free_buffers(ctx);
        free(ctx);
        return fail(DS_ERR_NOMEM, err, err_size, "out of memory for a context of %d positions", p->n_ctx);
    }
    atomic_fetch_add(&threads_in_use, ctx->n_threads);
    rope_table(ctx);
#ifdef DS_HAVE_OPENBLAS
    openblas_set_num_threads(1); /* our threads call it, one panel each */
#endif
    *out = ctx;
    return DS_OK;
}

static ds_status ctx_fail(ds_context *ctx, ds_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
    va_end(ap);
    return s;
}

/* Makes *buf hold at least n floats. */
static int grow(float **buf, size_t *cap, size_t n) {
    if (n <= *cap) return 0;
    float *p = realloc(*buf, n * sizeof *p);
    if (!p) return -1;
    *buf = p;
    *cap = n;
    return 0;
}

static ds_status check_tokens(ds_context *ctx, const int32_t *tokens, int n_tokens) {
    const int V = ctx->m->hp.n_vocab;
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return ctx_fail(ctx, DS_ERR_ARG, "token %d at batch index %d is outside the vocabulary [0, %d)", tokens[i],
                            i, V);
    return DS_OK;
}

ds_status ds_eval(ds_context *ctx, const int32_t *tokens, int n_tokens, int all_logits) {
    const int V = ctx->m->hp.n_vocab;
    ctx->err[0] = 0;
    ctx->n_logits = 0;
    if (n_tokens < 1 || !tokens) return ctx_fail(ctx, DS_ERR_ARG, "empty batch");
    if (n_tokens > ctx->n_ctx - ctx->n_past)
        return ctx_fail(ctx, DS_ERR_CONTEXT_FULL, "%d tokens do not fit: %d of the context's %d positions are used",
                        n_tokens, ctx->n_past, ctx->n_ctx);
    TRY(check_tokens(ctx, tokens, n_tokens));
    if (grow(&ctx->logits, &ctx->logits_cap, (size_t)(all_logits ? n_tokens : 1) * (size_t)V) ||
        (ctx->mtp && grow(&ctx->hid, &ctx->hid_cap, (size_t)n_tokens * (size_t)ctx->m->hp.n_embd)))
        return ctx_fail(ctx, DS_ERR_NOMEM, "out of memory for the logits of %d tokens", n_tokens);
    ctx->hid_pos0 = ctx->n_past;
    ctx->n_hid = 0;
    in_batches(ctx, forward, tokens, n_tokens, all_logits, ctx->logits);
    ctx->n_logits = all_logits ? n_tokens : 1;
    return DS_OK;
}

/* Every context must be of ctxs[0]'s model, size and cache type, with room for one more token;
   reported on ctxs[0]. */
static ds_status check_seqs(ds_context *const *ctxs, int n) {
    ds_context *ctx = ctxs[0];
    if (n > ctx->n_batch)
        return ctx_fail(ctx, DS_ERR_ARG, "%d sequences in one batch: the first context's batch holds %d", n,
                        ctx->n_batch);
    for (int i = 0; i < n; i++) {
        const ds_context *c = ctxs[i];
        if (!c) return ctx_fail(ctx, DS_ERR_ARG, "sequence %d: no context", i);
        if (c->m != ctx->m || c->n_ctx != ctx->n_ctx || c->kv_type != ctx->kv_type)
            return ctx_fail(ctx, DS_ERR_ARG,
                            "sequence %d: its context differs from the first in model, size or cache type", i);
        if (c->mtp) return ctx_fail(ctx, DS_ERR_ARG, "sequence %d: MTP is on in its context (batches of sequences leave the MTP layer out)", i);
        if (c->n_past >= c->n_ctx)
            return ctx_fail(ctx, DS_ERR_CONTEXT_FULL, "sequence %d: its context's %d positions are used", i, c->n_ctx);
        for (int k = 0; k < i; k++)
            if (ctxs[k] == c) return ctx_fail(ctx, DS_ERR_ARG, "sequences %d and %d are the same context", k, i);
    }
    return DS_OK;
}

ds_status ds_eval_seqs(ds_context *const *ctxs, const int32_t *tokens, int n) {
    if (!ctxs || !ctxs[0]) return DS_ERR_ARG;
    ds_context *ctx = ctxs[0];
    const int V = ctx->m->hp.n_vocab;
    ctx->err[0] = 0;
    if (n < 1 || !tokens) return ctx_fail(ctx, DS_ERR_ARG, "empty batch");
    TRY(check_seqs(ctxs, n));
    TRY(check_tokens(ctx, tokens, n));
    for (int i = 0; i < n; i++)
        if (grow(&ctxs[i]->logits, &ctxs[i]->logits_cap, (size_t)(i ? 1 : n) * (size_t)V))
            return ctx_fail(ctx, DS_ERR_NOMEM, "out of memory for the logits of %d sequences", n);
    if (n > ctx->row_pos_cap) {
        int *p = realloc(ctx->row_pos, (size_t)n * sizeof *p);
        if (!p) return ctx_fail(ctx, DS_ERR_NOMEM, "out of memory for a batch of %d sequences", n);
        ctx->row_pos_cap = n;
        ctx->row_pos_buf = p;
    }
    for (int i = 0; i < n; i++) ctx->row_pos_buf[i] = ctxs[i]->n_past;
    ctx->row_seq = ctxs;
    ctx->row_pos = ctx->row_pos_buf;
    decode(ctx, tokens, 0, n, n, ctx->logits);
    ctx->row_seq = NULL;
    ctx->row_pos = NULL;
    for (int i = 0; i < n; i++) {
        if (i) memcpy(ctxs[i]->logits, ctx->logits + (size_t)i * V, (size_t)V * sizeof(float));
        ctxs[i]->n_logits = 1;
        ctxs[i]->n_past++;
        ctxs[i]->n_hid = 0;
        ctxs[i]->hid_pos0 = ctxs[i]->n_past;
    }
    return DS_OK;
}

ds_status ds_eval_mtp(ds_context *ctx, const int32_t *next, int n, int all_logits) {
    const int V = ctx->m->hp.n_vocab;
    ctx->err[0] = 0;
    ctx->n_mtp_logits = 0;
    if (!ctx->mtp)
        return ctx_fail(ctx, DS_ERR_ARG, "multi-token prediction is off in this context (ds_context_params.mtp)");
    if (n < 1 || !next || n > ctx->n_hid)
        return ctx_fail(ctx, DS_ERR_ARG, "%d next tokens given for the %d tokens of the last evaluation", n,
                        ctx->n_hid);
    if (ctx->mtp_past < ctx->hid_pos0)
        return ctx_fail(ctx, DS_ERR_ARG, "the MTP layer has not seen positions %d to %d: run it after every evaluation",
                        ctx->mtp_past, ctx->hid_pos0 - 1);
    TRY(check_tokens(ctx, next, n));
    if (grow(&ctx->mtp_logits, &ctx->mtp_logits_cap, (size_t)(all_logits ? n : 1) * (size_t)V))
        return ctx_fail(ctx, DS_ERR_NOMEM, "out of memory for the MTP logits of %d tokens", n);
    ctx->mtp_past = ctx->hid_pos0;
    in_batches(ctx, forward_mtp, next, n, all_logits, ctx->mtp_logits);
    ctx->n_mtp_logits = all_logits ? n : 1;
    return DS_OK;
}

const float *ds_mtp_logits(const ds_context *ctx, int i) {
    if (i < 0 || i >= ctx->n_mtp_logits) return NULL;
    return ctx->mtp_logits + (size_t)i * ctx->m->hp.n_vocab;
}

const float *ds_logits(const ds_context *ctx, int i) {
    if (i < 0 || i >= ctx->n_logits) return NULL;
    return ctx->logits + (size_t)i * ctx->m->hp.n_vocab;
}

int ds_context_n_past(const ds_context *ctx) { return ctx->n_past; }
int ds_context_n_ctx(const ds_context *ctx) { return ctx->n_ctx; }
int ds_context_n_threads(const ds_context *ctx) { return ctx->n_threads; }
size_t ds_context_cache_bytes(const ds_context *ctx) {
    return (size_t)(ctx->m->hp.n_layer + ctx->mtp) * (size_t)ctx->n_ctx * (ctx->kv_row_bytes + ctx->idx_row_bytes);
}
void ds_context_reset(ds_context *ctx) {
    ctx->n_past = ctx->mtp_past = ctx->n_hid = 0;
    ctx->n_logits = ctx->n_mtp_logits = 0;
}

ds_status ds_context_rewind(ds_context *ctx, int n_past) {
    if (n_past < 0 || n_past > ctx->n_past)
        return ctx_fail(ctx, DS_ERR_ARG, "rewind to %d: the context holds %d positions", n_past, ctx->n_past);
    ctx->n_past = n_past; /* later positions are simply overwritten */
    if (ctx->mtp_past > n_past) ctx->mtp_past = n_past;
    /* hidden states of tokens still in the sequence stay usable by ds_eval_mtp */
    int kept = n_past - ctx->hid_pos0;
    if (kept < ctx->n_hid) ctx->n_hid = kept > 0 ? kept : 0;
    ctx->n_logits = ctx->n_mtp_logits = 0;
    return DS_OK;
}
const char *ds_context_error(const ds_context *ctx) { return ctx->err; }

/* A context's cache as bytes (ds_context_state_get / _set): a header naming what the rows are,
   so that bytes from another model, cache type or layer count are refused, then each cache
   layer's first n rows (latent or K/V, then the indexer's keys). */
typedef struct {
    char magic[4]; /* "DSKV" */
    uint32_t version, kv_type, n_layers, n;
    uint64_t kv_row_bytes, idx_row_bytes, n_embd, n_vocab;
} state_header;

static state_header state_header_of(const ds_context *ctx, int n) {
    state_header h = {{'D', 'S', 'K', 'V'}, 1, (uint32_t)ctx->kv_type, (uint32_t)(ctx->m->hp.n_layer + ctx->mtp),
                      (uint32_t)n, ctx->kv_row_bytes, ctx->idx_row_bytes, (uint64_t)ctx->m->hp.n_embd,
                      (uint64_t)ctx->m->hp.n_vocab};
    return h;
}

size_t ds_context_state_size(const ds_context *ctx, int n) {
    if (n < 0 || n > ctx->n_ctx) return 0;
    return sizeof(state_header) +
           (size_t)(ctx->m->hp.n_layer + ctx->mtp) * (size_t)n * (ctx->kv_row_bytes + ctx->idx_row_bytes);
}

ds_status ds_context_state_get(ds_context *ctx, int n, void *buf, size_t cap) {
    if (n < 0 || n > ctx->n_past)
        return ctx_fail(ctx, DS_ERR_ARG, "state of %d positions asked: the context holds %d", n, ctx->n_past);
    if (cap < ds_context_state_size(ctx, n))
        return ctx_fail(ctx, DS_ERR_SMALL_BUFFER, "the state of %d positions takes %zu bytes, %zu given", n,
                        ds_context_state_size(ctx, n), cap);
    state_header h = state_header_of(ctx, n);
    uint8_t *p = memcpy(buf, &h, sizeof h);
    p += sizeof h;
    for (uint32_t il = 0; il < h.n_layers; il++) {
        memcpy(p, kv_at(ctx, (int)il, 0), (size_t)n * ctx->kv_row_bytes);
        p += (size_t)n * ctx->kv_row_bytes;
        if (ctx->idx_row_bytes) memcpy(p, idx_at(ctx, (int)il, 0), (size_t)n * ctx->idx_row_bytes);
        p += (size_t)n * ctx->idx_row_bytes;
    }
    return DS_OK;
}

ds_status ds_context_state_set(ds_context *ctx, const void *buf, size_t len, int *n_out) {
    state_header h, want;
    if (len < sizeof h) return ctx_fail(ctx, DS_ERR_FORMAT, "a cache state of %zu bytes is shorter than its header", len);
    memcpy(&h, buf, sizeof h);
    want = state_header_of(ctx, 0);
    if (memcmp(h.magic, want.magic, 4) || h.version != want.version)
        return ctx_fail(ctx, DS_ERR_FORMAT, "not a cache state (magic or version)");
    if (h.kv_type != want.kv_type || h.n_layers != want.n_layers || h.kv_row_bytes != want.kv_row_bytes ||
        h.idx_row_bytes != want.idx_row_bytes || h.n_embd != want.n_embd || h.n_vocab != want.n_vocab)
        return ctx_fail(ctx, DS_ERR_FORMAT,
                        "the cache state is of another model or cache type (%u layers of %llu-byte rows, type %u; "
                        "this context: %u of %llu, type %u)",
                        h.n_layers, (unsigned long long)h.kv_row_bytes, h.kv_type, want.n_layers,
                        (unsigned long long)want.kv_row_bytes, want.kv_type);
    if (h.n > (uint32_t)ctx->n_ctx)
        return ctx_fail(ctx, DS_ERR_CONTEXT_FULL, "the cache state holds %u positions, the context %d", h.n, ctx->n_ctx);
    if (len != ds_context_state_size(ctx, (int)h.n))
        return ctx_fail(ctx, DS_ERR_FORMAT, "a cache state of %u positions takes %zu bytes, not %zu", h.n,
                        ds_context_state_size(ctx, (int)h.n), len);
    const uint8_t *p = (const uint8_t *)buf + sizeof h;
    for (uint32_t il = 0; il < h.n_layers; il++) {
        memcpy(kv_at(ctx, (int)il, 0), p, (size_t)h.n * ctx->kv_row_bytes);
        p += (size_t)h.n * ctx->kv_row_bytes;
        if (ctx->idx_row_bytes) memcpy(idx_at(ctx, (int)il, 0), p, (size_t)h.n * ctx->idx_row_bytes);
        p += (size_t)h.n * ctx->idx_row_bytes;
    }
    ds_context_reset(ctx);
    ctx->n_past = (int)h.n;
    ctx->mtp_past = ctx->hid_pos0 = (int)h.n; /* no hidden states came with it: MTP starts after */
    if (n_out) *n_out = (int)h.n;
    return DS_OK;
}

/* ========================================================================================== */
/* 5. Matmul dispatch: the one entry point for weights, y[t][r] = row_r . x[t]               */
/* ========================================================================================== */

/* The kernels of each type: quant/'s formats with the best SIMD level's kernels laid over them
   by simd/, composed once. */
static ds_type_traits kernel_table[DS_TYPE_COUNT];
static ds_index_fn index_kernel; /* DeepSeek-V3.2's indexer scores */
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;
static void compose_kernel_table(void) {
    const ds_simd_kernels *k = ds_simd_best();
    ds_simd_compose(k, kernel_table);
    index_kernel = k->index_scores ? k->index_scores : ds_simd_scalar()->index_scores;
}
static const ds_type_traits *kernel_traits(ds_type t) {
    pthread_once(&kernels_once, compose_kernel_table);
    return (unsigned)t < DS_TYPE_COUNT && kernel_table[t].name ? &kernel_table[t] : NULL;
}
static ds_index_fn index_scores(void) {
    pthread_once(&kernels_once, compose_kernel_table);
    return index_kernel;
}

typedef struct {
    const ds_type_traits *tr;
    const float *x;
    int64_t ldx, x_stride, n;
    int T;
    uint8_t *out;
    size_t row_bytes;
} quant_job;

static void quant_task(void *arg, int64_t i0, int64_t i1, int tid) {
    const quant_job *j = arg;
    (void)tid;
    for (int64_t i = i0; i < i1; i++)
        j->tr->from_f32(j->x + (i / j->T) * j->x_stride + (i % j->T) * j->ldx, j->out + i * j->row_bytes, j->n);
}

/* Quantize n_mat x T rows of n elements (row t of matrix m at x + m * x_stride + t * ldx) into
   activation buffer `slot`. */
static qact quantize_act(ds_context *ctx, const ds_type_traits *tr, const float *x, int64_t ldx, int64_t x_stride,
                         int n_mat, int T, int64_t n, int slot) {
    quant_job j = {tr, x, ldx, x_stride, n, T, ctx->actq[slot], (size_t)(n / tr->block_size) * tr->type_size};
    int64_t rows = (int64_t)n_mat * T;
    if (rows * n < 16384) quant_task(&j, 0, rows, 0); /* waking the workers would cost more */
    else pool_run(ctx->pool, rows, quant_task, &j);
    return (qact){tr, j.out, j.row_bytes};
}

typedef struct {
    ds_context *ctx;
    const ds_weight *w;
    const uint8_t *base; /* first row of matrix 0 */
    int64_t rows;        /* rows per matrix */
    size_t w_stride;     /* bytes from one matrix to the next */
    const float *x;
    int64_t ldx, x_stride;
    float *y;
    int64_t ldy, y_stride;
    int T;
    qact xq; /* the input quantized, for a block-format weight */
} mm_job;

/* out[t] = row . xs[t] for t < T, four vectors per pass over the row. Two or three left
   over still take one pass (the spare lanes repeat the last vector); a single one is a plain
   dot, the decoding case, where extra lanes would only cost. */
static void row_dots(const ds_weight *w, const uint8_t *row, const float *const *xs, int T, float *out) {
    int t = 0;
    for (; t + 4 <= T; t += 4) w->tr->dot4_f32(row, xs + t, w->n_in, out + t);
    if (T - t == 1) {
        out[t] = w->tr->dot_f32(row, xs[t], w->n_in);
    } else if (T > t) {
        const float *pad[4];
        float o[4];
        for (int k = 0; k < 4; k++) pad[k] = xs[t + k < T ? t + k : T - 1];
        w->tr->dot4_f32(row, pad, w->n_in, o);
        for (int k = 0; t + k < T; k++) out[t + k] = o[k];
    }
}

/* The same for a block-format row against quantized activation rows. */
static void row_dots_q(const ds_weight *w, const uint8_t *row, const void *const *xs, int T, float *out) {
    int t = 0;
    if (w->tr->vec_dot4)
        for (; t + 4 <= T; t += 4) w->tr->vec_dot4(row, xs + t, w->n_in, out + t);
    for (; t < T; t++) out[t] = w->tr->vec_dot(row, xs[t], w->n_in);
}

/* Tokens a chunk of rows takes at a time: a long batch's activations (512 Q8_0 rows of 7168 are
   3.9 MB) would come from memory again for every weight row; 64 of them stay in the core's L2
   while the chunk's rows go by. A multiple of 4, so each token meets the same kernels. */
enum { MM_TOKEN_BLOCK = 64 };

static void mm_task(void *arg, int64_t i0, int64_t i1, int tid) {
    const mm_job *j = arg;
    ds_context *ctx = j->ctx;
    thread_scratch ts = scratch_of(ctx, tid);
    const float **xs = ts.xs;
    const void **qs = ts.qs;
    float *out = ts.f;
    for (int64_t i = i0; i < i1;) {
        const int64_t mat = i / j->rows, end = (mat + 1) * j->rows < i1 ? (mat + 1) * j->rows : i1;
        for (int t = 0; t < j->T; t++) {
            xs[t] = j->x + mat * j->x_stride + t * j->ldx;
            if (j->xq.tr) qs[t] = j->xq.data + (size_t)(mat * j->T + t) * j->xq.row_bytes;
        }
        for (int t0 = 0; t0 < j->T; t0 += MM_TOKEN_BLOCK) {
            const int nt = j->T - t0 < MM_TOKEN_BLOCK ? j->T - t0 : MM_TOKEN_BLOCK;
            for (int64_t k = i; k < end; k++) {
                const int64_t r = k % j->rows;
                const uint8_t *row = j->base + mat * j->w_stride + r * j->w->row_size;
                if (j->xq.tr) row_dots_q(j->w, row, qs + t0, nt, out);
                else row_dots(j->w, row, xs + t0, nt, out);
                float *y = j->y + mat * j->y_stride + r + (int64_t)t0 * j->ldy;
                for (int t = 0; t < nt; t++) y[t * j->ldy] = out[t];
            }
        }
        i = end;
    }
}

#ifdef DS_HAVE_OPENBLAS
/* Prompt processing through sgemm. The rows are cut into panels of a fixed height whatever the
   thread count, and each panel is one single-threaded sgemm, so the sums (and results) do not
   depend on how many threads run. Narrow weights are widened one panel at a time. */
enum { BLAS_MIN_TOKENS = 32, BLAS_PANEL = 64 };

static void blas_task(void *arg, int64_t i0, int64_t i1, int tid) {
    const mm_job *j = arg;
    const ds_weight *w = j->w;
    float *wide = j->ctx->blas_scratch + (size_t)tid * BLAS_PANEL * (size_t)w->n_in;
    for (int64_t p = i0; p < i1; p++) {
        int64_t r0 = p * BLAS_PANEL, n = w->n_rows - r0 < BLAS_PANEL ? w->n_rows - r0 : BLAS_PANEL;
        const float *a = (const float *)(w->data + r0 * w->row_size);
        if (w->type != DS_TYPE_F32 || (uintptr_t)a % sizeof(float)) {
            for (int64_t r = 0; r < n; r++)
                w->tr->to_f32(w->data + (r0 + r) * w->row_size, wide + r * w->n_in, w->n_in);
            a = wide;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->T, (int)n, (int)w->n_in, 1.0f, j->x, (int)j->ldx, a,
                    (int)w->n_in, 0.0f, j->y + r0, (int)j->ldy);
    }
}
#endif

/* y[t][r] = W x[t] for t < T; x rows ldx apart, y rows ldy apart. pre: x already quantized
   for W's activation format (or NULL). */
static void matmul_pre(ds_context *ctx, const ds_weight *w, const float *x, int64_t ldx, int T, float *y, int64_t ldy,
                       const qact *pre) {
    mm_job j = {ctx, w, w->data, w->n_rows, 0, x, ldx, 0, y, ldy, 0, T, {0}};
    if (w->act) {
        j.xq = pre && pre->tr == w->act ? *pre : quantize_act(ctx, w->act, x, ldx, 0, 1, T, w->n_in, 0);
        pool_run(ctx->pool, w->n_rows, mm_task, &j);
        return;
    }
#ifdef DS_HAVE_OPENBLAS
    if (T >= BLAS_MIN_TOKENS && ctx->blas_scratch) {
        pool_run(ctx->pool, (w->n_rows + BLAS_PANEL - 1) / BLAS_PANEL, blas_task, &j);
        return;
    }
#endif
    pool_run(ctx->pool, w->n_rows, mm_task, &j);
}

static void matmul(ds_context *ctx, const ds_weight *w, const float *x, int64_t ldx, int T, float *y, int64_t ldy) {
    matmul_pre(ctx, w, x, ldx, T, y, ldy, NULL);
}

/* The same for each head h of a stack of per-head matrices: rows of matrix h start at
   base + h * w_stride, x and y of head h are offset by h * x_stride and h * y_stride. */
static void matmul_heads(ds_context *ctx, const ds_weight *w, const uint8_t *base, int64_t rows, size_t w_stride,
                         int n_heads, const float *x, int64_t ldx, int64_t x_stride, float *y, int64_t ldy,
                         int64_t y_stride, int T) {
    mm_job j = {ctx, w, base, rows, w_stride, x, ldx, x_stride, y, ldy, y_stride, T, {0}};
    if (w->act) j.xq = quantize_act(ctx, w->act, x, ldx, x_stride, n_heads, T, w->n_in, 0);
    pool_run(ctx->pool, rows * n_heads, mm_task, &j);
}

const char *ds_simd_level(void) { return ds_simd_best()->name; }

/* ========================================================================================== */
/* 6. The thread pool                                                                          */
/* ========================================================================================== */

/* Persistent workers. A job's items are cut into a few chunks per thread, claimed from one
   atomic ticket, so a thread the OS has descheduled (a busy neighbour, a second context)
   delays only the chunk it holds: the others take the rest. Every item's arithmetic is the
   same whoever runs it, so results do not depend on the thread count or on who took what.
   A forward pass runs hundreds of short jobs per token: waiting threads spin for POOL_SPIN_NS
   (a job usually follows within microseconds), then sleep on the condition variable, so an
   idle or oversubscribed pool never burns a core that another thread could use. */

enum { POOL_CHUNKS_PER_THREAD = 4, POOL_SPIN_NS = 10000, POOL_STRAGGLER_NS = 200000, POOL_SOLO_NS = 50000000 };

/* The ticket: the job's chunk count (24 bits) and the next chunk to claim (24), so one
   fetch-add claims a chunk and says whether there was one left. A thread late from the last
   job finds its ticket spent; it cannot see a new job's before the fields are written. */
#define TICKET_CHUNKS(t) ((int64_t)(((t) >> 24) & 0xffffff))
#define TICKET_NEXT(t) ((int64_t)((t)&0xffffff))

struct ds_pool {
    pthread_t *threads;
    int n;                       /* threads including the caller */
    atomic_uint gen;             /* bumped once per job: what workers wait on */
    atomic_uint_fast64_t ticket; /* see TICKET_* */
    atomic_int_fast64_t done;    /* chunks of the current job finished */
    atomic_uint finished;        /* the current job's last chunk is done: what the caller waits on */
    atomic_int sleepers;         /* threads asleep (or about to sleep) on wake */
    atomic_bool quit;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    /* the current job: written before the ticket is published, read by whoever claims a chunk */
    task_fn fn;
    void *arg;
    int64_t n_items;
    int64_t solo_until; /* after a straggler the caller runs jobs alone until then (pool_run) */
};

typedef struct {
    ds_pool *pool;
    int tid;
} pool_worker;

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait until *v != old (or quit): spin POOL_SPIN_NS, then sleep. Wakers bump *v, then call
   pool_wake; the sleeper count is raised before *v is checked under the mutex, so no wake-up
   is lost. */
static void pool_await(ds_pool *p, atomic_uint *v, unsigned old) {
    int64_t t0 = 0;
    for (int spins = 0; atomic_load(v) == old && !atomic_load(&p->quit); spins++) {
        cpu_relax();
        if (spins % 64) continue;
        if (!t0) t0 = now_ns();
        else if (now_ns() - t0 > POOL_SPIN_NS) break;
    }
    if (atomic_load(v) != old || atomic_load(&p->quit)) return;
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while (atomic_load(v) == old && !atomic_load(&p->quit)) pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
}

static void pool_wake(ds_pool *p) {
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Claim and run chunks of the published job until none is left; the thread that finishes the
   last chunk tells the caller. */
static int pool_work(ds_pool *p, int tid) {
    for (int taken = 0;; taken++) {
        uint64_t t = atomic_fetch_add(&p->ticket, 1);
        int64_t c = TICKET_NEXT(t), nc = TICKET_CHUNKS(t);
        if (c >= nc) return taken;
        /* the job cannot end, nor its fields change, before this chunk is done */
        int64_t i0 = p->n_items * c / nc, i1 = p->n_items * (c + 1) / nc;
        if (i0 < i1) p->fn(p->arg, i0, i1, tid);
        if (atomic_fetch_add(&p->done, 1) + 1 == nc) {
            atomic_store(&p->finished, 1);
            pool_wake(p);
        }
    }
}

static void *pool_main(void *arg) {
    pool_worker *w = arg;
    ds_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        pool_await(p, &p->gen, seen);
        if (atomic_load(&p->quit)) break;
        seen = atomic_load(&p->gen);
        pool_work(p, w->tid);
    }
    free(w);
    return NULL;
}

/* Run fn over [0, n_items) on every thread; returns when all are done. */
static void pool_run(ds_pool *p, int64_t n_items, task_fn fn, void *arg) {
    if (n_items <= 0) return;
    if (p->n == 1 || n_items == 1 || (p->solo_until && now_ns() < p->solo_until)) {
        fn(arg, 0, n_items, 0);
        return;
    }
    int64_t chunks = (int64_t)p->n * POOL_CHUNKS_PER_THREAD;
    if (chunks > n_items) chunks = n_items;
    p->fn = fn;
    p->arg = arg;
    p->n_items = n_items;
    atomic_store(&p->done, 0);
    atomic_store(&p->finished, 0);
    atomic_store(&p->ticket, (uint64_t)chunks << 24);
    atomic_fetch_add(&p->gen, 1);
    pool_wake(p);
    int64_t t0 = now_ns();
    int mine = pool_work(p, 0);
    int64_t t1 = now_ns();
    pool_await(p, &p->finished, 0);
    /* A straggler: the caller waited for another thread's chunk far longer than its own chunks
       took, so that thread was descheduled (a busy core). Going on alone for a while beats
       waiting for it at every job; then the pool tries all its threads again. */
    int64_t t2 = now_ns(), waited = t2 - t1, per_chunk = (t1 - t0) / (mine > 0 ? mine : 1);
    if (waited > POOL_STRAGGLER_NS && waited > 4 * per_chunk) p->solo_until = t2 + POOL_SOLO_NS;
}

static void pool_free(ds_pool *p) {
    if (!p) return;
    if (p->threads) {
        atomic_store(&p->quit, true);
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->n; i++)
            if (p->threads[i]) pthread_join(p->threads[i], NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->wake);
    }
    free(p->threads);
    free(p);
}

static ds_pool *pool_new(int n) {
    ds_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n;
    atomic_init(&p->gen, 0);
    atomic_init(&p->ticket, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->finished, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->quit, false);
    if (!(p->threads = calloc((size_t)n, sizeof *p->threads))) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    for (int i = 1; i < n; i++) {
        pool_worker *w = malloc(sizeof *w);
        if (!w) {
            p->n = i;
            pool_free(p);
            return NULL;
        }
        w->pool = p;
        w->tid = i;
        if (pthread_create(&p->threads[i], NULL, pool_main, w)) {
            free(w);
            p->n = i;
            pool_free(p);
            return NULL;
        }
    }
    return p;
}

int ds_physical_cores(void) {
    /* count distinct (package, core) pairs; SMT siblings share one */
    int n_cpu = (int)sysconf(_SC_NPROCESSORS_ONLN), cores = 0;
    if (n_cpu < 1) return 1;
    char(*seen)[64] = calloc((size_t)n_cpu, sizeof *seen);
    for (int i = 0; seen && i < n_cpu; i++) {
        char path[128], sib[64] = {0};
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", i);
        FILE *fp = fopen(path, "r");
        if (!fp) continue;
        if (!fgets(sib, sizeof sib, fp)) sib[0] = 0;
        fclose(fp);
        int dup = 0;
        for (int j = 0; j < cores && !dup; j++) dup = !strcmp(seen[j], sib);
        if (!dup && sib[0]) strcpy(seen[cores++], sib);
    }
    free(seen);
    return cores > 0 ? cores : n_cpu;
}

/* ========================================================================================== */
/* 7. The KV cache and the scratch memory                                                      */
/* ========================================================================================== */

/* One row per token per layer: MLA caches the normalised latent c_KV (kv_lora_rank floats),
   then the rotated shared k_pe (rope dims); grouped-query attention the rotated k of its
   n_head_kv heads, then their v. */
static size_t kv_row(const ds_hparams *hp) { return hp->kv_row; }

static uint8_t *kv_at(ds_context *ctx, int il, int pos) {
    return ctx->kv + ((size_t)il * (size_t)ctx->n_ctx + (size_t)pos) * ctx->kv_row_bytes;
}

/* The cache's row types (ds_context_params.cache_type): float32 as computed, or rounded to
   F16 / BF16, or quantized to Q8_0 blocks (ggml's reference rounding). */
static bool kv_type_ok(ds_type t) {
    return t == DS_TYPE_F32 || t == DS_TYPE_F16 || t == DS_TYPE_BF16 || t == DS_TYPE_Q8_0;
}

/* Rows a block format does not divide (the tiny models' 64 + 16) are stored zero-padded to
   whole blocks: the padding's products are zeros, and only the first kv_row floats are read. */
static size_t kv_row_stored(const ds_hparams *hp, ds_type t) {
    const size_t b = (size_t)kernel_traits(t)->block_size;
    return (kv_row(hp) + b - 1) / b * b;
}

static void kv_store(ds_context *ctx, int il, int pos, const float *row) {
    const size_t n = kv_row(&ctx->m->hp);
    uint8_t *dst = kv_at(ctx, il, pos);
    uint16_t *h = (uint16_t *)dst;
    switch (ctx->kv_type) {
    case DS_TYPE_F16:
        for (size_t i = 0; i < n; i++) h[i] = ds_fp32_to_fp16(row[i]);
        break;
    case DS_TYPE_BF16:
        for (size_t i = 0; i < n; i++) h[i] = ds_fp32_to_bf16(row[i]);
        break;
    case DS_TYPE_Q8_0: {
        const size_t stored = kv_row_stored(&ctx->m->hp, DS_TYPE_Q8_0);
        float *padded = scratch_of(ctx, 0).f; /* kv_store runs on the calling thread */
        memcpy(padded, row, n * sizeof *row);
        memset(padded + n, 0, (stored - n) * sizeof *padded);
        ctx->kv_tr->from_f32(padded, dst, (int64_t)stored);
        break;
    }
    default: memcpy(dst, row, n * sizeof *row);
    }
}

/* A cache row as floats: in place for F32, else widened into wide. */
static const float *kv_floats(const ds_context *ctx, const uint8_t *c, float *wide) {
    if (ctx->kv_type == DS_TYPE_F32) return (const float *)c;
    ctx->kv_tr->to_f32(c, wide, (int64_t)kv_row_stored(&ctx->m->hp, ctx->kv_type));
    return wide;
}

/* q . cache row: the F16 and BF16 rows through their own dot kernels, Q8_0 widened first. */
static float kv_dot(const ds_context *ctx, const float *q, const uint8_t *c, float *wide) {
    const int64_t n = (int64_t)kv_row(&ctx->m->hp);
    if (ctx->kv_type == DS_TYPE_F32) return ctx->kv_f32->dot_f32(q, (const float *)c, n);
    if (ctx->kv_tr->dot_f32) return ctx->kv_tr->dot_f32(c, q, n);
    return ctx->kv_f32->dot_f32(q, kv_floats(ctx, c, wide), n);
}

static thread_scratch scratch_of(const ds_context *ctx, int tid) {
    thread_scratch s = {ctx->scratch + (size_t)tid * ctx->scratch_len, ctx->xptr + (size_t)tid * (size_t)ctx->n_batch,
                        ctx->qptr + (size_t)tid * 2 * (size_t)ctx->n_batch};
    return s;
}

static int max_i(int a, int b) { return a > b ? a : b; }

/* Widest row any matmul reads (and the router's 4 x n_expert): bounds a widened row in the
   per-thread scratch and the BLAS panels. */
static int widest_row(const ds_hparams *hp) {
    const int widths[] = {
        hp->n_embd * (hp->n_nextn ? 2 : 1),           hp->q_lora_rank,     hp->kv_lora_rank + hp->dr, hp->dn, hp->n_ff,
        hp->n_ff_exp * max_i(hp->n_expert_shared, 1), hp->n_head * hp->dv, 4 * hp->n_expert};
    int w = 1;
    for (size_t i = 0; i < sizeof widths / sizeof *widths; i++) w = max_i(w, widths[i]);
    return w;
}

static float *alloc_f(size_t n, bool *ok) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) *ok = false;
    return p;
}

static int32_t *alloc_i(size_t n, bool *ok) {
    int32_t *p = calloc(n ? n : 1, sizeof(int32_t));
    if (!p) *ok = false;
    return p;
}

/* The latent cache for every layer (and the MTP layer's), the rotary table, one batch's
   activations and each thread's scratch. */
static bool alloc_buffers(ds_context *ctx) {
    const ds_hparams *hp = &ctx->m->hp;
    const size_t B = (size_t)ctx->n_batch, D = (size_t)hp->n_embd, H = (size_t)hp->n_head, R = (size_t)hp->kv_lora_rank;
    const size_t row = kv_row(hp), K = (size_t)hp->n_expert_used, E = (size_t)hp->n_expert;
    const size_t F = (size_t)max_i(max_i(hp->n_ff, hp->n_ff_exp * hp->n_expert_shared), hp->n_embd);
    bool ok = true;
    ctx->kv_row_bytes = ds_type_row_size(ctx->kv_type, (int64_t)kv_row_stored(hp, ctx->kv_type));
    ctx->kv_tr = kernel_traits(ctx->kv_type);
    ctx->kv_f32 = kernel_traits(DS_TYPE_F32);
    ctx->kv = calloc((size_t)(hp->n_layer + ctx->mtp) * (size_t)ctx->n_ctx, ctx->kv_row_bytes);
    if (!ctx->kv) ok = false;
    if (ctx->mtp) ctx->mtp_in = alloc_f(B * 2 * D, &ok);
    ctx->rope = alloc_f((size_t)ctx->n_ctx * (size_t)hp->dr, &ok);
    ctx->x = alloc_f(B * D, &ok);
    ctx->xn = alloc_f(B * D, &ok);
    ctx->branch = alloc_f(B * D, &ok);
    ctx->shared_out = alloc_f(B * D, &ok);
    ctx->routed = alloc_f(D, &ok);
    if (ctx->mtp) ctx->mtp_emb = alloc_f(B * D, &ok);
    if (hp->kv_lora_rank) { /* MLA */
        ctx->q_lat = alloc_f(B * (size_t)hp->q_lora_rank, &ok);
        ctx->q_heads = alloc_f(B * H * (size_t)(hp->dn + hp->dr), &ok);
        ctx->kv_lat = alloc_f(B * row, &ok);
        ctx->q_abs = alloc_f(B * H * row, &ok);
        ctx->o_lat = alloc_f(B * H * R, &ok);
    } else {
        ctx->qkv = alloc_f(B * (H * (size_t)hp->dk + row), &ok);
    }
    ctx->o_heads = alloc_f(B * H * (size_t)hp->dv, &ok);
    ctx->ff_gate = alloc_f(B * F, &ok);
    ctx->ff_up = alloc_f(B * F, &ok);
    ctx->router_logits = alloc_f(B * E, &ok);
    ctx->route_w = alloc_f(B * K, &ok);
    ctx->exp_out = alloc_f(B * K * D, &ok);
    ctx->exp_act = alloc_f(B * K * (size_t)hp->n_ff_exp, &ok);
    ctx->route_idx = alloc_i(B * K, &ok);
    ctx->exp_count = alloc_i(E, &ok);
    ctx->exp_start = alloc_i(E, &ok);
    ctx->exp_active = alloc_i(E, &ok);
    ctx->exp_pairs = alloc_i(B * K, &ok);
    if (hp->idx_topk) {
        const size_t Hi = (size_t)hp->idx_n_head, Di = (size_t)hp->idx_dim;
        ctx->idx_row_bytes = idx_row_bytes((int)Di);
        ctx->idx_cache = calloc((size_t)(hp->n_layer + ctx->mtp) * (size_t)ctx->n_ctx, ctx->idx_row_bytes);
        if (!ctx->idx_cache) ok = false;
        ctx->idx_rows = (1 << 22) / ctx->n_ctx; /* 16 MiB of scores at most */
        ctx->idx_rows = ctx->idx_rows < 1 ? 1 : ctx->idx_rows > ctx->n_batch ? ctx->n_batch : ctx->idx_rows;
        ctx->idx_q = alloc_f(B * Hi * Di, &ok);
        if (!(ctx->idx_qd = calloc(B * Hi * Di, sizeof *ctx->idx_qd))) ok = false;
        ctx->idx_w = alloc_f(B * Hi, &ok);
        ctx->idx_k = alloc_f(B * Di, &ok);
        ctx->idx_score = alloc_f((size_t)ctx->idx_rows * (size_t)ctx->n_ctx, &ok);
        ctx->sel = alloc_i(B * (size_t)hp->idx_topk, &ok);
        ctx->n_sel = alloc_i(B, &ok);
    }
    /* attention's scores and a widened cache row; a widened weight row; dot products */
    const size_t groups = hp->n_head_kv ? H / (size_t)hp->n_head_kv : 1; /* query heads scored together */
    ctx->scratch_len = (size_t)max_i(widest_row(hp), 2 * ctx->n_batch);
    if (ctx->scratch_len < groups * (size_t)ctx->n_ctx + row + 32) ctx->scratch_len = groups * (size_t)ctx->n_ctx + row + 32;
    ctx->scratch = alloc_f(ctx->scratch_len * (size_t)ctx->n_threads, &ok);
    ctx->xptr = calloc((size_t)ctx->n_batch * (size_t)ctx->n_threads, sizeof *ctx->xptr);
    ctx->qptr = calloc(2 * (size_t)ctx->n_batch * (size_t)ctx->n_threads, sizeof *ctx->qptr);
    if (!ctx->xptr || !ctx->qptr) ok = false;
    if (ctx->m
            ->quantized) { /* the most elements one quantized input holds: a batch of rows, of heads, of expert slots */
        size_t heads = H * (size_t)max_i(max_i(hp->dn, hp->kv_lora_rank), hp->dv);
        size_t elems = B * (size_t)max_i(max_i(widest_row(hp), (int)heads), (int)(K * (size_t)hp->n_ff_exp));
        ctx->actq_cap = elems / 8 * 10 + 4096; /* Q8_K, the largest, takes 292 bytes per 256 */
        for (int i = 0; i < 2; i++)
            if (!(ctx->actq[i] = malloc(ctx->actq_cap))) ok = false;
    }
#ifdef DS_HAVE_OPENBLAS
    if (ctx->n_batch >= BLAS_MIN_TOKENS)
        ctx->blas_scratch = alloc_f((size_t)BLAS_PANEL * (size_t)widest_row(hp) * (size_t)ctx->n_threads, &ok);
#endif
    return ok;
}

static void free_buffers(ds_context *ctx) {
    free(ctx->kv);
    free(ctx->idx_cache);
    free(ctx->idx_qd);
    float *f[] = {ctx->rope,          ctx->x,       ctx->xn,           ctx->branch,  ctx->q_lat,      ctx->q_heads,
                  ctx->kv_lat,        ctx->q_abs,   ctx->o_lat,        ctx->o_heads, ctx->ff_gate,    ctx->ff_up,
                  ctx->router_logits, ctx->route_w, ctx->exp_act,      ctx->exp_out, ctx->shared_out, ctx->routed,
                  ctx->mtp_emb,       ctx->scratch, ctx->blas_scratch, ctx->logits,  ctx->hid,        ctx->mtp_in,
                  ctx->mtp_logits,    ctx->idx_q,   ctx->idx_w,        ctx->idx_k,   ctx->idx_score,
                  ctx->qkv};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) free(f[i]);
    int32_t *n[] = {ctx->route_idx, ctx->exp_count, ctx->exp_start, ctx->exp_active,
                    ctx->exp_pairs, ctx->sel,       ctx->n_sel};
    for (size_t i = 0; i < sizeof n / sizeof *n; i++) free(n[i]);
    free(ctx->xptr);
    free(ctx->qptr);
    free(ctx->actq[0]);
    free(ctx->actq[1]);
}

/* ========================================================================================== */
/* 8. The sampler                                                                             */
/* ========================================================================================== */

/* token sampling: repetition penalty, greedy, top-k, top-p, min-p, temperature.

   The chain is llama.cpp's: penalty, then top-k, top-p and min-p on the softmax of the penalised
   logits (top-p's mass is relative to what top-k kept), then temperature, softmax over the
   survivors and one draw. The vocabulary is never fully sorted: top-k keeps a heap of size k;
   top-p buckets the probability mass by distance to the maximum (one pass), keeps the buckets
   up to the one where the cut falls, and finds the cut there with a quickselect steered by mass
   rather than rank (expected linear). */

enum { SMP_BUCKETS = 1024 };

typedef struct {
    double w; /* a weight, set by the step that needs it */
    float logit;
    int32_t id;
} smp_cand;

struct ds_sampler {
    ds_sampler_params p;
    int n_vocab;
    uint64_t rng[4]; /* xoshiro256**: the same stream on every platform */
    int32_t *hist;   /* ring of the last p.repeat_last_n accepted tokens */
    int hist_len, hist_pos;
    uint8_t *mark;  /* n_vocab flags, all zero between calls: penalise each token once */
    smp_cand *cand; /* n_vocab: the usable logits of the current call */
    double *bucket; /* SMP_BUCKETS: probability mass by distance to the maximum (top-p) */
};

ds_sampler_params ds_sampler_default_params(void) {
    return (ds_sampler_params){
        .temp = 0.6f,
        .top_k = 0,
        .top_p = 0.95f,
        .min_p = 0.0f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .seed = 0,
    };
}

static uint64_t smp_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t smp_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t smp_next(uint64_t s[4]) {
    uint64_t r = smp_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = smp_rotl(s[3], 45);
    return r;
}

/* [0, 1) with 53 random bits: every value is exact in a double. */
static double smp_uniform(uint64_t s[4]) { return (double)(smp_next(s) >> 11) * 0x1.0p-53; }

/* Written so that NaN fails every test. Infinite penalties are refused: 0 * inf is NaN. */
static bool smp_params_ok(const ds_sampler_params *p) {
    return p->temp >= 0 && p->top_k >= 0 && p->top_p > 0 && p->top_p <= 1 && p->min_p >= 0 && p->min_p <= 1 &&
           p->repeat_penalty > 0 && p->repeat_penalty <= FLT_MAX && p->repeat_last_n >= 0;
}

ds_status ds_sampler_new(const ds_sampler_params *p, int n_vocab, ds_sampler **out, char *err, size_t err_size) {
    ds_sampler_params d = ds_sampler_default_params();
    if (!p) p = &d;
    *out = NULL;
    if (!smp_params_ok(p) || n_vocab <= 0)
        return fail(DS_ERR_ARG, err, err_size,
                    "sampler: bad parameters (temp %g, top_k %d, top_p %g, min_p %g, repeat_penalty %g, "
                    "repeat_last_n %d, n_vocab %d)",
                    (double)p->temp, p->top_k, (double)p->top_p, (double)p->min_p, (double)p->repeat_penalty,
                    p->repeat_last_n, n_vocab);
    ds_sampler *s = calloc(1, sizeof *s);
    if (!s) return fail(DS_ERR_NOMEM, err, err_size, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = smp_splitmix64(&x);
    /* +1: malloc(0) may return NULL, which would read as out of memory. */
    s->hist = malloc(((size_t)p->repeat_last_n + 1) * sizeof *s->hist);
    s->mark = calloc((size_t)n_vocab, 1);
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->bucket = malloc(SMP_BUCKETS * sizeof *s->bucket);
    if (!s->hist || !s->mark || !s->cand || !s->bucket) {
        ds_sampler_free(s);
        return fail(DS_ERR_NOMEM, err, err_size, "sampler: out of memory for %d tokens", n_vocab);
    }
    *out = s;
    return DS_OK;
}

void ds_sampler_free(ds_sampler *s) {
    if (!s) return;
    free(s->hist);
    free(s->mark);
    free(s->cand);
    free(s->bucket);
    free(s);
}

/* Out-of-range tokens take their place in the window but are never penalised. */
void ds_sampler_accept(ds_sampler *s, int32_t token) {
    if (!s || s->p.repeat_last_n == 0) return;
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->hist_len < s->p.repeat_last_n) s->hist_len++;
}

void ds_sampler_reset(ds_sampler *s) {
    if (!s) return;
    s->hist_len = s->hist_pos = 0;
}

/* llama.cpp's rule: dividing a negative logit would make the token more likely. */
static float smp_penalize(float x, float penalty) { return x > 0 ? x / penalty : x * penalty; }

static void smp_mark_history(ds_sampler *s, uint8_t v) {
    for (int i = 0; i < s->hist_len; i++) {
        int32_t t = s->hist[i];
        if (t >= 0 && t < s->n_vocab) s->mark[t] = v;
    }
}

static bool smp_penalty_on(const ds_sampler *s) { return s->p.repeat_penalty != 1.0f && s->hist_len > 0; }

/* The penalised logit of token i, with NaN read as -inf and +inf clamped to FLT_MAX so that
   differences to the maximum stay finite. */
static float smp_logit(const ds_sampler *s, const float *logits, int i, bool pen) {
    float x = logits[i];
    if (pen && s->mark[i]) x = smp_penalize(x, s->p.repeat_penalty);
    if (x != x) return -INFINITY;
    return x > FLT_MAX ? FLT_MAX : x;
}

/* Argmax, lowest id on ties; 0 when every logit is NaN or -inf. */
static int32_t smp_argmax(ds_sampler *s, const float *logits) {
    bool pen = smp_penalty_on(s);
    if (pen) smp_mark_history(s, 1);
    int32_t best = 0;
    float mx = -INFINITY;
    for (int i = 0; i < s->n_vocab; i++) {
        float x = smp_logit(s, logits, i, pen);
        if (x > mx) {
            mx = x;
            best = i;
        }
    }
    if (pen) smp_mark_history(s, 0);
    return best;
}

/* Fills s->cand with the tokens that can be chosen (not -inf), in id order; returns the count
   and sets *mx to their largest logit. */
static int smp_candidates(ds_sampler *s, const float *logits, float *mx) {
    bool pen = smp_penalty_on(s);
    if (pen) smp_mark_history(s, 1);
    smp_cand *a = s->cand;
    int n = 0;
    float m = -INFINITY;
    for (int i = 0; i < s->n_vocab; i++) {
        float x = smp_logit(s, logits, i, pen);
        if (x == -INFINITY) continue;
        a[n++] = (smp_cand){0, x, i};
        m = x > m ? x : m;
    }
    if (pen) smp_mark_history(s, 0);
    *mx = m;
    return n;
}

/* A strict total order (ids are distinct), so every selection below is deterministic. */
static bool smp_better(smp_cand a, smp_cand b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

static void smp_swap(smp_cand *a, smp_cand *b) {
    smp_cand t = *a;
    *a = *b;
    *b = t;
}

/* Sift down in a heap whose root is its worst element. */
static void smp_sift(smp_cand *h, int n, int i) {
    smp_cand x = h[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && smp_better(h[c], h[c + 1])) c++;
        if (smp_better(h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* Permutes a[0..n) so that a[0..m) holds its m best, best first, in O(n log m) and in place:
   a heap of the m best so far, whose root is the one to evict, then a heapsort of it. */
static void smp_select_best(smp_cand *a, int n, int m) {
    for (int i = m / 2 - 1; i >= 0; i--) smp_sift(a, m, i);
    for (int i = m; i < n; i++) {
        if (smp_better(a[i], a[0])) {
            smp_swap(&a[0], &a[i]);
            smp_sift(a, m, 0);
        }
    }
    for (int end = m - 1; end > 0; end--) {
        smp_swap(&a[0], &a[end]);
        smp_sift(a, end, 0);
    }
}

/* Four running sums: with one, each addition would wait for the last (spilled across exp). */
static double smp_sum(const smp_cand *a, int n) {
    double z[4] = {0, 0, 0, 0};
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int j = 0; j < 4; j++) z[j] += a[i + j].w;
    }
    for (; i < n; i++) z[0] += a[i].w;
    return (z[0] + z[1]) + (z[2] + z[3]);
}

/* Softmax weights at temperature t, relative to the maximum (which weighs 1: no overflow);
   returns their sum. */
static double smp_weigh(smp_cand *a, int n, float mx, double t) {
    for (int i = 0; i < n; i++) a[i].w = exp(((double)a[i].logit - mx) / t);
    return smp_sum(a, n);
}

/* The bucket of a logit: 1/32 nat wide, counted down from the maximum, the last one holding
   everything past 32 nats. Monotonic in the logit, so buckets 0..c hold a best-first prefix. */
static int smp_bucket(float x, float mx) {
    float d = (mx - x) * 32.0f;
    return d < SMP_BUCKETS - 1 ? (int)d : SMP_BUCKETS - 1;
}

/* Weighs the candidates; returns their total, and in *cut the bucket where the best-first
   running total reaches top_p of it: the top-p cut lies in that bucket. */
static double smp_weigh_buckets(ds_sampler *s, int n, float mx, double top_p, int *cut) {
    smp_cand *a = s->cand;
    double *h = s->bucket;
    memset(h, 0, SMP_BUCKETS * sizeof *h);
    for (int i = 0; i < n; i++) {
        a[i].w = exp((double)a[i].logit - mx);
        h[smp_bucket(a[i].logit, mx)] += a[i].w;
    }
    double z = 0, cum = 0;
    for (int b = 0; b < SMP_BUCKETS; b++) z += h[b];
    int c = 0;
    while (c < SMP_BUCKETS - 1 && (cum += h[c]) < top_p * z) c++;
    *cut = c;
    return z;
}

/* Drops the candidates in buckets past c, keeping the order. */
static int smp_prune(smp_cand *a, int n, float mx, int c) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        a[k] = a[i];
        k += smp_bucket(a[i].logit, mx) <= c;
    }
    return k;
}

/* Keeps the tokens with p >= min_p * p(max), in order (a sorted array stays sorted). */
static int smp_min_p(smp_cand *a, int n, float min_p, float mx) {
    double lim = log(min_p);
    int k = 0;
    for (int i = 0; i < n; i++)
        if ((double)a[i].logit - mx >= lim) a[k++] = a[i];
    return k;
}

/* Walks best-first a[lo..hi) adding weights to *cum; returns one past the element where *cum
   reaches target, or hi. */
static int smp_walk(const smp_cand *a, int lo, int hi, double *cum, double target) {
    for (int i = lo; i < hi; i++) {
        *cum += a[i].w;
        if (*cum >= target) return i + 1;
    }
    return hi;
}

/* Median of three as the pivot, moved to a[hi - 1]; then everything better than it to the
   front. Returns the pivot's final index and the weight in front of it. */
static int smp_partition(smp_cand *a, int lo, int hi, double *front) {
    int mid = lo + (hi - lo) / 2;
    if (smp_better(a[mid], a[lo])) smp_swap(&a[mid], &a[lo]);
    if (smp_better(a[hi - 1], a[lo])) smp_swap(&a[hi - 1], &a[lo]);
    if (smp_better(a[mid], a[hi - 1])) smp_swap(&a[mid], &a[hi - 1]);
    smp_cand pivot = a[hi - 1];
    int i = lo;
    *front = 0;
    for (int j = lo; j < hi - 1; j++) {
        if (smp_better(a[j], pivot)) {
            *front += a[j].w;
            smp_swap(&a[i++], &a[j]);
        }
    }
    smp_swap(&a[i], &a[hi - 1]);
    return i;
}

/* Moves the shortest best-first prefix of a[0..n) whose weight reaches target to the front, in
   no particular order, and returns its length (n if the whole does not reach it). A quickselect
   steered by weight instead of rank: expected O(n), no sort. Past 2 log2(n) levels (an unlucky
   input) or below 32 elements, the rest of the range is sorted and walked instead. */
static int smp_top_p(smp_cand *a, int n, double target) {
    int lo = 0, hi = n, depth = 0;
    double cum = 0; /* the weight of a[0..lo), all of it kept */
    for (int m = n; m > 1; m /= 2) depth += 2;
    while (hi - lo > 32 && depth-- > 0) {
        double front;
        int p = smp_partition(a, lo, hi, &front);
        if (cum + front >= target) {
            hi = p;
            continue;
        }
        cum += front + a[p].w;
        if (cum >= target) return p + 1;
        lo = p + 1;
    }
    smp_select_best(a + lo, hi - lo, hi - lo);
    return smp_walk(a, lo, hi, &cum, target);
}

/* Applies top-k, top-p and min-p to the n candidates; returns how many survive in s->cand. */
static int smp_truncate(ds_sampler *s, int n, float mx) {
    const ds_sampler_params *p = &s->p;
    smp_cand *a = s->cand;
    if (p->top_k > 0 && p->top_k < n) {
        smp_select_best(a, n, p->top_k);
        n = p->top_k;
        if (p->min_p > 0.0f && p->top_p >= 1.0f) return smp_min_p(a, n, p->min_p, mx);
        if (p->top_p >= 1.0f) return n;
        /* Sorted now: top-p is a walk. Its mass is relative to the k kept, as in llama.cpp. */
        double target = p->top_p * smp_weigh(a, n, mx, 1.0), cum = 0;
        if (p->min_p > 0.0f) n = smp_min_p(a, n, p->min_p, mx);
        return smp_walk(a, 0, n, &cum, target);
    }
    if (p->top_p >= 1.0f) return p->min_p > 0.0f ? smp_min_p(a, n, p->min_p, mx) : n;
    /* Top-p runs before min-p in llama.cpp, so its mass counts the tokens min-p drops. Both
       keep a best-first prefix, so the order they cut in does not matter otherwise. */
    int cut;
    double target = p->top_p * smp_weigh_buckets(s, n, mx, p->top_p, &cut);
    n = smp_prune(a, n, mx, cut);
    if (p->min_p > 0.0f) n = smp_min_p(a, n, p->min_p, mx);
    return smp_top_p(a, n, target);
}

/* Temperature, softmax and one draw. a[0..n) holds the maximum, so the total is >= 1. */
static int32_t smp_draw(ds_sampler *s, smp_cand *a, int n, float mx) {
    double total = smp_weigh(a, n, mx, s->p.temp);
    double r = smp_uniform(s->rng) * total, cum = 0;
    int last = 0;
    for (int i = 0; i < n; i++) {
        cum += a[i].w;
        if (r < cum) return a[i].id;
        if (a[i].w > 0) last = i;
    }
    return a[last].id; /* r rounded past the running sum, which adds in another order */
}

/* With nothing usable (every logit NaN or -inf) the answer is token 0. */
int32_t ds_sampler_sample(ds_sampler *s, const float *logits) {
    if (!s || !logits) return 0;
    if (s->p.temp <= 0) return smp_argmax(s, logits);
    float mx;
    int n = smp_candidates(s, logits, &mx);
    if (n == 0) return 0;
    return smp_draw(s, s->cand, smp_truncate(s, n, mx), mx);
}

/* ========================================================================================== */
/* 9. The vocabulary and the tokenizer                                                        */
/* ========================================================================================== */

/* Byte-level BPE exactly as Hugging Face's tokenizers runs a tokenizer.json: added tokens are cut
   out of the text first (leftmost-longest, always, as HF does even without add_special_tokens),
   the text between them is normalized where the tokenizer.json says so (NFC), split by the
   pre-tokenizer's regexes in turn, each piece's bytes become byte-level symbols and merges apply
   lowest rank first. GGUF keeps no regexes and no normalizer, only a name (tokenizer.ggml.pre),
   so what the name stands for lives in a table here, as in llama.cpp. */

enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER = 4, TOK_UNUSED = 5, TOK_BYTE = 6 };

enum { MAX_PRE_STEPS = 8, MAX_EOG = 24 };

typedef struct {
    const char *names[4];             /* tokenizer.ggml.pre values (llama.cpp's) meaning this entry */
    const char *regex[MAX_PRE_STEPS]; /* applied in order, each "Isolated" (matches and gaps are pieces) */
    bool nfc;                         /* the tokenizer.json's normalizer is NFC */
    bool ignore_merges;               /* model.ignore_merges: a piece that is a token is that token */
} pre_rule;

/* Each entry's Split regexes exactly as its tokenizer.json writes them (after JSON decoding), in
   Oniguruma syntax; onig_to_pcre2() turns \s into Oniguruma's meaning. A Digits pre-tokenizer
   with individual_digits is its definition, \p{N} isolated (Rust's char::is_numeric). Each entry
   is held to golden vectors in tests/data/tokenizer-*. */
static const pre_rule PRE_RULES[] = {
    {{"deepseek-v3"},
     {"\\p{N}{1,3}", "[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
      " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
     false,
     false},
    /* DeepSeek LLM, V2, V2-Lite, Coder-V2: the letter class holds code points NFC would rewrite
       (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A), kept as the file has them; the files end
       with Digits(individual_digits) where llama.cpp has \p{N}+ (the same ids: no token holds two
       digits) */
    {{"deepseek-llm"},
     {"[\r\n]",
      "\\s?[A-Za-z\xC2\xB5\xC3\x80-\xC3\x96\xC3\x98-\xC3\xB6\xC3\xB8-\xC6\xBA\xC6\xBC-\xC6\xBF\xC7\x84-\xCA\x93"
      "\xCA\x95-\xCA\xAF\xCD\xB0-\xCD\xB3\xCD\xB6\xCD\xB7\xCD\xBB-\xCD\xBD\xCD\xBF\xCE\x86\xCE\x88-\xCE\x8A"
      "\xCE\x8C\xCE\x8E-\xCE\xA1\xCE\xA3-\xCF\xB5\xCF\xB7-\xD2\x81\xD2\x8A-\xD4\xAF\xD4\xB1-\xD5\x96"
      "\xE1\x82\xA0-\xE1\x83\x85\xE1\x8E\xA0-\xE1\x8F\xB5\xE1\x8F\xB8-\xE1\x8F\xBD\xE1\xB2\x90-\xE1\xB2\xBA"
      "\xE1\xB2\xBD-\xE1\xB2\xBF\xE1\xB4\x80-\xE1\xB4\xAB\xE1\xB5\xAB-\xE1\xB5\xB7\xE1\xB5\xB9-\xE1\xB6\x9A"
      "\xE1\xB8\x80-\xE1\xBC\x95\xE1\xBC\x98-\xE1\xBC\x9D\xE1\xBC\xA0-\xE1\xBD\x85\xE1\xBD\x88-\xE1\xBD\x8D"
      "\xE1\xBD\x90-\xE1\xBD\x97\xE1\xBD\x99\xE1\xBD\x9B\xE1\xBD\x9D\xE1\xBD\x9F-\xE1\xBD\xBD"
      "\xE1\xBE\x80-\xE1\xBE\xB4\xE1\xBE\xB6-\xE1\xBE\xBC\xE1\xBE\xBE\xE1\xBF\x82-\xE1\xBF\x84"
      "\xE1\xBF\x86-\xE1\xBF\x8C\xE1\xBF\x90-\xE1\xBF\x93\xE1\xBF\x96-\xE1\xBF\x9B\xE1\xBF\xA0-\xE1\xBF\xAC"
      "\xE1\xBF\xB2-\xE1\xBF\xB4\xE1\xBF\xB6-\xE1\xBF\xBC\xE2\x84\x82\xE2\x84\x87\xE2\x84\x8A-\xE2\x84\x93"
      "\xE2\x84\x95\xE2\x84\x99-\xE2\x84\x9D\xE2\x84\xA4\xE2\x84\xA6\xE2\x84\xA8\xE2\x84\xAA-\xE2\x84\xAD"
      "\xE2\x84\xAF-\xE2\x84\xB4\xE2\x84\xB9\xE2\x84\xBC-\xE2\x84\xBF\xE2\x85\x85-\xE2\x85\x89\xE2\x85\x8E"
      "\xE2\x86\x83\xE2\x86\x84\xE2\xB0\x80-\xE2\xB1\xBB\xE2\xB1\xBE-\xE2\xB3\xA4\xE2\xB3\xAB-\xE2\xB3\xAE"
      "\xE2\xB3\xB2\xE2\xB3\xB3\xEA\x99\x80-\xEA\x99\xAD\xEA\x9A\x80-\xEA\x9A\x9B\xEA\x9C\xA2-\xEA\x9D\xAF"
      "\xEA\x9D\xB1-\xEA\x9E\x87\xEA\x9E\x8B-\xEA\x9E\x8E\xEA\xAD\xB0-\xEA\xAE\xBF\xEF\xAC\x80-\xEF\xAC\x86"
      "\xEF\xAC\x93-\xEF\xAC\x97\xEF\xBC\xA1-\xEF\xBC\xBA\xEF\xBD\x81-\xEF\xBD\x9A\xF0\x90\x90\x80-\xF0\x90\x91\x8F"
      "\xF0\x90\x92\xB0-\xF0\x90\x93\x93\xF0\x90\x93\x98-\xF0\x90\x93\xBB\xF0\x90\xB2\x80-\xF0\x90\xB2\xB2"
      "\xF0\x90\xB3\x80-\xF0\x90\xB3\xB2\xF0\x91\xA2\xA0-\xF0\x91\xA3\x9F\xF0\x9E\xA4\x80-\xF0\x9E\xA5\x83]+",
      "\\s?[!-/:-~\xEF\xBC\x81-\xEF\xBC\x8F\xEF\xBC\x9A-\xEF\xBD\x9E"
      "\xE2\x80\x98-\xE2\x80\x9F\xE3\x80\x80-\xE3\x80\x82]+",
      "\\s+$", "[\xE4\xB8\x80-\xE9\xBE\xA5\xE0\xA0\x80-\xE4\xB8\x80\xEA\xB0\x80-\xED\x9F\xBF]+", "\\p{N}"},
     false,
     false},
    /* DeepSeek Coder 1.3B / 6.7B / 33B */
    {{"deepseek-coder"},
     {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
      "[\xE4\xB8\x80-\xE9\xBE\xA5\xE0\xA0\x80-\xE4\xB8\x80\xEA\xB0\x80-\xED\x9F\xBF]+", "\\p{N}"},
     false,
     false},
    /* Qwen2, Qwen2.5, Qwen3, and DeepSeek-R1's Qwen distillations: one digit a piece */
    {{"qwen2", "deepseek-r1-qwen"},
     {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
      "\\s+(?!\\S)|\\s+"},
     true,
     false},
    /* Llama 3, 3.1, 3.2, 3.3: digits in groups of 1-3 */
    {{"llama-bpe", "llama3", "llama-v3"},
     {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
      "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false,
     true},
};

/* Oniguruma's \s is Unicode White_Space; PCRE2's (with UCP) adds U+180E, and JavaScript's adds
   U+FEFF and drops U+0085. The fixtures follow Oniguruma, so \s is spelled out. */
#define WHITE_SPACE "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* Max nodes of the added-token trie, as an index type. */
typedef struct {
    int32_t child, sibling, token; /* first child, next sibling, token ending here or -1 */
    uint8_t byte;
} trie_node;

struct ds_vocab {
    int n;
    uint8_t *type;
    char *bytes;        /* every token's decoded bytes, concatenated */
    uint32_t *off;      /* token i's bytes are bytes[off[i] .. off[i + 1]) */
    uint32_t *str_slot; /* token string -> id + 1, open addressing (only while loading) */
    uint64_t *pair_key; /* merge (left id, right id) -> rank and result, open addressing */
    int32_t *pair_rank, *pair_out;
    size_t pair_mask;
    int32_t byte_tok[256];
    trie_node *trie;
    int n_trie;
    bool trie_first[256];
    pcre2_code *re[MAX_PRE_STEPS];
    int n_re;
    bool nfc;
    uint32_t *whole_slot; /* ignore_merges: a piece's bytes -> id + 1 of the normal token they are */
    size_t whole_mask;
    bool add_bos;
    int bos, eos;
    int32_t eog[MAX_EOG]; /* the end-of-generation tokens (vocab_eog) */
    int n_eog;
    char pre[64];
    char *chat_template;
    char unusable[512]; /* why text cannot be tokenized (unknown pre-tokenizer); "" if it can */
};

/* GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the other 68
   bytes in increasing order for U+0100.. U+0143. */
static int byte_to_cp(int b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    int k = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) k++;
    return 0x100 + k;
}

/* Length of the UTF-8 character at s (n > 0 bytes available): k > 0 a valid character;
   0 a valid prefix cut off by the end; -k an invalid maximal subpart of k bytes (Unicode's
   "maximal subpart" rule, which from_utf8_lossy and the WHATWG decoder follow). */
static int utf8_char(const uint8_t *s, size_t n) {
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    int need;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else return -1;
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return 0;
        if (s[i] < lo || s[i] > hi) return -i;
        lo = 0x80, hi = 0xBF;
    }
    return need + 1;
}

static uint32_t utf8_cp(const uint8_t *s, int k) {
    if (k == 1) return s[0];
    uint32_t cp = s[0] & (0x7F >> k);
    for (int i = 1; i < k; i++) cp = cp << 6 | (s[i] & 63);
    return cp;
}

size_t ds_utf8_lossy(const char *in, size_t n, char *out, size_t *n_invalid) {
    const uint8_t *s = (const uint8_t *)in;
    size_t w = 0, bad = 0;
    for (size_t i = 0; i < n;) {
        int k = utf8_char(s + i, n - i);
        if (k > 0) {
            memcpy(out + w, s + i, (size_t)k);
            w += (size_t)k;
            i += (size_t)k;
            continue;
        }
        memcpy(out + w, "\xEF\xBF\xBD", 3);
        w += 3;
        bad++;
        i += k < 0 ? (size_t)-k : n - i; /* a cut-off prefix is one maximal subpart */
    }
    if (n_invalid) *n_invalid = bad;
    return w;
}

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h ^ h >> 29;
}

static uint64_t hash_u64(uint64_t x) {
    x *= 0x9E3779B97F4A7C15ull;
    return x ^ x >> 31;
}

static size_t pow2_above(size_t n) {
    size_t c = 16;
    while (c < 2 * n) c *= 2;
    return c;
}

/* One GGUF string of a string array; advances *p. */
static void gguf_next_str(const uint8_t **p, const char **s, uint32_t *len) {
    uint64_t n;
    memcpy(&n, *p, 8);
    *s = (const char *)*p + 8;
    *len = (uint32_t)n;
    *p += 8 + n;
}

typedef struct {
    ds_vocab *v;
    const gguf_file *f;
    const char **str; /* token strings as stored, during loading */
    uint32_t *len;
    size_t slot_mask;
    bool *symbolic; /* the token's string is byte symbols only */
    const pre_rule *rule;
    char *err;
    size_t err_size;
} vocab_loader;

static int str_lookup(const vocab_loader *V, const char *s, size_t n) {
    for (size_t h = hash_bytes(s, n) & V->slot_mask;; h = (h + 1) & V->slot_mask) {
        uint32_t e = V->v->str_slot[h];
        if (!e) return -1;
        if (V->len[e - 1] == n && !memcmp(V->str[e - 1], s, n)) return (int)e - 1;
    }
}

static ds_status vocab_fail(vocab_loader *V, const char *fmt, ...) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(DS_ERR_FORMAT, V->err, V->err_size, "%s: %s", V->f->path, msg);
}

static const gguf_kv *vocab_array(vocab_loader *V, const char *key, uint32_t elem, uint64_t n, bool required,
                                  ds_status *s) {
    const gguf_kv *kv = gguf_find(V->f, key);
    *s = DS_OK;
    if (!kv) {
        if (required) *s = vocab_fail(V, "metadata '%s' is missing", key);
        return NULL;
    }
    if (kv->type != GGUF_ARR || kv->arr_type != elem || (n && kv->n != n)) {
        *s = vocab_fail(V, "metadata '%s' is not an array of %llu %s", key, (unsigned long long)n,
                        elem == GGUF_STR ? "strings" : "int32");
        return NULL;
    }
    return kv;
}

/* Tokens and their types; the string -> id table; every token's decoded bytes. */
static ds_status vocab_tokens(vocab_loader *V, const gguf_kv *tokens) {
    ds_vocab *v = V->v;
    ds_status s;
    if (tokens->n < 1 || tokens->n > INT_MAX / 4)
        return vocab_fail(V, "tokenizer.ggml.tokens has %llu entries", (unsigned long long)tokens->n);
    v->n = (int)tokens->n;
    const gguf_kv *types = vocab_array(V, "tokenizer.ggml.token_type", GGUF_I32, tokens->n, false, &s);
    if (s) return s;
    V->slot_mask = pow2_above((size_t)v->n) - 1;
    V->str = malloc((size_t)v->n * sizeof *V->str);
    V->len = malloc((size_t)v->n * sizeof *V->len);
    v->type = malloc((size_t)v->n);
    v->off = malloc(((size_t)v->n + 1) * sizeof *v->off);
    v->str_slot = calloc(V->slot_mask + 1, sizeof *v->str_slot);
    V->symbolic = malloc((size_t)v->n * sizeof *V->symbolic);
    if (!V->str || !V->len || !v->type || !v->off || !v->str_slot || !V->symbolic)
        return fail(DS_ERR_NOMEM, V->err, V->err_size, "out of memory");
    const uint8_t *p = tokens->val;
    size_t total = 0;
    for (int i = 0; i < v->n; i++) {
        gguf_next_str(&p, &V->str[i], &V->len[i]);
        int32_t t = TOK_NORMAL;
        if (types) memcpy(&t, types->val + 4 * (size_t)i, 4);
        if (t < TOK_NORMAL || t > TOK_BYTE)
            return vocab_fail(V, "tokenizer.ggml.token_type[%d] = %d is not a token type", i, t);
        v->type[i] = (uint8_t)t;
        total += V->len[i];
        if (total > UINT32_MAX) return vocab_fail(V, "tokenizer.ggml.tokens: more than 4 GiB of text");
        if (str_lookup(V, V->str[i], V->len[i]) >= 0) continue; /* first one wins, as in HF's vocab */
        size_t h = hash_bytes(V->str[i], V->len[i]) & V->slot_mask;
        while (v->str_slot[h]) h = (h + 1) & V->slot_mask;
        v->str_slot[h] = (uint32_t)i + 1;
    }
    return DS_OK;
}

/* Byte-level decoding of token strings: a token whose characters are all byte symbols stands
   for those bytes, added tokens too (DeepSeek LLM's added token "ü" is byte FC, so U+FFFD, to
   HF's Rust decoder; the JavaScript ports keep its text); any other token stands for its own
   UTF-8 text, as HF's ByteLevel decoder has it. */
static ds_status vocab_bytes(vocab_loader *V) {
    ds_vocab *v = V->v;
    int cp_byte[0x144];
    for (int i = 0; i < 0x144; i++) cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_byte[byte_to_cp(b)] = b;
    size_t total = 0;
    for (int i = 0; i < v->n; i++) total += V->len[i];
    if (!(v->bytes = malloc(total + 1))) return fail(DS_ERR_NOMEM, V->err, V->err_size, "out of memory");
    uint32_t w = 0;
    for (int i = 0; i < v->n; i++) {
        const uint8_t *s = (const uint8_t *)V->str[i];
        uint32_t n = V->len[i], start = w;
        bool symbols = true;
        for (uint32_t j = 0; symbols && j < n;) {
            int k = utf8_char(s + j, n - j);
            if (k <= 0) return vocab_fail(V, "tokenizer.ggml.tokens[%d] is not valid UTF-8", i);
            uint32_t cp = utf8_cp(s + j, k);
            if (cp >= 0x144 || cp_byte[cp] < 0) symbols = false;
            else v->bytes[w++] = (char)cp_byte[cp];
            j += (uint32_t)k;
        }
        if (!symbols) {
            w = start;
            memcpy(v->bytes + w, s, n);
            w += n;
        }
        V->symbolic[i] = symbols;
        v->off[i] = start;
    }
    v->off[v->n] = w;
    for (int b = 0; b < 256; b++) {
        char sym[4];
        int k = put_utf8((uint32_t)byte_to_cp(b), sym);
        v->byte_tok[b] = str_lookup(V, sym, (size_t)k);
        if (v->byte_tok[b] < 0) return vocab_fail(V, "the vocabulary has no token for byte 0x%02X", b);
    }
    return DS_OK;
}

static size_t pair_slot(const ds_vocab *v, uint64_t key) {
    size_t h = hash_u64(key) & v->pair_mask;
    while (v->pair_rank[h] >= 0 && v->pair_key[h] != key) h = (h + 1) & v->pair_mask;
    return h;
}

static uint64_t pair_of(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

/* Merge "left right" number i: both parts and their concatenation must be tokens. */
static ds_status vocab_merges(vocab_loader *V) {
    ds_vocab *v = V->v;
    ds_status s;
    const gguf_kv *kv = vocab_array(V, "tokenizer.ggml.merges", GGUF_STR, 0, false, &s);
    if (s) return s;
    uint64_t n = kv ? kv->n : 0;
    if (n > INT32_MAX / 2) return vocab_fail(V, "tokenizer.ggml.merges has %llu entries", (unsigned long long)n);
    v->pair_mask = pow2_above((size_t)n) - 1;
    v->pair_key = malloc((v->pair_mask + 1) * sizeof *v->pair_key);
    v->pair_rank = malloc((v->pair_mask + 1) * sizeof *v->pair_rank);
    v->pair_out = malloc((v->pair_mask + 1) * sizeof *v->pair_out);
    char *cat = malloc(64);
    size_t cat_cap = 64;
    if (!v->pair_key || !v->pair_rank || !v->pair_out || !cat) {
        free(cat);
        return fail(DS_ERR_NOMEM, V->err, V->err_size, "out of memory");
    }
    memset(v->pair_rank, 0xFF, (v->pair_mask + 1) * sizeof *v->pair_rank);
    const uint8_t *p = kv ? kv->val : NULL;
    for (uint64_t i = 0; i < n; i++) {
        const char *m;
        uint32_t len;
        gguf_next_str(&p, &m, &len);
        const char *sp = len > 1 ? memchr(m + 1, ' ', len - 1) : NULL; /* a part may be " " itself */
        int a = sp ? str_lookup(V, m, (size_t)(sp - m)) : -1;
        int b = sp ? str_lookup(V, sp + 1, (size_t)(m + len - sp - 1)) : -1;
        if (len + 1 > cat_cap) {
            char *c2 = realloc(cat, cat_cap = len + 1);
            if (!c2) {
                free(cat);
                return fail(DS_ERR_NOMEM, V->err, V->err_size, "out of memory");
            }
            cat = c2;
        }
        int out = -1;
        if (a >= 0 && b >= 0) {
            size_t la = (size_t)(sp - m);
            memcpy(cat, m, la);
            memcpy(cat + la, sp + 1, len - la - 1);
            out = str_lookup(V, cat, len - 1);
        }
        if (out < 0) {
            free(cat);
            return vocab_fail(V, "tokenizer.ggml.merges[%llu] '%.*s' does not join two tokens into a token",
                              (unsigned long long)i, (int)(len < 60 ? len : 60), m);
        }
        size_t h = pair_slot(v, pair_of(a, b));
        if (v->pair_rank[h] >= 0) continue; /* a repeated merge keeps its first rank */
        v->pair_key[h] = pair_of(a, b);
        v->pair_rank[h] = (int32_t)i;
        v->pair_out[h] = out;
    }
    free(cat);
    return DS_OK;
}

/* A byte trie of the added tokens (control and user-defined), for leftmost-longest matching. */
static ds_status vocab_trie(vocab_loader *V) {
    ds_vocab *v = V->v;
    size_t cap = 1;
    for (int i = 0; i < v->n; i++)
        if (v->type[i] == TOK_CONTROL || v->type[i] == TOK_USER) cap += V->len[i];
    if (cap > INT32_MAX) return vocab_fail(V, "added tokens too long");
    if (!(v->trie = malloc(cap * sizeof *v->trie))) return fail(DS_ERR_NOMEM, V->err, V->err_size, "out of memory");
    v->trie[0] = (trie_node){-1, -1, -1, 0};
    v->n_trie = 1;
    for (int i = 0; i < v->n; i++) {
        if ((v->type[i] != TOK_CONTROL && v->type[i] != TOK_USER) || !V->len[i]) continue;
        int32_t node = 0;
        for (uint32_t j = 0; j < V->len[i]; j++) {
            uint8_t c = (uint8_t)V->str[i][j];
            int32_t ch = v->trie[node].child;
            while (ch >= 0 && v->trie[ch].byte != c) ch = v->trie[ch].sibling;
            if (ch < 0) {
                ch = v->n_trie++;
                v->trie[ch] = (trie_node){-1, v->trie[node].child, -1, c};
                v->trie[node].child = ch;
            }
            node = ch;
        }
        if (v->trie[node].token < 0) v->trie[node].token = i;
        v->trie_first[(uint8_t)V->str[i][0]] = true;
    }
    return DS_OK;
}

/* Rewrite an Oniguruma regex for PCRE2: \s and \S as Oniguruma means them. */
static char *onig_to_pcre2(const char *re) {
    size_t n = strlen(re), class_at = 0; /* where the open class's items start */
    char *out = malloc(n * 64 + 1), *w = out;
    bool in_class = false;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (re[i] == '\\' && i + 1 < n && (re[i + 1] == 's' || re[i + 1] == 'S')) {
            bool neg = re[i + 1] == 'S';
            if (in_class && neg) {
                free(out);
                return NULL;
            } /* [\S] has no class-item spelling */
            w += sprintf(w, in_class ? "%s" : neg ? "[^%s]" : "[%s]", WHITE_SPACE);
            i++;
        } else if (re[i] == '\\' && i + 1 < n) {
            *w++ = re[i++];
            *w++ = re[i];
        } else {
            bool opens = re[i] == '[' && !in_class;
            if (re[i] == ']' && in_class && (size_t)(w - out) > class_at)
                in_class = false; /* "[]" and "[^]" start with a literal ] */
            *w++ = re[i];
            if (opens) {
                in_class = true;
                if (i + 1 < n && re[i + 1] == '^') *w++ = re[++i];
                class_at = (size_t)(w - out);
            }
        }
    }
    *w = 0;
    return out;
}

static size_t n_pre_rules(void) { return sizeof PRE_RULES / sizeof PRE_RULES[0]; }

static const pre_rule *pre_rule_named(const char *name) {
    for (size_t i = 0; i < n_pre_rules(); i++)
        for (int k = 0; k < 4 && PRE_RULES[i].names[k]; k++)
            if (!strcmp(PRE_RULES[i].names[k], name)) return &PRE_RULES[i];
    return NULL;
}

const char *ds_pre_tokenizer_name(const char *const *regex, int n, int nfc, int ignore_merges) {
    for (size_t i = 0; i < n_pre_rules(); i++) {
        const pre_rule *r = &PRE_RULES[i];
        int k = 0;
        while (k < n && k < MAX_PRE_STEPS && r->regex[k] && !strcmp(r->regex[k], regex[k])) k++;
        if (k == n && (k == MAX_PRE_STEPS || !r->regex[k]) && r->nfc == !!nfc && r->ignore_merges == !!ignore_merges)
            return r->names[0];
    }
    return NULL;
}

static void unsupported_pre(vocab_loader *V) {
    ds_vocab *v = V->v;
    int w = snprintf(v->unusable, sizeof v->unusable,
                     "%s: pre-tokenizer '%s' (tokenizer.ggml.pre) is not supported; supported:", V->f->path, v->pre);
    for (size_t i = 0; i < n_pre_rules() && w > 0 && (size_t)w < sizeof v->unusable; i++)
        for (int k = 0; k < 4 && PRE_RULES[i].names[k] && (size_t)w < sizeof v->unusable; k++)
            w += snprintf(v->unusable + w, sizeof v->unusable - (size_t)w, "%s %s", i + k ? "," : "",
                          PRE_RULES[i].names[k]);
}

static ds_status vocab_regexes(vocab_loader *V) {
    ds_vocab *v = V->v;
    meta_str(V->f, "tokenizer.ggml.pre", v->pre, sizeof v->pre);
    if (!v->pre[0]) snprintf(v->pre, sizeof v->pre, "default");
    const pre_rule *rule = V->rule = pre_rule_named(v->pre);
    if (!rule) {
        unsupported_pre(V);
        return DS_OK;
    }
    v->nfc = rule->nfc;
    for (v->n_re = 0; v->n_re < MAX_PRE_STEPS && rule->regex[v->n_re]; v->n_re++) {
        char *pat = onig_to_pcre2(rule->regex[v->n_re]);
        int code;
        PCRE2_SIZE at;
        if (!pat) return fail(DS_ERR_NOMEM, V->err, V->err_size, "out of memory");
        v->re[v->n_re] = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &at, NULL);
        free(pat);
        if (!v->re[v->n_re])
            return fail(DS_ERR_UNSUPPORTED, V->err, V->err_size,
                        "pre-tokenizer '%s': regex %d does not compile (PCRE2 error %d at %zu)", v->pre, v->n_re, code,
                        (size_t)at);
        pcre2_jit_compile(v->re[v->n_re], PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    }
    return DS_OK;
}

static int whole_lookup(const ds_vocab *v, const uint8_t *s, size_t n) {
    for (size_t h = hash_bytes(s, n) & v->whole_mask;; h = (h + 1) & v->whole_mask) {
        uint32_t e = v->whole_slot[h];
        if (!e) return -1;
        uint32_t id = e - 1, len = v->off[id + 1] - v->off[id];
        if (len == n && !memcmp(v->bytes + v->off[id], s, n)) return (int)id;
    }
}

/* ignore_merges: HF looks a piece's byte-symbol string up in model.vocab (the normal tokens) before
   merging; the same by bytes, first id winning. */
static ds_status vocab_whole(vocab_loader *V) {
    ds_vocab *v = V->v;
    if (!V->rule || !V->rule->ignore_merges) return DS_OK;
    v->whole_mask = pow2_above((size_t)v->n) - 1;
    if (!(v->whole_slot = calloc(v->whole_mask + 1, sizeof *v->whole_slot)))
        return fail(DS_ERR_NOMEM, V->err, V->err_size, "out of memory");
    for (int i = 0; i < v->n; i++) {
        const uint8_t *s = (const uint8_t *)v->bytes + v->off[i];
        size_t n = v->off[i + 1] - v->off[i];
        if (v->type[i] != TOK_NORMAL || !V->symbolic[i] || !n || whole_lookup(v, s, n) >= 0) continue;
        size_t h = hash_bytes(s, n) & v->whole_mask;
        while (v->whole_slot[h]) h = (h + 1) & v->whole_mask;
        v->whole_slot[h] = (uint32_t)i + 1;
    }
    return DS_OK;
}

static void vocab_free(ds_vocab *v) {
    if (!v) return;
    for (int i = 0; i < v->n_re; i++) pcre2_code_free(v->re[i]);
    free(v->type);
    free(v->bytes);
    free(v->off);
    free(v->str_slot);
    free(v->pair_key);
    free(v->pair_rank);
    free(v->pair_out);
    free(v->trie);
    free(v->whole_slot);
    free(v->chat_template);
    free(v);
}

static ds_status vocab_meta(vocab_loader *V) {
    ds_vocab *v = V->v;
    int64_t x = -1;
    v->bos = v->eos = -1;
    TRY(meta_int(V->f, "tokenizer.ggml.bos_token_id", false, 0, v->n - 1, &x, V->err, V->err_size));
    v->bos = (int)x;
    x = -1;
    TRY(meta_int(V->f, "tokenizer.ggml.eos_token_id", false, 0, v->n - 1, &x, V->err, V->err_size));
    v->eos = (int)x;
    x = 0;
    TRY(meta_int(V->f, "tokenizer.ggml.add_bos_token", false, 0, 1, &x, V->err, V->err_size));
    v->add_bos = x && v->bos >= 0;
    const gguf_kv *kv = gguf_find(V->f, "tokenizer.chat_template");
    if (kv && kv->type == GGUF_STR) {
        uint64_t len;
        memcpy(&len, kv->val, 8);
        if (!(v->chat_template = dup_n((const char *)kv->val + 8, (size_t)len)))
            return fail(DS_ERR_NOMEM, V->err, V->err_size, "out of memory");
    }
    return DS_OK;
}

/* Texts of tokens that end generation. GGUF names one EOS, but a chat model may end a turn with
   another token (Llama 3: <|eot_id|>, <|eom_id|>; Qwen3: <|im_end|> or <|endoftext|>, as their
   generation_config.json lists), so llama.cpp also stops at these texts (llama-vocab.cpp, the
   special_eog_ids it builds); the ones of families this runtime does not run are left out, and
   DeepSeek Coder's <|EOT|>, the EOS of its generation_config.json that a GGUF may not name, is
   added. Qwen's FIM pad / repo / file-separator tokens end a FIM completion, as in llama.cpp. */
static const char *const EOG_TEXTS[] = {
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", /* <｜end▁of▁sentence｜> */
    "<|EOT|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|end|>",
    "<end_of_turn>", "<EOT>", "<|fim_pad|>", "<|fim_repo|>", "<|repo_name|>", "<|file_sep|>"};

static void vocab_eog_add(ds_vocab *v, int id) {
    if (id < 0) return;
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return;
    if (v->n_eog < MAX_EOG) v->eog[v->n_eog++] = id;
}

/* The file's EOS, EOT and EOM ids, then the tokens of EOG_TEXTS (matched as the file spells them). */
static ds_status vocab_eog(vocab_loader *V) {
    static const char *const keys[] = {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"};
    ds_vocab *v = V->v;
    vocab_eog_add(v, v->eos);
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        int64_t x = -1;
        TRY(meta_int(V->f, keys[k], false, 0, v->n - 1, &x, V->err, V->err_size));
        vocab_eog_add(v, (int)x);
    }
    for (size_t k = 0; k < sizeof EOG_TEXTS / sizeof *EOG_TEXTS; k++)
        vocab_eog_add(v, str_lookup(V, EOG_TEXTS[k], strlen(EOG_TEXTS[k])));
    return DS_OK;
}

/* The file's tokenizer, or *out = NULL when it has none. A broken tokenizer fails the load; one
   whose pre-tokenizer is unknown loads (ids and decoding work) and refuses to encode. */
static ds_status vocab_load(const gguf_file *f, ds_vocab **out, char *err, size_t err_size) {
    char model[32];
    *out = NULL;
    meta_str(f, "tokenizer.ggml.model", model, sizeof model);
    /* "none" and "no_vocab" are llama.cpp's marks for a model without one (fed token ids) */
    if (!model[0] || !strcmp(model, "none") || !strcmp(model, "no_vocab")) return DS_OK;
    ds_vocab *v = calloc(1, sizeof *v);
    if (!v) return fail(DS_ERR_NOMEM, err, err_size, "out of memory");
    vocab_loader V = {.v = v, .f = f, .err = err, .err_size = err_size};
    ds_status s = DS_OK;
    if (strcmp(model, "gpt2")) {
        snprintf(v->unusable, sizeof v->unusable,
                 "%s: tokenizer model '%s' is not supported (byte-level BPE, 'gpt2', is)", f->path, model);
    }
    const gguf_kv *tokens = vocab_array(&V, "tokenizer.ggml.tokens", GGUF_STR, 0, true, &s);
    if (!s) s = vocab_tokens(&V, tokens);
    if (!s) s = vocab_meta(&V);
    if (!s) s = vocab_eog(&V);
    if (!s && !v->unusable[0]) s = vocab_bytes(&V);
    if (!s && !v->unusable[0]) s = vocab_merges(&V);
    if (!s && !v->unusable[0]) s = vocab_trie(&V);
    if (!s && !v->unusable[0]) s = vocab_regexes(&V);
    if (!s && !v->unusable[0]) s = vocab_whole(&V);
    free(V.str);
    free(V.len);
    free(V.symbolic);
    free(v->str_slot);
    v->str_slot = NULL;
    if (s) {
        vocab_free(v);
        return s;
    }
    *out = v;
    return DS_OK;
}

/* ---- NFC, Unicode's canonical composition (tables: unicode_tables.h, tools/unicode_tables.py) ---- */

#include "unicode_tables.h"

enum { HANGUL_S = 0xAC00, HANGUL_L = 0x1100, HANGUL_V = 0x1161, HANGUL_T = 0x11A7, HANGUL_NL = 19, HANGUL_NV = 21 };
enum { HANGUL_NT = 28, HANGUL_N = HANGUL_NL * HANGUL_NV * HANGUL_NT };

static const uc_range *uc_find(const uc_range *t, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < t[mid].first) hi = mid;
        else if (cp > t[mid].last) lo = mid + 1;
        else return &t[mid];
    }
    return NULL;
}

static int uc_ccc(uint32_t cp) {
    const uc_range *r = cp < 0x300 ? NULL : uc_find(UC_CCC, sizeof UC_CCC / sizeof UC_CCC[0], cp);
    return r ? r->value : 0;
}

/* NFC keeps the character as it is and nothing before it joins it (every code point below U+0300). */
static bool uc_stable(uint32_t cp) {
    return cp < 0x300 || !uc_find(UC_UNSTABLE, sizeof UC_UNSTABLE / sizeof UC_UNSTABLE[0], cp);
}

/* The entry of t (sorted by a, then b; b = 0 for a lookup by cp alone) whose key is (a, b). */
static const uc_triple *uc_pair(const uc_triple *t, size_t n, bool by_cp, uint32_t a, uint32_t b) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t key = by_cp ? (uint64_t)t[mid].cp << 32 : (uint64_t)t[mid].a << 32 | t[mid].b;
        uint64_t want = (uint64_t)a << 32 | b;
        if (want < key) hi = mid;
        else if (want > key) lo = mid + 1;
        else return &t[mid];
    }
    return NULL;
}

/* cp's full canonical decomposition, appended to out (room for 4: the longest is 4). */
static void uc_decompose(uint32_t cp, uint32_t *out, size_t *n) {
    if (cp - HANGUL_S < HANGUL_N) {
        uint32_t s = cp - HANGUL_S;
        out[(*n)++] = HANGUL_L + s / (HANGUL_NV * HANGUL_NT);
        out[(*n)++] = HANGUL_V + s % (HANGUL_NV * HANGUL_NT) / HANGUL_NT;
        if (s % HANGUL_NT) out[(*n)++] = HANGUL_T + s % HANGUL_NT;
        return;
    }
    const uc_triple *d = uc_pair(UC_DECOMP, sizeof UC_DECOMP / sizeof UC_DECOMP[0], true, cp, 0);
    if (!d) {
        out[(*n)++] = cp;
        return;
    }
    uc_decompose(d->a, out, n);
    if (d->b) uc_decompose(d->b, out, n);
}

/* The primary composite of a and b, or 0. */
static uint32_t uc_compose(uint32_t a, uint32_t b) {
    if (a - HANGUL_L < HANGUL_NL && b - HANGUL_V < HANGUL_NV)
        return HANGUL_S + ((a - HANGUL_L) * HANGUL_NV + (b - HANGUL_V)) * HANGUL_NT;
    if (a - HANGUL_S < HANGUL_N && (a - HANGUL_S) % HANGUL_NT == 0 && b - HANGUL_T - 1 < HANGUL_NT - 1)
        return a + (b - HANGUL_T);
    const uc_triple *c = uc_pair(UC_COMPOSE, sizeof UC_COMPOSE / sizeof UC_COMPOSE[0], false, a, b);
    return c ? c->cp : 0;
}

typedef struct {
    byte_buf out; /* the normalized text */
    uint32_t *cp; /* one span's code points */
    size_t cap_cp;
} nfc_buf;

/* One span (a stable character, or the text's start, up to the next stable one) in NFC, appended
   to out: fully decomposed, marks in canonical order, composed again. */
static bool nfc_span(const uint8_t *s, size_t n, nfc_buf *b) {
    if (4 * n > b->cap_cp) {
        uint32_t *p = realloc(b->cp, 4 * n * sizeof *p); /* each byte decomposes to 4 code points at most */
        if (!p) return false;
        b->cp = p;
        b->cap_cp = 4 * n;
    }
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        int k = utf8_char(s + i, n - i);
        uc_decompose(utf8_cp(s + i, k), b->cp, &m);
        i += (size_t)k;
    }
    for (size_t i = 1; i < m; i++) { /* a stable insertion sort of each run of non-zero classes */
        uint32_t c = b->cp[i];
        int cc = uc_ccc(c);
        size_t j = i;
        for (; cc && j > 0 && uc_ccc(b->cp[j - 1]) > cc; j--) b->cp[j] = b->cp[j - 1];
        b->cp[j] = c;
    }
    size_t starter = 0, w = m ? 1 : 0;
    int last = m && uc_ccc(b->cp[0]) ? 256 : 0; /* 256: no starter yet */
    for (size_t i = 1; i < m; i++) {
        uint32_t c = b->cp[i], comp = last < 256 ? uc_compose(b->cp[starter], c) : 0;
        int cc = uc_ccc(c);
        if (comp && (last < cc || last == 0)) { /* not blocked from the starter */
            b->cp[starter] = comp;
            continue;
        }
        if (!cc) starter = w;
        last = cc;
        b->cp[w++] = c;
    }
    for (size_t i = 0; i < w; i++) {
        char u[4];
        buf_put(&b->out, u, (size_t)put_utf8(b->cp[i], u));
    }
    return !b->out.oom;
}

/* The NFC form of valid UTF-8: the text itself when it already is (the usual case: every character
   stable), else b->out's bytes; *len gets the length. NULL when out of memory. */
static const uint8_t *nfc(const uint8_t *s, size_t n, nfc_buf *b, size_t *len) {
    size_t done = 0, last = 0; /* bytes copied or normalized; where the last stable character starts */
    bool changed = false;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0xCC) { /* ASCII, a continuation byte, or a lead byte below U+0300 */
            if (s[i] < 0x80 || s[i] >= 0xC0) last = i;
            i++;
            continue;
        }
        int k = utf8_char(s + i, n - i);
        if (uc_stable(utf8_cp(s + i, k))) {
            last = i;
            i += (size_t)k;
            continue;
        }
        if (!changed) { /* the first change: the output starts */
            b->out.n = 0;
            b->out.oom = false;
            changed = true;
        }
        size_t end = i + (size_t)k;
        while (end < n) {
            int ke = utf8_char(s + end, n - end);
            if (uc_stable(utf8_cp(s + end, ke))) break;
            end += (size_t)ke;
        }
        if (last > done) buf_put(&b->out, s + done, last - done); /* buf_put wants a buffer, even for 0 bytes */
        if (!nfc_span(s + last, end - last, b)) return NULL;
        done = last = i = end;
    }
    if (!changed) {
        *len = n;
        return s;
    }
    if (n > done) buf_put(&b->out, s + done, n - done);
    *len = b->out.n;
    return b->out.oom ? NULL : b->out.p;
}

/* ---- encoding ---- */

typedef struct {
    uint64_t *key;      /* hash of the piece; 0 = empty */
    uint32_t *at, *len; /* the piece's ids in ids[], and their count */
    uint32_t *plen;     /* the piece's byte length, to reject hash collisions cheaply */
    char **text;
    int32_t *ids;
    size_t n_ids, cap_ids, mask, used;
} bpe_cache;

typedef struct {
    const ds_vocab *v;
    int32_t *out;
    int cap;
    int64_t n;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    int32_t *sym, *prev, *next; /* the piece's symbols as a linked list */
    uint64_t *heap;             /* candidate merges: rank << 32 | left position */
    size_t cap_sym;
    bpe_cache cache;
    nfc_buf norm;
    void (*piece_fn)(const char *, size_t, void *); /* ds_pretokenize: pieces, not ids */
    void *user;
    int rc; /* a PCRE2 error, or -1 out of memory */
} tok_run;

static void emit(tok_run *r, int32_t id) {
    if (r->n < r->cap) r->out[r->n] = id;
    r->n++;
}

static void heap_push(uint64_t *h, size_t *n, uint64_t x) {
    size_t i = (*n)++;
    while (i && h[(i - 1) / 2] > x) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = x;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], x = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (h[c] >= x) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
    return top;
}

static void push_pair(tok_run *r, size_t *nh, int32_t left) {
    if (left < 0 || r->next[left] < 0) return;
    int32_t right = r->next[left];
    size_t h = pair_slot(r->v, pair_of(r->sym[left], r->sym[right]));
    if (r->v->pair_rank[h] >= 0) heap_push(r->heap, nh, (uint64_t)r->v->pair_rank[h] << 32 | (uint32_t)left);
}

static bool bpe_scratch(tok_run *r, size_t n) {
    if (n <= r->cap_sym) return true;
    size_t cap = n * 2;
    int32_t *a = realloc(r->sym, cap * 4), *b = a ? realloc(r->prev, cap * 4) : NULL;
    if (a) r->sym = a;
    if (b) r->prev = b;
    int32_t *c = b ? realloc(r->next, cap * 4) : NULL;
    if (c) r->next = c;
    uint64_t *d = c ? realloc(r->heap, cap * 2 * 8) : NULL; /* up to 2n candidates are queued */
    if (d) r->heap = d;
    if (!d) return false;
    r->cap_sym = cap;
    return true;
}

/* Merge one piece: the lowest-ranked adjacent pair first, the leftmost of equal pairs first. */
static void bpe_piece(tok_run *r, const uint8_t *s, size_t n) {
    if (!bpe_scratch(r, n)) {
        r->rc = -1;
        return;
    }
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        r->sym[i] = r->v->byte_tok[s[i]];
        r->prev[i] = (int32_t)i - 1;
        r->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) push_pair(r, &nh, (int32_t)i);
    while (nh) {
        uint64_t top = heap_pop(r->heap, &nh);
        int32_t left = (int32_t)(uint32_t)top, right = r->next[left];
        if (r->sym[left] < 0 || right < 0) continue;
        size_t h = pair_slot(r->v, pair_of(r->sym[left], r->sym[right]));
        if (r->v->pair_rank[h] != (int32_t)(top >> 32)) continue; /* stale: a neighbour changed */
        r->sym[left] = r->v->pair_out[h];
        r->sym[right] = -1;
        r->next[left] = r->next[right];
        if (r->next[right] >= 0) r->prev[r->next[right]] = left;
        push_pair(r, &nh, r->prev[left]);
        push_pair(r, &nh, left);
    }
    for (int32_t i = 0; i >= 0; i = r->next[i]) emit(r, r->sym[i]);
}

/* Long texts repeat their words: remember each short piece's ids. */
static bool cache_get(tok_run *r, const uint8_t *s, size_t n, uint64_t h) {
    bpe_cache *c = &r->cache;
    for (size_t i = h & c->mask; c->key[i]; i = (i + 1) & c->mask) {
        if (c->key[i] == h && c->plen[i] == n && !memcmp(c->text[i], s, n)) {
            for (uint32_t k = 0; k < c->len[i]; k++) emit(r, c->ids[c->at[i] + k]);
            return true;
        }
    }
    return false;
}

static void cache_put(tok_run *r, const uint8_t *s, size_t n, uint64_t h, int64_t first) {
    bpe_cache *c = &r->cache;
    size_t k = (size_t)(r->n - first);
    if (c->used * 4 >= c->mask * 3 || r->n > r->cap) return; /* full, or the ids were not kept */
    if (c->n_ids + k > c->cap_ids) {
        size_t cap = (c->n_ids + k) * 2;
        int32_t *p = realloc(c->ids, cap * sizeof *p);
        if (!p) return;
        c->ids = p;
        c->cap_ids = cap;
    }
    char *t = dup_n((const char *)s, n);
    if (!t) return;
    size_t i = h & c->mask;
    while (c->key[i]) i = (i + 1) & c->mask;
    c->key[i] = h;
    c->text[i] = t;
    c->plen[i] = (uint32_t)n;
    c->at[i] = (uint32_t)c->n_ids;
    c->len[i] = (uint32_t)k;
    memcpy(c->ids + c->n_ids, r->out + first, k * sizeof *c->ids);
    c->n_ids += k;
    c->used++;
}

static void bpe(tok_run *r, const uint8_t *s, size_t n) {
    if (n == 1) {
        emit(r, r->v->byte_tok[s[0]]);
        return;
    }
    int whole = r->v->whole_slot ? whole_lookup(r->v, s, n) : -1;
    if (whole >= 0) {
        emit(r, whole);
        return;
    }
    bool cached = r->cache.key && n <= 64;
    uint64_t h = cached ? hash_bytes(s, n) | 1 : 0;
    if (cached && cache_get(r, s, n, h)) return;
    int64_t first = r->n;
    bpe_piece(r, s, n);
    if (cached) cache_put(r, s, n, h, first);
}

/* Pre-tokenizer step `level` on one piece: matches and the gaps between them go to the next. */
static void split(tok_run *r, int level, const uint8_t *s, size_t n) {
    if (r->rc || !n) return;
    if (level == r->v->n_re) {
        if (r->piece_fn) r->piece_fn((const char *)s, n, r->user);
        else bpe(r, s, n);
        return;
    }
    size_t pos = 0, last = 0;
    while (pos < n) {
        int rc = pcre2_match(r->v->re[level], s, n, pos, PCRE2_NO_UTF_CHECK, r->md, r->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            r->rc = rc;
            return;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
        size_t a = ov[0], b = ov[1];
        split(r, level + 1, s + last, a - last);
        split(r, level + 1, s + a, b - a);
        last = b;
        if (b == a && b >= n) break;
        pos = b > a ? b : b + (size_t)utf8_char(s + b, n - b); /* an empty match moves on */
    }
    split(r, level + 1, s + last, n - last);
}

/* A stretch of text between added tokens: normalized as the tokenizer.json says, then split. */
static void segment(tok_run *r, const uint8_t *s, size_t n) {
    size_t m = n;
    const uint8_t *t = r->v->nfc && n ? nfc(s, n, &r->norm, &m) : s;
    if (!t) r->rc = -1;
    else split(r, 0, t, m);
}

/* The added token starting at s, longest first: its length, or 0. */
static size_t added_at(const ds_vocab *v, const uint8_t *s, size_t n, int32_t *tok) {
    int32_t node = 0;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t ch = v->trie[node].child;
        while (ch >= 0 && v->trie[ch].byte != s[i]) ch = v->trie[ch].sibling;
        if (ch < 0) break;
        node = ch;
        if (v->trie[node].token >= 0) {
            best = i + 1;
            *tok = v->trie[node].token;
        }
    }
    return best;
}

static void run_free(tok_run *r) {
    pcre2_match_data_free(r->md);
    pcre2_match_context_free(r->mctx);
    pcre2_jit_stack_free(r->jit);
    free(r->sym);
    free(r->prev);
    free(r->next);
    free(r->heap);
    free(r->norm.out.p);
    free(r->norm.cp);
    bpe_cache *c = &r->cache;
    for (size_t i = 0; c->key && i <= c->mask; i++)
        if (c->key[i]) free(c->text[i]);
    free(c->key);
    free(c->at);
    free(c->len);
    free(c->plen);
    free(c->text);
    free(c->ids);
}

static bool run_init(tok_run *r, size_t len) {
    r->md = pcre2_match_data_create(1, NULL);
    r->mctx = pcre2_match_context_create(NULL);
    r->jit = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!r->md || !r->mctx || !r->jit) return false;
    pcre2_jit_stack_assign(r->mctx, NULL, r->jit);
    if (len < 4096) return true;
    bpe_cache *c = &r->cache;
    c->mask = (1u << 16) - 1;
    c->key = calloc(c->mask + 1, sizeof *c->key);
    c->at = malloc((c->mask + 1) * sizeof *c->at);
    c->len = malloc((c->mask + 1) * sizeof *c->len);
    c->plen = malloc((c->mask + 1) * sizeof *c->plen);
    c->text = malloc((c->mask + 1) * sizeof *c->text);
    return c->key && c->at && c->len && c->plen && c->text;
}

static ds_status tok_check_utf8(const uint8_t *s, size_t len, char *err, size_t err_size) {
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int k = utf8_char(s + i, len - i);
        if (k <= 0) return fail(DS_ERR_ARG, err, err_size, "text is not valid UTF-8 at byte offset %zu", i);
        i += (size_t)k;
    }
    return DS_OK;
}

/* Shared by ds_tokenize and ds_pretokenize: checks, then added tokens, then the regex steps. */
static ds_status tokenize_run(const ds_model *m, tok_run *r, const char *text, size_t len, int add_bos, char *err,
                              size_t err_size) {
    const ds_vocab *v = m->vocab;
    const uint8_t *s = (const uint8_t *)text;
    if (err && err_size) err[0] = 0;
    if (!v) return fail(DS_ERR_ARG, err, err_size, "%s: the model file has no tokenizer", m->file->path);
    if (v->unusable[0]) return fail(DS_ERR_UNSUPPORTED, err, err_size, "%s", v->unusable);
    if (len > (size_t)INT_MAX - 1)
        return fail(DS_ERR_ARG, err, err_size, "text of %zu bytes is too long to tokenize", len);
    ds_status st = tok_check_utf8(s, len, err, err_size);
    if (st) return st;
    r->v = v;
    if (!run_init(r, r->piece_fn ? 0 : len)) return fail(DS_ERR_NOMEM, err, err_size, "out of memory");
    if (add_bos && v->bos >= 0) emit(r, v->bos);
    size_t seg = 0;
    for (size_t i = 0; i < len && !r->rc;) {
        int32_t tok;
        size_t k = v->trie_first[s[i]] ? added_at(v, s + i, len - i, &tok) : 0;
        if (!k) {
            i++;
            continue;
        }
        segment(r, s + seg, i - seg);
        if (r->piece_fn) r->piece_fn(text + i, k, r->user);
        else emit(r, tok);
        seg = i += k;
    }
    if (!r->rc) segment(r, s + seg, len - seg);
    if (r->rc == -1) return fail(DS_ERR_NOMEM, err, err_size, "out of memory");
    if (r->rc) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(r->rc, msg, sizeof msg);
        return fail(DS_ERR_ARG, err, err_size, "pre-tokenizer regex failed: %s", (const char *)msg);
    }
    return DS_OK;
}

ds_status ds_tokenize(const ds_model *m, const char *text, size_t len, int add_bos, int32_t *out, int cap,
                      int *n_tokens, char *err, size_t err_size) {
    tok_run r = {.out = out, .cap = cap < 0 ? 0 : cap};
    ds_status st = tokenize_run(m, &r, text, len, add_bos, err, err_size);
    run_free(&r);
    *n_tokens = st ? 0 : (int)r.n;
    if (!st && r.n > r.cap)
        st = fail(DS_ERR_SMALL_BUFFER, err, err_size, "the text is %lld tokens; the buffer holds %d", (long long)r.n,
                  cap);
    return st;
}

ds_status ds_pretokenize(const ds_model *m, const char *text, size_t len, void (*fn)(const char *, size_t, void *),
                         void *user, char *err, size_t err_size) {
    tok_run r = {.piece_fn = fn, .user = user};
    ds_status st = tokenize_run(m, &r, text, len, 0, err, err_size);
    run_free(&r);
    return st;
}

/* ---- decoding ---- */

struct ds_detok {
    const ds_vocab *v;
    int skip_special;
    uint8_t pend[4]; /* the start of a character the next token may finish */
    int n_pend;
    byte_buf out;
};

int ds_model_add_bos(const ds_model *m) { return m->vocab && m->vocab->add_bos; }
int ds_model_n_tokens(const ds_model *m) { return m->vocab ? m->vocab->n : 0; }

const char *ds_token_bytes(const ds_model *m, int32_t id, size_t *len) {
    const ds_vocab *v = m->vocab;
    if (!v || id < 0 || id >= v->n || !v->bytes) {
        *len = 0;
        return NULL;
    }
    *len = v->off[id + 1] - v->off[id];
    return v->bytes + v->off[id];
}

int ds_token_is_control(const ds_model *m, int32_t id) {
    const ds_vocab *v = m->vocab;
    return v && id >= 0 && id < v->n && v->type[id] == TOK_CONTROL;
}

int ds_token_is_eog(const ds_model *m, int32_t id) {
    const ds_vocab *v = m->vocab;
    if (!v) return id >= 0 && id == ds_model_eos(m); /* token ids only: the file's EOS key */
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return 1;
    return 0;
}

/* Append bytes to the decoded text: complete characters go out, invalid subparts become
   U+FFFD, an unfinished character waits in pend. */
static void detok_bytes(ds_detok *d, const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        d->pend[d->n_pend++] = s[i];
        while (d->n_pend) {
            int k = utf8_char(d->pend, (size_t)d->n_pend);
            if (k == 0) break;
            size_t used = k > 0 ? (size_t)k : (size_t)-k;
            buf_put(&d->out, k > 0 ? (const void *)d->pend : "\xEF\xBF\xBD", k > 0 ? used : 3);
            d->n_pend -= (int)used;
            memmove(d->pend, d->pend + used, (size_t)d->n_pend);
        }
    }
}

static void detok_token(ds_detok *d, int32_t id) {
    const ds_vocab *v = d->v;
    if (!v || id < 0 || id >= v->n || !v->bytes || (d->skip_special && v->type[id] == TOK_CONTROL)) return;
    detok_bytes(d, (const uint8_t *)v->bytes + v->off[id], v->off[id + 1] - v->off[id]);
}

static void detok_end(ds_detok *d) {
    if (d->n_pend) buf_put(&d->out, "\xEF\xBF\xBD", 3);
    d->n_pend = 0;
}

ds_status ds_detok_new(const ds_model *m, int skip_special, ds_detok **out, char *err, size_t err_size) {
    ds_detok *d = *out = calloc(1, sizeof *d);
    if (!d) return fail(DS_ERR_NOMEM, err, err_size, "detokenizer: out of memory");
    d->v = m->vocab;
    d->skip_special = skip_special;
    return DS_OK;
}

static const char *detok_text(ds_detok *d, size_t *len) {
    buf_put(&d->out, "", 1); /* callers may treat it as a C string */
    *len = d->out.oom ? 0 : d->out.n - 1;
    return d->out.oom ? "" : (const char *)d->out.p;
}

const char *ds_detok_push(ds_detok *d, int32_t id, size_t *len) {
    d->out.n = 0;
    d->out.oom = false;
    detok_token(d, id);
    return detok_text(d, len);
}

const char *ds_detok_flush(ds_detok *d, size_t *len) {
    d->out.n = 0;
    d->out.oom = false;
    detok_end(d);
    return detok_text(d, len);
}

void ds_detok_free(ds_detok *d) {
    if (!d) return;
    free(d->out.p);
    free(d);
}

size_t ds_detokenize(const ds_model *m, const int32_t *ids, int n, int skip_special, char *buf, size_t cap) {
    ds_detok d = {.v = m->vocab, .skip_special = skip_special};
    for (int i = 0; i < n; i++) detok_token(&d, ids[i]);
    detok_end(&d);
    size_t len = d.out.n;
    if (cap) {
        size_t k = len < cap - 1 ? len : cap - 1;
        if (k) memcpy(buf, d.out.p, k);
        buf[k] = 0;
    }
    free(d.out.p);
    return len;
}

static int vocab_size(const ds_vocab *v) { return v->n; }
static int vocab_special(const ds_vocab *v, bool eos) { return eos ? v->eos : v->bos; }
const char *ds_model_chat_template(const ds_model *m) { return m->vocab ? m->vocab->chat_template : NULL; }

/* ========================================================================================== */
/* 10. GGUF: the reader (everything validated before use)                                     */
/* ========================================================================================== */

typedef struct {
    const gguf_file *f;
    size_t pos;
    char *err;
    size_t err_size;
} gguf_cursor;

static ds_status cur_fail(gguf_cursor *c, const char *fmt, ...) {
    char msg[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(DS_ERR_FORMAT, c->err, c->err_size, "%s: offset %zu: %s", c->f->path, c->pos, msg);
}

static ds_status cur_need(gguf_cursor *c, uint64_t n, const char *what) {
    if (n > c->f->size - c->pos)
        return cur_fail(c, "%s needs %llu bytes but the file ends after %zu", what, (unsigned long long)n,
                        c->f->size - c->pos);
    return DS_OK;
}

/* n little-endian bytes into v (the host is little-endian, as GGUF). */
static ds_status cur_read(gguf_cursor *c, void *v, size_t n, const char *what) {
    ds_status s = cur_need(c, n, what);
    if (s) return s;
    memcpy(v, c->f->map + c->pos, n);
    c->pos += n;
    return DS_OK;
}

static ds_status cur_u32(gguf_cursor *c, uint32_t *v, const char *what) { return cur_read(c, v, 4, what); }
static ds_status cur_u64(gguf_cursor *c, uint64_t *v, const char *what) { return cur_read(c, v, 8, what); }

/* A GGUF string: u64 length then bytes. Returns a pointer into the mapping. */
static ds_status cur_str(gguf_cursor *c, const char **p, uint64_t *len, const char *what) {
    ds_status s = cur_u64(c, len, what);
    if (s) return s;
    if ((s = cur_need(c, *len, what))) return s;
    *p = (const char *)c->f->map + c->pos;
    c->pos += *len;
    return DS_OK;
}

static char *dup_n(const char *p, size_t n) {
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

/* Names are used as C strings: refuse embedded NULs and absurd lengths. */
static ds_status cur_name(gguf_cursor *c, char **out, const char *what) {
    const char *p;
    uint64_t n;
    size_t at = c->pos;
    ds_status s = cur_str(c, &p, &n, what);
    if (s) return s;
    if (n == 0 || n > 65535 || memchr(p, 0, n)) {
        c->pos = at;
        return cur_fail(c, "%s has an invalid length (%llu) or a NUL byte", what, (unsigned long long)n);
    }
    if (!(*out = dup_n(p, n))) return fail(DS_ERR_NOMEM, c->err, c->err_size, "out of memory");
    return DS_OK;
}

static ds_status skip_value(gguf_cursor *c, uint32_t type, const char *key) {
    if (type >= GGUF_NTYPES || type == GGUF_ARR) return cur_fail(c, "metadata '%s': unknown value type %u", key, type);
    if (type == GGUF_STR) {
        const char *p;
        uint64_t n;
        return cur_str(c, &p, &n, key);
    }
    ds_status s = cur_need(c, gguf_scalar_size[type], key);
    if (!s) c->pos += gguf_scalar_size[type];
    return s;
}

static ds_status read_kv(gguf_cursor *c, gguf_kv *kv) {
    ds_status s = cur_name(c, &kv->key, "metadata key");
    if (s) return s;
    if ((s = cur_u32(c, &kv->type, kv->key))) return s;
    if (kv->type >= GGUF_NTYPES) return cur_fail(c, "metadata '%s': unknown value type %u", kv->key, kv->type);
    if (kv->type != GGUF_ARR) {
        kv->val = c->f->map + c->pos;
        return skip_value(c, kv->type, kv->key);
    }
    if ((s = cur_u32(c, &kv->arr_type, kv->key))) return s;
    if ((s = cur_u64(c, &kv->n, kv->key))) return s;
    if (kv->arr_type >= GGUF_NTYPES || kv->arr_type == GGUF_ARR)
        return cur_fail(c, "metadata '%s': unsupported array element type %u", kv->key, kv->arr_type);
    kv->val = c->f->map + c->pos;
    if (kv->arr_type != GGUF_STR) {
        /* checked division first: n * size must not overflow */
        if (kv->n > (c->f->size - c->pos) / gguf_scalar_size[kv->arr_type])
            return cur_fail(c, "metadata '%s': array of %llu elements does not fit in the file", kv->key,
                            (unsigned long long)kv->n);
        c->pos += kv->n * gguf_scalar_size[kv->arr_type];
        return DS_OK;
    }
    if (kv->n > (c->f->size - c->pos) / 8)
        return cur_fail(c, "metadata '%s': array of %llu strings does not fit in the file", kv->key,
                        (unsigned long long)kv->n);
    for (uint64_t i = 0; i < kv->n; i++)
        if ((s = skip_value(c, GGUF_STR, kv->key))) return s;
    return DS_OK;
}

static const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    for (size_t i = 0; i < f->n_kv; i++)
        if (!strcmp(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}

static const gguf_tensor *gguf_tensor_find(const gguf_file *f, const char *name) {
    for (size_t i = 0; i < f->n_t; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

static ds_status read_tensor_info(gguf_cursor *c, gguf_tensor *t) {
    ds_status s = cur_name(c, &t->name, "tensor name");
    if (s) return s;
    uint32_t n_dims, type;
    if ((s = cur_u32(c, &n_dims, t->name))) return s;
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return cur_fail(c, "tensor '%s': %u dimensions (1 to %d allowed)", t->name, n_dims, GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne;
        if ((s = cur_u64(c, &ne, t->name))) return s;
        if (ne == 0 || ne > INT64_MAX)
            return cur_fail(c, "tensor '%s': dimension %u is %llu", t->name, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
    }
    if ((s = cur_u32(c, &type, t->name))) return s;
    if (!ds_type_name((ds_type)type)) return cur_fail(c, "tensor '%s': unknown type %u", t->name, type);
    t->type = (ds_type)type;
    if ((s = cur_u64(c, &t->offset, t->name))) return s;
    /* bytes = row size * rows, every step overflow-checked */
    size_t row = ds_type_row_size(t->type, t->ne[0]);
    if (!row)
        return cur_fail(c, "tensor '%s': row of %lld elements is not a whole number of %s blocks", t->name,
                        (long long)t->ne[0], ds_type_name(t->type));
    uint64_t bytes = row;
    for (int d = 1; d < GGUF_MAX_DIMS; d++) {
        if ((uint64_t)t->ne[d] > UINT64_MAX / bytes || bytes * (uint64_t)t->ne[d] > SIZE_MAX / 2)
            return cur_fail(c, "tensor '%s': size overflows", t->name);
        bytes *= (uint64_t)t->ne[d];
    }
    t->size = (size_t)bytes;
    return DS_OK;
}

static int cmp_by_offset(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp((*(const gguf_tensor *const *)a)->name, (*(const gguf_tensor *const *)b)->name);
}

static int cmp_kv_key(const void *a, const void *b) {
    return strcmp((*(const gguf_kv *const *)a)->key, (*(const gguf_kv *const *)b)->key);
}

static ds_status check_duplicate_keys(gguf_file *f, char *err, size_t err_size) {
    if (f->n_kv < 2) return DS_OK;
    const gguf_kv **v = malloc(f->n_kv * sizeof *v);
    if (!v) return fail(DS_ERR_NOMEM, err, err_size, "out of memory");
    for (size_t i = 0; i < f->n_kv; i++) v[i] = &f->kv[i];
    qsort(v, f->n_kv, sizeof *v, cmp_kv_key);
    ds_status s = DS_OK;
    for (size_t i = 1; i < f->n_kv && !s; i++)
        if (!strcmp(v[i]->key, v[i - 1]->key))
            s = fail(DS_ERR_FORMAT, err, err_size, "%s: metadata key '%s' appears twice", f->path, v[i]->key);
    free(v);
    return s;
}

/* Every tensor inside the data section, aligned, not overlapping another, names unique. */
static ds_status check_tensor_layout(gguf_file *f, char *err, size_t err_size) {
    if (!f->n_t) return DS_OK;
    const gguf_tensor **v = malloc(f->n_t * sizeof *v);
    if (!v) return fail(DS_ERR_NOMEM, err, err_size, "out of memory");
    for (size_t i = 0; i < f->n_t; i++) v[i] = &f->t[i];
    ds_status s = DS_OK;
    size_t avail = f->size - f->data_off;
    for (size_t i = 0; i < f->n_t && !s; i++) {
        const gguf_tensor *t = v[i];
        if (t->offset % f->alignment)
            s = fail(DS_ERR_FORMAT, err, err_size,
                     "%s: tensor '%s': data offset %llu is not a multiple of the alignment %zu", f->path, t->name,
                     (unsigned long long)t->offset, f->alignment);
        else if (t->offset > avail || t->size > avail - t->offset)
            s = fail(DS_ERR_FORMAT, err, err_size,
                     "%s: tensor '%s': %zu bytes at data offset %llu lie beyond the end of the file (its data section "
                     "holds %zu bytes)",
                     f->path, t->name, t->size, (unsigned long long)t->offset, avail);
    }
    if (!s) {
        qsort(v, f->n_t, sizeof *v, cmp_by_offset);
        for (size_t i = 1; i < f->n_t && !s; i++)
            if (v[i - 1]->offset + v[i - 1]->size > v[i]->offset)
                s = fail(DS_ERR_FORMAT, err, err_size, "%s: tensors '%s' and '%s' overlap (data offsets %llu and %llu)",
                         f->path, v[i - 1]->name, v[i]->name, (unsigned long long)v[i - 1]->offset,
                         (unsigned long long)v[i]->offset);
    }
    if (!s) {
        qsort(v, f->n_t, sizeof *v, cmp_by_name);
        for (size_t i = 1; i < f->n_t && !s; i++)
            if (!strcmp(v[i - 1]->name, v[i]->name))
                s = fail(DS_ERR_FORMAT, err, err_size, "%s: tensor '%s' appears twice", f->path, v[i]->name);
    }
    free(v);
    return s;
}

static void gguf_close(gguf_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_kv; i++) free(f->kv[i].key);
    for (size_t i = 0; i < f->n_t; i++) free(f->t[i].name);
    free(f->kv);
    free(f->t);
    if (f->in_memory) free(f->map);
    else if (f->map) munmap(f->map, f->size);
    free(f->path);
    free(f);
}

/* The whole file read into memory, for file systems where a mapping could change under us. */
static ds_status gguf_read_in(gguf_file *f, int fd, const char *path, char *err, size_t err_size) {
    void *p = NULL;
    if (posix_memalign(&p, 64, f->size))
        return fail(DS_ERR_NOMEM, err, err_size, "%s: out of memory reading %zu bytes", path, f->size);
    f->map = p;
    f->in_memory = true;
    for (size_t at = 0; at < f->size;) {
        ssize_t n = pread(fd, f->map + at, f->size - at, (off_t)at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return fail(DS_ERR_IO, err, err_size, "%s: read failed at byte %zu: %s", path, at,
                        n < 0 ? strerror(errno) : "the file is shorter than it was");
        at += (size_t)n;
    }
    return DS_OK;
}

static ds_status gguf_map(gguf_file *f, const char *path, bool use_mmap, char *err, size_t err_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(DS_ERR_IO, err, err_size, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    ds_status s = DS_OK;
    if (fstat(fd, &st) != 0) s = fail(DS_ERR_IO, err, err_size, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode)) s = fail(DS_ERR_IO, err, err_size, "%s: not a regular file", path);
    else if (st.st_size < 24)
        s = fail(DS_ERR_FORMAT, err, err_size, "%s: %lld bytes is too small for a GGUF header", path,
                 (long long)st.st_size);
    if (!s) f->size = (size_t)st.st_size;
    if (!s && !use_mmap) s = gguf_read_in(f, fd, path, err, err_size);
    else if (!s) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) s = fail(DS_ERR_IO, err, err_size, "%s: cannot map: %s", path, strerror(errno));
        else f->map = p;
    }
    close(fd);
    return s;
}

static ds_status gguf_parse(gguf_file *f, char *err, size_t err_size) {
    gguf_cursor c = {f, 0, err, err_size};
    uint32_t magic;
    uint64_t n_t, n_kv;
    ds_status s = cur_u32(&c, &magic, "magic");
    if (s) return s;
    if (memcmp(f->map, "GGUF", 4))
        return fail(DS_ERR_FORMAT, err, err_size, "%s: not a GGUF file (bad magic)", f->path);
    if ((s = cur_u32(&c, &f->version, "version"))) return s;
    if (f->version != 2 && f->version != 3)
        return fail(DS_ERR_FORMAT, err, err_size, "%s: GGUF version %u is not supported (2 and 3 are)", f->path,
                    f->version);
    if ((s = cur_u64(&c, &n_t, "tensor count")) || (s = cur_u64(&c, &n_kv, "metadata count"))) return s;
    /* each entry takes at least 8 + 1 + 4 bytes: larger counts cannot be real */
    if (n_kv > (f->size - c.pos) / 13 || n_t > (f->size - c.pos) / 13)
        return cur_fail(&c, "%llu tensors / %llu metadata entries cannot fit in a %zu-byte file",
                        (unsigned long long)n_t, (unsigned long long)n_kv, f->size);
    if (!(f->kv = calloc(n_kv ? n_kv : 1, sizeof *f->kv)) || !(f->t = calloc(n_t ? n_t : 1, sizeof *f->t)))
        return fail(DS_ERR_NOMEM, err, err_size, "out of memory");
    for (; f->n_kv < n_kv; f->n_kv++)
        if ((s = read_kv(&c, &f->kv[f->n_kv]))) {
            f->n_kv++;
            return s;
        }
    if ((s = check_duplicate_keys(f, err, err_size))) return s;
    f->alignment = GGUF_DEFAULT_ALIGN;
    const gguf_kv *al = gguf_find(f, "general.alignment");
    if (al) {
        uint32_t a = 0;
        if (al->type == GGUF_U32) memcpy(&a, al->val, 4);
        if (!a || (a & (a - 1)) || a > (1u << 20))
            return fail(DS_ERR_FORMAT, err, err_size, "%s: general.alignment must be a power of two u32", f->path);
        f->alignment = a;
    }
    for (; f->n_t < n_t; f->n_t++)
        if ((s = read_tensor_info(&c, &f->t[f->n_t]))) {
            f->n_t++;
            return s;
        }
    f->data_off = (c.pos + f->alignment - 1) / f->alignment * f->alignment;
    if (f->data_off > f->size) {
        if (n_t) return cur_fail(&c, "the file ends before its tensor data");
        f->data_off = f->size;
    }
    if ((s = check_tensor_layout(f, err, err_size))) return s;
    for (size_t i = 0; i < f->n_t; i++) f->t[i].data = f->map + f->data_off + f->t[i].offset;
    return DS_OK;
}

static ds_status gguf_open(const char *path, bool use_mmap, gguf_file **out, char *err, size_t err_size) {
    gguf_file *f = calloc(1, sizeof *f);
    *out = NULL;
    if (!f || !(f->path = dup_n(path, strlen(path)))) {
        free(f);
        return fail(DS_ERR_NOMEM, err, err_size, "out of memory");
    }
    ds_status s = gguf_map(f, path, use_mmap, err, err_size);
    if (!s) s = gguf_parse(f, err, err_size);
    if (s) {
        gguf_close(f);
        return s;
    }
    *out = f;
    return DS_OK;
}

/* One integer of any GGUF integer type (or bool); 0 if the type is not an integer, or a u64
   beyond int64. Values are little-endian, as the whole reader assumes. */
static int kv_int_at(uint32_t type, const uint8_t *p, int64_t *v) {
    bool is_signed = type == GGUF_I8 || type == GGUF_I16 || type == GGUF_I32 || type == GGUF_I64;
    bool is_int = is_signed || type == GGUF_U8 || type == GGUF_U16 || type == GGUF_U32 || type == GGUF_U64;
    if (type == GGUF_BOOL) {
        *v = *p != 0;
        return 1;
    }
    if (!is_int) return 0;
    const int bits = 8 * (int)gguf_scalar_size[type];
    uint64_t u = 0;
    memcpy(&u, p, gguf_scalar_size[type]);
    if (is_signed && bits < 64 && (u >> (bits - 1) & 1)) u |= ~(uint64_t)0 << bits; /* sign-extend */
    if (!is_signed && u > INT64_MAX) return 0;
    *v = (int64_t)u;
    return 1;
}

/* An integer key: a scalar of any integer type, or an array whose elements are all equal
   (llama.cpp allows per-layer arrays; this runtime needs them uniform). */
static ds_status meta_int(const gguf_file *f, const char *key, bool required, int64_t lo, int64_t hi, int64_t *v,
                          char *err, size_t err_size) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return required ? fail(DS_ERR_FORMAT, err, err_size, "%s: metadata '%s' is missing", f->path, key) : DS_OK;
    int64_t x = 0;
    bool ok;
    if (kv->type == GGUF_ARR) {
        ok = kv->n > 0 && kv->arr_type != GGUF_STR;
        for (uint64_t i = 0; ok && i < kv->n; i++) {
            int64_t y;
            ok = kv_int_at(kv->arr_type, kv->val + i * gguf_scalar_size[kv->arr_type], &y) && (i == 0 || y == x);
            x = y;
        }
    } else {
        ok = kv_int_at(kv->type, kv->val, &x);
    }
    if (!ok)
        return fail(DS_ERR_FORMAT, err, err_size, "%s: metadata '%s' is not an integer (or a uniform integer array)",
                    f->path, key);
    if (x < lo || x > hi)
        return fail(DS_ERR_FORMAT, err, err_size, "%s: metadata '%s' = %lld is out of range [%lld, %lld]", f->path, key,
                    (long long)x, (long long)lo, (long long)hi);
    *v = x;
    return DS_OK;
}

static ds_status meta_float(const gguf_file *f, const char *key, bool required, float *v, char *err, size_t err_size) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return required ? fail(DS_ERR_FORMAT, err, err_size, "%s: metadata '%s' is missing", f->path, key) : DS_OK;
    int64_t i;
    if (kv->type == GGUF_F32) memcpy(v, kv->val, 4);
    else if (kv->type == GGUF_F64) {
        double d;
        memcpy(&d, kv->val, 8);
        *v = (float)d;
    } else if (kv_int_at(kv->type, kv->val, &i)) *v = (float)i;
    else return fail(DS_ERR_FORMAT, err, err_size, "%s: metadata '%s' is not a number", f->path, key);
    if (!isfinite(*v)) return fail(DS_ERR_FORMAT, err, err_size, "%s: metadata '%s' is not finite", f->path, key);
    return DS_OK;
}

/* A string key copied into buf (truncated to fit); "" when absent. */
static void meta_str(const gguf_file *f, const char *key, char *buf, size_t n) {
    const gguf_kv *kv = gguf_find(f, key);
    buf[0] = 0;
    if (!kv || kv->type != GGUF_STR) return;
    uint64_t len;
    memcpy(&len, kv->val, 8);
    size_t m = len < n - 1 ? (size_t)len : n - 1;
    memcpy(buf, kv->val + 8, m);
    buf[m] = 0;
}

/* ========================================================================================== */
/* 11. GGUF: the writer                                                                       */
/* ========================================================================================== */

static void buf_put(byte_buf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void buf_u32(byte_buf *b, uint32_t v) { buf_put(b, &v, 4); }
static void buf_u64(byte_buf *b, uint64_t v) { buf_put(b, &v, 8); }
static void buf_str(byte_buf *b, const char *s) {
    size_t n = strlen(s);
    buf_u64(b, n);
    buf_put(b, s, n);
}

typedef struct {
    char *key;
    byte_buf val; /* type id and value, serialised */
} writer_kv;

typedef struct {
    char *name;
    ds_type type;
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    size_t size;
    uint64_t offset;
} writer_tensor;

struct ds_gguf_writer {
    writer_kv *kv;
    size_t n_kv, cap_kv;
    writer_tensor *t;
    size_t n_t, cap_t;
    ds_status bad; /* the first failure: an allocation, or an invalid declaration */
    char bad_msg[160];
    FILE *fp;
    char *path;
    size_t next;    /* tensor being written */
    size_t partial; /* bytes of it written so far */
};

ds_status ds_gguf_writer_new(ds_gguf_writer **out, char *err, size_t err_size) {
    *out = calloc(1, sizeof(ds_gguf_writer));
    return *out ? DS_OK : fail(DS_ERR_NOMEM, err, err_size, "gguf writer: out of memory");
}

void ds_gguf_writer_free(ds_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    if (w->fp) fclose(w->fp);
    free(w->path);
    free(w);
}

static void writer_bad(ds_gguf_writer *w, ds_status s, const char *msg, const char *what) {
    if (!w->bad) {
        snprintf(w->bad_msg, sizeof w->bad_msg, "%s: %s", msg, what);
        w->bad = s;
    }
}

/* The setters' status: the first failure so far (it sticks until ds_gguf_writer_begin). */
static ds_status writer_status(ds_gguf_writer *w, const byte_buf *b, const char *key) {
    if (b && b->oom) writer_bad(w, DS_ERR_NOMEM, "out of memory", key);
    return w->bad;
}

static byte_buf *writer_slot(ds_gguf_writer *w, const char *key, uint32_t type) {
    writer_kv *kv = NULL;
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            kv = &w->kv[i];
            kv->val.n = 0;
            break;
        }
    if (!kv) {
        if (w->n_kv == w->cap_kv) {
            size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
            writer_kv *p = realloc(w->kv, cap * sizeof *p);
            if (!p) {
                writer_bad(w, DS_ERR_NOMEM, "out of memory", key);
                return NULL;
            }
            w->kv = p;
            w->cap_kv = cap;
        }
        kv = &w->kv[w->n_kv];
        memset(kv, 0, sizeof *kv);
        if (!(kv->key = dup_n(key, strlen(key)))) {
            writer_bad(w, DS_ERR_NOMEM, "out of memory", key);
            return NULL;
        }
        w->n_kv++;
    }
    buf_u32(&kv->val, type);
    return &kv->val;
}

ds_status ds_gguf_set_str(ds_gguf_writer *w, const char *key, const char *val) {
    byte_buf *b = writer_slot(w, key, GGUF_STR);
    if (b) buf_str(b, val);
    return writer_status(w, b, key);
}
ds_status ds_gguf_set_u32(ds_gguf_writer *w, const char *key, uint32_t val) {
    byte_buf *b = writer_slot(w, key, GGUF_U32);
    if (b) buf_u32(b, val);
    return writer_status(w, b, key);
}
ds_status ds_gguf_set_i32(ds_gguf_writer *w, const char *key, int32_t val) {
    byte_buf *b = writer_slot(w, key, GGUF_I32);
    if (b) buf_put(b, &val, 4);
    return writer_status(w, b, key);
}
ds_status ds_gguf_set_f32(ds_gguf_writer *w, const char *key, float val) {
    byte_buf *b = writer_slot(w, key, GGUF_F32);
    if (b) buf_put(b, &val, 4);
    return writer_status(w, b, key);
}
ds_status ds_gguf_set_bool(ds_gguf_writer *w, const char *key, int val) {
    byte_buf *b = writer_slot(w, key, GGUF_BOOL);
    uint8_t v = val != 0;
    if (b) buf_put(b, &v, 1);
    return writer_status(w, b, key);
}
static byte_buf *writer_arr(ds_gguf_writer *w, const char *key, uint32_t elem, size_t n) {
    byte_buf *b = writer_slot(w, key, GGUF_ARR);
    if (b) {
        buf_u32(b, elem);
        buf_u64(b, n);
    }
    return b;
}
ds_status ds_gguf_set_arr_str(ds_gguf_writer *w, const char *key, const char *const *vals, size_t n) {
    byte_buf *b = writer_arr(w, key, GGUF_STR, n);
    for (size_t i = 0; b && i < n; i++) buf_str(b, vals[i]);
    return writer_status(w, b, key);
}
ds_status ds_gguf_set_arr_i32(ds_gguf_writer *w, const char *key, const int32_t *vals, size_t n) {
    byte_buf *b = writer_arr(w, key, GGUF_I32, n);
    if (b) buf_put(b, vals, n * 4);
    return writer_status(w, b, key);
}
ds_status ds_gguf_set_arr_f32(ds_gguf_writer *w, const char *key, const float *vals, size_t n) {
    byte_buf *b = writer_arr(w, key, GGUF_F32, n);
    if (b) buf_put(b, vals, n * 4);
    return writer_status(w, b, key);
}

ds_status ds_gguf_add_tensor(ds_gguf_writer *w, const char *name, ds_type type, int n_dims, const int64_t *ne) {
    if (w->fp) {
        writer_bad(w, DS_ERR_ARG, "tensor declared after ds_gguf_writer_begin", name);
        return w->bad;
    }
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
        writer_bad(w, DS_ERR_ARG, "bad dimension count", name);
        return w->bad;
    }
    size_t size = ds_type_row_size(type, ne[0]);
    for (int d = 1; d < n_dims && size; d++) {
        if (ne[d] <= 0 || (uint64_t)ne[d] > SIZE_MAX / 2 / size) size = 0;
        else size *= (size_t)ne[d];
    }
    if (!size) {
        writer_bad(w, DS_ERR_ARG, "bad shape or type", name);
        return w->bad;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) {
            writer_bad(w, DS_ERR_ARG, "tensor declared twice", name);
            return w->bad;
        }
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        writer_tensor *p = realloc(w->t, cap * sizeof *p);
        if (!p) {
            writer_bad(w, DS_ERR_NOMEM, "out of memory", name);
            return w->bad;
        }
        w->t = p;
        w->cap_t = cap;
    }
    writer_tensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = dup_n(name, strlen(name)))) {
        writer_bad(w, DS_ERR_NOMEM, "out of memory", name);
        return w->bad;
    }
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < n_dims; d++) t->ne[d] = ne[d];
    t->size = size;
    w->n_t++;
    return w->bad;
}

static size_t writer_alignment(void) { return GGUF_DEFAULT_ALIGN; }

static bool write_pad(FILE *fp, uint64_t pos, size_t align) {
    static const uint8_t zeros[64];
    size_t pad = (size_t)((align - pos % align) % align);
    return fwrite(zeros, 1, pad, fp) == pad;
}

ds_status ds_gguf_writer_begin(ds_gguf_writer *w, const char *path, char *err, size_t err_size) {
    if (w->bad) return fail(w->bad, err, err_size, "%s: %s", path, w->bad_msg);
    if (w->fp) return fail(DS_ERR_ARG, err, err_size, "%s: writer already begun", path);
    byte_buf h = {0};
    buf_put(&h, "GGUF", 4);
    buf_u32(&h, 3);
    buf_u64(&h, w->n_t);
    buf_u64(&h, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        buf_str(&h, w->kv[i].key);
        buf_put(&h, w->kv[i].val.p, w->kv[i].val.n);
        if (w->kv[i].val.oom) h.oom = true;
    }
    uint64_t off = 0;
    size_t align = writer_alignment();
    for (size_t i = 0; i < w->n_t; i++) {
        writer_tensor *t = &w->t[i];
        buf_str(&h, t->name);
        buf_u32(&h, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) buf_u64(&h, (uint64_t)t->ne[d]);
        buf_u32(&h, (uint32_t)t->type);
        buf_u64(&h, off);
        t->offset = off;
        off += (t->size + align - 1) / align * align;
    }
    if (h.oom) {
        free(h.p);
        return fail(DS_ERR_NOMEM, err, err_size, "%s: out of memory", path);
    }
    w->fp = fopen(path, "wb");
    if (!w->fp) {
        free(h.p);
        return fail(DS_ERR_IO, err, err_size, "%s: cannot create: %s", path, strerror(errno));
    }
    bool ok = fwrite(h.p, 1, h.n, w->fp) == h.n && write_pad(w->fp, h.n, align);
    free(h.p);
    if (!(w->path = dup_n(path, strlen(path)))) return fail(DS_ERR_NOMEM, err, err_size, "out of memory");
    if (!ok) return fail(DS_ERR_IO, err, err_size, "%s: write failed: %s", path, strerror(errno));
    return DS_OK;
}

ds_status ds_gguf_writer_write(ds_gguf_writer *w, const void *data, size_t n_bytes, char *err, size_t err_size) {
    const uint8_t *p = data;
    if (!w->fp) return fail(DS_ERR_ARG, err, err_size, "gguf writer: tensor data before ds_gguf_writer_begin");
    while (n_bytes) {
        if (w->next >= w->n_t)
            return fail(DS_ERR_ARG, err, err_size, "%s: more tensor data written than declared", w->path);
        writer_tensor *t = &w->t[w->next];
        size_t take = t->size - w->partial < n_bytes ? t->size - w->partial : n_bytes;
        if (fwrite(p, 1, take, w->fp) != take)
            return fail(DS_ERR_IO, err, err_size, "%s: writing tensor '%s' failed: %s", w->path, t->name,
                        strerror(errno));
        p += take;
        n_bytes -= take;
        if ((w->partial += take) == t->size) {
            if (!write_pad(w->fp, t->size, writer_alignment()))
                return fail(DS_ERR_IO, err, err_size, "%s: writing tensor '%s' failed: %s", w->path, t->name,
                            strerror(errno));
            w->partial = 0;
            w->next++;
        }
    }
    return DS_OK;
}

ds_status ds_gguf_writer_tensor(ds_gguf_writer *w, const void *data, size_t n_bytes, char *err, size_t err_size) {
    if (w->fp && w->next < w->n_t && (w->partial || n_bytes != w->t[w->next].size))
        return fail(DS_ERR_ARG, err, err_size, "%s: tensor '%s': %zu bytes given, %zu expected", w->path,
                    w->t[w->next].name, n_bytes, w->t[w->next].size - w->partial);
    return ds_gguf_writer_write(w, data, n_bytes, err, err_size);
}

ds_status ds_gguf_writer_finish(ds_gguf_writer *w, char *err, size_t err_size) {
    if (!w->fp) return fail(DS_ERR_ARG, err, err_size, "gguf writer: finish before begin");
    if (w->next != w->n_t)
        return fail(DS_ERR_ARG, err, err_size, "%s: %zu of %zu tensors written", w->path, w->next, w->n_t);
    int rc = fclose(w->fp);
    w->fp = NULL;
    if (rc != 0) return fail(DS_ERR_IO, err, err_size, "%s: closing failed: %s", w->path, strerror(errno));
    return DS_OK;
}

/* ========================================================================================== */
/* 12. GGUF: the reading API, for tools that copy or rewrite files                            */
/* ========================================================================================== */

struct ds_gguf {
    gguf_file *f;
};

ds_status ds_gguf_open(const char *path, ds_gguf **out, char *err, size_t err_size) {
    *out = NULL;
    ds_gguf *g = calloc(1, sizeof *g);
    if (!g) return fail(DS_ERR_NOMEM, err, err_size, "out of memory");
    ds_status s = gguf_open(path, true, &g->f, err, err_size);
    if (s) {
        free(g);
        return s;
    }
    *out = g;
    return DS_OK;
}

void ds_gguf_close(ds_gguf *g) {
    if (!g) return;
    gguf_close(g->f);
    free(g);
}

size_t ds_gguf_n_kv(const ds_gguf *g) { return g->f->n_kv; }
const char *ds_gguf_kv_key(const ds_gguf *g, size_t i) { return i < g->f->n_kv ? g->f->kv[i].key : NULL; }

const char *ds_gguf_get_str(const ds_gguf *g, const char *key, size_t *len) {
    const gguf_kv *kv = gguf_find(g->f, key);
    if (!kv || kv->type != GGUF_STR) return NULL;
    uint64_t n;
    memcpy(&n, kv->val, 8);
    *len = (size_t)n;
    return (const char *)kv->val + 8;
}

int ds_gguf_get_int(const ds_gguf *g, const char *key, int64_t *v) {
    const gguf_kv *kv = gguf_find(g->f, key);
    return kv && kv->type != GGUF_ARR && kv_int_at(kv->type, kv->val, v);
}

/* Bytes of one value of a non-array type at p (strings: length and text). */
static size_t value_size(uint32_t type, const uint8_t *p) {
    if (type != GGUF_STR) return gguf_scalar_size[type];
    uint64_t n;
    memcpy(&n, p, 8);
    return 8 + (size_t)n;
}

ds_status ds_gguf_copy_kv(ds_gguf_writer *w, const ds_gguf *g, size_t i) {
    if (i >= g->f->n_kv) {
        writer_bad(w, DS_ERR_ARG, "no such metadata entry in the source file", "ds_gguf_copy_kv");
        return w->bad;
    }
    const gguf_kv *kv = &g->f->kv[i];
    const uint8_t *start = kv->val, *end = kv->val;
    if (kv->type == GGUF_ARR) {
        start -= 12; /* element type and count precede the elements */
        for (uint64_t k = 0; k < kv->n; k++) end += value_size(kv->arr_type, end);
    } else {
        end += value_size(kv->type, end);
    }
    byte_buf *b = writer_slot(w, kv->key, kv->type);
    if (b) buf_put(b, start, (size_t)(end - start));
    return writer_status(w, b, kv->key);
}

size_t ds_gguf_n_tensors(const ds_gguf *g) { return g->f->n_t; }

void ds_gguf_tensor(const ds_gguf *g, size_t i, ds_gguf_tensor_info *info) {
    memset(info, 0, sizeof *info);
    if (i >= g->f->n_t) return;
    const gguf_tensor *t = &g->f->t[i];
    info->name = t->name;
    info->type = t->type;
    info->n_dims = t->n_dims;
    for (int d = 0; d < 4; d++) info->ne[d] = t->ne[d];
    info->data = t->data;
    info->size = t->size;
}
