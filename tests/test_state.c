/* ds_context_state_get / _set: a cache saved after a prompt and given to a fresh context
   continues exactly as the context it came from (same logits, bit for bit), for MLA, DSA and
   GQA models; bytes of another model, length or cache type are refused with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deepseek.h"

static const char *model_path, *other_path;

static ds_context *new_ctx(ds_model *m, int cache_type) {
    ds_context_params p = ds_context_default_params();
    p.n_ctx = 64;
    p.n_threads = 1;
    p.cache_type = cache_type;
    ds_context *c = NULL;
    char err[256];
    assert_int_equal(ds_context_new(m, &p, &c, err, sizeof err), DS_OK);
    return c;
}

static void tokens(ds_model *m, int32_t *t, int n) {
    for (int i = 0; i < n; i++) t[i] = (int32_t)((i * 37 + 11) % ds_model_n_vocab(m));
}

static void test_round_trip(void **st) {
    (void)st;
    ds_model *m;
    char err[256];
    assert_int_equal(ds_model_load(model_path, &m, err, sizeof err), DS_OK);
    const int V = ds_model_n_vocab(m), n = 20;
    int32_t t[24];
    tokens(m, t, 24);
    ds_context *a = new_ctx(m, 0), *b = new_ctx(m, 0);
    assert_int_equal(ds_eval(a, t, n, 0), DS_OK);
    size_t sz = ds_context_state_size(a, 12);
    assert_true(sz > 0);
    assert_int_equal(ds_context_state_size(a, 65), 0);
    uint8_t *buf = malloc(sz);
    assert_int_equal(ds_context_state_get(a, 12, buf, sz - 1), DS_ERR_SMALL_BUFFER);
    assert_int_equal(ds_context_state_get(a, 21, buf, sz), DS_ERR_ARG);
    assert_int_equal(ds_context_state_get(a, 12, buf, sz), DS_OK);
    int got = -1;
    assert_int_equal(ds_context_state_set(b, buf, sz - 1, &got), DS_ERR_FORMAT);
    assert_int_equal(ds_context_state_set(b, buf, sz, &got), DS_OK);
    assert_int_equal(got, 12);
    assert_int_equal(ds_context_n_past(b), 12);
    /* both continue from position 12 with the same tokens: the same logits, bit for bit */
    assert_int_equal(ds_context_rewind(a, 12), DS_OK);
    assert_int_equal(ds_eval(a, t + 12, 12, 1), DS_OK);
    assert_int_equal(ds_eval(b, t + 12, 12, 1), DS_OK);
    for (int i = 0; i < 12; i++) assert_memory_equal(ds_logits(a, i), ds_logits(b, i), (size_t)V * sizeof(float));
    /* a cache of another row type is refused, naming the difference */
    ds_context *c = new_ctx(m, DS_TYPE_F16);
    assert_int_equal(ds_context_state_set(c, buf, sz, NULL), DS_ERR_FORMAT);
    assert_non_null(strstr(ds_context_error(c), "another model or cache type"));
    buf[0] = 'X';
    assert_int_equal(ds_context_state_set(b, buf, sz, NULL), DS_ERR_FORMAT);
    free(buf);
    ds_context_free(a), ds_context_free(b), ds_context_free(c);
    ds_model_free(m);
}

static void test_other_model(void **st) {
    (void)st;
    ds_model *m, *o;
    char err[256];
    assert_int_equal(ds_model_load(model_path, &m, err, sizeof err), DS_OK);
    assert_int_equal(ds_model_load(other_path, &o, err, sizeof err), DS_OK);
    int32_t t[8];
    tokens(m, t, 8);
    ds_context *a = new_ctx(m, 0), *b = new_ctx(o, 0);
    assert_int_equal(ds_eval(a, t, 8, 0), DS_OK);
    size_t sz = ds_context_state_size(a, 8);
    uint8_t *buf = malloc(sz);
    assert_int_equal(ds_context_state_get(a, 8, buf, sz), DS_OK);
    assert_int_equal(ds_context_state_set(b, buf, sz, NULL), DS_ERR_FORMAT);
    assert_int_equal(ds_context_n_past(b), 0);
    free(buf);
    ds_context_free(a), ds_context_free(b);
    ds_model_free(m), ds_model_free(o);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_state MODEL.gguf OTHER.gguf\n");
        return 2;
    }
    model_path = argv[1], other_path = argv[2];
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip), cmocka_unit_test(test_other_model)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
