/* test_simd_quant - the block-format kernels of every SIMD level this CPU runs (simd/simd.h:
   vec_dot, vec_dot4, act_quant) against the scalar reference (ds_quant_scalar_traits):

   - act_quant writes exactly the scalar quantizer's bytes (Q8_0, Q8_1 with its s, Q8_K with its
     bsums) and nothing past the row, for random rows and edge rows: zeros, rounding ties, equal
     values, outliers, magnitudes whose scale overflows or underflows F16, infinities. (NaN
     inputs are left out: which NaN wins a max is order-dependent.)
   - vec_dot is within float rounding of the scalar dot: |simd - scalar| <= 1e-5 * M, where M
     is the sum over the row of |w_j a_j| + |o_j a_j| in double, w and a the dequantized weight
     and activation rows and o_j the minimum term of the formats that have one (Q4_1, Q5_1,
     Q2_K, Q4_K, Q5_K: the weight row dequantized with its quants zeroed), for rows of up to
     4096 elements, and M grows in proportion beyond (1e-5 * M * n / 4096). Both sides compute
     the same exact integer sums per block; only the float additions differ in order. The scalar
     code adds the blocks one after another, so its own error grows with the row: a row of equal
     values (every rounding in the same direction) shows 4e-6 of M at 17152 elements, random
     rows stay under 1e-6.
     Where the scalar result is infinite (Q4_1 / Q5_1's F16 s overflows for huge activations)
     the SIMD one must be the same infinity.
   - vec_dot4's out[k] is bit for bit the same level's vec_dot of act[k].

   Weight rows come from the scalar quantizers (random rows, zeros, equal values, outliers) and
   from random bytes (every bit pattern of quants and scales) with the F16 scales set to random
   values, to +-65504 (the largest F16) and to subnormals; 1, 2, 3, 7, 16 and 67 blocks per row;
   rows and activations at 64-byte aligned and at merely 2- or 4-byte aligned addresses.
   Every SIMD level on x86 must have a kernel for every format listed here.

   The dequantizers (dequant, the traits' to_f32) must give the scalar floats bit for bit, on the
   same rows and on raw bytes with infinite, NaN, zero and subnormal scales; 1, 2, 3 and 7 blocks
   per row, outputs at 4-byte aligned addresses.

   AVX-512 is tested twice where the CPU has VNNI: with it (ds_simd_avx512_vnni, the default)
   and without (ds_simd_avx512_plain, what DS_SIMD=avx512 picks); the two must also agree bit for
   bit, since VNNI only changes how the same integer sums are formed. */
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
#include "quant/quant_impl.h"
#include "simd/simd.h"

#define TOL 1e-5

static const ds_type dot_types[] = {
    DS_TYPE_Q4_0, DS_TYPE_Q4_1, DS_TYPE_Q5_0, DS_TYPE_Q5_1, DS_TYPE_Q8_0,   DS_TYPE_IQ4_NL,  DS_TYPE_Q2_K,
    DS_TYPE_Q3_K, DS_TYPE_Q4_K, DS_TYPE_Q5_K, DS_TYPE_Q6_K, DS_TYPE_IQ4_XS, DS_TYPE_IQ2_XXS, DS_TYPE_IQ1_S,
    DS_TYPE_MXFP4,
};
static const ds_type act_types[] = {DS_TYPE_Q8_0, DS_TYPE_Q8_1, DS_TYPE_Q8_K};
static const int block_counts[] = {1, 2, 3, 7, 16, 67};
enum { MAX_BLOCKS = 67, MAXN = MAX_BLOCKS * 256, SLACK = 64 };

#define COUNT(a) (sizeof(a) / sizeof *(a))

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float frand(void) { return (float)(rnd() & 0xffffff) / 16777216.0f * 2.0f - 1.0f; }

/* ---- float rows ---- */

