/* hfgen - small random-weight Hugging Face checkpoints of the dense and DeepSeek-MoE
   architectures deepseek-convert reads, for the tests (tests/data/distill/README.md).

   usage: hfgen PRESET OUT_DIR TOKENIZER_DIR

   PRESET is qwen2, llama, qwen3, deepseek or deepseek-v4 (DeepSeek-V4's own layout and FP8 /
   FP4 storage: see write_v4 below). OUT_DIR (created) receives config.json,
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
    /* DeepSeek-V4 (DeepseekV4ForCausalLM), its layout and storage: written by write_v4 below */
    {.name = "deepseek-v4",
     .hf_arch = "DeepseekV4ForCausalLM",
     .model_type = "deepseek_v4",
     .n_layer = 5,
     .n_embd = 256,
     .n_head = 4,
     .n_kv = 1,
     .head_dim = 128,
     .n_expert = 4,
     .n_used = 2,
     .n_shared = 1,
     .moe_ff = 128,
     .vocab = 1152, /* tokenizer-tiny whole, as qwen3 takes it */
     .bos = DS_BOS,
     .eos = DS_EOS,
     .seed = 0x44535634ULL},
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

/* A new zeroed item at the end of the growing array *items (*n of them, capacity *cap). */
static void *push(void *items, size_t *n, size_t *cap, size_t size) {
    void **p = items;
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *p = realloc(*p, *cap * size);
        if (!*p) abort();
    }
    void *item = (char *)*p + (*n)++ * size;
    memset(item, 0, size);
    return item;
}

static void add(tensor_list *L, kind k, int64_t rows, int64_t cols, const char *fmt, ...) {
    tensor *t = push(&L->t, &L->n, &L->cap, sizeof *L->t);
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

/* One tensor of a safetensors file: its name, dtype, 1 or 2 dimensions and bytes. */
typedef struct {
    const char *name, *dtype;
    int n_dims;
    const int64_t *shape;
    size_t n_bytes;
} st_entry;

/* A safetensors file of n tensors, given in sorted order (as Hugging Face's writer orders the
   header); emit(arg, i, fp) writes tensor i's bytes. */
static int write_st(const char *path, const st_entry *e, size_t n, int (*emit)(void *arg, size_t i, FILE *fp),
                    void *arg) {
    size_t cap = 256, len = 0, off = 0;
    for (size_t i = 0; i < n; i++) cap += strlen(e[i].name) + 96;
    char *h = malloc(cap);
    if (!h) return die("out of memory");
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld", e[i].name, e[i].dtype,
                                (long long)e[i].shape[0]);
        if (e[i].n_dims == 2) len += (size_t)snprintf(h + len, cap - len, ",%lld", (long long)e[i].shape[1]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off, off + e[i].n_bytes);
        off += e[i].n_bytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' '; /* data aligned to 8 bytes, as the format's writer pads */
    FILE *fp = fopen(path, "wb");
    uint64_t hl = len;
    int ok = fp && fwrite(&hl, 8, 1, fp) == 1 && fwrite(h, 1, len, fp) == len;
    for (size_t i = 0; ok && i < n; i++) ok = emit(arg, i, fp) == 0;
    if (fp && fclose(fp) != 0) ok = 0;
    free(h);
    return ok ? 0 : die("%s: cannot write: %s", path, strerror(errno));
}

typedef struct {
    const preset *p;
    const tensor *t;
} bf16_source;

/* Tensor i of the dense presets: its BF16 values, made now. */
static int emit_bf16(void *arg, size_t i, FILE *fp) {
    const bf16_source *src = arg;
    const tensor *t = &src->t[i];
    size_t n = (size_t)t->shape[0] * (size_t)(t->n_dims == 2 ? t->shape[1] : 1);
    uint16_t *buf = malloc(n * 2);
    int ok = buf != NULL;
    if (ok) fill(src->p, t, buf, n);
    ok = ok && fwrite(buf, 2, n, fp) == n;
    free(buf);
    return ok ? 0 : -1;
}

