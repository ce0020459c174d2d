/* gguf_check - what tests/quantize.sh asks of GGUF files, through the library's reading API.

     gguf_check same A.gguf B.gguf          every tensor equal: order, name, type, shape, bytes
     gguf_check types F.gguf REGEX=TYPE...  each tensor matching a REGEX (first match) has TYPE,
                                            and every REGEX matches some tensor
     gguf_check kv F.gguf KEY VALUE         an integer metadata value
     gguf_check dump F.gguf                 every key (with its value when an integer or a
                                            string) and every tensor (type, shape), one a line,
                                            for a script to grep
     gguf_check imatrix F.gguf OUT.gguf OUT.dat
                                            an importance matrix for F's weights, in llama.cpp's
                                            GGUF and legacy forms, with the same values once read
     gguf_check split F.gguf PREFIX N       F as N parts named as llama.cpp's gguf-split names
                                            them (PREFIX-00001-of-0000N.gguf, ...): metadata in
                                            the first, split.* keys in each, tensors shared out

   Exit status 0 when the check holds, 1 with one line saying why when not, 2 on bad usage. */
#include "deepseek.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A GGUF writer; NULL only when out of memory. */
static ds_gguf_writer *new_writer(void) {
    ds_gguf_writer *w = NULL;
    return ds_gguf_writer_new(&w, NULL, 0) == DS_OK ? w : NULL;
}

static int open_or_die(const char *path, ds_gguf **g) {
    char err[256];
    if (ds_gguf_open(path, g, err, sizeof err) == DS_OK) return 0;
    fprintf(stderr, "gguf_check: %s\n", err);
    return 1;
}

static int same_tensor(const ds_gguf_tensor_info *a, const ds_gguf_tensor_info *b, size_t i) {
    const char *why = NULL;
    if (strcmp(a->name, b->name) != 0) why = "name";
    else if (a->type != b->type) why = "type";
    else if (a->n_dims != b->n_dims || memcmp(a->ne, b->ne, sizeof a->ne) != 0) why = "shape";
    else if (a->size != b->size || memcmp(a->data, b->data, a->size) != 0) why = "bytes";
    if (!why) return 0;
    fprintf(stderr, "gguf_check: tensor %zu differs in %s: %s %s / %s %s\n", i, why, a->name, ds_type_name(a->type),
            b->name, ds_type_name(b->type));
    return 1;
}

static int cmd_same(const char *pa, const char *pb) {
    ds_gguf *a = NULL, *b = NULL;
    int bad = open_or_die(pa, &a) || open_or_die(pb, &b);
    if (!bad && ds_gguf_n_tensors(a) != ds_gguf_n_tensors(b)) {
        fprintf(stderr, "gguf_check: %zu tensors / %zu tensors\n", ds_gguf_n_tensors(a), ds_gguf_n_tensors(b));
        bad = 1;
    }
    for (size_t i = 0; !bad && i < ds_gguf_n_tensors(a); i++) {
        ds_gguf_tensor_info x, y;
        ds_gguf_tensor(a, i, &x);
        ds_gguf_tensor(b, i, &y);
        bad = same_tensor(&x, &y, i);
    }
    if (!bad) printf("%zu tensors identical\n", ds_gguf_n_tensors(a));
    ds_gguf_close(a);
    ds_gguf_close(b);
    return bad;
}

typedef struct {
    regex_t re;
    const char *spec;
    ds_type type;
    int used;
} rule;

static int parse_rule(const char *spec, rule *r) {
    const char *eq = strrchr(spec, '=');
    char re[256];
    r->spec = spec;
    r->type = DS_TYPE_COUNT;
    for (int t = 0; eq && t < DS_TYPE_COUNT; t++) {
        if (ds_type_name((ds_type)t) && strcasecmp(ds_type_name((ds_type)t), eq + 1) == 0) r->type = (ds_type)t;
    }
    if (!eq || r->type == DS_TYPE_COUNT || (size_t)(eq - spec) >= sizeof re) return 1;
    snprintf(re, sizeof re, "%.*s", (int)(eq - spec), spec);
    return regcomp(&r->re, re, REG_EXTENDED | REG_NOSUB) != 0;
}

static int check_types(ds_gguf *g, rule *rules, int n) {
    int bad = 0;
    for (size_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        ds_gguf_tensor_info t;
        ds_gguf_tensor(g, i, &t);
        for (int k = 0; k < n; k++) {
            if (regexec(&rules[k].re, t.name, 0, NULL, 0) != 0) continue;
            rules[k].used = 1;
            if (t.type != rules[k].type) {
                fprintf(stderr, "gguf_check: %s is %s, expected %s (%s)\n", t.name, ds_type_name(t.type),
                        ds_type_name(rules[k].type), rules[k].spec);
                bad = 1;
            }
            break;
        }
    }
    for (int k = 0; k < n; k++) {
        if (!rules[k].used) {
            fprintf(stderr, "gguf_check: no tensor matches %s\n", rules[k].spec);
            bad = 1;
        }
    }
    return bad;
}

