/* test_digest: sig_payload_digest against a reference of its documented
 * format: holes, regions, thread counts, odd lengths, short files. */
#include "helpers.h"
#include "relay.h"
#include "sign.h"

#include "mbedtls/sha256.h"

#define CHUNK 4096u

/* The format (sign_digest.c): SHA-256("vmsnap-payload-v1\0", chunk LE64,
 * length LE64, SHA-256 of each chunk in order), computed from memory. */
static void reference(const uint8_t *data, uint64_t len, uint32_t chunk, uint8_t out[SIG_HASH])
{
	uint8_t hdr[34] = "vmsnap-payload-v1", h[SIG_HASH];
	mbedtls_sha256_context c;

	for (int i = 0; i < 8; i++) {
		hdr[18 + i] = (uint8_t)((uint64_t)chunk >> (8 * i));
		hdr[26 + i] = (uint8_t)(len >> (8 * i));
	}
	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts(&c, 0);
	mbedtls_sha256_update(&c, hdr, sizeof(hdr));
	for (uint64_t off = 0; off < len; off += chunk) {
		sig_sha256(data + off, len - off < chunk ? len - off : chunk, h);
		mbedtls_sha256_update(&c, h, SIG_HASH);
	}
	mbedtls_sha256_finish(&c, out);
	mbedtls_sha256_free(&c);
}

/* n bytes where the 4 KiB blocks listed in `zero` (and the tail past
 * `data_end`) are zero, the rest a pattern. */
static uint8_t *content(size_t n, const int *zero, size_t nz, size_t data_end)
{
	uint8_t *b = malloc(n);

	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		b[i] = i < data_end ? (uint8_t)(i * 31 + (i >> 12) + 1) : 0;
	for (size_t i = 0; i < nz; i++)
		memset(b + (size_t)zero[i] * 4096, 0, 4096);
	return b;
}

