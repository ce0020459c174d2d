/* deepseek-bench - prompt and generation speed, llama-bench style.

   deepseek-bench -m model.gguf [-p 512] [-n 128] [-t 1,2] [-r 3] [--ctx 0,2048,...] [-o md|json|csv]
   deepseek-bench --kernels [--type T] [--mb 256] [--reps 3]   (bench_kernels.c)

   pp: after one warm-up batch, the context is reset and pp random tokens are evaluated as one
   batch; t/s = pp / time. tg: reset, one token, then tg single-token evaluations; t/s = tg /
   time. Every run and the median are printed. Speed belongs here, never in a test.

   --ctx N,... (llama-bench's -d): the same tests after N tokens of context. For each thread
   count the context is filled once, by prefill in batches of -b (default at least 512), up to each depth in turn
   (ascending), and rewound to that depth before every run: pp evaluates its batch at positions
   N.., tg times tg single-token steps at positions N... Filling is not timed. */
#include "deepseek.h"
#include "args.h"
#include "clock.h"
#include "qmix.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { MAX_LIST = 16, MAX_LEN = 1 << 20 };

typedef enum { OUT_MD, OUT_JSON, OUT_CSV } out_format;

typedef struct {
    const char *model;
    int pp, tg, reps, n_batch, cache_type, no_warmup, membw;
    int threads[MAX_LIST], n_threads;
    int depths[MAX_LIST], n_depths; /* ascending, distinct; {0} without --ctx */
    out_format out;
} bench_args;

int bench_kernels(int argc, char **argv); /* bench_kernels.c */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

void bench_usage(FILE *fp);
void bench_usage(FILE *fp) {
    fputs("usage: deepseek-bench -m MODEL.gguf [options]\n"
          "       deepseek-bench --kernels [--type T] [--mb N] [--reps N]\n"
          "\n"
          "  -m, --model FILE        GGUF model\n"
          "  -p, --pp N              prompt tokens, evaluated together (see -b) after a warm-up (default 512;\n"
          "                          0: no prompt test)\n"
          "  -n, --tg N              generated tokens, one at a time (default 128; 0: no generation test)\n"
          "  -d, --ctx N,...         run the tests after N tokens of context too (llama-bench's -d; default 0):\n"
          "                          rows 'pp512 @ d4096', 'tg128 @ d4096'. The context is filled by prefill,\n"
          "                          not timed, once per thread count: to the smallest depth, measured, then\n"
          "                          on to the next, and rewound to the depth before every run\n"
          "  -t, --threads N,...     thread counts to run (default: physical cores)\n"
          "  -r, --reps N            repetitions of each test (default 3)\n"
          "  -b, --batch-size N      most tokens evaluated together, also when filling a context for --ctx\n"
          "                          (default: the whole prompt; with --ctx at least 512)\n" ARGS_CACHE_HELP
          "  -o, --output FORMAT     md (default: a table with the model's name, size, parameters and file\n"
          "                          type), json (an array of objects) or csv (a header row, then a row per test)\n"
          "      --no-warmup         skip the prompt test's warm-up batch\n"
          "      --membw             also measure this machine's memory read bandwidth per thread count,\n"
          "                          and give decode's share of it\n"
          "  -h, --help              this help\n"
          "      --version           the version and the kernel level of this CPU\n"
          "\n"
          "--kernels: the block-format kernels' speed per SIMD level, one thread; --type T only that\n"
          "type, --mb N the streamed matrix's MiB (default 256), --reps N (default 3).\n"
          "\n"
          "llama-bench's -ngl N and -fa 0|1 are accepted and ignored, with a note on stderr: this build\n"
          "runs on the CPU only.\n",
          fp);
}

/* ---- options ---- */

