/* deepseek - run a DeepSeek GGUF model from the command line.

   deepseek -m r1.gguf -p "Why is the sky blue?" -n 256     text completion, streamed
   deepseek -m r1.gguf -cnv                                  chat through the model's template
   deepseek -m r1.gguf -cnv --reasoning hide                 the same without the <think> part
   deepseek -m v3.1.gguf -cnv --reasoning on                 V3.1 / V3.2 in thinking mode
   deepseek -m model.gguf --ids "0 1544 318" --temp 0 --print-ids   ids in, ids out */
#include "deepseek.h"
#include "args.h"
#include "clock.h"
#include "text.h"
#include "think.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { MAX_REVERSE = 16 };

typedef struct {
    const char *model, *ids, *dump, *prompt, *file, *system;
    int n_predict, n_threads, n_ctx, n_batch, cache_type;
    ds_sampler_params sp;
    ds_model_params mp;
    const char *reverse[MAX_REVERSE]; /* -r: generation stops at any of these */
    int n_reverse;
    int seed_given, chat, hide_reasoning, print_ids, ignore_eos, verbose, verbose_prompt, no_display_prompt;
    int thinking; /* --reasoning on (1) / off (0) for templates with a thinking switch; -1: not given */
    ds_chat_style style; /* --chat-template NAME; DS_CHAT_UNKNOWN: the model's own */
} cli_args;

static void usage(FILE *fp) {
    ds_sampler_params d = ds_sampler_default_params();
    fprintf(fp,
            "usage: deepseek -m MODEL.gguf (-p TEXT | -f FILE | --ids \"ID ...\" | -cnv) [options]\n"
            "\n"
            "  -m, --model FILE        GGUF model (deepseek2, deepseek32, qwen2, llama, qwen3, deepseek)\n"
            "  -p, --prompt TEXT       prompt text (BOS added when the model asks for it)\n"
            "  -f, --file FILE         prompt text from a file\n"
            "      --ids \"...\"         prompt as token ids, separated by spaces or commas\n"
            "  -cnv, -i, --conversation  interactive chat through the model's chat template, with\n"
            "                          history; -p then is the first message. Ctrl-C stops an answer,\n"
            "                          Ctrl-D or /exit leaves; end a line with \\ to go on typing\n"
            "  -sys, --system TEXT     system prompt for the chat\n"
            "      --chat-template NAME  chat in this format instead of the one the model's template is\n"
            "                          recognised as (--chat-template list: the names)\n"
            "      --reasoning MODE    show (default: dimmed on a terminal) or hide the <think> part;\n"
            "                          on or off: thinking mode for V3.1, V3.2, V4 and Qwen3 templates\n"
            "                          (default: the template's, off for V3.1 / V3.2 / V4, on for Qwen3);\n"
            "                          give it twice for both, e.g. on and hide\n"
            "  -n, --n-predict N       tokens to generate (default -1: until end of text or a full context)\n"
            "  -r, --reverse-prompt TEXT  stop where the generated text reaches TEXT, shown in full; in\n"
            "                          a chat, end the answer there. May repeat (at most %d)\n"
            "  -c, --ctx-size N        context positions (default: min(model context, 4096))\n"
            "  -b, --batch-size N      prompt tokens evaluated together (default 512)\n"
            "  -t, --threads N         threads (default: physical cores, %d here)\n" ARGS_CACHE_HELP ARGS_LOAD_HELP "\n"
            "sampling (defaults: DeepSeek's advice for R1):\n"
            "      --temp T            temperature; 0 = greedy (default %.2f)\n"
            "      --top-k N           keep the N most likely tokens; 0 = off (default %d)\n"
            "      --top-p P           keep the most likely tokens up to probability P; 1 = off (default %.2f)\n"
            "      --min-p P           drop tokens below P x the best one's probability; 0 = off (default %.2f)\n"
            "      --repeat-penalty F  penalise tokens of the last --repeat-last-n; 1 = off (default %.2f)\n"
            "      --repeat-last-n N   (default %d)\n"
            "  -s, --seed N            random seed (default: a new one each run, printed at the end)\n"
            "\n"
            "output:\n"
            "      --print-ids         print generated token ids instead of text\n"
            "      --dump-logits F     write float32 logits [n_prompt][n_vocab] of every prompt position\n"
            "      --verbose-prompt    print the prompt's tokens on stderr\n"
            "      --no-display-prompt do not echo a -p / -f prompt before its continuation\n"
            "      --ignore-eos        keep generating past the end-of-text and end-of-turn tokens\n"
            "  -v, --verbose           print the model description\n"
            "  -h, --help              this help\n"
            "      --version           the version and the kernel level of this CPU\n"
            "\n"
            "A vocabulary-only GGUF (deepseek-convert --vocab-only) prints the prompt's token ids.\n" ARGS_IGNORED_HELP,
            MAX_REVERSE, ds_physical_cores(), d.temp, d.top_k, d.top_p, d.min_p, d.repeat_penalty, d.repeat_last_n);
}

