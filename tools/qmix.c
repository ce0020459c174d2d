/* qmix.c - llama.cpp's tensor type rules for deepseek2 and deepseek32 GGUFs (and the llama,
   qwen2, qwen3 and deepseek ones of the R1 distills and DeepSeekMoE), and threaded row
   quantizing.

   The rules follow src/llama-quant.cpp of llama.cpp v0.5.0 (the peer in ../shared/peer) branch
   by branch, kept only for the file types this build can write: the mixes of IQ2_XS, IQ2_S,
   IQ3_* and IQ1_M choose types (IQ3_S, IQ2_S, ...) that have no quantizer here, so those file
   types are refused by name instead. Of the architecture-specific branches, Falcon's never
   applies to the architectures here and is left out, and the 70B one (more bits for attn_v)
   applies to 80-layer llama and qwen2 models only (qmix_type_70b); llama.cpp has none for
   deepseek32, whose indexer tensors take the rules their names select (category_of).

   Like tools/quantize.c, this file uses quant/ directly (quant/quant.h: the type table, its
   quantizers, and its scalar widening and dequantizers for the source rows and for checking the
   result) and links libquant for it (meson.build's quant_dep), not libdeepseek, whose symbols
   beyond deepseek.h are no API. */
#include "errmsg.h"
#include "qmix.h"
#include "../quant/quant.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ================================================================== file types */

/* llama_ftype values (llama.h) */
enum {
    FT_F32 = 0,
    FT_F16 = 1,
    FT_Q4_0 = 2,
    FT_Q4_1 = 3,
    FT_Q8_0 = 7,
    FT_Q5_0 = 8,
    FT_Q5_1 = 9,
    FT_Q2_K = 10,
    FT_Q3_K_S = 11,
    FT_Q3_K_M = 12,
    FT_Q3_K_L = 13,
    FT_Q4_K_S = 14,
    FT_Q4_K_M = 15,
    FT_Q5_K_S = 16,
    FT_Q5_K_M = 17,
    FT_Q6_K = 18,
    FT_IQ2_XXS = 19,
    FT_Q2_K_S = 21,
    FT_IQ1_S = 24,
    FT_IQ4_NL = 25,
    FT_IQ4_XS = 30,
    FT_BF16 = 32,
    FT_MXFP4_MOE = 38
};

/* llama-quantize's list, in its order, less the types this build cannot write */
static const qmix_ftype FTYPES[] = {
    {"Q4_0", FT_Q4_0, DS_TYPE_Q4_0, 0},          {"Q4_1", FT_Q4_1, DS_TYPE_Q4_1, 0},
    {"MXFP4_MOE", FT_MXFP4_MOE, DS_TYPE_MXFP4, 0},
    {"Q5_0", FT_Q5_0, DS_TYPE_Q5_0, 0},          {"Q5_1", FT_Q5_1, DS_TYPE_Q5_1, 0},
    {"IQ2_XXS", FT_IQ2_XXS, DS_TYPE_IQ2_XXS, 1}, {"IQ1_S", FT_IQ1_S, DS_TYPE_IQ1_S, 1},
    {"Q2_K", FT_Q2_K, DS_TYPE_Q2_K, 0},          {"Q2_K_S", FT_Q2_K_S, DS_TYPE_Q2_K, 1},
    {"Q3_K_S", FT_Q3_K_S, DS_TYPE_Q3_K, 0},      {"Q3_K_M", FT_Q3_K_M, DS_TYPE_Q3_K, 0},
    {"Q3_K_L", FT_Q3_K_L, DS_TYPE_Q3_K, 0},      {"IQ4_NL", FT_IQ4_NL, DS_TYPE_IQ4_NL, 0},
    {"IQ4_XS", FT_IQ4_XS, DS_TYPE_IQ4_XS, 0},    {"Q4_K_S", FT_Q4_K_S, DS_TYPE_Q4_K, 0},
    {"Q4_K_M", FT_Q4_K_M, DS_TYPE_Q4_K, 0},      {"Q5_K_S", FT_Q5_K_S, DS_TYPE_Q5_K, 0},
    {"Q5_K_M", FT_Q5_K_M, DS_TYPE_Q5_K, 0},      {"Q6_K", FT_Q6_K, DS_TYPE_Q6_K, 0},
    {"Q8_0", FT_Q8_0, DS_TYPE_Q8_0, 0},          {"F16", FT_F16, DS_TYPE_F16, 0},
    {"BF16", FT_BF16, DS_TYPE_BF16, 0},          {"F32", FT_F32, DS_TYPE_F32, 0},
};

