/* test_quant - one ggml block format against ggml's own results (tests/data/quant/<TYPE>.safetensors,
   made by llama.cpp v0.5.0's ggml; its README lists the rows and tensors):

   - dequantization of ggml's bytes gives ggml's floats bit for bit;
   - our quantizer gives ggml's bytes, without and with the importance matrix (the types that
     need one must refuse to quantize without it);
   - activation rows quantize to the bytes of ggml's x86 CPU code (act_q; Q8_K: the same as the
     generic code's);
   - the dot products of ggml's weight bytes with those activation bytes agree with ggml's generic
     vec_dot (dot_generic), and on the AVX-512 variant's activation bytes (act_q) with the generic
     vec_dot of those (dot_generic_same_act) and with the float64 dot of the dequantized rows
     (dot_exact), all within float32 rounding: |ours - theirs| <= 1e-5 x sum |w_j a_j| (the sum of the magnitudes of the
     products, in float64 from the dequantized rows; a float32 sum of 512 terms in ~20 partial
     sums is off by at most ~1.2e-6 of it). Q4_1 and Q5_1 use the activations' stored
     s = d sum(q) (an F16) for the min term as ggml does, so against dot_exact they are also off by
     what that rounding moved: sum over blocks of |m (s - f16(d) sum(q))|, computed from the bytes.

   The fixture rows include the edge cases: all zeros, one huge outlier (x = 1000), values near
   FLT_MIN (scales underflow), rounding ties. A last test quantizes a few more edge rows and checks
   that what comes back is finite and sensible.

   The kernels are those the core computes with: quant/'s table with the best SIMD level's laid
   over it by ds_simd_compose (DS_SIMD=scalar leaves quant/'s own). */
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
#include "safetensors.h"
#include "simd/simd.h"

enum { R = 16, A = 6, N = 512 };

static safetensors_file *fx;
static ds_type type;
static ds_type_traits traits[DS_TYPE_COUNT];
static const ds_type_traits *tt, *act_tt;

/* A fixture tensor copied into aligned memory (the file's data is not aligned), or NULL when the
   file lacks it; its size must be bytes. */
static void *load(const char *name, size_t bytes) {
    const safetensors_tensor *t = safetensors_find(fx, name);
    if (!t) return NULL;
    if (t->n_bytes != bytes) fail_msg("%s: %zu bytes, expected %zu", name, t->n_bytes, bytes);
    void *p = malloc(bytes);
    assert_non_null(p);
    memcpy(p, t->data, bytes);
    return p;
}

static void *need(const char *name, size_t bytes) {
    void *p = load(name, bytes);
    if (!p) fail_msg("%s has no tensor '%s'", safetensors_path(fx), name);
    return p;
}

static size_t row_bytes(const ds_type_traits *t) { return (size_t)(N / t->block_size) * t->type_size; }

/* The weight bytes ggml's dot products used: weight_q, or weight_q_imatrix for the types that
   cannot quantize without an importance matrix. */
static uint8_t *dot_weights(void) {
    uint8_t *w = load("weight_q", R * row_bytes(tt));
    return w ? w : need("weight_q_imatrix", R * row_bytes(tt));
}

static void check_dequant(const char *q_name, const char *deq_name) {
    uint8_t *q = load(q_name, R * row_bytes(tt));
    if (!q) return;
    float *want = need(deq_name, R * N * sizeof(float)), got[N];
    for (int r = 0; r < R; r++) {
        tt->to_f32(q + r * row_bytes(tt), got, N);
        for (int j = 0; j < N; j++)
            if (memcmp(&got[j], &want[r * N + j], sizeof(float)))
                fail_msg("%s row %d [%d]: %.9g, ggml %.9g", q_name, r, j, got[j], want[r * N + j]);
    }
    free(q);
    free(want);
}

static void dequantize_matches_ggml(void **state) {
    (void)state;
    check_dequant("weight_q", "weight_deq");
    check_dequant("weight_q_imatrix", "weight_deq_imatrix");
}

static void check_quantize(const char *q_name, const float *imatrix) {
    uint8_t *want = load(q_name, R * row_bytes(tt));
    if (!want) return;
    float *x = need("weight_f32", R * N * sizeof(float));
    uint8_t *got = malloc(row_bytes(tt));
    assert_non_null(tt->quantize);
    for (int r = 0; r < R; r++) {
        assert_int_equal(tt->quantize(x + r * N, got, N, imatrix), row_bytes(tt));
        for (size_t b = 0; b < row_bytes(tt); b++)
            if (got[b] != want[r * row_bytes(tt) + b])
                fail_msg("%s row %d byte %zu (block %zu): 0x%02x, ggml 0x%02x", q_name, r, b, b / tt->type_size, got[b],
                         want[r * row_bytes(tt) + b]);
    }
    free(got);
    free(x);
    free(want);
}

