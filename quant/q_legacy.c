/* q_legacy.c - ggml's 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, and Q8_1 (the
   activation format Q4_1 and Q5_1 are multiplied with).

   Per format: dequantization (ggml's dequantize_row_*), quantization as ggml_quantize_chunk
   does it (the reference quantizer without an importance matrix; with one, the weighted search
   of quantize_row_*_impl), and the dot product with the activation format as ggml's generic CPU
   code computes it (ggml_vec_dot_*_generic: integer sums per block, then float in its order). */
#include <float.h>
#include <math.h>

#include "quant_impl.h"

/* ---- shared ---- */

/* The 5th bits of 32 quants, bit j for quant j, as Q5_0 / Q5_1 store them. */
static uint32_t high_bits(const uint8_t L[QK]) {
    uint32_t qh = 0;
    for (int j = 0; j < QK; j++) qh |= (uint32_t)((L[j] & 0x10u) >> 4) << j;
    return qh;
}

/* Low nibbles: quant j in byte j % 16, the second half in the high nibble. */
static void pack_nibbles(uint8_t qs[QK / 2], const uint8_t L[QK]) {
    for (int j = 0; j < QK / 2; j++) qs[j] = (uint8_t)((L[j] & 0x0f) | ((L[j + QK / 2] & 0x0f) << 4));
}

/* Quant j of a 5-bit block: low nibble from qs, 5th bit from qh. */
static int quant5(const uint8_t qs[QK / 2], uint32_t qh, int j) {
    int lo = j < QK / 2 ? qs[j] & 0x0f : qs[j - QK / 2] >> 4;
    return lo | (int)((qh >> j) & 1) << 4;
}

/* The signed value of largest magnitude (the first one on ties); 0 for an all-zero block. */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

static void min_max(const float *x, int n, float *min, float *max) {
    *min = FLT_MAX;
    *max = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < *min) *min = x[j];
        if (x[j] > *max) *max = x[j];
    }
}

/* The importance weights of ggml's legacy *_impl quantizers: qw * sqrt(sigma2 + x^2), sigma2
   being the mean square of the whole row. */
static float row_sigma2(const float *x, int64_t n) {
    float sum_x2 = 0;
    for (int64_t j = 0; j < n; j++) sum_x2 += x[j] * x[j];
    return sum_x2 / n;
}

static void block_weights(float w[QK], const float *xb, const float *qw, float sigma2) {
    for (int j = 0; j < QK; j++) w[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
}

/* ---- Q4_0: x = d * (q - 8) ---- */

static void q4_0_to_f32(const void *row, float *y, int64_t n) {
    const block_q4_0 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        float d = f16(b[i].d);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = ((b[i].qs[j] & 0x0f) - 8) * d;
            y[j + QK / 2] = ((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* The reference: d = max / -8 from the signed extreme, quants truncated after adding 8.5. */
static void q4_0_ref(const float *x, block_q4_0 *b) {
    float d = signed_absmax(x, QK) / -8, id = d ? 1.0f / d : 0.0f;
    uint8_t L[QK];
    b->d = to_f16(d);
    for (int j = 0; j < QK; j++) L[j] = (uint8_t)imin(15, trunc_i8(x[j] * id + 8.5f));
    for (int j = 0; j < QK / 2; j++) b->qs[j] = (uint8_t)(L[j] | L[j + QK / 2] << 4);
}

static size_t q4_0_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    block_q4_0 *b = row;
    float sigma2 = imatrix ? row_sigma2(x, n) : 0;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        if (!imatrix) {
            q4_0_ref(x, &b[i]);
            continue;
        }
        float w[QK];
        int8_t L[QK];
        block_weights(w, x, imatrix + i * QK, sigma2);
        b[i].d = to_f16(ds_make_qx_quants(QK, 8, x, L, w));
        pack_nibbles(b[i].qs, (const uint8_t *)L);
    }
    return (size_t)(n / QK) * sizeof *b;
}

static float q4_0_dot(const void *row, const void *act, int64_t n) {
    const block_q4_0 *x = row;
    const block_q8_0 *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK / 2; j++) {
            sumi0 += ((x[i].qs[j] & 0x0f) - 8) * y[i].qs[j];
            sumi1 += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + QK / 2];
        }
        sumf += (sumi0 + sumi1) * f16(x[i].d) * f16(y[i].d);
    }
    return sumf;
}

