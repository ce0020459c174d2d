/* safetensors.c - see safetensors.h. Format: 8-byte little-endian header length N, N bytes of
   JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data
   section; offsets are relative to the data section. */
/* strdup, O_CLOEXEC, madvise, stat: POSIX and GNU, not C11 (meson passes this too). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "errmsg.h"
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c copies little-endian F32 data with memcpy"
#endif

/* The format's own limit; it also bounds the copy made for cJSON. */
#define MAX_HEADER_BYTES (100u << 20)
/* Integers above this are not exact in cJSON's double. */
#define MAX_JSON_INT 9007199254740992.0
#define MAX_INDEX_BYTES (256u << 20)

struct safetensors_file {
    char *path;
    unsigned char *map;
    size_t map_size;
    safetensors_tensor *tensors; /* data order */
    size_t n;
    const safetensors_tensor **by_name;
};

struct safetensors_dir {
    safetensors_file **files;
    size_t n_files;
    const safetensors_tensor **all; /* file by file */
    size_t n_all;
    const safetensors_tensor **by_name;
};

static const struct {
    const char *name;
    size_t size;
} DTYPES[SAFETENSORS_DTYPE_COUNT] = {
    [SAFETENSORS_F64] = {"F64", 8},   [SAFETENSORS_F32] = {"F32", 4},         [SAFETENSORS_F16] = {"F16", 2},
    [SAFETENSORS_BF16] = {"BF16", 2}, [SAFETENSORS_F8_E4M3] = {"F8_E4M3", 1}, [SAFETENSORS_I64] = {"I64", 8},
    [SAFETENSORS_I32] = {"I32", 4},   [SAFETENSORS_I16] = {"I16", 2},         [SAFETENSORS_I8] = {"I8", 1},
    [SAFETENSORS_U8] = {"U8", 1},     [SAFETENSORS_BOOL] = {"BOOL", 1},       [SAFETENSORS_U16] = {"U16", 2},
    [SAFETENSORS_U32] = {"U32", 4},   [SAFETENSORS_U64] = {"U64", 8},         [SAFETENSORS_F8_E5M2] = {"F8_E5M2", 1},
    [SAFETENSORS_F8_E8M0] = {"F8_E8M0", 1},
};

const char *safetensors_dtype_name(safetensors_dtype t) {
    return (unsigned)t < SAFETENSORS_DTYPE_COUNT ? DTYPES[t].name : NULL;
}

size_t safetensors_dtype_size(safetensors_dtype t) {
    return (unsigned)t < SAFETENSORS_DTYPE_COUNT ? DTYPES[t].size : 0;
}

static int dtype_from_name(const char *s, safetensors_dtype *out) {
    for (int i = 0; i < SAFETENSORS_DTYPE_COUNT; i++) {
        if (strcmp(s, DTYPES[i].name) == 0) {
            *out = (safetensors_dtype)i;
            return 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ header parsing */

static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0.0 && d <= MAX_JSON_INT) || (double)(uint64_t)d != d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_shape(const safetensors_file *f, const char *name, const cJSON *shape, safetensors_tensor *t,
                       char *err, size_t es) {
    if (!cJSON_IsArray(shape))
        return tool_fail(err, es, "%s: tensor '%s': shape missing or not an array", f->path, name);
    int n = cJSON_GetArraySize(shape);
    if (n > SAFETENSORS_MAX_DIMS)
        return tool_fail(err, es, "%s: tensor '%s': %d dimensions, at most %d supported", f->path, name, n,
                         SAFETENSORS_MAX_DIMS);
    int64_t count = 1;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (json_uint(d, &v) != 0)
            return tool_fail(err, es, "%s: tensor '%s': shape[%d] is not a non-negative integer", f->path, name, i);
        if (v != 0 && (uint64_t)count > (uint64_t)INT64_MAX / v)
            return tool_fail(err, es, "%s: tensor '%s': element count overflows", f->path, name);
        count *= (int64_t)v;
        t->shape[i++] = (int64_t)v;
    }
    t->n_dims = n;
    t->n_elements = count;
    return 0;
}

static int parse_range(const safetensors_file *f, const char *name, const cJSON *offs, uint64_t data_start,
                       safetensors_tensor *t, char *err, size_t es) {
    uint64_t b, e;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || json_uint(cJSON_GetArrayItem(offs, 0), &b) != 0 ||
        json_uint(cJSON_GetArrayItem(offs, 1), &e) != 0)
        return tool_fail(err, es, "%s: tensor '%s': data_offsets must be two non-negative integers", f->path, name);
    uint64_t data_size = f->map_size - data_start;
    if (b > e || e > data_size)
        return tool_fail(err, es,
                         "%s: tensor '%s': data_offsets [%llu, %llu] outside the data section "
                         "(%llu bytes at offset %llu)",
                         f->path, name, (unsigned long long)b, (unsigned long long)e, (unsigned long long)data_size,
                         (unsigned long long)data_start);
    uint64_t need = (uint64_t)t->n_elements;
    size_t es_ = DTYPES[t->dtype].size;
    if (need > (e - b) / es_ || need * es_ != e - b)
        return tool_fail(err, es,
                         "%s: tensor '%s' at offset %llu: %llu bytes, but %lld elements of %s need "
                         "%llu",
                         f->path, name, (unsigned long long)(data_start + b), (unsigned long long)(e - b),
                         (long long)t->n_elements, DTYPES[t->dtype].name,
                         need > UINT64_MAX / es_ ? (unsigned long long)UINT64_MAX : (unsigned long long)(need * es_));
    t->file_offset = data_start + b;
    t->n_bytes = (size_t)(e - b);
    t->data = f->map + data_start + b;
    return 0;
}

