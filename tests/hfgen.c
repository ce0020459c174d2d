/* hfgen - small random-weight Hugging Face checkpoints of the dense and DeepSeek-MoE
   architectures deepseek-convert reads, for the tests (tests/data/distill/README.md).

   usage: hfgen PRESET OUT_DIR TOKENIZER_DIR

   PRESET is qwen2, llama, qwen3 or deepseek. OUT_DIR (created) receives config.json,
   generation_config.json, model.safetensors (BF16, as the releases store their weights),
   tokenizer.json and tokenizer_config.json. The tokenizer comes from TOKENIZER_DIR, its
   vocabulary cut to the preset's size so that the output layer stays small: ids below the cut
   are kept, merges only among kept tokens, added tokens follow renumbered in their order.

   Every byte depends on the preset alone: the weights come from a fixed-seed generator of our
   own (splitmix64, one stream per tensor name), so the files, the GGUFs converted from them and
   llama.cpp's logits stored for those are the same on every machine. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ================================================================== presets */

typedef struct {
    const char *name, *hf_arch, *model_type;
    int n_layer, n_embd, n_ff, n_head, n_kv, head_dim;
    int qkv_bias, qk_norm, tie;
    int n_expert, n_used, n_shared, moe_ff, n_dense;
    int keep;              /* tokenizer ids kept below the added tokens; 0: the tokenizer unchanged */
    int vocab;             /* config.json's vocab_size, at least the tokenizer's (padded as releases pad) */
    const char *bos, *eos; /* token texts whose ids config.json names */
    uint64_t seed;
} preset;

#define DS_BOS      \
    "<\xef\xbd\x9c" \
    "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_EOS      \
    "<\xef\xbd\x9c" \
    "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"

/* Shape ratios of the models named; widths of 256 (or multiples) where llama.cpp's K-quants
   need whole blocks, except qwen2, whose 448 = 14 x 32 (7:1 GQA needs a multiple of 7 heads)
   falls back to legacy blocks as Qwen2.5-0.5B's 896 does. */
static const preset PRESETS[] = {
    /* DeepSeek-R1-Distill-Qwen (Qwen2): GQA 7:1 as Qwen2-7B, q/k/v biases, tied embeddings */
    {.name = "qwen2",
     .hf_arch = "Qwen2ForCausalLM",
     .model_type = "qwen2",
     .n_layer = 2,
     .n_embd = 448,
     .n_ff = 1280,
     .n_head = 14,
     .n_kv = 2,
     .head_dim = 32,
     .qkv_bias = 1,
     .tie = 1,
     .keep = 1024,
     .vocab = 1152,
     .bos = "<|endoftext|>",
     .eos = "<|endoftext|>",
     .seed = 0x5157454e32ULL},
    /* DeepSeek-R1-Distill-Llama-8B (Llama 3.1 8B): GQA 4:1, llama3 rope scaling */
    {.name = "llama",
     .hf_arch = "LlamaForCausalLM",
     .model_type = "llama",
     .n_layer = 2,
     .n_embd = 256,
     .n_ff = 1024,
     .n_head = 8,
     .n_kv = 2,
     .head_dim = 32,
     .keep = 1024,
     .vocab = 1280,
     .bos = "<|begin_of_text|>",
     .eos = "<|eot_id|>",
     .seed = 0x4c4c414d41ULL},
    /* DeepSeek-R1-0528-Qwen3-8B: q/k norms, yarn (factor 4 over 32768), GQA 4:1, and head_dim
       64 with 8 heads over a width of 256 (q is wider than the model, as in Qwen3-4B) */
    {.name = "qwen3",
     .hf_arch = "Qwen3ForCausalLM",
     .model_type = "qwen3",
     .n_layer = 2,
     .n_embd = 256,
     .n_ff = 768,
     .n_head = 8,
     .n_kv = 2,
     .head_dim = 64,
     .qk_norm = 1,
     .vocab = 1152,
     .bos = DS_BOS,
     .eos = DS_EOS,
     .seed = 0x5157454e33ULL},
    /* DeepSeek-MoE-16B: MHA, one leading dense layer, softmax routing without renormalizing,
       two shared experts */
    {.name = "deepseek",
     .hf_arch = "DeepseekForCausalLM",
     .model_type = "deepseek",
     .n_layer = 3,
     .n_embd = 256,
     .n_ff = 1024,
     .n_head = 4,
     .n_kv = 4,
     .head_dim = 64,
     .n_expert = 8,
     .n_used = 3,
     .n_shared = 2,
     .moe_ff = 256,
     .n_dense = 1,
     .keep = 1024,
     .vocab = 1152,
     .bos = DS_BOS,
     .eos = DS_EOS,
     .seed = 0x44534d4f45ULL},
};