/* ---- Q4_1: x = d * q + m ---- */

static void q4_1_to_f32(const void *row, float *y, int64_t n) {
    const block_q4_1 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        float d = f16(b[i].d), m = f16(b[i].m);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = (b[i].qs[j] & 0x0f) * d + m;
            y[j + QK / 2] = (b[i].qs[j] >> 4) * d + m;
        }
    }
}

static void q4_1_ref(const float *x, block_q4_1 *b) {
    float min, max;
    min_max(x, QK, &min, &max);
    float d = (max - min) / 15, id = d ? 1.0f / d : 0.0f;
    uint8_t L[QK];
    b->d = to_f16(d);
    b->m = to_f16(min);
    for (int j = 0; j < QK; j++) L[j] = (uint8_t)imin(15, trunc_i8((x[j] - min) * id + 0.5f));
    for (int j = 0; j < QK / 2; j++) b->qs[j] = (uint8_t)(L[j] | L[j + QK / 2] << 4);
}

static size_t q4_1_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    block_q4_1 *b = row;
    float sigma2 = imatrix ? row_sigma2(x, n) : 0;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        if (!imatrix) {
            q4_1_ref(x, &b[i]);
            continue;
        }
        float w[QK], min;
        uint8_t L[QK], Laux[QK];
        block_weights(w, x, imatrix + i * QK, sigma2);
        b[i].d = to_f16(ds_make_qkx_quants(QK, 15, x, w, L, &min, Laux, -0.9f, 0.05f, 36, 0));
        b[i].m = to_f16(-min);
        pack_nibbles(b[i].qs, L);
    }
    return (size_t)(n / QK) * sizeof *b;
}

/* The min term uses the activation's stored s = d * sum(q) (an F16), as ggml does: the result
   is then not exactly the dot of the dequantized rows. */
static float q4_1_dot(const void *row, const void *act, int64_t n) {
    const block_q4_1 *x = row;
    const block_q8_1 *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK / 2; j++) {
            sumi0 += (x[i].qs[j] & 0x0f) * y[i].qs[j];
            sumi1 += (x[i].qs[j] >> 4) * y[i].qs[j + QK / 2];
        }
        sumf += (f16(x[i].d) * f16(y[i].d)) * (sumi0 + sumi1) + f16(x[i].m) * f16(y[i].s);
    }
    return sumf;
}

/* ---- Q5_0: x = d * (q - 16), q of 5 bits ---- */

static void q5_0_to_f32(const void *row, float *y, int64_t n) {
    const block_q5_0 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        float d = f16(b[i].d);
        uint32_t qh;
        memcpy(&qh, b[i].qh, 4);
        for (int j = 0; j < QK; j++) y[j] = (quant5(b[i].qs, qh, j) - 16) * d;
    }
}

static void q5_0_pack(block_q5_0 *b, const uint8_t L[QK]) {
    uint32_t qh = high_bits(L);
    memcpy(b->qh, &qh, 4);
    pack_nibbles(b->qs, L);
}

static void q5_0_ref(const float *x, block_q5_0 *b) {
    float d = signed_absmax(x, QK) / -16, id = d ? 1.0f / d : 0.0f;
    uint8_t L[QK];
    b->d = to_f16(d);
    for (int j = 0; j < QK; j++) L[j] = (uint8_t)imin(31, trunc_i8(x[j] * id + 16.5f));
    q5_0_pack(b, L);
}

static size_t q5_0_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    block_q5_0 *b = row;
    float sigma2 = imatrix ? row_sigma2(x, n) : 0;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        if (!imatrix) {
            q5_0_ref(x, &b[i]);
            continue;
        }
        float w[QK];
        int8_t L[QK];
        block_weights(w, x, imatrix + i * QK, sigma2);
        b[i].d = to_f16(ds_make_qx_quants(QK, 16, x, L, w));
        q5_0_pack(&b[i], (const uint8_t *)L);
    }
    return (size_t)(n / QK) * sizeof *b;
}

