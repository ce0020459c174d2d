/* test_quantized - quantized GGUF files against llama.cpp's logits, or against the official
   float reference.

   usage: test_quantized SUMMARY.json FIXTURE TYPE MODEL.gguf LOGITS.safetensors [official]

   Default: MODEL is the file llama.cpp quantized and LOGITS llama.cpp's logits for it
   (tests/data/llama-quantized/README.md); summary.json gives the acceptance for another runtime
   on the same file: a bound on the mean absolute difference and on how many positions' argmax
   agree.

   official: MODEL is our own quantization (deepseek-quantize) of the fixture and LOGITS the
   fixture's official reference.safetensors. The bound is the drift the lossy storage itself
   causes, as summary.json measures it (a float64 forward pass on the same quantized weights
   against the official logits), with the fixture's 1.5x / 0.9x margins: our arithmetic may
   add no more than that; or, where more, no more than 1.05x what ggml's arithmetic adds on the
   same bytes (llama.cpp's file against the official logits, vs_official). That is Q8_0 on
   tiny-v3: ggml's rounding of each matmul input to Q8_0 alone takes it from 0.105 to 0.165, above
   1.5 x 0.105, and this runtime rounds activations exactly as ggml's x86 code does.

   usage: test_quantized dequantized MODEL.gguf WIDENED.gguf REFERENCE.safetensors

   For a fixture summary.json does not cover (tiny-v32): the same bound, with the drift measured
   here instead: WIDENED is MODEL's weights widened to F32 (deepseek-quantize --allow-requantize
   ... F32), run through the float path the fixture tests hold to 2e-4 of the official code;
   its distance from the official logits is what the quantization itself causes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "deepseek.h"
#include "refdata.h"
#include "safetensors.h"
#include "testutil.h"

static struct {
    ds_model *model;
    int32_t *tokens;
    float *logits; /* llama.cpp's, [n_tokens][n_vocab] */
    int n_tokens, n_vocab, argmax_min;
    double mean_max;
} g;

static int load_tolerance(const char *summary, const char *fixture, const char *type, int official) {
    size_t n;
    char *text = (char *)slurp(summary, &n);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, n);
    free(text);
    const cJSON *fx = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "fixtures"), fixture);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(fx, "quantized"), type);
    const cJSON *tol =
        cJSON_GetObjectItemCaseSensitive(q, official ? "f64_same_weights_vs_official" : "suggested_tolerance");
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(tol, official ? "mean_abs" : "mean_abs_max");
    const cJSON *agree = cJSON_GetObjectItemCaseSensitive(tol, official ? "argmax_agree" : "argmax_agree_min");
    /* ggml's own arithmetic on these bytes: llama.cpp's file against the official logits */
    const cJSON *ggml = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(q, "vs_official"), "mean_abs");
    int ok = cJSON_IsNumber(mean) && cJSON_IsNumber(agree) && (!official || cJSON_IsNumber(ggml));
    if (ok && official) {
        g.mean_max = 1.5 * mean->valuedouble;
        if (1.05 * ggml->valuedouble > g.mean_max) g.mean_max = 1.05 * ggml->valuedouble;
    }
    if (ok) {
        if (!official) g.mean_max = mean->valuedouble;
        g.argmax_min = official ? (int)(0.9 * agree->valuedouble) : agree->valueint;
    }
    cJSON_Delete(root);
    return ok ? 0 : -1;
}

static int load_logits(const char *path) {
    char err[256];
    safetensors_file *f = open_reference(path);
    if (!f) return -1;
    const safetensors_tensor *t = safetensors_find(f, "tokens"), *l = safetensors_find(f, "logits");
    int rc = -1;
    if (t && l && l->n_dims == 2) {
        g.n_tokens = (int)t->n_elements;
        g.tokens = malloc((size_t)g.n_tokens * sizeof *g.tokens);
        g.logits = malloc((size_t)l->n_elements * sizeof *g.logits);
        rc = safetensors_read_i32(t, g.tokens, (size_t)g.n_tokens, err, sizeof err) ||
                     safetensors_read_f32(l, g.logits, (size_t)l->n_elements, err, sizeof err)
                 ? -1
                 : 0;
    }
    safetensors_close(f);
    return rc;
}