enum { F_RANDOM, F_ZERO, F_EQUAL, F_OUTLIER, F_WIDE, F_TIES, F_HUGE, F_TINY, F_SYMMETRIC, F_INF, F_KINDS };

/* Row kind for n elements. Ties: amax 127 makes Q8_0's and Q8_K's scale 1 (Q8_K's max is -127),
   so k + 0.5 lands exactly halfway. Symmetric: +max and -max in one block (the first wins). */
static void fill_floats(float *x, int n, int kind) {
    for (int j = 0; j < n; j++) {
        float v = frand();
        switch (kind) {
        case F_ZERO: v = 0; break;
        case F_EQUAL: v = 0.3f; break;
        case F_OUTLIER: v = j % 211 == 5 ? 1000.0f * (v < 0 ? -1 : 1) : v * 1e-3f; break;
        case F_WIDE: v *= ldexpf(1.0f, (int)(rnd() % 40) - 20); break;
        case F_TIES: v = j % 32 == 0 ? -127.0f : (float)((int)(rnd() % 253) - 126) + 0.5f; break;
        case F_HUGE: v *= 8.3e6f; break; /* Q8_0's d near 65504 */
        case F_TINY: v *= 1e-40f; break; /* subnormal inputs, scales underflow */
        case F_SYMMETRIC: v = j % 16 == 3 ? 5.0f : j % 16 == 9 ? -5.0f : v; break;
        case F_INF: v = j % 97 == 11 ? (v < 0 ? -INFINITY : INFINITY) : v; break;
        default: break;
        }
        x[j] = v;
    }
}

/* ---- weight rows ---- */

/* Byte offsets of a format's F16 scale fields in its block (-1: none). */
typedef struct {
    ds_type type;
    int d, dmin;
    int quants, quant_bytes; /* the quants to zero for the minimum term (formats with one) */
} layout;

static const layout layouts[] = {
    {DS_TYPE_Q4_0, 0, -1, 0, 0},
    {DS_TYPE_Q4_1, offsetof(block_q4_1, d), offsetof(block_q4_1, m), offsetof(block_q4_1, qs), QK / 2},
    {DS_TYPE_Q5_0, 0, -1, 0, 0},
    {DS_TYPE_Q5_1, offsetof(block_q5_1, d), offsetof(block_q5_1, m), offsetof(block_q5_1, qh), 4 + QK / 2},
    {DS_TYPE_Q8_0, 0, -1, 0, 0},
    {DS_TYPE_IQ4_NL, 0, -1, 0, 0},
    {DS_TYPE_Q2_K, offsetof(block_q2_K, d), offsetof(block_q2_K, dmin), offsetof(block_q2_K, qs), QK_K / 4},
    {DS_TYPE_Q3_K, offsetof(block_q3_K, d), -1, 0, 0},
    {DS_TYPE_Q4_K, offsetof(block_q4_K, d), offsetof(block_q4_K, dmin), offsetof(block_q4_K, qs), QK_K / 2},
    {DS_TYPE_Q5_K, offsetof(block_q5_K, d), offsetof(block_q5_K, dmin), offsetof(block_q5_K, qh), QK_K / 8 + QK_K / 2},
    {DS_TYPE_Q6_K, offsetof(block_q6_K, d), -1, 0, 0},
    {DS_TYPE_IQ4_XS, 0, -1, 0, 0},
    {DS_TYPE_IQ2_XXS, 0, -1, 0, 0},
    {DS_TYPE_IQ1_S, 0, -1, 0, 0},
    {DS_TYPE_MXFP4, -1, -1, 0, 0}, /* its scale is E8M0, one byte (scale_e8m0) */
};

static const layout *layout_of(ds_type t) {
    for (size_t i = 0; i < COUNT(layouts); i++)
        if (layouts[i].type == t) return &layouts[i];
    fail_msg("no layout for type %d", t);
    return NULL;
}