static int parse_flag(const char *o, cli_args *a) {
    const args_flag f[] = {{"--print-ids", &a->print_ids},
                           {"--ignore-eos", &a->ignore_eos},
                           {"-v|--verbose", &a->verbose},
                           {"--verbose-prompt", &a->verbose_prompt},
                           {"--no-display-prompt", &a->no_display_prompt},
                           {"-cnv|--conversation|-i|--interactive", &a->chat}};
    return args_flags(o, f, sizeof f / sizeof *f);
}

static void parse_seed(args_it *it, cli_args *a) {
    const char *o = it->argv[it->i], *v = args_value(it);
    if (!v) return;
    char *end;
    errno = 0;
    unsigned long long s = strtoull(v, &end, 10);
    if (!*v || *end || errno || *v == '-') {
        args_fail(it, "%s needs a non-negative integer, got '%s'", o, v);
        return;
    }
    a->sp.seed = s;
    a->seed_given = 1;
}

/* 1 when o is a sampling option (its value taken, or the mistake reported). */
static int parse_sampling(args_it *it, const char *o, cli_args *a) {
    if (args_is(o, "--temp")) args_value_float(it, 0, 100, &a->sp.temp);
    else if (args_is(o, "--top-k")) args_value_int(it, 0, INT_MAX, &a->sp.top_k);
    else if (args_is(o, "--top-p")) args_value_float(it, 1e-6, 1, &a->sp.top_p);
    else if (args_is(o, "--min-p")) args_value_float(it, 0, 1, &a->sp.min_p);
    else if (args_is(o, "--repeat-penalty")) args_value_float(it, 1e-3, 100, &a->sp.repeat_penalty);
    else if (args_is(o, "--repeat-last-n")) args_value_int(it, 0, 1 << 20, &a->sp.repeat_last_n);
    else if (args_is(o, "-s|--seed")) parse_seed(it, a);
    else return 0;
    return 1;
}

static void parse_reverse(args_it *it, cli_args *a) {
    const char *o = it->argv[it->i], *v = args_value(it);
    if (!v) return;
    if (!*v) args_fail(it, "%s: the reverse prompt is empty", o);
    else if (a->n_reverse == MAX_REVERSE) args_fail(it, "%s: at most %d reverse prompts", o, MAX_REVERSE);
    else a->reverse[a->n_reverse++] = v;
}

/* show / hide: how the <think> part is displayed; on / off: whether a hybrid model thinks. */
static void parse_reasoning(args_it *it, cli_args *a) {
    const char *v = args_value(it);
    if (!v) return;
    if (!strcmp(v, "show") || !strcmp(v, "hide")) a->hide_reasoning = !strcmp(v, "hide");
    else if (!strcmp(v, "on") || !strcmp(v, "off")) a->thinking = !strcmp(v, "on");
    else args_fail(it, "--reasoning is show or hide, or on or off, got '%s'", v);
}

