/* errmsg.h - the tools' error reporting: a one-line message into the caller's buffer. */
#ifndef DS_TOOLS_ERRMSG_H
#define DS_TOOLS_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#else
#define PRINTF_LIKE(a, b)
#endif

/* Writes the message (when there is a buffer) and returns -1, so that `return tool_fail(...)` reports and fails. */
PRINTF_LIKE(3, 4)
static inline int tool_fail(char *err, size_t err_size, const char *fmt, ...) {
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A writer that failed removes its partial output, which would only fail later, further from
   the cause; but only a regular file: `-o /dev/full` (or any device, run as root) stays. */
static inline void remove_partial(const char *path) {
    struct stat st;
    if (!stat(path, &st) && S_ISREG(st.st_mode)) unlink(path);
}

#endif
