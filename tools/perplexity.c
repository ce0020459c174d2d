/* deepseek-perplexity - a model's perplexity on a text, by llama-perplexity's method.

   deepseek-perplexity -m model.gguf -f text.txt [-c 512] [--chunks N] [-t N]

   The text is tokenized once (with the model's BOS). It is cut into consecutive,
   non-overlapping windows of c tokens (a shorter tail is dropped); each window is evaluated
   from an empty cache with its first token replaced by BOS, and only the second half of each
   window is scored, so every scored token has at least c/2 tokens of context. Per window the
   running perplexity is printed as llama-perplexity prints it ([1]12.3456,[2]...), then
   "Final estimate: PPL = X +/- E", E being the standard error of the mean negative
   log-likelihood carried through exp. Numbers are comparable with llama-perplexity's on the
   same file, text and -c.

   --mtp also runs the model's multi-token-prediction layer over each window and reports how
   often its first choice is the token after next (given the true next token), over the same
   scored positions, beside the main model's next-token accuracy. */
#include "deepseek.h"
#include "args.h"
#include "clock.h"
#include "text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *PROG = "deepseek-perplexity";

typedef struct {
    const char *model, *file;
    int n_ctx, n_chunks, n_threads, n_batch, cache_type, mtp;
    ds_model_params mp;
} ppl_args;

static void usage(FILE *fp) {
    fputs(
        "usage: deepseek-perplexity -m MODEL.gguf -f FILE [-c N] [--chunks N] [-t N] [options]\n"
        "\n"
        "Perplexity of the model on the text of FILE, as llama-perplexity computes it: windows of\n"
        "N tokens, each started with BOS, scored on their second half.\n"
        "\n"
        "  -m, --model FILE        GGUF model\n"
        "  -f, --file FILE         the text ('-' for stdin); invalid UTF-8 is replaced by U+FFFD\n"
        "  -c, --ctx-size N        window length in tokens (default 512, at most the model's context)\n"
        "      --chunks N          score at most the first N windows (default: all)\n"
        "  -t, --threads N         threads (default: physical cores)\n"
        "  -b, --batch-size N      tokens evaluated together (default: a whole window)\n" ARGS_CACHE_HELP ARGS_LOAD_HELP
        "      --mtp               also the MTP layer's next-next-token accuracy (DeepSeek-V3 / R1)\n"
        "  -h, --help              this help\n"
        "      --version           the version\n"
        "\n" ARGS_IGNORED_HELP,
        fp);
}

static int parse_args(int argc, char **argv, ppl_args *a) {
    a->mp = ds_model_default_params();
    args_it it = args_begin(PROG, argc, argv);
    for (const char *o; (o = args_next(&it));) {
        if (args_help_version(&it, o, usage, 0) || args_model_opt(&it, o, &a->n_batch, &a->cache_type, &a->mp))
            continue;
        if (args_is(o, "--mtp")) a->mtp = 1;
        else if (args_is(o, "-m|--model")) a->model = args_value(&it);
        else if (args_is(o, "-f|--file")) a->file = args_value(&it);
        else if (args_is(o, "-c|--ctx-size")) args_value_int(&it, 4, 1 << 20, &a->n_ctx);
        else if (args_is(o, "--chunks")) args_value_int(&it, 1, 1 << 30, &a->n_chunks);
        else if (args_is(o, "-t|--threads")) args_value_int(&it, 1, 1024, &a->n_threads);
        else args_unknown(&it);
    }
    if (it.failed) return -1;
    if (!a->model) return args_none_given(&it, "model", "-m FILE");
    if (!a->file) return args_none_given(&it, "text", "-f FILE");
    return 0;
}

/* -log p(target) under softmax(logits), in double. */
static double token_nll(const float *logits, int n_vocab, int target) {
    float mx = logits[0];
    for (int i = 1; i < n_vocab; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - mx);
    return log(sum) - ((double)logits[target] - mx);
}

/* The running sums of the per-token negative log-likelihood and its square; top-1 hits of the
   main model and of the MTP layer. */
typedef struct {
    double nll, nll2;
    long count, hits, mtp_hits, mtp_count;
} ppl_sum;

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) b = x[i] > x[b] ? i : b;
    return b;
}

static double ppl_value(const ppl_sum *s) { return exp(s->nll / (double)s->count); }

/* llama-perplexity's error estimate: the standard error of the mean nll, times PPL. */
static double ppl_stderr(const ppl_sum *s) {
    double mean = s->nll / (double)s->count, var = s->nll2 / (double)s->count - mean * mean;
    return s->count > 1 && var > 0 ? sqrt(var / (double)(s->count - 1)) * ppl_value(s) : 0.0;
}

static int32_t *tokenize_file(const ds_model *m, const char *path, int *n_out) {
    size_t len;
    char *text = text_read_file(PROG, path, &len);
    if (text) text = text_repair(PROG, path, text, &len);
    if (!text) return NULL;
    int32_t *ids;
    int n;
    text_tokenize(PROG, path, m, text, len, ds_model_add_bos(m), &ids, &n);
    free(text);
    *n_out = n;
    return ids;
}