/* ================================================================== small helpers */

static int die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("hfgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static char *path_in(const char *dir, const char *name) {
    static char buf[4][4096];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static char *read_all(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    char *b = NULL;
    long n = -1;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0) b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, fp) == (size_t)n) b[n] = '\0';
    else {
        free(b);
        b = NULL;
    }
    fclose(fp);
    return b;
}

static int write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    int ok = fp && fputs(text, fp) >= 0;
    if (fp && fclose(fp) != 0) ok = 0;
    return ok ? 0 : die("%s: cannot write: %s", path, strerror(errno));
}

/* ================================================================== weights */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1) */
static float unit(uint64_t *s) { return (float)((double)(splitmix(s) >> 11) / 4503599627370496.0 - 1.0); }

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1); /* round to nearest even; no NaN is generated */
    return (uint16_t)(u >> 16);
}

typedef enum { W_MATRIX, W_NORM, W_BIAS, W_EMBED, W_HEAD, W_ROUTER } kind;

typedef struct {
    char name[96];
    int n_dims;
    int64_t shape[2];
    kind k;
    int64_t fan_in;
} tensor;

typedef struct {
    tensor *t;
    size_t n, cap;
} tensor_list;

static void add(tensor_list *L, kind k, int64_t rows, int64_t cols, const char *fmt, ...) {
    if (L->n == L->cap) {
        L->cap = L->cap ? 2 * L->cap : 64;
        L->t = realloc(L->t, L->cap * sizeof *L->t);
        if (!L->t) abort();
    }
    tensor *t = &L->t[L->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->k = k;
    t->n_dims = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->fan_in = cols ? cols : 1;
}

/* Scales keep every layer's output near unit size and the logits' spread near 3, so argmax
   margins are far above float rounding; the router is sharpened likewise, so routing does not
   hinge on near ties. */
static float scale_of(const preset *p, const tensor *t) {
    float a = sqrtf(3.0f / (float)t->fan_in); /* uniform with std 1/sqrt(fan_in) */
    switch (t->k) {
    case W_NORM: return 0.2f;
    case W_BIAS: return 0.5f;
    case W_EMBED: return p->tie ? 3.0f * sqrtf(3.0f / (float)p->n_embd) : 1.0f;
    case W_HEAD:
    case W_ROUTER: return 3.0f * a;
    default: return a;
    }
}

static uint64_t name_seed(uint64_t seed, const char *name) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    return seed ^ h;
}

static void fill(const preset *p, const tensor *t, uint16_t *out, size_t n) {
    uint64_t s = name_seed(p->seed, t->name);
    float a = scale_of(p, t);
    for (size_t i = 0; i < n; i++) out[i] = to_bf16((t->k == W_NORM ? 1.0f : 0.0f) + a * unit(&s));
}

static void attention(const preset *p, tensor_list *L, int il) {
    int64_t H = p->n_embd, q = (int64_t)p->n_head * p->head_dim, kv = (int64_t)p->n_kv * p->head_dim;
    const char *pre = "model.layers";
    add(L, W_NORM, H, 0, "%s.%d.input_layernorm.weight", pre, il);
    add(L, W_MATRIX, q, H, "%s.%d.self_attn.q_proj.weight", pre, il);
    add(L, W_MATRIX, kv, H, "%s.%d.self_attn.k_proj.weight", pre, il);
    add(L, W_MATRIX, kv, H, "%s.%d.self_attn.v_proj.weight", pre, il);
    add(L, W_MATRIX, H, q, "%s.%d.self_attn.o_proj.weight", pre, il);
    if (p->qkv_bias) {
        add(L, W_BIAS, q, 0, "%s.%d.self_attn.q_proj.bias", pre, il);
        add(L, W_BIAS, kv, 0, "%s.%d.self_attn.k_proj.bias", pre, il);
        add(L, W_BIAS, kv, 0, "%s.%d.self_attn.v_proj.bias", pre, il);
    }
    if (p->qk_norm) {
        add(L, W_NORM, p->head_dim, 0, "%s.%d.self_attn.q_norm.weight", pre, il);
        add(L, W_NORM, p->head_dim, 0, "%s.%d.self_attn.k_norm.weight", pre, il);
    }
    add(L, W_NORM, H, 0, "%s.%d.post_attention_layernorm.weight", pre, il);
}

