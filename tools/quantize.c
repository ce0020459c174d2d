/* deepseek-quantize: a GGUF of deepseek-convert's architectures (deepseek2, deepseek32 for
   DeepSeek-V3.2, and qwen2, llama, qwen3, deepseek for the R1 distills and DeepSeek-MoE) with
   F32, F16 or BF16 weights -> the same model with quantized weights, as llama.cpp's
   llama-quantize writes it.

   Types are chosen by llama.cpp's rules for the file type (qmix.c), the quantizers are ggml's
   bit for bit (quant/), metadata is copied with general.file_type and
   general.quantization_version set last, and tensors are written in llama.cpp's order: so the
   file equals llama-quantize's byte for byte. On top of llama.cpp's options, --expert-type and
   --attn-type name the usual DeepSeek recipe (low-bit routed experts, everything else high-bit)
   in one flag each.

   The input is memory-mapped and streamed: each tensor is converted in slabs of rows by a pool
   of threads and written as it goes, and pages already read are dropped, so memory stays at a
   slab's worth whatever the model's size.

   Besides deepseek.h (the GGUF reader and writer), this tool and qmix.c use quant/ directly
   (quant/quant.h: the type table and the scalar quantizers) and link libquant for it
   (meson.build's quant_dep), not libdeepseek, whose symbols beyond deepseek.h are no API. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "args.h"
#include "errmsg.h"
#include "deepseek.h"
#include "imatrix.h"
#include "qmix.h"
#include "../quant/quant.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERR_LEN 1024
#define fail(err, ...) tool_fail(err, ERR_LEN, __VA_ARGS__)
/* Elements converted per slab: 64 MiB of float32 input, whatever the tensor's size. */
#define SLAB_ELEMS ((size_t)16 << 20)

/* ================================================================== options */

typedef struct {
    const char *in, *out, *type_name, *imatrix;
    const char *expert_type, *attn_type, *output_type, *embd_type;
    const char **tensor_types;
    int n_tensor_types;
    int threads, pure, allow_requantize, leave_output, dry_run, verbose;
} options;

static void usage(FILE *fp) {
    fputs("usage: deepseek-quantize [options] IN.gguf OUT.gguf TYPE\n"
          "  IN.gguf: F32, F16 or BF16 weights; of a split model, the first part\n"
          "  (NAME-00001-of-0000N.gguf); OUT.gguf is one file\n"
          "  TYPE: llama.cpp's file types:\n    ",
          fp);
    qmix_print_ftypes(fp);
    fputs("  --expert-type T          routed experts (ffn_*_exps) get type T: with a high-bit TYPE\n"
          "                           this is the DeepSeek recipe, e.g. Q8_0 --expert-type q4_k\n"
          "  --attn-type T            attention weights (attn_*, and V3.2's indexer.*) get type T\n"
          "  --tensor-type REGEX=T    tensors whose name matches the POSIX extended REGEX get T;\n"
          "                           may repeat; the first match wins, and --tensor-type rules\n"
          "                           come before --expert-type and --attn-type\n"
          "  --output-tensor-type T   output.weight gets T\n"
          "  --token-embedding-type T token_embd.weight gets T\n"
          "  --leave-output-tensor    output.weight keeps its type\n"
          "  --pure                   no mix: every quantized tensor gets TYPE's base type\n"
          "  --allow-requantize       widen already-quantized tensors and quantize them again\n"
          "  --imatrix FILE           importance matrix (llama-imatrix's GGUF or legacy .dat)\n"
          "  -t, --threads N          threads (default: physical cores)\n"
          "  --dry-run                print each tensor's type and size; write nothing\n"
          "  -v, --verbose            print each tensor as it is written\n"
          "  -h, --help               this help\n"
          "  --version                the version\n"
          "  T is a ggml type name in any case: q8_0, q4_k, iq4_xs, f16, ...; a type whose rows\n"
          "  do not fit a tensor falls back as in llama.cpp (Q4_K -> Q5_0, Q6_K -> Q8_0, ...).\n"
          "  Norms, the router (ffn_gate_inp), biases and other 1-D tensors keep their type.\n",
          fp);
}

