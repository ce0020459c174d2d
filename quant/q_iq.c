/* q_iq.c - ggml's IQ formats: IQ4_NL and IQ4_XS (16 non-linear levels), IQ2_XXS (2.06 bits per
   weight) and IQ1_S (1.56 bits), the types of the popular 1.58-2.5 bit DeepSeek-R1 files; and
   MXFP4 (16 FP4 levels under a power-of-two scale), which shares IQ4_NL's nibble layout.

   IQ2_XXS and IQ1_S store, per group of 8 weights, an index into a fixed codebook of 8-value
   points (iq_tables.c). Their quantizers need an importance matrix (ggml refuses without one)
   and search the codebook through ggml's neighbour lists: for each 8-tuple of levels that is not
   a codebook point, the points at the smallest few distances. Those lists are built here once,
   on first use, exactly as ggml's iq2xs_init_impl orders them, since the order decides ties.
   Everything else follows quant_impl.h: ggml's float operations in ggml's order. */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "iq_tables.h"
#include "quant_impl.h"

#define GROUP_MAX_EPS 1e-15f
#define GROUP_MAX_EPS_IQ1_S 1e-12f
#define IQ1S_DELTA 0.125f

static uint8_t grid_byte(uint64_t point, int j) { return (uint8_t)(point >> (8 * j)); }

/* ---- IQ4_NL and IQ4_XS ---- */

/* ggml's best_index_int8: the index of the level nearest x (the upper one on ties). */
static int best_index(const int8_t *val, float x) {
    if (x <= val[0]) return 0;
    if (x >= val[15]) return 15;
    int ml = 0, mu = 15;
    while (mu - ml > 1) {
        int mav = (ml + mu) / 2;
        if (x < val[mav]) mu = mav;
        else ml = mav;
    }
    return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

/* Weighted fit sums of x ~ d * values[L] for L = the levels nearest id * x. */
static void iq4_fit(const float *xb, const float *w, float id, uint8_t *L, float *sumqx, float *sumq2) {
    const int8_t *values = ds_iq4nl_values;
    *sumqx = *sumq2 = 0;
    for (int j = 0; j < 32; j++) {
        int l = best_index(values, id * xb[j]);
        if (L) L[j] = (uint8_t)l;
        float q = values[l];
        *sumqx += w[j] * q * xb[j];
        *sumq2 += w[j] * q * q;
    }
}

/* ggml's search for one block of 32 (quantize_row_iq4_nl_impl with ntry 7): the scale from
   the signed extreme, then 15 scales (itry - 127) / max, keeping the best weighted fit.
   Returns the block's scale, 0 for an all-zero block. */
static float iq4_block_scale(const float *xb, const float *qw, float sigma2, uint8_t *L) {
    const int8_t *values = ds_iq4nl_values;
    const int ntry = 7;
    float w[32], amax = 0, max = 0;
    for (int j = 0; j < 32; j++) w[j] = qw ? qw[j] * sqrtf(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
    for (int j = 0; j < 32; j++)
        if (fabsf(xb[j]) > amax) {
            amax = fabsf(xb[j]);
            max = xb[j];
        }
    if (amax < GROUP_MAX_EPS) return 0;
    float d = -max / values[0], sumqx, sumq2;
    iq4_fit(xb, w, 1 / d, L, &sumqx, &sumq2);
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -ntry; itry <= ntry; itry++) {
        iq4_fit(xb, w, (itry + values[0]) / max, NULL, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

static float iq4_sigma2(const float *x, int n) {
    float sigma2 = 0;
    for (int j = 0; j < n; j++) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / n;
    return sigma2;
}

static void iq4_pack(uint8_t *qs, const uint8_t *L, int n) {
    for (int i = 0; i < n / 32; i++)
        for (int j = 0; j < 16; j++) qs[16 * i + j] = (uint8_t)(L[32 * i + j] | L[32 * i + 16 + j] << 4);
}

/* A block of 32 levels, element j in the low nibble of qs[j], j + 16 in its high nibble
   (IQ4_NL, MXFP4): widened with scale d, and its dot with a Q8_0 block's integers. */
static void nibbles_to_f32(const uint8_t *qs, const int8_t *values, float d, float *y) {
    for (int j = 0; j < QK / 2; j++) {
        y[j] = d * values[qs[j] & 0xf];
        y[j + QK / 2] = d * values[qs[j] >> 4];
    }
}

static int nibbles_dot(const uint8_t *qs, const int8_t *values, const int8_t *y) {
    int sumi1 = 0, sumi2 = 0;
    for (int j = 0; j < QK / 2; j++) {
        sumi1 += y[j] * values[qs[j] & 0xf];
        sumi2 += y[j + QK / 2] * values[qs[j] >> 4];
    }
    return sumi1 + sumi2;
}

static void iq4_nl_to_f32(const void *row, float *y, int64_t n) {
    const block_iq4_nl *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK) nibbles_to_f32(b[i].qs, ds_iq4nl_values, f16(b[i].d), y);
}

/* One scale per 32: the block scale in F16, quants redone against the unrounded scale. */
static size_t iq4_nl_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    block_iq4_nl *b = row;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        uint8_t L[QK];
        float d = iq4_block_scale(x, imatrix ? imatrix + i * QK : NULL, iq4_sigma2(x, QK), L);
        b[i].d = to_f16(d);
        float id = d ? 1 / d : 0;
        for (int j = 0; j < QK; j++) L[j] = (uint8_t)best_index(ds_iq4nl_values, id * x[j]);
        iq4_pack(b[i].qs, L, QK);
    }
    return (size_t)(n / QK) * sizeof *b;
}

static float iq4_nl_dot(const void *row, const void *act, int64_t n) {
    const block_iq4_nl *x = row;
    const block_q8_0 *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK; i++) sumf += f16(y[i].d) * f16(x[i].d) * nibbles_dot(x[i].qs, ds_iq4nl_values, y[i].qs);
    return sumf;
}