/* A style by name; "list" prints the names and ends the program, as --help does. */
static void parse_chat_template(args_it *it, cli_args *a) {
    const char *v = args_value(it);
    if (!v) return;
    a->style = ds_chat_style_from_name(v);
    if (a->style != DS_CHAT_UNKNOWN) return;
    const char *const *names = ds_chat_template_names();
    char list[512];
    size_t k = 0;
    list[0] = 0;
    for (int i = 0; names[i] && k < sizeof list; i++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", names[i]);
    if (!strcmp(v, "list")) {
        printf("%s\n", list);
        exit(fflush(stdout) ? 1 : 0); /* as --help */
    }
    args_fail(it, "--chat-template: no template named '%s'; the known ones: %s", v, list);
}

/* 1 when o is one of the other options with a value (taken, or the mistake reported). */
static int parse_value(args_it *it, const char *o, cli_args *a) {
    if (args_is(o, "-m|--model")) a->model = args_value(it);
    else if (args_is(o, "--ids")) a->ids = args_value(it);
    else if (args_is(o, "-p|--prompt")) a->prompt = args_value(it);
    else if (args_is(o, "-f|--file")) a->file = args_value(it);
    else if (args_is(o, "-sys|--system")) a->system = args_value(it);
    else if (args_is(o, "--dump-logits")) a->dump = args_value(it);
    else if (args_is(o, "-n|--n-predict")) args_value_int(it, -1, INT_MAX, &a->n_predict);
    else if (args_is(o, "-t|--threads")) args_value_int(it, 1, 1024, &a->n_threads);
    else if (args_is(o, "-c|--ctx-size")) args_value_int(it, 1, 1 << 24, &a->n_ctx);
    else if (args_is(o, "-r|--reverse-prompt")) parse_reverse(it, a);
    else if (args_is(o, "--reasoning")) parse_reasoning(it, a);
    else if (args_is(o, "--chat-template")) parse_chat_template(it, a);
    else return 0;
    return 1;
}

static int parse_args(int argc, char **argv, cli_args *a) {
    a->sp = ds_sampler_default_params();
    a->mp = ds_model_default_params();
    a->n_predict = -1;
    a->thinking = -1;
    args_it it = args_begin("deepseek", argc, argv);
    for (const char *o; (o = args_next(&it));) {
        if (!args_help_version(&it, o, usage, 1) && !parse_flag(o, a) && !parse_sampling(&it, o, a) &&
            !parse_value(&it, o, a) && !args_model_opt(&it, o, &a->n_batch, &a->cache_type, &a->mp))
            args_unknown(&it);
    }
    if (it.failed) return -1;
    if (!a->model) return args_none_given(&it, "model", "-m FILE");
    int n_src = !!a->prompt + !!a->file + !!a->ids;
    if (n_src > 1) return args_fail(&it, "give one prompt: -p, -f or --ids");
    if (!n_src && !a->chat) return args_none_given(&it, "prompt", "-p TEXT, -f FILE, --ids, or -cnv to chat");
    if (a->chat && a->ids) return args_fail(&it, "--ids cannot start a chat; use -p");
    if (!a->seed_given) a->sp.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
    return 0;
}

/* "0 1544, 318" -> ids; every id must be in [0, n_vocab). */
static int parse_ids(const char *s, int n_vocab, int32_t **out, int *n_out) {
    size_t cap = 16;
    int n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return -1;
    while (*s) {
        if (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n') {
            s++;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v >= n_vocab || (*end && !strchr(" ,\t\n", *end))) {
            fprintf(stderr, "deepseek: --ids: '%.*s' is not a token id in [0, %d)\n", (int)strcspn(s, " ,\t\n"), s,
                    n_vocab);
            free(ids);
            return -1;
        }
        if ((size_t)n == cap) {
            int32_t *p = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!p) {
                free(ids);
                return -1;
            }
            ids = p;
        }
        ids[n++] = (int32_t)v;
        s = end;
    }
    if (!n) {
        fprintf(stderr, "deepseek: --ids holds no token ids\n");
        free(ids);
        return -1;
    }
    *out = ids;
    *n_out = n;
    return 0;
}

