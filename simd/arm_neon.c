/* arm_neon.c - aarch64 kernels. Compiled as is, this is the "neon" level (Advanced SIMD is part
   of every aarch64 CPU). simd/arm_dotprod.c compiles it a second time with DS_ARM_DOTPROD and
   -march=armv8.2-a+dotprod: the "dotprod" level, whose int8 dot products use SDOT, called only
   after dispatch.c has seen HWCAP_ASIMDDP (a Raspberry Pi 5 has it, a Pi 4 does not).

   Float formats: 16 partial sums in four FMA accumulators, so results differ from the scalar
   kernels in the last bits (as on x86), never between the single and four-vector dots.

   Block formats: ggml's generic vec_dot forms exact integer sums and then does a little float
   arithmetic per block. Integer sums do not depend on their order, so these kernels form them
   with vector integer arithmetic and then repeat the scalar kernels' float operations (quant/q_*.c)
   one for one, in their order: they return the scalar kernels' bits, and the tests hold them to
   that. Q3_K ... Q6_K keep eight float lanes by element index mod 8; widening multiplies
   (vmull_s8) keep that split and SDOT's groups of four consecutive products do not, so those four
   formats use vmull_s8 at both levels. The activation quantizers write the scalar ones' bytes.

   Compiled with -ffp-contract=off: a fused multiply-add would change those roundings. */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "../deepseek.h"
#include "../quant/iq_tables.h"
#include "../quant/quant_impl.h"
#include "simd.h"

/* ---- float formats ---- */

static inline float32x4_t load_f32(const float *p) { return vld1q_f32(p); }
static inline float32x4_t load_f16(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
static inline float32x4_t load_bf16(const uint16_t *p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }

/* An F16 through the FCVT instruction: the same bits as ds_fp16_to_fp32, NaNs included. */
static inline float h2f(uint16_t h) {
    __fp16 v;
    memcpy(&v, &h, sizeof v);
    return v;
}

#define SCALAR_F32(v) (v)

/* Four accumulators hide the FMA latency; the tail goes through the scalar conversion. */
#define DOT16(LOADV, LOADS)                                                        \
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;                    \
    int64_t i = 0;                                                                 \
    for (; i + 16 <= n; i += 16) {                                                 \
        a0 = vfmaq_f32(a0, LOADV(w + i), vld1q_f32(x + i));                        \
        a1 = vfmaq_f32(a1, LOADV(w + i + 4), vld1q_f32(x + i + 4));                \
        a2 = vfmaq_f32(a2, LOADV(w + i + 8), vld1q_f32(x + i + 8));                \
        a3 = vfmaq_f32(a3, LOADV(w + i + 12), vld1q_f32(x + i + 12));              \
    }                                                                              \
    for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, LOADV(w + i), vld1q_f32(x + i)); \
    float tail = 0;                                                                \
    for (; i < n; i++) tail += LOADS(w[i]) * x[i];                                 \
    return vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3))) + tail;

static float dot_f32(const void *row, const float *x, int64_t n) {
    const float *w = row;
    DOT16(load_f32, SCALAR_F32)
}

static float dot_f16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
    DOT16(load_f16, h2f)
}

static float dot_bf16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
    DOT16(load_bf16, ds_bf16_to_fp32)
}

/* DOT16 for four vectors: each keeps the single version's accumulators and tail, so its sums
   are the same bit for bit; the row is loaded (and converted) once for all four. */
#define DOT16X4(LOADV, LOADS)                                                                \
    float32x4_t a[4][4];                                                                     \
    for (int k = 0; k < 4; k++) a[k][0] = a[k][1] = a[k][2] = a[k][3] = vdupq_n_f32(0);      \
    int64_t i = 0;                                                                           \
    for (; i + 16 <= n; i += 16) {                                                           \
        float32x4_t w0 = LOADV(w + i), w1 = LOADV(w + i + 4);                                \
        float32x4_t w2 = LOADV(w + i + 8), w3 = LOADV(w + i + 12);                           \
        for (int k = 0; k < 4; k++) {                                                        \
            a[k][0] = vfmaq_f32(a[k][0], w0, vld1q_f32(x[k] + i));                           \
            a[k][1] = vfmaq_f32(a[k][1], w1, vld1q_f32(x[k] + i + 4));                       \
            a[k][2] = vfmaq_f32(a[k][2], w2, vld1q_f32(x[k] + i + 8));                       \
            a[k][3] = vfmaq_f32(a[k][3], w3, vld1q_f32(x[k] + i + 12));                      \
        }                                                                                    \
    }                                                                                        \
    for (; i + 4 <= n; i += 4) {                                                             \
        float32x4_t w0 = LOADV(w + i);                                                       \
        for (int k = 0; k < 4; k++) a[k][0] = vfmaq_f32(a[k][0], w0, vld1q_f32(x[k] + i));   \
    }                                                                                        \
    for (int k = 0; k < 4; k++) {                                                            \
        float tail = 0;                                                                      \
        for (int64_t j = i; j < n; j++) tail += LOADS(w[j]) * x[k][j];                       \
        float32x4_t s = vaddq_f32(vaddq_f32(a[k][0], a[k][1]), vaddq_f32(a[k][2], a[k][3])); \
        out[k] = vaddvq_f32(s) + tail;                                                       \
    }

static void dot4_f32(const void *row, const float *const x[4], int64_t n, float out[4]) {
    const float *w = row;
    DOT16X4(load_f32, SCALAR_F32)
}

static void dot4_f16(const void *row, const float *const x[4], int64_t n, float out[4]) {
    const uint16_t *w = row;
    DOT16X4(load_f16, h2f)
}

static void dot4_bf16(const void *row, const float *const x[4], int64_t n, float out[4]) {
    const uint16_t *w = row;
    DOT16X4(load_bf16, ds_bf16_to_fp32)
}

static void f16_to_f32(const void *row, float *out, int64_t n) {
    const uint16_t *w = row;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(w + i));
        vst1q_f32(out + i, vcvt_f32_f16(vget_low_f16(h)));
        vst1q_f32(out + i + 4, vcvt_high_f32_f16(h));
    }
    for (; i < n; i++) out[i] = h2f(w[i]);
}

static void bf16_to_f32(const void *row, float *out, int64_t n) {
    const uint16_t *w = row;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x8_t h = vld1q_u16(w + i);
        vst1q_f32(out + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
        vst1q_f32(out + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)));
    }
    for (; i < n; i++) out[i] = ds_bf16_to_fp32(w[i]);
}

/* ---- integer sums ---- */

