/* deepseek-convert: a Hugging Face checkpoint folder -> the GGUF llama.cpp's converter writes
   for it: DeepSeek-V2/V3 -> deepseek2, DeepSeek-V3.2 (model_type deepseek_v32) -> deepseek32,
   and (convert_dense.c) Qwen2 -> qwen2, Llama -> llama, Qwen3 -> qwen3, DeepSeek-MoE ->
   deepseek: the R1 distills and the older DeepSeek models.

   Writes what llama.cpp's converter (conversion/deepseek.py, DeepseekV2Model) writes, so that
   llama.cpp and this project load the same files: the same tensor names and ggml shapes, the
   kv_b split into attn_k_b (transposed) + attn_v_b, experts stacked per layer, router / norms /
   biases in F32, and its metadata keys. Differences, each deliberate: q_lora_rank is written as
   0 when the config has null (llama.cpp refuses such files otherwise), the MTP layer is kept
   under llama.cpp's nextn names (its deepseek2 loader accepts it), and tokenizer.ggml.pre is
   chosen from the pre-tokenizer regexes instead of a hash of a test encoding.

   V3.2 is V3 plus DeepSeek Sparse Attention, as DeepseekV32Model writes it: every deepseek2 key
   under deepseek32, the indexer's attention.indexer.{head_count, key_length, top_k}, and in
   every layer, the MTP layer too, blk.N.indexer.{attn_q_b, attn_k, k_norm (weight and bias),
   proj}: k_norm always F32, proj F32 in float files as llama.cpp's converter keeps it. Its
   deepseek32 loader needs the split MLA layout; --mla legacy still writes attn_kv_b, for this
   project's runtime only.

   The architecture is the one config.json's architectures[0] names, as llama.cpp's converter
   picks its class (model_type where a config has no architectures); each is a conv_arch
   (convert.h) with its own config, tensor and metadata functions.

   Tensors are streamed: all are declared from the safetensors headers, then each is produced
   and written in turn, so memory holds one output tensor plus a small decode buffer.

   --outtype may also name a llama.cpp file type (q8_0, q4_k_m, ...): the weights are then
   quantized on the way, with the type rules and quantizers deepseek-quantize uses (qmix.c), in
   llama.cpp's tensor order and with its metadata order, so the file equals converting to f32
   and running deepseek-quantize (or llama-quantize) on that, byte for byte. */
/* stat, isatty, unlink: POSIX, not C11 (meson passes this too). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "args.h"
#include "convert.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERR_LEN CONV_ERR_LEN
#define fail conv_fail
#define NAME_LEN CONV_NAME_LEN
#define MAX_NE CONV_MAX_NE
#define NO_DEFAULT CONV_NO_DEFAULT
/* Elements decoded per step: bounds the scratch buffer, not the output tensor. */
#define CHUNK_ELEMS ((size_t)1 << 20)

enum { TOKEN_NORMAL = 1, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4, TOKEN_UNUSED = 5 };

/* ================================================================== options */

static void usage(FILE *fp) {
    fputs("usage: deepseek-convert HF_DIR -o OUT.gguf [--outtype TYPE] [--tokenizer DIR]\n"
          "                        [--mla split|legacy] [--no-mtp | --mtp] [--name NAME]\n"
          "                        [--tokenizer-pre NAME] [--vocab-only] [-t N]\n"
          "  HF_DIR          config.json + model.safetensors (or the index and its shards,\n"
          "                  or every *.safetensors) of DeepSeek-V2, V3 / R1 (deepseek2 GGUF),\n"
          "                  V3.2 (deepseek32 GGUF, with its indexer), DeepSeek-MoE (deepseek),\n"
          "                  or the R1 distills and DeepSeek LLM / Coder: Qwen2ForCausalLM (qwen2),\n"
          "                  Qwen3ForCausalLM (qwen3), LlamaForCausalLM (llama)\n"
          "  --outtype       storage of 2-D/3-D weights (default f32); norms, router, biases\n"
          "                  stay F32, and so does V3.2's indexer proj in f16/bf16 files, as\n"
          "                  llama.cpp writes them. f32, f16, bf16, or a llama.cpp file type,\n"
          "                  quantized with llama.cpp's mix rules as deepseek-quantize does\n"
          "                  (q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_s, q3_k_m, q3_k_l, q4_k_s,\n"
          "                  q4_k_m, q5_k_s, q5_k_m, q6_k, iq4_nl, iq4_xs); types that need an\n"
          "                  importance matrix are made by deepseek-quantize --imatrix\n"
          "  -t, --threads   threads for quantizing (default: physical cores)\n"
          "  --tokenizer     folder with tokenizer.json (+ tokenizer_config.json); default HF_DIR\n"
          "  --mla           (DeepSeek-V2/V3/V3.2) split: attn_k_b + attn_v_b as current llama.cpp\n"
          "                  writes (default);\n"
          "                  legacy: the fused attn_kv_b of older files (for V3.2, whose deepseek32\n"
          "                  files llama.cpp loads only split, a layout for this project's runtime)\n"
          "  --no-mtp        drop the multi-token-prediction layer (kept by default, as llama.cpp\n"
          "                  names it: blk.N.nextn.*)\n"
          "  --name          general.name (default: the folder's name)\n"
          "  --tokenizer-pre write this tokenizer.ggml.pre (llama.cpp's pre-tokenizer name)\n"
          "                  instead of detecting deepseek-v3 / deepseek-llm from the regexes\n"
          "  --vocab-only    write only the tokenizer (and the hyper-parameters when HF_DIR has a\n"
          "                  config.json): a small GGUF that deepseek and deepseek-tokenize load\n"
          "                  for tokenizing; HF_DIR may then be just a tokenizer folder\n"
          "  -h, --help      this help\n"
          "  --version       the version\n",
          fp);
}

/* A quantized file type; those needing an importance matrix are left to deepseek-quantize. */
static void parse_mix(args_it *it, const char *s, options *o) {
    char msg[256];
    const qmix_ftype *ft = qmix_find_ftype(s, msg, sizeof msg);
    if (!ft) {
        args_fail(it, "--outtype: %s (f32, f16, bf16, q8_0, q4_k_m, ...; see %s --help)", msg, it->prog);
        return;
    }
    if (ft->needs_imatrix) {
        args_fail(it,
                  "--outtype %s needs an importance matrix: convert to bf16 or f32, then run deepseek-quantize "
                  "--imatrix FILE",
                  s);
        return;
    }
    if (qmix_is_float(ft->base)) {
        o->wtype = ft->base;
        o->file_type = ft->ftype;
        return;
    }
    o->mix = ft;
    o->wtype = DS_TYPE_F32; /* the plan's starting point: quantized from float32 */
    o->file_type = ft->ftype;
}

static int parse_outtype(const char *s, options *o) {
    static const struct {
        const char *name;
        ds_type type;
        uint32_t ftype; /* llama_ftype */
    } T[] = {{"f32", DS_TYPE_F32, 0}, {"f16", DS_TYPE_F16, 1}, {"bf16", DS_TYPE_BF16, 32}};
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        if (strcmp(s, T[i].name) == 0) {
            o->wtype = T[i].type;
            o->file_type = T[i].ftype;
            return 0;
        }
    }
    return -1;
}

/* 1 when opt is an option with a value (taken, or the mistake reported). */
static int parse_value_opt(args_it *it, const char *opt, options *o) {
    const char *v;
    if (args_is(opt, "-o|--outfile")) o->out_path = args_value(it);
    else if (args_is(opt, "--tokenizer")) o->tok_dir = args_value(it);
    else if (args_is(opt, "--name")) o->name = args_value(it);
    else if (args_is(opt, "--tokenizer-pre")) o->tok_pre = args_value(it);
    else if (args_is(opt, "-t|--threads")) args_value_int(it, 1, 256, &o->threads);
    else if (args_is(opt, "--outtype")) {
        if ((v = args_value(it)) && parse_outtype(v, o) != 0) parse_mix(it, v, o);
    } else if (args_is(opt, "--mla")) {
        if ((v = args_value(it)) && !args_is(v, "split|legacy")) args_fail(it, "--mla: '%s' is not split or legacy", v);
        o->mla_split = v && strcmp(v, "split") == 0;
    } else return 0;
    return 1;
}

/* Mistakes are reported on stderr here, not through an error buffer. */
static int parse_args(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->wtype = DS_TYPE_F32;
    o->mla_split = 1;
    o->mtp = 1;
    o->threads = ds_physical_cores();
    args_it it = args_begin("deepseek-convert", argc, argv);
    for (const char *a; (a = args_next(&it));) {
        if (args_help_version(&it, a, usage, 0) || parse_value_opt(&it, a, o)) continue;
        if (args_is(a, "--vocab-only")) o->vocab_only = 1;
        else if (args_is(a, "--no-mtp|--mtp")) o->mtp = strcmp(a, "--mtp") == 0;
        else if ((a[0] != '-' || !a[1]) && !o->hf_dir) o->hf_dir = a;
        else args_unknown(&it);
    }
    if (it.failed) return -1;
    if (!o->hf_dir || !o->out_path) return args_fail(&it, "need HF_DIR and -o OUT.gguf (see %s --help)", it.prog);
    if (o->tok_pre && !o->tok_pre[0])
        return args_fail(&it, "--tokenizer-pre needs a name such as deepseek-v3 or deepseek-llm");
    return 0;
}

/* ================================================================== small helpers */

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    while (a > 1 && dir[a - 1] == '/') a--;
    char *p = malloc(a + b + 2);
    if (p) snprintf(p, a + b + 2, "%.*s/%s", (int)a, dir, name);
    return p;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Whole file as a NUL-terminated string; NULL with err set on failure. */
static char *read_file(const char *path, char *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    long len = -1;
    if (fseek(fp, 0, SEEK_END) == 0 && (len = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0)
        buf = malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, fp) != (size_t)len) {
        fail(err, "%s: cannot read%s", path, buf ? "" : " (or out of memory)");
        free(buf);
        buf = NULL;
    } else {
        buf[len] = '\0';
    }
    fclose(fp);
    return buf;
}

static cJSON *read_json(const char *path, char *err) {
    char *text = read_file(path, err);
    if (!text) return NULL;
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= text ? (long)(at - text) : 0;
        fail(err, "%s: invalid JSON near byte offset %ld", path, off);
    }
    free(text);
    return root;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* ================================================================== config.json */

static const char *const SPECIAL_TYPES[7] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};

int conv_cfg_int(const cJSON *o, const char *path, const char *key, int64_t lo, int64_t hi, int64_t dflt, int64_t *out,
                 char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (dflt == NO_DEFAULT) return fail(err, "%s: '%s' is missing", path, key);
        *out = dflt;
        return 0;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= (double)lo && d <= (double)hi) || floor(d) != d)
        return fail(err, "%s: '%s' must be an integer in [%lld, %lld]", path, key, (long long)lo, (long long)hi);
    *out = (int64_t)d;
    return 0;
}

int conv_cfg_num(const cJSON *o, const char *path, const char *key, opt_f64 *out, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    out->set = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return fail(err, "%s: '%s' must be a number", path, key);
    out->set = 1;
    out->v = v->valuedouble;
    return 0;
}

int conv_json_true(const cJSON *o, const char *key) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key)); }

/* ---- DeepSeek-V2 / V3 / V3.2 ---- */

static int v2_read(const cJSON *root, const char *path, config *c, char *err);
static int v2_need(const plan *p, int64_t il, int s);
static int v2_shape(const config *c, int s, int64_t *sh);
static void v2_meta(ds_gguf_writer *w, const options *o, const config *c, const plan *p);

static const conv_arch DEEPSEEK2 = {
    "DeepseekV3ForCausalLM", "deepseek_v3", "deepseek2", v2_read, v2_need, v2_shape, v2_meta, 1, 0};
static const conv_arch DEEPSEEK32 = {
    "DeepseekV32ForCausalLM", "deepseek_v32", "deepseek32", v2_read, v2_need, v2_shape, v2_meta, 1, 0};

/* The architectures llama.cpp's converter would pick for architectures[0]. DeepSeek-V2/V3/V3.2
   share a class there and are told apart by model_type here (cfg_deepseek_v2). */
static const conv_arch *const OTHER_ARCHS[] = {&conv_qwen2, &conv_llama, &conv_qwen3, &conv_deepseek, &conv_deepseek4};

/* llama.cpp picks its converter by architectures[0], this tool V2/V3 against V3.2 by model_type:
   a config where the two disagree about V3.2 would be written as a model it is not. */
