/* bench_kernels.c - deepseek-bench --kernels: the block-format kernels' speed per type and per
   SIMD level, one thread.

   deepseek-bench --kernels [--type T] [--mb N (256)] [--reps N (3)]

   vec_dot runs over every row of a weight matrix of N MiB (larger than the last-level cache, so
   the rows stream from memory as in decoding) and of 256 KiB (cache-resident: the kernel's own
   speed), against one activation row; vec_dot4 over the large matrix against four. Speeds are
   weight bytes per second, the best of the repetitions. dequant (to_f32) widens the rows of the
   cache-resident matrix into one float row, and is weight bytes per second too. act_quant is the float32 row bytes it
   reads per second, over a cache-resident row. Rows are 4096 elements; the matrix repeats 16
   rows made by the scalar quantizer, which changes nothing for the kernels. Levels are those
   this CPU runs: scalar (quant/'s reference code, which has no vec_dot4 of its own), avx2,
   avx512 (F/BW/VL only) and avx512vnni; each is measured through the type table
   ds_simd_compose makes of it, as the core's is made.
   Unlike the other tools this one uses quant/ and simd/ directly (quant/quant.h, simd/simd.h)
   and links their static libraries (meson.build's kernels_dep), not libdeepseek's internal
   symbols. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "args.h"
#include "clock.h"
#include "deepseek.h"
#include "quant/quant.h"
#include "simd/simd.h"

enum { N = 4096, DISTINCT = 16, SMALL_BYTES = 256 << 10, MAX_LEVELS = 4 };

static const ds_type dot_types[] = {
    DS_TYPE_Q4_0, DS_TYPE_Q4_1, DS_TYPE_Q5_0, DS_TYPE_Q5_1, DS_TYPE_Q8_0,   DS_TYPE_IQ4_NL,  DS_TYPE_Q2_K,
    DS_TYPE_Q3_K, DS_TYPE_Q4_K, DS_TYPE_Q5_K, DS_TYPE_Q6_K, DS_TYPE_IQ4_XS, DS_TYPE_IQ2_XXS, DS_TYPE_IQ1_S,
};
static const ds_type act_types[] = {DS_TYPE_Q8_0, DS_TYPE_Q8_1, DS_TYPE_Q8_K};
#define COUNT(a) (sizeof(a) / sizeof *(a))

typedef struct {
    const char *name;
    ds_type_traits tr[DS_TYPE_COUNT]; /* quant/'s table with the level's kernels (ds_simd_compose) */
} level;

typedef struct {
    const char *type; /* NULL: all */
    int mb, reps;
} kernel_args;

static volatile float sink; /* keeps the results alive */

static int find_levels(level *out) {
    const ds_simd_kernels *k[MAX_LEVELS] = {ds_simd_scalar(), ds_simd_avx2(), ds_simd_avx512_plain(),
                                            ds_simd_avx512_vnni()};
    int n = 0;
    for (int i = 0; i < MAX_LEVELS; i++) {
        if (!k[i]) continue;
        out[n].name = k[i]->name;
        ds_simd_compose(k[i], out[n++].tr);
    }
    return n;
}

static float frand(void) { return (float)((double)rand() / RAND_MAX * 2.0 - 1.0); }

/* rows x row_bytes of type t: DISTINCT quantized random rows, repeated. */
static uint8_t *make_matrix(ds_type t, int64_t rows, size_t rb) {
    const ds_type_traits *tt = ds_quant_scalar_traits(t);
    uint8_t *m = malloc((size_t)rows * rb);
    float *x = malloc(N * sizeof *x), *imatrix = malloc(N * sizeof *imatrix);
    if (!m || !x || !imatrix) goto fail;
    for (int r = 0; r < DISTINCT && r < rows; r++) {
        for (int j = 0; j < N; j++) {
            x[j] = frand() * (1 + (j % 97 == 0) * 8.0f);
            imatrix[j] = 0.5f + (float)(rand() % 100) / 50;
        }
        if (!tt->quantize(x, m + r * rb, N, tt->needs_imatrix ? imatrix : NULL)) goto fail;
    }
    for (int64_t r = DISTINCT; r < rows; r++) memcpy(m + r * rb, m + (r % DISTINCT) * rb, rb);
    free(x);
    free(imatrix);
    return m;
fail:
    free(m);
    free(x);
    free(imatrix);
    return NULL;
}