#ifdef DS_ARM_DOTPROD
/* acc + the 16 products a[j] * b[j], grouped in fours (SDOT). */
static inline int32x4_t dot_i8(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
static inline int32x4_t dot_q(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
#else
static inline int32x4_t dot_i8(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}
/* The same for weights a that are never -128: two products then fit an int16 lane
   (|127 * -128| * 2 < 32768). Every format but Q8_0 (any byte) satisfies that. */
static inline int32x4_t dot_q(int32x4_t acc, int8x16_t a, int8x16_t b) {
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    return vpadalq_s16(acc, vmlal_high_s8(p, a, b));
}
#endif

/* The exact sum of the 32 products of w (never -128) with q8. */
static inline int32_t sum32(int8x16_t w0, int8x16_t w1, const int8_t *q8) {
    int32x4_t acc = dot_q(vdupq_n_s32(0), w0, vld1q_s8(q8));
    return vaddvq_s32(dot_q(acc, w1, vld1q_s8(q8 + 16)));
}

/* Eight lanes by element index mod 8, as lo (lanes 0-3) and hi (4-7): lanes += scale * w * q8
   over 16 elements (|w| <= 64) or 32 (|w| <= 32), so the int16 partial sums cannot overflow. */
static inline void lanes16(int32x4_t L[2], int8x16_t w, const int8_t *q8, int scale) {
    int8x16_t b = vld1q_s8(q8);
    int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(b)), w, b);
    L[0] = vmlal_n_s16(L[0], vget_low_s16(p), (int16_t)scale);
    L[1] = vmlal_high_n_s16(L[1], p, (int16_t)scale);
}

static inline void lanes32(int32x4_t L[2], int8x16_t w0, int8x16_t w1, const int8_t *q8, int scale) {
    int8x16_t b0 = vld1q_s8(q8), b1 = vld1q_s8(q8 + 16);
    int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(b0)), w0, b0);
    p = vmlal_high_s8(vmlal_s8(p, vget_low_s8(w1), vget_low_s8(b1)), w1, b1);
    L[0] = vmlal_n_s16(L[0], vget_low_s16(p), (int16_t)scale);
    L[1] = vmlal_high_n_s16(L[1], p, (int16_t)scale);
}

static inline uint8x16_t lo4(uint8x16_t v) { return vandq_u8(v, vdupq_n_u8(0x0f)); }
static inline int8x16_t lo_nibbles(uint8x16_t v) { return vreinterpretq_s8_u8(lo4(v)); }
static inline int8x16_t hi_nibbles(uint8x16_t v) { return vreinterpretq_s8_u8(vshrq_n_u8(v, 4)); }

/* 0xff in byte j where bit j % 8 of byte j / 8 of the pair (b0, b1) is set. */
static inline uint8x16_t bits_of(uint8_t b0, uint8_t b1) {
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    return vtstq_u8(vcombine_u8(vdup_n_u8(b0), vdup_n_u8(b1)), vld1q_u8(bit));
}

/* vec_dot and vec_dot4 of a format from three pieces: unpack(block, &W) turns a weight block into
   int8 vectors once, step(&S, block, &W, act block) adds one block to the sums S, finish(&S) is the
   result. dot4 runs the same steps for each activation, so out[k] is vec_dot's bits. */
#define DEFINE_DOTS(name, wblock, ablock, W, S, per_block)                                         \
    static float name##_dot(const void *row, const void *act, int64_t n) {                         \
        const wblock *x = row;                                                                     \
        const ablock *y = act;                                                                     \
        S s;                                                                                       \
        memset(&s, 0, sizeof s);                                                                   \
        for (int64_t i = 0; i < n / (per_block); i++) {                                            \
            W w;                                                                                   \
            name##_unpack(&x[i], &w);                                                              \
            name##_step(&s, &x[i], &w, &y[i]);                                                     \
        }                                                                                          \
        return name##_finish(&s);                                                                  \
    }                                                                                              \
    static void name##_dot4(const void *row, const void *const act[4], int64_t n, float out[4]) {  \
        const wblock *x = row;                                                                     \
        S s[4];                                                                                    \
        memset(s, 0, sizeof s);                                                                    \
        for (int64_t i = 0; i < n / (per_block); i++) {                                            \
            W w;                                                                                   \
            name##_unpack(&x[i], &w);                                                              \
            for (int k = 0; k < 4; k++) name##_step(&s[k], &x[i], &w, (const ablock *)act[k] + i); \
        }                                                                                          \
        for (int k = 0; k < 4; k++) out[k] = name##_finish(&s[k]);                                 \
    }

/* ---- 32-element formats: one float sum, added to once per block as the scalar code does ---- */

typedef struct {
    int8x16_t q[2];
} w32; /* a block's quants, elements 0-15 and 16-31 */
typedef struct {
    float sumf;
} sum1;

static inline float sum1_finish(const sum1 *s) { return s->sumf; }
#define q4_0_finish sum1_finish
#define q4_1_finish sum1_finish
#define q5_0_finish sum1_finish
#define q5_1_finish sum1_finish
#define q8_0_finish sum1_finish
#define iq4_nl_finish sum1_finish

static inline void q4_0_unpack(const block_q4_0 *b, w32 *w) {
    uint8x16_t v = vld1q_u8(b->qs);
    w->q[0] = vsubq_s8(lo_nibbles(v), vdupq_n_s8(8));
    w->q[1] = vsubq_s8(hi_nibbles(v), vdupq_n_s8(8));
}

static inline void q4_0_step(sum1 *s, const block_q4_0 *x, const w32 *w, const block_q8_0 *y) {
    s->sumf += sum32(w->q[0], w->q[1], y->qs) * h2f(x->d) * h2f(y->d);
}

static inline void q4_1_unpack(const block_q4_1 *b, w32 *w) {
    uint8x16_t v = vld1q_u8(b->qs);
    w->q[0] = lo_nibbles(v);
    w->q[1] = hi_nibbles(v);
}

static inline void q4_1_step(sum1 *s, const block_q4_1 *x, const w32 *w, const block_q8_1 *y) {
    s->sumf += (h2f(x->d) * h2f(y->d)) * sum32(w->q[0], w->q[1], y->qs) + h2f(x->m) * h2f(y->s);
}

