/* x86_index.h - DeepSeek-V3.2's indexer scores (simd.h: ds_index_fn), one loop for AVX2 and
   AVX-512. Included by x86_avx2.c and x86_avx512.c, which first define IDX_KEYS (keys a vector
   of doubles), the vector types KVEC (IDX_KEYS doubles) and ACCV (IDX_KEYS floats), KV_ZERO(),
   KV_SET1(x), KV_FMA(a, b, c) = a * b + c, KV_ADD(a, b), ACC_ZERO(), ACC_STORE(p, v), and
   e4m3_to_pd(codes) (IDX_KEYS FP8 codes as doubles) and add_head(acc, dots, w) (acc +
   relu(float(dots)) x w, lane by lane as the scalar reference rounds it).

   Keys a lane each: a block's codes transposed and widened once (kt[i] holds dim i of the
   block's keys), then each head's dots as broadcast-q FMAs, eight heads at a time (eight
   independent chains), no horizontal sums. The dots are exact (quant/fp8.c says why), so any
   order gives the reference's bits; the float sum over heads is the reference's, lane by lane
   (these files are compiled without contraction). */
#ifndef DS_X86_INDEX_H
#define DS_X86_INDEX_H

enum { IDX_HEADS = 8, IDX_MAX_N = 256 };

/* Eight heads' dots with the block's keys. */
static inline void dots8(const double *q, int64_t n, const KVEC *kt, KVEC a[IDX_HEADS]) {
    for (int h = 0; h < IDX_HEADS; h++) a[h] = KV_ZERO();
    for (int64_t i = 0; i < n; i++) {
        const KVEC k = kt[i];
        for (int h = 0; h < IDX_HEADS; h++) a[h] = KV_FMA(KV_SET1(q[(size_t)h * (size_t)n + i]), k, a[h]);
    }
}

/* One head's, over four chains of alternate dims. */
static inline KVEC dot1(const double *q, int64_t n, const KVEC *kt) {
    KVEC a[4] = {KV_ZERO(), KV_ZERO(), KV_ZERO(), KV_ZERO()};
    for (int64_t i = 0; i < n; i++) a[i & 3] = KV_FMA(KV_SET1(q[i]), kt[i], a[i & 3]);
    return KV_ADD(KV_ADD(a[0], a[1]), KV_ADD(a[2], a[3]));
}

/* n up to IDX_MAX_N, else the scalar reference. */
static void index_scores(const double *q, const float *w, const uint8_t *keys, size_t stride, int n_keys, int n_head,
                         int64_t n, float *out) {
    if (n > IDX_MAX_N) {
        for (int j = 0; j < n_keys; j++) out[j] = ds_fp8_index_score(q, w, keys + (size_t)j * stride, n_head, n);
        return;
    }
    KVEC kt[IDX_MAX_N];
    uint8_t codes[IDX_MAX_N][IDX_KEYS];
    for (int j0 = 0; j0 < n_keys; j0 += IDX_KEYS) {
        const int m = n_keys - j0 < IDX_KEYS ? n_keys - j0 : IDX_KEYS;
        for (int64_t i = 0; i < n; i++)
            for (int k = 0; k < IDX_KEYS; k++) codes[i][k] = k < m ? keys[(size_t)(j0 + k) * stride + (size_t)i] : 0;
        for (int64_t i = 0; i < n; i++) kt[i] = e4m3_to_pd(codes[i]);
        ACCV acc = ACC_ZERO();
        int h = 0;
        for (; h + IDX_HEADS <= n_head; h += IDX_HEADS) {
            KVEC a[IDX_HEADS];
            dots8(q + (size_t)h * (size_t)n, n, kt, a);
            for (int k = 0; k < IDX_HEADS; k++) acc = add_head(acc, a[k], w[h + k]);
        }
        for (; h < n_head; h++) acc = add_head(acc, dot1(q + (size_t)h * (size_t)n, n, kt), w[h]);
        float lanes[IDX_KEYS];
        ACC_STORE(lanes, acc);
        for (int k = 0; k < m; k++) out[j0 + k] = lanes[k];
    }
}

#endif