static int cfg_architectures(const cJSON *root, const char *path, const config *c, char *err) {
    static const char *const V32 = "DeepseekV32ForCausalLM";
    const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "architectures"), 0);
    if (!cJSON_IsString(a)) return 0;
    int says_v32 = strcmp(a->valuestring, V32) == 0;
    int says_older =
        strcmp(a->valuestring, "DeepseekV2ForCausalLM") == 0 || strcmp(a->valuestring, "DeepseekV3ForCausalLM") == 0;
    if ((says_v32 && !c->v32) || (says_older && c->v32))
        return fail(err, "%s: 'architectures' names %s but 'model_type' is %s", path, a->valuestring,
                    c->v32 ? "deepseek_v32" : "not deepseek_v32");
    return 0;
}

static int cfg_deepseek_v2(const cJSON *root, const char *path, config *c, char *err) {
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const char *t = cJSON_IsString(mt) ? mt->valuestring : NULL;
    if (!t) return fail(err, "%s: 'model_type' is missing", path);
    c->v32 = strcmp(t, "deepseek_v32") == 0;
    if (!c->v32 && strcmp(t, "deepseek_v2") != 0 && strcmp(t, "deepseek_v3") != 0)
        return fail(err,
                    "%s: model_type '%s' is not supported (deepseek_v2, deepseek_v3, deepseek_v32, or the "
                    "architectures Qwen2ForCausalLM, LlamaForCausalLM, Qwen3ForCausalLM, DeepseekForCausalLM)",
                    path, t);
    c->arch = c->v32 ? &DEEPSEEK32 : &DEEPSEEK2;
    return cfg_architectures(root, path, c, err);
}

/* architectures[0] when it names one of OTHER_ARCHS (model_type when there is no architectures),
   else DeepSeek-V2/V3/V3.2 by model_type. */
static int cfg_arch(const cJSON *root, const char *path, config *c, char *err) {
    const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "architectures"), 0);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    for (size_t i = 0; i < sizeof OTHER_ARCHS / sizeof OTHER_ARCHS[0]; i++) {
        const conv_arch *x = OTHER_ARCHS[i];
        if (cJSON_IsString(a) ? strcmp(a->valuestring, x->hf) == 0
                              : cJSON_IsString(mt) && strcmp(mt->valuestring, x->model_type) == 0) {
            c->arch = x;
            return 0;
        }
    }
    return cfg_deepseek_v2(root, path, c, err);
}

static int cfg_dims(const cJSON *r, const char *p, config *c, char *err) {
    const int64_t BIG = UINT32_MAX;
    if (conv_cfg_int(r, p, "num_hidden_layers", 1, 4096, NO_DEFAULT, &c->n_layer, err) ||
        conv_cfg_int(r, p, "max_position_embeddings", 1, BIG, NO_DEFAULT, &c->n_ctx, err) ||
        conv_cfg_int(r, p, "hidden_size", 1, 1 << 20, NO_DEFAULT, &c->n_embd, err) ||
        conv_cfg_int(r, p, "intermediate_size", 1, 1 << 24, NO_DEFAULT, &c->n_ff, err) ||
        conv_cfg_int(r, p, "num_attention_heads", 1, 1 << 16, NO_DEFAULT, &c->n_head, err) ||
        conv_cfg_int(r, p, "q_lora_rank", 0, 1 << 20, 0, &c->q_lora, err) ||
        conv_cfg_int(r, p, "kv_lora_rank", 1, 1 << 20, 512, &c->kv_lora, err) ||
        conv_cfg_int(r, p, "qk_nope_head_dim", 1, 1 << 16, NO_DEFAULT, &c->nope, err) ||
        conv_cfg_int(r, p, "qk_rope_head_dim", 1, 1 << 16, NO_DEFAULT, &c->rope, err) ||
        conv_cfg_int(r, p, "v_head_dim", 1, 1 << 16, NO_DEFAULT, &c->vdim, err) ||
        conv_cfg_int(r, p, "vocab_size", 1, INT32_MAX, NO_DEFAULT, &c->n_vocab, err))
        return -1;
    return 0;
}

/* DeepSeek Sparse Attention's lightning indexer (V3.2). Its query is projected from the MLA
   query latent, and llama.cpp ropes the first qk_rope_head_dim values of each indexer head. */
static int cfg_indexer(const cJSON *r, const char *p, config *c, char *err) {
    if (!c->v32) return 0;
    if (conv_cfg_int(r, p, "index_n_heads", 1, 1 << 16, NO_DEFAULT, &c->idx_heads, err) ||
        conv_cfg_int(r, p, "index_head_dim", 1, 1 << 16, NO_DEFAULT, &c->idx_dim, err) ||
        conv_cfg_int(r, p, "index_topk", 1, UINT32_MAX, NO_DEFAULT, &c->idx_topk, err))
        return -1;
    if (c->q_lora == 0)
        return fail(
            err, "%s: 'q_lora_rank' must be > 0 for deepseek_v32 (the indexer's query comes from the query latent)", p);
    if (c->idx_dim < c->rope)
        return fail(err,
                    "%s: 'index_head_dim' %lld is smaller than qk_rope_head_dim %lld (the indexer ropes that many)", p,
                    (long long)c->idx_dim, (long long)c->rope);
    return 0;
}

int conv_cfg_gating(const cJSON *r, const char *p, config *c, char *err) {
    const cJSON *sf = cJSON_GetObjectItemCaseSensitive(r, "scoring_func");
    c->gating = 0;
    if (!sf || cJSON_IsNull(sf)) return 0;
    if (cJSON_IsString(sf) && strcmp(sf->valuestring, "softmax") == 0) c->gating = 1;
    else if (cJSON_IsString(sf) && strcmp(sf->valuestring, "sigmoid") == 0) c->gating = 2;
    else return fail(err, "%s: scoring_func must be softmax or sigmoid", p);
    return 0;
}

static void warn_group_rule(const cJSON *r, const config *c) {
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(r, "topk_method");
    if (c->n_group > 1 && cJSON_IsString(tm) && strcmp(tm->valuestring, "noaux_tc") != 0)
        fprintf(stderr,
                "deepseek-convert: warning: topk_method '%s' with n_group %lld: llama.cpp scores "
                "groups by the sum of their two best experts (noaux_tc), so its routing differs\n",
                tm->valuestring, (long long)c->n_group);
}

static int cfg_moe(const cJSON *r, const char *p, config *c, char *err) {
    int64_t freq = 1;
    if (conv_cfg_int(r, p, "n_routed_experts", 0, 1 << 16, 0, &c->n_expert, err) ||
        conv_cfg_int(r, p, "num_experts_per_tok", 0, 1 << 16, -1, &c->n_expert_used, err) ||
        conv_cfg_int(r, p, "n_group", 0, 1 << 16, -1, &c->n_group, err) ||
        conv_cfg_int(r, p, "topk_group", 0, 1 << 16, -1, &c->topk_group, err) ||
        conv_cfg_int(r, p, "n_shared_experts", 0, 1 << 16, 0, &c->n_shared, err) ||
        conv_cfg_int(r, p, "moe_intermediate_size", 1, 1 << 24, c->n_ff, &c->n_ff_exp, err) ||
        conv_cfg_int(r, p, "first_k_dense_replace", 0, c->n_layer, c->n_expert ? 0 : c->n_layer, &c->n_dense, err) ||
        conv_cfg_int(r, p, "moe_layer_freq", 1, 1 << 16, 1, &freq, err) ||
        conv_cfg_int(r, p, "num_nextn_predict_layers", 0, 64, 0, &c->n_nextn, err) ||
        conv_cfg_num(r, p, "routed_scaling_factor", &c->routed_scale, err) || conv_cfg_gating(r, p, c, err))
        return -1;
    if (freq != 1 && c->n_expert > 0)
        return fail(err, "%s: moe_layer_freq %lld is not supported (llama.cpp assumes 1)", p, (long long)freq);
    if (c->n_expert > 0 && (c->n_expert_used < 1 || c->n_expert_used > c->n_expert))
        return fail(err, "%s: num_experts_per_tok must be in [1, n_routed_experts]", p);
    c->norm_topk = conv_json_true(r, "norm_topk_prob");
    warn_group_rule(r, c);
    return 0;
}

static int rope_type(const cJSON *rs, const char *p, config *c, char *err) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(rs, "type");
    c->scaling = ROPE_NONE;
    if (!cJSON_IsString(t) || strcmp(t->valuestring, "default") == 0) return 0;
    if (strcmp(t->valuestring, "yarn") == 0) c->scaling = ROPE_YARN;
    else if (strcmp(t->valuestring, "linear") == 0) c->scaling = ROPE_LINEAR;
    else if (strcasecmp(t->valuestring, "llama3") == 0) c->scaling = ROPE_LLAMA3;
    else return fail(err, "%s: rope_scaling type '%s' is not supported", p, t->valuestring);
    return 0;
}

/* llama3: the frequency factors rope_freqs holds, from these (with llama.cpp's defaults) */
static int rope_llama3(const cJSON *rs, const char *p, config *c, char *err) {
    if (conv_cfg_num(rs, p, "low_freq_factor", &c->low_freq, err) ||
        conv_cfg_num(rs, p, "high_freq_factor", &c->high_freq, err) ||
        conv_cfg_int(rs, p, "original_max_position_embeddings", 1, UINT32_MAX, 8192, &c->orig_ctx, err))
        return -1;
    if (!c->factor.set) c->factor = (opt_f64){1, 8.0};
    if (!c->low_freq.set) c->low_freq = (opt_f64){1, 1.0};
    if (!c->high_freq.set) c->high_freq = (opt_f64){1, 4.0};
    if (c->low_freq.v == c->high_freq.v)
        return fail(err,
                    "%s: rope_scaling low_freq_factor equals high_freq_factor (the factors divide by their difference)",
                    p);
    return 0;
}

int conv_cfg_rope(const cJSON *r, const char *p, config *c, char *err) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(r, "rope_parameters");
    if (!cJSON_IsObject(rs)) rs = cJSON_GetObjectItemCaseSensitive(r, "rope_scaling");
    if (conv_cfg_num(r, p, "rope_theta", &c->rope_theta, err) != 0) return -1;
    if (!cJSON_IsObject(rs)) {
        c->scaling = ROPE_NONE;
        return 0;
    }
    if (rope_type(rs, p, c, err) || conv_cfg_num(rs, p, "factor", &c->factor, err) ||
        conv_cfg_num(rs, p, "extrapolation_factor", &c->yarn_ext, err) ||
        conv_cfg_num(rs, p, "beta_fast", &c->beta_fast, err) || conv_cfg_num(rs, p, "beta_slow", &c->beta_slow, err) ||
        conv_cfg_num(rs, p, "mscale_all_dim", &c->mscale_all, err) ||
        conv_cfg_num(rs, p, "attention_factor", &c->yarn_attn, err))
        return -1;
    if (!c->yarn_attn.set && conv_cfg_num(rs, p, "attn_factor", &c->yarn_attn, err) != 0) return -1;
    if (!c->rope_theta.set && conv_cfg_num(rs, p, "rope_theta", &c->rope_theta, err) != 0) return -1;
    if (c->scaling == ROPE_LLAMA3) return rope_llama3(rs, p, c, err);
    if (c->scaling && !c->factor.set)
        c->scaling = ROPE_NONE; /* llama.cpp's converter writes no scaling without a factor */
    if (c->scaling == ROPE_YARN &&
        conv_cfg_int(rs, p, "original_max_position_embeddings", 1, UINT32_MAX, NO_DEFAULT, &c->orig_ctx, err) != 0)
        return -1;
    return 0;
}

/* quantization_config.KEY, when present, is WANT: DeepSeek's FP8 release (V3, R1, V3.1, V3.2). Its
   weights are decoded from their safetensors dtype and weight_scale_inv, so another method or
   format would be read as something it is not. */
static int cfg_quant_str(const cJSON *q, const char *p, const char *key, const char *want, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(q, key);
    if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && strcmp(v->valuestring, want) == 0)) return 0;
    return fail(err, "%s: quantization_config.%s is %s%s%s, not supported (only '%s': FP8 with block scales)", p, key,
                cJSON_IsString(v) ? "'" : "", cJSON_IsString(v) ? v->valuestring : "not a string",
                cJSON_IsString(v) ? "'" : "", want);
}

static int cfg_block(const cJSON *r, const char *p, config *c, char *err) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(r, "quantization_config");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(q, "weight_block_size");
    c->block_o = c->block_i = 128;
    /* scale_fmt ue8m0 (V3.1 on) says the scales are powers of two: still float32 multipliers here */
    if (cfg_quant_str(q, p, "quant_method", "fp8", err) || cfg_quant_str(q, p, "fmt", "e4m3", err) ||
        cfg_quant_str(q, p, "scale_fmt", "ue8m0", err))
        return -1;
    if (!b || cJSON_IsNull(b)) return 0;
    const cJSON *b0 = cJSON_GetArrayItem(b, 0), *b1 = cJSON_GetArrayItem(b, 1);
    if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 2 || !cJSON_IsNumber(b0) || !cJSON_IsNumber(b1) ||
        b0->valuedouble < 1 || b1->valuedouble < 1 || b0->valuedouble > 1 << 20 || b1->valuedouble > 1 << 20 ||
        floor(b0->valuedouble) != b0->valuedouble || floor(b1->valuedouble) != b1->valuedouble)
        return fail(err, "%s: quantization_config.weight_block_size must be two positive integers", p);
    c->block_o = (int64_t)b0->valuedouble;
    c->block_i = (int64_t)b1->valuedouble;
    return 0;
}

