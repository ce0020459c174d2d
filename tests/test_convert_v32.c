/* test_convert_v32 - deepseek-convert on DeepSeek-V3.2 (tests/data/tiny-v32): the deepseek32
   GGUF that llama.cpp's converter and loader (conversion/deepseek.py DeepseekV32Model,
   src/models/deepseek32.cpp) name, read back through the library's GGUF reader.

   usage: test_convert_v32 DEEPSEEK-CONVERT DEEPSEEK-QUANTIZE FIXTURE_DIR TOKENIZER_DIR

   The runtime cannot run deepseek32 files yet, so this holds the converter's output only: the
   architecture and its keys (every model key under deepseek32., the three indexer keys from
   config.json), and in every layer, the MTP layer included, the indexer's five tensors with
   llama.cpp's names, ggml shapes and types, their values equal to the checkpoint's; for both
   MLA layouts, F32, BF16 and quantized output types, with and without the MTP layer. An FP8
   copy of the indexer weights (as the release stores them) must dequantize exactly, and
   malformed V3.2 configs must be refused with the key named. Expected numbers come from the
   fixture's config.json, the quantized types from llama.cpp's quantizer on the same file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "deepseek.h"
#include "safetensors.h"
#include "testutil.h"

static const char *convert, *quantize, *fixture, *tokenizer;
static char dir[256];

/* What the checks expect, from the fixture's config.json. */
static struct { int64_t n_layer, n_nextn, n_embd, q_lora, idx_heads, idx_dim, idx_topk; } cfg;

#define PATH_LEN 1024

static char *join(char *buf, const char *d, const char *name) {
    int n = snprintf(buf, PATH_LEN, "%s/%s", d, name);
    assert_true(n > 0 && n < PATH_LEN);
    return buf;
}

/* A text file, NUL-terminated. */
static char *read_text(const char *path) {
    size_t n = 0;
    char *text = (char *)slurp(path, &n);
    assert_non_null(text);
    text = realloc(text, n + 1);
    assert_non_null(text);
    text[n] = '\0';
    return text;
}

static int64_t cfg_int(const cJSON *root, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    assert_true(cJSON_IsNumber(v));
    return (int64_t)v->valuedouble;
}

static void read_fixture_config(void) {
    char p[PATH_LEN];
    char *text = read_text(join(p, fixture, "config.json"));
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    cfg.n_layer = cfg_int(root, "num_hidden_layers");
    cfg.n_nextn = cfg_int(root, "num_nextn_predict_layers");
    cfg.n_embd = cfg_int(root, "hidden_size");
    cfg.q_lora = cfg_int(root, "q_lora_rank");
    cfg.idx_heads = cfg_int(root, "index_n_heads");
    cfg.idx_dim = cfg_int(root, "index_head_dim");
    cfg.idx_topk = cfg_int(root, "index_topk");
    cJSON_Delete(root);
    free(text);
}

