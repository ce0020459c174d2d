/* test_sampler - the sampler against an independent double-precision model of llama.cpp's chain:
   greedy, the sets top-k / top-p / min-p may choose from, the distribution of the draws
   (Pearson chi-square at a 1e-6 false-alarm level, fixed seeds so results never flicker), the
   repetition penalty and its window, the random stream, and parameter checks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deepseek.h"

#define MAXV 5000 /* largest vocabulary of the statistical tests */

/* ---- helpers ---- */

static uint64_t test_rng = 0x243f6a8885a308d3u;

static double unif(void) {
    test_rng = test_rng * 6364136223846793005u + 1442695040888963407u;
    return (double)(test_rng >> 11) * 0x1.0p-53;
}

/* Standard normal (Box-Muller): logits look like a model's, and ties have probability zero. */
static double gauss(void) {
    double u = unif(), v = unif();
    return sqrt(-2 * log(1 - u)) * cos(6.283185307179586 * v);
}

static void random_logits(float *l, int n, double scale) {
    for (int i = 0; i < n; i++) l[i] = (float)(scale * gauss());
}

static ds_sampler_params params(float temp, int top_k, float top_p, float min_p) {
    ds_sampler_params p = ds_sampler_default_params();
    p.temp = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = 12345;
    return p;
}

static ds_sampler *new_sampler(const ds_sampler_params *p, int n_vocab) {
    ds_sampler *s = NULL;
    char err[256];
    assert_int_equal(ds_sampler_new(p, n_vocab, &s, err, sizeof err), DS_OK);
    assert_non_null(s);
    return s;
}

/* A refused sampler: DS_ERR_ARG with a message, and no object. */
static void assert_refused(const ds_sampler_params *p, int n_vocab) {
    ds_sampler *s = (ds_sampler *)&s;
    char err[256] = "";
    assert_int_equal(ds_sampler_new(p, n_vocab, &s, err, sizeof err), DS_ERR_ARG);
    assert_null(s);
    assert_non_null(strstr(err, "sampler"));
}

/* Draws `draws` tokens into counts[n] and checks the logits are left as they were. */
static void draw(ds_sampler *s, const float *l, int n, int draws, int *counts) {
    float *copy = malloc((size_t)n * sizeof *copy);
    assert_non_null(copy);
    memcpy(copy, l, (size_t)n * sizeof *copy);
    memset(counts, 0, (size_t)n * sizeof *counts);
    for (int i = 0; i < draws; i++) {
        int32_t t = ds_sampler_sample(s, l);
        if (t < 0 || t >= n) fail_msg("token %d out of range", t);
        counts[t]++;
    }
    assert_memory_equal(copy, l, (size_t)n * sizeof *copy);
    free(copy);
}

static const float *rank_logits;

static int by_logit(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    float x = rank_logits[i], y = rank_logits[j];
    if (x != y) return x > y ? -1 : 1;
    return (i > j) - (i < j);
}

/* The model: which tokens llama.cpp's chain may return, and with what probability, computed in
   double on a full sort. The slack only absorbs summation-order rounding at the top-p cut. */
static void model(const float *l, int n, const ds_sampler_params *p, double *prob) {
    int order[MAXV];
    assert_true(n <= MAXV);
    for (int i = 0; i < n; i++) order[i] = i;
    rank_logits = l;
    qsort(order, (size_t)n, sizeof *order, by_logit);
    int k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    double mx = l[order[0]], z = 0, cum = 0, total = 0;
    for (int r = 0; r < k; r++) z += exp(l[order[r]] - mx);
    memset(prob, 0, (size_t)n * sizeof *prob);
    for (int r = 0; r < k; r++) {
        int i = order[r];
        double w = exp(l[i] - mx);
        bool in_p = p->top_p >= 1 || cum < p->top_p * z * (1 + 1e-12);
        bool in_min = w >= p->min_p * (1 - 1e-12);
        cum += w;
        if (!in_p || !in_min) continue;
        prob[i] = exp((l[i] - mx) / p->temp);
        total += prob[i];
    }
    for (int i = 0; i < n; i++) prob[i] /= total;
}

