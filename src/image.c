/* image: header layout, encoding and validation (see image.h). The layout is
 * explicit byte offsets, not a packed struct, so it cannot drift. */
#include "image.h"
#include "err.h"
#include "util.h"

#include <string.h>

#include "mbedtls/sha256.h"

/* Byte offsets in the header block. */
enum {
	O_MAGIC = 0,
	O_VERSION = 8,
	O_HSIZE = 12,
	O_STATE = 16,
	O_FLAGS = 20,
	O_CREATED = 24,
	O_DEF_OFF = 32,
	O_DEF_LEN = 40,
	O_STREAM_OFF = 48,
	O_STREAM_LEN = 56,
	O_RAM = 64,
	O_CHANNELS = 72,
	O_CHUNK = 76,
	O_NAME = 80,
	O_MACHINE = 144,
	O_QEMU = 208,
	O_DEF_DIGEST = 240,
	O_PAYLOAD_DIGEST = 272,
	O_KEY_ID = 304,
	O_SIG_LEN = 336,
	O_SIG = 340,
	O_RAM_PATH = 512, /* v4 */
	O_RAM_BYTES = 768,
	O_RAM_DEV = 776,
	O_RAM_INO = 784,
	O_RAM_DIGEST = 792,
	O_END_OF_FIELDS = O_RAM_DIGEST + IMG_DIGEST, /* 824; the rest is zero */
	O_HDR_DIGEST = IMG_HEADER_SIZE - IMG_DIGEST,
};