/* Q5_0 / Q5_1: the 5th bit of quant j is bit j of qh. */
static inline void q5_unpack(const uint8_t qs[16], const uint8_t qh[4], int bias, w32 *w) {
    uint8x16_t v = vld1q_u8(qs), h16 = vdupq_n_u8(16);
    uint8x16_t h0 = vandq_u8(bits_of(qh[0], qh[1]), h16), h1 = vandq_u8(bits_of(qh[2], qh[3]), h16);
    const int8x16_t b = vdupq_n_s8((int8_t)bias);
    w->q[0] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo4(v), h0)), b);
    w->q[1] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(v, 4), h1)), b);
}

static inline void q5_0_unpack(const block_q5_0 *b, w32 *w) { q5_unpack(b->qs, b->qh, 16, w); }
static inline void q5_1_unpack(const block_q5_1 *b, w32 *w) { q5_unpack(b->qs, b->qh, 0, w); }

static inline void q5_0_step(sum1 *s, const block_q5_0 *x, const w32 *w, const block_q8_0 *y) {
    s->sumf += (h2f(x->d) * h2f(y->d)) * sum32(w->q[0], w->q[1], y->qs);
}

static inline void q5_1_step(sum1 *s, const block_q5_1 *x, const w32 *w, const block_q8_1 *y) {
    s->sumf += (h2f(x->d) * h2f(y->d)) * sum32(w->q[0], w->q[1], y->qs) + h2f(x->m) * h2f(y->s);
}

static inline void q8_0_unpack(const block_q8_0 *b, w32 *w) {
    w->q[0] = vld1q_s8(b->qs);
    w->q[1] = vld1q_s8(b->qs + 16);
}

/* Any byte is a Q8_0 weight, -128 too: the general product sum. */
static inline void q8_0_step(sum1 *s, const block_q8_0 *x, const w32 *w, const block_q8_0 *y) {
    int32x4_t acc = dot_i8(vdupq_n_s32(0), w->q[0], vld1q_s8(y->qs));
    int32_t sumi = vaddvq_s32(dot_i8(acc, w->q[1], vld1q_s8(y->qs + 16)));
    s->sumf += sumi * (h2f(x->d) * h2f(y->d));
}

/* IQ4_NL / IQ4_XS / MXFP4: 16 bytes of 32 nibbles looked up in 16 levels (IQ4's -127 ... 113,
   MXFP4's doubled FP4 values). */
static inline void levels_unpack(const uint8_t qs[16], const int8_t *levels, int8x16_t *q0, int8x16_t *q1) {
    int8x16_t values = vld1q_s8(levels);
    uint8x16_t v = vld1q_u8(qs);
    *q0 = vqtbl1q_s8(values, lo4(v));
    *q1 = vqtbl1q_s8(values, vshrq_n_u8(v, 4));
}
static inline void iq4_unpack(const uint8_t qs[16], int8x16_t *q0, int8x16_t *q1) {
    levels_unpack(qs, ds_iq4nl_values, q0, q1);
}

static inline void iq4_nl_unpack(const block_iq4_nl *b, w32 *w) { iq4_unpack(b->qs, &w->q[0], &w->q[1]); }

static inline void iq4_nl_step(sum1 *s, const block_iq4_nl *x, const w32 *w, const block_q8_0 *y) {
    const float d = h2f(y->d) * h2f(x->d);
    s->sumf += d * sum32(w->q[0], w->q[1], y->qs);
}

DEFINE_DOTS(q4_0, block_q4_0, block_q8_0, w32, sum1, QK)
DEFINE_DOTS(q4_1, block_q4_1, block_q8_1, w32, sum1, QK)
DEFINE_DOTS(q5_0, block_q5_0, block_q8_0, w32, sum1, QK)
DEFINE_DOTS(q5_1, block_q5_1, block_q8_1, w32, sum1, QK)
DEFINE_DOTS(q8_0, block_q8_0, block_q8_0, w32, sum1, QK)
DEFINE_DOTS(iq4_nl, block_iq4_nl, block_q8_0, w32, sum1, QK)

static inline void mxfp4_unpack(const block_mxfp4 *b, w32 *w) { levels_unpack(b->qs, ds_mxfp4_values, &w->q[0], &w->q[1]); }

static inline void mxfp4_step(sum1 *s, const block_mxfp4 *x, const w32 *w, const block_q8_0 *y) {
    const float d = h2f(y->d) * e8m0_half(x->e);
    s->sumf += d * sum32(w->q[0], w->q[1], y->qs);
}
#define mxfp4_finish sum1_finish

DEFINE_DOTS(mxfp4, block_mxfp4, block_q8_0, w32, sum1, QK)

/* ---- 256-element formats ---- */

typedef struct {
    int8x16_t q[16];
    int scale[16];
} w256; /* quants by 16, and per-16 or per-32 scales */
/* the scalar K-quant sums: eight float lanes (lo, hi) and one float sum */
typedef struct {
    float32x4_t lo, hi;
    float sumf;
} sum8;

static inline void sum8_add(sum8 *s, const int32x4_t L[2], float d) {
    s->lo = vaddq_f32(s->lo, vmulq_n_f32(vcvtq_f32_s32(L[0]), d));
    s->hi = vaddq_f32(s->hi, vmulq_n_f32(vcvtq_f32_s32(L[1]), d));
}

/* sumf, then the lanes in order 0..7, one at a time: the scalar code's final sum */
static inline float sum8_finish(const sum8 *s) {
    float l[8], sumf = s->sumf;
    vst1q_f32(l, s->lo);
    vst1q_f32(l + 4, s->hi);
    for (int j = 0; j < 8; j++) sumf += l[j];
    return sumf;
}
#define q3_K_finish sum8_finish
#define q4_K_finish sum8_finish
#define q5_K_finish sum8_finish
#define q6_K_finish sum8_finish

/* 2-bit quants of Q2_K and Q3_K, 16 at a time: quants 16 j .. 16 j + 15 are bits 2 * (j % 8 / 2)
   of bytes 32 * (j / 8) + 16 * (j % 2) onwards. */
static inline void unpack2(const uint8_t qs[64], int8x16_t q[16]) {
    for (int j = 0; j < 16; j++) {
        uint8x16_t v = vld1q_u8(qs + 32 * (j / 8) + 16 * (j % 2));
        v = vshlq_u8(v, vdupq_n_s8((int8_t)(-2 * (j % 8 / 2))));
        q[j] = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(3)));
    }
}

/* Q2_K: integer sums only (scale * quants, minimums * bsums), then two float products. */
typedef struct {
    float sumf;
} sumq2;

static inline void q2_K_unpack(const block_q2_K *b, w256 *w) {
    unpack2(b->qs, w->q);
    for (int j = 0; j < 16; j++) w->scale[j] = b->scales[j] & 0xf;
}