static const struct {
    const char *alias, *name;
} ALIASES[] = {{"Q3_K", "Q3_K_M"}, {"Q4_K", "Q4_K_M"}, {"Q5_K", "Q5_K_M"}};

/* llama.cpp file types whose mixes need quantizers this build lacks */
static const char *const UNSUPPORTED[] = {"IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS",   "IQ3_XS", "IQ3_S", "IQ3_M",
                                          "IQ1_M",  "TQ1_0", "TQ2_0", "MXFP4_MOE", "NVFP4",  "Q1_0",  "Q2_0"};

static const qmix_ftype *ftype_by_name(const char *s) {
    for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++) {
        if (strcasecmp(s, ALIASES[i].alias) == 0) s = ALIASES[i].name;
    }
    for (size_t i = 0; i < sizeof FTYPES / sizeof FTYPES[0]; i++) {
        if (strcasecmp(s, FTYPES[i].name) == 0) return &FTYPES[i];
    }
    return NULL;
}

static const qmix_ftype *ftype_by_number(const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end) return NULL;
    for (size_t i = 0; i < sizeof FTYPES / sizeof FTYPES[0]; i++) {
        if ((long)FTYPES[i].ftype == v) return &FTYPES[i];
    }
    return NULL;
}

const qmix_ftype *qmix_find_ftype(const char *s, char *err, size_t err_size) {
    const qmix_ftype *ft = ftype_by_name(s);
    if (!ft) ft = ftype_by_number(s);
    if (ft) return ft;
    for (size_t i = 0; i < sizeof UNSUPPORTED / sizeof UNSUPPORTED[0]; i++) {
        if (strcasecmp(s, UNSUPPORTED[i]) == 0) {
            tool_fail(err, err_size,
                      "'%s' is a llama.cpp file type this build cannot write (its mix needs "
                      "quantizers not implemented here)",
                      s);
            return NULL;
        }
    }
    if (strcasecmp(s, "COPY") == 0)
        tool_fail(err, err_size, "COPY (llama-quantize's unchanged copy) is not offered: copy the file");
    else tool_fail(err, err_size, "unknown file type '%s'", s);
    return NULL;
}

int qmix_is_float(ds_type t) { return t == DS_TYPE_F32 || t == DS_TYPE_F16 || t == DS_TYPE_BF16; }

/* A type rows can be written in: a float type, or a block format with a quantizer (the Q8_K
   activation format has one but is no storage type). */
static int writable(ds_type t) {
    const ds_type_traits *tt = ds_quant_scalar_traits(t);
    return qmix_is_float(t) || (tt && tt->quantize && t != DS_TYPE_Q8_K);
}

int qmix_parse_type(const char *s, ds_type *out, char *err, size_t err_size) {
    for (int t = 0; t < DS_TYPE_COUNT; t++) {
        const char *name = ds_type_name((ds_type)t);
        if (!name || strcasecmp(name, s) != 0) continue;
        if (!writable((ds_type)t)) return tool_fail(err, err_size, "type %s cannot be written by this build", name);
        *out = (ds_type)t;
        return 0;
    }
    return tool_fail(err, err_size, "unknown tensor type '%s'", s);
}

void qmix_print_ftypes(FILE *fp) {
    for (size_t i = 0; i < sizeof FTYPES / sizeof FTYPES[0]; i++) fprintf(fp, "%s%s", i ? " " : "", FTYPES[i].name);
    fputs(" (Q3_K, Q4_K, Q5_K: the _M mixes)\n", fp);
}

/* ================================================================== options */

void qmix_opts_init(qmix_opts *o, const qmix_ftype *ft) {
    memset(o, 0, sizeof *o);
    o->ftype = ft;
    o->output_type = DS_TYPE_COUNT;
    o->embd_type = DS_TYPE_COUNT;
}

int qmix_add_rule2(qmix_opts *o, const char *regex, ds_type type, char *err, size_t err_size) {
    qmix_rule *r = realloc(o->rules, (o->n_rules + 1) * sizeof *r);
    if (!r) return tool_fail(err, err_size, "out of memory");
    o->rules = r;
    int rc = regcomp(&r[o->n_rules].re, regex, REG_EXTENDED | REG_NOSUB | REG_ICASE);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &r[o->n_rules].re, msg, sizeof msg);
        return tool_fail(err, err_size, "bad regular expression '%s': %s", regex, msg);
    }
    r[o->n_rules++].type = type;
    return 0;
}

int qmix_add_rule(qmix_opts *o, const char *spec, char *err, size_t err_size) {
    const char *eq = strrchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) return tool_fail(err, err_size, "need REGEX=TYPE, got '%s'", spec);
    ds_type t;
    if (qmix_parse_type(eq + 1, &t, err, err_size) != 0) return -1;
    size_t n = (size_t)(eq - spec);
    char *re = malloc(n + 1);
    if (!re) return tool_fail(err, err_size, "out of memory");
    memcpy(re, spec, n);
    re[n] = '\0';
    int rc = qmix_add_rule2(o, re, t, err, err_size);
    free(re);
    return rc;
}

void qmix_opts_free(qmix_opts *o) {
    for (size_t i = 0; i < o->n_rules; i++) regfree(&o->rules[i].re);
    free(o->rules);
    o->rules = NULL;
    o->n_rules = 0;
}

/* ================================================================== which tensors quantize */

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int has(const char *s, const char *part) { return strstr(s, part) != NULL; }

/* ggml_n_dims: trailing dimensions of 1 do not count */
static int n_dims(const int64_t ne[4]) {
    int n = 4;
    while (n > 1 && ne[n - 1] == 1) n--;
    return n;
}

/* Names llama.cpp never quantizes: small or index-like tensors of various architectures,
   kept in the list so a file with such a tensor is treated as llama.cpp treats it. */
static const char *const NEVER[] = {"_norm.weight",
                                    "ffn_gate_inp.weight",
                                    "ffn_gate_tid2eid.weight",
                                    "altup",
                                    "laurel",
                                    "per_layer_model_proj",
                                    "ssm_conv1d",
                                    "shortconv.conv.weight",
                                    "indexer.k_proj.weight",
                                    "indexer.q_proj.weight",
                                    "time_mix_first.weight",
                                    "time_mix_w0.weight",
                                    "time_mix_w1.weight",
                                    "time_mix_w2.weight",
                                    "time_mix_v0.weight",
                                    "time_mix_v1.weight",
                                    "time_mix_v2.weight",
                                    "time_mix_a0.weight",
                                    "time_mix_a1.weight",
                                    "time_mix_a2.weight",
                                    "time_mix_g1.weight",
                                    "time_mix_g2.weight",
                                    "time_mix_decay_w1.weight",
                                    "time_mix_decay_w2.weight",
                                    "time_mix_lerp_fused.weight",
                                    "attn_rel_b.weight",
                                    ".position_embd",
                                    "sam.pos_embd",
                                    "sam.neck.",
                                    "sam.net_",
                                    ".rel_pos",
                                    ".patch_embd",
                                    ".patch_merger",
                                    "a.rvq.codebook",
                                    "mm.a.code_embd"};

/* tensor_allows_quantization: 2-D and 3-D weights, minus norms, the router and the above */
static int allows_quant(const qmix_opts *o, const qmix_tensor *t) {
    if (n_dims(t->ne) < 2 || !ends_with(t->name, "weight")) return 0;
    if (o->leave_output && strcmp(t->name, "output.weight") == 0) return 0;
    if (strcmp(t->name, "position_embd.weight") == 0 || strcmp(t->name, "token_types.weight") == 0) return 0;
    for (size_t i = 0; i < sizeof NEVER / sizeof NEVER[0]; i++) {
        if (has(t->name, NEVER[i])) return 0;
    }
    return 1;
}

typedef enum {
    C_TOKEN_EMBD,
    C_ATTN_Q,
    C_ATTN_V,
    C_ATTN_K,
    C_ATTN_QKV,
    C_ATTN_KV_B,
    C_ATTN_OUTPUT,
    C_FFN_UP,
    C_FFN_GATE,
    C_FFN_DOWN,
    C_OUTPUT,
    C_OTHER
} category;

/* tensor_get_category: the first matching substring decides. V3.2's indexer has no category of
   its own in llama.cpp, nor a precision of its own: blk.N.indexer.attn_k.weight holds
   "attn_k.weight" and so is an attention key (Q8_0 in 8-expert models, as attn_k), attn_q_b and
   proj are OTHER and take the file type's base type, and k_norm is a norm, never quantized. */
