/* test_gguf - hostile and malformed GGUF files: every one is refused with a clear message, and
   nothing crashes or leaks (run under ASan or valgrind).

   A small valid deepseek2 model is written with ds_gguf_writer; an independent walk over its
   bytes (below) records where each field lies, and each case patches or truncates a copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "deepseek.h"

/* ---- a small valid model ---- */

enum { D = 32, H = 2, QR = 16, R = 16, DN = 8, DR = 4, DV = 8, V = 64, F = 48, E = 4, K = 2, FE = 8, L = 2 };

/* A GGUF writer; NULL only when out of memory. */
static ds_gguf_writer *new_writer(void) {
    ds_gguf_writer *w = NULL;
    return ds_gguf_writer_new(&w, NULL, 0) == DS_OK ? w : NULL;
}

static uint32_t rng = 12345;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return ((rng >> 8) / 16777216.0f - 0.5f) * 0.5f;
}

typedef struct {
    const char *name;
    ds_type type;
    int n_dims;
    int64_t ne[3];
} tspec;

static int make_specs(tspec *s) {
    int n = 0;
    static char names[64][48];
#define T(nm, ty, nd, a, b, c)                         \
    do {                                               \
        snprintf(names[n], sizeof names[n], "%s", nm); \
        s[n] = (tspec){names[n], ty, nd, {a, b, c}};   \
        n++;                                           \
    } while (0)
#define TB(il, nm, ty, nd, a, b, c)                               \
    do {                                                          \
        snprintf(names[n], sizeof names[n], "blk.%d.%s", il, nm); \
        s[n] = (tspec){names[n], ty, nd, {a, b, c}};              \
        n++;                                                      \
    } while (0)
    T("token_embd.weight", DS_TYPE_F32, 2, D, V, 1);
    for (int il = 0; il < L; il++) {
        TB(il, "attn_norm.weight", DS_TYPE_F32, 1, D, 1, 1);
        TB(il, "attn_q_a.weight", DS_TYPE_BF16, 2, D, QR, 1);
        TB(il, "attn_q_a_norm.weight", DS_TYPE_F32, 1, QR, 1, 1);
        TB(il, "attn_q_b.weight", DS_TYPE_F16, 2, QR, H * (DN + DR), 1);
        TB(il, "attn_kv_a_mqa.weight", DS_TYPE_F32, 2, D, R + DR, 1);
        TB(il, "attn_kv_a_norm.weight", DS_TYPE_F32, 1, R, 1, 1);
        TB(il, "attn_k_b.weight", DS_TYPE_F16, 3, DN, R, H);
        TB(il, "attn_v_b.weight", DS_TYPE_BF16, 3, R, DV, H);
        TB(il, "attn_output.weight", DS_TYPE_F32, 2, H * DV, D, 1);
        TB(il, "ffn_norm.weight", DS_TYPE_F32, 1, D, 1, 1);
        if (il == 0) {
            TB(il, "ffn_gate.weight", DS_TYPE_F32, 2, D, F, 1);
            TB(il, "ffn_up.weight", DS_TYPE_F32, 2, D, F, 1);
            TB(il, "ffn_down.weight", DS_TYPE_F32, 2, F, D, 1);
        } else {
            TB(il, "ffn_gate_inp.weight", DS_TYPE_F32, 2, D, E, 1);
            TB(il, "exp_probs_b.bias", DS_TYPE_F32, 1, E, 1, 1);
            TB(il, "ffn_gate_exps.weight", DS_TYPE_F16, 3, D, FE, E);
            TB(il, "ffn_up_exps.weight", DS_TYPE_BF16, 3, D, FE, E);
            TB(il, "ffn_down_exps.weight", DS_TYPE_F32, 3, FE, D, E);
            TB(il, "ffn_gate_shexp.weight", DS_TYPE_F32, 2, D, FE, 1);
            TB(il, "ffn_up_shexp.weight", DS_TYPE_F32, 2, D, FE, 1);
            TB(il, "ffn_down_shexp.weight", DS_TYPE_F32, 2, FE, D, 1);
        }
    }
    T("output_norm.weight", DS_TYPE_F32, 1, D, 1, 1);
    T("output.weight", DS_TYPE_F32, 2, D, V, 1);
#undef T
#undef TB
    return n;
}

