/* x86_avx2_quant.c - AVX2 + FMA + F16C kernels for ggml's block formats: the dot product of a
   weight row with one or four quantized activation rows, and the activation quantizers.
   Compiled with those extensions enabled; dispatch.c calls nothing here before the CPU has been
   seen to support them.

   Dot products: the integer part of every block is exact (as in the scalar code), only the float
   sums run in another order, so results differ from quant/'s in float rounding only. Each kernel
   is written once for K activation rows (dotk functions, always inlined with K = 1 or 4): the
   weight block is decoded once, then every activation row gets the same instructions in the
   same order, which is what makes vec_dot4's out[k] bit-identical to vec_dot's.

   The signed-by-signed products use maddubs with |w| as the unsigned side and y negated where w
   is negative: exact while the activation quants stay in [-127, 127], which is what every
   activation quantizer writes (pairs then sum to at most 2 * 128 * 127 < 32768).

   Activation quantizers reproduce the scalar ones' bytes: the same float operations per element
   (no reordered sums, no reciprocal approximations), the same rounding (half away from zero for
   Q8_0 / Q8_1, ggml's nearest_int for Q8_K) and the same low-byte narrowing, for every input
   without NaNs. Helpers shared with the AVX-512 kernels are in x86_quant.h. */
#include "x86_dequant.h"

/* Unsigned u times signed s, summed in fours into 8 int32 lanes. */
INLINE __m256i dot_us(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* The same with each pair's sum times a 16-bit scale (sc16: one scale per 16-bit lane). */
INLINE __m256i dot_us_scaled(__m256i u, __m256i s, __m256i sc16) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sc16);
}

/* x86_quant.h's pair step for IQ2_XXS and IQ1_S: acc + p x sc in int16 pairs. */
INLINE __m256i dp_pairs256(__m256i acc, __m256i p, __m256i sc) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, sc));
}

/* Signed w (as |w|, see the top) times signed y. */
INLINE __m256i dot_ss(__m256i abs_w, __m256i w, __m256i y) { return dot_us(abs_w, _mm256_sign_epi8(y, w)); }

/* 32 bits as 32 bytes, 0xff where the bit is set. */
INLINE __m256i bits_to_bytes(uint32_t bits) {
    const __m256i which = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), which);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* ---- blocks of 32 (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) ----

   Four blocks a step: their weight and activation F16 scales are converted four at a time (one
   conversion instead of four is what the float side of a block costs most). Two float
   accumulators per activation row, for even and odd blocks, so that consecutive blocks'
   multiply-adds do not wait for each other. */

typedef struct {
    __m256 v[4][2];
    __m128 min4[4]; /* Q4_1 / Q5_1: the sums of m * s, kept apart as the scalar code does */
    float min[4];
} acc32;

INLINE void acc32_init(acc32 *a, const int K) {
    for (int k = 0; k < K; k++) {
        a->v[k][0] = a->v[k][1] = _mm256_setzero_ps();
        a->min4[k] = _mm_setzero_ps();
        a->min[k] = 0;
    }
}

INLINE void acc32_done(const acc32 *a, float *out, const int K) {
    for (int k = 0; k < K; k++) out[k] = hsum8(_mm256_add_ps(a->v[k][0], a->v[k][1])) + (hsum4(a->min4[k]) + a->min[k]);
}

/* Lane j of the four block factors d, in all 8 lanes. */
INLINE __m256 lane(__m128 d, int j) {
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d), _mm256_set1_epi32(j));
}

/* Signed weights w[0..3] of blocks i..i+3 (scales dx) against those blocks of each Q8_0 row. */
INLINE void q8_0_quad(acc32 *a, const __m256i w[4], __m128 dx, const void *const *act, int64_t i, const int K) {
    __m256i aw[4];
    for (int j = 0; j < 4; j++) aw[j] = _mm256_abs_epi8(w[j]);
    for (int k = 0; k < K; k++) {
        const block_q8_0 *y = (const block_q8_0 *)act[k] + i;
        const __m128 d = _mm_mul_ps(dx, f16x4(&y->d, sizeof *y));
        for (int j = 0; j < 4; j++) {
            const __m256 s = _mm256_cvtepi32_ps(dot_ss(aw[j], w[j], load256(y[j].qs)));
            a->v[k][j % 2] = _mm256_fmadd_ps(lane(d, j), s, a->v[k][j % 2]);
        }
    }
}

