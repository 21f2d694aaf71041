/* test_image: the 4096-byte image header: encode/decode round trips, stream
 * offsets, values at the edge of each range, the bytes a signature covers. */
#include "helpers.h"
#include "image.h"

#define ANY_SIZE (1ull << 40) /* an image size that truncates nothing */

/* Every field distinct and non-zero, so a swapped or dropped field shows. */
static void full_header(struct img_header *h, uint32_t version, bool with_sig)
{
	tu_header(h, 5000, 123456789);
	h->version = version;
	h->flags = IMG_F_KNOWN;
	h->created = 0x0102030405060708ull;
	h->ram_size = 0x1122334455667788ull;
	h->channels = version == 3 ? 8 : 1;
	h->digest_chunk = 1u << 20;
	memset(h->name, 0, sizeof(h->name));
	memset(h->name, 'n', sizeof(h->name) - 1);
	strcpy(h->machine, "pc-i440fx-9.0");
	memset(h->qemu_version, 'q', sizeof(h->qemu_version) - 1);
	for (unsigned i = 0; i < IMG_DIGEST; i++) {
		h->def_digest[i] = (uint8_t)(i + 1);
		h->payload_digest[i] = (uint8_t)(0x80 + i);
		h->key_id[i] = (uint8_t)(0x40 + i);
	}
	if (with_sig) {
		h->sig_len = IMG_SIG_MAX - 57;
		for (unsigned i = 0; i < h->sig_len; i++)
			h->sig[i] = (uint8_t)(0xa0 ^ i);
	}
}

static void assert_same_header(const struct img_header *a, const struct img_header *b)
{
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->created, b->created);
	assert_int_equal(a->def_offset, b->def_offset);
	assert_int_equal(a->def_length, b->def_length);
	assert_int_equal(a->stream_offset, b->stream_offset);
	assert_int_equal(a->stream_length, b->stream_length);
	assert_int_equal(a->ram_size, b->ram_size);
	assert_int_equal(a->channels, b->channels);
	assert_int_equal(a->digest_chunk, b->digest_chunk);
	assert_memory_equal(a->name, b->name, sizeof(a->name));
	assert_memory_equal(a->machine, b->machine, sizeof(a->machine));
	assert_memory_equal(a->qemu_version, b->qemu_version, sizeof(a->qemu_version));
	assert_memory_equal(a->def_digest, b->def_digest, IMG_DIGEST);
	assert_memory_equal(a->payload_digest, b->payload_digest, IMG_DIGEST);
	assert_memory_equal(a->key_id, b->key_id, IMG_DIGEST);
	assert_int_equal(a->sig_len, b->sig_len);
	assert_memory_equal(a->sig, b->sig, IMG_SIG_MAX);
}

static void round_trip(uint32_t version, bool with_sig)
{
	struct img_header in, out;
	uint8_t b[IMG_HEADER_SIZE];

	full_header(&in, version, with_sig);
	img_encode(&in, b);
	assert_memory_equal(b, IMG_MAGIC, 8);
	assert_int_equal(img_decode(&out, b, ANY_SIZE), 0);
	assert_same_header(&in, &out);
}

static void test_round_trip_v2_unsigned(void **s) { (void)s; round_trip(2, false); }
static void test_round_trip_v2_signed(void **s) { (void)s; round_trip(2, true); }
static void test_round_trip_v3_unsigned(void **s) { (void)s; round_trip(3, false); }
static void test_round_trip_v3_signed(void **s) { (void)s; round_trip(3, true); }

static void test_round_trip_every_state(void **s)
{
	static const uint32_t states[] = { IMG_PARTIAL, IMG_COMPLETE, IMG_CONSUMED };
	struct img_header in, out;
	uint8_t b[IMG_HEADER_SIZE];

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
		full_header(&in, 2, false);
		in.state = states[i];
		img_encode(&in, b);
		assert_int_equal(img_decode(&out, b, ANY_SIZE), 0);
		assert_int_equal(out.state, states[i]);
	}
}

