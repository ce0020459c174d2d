/* test_simd - every SIMD level this CPU runs computes what the scalar reference computes:
   dot products within float rounding of the scalar ones, widening bit for bit, and the
   four-vector dots bit for bit equal to the single ones of the same level. Lengths cover
   the vector loops, their tails and the empty row; values cover zeros, large and tiny
   magnitudes and (for F16/BF16) every exponent. */
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
            if (memcmp(&one, &o[v], sizeof one)) fail_msg("%s dot4_f32 n=%d vector %d: %g vs %g", k->name, n, v, o[v], one);
        }
        k->dot4_f16(r->h, xs, n, o);
        for (int v = 0; v < 4; v++) {
            float one = k->dot_f16(r->h, xs[v], n);
            if (memcmp(&one, &o[v], sizeof one)) fail_msg("%s dot4_f16 n=%d vector %d: %g vs %g", k->name, n, v, o[v], one);
        }
        k->dot4_bf16(r->b, xs, n, o);
        for (int v = 0; v < 4; v++) {
            float one = k->dot_bf16(r->b, xs[v], n);
            if (memcmp(&one, &o[v], sizeof one)) fail_msg("%s dot4_bf16 n=%d vector %d: %g vs %g", k->name, n, v, o[v], one);
        }
    }
    free(r);
}

static void scalar_level(void **state) {
    (void)state;
    check_level(ds_simd_scalar());
    widen_then_dot_is_the_same(ds_simd_scalar());
    dot4_is_four_dots(ds_simd_scalar());
}

static void avx2_level(void **state) {
    (void)state;
    const ds_simd_kernels *k = ds_simd_avx2();
    if (!k) skip();
    check_level(k);
    widen_then_dot_is_the_same(k);
    dot4_is_four_dots(k);
}

static void avx512_level(void **state) {
    (void)state;
    const ds_simd_kernels *k = ds_simd_avx512();
    if (!k) skip();
    check_level(k);
    widen_then_dot_is_the_same(k);
    dot4_is_four_dots(k);
}

int main(void) {
    printf("# best level here: %s\n", ds_simd_best()->name);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scalar_level),
        cmocka_unit_test(avx2_level),
        cmocka_unit_test(avx512_level),
    };
    return cmocka_run_group_tests_name("simd", tests, NULL, NULL);
}
