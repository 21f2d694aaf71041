/* instant: instant mode, where a VM's main RAM is a file (memory-backend-file)
 * so that a save writes only device state and a restore maps the file again. */
#ifndef VMSNAP_INSTANT_H
#define VMSNAP_INSTANT_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "image.h"
#include "qmp.h"
#include "vm_def.h"

#define INST_BACKEND_ID "vmsnap-ram"

/* The guest RAM size a definition asks for (-m), refusing definitions that
 * bring their own memory backend or memory hotplug. */
int inst_ram_size(const struct vm_def *d, const char *origin, uint64_t *size);
/* <save_dir>/NAME.ram: where a running instant VM keeps its RAM. */
int inst_ram_path(const struct conf *c, const char *name, char *out, size_t size);
/* A new, empty (sparse) RAM file: a new inode, so images that referred to
 * the old one no longer match it. */
int inst_fresh(const char *path, uint64_t size);

/* QEMU arguments that put the RAM in path: shared (writes reach the file) or
 * private (golden: the file is opened read-only, the guest's writes stay in
 * memory). Fills a->argv (NULL-terminated), whose strings live in *a. */
struct inst_args {
	char object[2 * CONF_PATH_MAX + 200];
	char machine[64];
	const char *argv[5];
};
int inst_args(struct inst_args *a, const char *path, uint64_t size, bool private);
/* Private (golden) from an open, checked RAM file: QEMU inherits fd (its
 * O_CLOEXEC is cleared here) and maps the file behind it. */
int inst_args_fd(struct inst_args *a, int fd, uint64_t size);
/* The same backend id in anonymous memory: restoring, with its RAM in the
 * stream, a VM that ran on vmsnap's backend (the RAM block's name must match). */
void inst_args_anon(struct inst_args *a, uint64_t size);
/* True if d leaves the RAM to QEMU (no backend, memory path or NUMA memory
 * of its own) and asks for exactly size bytes with a plain -m. */
bool inst_plain_ram(const struct vm_def *d, uint64_t size);
/* The RAM as QEMU's block named id (the machine's default RAM id, so that
 * the stream's pages land in it) in a new memfd of size bytes that vmsnap
 * holds too (returned; QEMU inherits it, shared): what QEMU loads there can
 * be read back without going through QEMU's address space. -1, err set. */
int inst_args_memfd(struct inst_args *a, const char *id, uint64_t size);

/* How the VM behind q holds its RAM: INST_SHARED (instant mode, its RAM
 * file in path), INST_PRIVATE (vmsnap's backend mapped privately: running
 * from a golden pair), INST_NONE (QEMU's own), or -1. */
enum { INST_NONE, INST_SHARED, INST_PRIVATE };
int inst_detect(struct qmp *q, char *path, size_t size);
/* Record the RAM file in h: size and identity, and its path (absolute; or,
 * for a golden image, a hard link "<image name>.<id>.ram" beside the image,
 * so a later cold start cannot touch it). */
int inst_reference(struct img_header *h, const char *ram, const char *image, bool golden);
/* Write the RAM file's dirty pages to disk. */
int inst_sync(const char *path);
/* Start writing them back, without waiting (for watch, between power fails). */
void inst_writeback(const char *path);
/* The payload digest of a whole RAM file (len bytes; holes are not read). */
int inst_digest(const char *path, uint64_t len, uint8_t out[IMG_DIGEST]);
int inst_digest_fd(int fd, uint64_t len, uint8_t out[IMG_DIGEST]);
/* fs-verity on a RAM file: 1 on, 0 off; enabling answers 1 done, 0 when the
 * file system or kernel does not offer it (known only by trying), -1 error. */
int inst_verity(const char *path);
int inst_enable_verity(const char *path);

/* The RAM file an image refers to, resolved against the image's directory. */
int inst_resolve(const struct img_header *h, const char *image, char *out, size_t size);
/* Refuse (EXIT_REFUSED) a RAM file that is missing, resized or, for an image
 * that is not golden, another file than the one saved. Checked through one
 * open (read-only) fd: *fdp keeps it (O_CLOEXEC) if fdp is not NULL. */
int inst_check(const struct img_header *h, const char *image, char *path, size_t size, int *fdp);

#endif
