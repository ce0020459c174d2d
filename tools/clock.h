/* clock.h - wall-clock time for the tools' timings. */
#ifndef DS_TOOLS_CLOCK_H
#define DS_TOOLS_CLOCK_H

#include <time.h>

/* Seconds on the monotonic clock. */
static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