static double now_ms(void) { return now_s() * 1e3; }

/* ---- Ctrl-C: stops the answer being generated ---- */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

/* No SA_RESTART, so a read waiting for the user returns on Ctrl-C as well. */
static void catch_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* ---- generation ---- */

typedef struct {
    ds_model *m;
    ds_context *ctx;
    ds_sampler *smp;
    const cli_args *a;
    int32_t *past; /* the tokens in the context, to reuse a chat's common prefix */
    int n_past, cap_past;
    int n_prompt, n_gen; /* totals for the timings */
    double ms_prompt, ms_gen;
} session;

static int remember(session *S, const int32_t *ids, int n) {
    if (S->n_past + n > S->cap_past) {
        int cap = (S->n_past + n) * 2;
        int32_t *p = realloc(S->past, (size_t)cap * sizeof *p);
        if (!p) {
            fprintf(stderr, "deepseek: out of memory\n");
            return -1;
        }
        S->past = p;
        S->cap_past = cap;
    }
    memcpy(S->past + S->n_past, ids, (size_t)n * sizeof *ids);
    S->n_past += n;
    return 0;
}

/* Bring the context to exactly ids: keep the common prefix, evaluate the rest. */
static int feed(session *S, const int32_t *ids, int n, int all_logits) {
    int k = 0;
    while (k < n && k < S->n_past && S->past[k] == ids[k]) k++;
    if (k == n) k--; /* logits are needed for the last token */
    if (n > ds_context_n_ctx(S->ctx)) {
        fprintf(stderr, "deepseek: the prompt has %d tokens but the context holds %d (raise -c)\n", n,
                ds_context_n_ctx(S->ctx));
        return -1;
    }
    ds_context_rewind(S->ctx, k);
    S->n_past = k;
    for (int i = k; i < n; i++) ds_sampler_accept(S->smp, ids[i]);
    double t = now_ms();
    if (ds_eval(S->ctx, ids + k, n - k, all_logits)) {
        fprintf(stderr, "deepseek: %s\n", ds_context_error(S->ctx));
        return -1;
    }
    S->ms_prompt += now_ms() - t;
    S->n_prompt += n - k;
    return remember(S, ids + k, n - k);
}

/* Appends s[0..n) to the NUL-terminated, growing *text. */
static int append(char **text, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = 2 * (*len + n + 1);
        char *p = realloc(*text, c);
        if (!p) return -1;
        *text = p;
        *cap = c;
    }
    memcpy(*text + *len, s, n);
    *len += n;
    (*text)[*len] = 0;
    return 0;
}

/* Where the earliest -r text that ends past text[from] ends, or 0 for none. The text, not the
   ids, is searched: a reverse prompt may be made of other tokens than those it was typed as, and
   end inside a token (what follows it in that token is not shown). */
static size_t reverse_end(const cli_args *a, const char *text, size_t from, size_t len) {
    size_t best = 0;
    for (int r = 0; r < a->n_reverse; r++) {
        size_t k = strlen(a->reverse[r]);
        for (size_t at = from + 1 > k ? from + 1 - k : 0; at + k <= len; at++) {
            if (memcmp(text + at, a->reverse[r], k)) continue;
            if (!best || at + k < best) best = at + k;
            break;
        }
    }
    return best;
}

/* Sample and evaluate until EOS, -n, a reverse prompt, a full context or Ctrl-C; the text (or
   ids) streams to stdout and the text is also kept in *text (for the chat history). */
