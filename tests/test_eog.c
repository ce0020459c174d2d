/* test_eog - where generation ends: ds_token_is_eog over each family's vocabulary, and over a
   file that names EOT / EOM ids of its own.

   usage: test_eog VOCAB.gguf "ID ..." [VOCAB.gguf "ID ..." ...]
     every id of VOCAB (a deepseek-convert --vocab-only file) that ends generation, ascending */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deepseek.h"

typedef struct {
    const char *path, *want;
} eog_case;

/* "1 2 3": the ids of m that end generation, probing past both ends of the vocabulary too. */
static void eog_ids(const ds_model *m, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    for (int32_t id = -3; id < ds_model_n_vocab(m) + 3; id++)
        if (ds_token_is_eog(m, id) && k < cap) k += (size_t)snprintf(buf + k, cap - k, k ? " %d" : "%d", (int)id);
}

static void test_family(void **state) {
    const eog_case *c = *state;
    ds_model *m;
    char err[256], got[256];
    assert_int_equal(ds_model_load(c->path, &m, err, sizeof err), DS_OK);
    eog_ids(m, got, sizeof got);
    printf("# %s: %s\n", c->path, got);
    assert_string_equal(got, c->want);
    assert_true(ds_token_is_eog(m, ds_model_eos(m)));
    ds_model_free(m);
}

/* GPT-2's byte-level symbol for byte b, UTF-8 encoded (the loader needs one token per byte). */
static void byte_symbol(int b, char out[3]) {
    int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174, n = 0;
    for (int c = 0; !printable && c < b; c++)
        n += !((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174);
    unsigned cp = printable ? (unsigned)b : 256u + (unsigned)n;
    if (cp < 0x80) out[0] = (char)cp, out[1] = 0;
    else out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
}

enum { N_OWN = 7, N_VOCAB = N_OWN + 256 };

/* A vocabulary-only file: these N_OWN tokens, then the 256 byte symbols; EOS 1 and the given
   tokenizer.ggml.eot / eom ids (-1: key absent). */
static int write_vocab(const char *path, const char *const *own, int eot, int eom, char *err, size_t cap) {
    static char bytes[256][3];
    const char *tokens[N_VOCAB];
    int32_t types[N_VOCAB];
    for (int i = 0; i < N_VOCAB; i++) {
        if (i >= N_OWN) byte_symbol(i - N_OWN, bytes[i - N_OWN]);
        tokens[i] = i < N_OWN ? own[i] : bytes[i - N_OWN];
        types[i] = i < 2 ? 3 : 1;
    }
    ds_gguf_writer *w = NULL;
    ds_status st = ds_gguf_writer_new(&w, err, cap);
    if (!st) {
        ds_gguf_set_str(w, "general.architecture", "deepseek2");
        ds_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
        ds_gguf_set_str(w, "tokenizer.ggml.pre", "deepseek-v3");
        ds_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, N_VOCAB);
        ds_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, N_VOCAB);
        ds_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 0);
        ds_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 1);
        if (eot >= 0) ds_gguf_set_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)eot);
        if (eom >= 0) ds_gguf_set_u32(w, "tokenizer.ggml.eom_token_id", (uint32_t)eom);
        st = ds_gguf_writer_begin(w, path, err, cap);
    }
    if (!st) st = ds_gguf_writer_finish(w, err, cap);
    ds_gguf_writer_free(w);
    return st ? -1 : 0;
}

/* The EOT and EOM keys add their tokens whatever their text; a text of the list counts without
   a key; an id beyond the vocabulary fails the load, naming the key. */
static void test_keys(void **state) {
    (void)state;
    static const char *const tokens[] = {"<bos>", "<eos>", "aa", "<|eot_id|>", "bb", "cc", "<|im_end|>x"};
    static const char path[] = "test_eog_keys.gguf";
    char err[256], got[256];
    ds_model *m;
    assert_int_equal(write_vocab(path, tokens, 4, 5, err, sizeof err), 0);
    assert_int_equal(ds_model_load(path, &m, err, sizeof err), DS_OK);
    eog_ids(m, got, sizeof got);
    assert_string_equal(got, "1 3 4 5");
    ds_model_free(m);
    assert_int_equal(write_vocab(path, tokens, -1, -1, err, sizeof err), 0);
    assert_int_equal(ds_model_load(path, &m, err, sizeof err), DS_OK);
    eog_ids(m, got, sizeof got);
    assert_string_equal(got, "1 3");
    ds_model_free(m);
    assert_int_equal(write_vocab(path, tokens, N_VOCAB, -1, err, sizeof err), 0);
    assert_int_not_equal(ds_model_load(path, &m, err, sizeof err), DS_OK);
    assert_non_null(strstr(err, "tokenizer.ggml.eot_token_id"));
    remove(path);
}

int main(int argc, char **argv) {
    if (argc < 3 || (argc - 1) % 2) {
        fprintf(stderr, "usage: %s VOCAB.gguf \"ID ...\" [VOCAB.gguf \"ID ...\" ...]\n", argv[0]);
        return 2;
    }
    int n = (argc - 1) / 2;
    eog_case *cases = calloc((size_t)n, sizeof *cases);
    struct CMUnitTest *tests = calloc((size_t)n + 1, sizeof *tests);
    if (!cases || !tests) return 2;
    for (int i = 0; i < n; i++) {
        cases[i] = (eog_case){argv[1 + 2 * i], argv[2 + 2 * i]};
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(test_family, &cases[i]);
        tests[i].name = cases[i].path;
    }
    tests[n] = (struct CMUnitTest)cmocka_unit_test(test_keys);
    int rc = _cmocka_run_group_tests("eog", tests, (size_t)n + 1, NULL, NULL);
    free(cases);
    free(tests);
    return rc;
}
