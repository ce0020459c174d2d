/* q_k.c - ggml's K-quants: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K in 256-element super-blocks, and Q8_K,
   the activation format they (and the IQ formats) are multiplied with.

   A super-block holds 16 sub-blocks of 16 (Q2_K, Q3_K, Q6_K) or 8 of 32 (Q4_K, Q5_K), each with
   a small integer scale (and for Q2_K, Q4_K, Q5_K a minimum) that multiplies the super-block's
   F16 d (dmin). Per format: dequantization (ggml's dequantize_row_*), quantization as
   ggml_quantize_chunk does it (quantize_row_*_ref without an importance matrix,
   quantize_row_*_impl with one), and the dot product with Q8_K as ggml's generic CPU code
   computes it: exact integer sums, then float32 in ggml's order (per super-block, and for Q3_K
   to Q6_K in 8 lanes by element index mod 8, summed at the end). */
#include <math.h>

#include "quant_impl.h"

#define GROUP_MAX_EPS 1e-15f

/* ---- shared ---- */

/* 2-bit quants (Q2_K, Q3_K low bits): byte 32 * (k / 128) + k % 32, bits 2 * (k % 128 / 32). */
static int quant2(const uint8_t qs[QK_K / 4], int k) {
    return (qs[32 * (k / 128) + k % 32] >> (2 * (k % 128 / 32))) & 3;
}

static void pack2(uint8_t qs[QK_K / 4], const uint8_t L[QK_K]) {
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6);
}

/* 4-bit quants (Q4_K, Q5_K low bits): byte 32 * (k / 64) + k % 32, high nibble for k % 64 >= 32. */
static int quant4(const uint8_t qs[QK_K / 2], int k) {
    uint8_t b = qs[32 * (k / 64) + k % 32];
    return k % 64 < 32 ? b & 0x0f : b >> 4;
}

/* The 6-bit scale and minimum of sub-block j of Q4_K / Q5_K (ggml's get_scale_min_k4): j < 4
   in the low 6 bits of bytes j and j + 4; j >= 4 in the nibbles of byte j + 4 with their top
   2 bits in the spare high bits of bytes j - 4 and j. */
static void scale_min_k4(int j, const uint8_t q[12], uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xf) | (q[j - 4] >> 6) << 4);
        *m = (uint8_t)((q[j + 4] >> 4) | (q[j] >> 6) << 4);
    }
}

static void pack_scale_min_k4(uint8_t q[12], const uint8_t ls[8], const uint8_t lm[8]) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            q[j] = ls[j];
            q[j + 4] = lm[j];
        } else {
            q[j + 4] = (uint8_t)((ls[j] & 0xf) | (lm[j] & 0xf) << 4);
            q[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            q[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* Q4_K / Q5_K after the scales are set: each sub-block's quants recomputed from the rounded
   scale and minimum, (x + dm) / d clamped to [0, nmax]; sub-blocks whose scale is 0 keep the
   quants of the search. */
static void requantize_k4(const float *x, const uint8_t scales[12], uint16_t dh, uint16_t dminh, int nmax,
                          uint8_t L[QK_K]) {
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        scale_min_k4(j, scales, &sc, &m);
        const float d = f16(dh) * sc;
        if (!d) continue;
        const float dm = f16(dminh) * m;
        for (int ii = 0; ii < 32; ii++)
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, nearest_int((x[32 * j + ii] + dm) / d)));
    }
}

static float sum_squares(const float *x, int n) {
    float s = 0;
    for (int j = 0; j < n; j++) s += x[j] * x[j];
    return s;
}

/* The weighted search of the *_impl quantizers for one super-block of Q4_K / Q5_K (and the
   imatrix-less weights av_x + |x| where quant_weights is NULL, unused by ggml_quantize_chunk). */