static inline int32_t q2_K_mins(const block_q2_K *x, const block_q8_K *y) {
    uint8x16_t m = vshrq_n_u8(vld1q_u8(x->scales), 4);
    int16x8_t m0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m)));
    int16x8_t m1 = vreinterpretq_s16_u16(vmovl_high_u8(m));
    int16x8_t b0 = vld1q_s16(y->bsums), b1 = vld1q_s16(y->bsums + 8);
    int32x4_t acc = vmull_s16(vget_low_s16(m0), vget_low_s16(b0));
    acc = vmlal_high_s16(acc, m0, b0);
    acc = vmlal_s16(acc, vget_low_s16(m1), vget_low_s16(b1));
    return vaddvq_s32(vmlal_high_s16(acc, m1, b1));
}

static inline void q2_K_step(sumq2 *s, const block_q2_K *x, const w256 *w, const block_q8_K *y) {
    int32x4_t acc = vdupq_n_s32(0);
    for (int j = 0; j < 16; j++) {
        int32x4_t p = dot_q(vdupq_n_s32(0), w->q[j], vld1q_s8(y->qs + 16 * j));
        acc = vmlaq_n_s32(acc, p, w->scale[j]);
    }
    const int isum = vaddvq_s32(acc), summs = q2_K_mins(x, y);
    const float dall = y->d * h2f(x->d), dmin = y->d * h2f(x->dmin);
    s->sumf += dall * isum - dmin * summs;
}

static inline float q2_K_finish(const sumq2 *s) { return s->sumf; }

