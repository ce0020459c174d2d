/* imatrix.c - reading llama.cpp's importance matrices as its common_imatrix_load and
   llama-quantize's load_imatrix do, so a quantizer given the same file uses the same weights. */
#include "errmsg.h"
#include "imatrix.h"
#include "deepseek.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static imatrix_entry *add_entry(imatrix *im, const char *name, size_t name_len, size_t n) {
    imatrix_entry *e = realloc(im->e, (im->n + 1) * sizeof *e);
    if (!e) return NULL;
    im->e = e;
    e = &im->e[im->n];
    e->name = dup_n(name, name_len);
    e->v = calloc(n ? n : 1, sizeof *e->v);
    e->n = n;
    if (!e->name || !e->v) {
        free(e->name);
        free(e->v);
        return NULL;
    }
    im->n++;
    return e;
}

/* ================================================================== legacy .dat */

static int read_i32(FILE *fp, int32_t *v) { return fread(v, 4, 1, fp) == 1; }

/* The optional tail: chunk count, then the dataset's name. */
static void legacy_tail(FILE *fp, imatrix *im) {
    int32_t chunks, len;
    if (!read_i32(fp, &chunks)) return;
    im->chunks = chunks;
    if (!read_i32(fp, &len) || len <= 0 || len > (1 << 20)) return;
    char *s = calloc((size_t)len + 1, 1);
    if (s && fread(s, 1, (size_t)len, fp) == (size_t)len) im->dataset = s; /* read as a C string, as llama.cpp does */
    else free(s);
}

/* Each entry holds sums already divided by their own count, times the number of calls: dividing
   by the calls gives the mean. */
static int legacy_entry(FILE *fp, imatrix *im, int i, const char *path, char *err, size_t es) {
    int32_t len, ncall, nval;
    char name[4096];
    if (!read_i32(fp, &len) || len < 0 || len >= (int32_t)sizeof name || fread(name, 1, (size_t)len, fp) != (size_t)len)
        return tool_fail(err, es, "%s: not an importance matrix (entry %d: no name)", path, i + 1);
    if (!read_i32(fp, &ncall) || !read_i32(fp, &nval) || nval < 1 || nval > (1 << 26))
        return tool_fail(err, es, "%s: not an importance matrix (entry %d: bad value count)", path, i + 1);
    imatrix_entry *e = add_entry(im, name, (size_t)len, (size_t)nval);
    if (!e) return tool_fail(err, es, "out of memory");
    if (fread(e->v, sizeof(float), (size_t)nval, fp) != (size_t)nval)
        return tool_fail(err, es, "%s: entry %d: the file ends in its %d values", path, i + 1, nval);
    for (int32_t k = 0; ncall > 0 && k < nval; k++) e->v[k] = e->v[k] / (float)ncall;
    return 0;
}

static int load_legacy(const char *path, imatrix *im, char *err, size_t es) {
    FILE *fp = fopen(path, "rb");
    int32_t n = 0;
    int rc = 0;
    if (!fp) return tool_fail(err, es, "%s: cannot open: %s", path, strerror(errno));
    if (!read_i32(fp, &n) || n < 1) rc = tool_fail(err, es, "%s: not an importance matrix (no entries)", path);
    for (int32_t i = 0; rc == 0 && i < n; i++) rc = legacy_entry(fp, im, i, path, err, es);
    if (rc == 0) legacy_tail(fp, im);
    fclose(fp);
    return rc;
}

/* ================================================================== GGUF */

