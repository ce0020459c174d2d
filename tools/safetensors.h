/* safetensors.h - read-only access to .safetensors files and Hugging Face checkpoint folders.

   A file is memory-mapped and its JSON header validated completely before anything is
   returned: header length within the file, every dtype known, shapes non-negative with an
   overflow-checked element count, data ranges inside the data section, not overlapping, and
   exactly element count x dtype size bytes long. `__metadata__` is ignored.

   Tensor data points into the mapping and is NOT aligned (the header length is arbitrary):
   read it with memcpy, or with safetensors_read_f32 / safetensors_read_i32, which also
   convert between types. Values are little-endian, as the format prescribes.

   Functions that can fail return 0 on success and -1 on failure, with a one-line message
   (naming the file, tensor and byte offset where that applies) written to err.
*/
#ifndef SAFETENSORS_H
#define SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SAFETENSORS_F64,
    SAFETENSORS_F32,
    SAFETENSORS_F16,
    SAFETENSORS_BF16,
    SAFETENSORS_F8_E4M3,
    SAFETENSORS_I64,
    SAFETENSORS_I32,
    SAFETENSORS_I16,
    SAFETENSORS_I8,
    SAFETENSORS_U8,
    SAFETENSORS_BOOL,
    SAFETENSORS_U16,
    SAFETENSORS_U32,
    SAFETENSORS_U64,
    SAFETENSORS_F8_E5M2,
    SAFETENSORS_F8_E8M0, /* power-of-two scales (DeepSeek-V4's block scales): 2^(b - 127) */
    SAFETENSORS_DTYPE_COUNT
} safetensors_dtype;

#define SAFETENSORS_MAX_DIMS 8

typedef struct {
    const char *name;
    safetensors_dtype dtype;
    int n_dims;                          /* 0 for a scalar */
    int64_t shape[SAFETENSORS_MAX_DIMS]; /* PyTorch order: shape[n_dims-1] is contiguous */
    int64_t n_elements;
    const void *data; /* unaligned, little-endian */
    size_t n_bytes;
    uint64_t file_offset; /* of data, from the start of the file */
    const char *path;     /* the file holding it */
} safetensors_tensor;

/* "F32", "BF16", ... as written in headers; NULL for an invalid value. */
const char *safetensors_dtype_name(safetensors_dtype t);
/* Bytes per element; 0 for an invalid value. */
size_t safetensors_dtype_size(safetensors_dtype t);

/* ---- one file ---- */
typedef struct safetensors_file safetensors_file;

int safetensors_open(const char *path, safetensors_file **out, char *err, size_t err_size);
void safetensors_close(safetensors_file *f);
const char *safetensors_path(const safetensors_file *f);
/* Tensors in the order of their data in the file. */
size_t safetensors_count(const safetensors_file *f);
const safetensors_tensor *safetensors_at(const safetensors_file *f, size_t i);
/* NULL when absent. */
const safetensors_tensor *safetensors_find(const safetensors_file *f, const char *name);
/* A hint that t's data is not needed for now: its pages may leave memory (they are read from
   the file again if touched), so streaming through a checkpoint larger than memory keeps the
   resident set small. */
void safetensors_release(const safetensors_tensor *t);

/* ---- a checkpoint folder ----
   Files, in this order of preference: the shards named by model.safetensors.index.json's
   weight_map (each listed tensor must be in its shard), model.safetensors, or every
   *.safetensors in the folder sorted by name. A tensor name in two files is an error. */
typedef struct safetensors_dir safetensors_dir;

int safetensors_dir_open(const char *dir, safetensors_dir **out, char *err, size_t err_size);
void safetensors_dir_close(safetensors_dir *d);
size_t safetensors_dir_n_files(const safetensors_dir *d);
const safetensors_file *safetensors_dir_file(const safetensors_dir *d, size_t i);
/* All tensors: file by file, each in data order. */
size_t safetensors_dir_count(const safetensors_dir *d);
const safetensors_tensor *safetensors_dir_at(const safetensors_dir *d, size_t i);
const safetensors_tensor *safetensors_dir_find(const safetensors_dir *d, const char *name);

/* ---- reading values ----
   Convert all n_elements values of t (n must equal t->n_elements) to float32: F64 rounded,
   F32 as is, F16 / BF16 / F8_E4M3 (e4m3fn: NaN at 0x7f/0xff) / F8_E5M2 exactly, integers and
   BOOL by value. */
int safetensors_read_f32(const safetensors_tensor *t, float *dst, size_t n, char *err, size_t err_size);
/* The same for elements [first, first + n) in storage order. */
int safetensors_read_f32_at(const safetensors_tensor *t, size_t first, float *dst, size_t n, char *err,
                            size_t err_size);
/* Integer types and BOOL to int32; a value outside int32 is an error. */
int safetensors_read_i32(const safetensors_tensor *t, int32_t *dst, size_t n, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif
