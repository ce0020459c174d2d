/* test_fp8 - FP8 e4m3fn as DeepSeek-V3.2's indexer uses it (quant/fp8.c): the 256 codes'
   values from the format's definition, rounding to nearest even with saturation, DeepSeek's
   power-of-two block scales, and the index score's dot products exact (against an integer
   computation). The SIMD levels' index kernels are held to this one in test_simd. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "quant/quant.h"

static uint32_t rng = 12345;
static uint32_t next(void) {
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}

/* a finite code (not S.1111.111) */
static uint8_t random_code(void) {
    uint8_t c;
    do c = (uint8_t)next();
    while ((c & 0x7f) == 0x7f);
    return c;
}

/* e4m3fn by its definition: bias 7, subnormals m/8 x 2^-6, NaN at S.1111.111, no infinities */
static double defined_value(int c) {
    int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
    double v = e ? (1 + m / 8.0) * pow(2, e - 7) : m / 8.0 * pow(2, -6);
    return s ? -v : v;
}

static void codes_have_their_values(void **state) {
    (void)state;
    for (int c = 0; c < 256; c++) {
        float v = ds_fp8_e4m3_to_f32((uint8_t)c);
        if ((c & 0x7f) == 0x7f) {
            assert_true(isnan(v));
            continue;
        }
        assert_true((double)v == defined_value(c));
        assert_int_equal(signbit(v) != 0, c >> 7);
    }
    assert_true(ds_fp8_e4m3_to_f32(0x7e) == 448.0f && ds_fp8_e4m3_to_f32(0x01) == 0x1p-9f);
}

static void rounding_is_to_nearest_even(void **state) {
    (void)state;
    for (int c = 0; c < 256; c++)
        if ((c & 0x7f) != 0x7f) assert_int_equal(ds_fp8_e4m3_from_f32(ds_fp8_e4m3_to_f32((uint8_t)c)), c);
    for (int c = 0; c < 0x7e; c++) { /* between neighbours: the midpoint goes to the even code */
        float a = ds_fp8_e4m3_to_f32((uint8_t)c), b = ds_fp8_e4m3_to_f32((uint8_t)(c + 1)), mid = (a + b) / 2;
        assert_int_equal(ds_fp8_e4m3_from_f32(mid), c % 2 ? c + 1 : c);
        assert_int_equal(ds_fp8_e4m3_from_f32(nextafterf(mid, a)), c);
        assert_int_equal(ds_fp8_e4m3_from_f32(nextafterf(mid, b)), c + 1);
        assert_int_equal(ds_fp8_e4m3_from_f32(-nextafterf(mid, b)), 0x80 | (c + 1));
    }
    assert_int_equal(ds_fp8_e4m3_from_f32(449.0f), 0x7e); /* saturates */
    assert_int_equal(ds_fp8_e4m3_from_f32(-1e30f), 0xfe);
    assert_int_equal(ds_fp8_e4m3_from_f32(0x1p-11f), 0x00); /* a quarter of the smallest: to zero */
    assert_int_equal(ds_fp8_e4m3_from_f32(-0.0f), 0x80);
}

/* The scale is the power of two at or above amax / 448 (amax at least 1e-4), and the codes are
   the values divided by it, rounded. */
static void block_scales_are_powers_of_two(void **state) {
    (void)state;
    float x[128];
    uint8_t codes[128];
    for (int trial = 0; trial < 200; trial++) {
        float mag = ldexpf(1.0f, (int)(next() % 40) - 25);
        for (int i = 0; i < 128; i++) x[i] = ((int)(next() % 2001) - 1000) / 1000.0f * mag;
        if (trial == 0) memset(x, 0, sizeof x);
        float amax = 1e-4f;
        for (int i = 0; i < 128; i++) amax = fmaxf(amax, fabsf(x[i]));
        float s = ds_fp8_quant_block(x, 128, codes);
        int e;
        assert_true(frexpf(s, &e) == 0.5f); /* a power of two */
        float want = amax * (1.0f / 448.0f);
        assert_true(s >= want && s / 2 < want);
        for (int i = 0; i < 128; i++) {
            assert_int_equal(codes[i], ds_fp8_e4m3_from_f32(x[i] / s));
            assert_true(fabsf(ds_fp8_e4m3_to_f32(codes[i])) <= 448.0f);
        }
    }
}

/* q . k over FP8 values as integers (units of 2^-9, so products in units of 2^-18): exact, then
   one rounding to float. */
static float exact_dot(const uint8_t *a, const uint8_t *b, int n) {
    int64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += (int64_t)ldexp(ds_fp8_e4m3_to_f32(a[i]), 9) * (int64_t)ldexp(ds_fp8_e4m3_to_f32(b[i]), 9);
    return ldexpf((float)sum, -18);
}

static void index_dots_are_exact(void **state) {
    (void)state;
    enum { N = 1024 };
    uint8_t qc[N], k[N];
    double q[N];
    const float one = 1.0f;
    for (int trial = 0; trial < 300; trial++) {
        int n = trial % 3 ? 128 : N;
        for (int i = 0; i < n; i++) {
            qc[i] = random_code();
            k[i] = random_code();
            if (trial % 5 == 1) qc[i] = (uint8_t)((qc[i] & 0x80) | (next() % 8));  /* subnormals */
            if (trial % 5 == 2 && i % 2) qc[i] = (uint8_t)((qc[i] & 0x87) | 0x70); /* large (2^7) with small */
            q[i] = ds_fp8_e4m3_to_f32(qc[i]);
        }
        float want = exact_dot(qc, k, n);
        float got = ds_fp8_index_score(q, &one, k, 1, n); /* one head, weight 1: relu(q . k) */
        assert_true(got == (want > 0 ? want : 0.0f));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codes_have_their_values),
        cmocka_unit_test(rounding_is_to_nearest_even),
        cmocka_unit_test(block_scales_are_powers_of_two),
        cmocka_unit_test(index_dots_are_exact),
    };
    return cmocka_run_group_tests_name("fp8", tests, NULL, NULL);
}
