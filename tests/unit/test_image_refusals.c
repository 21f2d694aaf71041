/* test_image_refusals: each img_decode refusal (table-driven), flipped bytes
 * caught by the header digest, truncated image files refused by vfy_read. */
#include "helpers.h"
#include "image.h"
#include "verify.h"

#include "mbedtls/sha256.h"

#define ANY_SIZE (1ull << 40) /* an image size that truncates nothing */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Bytes 4064..4095 are SHA-256 of bytes 0..4063: recompute after a patch. */
static void redigest(uint8_t *b)
{
	mbedtls_sha256(b, IMG_HEADER_SIZE - IMG_DIGEST, b + IMG_HEADER_SIZE - IMG_DIGEST, 0);
}

/* Refusals: edit() changes the struct before img_encode (which computes the
 * digest); patch() changes encoded bytes, and the digest is recomputed. */
struct refusal {
	const char *what;
	void (*edit)(struct img_header *h);
	void (*patch)(uint8_t *b);
	uint64_t size; /* image size; 0: ANY_SIZE */
	const char *want;
};

#define EDIT(fn, stmt) static void fn(struct img_header *h) { stmt; }
#define PATCH(fn, stmt) static void fn(uint8_t *b) { stmt; }
#define DEF_LEN(n) (h->def_length = (n), h->stream_offset = img_stream_offset(n))

PATCH(p_magic, b[3] ^= 0x20)
EDIT(e_version0, h->version = 0)
EDIT(e_version1, h->version = 1)
EDIT(e_version5, h->version = 5)
EDIT(e_version_max, h->version = 0xffffffffu)
PATCH(p_hsize_small, put32(b + 12, 4095))
PATCH(p_hsize_big, put32(b + 12, 8192))
EDIT(e_state_zero, h->state = 0)
EDIT(e_state_bitflip, h->state = IMG_COMPLETE ^ 1)
EDIT(e_flags_bit4, h->flags = 1u << 4)
EDIT(e_flags_top, h->flags = IMG_F_WAS_RUNNING | 0x80000000u)
EDIT(e_def_off0, h->def_offset = 0)
EDIT(e_def_off8k, h->def_offset = 8192)
EDIT(e_def_len0, DEF_LEN(0))
EDIT(e_def_len_big, DEF_LEN(IMG_DEF_MAX + 1))
EDIT(e_stream_off_gap, h->stream_offset += 4096)
EDIT(e_stream_off_early, h->stream_offset -= 1)
EDIT(e_stream_len_wrap, h->stream_length = UINT64_MAX - h->stream_offset + 1)
EDIT(e_stream_len_max, h->stream_length = UINT64_MAX)
EDIT(e_stream_len0, h->stream_length = 0)
EDIT(e_none, (void)h)
EDIT(e_channels0, h->channels = 0)
EDIT(e_channels257, h->channels = 257)
EDIT(e_channels_max, h->channels = 0xffffffffu)
EDIT(e_chunk_odd, h->digest_chunk = 4096 + 1)
EDIT(e_chunk_3x, h->digest_chunk = 3 * 4096)
EDIT(e_chunk_1, h->digest_chunk = 1)
EDIT(e_chunk_2k, h->digest_chunk = 2048)
EDIT(e_chunk_128m, h->digest_chunk = 128u << 20)
EDIT(e_chunk_2g, h->digest_chunk = 0x80000000u)
EDIT(e_name, memset(h->name, 'a', sizeof(h->name)))
EDIT(e_machine, memset(h->machine, 'm', sizeof(h->machine)))
EDIT(e_qemu, memset(h->qemu_version, '9', sizeof(h->qemu_version)))
EDIT(e_sig_len129, h->sig_len = IMG_SIG_MAX + 1)
EDIT(e_sig_len_max, h->sig_len = 0xffff)
EDIT(e_sig_tail, (h->sig_len = 70, memset(h->sig, 1, 71)))
EDIT(e_sig_unsigned_tail, h->sig[IMG_SIG_MAX - 1] = 1)
PATCH(p_reserved_sig_pad, b[338] = 1)
PATCH(p_reserved_sig_pad2, b[339] = 0x80)
PATCH(p_reserved_first, b[468] = 1)
PATCH(p_reserved_last, b[IMG_HEADER_SIZE - IMG_DIGEST - 1] = 0x80)

