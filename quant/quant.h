/* quant.h - tensor storage formats: ggml's type table with the scalar reference kernels.

   The bottom layer: nothing here includes simd/ or the core. Every ggml type is listed with its
   sizes, so that files holding any of them validate. ggml's block formats with kernels
   (quant/q_*.c) have them in scalar C, with ggml's exact layout and arithmetic (quant_impl.h):
   dequantization that gives ggml's floats bit for bit, ggml's quantizers (the bytes of
   llama.cpp's files), and ggml's dot product of a weight row with an activation row in the
   format ggml pairs it with (vec_dot_type: Q8_0, Q8_1 or Q8_K, made by from_f32). The float
   formats (F32, F16, BF16) are widened here with the F16 / BF16 conversions (deepseek.h's,
   defined in quant.c); their dot products belong to simd/.

   The table the core computes with is this one with a SIMD level's kernels laid over it
   (ds_simd_compose, simd/simd.h), built once in deepseek.c. Besides the core, simd/ and the
   kernel tests, this header is used by the quantizer (tools/quantize.c, tools/qmix.c) and the
   kernel benchmark (tools/bench_kernels.c): they link libquant themselves (meson.build's
   quant_dep, and kernels_dep for the SIMD levels too) instead of using libdeepseek's internal
   symbols. Every kernel takes n, the row length, as a multiple of block_size. */
#ifndef DS_QUANT_H
#define DS_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../deepseek.h"

typedef struct {
    const char *name;
    int block_size;   /* elements per block (1 for plain types) */
    size_t type_size; /* bytes per block */
    /* dot(row, x) over n elements: the float formats' only, and only in a composed table
       (ds_simd_compose); NULL in this one and for every block format, which computes through
       vec_dot */
    float (*dot_f32)(const void *row, const float *x, int64_t n);
    /* the same for four vectors, reading the row once; bit-identical to four dot_f32 */
    void (*dot4_f32)(const void *row, const float *const x[4], int64_t n, float out[4]);
    /* row widened to float32 (block formats: ggml's dequantize_row_*); NULL for the formats
       without kernels */
    void (*to_f32)(const void *row, float *out, int64_t n);

    /* The block formats' kernels; NULL where a format has none. */
    /* x[n] as one row of this type, as ggml_quantize_chunk writes it: imatrix holds n importance
       weights, or is NULL for ggml's reference quantizer. Returns the bytes written, 0 when the
       format needs an importance matrix (needs_imatrix) and has none. */
    size_t (*quantize)(const float *x, void *row, int64_t n, const float *imatrix);
    bool needs_imatrix;
    /* activation formats (Q8_0, Q8_1, Q8_K): x[n] as ggml's x86 CPU code quantizes an
       activation row (Q8_0 / Q8_1: 127 / amax, ties to even; quantize() keeps the reference
       rounding of weights) */
    void (*from_f32)(const float *x, void *row, int64_t n);
    /* dot(row, act) over n elements, act a row of vec_dot_type; ggml's generic vec_dot */
    float (*vec_dot)(const void *row, const void *act, int64_t n);
    /* four activation rows, reading the weight row once; out[k] is what vec_dot gives. NULL in
       this table (the reference for four is four vec_dots) */
    void (*vec_dot4)(const void *row, const void *const act[4], int64_t n, float out[4]);
    ds_type vec_dot_type;
} ds_type_traits;

/* F16 and BF16 rows widened to float32 by ds_fp16_to_fp32 / ds_bf16_to_fp32: this table's to_f32
   of those formats, and simd/'s scalar level's widening. */
void ds_quant_f16_to_f32(const void *row, float *out, int64_t n);
void ds_quant_bf16_to_f32(const void *row, float *out, int64_t n);

/* Traits of type t with the scalar reference kernels, or NULL for ids ggml does not define:
   what every SIMD kernel is tested against, and what ds_simd_compose starts from. */
const ds_type_traits *ds_quant_scalar_traits(ds_type t);

/* FP8 e4m3fn (quant/fp8.c), as DeepSeek-V3.2's lightning indexer uses it. Conversions: to_f32
   exact; from_f32 rounds to nearest even and saturates at +-448. */
float ds_fp8_e4m3_to_f32(uint8_t b);
uint8_t ds_fp8_e4m3_from_f32(float f);
/* One block of n values as FP8 codes with the scale 2^ceil(log2(amax / 448)) (amax at least
   1e-4), returned: x[i] ~ codes[i] x scale (the official act_quant, scale_fmt "ue8m0"). */
float ds_fp8_quant_block(const float *x, int64_t n, uint8_t *codes);
/* The indexer's score of one key before its scale: sum over heads h (in order, float32) of
   w[h] x relu(q[h] . k), q[h] n FP8 values held as doubles, k n FP8 codes; each dot product
   exact, rounded once to float32. n <= DS_FP8_INDEX_MAX. The scalar reference of
   ds_simd_kernels.index_scores. */
#define DS_FP8_INDEX_MAX 1024
float ds_fp8_index_score(const double *q, const float *w, const uint8_t *k, int n_head, int64_t n);

#endif
