/* test_simd - every SIMD level this CPU runs computes what the scalar reference computes:
   dot products within float rounding of the scalar ones, widening bit for bit, and the
   four-vector dots bit for bit equal to the single ones of the same level. Lengths cover
   the vector loops, their tails and the empty row; values cover zeros, large and tiny
   magnitudes and (for F16/BF16) every exponent.

   A level's block-format kernels (ggml's quantized types) are held to the scalar ones in quant/:
   activation quantizers byte for byte, on rows made to hit their corners (rounding ties, NaN,
   infinities, scales that underflow or overflow); dot products of quantized rows and of random
   bytes (every code, every scale) bit for bit where the level claims it (the aarch64 levels
   repeat the scalar float arithmetic), four-activation dots bit for bit equal to the single
   ones, and weight rows widened to float32 with the scalar dequantizers' bits (NaN payloads and
   signs too); DeepSeek-V3.2's index kernel bit for bit. DS_SIMD_EXPECT=name makes the test check that the best level here is that one (the
   aarch64 runs under qemu use it to see the CPU detection at work). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deepseek.h"
#include "quant/quant.h"
#include "simd/simd.h"

enum { MAXN = 4133 };
static const int lengths[] = {0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 1000, 4096, MAXN};

static uint32_t rng = 7;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (rng >> 8) / 16777216.0f * 2.0f - 1.0f;
}

typedef struct {
    float w[MAXN], x[MAXN];
    uint16_t h[MAXN], b[MAXN];
} rows;

/* kind 0: random; 1: zeros; 2: wide magnitudes; 3: large values in one place */
static void fill(rows *r, int kind) {
    for (int i = 0; i < MAXN; i++) {
        float v = frand(), s = frand();
        if (kind == 1) v = 0;
        if (kind == 2) v *= ldexpf(1.0f, (int)(rng % 30) - 15);
        if (kind == 3) v = (i % 97 == 0) ? 60000.0f * s : v * 1e-3f;
        r->h[i] = ds_fp32_to_fp16(v);
        r->b[i] = ds_fp32_to_bf16(v);
        r->w[i] = v;
        r->x[i] = frand();
    }
}

/* The bound float rounding allows: a few ulps of the sum of |w x|. */
static double bound(const float *w, const float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += fabs((double)w[i] * x[i]);
    return s * 1e-6 + 1e-30;
}

static void check_level(const ds_simd_kernels *k) {
    const ds_simd_kernels *ref = ds_simd_scalar();
    rows *r = malloc(sizeof *r);
    float *wide = malloc(MAXN * sizeof *wide), *wref = malloc(MAXN * sizeof *wref);
    assert_non_null(r);
    for (int kind = 0; kind < 4; kind++) {
        fill(r, kind);
        for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
            int n = lengths[li];
            /* an odd start exercises unaligned loads */
            const float *w = r->w + (n < MAXN ? 1 : 0), *x = r->x + (n < MAXN ? 1 : 0);
            const uint16_t *h = r->h + (n < MAXN ? 1 : 0), *b = r->b + (n < MAXN ? 1 : 0);
            double e = fabs((double)k->dot_f32(w, x, n) - ref->dot_f32(w, x, n));
            if (e > bound(w, x, n)) fail_msg("%s dot_f32 n=%d kind=%d: off by %g", k->name, n, kind, e);
            ref->f16_to_f32(h, wref, n);
            k->f16_to_f32(h, wide, n);
            assert_memory_equal(wide, wref, (size_t)n * sizeof *wide);
            e = fabs((double)k->dot_f16(h, x, n) - ref->dot_f16(h, x, n));
            if (e > bound(wref, x, n)) fail_msg("%s dot_f16 n=%d kind=%d: off by %g", k->name, n, kind, e);
            ref->bf16_to_f32(b, wref, n);
            k->bf16_to_f32(b, wide, n);
            assert_memory_equal(wide, wref, (size_t)n * sizeof *wide);
            e = fabs((double)k->dot_bf16(b, x, n) - ref->dot_bf16(b, x, n));
            if (e > bound(wref, x, n)) fail_msg("%s dot_bf16 n=%d kind=%d: off by %g", k->name, n, kind, e);
        }
    }
    free(r);
    free(wide);
    free(wref);
}

