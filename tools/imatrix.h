/* imatrix.h - llama.cpp's importance matrices (llama-imatrix output), read as llama-quantize
   reads them: the GGUF form (<name>.in_sum2 + <name>.counts per tensor) or the legacy .dat
   form, each entry normalised to mean squared activations per column (per expert). */
#ifndef DS_TOOLS_IMATRIX_H
#define DS_TOOLS_IMATRIX_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name;
    float *v;
    size_t n;
} imatrix_entry;

typedef struct {
    imatrix_entry *e; /* sorted by name */
    size_t n;
    char *dataset;  /* the first dataset the file names, or NULL */
    int64_t chunks; /* chunks it was computed on (0 when the file does not say) */
} imatrix;

/* 0, or -1 with a message (unreadable, malformed, non-finite values). */
int imatrix_load(const char *path, imatrix *im, char *err, size_t err_size);
/* The entry for a tensor name, or NULL. */
const imatrix_entry *imatrix_find(const imatrix *im, const char *name);
void imatrix_free(imatrix *im);

#endif