/* Exit status of the shell command; its stdout and stderr go to dir/log. */
static int run(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    size_t n = strlen(cmd);
    snprintf(cmd + n, sizeof cmd - n, " > '%s/log' 2>&1", dir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int convert_to(const char *hf, const char *out, const char *opts) {
    return run("'%s' '%s' -o '%s' --tokenizer '%s' -t 1 %s", convert, hf, out, tokenizer, opts);
}

/* Whether the output of the last run holds needle; printed when it does not and should. */
static int log_has(const char *needle, int want) {
    char p[PATH_LEN];
    char *text = read_text(join(p, dir, "log"));
    int found = strstr(text, needle) != NULL;
    if (found != want) fprintf(stderr, "output %s '%s':\n%s", want ? "lacks" : "has", needle, text);
    free(text);
    return found;
}

static ds_gguf *open_gguf(const char *path) {
    char err[256];
    ds_gguf *g = NULL;
    if (ds_gguf_open(path, &g, err, sizeof err) != DS_OK) fail_msg("%s", err);
    return g;
}

static int find_tensor(const ds_gguf *g, const char *name, ds_gguf_tensor_info *t) {
    for (size_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        ds_gguf_tensor(g, i, t);
        if (strcmp(t->name, name) == 0) return 1;
    }
    return 0;
}

static int has_tensor(const ds_gguf *g, const char *fmt, int il) {
    char name[128];
    ds_gguf_tensor_info t;
    snprintf(name, sizeof name, fmt, il);
    return find_tensor(g, name, &t);
}

static int64_t get_int(const ds_gguf *g, const char *key) {
    int64_t v = -1;
    if (!ds_gguf_get_int(g, key, &v)) fail_msg("no integer metadata %s", key);
    return v;
}

/* The architecture, and every model key under its name: a deepseek2.* key left over would be
   invisible to llama.cpp's deepseek32 loader. */
static void check_keys(const ds_gguf *g, int64_t n_mtp, int split) {
    size_t len = 0;
    const char *arch = ds_gguf_get_str(g, "general.architecture", &len);
    assert_non_null(arch);
    assert_int_equal(len, strlen("deepseek32"));
    assert_memory_equal(arch, "deepseek32", len);
    for (size_t i = 0; i < ds_gguf_n_kv(g); i++) {
        const char *k = ds_gguf_kv_key(g, i);
        if (strncmp(k, "deepseek", 8) == 0 && strncmp(k, "deepseek32.", 11) != 0) fail_msg("key %s", k);
    }
    assert_int_equal(get_int(g, "deepseek32.attention.indexer.head_count"), cfg.idx_heads);
    assert_int_equal(get_int(g, "deepseek32.attention.indexer.key_length"), cfg.idx_dim);
    assert_int_equal(get_int(g, "deepseek32.attention.indexer.top_k"), cfg.idx_topk);
    assert_int_equal(get_int(g, "deepseek32.block_count"), cfg.n_layer + n_mtp);
    assert_int_equal(get_int(g, "deepseek32.attention.q_lora_rank"), cfg.q_lora);
    int64_t v;
    assert_int_equal(ds_gguf_get_int(g, "deepseek32.nextn_predict_layers", &v), n_mtp > 0);
    if (n_mtp > 0) assert_int_equal(v, n_mtp);
    /* llama.cpp's is_mla(): the split layout's head sizes */
    assert_int_equal(ds_gguf_get_int(g, "deepseek32.attention.key_length_mla", &v), split);
}

typedef struct {
    const char *gguf, *hf; /* blk.L.indexer.<gguf>, model.layers.L.self_attn.indexer.<hf> */
    int mat;               /* index into the expected types of the matrices; -1: 1-D, always F32 */
} indexer_tensor;

static const indexer_tensor INDEXER[] = {
    {"attn_q_b.weight", "wq_b.weight", 0},     {"attn_k.weight", "wk.weight", 1},
    {"k_norm.weight", "k_norm.weight", -1},    {"k_norm.bias", "k_norm.bias", -1},
    {"proj.weight", "weights_proj.weight", 2},
};

/* The types expected of attn_q_b, attn_k and proj. */
typedef struct {
    ds_type t[3];
} mat_types;

/* ggml order: ne[0] is the input features (llama.cpp's create_tensor shapes). */
static void indexer_ne(int k, int64_t ne[2]) {
    int64_t H = cfg.n_embd, dim = cfg.idx_dim, heads = cfg.idx_heads;
    const int64_t NE[5][2] = {{cfg.q_lora, heads * dim}, {H, dim}, {dim, 1}, {dim, 1}, {H, heads}};
    ne[0] = NE[k][0];
    ne[1] = NE[k][1];
}

/* A checkpoint tensor as float32. */
static float *source_values(const safetensors_file *st, const char *name, size_t n) {
    char err[256];
    const safetensors_tensor *t = safetensors_find(st, name);
    assert_non_null(t);
    assert_int_equal((size_t)t->n_elements, n);
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    assert_int_equal(safetensors_read_f32(t, v, n, err, sizeof err), 0);
    return v;
}

static void check_values(const ds_gguf_tensor_info *t, const float *want, size_t n) {
    assert_int_equal(t->size, n * sizeof(float));
    const float *got = t->data; /* GGUF data is aligned */
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("%s[%zu] = %.9g, checkpoint %.9g", t->name, i, (double)got[i], (double)want[i]);
    }
}

/* The five indexer tensors of layer il: name, shape, type, and with st the values of the
   checkpoint (F32 output only). */
static void check_indexer(const ds_gguf *g, int il, mat_types types, const safetensors_file *st) {
    for (int k = 0; k < 5; k++) {
        char name[128], src[160];
        ds_gguf_tensor_info t;
        int64_t ne[2];
        snprintf(name, sizeof name, "blk.%d.indexer.%s", il, INDEXER[k].gguf);
        if (!find_tensor(g, name, &t)) fail_msg("no tensor %s", name);
        indexer_ne(k, ne);
        assert_int_equal(t.n_dims, INDEXER[k].mat < 0 ? 1 : 2);
        assert_int_equal(t.ne[0], ne[0]);
        assert_int_equal(t.ne[1], ne[1]);
        ds_type want = INDEXER[k].mat < 0 ? DS_TYPE_F32 : types.t[INDEXER[k].mat];
        if (t.type != want) fail_msg("%s is %s, expected %s", name, ds_type_name(t.type), ds_type_name(want));
        if (!st) continue;
        snprintf(src, sizeof src, "model.layers.%d.self_attn.indexer.%s", il, INDEXER[k].hf);
        float *v = source_values(st, src, (size_t)(ne[0] * ne[1]));
        check_values(&t, v, (size_t)(ne[0] * ne[1]));
        free(v);
    }
}

/* Every layer, the MTP layer too (it has its own indexer), and the MLA layout's tensors. */
static void check_layers(const ds_gguf *g, int64_t n_mtp, int split, mat_types types, const safetensors_file *st) {
    for (int il = 0; il < cfg.n_layer + n_mtp; il++) {
        check_indexer(g, il, types, st);
        assert_int_equal(has_tensor(g, "blk.%d.attn_k_b.weight", il), split);
        assert_int_equal(has_tensor(g, "blk.%d.attn_v_b.weight", il), split);
        assert_int_equal(has_tensor(g, "blk.%d.attn_kv_b.weight", il), !split);
        assert_int_equal(has_tensor(g, "blk.%d.nextn.eh_proj.weight", il), il >= cfg.n_layer);
    }
    assert_false(has_tensor(g, "blk.%d.attn_norm.weight", (int)(cfg.n_layer + n_mtp)));
}

static const mat_types ALL_F32 = {{DS_TYPE_F32, DS_TYPE_F32, DS_TYPE_F32}};

static safetensors_file *open_fixture(void) {
    char err[256];
    char p[PATH_LEN];
    safetensors_file *st = NULL;
    assert_int_equal(safetensors_open(join(p, fixture, "model.safetensors"), &st, err, sizeof err), 0);
    return st;
}

static void f32_both_layouts(void **state) {
    (void)state;
    safetensors_file *st = open_fixture();
    char out[PATH_LEN];
    join(out, dir, "f32.gguf");
    for (int split = 1; split >= 0; split--) {
        assert_int_equal(convert_to(fixture, out, split ? "--mla split" : "--mla legacy"), 0);
        assert_true(log_has("deepseek32 F32", 1));
        /* llama.cpp's deepseek32 loader refuses attn_kv_b: the legacy file says who it is for */
        assert_int_equal(log_has("llama.cpp loads deepseek32 only with split", !split), !split);
        ds_gguf *g = open_gguf(out);
        check_keys(g, cfg.n_nextn, split);
        check_layers(g, cfg.n_nextn, split, ALL_F32, st);
        ds_gguf_close(g);
    }
    safetensors_close(st);
}

static void no_mtp(void **state) {
    (void)state;
    char out[PATH_LEN];
    join(out, dir, "nomtp.gguf");
    assert_int_equal(convert_to(fixture, out, "--no-mtp"), 0);
    ds_gguf *g = open_gguf(out);
    check_keys(g, 0, 1);
    check_layers(g, 0, 1, ALL_F32, NULL);
    ds_gguf_close(g);
}

/* As llama.cpp's converter: the indexer's proj stays F32 in float files, its matrices follow. */
static void float_outtypes(void **state) {
    (void)state;
    char out[PATH_LEN];
    join(out, dir, "float.gguf");
    const struct {
        const char *name;
        ds_type type;
        int ftype;
    } T[] = {{"bf16", DS_TYPE_BF16, 32}, {"f16", DS_TYPE_F16, 1}};
    for (int i = 0; i < 2; i++) {
        char opt[32];
        snprintf(opt, sizeof opt, "--outtype %s", T[i].name);
        assert_int_equal(convert_to(fixture, out, opt), 0);
        ds_gguf *g = open_gguf(out);
        check_keys(g, cfg.n_nextn, 1);
        check_layers(g, cfg.n_nextn, 1, (mat_types){{T[i].type, T[i].type, DS_TYPE_F32}}, NULL);
        assert_int_equal(get_int(g, "general.file_type"), T[i].ftype);
        ds_gguf_close(g);
    }
}

/* llama.cpp's quantizer has no indexer rules: the matrices take the mix's type by their names
   (indexer.attn_k is an attn_k; attn_q_b's rows of q_lora_rank 96 fall back from Q4_K to Q5_0),
   k_norm stays F32. These are the types llama-quantize chose for the same F32 file; converting
   with --outtype equals converting to F32 and running deepseek-quantize. */
static void quantized(void **state) {
    (void)state;
    char f32[PATH_LEN], conv[PATH_LEN], q[PATH_LEN];
    join(f32, dir, "q-f32.gguf");
    join(conv, dir, "q-conv.gguf");
    join(q, dir, "q.gguf");
    assert_int_equal(convert_to(fixture, f32, ""), 0);
    const struct {
        const char *name;
        mat_types types;
    } T[] = {{"Q8_0", {{DS_TYPE_Q8_0, DS_TYPE_Q8_0, DS_TYPE_Q8_0}}},
             {"Q4_K_M", {{DS_TYPE_Q5_0, DS_TYPE_Q4_K, DS_TYPE_Q4_K}}}};
    for (int i = 0; i < 2; i++) {
        char opt[32];
        assert_int_equal(run("'%s' -t 1 '%s' '%s' %s", quantize, f32, q, T[i].name), 0);
        snprintf(opt, sizeof opt, "--outtype %s", T[i].name);
        assert_int_equal(convert_to(fixture, conv, opt), 0);
        assert_same_file(conv, q);
        ds_gguf *g = open_gguf(q);
        check_keys(g, cfg.n_nextn, 1);
        check_layers(g, cfg.n_nextn, 1, T[i].types, NULL);
        ds_gguf_close(g);
    }
    /* the DeepSeek recipe's --attn-type takes the indexer along with attention */
    assert_int_equal(run("'%s' -t 1 --attn-type q8_0 '%s' '%s' Q4_K_M", quantize, f32, q), 0);
    ds_gguf *g = open_gguf(q);
    check_layers(g, cfg.n_nextn, 1, (mat_types){{DS_TYPE_Q8_0, DS_TYPE_Q8_0, DS_TYPE_Q8_0}}, NULL);
    ds_gguf_close(g);
}

/* ---- an FP8 checkpoint, as the release stores wq_b and wk ---- */

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* e4m3fn: bias 7, no infinities; 0x7f / 0xff are NaN and never written here. */
static float e4m3(uint8_t b) {
    int e = (b >> 3) & 15, m = b & 7;
    float v = e ? ldexpf(1.0f + (float)m / 8.0f, e - 7) : ldexpf((float)m / 8.0f, -6);
    return b & 0x80 ? -v : v;
}

static int is_fp8_source(const char *name) {
    size_t n = strlen(name);
    return (n > 19 && strcmp(name + n - 19, "indexer.wq_b.weight") == 0) ||
           (n > 17 && strcmp(name + n - 17, "indexer.wk.weight") == 0);
}

typedef struct {
    char *header;
    size_t len, cap, at;
    FILE *data;
} st_writer;

static void st_add(st_writer *w, const char *name, const char *dtype, int nd, const int64_t *shape, const void *p,
                   size_t n) {
    w->len += (size_t)snprintf(w->header + w->len, w->cap - w->len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                               w->len > 1 ? "," : "", name, dtype);
    for (int d = 0; d < nd; d++)
        w->len += (size_t)snprintf(w->header + w->len, w->cap - w->len, "%s%lld", d ? "," : "", (long long)shape[d]);
    w->len += (size_t)snprintf(w->header + w->len, w->cap - w->len, "],\"data_offsets\":[%zu,%zu]}", w->at, w->at + n);
    assert_true(w->len < w->cap);
    assert_int_equal(fwrite(p, 1, n, w->data), n);
    w->at += n;
}

/* wq_b / wk as random e4m3 codes with random scales of 128 x 128 blocks; the rest unchanged. */
static void add_fp8(st_writer *w, const safetensors_tensor *t, uint32_t *seed) {
    int64_t r = t->shape[0], c = t->shape[1], grid[2] = {(r + 127) / 128, (c + 127) / 128};
    uint8_t *codes = malloc((size_t)(r * c));
    float *scales = malloc((size_t)(grid[0] * grid[1]) * sizeof *scales);
    char name[256];
    assert_true(codes && scales);
    for (int64_t i = 0; i < r * c; i++) {
        codes[i] = (uint8_t)lcg(seed);
        if ((codes[i] & 0x7f) == 0x7f) codes[i] ^= 1; /* no NaN */
    }
    for (int64_t i = 0; i < grid[0] * grid[1]; i++)
        scales[i] = ldexpf(1.0f + (float)(lcg(seed) % 1000) / 1000.0f, -(int)(lcg(seed) % 8) - 4);
    st_add(w, t->name, "F8_E4M3", 2, t->shape, codes, (size_t)(r * c));
    snprintf(name, sizeof name, "%s_scale_inv", t->name);
    st_add(w, name, "F32", 2, grid, scales, (size_t)(grid[0] * grid[1]) * sizeof *scales);
    free(codes);
    free(scales);
}

static void write_fp8_checkpoint(const char *out_dir) {
    safetensors_file *st = open_fixture();
    st_writer w = {malloc(1 << 20), 0, 1 << 20, 0, tmpfile()};
    uint32_t seed = 20251117;
    assert_true(w.header && w.data);
    w.len = (size_t)snprintf(w.header, w.cap, "{");
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const safetensors_tensor *t = safetensors_at(st, i);
        if (is_fp8_source(t->name)) add_fp8(&w, t, &seed);
        else st_add(&w, t->name, safetensors_dtype_name(t->dtype), t->n_dims, t->shape, t->data, t->n_bytes);
    }
    w.len += (size_t)snprintf(w.header + w.len, w.cap - w.len, "}");
    char p[PATH_LEN];
    FILE *fp = fopen(join(p, out_dir, "model.safetensors"), "wb");
    uint64_t hlen = w.len;
    assert_non_null(fp);
    fwrite(&hlen, 8, 1, fp);
    fwrite(w.header, 1, w.len, fp);
    rewind(w.data);
    for (int ch; (ch = fgetc(w.data)) != EOF;) fputc(ch, fp);
    assert_int_equal(fclose(fp), 0);
    fclose(w.data);
    free(w.header);
    safetensors_close(st);
}