static category category_of(const char *name) {
    static const struct {
        const char *part;
        category c;
    } BY_PART[] = {{"attn_qkv.weight", C_ATTN_QKV},
                   {"attn_kv_b.weight", C_ATTN_KV_B},
                   {"attn_v.weight", C_ATTN_V},
                   {"attn_k.weight", C_ATTN_K},
                   {"attn_q.weight", C_ATTN_Q},
                   {"attn_output.weight", C_ATTN_OUTPUT},
                   {"ffn_up", C_FFN_UP},
                   {"ffn_gate", C_FFN_GATE},
                   {"ffn_down", C_FFN_DOWN}};
    if (strcmp(name, "output.weight") == 0) return C_OUTPUT;
    if (strcmp(name, "token_embd.weight") == 0 || strcmp(name, "per_layer_token_embd.weight") == 0) return C_TOKEN_EMBD;
    for (size_t i = 0; i < sizeof BY_PART / sizeof BY_PART[0]; i++) {
        if (has(name, BY_PART[i].part)) return BY_PART[i].c;
    }
    return C_OTHER;
}

/* attn_v-like tensors are the most sensitive to quantization */
static int is_attn_v(category c) { return c == C_ATTN_V || c == C_ATTN_QKV || c == C_ATTN_KV_B; }

/* ================================================================== the mix rules */

typedef struct {
    const qmix_opts *o;
    const qmix_model *m;
    int ft;
    int tied; /* no output.weight: token_embd is also the output */
    int n_attn_wv, i_attn_wv, i_ffn_down, i_ffn_gate, i_ffn_up;
    char *err;
    size_t err_size;
} state;

static int block_of(ds_type t) { return ds_quant_scalar_traits(t)->block_size; }

static int more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static int64_t n_gqa(const qmix_model *m) { return m->n_head_kv ? m->n_head / m->n_head_kv : 0; }

/* src/models/llama.cpp and qwen2.cpp's load_arch_hparams (the other architectures here have no
   80-layer case) */
int qmix_type_70b(const char *arch, int64_t n_layer, int64_t n_head, int64_t n_head_kv, int64_t n_expert) {
    if (n_layer != 80) return 0;
    if (strcmp(arch, "llama") == 0) return n_expert != 8 && n_head != n_head_kv;
    return strcmp(arch, "qwen2") == 0;
}

/* The number llama.cpp reads with sscanf(name, "blk.%d.") (spaces and a sign allowed, as %d
   allows them), clamped where %d would overflow; 0 when there is none. */
static int blk_number(const char *name, int *layer) {
    if (strncmp(name, "blk.", 4) != 0) return 0;
    char *end;
    long v = strtol(name + 4, &end, 10);
    if (end == name + 4) return 0;
    *layer = v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
    return 1;
}

/* The layer an FFN rule looks at: with experts, the number in the name, else the running count
   of such tensors. */
static int layer_of(state *s, int counter, const char *name, int *layer) {
    int64_t n = s->m->n_layer_all;
    *layer = counter;
    if (s->m->n_expert <= 1) return 0;
    if (!blk_number(name, layer)) return tool_fail(s->err, s->err_size, "tensor %s: no layer number in its name", name);
    if (*layer < 0 || *layer >= n)
        return tool_fail(s->err, s->err_size, "tensor %s: layer %d is not in [0, %lld)", name, *layer, (long long)n);
    return 0;
}

static int is_iq_low(int ft) { return ft == FT_IQ2_XXS || ft == FT_IQ1_S; }

static ds_type output_rule(state *s, ds_type t, const qmix_tensor *x) {
    if (s->o->output_type != DS_TYPE_COUNT) return s->o->output_type;
    if (s->ft == FT_MXFP4_MOE) return DS_TYPE_Q8_0;
    if (x->ne[0] % block_of(t) != 0) return DS_TYPE_Q8_0;
    if (is_iq_low(s->ft)) return DS_TYPE_Q5_K;
    return t != DS_TYPE_Q8_0 ? DS_TYPE_Q6_K : t;
}