/* A row widened to F32 and dotted gives the direct dot's bits at every level, so code may
   take either path (the core widens rows for its BLAS panels and the legacy MLA layout). */
static void widen_then_dot_is_the_same(const ds_simd_kernels *k) {
    rows *r = malloc(sizeof *r);
    float *wide = malloc(MAXN * sizeof *wide);
    fill(r, 0);
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
        int n = lengths[li];
        k->f16_to_f32(r->h, wide, n);
        float a = k->dot_f16(r->h, r->x, n), c = k->dot_f32(wide, r->x, n);
        if (memcmp(&a, &c, sizeof a)) fail_msg("%s: dot_f16 %g vs widened dot_f32 %g (n=%d)", k->name, a, c, n);
        k->bf16_to_f32(r->b, wide, n);
        a = k->dot_bf16(r->b, r->x, n);
        c = k->dot_f32(wide, r->x, n);
        if (memcmp(&a, &c, sizeof a)) fail_msg("%s: dot_bf16 %g vs widened dot_f32 %g (n=%d)", k->name, a, c, n);
    }
    free(r);
    free(wide);
}

/* Four vectors at once must give exactly the single dot's bits (the core mixes the two). */
static void dot4_is_four_dots(const ds_simd_kernels *k) {
    rows *r = malloc(sizeof *r);
    static float x[4][MAXN];
    fill(r, 2);
    for (int v = 0; v < 4; v++)
        for (int i = 0; i < MAXN; i++) x[v][i] = frand();
    const float *const xs[4] = {x[0], x[1] + 1, x[2], x[3] + 3}; /* unaligned ones too */
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
        int n = lengths[li] - (lengths[li] == MAXN ? 3 : 0);
        float o[4];
        k->dot4_f32(r->w, xs, n, o);
        for (int v = 0; v < 4; v++) {
            float one = k->dot_f32(r->w, xs[v], n);
            if (memcmp(&one, &o[v], sizeof one))
                fail_msg("%s dot4_f32 n=%d vector %d: %g vs %g", k->name, n, v, o[v], one);
        }
        k->dot4_f16(r->h, xs, n, o);
        for (int v = 0; v < 4; v++) {
            float one = k->dot_f16(r->h, xs[v], n);
            if (memcmp(&one, &o[v], sizeof one))
                fail_msg("%s dot4_f16 n=%d vector %d: %g vs %g", k->name, n, v, o[v], one);
        }
        k->dot4_bf16(r->b, xs, n, o);
        for (int v = 0; v < 4; v++) {
            float one = k->dot_bf16(r->b, xs[v], n);
            if (memcmp(&one, &o[v], sizeof one))
                fail_msg("%s dot4_bf16 n=%d vector %d: %g vs %g", k->name, n, v, o[v], one);
        }
    }
    free(r);
}

/* ---- block formats ---- */

static const ds_type weight_types[] = {
    DS_TYPE_Q4_0, DS_TYPE_Q4_1, DS_TYPE_Q5_0, DS_TYPE_Q5_1, DS_TYPE_Q8_0,   DS_TYPE_IQ4_NL,  DS_TYPE_Q2_K,
    DS_TYPE_Q3_K, DS_TYPE_Q4_K, DS_TYPE_Q5_K, DS_TYPE_Q6_K, DS_TYPE_IQ4_XS, DS_TYPE_IQ2_XXS, DS_TYPE_IQ1_S,
    DS_TYPE_MXFP4,
};
static const ds_type act_types[] = {DS_TYPE_Q8_0, DS_TYPE_Q8_1, DS_TYPE_Q8_K};

enum { BN = 1024, ROWS = 8 }; /* longest row (4 super-blocks, 32 blocks), rows per kind */

