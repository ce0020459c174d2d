/* x86_dequant.h - the block formats' dequantizers (the dequant slot of ds_simd_kernels), AVX2
   code included by every x86 level's block-kernel file (x86_avx2_quant.c, x86_avx512_quant.c).

   Each must give the scalar to_f32's floats bit for bit (quant/q_*.c), so it does the scalar
   code's float operations in its order: the per-block scales are the same scalar expressions,
   each element is converted from its integer quant and then multiplied (and offset) exactly as
   the scalar code writes it. No fused multiply-adds: these files are compiled with
   -ffp-contract=off. Only the unpacking of quants is vectorized. */
#ifndef DS_X86_DEQUANT_H
#define DS_X86_DEQUANT_H

#include "x86_quant.h"

#define IQ1S_DELTA 0.125f /* q_iq.c's */

/* 32 int8 quants as four vectors of 8 floats, in order. */
INLINE void dq_widen(__m256i q, __m256 f[4]) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    f[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
    f[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(lo, lo)));
    f[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
    f[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(hi, hi)));
}

/* Low nibbles of 16 bytes then their high nibbles: the legacy formats' order of 32 quants. */
INLINE __m256i dq_nibbles(const uint8_t *qs) {
    const __m128i v = load128(qs), m = _mm_set1_epi8(0xf);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

/* Byte j of the result is 0xff where bit j of bits is set. */
INLINE __m256i dq_bits(uint32_t bits) {
    const __m256i spread =
        _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                            _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll, 0x0101010101010101ll, 0));
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, sel), sel);
}

/* Per 32 quants qs[j] * d, with the quants as the scalar code converts them. */
INLINE void dq_mul(float *y, __m256i q, __m256 d) {
    __m256 f[4];
    dq_widen(q, f);
    for (int g = 0; g < 4; g++) _mm256_storeu_ps(y + 8 * g, _mm256_mul_ps(f[g], d));
}

/* Per 32 quants q * d + m (Q4_1, Q5_1). */
INLINE void dq_mul_add(float *y, __m256i q, __m256 d, __m256 m) {
    __m256 f[4];
    dq_widen(q, f);
    for (int g = 0; g < 4; g++) _mm256_storeu_ps(y + 8 * g, _mm256_add_ps(_mm256_mul_ps(f[g], d), m));
}

/* Per 32 quants dl * q - ml, the K formats with a minimum; dl and ml per 16 (sub 16) or 32. */
INLINE void dq_k(float *y, __m256i q, const float *dl, const float *ml, int per16) {
    __m256 f[4];
    dq_widen(q, f);
    for (int g = 0; g < 4; g++) {
        const int s = per16 ? g / 2 : 0;
        _mm256_storeu_ps(y + 8 * g, _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(dl[s]), f[g]), _mm256_set1_ps(ml[s])));
    }
}

/* Per 32 quants dl * q, dl per 16 quants. */
INLINE void dq_scaled16(float *y, __m256i q, const float dl[2]) {
    __m256 f[4];
    dq_widen(q, f);
    for (int g = 0; g < 4; g++) _mm256_storeu_ps(y + 8 * g, _mm256_mul_ps(_mm256_set1_ps(dl[g / 2]), f[g]));
}

static void q4_0_deq(const void *row, float *y, int64_t n) {
    const block_q4_0 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK)
        dq_mul(y, _mm256_sub_epi8(dq_nibbles(b[i].qs), _mm256_set1_epi8(8)), _mm256_set1_ps(h2f(b[i].d)));
}

static void q4_1_deq(const void *row, float *y, int64_t n) {
    const block_q4_1 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK)
        dq_mul_add(y, dq_nibbles(b[i].qs), _mm256_set1_ps(h2f(b[i].d)), _mm256_set1_ps(h2f(b[i].m)));
}

INLINE __m256i dq_quant5(const uint8_t *qs, const uint8_t *qh) {
    return _mm256_or_si256(dq_nibbles(qs), _mm256_and_si256(dq_bits(load_u32(qh)), _mm256_set1_epi8(0x10)));
}

static void q5_0_deq(const void *row, float *y, int64_t n) {
    const block_q5_0 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK)
        dq_mul(y, _mm256_sub_epi8(dq_quant5(b[i].qs, b[i].qh), _mm256_set1_epi8(16)), _mm256_set1_ps(h2f(b[i].d)));
}

static void q5_1_deq(const void *row, float *y, int64_t n) {
    const block_q5_1 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK)
        dq_mul_add(y, dq_quant5(b[i].qs, b[i].qh), _mm256_set1_ps(h2f(b[i].d)), _mm256_set1_ps(h2f(b[i].m)));
}

static void q8_0_deq(const void *row, float *y, int64_t n) {
    const block_q8_0 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK) dq_mul(y, load256(b[i].qs), _mm256_set1_ps(h2f(b[i].d)));
}

/* 32 nibbles looked up in a 16-level table (IQ4_NL's, MXFP4's) */
INLINE __m256i dq_levels(__m256i idx, const int8_t *values) {
    return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(load128(values)), idx);
}
INLINE __m256i dq_iq4(__m256i idx) { return dq_levels(idx, ds_iq4nl_values); }

static void iq4_nl_deq(const void *row, float *y, int64_t n) {
    const block_iq4_nl *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK) dq_mul(y, dq_iq4(dq_nibbles(b[i].qs)), _mm256_set1_ps(h2f(b[i].d)));
}

static void mxfp4_deq(const void *row, float *y, int64_t n) {
    const block_mxfp4 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK)
        dq_mul(y, dq_levels(dq_nibbles(b[i].qs), ds_mxfp4_values), _mm256_set1_ps(e8m0_half(b[i].e)));
}

/* The four 2-bit fields of 32 bytes, field s at bits 2 s: Q2_K / Q3_K's quants 32 s + l. */
INLINE __m256i dq_crumb(__m256i v, int s) {
    return _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_set1_epi32(2 * s)), _mm256_set1_epi8(3));
}

static void q2_K_deq(const void *row, float *y, int64_t n) {
    const block_q2_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(b[i].d), min = h2f(b[i].dmin);
        float dl[16], ml[16];
        for (int j = 0; j < 16; j++) {
            const uint8_t sc = b[i].scales[j];
            dl[j] = d * (sc & 0xf);
            ml[j] = min * (sc >> 4);
        }
        for (int h = 0; h < 2; h++) {
            const __m256i v = load256(b[i].qs + 32 * h);
            for (int s = 0; s < 4; s++, y += 32) {
                const int j = 8 * h + 2 * s;
                dq_k(y, dq_crumb(v, s), dl + j, ml + j, 1);
            }
        }
    }
}

static int dq_q3_scale(const uint8_t s[12], int j) {
    int lo = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
    return (lo | ((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
}

static void q3_K_deq(const void *row, float *y, int64_t n) {
    const block_q3_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d_all = h2f(b[i].d);
        float dl[16];
        for (int j = 0; j < 16; j++) dl[j] = d_all * dq_q3_scale(b[i].scales, j);
        const __m256i hm = load256(b[i].hmask);
        for (int h = 0; h < 2; h++) {
            const __m256i v = load256(b[i].qs + 32 * h);
            for (int s = 0; s < 4; s++, y += 32) {
                /* the third bit of quant 32 j + l is bit j of hmask[l]; clear means minus 4 */
                const int j = 4 * h + s;
                const __m256i bit = _mm256_set1_epi8((char)(1 << j));
                const __m256i clear = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), _mm256_setzero_si256());
                const __m256i q = _mm256_sub_epi8(dq_crumb(v, s), _mm256_and_si256(clear, _mm256_set1_epi8(4)));
                dq_scaled16(y, q, dl + 2 * j);
            }
        }
    }
}

static void dq_scale_min_k4(int j, const uint8_t q[12], uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xf) | (q[j - 4] >> 6) << 4);
        *m = (uint8_t)((q[j + 4] >> 4) | (q[j] >> 6) << 4);
    }
}

/* Q4_K / Q5_K's d * sc and dmin * m of the 8 sub-blocks. */
INLINE void dq_k4_factors(const uint8_t scales[12], uint16_t hd, uint16_t hmin, float dl[8], float ml[8]) {
    const float d = h2f(hd), min = h2f(hmin);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        dq_scale_min_k4(j, scales, &sc, &m);
        dl[j] = d * sc;
        ml[j] = min * m;
    }
}

static void q4_K_deq(const void *row, float *y, int64_t n) {
    const block_q4_K *b = row;
    const __m256i m4 = _mm256_set1_epi8(0xf);
    for (int64_t i = 0; i < n / QK_K; i++) {
        float dl[8], ml[8];
        dq_k4_factors(b[i].scales, b[i].d, b[i].dmin, dl, ml);
        for (int j = 0; j < 4; j++, y += 64) {
            const __m256i v = load256(b[i].qs + 32 * j);
            dq_k(y, _mm256_and_si256(v, m4), dl + 2 * j, ml + 2 * j, 0);
            dq_k(y + 32, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4), dl + 2 * j + 1, ml + 2 * j + 1, 0);
        }
    }
}