/* Q3_K: quants 2 low bits - 4 unless hmask[k % 32] has bit k / 32; 6-bit scales biased by 32. */
static inline void q3_K_unpack(const block_q3_K *b, w256 *w) {
    unpack2(b->qs, w->q);
    const uint8x16_t h0 = vld1q_u8(b->hmask), h1 = vld1q_u8(b->hmask + 16);
    for (int j = 0; j < 16; j++) {
        uint8x16_t set = vtstq_u8(j % 2 ? h1 : h0, vdupq_n_u8((uint8_t)(1 << (j / 2))));
        int8x16_t minus = vreinterpretq_s8_u8(vbicq_u8(vdupq_n_u8(4), set));
        w->q[j] = vsubq_s8(w->q[j], minus);
        const uint8_t *sc = b->scales;
        int lo = j < 8 ? sc[j] & 0xf : sc[j - 8] >> 4;
        w->scale[j] = (lo | ((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
    }
}

static inline void q3_K_step(sum8 *s, const block_q3_K *x, const w256 *w, const block_q8_K *y) {
    int32x4_t L[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
    for (int j = 0; j < 16; j++) lanes16(L, w->q[j], y->qs + 16 * j, w->scale[j]);
    sum8_add(s, L, h2f(x->d) * y->d);
}

/* Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and minimums (ggml's get_scale_min_k4). */
static inline void k4_scales(const uint8_t q[12], int sc[8], int m[8]) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            sc[j] = q[j] & 63;
            m[j] = q[j + 4] & 63;
        } else {
            sc[j] = (q[j + 4] & 0xf) | (q[j - 4] >> 6) << 4;
            m[j] = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
        }
    }
}

typedef struct {
    int8x16_t q[16];
    int scale[8], min[8];
} wk4;

/* 4-bit quants: sub-block 2 c is the low nibbles of bytes 32 c .. 32 c + 31, 2 c + 1 the high. */
static inline void unpack4(const uint8_t qs[128], int8x16_t q[16]) {
    for (int c = 0; c < 4; c++) {
        uint8x16_t v0 = vld1q_u8(qs + 32 * c), v1 = vld1q_u8(qs + 32 * c + 16);
        q[4 * c] = lo_nibbles(v0);
        q[4 * c + 1] = lo_nibbles(v1);
        q[4 * c + 2] = hi_nibbles(v0);
        q[4 * c + 3] = hi_nibbles(v1);
    }
}

static inline void q4_K_unpack(const block_q4_K *b, wk4 *w) {
    unpack4(b->qs, w->q);
    k4_scales(b->scales, w->scale, w->min);
}

/* Q5_K: the 5th bit of quant k is bit k / 32 of qh[k % 32]. */
static inline void q5_K_unpack(const block_q5_K *b, wk4 *w) {
    unpack4(b->qs, w->q);
    k4_scales(b->scales, w->scale, w->min);
    const uint8x16_t h0 = vld1q_u8(b->qh), h1 = vld1q_u8(b->qh + 16), h16 = vdupq_n_u8(16);
    for (int j = 0; j < 8; j++) {
        uint8x16_t bit = vdupq_n_u8((uint8_t)(1 << j));
        w->q[2 * j] = vorrq_s8(w->q[2 * j], vreinterpretq_s8_u8(vandq_u8(vtstq_u8(h0, bit), h16)));
        w->q[2 * j + 1] = vorrq_s8(w->q[2 * j + 1], vreinterpretq_s8_u8(vandq_u8(vtstq_u8(h1, bit), h16)));
    }
}

/* ggml's k4 block: lanes of scale * q8 * q, minus dmin * sum(bsums * m) into sumf. */
static inline void k4_step(sum8 *s, uint16_t dh, uint16_t dminh, const wk4 *w, const block_q8_K *y) {
    int32x4_t L[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
    int sumi = 0;
    for (int j = 0; j < 8; j++) {
        sumi += (y->bsums[2 * j] + y->bsums[2 * j + 1]) * w->min[j];
        lanes32(L, w->q[2 * j], w->q[2 * j + 1], y->qs + 32 * j, w->scale[j]);
    }
    sum8_add(s, L, h2f(dh) * y->d);
    const float dmin = h2f(dminh) * y->d;
    s->sumf -= dmin * sumi;
}

static inline void q4_K_step(sum8 *s, const block_q4_K *x, const wk4 *w, const block_q8_K *y) {
    k4_step(s, x->d, x->dmin, w, y);
}

static inline void q5_K_step(sum8 *s, const block_q5_K *x, const wk4 *w, const block_q8_K *y) {
    k4_step(s, x->d, x->dmin, w, y);
}

/* Q6_K: quant k of each half of 128: low nibble of ql[64 half + k % 64] (high nibble for
   k % 128 >= 64), top 2 bits of qh[32 half + k % 32] at bit 2 (k % 128 / 32), minus 32. */
static inline void q6_K_unpack(const block_q6_K *b, w256 *w) {
    for (int c = 0; c < 8; c++) { /* 32 quants: sub-blocks 2 c and 2 c + 1 */
        const int half = c / 4, r = c % 4;
        for (int h = 0; h < 2; h++) {
            uint8x16_t l = vld1q_u8(b->ql + 64 * half + 32 * (r % 2) + 16 * h);
            uint8x16_t top = vld1q_u8(b->qh + 32 * half + 16 * h);
            l = r < 2 ? lo4(l) : vshrq_n_u8(l, 4);
            top = vandq_u8(vshlq_u8(top, vdupq_n_s8((int8_t)(-2 * r))), vdupq_n_u8(3));
            uint8x16_t q = vorrq_u8(l, vshlq_n_u8(top, 4));
            w->q[2 * c + h] = vsubq_s8(vreinterpretq_s8_u8(q), vdupq_n_s8(32));
        }
    }
    for (int j = 0; j < 16; j++) w->scale[j] = b->scales[j];
}

static inline void q6_K_step(sum8 *s, const block_q6_K *x, const w256 *w, const block_q8_K *y) {
    int32x4_t L[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
    for (int j = 0; j < 16; j++) lanes16(L, w->q[j], y->qs + 16 * j, w->scale[j]);
    sum8_add(s, L, h2f(x->d) * y->d);
}

/* IQ4_XS: 8 blocks of 32 with 6-bit scales (biased by 32); one float add per block of 32. */
static inline void iq4_xs_unpack(const block_iq4_xs *b, w256 *w) {
    for (int ib = 0; ib < 8; ib++) {
        iq4_unpack(b->qs + 16 * ib, &w->q[2 * ib], &w->q[2 * ib + 1]);
        const int lo = (b->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf, hi = (b->scales_h >> 2 * ib) & 3;
        w->scale[ib] = (lo | hi << 4) - 32;
    }
}

static inline void iq4_xs_step(sum1 *s, const block_iq4_xs *x, const w256 *w, const block_q8_K *y) {
    const float d4d8 = h2f(x->d) * y->d;
    for (int ib = 0; ib < 8; ib++) {
        const float dl = d4d8 * w->scale[ib];
        s->sumf += dl * sum32(w->q[2 * ib], w->q[2 * ib + 1], y->qs + 32 * ib);
    }
}

#define iq4_xs_finish sum1_finish

/* IQ2_XXS: per 8 a codebook point of magnitudes (8, 25 or 43) and 7 sign bits (8 with parity),
   per 32 a scale 2 s + 1; the signs go onto the weights. */
static inline void iq2_xxs_unpack(const block_iq2_xxs *b, w256 *w) {
    for (int ib = 0; ib < 8; ib++) {
        uint32_t aux[2];
        memcpy(aux, b->qs + 4 * ib, 8);
        for (int h = 0; h < 2; h++) {
            const int l0 = 2 * h, l1 = 2 * h + 1;
            uint8x16_t g = vcombine_u8(vcreate_u8(ds_iq2xxs_grid[(aux[0] >> 8 * l0) & 0xff]),
                                       vcreate_u8(ds_iq2xxs_grid[(aux[0] >> 8 * l1) & 0xff]));
            int8x16_t neg = vreinterpretq_s8_u8(
                bits_of(ds_iq2_signs[(aux[1] >> 7 * l0) & 127], ds_iq2_signs[(aux[1] >> 7 * l1) & 127]));
            w->q[2 * ib + h] = vsubq_s8(veorq_s8(vreinterpretq_s8_u8(g), neg), neg);
        }
        w->scale[ib] = 2 * (int)(aux[1] >> 28) + 1;
    }
}

static inline void iq2_xxs_step(sum1 *s, const block_iq2_xxs *x, const w256 *w, const block_q8_K *y) {
    int32x4_t acc = vdupq_n_s32(0);
    for (int ib = 0; ib < 8; ib++) {
        int32x4_t p = dot_q(vdupq_n_s32(0), w->q[2 * ib], vld1q_s8(y->qs + 32 * ib));
        p = dot_q(p, w->q[2 * ib + 1], vld1q_s8(y->qs + 32 * ib + 16));
        acc = vmlaq_n_s32(acc, p, w->scale[ib]);
    }
    const float d = h2f(x->d) * y->d;
    s->sumf += d * vaddvq_s32(acc);
}

static inline float iq2_xxs_finish(const sum1 *s) { return 0.125f * s->sumf; }

/* IQ1_S: per 8 an 11-bit codebook index (values -1, 0, 1), per 32 a scale 2 s + 1 and the sign
   of a shift of 1/8 that multiplies the activations' block sums. */
#define IQ1S_DELTA 0.125f

static inline void iq1_s_unpack(const block_iq1_s *b, w256 *w) {
    for (int ib = 0; ib < 8; ib++) {
        const uint16_t qh = b->qh[ib];
        for (int h = 0; h < 2; h++) {
            const int l0 = 2 * h, l1 = 2 * h + 1;
            uint64_t g0 = ds_iq1s_grid[b->qs[4 * ib + l0] | ((qh >> 3 * l0) & 7) << 8];
            uint64_t g1 = ds_iq1s_grid[b->qs[4 * ib + l1] | ((qh >> 3 * l1) & 7) << 8];
            w->q[2 * ib + h] = vcombine_s8(vcreate_s8(g0), vcreate_s8(g1));
        }
        w->scale[ib] = 2 * ((qh >> 12) & 7) + 1;
        w->scale[8 + ib] = qh & 0x8000 ? -1 : 1;
    }
}

static inline void iq1_s_step(sum1 *s, const block_iq1_s *x, const w256 *w, const block_q8_K *y) {
    int sumi = 0, sumi1 = 0;
    for (int ib = 0; ib < 8; ib++) {
        const int ls = w->scale[ib];
        sumi += ls * sum32(w->q[2 * ib], w->q[2 * ib + 1], y->qs + 32 * ib);
        sumi1 += ls * w->scale[8 + ib] * (y->bsums[2 * ib] + y->bsums[2 * ib + 1]);
    }
    s->sumf += h2f(x->d) * y->d * (sumi + IQ1S_DELTA * sumi1);
}

#define iq1_s_finish sum1_finish

DEFINE_DOTS(q2_K, block_q2_K, block_q8_K, w256, sumq2, QK_K)
DEFINE_DOTS(q3_K, block_q3_K, block_q8_K, w256, sum8, QK_K)
DEFINE_DOTS(q4_K, block_q4_K, block_q8_K, wk4, sum8, QK_K)
DEFINE_DOTS(q5_K, block_q5_K, block_q8_K, wk4, sum8, QK_K)
DEFINE_DOTS(q6_K, block_q6_K, block_q8_K, w256, sum8, QK_K)
DEFINE_DOTS(iq4_xs, block_iq4_xs, block_q8_K, w256, sum1, QK_K)
DEFINE_DOTS(iq2_xxs, block_iq2_xxs, block_q8_K, w256, sum1, QK_K)
DEFINE_DOTS(iq1_s, block_iq1_s, block_q8_K, w256, sum1, QK_K)

/* ---- dequantizers: the scalar to_f32's floats bit for bit ----

   The unpackers above give the quants as int8 (exact in float); each kernel then does the scalar
   code's float operations on them in its order: a multiply, then a subtract or add where the
   scalar code has one, never fused. Which NaN a sum of two NaNs keeps depends on the operand
   order the compiler picks (gcc takes a + b and b + a for the same), so the tests hold these
   kernels to the scalar bits on NaN and infinite scales too. */

static inline float32x4_t widen4(int8x16_t q, int k) {
    int16x8_t h = k < 2 ? vmovl_s8(vget_low_s8(q)) : vmovl_high_s8(q);
    int32x4_t w = k % 2 ? vmovl_high_s16(h) : vmovl_s16(vget_low_s16(h));
    return vcvtq_f32_s32(w);
}

/* y[0..15] = q * d */
static inline void mul16(float *y, int8x16_t q, float d) {
    const float32x4_t vd = vdupq_n_f32(d);
    for (int k = 0; k < 4; k++) vst1q_f32(y + 4 * k, vmulq_f32(vd, widen4(q, k)));
}

/* y[0..15] = d * q - m */
static inline void mul_sub16(float *y, int8x16_t q, float d, float m) {
    const float32x4_t vd = vdupq_n_f32(d), vm = vdupq_n_f32(m);
    for (int k = 0; k < 4; k++) vst1q_f32(y + 4 * k, vsubq_f32(vmulq_f32(vd, widen4(q, k)), vm));
}

/* y[0..15] = q * d + m */
static inline void mul_add16(float *y, int8x16_t q, float d, float m) {
    const float32x4_t vd = vdupq_n_f32(d), vm = vdupq_n_f32(m);
    for (int k = 0; k < 4; k++) vst1q_f32(y + 4 * k, vaddq_f32(vmulq_f32(widen4(q, k), vd), vm));
}

/* The 32-element formats: q * d, or q * d + m for those with a minimum. */
#define DEQUANT32(name, wblock)                                        \
    static void name##_dequant(const void *row, float *y, int64_t n) { \
        const wblock *b = row;                                         \
        for (int64_t i = 0; i < n / QK; i++, y += QK) {                \
            w32 w;                                                     \
            name##_unpack(&b[i], &w);                                  \
            mul16(y, w.q[0], h2f(b[i].d));                             \
            mul16(y + 16, w.q[1], h2f(b[i].d));                        \
        }                                                              \
    }
#define DEQUANT32_MIN(name, wblock)                                    \
    static void name##_dequant(const void *row, float *y, int64_t n) { \
        const wblock *b = row;                                         \
        for (int64_t i = 0; i < n / QK; i++, y += QK) {                \
            w32 w;                                                     \
            name##_unpack(&b[i], &w);                                  \
            mul_add16(y, w.q[0], h2f(b[i].d), h2f(b[i].m));            \
            mul_add16(y + 16, w.q[1], h2f(b[i].d), h2f(b[i].m));       \
        }                                                              \
    }

DEQUANT32(q4_0, block_q4_0)
DEQUANT32(q5_0, block_q5_0)
DEQUANT32(q8_0, block_q8_0)
DEQUANT32(iq4_nl, block_iq4_nl)
DEQUANT32_MIN(q4_1, block_q4_1)

static void mxfp4_dequant(const void *row, float *y, int64_t n) {
    const block_mxfp4 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        w32 w;
        mxfp4_unpack(&b[i], &w);
        mul16(y, w.q[0], e8m0_half(b[i].e));
        mul16(y + 16, w.q[1], e8m0_half(b[i].e));
    }
}
DEQUANT32_MIN(q5_1, block_q5_1)

static void q2_K_dequant(const void *row, float *y, int64_t n) {
    const block_q2_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        w256 w;
        q2_K_unpack(&b[i], &w);
        const float d = h2f(b[i].d), min = h2f(b[i].dmin);
        for (int j = 0; j < 16; j++, y += 16) mul_sub16(y, w.q[j], d * w.scale[j], min * (b[i].scales[j] >> 4));
    }
}