static void k4_impl_scales(const float *x, const float *qw, int nmax, uint8_t L[QK_K], uint8_t scales[12], uint16_t *d,
                           uint16_t *dmin) {
    float sigma2 = 2 * sum_squares(x, QK_K) / QK_K, av_x = sqrtf(sigma2);
    float w[32], sw[QK_K / 32], mins[QK_K / 32], sc[QK_K / 32];
    uint8_t Laux[32], Ls[QK_K / 32], Lm[QK_K / 32];
    for (int j = 0; j < QK_K / 32; j++) {
        const float *xb = x + 32 * j;
        for (int l = 0; l < 32; l++) w[l] = qw ? qw[32 * j + l] * sqrtf(sigma2 + xb[l] * xb[l]) : av_x + fabsf(xb[l]);
        float sumw = 0;
        for (int l = 0; l < 32; l++) sumw += w[l];
        sw[j] = sumw;
        sc[j] = ds_make_qkx_quants(32, nmax, xb, w, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36, 0);
    }
    float d_block = ds_make_qp_quants(QK_K / 32, 63, sc, Ls, sw);
    float m_block = ds_make_qp_quants(QK_K / 32, 63, mins, Lm, sw);
    pack_scale_min_k4(scales, Ls, Lm);
    *d = to_f16(d_block);
    *dmin = to_f16(m_block);
}

/* The reference search of Q4_K / Q5_K for one super-block: per sub-block the qkx search with
   weights av_x + |x| (av_x the sub-block's rms), then scales and minimums to 6 bits against the
   largest of each. */
static void k4_ref_scales(const float *x, int nmax, float rmin, float rdelta, int nstep, uint8_t L[QK_K],
                          uint8_t scales[12], uint16_t *d, uint16_t *dmin) {
    float w[32], mins[QK_K / 32], sc[QK_K / 32], max_scale = 0, max_min = 0;
    uint8_t Laux[32], Ls[QK_K / 32], Lm[QK_K / 32];
    for (int j = 0; j < QK_K / 32; j++) {
        const float *xb = x + 32 * j;
        float av_x = sqrtf(sum_squares(xb, 32) / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xb[l]);
        sc[j] = ds_make_qkx_quants(32, nmax, xb, w, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep, 0);
        if (sc[j] > max_scale) max_scale = sc[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; j++) {
        Ls[j] = (uint8_t)nearest_int(inv_scale * sc[j]);
        Lm[j] = (uint8_t)nearest_int(inv_min * mins[j]);
        if (Ls[j] > 63) Ls[j] = 63;
        if (Lm[j] > 63) Lm[j] = 63;
    }
    pack_scale_min_k4(scales, Ls, Lm);
    *d = to_f16(max_scale / 63.f);
    *dmin = to_f16(max_min / 63.f);
}

/* ---- Q8_K: x = d * q, d a float32 ---- */

/* ggml's quantize_row_q8_K_ref (every CPU variant uses it): q = round-half-even(-127 / max * x)
   with max the signed value of largest magnitude, d = 1 / that scale, bsums the sums of 16
   consecutive quants. For |max| so small that -127 / max overflows, d is +-0 and every quant 0. */
static void q8_K_from_f32(const float *x, void *row, int64_t n) {
    block_q8_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        memset(&b[i], 0, sizeof b[i]);
        if (!amax) continue;
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) b[i].qs[j] = low_i8(imin(127, nearest_int(iscale * x[j])));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += b[i].qs[16 * j + l];
            b[i].bsums[j] = (int16_t)sum;
        }
        b[i].d = 1 / iscale;
    }
}

static size_t q8_K_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    (void)imatrix;
    q8_K_from_f32(x, row, n);
    return (size_t)(n / QK_K) * sizeof(block_q8_K);
}

static void q8_K_to_f32(const void *row, float *y, int64_t n) {
    const block_q8_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++) *y++ = b[i].d * b[i].qs[j];
}

/* The 8-lane integer sums of ggml's generic K-quant dots: lane l gets scale(k) * q8[k] * a[k]
   for the k = l mod 8, sub-blocks of sub elements. */