static float nan_f(void) { return nanf(""); }

/* Edge rows for the activation quantizers, one pattern per kind, varied along the row. */
static void edge_row(float *x, int kind) {
    for (int j = 0; j < BN; j++) {
        float r = frand();
        switch (kind) {
        case 0: x[j] = 0; break;
        case 1: x[j] = r * 4; break;
        /* halves: |x| = m + 0.5 beside an extreme of -127, so the scale is 1 (Q8_0 and Q8_K) */
        case 2: x[j] = j % 32 == 5 ? -127.0f : (j & 1 ? 1 : -1) * ((float)(j % 64) + 0.5f); break;
        case 3: x[j] = j % 37 == 3 ? nan_f() : r; break; /* NaNs here and there */
        case 4: x[j] = j % 41 == 7 ? (j & 1 ? INFINITY : -INFINITY) : r; break;
        case 5: x[j] = r * 1e-43f; break; /* 1 / d overflows */
        case 6: x[j] = r * 1e-39f; break; /* subnormal scales */
        case 7: x[j] = r * 3e38f; break;
        case 8: x[j] = (j & 1) ? -0.0f : 0.0f; break;
        /* the same magnitude twice with both signs: the first decides the sign of Q8_K's scale */
        case 9: x[j] = j % 16 == 3 ? 5.0f : j % 16 == 9 ? -5.0f : r; break;
        case 10: x[j] = r * 1e-38f; break;                                        /* -127 / max overflows */
        default: x[j] = j % 256 == 255 ? nan_f() : r * (float)(1 + j % 9); break; /* NaN last */
        }
    }
}

static void check_act_quant(const ds_simd_kernels *k) {
    static float x[BN];
    static uint8_t want[BN * 2], got[BN * 2];
    for (size_t a = 0; a < sizeof act_types / sizeof *act_types; a++) {
        ds_type t = act_types[a];
        if (!k->act_quant[t]) continue;
        const ds_type_traits *ref = ds_quant_scalar_traits(t);
        for (int kind = 0; kind < 12; kind++) {
            for (int n = ref->block_size; n <= BN; n *= 2) {
                size_t bytes = ds_type_row_size(t, n);
                edge_row(x, kind);
                memset(want, 0xa5, bytes);
                memset(got, 0x5a, bytes);
                ref->from_f32(x, want, n);
                k->act_quant[t](x, got, n);
                for (size_t b = 0; b < bytes; b++)
                    if (got[b] != want[b])
                        fail_msg("%s %s row kind %d n=%d: byte %zu (block %zu) 0x%02x, scalar 0x%02x", k->name,
                                 ref->name, kind, n, b, b / ref->type_size, got[b], want[b]);
            }
        }
    }
}

/* Random bytes; with extremes, mostly 0x80 (-128) and otherwise 0x7f, 0xff or 0x00, so that
   -128 * -128 products come in runs (what would overflow a 16-bit partial sum). */
static void random_bytes(uint8_t *p, size_t n, int extremes) {
    static const uint8_t ends[8] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x7f, 0xff, 0x00};
    for (size_t b = 0; b < n; b++) {
        float r = frand() * 0.5f + 0.5f; /* [0, 1) */
        p[b] = extremes ? ends[(int)(r * 8) & 7] : (uint8_t)(r * 256);
    }
}

/* Random (or extreme) bytes, but every float field of the activation blocks a plausible scale:
   what the dot products must agree on is the integer part (quants of every value, -128 too). */
static void random_act(ds_type t, uint8_t *row, int n, int extremes) {
    const ds_type_traits *tt = ds_quant_scalar_traits(t);
    size_t nb = (size_t)(n / tt->block_size);
    random_bytes(row, nb * tt->type_size, extremes);
    for (size_t i = 0; i < nb; i++) {
        uint8_t *blk = row + i * tt->type_size;
        if (t == DS_TYPE_Q8_K) {
            float d = frand() * 0.01f;
            memcpy(blk, &d, 4);
        } else {
            uint16_t d = ds_fp32_to_fp16(frand() * 0.01f), s = ds_fp32_to_fp16(frand() * 2);
            memcpy(blk, &d, 2);
            if (t == DS_TYPE_Q8_1) memcpy(blk + 2, &s, 2);
        }
    }
}