/* The unowned byte ranges of the header. */
static const struct { size_t from, to; } gaps[] = {
	{ O_SIG_LEN + 2, O_SIG },
	{ O_SIG + IMG_SIG_MAX, O_RAM_PATH },
	{ O_END_OF_FIELDS, O_HDR_DIGEST },
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

uint64_t img_stream_offset(uint64_t def_length)
{
	return IMG_HEADER_SIZE + ALIGN_UP(def_length, IMG_ALIGN);
}

static void encode_fields(const struct img_header *h, uint8_t *b)
{
	memset(b, 0, IMG_HEADER_SIZE);
	memcpy(b + O_MAGIC, IMG_MAGIC, 8);
	put32(b + O_VERSION, h->version);
	put32(b + O_HSIZE, IMG_HEADER_SIZE);
	put32(b + O_STATE, h->state);
	put32(b + O_FLAGS, h->flags);
	put64(b + O_CREATED, h->created);
	put64(b + O_DEF_OFF, h->def_offset);
	put64(b + O_DEF_LEN, h->def_length);
	put64(b + O_STREAM_OFF, h->stream_offset);
	put64(b + O_STREAM_LEN, h->stream_length);
	put64(b + O_RAM, h->ram_size);
	put32(b + O_CHANNELS, h->channels);
	put32(b + O_CHUNK, h->digest_chunk);
	memcpy(b + O_NAME, h->name, sizeof(h->name));
	memcpy(b + O_MACHINE, h->machine, sizeof(h->machine));
	memcpy(b + O_QEMU, h->qemu_version, sizeof(h->qemu_version));
	memcpy(b + O_DEF_DIGEST, h->def_digest, IMG_DIGEST);
	memcpy(b + O_PAYLOAD_DIGEST, h->payload_digest, IMG_DIGEST);
	memcpy(b + O_KEY_ID, h->key_id, IMG_DIGEST);
	put16(b + O_SIG_LEN, h->sig_len);
	memcpy(b + O_SIG, h->sig, IMG_SIG_MAX);
	memcpy(b + O_RAM_PATH, h->ram_path, IMG_RAM_PATH);
	put64(b + O_RAM_BYTES, h->ram_bytes);
	put64(b + O_RAM_DEV, h->ram_dev);
	put64(b + O_RAM_INO, h->ram_ino);
	memcpy(b + O_RAM_DIGEST, h->ram_digest, IMG_DIGEST);
}

void img_encode(const struct img_header *h, uint8_t b[IMG_HEADER_SIZE])
{
	encode_fields(h, b);
	mbedtls_sha256(b, O_HDR_DIGEST, b + O_HDR_DIGEST, 0);
}

void img_signed_bytes(const struct img_header *h, uint8_t b[IMG_HEADER_SIZE])
{
	encode_fields(h, b);
	memset(b + O_STATE, 0, 4);
	memset(b + O_SIG_LEN, 0, 2 + IMG_SIG_MAX);
}

static int refuse(const char *field, const char *why)
{
	return err_set(EXIT_REFUSED, "header field %s %s", field, why);
}

static int text_field(char *dst, const uint8_t *src, size_t size, const char *field)
{
	if (!memchr(src, 0, size))
		return refuse(field, "is not NUL-terminated");
	memcpy(dst, src, size);
	return 0;
}

/* v4 names its RAM file; other versions have none (all zero). */
static int decode_ram(struct img_header *h, const uint8_t *b)
{
	if (h->version < IMG_VERSION_INSTANT) {
		for (size_t i = O_RAM_PATH; i < O_END_OF_FIELDS; i++)
			if (b[i])
				return refuse("ram_path", "is set in an image without a RAM file");
		return 0;
	}
	if (text_field(h->ram_path, b + O_RAM_PATH, IMG_RAM_PATH, "ram_path") < 0)
		return -1;
	if (!h->ram_path[0] || strstr(h->ram_path, ".."))
		return refuse("ram_path", "is empty or climbs out with '..'");
	h->ram_bytes = get64(b + O_RAM_BYTES);
	h->ram_dev = get64(b + O_RAM_DEV);
	h->ram_ino = get64(b + O_RAM_INO);
	if (h->ram_bytes == 0 || h->ram_bytes != h->ram_size || (h->ram_bytes & 4095))
		return refuse("ram_bytes", "does not match the guest RAM size");
	if (h->channels != 1)
		return refuse("channels", "is not 1 in an instant-mode image");
	memcpy(h->ram_digest, b + O_RAM_DIGEST, IMG_DIGEST);
	return 0;
}

/* The header as a whole: magic, version, size, its own digest, and no
 * bytes set outside the fields. */
static int decode_frame(struct img_header *h, const uint8_t *b)
{
	uint8_t digest[IMG_DIGEST];

	if (memcmp(b + O_MAGIC, IMG_MAGIC, 8))
		return err_set(EXIT_REFUSED, "not a vmsnap image (bad magic)");
	h->version = get32(b + O_VERSION);
	if (h->version < IMG_VERSION_MIN || h->version > IMG_VERSION_MAX)
		return err_set(EXIT_REFUSED, "image version %u is not supported (this vmsnap reads %d..%d)",
			       h->version, IMG_VERSION_MIN, IMG_VERSION_MAX);
	if (get32(b + O_HSIZE) != IMG_HEADER_SIZE)
		return refuse("header_size", "is not 4096");
	mbedtls_sha256(b, O_HDR_DIGEST, digest, 0);
	if (memcmp(digest, b + O_HDR_DIGEST, IMG_DIGEST))
		return err_set(EXIT_REFUSED, "header digest mismatch: the header is corrupt");
	/* Bytes no field owns must be zero: the signature covers the fields as
	 * encoded, so anything there would be neither checked nor signed.
	 * (fuzz_header found 338..339 unchecked: a signed image took any value.) */
	for (size_t g = 0; g < ARRAY_SIZE(gaps); g++)
		for (size_t i = gaps[g].from; i < gaps[g].to; i++)
			if (b[i])
				return refuse("reserved", "is not zero");
	return 0;
}

/* State, flags, and where the definition and the stream lie in a file of
 * size bytes. */
static int decode_layout(struct img_header *h, const uint8_t *b, uint64_t size)
{
	uint64_t end;

	h->state = get32(b + O_STATE);
	if (h->state != IMG_PARTIAL && h->state != IMG_COMPLETE && h->state != IMG_CONSUMED)
		return refuse("state", "has an unknown value");
	h->flags = get32(b + O_FLAGS);
	if (h->flags & ~IMG_F_KNOWN)
		return refuse("flags", "has unknown bits");
	h->created = get64(b + O_CREATED);
	h->def_offset = get64(b + O_DEF_OFF);
	h->def_length = get64(b + O_DEF_LEN);
	h->stream_offset = get64(b + O_STREAM_OFF);
	h->stream_length = get64(b + O_STREAM_LEN);
	h->ram_size = get64(b + O_RAM);
	h->channels = get32(b + O_CHANNELS);
	h->digest_chunk = get32(b + O_CHUNK);
	if (h->def_offset != IMG_HEADER_SIZE)
		return refuse("def_offset", "is not 4096");
	if (h->def_length == 0 || h->def_length > IMG_DEF_MAX)
		return refuse("def_length", "is out of range (1..65536)");
	if (h->stream_offset != img_stream_offset(h->def_length))
		return refuse("stream_offset", "does not follow the definition");
	/* Lengths come from the file: check the sum before trusting it. */
	if (h->stream_length > UINT64_MAX - h->stream_offset)
		return refuse("stream_length", "overflows");
	end = h->stream_offset + h->stream_length;
	if (h->state != IMG_PARTIAL && h->stream_length == 0)
		return refuse("stream_length", "is zero");
	if (end > size)
		return err_set(EXIT_REFUSED, "image is truncated: the stream ends at byte %llu, the image has %llu",
			       (unsigned long long)end, (unsigned long long)size);
	return 0;
}

/* Channels, digest chunk, the text fields, digests and signature. */
static int decode_rest(struct img_header *h, const uint8_t *b)
{
	if (h->channels == 0 || h->channels > IMG_CHANNELS_MAX)
		return refuse("channels", "is out of range (1..256)");
	if (h->digest_chunk && (h->digest_chunk < 4096 || h->digest_chunk > (64u << 20) ||
				(h->digest_chunk & (h->digest_chunk - 1))))
		return refuse("digest_chunk", "is not a power of two in 4 KiB..64 MiB");
	if (text_field(h->name, b + O_NAME, sizeof(h->name), "name") < 0 ||
	    text_field(h->machine, b + O_MACHINE, sizeof(h->machine), "machine") < 0 ||
	    text_field(h->qemu_version, b + O_QEMU, sizeof(h->qemu_version), "qemu_version") < 0)
		return -1;
	memcpy(h->def_digest, b + O_DEF_DIGEST, IMG_DIGEST);
	memcpy(h->payload_digest, b + O_PAYLOAD_DIGEST, IMG_DIGEST);
	memcpy(h->key_id, b + O_KEY_ID, IMG_DIGEST);
	h->sig_len = get16(b + O_SIG_LEN);
	if (h->sig_len > IMG_SIG_MAX)
		return refuse("sig_len", "is larger than 128");
	memcpy(h->sig, b + O_SIG, IMG_SIG_MAX);
	for (size_t i = h->sig_len; i < IMG_SIG_MAX; i++)
		if (h->sig[i])
			return refuse("sig", "has bytes past sig_len");
	return 0;
}

int img_decode(struct img_header *h, const uint8_t b[IMG_HEADER_SIZE], uint64_t size)
{
	memset(h, 0, sizeof(*h));
	if (decode_frame(h, b) < 0 || decode_layout(h, b, size) < 0 || decode_rest(h, b) < 0)
		return -1;
	return decode_ram(h, b);
}

uint64_t img_table_offset(const struct img_header *h)
{
	return ALIGN_UP(h->stream_offset + h->stream_length, IMG_ALIGN);
}

uint64_t img_table_length(const struct img_header *h)
{
	if (!h->digest_chunk)
		return 0;
	return (h->stream_length + h->digest_chunk - 1) / h->digest_chunk * IMG_DIGEST;
}

const char *img_state_name(uint32_t state)
{
	switch (state) {
	case IMG_PARTIAL: return "partial";
	case IMG_COMPLETE: return "complete";
	case IMG_CONSUMED: return "consumed";
	default: return "unknown";
	}
}
