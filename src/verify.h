/* verify: everything checked before QEMU reads a byte of an image: header,
 * state, embedded definition, signature per policy, payload digest (with a
 * chunk table, chunk by chunk as the restore hands it over: vfy_split_*). Shared
 * by restore, verify, resume and provision so the rules exist once. */
#ifndef VMSNAP_VERIFY_H
#define VMSNAP_VERIFY_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "image.h"

struct vfy_opts {
	const char *pubkey;     /* this key only; NULL: the trusted_keys directory */
	bool require_signature; /* refuse unsigned images */
	bool verify_payload;    /* recompute the payload digest */
	bool payload_by_caller; /* with verify_payload: the caller hashes the stream (and a
				   v4 RAM file) as it reads them and compares the digests */
	bool allow_consumed;    /* inspect/verify report it; restore refuses it */
	bool split;             /* restore: checked chunk by chunk as QEMU gets the stream */
	bool direct;            /* the payload read with O_DIRECT: the disk, not the cache */
};

struct vfy_split;
struct relay_check;

struct vfy_result {
	struct img_header h;
	char *def;             /* the embedded definition (malloc'd, NUL-terminated) */
	bool signature_checked;
	char key_used[PATH_MAX];
	bool payload_checked;
	uint64_t digest_ms;
	uint64_t digest_bytes, digest_read; /* the payload digest: covered, read (not holes) */
	bool in_flight;         /* every chunk checked on its way to QEMU (v2 relay, v3 loaded
				   by vmsnap) */
	char ram_path[PATH_MAX];    /* v4: the RAM file, resolved */
	bool ram_checked;       /* v4: its content digest was checked */
	int ram_fd;             /* v4: the RAM file checked, read-only (if ram_open) */
	bool ram_open;
	/* A v2 or v3 image with a chunk table (image.h), to be checked chunk by
	 * chunk as the restore hands it to QEMU (verify_split.c). NULL: none,
	 * or all checked already. */
	struct vfy_split *split;
};

/* Read and check the image open on fd (size bytes, named path). Failures are
 * EXIT_REFUSED and say which check failed. */
int vfy_image(const struct conf *c, int fd, uint64_t size, const char *path,
	      const struct vfy_opts *o, struct vfy_result *r);
void vfy_free(struct vfy_result *r);
/* The errors for a payload (stream) or v4 RAM file digest that differs from
 * the header's: EXIT_REFUSED, -1. */
int vfy_payload_mismatch(const char *path);
int vfy_ram_mismatch(const char *path, const char *ram_path);

/* The whole stream's payload digest, read from fd, compared with the
 * header's (what vfy_image does without o->split); r->split is dropped. */
int vfy_payload_whole(int fd, const char *path, struct vfy_result *r);
/* o->split: a signed v2 or v3 image whose chunk table (image.h) is the
 * true one (its root is the signed digest) is not hashed by vfy_image:
 * r->split is set and the restore checks each chunk as it goes to QEMU.
 * Without such a table, or for a v3 stream whose main RAM block is not
 * found, r->split stays NULL and the whole stream is checked. */
void vfy_split_prepare(int fd, uint64_t size, struct vfy_result *r);
void vfy_split_free(struct vfy_split *sp);
/* The main RAM block of a v3 split: its id, and its length into *len;
 * NULL when the image is not checked that way. */
const char *vfy_split_block(const struct vfy_result *r, uint64_t *len);
/* A v3 image checked by the split whose main RAM block vmsnap loads itself
 * (verify_load.c), so that every chunk is checked as it is read, QEMU
 * parses and copies only checked bytes and the disk is read once.
 * _stream, before QEMU starts: the stream in a new memfd (returned), each
 * chunk checked as it is copied, the block's pages left out and its bitmap
 * cleared so that QEMU loads none of them; -2 (no error) when the image is
 * not laid out for it, -1 on an error (EXIT_REFUSED: a chunk differs).
 * _ram, once QEMU runs (waiting for the stream, its devices reset) and
 * before it loads the stream: the block's pages from fd into ram_fd (QEMU's memory
 * for the block, shared), each chunk checked where it landed, the pages the
 * bitmap does not name zeroed; -1 (EXIT_REFUSED: a chunk differs; QEMU
 * must then go). */
int vfy_load_stream(struct vfy_result *r, int fd, const char *path);
int vfy_load_ram(struct vfy_result *r, int fd, int ram_fd, const char *path);
/* A v2 image with a chunk table: every chunk is checked by the relay as it
 * hands the stream to QEMU (relay.h), nothing before; this is the relay's
 * check (NULL: not such an image), and _relayed, after the load, whether it
 * saw every chunk. */
struct relay_check *vfy_split_check(struct vfy_result *r);
int vfy_split_relayed(struct vfy_result *r, const char *path);

/* Read just the header and definition, with the header's own checks. */
int vfy_read(int fd, uint64_t size, const char *path, struct img_header *h, char **def);
/* A look at what path holds, never an error (errors are cleared): 1 an image
 * whose header h passes vfy_read's checks, 0 it opens but is none, -1 it
 * does not open (missing, neither a file nor a block device). */
int vfy_peek(const char *path, struct img_header *h);
/* path holds an image whose header says golden (unreadable, absent: false). */
bool vfy_golden(const char *path);

#endif