/* 1 when opt is an option with a value (taken, or the mistake reported). */
static int value_opt(args_it *it, const char *opt, options *o) {
    if (args_is(opt, "-t|--threads")) args_value_int(it, 1, 256, &o->threads);
    else if (args_is(opt, "--expert-type")) o->expert_type = args_value(it);
    else if (args_is(opt, "--attn-type")) o->attn_type = args_value(it);
    else if (args_is(opt, "--output-tensor-type")) o->output_type = args_value(it);
    else if (args_is(opt, "--token-embedding-type")) o->embd_type = args_value(it);
    else if (args_is(opt, "--imatrix")) o->imatrix = args_value(it);
    else if (args_is(opt, "--tensor-type")) {
        const char *v = args_value(it);
        if (v) o->tensor_types[o->n_tensor_types++] = v;
    } else return 0;
    return 1;
}

static int flag_opt(options *o, const char *a) {
    const args_flag f[] = {{"--pure", &o->pure},
                           {"--allow-requantize", &o->allow_requantize},
                           {"--leave-output-tensor", &o->leave_output},
                           {"--dry-run", &o->dry_run},
                           {"-v|--verbose", &o->verbose}};
    return args_flags(a, f, sizeof f / sizeof *f);
}

/* IN, OUT and TYPE in turn; 0 once all three are there. */
static int positional(options *o, const char *a) {
    if (a[0] == '-' && a[1]) return 0;
    if (!o->in) o->in = a;
    else if (!o->out) o->out = a;
    else if (!o->type_name) o->type_name = a;
    else return 0;
    return 1;
}

/* tensor_types must hold argc entries. Mistakes are reported on stderr here, not through an
   error buffer. */
static int parse_args(int argc, char **argv, options *o) {
    args_it it = args_begin("deepseek-quantize", argc, argv);
    for (const char *a; (a = args_next(&it));) {
        if (!args_help_version(&it, a, usage, 0) && !value_opt(&it, a, o) && !flag_opt(o, a) && !positional(o, a))
            args_unknown(&it);
    }
    if (it.failed) return -1;
    if (!o->in || !o->out || !o->type_name)
        return args_fail(&it, "need IN.gguf OUT.gguf TYPE (see %s --help)", it.prog);
    return 0;
}

/* ================================================================== rules from options */

static int opt_type(const char *opt, const char *val, ds_type *t, char *err) {
    char msg[256];
    if (!val) return 0;
    if (qmix_parse_type(val, t, msg, sizeof msg) != 0) return fail(err, "%s: %s", opt, msg);
    return 0;
}

/* --tensor-type rules first, in order; then the two shorthands. */
static int build_mix(const options *o, qmix_opts *q, int has_imatrix, char *err) {
    char msg[512];
    ds_type et = DS_TYPE_COUNT, at = DS_TYPE_COUNT;
    const qmix_ftype *ft = qmix_find_ftype(o->type_name, msg, sizeof msg);
    if (!ft) return fail(err, "%s", msg);
    qmix_opts_init(q, ft);
    q->pure = o->pure;
    q->has_imatrix = has_imatrix;
    q->leave_output = o->leave_output;
    q->allow_requantize = o->allow_requantize;
    if (opt_type("--output-tensor-type", o->output_type, &q->output_type, err) != 0 ||
        opt_type("--token-embedding-type", o->embd_type, &q->embd_type, err) != 0 ||
        opt_type("--expert-type", o->expert_type, &et, err) != 0 ||
        opt_type("--attn-type", o->attn_type, &at, err) != 0)
        return -1;
    for (int i = 0; i < o->n_tensor_types; i++) {
        if (qmix_add_rule(q, o->tensor_types[i], msg, sizeof msg) != 0) return fail(err, "--tensor-type: %s", msg);
    }
    if ((et != DS_TYPE_COUNT && qmix_add_rule2(q, "ffn_[a-z_]*_exps\\.", et, msg, sizeof msg)) ||
        /* V3.2's indexer chooses which keys attention reads: it goes with attention */
        (at != DS_TYPE_COUNT && qmix_add_rule2(q, "attn_|\\.indexer\\.", at, msg, sizeof msg)))
        return fail(err, "%s", msg);
    return 0;
}

