/* test_forward - a converted tiny checkpoint against DeepSeek's official logits.

   usage: test_forward MODEL.gguf REFERENCE.safetensors TOLERANCE [f16|bf16|q8_0|--mismatch]

   The optional argument: the latent cache's type, or --mismatch, which inverts the prefill
   checks (a library built without a step of the computation must miss the reference).

   REFERENCE holds `tokens` (the prompt), `logits` (every prompt position after one prefill),
   `greedy` (32 greedy tokens) and `greedy_logits` (the logits each was chosen from). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "deepseek.h"
#include "refdata.h"

static struct {
    const char *model_path;
    double tol;
    ds_model *model;
    int32_t *tokens, *greedy;
    int n_tokens, n_greedy, n_vocab;
    int cache_type; /* ds_context_params.cache_type */
    bool mismatch;  /* --mismatch: a model known to compute something else must fail the reference */
    matrix logits, greedy_logits;
} g;

static int load_reference(const char *path) {
    safetensors_file *f = open_reference(path);
    if (!f) return -1;
    int rc = read_ids(f, "tokens", &g.tokens, &g.n_tokens) || read_ids(f, "greedy", &g.greedy, &g.n_greedy) ||
             read_matrix(f, "logits", &g.logits) || read_matrix(f, "greedy_logits", &g.greedy_logits);
    safetensors_close(f);
    return rc ? -1 : 0;
}

static ds_context *new_ctx(int n_threads, int n_batch, int n_ctx) {
    char err[256];
    ds_context_params p = ds_context_default_params();
    p.n_threads = n_threads;
    p.n_batch = n_batch;
    p.n_ctx = n_ctx;
    p.cache_type = g.cache_type;
    ds_context *ctx = NULL;
    ds_status s = ds_context_new(g.model, &p, &ctx, err, sizeof err);
    if (s) fail_msg("context: %s", err);
    return ctx;
}

/* Every prompt position after one prefill; returns the logits (n_tokens x n_vocab). */
static float *prefill(ds_context *ctx) {
    assert_int_equal(ds_eval(ctx, g.tokens, g.n_tokens, 1), DS_OK);
    size_t n = (size_t)g.n_tokens * g.n_vocab;
    float *out = malloc(n * sizeof *out);
    assert_non_null(out);
    for (int t = 0; t < g.n_tokens; t++)
        memcpy(out + (size_t)t * g.n_vocab, ds_logits(ctx, t), g.n_vocab * sizeof *out);
    return out;
}

static void check_prefill(int n_threads, int n_batch) {
    ds_context *ctx = new_ctx(n_threads, n_batch, 0);
    float *l = prefill(ctx);
    double d = max_abs_diff(l, g.logits.data, g.n_tokens * g.n_vocab);
    print_message("prefill, %d threads, batch %d: max |logit - reference| = %.3g (tolerance %.3g)\n", n_threads,
                  n_batch, d, g.tol);
    if (g.mismatch) assert_true(d > g.tol);
    else assert_true(d <= g.tol);
    free(l);
    ds_context_free(ctx);
}

static void prefill_1_thread(void **state) {
    (void)state;
    check_prefill(1, 0);
}
static void prefill_2_threads(void **state) {
    (void)state;
    check_prefill(2, 0);
}
/* a prompt split into uneven batches goes through the cache between them */
static void prefill_in_batches_of_7(void **state) {
    (void)state;
    check_prefill(2, 7);
}
/* and one token at a time, as decoding feeds it */
static void prefill_token_by_token(void **state) {
    (void)state;
    check_prefill(2, 1);
}

static void check_greedy(int n_threads) {
    ds_context *ctx = new_ctx(n_threads, 0, 0);
    assert_int_equal(ds_eval(ctx, g.tokens, g.n_tokens, 0), DS_OK);
    double worst = 0;
    for (int i = 0; i < g.n_greedy; i++) {
        const float *l = ds_logits(ctx, 0);
        assert_non_null(l);
        double d = max_abs_diff(l, g.greedy_logits.data + (size_t)i * g.n_vocab, g.n_vocab);
        worst = d > worst ? d : worst;
        int32_t tok = argmax(l, g.n_vocab);
        if (tok != g.greedy[i]) fail_msg("greedy step %d: token %d, reference %d", i, tok, g.greedy[i]);
        assert_true(d <= g.tol);
        assert_int_equal(ds_eval(ctx, &tok, 1, 0), DS_OK);
    }
    print_message("greedy %d tokens, %d threads: all equal; max |logit - reference| = %.3g\n", g.n_greedy, n_threads,
                  worst);
    ds_context_free(ctx);
}

static void greedy_1_thread(void **state) {
    (void)state;
    check_greedy(1);
}
static void greedy_2_threads(void **state) {
    (void)state;
    check_greedy(2);
}

/* The promise: results identical, bit for bit, whatever the thread count. */
static void threads_bit_identical(void **state) {
    (void)state;
    float *ref = NULL;
    for (int n = 1; n <= 4; n++) {
        ds_context *ctx = new_ctx(n, 0, 0);
        float *l = prefill(ctx);
        if (!ref) ref = l;
        else {
            assert_memory_equal(ref, l, (size_t)g.n_tokens * g.n_vocab * sizeof *l);
            free(l);
        }
        ds_context_free(ctx);
    }
    free(ref);
}