static void set_metadata(ds_gguf_writer *w) {
    ds_gguf_set_str(w, "general.architecture", "deepseek2");
    ds_gguf_set_str(w, "general.name", "hostile-test");
    ds_gguf_set_u32(w, "deepseek2.block_count", L);
    ds_gguf_set_u32(w, "deepseek2.context_length", 64);
    ds_gguf_set_u32(w, "deepseek2.embedding_length", D);
    ds_gguf_set_u32(w, "deepseek2.feed_forward_length", F);
    ds_gguf_set_u32(w, "deepseek2.attention.head_count", H);
    ds_gguf_set_u32(w, "deepseek2.attention.head_count_kv", 1);
    ds_gguf_set_u32(w, "deepseek2.attention.key_length", R + DR);
    ds_gguf_set_u32(w, "deepseek2.attention.value_length", R);
    ds_gguf_set_u32(w, "deepseek2.attention.key_length_mla", DN + DR);
    ds_gguf_set_u32(w, "deepseek2.attention.value_length_mla", DV);
    ds_gguf_set_u32(w, "deepseek2.attention.q_lora_rank", QR);
    ds_gguf_set_u32(w, "deepseek2.attention.kv_lora_rank", R);
    ds_gguf_set_f32(w, "deepseek2.attention.layer_norm_rms_epsilon", 1e-6f);
    ds_gguf_set_u32(w, "deepseek2.rope.dimension_count", DR);
    ds_gguf_set_f32(w, "deepseek2.rope.freq_base", 10000.0f);
    ds_gguf_set_str(w, "deepseek2.rope.scaling.type", "yarn");
    ds_gguf_set_f32(w, "deepseek2.rope.scaling.factor", 4.0f);
    ds_gguf_set_u32(w, "deepseek2.rope.scaling.original_context_length", 16);
    ds_gguf_set_f32(w, "deepseek2.rope.scaling.yarn_log_multiplier", 0.1f);
    ds_gguf_set_u32(w, "deepseek2.leading_dense_block_count", 1);
    ds_gguf_set_u32(w, "deepseek2.expert_count", E);
    ds_gguf_set_u32(w, "deepseek2.expert_used_count", K);
    ds_gguf_set_u32(w, "deepseek2.expert_shared_count", 1);
    ds_gguf_set_u32(w, "deepseek2.expert_feed_forward_length", FE);
    ds_gguf_set_f32(w, "deepseek2.expert_weights_scale", 2.5f);
    ds_gguf_set_bool(w, "deepseek2.expert_weights_norm", 1);
    ds_gguf_set_u32(w, "deepseek2.expert_gating_func", 2);
    ds_gguf_set_u32(w, "deepseek2.expert_group_count", 2);
    ds_gguf_set_u32(w, "deepseek2.expert_group_used_count", 1);
    static const char *toks[] = {"<bos>", "<eos>", "a"};
    ds_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
    int32_t types[] = {3, 3, 1};
    ds_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, 3);
    ds_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 0);
    ds_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 1);
}

static size_t tensor_bytes(const tspec *t) {
    return ds_type_row_size(t->type, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2]);
}

static void fill(const tspec *t, void *buf) {
    size_t n = (size_t)(t->ne[0] * t->ne[1] * t->ne[2]);
    bool norm = strstr(t->name, "norm") != NULL;
    for (size_t i = 0; i < n; i++) {
        float v = norm ? 1.0f + frand() * 0.2f : frand();
        if (t->type == DS_TYPE_F32) ((float *)buf)[i] = v;
        else if (t->type == DS_TYPE_F16) ((uint16_t *)buf)[i] = ds_fp32_to_fp16(v);
        else ((uint16_t *)buf)[i] = ds_fp32_to_bf16(v);
    }
}

static const char *model_path = "test_gguf_valid.gguf";

/* Whole tensors through ds_gguf_writer_tensor, or each in three uneven pieces through
   ds_gguf_writer_write: the files must come out identical. */