/* gate / up / down under prefix, of width ff */
static void mlp(tensor_list *L, int64_t H, int64_t ff, const char *prefix) {
    add(L, W_MATRIX, ff, H, "%s.gate_proj.weight", prefix);
    add(L, W_MATRIX, ff, H, "%s.up_proj.weight", prefix);
    add(L, W_MATRIX, H, ff, "%s.down_proj.weight", prefix);
}

static void moe(const preset *p, tensor_list *L, int il) {
    char prefix[96];
    add(L, W_ROUTER, p->n_expert, p->n_embd, "model.layers.%d.mlp.gate.weight", il);
    for (int e = 0; e < p->n_expert; e++) {
        snprintf(prefix, sizeof prefix, "model.layers.%d.mlp.experts.%d", il, e);
        mlp(L, p->n_embd, p->moe_ff, prefix);
    }
    snprintf(prefix, sizeof prefix, "model.layers.%d.mlp.shared_experts", il);
    mlp(L, p->n_embd, (int64_t)p->moe_ff * p->n_shared, prefix);
}

static void all_tensors(const preset *p, int vocab, tensor_list *L) {
    add(L, W_EMBED, vocab, p->n_embd, "model.embed_tokens.weight");
    for (int il = 0; il < p->n_layer; il++) {
        char prefix[64];
        attention(p, L, il);
        snprintf(prefix, sizeof prefix, "model.layers.%d.mlp", il);
        if (p->n_expert && il >= p->n_dense) moe(p, L, il);
        else mlp(L, p->n_embd, p->n_ff, prefix);
    }
    add(L, W_NORM, p->n_embd, 0, "model.norm.weight");
    if (!p->tie) add(L, W_HEAD, vocab, p->n_embd, "lm_head.weight");
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const tensor *)a)->name, ((const tensor *)b)->name);
}

/* The header names the tensors in sorted order, as Hugging Face's safetensors writes them. */
static int write_safetensors(const preset *p, int vocab, const char *path) {
    tensor_list L = {0};
    all_tensors(p, vocab, &L);
    qsort(L.t, L.n, sizeof *L.t, by_name);
    size_t cap = 256 + L.n * 160, len = 0, off = 0;
    char *h = malloc(cap);
    if (!h) return die("out of memory");
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < L.n; i++) {
        const tensor *t = &L.t[i];
        size_t n = (size_t)t->shape[0] * (size_t)(t->n_dims == 2 ? t->shape[1] : 1) * 2;
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld", t->name,
                                (long long)t->shape[0]);
        if (t->n_dims == 2) len += (size_t)snprintf(h + len, cap - len, ",%lld", (long long)t->shape[1]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off, off + n);
        off += n;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' '; /* data aligned to 8 bytes, as the format's writer pads */
    FILE *fp = fopen(path, "wb");
    uint64_t hl = len;
    int ok = fp && fwrite(&hl, 8, 1, fp) == 1 && fwrite(h, 1, len, fp) == len;
    for (size_t i = 0; ok && i < L.n; i++) {
        size_t n = (size_t)L.t[i].shape[0] * (size_t)(L.t[i].n_dims == 2 ? L.t[i].shape[1] : 1);
        uint16_t *buf = malloc(n * 2);
        ok = buf != NULL;
        if (ok) fill(p, &L.t[i], buf, n);
        ok = ok && fwrite(buf, 2, n, fp) == n;
        free(buf);
    }
    if (fp && fclose(fp) != 0) ok = 0;
    free(h);
    free(L.t);
    return ok ? 0 : die("%s: cannot write: %s", path, strerror(errno));
}