/* ================================================================== importance matrix */

/* The importance weights for tensor t, as llama.cpp picks them: NULL when the file has none
   for it; an entry of the wrong size is an error except for token_embd (never in an imatrix
   run's matmuls, so llama.cpp tolerates it). */
static int imatrix_for(const imatrix *im, const ds_gguf_tensor_info *t, ds_type to, const float **out, char *err) {
    const imatrix_entry *e = im ? imatrix_find(im, t->name) : NULL;
    *out = NULL;
    if (e && e->n == (size_t)(t->ne[0] * t->ne[2])) *out = e->v;
    else if (e && strcmp(t->name, "token_embd.weight") != 0)
        return fail(err, "tensor %s: the importance matrix has %zu values for it, not %lld", t->name, e->n,
                    (long long)(t->ne[0] * t->ne[2]));
    if (!*out && ds_quant_scalar_traits(to)->needs_imatrix)
        return fail(err, "tensor %s: the importance matrix has no data for it, and %s needs it", t->name,
                    ds_type_name(to));
    return 0;
}

/* What llama-quantize records about the matrix (its strings cut at 127 bytes, as it does). */
static void imatrix_metadata(ds_gguf_writer *w, const imatrix *im, const char *path) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    ds_gguf_set_str(w, "quantize.imatrix.file", buf);
    if (im->dataset) {
        snprintf(buf, sizeof buf, "%s", im->dataset);
        ds_gguf_set_str(w, "quantize.imatrix.dataset", buf);
    }
    ds_gguf_set_u32(w, "quantize.imatrix.entries_count", (uint32_t)im->n);
    if (im->chunks > 0) ds_gguf_set_u32(w, "quantize.imatrix.chunks_count", (uint32_t)im->chunks);
}

/* ================================================================== the input */

typedef struct {
    ds_gguf *g;     /* the file, or the first part of a split model: the metadata */
    ds_gguf **part; /* the other parts */
    int n_parts;
    size_t n;
    qmix_tensor *t;
    ds_gguf_tensor_info *info;
    size_t *order;
    ds_type *types;
    qmix_model m;
} input;

static int64_t kv_int(const ds_gguf *g, const char *key, int64_t dflt) {
    int64_t v;
    return ds_gguf_get_int(g, key, &v) ? v : dflt;
}

/* A split model (llama.cpp's gguf-split names the parts PREFIX-00001-of-00003.gguf, ...): the
   tensors of every part, the metadata of the first; the output is one file, as llama-quantize
   writes it by default. */
static int open_parts(const char *path, input *in, char *err) {
    int64_t count = kv_int(in->g, "split.count", 1);
    char suffix[64], part[4096];
    if (count <= 1) return 0;
    if (count > 99999) return fail(err, "%s: split.count %lld is not a part count", path, (long long)count);
    snprintf(suffix, sizeof suffix, "-%05d-of-%05d.gguf", 1, (int)count);
    size_t n = strlen(path), k = strlen(suffix);
    if (n <= k || strcmp(path + n - k, suffix) != 0 || n >= sizeof part - 8)
        return fail(err, "%s: the first part of a split model is named PREFIX%s", path, suffix);
    in->part = calloc((size_t)count, sizeof *in->part);
    if (!in->part) return fail(err, "out of memory");
    for (int i = 1; i < count; i++) {
        snprintf(part, sizeof part, "%.*s-%05d-of-%05d.gguf", (int)(n - k), path, i + 1, (int)count);
        if (ds_gguf_open(part, &in->part[in->n_parts], err, ERR_LEN) != DS_OK) return -1;
        if (kv_int(in->part[in->n_parts++], "split.no", -1) != i) return fail(err, "%s: split.no is not %d", part, i);
    }
    return 0;
}

static ds_gguf *file_of(const input *in, int f) { return f == 0 ? in->g : in->part[f - 1]; }

