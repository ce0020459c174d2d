/* scalar.c - the reference kernels, plain C11; the other levels are checked against these. The
   widening of F16 / BF16 rows is quant/'s own. */
#include <string.h>

#include "../deepseek.h"
#include "simd.h"

/* Eight independent partial sums, combined pairwise: the order the vector levels use too. */
#define DOT_BODY(LOAD)                                                \
    float acc[8] = {0};                                               \
    int64_t i = 0;                                                    \
    for (; i + 8 <= n; i += 8)                                        \
        for (int k = 0; k < 8; k++) acc[k] += LOAD(i + k) * x[i + k]; \
    for (; i < n; i++) acc[i & 7] += LOAD(i) * x[i];                  \
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));

static float dot_f32(const void *row, const float *x, int64_t n) {
    const float *w = row;
#define LOAD_F32(j) w[j]
    DOT_BODY(LOAD_F32)
}

static float dot_f16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
#define LOAD_F16(j) ds_fp16_to_fp32(w[j])
    DOT_BODY(LOAD_F16)
}

static float dot_bf16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
#define LOAD_BF16(j) ds_bf16_to_fp32(w[j])
    DOT_BODY(LOAD_BF16)
}

/* The reference for four vectors is four single dots. */
static void dot4_f32(const void *row, const float *const x[4], int64_t n, float out[4]) {
    for (int k = 0; k < 4; k++) out[k] = dot_f32(row, x[k], n);
}
static void dot4_f16(const void *row, const float *const x[4], int64_t n, float out[4]) {
    for (int k = 0; k < 4; k++) out[k] = dot_f16(row, x[k], n);
}
static void dot4_bf16(const void *row, const float *const x[4], int64_t n, float out[4]) {
    for (int k = 0; k < 4; k++) out[k] = dot_bf16(row, x[k], n);
}

static void index_scores(const double *q, const float *w, const uint8_t *keys, size_t stride, int n_keys, int n_head,
                         int64_t n, float *out) {
    for (int j = 0; j < n_keys; j++) out[j] = ds_fp8_index_score(q, w, keys + (size_t)j * stride, n_head, n);
}

static const ds_simd_kernels kernels = {
    DS_SIMD_FLOAT_KERNELS("scalar", ds_quant_f16_to_f32, ds_quant_bf16_to_f32),
    .index_scores = index_scores,
};

const ds_simd_kernels *ds_simd_scalar(void) { return &kernels; }