static void lane_sums(const int8_t a[QK_K], const int8_t q8[QK_K], const int scale[], int sub, int32_t lanes[8]) {
    memset(lanes, 0, 8 * sizeof *lanes);
    for (int k = 0; k < QK_K; k++) lanes[k % 8] += scale[k / sub] * (int16_t)(q8[k] * a[k]);
}

/* ---- Q2_K: x = d * sc * q - dmin * m, 16 sub-blocks of 16, 4-bit scale and min ---- */

static void q2_K_to_f32(const void *row, float *y, int64_t n) {
    const block_q2_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16(b[i].d), min = f16(b[i].dmin);
        for (int k = 0; k < QK_K; k++) {
            uint8_t sc = b[i].scales[k / 16];
            float dl = d * (sc & 0xf), ml = min * (sc >> 4);
            *y++ = dl * quant2(b[i].qs, k) - ml;
        }
    }
}

/* Each sub-block's quants from its rounded scale and min; sub-blocks with scale 0 keep theirs. */
static void q2_K_requantize(const float *x, const block_q2_K *b, uint8_t L[QK_K]) {
    const float dm = f16(b->d), mm = f16(b->dmin);
    for (int j = 0; j < QK_K / 16; j++) {
        const float d = dm * (b->scales[j] & 0xf);
        if (!d) continue;
        const float m = mm * (b->scales[j] >> 4);
        for (int ii = 0; ii < 16; ii++)
            L[16 * j + ii] = (uint8_t)imax(0, imin(3, nearest_int((x[16 * j + ii] + m) / d)));
    }
}

static void q2_K_ref(const float *x, block_q2_K *b) {
    uint8_t L[QK_K], Laux[16];
    float w[16], mins[QK_K / 16], scales[QK_K / 16], max_scale = 0, max_min = 0;
    const float q4scale = 15.f;
    for (int j = 0; j < QK_K / 16; j++) {
        for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
        scales[j] = ds_make_qkx_quants(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, 1);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    memset(b->scales, 0, sizeof b->scales);
    b->d = to_f16(0.f);
    if (max_scale > 0) {
        float iscale = q4scale / max_scale;
        for (int j = 0; j < QK_K / 16; j++) b->scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
        b->d = to_f16(max_scale / q4scale);
    }
    b->dmin = to_f16(0.f);
    if (max_min > 0) {
        float iscale = q4scale / max_min;
        for (int j = 0; j < QK_K / 16; j++) b->scales[j] |= (uint8_t)((unsigned)nearest_int(iscale * mins[j]) << 4);
        b->dmin = to_f16(max_min / q4scale);
    }
    q2_K_requantize(x, b, L);
    pack2(b->qs, L);
}

static void q2_K_impl(const float *x, block_q2_K *b, const float *qw) {
    uint8_t L[QK_K], Laux[16], Ls[QK_K / 16], Lm[QK_K / 16];
    float w[16], mins[QK_K / 16], scales[QK_K / 16], sw[QK_K / 16];
    float sigma2 = sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < QK_K / 16; j++) {
        for (int l = 0; l < 16; l++) w[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
        sw[j] = 0;
        for (int l = 0; l < 16; l++) sw[j] += w[l];
        scales[j] = ds_make_qkx_quants(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36, 0);
    }
    float dm = ds_make_qp_quants(QK_K / 16, 15, scales, Ls, sw);
    float mm = ds_make_qp_quants(QK_K / 16, 15, mins, Lm, sw);
    b->d = to_f16(dm);
    b->dmin = to_f16(mm);
    for (int j = 0; j < QK_K / 16; j++) b->scales[j] = (uint8_t)(Ls[j] | Lm[j] << 4);
    q2_K_requantize(x, b, L);
    pack2(b->qs, L);
}

static size_t q2_K_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    block_q2_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        if (imatrix) q2_K_impl(x, &b[i], imatrix + i * QK_K);
        else q2_K_ref(x, &b[i]);
    }
    return (size_t)(n / QK_K) * sizeof *b;
}

