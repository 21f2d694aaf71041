/* test_copy: copy_run's digest of what it copies (provision hashes the
 * stream as it reads it) equals sig_payload_digest of the source: holes fed
 * as zeros, a region that starts and ends inside blocks, several blocks per
 * range, through the page cache and with O_DIRECT; the target holds the
 * source's bytes. */
#include "helpers.h"
#include "copy.h"
#include "sign.h"

#define MIB (1u << 20)

/* 13 MiB + 777 bytes: data, a 4 MiB hole, data over more than two copy
 * blocks, a hole to the end; every all-zero 4 KiB block left a hole. */
static uint8_t *source(const char *name, size_t *n, int *fd)
{
	char path[4096];
	uint8_t *b;

	*n = 13 * MIB + 777;
	b = malloc(*n);
	assert_non_null(b);
	for (size_t i = 0; i < *n; i++)
		b[i] = (uint8_t)(i * 131 + (i >> 12) + 1);
	memset(b + 5 * MIB + 100, 0, 4 * MIB - 100);
	memset(b + 12 * MIB + 4096, 0, *n - 12 * MIB - 4096);
	*fd = open(tu_path(path, tu_dir, name), O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(*fd >= 0);
	for (size_t off = 0; off < *n; off += 4096) {
		static const uint8_t zero[4096];
		size_t len = *n - off < 4096 ? *n - off : 4096;
		if (!memcmp(b + off, zero, len))
			continue;
		assert_int_equal(pwrite(*fd, b + off, len, (off_t)off), (ssize_t)len);
	}
	assert_int_equal(ftruncate(*fd, (off_t)*n), 0);
	return b;
}

/* Copy [4096, n) of in to a fresh file, hashing [dig_off, dig_end) in
 * chunks of `chunk`; the root into out, the target's fd returned. direct:
 * the target written with O_DIRECT, so the source is read with it too. */
static int copy_hashed(int in, size_t n, bool sparse, bool direct, uint32_t chunk,
		       uint64_t dig_off, uint64_t dig_end, uint8_t out[SIG_HASH])
{
	char path[4096];
	struct copy c = { .in = in, .dout = -1, .off = 4096, .end = n, .sparse = sparse,
			  .what = "test", .src = "src", .dst = "dst", .dig_off = dig_off,
			  .dig_end = dig_end };

	c.out = open(tu_path(path, tu_dir, "dst"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(c.out >= 0);
	assert_int_equal(ftruncate(c.out, (off_t)n), 0);
	if (direct)
		assert_true((c.dout = open(path, O_WRONLY | O_DIRECT)) >= 0);
	assert_non_null(c.digest = sig_stream_new(chunk));
	if (copy_plan(&c) < 0 || copy_run(&c) < 0)
		fail_msg("copy_run: %s", tu_msg());
	assert_int_equal(sig_stream_finish(c.digest, out, NULL), 0);
	sig_stream_free(c.digest);
	if (direct) {
		assert_true(c.direct > 0);
		close(c.dout);
	}
	return c.out;
}

static void want_digest(int fd, uint64_t off, uint64_t end, uint32_t chunk, uint8_t out[SIG_HASH])
{
	if (sig_payload_digest(fd, off, end - off, chunk, 2, out) < 0)
		fail_msg("sig_payload_digest: %s", tu_msg());
}

static void test_digest_of_the_copy_equals_the_sources(void **s)
{
	static const uint32_t chunks[] = { 4096, MIB };
	size_t n;
	int in;
	uint8_t *b = source("src", &n, &in), got[SIG_HASH], want[SIG_HASH];
	const uint64_t regions[][2] = { { 4096, n }, { 3 * 4096 + 5, n - 1000 }, { 6 * MIB, 7 * MIB } };

	(void)s;
	for (int mode = 0; mode < 4; mode++) /* sparse, direct */
		for (size_t i = 0; i < ARRAY_SIZE(chunks); i++)
			for (size_t r = 0; r < ARRAY_SIZE(regions); r++) {
				int out = copy_hashed(in, n, mode & 1, mode & 2, chunks[i],
						      regions[r][0], regions[r][1], got);
				want_digest(in, regions[r][0], regions[r][1], chunks[i], want);
				if (memcmp(got, want, SIG_HASH))
					fail_msg("sparse %d, direct %d, chunk %u, region %zu: wrong root",
						 mode & 1, mode >> 1, chunks[i], r);
				close(out);
			}
	free(b);
	close(in);
}

static void test_the_target_holds_the_sources_bytes_and_holes(void **s)
{
	size_t n;
	int in, out;
	uint8_t *b = source("src", &n, &in), *t = malloc(n), d[SIG_HASH];
	struct stat si, so;

	(void)s;
	assert_non_null(t);
	for (int direct = 0; direct <= 1; direct++) {
		out = copy_hashed(in, n, true, direct, MIB, 4096, n, d);
		assert_int_equal(pread(out, t, n, 0), (ssize_t)n);
		assert_memory_equal(t + 4096, b + 4096, n - 4096);
		assert_int_equal(fstat(in, &si), 0);
		assert_int_equal(fstat(out, &so), 0);
		assert_true(so.st_blocks <= si.st_blocks); /* the holes stay holes */
		close(out);
	}
	close(in);
	free(t);
	free(b);
}

/* A byte inside the region changes the root, one outside it does not. */
static void test_only_bytes_in_the_region_count(void **s)
{
	size_t n;
	int in;
	uint8_t *b = source("src", &n, &in), base[SIG_HASH], got[SIG_HASH];
	const uint64_t lo = 8192, hi = 11 * MIB;
	const struct { uint64_t at; bool counts; } flips[] = {
		{ lo - 1, false }, { lo, true }, { 5 * MIB + 200, true }, /* in the hole */
		{ 10 * MIB + 3, true }, { hi - 1, true }, { hi, false },
	};

	(void)s;
	close(copy_hashed(in, n, true, false, MIB, lo, hi, base));
	for (size_t i = 0; i < ARRAY_SIZE(flips); i++) {
		uint8_t v = b[flips[i].at] ^ 0x10;
		assert_int_equal(pwrite(in, &v, 1, (off_t)flips[i].at), 1);
		close(copy_hashed(in, n, true, true, MIB, lo, hi, got));
		if (!memcmp(got, base, SIG_HASH) == flips[i].counts)
			fail_msg("byte %llu flipped: root %s", (unsigned long long)flips[i].at,
				 flips[i].counts ? "unchanged" : "changed");
		assert_int_equal(pwrite(in, &b[flips[i].at], 1, (off_t)flips[i].at), 1);
	}
	free(b);
	close(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_digest_of_the_copy_equals_the_sources, tu_dir_setup, tu_dir_teardown),
		cmocka_unit_test_setup_teardown(test_the_target_holds_the_sources_bytes_and_holes,
						tu_dir_setup, tu_dir_teardown),
		cmocka_unit_test_setup_teardown(test_only_bytes_in_the_region_count, tu_dir_setup, tu_dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