/* Two contexts on one model do not disturb each other; reset starts a sequence afresh. */
static void contexts_share_model_and_reset(void **state) {
    (void)state;
    ds_context *a = new_ctx(1, 0, 0), *b = new_ctx(2, 0, 0);
    float *la = prefill(a);
    assert_int_equal(ds_eval(b, g.tokens, 5, 0), DS_OK);
    ds_context_reset(a);
    assert_int_equal(ds_context_n_past(a), 0);
    float *la2 = prefill(a);
    assert_memory_equal(la, la2, (size_t)g.n_tokens * g.n_vocab * sizeof *la);
    free(la);
    free(la2);
    ds_context_free(a);
    ds_context_free(b);
}

/* ds_model_decode_bytes against the file's own tensor table: every 2-D or 3-D weight of the
   main layers and the head, n_expert_used / n_expert of each routed-expert stack, one embedding
   row (the whole table again when the head is tied to it); no 1-D tensor, no MTP layer. */
static void decode_bytes_counts_the_weights_read(void **state) {
    (void)state;
    char err[256], mtp[32], key_e[64], key_k[64];
    ds_gguf *f = NULL;
    assert_int_equal(ds_gguf_open(g.model_path, &f, err, sizeof err), DS_OK);
    size_t n_arch = 0;
    const char *arch = ds_gguf_get_str(f, "general.architecture", &n_arch);
    assert_non_null(arch);
    snprintf(key_e, sizeof key_e, "%.*s.expert_count", (int)n_arch, arch);
    snprintf(key_k, sizeof key_k, "%.*s.expert_used_count", (int)n_arch, arch);
    int64_t E = 1, K = 1; /* a dense model has no expert stacks */
    if (ds_gguf_get_int(f, key_e, &E)) assert_true(ds_gguf_get_int(f, key_k, &K));
    snprintf(mtp, sizeof mtp, "blk.%d.", ds_model_n_layer(g.model));
    size_t want = 0, embd = 0;
    int tied = 1;
    for (size_t i = 0; i < ds_gguf_n_tensors(f); i++) {
        ds_gguf_tensor_info t;
        ds_gguf_tensor(f, i, &t);
        if (!strcmp(t.name, "output.weight")) tied = 0;
        if (t.n_dims < 2 || !strncmp(t.name, mtp, strlen(mtp))) continue;
        if (!strcmp(t.name, "token_embd.weight")) {
            embd = t.size;
            want += t.size / (size_t)t.ne[1];
        } else if (strstr(t.name, "_exps.")) {
            want += t.size / (size_t)E * (size_t)K;
        } else {
            want += t.size;
        }
    }
    if (tied) want += embd; /* the head reads the whole embedding table */
    print_message("a decode step reads %zu bytes of weights\n", want);
    assert_int_equal(ds_model_decode_bytes(g.model), want);
    ds_gguf_close(f);
}

/* A deepseek32 file whose indexer keys are not one FP8 block of 128 is refused, naming the key:
   the model under test rewritten with that one value changed. */
static void indexer_key_length_is_checked(void **state) {
    (void)state;
    char err[256], path[] = "/tmp/test_forward_XXXXXX";
    ds_gguf *in = NULL;
    assert_int_equal(ds_gguf_open(g.model_path, &in, err, sizeof err), DS_OK);
    size_t n_arch = 0;
    const char *arch = ds_gguf_get_str(in, "general.architecture", &n_arch);
    if (n_arch != 10 || memcmp(arch, "deepseek32", 10)) {
        ds_gguf_close(in);
        skip();
    }
    ds_gguf_writer *w = NULL;
    assert_int_equal(ds_gguf_writer_new(&w, err, sizeof err), DS_OK);
    for (size_t i = 0; i < ds_gguf_n_kv(in); i++) assert_int_equal(ds_gguf_copy_kv(w, in, i), DS_OK);
    assert_int_equal(ds_gguf_set_u32(w, "deepseek32.attention.indexer.key_length", 64), DS_OK);
    for (size_t i = 0; i < ds_gguf_n_tensors(in); i++) {
        ds_gguf_tensor_info t;
        ds_gguf_tensor(in, i, &t);
        assert_int_equal(ds_gguf_add_tensor(w, t.name, t.type, t.n_dims, t.ne), DS_OK);
    }
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ds_gguf_writer_begin(w, path, err, sizeof err), DS_OK);
    for (size_t i = 0; i < ds_gguf_n_tensors(in); i++) {
        ds_gguf_tensor_info t;
        ds_gguf_tensor(in, i, &t);
        assert_int_equal(ds_gguf_writer_tensor(w, t.data, t.size, err, sizeof err), DS_OK);
    }
    assert_int_equal(ds_gguf_writer_finish(w, err, sizeof err), DS_OK);
    ds_gguf_writer_free(w);
    ds_gguf_close(in);
    ds_model *m = NULL;
    assert_int_equal(ds_model_load(path, &m, err, sizeof err), DS_ERR_UNSUPPORTED);
    print_message("%s\n", err);
    assert_null(m);
    assert_non_null(strstr(err, "'deepseek32.attention.indexer.key_length' is 64"));
    unlink(path);
}