static ds_type iq_low_rule(state *s, ds_type t, category c) {
    if (is_attn_v(c)) {
        t = n_gqa(s->m) >= 4 || s->m->n_expert >= 4 ? DS_TYPE_Q4_K : DS_TYPE_Q2_K;
        s->i_attn_wv++;
    } else if (s->m->n_expert == 8 && c == C_ATTN_K) {
        t = DS_TYPE_Q4_K;
    } else if (c == C_FFN_DOWN) {
        if (s->i_ffn_down < s->m->n_layer_all / 8) t = DS_TYPE_Q2_K;
        s->i_ffn_down++;
    } else if (c == C_ATTN_OUTPUT) {
        if (s->m->n_expert == 8) t = DS_TYPE_Q5_K;
        else if (s->ft == FT_IQ1_S) t = DS_TYPE_IQ2_XXS;
    }
    return t;
}

static ds_type attn_v_rule(state *s, ds_type t) {
    int ft = s->ft, i = s->i_attn_wv, gqa4 = n_gqa(s->m) >= 4;
    if (ft == FT_Q2_K) t = gqa4 ? DS_TYPE_Q4_K : DS_TYPE_Q3_K;
    else if (ft == FT_Q2_K_S && gqa4) t = DS_TYPE_Q4_K;
    else if (ft == FT_Q3_K_M) t = i < 2 ? DS_TYPE_Q5_K : DS_TYPE_Q4_K;
    else if (ft == FT_Q3_K_L) t = DS_TYPE_Q5_K;
    else if ((ft == FT_IQ4_NL || ft == FT_IQ4_XS) && gqa4) t = DS_TYPE_Q5_K;
    else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && more_bits(i, s->n_attn_wv)) t = DS_TYPE_Q6_K;
    else if (ft == FT_Q4_K_S && i < 4) t = DS_TYPE_Q5_K;
    /* llama.cpp: 70B's 8 heads share each attn_v, so a few more bits cost little */
    if (s->o->type_70b && (t == DS_TYPE_Q3_K || t == DS_TYPE_Q4_K)) t = DS_TYPE_Q5_K;
    if (s->m->n_expert == 8) t = DS_TYPE_Q8_0; /* llama.cpp: "trades just ~128MB" for 8-expert models */
    s->i_attn_wv++;
    return t;
}

static int ffn_down_rule(state *s, ds_type *t, const char *name) {
    int ft = s->ft, i, n = (int)s->m->n_layer_all;
    if (layer_of(s, s->i_ffn_down, name, &i) != 0) return -1;
    if (ft == FT_Q2_K) *t = DS_TYPE_Q3_K;
    else if (ft == FT_Q2_K_S && i < n / 8) *t = DS_TYPE_Q4_K;
    else if (ft == FT_Q3_K_M) *t = i < n / 16 ? DS_TYPE_Q5_K : DS_TYPE_Q4_K;
    else if (ft == FT_Q3_K_L) *t = DS_TYPE_Q5_K;
    else if (ft == FT_Q4_K_M && more_bits(i, n)) *t = DS_TYPE_Q6_K;
    else if (i < n / 8 && (ft == FT_IQ4_NL || ft == FT_IQ4_XS) && !s->o->has_imatrix) *t = DS_TYPE_Q5_K;
    else if (ft == FT_Q5_K_M && more_bits(i, n)) *t = DS_TYPE_Q6_K;
    else if (ft == FT_Q4_K_S && i < n / 8) *t = DS_TYPE_Q5_K;
    else if ((ft == FT_Q4_0 || ft == FT_Q5_0) && s->o->has_imatrix && i < n / 8)
        *t = ft == FT_Q4_0 ? DS_TYPE_Q4_1 : DS_TYPE_Q5_1; /* llama.cpp's guard for early layers */
    s->i_ffn_down++;
    return 0;
}

static ds_type attn_output_rule(state *s, ds_type t) {
    int ft = s->ft;
    if (s->m->n_expert == 8) {
        if (ft == FT_Q2_K || ft == FT_Q3_K_S || ft == FT_Q3_K_M || ft == FT_IQ4_NL || ft == FT_Q4_K_S ||
            ft == FT_Q4_K_M || ft == FT_IQ4_XS)
            t = DS_TYPE_Q5_K;
    } else if (ft == FT_Q2_K) {
        t = DS_TYPE_Q3_K;
    } else if (ft == FT_Q3_K_M) {
        t = DS_TYPE_Q4_K;
    } else if (ft == FT_Q3_K_L) {
        t = DS_TYPE_Q5_K;
    }
    return t;
}

static ds_type qkv_rule(int ft, ds_type t) {
    if (ft == FT_Q3_K_M || ft == FT_Q3_K_L) return DS_TYPE_Q4_K;
    if (ft == FT_Q4_K_M) return DS_TYPE_Q5_K;
    return ft == FT_Q5_K_M ? DS_TYPE_Q6_K : t;
}

