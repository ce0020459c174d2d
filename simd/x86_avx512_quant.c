#include "simd.h"
#ifdef DS_VNNI
#define TABLE ds_simd_avx512vnni_quant_table
#else
#define TABLE ds_simd_avx512_quant_table
#endif
static const ds_simd_kernels kernels = {.name = "x"};
const ds_simd_kernels *TABLE(void);
const ds_simd_kernels *TABLE(void) { return &kernels; }
