/* fp8.c - FP8 e4m3fn as DeepSeek-V3.2's lightning indexer uses it: activations rounded to FP8
   in blocks of 128 with a power-of-two scale (the official code's act_quant with scale_fmt
   "ue8m0"), and the index score's products of FP8 values summed exactly.

   e4m3fn: 1 sign, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 is subnormal
   (m x 2^-9), no infinities, S.1111.111 is NaN, the largest finite magnitude is 448. */
#include <math.h>

#include "quant.h"

float ds_fp8_e4m3_to_f32(uint8_t b) {
    const int e = (b >> 3) & 15, m = b & 7;
    float v = e ? ldexpf((float)(8 + m), e - 10) : ldexpf((float)m, -9);
    if (e == 15 && m == 7) v = NAN;
    return b & 0x80 ? -v : v;
}

/* Round to nearest, ties to even, saturating at 448: every step is a scaling by a power of two
   or rintf (the default rounding mode rounds half to even), so nothing else rounds. */
uint8_t ds_fp8_e4m3_from_f32(float f) {
    const uint8_t sign = signbit(f) ? 0x80 : 0;
    float a = fabsf(f);
    if (isnan(f)) return sign | 0x7f;
    if (a >= 448.0f) return sign | 0x7e;
    if (a < 0x1p-6f) return sign | (uint8_t)rintf(a * 0x1p9f); /* subnormal; 8 is 2^-6, code 8 */
    int e;
    frexpf(a, &e);                            /* a = f x 2^e, f in [0.5, 1): the leading bit has weight 2^(e - 1) */
    int m = (int)rintf(ldexpf(a, 4 - e)) - 8; /* 3 bits below the leading one */
    if (m == 8) {
        m = 0;
        e++;
    }
    if (e + 6 > 15 || (e + 6 == 15 && m == 7)) return sign | 0x7e;
    return sign | (uint8_t)((e + 6) << 3 | m);
}

/* The scale 2^ceil(log2(amax / 448)), taken from the float32 bits of amax x float32(1/448) as
   the official fast_round_scale does: the exponent, plus one unless the mantissa is zero. */
static float pow2_scale(float amax) {
    union {
        float f;
        uint32_t u;
    } v = {amax * (1.0f / 448.0f)};
    int e = (int)((v.u >> 23) & 0xff) - 127 + ((v.u & 0x7fffff) != 0);
    return ldexpf(1.0f, e);
}

float ds_fp8_quant_block(const float *x, int64_t n, uint8_t *codes) {
    float amax = 1e-4f;
    for (int64_t i = 0; i < n; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    const float s = pow2_scale(amax);
    for (int64_t i = 0; i < n; i++) codes[i] = ds_fp8_e4m3_from_f32(x[i] / s);
    return s;
}

/* Every e4m3 value is a multiple of 2^-9 below 2^9, so each product is a multiple of 2^-18
   below 2^18, and a sum of up to 2^17 of them needs at most 53 bits: a double holds every
   partial sum exactly, in any order, and the one rounding is the final conversion to float.
   So every SIMD twin of this kernel gives the same bits. */
float ds_fp8_index_score(const double *q, const float *w, const uint8_t *k, int n_head, int64_t n) {
    double kd[DS_FP8_INDEX_MAX];
    for (int64_t i = 0; i < n; i++) kd[i] = ds_fp8_e4m3_to_f32(k[i]);
    float score = 0;
    for (int h = 0; h < n_head; h++) {
        const double *qh = q + (size_t)h * (size_t)n;
        double dot = 0;
        for (int64_t i = 0; i < n; i++) dot += qh[i] * kd[i];
        float d = (float)dot;
        score += (d > 0 ? d : 0.0f) * w[h];
    }
    return score;
}