static int generate(session *S, const float *logits, text_out *o, char **text, size_t *text_len) {
    const cli_args *a = S->a;
    int rc = 0;
    size_t stop = 0, cap = 256;
    ds_detok *d = NULL;
    ds_detok_new(S->m, 1, &d, NULL, 0);
    *text = malloc(cap);
    *text_len = 0;
    if (!d || !*text) {
        ds_detok_free(d);
        fprintf(stderr, "deepseek: out of memory\n");
        return -1;
    }
    **text = 0;
    double t = now_ms();
    for (int i = 0; a->n_predict < 0 || i < a->n_predict; i++) {
        if (interrupted) break;
        int32_t tok = ds_sampler_sample(S->smp, logits);
        if (ds_token_is_eog(S->m, tok) && !a->ignore_eos) break; /* EOS, or a chat model's end of turn */
        ds_sampler_accept(S->smp, tok);
        S->n_gen++;
        size_t n, from = *text_len;
        const char *s = ds_detok_push(d, tok, &n);
        if (append(text, text_len, &cap, s, n)) {
            fprintf(stderr, "\ndeepseek: out of memory\n");
            rc = -1;
            break;
        }
        if ((stop = reverse_end(a, *text, from, *text_len))) (*text)[ *text_len = stop] = 0;
        if (a->print_ids) printf(i ? " %d" : "%d", tok), fflush(stdout);
        else text_put(o, s, *text_len - from);
        if (stop || (a->n_predict >= 0 && i + 1 == a->n_predict)) break;
        if (ds_context_n_past(S->ctx) >= ds_context_n_ctx(S->ctx)) {
            fprintf(stderr, "\ndeepseek: the context is full (%d positions); stopping\n", ds_context_n_ctx(S->ctx));
            break;
        }
        if (ds_eval(S->ctx, &tok, 1, 0) || remember(S, &tok, 1)) {
            fprintf(stderr, "\ndeepseek: %s\n", ds_context_error(S->ctx));
            rc = -1;
            break;
        }
        logits = ds_logits(S->ctx, 0);
    }
    size_t n;
    const char *s = ds_detok_flush(d, &n);
    if (stop) n = 0; /* held-back bytes come after the reverse prompt */
    if (!a->print_ids) text_put(o, s, n), text_end(o);
    if (append(text, text_len, &cap, s, n)) {
        fprintf(stderr, "deepseek: out of memory\n");
        rc = -1;
    }
    ds_detok_free(d);
    S->ms_gen += now_ms() - t;
    return rc;
}

static int dump_logits(const char *path, ds_context *ctx, int n, int n_vocab) {
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        fprintf(stderr, "deepseek: %s: cannot create: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (fwrite(ds_logits(ctx, i), sizeof(float), (size_t)n_vocab, fp) != (size_t)n_vocab) break;
    if (ferror(fp) | fclose(fp)) {
        fprintf(stderr, "deepseek: %s: write failed\n", path);
        return -1;
    }
    return 0;
}

static void print_prompt_tokens(const ds_model *m, const int32_t *ids, int n, FILE *fp) {
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *s = ds_token_bytes(m, ids[i], &len);
        fprintf(fp, "%6d -> '%.*s'\n", ids[i], s ? (int)len : 0, s ? s : "");
    }
}

/* The prompt of -p, -f or --ids; its text (NULL for ids) in *text when asked for. */
static int prompt_ids(const cli_args *a, const ds_model *m, int32_t **ids, int *n, char **text_out) {
    if (text_out) *text_out = NULL;
    if (a->ids) return parse_ids(a->ids, ds_model_n_vocab(m), ids, n);
    size_t len = 0;
    char *text = a->prompt ? strdup(a->prompt) : text_read_file("deepseek", a->file, &len);
    if (a->prompt && text) len = strlen(text);
    if (text) text = text_repair("deepseek", a->prompt ? "the prompt" : a->file, text, &len);
    if (!text) return -1;
    int rc = text_tokenize("deepseek", NULL, m, text, len, ds_model_add_bos(m), ids, n);
    if (!rc && !*n) {
        fprintf(stderr, "deepseek: the prompt is empty\n");
        free(*ids);
        rc = -1;
    }
    if (!rc && text_out) *text_out = text;
    else free(text);
    return rc;
}