enum { G_STR = 8, G_ARR = 9 };
static const size_t SCALAR[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static int skip(FILE *fp, uint64_t n) { return fseek(fp, (long)n, SEEK_CUR) == 0; }

static int read_u64(FILE *fp, uint64_t *v) { return fread(v, 8, 1, fp) == 1; }

static int skip_value(FILE *fp, uint32_t type) {
    uint64_t n;
    if (type == G_STR) return read_u64(fp, &n) && n < (1ull << 40) && skip(fp, n);
    if (type == G_ARR) {
        uint32_t et;
        if (fread(&et, 4, 1, fp) != 1 || !read_u64(fp, &n) || et == G_ARR || et > 12) return 0;
        for (uint64_t i = 0; et == G_STR && i < n; i++) {
            if (!skip_value(fp, G_STR)) return 0;
        }
        return et == G_STR || (n < (1ull << 40) && skip(fp, n * SCALAR[et]));
    }
    return type <= 12 && skip(fp, SCALAR[type]);
}

/* The first string of imatrix.datasets. The reading API gives no array elements, so the header
   (already validated by ds_gguf_open) is walked here. */
static char *first_dataset(const char *path) {
    FILE *fp = fopen(path, "rb");
    uint64_t n_kv, len, n;
    uint32_t type, et;
    char key[64], *found = NULL;
    int ok = fp && skip(fp, 16) && read_u64(fp, &n_kv);
    for (uint64_t i = 0; ok && !found && i < n_kv; i++) {
        ok = read_u64(fp, &len) &&
             fread(key, 1, len < sizeof key ? len : sizeof key, fp) == (len < sizeof key ? len : sizeof key);
        ok = ok && (len < sizeof key || skip(fp, len - sizeof key)) && fread(&type, 4, 1, fp) == 1;
        int want = ok && len == strlen("imatrix.datasets") && !memcmp(key, "imatrix.datasets", len);
        if (ok && want && type == G_ARR && fread(&et, 4, 1, fp) == 1 && et == G_STR && read_u64(fp, &n) && n > 0 &&
            read_u64(fp, &len) && len < (1u << 20)) {
            found = calloc(len + 1, 1);
            if (found && fread(found, 1, len, fp) != len) {
                free(found);
                found = NULL;
            }
            break;
        }
        ok = ok && !want && skip_value(fp, type);
    }
    if (fp) fclose(fp);
    return found;
}

static int has_key(const ds_gguf *g, const char *key) {
    for (size_t i = 0; i < ds_gguf_n_kv(g); i++) {
        if (strcmp(ds_gguf_kv_key(g, i), key) == 0) return 1;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* sums / count per expert; columns of an expert that was never used get 1 */
static int gguf_entry(const ds_gguf *g, const ds_gguf_tensor_info *sums, imatrix *im, const char *path, char *err,
                      size_t es) {
    size_t base = strlen(sums->name) - strlen(".in_sum2");
    ds_gguf_tensor_info counts = {0}, t;
    for (size_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        ds_gguf_tensor(g, i, &t);
        if (strlen(t.name) == base + 7 && !strncmp(t.name, sums->name, base) && !strcmp(t.name + base, ".counts"))
            counts = t;
    }
    if (!counts.name) return tool_fail(err, es, "%s: %.*s has sums but no counts", path, (int)base, sums->name);
    if (sums->type != DS_TYPE_F32 || counts.type != DS_TYPE_F32)
        return tool_fail(err, es, "%s: sums and counts of %.*s must be F32", path, (int)base, sums->name);
    size_t nval = sums->size / 4, ncounts = counts.size / 4, ne0 = nval / ncounts;
    imatrix_entry *e = add_entry(im, sums->name, base, nval);
    if (!e) return tool_fail(err, es, "out of memory");
    const float *s = sums->data, *c = counts.data;
    for (size_t j = 0; j < ncounts; j++) {
        float cnt = isfinite(c[j]) && fabsf(c[j]) < 9e18f ? (float)llroundf(c[j]) : 0.0f;
        for (size_t k = 0; k < ne0; k++) e->v[j * ne0 + k] = cnt > 0.0f ? s[j * ne0 + k] / cnt : 1.0f;
    }
    return 0;
}

/* Whether the .counts tensor `name` has its .in_sum2 twin. */
static int imatrix_sums_named(const ds_gguf *g, const char *name) {
    size_t base = strlen(name) - strlen(".counts");
    ds_gguf_tensor_info t;
    for (size_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        ds_gguf_tensor(g, i, &t);
        if (strlen(t.name) == base + 8 && !strncmp(t.name, name, base) && !strcmp(t.name + base, ".in_sum2")) return 1;
    }
    return 0;
}

static int load_gguf(const char *path, imatrix *im, char *err, size_t es) {
    ds_gguf *g;
    int64_t chunks = 0;
    if (ds_gguf_open(path, &g, err, es) != DS_OK) return -1;
    int rc = 0;
    if (ds_gguf_n_tensors(g) < 1) rc = tool_fail(err, es, "%s: no importance data in the file", path);
    else if (!has_key(g, "imatrix.datasets") || !has_key(g, "imatrix.chunk_count") || !has_key(g, "imatrix.chunk_size"))
        rc = tool_fail(err, es, "%s: imatrix.datasets, .chunk_count or .chunk_size is missing", path);
    for (size_t i = 0; rc == 0 && i < ds_gguf_n_tensors(g); i++) {
        ds_gguf_tensor_info t;
        ds_gguf_tensor(g, i, &t);
        if (ends_with(t.name, ".in_sum2")) rc = gguf_entry(g, &t, im, path, err, es);
        else if (ends_with(t.name, ".counts") && !imatrix_sums_named(g, t.name))
            rc = tool_fail(err, es, "%s: %s has no sums", path, t.name);
    }
    if (rc == 0 && ds_gguf_get_int(g, "imatrix.chunk_count", &chunks)) im->chunks = chunks;
    ds_gguf_close(g);
    if (rc == 0) im->dataset = first_dataset(path);
    return rc;
}

/* ================================================================== both */

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const imatrix_entry *)a)->name, ((const imatrix_entry *)b)->name);
}

