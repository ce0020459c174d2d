/* test_f16 - F16 and BF16 conversions against ggml's own results (tests/data/quant,
   conversions.safetensors: signed zeros, infinities, NaN payloads, subnormals, halfway points,
   random values, and every F16 bit pattern), both the scalar functions and the row widening:
   quant/'s own, and the SIMD level's that the core's table uses (DS_SIMD picks another). */
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
#include "safetensors.h"
#include "simd/simd.h"

static safetensors_file *conv;

static const safetensors_tensor *get(const char *name, size_t n_bytes) {
    const safetensors_tensor *t = safetensors_find(conv, name);
    if (!t) fail_msg("conversions.safetensors has no '%s'", name);
    assert_int_equal(t->n_bytes, n_bytes);
    return t;
}

static uint32_t f32_bits(const void *p, size_t i) {
    uint32_t v;
    memcpy(&v, (const uint8_t *)p + 4 * i, 4);
    return v;
}

static uint16_t u16_at(const void *p, size_t i) {
    uint16_t v;
    memcpy(&v, (const uint8_t *)p + 2 * i, 2);
    return v;
}

static float f32_at(const void *p, size_t i) {
    float v;
    memcpy(&v, (const uint8_t *)p + 4 * i, 4);
    return v;
}

static void every_f16_widens_like_ggml(void **state) {
    (void)state;
    const safetensors_tensor *t = get("f16_all_to_f32", 65536 * 4);
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ds_fp16_to_fp32((uint16_t)h);
        uint32_t got;
        memcpy(&got, &f, 4);
        if (got != f32_bits(t->data, h)) fail_msg("F16 0x%04x -> 0x%08x, ggml 0x%08x", h, got, f32_bits(t->data, h));
    }
}

/* Every 16-bit pattern widened in one row by to_f32, at an odd offset so that vector loads are
   unaligned: pattern i must give the float32 bits want[i] (read with f32_bits). */
static void row_widens_to(void (*to_f32)(const void *, float *, int64_t), const void *want, const char *what) {
    uint16_t *h = malloc((65536 + 1) * sizeof *h);
    float *f = malloc(65536 * sizeof *f);
    assert_true(h && f);
    for (uint32_t i = 0; i < 65536; i++) h[i + 1] = (uint16_t)i;
    to_f32(h + 1, f, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        uint32_t got;
        memcpy(&got, &f[i], 4);
        if (got != f32_bits(want, i))
            fail_msg("%s 0x%04x -> 0x%08x in a row, want 0x%08x", what, i, got, f32_bits(want, i));
    }
    free(h);
    free(f);
}

/* F16 rows against ggml, by quant/'s own widening (the C code above, what the quantizer uses) and
   by the one the core computes with: the SIMD level's (F16C or FCVT here), laid over quant/'s
   table by ds_simd_compose. */
static void every_f16_widens_like_ggml_in_rows(void **state) {
    (void)state;
    static ds_type_traits traits[DS_TYPE_COUNT];
    ds_simd_compose(ds_simd_best(), traits);
    const safetensors_tensor *t = get("f16_all_to_f32", 65536 * 4);
    row_widens_to(ds_quant_scalar_traits(DS_TYPE_F16)->to_f32, t->data, "scalar F16");
    row_widens_to(traits[DS_TYPE_F16].to_f32, t->data, ds_simd_best()->name);
}

static void f32_to_f16_rounds_like_ggml(void **state) {
    (void)state;
    const safetensors_tensor *x = get("x", 432 * 4), *want = get("f16_base", 432 * 2);
    for (size_t i = 0; i < 432; i++) {
        uint16_t got = ds_fp32_to_fp16(f32_at(x->data, i));
        if (got != u16_at(want->data, i))
            fail_msg("F32 0x%08x -> F16 0x%04x, ggml 0x%04x", f32_bits(x->data, i), got, u16_at(want->data, i));
    }
}

static void f32_to_bf16_rounds_like_ggml(void **state) {
    (void)state;
    const safetensors_tensor *x = get("x", 432 * 4), *want = get("bf16_base_ref", 432 * 2),
                             *back = get("bf16_base_to_f32", 432 * 4);
    for (size_t i = 0; i < 432; i++) {
        uint16_t got = ds_fp32_to_bf16(f32_at(x->data, i));
        if (got != u16_at(want->data, i))
            fail_msg("F32 0x%08x -> BF16 0x%04x, ggml 0x%04x", f32_bits(x->data, i), got, u16_at(want->data, i));
        float f = ds_bf16_to_fp32(got);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        assert_int_equal(bits, f32_bits(back->data, i));
    }
}

/* BF16 rows the same two ways, against ds_bf16_to_fp32 (held to ggml above). */
static void every_bf16_widens_in_rows(void **state) {
    (void)state;
    static ds_type_traits traits[DS_TYPE_COUNT];
    ds_simd_compose(ds_simd_best(), traits);
    static float want[65536];
    for (uint32_t i = 0; i < 65536; i++) want[i] = ds_bf16_to_fp32((uint16_t)i);
    row_widens_to(ds_quant_scalar_traits(DS_TYPE_BF16)->to_f32, want, "scalar BF16");
    row_widens_to(traits[DS_TYPE_BF16].to_f32, want, ds_simd_best()->name);
}

static void f16_round_trips(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaNs are canonicalised */
        assert_int_equal(ds_fp32_to_fp16(ds_fp16_to_fp32((uint16_t)h)), h);
    }
}

int main(int argc, char **argv) {
    char err[256];
    if (argc != 2 || safetensors_open(argv[1], &conv, err, sizeof err)) {
        fprintf(stderr, "usage: test_f16 conversions.safetensors%s%s\n", argc == 2 ? ": " : "", argc == 2 ? err : "");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_f16_widens_like_ggml),  cmocka_unit_test(every_f16_widens_like_ggml_in_rows),
        cmocka_unit_test(f32_to_f16_rounds_like_ggml), cmocka_unit_test(f32_to_bf16_rounds_like_ggml),
        cmocka_unit_test(every_bf16_widens_in_rows),   cmocka_unit_test(f16_round_trips),
    };
    int rc = cmocka_run_group_tests_name("f16", tests, NULL, NULL);
    safetensors_close(conv);
    return rc;
}