static int write_model(const char *path, bool in_pieces) {
    tspec s[64];
    int n = make_specs(s);
    char err[256];
    ds_gguf_writer *w = new_writer();
    set_metadata(w);
    for (int i = 0; i < n; i++) ds_gguf_add_tensor(w, s[i].name, s[i].type, s[i].n_dims, s[i].ne);
    ds_status st = ds_gguf_writer_begin(w, path, err, sizeof err);
    rng = 12345;
    for (int i = 0; i < n && !st; i++) {
        size_t bytes = tensor_bytes(&s[i]), cut1 = bytes / 3, cut2 = bytes - 6;
        uint8_t *buf = malloc(bytes);
        fill(&s[i], buf);
        if (!in_pieces) {
            st = ds_gguf_writer_tensor(w, buf, bytes, err, sizeof err);
        } else {
            st = ds_gguf_writer_write(w, buf, cut1, err, sizeof err);
            if (!st) st = ds_gguf_writer_write(w, buf + cut1, cut2 - cut1, err, sizeof err);
            if (!st) st = ds_gguf_writer_write(w, buf + cut2, bytes - cut2, err, sizeof err);
        }
        free(buf);
    }
    if (!st) st = ds_gguf_writer_finish(w, err, sizeof err);
    ds_gguf_writer_free(w);
    if (st) fprintf(stderr, "writing the test model: %s\n", err);
    return st ? -1 : 0;
}

/* ---- an independent walk over the file: where each field is ---- */

typedef struct {
    size_t n_t_at, n_kv_at;
    size_t kv_at[64], kv_type_at[64], kv_val_at[64];
    char kv_key[64][64];
    int n_kv;
    size_t t_at[64], t_ndims_at[64], t_ne_at[64], t_type_at[64], t_off_at[64];
    char t_name[64][48];
    int n_t;
    size_t data_at;
} layout;

static uint8_t *orig;
static size_t orig_size;
static layout lay;

static uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static size_t skip_val(size_t at, uint32_t type) {
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) return at + 8 + rd64(orig + at);
    if (type == 9) {
        uint32_t et = rd32(orig + at);
        uint64_t n = rd64(orig + at + 4);
        at += 12;
        for (uint64_t i = 0; i < n; i++) at = skip_val(at, et);
        return at;
    }
    return at + sz[type];
}

static void walk(void) {
    size_t at = 8;
    lay.n_t_at = at;
    lay.n_kv_at = at + 8;
    lay.n_t = (int)rd64(orig + at);
    lay.n_kv = (int)rd64(orig + at + 8);
    at += 16;
    for (int i = 0; i < lay.n_kv; i++) {
        lay.kv_at[i] = at;
        uint64_t n = rd64(orig + at);
        snprintf(lay.kv_key[i], sizeof lay.kv_key[i], "%.*s", (int)n, (const char *)orig + at + 8);
        at += 8 + n;
        lay.kv_type_at[i] = at;
        uint32_t type = rd32(orig + at);
        at += 4;
        lay.kv_val_at[i] = at;
        at = skip_val(at, type);
    }
    for (int i = 0; i < lay.n_t; i++) {
        lay.t_at[i] = at;
        uint64_t n = rd64(orig + at);
        snprintf(lay.t_name[i], sizeof lay.t_name[i], "%.*s", (int)n, (const char *)orig + at + 8);
        at += 8 + n;
        lay.t_ndims_at[i] = at;
        uint32_t nd = rd32(orig + at);
        lay.t_ne_at[i] = at + 4;
        at += 4 + 8 * nd;
        lay.t_type_at[i] = at;
        lay.t_off_at[i] = at + 4;
        at += 12;
    }
    lay.data_at = (at + 31) / 32 * 32;
}

static int kv_index(const char *key) {
    for (int i = 0; i < lay.n_kv; i++)
        if (!strcmp(lay.kv_key[i], key)) return i;
    fail_msg("no key %s", key);
    return -1;
}

static int tensor_index(const char *name) {
    for (int i = 0; i < lay.n_t; i++)
        if (!strcmp(lay.t_name[i], name)) return i;
    fail_msg("no tensor %s", name);
    return -1;
}

/* ---- loading a patched copy ---- */

static uint8_t *copy_orig(void) {
    uint8_t *b = malloc(orig_size);
    assert_non_null(b);
    memcpy(b, orig, orig_size);
    return b;
}