/* Sorted for lookups; a name twice (only a legacy file can say that) is refused rather than
   guessing which one was meant; non-finite values are refused as llama.cpp refuses them. */
static int finish(imatrix *im, const char *path, char *err, size_t es) {
    qsort(im->e, im->n, sizeof *im->e, cmp_entry);
    for (size_t i = 0; i < im->n; i++) {
        if (i && strcmp(im->e[i - 1].name, im->e[i].name) == 0)
            return tool_fail(err, es, "%s: %s appears twice", path, im->e[i].name);
        for (size_t j = 0; j < im->e[i].n; j++) {
            if (!isfinite(im->e[i].v[j]))
                return tool_fail(err, es, "%s: %s has a non-finite value", path, im->e[i].name);
        }
    }
    return 0;
}

int imatrix_load(const char *path, imatrix *im, char *err, size_t err_size) {
    char magic[4] = {0};
    FILE *fp = fopen(path, "rb");
    memset(im, 0, sizeof *im);
    if (!fp) return tool_fail(err, err_size, "%s: cannot open: %s", path, strerror(errno));
    size_t got = fread(magic, 1, 4, fp);
    fclose(fp);
    int rc = got == 4 && memcmp(magic, "GGUF", 4) == 0 ? load_gguf(path, im, err, err_size)
                                                       : load_legacy(path, im, err, err_size);
    if (rc == 0) rc = finish(im, path, err, err_size);
    if (rc != 0) imatrix_free(im);
    return rc;
}

const imatrix_entry *imatrix_find(const imatrix *im, const char *name) {
    imatrix_entry key = {(char *)name, NULL, 0};
    return im->n ? bsearch(&key, im->e, im->n, sizeof key, cmp_entry) : NULL;
}

void imatrix_free(imatrix *im) {
    for (size_t i = 0; i < im->n; i++) {
        free(im->e[i].name);
        free(im->e[i].v);
    }
    free(im->e);
    free(im->dataset);
    memset(im, 0, sizeof *im);
}