/* One block (a row's last few): signed weights w with scale dx. */
INLINE void q8_0_block(acc32 *a, __m256i w, float dx, const void *const *act, int64_t i, const int K) {
    const __m256i aw = _mm256_abs_epi8(w);
    for (int k = 0; k < K; k++) {
        const block_q8_0 *y = (const block_q8_0 *)act[k] + i;
        const __m256 s = _mm256_cvtepi32_ps(dot_ss(aw, w, load256(y->qs)));
        a->v[k][0] = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(y->d)), s, a->v[k][0]);
    }
}

/* Unsigned weights u[0..3] of blocks i..i+3 (scales dx, minimums m) against each Q8_1 row. */
INLINE void q8_1_quad(acc32 *a, const __m256i u[4], __m128 dx, __m128 m, const void *const *act, int64_t i,
                      const int K) {
    for (int k = 0; k < K; k++) {
        const block_q8_1 *y = (const block_q8_1 *)act[k] + i;
        const __m128 d = _mm_mul_ps(dx, f16x4(&y->d, sizeof *y));
        for (int j = 0; j < 4; j++) {
            const __m256 s = _mm256_cvtepi32_ps(dot_us(u[j], load256(y[j].qs)));
            a->v[k][j % 2] = _mm256_fmadd_ps(lane(d, j), s, a->v[k][j % 2]);
        }
        a->min4[k] = _mm_fmadd_ps(m, f16x4(&y->s, sizeof *y), a->min4[k]);
    }
}

INLINE void q8_1_block(acc32 *a, __m256i u, float dx, float m, const void *const *act, int64_t i, const int K) {
    for (int k = 0; k < K; k++) {
        const block_q8_1 *y = (const block_q8_1 *)act[k] + i;
        const __m256 s = _mm256_cvtepi32_ps(dot_us(u, load256(y->qs)));
        a->v[k][0] = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(y->d)), s, a->v[k][0]);
        a->min[k] += m * h2f(y->s);
    }
}

/* Weight decoders: block -> 32 bytes in element order. */
INLINE __m256i q4_0_w(const block_q4_0 *b) { return _mm256_sub_epi8(nibbles32(b->qs), _mm256_set1_epi8(8)); }
INLINE __m256i q4_1_u(const block_q4_1 *b) { return nibbles32(b->qs); }
/* q - 16 as a byte: the nibble with 0xf0 on top where the fifth bit is clear */
INLINE __m256i q5_0_w(const block_q5_0 *b) {
    __m256i hi = _mm256_andnot_si256(bits_to_bytes(load_u32(b->qh)), _mm256_set1_epi8((char)0xf0));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}
INLINE __m256i q5_1_u(const block_q5_1 *b) {
    __m256i hi = _mm256_and_si256(bits_to_bytes(load_u32(b->qh)), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}
INLINE __m256i q8_0_w(const block_q8_0 *b) { return load256(b->qs); }
INLINE __m256i iq4_nl_w(const block_iq4_nl *b) {
    return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(load128(ds_iq4nl_values)), nibbles32(b->qs));
}
INLINE __m256i mxfp4_w(const block_mxfp4 *b) {
    return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(load128(ds_mxfp4_values)), nibbles32(b->qs));
}

/* The loop of the signed formats against Q8_0: four blocks a step, then the last few. */
#define SIGNED32_DOTK(name, btype, decode, D4, D1)                                                         \
    INLINE void name##_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) { \
        const btype *x = row;                                                                              \
        const int64_t nb = n / QK;                                                                         \
        acc32 a;                                                                                           \
        acc32_init(&a, K);                                                                                 \
        int64_t i = 0;                                                                                     \
        for (; i + 4 <= nb; i += 4) {                                                                      \
            prefetch_ahead(x + i, 4 * sizeof *x, K);                                                       \
            const __m256i w[4] = {decode(&x[i]), decode(&x[i + 1]), decode(&x[i + 2]), decode(&x[i + 3])}; \
            q8_0_quad(&a, w, D4(x + i), act, i, K);                                                        \
        }                                                                                                  \
        for (; i < nb; i++) q8_0_block(&a, decode(&x[i]), D1(x + i), act, i, K);                           \
        acc32_done(&a, out, K);                                                                            \
    }

