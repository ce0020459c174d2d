/* test_mtp - the default model's logits and MTP logits against its PyTorch training code.

   usage: test_mtp MODEL.gguf REFERENCE.safetensors TOLERANCE [--self]

   REFERENCE (tools/train/check.py --reference) holds `tokens`, `logits` (every position) and
   `mtp_logits` (row i: the MTP layer's guess of tokens[i + 2] from position i's final state and
   the true tokens[i + 1]), as tools/train/model.py computes them in float32 from the Hugging
   Face checkpoint the GGUF was converted from.

   --self: for a fixture whose reference has no MTP logits (DeepSeek's V3.2 code has no MTP
   forward; tiny-v32): the main logits are held to REFERENCE as before, and the MTP logits every
   other way of batching gives to those of one batch on one thread, so the MTP layer's own
   attention (its indexer included) is seen to use its caches consistently. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deepseek.h"
#include "refdata.h"

static struct {
    double tol;
    ds_model *model;
    int32_t *tokens;
    int n_tokens, n_vocab;
    matrix logits, mtp;
} g;

static ds_context *new_ctx(int mtp, int n_threads, int n_batch) {
    char err[256];
    ds_context_params p = ds_context_default_params();
    p.mtp = mtp;
    p.n_threads = n_threads;
    p.n_batch = n_batch;
    p.n_ctx = g.n_tokens + 4;
    ds_context *ctx = NULL;
    if (ds_context_new(g.model, &p, &ctx, err, sizeof err)) fail_msg("context: %s", err);
    return ctx;
}

static double worst_row(const float *got, const matrix *want, int row, double worst) {
    double d = max_abs_diff(got, want->data + (size_t)row * g.n_vocab, g.n_vocab);
    return d > worst ? d : worst;
}

/* The whole sequence as one batch (or batches of n_batch), then the MTP layer over it. */
static void check_batch(int n_threads, int n_batch) {
    ds_context *ctx = new_ctx(1, n_threads, n_batch);
    const int n = g.n_tokens;
    assert_int_equal(ds_eval(ctx, g.tokens, n, 1), DS_OK);
    double dl = 0, dm = 0;
    for (int i = 0; i < n; i++) dl = worst_row(ds_logits(ctx, i), &g.logits, i, dl);
    assert_int_equal(ds_eval_mtp(ctx, g.tokens + 1, n - 1, 1), DS_OK);
    int agree = 0;
    for (int i = 0; i < n - 1; i++) {
        dm = worst_row(ds_mtp_logits(ctx, i), &g.mtp, i, dm);
        agree += argmax(ds_mtp_logits(ctx, i), g.n_vocab) == argmax(g.mtp.data + (size_t)i * g.n_vocab, g.n_vocab);
    }
    print_message("batch %d, %d threads: max |logit - ref| %.3g, MTP %.3g (tolerance %.3g); MTP argmax agrees %d/%d\n",
                  n_batch ? n_batch : n, n_threads, dl, dm, g.tol, agree, n - 1);
    assert_true(dl <= g.tol);
    assert_true(dm <= g.tol);
    ds_context_free(ctx);
}

static void batch_1_thread(void **state) {
    (void)state;
    check_batch(1, 0);
}
static void batch_2_threads(void **state) {
    (void)state;
    check_batch(2, 0);
}
static void batches_of_5(void **state) {
    (void)state;
    check_batch(2, 5);
}

/* Speculative decoding's pattern: one token evaluated, then its MTP row, step by step, each
   MTP row reading the MTP cache of the positions before it. */
static void token_by_token(void **state) {
    (void)state;
    ds_context *ctx = new_ctx(1, 2, 0);
    double dl = 0, dm = 0;
    for (int i = 0; i < g.n_tokens - 1; i++) {
        assert_int_equal(ds_eval(ctx, g.tokens + i, 1, 0), DS_OK);
        dl = worst_row(ds_logits(ctx, 0), &g.logits, i, dl);
        assert_int_equal(ds_eval_mtp(ctx, g.tokens + i + 1, 1, 0), DS_OK);
        dm = worst_row(ds_mtp_logits(ctx, 0), &g.mtp, i, dm);
    }
    print_message("token by token: max |logit - ref| %.3g, MTP %.3g\n", dl, dm);
    assert_true(dl <= g.tol);
    assert_true(dm <= g.tol);
    ds_context_free(ctx);
}

/* A rewind drops both caches' later positions: evaluating the same batches again gives the
   same numbers, bit for bit (results depend on how tokens are batched, so the split is kept). */
static void rewind_and_redo(void **state) {
    (void)state;
    ds_context *ctx = new_ctx(1, 2, 0);
    const int n = g.n_tokens, k = n / 2, rows = n - 1 - k;
    const size_t bytes = (size_t)rows * g.n_vocab * sizeof(float);
    float *first = malloc(bytes);
    assert_non_null(first);
    assert_int_equal(ds_eval(ctx, g.tokens, k, 0), DS_OK);
    assert_int_equal(ds_eval_mtp(ctx, g.tokens + 1, k, 0), DS_OK);
    for (int pass = 0; pass < 2; pass++) {
        if (pass) assert_int_equal(ds_context_rewind(ctx, k), DS_OK);
        assert_int_equal(ds_eval(ctx, g.tokens + k, n - k, 0), DS_OK);
        assert_int_equal(ds_eval_mtp(ctx, g.tokens + k + 1, rows, 1), DS_OK);
        for (int i = 0; i < rows; i++) {
            float *dst = first + (size_t)i * g.n_vocab;
            if (pass) assert_memory_equal(dst, ds_mtp_logits(ctx, i), g.n_vocab * sizeof *dst);
            else memcpy(dst, ds_mtp_logits(ctx, i), g.n_vocab * sizeof *dst);
        }
    }
    double dm = 0;
    for (int i = 0; i < rows; i++) dm = worst_row(first + (size_t)i * g.n_vocab, &g.mtp, k + i, dm);
    assert_true(dm <= g.tol);
    free(first);
    ds_context_free(ctx);
}