/* ---- MXFP4 (OCP microscaling FP4: DeepSeek-V4's and gpt-oss's routed experts) ----

   32 FP4 (E2M1) values sharing a power-of-two scale: x = 2^(e - 127) * fp4. The levels are
   stored doubled (0, 1, 2, 3, 4, 6, 8, 12 and their negatives) with the scale halved. */

static void mxfp4_to_f32(const void *row, float *y, int64_t n) {
    const block_mxfp4 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK) nibbles_to_f32(b[i].qs, ds_mxfp4_values, e8m0_half(b[i].e), y);
}

/* ggml's best_index_mxfp4: the first level of least |level * d - x| */
static uint8_t mxfp4_index(float x, float d) {
    int best = 0;
    float best_err = fabsf(ds_mxfp4_values[0] * d - x);
    for (int i = 1; i < 16; i++) {
        float err = fabsf(ds_mxfp4_values[i] * d - x);
        if (err < best_err) best = i, best_err = err;
    }
    return (uint8_t)best;
}

/* ggml's quantize_row_mxfp4_ref: the scale puts the block's largest magnitude in [4, 8) (the
   top levels 6 and 12 halved), each value to its nearest level. ggml casts floor(log2(amax)) +
   125 to a byte unchecked; on x86 that keeps its low 8 bits, so a block whose magnitudes are all
   below 2^-125 gets a huge scale (e -1 -> 255) and quantizes to zeros: the same here, for ggml's
   bytes (an infinity, where the cast has no value at all, gives 254). An importance matrix changes
   nothing, as in ggml. */
static size_t mxfp4_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    block_mxfp4 *b = row;
    (void)imatrix;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        float amax = 0;
        for (int j = 0; j < QK; j++)
            if (amax < fabsf(x[j])) amax = fabsf(x[j]);
        float e = amax > 0 ? floorf(log2f(amax)) - 2 + 127 : 0;
        b[i].e = e > 254 ? 254 : (uint8_t)((int)e & 0xff);
        const float d = e8m0_half(b[i].e);
        for (int j = 0; j < QK / 2; j++)
            b[i].qs[j] = (uint8_t)(mxfp4_index(x[j], d) | mxfp4_index(x[j + QK / 2], d) << 4);
    }
    return (size_t)(n / QK) * sizeof *b;
}

static float mxfp4_dot(const void *row, const void *act, int64_t n) {
    const block_mxfp4 *x = row;
    const block_q8_0 *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK; i++) sumf += f16(y[i].d) * e8m0_half(x[i].e) * nibbles_dot(x[i].qs, ds_mxfp4_values, y[i].qs);
    return sumf;
}

/* IQ4_XS: IQ4_NL's levels with 8 blocks of 32 per super-block, each with a 6-bit scale
   (biased by 32: low nibble in scales_l, top 2 bits in scales_h) times the F16 d. */