/* Pearson chi-square of the counts against prob, bins expecting under 5 draws pooled; fails
   above the 1e-6 upper quantile (Wilson-Hilferty). A token of probability 0 must never come. */
static void assert_fits(const int *counts, const double *prob, int n, int draws) {
    double chi = 0, pool_e = 0;
    int df = -1, pool_o = 0;
    for (int i = 0; i < n; i++) {
        if (prob[i] == 0) {
            if (counts[i]) fail_msg("token %d (probability 0) drawn %d times", i, counts[i]);
            continue;
        }
        double e = prob[i] * draws;
        if (e < 5) {
            pool_e += e;
            pool_o += counts[i];
            continue;
        }
        chi += (counts[i] - e) * (counts[i] - e) / e;
        df++;
    }
    if (pool_e > 0) {
        chi += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
        df++;
    }
    if (df < 1) return;
    double h = 2.0 / (9 * df), crit = df * pow(1 - h + 4.753 * sqrt(h), 3);
    if (chi > crit) fail_msg("chi-square %.1f > %.1f (df %d)", chi, crit, df);
}

/* Samples with p and checks every draw against the model, and the whole against its law. */
static void check_law(const float *l, int n, const ds_sampler_params *p, int draws) {
    static int counts[MAXV];
    static double prob[MAXV];
    ds_sampler *s = new_sampler(p, n);
    draw(s, l, n, draws, counts);
    model(l, n, p, prob);
    assert_fits(counts, prob, n, draws);
    ds_sampler_free(s);
}

static int32_t greedy(const float *l, int n) {
    ds_sampler_params p = params(0, 0, 1, 0);
    ds_sampler *s = new_sampler(&p, n);
    int32_t t = ds_sampler_sample(s, l);
    ds_sampler_free(s);
    return t;
}

/* ---- greedy ---- */

static void greedy_is_argmax(void **state) {
    (void)state;
    const float ties[] = {1, 3, 3, 2}, equal[] = {0.5f, 0.5f, 0.5f};
    const float masked[] = {-INFINITY, -INFINITY, -7, -INFINITY, -8};
    const float nan[] = {NAN, 1, NAN, -1}, inf[] = {1, INFINITY, 2, INFINITY};
    const float dead[] = {-INFINITY, NAN, -INFINITY};
    assert_int_equal(greedy(ties, 4), 1);
    assert_int_equal(greedy(equal, 3), 0);
    assert_int_equal(greedy(masked, 5), 2);
    assert_int_equal(greedy(nan, 4), 1);
    assert_int_equal(greedy(inf, 4), 1);
    assert_int_equal(greedy(dead, 3), 0); /* documented: nothing usable gives token 0 */

    float l[1000];
    for (int round = 0; round < 20; round++) {
        random_logits(l, 1000, 3);
        l[round * 37] = -INFINITY;
        int best = 0;
        for (int i = 1; i < 1000; i++)
            if (l[i] > l[best]) best = i;
        assert_int_equal(greedy(l, 1000), best);
    }
}

/* Truncation settings must not matter at temperature 0, nor may the draws. */
static void greedy_ignores_truncation(void **state) {
    (void)state;
    const float l[] = {0.1f, 0.3f, 2.0f, 1.9f, -1};
    ds_sampler_params p = params(0, 1, 0.01f, 1);
    ds_sampler *s = new_sampler(&p, 5);
    for (int i = 0; i < 100; i++) assert_int_equal(ds_sampler_sample(s, l), 2);
    ds_sampler_free(s);
}

/* ---- truncation ---- */

static void top_k_keeps_the_k_best(void **state) {
    (void)state;
    float l[200];
    random_logits(l, 200, 2);
    for (int k = 1; k <= 40; k *= 3) {
        ds_sampler_params p = params(1, k, 1, 0);
        check_law(l, 200, &p, 20000);
    }
    ds_sampler_params p = params(1, 500, 1, 0); /* larger than the vocabulary: off */
    check_law(l, 200, &p, 20000);
}

