/* arm_dotprod.c - the "dotprod" level: arm_neon.c compiled a second time, its int8 dot products
   on SDOT. meson.build gives this file -march=armv8.2-a+dotprod; dispatch.c calls it only where
   the kernel reports HWCAP_ASIMDDP. */
#define DS_ARM_DOTPROD 1
#include "arm_neon.c"
