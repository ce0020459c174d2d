/* deepseek - run a DeepSeek GGUF model from the command line.

   deepseek -m model.gguf --ids "0 1544 318" -n 32 --temp 0 --print-ids
   deepseek -m model.gguf --ids "0 1544 318" --dump-logits logits.f32 */
#include "deepseek.h"
#include "args.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *model, *ids, *dump, *prompt;
    int n_predict, n_threads, n_ctx;
    double temp;
    int print_ids, ignore_eos, verbose;
} cli_args;

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: deepseek -m MODEL.gguf --ids \"ID ID ...\" [options]\n"
            "\n"
            "  -m, --model FILE      GGUF model (architecture deepseek2)\n"
            "      --ids \"...\"       prompt as token ids, separated by spaces or commas\n"
            "  -p, --prompt TEXT     prompt as text (not available yet: needs the tokenizer; use --ids)\n"
            "  -n, --n-predict N     tokens to generate (default 0; generation stops early at EOS)\n"
            "      --temp T          sampling temperature; only 0 (greedy) is implemented so far (default 0)\n"
            "  -t, --threads N       threads (default: physical cores, %d here)\n"
            "  -c, --ctx-size N      context positions (default: min(model context, 4096))\n"
            "      --dump-logits F   write float32 little-endian logits [n_prompt][n_vocab] of every prompt position\n"
            "      --print-ids       print the generated ids, space-separated, on stdout\n"
            "      --ignore-eos      keep generating past the end-of-sequence token\n"
            "  -v, --verbose         print the model description\n"
            "  -h, --help            this help\n"
            "\n"
            "Until the tokenizer lands, generated tokens are printed as ids.\n",
            ds_physical_cores());
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out) {
    return args_int("deepseek", opt, s, lo, hi, out);
}

static int parse_args(int argc, char **argv, cli_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) { usage(stdout); exit(0); }
        else if (!strcmp(o, "--print-ids")) { a->print_ids = 1; takes = 0; }
        else if (!strcmp(o, "--ignore-eos")) { a->ignore_eos = 1; takes = 0; }
        else if (!strcmp(o, "-v") || !strcmp(o, "--verbose")) { a->verbose = 1; takes = 0; }
        else if (!v) { fprintf(stderr, "deepseek: %s: unknown option or missing value (see -h)\n", o); return -1; }
        else if (!strcmp(o, "-m") || !strcmp(o, "--model")) a->model = v;
        else if (!strcmp(o, "--ids")) a->ids = v;
        else if (!strcmp(o, "-p") || !strcmp(o, "--prompt")) a->prompt = v;
        else if (!strcmp(o, "--dump-logits")) a->dump = v;
        else if (!strcmp(o, "-n") || !strcmp(o, "--n-predict")) { if (parse_int(o, v, 0, INT_MAX, &a->n_predict)) return -1; }
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) { if (parse_int(o, v, 1, 1024, &a->n_threads)) return -1; }
        else if (!strcmp(o, "-c") || !strcmp(o, "--ctx-size")) { if (parse_int(o, v, 1, 1 << 24, &a->n_ctx)) return -1; }
        else if (!strcmp(o, "--temp")) {
            char *end;
            a->temp = strtod(v, &end);
            if (!*v || *end || a->temp < 0) { fprintf(stderr, "deepseek: --temp needs a number >= 0, got '%s'\n", v); return -1; }
        } else { fprintf(stderr, "deepseek: %s: unknown option (see -h)\n", o); return -1; }
        i += takes;
    }
    if (a->prompt) { fprintf(stderr, "deepseek: -p needs the tokenizer, which is not implemented yet; give the prompt as --ids\n"); return -1; }
    if (!a->model) { fprintf(stderr, "deepseek: no model given (-m FILE); see -h\n"); return -1; }
    if (!a->ids) { fprintf(stderr, "deepseek: no prompt given (--ids \"...\"); see -h\n"); return -1; }
    if (a->temp != 0) { fprintf(stderr, "deepseek: only --temp 0 (greedy) is implemented so far\n"); return -1; }
    return 0;
}