enum { W_RANDOM, W_ZERO, W_EQUAL, W_OUTLIER, W_BYTES, W_BYTES_MAX, W_BYTES_TINY, W_KINDS };
/* Raw bytes with infinite, NaN, zero or any-pattern scales: for the dequantizers only, the dot
   products having no finite result to compare with. */
enum { W_BYTES_SPECIAL = W_KINDS, W_ALL_KINDS };

static void set_f16(uint8_t *p, uint16_t h) { memcpy(p, &h, 2); }

/* Scale fields of raw-byte rows: random finite, +-65504, or subnormal. */
static uint16_t scale_f16(int kind) {
    uint16_t sign = (uint16_t)(rnd() & 0x8000);
    if (kind == W_BYTES_MAX) return sign | 0x7bff;
    if (kind == W_BYTES_TINY) return sign | (uint16_t)(1 + rnd() % 0x3ff);
    if (kind == W_BYTES_SPECIAL) {
        switch (rnd() % 5) {
        case 0: return sign | 0x7c00;                                 /* inf */
        case 1: return sign | 0x7c00 | (uint16_t)(1 + rnd() % 0x3ff); /* NaN, quiet or not */
        case 2: return sign;                                          /* +-0 */
        case 3: return sign | (uint16_t)(1 + rnd() % 0x3ff);          /* subnormal */
        default: return (uint16_t)rnd();                              /* any pattern */
        }
    }
    return ds_fp32_to_fp16(frand() * ldexpf(1.0f, (int)(rnd() % 16) - 10));
}

/* MXFP4's E8M0 scale bytes, as scale_f16's ranges: 2^-10 .. 2^5, 2^15, the two subnormals, or
   any byte (2^127 at most: e 255 is not NaN in ggml). */
static uint8_t scale_e8m0(int kind) {
    if (kind == W_BYTES_MAX) return 127 + 15;
    if (kind == W_BYTES_TINY) return (uint8_t)(rnd() % 2);
    if (kind == W_BYTES_SPECIAL) return (uint8_t)rnd();
    return (uint8_t)(117 + rnd() % 16);
}

static void make_weights(ds_type t, uint8_t *w, int n, int kind) {
    const ds_type_traits *tt = ds_quant_scalar_traits(t);
    const layout *l = layout_of(t);
    static float x[MAXN], imatrix[MAXN];
    if (kind >= W_BYTES) {
        size_t bytes = ds_type_row_size(t, n);
        for (size_t b = 0; b < bytes; b++) w[b] = (uint8_t)rnd();
        for (int64_t b = 0; b < n / tt->block_size; b++) {
            uint8_t *blk = w + b * tt->type_size;
            if (l->d < 0) blk[0] = scale_e8m0(kind);
            else set_f16(blk + l->d, scale_f16(kind));
            if (l->dmin >= 0) set_f16(blk + l->dmin, scale_f16(kind));
        }
        return;
    }
    static const int float_kind[] = {
        [W_RANDOM] = F_RANDOM,
        [W_ZERO] = F_ZERO,
        [W_EQUAL] = F_EQUAL,
        [W_OUTLIER] = F_OUTLIER,
    };
    fill_floats(x, n, float_kind[kind]);
    for (int j = 0; j < n; j++) imatrix[j] = 0.5f + (float)(rnd() % 100) / 50.0f;
    if (tt->quantize(x, w, n, tt->needs_imatrix ? imatrix : NULL) != ds_type_row_size(t, n))
        fail_msg("%s: the scalar quantizer failed", tt->name);
}

/* ---- the checks ---- */

