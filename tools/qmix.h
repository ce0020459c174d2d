/* qmix.h - which type each tensor of a quantized GGUF (deepseek2, deepseek32, qwen2, llama,
   qwen3, deepseek) gets, and the row quantizing that deepseek-quantize and deepseek-convert share.

   The rules are llama.cpp's (src/llama-quant.cpp: tensor_allows_quantization,
   llama_tensor_get_type and its mix rules, tensor_type_fallback) for these models, so a
   file made here has the types, and with ggml-exact quantizers the bytes, that llama-quantize
   gives. Some rules count tensors as they go (attn_v-like tensors, ffn_down in the IQ mixes), so
   types are chosen over the whole tensor list at once, in the order llama.cpp visits and writes
   tensors: by layer, then by name. */
#ifndef DS_TOOLS_QMIX_H
#define DS_TOOLS_QMIX_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "deepseek.h"

/* A file type: llama.cpp's name and llama_ftype (written as general.file_type), the type its
   tensors get before the mix rules, and whether llama.cpp makes it only with an importance
   matrix. */
typedef struct {
    const char *name;
    uint32_t ftype;
    ds_type base;
    int needs_imatrix;
} qmix_ftype;

/* The file type named s (llama.cpp's names and aliases, any case, or its llama_ftype number).
   NULL with a message in err when unknown or not supported here. */
const qmix_ftype *qmix_find_ftype(const char *s, char *err, size_t err_size);
/* Whether t is a float type (F32, F16, BF16): such a file type has no mix. */
int qmix_is_float(ds_type t);
/* A tensor type by ggml's name, any case ("q8_0", "Q4_K", "bf16"); 0, or -1 with a message
   when unknown or not a type this build can write. */
int qmix_parse_type(const char *s, ds_type *out, char *err, size_t err_size);
/* The supported file types, for a usage text. */
void qmix_print_ftypes(FILE *fp);

typedef struct {
    regex_t re;
    ds_type type;
} qmix_rule;

typedef struct {
    const qmix_ftype *ftype;
    int pure;             /* no mix: every quantized tensor gets the base type */
    int has_imatrix;      /* some rules differ when there is an importance matrix */
    int leave_output;     /* output.weight keeps its type */
    int allow_requantize; /* quantized tensors may be widened and quantized again */
    ds_type output_type;  /* DS_TYPE_COUNT: the mix decides */
    ds_type embd_type;    /* likewise for token_embd.weight */
    qmix_rule *rules;     /* name regex -> type; first match wins */
    size_t n_rules;
} qmix_opts;

void qmix_opts_init(qmix_opts *o, const qmix_ftype *ft);
/* Add "REGEX=TYPE" (POSIX extended, matched anywhere in the name, case-insensitively as
   llama.cpp lowercases its patterns); 0, or -1 with a message. */
int qmix_add_rule(qmix_opts *o, const char *spec, char *err, size_t err_size);
/* The same with the regex and type given apart. */
int qmix_add_rule2(qmix_opts *o, const char *regex, ds_type type, char *err, size_t err_size);
void qmix_opts_free(qmix_opts *o);

/* What the rules read of the model's hyper-parameters. */
typedef struct {
    int64_t n_expert;    /* <arch>.expert_count (0 for a dense model) */
    int64_t n_head;      /* attention.head_count */
    int64_t n_head_kv;   /* attention.head_count_kv: 1 with split MLA, n_head for attn_kv_b */
    int64_t n_layer_all; /* block_count, MTP layers included */
    int type_70b;        /* llama.cpp's LLM_TYPE_70B, whose attn_v gets more bits (qmix_is_70b) */
} qmix_model;

/* Whether llama.cpp's loader types a model of this architecture (general.architecture) and
   these sizes LLM_TYPE_70B: Llama 2/3 70B (80 layers, grouped-query attention) and Qwen2 72B. */
int qmix_is_70b(const char *arch, int64_t n_layer, int64_t n_head, int64_t n_head_kv);

typedef struct {
    const char *name;
    ds_type type; /* the type it has now (F32 for a tensor the converter produces) */
    int64_t ne[4];
} qmix_tensor;

/* Chooses every tensor's type. order receives the indices of t in the order to write them
   (llama.cpp's); types[i] the type of t[i]. Fails, with a message, where llama.cpp would: a
   type that needs an importance matrix without one, a shape no type fits, a bad layer number;
   and where this build cannot write the type chosen. */
int qmix_plan(const qmix_opts *o, const qmix_model *m, const qmix_tensor *t, size_t n, size_t *order, ds_type *types,
              char *err, size_t err_size);
/* The order alone (no types): by layer number, then by name. */
void qmix_order(const qmix_tensor *t, size_t n, size_t *order);

/* Rows of a tensor to write in another type. Source rows are in type src_type (F32, F16, BF16
   or a block type with a dequantizer) at src; nrows rows of n_per_row go to dst as rows of
   dst_type, as ggml_quantize_chunk writes them. imatrix: NULL, or n_per_row weights per expert,
   expert e = (row0 + r) / rows_per_expert for row r. Every row is checked as llama.cpp checks it
   (ggml_validate_row_data: no inf or NaN once widened again). Returns 0, or -1 and the first
   bad row (counted from 0 in this call) in *bad_row. */
typedef struct {
    ds_type src_type, dst_type;
    const void *src;
    void *dst;
    int64_t nrows, n_per_row;
    const float *imatrix;
    int64_t row0, rows_per_expert;
    int n_threads;
} qmix_job;

int qmix_convert_rows(const qmix_job *job, int64_t *bad_row);

#endif
