/* x86_avx512_quant.c - AVX-512 (F, BW, VL) kernels for ggml's block formats: the dot product of a
   weight row with one or four quantized activation rows, and the activation quantizers.

   Built twice (meson.build): as is, and with -mavx512vnni -DDS_VNNI, where the integer dot
   products use vpdpbusd (bytes times bytes, summed in fours into int32) and vpdpwssd (int16
   pairs times int16 scales, summed into int32) in place of maddubs + madd + add. The two give
   the same integers, so the same floats. dispatch.c calls nothing here before the CPU (and for
   the VNNI build, its avx512vnni flag) has been seen to support it.

   The approach is x86_avx2_quant.c's (read its top first), 64 quants to a register: blocks of
   32 go two at a time; a super-block of 256 goes in chunks of 64 elements, and sign tricks use
   byte masks (apply_signs) where AVX2 has psignb. IQ2_XXS and IQ1_S, whose weights come from
   codebook lookups, are AVX2's kernels from x86_quant.h, 32 quants a step on 256 bits, with
   this file's pair step (VNNI's vpdpwssd on AVX-512VL). Activation quantizers narrow with
   vpmovdb, which keeps the low byte as the scalar code's store to int8_t does. Shared helpers
   are in x86_quant.h. */
#include "x86_dequant.h"

INLINE __m512i load512(const void *p) { return _mm512_loadu_si512(p); }
/* acc + u x s: unsigned bytes times signed bytes, summed in fours. acc + p x sc: int16 pairs
   times int16 scales, summed in pairs. (Without VNNI, maddubs pairs are exact here: |u| <= 128
   and |s| <= 127, see x86_avx2_quant.c.) */
#ifdef DS_VNNI
INLINE __m512i dp_us(__m512i acc, __m512i u, __m512i s) { return _mm512_dpbusd_epi32(acc, u, s); }
INLINE __m512i dp_pairs(__m512i acc, __m512i p, __m512i sc) { return _mm512_dpwssd_epi32(acc, p, sc); }
#else
INLINE __m512i dp_us(__m512i acc, __m512i u, __m512i s) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
}
INLINE __m512i dp_pairs(__m512i acc, __m512i p, __m512i sc) { return _mm512_add_epi32(acc, _mm512_madd_epi16(p, sc)); }
#endif

/* acc + (u x s in pairs) x a 16-bit scale per pair. */
INLINE __m512i dp_us_scaled(__m512i acc, __m512i u, __m512i s, __m512i sc16) {
    return dp_pairs(acc, _mm512_maddubs_epi16(u, s), sc16);
}

/* The same on 256 bits (AVX-512VL): x86_quant.h's pair step, for its IQ2_XXS and IQ1_S kernels. */
#ifdef DS_VNNI
INLINE __m256i dp_pairs256(__m256i acc, __m256i p, __m256i sc) { return _mm256_dpwssd_epi32(acc, p, sc); }
#else
INLINE __m256i dp_pairs256(__m256i acc, __m256i p, __m256i sc) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, sc));
}
#endif

/* y negated where the mask (the weights' signs) is set. */
INLINE __m512i apply_signs(__m512i y, __mmask64 neg) { return _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y); }

/* Two 16-bit scales: a for the low 256 bits, b for the high. */
INLINE __m512i halves16(int a, int b) {
    return _mm512_mask_blend_epi16(0xffff0000u, _mm512_set1_epi16((short)a), _mm512_set1_epi16((short)b));
}

/* One 256-bit value in both halves. */
INLINE __m512i both_halves(__m256i v) { return _mm512_broadcast_i64x4(v); }

/* Per 16-bit lane shift counts: a in the low 256 bits, b in the high. */
INLINE __m512i shifts(int a, int b) { return halves16(a, b); }

/* The 16-bit scales of four sub-blocks of 16 (first, first + 1, ...), one per 128-bit lane,
   taken from 16 scales as int16 (maddubs keeps each 128-bit lane's pairs apart). */