static int parse_entry(safetensors_file *f, const cJSON *e, uint64_t data_start, safetensors_tensor *t, char *err,
                       size_t es) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return tool_fail(err, es, "%s: header entry '%s' is not an object", f->path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt) || dtype_from_name(dt->valuestring, &t->dtype) != 0)
        return tool_fail(err, es, "%s: tensor '%s': unknown or missing dtype%s%s", f->path, name,
                         cJSON_IsString(dt) ? " " : "", cJSON_IsString(dt) ? dt->valuestring : "");
    if (parse_shape(f, name, cJSON_GetObjectItemCaseSensitive(e, "shape"), t, err, es) != 0) return -1;
    if (parse_range(f, name, cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), data_start, t, err, es) != 0)
        return -1;
    t->path = f->path;
    t->name = strdup(name);
    if (!t->name) return tool_fail(err, es, "%s: out of memory", f->path);
    return 0;
}

static int cmp_offset(const void *a, const void *b) {
    const safetensors_tensor *x = a, *y = b;
    if (x->file_offset != y->file_offset) return x->file_offset < y->file_offset ? -1 : 1;
    return x->n_bytes < y->n_bytes ? -1 : x->n_bytes > y->n_bytes;
}

static int cmp_name(const void *a, const void *b) {
    const safetensors_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int check_overlap(const safetensors_file *f, char *err, size_t es) {
    for (size_t i = 1; i < f->n; i++) {
        const safetensors_tensor *p = &f->tensors[i - 1], *t = &f->tensors[i];
        if (t->file_offset < p->file_offset + p->n_bytes)
            return tool_fail(err, es, "%s: tensors '%s' and '%s' overlap at offset %llu", f->path, p->name, t->name,
                             (unsigned long long)t->file_offset);
    }
    return 0;
}

/* by_name must be sorted; equal neighbours are duplicates. */
static int check_duplicates(const safetensors_tensor **by_name, size_t n, char *err, size_t es) {
    for (size_t i = 1; i < n; i++) {
        if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0)
            return tool_fail(err, es, "tensor '%s' appears twice (%s, %s)", by_name[i]->name, by_name[i - 1]->path,
                             by_name[i]->path);
    }
    return 0;
}

static int build_index(safetensors_file *f, char *err, size_t es) {
    qsort(f->tensors, f->n, sizeof *f->tensors, cmp_offset);
    if (check_overlap(f, err, es) != 0) return -1;
    f->by_name = malloc((f->n ? f->n : 1) * sizeof *f->by_name);
    if (!f->by_name) return tool_fail(err, es, "%s: out of memory", f->path);
    for (size_t i = 0; i < f->n; i++) f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, f->n, sizeof *f->by_name, cmp_name);
    return check_duplicates(f->by_name, f->n, err, es);
}

