/* image: the 4096-byte image header (little-endian, fixed layout): encode,
 * decode, validate against the file it came from. Layout in README. */
#ifndef VMSNAP_IMAGE_H
#define VMSNAP_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#define IMG_MAGIC "VMSNAPIM"
#define IMG_HEADER_SIZE 4096u
#define IMG_ALIGN 4096u         /* definition and stream start on this boundary */
#define IMG_DEF_MAX (64u << 10) /* embedded VM definition */
#define IMG_SIG_MAX 128u
#define IMG_DIGEST 32u
#define IMG_VERSION_MIN 2
#define IMG_VERSION_MAX 4
#define IMG_VERSION_INSTANT 4 /* instant mode: the RAM stays in a file the image names */
#define IMG_RAM_PATH 256u
#define IMG_CHANNELS_MAX 256u

/* state: distinct, non-trivial words, so one flipped bit cannot turn an
 * unfinished image into a finished one. */
enum img_state {
	IMG_PARTIAL = 0x54524150u,  /* "PART": being written */
	IMG_COMPLETE = 0x454e4f44u, /* "DONE": durable, restorable */
	IMG_CONSUMED = 0x44455355u, /* "USED": resumed once; never again */
};

enum img_flag {
	IMG_F_WAS_RUNNING = 1u << 0, /* resume it running unless told otherwise */
	IMG_F_GOLDEN = 1u << 1,      /* reusable: restored every boot, never consumed */
	IMG_F_DIRECT_IO = 1u << 2,   /* saved with O_DIRECT */
	IMG_F_RAM_BACKEND = 1u << 3, /* RAM was vmsnap's memory backend: restore needs one too */
	IMG_F_KNOWN = 0xfu,
};

struct img_header {
	uint32_t version;
	uint32_t state;
	uint32_t flags;
	uint64_t created; /* unix seconds */
	uint64_t def_offset, def_length;
	uint64_t stream_offset, stream_length;
	uint64_t ram_size;
	uint32_t channels;     /* multifd channels (v3) or 1 */
	uint32_t digest_chunk; /* payload digest chunk size; 0: no payload digest */
	char name[64];
	char machine[64];
	char qemu_version[32];
	uint8_t def_digest[IMG_DIGEST];     /* SHA-256 of the VM definition */
	uint8_t payload_digest[IMG_DIGEST]; /* root over the stream's chunks */
	uint8_t key_id[IMG_DIGEST];         /* SHA-256 of the signer's public key (DER) */
	uint16_t sig_len;                   /* 0: unsigned */
	uint8_t sig[IMG_SIG_MAX];           /* ECDSA P-256, DER */
	/* v4 (instant mode): the guest RAM lives in a file of its own. */
	char ram_path[IMG_RAM_PATH];        /* absolute, or relative to the image's directory */
	uint64_t ram_bytes;                 /* its size */
	uint64_t ram_dev, ram_ino;          /* its identity (resume-once images) */
	uint8_t ram_digest[IMG_DIGEST];     /* payload digest of the whole file; zero: none */
};

/* Serialise h into buf; header_digest is computed over the result. */
void img_encode(const struct img_header *h, uint8_t buf[IMG_HEADER_SIZE]);
/* Parse and validate buf against the image's size in bytes; err_*
 * (EXIT_REFUSED) names the field that is wrong. */
int img_decode(struct img_header *h, const uint8_t buf[IMG_HEADER_SIZE], uint64_t image_size);
/* The bytes a signature covers: the header with state, signature and header
 * digest zeroed (state changes after signing: complete, consumed). */
void img_signed_bytes(const struct img_header *h, uint8_t buf[IMG_HEADER_SIZE]);

/* A signed v3 image's chunk table, written after its stream: the payload
 * digest's chunk hashes in order (SIG_HASH bytes each), at the first
 * IMG_ALIGN boundary after the stream. Whether an image has one follows
 * from the bytes alone: a table whose root (sig_payload_root) is the signed
 * payload digest is the true one. Length 0: no payload digest, no table. */
uint64_t img_table_offset(const struct img_header *h);
uint64_t img_table_length(const struct img_header *h);

/* Where the stream starts for a definition of def_length bytes. */
uint64_t img_stream_offset(uint64_t def_length);
const char *img_state_name(uint32_t state);

#endif