static const struct refusal refusals[] = {
	{ "bad magic", NULL, p_magic, 0, "magic" },
	{ "version 0", e_version0, NULL, 0, "version 0 " },
	{ "version 1", e_version1, NULL, 0, "version 1 " },
	{ "version 5", e_version5, NULL, 0, "version 5 " },
	{ "version 0xffffffff", e_version_max, NULL, 0, "version 4294967295" },
	{ "header_size 4095", NULL, p_hsize_small, 0, "header_size" },
	{ "header_size 8192", NULL, p_hsize_big, 0, "header_size" },
	{ "state 0", e_state_zero, NULL, 0, "state" },
	{ "state one bit off", e_state_bitflip, NULL, 0, "state" },
	{ "flags bit 4", e_flags_bit4, NULL, 0, "flags" },
	{ "flags bit 31", e_flags_top, NULL, 0, "flags" },
	{ "def_offset 0", e_def_off0, NULL, 0, "def_offset" },
	{ "def_offset 8192", e_def_off8k, NULL, 0, "def_offset" },
	{ "def_length 0", e_def_len0, NULL, 0, "def_length" },
	{ "def_length 65537", e_def_len_big, NULL, 0, "def_length" },
	{ "stream_offset gap", e_stream_off_gap, NULL, 0, "stream_offset" },
	{ "stream_offset early", e_stream_off_early, NULL, 0, "stream_offset" },
	{ "stream_length wraps", e_stream_len_wrap, NULL, UINT64_MAX, "stream_length" },
	{ "stream_length max", e_stream_len_max, NULL, UINT64_MAX, "stream_length" },
	{ "stream_length 0 complete", e_stream_len0, NULL, 0, "stream_length" },
	{ "stream past image end", e_none, NULL, 8192 + 4096 - 1, "truncated" },
	{ "channels 0", e_channels0, NULL, 0, "channels" },
	{ "channels 257", e_channels257, NULL, 0, "channels" },
	{ "channels 0xffffffff", e_channels_max, NULL, 0, "channels" },
	{ "digest_chunk 4097", e_chunk_odd, NULL, 0, "digest_chunk" },
	{ "digest_chunk 12288", e_chunk_3x, NULL, 0, "digest_chunk" },
	{ "digest_chunk 1", e_chunk_1, NULL, 0, "digest_chunk" },
	{ "digest_chunk 2048", e_chunk_2k, NULL, 0, "digest_chunk" },
	{ "digest_chunk 128M", e_chunk_128m, NULL, 0, "digest_chunk" },
	{ "digest_chunk 2G", e_chunk_2g, NULL, 0, "digest_chunk" },
	{ "name unterminated", e_name, NULL, 0, "name" },
	{ "machine unterminated", e_machine, NULL, 0, "machine" },
	{ "qemu_version unterminated", e_qemu, NULL, 0, "qemu_version" },
	{ "sig_len 129", e_sig_len129, NULL, 0, "sig_len" },
	{ "sig_len 0xffff", e_sig_len_max, NULL, 0, "sig_len" },
	{ "sig byte past sig_len", e_sig_tail, NULL, 0, "field sig " },
	{ "sig byte, unsigned", e_sig_unsigned_tail, NULL, 0, "field sig " },
	{ "padding after sig_len (fuzz find)", NULL, p_reserved_sig_pad, 0, "reserved" },
	{ "padding after sig_len, 2nd byte", NULL, p_reserved_sig_pad2, 0, "reserved" },
	{ "reserved first byte", NULL, p_reserved_first, 0, "reserved" },
	{ "reserved last byte", NULL, p_reserved_last, 0, "reserved" },
};

static void test_decode_refusals(void **s)
{
	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(refusals); i++) {
		const struct refusal *r = &refusals[i];
		struct img_header h, out;
		uint8_t b[IMG_HEADER_SIZE];

		tu_header(&h, 100, 4096); /* stream: 8192..12288 */
		if (r->edit)
			r->edit(&h);
		img_encode(&h, b);
		if (r->patch) {
			r->patch(b);
			redigest(b);
		}
		err_clear();
		if (img_decode(&out, b, r->size ? r->size : ANY_SIZE) != -1)
			fail_msg("%s: accepted", r->what);
		if (err_code() != EXIT_REFUSED || !strstr(err_msg(), r->want))
			fail_msg("%s: code %d, message '%s' (want '%s')", r->what, err_code(),
				 tu_msg(), r->want);
	}
}

/* Any flipped bit from byte 16 on (past magic, version and header_size,
 * which have their own checks) is caught by the header digest. */