static void q5_K_deq(const void *row, float *y, int64_t n) {
    const block_q5_K *b = row;
    const __m256i m4 = _mm256_set1_epi8(0xf), b5 = _mm256_set1_epi8(0x10), zero = _mm256_setzero_si256();
    for (int64_t i = 0; i < n / QK_K; i++) {
        float dl[8], ml[8];
        dq_k4_factors(b[i].scales, b[i].d, b[i].dmin, dl, ml);
        const __m256i qh = load256(b[i].qh);
        for (int j = 0; j < 8; j++, y += 32) {
            /* quant 32 j + l: a nibble of qs[32 (j / 2) + l], its 5th bit bit j of qh[l] */
            const __m256i v = load256(b[i].qs + 32 * (j / 2));
            const __m256i lo = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(v, 4) : v, m4);
            const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(qh, _mm256_set1_epi8((char)(1 << j))), zero);
            dq_k(y, _mm256_or_si256(lo, _mm256_andnot_si256(set, b5)), dl + j, ml + j, 0);
        }
    }
}

static void q6_K_deq(const void *row, float *y, int64_t n) {
    const block_q6_K *b = row;
    const __m256i m4 = _mm256_set1_epi8(0xf);
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(b[i].d);
        float dl[16];
        for (int j = 0; j < 16; j++) dl[j] = d * b[i].scales[j];
        for (int h = 0; h < 2; h++) {
            const __m256i qh = load256(b[i].qh + 32 * h);
            for (int s = 0; s < 4; s++, y += 32) {
                const __m256i v = load256(b[i].ql + 64 * h + 32 * (s & 1));
                const __m256i lo = _mm256_and_si256(s < 2 ? v : _mm256_srli_epi16(v, 4), m4);
                const __m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(dq_crumb(qh, s), 4));
                dq_scaled16(y, _mm256_sub_epi8(q, _mm256_set1_epi8(32)), dl + 8 * h + 2 * s);
            }
        }
    }
}

static void iq4_xs_deq(const void *row, float *y, int64_t n) {
    const block_iq4_xs *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(b[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++, y += 32) {
            const int sc = ((b[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | ((b[i].scales_h >> 2 * ib) & 3) << 4;
            const float dl = d * (sc - 32);
            dq_mul(y, dq_iq4(dq_nibbles(b[i].qs + 16 * ib)), _mm256_set1_ps(dl));
        }
    }
}

static void iq2_xxs_deq(const void *row, float *y, int64_t n) {
    const block_iq2_xxs *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(b[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++, y += 32) {
            uint32_t aux[2];
            memcpy(aux, b[i].qs + 4 * ib, 8);
            const __m256 db = _mm256_set1_ps(d * (0.5f + (aux[1] >> 28)) * 0.25f);
            const uint8_t *g = (const uint8_t *)&aux[0];
            __m256 q[4];
            dq_widen(table4(ds_iq2xxs_grid, g[0], g[1], g[2], g[3]), q);
            /* the scalar code negates db * grid (flipping a NaN's sign too): bytes -1 / +1
               widened to int32 have the sign bit exactly where it does */
            const __m256i s =
                table4(iq2_sign_bytes, aux[1] & 127, aux[1] >> 7 & 127, aux[1] >> 14 & 127, aux[1] >> 21 & 127);
            const __m128i s_lo = _mm256_castsi256_si128(s), s_hi = _mm256_extracti128_si256(s, 1);
            const __m128i sb[4] = {s_lo, _mm_unpackhi_epi64(s_lo, s_lo), s_hi, _mm_unpackhi_epi64(s_hi, s_hi)};
            const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));
            for (int l = 0; l < 4; l++) {
                const __m256 neg = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cvtepi8_epi32(sb[l])), sign);
                _mm256_storeu_ps(y + 8 * l, _mm256_xor_ps(_mm256_mul_ps(db, q[l]), neg));
            }
        }
    }
}

static void iq1_s_deq(const void *row, float *y, int64_t n) {
    const block_iq1_s *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(b[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++, y += 32) {
            const uint16_t qh = b[i].qh[ib];
            const __m256 dl = _mm256_set1_ps(d * (2 * ((qh >> 12) & 7) + 1));
            const __m256 delta = _mm256_set1_ps(qh & 0x8000 ? -IQ1S_DELTA : IQ1S_DELTA);
            __m256 q[4];
            dq_widen(iq1_points(b[i].qs + 4 * ib, qh), q);
            for (int l = 0; l < 4; l++) _mm256_storeu_ps(y + 8 * l, _mm256_mul_ps(dl, _mm256_add_ps(q[l], delta)));
        }
    }
}

#endif
