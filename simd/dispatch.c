/* dispatch.c - which kernel table this CPU runs. Compiled without any ISA extension, so it
   runs everywhere; it calls a level's code only after the CPU (and, for AVX, the OS) has been
   seen to support it. */
#include <stdlib.h>
#include <string.h>

#include "simd.h"

#if defined(__x86_64__) && defined(DS_SIMD_X86)
#include <cpuid.h>

const ds_simd_kernels *ds_simd_avx2_table(void);
const ds_simd_kernels *ds_simd_avx512_table(void);

static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

/* __builtin_cpu_supports also checks that the OS saves the AVX / AVX-512 registers. */
const ds_simd_kernels *ds_simd_avx2(void) {
    __builtin_cpu_init();
    int ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    return ok ? ds_simd_avx2_table() : NULL;
}

const ds_simd_kernels *ds_simd_avx512(void) {
    __builtin_cpu_init();
    int ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && ds_simd_avx2();
    return ok ? ds_simd_avx512_table() : NULL;
}
#else
const ds_simd_kernels *ds_simd_avx2(void) { return NULL; }
const ds_simd_kernels *ds_simd_avx512(void) { return NULL; }
#endif

#if defined(__aarch64__) && defined(DS_SIMD_ARM)
#include <sys/auxv.h>

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20) /* Linux's bit for SDOT / UDOT, for headers older than it */
#endif

const ds_simd_kernels *ds_simd_neon_table(void);
const ds_simd_kernels *ds_simd_dotprod_table(void);

/* Advanced SIMD is part of every aarch64 CPU Linux runs on. */
const ds_simd_kernels *ds_simd_neon(void) { return ds_simd_neon_table(); }

/* The kernel sets HWCAP_ASIMDDP from the CPU's ID registers, which user code cannot read. */
const ds_simd_kernels *ds_simd_dotprod(void) {
    return getauxval(AT_HWCAP) & HWCAP_ASIMDDP ? ds_simd_dotprod_table() : NULL;
}

/* Like the x86 levels: DS_SIMD=scalar or neon caps the level, anything else leaves it to the CPU. */
static const ds_simd_kernels *arm_best(const char *want) {
    int cap = 2; /* 0 scalar, 1 neon, 2 dotprod */
    if (want && !strcmp(want, "scalar")) cap = 0;
    else if (want && !strcmp(want, "neon")) cap = 1;
    const ds_simd_kernels *k = NULL;
    if (cap >= 2) k = ds_simd_dotprod();
    if (!k && cap >= 1) k = ds_simd_neon();
    return k ? k : ds_simd_scalar();
}
#else
const ds_simd_kernels *ds_simd_neon(void) { return NULL; }
const ds_simd_kernels *ds_simd_dotprod(void) { return NULL; }
#endif

const ds_simd_kernels *ds_simd_best(void) {
    const char *want = getenv("DS_SIMD");
#if defined(__aarch64__) && defined(DS_SIMD_ARM)
    return arm_best(want);
#else
    int cap = 2; /* 0 scalar, 1 avx2, 2 avx512 */
    if (want && !strcmp(want, "scalar")) cap = 0;
    else if (want && !strcmp(want, "avx2")) cap = 1;
    const ds_simd_kernels *k = NULL;
    if (cap >= 2) k = ds_simd_avx512();
    if (!k && cap >= 1) k = ds_simd_avx2();
    return k ? k : ds_simd_scalar();
#endif
}