/* MTP row j guesses ids[j + 2] from the state at j and the true ids[j + 1]. */
static int score_mtp(ds_context *ctx, const int32_t *ids, int n_ctx, int n_vocab, ppl_sum *s) {
    if (ds_eval_mtp(ctx, ids + 1, n_ctx - 1, 1) != DS_OK) {
        fprintf(stderr, "%s: %s\n", PROG, ds_context_error(ctx));
        return -1;
    }
    for (int j = n_ctx / 2; j < n_ctx - 2; j++) {
        s->mtp_hits += argmax(ds_mtp_logits(ctx, j), n_vocab) == ids[j + 2];
        s->mtp_count++;
    }
    return 0;
}

/* Evaluates a window and adds its second half's nll to s. */
static int score_window(ds_context *ctx, const int32_t *ids, int n_ctx, int bos, int n_vocab, int mtp, ppl_sum *s) {
    int32_t *win = malloc((size_t)n_ctx * sizeof *win);
    if (!win) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        return -1;
    }
    memcpy(win, ids, (size_t)n_ctx * sizeof *win);
    if (bos >= 0) win[0] = bos;
    ds_context_reset(ctx);
    ds_status st = ds_eval(ctx, win, n_ctx, 1);
    free(win);
    if (st != DS_OK) {
        fprintf(stderr, "%s: %s\n", PROG, ds_context_error(ctx));
        return -1;
    }
    for (int j = n_ctx / 2; j < n_ctx - 1; j++) {
        double nll = token_nll(ds_logits(ctx, j), n_vocab, ids[j + 1]);
        s->nll += nll;
        s->nll2 += nll * nll;
        s->count++;
        s->hits += argmax(ds_logits(ctx, j), n_vocab) == ids[j + 1];
    }
    return mtp ? score_mtp(ctx, ids, n_ctx, n_vocab, s) : 0;
}

static int run(const ppl_args *a, ds_model *m) {
    int n_tok;
    int32_t *ids = tokenize_file(m, a->file, &n_tok);
    if (!ids) return 1;
    int n_ctx = a->n_ctx ? a->n_ctx : 512, train = ds_model_n_ctx_train(m);
    if (train > 0 && n_ctx > train) {
        if (a->n_ctx) fprintf(stderr, "%s: -c %d is longer than the model's context (%d)\n", PROG, n_ctx, train);
        if (a->n_ctx) {
            free(ids);
            return 1;
        }
        n_ctx = train;
    }
    int n_chunks = n_tok / n_ctx;
    if (a->n_chunks && a->n_chunks < n_chunks) n_chunks = a->n_chunks;
    if (n_chunks < 1) {
        fprintf(stderr, "%s: %s has %d tokens, fewer than one window of %d (use a smaller -c)\n", PROG, a->file, n_tok,
                n_ctx);
        free(ids);
        return 1;
    }
    char err[512];
    ds_context_params p = ds_context_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = a->n_batch ? a->n_batch : n_ctx;
    p.cache_type = a->cache_type;
    p.n_threads = a->n_threads;
    p.mtp = a->mtp;
    ds_context *ctx;
    if (ds_context_new(m, &p, &ctx, err, sizeof err) != DS_OK) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        free(ids);
        return 1;
    }
    fprintf(stderr, "%s: %d tokens, %d windows of %d, scoring %d tokens each, %d threads\n", PROG, n_tok, n_chunks,
            n_ctx, n_ctx - 1 - n_ctx / 2, ds_context_n_threads(ctx));
    int tty = isatty(fileno(stderr)), rc = 0;
    ppl_sum s = {0};
    double t0 = now_s();
    for (int w = 0; w < n_chunks && rc == 0; w++) {
        rc = score_window(ctx, ids + (size_t)w * n_ctx, n_ctx, ds_model_add_bos(m) ? ds_model_bos(m) : -1,
                          ds_model_n_vocab(m), a->mtp, &s);
        if (rc == 0 && w == 0 && tty)
            fprintf(stderr, "%s: %.2f s per window, about %.0f s in all\n", PROG, now_s() - t0,
                    (now_s() - t0) * n_chunks);
        if (rc == 0) printf("[%d]%.4f,%s", w + 1, ppl_value(&s), w + 1 == n_chunks ? "\n" : "");
        fflush(stdout);
    }
    if (rc == 0) printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl_value(&s), ppl_stderr(&s));
    if (rc == 0 && a->mtp)
        printf("MTP: next-next-token accuracy %.2f%% (%ld of %ld); main model's next-token accuracy %.2f%%\n",
               100.0 * (double)s.mtp_hits / (double)s.mtp_count, s.mtp_hits, s.mtp_count,
               100.0 * (double)s.hits / (double)s.count);
    ds_context_free(ctx);
    free(ids);
    return rc;
}

int main(int argc, char **argv) {
    ppl_args a = {0};
    if (parse_args(argc, argv, &a) != 0) return 1;
    char err[512];
    ds_model *m;
    if (ds_model_load_params(a.model, &a.mp, &m, err, sizeof err) != DS_OK) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        return 1;
    }
    int rc = run(&a, m);
    ds_model_free(m);
    return rc;
}