static int parse_entries(safetensors_file *f, const cJSON *root, uint64_t data_start, char *err, size_t es) {
    size_t cap = (size_t)cJSON_GetArraySize(root);
    f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
    if (!f->tensors) return tool_fail(err, es, "%s: out of memory", f->path);
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (e->string && strcmp(e->string, "__metadata__") == 0) continue;
        if (!e->string) return tool_fail(err, es, "%s: header entry without a name", f->path);
        if (parse_entry(f, e, data_start, &f->tensors[f->n], err, es) != 0) return -1;
        f->n++;
    }
    return build_index(f, err, es);
}

static int only_spaces(const char *p, const char *end) {
    for (; p < end; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p != '\0') return 0;
    }
    return 1;
}

static int parse_header(safetensors_file *f, char *err, size_t es) {
    if (f->map_size < 8)
        return tool_fail(err, es, "%s: %zu bytes, too short for a safetensors file", f->path, f->map_size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->map[i];
    if (hlen > f->map_size - 8 || hlen > MAX_HEADER_BYTES)
        return tool_fail(err, es, "%s: header length %llu at offset 0 exceeds the file (%zu bytes)%s", f->path,
                         (unsigned long long)hlen, f->map_size, hlen > MAX_HEADER_BYTES ? " or the 100 MB limit" : "");
    /* cJSON wants a terminated string; the mapping has none. */
    char *text = malloc((size_t)hlen + 1);
    if (!text) return tool_fail(err, es, "%s: out of memory", f->path);
    memcpy(text, f->map + 8, (size_t)hlen);
    text[hlen] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &end, 0);
    int rc;
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= text && at <= text + hlen ? (size_t)(at - text) + 8 : 8;
        rc = tool_fail(err, es, "%s: header is not valid JSON (near byte offset %zu)", f->path, off);
    } else if (!cJSON_IsObject(root)) {
        rc = tool_fail(err, es, "%s: header at offset 8 is not a JSON object", f->path);
    } else if (!only_spaces(end, text + hlen)) {
        rc = tool_fail(err, es, "%s: trailing bytes after the header JSON at offset %zu", f->path,
                       (size_t)(end - text) + 8);
    } else {
        rc = parse_entries(f, root, 8 + hlen, err, es);
    }
    cJSON_Delete(root);
    free(text);
    return rc;
}

static int map_file(safetensors_file *f, char *err, size_t es) {
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tool_fail(err, es, "%s: cannot open: %s", f->path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = tool_fail(err, es, "%s: cannot stat: %s", f->path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = tool_fail(err, es, "%s: not a regular file", f->path);
    } else if (st.st_size < 8) {
        rc = tool_fail(err, es, "%s: %lld bytes, too short for a safetensors file", f->path, (long long)st.st_size);
    } else if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = tool_fail(err, es, "%s: too large to map", f->path);
    } else {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            rc = tool_fail(err, es, "%s: cannot map: %s", f->path, strerror(errno));
        } else {
            f->map = p;
            f->map_size = (size_t)st.st_size;
        }
    }
    close(fd);
    return rc;
}

int safetensors_open(const char *path, safetensors_file **out, char *err, size_t err_size) {
    *out = NULL;
    safetensors_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return tool_fail(err, err_size, "%s: out of memory", path);
    }
    if (map_file(f, err, err_size) != 0 || parse_header(f, err, err_size) != 0) {
        safetensors_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

void safetensors_close(safetensors_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free((char *)f->tensors[i].name);
    free(f->tensors);
    free(f->by_name);
    if (f->map) munmap(f->map, f->map_size);
    free(f->path);
    free(f);
}

const char *safetensors_path(const safetensors_file *f) { return f->path; }

size_t safetensors_count(const safetensors_file *f) { return f->n; }

const safetensors_tensor *safetensors_at(const safetensors_file *f, size_t i) {
    return i < f->n ? &f->tensors[i] : NULL;
}

static const safetensors_tensor *find_sorted(const safetensors_tensor *const *by_name, size_t n, const char *name) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(by_name[mid]->name, name);
        if (c == 0) return by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const safetensors_tensor *safetensors_find(const safetensors_file *f, const char *name) {
    return find_sorted(f->by_name, f->n, name);
}

void safetensors_release(const safetensors_tensor *t) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || t->n_bytes == 0) return;
    uintptr_t a = (uintptr_t)t->data, b = a + t->n_bytes, p = (uintptr_t)page;
    uintptr_t lo = (a + p - 1) / p * p, hi = b / p * p; /* pages no neighbour shares */
    if (lo < hi) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* ------------------------------------------------------------------ checkpoint folders */

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    while (a > 1 && dir[a - 1] == '/') a--;
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

