/* think.h - the CLI's streamed text, with a model's reasoning (<think> ... </think>) dimmed on
   a terminal or hidden. Output goes to a FILE so that tests can capture it. */
#ifndef DS_TOOLS_THINK_H
#define DS_TOOLS_THINK_H

#include <stdio.h>
#include <string.h>

/* R1 writes its reasoning first and closes it with </think>. The tags arrive split across
   tokens, so a tail that may be the start of one is held back until the next text decides. */
typedef struct {
    int in_think, hide, dim;
    int trim;     /* hiding: the answer's leading blank lines go too */
    int at_start; /* nothing shown yet: "<think>" here opens reasoning */
    char hold[16];
    size_t n_hold;
    FILE *fp;
} text_out;

static inline void show(text_out *o, const char *s, size_t n) {
    if (!n) return;
    if (o->in_think && o->hide) return;
    if (!o->in_think && o->trim) {
        while (n && strchr(" \n", *s)) s++, n--;
        if (!n) return;
        o->trim = 0;
    }
    if (o->in_think && o->dim) fputs("\033[2m", o->fp);
    fwrite(s, 1, n, o->fp);
    if (o->in_think && o->dim) fputs("\033[0m", o->fp);
}

/* The longest tail of s that is a proper prefix of tag. */
static inline size_t partial_tag(const char *s, size_t n, const char *tag) {
    size_t t = strlen(tag);
    for (size_t k = n < t - 1 ? n : t - 1; k > 0; k--)
        if (!memcmp(s + n - k, tag, k)) return k;
    return 0;
}

static inline void text_put(text_out *o, const char *s, size_t n) {
    char buf[4096];
    while (n) {
        size_t k = o->n_hold + n < sizeof buf ? n : sizeof buf - o->n_hold;
        memcpy(buf, o->hold, o->n_hold);
        memcpy(buf + o->n_hold, s, k);
        size_t len = o->n_hold + k, at = 0;
        o->n_hold = 0;
        s += k, n -= k;
        for (;;) {
            const char *tag = o->in_think ? "</think>" : "<think>";
            char *hit = memmem(buf + at, len - at, tag, strlen(tag));
            if (hit && (o->in_think || (o->at_start && hit == buf + at))) {
                size_t end = (size_t)(hit - buf) + strlen(tag);
                if (!o->hide) show(o, buf + at, end - at);
                o->in_think = !o->in_think;
                o->trim = o->hide;
                at = end;
                continue;
            }
            size_t keep = o->in_think || o->at_start ? partial_tag(buf + at, len - at, tag) : 0;
            show(o, buf + at, len - at - keep);
            if (len - at - keep) o->at_start = 0;
            memcpy(o->hold, buf + len - keep, keep);
            o->n_hold = keep;
            break;
        }
    }
    fflush(o->fp);
}

static inline void text_end(text_out *o) {
    show(o, o->hold, o->n_hold);
    o->n_hold = 0;
    if (o->dim) fputs("\033[0m", o->fp);
    fflush(o->fp);
}

#endif