static void q3_K_dequant(const void *row, float *y, int64_t n) {
    const block_q3_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        w256 w;
        q3_K_unpack(&b[i], &w);
        const float d_all = h2f(b[i].d);
        for (int j = 0; j < 16; j++, y += 16) mul16(y, w.q[j], d_all * w.scale[j]);
    }
}

static inline void k4_dequant(const wk4 *w, uint16_t dh, uint16_t dminh, float *y) {
    const float d = h2f(dh), min = h2f(dminh);
    for (int j = 0; j < 8; j++) {
        const float dl = d * w->scale[j], ml = min * w->min[j];
        mul_sub16(y + 32 * j, w->q[2 * j], dl, ml);
        mul_sub16(y + 32 * j + 16, w->q[2 * j + 1], dl, ml);
    }
}

static void q4_K_dequant(const void *row, float *y, int64_t n) {
    const block_q4_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        wk4 w;
        q4_K_unpack(&b[i], &w);
        k4_dequant(&w, b[i].d, b[i].dmin, y);
    }
}

static void q5_K_dequant(const void *row, float *y, int64_t n) {
    const block_q5_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        wk4 w;
        q5_K_unpack(&b[i], &w);
        k4_dequant(&w, b[i].d, b[i].dmin, y);
    }
}

static void q6_K_dequant(const void *row, float *y, int64_t n) {
    const block_q6_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        w256 w;
        q6_K_unpack(&b[i], &w);
        const float d = h2f(b[i].d);
        for (int j = 0; j < 16; j++, y += 16) mul16(y, w.q[j], d * w.scale[j]);
    }
}

static void iq4_xs_dequant(const void *row, float *y, int64_t n) {
    const block_iq4_xs *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        w256 w;
        iq4_xs_unpack(&b[i], &w);
        const float d = h2f(b[i].d);
        for (int ib = 0; ib < 8; ib++, y += 32) {
            const float dl = d * w.scale[ib];
            mul16(y, w.q[2 * ib], dl);
            mul16(y + 16, w.q[2 * ib + 1], dl);
        }
    }
}

