/* args.h - command-line parsing shared by the tools.

   Every usage error is worded here, once, so that all the tools say the same thing for the same
   mistake and a script sees exit status 1 from any of them:

     PROG: unknown option '--x' (see PROG --help)
     PROG: unexpected argument 'x' (see PROG --help)
     PROG: -t: missing value
     PROG: -t needs an integer in [1, 1024], got 'abc'
     PROG: no model given (-m FILE; see PROG --help)

   A tool walks its arguments with an args_it; a helper that finds a mistake reports it and
   marks the walk failed, which ends it, so a parser checks once at the end. */
#ifndef DS_TOOLS_ARGS_H
#define DS_TOOLS_ARGS_H

#include "deepseek.h"
#include "errmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole of s as an integer in [lo, hi]; otherwise one line on stderr, prefixed with prog,
   and -1. */
static inline int args_int(const char *prog, const char *opt, const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "%s: %s needs an integer in [%d, %d], got '%s'\n", prog, opt, lo, hi, s ? s : "");
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* The whole of s as a number in [lo, hi]; otherwise one line on stderr and -1. */
static inline int args_float(const char *prog, const char *opt, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: %s needs a number in [%g, %g], got '%s'\n", prog, opt, lo, hi, s ? s : "");
        return -1;
    }
    *out = (float)v;
    return 0;
}

typedef struct {
    const char *prog;
    int argc, i; /* argv[i]: the argument being looked at */
    char **argv;
    int failed;        /* a usage error was reported */
    const char *cache; /* the first -ctk / -ctv value given */
} args_it;

static inline args_it args_begin(const char *prog, int argc, char **argv) {
    return (args_it){.prog = prog, .argc = argc, .argv = argv};
}

/* The next argument; NULL at the end, or once a mistake has been reported. */
static inline const char *args_next(args_it *it) {
    if (it->failed || it->i + 1 >= it->argc) return NULL;
    return it->argv[++it->i];
}

/* Whether o is one of names, which are separated by '|' ("-t|--threads"). */
static inline int args_is(const char *o, const char *names) {
    size_t n = strlen(o);
    for (const char *p = names;; p++) {
        size_t k = strcspn(p, "|");
        if (k == n && !strncmp(p, o, n)) return 1;
        p += k;
        if (!*p) return 0;
    }
}

/* An option without a value: its names and the int it sets to 1. */
typedef struct {
    const char *names;
    int *set;
} args_flag;

/* 1 when o is one of the n flags, which is then set. */
static inline int args_flags(const char *o, const args_flag *f, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (args_is(o, f[i].names)) return *f[i].set = 1;
    return 0;
}

/* Reports a usage error, "PROG: ...", ending the walk; returns -1. */
PRINTF_LIKE(2, 3)
static inline int args_fail(args_it *it, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", it->prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    it->failed = 1;
    return -1;
}

/* The current argument is not one the tool takes. */
static inline int args_unknown(args_it *it) {
    const char *o = it->argv[it->i];
    return args_fail(it, "%s '%s' (see %s --help)", o[0] == '-' && o[1] ? "unknown option" : "unexpected argument", o,
                     it->prog);
}

/* A required argument is absent: what ("model") and how to give it ("-m FILE"). */
static inline int args_none_given(args_it *it, const char *what, const char *how) {
    return args_fail(it, "no %s given (%s; see %s --help)", what, how, it->prog);
}

/* The current option's value (the next argument, consumed); NULL, reported, when there is none. */
static inline const char *args_value(args_it *it) {
    if (it->i + 1 >= it->argc) {
        args_fail(it, "%s: missing value", it->argv[it->i]);
        return NULL;
    }
    return it->argv[++it->i];
}

/* The current option's value as an integer in [lo, hi]; 0, or -1 reported. */
static inline int args_value_int(args_it *it, int lo, int hi, int *out) {
    const char *o = it->argv[it->i], *v = args_value(it);
    if (v && args_int(it->prog, o, v, lo, hi, out)) it->failed = 1;
    return it->failed ? -1 : 0;
}

static inline int args_value_float(args_it *it, double lo, double hi, float *out) {
    const char *o = it->argv[it->i], *v = args_value(it);
    if (v && args_float(it->prog, o, v, lo, hi, out)) it->failed = 1;
    return it->failed ? -1 : 0;
}

/* -h/--help prints usage on stdout, --version "PROG VERSION" (and the kernel level for the tools
   whose speed depends on it); both end the program with status 0. 0 when o is neither. */