static void top_p_keeps_the_smallest_prefix(void **state) {
    (void)state;
    float l[300];
    const float ps[] = {0.05f, 0.5f, 0.9f, 0.95f, 0.999f, 0.99f};
    const double scales[] = {1.5, 2.5, 3.5, 4.5, 5.5, 15}; /* 15: logits 60 nats apart */
    for (int i = 0; i < 6; i++) {
        random_logits(l, 300, scales[i]);
        ds_sampler_params p = params(1, 0, ps[i], 0);
        check_law(l, 300, &p, 12000);
    }
}

/* A flat 5000-token distribution: the sorted prefix must grow through several rounds. */
static void top_p_on_a_flat_vocabulary(void **state) {
    (void)state;
    static float l[MAXV];
    random_logits(l, MAXV, 0.3);
    ds_sampler_params p = params(1, 0, 0.9f, 0);
    check_law(l, MAXV, &p, 3000);
}

/* Top-p and min-p look at the probabilities before temperature, as llama.cpp does: a hot
   temperature must not widen the set, a cold one must not narrow it. */
static void truncation_comes_before_temperature(void **state) {
    (void)state;
    float l[100];
    random_logits(l, 100, 2);
    const float temps[] = {0.3f, 3.0f};
    for (int i = 0; i < 2; i++) {
        ds_sampler_params p = params(temps[i], 0, 0.8f, 0);
        check_law(l, 100, &p, 20000);
        p = params(temps[i], 0, 1, 0.1f);
        check_law(l, 100, &p, 20000);
    }
}

static void min_p_drops_the_tail(void **state) {
    (void)state;
    float l[300];
    const float mins[] = {0.001f, 0.05f, 0.3f, 1.0f};
    for (int i = 0; i < 4; i++) {
        random_logits(l, 300, 2);
        ds_sampler_params p = params(1, 0, 1, mins[i]);
        check_law(l, 300, &p, 20000);
    }
}

/* Top-p's mass is relative to what top-k kept (llama.cpp renormalises between the two). */
static void combined_settings(void **state) {
    (void)state;
    float l[400];
    random_logits(l, 400, 2);
    ds_sampler_params ps[] = {
        params(0.7f, 20, 0.8f, 0.1f), params(1.3f, 10, 0.5f, 0),     params(1, 30, 1, 0.05f),
        params(1, 50, 0.95f, 0.02f),  params(0.6f, 0, 0.95f, 0.05f),
    };
    for (int i = 0; i < 5; i++) check_law(l, 400, &ps[i], 12000);
}

/* At an enormous temperature the survivors are drawn uniformly, so enough draws show the
   exact set: every token of the model's set must come, and no other. Random vocabularies and
   settings, to land the top-p cut on every kind of element (a pivot, a bucket's edge, a tie). */
static void survivors_are_exactly_the_set(void **state) {
    (void)state;
    static float l[1000];
    static int counts[1000];
    static double prob[1000];
    int checked = 0;
    for (int round = 0; round < 400 && checked < 120; round++) {
        int n = 33 + (int)(unif() * 967);
        random_logits(l, n, 0.5 + 8 * unif());
        if (round % 2) /* ties: the cut inside a group of equal logits, broken by id */
            for (int i = 0; i < n; i++) l[i] = roundf(l[i]);
        float top_p = (float)(0.05 + 0.95 * unif());
        int top_k = unif() < 0.3 ? 1 + (int)(unif() * 60) : 0;
        float min_p = unif() < 0.3 ? (float)(0.2 * unif()) : 0;
        ds_sampler_params p = params(1e30f, top_k, top_p, min_p);
        model(l, n, &p, prob);
        int k = 0;
        for (int i = 0; i < n; i++) k += prob[i] > 0;
        if (k > 40) continue;
        checked++;
        ds_sampler *s = new_sampler(&p, n);
        draw(s, l, n, 30 * k + 100, counts);
        for (int i = 0; i < n; i++)
            if ((counts[i] > 0) != (prob[i] > 0))
                fail_msg("n %d top_k %d top_p %g min_p %g: token %d drawn %d times, model p %g", n, top_k, top_p, min_p,
                         i, counts[i], prob[i]);
        ds_sampler_free(s);
    }
    assert_int_equal(checked, 120);
}