INLINE __m512i lane_scales(__m256i s16, int first) {
    const __m512i idx =
        _mm512_add_epi16(_mm512_set1_epi16((short)first),
                         _mm512_set_epi64(0x0003000300030003, 0x0003000300030003, 0x0002000200020002,
                                          0x0002000200020002, 0x0001000100010001, 0x0001000100010001, 0, 0));
    return _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(s16));
}

/* ---- blocks of 32 (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL), two to a register ----

   Blocks a = i and b = i + 1 fill the low and high halves of a register. Four blocks a step,
   their F16 scales converted four at a time (one conversion instead of four is what the float
   side of a block costs most); then a last pair, and an odd last block alone with zeros above
   (zero weights, zero activations, zero scale: adds exactly 0). */

typedef struct {
    __m512 v[4];
    __m128 min4[4]; /* Q4_1 / Q5_1: the sums of m * s, kept apart as the scalar code does */
    float min[4];
} acc32;

INLINE void acc32_init(acc32 *a, const int K) {
    for (int k = 0; k < K; k++) {
        a->v[k] = _mm512_setzero_ps();
        a->min4[k] = _mm_setzero_ps();
        a->min[k] = 0;
    }
}

INLINE void acc32_done(const acc32 *a, float *out, const int K) {
    for (int k = 0; k < K; k++) out[k] = _mm512_reduce_add_ps(a->v[k]) + (hsum4(a->min4[k]) + a->min[k]);
}

/* Lanes j and j + 1 of the four block factors d: j's in the low half, j + 1's in the high. */
INLINE __m512 lanes(__m128 d, int j) {
    const __m512i idx =
        _mm512_add_epi32(_mm512_set1_epi32(j), _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0));
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(d));
}

/* The activation quants of blocks i and (if two) i + 1. */
INLINE __m512i act_pair(const int8_t *qa, const int8_t *qb, int two) {
    if (!two) return _mm512_zextsi256_si512(load256(qa));
    return _mm512_inserti64x4(_mm512_castsi256_si512(load256(qa)), load256(qb), 1);
}

/* The per-block float factor: da in the low half, db in the high half. */
INLINE __m512 scale_pair(float da, float db) {
    return _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(da), _mm512_set1_ps(db));
}

/* Signed weights of blocks i..i+3 (pairs w[0], w[1]; scales dx) against each Q8_0 row. */
INLINE void q8_0_quad(acc32 *a, const __m512i w[2], __m128 dx, const void *const *act, int64_t i, const int K) {
    const __m512i aw[2] = {_mm512_abs_epi8(w[0]), _mm512_abs_epi8(w[1])};
    const __mmask64 neg[2] = {_mm512_movepi8_mask(w[0]), _mm512_movepi8_mask(w[1])};
    for (int k = 0; k < K; k++) {
        const block_q8_0 *y = (const block_q8_0 *)act[k] + i;
        const __m128 d = _mm_mul_ps(dx, f16x4(&y->d, sizeof *y));
        for (int j = 0; j < 2; j++) {
            const __m512i ys = apply_signs(act_pair(y[2 * j].qs, y[2 * j + 1].qs, 1), neg[j]);
            const __m512 s = _mm512_cvtepi32_ps(dp_us(_mm512_setzero_si512(), aw[j], ys));
            a->v[k] = _mm512_fmadd_ps(lanes(d, 2 * j), s, a->v[k]);
        }
    }
}

/* Signed weights w of blocks i, i + 1 (scales dxa, dxb) against each Q8_0 row. */
INLINE void q8_0_pair(acc32 *a, __m512i w, float dxa, float dxb, const void *const *act, int64_t i, int two,
                      const int K) {
    const __m512i aw = _mm512_abs_epi8(w);
    const __mmask64 neg = _mm512_movepi8_mask(w);
    for (int k = 0; k < K; k++) {
        const block_q8_0 *y = (const block_q8_0 *)act[k] + i;
        const __m512i ys = apply_signs(act_pair(y[0].qs, two ? y[1].qs : NULL, two), neg);
        const __m512 s = _mm512_cvtepi32_ps(dp_us(_mm512_setzero_si512(), aw, ys));
        const __m512 d = scale_pair(dxa * h2f(y[0].d), two ? dxb * h2f(y[1].d) : 0.0f);
        a->v[k] = _mm512_fmadd_ps(d, s, a->v[k]);
    }
}

