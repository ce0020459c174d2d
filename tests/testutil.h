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

#ifdef assert_memory_equal /* included after cmocka.h */
/* Two files hold the same bytes. */
static inline void assert_same_file(const char *a, const char *b) {
    size_t na, nb;
    uint8_t *x = slurp(a, &na), *y = slurp(b, &nb);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    free(x);
    free(y);
}
#endif

#endif
