/* A program built against the installed library, as a user's would be (tests/pkgconfig.sh):
   only deepseek.h and `pkg-config deepseek`. Loads MODEL, evaluates TEXT and prints the
   library's version and the most likely next token. */
#include <deepseek.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL TEXT\n", argv[0]);
        return 2;
    }
    char err[256];
    ds_model *m;
    if (ds_model_load(argv[1], &m, err, sizeof err) != DS_OK) {
        fprintf(stderr, "consumer: %s\n", err);
        return 1;
    }
    int32_t ids[256];
    int n;
    if (ds_tokenize(m, argv[2], strlen(argv[2]), ds_model_add_bos(m), ids, 256, &n, err, sizeof err) != DS_OK) {
        fprintf(stderr, "consumer: %s\n", err);
        ds_model_free(m);
        return 1;
    }
    ds_context_params p = ds_context_default_params();
    p.n_threads = 1;
    p.n_ctx = 64;
    ds_context *ctx;
    if (ds_context_new(m, &p, &ctx, err, sizeof err) != DS_OK) {
        fprintf(stderr, "consumer: %s\n", err);
        ds_model_free(m);
        return 1;
    }
    int rc = 1;
    if (ds_eval(ctx, ids, n, 0) != DS_OK) {
        fprintf(stderr, "consumer: %s\n", ds_context_error(ctx));
    } else {
        const float *logits = ds_logits(ctx, 0);
        int best = 0;
        for (int i = 1; i < ds_model_n_vocab(m); i++)
            if (logits[i] > logits[best]) best = i;
        size_t len = 0;
        const char *bytes = ds_token_bytes(m, best, &len);
        printf("version %s tokens %d argmax %d %.*s\n", ds_version(), n, best, (int)len, bytes ? bytes : "");
        rc = 0;
    }
    ds_context_free(ctx);
    ds_model_free(m);
    return rc;
}