/* Write b to name, dense or with every all-zero 4 KiB block left a hole. */
static int write_file(const char *name, const uint8_t *b, size_t n, bool sparse)
{
	static const uint8_t zero[4096];
	char path[4096];
	int fd = open(tu_path(path, tu_dir, name), O_RDWR | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	for (size_t off = 0; off < n; off += 4096) {
		size_t len = n - off < 4096 ? n - off : 4096;
		if (sparse && !memcmp(b + off, zero, len))
			continue;
		assert_int_equal(pwrite(fd, b + off, len, (off_t)off), (ssize_t)len);
	}
	assert_int_equal(ftruncate(fd, (off_t)n), 0);
	return fd;
}

static void digest(int fd, uint64_t off, uint64_t len, uint32_t chunk, int threads,
		   uint8_t out[SIG_HASH])
{
	if (sig_payload_digest(fd, off, len, chunk, threads, out) < 0)
		fail_msg("sig_payload_digest(%llu, %llu, %u, %d): %s", (unsigned long long)off,
			 (unsigned long long)len, chunk, threads, tu_msg());
}

static void test_root_follows_the_documented_format(void **s)
{
	uint8_t *b = content(3 * CHUNK + 777, NULL, 0, SIZE_MAX), got[SIG_HASH], want[SIG_HASH];
	int fd = write_file("dense", b, 3 * CHUNK + 777, false);

	(void)s;
	digest(fd, 0, 3 * CHUNK + 777, CHUNK, 1, got);
	reference(b, 3 * CHUNK + 777, CHUNK, want);
	assert_memory_equal(got, want, SIG_HASH);
	close(fd);
	free(b);
}

static void test_sparse_file_has_the_same_root_as_dense(void **s)
{
	static const int zero[] = { 1, 2, 3, 7, 8, 20, 21, 22, 23 };
	const size_t n = 32 * CHUNK + 1000, data_end = 30 * CHUNK; /* zero tail: a hole */
	static const uint32_t chunks[] = { 4096, 8192, 16384, 1u << 20 };
	uint8_t *b = content(n, zero, ARRAY_SIZE(zero), data_end);
	uint8_t d[SIG_HASH], sp[SIG_HASH], want[SIG_HASH];
	int dense = write_file("dense", b, n, false), sparse = write_file("sparse", b, n, true);
	struct stat st_d, st_s;

	(void)s;
	assert_int_equal(fstat(dense, &st_d), 0);
	assert_int_equal(fstat(sparse, &st_s), 0);
	assert_true(st_s.st_blocks < st_d.st_blocks); /* the holes are real */
	for (size_t i = 0; i < ARRAY_SIZE(chunks); i++) {
		digest(dense, 0, n, chunks[i], 1, d);
		digest(sparse, 0, n, chunks[i], 1, sp);
		reference(b, n, chunks[i], want);
		assert_memory_equal(d, want, SIG_HASH);
		assert_memory_equal(sp, want, SIG_HASH);
	}
	close(dense);
	close(sparse);
	free(b);
}

static void test_one_changed_byte_changes_the_root(void **s)
{
	const size_t n = 8 * CHUNK + 10, at[] = { 0, 4095, 4096, 5 * CHUNK + 17, 8 * CHUNK + 9 };
	uint8_t *b = content(n, NULL, 0, SIZE_MAX), base[SIG_HASH], got[SIG_HASH];
	int fd = write_file("f", b, n, false);

	(void)s;
	digest(fd, 0, n, CHUNK, 2, base);
	for (size_t i = 0; i < ARRAY_SIZE(at); i++) {
		uint8_t v = b[at[i]] ^ 0x01;
		assert_int_equal(pwrite(fd, &v, 1, (off_t)at[i]), 1);
		digest(fd, 0, n, CHUNK, 2, got);
		if (!memcmp(got, base, SIG_HASH))
			fail_msg("byte %zu changed, root did not", at[i]);
		assert_int_equal(pwrite(fd, &b[at[i]], 1, (off_t)at[i]), 1);
	}
	digest(fd, 0, n, CHUNK, 2, got);
	assert_memory_equal(got, base, SIG_HASH);
	close(fd);
	free(b);
}

/* Only [off, off+len) counts: the bytes around it can be anything. */
static void test_offset_and_length_select_the_region(void **s)
{
	const size_t pre = 5000, len = 5 * CHUNK + 123, post = 3000, n = pre + len + post;
	uint8_t *b = content(n, NULL, 0, SIZE_MAX), got[SIG_HASH], want[SIG_HASH];
	int fd = write_file("f", b, n, false);
	uint8_t junk[64];

	(void)s;
	reference(b + pre, len, CHUNK, want);
	digest(fd, pre, len, CHUNK, 1, got);
	assert_memory_equal(got, want, SIG_HASH);
	memset(junk, 0xee, sizeof(junk));
	assert_int_equal(pwrite(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	assert_int_equal(pwrite(fd, junk, sizeof(junk), (off_t)(n - sizeof(junk))), (ssize_t)sizeof(junk));
	assert_int_equal(pwrite(fd, junk, 1, (off_t)(pre - 1)), 1);
	assert_int_equal(pwrite(fd, junk, 1, (off_t)(pre + len)), 1);
	digest(fd, pre, len, CHUNK, 1, got);
	assert_memory_equal(got, want, SIG_HASH);
	digest(fd, pre - 1, len, CHUNK, 1, got); /* one byte earlier: another region */
	assert_memory_not_equal(got, want, SIG_HASH);
	close(fd);
	free(b);
}

static void test_thread_counts_give_identical_roots(void **s)
{
	static const int zero[] = { 3, 4, 10, 11, 12, 40, 63 };
	static const int threads[] = { 1, 2, 16, 0, 64 };
	const size_t n = 64 * CHUNK + 512;
	uint8_t *b = content(n, zero, ARRAY_SIZE(zero), SIZE_MAX), want[SIG_HASH], got[SIG_HASH];
	int fd = write_file("sparse", b, n, true);

	(void)s;
	reference(b, n, CHUNK, want);
	for (size_t i = 0; i < ARRAY_SIZE(threads); i++) {
		digest(fd, 0, n, CHUNK, threads[i], got);
		if (memcmp(got, want, SIG_HASH))
			fail_msg("%d threads: wrong root", threads[i]);
	}
	close(fd);
	free(b);
}

/* Read with O_DIRECT (provision's read-back): the same roots, a region
 * ending mid-block and followed by more of the file, or by its end. */
static void test_direct_reads_give_the_same_roots(void **s)
{
	static const int zero[] = { 2, 3, 9, 300, 301 };
	const size_t n = 2 * (1u << 20) + 10 * CHUNK + 700;
	uint8_t *b = content(n, zero, ARRAY_SIZE(zero), SIZE_MAX), want[SIG_HASH], got[SIG_HASH];
	const uint64_t lens[] = { n, n - 5000, 1u << 20 };
	char path[4096];
	int fd = write_file("sparse", b, n, true), dfd;

	(void)s;
	assert_int_equal(fsync(fd), 0);
	dfd = open(tu_path(path, tu_dir, "sparse"), O_RDONLY | O_DIRECT);
	assert_true(dfd >= 0);
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++)
		for (uint32_t chunk = CHUNK; chunk <= (1u << 20); chunk <<= 8) {
			reference(b + 4096, lens[i] - 4096, chunk, want);
			digest(dfd, 4096, lens[i] - 4096, chunk, 2, got);
			if (memcmp(got, want, SIG_HASH))
				fail_msg("length %llu, chunk %u: wrong root",
					 (unsigned long long)lens[i], chunk);
		}
	close(dfd);
	close(fd);
	free(b);
}

/* The length is part of the root: a partial last chunk is not padded. */
static void test_length_not_a_multiple_of_the_chunk(void **s)
{
	const size_t n = 3 * CHUNK + 1;
	uint8_t *b = content(n, NULL, 0, 3 * CHUNK), got[SIG_HASH], want[SIG_HASH], even[SIG_HASH];
	int fd = write_file("f", b, n, false);

	(void)s;
	reference(b, n, CHUNK, want);
	digest(fd, 0, n, CHUNK, 4, got);
	assert_memory_equal(got, want, SIG_HASH);
	digest(fd, 0, 3 * CHUNK, CHUNK, 4, even);
	assert_memory_not_equal(got, even, SIG_HASH); /* the extra byte is zero */
	close(fd);
	free(b);
}

static void test_empty_region(void **s)
{
	uint8_t b[16] = { 1 }, got[SIG_HASH], want[SIG_HASH], other[SIG_HASH];
	int fd = write_file("f", b, sizeof(b), false);

	(void)s;
	digest(fd, 3, 0, CHUNK, 4, got);
	reference(b, 0, CHUNK, want);
	assert_memory_equal(got, want, SIG_HASH);
	digest(fd, 3, 0, 2 * CHUNK, 4, other); /* the chunk size is part of it */
	assert_memory_not_equal(got, other, SIG_HASH);
	close(fd);
}

static void test_bad_chunk_size_fails(void **s)
{
	static const uint32_t bad[] = { 0, 1, 2048, 4095, 4097, 3 * 4096 };
	uint8_t out[SIG_HASH];

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(sig_payload_digest(0, 0, 4096, bad[i], 1, out), -1);
		assert_err(EXIT_FAIL, "digest chunk");
	}
}

/* The file ends inside the region's last chunk. */
static void test_file_ending_mid_chunk_fails(void **s)
{
	const size_t n = 2 * CHUNK + 100;
	uint8_t *b = content(n, NULL, 0, SIZE_MAX), out[SIG_HASH];
	int fd = write_file("short", b, n, false);

	(void)s;
	assert_int_equal(sig_payload_digest(fd, 0, 3 * CHUNK, CHUNK, 1, out), -1);
	assert_int_equal(sig_payload_digest(fd, 50, 2 * CHUNK + 51, CHUNK, 2, out), -1);
	close(fd);
	free(b);
}

/* Whole chunks missing past the end of the file are not holes: there are no
 * bytes to digest, so the call must fail rather than hash them as zeros. */
static void test_region_past_end_of_file_fails(void **s)
{
	const size_t n = 2 * CHUNK;
	uint8_t *b = content(n, NULL, 0, SIZE_MAX), out[SIG_HASH];
	int fd = write_file("short", b, n, false);

	int past_end, at_end;

	(void)s;
	past_end = sig_payload_digest(fd, 0, 3 * CHUNK, CHUNK, 1, out);
	at_end = sig_payload_digest(fd, n, CHUNK, CHUNK, 1, out);
	close(fd);
	free(b);
	if (past_end != -1)
		fail_msg("file of %zu bytes, region 0..%u: digest computed over missing bytes", n,
			 3 * CHUNK);
	if (at_end != -1)
		fail_msg("region starting at the end of the file: digest computed over missing bytes");
}

/* Feed b[0..n) in pieces of varying size, the 4 KiB blocks listed in zero
 * as sig_stream_zeros (holes, as copy.c feeds them). */
static void stream_digest(const uint8_t *b, size_t n, uint32_t chunk, size_t step,
			  const int *zero, size_t nz, uint8_t out[SIG_HASH])
{
	struct sig_stream *st = sig_stream_new(chunk);
	size_t at = 0;

	assert_non_null(st);
	while (at < n) {
		size_t len = n - at < step ? n - at : step;
		bool hole = false;
		for (size_t i = 0; i < nz; i++)
			if (at == (size_t)zero[i] * 4096)
				hole = true;
		if (hole)
			len = n - at < 4096 ? n - at : 4096;
		else
			for (size_t i = 0; i < nz; i++) /* stop at the next hole */
				if ((size_t)zero[i] * 4096 > at && (size_t)zero[i] * 4096 < at + len)
					len = (size_t)zero[i] * 4096 - at;
		assert_int_equal(hole ? sig_stream_zeros(st, len) : sig_stream_feed(st, b + at, len), 0);
		at += len;
		step = step * 7 % 12289 + 1; /* 1 byte .. 3 chunks, every alignment */
	}
	assert_int_equal(sig_stream_length(st), n);
	assert_int_equal(sig_stream_finish(st, out, NULL), 0);
	sig_stream_free(st);
}

/* The in-flight digest (relay, provisioning) is the one read back from the file. */
static void test_stream_equals_the_file_digest(void **s)
{
	static const int zero[] = { 0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 30, 31, 90 };
	static const size_t steps[] = { 1, 4096, 5000, 1u << 20 }; /* the first piece's size */
	const size_t n = 97 * CHUNK + 1234;
	uint8_t *b = content(n, zero, ARRAY_SIZE(zero), SIZE_MAX), want[SIG_HASH], got[SIG_HASH];
	int fd = write_file("sparse", b, n, true);

	(void)s;
	digest(fd, 0, n, CHUNK, 2, want);
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		stream_digest(b, n, CHUNK, steps[i], zero, ARRAY_SIZE(zero), got);
		if (memcmp(got, want, SIG_HASH))
			fail_msg("first piece %zu: the streamed root differs from the file's", steps[i]);
		stream_digest(b, n, 2 * CHUNK, steps[i], NULL, 0, got);
		if (!memcmp(got, want, SIG_HASH))
			fail_msg("another chunk size, same root");
	}
	stream_digest(b, 0, CHUNK, 2, NULL, 0, got); /* nothing fed */
	reference(b, 0, CHUNK, want);
	assert_memory_equal(got, want, SIG_HASH);
	close(fd);
	free(b);
}

