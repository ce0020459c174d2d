/* x86_quant.h - what the block-format kernels of every x86 level share (x86_avx2_quant.c,
   x86_avx512_quant.c): loads, F16 conversions, horizontal sums, scale unpacking, codebook
   lookups, and the 256-bit dot products of IQ2_XXS, IQ1_S and (for AVX2) IQ4_XS themselves,
   written once over the including file's dp_pairs256. Only for files compiled with at least
   AVX2, FMA and F16C; everything is static, so each file gets its own copy built with its own
   flags. */
#ifndef DS_X86_QUANT_H
#define DS_X86_QUANT_H

#include <immintrin.h>
#include <string.h>

#include "../quant/iq_tables.h"
#include "../quant/quant_impl.h"
#include "simd.h"

#define INLINE static inline __attribute__((always_inline))

/* Software prefetch of the weight row, for vec_dot4 only (prefetch_ahead is called with K, the
   number of activation rows). Measured here (Zen 4, 256 MiB of weights, one thread): with four
   activation rows it makes Q4_K 16-20% and Q6_K 7-25% faster, with one it makes them 6-24%
   slower at any distance from 768 to 4096 bytes, the hardware prefetcher alone keeping up with
   a single row's pace. */
#define PREFETCH_BYTES 1536

INLINE void prefetch_ahead(const void *p, size_t bytes, const int K) {
    const char *c = (const char *)p + PREFETCH_BYTES;
    if (K > 1)
        for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(c + o, _MM_HINT_T0);
}

INLINE __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
INLINE __m128i load128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }
INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }
/* F16C rounds to nearest even as ds_fp32_to_fp16 does, overflow and subnormals included; the two
   differ only in the payload of a NaN, and the only NaN an activation quantizer makes from
   NaN-free input (0 * inf for Q8_1's s) has none. */
INLINE uint16_t f2h(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }

INLINE uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

INLINE float hsum4(__m128 v) {
    __m128 t = _mm_add_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

INLINE int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)));
}

/* The F16 fields of four consecutive blocks (stride bytes apart) as four floats. */
INLINE __m128 f16x4(const void *p, size_t stride) {
    const uint8_t *b = p;
    uint16_t h[4];
    for (int j = 0; j < 4; j++) memcpy(&h[j], b + j * stride, 2);
    const __m128i v = _mm_cvtsi32_si128((int)(h[0] | (uint32_t)h[1] << 16));
    return _mm_cvtph_ps(_mm_insert_epi32(v, (int)(h[2] | (uint32_t)h[3] << 16), 1));
}

/* Super-block i of activation row k. */
INLINE const block_q8_K *q8k(const void *const *act, int k, int64_t i) { return (const block_q8_K *)act[k] + i; }

/* Q3_K's 16 six-bit scales without their bias of 32, as int8: low nibbles in bytes 0-7 (both
   nibbles of each), top two bits in bytes 8-11, two per scale, four scales per byte. */
INLINE __m128i q3_scales(const uint8_t s[12]) {
    uint32_t a[3], v[4];
    memcpy(a, s, 12);
    const uint32_t m4 = 0x0f0f0f0f, m2 = 0x03030303;
    v[0] = (a[0] & m4) | (a[2] & m2) << 4;
    v[1] = (a[1] & m4) | (a[2] >> 2 & m2) << 4;
    v[2] = (a[0] >> 4 & m4) | (a[2] >> 4 & m2) << 4;
    v[3] = (a[1] >> 4 & m4) | (a[2] >> 6 & m2) << 4;
    return _mm_sub_epi8(_mm_set_epi32((int)v[3], (int)v[2], (int)v[1], (int)v[0]), _mm_set1_epi8(32));
}

/* Q4_K / Q5_K's eight 6-bit scales (bytes 0-7 of the result) and minimums (bytes 8-15):
   sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scales) and 4-7 (minimums); 4-7 in the nibbles
   of bytes 8-11, their top two bits in the spare bits of bytes 0-7. Built in registers: a vector
   load of bytes just stored one word at a time would wait for the stores. */