/* "1,2,4": up to MAX_LIST integers in [lo, hi] into out. */
static void parse_list(args_it *it, int lo, int hi, int *out, int *n) {
    const char *o = it->argv[it->i], *v = args_value(it);
    char buf[256];
    if (!v) return;
    if (strlen(v) >= sizeof buf) {
        args_fail(it, "%s: the list '%.32s...' is too long", o, v);
        return;
    }
    snprintf(buf, sizeof buf, "%s", v);
    *n = 0;
    for (char *tok = strtok(buf, ","); tok && !it->failed; tok = strtok(NULL, ",")) {
        if (*n == MAX_LIST) args_fail(it, "%s: at most %d values", o, MAX_LIST);
        else if (args_int(it->prog, o, tok, lo, hi, &out[(*n)++])) it->failed = 1;
    }
    if (!*n && !it->failed) args_fail(it, "%s: no value in '%s'", o, v);
}

static void parse_format(args_it *it, out_format *f) {
    const char *o = it->argv[it->i], *v = args_value(it);
    if (!v) return;
    if (!strcmp(v, "md")) *f = OUT_MD;
    else if (!strcmp(v, "json")) *f = OUT_JSON;
    else if (!strcmp(v, "csv")) *f = OUT_CSV;
    else args_fail(it, "%s: unknown output format '%s' (md, json or csv)", o, v);
}

/* Depths run in ascending order, each once: one fill serves them all. */
static void sort_depths(bench_args *a) {
    int n = 0;
    qsort(a->depths, (size_t)a->n_depths, sizeof *a->depths, cmp_int);
    for (int i = 0; i < a->n_depths; i++)
        if (!n || a->depths[i] != a->depths[n - 1]) a->depths[n++] = a->depths[i];
    a->n_depths = n;
}

static int parse_args(int argc, char **argv, bench_args *a) {
    args_it it = args_begin("deepseek-bench", argc, argv);
    for (const char *o; (o = args_next(&it));) {
        if (args_help_version(&it, o, bench_usage, 1)) continue;
        if (args_is(o, "-m|--model")) a->model = args_value(&it);
        else if (args_is(o, "-p|--pp|--n-prompt")) args_value_int(&it, 0, MAX_LEN, &a->pp);
        else if (args_is(o, "-n|--tg|--n-gen")) args_value_int(&it, 0, MAX_LEN, &a->tg);
        else if (args_is(o, "-d|--ctx|--n-depth")) parse_list(&it, 0, MAX_LEN, a->depths, &a->n_depths);
        else if (args_is(o, "-r|--reps|--repetitions")) args_value_int(&it, 1, 1000, &a->reps);
        else if (args_is(o, "-t|--threads")) parse_list(&it, 1, 1024, a->threads, &a->n_threads);
        else if (args_is(o, "-o|--output")) parse_format(&it, &a->out);
        else if (args_is(o, "--membw")) a->membw = 1;
        else if (args_is(o, "--no-warmup")) a->no_warmup = 1; /* llama-bench's, and there is a warm-up here */
        else if (!args_model_opt(&it, o, &a->n_batch, &a->cache_type, NULL)) args_unknown(&it);
    }
    if (it.failed) return -1;
    if (!a->model) return args_none_given(&it, "model", "-m FILE");
    if (!a->n_depths) a->depths[a->n_depths++] = 0;
    sort_depths(a);
    return 0;
}

/* ---- what the table says of the model: from the file's metadata and tensor table ---- */

typedef struct {
    char name[96], arch[32], type[16];
    double size, params; /* bytes and elements of the file's tensors */
} model_info;

static void copy_str(char *dst, size_t cap, const char *s, size_t len) {
    snprintf(dst, cap, "%.*s", (int)(len < cap ? len : cap - 1), s);
}