static int iq4_xs_scale(const block_iq4_xs *b, int ib) {
    return ((b->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | ((b->scales_h >> 2 * ib) & 3) << 4;
}

static void iq4_xs_to_f32(const void *row, float *y, int64_t n) {
    const block_iq4_xs *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16(b[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++, y += 32) {
            const float dl = d * (iq4_xs_scale(&b[i], ib) - 32);
            const uint8_t *qs = b[i].qs + 16 * ib;
            for (int j = 0; j < 16; j++) {
                y[j] = dl * ds_iq4nl_values[qs[j] & 0xf];
                y[j + 16] = dl * ds_iq4nl_values[qs[j] >> 4];
            }
        }
    }
}

static void iq4_xs_block(const float *x, block_iq4_xs *b, const float *qw) {
    float sigma2 = iq4_sigma2(x, QK_K), scales[QK_K / 32], max_scale = 0, amax_scale = 0;
    uint8_t L[QK_K];
    for (int ib = 0; ib < QK_K / 32; ib++) {
        scales[ib] = iq4_block_scale(x + 32 * ib, qw ? qw + 32 * ib : NULL, sigma2, L + 32 * ib);
        if (fabsf(scales[ib]) > amax_scale) {
            amax_scale = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    }
    memset(b, 0, sizeof *b);
    float d = -max_scale / 32, id = d ? 1 / d : 0.f;
    b->d = to_f16(d);
    for (int ib = 0; ib < QK_K / 32; ib++) {
        int l = imax(-32, imin(31, nearest_int(id * scales[ib])));
        float dl = d * l, idl = dl ? 1 / dl : 0.f;
        for (int j = 0; j < 32; j++) L[32 * ib + j] = (uint8_t)best_index(ds_iq4nl_values, idl * x[32 * ib + j]);
        l += 32;
        b->scales_l[ib / 2] |= (uint8_t)((l & 0xf) << 4 * (ib % 2));
        b->scales_h |= (uint16_t)((l >> 4) << 2 * ib);
    }
    iq4_pack(b->qs, L, QK_K);
}

static size_t iq4_xs_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    block_iq4_xs *b = row;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) iq4_xs_block(x, &b[i], imatrix ? imatrix + i * QK_K : NULL);
    return (size_t)(n / QK_K) * sizeof *b;
}

static float iq4_xs_dot(const void *row, const void *act, int64_t n) {
    const block_iq4_xs *x = row;
    const block_q8_K *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d4d8 = f16(x[i].d) * y[i].d;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const float dl = d4d8 * (iq4_xs_scale(&x[i], ib) - 32);
            const uint8_t *qs = x[i].qs + 16 * ib;
            const int8_t *q8 = y[i].qs + 32 * ib;
            int sumi1 = 0, sumi2 = 0;
            for (int j = 0; j < 16; j++) {
                sumi1 += q8[j] * ds_iq4nl_values[qs[j] & 0xf];
                sumi2 += q8[j + 16] * ds_iq4nl_values[qs[j] >> 4];
            }
            sumf += dl * (sumi1 + sumi2);
        }
    }
    return sumf;
}

/* ---- codebook search (ggml's iq2xs_init_impl and *_find_best_neighbour) ----

   A group of 8 levels l_k in {0, 1, 2} is the 16-bit key sum l_k << 2k. Codebook points are
   seen as positions 2 l + 1. For every key below KEY_COUNT that is no codebook point, the
   neighbours are the points at the n_want smallest distinct squared distances, ordered by
   (distance, index). */

#define KEY_COUNT 43692 /* ggml's kmap_size: past the largest key of levels 0..2, 0xaaaa */

typedef struct {
    int n_grid, n_want;
    const uint64_t *codebook;
    uint8_t (*pos)[8];      /* n_grid points as positions 2 l + 1 */
    int32_t map[KEY_COUNT]; /* key -> point index, or -(1 + offset of its list in nbr) */
    uint16_t *nbr;          /* per list: count, then point indices */
} iq_search;

/* Level of byte j of a codebook point: IQ2_XXS magnitudes 8, 25, 43; IQ1_S values -1, 0, 1. */
static int iq2xxs_level(uint8_t v) { return v == 0x08 ? 0 : v == 0x19 ? 1 : 2; }
static int iq1s_level(uint8_t v) { return (int8_t)v + 1; }

static iq_search iq2xxs_search = {256, 2, ds_iq2xxs_grid, NULL, {0}, NULL};
static iq_search iq1s_search = {2048, 3, ds_iq1s_grid, NULL, {0}, NULL};