static int write_safetensors(const preset *p, int vocab, const char *path) {
    tensor_list L = {0};
    all_tensors(p, vocab, &L);
    qsort(L.t, L.n, sizeof *L.t, by_name);
    st_entry *e = calloc(L.n ? L.n : 1, sizeof *e);
    if (!e) return die("out of memory");
    for (size_t i = 0; i < L.n; i++) {
        const tensor *t = &L.t[i];
        e[i] = (st_entry){t->name, "BF16", t->n_dims, t->shape,
                          (size_t)t->shape[0] * (size_t)(t->n_dims == 2 ? t->shape[1] : 1) * 2};
    }
    bf16_source src = {p, L.t};
    int rc = write_st(path, e, L.n, emit_bf16, &src);
    free(e);
    free(L.t);
    return rc;
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

/* ================================================================== DeepSeek-V4 */

/* A tiny DeepseekV4ForCausalLM checkpoint in DeepSeek's own layout (no "model." prefix) and
   storage, as llama.cpp's converter (conversion/deepseek.py DeepseekV4Model) reads it: FP8 e4m3
   matrices with one E8M0 scale byte per 128 x 128 block in "<name>.scale"; routed experts FP4
   (e2m1, two per byte, I8) with one E8M0 scale per 32 values; BF16 embeddings, head, norms,
   router, compressors, the indexer's weights_proj and wo_a; F32 hyper-connection tensors,
   attention sinks, compressor ape and router bias; the hash layers' tid2eid as I64. Which
   tensors the release keeps in which dtype is our choice where llama.cpp decides by dtype
   alone. Layers: 2 hash-routed, compress ratios 0 (sliding window), 4 (compressed sparse
   attention with the indexer), 128 (heavily compressed), 4, 0; one MTP block (mtp.0.*), which
   llama.cpp's converter leaves out of the model file. */
enum {
    V4_E = 256,
    V4_H = 4,
    V4_D = 128,
    V4_ROPE = 64,
    V4_QL = 128,
    V4_OL = 64,
    V4_G = 2,
    V4_NE = 4,
    V4_NU = 2,
    V4_FF = 128,
    V4_IH = 4,
    V4_ID = 64,
    V4_HC = 4,
    V4_HASH = 2,
    V4_LAYERS = 5
};
static const int V4_RATIOS[V4_LAYERS + 1] = {0, 4, 128, 4, 0, 0}; /* the last: the MTP block */

typedef enum { D_BF16, D_F32, D_FP8, D_FP8_SCALE, D_FP4, D_FP4_SCALE, D_I64 } v4_dtype;

typedef struct {
    char name[96];
    v4_dtype dt;
    int n_dims;
    int64_t shape[2];
    unsigned char *data;
    size_t n_bytes;
} v4_tensor;

typedef struct {
    v4_tensor *t;
    size_t n, cap;
    const preset *p;
} v4_list;

static const char *const V4_DTYPE_NAME[] = {"BF16", "F32", "F8_E4M3", "F8_E8M0", "I8", "F8_E8M0", "I64"};

static v4_tensor *v4_new(v4_list *L, v4_dtype dt, int64_t rows, int64_t cols, size_t esize, const char *fmt, ...) {
    v4_tensor *t = push(&L->t, &L->n, &L->cap, sizeof *L->t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->dt = dt;
    t->n_dims = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->n_bytes = (size_t)rows * (size_t)(cols ? cols : 1) * esize;
    t->data = calloc(t->n_bytes ? t->n_bytes : 1, 1);
    if (!t->data) abort();
    return t;
}

static float e4m3_value(int c) {
    int e = (c >> 3) & 15, m = c & 7;
    float v = e ? ldexpf(1.0f + (float)m / 8.0f, e - 7) : ldexpf((float)m / 8.0f, -6);
    return c & 0x80 ? -v : v;
}

/* nearest e4m3fn code (0x7e = 448 at most; 0x7f is NaN), ties to the even code */
static unsigned char e4m3_code(float x) {
    float a = fabsf(x);
    int best = 0;
    float bd = a;
    for (int c = 1; c <= 0x7e; c++) {
        float d = fabsf(e4m3_value(c) - a);
        if (d < bd || (d == bd && (c & 1) == 0)) bd = d, best = c;
    }
    return (unsigned char)(best | (x < 0 && best ? 0x80 : 0));
}

/* values in [-a, a) (plus 1 for norms), one stream per name */
static void v4_floats(const preset *p, const char *name, float a, float base, float *x, size_t n) {
    uint64_t s = name_seed(p->seed, name);
    for (size_t i = 0; i < n; i++) x[i] = base + a * unit(&s);
}

static void v4_dense(v4_list *L, v4_dtype dt, float a, float base, int64_t rows, int64_t cols, const char *name) {
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    float *x = malloc(n * sizeof *x);
    if (!x) abort();
    v4_floats(L->p, name, a, base, x, n);
    v4_tensor *t = v4_new(L, dt, rows, cols, dt == D_F32 ? 4 : 2, "%s", name);
    for (size_t i = 0; i < n; i++) {
        if (dt == D_F32) memcpy(t->data + 4 * i, &x[i], 4);
        else {
            uint16_t b = to_bf16(x[i]);
            memcpy(t->data + 2 * i, &b, 2);
        }
    }
    free(x);
}

/* FP8 e4m3 with E8M0 block scales: each 128 x 128 block's scale the power of two that brings
   its largest value within 448 */
static void v4_fp8(v4_list *L, int64_t rows, int64_t cols, const char *name) {
    size_t n = (size_t)(rows * cols);
    float *x = malloc(n * sizeof *x);
    if (!x) abort();
    v4_floats(L->p, name, sqrtf(3.0f / (float)cols), 0.0f, x, n);
    const int64_t br = (rows + 127) / 128, bc = (cols + 127) / 128;
    char sname[96];
    snprintf(sname, sizeof sname, "%.*s.scale", (int)(strlen(name) - 7), name); /* name ends in .weight */
    v4_tensor *w = v4_new(L, D_FP8, rows, cols, 1, "%s", name);
    v4_tensor *s = v4_new(L, D_FP8_SCALE, br, bc, 1, "%s", sname);
    for (int64_t bi = 0; bi < br; bi++) {
        for (int64_t bj = 0; bj < bc; bj++) {
            float amax = 0;
            for (int64_t r = bi * 128; r < rows && r < bi * 128 + 128; r++)
                for (int64_t c = bj * 128; c < cols && c < bj * 128 + 128; c++)
                    amax = fmaxf(amax, fabsf(x[r * cols + c]));
            int e = amax > 0 ? (int)ceilf(log2f(amax / 448.0f)) : 0;
            s->data[bi * bc + bj] = (unsigned char)(e + 127);
            for (int64_t r = bi * 128; r < rows && r < bi * 128 + 128; r++)
                for (int64_t c = bj * 128; c < cols && c < bj * 128 + 128; c++)
                    w->data[r * cols + c] = e4m3_code(ldexpf(x[r * cols + c], -e));
        }
    }
    free(x);
}

/* FP4 e2m1 codes, two per byte (element 2i low), with one E8M0 scale per 32 values */
static void v4_fp4(v4_list *L, int64_t rows, int64_t cols, const char *wname, const char *sname) {
    uint64_t s = name_seed(L->p->seed, wname);
    v4_tensor *w = v4_new(L, D_FP4, rows, cols / 2, 1, "%s", wname);
    v4_tensor *sc = v4_new(L, D_FP4_SCALE, rows, cols / 32, 1, "%s", sname);
    for (size_t i = 0; i < w->n_bytes; i++) w->data[i] = (unsigned char)(splitmix(&s) & 0xff);
    int e = 127 + (int)lroundf(log2f(sqrtf(3.0f / (float)cols) / 6.0f));
    for (size_t i = 0; i < sc->n_bytes; i++) sc->data[i] = (unsigned char)(e - 1 + (int)(splitmix(&s) % 3));
}

static void v4_block(v4_list *L, const char *pre, int ratio, int hash) {
    char n[96];
    const float a = sqrtf(3.0f / V4_E);
    const int mix = (2 + V4_HC) * V4_HC;
#define N(...) (snprintf(n, sizeof n, __VA_ARGS__), n)
    v4_dense(L, D_BF16, 0.2f, 1.0f, V4_E, 0, N("%sattn_norm.weight", pre));
    v4_dense(L, D_F32, 0.5f, 0.0f, V4_H, 0, N("%sattn.attn_sink", pre));
    v4_fp8(L, V4_QL, V4_E, N("%sattn.wq_a.weight", pre));
    v4_dense(L, D_BF16, 0.2f, 1.0f, V4_QL, 0, N("%sattn.q_norm.weight", pre));
    v4_fp8(L, V4_H * V4_D, V4_QL, N("%sattn.wq_b.weight", pre));
    v4_fp8(L, V4_D, V4_E, N("%sattn.wkv.weight", pre));
    v4_dense(L, D_BF16, 0.2f, 1.0f, V4_D, 0, N("%sattn.kv_norm.weight", pre));
    v4_dense(L, D_BF16, sqrtf(3.0f * V4_G / (V4_H * V4_D)), 0.0f, V4_G * V4_OL, V4_H * V4_D / V4_G,
             N("%sattn.wo_a.weight", pre));
    v4_fp8(L, V4_E, V4_G * V4_OL, N("%sattn.wo_b.weight", pre));
    static const char *const HC[2] = {"attn", "ffn"};
    for (int k = 0; k < 2; k++) {
        v4_dense(L, D_F32, sqrtf(3.0f / (V4_HC * V4_E)), 0.0f, mix, V4_HC * V4_E, N("%shc_%s_fn", pre, HC[k]));
        v4_dense(L, D_F32, 0.5f, 0.0f, mix, 0, N("%shc_%s_base", pre, HC[k]));
        v4_dense(L, D_F32, 0.25f, 0.75f, 3, 0, N("%shc_%s_scale", pre, HC[k]));
    }
    if (ratio) {
        const int coff = ratio == 4 ? 2 : 1;
        v4_dense(L, D_BF16, a, 0.0f, coff * V4_D, V4_E, N("%sattn.compressor.wkv.weight", pre));
        v4_dense(L, D_BF16, a, 0.0f, coff * V4_D, V4_E, N("%sattn.compressor.wgate.weight", pre));
        v4_dense(L, D_F32, 0.1f, 0.0f, ratio, coff * V4_D, N("%sattn.compressor.ape", pre));
        v4_dense(L, D_BF16, 0.2f, 1.0f, V4_D, 0, N("%sattn.compressor.norm.weight", pre));
    }
    if (ratio == 4) {
        v4_fp8(L, V4_IH * V4_ID, V4_QL, N("%sattn.indexer.wq_b.weight", pre));
        v4_dense(L, D_BF16, a, 0.0f, V4_IH, V4_E, N("%sattn.indexer.weights_proj.weight", pre));
        v4_dense(L, D_BF16, a, 0.0f, 2 * V4_ID, V4_E, N("%sattn.indexer.compressor.wkv.weight", pre));
        v4_dense(L, D_BF16, a, 0.0f, 2 * V4_ID, V4_E, N("%sattn.indexer.compressor.wgate.weight", pre));
        v4_dense(L, D_F32, 0.1f, 0.0f, 4, 2 * V4_ID, N("%sattn.indexer.compressor.ape", pre));
        v4_dense(L, D_BF16, 0.2f, 1.0f, V4_ID, 0, N("%sattn.indexer.compressor.norm.weight", pre));
    }
    v4_dense(L, D_BF16, 3.0f * a, 0.0f, V4_NE, V4_E, N("%sffn.gate.weight", pre));
    v4_dense(L, D_F32, 0.1f, 0.0f, V4_NE, 0, N("%sffn.gate.bias", pre));
    if (hash) { /* two distinct experts per token id */
        v4_tensor *t = v4_new(L, D_I64, L->p->vocab, V4_NU, 8, N("%sffn.gate.tid2eid", pre));
        uint64_t s = name_seed(L->p->seed, t->name);
        for (int64_t i = 0; i < L->p->vocab; i++) {
            int64_t e0 = (int64_t)(splitmix(&s) % V4_NE), e1 = (e0 + 1 + (int64_t)(splitmix(&s) % (V4_NE - 1))) % V4_NE;
            memcpy(t->data + 16 * i, &e0, 8);
            memcpy(t->data + 16 * i + 8, &e1, 8);
        }
    }
    v4_dense(L, D_BF16, 0.2f, 1.0f, V4_E, 0, N("%sffn_norm.weight", pre));
    for (int e = 0; e < V4_NE; e++) {
        char sn[96];
        static const char *const W[3] = {"w1", "w2", "w3"};
        for (int k = 0; k < 3; k++) {
            snprintf(sn, sizeof sn, "%sffn.experts.%d.%s.scale", pre, e, W[k]);
            if (k == 1) v4_fp4(L, V4_E, V4_FF, N("%sffn.experts.%d.%s.weight", pre, e, W[k]), sn);
            else v4_fp4(L, V4_FF, V4_E, N("%sffn.experts.%d.%s.weight", pre, e, W[k]), sn);
        }
    }
    v4_fp8(L, V4_FF, V4_E, N("%sffn.shared_experts.w1.weight", pre));
    v4_fp8(L, V4_E, V4_FF, N("%sffn.shared_experts.w2.weight", pre));
    v4_fp8(L, V4_FF, V4_E, N("%sffn.shared_experts.w3.weight", pre));
#undef N
}

static void v4_head(v4_list *L, const char *pre) {
    char n[96];
    snprintf(n, sizeof n, "%shc_head_fn", pre);
    v4_dense(L, D_F32, sqrtf(3.0f / (V4_HC * V4_E)), 0.0f, V4_HC, V4_HC * V4_E, n);
    snprintf(n, sizeof n, "%shc_head_base", pre);
    v4_dense(L, D_F32, 0.5f, 0.0f, V4_HC, 0, n);
    snprintf(n, sizeof n, "%shc_head_scale", pre);
    v4_dense(L, D_F32, 0.25f, 0.75f, 1, 0, n);
}

static int v4_by_name(const void *a, const void *b) {
    return strcmp(((const v4_tensor *)a)->name, ((const v4_tensor *)b)->name);
}

/* Tensor i of the V4 list: its bytes, made as it was added. */
static int emit_v4(void *arg, size_t i, FILE *fp) {
    const v4_tensor *t = (const v4_tensor *)arg + i;
    return fwrite(t->data, 1, t->n_bytes, fp) == t->n_bytes ? 0 : -1;
}

static int write_v4_safetensors(const preset *p, const char *path) {
    v4_list L = {.p = p};
    char pre[32];
    v4_dense(&L, D_BF16, 1.0f, 0.0f, p->vocab, V4_E, "embed.weight");
    for (int il = 0; il < V4_LAYERS; il++) {
        snprintf(pre, sizeof pre, "layers.%d.", il);
        v4_block(&L, pre, V4_RATIOS[il], il < V4_HASH);
    }
    v4_dense(&L, D_BF16, 0.2f, 1.0f, V4_E, 0, "norm.weight");
    v4_dense(&L, D_BF16, 3.0f * sqrtf(3.0f / V4_E), 0.0f, p->vocab, V4_E, "head.weight");
    v4_head(&L, "");
    /* the MTP block, as DeepSeek's checkpoints name it */
    v4_block(&L, "mtp.0.", V4_RATIOS[V4_LAYERS], 0);
    v4_fp8(&L, V4_E, V4_E, "mtp.0.e_proj.weight");
    v4_fp8(&L, V4_E, V4_E, "mtp.0.h_proj.weight");
    v4_dense(&L, D_BF16, 0.2f, 1.0f, V4_E, 0, "mtp.0.enorm.weight");
    v4_dense(&L, D_BF16, 0.2f, 1.0f, V4_E, 0, "mtp.0.hnorm.weight");
    v4_dense(&L, D_BF16, 0.2f, 1.0f, V4_E, 0, "mtp.0.norm.weight");
    v4_head(&L, "mtp.0.");
    qsort(L.t, L.n, sizeof *L.t, v4_by_name);
    st_entry *e = calloc(L.n ? L.n : 1, sizeof *e);
    int rc = e ? 0 : die("out of memory");
    for (size_t i = 0; e && i < L.n; i++)
        e[i] = (st_entry){L.t[i].name, V4_DTYPE_NAME[L.t[i].dt], L.t[i].n_dims, L.t[i].shape, L.t[i].n_bytes};
    if (e) rc = write_st(path, e, L.n, emit_v4, L.t);
    for (size_t i = 0; i < L.n; i++) free(L.t[i].data);
    free(e);
    free(L.t);
    return rc;
}

static int write_v4_config(const preset *p, const char *out, int bos, int eos) {
    cJSON *c = cJSON_CreateObject(), *arch = cJSON_CreateArray(), *rs = cJSON_CreateObject(), *q = cJSON_CreateObject();
    cJSON_AddItemToArray(arch, cJSON_CreateString(p->hf_arch));
    cJSON_AddItemToObject(c, "architectures", arch);
    num(c, "bos_token_id", bos);
    cJSON_AddItemToObject(c, "compress_ratios", cJSON_CreateIntArray(V4_RATIOS, V4_LAYERS + 1));
    num(c, "compress_rope_theta", 160000);
    num(c, "eos_token_id", eos);
    num(c, "hc_eps", 1e-6);
    num(c, "hc_mult", V4_HC);
    num(c, "hc_sinkhorn_iters", 20);
    num(c, "head_dim", V4_D);
    str(c, "hidden_act", "silu");
    num(c, "hidden_size", V4_E);
    num(c, "index_head_dim", V4_ID);
    num(c, "index_n_heads", V4_IH);
    num(c, "index_topk", 16);
    num(c, "max_position_embeddings", 1048576);
    str(c, "model_type", p->model_type);
    num(c, "moe_intermediate_size", V4_FF);
    num(c, "n_routed_experts", V4_NE);
    num(c, "n_shared_experts", 1);
    flag(c, "norm_topk_prob", 1);
    num(c, "num_attention_heads", V4_H);
    num(c, "num_experts_per_tok", V4_NU);
    num(c, "num_hash_layers", V4_HASH);
    num(c, "num_hidden_layers", V4_LAYERS);
    num(c, "num_key_value_heads", 1);
    num(c, "num_nextn_predict_layers", 1);
    num(c, "o_groups", V4_G);
    num(c, "o_lora_rank", V4_OL);
    num(c, "q_lora_rank", V4_QL);
    num(c, "qk_rope_head_dim", V4_ROPE);
    str(q, "activation_scheme", "dynamic");
    str(q, "fmt", "e4m3");
    str(q, "quant_method", "fp8");
    str(q, "scale_fmt", "ue8m0");
    const int bs[2] = {128, 128};
    cJSON_AddItemToObject(q, "weight_block_size", cJSON_CreateIntArray(bs, 2));
    cJSON_AddItemToObject(c, "quantization_config", q);
    num(c, "rms_norm_eps", 1e-6);
    num(rs, "beta_fast", 32);
    num(rs, "beta_slow", 1);
    num(rs, "factor", 16);
    num(rs, "original_max_position_embeddings", 65536);
    str(rs, "type", "yarn");
    cJSON_AddItemToObject(c, "rope_scaling", rs);
    num(c, "rope_theta", 10000);
    num(c, "routed_scaling_factor", 1.5);
    str(c, "scoring_func", "sqrtsoftplus");
    num(c, "sliding_window", 16);
    num(c, "swiglu_limit", 7.5); /* not integral: JSON's 10 would be read back as an int */
    flag(c, "tie_word_embeddings", 0);
    str(c, "topk_method", "noaux_tc");
    str(c, "torch_dtype", "bfloat16");
    str(c, "transformers_version", "4.57.1");
    num(c, "vocab_size", p->vocab);
    char *json = cJSON_Print(c);
    int rc = json ? write_text(path_in(out, "config.json"), json) : die("out of memory");
    free(json);
    cJSON_Delete(c);
    return rc;
}

static int write_v4(const preset *p, const char *out, int bos, int eos) {
    return write_v4_config(p, out, bos, eos) || write_generation_config(p, out, bos, eos) ||
                   write_v4_safetensors(p, path_in(out, "model.safetensors"))
               ? 1
               : 0;
}

int main(int argc, char **argv) {
    const preset *p = NULL;
    for (size_t i = 0; argc == 4 && i < sizeof PRESETS / sizeof PRESETS[0]; i++) {
        if (strcmp(argv[1], PRESETS[i].name) == 0) p = &PRESETS[i];
    }
    if (!p) return die("usage: hfgen qwen2|llama|qwen3|deepseek|deepseek-v4 OUT_DIR TOKENIZER_DIR") + 1;
    if (mkdir(argv[2], 0755) != 0 && errno != EEXIST) return die("%s: cannot create: %s", argv[2], strerror(errno));
    int n_ids = 0, bos = -1, eos = -1;
    if (strcmp(p->name, "deepseek-v4") == 0)
        return write_tokenizer(p, argv[3], argv[2], &n_ids, &bos, &eos) || write_v4(p, argv[2], bos, eos);
    if (write_tokenizer(p, argv[3], argv[2], &n_ids, &bos, &eos) || write_config(p, argv[2], bos, eos) ||
        write_generation_config(p, argv[2], bos, eos) ||
        write_safetensors(p, p->vocab, path_in(argv[2], "model.safetensors")))
        return 1;
    return 0;
}