static int cfg_special(const cJSON *r, const char *p, config *c, char *err) {
    for (int i = 0; i < 7; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s_token_id", SPECIAL_TYPES[i]);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
        c->special_id[i] = -1;
        if (cJSON_IsNumber(v) && (v->valuedouble < 0 || floor(v->valuedouble) != v->valuedouble))
            return fail(err, "%s: '%s' must be a non-negative integer", p, key);
        if (cJSON_IsNumber(v) && v->valuedouble <= INT32_MAX) c->special_id[i] = (int64_t)v->valuedouble;
    }
    return 0;
}

static int v2_read(const cJSON *root, const char *path, config *c, char *err) {
    if (cfg_dims(root, path, c, err) || cfg_indexer(root, path, c, err) || cfg_moe(root, path, c, err) ||
        conv_cfg_rope(root, path, c, err))
        return -1;
    if (c->scaling == ROPE_LLAMA3)
        return fail(err, "%s: rope_scaling type 'llama3' is not supported for DeepSeek-V2/V3", path);
    c->n_head_kv = c->n_head;
    c->tie = conv_json_true(root, "tie_word_embeddings");
    return 0;
}

/* generation_config.json, when there is one: the sampling defaults gguf-py's Metadata reads. */
static int read_sampling(const char *hf_dir, sampling *s, char *err) {
    char *path = join_path(hf_dir, "generation_config.json");
    cJSON *g = NULL;
    int rc = path ? 0 : fail(err, "out of memory");
    if (rc == 0 && file_exists(path) && !(g = read_json(path, err))) rc = -1;
    if (rc == 0 && g) {
        s->top_k_set = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(g, "top_k"));
        rc = conv_cfg_int(g, path, "top_k", INT32_MIN, INT32_MAX, 0, &s->top_k, err) ||
                     conv_cfg_num(g, path, "top_p", &s->top_p, err) || conv_cfg_num(g, path, "min_p", &s->min_p, err) ||
                     conv_cfg_num(g, path, "temperature", &s->temp, err) ||
                     conv_cfg_num(g, path, "repetition_penalty", &s->repeat, err)
                 ? -1
                 : 0;
    }
    cJSON_Delete(g);
    free(path);
    return rc;
}

static int read_config(const char *hf_dir, config *c, char *err) {
    char *path = join_path(hf_dir, "config.json");
    if (!path) return fail(err, "out of memory");
    cJSON *root = read_json(path, err);
    int rc = -1;
    if (root && !cJSON_IsObject(root)) fail(err, "%s: not a JSON object", path);
    else if (root) {
        opt_f64 eps = {0, 0.0};
        memset(c, 0, sizeof *c);
        rc = cfg_arch(root, path, c, err) || c->arch->read(root, path, c, err) || cfg_block(root, path, c, err) ||
                     cfg_special(root, path, c, err) || conv_cfg_num(root, path, "rms_norm_eps", &eps, err) ||
                     read_sampling(hf_dir, &c->samp, err)
                 ? -1
                 : 0;
        c->rms_eps = eps.set ? eps.v : 1e-6;
    }
    cJSON_Delete(root);
    free(path);
    return rc;
}

/* ================================================================== tensor plan */

static const struct {
    const char *hf, *gguf;
    int mtp_only;
} SLOTS[S_COUNT] = {
    [S_ATTN_NORM] = {"input_layernorm.weight", "attn_norm.weight", 0},
    [S_Q] = {"self_attn.q_proj.weight", "attn_q.weight", 0},
    [S_Q_BIAS] = {"self_attn.q_proj.bias", "attn_q.bias", 0},
    [S_K] = {"self_attn.k_proj.weight", "attn_k.weight", 0},
    [S_K_BIAS] = {"self_attn.k_proj.bias", "attn_k.bias", 0},
    [S_V] = {"self_attn.v_proj.weight", "attn_v.weight", 0},
    [S_V_BIAS] = {"self_attn.v_proj.bias", "attn_v.bias", 0},
    [S_Q_A] = {"self_attn.q_a_proj.weight", "attn_q_a.weight", 0},
    [S_Q_A_NORM] = {"self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight", 0},
    [S_Q_B] = {"self_attn.q_b_proj.weight", "attn_q_b.weight", 0},
    [S_KV_A] = {"self_attn.kv_a_proj_with_mqa.weight", "attn_kv_a_mqa.weight", 0},
    [S_KV_A_NORM] = {"self_attn.kv_a_layernorm.weight", "attn_kv_a_norm.weight", 0},
    [S_KV_B] = {"self_attn.kv_b_proj.weight", "attn_kv_b.weight", 0},
    [S_Q_NORM] = {"self_attn.q_norm.weight", "attn_q_norm.weight", 0},
    [S_K_NORM] = {"self_attn.k_norm.weight", "attn_k_norm.weight", 0},
    [S_O] = {"self_attn.o_proj.weight", "attn_output.weight", 0},
    [S_IDX_Q_B] = {"self_attn.indexer.wq_b.weight", "indexer.attn_q_b.weight", 0},
    [S_IDX_K] = {"self_attn.indexer.wk.weight", "indexer.attn_k.weight", 0},
    [S_IDX_K_NORM] = {"self_attn.indexer.k_norm.weight", "indexer.k_norm.weight", 0},
    [S_IDX_K_NORM_B] = {"self_attn.indexer.k_norm.bias", "indexer.k_norm.bias", 0},
    [S_IDX_PROJ] = {"self_attn.indexer.weights_proj.weight", "indexer.proj.weight", 0},
    [S_FFN_NORM] = {"post_attention_layernorm.weight", "ffn_norm.weight", 0},
    [S_GATE] = {"mlp.gate_proj.weight", "ffn_gate.weight", 0},
    [S_UP] = {"mlp.up_proj.weight", "ffn_up.weight", 0},
    [S_DOWN] = {"mlp.down_proj.weight", "ffn_down.weight", 0},
    [S_GATE_INP] = {"mlp.gate.weight", "ffn_gate_inp.weight", 0},
    [S_EXP_B] = {"mlp.gate.e_score_correction_bias", "exp_probs_b.bias", 0},
    [S_GATE_SH] = {"mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight", 0},
    [S_UP_SH] = {"mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight", 0},
    [S_DOWN_SH] = {"mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight", 0},
    [S_NX_EH] = {"eh_proj.weight", "nextn.eh_proj.weight", 1},
    [S_NX_EMBED] = {"embed_tokens.weight", "nextn.embed_tokens.weight", 1},
    [S_NX_ENORM] = {"enorm.weight", "nextn.enorm.weight", 1},
    [S_NX_HNORM] = {"hnorm.weight", "nextn.hnorm.weight", 1},
    [S_NX_HEAD] = {"shared_head.head.weight", "nextn.shared_head_head.weight", 1},
    [S_NX_HEAD_NORM] = {"shared_head.norm.weight", "nextn.shared_head_norm.weight", 1},
};

static const char *const EXPERT_PROJ[3] = {"gate_proj", "up_proj", "down_proj"};
static const char *const EXPERT_GGUF[3] = {"ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"};

static int is_mtp_layer(const plan *p, int64_t il) { return il >= p->cfg->n_layer; }

int conv_is_moe_layer(const plan *p, int64_t il) { return p->cfg->n_expert > 0 && il >= p->cfg->n_dense; }

/* "12.rest" -> 12, rest; -1 when not digits followed by a dot. */
static int64_t parse_layer(const char *s, const char **rest) {
    int64_t v = 0;
    const char *q = s;
    for (; *q >= '0' && *q <= '9'; q++) {
        if (v > 100000) return -1;
        v = v * 10 + (*q - '0');
    }
    if (q == s || *q != '.') return -1;
    *rest = q + 1;
    return v;
}

static int add_expert(plan *p, layer_src *L, int64_t il, const char *rest, const safetensors_tensor *t, char *err) {
    const char *r2 = "";
    int64_t e = parse_layer(rest + strlen("mlp.experts."), &r2);
    int proj = -1;
    for (int k = 0; k < 3 && e >= 0; k++) {
        if (strncmp(r2, EXPERT_PROJ[k], strlen(EXPERT_PROJ[k])) == 0 &&
            strcmp(r2 + strlen(EXPERT_PROJ[k]), ".weight") == 0)
            proj = k;
    }
    if (proj < 0 || !conv_is_moe_layer(p, il) || e >= p->cfg->n_expert)
        return fail(err, "%s: tensor '%s' is not an expert of this %s model", t->path, t->name,
                    p->cfg->n_expert ? "MoE" : "dense");
    if (!L->experts) {
        L->experts = calloc((size_t)(3 * p->cfg->n_expert), sizeof *L->experts);
        if (!L->experts) return fail(err, "out of memory");
    }
    L->experts[proj * p->cfg->n_expert + e] = t;
    return 0;
}

static int add_layer_tensor(plan *p, int64_t il, const char *rest, const safetensors_tensor *t, char *err) {
    layer_src *L = &p->layers[il];
    L->any = 1;
    if (starts_with(rest, "mlp.experts.")) return add_expert(p, L, il, rest, t, err);
    for (int s = 0; s < S_COUNT; s++) {
        if (strcmp(rest, SLOTS[s].hf) != 0) continue;
        if (SLOTS[s].mtp_only && !is_mtp_layer(p, il)) break;
        L->slot[s] = t;
        return 0;
    }
    return fail(err, "%s: unknown tensor '%s'", t->path, t->name);
}

static int place_layer(plan *p, const char *after, const safetensors_tensor *t, char *err) {
    const char *rest;
    int64_t il = parse_layer(after, &rest);
    if (il < 0) return fail(err, "%s: unknown tensor '%s'", t->path, t->name);
    if (il >= p->cfg->n_layer && !p->opt->mtp) {
        p->n_skipped++;
        return 0;
    }
    if (il >= p->n_layer_all)
        return fail(err,
                    "%s: tensor '%s': layer %lld is beyond num_hidden_layers (%lld) + "
                    "num_nextn_predict_layers (%lld)",
                    t->path, t->name, (long long)il, (long long)p->cfg->n_layer, (long long)p->cfg->n_nextn);
    return add_layer_tensor(p, il, rest, t, err);
}

static int ignorable(const char *name) {
    return ends_with(name, "_scale_inv") || ends_with(name, ".rotary_emb.inv_freq") ||
           ends_with(name, ".attention.masked_bias") || ends_with(name, ".attention.bias");
}

static int place_tensor(plan *p, const safetensors_tensor *t, char *err) {
    if (ignorable(t->name)) return 0;
    if (starts_with(t->name, "model.layers.")) return place_layer(p, t->name + strlen("model.layers."), t, err);
    if (strcmp(t->name, "model.embed_tokens.weight") == 0) p->embd = t;
    else if (strcmp(t->name, "model.norm.weight") == 0) p->norm = t;
    else if (strcmp(t->name, "lm_head.weight") == 0) {
        if (p->cfg->tie) p->n_skipped++;
        else p->head = t;
    } else return fail(err, "%s: unknown tensor '%s'", t->path, t->name);
    return 0;
}

/* ---- shape checks ---- */

int conv_ffn_shape(const config *c, int s, int64_t *sh) {
    int64_t H = c->n_embd, Fs = c->n_ff_exp * c->n_shared;
    switch (s) {
    case S_ATTN_NORM:
    case S_FFN_NORM: return conv_shape1(sh, H);
    case S_GATE:
    case S_UP: return conv_shape2(sh, c->n_ff, H);
    case S_DOWN: return conv_shape2(sh, H, c->n_ff);
    case S_GATE_INP: return conv_shape2(sh, c->n_expert, H);
    case S_GATE_SH:
    case S_UP_SH: return conv_shape2(sh, Fs, H);
    case S_DOWN_SH: return conv_shape2(sh, H, Fs);
    default: return -1;
    }
}