/* llama.cpp's file type name (general.file_type), else the type holding most matrix bytes. */
static void file_type(const ds_gguf *g, char *out, size_t cap) {
    int64_t ft;
    char num[24], err[128];
    double bytes[DS_TYPE_COUNT] = {0};
    const qmix_ftype *q = NULL;
    if (ds_gguf_get_int(g, "general.file_type", &ft)) {
        snprintf(num, sizeof num, "%lld", (long long)ft);
        q = qmix_find_ftype(num, err, sizeof err);
    }
    if (q) {
        snprintf(out, cap, "%s", q->name);
        return;
    }
    int best = DS_TYPE_F32;
    for (size_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        ds_gguf_tensor_info t;
        ds_gguf_tensor(g, i, &t);
        if (t.n_dims >= 2 && (int)t.type < DS_TYPE_COUNT) bytes[t.type] += (double)t.size;
    }
    for (int t = 0; t < DS_TYPE_COUNT; t++)
        if (bytes[t] > bytes[best]) best = t;
    snprintf(out, cap, "%s", ds_type_name((ds_type)best) ? ds_type_name((ds_type)best) : "?");
}

static int model_info_read(const char *path, model_info *mi, char *err, size_t err_size) {
    ds_gguf *g;
    size_t len;
    const char *s, *base = strrchr(path, '/');
    memset(mi, 0, sizeof *mi);
    if (ds_gguf_open(path, &g, err, err_size)) return -1;
    if ((s = ds_gguf_get_str(g, "general.name", &len)) && len) copy_str(mi->name, sizeof mi->name, s, len);
    else { /* the file's name less .gguf */ base = base ? base + 1 : path;
        len = strlen(base);
        if (len > 5 && !strcmp(base + len - 5, ".gguf")) len -= 5;
        copy_str(mi->name, sizeof mi->name, base, len);
    }
    if ((s = ds_gguf_get_str(g, "general.architecture", &len))) copy_str(mi->arch, sizeof mi->arch, s, len);
    file_type(g, mi->type, sizeof mi->type);
    for (size_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        ds_gguf_tensor_info t;
        ds_gguf_tensor(g, i, &t);
        mi->size += (double)t.size;
        mi->params += (double)t.ne[0] * (double)t.ne[1] * (double)t.ne[2] * (double)t.ne[3];
    }
    ds_gguf_close(g);
    return 0;
}

/* ---- one result row ---- */

typedef struct {
    int is_pp, n, depth, threads; /* n: the pp or tg count */
    const double *ts;             /* each repetition's tokens per second */
    int reps;
    double median, mean, sd;
    double decode_bytes, membw; /* tg: weight bytes per token; the machine's GB/s (0: not measured) */
} result;

static void test_name(const result *r, char *buf, size_t cap) {
    int k = snprintf(buf, cap, "%s%d", r->is_pp ? "pp" : "tg", r->n);
    if (r->depth && k > 0 && (size_t)k < cap) snprintf(buf + k, cap - (size_t)k, " @ d%d", r->depth);
}

static void summarize(result *r, double *ts) {
    double sum = 0, sq = 0;
    for (int i = 0; i < r->reps; i++) {
        sum += ts[i];
        sq += ts[i] * ts[i];
    }
    r->mean = sum / r->reps;
    r->sd = r->reps > 1 ? sqrt(fmax(sq / r->reps - r->mean * r->mean, 0) * r->reps / (r->reps - 1)) : 0;
    double *sorted = malloc((size_t)r->reps * sizeof *sorted);
    if (!sorted) { /* the mean is as good a middle as any then */
        r->median = r->mean;
        return;
    }
    memcpy(sorted, ts, (size_t)r->reps * sizeof *sorted);
    qsort(sorted, (size_t)r->reps, sizeof *sorted, cmp_double);
    r->median = r->reps % 2 ? sorted[r->reps / 2] : (sorted[r->reps / 2 - 1] + sorted[r->reps / 2]) / 2;
    free(sorted);
}

/* ---- output: a markdown table (and the weight traffic under it), JSON or CSV ---- */

typedef struct {
    const bench_args *a;
    const model_info *mi;
    int name_w, type_w; /* md column widths */
    int rows;
    char traffic[MAX_LIST * MAX_LIST * 2 * 192]; /* md: decode's weight traffic, printed under the table */
} output;