static float q5_0_dot(const void *row, const void *act, int64_t n) {
    const block_q5_0 *x = row;
    const block_q8_0 *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK / 2; j++) {
            sumi0 += (quant5(x[i].qs, qh, j) - 16) * y[i].qs[j];
            sumi1 += (quant5(x[i].qs, qh, j + QK / 2) - 16) * y[i].qs[j + QK / 2];
        }
        sumf += (f16(x[i].d) * f16(y[i].d)) * (sumi0 + sumi1);
    }
    return sumf;
}

/* ---- Q5_1: x = d * q + m, q of 5 bits ---- */

static void q5_1_to_f32(const void *row, float *y, int64_t n) {
    const block_q5_1 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        float d = f16(b[i].d), m = f16(b[i].m);
        uint32_t qh;
        memcpy(&qh, b[i].qh, 4);
        for (int j = 0; j < QK; j++) y[j] = quant5(b[i].qs, qh, j) * d + m;
    }
}

static void q5_1_pack(block_q5_1 *b, const uint8_t L[QK]) {
    uint32_t qh = high_bits(L);
    memcpy(b->qh, &qh, 4);
    pack_nibbles(b->qs, L);
}

/* Unlike Q4_1 no clamp to 31: ggml converts (x - min) / d + 0.5 straight to a byte. */
static void q5_1_ref(const float *x, block_q5_1 *b) {
    float min, max;
    min_max(x, QK, &min, &max);
    float d = (max - min) / 31, id = d ? 1.0f / d : 0.0f;
    uint8_t L[QK];
    b->d = to_f16(d);
    b->m = to_f16(min);
    for (int j = 0; j < QK; j++) L[j] = (uint8_t)trunc_i8((x[j] - min) * id + 0.5f);
    q5_1_pack(b, L);
}

static size_t q5_1_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    block_q5_1 *b = row;
    float sigma2 = imatrix ? row_sigma2(x, n) : 0;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        if (!imatrix) {
            q5_1_ref(x, &b[i]);
            continue;
        }
        float w[QK], min;
        uint8_t L[QK], Laux[QK];
        block_weights(w, x, imatrix + i * QK, sigma2);
        b[i].d = to_f16(ds_make_qkx_quants(QK, 31, x, w, L, &min, Laux, -0.9f, 0.05f, 36, 0));
        b[i].m = to_f16(-min);
        q5_1_pack(&b[i], L);
    }
    return (size_t)(n / QK) * sizeof *b;
}

static float q5_1_dot(const void *row, const void *act, int64_t n) {
    const block_q5_1 *x = row;
    const block_q8_1 *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK / 2; j++) {
            sumi0 += quant5(x[i].qs, qh, j) * y[i].qs[j];
            sumi1 += quant5(x[i].qs, qh, j + QK / 2) * y[i].qs[j + QK / 2];
        }
        sumf += (f16(x[i].d) * f16(y[i].d)) * (sumi0 + sumi1) + f16(x[i].m) * f16(y[i].s);
    }
    return sumf;
}

/* ---- Q8_0 (weights and activations) and Q8_1 (activations): x = d * q ---- */

/* Two roundings, both ggml's. Weights: its reference (quantize_row_q8_0_ref, what llama-quantize
   writes): d = amax / 127, q = roundf(x * (1 / d)), halves away from zero. Activations: its x86
   CPU code (every AVX / AVX2 / AVX-512 variant, what llama.cpp computes with on x86): the
   multiplier is 127 / amax, halves go to even, and the int32 -> int8 narrowing saturates. The two
   differ on near-halfway products, which are common where activations come straight from BF16
   weights (layer 0's normed embeddings): with the reference rounding a Q8_0 attn_q alone moved
   llama.cpp's logits by 4.5e-3 on a test model, with this one by 1e-5. The fixtures hold both
   (act_q_generic vs act_q). */
static float q8_block_ref(const float *x, int8_t qs[QK]) {
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
    float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK; j++) qs[j] = trunc_i8(roundf(x[j] * id));
    return d;
}

static int8_t sat_i8(float x) {
    int32_t i = (x > -2147483648.f && x < 2147483648.f) ? (int32_t)x : INT32_MIN;
    return (int8_t)(i < -128 ? -128 : i > 127 ? 127 : i);
}