/* The file src with one piece of text replaced (it must be there), written to dst (may be src). */
static void rewrite(const char *src, const char *dst, const char *from, const char *to) {
    char *text = read_text(src);
    char *at = strstr(text, from);
    if (!at) fail_msg("%s lacks '%s'", src, from);
    FILE *fp = fopen(dst, "w");
    assert_non_null(fp);
    fprintf(fp, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    assert_int_equal(fclose(fp), 0);
    free(text);
}

static void write_config(const char *out_dir, const char *from, const char *to) {
    char a[PATH_LEN], b[PATH_LEN];
    rewrite(join(a, fixture, "config.json"), join(b, out_dir, "config.json"), from, to);
}

/* weight = e4m3(code) x scale_inv of its block, one float32 multiply: exact in F32 output. */
static void check_fp8_values(const ds_gguf *g, const safetensors_file *st, int il, int k) {
    char name[128], src[160], scale[192];
    ds_gguf_tensor_info t;
    snprintf(name, sizeof name, "blk.%d.indexer.%s", il, INDEXER[k].gguf);
    snprintf(src, sizeof src, "model.layers.%d.self_attn.indexer.%s", il, INDEXER[k].hf);
    snprintf(scale, sizeof scale, "%s_scale_inv", src);
    const safetensors_tensor *w = safetensors_find(st, src), *s = safetensors_find(st, scale);
    assert_true(find_tensor(g, name, &t) && w && s);
    assert_int_equal(w->dtype, SAFETENSORS_F8_E4M3);
    int64_t r = w->shape[0], c = w->shape[1];
    float *want = malloc((size_t)(r * c) * sizeof *want), *sc = malloc((size_t)s->n_elements * sizeof *sc);
    const uint8_t *codes = w->data;
    char err[256];
    assert_true(want && sc);
    assert_int_equal(safetensors_read_f32(s, sc, (size_t)s->n_elements, err, sizeof err), 0);
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++)
            want[i * c + j] = e4m3(codes[i * c + j]) * sc[(i / 128) * s->shape[1] + j / 128];
    check_values(&t, want, (size_t)(r * c));
    free(want);
    free(sc);
}