static void quantize_matches_ggml(void **state) {
    (void)state;
    if (tt->needs_imatrix) { /* ggml refuses these without an importance matrix; so do we */
        float *x = need("weight_f32", R * N * sizeof(float));
        uint8_t *row = malloc(row_bytes(tt));
        assert_int_equal(tt->quantize(x, row, N, NULL), 0);
        free(row);
        free(x);
    }
    check_quantize("weight_q", NULL);
}

static void quantize_imatrix_matches_ggml(void **state) {
    (void)state;
    float *imatrix = need("imatrix", N * sizeof(float));
    check_quantize("weight_q_imatrix", imatrix);
    free(imatrix);
}

static void activations_match_ggml(void **state) {
    (void)state;
    size_t rb = row_bytes(act_tt);
    float *x = need("act_f32", A * N * sizeof(float));
    uint8_t *want = need("act_q", A * rb), *got = malloc(rb);
    for (int a = 0; a < A; a++) {
        act_tt->from_f32(x + a * N, got, N);
        for (size_t b = 0; b < rb; b++)
            if (got[b] != want[a * rb + b])
                fail_msg("%s of activation row %d byte %zu: 0x%02x, ggml 0x%02x", act_tt->name, a, b, got[b],
                         want[a * rb + b]);
    }
    free(got);
    free(want);
    free(x);
}

/* Q4_1 / Q5_1: how far ggml's min term sum_b m_b s_b, with the activation's stored s (F16 of
   d sum(q), d before its own rounding to F16), is from the exact sum_b m_b f16(d)_b sum(q)_b. */
static double s_allowance(const uint8_t *w, const uint8_t *act) {
    if (type != DS_TYPE_Q4_1 && type != DS_TYPE_Q5_1) return 0;
    double sum = 0;
    for (int b = 0; b < N / 32; b++) {
        const uint8_t *blk = act + b * act_tt->type_size;
        uint16_t m, d, s;
        memcpy(&m, w + b * tt->type_size + 2, 2);
        memcpy(&d, blk, 2);
        memcpy(&s, blk + 2, 2);
        int q = 0;
        for (int j = 0; j < 32; j++) q += (int8_t)blk[4 + j];
        sum += fabs(ds_fp16_to_fp32(m) * ((double)ds_fp16_to_fp32(s) - (double)ds_fp16_to_fp32(d) * q));
    }
    return sum * 1.01;
}

/* Our dot of weight row r with activation row a of acts, against ggml's value; returns whether
   the bits are equal, and raises *worst to |diff| / sum |w a|. */
static int check_dot(const uint8_t *w, const uint8_t *act, double want, double allowance, const char *what, int r,
                     int a, double *worst) {
    float wd[N], ad[N];
    tt->to_f32(w, wd, N);
    act_tt->to_f32(act, ad, N);
    double mag = 0;
    for (int j = 0; j < N; j++) mag += fabs((double)wd[j] * ad[j]);
    float got = tt->vec_dot(w, act, N);
    /* float32 scales that underflow: a block's scale product (subnormal, or flushed past 2^-149)
       is off by at most 2^-150, times its integer sum of at most 32 x 127 x 127 (x 64 for the
       K-quants' sub-block scales) */
    const double underflow = (double)N * 127 * 127 * 64 * ldexp(1, -150);
    double tol = 1e-5 * mag + allowance + underflow, d = fabs((double)got - want);
    if (d > tol) fail_msg("dot row %d act %d: %.9g, %s %.9g (tolerance %.3g)", r, a, got, what, want, tol);
    if (mag > 0 && d / mag > *worst) *worst = d / mag;
    float wantf = (float)want;
    return memcmp(&got, &wantf, sizeof got) == 0;
}

/* dot_generic is ggml's generic vec_dot on act_q_generic; dot_generic_same_act and dot_exact
   (float64, dequantized rows) are on act_q, the AVX-512 variant's activation bytes. */