static inline int args_help_version(const args_it *it, const char *o, void (*usage)(FILE *), int kernels) {
    if (args_is(o, "-h|--help")) usage(stdout);
    else if (args_is(o, "--version")) {
        printf("%s %s\n", it->prog, ds_version());
        if (kernels) printf("kernels: %s\n", ds_simd_level());
    } else return 0;
    exit(fflush(stdout) ? 1 : 0);
}

/* llama.cpp's flags that mean nothing in this CPU build are taken, with a note, so that a script
   written for llama.cpp runs unchanged: -ngl N, -fa [on|off|auto] and --no-warmup. 1 when o was
   one of them. */
static inline int args_llama_ignored(args_it *it, const char *o) {
    if (args_is(o, "-ngl|--n-gpu-layers|--gpu-layers")) {
        if (args_value(it)) fprintf(stderr, "%s: no GPU offload in this build: %s ignored\n", it->prog, o);
    } else if (args_is(o, "-fa|--flash-attn")) {
        /* llama.cpp takes -fa alone (older releases) or with a value (newer ones; llama-bench 0|1) */
        const char *v = it->i + 1 < it->argc ? it->argv[it->i + 1] : NULL;
        if (v && args_is(v, "on|off|auto|0|1")) it->i++;
        fprintf(stderr, "%s: attention has one CPU kernel here, flash or not: %s ignored\n", it->prog, o);
    } else if (args_is(o, "--no-warmup")) {
        fprintf(stderr, "%s: there is no warm-up run to skip: %s ignored\n", it->prog, o);
    } else return 0;
    return 1;
}

/* -ctk / -ctv TYPE, llama.cpp's cache types: the latent cache's row type (ds_context_params.
   cache_type). MLA caches one latent for keys and values, so -ctk and -ctv name the same thing
   and must agree; llama.cpp's other types are refused rather than silently run as another. */
static inline void args_cache_type(args_it *it, int *cache_type) {
    static const struct {
        const char *name;
        ds_type type;
    } T[] = {{"f32", DS_TYPE_F32}, {"f16", DS_TYPE_F16}, {"bf16", DS_TYPE_BF16}, {"q8_0", DS_TYPE_Q8_0}};
    const char *o = it->argv[it->i], *v = args_value(it);
    if (!v) return;
    if (it->cache && strcmp(it->cache, v)) {
        args_fail(it, "%s %s: MLA caches one latent for keys and values, and it was already given as %s", o, v,
                  it->cache);
        return;
    }
    it->cache = v;
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (!strcmp(v, T[i].name)) {
            *cache_type = (int)T[i].type;
            return;
        }
    if (args_is(v, "q4_0|q4_1|iq4_nl|q5_0|q5_1"))
        args_fail(it, "%s %s: the latent cache is f32, f16, bf16 or q8_0 in this build", o, v);
    else args_fail(it, "%s: unknown cache type '%s' (f32, f16, bf16 or q8_0)", o, v);
}

/* The options of llama.cpp's common set that the model-running tools share: -b N, -ctk / -ctv,
   --mlock and --no-mmap (when mp is not NULL), and the ignored ones. 1 when o was one of them. */
static inline int args_model_opt(args_it *it, const char *o, int *n_batch, int *cache_type, ds_model_params *mp) {
    if (args_is(o, "-b|--batch-size")) args_value_int(it, 1, 1 << 24, n_batch);
    else if (args_is(o, "-ctk|--cache-type-k|-ctv|--cache-type-v")) args_cache_type(it, cache_type);
    else if (mp && args_is(o, "--mlock")) mp->use_mlock = 1;
    else if (mp && args_is(o, "--no-mmap")) mp->use_mmap = 0;
    else return args_llama_ignored(it, o);
    return 1;
}

/* The help lines of args_model_opt's options (-b's default differs per tool), in the tools'
   columns. */
#define ARGS_CACHE_HELP                                                                     \
    "  -ctk, --cache-type-k T  the latent cache's type: f32 (default), f16, bf16 or q8_0\n" \
    "  -ctv, --cache-type-v T  the same (MLA caches one latent, no separate V)\n"
#define ARGS_LOAD_HELP                                                                       \
    "      --mlock             lock the weights in RAM, never paged out (needs ulimit -l)\n" \
    "      --no-mmap           read the file into memory instead of mapping it\n"
#define ARGS_IGNORED_HELP                                                                      \
    "llama.cpp's -ngl N, -fa [on|off|auto] and --no-warmup are accepted and ignored, with a\n" \
    "note on stderr: this build runs on the CPU only.\n"

#endif
