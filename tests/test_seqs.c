/* ds_eval_seqs: several contexts' next tokens in one pass give each the logits and cache that
   ds_eval gives it alone (MLA, DSA and GQA models), sequences at different positions; bad
   batches are refused with a message on the first context. */
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

static const char *model_path;
static double tolerance;

enum { N_SEQ = 4, STEPS = 6 };

static ds_context *new_ctx(ds_model *m, int mtp) {
    ds_context_params p = ds_context_default_params();
    p.n_ctx = 64;
    p.n_threads = 2;
    p.mtp = mtp;
    ds_context *c = NULL;
    char err[256];
    assert_int_equal(ds_context_new(m, &p, &c, err, sizeof err), DS_OK);
    return c;
}

static int32_t tok(const ds_model *m, int s, int i) { return (int32_t)((s * 101 + i * 37 + 5) % ds_model_n_vocab(m)); }

static void test_same_as_alone(void **st) {
    (void)st;
    ds_model *m;
    char err[256];
    assert_int_equal(ds_model_load(model_path, &m, err, sizeof err), DS_OK);
    const int V = ds_model_n_vocab(m);
    ds_context *alone[N_SEQ], *batch[N_SEQ];
    for (int s = 0; s < N_SEQ; s++) {
        int32_t p[64];
        int n = 3 + 5 * s; /* prompts of 3, 8, 13 and 18 tokens: the sequences sit at different positions */
        for (int i = 0; i < n; i++) p[i] = tok(m, s, i);
        alone[s] = new_ctx(m, 0), batch[s] = new_ctx(m, 0);
        assert_int_equal(ds_eval(alone[s], p, n, 0), DS_OK);
        assert_int_equal(ds_eval(batch[s], p, n, 0), DS_OK);
    }
    double worst = 0;
    for (int step = 0; step < STEPS; step++) {
        int32_t next[N_SEQ];
        for (int s = 0; s < N_SEQ; s++) {
            next[s] = tok(m, s, 100 + step);
            assert_int_equal(ds_eval(alone[s], &next[s], 1, 0), DS_OK);
        }
        assert_int_equal(ds_eval_seqs(batch, next, N_SEQ), DS_OK);
        for (int s = 0; s < N_SEQ; s++) {
            assert_int_equal(ds_context_n_past(batch[s]), ds_context_n_past(alone[s]));
            const float *a = ds_logits(alone[s], 0), *b = ds_logits(batch[s], 0);
            assert_non_null(b);
            for (int v = 0; v < V; v++) worst = fmax(worst, fabs((double)a[v] - b[v]));
        }
    }
    printf("# max |batched - alone| over %d steps of %d sequences: %.3g (tolerance %g)\n", STEPS, N_SEQ, worst,
           tolerance);
    assert_true(worst <= tolerance);
    for (int s = 0; s < N_SEQ; s++) ds_context_free(alone[s]), ds_context_free(batch[s]);
    ds_model_free(m);
}

static void test_refused(void **st) {
    (void)st;
    ds_model *m;
    char err[256];
    assert_int_equal(ds_model_load(model_path, &m, err, sizeof err), DS_OK);
    ds_context *a = new_ctx(m, 0), *b = new_ctx(m, 0);
    int32_t t[2] = {1, 2};
    ds_context *twice[2] = {a, a}, *pair[2] = {a, b};
    assert_int_equal(ds_eval_seqs(twice, t, 2), DS_ERR_ARG);
    assert_non_null(strstr(ds_context_error(a), "same context"));
    int32_t bad[2] = {1, ds_model_n_vocab(m)};
    assert_int_equal(ds_eval_seqs(pair, bad, 2), DS_ERR_ARG);
    assert_int_equal(ds_eval_seqs(pair, t, 0), DS_ERR_ARG);
    assert_int_equal(ds_context_n_past(a), 0);
    assert_int_equal(ds_context_n_past(b), 0);
    if (ds_model_has_mtp(m)) {
        ds_context *c = new_ctx(m, 1), *with_mtp[2] = {a, c};
        assert_int_equal(ds_eval_seqs(with_mtp, t, 2), DS_ERR_ARG);
        assert_non_null(strstr(ds_context_error(a), "MTP"));
        ds_context_free(c);
    }
    assert_int_equal(ds_eval_seqs(pair, t, 2), DS_OK);
    assert_int_equal(ds_context_n_past(a), 1);
    assert_int_equal(ds_context_n_past(b), 1);
    ds_context_free(a), ds_context_free(b);
    ds_model_free(m);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_seqs MODEL.gguf TOLERANCE\n");
        return 2;
    }
    model_path = argv[1];
    tolerance = atof(argv[2]);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_same_as_alone), cmocka_unit_test(test_refused)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