static int read_text(const char *path, char **out, char *err, size_t es) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return tool_fail(err, es, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 65536 * 2;
            char *nb = ncap > MAX_INDEX_BYTES + 65536 * 2 ? NULL : realloc(buf, ncap);
            if (!nb) {
                rc = tool_fail(err, es, "%s: too large or out of memory", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, 65536, fp);
        len += got;
        if (got < 65536) {
            if (ferror(fp)) rc = tool_fail(err, es, "%s: read error", path);
            break;
        }
    }
    fclose(fp);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static void free_strs(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static int add_file(safetensors_dir *d, const char *dir, const char *name, char *err, size_t es) {
    char *path = join_path(dir, name);
    if (!path) return tool_fail(err, es, "%s: out of memory", dir);
    safetensors_file *f;
    int rc = safetensors_open(path, &f, err, es);
    free(path);
    if (rc != 0) return -1;
    d->files[d->n_files++] = f;
    return 0;
}

static int open_names(safetensors_dir *d, const char *dir, char **names, size_t n, char *err, size_t es) {
    d->files = calloc(n ? n : 1, sizeof *d->files);
    if (!d->files) return tool_fail(err, es, "%s: out of memory", dir);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(names[i - 1], names[i]) == 0) continue;
        if (add_file(d, dir, names[i], err, es) != 0) return -1;
    }
    return 0;
}

/* weight_map's values are the shards; its keys must be in the shard they name. */
static int shard_names(const char *ipath, const cJSON *wm, char ***out, size_t *n, char *err, size_t es) {
    size_t cap = (size_t)cJSON_GetArraySize(wm);
    char **names = calloc(cap ? cap : 1, sizeof *names);
    if (!names) return tool_fail(err, es, "%s: out of memory", ipath);
    size_t k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !(names[k] = strdup(e->valuestring))) {
            free_strs(names, k);
            return tool_fail(err, es, "%s: weight_map entry '%s' is not a file name", ipath,
                             e->string ? e->string : "?");
        }
        k++;
    }
    qsort(names, k, sizeof *names, cmp_str);
    *out = names;
    *n = k;
    return 0;
}

static const safetensors_file *file_named(const safetensors_dir *d, const char *path) {
    for (size_t i = 0; i < d->n_files; i++) {
        if (strcmp(d->files[i]->path, path) == 0) return d->files[i];
    }
    return NULL;
}

static int check_weight_map(const safetensors_dir *d, const char *dir, const char *ipath, const cJSON *wm, char *err,
                            size_t es) {
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        char *path = join_path(dir, e->valuestring);
        const safetensors_file *f = path ? file_named(d, path) : NULL;
        free(path);
        if (!f || !safetensors_find(f, e->string))
            return tool_fail(err, es, "%s: weight_map puts '%s' in %s, which does not hold it", ipath, e->string,
                             e->valuestring);
    }
    return 0;
}

static int open_index(safetensors_dir *d, const char *dir, const char *ipath, char *err, size_t es) {
    char *text;
    if (read_text(ipath, &text, err, es) != 0) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int rc;
    if (!root || !cJSON_IsObject(wm)) {
        rc = tool_fail(err, es, "%s: not JSON with a weight_map object", ipath);
    } else {
        char **names = NULL;
        size_t n = 0;
        rc = shard_names(ipath, wm, &names, &n, err, es);
        if (rc == 0) rc = open_names(d, dir, names, n, err, es);
        if (rc == 0) rc = check_weight_map(d, dir, ipath, wm, err, es);
        free_strs(names, n);
    }
    cJSON_Delete(root);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

static int open_listing(safetensors_dir *d, const char *dir, char *err, size_t es) {
    DIR *dp = opendir(dir);
    if (!dp) return tool_fail(err, es, "%s: cannot list: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    const struct dirent *de;
    while (rc == 0 && (de = readdir(dp)) != NULL) {
        if (!ends_with(de->d_name, ".safetensors")) continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn) {
                rc = tool_fail(err, es, "%s: out of memory", dir);
                break;
            }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name))) rc = tool_fail(err, es, "%s: out of memory", dir);
        else n++;
    }
    closedir(dp);
    if (rc == 0 && n == 0)
        rc = tool_fail(err, es, "%s: no model.safetensors.index.json, model.safetensors or *.safetensors", dir);
    if (rc == 0) {
        qsort(names, n, sizeof *names, cmp_str);
        rc = open_names(d, dir, names, n, err, es);
    }
    free_strs(names, n);
    return rc;
}

