/* args.h - command-line helpers shared by the tools. */
#ifndef DS_TOOLS_ARGS_H
#define DS_TOOLS_ARGS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