/* Write b to a file and load it; a model that loads is also run on a few tokens. */
static ds_status load_bytes(const uint8_t *b, size_t n, char *err, size_t err_size) {
    const char *path = "test_gguf_case.gguf";
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    fclose(fp);
    ds_model *m = NULL;
    ds_status s = ds_model_load(path, &m, err, err_size);
    if (!s) {
        assert_non_null(m);
        ds_context *ctx = NULL;
        ds_context_params p = ds_context_default_params();
        p.n_threads = 2;
        p.n_ctx = 16;
        if (!ds_context_new(m, &p, &ctx, err, err_size)) {
            int32_t toks[3] = {0, 1, 2};
            int nv = ds_model_n_vocab(m);
            for (int i = 0; i < 3; i++) toks[i] %= nv;
            ds_eval(ctx, toks, 3, 1);
        }
        ds_context_free(ctx);
        ds_model_free(m);
    } else {
        assert_null(m);
    }
    unlink(path);
    return s;
}

/* Load a patched copy: must fail with status want and a message containing each needle. */
static void expect_refused(uint8_t *b, size_t n, ds_status want, const char *needle) {
    char err[512] = "";
    ds_status s = load_bytes(b, n, err, sizeof err);
    print_message("  -> %s: %s\n", ds_status_name(s), err);
    free(b);
    assert_int_equal(s, want);
    assert_true(strlen(err) > 0);
    if (needle && !strstr(err, needle)) fail_msg("message '%s' does not mention '%s'", err, needle);
}

/* ---- the cases ---- */

static void valid_model_loads_and_runs(void **state) {
    (void)state;
    char err[256];
    ds_model *m;
    assert_int_equal(ds_model_load(model_path, &m, err, sizeof err), DS_OK);
    assert_int_equal(ds_model_n_vocab(m), V);
    assert_int_equal(ds_model_n_layer(m), L);
    assert_int_equal(ds_model_bos(m), 0);
    assert_int_equal(ds_model_eos(m), 1);
    ds_context *ctx;
    ds_context_params p = ds_context_default_params();
    p.n_threads = 2;
    assert_int_equal(ds_context_new(m, &p, &ctx, err, sizeof err), DS_OK);
    assert_int_equal(ds_context_n_ctx(ctx), 64);
    int32_t toks[5] = {0, 5, 9, 63, 2};
    assert_int_equal(ds_eval(ctx, toks, 5, 1), DS_OK);
    for (int t = 0; t < 5; t++)
        for (int i = 0; i < V; i++) assert_true(ds_logits(ctx, t)[i] == ds_logits(ctx, t)[i]); /* no NaN */
    ds_context_free(ctx);
    ds_model_free(m);
}

static void missing_file(void **state) {
    (void)state;
    char err[256];
    ds_model *m;
    assert_int_equal(ds_model_load("/nonexistent/model.gguf", &m, err, sizeof err), DS_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/model.gguf"));
    assert_int_equal(ds_model_load(".", &m, err, sizeof err), DS_ERR_IO);
}

/* Cut the file at every length short of complete: never loads, never crashes. */
static void truncated_everywhere(void **state) {
    (void)state;
    const char *path = "test_gguf_trunc.gguf";
    int refused = 0;
    for (size_t n = 0; n < orig_size; n += (n < lay.data_at + 64 ? 1 : 97)) {
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(orig, 1, n, fp), n);
        fclose(fp);
        char err[512] = "";
        ds_model *m = NULL;
        ds_status s = ds_model_load(path, &m, err, sizeof err);
        if (s == DS_OK) fail_msg("a file truncated to %zu of %zu bytes loaded", n, orig_size);
        assert_null(m);
        assert_true(err[0] != 0);
        refused++;
    }
    unlink(path);
    print_message("  %d truncations refused\n", refused);
}

static void bad_magic(void **state) {
    (void)state;
    uint8_t *b = copy_orig();
    memcpy(b, "GGML", 4);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "magic");
}

static void bad_version(void **state) {
    (void)state;
    uint32_t versions[] = {0, 1, 4, 0xffffffffu};
    for (int i = 0; i < 4; i++) {
        uint8_t *b = copy_orig();
        wr32(b + 4, versions[i]);
        expect_refused(b, orig_size, DS_ERR_FORMAT, "version");
    }
}

