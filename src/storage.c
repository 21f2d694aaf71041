/* storage: targets, temp files, O_DIRECT and the durable commit (storage.h). */
#include "storage.h"
#include "err.h"
#include "fsafe.h"
#include "image.h"
#include "log.h"
#include "util.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mount.h> /* BLKGETSIZE64 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

const char *stor_kind_name(enum stor_kind k)
{
	switch (k) {
	case STOR_MISSING: return "new file";
	case STOR_REG: return "regular file";
	case STOR_BLK: return "block device";
	default: return "not a file or block device";
	}
}

static const char *other_kind(mode_t m)
{
	if (S_ISCHR(m)) return "a character device";
	if (S_ISFIFO(m)) return "a pipe";
	if (S_ISSOCK(m)) return "a socket";
	if (S_ISDIR(m)) return "a directory";
	return "not a regular file";
}

static int blk_size(int fd, const char *path, uint64_t *size)
{
	if (ioctl(fd, BLKGETSIZE64, size) < 0)
		return err_sys(EXIT_FAIL, "%s: reading the device size", path);
	return 0;
}

int stor_check_save(const char *path, int version, enum stor_kind *kind, uint64_t *size)
{
	struct stat st;

	*size = 0;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT)
			return err_sys(EXIT_USAGE, "target %s", path);
		*kind = STOR_MISSING;
		return fsafe_target_dir(path);
	}
	if (S_ISREG(st.st_mode)) {
		*kind = STOR_REG;
		return fsafe_target_dir(path);
	}
	if (S_ISBLK(st.st_mode)) {
		int fd;
		*kind = STOR_BLK;
		if (version == IMG_VERSION_INSTANT)
			return err_set(EXIT_USAGE,
				       "target %s is a block device: an instant-mode image comes with its RAM file and needs a file system",
				       path);
		if (version >= 3)
			return err_set(EXIT_USAGE,
				       "target %s is a block device: v3 images are fixed-offset (mapped-ram) and need a regular file; use --format 2 for a block device",
				       path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return err_sys(EXIT_USAGE, "target %s", path);
		if (blk_size(fd, path, size) < 0) {
			close(fd);
			return -1;
		}
		close(fd);
		return 0;
	}
	*kind = STOR_OTHER;
	if (version >= 3)
		return err_set(EXIT_USAGE,
			       "target %s is %s: v3 images are fixed-offset (mapped-ram) and need a seekable regular file",
			       path, other_kind(st.st_mode));
	return err_set(EXIT_USAGE, "target %s is %s: images go to a regular file or a block device", path,
		       other_kind(st.st_mode));
}

/* Regular files are written as .NAME.vmsnap-partial beside the target; a
 * lock on it keeps two saves apart and lets a re-run reuse a stale one. */
static int create_file(struct stor_target *t)
{
	const char *slash = strrchr(t->path, '/');
	int len = slash ? (int)(slash - t->path) + 1 : 0;

	if (str_fmt(t->tmp, sizeof(t->tmp), "%.*s.%s.vmsnap-partial", len, t->path,
		    slash ? slash + 1 : t->path) < 0)
		return err_set(EXIT_USAGE, "%s: path too long", t->path);
	t->fd = fsafe_target_dir(t->path) < 0 ? -1 : fsafe_open_tmp(t->tmp);
	if (t->fd < 0) {
		t->tmp[0] = 0; /* not ours to remove */
		return -1;
	}
	if (flock(t->fd, LOCK_EX | LOCK_NB) < 0) {
		int busy = errno == EWOULDBLOCK;
		close(t->fd);
		t->fd = -1;
		t->tmp[0] = 0; /* not ours to remove */
		if (busy)
			return err_set(EXIT_FAIL, "target %s is busy: another save is writing it", t->path);
		return err_sys(EXIT_FAIL, "locking %s", t->path);
	}
	if (ftruncate(t->fd, 0) < 0)
		return err_sys(EXIT_FAIL, "truncating %s", t->tmp);
	return 0;
}

/* The console names targets for someone at a serial port: no symlink there
 * may lead a save or read elsewhere (see stor_refuse_links). */