static float q8_block(const float *x, int8_t qs[QK]) {
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
    float id = amax != 0.0f ? 127.f / amax : 0.0f;
    for (int j = 0; j < QK; j++) qs[j] = sat_i8(rintf(x[j] * id));
    return amax / 127;
}

static void q8_0_from_f32(const float *x, void *row, int64_t n) {
    block_q8_0 *b = row;
    for (int64_t i = 0; i < n / QK; i++, x += QK) b[i].d = to_f16(q8_block(x, b[i].qs));
}

/* An importance matrix changes nothing for Q8_0 (ggml ignores it too). */
static size_t q8_0_quantize(const float *x, void *row, int64_t n, const float *imatrix) {
    (void)imatrix;
    block_q8_0 *b = row;
    for (int64_t i = 0; i < n / QK; i++, x += QK) b[i].d = to_f16(q8_block_ref(x, b[i].qs));
    return (size_t)(n / QK) * sizeof(block_q8_0);
}

static void q8_0_to_f32(const void *row, float *y, int64_t n) {
    const block_q8_0 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        float d = f16(b[i].d);
        for (int j = 0; j < QK; j++) y[j] = b[i].qs[j] * d;
    }
}

static float q8_0_dot(const void *row, const void *act, int64_t n) {
    const block_q8_0 *x = row, *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        int sumi = 0;
        for (int j = 0; j < QK; j++) sumi += x[i].qs[j] * y[i].qs[j];
        sumf += sumi * (f16(x[i].d) * f16(y[i].d));
    }
    return sumf;
}

static void q8_1_from_f32(const float *x, void *row, int64_t n) {
    block_q8_1 *b = row;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        float d = q8_block(x, b[i].qs);
        int sum = 0;
        for (int j = 0; j < QK; j++) sum += b[i].qs[j];
        b[i].d = to_f16(d);
        b[i].s = to_f16(sum * d);
    }
}

static void q8_1_to_f32(const void *row, float *y, int64_t n) {
    const block_q8_1 *b = row;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        float d = f16(b[i].d);
        for (int j = 0; j < QK; j++) y[j] = b[i].qs[j] * d;
    }
}

void ds_quant_init_legacy(ds_type_traits *t) {
    t[DS_TYPE_Q4_0].to_f32 = q4_0_to_f32;
    t[DS_TYPE_Q4_0].quantize = q4_0_quantize;
    t[DS_TYPE_Q4_0].vec_dot = q4_0_dot;
    t[DS_TYPE_Q4_0].vec_dot_type = DS_TYPE_Q8_0;

    t[DS_TYPE_Q4_1].to_f32 = q4_1_to_f32;
    t[DS_TYPE_Q4_1].quantize = q4_1_quantize;
    t[DS_TYPE_Q4_1].vec_dot = q4_1_dot;
    t[DS_TYPE_Q4_1].vec_dot_type = DS_TYPE_Q8_1;

    t[DS_TYPE_Q5_0].to_f32 = q5_0_to_f32;
    t[DS_TYPE_Q5_0].quantize = q5_0_quantize;
    t[DS_TYPE_Q5_0].vec_dot = q5_0_dot;
    t[DS_TYPE_Q5_0].vec_dot_type = DS_TYPE_Q8_0;

    t[DS_TYPE_Q5_1].to_f32 = q5_1_to_f32;
    t[DS_TYPE_Q5_1].quantize = q5_1_quantize;
    t[DS_TYPE_Q5_1].vec_dot = q5_1_dot;
    t[DS_TYPE_Q5_1].vec_dot_type = DS_TYPE_Q8_1;

    t[DS_TYPE_Q8_0].to_f32 = q8_0_to_f32;
    t[DS_TYPE_Q8_0].quantize = q8_0_quantize;
    t[DS_TYPE_Q8_0].from_f32 = q8_0_from_f32;
    t[DS_TYPE_Q8_0].vec_dot = q8_0_dot;
    t[DS_TYPE_Q8_0].vec_dot_type = DS_TYPE_Q8_0;

    t[DS_TYPE_Q8_1].to_f32 = q8_1_to_f32;
    t[DS_TYPE_Q8_1].from_f32 = q8_1_from_f32;
}