/* The cut inside a large group of tied logits: the sampler sees a long stretch of equal
   weights (ordered by id, as in the model), which sends it through its selection in many
   shapes. One token above the group, a tail below; top_p lands halfway into the j-th member. */
static void top_p_cut_inside_ties(void **state) {
    (void)state;
    static float l[600];
    static int counts[600], perm[600];
    static double prob[600];
    for (int round = 0; round < 150; round++) {
        int n = 300 + (int)(unif() * 300), g = 40 + (int)(unif() * 250), j = 1 + (int)(unif() * 12);
        for (int i = 0; i < n; i++) perm[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int r = (int)(unif() * (i + 1)), t = perm[i];
            perm[i] = perm[r];
            perm[r] = t;
        }
        l[perm[0]] = 1;
        for (int i = 1; i < n; i++) l[perm[i]] = i <= g ? 0 : -5;
        double z = 1 + g * exp(-1.0) + (n - 1 - g) * exp(-6.0);
        ds_sampler_params p = params(1e30f, 0, (float)((1 + (j - 0.5) * exp(-1.0)) / z), 0);
        model(l, n, &p, prob);
        ds_sampler *s = new_sampler(&p, n);
        draw(s, l, n, 25 * (j + 1) + 60, counts);
        for (int i = 0; i < n; i++)
            if ((counts[i] > 0) != (prob[i] > 0))
                fail_msg("n %d g %d j %d: token %d drawn %d times, model p %g", n, g, j, i, counts[i], prob[i]);
        ds_sampler_free(s);
    }
}

/* ---- the distribution ---- */

static void temp_1_is_softmax(void **state) {
    (void)state;
    float l[30];
    random_logits(l, 30, 1);
    l[7] = -INFINITY;
    l[11] = NAN;
    ds_sampler_params p = params(1, 0, 1, 0);
    static int counts[30];
    static double prob[30];
    ds_sampler *s = new_sampler(&p, 30);
    draw(s, l, 30, 100000, counts);
    l[11] = -INFINITY; /* the model's softmax reads NaN as a masked token */
    model(l, 30, &p, prob);
    assert_fits(counts, prob, 30, 100000);
    ds_sampler_free(s);
}

static void temperature_sharpens_and_flattens(void **state) {
    (void)state;
    float l[10];
    for (int i = 0; i < 10; i++) l[i] = (float)(0.3 * (9 - i));
    const float temps[] = {0.5f, 1.0f, 2.0f};
    int top[3], tail[3], counts[10];
    for (int t = 0; t < 3; t++) {
        ds_sampler_params p = params(temps[t], 0, 1, 0);
        check_law(l, 10, &p, 30000);
        ds_sampler *s = new_sampler(&p, 10);
        draw(s, l, 10, 30000, counts);
        top[t] = counts[0];
        tail[t] = counts[8] + counts[9];
        ds_sampler_free(s);
    }
    assert_true(top[0] > top[1] && top[1] > top[2]);
    assert_true(tail[0] < tail[1] && tail[1] < tail[2]);
}

/* Infinite logits win: +inf tokens share all the mass, NaN and -inf get none. */
static void infinities_and_nan(void **state) {
    (void)state;
    const float l[] = {0, INFINITY, NAN, INFINITY, -INFINITY, 5};
    ds_sampler_params p = params(1, 0, 1, 0);
    ds_sampler *s = new_sampler(&p, 6);
    int counts[6];
    draw(s, l, 6, 2000, counts);
    assert_int_equal(counts[1] + counts[3], 2000);
    assert_true(counts[1] > 800 && counts[3] > 800);
    const float dead[] = {NAN, -INFINITY, -INFINITY, NAN, NAN, -INFINITY};
    assert_int_equal(ds_sampler_sample(s, dead), 0);
    ds_sampler_free(s);
}

