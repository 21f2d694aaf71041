/* mbedtls configuration owned by vmsnap: only what image signing uses
 * (ECDSA P-256 over SHA-256, PEM keys, an HMAC-DRBG seeded by the kernel). */
#ifndef VMSNAP_MBEDTLS_CONFIG_H
#define VMSNAP_MBEDTLS_CONFIG_H

#define MBEDTLS_HAVE_ASM
#define MBEDTLS_HAVE_TIME

/* Elliptic curve: P-256 only, with the NIST fast reduction. */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECDSA_C
/* RFC 6979 nonces: signing needs no entropy, so a factory signer with a
 * weak RNG cannot leak its key through repeated nonces. */
#define MBEDTLS_ECDSA_DETERMINISTIC
#define MBEDTLS_HMAC_DRBG_C

/* Hashes: SHA-256 for digests and signatures; the entropy pool too. */
#define MBEDTLS_MD_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_ENTROPY_FORCE_SHA256

/* SHA-256 blocks on the CPU's SHA instructions when it has them (checked at
 * run time), mbedtls's C code otherwise; see src/sha256_accel.c.
 * CONFIG_SHA256_PORTABLE leaves only the C code. */
#include "config.h"
#if !CONFIG_SHA256_PORTABLE && defined(__x86_64__)
#define MBEDTLS_SHA256_PROCESS_ALT
#elif !CONFIG_SHA256_PORTABLE && defined(__aarch64__)
#define MBEDTLS_SHA256_USE_ARMV8_A_CRYPTO_IF_PRESENT
#endif

/* Keys: PKCS#8/SEC1 private keys and SubjectPublicKeyInfo, in PEM. */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PK_WRITE_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_PEM_WRITE_C
#define MBEDTLS_BASE64_C

#endif
