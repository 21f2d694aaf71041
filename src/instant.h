/* instant: instant mode, where a VM's main RAM is a file (memory-backend-file)
 * so that a save writes only device state and a restore maps the file again. */
#ifndef VMSNAP_INSTANT_H
#define VMSNAP_INSTANT_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "image.h"
#include "qmp.h"
#include "vm.h"

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
 * memory). Fills args[0..3]; buffers live in *buf. */
struct inst_args {
	char object[CONF_PATH_MAX + 160];
	char machine[64];
	const char *argv[5];
};
void inst_args(struct inst_args *a, const char *path, uint64_t size, bool private);

/* Is the VM behind q in instant mode? 1 with its RAM file in path, 0 no, -1 error. */
int inst_detect(struct qmp *q, char *path, size_t size);
/* Record the RAM file in h: size and identity, and its path (absolute; or,
 * for a golden image, a hard link "<image name>.<id>.ram" beside the image,
 * so a later cold start cannot touch it). */
int inst_reference(struct img_header *h, const char *ram, const char *image, bool golden);
/* Write the RAM file's dirty pages to disk. */
int inst_sync(const char *path);

/* The RAM file an image refers to, resolved against the image's directory. */
int inst_resolve(const struct img_header *h, const char *image, char *out, size_t size);
/* Refuse (EXIT_REFUSED) a RAM file that is missing, resized or, for an image
 * that is not golden, another file than the one saved. */
int inst_check(const struct img_header *h, const char *image, char *path, size_t size);

#endif