/* MLA, V3's routing bias, V3.2's indexer and the MTP layer's own tensors */
static int v2_shape(const config *c, int s, int64_t *sh) {
    int64_t H = c->n_embd, nh = c->n_head, qk = c->nope + c->rope, R = c->kv_lora;
    int nd = conv_ffn_shape(c, s, sh);
    if (nd >= 0) return nd;
    switch (s) {
    case S_NX_ENORM:
    case S_NX_HNORM:
    case S_NX_HEAD_NORM: return conv_shape1(sh, H);
    case S_IDX_Q_B: return conv_shape2(sh, c->idx_heads * c->idx_dim, c->q_lora);
    case S_IDX_K: return conv_shape2(sh, c->idx_dim, H);
    case S_IDX_K_NORM:
    case S_IDX_K_NORM_B: return conv_shape1(sh, c->idx_dim);
    case S_IDX_PROJ: return conv_shape2(sh, c->idx_heads, H);
    case S_Q: return conv_shape2(sh, nh * qk, H);
    case S_Q_A: return conv_shape2(sh, c->q_lora, H);
    case S_Q_A_NORM: return conv_shape1(sh, c->q_lora);
    case S_Q_B: return conv_shape2(sh, nh * qk, c->q_lora);
    case S_KV_A: return conv_shape2(sh, R + c->rope, H);
    case S_KV_A_NORM: return conv_shape1(sh, R);
    case S_KV_B: return conv_shape2(sh, nh * (c->nope + c->vdim), R);
    case S_O: return conv_shape2(sh, H, nh * c->vdim);
    case S_EXP_B: return conv_shape1(sh, c->n_expert);
    case S_NX_EH: return conv_shape2(sh, H, 2 * H);
    default: return conv_shape2(sh, c->n_vocab, H); /* S_NX_EMBED, S_NX_HEAD */
    }
}

static int check_shape(const safetensors_tensor *t, const int64_t *sh, int nd, char *err) {
    int ok = t->n_dims == nd;
    for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == sh[i];
    if (ok) return 0;
    char want[96], got[96];
    int a = 0, b = 0;
    for (int i = 0; i < nd; i++)
        a += snprintf(want + a, sizeof want - (size_t)a, i ? ", %lld" : "%lld", (long long)sh[i]);
    for (int i = 0; i < t->n_dims && i < 4; i++)
        b += snprintf(got + b, sizeof got - (size_t)b, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (nd == 0) want[0] = '\0';
    if (t->n_dims == 0) got[0] = '\0';
    return fail(err, "%s: tensor '%s' has shape [%s%s], expected [%s]", t->path, t->name, got,
                t->n_dims > 4 ? ", ..." : "", want);
}

/* A layer's slots: must have (1), may have (2), must not have (0), as the architecture says. */
int conv_ffn_need(const plan *p, int64_t il, int s) {
    int moe = conv_is_moe_layer(p, il);
    switch (s) {
    case S_ATTN_NORM:
    case S_FFN_NORM: return 1;
    case S_GATE:
    case S_UP:
    case S_DOWN: return !moe;
    case S_GATE_INP: return moe;
    case S_GATE_SH:
    case S_UP_SH:
    case S_DOWN_SH: return moe && p->cfg->n_shared > 0;
    default: return -1;
    }
}

static int v2_need(const plan *p, int64_t il, int s) {
    const config *c = p->cfg;
    int moe = conv_is_moe_layer(p, il), mtp = is_mtp_layer(p, il), need = conv_ffn_need(p, il, s);
    if (need >= 0) return need;
    switch (s) {
    case S_Q: return c->q_lora == 0;
    case S_Q_A:
    case S_Q_A_NORM:
    case S_Q_B: return c->q_lora > 0;
    case S_KV_A:
    case S_KV_A_NORM:
    case S_KV_B:
    case S_O: return 1;
    case S_EXP_B: return moe ? 2 : 0;
    case S_NX_EH:
    case S_NX_ENORM:
    case S_NX_HNORM: return mtp;
    case S_NX_EMBED:
    case S_NX_HEAD:
    case S_NX_HEAD_NORM: return mtp ? 2 : 0;
    case S_IDX_Q_B:
    case S_IDX_K:
    case S_IDX_K_NORM:
    case S_IDX_K_NORM_B:
    case S_IDX_PROJ: return c->v32; /* the MTP layer has its own indexer too */
    default: return 0;
    }
}

static int check_slots(const plan *p, int64_t il, char *err) {
    const layer_src *L = &p->layers[il];
    for (int s = 0; s < S_COUNT; s++) {
        int need = p->cfg->arch->need(p, il, s);
        if (need == 1 && !L->slot[s])
            return fail(err, "%s: layer %lld lacks model.layers.%lld.%s", p->opt->hf_dir, (long long)il, (long long)il,
                        SLOTS[s].hf);
        if (need == 0 && L->slot[s])
            return fail(err, "%s: tensor '%s' does not belong in layer %lld of this config%s", L->slot[s]->path,
                        L->slot[s]->name, (long long)il,
                        s >= S_IDX_Q_B && s <= S_IDX_PROJ ? " (an indexer: V3.2 has model_type deepseek_v32)" : "");
        int64_t sh[2];
        int nd = p->cfg->arch->shape(p->cfg, s, sh);
        if (L->slot[s] && check_shape(L->slot[s], sh, nd, err) != 0) return -1;
    }
    return 0;
}

static int check_experts(const plan *p, int64_t il, char *err) {
    const config *c = p->cfg;
    const layer_src *L = &p->layers[il];
    if (!conv_is_moe_layer(p, il)) return 0;
    for (int k = 0; k < 3; k++) {
        int64_t sh[2] = {k == 2 ? c->n_embd : c->n_ff_exp, k == 2 ? c->n_ff_exp : c->n_embd};
        for (int64_t e = 0; e < c->n_expert; e++) {
            const safetensors_tensor *t = L->experts ? L->experts[k * c->n_expert + e] : NULL;
            if (!t)
                return fail(err, "%s: layer %lld lacks model.layers.%lld.mlp.experts.%lld.%s.weight", p->opt->hf_dir,
                            (long long)il, (long long)il, (long long)e, EXPERT_PROJ[k]);
            if (check_shape(t, sh, 2, err) != 0) return -1;
        }
    }
    return 0;
}

static int check_top(const plan *p, char *err) {
    const config *c = p->cfg;
    int64_t vh[2] = {c->n_vocab, c->n_embd}, h[1] = {c->n_embd};
    if (!p->embd) return fail(err, "%s: no model.embed_tokens.weight", p->opt->hf_dir);
    if (!p->norm) return fail(err, "%s: no model.norm.weight", p->opt->hf_dir);
    /* llama.cpp would take token_embd for the missing output: another model than this config's */
    if (!p->head && !c->tie)
        return fail(err, "%s: no lm_head.weight, and config.json's tie_word_embeddings is not true", p->opt->hf_dir);
    if (check_shape(p->embd, vh, 2, err) || check_shape(p->norm, h, 1, err) ||
        (p->head && check_shape(p->head, vh, 2, err)))
        return -1;
    return 0;
}

/* MTP layers kept are the leading run of present ones; a gap would renumber blocks. */
static int count_mtp(plan *p, char *err) {
    const config *c = p->cfg;
    p->n_mtp = 0;
    for (int64_t il = c->n_layer; il < p->n_layer_all; il++) {
        if (!p->layers[il].any) break;
        p->n_mtp++;
    }
    for (int64_t il = c->n_layer + p->n_mtp; il < p->n_layer_all; il++) {
        if (p->layers[il].any)
            return fail(err, "%s: MTP layer %lld present but layer %lld missing", p->opt->hf_dir, (long long)il,
                        (long long)(c->n_layer + p->n_mtp));
    }
    if (p->n_mtp > 0 && !p->opt->mla_split && !c->v32)
        fprintf(stderr, "deepseek-convert: note: llama.cpp runs an MTP layer only in the split "
                        "layout; in this legacy file it loads but cannot draft (--no-mtp drops it)\n");
    if (p->opt->mtp && c->n_nextn > p->n_mtp)
        fprintf(stderr,
                "deepseek-convert: config.json has num_nextn_predict_layers %lld, the checkpoint "
                "%lld MTP layers; writing %lld\n",
                (long long)c->n_nextn, (long long)p->n_mtp, (long long)p->n_mtp);
    return 0;
}

/* ---- sources: dtype and FP8 block scales ---- */

static int is_float_dtype(safetensors_dtype d) {
    return d == SAFETENSORS_F64 || d == SAFETENSORS_F32 || d == SAFETENSORS_F16 || d == SAFETENSORS_BF16 ||
           d == SAFETENSORS_F8_E4M3 || d == SAFETENSORS_F8_E5M2;
}

static const safetensors_tensor *scale_of(const safetensors_dir *st, const safetensors_tensor *t) {
    char name[512];
    if (snprintf(name, sizeof name, "%s_scale_inv", t->name) >= (int)sizeof name) return NULL;
    return safetensors_dir_find(st, name);
}

static int check_source(const plan *p, const safetensors_tensor *t, char *err) {
    const safetensors_tensor *s = scale_of(p->st, t);
    if (!is_float_dtype(t->dtype))
        return fail(err, "%s: tensor '%s' at offset %llu has dtype %s, not a float type", t->path, t->name,
                    (unsigned long long)t->file_offset, safetensors_dtype_name(t->dtype));
    if (!s && t->dtype == SAFETENSORS_F8_E4M3)
        return fail(err, "%s: F8_E4M3 tensor '%s' has no '%s_scale_inv'", t->path, t->name, t->name);
    if (!s) return 0;
    int64_t bo = p->cfg->block_o, bi = p->cfg->block_i;
    int64_t grid[2] = {t->n_dims == 2 ? (t->shape[0] + bo - 1) / bo : 0,
                       t->n_dims == 2 ? (t->shape[1] + bi - 1) / bi : 0};
    if (t->n_dims != 2) return fail(err, "%s: tensor '%s' has a block scale but is not 2-D", t->path, t->name);
    if (!is_float_dtype(s->dtype))
        return fail(err, "%s: scale '%s' is %s, not a float type", s->path, s->name, safetensors_dtype_name(s->dtype));
    return check_shape(s, grid, 2, err);
}

static int check_sources(const plan *p, char *err) {
    for (size_t i = 0; i < p->n_out; i++) {
        const out_tensor *o = &p->out[i];
        if (o->kind == K_ROPE_FREQS) continue; /* computed */
        if (o->kind != K_EXPERTS && check_source(p, o->src, err) != 0) return -1;
        for (int64_t e = 0; o->kind == K_EXPERTS && e < p->cfg->n_expert; e++) {
            if (check_source(p, o->experts[e], err) != 0) return -1;
        }
    }
    return 0;
}

/* A scale whose weight is gone would mean a misnamed or truncated checkpoint. */
static int check_orphan_scales(const plan *p, char *err) {
    for (size_t i = 0; i < safetensors_dir_count(p->st); i++) {
        const safetensors_tensor *t = safetensors_dir_at(p->st, i);
        if (!ends_with(t->name, "_scale_inv")) continue;
        char base[512];
        size_t n = strlen(t->name) - strlen("_scale_inv");
        if (n >= sizeof base) return fail(err, "%s: tensor name '%s' too long", t->path, t->name);
        memcpy(base, t->name, n);
        base[n] = '\0';
        if (!safetensors_dir_find(p->st, base)) return fail(err, "%s: '%s' has no weight '%s'", t->path, t->name, base);
    }
    return 0;
}

/* ---- output list ---- */

/* As llama.cpp's converter: it also keeps the indexer's head weights (proj) in F32, while its
   quantizer, and so a quantized --outtype here, quantizes them like any 2-D weight. */
static int keep_f32(const char *name, int n_dims) {
    return n_dims <= 1 || ends_with(name, "_norm.weight") || ends_with(name, "ffn_gate_inp.weight") ||
           ends_with(name, "indexer.proj.weight") || !ends_with(name, ".weight");
}

static out_tensor *push_out(plan *p, char *err) {
    return conv_push(&p->out, &p->n_out, &p->cap_out, sizeof *p->out, err);
}

/* ne = the PyTorch shape reversed. */
static int emit(plan *p, const char *name, src_kind kind, const safetensors_tensor *src,
                const safetensors_tensor *const *experts, int nd, const int64_t *torch_shape, char *err) {
    out_tensor *o = push_out(p, err);
    if (!o) return -1;
    snprintf(o->name, sizeof o->name, "%s", name);
    o->kind = kind;
    o->src = src;
    o->experts = experts;
    o->n_dims = nd;
    for (int i = 0; i < nd; i++) o->ne[i] = torch_shape[nd - 1 - i];
    o->type = keep_f32(name, nd) ? DS_TYPE_F32 : p->opt->wtype;
    return 0;
}

static int emit_plain(plan *p, const char *name, const safetensors_tensor *t, char *err) {
    return emit(p, name, K_PLAIN, t, NULL, t->n_dims, t->shape, err);
}

static int emit_kv_b(plan *p, int64_t il, const safetensors_tensor *t, char *err) {
    const config *c = p->cfg;
    char name[NAME_LEN];
    if (!p->opt->mla_split) {
        snprintf(name, sizeof name, "blk.%lld.attn_kv_b.weight", (long long)il);
        return emit_plain(p, name, t, err);
    }
    int64_t kb[3] = {c->n_head, c->kv_lora, c->nope}, vb[3] = {c->n_head, c->vdim, c->kv_lora};
    snprintf(name, sizeof name, "blk.%lld.attn_k_b.weight", (long long)il);
    if (emit(p, name, K_KB, t, NULL, 3, kb, err) != 0) return -1;
    snprintf(name, sizeof name, "blk.%lld.attn_v_b.weight", (long long)il);
    return emit(p, name, K_VB, t, NULL, 3, vb, err);
}

static int emit_experts(plan *p, int64_t il, char *err) {
    const config *c = p->cfg;
    const layer_src *L = &p->layers[il];
    for (int k = 0; k < 3; k++) {
        char name[NAME_LEN];
        const safetensors_tensor *const *src = L->experts + k * c->n_expert;
        int64_t sh[3] = {c->n_expert, src[0]->shape[0], src[0]->shape[1]};
        snprintf(name, sizeof name, "blk.%lld.%s", (long long)il, EXPERT_GGUF[k]);
        if (emit(p, name, K_EXPERTS, NULL, src, 3, sh, err) != 0) return -1;
    }
    return 0;
}

/* The heads whose q / k rows (and biases) the architecture reorders for ggml's rope; 0: none. */
static int64_t permuted_heads(const config *c, int s) {
    if (!c->arch->permute) return 0;
    if (s == S_Q || s == S_Q_BIAS) return c->n_head;
    if (s == S_K || s == S_K_BIAS) return c->n_head_kv;
    return 0;
}

static int emit_permuted(plan *p, const char *name, const safetensors_tensor *t, int64_t heads, char *err) {
    if (emit(p, name, K_PERMUTE, t, NULL, t->n_dims, t->shape, err) != 0) return -1;
    p->out[p->n_out - 1].heads = heads;
    return 0;
}

static int emit_layer(plan *p, int64_t il, char *err) {
    const layer_src *L = &p->layers[il];
    for (int s = 0; s < S_COUNT; s++) {
        char name[NAME_LEN];
        int rc = 0;
        int64_t heads = permuted_heads(p->cfg, s);
        if (s == S_GATE_SH && conv_is_moe_layer(p, il) && emit_experts(p, il, err) != 0) return -1;
        if (!L->slot[s]) continue;
        snprintf(name, sizeof name, "blk.%lld.%s", (long long)il, SLOTS[s].gguf);
        if (s == S_KV_B) rc = emit_kv_b(p, il, L->slot[s], err);
        else if (heads) rc = emit_permuted(p, name, L->slot[s], heads, err);
        else rc = emit_plain(p, name, L->slot[s], err);
        if (rc != 0) return -1;
    }
    return 0;
}

/* llama3 rope scaling is a tensor of per-frequency factors (llama.cpp's generate_extra_tensors
   yields it before the checkpoint's tensors), one per pair of rotated dimensions. */
static int emit_rope_freqs(plan *p, char *err) {
    int64_t n = p->cfg->head_dim / 2;
    return p->cfg->scaling == ROPE_LLAMA3 ? emit(p, "rope_freqs.weight", K_ROPE_FREQS, NULL, NULL, 1, &n, err) : 0;
}

static int emit_all(plan *p, char *err) {
    if (emit_rope_freqs(p, err) != 0 || emit_plain(p, "token_embd.weight", p->embd, err) != 0) return -1;
    for (int64_t il = 0; il < p->cfg->n_layer + p->n_mtp; il++) {
        if (emit_layer(p, il, err) != 0) return -1;
    }
    if (emit_plain(p, "output_norm.weight", p->norm, err) != 0) return -1;
    return p->head ? emit_plain(p, "output.weight", p->head, err) : 0;
}

static int check_layers(plan *p, char *err) {
    for (int64_t il = 0; il < p->cfg->n_layer + p->n_mtp; il++) {
        if (check_slots(p, il, err) != 0 || check_experts(p, il, err) != 0) return -1;
    }
    return 0;
}

/* A llama.cpp file type: its types for the tensors (all float32 so far) and its order. */
static int apply_mix(plan *p, char *err) {
    const config *c = p->cfg;
    qmix_opts q;
    /* absorbed MLA is one KV head */
    int64_t kv = c->arch->mla && p->opt->mla_split ? 1 : c->n_head_kv;
    qmix_model m = {c->n_expert, c->n_head, kv, c->n_layer + p->n_mtp};
    qmix_tensor *t = calloc(p->n_out + 1, sizeof *t);
    size_t *order = calloc(p->n_out + 1, sizeof *order);
    ds_type *types = calloc(p->n_out + 1, sizeof *types);
    out_tensor *sorted = calloc(p->n_out + 1, sizeof *sorted);
    int rc = t && order && types && sorted ? 0 : fail(err, "out of memory");
    qmix_opts_init(&q, p->opt->mix);
    q.type_70b = qmix_type_70b(c->arch->name, c->n_layer, c->n_head, c->n_head_kv, c->n_expert);
    for (size_t i = 0; rc == 0 && i < p->n_out; i++) {
        t[i].name = p->out[i].name;
        t[i].type = p->out[i].type;
        for (int d = 0; d < MAX_NE; d++) t[i].ne[d] = d < p->out[i].n_dims ? p->out[i].ne[d] : 1;
    }
    if (rc == 0) rc = qmix_plan(&q, &m, t, p->n_out, order, types, err, ERR_LEN);
    for (size_t k = 0; rc == 0 && k < p->n_out; k++) {
        out_tensor *o = &sorted[k];
        *o = p->out[order[k]];
        o->type = types[order[k]];
        while (o->n_dims > 1 && o->ne[o->n_dims - 1] == 1) /* as ggml counts dimensions */
            o->n_dims--;
    }
    if (rc == 0) memcpy(p->out, sorted, p->n_out * sizeof *sorted);
    qmix_opts_free(&q);
    free(t);
    free(order);
    free(types);
    free(sorted);
    return rc;
}

static int build_plan(plan *p, char *err) {
    const config *c = p->cfg;
    p->n_layer_all = c->n_layer + (p->opt->mtp ? c->n_nextn : 0);
    p->layers = calloc((size_t)p->n_layer_all, sizeof *p->layers);
    if (!p->layers) return fail(err, "out of memory");
    for (size_t i = 0; i < safetensors_dir_count(p->st); i++) {
        if (place_tensor(p, safetensors_dir_at(p->st, i), err) != 0) return -1;
    }
    if (count_mtp(p, err) || check_top(p, err) || check_layers(p, err) || check_orphan_scales(p, err) ||
        emit_all(p, err) || check_sources(p, err) || (p->opt->mix && apply_mix(p, err)))
        return -1;
    return 0;
}

static void free_plan(plan *p) {
    for (int64_t il = 0; p->layers && il < p->n_layer_all; il++) free(p->layers[il].experts);
    free(p->layers);
    free(p->out);
}

/* ================================================================== tokenizer */

typedef struct {
    char **tokens;
    int32_t *types;
    size_t n;
    char **merges;
    size_t n_merges;
    int64_t special[7]; /* ids, -1 when none */
    int add[3];         /* add_bos / add_eos / add_sep: -1 unset */
    char *chat_template;
    const char *pre;
} tokenizer;

static void free_strs(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

static void free_tokenizer(tokenizer *tk) {
    free_strs(tk->tokens, tk->n);
    free(tk->types);
    free_strs(tk->merges, tk->n_merges);
    free(tk->chat_template);
}

#define MAX_SPLITS 16

static int json_true(const cJSON *o, const char *key) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key)); }