/* ================================================================== tokenizer */

/* A merge's two parts: "a b" or ["a", "b"]. */
static int merge_parts(const cJSON *m, char *a, char *b, size_t size) {
    if (cJSON_IsString(m)) {
        const char *sp = strchr(m->valuestring, ' ');
        if (!sp || (size_t)(sp - m->valuestring) >= size || strlen(sp + 1) >= size) return -1;
        snprintf(a, size, "%.*s", (int)(sp - m->valuestring), m->valuestring);
        snprintf(b, size, "%s", sp + 1);
        return 0;
    }
    const cJSON *x = cJSON_GetArrayItem(m, 0), *y = cJSON_GetArrayItem(m, 1);
    if (!cJSON_IsString(x) || !cJSON_IsString(y) || strlen(x->valuestring) >= size || strlen(y->valuestring) >= size)
        return -1;
    snprintf(a, size, "%s", x->valuestring);
    snprintf(b, size, "%s", y->valuestring);
    return 0;
}

static int kept(const cJSON *vocab, const char *s) { return cJSON_GetObjectItemCaseSensitive(vocab, s) != NULL; }

static void cut_vocab(cJSON *model, int keep) {
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab"), *e = vocab ? vocab->child : NULL;
    while (e) {
        cJSON *next = e->next;
        if (!cJSON_IsNumber(e) || e->valuedouble >= keep) cJSON_Delete(cJSON_DetachItemViaPointer(vocab, e));
        e = next;
    }
}

static void cut_merges(cJSON *model) {
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges"), *m = merges ? merges->child : NULL;
    while (m) {
        cJSON *next = m->next;
        char a[256], b[256], ab[512];
        int ok = merge_parts(m, a, b, sizeof a) == 0;
        if (ok) snprintf(ab, sizeof ab, "%s%s", a, b);
        if (!ok || !kept(vocab, a) || !kept(vocab, b) || !kept(vocab, ab))
            cJSON_Delete(cJSON_DetachItemViaPointer(merges, m));
        m = next;
    }
}

/* The TemplateProcessing's special_tokens list the ids of the tokens they add. */
static void renumber_template(cJSON *pp, const char *content, int id) {
    cJSON *procs = cJSON_GetObjectItemCaseSensitive(pp, "processors"), *e;
    if (cJSON_IsArray(procs)) {
        cJSON_ArrayForEach(e, procs) renumber_template(e, content, id);
        return;
    }
    cJSON *st = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pp, "special_tokens"), content);
    cJSON *ids = cJSON_GetObjectItemCaseSensitive(st, "ids");
    if (cJSON_IsArray(ids)) cJSON_ReplaceItemInArray(ids, 0, cJSON_CreateNumber(id));
}

/* The tokenizer with ids >= keep dropped, added tokens from keep on; returns its id count. */
static int cut_tokenizer(cJSON *tj, int keep) {
    cJSON *model = cJSON_GetObjectItemCaseSensitive(tj, "model"), *e;
    cJSON *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    int next = keep;
    cut_vocab(model, keep);
    cut_merges(model);
    cJSON_ArrayForEach(e, added) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        cJSON_ReplaceItemInObjectCaseSensitive(e, "id", cJSON_CreateNumber(next));
        if (cJSON_IsString(c))
            renumber_template(cJSON_GetObjectItemCaseSensitive(tj, "post_processor"), c->valuestring, next);
        next++;
    }
    return next;
}

static int top_id(const cJSON *tj) {
    const cJSON *e, *vocab = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tj, "model"), "vocab");
    int top = -1;
    cJSON_ArrayForEach(e, vocab) if (cJSON_IsNumber(e) && e->valueint > top) top = e->valueint;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tj, "added_tokens")) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (cJSON_IsNumber(id) && id->valueint > top) top = id->valueint;
    }
    return top;
}

static int token_id(const cJSON *tj, const char *content) {
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tj, "added_tokens")) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (cJSON_IsString(c) && strcmp(c->valuestring, content) == 0)
            return cJSON_GetObjectItemCaseSensitive(e, "id")->valueint;
    }
    return -1;
}

