/* verify: everything checked before QEMU reads a byte of an image: header,
 * state, embedded definition, signature per policy, payload digest (with a
 * chunk table, partly as QEMU loads it: vfy_split_*). Shared
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
	bool split;             /* restore: a v3 RAM block may be checked after the load */
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
	uint64_t digest_memory; /* of them hashed from QEMU's memory after the load (split) */
	char ram_path[PATH_MAX];    /* v4: the RAM file, resolved */
	bool ram_checked;       /* v4: its content digest was checked */
	int ram_fd;             /* v4: the RAM file checked, read-only (if ram_open) */
	bool ram_open;
	/* A v3 image with a chunk table (image.h): all of it checked but its
	 * main RAM block's pages, which vfy_split_finish checks once QEMU has
	 * loaded them (verify_split.c). NULL: none, or all checked already. */
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

struct qemu_mem;
/* verify_split.c. _prepare (from vfy_image): with a chunk table whose root
 * is the signed digest and a v3 stream whose largest RAM block is
 * recognised, every chunk but that block's pages is checked against the
 * table from the file and r->split set; else nothing (the whole stream is
 * checked the usual way). -1: a chunk differs, or a read error. _finish:
 * the block's chunks, hashed from QEMU's memory m where it holds that block
 * (else from the file), compared with the table; a chunk whose memory
 * differs is read from the file (QEMU leaves a page the bitmap does not
 * name as it was). -1 (EXIT_REFUSED): the image differs from what was signed. */
int vfy_split_prepare(int fd, uint64_t size, const char *path, struct vfy_result *r);
int vfy_split_finish(struct vfy_result *r, int fd, const struct qemu_mem *m, const char *path);
void vfy_split_free(struct vfy_split *sp);
/* A v2 image with a chunk table: every chunk is checked by the relay as it
 * hands the stream to QEMU (relay.h), nothing before; this is the relay's
 * check (NULL: not such an image), and _finish says whether it saw every
 * chunk. */
struct relay_check *vfy_split_check(struct vfy_result *r);

/* Read just the header and definition, with the header's own checks. */
int vfy_read(int fd, uint64_t size, const char *path, struct img_header *h, char **def);
/* A look at what path holds, never an error (errors are cleared): 1 an image
 * whose header h passes vfy_read's checks, 0 it opens but is none, -1 it
 * does not open (missing, neither a file nor a block device). */
int vfy_peek(const char *path, struct img_header *h);
/* path holds an image whose header says golden (unreadable, absent: false). */
bool vfy_golden(const char *path);

#endif