/* Chunk hashes computed elsewhere (the relay's write threads) give the
 * root fed bytes give; one out of place (mid-chunk, after a short chunk,
 * longer than a chunk) is refused. */
static void test_stream_takes_chunk_hashes_from_elsewhere(void **s)
{
	const size_t n = 5 * CHUNK + 99;
	uint8_t *b = content(n, NULL, 0, SIZE_MAX), h[SIG_HASH], want[SIG_HASH], got[SIG_HASH];
	struct sig_stream *st = sig_stream_new(CHUNK);

	(void)s;
	reference(b, n, CHUNK, want);
	for (size_t at = 0; at < n; at += CHUNK) {
		uint32_t len = n - at < CHUNK ? (uint32_t)(n - at) : CHUNK;
		sig_sha256(b + at, len, h);
		assert_int_equal(sig_stream_put(st, h, len), 0);
	}
	assert_int_equal(sig_stream_put(st, h, CHUNK), -1); /* after the short last one */
	assert_err(EXIT_FAIL, "a chunk's hash out of place");
	assert_int_equal(sig_stream_length(st), n);
	assert_int_equal(sig_stream_finish(st, got, NULL), 0);
	assert_memory_equal(got, want, SIG_HASH);
	sig_stream_free(st);
	st = sig_stream_new(CHUNK);
	assert_int_equal(sig_stream_feed(st, b, 100), 0);
	assert_int_equal(sig_stream_put(st, h, CHUNK), -1); /* mid-chunk */
	assert_int_equal(sig_stream_feed(st, b + 100, CHUNK - 100), 0);
	assert_int_equal(sig_stream_put(st, h, CHUNK + 1), -1);
	assert_int_equal(sig_stream_put(st, h, CHUNK), 0);
	sig_stream_free(st);
	free(b);
}

