/* flakydisk - a disk that can fail on command, for the fault tests (there is
 * no device-mapper here, so no dm-flakey): a FUSE file system, spoken raw on
 * /dev/fuse, with one file MOUNTPOINT/disk backed by BACKING. A loop device
 * over it is a block device; ext4 on that loop device is a file system.
 *
 *   flakydisk BACKING MOUNTPOINT [FAIL_AFTER_BYTES]
 *   SIGHUP   writes go through (the start)
 *   SIGUSR1  writes are dropped: reported done, never stored (a power cut:
 *            what the kernel still had to write back is lost)
 *   SIGUSR2  after FAIL_AFTER_BYTES more bytes, writes (and from then on
 *            flushes) fail with EIO
 *
 * Each mode change and the totals at exit are logged on stderr. Reads always
 * return what BACKING holds: after a cut, that is the disk as power left it.
 * The file is opened with FOPEN_DIRECT_IO, so no cache sits between the loop
 * device and BACKING. Single-threaded; serves until unmounted. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_WRITE (1u << 20)
#define DISK_INO 2

enum mode { M_OK, M_DROP, M_FAIL };
static const char *const mode_name[] = { "ok", "drop", "fail" };
static volatile sig_atomic_t want = M_OK;
static int backing, dev;
static unsigned long long fail_after, stored, dropped, failed;

static void on_signal(int sig)
{
	want = sig == SIGUSR1 ? M_DROP : sig == SIGUSR2 ? M_FAIL : M_OK;
}

static void reply(uint64_t unique, int error, const void *data, size_t len)
{
	struct fuse_out_header h = { .len = sizeof(h) + (error ? 0 : len), .error = -error,
				     .unique = unique };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, error ? 0 : len } };

	if (writev(dev, iov, 2) < 0 && errno != ENOENT) /* ENOENT: the request was interrupted */
		perror("flakydisk: reply");
}

static void fill_attr(uint64_t ino, struct fuse_attr *a)
{
	struct stat st;

	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->nlink = 1;
	a->blksize = 4096;
	if (ino == FUSE_ROOT_ID) {
		a->mode = S_IFDIR | 0755;
		a->nlink = 2;
		return;
	}
	fstat(backing, &st);
	a->mode = S_IFREG | 0600;
	a->size = (uint64_t)st.st_size;
	a->blocks = (uint64_t)st.st_blocks;
}

static void reply_attr(uint64_t unique, uint64_t ino)
{
	struct fuse_attr_out o = { .attr_valid = 0 };

	fill_attr(ino, &o.attr);
	reply(unique, 0, &o, sizeof(o));
}

static bool failing(enum mode m)
{
	return m == M_FAIL && !fail_after;
}

static void do_write(struct fuse_in_header *in, const struct fuse_write_in *w, enum mode m)
{
	struct fuse_write_out o = { .size = w->size };
	const char *data = (const char *)(w + 1);

	if (m == M_FAIL && fail_after < w->size) {
		fail_after = 0;
		failed += w->size;
		reply(in->unique, EIO, NULL, 0);
		return;
	}
	if (m == M_FAIL)
		fail_after -= w->size;
	if (m == M_DROP) {
		dropped += w->size;
	} else {
		if (pwrite(backing, data, w->size, (off_t)w->offset) != (ssize_t)w->size) {
			reply(in->unique, errno ? errno : EIO, NULL, 0);
			return;
		}
		stored += w->size;
	}
	reply(in->unique, 0, &o, sizeof(o));
}

static void do_readdir(struct fuse_in_header *in, const struct fuse_read_in *r)
{
	static const char *const names[] = { ".", "..", "disk" };
	char buf[256];
	size_t len = 0;

	for (uint64_t i = r->offset; i < 3; i++) {
		struct fuse_dirent *d = (struct fuse_dirent *)(buf + len);
		size_t n = strlen(names[i]), sz = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + n);
		if (len + sz > r->size)
			break;
		memset(d, 0, sz);
		d->ino = i == 2 ? DISK_INO : FUSE_ROOT_ID;
		d->off = i + 1;
		d->namelen = (uint32_t)n;
		d->type = i == 2 ? DT_REG : DT_DIR;
		memcpy(d->name, names[i], n);
		len += sz;
	}
	reply(in->unique, 0, buf, len);
}