static const char *cache_name(int type) {
    switch (type) {
    case DS_TYPE_F16: return "f16";
    case DS_TYPE_BF16: return "bf16";
    case DS_TYPE_Q8_0: return "q8_0";
    default: return "f32";
    }
}

static void human_size(double bytes, char *buf, size_t cap) {
    if (bytes >= 1073741824.0) snprintf(buf, cap, "%.2f GiB", bytes / 1073741824.0);
    else snprintf(buf, cap, "%.2f MiB", bytes / 1048576.0);
}

static void human_params(double n, char *buf, size_t cap) {
    if (n >= 1e9) snprintf(buf, cap, "%.2f B", n / 1e9);
    else snprintf(buf, cap, "%.2f M", n / 1e6);
}

static void json_str(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

static void csv_str(const char *s) {
    putchar('"');
    for (const char *p = s; *p; p++) {
        if (*p == '"') putchar('"');
        putchar(*p);
    }
    putchar('"');
}

static void md_begin(output *o, const ds_model *m) {
    const int nw = o->name_w = (int)strlen(o->mi->name) > 5 ? (int)strlen(o->mi->name) : 5;
    const int tw = o->type_w = (int)strlen(o->mi->type) > 4 ? (int)strlen(o->mi->type) : 4;
    printf("model: %s\n%s\nkernels: %s\n", o->a->model, ds_model_desc(m), ds_simd_level());
    printf("| %-*s | %10s | %9s | %-*s | threads | %-14s | t/s median | t/s mean ± sd       | runs |\n", nw, "model",
           "size", "params", tw, "type", "test");
    printf("| %.*s | ---------: | --------: | %.*s | ------: | -------------- | ---------: | ------------------: | "
           "---- |\n",
           nw, "------------------------------------------------------------------------------------------------", tw,
           "----------------");
}

static void md_row(output *o, const result *r) {
    char size[32], params[32], test[48], runs[256] = "";
    human_size(o->mi->size, size, sizeof size);
    human_params(o->mi->params, params, sizeof params);
    test_name(r, test, sizeof test);
    for (int i = 0, at = 0; i < r->reps && at < (int)sizeof runs - 16; i++)
        at += snprintf(runs + at, sizeof runs - (size_t)at, "%s%.2f", i ? " " : "", r->ts[i]);
    printf("| %-*s | %10s | %9s | %-*s | %7d | %-14s | %10.2f | %8.2f ± %7.2f | %s |\n", o->name_w, o->mi->name, size,
           params, o->type_w, o->mi->type, r->threads, test, r->median, r->mean, r->sd, runs);
    if (r->is_pp) return;
    /* decode's weight traffic: what one token reads, times tokens per second */
    size_t at = strlen(o->traffic), cap = sizeof o->traffic;
    double gbs = r->decode_bytes * r->median / 1e9;
    char at_depth[32] = "";
    if (r->depth) snprintf(at_depth, sizeof at_depth, " @ d%d", r->depth);
    if (at + 192 > cap) return;
    at += (size_t)snprintf(o->traffic + at, cap - at, "tg%s, %d threads: %.2f MiB of weights per token, %.2f GB/s",
                           at_depth, r->threads, r->decode_bytes / 1048576.0, gbs);
    if (o->a->membw && r->membw > 0)
        at +=
            (size_t)snprintf(o->traffic + at, cap - at, " = %.0f%% of the %.2f GB/s this machine reads with %d threads",
                             100 * gbs / r->membw, r->membw, r->threads > 16 ? 16 : r->threads);
    else if (o->a->membw) at += (size_t)snprintf(o->traffic + at, cap - at, " (--membw: could not measure)");
    snprintf(o->traffic + at, cap - at, "\n");
}

static const char *const FIELDS[] = {"build",        "kernels",    "model_filename", "model_name", "model_arch",
                                     "file_type",    "model_size", "model_n_params", "n_threads",  "n_batch",
                                     "type_k",       "test",       "n_prompt",       "n_gen",      "n_depth",
                                     "reps",         "avg_ts",     "stddev_ts",      "median_ts",  "samples_ts",
                                     "decode_bytes", "membw_gbs"};
#define N_FIELDS (sizeof FIELDS / sizeof *FIELDS)

static void csv_begin(void) {
    for (size_t i = 0; i < N_FIELDS; i++) printf("%s%s", i ? "," : "", FIELDS[i]);
    putchar('\n');
}

/* One field's value; is_json: JSON's form (strings quoted, samples an array, absent as null). */
static void field(const output *o, const result *r, size_t i, int is_json, int n_batch) {
    const bench_args *a = o->a;
    const model_info *mi = o->mi;
    char test[48];
    void (*str)(const char *) = is_json ? json_str : csv_str;
    switch (i) {
    case 0: str(ds_version()); break;
    case 1: str(ds_simd_level()); break;
    case 2: str(a->model); break;
    case 3: str(mi->name); break;
    case 4: str(mi->arch); break;
    case 5: str(mi->type); break;
    case 6: printf("%.0f", mi->size); break;
    case 7: printf("%.0f", mi->params); break;
    case 8: printf("%d", r->threads); break;
    case 9: printf("%d", n_batch); break;
    case 10: str(cache_name(a->cache_type)); break;
    case 11:
        test_name(r, test, sizeof test);
        str(test);
        break;
    case 12: printf("%d", r->is_pp ? r->n : 0); break;
    case 13: printf("%d", r->is_pp ? 0 : r->n); break;
    case 14: printf("%d", r->depth); break;
    case 15: printf("%d", r->reps); break;
    case 16: printf("%.4f", r->mean); break;
    case 17: printf("%.4f", r->sd); break;
    case 18: printf("%.4f", r->median); break;
    case 19:
        printf(is_json ? "[" : "\"");
        for (int k = 0; k < r->reps; k++) printf("%s%.4f", k ? (is_json ? ", " : " ") : "", r->ts[k]);
        printf(is_json ? "]" : "\"");
        break;
    case 20:
        if (!r->is_pp) printf("%.0f", r->decode_bytes);
        else if (is_json) printf("null");
        break;
    case 21:
        if (!r->is_pp && r->membw > 0) printf("%.4f", r->membw);
        else if (is_json) printf("null");
        break;
    }
}

static void row(output *o, const result *r, int n_batch) {
    if (o->a->out == OUT_MD) md_row(o, r);
    else if (o->a->out == OUT_CSV) {
        for (size_t i = 0; i < N_FIELDS; i++) {
            if (i) putchar(',');
            field(o, r, i, 0, n_batch);
        }
        putchar('\n');
    } else {
        printf("%s  {", o->rows ? ",\n" : "");
        for (size_t i = 0; i < N_FIELDS; i++) {
            printf("%s\"%s\": ", i ? ", " : "", FIELDS[i]);
            field(o, r, i, 1, n_batch);
        }
        putchar('}');
    }
    o->rows++;
    fflush(stdout);
}

static void output_begin(output *o, const ds_model *m) {
    if (o->a->out == OUT_MD) md_begin(o, m);
    else if (o->a->out == OUT_CSV) csv_begin();
    else printf("[\n");
}

/* The JSON array is closed even after a failed test, so what was measured stays readable. */
static void output_end(output *o) {
    if (o->a->out == OUT_MD) fputs(o->traffic, stdout);
    else if (o->a->out == OUT_JSON) printf("%s]\n", o->rows ? "\n" : "");
    fflush(stdout);
}

/* ---- memory read bandwidth: n threads each summing their own slice of a buffer far larger than
   any cache, as a decode step streams weights; the best of a few passes ---- */

enum { MEMBW_BYTES = 1 << 30, MEMBW_PASSES = 5 };

typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} membw_slice;