/* |w a| + |o a| summed in double (see the top). */
static double magnitude(ds_type t, const uint8_t *w, const uint8_t *act, int n) {
    const ds_type_traits *tt = ds_quant_scalar_traits(t), *at = ds_quant_scalar_traits(tt->vec_dot_type);
    const layout *l = layout_of(t);
    static float wd[MAXN], od[MAXN], ad[MAXN];
    static uint8_t zeroed[MAXN * 2];
    tt->to_f32(w, wd, n);
    at->to_f32(act, ad, n);
    memset(od, 0, (size_t)n * sizeof *od);
    if (l->dmin >= 0) {
        size_t bytes = ds_type_row_size(t, n);
        memcpy(zeroed, w, bytes);
        for (int64_t b = 0; b < n / tt->block_size; b++)
            memset(zeroed + b * tt->type_size + l->quants, 0, (size_t)l->quant_bytes);
        tt->to_f32(zeroed, od, n);
    }
    double m = 0;
    for (int j = 0; j < n; j++) m += fabs((double)wd[j] * ad[j]) + fabs((double)od[j] * ad[j]);
    return m;
}

typedef struct {
    const ds_simd_kernels *k;
    double worst; /* the largest |simd - scalar| / M seen */
    long dots;
} level_stats;

/* One weight row against four activation rows on level s. */
static void check_dots(level_stats *s, ds_type t, const uint8_t *w, const void *const act[4], int n, const char *what) {
    const ds_type_traits *ref = ds_quant_scalar_traits(t);
    ds_vec_dot_fn dot = s->k->vec_dot[t];
    ds_vec_dot4_fn dot4 = s->k->vec_dot4[t];
    if (!dot || !dot4) fail_msg("%s: no vec_dot / vec_dot4 for %s", s->k->name, ref->name);
    float four[4];
    dot4(w, act, n, four);
    for (int k = 0; k < 4; k++) {
        const float got = dot(w, act[k], n), want = ref->vec_dot(w, act[k], n);
        const double m = magnitude(t, w, act[k], n), diff = fabs((double)got - want);
        const double tol = TOL * m * (n > 4096 ? n / 4096.0 : 1);
        /* an infinite result (Q4_1 / Q5_1's s overflows F16 for huge activations) must be the same */
        const int same_nonfinite = !isfinite(want) && (got == want || (isnan(got) && isnan(want)));
        if (!(diff <= tol) && !same_nonfinite)
            fail_msg("%s %s n=%d %s act %d: %.9g, scalar %.9g (diff %.3g, tolerance %.3g)", s->k->name, ref->name, n,
                     what, k, got, want, diff, tol);
        if (m > 0 && isfinite(want) && diff / m > s->worst) s->worst = diff / m;
        if (memcmp(&got, &four[k], sizeof got) && !(isnan(got) && isnan(four[k])))
            fail_msg("%s %s n=%d %s: vec_dot4 out[%d] %.9g, vec_dot %.9g", s->k->name, ref->name, n, what, k, four[k],
                     got);
        s->dots++;
    }
}

/* Buffers at a 64-byte boundary plus off bytes. */
static uint8_t *at(uint8_t *base, int off) { return base + off; }

static void check_type(level_stats *s, ds_type t) {
    const ds_type_traits *tt = ds_quant_scalar_traits(t), *at_t = ds_quant_scalar_traits(tt->vec_dot_type);
    static _Alignas(64) uint8_t wbuf[MAXN * 2 + SLACK], abuf[4][MAXN * 2 + SLACK];
    static float x[MAXN];
    /* four activation rows at a time: random, and an edge kind rotating through the rest */
    static const int act_sets[][4] = {
        {F_RANDOM, F_ZERO, F_OUTLIER, F_HUGE},
        {F_RANDOM, F_EQUAL, F_TIES, F_WIDE},
        {F_WIDE, F_TINY, F_SYMMETRIC, F_RANDOM},
    };
    const int aoff = tt->vec_dot_type == DS_TYPE_Q8_K ? 4 : 2;
    for (size_t c = 0; c < COUNT(block_counts); c++) {
        const int n = block_counts[c] * tt->block_size;
        if (n > MAXN) continue;
        for (int wk = 0; wk < W_KINDS; wk++) {
            for (size_t as = 0; as < COUNT(act_sets); as++) {
                /* aligned, or only as aligned as the type needs */
                const int off = (int)((c + wk + as) % 2);
                uint8_t *w = at(wbuf, 2 * off);
                make_weights(t, w, n, wk);
                const void *act[4];
                for (int k = 0; k < 4; k++) {
                    uint8_t *a = at(abuf[k], aoff * ((off + k) % 2));
                    fill_floats(x, n, act_sets[as][k]);
                    at_t->from_f32(x, a, n);
                    act[k] = a;
                }
                char what[64];
                snprintf(what, sizeof what, "weights kind %d, activations set %zu, offset %d", wk, as, off);
                check_dots(s, t, w, act, n, what);
            }
        }
    }
}

