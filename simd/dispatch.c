/* dispatch.c - which kernel table this CPU runs, and the type table made from it. Compiled
   without any ISA extension, so it runs everywhere; it calls a level's code only after the CPU
   (and, for AVX, the OS) has been seen to support it. */
#include <stdlib.h>
#include <string.h>

#include "simd.h"

#if defined(__x86_64__) && defined(DS_SIMD_X86)
#include <cpuid.h>
#include <pthread.h>

/* Each level's float kernels (x86_avx2.c, x86_avx512.c) and block-format kernels
   (x86_avx2_quant.c, x86_avx512_quant.c built twice: without and with VNNI). */
const ds_simd_kernels *ds_simd_avx2_table(void);
const ds_simd_kernels *ds_simd_avx512_table(void);
const ds_simd_kernels *ds_simd_avx2_quant_table(void);
const ds_simd_kernels *ds_simd_avx512_quant_table(void);
const ds_simd_kernels *ds_simd_avx512vnni_quant_table(void);

static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

/* A level's table: its float kernels with the block-format entries of its quant file. Only
   data is copied here; nothing of the level runs. */
static void merge(ds_simd_kernels *t, const ds_simd_kernels *floats, const ds_simd_kernels *blocks, const char *name) {
    *t = *floats;
    t->name = name;
    memcpy(t->vec_dot, blocks->vec_dot, sizeof t->vec_dot);
    memcpy(t->vec_dot4, blocks->vec_dot4, sizeof t->vec_dot4);
    memcpy(t->act_quant, blocks->act_quant, sizeof t->act_quant);
    memcpy(t->dequant, blocks->dequant, sizeof t->dequant);
}

static ds_simd_kernels avx2_k, avx512_k, avx512vnni_k;
static void make_avx2(void) { merge(&avx2_k, ds_simd_avx2_table(), ds_simd_avx2_quant_table(), "avx2"); }
static void make_avx512(void) { merge(&avx512_k, ds_simd_avx512_table(), ds_simd_avx512_quant_table(), "avx512"); }
static void make_avx512vnni(void) {
    merge(&avx512vnni_k, ds_simd_avx512_table(), ds_simd_avx512vnni_quant_table(), "avx512vnni");
}

/* __builtin_cpu_supports also checks that the OS saves the AVX / AVX-512 registers. */
const ds_simd_kernels *ds_simd_avx2(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    __builtin_cpu_init();
    int ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    if (!ok) return NULL;
    pthread_once(&once, make_avx2);
    return &avx2_k;
}

static int has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && ds_simd_avx2();
}

const ds_simd_kernels *ds_simd_avx512_plain(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (!has_avx512()) return NULL;
    pthread_once(&once, make_avx512);
    return &avx512_k;
}

const ds_simd_kernels *ds_simd_avx512_vnni(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (!has_avx512() || !__builtin_cpu_supports("avx512vnni")) return NULL;
    pthread_once(&once, make_avx512vnni);
    return &avx512vnni_k;
}

/* With VNNI (vpdpbusd, vpdpwssd) where the CPU has it, unless DS_SIMD=avx512 asks for plain
   AVX-512 F/BW/VL. */
const ds_simd_kernels *ds_simd_avx512(void) {
    const char *want = getenv("DS_SIMD");
    const ds_simd_kernels *k = want && !strcmp(want, "avx512") ? NULL : ds_simd_avx512_vnni();
    return k ? k : ds_simd_avx512_plain();
}
#else
const ds_simd_kernels *ds_simd_avx2(void) { return NULL; }
const ds_simd_kernels *ds_simd_avx512(void) { return NULL; }
const ds_simd_kernels *ds_simd_avx512_plain(void) { return NULL; }
const ds_simd_kernels *ds_simd_avx512_vnni(void) { return NULL; }
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

void ds_simd_compose(const ds_simd_kernels *k, ds_type_traits out[DS_TYPE_COUNT]) {
    for (int t = 0; t < DS_TYPE_COUNT; t++) {
        const ds_type_traits *s = ds_quant_scalar_traits((ds_type)t);
        if (s) out[t] = *s;
        else memset(&out[t], 0, sizeof out[t]);
    }
    out[DS_TYPE_F32].dot_f32 = k->dot_f32;
    out[DS_TYPE_F32].dot4_f32 = k->dot4_f32;
    out[DS_TYPE_F16].dot_f32 = k->dot_f16;
    out[DS_TYPE_F16].dot4_f32 = k->dot4_f16;
    out[DS_TYPE_F16].to_f32 = k->f16_to_f32;
    out[DS_TYPE_BF16].dot_f32 = k->dot_bf16;
    out[DS_TYPE_BF16].dot4_f32 = k->dot4_bf16;
    out[DS_TYPE_BF16].to_f32 = k->bf16_to_f32;
    for (int t = 0; t < DS_TYPE_COUNT; t++) {
        if (k->vec_dot[t]) out[t].vec_dot = k->vec_dot[t];
        if (k->vec_dot4[t]) out[t].vec_dot4 = k->vec_dot4[t];
        if (k->act_quant[t]) out[t].from_f32 = k->act_quant[t];
        if (k->dequant[t]) out[t].to_f32 = k->dequant[t];
    }
}