/* ---- repetition penalty ---- */

static int32_t greedy_after(const float *l, int n, float penalty, int last_n, const int32_t *hist, int n_hist) {
    ds_sampler_params p = params(0, 0, 1, 0);
    p.repeat_penalty = penalty;
    p.repeat_last_n = last_n;
    ds_sampler *s = new_sampler(&p, n);
    for (int i = 0; i < n_hist; i++) ds_sampler_accept(s, hist[i]);
    int32_t t = ds_sampler_sample(s, l);
    ds_sampler_free(s);
    return t;
}

/* Positive logits are divided and negative ones multiplied: the thresholds below tell that
   apart from subtracting, from dividing both, and from counting repeats more than once. */
static void penalty_divides_and_multiplies(void **state) {
    (void)state;
    const int32_t h0[] = {0}, h000[] = {0, 0, 0};
    const float pos[] = {2.0f, 1.7f}, neg[] = {-1.0f, -1.3f}, pos2[] = {2.0f, 1.5f};
    assert_int_equal(greedy_after(pos, 2, 1.0f, 64, h0, 1), 0);
    assert_int_equal(greedy_after(pos, 2, 1.1f, 64, h0, 1), 0);     /* 1.818 > 1.7 */
    assert_int_equal(greedy_after(pos, 2, 1.25f, 64, h0, 1), 1);    /* 1.6 < 1.7 */
    assert_int_equal(greedy_after(neg, 2, 1.25f, 64, h0, 1), 0);    /* -1.25 > -1.3 */
    assert_int_equal(greedy_after(neg, 2, 1.5f, 64, h0, 1), 1);     /* -1.5 < -1.3 */
    assert_int_equal(greedy_after(pos2, 2, 1.25f, 64, h000, 3), 0); /* once: 1.6 > 1.5 */
    const float encourage[] = {1.0f, 1.5f};
    assert_int_equal(greedy_after(encourage, 2, 0.5f, 64, h0, 1), 0); /* < 1 encourages: 2 > 1.5 */
}

static void penalty_shapes_the_distribution(void **state) {
    (void)state;
    const float l[] = {1.0f, 0.0f, -0.5f, 0.5f, 0.2f};
    const float pen[] = {0.5f, 0.0f, -1.0f, 0.5f, 0.2f}; /* tokens 0 and 2 penalised by 2 */
    ds_sampler_params p = params(1, 0, 1, 0);
    p.repeat_penalty = 2;
    ds_sampler *s = new_sampler(&p, 5);
    ds_sampler_accept(s, 0);
    ds_sampler_accept(s, 2);
    ds_sampler_accept(s, 2);
    static int counts[5];
    static double prob[5];
    draw(s, l, 5, 50000, counts);
    model(pen, 5, &p, prob);
    assert_fits(counts, prob, 5, 50000);
    ds_sampler_free(s);
}

/* The window holds the last repeat_last_n accepted tokens, and reset empties it. */
static void penalty_window_and_reset(void **state) {
    (void)state;
    const float l[] = {2.0f, 1.5f, 1.4f, 1.3f, 1.2f};
    ds_sampler_params p = params(0, 0, 1, 0);
    p.repeat_penalty = 2;
    p.repeat_last_n = 3;
    ds_sampler *s = new_sampler(&p, 5);
    const int32_t seq[] = {0, 1, 2, 3, 4, 0};
    const int32_t want[] = {1, 2, 3, 0, 0, 1}; /* after each accept */
    for (int i = 0; i < 6; i++) {
        ds_sampler_accept(s, seq[i]);
        assert_int_equal(ds_sampler_sample(s, l), want[i]);
    }
    for (int i = 0; i < 1000; i++) ds_sampler_accept(s, 1 + i % 4); /* wrap many times */
    assert_int_equal(ds_sampler_sample(s, l), 0);
    ds_sampler_accept(s, 0);
    assert_int_equal(ds_sampler_sample(s, l), 1);
    ds_sampler_reset(s);
    assert_int_equal(ds_sampler_sample(s, l), 0);
    ds_sampler_accept(s, -1); /* out of range: takes a slot, penalises nothing */
    ds_sampler_accept(s, 5);
    ds_sampler_accept(s, INT32_MAX);
    assert_int_equal(ds_sampler_sample(s, l), 0);
    ds_sampler_free(s);

    const int32_t h0[] = {0};
    assert_int_equal(greedy_after(l, 5, 2, 0, h0, 1), 0); /* a window of 0: off */
}