static void check_act_quant(const ds_simd_kernels *k, ds_type t) {
    const ds_type_traits *ref = ds_quant_scalar_traits(t);
    static _Alignas(64) uint8_t got[MAXN * 2 + SLACK], want[MAXN * 2 + SLACK];
    static _Alignas(64) float x[MAXN + 16];
    if (!k->act_quant[t]) fail_msg("%s: no act_quant for %s", k->name, ref->name);
    const int align = t == DS_TYPE_Q8_K ? 4 : 2;
    for (size_t c = 0; c < COUNT(block_counts); c++) {
        const int n = block_counts[c] * ref->block_size;
        if (n > MAXN) continue;
        const size_t bytes = ds_type_row_size(t, n);
        for (int kind = 0; kind < F_KINDS; kind++) {
            for (int off = 0; off < 2; off++) {
                float *xs = x + off; /* unaligned input too */
                uint8_t *g = got + off * align;
                fill_floats(xs, n, kind);
                memset(got, 0xa5, sizeof got);
                memset(want, 0xa5, sizeof want);
                ref->from_f32(xs, want + off * align, n);
                k->act_quant[t](xs, g, n);
                for (size_t b = 0; b < bytes + SLACK; b++)
                    if (g[b] != want[off * align + b])
                        fail_msg("%s act_quant %s n=%d kind %d offset %d: byte %zu (block %zu) 0x%02x, "
                                 "scalar 0x%02x%s",
                                 k->name, ref->name, n, kind, off, b, b / ref->type_size, g[b], want[off * align + b],
                                 b >= bytes ? " (past the row)" : "");
            }
        }
    }
}

/* A dequantizer's floats are the scalar to_f32's bit for bit, NaNs included, and it writes
   nothing outside the row; outputs at 4-byte, not 32-byte aligned addresses too. One freedom:
   where d * q - dmin * m (or q * d + m) meets two NaNs, which payload the sum keeps is the
   compiler's choice (it may swap the operands of an addition), so there any NaN will do. */
static void check_dequant(ds_widen_fn deq, const char *name, ds_type t) {
    const ds_type_traits *ref = ds_quant_scalar_traits(t);
    const int two_nans = layout_of(t)->dmin >= 0;
    static _Alignas(64) uint8_t wbuf[MAXN * 2 + SLACK];
    static _Alignas(64) float got[MAXN + 16 + SLACK], want[MAXN + 16 + SLACK];
    static const int counts[] = {1, 2, 3, 7};
    if (!deq) fail_msg("%s: no dequant for %s", name, ref->name);
    for (size_t c = 0; c < COUNT(counts); c++) {
        const int n = counts[c] * ref->block_size;
        for (int wk = 0; wk < W_ALL_KINDS; wk++) {
            for (int rep = 0; rep < (wk >= W_BYTES ? 4 : 1); rep++) {
                const int woff = rep % 2, yoff = (int)(c + (size_t)wk + (size_t)rep) % 4;
                uint8_t *w = at(wbuf, 2 * woff);
                make_weights(t, w, n, wk);
                memset(got, 0xa5, sizeof got);
                memset(want, 0xa5, sizeof want);
                ref->to_f32(w, want + yoff, n);
                deq(w, got + yoff, n);
                for (int j = -yoff; j < n + SLACK; j++) {
                    const float gf = got[yoff + j], ef = want[yoff + j];
                    uint32_t g, e;
                    memcpy(&g, &gf, 4);
                    memcpy(&e, &ef, 4);
                    if (g == e || (two_nans && j >= 0 && j < n && isnan(gf) && isnan(ef))) continue;
                    fail_msg("%s dequant %s n=%d kind %d out offset %d: element %d (block %d) "
                             "%.9g (0x%08x), scalar %.9g (0x%08x)%s",
                             name, ref->name, n, wk, yoff, j, j / ref->block_size, (double)gf, g, (double)ef, e,
                             j < 0 || j >= n ? " (outside the row)" : "");
                }
            }
        }
    }
}

