/* deepseek-tokenize - the token ids of a text, as the model's tokenizer makes them.

   deepseek-tokenize -m model.gguf -p "你好, world 12345"
   deepseek-tokenize -m vocab.gguf -f input.txt --pieces */
#include "deepseek.h"
#include "args.h"
#include "clock.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *fp) {
    fputs("usage: deepseek-tokenize -m MODEL.gguf (-p TEXT | -f FILE) [--no-bos] [--pieces] [--check] [--stats]\n"
          "\n"
          "Prints the ids space-separated on one line.\n"
          "\n"
          "  -m, --model FILE   GGUF model, or a vocabulary-only GGUF (deepseek-convert --vocab-only)\n"
          "  -p, --prompt TEXT  the text\n"
          "  -f, --file FILE    the text from a file ('-' for stdin); invalid UTF-8 is replaced by\n"
          "                     U+FFFD, with a warning\n"
          "      --no-bos       do not add the BOS token the model asks for\n"
          "      --pieces       one token per line instead: id, then the token's text\n"
          "      --check        decode the ids again; fail unless that gives back the text\n"
          "      --stats        token count and encoding speed on stderr\n"
          "  -h, --help         this help\n"
          "      --version      the version\n",
          fp);
}

typedef struct {
    const char *model, *prompt, *file;
    int no_bos, pieces, check, stats;
} tok_args;

static int parse_args(int argc, char **argv, tok_args *a) {
    const args_flag flags[] = {
        {"--no-bos", &a->no_bos}, {"--pieces", &a->pieces}, {"--check", &a->check}, {"--stats", &a->stats}};
    args_it it = args_begin("deepseek-tokenize", argc, argv);
    for (const char *o; (o = args_next(&it));) {
        if (args_help_version(&it, o, usage, 0) || args_flags(o, flags, sizeof flags / sizeof *flags)) continue;
        if (args_is(o, "-m|--model")) a->model = args_value(&it);
        else if (args_is(o, "-p|--prompt")) a->prompt = args_value(&it);
        else if (args_is(o, "-f|--file")) a->file = args_value(&it);
        else args_unknown(&it);
    }
    if (it.failed) return -1;
    if (!a->model) return args_none_given(&it, "model", "-m FILE");
    if (!a->prompt == !a->file) return args_fail(&it, "give the text as either -p TEXT or -f FILE");
    return 0;
}

/* A token's bytes, readable: printable text as is, the rest as C escapes. */
static void print_piece(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\\' || c == '\'') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7F) printf("\\x%02X", c);
        else putchar(c);
    }
}

static void print_ids(const ds_model *m, const int32_t *ids, int n, int pieces) {
    for (int i = 0; i < n; i++) {
        if (!pieces) {
            printf(i ? " %d" : "%d", ids[i]);
            continue;
        }
        size_t len;
        const char *s = ds_token_bytes(m, ids[i], &len);
        printf("%6d -> '", ids[i]);
        print_piece(s ? s : "", len);
        puts("'");
    }
    if (!pieces) putchar('\n');
}

/* Decoding must give back the text, apart from the BOS the tokenizer added. */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} joined;

static void join_piece(const char *piece, size_t n, void *user) {
    joined *j = user;
    if (j->n + n > j->cap) {
        size_t cap = 2 * (j->n + n);
        char *p = realloc(j->p, cap);
        if (!p) {
            j->oom = 1;
            return;
        }
        j->p = p, j->cap = cap;
    }
    memcpy(j->p + j->n, piece, n);
    j->n += n;
}

/* Decoding must give the text back as the tokenizer sees it: normalized (NFC) where its
   tokenizer.json normalizes, which is what the pre-tokenizer's pieces make up. */
static int check_round_trip(const ds_model *m, const int32_t *ids, int n, int bos_added, const char *text, size_t len) {
    char err[256];
    joined want = {0};
    if (ds_pretokenize(m, text, len, join_piece, &want, err, sizeof err) || want.oom) {
        fprintf(stderr, "deepseek-tokenize: %s\n", want.oom ? "out of memory" : err);
        free(want.p);
        return -1;
    }
    size_t k = ds_detokenize(m, ids + bos_added, n - bos_added, 0, NULL, 0);
    char *back = malloc(k + 1);
    if (!back) {
        fprintf(stderr, "deepseek-tokenize: out of memory\n");
        free(want.p);
        return -1;
    }
    ds_detokenize(m, ids + bos_added, n - bos_added, 0, back, k + 1);
    int same = k == want.n && !memcmp(back, want.p, k);
    free(back);
    free(want.p);
    if (!same) {
        fprintf(stderr, "deepseek-tokenize: round trip FAILED: decoding gives %zu bytes, the text has %zu%s\n", k,
                want.n, want.n != len ? " once normalized" : "");
        return -1;
    }
    fprintf(stderr, "deepseek-tokenize: round trip ok: %d tokens decode to the %zu bytes of text%s\n", n, want.n,
            want.n != len ? " (normalized)" : "");
    return 0;
}

static int run(const tok_args *a) {
    char err[512];
    ds_model *m;
    size_t len = 0;
    char *text = a->prompt ? strdup(a->prompt) : text_read_file("deepseek-tokenize", a->file, &len);
    if (a->prompt && text) len = strlen(text);
    if (text) text = text_repair("deepseek-tokenize", a->prompt ? "the prompt" : a->file, text, &len);
    if (!text) return 1;
    if (ds_model_load(a->model, &m, err, sizeof err)) {
        fprintf(stderr, "deepseek-tokenize: %s\n", err);
        free(text);
        return 1;
    }
    int bos = !a->no_bos && ds_model_add_bos(m), rc = 1;
    int32_t *ids;
    double t0 = now_s();
    int n;
    if (text_tokenize("deepseek-tokenize", NULL, m, text, len, bos, &ids, &n)) n = -1;
    double dt = now_s() - t0;
    if (n >= 0) {
        print_ids(m, ids, n, a->pieces);
        if (a->stats)
            fprintf(stderr, "deepseek-tokenize: %zu bytes -> %d tokens in %.3f s: %.1f MB/s, %.2f bytes/token\n", len,
                    n, dt, len / 1e6 / (dt > 0 ? dt : 1e-9), n ? (double)len / n : 0.0);
        rc = a->check && check_round_trip(m, ids, n, bos, text, len) ? 1 : 0;
    }
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "deepseek-tokenize: cannot write the output\n");
        rc = 1;
    }
    free(ids);
    free(text);
    ds_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    tok_args a = {0};
    if (parse_args(argc, argv, &a)) return 1;
    return run(&a);
}