static int json_is(const cJSON *o, const char *key, const char *value) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && strcmp(v->valuestring, value) == 0;
}

/* One pre-tokenizer step as ds_pre_tokenizer_name reads steps: a Split (Isolated, not inverted)
   is its regex, Digits is its definition as a regex (Rust's char::is_numeric is \p{N}); the
   ByteLevel that ends the sequence maps bytes only. 1 for a step, 0 for that ByteLevel, -1 for a
   step of another kind. */
static int pre_step(const cJSON *e, int last, const char **re) {
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(e, "pattern");
    const cJSON *regex = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
    if (json_is(e, "type", "Split") && cJSON_IsString(regex) && json_is(e, "behavior", "Isolated") &&
        !json_true(e, "invert")) {
        *re = regex->valuestring;
        return 1;
    }
    if (json_is(e, "type", "Digits")) {
        *re = json_true(e, "individual_digits") ? "\\p{N}" : "\\p{N}+";
        return 1;
    }
    if (last && json_is(e, "type", "ByteLevel") && !json_true(e, "add_prefix_space") && !json_true(e, "use_regex"))
        return 0;
    return -1;
}

/* The pre_tokenizer's steps before its closing ByteLevel, in order; their count, or -1 when a
   step has no regex form or the ByteLevel is missing. */
static int pre_steps(const cJSON *pre, const char **re) {
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers"), *e;
    int n = 0, k = 0, total = cJSON_IsArray(seq) ? cJSON_GetArraySize(seq) : 1;
    if (!json_is(pre, "type", "Sequence")) return pre_step(pre, 1, re) == 0 ? 0 : -1;
    cJSON_ArrayForEach(e, seq) {
        int last = ++k == total, r = pre_step(e, last, re + n);
        if (r < 0 || (last && r) || n + r > MAX_SPLITS) return -1;
        n += r;
    }
    return n;
}

/* 1 for an NFC normalizer, 0 for none (or an empty Sequence), -1 for any other. */
static int normalizer_nfc(const cJSON *norm) {
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(norm, "normalizers");
    if (!norm || cJSON_IsNull(norm)) return 0;
    if (json_is(norm, "type", "NFC")) return 1;
    if (!json_is(norm, "type", "Sequence") || !cJSON_IsArray(seq) || cJSON_GetArraySize(seq) > 1) return -1;
    return cJSON_GetArraySize(seq) ? normalizer_nfc(cJSON_GetArrayItem(seq, 0)) : 0;
}

/* tokenizer.ggml.pre: --tokenizer-pre, else the name the runtime gives this tokenizer.json's
   normalizer, pre-tokenizer and ignore_merges (no hash of a test encoding, as llama.cpp's
   converter takes, which only a complete vocabulary reproduces). */
static int detect_pre(const cJSON *tj, const char *path, const options *o, tokenizer *tk, char *err) {
    const char *re[MAX_SPLITS];
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tj, "model");
    int n = pre_steps(cJSON_GetObjectItemCaseSensitive(tj, "pre_tokenizer"), re);
    int nfc = normalizer_nfc(cJSON_GetObjectItemCaseSensitive(tj, "normalizer"));
    tk->pre = o->tok_pre;
    if (!tk->pre && n >= 0 && nfc >= 0) tk->pre = ds_pre_tokenizer_name(re, n, nfc, json_true(model, "ignore_merges"));
    if (!tk->pre)
        return fail(err,
                    "%s: its normalizer, pre_tokenizer and ignore_merges are none of the tokenizers this runtime "
                    "implements; pass --tokenizer-pre NAME to name llama.cpp's pre-tokenizer",
                    path);
    return 0;
}

static int token_id(const cJSON *v, const tokenizer *tk, const char *path, const char *what, int64_t *id, char *err) {
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    if (!(d >= 0 && d < (double)tk->n) || floor(d) != d)
        return fail(err, "%s: %s has id %s, not in [0, vocab_size %zu)", path, what,
                    cJSON_IsNumber(v) ? "out of range" : "missing", tk->n);
    *id = (int64_t)d;
    return 0;
}

static int set_token(tokenizer *tk, int64_t id, const char *s, char *err) {
    char *d = dup_str(s);
    if (!d) return fail(err, "out of memory");
    free(tk->tokens[id]);
    tk->tokens[id] = d;
    return 0;
}

static int load_vocab(const cJSON *model, const char *path, tokenizer *tk, char *err) {
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab"), *e;
    if (!cJSON_IsObject(vocab)) return fail(err, "%s: model.vocab is not an object", path);
    cJSON_ArrayForEach(e, vocab) {
        int64_t id = 0;
        char what[96];
        snprintf(what, sizeof what, "token '%.60s'", e->string ? e->string : "");
        if (!e->string || token_id(e, tk, path, what, &id, err) != 0 || set_token(tk, id, e->string, err) != 0)
            return e->string ? -1 : fail(err, "%s: unnamed vocab entry", path);
    }
    return 0;
}

/* Contents of added tokens, sorted, and which are special. */
typedef struct {
    const char **content;
    int *special;
    size_t n;
} added_set;