static void fp8_indexer(void **state) {
    (void)state;
    char hf[PATH_LEN], out[PATH_LEN], p[PATH_LEN], err[256];
    join(hf, dir, "fp8");
    join(out, dir, "fp8.gguf");
    assert_int_equal(mkdir(hf, 0755), 0);
    write_fp8_checkpoint(hf);
    write_config(hf, "\"rms_norm_eps\"",
                 "\"quantization_config\": {\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\", "
                 "\"quant_method\": \"fp8\", \"scale_fmt\": \"ue8m0\", \"weight_block_size\": [128, 128]},\n  "
                 "\"rms_norm_eps\"");
    assert_int_equal(convert_to(hf, out, ""), 0);
    safetensors_file *st = NULL;
    assert_int_equal(safetensors_open(join(p, hf, "model.safetensors"), &st, err, sizeof err), 0);
    ds_gguf *g = open_gguf(out);
    check_keys(g, cfg.n_nextn, 1);
    check_layers(g, cfg.n_nextn, 1, ALL_F32, NULL);
    for (int il = 0; il < cfg.n_layer + cfg.n_nextn; il++) {
        check_fp8_values(g, st, il, 0);
        check_fp8_values(g, st, il, 1);
    }
    ds_gguf_close(g);
    safetensors_close(st);
}

