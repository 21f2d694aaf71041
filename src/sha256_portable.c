/* sha256_portable: mbedtls's C SHA-256 block function as the fallback of
 * sha256_accel.c on x86-64. MBEDTLS_SHA256_PROCESS_ALT leaves it out of
 * library/sha256.c, so this file compiles sha256.c once more without ALT and
 * with its public names renamed: the fallback stays mbedtls's code rather
 * than a copy or a second implementation. Of this second copy only the block
 * function and the round constants are used; the linker drops the rest. */
#include "../dl/mbedtls/library/common.h" /* reads vmsnap_mbedtls.h first */

#if defined(MBEDTLS_SHA256_PROCESS_ALT)
#undef MBEDTLS_SHA256_PROCESS_ALT
#define mbedtls_internal_sha256_process sha_portable_block
#define mbedtls_sha256_init sha_portable_init
#define mbedtls_sha256_free sha_portable_free
#define mbedtls_sha256_clone sha_portable_clone
#define mbedtls_sha256_starts sha_portable_starts
#define mbedtls_sha256_update sha_portable_update
#define mbedtls_sha256_finish sha_portable_finish
#define mbedtls_sha256 sha_portable_sha256
#include "../dl/mbedtls/library/sha256.c"

const uint32_t *const sha_k = K;
#endif