/* The neighbour list of key (not a codebook point) appended to s->nbr at *len. */
static int add_neighbours(iq_search *s, int key, int *dist, size_t *len, size_t *cap) {
    int d_level[3], n_levels = 0, count = 0;
    for (int j = 0; j < s->n_grid; j++) {
        int d2 = 0;
        for (int k = 0; k < 8; k++) {
            int diff = s->pos[j][k] - (2 * ((key >> 2 * k) & 3) + 1);
            d2 += diff * diff;
        }
        dist[j] = d2;
    }
    for (; n_levels < s->n_want; n_levels++) { /* the n_want smallest distinct distances */
        int next = INT32_MAX;
        for (int j = 0; j < s->n_grid; j++)
            if ((!n_levels || dist[j] > d_level[n_levels - 1]) && dist[j] < next) next = dist[j];
        if (next == INT32_MAX) break;
        d_level[n_levels] = next;
    }
    for (int lv = 0; lv < n_levels; lv++)
        for (int j = 0; j < s->n_grid; j++) count += dist[j] == d_level[lv];
    if (*len + 1 + (size_t)count > *cap) {
        size_t c = 2 * *cap + 1 + (size_t)count;
        uint16_t *p = realloc(s->nbr, c * sizeof *p);
        if (!p) return -1;
        s->nbr = p;
        *cap = c;
    }
    s->map[key] = -(int32_t)(*len + 1);
    s->nbr[(*len)++] = (uint16_t)count;
    for (int lv = 0; lv < n_levels; lv++)
        for (int j = 0; j < s->n_grid; j++)
            if (dist[j] == d_level[lv]) s->nbr[(*len)++] = (uint16_t)j;
    return 0;
}

static void search_build(iq_search *s, int (*level)(uint8_t)) {
    s->pos = malloc((size_t)s->n_grid * sizeof *s->pos);
    int *dist = malloc((size_t)s->n_grid * sizeof *dist);
    size_t len = 0, cap = 0;
    int ok = s->pos && dist;
    for (int i = 0; i < KEY_COUNT; i++) s->map[i] = INT32_MIN;
    for (int j = 0; ok && j < s->n_grid; j++) {
        int key = 0;
        for (int k = 0; k < 8; k++) {
            int l = level(grid_byte(s->codebook[j], k));
            s->pos[j][k] = (uint8_t)(2 * l + 1);
            key |= l << 2 * k;
        }
        s->map[key] = j;
    }
    for (int key = 0; ok && key < KEY_COUNT; key++)
        if (s->map[key] == INT32_MIN) ok = add_neighbours(s, key, dist, &len, &cap) == 0;
    free(dist);
    if (!ok) { /* out of memory: no search, the quantizer reports failure */
        free(s->pos);
        free(s->nbr);
        s->pos = NULL;
        s->nbr = NULL;
    }
}

static void build_iq2xxs(void) { search_build(&iq2xxs_search, iq2xxs_level); }
static void build_iq1s(void) { search_build(&iq1s_search, iq1s_level); }

static const iq_search *get_search(ds_type t) {
    static pthread_once_t once2 = PTHREAD_ONCE_INIT, once1 = PTHREAD_ONCE_INIT;
    iq_search *s = t == DS_TYPE_IQ2_XXS ? &iq2xxs_search : &iq1s_search;
    pthread_once(t == DS_TYPE_IQ2_XXS ? &once2 : &once1, t == DS_TYPE_IQ2_XXS ? build_iq2xxs : build_iq1s);
    return s->pos ? s : NULL;
}

static int levels_key(const int8_t L[8]) {
    int key = 0;
    for (int i = 0; i < 8; i++) key |= L[i] << 2 * i;
    return key;
}

static const uint16_t *neighbours_of(const iq_search *s, int key) { return s->nbr + (-s->map[key] - 1); }

/* IQ2_XXS: the neighbour with the least weighted squared error against scale * position;
   its levels go to L. */
static int iq2_best_neighbour(const iq_search *s, const uint16_t *nbr, const float *xval, const float *weight,
                              float scale, int8_t *L) {
    float best_d2 = FLT_MAX;
    int best = nbr[1];
    for (int j = 1; j <= nbr[0]; j++) {
        const uint8_t *pg = s->pos[nbr[j]];
        float d2 = 0;
        for (int i = 0; i < 8; i++) {
            float q = pg[i], diff = scale * q - xval[i];
            d2 += weight[i] * diff * diff;
        }
        if (d2 < best_d2) {
            best_d2 = d2;
            best = nbr[j];
        }
    }
    for (int i = 0; i < 8; i++) L[i] = (int8_t)((s->pos[best][i] - 1) / 2);
    return best;
}

/* ---- IQ2_XXS: 8 blocks of 32, per 8 a codebook index (8 bits) and 7 sign bits, per 32 a
   4-bit scale: x = d * (0.5 + s) / 4 * grid * sign ---- */

static void iq2_xxs_to_f32(const void *row, float *y, int64_t n) {
    const block_iq2_xxs *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16(b[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            uint32_t aux[2];
            memcpy(aux, b[i].qs + 4 * ib, 8);
            const float db = d * (0.5f + (aux[1] >> 28)) * 0.25f;
            for (int l = 0; l < 4; l++, y += 8) {
                const uint64_t g = ds_iq2xxs_grid[(aux[0] >> 8 * l) & 0xff];
                const uint8_t signs = ds_iq2_signs[(aux[1] >> 7 * l) & 127];
                /* ggml multiplies by -1.f or 1.f; a negation gives the same numbers, and a NaN
                   scale's sign no longer depends on whether the compiler folds x * -1 into -x
                   (gcc does at -O3, not in the sanitizer build) */
                for (int j = 0; j < 8; j++) {
                    const float v = db * grid_byte(g, j);
                    y[j] = signs >> j & 1 ? -v : v;
                }
            }
        }
    }
}