/* The loop of the formats with a minimum against Q8_1. */
#define MIN32_DOTK(name, btype, decode)                                                                    \
    INLINE void name##_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) { \
        const btype *x = row;                                                                              \
        const int64_t nb = n / QK;                                                                         \
        acc32 a;                                                                                           \
        acc32_init(&a, K);                                                                                 \
        int64_t i = 0;                                                                                     \
        for (; i + 4 <= nb; i += 4) {                                                                      \
            prefetch_ahead(x + i, 4 * sizeof *x, K);                                                       \
            const __m256i u[4] = {decode(&x[i]), decode(&x[i + 1]), decode(&x[i + 2]), decode(&x[i + 3])}; \
            q8_1_quad(&a, u, f16x4(&x[i].d, sizeof *x), f16x4(&x[i].m, sizeof *x), act, i, K);             \
        }                                                                                                  \
        for (; i < nb; i++) q8_1_block(&a, decode(&x[i]), h2f(x[i].d), h2f(x[i].m), act, i, K);            \
        acc32_done(&a, out, K);                                                                            \
    }

SIGNED32_DOTK(q4_0, block_q4_0, q4_0_w, D16_4, D16_1)
SIGNED32_DOTK(q5_0, block_q5_0, q5_0_w, D16_4, D16_1)
SIGNED32_DOTK(q8_0, block_q8_0, q8_0_w, D16_4, D16_1)
SIGNED32_DOTK(iq4_nl, block_iq4_nl, iq4_nl_w, D16_4, D16_1)
SIGNED32_DOTK(mxfp4, block_mxfp4, mxfp4_w, E8_4, E8_1)
MIN32_DOTK(q4_1, block_q4_1, q4_1_u)
MIN32_DOTK(q5_1, block_q5_1, q5_1_u)

/* ---- super-blocks of 256 against Q8_K ----

   Per super-block, exact int32 sums per activation row (sumi[k]), then one multiply-add by the
   super-block's float scale. Offsets (Q3_K's -4, Q6_K's -32) and minimums come from Q8_K's
   bsums (sums of 16 activation quants) instead of per-element work. Where an offset goes
   through the bsums, the lanes hold partial sums far larger than the true ones (they cancel
   only in the total), so those formats add the lanes up in integers first: scaling each lane
   to float would round those large values. */

/* 16 int8 sub-block scales as int16: sub-blocks 0-7 in both halves of out[0], 8-15 in both
   halves of out[1], for pair_scales' in-lane shuffles. */
INLINE void scales16(__m128i s8, __m256i out[2]) {
    const __m256i w = _mm256_cvtepi8_epi16(s8);
    out[0] = _mm256_permute2x128_si256(w, w, 0x00);
    out[1] = _mm256_permute2x128_si256(w, w, 0x11);
}

/* [s[a] x 8, s[a + 1] x 8] (a even): the scales of the two sub-blocks of 16 in a 32-byte chunk
   (maddubs keeps each 128-bit half's pairs apart). */
INLINE __m256i pair_scales(const __m256i s[2], int a) {
    const int j = a % 8;
    const __m256i idx = _mm256_set_m128i(_mm_set1_epi16((short)(0x0100 + 0x0202 * (j + 1))),
                                         _mm_set1_epi16((short)(0x0100 + 0x0202 * j)));
    return _mm256_shuffle_epi8(s[a / 8], idx);
}

