/* quant.h - tensor storage formats: type traits and the row kernels the core calls.

   The core never looks inside a weight row itself: it asks this table for the row's byte size,
   for a dot product of a row with float32 activations, and for a row widened to float32. The
   float formats' kernels are the SIMD level's (simd/simd.h), chosen once at start-up. New
   formats (ggml's block quants) become new table entries. */
#ifndef DS_QUANT_H
#define DS_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include "../deepseek.h"

typedef struct {
    const char *name;
    int block_size;    /* elements per block (1 for plain types) */
    size_t type_size;  /* bytes per block */
    /* dot(row, x) over n elements; NULL when the format cannot be computed with yet */
    float (*dot_f32)(const void *row, const float *x, int64_t n);
    /* the same for four vectors, reading the row once; bit-identical to four dot_f32 */
    void (*dot4_f32)(const void *row, const float *const x[4], int64_t n, float out[4]);
    /* row widened to float32; NULL as above */
    void (*to_f32)(const void *row, float *out, int64_t n);
} ds_type_traits;

/* Traits of type t, or NULL for ids ggml does not define. */
const ds_type_traits *ds_quant_traits(ds_type t);

#endif
