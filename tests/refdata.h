/* refdata.h - reference tensors (safetensors) and comparisons shared by the model tests. */
#ifndef DS_REFDATA_H
#define DS_REFDATA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "safetensors.h"

typedef struct {
    float *data;
    int rows, cols;
} matrix;

/* A reference file, or NULL with the reason on stderr. */
static inline safetensors_file *open_reference(const char *path) {
    char err[256];
    safetensors_file *f = NULL;
    if (safetensors_open(path, &f, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    return f;
}

static inline int read_matrix(const safetensors_file *f, const char *name, matrix *m) {
    char err[256];
    const safetensors_tensor *t = safetensors_find(f, name);
    if (!t || t->n_dims != 2) {
        fprintf(stderr, "reference: no 2-D tensor '%s'\n", name);
        return -1;
    }
    m->rows = (int)t->shape[0];
    m->cols = (int)t->shape[1];
    m->data = malloc((size_t)t->n_elements * sizeof(float));
    if (!m->data || safetensors_read_f32(t, m->data, (size_t)t->n_elements, err, sizeof err)) {
        fprintf(stderr, "reference: %s\n", err);
        return -1;
    }
    return 0;
}

static inline int read_ids(const safetensors_file *f, const char *name, int32_t **out, int *n) {
    char err[256];
    const safetensors_tensor *t = safetensors_find(f, name);
    if (!t || t->n_dims != 1) {
        fprintf(stderr, "reference: no 1-D tensor '%s'\n", name);
        return -1;
    }
    *n = (int)t->n_elements;
    *out = malloc((size_t)*n * sizeof **out);
    if (!*out || safetensors_read_i32(t, *out, (size_t)*n, err, sizeof err)) {
        fprintf(stderr, "reference: %s\n", err);
        return -1;
    }
    return 0;
}

/* NaN counts as a huge difference. */
static inline double max_abs_diff(const float *a, const float *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) {
        double d = a[i] > b[i] ? (double)a[i] - b[i] : (double)b[i] - a[i];
        if (d > m || d != d) m = d != d ? 1e30 : d;
    }
    return m;
}

static inline int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

#endif