/* A cache type the latent cache has no code for is refused by name, not run as another. */
static void bad_cache_type_is_refused(void **state) {
    (void)state;
    char err[256] = "";
    ds_context_params p = ds_context_default_params();
    ds_context *ctx = (ds_context *)&p;
    p.cache_type = DS_TYPE_Q4_K;
    assert_int_equal(ds_context_new(g.model, &p, &ctx, err, sizeof err), DS_ERR_UNSUPPORTED);
    assert_null(ctx);
    assert_non_null(strstr(err, "Q4_K"));
    p.cache_type = 12345;
    assert_int_equal(ds_context_new(g.model, &p, &ctx, err, sizeof err), DS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "unknown"));
}

static void bad_batches_are_refused(void **state) {
    (void)state;
    ds_context *ctx = new_ctx(2, 0, g.n_tokens + 2);
    int32_t bad[2] = {0, g.n_vocab};
    assert_int_equal(ds_eval(ctx, bad, 2, 0), DS_ERR_ARG);
    assert_non_null(strstr(ds_context_error(ctx), "outside the vocabulary"));
    bad[1] = -1;
    assert_int_equal(ds_eval(ctx, bad, 2, 0), DS_ERR_ARG);
    assert_int_equal(ds_eval(ctx, g.tokens, 0, 0), DS_ERR_ARG);
    assert_int_equal(ds_context_n_past(ctx), 0); /* nothing was evaluated */
    assert_int_equal(ds_eval(ctx, g.tokens, g.n_tokens, 0), DS_OK);
    assert_int_equal(ds_eval(ctx, g.tokens, 3, 0), DS_ERR_CONTEXT_FULL);
    print_message("context full: %s\n", ds_context_error(ctx));
    assert_int_equal(ds_eval(ctx, g.tokens, 2, 0), DS_OK);
    assert_int_equal(ds_eval(ctx, g.tokens, 1, 0), DS_ERR_CONTEXT_FULL);
    assert_null(ds_logits(ctx, 0)); /* a refused batch leaves no stale logits behind */
    ds_context_free(ctx);
}

/* A build that leaves out a step of the computation (the DS_DSA_NO_FP8 library) must miss the
   reference in every prefill, however it is batched: the step matters. */
static int run_mismatch(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prefill_1_thread),
        cmocka_unit_test(prefill_in_batches_of_7),
        cmocka_unit_test(prefill_token_by_token),
    };
    return cmocka_run_group_tests_name(g.model_path, tests, NULL, NULL);
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[4], "--mismatch")) {
        g.mismatch = true;
        argc--;
    }
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: test_forward MODEL.gguf REFERENCE.safetensors TOLERANCE [f16|bf16|q8_0|--mismatch]\n");
        return 2;
    }
    if (argc == 5) { /* the latent cache's type */
        const ds_type types[] = {DS_TYPE_F16, DS_TYPE_BF16, DS_TYPE_Q8_0};
        for (size_t i = 0; i < sizeof types / sizeof *types; i++)
            if (!strcasecmp(argv[4], ds_type_name(types[i]))) g.cache_type = types[i];
        if (!g.cache_type) {
            fprintf(stderr, "test_forward: cache type '%s'?\n", argv[4]);
            return 2;
        }
    }
    char err[512];
    g.model_path = argv[1];
    g.tol = atof(argv[3]);
    if (!(g.tol > 0) || load_reference(argv[2])) return 2;
    if (ds_model_load(argv[1], &g.model, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    g.n_vocab = ds_model_n_vocab(g.model);
    if (g.logits.rows != g.n_tokens || g.logits.cols != g.n_vocab || g.greedy_logits.rows != g.n_greedy) {
        fprintf(stderr, "reference and model disagree on sizes\n");
        return 2;
    }
    printf("# %s\n# %s\n", argv[1], ds_model_desc(g.model));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prefill_1_thread),          cmocka_unit_test(prefill_2_threads),
        cmocka_unit_test(prefill_in_batches_of_7),   cmocka_unit_test(prefill_token_by_token),
        cmocka_unit_test(greedy_1_thread),           cmocka_unit_test(greedy_2_threads),
        cmocka_unit_test(threads_bit_identical),     cmocka_unit_test(contexts_share_model_and_reset),
        cmocka_unit_test(bad_batches_are_refused),   cmocka_unit_test(decode_bytes_counts_the_weights_read),
        cmocka_unit_test(bad_cache_type_is_refused), cmocka_unit_test(indexer_key_length_is_checked),
    };
    int rc = g.mismatch ? run_mismatch() : cmocka_run_group_tests_name(argv[1], tests, NULL, NULL);
    ds_model_free(g.model);
    free(g.tokens);
    free(g.greedy);
    free(g.logits.data);
    free(g.greedy_logits.data);
    return rc;
}