/* llama_tensor_get_type_impl: the mix's choice for one quantized tensor */
static int mix_rule(state *s, ds_type *t, const qmix_tensor *x, category c) {
    int layer;
    if (c == C_OUTPUT || (s->tied && c == C_TOKEN_EMBD)) *t = output_rule(s, *t, x);
    else if (s->ft == FT_MXFP4_MOE) *t = x->ne[2] > 1 ? DS_TYPE_MXFP4 : DS_TYPE_Q8_0; /* experts; the rest */
    else if (c == C_TOKEN_EMBD) {
        if (s->o->embd_type != DS_TYPE_COUNT) *t = s->o->embd_type;
        else if (is_iq_low(s->ft)) *t = DS_TYPE_Q2_K;
    } else if (is_iq_low(s->ft)) *t = iq_low_rule(s, *t, c);
    else if (is_attn_v(c)) *t = attn_v_rule(s, *t);
    else if (c == C_ATTN_K && s->m->n_expert == 8) *t = DS_TYPE_Q8_0;
    else if (c == C_FFN_DOWN) return ffn_down_rule(s, t, x->name);
    else if (c == C_ATTN_OUTPUT) *t = attn_output_rule(s, *t);
    else if (c == C_ATTN_QKV) *t = qkv_rule(s->ft, *t);
    else if (c == C_FFN_GATE || c == C_FFN_UP) {
        /* no rule of a supported mix uses the layer, but llama.cpp still checks it */
        int *counter = c == C_FFN_GATE ? &s->i_ffn_gate : &s->i_ffn_up;
        if (layer_of(s, *counter, x->name, &layer) != 0) return -1;
        ++*counter;
    }
    return 0;
}

/* tensor_type_fallback: a type whose block does not divide the rows gives way to a 32-wide one,
   and to F16 when even that does not fit */
static ds_type fallback(ds_type t, int64_t ncols) {
    if (ncols % block_of(t) == 0) return t;
    switch (t) {
    case DS_TYPE_IQ1_S:
    case DS_TYPE_IQ1_M:
    case DS_TYPE_IQ2_XXS:
    case DS_TYPE_IQ2_XS:
    case DS_TYPE_IQ2_S:
    case DS_TYPE_IQ3_XXS:
    case DS_TYPE_IQ3_S:
    case DS_TYPE_IQ4_XS: t = DS_TYPE_IQ4_NL; break;
    case DS_TYPE_Q2_K:
    case DS_TYPE_Q3_K:
    case DS_TYPE_TQ1_0:
    case DS_TYPE_TQ2_0: t = DS_TYPE_Q4_0; break;
    case DS_TYPE_Q4_K: t = DS_TYPE_Q5_0; break;
    case DS_TYPE_Q5_K: t = DS_TYPE_Q5_1; break;
    case DS_TYPE_Q6_K: t = DS_TYPE_Q8_0; break;
    default: break; /* a 32-wide type: nothing smaller to fall back to */
    }
    return ncols % block_of(t) == 0 ? t : DS_TYPE_F16;
}

static const qmix_rule *first_rule(const qmix_opts *o, const char *name) {
    for (size_t i = 0; i < o->n_rules; i++) {
        if (regexec(&o->rules[i].re, name, 0, NULL, 0) == 0) return &o->rules[i];
    }
    return NULL;
}

/* llama_tensor_get_type. One deliberate difference: llama.cpp ignores --tensor-type when the
   file type is F32, F16 or BF16; here the rules apply to every file type, so that
   "BF16 --expert-type q4_k" quantizes just the experts. */
static int tensor_type(state *s, const qmix_tensor *x, ds_type *out) {
    const qmix_opts *o = s->o;
    category c = category_of(x->name);
    ds_type t = o->ftype->base;
    if (!allows_quant(o, x)) {
        *out = x->type;
        return 0;
    }
    if (o->embd_type != DS_TYPE_COUNT && c == C_TOKEN_EMBD) {
        *out = o->embd_type;
        return 0;
    }
    if (o->output_type != DS_TYPE_COUNT && c == C_OUTPUT) {
        *out = o->output_type;
        return 0;
    }
    const qmix_rule *r = first_rule(o, x->name);
    if (r) t = r->type;
    else if (qmix_is_float(t)) {
        *out = t;
        return 0;
    } else if (!o->pure && mix_rule(s, &t, x, c) != 0) return -1;
    *out = fallback(t, x->ne[0]);
    return 0;
}