/* ---- configs the converter must refuse, naming the key ---- */

static void bad_configs(void **state) {
    (void)state;
    static const struct {
        const char *from, *to, *needle;
    } B[] = {
        {"\"index_topk\": 16,", "", "'index_topk' is missing"},
        {"\"index_n_heads\": 8,", "\"index_n_heads\": 0,", "'index_n_heads' must be an integer"},
        {"\"index_head_dim\": 128,", "\"index_head_dim\": 8,", "'index_head_dim' 8 is smaller than qk_rope_head_dim"},
        {"\"q_lora_rank\": 96,", "\"q_lora_rank\": null,", "'q_lora_rank' must be > 0 for deepseek_v32"},
        {"\"model_type\": \"deepseek_v32\"", "\"model_type\": \"deepseek_v3\"", "'architectures' names"},
        {"\"DeepseekV32ForCausalLM\"", "\"DeepseekV3ForCausalLM\"", "'architectures' names"},
        {"\"model_type\": \"deepseek_v32\"", "\"model_type\": \"deepseek_v4\"", "model_type 'deepseek_v4'"},
        {"\"rms_norm_eps\"", "\"quantization_config\": {\"fmt\": \"e5m2\"}, \"rms_norm_eps\"",
         "quantization_config.fmt is 'e5m2'"},
        {"\"rms_norm_eps\"", "\"quantization_config\": {\"quant_method\": \"gptq\"}, \"rms_norm_eps\"",
         "quantization_config.quant_method is 'gptq'"},
    };
    char hf[PATH_LEN], out[PATH_LEN], link[PATH_LEN], target[PATH_LEN], cfg_path[PATH_LEN];
    join(hf, dir, "bad");
    join(out, dir, "bad.gguf");
    assert_int_equal(mkdir(hf, 0755), 0);
    assert_int_equal(symlink(join(target, fixture, "model.safetensors"), join(link, hf, "model.safetensors")), 0);
    for (size_t i = 0; i < sizeof B / sizeof B[0]; i++) {
        write_config(hf, B[i].from, B[i].to);
        if (convert_to(hf, out, "") != 1 || !log_has(B[i].needle, 1)) fail_msg("case %zu: %s", i, B[i].needle);
    }
    /* a V3 config over the V3.2 tensors: the indexer gives it away */
    write_config(hf, "\"DeepseekV32ForCausalLM\"", "\"DeepseekV3ForCausalLM\"");
    join(cfg_path, hf, "config.json");
    rewrite(cfg_path, cfg_path, "\"deepseek_v32\"", "\"deepseek_v3\"");
    assert_int_equal(convert_to(hf, out, ""), 1);
    assert_true(log_has("self_attn.indexer.wq_b.weight' does not belong in layer 0 of this config (an indexer", 1));
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: test_convert_v32 DEEPSEEK-CONVERT DEEPSEEK-QUANTIZE FIXTURE_DIR TOKENIZER_DIR\n");
        return 2;
    }
    convert = argv[1];
    quantize = argv[2];
    fixture = argv[3];
    tokenizer = argv[4];
    snprintf(dir, sizeof dir, "test_convert_v32.XXXXXX");
    if (!mkdtemp(dir)) return 2;
    read_fixture_config();
    const struct CMUnitTest tests[] = {cmocka_unit_test(f32_both_layouts), cmocka_unit_test(no_mtp),
                                       cmocka_unit_test(float_outtypes),   cmocka_unit_test(quantized),
                                       cmocka_unit_test(fp8_indexer),      cmocka_unit_test(bad_configs)};
    int rc = cmocka_run_group_tests_name("convert-v32", tests, NULL, NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    return rc;
}