/* One pass of vec_dot (or vec_dot4 where four is set) over the rows; returns seconds. */
static double pass(ds_vec_dot_fn dot, ds_vec_dot4_fn dot4, int four, const uint8_t *m, int64_t rows, size_t rb,
                   const void *const act[4]) {
    float acc = 0, out[4];
    double t0 = now_s();
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *w = m + r * rb;
        if (four) {
            dot4(w, act, N, out);
            acc += out[0] + out[3];
        } else {
            acc += dot(w, act[0], N);
        }
    }
    double t = now_s() - t0;
    sink = acc;
    return t;
}

/* Weight GB/s, the best of reps passes after a warm-up one; passes repeat until each takes
   20 ms (cache-resident matrices are small). A pass over a second is slow enough to be its own
   warm-up, and is measured once (the scalar code over the large matrix). */
static double speed(ds_vec_dot_fn dot, ds_vec_dot4_fn dot4, int four, const uint8_t *m, int64_t rows, size_t rb,
                    const void *const act[4], int reps) {
    int inner = 1;
    double first = pass(dot, dot4, four, m, rows, rb, act);
    if (first > 1.0) return (double)rows * rb / first / 1e9;
    while (first * inner < 0.02 && inner < (1 << 20)) inner *= 2;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = 0;
        for (int i = 0; i < inner; i++) t += pass(dot, dot4, four, m, rows, rb, act);
        if (t < best) best = t;
    }
    return (double)rows * rb * inner / best / 1e9;
}

/* dequant over the rows into one float row: weight GB/s, best of reps after a 20 ms sizing pass. */
static double deq_speed(ds_widen_fn f, const uint8_t *m, int64_t rows, size_t rb, float *y, int reps) {
    int inner = 1;
    double best = 1e30;
    for (int r = -1; r < reps; r++) {
        double t0 = now_s();
        for (int i = 0; i < inner; i++)
            for (int64_t j = 0; j < rows; j++) f(m + j * rb, y, N);
        double s = now_s() - t0;
        if (r < 0) {
            while (s * inner < 0.02 && inner < (1 << 20)) inner *= 2;
            continue;
        }
        if (s < best) best = s;
    }
    sink = y[N - 1];
    return (double)rows * rb * inner / best / 1e9;
}

static int bench_type(ds_type t, const level *lv, int n_levels, const kernel_args *a) {
    const ds_type_traits *tt = ds_quant_scalar_traits(t), *at = ds_quant_scalar_traits(tt->vec_dot_type);
    const size_t rb = ds_type_row_size(t, N);
    const int64_t big_rows = ((int64_t)a->mb << 20) / (int64_t)rb + 1;
    const int64_t small_rows = SMALL_BYTES / (int64_t)rb;
    uint8_t *big = make_matrix(t, big_rows, rb), *acts = malloc(4 * ds_type_row_size(tt->vec_dot_type, N));
    float *x = malloc(N * sizeof *x);
    if (!big || !acts || !x) {
        fprintf(stderr, "deepseek-bench: out of memory for %s\n", tt->name);
        free(big), free(acts), free(x);
        return -1;
    }
    const void *act[4];
    for (int k = 0; k < 4; k++) {
        for (int j = 0; j < N; j++) x[j] = frand();
        at->from_f32(x, acts + k * ds_type_row_size(tt->vec_dot_type, N), N);
        act[k] = acts + k * ds_type_row_size(tt->vec_dot_type, N);
    }
    for (int i = 0; i < n_levels; i++) {
        const ds_type_traits *lt = &lv[i].tr[t];
        ds_vec_dot_fn dot = lt->vec_dot;
        double large = speed(dot, NULL, 0, big, big_rows, rb, act, a->reps);
        double small = speed(dot, NULL, 0, big, small_rows, rb, act, a->reps);
        char four[16] = "       -"; /* the scalar level has no vec_dot4 */
        ds_vec_dot4_fn dot4 = lt->vec_dot4;
        if (dot4) snprintf(four, sizeof four, "%8.2f", speed(dot, dot4, 1, big, big_rows, rb, act, a->reps));
        const double deq = deq_speed(lt->to_f32, big, small_rows, rb, x, a->reps);
        printf("| %-7s | %-10s | %8.2f | %s | %8.2f | %8.2f |\n", tt->name, lv[i].name, large, four, small, deq);
        fflush(stdout);
    }
    free(big), free(acts), free(x);
    return 0;
}