static void *membw_read(void *arg) {
    membw_slice *s = arg;
    uint64_t a = 0, b = 0, c = 0, d = 0; /* four chains: the loads, not the adds, set the pace */
    for (size_t i = 0; i + 4 <= s->n; i += 4) {
        a += s->p[i];
        b += s->p[i + 1];
        c += s->p[i + 2];
        d += s->p[i + 3];
    }
    s->sum = a + b + c + d;
    return NULL;
}

/* GB/s read by n threads, or a negative value when the buffer or a thread cannot be had. */
static double membw(const uint64_t *buf, size_t words, int n) {
    membw_slice sl[16];
    pthread_t th[16];
    double best = 0;
    for (int pass = 0; pass < MEMBW_PASSES; pass++) {
        double t0 = now_s();
        int started = 0;
        for (; started < n; started++) {
            sl[started] = (membw_slice){buf + words * (size_t)started / (size_t)n, words / (size_t)n, 0};
            if (pthread_create(&th[started], NULL, membw_read, &sl[started])) break;
        }
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
        if (started < n) return -1;
        double gbs = (double)words * sizeof *buf / (now_s() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

/* The bandwidth n_threads (at most 16) read, measured once per process and thread count. */
static double machine_membw(int n_threads) {
    static uint64_t *buf;
    static double known[17];
    const int n = n_threads > 16 ? 16 : n_threads;
    if (known[n]) return known[n];
    if (!buf && (buf = malloc(MEMBW_BYTES))) memset(buf, 1, MEMBW_BYTES); /* fault every page in first */
    known[n] = buf ? membw(buf, MEMBW_BYTES / sizeof *buf, n) : -1;
    return known[n];
}

/* ---- measuring ---- */

typedef struct {
    const ds_model *m;
    ds_context *ctx;
    const bench_args *a;
    const int32_t *toks, *fill; /* the tests' tokens; the context's filler, max depth of them */
    int threads, n_batch;
    int filled; /* positions [0, filled) hold filler */
    double *ts;
} runner;

static double rate(int n, double t0) {
    double dt = now_s() - t0;
    return n / (dt > 1e-9 ? dt : 1e-9);
}

/* One timed run at depth d; tokens per second, or a negative value on error. */
static double run_once(runner *R, int d, int pp, int tg) {
    if (ds_context_rewind(R->ctx, d)) return -1;
    double t0 = now_s();
    if (pp) return ds_eval(R->ctx, R->toks, pp, 0) ? -1 : rate(pp, t0);
    /* an empty context first takes one token untimed, so that every timed step attends */
    const int32_t *t = R->toks;
    if (!d && ds_eval(R->ctx, t++, 1, 0)) return -1;
    t0 = now_s();
    for (int i = 0; i < tg; i++)
        if (ds_eval(R->ctx, t + i, 1, 0)) return -1;
    return rate(tg, t0);
}

/* Prefill the filler from R->filled up to depth d in batches, with a note on stderr now and then:
   long contexts take minutes. */
static int fill_to(runner *R, int d) {
    const int from = R->filled;
    double t0 = now_s(), last = t0;
    if (d <= from) return 0;
    if (ds_context_rewind(R->ctx, from)) return -1;
    fprintf(stderr, "deepseek-bench: %d threads: filling the context from %d to %d tokens (not timed)\n", R->threads,
            from, d);
    for (int at = from; at < d;) {
        int n = d - at < R->n_batch ? d - at : R->n_batch;
        if (ds_eval(R->ctx, R->fill + at, n, 0)) return -1;
        at += n;
        if (now_s() - last >= 10 && at < d) {
            last = now_s();
            fprintf(stderr, "deepseek-bench: %d threads: %d of %d tokens, %.1f t/s\n", R->threads, at, d,
                    (at - from) / (last - t0));
        }
    }
    R->filled = d;
    return 0;
}

/* A test's repetitions at depth d, and its row. */
static int bench(runner *R, output *o, int is_pp, int d) {
    const bench_args *a = R->a;
    result r = {.is_pp = is_pp, .n = is_pp ? a->pp : a->tg, .depth = d, .threads = R->threads, .ts = R->ts};
    if (is_pp && !d && !a->no_warmup && run_once(R, 0, a->pp, 0) < 0) return -1; /* at depth, the fill warmed up */
    for (r.reps = 0; r.reps < a->reps; r.reps++) {
        R->ts[r.reps] = run_once(R, d, is_pp ? a->pp : 0, is_pp ? 0 : a->tg);
        if (R->ts[r.reps] < 0) return -1;
    }
    summarize(&r, R->ts);
    if (!is_pp) {
        r.decode_bytes = (double)ds_model_decode_bytes(R->m);
        if (a->membw) r.membw = machine_membw(R->threads);
    }
    row(o, &r, R->n_batch);
    return 0;
}

static int max_i(int a, int b) { return a > b ? a : b; }

/* Every depth's tests with one thread count. */
static int bench_threads(ds_model *m, const bench_args *a, int threads, const int32_t *toks, const int32_t *fill,
                         output *o) {
    const int max_depth = a->depths[a->n_depths - 1];
    ds_context_params p = ds_context_default_params();
    char err[512];
    p.n_threads = threads;
    p.n_ctx = max_depth + max_i(a->pp, a->tg + 1);
    /* filling goes in batches of 512 at least: one token at a time would take far longer */
    p.n_batch = a->n_batch ? a->n_batch : max_i(a->pp, max_depth ? 512 : 1);
    p.cache_type = a->cache_type;
    runner R = {.m = m, .a = a, .toks = toks, .fill = fill, .threads = threads, .n_batch = p.n_batch};
    if (ds_context_new(m, &p, &R.ctx, err, sizeof err)) {
        fprintf(stderr, "deepseek-bench: %s\n", err);
        return -1;
    }
    int rc = (R.ts = malloc((size_t)a->reps * sizeof *R.ts)) ? 0 : -1;
    for (int i = 0; i < a->n_depths && !rc; i++) {
        const int d = a->depths[i];
        rc = fill_to(&R, d);
        if (!rc && a->pp) rc = bench(&R, o, 1, d);
        if (!rc && a->tg) rc = bench(&R, o, 0, d);
    }
    if (rc) fprintf(stderr, "deepseek-bench: %s\n", R.ts ? ds_context_error(R.ctx) : "out of memory");
    free(R.ts);
    ds_context_free(R.ctx);
    return rc;
}

static int32_t *random_tokens(int n, int n_vocab) {
    int32_t *t = malloc((size_t)(n > 0 ? n : 1) * sizeof *t);
    for (int i = 0; t && i < n; i++) t[i] = rand() % n_vocab;
    return t;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--kernels")) return bench_kernels(argc - 1, argv + 1);
    bench_args a = {.pp = 512, .tg = 128, .reps = 3};
    if (parse_args(argc, argv, &a)) return 1;
    if (!a.n_threads) a.threads[a.n_threads++] = ds_physical_cores();
    char err[512];
    ds_model *m;
    model_info mi;
    if (ds_model_load(a.model, &m, err, sizeof err) || model_info_read(a.model, &mi, err, sizeof err)) {
        fprintf(stderr, "deepseek-bench: %s\n", err);
        return 1;
    }
    srand(42);
    int32_t *toks = random_tokens(max_i(a.pp, a.tg + 1), ds_model_n_vocab(m));
    int32_t *fill = random_tokens(a.depths[a.n_depths - 1], ds_model_n_vocab(m));
    output o = {.a = &a, .mi = &mi};
    int rc = toks && fill ? 0 : 1;
    if (rc) fprintf(stderr, "deepseek-bench: out of memory\n");
    else output_begin(&o, m);
    for (int i = 0; i < a.n_threads && !rc; i++) rc = bench_threads(m, &a, a.threads[i], toks, fill, &o) ? 1 : 0;
    if (toks && fill) output_end(&o);
    free(toks);
    free(fill);
    ds_model_free(m);
    return rc;
}