static float q2_K_dot(const void *row, const void *act, int64_t n) {
    const block_q2_K *x = row;
    const block_q8_K *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int summs = 0, isum = 0;
        for (int j = 0; j < 16; j++) summs += y[i].bsums[j] * (x[i].scales[j] >> 4);
        for (int j = 0; j < 16; j++) {
            int isuml = 0;
            for (int l = 0; l < 16; l++) isuml += y[i].qs[16 * j + l] * quant2(x[i].qs, 16 * j + l);
            isum += (x[i].scales[j] & 0xf) * isuml;
        }
        const float dall = y[i].d * f16(x[i].d), dmin = y[i].d * f16(x[i].dmin);
        sumf += dall * isum - dmin * summs;
    }
    return sumf;
}

/* ---- Q3_K: x = d * (sc - 32) * (q - 4), 16 sub-blocks of 16, 6-bit scales, 3-bit quants ---- */

/* Scale j of 16: low nibble in byte j (j < 8, low) or j - 8 (high), top 2 bits in byte
   8 + j % 4 at bit 2 * (j / 4); stored biased by 32. */
static int q3_scale(const uint8_t s[12], int j) {
    int lo = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
    return (lo | ((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
}

static void q3_pack_scale(uint8_t s[12], int j, int l) {
    if (j < 8) s[j] = (uint8_t)(l & 0xf);
    else s[j - 8] |= (uint8_t)((l & 0xf) << 4);
    s[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
}

/* Quant k in [-4, 3]: low 2 bits as Q2_K, the third bit (set = no -4) in hmask[k % 32] bit k / 32. */
static int q3_quant(const block_q3_K *b, int k) {
    return quant2(b->qs, k) - ((b->hmask[k % 32] >> (k / 32)) & 1 ? 0 : 4);
}

static void q3_K_to_f32(const void *row, float *y, int64_t n) {
    const block_q3_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d_all = f16(b[i].d);
        for (int k = 0; k < QK_K; k++) {
            float dl = d_all * q3_scale(b[i].scales, k / 16);
            *y++ = dl * q3_quant(&b[i], k);
        }
    }
}

/* ggml's make_q3_quants (only its do_rmse form is used): symmetric quants in [-nmax, nmax)
   weighted by x^2, refined one quant at a time for up to 5 rounds. L is returned biased by
   nmax; the result is the fitted scale. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i], slx = sumlx - w * x[i] * L[i];
            if (!(slx > 0)) continue;
            float sl2 = suml2 - w * L[i] * L[i];
            int new_l = imax(-nmax, imin(nmax - 1, nearest_int(x[i] * sl2 / slx)));
            if (new_l == L[i]) continue;
            slx += w * x[i] * new_l;
            sl2 += w * new_l * new_l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)new_l;
                sumlx = slx;
                suml2 = sl2;
                n_changed++;
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Quants from the stored scales (sub-blocks with scale 0 keep the search's), then split into
   the 2 low bits and the hmask bit. */
static void q3_K_finish(const float *x, block_q3_K *b, int8_t L[QK_K]) {
    for (int j = 0; j < QK_K / 16; j++) {
        const float d = f16(b->d) * q3_scale(b->scales, j);
        if (!d) continue;
        for (int ii = 0; ii < 16; ii++)
            L[16 * j + ii] = (int8_t)(imax(-4, imin(3, nearest_int(x[16 * j + ii] / d))) + 4);
    }
    uint8_t low[QK_K];
    memset(b->hmask, 0, sizeof b->hmask);
    for (int k = 0; k < QK_K; k++) {
        int l = L[k];
        if (l > 3) {
            b->hmask[k % 32] |= (uint8_t)(1 << (k / 32));
            l -= 4;
        }
        low[k] = (uint8_t)l;
    }
    pack2(b->qs, low);
}

static void q3_K_ref(const float *x, block_q3_K *b) {
    int8_t L[QK_K];
    float scales[QK_K / 16], max_scale = 0, amax = 0;
    for (int j = 0; j < QK_K / 16; j++) {
        scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
        if (fabsf(scales[j]) > amax) {
            amax = fabsf(scales[j]);
            max_scale = scales[j];
        }
    }
    memset(b->scales, 0, sizeof b->scales);
    b->d = to_f16(0.f);
    if (max_scale) {
        float iscale = -32.f / max_scale;
        for (int j = 0; j < QK_K / 16; j++) {
            int8_t l = low_i8(nearest_int(iscale * scales[j])); /* ggml narrows before clamping */
            q3_pack_scale(b->scales, j, imax(-32, imin(31, l)) + 32);
        }
        b->d = to_f16(1 / iscale);
    }
    q3_K_finish(x, b, L);
}

static void q3_K_impl(const float *x, block_q3_K *b, const float *qw) {
    int8_t L[QK_K], Ls[QK_K / 16];
    float scales[QK_K / 16], w[16], sw[QK_K / 16];
    float sigma2 = 2 * sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < QK_K / 16; j++) {
        for (int l = 0; l < 16; l++) w[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
        float sumw = 0;
        for (int l = 0; l < 16; l++) sumw += w[l];
        sw[j] = sumw;
        scales[j] = ds_make_qx_quants(16, 4, x + 16 * j, L + 16 * j, w);
    }
    memset(b->scales, 0, sizeof b->scales);
    float d_block = ds_make_qx_quants(QK_K / 16, 32, scales, Ls, sw);
    for (int j = 0; j < QK_K / 16; j++) q3_pack_scale(b->scales, j, Ls[j]);
    b->d = to_f16(d_block);
    q3_K_finish(x, b, L);
}

static size_t q3_K_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    block_q3_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        if (imatrix) q3_K_impl(x, &b[i], imatrix + i * QK_K);
        else q3_K_ref(x, &b[i]);
    }
    return (size_t)(n / QK_K) * sizeof *b;
}

static float q3_K_dot(const void *row, const void *act, int64_t n) {
    const block_q3_K *x = row;
    const block_q8_K *y = act;
    float sums[8] = {0}, sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t a[QK_K];
        int scale[QK_K / 16];
        int32_t lanes[8];
        for (int k = 0; k < QK_K; k++) a[k] = (int8_t)q3_quant(&x[i], k);
        for (int j = 0; j < QK_K / 16; j++) scale[j] = q3_scale(x[i].scales, j);
        lane_sums(a, y[i].qs, scale, 16, lanes);
        const float d = f16(x[i].d) * y[i].d;
        for (int l = 0; l < 8; l++) sums[l] += d * lanes[l];
    }
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

/* ---- Q4_K: x = d * sc * q - dmin * m, 8 sub-blocks of 32, 6-bit scale and min ---- */

static void q4_K_to_f32(const void *row, float *y, int64_t n) {
    const block_q4_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16(b[i].d), min = f16(b[i].dmin);
        for (int k = 0; k < QK_K; k++) {
            uint8_t sc, m;
            scale_min_k4(k / 32, b[i].scales, &sc, &m);
            const float dl = d * sc, ml = min * m;
            *y++ = dl * quant4(b[i].qs, k) - ml;
        }
    }
}

