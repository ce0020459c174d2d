/* q_search.c - the scale searches shared by ggml's quantizers (make_qx_quants, make_qkx2_quants /
   make_qkx3_quants, make_qp_quants in ggml-quants.c).

   Each picks, for a group of values, a scale (and for the qkx search a minimum) and the integer
   quants that go with it, by trying a few candidate scales and keeping the best weighted fit.
   Every comparison and every float operation is ggml's, in ggml's order: the bytes they lead to
   must be llama.cpp's (see quant_impl.h). */
#include <math.h>

#include "quant_impl.h"

/* below this a group counts as all zero */
#define GROUP_MAX_EPS 1e-15f

/* ggml's MAX for floats: a NaN in b wins, as in ((a) > (b) ? (a) : (b)) */
static inline float fmax_ggml(float a, float b) { return a > b ? a : b; }

/* Symmetric quants L in [0, 2 nmax) around nmax; weights qw, or x^2 when qw is NULL (ggml's
   rmse_type 1, the only one its quantizers use). Returns the scale: x ~ scale * (L - nmax). */
float ds_make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *qw) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    /* the quants of one candidate scale, and their weighted fit sums */
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        float w = qw ? qw[i] : x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
            float w = qw ? qw[i] : x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        /* a better fit has a larger sumlx^2 / suml2 */
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i]))));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Weighted error of x ~ scale * L + min: sum of w |diff| (use_mad) or w diff^2. */
static float qkx_error(int n, const float *x, const float *weights, const uint8_t *L, float scale, float min,
                       int use_mad) {
    float err = 0;
    for (int i = 0; i < n; i++) {
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        err += weights[i] * diff;
    }
    return err;
}

/* Asymmetric quants L in [0, nmax] with a minimum: x ~ scale * L - *the_min. Tries nstep + 1
   scales (rmin + rdelta * is + nmax) / (max - min) and, for each, the least-squares scale and
   min of its quants. make_qkx2_quants and make_qkx3_quants in ggml are this same search (they
   differ only where weights may be NULL, which no caller passes). Laux is n bytes of scratch. */
float ds_make_qkx_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                         uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad) {
    float min = x[0], max = x[0], sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max <= min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)imax(0, imin(nmax, nearest_int(iscale * (x[i] - min))));
    float best_error = qkx_error(n, x, weights, L, scale, min, use_mad);
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float err = qkx_error(n, x, weights, Laux, this_scale, this_min, use_mad);
        if (err < best_error) {
            memcpy(L, Laux, (size_t)n);
            best_error = err;
            scale = this_scale;
            min = this_min;
        }
    }
    *the_min = -min;
    return scale;
}

/* Weighted squared error of x ~ scale * min(nmax, round(iscale * x)). */
static float qp_error(int n, int nmax, const float *x, const float *qw, float iscale, float scale) {
    float mse = 0;
    for (int i = 0; i < n; i++) {
        int l = imin(nmax, nearest_int(iscale * x[i]));
        float diff = x[i] - scale * l;
        mse += qw[i] * diff * diff;
    }
    return mse;
}

/* Non-negative values (block scales, block minimums) to quants L in [0, nmax] with weights qw:
   the best of 9 scales near nmax / max, then up to 5 rounds that move one quant at a time when
   that improves the least-squares fit. Returns the fitted scale: x ~ scale * L. */
float ds_make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *qw) {
    float max = 0;
    for (int i = 0; i < n; i++) max = fmax_ggml(max, x[i]);
    if (max < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = nmax / max, scale = 1 / iscale, best_mse = 0;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)nearest_int(iscale * x[i]);
    for (int i = 0; i < n; i++) { /* the first candidate is scored without the clamp to nmax */
        float diff = x[i] - scale * L[i];
        best_mse += qw[i] * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        float iscale_is = (0.1f * is + nmax) / max, scale_is = 1 / iscale_is;
        float mse = qp_error(n, nmax, x, qw, iscale_is, scale_is);
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imin(nmax, nearest_int(iscale * x[i]));
        L[i] = (uint8_t)l;
        sumlx += qw[i] * x[i] * l;
        suml2 += qw[i] * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = qw[i];
            float slx = sumlx - w * x[i] * L[i], sl2 = suml2 - w * L[i] * L[i];
            if (!(slx > 0 && sl2 > 0)) continue;
            int new_l = imin(nmax, nearest_int(x[i] * sl2 / slx));
            if (new_l == L[i]) continue;
            slx += w * x[i] * new_l;
            sl2 += w * new_l * new_l;
            if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (uint8_t)new_l;
                sumlx = slx;
                suml2 = sl2;
                n_changed++;
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}