/* A stream dropped without finish (an error mid-save) is freed whole (ASan). */
static void test_stream_freed_unfinished(void **s)
{
	uint8_t b[3 * CHUNK + 5] = { 1 };
	struct sig_stream *st = sig_stream_new(CHUNK);

	(void)s;
	assert_non_null(st);
	assert_int_equal(sig_stream_feed(st, b, sizeof(b)), 0);
	sig_stream_free(st);
	sig_stream_free(NULL);
}

/* The v2 O_DIRECT relay hashes what it writes: the root equals the digest
 * of the bytes it left in the image, read back (stream at a 4 KiB offset,
 * a length that is no multiple of the chunk or the block, and long enough
 * for the ring of blocks being written to come round twice). */
static void test_relay_digest_equals_read_back(void **s)
{
	const size_t n = (2 * RELAY_SLOTS + 1) * (size_t)RELAY_FETCH + 4096 * 3 + 77, off = 8192;
	uint8_t *b = content(n, NULL, 0, SIZE_MAX), want[SIG_HASH], got[SIG_HASH];
	char path[4096];
	int p[2], fd, dfd, rc = 1;
	struct relay r;
	size_t put = 0;

	(void)s;
	fd = open(tu_path(path, tu_dir, "relay.img"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	dfd = open(path, O_WRONLY | O_DIRECT);
	if (dfd < 0)
		skip(); /* a file system without O_DIRECT */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(relay_init(&r, RELAY_SAVE, p[0], dfd, true, off, 0, "relay.img"), 0);
	r.hash = sig_stream_new(SIG_CHUNK);
	assert_non_null(r.hash);
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	while (rc != 2) {
		if (put < n) {
			ssize_t w = write(p[1], b + put, n - put < 100000 ? n - put : 100000);
			if (w > 0)
				put += (size_t)w;
			if (put == n)
				close(p[1]);
		}
		rc = relay_step(&r);
		assert_true(rc >= 0);
	}
	assert_int_equal(r.done, n);
	assert_int_equal(sig_stream_finish(r.hash, got, NULL), 0);
	assert_int_equal(ftruncate(fd, (off_t)(off + n)), 0); /* as finish() drops the padding */
	digest(fd, off, n, SIG_CHUNK, 2, want);
	assert_memory_equal(got, want, SIG_HASH);
	sig_stream_free(r.hash);
	relay_free(&r);
	close(p[0]);
	close(dfd);
	close(fd);
	free(b);
}

/* A file written as QEMU writes one (whole 4 KiB pages anywhere, bytes only
 * appended at its end), chunk by chunk out of order, with a chunk half
 * written for a while, a chunk never written (a hole) and the last bytes
 * appended in pieces, while the early digest runs: its root is the
 * read-back's, and it hashed chunks before the end. keep false: the same
 * root, nothing kept from before the end. */
#define EC (4 * 4096u)
static void early_case(bool keep)
{
	enum { N = 48, OFF = 8192 };
	uint64_t len = (uint64_t)N * EC + 1000, tail = (uint64_t)(N - 2) * EC;
	uint8_t *b = content(len, NULL, 0, SIZE_MAX), got[SIG_HASH], want[SIG_HASH];
	char path[4096];
	int fd = open(tu_path(path, tu_dir, "early"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	struct sig_info in = { 0 };
	struct sig_early *e;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, OFF), 0);
	memset(b + 7 * EC, 0, EC); /* chunk 7: zeros, never written */
	assert_non_null(e = sig_early_start(fd, OFF, 2 * len, EC, 2));
	/* Chunk 3: its first half now, the rest last. */
	assert_int_equal(pwrite(fd, b + 3 * EC, EC / 2, OFF + 3 * EC), EC / 2);
	for (int k = 0; k < N; k++) {
		int i = k ^ 1; /* pairs swapped: not in order */
		if (i == 7 || i == 3 || i >= N - 2)
			continue;
		assert_int_equal(pwrite(fd, b + (uint64_t)i * EC, EC, (off_t)(OFF + (uint64_t)i * EC)), EC);
		usleep(3000);
	}
	for (uint64_t at = tail; at < len; at += 3000) { /* appended in pieces */
		uint64_t n = len - at < 3000 ? len - at : 3000;
		assert_int_equal(pwrite(fd, b + at, n, (off_t)(OFF + at)), (ssize_t)n);
		usleep(3000);
	}
	usleep(20000);
	assert_int_equal(pwrite(fd, b + 3 * EC + EC / 2, EC / 2, OFF + 3 * EC + EC / 2), EC / 2);
	assert_int_equal(sig_early_finish(e, keep, fd, len, 2, got, &in), 0);
	reference(b, len, EC, want);
	assert_memory_equal(got, want, SIG_HASH);
	if (keep)
		assert_true(in.bytes_early >= EC && in.bytes_read < len - EC);
	else
		assert_true(in.bytes_early == 0 && in.bytes_read >= len - EC);
	close(fd);
	free(b);
}

static void test_early_digest_equals_read_back(void **s)
{
	(void)s;
	early_case(true);
}

static void test_early_digest_dropped_equals_read_back(void **s)
{
	(void)s;
	early_case(false);
}

/* A v3 stream: chunk 0 (a block's header) complete at the start and written
 * again at the end (its bitmap), the rest written once. With the early
 * hashes restricted to the "pages region" (chunks 1..N-1), the root is the
 * read-back's; only chunks of that region count as hashed early. */
static void test_early_digest_restricted_to_final_ranges(void **s)
{
	enum { N = 24, OFF = 8192 };
	uint64_t len = (uint64_t)N * EC;
	uint8_t *b = content(len, NULL, 0, SIZE_MAX), got[SIG_HASH], want[SIG_HASH];
	struct file_range pages = { OFF + EC, OFF + len };
	char path[4096];
	int fd = open(tu_path(path, tu_dir, "early3"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	struct sig_info in = { 0 };
	struct sig_early *e;

	(void)s;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, OFF), 0);
	assert_non_null(e = sig_early_start(fd, OFF, 2 * len, EC, 2));
	assert_int_equal(pwrite(fd, b, EC, OFF), EC); /* the header, bitmap still zero */
	for (int i = 1; i < N; i++) {
		assert_int_equal(pwrite(fd, b + (uint64_t)i * EC, EC, (off_t)(OFF + (uint64_t)i * EC)), EC);
		usleep(3000);
	}
	usleep(20000);
	memset(b + 100, 0xa5, 512); /* the bitmap, written last */
	assert_int_equal(pwrite(fd, b + 100, 512, OFF + 100), 512);
	sig_early_restrict(e, &pages, 1);
	assert_int_equal(sig_early_finish(e, true, fd, len, 2, got, &in), 0);
	reference(b, len, EC, want);
	assert_memory_equal(got, want, SIG_HASH);
	assert_true(in.bytes_early >= EC && in.bytes_early <= len - EC);
	assert_true(in.bytes_read >= EC);
	close(fd);
	free(b);
}

/* Chunks of a region hashed from the same bytes held elsewhere (a source
 * file standing in for QEMU's memory, the region's bytes at another
 * offset): the root is the read-back's, a sample check passes; a source
 * with one byte changed in a sampled chunk fails the check. */
static void test_chunks_hashed_from_another_source(void **s)
{
	enum { N = 40, OFF = 8192, SRC_OFF = 3 * 4096 };
	uint64_t len = (uint64_t)N * EC + 777;
	uint8_t *b = content(len, NULL, 0, SIZE_MAX), got[SIG_HASH], want[SIG_HASH];
	struct file_range in = { OFF + 5 * EC + 100, OFF + 30 * EC }; /* chunks 6..29 */
	char path[4096];
	int fd = write_file("pre.img", b, len, false), src;
	struct sig_info info = { 0 };
	struct sig_pre *pre;

	(void)s;
	/* the file's region [OFF, OFF + len): write it there, and the part
	 * from in.start on at SRC_OFF of the source */
	assert_int_equal(pwrite(fd, b, len, OFF), (ssize_t)len);
	src = open(tu_path(path, tu_dir, "pre.src"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(src >= 0);
	assert_int_equal(pwrite(src, b + (in.start - OFF), in.end - in.start, SRC_OFF),
			 (ssize_t)(in.end - in.start));
	assert_non_null(pre = sig_pre_from(src, SRC_OFF, in, OFF, len, EC, 2));
	assert_int_equal(sig_pre_check(pre, fd, 8), 0);
	assert_int_equal(sig_pre_digest(pre, fd, len, 2, got, &info), 0);
	reference(b, len, EC, want);
	assert_memory_equal(got, want, SIG_HASH);
	assert_int_equal(info.bytes_early, 24 * EC);   /* chunks 6..29 from the source */
	assert_int_equal(info.bytes_read, len - 24 * EC); /* the rest from the file */
	sig_pre_free(pre);
	/* the source differs in chunk 6, the first one sampled */
	assert_int_equal(pwrite(src, "X", 1, SRC_OFF + (OFF + 6 * EC - in.start) + 5), 1);
	assert_non_null(pre = sig_pre_from(src, SRC_OFF, in, OFF, len, EC, 2));
	assert_int_equal(sig_pre_check(pre, fd, 8), 1);
	sig_pre_free(pre);
	close(src);
	close(fd);
	free(b);
}

/* Hashed ahead, before the layout is known: the source's pieces at the
 * phase the region's offset gives; taken for a region at an aligned place,
 * every whole chunk within it comes from the source and the root is the
 * read-back's; a region 4 KiB off that place gets none of them. */
static void test_chunks_hashed_ahead(void **s)
{
	enum { N = 40, OFF = 8192, SRC_OFF = 4096 };
	uint64_t len = (uint64_t)N * EC + 300;
	uint8_t *b = content(len, NULL, 0, SIZE_MAX), got[SIG_HASH], want[SIG_HASH];
	struct file_range in = { 4 * EC, OFF + 36 * EC + 100 }; /* chunks 4..35 whole */
	char path[4096];
	int fd = write_file("ahead.img", b, len, false), src;
	struct sig_info info = { 0 };
	struct sig_ahead *a;
	struct sig_pre *pre;

	(void)s;
	assert_int_equal(pwrite(fd, b, len, OFF), (ssize_t)len);
	src = open(tu_path(path, tu_dir, "ahead.src"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(src >= 0);
	assert_int_equal(pwrite(src, b + (in.start - OFF), in.end - in.start, SRC_OFF),
			 (ssize_t)(in.end - in.start));
	assert_non_null(a = sig_ahead_start(src, SRC_OFF, in.end - in.start, OFF % EC, EC, 2));
	assert_non_null(pre = sig_ahead_take(a, in, OFF, len));
	assert_int_equal(sig_pre_bytes(pre), 32 * EC);
	assert_int_equal(sig_pre_check(pre, fd, 8), 0);
	assert_int_equal(sig_pre_digest(pre, fd, len, 2, got, &info), 0);
	reference(b, len, EC, want);
	assert_memory_equal(got, want, SIG_HASH);
	assert_int_equal(info.bytes_read, len - 32 * EC);
	sig_pre_free(pre);
	in.start += 4096;
	assert_non_null(pre = sig_ahead_take(a, in, OFF, len));
	assert_int_equal(sig_pre_bytes(pre), 0);
	sig_pre_free(pre);
	sig_ahead_free(a);
	close(src);
	close(fd);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_follows_the_documented_format),
		cmocka_unit_test(test_sparse_file_has_the_same_root_as_dense),
		cmocka_unit_test(test_direct_reads_give_the_same_roots),
		cmocka_unit_test(test_one_changed_byte_changes_the_root),
		cmocka_unit_test(test_offset_and_length_select_the_region),
		cmocka_unit_test(test_thread_counts_give_identical_roots),
		cmocka_unit_test(test_length_not_a_multiple_of_the_chunk),
		cmocka_unit_test(test_empty_region),
		cmocka_unit_test(test_bad_chunk_size_fails),
		cmocka_unit_test(test_file_ending_mid_chunk_fails),
		cmocka_unit_test(test_region_past_end_of_file_fails),
		cmocka_unit_test(test_stream_equals_the_file_digest),
		cmocka_unit_test(test_stream_freed_unfinished),
		cmocka_unit_test(test_stream_takes_chunk_hashes_from_elsewhere),
		cmocka_unit_test(test_relay_digest_equals_read_back),
		cmocka_unit_test(test_early_digest_equals_read_back),
		cmocka_unit_test(test_early_digest_dropped_equals_read_back),
		cmocka_unit_test(test_early_digest_restricted_to_final_ranges),
		cmocka_unit_test(test_chunks_hashed_from_another_source),
		cmocka_unit_test(test_chunks_hashed_ahead),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup, tu_dir_teardown);
}