/* A weight row: quantized from random floats (kind 0), random bytes (kind 1: any quant and scale;
   the F16 fields may then be huge, infinite or NaN, which the dots must carry alike), or for kind 2
   quantized again, except Q8_0, whose quants can be any byte: extreme ones, with sane scales. */
static void weight_row(ds_type t, uint8_t *row, int n, int kind) {
    const ds_type_traits *tt = ds_quant_scalar_traits(t);
    static float x[BN], imatrix[BN];
    if (kind == 1) {
        random_bytes(row, ds_type_row_size(t, n), 0);
        return;
    }
    if (kind == 2 && t == DS_TYPE_Q8_0) {
        random_act(t, row, n, 1);
        return;
    }
    for (int j = 0; j < n; j++) {
        x[j] = frand() * (j % 61 == 0 ? 8.0f : 1.0f);
        imatrix[j] = 0.5f + fabsf(frand());
    }
    assert_int_equal(tt->quantize(x, row, n, imatrix), ds_type_row_size(t, n));
}

/* Equal bits, or both NaN (a NaN's payload may come from either operand of a product). */
static int same(float a, float b) { return !memcmp(&a, &b, sizeof a) || (a != a && b != b); }

static void check_dot(const ds_simd_kernels *k, ds_type t, int exact, const uint8_t *w, const uint8_t *const acts[4],
                      int n, const char *what) {
    const ds_type_traits *ref = ds_quant_scalar_traits(t);
    const ds_type_traits *at = ds_quant_scalar_traits(ref->vec_dot_type);
    float four[4];
    k->vec_dot4[t](w, (const void *const *)acts, n, four);
    for (int v = 0; v < 4; v++) {
        float got = k->vec_dot[t](w, acts[v], n), want = ref->vec_dot(w, acts[v], n);
        if (!same(four[v], got))
            fail_msg("%s %s %s n=%d act %d: vec_dot4 %.9g, vec_dot %.9g", k->name, ref->name, what, n, v, four[v], got);
        if (exact) {
            if (!same(got, want))
                fail_msg("%s %s %s n=%d act %d: %.9g, scalar %.9g", k->name, ref->name, what, n, v, got, want);
            continue;
        }
        static float wd[BN], ad[BN];
        ref->to_f32(w, wd, n);
        at->to_f32(acts[v], ad, n);
        double mag = 0;
        for (int j = 0; j < n; j++) mag += fabs((double)wd[j] * ad[j]);
        if (!(fabs((double)got - want) <= 1e-5 * mag) && !same(got, want))
            fail_msg("%s %s %s n=%d act %d: %.9g, scalar %.9g (sum |w a| %.3g)", k->name, ref->name, what, n, v, got,
                     want, mag);
    }
}

