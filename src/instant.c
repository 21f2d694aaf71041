/* instant: RAM files for instant mode (see instant.h). */
#include "instant.h"
#include "err.h"
#include "fsafe.h"
#include "sign.h"
#include "util.h"

#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* -m takes "1G", "1024" (MiB when no unit) or "size=1G[,slots=..,maxmem=..]". */
static int parse_mem(const char *val, const char *origin, uint64_t *size)
{
	char num[64];
	size_t n;

	if (!strncmp(val, "size=", 5))
		val += 5;
	n = strcspn(val, ",");
	if (val[n])
		return err_set(EXIT_USAGE, "%s: -m %s: instant mode takes a plain size (no slots or maxmem)",
			       origin, val);
	if (n >= sizeof(num))
		return err_set(EXIT_USAGE, "%s: -m %s: not a size", origin, val);
	memcpy(num, val, n);
	num[n] = 0;
	if (n && num[n - 1] >= '0' && num[n - 1] <= '9' && n + 1 < sizeof(num))
		strcat(num, "M"); /* QEMU's unit when none is given */
	if (parse_size(num, size) < 0 || *size == 0 || (*size & 4095))
		return err_set(EXIT_USAGE, "%s: -m %s: not a size", origin, val);
	return 0;
}

/* The first option of d that brings its own memory backend (or NUMA
 * memory), or -1. */
static int own_backend(const struct vm_def *d)
{
	for (int i = 0; i < d->argc; i++) {
		const char *o = d->argv[i], *v = i + 1 < d->argc ? d->argv[i + 1] : "";
		if (o[1] == '-')
			o++;
		if (!strcmp(o, "-mem-path") || !strcmp(o, "-mem-prealloc") ||
		    (!strcmp(o, "-object") && !strncmp(v, "memory-backend", 14)) ||
		    ((!strcmp(o, "-machine") || !strcmp(o, "-M")) && strstr(v, "memory-backend")) ||
		    (!strcmp(o, "-numa") && strstr(v, "memdev")))
			return i;
	}
	return -1;
}

int inst_ram_size(const struct vm_def *d, const char *origin, uint64_t *size)
{
	int own = own_backend(d);
	bool have = false;

	if (own >= 0)
		return err_set(EXIT_USAGE,
			       "%s: %s %s: in instant mode vmsnap provides the memory backend; remove it",
			       origin, d->argv[own], own + 1 < d->argc ? d->argv[own + 1] : "");
	for (int i = 0; i < d->argc; i++) {
		const char *o = d->argv[i], *v = i + 1 < d->argc ? d->argv[i + 1] : "";
		if (o[1] == '-')
			o++;
		if (!strcmp(o, "-m")) {
			if (parse_mem(v, origin, size) < 0)
				return -1;
			have = true;
		}
	}
	if (!have)
		return err_set(EXIT_USAGE, "%s: instant mode needs the RAM size: add a line -m SIZE", origin);
	return 0;
}

int inst_ram_path(const struct conf *c, const char *name, char *out, size_t size)
{
	if (str_fmt(out, size, "%s/%s.ram", c->save_dir, name) < 0)
		return err_set(EXIT_USAGE, "save_dir %s: too long", c->save_dir);
	return 0;
}

int inst_fresh(const char *path, uint64_t size)
{
	int fd;

	if (unlink(path) < 0 && errno != ENOENT)
		return err_sys(EXIT_FAIL, "removing the old RAM file %s", path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(EXIT_FAIL, "creating the RAM file %s", path);
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		unlink(path);
		return err_sys(EXIT_FAIL, "sizing the RAM file %s", path);
	}
	close(fd);
	return 0;
}

/* -object (already in a->object) and the -machine option that uses it. */
static void fill_argv(struct inst_args *a, const char *id)
{
	snprintf(a->machine, sizeof(a->machine), "memory-backend=%s", id);
	a->argv[0] = "-object";
	a->argv[1] = a->object;
	a->argv[2] = "-machine";
	a->argv[3] = a->machine;
	a->argv[4] = NULL;
}

/* A path as one QEMU option value: ',' doubled, so that a directory named
 * "x,mem-path=/other" stays part of the path. */
static void escape_commas(char *out, size_t size, const char *path)
{
	size_t n = 0;

	for (; *path && n + 3 < size; path++) {
		out[n++] = *path;
		if (*path == ',')
			out[n++] = ',';
	}
	out[n] = 0;
}