static void test_decode_any_flipped_byte_is_refused(void **s)
{
	struct img_header h, out;
	uint8_t good[IMG_HEADER_SIZE], b[IMG_HEADER_SIZE];

	(void)s;
	tu_header(&h, 100, 4096);
	h.version = 3;
	h.sig_len = 70;
	memset(h.sig, 0x33, 70);
	img_encode(&h, good);
	for (size_t i = 0; i < IMG_HEADER_SIZE; i++) {
		memcpy(b, good, sizeof(b));
		b[i] ^= 0x01;
		err_clear();
		if (img_decode(&out, b, ANY_SIZE) != -1 || err_code() != EXIT_REFUSED)
			fail_msg("byte %zu flipped: accepted or wrong code (%s)", i, tu_msg());
		if (i >= 16 && !strstr(err_msg(), "header digest mismatch"))
			fail_msg("byte %zu flipped: '%s', want a digest mismatch", i, tu_msg());
	}
}

/* A valid image cut at every length shorter than its header is refused. */
static void test_vfy_read_refuses_every_truncated_header(void **s)
{
	char dir[64], path[4096], *def;
	struct img_header h;
	struct stat st;
	int fd;

	(void)s;
	tu_mkdtemp(dir);
	tu_path(path, dir, "img");
	tu_header(&h, 9, 5000);
	tu_write_image(path, &h, "-m 64\n-nodefaults\n", 0, NULL);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(vfy_read(fd, (uint64_t)st.st_size, path, &h, &def), 0);
	assert_string_equal(def, "-m 64\n-nodefaults\n");
	free(def);
	for (int len = IMG_HEADER_SIZE - 1; len >= 0; len--) {
		assert_int_equal(ftruncate(fd, len), 0);
		err_clear();
		if (vfy_read(fd, (uint64_t)len, path, &h, &def) != -1 || err_code() != EXIT_REFUSED)
			fail_msg("cut at %d: not refused (%s)", len, tu_msg());
		assert_null(def);
	}
	close(fd);
	tu_rmtree(dir);
}

/* Cut inside the definition or the stream: refused as truncated too. */
static void test_vfy_read_refuses_truncated_body(void **s)
{
	char dir[64], path[4096], *def;
	struct img_header h;
	const off_t cuts[] = { IMG_HEADER_SIZE + 5, 8192 + 4999 };
	int fd;

	(void)s;
	tu_mkdtemp(dir);
	tu_path(path, dir, "img");
	tu_header(&h, 9, 5000);
	tu_write_image(path, &h, "-m 64\n-nodefaults\n", 0, NULL);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
		assert_int_equal(ftruncate(fd, cuts[i]), 0);
		assert_int_equal(vfy_read(fd, (uint64_t)cuts[i], path, &h, &def), -1);
		assert_err(EXIT_REFUSED, "truncated");
	}
	close(fd);
	tu_rmtree(dir);
}

/* vfy_peek: 1 for an image (its header read), 0 for a file that is none,
 * -1 for a path that does not open; it never leaves an error pending. */
static void test_vfy_peek(void **s)
{
	char dir[64], path[4096];
	struct img_header h, got;

	(void)s;
	tu_mkdtemp(dir);
	tu_path(path, dir, "img");
	tu_header(&h, 9, 5000);
	h.flags |= IMG_F_GOLDEN;
	tu_write_image(path, &h, "-m 64\n-nodefaults\n", 0, NULL);
	assert_int_equal(vfy_peek(path, &got), 1);
	assert_true(got.flags & IMG_F_GOLDEN);
	assert_string_equal(got.name, "vm1");
	assert_string_equal(err_msg(), "unknown error"); /* nothing pending */
	tu_write_str(path, "not an image\n");
	assert_int_equal(vfy_peek(path, &got), 0);
	assert_string_equal(err_msg(), "unknown error"); /* nothing pending */
	tu_path(path, dir, "missing");
	assert_int_equal(vfy_peek(path, &got), -1);
	assert_string_equal(err_msg(), "unknown error"); /* nothing pending */
	assert_int_equal(vfy_peek(dir, &got), -1); /* a directory is no image either */
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_refusals),
		cmocka_unit_test(test_decode_any_flipped_byte_is_refused),
		cmocka_unit_test(test_vfy_read_refuses_every_truncated_header),
		cmocka_unit_test(test_vfy_read_refuses_truncated_body),
		cmocka_unit_test(test_vfy_peek),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