static int merge_tensors(safetensors_dir *d, const char *dir, char *err, size_t es) {
    size_t n = 0;
    for (size_t i = 0; i < d->n_files; i++) n += d->files[i]->n;
    d->all = malloc((n ? n : 1) * sizeof *d->all);
    d->by_name = malloc((n ? n : 1) * sizeof *d->by_name);
    if (!d->all || !d->by_name) return tool_fail(err, es, "%s: out of memory", dir);
    for (size_t i = 0; i < d->n_files; i++) {
        for (size_t j = 0; j < d->files[i]->n; j++) d->all[d->n_all++] = &d->files[i]->tensors[j];
    }
    memcpy(d->by_name, d->all, n * sizeof *d->all);
    qsort(d->by_name, n, sizeof *d->by_name, cmp_name);
    return check_duplicates(d->by_name, n, err, es);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int open_dir_files(safetensors_dir *d, const char *dir, char *err, size_t es) {
    char *index = join_path(dir, "model.safetensors.index.json");
    char *single = join_path(dir, "model.safetensors");
    int rc;
    if (!index || !single) {
        rc = tool_fail(err, es, "%s: out of memory", dir);
    } else if (file_exists(index)) {
        rc = open_index(d, dir, index, err, es);
    } else if (file_exists(single)) {
        char name[] = "model.safetensors";
        char *one[] = {name};
        rc = open_names(d, dir, one, 1, err, es);
    } else {
        rc = open_listing(d, dir, err, es);
    }
    free(index);
    free(single);
    return rc;
}

int safetensors_dir_open(const char *dir, safetensors_dir **out, char *err, size_t err_size) {
    *out = NULL;
    safetensors_dir *d = calloc(1, sizeof *d);
    if (!d) return tool_fail(err, err_size, "%s: out of memory", dir);
    if (open_dir_files(d, dir, err, err_size) != 0 || merge_tensors(d, dir, err, err_size) != 0) {
        safetensors_dir_close(d);
        return -1;
    }
    *out = d;
    return 0;
}

void safetensors_dir_close(safetensors_dir *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n_files; i++) safetensors_close(d->files[i]);
    free(d->files);
    free(d->all);
    free(d->by_name);
    free(d);
}

size_t safetensors_dir_n_files(const safetensors_dir *d) { return d->n_files; }

const safetensors_file *safetensors_dir_file(const safetensors_dir *d, size_t i) {
    return i < d->n_files ? d->files[i] : NULL;
}

size_t safetensors_dir_count(const safetensors_dir *d) { return d->n_all; }

const safetensors_tensor *safetensors_dir_at(const safetensors_dir *d, size_t i) {
    return i < d->n_all ? d->all[i] : NULL;
}

const safetensors_tensor *safetensors_dir_find(const safetensors_dir *d, const char *name) {
    return find_sorted(d->by_name, d->n_all, name);
}

/* ------------------------------------------------------------------ value conversion */