/* IQ2_XXS: db * magnitude, then the sign bit flipped as the scalar code's negation does (a NaN
   scale's sign too, which a product by -1 would keep). */
static void iq2_xxs_dequant(const void *row, float *y, int64_t n) {
    const block_iq2_xxs *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(b[i].d);
        for (int ib = 0; ib < 8; ib++) {
            uint32_t aux[2];
            memcpy(aux, b[i].qs + 4 * ib, 8);
            const float32x4_t db = vdupq_n_f32(d * (0.5f + (aux[1] >> 28)) * 0.25f);
            for (int l = 0; l < 4; l++, y += 8) {
                uint16x8_t g = vmovl_u8(vcreate_u8(ds_iq2xxs_grid[(aux[0] >> 8 * l) & 0xff]));
                uint8_t s = ds_iq2_signs[(aux[1] >> 7 * l) & 127];
                /* 0x80 in byte j where sign bit j is set, widened to bit 31 of lane j */
                uint8x8_t neg = vand_u8(vtst_u8(vdup_n_u8(s), vcreate_u8(0x8040201008040201ull)), vdup_n_u8(0x80));
                uint16x8_t neg16 = vshll_n_u8(neg, 8);
                for (int h = 0; h < 2; h++) {
                    uint32x4_t g32 = h ? vmovl_high_u16(g) : vmovl_u16(vget_low_u16(g));
                    uint32x4_t sign = h ? vshll_high_n_u16(neg16, 16) : vshll_n_u16(vget_low_u16(neg16), 16);
                    uint32x4_t v = vreinterpretq_u32_f32(vmulq_f32(db, vcvtq_f32_u32(g32)));
                    vst1q_f32(y + 4 * h, vreinterpretq_f32_u32(veorq_u32(v, sign)));
                }
            }
        }
    }
}

/* IQ1_S: dl * (grid value + delta), the sum exact. */
static void iq1_s_dequant(const void *row, float *y, int64_t n) {
    const block_iq1_s *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        w256 w;
        iq1_s_unpack(&b[i], &w);
        const float d = h2f(b[i].d);
        for (int ib = 0; ib < 8; ib++) {
            const float32x4_t dl = vdupq_n_f32(d * w.scale[ib]);
            const float32x4_t delta = vdupq_n_f32(w.scale[8 + ib] < 0 ? -IQ1S_DELTA : IQ1S_DELTA);
            for (int h = 0; h < 2; h++, y += 16)
                for (int k = 0; k < 4; k++) {
                    float32x4_t q = vaddq_f32(widen4(w.q[2 * ib + h], k), delta);
                    vst1q_f32(y + 4 * k, vmulq_f32(dl, q));
                }
        }
    }
}

/* ---- activation quantizers: the scalar ones' bytes ---- */

/* The scalar code's NaN handling depends on where in the block the NaN sits; such a block (never
   a sensible activation) goes through the scalar quantizer itself. */
static void scalar_from_f32(ds_type t, const float *x, void *block, int64_t n) {
    ds_quant_scalar_traits(t)->from_f32(x, block, n);
}

/* Q8_0 / Q8_1 as q_legacy.c's q8_block (ggml's x86 rounding): q = x * (127 / amax) rounded half
   to even (FCVTNS), narrowed with saturation; |x * id| >= 2^31 and NaN (an infinite x) become
   INT32_MIN first, so -128, as x86's conversion gives. Returns d = amax / 127, or NaN when the
   block holds a NaN. */
static float q8_block(const float *x, int8_t qs[QK]) {
    float32x4_t v[8], m = vdupq_n_f32(0);
    for (int j = 0; j < 8; j++) {
        v[j] = vld1q_f32(x + 4 * j);
        m = vmaxq_f32(m, vabsq_f32(v[j])); /* FMAX: a NaN wins */
    }
    const float amax = vmaxvq_f32(m);
    if (amax != amax) return amax;
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    const float32x4_t big = vdupq_n_f32(2147483648.f);
    const int32x4_t lowest = vdupq_n_s32(INT32_MIN);
    int16x8_t h[4];
    for (int j = 0; j < 4; j++) {
        int32x4_t q[2];
        for (int k = 0; k < 2; k++) {
            float32x4_t s = vmulq_n_f32(v[2 * j + k], id);
            q[k] = vbslq_s32(vcaltq_f32(s, big), vcvtnq_s32_f32(s), lowest);
        }
        h[j] = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
    }
    vst1q_s8(qs, vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1])));
    vst1q_s8(qs + 16, vcombine_s8(vqmovn_s16(h[2]), vqmovn_s16(h[3])));
    return amax / 127;
}

static void q8_0_act(const float *x, void *row, int64_t n) {
    block_q8_0 *b = row;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        const float d = q8_block(x, b[i].qs);
        if (d != d) scalar_from_f32(DS_TYPE_Q8_0, x, &b[i], QK);
        else b[i].d = ds_fp32_to_fp16(d);
    }
}

static void q8_1_act(const float *x, void *row, int64_t n) {
    block_q8_1 *b = row;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        const float d = q8_block(x, b[i].qs);
        if (d != d) {
            scalar_from_f32(DS_TYPE_Q8_1, x, &b[i], QK);
            continue;
        }
        const int sum = vaddlvq_s8(vld1q_s8(b[i].qs)) + vaddlvq_s8(vld1q_s8(b[i].qs + 16));
        b[i].d = ds_fp32_to_fp16(d);
        b[i].s = ds_fp32_to_fp16(sum * d);
    }
}

/* Q8_K: q = min(127, round-half-even(-127 / max * x)) through ggml's float adder trick (the
   same bits as nearest_int for any input), max the first value of largest magnitude. */