/* ---- the random stream ---- */

static void sequence(uint64_t seed, int32_t *out, int n) {
    float l[64];
    for (int i = 0; i < 64; i++) l[i] = 0;
    ds_sampler_params p = params(1, 0, 1, 0);
    p.seed = seed;
    ds_sampler *s = new_sampler(&p, 64);
    for (int i = 0; i < n; i++) out[i] = ds_sampler_sample(s, l);
    ds_sampler_free(s);
}

static void seeds_reproduce(void **state) {
    (void)state;
    int32_t a[500], b[500], c[500], d[500];
    sequence(7, a, 500);
    sequence(7, b, 500);
    sequence(8, c, 500);
    sequence(UINT64_C(1) << 63, d, 500);
    assert_memory_equal(a, b, sizeof a);
    assert_true(memcmp(a, c, sizeof a) != 0);
    assert_true(memcmp(a, d, sizeof a) != 0);
}

/* The stream is splitmix64-seeded xoshiro256**, 53 bits per draw: with 64 equal logits each draw
   is floor(u * 64), the same on every platform. Checked against a reference transcription. */
static uint64_t ref_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static void stream_is_xoshiro(void **state) {
    (void)state;
    uint64_t x = 2024, s[4];
    for (int i = 0; i < 4; i++) {
        uint64_t z = (x += 0x9e3779b97f4a7c15u);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        s[i] = z ^ (z >> 31);
    }
    int32_t got[200];
    sequence(2024, got, 200);
    for (int i = 0; i < 200; i++) {
        uint64_t r = ref_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
        s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t;
        s[3] = ref_rotl(s[3], 45);
        assert_int_equal(got[i], (int32_t)((r >> 11) * 64 >> 53));
    }
}

/* reset clears the history only: the draws carry on where they were. */
static void reset_keeps_the_stream(void **state) {
    (void)state;
    int32_t whole[40];
    sequence(99, whole, 40);
    float l[64];
    for (int i = 0; i < 64; i++) l[i] = 0;
    ds_sampler_params p = params(1, 0, 1, 0);
    p.seed = 99;
    ds_sampler *s = new_sampler(&p, 64);
    for (int i = 0; i < 40; i++) {
        if (i == 20) ds_sampler_reset(s);
        assert_int_equal(ds_sampler_sample(s, l), whole[i]);
    }
    ds_sampler_free(s);
}

/* ---- parameters ---- */