/* Unsigned weights of blocks i..i+3 (pairs u[0], u[1]; scales dx, minimums m) against each Q8_1 row. */
INLINE void q8_1_quad(acc32 *a, const __m512i u[2], __m128 dx, __m128 m, const void *const *act, int64_t i,
                      const int K) {
    for (int k = 0; k < K; k++) {
        const block_q8_1 *y = (const block_q8_1 *)act[k] + i;
        const __m128 d = _mm_mul_ps(dx, f16x4(&y->d, sizeof *y));
        for (int j = 0; j < 2; j++) {
            const __m512i ys = act_pair(y[2 * j].qs, y[2 * j + 1].qs, 1);
            const __m512 s = _mm512_cvtepi32_ps(dp_us(_mm512_setzero_si512(), u[j], ys));
            a->v[k] = _mm512_fmadd_ps(lanes(d, 2 * j), s, a->v[k]);
        }
        a->min4[k] = _mm_fmadd_ps(m, f16x4(&y->s, sizeof *y), a->min4[k]);
    }
}

/* Unsigned weights u of blocks i, i + 1 (scales dxa, dxb, minimums ma, mb) against each Q8_1 row. */
INLINE void q8_1_pair(acc32 *a, __m512i u, float dxa, float dxb, float ma, float mb, const void *const *act, int64_t i,
                      int two, const int K) {
    for (int k = 0; k < K; k++) {
        const block_q8_1 *y = (const block_q8_1 *)act[k] + i;
        const __m512 s =
            _mm512_cvtepi32_ps(dp_us(_mm512_setzero_si512(), u, act_pair(y[0].qs, two ? y[1].qs : NULL, two)));
        const __m512 d = scale_pair(dxa * h2f(y[0].d), two ? dxb * h2f(y[1].d) : 0.0f);
        a->v[k] = _mm512_fmadd_ps(d, s, a->v[k]);
        a->min[k] += ma * h2f(y[0].s);
        if (two) a->min[k] += mb * h2f(y[1].s);
    }
}

/* Two blocks' 16 bytes of nibbles as 64 bytes in element order: a's low nibbles (elements
   0-15), a's high nibbles (16-31), then b's. Without b, zeros above. */
INLINE __m512i nibbles64(const uint8_t *qa, const uint8_t *qb, int two) {
    __m512i v = two ? _mm512_broadcast_i32x4(load128(qa)) : _mm512_maskz_broadcast_i32x4(0x00ff, load128(qa));
    if (two) v = _mm512_mask_broadcast_i32x4(v, 0xff00, load128(qb));
    const __m512i sh =
        _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0, 0, 0x0004000400040004, 0x0004000400040004, 0, 0);
    return _mm512_and_si512(_mm512_srlv_epi16(v, sh), _mm512_set1_epi8(0x0f));
}

/* The fifth bits of two blocks as one byte mask (element order as nibbles64). */
INLINE __mmask64 bits64(const uint8_t *qha, const uint8_t *qhb, int two) {
    return (__mmask64)load_u32(qha) | (two ? (__mmask64)load_u32(qhb) << 32 : 0);
}