static int gather_tensors(const char *path, input *in, char *err) {
    in->n = 0;
    for (int f = 0; f <= in->n_parts; f++) in->n += ds_gguf_n_tensors(file_of(in, f));
    int64_t want = kv_int(in->g, "split.tensors.count", (int64_t)in->n);
    if (want != (int64_t)in->n)
        return fail(err, "%s: split.tensors.count says %lld tensors, the parts hold %zu", path, (long long)want, in->n);
    in->t = calloc(in->n + 1, sizeof *in->t);
    in->info = calloc(in->n + 1, sizeof *in->info);
    in->order = calloc(in->n + 1, sizeof *in->order);
    in->types = calloc(in->n + 1, sizeof *in->types);
    if (!in->t || !in->info || !in->order || !in->types) return fail(err, "out of memory");
    size_t i = 0;
    for (int f = 0; f <= in->n_parts; f++) {
        for (size_t j = 0; j < ds_gguf_n_tensors(file_of(in, f)); j++, i++) {
            ds_gguf_tensor(file_of(in, f), j, &in->info[i]);
            in->t[i].name = in->info[i].name;
            in->t[i].type = in->info[i].type;
            memcpy(in->t[i].ne, in->info[i].ne, sizeof in->t[i].ne);
        }
    }
    return 0;
}

/* llama.cpp's rules tell architectures apart only by Falcon and by a 70B size (qmix_is_70b); the
   rest goes by tensor names (qmix.c). deepseek32 (V3.2) is deepseek2 plus the indexer, whose
   tensors those names cover too. */
static const char *const ARCHS[] = {"deepseek2", "deepseek32", "qwen2", "llama", "qwen3", "deepseek"};

static const char *known_arch(const char *arch, size_t len) {
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++) {
        if (len == strlen(ARCHS[i]) && memcmp(arch, ARCHS[i], len) == 0) return ARCHS[i];
    }
    return NULL;
}

/* The model key "<architecture>.<key>", as llama.cpp's LLM_KV names it. */
static int64_t arch_int(const ds_gguf *g, const char *arch, size_t len, const char *key, int64_t dflt) {
    char k[128];
    snprintf(k, sizeof k, "%.*s.%s", (int)len, arch, key);
    return kv_int(g, k, dflt);
}

static int open_input(const char *path, input *in, char *err) {
    size_t len = 0;
    if (ds_gguf_open(path, &in->g, err, ERR_LEN) != DS_OK) return -1;
    int64_t part = kv_int(in->g, "split.no", 0);
    if (part != 0) return fail(err, "%s is part %lld of a split model: give the first part", path, (long long)part + 1);
    const char *arch = ds_gguf_get_str(in->g, "general.architecture", &len);
    if (!arch || !known_arch(arch, len))
        return fail(err,
                    "%s: general.architecture is %s%.*s%s, not deepseek2, deepseek32, qwen2, llama, qwen3 "
                    "or deepseek (the type rules here are llama.cpp's for those)",
                    path, arch ? "'" : "(none)", arch ? (int)(len < 64 ? len : 64) : 0, arch ? arch : "",
                    arch ? "'" : "");
    in->m.n_expert = arch_int(in->g, arch, len, "expert_count", 0);
    in->m.n_head = arch_int(in->g, arch, len, "attention.head_count", 0);
    in->m.n_head_kv = arch_int(in->g, arch, len, "attention.head_count_kv", in->m.n_head);
    in->m.n_layer_all = arch_int(in->g, arch, len, "block_count", 0);
    in->m.type_70b = qmix_is_70b(known_arch(arch, len), in->m.n_layer_all, in->m.n_head, in->m.n_head_kv);
    if (open_parts(path, in, err) != 0) return -1;
    return gather_tensors(path, in, err);
}

/* Parts of a split model must not hold the same tensor twice (order puts equal names together). */
static int check_unique(const input *in, char *err) {
    for (size_t k = 1; k < in->n; k++) {
        if (strcmp(in->t[in->order[k - 1]].name, in->t[in->order[k]].name) == 0)
            return fail(err, "tensor %s appears twice", in->t[in->order[k]].name);
    }
    return 0;
}

