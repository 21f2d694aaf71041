/* sha256_accel: the SHA-256 block function mbedtls calls. On x86-64 the SHA
 * extensions (through MBEDTLS_SHA256_PROCESS_ALT, see vmsnap_mbedtls.h) when
 * CPUID has them, else mbedtls's C code (sha256_portable.c); on aarch64
 * mbedtls's own ARMv8 code decides and this file only names the choice. */
#define MBEDTLS_ALLOW_PRIVATE_ACCESS
#include "sha256_accel.h"

#include <stdlib.h>
#include <string.h>

#include "mbedtls/sha256.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

/* From sha256_portable.c: mbedtls's C block function and its round
 * constants, so that the binary holds one copy of each. */
int sha_portable_block(mbedtls_sha256_context *ctx, const unsigned char data[64]);
extern const uint32_t *const sha_k;

enum { IMPL_UNKNOWN, IMPL_PORTABLE, IMPL_X86 };
/* Written once by whichever hash comes first; detection is idempotent, so
 * threads racing to it store the same value. */
static int impl;

#define SHA_NI __attribute__((target("sha,sse4.1,ssse3")))

/* n blocks into st[0..7] = A..H. The instructions keep the state as two
 * registers, ABEF and CDGH (lane 3 first), and take two rounds' W+K. */
SHA_NI static void x86_blocks(uint32_t st[8], const uint8_t *p, size_t n)
{
	const __m128i be32 = _mm_set_epi64x(0x0c0d0e0f08090a0bll, 0x0405060700010203ll);
	__m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)st), 0xb1);
	__m128i cdgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(st + 4)), 0x1b);
	__m128i abef = _mm_alignr_epi8(t, cdgh, 8);

	cdgh = _mm_blend_epi16(cdgh, t, 0xf0);
	for (; n; n--, p += 64) {
		__m128i abef0 = abef, cdgh0 = cdgh, w[4];
		for (int i = 0; i < 4; i++)
			w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), be32);
		/* Four rounds per pass; w[] holds W[i..i+15] and gains W[i+16..i+19]
		 * (the last three passes compute words no round uses). */
		for (int i = 0; i < 64; i += 4) {
			__m128i wk = _mm_add_epi32(w[0], _mm_loadu_si128((const __m128i *)(sha_k + i)));
			__m128i next = _mm_sha256msg1_epu32(w[0], w[1]);
			next = _mm_add_epi32(next, _mm_alignr_epi8(w[3], w[2], 4));
			next = _mm_sha256msg2_epu32(next, w[3]);
			cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
			abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0e));
			w[0] = w[1], w[1] = w[2], w[2] = w[3], w[3] = next;
		}
		abef = _mm_add_epi32(abef, abef0);
		cdgh = _mm_add_epi32(cdgh, cdgh0);
	}
	t = _mm_shuffle_epi32(abef, 0x1b);
	cdgh = _mm_shuffle_epi32(cdgh, 0xb1);
	_mm_storeu_si128((__m128i *)st, _mm_blend_epi16(t, cdgh, 0xf0));
	_mm_storeu_si128((__m128i *)(st + 4), _mm_alignr_epi8(cdgh, t, 8));
}

static int detect(void)
{
	unsigned a, b, c, d;
	const char *e = getenv("VMSNAP_SHA256");

	if (e && !strcmp(e, "portable"))
		return IMPL_PORTABLE;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1))
		return IMPL_PORTABLE;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_SHA))
		return IMPL_PORTABLE;
	return IMPL_X86;
}

static int current(void)
{
	int i = __atomic_load_n(&impl, __ATOMIC_RELAXED);

	if (i == IMPL_UNKNOWN) {
		i = detect();
		__atomic_store_n(&impl, i, __ATOMIC_RELAXED);
	}
	return i;
}

/* mbedtls 3.6 calls this once per 64-byte block: its multi-block loop is
 * static in sha256.c. Converting the state at every call costs about 7%
 * against one call for all blocks (measured), not worth patching mbedtls. */
int mbedtls_internal_sha256_process(mbedtls_sha256_context *ctx, const unsigned char data[64])
{
	if (current() != IMPL_X86)
		return sha_portable_block(ctx, data);
	x86_blocks(ctx->state, data, 1);
	return 0;
}

const char *sha_impl_name(void)
{
	return current() == IMPL_X86 ? "x86-sha" : "portable";
}

int sha_force_portable(int on)
{
	__atomic_store_n(&impl, on ? IMPL_PORTABLE : IMPL_UNKNOWN, __ATOMIC_RELAXED);
	return 0;
}

#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_SHA2
#define HWCAP_SHA2 (1 << 6)
#endif

/* The test mbedtls makes (sha256.c, ..._USE_ARMV8_A_CRYPTO_IF_PRESENT). */
const char *sha_impl_name(void)
{
	return getauxval(AT_HWCAP) & HWCAP_SHA2 ? "armv8" : "portable";
}

int sha_force_portable(int on)
{
	(void)on;
	return -1;
}
#endif
