/* test_sha256: mbedtls's SHA-256 on each block function this machine can
 * run (the CPU's SHA instructions, portable C), against the FIPS 180-4
 * examples and against openssl on random data, whole and in odd pieces. */
#include "helpers.h"
#include "sha256_accel.h"

#include <time.h>

#include "mbedtls/sha256.h"

#define SMALL_MAX 1000 /* every length 0..SMALL_MAX */
#define POOL (2 * SMALL_MAX)
#define N_BIG 3

static const size_t big_len[N_BIG] = { 1u << 20, (3u << 20) + 17, (8u << 20) - 1 };
static char dir[64];
static uint8_t pool[POOL], *big[N_BIG];
static uint8_t want_small[SMALL_MAX + 1][SIG_HASH], want_big[N_BIG][SIG_HASH];

static const uint8_t *small_data(size_t len)
{
	return pool + len * 7919 % SMALL_MAX; /* a different slice per length */
}

static void fill_random(uint8_t *p, size_t len, uint64_t *s)
{
	for (size_t i = 0; i < len; i++) {
		*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
		p[i] = (uint8_t)(*s >> 24);
	}
}

static void hex_to_bin(const char *hex, uint8_t out[SIG_HASH])
{
	for (unsigned i = 0; i < SIG_HASH; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
			fail_msg("openssl printed '%s'", hex);
}

/* The expected digests: openssl over one file per input, in one run. */
static int setup(void **st)
{
	uint64_t seed = (uint64_t)time(NULL) | 1;
	char path[128], cmd[256], hex[65], name[64];
	FILE *p;
	int n = 0, i;

	(void)st;
	printf("# random data seed %llu\n", (unsigned long long)seed);
	tu_mkdtemp(dir);
	fill_random(pool, POOL, &seed);
	for (i = 0; i <= SMALL_MAX; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		tu_write_file(tu_path(path, dir, name), small_data((size_t)i), (size_t)i);
	}
	for (i = 0; i < N_BIG; i++) {
		big[i] = malloc(big_len[i]);
		assert_non_null(big[i]);
		fill_random(big[i], big_len[i], &seed);
		snprintf(name, sizeof(name), "b%d", i);
		tu_write_file(tu_path(path, dir, name), big[i], big_len[i]);
	}
	snprintf(cmd, sizeof(cmd), "cd '%s' && openssl dgst -sha256 -r s* b*", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fscanf(p, "%64s *%63s", hex, name) == 2) {
		int k = atoi(name + 1);
		if (name[0] == 's' && k >= 0 && k <= SMALL_MAX)
			hex_to_bin(hex, want_small[k]);
		else if (name[0] == 'b' && k >= 0 && k < N_BIG)
			hex_to_bin(hex, want_big[k]);
		else
			fail_msg("openssl named '%s'", name);
		n++;
	}
	assert_int_equal(pclose(p), 0);
	assert_int_equal(n, SMALL_MAX + 1 + N_BIG);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	for (int i = 0; i < N_BIG; i++)
		free(big[i]);
	tu_rmtree(dir);
	sha_force_portable(0);
	return 0;
}

static int cpu_has_sha_ni(void)
{
	char line[4096];
	int yes = 0;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && !yes && fgets(line, sizeof(line), f))
		yes = !strncmp(line, "flags", 5) && strstr(line, " sha_ni");
	if (f)
		fclose(f);
	return yes;
}

/* Selects a path and proves it is the one that runs. */
static void use(int portable)
{
	unsetenv("VMSNAP_SHA256");
	/* A portable-only build, or aarch64 (mbedtls decides): no forcing. */
	if (sha_force_portable(portable) < 0 && portable)
		skip();
	if (portable)
		assert_string_equal(sha_impl_name(), "portable");
	else if (cpu_has_sha_ni())
		assert_string_equal(sha_impl_name(), "x86-sha");
}

/* Pieces of odd sizes, starting at a different place in the cycle. */
static void hash_pieces(const uint8_t *p, size_t len, size_t salt, uint8_t out[SIG_HASH])
{
	static const size_t piece[] = { 1, 63, 64, 65, 7, 128, 200, 3, 4101, 0, 127 };
	mbedtls_sha256_context c;

	mbedtls_sha256_init(&c);
	assert_int_equal(mbedtls_sha256_starts(&c, 0), 0);
	for (size_t i = salt; len; i++) {
		size_t n = piece[i % (sizeof(piece) / sizeof(piece[0]))];
		n = n < len ? n : len;
		assert_int_equal(mbedtls_sha256_update(&c, p, n), 0);
		p += n, len -= n;
	}
	assert_int_equal(mbedtls_sha256_finish(&c, out), 0);
	mbedtls_sha256_free(&c);
}

static void check(const uint8_t *p, size_t len, const uint8_t want[SIG_HASH], const char *what)
{
	uint8_t got[SIG_HASH];

	assert_int_equal(mbedtls_sha256(p, len, got, 0), 0);
	if (memcmp(got, want, SIG_HASH))
		fail_msg("%s (%zu bytes, %s): whole input: wrong digest", what, len, sha_impl_name());
	hash_pieces(p, len, len, got);
	if (memcmp(got, want, SIG_HASH))
		fail_msg("%s (%zu bytes, %s): in pieces: wrong digest", what, len, sha_impl_name());
}

static void check_hex(const char *msg, const char *hex)
{
	uint8_t want[SIG_HASH];

	hex_to_bin(hex, want);
	check((const uint8_t *)msg, strlen(msg), want, msg);
}

/* FIPS 180-4 examples (NIST's SHA256.pdf and SHA2_Additional). */
static void nist(int portable)
{
	static uint8_t a[1000000];
	uint8_t want[SIG_HASH];

	use(portable);
	check_hex("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_hex("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
		  "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
	memset(a, 'a', sizeof(a));
	hex_to_bin("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", want);
	check(a, sizeof(a), want, "one million 'a'");
}

static void test_nist_examples_accelerated(void **st)
{
	(void)st;
	nist(0);
}

static void test_nist_examples_portable(void **st)
{
	(void)st;
	nist(1);
}

static void against_openssl(int portable)
{
	use(portable);
	for (size_t len = 0; len <= SMALL_MAX; len++)
		check(small_data(len), len, want_small[len], "random");
	for (int i = 0; i < N_BIG; i++)
		check(big[i], big_len[i], want_big[i], "random");
}

static void test_openssl_agrees_accelerated(void **st)
{
	(void)st;
	against_openssl(0);
}

static void test_openssl_agrees_portable(void **st)
{
	(void)st;
	against_openssl(1);
}

/* On a CPU with the SHA extensions the accelerated path must be the one
 * chosen, and VMSNAP_SHA256=portable must override it. */
static void test_choice_follows_cpu_and_environment(void **st)
{
	(void)st;
	unsetenv("VMSNAP_SHA256");
	if (sha_force_portable(0) < 0)
		skip();
	assert_string_equal(sha_impl_name(), cpu_has_sha_ni() ? "x86-sha" : "portable");
	setenv("VMSNAP_SHA256", "portable", 1);
	sha_force_portable(0);
	assert_string_equal(sha_impl_name(), "portable");
	unsetenv("VMSNAP_SHA256");
	sha_force_portable(0);
	assert_string_equal(sha_impl_name(), cpu_has_sha_ni() ? "x86-sha" : "portable");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_choice_follows_cpu_and_environment),
		cmocka_unit_test(test_nist_examples_accelerated),
		cmocka_unit_test(test_nist_examples_portable),
		cmocka_unit_test(test_openssl_agrees_accelerated),
		cmocka_unit_test(test_openssl_agrees_portable),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