static void huge_counts(void **state) {
    (void)state;
    uint64_t counts[] = {UINT64_MAX, 1ull << 62, 1ull << 32, 100000};
    for (int i = 0; i < 4; i++) {
        uint8_t *b = copy_orig();
        wr64(b + lay.n_t_at, counts[i]);
        expect_refused(b, orig_size, DS_ERR_FORMAT, NULL);
        b = copy_orig();
        wr64(b + lay.n_kv_at, counts[i]);
        expect_refused(b, orig_size, DS_ERR_FORMAT, NULL);
    }
}

static void huge_string_lengths(void **state) {
    (void)state;
    uint8_t *b = copy_orig(); /* a key */
    wr64(b + lay.kv_at[3], UINT64_MAX - 3);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "metadata key");
    b = copy_orig(); /* a string value */
    int k = kv_index("general.architecture");
    wr64(b + lay.kv_val_at[k], 1ull << 40);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "general.architecture");
    b = copy_orig(); /* a tensor name */
    wr64(b + lay.t_at[2], orig_size);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "tensor name");
    b = copy_orig(); /* an array count */
    k = kv_index("tokenizer.ggml.tokens");
    wr64(b + lay.kv_val_at[k] + 4, 1ull << 61);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "tokenizer.ggml.tokens");
    b = copy_orig(); /* a string inside an array */
    wr64(b + lay.kv_val_at[k] + 12, 1ull << 33);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "tokenizer.ggml.tokens");
}

static void bad_value_types(void **state) {
    (void)state;
    int k = kv_index("general.name");
    uint8_t *b = copy_orig();
    wr32(b + lay.kv_type_at[k], 13);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "general.name");
    k = kv_index("tokenizer.ggml.token_type"); /* array of arrays */
    b = copy_orig();
    wr32(b + lay.kv_val_at[k], 9);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "tokenizer.ggml.token_type");
    k = kv_index("deepseek2.block_count"); /* an integer key holding a float */
    b = copy_orig();
    wr32(b + lay.kv_type_at[k], 6);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "deepseek2.block_count");
}

static void bad_dims(void **state) {
    (void)state;
    int t = tensor_index("output.weight");
    uint32_t nd[] = {0, 5, 1000};
    for (int i = 0; i < 3; i++) {
        uint8_t *b = copy_orig();
        wr32(b + lay.t_ndims_at[t], nd[i]);
        expect_refused(b, orig_size, DS_ERR_FORMAT, "output.weight");
    }
    uint8_t *b = copy_orig(); /* a zero dimension */
    wr64(b + lay.t_ne_at[t] + 8, 0);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "output.weight");
    b = copy_orig(); /* dims whose product overflows 64 bits */
    wr64(b + lay.t_ne_at[t], 1ull << 40);
    wr64(b + lay.t_ne_at[t] + 8, 1ull << 40);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "output.weight");
    b = copy_orig(); /* a negative dimension */
    wr64(b + lay.t_ne_at[t] + 8, (uint64_t)-5);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "output.weight");
}

static void unknown_tensor_type(void **state) {
    (void)state;
    int t = tensor_index("blk.0.attn_q_a.weight");
    uint32_t types[] = {4, 5, 31, 99, 0xffffffffu};
    for (int i = 0; i < 5; i++) {
        uint8_t *b = copy_orig();
        wr32(b + lay.t_type_at[t], types[i]);
        expect_refused(b, orig_size, DS_ERR_FORMAT, "blk.0.attn_q_a.weight");
    }
    uint8_t *b = copy_orig(); /* a block type whose block does not divide the row */
    wr32(b + lay.t_type_at[t], DS_TYPE_Q4_K);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "blk.0.attn_q_a.weight");
}

static void data_beyond_eof(void **state) {
    (void)state;
    int t = tensor_index("output.weight");
    uint8_t *b = copy_orig();
    wr64(b + lay.t_off_at[t], (uint64_t)orig_size);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "beyond the end of the file");
    b = copy_orig();
    wr64(b + lay.t_off_at[t], UINT64_MAX - 31);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "output.weight");
    b = copy_orig(); /* the last tensor's final bytes missing */
    expect_refused(b, orig_size - 4, DS_ERR_FORMAT, NULL);
}