static void bad_params_are_refused(void **state) {
    (void)state;
    ds_sampler_params d = ds_sampler_default_params();
    assert_true(d.temp == 0.6f && d.top_k == 0 && d.top_p == 0.95f && d.min_p == 0);
    assert_true(d.repeat_penalty == 1 && d.repeat_last_n == 64 && d.seed == 0);

    ds_sampler_params bad[16];
    int n = 0;
    for (int i = 0; i < 16; i++) bad[i] = d;
    bad[n++].temp = -0.1f;
    bad[n++].temp = NAN;
    bad[n++].top_k = -1;
    bad[n++].top_p = 0;
    bad[n++].top_p = 1.01f;
    bad[n++].top_p = NAN;
    bad[n++].min_p = -0.01f;
    bad[n++].min_p = 1.5f;
    bad[n++].min_p = NAN;
    bad[n++].repeat_penalty = 0;
    bad[n++].repeat_penalty = -1;
    bad[n++].repeat_penalty = NAN;
    bad[n++].repeat_penalty = INFINITY;
    bad[n++].repeat_last_n = -1;
    for (int i = 0; i < n; i++) assert_refused(&bad[i], 10);
    assert_refused(&d, 0);
    assert_refused(&d, -5);

    ds_sampler_params edge[6];
    for (int i = 0; i < 6; i++) edge[i] = d;
    edge[0].temp = 0;
    edge[1].top_p = 1;
    edge[2].min_p = 1;
    edge[3].repeat_last_n = 0;
    edge[4].top_k = 1000000;
    edge[5].repeat_penalty = 0.5f;
    for (int i = 0; i < 6; i++) ds_sampler_free(new_sampler(&edge[i], 1));
    ds_sampler_free(new_sampler(NULL, 10)); /* NULL: the defaults */
    ds_sampler_free(NULL);
}

/* ---- DeepSeek's vocabulary ---- */

static void full_vocabulary(void **state) {
    (void)state;
    enum { N = 129280 };
    float *l = malloc(N * sizeof *l), *copy = malloc(N * sizeof *l);
    assert_true(l && copy);
    random_logits(l, N, 3);
    l[N - 1] = 25; /* a peaked head, as after a confident step */
    l[N / 2] = 24;
    memcpy(copy, l, N * sizeof *l);

    assert_int_equal(greedy(l, N), N - 1);
    ds_sampler_params p = ds_sampler_default_params();
    p.repeat_penalty = 1.1f;
    ds_sampler *s = new_sampler(&p, N);
    for (int i = 0; i < 3; i++) {
        int32_t t = ds_sampler_sample(s, l);
        assert_true(t == N - 1 || t == N / 2);
        ds_sampler_accept(s, t);
    }
    ds_sampler_free(s);

    p = params(1, 40, 0.95f, 0.01f);
    s = new_sampler(&p, N);
    int32_t t = ds_sampler_sample(s, l);
    assert_true(t >= 0 && t < N);
    ds_sampler_free(s);
    for (int i = 0; i < N; i++) l[i] *= 0.01f; /* flat: top-p's prefix is most of the vocabulary */
    p = params(1, 0, 0.95f, 0);
    s = new_sampler(&p, N);
    t = ds_sampler_sample(s, l);
    assert_true(t >= 0 && t < N);
    ds_sampler_free(s);
    for (int i = 0; i < N; i++) copy[i] *= 0.01f;
    assert_memory_equal(copy, l, N * sizeof *l);
    free(l);
    free(copy);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(greedy_is_argmax),
        cmocka_unit_test(greedy_ignores_truncation),
        cmocka_unit_test(top_k_keeps_the_k_best),
        cmocka_unit_test(top_p_keeps_the_smallest_prefix),
        cmocka_unit_test(top_p_on_a_flat_vocabulary),
        cmocka_unit_test(truncation_comes_before_temperature),
        cmocka_unit_test(min_p_drops_the_tail),
        cmocka_unit_test(combined_settings),
        cmocka_unit_test(survivors_are_exactly_the_set),
        cmocka_unit_test(top_p_cut_inside_ties),
        cmocka_unit_test(temp_1_is_softmax),
        cmocka_unit_test(temperature_sharpens_and_flattens),
        cmocka_unit_test(infinities_and_nan),
        cmocka_unit_test(penalty_divides_and_multiplies),
        cmocka_unit_test(penalty_shapes_the_distribution),
        cmocka_unit_test(penalty_window_and_reset),
        cmocka_unit_test(seeds_reproduce),
        cmocka_unit_test(stream_is_xoshiro),
        cmocka_unit_test(reset_keeps_the_stream),
        cmocka_unit_test(bad_params_are_refused),
        cmocka_unit_test(full_vocabulary),
    };
    return cmocka_run_group_tests_name("sampler", tests, NULL, NULL);
}