static int run_once(session *S) {
    const cli_args *a = S->a;
    int32_t *ids;
    int n;
    char *prompt;
    if (prompt_ids(a, S->m, &ids, &n, &prompt)) return -1;
    if (a->verbose_prompt) print_prompt_tokens(S->m, ids, n, stderr);
    if (prompt && !a->print_ids && !a->no_display_prompt && a->n_predict) fputs(prompt, stdout), fflush(stdout);
    free(prompt);
    int rc = feed(S, ids, n, a->dump != NULL);
    if (!rc && a->dump) rc = dump_logits(a->dump, S->ctx, n, ds_model_n_vocab(S->m));
    text_out o = {.fp = stdout};
    char *text = NULL;
    size_t len;
    if (!rc && a->n_predict) rc = generate(S, ds_logits(S->ctx, a->dump ? n - 1 : 0), &o, &text, &len);
    if (!rc && (a->print_ids || (text && len && text[len - 1] != '\n'))) putchar('\n');
    free(text);
    free(ids);
    return rc;
}

/* ---- chat ---- */

typedef struct {
    ds_chat_message *msg;
    int n, cap;
} history;

static int add_message(history *h, const char *role, char *content) {
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 16;
        ds_chat_message *p = realloc(h->msg, (size_t)cap * sizeof *p);
        if (!p) {
            free(content);
            return -1;
        }
        h->msg = p;
        h->cap = cap;
    }
    h->msg[h->n++] = (ds_chat_message){role, content, NULL, 0};
    return 0;
}

static void drop_message(history *h) { free((char *)h->msg[--h->n].content); }

/* One user turn, "\"-continued lines joined; NULL at end of input. */
static char *read_turn(int tty) {
    char *turn = NULL, *line = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (tty) fputs(turn ? ". " : "> ", stdout), fflush(stdout);
        errno = 0;
        ssize_t k = getline(&line, &cap, stdin);
        if (k < 0 && errno == EINTR && interrupted) { /* Ctrl-C at the prompt: a fresh line */
            interrupted = 0;
            clearerr(stdin);
            if (tty) putchar('\n');
            free(turn), turn = NULL, len = 0;
            continue;
        }
        if (k < 0) break;
        if (k && line[k - 1] == '\n') line[--k] = 0;
        int more = k && line[k - 1] == '\\';
        if (more) line[--k] = '\n';
        char *t = realloc(turn, len + (size_t)k + 1);
        if (!t) break;
        turn = t;
        memcpy(turn + len, line, (size_t)k);
        len += (size_t)k;
        turn[len] = 0;
        if (!more) {
            free(line);
            return turn;
        }
    }
    free(line);
    if (turn) return turn; /* a last line without a newline */
    return NULL;
}

/* How the chat is rendered: the template's thinking switch, and whether answers start inside <think>. */
typedef struct {
    ds_chat_params params;
    int opens_think;
} chat_mode;

static char *render(const ds_model *m, const history *h, const chat_mode *cm, size_t *len) {
    size_t n = 0;
    if (ds_chat_apply_ex(m, h->msg, h->n, &cm->params, NULL, 0, &n, NULL, 0) != DS_ERR_SMALL_BUFFER) return NULL;
    char *s = malloc(n + 1);
    if (s && ds_chat_apply_ex(m, h->msg, h->n, &cm->params, s, n + 1, len, NULL, 0) != DS_OK) {
        free(s);
        s = NULL;
    }
    return s;
}

/* One exchange: render the whole conversation (so the template decides what the model sees,
   e.g. R1 drops earlier reasoning), evaluate what differs from the context, answer. */