/* Weight decoders: blocks b[0] and (if two) b[1] -> 64 bytes in element order. */
INLINE __m512i q4_0_w(const block_q4_0 *b, int two) {
    return _mm512_sub_epi8(nibbles64(b[0].qs, two ? b[1].qs : NULL, two), _mm512_set1_epi8(8));
}
INLINE __m512i q4_1_u(const block_q4_1 *b, int two) { return nibbles64(b[0].qs, two ? b[1].qs : NULL, two); }
INLINE __m512i q5_0_w(const block_q5_0 *b, int two) {
    const __m512i nib = nibbles64(b[0].qs, two ? b[1].qs : NULL, two);
    const __mmask64 clear = ~bits64(b[0].qh, two ? b[1].qh : NULL, two); /* q - 16 */
    return _mm512_mask_sub_epi8(nib, clear, nib, _mm512_set1_epi8(16));
}
INLINE __m512i q5_1_u(const block_q5_1 *b, int two) {
    const __m512i nib = nibbles64(b[0].qs, two ? b[1].qs : NULL, two);
    return _mm512_mask_add_epi8(nib, bits64(b[0].qh, two ? b[1].qh : NULL, two), nib, _mm512_set1_epi8(16));
}
INLINE __m512i q8_0_w(const block_q8_0 *b, int two) { return act_pair(b[0].qs, two ? b[1].qs : NULL, two); }
INLINE __m512i iq4_nl_w(const block_iq4_nl *b, int two) {
    const __m512i values = _mm512_broadcast_i32x4(load128(ds_iq4nl_values));
    return _mm512_shuffle_epi8(values, nibbles64(b[0].qs, two ? b[1].qs : NULL, two));
}
INLINE __m512i mxfp4_w(const block_mxfp4 *b, int two) {
    const __m512i values = _mm512_broadcast_i32x4(load128(ds_mxfp4_values));
    return _mm512_shuffle_epi8(values, nibbles64(b[0].qs, two ? b[1].qs : NULL, two));
}

/* The loop of the signed formats against Q8_0: four blocks a step, then a pair, then one. */
#define SIGNED32_DOTK(name, btype, decode, D4, D1)                                                         \
    INLINE void name##_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) { \
        const btype *x = row;                                                                              \
        const int64_t nb = n / QK;                                                                         \
        acc32 a;                                                                                           \
        acc32_init(&a, K);                                                                                 \
        int64_t i = 0;                                                                                     \
        for (; i + 4 <= nb; i += 4) {                                                                      \
            prefetch_ahead(x + i, 4 * sizeof *x, K);                                                       \
            const __m512i w[2] = {decode(x + i, 1), decode(x + i + 2, 1)};                                 \
            q8_0_quad(&a, w, D4(x + i), act, i, K);                                                        \
        }                                                                                                  \
        if (i + 2 <= nb) {                                                                                 \
            q8_0_pair(&a, decode(x + i, 1), D1(x + i), D1(x + i + 1), act, i, 1, K);                       \
            i += 2;                                                                                        \
        }                                                                                                  \
        if (i < nb) q8_0_pair(&a, decode(x + i, 0), D1(x + i), 0.0f, act, i, 0, K);                        \
        acc32_done(&a, out, K);                                                                            \
    }

/* The loop of the formats with a minimum against Q8_1. */
#define MIN32_DOTK(name, btype, decode)                                                                                \
    INLINE void name##_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {             \
        const btype *x = row;                                                                                          \
        const int64_t nb = n / QK;                                                                                     \
        acc32 a;                                                                                                       \
        acc32_init(&a, K);                                                                                             \
        int64_t i = 0;                                                                                                 \
        for (; i + 4 <= nb; i += 4) {                                                                                  \
            prefetch_ahead(x + i, 4 * sizeof *x, K);                                                                   \
            const __m512i u[2] = {decode(x + i, 1), decode(x + i + 2, 1)};                                             \
            q8_1_quad(&a, u, f16x4(&x[i].d, sizeof *x), f16x4(&x[i].m, sizeof *x), act, i, K);                         \
        }                                                                                                              \
        if (i + 2 <= nb) {                                                                                             \
            q8_1_pair(&a, decode(x + i, 1), h2f(x[i].d), h2f(x[i + 1].d), h2f(x[i].m), h2f(x[i + 1].m), act, i, 1, K); \
            i += 2;                                                                                                    \
        }                                                                                                              \
        if (i < nb) q8_1_pair(&a, decode(x + i, 0), h2f(x[i].d), 0.0f, h2f(x[i].m), 0.0f, act, i, 0, K);               \
        acc32_done(&a, out, K);                                                                                        \
    }

