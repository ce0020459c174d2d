/* quant_impl.h - what the block-format files share (internal to the library): ggml's block
   layouts, its rounding helpers, and the scale searches of its quantizers.

   Layouts are ggml's byte for byte (ggml-common.h), so a GGUF tensor is an array of these
   structs. Halves are IEEE F16 bit patterns. The quantizers reproduce ggml's arithmetic
   operation by operation, in float32 and in ggml's order, because their output bytes must equal
   llama.cpp's: a reordered sum or a fused multiply-add changes a rounding and, now and then, a
   chosen quant (these files are compiled with -ffp-contract=off for that reason). */
#ifndef DS_QUANT_IMPL_H
#define DS_QUANT_IMPL_H

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "quant.h"

#define QK 32    /* elements per block of the legacy formats (Q4_0 ... Q8_1) */
#define QK_K 256 /* elements per super-block of the K and IQ formats */

/* ggml's layouts, one line each */
/* clang-format off */
typedef struct { uint16_t d; uint8_t qs[QK / 2]; } block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[QK / 2]; } block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_1;
typedef struct { uint16_t d; int8_t qs[QK]; } block_q8_0;
typedef struct { uint16_t d, s; int8_t qs[QK]; } block_q8_1; /* s = d * sum(qs) */

typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; } block_q2_K;
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; } block_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;

typedef struct { uint16_t d; uint16_t qs[QK_K / 8]; } block_iq2_xxs;
typedef struct { uint16_t d; uint8_t qs[QK_K / 8]; uint16_t qh[QK_K / 32]; } block_iq1_s;
typedef struct { uint16_t d; uint8_t qs[QK / 2]; } block_iq4_nl;
typedef struct { uint8_t e; uint8_t qs[QK / 2]; } block_mxfp4; /* e: E8M0, a power of two */
typedef struct { uint16_t d; uint16_t scales_h; uint8_t scales_l[QK_K / 64]; uint8_t qs[QK_K / 2]; } block_iq4_xs;

/* clang-format on */
static_assert(sizeof(block_q4_0) == 18, "Q4_0 block");
static_assert(sizeof(block_q4_1) == 20, "Q4_1 block");
static_assert(sizeof(block_q5_0) == 22, "Q5_0 block");
static_assert(sizeof(block_q5_1) == 24, "Q5_1 block");
static_assert(sizeof(block_q8_0) == 34, "Q8_0 block");
static_assert(sizeof(block_q8_1) == 36, "Q8_1 block");
static_assert(sizeof(block_q2_K) == 84, "Q2_K block");
static_assert(sizeof(block_q3_K) == 110, "Q3_K block");
static_assert(sizeof(block_q4_K) == 144, "Q4_K block");
static_assert(sizeof(block_q5_K) == 176, "Q5_K block");
static_assert(sizeof(block_q6_K) == 210, "Q6_K block");
static_assert(sizeof(block_q8_K) == 292, "Q8_K block");
static_assert(sizeof(block_iq2_xxs) == 66, "IQ2_XXS block");
static_assert(sizeof(block_iq1_s) == 50, "IQ1_S block");
static_assert(sizeof(block_iq4_nl) == 18, "IQ4_NL block");
static_assert(sizeof(block_mxfp4) == 17, "MXFP4 block");
static_assert(sizeof(block_iq4_xs) == 136, "IQ4_XS block");

/* Each file fills its formats' entries of the type table. */
void ds_quant_init_legacy(ds_type_traits *traits);
void ds_quant_init_k(ds_type_traits *traits);
void ds_quant_init_iq(ds_type_traits *traits);

static inline float f16(uint16_t h) { return ds_fp16_to_fp32(h); }
static inline uint16_t to_f16(float f) { return ds_fp32_to_fp16(f); }

/* MXFP4's scale, E8M0 (2^(e - 127)), halved: its levels are the FP4 values doubled (ggml's
   ggml_e8m0_to_fp32_half, bit for bit: e 0 and 1 are the subnormals 2^-128 and 2^-127). */
static inline float e8m0_half(uint8_t e) {
    uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ggml's nearest_int: round half to even through the float adder (valid for |x| < 2^22; what
   it returns beyond that, e.g. for an infinite scale, is part of ggml's output too). */
static inline int nearest_int(float x) {
    float v = x + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* The low byte of v as a signed byte: what a store of an int into an int8_t field keeps. */
static inline int8_t low_i8(int v) { return (int8_t)(((v & 0xff) ^ 0x80) - 0x80); }

/* (int8_t)x for a float as x86-64 computes it (truncate to int32, keep the low byte; out of
   range gives 0x80000000): ggml's legacy quantizers convert this way, and C leaves it undefined. */
static inline int8_t trunc_i8(float x) {
    int32_t i = (x > -2147483648.f && x < 2147483648.f) ? (int32_t)x : INT32_MIN;
    return low_i8(i);
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* ggml's scale searches (ggml-quants.c, same names without the ds_ prefix); see q_search.c. */
float ds_make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *qw);
float ds_make_qkx_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                         uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad);
float ds_make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *qw);

#endif