static int added_is(const added_set *a, const char *s, int *special) {
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(a->content[mid], s);
        if (c == 0) {
            *special = a->special[mid];
            return 1;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

typedef struct {
    const char *content;
    int special;
} added_pair;

static int cmp_pair(const void *a, const void *b) {
    return strcmp(((const added_pair *)a)->content, ((const added_pair *)b)->content);
}

static int load_added(const cJSON *tj, const char *path, tokenizer *tk, added_set *as, char *err) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens"), *e;
    size_t n = cJSON_IsArray(arr) ? (size_t)cJSON_GetArraySize(arr) : 0, k = 0;
    added_pair *pairs = calloc(n ? n : 1, sizeof *pairs);
    if (!pairs) return fail(err, "out of memory");
    const cJSON *list = n ? arr : NULL;
    cJSON_ArrayForEach(e, list) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        int64_t id = 0;
        if (!cJSON_IsString(c) ||
            token_id(cJSON_GetObjectItemCaseSensitive(e, "id"), tk, path, "an added token", &id, err) != 0 ||
            set_token(tk, id, c->valuestring, err) != 0) {
            free(pairs);
            return cJSON_IsString(c) ? -1 : fail(err, "%s: added token without content", path);
        }
        pairs[k].content = c->valuestring;
        pairs[k++].special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special"));
    }
    qsort(pairs, k, sizeof *pairs, cmp_pair);
    as->content = malloc((k ? k : 1) * sizeof *as->content);
    as->special = malloc((k ? k : 1) * sizeof *as->special);
    for (size_t i = 0; as->content && as->special && i < k; i++) {
        as->content[i] = pairs[i].content;
        as->special[i] = pairs[i].special;
    }
    as->n = k;
    free(pairs);
    return as->content && as->special ? 0 : fail(err, "out of memory");
}

static int finish_tokens(tokenizer *tk, const added_set *as, char *err) {
    for (size_t i = 0; i < tk->n; i++) {
        int special;
        if (!tk->tokens[i]) {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%zu]", i);
            if (set_token(tk, (int64_t)i, pad, err) != 0) return -1;
            tk->types[i] = TOKEN_UNUSED;
        } else if (added_is(as, tk->tokens[i], &special)) {
            /* HF's own flag, where gguf-py also makes every <｜...｜> a control token and
               rewrites U+2581 in the others: DeepSeek marks its chat markers not special, so
               Hugging Face keeps them when decoding with skip_special_tokens, and their text
               is exactly what the chat template writes. */
            tk->types[i] = special ? TOKEN_CONTROL : TOKEN_USER_DEFINED;
        } else {
            tk->types[i] = TOKEN_NORMAL;
        }
    }
    return 0;
}

/* A space inside a pair part would split the "a b" form, so it is stored as U+0120. */
static char *join_merge(const char *a, const char *b) {
    size_t n = 0;
    for (const char *s = a; *s; s++) n += *s == ' ' ? 2 : 1;
    for (const char *s = b; *s; s++) n += *s == ' ' ? 2 : 1;
    char *out = malloc(n + 2), *w = out;
    for (int part = 0; out && part < 2; part++) {
        for (const char *s = part ? b : a; *s; s++) {
            if (*s == ' ') {
                *w++ = (char)0xC4;
                *w++ = (char)0xA0;
            } else {
                *w++ = *s;
            }
        }
        *w++ = part ? '\0' : ' ';
    }
    return out;
}

static char *merge_text(const cJSON *m) {
    if (cJSON_IsString(m)) return dup_str(m->valuestring);
    const cJSON *a = cJSON_GetArrayItem(m, 0), *b = cJSON_GetArrayItem(m, 1);
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(a) && cJSON_IsString(b))
        return join_merge(a->valuestring, b->valuestring);
    return NULL;
}

static int load_merges(const cJSON *model, const char *path, tokenizer *tk, char *err) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(model, "merges"), *m;
    if (!cJSON_IsArray(arr)) return fail(err, "%s: model.merges is missing", path);
    size_t n = (size_t)cJSON_GetArraySize(arr);
    tk->merges = calloc(n ? n : 1, sizeof *tk->merges);
    if (!tk->merges) return fail(err, "out of memory");
    cJSON_ArrayForEach(m, arr) {
        char *s = merge_text(m);
        if (!s) return fail(err, "%s: merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", path, tk->n_merges);
        tk->merges[tk->n_merges++] = s;
    }
    return 0;
}

static const char *special_content(const cJSON *tc, const char *typ) {
    char key[32];
    snprintf(key, sizeof key, "%s_token", typ);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(tc, key);
    if (cJSON_IsObject(e)) e = cJSON_GetObjectItemCaseSensitive(e, "content");
    return cJSON_IsString(e) ? e->valuestring : NULL;
}

static int64_t added_id(const cJSON *tj, const char *content) {
    const cJSON *e, *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    cJSON_ArrayForEach(e, added) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (cJSON_IsString(c) && strcmp(c->valuestring, content) == 0)
            return cJSON_IsNumber(id) ? (int64_t)id->valuedouble : -1;
    }
    return -1;
}

/* The special token a TemplateProcessing post-processor puts first (or last, at = -1) in a single
   sequence, as gguf-py reads it (Llama 3's tokenizer.json adds BOS this way, its
   tokenizer_config.json has no add_bos_token); NULL when there is none. */
static const char *template_special(const cJSON *tj, int at) {
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(tj, "post_processor"), *e;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(pp, "processors");
    const cJSON *procs = cJSON_IsArray(list) ? list : NULL; /* a Sequence of processors */
    cJSON_ArrayForEach(e, procs) if (json_is(e, "type", "TemplateProcessing")) pp = e;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
    if (!json_is(pp, "type", "TemplateProcessing") || cJSON_GetArraySize(single) < 2) return NULL;
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(single, at < 0 ? cJSON_GetArraySize(single) - 1 : 0), "SpecialToken");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(tok, "id");
    return cJSON_IsString(id) ? id->valuestring : NULL;
}

/* As gguf-py's SpecialVocab: tokenizer_config's *_token, then config.json's *_token_id; add_bos /
   add_eos from tokenizer_config, else from a TemplateProcessing that adds that very token. */
static void load_specials(const cJSON *tj, const cJSON *tc, const config *c, tokenizer *tk) {
    static const char *const add_keys[3] = {"add_bos_token", "add_eos_token", "add_sep_token"};
    for (int i = 0; i < 7; i++) {
        const char *content = special_content(tc, SPECIAL_TYPES[i]);
        int64_t id = content ? added_id(tj, content) : -1;
        if (id < 0) id = c->special_id[i];
        tk->special[i] = id >= 0 && id < (int64_t)tk->n ? id : -1;
    }
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(tc, add_keys[i]);
        const char *tmpl = i < 2 ? template_special(tj, i ? -1 : 0) : NULL,
                   *content = special_content(tc, SPECIAL_TYPES[i]);
        tk->add[i] = cJSON_IsBool(v) ? cJSON_IsTrue(v) : tmpl && content && strcmp(tmpl, content) == 0 ? 1 : -1;
    }
}

/* tokenizer_config.json's chat_template, else chat_template.jinja, as gguf-py looks. */
static int load_template(const cJSON *tc, const char *dir, tokenizer *tk, char *err) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(tc, "chat_template");
    if (cJSON_IsString(t)) {
        tk->chat_template = dup_str(t->valuestring);
        return tk->chat_template ? 0 : fail(err, "out of memory");
    }
    if (t && !cJSON_IsNull(t)) fprintf(stderr, "deepseek-convert: chat_template is not a string; not written\n");
    char *path = join_path(dir, "chat_template.jinja");
    int rc = 0;
    if (!path) rc = fail(err, "out of memory");
    else if (file_exists(path) && !(tk->chat_template = read_file(path, err))) rc = -1;
    free(path);
    return rc;
}

static int load_tokenizer_json(const cJSON *tj, const char *path, const options *o, tokenizer *tk, char *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tj, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    added_set as = {0};
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") != 0)
        return fail(err, "%s: model.type is not BPE", path);
    int rc = detect_pre(tj, path, o, tk, err) || load_vocab(model, path, tk, err) ||
                     load_added(tj, path, tk, &as, err) || finish_tokens(tk, &as, err) ||
                     load_merges(model, path, tk, err)
                 ? -1
                 : 0;
    free(as.content);
    free(as.special);
    return rc;
}

/* One slot per id of the model's vocabulary (config.json's vocab_size, padded as llama.cpp
   pads); without a config, one per id the tokenizer uses. */
static int alloc_tokens(const cJSON *tj, const char *path, tokenizer *tk, char *err) {
    if (tk->n == 0) {
        const cJSON *e,
            *vocab = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tj, "model"), "vocab");
        const cJSON *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
        double top = -1;
        cJSON_ArrayForEach(e, vocab) if (cJSON_IsNumber(e) && e->valuedouble > top) top = e->valuedouble;
        cJSON_ArrayForEach(e, added) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
            if (cJSON_IsNumber(id) && id->valuedouble > top) top = id->valuedouble;
        }
        if (top < 0 || top >= INT32_MAX) return fail(err, "%s: no usable token ids", path);
        tk->n = (size_t)top + 1;
    }
    tk->tokens = calloc(tk->n, sizeof *tk->tokens);
    tk->types = calloc(tk->n, sizeof *tk->types);
    return tk->tokens && tk->types ? 0 : fail(err, "out of memory");
}

static int load_tokenizer_files(const char *dir, const char *tj_path, const options *o, const config *c, tokenizer *tk,
                                char *err) {
    char *tc_path = join_path(dir, "tokenizer_config.json");
    cJSON *tj = read_json(tj_path, err), *tc = NULL;
    int rc = -1;
    if (tc_path && tj && file_exists(tc_path)) tc = read_json(tc_path, err);
    if (!tc_path) fail(err, "out of memory");
    else if (tj && (tc || !file_exists(tc_path)) && alloc_tokens(tj, tj_path, tk, err) == 0) {
        rc = load_tokenizer_json(tj, tj_path, o, tk, err);
        if (rc == 0) {
            load_specials(tj, tc, c, tk);
            rc = load_template(tc, dir, tk, err);
        }
    }
    cJSON_Delete(tj);
    cJSON_Delete(tc);
    free(tc_path);
    return rc;
}

/* Returns 0 with tk->n == 0 when the folder has no tokenizer.json. */
static int load_tokenizer(const options *o, const config *c, tokenizer *tk, char *err) {
    const char *dir = o->tok_dir ? o->tok_dir : o->hf_dir;
    char *tj_path = join_path(dir, "tokenizer.json");
    int rc = 0;
    memset(tk, 0, sizeof *tk);
    if (!tj_path) return fail(err, "out of memory");
    if (!file_exists(tj_path)) {
        if (o->tok_dir) rc = fail(err, "%s: not found", tj_path);
        else fprintf(stderr, "deepseek-convert: no %s; writing no tokenizer (use --tokenizer DIR)\n", tj_path);
        free(tj_path);
        return rc;
    }
    tk->n = (size_t)c->n_vocab;
    rc = load_tokenizer_files(dir, tj_path, o, c, tk, err);
    free(tj_path);
    return rc;
}

/* ================================================================== metadata */

/* llama.cpp's architecture name: its keys are "<architecture>.<key>" (LLM_KV's "%s."). */
static const char *arch_name(const config *c) { return c->arch->name; }

#define KEY_LEN 128

static char *arch_key(char *k, const config *c, const char *key) {
    snprintf(k, KEY_LEN, "%s.%s", arch_name(c), key);
    return k;
}

void conv_kv_u32(ds_gguf_writer *w, const config *c, const char *key, uint32_t v) {
    char k[KEY_LEN];
    ds_gguf_set_u32(w, arch_key(k, c, key), v);
}

void conv_kv_f32(ds_gguf_writer *w, const config *c, const char *key, float v) {
    char k[KEY_LEN];
    ds_gguf_set_f32(w, arch_key(k, c, key), v);
}

void conv_kv_str(ds_gguf_writer *w, const config *c, const char *key, const char *v) {
    char k[KEY_LEN];
    ds_gguf_set_str(w, arch_key(k, c, key), v);
}

void conv_kv_bool(ds_gguf_writer *w, const config *c, const char *key, int v) {
    char k[KEY_LEN];
    ds_gguf_set_bool(w, arch_key(k, c, key), v);
}

#define kv_u32 conv_kv_u32
#define kv_f32 conv_kv_f32
#define kv_str conv_kv_str
#define kv_bool conv_kv_bool

static void meta_attention(ds_gguf_writer *w, const options *o, const config *c) {
    uint32_t R = (uint32_t)c->kv_lora;
    kv_u32(w, c, "attention.q_lora_rank", (uint32_t)c->q_lora);
    kv_u32(w, c, "attention.kv_lora_rank", R);
    if (o->mla_split) {
        /* absorbed MLA is MQA over the latent: one KV head of R + dr, values of R */
        kv_u32(w, c, "attention.key_length", R + (uint32_t)c->rope);
        kv_u32(w, c, "attention.value_length", R);
        kv_u32(w, c, "attention.key_length_mla", (uint32_t)(c->nope + c->rope));
        kv_u32(w, c, "attention.value_length_mla", (uint32_t)c->vdim);
    } else {
        kv_u32(w, c, "attention.key_length", (uint32_t)(c->nope + c->rope));
        kv_u32(w, c, "attention.value_length", (uint32_t)c->vdim);
    }
}

