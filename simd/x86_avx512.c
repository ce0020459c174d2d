/* x86_avx512.c - AVX-512 (F, BW, VL) kernels. Compiled with those extensions enabled; called
   only after dispatch.c has seen the CPU and the OS support them. */
#include <immintrin.h>

#include "../deepseek.h"
#include "simd.h"

static inline __m512 load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline __m512 load_bf16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

/* Decoding streams each weight row once from memory; prefetching this far ahead (measured on
   a V2-Lite-shaped F16 model, one thread: 18 -> 23 tok/s) keeps the stream going across the
   page boundaries the hardware prefetcher stops at. */
#define PREFETCH_BYTES 1536

/* The tail (n % 16) is a masked load: the conversion of the zero-filled lanes adds nothing. */
#define DOT16(LOADV, MASKV)                                                                      \
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();                                   \
    int64_t i = 0;                                                                               \
    for (; i + 32 <= n; i += 32) {                                                               \
        _mm_prefetch((const char *)(w + i) + PREFETCH_BYTES, _MM_HINT_T0);                       \
        a0 = _mm512_fmadd_ps(LOADV(w + i), _mm512_loadu_ps(x + i), a0);                          \
        a1 = _mm512_fmadd_ps(LOADV(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);                \
    }                                                                                            \
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(LOADV(w + i), _mm512_loadu_ps(x + i), a0); \
    if (i < n) {                                                                                 \
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                                          \
        a1 = _mm512_fmadd_ps(MASKV(m, w + i), _mm512_maskz_loadu_ps(m, x + i), a1);              \
    }                                                                                            \
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));

static float dot_f32(const void *row, const float *x, int64_t n) {
    const float *w = row;
#define LOADV_F32(p) _mm512_loadu_ps(p)
#define MASKV_F32(m, p) _mm512_maskz_loadu_ps(m, p)
    DOT16(LOADV_F32, MASKV_F32)
}

#define MASKV_F16(m, p) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p))
static float dot_f16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
    DOT16(load_f16, MASKV_F16)
}

#define MASKV_BF16(m, p) \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16))
static float dot_bf16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
    DOT16(load_bf16, MASKV_BF16)
}

/* DOT16 for four vectors at once, with the single version's accumulators, so the sums agree
   bit for bit; the row is loaded (and converted) once for all four. */
#define DOT16X4(LOADV, MASKV)                                                                                   \
    __m512 a[4][2];                                                                                             \
    for (int k = 0; k < 4; k++) a[k][0] = a[k][1] = _mm512_setzero_ps();                                        \
    int64_t i = 0;                                                                                              \
    for (; i + 32 <= n; i += 32) {                                                                              \
        __m512 w0 = LOADV(w + i), w1 = LOADV(w + i + 16);                                                       \
        for (int k = 0; k < 4; k++) {                                                                           \
            a[k][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[k] + i), a[k][0]);                                  \
            a[k][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[k] + i + 16), a[k][1]);                             \
        }                                                                                                       \
    }                                                                                                           \
    for (; i + 16 <= n; i += 16) {                                                                              \
        __m512 w0 = LOADV(w + i);                                                                               \
        for (int k = 0; k < 4; k++) a[k][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[k] + i), a[k][0]);          \
    }                                                                                                           \
    if (i < n) {                                                                                                \
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                                                         \
        __m512 w0 = MASKV(m, w + i);                                                                            \
        for (int k = 0; k < 4; k++) a[k][1] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, x[k] + i), a[k][1]); \
    }                                                                                                           \
    for (int k = 0; k < 4; k++) out[k] = _mm512_reduce_add_ps(_mm512_add_ps(a[k][0], a[k][1]));

static void dot4_f32(const void *row, const float *const x[4], int64_t n, float out[4]) {
    const float *w = row;
    DOT16X4(LOADV_F32, MASKV_F32)
}

static void dot4_f16(const void *row, const float *const x[4], int64_t n, float out[4]) {
    const uint16_t *w = row;
    DOT16X4(load_f16, MASKV_F16)
}

static void dot4_bf16(const void *row, const float *const x[4], int64_t n, float out[4]) {
    const uint16_t *w = row;
    DOT16X4(load_bf16, MASKV_BF16)
}

static void f16_to_f32(const void *row, float *out, int64_t n) {
    const uint16_t *w = row;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load_f16(w + i));
    for (; i < n; i++) out[i] = ds_fp16_to_fp32(w[i]);
}

static void bf16_to_f32(const void *row, float *out, int64_t n) {
    const uint16_t *w = row;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load_bf16(w + i));
    for (; i < n; i++) out[i] = ds_bf16_to_fp32(w[i]);
}

/* ---- DeepSeek-V3.2's indexer (simd.h: ds_index_fn) ---- */

/* Eight FP8 e4m3 codes as doubles, from the bits: EEEEMMM shifted into a double's exponent and
   mantissa with the bias moved from 7 to 1023 gives 2^(E-7) (1 + M/8); a subnormal (E = 0) is
   taken as 1.M x 2^-6 less 2^-6, which is M x 2^-9 exactly. */
static inline __m512d e4m3_to_pd(const uint8_t *p) {
    __m512i c = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)p));
    __m512i em = _mm512_and_epi64(c, _mm512_set1_epi64(0x7f));
    __mmask8 sub = _mm512_cmplt_epu64_mask(em, _mm512_set1_epi64(8));
    em = _mm512_mask_or_epi64(em, sub, em, _mm512_set1_epi64(8));
    __m512i bits = _mm512_add_epi64(_mm512_slli_epi64(em, 49), _mm512_set1_epi64((int64_t)1016 << 52));
    __m512d v = _mm512_mask_sub_pd(_mm512_castsi512_pd(bits), sub, _mm512_castsi512_pd(bits), _mm512_set1_pd(0x1p-6));
    __m512i sign = _mm512_slli_epi64(_mm512_and_epi64(c, _mm512_set1_epi64(0x80)), 56);
    return _mm512_castsi512_pd(_mm512_or_si512(_mm512_castpd_si512(v), sign));
}

#define IDX_KEYS 8
#define KVEC __m512d
#define ACCV __m256
#define KV_ZERO() _mm512_setzero_pd()
#define KV_SET1(x) _mm512_set1_pd(x)
#define KV_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define KV_ADD(a, b) _mm512_add_pd(a, b)
#define ACC_ZERO() _mm256_setzero_ps()
#define ACC_STORE(p, v) _mm256_storeu_ps(p, v)

/* acc + relu(float(dots)) x w, lane by lane as the reference rounds it */
static inline __m256 add_head(__m256 acc, __m512d dots, float w) {
    __m256 d = _mm256_max_ps(_mm512_cvtpd_ps(dots), _mm256_setzero_ps());
    return _mm256_add_ps(acc, _mm256_mul_ps(d, _mm256_set1_ps(w)));
}

#include "x86_index.h"

static const ds_simd_kernels kernels = {
    DS_SIMD_FLOAT_KERNELS("avx512", f16_to_f32, bf16_to_f32),
    .index_scores = index_scores,
};

const ds_simd_kernels *ds_simd_avx512_table(void);
const ds_simd_kernels *ds_simd_avx512_table(void) { return &kernels; }