static bool no_links;

void stor_refuse_links(void)
{
	no_links = true;
}

int stor_open_direct(const char *path, int flags)
{
	return open(path, flags | O_DIRECT | O_CLOEXEC);
}

int stor_reopen(int fd, int flags)
{
	char proc[32];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return open(proc, flags | O_CLOEXEC);
}

int stor_reopen_direct(int fd)
{
	return stor_reopen(fd, O_RDONLY | O_DIRECT);
}

int stor_create(struct stor_target *t, const char *path, bool direct, bool insisted)
{
	struct stat st;
	char real[PATH_MAX];

	memset(t, 0, sizeof(*t));
	t->fd = t->dfd = -1;
	/* Follow a symlink to where it points, so the rename replaces the image and not the link. */
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		/* another user's link (say in /tmp) must not pick what root replaces */
		if (no_links || (st.st_uid != 0 && st.st_uid != geteuid()))
			return err_set(EXIT_USAGE, "target %s is a symbolic link of another user (or on the console): name the file itself",
				       path);
		if (realpath(path, real))
			path = real;
	}
	if (str_copy(t->path, sizeof(t->path), path) < 0)
		return err_set(EXIT_USAGE, "%s: path too long", path);
	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
		t->kind = STOR_BLK;
		/* O_EXCL on a block device: refuse a mounted or otherwise claimed device. */
		t->fd = open(path, O_WRONLY | O_EXCL | O_CLOEXEC);
		if (t->fd < 0)
			return err_sys(EXIT_FAIL, "opening %s exclusively (mounted or in use?)", path);
		if (blk_size(t->fd, path, &t->size) < 0)
			return -1;
	} else {
		t->kind = STOR_REG;
		if (create_file(t) < 0)
			return -1;
	}
	if (!direct)
		return 0;
	t->dfd = stor_open_direct(t->kind == STOR_BLK ? t->path : t->tmp, O_WRONLY);
	if (t->dfd >= 0)
		return 0;
	if (errno != EINVAL)
		return err_sys(EXIT_FAIL, "opening %s with O_DIRECT", t->path);
	if (insisted)
		return err_set(EXIT_USAGE,
			       "the file system of %s refuses O_DIRECT (tmpfs or ramfs?): drop --bypass-cache or save elsewhere",
			       t->path);
	log_warn("the file system of %s refuses O_DIRECT; writing through the page cache instead",
		 t->path);
	return 0;
}

/* Test hook for the durability tests: VMSNAP_CRASH_AT=<step> ends the process
 * right there, as a power cut or kill -9 would. Only in test builds: the
 * host build (VMSNAP_TEST_BUILD) or CONFIG_DEBUG_CRASH_POINTS. */
#ifdef VMSNAP_TEST_BUILD
#define CRASH_POINTS 1
#else
#define CRASH_POINTS IS_ENABLED(CONFIG_DEBUG_CRASH_POINTS)
#endif
void stor_crash_point(const char *step)
{
	const char *at = CRASH_POINTS ? getenv("VMSNAP_CRASH_AT") : NULL;

	if (at && !strcmp(at, step)) {
		fprintf(stderr, "vmsnap: crash injected at %s\n", step);
		_exit(137);
	}
	/* VMSNAP_HOLD_AT: stop here (SIGSTOP) until a test lets go (SIGCONT),
	 * to deliver something (power back) at exactly this step. */
	at = CRASH_POINTS ? getenv("VMSNAP_HOLD_AT") : NULL;
	if (at && !strcmp(at, step)) {
		fprintf(stderr, "vmsnap: held at %s\n", step);
		raise(SIGSTOP);
	}
}

static void *sync_thread(void *arg)
{
	struct stor_target *t = arg;

	t->sync_errno = fdatasync(t->fd) < 0 ? errno : 0;
	return NULL;
}

void stor_sync_start(struct stor_target *t)
{
	/* No thread: stor_seal syncs, only later. */
	t->syncing = t->syncing || pthread_create(&t->syncer, NULL, sync_thread, t) == 0;
}