/* llama3 scaling is the rope_freqs tensor instead */
void conv_meta_rope(ds_gguf_writer *w, const config *c) {
    if (c->scaling == ROPE_LINEAR || c->scaling == ROPE_YARN) {
        kv_str(w, c, "rope.scaling.type", c->scaling == ROPE_YARN ? "yarn" : "linear");
        kv_f32(w, c, "rope.scaling.factor", (float)c->factor.v);
    }
    if (c->scaling == ROPE_YARN) {
        kv_u32(w, c, "rope.scaling.original_context_length", (uint32_t)c->orig_ctx);
        if (c->yarn_ext.set) kv_f32(w, c, "rope.scaling.yarn_ext_factor", (float)c->yarn_ext.v);
        if (c->yarn_attn.set) kv_f32(w, c, "rope.scaling.yarn_attn_factor", (float)c->yarn_attn.v);
        if (c->beta_fast.set) kv_f32(w, c, "rope.scaling.yarn_beta_fast", (float)c->beta_fast.v);
        if (c->beta_slow.set) kv_f32(w, c, "rope.scaling.yarn_beta_slow", (float)c->beta_slow.v);
    }
    if (c->rope_theta.set) kv_f32(w, c, "rope.freq_base", (float)c->rope_theta.v);
}

static void meta_moe(ds_gguf_writer *w, const config *c) {
    if (c->n_expert > 0) kv_u32(w, c, "expert_count", (uint32_t)c->n_expert);
    if (c->n_expert_used >= 0) kv_u32(w, c, "expert_used_count", (uint32_t)c->n_expert_used);
    if (c->n_group >= 0) kv_u32(w, c, "expert_group_count", (uint32_t)c->n_group);
    if (c->topk_group >= 0) kv_u32(w, c, "expert_group_used_count", (uint32_t)c->topk_group);
    if (c->gating) kv_u32(w, c, "expert_gating_func", (uint32_t)c->gating);
    kv_u32(w, c, "expert_feed_forward_length", (uint32_t)c->n_ff_exp);
    kv_u32(w, c, "expert_shared_count", (uint32_t)c->n_shared);
    if (c->routed_scale.set) kv_f32(w, c, "expert_weights_scale", (float)c->routed_scale.v);
    if (c->norm_topk) kv_bool(w, c, "expert_weights_norm", 1);
}

static void meta_indexer(ds_gguf_writer *w, const config *c) {
    kv_u32(w, c, "attention.indexer.head_count", (uint32_t)c->idx_heads);
    kv_u32(w, c, "attention.indexer.key_length", (uint32_t)c->idx_dim);
    kv_u32(w, c, "attention.indexer.top_k", (uint32_t)c->idx_topk);
}

/* DeepseekV2Model.set_gguf_parameters */
static void v2_meta(ds_gguf_writer *w, const options *o, const config *c, const plan *p) {
    /* llama.cpp counts the MTP blocks in block_count and subtracts nextn_predict_layers */
    kv_u32(w, c, "block_count", (uint32_t)(c->n_layer + p->n_mtp));
    kv_u32(w, c, "context_length", (uint32_t)c->n_ctx);
    kv_u32(w, c, "embedding_length", (uint32_t)c->n_embd);
    kv_u32(w, c, "feed_forward_length", (uint32_t)c->n_ff);
    kv_u32(w, c, "attention.head_count", (uint32_t)c->n_head);
    kv_u32(w, c, "attention.head_count_kv", o->mla_split ? 1 : (uint32_t)c->n_head);
    conv_meta_rope(w, c);
    kv_f32(w, c, "attention.layer_norm_rms_epsilon", (float)c->rms_eps);
    if (!o->mix) /* llama-quantize moves it after general.quantization_version */
        ds_gguf_set_u32(w, "general.file_type", o->file_type);
    kv_u32(w, c, "leading_dense_block_count", (uint32_t)c->n_dense);
    kv_u32(w, c, "vocab_size", (uint32_t)c->n_vocab);
    meta_attention(w, o, c);
    meta_moe(w, c);
    kv_u32(w, c, "rope.dimension_count", (uint32_t)c->rope);
    if (c->scaling == ROPE_YARN && c->mscale_all.set) /* the loader divides by 0.1 again */
        kv_f32(w, c, "rope.scaling.yarn_log_multiplier", (float)(0.1 * c->mscale_all.v));
    if (p->n_mtp > 0) kv_u32(w, c, "nextn_predict_layers", (uint32_t)p->n_mtp);
    if (c->v32) meta_indexer(w, c);
}

/* gguf-py's Metadata: generation_config.json's sampling defaults, before general.name */
static void meta_sampling(ds_gguf_writer *w, const sampling *s) {
    if (s->top_k_set) ds_gguf_set_i32(w, "general.sampling.top_k", (int32_t)s->top_k);
    if (s->top_p.set) ds_gguf_set_f32(w, "general.sampling.top_p", (float)s->top_p.v);
    if (s->min_p.set) ds_gguf_set_f32(w, "general.sampling.min_p", (float)s->min_p.v);
    if (s->temp.set) ds_gguf_set_f32(w, "general.sampling.temp", (float)s->temp.v);
    if (s->repeat.set) ds_gguf_set_f32(w, "general.sampling.penalty_repeat", (float)s->repeat.v);
}

static void meta_model(ds_gguf_writer *w, const options *o, const config *c, const plan *p, const char *name) {
    ds_gguf_set_str(w, "general.architecture", arch_name(c));
    ds_gguf_set_str(w, "general.type", "model");
    meta_sampling(w, &c->samp);
    ds_gguf_set_str(w, "general.name", name);
    c->arch->meta(w, o, c, p);
}

static void meta_tokenizer(ds_gguf_writer *w, const tokenizer *tk) {
    static const char *const id_keys[7] = {"tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",
                                           "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
                                           "tokenizer.ggml.padding_token_id", NULL /* gguf-py has no cls key */,
                                           "tokenizer.ggml.mask_token_id"};
    static const char *const add_keys[3] = {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
                                            "tokenizer.ggml.add_sep_token"};
    ds_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    ds_gguf_set_str(w, "tokenizer.ggml.pre", tk->pre);
    ds_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tk->tokens, tk->n);
    ds_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", tk->types, tk->n);
    if (tk->n_merges) ds_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)tk->merges, tk->n_merges);
    for (int i = 0; i < 7; i++) {
        if (id_keys[i] && tk->special[i] >= 0) ds_gguf_set_u32(w, id_keys[i], (uint32_t)tk->special[i]);
    }
    for (int i = 0; i < 3; i++) {
        if (tk->add[i] >= 0) ds_gguf_set_bool(w, add_keys[i], tk->add[i]);
    }
    if (tk->chat_template) ds_gguf_set_str(w, "tokenizer.chat_template", tk->chat_template);
}

/* ================================================================== tensor data */

/* Rows [r0, r0 + nr) of a 2-D view [rows, last dim] of t, to float32, FP8 scales applied. */
typedef struct {
    const safetensors_tensor *t;
    float *grid; /* decoded scale_inv, NULL when unscaled */
    int64_t cols, grid_cols, bo, bi;
} source;

static int source_open(source *s, const plan *p, const safetensors_tensor *t, char *err) {
    const safetensors_tensor *sc = scale_of(p->st, t);
    memset(s, 0, sizeof *s);
    s->t = t;
    s->cols = t->n_dims ? t->shape[t->n_dims - 1] : 1;
    s->bo = p->cfg->block_o;
    s->bi = p->cfg->block_i;
    if (!sc) return 0;
    s->grid_cols = sc->shape[1];
    s->grid = malloc((size_t)sc->n_elements * sizeof *s->grid + 1);
    if (!s->grid) return fail(err, "out of memory");
    return safetensors_read_f32(sc, s->grid, (size_t)sc->n_elements, err, ERR_LEN);
}

/* Each source is read once, front to back; its pages would only crowd the page cache's
   accounting in our resident set. */
static void source_close(source *s) {
    free(s->grid);
    if (s->t) safetensors_release(s->t);
}

static int source_rows(const source *s, int64_t r0, int64_t nr, float *dst, char *err) {
    size_t n = (size_t)(nr * s->cols);
    if (safetensors_read_f32_at(s->t, (size_t)(r0 * s->cols), dst, n, err, ERR_LEN) != 0) return -1;
    for (int64_t r = 0; s->grid && r < nr; r++) {
        const float *g = s->grid + ((r0 + r) / s->bo) * s->grid_cols;
        float *row = dst + r * s->cols;
        for (int64_t j = 0; j < s->cols; j++)
            row[j] = row[j] * g[j / s->bi]; /* one float32 multiply, as the reference */
    }
    return 0;
}

/* Output goes to the writer in pieces of at most scratch_len elements: peak memory is one
   chunk, whatever the tensor's size (a stacked expert tensor of V3 is 15 GB in F32). */
typedef struct {
    ds_gguf_writer *w;
    unsigned char *out;
    float *scratch, *stage;
    size_t scratch_len;
    int threads;
} buffers;

/* n floats, whole rows, quantized (no block format takes more than 4 bytes per element) */
static int emit_quantized(buffers *b, const out_tensor *o, const float *src, size_t n, char *err) {
    int64_t ne0 = o->ne[0], bad;
    qmix_job job = {DS_TYPE_F32, o->type, src, b->out, (int64_t)n / ne0, ne0, NULL, 0, 1, b->threads};
    int rc = qmix_convert_rows(&job, &bad);
    if (rc == -2) return fail(err, "out of memory while quantizing %s", o->name);
    if (rc != 0)
        return fail(err,
                    "tensor %s: a row gives non-finite %s data (inf or NaN in the "
                    "checkpoint, or values too large for the type)",
                    o->name, ds_type_name(o->type));
    size_t bytes = (size_t)job.nrows * ds_type_row_size(o->type, ne0);
    return ds_gguf_writer_write(b->w, b->out, bytes, err, ERR_LEN) == DS_OK ? 0 : -1;
}

/* Convert n floats (whole rows) to o's type and append them to the tensor being written. */
static int emit_floats(buffers *b, const out_tensor *o, const float *src, size_t n, char *err) {
    ds_type type = o->type;
    if (!qmix_is_float(type)) return emit_quantized(b, o, src, n, err);
    size_t es = type == DS_TYPE_F32 ? 4 : 2;
    if (type == DS_TYPE_F32) {
        memcpy(b->out, src, n * 4);
    } else {
        for (size_t i = 0; i < n; i++) {
            uint16_t h = type == DS_TYPE_F16 ? ds_fp32_to_fp16(src[i]) : ds_fp32_to_bf16(src[i]);
            memcpy(b->out + 2 * i, &h, 2);
        }
    }
    return ds_gguf_writer_write(b->w, b->out, n * es, err, ERR_LEN) == DS_OK ? 0 : -1;
}

/* Copy all of a source, in chunks of rows. */
static int copy_source(const plan *p, const safetensors_tensor *t, const out_tensor *o, buffers *b, char *err) {
    source s;
    int rc = source_open(&s, p, t, err);
    int64_t rows = s.cols ? t->n_elements / s.cols : 0;
    int64_t step = (int64_t)(b->scratch_len / (size_t)(s.cols ? s.cols : 1));
    for (int64_t r = 0; rc == 0 && r < rows; r += step) {
        int64_t nr = rows - r < step ? rows - r : step;
        rc = source_rows(&s, r, nr, b->scratch, err);
        if (rc == 0) rc = emit_floats(b, o, b->scratch, (size_t)(nr * s.cols), err);
    }
    source_close(&s);
    return rc;
}

/* kv_b [nh, dn + dv, R] -> k_b [nh, R, dn] (transposed) or v_b [nh, dv, R], head by head. */
static int split_kv_b(const plan *p, const out_tensor *o, buffers *b, char *err) {
    const config *c = p->cfg;
    int64_t R = c->kv_lora, dn = c->nope, dv = c->vdim;
    source s;
    int rc = source_open(&s, p, o->src, err);
    for (int64_t h = 0; rc == 0 && h < c->n_head; h++) {
        int64_t r0 = h * (dn + dv) + (o->kind == K_KB ? 0 : dn);
        int64_t nr = o->kind == K_KB ? dn : dv;
        rc = source_rows(&s, r0, nr, b->scratch, err);
        if (rc != 0) break;
        const float *src = b->scratch;
        if (o->kind == K_KB) {
            for (int64_t r = 0; r < R; r++)
                for (int64_t d = 0; d < dn; d++) b->stage[r * dn + d] = b->scratch[d * R + r];
            src = b->stage;
        }
        rc = emit_floats(b, o, src, (size_t)(nr * R), err);
    }
    source_close(&s);
    return rc;
}

/* Rows of a head [h][2][d/2] to [h][d/2][2] (llama.cpp's LlamaModel.permute): Hugging Face
   rotates the two halves of a head, ggml's llama rope adjacent pairs. A bias is a column of
   such rows; its whole column is read at once (scratch holds it). */