static void q8_K_block(const float *x, block_q8_K *b) {
    float32x4_t m[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
    for (int j = 0; j < QK_K; j += 16)
        for (int k = 0; k < 4; k++) m[k] = vmaxq_f32(m[k], vabsq_f32(vld1q_f32(x + j + 4 * k)));
    const float amax = vmaxvq_f32(vmaxq_f32(vmaxq_f32(m[0], m[1]), vmaxq_f32(m[2], m[3])));
    if (amax != amax) {
        scalar_from_f32(DS_TYPE_Q8_K, x, b, QK_K);
        return;
    }
    memset(b, 0, sizeof *b);
    if (!amax) return;
    int first = 0;
    while (!(vmaxvq_u32(vceqq_f32(vabsq_f32(vld1q_f32(x + first)), vdupq_n_f32(amax))))) first += 4;
    while (fabsf(x[first]) != amax) first++;
    const float iscale = -127.f / x[first];
    const float32x4_t magic = vdupq_n_f32(12582912.f);
    for (int j = 0; j < QK_K; j += 16) {
        int16x8_t h[2];
        for (int k = 0; k < 2; k++) {
            int32x4_t q[2];
            for (int l = 0; l < 2; l++) {
                float32x4_t v = vaddq_f32(vmulq_n_f32(vld1q_f32(x + j + 8 * k + 4 * l), iscale), magic);
                int32x4_t r = vandq_s32(vreinterpretq_s32_f32(v), vdupq_n_s32(0x007fffff));
                q[l] = vminq_s32(vsubq_s32(r, vdupq_n_s32(0x00400000)), vdupq_n_s32(127));
            }
            h[k] = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
        }
        int8x16_t q8 = vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1]));
        vst1q_s8(b->qs + j, q8);
        b->bsums[j / 16] = vaddlvq_s8(q8);
    }
    b->d = 1 / iscale;
}

static void q8_K_act(const float *x, void *row, int64_t n) {
    block_q8_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) q8_K_block(x + i * QK_K, &b[i]);
}

/* ---- DeepSeek-V3.2's indexer (simd.h: ds_index_fn): x86_avx512.c's layout with two keys a
   vector, each block's codes widened once, eight heads' chains of exact double FMAs ---- */

/* An FP8 e4m3 code as a double, from its bits (x86_avx512.c's e4m3_to_pd says how). */
static inline double e4m3_to_f64(uint8_t c) {
    uint64_t em = c & 0x7f, sub = em < 8, bits = ((em | (sub << 3)) << 49) + ((uint64_t)1016 << 52);
    double v;
    memcpy(&v, &bits, sizeof v);
    v -= sub ? 0x1p-6 : 0.0;
    return c & 0x80 ? -v : v;
}

enum { IDX_KEYS = 2, IDX_HEADS = 8, IDX_MAX_N = 256 };

static inline float32x2_t add_head(float32x2_t acc, float64x2_t dots, float w) {
    float32x2_t d = vmax_f32(vcvt_f32_f64(dots), vdup_n_f32(0.0f));
    return vadd_f32(acc, vmul_n_f32(d, w));
}

static void index_scores(const double *q, const float *w, const uint8_t *keys, size_t stride, int n_keys, int n_head,
                         int64_t n, float *out) {
    if (n > IDX_MAX_N) {
        for (int j = 0; j < n_keys; j++) out[j] = ds_fp8_index_score(q, w, keys + (size_t)j * stride, n_head, n);
        return;
    }
    float64x2_t kt[IDX_MAX_N];
    for (int j0 = 0; j0 < n_keys; j0 += IDX_KEYS) {
        const int m = n_keys - j0 < IDX_KEYS ? n_keys - j0 : IDX_KEYS;
        const uint8_t *k0 = keys + (size_t)j0 * stride, *k1 = m > 1 ? k0 + stride : NULL;
        for (int64_t i = 0; i < n; i++) {
            double pair[2] = {e4m3_to_f64(k0[i]), k1 ? e4m3_to_f64(k1[i]) : 0.0};
            kt[i] = vld1q_f64(pair);
        }
        float32x2_t acc = vdup_n_f32(0.0f);
        int h = 0;
        for (; h + IDX_HEADS <= n_head; h += IDX_HEADS) {
            float64x2_t a[IDX_HEADS];
            for (int k = 0; k < IDX_HEADS; k++) a[k] = vdupq_n_f64(0.0);
            for (int64_t i = 0; i < n; i++)
                for (int k = 0; k < IDX_HEADS; k++)
                    a[k] = vfmaq_n_f64(a[k], kt[i], q[(size_t)(h + k) * (size_t)n + (size_t)i]);
            for (int k = 0; k < IDX_HEADS; k++) acc = add_head(acc, a[k], w[h + k]);
        }
        for (; h < n_head; h++) {
            float64x2_t a = vdupq_n_f64(0.0);
            for (int64_t i = 0; i < n; i++) a = vfmaq_n_f64(a, kt[i], q[(size_t)h * (size_t)n + (size_t)i]);
            acc = add_head(acc, a, w[h]);
        }
        out[j0] = vget_lane_f32(acc, 0);
        if (m > 1) out[j0 + 1] = vget_lane_f32(acc, 1);
    }
}

/* ---- the table ---- */

#ifdef DS_ARM_DOTPROD
#define LEVEL_NAME "dotprod"
#define LEVEL_TABLE ds_simd_dotprod_table
#else
#define LEVEL_NAME "neon"
#define LEVEL_TABLE ds_simd_neon_table
#endif

#define BLOCK(T, name) .vec_dot[T] = name##_dot, .vec_dot4[T] = name##_dot4, .dequant[T] = name##_dequant

static const ds_simd_kernels kernels = {
    DS_SIMD_FLOAT_KERNELS(LEVEL_NAME, f16_to_f32, bf16_to_f32),
    BLOCK(DS_TYPE_Q4_0, q4_0),
    BLOCK(DS_TYPE_Q4_1, q4_1),
    BLOCK(DS_TYPE_Q5_0, q5_0),
    BLOCK(DS_TYPE_Q5_1, q5_1),
    BLOCK(DS_TYPE_Q8_0, q8_0),
    BLOCK(DS_TYPE_IQ4_NL, iq4_nl),
    BLOCK(DS_TYPE_MXFP4, mxfp4),
    BLOCK(DS_TYPE_Q2_K, q2_K),
    BLOCK(DS_TYPE_Q3_K, q3_K),
    BLOCK(DS_TYPE_Q4_K, q4_K),
    BLOCK(DS_TYPE_Q5_K, q5_K),
    BLOCK(DS_TYPE_Q6_K, q6_K),
    BLOCK(DS_TYPE_IQ4_XS, iq4_xs),
    BLOCK(DS_TYPE_IQ2_XXS, iq2_xxs),
    BLOCK(DS_TYPE_IQ1_S, iq1_s),
    .act_quant[DS_TYPE_Q8_0] = q8_0_act,
    .act_quant[DS_TYPE_Q8_1] = q8_1_act,
    .act_quant[DS_TYPE_Q8_K] = q8_K_act,
    .index_scores = index_scores,
};

const ds_simd_kernels *LEVEL_TABLE(void);
const ds_simd_kernels *LEVEL_TABLE(void) { return &kernels; }