static void pack4(uint8_t qs[QK_K / 2], const uint8_t L[QK_K]) {
    for (int j = 0; j < QK_K; j += 64)
        for (int l = 0; l < 32; l++) qs[j / 2 + l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
}

static size_t q4_K_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    block_q4_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        if (imatrix) k4_impl_scales(x, imatrix + i * QK_K, 15, L, b[i].scales, &b[i].d, &b[i].dmin);
        else k4_ref_scales(x, 15, -1.f, 0.1f, 20, L, b[i].scales, &b[i].d, &b[i].dmin);
        requantize_k4(x, b[i].scales, b[i].d, b[i].dmin, 15, L);
        pack4(b[i].qs, L);
    }
    return (size_t)(n / QK_K) * sizeof *b;
}

/* Q4_K and Q5_K: lanes of scale * q8 * q over sub-blocks of 32, minus dmin * sum(bsums * m). */
static void k4_dot_block(const uint8_t scales[12], uint16_t dh, uint16_t dminh, const int8_t a[QK_K],
                         const block_q8_K *y, float sums[8], float *sumf) {
    int scale[8], sumi = 0;
    int32_t lanes[8];
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        scale_min_k4(j, scales, &sc, &m);
        scale[j] = sc;
        sumi += (y->bsums[2 * j] + y->bsums[2 * j + 1]) * m;
    }
    lane_sums(a, y->qs, scale, 32, lanes);
    const float d = f16(dh) * y->d;
    for (int l = 0; l < 8; l++) sums[l] += d * lanes[l];
    const float dmin = f16(dminh) * y->d;
    *sumf -= dmin * sumi;
}

