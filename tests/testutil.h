/* testutil.h - small helpers shared by the tests. */
#ifndef DS_TESTUTIL_H
#define DS_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The whole file in a malloc'd buffer (*size bytes), or NULL. */
static inline uint8_t *slurp(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    *size = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc(*size ? *size : 1);
    if (b && fread(b, 1, *size, fp) != *size) {
        free(b);
        b = NULL;
    }
    fclose(fp);
    return b;
}

#endif