/* tokenizer.json (cut) and tokenizer_config.json (as it is) into out; the ids of bos / eos. */
static int write_tokenizer(const preset *p, const char *src, const char *out, int *n_ids, int *bos, int *eos) {
    char *text = read_all(path_in(src, "tokenizer.json")), *tc = read_all(path_in(src, "tokenizer_config.json"));
    cJSON *tj = text ? cJSON_Parse(text) : NULL;
    int rc = !tj || !tc ? die("%s: no readable tokenizer.json and tokenizer_config.json", src) : 0;
    if (rc == 0) {
        *n_ids = p->keep ? cut_tokenizer(tj, p->keep) : top_id(tj) + 1;
        *bos = token_id(tj, p->bos);
        *eos = token_id(tj, p->eos);
        if (*bos < 0 || *eos < 0) rc = die("%s: the tokenizer lacks %s or %s", src, p->bos, p->eos);
        else if (*n_ids > p->vocab) rc = die("%s: %d ids do not fit vocab_size %d", src, *n_ids, p->vocab);
    }
    char *json = rc == 0 ? cJSON_PrintUnformatted(tj) : NULL;
    if (rc == 0) rc = !json ? die("out of memory") : write_text(path_in(out, "tokenizer.json"), json);
    if (rc == 0) rc = write_text(path_in(out, "tokenizer_config.json"), tc);
    free(json);
    cJSON_Delete(tj);
    free(text);
    free(tc);
    return rc;
}

/* ================================================================== config.json */

static void num(cJSON *o, const char *k, double v) { cJSON_AddNumberToObject(o, k, v); }
static void str(cJSON *o, const char *k, const char *v) { cJSON_AddStringToObject(o, k, v); }
static void flag(cJSON *o, const char *k, int v) { cJSON_AddBoolToObject(o, k, v); }

/* Each architecture's own keys, with the values its release has where they are not shapes. */
static void config_qwen2(cJSON *c, const preset *p) {
    num(c, "max_position_embeddings", 131072);
    num(c, "max_window_layers", p->n_layer);
    num(c, "rms_norm_eps", 1e-6);
    num(c, "rope_theta", 1000000);
    num(c, "sliding_window", 4096);
    flag(c, "use_sliding_window", 0);
    flag(c, "use_mrope", 0);
}

static void config_llama(cJSON *c) {
    cJSON *rs = cJSON_CreateObject();
    flag(c, "attention_bias", 0);
    num(c, "max_position_embeddings", 131072);
    flag(c, "mlp_bias", 0);
    num(c, "pretraining_tp", 1);
    num(c, "rms_norm_eps", 1e-5);
    num(rs, "factor", 8.0);
    num(rs, "high_freq_factor", 4.0);
    num(rs, "low_freq_factor", 1.0);
    num(rs, "original_max_position_embeddings", 8192);
    str(rs, "rope_type", "llama3");
    cJSON_AddItemToObject(c, "rope_scaling", rs);
    num(c, "rope_theta", 500000.0);
}

static void config_qwen3(cJSON *c, const preset *p) {
    cJSON *rs = cJSON_CreateObject();
    flag(c, "attention_bias", 0);
    num(c, "head_dim", p->head_dim);
    num(c, "max_position_embeddings", 131072);
    num(c, "max_window_layers", p->n_layer);
    num(c, "rms_norm_eps", 1e-6);
    str(rs, "rope_type", "yarn");
    num(rs, "factor", 4.0);
    num(rs, "original_max_position_embeddings", 32768);
    num(rs, "attn_factor", 0.8782488562869419);
    cJSON_AddItemToObject(c, "rope_scaling", rs);
    num(c, "rope_theta", 1000000);
    cJSON_AddNullToObject(c, "sliding_window");
    flag(c, "use_sliding_window", 0);
}

static void config_deepseek(cJSON *c, const preset *p) {
    flag(c, "attention_bias", 0);
    num(c, "aux_loss_alpha", 0.001);
    num(c, "first_k_dense_replace", p->n_dense);
    num(c, "max_position_embeddings", 4096);
    num(c, "moe_intermediate_size", p->moe_ff);
    num(c, "moe_layer_freq", 1);
    num(c, "n_routed_experts", p->n_expert);
    num(c, "n_shared_experts", p->n_shared);
    flag(c, "norm_topk_prob", 0);
    num(c, "num_experts_per_tok", p->n_used);
    num(c, "pretraining_tp", 1);
    num(c, "rms_norm_eps", 1e-6);
    cJSON_AddNullToObject(c, "rope_scaling");
    num(c, "rope_theta", 10000);
    str(c, "scoring_func", "softmax");
    flag(c, "seq_aux", 1);
}

