/* deepseek-bench - prompt and generation speed, llama-bench style.

   deepseek-bench -m model.gguf [--pp 512] [--tg 128] [-t 1,2] [--reps 3]
   deepseek-bench --kernels [--type T] [--mb 256] [--reps 3]   (bench_kernels.c)

   pp: after one warm-up batch, the context is reset and pp random tokens are evaluated as one
   batch; t/s = pp / time. tg: reset, one token, then tg single-token evaluations; t/s = tg /
   time. Every run and the median are printed. Speed belongs here, never in a test. */
#include "deepseek.h"
#include "args.h"
#include "clock.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *model;
    int pp, tg, reps;
    int threads[16];
    int n_threads;
} bench_args;

int bench_kernels(int argc, char **argv); /* bench_kernels.c */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out) {
    return args_int("deepseek-bench", opt, s, lo, hi, out);
}

static int parse_threads(const char *s, bench_args *a) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    a->n_threads = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (a->n_threads == 16 || parse_int("-t", tok, 1, 1024, &a->threads[a->n_threads++])) return -1;
    }
    return a->n_threads ? 0 : -1;
}

static int parse_args(int argc, char **argv, bench_args *a) {
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            printf("usage: deepseek-bench -m MODEL.gguf [--pp N (512)] [--tg N (128)] [-t 1,2,... (physical cores)] "
                   "[--reps N (3)]\n"
                   "       deepseek-bench --kernels [--type T] [--mb N (256)] [--reps N (3)]   block-format kernels "
                   "per SIMD level\n");
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "deepseek-bench: %s: unknown option or missing value (see -h)\n", o);
            return -1;
        }
        int bad = 0;
        if (!strcmp(o, "-m")) a->model = v;
        else if (!strcmp(o, "--pp")) bad = parse_int(o, v, 0, 1 << 20, &a->pp);
        else if (!strcmp(o, "--tg")) bad = parse_int(o, v, 0, 1 << 20, &a->tg);
        else if (!strcmp(o, "--reps")) bad = parse_int(o, v, 1, 1000, &a->reps);
        else if (!strcmp(o, "-t")) bad = parse_threads(v, a);
        else {
            fprintf(stderr, "deepseek-bench: %s: unknown option (see -h)\n", o);
            return -1;
        }
        if (bad) return -1;
    }
    if (!a->model) {
        fprintf(stderr, "deepseek-bench: no model given (-m FILE)\n");
        return -1;
    }
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

static int bench(ds_context *ctx, const int32_t *toks, const bench_args *a, int n_threads, int is_pp) {
    int n = is_pp ? a->pp : a->tg;
    double *ts = malloc((size_t)a->reps * sizeof *ts);
    if (!ts || (is_pp && run_once(ctx, toks, a->pp, 0) < 0)) {
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
    fflush(stdout);
    free(ts);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--kernels")) return bench_kernels(argc - 1, argv + 1);
    bench_args a = {NULL, 512, 128, 3, {0}, 0};
    if (parse_args(argc, argv, &a)) return 1;
    if (!a.n_threads) a.threads[a.n_threads++] = ds_physical_cores();
    char err[512];
    ds_model *m;
    if (ds_model_load(a.model, &m, err, sizeof err)) {
        fprintf(stderr, "deepseek-bench: %s\n", err);
        return 1;
    }
    int n_tok = (a.pp > a.tg + 1 ? a.pp : a.tg + 1), rc = 0;
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
        p.n_batch = a.pp > 0 ? a.pp : 1;
        ds_context *ctx;
        if (ds_context_new(m, &p, &ctx, err, sizeof err)) {
            fprintf(stderr, "deepseek-bench: %s\n", err);
            rc = 1;
            break;
        }
        if ((a.pp && bench(ctx, toks, &a, a.threads[i], 1)) || (a.tg && bench(ctx, toks, &a, a.threads[i], 0))) {
            fprintf(stderr, "deepseek-bench: %s\n", ds_context_error(ctx));
            rc = 1;
        }
        ds_context_free(ctx);
    }
    free(toks);
    ds_model_free(m);
    return rc;
}