SIGNED32_DOTK(q4_0, block_q4_0, q4_0_w, D16_4, D16_1)
SIGNED32_DOTK(q5_0, block_q5_0, q5_0_w, D16_4, D16_1)
SIGNED32_DOTK(q8_0, block_q8_0, q8_0_w, D16_4, D16_1)
SIGNED32_DOTK(iq4_nl, block_iq4_nl, iq4_nl_w, D16_4, D16_1)
SIGNED32_DOTK(mxfp4, block_mxfp4, mxfp4_w, E8_4, E8_1)
MIN32_DOTK(q4_1, block_q4_1, q4_1_u)
MIN32_DOTK(q5_1, block_q5_1, q5_1_u)

/* ---- super-blocks of 256 against Q8_K ----

   As in x86_avx2_quant.c: exact int32 sums per super-block, offsets and minimums through the
   bsums, and Q3_K / Q6_K (whose lanes hold large partial sums that cancel only in the total)
   added up in integers before the float scale. */

/* Sub-block scales (16, as int16) times the bsums, in pairs: the offset and minimum terms. */
INLINE __m256i scaled_bsums(__m256i s16, const block_q8_K *y) { return _mm256_madd_epi16(s16, load256(y->bsums)); }

INLINE __m512 zext_ps(__m256i v) { return _mm512_cvtepi32_ps(_mm512_zextsi256_si512(v)); }

/* Q2_K: in half h, qs[32 h + l] holds elements 128 h + 32 s + l at bits 2 s. */
INLINE void q2_K_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {
    const block_q2_K *x = row;
    __m512 acc[4];
    for (int k = 0; k < K; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(x + i, sizeof *x, K);
        const __m128i raw = load128(x[i].scales), m4 = _mm_set1_epi8(0x0f);
        const __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(raw, m4));
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
        __m512i sumi[4];
        for (int k = 0; k < K; k++) sumi[k] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
            const __m512i b = both_halves(load256(x[i].qs + 32 * h)), three = _mm512_set1_epi8(3);
            const __m512i q[2] = {_mm512_and_si512(_mm512_srlv_epi16(b, shifts(0, 2)), three),
                                  _mm512_and_si512(_mm512_srlv_epi16(b, shifts(4, 6)), three)};
#pragma GCC unroll 8
            for (int t = 0; t < 2; t++) {
                const __m512i scl = lane_scales(sc, 8 * h + 4 * t);
                for (int k = 0; k < K; k++)
                    sumi[k] = dp_us_scaled(sumi[k], q[t], load512(q8k(act, k, i)->qs + 128 * h + 64 * t), scl);
            }
        }
        for (int k = 0; k < K; k++) {
            const block_q8_K *y = q8k(act, k, i);
            acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(y->d * h2f(x[i].d)), _mm512_cvtepi32_ps(sumi[k]), acc[k]);
            acc[k] = _mm512_fnmadd_ps(_mm512_set1_ps(y->d * h2f(x[i].dmin)), zext_ps(scaled_bsums(mins, y)), acc[k]);
        }
    }
    for (int k = 0; k < K; k++) out[k] = _mm512_reduce_add_ps(acc[k]);
}

/* Byte masks of bit a (low 256 bits) and bit b (high 256 bits) of v. */
INLINE __mmask64 test_bits(__m512i v, int a, int b) {
    return _mm512_test_epi8_mask(v, _mm512_mask_blend_epi8(0xffffffff00000000ull, _mm512_set1_epi8((char)(1 << a)),
                                                           _mm512_set1_epi8((char)(1 << b))));
}

/* Q3_K: u = low two bits + 4 where the hmask bit is set (element 128 h + 32 s + l: byte l,
   bit 4 h + s); q = u - 4 through the bsums. */