static int chat_turn(session *S, history *h, const chat_mode *cm, text_out *o) {
    size_t len;
    int32_t *ids;
    int n;
    char *text = render(S->m, h, cm, &len);
    if (!text) {
        fprintf(stderr, "deepseek: the chat template cannot render this conversation\n");
        return -1;
    }
    int rc = text_tokenize("deepseek", NULL, S->m, text, len, 0, &ids, &n); /* the template writes BOS itself */
    free(text);
    if (rc) return -1;
    if (S->a->verbose_prompt) print_prompt_tokens(S->m, ids, n, stderr);
    if (n > ds_context_n_ctx(S->ctx)) {
        fprintf(
            stderr,
            "deepseek: the conversation has %d tokens but the context holds %d; /exit and start again, or raise -c\n",
            n, ds_context_n_ctx(S->ctx));
        free(ids);
        return 1;
    }
    rc = feed(S, ids, n, 0);
    free(ids);
    if (rc) return -1;
    o->in_think = cm->opens_think;
    o->at_start = 1;
    o->trim = 0;
    char *answer;
    size_t answer_len;
    interrupted = 0;
    rc = generate(S, ds_logits(S->ctx, 0), o, &answer, &answer_len);
    fputs(interrupted ? "\n[stopped]\n" : "\n", stdout);
    interrupted = 0;
    if (rc) {
        free(answer);
        return -1;
    }
    return add_message(h, "assistant", answer);
}

/* --reasoning on / off where the template has the switch; a note where it has not. */
static chat_mode chat_mode_for(const cli_args *a, ds_chat_style style) {
    chat_mode cm = {ds_chat_default_params(), ds_chat_opens_think(style)};
    if (a->thinking < 0) return cm;
    if (!ds_chat_has_thinking_switch(style)) {
        fprintf(stderr, "deepseek: note: --reasoning %s: the %s template has no thinking switch (V3.1, V3.2, V4 and Qwen3 have)\n",
                a->thinking ? "on" : "off", ds_chat_style_name(style));
        return cm;
    }
    cm.params.thinking = a->thinking;
    cm.opens_think = style != DS_CHAT_QWEN3 && a->thinking; /* Qwen3's model opens <think> itself */
    return cm;
}

/* Whether the chat thinks: --reasoning, else the template's default (Qwen3 thinks unless told
   not to; V3.1, V3.2 and V4 chat unless told to think). */
static int thinks(const chat_mode *cm, ds_chat_style style) {
    return cm->params.thinking >= 0 ? cm->params.thinking : style == DS_CHAT_QWEN3;
}

static int run_chat(session *S) {
    const cli_args *a = S->a;
    ds_chat_style style = a->style != DS_CHAT_UNKNOWN ? a->style : ds_model_chat_style(S->m);
    if (style == DS_CHAT_UNKNOWN) {
        fprintf(stderr,
                "deepseek: %s: %s; pick one of the known formats with --chat-template NAME "
                "(--chat-template list), or use -p for plain completion\n",
                a->model,
                ds_model_chat_template(S->m) ? "its chat template is not one this program knows"
                                             : "the file has no chat template (tokenizer.chat_template)");
        return -1;
    }
    chat_mode cm = chat_mode_for(a, style);
    cm.params.style = style;
    int tty = isatty(STDIN_FILENO), rc = 0;
    text_out o = {.hide = a->hide_reasoning, .dim = isatty(STDOUT_FILENO) && !getenv("NO_COLOR"), .fp = stdout};
    history h = {0};
    if (a->system && add_message(&h, "system", strdup(a->system))) return -1;
    fprintf(stderr, "deepseek: chatting with the %s template%s; Ctrl-C stops an answer, Ctrl-D or /exit leaves\n",
            ds_chat_style_name(style),
            !ds_chat_has_thinking_switch(style) ? ""
            : thinks(&cm, style)                ? " (thinking on)"
                                                : " (thinking off)");
    char *first = a->prompt ? strdup(a->prompt) : NULL;
    if (a->file) {
        size_t len;
        first = text_read_file("deepseek", a->file, &len);
        if (!first) rc = -1;
    }
    while (!rc) {
        char *turn = first ? first : read_turn(tty);
        first = NULL;
        if (!turn || !strcmp(turn, "/exit")) {
            free(turn);
            break;
        }
        size_t len = strlen(turn);
        if (!(turn = text_repair("deepseek", "the message", turn, &len))) {
            rc = -1;
            break;
        }
        if (add_message(&h, "user", turn)) {
            rc = -1;
            break;
        }
        catch_sigint();
        int r = chat_turn(S, &h, &cm, &o);
        if (r > 0) drop_message(&h); /* too long: forget it, keep chatting */
        if (r < 0) rc = -1;
    }
    while (h.n) drop_message(&h);
    free(h.msg);
    return rc;
}