/* Speculative decoding's rejection: after a rewind the accepted tokens' states stay usable. */
static void rewind_keeps_accepted_states(void **state) {
    (void)state;
    ds_context *ctx = new_ctx(1, 2, 0);
    const int n = g.n_tokens, kept = n - 3;
    assert_int_equal(ds_eval(ctx, g.tokens, n, 0), DS_OK);
    assert_int_equal(ds_context_rewind(ctx, kept), DS_OK);
    assert_int_equal(ds_eval_mtp(ctx, g.tokens + 1, kept + 1, 0), DS_ERR_ARG); /* a dropped state */
    assert_int_equal(ds_eval_mtp(ctx, g.tokens + 1, kept, 1), DS_OK);
    double dm = 0;
    for (int i = 0; i < kept; i++) dm = worst_row(ds_mtp_logits(ctx, i), &g.mtp, i, dm);
    print_message("after a rewind to %d: MTP max |logit - ref| %.3g\n", kept, dm);
    assert_true(dm <= g.tol);
    ds_context_free(ctx);
}

static void misuse_is_refused(void **state) {
    (void)state;
    ds_context *off = new_ctx(0, 1, 0);
    assert_int_equal(ds_eval(off, g.tokens, 4, 0), DS_OK);
    assert_int_equal(ds_eval_mtp(off, g.tokens + 1, 3, 0), DS_ERR_ARG);
    print_message("%s\n", ds_context_error(off));
    ds_context_free(off);

    ds_context *ctx = new_ctx(1, 1, 0);
    assert_int_equal(ds_eval(ctx, g.tokens, 4, 0), DS_OK);
    assert_int_equal(ds_eval_mtp(ctx, g.tokens + 1, 5, 0), DS_ERR_ARG); /* more rows than the batch had */
    int32_t bad = g.n_vocab;
    assert_int_equal(ds_eval_mtp(ctx, &bad, 1, 0), DS_ERR_ARG);
    assert_null(ds_mtp_logits(ctx, 0));
    /* positions 0..3 never went through the MTP layer: the next batch's rows cannot attend */
    assert_int_equal(ds_eval(ctx, g.tokens + 4, 2, 0), DS_OK);
    assert_int_equal(ds_eval_mtp(ctx, g.tokens + 5, 2, 0), DS_ERR_ARG);
    print_message("%s\n", ds_context_error(ctx));
    ds_context_free(ctx);
}

/* The MTP reference of --self: one batch, one thread. */
static int self_reference(void) {
    char err[256];
    ds_context_params p = ds_context_default_params();
    p.mtp = 1;
    p.n_threads = 1;
    p.n_ctx = g.n_tokens + 4;
    ds_context *ctx = NULL;
    if (ds_context_new(g.model, &p, &ctx, err, sizeof err) || ds_eval(ctx, g.tokens, g.n_tokens, 0) ||
        ds_eval_mtp(ctx, g.tokens + 1, g.n_tokens - 1, 1))
        return -1;
    g.mtp.rows = g.n_tokens - 1;
    g.mtp.cols = g.n_vocab;
    g.mtp.data = malloc((size_t)g.mtp.rows * g.n_vocab * sizeof *g.mtp.data);
    for (int i = 0; g.mtp.data && i < g.mtp.rows; i++)
        memcpy(g.mtp.data + (size_t)i * g.n_vocab, ds_mtp_logits(ctx, i), g.n_vocab * sizeof *g.mtp.data);
    ds_context_free(ctx);
    return g.mtp.data ? 0 : -1;
}

int main(int argc, char **argv) {
    int self = argc == 5 && !strcmp(argv[4], "--self");
    if (argc != 4 && !self) {
        fprintf(stderr, "usage: test_mtp MODEL.gguf REFERENCE.safetensors TOLERANCE [--self]\n");
        return 2;
    }
    char err[512];
    g.tol = atof(argv[3]);
    if (ds_model_load(argv[1], &g.model, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (!ds_model_has_mtp(g.model)) {
        fprintf(stderr, "%s: no MTP layer\n", argv[1]);
        return 1;
    }
    g.n_vocab = ds_model_n_vocab(g.model);
    safetensors_file *f;
    if (safetensors_open(argv[2], &f, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc = read_ids(f, "tokens", &g.tokens, &g.n_tokens) || read_matrix(f, "logits", &g.logits) ||
             (self ? self_reference() : read_matrix(f, "mtp_logits", &g.mtp));
    safetensors_close(f);
    if (rc || g.logits.rows != g.n_tokens || g.mtp.rows != g.n_tokens - 1 || g.logits.cols != g.n_vocab ||
        g.mtp.cols != g.n_vocab) {
        fprintf(stderr, "%s: not a reference for this model\n", argv[2]);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_1_thread),    cmocka_unit_test(batch_2_threads),
        cmocka_unit_test(batches_of_5),      cmocka_unit_test(token_by_token),
        cmocka_unit_test(rewind_and_redo),   cmocka_unit_test(rewind_keeps_accepted_states),
        cmocka_unit_test(misuse_is_refused),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(g.tokens);
    free(g.logits.data);
    free(g.mtp.data);
    ds_model_free(g.model);
    return rc;
}
