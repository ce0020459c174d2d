/* simd.h - the dot-product and widening kernels of the float formats, one table per ISA level.

   Every level computes the same functions as the scalar reference (simd/scalar.c); a test
   checks they agree. The table in use is chosen once, at start-up, from what the CPU reports;
   the environment variable DS_SIMD=scalar|avx2|avx512 (x86-64) or scalar|neon|dotprod (aarch64)
   forces a lower level (to test and to compare). Vector kernels keep 8 or 16 float partial
   sums, so their results differ from the scalar ones in the last bits, never between threads:
   every thread uses the same table.
   On x86 the AVX-512 table's block-format kernels use VNNI where the CPU has it (its name is
   then "avx512vnni"); DS_SIMD=avx512 keeps them to AVX-512 F/BW/VL.

   simd/ sits above quant/ (ggml's formats and their scalar kernels) and includes nothing but
   quant/'s headers and deepseek.h; ds_simd_compose lays a level's kernels over quant/'s scalar
   table, and the core calls it once to build the table it computes with. */
#ifndef DS_SIMD_H
#define DS_SIMD_H

#include <stdint.h>

#include "../deepseek.h"
#include "../quant/quant.h"

typedef float (*ds_dot_fn)(const void *row, const float *x, int64_t n);
/* Four dot products of one row with four activation vectors, reading the row once; out[k]
   is bit for bit what the single dot of the same level gives for x[k]. */
typedef void (*ds_dot4_fn)(const void *row, const float *const x[4], int64_t n, float out[4]);
typedef void (*ds_widen_fn)(const void *row, float *out, int64_t n);

/* ggml's block formats (quant/): a weight row against an activation row of the format ggml
   pairs it with (Q8_0, Q8_1 or Q8_K), four activation rows at once, and float rows quantized to
   an activation format. */
typedef float (*ds_vec_dot_fn)(const void *row, const void *act, int64_t n);
typedef void (*ds_vec_dot4_fn)(const void *row, const void *const act[4], int64_t n, float out[4]);
typedef void (*ds_act_quant_fn)(const float *x, void *row, int64_t n);

/* DeepSeek-V3.2's lightning indexer over n_keys cached keys (rows of n FP8 e4m3 codes, stride
   bytes apart): out[j] = sum over heads h, in order, in float32, of w[h] x relu(q[h] . key_j),
   q n_head rows of n FP8 values held as doubles. Each dot is exact (quant/fp8.c says why), so
   every level gives ds_fp8_index_score's bits. */
typedef void (*ds_index_fn)(const double *q, const float *w, const uint8_t *keys, size_t stride, int n_keys,
                            int n_head, int64_t n, float *out);

typedef struct {
    const char *name;
    ds_dot_fn dot_f32, dot_f16, dot_bf16;
    ds_dot4_fn dot4_f32, dot4_f16, dot4_bf16;
    ds_widen_fn f16_to_f32, bf16_to_f32;
    /* Indexed by ds_type; NULL where the level has no kernel of its own, and the scalar code
       of quant/ is used. An activation quantizer must give the scalar one's bytes exactly; a
       dot product may differ from the scalar one in float rounding only. */
    ds_vec_dot_fn vec_dot[DS_TYPE_COUNT];
    ds_vec_dot4_fn vec_dot4[DS_TYPE_COUNT];
    ds_act_quant_fn act_quant[DS_TYPE_COUNT];
    /* A weight row of a block format widened to float32: the scalar dequantizer's floats bit
       for bit (the same multiplications, no fused multiply-adds). */
    ds_widen_fn dequant[DS_TYPE_COUNT];
    ds_index_fn index_scores; /* NULL: the scalar level's */
} ds_simd_kernels;

/* A level's float-format entries: its functions named dot_f32, dot_f16, dot_bf16, dot4_f32,
   dot4_f16 and dot4_bf16 (every level names them so), and its two widening functions. */
#define DS_SIMD_FLOAT_KERNELS(level, f16_widen, bf16_widen)                                            \
    .name = level, .dot_f32 = dot_f32, .dot_f16 = dot_f16, .dot_bf16 = dot_bf16, .dot4_f32 = dot4_f32, \
    .dot4_f16 = dot4_f16, .dot4_bf16 = dot4_bf16, .f16_to_f32 = f16_widen, .bf16_to_f32 = bf16_widen

/* Each level's table, or NULL when it is not built for this architecture or the CPU lacks it. */
const ds_simd_kernels *ds_simd_scalar(void);
const ds_simd_kernels *ds_simd_avx2(void);
const ds_simd_kernels *ds_simd_avx512(void);       /* the VNNI table where the CPU has it */
const ds_simd_kernels *ds_simd_avx512_plain(void); /* AVX-512 F/BW/VL only, even with VNNI */
const ds_simd_kernels *ds_simd_avx512_vnni(void);  /* NULL without avx512vnni */
const ds_simd_kernels *ds_simd_neon(void);         /* aarch64: Advanced SIMD, always there */
const ds_simd_kernels *ds_simd_dotprod(void);      /* aarch64 with SDOT / UDOT (Armv8.2 dotprod) */

/* The table to use: the best level the CPU runs, no higher than DS_SIMD asks. */
const ds_simd_kernels *ds_simd_best(void);

/* out[t] = quant/'s scalar traits of t (ds_quant_scalar_traits; all zeros, name NULL, for ids
   ggml does not define) with k's kernels in place: always the float formats' dot_f32 and
   dot4_f32 and F16 / BF16's to_f32 (F32's stays quant/'s copy), and a block format's vec_dot,
   vec_dot4, from_f32 (act_quant) and to_f32 (dequant) wherever k has one. Touches nothing but
   out; with ds_simd_best() it gives the table to compute with. */
void ds_simd_compose(const ds_simd_kernels *k, ds_type_traits out[DS_TYPE_COUNT]);

#endif