INLINE __m128i k4_scales(const uint8_t s[12]) {
    uint32_t a[3];
    memcpy(a, s, 12);
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    const uint32_t sc_lo = a[0] & m6, sc_hi = (a[2] & m4) | (a[0] >> 6 & m2) << 4;
    const uint32_t m_lo = a[1] & m6, m_hi = (a[2] >> 4 & m4) | (a[1] >> 6 & m2) << 4;
    return _mm_set_epi32((int)m_hi, (int)m_lo, (int)sc_hi, (int)sc_lo);
}

/* IQ2_XXS's 7 stored sign bits (plus the implied 8th: even parity, as ds_iq2_signs) expanded
   to 8 bytes of +1 / -1, for psignb. Built by the compiler. */
#define SGN(i, j) ((((i) >> (j)) & 1 ? 0xffull : 0x01ull) << 8 * (j))
#define PARITY(i) (((i) ^ (i) >> 1 ^ (i) >> 2 ^ (i) >> 3 ^ (i) >> 4 ^ (i) >> 5 ^ (i) >> 6) & 1)
#define SIGNS(i)                                                                         \
    (SGN(i, 0) | SGN(i, 1) | SGN(i, 2) | SGN(i, 3) | SGN(i, 4) | SGN(i, 5) | SGN(i, 6) | \
     (PARITY(i) ? 0xffull : 0x01ull) << 56)
#define SIGNS4(i) SIGNS(i), SIGNS(i + 1), SIGNS(i + 2), SIGNS(i + 3)
#define SIGNS16(i) SIGNS4(i), SIGNS4(i + 4), SIGNS4(i + 8), SIGNS4(i + 12)
static const uint64_t iq2_sign_bytes[128] = {
    SIGNS16(0), SIGNS16(16), SIGNS16(32), SIGNS16(48), SIGNS16(64), SIGNS16(80), SIGNS16(96), SIGNS16(112),
};

/* Four 8-byte table entries as one vector (scalar loads: AVX2's gathers are slower here). */
INLINE __m256i table4(const uint64_t *t, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    return _mm256_set_epi64x((long long)t[d], (long long)t[c], (long long)t[b], (long long)t[a]);
}

/* IQ1_S's codebook points of block ib: index qs[4 ib + l] | bits 3 l of qh << 8. */
INLINE __m256i iq1_points(const uint8_t *qs, uint32_t qh) {
    return table4(ds_iq1s_grid, qs[0] | (qh << 8 & 0x700), qs[1] | (qh << 5 & 0x700), qs[2] | (qh << 2 & 0x700),
                  qs[3] | (qh >> 1 & 0x700));
}

/* IQ1_S's ls * delta per block of 32 (ls = 2 s + 1, delta the sign of the shift), each twice: for
   the bsums of the block's two halves. */
INLINE __m256i iq1_shifts(const uint16_t qh[8]) {
    const __m128i h = load128(qh);
    const __m128i ls = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(h, 11), _mm_set1_epi16(0xe)), _mm_set1_epi16(1));
    const __m128i neg = _mm_srai_epi16(h, 15), lsd = _mm_sub_epi16(_mm_xor_si128(ls, neg), neg);
    return _mm256_set_m128i(_mm_unpackhi_epi16(lsd, lsd), _mm_unpacklo_epi16(lsd, lsd));
}

/* acc + p x sc over int16 pairs (p from maddubs, sc one 16-bit scale per pair): the one step in
   which the levels' BLOCKS32_DOTK kernels below differ, AVX2 and plain AVX-512 with madd + add,
   VNNI with vpdpwssd, the same integers either way. Every file including this header defines it. */
INLINE __m256i dp_pairs256(__m256i acc, __m256i p, __m256i sc);

/* acc + (u x s, summed in pairs) x sc16; maddubs is exact here (see x86_avx2_quant.c's top). */
INLINE __m256i dp_us_scaled256(__m256i acc, __m256i u, __m256i s, __m256i sc16) {
    return dp_pairs256(acc, _mm256_maddubs_epi16(u, s), sc16);
}

/* 16 bytes of nibbles as 32 bytes: low nibbles (elements 0-15), then high ones (16-31). */
INLINE __m256i nibbles32(const uint8_t *qs) {
    __m128i b = load128(qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0f));
}