static void misaligned_data(void **state) {
    (void)state;
    int t = tensor_index("blk.1.ffn_norm.weight");
    uint8_t *b = copy_orig();
    wr64(b + lay.t_off_at[t], rd64(orig + lay.t_off_at[t]) + 4);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "alignment");
}

static void overlapping_data(void **state) {
    (void)state;
    int a = tensor_index("blk.0.ffn_gate.weight"), c = tensor_index("blk.0.ffn_up.weight");
    uint8_t *b = copy_orig();
    wr64(b + lay.t_off_at[c], rd64(orig + lay.t_off_at[a]) + 32);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "overlap");
}

static void duplicate_names(void **state) {
    (void)state;
    int t = tensor_index("blk.1.attn_norm.weight");
    uint8_t *b = copy_orig();
    b[lay.t_at[t] + 8 + 4] = '0'; /* "blk.1..." -> "blk.0..." */
    expect_refused(b, orig_size, DS_ERR_FORMAT, "appears twice");
    /* a key overwritten with another key of the same length */
    int kc = kv_index("deepseek2.block_count"), same = -1;
    uint64_t len = rd64(orig + lay.kv_at[kc]);
    for (int i = 0; i < lay.n_kv && same < 0; i++)
        if (i != kc && rd64(orig + lay.kv_at[i]) == len) same = i;
    assert_true(same >= 0);
    b = copy_orig();
    memcpy(b + lay.kv_at[same] + 8, orig + lay.kv_at[kc] + 8, len);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "appears twice");
}

static void bad_alignment_key(void **state) {
    (void)state;
    /* no key of the valid file can be patched into general.alignment: write one */
    char err[256];
    ds_gguf_writer *w = new_writer();
    ds_gguf_set_str(w, "general.architecture", "deepseek2");
    ds_gguf_set_u32(w, "general.alignment", 3);
    assert_int_equal(ds_gguf_writer_begin(w, "test_gguf_align.gguf", err, sizeof err), DS_OK);
    assert_int_equal(ds_gguf_writer_finish(w, err, sizeof err), DS_OK);
    ds_gguf_writer_free(w);
    ds_model *m;
    assert_int_equal(ds_model_load("test_gguf_align.gguf", &m, err, sizeof err), DS_ERR_FORMAT);
    print_message("  -> %s\n", err);
    assert_non_null(strstr(err, "alignment"));
    unlink("test_gguf_align.gguf");
}

static void missing_tensor_is_named(void **state) {
    (void)state;
    int t = tensor_index("blk.1.ffn_up_exps.weight");
    uint8_t *b = copy_orig();
    b[lay.t_at[t] + 8 + 6] = 'X'; /* blk.1.ffn_up_exps -> blk.1.Xfn_up_exps */
    expect_refused(b, orig_size, DS_ERR_FORMAT, "blk.1.ffn_up_exps.weight");
}

static void wrong_shape_is_named(void **state) {
    (void)state;
    int t = tensor_index("blk.0.attn_kv_a_mqa.weight");
    uint8_t *b = copy_orig(); /* same bytes, other shape: {D*2, (R+DR)/2} */
    wr64(b + lay.t_ne_at[t], D * 2);
    wr64(b + lay.t_ne_at[t] + 8, (R + DR) / 2);
    expect_refused(b, orig_size, DS_ERR_FORMAT, "blk.0.attn_kv_a_mqa.weight");
}

static void unknown_architecture(void **state) {
    (void)state;
    int k = kv_index("general.architecture");
    uint8_t *b = copy_orig();
    memcpy(b + lay.kv_val_at[k] + 8, "llama4xxx", 9); /* same length as deepseek2 */
    expect_refused(b, orig_size, DS_ERR_UNSUPPORTED, "llama4xxx");
}