/* ================================================================== order and plan */

/* llama.cpp's weight_name_comparer: layer number (-1 outside blk.N.), then name */
static int layer_key(const char *name) {
    int layer = -1;
    return blk_number(name, &layer) ? layer : -1;
}

static const qmix_tensor *sort_base;

static int cmp_order(const void *a, const void *b) {
    const qmix_tensor *x = &sort_base[*(const size_t *)a], *y = &sort_base[*(const size_t *)b];
    int lx = layer_key(x->name), ly = layer_key(y->name);
    if (lx != ly) return lx < ly ? -1 : 1;
    return strcmp(x->name, y->name);
}

void qmix_order(const qmix_tensor *t, size_t n, size_t *order) {
    for (size_t i = 0; i < n; i++) order[i] = i;
    sort_base = t; /* qsort has no context argument in C11; the tools are single-threaded here */
    qsort(order, n, sizeof *order, cmp_order);
    sort_base = NULL;
}

/* llama.cpp's tensor_requires_imatrix: the lowest-bit types, and Q2_K in a Q2_K_S file */
static int requires_imatrix(const char *name, ds_type t, int ft) {
    if (category_of(name) == C_TOKEN_EMBD || category_of(name) == C_OUTPUT) return 0;
    if (t == DS_TYPE_Q2_K) return ft == FT_Q2_K_S;
    return t == DS_TYPE_IQ3_XXS || t == DS_TYPE_IQ2_XXS || t == DS_TYPE_IQ2_XS || t == DS_TYPE_IQ2_S ||
           t == DS_TYPE_IQ1_M || t == DS_TYPE_IQ1_S;
}

/* Whether rows of x can be turned into type t here. */
static int check_target(const state *s, const qmix_tensor *x, ds_type t) {
    const ds_type_traits *src = ds_quant_scalar_traits(x->type);
    if (t == x->type) return 0;
    if (!writable(t))
        return tool_fail(s->err, s->err_size, "tensor %s: type %s cannot be written by this build", x->name,
                         ds_type_name(t));
    if (x->ne[0] % block_of(t) != 0)
        return tool_fail(s->err, s->err_size, "tensor %s: rows of %lld elements are not a multiple of %s's block of %d",
                         x->name, (long long)x->ne[0], ds_type_name(t), block_of(t));
    if (!src || !src->to_f32)
        return tool_fail(s->err, s->err_size, "tensor %s: cannot convert from type %s", x->name,
                         ds_type_name(x->type) ? ds_type_name(x->type) : "?");
    if (!qmix_is_float(x->type) && !s->o->allow_requantize)
        return tool_fail(s->err, s->err_size, "tensor %s is already %s: requantizing it to %s needs --allow-requantize",
                         x->name, ds_type_name(x->type), ds_type_name(t));
    if (ds_quant_scalar_traits(t)->needs_imatrix && !s->o->has_imatrix)
        return tool_fail(s->err, s->err_size, "tensor %s: type %s needs an importance matrix (--imatrix FILE)", x->name,
                         ds_type_name(t));
    return 0;
}

static void init_state(state *s, const qmix_opts *o, const qmix_model *m, const qmix_tensor *t, size_t n, char *err,
                       size_t err_size) {
    memset(s, 0, sizeof *s);
    s->o = o;
    s->m = m;
    s->ft = (int)o->ftype->ftype;
    s->err = err;
    s->err_size = err_size;
    s->tied = 1;
    for (size_t i = 0; i < n; i++) {
        category c = category_of(t[i].name);
        s->n_attn_wv += is_attn_v(c);
        if (c == C_OUTPUT) s->tied = 0;
    }
}

int qmix_plan(const qmix_opts *o, const qmix_model *m, const qmix_tensor *t, size_t n, size_t *order, ds_type *types,
              char *err, size_t err_size) {
    state s;
    init_state(&s, o, m, t, n, err, err_size);
    qmix_order(t, n, order);
    for (size_t k = 0; k < n; k++) {
        const qmix_tensor *x = &t[order[k]];
        ds_type *ty = &types[order[k]];
        if (tensor_type(&s, x, ty) != 0) return -1;
        if (allows_quant(o, x) && !o->has_imatrix && requires_imatrix(x->name, *ty, s.ft))
            return tool_fail(err, err_size, "tensor %s: %s in file type %s needs an importance matrix (--imatrix FILE)",
                             x->name, ds_type_name(*ty), o->ftype->name);
        if (check_target(&s, x, *ty) != 0) return -1;
    }
    return 0;
}