INLINE void q3_K_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {
    const block_q3_K *x = row;
    float acc[4] = {0};
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(x + i, sizeof *x, K);
        const __m256i sc = _mm256_cvtepi8_epi16(q3_scales(x[i].scales));
        const __m512i hb = both_halves(load256(x[i].hmask)), three = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
        __m512i sumi[4];
        for (int k = 0; k < K; k++) sumi[k] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
            const __m512i b = both_halves(load256(x[i].qs + 32 * h));
#pragma GCC unroll 8
            for (int t = 0; t < 2; t++) {
                __m512i u = _mm512_and_si512(_mm512_srlv_epi16(b, shifts(4 * t, 4 * t + 2)), three);
                u = _mm512_mask_add_epi8(u, test_bits(hb, 4 * h + 2 * t, 4 * h + 2 * t + 1), u, four);
                const __m512i scl = lane_scales(sc, 8 * h + 4 * t);
                for (int k = 0; k < K; k++)
                    sumi[k] = dp_us_scaled(sumi[k], u, load512(q8k(act, k, i)->qs + 128 * h + 64 * t), scl);
            }
        }
        for (int k = 0; k < K; k++) {
            const block_q8_K *y = q8k(act, k, i);
            const __m512i corr = _mm512_zextsi256_si512(_mm256_slli_epi32(scaled_bsums(sc, y), 2));
            acc[k] += h2f(x[i].d) * y->d * (float)_mm512_reduce_add_epi32(_mm512_sub_epi32(sumi[k], corr));
        }
    }
    for (int k = 0; k < K; k++) out[k] = acc[k];
}

/* Q4_K and Q5_K: chunk c of 64 elements = qs[32 c ..] low nibbles (sub-block 2 c), then high
   nibbles (2 c + 1); Q5_K's fifth bit of element 32 j + l is bit j of qh[l]. */
INLINE void k4_block(const uint8_t *qs, const uint8_t *qh, const uint8_t scales[12], float d, float dmin,
                     const void *const *act, int64_t i, __m512 *acc, const int K) {
    const __m128i sm = k4_scales(scales);
    const __m512i sc16 = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sm));   /* sc0 ... sc7 in every lane */
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm)); /* m0 m0 m1 m1 ... */
    const __m512i hb = qh ? both_halves(load256(qh)) : _mm512_setzero_si512();
    __m512i sumi[4];
    for (int k = 0; k < K; k++) sumi[k] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int c = 0; c < 4; c++) {
        const __m256i b = load256(qs + 32 * c), m4 = _mm256_set1_epi8(0x0f);
        __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(b, m4)),
                                       _mm256_and_si256(_mm256_srli_epi16(b, 4), m4), 1);
        if (qh) q = _mm512_mask_add_epi8(q, test_bits(hb, 2 * c, 2 * c + 1), q, _mm512_set1_epi8(16));
        const __m512i scl = _mm512_shuffle_epi8(sc16, halves16(0x0100 + 0x0202 * 2 * c, 0x0100 + 0x0202 * (2 * c + 1)));
        for (int k = 0; k < K; k++) sumi[k] = dp_us_scaled(sumi[k], q, load512(q8k(act, k, i)->qs + 64 * c), scl);
    }
    for (int k = 0; k < K; k++) {
        const block_q8_K *y = q8k(act, k, i);
        acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(d * y->d), _mm512_cvtepi32_ps(sumi[k]), acc[k]);
        acc[k] = _mm512_fnmadd_ps(_mm512_set1_ps(dmin * y->d), zext_ps(scaled_bsums(mins, y)), acc[k]);
    }
}

INLINE void q4_K_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {
    const block_q4_K *x = row;
    __m512 acc[4];
    for (int k = 0; k < K; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(x + i, sizeof *x, K);
        k4_block(x[i].qs, NULL, x[i].scales, h2f(x[i].d), h2f(x[i].dmin), act, i, acc, K);
    }
    for (int k = 0; k < K; k++) out[k] = _mm512_reduce_add_ps(acc[k]);
}

INLINE void q5_K_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {
    const block_q5_K *x = row;
    __m512 acc[4];
    for (int k = 0; k < K; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(x + i, sizeof *x, K);
        k4_block(x[i].qs, x[i].qh, x[i].scales, h2f(x[i].d), h2f(x[i].dmin), act, i, acc, K);
    }
    for (int k = 0; k < K; k++) out[k] = _mm512_reduce_add_ps(acc[k]);
}

