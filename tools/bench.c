/* deepseek-bench - prompt and generation speed, llama-bench style.

   deepseek-bench -m model.gguf [--pp 512] [--tg 128] [-t 1,2] [--reps 3]
   deepseek-bench --kernels [--type T] [--mb 256] [--reps 3]   (bench_kernels.c)

   pp: after one warm-up batch, the context is reset and pp random tokens are evaluated as one
   batch; t/s = pp / time. tg: reset, one token, then tg single-token evaluations; t/s = tg /
   time. Every run and the median are printed. Speed belongs here, never in a test. */
#include "deepseek.h"
#include "args.h"
#include "clock.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *model;
    int pp, tg, reps, n_batch, cache_type, no_warmup, membw;
    int threads[16];
    int n_threads;
} bench_args;

int bench_kernels(int argc, char **argv); /* bench_kernels.c */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_usage(FILE *fp);
void bench_usage(FILE *fp) {
    fputs("usage: deepseek-bench -m MODEL.gguf [options]\n"
          "       deepseek-bench --kernels [--type T] [--mb N] [--reps N]\n"
          "\n"
          "  -m, --model FILE        GGUF model\n"
          "  -p, --pp N              prompt tokens, evaluated together (see -b) after a warm-up (default 512)\n"
          "  -n, --tg N              generated tokens, one at a time (default 128)\n"
          "  -t, --threads N,...     thread counts to run (default: physical cores)\n"
          "  -r, --reps N            repetitions of each test (default 3)\n"
          "  -b, --batch-size N      most tokens evaluated together (default: the whole prompt)\n" ARGS_CACHE_HELP
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

/* "1,2,4": up to 16 thread counts. */
static void parse_threads(args_it *it, bench_args *a) {
    const char *o = it->argv[it->i], *v = args_value(it);
    char buf[128];
    if (!v) return;
    snprintf(buf, sizeof buf, "%s", v);
    a->n_threads = 0;
    for (char *tok = strtok(buf, ","); tok && !it->failed; tok = strtok(NULL, ",")) {
        if (a->n_threads == 16) args_fail(it, "%s: at most 16 thread counts", o);
        else if (args_int(it->prog, o, tok, 1, 1024, &a->threads[a->n_threads++])) it->failed = 1;
    }
    if (!a->n_threads && !it->failed) args_fail(it, "%s: no thread count in '%s'", o, v);
}

static int parse_args(int argc, char **argv, bench_args *a) {
    args_it it = args_begin("deepseek-bench", argc, argv);
    for (const char *o; (o = args_next(&it));) {
        if (args_help_version(&it, o, bench_usage, 1)) continue;
        if (args_is(o, "-m|--model")) a->model = args_value(&it);
        else if (args_is(o, "-p|--pp|--n-prompt")) args_value_int(&it, 0, 1 << 20, &a->pp);
        else if (args_is(o, "-n|--tg|--n-gen")) args_value_int(&it, 0, 1 << 20, &a->tg);
        else if (args_is(o, "-r|--reps|--repetitions")) args_value_int(&it, 1, 1000, &a->reps);
        else if (args_is(o, "-t|--threads")) parse_threads(&it, a);
        else if (args_is(o, "--membw")) a->membw = 1;
        else if (args_is(o, "--no-warmup")) a->no_warmup = 1; /* llama-bench's, and there is a warm-up here */
        else if (!args_model_opt(&it, o, &a->n_batch, &a->cache_type, NULL)) args_unknown(&it);
    }
    if (it.failed) return -1;
    if (!a->model) return args_none_given(&it, "model", "-m FILE");
    return 0;
}

/* One timed run; returns tokens per second, or a negative value on error. */
static double run_once(ds_context *ctx, const int32_t *toks, int pp, int tg) {
    ds_context_reset(ctx);
    double t0 = now_s();
    if (pp) {
        if (ds_eval(ctx, toks, pp, 0)) return -1;
        return pp / (now_s() - t0);
    }
    if (ds_eval(ctx, toks, 1, 0)) return -1;
    t0 = now_s();
    for (int i = 0; i < tg; i++)
        if (ds_eval(ctx, toks + 1 + i, 1, 0)) return -1;
    return tg / (now_s() - t0);
}

static int bench(ds_context *ctx, const int32_t *toks, const bench_args *a, int n_threads, int is_pp, double *median) {
    int n = is_pp ? a->pp : a->tg;
    double *ts = malloc((size_t)a->reps * sizeof *ts);
    if (!ts || (is_pp && !a->no_warmup && run_once(ctx, toks, a->pp, 0) < 0)) {
        free(ts);
        return -1;
    } /* warm-up */
    double sum = 0, sq = 0;
    for (int r = 0; r < a->reps; r++) {
        ts[r] = run_once(ctx, toks, is_pp ? a->pp : 0, is_pp ? 0 : a->tg);
        if (ts[r] < 0) {
            free(ts);
            return -1;
        }
        sum += ts[r];
        sq += ts[r] * ts[r];
    }
    double mean = sum / a->reps,
           sd = a->reps > 1 ? sqrt(fmax(sq / a->reps - mean * mean, 0) * a->reps / (a->reps - 1)) : 0;
    char runs[256] = "";
    for (int r = 0, at = 0; r < a->reps && at < (int)sizeof runs - 16; r++)
        at += snprintf(runs + at, sizeof runs - at, " %.2f", ts[r]);
    qsort(ts, (size_t)a->reps, sizeof *ts, cmp_double);
    double med = a->reps % 2 ? ts[a->reps / 2] : (ts[a->reps / 2 - 1] + ts[a->reps / 2]) / 2;
    printf("| %s%-5d | %7d | %10.2f | %8.2f ± %7.2f |%s\n", is_pp ? "pp" : "tg", n, n_threads, med, mean, sd, runs);
    *median = med;
    fflush(stdout);
    free(ts);
    return 0;
}

enum { MEMBW_BYTES = 1 << 30, MEMBW_PASSES = 5 };

/* ---- memory read bandwidth: n threads each summing their own slice of a buffer far larger than
   any cache, as a decode step streams weights; the best of a few passes ---- */

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

/* Decode's weight traffic: what one token reads, times tokens per second, and with --membw the
   share of what this machine's memory gives the same number of threads. */
static void tg_bandwidth(const ds_model *m, const bench_args *a, int n_threads, double tg_ts, char *out, size_t cap) {
    static uint64_t *buf;
    size_t at = strlen(out);
    const size_t words = MEMBW_BYTES / sizeof *buf;
    double bytes = (double)ds_model_decode_bytes(m), gbs = bytes * tg_ts / 1e9;
    at += (size_t)snprintf(out + at, cap - at, "tg, %d threads: %.2f MiB of weights per token, %.2f GB/s", n_threads,
                           bytes / 1048576.0, gbs);
    if (a->membw) {
        if (!buf && (buf = malloc(MEMBW_BYTES))) memset(buf, 1, MEMBW_BYTES); /* fault every page in first */
        const int n = n_threads > 16 ? 16 : n_threads;
        double bw = buf ? membw(buf, words, n) : -1;
        if (at < cap && bw > 0)
            at += (size_t)snprintf(out + at, cap - at, " = %.0f%% of the %.2f GB/s this machine reads with %d threads",
                                   100 * gbs / bw, bw, n);
        else if (at < cap) at += (size_t)snprintf(out + at, cap - at, " (--membw: could not measure)");
    }
    if (at + 1 < cap) strcat(out, "\n");
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--kernels")) return bench_kernels(argc - 1, argv + 1);
    bench_args a = {.pp = 512, .tg = 128, .reps = 3};
    if (parse_args(argc, argv, &a)) return 1;
    if (!a.n_threads) a.threads[a.n_threads++] = ds_physical_cores();
    char err[512];
    ds_model *m;
    if (ds_model_load(a.model, &m, err, sizeof err)) {
        fprintf(stderr, "deepseek-bench: %s\n", err);
        return 1;
    }
    int n_tok = (a.pp > a.tg + 1 ? a.pp : a.tg + 1), rc = 0;
    char traffic[16 * 256] = ""; /* decode's weight traffic, printed under the table */
    int32_t *toks = malloc((size_t)n_tok * sizeof *toks);
    srand(42);
    for (int i = 0; toks && i < n_tok; i++) toks[i] = rand() % ds_model_n_vocab(m);
    printf("model: %s\n%s\nkernels: %s\n", a.model, ds_model_desc(m), ds_simd_level());
    printf("| test    | threads | t/s median | t/s mean ± sd       | "
           "runs\n|---------|---------|------------|---------------------|-----\n");
    for (int i = 0; toks && i < a.n_threads && !rc; i++) {
        ds_context_params p = ds_context_default_params();
        p.n_threads = a.threads[i];
        p.n_ctx = n_tok;
        p.n_batch = a.n_batch ? a.n_batch : a.pp > 0 ? a.pp : 1;
        p.cache_type = a.cache_type;
        ds_context *ctx;
        if (ds_context_new(m, &p, &ctx, err, sizeof err)) {
            fprintf(stderr, "deepseek-bench: %s\n", err);
            rc = 1;
            break;
        }
        double pp_ts, tg_ts = 0;
        if ((a.pp && bench(ctx, toks, &a, a.threads[i], 1, &pp_ts)) ||
            (a.tg && bench(ctx, toks, &a, a.threads[i], 0, &tg_ts))) {
            fprintf(stderr, "deepseek-bench: %s\n", ds_context_error(ctx));
            rc = 1;
        }
        if (tg_ts > 0) tg_bandwidth(m, &a, a.threads[i], tg_ts, traffic, sizeof traffic);
        ds_context_free(ctx);
    }
    fputs(traffic, stdout);
    free(toks);
    ds_model_free(m);
    return rc;
}