/* "0 1544, 318" -> ids; every id must be in [0, n_vocab). */
static int parse_ids(const char *s, int n_vocab, int32_t **out, int *n_out) {
    size_t cap = 16;
    int n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return -1;
    while (*s) {
        if (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n') { s++; continue; }
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v >= n_vocab || (*end && !strchr(" ,\t\n", *end))) {
            fprintf(stderr, "deepseek: --ids: '%.*s' is not a token id in [0, %d)\n", (int)strcspn(s, " ,\t\n"), s, n_vocab);
            free(ids);
            return -1;
        }
        if ((size_t)n == cap) {
            int32_t *p = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!p) { free(ids); return -1; }
            ids = p;
        }
        ids[n++] = (int32_t)v;
        s = end;
    }
    if (!n) { fprintf(stderr, "deepseek: --ids holds no token ids\n"); free(ids); return -1; }
    *out = ids;
    *n_out = n;
    return 0;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int dump_logits(const char *path, ds_context *ctx, int n, int n_vocab) {
    FILE *fp = fopen(path, "wb");
    if (!fp) { fprintf(stderr, "deepseek: %s: cannot create: %s\n", path, strerror(errno)); return -1; }
    for (int i = 0; i < n; i++)
        if (fwrite(ds_logits(ctx, i), sizeof(float), (size_t)n_vocab, fp) != (size_t)n_vocab) break;
    if (ferror(fp) | fclose(fp)) { fprintf(stderr, "deepseek: %s: write failed\n", path); return -1; }
    return 0;
}

/* Greedy decoding from the prompt's last logits; prints ids as they come. */
static int generate(ds_context *ctx, const ds_model *m, const cli_args *a, const float *logits, int *n_gen) {
    int eos = ds_model_eos(m), n_vocab = ds_model_n_vocab(m);
    for (*n_gen = 0; *n_gen < a->n_predict;) {
        int32_t tok = argmax(logits, n_vocab);
        printf(*n_gen ? " %d" : "%d", tok);
        fflush(stdout);
        ++*n_gen;
        if ((tok == eos && !a->ignore_eos) || *n_gen == a->n_predict) break;
        if (ds_context_n_past(ctx) >= ds_context_n_ctx(ctx)) {
            fprintf(stderr, "\ndeepseek: context full (%d positions); stopping\n", ds_context_n_ctx(ctx));
            break;
        }
        if (ds_eval(ctx, &tok, 1, 0)) { fprintf(stderr, "\ndeepseek: %s\n", ds_context_error(ctx)); return -1; }
        logits = ds_logits(ctx, 0);
    }
    if (*n_gen) printf("\n");
    fflush(stdout);
    return 0;
}

static int run(const cli_args *a) {
    char err[512];
    ds_model *m = NULL;
    ds_context *ctx = NULL;
    int32_t *ids = NULL;
    int n_ids = 0, rc = 1, n_gen = 0;
    double t0 = now_ms();
    if (ds_model_load(a->model, &m, err, sizeof err)) { fprintf(stderr, "deepseek: %s\n", err); return 1; }
    if (a->verbose) fprintf(stderr, "%s\n", ds_model_desc(m));
    ds_context_params p = ds_context_default_params();
    p.n_ctx = a->n_ctx;
    p.n_threads = a->n_threads;
    if (parse_ids(a->ids, ds_model_n_vocab(m), &ids, &n_ids)) goto done;
    if (ds_context_new(m, &p, &ctx, err, sizeof err)) { fprintf(stderr, "deepseek: %s\n", err); goto done; }
    if (n_ids > ds_context_n_ctx(ctx)) {
        fprintf(stderr, "deepseek: the prompt has %d tokens but the context holds %d (raise -c)\n", n_ids, ds_context_n_ctx(ctx));
        goto done;
    }
    double t1 = now_ms();
    if (ds_eval(ctx, ids, n_ids, a->dump != NULL)) { fprintf(stderr, "deepseek: %s\n", ds_context_error(ctx)); goto done; }
    double t2 = now_ms();
    if (a->dump && dump_logits(a->dump, ctx, n_ids, ds_model_n_vocab(m))) goto done;
    if (generate(ctx, m, a, ds_logits(ctx, a->dump ? n_ids - 1 : 0), &n_gen)) goto done;
    double t3 = now_ms();
    fprintf(stderr, "timings: load %.1f ms | prompt %d tokens %.1f ms (%.2f tok/s) | generation %d tokens %.1f ms (%.2f tok/s) | %d threads\n",
            t1 - t0, n_ids, t2 - t1, n_ids * 1e3 / (t2 - t1 + 1e-9), n_gen, t3 - t2,
            n_gen > 1 ? (n_gen - 1) * 1e3 / (t3 - t2 + 1e-9) : 0.0, ds_context_n_threads(ctx));
    rc = 0;
done:
    free(ids);
    ds_context_free(ctx);
    ds_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    cli_args a = {0};
    if (parse_args(argc, argv, &a)) return 1;
    return run(&a);
}
