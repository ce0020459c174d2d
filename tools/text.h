/* text.h - reading prompt text for the tools. */
#ifndef DS_TOOLS_TEXT_H
#define DS_TOOLS_TEXT_H

#include "deepseek.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole file (or stdin for "-") in a malloc'd, NUL-terminated buffer; NULL with a message
   on stderr. */
static inline char *text_read_file(const char *prog, const char *path, size_t *len) {
    FILE *fp = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!fp) {
        fprintf(stderr, "%s: %s: cannot open: %s\n", prog, path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n - 1, fp)) > 0) {
        n += k;
        if (cap - n - 1 == 0) {
            char *p = realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                buf = NULL;
            }
            buf = p;
        }
    }
    int bad = !buf || ferror(fp);
    if (fp != stdin) fclose(fp);
    if (bad) {
        fprintf(stderr, "%s: %s: cannot read%s\n", prog, path, buf ? "" : " (out of memory)");
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Text that is not valid UTF-8 is repaired (each invalid sequence becomes U+FFFD), with a
   warning saying how much; the tokenizer itself only takes valid UTF-8. Returns the text to use
   (text itself, or a new buffer, text freed) or NULL when out of memory. */
static inline char *text_repair(const char *prog, const char *what, char *text, size_t *len) {
    char *fixed = malloc(3 * *len + 1);
    if (!fixed) {
        free(text);
        fprintf(stderr, "%s: out of memory\n", prog);
        return NULL;
    }
    size_t bad, n = ds_utf8_lossy(text, *len, fixed, &bad);
    if (!bad) {
        free(fixed);
        return text;
    }
    fprintf(stderr, "%s: warning: %s is not valid UTF-8: %zu invalid sequence%s replaced with U+FFFD\n", prog, what,
            bad, bad == 1 ? "" : "s");
    free(text);
    fixed[n] = 0;
    *len = n;
    return fixed;
}

/* Text to ids in a malloc'd array (never more ids than bytes + BOS), or a message on stderr
   (naming what, the text's file, when not NULL) and -1. */
static inline int text_tokenize(const char *prog, const char *what, const ds_model *m, const char *text, size_t len,
                                int add_bos, int32_t **ids, int *n) {
    char err[256];
    *ids = NULL;
    *n = -1;
    if (len >= INT_MAX) {
        fprintf(stderr, "%s: %s: too long (%zu bytes; at most %d)\n", prog, what ? what : "the text", len, INT_MAX - 1);
        return -1;
    }
    *ids = malloc((len + 1) * sizeof **ids);
    ds_status st = *ids ? ds_tokenize(m, text, len, add_bos, *ids, (int)len + 1, n, err, sizeof err) : DS_ERR_NOMEM;
    if (st == DS_ERR_SMALL_BUFFER) { /* normalization (NFC) made the text longer */
        int32_t *more = realloc(*ids, (size_t)*n * sizeof **ids);
        if (more) *ids = more;
        st = more ? ds_tokenize(m, text, len, add_bos, *ids, *n, n, err, sizeof err) : DS_ERR_NOMEM;
    }
    if (st == DS_OK) return 0;
    if (what && *ids) fprintf(stderr, "%s: %s: %s\n", prog, what, err);
    else fprintf(stderr, "%s: %s\n", prog, *ids ? err : "out of memory");
    free(*ids);
    *ids = NULL;
    return -1;
}

#endif