/* exact: the level promises the scalar kernels' bits; otherwise 1e-5 of sum |w a|. */
static void check_vec_dots(const ds_simd_kernels *k, int exact) {
    static uint8_t w[BN * 2], act_bytes[4][BN * 2];
    const uint8_t *const acts[4] = {act_bytes[0], act_bytes[1], act_bytes[2], act_bytes[3]};
    static float x[BN];
    for (size_t i = 0; i < sizeof weight_types / sizeof *weight_types; i++) {
        ds_type t = weight_types[i];
        if (!k->vec_dot[t]) continue;
        assert_non_null(k->vec_dot4[t]);
        const ds_type_traits *ref = ds_quant_scalar_traits(t);
        for (int n = ref->block_size; n <= BN; n *= 2) {
            for (int kind = 0; kind < 3; kind++) {
                for (int r = 0; r < ROWS; r++) {
                    weight_row(t, w, n, kind);
                    for (int v = 0; v < 4; v++) {
                        if (kind) {
                            random_act(ref->vec_dot_type, act_bytes[v], n, kind == 2);
                            continue;
                        }
                        for (int j = 0; j < n; j++) x[j] = frand() * (float)(1 + v);
                        ds_quant_scalar_traits(ref->vec_dot_type)->from_f32(x, act_bytes[v], n);
                    }
                    static const char *const what[3] = {"quantized row", "random bytes", "extreme bytes"};
                    check_dot(k, t, exact, w, acts, n, what[kind]);
                }
            }
        }
    }
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* The offsets of a block's F16 scale fields (d, and dmin or m where there is one). */
static int f16_fields(ds_type t, int off[2]) {
    switch (t) {
    case DS_TYPE_Q4_1:
    case DS_TYPE_Q5_1:
    case DS_TYPE_Q4_K:
    case DS_TYPE_Q5_K: off[0] = 0, off[1] = 2; return 2;
    case DS_TYPE_Q2_K: off[0] = 80, off[1] = 82; return 2;
    case DS_TYPE_Q3_K: off[0] = 108; return 1;
    case DS_TYPE_Q6_K: off[0] = 208; return 1;
    default: off[0] = 0; return 1;
    }
}

/* Widening a weight row gives the scalar dequantizer's floats bit for bit, on quantized rows,
   random bytes, and random bytes whose F16 scales are infinite, NaN (quiet, signalling, either
   sign, two of them in one block), subnormal, zero or the largest half. */
static void check_dequant(const ds_simd_kernels *k) {
    enum { DN = 32 * 256 }; /* 32 blocks of the largest size */
    static const uint16_t special[] = {0x7c00, 0xfc00, 0x7e00, 0x7d01, 0xfe33, 0xff01, 0x0001,
                                       0x83ff, 0x7bff, 0xfbff, 0x0000, 0x8000, 0x0400, 0x3c00};
    static uint8_t w[DN * 2];
    static float want[DN], got[DN];
    for (size_t i = 0; i < sizeof weight_types / sizeof *weight_types; i++) {
        ds_type t = weight_types[i];
        const ds_type_traits *ref = ds_quant_scalar_traits(t);
        if (!k->dequant[t]) fail_msg("%s: no dequant for %s", k->name, ref->name);
        for (int nb = 1; nb <= 32; nb++) {
            int n = nb * ref->block_size;
            /* quantizing is slow under qemu (IQ1_S most): quantized rows up to BN only */
            for (int kind = n <= BN ? 0 : 1; kind < 3; kind++) {
                for (int r = 0; r < (n <= BN ? ROWS : 2); r++) {
                    weight_row(t, w, n, kind == 0 ? 0 : 1);
                    if (kind == 2) {
                        int off[2], nf = f16_fields(t, off);
                        for (int b = 0; b < nb; b++)
                            for (int f = 0; f < nf; f++) {
                                uint16_t h = special[(unsigned)((frand() * 0.5f + 0.5f) * 14) % 14];
                                memcpy(w + (size_t)b * ref->type_size + off[f], &h, 2);
                            }
                    }
                    memset(want, 0xa5, sizeof want);
                    memset(got, 0xa5, sizeof got); /* and nothing written past n */
                    ref->to_f32(w, want, n);
                    k->dequant[t](w, got, n);
                    for (int j = 0; j < n; j++)
                        if (memcmp(&got[j], &want[j], sizeof *got))
                            fail_msg("%s %s dequant kind %d n=%d: element %d (block %d) %.9g "
                                     "(0x%08x), scalar %.9g (0x%08x)",
                                     k->name, ref->name, kind, n, j, j / ref->block_size, got[j], bits(got[j]), want[j],
                                     bits(want[j]));
                    assert_memory_equal(got + n, want + n, sizeof *got * (size_t)(DN - n));
                }
            }
        }
    }
}

/* DeepSeek-V3.2's index kernel: every level gives the scalar reference's bits (its dots are
   exact), for key counts around its blocking, head counts and lengths in and out of its vector
   loops (those it leaves to the reference too), codes over the whole range, weights of both
   signs. */
static void check_index(const ds_simd_kernels *k) {
    enum { NK = 19, NH = 9, NMAX = 512 };
    static double q[NH * NMAX];
    static uint8_t keys[NK][NMAX + 4];
    float w[NH], got[NK];
    const int ns[] = {8, 16, 24, 128, 256, 512}, heads[] = {1, 2, 9};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof heads / sizeof *heads; b++) {
            const int n = ns[a], H = heads[b];
            for (int i = 0; i < H * n; i++) {
                uint8_t c = (uint8_t)(frand() * 128 + 128);
                q[i] = ds_fp8_e4m3_to_f32((c & 0x7f) == 0x7f ? 0 : c);
            }
            for (int h = 0; h < H; h++) w[h] = frand();
            for (int j = 0; j < NK; j++)
                for (int i = 0; i < n; i++) {
                    uint8_t c = (uint8_t)(frand() * 128 + 128);
                    keys[j][i] = (c & 0x7f) == 0x7f ? 0x80 : c;
                }
            for (int nk = 1; nk <= NK; nk += 3) {
                k->index_scores(q, w, keys[0], sizeof keys[0], nk, H, n, got);
                for (int j = 0; j < nk; j++) {
                    float want = ds_fp8_index_score(q, w, keys[j], H, n);
                    if (memcmp(&got[j], &want, sizeof want))
                        fail_msg("%s index n=%d heads=%d keys=%d: key %d %.9g, scalar %.9g", k->name, n, H, nk, j,
                                 got[j], want);
                }
            }
        }
}