static float iq2_xxs_dot(const void *row, const void *act, int64_t n) {
    const block_iq2_xxs *x = row;
    const block_q8_K *y = act;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16(x[i].d) * y[i].d;
        const int8_t *q8 = y[i].qs;
        int32_t bsum = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            uint32_t aux[2];
            memcpy(aux, x[i].qs + 4 * ib, 8);
            const uint32_t ls = 2 * (aux[1] >> 28) + 1;
            int32_t sumi = 0;
            for (int l = 0; l < 4; l++, q8 += 8) {
                const uint64_t g = ds_iq2xxs_grid[(aux[0] >> 8 * l) & 0xff];
                const uint8_t signs = ds_iq2_signs[(aux[1] >> 7 * l) & 127];
                for (int j = 0; j < 8; j++) sumi += grid_byte(g, j) * q8[j] * (signs >> j & 1 ? -1 : 1);
            }
            bsum += sumi * (int32_t)ls;
        }
        sumf += d * bsum;
    }
    return 0.125f * sumf;
}

/* Magnitudes and 7 sign bits per 8: an odd number of negatives flips the sign of the value
   that matters least (smallest w x^2), since the 8th sign is implied (even parity). */
static void iq2_signs(const float *xb, const float *weight, float *xval, uint8_t block_signs[4]) {
    for (int k = 0; k < 4; k++) {
        int nflip = 0;
        uint8_t s = 0;
        for (int i = 0; i < 8; i++) {
            if (xb[8 * k + i] >= 0) {
                xval[8 * k + i] = xb[8 * k + i];
            } else {
                xval[8 * k + i] = -xb[8 * k + i];
                nflip++;
                s |= (uint8_t)(1 << i);
            }
        }
        if (nflip % 2) {
            int imin = 0;
            float min = weight[8 * k] * xb[8 * k] * xb[8 * k];
            for (int i = 1; i < 8; i++) {
                float ax = weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
                if (ax < min) {
                    min = ax;
                    imin = i;
                }
            }
            xval[8 * k + imin] = -xval[8 * k + imin];
            s ^= (uint8_t)(1 << imin);
        }
        block_signs[k] = s & 127;
    }
}

/* Levels 0..2 of each 8 for inverse scale id, moved onto the codebook where they are off it. */
static void iq2_snap(const iq_search *s, const float *xval, const float *waux, float id, float scale, int8_t L[32]) {
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 8; i++)
            L[8 * k + i] = (int8_t)imax(0, imin(2, nearest_int(0.5f * (id * xval[8 * k + i] - 1))));
        int key = levels_key(L + 8 * k);
        if (s->map[key] < 0) iq2_best_neighbour(s, neighbours_of(s, key), xval + 8 * k, waux + 8 * k, scale, L + 8 * k);
    }
}

static void iq2_fit(const float *xval, const float *weight, const int8_t L[32], float *sumqx, float *sumq2) {
    *sumqx = *sumq2 = 0;
    for (int i = 0; i < 32; i++) {
        float w = weight[i], q = 2 * L[i] + 1;
        *sumqx += w * xval[i] * q;
        *sumq2 += w * q * q;
    }
}

/* One block of 32 (ggml's quantize_row_iq2_xxs_impl inner loop): its scale, or 0 with q2 left
   zero for a block too small to quantize. */