static void metadata_out_of_range(void **state) {
    (void)state;
    struct {
        const char *key;
        uint32_t v;
    } cases[] = {
        {"deepseek2.expert_used_count", E + 1}, {"deepseek2.expert_group_used_count", 3},
        {"deepseek2.rope.dimension_count", 3},  {"deepseek2.block_count", 0},
        {"deepseek2.expert_group_count", 3},    {"deepseek2.attention.head_count", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int k = kv_index(cases[i].key);
        uint8_t *b = copy_orig();
        wr32(b + lay.kv_val_at[k], cases[i].v);
        expect_refused(b, orig_size, DS_ERR_FORMAT, NULL);
    }
}

/* Random corruption of the header and table: any verdict, but no crash, no leak. */
static void random_corruption(void **state) {
    (void)state;
    int loaded = 0, refused = 0;
    for (int iter = 0; iter < 1500; iter++) {
        uint8_t *b = copy_orig();
        int flips = 1 + (int)(rng % 4);
        for (int f = 0; f < flips; f++) {
            frand();
            size_t at = rng % lay.data_at;
            frand();
            b[at] ^= (uint8_t)(1u << (rng % 8));
        }
        char err[512];
        ds_status s = load_bytes(b, orig_size, err, sizeof err);
        free(b);
        if (s == DS_OK) loaded++;
        else refused++;
    }
    print_message("  %d corrupted files refused, %d still loadable\n", refused, loaded);
    assert_true(refused > 0);
}

static void writer_rejects_misuse(void **state) {
    (void)state;
    char err[256];
    ds_gguf_writer *w = new_writer();
    int64_t ne[2] = {20, 2};
    ds_gguf_add_tensor(w, "bad", DS_TYPE_Q4_0, 2, ne); /* 20 is not a multiple of 32 */
    assert_int_equal(ds_gguf_writer_begin(w, "test_gguf_w.gguf", err, sizeof err), DS_ERR_ARG);
    assert_non_null(strstr(err, "bad"));
    ds_gguf_writer_free(w);
    w = new_writer();
    ne[0] = 32;
    ds_gguf_add_tensor(w, "t", DS_TYPE_F32, 2, ne);
    ds_gguf_add_tensor(w, "t", DS_TYPE_F32, 2, ne);
    assert_int_equal(ds_gguf_writer_begin(w, "test_gguf_w.gguf", err, sizeof err), DS_ERR_ARG);
    ds_gguf_writer_free(w);
    w = new_writer();
    ds_gguf_add_tensor(w, "t", DS_TYPE_F32, 2, ne);
    assert_int_equal(ds_gguf_writer_begin(w, "test_gguf_w.gguf", err, sizeof err), DS_OK);
    float buf[64] = {0};
    assert_int_equal(ds_gguf_writer_tensor(w, buf, 100, err, sizeof err), DS_ERR_ARG);
    assert_int_equal(ds_gguf_writer_finish(w, err, sizeof err), DS_ERR_ARG); /* 0 of 1 written */
    ds_gguf_writer_free(w);
    unlink("test_gguf_w.gguf");
}

static void writer_pieces_equal_whole(void **state) {
    (void)state;
    assert_int_equal(write_model("test_gguf_pieces.gguf", true), 0);
    size_t n;
    uint8_t *b = slurp("test_gguf_pieces.gguf", &n);
    assert_non_null(b);
    assert_int_equal(n, orig_size);
    assert_memory_equal(b, orig, n);
    free(b);
    unlink("test_gguf_pieces.gguf");
}

static int setup(void **state) {
    (void)state;
    if (write_model(model_path, false)) return -1;
    if (!(orig = slurp(model_path, &orig_size))) return -1;
    walk();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    free(orig);
    unlink(model_path);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_model_loads_and_runs),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(truncated_everywhere),
        cmocka_unit_test(bad_magic),
        cmocka_unit_test(bad_version),
        cmocka_unit_test(huge_counts),
        cmocka_unit_test(huge_string_lengths),
        cmocka_unit_test(bad_value_types),
        cmocka_unit_test(bad_dims),
        cmocka_unit_test(unknown_tensor_type),
        cmocka_unit_test(data_beyond_eof),
        cmocka_unit_test(misaligned_data),
        cmocka_unit_test(overlapping_data),
        cmocka_unit_test(duplicate_names),
        cmocka_unit_test(bad_alignment_key),
        cmocka_unit_test(missing_tensor_is_named),
        cmocka_unit_test(wrong_shape_is_named),
        cmocka_unit_test(unknown_architecture),
        cmocka_unit_test(metadata_out_of_range),
        cmocka_unit_test(random_corruption),
        cmocka_unit_test(writer_rejects_misuse),
        cmocka_unit_test(writer_pieces_equal_whole),
    };
    return cmocka_run_group_tests_name("gguf", tests, setup, teardown);
}