static int write_config(const preset *p, const char *out, int bos, int eos) {
    cJSON *c = cJSON_CreateObject(), *arch = cJSON_CreateArray();
    cJSON_AddItemToArray(arch, cJSON_CreateString(p->hf_arch));
    cJSON_AddItemToObject(c, "architectures", arch);
    num(c, "attention_dropout", 0.0);
    num(c, "bos_token_id", bos);
    if (strcmp(p->name, "llama") == 0) { /* Llama 3.1 lists its three end tokens; the converter skips a list */
        const int ids[3] = {eos - 8, eos - 1, eos}; /* <|end_of_text|>, the one before <|eot_id|>, <|eot_id|> */
        cJSON_AddItemToObject(c, "eos_token_id", cJSON_CreateIntArray(ids, 3));
    } else num(c, "eos_token_id", eos);
    str(c, "hidden_act", "silu");
    num(c, "hidden_size", p->n_embd);
    num(c, "initializer_range", 0.02);
    num(c, "intermediate_size", p->n_ff);
    str(c, "model_type", p->model_type);
    num(c, "num_attention_heads", p->n_head);
    num(c, "num_hidden_layers", p->n_layer);
    num(c, "num_key_value_heads", p->n_kv);
    if (strcmp(p->name, "qwen2") == 0) config_qwen2(c, p);
    else if (strcmp(p->name, "llama") == 0) config_llama(c);
    else if (strcmp(p->name, "qwen3") == 0) config_qwen3(c, p);
    else config_deepseek(c, p);
    flag(c, "tie_word_embeddings", p->tie);
    str(c, "torch_dtype", "bfloat16");
    str(c, "transformers_version", "4.46.3");
    flag(c, "use_cache", 1);
    num(c, "vocab_size", p->vocab);
    char *json = cJSON_Print(c);
    int rc = json ? write_text(path_in(out, "config.json"), json) : die("out of memory");
    free(json);
    cJSON_Delete(c);
    return rc;
}

/* The sampling defaults the releases ship (llama.cpp's converter copies them to general.sampling.*). */
static int write_generation_config(const preset *p, const char *out, int bos, int eos) {
    cJSON *g = cJSON_CreateObject();
    num(g, "bos_token_id", bos);
    flag(g, "do_sample", 1);
    num(g, "eos_token_id", eos);
    num(g, "temperature", 0.6);
    if (strcmp(p->name, "qwen3") == 0) num(g, "top_k", 20);
    num(g, "top_p", strcmp(p->name, "llama") == 0 ? 0.9 : 0.95);
    if (strcmp(p->name, "deepseek") == 0) num(g, "repetition_penalty", 1.05);
    str(g, "transformers_version", "4.46.3");
    char *json = cJSON_Print(g);
    int rc = json ? write_text(path_in(out, "generation_config.json"), json) : die("out of memory");
    free(json);
    cJSON_Delete(g);
    return rc;
}

int main(int argc, char **argv) {
    const preset *p = NULL;
    for (size_t i = 0; argc == 4 && i < sizeof PRESETS / sizeof PRESETS[0]; i++) {
        if (strcmp(argv[1], PRESETS[i].name) == 0) p = &PRESETS[i];
    }
    if (!p) return die("usage: hfgen qwen2|llama|qwen3|deepseek OUT_DIR TOKENIZER_DIR") + 1;
    if (mkdir(argv[2], 0755) != 0 && errno != EEXIST) return die("%s: cannot create: %s", argv[2], strerror(errno));
    int n_ids = 0, bos = -1, eos = -1;
    if (write_tokenizer(p, argv[3], argv[2], &n_ids, &bos, &eos) || write_config(p, argv[2], bos, eos) ||
        write_generation_config(p, argv[2], bos, eos) ||
        write_safetensors(p, p->vocab, path_in(argv[2], "model.safetensors")))
        return 1;
    return 0;
}