static float q4_K_dot(const void *row, const void *act, int64_t n) {
    const block_q4_K *x = row;
    const block_q8_K *y = act;
    float sums[8] = {0}, sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t a[QK_K];
        for (int k = 0; k < QK_K; k++) a[k] = (int8_t)quant4(x[i].qs, k);
        k4_dot_block(x[i].scales, x[i].d, x[i].dmin, a, &y[i], sums, &sumf);
    }
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

/* ---- Q5_K: Q4_K with a 5th bit per quant in qh[k % 32] bit k / 32 ---- */

static int q5_K_quant(const block_q5_K *b, int k) {
    return quant4(b->qs, k) + ((b->qh[k % 32] >> (k / 32)) & 1 ? 16 : 0);
}

static void q5_K_to_f32(const void *row, float *y, int64_t n) {
    const block_q5_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16(b[i].d), min = f16(b[i].dmin);
        for (int k = 0; k < QK_K; k++) {
            uint8_t sc, m;
            scale_min_k4(k / 32, b[i].scales, &sc, &m);
            const float dl = d * sc, ml = min * m;
            *y++ = dl * q5_K_quant(&b[i], k) - ml;
        }
    }
}

static void q5_K_pack(block_q5_K *b, const uint8_t L[QK_K]) {
    uint8_t low[QK_K];
    memset(b->qh, 0, sizeof b->qh);
    for (int k = 0; k < QK_K; k++) {
        low[k] = L[k] & 0x0f;
        if (L[k] > 15) b->qh[k % 32] |= (uint8_t)(1 << (k / 32));
    }
    pack4(b->qs, low);
}

static size_t q5_K_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    block_q5_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        if (imatrix) k4_impl_scales(x, imatrix + i * QK_K, 31, L, b[i].scales, &b[i].d, &b[i].dmin);
        else k4_ref_scales(x, 31, -0.5f, 0.1f, 15, L, b[i].scales, &b[i].d, &b[i].dmin);
        requantize_k4(x, b[i].scales, b[i].d, b[i].dmin, 31, L);
        q5_K_pack(&b[i], L);
    }
    return (size_t)(n / QK_K) * sizeof *b;
}

static float q5_K_dot(const void *row, const void *act, int64_t n) {
    const block_q5_K *x = row;
    const block_q8_K *y = act;
    float sums[8] = {0}, sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t a[QK_K];
        for (int k = 0; k < QK_K; k++) a[k] = (int8_t)q5_K_quant(&x[i], k);
        k4_dot_block(x[i].scales, x[i].d, x[i].dmin, a, &y[i], sums, &sumf);
    }
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

/* ---- Q6_K: x = d * sc * (q - 32), 16 sub-blocks of 16, int8 scales, 6-bit quants ---- */

/* Quant k of 256 in [-32, 31]: in each half of 128, ql[64 * half + k % 64] holds the low
   nibble (high nibble for k % 128 >= 64) and qh[32 * half + k % 32] the top 2 bits at bit
   2 * (k % 128 / 32). */
static int q6_quant(const block_q6_K *b, int k) {
    int half = k / 128, r = k % 128;
    uint8_t lo = b->ql[64 * half + r % 64];
    int l4 = r < 64 ? lo & 0xf : lo >> 4;
    return (l4 | ((b->qh[32 * half + r % 32] >> (2 * (r / 32))) & 3) << 4) - 32;
}