int stor_sync_wait(struct stor_target *t)
{
	if (!t->syncing)
		return 0;
	pthread_join(t->syncer, NULL);
	t->syncing = false;
	errno = t->sync_errno;
	return errno ? err_sys(EXIT_FAIL, "syncing %s", t->path) : 0;
}

int stor_write_table(struct stor_target *t, const struct img_header *h, const uint8_t *table,
		     uint64_t from)
{
	uint64_t off = img_table_offset(h), len = img_table_length(h), gap = off - from;
	uint8_t *buf;
	int rc = 1;

	if (t->kind == STOR_BLK && off + len > t->size) {
		log_debug("no room for the chunk table on %s: a restore checks the whole stream first", t->path);
		return 0;
	}
	if (!(buf = calloc(1, gap + len)))
		return err_sys(EXIT_FAIL, "writing the chunk table of %s", t->path);
	memcpy(buf + gap, table, len);
	if (pwrite_all(t->fd, buf, gap + len, (off_t)from) < 0)
		rc = err_sys(EXIT_FAIL, "writing the chunk table of %s", t->path);
	free(buf);
	return rc;
}

int stor_seal(struct stor_target *t, const uint8_t header[IMG_HEADER_SIZE])
{
	if (stor_sync_wait(t) < 0)
		return -1;
	stor_crash_point("before-data-sync");
	if (fdatasync(t->fd) < 0)
		return err_sys(EXIT_FAIL, "syncing %s", t->kind == STOR_BLK ? t->path : t->tmp);
	stor_crash_point("before-header");
	if (pwrite_all(t->fd, header, IMG_HEADER_SIZE, 0) < 0)
		return err_sys(EXIT_FAIL, "writing the header of %s", t->path);
	if (fdatasync(t->fd) < 0)
		return err_sys(EXIT_FAIL, "syncing the header of %s", t->path);
	if (t->drop_cache) /* all of it clean now: dropping loses nothing */
		posix_fadvise(t->fd, 0, 0, POSIX_FADV_DONTNEED);
	return 0;
}

int stor_place(struct stor_target *t)
{
	stor_crash_point("before-rename");
	if (t->kind == STOR_REG) {
		if (rename(t->tmp, t->path) < 0)
			return err_sys(EXIT_FAIL, "renaming %s to %s", t->tmp, t->path);
		t->tmp[0] = 0;
		if (fsync_parent(t->path) < 0)
			return -1;
	}
	stor_crash_point("after-commit");
	return 0;
}

int stor_commit(struct stor_target *t, const uint8_t header[IMG_HEADER_SIZE])
{
	return stor_seal(t, header) < 0 ? -1 : stor_place(t);
}

void stor_close(struct stor_target *t)
{
	if (t->syncing) {
		pthread_join(t->syncer, NULL);
		t->syncing = false;
	}
	if (t->tmp[0])
		unlink(t->tmp);
	t->tmp[0] = 0;
	if (t->dfd >= 0)
		close(t->dfd);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = t->dfd = -1;
}

int stor_open_image(const char *path, int *fd, uint64_t *size)
{
	struct stat st;

	*fd = fsafe_open_read(path, no_links);
	if (*fd < 0)
		return -1;
	if (fstat(*fd, &st) < 0) {
		close(*fd);
		return err_sys(EXIT_FAIL, "image %s", path);
	}
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode) && blk_size(*fd, path, size) == 0)
		return 0;
	close(*fd);
	if (S_ISBLK(st.st_mode))
		return -1;
	return err_set(EXIT_USAGE, "image %s is %s: images are regular files or block devices", path,
		       other_kind(st.st_mode));
}

int stor_rewrite_header(const char *path, const struct img_header *h)
{
	uint8_t buf[IMG_HEADER_SIZE];
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return err_sys(EXIT_FAIL, "writing the header of %s", path);
	img_encode(h, buf);
	if (pwrite_all(fd, buf, sizeof(buf), 0) < 0 || fdatasync(fd) < 0) {
		close(fd);
		return err_sys(EXIT_FAIL, "writing the header of %s", path);
	}
	close(fd);
	return 0;
}