static void scalar_level(void **state) {
    (void)state;
    check_level(ds_simd_scalar());
    widen_then_dot_is_the_same(ds_simd_scalar());
    dot4_is_four_dots(ds_simd_scalar());
    check_index(ds_simd_scalar());
}

static void avx2_level(void **state) {
    (void)state;
    const ds_simd_kernels *k = ds_simd_avx2();
    if (!k) skip();
    check_level(k);
    widen_then_dot_is_the_same(k);
    dot4_is_four_dots(k);
    if (k->index_scores) check_index(k);
}

static void avx512_level(void **state) {
    (void)state;
    const ds_simd_kernels *k = ds_simd_avx512();
    if (!k) skip();
    check_level(k);
    widen_then_dot_is_the_same(k);
    dot4_is_four_dots(k);
    if (k->index_scores) check_index(k);
}

static void neon_level(void **state) {
    (void)state;
    const ds_simd_kernels *k = ds_simd_neon();
    if (!k) skip();
    check_level(k);
    widen_then_dot_is_the_same(k);
    dot4_is_four_dots(k);
    if (k->index_scores) check_index(k);
    check_act_quant(k);
    check_vec_dots(k, 1);
    check_dequant(k);
}

static void dotprod_level(void **state) {
    (void)state;
    const ds_simd_kernels *k = ds_simd_dotprod();
    if (!k) skip();
    check_level(k);
    widen_then_dot_is_the_same(k);
    dot4_is_four_dots(k);
    if (k->index_scores) check_index(k);
    check_act_quant(k);
    check_vec_dots(k, 1);
    check_dequant(k);
}

/* The level the CPU detection picks, when the caller says which it must be. */
static void expected_level(void **state) {
    (void)state;
    const char *want = getenv("DS_SIMD_EXPECT");
    if (!want) skip();
    assert_string_equal(ds_simd_best()->name, want);
}

int main(void) {
    printf("# best level here: %s\n", ds_simd_best()->name);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scalar_level), cmocka_unit_test(avx2_level),    cmocka_unit_test(avx512_level),
        cmocka_unit_test(neon_level),   cmocka_unit_test(dotprod_level), cmocka_unit_test(expected_level),
    };
    return cmocka_run_group_tests_name("simd", tests, NULL, NULL);
}