/* act_quant: float32 GB/s read, over one cache-resident row. */
static void bench_act(ds_type t, const level *lv, int n_levels, int reps) {
    const ds_type_traits *tt = ds_quant_scalar_traits(t);
    float *x = malloc(N * sizeof *x);
    uint8_t *q = malloc(ds_type_row_size(t, N));
    if (!x || !q) {
        free(x), free(q);
        return;
    }
    for (int j = 0; j < N; j++) x[j] = frand();
    for (int i = 0; i < n_levels; i++) {
        ds_act_quant_fn f = lv[i].tr[t].from_f32;
        int inner = 1;
        double best = 1e30;
        for (int r = -1; r < reps; r++) { /* r = -1: find the count that takes 20 ms */
            double t0 = now_s();
            for (int j = 0; j < inner; j++) f(x, q, N);
            double s = now_s() - t0;
            if (r < 0) {
                while (s * inner < 0.02 && inner < (1 << 24)) inner *= 2;
                continue;
            }
            if (s < best) best = s;
        }
        sink = (float)q[0];
        const double gbs = (double)N * sizeof *x * inner / best / 1e9;
        printf("| %-7s | %-10s | %8.2f |\n", tt->name, lv[i].name, gbs);
    }
    free(x), free(q);
}

void bench_usage(FILE *fp); /* bench.c */

static int parse(int argc, char **argv, kernel_args *a) {
    args_it it = args_begin("deepseek-bench", argc, argv);
    for (const char *o; (o = args_next(&it));) {
        if (args_help_version(&it, o, bench_usage, 1)) continue;
        if (args_is(o, "--type")) a->type = args_value(&it);
        else if (args_is(o, "--mb")) args_value_int(&it, 1, 1 << 16, &a->mb);
        else if (args_is(o, "--reps")) args_value_int(&it, 1, 1000, &a->reps);
        else args_unknown(&it);
    }
    return it.failed ? -1 : 0;
}

static int wanted(const kernel_args *a, ds_type t) { return !a->type || !strcasecmp(a->type, ds_type_name(t)); }

/* argv[0] is "--kernels". */
int bench_kernels(int argc, char **argv);
int bench_kernels(int argc, char **argv) {
    kernel_args a = {NULL, 256, 3};
    if (parse(argc, argv, &a)) return 1;
    int known = 0;
    for (size_t i = 0; i < COUNT(dot_types); i++) known |= wanted(&a, dot_types[i]);
    for (size_t i = 0; i < COUNT(act_types); i++) known |= wanted(&a, act_types[i]);
    if (!known) {
        fprintf(stderr, "deepseek-bench: --type %s: not a block format with kernels\n", a.type);
        return 1;
    }
    static level lv[MAX_LEVELS];
    const int n_levels = find_levels(lv);
    printf("block-format kernels, one thread, rows of %d; weight GB/s, best of %d; best level here: %s\n", N, a.reps,
           ds_simd_best()->name);
    int dots = 0;
    for (size_t i = 0; i < COUNT(dot_types); i++) {
        if (!wanted(&a, dot_types[i])) continue;
        if (!dots++) {
            printf(
                "\n| type    | level      | vec_dot %d MiB | vec_dot4 %d MiB | vec_dot 256 KiB | dequant 256 KiB |\n",
                a.mb, a.mb);
            printf("|---------|------------|----------|----------|----------|----------|\n");
        }
        if (bench_type(dot_types[i], lv, n_levels, &a)) return 1;
    }
    int acts = 0;
    for (size_t i = 0; i < COUNT(act_types); i++) {
        if (!wanted(&a, act_types[i])) continue;
        if (!acts++) printf("\n| act     | level      | act_quant f32 GB/s |\n|---------|------------|----------|\n");
        bench_act(act_types[i], lv, n_levels, a.reps);
    }
    return 0;
}