static void dot_matches_ggml(void **state) {
    (void)state;
    if (!tt->vec_dot) skip(); /* Q8_K: an activation format only */
    size_t rb = row_bytes(tt), ab = row_bytes(act_tt);
    uint8_t *w = dot_weights(), *gen = need("act_q_generic", A * ab), *picked = need("act_q", A * ab);
    float *want = need("dot_generic", R * A * sizeof(float));
    float *want_same = need("dot_generic_same_act", R * A * sizeof(float));
    double *exact = need("dot_exact", R * A * sizeof(double)), worst[3] = {0};
    int same[3] = {0};
    for (int r = 0; r < R; r++) {
        const uint8_t *wr = w + r * rb;
        for (int a = 0; a < A; a++) {
            const uint8_t *g = gen + a * ab, *p = picked + a * ab;
            same[0] += check_dot(wr, g, want[r * A + a], 0, "ggml", r, a, &worst[0]);
            same[1] += check_dot(wr, p, want_same[r * A + a], 0, "ggml on act_q", r, a, &worst[1]);
            check_dot(wr, p, exact[r * A + a], s_allowance(wr, p), "exact", r, a, &worst[2]);
        }
    }
    printf("%s: bit-identical to ggml's generic vec_dot in %d + %d of %d + %d dots; worst |diff| / "
           "sum|w a|: %.2g, %.2g; vs the exact dot %.2g\n",
           tt->name, same[0], same[1], R * A, R * A, worst[0], worst[1], worst[2]);
    free(exact);
    free(want_same);
    free(want);
    free(picked);
    free(gen);
    free(w);
}

/* Quantize, dequantize: finite everywhere, zeros stay zeros, the outlier survives. */
static void edge_rows(void **state) {
    (void)state;
    static float x[N], imatrix[N], deq[N];
    uint8_t *q = malloc(row_bytes(tt));
    for (int j = 0; j < N; j++) imatrix[j] = (float)(1 + j % 7);
    for (int kind = 0; kind < 4; kind++) {
        for (int j = 0; j < N; j++) {
            float g = sinf(0.37f * j) + 0.5f * cosf(1.3f * j); /* smooth, both signs */
            x[j] = kind == 0 ? 0.0f : kind == 1 ? g * 1e-40f : kind == 2 ? g * 1e-30f : g;
        }
        if (kind == 3) x[300] = 3000.0f;
        assert_int_equal(tt->quantize(x, q, N, imatrix), row_bytes(tt));
        tt->to_f32(q, deq, N);
        for (int j = 0; j < N; j++) {
            if (!isfinite(deq[j])) fail_msg("kind %d [%d]: %g", kind, j, deq[j]);
            if (kind == 0 && deq[j] != 0) fail_msg("zero row [%d] dequantizes to %g", j, deq[j]);
        }
        if (kind == 3 && !(deq[300] > 1000.0f)) fail_msg("outlier 3000 dequantizes to %g", deq[300]);
        if (tt->vec_dot) {
            uint8_t *act = calloc(1, row_bytes(act_tt));
            act_tt->from_f32(x, act, N);
            float d = tt->vec_dot(q, act, N);
            if (!isfinite(d) || (kind == 0 && d != 0)) fail_msg("kind %d: dot %g", kind, d);
            free(act);
        }
    }
    free(q);
}

int main(int argc, char **argv) {
    char err[256];
    if (argc != 3 || safetensors_open(argv[2], &fx, err, sizeof err)) {
        fprintf(stderr, "usage: test_quant TYPE TYPE.safetensors%s%s\n", argc == 3 ? ": " : "", argc == 3 ? err : "");
        return 2;
    }
    for (type = 0; type < DS_TYPE_COUNT; type++)
        if (ds_type_name(type) && !strcmp(ds_type_name(type), argv[1])) break;
    ds_simd_compose(ds_simd_best(), traits);
    tt = type < DS_TYPE_COUNT ? &traits[type] : NULL;
    if (!tt || !tt->to_f32 || !tt->quantize) {
        fprintf(stderr, "test_quant: no kernels for type '%s'\n", argv[1]);
        return 2;
    }
    act_tt = &traits[tt->vec_dot ? tt->vec_dot_type : type]; /* Q8_K: its own rows */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dequantize_matches_ggml),
        cmocka_unit_test(quantize_matches_ggml),
        cmocka_unit_test(quantize_imatrix_matches_ggml),
        cmocka_unit_test(activations_match_ggml),
        cmocka_unit_test(dot_matches_ggml),
        cmocka_unit_test(edge_rows),
    };
    int rc = cmocka_run_group_tests_name(argv[1], tests, NULL, NULL);
    safetensors_close(fx);
    return rc;
}
