/* test_shards - a checkpoint split into shards converts to the same GGUF as the single file.

   usage: test_shards DEEPSEEK-CONVERT FIXTURE_DIR TOKENIZER_DIR

   The fixture's tensors are written round-robin into three shard files, then converted twice:
   with model.safetensors.index.json (the Hugging Face layout of every large checkpoint), and
   with no index (every *.safetensors in the folder). Both must equal the single-file result
   byte for byte. A weight_map naming the wrong shard must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "safetensors.h"

enum { N_SHARDS = 3 };

static const char *convert, *fixture, *tokenizer;
static char dir[256];

static const char *dtype_name(const safetensors_tensor *t) { return safetensors_dtype_name(t->dtype); }

/* Write the tensors whose index i satisfies i % N_SHARDS == shard. */
static void write_shard(const safetensors_file *f, int shard, const char *path) {
    size_t n = safetensors_count(f), hlen = 0, cap = 1 << 20, at = 0;
    char *h = malloc(cap);
    assert_non_null(h);
    hlen += (size_t)snprintf(h + hlen, cap - hlen, "{");
    for (size_t i = 0; i < n; i++) {
        if ((int)(i % N_SHARDS) != shard) continue;
        const safetensors_tensor *t = safetensors_at(f, i);
        hlen += (size_t)snprintf(h + hlen, cap - hlen, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", hlen > 1 ? "," : "",
                                 t->name, dtype_name(t));
        for (int d = 0; d < t->n_dims; d++)
            hlen += (size_t)snprintf(h + hlen, cap - hlen, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        hlen += (size_t)snprintf(h + hlen, cap - hlen, "],\"data_offsets\":[%zu,%zu]}", at, at + t->n_bytes);
        at += t->n_bytes;
    }
    hlen += (size_t)snprintf(h + hlen, cap - hlen, "}");
    assert_true(hlen < cap);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint64_t len = hlen;
    fwrite(&len, 8, 1, fp);
    fwrite(h, 1, hlen, fp);
    for (size_t i = 0; i < n; i++) {
        const safetensors_tensor *t = safetensors_at(f, i);
        if ((int)(i % N_SHARDS) == shard) fwrite(t->data, 1, t->n_bytes, fp);
    }
    assert_int_equal(fclose(fp), 0);
    free(h);
}

/* model.safetensors.index.json; with wrong != 0 the first tensor is put in the wrong shard. */
static void write_index(const safetensors_file *f, int wrong) {
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "{\"metadata\":{},\"weight_map\":{");
    for (size_t i = 0; i < safetensors_count(f); i++) {
        int shard = (int)(i % N_SHARDS) + (wrong && i == 0);
        fprintf(fp, "%s\"%s\":\"model-%05d-of-%05d.safetensors\"", i ? "," : "", safetensors_at(f, i)->name, shard + 1,
                N_SHARDS);
    }
    fprintf(fp, "}}\n");
    fclose(fp);
}

static int run_convert(const char *from, const char *out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' '%s' -o '%s' --name tiny --tokenizer '%s' 2>/dev/null", convert, from, out,
             tokenizer);
    return system(cmd);
}

static void shards_convert_like_one_file(void **state) {
    (void)state;
    char err[256], path[512], single[512], sharded[512], cfg[512];
    safetensors_file *f;
    snprintf(path, sizeof path, "%s/model.safetensors", fixture);
    assert_int_equal(safetensors_open(path, &f, err, sizeof err), 0);
    for (int s = 0; s < N_SHARDS; s++) {
        snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, s + 1, N_SHARDS);
        write_shard(f, s, path);
    }
    snprintf(cfg, sizeof cfg, "cp '%s/config.json' '%s/'", fixture, dir);
    assert_int_equal(system(cfg), 0);
    snprintf(single, sizeof single, "%s/single.gguf", dir);
    snprintf(sharded, sizeof sharded, "%s/sharded.gguf", dir);
    assert_int_equal(run_convert(fixture, single), 0);
    /* no index: every *.safetensors of the folder */
    assert_int_equal(run_convert(dir, sharded), 0);
    assert_same_file(single, sharded);
    /* with the index */
    write_index(f, 0);
    assert_int_equal(run_convert(dir, sharded), 0);
    assert_same_file(single, sharded);
    /* an index that lies about where a tensor is */
    write_index(f, 1);
    assert_int_not_equal(run_convert(dir, sharded), 0);
    safetensors_close(f);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_shards DEEPSEEK-CONVERT FIXTURE_DIR TOKENIZER_DIR\n");
        return 2;
    }
    convert = argv[1];
    fixture = argv[2];
    tokenizer = argv[3];
    snprintf(dir, sizeof dir, "test_shards.XXXXXX");
    if (!mkdtemp(dir)) return 2;
    const struct CMUnitTest tests[] = {cmocka_unit_test(shards_convert_like_one_file)};
    int rc = cmocka_run_group_tests_name("shards", tests, NULL, NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    return rc;
}