static int permute_heads(const plan *p, const out_tensor *o, buffers *b, char *err) {
    int mat = o->n_dims == 2;
    int64_t unit = mat ? o->ne[0] : 1, rows = mat ? o->ne[1] : o->ne[0], hd = rows / o->heads, half = hd / 2;
    source s;
    int rc = source_open(&s, p, o->src, err);
    if (rc == 0 && !mat) rc = source_rows(&s, 0, 1, b->scratch, err);
    for (int64_t h = 0; rc == 0 && h < o->heads; h++) {
        const float *src = mat ? b->scratch : b->scratch + h * hd;
        if (mat) rc = source_rows(&s, h * hd, hd, b->scratch, err);
        for (int64_t j = 0; rc == 0 && j < half; j++) {
            memcpy(b->stage + (2 * j) * unit, src + j * unit, (size_t)unit * sizeof(float));
            memcpy(b->stage + (2 * j + 1) * unit, src + (half + j) * unit, (size_t)unit * sizeof(float));
        }
        if (rc == 0) rc = emit_floats(b, o, b->stage, (size_t)(hd * unit), err);
    }
    source_close(&s);
    return rc;
}

/* llama3 rope scaling (LlamaModel.generate_extra_tensors): per frequency of the head's rope,
   1 above the high-frequency wavelength, the factor below the low one, and a smooth mix between.
   In float32 as torch computes it there. */
static int rope_freqs(const plan *p, const out_tensor *o, buffers *b, char *err) {
    const config *c = p->cfg;
    float base = c->rope_theta.set ? (float)c->rope_theta.v : 10000.0f, factor = (float)c->factor.v;
    /* Python's own numbers (double) meet the tensor as float32 */
    double lo = c->low_freq.v, hi = c->high_freq.v, old_ctx = (double)c->orig_ctx;
    float lo_wave = (float)(old_ctx / lo), hi_wave = (float)(old_ctx / hi), dim = (float)c->head_dim;
    for (int64_t i = 0; i < o->ne[0]; i++) {
        float freq = 1.0f / powf(base, (float)(2 * i) / dim);
        float wave = (float)(2 * M_PI) / freq;
        float smooth = ((float)old_ctx / wave - (float)lo) / (float)(hi - lo);
        b->scratch[i] = wave < hi_wave ? 1.0f : wave > lo_wave ? factor : 1.0f / ((1.0f - smooth) / factor + smooth);
    }
    return emit_floats(b, o, b->scratch, (size_t)o->ne[0], err);
}

static int produce(const plan *p, const out_tensor *o, buffers *b, char *err) {
    if (o->kind == K_PLAIN) return copy_source(p, o->src, o, b, err);
    if (o->kind == K_KB || o->kind == K_VB) return split_kv_b(p, o, b, err);
    if (o->kind == K_PERMUTE) return permute_heads(p, o, b, err);
    if (o->kind == K_ROPE_FREQS) return rope_freqs(p, o, b, err);
    for (int64_t e = 0; e < o->ne[2]; e++) {
        if (copy_source(p, o->experts[e], o, b, err) != 0) return -1;
    }
    return 0;
}

static size_t n_rows(const out_tensor *o) {
    size_t r = 1;
    for (int i = 1; i < o->n_dims; i++) r *= (size_t)o->ne[i];
    return r;
}

static size_t tensor_bytes(const out_tensor *o) {
    return ds_type_row_size(o->type, o->n_dims ? o->ne[0] : 1) * n_rows(o);
}

/* Scratch holds a chunk of whole rows, or one head's part of kv_b; stage its transpose. */
static int alloc_buffers(const plan *p, const out_tensor *o, buffers *b, char *err) {
    const config *c = p->cfg;
    size_t cols = (size_t)(o->n_dims && o->ne[0] ? o->ne[0] : 1);
    size_t kv = (size_t)(c->kv_lora * (c->nope > c->vdim ? c->nope : c->vdim));
    size_t rows = CHUNK_ELEMS / cols;
    size_t stage = o->kind == K_KB ? kv : 0;
    b->scratch_len = (rows ? rows : 1) * cols;
    if (o->kind == K_KB || o->kind == K_VB) b->scratch_len = kv;
    if (o->kind == K_PERMUTE) /* one head of rows, or a whole bias */
        b->scratch_len = stage = o->n_dims == 2 ? cols * (size_t)(o->ne[1] / o->heads) : cols;
    b->out = malloc(b->scratch_len * sizeof(float));
    b->scratch = malloc(b->scratch_len * sizeof(float));
    b->stage = stage ? malloc(stage * sizeof(float)) : NULL;
    if (!b->out || !b->scratch || (stage && !b->stage)) return fail(err, "out of memory for tensor %s", o->name);
    return 0;
}

static void free_buffers(buffers *b) {
    free(b->out);
    free(b->scratch);
    free(b->stage);
}

static int write_one(const plan *p, ds_gguf_writer *w, const out_tensor *o, char *err) {
    buffers b = {w, NULL, NULL, NULL, 0, p->opt->threads};
    int rc = alloc_buffers(p, o, &b, err);
    if (rc == 0) rc = produce(p, o, &b, err);
    free_buffers(&b);
    return rc;
}

/* ================================================================== driver */

static void progress(size_t i, size_t n, uint64_t done, uint64_t total, const char *name) {
    int width = 30, fill = total ? (int)((double)done / (double)total * width) : width;
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu tensors, %.1f/%.1f MiB  %-40.40s", fill, "##############################",
            width - fill, "", i, n, (double)done / 1048576.0, (double)total / 1048576.0, name);
    if (i == n) fputc('\n', stderr);
    fflush(stderr);
}

static int write_tensors(const plan *p, ds_gguf_writer *w, char *err) {
    int tty = isatty(STDERR_FILENO);
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < p->n_out; i++) total += tensor_bytes(&p->out[i]);
    for (size_t i = 0; i < p->n_out; i++) {
        if (tty) progress(i, p->n_out, done, total, p->out[i].name);
        if (write_one(p, w, &p->out[i], err) != 0) {
            if (tty) fputc('\n', stderr);
            return -1;
        }
        done += tensor_bytes(&p->out[i]);
    }
    if (tty) progress(p->n_out, p->n_out, done, total, "");
    return 0;
}

static void declare_tensors(const plan *p, ds_gguf_writer *w) {
    for (size_t i = 0; i < p->n_out; i++) {
        const out_tensor *o = &p->out[i];
        ds_gguf_add_tensor(w, o->name, o->type, o->n_dims, o->ne);
    }
}

const char *conv_default_name(const char *dir, char *buf, size_t size) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t start = n;
    while (start > 0 && dir[start - 1] != '/') start--;
    snprintf(buf, size, "%.*s", (int)(n - start), dir + start);
    return buf;
}

static int write_gguf(const options *o, const config *c, const plan *p, const tokenizer *tk, char *err) {
    char name_buf[256];
    ds_gguf_writer *w;
    if (ds_gguf_writer_new(&w, err, ERR_LEN)) return -1;
    meta_model(w, o, c, p, o->name ? o->name : conv_default_name(o->hf_dir, name_buf, sizeof name_buf));
    if (tk->n) meta_tokenizer(w, tk);
    ds_gguf_set_u32(w, "general.quantization_version", 2);
    if (o->mix) ds_gguf_set_u32(w, "general.file_type", o->file_type);
    declare_tensors(p, w);
    int rc = ds_gguf_writer_begin(w, o->out_path, err, ERR_LEN) == DS_OK ? 0 : -1;
    int begun = rc == 0;
    if (rc == 0) rc = write_tensors(p, w, err);
    if (rc == 0 && ds_gguf_writer_finish(w, err, ERR_LEN) != DS_OK) rc = -1;
    ds_gguf_writer_free(w);
    if (rc != 0 && begun) remove_partial(o->out_path);
    return rc;
}

static void summary(const options *o, const plan *p, const tokenizer *tk) {
    uint64_t bytes = 0;
    char mla[64] = "";
    for (size_t i = 0; i < p->n_out; i++) bytes += tensor_bytes(&p->out[i]);
    if (p->cfg->arch->mla)
        snprintf(mla, sizeof mla, ", %s MLA, %lld MTP layer(s)", o->mla_split ? "split" : "legacy",
                 (long long)p->n_mtp);
    fprintf(stderr,
            "deepseek-convert: wrote %s: %s %s, %zu tensors, %.2f MiB of data%s, %s; skipped %zu source tensors\n",
            o->out_path, arch_name(p->cfg), o->mix ? o->mix->name : ds_type_name(o->wtype), p->n_out,
            (double)bytes / 1048576.0, mla, tk->n ? "tokenizer included" : "no tokenizer", p->n_skipped);
}

/* This project's runtime reads both MLA layouts; llama.cpp's deepseek32 loader only the split one. */
static void warn_layout(const options *o, const config *c) {
    if (c->v32 && !o->mla_split)
        fprintf(stderr, "deepseek-convert: warning: --mla legacy: llama.cpp loads deepseek32 only with split "
                        "attn_k_b + attn_v_b; this attn_kv_b file is for this project's runtime\n");
}

static void v4_tokenizer(ds_gguf_writer *w, const void *tk) { meta_tokenizer(w, tk); }

static int run(const options *o, char *err) {
    config cfg;
    plan p = {0};
    tokenizer tk = {0};
    int rc = read_config(o->hf_dir, &cfg, err);
    if (rc == 0 && cfg.arch == &conv_deepseek4) { /* convert_v4.c */
        rc = load_tokenizer(o, &cfg, &tk, err);
        if (rc == 0) rc = conv_v4_write(o, &cfg, tk.n ? v4_tokenizer : NULL, &tk, err);
        free_tokenizer(&tk);
        return rc;
    }
    p.opt = o;
    p.cfg = &cfg;
    if (rc == 0) rc = safetensors_dir_open(o->hf_dir, &p.st, err, ERR_LEN);
    if (rc == 0) rc = build_plan(&p, err);
    if (rc == 0) warn_layout(o, &cfg);
    if (rc == 0) rc = load_tokenizer(o, &cfg, &tk, err);
    if (rc == 0) rc = write_gguf(o, &cfg, &p, &tk, err);
    if (rc == 0) summary(o, &p, &tk);
    free_tokenizer(&tk);
    free_plan(&p);
    safetensors_dir_close(p.st);
    return rc;
}

/* --vocab-only: the tokenizer, plus the hyper-parameters when HF_DIR has a config.json. */
static int run_vocab_only(const options *o, char *err) {
    config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.arch = &DEEPSEEK2; /* the architecture named without a config */
    for (int i = 0; i < 7; i++) cfg.special_id[i] = -1;
    char *cfg_path = join_path(o->hf_dir, "config.json"), name_buf[256];
    int has_cfg = cfg_path && file_exists(cfg_path), rc = 0;
    free(cfg_path);
    if (has_cfg) rc = read_config(o->hf_dir, &cfg, err);
    options vo = *o;
    if (!vo.tok_dir) vo.tok_dir = o->hf_dir; /* a missing tokenizer.json is an error here */
    tokenizer tk = {0};
    if (rc == 0) rc = load_tokenizer(&vo, &cfg, &tk, err);
    ds_gguf_writer *w = NULL;
    if (rc == 0 && ds_gguf_writer_new(&w, err, ERR_LEN)) rc = -1;
    if (rc == 0) {
        const char *name = o->name ? o->name : conv_default_name(o->hf_dir, name_buf, sizeof name_buf);
        plan none = {0};
        none.opt = o;
        none.cfg = &cfg;
        if (has_cfg) meta_model(w, o, &cfg, &none, name);
        if (has_cfg && o->mix) ds_gguf_set_u32(w, "general.file_type", o->file_type);
        else {
            ds_gguf_set_str(w, "general.architecture", arch_name(&cfg));
            ds_gguf_set_str(w, "general.name", name);
        }
        ds_gguf_set_str(w, "general.type", "vocab");
        meta_tokenizer(w, &tk);
        if (ds_gguf_writer_begin(w, o->out_path, err, ERR_LEN) != DS_OK ||
            ds_gguf_writer_finish(w, err, ERR_LEN) != DS_OK)
            rc = -1;
    }
    if (rc == 0)
        fprintf(stderr, "deepseek-convert: wrote %s: vocabulary only, %zu tokens, %zu merges\n", o->out_path, tk.n,
                tk.n_merges);
    ds_gguf_writer_free(w);
    free_tokenizer(&tk);
    return rc;
}

int main(int argc, char **argv) {
    char err[ERR_LEN] = "";
    options o;
    if (parse_args(argc, argv, &o) != 0) return 1;
    int rc = o.vocab_only ? run_vocab_only(&o, err) : run(&o, err);
    if (rc != 0) {
        fprintf(stderr, "deepseek-convert: %s\n", err);
        return 1;
    }
    return 0;
}