INLINE void q2_K_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {
    const block_q2_K *x = row;
    __m256 acc[4];
    for (int k = 0; k < K; k++) acc[k] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(x + i, sizeof *x, K);
        const __m128i raw = load128(x[i].scales), m4 = _mm_set1_epi8(0x0f);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
        __m256i sc[2];
        scales16(_mm_and_si128(raw, m4), sc);
        __m256i sumi[4];
        for (int k = 0; k < K; k++) sumi[k] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
            const __m256i b = load256(x[i].qs + 32 * h);
#pragma GCC unroll 8
            for (int s = 0; s < 4; s++) {
                const __m256i q = _mm256_and_si256(_mm256_srli_epi16(b, 2 * s), _mm256_set1_epi8(3));
                const __m256i scp = pair_scales(sc, 8 * h + 2 * s);
                for (int k = 0; k < K; k++)
                    sumi[k] = _mm256_add_epi32(sumi[k],
                                               dot_us_scaled(q, load256(q8k(act, k, i)->qs + 128 * h + 32 * s), scp));
            }
        }
        for (int k = 0; k < K; k++) {
            const block_q8_K *y = q8k(act, k, i);
            const __m256i summs = _mm256_madd_epi16(mins, load256(y->bsums));
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * h2f(x[i].d)), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
            acc[k] = _mm256_fnmadd_ps(_mm256_set1_ps(y->d * h2f(x[i].dmin)), _mm256_cvtepi32_ps(summs), acc[k]);
        }
    }
    for (int k = 0; k < K; k++) out[k] = hsum8(acc[k]);
}

/* Sub-block scales (as scales16 gives them) times the activations' bsums, summed in pairs: the
   offset terms. */
INLINE __m256i scaled_bsums(const __m256i sc[2], const block_q8_K *y) {
    return _mm256_madd_epi16(_mm256_permute2x128_si256(sc[0], sc[1], 0x20), load256(y->bsums));
}

/* Q3_K: q = u - 4 with u = low two bits | the hmask bit << 2 in [0, 7]; the -4 goes through the
   bsums. Element 128 h + 32 s + l has its hmask bit in byte l, bit 4 h + s. */
INLINE void q3_K_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {
    const block_q3_K *x = row;
    float acc[4] = {0};
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(x + i, sizeof *x, K);
        __m256i sc[2];
        scales16(q3_scales(x[i].scales), sc);
        const __m256i hb = load256(x[i].hmask), one = _mm256_set1_epi8(1);
        __m256i sumi[4];
        for (int k = 0; k < K; k++) sumi[k] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
            const __m256i b = load256(x[i].qs + 32 * h);
#pragma GCC unroll 8
            for (int s = 0; s < 4; s++) {
                const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4 * h + s), one), 2);
                const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(b, 2 * s), _mm256_set1_epi8(3));
                const __m256i u = _mm256_or_si256(lo, hi), scp = pair_scales(sc, 8 * h + 2 * s);
                for (int k = 0; k < K; k++)
                    sumi[k] = _mm256_add_epi32(sumi[k],
                                               dot_us_scaled(u, load256(q8k(act, k, i)->qs + 128 * h + 32 * s), scp));
            }
        }
        for (int k = 0; k < K; k++) {
            const block_q8_K *y = q8k(act, k, i);
            const __m256i s = _mm256_sub_epi32(sumi[k], _mm256_slli_epi32(scaled_bsums(sc, y), 2));
            acc[k] += h2f(x[i].d) * y->d * (float)hsum_i32(s);
        }
    }
    for (int k = 0; k < K; k++) out[k] = acc[k];
}

/* Q4_K and Q5_K: 8 sub-blocks of 32, chunk c of 64 elements = qs[32 c ..] low nibbles (sub-block
   2 c) then high nibbles (2 c + 1); Q5_K's fifth bit of element 32 j + l is bit j of qh[l]. */
INLINE void k4_dotk(const uint8_t *qs, const uint8_t *qh, const uint8_t scales[12], float d, float dmin,
                    const void *const *act, int64_t i, __m256 *acc, const int K) {
    const __m128i sm = k4_scales(scales);
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));    /* m0 m0 m1 m1 ... */
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm)); /* sc0 ... sc7, twice */
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i hb = qh ? load256(qh) : _mm256_setzero_si256(), sumi[4];
    for (int k = 0; k < K; k++) sumi[k] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int c = 0; c < 4; c++) {
        const __m256i b = load256(qs + 32 * c);
        __m256i lo = _mm256_and_si256(b, m4), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
        if (qh) {
            const __m256i bit = _mm256_set1_epi8(0x10);
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), bit));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), bit));
            hb = _mm256_srli_epi16(hb, 2);
        }
        const __m256i sl = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * c))));
        const __m256i sh = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * c + 1))));
        for (int k = 0; k < K; k++) {
            const int8_t *y = q8k(act, k, i)->qs + 64 * c;
            sumi[k] = _mm256_add_epi32(sumi[k], dot_us_scaled(lo, load256(y), sl));
            sumi[k] = _mm256_add_epi32(sumi[k], dot_us_scaled(hi, load256(y + 32), sh));
        }
    }
    for (int k = 0; k < K; k++) {
        const block_q8_K *y = q8k(act, k, i);
        const __m256i summs = _mm256_madd_epi16(mins, load256(y->bsums));
        acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d * y->d), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
        acc[k] = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * y->d), _mm256_cvtepi32_ps(summs), acc[k]);
    }
}

