/* pattern.h - the vmsnap guest memory pattern, shared by the guest kernel and patcheck.
 * Other tools reimplement it byte for byte: never change constants or word order. */
#ifndef VMSNAP_PATTERN_H
#define VMSNAP_PATTERN_H
#include <stdint.h>

/* Per-page xorshift state: splitmix64 decorrelates neighbouring pages. */
static inline uint64_t pat_first(uint64_t seed, uint64_t pa)
{
	uint64_t z = (seed ^ pa) + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? z : 1; /* xorshift would stay at zero forever */
}

static inline uint64_t pat_next(uint64_t x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

/* Unrolled so that under TCG one translation block stores many words. */
static inline void pat_page(uint64_t *w, uint64_t seed, uint64_t pa)
{
	uint64_t x = pat_first(seed, pa);
#pragma GCC unroll 32
	for (int i = 0; i < 512; i++)
		w[i] = x = pat_next(x);
}

#endif