static void test_stream_offset_values(void **s)
{
	static const struct { uint64_t def_len, want; } t[] = {
		{ 0, 4096 }, { 1, 8192 }, { 4095, 8192 }, { 4096, 8192 }, { 4097, 12288 },
		{ 8192, 12288 }, { 65535, 69632 }, { 65536, 69632 },
	};

	(void)s;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		assert_int_equal(img_stream_offset(t[i].def_len), t[i].want);
}

/* Values at the edge of each range are accepted (no off-by-one refusals). */
static void test_decode_accepts_boundary_values(void **s)
{
	struct img_header h, out;
	uint8_t b[IMG_HEADER_SIZE];

	(void)s;
	for (int i = 0; i < 9; i++) {
		tu_header(&h, 1, 1);
		switch (i) {
		case 0: h.channels = 256; break;
		case 1: h.def_length = IMG_DEF_MAX; h.stream_offset = img_stream_offset(IMG_DEF_MAX); break;
		case 2: h.digest_chunk = 4096; break;
		case 3: h.digest_chunk = 64u << 20; break;
		case 4: h.sig_len = IMG_SIG_MAX; memset(h.sig, 0xff, IMG_SIG_MAX); break;
		case 5: h.state = IMG_PARTIAL; h.stream_length = 0; break;
		case 6: h.flags = IMG_F_KNOWN; break;
		case 7: h.stream_length = UINT64_MAX - h.stream_offset; break;
		case 8: memset(h.name, 'x', sizeof(h.name) - 1); break;
		}
		img_encode(&h, b);
		if (img_decode(&out, b, i == 7 ? UINT64_MAX : h.stream_offset + h.stream_length) < 0)
			fail_msg("boundary case %d refused: %s", i, tu_msg());
	}
}

static void signed_pair(struct img_header *a, uint8_t sa[IMG_HEADER_SIZE],
			struct img_header *b, uint8_t sb[IMG_HEADER_SIZE])
{
	img_signed_bytes(a, sa);
	img_signed_bytes(b, sb);
}

static void test_signed_bytes_ignore_state_and_signature(void **s)
{
	struct img_header a, b;
	uint8_t sa[IMG_HEADER_SIZE], sb[IMG_HEADER_SIZE], zero[2 + IMG_SIG_MAX] = { 0 };

	(void)s;
	full_header(&a, 2, false);
	a.state = IMG_PARTIAL;
	b = a;
	b.state = IMG_CONSUMED;
	b.sig_len = 71;
	memset(b.sig, 0x5a, 71);
	signed_pair(&a, sa, &b, sb);
	assert_memory_equal(sa, sb, IMG_HEADER_SIZE);
	assert_memory_equal(sb + 16, zero, 4);              /* state */
	assert_memory_equal(sb + 336, zero, 2 + IMG_SIG_MAX); /* sig_len, sig */
	assert_memory_equal(sb + IMG_HEADER_SIZE - IMG_DIGEST, zero, IMG_DIGEST); /* no digest */
}

static void test_signed_bytes_cover_flags_and_key_id(void **s)
{
	struct img_header a, b;
	uint8_t sa[IMG_HEADER_SIZE], sb[IMG_HEADER_SIZE];

	(void)s;
	full_header(&a, 2, false);
	b = a;
	b.flags ^= IMG_F_GOLDEN;
	signed_pair(&a, sa, &b, sb);
	assert_memory_not_equal(sa, sb, IMG_HEADER_SIZE);
	b = a;
	b.key_id[31] ^= 1;
	signed_pair(&a, sa, &b, sb);
	assert_memory_not_equal(sa, sb, IMG_HEADER_SIZE);
	b = a;
	b.payload_digest[0] ^= 1;
	signed_pair(&a, sa, &b, sb);
	assert_memory_not_equal(sa, sb, IMG_HEADER_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_v2_unsigned),
		cmocka_unit_test(test_round_trip_v2_signed),
		cmocka_unit_test(test_round_trip_v3_unsigned),
		cmocka_unit_test(test_round_trip_v3_signed),
		cmocka_unit_test(test_round_trip_every_state),
		cmocka_unit_test(test_stream_offset_values),
		cmocka_unit_test(test_decode_accepts_boundary_values),
		cmocka_unit_test(test_signed_bytes_ignore_state_and_signature),
		cmocka_unit_test(test_signed_bytes_cover_flags_and_key_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