static float iq2_xxs_block(const iq_search *s, const float *xb, const float *weight, uint32_t q2[2]) {
    const int kMaxQ = 3;
    float xval[32], waux[32];
    int8_t L[32], Laux[32];
    uint8_t block_signs[4];
    for (int i = 0; i < 32; i++) waux[i] = sqrtf(weight[i]);
    iq2_signs(xb, weight, xval, block_signs);
    float max = xval[0];
    for (int i = 1; i < 32; i++) max = max > xval[i] ? max : xval[i];
    if (max < GROUP_MAX_EPS) return 0;
    float scale = ds_make_qp_quants(32, kMaxQ + 1, xval, (uint8_t *)L, weight);
    float eff_max = scale * kMaxQ;
    if (eff_max <= 0) return 0;
    float best = 0, sumqx, sumq2;
    for (int is = -6; is <= 6; is++) {
        float id = (2 * kMaxQ - 1 + is * 0.1f) / eff_max;
        iq2_snap(s, xval, waux, id, 1 / id, Laux);
        iq2_fit(xval, weight, Laux, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            memcpy(L, Laux, 32);
        }
    }
    if (scale > 0) {
        iq2_snap(s, xval, waux, 1 / scale, scale, L);
        iq2_fit(xval, weight, L, &sumqx, &sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    if (scale < 0) { /* ggml: should not happen; flip the scale and the signs */
        scale = -scale;
        for (int k = 0; k < 4; k++) block_signs[k] = (uint8_t)(~block_signs[k] & 127);
    }
    for (int k = 0; k < 4; k++) {
        int key = levels_key(L + 8 * k);
        uint32_t index = key < KEY_COUNT && s->map[key] >= 0 ? (uint32_t)s->map[key] : 0;
        q2[0] |= index << 8 * k;
        q2[1] |= (uint32_t)block_signs[k] << 7 * k;
    }
    return scale;
}

static size_t iq2_xxs_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    const iq_search *s = get_search(DS_TYPE_IQ2_XXS);
    if (!imatrix || !s) return 0;
    block_iq2_xxs *b = row;
    for (int64_t ibl = 0; ibl < n / QK_K; ibl++, x += QK_K) {
        const float *qw = imatrix + ibl * QK_K;
        uint32_t q2[2 * (QK_K / 32)] = {0};
        float scales[QK_K / 32], weight[32], max_scale = 0;
        float sigma2 = 0;
        for (int i = 0; i < QK_K; i++) sigma2 += x[i] * x[i];
        sigma2 = sigma2 / QK_K;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const float *xb = x + 32 * ib;
            for (int i = 0; i < 32; i++) weight[i] = qw[32 * ib + i] * sqrtf(sigma2 + xb[i] * xb[i]);
            scales[ib] = iq2_xxs_block(s, xb, weight, q2 + 2 * ib);
            max_scale = max_scale > scales[ib] ? max_scale : scales[ib];
        }
        b[ibl].d = to_f16(0.f);
        memset(b[ibl].qs, 0, sizeof b[ibl].qs);
        if (!max_scale) continue;
        float d = max_scale / 31, id = 1 / d;
        b[ibl].d = to_f16(d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            int l = imax(0, imin(15, nearest_int(0.5f * (id * scales[ib] - 1))));
            q2[2 * ib + 1] |= (uint32_t)l << 28;
        }
        memcpy(b[ibl].qs, q2, sizeof b[ibl].qs);
    }
    return (size_t)(n / QK_K) * sizeof *b;
}

/* ---- IQ1_S: 8 blocks of 32, per 8 an 11-bit codebook index (values -1, 0, 1), per 32 a
   3-bit scale and the sign of a shift: x = d * (2 s + 1) * (grid +- 1/8) ---- */

static void iq1_s_to_f32(const void *row, float *y, int64_t n) {
    const block_iq1_s *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16(b[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const uint16_t qh = b[i].qh[ib];
            const float dl = d * (2 * ((qh >> 12) & 7) + 1);
            const float delta = qh & 0x8000 ? -IQ1S_DELTA : IQ1S_DELTA;
            for (int l = 0; l < 4; l++, y += 8) {
                const uint64_t g = ds_iq1s_grid[b[i].qs[4 * ib + l] | ((qh >> 3 * l) & 7) << 8];
                for (int j = 0; j < 8; j++) y[j] = dl * ((int8_t)grid_byte(g, j) + delta);
            }
        }
    }
}

static float iq1_s_dot(const void *row, const void *act, int64_t n) {
    const block_iq1_s *x = row;
    const block_q8_K *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const int8_t *q8 = y[i].qs;
        int sumi = 0, sumi1 = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const uint16_t qh = x[i].qh[ib];
            const int ls = 2 * ((qh >> 12) & 7) + 1, delta = qh & 0x8000 ? -1 : 1;
            int lsum = 0;
            for (int l = 0; l < 4; l++, q8 += 8) {
                const uint64_t g = ds_iq1s_grid[x[i].qs[4 * ib + l] | ((qh >> 3 * l) & 7) << 8];
                for (int j = 0; j < 8; j++) lsum += q8[j] * (int8_t)grid_byte(g, j);
            }
            sumi += ls * lsum;
            sumi1 += ls * delta * (y[i].bsums[2 * ib] + y[i].bsums[2 * ib + 1]);
        }
        sumf += f16(x[i].d) * y[i].d * (sumi + IQ1S_DELTA * sumi1);
    }
    return sumf;
}