/* Q6_K: u = low nibble | two high bits << 4, q = u - 32 through the bsums. In half h, ql[64 h ..]
   holds elements 0-63 in its low nibbles and 64-127 in its high ones; qh[32 h + l] holds the
   high bits of elements l, 32 + l, 64 + l, 96 + l at bits 0, 2, 4, 6. */
INLINE void q6_K_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {
    const block_q6_K *x = row;
    float acc[4] = {0};
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(x + i, sizeof *x, K);
        const __m256i sc = _mm256_cvtepi8_epi16(load128(x[i].scales));
        const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x30);
        __m512i sumi[4];
        for (int k = 0; k < K; k++) sumi[k] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
            const __m512i l = load512(x[i].ql + 64 * h), hb = both_halves(load256(x[i].qh + 32 * h));
            const __m512i u[2] = {
                _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_sllv_epi16(hb, shifts(4, 2)), m2)),
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                _mm512_and_si512(_mm512_srlv_epi16(hb, shifts(0, 2)), m2)),
            };
#pragma GCC unroll 8
            for (int t = 0; t < 2; t++) {
                const __m512i scl = lane_scales(sc, 8 * h + 4 * t);
                for (int k = 0; k < K; k++)
                    sumi[k] = dp_us_scaled(sumi[k], u[t], load512(q8k(act, k, i)->qs + 128 * h + 64 * t), scl);
            }
        }
        for (int k = 0; k < K; k++) {
            const block_q8_K *y = q8k(act, k, i);
            const __m512i corr = _mm512_zextsi256_si512(_mm256_slli_epi32(scaled_bsums(sc, y), 5));
            acc[k] += h2f(x[i].d) * y->d * (float)_mm512_reduce_add_epi32(_mm512_sub_epi32(sumi[k], corr));
        }
    }
    for (int k = 0; k < K; k++) out[k] = acc[k];
}

/* IQ4_XS: two blocks of 32 per register; qs[16 ib ..] holds block ib's elements 0-15 in low
   nibbles and 16-31 in high ones. */
INLINE void iq4_xs_dotk(const void *row, const void *const *act, int64_t n, float *out, const int K) {
    const block_iq4_xs *x = row;
    const __m512i values = _mm512_broadcast_i32x4(load128(ds_iq4nl_values));
    const __m512i sh =
        _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0, 0, 0x0004000400040004, 0x0004000400040004, 0, 0);
    __m512 acc[4];
    for (int k = 0; k < K; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(x + i, sizeof *x, K);
        __m512i sumi[4];
        for (int k = 0; k < K; k++) sumi[k] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int c = 0; c < 4; c++) {
            const __m512i b = _mm512_castsi256_si512(load256(x[i].qs + 32 * c));
            const __m512i nib = _mm512_and_si512(
                _mm512_srlv_epi16(_mm512_shuffle_i64x2(b, b, _MM_SHUFFLE(1, 1, 0, 0)), sh), _mm512_set1_epi8(0x0f));
            const __m512i w = _mm512_shuffle_epi8(values, nib), aw = _mm512_abs_epi8(w);
            const __mmask64 neg = _mm512_movepi8_mask(w);
            int ls[2];
            for (int j = 0; j < 2; j++) {
                const int ib = 2 * c + j;
                ls[j] = (((x[i].scales_l[c] >> 4 * j) & 0xf) | ((x[i].scales_h >> 2 * ib) & 3) << 4) - 32;
            }
            const __m512i scl = halves16(ls[0], ls[1]);
            for (int k = 0; k < K; k++)
                sumi[k] = dp_us_scaled(sumi[k], aw, apply_signs(load512(q8k(act, k, i)->qs + 64 * c), neg), scl);
        }
        for (int k = 0; k < K; k++) {
            const block_q8_K *y = q8k(act, k, i);
            acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(h2f(x[i].d) * y->d), _mm512_cvtepi32_ps(sumi[k]), acc[k]);
        }
    }
    for (int k = 0; k < K; k++) out[k] = _mm512_reduce_add_ps(acc[k]);
}

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

