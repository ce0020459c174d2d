/* quant.c - ggml's type table with the scalar kernels, and F16/BF16 conversion.

   Every ggml type is listed with its sizes so that files holding any of them validate; the
   block formats' scalar kernels (quant/q_*.c) fill in their entries on first use, and formats
   without kernels get a clear "not supported yet" instead of being misread. */
#include "quant.h"
#include "quant_impl.h"

#include <pthread.h>
#include <string.h>

uint16_t ds_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mag = x & 0x7fffffffu;
    if (mag >= 0x7f800000u) /* inf or nan: keep nan-ness with a quiet bit */
        return (uint16_t)(sign | 0x7c00u | (mag > 0x7f800000u ? 0x200u : 0));
    if (mag >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (mag < 0x38800000u) {                          /* below the smallest normal half: subnormal or zero */
        if (mag < 0x33000000u) return (uint16_t)sign; /* below half the smallest subnormal */
        uint32_t e = mag >> 23, m = (mag & 0x7fffffu) | 0x800000u, shift = 126 - e;
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = (mag - 0x38000000u) >> 13, rem = mag & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float ds_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu, x;
    if (e == 0x1f) { /* inf, or nan made quiet as ggml does */
        x = sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0);
    } else if (e == 0) {
        if (m == 0) {
            x = sign;
        } else { /* subnormal: normalise */
            int shift = 0;
            while (!(m & 0x400u)) {
                m <<= 1;
                shift++;
            }
            x = sign | ((uint32_t)(113 - shift) << 23) | ((m & 0x3ffu) << 13);
        }
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t ds_fp32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet nan */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

float ds_bf16_to_fp32(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static void to_f32_f32(const void *row, float *out, int64_t n) { memcpy(out, row, (size_t)n * 4); }

/* The reference widening of the 16-bit floats; simd/'s vector levels have faster ones, bit for
   bit the same. */
void ds_quant_f16_to_f32(const void *row, float *out, int64_t n) {
    const uint16_t *h = row;
    for (int64_t i = 0; i < n; i++) out[i] = ds_fp16_to_fp32(h[i]);
}

void ds_quant_bf16_to_f32(const void *row, float *out, int64_t n) {
    const uint16_t *h = row;
    for (int64_t i = 0; i < n; i++) out[i] = ds_bf16_to_fp32(h[i]);
}

/* Block sizes and bytes per block as ggml defines them (ggml.c type_traits). */
#define T(nm, block, bytes) \
    { .name = nm, .block_size = block, .type_size = bytes }
static ds_type_traits traits[DS_TYPE_COUNT] = {
    [DS_TYPE_F32] = T("F32", 1, 4),           [DS_TYPE_F16] = T("F16", 1, 2),
    [DS_TYPE_BF16] = T("BF16", 1, 2),         [DS_TYPE_Q4_0] = T("Q4_0", 32, 18),
    [DS_TYPE_Q4_1] = T("Q4_1", 32, 20),       [DS_TYPE_Q5_0] = T("Q5_0", 32, 22),
    [DS_TYPE_Q5_1] = T("Q5_1", 32, 24),       [DS_TYPE_Q8_0] = T("Q8_0", 32, 34),
    [DS_TYPE_Q8_1] = T("Q8_1", 32, 36),       [DS_TYPE_Q2_K] = T("Q2_K", 256, 84),
    [DS_TYPE_Q3_K] = T("Q3_K", 256, 110),     [DS_TYPE_Q4_K] = T("Q4_K", 256, 144),
    [DS_TYPE_Q5_K] = T("Q5_K", 256, 176),     [DS_TYPE_Q6_K] = T("Q6_K", 256, 210),
    [DS_TYPE_Q8_K] = T("Q8_K", 256, 292),     [DS_TYPE_IQ2_XXS] = T("IQ2_XXS", 256, 66),
    [DS_TYPE_IQ2_XS] = T("IQ2_XS", 256, 74),  [DS_TYPE_IQ3_XXS] = T("IQ3_XXS", 256, 98),
    [DS_TYPE_IQ1_S] = T("IQ1_S", 256, 50),    [DS_TYPE_IQ4_NL] = T("IQ4_NL", 32, 18),
    [DS_TYPE_IQ3_S] = T("IQ3_S", 256, 110),   [DS_TYPE_IQ2_S] = T("IQ2_S", 256, 82),
    [DS_TYPE_IQ4_XS] = T("IQ4_XS", 256, 136), [DS_TYPE_I8] = T("I8", 1, 1),
    [DS_TYPE_I16] = T("I16", 1, 2),           [DS_TYPE_I32] = T("I32", 1, 4),
    [DS_TYPE_I64] = T("I64", 1, 8),           [DS_TYPE_F64] = T("F64", 1, 8),
    [DS_TYPE_IQ1_M] = T("IQ1_M", 256, 56),    [DS_TYPE_TQ1_0] = T("TQ1_0", 256, 54),
    [DS_TYPE_TQ2_0] = T("TQ2_0", 256, 66),    [DS_TYPE_MXFP4] = T("MXFP4", 32, 17),
};
#undef T

static void init_kernels(void) {
    traits[DS_TYPE_F32].to_f32 = to_f32_f32;
    traits[DS_TYPE_F16].to_f32 = ds_quant_f16_to_f32;
    traits[DS_TYPE_BF16].to_f32 = ds_quant_bf16_to_f32;
    ds_quant_init_legacy(traits);
    ds_quant_init_k(traits);
    ds_quant_init_iq(traits);
}

const ds_type_traits *ds_quant_scalar_traits(ds_type t) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_kernels);
    if ((unsigned)t >= DS_TYPE_COUNT || !traits[t].name) return NULL;
    return &traits[t];
}

const char *ds_type_name(ds_type t) {
    const ds_type_traits *tt = ds_quant_scalar_traits(t);
    return tt ? tt->name : NULL;
}

size_t ds_type_row_size(ds_type t, int64_t n) {
    const ds_type_traits *tt = ds_quant_scalar_traits(t);
    if (!tt || n < 0 || n % tt->block_size) return 0;
    return (size_t)(n / tt->block_size) * tt->type_size;
}
