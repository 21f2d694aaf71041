/* storage: where images live: classify targets (file, block device, other),
 * open them for writing behind a temporary name, O_DIRECT fds, and the
 * durable commit (data synced, header last, rename, directory synced). */
#ifndef VMSNAP_STORAGE_H
#define VMSNAP_STORAGE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include "image.h"

enum stor_kind { STOR_MISSING, STOR_REG, STOR_BLK, STOR_OTHER };

struct stor_target {
	char path[PATH_MAX]; /* where the image ends up (symlinks resolved) */
	char tmp[PATH_MAX];  /* regular files: the name it is written under */
	enum stor_kind kind;
	int fd;          /* buffered, O_WRONLY */
	int dfd;         /* O_DIRECT, or -1 */
	uint64_t size;   /* block devices: capacity */
	pthread_t syncer;   /* stor_sync_start: the data's fdatasync, in the background */
	bool syncing;
	int sync_errno;
	bool drop_cache; /* written through the page cache for a signed save's digest, though
			    --bypass-cache was asked for: dropped from the cache once synced */
};

/* Classify path for a save of the given image version, without touching it:
 * v3 needs a regular file (or a new file in an existing directory). */
int stor_check_save(const char *path, int version, enum stor_kind *kind, uint64_t *size);
/* Open the target for writing (temp name for files). direct: also open an
 * O_DIRECT fd; if the file system refuses, fail if insisted, else warn and
 * continue without (t->dfd == -1). */
int stor_create(struct stor_target *t, const char *path, bool direct, bool insisted);
/* Make everything durable with header (state complete) written last, then
 * move the file into place. */
int stor_commit(struct stor_target *t, const uint8_t header[IMG_HEADER_SIZE]);
/* The chunk table (image.h) of h after its stream, the bytes from `from`
 * (the end of what was written) up to it zeroed: 1 written, 0 a device
 * without room for it (its restores check the whole stream first), -1
 * error. Synced by the commit, before the complete header. */
int stor_write_table(struct stor_target *t, const struct img_header *h, const uint8_t *table,
		     uint64_t from);
/* stor_commit in two steps, so the image can be checked in between:
 * seal (data synced, header written and synced), place (rename, directory synced). */
int stor_seal(struct stor_target *t, const uint8_t header[IMG_HEADER_SIZE]);
int stor_place(struct stor_target *t);
/* Start fdatasync of the data in a thread of its own, so the disk writes while
 * the caller hashes the same pages from the cache; stor_sync_wait joins it
 * (0, or the sync's error). stor_seal and stor_close wait for it too. */
void stor_sync_start(struct stor_target *t);
int stor_sync_wait(struct stor_target *t);
/* Close the target. A save that was not committed is forgotten: its temp
 * file is removed (files); a block device keeps its partial header. */
void stor_close(struct stor_target *t);

/* Open an image read-only (never blocking: a FIFO or other special file is
 * refused); size is the file size or device capacity. */
int stor_open_image(const char *path, int *fd, uint64_t *size);
/* Second fd of the same image with O_DIRECT (flags: O_RDONLY or O_WRONLY):
 * -1 with errno EINVAL when the file system refuses. */
int stor_open_direct(const char *path, int flags);
/* The file fd has open, once more with flags (through /proc/self/fd: the
 * same file, not whatever its name now is), or -1; _direct: O_DIRECT,
 * for reading. */
int stor_reopen(int fd, int flags);
int stor_reopen_direct(int fd);

/* From now on (the console) a symlink as the last part of a target or image
 * path is refused, not followed. */
void stor_refuse_links(void);

/* Write h as the header of the image at path and sync it (state changes,
 * signing in place). */
int stor_rewrite_header(const char *path, const struct img_header *h);

const char *stor_kind_name(enum stor_kind k);
/* Test hook: with VMSNAP_CRASH_AT=step, _exit(137) here, as kill -9 would;
 * with VMSNAP_HOLD_AT=step, stop (SIGSTOP) until SIGCONT. Steps: after-stop
 * (save), before-data-sync, before-header, before-rename, after-commit
 * (stor_commit). */
void stor_crash_point(const char *step);

#endif