/* The super-blocks of 8 blocks of 32 with a scale each, 32 quants a step on 256 bits: IQ2_XXS and
   IQ1_S at every level (their weights come from scalar table lookups, and building a 512-bit
   vector from eight of them costs more than two 256-bit ones), and IQ4_XS on AVX2.

   Each format's decoder gives block ib as maddubs takes it: the unsigned side u, the signs s that
   go onto the activations (psignb: -1, 0 or +1 per byte) and the 16-bit scale sc of its pairs. */

/* IQ2_XXS: four codebook points (magnitudes 8, 25, 43) and four 7-bit sign indices, the odd scale
   2 s + 1 (psignb with the +-1 sign bytes measured 16% faster on AVX-512 than a byte mask built
   from the sign bits). */
INLINE void iq2_xxs_block32(const block_iq2_xxs *x, int ib, __m256i *u, __m256i *s, __m256i *sc) {
    uint32_t aux[2];
    memcpy(aux, x->qs + 4 * ib, 8);
    *u = table4(ds_iq2xxs_grid, aux[0] & 0xff, aux[0] >> 8 & 0xff, aux[0] >> 16 & 0xff, aux[0] >> 24);
    *s = table4(iq2_sign_bytes, aux[1] & 127, aux[1] >> 7 & 127, aux[1] >> 14 & 127, aux[1] >> 21 & 127);
    *sc = _mm256_set1_epi16((short)(2 * (aux[1] >> 28) + 1));
}

/* IQ1_S: four points of the 2048-entry codebook (values -1, 0, 1) and a 3-bit odd scale. */
INLINE void iq1_s_block32(const block_iq1_s *x, int ib, __m256i *u, __m256i *s, __m256i *sc) {
    const uint16_t qh = x->qh[ib]; /* as uint32_t, gcc's AVX2 code measured 2-10% slower */
    *s = iq1_points(x->qs + 4 * ib, qh);
    *u = _mm256_abs_epi8(*s);
    *sc = _mm256_set1_epi16((short)(2 * ((qh >> 12) & 7) + 1));
}

/* IQ4_XS: IQ4_NL's levels with 6-bit scales (biased by 32). */
INLINE void iq4_xs_block32(const block_iq4_xs *x, int ib, __m256i *u, __m256i *s, __m256i *sc) {
    const int ls = (((x->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | ((x->scales_h >> 2 * ib) & 3) << 4) - 32;
    *s = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(load128(ds_iq4nl_values)), nibbles32(x->qs + 16 * ib));
    *u = _mm256_abs_epi8(*s);
    *sc = _mm256_set1_epi16((short)ls);
}

/* A super-block's int32 sums for activation row y as the float scale takes them: as they are, or
   with IQ1_S's shift of 1/8: 8 (sum of ls * grid * y) + sum of ls * delta * bsums, all in
   integers, is the exact sum times 8. */
INLINE __m256i no_shift(const void *x, const block_q8_K *y, __m256i sumi) {
    (void)x, (void)y;
    return sumi;
}
INLINE __m256i iq1_s_shift(const block_iq1_s *x, const block_q8_K *y, __m256i sumi) {
    return _mm256_add_epi32(_mm256_slli_epi32(sumi, 3), _mm256_madd_epi16(iq1_shifts(x->qh), load256(y->bsums)));
}

/* The loop: exact int32 sums per super-block and activation row, then one multiply-add by the
   float scale, and the final sums times scale (the 1/8 of the codebook formats' formulas). A
   macro, not an inline function over the decoder: the code is each format's own, as if written
   out (gcc schedules a shared inline body a little differently, 1-2% slower on AVX2). */
#define BLOCKS32_DOTK(name, btype, shift, scale)                                                             \
    INLINE void name##_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {   \
        const btype *x = row;                                                                                \
        __m256 acc[4];                                                                                       \
        for (int k = 0; k < K; k++) acc[k] = _mm256_setzero_ps();                                            \
        for (int64_t i = 0; i < n / QK_K; i++) {                                                             \
            prefetch_ahead(x + i, sizeof *x, K);                                                             \
            __m256i sumi[4];                                                                                 \
            for (int k = 0; k < K; k++) sumi[k] = _mm256_setzero_si256();                                    \
            _Pragma("GCC unroll 8") for (int ib = 0; ib < QK_K / 32; ib++) {                                 \
                __m256i u, s, sc;                                                                            \
                name##_block32(&x[i], ib, &u, &s, &sc);                                                      \
                for (int k = 0; k < K; k++) {                                                                \
                    const __m256i y = _mm256_sign_epi8(load256(q8k(act, k, i)->qs + 32 * ib), s);            \
                    sumi[k] = dp_us_scaled256(sumi[k], u, y, sc);                                            \
                }                                                                                            \
            }                                                                                                \
            for (int k = 0; k < K; k++) {                                                                    \
                const block_q8_K *y = q8k(act, k, i);                                                        \
                const __m256i s = shift(&x[i], y, sumi[k]);                                                  \
                acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * y->d), _mm256_cvtepi32_ps(s), acc[k]); \
            }                                                                                                \
        }                                                                                                    \
        for (int k = 0; k < K; k++) out[k] = scale * hsum8(acc[k]);                                          \
    }