static void q6_K_to_f32(const void *row, float *y, int64_t n) {
    const block_q6_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16(b[i].d);
        for (int k = 0; k < QK_K; k++) *y++ = d * b[i].scales[k / 16] * q6_quant(&b[i], k);
    }
}

/* Per 16 the qx search (weights qw, or x^2 without an importance matrix), the scales to int8
   against the one of largest magnitude, then the quants again from the stored scales. */
static void q6_K_block(const float *x, block_q6_K *b, const float *qw) {
    int8_t L[QK_K];
    float scales[QK_K / 16], max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ib++) {
        scales[ib] = ds_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, qw ? qw + 16 * ib : NULL);
        if (fabsf(scales[ib]) > max_abs_scale) {
            max_abs_scale = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    }
    memset(b, 0, sizeof *b);
    if (max_abs_scale < GROUP_MAX_EPS) return;
    float iscale = -128.f / max_scale;
    b->d = to_f16(1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ib++) b->scales[ib] = low_i8(imin(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < QK_K / 16; j++) {
        float d = f16(b->d) * b->scales[j];
        if (!d) continue;
        for (int ii = 0; ii < 16; ii++)
            L[16 * j + ii] = (int8_t)(imax(-32, imin(31, nearest_int(x[16 * j + ii] / d))) + 32);
    }
    for (int k = 0; k < QK_K; k++) {
        int half = k / 128, r = k % 128, q = L[k];
        b->ql[64 * half + r % 64] |= (uint8_t)((q & 0xf) << (r < 64 ? 0 : 4));
        b->qh[32 * half + r % 32] |= (uint8_t)((q >> 4) << (2 * (r / 32)));
    }
}

static size_t q6_K_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    block_q6_K *b = row;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) q6_K_block(x, &b[i], imatrix ? imatrix + i * QK_K : NULL);
    return (size_t)(n / QK_K) * sizeof *b;
}

static float q6_K_dot(const void *row, const void *act, int64_t n) {
    const block_q6_K *x = row;
    const block_q8_K *y = act;
    float sums[8] = {0}, sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t a[QK_K];
        int scale[QK_K / 16];
        int32_t lanes[8];
        for (int k = 0; k < QK_K; k++) a[k] = (int8_t)q6_quant(&x[i], k);
        for (int j = 0; j < QK_K / 16; j++) scale[j] = x[i].scales[j];
        lane_sums(a, y[i].qs, scale, 16, lanes);
        const float d = f16(x[i].d) * y[i].d;
        for (int l = 0; l < 8; l++) sums[l] += d * lanes[l];
    }
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

void ds_quant_init_k(ds_type_traits *t) {
    static const struct {
        ds_type type;
        void (*to_f32)(const void *, float *, int64_t);
        size_t (*quantize)(const float *, void *, int64_t, const float *);
        float (*vec_dot)(const void *, const void *, int64_t);
    } k[] = {
        {DS_TYPE_Q2_K, q2_K_to_f32, q2_K_quantize, q2_K_dot}, {DS_TYPE_Q3_K, q3_K_to_f32, q3_K_quantize, q3_K_dot},
        {DS_TYPE_Q4_K, q4_K_to_f32, q4_K_quantize, q4_K_dot}, {DS_TYPE_Q5_K, q5_K_to_f32, q5_K_quantize, q5_K_dot},
        {DS_TYPE_Q6_K, q6_K_to_f32, q6_K_quantize, q6_K_dot},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        t[k[i].type].to_f32 = k[i].to_f32;
        t[k[i].type].quantize = k[i].quantize;
        t[k[i].type].vec_dot = k[i].vec_dot;
        t[k[i].type].vec_dot_type = DS_TYPE_Q8_K;
    }
    t[DS_TYPE_Q8_K].to_f32 = q8_K_to_f32;
    t[DS_TYPE_Q8_K].quantize = q8_K_quantize;
    t[DS_TYPE_Q8_K].from_f32 = q8_K_from_f32;
}