static uint64_t load_le(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
    return v;
}

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Built from bits rather than with ldexpf, so that this file needs no libm. */
static float half_to_f32(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 31, m = h & 1023;
    if (e == 0) {
        float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    if (e == 31) /* NaNs come out quiet, as F16C (and so ggml) converts them */
        return bits_to_f32(sign | 0x7f800000u | m << 13 | (m ? 0x400000u : 0));
    return bits_to_f32(sign | (e + 112) << 23 | m << 13);
}

/* e4m3fn: bias 7, no infinities, S.1111.111 is NaN, exponent 0 is subnormal m * 2^-9. */
static float e4m3fn_to_f32(uint32_t b) {
    uint32_t sign = (b & 0x80u) << 24, e = (b >> 3) & 15, m = b & 7;
    if (e == 15 && m == 7) return bits_to_f32(sign | 0x7fc00000u);
    if (e == 0) {
        float v = (float)m * 0x1p-9f;
        return sign ? -v : v;
    }
    return bits_to_f32(sign | (e + 120) << 23 | m << 20);
}

static double bits_to_f64(uint64_t u) {
    double f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static int64_t sign_extend(uint64_t v, size_t bytes) {
    if (bytes == 8) return (int64_t)v;
    uint64_t sign = (uint64_t)1 << (bytes * 8 - 1);
    return (int64_t)((v ^ sign) - sign);
}

static int is_signed_int(safetensors_dtype t) {
    return t == SAFETENSORS_I8 || t == SAFETENSORS_I16 || t == SAFETENSORS_I32 || t == SAFETENSORS_I64;
}

static int is_unsigned_int(safetensors_dtype t) {
    return t == SAFETENSORS_U8 || t == SAFETENSORS_U16 || t == SAFETENSORS_U32 || t == SAFETENSORS_U64 ||
           t == SAFETENSORS_BOOL;
}

static float element_f32(safetensors_dtype t, const unsigned char *p) {
    size_t sz = DTYPES[t].size;
    uint64_t v = load_le(p, sz);
    switch (t) {
    case SAFETENSORS_F64: return (float)bits_to_f64(v);
    case SAFETENSORS_F32: return bits_to_f32((uint32_t)v);
    case SAFETENSORS_F16: return half_to_f32((uint32_t)v);
    case SAFETENSORS_BF16: return bits_to_f32((uint32_t)v << 16);
    case SAFETENSORS_F8_E4M3: return e4m3fn_to_f32((uint32_t)v);
    case SAFETENSORS_F8_E5M2: return half_to_f32((uint32_t)v << 8);
    case SAFETENSORS_F8_E8M0: return bits_to_f32(v == 0xff ? 0x7fc00000u : v ? (uint32_t)v << 23 : 0x00400000u);
    case SAFETENSORS_BOOL: return v != 0;
    default: return is_signed_int(t) ? (float)sign_extend(v, sz) : (float)v;
    }
}

static int check_count(const safetensors_tensor *t, size_t n, char *err, size_t es) {
    if ((uint64_t)n != (uint64_t)t->n_elements)
        return tool_fail(err, es, "%s: tensor '%s': %lld elements, caller expects %zu", t->path, t->name,
                         (long long)t->n_elements, n);
    return 0;
}

static void read_f32_span(const safetensors_tensor *t, size_t first, float *dst, size_t n) {
    size_t sz = DTYPES[t->dtype].size;
    const unsigned char *p = (const unsigned char *)t->data + first * sz;
    if (t->dtype == SAFETENSORS_F32) {
        memcpy(dst, p, n * sizeof *dst);
    } else if (t->dtype == SAFETENSORS_BF16) {
        for (size_t i = 0; i < n; i++) dst[i] = bits_to_f32((uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16);
    } else {
        for (size_t i = 0; i < n; i++) dst[i] = element_f32(t->dtype, p + i * sz);
    }
}

int safetensors_read_f32(const safetensors_tensor *t, float *dst, size_t n, char *err, size_t err_size) {
    if (check_count(t, n, err, err_size) != 0) return -1;
    read_f32_span(t, 0, dst, n);
    return 0;
}

int safetensors_read_f32_at(const safetensors_tensor *t, size_t first, float *dst, size_t n, char *err,
                            size_t err_size) {
    if (first > (uint64_t)t->n_elements || n > (uint64_t)t->n_elements - first)
        return tool_fail(err, err_size, "%s: tensor '%s': elements [%zu, +%zu) outside its %lld", t->path, t->name,
                         first, n, (long long)t->n_elements);
    read_f32_span(t, first, dst, n);
    return 0;
}

int safetensors_read_i32(const safetensors_tensor *t, int32_t *dst, size_t n, char *err, size_t err_size) {
    if (check_count(t, n, err, err_size) != 0) return -1;
    if (!is_signed_int(t->dtype) && !is_unsigned_int(t->dtype))
        return tool_fail(err, err_size, "%s: tensor '%s' is %s, not an integer type", t->path, t->name,
                         DTYPES[t->dtype].name);
    size_t sz = DTYPES[t->dtype].size;
    const unsigned char *p = t->data;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = load_le(p + i * sz, sz);
        int64_t s;
        if (t->dtype == SAFETENSORS_BOOL) s = v != 0;
        else if (is_signed_int(t->dtype)) s = sign_extend(v, sz);
        else s = v > INT32_MAX ? (int64_t)INT32_MAX + 1 : (int64_t)v;
        if (s < INT32_MIN || s > INT32_MAX)
            return tool_fail(err, err_size,
                             "%s: tensor '%s': element %zu at offset %llu does not fit "
                             "int32",
                             t->path, t->name, i, (unsigned long long)(t->file_offset + i * sz));
        dst[i] = (int32_t)s;
    }
    return 0;
}