static void close_input(input *in) {
    free(in->t);
    free(in->info);
    free(in->order);
    free(in->types);
    for (int i = 0; i < in->n_parts; i++) ds_gguf_close(in->part[i]);
    free(in->part);
    ds_gguf_close(in->g);
}

static int same_file(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* ================================================================== sizes and progress */

static int64_t n_rows(const ds_gguf_tensor_info *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

static uint64_t out_bytes(const ds_gguf_tensor_info *t, ds_type type) {
    return (uint64_t)ds_type_row_size(type, t->ne[0]) * (uint64_t)n_rows(t);
}

static int trimmed_dims(const ds_gguf_tensor_info *t) {
    int n = 4;
    while (n > 1 && t->ne[n - 1] == 1) n--;
    return n;
}

typedef struct {
    int tty;
    size_t n;
    uint64_t total, done; /* input bytes */
} progress;

static void progress_show(const progress *p, size_t i, const char *name, ds_type type) {
    int width = 30, fill = p->total ? (int)((double)p->done / (double)p->total * width) : width;
    if (!p->tty) return;
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu %7.1f/%.1f MiB  %-36.36s %-7s", fill, "##############################",
            width - fill, "", i, p->n, (double)p->done / 1048576.0, (double)p->total / 1048576.0, name,
            type == DS_TYPE_COUNT ? "" : ds_type_name(type));
    fflush(stderr);
}

static void describe(FILE *fp, size_t i, size_t n, const ds_gguf_tensor_info *t, ds_type to) {
    char shape[96];
    int k = 0;
    for (int d = 0; d < trimmed_dims(t); d++)
        k += snprintf(shape + k, sizeof shape - (size_t)k, d ? ", %lld" : "%lld", (long long)t->ne[d]);
    fprintf(fp, "[%4zu/%4zu] %-36s [%s] %s -> %s, %.3f -> %.3f MiB\n", i + 1, n, t->name, shape, ds_type_name(t->type),
            ds_type_name(to), (double)t->size / 1048576.0, (double)out_bytes(t, to) / 1048576.0);
}

/* ================================================================== writing */

/* Pages of the input already read will not be read again: drop them, or a model larger than
   memory would fill it with a clean but resident page cache. The mapping is private and
   read-only, so a dropped page would only be read from the file again. */
static void release(const void *p, size_t n) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p, b = a + n;
    if (page <= 0) return;
    a = (a + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    b = b / (uintptr_t)page * (uintptr_t)page;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

typedef struct {
    ds_gguf_writer *w;
    progress *prog;
    int threads;
    const imatrix *im;
    unsigned char *buf;
    size_t buf_size;
} writer;

static int copy_tensor(writer *wr, const ds_gguf_tensor_info *t, size_t i, char *err) {
    const unsigned char *p = t->data;
    for (size_t off = 0; off < t->size; off += SLAB_ELEMS * 4) {
        size_t n = t->size - off < SLAB_ELEMS * 4 ? t->size - off : SLAB_ELEMS * 4;
        if (ds_gguf_writer_write(wr->w, p + off, n, err, ERR_LEN) != DS_OK) return -1;
        release(p + off, n);
        wr->prog->done += n;
        progress_show(wr->prog, i, t->name, t->type);
    }
    return 0;
}

static int slab_buffer(writer *wr, size_t need, char *err) {
    if (need <= wr->buf_size) return 0;
    free(wr->buf);
    wr->buf = malloc(need);
    wr->buf_size = wr->buf ? need : 0;
    return wr->buf ? 0 : fail(err, "out of memory for a slab of %zu bytes", need);
}

static int convert_tensor(writer *wr, const ds_gguf_tensor_info *t, ds_type to, size_t i, char *err) {
    int64_t rows = n_rows(t), ne0 = t->ne[0];
    int64_t slab = (int64_t)(SLAB_ELEMS / (size_t)ne0) ? (int64_t)(SLAB_ELEMS / (size_t)ne0) : 1;
    size_t src_row = ds_type_row_size(t->type, ne0), dst_row = ds_type_row_size(to, ne0);
    const float *im = NULL;
    if (imatrix_for(wr->im, t, to, &im, err) != 0) return -1;
    if (slab_buffer(wr, (size_t)(slab < rows ? slab : rows) * dst_row, err) != 0) return -1;
    for (int64_t r = 0; r < rows; r += slab) {
        int64_t nr = rows - r < slab ? rows - r : slab, bad;
        const unsigned char *src = (const unsigned char *)t->data + (size_t)r * src_row;
        qmix_job job = {t->type, to, src, wr->buf, nr, ne0, im, r, t->ne[1], wr->threads};
        int rc = qmix_convert_rows(&job, &bad);
        if (rc == -2) return fail(err, "out of memory while converting %s", t->name);
        if (rc != 0)
            return fail(err,
                        "tensor %s: row %lld gives non-finite %s data (inf or NaN in the "
                        "input, or values too large for the type)",
                        t->name, (long long)(r + bad), ds_type_name(to));
        if (ds_gguf_writer_write(wr->w, wr->buf, (size_t)nr * dst_row, err, ERR_LEN) != DS_OK) return -1;
        release(src, (size_t)nr * src_row);
        wr->prog->done += (size_t)nr * src_row;
        progress_show(wr->prog, i, t->name, to);
    }
    return 0;
}

/* Every tensor's importance weights are in place before anything is written. */
static int check_imatrix(const input *in, const imatrix *im, char *err) {
    for (size_t i = 0; im && i < in->n; i++) {
        const float *w;
        if (in->types[i] != in->info[i].type && imatrix_for(im, &in->info[i], in->types[i], &w, err) != 0) return -1;
    }
    return 0;
}

static int write_tensors(const options *o, const input *in, ds_gguf_writer *w, const imatrix *im, char *err) {
    progress prog = {isatty(STDERR_FILENO), in->n, 0, 0};
    writer wr = {w, &prog, o->threads, im, NULL, 0};
    int rc = 0;
    for (size_t i = 0; i < in->n; i++) prog.total += in->info[i].size;
    for (size_t k = 0; k < in->n && rc == 0; k++) {
        const ds_gguf_tensor_info *t = &in->info[in->order[k]];
        ds_type to = in->types[in->order[k]];
        if (o->verbose) {
            if (prog.tty) fputs("\r\033[K", stderr);
            describe(stderr, k, in->n, t, to);
        }
        progress_show(&prog, k, t->name, to);
        rc = to == t->type ? copy_tensor(&wr, t, k, err) : convert_tensor(&wr, t, to, k, err);
    }
    if (prog.tty) {
        if (rc == 0) progress_show(&prog, in->n, "", DS_TYPE_COUNT);
        fputc('\n', stderr);
    }
    free(wr.buf);
    return rc;
}

/* Keys set after the copy: llama.cpp removes and re-appends them, so they come last. */
static int set_later(const char *key, int has_imatrix) {
    static const char *const LATER[] = {"general.quantization_version", "general.file_type", "split.no", "split.count",
                                        "split.tensors.count"};
    for (size_t i = 0; i < sizeof LATER / sizeof LATER[0]; i++) {
        if (strcmp(key, LATER[i]) == 0) return 1;
    }
    return has_imatrix && strncmp(key, "quantize.imatrix.", 17) == 0;
}

static void write_metadata(ds_gguf_writer *w, const input *in, const qmix_opts *q, const options *o,
                           const imatrix *im) {
    for (size_t i = 0; i < ds_gguf_n_kv(in->g); i++) {
        const char *key = ds_gguf_kv_key(in->g, i);
        /* the writer aligns data to 32 bytes, so another alignment would misdescribe it */
        if (set_later(key, im != NULL) || (strcmp(key, "general.alignment") == 0 && kv_int(in->g, key, 32) != 32))
            continue;
        ds_gguf_copy_kv(w, in->g, i);
    }
    ds_gguf_set_u32(w, "general.quantization_version", 2);
    ds_gguf_set_u32(w, "general.file_type", q->ftype->ftype);
    if (im) imatrix_metadata(w, im, o->imatrix);
    for (size_t k = 0; k < in->n; k++) {
        const ds_gguf_tensor_info *t = &in->info[in->order[k]];
        ds_gguf_add_tensor(w, t->name, in->types[in->order[k]], trimmed_dims(t), t->ne);
    }
}

static void summary(const options *o, const input *in, const qmix_opts *q) {
    uint64_t before = 0, after = 0, elems = 0;
    for (size_t i = 0; i < in->n; i++) {
        before += in->info[i].size;
        after += out_bytes(&in->info[i], in->types[i]);
        elems += (uint64_t)(in->info[i].ne[0] * n_rows(&in->info[i]));
    }
    fprintf(o->dry_run ? stdout : stderr,
            "deepseek-quantize: %s%s: %s%s, %zu tensors, %.2f MiB -> %.2f MiB (%.2f bits per "
            "weight)\n",
            o->dry_run ? "would write " : "wrote ", o->out, q->ftype->name, q->pure ? " (pure)" : "", in->n,
            (double)before / 1048576.0, (double)after / 1048576.0, elems ? (double)after * 8.0 / (double)elems : 0.0);
}

static int write_output(const options *o, const input *in, const qmix_opts *q, const imatrix *im, char *err) {
    ds_gguf_writer *w;
    if (ds_gguf_writer_new(&w, err, ERR_LEN)) return -1;
    write_metadata(w, in, q, o, im);
    int rc = ds_gguf_writer_begin(w, o->out, err, ERR_LEN) == DS_OK ? 0 : -1;
    int begun = rc == 0;
    if (rc == 0) rc = write_tensors(o, in, w, im, err);
    if (rc == 0 && ds_gguf_writer_finish(w, err, ERR_LEN) != DS_OK) rc = -1;
    ds_gguf_writer_free(w);
    if (rc != 0 && begun) remove_partial(o->out);
    return rc;
}

static int run(const options *o, char *err) {
    input in = {0};
    qmix_opts q;
    imatrix im = {0};
    memset(&q, 0, sizeof q);
    int has_im = o->imatrix != NULL;
    int rc = build_mix(o, &q, has_im, err);
    if (rc == 0 && !o->dry_run && same_file(o->in, o->out))
        rc = fail(err, "input and output are the same file: %s", o->in);
    if (rc == 0) rc = open_input(o->in, &in, err);
    if (rc == 0 && has_im) rc = imatrix_load(o->imatrix, &im, err, ERR_LEN);
    if (rc == 0) rc = qmix_plan(&q, &in.m, in.t, in.n, in.order, in.types, err, ERR_LEN);
    if (rc == 0) rc = check_unique(&in, err);
    if (rc == 0) rc = check_imatrix(&in, has_im ? &im : NULL, err);
    for (size_t k = 0; rc == 0 && o->dry_run && k < in.n; k++)
        describe(stdout, k, in.n, &in.info[in.order[k]], in.types[in.order[k]]);
    if (rc == 0 && !o->dry_run) rc = write_output(o, &in, &q, has_im ? &im : NULL, err);
    if (rc == 0) summary(o, &in, &q);
    imatrix_free(&im);
    close_input(&in);
    qmix_opts_free(&q);
    return rc;
}

int main(int argc, char **argv) {
    char err[ERR_LEN] = "";
    options o;
    memset(&o, 0, sizeof o);
    o.threads = ds_physical_cores();
    o.tensor_types = calloc((size_t)argc + 1, sizeof *o.tensor_types);
    if (!o.tensor_types) {
        fprintf(stderr, "deepseek-quantize: out of memory\n");
        return 1;
    }
    int rc = parse_args(argc, argv, &o);
    if (rc == 0 && run(&o, err) != 0) {
        fprintf(stderr, "deepseek-quantize: %s\n", err);
        rc = -1;
    }
    free(o.tensor_types);
    return rc ? 1 : 0;
}