/* ---- activation quantizers (the same operations as x86_avx2_quant.c's, 16 lanes) ---- */

INLINE __m512 abs16(__m512 v) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
}

/* x * id rounded half to even, to int8 with saturation (out of range and NaN: INT32_MIN first, as
   x86_avx2_quant.c's q8_block). */
INLINE __m128i q8_lanes(__m512 v, __m512 vid) {
    return _mm512_cvtsepi32_epi8(_mm512_cvt_roundps_epi32(_mm512_mul_ps(v, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* One block of 32 as q8_block in q_legacy.c; returns d, and the sum of the quants in *sum. */
INLINE float q8_block(const float *x, int8_t *qs, int *sum) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(abs16(v0), abs16(v1)));
    const __m512 vid = _mm512_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
    const __m128i q0 = q8_lanes(v0, vid), q1 = q8_lanes(v1, vid);
    _mm_storeu_si128((__m128i *)qs, q0);
    _mm_storeu_si128((__m128i *)(qs + 16), q1);
    if (sum) *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_cvtepi8_epi32(q0), _mm512_cvtepi8_epi32(q1)));
    return amax / 127;
}

static void q8_0_act(const float *x, void *row, int64_t n) {
    block_q8_0 *b = row;
    for (int64_t i = 0; i < n / QK; i++, x += QK) b[i].d = f2h(q8_block(x, b[i].qs, NULL));
}

static void q8_1_act(const float *x, void *row, int64_t n) {
    block_q8_1 *b = row;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        int sum;
        const float d = q8_block(x, b[i].qs, &sum);
        b[i].d = f2h(d);
        b[i].s = f2h((float)sum * d);
    }
}

/* ggml's nearest_int on 16 lanes. */
INLINE __m512i nearest_int16(__m512 v) {
    __m512i i = _mm512_castps_si512(_mm512_add_ps(v, _mm512_set1_ps(12582912.f)));
    return _mm512_sub_epi32(_mm512_and_si512(i, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x00400000));
}

/* As q8_K_from_f32 in q_k.c: the first value of largest magnitude sets the scale; each 16 quants
   are one bsum. */
static void q8_K_act(const float *x, void *row, int64_t n) {
    block_q8_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int j = 0; j < QK_K; j += 16) m = _mm512_max_ps(m, abs16(_mm512_loadu_ps(x + j)));
        const float amax = _mm512_reduce_max_ps(m);
        memset(&b[i], 0, sizeof b[i]);
        if (!amax) continue;
        int first = 0;
        for (int j = 0; j < QK_K; j += 16) {
            const __mmask16 hit = _mm512_cmp_ps_mask(abs16(_mm512_loadu_ps(x + j)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (hit) {
                first = j + __builtin_ctz(hit);
                break;
            }
        }
        const float iscale = -127.f / x[first];
        const __m512 vs = _mm512_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 16) {
            const __m512i q =
                _mm512_min_epi32(_mm512_set1_epi32(127), nearest_int16(_mm512_mul_ps(vs, _mm512_loadu_ps(x + j))));
            const __m128i bytes = _mm512_cvtepi32_epi8(q);
            _mm_storeu_si128((__m128i *)(b[i].qs + j), bytes);
            b[i].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(bytes));
        }
        b[i].d = 1 / iscale;
    }
}

#ifdef DS_VNNI
#define NAME "avx512vnni"
#define TABLE ds_simd_avx512vnni_quant_table
#else
#define NAME "avx512"
#define TABLE ds_simd_avx512_quant_table
#endif

static const ds_simd_kernels kernels = QUANT_KERNELS(NAME);

/* The block-format entries of this build's table (dispatch.c merges them with x86_avx512.c's). */
const ds_simd_kernels *TABLE(void);
const ds_simd_kernels *TABLE(void) { return &kernels; }