int inst_args(struct inst_args *a, const char *path, uint64_t size, bool private)
{
	char esc[2 * CONF_PATH_MAX + 16];

	if (strlen(path) >= CONF_PATH_MAX + 8)
		return err_set(EXIT_USAGE, "RAM file path %s: too long", path);
	escape_commas(esc, sizeof(esc), path);
	/* Private: read-only file, copy-on-write mapping (QEMU >= 8.2's rom=off). */
	snprintf(a->object, sizeof(a->object),
		 "memory-backend-file,id=" INST_BACKEND_ID ",mem-path=%s,size=%llu,%s", esc,
		 (unsigned long long)size, private ? "share=off,readonly=on,rom=off" : "share=on");
	fill_argv(a, INST_BACKEND_ID);
	return 0;
}

int inst_args_fd(struct inst_args *a, int fd, uint64_t size)
{
	char path[32];

	/* QEMU open()s mem-path (no /dev/fdset there): /proc/self/fd/N opens
	 * the very file behind the fd it inherited, not whatever a path names. */
	if (fcntl(fd, F_SETFD, 0) < 0)
		return err_sys(EXIT_FAIL, "RAM file fd");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return inst_args(a, path, size, true);
}

void inst_args_anon(struct inst_args *a, uint64_t size)
{
	snprintf(a->object, sizeof(a->object), "memory-backend-ram,id=" INST_BACKEND_ID ",size=%llu",
		 (unsigned long long)size);
	fill_argv(a, INST_BACKEND_ID);
}

bool inst_plain_ram(const struct vm_def *d, uint64_t size)
{
	uint64_t m;
	bool ok = inst_ram_size(d, "", &m) == 0 && m == size;

	err_clear();
	return ok;
}

/* A RAM block id as the one word of an option value. */
static bool id_ok(const char *id)
{
	size_t n = strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

	return n && !id[n] && n < 48;
}

int inst_args_memfd(struct inst_args *a, const char *id, uint64_t size)
{
	int fd;

	if (!id_ok(id))
		return err_set(EXIT_FAIL, "RAM block id '%s': not one QEMU option word", id);
	/* Without MFD_CLOEXEC: QEMU inherits it and opens /proc/self/fd/N. */
	fd = memfd_create("vmsnap-ram", 0);
	if (fd < 0)
		return err_sys(EXIT_FAIL, "guest RAM (memfd)");
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return err_sys(EXIT_FAIL, "guest RAM (memfd of %llu bytes)", (unsigned long long)size);
	}
	snprintf(a->object, sizeof(a->object),
		 "memory-backend-file,id=%s,mem-path=/proc/self/fd/%d,size=%llu,share=on", id, fd,
		 (unsigned long long)size);
	fill_argv(a, id);
	return fd;
}

int inst_resolve(const struct img_header *h, const char *image, char *out, size_t size)
{
	int rc = h->ram_path[0] == '/' ? str_copy(out, size, h->ram_path)
				       : path_beside(out, size, image, h->ram_path);

	return rc < 0 ? err_set(EXIT_REFUSED, "ram_path too long") : 0;
}

static int check_stat(const struct img_header *h, const char *image, const char *path,
		      const struct stat *stp)
{
	const struct stat st = *stp;

	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != h->ram_bytes)
		return err_set(EXIT_REFUSED,
			       "image %s: its RAM file %s is %llu bytes, the image needs %llu: refused",
			       image, path, (unsigned long long)st.st_size, (unsigned long long)h->ram_bytes);
	/* A golden pair may be copied anywhere (its digest is its identity); a
	 * resume-once image belongs to the very file it was saved with. */
	if (!(h->flags & IMG_F_GOLDEN) &&
	    ((uint64_t)st.st_dev != h->ram_dev || (uint64_t)st.st_ino != h->ram_ino))
		return err_set(EXIT_REFUSED,
			       "image %s: its RAM file %s was replaced since the save (another inode): refused",
			       image, path);
	return 0;
}

/* The RAM file opened once: what is checked (fstat, digest) is the file
 * QEMU is handed (fd), whatever its path names by then. */
