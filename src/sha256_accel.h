/* sha256_accel: which SHA-256 block function mbedtls runs (hardware SHA-256
 * where the CPU has it, chosen at run time; portable C otherwise). */
#ifndef VMSNAP_SHA256_ACCEL_H
#define VMSNAP_SHA256_ACCEL_H

#include "config.h"

#if !CONFIG_SHA256_PORTABLE && (defined(__x86_64__) || defined(__aarch64__))
/* "x86-sha" (SHA extensions), "armv8" (ARMv8 crypto extensions) or
 * "portable". VMSNAP_SHA256=portable in the environment forces the last
 * on x86-64 (read once, at the first hash). */
const char *sha_impl_name(void);
/* For tests: on = 1 forces the portable block function, on = 0 chooses
 * again (CPU and environment). -1 when this build cannot switch at run time
 * (on aarch64 mbedtls alone decides). Not to be called while hashing. */
int sha_force_portable(int on);
#else
static inline const char *sha_impl_name(void)
{
	return "portable";
}
static inline int sha_force_portable(int on)
{
	(void)on;
	return -1;
}
#endif

#endif