/* IQ1_S: the neighbour with the least weighted squared error against scale * xg[level]. */
static int iq1_best_neighbour(const iq_search *s, const uint16_t *nbr, const float *xval, const float *weight,
                              float scale, const float *xg, int8_t *L) {
    float best_d2 = FLT_MAX;
    int best = -1;
    for (int j = 1; j <= nbr[0]; j++) {
        const uint8_t *pg = s->pos[nbr[j]];
        float d2 = 0;
        for (int i = 0; i < 8; i++) {
            float q = xg[(pg[i] - 1) / 2], w = weight[i], diff = scale * q - xval[i];
            d2 += w * diff * diff;
        }
        if (d2 < best_d2) {
            best_d2 = d2;
            best = nbr[j];
        }
    }
    /* Only overflowing errors get here. ggml then scans the whole codebook, reading xval past
       its 8 values (an out-of-bounds bug); this scans it with the intended values. */
    for (int j = 0; best < 0 && j < s->n_grid; j++) {
        float d2 = 0;
        for (int i = 0; i < 8; i++) {
            float q = xg[(s->pos[j][i] - 1) / 2], diff = scale * q - xval[i];
            d2 += weight[i] * diff * diff;
        }
        if (d2 < best_d2) {
            best_d2 = d2;
            best = j;
        }
    }
    if (best < 0) best = nbr[1];
    for (int i = 0; i < 8; i++) L[i] = (int8_t)((s->pos[best][i] - 1) / 2);
    return best;
}

/* ggml sorts with qsort and a comparator that sees only the value; glibc's qsort is a stable
   merge sort at this size, so equal values keep their index order. */
static void sort_by_value(const float *x, int n, int *idx) {
    for (int j = 0; j < n; j++) {
        int k = j;
        while (k > 0 && x[idx[k - 1]] > x[j]) {
            idx[k] = idx[k - 1];
            k--;
        }
        idx[k] = j;
    }
}

/* One block of 32 (ggml's quantize_row_iq1_s_impl inner loop): the exact best split of the
   sorted values into levels -1, 0, 1 with shift +1/8 or -1/8, moved onto the codebook. Writes
   the 4 low index bytes and the high index bits of qh; returns the scale (0 for a block that
   cannot be quantized) and the shift. */
static float iq1_s_block(const iq_search *s, const float *xb, const float *weight, uint8_t qs[4], uint16_t *qh,
                         int *shift) {
    static const float x_p[3] = {-1 + IQ1S_DELTA, IQ1S_DELTA, 1 + IQ1S_DELTA};
    static const float x_m[3] = {-1 - IQ1S_DELTA, -IQ1S_DELTA, 1 - IQ1S_DELTA};
    enum { B = 32 };
    float sumx[B + 1], sumw[B + 1], max = fabsf(xb[0]);
    int idx[B];
    int8_t L[B];
    *shift = 1;
    for (int i = 1; i < B; i++) max = max > fabsf(xb[i]) ? max : fabsf(xb[i]);
    if (max < GROUP_MAX_EPS_IQ1_S) return 0;
    sort_by_value(xb, B, idx);
    sumx[0] = sumw[0] = 0;
    for (int j = 0; j < B; j++) {
        sumx[j + 1] = sumx[j] + weight[idx[j]] * xb[idx[j]];
        sumw[j + 1] = sumw[j] + weight[idx[j]];
    }
    float best_score = -FLT_MAX, scale = max;
    int besti1 = -1, besti2 = -1, best_shift = 0;
    for (int i1 = 0; i1 <= B; i1++) {
        for (int i2 = i1; i2 <= B; i2++) {
            for (int sh = 1; sh >= -1; sh -= 2) {
                const float *xs = sh == 1 ? x_p : x_m;
                float sumqx =
                    (sumx[i1] - sumx[0]) * xs[0] + (sumx[i2] - sumx[i1]) * xs[1] + (sumx[B] - sumx[i2]) * xs[2];
                float sumq2 = (sumw[i1] - sumw[0]) * xs[0] * xs[0] + (sumw[i2] - sumw[i1]) * xs[1] * xs[1] +
                              (sumw[B] - sumw[i2]) * xs[2] * xs[2];
                if (sumq2 > 0 && sumqx * sumqx > best_score * sumq2) {
                    scale = sumqx / sumq2;
                    best_score = scale * sumqx;
                    besti1 = i1;
                    besti2 = i2;
                    best_shift = sh;
                }
            }
        }
    }
    if (besti1 < 0 || besti2 < 0 || best_shift == 0) return 0;
    for (int j = 0; j < B; j++) L[idx[j]] = (int8_t)(j < besti1 ? 0 : j < besti2 ? 1 : 2);
    if (scale < 0) {
        for (int j = 0; j < B; j++) L[j] = (int8_t)(2 - L[j]);
        scale = -scale;
        best_shift = -best_shift;
    }
    const float *xx = best_shift == 1 ? x_p : x_m;
    int index[B / 8], all_on_grid = 1;
    for (int k = 0; k < B / 8; k++) {
        int key = levels_key(L + 8 * k);
        index[k] = s->map[key];
        if (index[k] < 0) {
            all_on_grid = 0;
            index[k] = iq1_best_neighbour(s, neighbours_of(s, key), xb + 8 * k, weight + 8 * k, scale, xx, L + 8 * k);
        }
    }
    if (!all_on_grid) {
        float sumqx = 0, sumq2 = 0;
        for (int k = 0; k < B / 8; k++) {
            for (int j = 0; j < 8; j++) {
                float w = weight[8 * k + j], q = xx[(s->pos[index[k]][j] - 1) / 2];
                sumqx += w * q * xb[8 * k + j];
                sumq2 += w * q * q;
            }
        }
        if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
    }
    uint16_t h = 0;
    for (int k = 0; k < B / 8; k++) {
        qs[k] = (uint8_t)(index[k] & 255);
        h |= (uint16_t)((index[k] >> 8) << 3 * k);
    }
    *qh = h;
    *shift = best_shift;
    return scale;
}