static int check_open(const char *image, const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_sys(EXIT_REFUSED, "image %s: its RAM file %s", image, path);
	if (fstat(fd, st) < 0) {
		err_sys(EXIT_FAIL, "RAM file %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

int inst_check(const struct img_header *h, const char *image, char *path, size_t size, int *fdp)
{
	struct stat st;
	int fd;

	if (inst_resolve(h, image, path, size) < 0 || (fd = check_open(image, path, &st)) < 0)
		return -1;
	if (check_stat(h, image, path, &st) < 0) {
		close(fd);
		return -1;
	}
	if (fdp)
		*fdp = fd;
	else
		close(fd);
	return 0;
}


int inst_detect(struct qmp *q, char *path, size_t size)
{
	cJSON *args = cJSON_CreateObject(), *r;
	int rc;

	cJSON_AddStringToObject(args, "path", "/objects/" INST_BACKEND_ID);
	cJSON_AddStringToObject(args, "property", "share");
	if (qmp_call(q, "qom-get", args, NULL, 0, &r) < 0) {
		err_clear(); /* no such object: QEMU's own RAM */
		return INST_NONE;
	}
	rc = cJSON_IsTrue(r);
	cJSON_Delete(r);
	/* A private mapping (a VM running from a golden pair) keeps the guest's
	 * changes out of the file: such a VM is saved with its RAM in the stream. */
	if (!rc)
		return INST_PRIVATE;
	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "path", "/objects/" INST_BACKEND_ID);
	cJSON_AddStringToObject(args, "property", "mem-path");
	if (qmp_call(q, "qom-get", args, NULL, 0, &r) < 0)
		return -1;
	rc = cJSON_IsString(r) && str_copy(path, size, r->valuestring) == 0;
	cJSON_Delete(r);
	return rc ? INST_SHARED : err_set(EXIT_FAIL, "instant mode: QEMU reports no usable mem-path");
}

int inst_reference(struct img_header *h, const char *ram, const char *image, bool golden)
{
	char link_path[PATH_MAX];
	const char *base = strrchr(image, '/');
	struct stat st;

	if (stat(ram, &st) < 0)
		return err_sys(EXIT_FAIL, "RAM file %s", ram);
	h->ram_bytes = (uint64_t)st.st_size;
	h->ram_dev = (uint64_t)st.st_dev;
	h->ram_ino = (uint64_t)st.st_ino;
	if (!golden)
		return str_copy(h->ram_path, sizeof(h->ram_path), ram) < 0
			       ? err_set(EXIT_USAGE, "RAM file path %s: longer than 255", ram) : 0;
	/* A name of its own for every save: an older golden image beside it
	 * keeps its RAM file until the new image has replaced it. */
	base = base ? base + 1 : image;
	if (str_fmt(h->ram_path, sizeof(h->ram_path), "%s.%llx-%x.ram", base,
		    (unsigned long long)h->created, (unsigned)getpid()) < 0 ||
	    path_beside(link_path, sizeof(link_path), image, h->ram_path) < 0)
		return err_set(EXIT_USAGE, "image name %s: too long", image);
	unlink(link_path);
	if (link(ram, link_path) < 0)
		return err_sys(EXIT_FAIL, "linking RAM file %s to %s (same file system needed)", ram, link_path);
	return fsync_parent(link_path);
}

int inst_sync(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return err_sys(EXIT_FAIL, "RAM file %s", path);
	rc = fdatasync(fd);
	close(fd);
	return rc < 0 ? err_sys(EXIT_FAIL, "syncing the RAM file %s", path) : 0;
}

void inst_writeback(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	close(fd);
}

int inst_digest_fd(int fd, uint64_t len, uint8_t out[IMG_DIGEST])
{
	return sig_payload_digest(fd, 0, len, SIG_CHUNK, usable_cpus(), out);
}

int inst_digest(const char *path, uint64_t len, uint8_t out[IMG_DIGEST])
{
	int fd = fsafe_open_read(path, false), rc; /* swapped for a FIFO: no hang */

	if (fd < 0)
		return err_wrap("RAM file");
	rc = sig_payload_digest(fd, 0, len, SIG_CHUNK, usable_cpus(), out);
	close(fd);
	return rc;
}

/* From linux/fs.h and linux/fsverity.h, which musl's headers do not carry. */
#define VMSNAP_FS_IOC_GETFLAGS _IOR('f', 1, long)
#define VMSNAP_FS_VERITY_FL 0x00100000
#define VMSNAP_FS_IOC_ENABLE_VERITY _IOW('f', 133, struct verity_arg)
struct verity_arg {
	uint32_t version, hash_algorithm, block_size, salt_size;
	uint64_t salt_ptr;
	uint32_t sig_size, reserved1;
	uint64_t sig_ptr;
	uint64_t reserved2[11];
};

int inst_verity(const char *path)
{
	long flags = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return err_sys(EXIT_FAIL, "RAM file %s", path);
	rc = ioctl(fd, VMSNAP_FS_IOC_GETFLAGS, &flags);
	close(fd);
	return rc == 0 && (flags & VMSNAP_FS_VERITY_FL);
}

int inst_enable_verity(const char *path)
{
	/* SHA-256 over 4 KiB blocks, no salt: what fsverity-utils does by default. */
	struct verity_arg a = { .version = 1, .hash_algorithm = 1, .block_size = 4096 };
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return err_sys(EXIT_FAIL, "RAM file %s", path);
	rc = ioctl(fd, VMSNAP_FS_IOC_ENABLE_VERITY, &a);
	close(fd);
	if (rc == 0)
		return 1;
	if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EINVAL)
		return 0;
	return err_sys(EXIT_FAIL, "enabling fs-verity on %s", path);
}
