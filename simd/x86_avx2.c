/* x86_avx2.c - AVX2 + FMA + F16C kernels. Compiled with those extensions enabled; called only
   after dispatch.c has seen the CPU support them. */
#include <immintrin.h>
#include <string.h>

#include "../deepseek.h"
#include "simd.h"

/* Sum of the 8 lanes, pairwise. */
static float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

static inline __m256 load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline __m256 load_bf16(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

/* Decoding streams each weight row once from memory; prefetching this far ahead (measured on
   a V2-Lite-shaped F16 model, one thread: 18 -> 23 tok/s) keeps the stream going across the
   page boundaries the hardware prefetcher stops at. */
#define PREFETCH_BYTES 1536

/* Two accumulators hide the FMA latency; the tail goes through the scalar conversion. */
#define DOT8(LOADV, LOADS)                                                      \
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                  \
    int64_t i = 0;                                                              \
    for (; i + 16 <= n; i += 16) {                                              \
        _mm_prefetch((const char *)(w + i) + PREFETCH_BYTES, _MM_HINT_T0);      \
        a0 = _mm256_fmadd_ps(LOADV(w + i), _mm256_loadu_ps(x + i), a0);         \
        a1 = _mm256_fmadd_ps(LOADV(w + i + 8), _mm256_loadu_ps(x + i + 8), a1); \
    }                                                                           \
    if (i + 8 <= n) {                                                           \
        a0 = _mm256_fmadd_ps(LOADV(w + i), _mm256_loadu_ps(x + i), a0);         \
        i += 8;                                                                 \
    }                                                                           \
    float tail = 0;                                                             \
    for (; i < n; i++) tail += LOADS(w[i]) * x[i];                              \
    return hsum8(_mm256_add_ps(a0, a1)) + tail;

static float dot_f32(const void *row, const float *x, int64_t n) {
    const float *w = row;
#define LOADV_F32(p) _mm256_loadu_ps(p)
#define LOADS_F32(v) (v)
    DOT8(LOADV_F32, LOADS_F32)
}

static float dot_f16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
    DOT8(load_f16, ds_fp16_to_fp32)
}

static float dot_bf16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
    DOT8(load_bf16, ds_bf16_to_fp32)
}

/* DOT8 for four vectors at once: each keeps the single version's two accumulators and tail,
   so its sums are the same bit for bit; the row is loaded (and converted) once for all four. */
#define DOT8X4(LOADV, LOADS)                                                                           \
    __m256 a[4][2];                                                                                    \
    for (int k = 0; k < 4; k++) a[k][0] = a[k][1] = _mm256_setzero_ps();                               \
    int64_t i = 0;                                                                                     \
    for (; i + 16 <= n; i += 16) {                                                                     \
        __m256 w0 = LOADV(w + i), w1 = LOADV(w + i + 8);                                               \
        for (int k = 0; k < 4; k++) {                                                                  \
            a[k][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[k] + i), a[k][0]);                         \
            a[k][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[k] + i + 8), a[k][1]);                     \
        }                                                                                              \
    }                                                                                                  \
    if (i + 8 <= n) {                                                                                  \
        __m256 w0 = LOADV(w + i);                                                                      \
        for (int k = 0; k < 4; k++) a[k][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[k] + i), a[k][0]); \
        i += 8;                                                                                        \
    }                                                                                                  \
    for (int k = 0; k < 4; k++) {                                                                      \
        float tail = 0;                                                                                \
        for (int64_t j = i; j < n; j++) tail += LOADS(w[j]) * x[k][j];                                 \
        out[k] = hsum8(_mm256_add_ps(a[k][0], a[k][1])) + tail;                                        \
    }

static void dot4_f32(const void *row, const float *const x[4], int64_t n, float out[4]) {
    const float *w = row;
    DOT8X4(LOADV_F32, LOADS_F32)
}

static void dot4_f16(const void *row, const float *const x[4], int64_t n, float out[4]) {
    const uint16_t *w = row;
    DOT8X4(load_f16, ds_fp16_to_fp32)
}

static void dot4_bf16(const void *row, const float *const x[4], int64_t n, float out[4]) {
    const uint16_t *w = row;
    DOT8X4(load_bf16, ds_bf16_to_fp32)
}

static void f16_to_f32(const void *row, float *out, int64_t n) {
    const uint16_t *w = row;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load_f16(w + i));
    for (; i < n; i++) out[i] = ds_fp16_to_fp32(w[i]);
}

static void bf16_to_f32(const void *row, float *out, int64_t n) {
    const uint16_t *w = row;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load_bf16(w + i));
    for (; i < n; i++) out[i] = ds_bf16_to_fp32(w[i]);
}

/* ---- DeepSeek-V3.2's indexer (simd.h: ds_index_fn), as x86_avx512.c's with four lanes ---- */

/* Four FP8 e4m3 codes as doubles (x86_avx512.c's e4m3_to_pd says how). */
static inline __m256d e4m3_to_pd(const uint8_t *p) {
    int32_t word;
    memcpy(&word, p, sizeof word);
    __m256i c = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(word));
    __m256i em = _mm256_and_si256(c, _mm256_set1_epi64x(0x7f));
    __m256i sub = _mm256_cmpgt_epi64(_mm256_set1_epi64x(8), em);
    em = _mm256_or_si256(em, _mm256_and_si256(sub, _mm256_set1_epi64x(8)));
    __m256i bits = _mm256_add_epi64(_mm256_slli_epi64(em, 49), _mm256_set1_epi64x((int64_t)1016 << 52));
    __m256d low = _mm256_and_pd(_mm256_castsi256_pd(sub), _mm256_set1_pd(0x1p-6));
    __m256d v = _mm256_sub_pd(_mm256_castsi256_pd(bits), low);
    __m256i sign = _mm256_slli_epi64(_mm256_and_si256(c, _mm256_set1_epi64x(0x80)), 56);
    return _mm256_castsi256_pd(_mm256_or_si256(_mm256_castpd_si256(v), sign));
}

#define IDX_KEYS 4
#define KVEC __m256d
#define ACCV __m128
#define KV_ZERO() _mm256_setzero_pd()
#define KV_SET1(x) _mm256_set1_pd(x)
#define KV_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define KV_ADD(a, b) _mm256_add_pd(a, b)
#define ACC_ZERO() _mm_setzero_ps()
#define ACC_STORE(p, v) _mm_storeu_ps(p, v)

static inline __m128 add_head(__m128 acc, __m256d dots, float w) {
    __m128 d = _mm_max_ps(_mm256_cvtpd_ps(dots), _mm_setzero_ps());
    return _mm_add_ps(acc, _mm_mul_ps(d, _mm_set1_ps(w)));
}

#include "x86_index.h"

static const ds_simd_kernels kernels = {
    DS_SIMD_FLOAT_KERNELS("avx2", f16_to_f32, bf16_to_f32),
    .index_scores = index_scores,
};

const ds_simd_kernels *ds_simd_avx2_table(void);
const ds_simd_kernels *ds_simd_avx2_table(void) { return &kernels; }
