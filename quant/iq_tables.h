/* iq_tables.h - the codebooks of ggml's IQ formats (data in iq_tables.c). */
#ifndef DS_IQ_TABLES_H
#define DS_IQ_TABLES_H

#include <stdint.h>

/* 7 stored sign bits to 8: bit 7 makes the number of minus signs even (ggml's ksigns_iq2xs) */
extern const uint8_t ds_iq2_signs[128];
/* IQ2_XXS: 256 points of 8 magnitudes from {8, 25, 43}, byte j = element j (iq2xxs_grid) */
extern const uint64_t ds_iq2xxs_grid[256];
/* IQ1_S: 2048 points of 8 values from {-1, 0, 1} as int8 bytes (iq1s_grid) */
extern const uint64_t ds_iq1s_grid[2048];
/* IQ4_NL / IQ4_XS: the 16 non-linear levels (kvalues_iq4nl) */
extern const int8_t ds_iq4nl_values[16];
/* MXFP4: the 16 FP4 (E2M1) values, doubled to be integers (ggml's kvalues_mxfp4) */
extern const int8_t ds_mxfp4_values[16];

#endif