static int serve(struct fuse_in_header *in, void *arg, enum mode m)
{
	static char out[MAX_WRITE];

	switch (in->opcode) {
	case FUSE_INIT: {
		const struct fuse_init_in *i = arg;
		struct fuse_init_out o = { .major = FUSE_KERNEL_VERSION,
					   .minor = FUSE_KERNEL_MINOR_VERSION,
					   .max_readahead = i->max_readahead,
					   .flags = i->flags & (FUSE_BIG_WRITES | FUSE_MAX_PAGES),
					   .max_background = 16, .congestion_threshold = 12,
					   .max_write = MAX_WRITE, .time_gran = 1,
					   .max_pages = MAX_WRITE / 4096 };
		reply(in->unique, 0, &o, sizeof(o));
		return 0;
	}
	case FUSE_LOOKUP: {
		struct fuse_entry_out o = { .nodeid = DISK_INO, .generation = 1 };
		if (in->nodeid != FUSE_ROOT_ID || strcmp(arg, "disk")) {
			reply(in->unique, ENOENT, NULL, 0);
			return 0;
		}
		fill_attr(DISK_INO, &o.attr);
		reply(in->unique, 0, &o, sizeof(o));
		return 0;
	}
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
		return 0; /* no reply */
	case FUSE_GETATTR:
		reply_attr(in->unique, in->nodeid);
		return 0;
	case FUSE_SETATTR: {
		const struct fuse_setattr_in *s = arg;
		if ((s->valid & FATTR_SIZE) && m == M_OK && ftruncate(backing, (off_t)s->size) < 0) {
			reply(in->unique, errno, NULL, 0);
			return 0;
		}
		reply_attr(in->unique, in->nodeid);
		return 0;
	}
	case FUSE_OPEN:
	case FUSE_OPENDIR: {
		struct fuse_open_out o = { .open_flags = in->opcode == FUSE_OPEN ? FOPEN_DIRECT_IO : 0 };
		reply(in->unique, 0, &o, sizeof(o));
		return 0;
	}
	case FUSE_READ: {
		const struct fuse_read_in *r = arg;
		size_t n = r->size < sizeof(out) ? r->size : sizeof(out);
		ssize_t got = pread(backing, out, n, (off_t)r->offset);
		reply(in->unique, got < 0 ? errno : 0, out, got < 0 ? 0 : (size_t)got);
		return 0;
	}
	case FUSE_WRITE:
		do_write(in, arg, m);
		return 0;
	case FUSE_READDIR:
		do_readdir(in, arg);
		return 0;
	case FUSE_STATFS: {
		struct fuse_statfs_out o = { .st = { .bsize = 4096, .frsize = 4096, .namelen = 255 } };
		reply(in->unique, 0, &o, sizeof(o));
		return 0;
	}
	case FUSE_FSYNC: /* fails once writes do */
		reply(in->unique, failing(m) ? EIO : m == M_OK && fdatasync(backing) < 0 ? errno : 0, NULL, 0);
		return 0;
	case FUSE_FALLOCATE: { /* the loop device's discards */
		const struct fuse_fallocate_in *f = arg;
		int e = 0;
		if (m == M_OK && fallocate(backing, (int)f->mode, (off_t)f->offset, (off_t)f->length) < 0)
			e = errno;
		reply(in->unique, failing(m) ? EIO : e, NULL, 0);
		return 0;
	}
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
	case FUSE_FLUSH:
	case FUSE_ACCESS:
		reply(in->unique, 0, NULL, 0);
		return 0;
	case FUSE_DESTROY:
		reply(in->unique, 0, NULL, 0);
		return 1;
	default:
		reply(in->unique, ENOSYS, NULL, 0);
		return 0;
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: read() returns */
	enum mode m = M_OK;
	char opts[128];
	char *buf;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: flakydisk BACKING MOUNTPOINT [FAIL_AFTER_BYTES]\n");
		return 2;
	}
	backing = open(argv[1], O_RDWR | O_CLOEXEC);
	dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	buf = malloc(MAX_WRITE + 65536);
	if (backing < 0 || dev < 0 || !buf) {
		perror(backing < 0 ? argv[1] : "/dev/fuse");
		return 1;
	}
	unsigned long long after = argc == 4 ? strtoull(argv[3], NULL, 0) : 0;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other", dev);
	if (mount("flakydisk", argv[2], "fuse.flakydisk", MS_NOSUID | MS_NODEV, opts) < 0) {
		perror("flakydisk: mount");
		return 1;
	}
	for (;;) {
		ssize_t n = read(dev, buf, MAX_WRITE + 65536);

		/* After the read: a signal that came while it blocked counts for
		 * the request it returned. */
		if (want != (int)m) {
			m = (enum mode)want;
			fail_after = after;
			fprintf(stderr, "flakydisk: mode %s (stored %llu, dropped %llu, failed %llu bytes)\n",
				mode_name[m], stored, dropped, failed);
		}
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == ENOENT))
			continue;
		if (n < 0)
			break; /* ENODEV: unmounted */
		if ((size_t)n < sizeof(struct fuse_in_header))
			continue;
		if (serve((struct fuse_in_header *)buf, buf + sizeof(struct fuse_in_header), m))
			break;
	}
	fprintf(stderr, "flakydisk: exit (stored %llu, dropped %llu, failed %llu bytes)\n", stored,
		dropped, failed);
	return 0;
}
