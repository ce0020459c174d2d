/* test_threads - the thread pool: results bit for bit the same for every thread count, also
   with more threads than cores and with several contexts of one model running at once, and
   the n_threads = 0 rule (the physical cores that other live contexts leave).

   usage: test_threads MODEL.gguf */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "deepseek.h"
#include "refdata.h"

enum { N_PROMPT = 40, N_GEN = 24, N_RUNNERS = 3 };

static struct {
    ds_model *model;
    int n_vocab;
    int32_t prompt[N_PROMPT];
    int32_t want[N_GEN]; /* greedy tokens with one thread */
    float *want_logits;  /* the prompt's logits with one thread */
} g;

static ds_context *new_ctx(int n_threads) {
    char err[256];
    ds_context_params p = ds_context_default_params();
    p.n_threads = n_threads;
    p.n_ctx = N_PROMPT + N_GEN + 1;
    ds_context *ctx = NULL;
    if (ds_context_new(g.model, &p, &ctx, err, sizeof err)) fail_msg("context: %s", err);
    return ctx;
}

/* The prompt's logits (all rows, into logits if not NULL) and N_GEN greedy tokens. */
static int run(ds_context *ctx, float *logits, int32_t *out) {
    if (ds_eval(ctx, g.prompt, N_PROMPT, 1) != DS_OK) return -1;
    if (logits)
        for (int i = 0; i < N_PROMPT; i++)
            memcpy(logits + (size_t)i * g.n_vocab, ds_logits(ctx, i), (size_t)g.n_vocab * sizeof *logits);
    int32_t tok = argmax(ds_logits(ctx, N_PROMPT - 1), g.n_vocab);
    for (int i = 0; i < N_GEN; i++) {
        out[i] = tok;
        if (ds_eval(ctx, &tok, 1, 0) != DS_OK) return -1;
        tok = argmax(ds_logits(ctx, 0), g.n_vocab);
    }
    return 0;
}

static void same_for_every_thread_count(void **state) {
    (void)state;
    float *logits = malloc((size_t)N_PROMPT * g.n_vocab * sizeof *logits);
    assert_non_null(logits);
    for (int n = 2; n <= 5; n++) { /* 5 threads on this project's 2 cores: oversubscribed */
        ds_context *ctx = new_ctx(n);
        int32_t got[N_GEN];
        assert_int_equal(run(ctx, logits, got), 0);
        assert_memory_equal(logits, g.want_logits, (size_t)N_PROMPT * g.n_vocab * sizeof *logits);
        assert_memory_equal(got, g.want, sizeof got);
        ds_context_free(ctx);
    }
    free(logits);
}

typedef struct {
    ds_context *ctx;
    int32_t got[N_GEN];
    int rc;
} runner;

static void *run_thread(void *arg) {
    runner *r = arg;
    r->rc = run(r->ctx, NULL, r->got);
    return NULL;
}

/* Contexts of one model on their own threads, each with two pool threads: 2 x N_RUNNERS
   threads on 2 cores, all generating at once, each the tokens it gives alone. */
static void contexts_at_once(void **state) {
    (void)state;
    runner r[N_RUNNERS];
    pthread_t th[N_RUNNERS];
    for (int i = 0; i < N_RUNNERS; i++) {
        r[i].ctx = new_ctx(2);
        assert_int_equal(pthread_create(&th[i], NULL, run_thread, &r[i]), 0);
    }
    for (int i = 0; i < N_RUNNERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].rc, 0);
        assert_memory_equal(r[i].got, g.want, sizeof g.want);
        ds_context_free(r[i].ctx);
    }
}

/* n_threads = 0: the physical cores other live contexts leave, at least one. */
static void default_threads_share_the_machine(void **state) {
    (void)state;
    const int cores = ds_physical_cores();
    ds_context *a = new_ctx(0);
    assert_int_equal(ds_context_n_threads(a), cores);
    ds_context *b = new_ctx(0);
    assert_int_equal(ds_context_n_threads(b), 1); /* a holds every core */
    ds_context_free(a);
    ds_context *c = new_ctx(0);
    assert_int_equal(ds_context_n_threads(c), cores > 1 ? cores - 1 : 1); /* b still holds one */
    ds_context *d = new_ctx(3);                                           /* explicit counts are kept */
    assert_int_equal(ds_context_n_threads(d), 3);
    ds_context_free(b);
    ds_context_free(c);
    ds_context_free(d);
    ds_context *e = new_ctx(0);
    assert_int_equal(ds_context_n_threads(e), cores);
    ds_context_free(e);
}

static const char *model_path;

/* The model, and the one-thread run every other run must repeat bit for bit. */
static int setup(void **state) {
    (void)state;
    char err[256];
    if (ds_model_load(model_path, &g.model, err, sizeof err)) {
        fprintf(stderr, "test_threads: %s\n", err);
        return -1;
    }
    g.n_vocab = ds_model_n_vocab(g.model);
    for (int i = 0; i < N_PROMPT; i++) g.prompt[i] = (int32_t)((i * 7919 + 13) % g.n_vocab);
    g.want_logits = malloc((size_t)N_PROMPT * g.n_vocab * sizeof *g.want_logits);
    ds_context *one = new_ctx(1);
    int rc = g.want_logits ? run(one, g.want_logits, g.want) : -1;
    ds_context_free(one);
    return rc;
}

static int teardown(void **state) {
    (void)state;
    free(g.want_logits);
    ds_model_free(g.model);
    return 0;
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_for_every_thread_count),
        cmocka_unit_test(contexts_at_once),
        cmocka_unit_test(default_threads_share_the_machine),
    };
    model_path = argc == 2 ? argv[1] : "";
    return cmocka_run_group_tests(tests, setup, teardown);
}