static size_t iq1_s_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    const iq_search *s = get_search(DS_TYPE_IQ1_S);
    if (!imatrix || !s) return 0;
    block_iq1_s *b = row;
    for (int64_t ibl = 0; ibl < n / QK_K; ibl++, x += QK_K) {
        const float *qw = imatrix + ibl * QK_K;
        float scales[QK_K / 32], weight[32], max_scale = 0, sumx2 = 0;
        int shifts[QK_K / 32];
        memset(&b[ibl], 0, sizeof b[ibl]);
        for (int i = 0; i < QK_K; i++) sumx2 += x[i] * x[i];
        float sigma2 = 2 * sumx2 / QK_K;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const float *xb = x + 32 * ib;
            for (int i = 0; i < 32; i++) weight[i] = qw[32 * ib + i] * sqrtf(sigma2 + xb[i] * xb[i]);
            scales[ib] = iq1_s_block(s, xb, weight, b[ibl].qs + 4 * ib, &b[ibl].qh[ib], &shifts[ib]);
            max_scale = max_scale > scales[ib] ? max_scale : scales[ib];
        }
        if (!max_scale) continue;
        float d = max_scale / 15, id = 1 / d;
        b[ibl].d = to_f16(d * 1.125f); /* ggml's fudge factor */
        for (int ib = 0; ib < QK_K / 32; ib++) {
            int l = imax(0, imin(7, nearest_int(0.5f * (id * scales[ib] - 1))));
            if (shifts[ib] == -1) l |= 8;
            b[ibl].qh[ib] |= (uint16_t)(l << 12);
        }
    }
    return (size_t)(n / QK_K) * sizeof *b;
}

void ds_quant_init_iq(ds_type_traits *t) {
    t[DS_TYPE_IQ4_NL].to_f32 = iq4_nl_to_f32;
    t[DS_TYPE_IQ4_NL].quantize = iq4_nl_quantize;
    t[DS_TYPE_IQ4_NL].vec_dot = iq4_nl_dot;
    t[DS_TYPE_IQ4_NL].vec_dot_type = DS_TYPE_Q8_0;

    t[DS_TYPE_MXFP4].to_f32 = mxfp4_to_f32;
    t[DS_TYPE_MXFP4].quantize = mxfp4_quantize;
    t[DS_TYPE_MXFP4].vec_dot = mxfp4_dot;
    t[DS_TYPE_MXFP4].vec_dot_type = DS_TYPE_Q8_0;

    t[DS_TYPE_IQ4_XS].to_f32 = iq4_xs_to_f32;
    t[DS_TYPE_IQ4_XS].quantize = iq4_xs_quantize;
    t[DS_TYPE_IQ4_XS].vec_dot = iq4_xs_dot;
    t[DS_TYPE_IQ4_XS].vec_dot_type = DS_TYPE_Q8_K;

    t[DS_TYPE_IQ2_XXS].to_f32 = iq2_xxs_to_f32;
    t[DS_TYPE_IQ2_XXS].quantize = iq2_xxs_quantize;
    t[DS_TYPE_IQ2_XXS].needs_imatrix = true;
    t[DS_TYPE_IQ2_XXS].vec_dot = iq2_xxs_dot;
    t[DS_TYPE_IQ2_XXS].vec_dot_type = DS_TYPE_Q8_K;

    t[DS_TYPE_IQ1_S].to_f32 = iq1_s_to_f32;
    t[DS_TYPE_IQ1_S].quantize = iq1_s_quantize;
    t[DS_TYPE_IQ1_S].needs_imatrix = true;
    t[DS_TYPE_IQ1_S].vec_dot = iq1_s_dot;
    t[DS_TYPE_IQ1_S].vec_dot_type = DS_TYPE_Q8_K;
}