static void timings(const session *S, double ms_load) {
    fflush(stdout); /* the text first, where both go to one place */
    fprintf(stderr,
            "timings: load %.1f ms | prompt %d tokens %.1f ms (%.2f tok/s) | generation %d tokens %.1f ms (%.2f tok/s) "
            "| %d threads | seed %llu\n",
            ms_load, S->n_prompt, S->ms_prompt, S->n_prompt * 1e3 / (S->ms_prompt + 1e-9), S->n_gen, S->ms_gen,
            S->n_gen * 1e3 / (S->ms_gen + 1e-9), ds_context_n_threads(S->ctx), (unsigned long long)S->a->sp.seed);
}

/* A vocabulary-only file: the prompt's ids are all it can give. */
static int run_vocab_only(const cli_args *a, const ds_model *m) {
    int32_t *ids;
    int n;
    if (a->chat || prompt_ids(a, m, &ids, &n, NULL)) {
        if (a->chat)
            fprintf(stderr, "deepseek: %s holds only a vocabulary: it can tokenize a prompt, not chat\n", a->model);
        return 1;
    }
    fprintf(stderr, "deepseek: %s holds only a vocabulary; the prompt's token ids:\n", a->model);
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
    free(ids);
    return 0;
}

static int run(const cli_args *a) {
    char err[512];
    session S = {.a = a};
    double t0 = now_ms();
    if (ds_model_load_params(a->model, &a->mp, &S.m, err, sizeof err)) {
        fprintf(stderr, "deepseek: %s\n", err);
        return 1;
    }
    if (a->verbose) fprintf(stderr, "%s\nkernels: %s\n", ds_model_desc(S.m), ds_simd_level());
    int rc = 1;
    if (!ds_model_n_layer(S.m)) {
        rc = run_vocab_only(a, S.m);
        ds_model_free(S.m);
        return rc;
    }
    ds_context_params p = ds_context_default_params();
    p.n_ctx = a->n_ctx;
    p.n_threads = a->n_threads;
    p.n_batch = a->n_batch;
    p.cache_type = a->cache_type;
    if (ds_context_new(S.m, &p, &S.ctx, err, sizeof err)) fprintf(stderr, "deepseek: %s\n", err);
    else if (ds_sampler_new(&a->sp, ds_model_n_vocab(S.m), &S.smp, err, sizeof err))
        fprintf(stderr, "deepseek: %s\n", err);
    else {
        double ms_load = now_ms() - t0;
        if (a->verbose) {
            size_t bytes = ds_context_cache_bytes(S.ctx);
            int n = ds_context_n_ctx(S.ctx);
            fprintf(stderr,
                    "cache (MLA latents or K/V, indexer keys): %s, %zu bytes per token, %.1f MiB for %d positions\n",
                    ds_type_name((ds_type)p.cache_type), bytes / (size_t)n, (double)bytes / 1048576.0, n);
        }
        if (!a->chat) catch_sigint();
        rc = (a->chat ? run_chat(&S) : run_once(&S)) ? 1 : 0;
        if (!rc) timings(&S, ms_load); /* after an error, its message is the last line */
    }
    free(S.past);
    ds_sampler_free(S.smp);
    ds_context_free(S.ctx);
    ds_model_free(S.m);
    return rc;
}

int main(int argc, char **argv) {
    cli_args a = {0};
    if (parse_args(argc, argv, &a)) return 1;
    return run(&a);
}