/* Our logits for the prompt, evaluated n_batch tokens at a time (0: one batch). */
static float *run(int n_threads, int n_batch) {
    char err[256];
    ds_context_params p = ds_context_default_params();
    p.n_threads = n_threads;
    p.n_batch = n_batch;
    ds_context *ctx;
    if (ds_context_new(g.model, &p, &ctx, err, sizeof err)) fail_msg("context: %s", err);
    size_t V = (size_t)g.n_vocab;
    float *out = malloc((size_t)g.n_tokens * V * sizeof *out);
    int step = n_batch ? n_batch : g.n_tokens;
    for (int t0 = 0; t0 < g.n_tokens; t0 += step) {
        int n = g.n_tokens - t0 < step ? g.n_tokens - t0 : step;
        assert_int_equal(ds_eval(ctx, g.tokens + t0, n, 1), DS_OK);
        for (int t = 0; t < n; t++) memcpy(out + (size_t)(t0 + t) * V, ds_logits(ctx, t), V * sizeof *out);
    }
    ds_context_free(ctx);
    return out;
}

/* mean |ours - reference|, the largest, and at how many positions the argmax agrees */
static double distance(const float *ours, double *worst_out, int *agree_out) {
    double sum = 0, worst = 0;
    int agree = 0;
    for (int t = 0; t < g.n_tokens; t++) {
        const float *a = ours + (size_t)t * g.n_vocab, *b = g.logits + (size_t)t * g.n_vocab;
        for (int v = 0; v < g.n_vocab; v++) {
            double d = a[v] > b[v] ? (double)a[v] - b[v] : (double)b[v] - a[v];
            sum += d;
            if (d > worst || d != d) worst = d != d ? 1e30 : d;
        }
        agree += argmax(a, g.n_vocab) == argmax(b, g.n_vocab);
    }
    *worst_out = worst;
    *agree_out = agree;
    return sum / ((double)g.n_tokens * g.n_vocab);
}

static void check(const char *what, const float *ours) {
    double worst;
    int agree;
    double mean = distance(ours, &worst, &agree);
    print_message("%s: mean |ours - reference| %.3g (<= %.3g), max %.3g, argmax agrees at %d of %d (>= %d)\n", what,
                  mean, g.mean_max, worst, agree, g.n_tokens, g.argmax_min);
    assert_true(mean <= g.mean_max);
    assert_true(agree >= g.argmax_min);
}

static void one_batch(void **state) {
    (void)state;
    float *l = run(2, 0);
    check("one batch", l);
    free(l);
}

static void token_by_token(void **state) {
    (void)state;
    float *l = run(2, 1);
    check("token by token", l);
    free(l);
}

static void threads_bit_identical(void **state) {
    (void)state;
    float *a = run(1, 0), *b = run(3, 0);
    assert_memory_equal(a, b, (size_t)g.n_tokens * g.n_vocab * sizeof *a);
    free(a);
    free(b);
}

/* The bound from the widened weights' own drift (see the top). */
static int measure_tolerance(const char *widened) {
    char err[256];
    if (ds_model_load(widened, &g.model, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    g.n_vocab = ds_model_n_vocab(g.model);
    float *l = run(2, 0);
    double worst;
    int agree;
    double mean = distance(l, &worst, &agree);
    printf("# the quantized weights in float32: mean |logit - official| %.3g, max %.3g, argmax agrees at %d of %d\n",
           mean, worst, agree, g.n_tokens);
    g.mean_max = 1.5 * mean;
    g.argmax_min = (int)(0.9 * agree);
    free(l);
    ds_model_free(g.model);
    return 0;
}

int main(int argc, char **argv) {
    char err[256];
    int official = argc == 7 && !strcmp(argv[6], "official"),
        dequantized = argc == 5 && !strcmp(argv[1], "dequantized");
    if (argc != 6 && !official && !dequantized) {
        fprintf(stderr, "usage: test_quantized SUMMARY.json FIXTURE TYPE MODEL.gguf LOGITS.safetensors [official]\n"
                        "       test_quantized dequantized MODEL.gguf WIDENED.gguf REFERENCE.safetensors\n");
        return 2;
    }
    const char *model = dequantized ? argv[2] : argv[4];
    if (load_logits(dequantized ? argv[4] : argv[5])) return 1;
    if (dequantized) {
        if (measure_tolerance(argv[3])) return 1; /* it said why */
    } else if (load_tolerance(argv[1], argv[2], argv[3], official)) {
        fprintf(stderr, "%s: no tolerance for %s %s\n", argv[1], argv[2], argv[3]);
        return 1;
    }
    if (ds_model_load(model, &g.model, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    g.n_vocab = ds_model_n_vocab(g.model);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_batch),
        cmocka_unit_test(token_by_token),
        cmocka_unit_test(threads_bit_identical),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ds_model_free(g.model);
    free(g.tokens);
    free(g.logits);
    return rc;
}