INLINE void q4_K_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {
    const block_q4_K *x = row;
    __m256 acc[4];
    for (int k = 0; k < K; k++) acc[k] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(x + i, sizeof *x, K);
        k4_dotk(x[i].qs, NULL, x[i].scales, h2f(x[i].d), h2f(x[i].dmin), act, i, acc, K);
    }
    for (int k = 0; k < K; k++) out[k] = hsum8(acc[k]);
}

INLINE void q5_K_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {
    const block_q5_K *x = row;
    __m256 acc[4];
    for (int k = 0; k < K; k++) acc[k] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(x + i, sizeof *x, K);
        k4_dotk(x[i].qs, x[i].qh, x[i].scales, h2f(x[i].d), h2f(x[i].dmin), act, i, acc, K);
    }
    for (int k = 0; k < K; k++) out[k] = hsum8(acc[k]);
}

/* Q6_K: q = u - 32 with u = low nibble | two high bits << 4 in [0, 63]; the -32 goes through the
   bsums. In half h, elements 32 s + l take ql[64 h + 32 (s & 1) + l] (low nibble for s < 2) and
   bits 2 s of qh[32 h + l]. */
INLINE void q6_K_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {
    const block_q6_K *x = row;
    float acc[4] = {0};
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(x + i, sizeof *x, K);
        __m256i sc[2];
        scales16(load128(x[i].scales), sc);
        const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30);
        __m256i sumi[4];
        for (int k = 0; k < K; k++) sumi[k] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = load256(x[i].ql + 64 * h), l1 = load256(x[i].ql + 64 * h + 32);
            const __m256i hb = load256(x[i].qh + 32 * h);
            const __m256i u[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m2)),
                _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m2)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m2)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                _mm256_and_si256(_mm256_srli_epi16(hb, 2), m2)),
            };
#pragma GCC unroll 8
            for (int s = 0; s < 4; s++) {
                const __m256i scp = pair_scales(sc, 8 * h + 2 * s);
                for (int k = 0; k < K; k++)
                    sumi[k] = _mm256_add_epi32(
                        sumi[k], dot_us_scaled(u[s], load256(q8k(act, k, i)->qs + 128 * h + 32 * s), scp));
            }
        }
        for (int k = 0; k < K; k++) {
            const block_q8_K *y = q8k(act, k, i);
            const __m256i s = _mm256_sub_epi32(sumi[k], _mm256_slli_epi32(scaled_bsums(sc, y), 5));
            acc[k] += h2f(x[i].d) * y->d * (float)hsum_i32(s);
        }
    }
    for (int k = 0; k < K; k++) out[k] = acc[k];
}

/* IQ4_XS: x86_quant.h's loop of IQ2_XXS and IQ1_S (only the decoding of a block differs). */
BLOCKS32_DOTK(iq4_xs, block_iq4_xs, no_shift, 1.0f)

DOT_FNS(q4_0)
DOT_FNS(q4_1)
DOT_FNS(q5_0)
DOT_FNS(q5_1)
DOT_FNS(q8_0)
DOT_FNS(iq4_nl)
DOT_FNS(mxfp4)
DOT_FNS(q2_K)
DOT_FNS(q3_K)
DOT_FNS(q4_K)
DOT_FNS(q5_K)
DOT_FNS(q6_K)
DOT_FNS(iq4_xs)
DOT_FNS(iq2_xxs)
DOT_FNS(iq1_s)

/* ---- activation quantizers ---- */

static inline float hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

INLINE __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