static void check_level(const ds_simd_kernels *k) {
    for (size_t i = 0; i < COUNT(act_types); i++) check_act_quant(k, act_types[i]);
    for (size_t i = 0; i < COUNT(dot_types); i++) check_dequant(k->dequant[dot_types[i]], k->name, dot_types[i]);
    for (size_t i = 0; i < COUNT(dot_types); i++) {
        level_stats s = {k, 0, 0};
        check_type(&s, dot_types[i]);
        printf("# %-10s %-8s %5ld dots, worst |simd - scalar| / M = %.2g\n", k->name,
               ds_quant_scalar_traits(dot_types[i])->name, s.dots, s.worst);
    }
}

/* The table the core composes (ds_simd_compose over ds_simd_best()) uses the best level's
   kernels; DS_SIMD=scalar|avx2|avx512 (meson runs this test under each) picks that level where
   the CPU has it. */
static void traits_use_best_level(void **state) {
    (void)state;
    const ds_simd_kernels *best = ds_simd_best();
    const char *want = getenv("DS_SIMD");
    if (want && ((!strcmp(want, "scalar")) || (!strcmp(want, "avx2") && ds_simd_avx2()) ||
                 (!strcmp(want, "avx512") && ds_simd_avx512())))
        assert_string_equal(best->name, want);
    static ds_type_traits traits[DS_TYPE_COUNT];
    ds_simd_compose(best, traits);
    /* every type: quant/'s entry, with the level's kernel wherever it has one */
    for (int t = 0; t < DS_TYPE_COUNT; t++) {
        const ds_type_traits *s = ds_quant_scalar_traits((ds_type)t), *c = &traits[t];
        if (!s) {
            assert_null(c->name);
            continue;
        }
        assert_ptr_equal(c->name, s->name);
        assert_int_equal(c->block_size, s->block_size);
        assert_int_equal(c->type_size, s->type_size);
        assert_ptr_equal(c->quantize, s->quantize);
        assert_int_equal(c->needs_imatrix, s->needs_imatrix);
        assert_int_equal(c->vec_dot_type, s->vec_dot_type);
        assert_ptr_equal(c->vec_dot, best->vec_dot[t] ? best->vec_dot[t] : s->vec_dot);
        assert_ptr_equal(c->vec_dot4, best->vec_dot4[t] ? best->vec_dot4[t] : s->vec_dot4);
        assert_ptr_equal(c->from_f32, best->act_quant[t] ? best->act_quant[t] : s->from_f32);
        if (t == DS_TYPE_F32 || t == DS_TYPE_F16 || t == DS_TYPE_BF16) continue;
        assert_null(c->dot_f32);
        assert_null(c->dot4_f32);
        assert_ptr_equal(c->to_f32, best->dequant[t] ? best->dequant[t] : s->to_f32);
    }
    /* the float formats: the level's dots and widening (F32's is quant/'s copy) */
    assert_ptr_equal(traits[DS_TYPE_F32].dot_f32, best->dot_f32);
    assert_ptr_equal(traits[DS_TYPE_F32].dot4_f32, best->dot4_f32);
    assert_ptr_equal(traits[DS_TYPE_F32].to_f32, ds_quant_scalar_traits(DS_TYPE_F32)->to_f32);
    assert_ptr_equal(traits[DS_TYPE_F16].dot_f32, best->dot_f16);
    assert_ptr_equal(traits[DS_TYPE_F16].dot4_f32, best->dot4_f16);
    assert_ptr_equal(traits[DS_TYPE_F16].to_f32, best->f16_to_f32);
    assert_ptr_equal(traits[DS_TYPE_BF16].dot_f32, best->dot_bf16);
    assert_ptr_equal(traits[DS_TYPE_BF16].dot4_f32, best->dot4_bf16);
    assert_ptr_equal(traits[DS_TYPE_BF16].to_f32, best->bf16_to_f32);
    /* and the composed to_f32, whatever it is, gives the scalar floats */
    for (size_t i = 0; i < COUNT(dot_types); i++) check_dequant(traits[dot_types[i]].to_f32, best->name, dot_types[i]);
}