static int cmd_types(const char *path, char **specs, int n) {
    ds_gguf *g = NULL;
    rule *rules = calloc((size_t)n + 1, sizeof *rules);
    int bad = !rules || open_or_die(path, &g), k = 0;
    for (; !bad && k < n; k++) {
        if (parse_rule(specs[k], &rules[k]) != 0) {
            fprintf(stderr, "gguf_check: bad rule %s\n", specs[k]);
            bad = 1;
            break;
        }
    }
    if (!bad) bad = check_types(g, rules, n);
    for (int i = 0; i < k; i++) regfree(&rules[i].re);
    free(rules);
    ds_gguf_close(g);
    return bad;
}

static int cmd_kv(const char *path, const char *key, const char *value) {
    ds_gguf *g = NULL;
    int64_t v = 0;
    if (open_or_die(path, &g)) return 1;
    int ok = ds_gguf_get_int(g, key, &v) && v == strtoll(value, NULL, 10);
    if (!ok) fprintf(stderr, "gguf_check: %s is %lld, expected %s\n", key, (long long)v, value);
    ds_gguf_close(g);
    return !ok;
}

/* "KEY = VALUE" (integers and strings; other types show their key alone), then
   "NAME TYPE NE0xNE1..." per tensor. */
static int cmd_dump(const char *path) {
    ds_gguf *g = NULL;
    if (open_or_die(path, &g)) return 1;
    for (size_t i = 0; i < ds_gguf_n_kv(g); i++) {
        const char *k = ds_gguf_kv_key(g, i), *v;
        size_t len = 0;
        int64_t n;
        if ((v = ds_gguf_get_str(g, k, &len))) printf("%s = %.*s\n", k, (int)len, v);
        else if (ds_gguf_get_int(g, k, &n)) printf("%s = %lld\n", k, (long long)n);
        else printf("%s\n", k);
    }
    for (size_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        ds_gguf_tensor_info t;
        ds_gguf_tensor(g, i, &t);
        printf("%s %s %lld", t.name, ds_type_name(t.type), (long long)t.ne[0]);
        for (int d = 1; d < t.n_dims; d++) printf("x%lld", (long long)t.ne[d]);
        putchar('\n');
    }
    ds_gguf_close(g);
    return 0;
}

/* ---- importance matrices ---- */

/* Positive values with a few distinct magnitudes, from a fixed sequence. */
static float im_value(uint32_t *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) % 1000 + 1) / 64.0f;
}

static int weight_like(const ds_gguf_tensor_info *t) {
    size_t n = strlen(t->name);
    return t->n_dims >= 2 && n > 7 && strcmp(t->name + n - 7, ".weight") == 0 && !strstr(t->name, "_norm.") &&
           !strstr(t->name, "ffn_gate_inp");
}

/* Per tensor ne0 * ne2 values (one row of ne0 per expert). The GGUF form stores sums = 4 v with
   counts 4, the legacy form v * 4 with 4 calls: both read back as exactly v. */
static void write_dat(FILE *fp, const char *name, const float *v, int32_t n) {
    int32_t len = (int32_t)strlen(name), ncall = 4;
    fwrite(&len, 4, 1, fp);
    fwrite(name, 1, (size_t)len, fp);
    fwrite(&ncall, 4, 1, fp);
    fwrite(&n, 4, 1, fp);
    fwrite(v, 4, (size_t)n, fp);
}