/* Four vectors of int32 to 32 bytes in order, keeping each one's low byte as a store to int8_t
   does (the unsigned packs cannot saturate once the other bytes are masked off). */
INLINE __m256i low_bytes(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ff = _mm256_set1_epi32(0xff);
    __m256i ab = _mm256_packus_epi32(_mm256_and_si256(a, ff), _mm256_and_si256(b, ff));
    __m256i cd = _mm256_packus_epi32(_mm256_and_si256(c, ff), _mm256_and_si256(d, ff));
    return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Sums of the 32 int8 of q: bytes 0-15 in [0], 16-31 in [1] (|q + 128| summed, less the bias). */
INLINE void sums16(__m256i q, int out[2]) {
    __m256i s = _mm256_sad_epu8(_mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
    s = _mm256_add_epi64(s, _mm256_bsrli_epi128(s, 8));
    out[0] = _mm256_extract_epi32(s, 0) - 16 * 128;
    out[1] = _mm256_extract_epi32(s, 4) - 16 * 128;
}

/* One block of 32 as q8_block in q_legacy.c (ggml's x86 rounding): q = x * (127 / amax) rounded
   half to even, narrowed with saturation (out of range and NaN: cvtps gives INT32_MIN, so -128). */
INLINE float q8_block(const float *x, int8_t *qs) {
    __m256 v[4], m = _mm256_setzero_ps();
    for (int j = 0; j < 4; j++) {
        v[j] = _mm256_loadu_ps(x + 8 * j);
        m = _mm256_max_ps(m, abs8(v[j]));
    }
    const float amax = hmax8(m), id = amax != 0.0f ? 127.f / amax : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int j = 0; j < 4; j++)
        q[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[j], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m256i b16 = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256((__m256i *)qs, _mm256_permutevar8x32_epi32(b16, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    return amax / 127;
}

static void q8_0_act(const float *x, void *row, int64_t n) {
    block_q8_0 *b = row;
    for (int64_t i = 0; i < n / QK; i++, x += QK) b[i].d = f2h(q8_block(x, b[i].qs));
}

static void q8_1_act(const float *x, void *row, int64_t n) {
    block_q8_1 *b = row;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        const float d = q8_block(x, b[i].qs);
        int s[2];
        sums16(load256(b[i].qs), s);
        b[i].d = f2h(d);
        b[i].s = f2h((float)(s[0] + s[1]) * d);
    }
}

/* ggml's nearest_int (quant_impl.h) on 8 lanes: the float adder rounds half to even. */
INLINE __m256i nearest_int8(__m256 v) {
    __m256i i = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.f)));
    return _mm256_sub_epi32(_mm256_and_si256(i, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
}

/* As q8_K_from_f32 in q_k.c: the first value of largest magnitude sets the scale. */
static void q8_K_act(const float *x, void *row, int64_t n) {
    block_q8_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) m = _mm256_max_ps(m, abs8(_mm256_loadu_ps(x + j)));
        const float amax = hmax8(m);
        memset(&b[i], 0, sizeof b[i]);
        if (!amax) continue;
        int first = 0;
        for (int j = 0; j < QK_K; j += 8) {
            int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs8(_mm256_loadu_ps(x + j)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (hit) {
                first = j + __builtin_ctz((unsigned)hit);
                break;
            }
        }
        const float iscale = -127.f / x[first];
        const __m256 vs = _mm256_set1_ps(iscale);
        const __m256i top = _mm256_set1_epi32(127);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q[4];
            for (int t = 0; t < 4; t++)
                q[t] = _mm256_min_epi32(top, nearest_int8(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8 * t))));
            const __m256i bytes = low_bytes(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(b[i].qs + j), bytes);
            int s[2];
            sums16(bytes, s);
            b[i].bsums[j / 16] = (int16_t)s[0];
            b[i].bsums[j / 16 + 1] = (int16_t)s[1];
        }
        b[i].d = 1 / iscale;
    }
}

static const ds_simd_kernels kernels = QUANT_KERNELS("avx2");

/* The block-format entries of the AVX2 table (dispatch.c merges them with x86_avx2.c's). */
const ds_simd_kernels *ds_simd_avx2_quant_table(void);
const ds_simd_kernels *ds_simd_avx2_quant_table(void) { return &kernels; }