static void avx2_level(void **state) {
    (void)state;
    const ds_simd_kernels *k = ds_simd_avx2();
    if (!k) skip();
    check_level(k);
}

static void avx512_level(void **state) {
    (void)state;
    const ds_simd_kernels *k = ds_simd_avx512_plain();
    if (!k) skip();
    assert_string_equal(k->name, "avx512");
    check_level(k);
}

static void avx512vnni_level(void **state) {
    (void)state;
    const ds_simd_kernels *k = ds_simd_avx512_vnni();
    if (!k) skip();
    check_level(k);
}

/* VNNI changes how the integer sums are formed, not their values: both AVX-512 tables must give
   the same bits. */
static void vnni_same_as_avx512(void **state) {
    (void)state;
    const ds_simd_kernels *plain = ds_simd_avx512_plain(), *vnni = ds_simd_avx512_vnni();
    if (!vnni) skip();
    static _Alignas(64) uint8_t w[MAXN * 2], a[MAXN * 2];
    static float x[MAXN];
    for (size_t i = 0; i < COUNT(dot_types); i++) {
        const ds_type t = dot_types[i];
        const ds_type_traits *tt = ds_quant_scalar_traits(t);
        const ds_type_traits *at_t = ds_quant_scalar_traits(tt->vec_dot_type);
        for (int rep = 0; rep < 20; rep++) {
            const int n = block_counts[rep % COUNT(block_counts)] * tt->block_size;
            make_weights(t, w, n, rep % 2 ? W_BYTES : W_RANDOM);
            fill_floats(x, n, rep % 3 ? F_RANDOM : F_WIDE);
            at_t->from_f32(x, a, n);
            const float p = plain->vec_dot[t](w, a, n), v = vnni->vec_dot[t](w, a, n);
            if (memcmp(&p, &v, sizeof p)) fail_msg("%s n=%d: avx512 %.9g, avx512vnni %.9g", tt->name, n, p, v);
        }
    }
}

/* test_simd_quant [dispatch]: everything, or only which kernels the composed table uses (for the
   runs under DS_SIMD). */
int main(int argc, char **argv) {
    printf("# best level here: %s; tolerance %g x sum(|w a| + |o a|)\n", ds_simd_best()->name, TOL);
    const struct CMUnitTest dispatch[] = {cmocka_unit_test(traits_use_best_level)};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(traits_use_best_level), cmocka_unit_test(avx2_level),          cmocka_unit_test(avx512_level),
        cmocka_unit_test(avx512vnni_level),      cmocka_unit_test(vnni_same_as_avx512),
    };
    if (argc > 1 && !strcmp(argv[1], "dispatch"))
        return cmocka_run_group_tests_name("simd-quant", dispatch, NULL, NULL);
    return cmocka_run_group_tests_name("simd-quant", tests, NULL, NULL);
}