static int cmd_imatrix(const char *path, const char *out_gguf, const char *out_dat) {
    ds_gguf *g = NULL;
    char err[256];
    if (open_or_die(path, &g)) return 1;
    ds_gguf_writer *w = new_writer();
    FILE *dat = fopen(out_dat, "wb");
    size_t n = ds_gguf_n_tensors(g), count = 0, total = 0;
    float **vals = calloc(n + 1, sizeof *vals);
    int bad = !w || !dat || !vals;
    const char *datasets[1] = {"gguf_check"};
    uint32_t state = 12345;
    for (size_t i = 0; !bad && i < n; i++) {
        ds_gguf_tensor_info t;
        ds_gguf_tensor(g, i, &t);
        if (!weight_like(&t)) continue;
        int64_t m = t.ne[0] * t.ne[2], one[1] = {t.ne[2]}, ne[1] = {m};
        char name[256];
        vals[i] = malloc((size_t)m * sizeof(float));
        bad = !vals[i];
        for (int64_t k = 0; !bad && k < m; k++) vals[i][k] = im_value(&state);
        snprintf(name, sizeof name, "%s.in_sum2", t.name);
        ds_gguf_add_tensor(w, name, DS_TYPE_F32, 1, ne);
        snprintf(name, sizeof name, "%s.counts", t.name);
        ds_gguf_add_tensor(w, name, DS_TYPE_F32, 1, one);
        count++;
    }
    int32_t n_entries = (int32_t)count;
    if (!bad) fwrite(&n_entries, 4, 1, dat);
    ds_gguf_set_str(w, "general.type", "imatrix");
    ds_gguf_set_arr_str(w, "imatrix.datasets", datasets, 1);
    ds_gguf_set_u32(w, "imatrix.chunk_count", 4);
    ds_gguf_set_u32(w, "imatrix.chunk_size", 512);
    bad = bad || ds_gguf_writer_begin(w, out_gguf, err, sizeof err) != DS_OK;
    for (size_t i = 0; !bad && i < n; i++) {
        ds_gguf_tensor_info t;
        ds_gguf_tensor(g, i, &t);
        if (!vals[i]) continue;
        int64_t m = t.ne[0] * t.ne[2];
        float *sums = malloc((size_t)m * sizeof(float)), *counts = malloc((size_t)t.ne[2] * 4);
        for (int64_t k = 0; sums && k < m; k++) sums[k] = vals[i][k] * 4.0f;
        for (int64_t k = 0; counts && k < t.ne[2]; k++) counts[k] = 4.0f;
        bad = !sums || !counts || ds_gguf_writer_write(w, sums, (size_t)m * 4, err, sizeof err) != DS_OK ||
              ds_gguf_writer_write(w, counts, (size_t)t.ne[2] * 4, err, sizeof err) != DS_OK;
        if (!bad) write_dat(dat, t.name, sums, (int32_t)m); /* the .dat holds v * calls */
        total += (size_t)m;
        free(sums);
        free(counts);
    }
    bad = bad || ds_gguf_writer_finish(w, err, sizeof err) != DS_OK;
    if (bad) fprintf(stderr, "gguf_check: writing the importance matrix failed: %s\n", err);
    else printf("%zu entries, %zu values\n", count, total);
    for (size_t i = 0; vals && i < n; i++) free(vals[i]);
    free(vals);
    if (dat && fclose(dat) != 0) bad = 1;
    ds_gguf_writer_free(w);
    ds_gguf_close(g);
    return bad;
}

/* Part i of n: tensors [i * per, (i + 1) * per). gguf-split writes split.no and split.count as
   u16; the writer here has no u16, and the reader takes any integer type. */
static int write_part(const ds_gguf *g, const char *prefix, int i, int n, size_t per) {
    char path[4096], err[256];
    size_t nt = ds_gguf_n_tensors(g), lo = (size_t)i * per, hi = lo + per < nt ? lo + per : nt;
    ds_gguf_writer *w = new_writer();
    ds_gguf_tensor_info t;
    snprintf(path, sizeof path, "%s-%05d-of-%05d.gguf", prefix, i + 1, n);
    for (size_t k = 0; w && i == 0 && k < ds_gguf_n_kv(g); k++) ds_gguf_copy_kv(w, g, k);
    ds_gguf_set_u32(w, "split.no", (uint32_t)i);
    ds_gguf_set_u32(w, "split.count", (uint32_t)n);
    ds_gguf_set_i32(w, "split.tensors.count", (int32_t)nt);
    for (size_t k = lo; k < hi; k++) {
        ds_gguf_tensor(g, k, &t);
        ds_gguf_add_tensor(w, t.name, t.type, t.n_dims, t.ne);
    }
    int bad = !w || ds_gguf_writer_begin(w, path, err, sizeof err) != DS_OK;
    for (size_t k = lo; !bad && k < hi; k++) {
        ds_gguf_tensor(g, k, &t);
        bad = ds_gguf_writer_write(w, t.data, t.size, err, sizeof err) != DS_OK;
    }
    bad = bad || ds_gguf_writer_finish(w, err, sizeof err) != DS_OK;
    if (bad) fprintf(stderr, "gguf_check: writing %s failed: %s\n", path, err);
    ds_gguf_writer_free(w);
    return bad;
}

static int cmd_split(const char *path, const char *prefix, const char *count) {
    ds_gguf *g = NULL;
    int n = atoi(count), bad = n < 2 || n > 99 || open_or_die(path, &g);
    size_t per = bad ? 0 : (ds_gguf_n_tensors(g) + (size_t)n - 1) / (size_t)n;
    for (int i = 0; !bad && i < n; i++) bad = write_part(g, prefix, i, n, per);
    if (!bad) printf("%d parts\n", n);
    ds_gguf_close(g);
    return bad;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "same") == 0) return cmd_same(argv[2], argv[3]);
    if (argc >= 4 && strcmp(argv[1], "types") == 0) return cmd_types(argv[2], argv + 3, argc - 3);
    if (argc == 5 && strcmp(argv[1], "kv") == 0) return cmd_kv(argv[2], argv[3], argv[4]);
    if (argc == 3 && strcmp(argv[1], "dump") == 0) return cmd_dump(argv[2]);
    if (argc == 5 && strcmp(argv[1], "imatrix") == 0) return cmd_imatrix(argv[2], argv[3], argv[4]);
    if (argc == 5 && strcmp(argv[1], "split") == 0) return cmd_split(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: gguf_check same A B | types F REGEX=TYPE... | kv F KEY VALUE | dump F | "
                    "imatrix F OUT.gguf OUT.dat | split F PREFIX N\n");
    return 2;
}