BLOCKS32_DOTK(iq2_xxs, block_iq2_xxs, no_shift, 0.125f)
BLOCKS32_DOTK(iq1_s, block_iq1_s, iq1_s_shift, 0.125f)

/* vec_dot and vec_dot4 of each format: the same inlined code for one row and for four. */
#define DOT_FNS(name)                                                                             \
    static float name##_dot(const void *row, const void *act, int64_t n) {                        \
        float out;                                                                                \
        name##_dotk(row, &act, n, &out, 1);                                                       \
        return out;                                                                               \
    }                                                                                             \
    static void name##_dot4(const void *row, const void *const act[4], int64_t n, float out[4]) { \
        name##_dotk(row, act, n, out, 4);                                                         \
    }

/* The float scales of blocks of 32 at p (p[0..3], or one): F16 d for most, E8M0 e for MXFP4. */
#define D16_4(p) f16x4(&(p)->d, sizeof *(p))
#define D16_1(p) h2f((p)->d)
INLINE __m128 e8m0x4(const block_mxfp4 *b) {
    return _mm_setr_ps(e8m0_half(b[0].e), e8m0_half(b[1].e), e8m0_half(b[2].e), e8m0_half(b[3].e));
}
#define E8_4(p) e8m0x4(p)
#define E8_1(p) e8m0_half((p)->e)

/* A level's block-format table: every level names its kernels alike, so the table is written
   once. */
#define KERNEL_ENTRIES(suffix)                                                                              \
    {                                                                                                       \
        [DS_TYPE_Q4_0] = q4_0_##suffix, [DS_TYPE_Q4_1] = q4_1_##suffix, [DS_TYPE_Q5_0] = q5_0_##suffix,     \
        [DS_TYPE_Q5_1] = q5_1_##suffix, [DS_TYPE_Q8_0] = q8_0_##suffix, [DS_TYPE_IQ4_NL] = iq4_nl_##suffix, \
        [DS_TYPE_MXFP4] = mxfp4_##suffix,                                                                  \
        [DS_TYPE_Q2_K] = q2_K_##suffix, [DS_TYPE_Q3_K] = q3_K_##suffix, [DS_TYPE_Q4_K] = q4_K_##suffix,     \
        [DS_TYPE_Q5_K] = q5_K_##suffix, [DS_TYPE_Q6_K] = q6_K_##suffix, [DS_TYPE_IQ4_XS] = iq4_xs_##suffix, \
        [DS_TYPE_IQ2_XXS] = iq2_xxs_##suffix, [DS_TYPE_IQ1_S] = iq1_s_##suffix,                             \
    }
#define QUANT_KERNELS(level_name)                                                                       \
    {                                                                                                   \
        .name = level_name, .vec_dot = KERNEL_ENTRIES(dot), .vec_dot4 = KERNEL_ENTRIES(dot4),           \
        .act_quant = {[DS_TYPE_Q8_0] = q8_0_act, [DS_TYPE_Q8_1] = q8_1_act, [DS_TYPE_Q8_K] = q8_K_act}, \
        .dequant = KERNEL_ENTRIES(deq),                                                                 \
    }

#endif