/* ================================================================== rows, in threads */

typedef struct {
    const qmix_job *job;
    pthread_mutex_t mu;
    int64_t next, chunk;
    int64_t bad; /* first bad row, INT64_MAX while none */
    int oom;
} work;

static int finite_row(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return 0;
    }
    return 1;
}

/* One row: widen, convert, and widen the result again to check it as ggml_validate_row_data
   does (a non-finite scale or value shows up as a non-finite float). */
static int convert_row(const qmix_job *j, int64_t r, float *wide, float *back) {
    int64_t n = j->n_per_row;
    const ds_type_traits *st = ds_quant_scalar_traits(j->src_type), *dt = ds_quant_scalar_traits(j->dst_type);
    const unsigned char *src = (const unsigned char *)j->src + (size_t)r * ds_type_row_size(j->src_type, n);
    unsigned char *dst = (unsigned char *)j->dst + (size_t)r * ds_type_row_size(j->dst_type, n);
    const float *x = wide;
    if (j->src_type == DS_TYPE_F32) x = (const float *)(const void *)src;
    else st->to_f32(src, wide, n);
    if (j->dst_type == DS_TYPE_F32) {
        memcpy(dst, x, (size_t)n * sizeof(float));
        return finite_row(x, n);
    }
    if (j->dst_type == DS_TYPE_F16 || j->dst_type == DS_TYPE_BF16) {
        int f16 = j->dst_type == DS_TYPE_F16;
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = f16 ? ds_fp32_to_fp16(x[i]) : ds_fp32_to_bf16(x[i]);
            memcpy(dst + 2 * i, &h, 2);
        }
    } else {
        const float *im = j->imatrix ? j->imatrix + ((j->row0 + r) / j->rows_per_expert) * n : NULL;
        if (dt->quantize(x, dst, n, im) == 0) return 0;
    }
    dt->to_f32(dst, back, n);
    return finite_row(back, n);
}

static void *worker(void *arg) {
    work *w = arg;
    const qmix_job *j = w->job;
    float *wide = malloc((size_t)j->n_per_row * sizeof(float));
    float *back = malloc((size_t)j->n_per_row * sizeof(float));
    for (int stop = !wide || !back; !stop;) {
        pthread_mutex_lock(&w->mu);
        int64_t r0 = w->next, take = j->nrows - r0 < w->chunk ? j->nrows - r0 : w->chunk;
        stop = take <= 0 || w->bad != INT64_MAX;
        w->next += stop ? 0 : take;
        pthread_mutex_unlock(&w->mu);
        for (int64_t r = r0; !stop && r < r0 + take; r++) {
            if (convert_row(j, r, wide, back)) continue;
            pthread_mutex_lock(&w->mu);
            w->bad = r < w->bad ? r : w->bad;
            pthread_mutex_unlock(&w->mu);
            break;
        }
    }
    if (!wide || !back) {
        pthread_mutex_lock(&w->mu);
        w->oom = 1;
        pthread_mutex_unlock(&w->mu);
    }
    free(wide);
    free(back);
    return NULL;
}

int qmix_convert_rows(const qmix_job *job, int64_t *bad_row) {
    /* chunks of at least 16 K elements, as llama.cpp hands out work */
    work w = {job, PTHREAD_MUTEX_INITIALIZER, 0, 0, INT64_MAX, 0};
    w.chunk = job->n_per_row >= 16384 ? 1 : (16384 + job->n_per_row - 1) / job->n_per_row;
    int64_t chunks = (job->nrows + w.chunk - 1) / w.chunk;
    int n = job->n_threads < 1 ? 1 : job->n_threads;
    n = chunks < n ? (int)chunks : n;
    pthread_t tid[256];
    int started = 0;
    for (; n > 1 && started < n - 1 && started < 256; started++) {
        if (pthread_create(&tid[started], NULL, worker, &w) != 0) break; /* fewer threads only means slower */
    }
    worker(&w);
    for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
    pthread_mutex_destroy(&w.mu);
    *bad_row = w.bad == INT64_MAX ? -1 : w.bad;
    if (w.oom) return -2;
    return w.bad == INT64_MAX ? 0 : -1;
}
